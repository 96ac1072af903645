// Seeded damage drivers: a WAL or block log written by a run of appends,
// syncs, rotations and prunes is damaged as a disk could damage it (a flipped
// bit, a zeroed sector or page) and reopened. Damage to what a sync marker
// proves durable (all of it after a clean close) must refuse to start with
// StorageCorrupt naming the file and an offset at or before the damage, or
// (a block's payload, checked when read) refuse the read the same way; it
// must never give back other bytes or silently drop a record. And a write or
// sync that fails (ENOSPC, EIO) fails the log for good: every later write
// and sync refuses, and the file reopens with every record acknowledged.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs, { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import {
  StorageError,
  openFileBlockStore,
  openStorage,
  openWal,
} from '../../../src/node/storage/index.ts';
import { rng } from './crash_disk.ts';
import { makeDirectoryDurable } from '../../../src/node/storage/record_log.ts';

/** A sync marker's bytes: a clean close ends the file with one. */
const CLOSING_MARKER_BYTES = 36;

const TMP = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

function payload(seed: number, i: number, length: number): Buffer {
  return Buffer.from(Array.from({ length }, (_, j) => (seed * 131 + i * 31 + j * 7) & 0xff));
}

function withDir(body: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(TMP, 'zomma-damage-'));
  return (async () => {
    try {
      await body(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  })();
}

type Damage = { what: string; from: number; to: number; apply: (bytes: Buffer) => void };

/** A seeded damage somewhere in [from, size): a bit flipped, a sector or a page zeroed. */
function damageAt(random: () => number, from: number, size: number): Damage {
  const at = from + Math.floor(random() * (size - from));
  const kind = random();
  if (kind < 0.6) {
    const bit = 1 << Math.floor(random() * 8);
    return {
      what: `bit ${bit} of byte ${at}`,
      from: at,
      to: at + 1,
      apply: (bytes) => void (bytes[at]! ^= bit),
    };
  }
  const unit = kind < 0.85 ? 512 : 4096;
  const start = Math.max(from, at - (at % unit));
  const end = Math.min(size, at - (at % unit) + unit);
  return {
    what: `bytes ${start}..${end} zeroed`,
    from: start,
    to: end,
    apply: (bytes) => void bytes.fill(0, start, end),
  };
}

/** Asserts `error` is StorageCorrupt naming `path` at an offset at or before the damage's end. */
function refusedAt(error: unknown, path: string, damage: Damage): void {
  assert.ok(error instanceof StorageError, `${damage.what}: ${String(error)}`);
  assert.equal(error.code, 'StorageCorrupt', `${damage.what}: ${error.message}`);
  assert.equal(error.path, path, damage.what);
  assert.ok(
    error.offset !== null && error.offset < damage.to,
    `${damage.what}: offset ${error.offset}`,
  );
  assert.ok(error.message.includes(`${path} at offset ${error.offset}`), error.message);
}

for (const seed of [1, 2, 3]) {
  test(`WAL damage driver (seed ${seed}): after a clean close any damage refuses to start, naming the file and offset, or loses nothing`, () =>
    withDir((dir) => {
      const random = rng(seed);
      const path = join(dir, 'wal.log');
      const written = new Map<number, Buffer>();
      const { wal } = openWal(path);
      for (let step = 0; step < 60; step++) {
        const r = random();
        if (r < 0.8) {
          const index = wal.nextIndex();
          written.set(index, payload(seed, index, 1 + Math.floor(random() * 900)));
          wal.append(written.get(index)!, random() < 0.3);
        } else if (r < 0.9) {
          wal.sync();
        } else {
          wal.truncateBefore(
            Math.max(wal.firstIndex(), wal.nextIndex() - Math.floor(random() * 3)),
          );
        }
      }
      const last = wal.nextIndex();
      wal.close();
      const pristine = readFileSync(path);
      for (let round = 0; round < 150; round++) {
        // Not the closing marker: damage that takes it takes the proof of the
        // last sync window with it, and is cut as a crash's torn tail would be.
        const damage = damageAt(random, 0, pristine.length - CLOSING_MARKER_BYTES);
        const bytes = Buffer.from(pristine);
        damage.apply(bytes);
        writeFileSync(path, bytes);
        let opened: ReturnType<typeof openWal>;
        try {
          opened = openWal(path);
        } catch (error) {
          refusedAt(error, path, damage);
          assert.deepEqual(readFileSync(path), bytes, `${damage.what}: a refusal modifies nothing`);
          continue;
        }
        // Only the closing marker itself may go: every record is still there.
        const records = opened.wal.readAll();
        const base = opened.wal.firstIndex();
        assert.equal(base + records.length, last, `${damage.what}: records lost`);
        records.forEach((r, k) => assert.deepEqual(Buffer.from(r), written.get(base + k)));
        opened.wal.close();
      }
    }));
}

for (const seed of [1, 2, 3]) {
  test(`WAL damage driver (seed ${seed}): after a crash, damage below the bound a sync marker proves refuses; past it, a prefix is kept`, () =>
    withDir((dir) => {
      const random = rng(seed + 100);
      const path = join(dir, 'wal.log');
      const written: Buffer[] = [];
      const { wal } = openWal(path);
      // Sizes of the file when each sync returned: the marker of the next sync proves it.
      const syncedSizes: number[] = [];
      for (let step = 0; step < 50; step++) {
        if (random() < 0.75) {
          written.push(payload(seed, written.length, 1 + Math.floor(random() * 900)));
          const sync = random() < 0.3;
          wal.append(written.at(-1)!, sync);
          if (sync) syncedSizes.push(fs.statSync(path).size);
        } else {
          // Writes a marker only if there is something to sync.
          wal.sync();
          if (fs.statSync(path).size !== syncedSizes.at(-1)) {
            syncedSizes.push(fs.statSync(path).size);
          }
        }
      }
      const image = readFileSync(path);
      wal.closeUnsynced();
      // The last sync's marker names where the one before it ended.
      const proven = syncedSizes.at(-2) ?? 0;
      assert.ok(proven > 36, 'the workload synced twice');
      for (let round = 0; round < 150; round++) {
        // Not the last sync's marker, the proof of the bound (damage taking it is a torn tail).
        const damage = damageAt(random, 36, syncedSizes.at(-1)! - CLOSING_MARKER_BYTES);
        const bytes = Buffer.from(image);
        damage.apply(bytes);
        writeFileSync(path, bytes);
        let opened: ReturnType<typeof openWal>;
        try {
          opened = openWal(path);
        } catch (error) {
          refusedAt(error, path, damage);
          continue;
        }
        assert.ok(
          damage.from >= proven,
          `${damage.what}: below the proven bound ${proven}, opened`,
        );
        const records = opened.wal.readAll();
        records.forEach((r, k) => assert.deepEqual(Buffer.from(r), written[k], damage.what));
        opened.wal.close();
      }
    }));
}

for (const seed of [1, 2]) {
  test(`block log damage driver (seed ${seed}): damage refuses the start or the read, naming the file and offset; no block is lost or changed`, () =>
    withDir((dir) => {
      const random = rng(seed + 200);
      const path = join(dir, 'blocks.log');
      const written = new Map<number, Buffer>();
      const blocks = openFileBlockStore(path);
      let height = 1;
      for (let step = 0; step < 60; step++) {
        const r = random();
        if (r < 0.8) {
          written.set(height, payload(seed, height, 100 + Math.floor(random() * 3000)));
          if (random() < 0.3) blocks.save(height, written.get(height)!);
          else blocks.saveDeferred(height, written.get(height)!);
          height++;
        } else if (r < 0.9) {
          blocks.flush();
        } else if (blocks.lastHeight() > 3) {
          blocks.pruneBefore(blocks.lastHeight() - 2);
        }
      }
      const first = blocks.firstHeight();
      const last = blocks.lastHeight();
      blocks.close();
      const pristine = readFileSync(path);
      for (let round = 0; round < 120; round++) {
        const damage = damageAt(random, 0, pristine.length - CLOSING_MARKER_BYTES);
        const bytes = Buffer.from(pristine);
        damage.apply(bytes);
        writeFileSync(path, bytes);
        let store: ReturnType<typeof openFileBlockStore>;
        try {
          store = openFileBlockStore(path);
        } catch (error) {
          refusedAt(error, path, damage);
          continue;
        }
        assert.equal(store.lastHeight(), last, `${damage.what}: blocks lost`);
        assert.ok(store.firstHeight() <= first, damage.what);
        for (let h = first; h <= last; h++) {
          let block: Uint8Array | null;
          try {
            block = store.load(h);
          } catch (error) {
            refusedAt(error, path, damage);
            continue;
          }
          assert.deepEqual(Buffer.from(block!), written.get(h), `${damage.what}: block ${h}`);
        }
        store.close();
      }
    }));
}

/** Makes the `n`th call of `name` on a descriptor of `path` fail with `code`, for the body's duration. */
async function failing<T>(
  path: string,
  name: 'writeSync' | 'fdatasyncSync' | 'fdatasync',
  n: number,
  code: 'ENOSPC' | 'EIO',
  body: () => T | Promise<T>,
): Promise<T> {
  const real = { openSync: fs.openSync, closeSync: fs.closeSync, [name]: fs[name] };
  const fds = new Set<number>();
  let calls = 0;
  const error = (): NodeJS.ErrnoException =>
    Object.assign(new Error(`${code}: injected, ${name}`), { code, syscall: 'write' });
  const hit = (fd: number): boolean => fds.has(fd) && ++calls === n;
  Object.assign(fs, {
    openSync: (p: fs.PathLike, ...rest: unknown[]) => {
      const fd = (real.openSync as (...a: unknown[]) => number)(p, ...rest);
      if (String(p) === path) fds.add(fd);
      return fd;
    },
    closeSync: (fd: number) => {
      fds.delete(fd);
      real.closeSync(fd);
    },
    [name]: (fd: number, ...rest: unknown[]) => {
      if (hit(fd)) {
        const callback = rest.at(-1);
        if (name === 'fdatasync' && typeof callback === 'function') {
          setImmediate(() => (callback as (e: Error) => void)(error()));
          return undefined;
        }
        throw error();
      }
      return (real[name] as (...a: unknown[]) => unknown)(fd, ...rest);
    },
  });
  syncBuiltinESMExports();
  try {
    return await body();
  } finally {
    Object.assign(fs, real);
    syncBuiltinESMExports();
  }
}

for (const [name, code] of [
  ['writeSync', 'ENOSPC'],
  ['fdatasyncSync', 'EIO'],
  ['fdatasync', 'EIO'],
] as const) {
  test(`a WAL whose ${name} fails (${code}) refuses every later write and sync, and reopens with every acknowledged record`, async () => {
    for (const n of [1, 2, 3, 5, 8, 13]) {
      await withDir(async (dir) => {
        const random = rng(n);
        const path = join(dir, 'wal.log');
        const written: Buffer[] = [];
        let acked = 0;
        let failed: StorageError | null = null;
        await failing(path, name, n, code, async () => {
          const { wal } = openWal(path);
          for (let step = 0; step < 80 && failed === null; step++) {
            written.push(payload(n, written.length, 1 + Math.floor(random() * 300)));
            try {
              const r = random();
              if (r < 0.4) {
                wal.append(written.at(-1)!, true);
                acked = written.length;
              } else if (r < 0.8) {
                wal.append(written.at(-1)!, false);
                const covers = written.length;
                await new Promise<void>((resolve, reject) =>
                  wal.syncAsync((e) => (e === null ? resolve() : reject(e))),
                );
                acked = covers;
              } else {
                wal.append(written.at(-1)!, false);
              }
            } catch (error) {
              assert.ok(error instanceof StorageError, String(error));
              assert.equal(error.code, 'StorageIoFailed', error.message);
              assert.equal(error.path, path);
              failed = error;
            }
          }
          assert.ok(failed !== null, `call ${n} of ${name} was never made`);
          // Failed for good: nothing more is written or reported durable.
          assert.throws(() => wal.append(payload(n, 999, 10), true), {
            code: 'StorageIoFailed',
          });
          assert.throws(() => wal.sync(), { code: 'StorageIoFailed' });
          await assert.rejects(
            new Promise<void>((resolve, reject) => {
              try {
                wal.syncAsync((e) => (e === null ? resolve() : reject(e)));
              } catch (e) {
                reject(e);
              }
            }),
            { code: 'StorageIoFailed' },
          );
          wal.close();
        });
        const { wal } = openWal(path);
        const records = wal.readAll();
        records.forEach((r, k) => assert.deepEqual(Buffer.from(r), written[k], `record ${k}`));
        assert.ok(records.length >= acked, `${records.length} records, ${acked} acknowledged`);
        wal.close();
      });
    }
  });
}

test('a block read that fails (EIO) is a StorageError (a peer is not served it), and the log goes on', () =>
  withDir((dir) => {
    const path = join(dir, 'blocks.log');
    const blocks = openFileBlockStore(path);
    for (let h = 1; h <= 3; h++) blocks.save(h, payload(7, h, 200));
    // Every read fails for a moment (the store's descriptor was opened before any hook could see it).
    const realRead = fs.readSync;
    Object.assign(fs, {
      readSync: () => {
        throw Object.assign(new Error('EIO: injected, readSync'), { code: 'EIO', syscall: 'read' });
      },
    });
    syncBuiltinESMExports();
    try {
      assert.throws(
        () => blocks.load(2),
        (error: unknown) => {
          assert.ok(error instanceof StorageError, String(error));
          assert.equal(error.code, 'StorageIoFailed', error.message);
          assert.equal(error.path, path);
          return true;
        },
      );
    } finally {
      Object.assign(fs, { readSync: realRead });
      syncBuiltinESMExports();
    }
    // One failed read fails nothing else: the block reads, and writes go on.
    assert.deepEqual(Buffer.from(blocks.load(2)!), payload(7, 2, 200));
    blocks.save(4, payload(7, 4, 200));
    assert.deepEqual(Buffer.from(blocks.load(4)!), payload(7, 4, 200));
    blocks.close();
  }));

test('an existing data directory whose parent cannot be read or synced still opens; a new one refuses with StorageIoFailed', () =>
  withDir((dir) => {
    const existing = join(dir, 'home', 'data');
    fs.mkdirSync(existing, { recursive: true });
    const parent = join(dir, 'home');
    const realOpen = fs.openSync;
    // The parent refuses to be opened, as a directory we may not read does (EACCES).
    Object.assign(fs, {
      openSync: (p: fs.PathLike, ...rest: unknown[]) => {
        if (String(p) === parent) {
          throw Object.assign(new Error(`EACCES: permission denied, open '${parent}'`), {
            code: 'EACCES',
          });
        }
        return (realOpen as (...a: unknown[]) => number)(p, ...rest);
      },
    });
    syncBuiltinESMExports();
    try {
      makeDirectoryDurable(existing);
      // A directory made now needs its entry synced in that parent: refused, typed.
      assert.throws(
        () => makeDirectoryDurable(join(parent, 'new')),
        (error: unknown) => {
          assert.ok(error instanceof StorageError, String(error));
          assert.equal(error.code, 'StorageIoFailed', error.message);
          return true;
        },
      );
    } finally {
      Object.assign(fs, { openSync: realOpen });
      syncBuiltinESMExports();
    }
  }));

test('openStorage syncs the entry of every directory above its data directory, up to the root, from a relative path too; one it may not open is passed over', () =>
  withDir((dir) => {
    const data = join(dir, 'nodes', 'v0', 'data');
    fs.mkdirSync(data, { recursive: true });
    const refused = join(dir, 'nodes');
    const opened: string[] = [];
    const realOpen = fs.openSync;
    Object.assign(fs, {
      openSync: (p: fs.PathLike, ...rest: unknown[]) => {
        if (fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() === true) {
          opened.push(resolve(String(p)));
        }
        // One ancestor refuses to be opened, as a directory we may not read does (EACCES).
        if (resolve(String(p)) === refused) {
          throw Object.assign(new Error(`EACCES: permission denied, open '${refused}'`), {
            code: 'EACCES',
          });
        }
        return (realOpen as (...a: unknown[]) => number)(p, ...rest);
      },
    });
    syncBuiltinESMExports();
    try {
      const storage = openStorage(relative(process.cwd(), data));
      storage.close();
      const wanted: string[] = [];
      for (let at = fs.realpathSync(data); dirname(at) !== at; at = dirname(at)) {
        wanted.push(dirname(at));
      }
      assert.ok(wanted.includes('/'), `the root among ${wanted.join(', ')}`);
      for (const parent of wanted) {
        assert.ok(opened.includes(parent), `${parent} synced (opened: ${opened.join(', ')})`);
      }
      // The root has no entry to sync: nothing to open.
      opened.length = 0;
      makeDirectoryDurable('/', true);
      assert.deepEqual(opened, []);
    } finally {
      Object.assign(fs, { openSync: realOpen });
      syncBuiltinESMExports();
    }
  }));
