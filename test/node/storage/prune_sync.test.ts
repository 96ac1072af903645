// Pruning rewrites the block log and reopens it, usually under the same fd
// number, while a background fdatasync of the old fd may still be in flight:
// that sync failing (EBADF) must not mark the new file failed, or the next
// block cannot be saved and the node halts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openFileBlockStore } from '../../../src/node/storage/block_store.ts';
import { tempDir } from '../helpers.ts';

test('pruning while background syncs are in flight leaves the block log writable', async () => {
  const tmp = tempDir('zomma-prune-sync-');
  const path = `${tmp.dir}/blocks.log`;
  const store = openFileBlockStore(path);
  try {
    let height = 1;
    for (let round = 0; round < 300; round++) {
      for (let i = 0; i < 3; i++) {
        store.saveDeferred(height, new Uint8Array(100).fill(height & 0xff));
        height++;
      }
      store.pruneBefore(height - 2);
      // Let the background syncs' callbacks run.
      await new Promise((resolve) => setImmediate(resolve));
    }
    store.save(height, new Uint8Array(10));
    assert.equal(store.firstHeight(), height - 2);
    assert.equal(store.lastHeight(), height);
    assert.deepEqual(store.load(height - 1), new Uint8Array(100).fill((height - 1) & 0xff));
  } finally {
    store.close();
    tmp.remove();
  }
});
