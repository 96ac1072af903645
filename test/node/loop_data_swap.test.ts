// A backup restored into a running validator's data directory (rm -rf data &&
// cp -a backup data while it runs): the node halts with StorageReplaced at the
// sync of the next record it signs, before that message or anything after it
// leaves, logs it at fatal level, and writes nothing into the restored files.
// One validator on real files; the swap is made from inside the WAL, right
// before a synced record's sync, so its moment is exact.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { NodeLoop, lastCheckpoint } from '../../src/node/loop.ts';
import type { Log } from '../../src/node/log.ts';
import { MemoryHub } from '../../src/node/network.ts';
import type { PeerNetwork } from '../../src/node/network.ts';
import { restoreApp } from '../../src/node/restore.ts';
import { openStorage } from '../../src/node/storage/index.ts';
import type { Storage, Wal } from '../../src/node/storage/index.ts';
import {
  FAST_TIMEOUTS,
  HashChainApp,
  signerOf,
  tempDir,
  testGenesis,
  testKey,
  verifierFor,
  waitFor,
} from './helpers.ts';

/** The file WAL, calling `beforeSync` before each sync the loop asks of it. */
class HookedWal implements Wal {
  beforeSync: (() => void) | null = null;
  constructor(private readonly inner: Wal) {}
  firstIndex(): number {
    return this.inner.firstIndex();
  }
  nextIndex(): number {
    return this.inner.nextIndex();
  }
  append(record: Uint8Array, sync: boolean): number {
    if (!sync) return this.inner.append(record, false);
    // The record reaches the file the loop writes, then the swap, then its sync.
    const index = this.inner.append(record, false);
    this.beforeSync?.();
    this.inner.sync();
    return index;
  }
  sync(): void {
    this.inner.sync();
  }
  syncAsync(done: (error: Error | null) => void): void {
    this.beforeSync?.();
    this.inner.syncAsync!(done);
  }
  readAll(): Uint8Array[] {
    return this.inner.readAll();
  }
  truncateBefore(index: number): void {
    this.inner.truncateBefore(index);
  }
  close(): void {
    this.inner.close();
  }
}

/** Every file under `dir` with its bytes, by relative path. */
function filesOf(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out.set(path.slice(dir.length), readFileSync(path).toString('hex'));
  }
  return out;
}

async function swapUnderRunningNode(walSyncInBackground: boolean): Promise<void> {
  const tmp = tempDir('zomma-swap-');
  const data = join(tmp.dir, 'data');
  const backup = join(tmp.dir, 'backup');
  const key = testKey(0);
  const genesis = testGenesis([key]);
  // The backup, taken the right way (nothing running): a fresh data directory.
  openStorage(data).close();
  cpSync(data, backup, { recursive: true });

  const storage = openStorage(data);
  const wal = new HookedWal(storage.wal);
  const hooked: Storage = {
    wal,
    blocks: storage.blocks,
    snapshots: storage.snapshots,
    checkInPlace: () => storage.checkInPlace(),
    close: () => storage.close(),
  };
  const { app } = restoreApp(
    hooked,
    lastCheckpoint(wal.readAll()),
    () => new HashChainApp(genesis.appHash),
    (bytes) => HashChainApp.fromSnapshot(bytes),
  );
  const member = new MemoryHub().join('v0');
  let sent = 0;
  const network: PeerNetwork = {
    start: () => member.start(),
    stop: () => member.stop(),
    send: () => void sent++,
    broadcast: () => void sent++,
    onMessage: (handler) => member.onMessage(handler),
    peerCount: () => 0,
  };
  const fatal: string[] = [];
  const ignore = (): void => {};
  const log: Log = {
    debug: ignore,
    info: ignore,
    warn: ignore,
    error: ignore,
    fatal: (_fields, message) => void fatal.push(message),
  };
  const loop = new NodeLoop({
    genesis,
    timeouts: FAST_TIMEOUTS,
    signer: signerOf(key, genesis.chainId),
    verifier: verifierFor(genesis.chainId),
    app,
    storage: hooked,
    network,
    log,
    reap: () => [],
    snapshotEveryHeights: 0,
    snapshotsKept: 1,
    walSyncInBackground,
    // Alone and syncing on its own thread, a validator would decide height
    // after height without ever yielding: the pause lets the test's deadline run.
    commitPauseMs: 1,
  });
  let swapped: { sent: number; height: number } | null = null;
  wal.beforeSync = () => {
    if (swapped !== null || app.height < 2) return;
    rmSync(data, { recursive: true, force: true });
    cpSync(backup, data, { recursive: true });
    swapped = { sent, height: app.height };
  };
  loop.start();
  try {
    await waitFor(() => loop.haltReport !== null, 20_000, 'the node halts');
    const at = swapped as { sent: number; height: number } | null;
    assert.ok(at !== null, 'halted after the swap, not before');
    assert.ok(at.sent > 0, 'the node had sent signed messages before the swap');
    const report = loop.haltReport!;
    assert.equal(report.code, 'StorageReplaced');
    assert.match(report.message, /wal\.log: the file this node writes was deleted/);
    assert.equal(loop.isRunning, false);
    assert.equal(sent, at.sent, 'nothing signed into the deleted WAL left the node');
    assert.equal(app.height, at.height, 'nothing after the synced record was performed');
    assert.deepEqual(
      fatal.filter((m) => m.startsWith('node halted: StorageReplaced: ')).length,
      1,
      `logged once at fatal level (${JSON.stringify(fatal)})`,
    );
  } finally {
    loop.stop();
    storage.close();
  }
  try {
    // The restored directory holds the backup's bytes, no more: the close
    // wrote nothing to it, nor took or dropped a lock there.
    assert.deepEqual(filesOf(data), filesOf(backup));
  } finally {
    tmp.remove();
  }
}

test('a data directory replaced under a running validator (its WAL syncs on the pool) halts it with StorageReplaced before its next signature leaves', async () => {
  await swapUnderRunningNode(true);
});

test('a data directory replaced under a running validator (its WAL syncs on the loop thread) halts it with StorageReplaced before its next signature leaves', async () => {
  await swapUnderRunningNode(false);
});
