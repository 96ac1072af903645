// bench:cluster — committed orders per second and submit-to-commit latency of
// a four-validator Zomma cluster on loopback, against a three-member etcd
// cluster on the same machine doing 100-byte puts, at the same client
// concurrency, in the same run. Both answer a client only once its write is
// committed by a quorum and durable (Zomma: `wait=commit`;
// etcd: `/v3/kv/put`, which returns after the Raft commit and fsync).
//
// Zomma's load: C workers, each with its own funded account, send signed
// 1-lot limit orders alternating buy and sell across the index (so they
// trade against each other), spread over the four nodes' APIs: by default
// over one WebSocket per node (the `submit` op with wait=commit, as a
// trading client at volume would), or with --submit http one
// `POST /v1/tx?wait=commit` per order. Also reported:
// the share of the machine's signature-verification capacity in use
// (every validator checks every transaction once: 4 × txs/s, over one
// core's node:crypto verify rate × cores).
//
// commitPauseMs (the pause after each block, CometBFT's timeout_commit): 0
// here (--commit-pause-ms to change). Under continuous load every height has
// transactions waiting, so a pause only adds latency: measured on this 2-core
// machine at concurrency 32, 10 ms gave the same throughput (205 vs 221
// orders/s) with a p99 of 1.6 s against 0.36 s. The devnet keeps 250 ms,
// because an idle chain with no pause spins empty blocks on shared cores.
//
// The load generator stays light, so that the cores go to the clusters: both
// sides send through one node:http keep-alive agent (not fetch), and Zomma's
// orders are signed before the clock starts (PRESIGNED_TXS, spread over the
// workers; a worker that runs out signs on the fly).
//
// --genesis devnet (default): the devnet genesis, whose listing schedule lists
// dated futures and options at the first block (every one marked, and its
// ticker published, every block). --genesis perpetuals: the same without the
// listing (the two perpetuals only), the cost of orders through consensus
// alone. The JSON says which, and how many markets were live.
//
// Usage: npm run bench:cluster [-- --concurrency 32 --seconds 15 --genesis devnet --submit ws]
// Prints one JSON line.

import { spawn, spawnSync } from 'node:child_process';
import { Agent, request } from 'node:http';
import type { ChildProcess } from 'node:child_process';
import { generateKeyPair, signRaw, verifyRaw } from '../src/crypto/index.ts';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ZommaClient, generateKey } from '../src/api/client/index.ts';
import type { Trader } from '../src/api/client/index.ts';
import {
  PROPOSE_WAIT_MS_DEFAULT,
  loadConfig,
  loadGenesis,
  saveConfig,
  saveGenesis,
} from '../src/node/config.ts';
import { placeOrder } from '../src/exchange/tx/index.ts';
import { initNetwork } from '../src/node/init.ts';

const BIN = fileURLToPath(new URL('../bin/zomma.js', import.meta.url));
const WARMUP_MS = 3_000;
const VALUE_BYTES = 100;
/** Orders signed before the run, over all workers (about 20 s at 1,000 orders/s). */
const PRESIGNED_TXS = 20_000;

const { values } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '32' },
    seconds: { type: 'string', default: '15' },
    'base-port': { type: 'string', default: '33100' },
    'commit-pause-ms': { type: 'string', default: '0' },
    // Absent: the node's default (PROPOSE_WAIT_MS_DEFAULT).
    'propose-wait-ms': { type: 'string' },
    // Diagnosis: write a V8 CPU profile of every validator into this directory.
    'cpu-prof': { type: 'string' },
    // Diagnosis: leave etcd out (the JSON then has no ratio).
    'skip-etcd': { type: 'boolean', default: false },
    // devnet: the devnet genesis with its listing; perpetuals: without the listing.
    genesis: { type: 'string', default: 'devnet' },
    // http: one POST /v1/tx?wait=commit per order; ws: the same over one WebSocket per node.
    submit: { type: 'string', default: 'ws' },
  },
});
const CPU_PROF_DIR = values['cpu-prof'];
const concurrency = Number(values.concurrency);
const measureMs = Number(values.seconds) * 1_000;
const basePort = Number(values['base-port']);
const COMMIT_PAUSE_MS = Number(values['commit-pause-ms']);
const PROPOSE_WAIT_MS =
  values['propose-wait-ms'] === undefined
    ? PROPOSE_WAIT_MS_DEFAULT
    : Number(values['propose-wait-ms']);

const SUBMIT = values.submit;
if (SUBMIT !== 'http' && SUBMIT !== 'ws') {
  throw new Error(`--submit must be http or ws, not ${SUBMIT}`);
}

