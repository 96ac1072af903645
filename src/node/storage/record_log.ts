// An append-only file of checksummed, length-prefixed records: the format of
// the WAL and of the block log (docs/decisions/0002-storage.md).
//
//   file   = header record*
//   header = magic(4 ASCII) version(u32) base(u64)           16 bytes, big-endian
//   record = length(u32) payloadCrc(u32) headerCrc(u32) payload
//
// payloadCrc is CRC-32 of the payload; headerCrc is CRC-32 of the first eight
// bytes, so a flipped length is caught before it is trusted. Checksums are
// zlib's CRC-32 (native in Node ≥ 20.15): they guard against torn writes and
// media rot, not against an attacker with access to the disk.
//
// The only damage open() repairs is at the end of the file, where a crash
// mid-append leaves it: an incomplete record, a last record whose payload
// fails its checksum, or a zero-filled tail. It truncates that tail. Damage
// anywhere else (a bad record with bytes after it) is StorageCorrupt naming
// the file and offset: records after it were acknowledged, so guessing past
// it could lose or invent history.

import {
  closeSync,
  existsSync,
  fdatasync,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import { assert } from '../../lib/assert.ts';
import { StorageError } from './errors.ts';

export const FILE_HEADER_BYTES = 16;
export const RECORD_HEADER_BYTES = 12;
const VERSION = 1;
/** Bytes read per call while checking that a damaged tail is all zeros. */
const ZERO_SCAN_CHUNK_BYTES = 64 * 1024;

/** Where a record sits: `offset` of its header; `length` of its payload. */
export interface RecordRef {
  readonly offset: number;
  readonly length: number;
}

export interface RecordLogOptions {
  /** Four ASCII characters naming the kind of file. */
  readonly magic: string;
  readonly recordBytesMax: number;
  /**
   * Check every payload at open (the WAL, which is small and replayed whole),
   * or only headers and the last payload (the block log, which is large;
   * payloads are checked when read).
   */
  readonly verifyPayloads: boolean;
}

export interface OpenedRecordLog {
  readonly log: RecordLog;
  readonly records: RecordRef[];
  /** The number stored in the file header (the WAL's first index, the block log's first height). */
  readonly base: number;
  /** Bytes of a torn tail cut off at open (0 after a clean shutdown). */
  readonly truncatedBytes: number;
}

function fileHeader(magic: string, base: number): Buffer {
  assert(magic.length === 4 && /^[A-Z]{4}$/.test(magic), 'magic is four capitals');
  assert(Number.isSafeInteger(base) && base >= 0, 'base is a safe non-negative integer');
  const header = Buffer.alloc(FILE_HEADER_BYTES);
  header.write(magic, 0, 'latin1');
  header.writeUInt32BE(VERSION, 4);
  header.writeUInt32BE(Math.floor(base / 0x1_0000_0000), 8);
  header.writeUInt32BE(base >>> 0, 12);
  return header;
}

export function encodeRecord(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  out.writeUInt32BE(payload.length, 0);
  out.writeUInt32BE(crc32(payload), 4);
  out.writeUInt32BE(crc32(out.subarray(0, 8)), 8);
  out.set(payload, RECORD_HEADER_BYTES);
  return out;
}

export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function ioFailed(path: string, error: unknown): StorageError {
  const reason = error instanceof Error ? error.message : String(error);
  return new StorageError('StorageIoFailed', path, null, reason);
}

function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) {
    done += writeSync(fd, bytes, done, bytes.length - done, position + done);
  }
}

function readExactly(fd: number, length: number, position: number): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done === length ? out : out.subarray(0, done);
}

/**
 * Writes a new log file holding `header` then `body`, durably, and renames it
 * over `path`: a reader sees the old file or the new one, never a mixture.
 */
function replaceFile(path: string, header: Uint8Array, body: Uint8Array[]): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeAll(fd, header, 0);
    let position = header.length;
    for (const part of body) {
      writeAll(fd, part, position);
      position += part.length;
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDirectory(dirname(path));
}

/**
 * fdatasync calls made by this process's record logs: on the calling thread
 * (foreground: they block it), on libuv's pool with the caller waiting for
 * them (awaited: the thread goes on, the node's next step does not) and on
 * the pool with nobody waiting (background). For metrics and bench:cluster's
 * fsyncs per height.
 */
export const recordLogSyncs = { foreground: 0, awaited: 0, background: 0 };

export class RecordLog {
  readonly path: string;
  private fd: number;
  private sizeBytes: number;
  private failed = false;
  /** Appends so far, and how many of them a finished sync (in the foreground or background) covers. */
  private appendedCount = 0;
  private durableCount = 0;
  /**
   * Bumped whenever the fd is closed: a rewrite reopens the file and usually
   * gets the same fd number back, so the number cannot tell a background
   * sync of the old file (which may fail with EBADF) from one of the new.
   */
  private generation = 0;
  private readonly magic: string;
  private readonly recordBytesMax: number;

