import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from './harness.ts';

test('a crash after any effect, then a restart from the durable WAL, never makes a replica sign twice', () => {
  // One run per crash point: replica 0 crashes right after its k-th effect, losing
  // every record after the last sync barrier (or keeping part of that tail), and
  // restarts at once. Every vote and proposal it ever released is checked.
  let points = 0;
  for (let k = 1; k <= 120; k++) {
    for (const keepUnsynced of [0, 2]) {
      // The WAL is cut at each synced checkpoint, as the node's is.
      const h = new Harness({ n: 4, seed: 100 + k, compactWal: keepUnsynced === 0 });
      let crashed = false;
      h.afterEffect = (node) => {
        if (crashed || node.index !== 0 || node.effectsDone !== k) return;
        crashed = true;
        h.crash(0, keepUnsynced);
      };
      h.startAll();
      assert.ok(h.run(() => crashed || h.minCommitted() >= 8));
      if (crashed) h.restart(0);
      assert.ok(
        h.run(() => h.minCommitted() >= 10),
        `crash point ${k}`,
      );
      assert.equal(h.doubleSigns, 0, `crash point ${k}`);
      assert.equal(h.nodes[0]!.replica.metrics.doubleSignRefused, 0, `crash point ${k}`);
      if (crashed) points++;
    }
  }
  assert.ok(points >= 200);
});

test('a replica replays its WAL and re-sends exactly what it signed', () => {
  const h = new Harness({ n: 4, seed: 7 });
  h.startAll();
  assert.ok(h.run(() => h.minCommitted() >= 3));
  h.crash(1);
  const before = h.released.size;
  h.restart(1);
  assert.ok(h.run(() => h.minCommitted() >= 12));
  assert.ok(h.released.size > before);
  assert.equal(h.doubleSigns, 0);
});

test('a replica down for 10,000 heights catches up from blocks with certificates', () => {
  const h = new Harness({ n: 4, seed: 8 });
  h.startAll();
  h.crash(3);
  assert.ok(h.run(() => h.minCommitted([0, 1, 2]) >= 10_000, 100_000_000));
  const target = h.minCommitted([0, 1, 2]);
  h.restart(3);
  assert.ok(h.run(() => h.height(3) >= target, 100_000_000));
  for (const height of [1, 5_000, target]) {
    assert.equal(h.nodes[3]!.committed.get(height), h.nodes[0]!.committed.get(height));
  }
  assert.deepEqual(h.nodes[3]!.app.appHash, h.nodes[0]!.app.results.get(h.height(3))!.appHash);
  // And it joins consensus again.
  const joined = h.minCommitted();
  assert.ok(h.run(() => h.minCommitted() >= joined + 5));
});

test('checkpoints are synced, so a log cut at each one restarts from it', () => {
  const h = new Harness({ n: 4, seed: 9, compactWal: true });
  let checkpoints = 0;
  let crashed = false;
  h.afterEffect = (node, effect) => {
    if (effect.kind !== 'persist' || effect.record[0] !== 0) return;
    assert.equal(effect.sync, true, 'a checkpoint is a sync barrier');
    checkpoints++;
    if (node.index === 2 && !crashed && node.app.height === 5) {
      crashed = true;
      // Only the checkpoint survives the cut: replay starts there.
      assert.equal(node.wal.length, 1);
      h.crash(2);
    }
  };
  h.startAll();
  assert.ok(h.run(() => crashed));
  h.restart(2);
  assert.equal(h.nodes[2]!.replica.height, 6);
  assert.ok(h.run(() => h.minCommitted() >= 12));
  assert.ok(checkpoints > 0);
  assert.equal(h.doubleSigns, 0);
});

test('timeouts are counted by step: none while all are up, a propose timeout per height a crashed validator should have proposed', () => {
  const h = new Harness({ n: 4, seed: 9 });
  h.startAll();
  assert.ok(h.run(() => h.minCommitted() >= 8));
  for (const node of h.nodes) {
    assert.deepEqual(node.replica.timeoutsFired, { propose: 0, prevote: 0, precommit: 0 });
  }
  h.crash(2);
  const from = h.minCommitted([0, 1, 3]);
  assert.ok(h.run(() => h.minCommitted([0, 1, 3]) >= from + 12));
  for (const i of [0, 1, 3]) {
    const fired = h.nodes[i]!.replica.timeoutsFired;
    // Round-robin: the crashed validator's turns come every four rounds, and each costs a round.
    assert.ok(fired.propose >= 2, `validator ${i}: ${JSON.stringify(fired)}`);
  }
});