const GENESIS = values.genesis;
if (GENESIS !== 'devnet' && GENESIS !== 'perpetuals') {
  throw new Error(`--genesis must be devnet or perpetuals, not ${GENESIS}`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Load {
  committedPerS: number;
  p50Ms: number;
  p99Ms: number;
  committed: number;
  failed: number;
  failures: Record<string, number>;
  /** Every operation that succeeded, warm-up included. */
  succeeded: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

/** Runs `op` in `concurrency` loops; counts and times what completes inside the window. */
async function drive(
  workers: number,
  op: (worker: number, n: number) => Promise<void>,
): Promise<Load> {
  const start = performance.now();
  const windowStart = start + WARMUP_MS;
  const windowEnd = windowStart + measureMs;
  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  let failed = 0;
  let succeeded = 0;
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let n = 0; performance.now() < windowEnd; n++) {
        const t0 = performance.now();
        try {
          await op(w, n);
          const t1 = performance.now();
          succeeded++;
          if (t0 >= windowStart && t1 <= windowEnd) latencies.push(t1 - t0);
        } catch (error) {
          const code = String((error as { code?: unknown }).code ?? (error as Error).message);
          failures[code] = (failures[code] ?? 0) + 1;
          if (t0 >= windowStart) failed++;
          await sleep(20);
        }
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  return {
    committedPerS: Math.round((latencies.length * 1_000) / measureMs),
    p50Ms: Math.round(percentile(latencies, 50) * 10) / 10,
    p99Ms: Math.round(percentile(latencies, 99) * 10) / 10,
    committed: latencies.length,
    failed,
    failures,
    succeeded,
  };
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(100);
  }
}

function stopAll(children: ChildProcess[]): Promise<void[]> {
  return Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGTERM');
          setTimeout(() => c.kill('SIGKILL'), 5_000).unref();
        }),
    ),
  );
}

// One keep-alive agent for every request of both clusters: the client's cost
// per request stays small and the same on both sides.
const agent = new Agent({ keepAlive: true, maxSockets: 1_024 });

/** POSTs `body` and resolves with the answer's status and text. */
function post(
  url: string,
  body: Uint8Array | string,
  contentType: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': contentType, 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

// --- Zomma ---------------------------------------------------------------------------

/** A child's CPU time so far (user, and system: the kernel's work for it), ms, from /proc (NaN where there is none). */
function cpuMsOf(child: ChildProcess): { user: number; system: number } {
  try {
    const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 per second on Linux).
    return { user: Number(fields[11]) * 10, system: Number(fields[12]) * 10 };
  } catch {
    return { user: NaN, system: NaN };
  }
}

interface SyncCounters {
  /** fdatasync calls on the commit path (zomma_storage_fsyncs_total, foreground and awaited). */
  readonly foreground: number;
  /** The WAL sync histogram's sum and count (one sample per block: its latest sync). */
  readonly walSyncMsSum: number;
  readonly walSyncSamples: number;
  /** Heights decided after round 0, and timeouts fired (zomma_heights_decided_after_round0_total, zomma_consensus_timeouts_total). */
  readonly laterRounds: number;
  readonly timeouts: number;
}

/** A node's sync counters from its metrics. */
async function syncCounters(metrics: string): Promise<SyncCounters> {
  const lines = (await (await fetch(`http://${metrics}/metrics`)).text()).split('\n');
  const value = (prefix: string): number =>
    Number(lines.find((l) => l.startsWith(prefix))?.split(' ')[1] ?? NaN);
  return {
    foreground:
      value('zomma_storage_fsyncs_total{where="foreground"}') +
      value('zomma_storage_fsyncs_total{where="awaited"}'),
    walSyncMsSum: value('zomma_wal_fsync_ms_sum'),
    walSyncSamples: value('zomma_wal_fsync_ms_count'),
    laterRounds: value('zomma_heights_decided_after_round0_total'),
    timeouts:
      value('zomma_consensus_timeouts_total{step="propose"}') +
      value('zomma_consensus_timeouts_total{step="prevote"}') +
      value('zomma_consensus_timeouts_total{step="precommit"}'),
  };
}

async function benchZomma(dir: string): Promise<
  Load & {
    verifiesPerS: number;
    blocks: number;
    fsyncsPerHeight: number;
    walSyncMsMean: number;
    heightsAfterRound0: number;
    timeoutsFired: number;
    validatorsCpuMsPerOrder: number;
    validatorCpuMsPerHeight: number;
    validatorsSystemShare: number;
    loadCpuMsPerOrder: number;
    markets: number;
  }
