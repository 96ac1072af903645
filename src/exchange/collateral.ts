// Helpers shared by the collateral operations.

import type { Account, ExchangeState } from './state.ts';

/** After cash came in: an account whose deficit is covered leaves the deficit set. */
export function settleDeficit(state: ExchangeState, account: Account): void {
  if (account.cashQuote >= 0n || account.positionCount > 0) state.deficits.delete(account);
  else state.deficits.add(account);
}

export function badAmount(amountQuote: bigint): boolean {
  return typeof amountQuote !== 'bigint' || amountQuote <= 0n;
}
