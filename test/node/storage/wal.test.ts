import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WAL_RECORD_BYTES_MAX } from '../../../src/lib/limits.ts';
import { StorageError, openWal } from '../../../src/node/storage/index.ts';
import { RECORD_HEADER_BYTES } from '../../../src/node/storage/record_log.ts';
import { recordOffsets } from './layout.ts';

function record(i: number): Uint8Array {
  return Uint8Array.from({ length: 5 + ((i * 7) % 23) }, (_, j) => (i * 31 + j) & 0xff);
}

function withDir(body: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'zomma-wal-'));
  try {
    body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

type Syncs = 'none' | 'last' | 'each';

/**
 * Writes `n` records to a fresh WAL, synced as `syncs` says, and leaves the
 * file as a crash right after the last append would (`crash`) or as close()
 * does. Returns each record's offset and the file's size.
 */
function writeWal(
  path: string,
  n: number,
  syncs: Syncs,
  crash: boolean,
): { offsets: number[]; size: number } {
  const { wal } = openWal(path);
  for (let i = 0; i < n; i++) {
    wal.append(record(i), syncs === 'each' || (syncs === 'last' && i === n - 1));
  }
  const image = readFileSync(path);
  wal.close();
  if (crash) writeFileSync(path, image);
  const bytes = readFileSync(path);
  const offsets = recordOffsets(bytes);
  assert.equal(offsets.length, n);
  return { offsets, size: bytes.length };
}

function records(from: number, to: number): Uint8Array[] {
  return Array.from({ length: to - from }, (_, i) => record(from + i));
}

function refusesAt(path: string, start: number, what: string): void {
  assert.throws(
    () => openWal(path),
    (error: unknown) => {
      assert.ok(error instanceof StorageError, String(error));
      assert.equal(error.code, 'StorageCorrupt');
      assert.equal(error.path, path);
      assert.equal(error.offset, start, what);
      assert.match(error.message, new RegExp(`wal\\.log at offset ${start}`));
      return true;
    },
  );
}

test('a torn last record, cut at every byte offset, is truncated and every record before it is intact', () =>
  withDir((dir) => {
    const path = join(dir, 'wal.log');
    const n = 6;
    const { offsets } = writeWal(path, n, 'last', true);
    const pristine = readFileSync(path);
    const last = offsets[n - 1]!;
    const lastEnd = last + RECORD_HEADER_BYTES + record(n - 1).length;
    for (let cut = last; cut < lastEnd; cut++) {
      writeFileSync(path, pristine);
      truncateSync(path, cut);
      const { wal, truncatedBytes } = openWal(path);
      assert.equal(truncatedBytes, cut - last, `cut at ${cut}`);
      assert.deepEqual(wal.readAll(), records(0, n - 1));
      // The next append lands where the torn record was, and survives a reopen.
      assert.equal(wal.append(record(100), true), n - 1);
      wal.close();
      const again = openWal(path);
      assert.equal(again.truncatedBytes, 0);
      assert.deepEqual(again.wal.readAll().at(-1), record(100));
      again.wal.close();
    }
  }));

test('a last record whose payload fails its checksum is a torn tail, cut off', () =>
  withDir((dir) => {
    const path = join(dir, 'wal.log');
    const { offsets, size } = writeWal(path, 4, 'none', true);
    const bytes = readFileSync(path);
    bytes[size - 1]! ^= 0x01;
    writeFileSync(path, bytes);
    const { wal, truncatedBytes } = openWal(path);
    assert.equal(truncatedBytes, size - offsets[3]!);
    assert.equal(wal.readAll().length, 3);
    wal.close();
  }));

test('a zero-filled tail (space allocated, data never written) is cut off', () =>
  withDir((dir) => {
    const path = join(dir, 'wal.log');
    const { size } = writeWal(path, 3, 'last', true);
    appendFileSync(path, new Uint8Array(4096));
    const { wal, truncatedBytes } = openWal(path);
    assert.equal(truncatedBytes, 4096);
    assert.equal(wal.readAll().length, 3);
    assert.equal(statSync(path).size, size);
    wal.close();
  }));

test('after a clean shutdown a flipped byte anywhere in any record refuses to open, naming the file and the offset', () =>
  withDir((dir) => {
    const path = join(dir, 'wal.log');
    const n = 5;
    const { offsets } = writeWal(path, n, 'last', false);
    const pristine = readFileSync(path);
    for (const victim of [0, 2, 4]) {
      const start = offsets[victim]!;
      const end = start + RECORD_HEADER_BYTES + record(victim).length;
      for (let at = start; at < end; at++) {
        const bytes = Buffer.from(pristine);
        bytes[at]! ^= 0x40;
        writeFileSync(path, bytes);
        refusesAt(path, start, `byte ${at} of record ${victim}`);
      }
    }
    // Nothing was truncated by the refusals.
    assert.equal(readFileSync(path).length, pristine.length);
  }));

test('after a crash a damaged record that an earlier finished sync covers refuses to open', () =>
  withDir((dir) => {
    const path = join(dir, 'wal.log');
    const n = 5;
    const { offsets } = writeWal(path, n, 'each', true);
    const pristine = readFileSync(path);
    // The last record's sync may not have finished; the ones before it had.
    for (const victim of [0, 1, n - 2]) {
      const bytes = Buffer.from(pristine);
      bytes[offsets[victim]! + RECORD_HEADER_BYTES]! ^= 0x01;
      writeFileSync(path, bytes);
      refusesAt(path, offsets[victim]!, `record ${victim}`);
    }
  }));

test('a damaged record in the middle of the unsynced tail, with intact records after it, is a torn tail cut from it', () =>
  withDir((dir) => {
    const path = join(dir, 'wal.log');
    const { wal } = openWal(path);
    for (let i = 0; i < 3; i++) wal.append(record(i), true);
    // Unsynced: writeback may put any of these on disk, in any order.
    for (let i = 3; i < 8; i++) wal.append(record(i), false);
    // A sync that started (its marker was written) but never finished.
    wal.sync();
    const image = readFileSync(path);
    wal.close();
    const offsets = recordOffsets(image);
    const pages: [string, (bytes: Buffer, at: number) => void][] = [
      ['never written', (bytes, at) => bytes.fill(0, at, at + RECORD_HEADER_BYTES + 4)],
      ['torn payload', (bytes, at) => void (bytes[at + RECORD_HEADER_BYTES + 2]! ^= 0xff)],
      ['torn header', (bytes, at) => void (bytes[at + 1]! ^= 0x10)],
    ];
    for (const victim of [3, 5, 7]) {
      for (const [what, damage] of pages) {
        const bytes = Buffer.from(image);
        damage(bytes, offsets[victim]!);
        writeFileSync(path, bytes);
        const opened = openWal(path);
        assert.equal(opened.truncatedBytes, image.length - offsets[victim]!, `${what} ${victim}`);
        assert.deepEqual(opened.wal.readAll(), records(0, victim));
        // The node appends again where the tail was cut, and a reopen keeps it.
        opened.wal.append(record(100), true);
        opened.wal.close();
        const again = openWal(path);
        assert.equal(again.truncatedBytes, 0);
        assert.deepEqual(again.wal.readAll(), [...records(0, victim), record(100)]);
        again.wal.close();
      }
    }
  }));

test('the durable bound holds across a rewrite from a checkpoint', () =>
  withDir((dir) => {
    const path = join(dir, 'wal.log');
    const { wal } = openWal(path);
    for (let i = 0; i < 6; i++) wal.append(record(i), true);
    wal.truncateBefore(4);
    wal.append(record(6), false);
    wal.append(record(7), false);
    const image = readFileSync(path);
    wal.close();
    const offsets = recordOffsets(image);
    assert.equal(offsets.length, 4);
    // Kept records were synced by the rewrite: damage there refuses.
    const kept = Buffer.from(image);
    kept[offsets[1]! + RECORD_HEADER_BYTES]! ^= 0x01;
    writeFileSync(path, kept);
    refusesAt(path, offsets[1]!, 'a kept record');
    // The unsynced records after it are a torn tail.
    const torn = Buffer.from(image);
    torn[offsets[2]! + RECORD_HEADER_BYTES]! ^= 0x01;
    writeFileSync(path, torn);
    const opened = openWal(path);
    assert.equal(opened.wal.firstIndex(), 4);
    assert.deepEqual(opened.wal.readAll(), records(4, 6));
    opened.wal.close();
  }));

// Older files (versions 1 and 2) and their upgrade: marker_auth.test.ts.

test('a damaged file header or a file of another kind refuses to open', () =>
  withDir((dir) => {
    const path = join(dir, 'wal.log');
    writeWal(path, 2, 'last', false);
    const bytes = readFileSync(path);
    bytes[0] = 0x41;
    writeFileSync(path, bytes);
    assert.throws(() => openWal(path), { code: 'StorageCorrupt' });
    writeFileSync(path, new Uint8Array(3));
    assert.throws(() => openWal(path), { code: 'StorageCorrupt' });
  }));

test('a record above the WAL limit is refused before it is written', () =>
  withDir((dir) => {
    const path = join(dir, 'wal.log');
    const { wal } = openWal(path);
    const limit = WAL_RECORD_BYTES_MAX;
    assert.throws(() => wal.append(new Uint8Array(limit + 1), true), { code: 'StorageTooLarge' });
    assert.equal(wal.nextIndex(), 0);
    wal.close();
  }));

test('truncation leaves no temporary file and the WAL reopens at the checkpoint', () =>
  withDir((dir) => {
    const path = join(dir, 'wal.log');
    const { wal } = openWal(path);
    for (let i = 0; i < 50; i++) wal.append(record(i), false);
    const checkpoint = wal.append(record(50), true);
    wal.truncateBefore(checkpoint);
    wal.append(record(51), false);
    wal.close();
    assert.throws(() => statSync(`${path}.tmp`));
    const again = openWal(path);
    assert.equal(again.wal.firstIndex(), 50);
    assert.deepEqual(again.wal.readAll(), [record(50), record(51)]);
    again.wal.close();
  }));
