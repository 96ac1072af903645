// The loop's synced WAL records when the WAL syncs on libuv's pool
// (Wal.syncAsync): nothing after such a record (a signed vote's broadcast, the
// next input) happens before its sync reports durable, and a failed sync
// halts the node. One validator, so it commits alone; its WAL's syncs are
// held until the test releases them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { NodeLoop, coalesceSyncs, lastCheckpoint } from '../../src/node/loop.ts';
import type { Effect } from '../../src/consensus/index.ts';
import { MemoryHub } from '../../src/node/network.ts';
import type { PeerNetwork } from '../../src/node/network.ts';
import { restoreApp } from '../../src/node/restore.ts';
import { openStorage } from '../../src/node/storage/index.ts';
import type { Storage, Wal } from '../../src/node/storage/index.ts';
import { StorageError } from '../../src/node/storage/errors.ts';
import {
  LOOP_QUEUED_MESSAGE_BYTES_MAX,
  LOOP_QUEUED_MESSAGE_OVERHEAD_BYTES,
  MESSAGE_BYTES_MAX,
} from '../../src/lib/limits.ts';
import {
  FAST_TIMEOUTS,
  HashChainApp,
  signerOf,
  tempDir,
  testGenesis,
  testKey,
  verifierFor,
  waitFor,
} from './helpers.ts';

/** A file WAL whose async syncs wait for release(); appended and durable counts kept. */
class HeldWal implements Wal {
  appended = 0;
  durable = 0;
  /** Pass syncs straight through instead of holding them. */
  passThrough = false;
  /** Make the next async sync fail. */
  failNext = false;
  /** A block saved since the block store's last barrier (set by startSolo's block store). */
  blocksUnflushed = false;
  /** Signed records appended while a block waited for its barrier. */
  signedBeforeBarrier = 0;
  private readonly held: (() => void)[] = [];
  private closed = false;

  constructor(private readonly inner: Wal) {}

  get heldCount(): number {
    return this.held.length;
  }

  release(): void {
    this.held.shift()!();
  }

  firstIndex(): number {
    return this.inner.firstIndex();
  }
  nextIndex(): number {
    return this.inner.nextIndex();
  }
  append(record: Uint8Array, sync: boolean): number {
    // Tag 2: a signed record (consensus codec.ts, WAL_TAG).
    if (record[0] === 2 && this.blocksUnflushed) this.signedBeforeBarrier++;
    const index = this.inner.append(record, sync);
    this.appended++;
    if (sync) this.durable = this.appended;
    return index;
  }
  sync(): void {
    this.inner.sync();
    this.durable = this.appended;
  }
  syncAsync(done: (error: Error | null) => void): void {
    const covers = this.appended;
    if (this.failNext) {
      this.failNext = false;
      setImmediate(() => done(new StorageError('StorageIoFailed', 'wal.log', null, 'EIO')));
      return;
    }
    const finish = (): void => {
      if (this.closed) return;
      this.inner.sync();
      this.durable = Math.max(this.durable, covers);
      done(null);
    };
    if (this.passThrough) setImmediate(finish);
    else this.held.push(finish);
  }
  readAll(): Uint8Array[] {
    return this.inner.readAll();
  }
  truncateBefore(index: number): void {
    this.inner.truncateBefore(index);
    this.durable = this.appended;
  }
  close(): void {
    this.closed = true;
    this.inner.close();
  }
}

interface Solo {
  loop: NodeLoop;
  app: HashChainApp;
  wal: HeldWal;
  storage: Storage;
  /** Consensus frames sent, each with whether every WAL record before it was durable then. */
  sent: boolean[];
}

function startSolo(dir: string, passThrough = false): Solo {
  const key = testKey(0);
  const genesis = testGenesis([key]);
  const storage = openStorage(dir);
  const wal = new HeldWal(storage.wal);
  wal.passThrough = passThrough;
  const inner0 = storage.blocks;
  const blocks: Storage['blocks'] = Object.create(inner0) as Storage['blocks'];
  blocks.saveDeferred = (height, bytes) => {
    inner0.saveDeferred!(height, bytes);
    wal.blocksUnflushed = true;
  };
  blocks.flush = () => {
    inner0.flush!();
    wal.blocksUnflushed = false;
  };
  const held: Storage = {
    wal,
    blocks,
    snapshots: storage.snapshots,
    close: () => {
      wal.close();
      storage.close();
    },
  };
  const { app } = restoreApp(
    held,
    lastCheckpoint(wal.readAll()),
    () => new HashChainApp(genesis.appHash),
    (bytes) => HashChainApp.fromSnapshot(bytes),
  );
  const inner = new MemoryHub().join('v0');
  const sent: boolean[] = [];
  const network: PeerNetwork = {
    start: () => inner.start(),
    stop: () => inner.stop(),
    send: () => sent.push(wal.durable === wal.appended),
    broadcast: () => sent.push(wal.durable === wal.appended),
    onMessage: (handler) => inner.onMessage(handler),
    peerCount: () => 0,
  };
  const loop = new NodeLoop({
    genesis,
    timeouts: FAST_TIMEOUTS,
    signer: signerOf(key, genesis.chainId),
    verifier: verifierFor(genesis.chainId),
    app,
    storage: held,
    network,
    reap: () => [],
    snapshotEveryHeights: 0,
    snapshotsKept: 1,
    walSyncInBackground: true,
  });
  loop.start();
  return { loop, app, wal, storage: held, sent };
}

