// The snapshot directory's failures are the storage's like any other: a save
// that fails (a full disk: here the temporary file's name points at
// /dev/full, whose writes fail with ENOSPC) removes its temporary file, which
// would otherwise hold the space the node's next syncs need; and a listing or
// removal that fails (in pruning, or removing a crash's temporary files at
// open) is StorageIoFailed naming the path, so a start it stops says so
// rather than failing with an untyped system error.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  StorageError,
  openFileSnapshotStore,
  openStorage,
  snapshotFileName,
} from '../../../src/node/storage/index.ts';

function withDir(body: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'zomma-snapshot-errors-'));
  try {
    body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function state(height: number): Uint8Array {
  return Uint8Array.from({ length: 200 + height }, (_, i) => (height * 13 + i) & 0xff);
}

/** Asserts that `body` throws StorageIoFailed naming `path`. */
function refusesIo(body: () => unknown, path: string, what: string): void {
  assert.throws(body, (error: unknown) => {
    assert.ok(error instanceof StorageError, `${what}: ${String(error)}`);
    assert.equal(error.code, 'StorageIoFailed', `${what}: ${error.message}`);
    assert.equal(error.path, path, what);
    return true;
  });
}

function present(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

test('a snapshot save that runs out of space removes its temporary file and keeps the snapshots before it', () =>
  withDir((dir) => {
    const snapshots = openFileSnapshotStore(dir);
    snapshots.save(10, state(10));
    const path = join(dir, snapshotFileName(20));
    symlinkSync('/dev/full', `${path}.tmp`);
    refusesIo(() => snapshots.save(20, state(20)), path, 'the save');
    assert.equal(present(`${path}.tmp`), false, 'no temporary file is left');
    assert.deepEqual(readdirSync(dir), [snapshotFileName(10)]);
    assert.deepEqual(snapshots.heights(), [10]);
    assert.deepEqual(snapshots.load(10), state(10));
    // The next save of that height goes through.
    snapshots.save(20, state(20));
    assert.deepEqual(snapshots.load(20), state(20));
  }));

test('a temporary snapshot file that cannot be removed at open refuses the start with StorageIoFailed naming it', () =>
  withDir((dir) => {
    const data = join(dir, 'data');
    // A directory where a crash's temporary file would be: unlink refuses it (EISDIR).
    const tmp = join(data, 'snapshots', `${snapshotFileName(5)}.tmp`);
    mkdirSync(tmp, { recursive: true });
    refusesIo(() => openStorage(data), tmp, 'the start');
    assert.equal(existsSync(join(data, 'LOCK')), false, 'the refused start released the lock');
    // A file there, as a crash leaves it, is removed and the start goes on.
    rmSync(tmp, { recursive: true });
    writeFileSync(tmp, 'a partial snapshot');
    const storage = openStorage(data);
    assert.equal(existsSync(tmp), false, 'a temporary file is removed at open');
    storage.close();
  }));

test('a snapshot that cannot be pruned, or a snapshot directory that cannot be listed, is StorageIoFailed naming the path', () =>
  withDir((dir) => {
    const snapshots = openFileSnapshotStore(join(dir, 'snapshots'));
    snapshots.save(1, state(1));
    snapshots.save(2, state(2));
    // Listed like a snapshot, but unlink refuses a directory (EISDIR).
    const stuck = join(dir, 'snapshots', snapshotFileName(0));
    mkdirSync(stuck);
    refusesIo(() => snapshots.prune(1), stuck, 'the prune');
    rmSync(stuck, { recursive: true });
    snapshots.prune(1);
    assert.deepEqual(snapshots.heights(), [2]);
    // The directory replaced by a file: listing it fails (ENOTDIR).
    rmSync(join(dir, 'snapshots'), { recursive: true });
    writeFileSync(join(dir, 'snapshots'), 'not a directory');
    refusesIo(() => snapshots.heights(), join(dir, 'snapshots'), 'the listing');
    refusesIo(() => snapshots.prune(1), join(dir, 'snapshots'), 'a prune');
  }));
