import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openFileBlockStore, openFileSnapshotStore } from '../../../src/node/storage/index.ts';
import { RECORD_HEADER_BYTES } from '../../../src/node/storage/record_log.ts';
import { recordOffsets } from './layout.ts';

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

/** Where the block of `height` sits in the log at `path` (blocks saved from height 1). */
function offsetOf(path: string, height: number): number {
  return recordOffsets(readFileSync(path))[height - 1]!;
}

test('a block torn mid-save is cut off at open; the blocks before it load', () =>
  withDir((dir) => {
    const path = join(dir, 'blocks.log');
    const store = openFileBlockStore(path);
    for (let h = 1; h <= 4; h++) store.save(h, block(h));
    store.close();
    truncateSync(path, offsetOf(path, 4) + RECORD_HEADER_BYTES + block(4).length - 10);
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
    const at = offsetOf(path, 2);
    bytes[at + RECORD_HEADER_BYTES + 100]! ^= 0xff;
    writeFileSync(path, bytes);
    const again = openFileBlockStore(path);
    assert.equal(again.lastHeight(), 4);
    assert.throws(() => again.load(2), { code: 'StorageCorrupt', offset: at, path });
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
    const at = offsetOf(path, 3);
    bytes[at + 1]! ^= 0x01;
    writeFileSync(path, bytes);
    assert.throws(() => openFileBlockStore(path), { code: 'StorageCorrupt', offset: at });
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

test('a block damaged in the unsynced tail, with intact blocks after it, is cut off with them at open', () =>
  withDir((dir) => {
    const path = join(dir, 'blocks.log');
    const store = openFileBlockStore(path);
    store.save(1, block(1));
    store.save(2, block(2));
    // Saved in the background: a power cut may keep any of them, in any order.
    for (let h = 3; h <= 6; h++) store.saveDeferred(h, block(h));
    const image = readFileSync(path);
    store.close();
    const at = recordOffsets(image)[3]!;
    const bytes = Buffer.from(image);
    bytes.fill(0, at + RECORD_HEADER_BYTES + 10, at + RECORD_HEADER_BYTES + 500);
    writeFileSync(path, bytes);
    const again = openFileBlockStore(path);
    assert.equal(again.lastHeight(), 3);
    for (let h = 1; h <= 3; h++) assert.deepEqual(again.load(h), block(h));
    again.save(4, block(4));
    again.close();
    // Damage in a block the synced save covered still refuses.
    const synced = Buffer.from(image);
    synced[recordOffsets(image)[0]! + 1]! ^= 0x01;
    writeFileSync(path, synced);
    assert.throws(() => openFileBlockStore(path), { code: 'StorageCorrupt' });
  }));

test('pruning at every snapshot rewrites the log only once the dead prefix reaches the kept part', () =>
  withDir((dir) => {
    const path = join(dir, 'blocks.log');
    const kept = 100;
    const every = 10;
    const blockBytes = (h: number): number => RECORD_HEADER_BYTES + block(h).length;
    let store = openFileBlockStore(path);
    let rewrites = 0;
    let inode = statSync(path).ino;
    for (let h = 1; h <= 1000; h++) {
      store.saveDeferred(h, block(h));
      if (h % every !== 0 || h <= kept) continue;
      store.pruneBefore(h - kept + 1);
      assert.equal(store.firstHeight(), h - kept + 1);
      assert.equal(store.load(h - kept), null, 'a dropped height is not served');
      assert.equal(store.sizeOf(h - kept), null, 'nor sized');
      assert.equal(store.sizeOf(h), block(h).length, 'a held block is sized without reading it');
      assert.equal(store.sizeOf(h + 1), null, 'nor a height not yet saved');
      const now = statSync(path).ino;
      if (now !== inode) rewrites++;
      inode = now;
      // The file holds at most about twice what is kept, plus one interval.
      assert.ok(statSync(path).size <= (2 * kept + every) * (blockBytes(h) + 20) + 16);
    }
    // Each rewrite follows at least `kept` dropped heights.
    assert.ok(rewrites >= 1 && rewrites <= (1000 - kept) / kept + 1, `${rewrites} rewrites`);
    store.close();
    // A restart may find dropped heights again, never lose a kept one.
    store = openFileBlockStore(path);
    assert.ok(store.firstHeight() <= 901);
    assert.equal(store.lastHeight(), 1000);
    for (let h = 901; h <= 1000; h++) assert.deepEqual(store.load(h), block(h));
    store.pruneBefore(901);
    assert.equal(store.firstHeight(), 901);
    store.close();
  }));
