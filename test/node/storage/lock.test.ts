// The data directory's lock: a second opener is refused with the holder's
// pid, a lock whose process is gone is taken over, a lock holding no pid is
// refused and left as it is, and a clean close frees it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runNode } from '../../../src/node/runtime.ts';
import { StorageError, openStorage } from '../../../src/node/storage/index.ts';
import { LOCK_FILE, lockHolder, pidAlive } from '../../../src/node/storage/lock.ts';
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
    const dead = deadPid();
    writeFileSync(lockPath, `${dead}\n`);
    const storage = openStorage(tmp.dir);
    assert.equal(readFileSync(lockPath, 'utf8').trim(), String(process.pid));
    assert.equal(storage.lockTakenOverFrom, dead, 'the node logs whose lock it took over');
    storage.close();
    const again = openStorage(tmp.dir);
    assert.equal(again.lockTakenOverFrom, null, 'a clean close left no lock to take over');
    again.close();
  } finally {
    tmp.remove();
  }
});

test('a lock held by a live child process is refused with its pid, and taken over once it exits', async () => {
  const tmp = tempDir('zomma-lock-');
  // Runs until killed; the test kills it whatever happens.
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 60_000)'], {
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const pid = child.pid!;
    const lockPath = join(tmp.dir, LOCK_FILE);
    writeFileSync(lockPath, `${pid}\n`);
    assert.throws(
      () => openStorage(tmp.dir),
      (e) =>
        e instanceof StorageError &&
        e.code === 'StorageLocked' &&
        e.message.includes(`in use by process ${pid}`),
    );
    assert.equal(lockHolder(tmp.dir), pid);
    assert.equal(
      readFileSync(lockPath, 'utf8'),
      `${pid}\n`,
      "the live holder's lock is left as it is",
    );
    child.kill('SIGKILL');
    await exited;
    assert.equal(lockHolder(tmp.dir), null);
    const storage = openStorage(tmp.dir);
    assert.equal(storage.lockTakenOverFrom, pid);
    storage.close();
  } finally {
    child.kill('SIGKILL');
    await exited;
    tmp.remove();
  }
});

test('a lock holding no pid is refused with StorageLockUnreadable naming it and what it holds, and left as it is', () => {
  const tmp = tempDir('zomma-lock-');
  try {
    const lockPath = join(tmp.dir, LOCK_FILE);
    const cases: { content: string; found: string }[] = [
      { content: '', found: 'is empty' },
      { content: ' \n', found: 'holds " \\n"' },
      { content: 'garbage\n', found: 'holds "garbage\\n"' },
      { content: '12abc\n', found: 'holds "12abc\\n"' },
      { content: '0\n', found: 'holds "0\\n"' },
      { content: '-5\n', found: 'holds "-5\\n"' },
      { content: '0x10\n', found: 'holds "0x10\\n"' },
      { content: '\u0000\u0000\u0000\u0000', found: 'holds "\\u0000\\u0000\\u0000\\u0000"' },
      // A pid followed by more: not a lock of ours.
      {
        content: `${process.pid}\n${'x'.repeat(100)}`,
        found: `holds ${JSON.stringify(`${process.pid}\n${'x'.repeat(100)}`.slice(0, 32))}… (${String(process.pid).length + 101} bytes)`,
      },
      { content: '9'.repeat(40), found: `holds "${'9'.repeat(32)}"… (40 bytes)` },
    ];
    for (const { content, found } of cases) {
      writeFileSync(lockPath, content);
      const unreadable = (e: unknown): boolean =>
        e instanceof StorageError &&
        e.code === 'StorageLockUnreadable' &&
        e.path === lockPath &&
        e.message.includes(`lock ${found}`) &&
        e.message.includes('not taken over') &&
        e.message.includes('delete this file');
      assert.throws(() => openStorage(tmp.dir), unreadable, JSON.stringify(content));
      assert.equal(readFileSync(lockPath, 'utf8'), content, 'the lock is left as it was');
      assert.equal(existsSync(join(tmp.dir, 'wal.log')), false, 'nothing was opened');
      // Whoever asks who holds it (a devnet about to reset) hears the same.
      assert.throws(() => lockHolder(tmp.dir), unreadable);
    }
    // A directory where the lock should be cannot be read as one.
    rmSync(lockPath);
    mkdirSync(lockPath);
    assert.throws(
      () => openStorage(tmp.dir),
      (e) =>
        e instanceof StorageError &&
        e.code === 'StorageLockUnreadable' &&
        /lock cannot be read \(EISDIR\)/.test(e.message),
    );
    // Once the operator has made sure no node runs there and deleted it, the node starts.
    rmSync(lockPath, { recursive: true });
    const storage = openStorage(tmp.dir);
    assert.equal(storage.lockTakenOverFrom, null);
    storage.close();
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
