// Index and mark prices (docs/exchange.md, "Mark price"). The index comes from
// the block's oracle map; the mark is a robust median that no single input can
// drag:
//   mark = median(index, clamp(mid, index ± markBand), index + basis)
//   mid   = floor((bestBid + bestAsk) / 2) when both sides exist, else index
//   basis = index × trunc(Σ premium samples / count) / 10^6 over the current
//           funding interval (0 before the first sample), truncated
// All in integer ticks. Cost: O(1) per market.

import { divBig, divFloor, divTrunc } from '../lib/int.ts';
import { INDEX_TICKS_MAX, PREMIUM_SAMPLE_PPM_MAX } from '../lib/limits.ts';
import type { MarketState } from './state.ts';
import { PPM_BIG } from './units.ts';

const INDEX_TICKS_MAX_BIG = BigInt(INDEX_TICKS_MAX);
const PREMIUM_SAMPLE_PPM_MAX_BIG = BigInt(PREMIUM_SAMPLE_PPM_MAX);

/** Quote units per whole base unit → ticks, half to even, in 1..INDEX_TICKS_MAX. */
export function indexToTicks(market: MarketState, indexQuote: bigint): number {
  const ticks = divBig(indexQuote, market.params.tickSizeQuote, 'halfEven');
  if (ticks < 1n) return 1;
  return ticks > INDEX_TICKS_MAX_BIG ? INDEX_TICKS_MAX : Number(ticks);
}

function band(indexTicks: number, ppm: number): [number, number] {
  const d = Number(divBig(BigInt(indexTicks) * BigInt(ppm), PPM_BIG, 'floor'));
  return [Math.max(1, indexTicks - d), indexTicks + d];
}

function median3(a: number, b: number, c: number): number {
  return Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
}

export function computeMarkTicks(market: MarketState): number {
  const index = market.indexTicks;
  const bid = market.book.bestBidTicks();
  const ask = market.book.bestAskTicks();
  let mid = index;
  if (bid !== undefined && ask !== undefined) {
    const [lo, hi] = band(index, market.params.markBandPpm);
    // bid + ask may pass 2^53 (an ask rests up to PRICE_TICKS_MAX for the margin
    // of its lots at the mark). bid is an integer, so this is floor((bid + ask) / 2)
    // exactly, which is the trunc of the positive sum, crossed book or not.
    mid = Math.min(hi, Math.max(lo, bid + divFloor(ask - bid, 2)));
  }
  let basis = 0;
  if (market.premiumCount > 0) {
    const avgPpm = divTrunc(market.premiumSumPpm, market.premiumCount);
    basis = Number(divBig(BigInt(index) * BigInt(avgPpm), PPM_BIG, 'trunc'));
  }
  return Math.max(1, median3(index, mid, index + basis));
}

/**
 * The premium of the book over the index, in ppm of the index: positive when
 * the best bid is above the index, negative when the best ask is below it,
 * zero when the index lies within the spread or a side is empty; at most
 * PREMIUM_SAMPLE_PPM_MAX.
 */
export function premiumPpm(market: MarketState): number {
  const index = market.indexTicks;
  const bid = market.book.bestBidTicks();
  const ask = market.book.bestAskTicks();
  if (bid === undefined || ask === undefined || index === 0) return 0;
  const away = Math.max(0, bid - index) - Math.max(0, index - ask);
  const ppm = divBig(BigInt(away) * PPM_BIG, BigInt(index), 'trunc');
  return ppm > PREMIUM_SAMPLE_PPM_MAX_BIG ? PREMIUM_SAMPLE_PPM_MAX : Number(ppm);
}
