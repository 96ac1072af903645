import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WAL_RECORD_BYTES_MAX } from '../../../src/lib/limits.ts';
import { StorageError, openWal } from '../../../src/node/storage/index.ts';
import { FILE_HEADER_BYTES, RECORD_HEADER_BYTES } from '../../../src/node/storage/record_log.ts';

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

/** Writes `n` records to a fresh WAL and returns the offset of each record and the file's size. */
function writeWal(path: string, n: number): { offsets: number[]; size: number } {
  const { wal } = openWal(path);
  const offsets: number[] = [];
  let offset = FILE_HEADER_BYTES;
  for (let i = 0; i < n; i++) {
    offsets.push(offset);
    wal.append(record(i), i === n - 1);
    offset += RECORD_HEADER_BYTES + record(i).length;
  }
  wal.close();
  assert.equal(statSync(path).size, offset);
  return { offsets, size: offset };
}

test('a torn last record, cut at every byte offset, is truncated and every record before it is intact', () =>
  withDir((dir) => {
    const path = join(dir, 'wal.log');
    const n = 6;
    const { offsets, size } = writeWal(path, n);
    const pristine = readFileSync(path);
    const last = offsets[n - 1]!;
    for (let cut = last; cut < size; cut++) {
      writeFileSync(path, pristine);
      truncateSync(path, cut);
      const { wal, truncatedBytes } = openWal(path);
      assert.equal(truncatedBytes, cut - last, `cut at ${cut}`);
      assert.deepEqual(
        wal.readAll(),
        Array.from({ length: n - 1 }, (_, i) => record(i)),
      );
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
    const { offsets, size } = writeWal(path, 4);
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
    const { size } = writeWal(path, 3);
    appendFileSync(path, new Uint8Array(4096));
    const { wal, truncatedBytes } = openWal(path);
    assert.equal(truncatedBytes, 4096);
    assert.equal(wal.readAll().length, 3);
    wal.close();
    assert.equal(statSync(path).size, size);
  }));

test('a flipped byte anywhere in a middle record refuses to open, naming the file and the offset', () =>
  withDir((dir) => {
    const path = join(dir, 'wal.log');
    const n = 5;
    const { offsets } = writeWal(path, n);
    const pristine = readFileSync(path);
    for (const victim of [0, 2, 3]) {
      const start = offsets[victim]!;
      const end = offsets[victim + 1]!;
      for (let at = start; at < end; at++) {
        const bytes = Buffer.from(pristine);
        bytes[at]! ^= 0x40;
        writeFileSync(path, bytes);
        assert.throws(
          () => openWal(path),
          (error: unknown) => {
            assert.ok(error instanceof StorageError, String(error));
            assert.equal(error.code, 'StorageCorrupt');
            assert.equal(error.path, path);
            assert.equal(error.offset, start, `byte ${at} of record ${victim}`);
            assert.match(error.message, new RegExp(`wal\\.log at offset ${start}`));
            return true;
          },
        );
      }
    }
    // Nothing was truncated by the refusals.
    assert.equal(readFileSync(path).length, pristine.length);
  }));

test('a damaged file header or a file of another kind refuses to open', () =>
  withDir((dir) => {
    const path = join(dir, 'wal.log');
    writeWal(path, 2);
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
