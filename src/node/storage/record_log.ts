// An append-only file of checksummed, length-prefixed records: the format of
// the WAL, the block log and the results log (docs/decisions/0002-storage.md).
//
//   file   = header (record | marker)*
//   header = magic(4 ASCII) version(u32) base(u64) salt(16) headerCrc(u32)   36 bytes
//   record = length(u32) payloadCrc(u32) headerCrc(u32) payload
//   marker = (0x80000000 | 24)(u32) payloadCrc(u32) headerCrc(u32) distance(u64) mac(16)
//            the distance's top bit is the `copied` flag (below)
//
// Big-endian. The file header's checksum covers the 32 bytes before it, so rot
// in `base` or the salt is StorageCorrupt. payloadCrc is CRC-32 of the
// payload; headerCrc is CRC-32 of the first eight bytes, so a flipped length
// is caught before it is trusted. Checksums are zlib's CRC-32 (native in Node
// ≥ 20.15): they guard against torn writes and media rot, not against an
// attacker with access to the disk.
//
// The durable bound. Records appended after the last fdatasync reach the disk
// in any order (page-cache writeback), so a power cut can leave a damaged
// record followed by intact later ones, all of them unsynced and none ever
// acknowledged. Each sync therefore first appends a marker naming, as a
// distance back from the marker itself, where the last *finished* sync ended:
// an intact marker proves every byte before `offset − distance` was durable
// before the marker was written (whether or not its own sync finished). At
// open the highest such proof is the durable bound. The first damaged record
// (a header or payload failing its checksum, a record cut short, a marker
// failing its MAC) at or after the bound starts a torn tail, cut off with
// everything after it; damage before the bound is StorageCorrupt naming the
// file and offset, since those bytes were synced and may have been
// acknowledged. Intact markers after a damaged record still count, so a synced
// record is never cut: under the crash model (synced bytes stay intact) the
// first damage lies beyond the last finished sync. A distance, not an absolute
// offset, survives rewrite(), which drops a prefix; a bound that falls into
// the dropped prefix is the header, and rewrite() ends the new (fully synced)
// file with a marker naming its whole length.
//
// Two bounds. The durable bound says where damage is refused. A restart may
// also drop a tail that no running node acknowledged (truncateTo: an unbacked
// WAL checkpoint, restore.ts), and must never drop what one may have: that
// floor is the acknowledged bound, the highest proof of a marker written by a
// sync (or a rewrite, which syncs what it keeps) of a run that appended to
// the file. A marker with the `copied` bit is written instead where the bytes
// were made durable by a copy or a cut that acknowledges nothing (the upgrade
// of an older file, truncateTo): it raises the durable bound only, so damage
// before it is refused while an unbacked tail before it can still be dropped.
// A sync names the bytes found at open too (fsynced by open), but only once
// the run appends: by then restore.ts has had its chance to drop them.
//
// Markers are authenticated. Past a damaged record header the records cannot
// be walked, so markers there are found by their bytes
// (boundFromMarkersAfter), and a record's payload holds bytes a client chose
// (a block's transactions, a logged WAL input): CRC-32s anyone can compute
// would let a client plant a marker that raises the bound, turning a torn tail
// after a power cut into StorageCorrupt (manual repair of every validator that
// crashed). So `mac` is HMAC-SHA256 (truncated to 16 bytes) of the distance
// under the file's salt, 16 random bytes made when the file is created, kept
// in its header and never sent anywhere: a client can neither read it nor test
// guesses. The MAC covers the distance only (with its copied bit; it is
// position-independent), so
// rewrite() keeps the salt and the kept records' markers stay valid. A walked
// marker failing its MAC is damage like any other.
//
// Syncs and descriptors. Linux reports a write-back error once per open file
// description (errseq_t): of two fsyncs in flight on one descriptor, only the
// one that checks first sees the error and the other returns success, so a
// caller could sign or acknowledge records whose write-back failed. No two
// syncs of a log are therefore ever in flight on one descriptor. Each log
// opens the file twice, after its last sync at open (and again wherever the
// file is replaced: rewrite()): the primary descriptor takes every write,
// read and cut and the async syncs (syncAsync, syncInBackground), at most one
// in flight; requests made while one runs wait together for one more sync
// started when it finishes (a group commit), each called back once a sync
// started after it asked has finished, with that sync's failure if it
// failed. The second descriptor takes the syncs made on this thread (sync(),
// truncateTo(), close()), which may run while an async one is in flight. An
// error is recorded for every open description of the file, so both see any
// write-back failure after the file was opened. Once the log is failed, an
// async sync that returns success reports the failure instead (the error may
// have been told to the other descriptor only, for pages this sync covered).
// A descriptor with an async sync in flight is closed by that sync's
// callback, not under it: a file opened meanwhile would usually get the same
// number and the sync would run on it.
//
// Older files. Version 1 (no markers) and version 2 (markers without a MAC,
// 16-byte header; development builds only, never released) are read with the
// end-only rule, no marker of theirs trusted: only damage at the very end (an
// incomplete record, a last record whose payload fails its checksum, or a
// zero-filled tail) is a torn tail, anything else is StorageCorrupt. open()
// then writes a version 3 file with a fresh salt holding their sound records
// and a copied marker naming all of them (so damage among them stays refused,
// as the end-only rule refused it, and the acknowledged bound stays the
// header: the old file proved nothing), syncs it and renames it over the old one
// (replaceFileWith): a crash leaves the old file, read and upgraded again, or
// the new one. The header grew, so an in-place flip is no longer possible.
// Builds before this one refuse a version 3 file ("unknown version 3").

