// One validator (or full node) assembled from its parts: storage, the exchange
// application restored to the WAL's checkpoint, the mempool with worker-pool
// signature checks, the loop that owns the replica, and the peer network with
// its three channels. No files are read here (runtime.ts does that), so tests
// build nodes in one process over a MemoryHub.

import { decode } from '../codec/wire.ts';
import type {
  Genesis as ConsensusGenesis,
  Message,
  PeerId,
  TimeoutConfig,
} from '../consensus/index.ts';
import { messageCodec } from '../consensus/index.ts';
import type { KeyPair, VerifyItem } from '../crypto/index.ts';
import { sign, verify, verifyRaw } from '../crypto/index.ts';
import type { Genesis } from '../exchange/index.ts';
import { Exchange } from '../exchange/index.ts';
import {
  BLOCK_TX_BYTES_MAX,
  BLOCK_TXS_MAX,
  MEMPOOL_GOSSIP_BATCH_TXS_MAX,
  MEMPOOL_REGOSSIP_MS,
  MEMPOOL_REGOSSIP_TXS_MAX,
} from '../lib/limits.ts';
import type { ExecutedTxs } from './app.ts';
import { ExchangeApp } from './app.ts';
import type { Clock } from './clock.ts';
import { systemClock } from './clock.ts';
import { CHANNEL, frame, unframe } from './framing.ts';
import { decodeTxBatch, encodeTxBatch } from './gossip.ts';
import type { Log } from './log.ts';
import { silentLog } from './log.ts';
import type { ExecutedBlock, HaltHeightStop, HaltReport } from './loop.ts';
import { NodeLoop, haltHeightRefusal, lastCheckpoint } from './loop.ts';
import type { AddResult, Dropped, MempoolEntry, MempoolLimits } from './mempool/mempool.ts';
import { Mempool } from './mempool/mempool.ts';
import { SignatureCache } from './mempool/sigcache.ts';
import type { PeerNetwork } from './network.ts';
import type { PriceSource } from './oracle_source.ts';
import type { ObservationSource } from './oracle.ts';
import { dropUnbackedCheckpoint, restoreApp } from './restore.ts';
import type { ResultsStore } from './results.ts';
import { MemoryResultsStore, STORED_EVENT_TYPES } from './results.ts';
import type { Storage } from './storage/index.ts';
import { SyncServer } from './sync_server.ts';

/**
 * A consensus catch-up request is a tag and two varints (at most 10 bytes);
 * every other consensus message carries a signature or a block, so only
 * payloads this short are looked into before the replica sees them.
 */
const CATCHUP_REQUEST_BYTES_MAX = 16;

export interface ZommaNodeOptions {
  readonly genesis: Genesis;
  readonly consensusGenesis: ConsensusGenesis;
  /** Null: a full node that follows without voting. */
  readonly key: KeyPair | null;
  readonly storage: Storage;
  readonly network: PeerNetwork;
  /** Signature checks for the mempool (a VerifyPool's verifyBatch); default: on this thread. */
  readonly verifyBatch?: (items: readonly VerifyItem[]) => Promise<boolean[]>;
  readonly prices: PriceSource | null;
  /** Separate sources, whose median is the observation; overrides `prices` (app.ts). */
  readonly priceSources?: readonly ObservationSource[];
  readonly timeouts?: TimeoutConfig;
  readonly snapshotEveryHeights: number;
  readonly snapshotsKept: number;
  readonly commitPauseMs?: number;
  /** How long our proposal may wait for transactions (NodeLoopOptions.proposeWaitMs); default 0. */
  readonly proposeWaitMs?: number;
  readonly clock?: Clock;
  readonly log?: Log;
  readonly checkInvariants?: boolean;
  readonly onHalt?: (report: HaltReport) => void;
  /** Stop at this height (NodeLoopOptions.haltHeight); absent: never. */
  readonly haltHeight?: number;
  /** The halt height was reached and made durable: the loop has stopped, the node should be stopped. */
  readonly onHaltHeight?: (stop: HaltHeightStop) => void;
  /** Where per-block results are kept across restarts (default: in memory). */
  readonly results?: ResultsStore;
  /** Keep this many latest heights in the block store, never below the latest snapshot (0: all). */
  readonly blocksKept?: number;
  /** State-sync requests served to all peers together per second (SyncServerOptions.totalRequestsPerS). */
  readonly syncServeTotalRequestsPerS?: number;
  /** Catch-up bytes served to all peers together per second beyond their floors (NodeLoopOptions). */
  readonly catchupServeTotalBytesPerS?: number;
  /** The mempool's bounds (default: MEMPOOL_* in limits.ts); tests make them small. */
  readonly mempoolLimits?: Partial<MempoolLimits>;
  /** Rewrite the WAL from its checkpoint once it grew by this much (NodeLoopOptions.walRotateBytes). */
  readonly walRotateBytes?: number;
}

