import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BlockError,
  Exchange,
  GenesisError,
  SnapshotFormatError,
  SLASH_PPM_DEFAULT,
  decodeGenesis,
  decodeSnapshot,
  encodeGenesis,
  encodeSnapshot,
} from '../../src/exchange/index.ts';
import type { BlockResult, Offence } from '../../src/exchange/index.ts';
import { toHex } from '../../src/lib/bytes.ts';
import type { SignedTx } from '../../src/exchange/tx/types.ts';
import { Harness, USDC, VALIDATORS, genesis, key } from './helpers.ts';

/** Each devnet validator's stake. */
const STAKE = 1_000_000n * USDC;

function offence(v: number, height = 1): Offence {
  return { publicKey: VALIDATORS[v]!.publicKey, height };
}

function block(h: Harness, evidence: Offence[], txs: SignedTx[] = []): BlockResult {
  return h.block(txs, 1_000, evidence);
}

function jailedEvents(r: BlockResult) {
  return r.events.filter((e) => e.type === 'validatorJailed');
}

test('evidence jails the validator, burns 5% of its stake and sets its power to 0', () => {
  const h = new Harness(genesis({ devnet: false }));
  h.block([]);
  const before = h.ex.appHash;
  const r = block(h, [offence(3, 1)]);
  const v = h.ex.state.validators[3]!;
  assert.equal(SLASH_PPM_DEFAULT, 50_000);
  assert.equal(v.jailed, true);
  assert.equal(v.jailedHeight, 2);
  assert.equal(v.stake, STAKE - STAKE / 20n);
  assert.equal(v.genesisStake, STAKE);
  assert.equal(h.ex.state.totalStake, 3n * STAKE, 'thresholds count the validators not jailed');
  assert.deepEqual(r.validatorUpdates, [{ publicKey: VALIDATORS[3]!.publicKey, power: 0 }]);
  assert.deepEqual(jailedEvents(r), [
    {
      type: 'validatorJailed',
      validator: VALIDATORS[3]!.publicKey,
      offenceHeight: 1,
      burnedStake: STAKE / 20n,
    },
  ]);
  assert.notDeepEqual(h.ex.appHash, before);
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
  // Stake is not collateral: the invariants (conservation among them) ran after the block.
  assert.equal(h.ex.state.depositedQuote - h.ex.state.withdrawnQuote, 0n);
});

test('a jailed validator is refused from the block of its jailing on: attestations and governance', () => {
  const h = new Harness(genesis({ devnet: false }));
  const alice = key('alice');
  const attest = {
    kind: 'attestDeposit' as const,
    depositId: new Uint8Array(32).fill(3),
    account: alice.address,
    subaccount: 0,
    amountQuote: 5n * USDC,
  };
  const propose = {
    kind: 'govPropose' as const,
    proposalId: 9,
    proposal: { kind: 'haltAll' as const },
  };
  const r = block(h, [offence(2)], [h.tx(VALIDATORS[2]!, attest), h.tx(VALIDATORS[2]!, propose)]);
  for (const result of r.results) {
    const action = result.actions[0]!;
    assert.equal(action.ok, false);
    assert.equal(!action.ok && action.code, 'NotPermitted');
  }
  // The three left hold all the active stake: they still credit a deposit.
  for (const v of [0, 1]) h.one(VALIDATORS[v]!, attest);
  assert.equal(h.account(alice), undefined, '200 of 300 is not more than 2/3');
  h.one(VALIDATORS[3]!, attest);
  assert.equal(h.account(alice)!.cashQuote, 5n * USDC);
});

test('once per validator: repeated evidence, or two items in one block, burn nothing more', () => {
  const h = new Harness();
  const r = block(h, [offence(1, 1), offence(1, 1)]);
  assert.equal(jailedEvents(r).length, 1);
  assert.equal(r.validatorUpdates.length, 1);
  const stake = h.ex.state.validators[1]!.stake;
  const later = block(h, [offence(1, 2)]);
  assert.deepEqual(jailedEvents(later), []);
  assert.deepEqual(later.validatorUpdates, []);
  assert.equal(h.ex.state.validators[1]!.stake, stake);
  assert.equal(h.ex.state.validators[1]!.jailedHeight, 1, 'jailed where it was first');
});

test('the last validator not jailed is never jailed (consensus may not lose its whole set)', () => {
  const h = new Harness();
  const r = block(h, [offence(0), offence(1), offence(2), offence(3)]);
  assert.equal(r.validatorUpdates.length, 3);
  assert.equal(h.ex.state.validators[3]!.jailed, false);
  assert.equal(h.ex.state.validators[3]!.stake, STAKE);
  assert.equal(h.ex.state.totalStake, STAKE);
  assert.deepEqual(block(h, [offence(3)]).validatorUpdates, []);
});

test('evidence against a key that is no validator refuses the block before any change', () => {
  const h = new Harness();
  const hash = h.ex.appHash;
  assert.throws(
    () => block(h, [{ publicKey: key('stranger').publicKey, height: 1 }]),
    (e: unknown) => e instanceof BlockError && e.code === 'BadBlock',
  );
  assert.equal(h.ex.state.height, 0);
  assert.deepEqual(h.ex.appHash, hash);
});

