// Application snapshots as one file each, `snapshot-<height>.snap`:
//   magic 'ZSNP'(4) version(u32) length(u32) crc32(u32) payload
// written to a temporary file, fsynced, renamed into place and the directory
// fsynced, so a snapshot is either whole or absent.

import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { assert } from '../../lib/assert.ts';
import { SNAPSHOT_BYTES_MAX } from '../../lib/limits.ts';
import { StorageError, ioFailed } from './errors.ts';
import { fsyncDirectory, makeDirectoryDurable } from './record_log.ts';
import type { Snapshot, SnapshotReader, SnapshotStore } from './types.ts';

const MAGIC = 'ZSNP';
const VERSION = 1;
const HEADER_BYTES = 16;
const NAME = /^snapshot-(\d{16})\.snap$/;
const TMP = /^snapshot-\d{16}\.snap\.tmp$/;

/** The file of the snapshot of `height` in a snapshots directory (named in messages to operators too). */
export function snapshotFileName(height: number): string {
  return `snapshot-${String(height).padStart(16, '0')}.snap`;
}

export class FileSnapshotStore implements SnapshotStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  save(height: number, bytes: Uint8Array): void {
    assert(Number.isSafeInteger(height) && height >= 0, `snapshot height ${height}`);
    const path = join(this.dir, snapshotFileName(height));
    if (bytes.length > SNAPSHOT_BYTES_MAX) {
      throw new StorageError('StorageTooLarge', path, null, `snapshot of ${bytes.length} bytes`);
    }
    const header = Buffer.alloc(HEADER_BYTES);
    header.write(MAGIC, 0, 'latin1');
    header.writeUInt32BE(VERSION, 4);
    header.writeUInt32BE(bytes.length, 8);
    header.writeUInt32BE(crc32(bytes), 12);
    const tmp = `${path}.tmp`;
    try {
      const fd = openSync(tmp, 'w');
      try {
        for (const part of [header, bytes]) {
          let done = 0;
          while (done < part.length) done += writeSync(fd, part, done, part.length - done);
        }
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
      fsyncDirectory(this.dir);
    } catch (error) {
      // Left behind, a partial snapshot (a full disk) would hold the space
      // the node's next syncs need until the next start removed it.
      removeQuietly(tmp);
      throw ioFailed(path, error);
    }
  }

  load(height: number): Uint8Array | null {
    const path = join(this.dir, snapshotFileName(height));
    if (!existsSync(path)) return null;
    let file: Buffer;
    try {
      file = readFileSync(path);
    } catch (error) {
      throw ioFailed(path, error);
    }
    const bad = (offset: number, reason: string): StorageError =>
      new StorageError('StorageCorrupt', path, offset, reason);
    if (file.length < HEADER_BYTES) throw bad(0, 'file is shorter than its header');
    if (file.toString('latin1', 0, 4) !== MAGIC) throw bad(0, 'not a snapshot file');
    if (file.readUInt32BE(4) !== VERSION) throw bad(4, `unknown version ${file.readUInt32BE(4)}`);
    if (file.readUInt32BE(8) !== file.length - HEADER_BYTES)
      throw bad(8, 'length differs from the file');
    const payload = file.subarray(HEADER_BYTES);
    if (crc32(payload) !== file.readUInt32BE(12))
      throw bad(HEADER_BYTES, 'payload fails its checksum');
    return new Uint8Array(payload);
  }

  openReader(height: number): SnapshotReader | null {
    const path = join(this.dir, snapshotFileName(height));
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      // Pruned since the caller saw it (or never saved): not held.
      return null;
    }
    try {
      const header = Buffer.alloc(HEADER_BYTES);
      readFully(fd, header, 0, path);
      if (header.toString('latin1', 0, 4) !== MAGIC || header.readUInt32BE(4) !== VERSION) {
        throw new StorageError('StorageCorrupt', path, 0, 'not a snapshot file of this version');
      }
      return new FileSnapshotReader(fd, path, header.readUInt32BE(8));
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  latest(): Snapshot | null {
    const heights = this.heights();
    const height = heights[heights.length - 1];
    if (height === undefined) return null;
    const bytes = this.load(height);
    assert(bytes !== null, `snapshot ${height} vanished`);
    return { height, bytes };
  }

  heights(): number[] {
    const out: number[] = [];
    for (const name of listDirectory(this.dir)) {
      const match = NAME.exec(name);
      if (match !== null) out.push(Number(match[1]));
    }
    return out.sort((a, b) => a - b);
  }

  prune(keep: number): void {
    assert(
      Number.isSafeInteger(keep) && keep >= 1,
      `prune keeps at least one snapshot, got ${keep}`,
    );
    const heights = this.heights();
    this.remove(heights.slice(0, Math.max(0, heights.length - keep)));
  }

  clear(): void {
    this.remove(this.heights());
  }

  private remove(doomed: readonly number[]): void {
    for (const height of doomed) unlink(join(this.dir, snapshotFileName(height)));
    if (doomed.length === 0) return;
    try {
      fsyncDirectory(this.dir);
    } catch (error) {
      throw ioFailed(this.dir, error);
    }
  }
}

/**
 * An open snapshot file: reads go to the file opened, so a snapshot pruned
 * (unlinked) or replaced (renamed over) meanwhile still reads as it was.
 */
class FileSnapshotReader implements SnapshotReader {
  private closed = false;

  constructor(
    private readonly fd: number,
    private readonly path: string,
    readonly sizeBytes: number,
  ) {}

  read(offsetBytes: number, lengthBytes: number): Uint8Array {
    assert(!this.closed, 'a snapshot reader is read only while open');
    assert(
      Number.isSafeInteger(offsetBytes) &&
        Number.isSafeInteger(lengthBytes) &&
        offsetBytes >= 0 &&
        lengthBytes >= 0 &&
        offsetBytes + lengthBytes <= this.sizeBytes,
      `snapshot range ${offsetBytes}+${lengthBytes} of ${this.sizeBytes} bytes`,
    );
    const out = new Uint8Array(lengthBytes);
    readFully(this.fd, out, HEADER_BYTES + offsetBytes, this.path);
    return out;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}

/** Fills `out` from `position`; a short file is StorageCorrupt, a failed read StorageIoFailed. */
function readFully(fd: number, out: Uint8Array, position: number, path: string): void {
  let done = 0;
  while (done < out.length) {
    let read: number;
    try {
      read = readSync(fd, out, done, out.length - done, position + done);
    } catch (error) {
      throw ioFailed(path, error);
    }
    if (read === 0) {
      throw new StorageError(
        'StorageCorrupt',
        path,
        position + done,
        'shorter than its header says',
      );
    }
    done += read;
  }
}

/**
 * Opens (or creates) the snapshot directory, removing temporary files a crash
 * left behind. A failure to list or remove them is StorageIoFailed naming the
 * path, as any other of the storage's.
 */
export function openFileSnapshotStore(dir: string): FileSnapshotStore {
  makeDirectoryDurable(dir);
  for (const name of listDirectory(dir)) if (TMP.test(name)) unlink(join(dir, name));
  return new FileSnapshotStore(dir);
}

/** The names in `dir`; StorageIoFailed if it cannot be read. */
function listDirectory(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (error) {
    throw ioFailed(dir, error);
  }
}

/** Removes the file at `path`; StorageIoFailed if that fails. */
function unlink(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    throw ioFailed(path, error);
  }
}

/** Removes the file at `path` if it is there; a failure is left for the next start to meet. */
function removeQuietly(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    // The next start removes it (openFileSnapshotStore), or reports why it cannot.
  }
}
