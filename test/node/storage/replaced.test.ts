// A data directory replaced under an open storage (a backup restored into a
// running node): checkInPlace finds the WAL or the lock no longer the file at
// its path, with StorageReplaced naming it, and close() then writes nothing
// more. Real files on a temporary directory.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  appendFileSync,
  cpSync,
  existsSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { StorageError, openStorage } from '../../../src/node/storage/index.ts';
import type { FileStorage } from '../../../src/node/storage/index.ts';
import { LOCK_FILE } from '../../../src/node/storage/lock.ts';
import { tempDir } from '../helpers.ts';

/** `data/` under a fresh temporary directory, with a WAL of a few synced records. */
function withData(body: (data: string, root: string) => void): void {
  const tmp = tempDir('zomma-replaced-');
  try {
    const data = join(tmp.dir, 'data');
    const storage = openStorage(data);
    for (let i = 0; i < 3; i++) storage.wal.append(new Uint8Array([i, 1, 2]), true);
    storage.close();
    body(data, tmp.dir);
  } finally {
    tmp.remove();
  }
}

/** Every file under `dir`, by path relative to it, with its bytes. */
function filesOf(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (at: string, prefix: string): void => {
    const entries = readdirSync(at, { withFileTypes: true });
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) walk(path, `${prefix}${entry.name}/`);
      else out.set(`${prefix}${entry.name}`, readFileSync(path).toString('hex'));
    }
  };
  walk(dir, '');
  return out;
}

function replacedError(storage: FileStorage, file: string, why: RegExp): (e: unknown) => boolean {
  return (e) =>
    e instanceof StorageError &&
    e.code === 'StorageReplaced' &&
    e.path === join(storage.dir, file) &&
    why.test(e.message) &&
    // What happened, why it matters and where to read what to do.
    /a backup restored into a running node\?/.test(e.message) &&
    /double-sign/.test(e.message) &&
    /docs\/operations\.md, "Backups"/.test(e.message);
}

test('checkInPlace passes on the files the storage opened, a rotated WAL included', () => {
  withData((data) => {
    const storage = openStorage(data);
    try {
      storage.checkInPlace();
      for (let i = 0; i < 4; i++) storage.wal.append(new Uint8Array([9, i]), i % 2 === 1);
      storage.wal.sync();
      storage.checkInPlace();
      // Rotation writes a new file at the WAL's path and renames it into place: still ours.
      storage.wal.truncateBefore(storage.wal.nextIndex() - 1);
      storage.checkInPlace();
      storage.wal.append(new Uint8Array([7]), true);
      storage.checkInPlace();
      assert.equal(storage.replaced, false);
    } finally {
      storage.close();
    }
    assert.equal(existsSync(join(data, LOCK_FILE)), false, 'a clean close removes the lock');
  });
});

test('rm -rf data && cp -a backup data under an open storage: StorageReplaced, and the restored files are left as they were', () => {
  withData((data, root) => {
    // A backup taken the right way: with the storage closed.
    const backup = join(root, 'backup');
    cpSync(data, backup, { recursive: true });
    const storage = openStorage(data);
    try {
      storage.wal.append(new Uint8Array([5, 5]), true);
      storage.checkInPlace();

      rmSync(data, { recursive: true, force: true });
      cpSync(backup, data, { recursive: true });

      // The WAL the storage appends to is the deleted one.
      storage.wal.append(new Uint8Array([6, 6]), true);
      assert.throws(
        () => storage.checkInPlace(),
        replacedError(storage, 'wal.log', /^\S+wal\.log: the file this node writes was deleted/),
      );
      assert.equal(storage.replaced, true);
    } finally {
      storage.close();
    }
    // Neither the deleted files' closing syncs nor the lock's release touched the backup.
    assert.deepEqual(filesOf(data), filesOf(backup));
  });
});

test('data moved aside and a copy put in its place: StorageReplaced, another file at the WAL path', () => {
  withData((data, root) => {
    const backup = join(root, 'backup');
    cpSync(data, backup, { recursive: true });
    const storage = openStorage(data);
    try {
      storage.wal.append(new Uint8Array([5]), true);
      renameSync(data, join(root, 'data.old'));
      cpSync(backup, data, { recursive: true });
      assert.throws(
        () => storage.checkInPlace(),
        replacedError(
          storage,
          'wal.log',
          /another file is at this path than the one this node writes/,
        ),
      );
    } finally {
      storage.close();
    }
    assert.deepEqual(filesOf(data), filesOf(backup));
  });
});

test('data moved away with nothing put back: StorageReplaced, no file at the WAL path', () => {
  withData((data, root) => {
    const storage = openStorage(data);
    try {
      renameSync(data, join(root, 'elsewhere'));
      assert.throws(
        () => storage.checkInPlace(),
        replacedError(storage, 'wal.log', /no file is at this path any more/),
      );
    } finally {
      storage.close();
    }
    assert.equal(existsSync(data), false, 'close made nothing at the old path');
  });
});

test('a WAL cut or grown by another writer: StorageReplaced naming the sizes', () => {
  withData((data) => {
    for (const tamper of [
      (path: string) => truncateSync(path, 36),
      (path: string) => appendFileSync(path, new Uint8Array([0])),
    ]) {
      const storage = openStorage(data);
      try {
        storage.wal.append(new Uint8Array([1]), true);
        tamper(join(data, 'wal.log'));
        assert.throws(
          () => storage.checkInPlace(),
          replacedError(storage, 'wal.log', /the file holds \d+ bytes where this node wrote \d+/),
        );
      } finally {
        storage.close();
      }
      rmSync(data, { recursive: true, force: true });
    }
  });
});

test('a lock deleted, or replaced by another file, under an open storage: StorageReplaced naming LOCK; close leaves the other file and the WAL as they are', () => {
  withData((data) => {
    const lockPath = join(data, LOCK_FILE);
    const walPath = join(data, 'wal.log');

    let storage = openStorage(data);
    try {
      storage.wal.append(new Uint8Array([1]), false);
      unlinkSync(lockPath);
      assert.throws(
        () => storage.checkInPlace(),
        replacedError(storage, LOCK_FILE, /the lock file this node took was deleted/),
      );
    } finally {
      storage.close();
    }

    storage = openStorage(data);
    let walAtCheck: Buffer;
    try {
      storage.wal.append(new Uint8Array([2]), false);
      // Another node's lock, here with our own pid (a copy of this one): not
      // ours to remove. Made right after the unlink, it would get the freed
      // inode number if the storage did not hold its lock open.
      unlinkSync(lockPath);
      writeFileSync(lockPath, `${process.pid}\n`);
      assert.throws(
        () => storage.checkInPlace(),
        replacedError(storage, LOCK_FILE, /the lock file this node took was deleted/),
      );
      walAtCheck = readFileSync(walPath);
    } finally {
      storage.close();
    }
    // The WAL at the path may be another node's now: no closing sync marker, no unsynced record flushed.
    assert.deepEqual(readFileSync(walPath), walAtCheck);
    assert.equal(readFileSync(lockPath, 'utf8'), `${process.pid}\n`, 'the other lock stays');
  });
});
