// The storage port's compliance suite (STYLE habit 3): every implementation of
// Storage (src/node/storage/types.ts) — the node's files, the simulator's
// memory — must pass it. Call runStorageCompliance from a .test.ts file with a
// factory for your implementation.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Storage } from '../../src/node/storage/types.ts';

/** One storage's life across restarts. */
export interface StorageHarness {
  /** Opens the storage: the same one every time, as a restarted process finds it. */
  open(): Storage;
  /**
   * Abandons an open storage as a crash would: no close, no sync. Unsynced
   * WAL records may survive or not; the suite accepts either, as long as what
   * survives is a prefix and every synced record is in it.
   */
  crash(storage: Storage): void;
  /** Frees everything the harness holds. */
  dispose(): void;
}

function bytesOf(n: number, length = 8 + (n % 50)): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (n * 131 + i * 7) & 0xff;
  return out;
}

function withStorage(make: () => StorageHarness, body: (h: StorageHarness) => void): void {
  const h = make();
  try {
    body(h);
  } finally {
    h.dispose();
  }
}

export function runStorageCompliance(name: string, make: () => StorageHarness): void {
  test(`${name}: a new WAL is empty and numbers records from 0`, () =>
    withStorage(make, (h) => {
      const s = h.open();
      assert.equal(s.wal.firstIndex(), 0);
      assert.equal(s.wal.nextIndex(), 0);
      assert.deepEqual(s.wal.readAll(), []);
      assert.equal(s.wal.append(bytesOf(1), false), 0);
      assert.equal(s.wal.append(new Uint8Array(0), true), 1);
      assert.equal(s.wal.nextIndex(), 2);
      assert.deepEqual(s.wal.readAll(), [bytesOf(1), new Uint8Array(0)]);
      s.close();
    }));

  test(`${name}: WAL records survive a clean close and a crash after sync`, () =>
    withStorage(make, (h) => {
      let s = h.open();
      const records = Array.from({ length: 20 }, (_, i) => bytesOf(i));
      for (const r of records) s.wal.append(r, false);
      s.wal.sync();
      h.crash(s);
      s = h.open();
      assert.deepEqual(s.wal.readAll(), records);
      s.wal.append(bytesOf(99), true);
      s.close();
      s = h.open();
      assert.deepEqual(s.wal.readAll(), [...records, bytesOf(99)]);
      assert.equal(s.wal.nextIndex(), 21);
      s.close();
    }));

  test(`${name}: after a crash the WAL holds a prefix that contains every synced record`, () =>
    withStorage(make, (h) => {
      let s = h.open();
      const appended: Uint8Array[] = [];
      for (let i = 0; i < 12; i++) {
        appended.push(bytesOf(i));
        s.wal.append(appended[i]!, i === 5);
      }
      h.crash(s);
      s = h.open();
      const after = s.wal.readAll();
      assert.ok(after.length >= 6 && after.length <= 12, `kept ${after.length}`);
      assert.deepEqual(after, appended.slice(0, after.length));
      assert.equal(s.wal.nextIndex(), after.length);
      s.close();
    }));

  test(`${name}: truncateBefore drops older records durably and indices go on`, () =>
    withStorage(make, (h) => {
      let s = h.open();
      for (let i = 0; i < 10; i++) s.wal.append(bytesOf(i), false);
      s.wal.truncateBefore(7);
      assert.equal(s.wal.firstIndex(), 7);
      assert.equal(s.wal.nextIndex(), 10);
      assert.deepEqual(s.wal.readAll(), [bytesOf(7), bytesOf(8), bytesOf(9)]);
      assert.equal(s.wal.append(bytesOf(10), true), 10);
      h.crash(s);
      s = h.open();
      assert.equal(s.wal.firstIndex(), 7);
      assert.deepEqual(s.wal.readAll(), [bytesOf(7), bytesOf(8), bytesOf(9), bytesOf(10)]);
      s.wal.truncateBefore(11);
      assert.deepEqual(s.wal.readAll(), []);
      assert.equal(s.wal.firstIndex(), 11);
      s.wal.truncateBefore(11);
      s.close();
      s = h.open();
      assert.equal(s.wal.firstIndex(), 11);
      assert.equal(s.wal.nextIndex(), 11);
      assert.equal(s.wal.append(bytesOf(11), true), 11);
      s.close();
    }));

  test(`${name}: WAL against a model under random appends, syncs, truncations and crashes`, () =>
    withStorage(make, (h) => {
      const op = fc.oneof(
        {
          weight: 6,
          arbitrary: fc.record({
            kind: fc.constant('append' as const),
            size: fc.nat(300),
            sync: fc.boolean(),
          }),
        },
        {
          weight: 1,
          arbitrary: fc.record({ kind: fc.constant('truncate' as const), keep: fc.nat(4) }),
        },
        { weight: 1, arbitrary: fc.constant({ kind: 'sync' as const }) },
        { weight: 1, arbitrary: fc.constant({ kind: 'crash' as const }) },
        { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
      );
      let round = 0;
      fc.assert(
        fc.property(fc.array(op, { maxLength: 25 }), (ops) => {
          // Each run starts from whatever the last left: the model is read back first.
          let s = h.open();
          let first = s.wal.firstIndex();
          let model = s.wal.readAll();
          let synced = model.length;
          for (const o of ops) {
            if (o.kind === 'append') {
              const r = bytesOf(round++, o.size);
              assert.equal(s.wal.append(r, o.sync), first + model.length);
              model.push(r);
              if (o.sync) synced = model.length;
            } else if (o.kind === 'sync') {
              s.wal.sync();
              synced = model.length;
            } else if (o.kind === 'truncate') {
              const cut = Math.max(0, model.length - o.keep);
              s.wal.truncateBefore(first + cut);
              first += cut;
              model = model.slice(cut);
              // A truncation rewrites durably what it keeps.
              synced = model.length;
            } else {
              if (o.kind === 'crash') h.crash(s);
              else s.close();
              s = h.open();
              const got = s.wal.readAll();
              assert.equal(s.wal.firstIndex(), first);
              assert.ok(got.length >= synced, `lost synced records: ${got.length} < ${synced}`);
              assert.deepEqual(got, model.slice(0, got.length));
              model = got;
              synced = got.length;
            }
            assert.equal(s.wal.nextIndex(), first + model.length);
          }
          assert.deepEqual(s.wal.readAll(), model);
          s.close();
        }),
        { numRuns: 25, seed: 2002 },
      );
    }));

  test(`${name}: the block store saves contiguous heights durably and loads them`, () =>
    withStorage(make, (h) => {
      let s = h.open();
      assert.equal(s.blocks.firstHeight(), 0);
      assert.equal(s.blocks.lastHeight(), 0);
      assert.equal(s.blocks.load(1), null);
      for (let height = 1; height <= 5; height++)
        s.blocks.save(height, bytesOf(height, 1000 + height));
      h.crash(s);
      s = h.open();
      assert.equal(s.blocks.firstHeight(), 1);
      assert.equal(s.blocks.lastHeight(), 5);
      for (let height = 1; height <= 5; height++) {
        assert.deepEqual(s.blocks.load(height), bytesOf(height, 1000 + height));
      }
      assert.equal(s.blocks.load(0), null);
      assert.equal(s.blocks.load(6), null);
      assert.equal(s.blocks.load(-1), null);
      s.close();
    }));

  test(`${name}: saving a held height again is a no-op with the same bytes and a BlockConflict with others`, () =>
    withStorage(make, (h) => {
      const s = h.open();
      s.blocks.save(1, bytesOf(1));
      s.blocks.save(2, bytesOf(2));
      s.blocks.save(2, bytesOf(2));
      s.blocks.save(1, bytesOf(1));
      assert.equal(s.blocks.lastHeight(), 2);
      assert.throws(() => s.blocks.save(2, bytesOf(3)), { code: 'BlockConflict' });
      assert.deepEqual(s.blocks.load(2), bytesOf(2));
      s.close();
    }));

  test(`${name}: a block store may start above height 1 (a node started from a snapshot)`, () =>
    withStorage(make, (h) => {
      let s = h.open();
      s.blocks.save(40, bytesOf(40));
      s.blocks.save(41, bytesOf(41));
      s.close();
      s = h.open();
      assert.equal(s.blocks.firstHeight(), 40);
      assert.equal(s.blocks.lastHeight(), 41);
      assert.equal(s.blocks.load(39), null);
      assert.deepEqual(s.blocks.load(40), bytesOf(40));
      s.close();
    }));

  test(`${name}: snapshots: latest, replace, prune to the last K, durable`, () =>
    withStorage(make, (h) => {
      let s = h.open();
      assert.equal(s.snapshots.latest(), null);
      assert.deepEqual(s.snapshots.heights(), []);
      for (const height of [10, 30, 20, 40]) s.snapshots.save(height, bytesOf(height, 3000));
      s.snapshots.save(30, bytesOf(31));
      assert.deepEqual(s.snapshots.heights(), [10, 20, 30, 40]);
      assert.deepEqual(s.snapshots.latest(), { height: 40, bytes: bytesOf(40, 3000) });
      assert.deepEqual(s.snapshots.load(30), bytesOf(31));
      assert.equal(s.snapshots.load(25), null);
      s.snapshots.prune(2);
      assert.deepEqual(s.snapshots.heights(), [30, 40]);
      h.crash(s);
      s = h.open();
      assert.deepEqual(s.snapshots.heights(), [30, 40]);
      assert.deepEqual(s.snapshots.latest(), { height: 40, bytes: bytesOf(40, 3000) });
      s.snapshots.prune(5);
      assert.deepEqual(s.snapshots.heights(), [30, 40]);
      s.snapshots.clear();
      h.crash(s);
      s = h.open();
      assert.deepEqual(s.snapshots.heights(), []);
      assert.equal(s.snapshots.latest(), null);
      s.close();
    }));

  test(`${name}: snapshots: a reader reads ranges of the snapshot it opened, pruned or replaced since`, () =>
    withStorage(make, (h) => {
      const s = h.open();
      const bytes = bytesOf(40, 3000);
      s.snapshots.save(40, bytes);
      assert.equal(s.snapshots.openReader(41), null);
      const reader = s.snapshots.openReader(40)!;
      assert.equal(reader.sizeBytes, 3000);
      assert.deepEqual(reader.read(0, 3000), bytes);
      assert.deepEqual(reader.read(1000, 7), bytes.subarray(1000, 1007));
      assert.deepEqual(reader.read(2999, 1), bytes.subarray(2999));
      s.snapshots.save(40, bytesOf(41, 10));
      assert.deepEqual(reader.read(5, 3), bytes.subarray(5, 8), 'replaced: still the one opened');
      const replaced = s.snapshots.openReader(40)!;
      assert.deepEqual(replaced.read(2, 8), bytesOf(41, 10).subarray(2));
      s.snapshots.save(50, bytesOf(50));
      s.snapshots.prune(1);
      assert.equal(s.snapshots.openReader(40), null);
      assert.deepEqual(replaced.read(0, 10), bytesOf(41, 10), 'pruned: still readable while open');
      reader.close();
      replaced.close();
      s.close();
    }));
}
