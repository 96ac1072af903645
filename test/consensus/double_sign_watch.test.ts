import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode, encode } from '../../src/codec/wire.ts';
import { messageCodec, walRecordCodec } from '../../src/consensus/codec.ts';
import type { Effect } from '../../src/consensus/types.ts';
import { DOUBLE_SIGN_WATCH_HEIGHTS } from '../../src/lib/limits.ts';
import { ValidatorSet } from '../../src/consensus/validators.ts';
import { Harness, TestApp } from './harness.ts';
import type { NodeState } from './harness.ts';

/** Heights of the votes and proposals a node broadcast, in order. */
function signedHeights(effect: Effect): number | null {
  if (effect.kind !== 'broadcast') return null;
  const m = decode(messageCodec, effect.bytes);
  if (m.kind === 'vote') return m.vote.height;
  if (m.kind === 'proposal') return m.proposal.height;
  return null;
}

/**
 * Validator 3 runs to height 10, then its home is lost: a new process with
 * the same key starts from nothing (no WAL, no blocks, a fresh application)
 * while the chain goes on without it. Its own old precommits are in the
 * certificates it catches up on. (What it signs at its first height before it
 * learns that the chain is ahead is outside the watch: see docs/protocol.md.)
 */
function rebuiltHome(
  seed: number,
  doubleSignWatchHeights?: number,
): {
  h: Harness;
  node: NodeState;
  pauses: { height: number; untilHeight: number }[];
  /** Heights it signed at after its first pause. */
  sentAfterPause: number[];
  sentAfterRestart: number[];
} {
  const h = new Harness({
    n: 4,
    seed,
    compactWal: true,
    ...(doubleSignWatchHeights === undefined ? {} : { doubleSignWatchHeights }),
  });
  const pauses: { height: number; untilHeight: number }[] = [];
  const sentAfterRestart: number[] = [];
  const sentAfterPause: number[] = [];
  let restarted = false;
  h.afterEffect = (n, effect) => {
    if (n.index !== 3) return;
    if (effect.kind === 'signingPaused') pauses.push(effect);
    const height = signedHeights(effect);
    if (restarted && height !== null) sentAfterRestart.push(height);
    if (pauses.length > 0 && height !== null) sentAfterPause.push(height);
  };
  h.startAll();
  assert.ok(h.run(() => h.minCommitted() >= 10));
  h.crash(3);
  const node = h.nodes[3]!;
  node.wal.length = 0;
  node.syncedLength = 0;
  node.store.clear();
  (node as { app: TestApp }).app = new TestApp(h.genesis.appHash, 'v3 again');
  assert.ok(h.run(() => h.minCommitted([0, 1, 2]) >= 14));
  restarted = true;
  h.restart(3);
  return { h, node, pauses, sentAfterPause, sentAfterRestart };
}

test('a validator rebuilt from nothing while its key signed recent heights signs nothing until that signer has been silent for the watch', () => {
  for (const seed of [41, 42, 43]) {
    const { h, node, pauses, sentAfterPause } = rebuiltHome(seed);
    assert.ok(h.run(() => node.app.height >= 40));
    assert.ok(pauses.length > 0, `seed ${seed}: the old signatures were seen`);
    const until = Math.max(...pauses.map((p) => p.untilHeight));
    // The old process's last precommit was at most height 11 (it was at 10 or 11).
    assert.ok(until <= 11 + DOUBLE_SIGN_WATCH_HEIGHTS, `seed ${seed}: ${until}`);
    assert.ok(until > 10, `seed ${seed}: the pause reaches past the old process's last height`);
    assert.ok(
      sentAfterPause.every((height) => height > until),
      `seed ${seed}: signed at ${sentAfterPause.find((x) => x <= until)} within the pause to ${until}`,
    );
    // And then it votes again.
    assert.ok(sentAfterPause.length > 0, `seed ${seed}: it joins after the pause`);
    assert.equal(node.replica.metrics.doubleSignRefused, 0);
  }
});

test('the pause outlives a restart: it is in the WAL after each checkpoint', () => {
  const { h, node, pauses, sentAfterPause } = rebuiltHome(44);
  // Catch up past the old signatures, then crash inside the pause and restart from the WAL.
  assert.ok(h.run(() => pauses.length > 0 && node.app.height >= 12));
  const until = Math.max(...pauses.map((p) => p.untilHeight));
  assert.ok(node.app.height < until, 'the crash lands inside the pause');
  h.crash(3);
  const records = node.wal.map((bytes) => decode(walRecordCodec, bytes));
  assert.ok(records.some((r) => r.kind === 'checkpoint' && r.signingPausedUntil === until));
  h.restart(3);
  assert.ok(h.run(() => node.app.height >= until + 5));
  assert.ok(sentAfterPause.every((height) => height > until));
  assert.ok(sentAfterPause.some((height) => height > until));
});

test('ordinary crashes and restarts never pause signing: a replica knows its own signatures', () => {
  for (let k = 2; k <= 40; k += 2) {
    const h = new Harness({ n: 4, seed: 500 + k, compactWal: true });
    let crashed = false;
    h.afterEffect = (node) => {
      if (crashed || node.index !== 1 || node.effectsDone !== k * 7) return;
      crashed = true;
      h.crash(1);
    };
    h.startAll();
    assert.ok(h.run(() => crashed || h.minCommitted() >= 25));
    if (!crashed) assert.fail(`crash point ${k} was not reached`);
    h.restart(1);
    assert.ok(
      h.run(() => h.minCommitted() >= 30),
      `crash point ${k}`,
    );
    for (const node of h.nodes) assert.equal(node.replica.metrics.signingPaused, 0, `k ${k}`);
  }
});