import {
  closeSync,
  existsSync,
  fdatasync,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { createHmac, randomBytes } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { crc32 } from 'node:zlib';
import { assert } from '../../lib/assert.ts';
import { StorageError, ioFailed, replacedError } from './errors.ts';

/** The header of a version 3 file (every file this build writes). */
export const FILE_HEADER_BYTES = 36;
/** The header of a version 1 or 2 file: magic, version, base. */
const OLD_FILE_HEADER_BYTES = 16;
export const RECORD_HEADER_BYTES = 12;
const VERSION = 3;
/** Older formats, read with the end-only torn-tail rule, then upgraded (see the header of this file). */
const OLD_VERSIONS: readonly number[] = [1, 2];
/** The random per-file secret keying the markers' authentication. */
const SALT_BYTES = 16;
/** Where the header checksum sits: it covers every byte before it. */
const HEADER_CRC_AT = FILE_HEADER_BYTES - 4;
/** Set in a record's length word for a sync marker, whose payload is a u64 distance and its MAC. */
const MARKER_FLAG = 0x8000_0000;
/** The truncated HMAC-SHA256 a marker carries. */
const MARKER_MAC_BYTES = 16;
const MARKER_PAYLOAD_BYTES = 8 + MARKER_MAC_BYTES;
const MARKER_BYTES = RECORD_HEADER_BYTES + MARKER_PAYLOAD_BYTES;
/**
 * Set in the top byte of a marker's distance: the bytes it names were made
 * durable by a copy or a cut, not acknowledged by a sync (the header of this file).
 */
const COPIED_FLAG = 0x80;
/** A version 2 marker's payload (a bare distance): skipped when such a file is read. */
const OLD_MARKER_PAYLOAD_BYTES = 8;
/** Domain separation for the markers' MAC. */
const MARKER_MAC_CONTEXT = 'zomma record log sync marker v3';
/** Bytes read per call while checking a damaged tail (all zeros? markers in it?). */
const ZERO_SCAN_CHUNK_BYTES = 64 * 1024;
/** Bytes copied per call while upgrading an older file into a new one. */
const UPGRADE_COPY_CHUNK_BYTES = 1024 * 1024;

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

function writeU64(out: Buffer, value: number, at: number): void {
  out.writeUInt32BE(Math.floor(value / 0x1_0000_0000), at);
  out.writeUInt32BE(value >>> 0, at + 4);
}

function readU64(bytes: Buffer, at: number): number {
  return bytes.readUInt32BE(at) * 0x1_0000_0000 + bytes.readUInt32BE(at + 4);
}

function fileHeader(magic: string, base: number, salt: Uint8Array): Buffer {
  assert(magic.length === 4 && /^[A-Z]{4}$/.test(magic), 'magic is four capitals');
  assert(Number.isSafeInteger(base) && base >= 0, 'base is a safe non-negative integer');
  assert(salt.length === SALT_BYTES, 'salt length');
  const header = Buffer.alloc(FILE_HEADER_BYTES);
  header.write(magic, 0, 'latin1');
  header.writeUInt32BE(VERSION, 4);
  writeU64(header, base, 8);
  header.set(salt, 16);
  header.writeUInt32BE(crc32(header.subarray(0, HEADER_CRC_AT)), HEADER_CRC_AT);
  return header;
}

/** The MAC of a marker naming `distance` (its first eight payload bytes), keyed by the file's salt. */
function markerMac(salt: Uint8Array, distance: Uint8Array): Buffer {
  return createHmac('sha256', salt)
    .update(MARKER_MAC_CONTEXT)
    .update(distance)
    .digest()
    .subarray(0, MARKER_MAC_BYTES);
}

interface MarkerClaim {
  readonly distance: number;
  /** Written by a copy or a cut: proves the bytes durable, not acknowledged. */
  readonly copied: boolean;
}

/** What a marker's payload names if its MAC is the salt's, else null. */
function markerClaim(salt: Uint8Array, payload: Buffer): MarkerClaim | null {
  const distance = payload.subarray(0, 8);
  if (!markerMac(salt, distance).equals(payload.subarray(8, MARKER_PAYLOAD_BYTES))) return null;
  const copied = (payload[0]! & COPIED_FLAG) !== 0;
  const bytes = Buffer.from(distance);
  bytes[0]! &= ~COPIED_FLAG;
  return { distance: readU64(bytes, 0), copied };
}

export function encodeRecord(payload: Uint8Array): Buffer {
  return encodeFramed(payload.length, payload);
}

/**
 * A sync marker at some offset: every byte before `offset − distance` was
 * durable when it was written; `copied` if a copy or a cut made them so
 * rather than a sync of the run that appended them.
 */
function encodeMarker(salt: Uint8Array, distance: number, copied = false): Buffer {
  assert(Number.isSafeInteger(distance) && distance >= 0, 'marker distance');
  const payload = Buffer.alloc(MARKER_PAYLOAD_BYTES);
  writeU64(payload, distance, 0);
  if (copied) payload[0]! |= COPIED_FLAG;
  payload.set(markerMac(salt, payload.subarray(0, 8)), 8);
  return encodeFramed(MARKER_FLAG | MARKER_PAYLOAD_BYTES, payload);
}

function encodeFramed(lengthWord: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  out.writeUInt32BE(lengthWord >>> 0, 0);
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

/**
 * Creates `dir` and its missing parents, each entry synced, and syncs the
 * entry of `dir` in its parent even if it was there: a directory's entry
 * lives in its parent, and until that is synced a power cut can lose the
 * directory with every file under it, synced or not (a data directory made
 * by `zomma init` just before the start, a new snapshot directory). With
 * `ancestors`, the entry of every directory above it too, up to the root:
 * `zomma init` makes the home with its missing parents (`--home
 * nodes/v0`), and losing any of them loses the data directory. The
 * directories are those the path names once links are followed, where the
 * entries are.
 */
export function makeDirectoryDurable(dir: string, ancestors = false): void {
  let target: string;
  let first: string | null;
  try {
    const made = mkdirSync(resolve(dir), { recursive: true });
    target = realpathSync(dir);
    first = made === undefined ? null : realpathSync(made);
  } catch (error) {
    throw ioFailed(resolve(dir), error);
  }
  // Whether `at` was made by this call: its entry must reach the disk.
  let ours = first !== null;
  for (let at = target; dirname(at) !== at; at = dirname(at)) {
    const parent = dirname(at);
    try {
      fsyncDirectory(parent);
    } catch (error) {
      // A directory that was already there needs its parent only read and
      // synced, which a parent we may not read (EACCES, EPERM) or a
      // filesystem whose directories take no fsync (EINVAL, EROFS) refuses:
      // its entry was made durable, if ever, by whoever made it, and a node
      // that started there before must still start.
      const code = (error as NodeJS.ErrnoException).code;
      if (ours || code === undefined || !PARENT_SYNC_SKIPPED.has(code)) {
        throw ioFailed(parent, error);
      }
      if (!ancestors) return;
    }
    if (at === first) ours = false;
    if (!ours && !ancestors) return;
  }
}

/** Errors of syncing an existing directory's parent that do not stop the start (makeDirectoryDurable). */
const PARENT_SYNC_SKIPPED = new Set(['EACCES', 'EPERM', 'EINVAL', 'EROFS']);

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
  replaceFileWith(path, (fd) => {
    writeAll(fd, header, 0);
    let position = header.length;
    for (const part of body) {
      writeAll(fd, part, position);
      position += part.length;
    }
  });
}

/**
 * Like replaceFile, with the new file's bytes written by `fill`. If writing
 * it fails (a full disk), the temporary file is removed before the error is
 * thrown: left behind, a partial copy of a large log would keep holding the
 * space that ran out.
 */
function replaceFileWith(path: string, fill: (fd: number) => void): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    try {
      fill(fd);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
  fsyncDirectory(dirname(path));
}

/** What a log that failed earlier reports to a caller asking it to write or sync. */
function earlierFailure(path: string): StorageError {
  return new StorageError('StorageIoFailed', path, null, 'an earlier write failed');
}

/** Closes a descriptor nobody uses any more; its data was made durable elsewhere or is not wanted. */
function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Nothing is waiting on it: the file was closed or replaced by the log already.
  }
}

