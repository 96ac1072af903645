// A Byzantine validator that sends, with every vote, signed votes for a dozen
// rounds ahead (docs/protocol.md, "Votes for rounds ahead"): agreement and
// progress hold, and the replicas' per-validator bound refuses the flood before
// checking its signatures.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_CONFIG, simulate } from '../../src/sim/index.ts';
import type { SimConfig, SimResult } from '../../src/sim/index.ts';
import { SIM_FLOOD_AHEAD_ROUNDS } from '../../src/lib/limits.ts';

function run(overrides: Partial<SimConfig>): SimResult {
  return simulate({ ...DEFAULT_CONFIG, heights: 12, ...overrides });
}

test('flood-ahead: up to f validators flooding votes for rounds ahead, no violation, and few of the flood checked', () => {
  for (const [validators, byzantine, faults] of [
    [4, 1, 'none'],
    [4, 1, 'loss'],
    [7, 2, 'partition'],
  ] as const) {
    for (const seed of [1, 2]) {
      const base = { validators, faults, seed };
      const flood = run({ ...base, byzantine, behavior: 'flood-ahead' });
      assert.deepEqual(flood.violations, [], flood.replay);
      assert.ok(flood.heightsCommitted >= flood.config.heights, flood.replay);
      // Every vote the flooders release brings 2 × SIM_FLOOD_AHEAD_ROUNDS more.
      // Refused before their signatures (up to two rounds per flooder and gossip
      // period), the checks stay within twice those of a run where the same
      // validators are honest (1.3–1.5× at these seeds; 2.3× without the bound
      // at the first).
      const honest = run({ ...base, byzantine: 0 });
      assert.ok(
        flood.verify.calls < 2 * honest.verify.calls,
        `${flood.verify.calls} signature checks against ${honest.verify.calls} honest (each vote brings ${2 * SIM_FLOOD_AHEAD_ROUNDS} more): ${flood.replay}`,
      );
    }
  }
});
