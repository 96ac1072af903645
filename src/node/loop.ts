// The node loop: the one owner of the replica. Every input (a peer's consensus
// message, a timeout, a proposal built, a block executed) goes through
// replica.handle in arrival order, and its effects are performed in the order
// given: a persist with sync is made durable before anything after it, sends
// go to the network, timeouts to the clock, buildProposal to the application's
// prepareProposal, finalizeBlock to the block store and then the application.
//
// A synced persist (the record before each of our signatures) waits for its
// fdatasync without blocking the thread when the WAL can sync on libuv's pool
// (Wal.syncAsync): the effects after it and every later input wait, in order,
// while the API, the mempool and the transport go on. Everything else is
// synchronous, so each effect (a block's execution included) runs to
// completion on this thread: readers never see a block half applied.

import { decode, encode } from '../codec/wire.ts';
import type {
  Application,
  Block,
  BlockResult,
  ChainState,
  CommitCertificate,
  CommittedBlock,
  Effect,
  Genesis,
  Input,
  Misbehavior,
  PeerId,
  Signer,
  TimeoutConfig,
  Verifier,
} from '../consensus/index.ts';
import {
  Replica,
  ValidatorSet,
  blockHashOf,
  bodyFactsOf,
  committedBlockCodec,
  walRecordCodec,
} from '../consensus/index.ts';
import { bytesEqual, toHex } from '../lib/bytes.ts';
import {
  BLOCK_TXS_MAX,
  LOOP_QUEUED_MESSAGE_BYTES_MAX,
  LOOP_QUEUED_MESSAGE_OVERHEAD_BYTES,
  WAL_ROTATE_BYTES,
} from '../lib/limits.ts';
import type { Clock } from './clock.ts';
import { systemClock } from './clock.ts';
import { NodeError } from './errors.ts';
import { CHANNEL, frame } from './framing.ts';
import type { Log } from './log.ts';
import { silentLog } from './log.ts';
import type { PeerNetwork } from './network.ts';
import { StorageError, snapshotFileName } from './storage/index.ts';
import type { Storage } from './storage/index.ts';
import { DivergenceWatch, certified } from './watch.ts';

/** The application as the node drives it: the consensus port plus what restart and snapshots need. */
export interface NodeApplication extends Application {
  /** The last executed height (0 at genesis). */
  readonly height: number;
  /** The hash of the state after `height`. */
  readonly appHash: Uint8Array;
  /** The state after `height`, for the snapshot store. */
  encodeSnapshot(): Uint8Array;
  /**
   * `misbehavior` is absent when a stored block is executed again at restart
   * (no replica has resolved it): the application names the offenders itself,
   * from the validator sets it decided.
   */
  finalizeBlock(
    block: Block,
    commit: CommitCertificate,
    misbehavior?: readonly Misbehavior[],
  ): BlockResult;
}

export interface ExecutedBlock {
  readonly block: Block;
  readonly blockHash: Uint8Array;
  readonly commit: CommitCertificate;
  readonly result: BlockResult;
  readonly executionMs: number;
}

export interface LoopHooks {
  /** After a block is executed and committed by the application (still inside the loop: keep it short). */
  onExecuted?(executed: ExecutedBlock): void;
  /** The node stopped for good; `report` says why (the runtime writes it to the home dir). */
  onHalt?(report: HaltReport): void;
  /** The halt height was reached and made durable; the loop has stopped (no failure: NodeLoopOptions.haltHeight). */
  onHaltHeight?(stop: HaltHeightStop): void;
}

/** Where the loop stopped on reaching its halt height. */
export interface HaltHeightStop {
  readonly height: number;
  /** The state's hash after `height`, as the chain will carry it in block height + 1. */
  readonly appHash: Uint8Array;
  /** Whether the snapshot of `height` is on disk (false only for a state past SNAPSHOT_BYTES_MAX). */
  readonly snapshotSaved: boolean;
}

export interface HaltReport {
  readonly code: string;
  readonly message: string;
  readonly height: number;
  readonly details: Record<string, unknown>;
}

/** A consensus step by name, as the metrics label it. */
export type StepName = 'propose' | 'prevote' | 'precommit';

const STEP_NAMES: readonly StepName[] = ['propose', 'prevote', 'precommit'];

/**
 * A duration the loop measured: a WAL fdatasync, or how long the replica
 * stayed in one step of a round (a precommit step ends when its height is
 * committed; the execution and the commit pause after it are no step).
 */
export type LoopTiming =
  | { readonly kind: 'walSync'; readonly ms: number }
  | { readonly kind: 'step'; readonly step: StepName; readonly ms: number };

export interface LoopStats {
  inputs: number;
  effects: number;
  walSyncs: number;
  walSyncMsTotal: number;
  /** Latest WAL fsync latency, ms. */
  walSyncMsLast: number;
  lastCommitLatencyMs: number;
  lastExecutionMs: number;
  txsCommitted: number;
  blocksExecuted: number;
  /** Heights this node saw decided in a round after 0 (a round failed first). */
  decidedAfterRound0: number;
  snapshotsSaved: number;
  /** Snapshots not saved: the state's encoding was past SNAPSHOT_BYTES_MAX. */
  snapshotsTooLarge: number;
  walRotations: number;
  /** Heights below the block store's first (pruned, or never held after state sync). */
  blocksPruned: number;
  /** Peer messages dropped because the queue held LOOP_QUEUED_MESSAGE_BYTES_MAX. */
  messagesDropped: number;
}