/** A failed system call (a full disk, a permission) as StorageIoFailed; other errors as they are. */
function asStorageError(path: string, error: unknown): unknown {
  if (error instanceof StorageError) return error;
  const syscall = (error as NodeJS.ErrnoException | null)?.syscall;
  return typeof syscall === 'string' ? ioFailed(path, error) : error;
}

/**
 * fdatasync calls made by this process's record logs: on the calling thread
 * (foreground: they block it), on libuv's pool with the caller waiting for
 * them (awaited: the thread goes on, the node's next step does not) and on
 * the pool with nobody waiting (background). Async requests that share one
 * call (made while another ran) count once, as awaited if any caller waits.
 * For metrics and bench:cluster's fsyncs per height.
 */
export const recordLogSyncs = { foreground: 0, awaited: 0, background: 0 };

/** A caller of syncAsync or syncInBackground, waiting for a sync that started after it asked. */
interface SyncRequest {
  /** Whether a caller waits for it (counted as awaited) or nobody does (background). */
  readonly awaited: boolean;
  readonly done: (error: Error | null) => void;
}

/** An fdatasync running on libuv's pool on a log's primary descriptor. */
interface SyncInFlight {
  readonly fd: number;
  /**
   * Set when the log closes or rewrites the file meanwhile: the descriptor is
   * closed by the sync's callback rather than under it (a new file would
   * usually get the same number, and the sync would run on it), and nobody
   * is called back (close() and rewrite() make what they keep durable).
   */
  retired: boolean;
}

export class RecordLog {
  readonly path: string;
  /** The primary descriptor: every write, read and cut, and the async syncs, one in flight at a time. */
  private fd: number;
  /**
   * A second descriptor of the same file, opened and closed with `fd`, for
   * the syncs made on this thread (sync(), truncateTo(), close()), so that no
   * two syncs are ever in flight on one descriptor (the header of this file).
   */
  private syncFd: number;
  /** The async sync running on `fd`, if any. */
  private inFlight: SyncInFlight | null = null;
  /** Async requests made while it runs: served together by one sync started once it finishes. */
  private waiting: SyncRequest[] = [];
  private sizeBytes: number;
  private failed = false;
  /** A background sync's failure that no caller has heard of yet (close() reports it). */
  private unreported: StorageError | null = null;
  /** Appends so far, and how many of them a finished sync (in the foreground or background) covers. */
  private appendedCount = 0;
  private durableCount = 0;
  /** Bytes a finished sync covers (markers included). */
  private durableBytes: number;
  /** Appends the last marker's bound covers, so close() knows whether to leave one. */
  private markedCount: number;
  /**
   * The acknowledged bound proven at open: bytes before it were synced by a
   * run that appended to the file, which may have acted on them.
   */
  readonly ackedAtOpen: number;
  /**
   * Bumped by truncateTo(): a sync that started before a cut covered bytes the
   * file no longer holds, and those offsets may since hold new, unsynced
   * records, so its finishing proves nothing more (the cut synced the rest).
   */
  private cuts = 0;
  private readonly magic: string;
  private readonly recordBytesMax: number;
  /** The file's secret (its header): keys the markers' MAC, kept across rewrite(). */
  private readonly salt: Uint8Array;

