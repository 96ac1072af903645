// A record log file is created, upgraded and rewritten by writing `<path>.tmp`
// whole and renaming it over (record_log.ts). When that write fails (a full
// disk: here the temporary file's name points at /dev/full, whose writes fail
// with ENOSPC), the open or rewrite refuses with StorageIoFailed, the old file
// is left as it was, and no partial temporary file is left holding the space.
// The block log is upgraded before the WAL, so a start that a full disk stops
// there leaves an older WAL unproven (restore.ts may still drop its tail).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageError, openStorage, openWal } from '../../../src/node/storage/index.ts';
import { encodeRecord } from '../../../src/node/storage/record_log.ts';
import { OLD_FILE_HEADER_BYTES } from './layout.ts';

function record(i: number): Uint8Array {
  return Uint8Array.from({ length: 9 + i }, (_, j) => (i * 17 + j) & 0xff);
}

function withDir(body: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'zomma-replace-'));
  try {
    body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The next write of `<path>.tmp` fails for want of space. */
function diskFullFor(path: string): void {
  symlinkSync('/dev/full', `${path}.tmp`);
}

function tmpLeft(path: string): boolean {
  try {
    lstatSync(`${path}.tmp`);
    return true;
  } catch {
    return false;
  }
}

function refusesIo(body: () => unknown, what: string): void {
  assert.throws(body, (error: unknown) => {
    assert.ok(error instanceof StorageError, `${what}: ${String(error)}`);
    assert.equal(error.code, 'StorageIoFailed', what);
    return true;
  });
}

/** A version 1 file of `magic` holding `n` records from `base`. */
function versionOne(magic: string, n: number, base = 0): Buffer {
  const header = Buffer.alloc(OLD_FILE_HEADER_BYTES);
  header.write(magic, 0, 'latin1');
  header.writeUInt32BE(1, 4);
  header.writeUInt32BE(base, 12);
  return Buffer.concat([header, ...Array.from({ length: n }, (_, i) => encodeRecord(record(i)))]);
}

test('a version 1 upgrade that runs out of space refuses with StorageIoFailed, leaves the old file and no temporary file', () =>
  withDir((dir) => {
    const path = join(dir, 'wal.log');
    const old = versionOne('ZWAL', 3);
    writeFileSync(path, old);
    diskFullFor(path);
    refusesIo(() => openWal(path), 'the upgrade');
    assert.deepEqual(readFileSync(path), old, 'the old file is left as it was');
    assert.equal(tmpLeft(path), false, 'no temporary file is left');
    // Space again: the next start upgrades it.
    const opened = openWal(path);
    assert.deepEqual(opened.wal.readAll(), [0, 1, 2].map(record));
    opened.wal.close();
    assert.equal(readFileSync(path).readUInt32BE(4), 3);
  }));

test('creating a log with no space refuses with StorageIoFailed and leaves no file', () =>
  withDir((dir) => {
    const path = join(dir, 'wal.log');
    diskFullFor(path);
    refusesIo(() => openWal(path), 'the creation');
    assert.equal(existsSync(path), false);
    assert.equal(tmpLeft(path), false, 'no temporary file is left');
  }));

test('a WAL rotation that runs out of space fails the log and leaves no temporary file; the old file opens whole', () =>
  withDir((dir) => {
    const path = join(dir, 'wal.log');
    const { wal } = openWal(path);
    for (let i = 0; i < 4; i++) wal.append(record(i), true);
    diskFullFor(path);
    refusesIo(() => wal.truncateBefore(2), 'the rotation');
    assert.equal(tmpLeft(path), false, 'no temporary file is left');
    refusesIo(() => wal.append(record(9), true), 'a failed log takes no more writes');
    wal.close();
    const again = openWal(path);
    assert.deepEqual(again.wal.readAll(), [0, 1, 2, 3].map(record));
    again.wal.close();
  }));

test('a start stopped by a full disk while upgrading the block log leaves the WAL as it was: the next start may still drop an unbacked tail of it', () =>
  withDir((dir) => {
    const walPath = join(dir, 'wal.log');
    const blocksPath = join(dir, 'blocks.log');
    const wal = versionOne('ZWAL', 3);
    writeFileSync(walPath, wal);
    writeFileSync(blocksPath, versionOne('ZBLK', 2, 1));
    diskFullFor(blocksPath);
    refusesIo(() => openStorage(dir), 'the block log upgrade');
    assert.equal(tmpLeft(blocksPath), false, 'no temporary file is left');
    // The older WAL proved none of its records durable; had it been upgraded
    // (a closing marker naming them all), the drop below would be refused.
    assert.deepEqual(readFileSync(walPath), wal, 'the WAL is left as it was');
    const storage = openStorage(dir);
    storage.wal.dropFrom(1);
    assert.deepEqual(storage.wal.readAll(), [record(0)]);
    assert.deepEqual(storage.blocks.load(2), record(1));
    storage.close();
  }));
