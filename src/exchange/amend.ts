// amend: a new price and/or size for a resting order. The size is the order's
// whole size, what it has filled included, as a placement's (and as Kraken,
// OKX or Binance read an amend's size): an open size instead lets an
// amend that races a fill grow the order (10 placed, 7 filled while "amend to
// 5" was on its way: 7 + 5 = 12), and held a part-filled rest under the
// minimum size to that minimum. A size at or below what the order filled
// ends it: the rest is cancelled. Reducing the open size at the same price
// keeps time priority; a new price or a larger size loses it and re-enters
// as an incoming GTC order, which may trade (docs/book.md).
// Cost: as placeOrder (O(markets) margin + the book's cost + O(1) per fill).

import {
  amendInAuction,
  bookHolding,
  breachFillable,
  copyOrder,
  recordFills,
  restInAuction,
  startAuction,
  takerStopTicks,
} from './auction/call.ts';
import { checkBreakers } from './breakers.ts';
import { sizeIn } from './position.ts';
import type { Ctx } from './context.ts';
import { getAccount } from './context.ts';
import { equityGuard, takerLeftQuote } from './fill_guard.ts';
import { feeTier } from './fees.ts';
import { equityQuote, initialMarginQuote } from './margin.ts';
import { forgetMatched, forgetOrder, settleFills } from './orders.ts';
import type { ActionResult, Fill } from './results.ts';
import type { Amend } from './tx/types.ts';
import { haltedMessage, noMarketNamed } from './errors.ts';
import type { OrderBook } from './book/index.ts';
import { quoteDecimal } from './units.ts';

function no(
  code:
    | 'UnknownInstrument'
    | 'MarketHalted'
    | 'UnknownOrder'
    | 'InvalidPrice'
    | 'InvalidSize'
    | 'BelowMinSize'
    | 'InsufficientMargin'
    | 'PostOnlyWouldTake'
    | 'OracleStale'
    | 'PriceOutsideBand'
    | 'OpenInterestCapExceeded',
  message: string,
): ActionResult {
  return { ok: false, kind: 'amend', code, message };
}