  /**
   * `fd` and `syncFd` are two descriptors of the file at `path`, both opened
   * after its last sync; `sizeBytes` must be durable (open syncs the file);
   * `ackedAtOpen` is the bound its markers prove.
   */
  constructor(
    path: string,
    fd: number,
    syncFd: number,
    sizeBytes: number,
    options: RecordLogOptions,
    salt: Uint8Array,
    ackedAtOpen = sizeBytes,
  ) {
    this.path = path;
    this.fd = fd;
    this.syncFd = syncFd;
    this.salt = salt;
    this.sizeBytes = sizeBytes;
    this.durableBytes = sizeBytes;
    this.ackedAtOpen = ackedAtOpen;
    // Records found at open are marked durable only once this run syncs
    // something: a run that appends nothing (a failed start, a tool) must not
    // prove a tail that nobody acknowledged (restore.ts may drop it).
    this.markedCount = 0;
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
    this.markBeforeSync();
    recordLogSyncs.foreground++;
    const covers = this.sizeBytes;
    try {
      fdatasyncSync(this.syncFd);
    } catch (error) {
      // After a failed fsync the kernel may have dropped the dirty pages: what
      // is on disk is unknown, and retrying could report success falsely.
      this.failed = true;
      throw ioFailed(this.path, error);
    }
    this.durableCount = this.appendedCount;
    this.durableBytes = covers;
  }

  /**
   * Before a sync that has records to cover, appends a marker naming where
   * the last finished sync ended, so that open() can tell damage in what was
   * durable from a torn unsynced tail (see the header of this file).
   */
  private markBeforeSync(): void {
    if (!this.needsSync) return;
    this.writeMarker();
  }

  private writeMarker(): void {
    const offset = this.sizeBytes;
    try {
      writeAll(this.fd, encodeMarker(this.salt, offset - this.durableBytes), offset);
    } catch (error) {
      this.failed = true;
      throw ioFailed(this.path, error);
    }
    this.sizeBytes += MARKER_BYTES;
    this.markedCount = this.durableCount;
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
    this.requestSync({ awaited: false, done: () => {} });
  }

  /**
   * Like sync(), on libuv's thread pool: `done` once every record appended
   * before the call is durable, or with the error (the log is then failed).
   * While another async sync runs the request waits for the next one
   * (requestSync). Not called at all if the file is closed or rewritten meanwhile (close()
   * and rewrite() make what they keep durable themselves).
   */
  syncAsync(done: (error: Error | null) => void): void {
    this.requestSync({ awaited: true, done });
  }

  /**
   * One async sync runs at a time on the primary descriptor: of two in
   * flight on one descriptor the kernel reports a write-back error to
   * whichever checks first, and the other returns success. A request made
   * while one runs waits, with every other made meanwhile, for one sync
   * started when it finishes (a group commit).
   */
  private requestSync(request: SyncRequest): void {
    this.checkWritable();
    if (this.inFlight !== null) {
      this.waiting.push(request);
      return;
    }
    this.startSync([request]);
  }

  /** Starts one fdatasync on the primary descriptor for `group`; throws if its marker cannot be written. */
  private startSync(group: SyncRequest[]): void {
    this.markBeforeSync();
    recordLogSyncs[group.some((r) => r.awaited) ? 'awaited' : 'background']++;
    const flight: SyncInFlight = { fd: this.fd, retired: false };
    this.inFlight = flight;
    const cuts = this.cuts;
    const covers = this.appendedCount;
    const coversBytes = this.sizeBytes;
    fdatasync(flight.fd, (error) => {
      if (flight.retired) {
        closeQuietly(flight.fd);
        return;
      }
      this.inFlight = null;
      let failure: StorageError | null = null;
      if (error !== null) {
        this.failed = true;
        failure = ioFailed(this.path, error);
        if (!group.some((r) => r.awaited)) this.unreported = failure;
      } else if (this.failed) {
        // Another sync (one of this thread's) failed meanwhile: the kernel may
        // have dropped pages this one covered, reporting the error to it alone.
        failure = earlierFailure(this.path);
      } else if (this.cuts === cuts) {
        // A cut meanwhile synced what it kept; these offsets may hold new bytes since.
        if (covers > this.durableCount) this.durableCount = covers;
        if (coversBytes > this.durableBytes) this.durableBytes = coversBytes;
      }
      // The next group starts before anyone is called back, so that a request
      // made from a callback waits for it rather than running beside it.
      const next = this.waiting;
      this.waiting = [];
      const settled = next.length === 0 ? null : this.startWaiting(next);
      for (const request of group) request.done(failure);
      if (settled !== null) for (const request of next) request.done(settled.outcome);
    });
  }

  /**
   * Starts the sync that requests made during the last one wait for, or
   * returns what to call them back with instead: the failure if the log
   * failed, success if a sync on this thread has since covered every record.
   */
  private startWaiting(group: SyncRequest[]): { outcome: StorageError | null } | null {
    if (this.failed) return { outcome: earlierFailure(this.path) };
    if (!this.needsSync) return { outcome: null };
    try {
      this.startSync(group);
      return null;
    } catch (thrown) {
      // Its marker could not be written (the log is failed now).
      const failure = thrown instanceof StorageError ? thrown : ioFailed(this.path, thrown);
      if (!group.some((r) => r.awaited)) this.unreported = failure;
      return { outcome: failure };
    }
  }

