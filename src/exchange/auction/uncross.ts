// Uncrossing a call auction (docs/derivatives.md, "Volatility auctions").
// During an auction orders accumulate without matching, so bids may sit above
// asks. At its end all crossing orders trade at one price, chosen among the
// orders' limit prices by, in turn:
//   1. the largest volume: min(demand(p), supply(p)), where demand(p) is the
//      size of bids priced ≥ p and supply(p) that of asks priced ≤ p;
//   2. the smallest imbalance |demand(p) − supply(p)|;
//   3. the closest to the reference price (the last price before the auction);
//   4. the lower price.
// (Volume only changes at an order's price, so the largest volume over all
// prices is reached at one of them.) Fills go in price-time priority on each
// side: best price first, then earlier orders; the last order on the long side
// may fill in part. Cost: O(n log n) for n orders.

import { assert } from '../../lib/assert.ts';
import type { OrderBook } from '../book/index.ts';

export interface AuctionOrder {
  readonly orderId: number;
  readonly priceTicks: number;
  readonly sizeLots: number;
  /** Time priority: lower first. */
  readonly seq: number;
}

export interface AuctionFill {
  readonly buyOrderId: number;
  readonly sellOrderId: number;
  readonly sizeLots: number;
}

export interface UncrossResult {
  readonly priceTicks: number;
  readonly volumeLots: number;
  /** demand − supply at the price (signed: positive means bids are left over). */
  readonly imbalanceLots: number;
  readonly fills: AuctionFill[];
}

export interface Candidate {
  readonly priceTicks: number;
  readonly demandLots: number;
  readonly supplyLots: number;
}

/** Demand and supply at every order price, ascending. */
export function auctionCurve(
  bids: readonly AuctionOrder[],
  asks: readonly AuctionOrder[],
): Candidate[] {
  const prices = [...new Set([...bids, ...asks].map((o) => o.priceTicks))].sort((a, b) => a - b);
  const bidsAsc = [...bids].sort((a, b) => a.priceTicks - b.priceTicks);
  const asksAsc = [...asks].sort((a, b) => a.priceTicks - b.priceTicks);
  let demand = bids.reduce((s, o) => s + o.sizeLots, 0);
  let supply = 0;
  let b = 0;
  let a = 0;
  const out: Candidate[] = [];
  for (const p of prices) {
    while (b < bidsAsc.length && bidsAsc[b]!.priceTicks < p) demand -= bidsAsc[b++]!.sizeLots;
    while (a < asksAsc.length && asksAsc[a]!.priceTicks <= p) supply += asksAsc[a++]!.sizeLots;
    out.push({ priceTicks: p, demandLots: demand, supplyLots: supply });
  }
  return out;
}

/** True if candidate x is preferred to y by the rules above. */
function better(x: Candidate, y: Candidate, referenceTicks: number): boolean {
  const vx = Math.min(x.demandLots, x.supplyLots);
  const vy = Math.min(y.demandLots, y.supplyLots);
  if (vx !== vy) return vx > vy;
  const ix = Math.abs(x.demandLots - x.supplyLots);
  const iy = Math.abs(y.demandLots - y.supplyLots);
  if (ix !== iy) return ix < iy;
  const dx = Math.abs(x.priceTicks - referenceTicks);
  const dy = Math.abs(y.priceTicks - referenceTicks);
  if (dx !== dy) return dx < dy;
  return x.priceTicks < y.priceTicks;
}

const byPriority =
  (side: 'buy' | 'sell') =>
  (x: AuctionOrder, y: AuctionOrder): number => {
    if (x.priceTicks !== y.priceTicks)
      return side === 'buy' ? y.priceTicks - x.priceTicks : x.priceTicks - y.priceTicks;
    return x.seq !== y.seq ? x.seq - y.seq : x.orderId - y.orderId;
  };

/** The uncrossing, or null if no bid reaches an ask (nothing trades). */
export function uncross(
  bids: readonly AuctionOrder[],
  asks: readonly AuctionOrder[],
  referenceTicks: number,
): UncrossResult | null {
  for (const o of [...bids, ...asks]) {
    assert(
      Number.isSafeInteger(o.sizeLots) && o.sizeLots > 0 && o.priceTicks > 0,
      'bad auction order',
    );
  }
  let best: Candidate | null = null;
  for (const c of auctionCurve(bids, asks))
    if (best === null || better(c, best, referenceTicks)) best = c;
  if (best === null) return null;
  const volume = Math.min(best.demandLots, best.supplyLots);
  if (volume === 0) return null;
  const price = best.priceTicks;
  const buys = bids.filter((o) => o.priceTicks >= price).sort(byPriority('buy'));
  const sells = asks.filter((o) => o.priceTicks <= price).sort(byPriority('sell'));
  const fills: AuctionFill[] = [];
  let left = volume;
  let i = 0;
  let j = 0;
  let buyLeft = buys[0]!.sizeLots;
  let sellLeft = sells[0]!.sizeLots;
  while (left > 0) {
    const lots = Math.min(buyLeft, sellLeft, left);
    fills.push({ buyOrderId: buys[i]!.orderId, sellOrderId: sells[j]!.orderId, sizeLots: lots });
    left -= lots;
    buyLeft -= lots;
    sellLeft -= lots;
    if (left === 0) break;
    if (buyLeft === 0) buyLeft = buys[++i]!.sizeLots;
    if (sellLeft === 0) sellLeft = sells[++j]!.sizeLots;
  }
  return {
    priceTicks: price,
    volumeLots: volume,
    imbalanceLots: best.demandLots - best.supplyLots,
    fills,
  };
}

/**
 * The resting orders of a book as auction orders, in the book's time priority
 * (seq counts along each level's queue). A book never holds crossed orders, so
 * the orders entered during the auction are kept beside it and passed in too.
 */
export function bookOrders(book: OrderBook): { bids: AuctionOrder[]; asks: AuctionOrder[] } {
  const collect = (levels: OrderBook['bids']['levels']): AuctionOrder[] => {
    const out: AuctionOrder[] = [];
    let seq = 0;
    for (let l = levels.length - 1; l >= 0; l--) {
      for (let o = levels[l]!.head; o !== null; o = o.next) {
        out.push({
          orderId: o.orderId,
          priceTicks: o.priceTicks,
          sizeLots: o.sizeLots,
          seq: seq++,
        });
      }
    }
    return out;
  };
  return { bids: collect(book.bids.levels), asks: collect(book.asks.levels) };
}
