// attestDeposit: a validator reports a deposit seen on the collateral chain.
// Attestations are grouped by their whole content (depositId, address,
// subaccount, amount); the first group whose attesters hold more than 2/3 of
// stake is credited, once: the depositId is then spent, and any later
// attestation of it is refused (AlreadyCredited). Cost: O(validators) per
// attestation (the sorted attester list).

import { toHex } from '../lib/bytes.ts';
import { divFloor } from '../lib/int.ts';
import { PENDING_DEPOSITS_MAX } from '../lib/limits.ts';
import { badAmount, noRoomFor, settleDeficit } from './collateral.ts';
import type { Ctx } from './context.ts';
import { activeApprovalStake } from './governance.ts';
import { ensureAccount, ensurePrincipal, getPrincipal } from './context.ts';
import type { ActionResult } from './results.ts';
import type { Deposit } from './state.ts';
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
  }
  deposit.attesters.push(vIndex);
  deposit.attesters.sort((x, y) => x - y);
  deposit.stake += validator.stake;
  validator.pendingDeposits++;
  state.markDeposit(deposit);
  if (credits) {
    for (const i of deposit.attesters) state.validators[i]!.pendingDeposits--;
    state.creditedDeposits.add(idHex);
    state.newCredited.push(idHex);
    state.deposits.delete(key);
    const principal = ensurePrincipal(state, a.account);
    const account = ensureAccount(state, principal, a.subaccount);
    account.cashQuote += a.amountQuote;
    state.depositedQuote += a.amountQuote;
    state.markAccount(account);
    settleDeficit(state, account);
    ctx.events.push({
      type: 'depositCredited',
      account: account.index,
      amountQuote: a.amountQuote,
    });
  }
  return { ok: true, kind: 'attestDeposit' };
}