test('with the watch off, the same rebuilt validator signs at once (what the watch holds back)', () => {
  const { h, node, pauses, sentAfterRestart } = rebuiltHome(41, 0);
  assert.ok(h.run(() => node.app.height >= 30));
  assert.equal(pauses.length, 0);
  // Past its first heights (which it may sign before it learns it is behind).
  assert.ok(
    sentAfterRestart.some((height) => height > 12 && height <= 11 + DOUBLE_SIGN_WATCH_HEIGHTS),
  );
});

test('a checkpoint round-trips with and without a pause; older checkpoints still read', () => {
  const state = new Harness({ n: 4, seed: 1 }).nodes[0]!.replica.chainState;
  const plain = { kind: 'checkpoint', state } as const;
  const paused = { kind: 'checkpoint', state, signingPausedUntil: 123 } as const;
  const plainBytes = encode(walRecordCodec, plain);
  assert.deepEqual(decode(walRecordCodec, plainBytes), plain);
  const pausedBytes = encode(walRecordCodec, paused);
  assert.deepEqual(decode(walRecordCodec, pausedBytes), paused);
  assert.equal(pausedBytes.length, plainBytes.length + 1);
  // A pause of 0 is written as no field: one encoding per record.
  assert.throws(
    () => decode(walRecordCodec, Uint8Array.of(...plainBytes, 0)),
    /heights start at 1/,
  );
});

test('the pause outlives a crash right after a checkpoint that dropped the records before it', () => {
  for (const seed of [45, 46]) {
    const { h, node, pauses, sentAfterPause } = rebuiltHome(seed);
    let crashed = false;
    const before = h.afterEffect!;
    h.afterEffect = (n, effect) => {
      before(n, effect);
      // The harness compacts the WAL at a synced checkpoint: nothing after it is durable yet.
      if (crashed || n.index !== 3 || pauses.length === 0) return;
      if (effect.kind !== 'persist' || effect.record[0] !== 0) return;
      const until = Math.max(...pauses.map((p) => p.untilHeight));
      if (node.app.height + 2 > until) return;
      crashed = true;
      h.crash(3);
    };
    assert.ok(h.run(() => crashed || node.app.height >= 40));
    assert.ok(crashed, `seed ${seed}: the crash point was reached`);
    const until = Math.max(...pauses.map((p) => p.untilHeight));
    h.restart(3);
    assert.ok(h.run(() => node.app.height >= until + 5));
    assert.ok(
      sentAfterPause.every((height) => height > until),
      `seed ${seed}: signed at ${sentAfterPause.find((x) => x <= until)} within the pause to ${until}`,
    );
  }
});

test('a validator whose index moves with a set change, crashed or cut off around it, catches up without pausing', () => {
  const H = 5;
  for (let k = 0; k < 24; k++) {
    const h = new Harness({ n: 4, seed: 900 + k, compactWal: true, spareKeys: 1 });
    // A newcomer: the members whose addresses sort after its own move up one index at H + 2.
    const newcomer = h.keys[4]!;
    const before = ValidatorSet.fromUpdates(h.genesis.validators);
    const after = ValidatorSet.fromUpdates([
      ...h.genesis.validators,
      { publicKey: newcomer.publicKey, power: 1 },
    ]);
    const movers = [0, 1, 2, 3].filter(
      (i) => before.indexOf(h.keys[i]!.publicKey) !== after.indexOf(h.keys[i]!.publicKey),
    );
    assert.ok(movers.length > 0);
    for (const n of h.nodes) n.app.updatesAt.set(H, [{ publicKey: newcomer.publicKey, power: 1 }]);
    const victim = movers[k % movers.length]!;
    const crash = k % 2 === 0;
    let cut = false;
    let healed = false;
    h.filter = (from, to) => !cut || (from !== victim && to !== victim);
    h.afterEffect = (node) => {
      if (cut || healed || node.index !== victim || node.app.height < H - 1 + (k >> 2)) return;
      if (node.effectsDone % 3 !== k % 3) return;
      cut = true;
      if (crash) h.crash(victim);
    };
    h.startAll();
    assert.ok(h.run(() => cut));
    const others = [0, 1, 2, 3].filter((i) => i !== victim);
    assert.ok(
      h.run(() => h.minCommitted(others) >= H + 8),
      `k ${k}`,
    );
    cut = false;
    healed = true;
    if (crash) h.restart(victim);
    assert.ok(
      h.run(() => h.minCommitted() >= H + 14),
      `k ${k}`,
    );
    const set = h.nodes[victim]!.replica.validators;
    for (const n of h.nodes) {
      assert.equal(n.replica.metrics.signingPaused, 0, `k ${k}: node ${n.index} paused`);
    }
    assert.equal(set.size, 5);
  }
});

test('the input of the height that starts or moves a pause is synced: the shell does not sync every checkpoint', () => {
  const h = rebuiltHome(47);
  const synced: boolean[] = [];
  let afterPause = false;
  const before = h.h.afterEffect!;
  h.h.afterEffect = (n, effect) => {
    before(n, effect);
    if (n.index !== 3) return;
    if (effect.kind === 'signingPaused') afterPause = true;
    else if (afterPause && effect.kind === 'persist') {
      afterPause = false;
      const record = decode(walRecordCodec, effect.record);
      assert.ok(record.kind === 'input' && record.input.kind === 'blockExecuted');
      synced.push(effect.sync);
    }
  };
  assert.ok(h.h.run(() => h.node.app.height >= 20));
  assert.ok(synced.length > 0);
  assert.ok(synced.every((s) => s));
});
