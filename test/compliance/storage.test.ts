// The storage compliance suite against the node's file storage.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStorage } from '../../src/node/storage/index.ts';
import type { Storage } from '../../src/node/storage/index.ts';
import { runStorageCompliance } from './storage.ts';

runStorageCompliance('file storage', () => {
  const dir = mkdtempSync(join(tmpdir(), 'zomma-storage-'));
  const open: Storage[] = [];
  return {
    open() {
      const storage = openStorage(dir);
      open.push(storage);
      return storage;
    },
    // A process crash leaves what write() handed the kernel in the page cache,
    // so the records it kept are readable at once: one legal outcome of a crash.
    // Losing the unsynced tail (the other) is covered by the torn-tail tests.
    crash(storage) {
      storage.close();
    },
    dispose() {
      for (const storage of open) storage.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
