// A soak of a local network under faults: validators as real processes on
// loopback, clients trading through the SDK, and a seeded schedule of kill -9
// and restarts (at most f of n down at once, and now and then more, so the
// chain also stops and resumes). At the end every node is up again and must
// be healthy, at one height, with one block hash at every height and one app
// hash, and every transaction the API acknowledged as committed must be
// committed on every node (found by its lookup, or in the block of the height
// it was acknowledged at when it is past the node's lookup window). Exits 1 on any violation; prints one JSON line.
//
//   npm run soak [-- --seconds 240 --seed 1 --validators 4 --base-port 29000]
//
// Only the processes it starts are killed; its data lives in a temporary
// directory that is removed at the end (kept with --keep, for a look at the
// nodes' logs after a failure).

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ZommaApiError, ZommaClient, generateKey } from '../src/api/client/index.ts';
import type { Trader } from '../src/api/client/index.ts';
import { Prng } from '../src/lib/prng.ts';
import { loadConfig, saveConfig } from '../src/node/config.ts';
import { initNetwork } from '../src/node/init.ts';
import type { InitHome } from '../src/node/init.ts';

/**
 * `call`, tried up to five times while it fails on the network (the node
 * answered nothing); an answer of the API, an error included, is final.
 */
async function retried<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (attempt >= 5 || !isNetworkFailure(error)) throw error;
      await sleep(200 * attempt);
    }
  }
}

/** No answer from the node, or one that asks to come back (rate limit, unavailable). */
function isNetworkFailure(error: unknown): boolean {
  return (
    error instanceof ZommaApiError &&
    (error.code === 'NodeUnreachable' || error.status === 429 || error.status >= 500)
  );
}

const BIN = fileURLToPath(new URL('../bin/zomma.js', import.meta.url));
/** Heights one /chain answer covers at most (metrics.ts). */
const CHAIN_PAGE_HEIGHTS = 1_000;

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '240' },
    seed: { type: 'string', default: '1' },
    validators: { type: 'string', default: '4' },
    clients: { type: 'string', default: '8' },
    'base-port': { type: 'string', default: '29000' },
    keep: { type: 'boolean', default: false },
  },
});
const seconds = Number(values.seconds);
const seed = Number(values.seed);
const n = Number(values.validators);
const clientCount = Number(values.clients);
const basePort = Number(values['base-port']);
for (const [name, v, min] of [
  ['--seconds', seconds, 1],
  ['--seed', seed, 0],
  ['--validators', n, 4],
  ['--clients', clientCount, 1],
  ['--base-port', basePort, 1_024],
] as const) {
  if (!Number.isSafeInteger(v) || v < min) {
    process.stderr.write(`soak: ${name} must be an integer ≥ ${min}\n`);
    process.exit(2);
  }
}
/** Validators that may be down while the chain must go on (f of n = 3f + 1). */
const f = Math.floor((n - 1) / 3);

const prng = new Prng(seed);
const say = (line: string) =>
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How long the end check waits for each node's /health to answer 200. */
const HEALTHY_WAIT_MS = 30_000;

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(200);
  }
}

interface Status {
  height: number;
  appHash: string;
}

async function statusOf(h: InitHome): Promise<Status | null> {
  try {
    const res = await fetch(`http://${h.metrics}/status`, { signal: AbortSignal.timeout(2_000) });
    return (await res.json()) as Status;
  } catch {
    return null;
  }
}

function start(h: InitHome): ChildProcess {
  return spawn(process.execPath, [BIN, 'node', '--home', h.home, '--quiet'], { stdio: 'ignore' });
}

async function kill9(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}

