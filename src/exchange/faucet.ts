// faucet: devnet test money, at most faucetQuoteMax per account in total.
// Cost: O(1).

import { badAmount, noRoomFor, settleDeficit } from './collateral.ts';
import type { Ctx } from './context.ts';
import { ensureAccount, getAccount } from './context.ts';
import type { ActionResult } from './results.ts';
import type { Faucet } from './tx/types.ts';

export function faucet(ctx: Ctx, a: Faucet): ActionResult {
  const state = ctx.state;
  if (!state.genesis.devnet) {
    return {
      ok: false,
      kind: 'faucet',
      code: 'NotPermitted',
      message: 'the faucet is devnet only',
    };
  }
  if (badAmount(a.amountQuote)) {
    return { ok: false, kind: 'faucet', code: 'InvalidAmount', message: 'amount must be positive' };
  }
  const drawn = getAccount(ctx)?.faucetQuote ?? 0n;
  if (drawn + a.amountQuote > state.genesis.faucetQuoteMax) {
    return {
      ok: false,
      kind: 'faucet',
      code: 'FaucetCapExceeded',
      message: `at most ${state.genesis.faucetQuoteMax} per account`,
    };
  }
  if (noRoomFor(state, ctx.principal, ctx.subaccount)) {
    return {
      ok: false,
      kind: 'faucet',
      code: 'TooManyAccounts',
      message: 'the account table is full',
    };
  }
  const account = ensureAccount(state, ctx.principal, ctx.subaccount);
  account.faucetQuote += a.amountQuote;
  account.cashQuote += a.amountQuote;
  state.depositedQuote += a.amountQuote;
  state.markAccount(account);
  settleDeficit(state, account);
  return { ok: true, kind: 'faucet' };
}
