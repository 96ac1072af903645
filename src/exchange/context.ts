// What an operation sees: the state, the acting address and subaccount, who
// signed, the block time, and where events go.

import { bytesKey } from './keys.ts';
import { assert } from '../lib/assert.ts';
import { ACCOUNTS_MAX } from '../lib/limits.ts';
import type { ExchangeEvent } from './results.ts';
import { Account, Principal } from './state.ts';
import type { ExchangeState } from './state.ts';

export interface Ctx {
  readonly state: ExchangeState;
  readonly principal: Principal;
  readonly subaccount: number;
  /** The signer is the address's own key (not an agent). */
  readonly isMaster: boolean;
  /** Hex of the signer's public key. */
  readonly signerKey: string;
  readonly blockTimeMs: number;
  readonly events: ExchangeEvent[];
}

export function principalKey(address: Uint8Array): string {
  return bytesKey(address);
}

export function getPrincipal(state: ExchangeState, address: Uint8Array): Principal | undefined {
  return state.principals.get(principalKey(address));
}

export function ensurePrincipal(state: ExchangeState, address: Uint8Array): Principal {
  const key = principalKey(address);
  let p = state.principals.get(key);
  if (p === undefined) {
    p = new Principal(key, address.slice());
    state.principals.set(key, p);
    state.markPrincipal(p);
  }
  return p;
}

export function getAccount(ctx: Ctx, subaccount = ctx.subaccount): Account | undefined {
  return ctx.principal.subaccount(subaccount);
}

/** Creates the subaccount on first use; only accepted actions call it. */
export function ensureAccount(
  state: ExchangeState,
  principal: Principal,
  subaccount: number,
): Account {
  let a = principal.subaccount(subaccount);
  if (a === undefined) {
    assert(state.accounts.length < ACCOUNTS_MAX, 'account table full');
    a = new Account(state.accounts.length, principal, subaccount, state.genesisMarketCount);
    state.accounts.push(a);
    principal.addSubaccount(subaccount, a);
    state.markPrincipal(principal);
    state.markAccount(a);
  }
  return a;
}
