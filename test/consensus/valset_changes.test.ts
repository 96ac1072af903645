// Validator-set changes at their boundary (docs/protocol.md, "Validator-set
// changes" and "Evidence"): a member leaving shifts the indices of those after
// it, evidence names its offender by an index into the set of its own height,
// and replicas that restart or catch up across the change agree with the rest.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encode } from '../../src/codec/wire.ts';
import { bytesEqual, toHex } from '../../src/lib/bytes.ts';
import { messageCodec } from '../../src/consensus/codec.ts';
import type { Misbehavior } from '../../src/consensus/types.ts';
import { ValidatorSet } from '../../src/consensus/validators.ts';
import { FakeCrypto, Harness, equivocation } from './harness.ts';

test('evidence of the set before a change resolves there, after a member left and indices shifted', () => {
  const h = new Harness({ n: 5, seed: 77, compactWal: true });
  const genesisSet = ValidatorSet.fromUpdates(h.genesis.validators);
  const keyAt = (index: number) =>
    h.keys.findIndex((k) => bytesEqual(k.publicKey, genesisSet.validators[index]!.publicKey));
  // The member of the lowest address leaves: every other index moves down one.
  const leaving = keyAt(0);
  const lastIndex = genesisSet.size - 1;
  const last = keyAt(lastIndex);
  const H = 4;
  for (const n of h.nodes) {
    n.app.updatesAt.set(H, [{ publicKey: h.keys[leaving]!.publicKey, power: 0 }]);
  }
  const misbehavior: Misbehavior[][] = h.nodes.map(() => []);
  h.afterEffect = (node, effect) => {
    if (effect.kind === 'finalizeBlock') misbehavior[node.index]!.push(...effect.misbehavior);
  };
  h.startAll();
  // One replica is down across the change: it restarts and catches up by blocks.
  const lagger = [0, 1, 2, 3, 4].find((i) => i !== leaving && i !== last)!;
  assert.ok(h.run(() => h.minCommitted() >= H - 1));
  h.crash(lagger);
  const up = [0, 1, 2, 3, 4].filter((i) => i !== lagger);
  assert.ok(h.run(() => h.minCommitted(up) >= H + 8));
  assert.equal(h.nodes[up[0]!]!.replica.validators.size, genesisSet.size - 1);
  assert.equal(h.nodes[up[0]!]!.replica.validators.indexOf(h.keys[last]!.publicKey), lastIndex - 1);

  // Evidence of height H+1, the last the leaving member decided, against it
  // (gone since) and against the last member (at its old index). The first
  // can change nothing (its offender left the set): it is dropped
  // (docs/protocol.md, "Evidence"); the second resolves to the last member's
  // key by its index in the set before the change.
  const gone = equivocation(h, leaving, H + 1, 0);
  const shifted = equivocation(h, last, H + 1, lastIndex);
  for (const to of up) {
    for (const evidence of [gone, shifted]) {
      h.send(leaving, to, encode(messageCodec, { kind: 'evidence', evidence }));
    }
  }
  h.restart(lagger);
  assert.ok(h.run(() => h.minCommitted() >= H + 20));
  for (let height = 1; height <= H + 20; height++) {
    assert.equal(new Set(h.nodes.map((n) => n.committed.get(height))).size, 1, `height ${height}`);
  }
  const committed = h.nodes[up[0]!]!.app.blocks.flatMap((b) => b.evidence);
  assert.equal(committed.length, 1, 'committed once');
  assert.deepEqual(committed[0], shifted);
  const offenders = new Set([toHex(h.keys[last]!.publicKey)]);
  for (const i of up) {
    assert.deepEqual(new Set(misbehavior[i]!.map((m) => toHex(m.publicKey))), offenders, `${i}`);
  }
  for (const n of h.nodes) assert.equal(n.replica.metrics.badEvidence, 0);
});

const crypto = new FakeCrypto();
const keys = Array.from({ length: 40 }, (_, i) => crypto.key(i).publicKey);

test('proposer selection after changes: the same from a recorded state, and each member proposes its share', () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 1_000 }), { minLength: 1, maxLength: 12 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 1_000 })), {
        maxLength: 6,
      }),
      fc.integer({ min: 1, max: 400 }),
      (powers, changes, heights) => {
        let set = ValidatorSet.fromUpdates(
          powers.map((power, i) => ({ publicKey: keys[i]!, power })),
        );
        // One change a height (power 0 removes), as the replica applies them.
        for (const [k, power] of changes) {
          const present = set.indexOf(keys[k]!) >= 0;
          if (power === 0 && (!present || set.size === 1)) continue;
          set = set.withUpdates([{ publicKey: keys[k]!, power }]).advanced();
        }
        const again = ValidatorSet.fromState(set.toState());
        for (let r = 0; r < 5; r++) assert.equal(again.proposer(r), set.proposer(r));
        assert.equal(set.advanced().proposer(0), set.proposer(1));
        const counts = new Array<number>(set.size).fill(0);
        let s = set;
        for (let i = 0; i < heights; i++) {
          counts[s.proposer(0)]!++;
          s = s.advanced();
        }
        // count·total − heights·power is the member's priority change, and
        // priorities stay within a window of 2·total around a mean near 0.
        const total = set.totalPower;
        for (let i = 0; i < set.size; i++) {
          const gap = Math.abs(counts[i]! * total - heights * set.validators[i]!.power);
          assert.ok(gap <= 4 * total, `member ${i}: ${counts[i]} of ${heights}`);
        }
      },
    ),
    { numRuns: 500, seed: 7 },
  );
});
