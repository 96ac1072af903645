// A seeded, single-threaded driver for crash-restart runs of whole nodes:
// four ZommaNodes (replica, loop, exchange application, results) over an
// in-process network with seeded latency, a virtual clock, and a disk model
// per node that a crash cuts back to what it made durable (each log keeps its
// synced records and a seeded prefix of the rest, as a power cut or a killed
// process leaves it). A node is "killed" at a chosen point (a WAL append
// before its fsync, after an fsync before what waited for it, mid block,
// results or snapshot write, a rotation, or any moment) by an exception
// thrown from its storage, and restarted later from what its disk holds.
//
// It checks what must hold across all that: every vote and proposal any
// process ever let out (signer, height, round, step) carries one signature;
// every node executes the same block with the same appHash at each height;
// a restarted replica is locked at least where its durable precommits say;
// nothing a node published is lost (its results and blocks come back); the
// double-sign watch never pauses an honest restart; injected equivocation is
// committed once; and the nodes catch up once the faults stop.

import { existsSync, mkdtempSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writer, decode, encode } from '../../src/codec/wire.ts';
import type { Message, Vote, WalRecord } from '../../src/consensus/index.ts';
import {
  SIGN_KIND_CONSENSUS,
  STEP,
  VOTE_TYPE,
  messageCodec,
  proposalSignBytes,
  voteSignBytes,
  walRecordCodec,
} from '../../src/consensus/index.ts';
import { evidenceHashOf, encodeMessage } from '../../src/consensus/memo.ts';
import type { KeyPair } from '../../src/crypto/index.ts';
import { sha256, sign, verify } from '../../src/crypto/index.ts';
import { devnetGenesis } from '../../src/exchange/index.ts';
import type { Genesis } from '../../src/exchange/index.ts';
import { bytesEqual, toHex, utf8 } from '../../src/lib/bytes.ts';
import { Prng } from '../../src/lib/prng.ts';
import type { Clock } from '../../src/node/clock.ts';
import { CHANNEL, frame, unframe } from '../../src/node/framing.ts';
import type { Log } from '../../src/node/log.ts';
import { DEVNET_ASSETS, GbmPriceSource } from '../../src/node/oracle_source.ts';
import type { FrameHandler, PeerNetwork } from '../../src/node/network.ts';
import { ZommaNode, consensusGenesisOf } from '../../src/node/node.ts';
import type { CommittedBlock } from '../../src/node/node.ts';
import type { BlockDetails, BlockResults, ResultsStore } from '../../src/node/results.ts';
import { blockResultsCodec } from '../../src/node/results.ts';
import { openFileResultsStore } from '../../src/node/results.ts';
import { StorageError, openStorage } from '../../src/node/storage/index.ts';
import type {
  BlockStore,
  FileStorage,
  SnapshotReader,
  SnapshotStore,
  Storage,
  Wal,
} from '../../src/node/storage/index.ts';
import { testKey } from './helpers.ts';

/** Thrown from a node's storage to end its process at that point; nothing after it runs. */
export class CrashSignal extends Error {
  constructor(readonly point: string) {
    super(`crashed at ${point}`);
  }
}

// --- time --------------------------------------------------------------------------

interface Scheduled {
  readonly atMs: number;
  readonly seq: number;
  readonly run: () => void;
}

/** Events by (time, sequence): the seeded latencies decide the order. */
class Scheduler {
  nowMs: number;
  private seq = 0;
  private readonly heap: Scheduled[] = [];

  constructor(startMs: number) {
    this.nowMs = startMs;
  }

  at(atMs: number, run: () => void): void {
    const q = this.heap;
    q.push({ atMs, seq: this.seq++, run });
    let i = q.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!earlier(q[i]!, q[parent]!)) break;
      [q[i], q[parent]] = [q[parent]!, q[i]!];
      i = parent;
    }
  }

  /** The next event's time, or Infinity when none is due. */
  nextAtMs(): number {
    return this.heap[0]?.atMs ?? Infinity;
  }

  pop(): Scheduled | undefined {
    const q = this.heap;
    if (q.length === 0) return undefined;
    const top = q[0]!;
    const last = q.pop()!;
    if (q.length > 0) {
      q[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < q.length && earlier(q[l]!, q[m]!)) m = l;
        if (r < q.length && earlier(q[r]!, q[m]!)) m = r;
        if (m === i) break;
        [q[i], q[m]] = [q[m]!, q[i]!];
        i = m;
      }
    }
    return top;
  }
}

function earlier(a: Scheduled, b: Scheduled): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
}

// --- the disk ------------------------------------------------------------------------

/** An append-only log on the model disk: `durable` records survive any crash; a prefix of the rest may. */
class LogDisk {
  base = 0;
  records: Uint8Array[] = [];
  durable = 0;

  get unsynced(): number {
    return this.records.length - this.durable;
  }

  /** What a crash leaves: the durable records and `kept` of the others, in order. */
  cut(kept: number): number {
    const lost = this.unsynced - kept;
    this.records.length = this.durable + kept;
    return lost;
  }
}

/**
 * What a crash keeps of the unsynced records: everything (a killed process:
 * the page cache survives), nothing (a power cut before any writeback), a
 * seeded prefix of each log, or the WAL's whole tail and nothing unsynced of
 * the others (its writeback ran first).
 */
export type CrashMode = 'kill' | 'power' | 'mixed' | 'walFirst';

/** One node's disk: what outlives its processes. */
export class NodeDisk {
  readonly wal = new LogDisk();
  /** WAL index below which a sync of a running node acknowledged the records (a restart may not drop them). */
  walAcked = 0;
  readonly blocks = new LogDisk();
  readonly results = new LogDisk();
  readonly snapshots = new Map<number, Uint8Array>();
  /** Records lost in crashes, by log. */
  readonly lost = { wal: 0, blocks: 0, results: 0 };

  /** A crash: each log keeps its durable records and a seeded prefix of the rest. */
  crash(prng: Prng, mode: CrashMode): void {
    const keep = (log: LogDisk): number => {
      if (mode === 'kill' || (mode === 'walFirst' && log === this.wal)) return log.unsynced;
      if (mode === 'power' || mode === 'walFirst') return 0;
      return prng.int(log.unsynced + 1);
    };
    this.lost.wal += this.wal.cut(keep(this.wal));
    this.lost.blocks += this.blocks.cut(keep(this.blocks));
    this.lost.results += this.results.cut(keep(this.results));
  }

  /** Opening fsyncs what the last process left (the record logs do): it is durable from now on. */
  open(): void {
    this.wal.durable = this.wal.records.length;
    this.blocks.durable = this.blocks.records.length;
    this.results.durable = this.results.records.length;
  }
}

/** The crash points a storage call passes, with what it is about to do. */
export type PointKind =
  | 'walAppend'
  | 'walSigned'
  | 'walCheckpoint'
  | 'walSyncStart'
  | 'walSynced'
  | 'walRotate'
  | 'blockSave'
  | 'blockFlush'
  | 'resultsSave'
  | 'resultsFlush'
  | 'snapshotSave'
  | 'snapshotPrune'
  | 'blocksPrune';