export interface NodeLoopOptions {
  readonly genesis: Genesis;
  readonly timeouts?: TimeoutConfig;
  readonly signer: Signer | null;
  readonly verifier: Verifier;
  readonly app: NodeApplication;
  readonly storage: Storage;
  readonly network: PeerNetwork;
  readonly clock?: Clock;
  readonly log?: Log;
  /** Candidate transactions for a proposal, in arrival order (the mempool's reap). */
  readonly reap?: (height: number) => Uint8Array[];
  /** Transactions waiting in the mempool (0 without one). */
  readonly pendingTxs?: () => number;
  /**
   * How long our proposal may wait for transactions (round 0 only): it is
   * built as soon as the mempool holds as many as the last block had (at
   * least one), or when this much time has passed. Clients answered at the
   * end of a height send their next transactions a moment later; a proposal
   * built at the very start of the height would leave them a whole height
   * behind. 0: build at once.
   */
  readonly proposeWaitMs?: number;
  /** Save an application snapshot after every this many heights (0: never). */
  readonly snapshotEveryHeights: number;
  /** Snapshots kept on disk. */
  readonly snapshotsKept: number;
  /**
   * Heights kept in the block store when a snapshot is saved (0: all). Never
   * below the newest snapshot a restart could start from, so pruning costs
   * peers their catch-up from old heights, never our own restart.
   */
  readonly blocksKept?: number;
  /**
   * Wait after executing a block before entering the next height (CometBFT's
   * timeout_commit): late precommits still reach the certificate, and an idle
   * chain does not spin. 0: none. Skipped while transactions wait in the
   * mempool, and cut short when one arrives (txsAdmitted).
   */
  readonly commitPauseMs?: number;
  /**
   * Wait for a synced WAL record's fdatasync on libuv's pool (when the WAL has
   * Wal.syncAsync) instead of blocking the thread in it: the API, mempool and
   * transport go on meanwhile; the consensus steps after the record still
   * wait. Default false: every effect completes within the call that caused
   * it, as tests driving the loop step by step expect.
   */
  readonly walSyncInBackground?: boolean;
  /** Rewrite the WAL from its checkpoint once it grew by this much (default WAL_ROTATE_BYTES). */
  readonly walRotateBytes?: number;
  /**
   * Catch-up bytes served to all peers together per retry period beyond
   * each one's floor (ReplicaConfig.catchupServeTotalBytesPerS).
   */
  readonly catchupServeTotalBytesPerS?: number;
  /**
   * Makes what the hooks wrote beside the blocks durable (the node's results
   * log): called before a snapshot is saved, which a restart resumes from
   * without executing (and recording) the heights below it again. Not before
   * each WAL sync: the heights after the snapshot are executed again.
   */
  readonly flush?: () => void;
  readonly hooks?: LoopHooks;
  /**
   * What the restore's execution of the block at the application's height
   * gave (restore.ts, RestoreResult.lastResult), if it executed it: the
   * validator updates of that height, which start() needs when the
   * application's appHash corrects the WAL checkpoint's (resumeRecords).
   */
  readonly restoredResult?: BlockResult | null;
  /**
   * Stop at this height (an upgrade that changes execution: every validator
   * stops at the same one). Once its block is executed, the snapshot of the
   * height is saved whatever snapshotEveryHeights says, and once its WAL
   * checkpoint is written it is made durable with the block and the results,
   * so that a restart starts from that snapshot and executes nothing at or
   * below it. Then the loop stops before performing anything of the next
   * height (no proposal, no vote) and calls hooks.onHaltHeight. A start with
   * the WAL's checkpoint already past it, or at it with its snapshot, throws
   * HaltHeightReached; at it without one, the start saves that snapshot and
   * stops the same way (haltHeightRefusal).
   * Absent: never.
   */
  readonly haltHeight?: number;
}

export class NodeLoop {
  readonly replica: Replica;
  readonly stats: LoopStats = {
    inputs: 0,
    effects: 0,
    walSyncs: 0,
    walSyncMsTotal: 0,
    walSyncMsLast: 0,
    lastCommitLatencyMs: 0,
    lastExecutionMs: 0,
    txsCommitted: 0,
    blocksExecuted: 0,
    decidedAfterRound0: 0,
    snapshotsSaved: 0,
    snapshotsTooLarge: 0,
    walRotations: 0,
    blocksPruned: 0,
    messagesDropped: 0,
  };
  /** Height of the last checkpoint appended to the WAL, and of the last one known durable. */
  private checkpointAppended = 0;
  private checkpointDurable = 0;
  private readonly queue: Input[] = [];
  /** Certified blocks that disagree with our state halt the node; the check is bounded per peer. */
  private readonly divergence: DivergenceWatch;
  /** Bytes of the peer messages in `queue`, each with its overhead (LOOP_QUEUED_MESSAGE_BYTES_MAX). */
  private queuedMessageBytes = 0;
  private draining = false;
  /**
   * The effects left of a batch while a synced WAL record's fdatasync runs on
   * libuv's pool: performed, and the queue drained again, once it is durable.
   */
  private suspended: { effects: readonly Effect[]; next: number } | null = null;
  private running = false;
  private halted: HaltReport | null = null;
  private haltedAtHeight: HaltHeightStop | null = null;
  private readonly cancels = new Set<() => void>();
  private readonly clock: Clock;
  private readonly log: Log;
  private heightStartMs = 0;
  private walBytesSinceRotation = 0;
  /** Transactions in the last executed block: how many the next proposal waits for. */
  private lastBlockTxs = 0;
  /** A proposal waiting for transactions (proposeWaitMs), and the end of a commit pause. */
  private heldBuild: { height: number; round: number; cancel: () => void } | null = null;
  private pauseEnd: (() => void) | null = null;
  private readonly timingListeners = new Set<(timing: LoopTiming) => void>();
  /** The replica's step since when; `ended` once its height was committed. */
  private stepNow: {
    height: number;
    round: number;
    step: number;
    sinceMs: number;
    ended: boolean;
  } | null = null;

  constructor(private readonly options: NodeLoopOptions) {
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? silentLog;
    this.divergence = new DivergenceWatch(options.verifier);
    this.replica = new Replica(
      {
        genesis: options.genesis,
        ...(options.timeouts ? { timeouts: options.timeouts } : {}),
        ...(options.catchupServeTotalBytesPerS !== undefined
          ? { catchupServeTotalBytesPerS: options.catchupServeTotalBytesPerS }
          : {}),
      },
      {
        signer: options.signer,
        verifier: options.verifier,
        app: options.app,
        // Only serves peers' catch-up: a damaged record is logged and not
        // served, rather than halting the node on a peer's request.
        blocks: {
          load: (height) => this.loadToServe(height),
          sizeOf: (height) => this.options.storage.blocks.sizeOf?.(height) ?? null,
        },
      },
    );
  }

