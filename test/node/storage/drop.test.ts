// A power cut during wal.dropFrom (record_log.ts truncateTo) must leave a WAL
// that opens. An fsync writes a file's data before it commits the new size
// (ext4 and the like), so a cut in the middle of one can leave the data
// written since the last finished sync without the size change that came with
// it: a marker written at the cut over the old bytes, the old size kept.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs, { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openWal } from '../../../src/node/storage/index.ts';
import { encodeRecord } from '../../../src/node/storage/record_log.ts';
import { OLD_FILE_HEADER_BYTES } from './layout.ts';

function record(i: number): Uint8Array {
  return Uint8Array.from({ length: 40 + i }, (_, j) => (i * 31 + j) & 0xff);
}

function records(from: number, to: number): Uint8Array[] {
  return Array.from({ length: to - from }, (_, i) => record(from + i));
}

/** A version 1 WAL holding records 0..n-1. */
function versionOneWal(n: number): Buffer {
  const header = Buffer.alloc(OLD_FILE_HEADER_BYTES);
  header.write('ZWAL', 0, 'latin1');
  header.writeUInt32BE(1, 4);
  return Buffer.concat([header, ...records(0, n).map((r) => encodeRecord(r))]);
}

/**
 * Runs `body` recording, at the start of each fsync, what a power cut there
 * could leave: the file as the last finished sync left it (its size too),
 * with the data written since laid over it.
 */
function crashImages(path: string, body: () => void): Buffer[] {
  const images: Buffer[] = [];
  let durable = readFileSync(path);
  let pending: { position: number; bytes: Buffer }[] = [];
  const real = {
    writeSync: fs.writeSync,
    fsyncSync: fs.fsyncSync,
    fdatasyncSync: fs.fdatasyncSync,
  };
  const atSync = (sync: (fd: number) => void) => (fd: number) => {
    const image = Buffer.from(durable);
    for (const { position, bytes } of pending) {
      if (position < image.length) {
        image.set(bytes.subarray(0, image.length - position), position);
      }
    }
    images.push(image);
    sync(fd);
    durable = readFileSync(path);
    pending = [];
  };
  Object.assign(fs, {
    writeSync: (
      fd: number,
      buffer: Uint8Array,
      offset: number,
      length: number,
      position: number,
    ) => {
      pending.push({ position, bytes: Buffer.from(buffer.subarray(offset, offset + length)) });
      return real.writeSync(fd, buffer, offset, length, position);
    },
    fsyncSync: atSync(real.fsyncSync),
    fdatasyncSync: atSync(real.fdatasyncSync),
  });
  syncBuiltinESMExports();
  try {
    body();
  } finally {
    Object.assign(fs, real);
    syncBuiltinESMExports();
  }
  images.push(readFileSync(path));
  return images;
}

test('a power cut at any step of a drop after an upgrade leaves a WAL that opens, with or without the dropped records', () => {
  const dir = mkdtempSync(join(tmpdir(), 'zomma-dropcrash-'));
  try {
    const path = join(dir, 'wal.log');
    writeFileSync(path, versionOneWal(4));
    // A start that upgrades the WAL and fails before the restore.
    openWal(path).wal.close();
    const opened = openWal(path);
    const images = crashImages(path, () => opened.wal.dropFrom(2));
    opened.wal.close();
    assert.ok(images.length >= 2);
    for (const [i, image] of images.entries()) {
      const at = join(dir, `crash-${i}.log`);
      writeFileSync(at, image);
      const { wal } = openWal(at);
      const held = wal.readAll();
      wal.close();
      assert.ok([2, 4].includes(held.length), `crash at step ${i}: ${held.length} records`);
      assert.deepEqual(held, records(0, held.length), `crash at step ${i}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a drop that cuts the marker proving the records before it acknowledged keeps them undroppable', () => {
  const dir = mkdtempSync(join(tmpdir(), 'zomma-drop-'));
  try {
    const path = join(dir, 'wal.log');
    const running = openWal(path);
    running.wal.append(record(0), true);
    running.wal.append(record(1), true);
    // An unsynced record (a checkpoint), then a sync whose marker, after it,
    // names where the last finished sync ended: the start of that record.
    running.wal.append(record(2), false);
    running.wal.append(record(3), true);
    running.wal.closeUnsynced();
    const opened = openWal(path);
    assert.throws(() => opened.wal.dropFrom(1), { code: 'StorageCorrupt' });
    opened.wal.dropFrom(2);
    opened.wal.close();
    const later = openWal(path);
    assert.deepEqual(later.wal.readAll(), records(0, 2));
    assert.throws(() => later.wal.dropFrom(1), { code: 'StorageCorrupt' });
    assert.deepEqual(later.wal.readAll(), records(0, 2));
    later.wal.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
