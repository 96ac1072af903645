// Volatility auctions in the state machine (docs/exchange.md, "Volatility
// auctions"), after Vega's price-monitoring auctions:
//  - continuous trading: a taker's matching stops before the first price
//    that would breach a trigger (stopTicksFor → the book's stopTicks), so a
//    breaching trade never happens and the book never holds crossed orders;
//    fills within the bounds stand and are recorded (recordFills). When the
//    book reports 'AuctionTriggered' the market enters a call auction
//    (startAuction) and a GTC remainder waits among the auction orders,
//    unless its owner could not take one lot at that price without going
//    below zero equity (breachFillable): then it ends as the fill guard ends
//    a taker, InsufficientEquity, and nothing starts;
//  - during the auction, GTC (and post-only) orders wait in the one-sided
//    books of call_state.ts with their time priority (OrderMeta.seq); cancels
//    and amends work; nothing trades;
//  - at the first block at or after its end (its market neither halted nor
//    its index stale: exchange.ts), every crossing order trades at
//    one price (uncross.ts: the largest volume, then the smallest imbalance,
//    then the closest to the last price), the fills settle through
//    applyTrade with fees, what is left rests in the market's book (it cannot
//    cross: see docs), and continuous trading resumes (uncrossAuction). An
//    order whose fill would take its owner below zero equity is cancelled
//    first and the uncross computed again (insolventOrders); after
//    AUCTION_UNCROSS_ROUNDS_MAX such rounds, every order is screened at its
//    own limit price instead (limitExposures), which needs no more rounds.
//    Then, with an open-interest cap, the fill that would raise open interest
//    above it cancels the later of its two orders (overCapOrder) and the
//    uncross is computed again; past the rounds, every order that could open
//    a position is cancelled instead (openingOrders).
// Costs: stopTicksFor O(triggers); recordFills O(triggers) per fill;
// uncrossAuction O(n log n) for the n orders of both books, once more per
// round of cancelled orders, at most AUCTION_UNCROSS_ROUNDS_MAX + 2 times
// (+ 3 with an open-interest cap: the last screen at limit prices changes the
// fills, and one more round may then cancel the orders that could open).

import { divBig, divFloor } from '../../lib/int.ts';
import { AUCTION_UNCROSS_ROUNDS_MAX } from '../../lib/limits.ts';
import type { FillList, OrderBook, RestingOrder, Side, StpMode } from '../book/index.ts';
import { STOP_AT_ONCE } from '../book/index.ts';
import { feeTier, takerFeeQuote } from '../fees.ts';
import { forgetOrder, forgetRemoved } from '../orders.ts';
import { equityGuard, takerCanFill } from '../fill_guard.ts';
import { equityQuote } from '../margin.ts';
import { openingLots } from '../breakers.ts';
import { applyTrade, sizeIn } from '../position.ts';
import type { ExchangeEvent } from '../results.ts';
import type { Account, ExchangeState, MarketState } from '../state.ts';
import { notionalQuote, ppmCeil } from '../units.ts';
import type { CallAuction } from './call_state.ts';
import { endAuction, enterAuction, onTrade, triggerBounds } from './monitor.ts';
import type { AuctionOrder, UncrossResult } from './uncross.ts';
import { uncross } from './uncross.ts';

const SAFE = Number.MAX_SAFE_INTEGER;

/**
 * Trigger i's reference for a trade now (as monitor.ts's breachAuctionMs):
 * its window's, or the last price once the window has run out; before the
 * market's first trade, `fallbackTicks` (the mark), so the first trade is
 * bounded too.
 */
function referenceTicks(a: CallAuction, i: number, nowMs: number, fallbackTicks: number): number {
  const s = a.monitor.triggers[i]!;
  const expired = nowMs - s.windowStartMs >= a.triggers[i]!.horizonMs;
  const ref = expired || s.referenceTicks === 0 ? a.monitor.lastPriceTicks : s.referenceTicks;
  return ref === 0 ? fallbackTicks : ref;
}