  /** Calls `listener` with each duration measured (metrics). Returns the unsubscribe function. */
  onTiming(listener: (timing: LoopTiming) => void): () => void {
    this.timingListeners.add(listener);
    return () => this.timingListeners.delete(listener);
  }

  private emitTiming(timing: LoopTiming): void {
    for (const listener of this.timingListeners) {
      // A metric is not worth a halt.
      try {
        listener(timing);
      } catch (error) {
        this.log.error({ error: String(error) }, 'a timing listener failed');
      }
    }
  }

  /** After the replica took an input: a new step (or round, or height) ends the one before. */
  private noteStep(): void {
    const r = this.replica;
    const now = this.stepNow;
    if (now !== null && now.height === r.height && now.round === r.round && now.step === r.step) {
      return;
    }
    const nowMs = this.clock.nowMs();
    if (now !== null && !now.ended) {
      this.emitTiming({ kind: 'step', step: STEP_NAMES[now.step]!, ms: nowMs - now.sinceMs });
      // Steps passed through within one input (a quorum already there) took no time.
      if (now.height === r.height && now.round === r.round) {
        for (let step = now.step + 1; step < r.step; step++) {
          this.emitTiming({ kind: 'step', step: STEP_NAMES[step]!, ms: 0 });
        }
      }
    }
    this.stepNow = { height: r.height, round: r.round, step: r.step, sinceMs: nowMs, ended: false };
  }

  /** The height was committed: its last step ends here, not when the next height starts. */
  private endStep(height: number): void {
    const now = this.stepNow;
    if (now === null || now.ended || now.height !== height) return;
    now.ended = true;
    this.emitTiming({
      kind: 'step',
      step: STEP_NAMES[now.step]!,
      ms: this.clock.nowMs() - now.sinceMs,
    });
  }

  get haltReport(): HaltReport | null {
    return this.halted;
  }

  /** The height this loop stops at (NodeLoopOptions.haltHeight), or null: never. */
  get haltHeight(): number | null {
    return this.options.haltHeight ?? null;
  }

