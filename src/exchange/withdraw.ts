// withdraw: from free collateral only (equity − initial margin with resting
// orders), by the address's own key, and never while the accounts with
// negative equity lack, together, more than the insurance fund holds: a
// deficit (no position left), an account still holding positions below zero
// equity at the end of the last block (one in a halted or stale market, or a
// liquidation the per-block cap cut into slices), or an account below zero at
// this block's own marks (the block moves its marks before its transactions
// and liquidates after them). What such an account lacks is a loss the fund
// covers first; past the fund, the deleveraging of its profitable
// counterparties covers it at a price beyond the mark, and a counterparty
// withdrawing its profit first would escape that. While the fund can pay all
// of it, deleveraging closes at the mark, which costs no counterparty
// anything: a pause then would protect no one. Transfers out of a subaccount
// are paused alike (transfer.ts).
// The pause is weighed before free collateral (docs/exchange.md, "Withdrawals").
// Cost: O(markets); the block's first withdrawal or transfer past the signer
// and amount checks also looks at the deficits, the underwater accounts, the
// accounts the block changed and the holders of the markets whose mark moved
// (liquidation.ts, unresolvedShortfalls), once per block; later ones compare
// the sum it found, lowered as cash comes into those accounts
// (shortfallLessened), with the fund.
// Nor may collateral leave an account short an option (a position), or
// offering one (any resting sell: one against a long opens a short once the
// long is sold by another order), whose smile is stale: that
// option keeps its last mark and is margined by model-free bounds
// (listed_margin.ts, unshockedShortBounds), which a jump in volatility can
// outrun (staleShortOption). Cost: O(the account's listed records).

import { badAmount } from './collateral.ts';
import type { Ctx } from './context.ts';
import { getAccount } from './context.ts';
import { unresolvedShortfalls } from './liquidation.ts';
import { freeCollateralQuote } from './margin.ts';
import type { ActionResult } from './results.ts';
import type { Account, ExchangeState } from './state.ts';
import type { Withdraw } from './tx/types.ts';
import { quoteDecimal } from './units.ts';

/**
 * Why collateral may not leave an account now (a withdrawal, a transfer to
 * another subaccount), or null: the accounts with negative equity at the
 * block's marks lack more than the insurance fund holds, so deleveraging
 * their counterparties beyond the mark may have to cover the rest. Equal is
 * not more: the fund then covers every one of them at the mark. Changes no
 * state.
 */
export function outflowPause(state: ExchangeState): string | null {
  // Memo of the block, not state: the same transactions give every node the same answer.
  if (state.shortfallHeight !== state.height) {
    state.shortfallHeight = state.height;
    unresolvedShortfalls(state);
  }
  const lacking = state.shortfallQuote;
  if (lacking <= state.insuranceQuote) return null;
  return (
    `${state.shortfalls.size} account(s) below zero equity lack ${quoteDecimal(lacking)} ` +
    `in the quote asset, more than the insurance fund's ${quoteDecimal(state.insuranceQuote)}`
  );
}

/**
 * An option the account is short, or offers, while its smile is stale (it
 * keeps its last mark, margined by model-free bounds), else undefined. No
 * volatility then measures what the option risks, so no collateral leaves.
 */
export function staleShortOption(state: ExchangeState, account: Account): string | undefined {
  for (const p of account.listed) {
    const m = state.markets[p.market]!;
    if (m.instrument.kind !== 'option' || m.optionMark !== null) continue;
    if (p.sizeLots < 0 || m.restingLots(account.index, 'sell') > 0) return m.params.instrument;
  }
  return undefined;
}

/** Whether the account is one of those outflowPause weighs, still below zero (cash put into it helps resolve them). */
export function unresolvedAccount(state: ExchangeState, account: Account): boolean {
  return state.shortfallHeight === state.height && state.shortfalls.has(account);
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
  const stale = account === undefined ? undefined : staleShortOption(state, account);
  if (stale !== undefined) {
    return { ok: false, kind: 'withdraw', code: 'OracleStale', message: staleOptionMessage(stale) };
  }
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

export function staleOptionMessage(instrument: string): string {
  return `short ${instrument}, which has no fresh smile: its margin cannot be measured until one comes`;
}
