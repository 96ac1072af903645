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
// Nor may collateral leave an account holding a position, or resting an
// order (either side can be filled by a reduce-only order, which a stale
// market still takes, and open one), in a market whose index is stale: its
// mark is the last index's, and a price that has moved since may already
// have spent the collateral the stale mark calls free, a loss liquidation
// cannot close until the index is back (a perpetual, a dated future waiting
// past expiry for its settlement price; an option keeps its last mark).
// Nor an account short an option (a position), or offering one (any
// resting sell: one against a long opens a short once the long is sold by
// another order), whose smile is stale: that option keeps its last
// mark and is margined by model-free bounds (listed_margin.ts,
// unshockedShortBounds), which a jump in volatility can outrun
// (staleHolding). Cost: O(the account's position records).

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
 * Why collateral may not leave the account while a market it is in has no
 * fresh price, or undefined: a position or a resting order (its own, in the
 * book or a call auction) in a market whose index is stale, or an option it
 * is short, or offers, without a fresh smile (it keeps its last mark,
 * margined by model-free bounds). Neither mark then measures what the
 * account risks. O(the account's position records): the genesis markets'
 * and its listed ones.
 */
export function staleHolding(state: ExchangeState, account: Account): string | undefined {
  const markets = state.markets;
  for (const records of [account.positions, account.listed]) {
    for (const p of records) {
      const m = markets[p.market]!;
      if (m.retired) continue;
      if (m.oracleStale) {
        if (p.sizeLots !== 0 || m.ownerOrderCount(account.index) > 0) {
          return staleIndexMessage(m.params.instrument, p.sizeLots);
        }
        continue;
      }
      if (m.instrument.kind !== 'option' || m.optionMark !== null) continue;
      if (p.sizeLots < 0 || m.restingLots(account.index, 'sell') > 0) {
        return staleOptionMessage(m.params.instrument);
      }
    }
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
  const stale = account === undefined ? undefined : staleHolding(state, account);
  if (stale !== undefined) {
    return { ok: false, kind: 'withdraw', code: 'OracleStale', message: stale };
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

function staleOptionMessage(instrument: string): string {
  return `short ${instrument}, which has no fresh smile: its margin cannot be measured until one comes`;
}

function staleIndexMessage(instrument: string, sizeLots: number): string {
  const what = sizeLots !== 0 ? 'a position' : 'orders';
  return `${what} in ${instrument}, whose index is stale: its margin cannot be measured until the index is fresh`;
}