  /** Where the loop stopped at its halt height (null: it did not). */
  get haltHeightStop(): HaltHeightStop | null {
    return this.haltedAtHeight;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /**
   * Whether the node is fetching committed blocks it lags behind
   * (Replica.catchingUp) and deciding its heights from them. A request out
   * is not enough: any peer may claim to be ahead (unverified) and is asked
   * at once, so a faulty one repeating the claim would keep a node at the
   * chain's tip "catching up" (/health 503) for good.
   */
  catchingUp(): boolean {
    return this.replica.lastDecidedFromPeer && this.replica.catchingUp(this.clock.nowMs());
  }

  /** Replays the WAL (the application must already stand at its last checkpoint) and joins the chain. */
  start(): void {
    const records = this.resumeRecords();
    const checkpoint = lastCheckpoint(records).height;
    const haltHeight = this.options.haltHeight;
    const refused = haltHeightRefusal(
      checkpoint,
      haltHeight,
      this.options.storage.snapshots.heights(),
    );
    if (refused !== null) throw refused;
    if (checkpoint !== this.options.app.height) {
      throw new NodeError(
        'RestoreFailed',
        `the application is at height ${this.options.app.height}, the WAL resumes from ${checkpoint}`,
      );
    }
    this.running = true;
    this.checkpointAppended = checkpoint;
    this.checkpointDurable = checkpoint;
    this.walBytesSinceRotation = records.reduce((n, r) => n + r.length, 0);
    this.heightStartMs = this.clock.nowMs();
    this.log.info(
      { height: checkpoint, walRecords: records.length },
      'replaying the WAL and joining the chain',
    );
    if (checkpoint === haltHeight) {
      // Stored up to the halt height without stopping there (it ran without
      // it, or waited at the next height for peers that stopped): the state
      // of the halt height is the one just restored, so it stops now as it
      // would have then, with that snapshot. Nothing of the WAL after the
      // checkpoint is replayed or signed again; the next code replays it.
      this.log.warn(
        { height: checkpoint },
        'the stored chain is at the halt height without its snapshot: saving it',
      );
      // Guarded as the executed height's snapshot is: a data directory found
      // replaced (or a failed write) halts the node with its report and exit
      // status, rather than failing the start.
      this.guard(() => {
        this.maybeSnapshot(checkpoint);
        this.stopAtHaltHeight();
      });
      return;
    }
    this.guard(() => this.perform(this.replica.start(records, this.clock.nowMs())));
    this.drain();
  }

  /**
   * The WAL's records to replay. The last checkpoint holds the appHash this
   * node computed at its height; the restore may have found another one,
   * which the chain's certified block after that height confirms (the code
   * was fixed after a divergence halt: restore.ts). The replica must then
   * build on the chain's hash, so its checkpoint is read with it
   * (correctedState); the file keeps its records (the signed ones after the
   * checkpoint still bind us) until the next checkpoint is written.
   */
  private resumeRecords(): Uint8Array[] {
    const { app, storage } = this.options;
    const records = storage.wal.readAll();
    let at = -1;
    for (let i = 0; i < records.length; i++) {
      try {
        if (decode(walRecordCodec, records[i]!, 'wal').kind === 'checkpoint') at = i;
      } catch {
        break;
      }
    }
    if (at < 0) return records;
    const record = decode(walRecordCodec, records[at]!, 'wal');
    if (record.kind !== 'checkpoint' || record.state.height !== app.height) return records;
    if (bytesEqual(record.state.appHash, app.appHash)) return records;
    const corrected = encode(walRecordCodec, {
      ...record,
      state: this.correctedState(record.state),
    });
    return [...records.slice(0, at), corrected, ...records.slice(at + 1)];
  }

  /**
   * The checkpoint's state as the application now computes it: its appHash,
   * and the set deciding the height after next, which the validator updates
   * of the checkpoint's height decide (the faulty code may have decided
   * others: a fault in jailing, say). The rest comes from the blocks. Only
   * when the stored block after that height is the chain's next block,
   * checked again here as when it arrived (this is what the replica will
   * sign on), and its header holds the application's appHash; RestoreFailed
   * otherwise.
   */
  private correctedState(state: ChainState): ChainState {
    const { app, storage, genesis, verifier, restoredResult } = this.options;
    const height = app.height;
    const refused = (why: string) =>
      new NodeError(
        'RestoreFailed',
        `the application's appHash after height ${height} is not the one the WAL recorded, and ${why}`,
      );
    const next = loadCommitted(storage, height + 1);
    if (next === null) throw refused('no certified block confirms it');
    const { block, commit } = next;
    const header = block.header;
    const validators = ValidatorSet.fromState(state.validators);
    if (
      header.chainId !== genesis.chainId ||
      header.height !== height + 1 ||
      !bytesEqual(header.previousBlockHash, state.lastBlockHash) ||
      !bytesEqual(header.validatorsHash, validators.hash) ||
      !bodyFactsOf(block).matchesHeader ||
      !certified(block, commit, validators, verifier)
    ) {
      throw refused(`the stored block ${height + 1} is not the chain's next block`);
    }
    if (!bytesEqual(header.previousAppHash, app.appHash)) {
      throw refused(`the chain's block ${height + 1} says ${toHex(header.previousAppHash)}`);
    }
    if (restoredResult === undefined || restoredResult === null) {
      throw refused(
        `the restore did not execute block ${height}, so the validator updates of that height are unknown`,
      );
    }
    return {
      ...state,
      appHash: app.appHash,
      nextValidators: validators.withUpdates(restoredResult.validatorUpdates).advanced().toState(),
    };
  }

  stop(): void {
    this.running = false;
    this.suspended = null;
    for (const cancel of this.cancels) cancel();
    this.cancels.clear();
    this.queue.length = 0;
    this.queuedMessageBytes = 0;
    this.heldBuild = null;
    this.pauseEnd = null;
  }

  /**
   * The mempool admitted transactions: a proposal waiting for them is built
   * once enough are there, and a commit pause ends (there is work to do).
   */
  txsAdmitted(): void {
    if (!this.running) return;
    const held = this.heldBuild;
    if (held !== null && this.pendingTxs() >= this.txsWanted()) this.releaseBuild(held);
    if (this.pauseEnd !== null && this.pendingTxs() > 0) this.pauseEnd();
  }

  private pendingTxs(): number {
    return this.options.pendingTxs?.() ?? 0;
  }

  private txsWanted(): number {
    return Math.max(1, Math.min(this.lastBlockTxs, BLOCK_TXS_MAX));
  }

  /** A consensus-channel payload from a peer. */
  onConsensusMessage(from: PeerId, payload: Uint8Array): void {
    if (!this.running) return;
    const problem = this.divergence.check(from, payload, this.options.app, this.replica);
    if (problem !== null) return this.haltDiverged(problem, from);
    this.enqueue({ kind: 'message', from, bytes: payload, nowMs: this.clock.nowMs() });
  }

  /**
   * A peer answered our catch-up request: it pruned below `firstHeight`. The
   * replica asks another peer at once; when none can serve our height, only
   * a restart by state sync (a fresh data directory) brings this node back.
   */
  onPeerPruned(from: PeerId, height: number, firstHeight: number): void {
    // Its effects would overtake those of the input being handled.
    if (!this.running || this.draining || this.suspended !== null) return;
    let askedAnother = false;
    this.guard(() => {
      const effects = this.replica.onPeerPruned(from, firstHeight, this.clock.nowMs());
      askedAnother = effects.some((e) => e.kind === 'send');
      this.perform(effects);
    });
    const fields = { peer: from, height, firstHeight, ourHeight: this.replica.height };
    if (askedAnother)
      this.log.info(fields, 'catch-up: peer pruned the blocks we need; asked another');
    // A request still out elsewhere (this answer was not to it) may yet be served.
    else if (firstHeight > this.replica.height && !this.replica.catchingUp(this.clock.nowMs())) {
      this.log.warn(
        fields,
        'catch-up: no known peer holds the blocks we need (pruned); restart this node with state sync',
      );
    }
  }

  private enqueue(input: Input): void {
    if (!this.running) return;
    if (input.kind === 'message') {
      const bytes = queuedBytesOf(input);
      if (this.queuedMessageBytes + bytes > LOOP_QUEUED_MESSAGE_BYTES_MAX) {
        this.stats.messagesDropped++;
        return;
      }
      this.queuedMessageBytes += bytes;
    }
    this.queue.push(input);
    this.drain();
  }

  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.running && this.suspended === null && this.queue.length > 0) {
        const input = this.queue.shift()!;
        if (input.kind === 'message') this.queuedMessageBytes -= queuedBytesOf(input);
        this.stats.inputs++;
        this.guard(() => this.perform(this.replica.handle(input)));
      }
    } finally {
      this.draining = false;
    }
  }

  /** Runs `work`; anything it throws (storage failure, a conflicting block) halts the node. */
  private guard(work: () => void): void {
    try {
      work();
      this.noteStep();
    } catch (error) {
      const e = error instanceof Error ? error : new Error(String(error));
      const code = 'code' in e && typeof e.code === 'string' ? e.code : e.name;
      this.halt({
        code,
        message: e.message,
        height: this.options.app.height,
        details: { stack: e.stack ?? '' },
      });
    }
  }

  halt(report: HaltReport): void {
    if (this.halted !== null) return;
    this.halted = report;
    // Fatal: the process must not be started again as it is (docs/operations.md, "Backups").
    if (report.code === 'StorageReplaced') {
      this.log.fatal({ ...report }, `node halted: ${report.code}: ${report.message}`);
    } else {
      this.log.error({ ...report }, `node halted: ${report.code}: ${report.message}`);
    }
    this.stop();
    this.options.hooks?.onHalt?.(report);
  }

  private perform(batch: readonly Effect[], from = 0): void {
    // A resumed batch (from > 0) was coalesced when it started.
    const effects = from === 0 ? coalesceSyncs(batch) : batch;
    for (let i = from; i < effects.length; i++) {
      if (!this.running) return;
      this.stats.effects++;
      if (this.performOne(effects[i]!) === 'awaitSync') {
        this.suspended = { effects, next: i + 1 };
        return;
      }
    }
  }

  /** The WAL's fdatasync started by performOne finished (`error` null) or failed. */
  private synced(error: Error | null, startedMs: number): void {
    const suspended = this.suspended;
    if (!this.running || suspended === null) return;
    this.suspended = null;
    this.guard(() => {
      if (error !== null) throw error;
      this.checkInPlace();
      this.noteSync(this.clock.nowMs() - startedMs);
      this.checkpointDurable = this.checkpointAppended;
      this.perform(suspended.effects, suspended.next);
    });
    this.drain();
  }

  /**
   * After a synced WAL record, before anything after it (the signed message
   * it precedes) is performed: a WAL that is no longer the file at its path
   * (the data directory replaced under the node, a backup restored while it
   * ran) holds votes no restart reads, and a restart on the restored one
   * could sign against them. StorageReplaced then halts the node here, so
   * nothing signed into the lost file leaves. About 10 µs against the sync's
   * hundreds or more (FileStorage.checkInPlace).
   */
  private checkInPlace(): void {
    this.options.storage.checkInPlace?.();
  }

  /** 'awaitSync' when the effect's fdatasync is running: the rest waits for synced(). */
  private performOne(effect: Effect): 'awaitSync' | void {
    const { network, storage } = this.options;
    switch (effect.kind) {
      case 'persist': {
        this.walBytesSinceRotation += effect.record.length;
        const checkpoint = effect.record[0] === WAL_CHECKPOINT_TAG;
        // At the halt height too: the WAL left then holds that checkpoint
        // alone, so what an older build started on it reads is that one
        // record (docs/operations.md, "An upgrade that changes execution").
        const rotate =
          checkpoint &&
          (this.walBytesSinceRotation >= (this.options.walRotateBytes ?? WAL_ROTATE_BYTES) ||
            this.options.app.height === this.options.haltHeight);
        // A checkpoint needs its sync only when the records before it are about
        // to be dropped. Otherwise losing it in a crash is the same as crashing
        // just before it was written (the block is stored, replay starts at the
        // checkpoint before), and the next signed vote's sync makes it durable.
        const sync = effect.sync && (!checkpoint || rotate);
        // Blocks are saved without waiting for their fsync (execute): a synced
        // WAL record can make a later checkpoint durable, which restart trusts
        // to find every block up to it, so the blocks go first. A signed record
        // whose sync is a later record's (coalesceSyncs) too: restart reads a
        // signed record on disk after a checkpoint as proof that its block was
        // synced (dropUnbackedCheckpoint).
        if (sync || effect.record[0] === WAL_SIGNED_TAG) this.flushStored();
        const started = this.clock.nowMs();
        // A rotation rewrites the file from the checkpoint, durably: that sync stays here.
        if (
          sync &&
          !rotate &&
          this.options.walSyncInBackground === true &&
          storage.wal.syncAsync !== undefined
        ) {
          storage.wal.append(effect.record, false);
          storage.wal.syncAsync((error) => this.synced(error, started));
          return 'awaitSync';
        }
        const index = storage.wal.append(effect.record, sync);
        // Before the rotation below too: it writes a new file at the WAL's path.
        if (sync) this.checkInPlace();
        // A checkpoint follows the execution of the application's height.
        if (checkpoint) this.checkpointAppended = this.options.app.height;
        if (sync) {
          this.noteSync(this.clock.nowMs() - started);
          this.checkpointDurable = this.checkpointAppended;
        }
        // The WAL is replayed from its last checkpoint: what comes before it is
        // no longer needed once that height's block is stored (it is: the block
        // is saved before it is executed, and the checkpoint follows execution).
        if (rotate) {
          storage.wal.truncateBefore(index);
          this.walBytesSinceRotation = effect.record.length;
          this.stats.walRotations++;
        }
        // The replica entered the next height in the same batch: what follows
        // this checkpoint (a proposal to build, a prevote) is not performed.
        if (checkpoint && this.options.app.height === this.options.haltHeight) {
          this.stopAtHaltHeight();
        }
        return;
      }
      case 'send':
        network.send(effect.to, frame(CHANNEL.consensus, effect.bytes));
        return;
      case 'broadcast':
        network.broadcast(frame(CHANNEL.consensus, effect.bytes));
        return;
      case 'scheduleTimeout': {
        const timeout = effect.timeout;
        const cancel = this.clock.after(effect.delayMs, () => {
          this.cancels.delete(cancel);
          this.enqueue({ kind: 'timeout', timeout, nowMs: this.clock.nowMs() });
        });
        this.cancels.add(cancel);
        return;
      }
      case 'buildProposal': {
        const waitMs = this.options.proposeWaitMs ?? 0;
        // A later round builds at once: the first proposal of the height failed.
        if (waitMs <= 0 || effect.round > 0 || this.pendingTxs() >= this.txsWanted()) {
          this.queue.push(this.build(effect.height, effect.round));
          return;
        }
        this.holdBuild(effect.height, effect.round, waitMs);
        return;
      }
      case 'finalizeBlock':
        return this.execute(effect.block, effect.blockHash, effect.commit, effect.misbehavior);
      case 'committed':
        this.endStep(effect.height);
        this.stats.lastCommitLatencyMs = this.clock.nowMs() - this.heightStartMs;
        if (effect.round > 0) this.stats.decidedAfterRound0++;
        this.log.debug(
          { height: effect.height, round: effect.round, blockHash: toHex(effect.blockHash) },
          'committed',
        );
        return;
      case 'evidenceSeen':
        this.log.warn(
          { height: effect.evidence.voteA.height, validator: effect.evidence.voteA.validatorIndex },
          'a validator signed two conflicting votes',
        );
        return;
      case 'diverged':
        return this.haltDiverged(effect);
      case 'signingPaused':
        this.log.error(
          { height: effect.height, untilHeight: effect.untilHeight },
          "the certificate holds a precommit by this node's key that this node never signed: " +
            'another process signs with this key, or this home lost its WAL; signing is paused ' +
            'until the other signer has been silent long enough. Stop the other process.',
        );
        return;
    }
  }

  /** A block certified by the validators says the state after `height` is not ours. */
  private haltDiverged(
    problem: {
      height: number;
      ourAppHash: Uint8Array;
      chainAppHash: Uint8Array;
      block: CommittedBlock;
    },
    from?: PeerId,
  ): void {
    this.storeCertified(problem.block);
    this.halt({
      code: 'AppHashMismatch',
      message: `a block certified by the validators says the state after height ${problem.height} is ${toHex(problem.chainAppHash)}, ours is ${toHex(problem.ourAppHash)}`,
      height: problem.height,
      details: {
        ...(from !== undefined ? { from } : {}),
        ourAppHash: toHex(problem.ourAppHash),
        chainAppHash: toHex(problem.chainAppHash),
        certifiedHeight: problem.height + 1,
      },
    });
  }

  /**
   * Keeps the certified block that showed a divergence, when it follows our
   * last stored block: it is the chain's, and its header is the chain's word
   * on the state after our height. A restart with the code fixed restores
   * against it rather than against our own checkpoint, which holds the state
   * the other code computed (restore.ts). The same is on disk after a crash
   * between saving a block and executing it.
   */
  private storeCertified({ block, commit }: CommittedBlock): void {
    const { storage } = this.options;
    const height = block.header.height;
    try {
      if (height !== this.options.app.height + 1 || storage.blocks.lastHeight() !== height - 1) {
        return;
      }
      const last = loadCommitted(storage, height - 1);
      if (last === null || !bytesEqual(blockHashOf(last.block), block.header.previousBlockHash)) {
        return;
      }
      storage.blocks.save(height, encode(committedBlockCodec, { block, commit }));
    } catch (error) {
      // The halt goes on: without the block, a restart compares with our checkpoint.
      this.log.error({ height, error: String(error) }, 'the certified block was not stored');
    }
  }

  private build(height: number, round: number): Input {
    const candidates = this.options.reap?.(height) ?? [];
    const txs = this.options.app.prepareProposal(height, round, candidates);
    return { kind: 'proposalBuilt', height, round, txs, nowMs: this.clock.nowMs() };
  }

  private holdBuild(height: number, round: number, waitMs: number): void {
    const cancel = this.clock.after(waitMs, () => {
      this.cancels.delete(cancel);
      if (this.heldBuild?.cancel === cancel) this.releaseBuild(this.heldBuild);
    });
    this.cancels.add(cancel);
    this.heldBuild = { height, round, cancel };
  }

  private releaseBuild(held: { height: number; round: number; cancel: () => void }): void {
    this.heldBuild = null;
    held.cancel();
    this.cancels.delete(held.cancel);
    // Built later than asked: the replica drops it if it has moved on meanwhile.
    this.guard(() => this.enqueue(this.build(held.height, held.round)));
  }

  /** The barrier for the deferred block saves. */
  private flushStored(): void {
    this.options.storage.blocks.flush?.();
  }

  private noteSync(ms: number): void {
    this.stats.walSyncs++;
    this.stats.walSyncMsTotal += ms;
    this.stats.walSyncMsLast = ms;
    this.emitTiming({ kind: 'walSync', ms });
  }

  private execute(
    block: Block,
    blockHash: Uint8Array,
    commit: CommitCertificate,
    misbehavior: readonly Misbehavior[],
  ): void {
    const { app, storage } = this.options;
    const height = block.header.height;
    if (height !== app.height + 1) {
      throw new NodeError(
        'RestoreFailed',
        `asked to execute height ${height} with the application at ${app.height}`,
      );
    }
    // Not synced here: the block is already durable in the WAL of every
    // validator that precommitted it (its proposal is logged before the synced
    // vote), and the fsync runs in the background while the block executes.
    if (!this.storedAlready(height, blockHash)) {
      const bytes = encode(committedBlockCodec, { block, commit });
      if (storage.blocks.saveDeferred) storage.blocks.saveDeferred(height, bytes);
      else storage.blocks.save(height, bytes);
    }
    const started = this.clock.nowMs();
    const result = app.finalizeBlock(block, commit, misbehavior);
    app.commit();
    const executionMs = this.clock.nowMs() - started;
    this.stats.lastExecutionMs = executionMs;
    this.stats.blocksExecuted++;
    this.stats.txsCommitted += block.txs.length;
    // The node saves the block's results in onExecuted: they go to the results
    // log before a snapshot of this height, which a restart would resume from
    // without executing the block again (results missing there would leave a
    // gap, and the results log restarts past a gap, dropping every older height).
    this.options.hooks?.onExecuted?.({ block, blockHash, commit, result, executionMs });
    this.maybeSnapshot(height);
    this.lastBlockTxs = block.txs.length;
    const pauseMs = this.options.commitPauseMs ?? 0;
    // A node behind the chain decides its heights from peers' certified
    // blocks: no votes or transactions to wait for, and a pause after each
    // would hold it to the chain's own pace, never closing the gap.
    if (pauseMs <= 0 || this.pendingTxs() > 0 || this.catchingUp()) {
      this.heightStartMs = this.clock.nowMs();
      this.queue.push({ kind: 'blockExecuted', height, result, nowMs: this.clock.nowMs() });
      return;
    }
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      this.cancels.delete(cancel);
      cancel();
      this.pauseEnd = null;
      this.heightStartMs = this.clock.nowMs();
      this.enqueue({ kind: 'blockExecuted', height, result, nowMs: this.clock.nowMs() });
    };
    const cancel = this.clock.after(pauseMs, end);
    this.cancels.add(cancel);
    this.pauseEnd = end;
  }

  /**
   * Whether the block store already holds this very block at `height`: a
   * crash can keep a block and lose the WAL tail after it (its checkpoint and
   * the votes that certified it), and the restarted node decides the height
   * again, perhaps with another certificate (other votes, or a peer's). Any
   * certificate of the block will do; another block at the height is left to
   * the store to refuse (BlockConflict).
   */
  private storedAlready(height: number, blockHash: Uint8Array): boolean {
    if (height > this.options.storage.blocks.lastHeight()) return false;
    const stored = loadCommitted(this.options.storage, height);
    return stored !== null && bytesEqual(blockHashOf(stored.block), blockHash);
  }

  private loadToServe(height: number): CommittedBlock | null {
    try {
      return loadCommitted(this.options.storage, height);
    } catch (error) {
      if (!(error instanceof StorageError)) throw error;
      this.log.error({ height, error: error.message }, 'stored block unreadable; not served');
      return null;
    }
  }

  private maybeSnapshot(height: number): void {
    const every = this.options.snapshotEveryHeights;
    // The state the next code starts from at a halt height: saved whatever the interval.
    const halting = height === this.options.haltHeight;
    if (!halting && (every <= 0 || height % every !== 0)) return;
    // Snapshots are written, and they and the blocks pruned, by path: into a
    // data directory replaced under the node they would go into the restored
    // copy (and prune what it needs). A full node, which signs nothing, finds
    // a replaced directory here too.
    this.checkInPlace();
    const snapshots = this.options.storage.snapshots;
    // Restart needs every block between a snapshot and the checkpoint after
    // it, and the results of every height up to the snapshot.
    this.flushStored();
    this.options.flush?.();
    try {
      snapshots.save(height, this.options.app.encodeSnapshot());
    } catch (error) {
      // A state past SNAPSHOT_BYTES_MAX: every validator reaches this height
      // with the same state, so halting here would stop the whole chain.
      // Snapshots only make restarts faster: the older ones (and the blocks
      // after them, not pruned below them) still restart the node.
      if (!(error instanceof StorageError) || error.code !== 'StorageTooLarge') throw error;
      this.stats.snapshotsTooLarge++;
      this.log.error({ height, error: error.message }, 'state too large for a snapshot; not saved');
      return;
    }
    // Pruning keeps the newest snapshots only, and a restart after a power cut
    // resumes from the last durable checkpoint: made durable here (height − 1,
    // at or above the second newest snapshot), or a full node, which syncs its
    // WAL only to sign, could lose every snapshot at or below it.
    if (this.checkpointDurable < this.checkpointAppended) {
      this.options.storage.wal.sync();
      this.checkpointDurable = this.checkpointAppended;
    }
    // That checkpoint is not always height − 1: a restart whose replay ran
    // through a height whose checkpoint the crash had lost does not write it
    // again (a replay writes nothing), so until the next height executes the
    // last checkpoint is older. With snapshots at every height, the newest
    // snapshots kept could then all lie above it, and the one a restart needs
    // was deleted (with the blocks below it already pruned, the node could not
    // start). So the newest snapshot at or below the durable checkpoint is
    // kept, and those above it, whatever snapshotsKept says.
    const kept = Math.max(1, this.options.snapshotsKept);
    const heights = snapshots.heights();
    const restartFrom = heights.filter((h) => h <= this.checkpointDurable).pop();
    const needed = restartFrom === undefined ? 0 : heights.filter((h) => h >= restartFrom).length;
    // One kept (never with pruned blocks: config.ts) promises no restart point but genesis.
    snapshots.prune(kept >= 2 ? Math.max(kept, needed) : kept);
    this.stats.snapshotsSaved++;
    this.pruneBlocks(height);
  }

  /**
   * The checkpoint of the halt height is appended. A restart must find it
   * after a power cut too, with the snapshot of the height (saved when its
   * block executed) and every block and result up to it: those first, as
   * before any WAL sync, then the WAL. Then the loop stops for good: nothing
   * of the next height is signed, and the node is told to shut down.
   */
  private stopAtHaltHeight(): void {
    const { app, storage } = this.options;
    const height = app.height;
    this.flushStored();
    this.options.flush?.();
    if (this.checkpointDurable < this.checkpointAppended) {
      const started = this.clock.nowMs();
      storage.wal.sync();
      this.noteSync(this.clock.nowMs() - started);
      this.checkpointDurable = this.checkpointAppended;
    }
    const stop: HaltHeightStop = {
      height,
      appHash: app.appHash,
      snapshotSaved: storage.snapshots.heights().includes(height),
    };
    this.haltedAtHeight = stop;
    this.stop();
    const fields = { height, appHash: toHex(stop.appHash) };
    if (stop.snapshotSaved) {
      this.log.warn({ ...fields, snapshotHeight: height }, 'halt height reached');
    } else {
      // Every validator has the same state, so every one is in this case.
      this.log.error(
        fields,
        'halt height reached, but its state was too large for a snapshot: a restart re-executes the heights after the last snapshot saved, which code that executes them otherwise cannot do',
      );
    }
    this.options.hooks?.onHaltHeight?.(stop);
  }

  /**
   * Drops blocks below max(height − blocksKept + 1) but never below the newest
   * snapshot at or below the last durable checkpoint: a restart resumes from
   * that checkpoint and replays the blocks after its snapshot.
   */
  private pruneBlocks(height: number): void {
    const kept = this.options.blocksKept ?? 0;
    const blocks = this.options.storage.blocks;
    if (kept <= 0 || blocks.pruneBefore === undefined) return;
    const durable = this.checkpointDurable;
    const restartFrom = this.options.storage.snapshots
      .heights()
      .filter((h) => h <= durable)
      .pop();
    if (restartFrom === undefined) return;
    const floor = Math.min(height - kept + 1, restartFrom);
    if (floor <= blocks.firstHeight()) return;
    blocks.pruneBefore(floor);
    this.stats.blocksPruned = blocks.firstHeight() - 1;
  }
}

