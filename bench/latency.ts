// bench:latency — fault-free on "4 continents", the simulated p50 commit
// latency side by side with the analytic lower bound computed from the same
// latency matrix (proposal, then 2/3+ prevotes, then 2/3+ precommits along
// the quorum paths, zero processing time). The target: measured p50 ≤ 1.15 ×
// bound. Simulated time, so the figures do not depend on this machine; the
// wall time of the run is reported beside them. Prints one JSON line.

import { DEFAULT_CONFIG, boundsFor, percentile, simulate } from '../src/sim/index.ts';
import { buildTopology } from '../src/sim/topology.ts';

function row(validators: number, heights: number) {
  const start = performance.now();
  const r = simulate({
    ...DEFAULT_CONFIG,
    topology: '4-continents',
    validators,
    heights,
    txsPerBlock: 0,
  });
  const wallS = (performance.now() - start) / 1000;
  if (r.violations.length > 0) throw new Error(`violation in the benchmark run: ${r.replay}`);
  const bounds = boundsFor(buildTopology('4-continents', validators, 1), r.latencySamples);
  const ms = (us: number) => Math.round(us / 10) / 100;
  const measuredP50 = percentile(r.commitLatenciesUs, 50);
  const boundP50 = percentile(bounds, 50);
  return {
    validators,
    heights: r.heightsCommitted,
    measured_ms: { p50: ms(measuredP50), p99: ms(percentile(r.commitLatenciesUs, 99)) },
    bound_ms: { p50: ms(boundP50), p99: ms(percentile(bounds, 99)) },
    ratio_p50: Math.round((measuredP50 / boundP50) * 1000) / 1000,
    rounds_per_height: r.roundsPerHeight,
    wall_s: Math.round(wallS * 100) / 100,
  };
}

const four = row(4, 500);
const eight = row(8, 300);
console.log(
  JSON.stringify({
    bench: 'latency',
    topology: '4-continents',
    jitter: 'up to 2% of the link delay + 0.1 ms per message',
    four_validators: four,
    eight_validators: eight,
    target_ratio_p50_max: 1.15,
    ok: four.ratio_p50 <= 1.15 && eight.ratio_p50 <= 1.15,
  }),
);
