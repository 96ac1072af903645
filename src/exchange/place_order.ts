// placeOrder: checks, then hands the order to the book and settles its fills.
// Cost: O(markets) for the margin check + the book's cost
// (O(levels touched + fills)) + O(1) per fill to settle.
//
// Rules (docs/exchange.md, "Orders"):
//  - limit orders need a price; a market order is IOC (or FOK) with a worst
//    price index × (1 ± marketSlippagePpm), tightened by its own price if given;
//  - postOnly is GTC that is rejected (PostOnlyWouldTake) instead of taking;
//  - reduce-only orders never rest: they execute as IOC (FOK stays FOK) with
//    their size clamped to the position they reduce; ReduceOnlyWouldIncrease
//    when there is nothing to reduce on that side;
//  - while the market's index is stale (no oracle quorum for staleAfterMs),
//    or an option has no fresh smile (it keeps its last mark), only
//    reduce-only orders (OracleStale);
//  - circuit breakers (breakers.ts): price band around the mark for limit
//    orders (PriceOutsideBand), open-interest cap (OpenInterestCapExceeded);
//  - volatility auctions (auction/call.ts): matching stops before a price that
//    would breach a price-monitoring trigger and the market enters a call
//    auction; during one, only GTC orders are taken (MarketInAuction), and
//    they wait without trading;
//  - the margin check: the initial margin of the account with every resting
//    order and this one resting in full (worst case per market), plus the
//    immediate loss of trading at the limit price against the mark, must not
//    exceed equity — unless the order does not raise the initial margin;
//  - every fill, closing ones included, is checked by the fill guard
//    (fill_guard.ts): neither side's equity may fall below zero through it.

import { divBig } from '../lib/int.ts';
import { BOOK_ORDERS_MAX } from '../lib/limits.ts';
import type { PlaceOrder as BookPlaceOrder, TimeInForce as BookTif } from './book/index.ts';
import type { Ctx } from './context.ts';
import { ensureAccount, getAccount } from './context.ts';
import type { Rejection } from './errors.ts';
import { haltedMessage, noMarketNamed, reject } from './errors.ts';
import { checkBreakers } from './breakers.ts';
import { ensurePosition, sizeIn } from './position.ts';
import {
  breachFillable,
  breachesAtOnce,
  recordFills,
  restInAuction,
  startAuction,
  stopTicksFor,
} from './auction/call.ts';
import { equityQuoteNum, marginForOrder, marginForOrderNum } from './margin.ts';
import { equityGuard, takerLeftQuote } from './fill_guard.ts';
import { feeTier } from './fees.ts';
import { forgetMatched, rememberOrder, settleFills } from './orders.ts';
import type { ActionResult, Fill } from './results.ts';
import type { EquityGuard } from './fill_guard.ts';
import type { Account, ExchangeState, MarketState } from './state.ts';
import type { PlaceOrder } from './tx/types.ts';
import { PPM_BIG, quoteDecimal } from './units.ts';

interface Checked {
  market: MarketState;
  account: Account;
  priceTicks: number;
  sizeLots: number;
  tif: BookTif;
  postOnly: boolean;
  /** The taker's equity on safe integers, when the margin check took it (else NaN). */
  equityNum: number;
}

/** The worst price of a market order: index moved by the slippage bound, at least one tick. */
export function marketWorstTicks(market: MarketState, buy: boolean): number {
  const index = BigInt(market.indexTicks);
  const slip = BigInt(market.params.marketSlippagePpm);
  const worst = buy
    ? divBig(index * (PPM_BIG + slip), PPM_BIG, 'floor')
    : divBig(index * (PPM_BIG - slip), PPM_BIG, 'ceil');
  return worst < 1n ? 1 : Number(worst);
}

