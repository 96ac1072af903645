// Profiling driver for the consensus core: N replicas commit empty blocks with
// keyed-hash signatures and one shared, memoized verifier. Two drivers:
// `harness` (test/consensus/harness.ts, a plain event queue, so the time is
// mostly the core's) and `sim` (src/sim's Simulator, what bench:sim runs, with
// its network model and checkers). Prints one JSON line: heights per second of
// wall time and of CPU time (the steadier figure on a shared machine).
//
//   node --import tsx scripts/profile-consensus.ts --validators 4 --heights 10000
//   node --import tsx scripts/profile-consensus.ts --validators 100 --heights 30 --driver sim
//   node --cpu-prof --cpu-prof-dir /tmp/prof --import tsx scripts/profile-consensus.ts …
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { Harness, type MemoVerifier } from '../test/consensus/harness.ts';
import { DEFAULT_CONFIG, Simulator } from '../src/sim/index.ts';
import type { Replica } from '../src/consensus/replica.ts';

const { values } = parseArgs({
  options: {
    validators: { type: 'string', default: '4' },
    heights: { type: 'string', default: '2000' },
    crypto: { type: 'string', default: 'fake' },
    txs: { type: 'string', default: '0' },
    seed: { type: 'string', default: '1' },
    driver: { type: 'string', default: 'harness' },
  },
});
const n = Number(values.validators);
const heights = Number(values.heights);
const crypto = values.crypto === 'ed25519' ? 'ed25519' : 'fake';
const seed = Number(values.seed);
const txs = Number(values.txs);

function measure(run: () => number): { committed: number; wallMs: number; cpuMs: number } {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const committed = run();
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { committed, wallMs, cpuMs: (cpu.user + cpu.system) / 1000 };
}

function report(extra: object, m: { committed: number; wallMs: number; cpuMs: number }): void {
  console.log(
    JSON.stringify({
      driver: values.driver,
      validators: n,
      crypto,
      heights: m.committed,
      wallMs: Math.round(m.wallMs),
      heightsPerSec: Math.round((m.committed * 1000) / m.wallMs),
      cpuMs: Math.round(m.cpuMs),
      heightsPerCpuSec: Math.round((m.committed * 1000) / m.cpuMs),
      ...extra,
    }),
  );
}

if (values.driver === 'sim') {
  const sim = new Simulator({
    ...DEFAULT_CONFIG,
    validators: n,
    heights,
    seed,
    crypto: crypto === 'ed25519' ? 'ed25519' : 'fast',
    memoize: true,
    txsPerBlock: txs,
  });
  const m = measure(() => sim.run().heightsCommitted);
  report({}, m);
} else {
  const h = new Harness({
    n,
    seed,
    crypto,
    txsPerBlock: txs,
    memoizeVerifier: true,
    checkReleased: false,
    compactWal: true,
    storeHeightsMax: 1_000,
  });
  // Time inside the replicas' entry points, apart from the harness's own queue work.
  let replicaMs = 0;
  for (const node of h.nodes) wrap(node.replica);
  function wrap(replica: Replica): void {
    for (const name of ['start', 'handle'] as const) {
      const original = replica[name].bind(replica) as (...args: unknown[]) => unknown;
      (replica as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
        const t0 = performance.now();
        try {
          return original(...args);
        } finally {
          replicaMs += performance.now() - t0;
        }
      };
    }
  }
  const m = measure(() => {
    h.startAll();
    // Node 0 first: minCommitted() walks every node, too slow to ask after each event.
    const ok = h.run(
      () => h.nodes[0]!.topCommitted >= heights && h.minCommitted() >= heights,
      1e12,
    );
    if (!ok) throw new Error(`stopped at height ${h.minCommitted()}`);
    return h.minCommitted();
  });
  const verifier = h.verifier as MemoVerifier;
  report(
    {
      replicaShare: Number((replicaMs / m.wallMs).toFixed(3)),
      verifyCalls: verifier.calls,
      verifyComputed: verifier.computed,
    },
    m,
  );
}