> {
  const { homes } = initNetwork({
    validators: 4,
    out: dir,
    basePort,
    genesisTimeMs: Date.now(),
    oracleSeed: 1,
    timeouts: { proposeMs: 1_000, prevoteMs: 500, precommitMs: 500, deltaMs: 250, maxMs: 10_000 },
    snapshotEveryHeights: 500,
    commitPauseMs: COMMIT_PAUSE_MS,
  });
  if (GENESIS === 'perpetuals') {
    const { listing: _listing, ...perpetuals } = loadGenesis(homes[0]!.home);
    for (const h of homes) saveGenesis(h.home, perpetuals);
  }
  for (const h of homes) {
    saveConfig(h.home, {
      ...loadConfig(h.home),
      logLevel: 'warn',
      proposeWaitMs: PROPOSE_WAIT_MS,
      apiLimits: {
        ipRequestsPerS: 1_000_000,
        ipBurstRequests: 1_000_000,
        accountTxsPerS: 100_000,
        accountBurstTxs: 100_000,
      },
    });
  }
  const profile = CPU_PROF_DIR === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', CPU_PROF_DIR];
  const children = homes.map((h) =>
    spawn(process.execPath, [...profile, BIN, 'node', '--home', h.home, '--quiet'], {
      stdio: 'ignore',
    }),
  );
  try {
    const clients = homes.map((h) => new ZommaClient(`http://${h.api}`));
    await until(
      async () => ((await clients[0]!.ticker('BTC-PERPETUAL')).indexTicks ?? 0) > 0,
      60_000,
      'the cluster commits with an index price',
    );
    // Every node's API, not only the first's: three can commit while the
    // fourth is still starting, and its traders' first requests would fail.
    await until(
      async () => (await Promise.all(clients.map((c) => c.status()))).length === clients.length,
      60_000,
      "every node's API answers",
    );
    const traders: Trader[] = Array.from({ length: concurrency }, (_, w) =>
      clients[w % clients.length]!.trader(generateKey(), { timeoutMs: 30_000 }),
    );
    await Promise.all(traders.map((t) => t.faucet(1_000_000n * 1_000_000n)));
    const index = (await clients[0]!.ticker('BTC-PERPETUAL')).indexTicks;
    const spread = Math.max(1, Math.floor(index / 1_000));
    const markets = (await clients[0]!.instruments()).instruments.length;
    const orderOf = (w: number, n: number) => {
      const side = (w + n) % 2 === 0 ? 'buy' : 'sell';
      const priceTicks = side === 'buy' ? index + spread : index - spread;
      return traders[w]!.build(
        placeOrder({ instrument: 'BTC-PERPETUAL', side, priceTicks, sizeLots: 1 }),
      );
    };
    const perWorker = Math.max(1, Math.ceil(PRESIGNED_TXS / concurrency));
    const presigned: Uint8Array[][] = [];
    for (let w = 0; w < concurrency; w++) {
      const list: Uint8Array[] = [];
      for (let n = 0; n < perWorker; n++) list.push((await orderOf(w, n)).bytes);
      presigned.push(list);
    }
    const urls = traders.map((_, w) => `http://${homes[w % homes.length]!.api}/v1/tx?wait=commit`);
    const sockets = SUBMIT === 'ws' ? clients.map((c) => c.socket()) : [];
    const submit = async (w: number, bytes: Uint8Array): Promise<void> => {
      if (SUBMIT === 'ws') {
        const tx = await sockets[w % sockets.length]!.submitTx(bytes, { wait: 'commit' }).catch(
          (e: { code?: string }) => {
            throw Object.assign(new Error('rejected'), { code: e.code ?? 'WS' });
          },
        );
        if (tx.status !== 'committed') {
          throw Object.assign(new Error('rejected'), { code: tx.code ?? tx.status });
        }
        return;
      }
      const answer = await post(urls[w]!, bytes, 'application/octet-stream');
      const tx = JSON.parse(answer.text) as { status?: string; code?: string };
      if (answer.status !== 200 || tx.status !== 'committed') {
        throw Object.assign(new Error('rejected'), { code: tx.code ?? `HTTP${answer.status}` });
      }
    };
    const startHeight = (await clients[0]!.status()).height;
    const syncsBefore = await Promise.all(homes.map((h) => syncCounters(h.metrics)));
    const cpuBefore = children.map(cpuMsOf);
    const ownCpuBefore = process.cpuUsage();
    const load = await drive(concurrency, async (w, n) =>
      submit(w, presigned[w]![n] ?? (await orderOf(w, n)).bytes),
    );
    for (const socket of sockets) socket.close();
    const blocks = (await clients[0]!.status()).height - startHeight;
    const syncsAfter = await Promise.all(homes.map((h) => syncCounters(h.metrics)));
    const cpuAfter = children.map(cpuMsOf);
    const validatorsUserMs = cpuAfter.reduce((n, c, i) => n + c.user - cpuBefore[i]!.user, 0);
    const validatorsSystemMs = cpuAfter.reduce((n, c, i) => n + c.system - cpuBefore[i]!.system, 0);
    const validatorsCpuMs = validatorsUserMs + validatorsSystemMs;
    const own = process.cpuUsage(ownCpuBefore);
    const loadCpuMs = (own.user + own.system) / 1_000;
    const orders = load.succeeded;
    const delta = (read: (c: SyncCounters) => number): number =>
      syncsAfter.reduce((n, c, i) => n + read(c) - read(syncsBefore[i]!), 0);
    const fsyncs = delta((c) => c.foreground);
    const walSyncMsMean =
      Math.round(
        (delta((c) => c.walSyncMsSum) /
          Math.max(
            1,
            delta((c) => c.walSyncSamples),
          )) *
          100,
      ) / 100;
    // Per validator and height: the fsyncs on the commit path (blocking the thread or awaited).
    const fsyncsPerHeight = Math.round((fsyncs / 4 / Math.max(1, blocks)) * 100) / 100;
    // Every validator checks every transaction's signature once (mempool or proposal).
    const verifiesPerS = 4 * load.committedPerS;
    return {
      ...load,
      verifiesPerS,
      blocks,
      fsyncsPerHeight,
      walSyncMsMean,
      // Over the window, summed over the four validators: a round 0 that failed costs a proposal timeout or more.
      heightsAfterRound0: delta((c) => c.laterRounds),
      timeoutsFired: delta((c) => c.timeouts),
      // CPU per committed order over warm-up and window: robust to a busy machine, unlike wall time.
      validatorsCpuMsPerOrder: Math.round((validatorsCpuMs / Math.max(1, orders)) * 100) / 100,
      // One validator's CPU per height (the four's over warm-up and window, over 4 × heights):
      // at low concurrency mostly the per-height work (votes, WAL, block, view), whatever its size.
      validatorCpuMsPerHeight: Math.round((validatorsCpuMs / 4 / Math.max(1, blocks)) * 100) / 100,
      // The kernel's part of it (system calls: sockets, writes, fsyncs; scheduling).
      validatorsSystemShare:
        Math.round((validatorsSystemMs / Math.max(1, validatorsCpuMs)) * 100) / 100,
      loadCpuMsPerOrder: Math.round((loadCpuMs / Math.max(1, orders)) * 100) / 100,
      markets,
    };
  } finally {
    await stopAll(children);
  }
}