const root = mkdtempSync(join(tmpdir(), 'zomma-soak-'));
const { homes } = initNetwork({
  validators: n,
  out: root,
  basePort,
  genesisTimeMs: Date.now(),
  oracleSeed: seed,
  timeouts: { proposeMs: 600, prevoteMs: 300, precommitMs: 300, deltaMs: 200, maxMs: 4_000 },
  snapshotEveryHeights: 20,
  commitPauseMs: 30,
});
for (const h of homes) {
  saveConfig(h.home, {
    ...loadConfig(h.home),
    apiLimits: {
      ipRequestsPerS: 100_000,
      ipBurstRequests: 100_000,
      accountTxsPerS: 10_000,
      accountBurstTxs: 10_000,
    },
  });
}
const procs: (ChildProcess | null)[] = homes.map(start);
const violations: string[] = [];
/** Orders the API answered as committed, with the height it named. */
const acked: { hash: string; height: number }[] = [];
let kills = 0;
let restarts = 0;
let stalls = 0;
let clientErrors = 0;
let top = 0;
let stopLoad = false;
try {
  await until(
    async () => (await Promise.all(homes.map(statusOf))).every((s) => (s?.height ?? 0) >= 3),
    120_000,
    'every node at height 3',
  );
  say(`${n} validators up in ${root}`);
  const clients = homes.map((h) => new ZommaClient(`http://${h.api}`));
  const workers = Array.from({ length: clientCount }, async (_, w) => {
    const client = clients[w % n]!;
    let trader: Trader | null = null;
    for (let k = 0; !stopLoad; k++) {
      try {
        if (trader === null) {
          const t = client.trader(generateKey(), { timeoutMs: 20_000 });
          await t.faucet(1_000_000n * 1_000_000n);
          trader = t;
        }
        const index = (await client.ticker('BTC-PERPETUAL')).indexTicks ?? 0;
        if (index === 0) throw new Error('no index price yet');
        const side = (w + k) % 2 === 0 ? 'buy' : 'sell';
        const away = 1 + (k % 50);
        const priceTicks = side === 'buy' ? index + away : index - away;
        const tx = await trader.placeOrder({
          instrument: 'BTC-PERPETUAL',
          side,
          priceTicks,
          sizeLots: 1,
        });
        if (tx.status === 'committed' && tx.height !== undefined) {
          acked.push({ hash: tx.hash, height: tx.height });
        }
      } catch {
        // Its node is down, or the network is stalled: try again shortly.
        clientErrors++;
        await sleep(300);
      }
    }
  });

  const end = Date.now() + seconds * 1_000;
  while (Date.now() < end) {
    await sleep(2_000 + prng.int(8_000));
    const up = procs.flatMap((p, i) => (p === null ? [] : [i]));
    const down = procs.flatMap((p, i) => (p === null ? [i] : []));
    // Mostly f or fewer down; now and then one more (no quorum: the chain
    // must stop, not fork), never for two steps running.
    const roll = prng.int(6);
    let action: 'kill' | 'restart' | 'wait';
    if (down.length > f) action = 'restart';
    else if (down.length === f) action = roll === 0 ? 'kill' : roll <= 2 ? 'wait' : 'restart';
    else action = down.length > 0 && roll < 3 ? 'restart' : 'kill';
    if (action === 'restart') {
      const i = down[prng.int(down.length)]!;
      procs[i] = start(homes[i]!);
      restarts++;
      say(`restart validator-${i}`);
    } else if (action === 'kill') {
      const i = up[prng.int(up.length)]!;
      await kill9(procs[i]!);
      procs[i] = null;
      kills++;
      if (down.length + 1 > f) stalls++;
      const heights = await Promise.all(homes.map(statusOf));
      say(`kill validator-${i}; heights ${heights.map((s) => s?.height ?? '-').join(' ')}`);
    }
  }
  for (let i = 0; i < n; i++) {
    if (procs[i] === null) {
      procs[i] = start(homes[i]!);
      restarts++;
    }
  }
  stopLoad = true;
  await Promise.all(workers);
  say(`load stopped: ${acked.length} orders acknowledged, ${clientErrors} client errors`);

  // Every node up, healthy and at one height (the chain goes on: the oracle's blocks).
  let statuses: (Status | null)[] = [];
  await until(
    async () => {
      statuses = await Promise.all(homes.map(statusOf));
      top = Math.max(...statuses.map((s) => s?.height ?? 0));
      return statuses.every((s) => s !== null && s.height >= top - 1);
    },
    180_000,
    'every node within a height of the highest',
  );
  // A node restarted near the end may still be deciding its last heights from
  // peers' blocks (CatchingUp): healthy once that is done, within a deadline.
  for (const h of homes) {
    let last = 0;
    let problems = '';
    const healthy = async (): Promise<boolean> => {
      const res = await fetch(`http://${h.metrics}/health`);
      last = res.status;
      problems = JSON.stringify(((await res.json()) as { problems?: unknown }).problems ?? []);
      return last === 200;
    };
    try {
      await until(healthy, HEALTHY_WAIT_MS, `${h.home} healthy`);
    } catch {
      violations.push(`${h.home}: /health answered ${last} ${problems} for ${HEALTHY_WAIT_MS} ms`);
    }
  }
  // A block names the app hash before it: one block hash at every height is
  // one chain and one state up to the last height all of them hold.
  const common = Math.min(...statuses.map((s) => s!.height));
  for (let from = 1; from <= common; from += CHAIN_PAGE_HEIGHTS) {
    const to = Math.min(common, from + CHAIN_PAGE_HEIGHTS - 1);
    const pages = await Promise.all(
      homes.map(async (h) => {
        const res = await fetch(`http://${h.metrics}/chain?from=${from}&to=${to}`);
        return (await res.json()) as { height: number; blockHash: string }[];
      }),
    );
    for (let k = 0; k <= to - from; k++) {
      const hashes = new Set(pages.map((p) => p[k]?.blockHash));
      if (hashes.size !== 1) violations.push(`height ${from + k}: ${hashes.size} block hashes`);
    }
  }
  // Every acknowledged order committed on every node: by its lookup, or, past
  // the transactions a node keeps for lookups (a restart reads back a window
  // of blocks), in the block of the height it was acknowledged at. A request
  // that fails on the network is tried again, not counted.
  let missing = 0;
  let fromBlocks = 0;
  for (const { hash, height } of acked) {
    for (const client of clients) {
      const tx = await retried(() => client.tx(hash)).catch(() => null);
      if (tx?.status === 'committed') continue;
      const block = await retried(() => client.block(height)).catch(() => null);
      if (block?.txs.some((t) => t.hash === hash) === true) fromBlocks++;
      else missing++;
    }
  }
  if (fromBlocks > 0) say(`${fromBlocks} lookups past a node's window found in their blocks`);
  if (missing > 0) violations.push(`${missing} acknowledged orders not committed on some node`);
} catch (error) {
  violations.push(String(error));
} finally {
  stopLoad = true;
  for (const p of procs) if (p !== null) await kill9(p);
  if (!values.keep) rmSync(root, { recursive: true, force: true });
}
process.stdout.write(
  `${JSON.stringify({
    soak: 'cluster',
    validators: n,
    seconds,
    seed,
    heights: top,
    kills,
    restarts,
    stallsWithoutQuorum: stalls,
    ordersAcknowledged: acked.length,
    clientErrors,
    violations,
    ...(values.keep ? { dir: root } : {}),
  })}\n`,
);
process.exit(violations.length === 0 ? 0 : 1);
