// Shared pieces for the node tests: a small hash-chain application with
// snapshots, fast timeouts, keys, and temporary homes.

import { mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {
  Block,
  BlockResult,
  CommitCertificate,
  Genesis,
  Signer,
  TimeoutConfig,
  Verifier,
  Vote,
} from '../../src/consensus/index.ts';
import type { KeyPair } from '../../src/crypto/index.ts';
import { keyPairFromSeed, sha256, sign, verify } from '../../src/crypto/index.ts';
import { concatBytes, utf8 } from '../../src/lib/bytes.ts';
import type { Genesis as ExchangeGenesis } from '../../src/exchange/index.ts';
import { toHex } from '../../src/lib/bytes.ts';
import type { Clock } from '../../src/node/clock.ts';
import type { NodeApplication } from '../../src/node/loop.ts';
import { MemoryHub } from '../../src/node/network.ts';
import type { MemoryNetwork } from '../../src/node/network.ts';
import { ZommaNode } from '../../src/node/node.ts';
import { openStorage } from '../../src/node/storage/index.ts';
import type { FileStorage, Storage, Wal } from '../../src/node/storage/index.ts';

export const FAST_TIMEOUTS: TimeoutConfig = {
  proposeMs: 400,
  prevoteMs: 150,
  precommitMs: 150,
  deltaMs: 100,
  maxMs: 2_000,
  gossipMs: 200,
};

export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function testKey(i: number): KeyPair {
  return keyPairFromSeed(sha256(utf8(`node-test-key-${i}`)));
}

export function signerOf(key: KeyPair, chainId: string): Signer {
  return { publicKey: key.publicKey, sign: (kind, message) => sign(key, chainId, kind, message) };
}

export function verifierFor(chainId: string): Verifier {
  return { verify: (pk, kind, m, s) => verify(pk, chainId, kind, m, s) };
}

export function testGenesis(keys: readonly KeyPair[], chainId = 'node-test'): Genesis {
  return {
    chainId,
    genesisTimeMs: 1_000,
    validators: keys.map((k) => ({ publicKey: k.publicKey, power: 10 })),
    appHash: sha256(utf8('hash-chain genesis')),
  };
}

/** State = a hash chain over executed blocks; a snapshot is (height, hash). */
export class HashChainApp implements NodeApplication {
  height = 0;
  appHash: Uint8Array;
  readonly executed: number[] = [];

  constructor(genesisAppHash: Uint8Array) {
    this.appHash = genesisAppHash;
  }

  static fromSnapshot(bytes: Uint8Array): HashChainApp {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    const app = new HashChainApp(bytes.slice(8));
    app.height = view.getUint32(4);
    return app;
  }

  prepareProposal(_h: number, _r: number, txs: readonly Uint8Array[]): Uint8Array[] {
    return txs.slice();
  }
  processProposal(_block: Block): boolean {
    return true;
  }
  extendVote(): Uint8Array {
    return new Uint8Array(0);
  }
  verifyVoteExtension(vote: Vote): boolean {
    return vote.extension.length === 0;
  }
  finalizeBlock(block: Block, _commit: CommitCertificate): BlockResult {
    if (block.header.height !== this.height + 1) throw new Error('out of order');
    this.appHash = sha256(this.appHash, ...block.txs);
    this.height = block.header.height;
    this.executed.push(this.height);
    return { appHash: this.appHash, validatorUpdates: [] };
  }
  commit(): void {}
  encodeSnapshot(): Uint8Array {
    const head = new Uint8Array(8);
    new DataView(head.buffer).setUint32(4, this.height);
    return concatBytes(head, this.appHash);
  }
}

/** Resolves when `check` holds (polled on every turn of the event loop), rejects after `timeoutMs`. */
export function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    const poll = (): void => {
      if (check()) return resolve();
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(poll, 10);
    };
    poll();
  });
}

/** How much the validators of memoryValidators keep, and their pause after a commit. */
export interface MemoryRetention {
  readonly snapshotsKept: number;
  readonly blocksKept: number;
  readonly commitPauseMs: number;
}

/**
 * The validators of `genesis` (one per key) on an in-memory network, each on
 * its own storage under `dir`, taking snapshots every 4 heights; validator
 * 0's appHash by height goes to `hashes`. `nodeOf` builds one more node the
 * same way (a full node with key null). Not started.
 */
