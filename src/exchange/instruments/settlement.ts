// Settlement of dated futures and options (docs/derivatives.md, "Settlement").
//
// The settlement price is the time-weighted average of the oracle index over
// the SETTLEMENT_WINDOW_MS before expiry. The index is a step function of block
// time: the price a block sets holds until the next block. The accumulator
// integrates price × elapsed ms exactly (bigint) over the part of each
// inter-block interval that lies inside the window; an interval that starts
// while the oracle is stale (price null) is not counted, so
//   settlement = halfEven(Σ price × ms / Σ counted ms)
// and if nothing was counted, the first fresh price at or after expiry is used
// ("settlement waits"). Cost: O(1) per block per expiry.

import type { Reader, Writer } from '../../codec/wire.ts';
import type { Codec } from '../../codec/wire.ts';
import { assert } from '../../lib/assert.ts';
import { divBig } from '../../lib/int.ts';

/** The averaging window before expiry: 30 minutes. */
export const SETTLEMENT_WINDOW_MS = 30 * 60_000;

const PRICE_BITS = 96;
const SUM_BITS = 160;

export interface TwapAccumulator {
  readonly expiryMs: number;
  /** Σ price × ms counted so far (quote units × ms). */
  sumPriceMs: bigint;
  /** ms of the window counted so far. */
  countedMs: number;
  /** Time of the last observation (-1: none yet). */
  lastTimeMs: number;
  /** Price set by the last observation, quote units per whole base unit; null = stale. */
  lastPrice: bigint | null;
  /** Set once known: the price all positions close at. */
  settlementPrice: bigint | null;
}

export function newTwap(expiryMs: number): TwapAccumulator {
  assert(Number.isSafeInteger(expiryMs) && expiryMs >= SETTLEMENT_WINDOW_MS, 'bad expiry');
  return {
    expiryMs,
    sumPriceMs: 0n,
    countedMs: 0,
    lastTimeMs: -1,
    lastPrice: null,
    settlementPrice: null,
  };
}

/**
 * Records a block: at timeMs the index became `price` (null while the oracle
 * is stale). Call for every block, in order, from before the window opens;
 * blocks before it only set the price in force when it opens. Returns the
 * settlement price once it is known (at or after expiry).
 */
export function observeTwap(
  acc: TwapAccumulator,
  timeMs: number,
  price: bigint | null,
): bigint | null {
  assert(Number.isSafeInteger(timeMs) && timeMs >= acc.lastTimeMs, 'observations go forward');
  assert(price === null || price > 0n, 'a price is positive');
  if (acc.settlementPrice !== null) return acc.settlementPrice;
  const start = acc.expiryMs - SETTLEMENT_WINDOW_MS;
  if (acc.lastTimeMs >= 0 && acc.lastPrice !== null) {
    const from = Math.max(acc.lastTimeMs, start);
    const to = Math.min(timeMs, acc.expiryMs);
    if (to > from) {
      acc.sumPriceMs += acc.lastPrice * BigInt(to - from);
      acc.countedMs += to - from;
    }
  }
  acc.lastTimeMs = timeMs;
  acc.lastPrice = price;
  if (timeMs < acc.expiryMs) return null;
  if (acc.countedMs > 0) {
    acc.settlementPrice = divBig(acc.sumPriceMs, BigInt(acc.countedMs), 'halfEven');
  } else if (price !== null) {
    acc.settlementPrice = price;
  }
  return acc.settlementPrice;
}

function writeOptional(w: Writer, x: bigint | null): void {
  w.bool(x !== null);
  if (x !== null) w.uvarintBig(x);
}

function readOptional(r: Reader, field: string): bigint | null {
  if (!r.bool(field)) return null;
  const x = r.uvarintBig(field, PRICE_BITS);
  if (x === 0n) throw r.error(field, 'a price is positive');
  return x;
}