export const POINT_KINDS: readonly PointKind[] = [
  'walAppend',
  'walSigned',
  'walCheckpoint',
  'walSyncStart',
  'walSynced',
  'walRotate',
  'blockSave',
  'blockFlush',
  'resultsSave',
  'resultsFlush',
  'snapshotSave',
  'snapshotPrune',
  'blocksPrune',
];

/** One process of a node: its storage answers only while it lives. */
interface Life {
  readonly index: number;
  readonly incarnation: number;
  dead: boolean;
}

/** WAL tag bytes (consensus codec.ts, WAL_TAG). */
const TAG_CHECKPOINT = 0;
const TAG_SIGNED = 2;

class ModelWal implements Wal {
  private readonly ackedAtOpen: number;

  constructor(
    private readonly disk: NodeDisk,
    private readonly life: Life,
    private readonly cluster: CrashCluster,
  ) {
    this.ackedAtOpen = disk.walAcked;
  }

  private get log(): LogDisk {
    return this.disk.wal;
  }

  firstIndex(): number {
    return this.log.base;
  }
  nextIndex(): number {
    return this.log.base + this.log.records.length;
  }
  append(record: Uint8Array, sync: boolean): number {
    this.cluster.alive(this.life);
    const kind: PointKind =
      record[0] === TAG_CHECKPOINT
        ? 'walCheckpoint'
        : record[0] === TAG_SIGNED
          ? 'walSigned'
          : 'walAppend';
    this.cluster.point(this.life, kind, 'before');
    this.log.records.push(record.slice());
    this.cluster.point(this.life, kind, 'after');
    if (sync) this.sync();
    return this.nextIndex() - 1;
  }
  sync(): void {
    this.cluster.alive(this.life);
    this.log.durable = this.log.records.length;
    this.disk.walAcked = Math.max(this.disk.walAcked, this.nextIndex());
  }
  syncAsync(done: (error: Error | null) => void): void {
    this.cluster.alive(this.life);
    const covers = this.log.records.length;
    const base = this.log.base;
    this.cluster.point(this.life, 'walSyncStart', 'before');
    this.cluster.point(this.life, 'walSyncStart', 'after');
    this.cluster.later(this.life, this.cluster.syncDelayMs(), () => {
      this.cluster.point(this.life, 'walSynced', 'before');
      // A rotation meanwhile made everything durable itself.
      if (this.log.base === base) {
        this.log.durable = Math.max(this.log.durable, covers);
        this.disk.walAcked = Math.max(this.disk.walAcked, base + covers);
      }
      this.cluster.point(this.life, 'walSynced', 'after');
      done(null);
    });
  }
  readAll(): Uint8Array[] {
    return this.log.records.map((r) => r.slice());
  }
  truncateBefore(index: number): void {
    this.cluster.alive(this.life);
    if (index === this.log.base) return;
    this.cluster.point(this.life, 'walRotate', 'before');
    const log = this.log;
    log.records = log.records.slice(index - log.base);
    log.base = index;
    // The rewritten file is synced whole.
    log.durable = log.records.length;
    this.disk.walAcked = Math.max(this.disk.walAcked, this.nextIndex());
    this.cluster.point(this.life, 'walRotate', 'after');
  }
  dropFrom(index: number): void {
    this.cluster.alive(this.life);
    if (index < this.ackedAtOpen) {
      throw new StorageError(
        'StorageCorrupt',
        'wal.log',
        index,
        `refusing to drop records below ${this.ackedAtOpen}`,
      );
    }
    const log = this.log;
    log.records.length = index - log.base;
    log.durable = log.records.length;
  }
  close(): void {}
}

class ModelBlocks implements BlockStore {
  constructor(
    private readonly disk: NodeDisk,
    private readonly life: Life,
    private readonly cluster: CrashCluster,
  ) {}

  private get log(): LogDisk {
    return this.disk.blocks;
  }
  firstHeight(): number {
    return this.log.records.length === 0 ? 0 : this.log.base;
  }
  lastHeight(): number {
    return this.log.records.length === 0 ? 0 : this.log.base + this.log.records.length - 1;
  }
  save(height: number, bytes: Uint8Array): void {
    this.store(height, bytes);
    this.flush();
  }
  saveDeferred(height: number, bytes: Uint8Array): void {
    this.store(height, bytes);
    const log = this.log;
    const covers = log.records.length;
    const base = log.base;
    // The file store syncs each deferred save in the background.
    this.cluster.later(this.life, this.cluster.syncDelayMs(), () => {
      if (log.base === base) log.durable = Math.max(log.durable, covers);
    });
  }
  private store(height: number, bytes: Uint8Array): void {
    this.cluster.alive(this.life);
    const log = this.log;
    if (log.records.length > 0 && height <= this.lastHeight()) {
      if (height < log.base || !bytesEqual(this.load(height)!, bytes)) {
        throw new StorageError('BlockConflict', 'blocks.log', null, `height ${height}`);
      }
      return;
    }
    if (log.records.length === 0) log.base = height;
    else if (height !== this.lastHeight() + 1) throw new Error(`block ${height} after a gap`);
    this.cluster.point(this.life, 'blockSave', 'before');
    log.records.push(bytes.slice());
    this.cluster.point(this.life, 'blockSave', 'after');
  }
  flush(): void {
    this.cluster.alive(this.life);
    if (this.log.durable === this.log.records.length) return;
    this.cluster.point(this.life, 'blockFlush', 'before');
    this.log.durable = this.log.records.length;
    this.cluster.point(this.life, 'blockFlush', 'after');
  }
  sizeOf(height: number): number | null {
    return this.load(height)?.length ?? null;
  }
  load(height: number): Uint8Array | null {
    const log = this.log;
    if (log.records.length === 0 || height < log.base) return null;
    return log.records[height - log.base] ?? null;
  }
  pruneBefore(height: number): void {
    this.cluster.alive(this.life);
    const log = this.log;
    if (log.records.length === 0 || height <= log.base) return;
    this.cluster.point(this.life, 'blocksPrune', 'before');
    // Durable at once: the file store may keep dropped heights longer, never fewer.
    log.records = log.records.slice(height - log.base);
    log.durable = Math.max(0, log.durable - (height - log.base));
    log.base = height;
    this.cluster.point(this.life, 'blocksPrune', 'after');
  }
  close(): void {}
}

class ModelSnapshots implements SnapshotStore {
  constructor(
    private readonly disk: NodeDisk,
    private readonly life: Life,
    private readonly cluster: CrashCluster,
  ) {}

