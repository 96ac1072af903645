// Helpers shared by the collateral operations.

import { ACCOUNTS_MAX } from '../lib/limits.ts';
import { shortfallLessened } from './liquidation.ts';
import type { Account, ExchangeState, Principal } from './state.ts';

/**
 * The subaccount does not exist and the state holds ACCOUNTS_MAX accounts:
 * creating it is refused (TooManyAccounts) before ensureAccount, whose
 * assertion would otherwise stop every validator at the same block.
 */
export function noRoomFor(
  state: ExchangeState,
  principal: Principal | undefined,
  subaccount: number,
): boolean {
  return state.accounts.length >= ACCOUNTS_MAX && principal?.subaccount(subaccount) === undefined;
}

/**
 * After cash came in: an account whose deficit is covered leaves the deficit
 * set. None joins it here: an account below zero without positions that is
 * not in it yet (a trade of this block closed its last position) goes to the
 * insurance fund first, at the end-of-block scan (liquidation.ts), which
 * passes over accounts already in the set. What the block's withdrawal pause
 * counts it to lack is looked at again (withdraw.ts). O(markets).
 */
export function settleDeficit(state: ExchangeState, account: Account): void {
  if (account.cashQuote >= 0n || account.positionCount > 0) state.deficits.delete(account);
  shortfallLessened(state, account);
}

export function badAmount(amountQuote: bigint): boolean {
  return typeof amountQuote !== 'bigint' || amountQuote <= 0n;
}