/**
 * Whether a start with the WAL's checkpoint (the height the node resumes
 * from) at `checkpoint` is refused for its halt height: past it, or at it
 * with a snapshot of it (the node stopped there). At it without one, the
 * start goes on to save that snapshot and stop (NodeLoop.start); null then,
 * and without a halt height or below it.
 */
export function haltHeightRefusal(
  checkpoint: number,
  haltHeight: number | undefined,
  snapshotHeights: readonly number[],
): NodeError | null {
  if (haltHeight === undefined || checkpoint < haltHeight) return null;
  if (checkpoint === haltHeight && !snapshotHeights.includes(haltHeight)) return null;
  return haltHeightReached(checkpoint, haltHeight, snapshotHeights);
}

/**
 * A start with the WAL's checkpoint (the height the node resumes from) past
 * its halt height, or at it with its snapshot: the node already stopped there
 * (or went past it before it was set), and cannot honour it; refused rather
 * than run on.
 * `snapshotHeights` (the node's snapshots) tell the two apart: a node that
 * stopped there holds a snapshot from the halt height on, which the next code
 * starts from once the halt height is removed. One that holds none did not
 * stop there: the next code would restore an older snapshot and execute the
 * heights up to the halt height under its own rules, halting on the first
 * that it executes differently (docs/operations.md, "Upgrades"), so removing
 * the halt height is not the way on.
 */
