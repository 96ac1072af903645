// The storage layer's typed errors. A node that meets one of these refuses to
// start (or halts): a damaged log is an operator's decision, never a guess.

import { ZommaError } from '../../lib/errors.ts';

export type StorageErrorCode =
  /** A file's bytes fail their checksum, or are not a file of ours, somewhere other than a torn tail. */
  | 'StorageCorrupt'
  /** A write or fsync failed: what reached the disk is unknown, so the store refuses further writes. */
  | 'StorageIoFailed'
  /** A height was saved twice with different bytes: a committed block is final. */
  | 'BlockConflict'
  /** Too large for the store (see the storage limits in src/lib/limits.ts). */
  | 'StorageTooLarge'
  /** Another live process holds the data directory's lock (lock.ts): a second node on one home. */
  | 'StorageLocked'
  /**
   * The data directory's lock holds no pid (lock.ts): nothing tells whether
   * a live process holds it, so it is not taken over.
   */
  | 'StorageLockUnreadable'
  /**
   * A file the running node writes (its WAL, its lock) is no longer the file
   * at its path: the data directory was deleted or replaced under it (a
   * backup restored while it ran). The node must stop before it signs again.
   */
  | 'StorageReplaced';

export class StorageError extends ZommaError<StorageErrorCode> {
  /** The file concerned. */
  readonly path: string;
  /** Byte offset in the file, when the error concerns a place in it. */
  readonly offset: number | null;
  constructor(code: StorageErrorCode, path: string, offset: number | null, reason: string) {
    super(code, `${path}${offset === null ? '' : ` at offset ${offset}`}: ${reason}`);
    this.path = path;
    this.offset = offset;
  }
}

/**
 * StorageReplaced for `path`, where `what` says what became of it. The node
 * that meets it signed into a file no longer at its path: those votes are in
 * no WAL a restart would read.
 */
export function replacedError(path: string, what: string): StorageError {
  return new StorageError(
    'StorageReplaced',
    path,
    null,
    `${what}: the data directory was deleted or replaced while this node ran (a backup restored into a running node?). ` +
      'The node stops before anything more it signs leaves it. Do not start it on this data as it is: ' +
      'the votes it signed went to a WAL that may no longer be at its path, and a node started on an ' +
      'older WAL may sign a vote that conflicts with one it sent (a double-sign). ' +
      'Follow docs/operations.md, "Backups": it must sign nothing (run it as a full node) until it has executed the height after the one in its halt file',
  );
}

/** A failed system call on `path` (a full disk, a permission, a bad sector) as StorageIoFailed. */
export function ioFailed(path: string, error: unknown): StorageError {
  const reason = error instanceof Error ? error.message : String(error);
  return new StorageError('StorageIoFailed', path, null, reason);
}
