// The first circuit breakers at order entry (docs/exchange.md, "Circuit
// breakers"), over the pure checks of auction/bands.ts:
//  - price band: a limit price more than priceBandPpm from the mark is refused
//    (PriceOutsideBand); market orders are already bounded by their slippage;
//  - open-interest cap: an order that could raise open interest (long lots)
//    above openInterestCapLots is refused (OpenInterestCapExceeded). A fill
//    raises open interest by at most the lots that open the taker's position
//    (a taker that closes moves it by 0 or less, whatever the maker does), so
//    the bound checked is the part of the order beyond what reduces the
//    account's position. Post-only orders never take and are not bounded; a
//    resting order's later fills are bounded by the check of the order that
//    takes it. Conservative: the whole opening part counts even if the book
//    could fill less of it.

import type { BreakerRejection } from './auction/bands.ts';
import { checkOpenInterestCap, checkPriceBand } from './auction/bands.ts';
import type { MarketState } from './state.ts';

/** Lots of an order of `sizeLots` on `buy`'s side that would open, given the position. */
export function openingLots(positionLots: number, buy: boolean, sizeLots: number): number {
  const closing = buy ? Math.max(0, -positionLots) : Math.max(0, positionLots);
  return Math.max(0, sizeLots - closing);
}

export function checkBreakers(
  market: MarketState,
  positionLots: number,
  buy: boolean,
  limitPriceTicks: number | null,
  sizeLots: number,
  postOnly: boolean,
): BreakerRejection | null {
  const p = market.params;
  if (limitPriceTicks !== null && p.priceBandPpm !== undefined) {
    const r = checkPriceBand(limitPriceTicks, market.markTicks, p.priceBandPpm);
    if (r !== null) return r;
  }
  if (p.openInterestCapLots !== undefined && !postOnly) {
    const bound = openingLots(positionLots, buy, sizeLots);
    return checkOpenInterestCap(market.longLots, bound, p.openInterestCapLots);
  }
  return null;
}