function haltHeightReached(
  height: number,
  haltHeight: number,
  snapshotHeights: readonly number[],
): NodeError {
  const reached = `the stored chain is at height ${height}, at or past the halt height ${haltHeight} (config.json "haltHeight" or --halt-height)`;
  if (snapshotHeights.some((h) => h >= haltHeight && h <= height)) {
    return new NodeError(
      'HaltHeightReached',
      `${reached} where this node stops: to go on, remove the halt height (and run the code meant for the heights after it), or raise it above ${height}`,
    );
  }
  return new NodeError(
    'HaltHeightReached',
    `${reached}, and this node holds no snapshot of a height from ${haltHeight} to ${height}: it did not stop at ${haltHeight} (it ran without that halt height, or was given it too late). ` +
      `Code that executes the heights up to ${haltHeight} otherwise cannot start on this data: it would execute them again from an older snapshot and halt with AppHashMismatch. ` +
      `Copy data/snapshots/${snapshotFileName(haltHeight)} from a node that stopped at ${haltHeight} into this node's data/snapshots/, then remove the halt height and start the new code (docs/operations.md, "Upgrades"); ` +
      `or raise the halt height above ${height} to go on with this code`,
  );
}

/** The tag bytes of a checkpoint and of a signed WAL record (consensus codec.ts, WAL_TAG). */
const WAL_CHECKPOINT_TAG = 0;
const WAL_SIGNED_TAG = 2;