export function checkPlaceOrder(ctx: Ctx, a: PlaceOrder): Checked | Rejection {
  const state = ctx.state;
  const market = state.marketByName.get(a.instrument);
  if (market === undefined) return reject('UnknownInstrument', noMarketNamed(a.instrument));
  const expired = market.listed && market.expiryMs <= ctx.blockTimeMs;
  if (market.halted || expired) return reject('MarketHalted', haltedMessage(a.instrument, expired));
  if (market.markTicks === 0) return reject('NoOraclePrice', a.instrument);
  // Reduce-only orders never rest and only shrink a position: the one kind that cannot add risk.
  if (market.oracleStale && !a.reduceOnly) {
    return reject(
      'OracleStale',
      `${a.instrument}: only reduce-only orders while the index is stale`,
    );
  }
  // An option without a fresh smile (or whose pricing failed) keeps its last
  // mark, and no volatility prices new risk at it: as on a stale index, only
  // orders that reduce.
  if (market.instrument.kind === 'option' && market.optionMark === null && !a.reduceOnly) {
    return reject(
      'OracleStale',
      `${a.instrument}: only reduce-only orders while the option has no fresh smile`,
    );
  }
  const p = market.params;
  const buy = a.side === 'buy';
  if (!Number.isSafeInteger(a.sizeLots) || a.sizeLots <= 0 || a.sizeLots > p.maxSizeLots) {
    return reject('InvalidSize', `size must be 1..${p.maxSizeLots} lots`);
  }
  let sizeLots = a.sizeLots;
  let tif: BookTif;
  let postOnly = false;
  let priceTicks: number;
  if (a.type === 'limit') {
    if (a.priceTicks === undefined || !Number.isSafeInteger(a.priceTicks) || a.priceTicks <= 0) {
      return reject('InvalidPrice', 'a limit order needs a positive price');
    }
    priceTicks = a.priceTicks;
    postOnly = a.timeInForce === 'postOnly';
    tif = a.timeInForce === 'postOnly' ? 'GTC' : a.timeInForce;
  } else {
    if (a.timeInForce === 'GTC' || a.timeInForce === 'postOnly') {
      return reject('InvalidOrder', 'a market order is IOC or FOK');
    }
    tif = a.timeInForce;
    const worst = marketWorstTicks(market, buy);
    priceTicks =
      a.priceTicks === undefined
        ? worst
        : buy
          ? Math.min(worst, a.priceTicks)
          : Math.max(worst, a.priceTicks);
  }
  if (a.goodTilMs !== undefined && (tif !== 'GTC' || a.goodTilMs <= ctx.blockTimeMs)) {
    return reject('InvalidOrder', 'goodTilMs needs a resting order and a time after this block');
  }
  const account = getAccount(ctx);
  if (account === undefined) return reject('InsufficientMargin', 'the account holds no collateral');
  if (a.reduceOnly) {
    if (postOnly) return reject('InvalidOrder', 'a reduce-only order cannot be post-only');
    // It executes as IOC (below) and never rests: a good-til time could never apply.
    if (a.goodTilMs !== undefined) {
      return reject('InvalidOrder', 'a reduce-only order never rests: no good-til time');
    }
    const size = sizeIn(account, market);
    if (size === 0 || size > 0 === buy)
      return reject('ReduceOnlyWouldIncrease', 'nothing to reduce');
    sizeLots = Math.min(sizeLots, Math.abs(size));
    if (tif === 'GTC') tif = 'IOC';
  }
  const inAuction = market.auction !== null && market.auction.active;
  if (inAuction && tif !== 'GTC') {
    return reject('MarketInAuction', `${a.instrument}: only GTC orders during a call auction`);
  }
  if (sizeLots < p.minSizeLots) return reject('BelowMinSize', `minimum ${p.minSizeLots} lots`);
  const clientOrderId = a.clientOrderId ?? '';
  if (clientOrderId !== '' && account.clientOrderIds.has(clientOrderId)) {
    return reject('DuplicateClientOrderId', clientOrderId);
  }
  const book = market.book;
  if (tif === 'GTC' && market.ownerOrderCount(account.index) >= p.openOrdersMax) {
    return reject('TooManyOpenOrders', `at most ${p.openOrdersMax} open orders`);
  }
  // The per-account cap alone leaves a market's books unbounded (enough
  // accounts each at the cap). A snapshot refuses a book past BOOK_ORDERS_MAX,
  // so a book that grew past it would make every snapshot of the chain
  // unrestorable. The auction's books count too: its orders join the book at
  // the uncross.
  if (tif === 'GTC' && market.restingOrderCount() >= BOOK_ORDERS_MAX) {
    return reject('BookFull', `${a.instrument}: ${BOOK_ORDERS_MAX} resting orders already`);
  }
  // Nothing takes during an auction: a post-only order waits like any other.
  if (postOnly && !inAuction) {
    const best = buy ? book.bestAskTicks() : book.bestBidTicks();
    if (best !== undefined && (buy ? best <= priceTicks : best >= priceTicks)) {
      return reject('PostOnlyWouldTake', `would trade at ${best}`);
    }
  }
  const breaker = checkBreakers(
    market,
    sizeIn(account, market),
    buy,
    a.type === 'limit' ? priceTicks : null,
    sizeLots,
    postOnly,
  );
  if (breaker !== null) return reject(breaker.code, breaker.message);
  let equityNum = NaN;
  if (!a.reduceOnly) {
    const awayTicks = buy ? priceTicks - market.markTicks : market.markTicks - priceTicks;
    const buyLots = buy ? sizeLots : 0;
    const sellLots = buy ? 0 : sizeLots;
    const short = marginShortNum(state, account, market, awayTicks, sizeLots, buyLots, sellLots);
    equityNum = shortEquityNum;
    if (short === undefined) {
      const mm = marginForOrder(state, account, market.index, buyLots, sellLots);
      if (mm.after > mm.before) {
        const adverse = awayTicks > 0 ? BigInt(awayTicks) * BigInt(sizeLots) * market.k : 0n;
        if (mm.equity - adverse < mm.after) return insufficientMargin(mm.after);
      }
    } else if (short >= 0) return insufficientMargin(short);
  }
  return { market, account, priceTicks, sizeLots, tif, postOnly, equityNum };
}

