// A reference model of the mark price, funding and dated-futures settlement,
// written from docs/exchange.md ("Mark price", "Funding", "Dated futures and
// options", "Fills and equity") and docs/derivatives.md ("Settlement"), not
// from src/exchange. Plain bigint arithmetic with its own roundings, plain
// arrays, and brute force where the exchange is clever: samples are counted
// one boundary at a time, a TWAP is integrated over the whole block history.
// funding_model.test.ts drives the exchange and this model side by side.

/** 2^52 − 1: the largest index in ticks (docs/exchange.md, "Mark price"). */
export const REF_INDEX_TICKS_MAX = 2n ** 52n - 1n;
/** ⌊(2^53 − 1) / 10,080⌋: the largest premium sample (docs/exchange.md, "Funding"). */
export const REF_PREMIUM_SAMPLE_MAX = (2n ** 53n - 1n) / 10_080n;
/** ±500 ppm: the band of the interest term. */
export const REF_INTEREST_BAND = 500n;
/** 30 minutes: the settlement window before expiry (docs/derivatives.md). */
export const REF_SETTLEMENT_WINDOW_MS = 30n * 60_000n;
const PPM = 1_000_000n;

export function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return q * b !== a && a < 0n !== b < 0n ? q - 1n : q;
}

export function ceilDiv(a: bigint, b: bigint): bigint {
  return -floorDiv(-a, b);
}

/** bigint division truncates toward zero already. */
export function truncDiv(a: bigint, b: bigint): bigint {
  return a / b;
}

