// Real nodes for the end-to-end tests: one validator in this process (runNode
// on a temporary home, every port chosen by the OS), or a cluster of
// validator processes on loopback. Every wait has a deadline that fails the
// test; only the PIDs started here are killed.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { TimeoutConfig } from '../../src/consensus/index.ts';
import { loadConfig, saveConfig } from '../../src/node/config.ts';
import { initNetwork } from '../../src/node/init.ts';
import type { InitHome } from '../../src/node/init.ts';
import { runNode } from '../../src/node/runtime.ts';
import type { RunningNode } from '../../src/node/runtime.ts';
import { tempDir } from '../node/helpers.ts';

export const BIN = fileURLToPath(new URL('../../bin/zomma.js', import.meta.url));

export const E2E_TIMEOUTS: TimeoutConfig = {
  proposeMs: 600,
  prevoteMs: 300,
  precommitMs: 300,
  deltaMs: 200,
  maxMs: 4_000,
  gossipMs: 300,
};

/** Generous limits: every client of these tests comes from 127.0.0.1. */
export const LOOPBACK_API_LIMITS = {
  ipRequestsPerS: 100_000,
  ipBurstRequests: 100_000,
  accountTxsPerS: 10_000,
  accountBurstTxs: 10_000,
};

export interface SoloNode {
  readonly running: RunningNode;
  readonly apiUrl: string;
  readonly home: string;
  stop(): Promise<void>;
}

/**
 * The home of a one-validator network in `dir`, configured for loopback: free
 * ports for peers, API and metrics, warnings only, no API rate limits in the way.
 */
export function initSoloHome(
  dir: string,
  options: { oracleSeed: number; snapshotEveryHeights: number; commitPauseMs: number },
): string {
  const { homes } = initNetwork({
    validators: 1,
    out: dir,
    genesisTimeMs: Date.now(),
    timeouts: E2E_TIMEOUTS,
    ...options,
  });
  const home = homes[0]!.home;
  saveConfig(home, {
    ...loadConfig(home),
    listen: '127.0.0.1:0',
    api: '127.0.0.1:0',
    metrics: '127.0.0.1:0',
    logLevel: 'warn',
    apiLimits: LOOPBACK_API_LIMITS,
  });
  return home;
}

/** One validator in this process, with its API on a free port. */
export async function startSoloNode(commitPauseMs = 20): Promise<SoloNode> {
  const tmp = tempDir('zomma-solo-');
  const home = initSoloHome(tmp.dir, { oracleSeed: 5, snapshotEveryHeights: 0, commitPauseMs });
  const running = await runNode({ home });
  return {
    running,
    apiUrl: running.apiUrl!,
    home,
    async stop() {
      await running.stop();
      tmp.remove();
    },
  };
}

export async function until(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Ports per slot freeBase hands out: slots never overlap, so two test files' clusters cannot share a port. */
const PORT_SLOT = 16;

/**
 * Test ports lie in [TEST_PORTS_FROM, TEST_PORTS_TO), below Linux's ephemeral
 * range (32768–60999): a port there can be taken at any moment by an outgoing
 * connection's local end (another node reconnecting, a client), so a node
 * restarted on its ports after a kill -9 could find one in use.
 */
const TEST_PORTS_FROM = 20_000;
const TEST_PORTS_TO = 32_768;

/** A base port whose next `count` ports (at most PORT_SLOT) are free now. */
export async function freeBase(count: number, salt = 0): Promise<number> {
  if (count > PORT_SLOT) throw new Error(`freeBase: ${count} ports is more than a slot`);
  const slots = Math.floor((TEST_PORTS_TO - TEST_PORTS_FROM) / PORT_SLOT);
  for (let attempt = 0; attempt < 50; attempt++) {
    const base =
      TEST_PORTS_FROM + ((process.pid * 7 + salt * 31 + attempt * 97) % slots) * PORT_SLOT;
    let ok = true;
    for (let p = base; p < base + count && ok; p++) ok = await portFree(p);
    if (ok) return base;
  }
  throw new Error('no free port range');
}

export interface Proc {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}

/** `zomma node --home HOME --quiet`, with `args` after it. */
export function startNodeProcess(home: string, args: readonly string[] = []): Proc {
  const child = spawn(process.execPath, [BIN, 'node', '--home', home, '--quiet', ...args], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, exited };
}

export async function kill9(p: Proc): Promise<void> {
  p.child.kill('SIGKILL');
  await p.exited;
}

export interface Cluster {
  readonly dir: string;
  readonly homes: InitHome[];
  readonly procs: (Proc | null)[];
  apiUrl(i: number): string;
  remove(): void;
}

/** Writes a network of `n` validators with API limits for loopback load (not started). */
export async function initCluster(
  n: number,
  options: { commitPauseMs?: number; salt?: number; snapshotEveryHeights?: number } = {},
): Promise<Cluster> {
  const tmp = tempDir('zomma-e2e-');
  const base = await freeBase(3 * n, options.salt ?? 0);
  const { homes } = initNetwork({
    validators: n,
    out: tmp.dir,
    basePort: base,
    genesisTimeMs: Date.now(),
    oracleSeed: 3,
    timeouts: E2E_TIMEOUTS,
    snapshotEveryHeights: options.snapshotEveryHeights ?? 10,
    commitPauseMs: options.commitPauseMs ?? 50,
  });
  for (const h of homes) {
    saveConfig(h.home, { ...loadConfig(h.home), apiLimits: LOOPBACK_API_LIMITS });
  }
  return {
    dir: tmp.dir,
    homes,
    procs: homes.map(() => null),
    apiUrl: (i) => `http://${homes[i]!.api}`,
    remove: tmp.remove,
  };
}