// --- etcd ----------------------------------------------------------------------------

function ensureEtcd(): string {
  const found = spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' }).stdout.trim();
  if (found !== '') return found;
  process.stderr.write('bench:cluster: etcd not found; installing etcd-server with apt-get …\n');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['install', '-y', 'etcd-server'], { stdio: 'ignore', env });
  const again = spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' }).stdout.trim();
  if (again === '') throw new Error('etcd is not installed and apt-get could not install it');
  return again;
}

async function benchEtcd(
  dir: string,
): Promise<Load & { version: string; membersCpuMsPerPut: number }> {
  const etcd = ensureEtcd();
  const version = spawnSync(etcd, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? '';
  const base = basePort + 50;
  const members = [0, 1, 2].map((i) => ({
    name: `m${i}`,
    client: `http://127.0.0.1:${base + 2 * i}`,
    peer: `http://127.0.0.1:${base + 2 * i + 1}`,
  }));
  const initial = members.map((m) => `${m.name}=${m.peer}`).join(',');
  const children = members.map((m) => {
    const data = join(dir, m.name);
    mkdirSync(data, { recursive: true });
    return spawn(
      etcd,
      [
        '--name',
        m.name,
        '--data-dir',
        data,
        '--listen-client-urls',
        m.client,
        '--advertise-client-urls',
        m.client,
        '--listen-peer-urls',
        m.peer,
        '--initial-advertise-peer-urls',
        m.peer,
        '--initial-cluster',
        initial,
        '--initial-cluster-state',
        'new',
        '--initial-cluster-token',
        'zomma-bench',
        '--log-level',
        'error',
      ],
      { stdio: 'ignore', env: { ...process.env, ETCD_UNSUPPORTED_ARCH: process.arch } },
    );
  });
  try {
    const value = Buffer.alloc(VALUE_BYTES, 0x61).toString('base64');
    const put = async (member: number, key: string) => {
      const body = JSON.stringify({ key: Buffer.from(key).toString('base64'), value });
      const res = await post(`${members[member]!.client}/v3/kv/put`, body, 'application/json');
      if (res.status !== 200) {
        throw Object.assign(new Error('put failed'), { code: `HTTP${res.status}` });
      }
    };
    await until(
      async () => {
        await put(0, 'ready');
        return true;
      },
      60_000,
      'etcd accepts puts',
    );
    const cpuBefore = children.map(cpuMsOf);
    const load = await drive(concurrency, (w, n) => put(w % 3, `k/${w}/${n}`));
    const cpuAfter = children.map(cpuMsOf);
    const cpuMs = cpuAfter.reduce(
      (n, c, i) => n + c.user + c.system - cpuBefore[i]!.user - cpuBefore[i]!.system,
      0,
    );
    // Counted as Zomma's validatorsCpuMsPerOrder is: over warm-up and window, all members.
    const membersCpuMsPerPut = Math.round((cpuMs / Math.max(1, load.succeeded)) * 100) / 100;
    return { ...load, version, membersCpuMsPerPut };
  } finally {
    await stopAll(children);
  }
}

/** One core's Ed25519 verifies per second through node:crypto with a cached key object. */
/** Signatures per second one core checks with the validators' own verifier (verifyRaw). */
function verifyRate(): number {
  const key = generateKeyPair();
  const message = new Uint8Array(200).fill(7);
  const signature = signRaw(key, message);
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < 1_000) {
    for (let i = 0; i < 100; i++) verifyRaw(key.publicKey, message, signature);
    n += 100;
  }
  return Math.round((n * 1_000) / (performance.now() - start));
}