function insufficientMargin(afterQuote: bigint | number): Rejection {
  return reject(
    'InsufficientMargin',
    `the initial margin with this order, ${quoteDecimal(afterQuote)} in the quote asset, exceeds the account's equity`,
  );
}

/**
 * The margin check on safe integers (margin.ts): the initial margin after the
 * order when it is refused, −1 when it passes, undefined when a number left
 * the safe integers and the bigint check must decide.
 */
function marginShortNum(
  state: ExchangeState,
  account: Account,
  market: MarketState,
  awayTicks: number,
  sizeLots: number,
  buyLots: number,
  sellLots: number,
): number | undefined {
  const mm = marginForOrderNum(state, account, market.index, buyLots, sellLots);
  shortEquityNum = mm === undefined ? NaN : mm.equity;
  if (mm === undefined) return undefined;
  if (mm.after <= mm.before) return -1;
  if (awayTicks <= 0) return mm.equity < mm.after ? mm.after : -1;
  const adverse = awayTicks * sizeLots * market.kNum;
  const left = mm.equity - adverse;
  if (market.kNum < 0 || adverse > SAFE || left < -SAFE) return undefined;
  return left < mm.after ? mm.after : -1;
}

const SAFE = Number.MAX_SAFE_INTEGER;
/** The equity marginShortNum saw (NaN when it left the safe integers): read right after it. */
let shortEquityNum = NaN;

/** The book's input, filled anew for each order: the book reads it and keeps nothing of it. */
/**
 * The fill guard for a taker's order: the taker itself is checked fill by
 * fill only when its whole order at its limit could take its equity below zero.
 */
function armGuard(
  state: ExchangeState,
  market: MarketState,
  account: Account,
  buy: boolean,
  c: Checked,
): EquityGuard {
  const guard = equityGuard(state);
  const equityNum = c.equityNum === c.equityNum ? c.equityNum : equityQuoteNum(state, account);
  const left = takerLeftQuote(
    state,
    market,
    account,
    buy,
    c.priceTicks,
    c.sizeLots,
    guard.takerPpmMax,
    equityNum,
  );
  const takerPpm = left === null ? 0 : feeTier(state, account).takerFeePpm;
  return guard.arm(market, buy, left, takerPpm);
}

const placing: BookPlaceOrder = {
  orderId: 0,
  owner: 0,
  side: 'buy',
  priceTicks: 0,
  sizeLots: 0,
  timeInForce: 'GTC',
  postOnly: false,
  stp: 'cancelResting',
  goodTilMs: 0,
  stopTicks: 0,
  guard: null,
};

export function placeOrder(ctx: Ctx, a: PlaceOrder): ActionResult {
  const checked = checkPlaceOrder(ctx, a);
  if ('code' in checked) return { ok: false, kind: 'placeOrder', ...checked };
  const { market, priceTicks, sizeLots, tif, postOnly } = checked;
  const state = ctx.state;
  const account = ensureAccount(state, ctx.principal, ctx.subaccount);
  const orderId = state.nextOrderId++;
  if (market.auction !== null && market.auction.active) {
    return placeInAuction(ctx, market, account, orderId, a, checked);
  }
  const stp = a.stp ?? 'cancelResting';
  if (
    !postOnly &&
    breachesAtOnce(market, a.side, priceTicks, ctx.blockTimeMs, account.index, stp)
  ) {
    // Its own orders ahead of that order go, as on the book's path (an
    // amend's too): left, they would trade with it in the uncross. A FOK
    // matches nothing unless it fills.
    if (stp === 'cancelResting' && tif !== 'FOK') {
      market.book.cancelOwnAhead(a.side, account.index, priceTicks);
      forgetMatched(state, market, account, ctx.events);
    }
    return triggered(ctx, market, account, orderId, a, checked, 0, []);
  }
  const book = market.book;
  const o = placing;
  o.orderId = orderId;
  o.owner = account.index;
  o.side = a.side;
  o.priceTicks = priceTicks;
  o.sizeLots = sizeLots;
  o.timeInForce = tif;
  o.postOnly = postOnly;
  o.stp = a.stp;
  o.goodTilMs = a.goodTilMs ?? 0;
  o.stopTicks = market.auction === null ? 0 : stopTicksFor(market, a.side, ctx.blockTimeMs);
  o.guard = postOnly ? null : armGuard(state, market, account, a.side === 'buy', checked);
  const r = book.place(o);
  const fills: Fill[] = [];
  // Self-trade prevention may have removed the account's own resting orders, the guard makers'.
  forgetMatched(state, market, account, ctx.events);
  settleFills(state, market, account, a.side, false, fills);
  if (market.auction !== null) {
    // The auction lasts as long as the triggers the next price breaches
    // against the references this order met: started before its fills are
    // recorded, which before the market's first trade replace the mark as
    // reference (docs/exchange.md, "Volatility auctions").
    const stopped =
      r.reason === 'AuctionTriggered'
        ? triggered(ctx, market, account, orderId, a, checked, r.filledLots, fills)
        : null;
    recordFills(market, book.fills, ctx.blockTimeMs);
    if (stopped !== null) return stopped;
  }
  if (r.status === 'rested') {
    rememberOrder(state, market, account, orderId, a.clientOrderId ?? '', sizeLots);
    // Margin reads a listed market's resting orders through the account's record there.
    if (market.listed) ensurePosition(state, market, account);
  }
  return {
    ok: true,
    kind: 'placeOrder',
    order: {
      orderId,
      status: r.status,
      reason: r.reason,
      filledLots: r.filledLots,
      restedLots: r.restedLots,
      cancelledLots: r.cancelledLots,
      fills,
    },
  };
}

