import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from './harness.ts';

function assertAgree(h: Harness, upTo: number, indices = h.nodes.map((n) => n.index)): void {
  for (let height = 1; height <= upTo; height++) {
    const hashes = new Set(indices.map((i) => h.nodes[i]!.committed.get(height)));
    assert.equal(hashes.size, 1, `height ${height}`);
    const appHashes = new Set(
      indices.map((i) => h.nodes[i]!.app.results.get(height)?.appHash.join()),
    );
    assert.equal(appHashes.size, 1, `app hash at ${height}`);
  }
}

test('4 replicas commit many heights with identical blocks', () => {
  const h = new Harness({ n: 4, seed: 1 });
  h.startAll();
  assert.ok(h.run(() => h.minCommitted() >= 200));
  assertAgree(h, 200);
  assert.equal(h.doubleSigns, 0);
});

test('with one replica crashed the other three continue', () => {
  const h = new Harness({ n: 4, seed: 2 });
  h.startAll();
  assert.ok(h.run(() => h.minCommitted() >= 5));
  h.crash(3);
  const at = h.minCommitted([0, 1, 2]);
  assert.ok(h.run(() => h.minCommitted([0, 1, 2]) >= at + 30));
  assertAgree(h, at + 30, [0, 1, 2]);
});

test('with two of four crashed nothing commits; after a restart the chain moves again', () => {
  const h = new Harness({ n: 4, seed: 3 });
  h.startAll();
  assert.ok(h.run(() => h.minCommitted() >= 5));
  h.crash(2);
  h.crash(3);
  const stuckAt = Math.max(h.height(0), h.height(1));
  assert.equal(
    h.run(() => h.height(0) > stuckAt + 1, 20_000),
    false,
  );
  assert.ok(h.height(0) <= stuckAt + 1 && h.height(1) <= stuckAt + 1);
  h.restart(2);
  assert.ok(h.run(() => h.minCommitted([0, 1, 2]) >= stuckAt + 10));
  assertAgree(h, stuckAt + 10, [0, 1, 2]);
  h.restart(3);
  assert.ok(h.run(() => h.minCommitted() >= stuckAt + 20));
  assertAgree(h, stuckAt + 20);
  assert.equal(h.doubleSigns, 0);
});

test("blocks carry the previous height's vote extensions and BFT time that always grows", () => {
  const h = new Harness({ n: 4, seed: 4, powers: [1, 2, 3, 4] });
  h.startAll();
  assert.ok(h.run(() => h.minCommitted() >= 30));
  const blocks = h.nodes[0]!.app.blocks;
  for (let i = 1; i < blocks.length; i++) {
    const block = blocks[i]!;
    const commit = block.lastCommit!;
    assert.equal(commit.height, i);
    for (const v of commit.votes) {
      assert.match(new TextDecoder().decode(v.extension), new RegExp(`^ext v\\d ${i}$`));
    }
    assert.ok(block.header.timeMs > blocks[i - 1]!.header.timeMs);
    // The stake-weighted median of the certificate's timestamps.
    const set = h.nodes[0]!.replica.validators;
    const entries = commit.votes
      .map((v) => ({ t: v.timestampMs, p: set.validators[v.validatorIndex]!.power }))
      .sort((a, b) => a.t - b.t);
    const total = entries.reduce((s, e) => s + e.p, 0);
    let sum = 0;
    let median = 0;
    for (const e of entries) {
      sum += e.p;
      if (2 * sum > total) {
        median = e.t;
        break;
      }
    }
    assert.equal(block.header.timeMs, Math.max(median, blocks[i - 1]!.header.timeMs + 1));
  }
});