export function halfEvenDiv(a: bigint, b: bigint): bigint {
  const q = floorDiv(a, b);
  const r2 = 2n * (a - q * b);
  const bb = b < 0n ? -b : b;
  if (r2 > bb || (r2 === bb && q % 2n !== 0n)) return q + 1n;
  return q;
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

function max(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

function clamp(x: bigint, lo: bigint, hi: bigint): bigint {
  return max(lo, min(hi, x));
}

/** "An index price is turned into ticks by index / tickSizeQuote, rounded half to even (at least 1)", at most 2^52 − 1. */
export function refIndexTicks(priceQuote: bigint, tickSizeQuote: bigint): bigint {
  return clamp(halfEvenDiv(priceQuote, tickSizeQuote), 1n, REF_INDEX_TICKS_MAX);
}

/** The best bid and ask of a book (undefined: that side is empty). */
export interface Top {
  readonly bid: bigint | undefined;
  readonly ask: bigint | undefined;
}

/**
 *   mark  = median(index, clamp(mid, index ± index × markBandPpm / 10^6), index + basis)
 *   mid   = trunc((bestBid + bestAsk) / 2) when both sides exist, else index
 *   basis = trunc(index × trunc(Σ samples / count) / 10^6), 0 before a sample
 */
export function refMark(
  index: bigint,
  top: Top,
  markBandPpm: bigint,
  sampleSum: bigint,
  sampleCount: bigint,
): bigint {
  const mid = top.bid !== undefined && top.ask !== undefined ? (top.bid + top.ask) / 2n : index;
  const d = (index * markBandPpm) / PPM;
  const banded = clamp(mid, index - d, index + d);
  const basis = sampleCount === 0n ? 0n : truncDiv(index * truncDiv(sampleSum, sampleCount), PPM);
  const three = [index, banded, index + basis].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return three[1]!;
}

/** premium = (max(0, bid − index) − max(0, index − ask)) × 10^6 / index, truncated, 0 with a side empty, capped. */
export function refPremium(index: bigint, top: Top): bigint {
  if (top.bid === undefined || top.ask === undefined) return 0n;
  const away = max(0n, top.bid - index) - max(0n, index - top.ask);
  return min(REF_PREMIUM_SAMPLE_MAX, truncDiv(away * PPM, index));
}

export interface FundingParams {
  readonly sampleMs: bigint;
  readonly intervalMs: bigint;
  readonly interestPpm: bigint;
  readonly capPpm: bigint;
}

/**
 * avg = trunc(Σ/count); rate = clamp(avg + clamp(interest − avg, ±500), ±cap);
 * paid = trunc(rate × count / n) when count < n (n samples in a whole interval); 0 without samples.
 */
export function refRate(p: FundingParams, sum: bigint, count: bigint): bigint {
  if (count === 0n) return 0n;
  const avg = truncDiv(sum, count);
  const rate = clamp(
    avg + clamp(p.interestPpm - avg, -REF_INTEREST_BAND, REF_INTEREST_BAND),
    -p.capPpm,
    p.capPpm,
  );
  const n = p.intervalMs / p.sampleMs;
  return count < n ? truncDiv(rate * count, n) : rate;
}

/** A perpetual's samples of its current interval. */
export interface RefFundingState {
  sum: bigint;
  count: bigint;
}

/**
 * One block of a perpetual, block time moving from previousMs to nowMs:
 * a sample per sample boundary crossed (the premium of the book before the
 * block), a payment at the first interval boundary crossed with the samples
 * up to it, the samples of intervals skipped whole dropped, then the samples
 * of the interval the block ends in. While stale: no samples; an interval
 * that ends pays 0 and drops its samples. Returns the rate paid, or null
 * when no interval ended. Walks every sample boundary one by one.
 */
export function refAdvanceFunding(
  p: FundingParams,
  s: RefFundingState,
  previousMs: bigint,
  nowMs: bigint,
  sample: bigint,
  stale: boolean,
  seen?: { samplesPaid: bigint },
): bigint | null {
  let paid: bigint | null = null;
  // The last interval boundary the block crosses: samples after it belong to
  // the interval now running; samples between the first and the last are of
  // intervals the block skipped whole.
  let lastBoundary = -1n;
  for (let t = previousMs + 1n; t <= nowMs;) {
    const next = (floorDiv(t - 1n, p.intervalMs) + 1n) * p.intervalMs;
    if (next > nowMs) break;
    lastBoundary = next;
    t = next + 1n;
  }
  const firstSample = (floorDiv(previousMs, p.sampleMs) + 1n) * p.sampleMs;
  for (let tau = firstSample; tau <= nowMs; tau += p.sampleMs) {
    if (paid === null) {
      if (!stale) {
        s.sum += sample;
        s.count += 1n;
      }
      if (tau % p.intervalMs === 0n) {
        paid = stale ? 0n : refRate(p, s.sum, s.count);
        if (seen !== undefined) seen.samplesPaid = s.count;
        s.sum = 0n;
        s.count = 0n;
      }
    } else if (tau > lastBoundary && !stale) {
      s.sum += sample;
      s.count += 1n;
    }
  }
  return paid;
}

/**
 * The cash each position moves: size × mark × k × rate / 10^6, a payer's
 * rounded up, a receiver's down (signed: negative pays). Longs pay when the
 * rate is positive.
 */
export function refFundingDelta(
  sizeLots: bigint,
  markTicks: bigint,
  k: bigint,
  rate: bigint,
): bigint {
  const owed = sizeLots * markTicks * k * rate; // > 0: this position pays
  return owed > 0n ? -ceilDiv(owed, PPM) : floorDiv(-owed, PPM);
}

/** One block's view of an underlying for settlement: its fresh index (null while stale). */
export interface PricePoint {
  readonly timeMs: bigint;
  readonly price: bigint | null;
}

/**
 * The settlement price at a block at or after expiry, from every block since
 * the TWAP began (the last point is this block): the index is a step
 * function, each block's price holding until the next block, an interval
 * starting stale not counted; halfEven(Σ price × ms / Σ ms) over the 30
 * minutes before expiry; if nothing counted, this block's price if fresh,
 * else null (the market waits). Brute force over the whole history.
 */
export function refSettlementPrice(
  history: readonly PricePoint[],
  expiryMs: bigint,
): bigint | null {
  const start = expiryMs - REF_SETTLEMENT_WINDOW_MS;
  let sum = 0n;
  let ms = 0n;
  for (let i = 0; i + 1 < history.length; i++) {
    const a = history[i]!;
    const b = history[i + 1]!;
    if (a.price === null) continue;
    const from = max(a.timeMs, start);
    const to = min(b.timeMs, expiryMs);
    if (to > from) {
      sum += a.price * (to - from);
      ms += to - from;
    }
  }
  if (ms > 0n) return halfEvenDiv(sum, ms);
  // Nothing counted: the first fresh price at or after expiry.
  for (const point of history) {
    if (point.timeMs >= expiryMs && point.price !== null) return point.price;
  }
  return null;
}

/** What a position of s lots receives at settlement: floor(s × value / lotsPerBase). */
export function refSettlementCash(
  sizeLots: bigint,
  valueQuote: bigint,
  lotsPerBase: bigint,
): bigint {
  return floorDiv(sizeLots * valueQuote, lotsPerBase);
}