export function memoryValidators(
  dir: string,
  keys: readonly KeyPair[],
  genesis: ExchangeGenesis,
  consensusGenesis: Genesis,
  retention: MemoryRetention,
): {
  hub: MemoryHub;
  storages: FileStorage[];
  hashes: Map<number, string>;
  nodeOf: (key: KeyPair | null, storage: Storage, network: MemoryNetwork) => ZommaNode;
  validators: ZommaNode[];
} {
  const hub = new MemoryHub();
  const storages: FileStorage[] = [];
  const hashes = new Map<number, string>();
  const nodeOf = (key: KeyPair | null, storage: Storage, network: MemoryNetwork) =>
    new ZommaNode({
      genesis,
      consensusGenesis,
      key,
      storage,
      network,
      prices: null,
      timeouts: FAST_TIMEOUTS,
      snapshotEveryHeights: 4,
      ...retention,
    });
  const validators = keys.map((key, i) => {
    const storage = openStorage(`${dir}/v${i}`);
    storages.push(storage);
    const node = nodeOf(key, storage, hub.join(toHex(key.publicKey)));
    if (i === 0) {
      node.subscribe((b) =>
        hashes.set(b.executed.block.header.height, toHex(b.executed.result.appHash)),
      );
    }
    return node;
  });
  return { hub, storages, hashes, nodeOf, validators };
}

/** A clock whose timers fire only when a test says so. */
export class ManualClock implements Clock {
  nowMsValue: number;
  private timers: { dueMs: number; fire: () => void; live: boolean }[] = [];

  constructor(startMs = 10_000) {
    this.nowMsValue = startMs;
  }

  nowMs(): number {
    return this.nowMsValue;
  }

  after(delayMs: number, fire: () => void): () => void {
    const timer = { dueMs: this.nowMsValue + delayMs, fire, live: true };
    this.timers.push(timer);
    return () => {
      timer.live = false;
    };
  }

  /** Live timers due within `delayMs` of now, by delay. */
  pending(delayMs: number): number {
    return this.timers.filter((t) => t.live && t.dueMs - this.nowMsValue === delayMs).length;
  }

  /** Fires the live timers of exactly this delay (the consensus timeouts have others). */
  fire(delayMs: number): void {
    this.fireWhere((t) => t.dueMs - this.nowMsValue === delayMs);
  }

  /** Moves time on by `ms` and fires the timers due by then (not those they schedule). */
  advance(ms: number): void {
    this.nowMsValue += ms;
    this.fireWhere((t) => t.dueMs <= this.nowMsValue);
  }

  private fireWhere(isDue: (t: { dueMs: number }) => boolean): void {
    const due = this.timers.filter((t) => t.live && isDue(t));
    this.timers = this.timers.filter((t) => !due.includes(t));
    for (const t of due) {
      t.live = false;
      t.fire();
    }
  }
}

/**
 * The WAL with the index below which its records are known durable (what a
 * power cut keeps). With `background`, the inner WAL's background sync is
 * offered to the node too (and counted once done); without it, the node syncs
 * only as it signs.
 */
export class DurableWal implements Wal {
  durableNext: number;
  syncAsync?: (done: (error: Error | null) => void) => void;

  constructor(
    private readonly inner: Wal,
    background: boolean,
  ) {
    // Opened after a clean close: everything held is on disk.
    this.durableNext = inner.nextIndex();
    const syncAsync = inner.syncAsync?.bind(inner);
    if (background && syncAsync !== undefined) {
      this.syncAsync = (done) => {
        const upTo = inner.nextIndex();
        syncAsync((error) => {
          if (error === null) this.durableNext = Math.max(this.durableNext, upTo);
          done(error);
        });
      };
    }
  }

  firstIndex(): number {
    return this.inner.firstIndex();
  }
  nextIndex(): number {
    return this.inner.nextIndex();
  }
  append(record: Uint8Array, sync: boolean): number {
    const index = this.inner.append(record, sync);
    if (sync) this.durableNext = index + 1;
    return index;
  }
  sync(): void {
    this.inner.sync();
    this.durableNext = this.inner.nextIndex();
  }
  readAll(): Uint8Array[] {
    return this.inner.readAll();
  }
  truncateBefore(index: number): void {
    this.inner.truncateBefore(index);
    // The rewrite is durable whole.
    this.durableNext = this.inner.nextIndex();
  }
  close(): void {
    this.inner.close();
  }
}

/** Rewrites the WAL in `dir` to hold only its first `keep` records, as a power cut leaves it. */
export function cutPower(dir: string, keep: number): void {
  let storage = openStorage(dir);
  const records = storage.wal.readAll().slice(0, keep - storage.wal.firstIndex());
  storage.close();
  renameSync(`${dir}/wal.log`, `${dir}/wal.log.lost`);
  storage = openStorage(dir);
  for (const r of records) storage.wal.append(r, false);
  storage.wal.sync();
  storage.close();
}