/** A synced WAL record other than a checkpoint (whose sync may come with a rotation). */
function isSyncedRecord(effect: Effect): boolean {
  return effect.kind === 'persist' && effect.sync && effect.record[0] !== WAL_CHECKPOINT_TAG;
}

function withoutSync(effect: Effect): Effect {
  return effect.kind === 'persist' ? { ...effect, sync: false } : effect;
}

/** What may be performed while a synced record waits for a later record's sync. */
function mayWaitForLaterSync(effect: Effect): boolean {
  return (
    effect.kind === 'send' ||
    effect.kind === 'broadcast' ||
    effect.kind === 'scheduleTimeout' ||
    (effect.kind === 'persist' && !effect.sync)
  );
}

/** What a held peer message counts against LOOP_QUEUED_MESSAGE_BYTES_MAX: its bytes and its overhead. */
function queuedBytesOf(input: Input & { kind: 'message' }): number {
  return input.bytes.length + LOOP_QUEUED_MESSAGE_OVERHEAD_BYTES;
}

/**
 * One sync for synced records that follow each other in a batch with only
 * sends, timeouts and unsynced records between them: the earlier ones are
 * appended without a sync and the sends between them wait, in order, for the
 * last one's sync. A proposer signs its proposal and then its prevote for it
 * in one batch (and a validator whose prevote completes the quorum, its
 * precommit too): one fdatasync instead of two or three, and every signed
 * message still leaves only once its record is durable. The sends wait a
 * little longer; the last signature leaves sooner.
 */