  save(height: number, bytes: Uint8Array): void {
    this.cluster.alive(this.life);
    this.cluster.point(this.life, 'snapshotSave', 'before');
    this.disk.snapshots.set(height, bytes.slice());
    this.cluster.point(this.life, 'snapshotSave', 'after');
  }
  load(height: number): Uint8Array | null {
    return this.disk.snapshots.get(height) ?? null;
  }
  openReader(height: number): SnapshotReader | null {
    const bytes = this.disk.snapshots.get(height);
    if (bytes === undefined) return null;
    return {
      sizeBytes: bytes.length,
      read: (offset, length) => bytes.slice(offset, offset + length),
      close: () => {},
    };
  }
  latest(): { height: number; bytes: Uint8Array } | null {
    const h = this.heights().at(-1);
    return h === undefined ? null : { height: h, bytes: this.disk.snapshots.get(h)! };
  }
  heights(): number[] {
    return [...this.disk.snapshots.keys()].sort((a, b) => a - b);
  }
  prune(keep: number): void {
    this.cluster.alive(this.life);
    const heights = this.heights();
    if (heights.length <= keep) return;
    this.cluster.point(this.life, 'snapshotPrune', 'before');
    for (const h of heights.slice(0, heights.length - keep)) this.disk.snapshots.delete(h);
    this.cluster.point(this.life, 'snapshotPrune', 'after');
  }
  clear(): void {
    this.cluster.alive(this.life);
    this.disk.snapshots.clear();
  }
}

/**
 * The results log as FileResultsStore keeps it: one record per height, a gap
 * restarts it, saves unsynced until flush() (and a background sync every few).
 */
class ModelResults implements ResultsStore {
  private unsynced = 0;

  constructor(
    private readonly disk: NodeDisk,
    private readonly life: Life,
    private readonly cluster: CrashCluster,
  ) {}

  private get log(): LogDisk {
    return this.disk.results;
  }
  lastHeight(): number {
    const log = this.log;
    return log.records.length === 0 ? 0 : log.base + log.records.length - 1;
  }
  save(results: BlockResults): void {
    this.cluster.alive(this.life);
    const log = this.log;
    const height = results.height;
    if (log.records.length > 0 && height <= this.lastHeight()) return;
    this.cluster.point(this.life, 'resultsSave', 'before');
    if (log.records.length === 0 || height !== this.lastHeight() + 1) {
      // A first record, or a gap: the log restarts here (rewritten, durably).
      log.records = [];
      log.durable = 0;
      log.base = height;
      this.cluster.noteResultsRestart(height);
    }
    log.records.push(encode(blockResultsCodec, results));
    this.cluster.point(this.life, 'resultsSave', 'after');
    if (++this.unsynced >= 4) {
      this.unsynced = 0;
      const covers = log.records.length;
      const base = log.base;
      this.cluster.later(this.life, this.cluster.syncDelayMs(), () => {
        if (log.base === base) log.durable = Math.max(log.durable, covers);
      });
    }
  }
  load(height: number): BlockResults | null {
    const log = this.log;
    const bytes = log.records[height - log.base];
    return bytes === undefined || height < log.base ? null : decode(blockResultsCodec, bytes);
  }
  saveDetails(_height: number, _details: BlockDetails): void {}
  flush(): void {
    this.cluster.alive(this.life);
    if (this.log.durable === this.log.records.length) return;
    this.cluster.point(this.life, 'resultsFlush', 'before');
    this.log.durable = this.log.records.length;
    this.cluster.point(this.life, 'resultsFlush', 'after');
  }
  close(): void {}
}

// --- the file backend -----------------------------------------------------------------

/**
 * A node's real storage (FileStorage and the results log, on a memory-backed
 * directory) with the same crash points. Async syncs run on this thread and
 * report through the scheduler, so a run stays deterministic. A crash leaves
 * every byte written (a killed process: the page cache survives), then cuts
 * each log somewhere past the bytes its last finished sync covered (a power
 * cut tearing the unsynced tail), as its mode says.
 */
class FileBacked {
  readonly storage: Storage;
  readonly results: ResultsStore;
  /** Each log's size when its last sync finished, as this process knows it. */
  readonly synced = { wal: 0, blocks: 0, results: 0 };
  private readonly files: FileStorage;
  private readonly resultsLog: ResultsStore;

  constructor(
    readonly dir: string,
    life: Life,
    cluster: CrashCluster,
  ) {
    this.files = openStorage(dir);
    this.resultsLog = openFileResultsStore(join(dir, 'results.log'));
    this.synced.wal = this.size('wal.log');
    this.synced.blocks = this.size('blocks.log');
    this.synced.results = this.size('results.log');
    const files = this.files;
    const synced = this.synced;
    const size = (name: string): number => this.size(name);
    const point = (kind: PointKind, side: 'before' | 'after'): void =>
      cluster.point(life, kind, side);
    const alive = (): void => cluster.alive(life);
    const wal: Wal = {
      firstIndex: () => files.wal.firstIndex(),
      nextIndex: () => files.wal.nextIndex(),
      append(record, sync) {
        alive();
        const kind: PointKind =
          record[0] === TAG_CHECKPOINT
            ? 'walCheckpoint'
            : record[0] === TAG_SIGNED
              ? 'walSigned'
              : 'walAppend';
        point(kind, 'before');
        const index = files.wal.append(record, false);
        point(kind, 'after');
        if (sync) this.sync();
        return index;
      },
      sync() {
        alive();
        files.wal.sync();
        synced.wal = size('wal.log');
      },
      syncAsync(done) {
        alive();
        point('walSyncStart', 'before');
        point('walSyncStart', 'after');
        cluster.later(life, cluster.syncDelayMs(), () => {
          point('walSynced', 'before');
          files.wal.sync();
          synced.wal = size('wal.log');
          point('walSynced', 'after');
          done(null);
        });
      },
      readAll: () => (alive(), files.wal.readAll()),
      truncateBefore(index) {
        alive();
        if (index === files.wal.firstIndex()) return;
        point('walRotate', 'before');
        files.wal.truncateBefore(index);
        synced.wal = size('wal.log');
        point('walRotate', 'after');
      },
      dropFrom(index) {
        alive();
        files.wal.dropFrom(index);
        synced.wal = size('wal.log');
      },
      close: () => {},
    };
    const blocks: BlockStore = {
      firstHeight: () => files.blocks.firstHeight(),
      lastHeight: () => files.blocks.lastHeight(),
      save(height, bytes) {
        alive();
        point('blockSave', 'before');
        files.blocks.save(height, bytes);
        synced.blocks = size('blocks.log');
        point('blockSave', 'after');
      },
      saveDeferred(height, bytes) {
        alive();
        point('blockSave', 'before');
        files.blocks.saveDeferred(height, bytes);
        point('blockSave', 'after');
      },
      flush() {
        alive();
        point('blockFlush', 'before');
        files.blocks.flush();
        synced.blocks = size('blocks.log');
        point('blockFlush', 'after');
      },
      sizeOf: (height) => (alive(), files.blocks.sizeOf(height)),
      load: (height) => (alive(), files.blocks.load(height)),
      pruneBefore(height) {
        alive();
        point('blocksPrune', 'before');
        files.blocks.pruneBefore(height);
        point('blocksPrune', 'after');
      },
      close: () => {},
    };
    const snapshots: SnapshotStore = {
      save(height, bytes) {
        alive();
        point('snapshotSave', 'before');
        files.snapshots.save(height, bytes);
        point('snapshotSave', 'after');
      },
      load: (height) => (alive(), files.snapshots.load(height)),
      openReader: (height) => (alive(), files.snapshots.openReader(height)),
      latest: () => files.snapshots.latest(),
      heights: () => files.snapshots.heights(),
      prune(keep) {
        alive();
        point('snapshotPrune', 'before');
        files.snapshots.prune(keep);
        point('snapshotPrune', 'after');
      },
      clear() {
        alive();
        files.snapshots.clear();
      },
    };
    this.storage = { wal, blocks, snapshots, close: () => {} };
    const results = this.resultsLog;
    this.results = {
      lastHeight: () => results.lastHeight(),
      save(r) {
        alive();
        if (r.height <= results.lastHeight()) return;
        point('resultsSave', 'before');
        results.save(r);
        point('resultsSave', 'after');
      },
      load: (height) => (alive(), results.load(height)),
      saveDetails: (height, details) => results.saveDetails(height, details),
      flush() {
        alive();
        point('resultsFlush', 'before');
        results.flush();
        synced.results = size('results.log');
        point('resultsFlush', 'after');
      },
      close: () => {},
    };
  }

