// The consensus write-ahead log on a plain append-only file (record_log.ts).
// One file, `wal.log`; truncation rewrites it from a checkpoint (normally just
// the checkpoint record itself, so the copy is small) and renames it into place.
// A torn tail is what lies past the durable bound its sync markers prove
// (record_log.ts): a synced record, hence a signed vote, is never cut.

import { assert } from '../../lib/assert.ts';
import { WAL_RECORD_BYTES_MAX } from '../../lib/limits.ts';
import type { RecordLog, RecordRef } from './record_log.ts';
import { openRecordLog } from './record_log.ts';
import type { Wal } from './types.ts';

export interface OpenedWal {
  readonly wal: FileWal;
  /** Bytes of a torn tail cut off at open: worth a log line, not an error. */
  readonly truncatedBytes: number;
}

export class FileWal implements Wal {
  private readonly log: RecordLog;
  private base: number;
  private refs: RecordRef[];

  constructor(log: RecordLog, base: number, refs: RecordRef[]) {
    this.log = log;
    this.base = base;
    this.refs = refs;
  }

  firstIndex(): number {
    return this.base;
  }

  nextIndex(): number {
    return this.base + this.refs.length;
  }

  append(record: Uint8Array, sync: boolean): number {
    this.refs.push(this.log.append(record, sync));
    return this.nextIndex() - 1;
  }

  sync(): void {
    this.log.sync();
  }

  syncAsync(done: (error: Error | null) => void): void {
    this.log.syncAsync(done);
  }

  readAll(): Uint8Array[] {
    return this.refs.map((ref) => this.log.read(ref));
  }

  truncateBefore(index: number): void {
    assert(
      Number.isSafeInteger(index) && index >= this.base && index <= this.nextIndex(),
      `truncateBefore(${index}) outside [${this.base}, ${this.nextIndex()}]`,
    );
    if (index === this.base) return;
    const kept = this.refs.slice(index - this.base);
    const from = kept.length === 0 ? this.log.size() : kept[0]!.offset;
    const shift = this.log.rewrite(index, from);
    this.refs = kept.map((ref) => ({ offset: ref.offset - shift, length: ref.length }));
    this.base = index;
  }

  dropFrom(index: number): void {
    assert(
      Number.isSafeInteger(index) && index >= this.base && index <= this.nextIndex(),
      `dropFrom(${index}) outside [${this.base}, ${this.nextIndex()}]`,
    );
    if (index === this.nextIndex()) return;
    this.log.truncateTo(this.refs[index - this.base]!.offset);
    this.refs = this.refs.slice(0, index - this.base);
  }

  /** StorageReplaced unless the file this WAL appends to is still the one at its path (RecordLog.checkInPlace). */
  checkInPlace(): void {
    this.log.checkInPlace();
  }

  /** Syncs what is pending and closes; throws StorageIoFailed if a sync failed unreported. */
  close(): void {
    const error = this.log.close();
    if (error !== null) throw error;
  }

  /**
   * Closes without syncing, leaving the file as a crash would (FileStorage.close
   * after the block log failed): nothing pending is proven durable.
   */
  closeUnsynced(): void {
    this.log.close(false);
  }
}

/** Opens (or creates) the WAL at `path`, cutting off a torn tail; StorageCorrupt for damage elsewhere. */
export function openWal(path: string): OpenedWal {
  const opened = openRecordLog(path, {
    magic: 'ZWAL',
    recordBytesMax: WAL_RECORD_BYTES_MAX,
    verifyPayloads: true,
  });
  return {
    wal: new FileWal(opened.log, opened.base, opened.records),
    truncatedBytes: opened.truncatedBytes,
  };
}
