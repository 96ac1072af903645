// Every offset of every kind of file the node stores. Each log (the WAL, the
// block log, the results log), written with several syncs, is cut at every
// byte and has a seeded bit flipped in every byte (every bit of its file
// header), after a clean close and after a crash, and is opened again; so is
// a snapshot file. What must hold (docs/decisions/0002-storage.md):
//
// - a cut past the file header is a torn tail: the log opens with exactly the
//   records that end before the cut, and the next append lands in place;
// - a flip below the durable bound a sync marker proves is refused with
//   StorageCorrupt naming the file and an offset at or before it (a block's
//   or result's payload: when it is read), and the refusal modifies nothing;
//   a flip at or past the bound is a torn tail, cut from the record or
//   marker it hit, every record before that one kept;
// - a flip in the file header is refused as such, at offset 0;
// - no open gives back other bytes than were written;
// - a snapshot file cut or flipped anywhere is refused whole.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  STORED_BLOCK_BYTES_MAX,
  STORED_RESULTS_BYTES_MAX,
  WAL_RECORD_BYTES_MAX,
} from '../../../src/lib/limits.ts';
import { StorageError, openFileSnapshotStore } from '../../../src/node/storage/index.ts';
import type { RecordLogOptions } from '../../../src/node/storage/record_log.ts';
import { FILE_HEADER_BYTES, openRecordLog } from '../../../src/node/storage/record_log.ts';
import { rng } from './crash_disk.ts';
import { layout } from './layout.ts';

const TMP = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

/** The options each kind of log is opened with (wal.ts, block_store.ts, results.ts). */
const KINDS: readonly { readonly name: string; readonly options: RecordLogOptions }[] = [
  {
    name: 'WAL',
    options: { magic: 'ZWAL', recordBytesMax: WAL_RECORD_BYTES_MAX, verifyPayloads: true },
  },
  {
    name: 'block log',
    options: { magic: 'ZBLK', recordBytesMax: STORED_BLOCK_BYTES_MAX, verifyPayloads: false },
  },
  {
    name: 'results log',
    options: { magic: 'ZRES', recordBytesMax: STORED_RESULTS_BYTES_MAX, verifyPayloads: false },
  },
];

/** Records per log: small, so that every offset is tried within a second or two. */
const RECORDS = 14;