test('a signed message leaves only once the WAL record before it is durable; inputs wait in order', async () => {
  const tmp = tempDir('zomma-walsync-');
  const solo = startSolo(tmp.dir);
  try {
    // Height 1: the proposal's record is appended and its sync held.
    await waitFor(() => solo.wal.heldCount === 1, 20_000, 'the proposal record waits for its sync');
    assert.deepEqual(solo.sent, [], 'nothing signed has left');
    assert.ok(solo.wal.durable < solo.wal.appended);
    const inputs = solo.loop.stats.inputs;
    // An input arriving meanwhile waits: the replica does not handle it yet.
    solo.loop.onConsensusMessage('v9', new Uint8Array([1, 2, 3]));
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(solo.loop.stats.inputs, inputs, 'no input handled while the sync runs');
    assert.equal(solo.app.height, 0);

    // Each release lets exactly what follows the synced record happen.
    let releases = 0;
    while (solo.app.height < 1) {
      await waitFor(() => solo.wal.heldCount > 0 || solo.app.height >= 1, 20_000, 'next sync');
      if (solo.wal.heldCount === 0) break;
      solo.wal.release();
      releases++;
    }
    // Alone, a validator signs its proposal, prevote and precommit in one
    // batch: one sync covers the three (coalesceSyncs).
    assert.equal(releases, 1, `proposal and votes synced together (${releases})`);
    assert.ok(solo.loop.stats.inputs > inputs, 'the waiting input was handled after the sync');
    assert.ok(solo.sent.length > 0, 'the signed messages left after their syncs');
    assert.ok(
      solo.sent.every((durable) => durable),
      'every send found the WAL durable',
    );

    solo.wal.passThrough = true;
    if (solo.wal.heldCount > 0) solo.wal.release();
    await waitFor(() => solo.app.height >= 4, 10_000, 'height 4');
    assert.ok(solo.sent.every((durable) => durable));
    // Restart reads a signed record after a checkpoint as proof that its
    // block was synced, so even one appended without its own sync follows
    // the block store's barrier.
    assert.equal(solo.wal.signedBeforeBarrier, 0);
    assert.equal(solo.loop.haltReport, null);
    assert.ok(solo.loop.stats.walSyncs > 0, 'async syncs are counted');
  } finally {
    solo.loop.stop();
    solo.storage.close();
    tmp.remove();
  }
});

test('a failed async WAL sync halts the node before anything signed leaves', async () => {
  const tmp = tempDir('zomma-walsync-');
  const solo = startSolo(tmp.dir, true);
  try {
    await waitFor(() => solo.app.height >= 2, 10_000, 'height 2');
    const sentBefore = solo.sent.length;
    solo.wal.failNext = true;
    await waitFor(() => solo.loop.haltReport !== null, 20_000, 'halted');
    assert.equal(solo.loop.haltReport!.code, 'StorageIoFailed');
    assert.equal(solo.loop.isRunning, false);
    // At most the sends that followed syncs completed before the failing one.
    const sentAtHalt = solo.sent.length;
    assert.ok(sentAtHalt >= sentBefore);
    assert.ok(solo.sent.every((durable) => durable));
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(solo.sent.length, sentAtHalt, 'nothing sent after the halt');
  } finally {
    solo.loop.stop();
    solo.storage.close();
    tmp.remove();
  }
});

test('a sync that finishes after stop() performs nothing', async () => {
  const tmp = tempDir('zomma-walsync-');
  const solo = startSolo(tmp.dir);
  try {
    await waitFor(() => solo.wal.heldCount === 1, 20_000, 'a sync held');
    solo.loop.stop();
    solo.wal.release();
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.deepEqual(solo.sent, []);
    assert.equal(solo.app.height, 0);
    assert.equal(solo.loop.haltReport, null);
  } finally {
    solo.storage.close();
    tmp.remove();
  }
});

