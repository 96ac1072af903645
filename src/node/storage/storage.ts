// One node's storage in one directory:
//   <dir>/wal.log        the consensus WAL (wal.ts)
//   <dir>/blocks.log     committed blocks with their certificates (block_store.ts)
//   <dir>/snapshots/     application snapshots (snapshot_store.ts)

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { openFileBlockStore } from './block_store.ts';
import type { FileBlockStore } from './block_store.ts';
import { openFileSnapshotStore } from './snapshot_store.ts';
import type { FileSnapshotStore } from './snapshot_store.ts';
import type { Storage } from './types.ts';
import { openWal } from './wal.ts';
import type { FileWal } from './wal.ts';

export class FileStorage implements Storage {
  readonly dir: string;
  readonly wal: FileWal;
  readonly blocks: FileBlockStore;
  readonly snapshots: FileSnapshotStore;
  /** Bytes of a torn WAL tail cut off at open (0 after a clean shutdown). */
  readonly walTruncatedBytes: number;

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
    this.dir = dir;
    const { wal, truncatedBytes } = openWal(join(dir, 'wal.log'));
    this.wal = wal;
    this.walTruncatedBytes = truncatedBytes;
    try {
      this.blocks = openFileBlockStore(join(dir, 'blocks.log'));
      this.snapshots = openFileSnapshotStore(join(dir, 'snapshots'));
    } catch (error) {
      wal.close();
      throw error;
    }
  }

  close(): void {
    this.wal.close();
    this.blocks.close();
  }
}

/** Opens (or creates) the storage in `dir`. Throws StorageError if a file is damaged. */
export function openStorage(dir: string): FileStorage {
  return new FileStorage(dir);
}