export interface CommittedBlock {
  readonly executed: ExecutedBlock;
  readonly txs: ExecutedTxs;
}

export interface NodeStats {
  badFrames: number;
  badGossip: number;
}

/** The consensus genesis a chain's exchange genesis implies (stake as voting power). */
export function consensusGenesisOf(genesis: Genesis): ConsensusGenesis {
  const exchange = new Exchange(genesis);
  return {
    chainId: genesis.chainId,
    genesisTimeMs: genesis.genesisTimeMs,
    validators: genesis.validators.map((v) => ({
      publicKey: v.publicKey,
      power: Number(v.stake),
    })),
    appHash: exchange.appHash,
  };
}

export class ZommaNode {
  readonly app: ExchangeApp;
  readonly mempool: Mempool;
  readonly loop: NodeLoop;
  readonly signatures = new SignatureCache();
  /** Answers peers' state-sync requests from our snapshot and block stores. */
  readonly syncServer: SyncServer;
  readonly stats: NodeStats = { badFrames: 0, badGossip: 0 };
  readonly restoredFrom: { snapshotHeight: number; replayedBlocks: number };
  /** Per-block results, saved before a block is published. */
  readonly results: ResultsStore;
  private readonly listeners = new Set<(block: CommittedBlock) => void>();
  private readonly dropListeners = new Set<(dropped: Dropped) => void>();
  private readonly log: Log;
  private recheckRunning = false;
  private recheckAgain = false;
  private readonly clock: Clock;
  /** Cancels the next re-gossip round (null when stopped). */
  private regossipCancel: (() => void) | null = null;

