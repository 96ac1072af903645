// Seeded crash drivers: a sequence of WAL appends, syncs and rotations, of
// block saves (deferred and synced), flushes and prunes, and of snapshot saves
// and prunes runs on a model of the disk (crash_disk.ts) that records, before
// each call that changes it, what a crash there could leave: the process
// killed, the power cut with only synced bytes and directory entries kept,
// the call's write torn at every prefix, unsynced writes lost or kept in any
// order. Every such image must open, hold a prefix of what was written, and
// keep everything acknowledged as durable before the crash.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  openFileBlockStore,
  openFileSnapshotStore,
  openStorage,
  openWal,
} from '../../../src/node/storage/index.ts';
import type { CrashImage } from './crash_disk.ts';
import { CrashDisk, materialize, rng } from './crash_disk.ts';

function payload(seed: number, i: number, length: number): Buffer {
  return Buffer.from(Array.from({ length }, (_, j) => (seed * 131 + i * 31 + j * 7) & 0xff));
}

/** Memory-backed where there is one: the images are opened by the thousand, and an fsync there is free. */
const TMP = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

function withDirs(body: (work: string, scratch: string) => void): void {
  const work = mkdtempSync(join(TMP, 'zomma-crash-'));
  const scratch = mkdtempSync(join(TMP, 'zomma-crash-open-'));
  try {
    body(work, scratch);
  } finally {
    rmSync(work, { recursive: true, force: true });
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Opens every image in `scratch` with `check`, naming the image on a failure. */
function checkAll<M>(
  images: readonly CrashImage<M>[],
  scratch: string,
  check: (dir: string, model: M) => void,
): void {
  for (const image of images) {
    materialize(scratch, image.files);
    try {
      check(scratch, image.model);
    } catch (error) {
      const e = error instanceof Error ? error : new Error(String(error));
      e.message = `${image.label}: ${e.message}`;
      throw e;
    }
  }
}

interface WalModel {
  /** Every record ever appended, by index. */
  readonly written: ReadonlyMap<number, Buffer>;
  /** Records before this index were acknowledged durable (a synced append, a sync, a rotation, a close). */
  readonly acked: number;
}

for (const seed of [1, 2, 3, 4]) {
  test(`WAL crash driver (seed ${seed}): every crash image opens to a prefix holding every synced record`, async () => {
    const work = mkdtempSync(join(TMP, 'zomma-crash-'));
    const scratch = mkdtempSync(join(TMP, 'zomma-crash-open-'));
    try {
      const random = rng(seed);
      const written = new Map<number, Buffer>();
      let acked = 0;
      const disk = new CrashDisk<WalModel>(work, { written: new Map(), acked: 0 }, seed);
      const path = join(work, 'wal.log');
      disk.install();
      try {
        let wal = openWal(path).wal;
        const note = (): void => disk.note({ written: new Map(written), acked });
        for (let step = 0; step < 80; step++) {
          const r = random();
          if (r < 0.55) {
            const index = wal.nextIndex();
            const bytes = payload(seed, index, 1 + Math.floor(random() * 700));
            written.set(index, bytes);
            note();
            const sync = random() < 0.35;
            wal.append(bytes, sync);
            if (sync) acked = wal.nextIndex();
          } else if (r < 0.65) {
            wal.sync();
            acked = wal.nextIndex();
          } else if (r < 0.75) {
            // The node's sync on libuv's pool (Wal.syncAsync): acknowledged once it calls back.
            const covers = wal.nextIndex();
            await new Promise<void>((resolve, reject) =>
              wal.syncAsync((error) => (error === null ? resolve() : reject(error))),
            );
            acked = Math.max(acked, covers);
          } else if (r < 0.9) {
            const first = wal.firstIndex();
            const from = first + Math.floor(random() * (wal.nextIndex() - first + 1));
            wal.truncateBefore(from);
            // The rewritten file is synced whole (a truncation to the first index writes nothing).
            if (from > first) acked = wal.nextIndex();
          } else {
            wal.close();
            acked = wal.nextIndex();
            note();
            wal = openWal(path).wal;
          }
          note();
        }
        wal.close();
      } finally {
        disk.uninstall();
      }
      assert.ok(disk.images.length > 200, `few images: ${disk.images.length}`);
      checkAll(disk.images, scratch, (dir, model) => {
        const { wal } = openWal(join(dir, 'wal.log'));
        const records = wal.readAll();
        const base = wal.firstIndex();
        records.forEach((bytes, k) => {
          assert.deepEqual(Buffer.from(bytes), model.written.get(base + k), `record ${base + k}`);
        });
        assert.ok(
          base + records.length >= model.acked,
          `records up to ${base + records.length}, ${model.acked} acknowledged`,
        );
        wal.close();
      });
    } finally {
      rmSync(work, { recursive: true, force: true });
      rmSync(scratch, { recursive: true, force: true });
    }
  });
}

interface BlockModel {
  readonly written: ReadonlyMap<number, Buffer>;
  /** Heights up to this one were acknowledged durable (a save, a flush, a rewrite). */
  readonly acked: number;
}

for (const seed of [1, 2, 3, 4]) {
  test(`block log crash driver (seed ${seed}): deferred saves, flushes and prunes; every crash image opens and loads`, async () => {
    const work = mkdtempSync(join(TMP, 'zomma-crash-'));
    const scratch = mkdtempSync(join(TMP, 'zomma-crash-open-'));
    try {
      const random = rng(seed);
      const written = new Map<number, Buffer>();
      let acked = 0;
      const disk = new CrashDisk<BlockModel>(work, { written: new Map(), acked: 0 }, seed);
      const path = join(work, 'blocks.log');
      disk.install();
      try {
        let blocks = openFileBlockStore(path);
        const note = (): void => disk.note({ written: new Map(written), acked });
        let height = 1 + Math.floor(random() * 3);
        for (let step = 0; step < 80; step++) {
          const r = random();
          if (r < 0.6) {
            const bytes = payload(seed, height, 1 + Math.floor(random() * 1500));
            written.set(height, bytes);
            note();
            if (random() < 0.3) {
              blocks.save(height, bytes);
              acked = height;
            } else {
              blocks.saveDeferred(height, bytes);
            }
            height++;
          } else if (r < 0.7) {
            blocks.flush();
            acked = blocks.lastHeight();
          } else if (r < 0.8) {
            // Let background syncs finish (their callbacks run on the loop).
            await new Promise((resolve) => setImmediate(resolve));
          } else if (r < 0.92 && blocks.lastHeight() > 0) {
            const first = blocks.firstHeight();
            blocks.pruneBefore(first + Math.floor(random() * (blocks.lastHeight() - first + 1)));
          } else {
            blocks.close();
            acked = blocks.lastHeight();
            note();
            blocks = openFileBlockStore(path);
          }
          note();
        }
        blocks.close();
      } finally {
        disk.uninstall();
      }
      assert.ok(disk.images.length > 200, `few images: ${disk.images.length}`);
      checkAll(disk.images, scratch, (dir, model) => {
        const blocks = openFileBlockStore(join(dir, 'blocks.log'));
        const last = blocks.lastHeight();
        for (let h = blocks.firstHeight(); h <= last && last > 0; h++) {
          assert.deepEqual(Buffer.from(blocks.load(h)!), model.written.get(h), `block ${h}`);
        }
        assert.ok(last >= model.acked, `blocks up to ${last}, ${model.acked} acknowledged`);
        blocks.close();
      });
    } finally {
      rmSync(work, { recursive: true, force: true });
      rmSync(scratch, { recursive: true, force: true });
    }
  });
}

interface SnapshotModel {
  readonly written: ReadonlyMap<number, Buffer>;
  /** Heights saved and not pruned since: each must be there, whole. */
  readonly held: readonly number[];
}

test('snapshot crash driver: saves and prunes leave whole snapshots, every saved one kept', () =>
  withDirs((work, scratch) => {
    const random = rng(7);
    const written = new Map<number, Buffer>();
    const disk = new CrashDisk<SnapshotModel>(work, { written: new Map(), held: [] }, 7);
    const dir = join(work, 'snapshots');
    disk.install();
    try {
      const snapshots = openFileSnapshotStore(dir);
      for (let height = 1; height <= 12; height++) {
        const bytes = payload(7, height, 100 + Math.floor(random() * 3000));
        written.set(height, bytes);
        disk.note({ written: new Map(written), held: snapshots.heights() });
        snapshots.save(height, bytes);
        disk.note({ written: new Map(written), held: snapshots.heights() });
        if (random() < 0.4) {
          // Pruned ones may come back after a crash; the kept ones must stay.
          disk.note({ written: new Map(written), held: snapshots.heights().slice(-2) });
          snapshots.prune(2);
          disk.note({ written: new Map(written), held: snapshots.heights() });
        }
      }
    } finally {
      disk.uninstall();
    }
    checkAll(disk.images, scratch, (at, model) => {
      const snapshots = openFileSnapshotStore(join(at, 'snapshots'));
      const heights = snapshots.heights();
      for (const h of heights) {
        assert.deepEqual(Buffer.from(snapshots.load(h)!), model.written.get(h), `snapshot ${h}`);
      }
      for (const h of model.held) assert.ok(heights.includes(h), `snapshot ${h} lost`);
    });
  }));

interface StorageModel {
  readonly wal: WalModel;
  readonly blocks: BlockModel;
}

test('storage crash driver: a home whose data directory the first start creates keeps every synced WAL record and block', () =>
  withDirs((home, scratch) => {
    const random = rng(11);
    const walWritten = new Map<number, Buffer>();
    const blocksWritten = new Map<number, Buffer>();
    let walAcked = 0;
    let blocksAcked = 0;
    const snapshot = (): StorageModel => ({
      wal: { written: new Map(walWritten), acked: walAcked },
      blocks: { written: new Map(blocksWritten), acked: blocksAcked },
    });
    const disk = new CrashDisk<StorageModel>(home, snapshot(), 11);
    // Fewer images per point: the WAL and block drivers above cover torn and mixed writes.
    disk.mixedPerPoint = 1;
    disk.tornPerWrite = 2;
    disk.install();
    try {
      let storage = openStorage(join(home, 'data'));
      let height = 1;
      for (let step = 0; step < 40; step++) {
        const r = random();
        if (r < 0.45) {
          // A signed vote: the block log's barrier first, then the WAL's sync (loop.ts).
          const index = storage.wal.nextIndex();
          const bytes = payload(11, index, 50 + Math.floor(random() * 300));
          walWritten.set(index, bytes);
          disk.note(snapshot());
          const sync = random() < 0.5;
          if (sync) storage.blocks.flush();
          blocksAcked = sync ? storage.blocks.lastHeight() : blocksAcked;
          disk.note(snapshot());
          storage.wal.append(bytes, sync);
          if (sync) walAcked = storage.wal.nextIndex();
        } else if (r < 0.8) {
          const bytes = payload(12, height, 200 + Math.floor(random() * 900));
          blocksWritten.set(height, bytes);
          disk.note(snapshot());
          storage.blocks.saveDeferred(height++, bytes);
        } else if (r < 0.9) {
          storage.snapshots.save(height - 1, payload(13, height, 300));
          storage.snapshots.prune(2);
        } else {
          storage.close();
          walAcked = storage.wal.nextIndex();
          blocksAcked = storage.blocks.lastHeight();
          disk.note(snapshot());
          storage = openStorage(join(home, 'data'));
        }
        disk.note(snapshot());
      }
      storage.close();
    } finally {
      disk.uninstall();
    }
    assert.ok(disk.images.length > 50, `few images: ${disk.images.length}`);
    checkAll(disk.images, scratch, (dir, model) => {
      const storage = openStorage(join(dir, 'data'));
      try {
        const records = storage.wal.readAll();
        const base = storage.wal.firstIndex();
        records.forEach((bytes, k) => {
          assert.deepEqual(Buffer.from(bytes), model.wal.written.get(base + k), `record ${k}`);
        });
        assert.ok(base + records.length >= model.wal.acked, `WAL lost synced records`);
        const last = storage.blocks.lastHeight();
        for (let h = storage.blocks.firstHeight(); h <= last && last > 0; h++) {
          assert.deepEqual(Buffer.from(storage.blocks.load(h)!), model.blocks.written.get(h));
        }
        assert.ok(
          last >= model.blocks.acked,
          `blocks up to ${last}, ${model.blocks.acked} flushed`,
        );
        for (const h of storage.snapshots.heights()) {
          assert.ok(storage.snapshots.load(h) !== null, `snapshot ${h}`);
        }
      } finally {
        storage.close();
      }
    });
  }));

// `zomma init` makes the home with its missing parents (`--home nodes/v0`), none of their entries synced.
for (const home of [['home'], ['nodes', 'v0']]) {
  test(`storage crash driver: a home made just before the first start, as \`zomma init\` makes it (${home.join('/')}), keeps every synced WAL record`, () =>
    withDirs((root, scratch) => {
      const written: Buffer[] = [];
      const disk = new CrashDisk<number>(root, 0, 17);
      disk.mixedPerPoint = 1;
      disk.tornPerWrite = 2;
      disk.install();
      try {
        // The home, its parents and its data directory, no entry synced into its parent yet.
        for (let i = 1; i <= home.length; i++) mkdirSync(join(root, ...home.slice(0, i)));
        mkdirSync(join(root, ...home, 'data'));
        const storage = openStorage(join(root, ...home, 'data'));
        for (let i = 0; i < 3; i++) {
          written.push(payload(17, i, 100));
          storage.wal.append(written[i]!, true);
          disk.note(i + 1);
        }
        storage.close();
      } finally {
        disk.uninstall();
      }
      checkAll(disk.images, scratch, (dir, acked) => {
        const storage = openStorage(join(dir, ...home, 'data'));
        try {
          const records = storage.wal.readAll();
          assert.ok(records.length >= acked, `${records.length} WAL records, ${acked} synced`);
          records.forEach((r, i) => assert.deepEqual(Buffer.from(r), written[i], `record ${i}`));
        } finally {
          storage.close();
        }
      });
    }));
}
