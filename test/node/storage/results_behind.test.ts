// A restart re-executes the blocks after the snapshot it starts from, and so
// writes their results again; those of heights up to that snapshot come only
// from the results log. A results log that stops below that snapshot (its tail
// lost) makes the restore start from an earlier snapshot, or genesis, so that
// every missing height is executed and recorded again; when the blocks after
// such a start are gone (pruned), the restart refuses with RestoreFailed
// naming the heights, rather than serve those heights without results.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import type { Genesis } from '../../../src/consensus/index.ts';
import { utf8 } from '../../../src/lib/bytes.ts';
import { HOME_FILES } from '../../../src/node/config.ts';
import { NodeError } from '../../../src/node/errors.ts';
import type { Checkpoint } from '../../../src/node/loop.ts';
import { NodeLoop, lastCheckpoint } from '../../../src/node/loop.ts';
import { MemoryHub } from '../../../src/node/network.ts';
import { restoreApp } from '../../../src/node/restore.ts';
import type { RestoreResult } from '../../../src/node/restore.ts';
import { openFileResultsStore } from '../../../src/node/results.ts';
import { runNode } from '../../../src/node/runtime.ts';
import type { FileStorage } from '../../../src/node/storage/index.ts';
import { openStorage } from '../../../src/node/storage/index.ts';
import { initSoloHome } from '../../e2e/helpers.ts';
import {
  FAST_TIMEOUTS,
  HashChainApp,
  signerOf,
  tempDir,
  testGenesis,
  testKey,
  verifierFor,
  waitFor,
} from '../helpers.ts';
import { recordOffsets } from './layout.ts';

/** Runs one validator on `dir` from genesis until `height`, a snapshot every two heights, all kept. */
async function runTo(genesis: Genesis, dir: string, height: number): Promise<void> {
  const storage = openStorage(dir);
  const net = new MemoryHub().join('v0');
  const txs = Array.from({ length: 100 }, (_, i) => utf8(`tx ${i}`));
  const app = new HashChainApp(genesis.appHash);
  const loop = new NodeLoop({
    genesis,
    timeouts: FAST_TIMEOUTS,
    signer: signerOf(testKey(0), genesis.chainId),
    verifier: verifierFor(genesis.chainId),
    app,
    storage,
    network: net,
    reap: () => txs.splice(0, 2),
    snapshotEveryHeights: 2,
    snapshotsKept: 100,
    walRotateBytes: 1 << 30,
    walSyncInBackground: true,
  });
  void net.start();
  loop.start();
  try {
    await waitFor(() => app.height >= height, 20_000, `height ${height}`);
  } finally {
    loop.stop();
    void net.stop();
    storage.close();
  }
}

