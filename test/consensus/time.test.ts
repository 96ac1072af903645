import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { weightedMedianMs } from '../../src/consensus/replica.ts';
import { ValidatorSet } from '../../src/consensus/validators.ts';
import type { CommitCertificate } from '../../src/consensus/types.ts';
import { FakeCrypto } from './harness.ts';

/** The definition: sort (time, power) pairs, return the first time past half the certificate's power. */
function reference(commit: CommitCertificate, set: ValidatorSet): number {
  const entries = commit.votes
    .map((v) => ({ timeMs: v.timestampMs, power: set.validators[v.validatorIndex]!.power }))
    .sort((a, b) => a.timeMs - b.timeMs);
  const total = entries.reduce((s, e) => s + e.power, 0);
  let sum = 0;
  for (const e of entries) {
    sum += e.power;
    if (2 * sum > total) return e.timeMs;
  }
  return 0;
}

test('BFT time is the stake-weighted median of the certificate, ties and all', () => {
  const crypto = new FakeCrypto();
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          power: fc.integer({ min: 1, max: 50 }),
          timeMs: fc.integer({ min: 0, max: 20 }),
        }),
        {
          minLength: 1,
          maxLength: 12,
        },
      ),
      (members) => {
        const set = ValidatorSet.fromUpdates(
          members.map((m, i) => ({ publicKey: crypto.key(i).publicKey, power: m.power })),
        );
        const votes = members.map((m, i) => ({
          validatorIndex: i,
          timestampMs: m.timeMs,
          extension: new Uint8Array(0),
          signature: new Uint8Array(64),
        }));
        const commit = { height: 1, round: 0, blockHash: new Uint8Array(32), votes };
        // Members are re-ordered by address in the set: index i names whoever sits there.
        assert.equal(weightedMedianMs(commit, set), reference(commit, set));
      },
    ),
    { seed: 7, numRuns: 300 },
  );
});
