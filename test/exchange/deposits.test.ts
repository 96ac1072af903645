// Deposit attestations: once an id is credited, the other contents attested
// under it (a minority's or a Byzantine validator's) can never be credited, so
// they must leave the state, the digest and their attesters' pending room.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, USDC, VALIDATORS, genesis, key } from './helpers.ts';
import type { Key } from './helpers.ts';
import { decodeSnapshot, encodeSnapshot } from '../../src/exchange/index.ts';
import type { TxResult } from '../../src/exchange/index.ts';
import type { AttestDeposit } from '../../src/exchange/tx/types.ts';

const alice = key('alice');
const mallory = key('mallory');

function attest(depositId: Uint8Array, account: Key, amountQuote: bigint): AttestDeposit {
  return { kind: 'attestDeposit', depositId, account: account.address, subaccount: 0, amountQuote };
}

function code(r: TxResult): string {
  assert.equal(r.ok, true);
  const a = r.ok ? r.actions[0]! : undefined;
  return a === undefined || a.ok ? 'ok' : a.code;
}

function pendingCounts(h: Harness): number[] {
  return h.ex.state.validators.map((v) => v.pendingDeposits);
}

test('crediting an id drops its other pending groups, frees their room, and the digest follows', () => {
  const h = new Harness(genesis({ devnet: false }));
  const id = new Uint8Array(32).fill(9);
  const other = new Uint8Array(32).fill(10);
  // Two rival contents under one id, and an unrelated deposit that stays.
  assert.equal(code(h.one(VALIDATORS[1]!, attest(id, alice, 6n * USDC))), 'ok');
  assert.equal(code(h.one(VALIDATORS[3]!, attest(id, mallory, 5n * USDC))), 'ok');
  assert.equal(code(h.one(VALIDATORS[1]!, attest(other, alice, 1n * USDC))), 'ok');
  assert.equal(h.ex.state.deposits.size, 3);
  assert.deepEqual(pendingCounts(h), [0, 2, 0, 1]);

  const r = h.block([
    h.tx(VALIDATORS[0]!, attest(id, alice, 5n * USDC)),
    h.tx(VALIDATORS[2]!, attest(id, alice, 5n * USDC)),
    h.tx(VALIDATORS[3]!, attest(id, alice, 5n * USDC)),
  ]);
  assert.ok(r.events.some((e) => e.type === 'depositCredited'));
  assert.equal(h.account(alice)!.cashQuote, 5n * USDC);
  assert.equal(h.account(mallory), undefined);
  // Only the unrelated deposit is left; V1 holds room for it alone, V3 none.
  assert.deepEqual(
    [...h.ex.state.deposits.values()].map((d) => d.amountQuote),
    [1n * USDC],
  );
  assert.deepEqual(pendingCounts(h), [0, 1, 0, 0]);
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());

  const copy = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
  assert.deepEqual(copy.appHash, h.ex.appHash);
  assert.deepEqual(copy.digestFromScratch(), h.ex.digestBytes());
  assert.deepEqual(copy.state.depositKeysById, h.ex.state.depositKeysById);
});

test('an attestation of a credited id, whatever its content, is refused and opens no group', () => {
  const h = new Harness(genesis({ devnet: false }));
  const id = new Uint8Array(32).fill(11);
  h.block(VALIDATORS.slice(0, 3).map((v) => h.tx(v, attest(id, alice, 2n * USDC))));
  assert.equal(h.account(alice)!.cashQuote, 2n * USDC);
  const before = h.ex.appHash;
  for (const [v, who, amountQuote] of [
    [VALIDATORS[3]!, alice, 2n * USDC],
    [VALIDATORS[3]!, mallory, 7n * USDC],
    [VALIDATORS[0]!, alice, 3n * USDC],
  ] as const) {
    assert.equal(code(h.one(v, attest(id, who, amountQuote))), 'AlreadyCredited');
  }
  assert.equal(h.ex.state.deposits.size, 0);
  assert.equal(h.ex.state.depositKeysById.size, 0);
  assert.deepEqual(pendingCounts(h), [0, 0, 0, 0]);
  assert.notDeepEqual(h.ex.appHash, before, 'the blocks still advance height and time');
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});
