// The node's storage port and its file implementation (docs/decisions/0002-storage.md).

export type { BlockStore, Snapshot, SnapshotReader, SnapshotStore, Storage, Wal } from './types.ts';
export { StorageError } from './errors.ts';
export type { StorageErrorCode } from './errors.ts';
export { FileStorage, openStorage } from './storage.ts';
export { recordLogSyncs } from './record_log.ts';
export { FileWal, openWal } from './wal.ts';
export { FileBlockStore, openFileBlockStore } from './block_store.ts';
export { FileSnapshotStore, openFileSnapshotStore, snapshotFileName } from './snapshot_store.ts';
