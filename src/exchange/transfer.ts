// transfer: between two subaccounts of one address, from free collateral, by
// the address's own key, and not while withdrawals are paused (withdraw.ts,
// outflowPause: the accounts with negative equity lack more than the
// insurance fund holds), unless it goes to such an account still below zero
// and brings at most what takes it to zero: subaccounts are margined apart,
// and collateral moved out of one whose position deleveraging may close
// beyond the mark would leave that loss uncovered (past the shortfall, a
// transfer into a sibling below zero parks the rest where deleveraging does
// not reach). Nor while the sending subaccount holds a position or rests an
// order in a market whose index is stale, or is short (or offers) an option
// without a fresh smile (withdraw.ts, staleHolding); a transfer into it goes
// on. Cost: O(markets), and what outflowPause looks at once a block.

import { badAmount, noRoomFor, settleDeficit } from './collateral.ts';
import type { Ctx } from './context.ts';
import { ensureAccount, getAccount } from './context.ts';
import { equityQuote, freeCollateralQuote } from './margin.ts';
import type { ActionResult } from './results.ts';
import type { Transfer } from './tx/types.ts';
import { quoteDecimal } from './units.ts';
import { outflowPause, staleHolding, unresolvedAccount } from './withdraw.ts';

export function transfer(ctx: Ctx, a: Transfer): ActionResult {
  const state = ctx.state;
  if (!ctx.isMaster) {
    return { ok: false, kind: 'transfer', code: 'NotPermitted', message: 'agents cannot transfer' };
  }
  if (badAmount(a.amountQuote) || a.fromSubaccount === a.toSubaccount) {
    return {
      ok: false,
      kind: 'transfer',
      code: 'InvalidAmount',
      message: 'a positive amount between two different subaccounts',
    };
  }
  const from = getAccount(ctx, a.fromSubaccount);
  const destination = getAccount(ctx, a.toSubaccount);
  const paused = outflowPause(state);
  if (paused !== null) {
    // Equity at the block's marks, not the memo's amount: a fill of the block
    // that gained may have lifted a named account (the memo sees only cash
    // coming in).
    const shortfall =
      destination !== undefined && unresolvedAccount(state, destination)
        ? -equityQuote(state, destination)
        : 0n;
    if (a.amountQuote > shortfall) {
      const message =
        shortfall > 0n
          ? `${paused}; into an account below zero, at most its shortfall, ${quoteDecimal(shortfall)} in the quote asset`
          : paused;
      return { ok: false, kind: 'transfer', code: 'TransfersPaused', message };
    }
  }
  const stale = from === undefined ? undefined : staleHolding(state, from);
  if (stale !== undefined) {
    return { ok: false, kind: 'transfer', code: 'OracleStale', message: stale };
  }
  if (from === undefined || freeCollateralQuote(state, from) < a.amountQuote) {
    return {
      ok: false,
      kind: 'transfer',
      code: 'InsufficientFunds',
      message: 'free collateral too low',
    };
  }
  if (noRoomFor(state, ctx.principal, a.toSubaccount)) {
    return {
      ok: false,
      kind: 'transfer',
      code: 'TooManyAccounts',
      message: 'the account table is full',
    };
  }
  const to = ensureAccount(state, ctx.principal, a.toSubaccount);
  from.cashQuote -= a.amountQuote;
  to.cashQuote += a.amountQuote;
  state.markAccount(from);
  state.markAccount(to);
  settleDeficit(state, to);
  return { ok: true, kind: 'transfer' };
}
