import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VALIDATOR_UPDATES_MAX } from '../../src/lib/limits.ts';
import { ValidatorSet, ValidatorSetError } from '../../src/consensus/validators.ts';
import type { MemoVerifier } from './harness.ts';
import { FakeCrypto, Harness } from './harness.ts';

test('a genesis set may hold more validators than one block may change', () => {
  const crypto = new FakeCrypto();
  const updates = Array.from({ length: VALIDATOR_UPDATES_MAX + 36 }, (_, i) => ({
    publicKey: crypto.key(i).publicKey,
    power: 10,
  }));
  const set = ValidatorSet.fromUpdates(updates);
  assert.equal(set.size, updates.length);
  // One block's changes stay bounded.
  const more = Array.from({ length: VALIDATOR_UPDATES_MAX + 1 }, (_, i) => ({
    publicKey: crypto.key(1_000 + i).publicKey,
    power: 10,
  }));
  assert.throws(() => set.withUpdates(more), ValidatorSetError);
});

test('an advanced set keeps its members, hash and index, with the next priorities', () => {
  const crypto = new FakeCrypto();
  const set = ValidatorSet.fromUpdates(
    [1, 2, 3].map((power, i) => ({ publicKey: crypto.key(i).publicKey, power })),
  );
  const next = set.advanced();
  assert.deepEqual(next.hash, set.hash);
  assert.equal(next.totalPower, set.totalPower);
  for (let i = 0; i < 3; i++) assert.equal(next.indexOf(set.validators[i]!.publicKey), i);
  assert.notDeepEqual(next.priorities, set.priorities);
});

test('100 validators commit with identical blocks', () => {
  const h = new Harness({ n: 100, seed: 21, txsPerBlock: 0, memoizeVerifier: true });
  h.startAll();
  assert.ok(h.run(() => h.minCommitted() >= 3));
  for (let height = 1; height <= 3; height++) {
    assert.equal(new Set(h.nodes.map((n) => n.committed.get(height))).size, 1);
  }
  assert.equal(h.doubleSigns, 0);
});

test('each replica checks each signature once: certificates and re-sent votes repeat what it verified', () => {
  const h = new Harness({ n: 4, seed: 22, memoizeVerifier: true });
  h.startAll();
  assert.ok(h.run(() => h.minCommitted() >= 50));
  const verifier = h.verifier as MemoVerifier;
  // Every signature reaches the three other replicas; none checks it twice.
  assert.ok(verifier.calls <= 3 * verifier.computed, `${verifier.calls} / ${verifier.computed}`);
});
