// Application snapshots as one file each, `snapshot-<height>.snap`:
//   magic 'ZSNP'(4) version(u32) length(u32) crc32(u32) payload
// written to a temporary file, fsynced, renamed into place and the directory
// fsynced, so a snapshot is either whole or absent.

import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { assert } from '../../lib/assert.ts';
import { SNAPSHOT_BYTES_MAX } from '../../lib/limits.ts';
import { StorageError } from './errors.ts';
import { fsyncDirectory } from './record_log.ts';
import type { Snapshot, SnapshotStore } from './types.ts';

const MAGIC = 'ZSNP';
const VERSION = 1;
const HEADER_BYTES = 16;
const NAME = /^snapshot-(\d{16})\.snap$/;
const TMP = /^snapshot-\d{16}\.snap\.tmp$/;

function fileName(height: number): string {
  return `snapshot-${String(height).padStart(16, '0')}.snap`;
}

export class FileSnapshotStore implements SnapshotStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  save(height: number, bytes: Uint8Array): void {
    assert(Number.isSafeInteger(height) && height >= 0, `snapshot height ${height}`);
    const path = join(this.dir, fileName(height));
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
      throw new StorageError('StorageIoFailed', path, null, String(error));
    }
  }

  load(height: number): Uint8Array | null {
    const path = join(this.dir, fileName(height));
    if (!existsSync(path)) return null;
    const file = readFileSync(path);
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

  loadRange(height: number, offsetBytes: number, lengthBytes: number): Uint8Array | null {
    assert(
      Number.isSafeInteger(offsetBytes) && offsetBytes >= 0 && Number.isSafeInteger(lengthBytes),
      `snapshot range ${offsetBytes}+${lengthBytes}`,
    );
    const path = join(this.dir, fileName(height));
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      // Pruned since the caller saw it (or never saved): not held.
      return null;
    }
    try {
      const header = Buffer.alloc(HEADER_BYTES);
      if (readSync(fd, header, 0, HEADER_BYTES, 0) < HEADER_BYTES) {
        throw new StorageError('StorageCorrupt', path, 0, 'file is shorter than its header');
      }
      if (header.toString('latin1', 0, 4) !== MAGIC || header.readUInt32BE(4) !== VERSION) {
        throw new StorageError('StorageCorrupt', path, 0, 'not a snapshot file of this version');
      }
      if (offsetBytes + lengthBytes > header.readUInt32BE(8)) return null;
      const out = new Uint8Array(lengthBytes);
      let done = 0;
      while (done < lengthBytes) {
        const read = readSync(fd, out, done, lengthBytes - done, HEADER_BYTES + offsetBytes + done);
        if (read === 0) {
          throw new StorageError(
            'StorageCorrupt',
            path,
            HEADER_BYTES,
            'length differs from the file',
          );
        }
        done += read;
      }
      return out;
    } finally {
      closeSync(fd);
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
    for (const name of readdirSync(this.dir)) {
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
    const doomed = heights.slice(0, Math.max(0, heights.length - keep));
    for (const height of doomed) unlinkSync(join(this.dir, fileName(height)));
    if (doomed.length > 0) fsyncDirectory(this.dir);
  }
}

/** Opens (or creates) the snapshot directory, removing temporary files a crash left behind. */
export function openFileSnapshotStore(dir: string): FileSnapshotStore {
  mkdirSync(dir, { recursive: true });
  for (const name of readdirSync(dir)) if (TMP.test(name)) unlinkSync(join(dir, name));
  return new FileSnapshotStore(dir);
}
