import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sha256 } from '../../src/crypto/index.ts';
import { DEFAULT_CONFIG, HashChainApp, Simulator, simulate } from '../../src/sim/index.ts';
import { toHex } from '../../src/lib/bytes.ts';
import type { SimConfig, SimResult } from '../../src/sim/index.ts';
import type { Block } from '../../src/consensus/index.ts';

function run(overrides: Partial<SimConfig>): SimResult {
  return simulate({ ...DEFAULT_CONFIG, heights: 12, ...overrides });
}

function assertClean(r: SimResult): void {
  assert.deepEqual(r.violations, [], r.replay);
  assert.ok(r.heightsCommitted >= r.config.heights, r.replay);
}

test('one seed, one run: the same seed gives the same trace hash; another seed another', () => {
  const config = { faults: 'chaos', byzantine: 1, seed: 11 } as const;
  const a = run(config);
  const b = run(config);
  assert.equal(a.traceHash, b.traceHash);
  assert.equal(a.eventsFired, b.eventsFired);
  assert.match(a.traceHash, /^[0-9a-f]{64}$/);
  assert.notEqual(run({ ...config, seed: 12 }).traceHash, a.traceHash);
});

test('fault-free: every height in one round, on both topologies', () => {
  for (const topology of ['one-dc', '4-continents'] as const) {
    const r = run({ topology, validators: 4, heights: 20 });
    assertClean(r);
    assert.deepEqual(r.roundsPerHeight, { '1': r.heightsCommitted }, topology);
    assert.ok(r.verify.computed < r.verify.calls, 'the memo saves checks');
  }
});

for (const faults of ['loss', 'partition', 'crash', 'chaos'] as const) {
  test(`${faults}: safe, and live once the network heals`, () => {
    for (const seed of [1, 2, 4]) {
      const r = run({ faults, seed, validators: 4 });
      assertClean(r);
    }
  });
}

// A replica that prevoted a fresh proposal while locked on another value (the
// lock of Tendermint's line 22 dropped) breaks agreement at this seed: one
// partition leaves some validators committed in a round the others left. The
// 300-seed swarm in CI does not reach such a run, so it is pinned here.
test('a partition that tests the lock: locked validators keep agreement (seed 5424, 5 validators)', () => {
  assertClean(run({ faults: 'partition', seed: 5424, validators: 5, heights: 13 }));
});

test('validators locked on a value whose polka others lost get it relayed (seed 3, loss)', () => {
  const r = run({ faults: 'loss', seed: 3, validators: 4 });
  assertClean(r);
});

test('a validator that lost the precommit of a round its peers left gets it re-sent when it re-sends its own (seeds 74413, 74008)', () => {
  // Two honest nodes stayed in round 0 holding two precommits, the third left
  // for round 1 on three; its round-0 precommit was lost and only round 1's
  // was gossiped again, so neither side could start a timeout: stuck for good.
  const a = run({
    seed: 74413,
    validators: 4,
    heights: 12,
    topology: '4-continents',
    faults: 'loss',
    byzantine: 1,
    behavior: 'mixed',
    txsPerBlock: 0,
  });
  assertClean(a);
  const b = run({
    seed: 74008,
    validators: 7,
    heights: 8,
    topology: '4-continents',
    faults: 'chaos',
    byzantine: 1,
    behavior: 'silent',
    txsPerBlock: 0,
  });
  assertClean(b);
});

test("twins split across rounds: an equivocator's vote counts for each value, so relayed polkas unlock the height (seed 98)", () => {
  const r = run({
    faults: 'loss',
    seed: 98,
    validators: 4,
    heights: 6,
    byzantine: 1,
    behavior: 'twins',
    txsPerBlock: 1,
  });
  assertClean(r);
  assert.ok(r.evidence.seen > 0, 'the twins were caught');
});

test('crash faults do lose unsynced WAL records and replay, without double signing', () => {
  // Chaos seeds crash nodes mid-batch; the double-sign checker sees every message released.
  let lost = 0;
  for (const seed of [4, 5, 6, 7]) {
    const r = run({ faults: 'crash', seed, validators: 4, heights: 30 });
    assertClean(r);
    assert.ok(r.crashes.crashes >= 1 && r.crashes.restarts === r.crashes.crashes, r.replay);
    lost += r.crashes.walRecordsLost;
  }
  assert.ok(lost > 0);
});

for (const behavior of ['twins', 'equivocate', 'double-vote', 'silent'] as const) {
  test(`${behavior}: up to f Byzantine validators, no violation`, () => {
    for (const [validators, byzantine] of [
      [4, 1],
      [7, 2],
    ] as const) {
      const r = run({ behavior, validators, byzantine, seed: 1 });
      assertClean(r);
    }
  });
}

test('equivocate: the proposer shows each half of its peers another block, and the forgery is recorded as its own', () => {
  const r = run({
    validators: 4,
    byzantine: 1,
    behavior: 'equivocate',
    heights: 6,
    timelineHeight: 2,
  });
  assertClean(r);
  // Node 3 (the Byzantine key) proposes height 2 at round 0 in this seed.
  const proposals = r.timeline.filter(
    (e) => e.kind === 'proposal' && e.from === 3 && e.round === 0,
  );
  const values = new Set(proposals.map((e) => e.value));
  assert.equal(values.size, 2, 'two blocks for one (height, round)');
  // An honest node prevotes the block it was shown: each half believed its own.
  const prevoted = new Set(
    r.timeline
      .filter((e) => e.kind === 'prevote' && e.from !== 3 && e.round === 0)
      .map((e) => e.value),
  );
  for (const value of values) assert.ok(prevoted.has(value), `someone prevoted ${value}`);
});

