// Profiling driver for the consensus core: N replicas on the test harness
// (test/consensus/harness.ts) commit empty blocks with a shared, memoized
// verifier, as the simulator runs them. Prints one JSON line: heights per
// second overall and the share of time spent inside the replicas.
//
//   node --import tsx scripts/profile-consensus.ts --validators 4 --heights 5000
//   node --cpu-prof --cpu-prof-dir /tmp/prof --import tsx scripts/profile-consensus.ts …
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { Harness } from '../test/consensus/harness.ts';
import type { Replica } from '../src/consensus/replica.ts';

const { values } = parseArgs({
  options: {
    validators: { type: 'string', default: '4' },
    heights: { type: 'string', default: '2000' },
    crypto: { type: 'string', default: 'fake' },
    txs: { type: 'string', default: '0' },
    seed: { type: 'string', default: '1' },
  },
});
const n = Number(values.validators);
const heights = Number(values.heights);
const crypto = values.crypto === 'ed25519' ? 'ed25519' : 'fake';

const h = new Harness({
  n,
  seed: Number(values.seed),
  crypto,
  txsPerBlock: Number(values.txs),
  memoizeVerifier: true,
  checkReleased: false,
  compactWal: true,
  storeHeightsMax: 1_000,
});

// Time inside the replicas' entry points, apart from the harness's own queue work.
let replicaMs = 0;
let calls = 0;
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
        calls++;
      }
    };
  }
}

const t0 = performance.now();
const cpu0 = process.cpuUsage();
h.startAll();
// Node 0 first: minCommitted() walks every node, too slow to ask after each event.
const ok = h.run(() => h.nodes[0]!.topCommitted >= heights && h.minCommitted() >= heights, 1e12);
const wallMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
// CPU time, not wall time, is what the shared machine's other work disturbs least.
const cpuMs = (cpu.user + cpu.system) / 1000;
if (!ok) throw new Error(`stopped at height ${h.minCommitted()}`);
const committed = h.minCommitted();
const verifier = h.verifier as unknown as { calls: number; computed: number };
console.log(
  JSON.stringify({
    validators: n,
    crypto,
    heights: committed,
    wallMs: Math.round(wallMs),
    heightsPerSec: Math.round((committed * 1000) / wallMs),
    cpuMs: Math.round(cpuMs),
    heightsPerCpuSec: Math.round((committed * 1000) / cpuMs),
    replicaShare: Number((replicaMs / wallMs).toFixed(3)),
    replicaCalls: calls,
    verifyCalls: verifier.calls,
    verifyComputed: verifier.computed,
  }),
);
