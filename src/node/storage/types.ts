// The node's storage port: the consensus write-ahead log, the block store and
// the snapshot store. Real implementations live beside this file (files on a
// local disk, see docs/decisions/0002-storage.md); the simulator has in-memory
// ones that lose their unsynced tail on a crash. Both pass
// test/compliance/storage.ts.
//
// Every method is synchronous: the consensus core is a synchronous event
// handler, and a persist effect with `sync: true` is a barrier the shell must
// honour before it performs the next effect anyway. Failures are StorageError
// (errors.ts); after an I/O failure a store refuses further writes.

/**
 * The consensus WAL: an append-only sequence of opaque records (encoded
 * consensus WalRecord), numbered from 0 for the life of the node.
 */
export interface Wal {
  /** Index of the oldest record still held (0 until the first truncation). */
  firstIndex(): number;
  /** Index the next appended record will get. */
  nextIndex(): number;
  /**
   * Appends one record and returns its index. With `sync`, this record and
   * every one before it are durable before the call returns; without, they
   * become durable at the next synced append or sync(), or are lost in a crash
   * (only ever a suffix: what survives is a prefix of what was appended).
   */
  append(record: Uint8Array, sync: boolean): number;
  /** Makes every appended record durable. */
  sync(): void;
  /**
   * Starts making every record appended so far durable without blocking the
   * calling thread, and calls `done` once they are (error null) or once that
   * failed (then the WAL refuses further writes, as after a failed sync()).
   * `done` is never called synchronously, nor after close(). Optional: a
   * store without it is synced with sync().
   */
  syncAsync?(done: (error: Error | null) => void): void;
  /** The held records, oldest first: indices firstIndex() .. nextIndex() − 1. */
  readAll(): Uint8Array[];
  /**
   * Drops every record before `index` (firstIndex() ≤ index ≤ nextIndex()),
   * durably. Call it with the index of a checkpoint record once the block of
   * that height is in the block store: replay starts at the last checkpoint.
   */
  truncateBefore(index: number): void;
  /**
   * Drops the records from `index` (firstIndex() ≤ index ≤ nextIndex()) on,
   * durably: a tail restart finds was never acknowledged (a checkpoint whose
   * block did not reach the disk, restore.ts). Refuses (StorageCorrupt) to
   * drop what an earlier run proved synced. Optional: a store without it
   * loses unsynced records with their block anyway.
   */
  dropFrom?(index: number): void;
  close(): void;
}

/**
 * Committed blocks (encoded with their commit certificate), by height. Heights
 * are contiguous from the first one saved (1 from genesis, or a later height
 * after a node starts from a snapshot).
 */
export interface BlockStore {
  /** Lowest height held, 0 when empty. */
  firstHeight(): number;
  /** Highest height held, 0 when empty. */
  lastHeight(): number;
  /**
   * Saves the block of `height`, durable on return. `height` is lastHeight() + 1
   * (any height ≥ 1 when empty); saving a held height again with the same bytes
   * does nothing (a restart may repeat the last save), with other bytes throws
   * BlockConflict.
   */
  save(height: number, bytes: Uint8Array): void;
  /**
   * Like save(), but may return before the bytes are durable (the file store
   * flushes them in the background); flush() is the barrier. The node uses it
   * so the block's fsync overlaps execution instead of preceding it, and
   * flushes before anything that makes a later height durable.
   */
  saveDeferred?(height: number, bytes: Uint8Array): void;
  /** Makes every deferred save durable. */
  flush?(): void;
  /** The bytes stored for `height`, without reading them; null if not held. */
  sizeOf?(height: number): number | null;
  /** The bytes saved at `height`, or null if not held. */
  load(height: number): Uint8Array | null;
  /**
   * Drops every height below `height` (firstHeight() < height ≤ lastHeight());
   * a no-op at or below firstHeight(). The node prunes so its disk stays
   * bounded; new nodes then start by state sync. The space may be reclaimed
   * later (the file store rewrites once the dropped bytes reach the kept
   * ones), so a restart may hold some dropped heights again: keeping more is
   * always safe, and restart needs nothing below its snapshot.
   */
  pruneBefore?(height: number): void;
  close(): void;
}

export interface Snapshot {
  readonly height: number;
  readonly bytes: Uint8Array;
}

/** One stored snapshot, open for reading in ranges (SnapshotStore.openReader). */
export interface SnapshotReader {
  readonly sizeBytes: number;
  /** `lengthBytes` bytes from `offsetBytes` (the range within sizeBytes). */
  read(offsetBytes: number, lengthBytes: number): Uint8Array;
  close(): void;
}

/** Application snapshots (the state after executing a height), by height. */
export interface SnapshotStore {
  /** Saves (or replaces) the snapshot of `height`, durable on return. */
  save(height: number, bytes: Uint8Array): void;
  load(height: number): Uint8Array | null;
  /**
   * Opens the snapshot of `height` to read it in ranges without loading the
   * rest (state sync serves chunks this way), or null if not held. What it
   * reads stays the bytes saved when it was opened, even if the snapshot is
   * replaced or pruned meanwhile, until close(). Checks no checksum (the
   * file's covers the whole): the caller checks what it reads.
   */
  openReader(height: number): SnapshotReader | null;
  /** The snapshot of the highest height, or null if none. */
  latest(): Snapshot | null;
  /** Heights held, ascending. */
  heights(): number[];
  /** Keeps the `keep` highest heights (keep ≥ 1) and deletes the rest. */
  prune(keep: number): void;
  /** Deletes every snapshot, durably (a state sync's leftovers, before it writes its own). */
  clear(): void;
}

/** One node's storage. Restart = latest snapshot + the blocks after it + the WAL since its checkpoint. */
export interface Storage {
  readonly wal: Wal;
  readonly blocks: BlockStore;
  readonly snapshots: SnapshotStore;
  /**
   * Throws StorageReplaced if the files this storage writes are no longer the
   * ones at its paths: its directory was deleted or replaced under the
   * running node (a backup restored while it ran), and what it signs goes
   * into a WAL no restart reads. The node calls it after each synced WAL
   * record, before the signed message that record precedes is sent.
   * Optional: the simulator's storage has no paths.
   */
  checkInPlace?(): void;
  /**
   * Syncs what is pending and closes every file. syncWal false leaves the
   * WAL's tail as a crash would (the results of a checkpoint's blocks failed
   * to reach the disk: the restart must resume from the checkpoint before).
   */
  close(syncWal?: boolean): void;
}