function withDir(body: (dir: string) => void): void {
  const dir = mkdtempSync(join(TMP, 'zomma-sweep-'));
  try {
    body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function payload(random: () => number, i: number): Buffer {
  const length = 1 + Math.floor(random() * 40);
  return Buffer.from(Array.from({ length }, (_, j) => (i * 37 + j * 11 + 5) & 0xff));
}

interface Written {
  readonly image: Buffer;
  readonly payloads: readonly Buffer[];
  /** Where each record ends in `image`. */
  readonly ends: readonly number[];
  /** The durable bound the markers of `image` prove: damage before it is refused. */
  readonly proven: number;
}

/**
 * A log of RECORDS records, synced at seeded points (at least three times),
 * closed cleanly or left as a crash right after the last append leaves it.
 */
function writeLog(path: string, options: RecordLogOptions, seed: number, crash: boolean): Written {
  const random = rng(seed);
  const { log } = openRecordLog(path, options);
  const payloads: Buffer[] = [];
  // The file's size when each sync returned: the next sync's marker proves it.
  const synced: number[] = [];
  for (let i = 0; i < RECORDS; i++) {
    payloads.push(payload(random, i));
    const sync = i === 2 || i === 6 || i === RECORDS - 2 || random() < 0.2;
    log.append(payloads[i]!, sync);
    if (sync) synced.push(statSync(path).size);
  }
  let image: Buffer;
  if (crash) {
    image = readFileSync(path);
    log.close(false);
  } else {
    log.close();
    image = readFileSync(path);
  }
  const slots = layout(image);
  const ends = slots.filter((s) => !s.marker).map((s) => s.end);
  assert.equal(ends.length, RECORDS, 'every record laid out');
  // After a clean close the closing marker proves all before it; after a
  // crash the last sync's marker proves where the sync before it ended.
  const proven = crash ? synced.at(-2)! : slots.at(-1)!.offset;
  assert.ok(proven > FILE_HEADER_BYTES && proven < image.length, `proven bound ${proven}`);
  return { image, payloads, ends, proven };
}

/** The payloads the log at `path` opens with; a read refused (a damaged payload) as its error. */
function openAndRead(path: string, options: RecordLogOptions): (Buffer | StorageError)[] {
  const { log, records } = openRecordLog(path, options);
  try {
    return records.map((ref) => {
      try {
        return Buffer.from(log.read(ref));
      } catch (error) {
        if (error instanceof StorageError) return error;
        throw error;
      }
    });
  } finally {
    log.close(false);
  }
}

/** Asserts StorageCorrupt naming `path` at an offset at or before `at`. */
function assertRefusedAt(error: unknown, path: string, at: number, what: string): void {
  assert.ok(error instanceof StorageError, `${what}: ${String(error)}`);
  assert.equal(error.code, 'StorageCorrupt', `${what}: ${error.message}`);
  assert.equal(error.path, path, what);
  assert.ok(error.offset !== null && error.offset <= at, `${what}: offset ${error.offset}`);
}

/** Opens the log at `path`: exactly the first `kept` records, every byte as written. */
function assertOpensWith(
  path: string,
  options: RecordLogOptions,
  written: Written,
  kept: number,
  what: string,
): void {
  const read = openAndRead(path, options);
  assert.equal(read.length, kept, `${what}: records kept`);
  read.forEach((r, i) => assert.deepEqual(r, written.payloads[i], `${what}: record ${i}`));
}

for (const { name, options } of KINDS) {
  for (const crash of [false, true]) {
    const after = crash ? 'a crash' : 'a clean close';
    test(`${name} after ${after}, cut at every offset: a torn tail, opened with the records before the cut; the next append lands in place`, () =>
      withDir((dir) => {
        const path = join(dir, 'log');
        const written = writeLog(path, options, 7, crash);
        const extra = Buffer.from('the next record');
        for (let cut = 0; cut < written.image.length; cut++) {
          const what = `cut at ${cut}`;
          const bytes = written.image.subarray(0, cut);
          writeFileSync(path, bytes);
          if (cut < FILE_HEADER_BYTES) {
            assert.throws(
              () => openRecordLog(path, options),
              (error: unknown) => {
                assertRefusedAt(error, path, 0, what);
                assert.match((error as Error).message, /shorter than its header/, what);
                return true;
              },
            );
            assert.deepEqual(readFileSync(path), bytes, `${what}: a refusal modifies nothing`);
            continue;
          }
          const kept = written.ends.filter((end) => end <= cut).length;
          assertOpensWith(path, options, written, kept, what);
          const { log } = openRecordLog(path, options);
          log.append(extra, true);
          log.close();
          const again = openAndRead(path, options);
          assert.deepEqual(again, [...written.payloads.slice(0, kept), extra], `${what}: appended`);
        }
      }));

    test(`${name} after ${after}, a bit flipped in every byte: refused below the durable bound, naming the offset; a torn tail past it`, () =>
      withDir((dir) => {
        const path = join(dir, 'log');
        const written = writeLog(path, options, 11, crash);
        const { image, proven } = written;
        const slots = layout(image);
        const random = rng(crash ? 23 : 29);
        for (let at = 0; at < image.length; at++) {
          const bits =
            at < FILE_HEADER_BYTES ? [0, 1, 2, 3, 4, 5, 6, 7] : [Math.floor(random() * 8)];
          for (const bit of bits) {
            const what = `bit ${bit} of byte ${at} (bound ${proven})`;
            const bytes = Buffer.from(image);
            bytes[at]! ^= 1 << bit;
            writeFileSync(path, bytes);
            let read: (Buffer | StorageError)[];
            try {
              read = openAndRead(path, options);
            } catch (error) {
              assert.ok(at < proven, `${what}: past the bound, refused: ${String(error)}`);
              assertRefusedAt(error, path, at, what);
              if (at < FILE_HEADER_BYTES) {
                assert.equal((error as StorageError).offset, 0, what);
                assert.match((error as Error).message, /file header fails its checksum/, what);
              }
              assert.deepEqual(readFileSync(path), bytes, `${what}: a refusal modifies nothing`);
              continue;
            }
            if (at < proven) {
              // Opened: only a payload the open does not check (block and
              // results logs below the bound), refused when read.
              assert.equal(options.verifyPayloads, false, `${what}: opened below the bound`);
              assert.equal(read.length, RECORDS, `${what}: records lost`);
              const refused = read.filter((r) => r instanceof StorageError);
              assert.equal(refused.length, 1, `${what}: the damaged payload refused`);
              assertRefusedAt(refused[0], path, at, what);
              read.forEach((r, i) => {
                if (!(r instanceof StorageError)) assert.deepEqual(r, written.payloads[i], what);
              });
              continue;
            }
            const hit = slots.find((s) => s.offset <= at && at < s.end)!;
            const kept = written.ends.filter((end) => end <= hit.offset).length;
            assert.equal(read.length, kept, `${what}: cut from the record it hit`);
            read.forEach((r, i) =>
              assert.deepEqual(r, written.payloads[i], `${what}: record ${i}`),
            );
          }
        }
      }));
  }
}

test('a snapshot file cut at every offset, or with a bit flipped in every byte, is refused whole, naming it', () =>
  withDir((dir) => {
    const snapshots = openFileSnapshotStore(dir);
    const random = rng(31);
    const state = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 13 + 1) & 0xff));
    snapshots.save(42, state);
    const path = join(dir, 'snapshot-0000000000000042.snap');
    const image = readFileSync(path);
    const refused = (bytes: Buffer, what: string): void => {
      writeFileSync(path, bytes);
      assert.throws(
        () => snapshots.load(42),
        (error: unknown) => {
          assert.ok(error instanceof StorageError, `${what}: ${String(error)}`);
          assert.equal(error.code, 'StorageCorrupt', what);
          assert.equal(error.path, path, what);
          return true;
        },
        what,
      );
      // Still listed: the restore passes it over for an older one (restore.ts).
      assert.deepEqual(snapshots.heights(), [42], what);
    };
    for (let cut = 0; cut < image.length; cut++) refused(image.subarray(0, cut), `cut at ${cut}`);
    for (let at = 0; at < image.length; at++) {
      const bits = at < 16 ? [0, 1, 2, 3, 4, 5, 6, 7] : [Math.floor(random() * 8)];
      for (const bit of bits) {
        const bytes = Buffer.from(image);
        bytes[at]! ^= 1 << bit;
        refused(bytes, `bit ${bit} of byte ${at}`);
      }
    }
    writeFileSync(path, image);
    assert.deepEqual(Buffer.from(snapshots.load(42)!), state);
  }));
