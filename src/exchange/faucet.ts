// faucet: devnet test money, at most faucetQuoteMax per address in total, over
// all its subaccounts (each keeps what it drew; the cap reads their sum).
// Cost: O(subaccounts of the address), at most SUBACCOUNT_MAX + 1.

import { badAmount, noRoomFor, settleDeficit } from './collateral.ts';
import type { Ctx } from './context.ts';
import { ensureAccount } from './context.ts';
import type { RejectCode } from './errors.ts';
import { refusedInHalt } from './governance.ts';
import type { ActionResult } from './results.ts';
import type { ExchangeState, Principal } from './state.ts';
import type { Faucet } from './tx/types.ts';
import { quoteText } from './units.ts';

export function faucet(ctx: Ctx, a: Faucet): ActionResult {
  const state = ctx.state;
  const refusal = faucetRefusal(state, ctx.principal, ctx.subaccount, a.amountQuote);
  if (refusal !== null) return refusal;
  const account = ensureAccount(state, ctx.principal, ctx.subaccount);
  account.faucetQuote += a.amountQuote;
  account.cashQuote += a.amountQuote;
  state.depositedQuote += a.amountQuote;
  state.markAccount(account);
  settleDeficit(state, account);
  return { ok: true, kind: 'faucet' };
}

/**
 * Why a draw would be refused, or null: also asked before an unknown address
 * is opened by its first transaction (execute.ts), so that only a draw that
 * succeeds creates one. `principal` undefined: an address not yet opened.
 */
export function faucetRefusal(
  state: ExchangeState,
  principal: Principal | undefined,
  subaccount: number,
  amountQuote: bigint,
): ActionResult | null {
  const no = (code: RejectCode, message: string): ActionResult => ({
    ok: false,
    kind: 'faucet',
    code,
    message,
  });
  // A network without the faucet says so whether or not it is halted.
  if (!state.genesis.devnet) return no('NotPermitted', 'the faucet is devnet only');
  const halted = refusedInHalt(state, 'faucet');
  if (halted !== null) return halted;
  if (badAmount(amountQuote)) return no('InvalidAmount', 'amount must be positive');
  const drawn = principal === undefined ? 0n : drawnQuote(principal);
  const cap = state.genesis.faucetQuoteMax;
  if (drawn + amountQuote > cap) {
    return no(
      'FaucetCapExceeded',
      `at most ${quoteText(cap)} (${cap} quote units) per address in all; ` +
        `${quoteText(drawn)} (${drawn}) drawn already, so at most ${quoteText(cap - drawn)} ` +
        `(${cap - drawn}) more`,
    );
  }
  if (noRoomFor(state, principal, subaccount)) {
    return no('TooManyAccounts', 'the account table is full');
  }
  return null;
}

/**
 * What an address drew from the faucet, over all its subaccounts: a cap per
 * subaccount would let one key draw it again in each of them.
 */
function drawnQuote(principal: Principal): bigint {
  let drawn = 0n;
  for (const account of principal.subaccounts.values()) drawn += account.faucetQuote;
  return drawn;
}