  /**
   * The primary descriptor is going away (close, rewrite): a sync in flight
   * on it closes it when it finishes, and nobody waiting is called back.
   */
  private retireDescriptors(): void {
    if (this.inFlight !== null) {
      this.inFlight.retired = true;
      this.inFlight = null;
    } else if (this.fd >= 0) {
      closeSync(this.fd);
    }
    this.waiting = [];
    this.fd = -1;
    if (this.syncFd >= 0) closeSync(this.syncFd);
    this.syncFd = -1;
  }

  /**
   * Throws StorageReplaced unless the file this log writes is still the one
   * at its path, holding the bytes it wrote: not deleted, not another file
   * put in its place (a data directory removed, or moved aside, and a backup
   * copied in while the node ran), not cut or grown by another writer. A
   * file copied over this one in place, no longer than it, then grown by
   * this log's next append goes unseen. One fstat and one stat, a few
   * microseconds, where an fdatasync takes hundreds.
   */
  checkInPlace(): void {
    assert(this.fd >= 0, `${this.path} is closed`);
    let open: BigIntStats;
    let named: BigIntStats | undefined;
    try {
      open = fstatSync(this.fd, { bigint: true });
      named = statSync(this.path, { bigint: true, throwIfNoEntry: false });
    } catch (error) {
      throw ioFailed(this.path, error);
    }
    if (open.nlink === 0n) throw replacedError(this.path, 'the file this node writes was deleted');
    if (named === undefined) throw replacedError(this.path, 'no file is at this path any more');
    if (named.dev !== open.dev || named.ino !== open.ino) {
      throw replacedError(this.path, 'another file is at this path than the one this node writes');
    }
    if (open.size !== BigInt(this.sizeBytes)) {
      throw replacedError(
        this.path,
        `the file holds ${open.size} bytes where this node wrote ${this.sizeBytes}: another process wrote to it or cut it`,
      );
    }
  }

  /** Whether an async sync (syncAsync, syncInBackground) is running on the current file. */
  get syncInFlight(): boolean {
    return this.inFlight !== null;
  }

  /**
   * Whether a write or sync of this log failed, reported or not: what reached
   * the disk after its last finished sync is unknown.
   */
  get failedEarlier(): boolean {
    return this.failed;
  }

  /** Whether records appended since the last finished sync (foreground or background) may not be durable. */
  get needsSync(): boolean {
    return this.durableCount < this.appendedCount;
  }

