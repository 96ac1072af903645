import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from './harness.ts';

test('4 replicas commit many heights with identical blocks', () => {
  const h = new Harness({ n: 4, seed: 1 });
  h.startAll();
  assert.ok(h.run(() => h.minCommitted() >= 50));
  for (let height = 1; height <= 50; height++) {
    const hashes = new Set(h.nodes.map((n) => n.committed.get(height)));
    assert.equal(hashes.size, 1, `height ${height}`);
  }
  assert.equal(h.doubleSigns, 0);
});
