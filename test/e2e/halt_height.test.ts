// A coordinated halt height on real nodes (docs/operations.md, "Upgrades"):
// `zomma node --halt-height H` (or "haltHeight" in config.json) stops at H
// with exit 0 and a snapshot of H; a start at or past it exits 2; a restart
// without it resumes from that snapshot, executing no block again. Every wait
// has a deadline; only the PIDs started here are killed, on 127.0.0.1 only.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, saveConfig } from '../../src/node/config.ts';
import type { InitHome } from '../../src/node/init.ts';
import { lastCheckpoint } from '../../src/node/loop.ts';
import { runNode } from '../../src/node/runtime.ts';
import { openStorage } from '../../src/node/storage/index.ts';
import { zomma } from '../cli/helpers.ts';
import { tempDir } from '../node/helpers.ts';
import { initCluster, initSoloHome, kill9, startNodeProcess, until } from './helpers.ts';
import type { Proc } from './helpers.ts';

interface LogLine {
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** The lines of <home>/node.log whose message is `msg`, oldest first. */
function logged(home: string, msg: string): LogLine[] {
  return readFileSync(join(home, 'node.log'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as LogLine)
    .filter((l) => l.msg === msg);
}

/**
 * The lines logged with `msg`, once there are `count` of them: the node's log
 * file is written in the background, and may trail a stop by a moment.
 */
async function loggedEventually(home: string, msg: string, count: number): Promise<LogLine[]> {
  await until(() => logged(home, msg).length >= count, 10_000, `${count} × '${msg}' in node.log`);
  return logged(home, msg);
}

/** What the home's data directory holds for a restart: snapshots, last block, WAL checkpoint. */
function stored(home: string): { snapshots: number[]; lastBlock: number; checkpoint: number } {
  const storage = openStorage(join(home, 'data'));
  try {
    return {
      snapshots: storage.snapshots.heights(),
      lastBlock: storage.blocks.lastHeight(),
      checkpoint: lastCheckpoint(storage.wal.readAll()).height,
    };
  } finally {
    storage.close();
  }
}

test('zomma node --halt-height: exit 0 at the height with its snapshot (none other taken), exit 2 on a start at or past it, the flag over config.json, and a restart without it re-executes nothing', async () => {
  const tmp = tempDir('zomma-halt-solo-');
  // No snapshots of its own: the halt height's is taken for the halt alone.
  const home = initSoloHome(tmp.dir, { oracleSeed: 5, snapshotEveryHeights: 0, commitPauseMs: 20 });
  // 'state restored' and 'stopped' are info lines.
  saveConfig(home, { ...loadConfig(home), logLevel: 'info' });
  try {
    const first = await zomma('node', '--home', home, '--quiet', '--halt-height', '3');
    assert.equal(first.code, 0, first.err);
    const reached = await loggedEventually(home, 'halt height reached', 1);
    assert.equal(reached.length, 1, 'one halt logged');
    assert.equal(reached[0]!.height, 3);
    const appHash = reached[0]!.appHash as string;
    assert.match(appHash, /^[0-9a-f]{64}$/);
    assert.match(first.err, new RegExp(`stopped at the halt height 3 \\(appHash ${appHash}\\)`));
    // Shut down as on SIGTERM: the API closed and the stores with it.
    assert.equal((await loggedEventually(home, 'stopped', 1)).length, 1, 'stopped cleanly');
    assert.ok(!existsSync(join(home, 'data', 'LOCK')), 'the home released');
    assert.deepEqual(stored(home), { snapshots: [3], lastBlock: 3, checkpoint: 3 });

    // At or past the halt height: refused before anything runs, as a config error is.
    for (const h of ['3', '2']) {
      const again = await zomma('node', '--home', home, '--quiet', '--halt-height', h);
      assert.equal(again.code, 2, again.err);
      assert.match(
        again.err,
        new RegExp(
          `^zomma node: HaltHeightReached: the stored chain is at height 3, at or past the halt height ${h} .*remove the halt height`,
        ),
      );
    }
    saveConfig(home, { ...loadConfig(home), haltHeight: 3 });
    const fromConfig = await zomma('node', '--home', home, '--quiet');
    assert.equal(fromConfig.code, 2, fromConfig.err);
    assert.match(fromConfig.err, /HaltHeightReached: the stored chain is at height 3/);
    assert.deepEqual(stored(home), { snapshots: [3], lastBlock: 3, checkpoint: 3 });

    // The flag wins over config.json: on to 5, from the snapshot of 3.
    const raised = await zomma('node', '--home', home, '--quiet', '--halt-height', '5');
    assert.equal(raised.code, 0, raised.err);
    const restored = (await loggedEventually(home, 'state restored', 2)).at(-1)!;
    assert.equal(restored.snapshotHeight, 3);
    assert.equal(restored.replayedBlocks, 0);
    assert.equal(restored.haltHeight, 5);
    assert.equal(stored(home).checkpoint, 5);

    // Without the halt height of config.json the node goes on from the snapshot of 5, executing no block again
    const { haltHeight: _dropped, ...rest } = loadConfig(home);
    saveConfig(home, rest);
    // (with one far ahead instead, which the metrics port's /status shows).
    const running = await runNode({ home, haltHeight: 1_000 });
    try {
      assert.deepEqual(running.node.restoredFrom, { snapshotHeight: 5, replayedBlocks: 0 });
      assert.equal(running.metrics.status().haltHeight, 1_000);
      await until(() => running.node.app.height >= 7, 30_000, 'height 7 after the restart');
      assert.equal(running.node.loop.haltReport, null);
    } finally {
      await running.stop();
    }
  } finally {
    tmp.remove();
  }
});

async function status(
  h: InitHome,
): Promise<{ height: number; appHash: string; haltHeight: number | null } | null> {
  try {
    const res = await fetch(`http://${h.metrics}/status`, { signal: AbortSignal.timeout(1_000) });
    return (await res.json()) as { height: number; appHash: string; haltHeight: number | null };
  } catch {
    return null;
  }
}

async function chain(h: InitHome, to: number): Promise<{ height: number; blockHash: string }[]> {
  const res = await fetch(`http://${h.metrics}/chain?from=1&to=${to}`);
  return (await res.json()) as { height: number; blockHash: string }[];
}

test('four validator processes with the same --halt-height stop there with exit 0 and one appHash; restarted without it, they resume from its snapshot and commit past it in agreement', async () => {
  const HALT = 7;
  // Snapshots every 10 heights: the one of the halt height is its own.
  const cluster = await initCluster(4, { snapshotEveryHeights: 10, commitPauseMs: 50, salt: 7 });
  const { homes } = cluster;
  const procs: (Proc | null)[] = homes.map((h) =>
    startNodeProcess(h.home, ['--halt-height', String(HALT)]),
  );
  try {
    const exited = procs.map(() => false);
    procs.forEach((p, i) => void p!.exited.then(() => (exited[i] = true)));
    await until(() => exited.every((e) => e), 90_000, 'every validator stopped at the halt height');
    assert.deepEqual(
      procs.map((p) => p!.child.exitCode),
      [0, 0, 0, 0],
      'each exited with status 0',
    );
    procs.fill(null);
    const appHashes = new Set<string>();
    for (const { home } of homes) {
      const reached = await loggedEventually(home, 'halt height reached', 1);
      assert.equal(reached.length, 1, `${home}: halt logged`);
      assert.equal(reached[0]!.height, HALT);
      appHashes.add(reached[0]!.appHash as string);
      const held = stored(home);
      assert.ok(held.snapshots.includes(HALT), `${home}: snapshots ${held.snapshots.join(', ')}`);
      assert.equal(held.checkpoint, HALT, `${home}: resumes from the halt height`);
      assert.equal(held.lastBlock, HALT, `${home}: no block past it`);
    }
    assert.equal(appHashes.size, 1, 'one appHash at the halt height');

    // The upgrade would replace the code here. Started without the halt height:
    homes.forEach((h, i) => (procs[i] = startNodeProcess(h.home)));
    const target = HALT + 5;
    await until(
      async () => (await Promise.all(homes.map(status))).every((s) => (s?.height ?? 0) >= target),
      90_000,
      `height ${target} on all four`,
    );
    for (const h of homes) assert.equal((await status(h))?.haltHeight, null, 'none any more');
    for (const { home } of homes) {
      const restored = (await loggedEventually(home, 'state restored', 2)).at(-1)!;
      assert.equal(restored.snapshotHeight, HALT, `${home}: from the snapshot of the halt height`);
      assert.equal(restored.replayedBlocks, 0, `${home}: no block executed again`);
    }
    const chains = await Promise.all(homes.map((h) => chain(h, target)));
    for (let height = HALT + 1; height <= target; height++) {
      const hashes = new Set(chains.map((c) => c.find((b) => b.height === height)?.blockHash));
      assert.equal(hashes.size, 1, `one block at height ${height}`);
      assert.ok(!hashes.has(undefined), `every node holds block ${height}`);
    }
  } finally {
    for (const p of procs) if (p !== null) await kill9(p);
    cluster.remove();
  }
});