  /** The payload of a record, checked against its checksums. */
  read(ref: RecordRef): Uint8Array {
    let bytes: Uint8Array;
    try {
      bytes = readExactly(this.fd, RECORD_HEADER_BYTES + ref.length, ref.offset);
    } catch (error) {
      // A failed read (EIO) is the disk's, like a bad checksum: the caller
      // decides (serving a peer skips the block; start refuses). Writes go on.
      throw ioFailed(this.path, error);
    }
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
      this.retireDescriptors();
      // The new file is synced whole: a closing marker names all it keeps. It
      // keeps the salt, so the markers among the kept records stay valid.
      const body = kept.length === 0 ? [] : [kept, encodeMarker(this.salt, 0)];
      replaceFile(this.path, fileHeader(this.magic, base, this.salt), body);
      this.fd = openSync(this.path, 'r+');
      this.syncFd = openSync(this.path, 'r+');
    } catch (error) {
      this.failed = true;
      throw ioFailed(this.path, error);
    }
    this.sizeBytes = FILE_HEADER_BYTES + (kept.length === 0 ? 0 : kept.length + MARKER_BYTES);
    this.durableCount = this.appendedCount;
    this.durableBytes = this.sizeBytes;
    this.markedCount = this.appendedCount;
    return fromOffset - FILE_HEADER_BYTES;
  }

  /**
   * Cuts the file at `offset` (a record's start), durably: records a restart
   * finds were never acknowledged (docs/operations.md). Refuses to cut below
   * the acknowledged bound proven at open, which an earlier run may have
   * acted on. The cut may take the markers that proved the records before
   * it durable (an upgrade's) or acknowledged: a copied marker after them
   * keeps damage among them refused, and one naming the acknowledged bound
   * keeps that bound.
   */
  truncateTo(offset: number): void {
    this.checkWritable();
    assert(offset >= FILE_HEADER_BYTES && offset <= this.sizeBytes, 'truncate offset');
    if (offset < this.ackedAtOpen) {
      throw new StorageError(
        'StorageCorrupt',
        this.path,
        offset,
        `refusing to drop records below ${this.ackedAtOpen}, which a sync of a running node proved durable`,
      );
    }
    let size = offset;
    try {
      ftruncateSync(this.fd, offset);
      // The cut is made durable before the marker is written over the bytes
      // it dropped: an fsync writes data before it commits a new size, so a
      // power cut inside one syncing both could leave the marker over the old
      // tail, whose later markers (an upgrade's) would then prove the rest
      // of that tail durable, and it damaged: StorageCorrupt after a crash.
      fsyncSync(this.syncFd);
      // Every byte before the cut is durable now (that fsync).
      if (offset > FILE_HEADER_BYTES) {
        writeAll(this.fd, encodeMarker(this.salt, 0, true), offset);
        size += MARKER_BYTES;
      }
      // The cut may take the marker that proved the records before it
      // acknowledged (one a sync wrote after the dropped checkpoint): a
      // marker naming the same bound keeps them undroppable at the next start.
      if (this.ackedAtOpen > FILE_HEADER_BYTES) {
        writeAll(this.fd, encodeMarker(this.salt, size - this.ackedAtOpen), size);
        size += MARKER_BYTES;
      }
      fsyncSync(this.syncFd);
    } catch (error) {
      this.failed = true;
      throw ioFailed(this.path, error);
    }
    this.sizeBytes = size;
    this.durableCount = this.appendedCount;
    this.durableBytes = size;
    this.cuts++;
  }

  /**
   * Syncs what is pending (unless `sync` is false: the file is then left as a
   * crash would leave it) and closes the file. Returns the error if a sync
   * fails here, or if a background sync failed and no call has reported it
   * since (nobody else would hear of it): what was not synced is what a crash
   * would have lost, and the caller must not go on as if it were durable.
   * Null otherwise (a failure already thrown to a caller is not repeated).
   */
  close(sync = true): StorageError | null {
    if (this.fd < 0 && this.syncFd < 0) return null;
    let error = this.unreported;
    this.unreported = null;
    if (!this.failed && sync) {
      try {
        if (this.needsSync) {
          this.markBeforeSync();
          fdatasyncSync(this.syncFd);
          this.durableBytes = this.sizeBytes;
          this.durableCount = this.appendedCount;
        }
        // A clean shutdown leaves a marker naming the whole file, so the next
        // open knows every record in it was durable.
        if (this.markedCount < this.durableCount) {
          this.writeMarker();
          fdatasyncSync(this.syncFd);
        }
      } catch (thrown) {
        this.failed = true;
        error = thrown instanceof StorageError ? thrown : ioFailed(this.path, thrown);
      }
    }
    this.retireDescriptors();
    return error;
  }

  private checkWritable(): void {
    if (this.failed) {
      this.unreported = null;
      throw earlierFailure(this.path);
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

/** The durable and acknowledged bounds markers prove (the header of this file). */
interface Bounds {
  durable: number;
  acked: number;
}

/** Raises `bounds` to what a marker at `offset` claims. */
function raise(bounds: Bounds, start: number, offset: number, claim: MarkerClaim): void {
  const named = Math.max(start, offset - claim.distance);
  bounds.durable = Math.max(bounds.durable, named);
  if (!claim.copied) bounds.acked = Math.max(bounds.acked, named);
}

/**
 * Raises `bounds` to what the intact, authentic markers starting in [from,
 * size) claim, found by searching for a marker's length word and checking
 * both checksums and the MAC under the file's salt (bytes a client chose in
 * a payload cannot pass it).
 */
function raiseByMarkersAfter(
  bounds: Bounds,
  fd: number,
  from: number,
  size: number,
  salt: Uint8Array,
): void {
  const word = Buffer.alloc(4);
  word.writeUInt32BE((MARKER_FLAG | MARKER_PAYLOAD_BYTES) >>> 0, 0);
  for (let at = from; at < size; at += ZERO_SCAN_CHUNK_BYTES) {
    // Chunks overlap by a marker less one byte, so none is split unseen.
    const chunk = Buffer.from(
      readExactly(fd, Math.min(ZERO_SCAN_CHUNK_BYTES + MARKER_BYTES - 1, size - at), at),
    );
    for (
      let i = chunk.indexOf(word);
      i >= 0 && i < ZERO_SCAN_CHUNK_BYTES;
      i = chunk.indexOf(word, i + 1)
    ) {
      if (i + MARKER_BYTES > chunk.length) break;
      const marker = chunk.subarray(i, i + MARKER_BYTES);
      const payload = marker.subarray(RECORD_HEADER_BYTES);
      if (crc32(marker.subarray(0, 8)) !== marker.readUInt32BE(8)) continue;
      if (crc32(payload) !== marker.readUInt32BE(4)) continue;
      const claim = markerClaim(salt, payload);
      if (claim !== null) raise(bounds, FILE_HEADER_BYTES, at + i, claim);
    }
  }
}

/** What the file header says. */
interface FileHeader {
  readonly version: number;
  readonly base: number;
  /** Bytes of the header, where the first record starts. */
  readonly bytes: number;
  /** The markers' key; null for a version 1 or 2 file, read with the end-only rule. */
  readonly salt: Uint8Array | null;
}

interface Scan {
  readonly records: RecordRef[];
  /** Where the sound records end; the rest is a torn tail. */
  readonly end: number;
  /** Bytes proven acknowledged by a marker (every record when it covers them all). */
  readonly acked: number;
}

interface Damage {
  readonly offset: number;
  readonly reason: string;
  /** Whether intact bytes follow it (the end-only rule of older files refuses those). */
  readonly followed: boolean;
}

function scan(
  fd: number,
  path: string,
  size: number,
  options: RecordLogOptions,
  header: FileHeader,
): Scan {
  const found: { ref: RecordRef; checked: boolean }[] = [];
  const { salt } = header;
  const start = header.bytes;
  // Older files are read with the end-only rule: no marker of theirs is trusted
  // (version 1 has none; version 2's could be forged, see the header of this file).
  const bounds: Bounds | null = salt === null ? null : { durable: start, acked: start };
  const markerPayloadBytes = salt === null ? OLD_MARKER_PAYLOAD_BYTES : MARKER_PAYLOAD_BYTES;
  let damage: Damage | null = null;
  const damaged = (offset: number, reason: string, followed: boolean): void => {
    if (damage === null || offset < damage.offset) damage = { offset, reason, followed };
  };
  let offset = start;
  while (offset < size) {
    if (size - offset < RECORD_HEADER_BYTES) {
      damaged(offset, 'record header is cut short', false);
      break;
    }
    const recordHeader = Buffer.from(readExactly(fd, RECORD_HEADER_BYTES, offset));
    if (crc32(recordHeader.subarray(0, 8)) !== recordHeader.readUInt32BE(8)) {
      const followed = !isZeroTail(fd, offset, size);
      damaged(offset, 'record header fails its checksum', followed);
      // The records after it can no longer be walked, but a marker among them
      // may still prove the damaged one synced: look for markers by their bytes.
      if (followed && salt !== null && bounds !== null) {
        raiseByMarkersAfter(bounds, fd, offset + 1, size, salt);
      }
      break;
    }
    const word = recordHeader.readUInt32BE(0);
    const marker = (word & MARKER_FLAG) !== 0;
    const length = marker ? word - MARKER_FLAG : word;
    // An intact header naming an impossible length is no torn write.
    if (marker ? length !== markerPayloadBytes : length > options.recordBytesMax) {
      throw new StorageError(
        'StorageCorrupt',
        path,
        offset,
        `record length ${length} is above the limit ${options.recordBytesMax}`,
      );
    }
    const end = offset + RECORD_HEADER_BYTES + length;
    if (end > size) {
      damaged(offset, 'record is cut short', false);
      break;
    }
    if (marker || options.verifyPayloads) {
      const payload = Buffer.from(readExactly(fd, length, offset + RECORD_HEADER_BYTES));
      if (crc32(payload) !== recordHeader.readUInt32BE(4)) {
        damaged(offset, 'record payload fails its checksum', end < size);
      } else if (marker) {
        const claim = salt === null ? null : markerClaim(salt, payload);
        if (bounds !== null && claim === null) {
          damaged(offset, 'sync marker fails its authentication', end < size);
        } else if (bounds !== null && claim !== null) {
          raise(bounds, start, offset, claim);
        }
      } else {
        found.push({ ref: { offset, length }, checked: true });
      }
    } else {
      found.push({ ref: { offset, length }, checked: false });
    }
    offset = end;
  }
  const bound = bounds === null ? null : bounds.durable;
  // Payloads not checked yet (the block log's): those that may be torn, past
  // the bound (the last one only, for an older file read with the end-only rule).
  for (const { ref, checked } of found) {
    const end = ref.offset + RECORD_HEADER_BYTES + ref.length;
    if (checked || (bound === null ? end < size : end <= bound)) continue;
    const bytes = readExactly(fd, RECORD_HEADER_BYTES + ref.length, ref.offset);
    if (checkRecord(bytes, ref.length) !== null) {
      damaged(ref.offset, 'record payload fails its checksum', end < size);
      break;
    }
  }
  const first = damage as Damage | null;
  const records = found
    .map((f) => f.ref)
    .filter((ref) => first === null || ref.offset < first.offset);
  const last = records.at(-1);
  const recordsEnd = last === undefined ? start : last.offset + RECORD_HEADER_BYTES + last.length;
  const ackedBound = bounds === null ? start : bounds.acked;
  const acked = ackedBound >= recordsEnd ? size : ackedBound;
  if (first === null) return { records, end: size, acked };
  const torn = bound === null ? !first.followed : first.offset >= bound;
  if (!torn) {
    const why =
      bound === null
        ? 'and data follows it'
        : `below the durable bound ${bound} a sync marker proves`;
    throw new StorageError('StorageCorrupt', path, first.offset, `${first.reason}, ${why}`);
  }
  return { records, end: first.offset, acked: Math.min(acked, first.offset) };
}

function readHeader(fd: number, path: string, size: number, magic: string): FileHeader {
  const bad = (reason: string): StorageError => new StorageError('StorageCorrupt', path, 0, reason);
  const header = Buffer.from(readExactly(fd, Math.min(size, FILE_HEADER_BYTES), 0));
  if (header.length < 8) throw bad('file is shorter than its header');
  // Rot in the magic or the version of a version 3 header would otherwise read
  // as another kind of file, an unknown version, or an older file whose
  // records start inside the salt (refused at offset 16, for the wrong reason).
  if (isRottedCurrentHeader(header, magic)) throw bad('file header fails its checksum');
  if (header.toString('latin1', 0, 4) !== magic) throw bad(`not a ${magic} file`);
  const version = header.readUInt32BE(4);
  let bytes: number;
  if (version === VERSION) {
    bytes = FILE_HEADER_BYTES;
  } else if (OLD_VERSIONS.includes(version)) {
    bytes = OLD_FILE_HEADER_BYTES;
  } else {
    throw bad(`unknown version ${version} (this build reads versions 1 to ${VERSION})`);
  }
  if (header.length < bytes) throw bad('file is shorter than its header');
  if (
    version === VERSION &&
    crc32(header.subarray(0, HEADER_CRC_AT)) !== header.readUInt32BE(HEADER_CRC_AT)
  ) {
    throw bad('file header fails its checksum');
  }
  const base = readU64(header, 8);
  if (!Number.isSafeInteger(base)) throw bad('base is not a safe integer');
  const salt = version === VERSION ? Uint8Array.from(header.subarray(16, 16 + SALT_BYTES)) : null;
  return { version, base, bytes, salt };
}

/**
 * Whether `header`, whose magic or version is not this build's, is a version
 * 3 header of a `magic` file whose first eight bytes rotted: its checksum
 * holds with them put back. A version 3 file of another kind (its magic
 * alone differs) never passes, since CRC-32 catches every change within 32
 * bits; other bytes pass by chance, once in 2^32. A version 1 or 2 file of
 * `magic` could be such a chance, and is never refused for it: one holding
 * records has a sound record header right after its 16-byte header, which a
 * version 3 salt forms only once in 2^32 (the rotted file is then read as an
 * old one, and what follows the salt is taken for damage).
 */
function isRottedCurrentHeader(header: Buffer, magic: string): boolean {
  const named = header.toString('latin1', 0, 4);
  const version = header.readUInt32BE(4);
  if ((named === magic && version === VERSION) || header.length < FILE_HEADER_BYTES) return false;
  const restored = Buffer.from(header.subarray(0, HEADER_CRC_AT));
  restored.write(magic, 0, 'latin1');
  restored.writeUInt32BE(VERSION, 4);
  if (crc32(restored) !== header.readUInt32BE(HEADER_CRC_AT)) return false;
  if (named !== magic || !OLD_VERSIONS.includes(version)) return true;
  const first = header.subarray(OLD_FILE_HEADER_BYTES, OLD_FILE_HEADER_BYTES + RECORD_HEADER_BYTES);
  return crc32(first.subarray(0, 8)) !== first.readUInt32BE(8);
}

/**
 * Writes an older file's sound records into a new version 3 file with a fresh
 * salt, ending with a marker naming them all, and renames it over the old one
 * durably (replaceFileWith). The old file is left as it was until the rename,
 * so a crash leaves the old file (read and upgraded again) or the new one.
 * Returns the records' offsets in the new file and its size.
 */
function upgrade(
  fd: number,
  path: string,
  magic: string,
  base: number,
  records: RecordRef[],
  salt: Uint8Array,
): { records: RecordRef[]; size: number } {
  const moved: RecordRef[] = [];
  let size = FILE_HEADER_BYTES;
  replaceFileWith(path, (out) => {
    writeAll(out, fileHeader(magic, base, salt), 0);
    // Copied as runs of adjacent records (a version 2 file's markers are dropped).
    let runFrom = -1;
    let runTo = -1;
    const copyRun = (): void => {
      for (let at = runFrom; at < runTo; at += UPGRADE_COPY_CHUNK_BYTES) {
        const chunk = readExactly(fd, Math.min(UPGRADE_COPY_CHUNK_BYTES, runTo - at), at);
        assert(chunk.length === Math.min(UPGRADE_COPY_CHUNK_BYTES, runTo - at), 'upgrade read');
        writeAll(out, chunk, size);
        size += chunk.length;
      }
    };
    for (const ref of records) {
      const end = ref.offset + RECORD_HEADER_BYTES + ref.length;
      if (ref.offset !== runTo) {
        copyRun();
        runFrom = ref.offset;
      }
      runTo = end;
      moved.push({ offset: size + (ref.offset - runFrom), length: ref.length });
    }
    copyRun();
    // The old rule refused damage among these records; without a marker
    // naming them, version 3 would take it for a torn tail and cut it. Copied:
    // the old file proved none of them acknowledged, and a later start may
    // still have to drop an unbacked tail among them (restore.ts).
    if (records.length > 0) {
      writeAll(out, encodeMarker(salt, 0, true), size);
      size += MARKER_BYTES;
    }
  });
  return { records: moved, size };
}

/**
 * Opens (or creates, with `base`) a record log, cuts a torn tail off durably,
 * and returns the sound records. Throws StorageCorrupt for damage elsewhere,
 * StorageIoFailed if creating, cutting or upgrading the file fails.
 */
export function openRecordLog(path: string, options: RecordLogOptions, base = 0): OpenedRecordLog {
  try {
    return openOrCreate(path, options, base);
  } catch (error) {
    // A creation or upgrade that failed (a full disk) refuses like any I/O failure.
    throw asStorageError(path, error);
  }
}

function openOrCreate(path: string, options: RecordLogOptions, base: number): OpenedRecordLog {
  if (!existsSync(path)) {
    replaceFile(path, fileHeader(options.magic, base, randomBytes(SALT_BYTES)), []);
  }
  let fd = openSync(path, 'r+');
  let syncFd = -1;
  try {
    const size = fstatSync(fd).size;
    const header = readHeader(fd, path, size, options.magic);
    const { records, end, acked } = scan(fd, path, size, options, header);
    if (header.salt === null) {
      const salt = randomBytes(SALT_BYTES);
      const upgraded = upgrade(fd, path, options.magic, header.base, records, salt);
      closeSync(fd);
      fd = -1;
      fd = openSync(path, 'r+');
      syncFd = openSync(path, 'r+');
      // Nothing of an older file is proven acknowledged (its closing marker
      // is a copied one): this run and the next may still drop records of it.
      const log = new RecordLog(path, fd, syncFd, upgraded.size, options, salt, FILE_HEADER_BYTES);
      return { log, records: upgraded.records, base: header.base, truncatedBytes: size - end };
    }
    if (end < size) ftruncateSync(fd, end);
    // What a crashed process left in the page cache is not durable yet; the
    // bound the next marker names must be.
    fsyncSync(fd);
    // Opened after that sync, so it sees every write-back error the primary
    // descriptor can (the header of this file).
    syncFd = openSync(path, 'r+');
    const log = new RecordLog(path, fd, syncFd, end, options, header.salt, acked);
    return { log, records, base: header.base, truncatedBytes: size - end };
  } catch (error) {
    if (fd >= 0) closeSync(fd);
    if (syncFd >= 0) closeSync(syncFd);
    throw error;
  }
}
