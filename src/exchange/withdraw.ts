// withdraw: from free collateral only (equity − initial margin with resting
// orders), by the address's own key, and never while an account with negative
// equity is unresolved (the loss it leaves is not yet covered): a deficit (no
// position left), an account still holding positions below zero equity at
// the end of the last block (one in a halted or stale market cannot be
// liquidated yet, and the unrealized profit of its counterparties is not
// backed until it is), or an account below zero at this block's own marks:
// the block moves its marks before its transactions and liquidates after
// them, and a counterparty withdrawing its profit in between would escape the
// deleveraging that covers the loss when the insurance fund is short.
// Transfers out of a subaccount are paused alike (transfer.ts).
// Cost: O(markets); the block's first withdrawal past the other checks also
// looks at the accounts the block changed and at the holders of the markets
// whose mark moved (liquidation.ts, belowZeroAtMarks), once per block; later
// ones re-check the accounts it found only until one is still below zero
// (anyStillBelowZero: each account found is dropped at most once).

import { badAmount } from './collateral.ts';
import type { Ctx } from './context.ts';
import { getAccount } from './context.ts';
import { anyStillBelowZero, belowZeroAtMarks } from './liquidation.ts';
import { freeCollateralQuote } from './margin.ts';
import type { ActionResult } from './results.ts';
import type { Account, ExchangeState } from './state.ts';
import type { Withdraw } from './tx/types.ts';

/**
 * Why collateral may not leave an account now (a withdrawal, a transfer to
 * another subaccount), or null: an account with negative equity is
 * unresolved, whose loss the deleveraging of its counterparties may have to
 * cover. Changes no state.
 */
export function outflowPause(state: ExchangeState): string | null {
  const unresolved = state.deficits.size + state.underwater.size;
  if (unresolved > 0) return `${unresolved} account(s) with negative equity unresolved`;
  // Memo of the block, not state: the same transactions give every node the same answer.
  let paused: boolean;
  if (state.belowZeroHeight !== state.height) {
    state.belowZeroHeight = state.height;
    state.belowZero = belowZeroAtMarks(state);
    paused = state.belowZero.length !== 0;
  } else {
    paused = anyStillBelowZero(state, state.belowZero);
  }
  return paused ? "an account is below zero equity at this block's marks" : null;
}

/** Whether the account is one of those outflowPause names (cash put into it helps resolve them). */
export function unresolvedAccount(state: ExchangeState, account: Account): boolean {
  return (
    state.deficits.has(account) ||
    state.underwater.has(account) ||
    (state.belowZeroHeight === state.height && state.belowZero.includes(account))
  );
}

export function withdraw(ctx: Ctx, a: Withdraw): ActionResult {
  const state = ctx.state;
  if (!ctx.isMaster) {
    return { ok: false, kind: 'withdraw', code: 'NotPermitted', message: 'agents cannot withdraw' };
  }
  if (badAmount(a.amountQuote)) {
    return {
      ok: false,
      kind: 'withdraw',
      code: 'InvalidAmount',
      message: 'amount must be positive',
    };
  }
  const paused = outflowPause(state);
  if (paused !== null) {
    return { ok: false, kind: 'withdraw', code: 'WithdrawalsPaused', message: paused };
  }
  const account = getAccount(ctx);
  if (account === undefined || freeCollateralQuote(state, account) < a.amountQuote) {
    return {
      ok: false,
      kind: 'withdraw',
      code: 'InsufficientFunds',
      message: 'free collateral too low',
    };
  }
  account.cashQuote -= a.amountQuote;
  state.withdrawnQuote += a.amountQuote;
  state.markAccount(account);
  return { ok: true, kind: 'withdraw' };
}