/** reference ± floor(reference × bps / 10^4), as triggerBounds, without bigint when the product is safe. */
function bounds(referenceTicks: number, maxMoveBps: number): [number, number] {
  const product = referenceTicks * maxMoveBps;
  if (product > SAFE) return triggerBounds(referenceTicks, maxMoveBps);
  const d = divFloor(product, 10_000);
  return [referenceTicks - d, referenceTicks + d];
}

/**
 * The highest (`high`) or lowest price a trade may have now without
 * breaching any trigger. One bound at a time, as number: it runs for every
 * order that may take (stopTicksFor, breachesAtOnce), where a [lo, hi] pair
 * and bounds()'s pairs were garbage at once.
 */
function tradeBound(a: CallAuction, nowMs: number, fallbackTicks: number, high: boolean): number {
  let bound = high ? SAFE : 1;
  for (let i = 0; i < a.triggers.length; i++) {
    const ref = referenceTicks(a, i, nowMs, fallbackTicks);
    if (ref === 0) continue;
    const maxMoveBps = a.triggers[i]!.maxMoveBps;
    const product = ref * maxMoveBps;
    // As bounds(): ref ± floor(ref × bps / 10^4), through bigint beyond the safe integers.
    const b =
      product > SAFE
        ? triggerBounds(ref, maxMoveBps)[high ? 1 : 0]
        : high
          ? ref + divFloor(product, 10_000)
          : ref - divFloor(product, 10_000);
    if (high ? b < bound : b > bound) bound = b;
  }
  return bound;
}

/** The auction length a trade at priceTicks would start: the longest among the triggers it breaches, 0 if none. */
export function breachMs(
  a: CallAuction,
  priceTicks: number,
  nowMs: number,
  fallbackTicks: number,
): number {
  let auctionMs = 0;
  for (let i = 0; i < a.triggers.length; i++) {
    const ref = referenceTicks(a, i, nowMs, fallbackTicks);
    if (ref === 0) continue;
    const t = a.triggers[i]!;
    const [lo, hi] = bounds(ref, t.maxMoveBps);
    if ((priceTicks < lo || priceTicks > hi) && t.auctionMs > auctionMs) auctionMs = t.auctionMs;
  }
  return auctionMs;
}

/** The book's stopTicks for a taker on `side` now: 0 (none) without triggers. */
export function stopTicksFor(market: MarketState, side: Side, nowMs: number): number {
  const a = market.auction;
  if (a === null) return 0;
  return tradeBound(a, nowMs, market.markTicks, side === 'buy');
}

/**
 * A taker on `side` up to limitTicks would first trade with an opposite order
 * at a price beyond the far bound (a bid above the range for a seller, an ask
 * below it for a buyer): stopTicksFor bounds only the near side, and such an
 * order can rest there (nothing to take when it came, or the range moved
 * since). Bids descend and asks ascend, so the first order it would trade
 * with decides: another account's, past the taker's own under its STP mode
 * (book.firstOtherTicks), since it never trades with those.
 */
export function breachesAtOnce(
  market: MarketState,
  side: Side,
  limitTicks: number,
  nowMs: number,
  owner: number,
  stp: StpMode,
): boolean {
  const a = market.auction;
  if (a === null) return false;
  const first = market.book.firstOtherTicks(side, owner, limitTicks, stp);
  if (first === undefined) return false;
  return side === 'buy'
    ? first < tradeBound(a, nowMs, market.markTicks, false)
    : first > tradeBound(a, nowMs, market.markTicks, true);
}

/**
 * The stop for a taker on `side` up to limitTicks (the book's stopTicks): the
 * near bound of the triggers, or, when its first trade would be with an order
 * beyond the far bound (breachesAtOnce), STOP_AT_ONCE, so nothing trades and
 * the book answers AuctionTriggered (a price just before that order would not
 * do: an ask at 1 tick or a bid at PRICE_TICKS_MAX has none). 0 (no stop)
 * without triggers.
 */
