// State sync between real processes on loopback: four validators that take a
// snapshot every few heights and prune their blocks; once height 1 is gone
// from their stores, a full node added with `addFullNode` (stateSync, empty
// data dir) starts from a verified snapshot instead of replaying, then follows
// the chain with the validators' appHash at every height. Every wait has a
// deadline; only the PIDs started here are killed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HOME_FILES, loadConfig, saveConfig } from '../../src/node/config.ts';
import { addFullNode, initNetwork } from '../../src/node/init.ts';
import type { InitHome } from '../../src/node/init.ts';
import { tempDir } from '../node/helpers.ts';
import { E2E_TIMEOUTS, freeBase, kill9, startNodeProcess, until } from './helpers.ts';
import type { Proc } from './helpers.ts';

// Blocks outlive a snapshot offer by several seconds at this pace (about four
// heights a second), so an offer is still served when the new node asks for it.
const SNAPSHOT_EVERY_HEIGHTS = 5;
const BLOCKS_KEPT = 20;
const COMMIT_PAUSE_MS = 200;

interface LogLine {
  readonly msg: string;
  readonly height?: number;
  readonly appHash?: string;
  readonly snapshotHeight?: number | null;
  readonly replayedBlocks?: number;
}

async function getJson<T>(url: string): Promise<T | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
    return res.ok ? ((await res.json()) as T) : null;
  } catch {
    return null;
  }
}

async function height(h: InitHome): Promise<number> {
  return (await getJson<{ height: number }>(`http://${h.metrics}/status`))?.height ?? -1;
}

/** The lowest height whose block the node still holds (-1: no answer). */
async function firstBlock(h: InitHome): Promise<number> {
  const chain = await getJson<{ height: number }[]>(`http://${h.metrics}/chain?from=1`);
  return chain?.[0]?.height ?? -1;
}

function logOf(home: string): LogLine[] {
  let text: string;
  try {
    text = readFileSync(join(home, HOME_FILES.log), 'utf8');
  } catch {
    return [];
  }
  // The last line may be half-written while the node runs.
  return text
    .split('\n')
    .filter((line) => line.endsWith('}'))
    .map((line) => JSON.parse(line) as LogLine);
}

function executed(lines: readonly LogLine[]): Map<number, string> {
  const out = new Map<number, string>();
  for (const l of lines) if (l.msg === 'block executed') out.set(l.height!, l.appHash!);
  return out;
}

test('a full node state-syncs from pruned validator processes and follows with their appHash', async () => {
  const tmp = tempDir('zomma-statesync-');
  // Four validators and the full node, three ports each.
  const base = await freeBase(15, 7);
  const { homes } = initNetwork({
    validators: 4,
    out: tmp.dir,
    basePort: base,
    genesisTimeMs: Date.now(),
    oracleSeed: 3,
    timeouts: E2E_TIMEOUTS,
    snapshotEveryHeights: SNAPSHOT_EVERY_HEIGHTS,
    commitPauseMs: COMMIT_PAUSE_MS,
  });
  // Added before the validators start: they read their peers (now with it) once.
  const { home: full } = addFullNode({ network: tmp.dir });
  for (const h of homes) {
    saveConfig(h.home, { ...loadConfig(h.home), snapshotsKept: 2, blocksKept: BLOCKS_KEPT });
  }
  assert.equal(loadConfig(full.home).stateSync, true);
  const procs: Proc[] = [];
  try {
    for (const h of homes) procs.push(startNodeProcess(h.home));
    await until(
      async () => (await Promise.all(homes.map(firstBlock))).every((first) => first > 1),
      // Generous: on a loaded machine the heights come slowly.
      90_000,
      'every validator prunes height 1',
    );

    procs.push(startNodeProcess(full.home));
    // Its status answers once it has synced and joined; then it must catch up
    // with where the validators are by then, and go on with them.
    await until(async () => (await height(full)) > 0, 30_000, 'the full node syncs and starts');
    let top = -1;
    await until(
      async () => (top = Math.max(...(await Promise.all(homes.map(height))))) > 0,
      10_000,
      'a validator height',
    );
    const target = top + 3;
    await until(async () => (await height(full)) >= target, 30_000, 'the full node follows');
    // The log is written asynchronously: wait for it to show what /status did.
    await until(
      () => [...executed(logOf(full.home)).keys()].some((at) => at >= target),
      10_000,
      'the full node logs its blocks',
    );

    const fullLog = logOf(full.home);
    const synced = fullLog.find((l) => l.msg.startsWith('state sync: state written'));
    assert.ok(synced !== undefined, 'the full node state-synced');
    const syncHeight = synced.height!;
    assert.ok(syncHeight > 1, `synced to height ${syncHeight}`);
    assert.ok(syncHeight % SNAPSHOT_EVERY_HEIGHTS === 0, 'from a snapshot height');
    const restored = fullLog.find((l) => l.msg === 'state restored');
    assert.equal(restored?.snapshotHeight, syncHeight, 'restarted from the synced snapshot');
    assert.equal(restored?.replayedBlocks, 0);

    // It never executed a block at or below the synced height, and holds none before it.
    const fullHashes = executed(fullLog);
    const heights = [...fullHashes.keys()];
    assert.ok(
      heights.length >= 4,
      `executed ${heights.length} blocks: ${heights.join(',')}; target ${target}, log lines ${fullLog.length}`,
    );
    assert.equal(Math.min(...heights), syncHeight + 1);
    assert.ok((await firstBlock(full)) >= syncHeight);

    // Same appHash as every validator at every height they both executed.
    const fullTop = Math.max(...heights);
    await until(
      () => homes.every((h) => executed(logOf(h.home)).has(fullTop)),
      10_000,
      'the validators log the full node top height',
    );
    for (const h of homes) {
      const theirs = executed(logOf(h.home));
      for (const [at, appHash] of fullHashes) {
        assert.equal(appHash, theirs.get(at), `${h.home} at height ${at}`);
      }
    }
    const status = await getJson<{ halted: unknown }>(`http://${full.metrics}/status`);
    assert.equal(status?.halted, null);
  } finally {
    for (const p of procs) await kill9(p);
    tmp.remove();
  }
});
