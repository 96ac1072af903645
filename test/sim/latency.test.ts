import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_CONFIG,
  analyticCommitUs,
  boundsFor,
  buildTopology,
  fibreDelayUs,
  greatCircleKm,
  percentile,
  SITES_4_CONTINENTS,
  simulate,
} from '../../src/sim/index.ts';

test('great-circle delays: Frankfurt–Virginia about 6,500 km, ~32 ms one way in fibre', () => {
  const [virginia, frankfurt, tokyo, saoPaulo] = SITES_4_CONTINENTS;
  const km = greatCircleKm(virginia!, frankfurt!);
  assert.ok(km > 6_400 && km < 6_700, String(km));
  const us = fibreDelayUs(km);
  assert.ok(us > 31_000 && us < 34_000, String(us));
  assert.ok(greatCircleKm(tokyo!, saoPaulo!) > 18_000);
  const t = buildTopology('4-continents', 4, 1);
  assert.deepEqual(t.siteOf, ['virginia', 'frankfurt', 'tokyo', 'sao-paulo']);
  for (let i = 0; i < 4; i++) {
    assert.equal(t.latencyUs[i]![i], 0);
    for (let j = 0; j < 4; j++) assert.equal(t.latencyUs[i]![j], t.latencyUs[j]![i]);
  }
});

test('the analytic bound by hand: 4 nodes on a line, quorum 3', () => {
  // d(i, j) = 10·|i − j|; proposer 0.
  const d = [0, 1, 2, 3].map((i) => [0, 1, 2, 3].map((j) => 10 * Math.abs(i - j)));
  // Proposal arrives at 0, 10, 20, 30, and each node prevotes on arrival. The 3rd
  // prevote reaches node 0 at 40 (own 0, n1 20, n2 40), node 1 at 30, node 2 at 20
  // (n0, n1 and itself all at 20), node 3 at 30. Precommits leave at 40, 30, 20, 30;
  // node 0 has three at 40, node 1 at 50 (30, 30, 50), node 2 at 40, node 3 at 50.
  assert.deepEqual(analyticCommitUs(d, [1, 1, 1, 1], 0), [40, 50, 40, 50]);
});

test('fault-free on 4 continents, the p50 commit latency is within 1.15x of the analytic bound', () => {
  const r = simulate({ ...DEFAULT_CONFIG, topology: '4-continents', heights: 60, txsPerBlock: 0 });
  assert.deepEqual(r.violations, []);
  const topology = buildTopology('4-continents', 4, 1);
  const bounds = boundsFor(topology, r.latencySamples);
  const measured = percentile(r.commitLatenciesUs, 50);
  const bound = percentile(bounds, 50);
  assert.ok(measured >= bound, `${measured} < ${bound}`);
  assert.ok(measured <= 1.15 * bound, `${measured} > 1.15 × ${bound}`);
  // No sample beats its own bound.
  r.latencySamples.forEach((s, i) => assert.ok(s.latencyUs >= bounds[i]!, `height ${s.height}`));
});