export function takerStopTicks(
  market: MarketState,
  side: Side,
  limitTicks: number,
  nowMs: number,
  owner: number,
  stp: StpMode,
): number {
  if (market.auction === null) return 0;
  if (!breachesAtOnce(market, side, limitTicks, nowMs, owner, stp)) {
    return stopTicksFor(market, side, nowMs);
  }
  return STOP_AT_ONCE;
}

/** Records the fills of the book's last operation (each within every trigger's bounds). */
export function recordFills(market: MarketState, fills: FillList, nowMs: number): void {
  const a = market.auction;
  if (a === null || fills.length === 0) return;
  for (let i = 0; i < fills.length; i++)
    onTrade(a.monitor, a.triggers, fills.priceTicks[i]!, nowMs);
  market.dirty = true;
}

/**
 * Whether the trade that stopped a taker on `side` (of `account`, with its STP
 * mode) could have happened: one lot at the first other account's price
 * beyond the bounds, the trade that did not happen, leaves the taker's
 * equity (its fills of this order settled) at zero or above, its tier's fee
 * included — the rule of every fill (fill_guard.ts). An order that fails it
 * would have been stopped there by the fill guard without price monitoring
 * (InsufficientEquity), and would be cancelled by the uncross's equity
 * screen at that price: it starts no auction. One lot, the least a fill can
 * be: only an order that surely could not trade there is held back. Nothing
 * to meet (no such order): true. O(markets), only when a trigger fires.
 */
export function breachFillable(
  state: ExchangeState,
  market: MarketState,
  side: Side,
  account: Account,
  stp: StpMode,
): boolean {
  const anyTicks = side === 'buy' ? SAFE : 1;
  const breachTicks = market.book.firstOtherTicks(side, account.index, anyTicks, stp);
  if (breachTicks === undefined) return true;
  const fee = feeTier(state, account).takerFeePpm;
  return takerCanFill(state, market, account, side === 'buy', breachTicks, 1, fee);
}

/**
 * Enters a call auction after the book stopped a taker on `side` (of `owner`,
 * with its STP mode) before a breaching price: the first opposite order of
 * another account is the trade that did not happen, and the auction lasts as
 * long as the longest trigger it breaches.
 */
export function startAuction(
  market: MarketState,
  side: Side,
  nowMs: number,
  events: ExchangeEvent[],
  owner: number,
  stp: StpMode,
): void {
  const a = market.auction!;
  const anyTicks = side === 'buy' ? SAFE : 1;
  const breachTicks = market.book.firstOtherTicks(side, owner, anyTicks, stp) ?? 0;
  let auctionMs = breachMs(a, breachTicks, nowMs, market.markTicks);
  // The book stops only before a price beyond tradeBound, which breaches a trigger.
  if (auctionMs === 0) for (const t of a.triggers) auctionMs = Math.max(auctionMs, t.auctionMs);
  enterAuction(a.monitor, auctionMs, nowMs);
  market.dirty = true;
  events.push({
    type: 'auctionStarted',
    market: market.params.instrument,
    priceTicks: breachTicks,
    endMs: a.monitor.auctionEndMs,
  });
}

/** Puts an order among the auction orders of its side (it keeps its id; its seq says its priority). */
export function restInAuction(market: MarketState, order: RestingOrder): void {
  market.auction!.bookOf(order.side).insert(order);
}

/** The book that holds a resting order of this market: its own or an auction book; undefined if none. */
export function bookHolding(market: MarketState, orderId: number): OrderBook | undefined {
  if (market.book.order(orderId) !== undefined) return market.book;
  const a = market.auction;
  if (a === null || !a.active) return undefined;
  if (a.bids.order(orderId) !== undefined) return a.bids;
  if (a.asks.order(orderId) !== undefined) return a.asks;
  return undefined;
}

/** A copy of a resting order (the book reuses its records once an order leaves). */
export function copyOrder(o: RestingOrder): RestingOrder {
  return {
    orderId: o.orderId,
    owner: o.owner,
    side: o.side,
    priceTicks: o.priceTicks,
    sizeLots: o.sizeLots,
    goodTilMs: o.goodTilMs,
    stp: o.stp,
    postOnly: o.postOnly,
  };
}