export function coalesceSyncs(effects: readonly Effect[]): readonly Effect[] {
  let synceds = 0;
  for (const effect of effects) if (isSyncedRecord(effect)) synceds++;
  if (synceds < 2) return effects;
  const out: Effect[] = [];
  let i = 0;
  while (i < effects.length) {
    let synced = effects[i]!;
    if (!isSyncedRecord(synced)) {
      out.push(synced);
      i++;
      continue;
    }
    const sends: Effect[] = [];
    for (;;) {
      let next = i + 1;
      while (next < effects.length && mayWaitForLaterSync(effects[next]!)) next++;
      if (next >= effects.length || !isSyncedRecord(effects[next]!)) break;
      out.push(withoutSync(synced));
      for (let k = i + 1; k < next; k++) {
        const between = effects[k]!;
        if (between.kind === 'send' || between.kind === 'broadcast') sends.push(between);
        else out.push(between);
      }
      i = next;
      synced = effects[i]!;
    }
    out.push(synced, ...sends);
    i++;
  }
  return out;
}

export interface Checkpoint {
  readonly height: number;
  /** The application's hash after `height` (the genesis appHash at 0). */
  readonly appHash: Uint8Array | null;
}

/**
 * Where the replica will resume: the last checkpoint in the records (height 0
 * if none). Like the replica, it reads no further than a damaged record.
 */
export function lastCheckpoint(records: readonly Uint8Array[]): Checkpoint {
  let found: Checkpoint = { height: 0, appHash: null };
  for (const bytes of records) {
    try {
      const record = decode(walRecordCodec, bytes, 'wal');
      if (record.kind === 'checkpoint') {
        found = { height: record.state.height, appHash: record.state.appHash };
      }
    } catch {
      break;
    }
  }
  return found;
}

export function loadCommitted(storage: Storage, height: number): CommittedBlock | null {
  const bytes = storage.blocks.load(height);
  if (bytes === null) return null;
  try {
    return decode(committedBlockCodec, bytes, 'block');
  } catch {
    return null;
  }
}