  size(name: string): number {
    const path = join(this.dir, name);
    return existsSync(path) ? statSync(path).size : 0;
  }

  /** Ends the process's hold on the files, then cuts each log as the crash mode says. */
  crash(prng: Prng, mode: CrashMode): { walCut: number } {
    try {
      this.resultsLog.close();
    } catch {
      // A failed log keeps what it had.
    }
    try {
      this.files.close(false);
    } catch {
      // Idem.
    }
    const cut = (name: 'wal' | 'blocks' | 'results', file: string): number => {
      const size = this.size(file);
      const from = this.synced[name];
      if (mode === 'kill' || size <= from || (mode === 'walFirst' && name === 'wal')) return 0;
      const to = mode === 'power' || mode === 'walFirst' ? from : from + prng.int(size - from + 1);
      truncateSync(join(this.dir, file), to);
      return size - to;
    };
    const walCut = cut('wal', 'wal.log');
    cut('blocks', 'blocks.log');
    cut('results', 'results.log');
    return { walCut };
  }

  /** Closes everything at the end of a run. */
  close(): void {
    this.resultsLog.close();
    this.files.close();
  }
}

// --- the network ---------------------------------------------------------------------

class ModelNetwork implements PeerNetwork {
  handler: FrameHandler | null = null;

  constructor(
    private readonly cluster: CrashCluster,
    private readonly life: Life,
  ) {}

  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  send(peer: string, bytes: Uint8Array): void {
    this.cluster.transmit(this.life, peer, bytes);
  }
  broadcast(bytes: Uint8Array): void {
    for (const peer of this.cluster.peerIds) {
      if (peer !== this.cluster.peerIds[this.life.index])
        this.cluster.transmit(this.life, peer, bytes);
    }
  }
  onMessage(handler: FrameHandler): void {
    this.handler = handler;
  }
  peerCount(): number {
    return this.cluster.peerIds.length - 1;
  }
}

// --- the cluster -----------------------------------------------------------------------

export interface CrashClusterOptions {
  readonly seed: number;
  /** Crashes over the fault window. */
  readonly crashes: number;
  /** At most this many nodes down at once (1 keeps a quorum up). */
  readonly maxDown: 1 | 2;
  /** Virtual time the faults last. */
  readonly faultWindowMs: number;
  /**
   * Equivocations to inject: second prevotes signed with one validator's key
   * (at distinct heights and rounds), each handed to the other nodes.
   */
  readonly equivocations?: number;
  /** Points to crash at; default all. */
  readonly points?: readonly PointKind[];
  /** Take the points in turn (each side of each) rather than at random. */
  readonly pointsInTurn?: boolean;
  readonly snapshotEveryHeights?: number;
  readonly snapshotsKept?: number;
  readonly blocksKept?: number;
  readonly commitPauseMs?: number;
  readonly walRotateBytes?: number;
  /** Chance a message is lost (the gossip timer makes up for it). */
  readonly lossRate?: number;
  /** How long a round-0 proposal waits for transactions (none come: it waits this long). */
  readonly proposeWaitMs?: number;
  /** Validators observe prices (vote extensions feed the exchange's oracle). */
  readonly oracle?: boolean;
  /** The longest a crashed node stays down (default 2.5 s: peers get far ahead, it catches up). */
  readonly downMsMax?: number;
  /** Periods of heavy loss within the window (rounds fail, validators lock on different values). */
  readonly storms?: number;
  /** The model disk in memory (default), or the node's real files in a temporary directory. */
  readonly backend?: 'memory' | 'file';
  /** What crashes keep of unsynced records; default a seeded mix of all. */
  readonly modes?: readonly CrashMode[];
  /** Chance (per mille) a restart is armed to crash again at a point on its way up. */
  readonly crashOnRestartPerMille?: number;
}

export interface Finding {
  readonly what: string;
  readonly atMs: number;
}

/** How long an armed point may wait to be passed before the node is crashed where it is. */
const ARMED_MS_MAX = 800;

const TIMEOUTS = {
  proposeMs: 300,
  prevoteMs: 120,
  precommitMs: 120,
  deltaMs: 60,
  maxMs: 1_500,
  gossipMs: 250,
} as const;

interface Member {
  readonly key: KeyPair;
  readonly disk: NodeDisk;
  life: Life;
  node: ZommaNode | null;
  network: ModelNetwork | null;
  /** The file backend's storage of the live process. */
  files: FileBacked | null;
  /** Crash at the next pass of this point (armed by the plan). */
  armed: { kind: PointKind; side: 'before' | 'after'; mode?: CrashMode } | null;
  downUntilMs: number;
  incarnations: number;
  /** Heights this node's processes published (executed and handed to listeners). */
  published: number;
}