/** The restore node.ts makes, with the results log holding heights up to `resultsHeight`. */
function restore(
  genesis: Genesis,
  storage: FileStorage,
  resultsHeight: number,
): RestoreResult<HashChainApp> & { reexecuted: number[]; target: Checkpoint } {
  const target = lastCheckpoint(storage.wal.readAll());
  const reexecuted: number[] = [];
  const restored = restoreApp(
    storage,
    target,
    () => new HashChainApp(genesis.appHash),
    (bytes) => HashChainApp.fromSnapshot(bytes),
    undefined,
    (app) => reexecuted.push(app.height),
    resultsHeight,
  );
  return { ...restored, reexecuted, target };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

test('results stopping below the newest snapshot: the restore starts from an earlier snapshot, or genesis, and executes every missing height again', async () => {
  const tmp = tempDir('zomma-results-behind-');
  const genesis = testGenesis([testKey(0)]);
  const dir = `${tmp.dir}/v0`;
  try {
    await runTo(genesis, dir, 9);
    const storage = openStorage(dir);
    try {
      const newest = storage.snapshots.heights().at(-1)!;
      assert.ok(newest >= 8);
      // Results at or past the newest snapshot: it is the start, as always.
      for (const results of [0, newest, newest + 1]) {
        const restored = restore(genesis, storage, results);
        assert.equal(restored.snapshotHeight, newest, `results up to ${results}`);
        assert.deepEqual(restored.reexecuted, range(newest + 1, restored.target.height));
      }
      // Results up to 5: from the snapshot of height 4, every height after it.
      const earlier = restore(genesis, storage, 5);
      assert.equal(earlier.snapshotHeight, 4);
      assert.deepEqual(earlier.reexecuted, range(5, earlier.target.height));
      assert.deepEqual(earlier.app.appHash, restore(genesis, storage, 0).app.appHash);
      // No snapshot at or below the results (only the newest kept): from genesis.
      storage.snapshots.prune(1);
      const fromGenesis = restore(genesis, storage, 3);
      assert.equal(fromGenesis.snapshotHeight, 0);
      assert.deepEqual(fromGenesis.reexecuted, range(1, fromGenesis.target.height));
    } finally {
      storage.close();
    }
  } finally {
    tmp.remove();
  }
});

test('results stopping below the newest snapshot with the blocks to execute them again pruned: refused, naming the heights', async () => {
  const tmp = tempDir('zomma-results-behind-');
  const genesis = testGenesis([testKey(0)]);
  const dir = `${tmp.dir}/v0`;
  try {
    await runTo(genesis, dir, 9);
    const storage = openStorage(dir);
    try {
      const newest = storage.snapshots.heights().at(-1)!;
      storage.blocks.pruneBefore(newest);
      // Results up to a height with a snapshot at or below it, but not the blocks after that one.
      assert.throws(
        () => restore(genesis, storage, 5),
        (error: unknown) => {
          assert.ok(error instanceof NodeError, String(error));
          assert.equal(error.code, 'RestoreFailed');
          assert.match(
            error.message,
            new RegExp(`results up to height 5, below the snapshot of height ${newest}`),
          );
          assert.match(error.message, new RegExp(`heights 6 to ${newest}`));
          assert.match(error.message, /block store starts at height/);
          return true;
        },
      );
      // Results reaching the newest snapshot need no earlier block.
      assert.equal(restore(genesis, storage, newest).snapshotHeight, newest);
    } finally {
      storage.close();
    }
  } finally {
    tmp.remove();
  }
});

test('a node whose results log lost its tail below the newest snapshot writes the missing results again at restart', async () => {
  const tmp = tempDir('zomma-results-behind-node-');
  const home = initSoloHome(tmp.dir, { oracleSeed: 7, snapshotEveryHeights: 3, commitPauseMs: 20 });
  let running = await runNode({ home });
  try {
    await waitFor(() => running.node.app.height >= 10, 20_000, 'height 10');
    await running.stop();
    const storage = openStorage(join(home, HOME_FILES.data));
    const snapshots = storage.snapshots.heights();
    storage.close();
    assert.ok(snapshots.length >= 2 && snapshots.at(-1)! >= 9, `snapshots ${snapshots.join()}`);
    const path = join(home, HOME_FILES.data, 'results.log');
    const stored = openFileResultsStore(path);
    const before = range(1, stored.lastHeight()).map((h) => stored.load(h));
    stored.close();
    assert.ok(before.length >= 10);
    // The results log as a lost tail leaves it: heights 1 to 4 only.
    truncateSync(path, recordOffsets(readFileSync(path))[4]!);

    running = await runNode({ home });
    const restored = running.node.restoredFrom;
    assert.ok(restored.snapshotHeight <= 4, `restored from ${restored.snapshotHeight}`);
    // Written again as the live path wrote them, events and insurance fund included.
    for (const [i, results] of before.entries()) {
      assert.notEqual(results, null);
      assert.deepEqual(running.node.results.load(i + 1), results, `results of height ${i + 1}`);
    }
  } finally {
    await running.stop();
    tmp.remove();
  }
});