  constructor(private readonly options: ZommaNodeOptions) {
    this.log = options.log ?? silentLog;
    this.results = options.results ?? new MemoryResultsStore();
    const clock = options.clock ?? systemClock;
    this.clock = clock;
    // Before the application, which reads it (known) from its first block.
    const chainId = options.genesis.chainId;
    this.mempool = new Mempool({
      chainId,
      signatures: this.signatures,
      verifyBatch: options.verifyBatch ?? verifyHere,
      ...(options.mempoolLimits ? { limits: options.mempoolLimits } : {}),
      onAdmitted: (entries, from) => {
        this.gossip(entries, from);
        this.loop.txsAdmitted();
      },
      staleCodeOf: (tx) => this.app.staleCodeOf(tx),
      staleMessageOf: (tx, code) => this.app.staleMessageOf(tx, code),
      onDropped: (dropped) => {
        for (const listener of this.dropListeners) {
          try {
            listener(dropped);
          } catch (error) {
            this.log.error({ error: String(error) }, 'a drop listener failed');
          }
        }
      },
    });
    const appOptions = {
      genesis: options.genesis,
      consensusGenesis: options.consensusGenesis,
      signatures: this.signatures,
      known: (raw: Uint8Array) => this.mempool.lookup(raw),
      prices: options.prices,
      ...(options.priceSources ? { priceSources: options.priceSources } : {}),
      nowMs: () => clock.nowMs(),
      checkInvariants: options.checkInvariants === true,
    };
    dropUnbackedCheckpoint(options.storage, this.log);
    const checkpoint = lastCheckpoint(options.storage.wal.readAll());
    // Before the restore re-executes anything: the loop would refuse it after.
    const haltHeight = options.haltHeight;
    const refused = haltHeightRefusal(
      checkpoint.height,
      haltHeight,
      options.storage.snapshots.heights(),
    );
    if (refused !== null) throw refused;
    const restored = restoreApp(
      options.storage,
      checkpoint,
      () => new ExchangeApp(appOptions),
      (bytes) => ExchangeApp.fromSnapshot(appOptions, bytes),
      this.log,
      // A crash can lose the results of the last heights; they come back here.
      (app) => this.saveResults(app),
      this.results.lastHeight(),
    );
    this.app = restored.app;
    this.restoredFrom = {
      snapshotHeight: restored.snapshotHeight,
      replayedBlocks: restored.replayedBlocks,
    };
    const key = options.key;
    this.loop = new NodeLoop({
      genesis: options.consensusGenesis,
      ...(options.timeouts ? { timeouts: options.timeouts } : {}),
      signer:
        key === null
          ? null
          : { publicKey: key.publicKey, sign: (kind, m) => sign(key, chainId, kind, m) },
      verifier: { verify: (pk, kind, m, s) => verify(pk, chainId, kind, m, s) },
      app: this.app,
      storage: options.storage,
      network: options.network,
      clock,
      log: this.log,
      reap: () => this.mempool.reap(BLOCK_TXS_MAX, BLOCK_TX_BYTES_MAX),
      pendingTxs: () => this.mempool.size,
      proposeWaitMs: options.proposeWaitMs ?? 0,
      snapshotEveryHeights: options.snapshotEveryHeights,
      snapshotsKept: options.snapshotsKept,
      blocksKept: options.blocksKept ?? 0,
      ...(options.catchupServeTotalBytesPerS !== undefined
        ? { catchupServeTotalBytesPerS: options.catchupServeTotalBytesPerS }
        : {}),
      commitPauseMs: options.commitPauseMs ?? 0,
      walSyncInBackground: true,
      ...(options.walRotateBytes !== undefined ? { walRotateBytes: options.walRotateBytes } : {}),
      flush: () => this.results.flush(),
      restoredResult: restored.lastResult,
      ...(haltHeight !== undefined ? { haltHeight } : {}),
      hooks: {
        onExecuted: (executed) => this.onExecuted(executed),
        ...(options.onHalt ? { onHalt: options.onHalt } : {}),
        ...(options.onHaltHeight ? { onHaltHeight: options.onHaltHeight } : {}),
      },
    });
    this.syncServer = new SyncServer({
      storage: options.storage,
      network: options.network,
      clock,
      ...(options.syncServeTotalRequestsPerS !== undefined
        ? { totalRequestsPerS: options.syncServeTotalRequestsPerS }
        : {}),
      onPruned: (peer, height, firstHeight) => this.loop.onPeerPruned(peer, height, firstHeight),
      log: this.log,
    });
    options.network.onMessage((peer, bytes) => this.onFrame(peer, bytes));
  }

  async start(): Promise<void> {
    await this.options.network.start();
    this.loop.start();
    this.scheduleRegossip();
  }

  async stop(): Promise<void> {
    this.regossipCancel?.();
    this.regossipCancel = null;
    this.loop.stop();
    try {
      await this.options.network.stop();
    } finally {
      this.syncServer.close();
    }
  }

  /** Admits a client's transaction to the mempool (and gossips it). */
  submit(bytes: Uint8Array): Promise<AddResult> {
    return this.mempool.add(bytes, null);
  }

  /** This validator's public key; null for a full node. */
  get publicKey(): Uint8Array | null {
    return this.options.key?.publicKey ?? null;
  }

  /** Peers connected now (the dashboard's consensus view). */
  peerCount(): number {
    return this.options.network.peerCount();
  }

