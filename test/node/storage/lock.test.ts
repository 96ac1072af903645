// The data directory's lock: a second opener is refused with the holder's
// pid, a lock whose process is gone is taken over, and a clean close frees it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runNode } from '../../../src/node/runtime.ts';
import { StorageError, openStorage } from '../../../src/node/storage/index.ts';
import { LOCK_FILE, pidAlive } from '../../../src/node/storage/lock.ts';
import { initSoloHome, until } from '../../e2e/helpers.ts';
import { tempDir } from '../helpers.ts';

/** The pid of a process that has exited (and been reaped). */
function deadPid(): number {
  const pid = spawnSync(process.execPath, ['-e', '']).pid!;
  assert.equal(pidAlive(pid), false);
  return pid;
}

test('a second open of one data directory is refused until the first closes', () => {
  const tmp = tempDir('zomma-lock-');
  try {
    const first = openStorage(tmp.dir);
    const lockPath = join(tmp.dir, LOCK_FILE);
    assert.equal(readFileSync(lockPath, 'utf8').trim(), String(process.pid));
    assert.throws(
      () => openStorage(tmp.dir),
      (e) =>
        e instanceof StorageError &&
        e.code === 'StorageLocked' &&
        e.message.includes(`in use by process ${process.pid}`) &&
        e.message.includes(lockPath),
    );
    // The refused opener touched nothing: the first still works and holds the lock.
    first.wal.append(new Uint8Array([1]), true);
    assert.equal(readFileSync(lockPath, 'utf8').trim(), String(process.pid));
    first.close();
    assert.equal(existsSync(lockPath), false, 'a clean close removes the lock');
    const again = openStorage(tmp.dir);
    assert.equal(again.wal.readAll().length, 1);
    again.close();
  } finally {
    tmp.remove();
  }
});

test('a lock left by a process that is gone is taken over', () => {
  const tmp = tempDir('zomma-lock-');
  try {
    const lockPath = join(tmp.dir, LOCK_FILE);
    writeFileSync(lockPath, `${deadPid()}\n`);
    const storage = openStorage(tmp.dir);
    assert.equal(readFileSync(lockPath, 'utf8').trim(), String(process.pid));
    storage.close();
    // An unreadable lock (torn by a crash mid-write of an older version) is stale too.
    writeFileSync(lockPath, '');
    openStorage(tmp.dir).close();
  } finally {
    tmp.remove();
  }
});

test('a second node on the same home refuses to start with a clear message', async () => {
  const tmp = tempDir('zomma-lock-node-');
  const home = initSoloHome(tmp.dir, { oracleSeed: 1, snapshotEveryHeights: 0, commitPauseMs: 20 });
  const first = await runNode({ home });
  try {
    // Running for real (its log file open, blocks committed) before the second tries.
    await until(async () => first.node.app.height >= 1, 20_000, 'a first block');
    await assert.rejects(
      runNode({ home }),
      (e) =>
        e instanceof StorageError &&
        e.code === 'StorageLocked' &&
        /in use by process/.test(e.message),
    );
    assert.equal(first.node.loop.isRunning, true, 'the first node runs on');
  } finally {
    await first.stop();
    tmp.remove();
  }
});

test('a lock holding our own pid, left by an earlier process that had it, is taken over', () => {
  // A node restarted in a container after a crash or power cut often gets the
  // pid its predecessor had (pid 1 under `docker run`): that lock is stale,
  // not held, since no open storage of this process took it.
  const tmp = tempDir('zomma-lock-');
  try {
    const lockPath = join(tmp.dir, LOCK_FILE);
    writeFileSync(lockPath, `${process.pid}\n`);
    const storage = openStorage(tmp.dir);
    assert.equal(readFileSync(lockPath, 'utf8').trim(), String(process.pid));
    // Still one opener at a time within this process.
    assert.throws(
      () => openStorage(tmp.dir),
      (e) => e instanceof StorageError && e.code === 'StorageLocked',
    );
    storage.close();
    assert.equal(existsSync(lockPath), false);
  } finally {
    tmp.remove();
  }
});