export class CrashCluster {
  readonly sched: Scheduler;
  readonly prng: Prng;
  readonly genesis: Genesis;
  readonly peerIds: string[];
  readonly members: Member[] = [];
  readonly findings: Finding[] = [];
  /** (signer, height, round, step) → the one signature it may carry. */
  private readonly released = new Map<string, string>();
  /** Double signs already found (each is reported once, not per copy sent). */
  private readonly reported = new Set<string>();
  /** Signature (hex) → signer index, or -1 (not one of ours). */
  private readonly signers = new Map<string, number>();
  /** "signer/height" → the values of its released prevotes and precommits by round. */
  private readonly votesReleased = new Map<
    string,
    { prevote: Map<number, string>; precommit: Map<number, string> }
  >();
  /** "height/round" → the released proposal's block hash and proof-of-lock round. */
  private readonly proposals = new Map<string, { hash: string; polRound: number }>();
  /** Height → block hash and appHash, as the first node to execute it saw them. */
  readonly chain = new Map<number, { blockHash: string; appHash: string }>();
  /** Evidence hashes committed, with the height of each block carrying them. */
  readonly evidenceCommitted = new Map<string, number[]>();
  readonly stats = {
    crashes: 0,
    restarts: 0,
    byPoint: new Map<string, number>(),
    signedReleased: 0,
    equivocations: 0,
    evidenceSeen: 0,
    locksChecked: 0,
    lockChanges: 0,
    checkpointsDropped: 0,
    walTornBytes: 0,
    evidenceLost: 0,
    resultsRestarts: 0,
  };
  private readonly options: CrashClusterOptions;
  private readonly writer = new Writer(256);
  /** The validator whose key signs the injected equivocations, and where it did. */
  private readonly offender: number;
  private readonly equivocated: { height: number; round: number }[] = [];
  /** Validator (hex key) → heights whose blocks jailed it. */
  readonly jailings = new Map<string, number[]>();
  private stormUntilMs = 0;
  /** Points armed so far (pointsInTurn). */
  private turns = 0;
  /** The file backend's directory (one subdirectory per node). */
  private readonly root: string | null;
  private readonly log: (index: number) => Log;