/**
 * Amends an order during an auction without trading: a smaller size at the
 * same price keeps its place; otherwise the order moves to the back of its
 * new price among the auction orders. Returns whether it lost its priority.
 */
export function amendInAuction(
  market: MarketState,
  orderId: number,
  priceTicks: number,
  sizeLots: number,
): boolean {
  const book = bookHolding(market, orderId)!;
  const o = book.order(orderId)!;
  if (priceTicks === o.priceTicks && sizeLots <= o.sizeLots) {
    book.amend(orderId, priceTicks, sizeLots);
    return false;
  }
  const moved = { ...copyOrder(o), priceTicks, sizeLots };
  book.cancel(orderId);
  restInAuction(market, moved);
  return true;
}

/** Cancels every auction order of an owner; returns how many. */
export function cancelAllInAuction(
  state: ExchangeState,
  market: MarketState,
  owner: number,
): number {
  const a = market.auction;
  if (a === null || !a.active) return 0;
  let count = 0;
  for (const book of [a.bids, a.asks]) {
    count += book.cancelAll(owner);
    forgetRemoved(state, book);
  }
  return count;
}

/** An auction fill's fee for each side: half the taker fee of its tier, rounded up (no side took). */
export function auctionFeeQuote(
  state: ExchangeState,
  account: Parameters<typeof feeTier>[1],
  notional: bigint,
): bigint {
  return divBig(takerFeeQuote(feeTier(state, account), notional), 2n, 'ceil');
}

function auctionOrders(state: ExchangeState, market: MarketState, side: Side): AuctionOrder[] {
  const out: AuctionOrder[] = [];
  for (const book of [market.book, market.auction!.bookOf(side)]) {
    for (const o of book.ordersOf(side)) {
      const seq = state.orders.get(o.orderId)!.seq;
      out.push({ orderId: o.orderId, priceTicks: o.priceTicks, sizeLots: o.sizeLots, seq });
    }
  }
  return out;
}

/** A possible fill of an auction order: `lots` bought (buys) or sold at `priceTicks`. */
interface Exposure {
  readonly orderId: number;
  readonly buys: boolean;
  readonly lots: number;
  readonly priceTicks: number;
}

/**
 * The orders among `exposures` whose fill would take their owner's equity
 * below zero at the block's marks (the rule of every fill, fill_guard.ts), in
 * the order given. An owner's losses over its fills add up; a fill that gains
 * against the mark more than its fee lowers nothing and passes. The fee is
 * counted at half the highest taker fee of the tiers, an upper bound (an
 * owner's tier may move with its earlier fills). O(exposures + owners × markets).
 */
function insolventOrders(
  state: ExchangeState,
  market: MarketState,
  exposures: readonly Exposure[],
): number[] {
  const takerPpm = equityGuard(state).takerPpmMax;
  const left = new Map<Account, bigint>();
  const out: number[] = [];
  const cancelled = new Set<number>();
  for (const { orderId, buys, lots, priceTicks } of exposures) {
    if (cancelled.has(orderId)) continue;
    const account = state.orders.get(orderId)!.account;
    const awayTicks = buys ? priceTicks - market.markTicks : market.markTicks - priceTicks;
    const fee = divBig(ppmCeil(notionalQuote(priceTicks, lots, market.k), takerPpm), 2n, 'ceil');
    const loss = BigInt(awayTicks) * BigInt(lots) * market.k + fee;
    if (loss <= 0n) continue;
    const equity = (left.get(account) ?? equityQuote(state, account)) - loss;
    if (equity >= 0n) left.set(account, equity);
    else {
      cancelled.add(orderId);
      out.push(orderId);
    }
  }
  return out;
}

/** Both sides of every fill of an uncross, at its price. */
function uncrossExposures(result: UncrossResult): Exposure[] {
  const out: Exposure[] = [];
  for (const f of result.fills) {
    out.push({
      orderId: f.buyOrderId,
      buys: true,
      lots: f.sizeLots,
      priceTicks: result.priceTicks,
    });
    out.push({
      orderId: f.sellOrderId,
      buys: false,
      lots: f.sizeLots,
      priceTicks: result.priceTicks,
    });
  }
  return out;
}

