// A jailing lowers the stake every 2/3 threshold is taken of: a pending
// deposit or proposal whose approvers not jailed now hold more than 2/3 of the
// active stake is credited or executed in the jailing block. Otherwise one
// whose every active validator already attested would wait for good (they
// cannot attest again), and the user's money would stay on the collateral chain.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeSnapshot, encodeSnapshot } from '../../src/exchange/index.ts';
import type { BlockResult } from '../../src/exchange/index.ts';
import type { AttestDeposit, SignedTx } from '../../src/exchange/tx/types.ts';
import { Harness, USDC, VALIDATORS, genesis, key } from './helpers.ts';

const alice = key('alice');
const bob = key('bob');

function attest(id: number, who = alice, amountQuote = 5n * USDC): AttestDeposit {
  return {
    kind: 'attestDeposit',
    depositId: new Uint8Array(32).fill(id),
    account: who.address,
    subaccount: 0,
    amountQuote,
  };
}

function evidenceBlock(h: Harness, v: number, txs: SignedTx[] = []): BlockResult {
  return h.block(txs, 1_000, [{ publicKey: VALIDATORS[v]!.publicKey, height: 1 }]);
}

function code(r: { ok: boolean; code?: string; actions: { ok: boolean; code?: string }[] }) {
  if (!r.ok) return r.code;
  const a = r.actions[0]!;
  return a.ok ? 'ok' : a.code;
}

test('a jailing that leaves a pending deposit and proposal above 2/3 of the active stake credits and executes them', () => {
  const h = new Harness(genesis({ devnet: false }));
  // Validators 0 and 1 attest and approve: half of the stake, pending.
  for (const v of [0, 1]) assert.equal(code(h.one(VALIDATORS[v]!, attest(7))), 'ok');
  assert.equal(
    code(
      h.one(VALIDATORS[0]!, { kind: 'govPropose', proposalId: 3, proposal: { kind: 'haltAll' } }),
    ),
    'ok',
  );
  assert.equal(
    code(h.one(VALIDATORS[1]!, { kind: 'govVote', proposalId: 3, approve: true })),
    'ok',
  );
  // Validator 2 jailed: 0 and 1 hold exactly 2/3 of the rest, not enough.
  const first = evidenceBlock(h, 2);
  assert.equal(h.account(alice), undefined, 'exactly 2/3 credits nothing');
  assert.equal(h.ex.state.proposals.get(3)!.executed, false);
  assert.deepEqual(
    first.events.map((e) => e.type),
    ['validatorJailed'],
  );
  const snapshot = encodeSnapshot(h.ex);
  // Validator 3 jailed: 0 and 1 hold all the active stake, and cannot attest again.
  const second = evidenceBlock(h, 3);
  assert.deepEqual(
    second.events.map((e) => e.type),
    ['validatorJailed', 'marketHalted', 'marketHalted', 'depositCredited'],
  );
  assert.equal(h.account(alice)?.cashQuote, 5n * USDC, 'credited in the jailing block');
  assert.equal(h.ex.state.proposals.get(3)!.executed, true);
  assert.ok(
    h.ex.state.markets.every((m) => m.retired || m.halted),
    'haltAll executed',
  );
  assert.equal(h.ex.state.deposits.size, 0, 'the spent id leaves no pending group');
  for (const v of h.ex.state.validators) {
    assert.equal(v.pendingDeposits, 0, 'room given back');
    assert.equal(v.pendingProposals, 0, 'room given back');
  }
  assert.equal(code(h.one(VALIDATORS[0]!, attest(7))), 'AlreadyCredited');

  // A node restored before the jailing block reaches the same state.
  const restored = decodeSnapshot(snapshot, { checkInvariants: true });
  const r = new Harness(undefined, { checkInvariants: true }, restored);
  r.timeMs = h.timeMs - 2_000;
  const again = evidenceBlock(r, 3);
  assert.deepEqual(again.appHash, second.appHash, 'same appHash after restore');
  assert.deepEqual(again.events, second.events);
});

test('two groups of one id ripe at the same jailing: the lowest content is credited, the other dropped', () => {
  const h = new Harness(genesis({ devnet: false }));
  // Validator 0 (Byzantine) attests both contents; 1 one of each.
  assert.equal(code(h.one(VALIDATORS[0]!, attest(9, alice))), 'ok');
  assert.equal(code(h.one(VALIDATORS[0]!, attest(9, bob))), 'ok');
  assert.equal(code(h.one(VALIDATORS[1]!, attest(9, alice))), 'ok');
  assert.equal(code(h.one(VALIDATORS[1]!, attest(9, bob))), 'ok');
  evidenceBlock(h, 2);
  const r = evidenceBlock(h, 3);
  const credited = r.events.filter((e) => e.type === 'depositCredited');
  assert.equal(credited.length, 1, 'an id is credited once');
  const aliceFirst =
    Buffer.compare(Buffer.from(alice.address), Buffer.from(bob.address)) < 0 ? alice : bob;
  const other = aliceFirst === alice ? bob : alice;
  assert.equal(h.account(aliceFirst)?.cashQuote, 5n * USDC);
  assert.equal(h.account(other), undefined);
  assert.equal(h.ex.state.deposits.size, 0);
});

test('a jailing that leaves a deposit at 2/3 or less credits nothing', () => {
  const h = new Harness(genesis({ devnet: false }));
  assert.equal(code(h.one(VALIDATORS[0]!, attest(5))), 'ok');
  // One of three active stakes: a third.
  evidenceBlock(h, 3);
  assert.equal(h.account(alice), undefined);
  assert.equal(h.ex.state.deposits.size, 1);
  // The jailed validator's own attestation no longer counts either.
  const g = new Harness(genesis({ devnet: false }));
  for (const v of [0, 3]) assert.equal(code(g.one(VALIDATORS[v]!, attest(5))), 'ok');
  evidenceBlock(g, 3);
  assert.equal(g.account(alice), undefined);
  void bob;
});

test('two amounts of one id ripe at the same jailing: the group whose key sorts first as text is credited', () => {
  const h = new Harness(genesis({ devnet: false }));
  // Keys end in ':5000000' and ':10000000': as text the 10 USDC group sorts first.
  for (const v of [0, 1]) {
    for (const amount of [5n * USDC, 10n * USDC]) {
      assert.equal(code(h.one(VALIDATORS[v]!, attest(4, alice, amount))), 'ok');
    }
  }
  evidenceBlock(h, 2);
  const r = evidenceBlock(h, 3);
  assert.deepEqual(
    r.events.filter((e) => e.type === 'depositCredited').map((e) => e.amountQuote),
    [10n * USDC],
  );
  assert.equal(h.account(alice)?.cashQuote, 10n * USDC);
  assert.equal(h.ex.state.deposits.size, 0, 'the other amount is dropped');
});
