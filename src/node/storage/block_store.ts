// The block store on a plain append-only file (record_log.ts), chosen by
// measurement over LMDB and SQLite (docs/decisions/0002-storage.md). Record i
// holds the block of height base + i, where base (the first height) sits in
// the file header. The index of offsets is rebuilt at open from the record
// headers alone; a block's payload checksum is checked when it is read.
//
// Pruning drops heights from what the store serves at once, but rewrites the
// file (copying the kept tail) only once the dead prefix is at least as large
// as the kept part: each kept byte is then copied about once over its life,
// instead of at every snapshot interval. Until then, and after a restart
// before it, the file still holds the dropped heights (at most about as many
// bytes again as are kept); a restart serves them again until the next prune.

import { assert } from '../../lib/assert.ts';
import { bytesEqual } from '../../lib/bytes.ts';
import { STORED_BLOCK_BYTES_MAX } from '../../lib/limits.ts';
import { StorageError } from './errors.ts';
import type { RecordLog, RecordRef } from './record_log.ts';
import { FILE_HEADER_BYTES, openRecordLog } from './record_log.ts';
import type { BlockStore } from './types.ts';

export class FileBlockStore implements BlockStore {
  private readonly log: RecordLog;
  /** Height of refs[0]; meaningful only when refs is not empty. */
  private base: number;
  private refs: RecordRef[];

  constructor(log: RecordLog, base: number, refs: RecordRef[]) {
    this.log = log;
    this.base = base;
    this.refs = refs;
  }

  firstHeight(): number {
    return this.refs.length === 0 ? 0 : this.base;
  }

  lastHeight(): number {
    return this.refs.length === 0 ? 0 : this.base + this.refs.length - 1;
  }

  save(height: number, bytes: Uint8Array): void {
    this.store(height, bytes, true);
  }

  saveDeferred(height: number, bytes: Uint8Array): void {
    this.store(height, bytes, false);
  }

  flush(): void {
    if (this.log.needsSync) this.log.sync();
  }

  private store(height: number, bytes: Uint8Array, durable: boolean): void {
    assert(Number.isSafeInteger(height) && height >= 1, `block height ${height}`);
    if (this.refs.length > 0 && height <= this.lastHeight()) {
      if (height < this.base) {
        throw new StorageError('BlockConflict', this.log.path, null, `height ${height} is pruned`);
      }
      if (!bytesEqual(this.load(height)!, bytes)) {
        throw new StorageError(
          'BlockConflict',
          this.log.path,
          null,
          `height ${height} is already saved with other bytes`,
        );
      }
      return;
    }
    if (this.refs.length === 0) {
      // The first block fixes the base; the file holds no record yet, so the rewrite is its header.
      if (height !== this.base) this.log.rewrite(height, FILE_HEADER_BYTES);
      this.base = height;
    } else {
      assert(height === this.lastHeight() + 1, `block ${height} after ${this.lastHeight()}`);
    }
    this.refs.push(this.log.append(bytes, durable));
    if (!durable) this.log.syncInBackground();
  }

  pruneBefore(height: number): void {
    if (this.refs.length === 0 || height <= this.base) return;
    assert(
      Number.isSafeInteger(height) && height <= this.lastHeight(),
      `pruneBefore(${height}) keeps no block (last ${this.lastHeight()})`,
    );
    const kept = this.refs.slice(height - this.base);
    this.refs = kept;
    this.base = height;
    const from = kept[0]!.offset;
    if (from - FILE_HEADER_BYTES < this.log.size() - from) return;
    // The rewrite copies the kept tail: every deferred save must be on disk first.
    this.flush();
    const shift = this.log.rewrite(height, from);
    this.refs = kept.map((ref) => ({ offset: ref.offset - shift, length: ref.length }));
  }

  load(height: number): Uint8Array | null {
    if (this.refs.length === 0 || !Number.isSafeInteger(height)) return null;
    const ref = this.refs[height - this.base];
    return ref === undefined ? null : this.log.read(ref);
  }

  sizeOf(height: number): number | null {
    if (this.refs.length === 0 || !Number.isSafeInteger(height)) return null;
    return this.refs[height - this.base]?.length ?? null;
  }

  /**
   * Whether a write or sync of the block log failed while it ran (reported
   * then, or not yet): blocks saved since its last finished sync may not be
   * on disk.
   */
  get failed(): boolean {
    return this.log.failedEarlier;
  }

  /** Syncs what is pending and closes; throws StorageIoFailed if a sync (a deferred save's) failed unreported. */
  close(): void {
    const error = this.log.close();
    if (error !== null) throw error;
  }

  /** Closes without syncing or writing anything more (FileStorage.close once its files were replaced). */
  closeUnsynced(): void {
    this.log.close(false);
  }
}

/** Opens (or creates) the block log at `path`. */
export function openFileBlockStore(path: string): FileBlockStore {
  const opened = openRecordLog(path, {
    magic: 'ZBLK',
    recordBytesMax: STORED_BLOCK_BYTES_MAX,
    verifyPayloads: false,
  });
  return new FileBlockStore(opened.log, opened.base, opened.records);
}