/**
 * Every auction order as if it filled whole at its own limit price: the worst
 * any uncross can do to its owner (a buy fills at or below its limit, a sell
 * at or above; a sell's larger fee there is less than its smaller loss). An
 * uncross of the orders this leaves cannot take an owner below zero.
 */
function limitExposures(state: ExchangeState, market: MarketState): Exposure[] {
  const out: Exposure[] = [];
  for (const side of ['buy', 'sell'] as const) {
    for (const o of auctionOrders(state, market, side)) {
      out.push({
        orderId: o.orderId,
        buys: side === 'buy',
        lots: o.sizeLots,
        priceTicks: o.priceTicks,
      });
    }
  }
  return out;
}

/**
 * The order to cancel so that the uncross does not raise open interest above
 * the market's cap (breakers.ts), or null if it does not. The orders waiting
 * in an auction were each checked against open interest when they came, as
 * if they alone would trade (post-only ones not at all), and nobody takes in
 * the uncross, so they may add up beyond the cap. The fills are walked in
 * allocation order with each owner's position as it would be; at the first
 * that raises open interest and leaves it above the cap, the later of its two
 * orders (by seq: the one that would have taken, in continuous trading) goes.
 * O(fills).
 */
function overCapOrder(
  state: ExchangeState,
  market: MarketState,
  result: UncrossResult,
): number | null {
  const cap = market.params.openInterestCapLots;
  if (cap === undefined) return null;
  const sizes = new Map<Account, number>();
  let openInterest = market.longLots;
  const move = (account: Account, lots: number): void => {
    const before = sizes.get(account) ?? sizeIn(account, market);
    const after = before + lots;
    openInterest += Math.max(0, after) - Math.max(0, before);
    sizes.set(account, after);
  };
  for (const f of result.fills) {
    const buy = state.orders.get(f.buyOrderId)!;
    const sell = state.orders.get(f.sellOrderId)!;
    const before = openInterest;
    move(buy.account, f.sizeLots);
    move(sell.account, -f.sizeLots);
    if (openInterest > before && openInterest > cap) {
      return buy.seq > sell.seq ? f.buyOrderId : f.sellOrderId;
    }
  }
  return null;
}

/**
 * Every auction order that could open its owner's position (its size, with
 * the owner's orders ahead of it on its side, beyond what closes the
 * position): what is left only closes, and a trade between orders that only
 * close cannot raise open interest. The cap's screen past the rounds' bound.
 * O(n log n).
 */
function openingOrders(state: ExchangeState, market: MarketState): number[] {
  const out: number[] = [];
  for (const side of ['buy', 'sell'] as const) {
    const ahead = new Map<Account, number>();
    const orders = auctionOrders(state, market, side).sort((x, y) => x.seq - y.seq);
    for (const o of orders) {
      const account = state.orders.get(o.orderId)!.account;
      const lots = (ahead.get(account) ?? 0) + o.sizeLots;
      ahead.set(account, lots);
      if (openingLots(sizeIn(account, market), side === 'buy', lots) > 0) out.push(o.orderId);
    }
  }
  return out;
}

/** Takes `lots` off an order that traded in the uncross; a filled order leaves its book. */
function fillOrder(state: ExchangeState, market: MarketState, orderId: number, lots: number): void {
  const book = bookHolding(market, orderId)!;
  const o = book.order(orderId)!;
  if (lots === o.sizeLots) {
    book.cancel(orderId);
    forgetOrder(state, orderId);
  } else {
    book.amend(orderId, o.priceTicks, o.sizeLots - lots);
  }
}

/**
 * Ends the market's auction: uncrosses its book and auction orders, settles
 * the fills, rests what is left in the book, resumes continuous trading.
 */
