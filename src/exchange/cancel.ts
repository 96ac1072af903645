// cancel and cancelAll. Cancels are allowed on halted markets and during
// auctions, and need no margin. Cost: cancel O(1) (+ the book's level bookkeeping); cancelAll O(k)
// for k orders removed, over one market or all of them.

import { bookHolding, cancelAllInAuction } from './auction/call.ts';
import type { Ctx } from './context.ts';
import { getAccount } from './context.ts';
import { forgetOrder, forgetRemoved } from './orders.ts';
import type { ActionResult } from './results.ts';
import type { Cancel, CancelAll } from './tx/types.ts';
import { noMarketNamed } from './errors.ts';

export function cancel(ctx: Ctx, a: Cancel): ActionResult {
  const state = ctx.state;
  const market = state.marketByName.get(a.instrument);
  if (market === undefined) {
    return {
      ok: false,
      kind: 'cancel',
      code: 'UnknownInstrument',
      message: noMarketNamed(a.instrument),
    };
  }
  const account = getAccount(ctx);
  const orderId =
    a.orderId !== undefined ? a.orderId : account?.clientOrderIds.get(a.clientOrderId);
  const meta = orderId === undefined ? undefined : state.orders.get(orderId);
  if (meta === undefined || meta.account !== account || meta.market !== market.index) {
    return { ok: false, kind: 'cancel', code: 'UnknownOrder', message: 'no such open order' };
  }
  // During an auction the order may wait among the auction orders instead.
  if (!market.book.cancel(meta.orderId)) bookHolding(market, meta.orderId)!.cancel(meta.orderId);
  forgetOrder(state, meta.orderId);
  return { ok: true, kind: 'cancel', count: 1 };
}

export function cancelAll(ctx: Ctx, a: CancelAll): ActionResult {
  const state = ctx.state;
  let markets = state.markets;
  if (a.instrument !== undefined) {
    const market = state.marketByName.get(a.instrument);
    if (market === undefined) {
      return {
        ok: false,
        kind: 'cancelAll',
        code: 'UnknownInstrument',
        message: noMarketNamed(a.instrument),
      };
    }
    markets = [market];
  }
  const account = getAccount(ctx);
  let count = 0;
  if (account !== undefined) {
    for (const market of markets) {
      count += market.book.cancelAll(account.index);
      forgetRemoved(state, market.book);
      if (market.auction !== null) count += cancelAllInAuction(state, market, account.index);
    }
  }
  return { ok: true, kind: 'cancelAll', count };
}
