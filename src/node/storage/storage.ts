// One node's storage in one directory:
//   <dir>/wal.log        the consensus WAL (wal.ts)
//   <dir>/blocks.log     committed blocks with their certificates (block_store.ts)
//   <dir>/snapshots/     application snapshots (snapshot_store.ts)
//   <dir>/LOCK           the pid of the process that has it open (lock.ts)

import { join } from 'node:path';
import { openFileBlockStore } from './block_store.ts';
import type { FileBlockStore } from './block_store.ts';
import { openFileSnapshotStore } from './snapshot_store.ts';
import type { FileSnapshotStore } from './snapshot_store.ts';
import type { DirLock } from './lock.ts';
import { lockDirectory } from './lock.ts';
import { makeDirectoryDurable } from './record_log.ts';
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
  private readonly lock: DirLock;

  constructor(dir: string) {
    // Synced into its parent: a lost data directory would take a signed vote's record with it.
    makeDirectoryDurable(dir);
    this.dir = dir;
    // Before any file is opened: a second node must not even repair a torn tail.
    this.lock = lockDirectory(dir);
    let blocks: FileBlockStore | null = null;
    let wal: FileWal | null = null;
    try {
      // The block log before the WAL: upgrading an older block log copies it
      // whole and is what a full disk stops, best before the WAL is touched.
      // A start that fails after the WAL's upgrade (the results log's, a port
      // in use) is harmless too: the upgrade's marker is a copied one
      // (record_log.ts), so the next start can still drop an unbacked
      // checkpoint (restore.ts) that the older file never proved acknowledged.
      blocks = openFileBlockStore(join(dir, 'blocks.log'));
      this.blocks = blocks;
      const opened = openWal(join(dir, 'wal.log'));
      wal = opened.wal;
      this.wal = wal;
      this.walTruncatedBytes = opened.truncatedBytes;
      this.snapshots = openFileSnapshotStore(join(dir, 'snapshots'));
    } catch (error) {
      // Nothing was appended: closing them only closes their files.
      blocks?.close();
      wal?.close();
      this.lock.release();
      throw error;
    }
  }

  /**
   * Syncs what is pending and closes every file (the WAL without its final
   * sync when syncWal is false: Storage.close). Throws the first failure
   * (StorageIoFailed) once everything is closed and the lock released.
   */
  close(syncWal = true): void {
    // Blocks first: closing syncs what is pending, and a durable WAL
    // checkpoint promises a restart that its block is on disk.
    let failure: unknown = null;
    try {
      this.blocks.close();
    } catch (error) {
      failure = error;
    }
    try {
      // If the blocks' sync failed, a WAL checkpoint may name a block that is
      // not on disk: syncing the WAL now would prove that checkpoint durable
      // and make the restart refuse (StorageCorrupt). Left as a crash leaves
      // it, the restart resumes from the checkpoint before (restore.ts).
      if (failure === null && syncWal) this.wal.close();
      else this.wal.closeUnsynced();
    } catch (error) {
      failure = error;
    }
    this.lock.release();
    if (failure !== null) throw failure;
  }
}

/** Opens (or creates) the storage in `dir`. Throws StorageError if a file is damaged. */
export function openStorage(dir: string): FileStorage {
  return new FileStorage(dir);
}
