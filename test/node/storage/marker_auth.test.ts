// Sync markers are authenticated by a secret per-file salt (record_log.ts):
// marker bytes a client put in a payload, or a marker of another file, do not
// raise the durable bound; genuine ones still do, across a rotation; the file
// header carries a checksum; older files are upgraded by a durable rename.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { StorageError, openStorage, openWal } from '../../../src/node/storage/index.ts';
import {
  FILE_HEADER_BYTES,
  RECORD_HEADER_BYTES,
  encodeRecord,
} from '../../../src/node/storage/record_log.ts';
import { OLD_FILE_HEADER_BYTES, layout, recordOffsets } from './layout.ts';

function record(i: number): Uint8Array {
  return Uint8Array.from({ length: 5 + ((i * 7) % 23) }, (_, j) => (i * 31 + j) & 0xff);
}

function records(from: number, to: number): Uint8Array[] {
  return Array.from({ length: to - from }, (_, i) => record(from + i));
}

function withDir(body: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'zomma-marker-'));
  try {
    body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function refusesAt(path: string, start: number, what: string): void {
  assert.throws(
    () => openWal(path),
    (error: unknown) => {
      assert.ok(error instanceof StorageError, String(error));
      assert.equal(error.code, 'StorageCorrupt', what);
      assert.equal(error.offset, start, what);
      return true;
    },
  );
}

/** A marker as version 2 wrote it: the right length word and both CRC-32s, no secret. */
function unkeyedMarker(distance: number): Buffer {
  const payload = Buffer.alloc(8);
  payload.writeUInt32BE(Math.floor(distance / 0x1_0000_0000), 0);
  payload.writeUInt32BE(distance >>> 0, 4);
  const out = Buffer.alloc(RECORD_HEADER_BYTES + 8);
  out.writeUInt32BE((0x8000_0000 | 8) >>> 0, 0);
  out.writeUInt32BE(crc32(payload), 4);
  out.writeUInt32BE(crc32(out.subarray(0, 8)), 8);
  payload.copy(out, RECORD_HEADER_BYTES);
  return out;
}

/** A genuine marker of another WAL (another salt), naming distance 0, with sound CRCs. */
function foreignMarker(dir: string): Buffer {
  const path = join(dir, 'other.log');
  const { wal } = openWal(path);
  wal.append(record(0), true);
  wal.close();
  const bytes = readFileSync(path);
  const slot = layout(bytes)
    .filter((s) => s.marker)
    .at(-1)!;
  return Buffer.from(bytes.subarray(slot.offset, slot.end));
}

/** An older file (version 1, or 2 with its unkeyed markers) holding records 0..n-1. */
function oldFile(version: 1 | 2, n: number): Buffer {
  const header = Buffer.alloc(OLD_FILE_HEADER_BYTES);
  header.write('ZWAL', 0, 'latin1');
  header.writeUInt32BE(version, 4);
  const parts: Uint8Array[] = [header];
  for (let i = 0; i < n; i++) {
    parts.push(encodeRecord(record(i)));
    if (version === 2) parts.push(unkeyedMarker(0));
  }
  return Buffer.concat(parts);
}

test('forged markers in an unsynced payload past a damaged header do not raise the bound: the torn tail is cut', () =>
  withDir((dir) => {
    const path = join(dir, 'wal.log');
    const forged = Buffer.concat([
      Buffer.from('client bytes '),
      unkeyedMarker(0),
      foreignMarker(dir),
      Buffer.from(' more'),
    ]);
    const { wal } = openWal(path);
    for (let i = 0; i < 3; i++) wal.append(record(i), true);
    // Unsynced: a power cut may leave any of them damaged.
    wal.append(record(3), false);
    wal.append(forged, false);
    wal.append(record(5), false);
    const image = readFileSync(path);
    wal.close();
    const offsets = recordOffsets(image);
    assert.equal(offsets.length, 6);
    const bytes = Buffer.from(image);
    bytes[offsets[3]! + 1]! ^= 0x10;
    writeFileSync(path, bytes);
    const opened = openWal(path);
    assert.equal(opened.truncatedBytes, image.length - offsets[3]!);
    assert.deepEqual(opened.wal.readAll(), records(0, 3));
    opened.wal.close();
  }));

test('a genuine marker past a damaged header still proves the record synced: refused', () =>
  withDir((dir) => {
    const path = join(dir, 'wal.log');
    const { wal } = openWal(path);
    for (let i = 0; i < 5; i++) wal.append(record(i), true);
    const image = readFileSync(path);
    wal.close();
    const offsets = recordOffsets(image);
    for (const victim of [1, 2]) {
      const bytes = Buffer.from(image);
      bytes[offsets[victim]! + 1]! ^= 0x10;
      writeFileSync(path, bytes);
      refusesAt(path, offsets[victim]!, `header of synced record ${victim}`);
    }
  }));

test('a rotated WAL keeps its salt: markers written before and after the rewrite stay valid', () =>
  withDir((dir) => {
    const path = join(dir, 'wal.log');
    const { wal } = openWal(path);
    for (let i = 0; i < 4; i++) wal.append(record(i), true);
    const salt = readFileSync(path).subarray(16, 32);
    wal.truncateBefore(2);
    for (let i = 4; i < 7; i++) wal.append(record(i), true);
    const image = readFileSync(path);
    wal.close();
    assert.deepEqual(readFileSync(path).subarray(16, 32), salt);
    // Undamaged: every record, nothing cut (a marker failing its MAC would be damage).
    const clean = openWal(path);
    assert.equal(clean.truncatedBytes, 0);
    assert.deepEqual(clean.wal.readAll(), records(2, 7));
    clean.wal.close();
    // A kept record's header damaged: the markers after it (found by their
    // bytes, under the carried salt) prove it synced.
    const offsets = recordOffsets(image);
    for (const victim of [0, 2]) {
      const bytes = Buffer.from(image);
      bytes[offsets[victim]! + 1]! ^= 0x10;
      writeFileSync(path, bytes);
      refusesAt(path, offsets[victim]!, `header of record ${victim} after the rotation`);
    }
  }));

test('a flipped byte in the file header (magic, version, base, salt or checksum) refuses to open, naming the header', () =>
  withDir((dir) => {
    const path = join(dir, 'wal.log');
    const { wal } = openWal(path);
    for (let i = 0; i < 3; i++) wal.append(record(i), true);
    wal.close();
    const pristine = readFileSync(path);
    // Every bit: a version 3 flipped to 2 or 1 is not read as an older file.
    for (let at = 0; at < FILE_HEADER_BYTES * 8; at++) {
      const bytes = Buffer.from(pristine);
      bytes[at >> 3]! ^= 1 << (at & 7);
      writeFileSync(path, bytes);
      assert.throws(
        () => openWal(path),
        (error: unknown) => {
          assert.ok(error instanceof StorageError);
          assert.equal(error.code, 'StorageCorrupt');
          assert.equal(error.offset, 0);
          assert.match(error.message, /file header fails its checksum/);
          return true;
        },
        `bit ${at & 7} of byte ${at >> 3}`,
      );
    }
    assert.equal(readFileSync(path).length, pristine.length);
  }));

/**
 * The u32 whose bytes at 12..15 of `bytes` make CRC-32 of its first 32 bytes,
 * with magic `ZWAL` and version 3 put in front, equal bytes 32..35: a version
 * 3 header's checksum. CRC-32 is affine over GF(2) in those bits and the map
 * is one to one, so a basis of the 32 unit changes solves it.
 */
function baseFaking3(bytes: Buffer): number {
  const crcWith = (low: number): number => {
    const header = Buffer.from(bytes.subarray(0, 32));
    header.write('ZWAL', 0, 'latin1');
    header.writeUInt32BE(3, 4);
    header.writeUInt32BE(0, 8);
    header.writeUInt32BE(low >>> 0, 12);
    return crc32(header);
  };
  const zero = crcWith(0);
  // pivots[b]: a change of the checksum whose top set bit is b, and the bits of `low` making it.
  const pivots: ({ change: number; low: number } | undefined)[] = [];
  for (let i = 0; i < 32; i++) {
    let change = (crcWith(2 ** i) ^ zero) >>> 0;
    let low = 2 ** i;
    for (let b = 31; b >= 0 && change !== 0; b--) {
      if (((change >>> b) & 1) === 0) continue;
      const pivot = pivots[b];
      if (pivot === undefined) {
        pivots[b] = { change, low };
        break;
      }
      change = (change ^ pivot.change) >>> 0;
      low = (low ^ pivot.low) >>> 0;
    }
  }
  let rest = (bytes.readUInt32BE(32) ^ zero) >>> 0;
  let low = 0;
  for (let b = 31; b >= 0; b--) {
    if (((rest >>> b) & 1) === 0) continue;
    rest = (rest ^ pivots[b]!.change) >>> 0;
    low = (low ^ pivots[b]!.low) >>> 0;
  }
  assert.equal(rest, 0, 'solved');
  return low;
}

for (const version of [1, 2] as const) {
  test(`a version ${version} file opens under the end-only rule and is upgraded to version 3 by a durable rename`, () =>
    withDir((dir) => {
      const path = join(dir, 'wal.log');
      const old = oldFile(version, 4);
      const oldOffsets = recordOffsets(old);
      // Damage followed by data refuses, as the end-only rule did.
      const middle = Buffer.from(old);
      middle[oldOffsets[1]! + RECORD_HEADER_BYTES]! ^= 0x01;
      writeFileSync(path, middle);
      refusesAt(path, oldOffsets[1]!, 'a middle record of an old file');
      assert.deepEqual(readFileSync(path), middle, 'a refused file is left as it was');
      // A torn last record is cut; the rest is upgraded.
      const lastEnd = oldOffsets[3]! + RECORD_HEADER_BYTES + record(3).length;
      writeFileSync(path, old.subarray(0, lastEnd - 3));
      const opened = openWal(path);
      assert.equal(opened.truncatedBytes, lastEnd - 3 - oldOffsets[3]!);
      assert.deepEqual(opened.wal.readAll(), records(0, 3));
      opened.wal.append(record(9), true);
      opened.wal.close();
      assert.equal(readFileSync(path).readUInt32BE(4), 3);
      assert.equal(existsSync(`${path}.tmp`), false);
      const again = openWal(path);
      assert.equal(again.truncatedBytes, 0);
      assert.deepEqual(again.wal.readAll(), [...records(0, 3), record(9)]);
      again.wal.close();
    }));

  test(`a crash at any step of a version ${version} upgrade leaves a file that opens with every record, and damage among them still refuses`, () =>
    withDir((dir) => {
      const path = join(dir, 'wal.log');
      const old = oldFile(version, 4);
      writeFileSync(path, old);
      // A run that upgrades and stops before appending anything.
      openWal(path).wal.close();
      const upgraded = readFileSync(path);
      assert.equal(upgraded.readUInt32BE(4), 3);
      // The upgrade writes wal.log.tmp whole, syncs it, renames it over: a
      // crash leaves the old file (with a partial or whole temporary file
      // beside it) or the new one.
      const states: [string, Buffer, Buffer | null][] = [
        ['before the temporary file', old, null],
        ['mid-way through the temporary file', old, upgraded.subarray(0, upgraded.length - 7)],
        ['before the rename', old, upgraded],
        ['after the rename', upgraded, null],
      ];
      for (const [what, image, tmp] of states) {
        writeFileSync(path, image);
        if (tmp !== null) writeFileSync(`${path}.tmp`, tmp);
        const opened = openWal(path);
        assert.equal(opened.truncatedBytes, 0, what);
        assert.deepEqual(opened.wal.readAll(), records(0, 4), what);
        opened.wal.close();
        assert.equal(existsSync(`${path}.tmp`), false, what);
        const bytes = readFileSync(path);
        assert.equal(bytes.readUInt32BE(4), 3, what);
        // Version 3 would take damage among unmarked records for a torn
        // tail; the upgrade's closing marker keeps it refused, as before.
        const offsets = recordOffsets(bytes);
        assert.equal(offsets.length, 4, what);
        for (const damage of [
          (b: Buffer) => void (b[offsets[1]! + RECORD_HEADER_BYTES]! ^= 0x01),
          (b: Buffer) => void (b[offsets[1]! + 1]! ^= 0x10),
        ]) {
          const damaged = Buffer.from(bytes);
          damage(damaged);
          writeFileSync(path, damaged);
          refusesAt(path, offsets[1]!, `${what}: a middle record after the upgrade`);
        }
      }
    }));
}

for (const version of [1, 2] as const) {
  test(`an upgraded version ${version} file's marker refuses damage but proves nothing acknowledged: a later start may still drop its tail`, () =>
    withDir((dir) => {
      const path = join(dir, 'wal.log');
      writeFileSync(path, oldFile(version, 4));
      // Starts that upgrade the file and fail before anything is dropped or appended.
      openWal(path).wal.close();
      openWal(path).wal.close();
      const upgraded = readFileSync(path);
      const offsets = recordOffsets(upgraded);
      // The next start drops the last two records (an unbacked checkpoint and what follows).
      const opened = openWal(path);
      opened.wal.dropFrom(2);
      assert.deepEqual(opened.wal.readAll(), records(0, 2));
      opened.wal.close();
      const dropped = readFileSync(path);
      const again = openWal(path);
      assert.equal(again.truncatedBytes, 0);
      assert.deepEqual(again.wal.readAll(), records(0, 2));
      again.wal.close();
      // The records kept are still proven durable after the cut: damage among them refuses.
      const damaged = Buffer.from(dropped);
      damaged[offsets[0]! + RECORD_HEADER_BYTES]! ^= 0x01;
      writeFileSync(path, damaged);
      refusesAt(path, offsets[0]!, 'a kept record after the drop');
      // Once a run has appended and synced, what it found is acknowledged: no longer dropped.
      writeFileSync(path, dropped);
      const running = openWal(path);
      running.wal.append(record(7), true);
      running.wal.close();
      const later = openWal(path);
      assert.throws(() => later.wal.dropFrom(1), { code: 'StorageCorrupt' });
      assert.deepEqual(later.wal.readAll(), [...records(0, 2), record(7)]);
      later.wal.close();
    }));
}

test('closing the storage reports a failed block-log sync, and leaves the WAL unsynced', () =>
  withDir((dir) => {
    const storage = openStorage(dir);
    storage.blocks.save(1, record(40));
    storage.wal.append(record(0), true);
    storage.wal.append(record(1), false);
    const walBefore = statSync(join(dir, 'wal.log')).size;
    // The block log's file swapped for /dev/zero, which takes writes but whose
    // fdatasync fails (EINVAL), under both of its descriptors.
    const log = (storage.blocks as unknown as { log: { fd: number; syncFd: number } }).log;
    const realFds = [log.fd, log.syncFd];
    log.fd = openSync('/dev/zero', 'r+');
    log.syncFd = openSync('/dev/zero', 'r+');
    try {
      storage.blocks.saveDeferred(2, record(50));
      assert.throws(
        () => storage.close(),
        (error: unknown) => {
          assert.ok(error instanceof StorageError, String(error));
          assert.equal(error.code, 'StorageIoFailed');
          assert.equal(error.path, join(dir, 'blocks.log'));
          return true;
        },
      );
    } finally {
      for (const fd of realFds) closeSync(fd);
    }
    // No closing marker proves the WAL's unsynced record, and the lock is gone.
    assert.equal(statSync(join(dir, 'wal.log')).size, walBefore);
    assert.equal(existsSync(join(dir, 'LOCK')), false);
    const again = openStorage(dir);
    assert.deepEqual(again.wal.readAll(), records(0, 2));
    again.close();
  }));

test('closing the storage with syncWal false leaves the WAL as a crash would, without a closing marker', () =>
  withDir((dir) => {
    const storage = openStorage(dir);
    storage.wal.append(record(0), true);
    storage.wal.append(record(1), false);
    const walBefore = statSync(join(dir, 'wal.log')).size;
    storage.close(false);
    assert.equal(statSync(join(dir, 'wal.log')).size, walBefore);
    assert.equal(existsSync(join(dir, 'LOCK')), false);
    const again = openStorage(dir);
    assert.deepEqual(again.wal.readAll(), records(0, 2));
    again.close();
  }));

for (const { what, device, fail } of [
  {
    what: 'its sync refused before a signature',
    device: '/dev/zero',
    fail: (storage: ReturnType<typeof openStorage>) => storage.blocks.flush(),
  },
  {
    what: 'an append out of space',
    device: '/dev/full',
    fail: (storage: ReturnType<typeof openStorage>) => storage.blocks.saveDeferred(2, record(50)),
  },
]) {
  test(`a block log that failed while the node ran (${what}) leaves the WAL unsynced at the close, its tail droppable`, () =>
    withDir((dir) => {
      const storage = openStorage(dir);
      storage.blocks.save(1, record(40));
      storage.wal.append(record(0), true);
      const walBefore = statSync(join(dir, 'wal.log')).size;
      // The block log's file swapped for a device under both of its
      // descriptors: /dev/zero takes writes and refuses fdatasync (EINVAL),
      // as after a write-back error that dropped the pages; /dev/full
      // refuses writes (ENOSPC).
      const log = (storage.blocks as unknown as { log: { fd: number; syncFd: number } }).log;
      const realFds = [log.fd, log.syncFd];
      log.fd = openSync(device, 'r+');
      log.syncFd = openSync(device, 'r+');
      try {
        // Block 2 goes nowhere (or is refused below), and a checkpoint naming
        // it is appended without a sync.
        if (device === '/dev/zero') storage.blocks.saveDeferred(2, record(50));
        storage.wal.append(record(1), false);
        // The node halts on the failure, reported here; its stop then closes the storage.
        assert.throws(() => fail(storage), { code: 'StorageIoFailed' });
        storage.close();
      } finally {
        for (const fd of realFds) closeSync(fd);
      }
      // No closing marker proves the checkpoint: a restart that finds its
      // block missing can drop it and resume from the record before.
      assert.equal(statSync(join(dir, 'wal.log')).size, walBefore + RECORD_HEADER_BYTES + 12);
      const again = openStorage(dir);
      assert.deepEqual(again.wal.readAll(), records(0, 2));
      again.wal.dropFrom(1);
      assert.deepEqual(again.wal.readAll(), records(0, 1));
      again.close();
    }));
}

test('a version 1 or 2 file whose bytes happen to pass a version 3 header checksum opens as what it is, not as a damaged header', () =>
  withDir((dir) => {
    const path = join(dir, 'wal.log');
    for (const version of [1, 2] as const) {
      const old = oldFile(version, 4);
      const base = baseFaking3(old);
      old.writeUInt32BE(base, 12);
      // Read with version 3 put back, the header's checksum holds (as it
      // does by chance once in 2^32 files).
      const restored = Buffer.from(old.subarray(0, 32));
      restored.writeUInt32BE(3, 4);
      assert.equal(crc32(restored), old.readUInt32BE(32), `version ${version}: the checksum holds`);
      writeFileSync(path, old);
      const opened = openWal(path);
      assert.equal(opened.wal.firstIndex(), base, `version ${version}: its base`);
      assert.deepEqual(opened.wal.readAll(), records(0, 4), `version ${version}: its records`);
      opened.wal.close();
      assert.equal(readFileSync(path).readUInt32BE(4), 3, `version ${version}: upgraded`);
    }
  }));
