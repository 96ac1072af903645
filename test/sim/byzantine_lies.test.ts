// The Byzantine behaviours beyond the first five (src/sim/byzantine.ts): each
// tells its lie (the forger rewrote messages), the honest replicas refuse what
// is refusable, and every checker holds — agreement, BFT time within the
// honest times, no evidence against an honest validator, progress.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_CONFIG, SIM_GENESIS_MS, Simulator } from '../../src/sim/index.ts';
import type { SimConfig, SimNode, SimResult } from '../../src/sim/index.ts';
import { SIM_SKEWED_TIME_MS } from '../../src/lib/limits.ts';

function run(overrides: Partial<SimConfig>): {
  sim: Simulator;
  result: SimResult;
  honest: SimNode[];
  lies: number;
} {
  const sim = new Simulator({
    ...DEFAULT_CONFIG,
    validators: 4,
    byzantine: 1,
    heights: 12,
    ...overrides,
  });
  const result = sim.run();
  const replay = result.replay;
  assert.deepEqual(result.violations, [], replay);
  assert.ok(result.heightsCommitted >= result.config.heights, `too few heights: ${replay}`);
  const lies = sim.nodes.reduce((sum, n) => sum + (n.forger?.liesTold ?? 0), 0);
  assert.ok(lies > 0, `no lie told: ${replay}`);
  return { sim, result, honest: sim.nodes.filter((n) => n.behavior === null), lies };
}

function dropped(
  honest: SimNode[],
  reason: 'badExtension' | 'badEvidence' | 'badCertificate',
): number {
  return honest.reduce((sum, n) => sum + n.replica.metrics[reason], 0);
}

/** Whether an honest node's committed blocks carry a precommit dated far from every clock. */
function carriesSkewedTime(honest: SimNode[]): boolean {
  return honest.some((n) =>
    [...n.blocks.values()].some(({ block }) =>
      (block.lastCommit?.votes ?? []).some(
        (v) => v.timestampMs === 0 || v.timestampMs > SIM_GENESIS_MS + SIM_SKEWED_TIME_MS / 2,
      ),
    ),
  );
}

test('time-skew: precommits dated at the epoch or decades ahead reach certificates; block time stays within the honest times', () => {
  for (const seed of [1, 2]) {
    const { honest } = run({ seed, behavior: 'time-skew' });
    assert.ok(carriesSkewedTime(honest), `seed ${seed}: no skewed precommit in a certificate`);
  }
});

test('commit-trim: a proposer cutting its lastCommit to its own far-future precommit and the fewest others cannot move BFT time out', () => {
  for (const [seed, faults] of [
    [1, 'none'],
    [2, 'loss'],
  ] as const) {
    const { honest } = run({ seed, faults, behavior: 'commit-trim' });
    assert.ok(carriesSkewedTime(honest), `seed ${seed}: no trimmed certificate committed`);
  }
  run({ seed: 3, validators: 7, byzantine: 2, faults: 'partition', behavior: 'commit-trim' });
});

test('bad-extension: precommits with refused extensions are dropped, and the chain goes on', () => {
  const { honest } = run({ seed: 1, behavior: 'bad-extension' });
  assert.ok(dropped(honest, 'badExtension') > 0, 'extensions refused');
});

test('catchup-forge: altered blocks under real certificates and evidence of no offence are refused', () => {
  const { honest } = run({ seed: 2, faults: 'crash', behavior: 'catchup-forge' });
  assert.ok(dropped(honest, 'badCertificate') > 0, 'a forged block refused in catch-up');
  assert.ok(dropped(honest, 'badEvidence') > 0, 'evidence of no offence refused');
});

test('lying-pol and amnesia: wrong POL rounds and votes that ignore the lock break nothing', () => {
  run({ seed: 6, faults: 'partition', behavior: 'lying-pol' });
  run({ seed: 7, validators: 7, byzantine: 2, faults: 'chaos', behavior: 'lying-pol' });
  run({ seed: 6, faults: 'partition', behavior: 'amnesia' });
  run({ seed: 7, validators: 7, byzantine: 2, faults: 'chaos', behavior: 'amnesia' });
});

test('withhold: a double-voter leaving evidence out of its blocks and sending it twice is still jailed by honest proposers', () => {
  for (const [seed, validators, byzantine, faults] of [
    [1, 4, 1, 'none'],
    [3, 7, 2, 'chaos'],
  ] as const) {
    const { result } = run({ seed, validators, byzantine, faults, behavior: 'withhold' });
    assert.ok(result.evidence.committed > 0, `no evidence committed: ${result.replay}`);
    assert.equal(result.evidence.committed, result.evidence.seen, result.replay);
  }
});
