// The procedures of docs/operations.md an operator of a validator relies on,
// followed on four validators in this process (each with its own home and
// loopback ports, as `zomma node --home` runs them): a backup of `data/` taken
// as documented ("stop the node, copy the directory") restores to a node that
// agrees with the chain; a node whose code computes another state halts with
// AppHashMismatch and writes its halt file, and once its code is fixed a
// restart brings it back on the chain ("When a node halts on an appHash
// mismatch", step 2). Every wait has a deadline that fails the test.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { HOME_FILES, loadConfig, saveConfig } from '../../src/node/config.ts';
import { initNetwork } from '../../src/node/init.ts';
import type { HaltReport } from '../../src/node/loop.ts';
import { runNode } from '../../src/node/runtime.ts';
import type { RunningNode } from '../../src/node/runtime.ts';
import { tempDir } from '../node/helpers.ts';
import { E2E_TIMEOUTS, freeBase, until } from './helpers.ts';

const SNAPSHOT_EVERY_HEIGHTS = 5;

async function getJson<T>(url: string): Promise<{ status: number; body: T } | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
    return { status: res.status, body: (await res.json()) as T };
  } catch {
    return null;
  }
}

test('backup and restore of data/, and a halt on an appHash mismatch fixed by a restart with the right code', async () => {
  const tmp = tempDir('zomma-ops-');
  const base = await freeBase(12, 11);
  const { homes } = initNetwork({
    validators: 4,
    out: tmp.dir,
    basePort: base,
    genesisTimeMs: Date.now(),
    oracleSeed: 3,
    timeouts: E2E_TIMEOUTS,
    snapshotEveryHeights: SNAPSHOT_EVERY_HEIGHTS,
    commitPauseMs: 50,
  });
  // No API: these procedures are about the node, its data and its metrics listener.
  for (const h of homes) {
    saveConfig(h.home, { ...loadConfig(h.home), api: null, logLevel: 'warn' });
  }
  const halts: (HaltReport | null)[] = homes.map(() => null);
  const start = (i: number) =>
    runNode({ home: homes[i]!.home, onHalt: (report) => (halts[i] = report) });
  const nodes: (RunningNode | null)[] = [];
  const node = (i: number): RunningNode => nodes[i]!;
  const height = (i: number): number => node(i).node.app.height;
  const data = (i: number): string => join(homes[i]!.home, HOME_FILES.data);
  try {
    for (let i = 0; i < homes.length; i++) nodes.push(await start(i));
    await until(() => [0, 1, 2, 3].every((i) => height(i) >= 3), 60_000, 'height 3 on all');

    // Backups: "data/: stop the node, copy the directory."
    const backup = join(tmp.dir, 'backup-validator-1');
    await node(1).stop();
    nodes[1] = null;
    cpSync(data(1), backup, { recursive: true });
    nodes[1] = await start(1);

    // Validator 3 runs code that computes another state from a snapshot height on.
    const diverge = Math.ceil((height(3) + 3) / SNAPSHOT_EVERY_HEIGHTS) * SNAPSHOT_EVERY_HEIGHTS;
    const exchange = node(3).node.app.exchange;
    const finalize = exchange.finalizeBlock.bind(exchange);
    exchange.finalizeBlock = (input) =>
      finalize(input.height === diverge ? { ...input, timeMs: input.timeMs + 1 } : input);
    await until(() => halts[3] !== null, 60_000, 'validator 3 halts');
    const report = halts[3]!;
    assert.equal(report.code, 'AppHashMismatch');
    assert.equal(report.height, diverge);
    const haltFile = join(homes[3]!.home, `halt-${diverge}.json`);
    assert.ok(existsSync(haltFile), 'halt-<height>.json is written');
    assert.equal(JSON.parse(readFileSync(haltFile, 'utf8')).code, 'AppHashMismatch');
    const halted = await getJson<{ ok: boolean; problems: string[] }>(
      `http://${homes[3]!.metrics}/health`,
    );
    assert.equal(halted?.status, 503, 'a halted node is unhealthy');
    assert.deepEqual(halted?.body.problems, ['Halted']);
    await node(3).stop();
    nodes[3] = null;

    // Step 2: "If this node runs different code, fix that and restart."
    halts[3] = null;
    nodes[3] = await start(3);
    assert.ok(height(3) >= diverge, `restored to height ${height(3)}, halted at ${diverge}`);

    // Restore validator 1 from its backup: stop it, put the copy back, start it.
    await node(1).stop();
    nodes[1] = null;
    rmSync(data(1), { recursive: true, force: true });
    cpSync(backup, data(1), { recursive: true });
    nodes[1] = await start(1);

    // Every node on the chain again, healthy, one block and one state at every height.
    const target = Math.max(height(0), height(2)) + 3;
    await until(
      () => [0, 1, 2, 3].every((i) => height(i) >= target || halts[i] !== null),
      90_000,
      `height ${target} on all`,
    );
    assert.deepEqual(halts, [null, null, null, null], 'no node halted but the one that diverged');
    // Restored from a copy older than its last votes, it met its own
    // precommits in the certificates it caught up through (docs: "Backups").
    assert.ok(
      node(1).node.loop.replica.signingPausedUntilHeight > 0,
      'the restored validator paused its signing',
    );
    await until(
      async () => {
        const answers = await Promise.all(
          homes.map((h) => getJson<{ ok: boolean }>(`http://${h.metrics}/health`)),
        );
        return answers.every((a) => a?.status === 200);
      },
      30_000,
      'every node healthy',
    );
    // The same blocks, and after each the same state, on every node (the
    // results log keeps the appHash after each height it executed).
    const chains = await Promise.all(
      homes.map(async (h) => {
        const answer = await getJson<{ height: number; blockHash: string }[]>(
          `http://${h.metrics}/chain?from=1&to=${target}`,
        );
        return (answer?.body ?? []).map((b) => b.blockHash);
      }),
    );
    for (const chain of chains) assert.deepEqual(chain, chains[0], 'one chain');
    assert.equal(chains[0]!.length, target);
    for (let h = diverge + 1; h <= target; h++) {
      const states = new Set(
        [0, 1, 2, 3].map((i) => {
          const results = node(i).node.results.load(h);
          return results === null ? 'none' : Buffer.from(results.appHash).toString('hex');
        }),
      );
      assert.equal(states.size, 1, `one state after height ${h}: ${[...states].join(', ')}`);
    }

    // The WAL fsync histogram counts every sync, not one a block.
    node(0).node.loop.stop();
    const metrics = await node(0).metrics.registry.metrics();
    const count = Number(/^zomma_wal_fsync_ms_count (\d+)$/m.exec(metrics)?.[1]);
    const stats = node(0).node.loop.stats;
    assert.equal(count, stats.walSyncs);
    assert.ok(count > stats.blocksExecuted, `${count} syncs over ${stats.blocksExecuted} blocks`);

    // node.log: one JSON object a line with its level, and no secret in any.
    for (let i = 0; i < nodes.length; i++) {
      await node(i).stop();
      nodes[i] = null;
    }
    for (const h of homes) {
      const keyFile = readFileSync(join(h.home, HOME_FILES.key), 'utf8');
      const privateKey = (JSON.parse(keyFile) as { privateKey: string }).privateKey;
      const text = readFileSync(join(h.home, HOME_FILES.log), 'utf8');
      for (const line of text.split('\n').filter((l) => l !== '')) {
        const entry = JSON.parse(line) as { level: unknown; time: unknown; msg: unknown };
        assert.ok(typeof entry.level === 'number', `a level: ${line}`);
        assert.ok(typeof entry.time === 'number' && typeof entry.msg === 'string', line);
        assert.ok(!line.toLowerCase().includes(privateKey.toLowerCase()), 'no private key');
      }
    }
  } finally {
    for (const n of nodes) await n?.stop();
    tmp.remove();
  }
});
