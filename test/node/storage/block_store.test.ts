import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openFileBlockStore, openFileSnapshotStore } from '../../../src/node/storage/index.ts';
import { FILE_HEADER_BYTES, RECORD_HEADER_BYTES } from '../../../src/node/storage/record_log.ts';

function block(height: number): Uint8Array {
  return Uint8Array.from({ length: 2000 + height }, (_, i) => (height * 13 + i) & 0xff);
}

function withDir(body: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'zomma-blocks-'));
  try {
    body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function offsetOf(height: number): number {
  let offset = FILE_HEADER_BYTES;
  for (let h = 1; h < height; h++) offset += RECORD_HEADER_BYTES + block(h).length;
  return offset;
}

test('a block torn mid-save is cut off at open; the blocks before it load', () =>
  withDir((dir) => {
    const path = join(dir, 'blocks.log');
    const store = openFileBlockStore(path);
    for (let h = 1; h <= 4; h++) store.save(h, block(h));
    store.close();
    truncateSync(path, statSync(path).size - 10);
    const again = openFileBlockStore(path);
    assert.equal(again.lastHeight(), 3);
    for (let h = 1; h <= 3; h++) assert.deepEqual(again.load(h), block(h));
    again.save(4, block(4));
    again.close();
  }));

test('a corrupted middle block is refused when read, naming the file and offset; the others load', () =>
  withDir((dir) => {
    const path = join(dir, 'blocks.log');
    const store = openFileBlockStore(path);
    for (let h = 1; h <= 4; h++) store.save(h, block(h));
    store.close();
    const bytes = readFileSync(path);
    bytes[offsetOf(2) + RECORD_HEADER_BYTES + 100]! ^= 0xff;
    writeFileSync(path, bytes);
    const again = openFileBlockStore(path);
    assert.equal(again.lastHeight(), 4);
    assert.throws(() => again.load(2), { code: 'StorageCorrupt', offset: offsetOf(2), path });
    assert.deepEqual(again.load(3), block(3));
    again.close();
  }));

test('a corrupted middle block header refuses to open', () =>
  withDir((dir) => {
    const path = join(dir, 'blocks.log');
    const store = openFileBlockStore(path);
    for (let h = 1; h <= 4; h++) store.save(h, block(h));
    store.close();
    const bytes = readFileSync(path);
    bytes[offsetOf(3) + 1]! ^= 0x01;
    writeFileSync(path, bytes);
    assert.throws(() => openFileBlockStore(path), { code: 'StorageCorrupt', offset: offsetOf(3) });
  }));

test('a damaged snapshot is refused with its path; a temporary file a crash left is removed', () =>
  withDir((dir) => {
    const snapshots = openFileSnapshotStore(join(dir, 'snapshots'));
    snapshots.save(7, block(7));
    const path = join(dir, 'snapshots', 'snapshot-0000000000000007.snap');
    const bytes = readFileSync(path);
    bytes[bytes.length - 1]! ^= 0x01;
    writeFileSync(path, bytes);
    assert.throws(() => snapshots.latest(), { code: 'StorageCorrupt', path });
    truncateSync(path, 5);
    assert.throws(() => snapshots.load(7), { code: 'StorageCorrupt' });
    const tmp = join(dir, 'snapshots', 'snapshot-0000000000000008.snap.tmp');
    writeFileSync(tmp, new Uint8Array(10));
    const reopened = openFileSnapshotStore(join(dir, 'snapshots'));
    assert.equal(existsSync(tmp), false);
    assert.deepEqual(reopened.heights(), [7]);
  }));

test('deferred saves read back at once, are durable after flush, and mix with plain saves', () =>
  withDir((dir) => {
    const path = join(dir, 'blocks.log');
    const store = openFileBlockStore(path);
    store.saveDeferred(1, block(1));
    assert.deepEqual(store.load(1), block(1));
    store.save(2, block(2));
    store.saveDeferred(3, block(3));
    store.saveDeferred(3, block(3));
    assert.throws(() => store.saveDeferred(3, block(4)), { code: 'BlockConflict' });
    store.flush();
    store.flush();
    store.close();
    const again = openFileBlockStore(path);
    assert.equal(again.lastHeight(), 3);
    for (let h = 1; h <= 3; h++) assert.deepEqual(again.load(h), block(h));
    again.close();
  }));