  constructor(path: string, fd: number, sizeBytes: number, options: RecordLogOptions) {
    this.path = path;
    this.fd = fd;
    this.sizeBytes = sizeBytes;
    this.magic = options.magic;
    this.recordBytesMax = options.recordBytesMax;
  }

  /** Bytes in the file, header included. */
  size(): number {
    return this.sizeBytes;
  }

  /** Appends one record; returns its ref. With `sync`, fdatasync before returning. */
  append(payload: Uint8Array, sync: boolean): RecordRef {
    this.checkWritable();
    if (payload.length > this.recordBytesMax) {
      throw new StorageError(
        'StorageTooLarge',
        this.path,
        null,
        `record of ${payload.length} bytes is above the limit of ${this.recordBytesMax}`,
      );
    }
    const offset = this.sizeBytes;
    try {
      writeAll(this.fd, encodeRecord(payload), offset);
    } catch (error) {
      this.failed = true;
      throw ioFailed(this.path, error);
    }
    this.sizeBytes += RECORD_HEADER_BYTES + payload.length;
    this.appendedCount++;
    if (sync) this.sync();
    return { offset, length: payload.length };
  }

  sync(): void {
    this.checkWritable();
    recordLogSyncs.foreground++;
    try {
      fdatasyncSync(this.fd);
    } catch (error) {
      // After a failed fsync the kernel may have dropped the dirty pages: what
      // is on disk is unknown, and retrying could report success falsely.
      this.failed = true;
      throw ioFailed(this.path, error);
    }
    this.durableCount = this.appendedCount;
  }

  /**
   * Starts an fdatasync on libuv's thread pool and returns at once, so the
   * flush overlaps with whatever this thread does next. Once it succeeds,
   * every record appended before it started is durable and a later barrier
   * need not sync again (needsSync): the block and results logs' barriers,
   * which precede a vote's WAL sync, then cost nothing on the commit path. A
   * failure marks the log failed, so that barrier throws instead of
   * reporting durability falsely.
   */
  syncInBackground(): void {
    this.startSync('background', () => {});
  }

  /**
   * Like sync(), on libuv's thread pool: `done` once every record appended
   * before the call is durable, or with the error (the log is then failed).
   * Not called at all if the file is closed or rewritten meanwhile (close()
   * and rewrite() make what they keep durable themselves).
   */
  syncAsync(done: (error: Error | null) => void): void {
    this.startSync('awaited', done);
  }

  private startSync(counted: 'awaited' | 'background', done: (error: Error | null) => void): void {
    this.checkWritable();
    recordLogSyncs[counted]++;
    const generation = this.generation;
    const covers = this.appendedCount;
    fdatasync(this.fd, (error) => {
      if (this.generation !== generation) return;
      if (error !== null) {
        this.failed = true;
        done(ioFailed(this.path, error));
        return;
      }
      if (covers > this.durableCount) this.durableCount = covers;
      done(null);
    });
  }

  /** Whether records appended since the last finished sync (foreground or background) may not be durable. */
  get needsSync(): boolean {
    return this.durableCount < this.appendedCount;
  }

  /** The payload of a record, checked against its checksums. */
  read(ref: RecordRef): Uint8Array {
    const bytes = readExactly(this.fd, RECORD_HEADER_BYTES + ref.length, ref.offset);
    const problem = checkRecord(bytes, ref.length);
    if (problem !== null) throw new StorageError('StorageCorrupt', this.path, ref.offset, problem);
    return bytes.subarray(RECORD_HEADER_BYTES);
  }

  /**
   * Rewrites the file with a new base, keeping the bytes from `fromOffset` to
   * the end (whole records), durably. Returns how far the kept records moved
   * towards the start (subtract it from their offsets).
   */
  rewrite(base: number, fromOffset: number): number {
    this.checkWritable();
    assert(fromOffset >= FILE_HEADER_BYTES && fromOffset <= this.sizeBytes, 'rewrite offset');
    const kept = readExactly(this.fd, this.sizeBytes - fromOffset, fromOffset);
    assert(kept.length === this.sizeBytes - fromOffset, 'rewrite read the whole tail');
    try {
      closeSync(this.fd);
      this.fd = -1;
      this.generation++;
      replaceFile(this.path, fileHeader(this.magic, base), [kept]);
      this.fd = openSync(this.path, 'r+');
    } catch (error) {
      this.failed = true;
      throw ioFailed(this.path, error);
    }
    this.sizeBytes = FILE_HEADER_BYTES + kept.length;
    // replaceFile synced the new file whole.
    this.durableCount = this.appendedCount;
    return fromOffset - FILE_HEADER_BYTES;
  }