test('peer messages arriving while a sync runs are held up to LOOP_QUEUED_MESSAGE_BYTES_MAX; past it they are dropped', async () => {
  const tmp = tempDir('zomma-walsync-');
  const solo = startSolo(tmp.dir);
  try {
    await waitFor(() => solo.wal.heldCount === 1, 20_000, 'a record waits for its sync');
    const inputs = solo.loop.stats.inputs;
    // A peer floods while the disk stalls: a quarter of a full message each.
    const chunk = new Uint8Array(MESSAGE_BYTES_MAX / 4);
    const fits = Math.floor(
      LOOP_QUEUED_MESSAGE_BYTES_MAX / (chunk.length + LOOP_QUEUED_MESSAGE_OVERHEAD_BYTES),
    );
    for (let i = 0; i < fits + 10; i++) solo.loop.onConsensusMessage('v9', chunk);
    assert.equal(solo.loop.stats.messagesDropped, 10);
    // Once the sync reports durable, what was held is handled and the node goes on.
    solo.wal.passThrough = true;
    solo.wal.release();
    await waitFor(() => solo.loop.stats.inputs >= inputs + fits, 10_000, 'held inputs handled');
    solo.loop.onConsensusMessage('v9', chunk);
    await waitFor(() => solo.app.height >= 2, 10_000, 'height 2');
    assert.equal(solo.loop.stats.messagesDropped, 10, 'room again once drained');
    assert.equal(solo.loop.haltReport, null);
  } finally {
    solo.loop.stop();
    solo.storage.close();
    tmp.remove();
  }
});

test('empty peer messages arriving while a sync runs are held within the same bound: each counts for its overhead', async () => {
  const tmp = tempDir('zomma-walsync-');
  const solo = startSolo(tmp.dir);
  try {
    await waitFor(() => solo.wal.heldCount === 1, 20_000, 'a record waits for its sync');
    const inputs = solo.loop.stats.inputs;
    // A consensus frame may be its channel byte alone: an empty payload, a few bytes on the wire.
    const fits = Math.floor(LOOP_QUEUED_MESSAGE_BYTES_MAX / LOOP_QUEUED_MESSAGE_OVERHEAD_BYTES);
    const empty = new Uint8Array(0);
    for (let i = 0; i < fits + 1_000; i++) solo.loop.onConsensusMessage('v9', empty);
    assert.equal(solo.loop.stats.messagesDropped, 1_000);
    solo.wal.passThrough = true;
    solo.wal.release();
    await waitFor(() => solo.loop.stats.inputs >= inputs + fits, 10_000, 'held inputs handled');
    await waitFor(() => solo.app.height >= 2, 10_000, 'height 2');
    assert.equal(solo.loop.haltReport, null);
  } finally {
    solo.loop.stop();
    solo.storage.close();
    tmp.remove();
  }
});

test('coalesceSyncs: synced records with only sends, timeouts and unsynced records between share the last sync; the sends wait for it', () => {
  const signed = (n: number): Effect => ({
    kind: 'persist',
    record: new Uint8Array([2, n]),
    sync: true,
  });
  const logged = (n: number): Effect => ({
    kind: 'persist',
    record: new Uint8Array([1, n]),
    sync: false,
  });
  const checkpoint: Effect = { kind: 'persist', record: new Uint8Array([0, 9]), sync: true };
  const broadcast = (n: number): Effect => ({ kind: 'broadcast', bytes: new Uint8Array([n]) });
  const timeout: Effect = {
    kind: 'scheduleTimeout',
    timeout: { height: 1, round: 0, step: 1 },
    delayMs: 10,
  };
  const unsynced = (e: Effect): Effect => ({ ...e, sync: false }) as Effect;

  // A proposer's batch: its proposal, then its prevote.
  assert.deepEqual(
    coalesceSyncs([
      logged(1),
      signed(1),
      broadcast(1),
      timeout,
      logged(2),
      signed(2),
      broadcast(2),
    ]),
    [logged(1), unsynced(signed(1)), timeout, logged(2), signed(2), broadcast(1), broadcast(2)],
  );
  // Three in a row, and what follows the last stays after its sends.
  assert.deepEqual(
    coalesceSyncs([
      signed(1),
      broadcast(1),
      signed(2),
      broadcast(2),
      signed(3),
      broadcast(3),
      timeout,
    ]),
    [
      unsynced(signed(1)),
      unsynced(signed(2)),
      signed(3),
      broadcast(1),
      broadcast(2),
      broadcast(3),
      timeout,
    ],
  );
  // A checkpoint (it may rotate the WAL) or any other effect between keeps both syncs.
  const apart: Effect[] = [signed(1), broadcast(1), checkpoint, signed(2), broadcast(2)];
  assert.deepEqual(coalesceSyncs(apart), apart);
  const built: Effect[] = [
    signed(1),
    broadcast(1),
    { kind: 'buildProposal', height: 2, round: 0 },
    signed(2),
  ];
  assert.deepEqual(coalesceSyncs(built), built);
  const one: Effect[] = [logged(1), signed(1), broadcast(1), timeout];
  assert.equal(coalesceSyncs(one), one, 'a single sync: the batch as it is');
});

