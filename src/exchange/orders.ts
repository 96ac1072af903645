// Bookkeeping shared by every operation that touches the book: settling the
// fills of the last book operation, forgetting orders that left the book, and
// recording an order that came to rest. Cost: O(1) per fill or removed order.

import { AssertionError, assert } from '../lib/assert.ts';
import type { OrderBook, Side } from './book/index.ts';
import {
  feeTier,
  makerFeeQuote,
  makerFeeQuoteNum,
  takerFeeQuote,
  takerFeeQuoteNum,
} from './fees.ts';
import { applyTrade } from './position.ts';
import type { ExchangeEvent, Fill } from './results.ts';
import type { Account, ExchangeState, MarketState, OrderMeta } from './state.ts';
import { notionalQuote } from './units.ts';

/** The order left the book (filled, cancelled, expired): drop its record. */
export function forgetOrder(state: ExchangeState, orderId: number): OrderMeta {
  const meta = state.orders.get(orderId);
  // Tested before formatting: assert(…, `${orderId}`) would build the message on every call.
  if (meta === undefined) throw new AssertionError(`no record of order ${orderId}`);
  state.orders.delete(orderId);
  if (meta.clientOrderId !== '') meta.account.clientOrderIds.delete(meta.clientOrderId);
  if (meta.leaf !== null) state.goneLeafSlots.push(meta.leaf);
  return meta;
}

export function rememberOrder(
  state: ExchangeState,
  market: MarketState,
  account: Account,
  orderId: number,
  clientOrderId: string,
  placedLots: number,
): void {
  const meta: OrderMeta = {
    orderId,
    market: market.index,
    account,
    clientOrderId,
    seq: ++market.seq,
    placedLots,
    leaf: null,
  };
  state.orders.set(orderId, meta);
  if (clientOrderId !== '') account.clientOrderIds.set(clientOrderId, orderId);
  market.dirty = true;
}

/** Forgets every order the book listed in `removed` (self-trade prevention, cancelAll, expiry). */
export function forgetRemoved(state: ExchangeState, book: OrderBook): void {
  const removed = book.removed;
  for (let i = 0; i < removed.length; i++) forgetOrder(state, removed.orderId[i]!);
}

/**
 * After a taker's matching: forgets the orders it removed, and reports those
 * of other accounts (the fill guard cancelled them: their fill would have
 * left their account below zero equity; the taker's own are self-trade
 * prevention's) as makerCancelled.
 */
export function forgetMatched(
  state: ExchangeState,
  market: MarketState,
  taker: Account,
  events: ExchangeEvent[],
): void {
  const removed = market.book.removed;
  for (let i = 0; i < removed.length; i++) {
    const meta = forgetOrder(state, removed.orderId[i]!);
    if (meta.account === taker) continue;
    events.push({
      type: 'makerCancelled',
      market: market.params.instrument,
      orderId: meta.orderId,
      account: meta.account.index,
    });
  }
}

/**
 * Settles the fills of the book's last operation for a taker: positions and
 * cash at the maker's price, fees to the fee pool, volumes for fee tiers.
 * With `liquidation`, the taker pays no trading fee and a maker no rebate
 * (the liquidation fee is charged by the caller).
 */
export function settleFills(
  state: ExchangeState,
  market: MarketState,
  taker: Account,
  side: Side,
  liquidation: boolean,
  out: Fill[] | null,
): number {
  const fills = market.book.fills;
  const takerTier = feeTier(state, taker);
  const kNum = market.kNum;
  let filled = 0;
  market.tradeCount += fills.length;
  for (let i = 0; i < fills.length; i++) {
    const maker = state.accounts[fills.makerOwner[i]!]!;
    const priceTicks = fills.priceTicks[i]!;
    const sizeLots = fills.sizeLots[i]!;
    filled += sizeLots;
    const signed = side === 'buy' ? sizeLots : -sizeLots;
    applyTrade(state, market, taker, signed, priceTicks);
    applyTrade(state, market, maker, -signed, priceTicks);
    const makerTier = feeTier(state, maker);
    // Safe integers first (margin.ts, "Safe integers"); the bigint path decides otherwise.
    const notionalNum = priceTicks * sizeLots * kNum;
    const safe = kNum >= 0 && Number.isSafeInteger(notionalNum);
    const takerNum = safe ? takerFeeQuoteNum(takerTier, notionalNum) : undefined;
    const makerNum = takerNum !== undefined ? makerFeeQuoteNum(makerTier, notionalNum) : undefined;
    let takerFee: bigint;
    let makerFee: bigint;
    if (makerNum !== undefined) {
      // On the accounts' numbers (state.ts, moneyNum): no bigint is kept.
      const takerFeeNum = liquidation ? 0 : takerNum!;
      const makerFeeNum = liquidation && makerNum < 0 ? 0 : makerNum;
      assert(takerFeeNum + makerFeeNum >= 0, 'a rebate exceeds the taker fee of its fill');
      takerFee = BigInt(takerFeeNum);
      makerFee = BigInt(makerFeeNum);
      taker.addCash(-takerFeeNum);
      maker.addCash(-makerFeeNum);
      taker.addVolume(notionalNum);
      maker.addVolume(notionalNum);
    } else {
      const notional = notionalQuote(priceTicks, sizeLots, market.k);
      takerFee = liquidation ? 0n : takerFeeQuote(takerTier, notional);
      makerFee = makerFeeQuote(makerTier, notional);
      if (liquidation && makerFee < 0n) makerFee = 0n;
      assert(takerFee + makerFee >= 0n, 'a rebate exceeds the taker fee of its fill');
      taker.cashQuote -= takerFee;
      maker.cashQuote -= makerFee;
      taker.volumeQuote += notional;
      maker.volumeQuote += notional;
    }
    state.feePoolQuote += takerFee + makerFee;
    const makerOrderId = fills.makerOrderId[i]!;
    if (fills.makerDone[i]!) forgetOrder(state, makerOrderId);
    if (out !== null) {
      out.push({
        makerOrderId,
        makerAccount: maker.index,
        priceTicks,
        sizeLots,
        takerFeeQuote: takerFee,
        makerFeeQuote: makerFee,
      });
    }
  }
  return filled;
}
