// From the exchange's records to the API's JSON views (view.ts), for a node
// implementing NodeView. Only the parts that are the same for every node live
// here; the rest (books, accounts) the node builds from its own state.

import type { ActionResult, TxResult } from '../exchange/index.ts';
import type { ActionResultView, OrderReason, TxView } from './view.ts';

export function actionResultView(a: ActionResult): ActionResultView {
  if (!a.ok) return { kind: a.kind, ok: false, code: a.code, message: a.message };
  const out: ActionResultView = { kind: a.kind, ok: true };
  if (a.order !== undefined) {
    out.orderId = a.order.orderId;
    out.orderStatus = a.order.status;
    // Typed so that a reason the book adds must be added to the API's list too.
    const reason: OrderReason | null = a.order.reason;
    if (reason !== null) out.reason = reason;
    out.filledLots = a.order.filledLots;
    out.restedLots = a.order.restedLots;
    out.cancelledLots = a.order.cancelledLots;
  }
  if (a.count !== undefined) out.count = a.count;
  return out;
}

/**
 * The final view of a transaction in a block. A transaction is rejected when
 * refused as a whole, or when it is a single action and that action was
 * refused (a batch with some refused actions is committed: see `actions`).
 */
export function committedTxView(hash: string, height: number, result: TxResult): TxView {
  const actions = result.actions.map(actionResultView);
  const view: TxView = { hash, status: 'committed', height, index: result.index, actions };
  if (!result.ok) {
    view.status = 'rejected';
    view.code = result.code ?? 'Rejected';
    view.message = result.message ?? view.code;
  } else if (result.actions.length === 1 && !result.actions[0]!.ok) {
    const only = result.actions[0]!;
    view.status = 'rejected';
    if (!only.ok) {
      view.code = only.code;
      view.message = only.message;
    }
  }
  return view;
}

/** A quote amount as its decimal string. */
export function quoteString(amountQuote: bigint): string {
  return amountQuote.toString();
}
