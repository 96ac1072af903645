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
  | 'StorageLocked';

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