export function uncrossAuction(
  state: ExchangeState,
  market: MarketState,
  nowMs: number,
  events: ExchangeEvent[],
  roundsMax = AUCTION_UNCROSS_ROUNDS_MAX,
): void {
  const a = market.auction!;
  const instrument = market.params.instrument;
  const referenceTicks =
    a.monitor.lastPriceTicks !== 0 ? a.monitor.lastPriceTicks : market.markTicks;
  // An order whose fill would take its owner below zero equity is cancelled
  // and the uncross computed again without it (a fill skipped in allocation
  // could leave crossed orders behind): each round removes at least one order.
  // So is the later order of a fill that would raise open interest above the
  // cap. Past roundsMax, the screens at limit prices and of every order that
  // could open a position settle both in one more round.
  let result: UncrossResult | null;
  for (let round = 0; ; round++) {
    result = uncross(
      auctionOrders(state, market, 'buy'),
      auctionOrders(state, market, 'sell'),
      referenceTicks,
    );
    if (result === null) break;
    let cancelled: number[];
    if (round < roundsMax) {
      cancelled = insolventOrders(state, market, uncrossExposures(result));
      if (cancelled.length === 0) {
        const overCap = overCapOrder(state, market, result);
        if (overCap !== null) cancelled = [overCap];
      }
    } else {
      // Both screens at once, each settling its rule for whatever is left:
      // one more round at most.
      cancelled = insolventOrders(state, market, limitExposures(state, market));
      if (overCapOrder(state, market, result) !== null) {
        const gone = new Set(cancelled);
        for (const orderId of openingOrders(state, market))
          if (!gone.has(orderId)) cancelled.push(orderId);
      }
    }
    if (cancelled.length === 0) break;
    for (const orderId of cancelled) {
      bookHolding(market, orderId)!.cancel(orderId);
      const meta = forgetOrder(state, orderId);
      events.push({
        type: 'makerCancelled',
        market: instrument,
        orderId,
        account: meta.account.index,
      });
    }
  }
  const priceTicks = result?.priceTicks ?? 0;
  for (const f of result?.fills ?? []) {
    const buyer = state.orders.get(f.buyOrderId)!.account;
    const seller = state.orders.get(f.sellOrderId)!.account;
    applyTrade(state, market, buyer, f.sizeLots, priceTicks);
    applyTrade(state, market, seller, -f.sizeLots, priceTicks);
    const notional = notionalQuote(priceTicks, f.sizeLots, market.k);
    const buyFee = auctionFeeQuote(state, buyer, notional);
    const sellFee = auctionFeeQuote(state, seller, notional);
    buyer.cashQuote -= buyFee;
    seller.cashQuote -= sellFee;
    state.feePoolQuote += buyFee + sellFee;
    buyer.volumeQuote += notional;
    seller.volumeQuote += notional;
    fillOrder(state, market, f.buyOrderId, f.sizeLots);
    fillOrder(state, market, f.sellOrderId, f.sizeLots);
    market.tradeCount++;
    events.push({
      type: 'auctionTrade',
      market: instrument,
      buyOrderId: f.buyOrderId,
      sellOrderId: f.sellOrderId,
      buyAccount: buyer.index,
      sellAccount: seller.index,
      priceTicks,
      sizeLots: f.sizeLots,
      buyFeeQuote: buyFee,
      sellFeeQuote: sellFee,
    });
  }
  // What is left does not cross (docs/exchange.md): it rests in the book,
  // later arrivals behind earlier ones.
  const left: RestingOrder[] = [];
  for (const side of ['buy', 'sell'] as const) {
    for (const o of a.bookOf(side).ordersOf(side)) left.push(copyOrder(o));
  }
  left.sort((x, y) => state.orders.get(x.orderId)!.seq - state.orders.get(y.orderId)!.seq);
  for (const o of left) {
    a.bookOf(o.side).cancel(o.orderId);
    market.book.insert(o);
  }
  endAuction(a.monitor, priceTicks, nowMs);
  // Positions moved: the holders are looked at by this block's liquidation scan.
  market.liquidationBacklog = true;
  market.dirty = true;
  events.push({
    type: 'auctionEnded',
    market: instrument,
    priceTicks,
    volumeLots: result?.volumeLots ?? 0,
  });
}