  close(): void {
    if (this.fd < 0) return;
    if (this.needsSync && !this.failed) {
      try {
        fdatasyncSync(this.fd);
      } catch {
        // Closing anyway: what was not synced is what a crash here would lose.
      }
    }
    closeSync(this.fd);
    this.fd = -1;
    this.generation++;
  }

  private checkWritable(): void {
    if (this.failed) {
      throw new StorageError('StorageIoFailed', this.path, null, 'an earlier write failed');
    }
    assert(this.fd >= 0, `${this.path} is closed`);
  }
}

/** Null if `bytes` (header then payload) is a sound record of `length`, else the reason. */
function checkRecord(bytes: Uint8Array, length: number): string | null {
  if (bytes.length !== RECORD_HEADER_BYTES + length) return 'record is cut short';
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (crc32(view.subarray(0, 8)) !== view.readUInt32BE(8))
    return 'record header fails its checksum';
  if (view.readUInt32BE(0) !== length) return 'record length differs from the index';
  if (crc32(view.subarray(RECORD_HEADER_BYTES)) !== view.readUInt32BE(4)) {
    return 'record payload fails its checksum';
  }
  return null;
}

function isZeroTail(fd: number, from: number, to: number): boolean {
  for (let at = from; at < to; at += ZERO_SCAN_CHUNK_BYTES) {
    const chunk = readExactly(fd, Math.min(ZERO_SCAN_CHUNK_BYTES, to - at), at);
    for (let i = 0; i < chunk.length; i++) if (chunk[i] !== 0) return false;
  }
  return true;
}

interface Scan {
  readonly records: RecordRef[];
  /** Where the sound records end; the rest is a torn tail. */
  readonly end: number;
}

function scan(fd: number, path: string, size: number, options: RecordLogOptions): Scan {
  const records: RecordRef[] = [];
  const corrupt = (offset: number, reason: string): StorageError =>
    new StorageError('StorageCorrupt', path, offset, reason);
  let offset = FILE_HEADER_BYTES;
  while (offset < size) {
    if (size - offset < RECORD_HEADER_BYTES) break;
    const header = Buffer.from(readExactly(fd, RECORD_HEADER_BYTES, offset));
    if (crc32(header.subarray(0, 8)) !== header.readUInt32BE(8)) {
      if (isZeroTail(fd, offset, size)) break;
      throw corrupt(offset, 'record header fails its checksum, and data follows it');
    }
    const length = header.readUInt32BE(0);
    if (length > options.recordBytesMax) {
      throw corrupt(offset, `record length ${length} is above the limit ${options.recordBytesMax}`);
    }
    const end = offset + RECORD_HEADER_BYTES + length;
    if (end > size) break;
    if (options.verifyPayloads || end === size) {
      const payload = readExactly(fd, length, offset + RECORD_HEADER_BYTES);
      if (crc32(payload) !== header.readUInt32BE(4)) {
        if (end === size) break;
        throw corrupt(offset, 'record payload fails its checksum, and records follow it');
      }
    }
    records.push({ offset, length });
    offset = end;
  }
  return { records, end: offset };
}

function readHeader(fd: number, path: string, size: number, magic: string): number {
  const bad = (reason: string): StorageError => new StorageError('StorageCorrupt', path, 0, reason);
  if (size < FILE_HEADER_BYTES) throw bad('file is shorter than its header');
  const header = Buffer.from(readExactly(fd, FILE_HEADER_BYTES, 0));
  if (header.toString('latin1', 0, 4) !== magic) throw bad(`not a ${magic} file`);
  const version = header.readUInt32BE(4);
  if (version !== VERSION) throw bad(`unknown version ${version}`);
  const base = header.readUInt32BE(8) * 0x1_0000_0000 + header.readUInt32BE(12);
  if (!Number.isSafeInteger(base)) throw bad('base is not a safe integer');
  return base;
}

/**
 * Opens (or creates, with `base`) a record log, cuts a torn tail off durably,
 * and returns the sound records. Throws StorageCorrupt for damage elsewhere.
 */
export function openRecordLog(path: string, options: RecordLogOptions, base = 0): OpenedRecordLog {
  if (!existsSync(path)) replaceFile(path, fileHeader(options.magic, base), []);
  const fd = openSync(path, 'r+');
  try {
    const size = fstatSync(fd).size;
    const fileBase = readHeader(fd, path, size, options.magic);
    const { records, end } = scan(fd, path, size, options);
    if (end < size) {
      ftruncateSync(fd, end);
      fsyncSync(fd);
    }
    const log = new RecordLog(path, fd, end, options);
    return { log, records, base: fileBase, truncatedBytes: size - end };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}