  constructor(options: CrashClusterOptions) {
    this.options = options;
    this.prng = new Prng(options.seed);
    this.sched = new Scheduler(1_700_000_000_000);
    const keys = [0, 1, 2, 3].map((i) => testKey(i));
    this.genesis = {
      ...devnetGenesis(keys.map((k) => k.publicKey)),
      genesisTimeMs: this.sched.nowMs - 1_000,
      listing: undefined,
      ...(options.oracle === true ? {} : { oracle: undefined }),
    };
    this.peerIds = keys.map((k) => toHex(k.publicKey));
    this.offender = this.prng.int(4);
    this.root =
      options.backend === 'file'
        ? mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'zomma-crash-cluster-'))
        : null;
    this.log = (index) => {
      const note = (level: string) => (fields: object, message: string) => {
        if (message.includes('two conflicting votes')) this.stats.evidenceSeen++;
        if (message.includes('never reached the disk')) this.stats.checkpointsDropped++;
        if (message.includes('never signed')) {
          this.find(`node ${index}: signing paused (${JSON.stringify(fields)})`);
        }
        if ((level === 'error' || level === 'fatal') && message.startsWith('node halted')) {
          const life = this.members[index]?.life;
          if (life !== undefined && !life.dead) this.find(`node ${index}: ${message}`);
        }
      };
      return {
        debug: () => {},
        info: () => {},
        warn: note('warn'),
        error: note('error'),
        fatal: note('fatal'),
      };
    };
    for (const key of keys) {
      this.members.push({
        key,
        disk: new NodeDisk(),
        life: { index: this.members.length, incarnation: 0, dead: true },
        node: null,
        network: null,
        files: null,
        armed: null,
        downUntilMs: 0,
        incarnations: 0,
        published: 0,
      });
    }
  }

  find(what: string): void {
    if (this.findings.length < 50) this.findings.push({ what, atMs: this.sched.nowMs });
  }

  // --- processes -------------------------------------------------------------------

  /** Starts (or restarts) node `index` from its disk, to crash at `armed` if given. */
  start(index: number, armed: Member['armed'] = null): void {
    const member = this.members[index]!;
    member.disk.open();
    const life: Life = { index, incarnation: ++member.incarnations, dead: false };
    member.life = life;
    member.armed = armed;
    if (armed !== null) {
      this.sched.at(this.sched.nowMs + ARMED_MS_MAX, () => {
        if (!life.dead && member.armed !== null) this.crash(index, 'timeout');
      });
    }
    let storage: Storage;
    let results: ResultsStore;
    if (this.root === null) {
      storage = {
        wal: new ModelWal(member.disk, life, this),
        blocks: new ModelBlocks(member.disk, life, this),
        snapshots: new ModelSnapshots(member.disk, life, this),
        close: () => {},
      };
      results = new ModelResults(member.disk, life, this);
    } else {
      try {
        member.files = new FileBacked(join(this.root, `v${index}`), life, this);
      } catch (error) {
        this.find(`node ${index}: storage refused to open: ${String(error)}`);
        life.dead = true;
        return;
      }
      storage = member.files.storage;
      results = member.files.results;
    }
    const walBefore = storage.wal.readAll();
    const network = new ModelNetwork(this, life);
    const clock: Clock = {
      nowMs: () => this.sched.nowMs,
      after: (delayMs, fire) => {
        let live = true;
        this.later(life, delayMs, () => {
          if (live) fire();
        });
        return () => {
          live = false;
        };
      },
    };
    let node: ZommaNode;
    try {
      node = new ZommaNode({
        genesis: this.genesis,
        consensusGenesis: consensusGenesisOf(this.genesis),
        key: member.key,
        storage,
        network,
        prices:
          this.options.oracle === true
            ? new GbmPriceSource(
                DEVNET_ASSETS,
                this.options.seed,
                index,
                this.genesis.genesisTimeMs,
              )
            : null,
        timeouts: TIMEOUTS,
        snapshotEveryHeights: this.options.snapshotEveryHeights ?? 3,
        snapshotsKept: this.options.snapshotsKept ?? 2,
        blocksKept: this.options.blocksKept ?? 0,
        commitPauseMs: this.options.commitPauseMs ?? 0,
        proposeWaitMs: this.options.proposeWaitMs ?? 0,
        walRotateBytes: this.options.walRotateBytes ?? 6_000,
        clock,
        log: this.log(index),
        results,
        checkInvariants: false,
      });
    } catch (error) {
      if (error instanceof CrashSignal) return;
      this.find(`node ${index}: restart failed: ${String(error)}`);
      life.dead = true;
      return;
    }
    member.node = node;
    member.network = network;
    node.subscribe((b) => this.onPublished(index, life, b));
    try {
      node.loop.start();
    } catch (error) {
      if (!(error instanceof CrashSignal)) throw error;
      return;
    }
    if (life.dead) return;
    const halt = node.loop.haltReport;
    if (halt !== null) {
      this.find(`node ${index}: halted at start: ${halt.code}: ${halt.message}`);
      life.dead = true;
      return;
    }
    if (member.incarnations > 1) {
      this.stats.restarts++;
      this.checkLock(index, walBefore);
    }
  }

  /** Ends node `index`'s process now: its disk keeps what a crash keeps. */
  crash(index: number, point: string): void {
    const member = this.members[index]!;
    if (member.life.dead) return;
    const modes = this.options.modes ?? (['kill', 'power', 'mixed', 'mixed', 'walFirst'] as const);
    const mode = member.armed?.mode ?? modes[this.prng.int(modes.length)]!;
    member.life.dead = true;
    member.node = null;
    member.network = null;
    member.armed = null;
    if (member.files !== null) {
      this.stats.walTornBytes += member.files.crash(this.prng, mode).walCut;
      member.files = null;
    } else {
      member.disk.crash(this.prng, mode);
    }
    member.downUntilMs = this.sched.nowMs + 20 + this.prng.int(this.options.downMsMax ?? 2_500);
    this.stats.crashes++;
    this.stats.byPoint.set(point, (this.stats.byPoint.get(point) ?? 0) + 1);
    this.sched.at(member.downUntilMs, () => {
      if (!member.life.dead) return;
      const again = this.prng.int(1_000) < (this.options.crashOnRestartPerMille ?? 0);
      this.start(index, again ? this.randomPoint(this.options.points ?? POINT_KINDS) : null);
    });
  }

  /** Crashes node `index` when it next passes `kind` (on `side`), keeping what `mode` says. */
  armAt(index: number, kind: PointKind, side: 'before' | 'after', mode: CrashMode): void {
    this.members[index]!.armed = { kind, side, mode };
  }

  /** A storage call of a live process; a dead one's calls do nothing past the crash. */
  alive(life: Life): void {
    if (life.dead) throw new CrashSignal('after death');
  }

  /** A crash point: the process ends here if its plan says so. */
  point(life: Life, kind: PointKind, side: 'before' | 'after'): void {
    const member = this.members[life.index]!;
    const armed = member.armed;
    if (life.dead || armed === null || armed.kind !== kind || armed.side !== side) return;
    this.crash(life.index, `${kind}/${side}`);
    throw new CrashSignal(`${kind}/${side}`);
  }

  /** Runs `run` after `delayMs` if the process is still alive then. */
  later(life: Life, delayMs: number, run: () => void): void {
    this.sched.at(this.sched.nowMs + delayMs, () => {
      if (!life.dead) run();
    });
  }

  syncDelayMs(): number {
    return this.prng.int(3);
  }

  noteResultsRestart(height: number): void {
    if (height > 1) this.stats.resultsRestarts++;
  }

  // --- the network -------------------------------------------------------------------

  transmit(life: Life, peer: string, bytes: Uint8Array): void {
    if (life.dead) return;
    this.noteReleased(life.index, bytes);
    const to = this.peerIds.indexOf(peer);
    if (to < 0) return;
    const loss = this.sched.nowMs < this.stormUntilMs ? 0.6 : (this.options.lossRate ?? 0);
    if (this.prng.int(1_000) < loss * 1_000) return;
    const copy = bytes.slice();
    const from = this.peerIds[life.index]!;
    this.sched.at(this.sched.nowMs + 1 + this.prng.int(8), () => this.deliver(to, from, copy));
  }

  private deliver(to: number, from: string, bytes: Uint8Array): void {
    const member = this.members[to]!;
    if (member.life.dead || member.network === null) return;
    try {
      member.network.handler?.(from, bytes);
    } catch (error) {
      if (!(error instanceof CrashSignal)) throw error;
    }
  }

  /** Every signed vote and proposal that leaves a process: one signature per (signer, height, round, step). */
  private noteReleased(sender: number, bytes: Uint8Array): void {
    let payload: Uint8Array;
    try {
      const unframed = unframe(bytes);
      if (unframed.channel !== CHANNEL.consensus) return;
      payload = unframed.payload;
    } catch {
      return;
    }
    let message: Message;
    try {
      message = decode(messageCodec, payload);
    } catch {
      return;
    }
    if (message.kind === 'vote') {
      const v = message.vote;
      const kind =
        v.type === VOTE_TYPE.prevote ? SIGN_KIND_CONSENSUS.prevote : SIGN_KIND_CONSENSUS.precommit;
      const signBytes = voteSignBytes(
        this.writer,
        v.type,
        v.height,
        v.round,
        v.blockHash,
        v.timestampMs,
        v.extension,
      );
      const signer = this.signerOf(kind, signBytes, v.signature, sender);
      if (signer < 0) return;
      const step = v.type === VOTE_TYPE.prevote ? 'prevote' : 'precommit';
      if (!this.noteSigned(signer, v.height, v.round, step, v.signature)) return;
      const value = v.blockHash === null ? 'nil' : toHex(v.blockHash);
      this.votesOf(signer, v.height)[step].set(v.round, value);
      if (
        signer === this.offender &&
        signer === sender &&
        v.type === VOTE_TYPE.prevote &&
        this.equivocated.length < (this.options.equivocations ?? 0) &&
        this.equivocated.every((e) => e.height !== v.height) &&
        this.prng.int(4) === 0
      ) {
        this.equivocate(signer, v);
      }
    } else if (message.kind === 'proposal') {
      const p = message.proposal;
      const signBytes = proposalSignBytes(this.writer, p.height, p.round, p.polRound, p.blockHash);
      const signer = this.signerOf(SIGN_KIND_CONSENSUS.proposal, signBytes, p.signature, sender);
      if (signer < 0) return;
      if (!this.noteSigned(signer, p.height, p.round, 'proposal', p.signature)) return;
      this.proposals.set(`${p.height}/${p.round}`, {
        hash: toHex(p.blockHash),
        polRound: p.polRound,
      });
    }
  }

  /** The signature released for (signer, height, round, step), if any (step: prevote, precommit, proposal). */
  releasedSignature(signer: number, height: number, round: number, step: string): string | null {
    return this.released.get(`${signer}/${height}/${round}/${step}`) ?? null;
  }

  /** False if this (signer, height, round, step) was released before (with the same signature or, a finding, another). */
  private noteSigned(
    signer: number,
    height: number,
    round: number,
    step: string,
    signature: Uint8Array,
  ): boolean {
    const key = `${signer}/${height}/${round}/${step}`;
    const sig = toHex(signature);
    const before = this.released.get(key);
    if (before === undefined) {
      this.released.set(key, sig);
      this.stats.signedReleased++;
      return true;
    }
    if (before !== sig && !this.reported.has(key)) {
      this.reported.add(key);
      this.find(`validator ${signer} signed two ${step}s at ${height}/${round}`);
    }
    return false;
  }

  private votesOf(
    signer: number,
    height: number,
  ): { prevote: Map<number, string>; precommit: Map<number, string> } {
    const key = `${signer}/${height}`;
    let votes = this.votesReleased.get(key);
    if (votes === undefined) {
      votes = { prevote: new Map(), precommit: new Map() };
      this.votesReleased.set(key, votes);
    }
    return votes;
  }

  /** Which of our keys signed these bytes (its sender first: a node mostly sends its own), or -1. */
  private signerOf(
    kind: number,
    signBytes: Uint8Array,
    signature: Uint8Array,
    sender: number,
  ): number {
    const sig = toHex(signature);
    const known = this.signers.get(sig);
    if (known !== undefined) return known;
    const order = [sender, ...[0, 1, 2, 3].filter((i) => i !== sender)];
    let found = -1;
    for (const i of order) {
      if (
        verify(
          this.members[i]!.key.publicKey,
          this.genesis.chainId,
          kind as 2 | 3 | 4,
          signBytes,
          signature,
        )
      ) {
        found = i;
        break;
      }
    }
    this.signers.set(sig, found);
    return found;
  }

  /**
   * Algorithm 1's lock rules over everything released: a validator that
   * precommitted v in round r (locked on v) prevotes another value in a later
   * round only for a proposal whose proof-of-lock round is at least r (line
   * 28), with 2f+1 prevotes for it there; a non-nil precommit follows 2f+1
   * prevotes for its value in its round (line 36). Votes of the forged
   * equivocation are not released by any process, so not counted.
   */
  checkLockRules(): void {
    const prevoters = new Map<string, Set<number>>();
    for (const [key, votes] of this.votesReleased) {
      const [signer, height] = key.split('/').map(Number) as [number, number];
      for (const [round, value] of votes.prevote) {
        const k = `${height}/${round}/${value}`;
        let set = prevoters.get(k);
        if (set === undefined) prevoters.set(k, (set = new Set()));
        set.add(signer);
      }
    }
    const polka = (height: number, round: number, value: string): boolean =>
      (prevoters.get(`${height}/${round}/${value}`)?.size ?? 0) >= 3;
    for (const [key, votes] of this.votesReleased) {
      const [signer, height] = key.split('/').map(Number) as [number, number];
      for (const [round, value] of votes.precommit) {
        if (value !== 'nil' && !polka(height, round, value)) {
          this.find(
            `validator ${signer} precommitted ${value.slice(0, 8)} at ${height}/${round} without a polka`,
          );
        }
      }
      for (const [round, value] of votes.prevote) {
        if (value === 'nil') continue;
        let lock: { round: number; value: string } | null = null;
        for (const [r, v] of votes.precommit) {
          if (r < round && v !== 'nil' && (lock === null || r > lock.round))
            lock = { round: r, value: v };
        }
        if (lock === null || lock.value === value) continue;
        this.stats.lockChanges++;
        const proposal = this.proposals.get(`${height}/${round}`);
        if (
          proposal === undefined ||
          proposal.hash !== value ||
          proposal.polRound < lock.round ||
          !polka(height, proposal.polRound, value)
        ) {
          this.find(
            `validator ${signer} locked on ${lock.value.slice(0, 8)} in round ${lock.round} prevoted ${value.slice(0, 8)} at ${height}/${round} (proposal ${JSON.stringify(proposal)})`,
          );
        }
      }
    }
  }

  /** A second prevote by `signer` at the vote's height and round, for another value, to every other node. */
  private equivocate(signer: number, real: Vote): void {
    const blockHash = sha256(utf8(`equivocation ${real.height}/${real.round}`));
    if (real.blockHash !== null && bytesEqual(real.blockHash, blockHash)) return;
    this.equivocated.push({ height: real.height, round: real.round });
    this.stats.equivocations++;
    const bytes = voteSignBytes(
      this.writer,
      VOTE_TYPE.prevote,
      real.height,
      real.round,
      blockHash,
      0,
      new Uint8Array(0),
    );
    const vote: Vote = {
      ...real,
      blockHash,
      signature: sign(
        this.members[signer]!.key,
        this.genesis.chainId,
        SIGN_KIND_CONSENSUS.prevote,
        bytes,
      ),
    };
    const framed = frame(CHANNEL.consensus, encodeMessage({ kind: 'vote', vote }));
    const from = this.peerIds[signer]!;
    for (let to = 0; to < 4; to++) {
      if (to === signer) continue;
      this.sched.at(this.sched.nowMs + 1 + this.prng.int(8), () => this.deliver(to, from, framed));
    }
  }

  // --- checks ----------------------------------------------------------------------------

  private onPublished(index: number, life: Life, published: CommittedBlock): void {
    if (life.dead) return;
    const executed = published.executed;
    const height = executed.block.header.height;
    const blockHash = toHex(executed.blockHash);
    const appHash = toHex(executed.result.appHash);
    const known = this.chain.get(height);
    if (known === undefined) {
      this.chain.set(height, { blockHash, appHash });
      for (const e of executed.block.evidence) {
        const key = toHex(evidenceHashOf(e));
        this.evidenceCommitted.set(key, [...(this.evidenceCommitted.get(key) ?? []), height]);
      }
      for (const event of published.txs.exchange.events) {
        if (event.type !== 'validatorJailed') continue;
        const key = toHex(event.validator);
        this.jailings.set(key, [...(this.jailings.get(key) ?? []), height]);
      }
    } else if (known.blockHash !== blockHash) {
      this.find(
        `node ${index} executed block ${blockHash} at ${height}, another node ${known.blockHash}`,
      );
    } else if (known.appHash !== appHash) {
      this.find(
        `node ${index} computed appHash ${appHash} at ${height}, another node ${known.appHash}`,
      );
    }
    const member = this.members[index]!;
    if (height > member.published) member.published = height;
  }

  /**
   * After a restart: the replica is locked at least where the precommits its
   * WAL durably holds for its height say (a lock is taken with its precommit,
   * whose record is synced before it leaves).
   */
  private checkLock(index: number, wal: readonly Uint8Array[]): void {
    const replica = this.members[index]!.node!.loop.replica;
    let lock: { round: number; hash: Uint8Array } | null = null;
    for (const bytes of wal) {
      let record: WalRecord;
      try {
        record = decode(walRecordCodec, bytes);
      } catch {
        break;
      }
      if (
        record.kind !== 'signed' ||
        record.height !== replica.height ||
        record.step !== STEP.precommit
      )
        continue;
      const message = decode(messageCodec, record.bytes);
      if (message.kind !== 'vote' || message.vote.blockHash === null) continue;
      if (lock === null || message.vote.round > lock.round)
        lock = { round: message.vote.round, hash: message.vote.blockHash };
    }
    if (lock === null) return;
    this.stats.locksChecked++;
    // Decided meanwhile (its block executing): the lock no longer matters.
    if (replica.height !== this.members[index]!.node!.app.height + 1) return;
    if (replica.lockedRound < lock.round) {
      this.find(
        `node ${index} restarted at height ${replica.height} locked at round ${replica.lockedRound}, below its durable precommit of round ${lock.round}`,
      );
    } else if (
      replica.lockedRound === lock.round &&
      !bytesEqual(replica.lockedBlockHash ?? new Uint8Array(0), lock.hash)
    ) {
      this.find(
        `node ${index} restarted at height ${replica.height} locked on another block than its durable precommit of round ${lock.round}`,
      );
    }
  }

  /** The faults: crashes at random points and moments within the window. */
  plan(): void {
    const window = this.options.faultWindowMs;
    const end = this.sched.nowMs + 200 + window;
    const points = this.options.points ?? POINT_KINDS;
    for (let c = 0; c < this.options.crashes; c++) {
      const atMs = this.sched.nowMs + 200 + this.prng.int(window);
      this.sched.at(atMs, () => this.arm(points, end));
    }
    for (let c = 0; c < (this.options.storms ?? 0); c++) {
      const atMs = this.sched.nowMs + this.prng.int(window);
      const until = atMs + 200 + this.prng.int(1_500);
      this.sched.at(atMs, () => {
        this.stormUntilMs = Math.max(this.stormUntilMs, until);
      });
    }
  }

  /** Arms a crash at a random point of a random live node, or tries again a little later. */
  private arm(points: readonly PointKind[], until: number): void {
    const down = this.members.filter((m) => m.life.dead || m.armed !== null).length;
    const candidates = this.members.filter((m) => !m.life.dead && m.armed === null);
    if (candidates.length === 0 || down >= this.options.maxDown) {
      if (this.sched.nowMs < until)
        this.sched.at(this.sched.nowMs + 100, () => this.arm(points, until));
      return;
    }
    const member = candidates[this.prng.int(candidates.length)]!;
    const index = this.members.indexOf(member);
    if (this.prng.int(8) === 0) {
      this.crash(index, 'anytime');
      return;
    }
    member.armed = this.randomPoint(points);
    const life = member.life;
    // Not reached in time (a point this node may not pass soon): crash anyway.
    this.sched.at(this.sched.nowMs + ARMED_MS_MAX, () => {
      if (!life.dead && member.armed !== null) this.crash(index, 'timeout');
    });
  }

  private randomPoint(points: readonly PointKind[]): NonNullable<Member['armed']> {
    if (this.options.pointsInTurn === true) {
      const turn = this.turns++;
      return {
        kind: points[Math.floor(turn / 2) % points.length]!,
        side: turn % 2 === 0 ? 'before' : 'after',
      };
    }
    return {
      kind: points[this.prng.int(points.length)]!,
      side: this.prng.int(2) === 0 ? 'before' : 'after',
    };
  }

  /** Runs events until `until` holds or the budget of virtual time is spent. */
  run(until: () => boolean, budgetMs: number): boolean {
    const end = this.sched.nowMs + budgetMs;
    while (!until()) {
      if (this.findings.length > 0) return false;
      if (this.sched.nextAtMs() > end) return false;
      const next = this.sched.pop()!;
      this.sched.nowMs = Math.max(this.sched.nowMs, next.atMs);
      try {
        next.run();
      } catch (error) {
        if (!(error instanceof CrashSignal)) throw error;
      }
    }
    return true;
  }

  /** The lowest height executed by a live node (all of them up). */
  minHeight(): number {
    let min = Infinity;
    for (const m of this.members)
      min = Math.min(min, m.life.dead || m.node === null ? -1 : m.node.app.height);
    return min;
  }

  /** After the faults: everything each node published is still there, and every node agrees. */
  checkFinal(): void {
    for (const [i, m] of this.members.entries()) {
      const node = m.node;
      if (node === null) {
        this.find(`node ${i} is down at the end`);
        continue;
      }
      if (node.app.height < m.published)
        this.find(`node ${i} is at ${node.app.height}, below the ${m.published} it published`);
      for (let h = 1; h <= node.app.height; h++) {
        const want = this.chain.get(h);
        if (want === undefined) {
          this.find(`height ${h} executed by node ${i} was never published`);
          continue;
        }
        const results = node.results.load(h);
        if (results === null) this.find(`node ${i} lost the results of height ${h}`);
        else if (toHex(results.appHash) !== want.appHash)
          this.find(`node ${i} results of ${h} name another appHash`);
      }
      const metrics = node.loop.replica.metrics;
      if (metrics.signingPaused > 0 || node.loop.replica.signingPausedUntilHeight > 0)
        this.find(`node ${i} paused signing`);
      if (metrics.doubleSignRefused > 0)
        this.find(`node ${i} refused to sign twice (${metrics.doubleSignRefused})`);
    }
    this.checkLockRules();
    for (const [hash, heights] of this.evidenceCommitted) {
      if (heights.length !== 1) this.find(`evidence ${hash} committed at ${heights.join(', ')}`);
    }
    for (const [key, heights] of this.jailings) {
      if (heights.length !== 1)
        this.find(`validator ${key.slice(0, 8)} jailed at ${heights.join(', ')}`);
    }
    // Evidence held at the end must be committed before then (the run waits
    // for it); evidence every holder lost before its record was durable (a
    // power cut right after it came) is counted, not found: it is sent once.
    for (const [i, m] of this.members.entries()) {
      const pending = m.node?.loop.replica.pendingEvidence ?? 0;
      if (pending > 0) this.find(`node ${i} still holds ${pending} evidence never committed`);
    }
    if (this.stats.evidenceSeen > 0 && this.evidenceCommitted.size === 0) this.stats.evidenceLost++;
  }

  /** Closes the live nodes' files and removes the file backend's directory. */
  dispose(): void {
    for (const m of this.members) {
      if (m.files !== null && !m.life.dead) {
        m.life.dead = true;
        m.node?.loop.stop();
        try {
          m.files.close();
        } catch {
          // The directory goes next.
        }
      }
      m.files = null;
    }
    if (this.root !== null) rmSync(this.root, { recursive: true, force: true });
  }
}