const root = mkdtempSync(join(tmpdir(), 'zomma-bench-cluster-'));
try {
  const singleCoreVerifiesPerS = verifyRate();
  const zomma = await benchZomma(join(root, 'zomma'));
  const etcd = values['skip-etcd'] ? null : await benchEtcd(join(root, 'etcd'));
  const cores = availableParallelism();
  const out = {
    bench: 'cluster',
    concurrency,
    seconds: measureMs / 1_000,
    commitPauseMs: COMMIT_PAUSE_MS,
    proposeWaitMs: PROPOSE_WAIT_MS,
    genesis: GENESIS,
    submit: SUBMIT,
    zomma: {
      validators: 4,
      markets: zomma.markets,
      committedOrdersPerS: zomma.committedPerS,
      p50Ms: zomma.p50Ms,
      p99Ms: zomma.p99Ms,
      committed: zomma.committed,
      failed: zomma.failed,
      failures: zomma.failures,
      blocksPerS: Math.round((zomma.blocks * 1_000) / (measureMs + WARMUP_MS)),
      fsyncsPerHeight: zomma.fsyncsPerHeight,
      walSyncMsMean: zomma.walSyncMsMean,
      heightsAfterRound0: zomma.heightsAfterRound0,
      timeoutsFired: zomma.timeoutsFired,
      validatorsCpuMsPerOrder: zomma.validatorsCpuMsPerOrder,
      validatorCpuMsPerHeight: zomma.validatorCpuMsPerHeight,
      validatorsSystemShare: zomma.validatorsSystemShare,
      loadGeneratorCpuMsPerOrder: zomma.loadCpuMsPerOrder,
    },
    etcd: etcd && {
      members: 3,
      version: etcd.version,
      committedPutsPerS: etcd.committedPerS,
      p50Ms: etcd.p50Ms,
      p99Ms: etcd.p99Ms,
      committed: etcd.committed,
      membersCpuMsPerPut: etcd.membersCpuMsPerPut,
      failed: etcd.failed,
    },
    ratio: etcd && {
      throughput: Math.round((zomma.committedPerS / etcd.committedPerS) * 100) / 100,
      p99Latency: Math.round((zomma.p99Ms / etcd.p99Ms) * 100) / 100,
      // The CPU a committed order costs the four validators against a put the three members.
      cpuPerCommit:
        Math.round((zomma.validatorsCpuMsPerOrder / etcd.membersCpuMsPerPut) * 100) / 100,
    },
    verify: {
      singleCoreVerifiesPerS,
      cores,
      clusterVerifiesPerS: zomma.verifiesPerS,
      shareOfCapacity:
        Math.round((zomma.verifiesPerS / (singleCoreVerifiesPerS * cores)) * 1_000) / 1_000,
    },
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
} finally {
  agent.destroy();
  rmSync(root, { recursive: true, force: true });
}