test('coalesceSyncs over random batches: every send finds durable each record that was durable before it, in the same order, with no more syncs', () => {
  // Effects numbered by their place in the batch, so the output can be traced back.
  const effectOf = (kind: number, n: number): Effect => {
    const id = new Uint8Array([0, n]);
    switch (kind) {
      case 0:
        return { kind: 'persist', record: new Uint8Array([2, n]), sync: true };
      case 1:
        return { kind: 'persist', record: new Uint8Array([1, n]), sync: true };
      case 2:
        return { kind: 'persist', record: new Uint8Array([1, n]), sync: false };
      case 3:
        return { kind: 'persist', record: new Uint8Array([0, n]), sync: true };
      case 4:
        return { kind: 'broadcast', bytes: id };
      case 5:
        return { kind: 'send', to: 'v1', bytes: id };
      case 6:
        return { kind: 'scheduleTimeout', timeout: { height: 1, round: n, step: 1 }, delayMs: 1 };
      default:
        return { kind: 'buildProposal', height: 1, round: n };
    }
  };
  const idOf = (effect: Effect): number => {
    switch (effect.kind) {
      case 'persist':
        return effect.record[1]!;
      case 'send':
      case 'broadcast':
        return effect.bytes[1]!;
      case 'scheduleTimeout':
        return effect.timeout.round;
      case 'buildProposal':
        return effect.round;
      default:
        throw new Error('unexpected effect');
    }
  };
  // For each send (by id), the records durable when it is performed. A
  // checkpoint's sync is counted as none (it syncs only when it rotates).
  const durableAtSends = (effects: readonly Effect[]): Map<number, Set<number>> => {
    const appended: number[] = [];
    let durable = 0;
    const out = new Map<number, Set<number>>();
    for (const effect of effects) {
      if (effect.kind === 'persist') {
        appended.push(idOf(effect));
        if (effect.sync && effect.record[0] !== 0) durable = appended.length;
      } else if (effect.kind === 'send' || effect.kind === 'broadcast') {
        out.set(idOf(effect), new Set(appended.slice(0, durable)));
      }
    }
    return out;
  };
  const syncs = (effects: readonly Effect[]): number =>
    effects.filter((e) => e.kind === 'persist' && e.sync && e.record[0] !== 0).length;
  fc.assert(
    fc.property(fc.array(fc.nat(7), { maxLength: 40 }), (kinds) => {
      const batch = kinds.map((kind, n) => effectOf(kind, n));
      const out = coalesceSyncs(batch);
      assert.deepEqual(
        out.map(idOf).sort((a, b) => a - b),
        batch.map(idOf),
        'the same effects',
      );
      const order = (keep: (e: Effect) => boolean, effects: readonly Effect[]) =>
        effects.filter(keep).map(idOf);
      const isSend = (e: Effect) => e.kind === 'send' || e.kind === 'broadcast';
      assert.deepEqual(order(isSend, out), order(isSend, batch), 'sends in order');
      assert.deepEqual(
        order((e) => !isSend(e), out),
        order((e) => !isSend(e), batch),
        'everything else in order',
      );
      const before = durableAtSends(batch);
      const after = durableAtSends(out);
      for (const [send, durable] of before) {
        for (const record of durable) assert.ok(after.get(send)!.has(record), `send ${send}`);
      }
      assert.ok(syncs(out) <= syncs(batch));
      // Only a synced record's sync is taken away, never a checkpoint's.
      for (let i = 0; i < out.length; i++) {
        const effect = out[i]!;
        const original = batch[idOf(effect)]!;
        if (
          effect.kind === 'persist' &&
          original.kind === 'persist' &&
          effect.sync !== original.sync
        )
          assert.notEqual(effect.record[0], 0);
      }
      // A synced record still ends the batch's records synced: none is left unsynced after the last sync.
      const lastSynced = (effects: readonly Effect[]): number => {
        for (let k = effects.length - 1; k >= 0; k--) {
          const e = effects[k]!;
          if (e.kind === 'persist' && e.sync && e.record[0] !== 0) return k;
        }
        return -1;
      };
      const inRecords = (effects: readonly Effect[], to: number) =>
        effects
          .slice(0, to + 1)
          .filter((e) => e.kind === 'persist')
          .map(idOf);
      if (lastSynced(batch) >= 0) {
        const covered = new Set(inRecords(out, lastSynced(out)));
        for (const record of inRecords(batch, lastSynced(batch))) assert.ok(covered.has(record));
      }
    }),
    { numRuns: 2_000, seed: 4 },
  );
});