  /** Calls `listener` after each committed block (height order). Returns the unsubscribe function. */
  subscribe(listener: (block: CommittedBlock) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Calls `listener` for each admitted transaction the mempool lets go of
   * without it being committed (evicted, or refused by the re-check), as it
   * goes. Returns the unsubscribe function.
   */
  subscribeDropped(listener: (dropped: Dropped) => void): () => void {
    this.dropListeners.add(listener);
    return () => this.dropListeners.delete(listener);
  }

  private onFrame(peer: PeerId, bytes: Uint8Array): void {
    let channel;
    let payload;
    try {
      ({ channel, payload } = unframe(bytes));
    } catch {
      this.stats.badFrames++;
      return;
    }
    if (channel === CHANNEL.consensus) {
      if (payload.length <= CATCHUP_REQUEST_BYTES_MAX && this.answeredPruned(peer, payload)) return;
      return this.loop.onConsensusMessage(peer, payload);
    }
    if (channel === CHANNEL.mempool) return this.onGossip(peer, payload);
    this.syncServer.onMessage(peer, payload);
  }

  /**
   * A catch-up request for blocks we pruned is answered `pruned` (the replica
   * would stay silent and the requester wait out its retry period).
   */
  private answeredPruned(peer: PeerId, payload: Uint8Array): boolean {
    let message: Message;
    try {
      message = decode(messageCodec, payload);
    } catch {
      return false;
    }
    return (
      message.kind === 'blockRequest' && this.syncServer.onCatchupRequest(peer, message.fromHeight)
    );
  }

  private onGossip(peer: PeerId, payload: Uint8Array): void {
    let txs: Uint8Array[];
    try {
      txs = decodeTxBatch(payload);
    } catch {
      this.stats.badGossip++;
      return;
    }
    for (const tx of txs) void this.mempool.add(tx, peer);
  }

  /**
   * Every MEMPOOL_REGOSSIP_MS, clients' transactions still waiting since the
   * last round go to every peer again (a peer down or full the first time
   * never got them; those that hold them drop them as duplicates).
   */
  private scheduleRegossip(): void {
    this.regossipCancel = this.clock.after(MEMPOOL_REGOSSIP_MS, () => {
      this.gossip(this.mempool.regossipDue(MEMPOOL_REGOSSIP_TXS_MAX), null);
      this.scheduleRegossip();
    });
  }

  /** Transactions a client gave us go to every peer; the network is a full mesh of validators. */
  private gossip(entries: readonly MempoolEntry[], from: string | null): void {
    if (from !== null) return;
    for (let i = 0; i < entries.length; i += MEMPOOL_GOSSIP_BATCH_TXS_MAX) {
      const batch = entries.slice(i, i + MEMPOOL_GOSSIP_BATCH_TXS_MAX).map((e) => e.bytes);
      this.options.network.broadcast(frame(CHANNEL.mempool, encodeTxBatch(batch)));
    }
  }

  private onExecuted(executed: ExecutedBlock): void {
    const txs = this.app.lastExecuted;
    if (txs === null || txs.height !== executed.block.header.height) return;
    this.saveResults(this.app);
    this.mempool.removeCommitted(txs.hashes);
    for (const listener of this.listeners) {
      try {
        listener({ executed, txs });
      } catch (error) {
        this.log.error({ error: String(error) }, 'a block listener failed');
      }
    }
    this.scheduleRecheck();
  }

  private saveResults(app: ExchangeApp): void {
    const executed = app.lastExecuted;
    if (executed === null) return;
    this.results.save({
      height: executed.height,
      appHash: executed.exchange.appHash,
      results: executed.results,
      // Here rather than in the view: restart re-executes blocks with no view
      // listening, and their records must hold the same details as live ones.
      details: {
        events: executed.exchange.events.filter((e) => STORED_EVENT_TYPES.has(e.type)),
        insuranceQuote: app.exchange.state.insuranceQuote,
        auctionTradesKept: true,
      },
    });
  }

  /** The re-check runs after the loop's turn, one at a time; a commit during one asks for another. */
  private scheduleRecheck(): void {
    if (this.recheckRunning) {
      this.recheckAgain = true;
      return;
    }
    this.recheckRunning = true;
    setImmediate(() => {
      void this.mempool
        .recheck((tx) => this.app.staleCodeOf(tx))
        .finally(() => {
          this.recheckRunning = false;
          if (this.recheckAgain) {
            this.recheckAgain = false;
            this.scheduleRecheck();
          }
        });
    });
  }
}

async function verifyHere(items: readonly VerifyItem[]): Promise<boolean[]> {
  return items.map((item) => verifyRaw(item.publicKey, item.message, item.signature));
}