test('double votes end as committed evidence, and the double-voter is jailed out of the set', () => {
  for (const validators of [4, 7]) {
    const config: SimConfig = {
      ...DEFAULT_CONFIG,
      behavior: 'double-vote',
      validators,
      byzantine: 1,
      heights: 30,
    };
    const sim = new Simulator(config);
    const r = sim.run();
    // The checker's own claim: each offender is out of the set deciding H+2.
    assertClean(r);
    assert.ok(r.evidence.made > 0);
    assert.ok(r.evidence.seen > 0);
    assert.ok(r.evidence.committed > 0);
    const offender = sim.keys[validators - 1]!.publicKey;
    let jailedAt = 0;
    for (const node of sim.nodes.slice(0, validators - 1)) {
      const set = node.replica.validators;
      assert.equal(set.size, validators - 1, `node ${node.index}`);
      assert.equal(set.indexOf(offender), -1);
      const app = node.app as HashChainApp;
      assert.deepEqual([...app.jailed.keys()], [toHex(offender)], 'jailed once');
      // The set it left decides the heights after its jailing + 2, and those were committed.
      jailedAt = app.jailed.get(toHex(offender))!;
      assert.ok(r.heightsCommitted >= jailedAt + 2 + 10, 'the others kept committing');
    }
    // Once out of the set it signs nothing, so it equivocates no more: only
    // at the heights up to jailedAt + 1, a prevote and a precommit each.
    assert.equal(r.evidence.made, 2 * (jailedAt + 1));
    // The pools keep EVIDENCE_PER_OFFENDER_MAX against it at a time (it is
    // jailed once), so not every pair is kept; every pair kept is committed.
    assert.equal(r.evidence.seen, r.evidence.committed);
  }
});

test('double votes forged are counted once each, however often the replica sends the vote again (seed 27, chaos)', () => {
  // Under crashes and loss the replica re-sends its votes to peers that
  // missed them; each copy carries the same forgery, which counted 54
  // forgeries here for 6 signed.
  const config: SimConfig = {
    ...DEFAULT_CONFIG,
    behavior: 'double-vote',
    validators: 4,
    byzantine: 1,
    heights: 12,
    faults: 'chaos',
    seed: 27,
  };
  const sim = new Simulator(config);
  const r = sim.run();
  assertClean(r);
  assert.deepEqual(r.roundsPerHeight, { '1': r.heightsCommitted }, 'every height in one round');
  const offender = toHex(sim.keys[3]!.publicKey);
  const jailedAt = (sim.nodes[0]!.app as HashChainApp).jailed.get(offender);
  assert.ok(jailedAt !== undefined, 'the double-voter was jailed');
  // A prevote and a precommit at each height up to jailedAt + 1, then nothing.
  assert.equal(r.evidence.made, 2 * (jailedAt + 1));
});

test('beyond f: twins of f+1 validators split agreement, and the checker says so', () => {
  for (const seed of [1, 2, 3]) {
    const r = run({ behavior: 'twins', validators: 4, byzantine: 2, seed });
    assert.ok(r.safetyViolations > 0, `seed ${seed}`);
    assert.ok(r.violations.some((v) => v.kind === 'agreement'));
    assert.match(r.replay, /--byzantine 2 --behavior twins/);
  }
});

test('an application that diverges on one node trips the appHash checker', () => {
  class Divergent extends HashChainApp {
    protected override nextHash(block: Block): Uint8Array {
      return block.header.height === 3 ? sha256(super.nextHash(block)) : super.nextHash(block);
    }
  }
  const r = run({
    app: (node) => (node.nodeIndex === 2 ? new Divergent(node) : new HashChainApp(node)),
  });
  assert.equal(r.violations[0]?.kind, 'appHash');
  assert.match(r.violations[0]!.message, /height 3/);
});

test('a lone validator and two validators commit', () => {
  assertClean(run({ validators: 1 }));
  assertClean(run({ validators: 2, faults: 'crash' }));
});

test('real Ed25519 signatures, memoized across replicas', () => {
  const r = run({ crypto: 'ed25519', heights: 5 });
  assertClean(r);
  assert.ok(r.verify.computed * 2 < r.verify.calls);
});

test('peers are named as the transport names them, by their validator key: the replicas give each validator its share of the messages kept for the next height, full nodes (a twin) a bounded part', () => {
  const sim = new Simulator({ ...DEFAULT_CONFIG, validators: 4, byzantine: 1, behavior: 'twins' });
  const set = sim.nodes[0]!.replica.nextValidators;
  for (let i = 0; i < 4; i++) {
    assert.equal(sim.nodes[i]!.peerId, toHex(sim.keys[i]!.publicKey));
    assert.ok(set.hasKeyHex(sim.nodes[i]!.peerId));
  }
  const twin = sim.nodes[4]!;
  assert.equal(twin.keyIndex, 3);
  assert.ok(!set.hasKeyHex(twin.peerId));
  assertClean(sim.run());
});