test('genesis slashPpm: validated, encoded only when set, and used for the burn', () => {
  const all = new Harness(genesis({ slashPpm: 1_000_000 }));
  assert.equal(jailedEvents(block(all, [offence(0)]))[0]!.type, 'validatorJailed');
  assert.equal(all.ex.state.validators[0]!.stake, 0n);
  const none = new Harness(genesis({ slashPpm: 0 }));
  block(none, [offence(0)]);
  assert.equal(none.ex.state.validators[0]!.stake, STAKE);
  assert.equal(none.ex.state.validators[0]!.jailed, true);
  assert.throws(() => new Exchange(genesis({ slashPpm: 1_000_001 })), GenesisError);
  assert.throws(() => new Exchange(genesis({ slashPpm: -1 })), GenesisError);
  // Without a listing or triggers (the devnet has both), only slashPpm makes format 3.
  const sectionless = genesis({ listing: undefined });
  const markets = sectionless.markets.map(({ triggers: _, ...m }) => m);
  const plain = encodeGenesis({ ...sectionless, markets });
  const slashing = encodeGenesis({ ...sectionless, markets, slashPpm: 70_000 });
  assert.equal(plain[0], 2, 'a genesis without optional sections keeps its format and bytes');
  assert.equal(slashing[0], 3);
  assert.equal(decodeGenesis(slashing).slashPpm, 70_000);
  assert.equal(decodeGenesis(plain).slashPpm, undefined);
  const noBreakers = encodeGenesis({
    ...genesis({ slashPpm: 1, listing: undefined }),
    oracle: undefined!,
  });
  assert.equal(decodeGenesis(noBreakers).slashPpm, 1);
});

test('snapshot: jailing, height and slashed stake restore to the same appHash and state', () => {
  const h = new Harness();
  h.block([]);
  block(h, [offence(2, 1)]);
  block(h, []);
  const bytes = encodeSnapshot(h.ex);
  const restored = decodeSnapshot(bytes, { checkInvariants: true });
  assert.deepEqual(restored.appHash, h.ex.appHash);
  assert.deepEqual(
    restored.state.validators.map((v) => [toHex(v.publicKey), v.jailed, v.jailedHeight, v.stake]),
    h.ex.state.validators.map((v) => [toHex(v.publicKey), v.jailed, v.jailedHeight, v.stake]),
  );
  assert.equal(restored.state.totalStake, 3n * STAKE);
  assert.deepEqual(encodeSnapshot(restored), bytes);
  // Both go on identically, a second offender included.
  const again = new Harness(undefined, { checkInvariants: true }, restored);
  again.timeMs = h.timeMs;
  const a = block(h, [offence(0, 3)]);
  const b = block(again, [offence(0, 3)]);
  assert.deepEqual(b.appHash, a.appHash);
  assert.deepEqual(b.validatorUpdates, a.validatorUpdates);
  // The first offence again (a block may repeat evidence a replica restored
  // from the snapshot never saw committed): both know the jailing from their
  // state alone, and both ignore it alike.
  const c = block(h, [offence(2, 1)]);
  const d = block(again, [offence(2, 1)]);
  assert.deepEqual(jailedEvents(d), []);
  assert.deepEqual(d.validatorUpdates, []);
  assert.deepEqual(d.events, c.events);
  assert.deepEqual(d.appHash, c.appHash);
});

test('a format 3 snapshot is refused with both formats named', () => {
  const h = new Harness();
  h.block([]);
  const old = encodeSnapshot(h.ex).slice();
  old[0] = 3;
  assert.throws(
    () => decodeSnapshot(old),
    (e: unknown) => e instanceof SnapshotFormatError && e.foundFormat === 3,
  );
});

test('approvals and attestations of a validator since jailed no longer count toward 2/3 of the active stake', () => {
  const h = new Harness(genesis({ devnet: false }));
  const alice = key('alice');
  const attest = {
    kind: 'attestDeposit' as const,
    depositId: new Uint8Array(32).fill(4),
    account: alice.address,
    subaccount: 0,
    amountQuote: 5n * USDC,
  };
  const propose = {
    kind: 'govPropose' as const,
    proposalId: 11,
    proposal: { kind: 'haltAll' as const },
  };
  // Validator 3 proposes and attests, then is jailed: 3 of the 4 stakes stay active.
  h.one(VALIDATORS[3]!, propose);
  h.one(VALIDATORS[3]!, attest);
  block(h, [offence(3)]);
  assert.equal(h.ex.state.totalStake, 3n * STAKE);
  // Two of the three active validators hold exactly 2/3: not enough, whatever 3 approved.
  for (const v of [0, 1]) {
    h.one(VALIDATORS[v]!, { kind: 'govVote', proposalId: 11, approve: true });
    h.one(VALIDATORS[v]!, attest);
  }
  assert.equal(h.ex.state.proposals.get(11)!.executed, false);
  assert.equal(
    h.ex.state.markets.some((m) => m.halted),
    false,
  );
  assert.equal(h.account(alice), undefined);
  h.one(VALIDATORS[2]!, { kind: 'govVote', proposalId: 11, approve: true });
  h.one(VALIDATORS[2]!, attest);
  assert.equal(h.ex.state.proposals.get(11)!.executed, true);
  assert.equal(h.account(alice)!.cashQuote, 5n * USDC);
});