export interface CrashRun {
  readonly cluster: CrashCluster;
  readonly findings: readonly Finding[];
  /** The height every node reached at the end. */
  readonly height: number;
}

/**
 * One seeded run: the four nodes start, crash and restart through the fault
 * window, then must all reach `heightsAfter` heights past the highest one
 * published within the budget, and the final checks run.
 */
export function runCrashCluster(options: CrashClusterOptions, heightsAfter = 4): CrashRun {
  const cluster = new CrashCluster(options);
  for (let i = 0; i < 4; i++) cluster.start(i);
  cluster.plan();
  const faultsEnd = cluster.sched.nowMs + options.faultWindowMs + 6_000;
  cluster.run(() => cluster.sched.nowMs >= faultsEnd, faultsEnd - cluster.sched.nowMs + 1);
  if (cluster.findings.length === 0) {
    const target = cluster.chain.size + heightsAfter;
    if (
      !cluster.run(() => cluster.minHeight() >= target, 120_000) &&
      cluster.findings.length === 0
    ) {
      cluster.find(`the nodes did not all reach height ${target} (lowest ${cluster.minHeight()})`);
    }
    // Evidence still pending goes into one of the next blocks.
    cluster.run(
      () => cluster.members.every((m) => m.node?.loop.replica.pendingEvidence === 0),
      30_000,
    );
  }
  if (cluster.findings.length === 0) cluster.checkFinal();
  const height = cluster.minHeight();
  cluster.dispose();
  return { cluster, findings: cluster.findings, height };
}
