// attestDeposit: a validator reports a deposit seen on the collateral chain.
// Attestations are grouped by their whole content (depositId, address,
// subaccount, amount); the first group whose attesters hold more than 2/3 of
// stake is credited, once: the depositId is then spent, every other group of
// that id (a minority's or a Byzantine validator's other content) is dropped
// and its attesters' room freed, and any later attestation of the id is
// refused (AlreadyCredited). Cost: O(validators) per attestation (the sorted
// attester list); a credit adds O(groups of its id × their attesters).

import { assert } from '../lib/assert.ts';
import { toHex } from '../lib/bytes.ts';
import { divFloor } from '../lib/int.ts';
import { PENDING_DEPOSITS_MAX } from '../lib/limits.ts';
import { badAmount, noRoomFor, settleDeficit } from './collateral.ts';
import type { Ctx } from './context.ts';
import { activeApprovalStake } from './governance.ts';
import { ensureAccount, ensurePrincipal, getPrincipal } from './context.ts';
import type { ActionResult, ExchangeEvent } from './results.ts';
import type { Deposit, ExchangeState } from './state.ts';
import type { AttestDeposit } from './tx/types.ts';

export function depositKey(a: {
  depositId: Uint8Array;
  account: Uint8Array;
  subaccount: number;
  amountQuote: bigint;
}): string {
  return `${toHex(a.depositId)}:${toHex(a.account)}:${a.subaccount}:${a.amountQuote}`;
}

export function attestDeposit(ctx: Ctx, a: AttestDeposit): ActionResult {
  const state = ctx.state;
  const validator = state.validatorByKey.get(ctx.signerKey);
  if (validator === undefined || validator.jailed) {
    return {
      ok: false,
      kind: 'attestDeposit',
      code: 'NotPermitted',
      message: 'not an active validator',
    };
  }
  if (badAmount(a.amountQuote)) {
    return {
      ok: false,
      kind: 'attestDeposit',
      code: 'InvalidAmount',
      message: 'amount must be positive',
    };
  }
  const idHex = toHex(a.depositId);
  if (state.creditedDeposits.has(idHex)) {
    return { ok: false, kind: 'attestDeposit', code: 'AlreadyCredited', message: idHex };
  }
  const key = depositKey(a);
  let deposit = state.deposits.get(key);
  const vIndex = state.validators.indexOf(validator);
  if (deposit?.attesters.includes(vIndex)) {
    return { ok: false, kind: 'attestDeposit', code: 'DuplicateAttestation', message: idHex };
  }
  // Each validator may keep at most its share of PENDING_DEPOSITS_MAX pending:
  // one validator's attestations (of deposits that never gather 2/3 of stake)
  // must not crowd out the others'. An attestation that credits takes no room.
  const share = divFloor(PENDING_DEPOSITS_MAX, state.validators.length);
  const attested = deposit === undefined ? 0n : activeApprovalStake(state, deposit.attesters);
  const credits = state.isSupermajority(attested + validator.stake);
  // The deposit waits (this attestation unrecorded) rather than stop every validator.
  if (credits && noRoomFor(state, getPrincipal(state, a.account), a.subaccount)) {
    return {
      ok: false,
      kind: 'attestDeposit',
      code: 'TooManyAccounts',
      message: 'the account table is full',
    };
  }
  if (!credits && validator.pendingDeposits >= share) {
    return {
      ok: false,
      kind: 'attestDeposit',
      code: 'TooManyPendingDeposits',
      message: `at most ${share} pending deposits attested per validator`,
    };
  }
  if (deposit === undefined) {
    if (state.deposits.size >= PENDING_DEPOSITS_MAX) {
      return {
        ok: false,
        kind: 'attestDeposit',
        code: 'TooManyPendingDeposits',
        message: `at most ${PENDING_DEPOSITS_MAX} pending deposits`,
      };
    }
    deposit = {
      key,
      depositId: a.depositId.slice(),
      account: a.account.slice(),
      subaccount: a.subaccount,
      amountQuote: a.amountQuote,
      attesters: [],
      stake: 0n,
      leaf: null,
      dirty: false,
    } satisfies Deposit;
    state.deposits.set(key, deposit);
    indexDeposit(state, deposit);
  }
  deposit.attesters.push(vIndex);
  deposit.attesters.sort((x, y) => x - y);
  deposit.stake += validator.stake;
  validator.pendingDeposits++;
  state.markDeposit(deposit);
  if (credits) credit(state, deposit, ctx.events);
  return { ok: true, kind: 'attestDeposit' };
}

/** Credits a pending group and spends its id (its other groups are dropped with it). */
function credit(state: ExchangeState, d: Deposit, events: ExchangeEvent[]): void {
  const idHex = toHex(d.depositId);
  dropGroupsOf(state, idHex);
  state.creditedDeposits.add(idHex);
  state.newCredited.push(idHex);
  const principal = ensurePrincipal(state, d.account);
  const account = ensureAccount(state, principal, d.subaccount);
  account.cashQuote += d.amountQuote;
  state.depositedQuote += d.amountQuote;
  state.markAccount(account);
  settleDeficit(state, account);
  events.push({ type: 'depositCredited', account: account.index, amountQuote: d.amountQuote });
}

/**
 * After a jailing (applyEvidence): the threshold is 2/3 of a smaller stake, so
 * a pending group whose attesters not jailed now hold more than 2/3 of it is
 * credited here. No attestation may come to do it: every active validator may
 * have attested it already, and none can attest twice. In ascending content
 * (the snapshot's order, so a restored node credits alike): of two groups of
 * one id ripe together, the lower is credited and the other dropped. One whose
 * crediting would open an account past ACCOUNTS_MAX waits, as an attestation
 * would leave it. O(pending deposits × validators), once per jailing.
 */
export function creditRipeDeposits(state: ExchangeState, events: ExchangeEvent[]): void {
  const keys = [...state.deposits.keys()].sort();
  for (const key of keys) {
    // A group dropped by the credit of another group of its id is gone.
    const d = state.deposits.get(key);
    if (d === undefined || !state.isSupermajority(activeApprovalStake(state, d.attesters)))
      continue;
    if (noRoomFor(state, getPrincipal(state, d.account), d.subaccount)) continue;
    credit(state, d, events);
  }
}

/** Records a pending group under its deposit id (also on restore: the index is derived). */
export function indexDeposit(state: ExchangeState, d: Deposit): void {
  const idHex = toHex(d.depositId);
  const keys = state.depositKeysById.get(idHex);
  if (keys === undefined) state.depositKeysById.set(idHex, [d.key]);
  else keys.push(d.key);
}

/**
 * Removes every pending group of a deposit id, the credited one included: once
 * the id is spent no other content of it can ever be credited, so the groups
 * would otherwise hold their attesters' share of PENDING_DEPOSITS_MAX forever.
 */
function dropGroupsOf(state: ExchangeState, idHex: string): void {
  for (const key of state.depositKeysById.get(idHex) ?? []) {
    const d = state.deposits.get(key);
    assert(d !== undefined, `indexed deposit ${key} is pending`);
    for (const i of d.attesters) state.validators[i]!.pendingDeposits--;
    state.deposits.delete(key);
    // Marked so the digest subtracts the group's leaf.
    state.markDeposit(d);
  }
  state.depositKeysById.delete(idHex);
}