export function amend(ctx: Ctx, a: Amend): ActionResult {
  const state = ctx.state;
  const market = state.marketByName.get(a.instrument);
  if (market === undefined) return no('UnknownInstrument', noMarketNamed(a.instrument));
  const expired = market.listed && market.expiryMs <= ctx.blockTimeMs;
  if (market.halted || expired) return no('MarketHalted', haltedMessage(a.instrument, expired));
  // An amend may raise size or move a price toward the market: while the index is stale only cancels go.
  if (market.oracleStale) return no('OracleStale', a.instrument);
  // So for an option without a fresh smile, which keeps its last mark (place_order.ts).
  if (market.instrument.kind === 'option' && market.optionMark === null) {
    return no('OracleStale', `${a.instrument}: the option has no fresh smile`);
  }
  const account = getAccount(ctx);
  const meta = state.orders.get(a.orderId);
  if (meta === undefined || meta.account !== account || meta.market !== market.index) {
    return no('UnknownOrder', 'no such open order');
  }
  // During an auction the order may wait among the auction orders.
  const book = bookHolding(market, a.orderId)!;
  const order = book.order(a.orderId)!;
  const p = market.params;
  const priceTicks = a.priceTicks ?? order.priceTicks;
  if (!Number.isSafeInteger(priceTicks) || priceTicks <= 0) return no('InvalidPrice', 'bad price');
  // Without a size the order keeps its size, so its open size.
  let placedLots = meta.placedLots;
  let sizeLots = order.sizeLots;
  if (a.sizeLots !== undefined) {
    placedLots = a.sizeLots;
    if (!Number.isSafeInteger(placedLots) || placedLots <= 0 || placedLots > p.maxSizeLots) {
      return no('InvalidSize', `size must be 1..${p.maxSizeLots} lots`);
    }
    if (placedLots < p.minSizeLots) return no('BelowMinSize', `minimum ${p.minSizeLots} lots`);
    // What it filled stays filled: the open size is the rest of the new size.
    sizeLots = placedLots - (meta.placedLots - order.sizeLots);
    if (sizeLots <= 0) return endOrder(ctx, book, a.orderId, order.sizeLots);
  }
  const buy = order.side === 'buy';
  // A post-only order moved to where it would take is refused for that first,
  // before breakers and margin, as its placement there would be.
  if (order.postOnly && !(market.auction !== null && market.auction.active)) {
    const best = buy ? book.bestAskTicks() : book.bestBidTicks();
    if (best !== undefined && (buy ? best <= priceTicks : best >= priceTicks)) {
      return no('PostOnlyWouldTake', `would trade at ${best}`);
    }
  }
  // A new price or a larger open size re-enters the book as a new order there
  // would: the price band bounds it as it bounds that placement, so lots added
  // at the old price do not come to rest outside the band once the mark has
  // moved away. A smaller size at the same price stays in place, unbounded.
  const losesPriority = priceTicks !== order.priceTicks || sizeLots > order.sizeLots;
  // The open-interest cap bounds what may take: a smaller size at the same
  // price stays in place, and a post-only order never takes (as at placement).
  const takes = !order.postOnly && losesPriority;
  const breaker = checkBreakers(
    market,
    sizeIn(meta.account, market),
    buy,
    losesPriority ? priceTicks : null,
    sizeLots,
    !takes,
  );
  if (breaker !== null) return no(breaker.code, breaker.message);
  const growLots = sizeLots - order.sizeLots;
  if (growLots > 0 || priceTicks !== order.priceTicks) {
    const before = initialMarginQuote(state, meta.account);
    const after = initialMarginQuote(
      state,
      meta.account,
      market.index,
      buy ? growLots : 0,
      buy ? 0 : growLots,
    );
    const awayTicks = buy ? priceTicks - market.markTicks : market.markTicks - priceTicks;
    const adverse = awayTicks > 0 ? BigInt(awayTicks) * BigInt(sizeLots) * market.k : 0n;
    // As a placement of the amended order: one that raises no initial margin
    // (a closing order moved toward the market) passes whatever its price;
    // the fill guard keeps its fills from taking the account below zero. A
    // new price alone never raises it over the order as it rests (resting
    // orders are margined at the mark), so an order moved through the mark is
    // weighed as its placement is, against the account without it: else an
    // opening order placed away from the market and then amended through it
    // would escape the adverse loss its placement there is refused for.
    let raises = after > before;
    if (!raises && adverse > 0n) {
      const open = order.sizeLots;
      raises =
        after >
        initialMarginQuote(state, meta.account, market.index, buy ? -open : 0, buy ? 0 : -open);
    }
    if (raises && equityQuote(state, meta.account) - adverse < after) {
      return no(
        'InsufficientMargin',
        `the initial margin with this amend, ${quoteDecimal(after)} in the quote asset, exceeds the account's equity`,
      );
    }
  }
  const auction = market.auction;
  if (auction !== null && auction.active) {
    meta.placedLots = placedLots;
    if (amendInAuction(market, a.orderId, priceTicks, sizeLots)) meta.seq = ++market.seq;
    market.dirty = true;
    return rested(a.orderId, 0, sizeLots, []);
  }
  // The book forgets an order whose amend triggers an auction: keep what it was.
  const before = auction === null ? null : copyOrder(order);
  const stopTicks = takerStopTicks(
    market,
    order.side,
    priceTicks,
    ctx.blockTimeMs,
    meta.account.index,
    order.stp,
  );
  // Every fill of the re-entering order is checked as a placement's (fill_guard.ts).
  const guard = equityGuard(state);
  const left = takerLeftQuote(
    state,
    market,
    meta.account,
    buy,
    priceTicks,
    sizeLots,
    guard.takerPpmMax,
    NaN,
  );
  const takerPpm = left === null ? 0 : feeTier(state, meta.account).takerFeePpm;
  guard.arm(market, buy, left, takerPpm);
  // Read before the amend: the book may hand a filled order's record back to its pool.
  const side = order.side;
  const r = book.amend(a.orderId, priceTicks, sizeLots, stopTicks, guard);
  if (r.status === 'rejected') return no('PostOnlyWouldTake', 'the new price would trade');
  meta.placedLots = placedLots;
  const fills: Fill[] = [];
  forgetMatched(state, market, meta.account, ctx.events);
  settleFills(state, market, meta.account, side, false, fills);
  if (before !== null) {
    if (
      r.reason === 'AuctionTriggered' &&
      !breachFillable(state, market, before.side, meta.account, before.stp)
    ) {
      // The trade that would start the auction could not happen: the order
      // ends as the fill guard ends it (docs/exchange.md, "Volatility auctions").
      recordFills(market, book.fills, ctx.blockTimeMs);
      if (state.orders.has(a.orderId)) forgetOrder(state, a.orderId);
      market.dirty = true;
      const leftLots = sizeLots - r.filledLots;
      const order = { orderId: a.orderId, filledLots: r.filledLots, restedLots: 0, fills };
      return {
        ok: true,
        kind: 'amend',
        order: {
          ...order,
          cancelledLots: leftLots,
          status: 'cancelled',
          reason: 'InsufficientEquity',
        },
      };
    }
    if (r.reason === 'AuctionTriggered') {
      const leftLots = sizeLots - r.filledLots;
      // Against the references the amend met, before its fills replace them (placeOrder).
      startAuction(
        market,
        before.side,
        ctx.blockTimeMs,
        ctx.events,
        meta.account.index,
        before.stp,
      );
      recordFills(market, book.fills, ctx.blockTimeMs);
      restInAuction(market, { ...before, priceTicks, sizeLots: leftLots });
      meta.seq = ++market.seq;
      market.dirty = true;
      return rested(a.orderId, r.filledLots, leftLots, fills, 'AuctionTriggered');
    }
    recordFills(market, book.fills, ctx.blockTimeMs);
  }
  if (r.status === 'rested') {
    if (losesPriority) meta.seq = ++market.seq;
  } else if (state.orders.has(a.orderId)) {
    forgetOrder(state, a.orderId);
  }
  market.dirty = true;
  return {
    ok: true,
    kind: 'amend',
    order: {
      orderId: a.orderId,
      status: r.status,
      reason: r.reason,
      filledLots: r.filledLots,
      restedLots: r.restedLots,
      cancelledLots: r.cancelledLots,
      fills,
    },
  };
}

/**
 * An amend to a size at or below what the order filled: it may fill no more,
 * so its open rest is cancelled, as a cancel would (Kraken's rule). Its size
 * placed is left as it was: the order is reported cancelled, with its fills.
 */
function endOrder(ctx: Ctx, book: OrderBook, orderId: number, openLots: number): ActionResult {
  book.cancel(orderId);
  forgetOrder(ctx.state, orderId);
  const order = { orderId, filledLots: 0, restedLots: 0, cancelledLots: openLots, fills: [] };
  return { ok: true, kind: 'amend', order: { ...order, status: 'cancelled', reason: null } };
}

function rested(
  orderId: number,
  filledLots: number,
  restedLots: number,
  fills: Fill[],
  reason: 'AuctionTriggered' | null = null,
): ActionResult {
  const order = { orderId, filledLots, restedLots, cancelledLots: 0, fills };
  return { ok: true, kind: 'amend', order: { ...order, status: 'rested', reason } };
}