/** Canonical encoding for snapshots: every field, in declaration order. */
export const twapCodec: Codec<TwapAccumulator> = {
  write(w, a) {
    w.uvarint(a.expiryMs).uvarintBig(a.sumPriceMs).uvarint(a.countedMs);
    w.ivarint(a.lastTimeMs);
    writeOptional(w, a.lastPrice);
    writeOptional(w, a.settlementPrice);
  },
  read(r, field) {
    const previous = r.enter(field);
    const expiryMs = r.uvarint('expiryMs');
    if (expiryMs < SETTLEMENT_WINDOW_MS) throw r.error('expiryMs', 'before the first window');
    const sumPriceMs = r.uvarintBig('sumPriceMs', SUM_BITS);
    const countedMs = r.uvarint('countedMs', SETTLEMENT_WINDOW_MS);
    const lastTimeMs = r.ivarint('lastTimeMs');
    if (lastTimeMs < -1) throw r.error('lastTimeMs', 'must be -1 or a time');
    const lastPrice = readOptional(r, 'lastPrice');
    const settlementPrice = readOptional(r, 'settlementPrice');
    r.leave(previous);
    return { expiryMs, sumPriceMs, countedMs, lastTimeMs, lastPrice, settlementPrice };
  },
};

export interface SettledPosition {
  /** Signed lots: positive long. */
  readonly sizeLots: number;
  /** The position's cost basis as the exchange keeps it (Position.costBasisQuote). */
  readonly costBasisQuote: bigint;
}

export interface SettlementResult {
  /** Per position, in input order: quote units credited to (negative: debited from) cash. */
  readonly cashQuote: bigint[];
  /** Per position: realized PnL of the close, cashQuote − costBasisQuote. */
  readonly realizedPnlQuote: bigint[];
  /** −Σ cashQuote ≥ 0: what rounding kept back, to be credited to the fee pool so collateral is conserved. */
  readonly dustQuote: bigint;
}

/** Cash-settled value per whole base unit: the price for a future, the payoff for an option. */
export function settlementValueQuote(
  settlementPrice: bigint,
  option?: { strikeQuote: bigint; isCall: boolean },
): bigint {
  if (option === undefined) return settlementPrice;
  const payoff = option.isCall
    ? settlementPrice - option.strikeQuote
    : option.strikeQuote - settlementPrice;
  return payoff > 0n ? payoff : 0n;
}

/**
 * What settlement pays a position of `sizeLots` (signed) at `valueQuote` per
 * whole base unit: floor(size × value / lotsPerBase), a long's rounded down
 * and a short's payment rounded up (settlePositions).
 */
export function settledCashQuote(
  sizeLots: number,
  valueQuote: bigint,
  lotsPerBase: number,
): bigint {
  return divBig(BigInt(sizeLots) * valueQuote, BigInt(lotsPerBase), 'floor');
}

/**
 * Closes every position at `valueQuote` per whole base unit: a position of s
 * lots receives floor(s × value / lotsPerBase) quote units, so a long is paid
 * rounded down and a short pays rounded up; nobody is rounded in their favour.
 * With the longs and shorts of a market equal, Σ cash ≤ 0 and the remainder is
 * returned as dust (less than one quote unit per position). Cost: O(positions).
 */
export function settlePositions(
  positions: readonly SettledPosition[],
  valueQuote: bigint,
  lotsPerBase: number,
): SettlementResult {
  assert(valueQuote >= 0n, 'a settlement value is not negative');
  assert(Number.isSafeInteger(lotsPerBase) && lotsPerBase > 0, 'bad lotsPerBase');
  const cashQuote: bigint[] = [];
  const realizedPnlQuote: bigint[] = [];
  let net = 0;
  let total = 0n;
  for (const p of positions) {
    net += p.sizeLots;
    const cash = settledCashQuote(p.sizeLots, valueQuote, lotsPerBase);
    cashQuote.push(cash);
    realizedPnlQuote.push(cash - p.costBasisQuote);
    total += cash;
  }
  assert(net === 0, 'longs and shorts of a market must balance');
  return { cashQuote, realizedPnlQuote, dustQuote: -total };
}