/** Puts `sizeLots` of the order among the auction orders and keeps its record. */
function waitInAuction(
  ctx: Ctx,
  market: MarketState,
  account: Account,
  orderId: number,
  a: PlaceOrder,
  c: Checked,
  sizeLots: number,
): void {
  restInAuction(market, {
    orderId,
    owner: account.index,
    side: a.side,
    priceTicks: c.priceTicks,
    sizeLots,
    goodTilMs: a.goodTilMs ?? 0,
    stp: a.stp ?? 'cancelResting',
    postOnly: c.postOnly,
  });
  rememberOrder(ctx.state, market, account, orderId, a.clientOrderId ?? '', c.sizeLots);
}

/** A GTC order during an auction: it waits among the auction orders, nothing trades. */
function placeInAuction(
  ctx: Ctx,
  market: MarketState,
  account: Account,
  orderId: number,
  a: PlaceOrder,
  c: Checked,
): ActionResult {
  waitInAuction(ctx, market, account, orderId, a, c, c.sizeLots);
  return {
    ok: true,
    kind: 'placeOrder',
    order: {
      orderId,
      status: 'rested',
      reason: null,
      filledLots: 0,
      restedLots: c.sizeLots,
      cancelledLots: 0,
      fills: [],
    },
  };
}

/**
 * The order would have traded beyond a trigger: its fills within the bounds
 * stand. A GTC order starts a call auction and its remainder waits in it. An
 * IOC or FOK remainder is cancelled (IocRemainder, FokUnfillable) and starts
 * nothing, as in Vega: an order that cannot wait would otherwise stop the
 * market at no cost to its sender, again after every auction (against a bid
 * left resting beyond the bounds, say).
 */
function triggered(
  ctx: Ctx,
  market: MarketState,
  account: Account,
  orderId: number,
  a: PlaceOrder,
  c: Checked,
  filledLots: number,
  fills: Fill[],
): ActionResult {
  const leftLots = c.sizeLots - filledLots;
  const rests = c.tif === 'GTC';
  const stp = a.stp ?? 'cancelResting';
  if (rests && !breachFillable(ctx.state, market, a.side, account, stp)) {
    // The trade that would start the auction could not happen: stopped as
    // the fill guard stops a taker (docs/exchange.md, "Volatility auctions").
    return {
      ok: true,
      kind: 'placeOrder',
      order: {
        orderId,
        status: 'cancelled',
        reason: 'InsufficientEquity',
        filledLots,
        restedLots: 0,
        cancelledLots: leftLots,
        fills,
      },
    };
  }
  if (rests) {
    startAuction(
      market,
      a.side,
      ctx.blockTimeMs,
      ctx.events,
      account.index,
      a.stp ?? 'cancelResting',
    );
    waitInAuction(ctx, market, account, orderId, a, c, leftLots);
  }
  return {
    ok: true,
    kind: 'placeOrder',
    order: {
      orderId,
      status: rests ? 'rested' : 'cancelled',
      reason: rests ? 'AuctionTriggered' : c.tif === 'IOC' ? 'IocRemainder' : 'FokUnfillable',
      filledLots,
      restedLots: rests ? leftLots : 0,
      cancelledLots: rests ? 0 : leftLots,
      fills,
    },
  };
}
