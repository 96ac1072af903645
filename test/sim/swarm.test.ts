import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSwarm, swarmConfig } from '../../src/sim/index.ts';
import type { SwarmSummary } from '../../src/sim/index.ts';

// The bounded swarm of CI: a few hundred seeds with small heights, each with its
// own mix of validators, topology, faults and Byzantine behaviours (within f).
const SEEDS = 300;

let summary: SwarmSummary | null = null;
function swarm(): SwarmSummary {
  summary ??= runSwarm({
    firstSeed: 1,
    seeds: SEEDS,
    heightsMax: 12,
    timeBudgetMs: Infinity,
    elapsedMs: () => 0,
  });
  return summary;
}

function failuresText(s: SwarmSummary, kinds: readonly string[]): string {
  return s.failures
    .flatMap((f) =>
      f.violations.filter((v) => kinds.includes(v.kind)).map((v) => `${f.replay}: ${v.message}`),
    )
    .join('\n');
}

test(`swarm of ${SEEDS} seeds: no safety violation`, () => {
  const s = swarm();
  assert.equal(s.seedsRun, SEEDS);
  assert.equal(
    s.safetyViolations,
    0,
    failuresText(s, ['agreement', 'validity', 'appHash', 'doubleSign', 'bftTime', 'falseEvidence']),
  );
  assert.ok(s.heightsCommitted > SEEDS * 3);
});

test(`swarm of ${SEEDS} seeds: live after every heal`, () => {
  const s = swarm();
  assert.equal(s.livenessViolations, 0, failuresText(s, ['liveness', 'evidence']));
});

test('swarm options are drawn from the seed and cover every fault and behaviour', () => {
  assert.deepEqual(swarmConfig(42, 12), swarmConfig(42, 12));
  const configs = Array.from({ length: SEEDS }, (_, i) => swarmConfig(i + 1, 12));
  for (const faults of ['none', 'loss', 'partition', 'crash', 'chaos']) {
    assert.ok(
      configs.some((c) => c.faults === faults),
      faults,
    );
  }
  for (const behavior of [
    'twins',
    'equivocate',
    'double-vote',
    'silent',
    'mixed',
    'time-skew',
    'bad-extension',
    'lying-pol',
    'amnesia',
    'commit-trim',
    'withhold',
    'catchup-forge',
  ]) {
    assert.ok(
      configs.some((c) => c.behavior === behavior && c.byzantine > 0),
      behavior,
    );
  }
  assert.ok(configs.some((c) => c.topology === '4-continents'));
  assert.ok(configs.every((c) => 3 * c.byzantine < c.validators || c.byzantine === 0));
});

test('a swarm is reproducible: the same seeds give the same trace hashes', () => {
  const a = runSwarm({
    firstSeed: 7,
    seeds: 10,
    heightsMax: 6,
    timeBudgetMs: Infinity,
    elapsedMs: () => 0,
  });
  const b = runSwarm({
    firstSeed: 7,
    seeds: 10,
    heightsMax: 6,
    timeBudgetMs: Infinity,
    elapsedMs: () => 0,
  });
  assert.equal(a.traceHash, b.traceHash);
  assert.deepEqual(a.traceHashes, b.traceHashes);
  assert.equal(new Set(a.traceHashes).size, 10);
});

test('the time budget stops a swarm after the seed it is in', () => {
  let calls = 0;
  const s = runSwarm({
    firstSeed: 1,
    seeds: 50,
    heightsMax: 4,
    timeBudgetMs: 3,
    elapsedMs: () => calls++,
  });
  assert.equal(s.seedsRun, 4);
});
