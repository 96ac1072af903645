// The simulator: N validators' consensus cores in one process, on simulated
// ports — a virtual clock (a discrete-event queue), a faulty network, storage
// that may lose its unsynced tail, crashes, restarts and pauses, and
// Byzantine validators — with the checkers watching every step. One seed, one
// run: every random choice comes from the seeded PRNG's streams, and the
// trace hash (sha256 over every event fired, in order) proves it.

import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { Reader, decode, encode } from '../codec/wire.ts';
import { STEP, messageCodec, walRecordCodec } from '../consensus/index.ts';
import type {
  Application,
  Block,
  CommittedBlock,
  Effect,
  Genesis,
  Input,
  Message,
  TimeoutConfig,
} from '../consensus/index.ts';
import { decodeMessage } from '../consensus/memo.ts';
import { Replica, evidenceHashOf } from '../consensus/replica.ts';
import { ValidatorSet } from '../consensus/validators.ts';
import { sha256 } from '../crypto/index.ts';
import { assert } from '../lib/assert.ts';
import { bytesEqual, toHex, utf8 } from '../lib/bytes.ts';
import { Prng } from '../lib/prng.ts';
import {
  SIM_BLOCK_EXECUTE_US,
  SIM_BLOCK_STORE_HEIGHTS,
  SIM_EVIDENCE_BOUND_HEIGHTS_MIN,
  SIM_LIVENESS_HEIGHTS,
  SIM_LIVENESS_TIMEOUTS,
  SIM_TRACE_BUFFER_BYTES,
  SIM_WAL_COMPACT_RECORDS,
} from '../lib/limits.ts';
import { hashChainApp } from './app.ts';
import { DRAWN_BEHAVIORS, FORGING_BEHAVIORS, Forger } from './byzantine.ts';
import type { ByzantineBehavior } from './byzantine.ts';
import { Checkers, SAFETY_KINDS } from './checkers.ts';
import type { Violation } from './checkers.ts';
import { checkConfig, faultsTolerated, replayCommand, timeoutsFor } from './config.ts';
import type { SimConfig } from './config.ts';
import { SimCrypto } from './crypto.ts';
import type { SimKey, VerifyStats } from './crypto.ts';
import { scheduleFaults } from './faults.ts';
import { Network } from './network.ts';
import type { NetworkStats } from './network.ts';
import { EventQueue } from './queue.ts';
import { buildTopology, maxLatencyUs } from './topology.ts';
import type { Topology } from './topology.ts';

export const SIM_CHAIN_ID = 'zomma-sim';
/** Simulated wall-clock time at the start of every run (2024-01-01T00:00:00Z). */
export const SIM_GENESIS_MS = 1_704_067_200_000;

// --- nodes ------------------------------------------------------------------------

export interface SimNode {
  readonly index: number;
  /** The validator key this node signs with (twins share one). */
  readonly keyIndex: number;
  readonly behavior: ByzantineBehavior | null;
  readonly peerId: string;
  readonly app: Application;
  replica: Replica;
  /** The write-ahead log: records[0..syncedLength) survive a crash. */
  readonly wal: Uint8Array[];
  syncedLength: number;
  lastCheckpointAt: number;
  readonly blocks: Map<number, CommittedBlock>;
  up: boolean;
  pausedUntilUs: number;
  incarnation: number;
  /** Crash after this many more effects (-1: no crash pending). */
  crashAfterEffects: number;
  /** Time of the last crash (-1: never). */
  crashedAtUs: number;
  readonly skewMs: number;
  /** Highest height this node committed. */
  committedHeight: number;
  readonly mempool: Map<string, Uint8Array>;
  readonly forger: Forger | null;
  /** Peers that see the first version of a Byzantine node's lie (the rest see the second). */
  readonly groupA: ReadonlySet<number>;
}

export function isHonest(node: SimNode): boolean {
  return node.behavior === null;
}

// --- events -------------------------------------------------------------------------

export type SimEvent =
  | {
      readonly kind: 'deliver';
      readonly to: number;
      readonly from: number;
      readonly bytes: Uint8Array;
    }
  | {
      readonly kind: 'input';
      readonly to: number;
      readonly input: Input;
      readonly incarnation: number;
    }
  | { readonly kind: 'tx'; readonly to: number; readonly tx: Uint8Array; readonly origin: boolean }
  | { readonly kind: 'fault'; readonly label: string; readonly apply: () => void };

/** One message of the recorded height, for the timeline. */
export interface TimelineEntry {
  readonly kind: 'proposal' | 'prevote' | 'precommit' | 'commit' | 'timeout' | 'evidence';
  readonly from: number;
  /** -1 for events local to `from` (commit, timeout). */
  readonly to: number;
  readonly round: number;
  readonly sentUs: number;
  /** -1 when the network dropped it. */
  readonly arrivedUs: number;
  readonly value: string;
}

/** One honest node's commit of one height, timed from the height's round-0 proposal. */
export interface LatencySample {
  readonly height: number;
  readonly node: number;
  /** The node that made the round-0 proposal. */
  readonly proposer: number;
  readonly latencyUs: number;
}

// --- results ------------------------------------------------------------------------

export interface SimResult {
  readonly config: SimConfig;
  readonly nodes: number;
  /** The lowest height every honest node committed. */
  readonly heightsCommitted: number;
  readonly violations: readonly Violation[];
  readonly safetyViolations: number;
  readonly livenessViolations: number;
  /** Heights decided in 1, 2, 3 … rounds. */
  readonly roundsPerHeight: Record<string, number>;
  /** Per (height, honest node): commit time minus the time the height's round-0 proposal was made. */
  readonly commitLatenciesUs: readonly number[];
  readonly latencySamples: readonly LatencySample[];
  readonly traceHash: string;
  readonly simulatedUs: number;
  readonly eventsFired: number;
  readonly verify: VerifyStats;
  readonly network: NetworkStats;
  readonly evidence: { made: number; seen: number; committed: number };
  readonly crashes: { crashes: number; restarts: number; walRecordsLost: number };
  readonly timeline: readonly TimelineEntry[];
  readonly replay: string;
}

// --- the simulator ---------------------------------------------------------------------

export class Simulator {
  readonly config: SimConfig;
  readonly nodes: SimNode[] = [];
  readonly keys: SimKey[] = [];
  readonly genesis: Genesis;
  readonly crypto: SimCrypto;
  readonly topology: Topology;
  readonly network: Network;
  readonly checkers: Checkers;
  readonly timeouts: TimeoutConfig;
  nowUs = 0;
  /** When every fault stops (crashed nodes restart, partitions heal); 0 for a fault-free run. */
  healUs = 0;
  /** The highest height any honest node had committed when the network healed (-1 before). */
  heightAtHeal = -1;
  eventsFired = 0;
  /** Crashes, restarts and WAL records lost in crashes. */
  readonly crashes = { crashes: 0, restarts: 0, walRecordsLost: 0 };
  readonly timeline: TimelineEntry[] = [];
  private readonly queue = new EventQueue<SimEvent>();
  private readonly trace: Hash = createHash('sha256');
  private readonly traceHeader = new Float64Array(3);
  private readonly traceHeaderBytes = new Uint8Array(this.traceHeader.buffer);
  // Trace bytes are gathered here and hashed a buffer at a time: one native
  // update() per event was a large share of a 100-validator run. The digest is
  // the same (sha256 of the same bytes, in the same order).
  private readonly traceBuffer = new Uint8Array(SIM_TRACE_BUFFER_BYTES);
  private traceBufferLength = 0;
  private readonly prng: Prng;
  private readonly faultPrng: Prng;
  private readonly peerIndex = new Map<string, number>();
  /** Each node's peer name, by index. */
  private readonly peerIds: string[] = [];
  private checkpointTag = -1;
  /** Whether any node committed since the run last asked whether it is done (asking is O(nodes)). */
  private committedSinceCheck = true;
  private signedTag = -1;
  /** When each height's round-0 proposal was made (the start of its latency). */
  private readonly heightStartUs = new Map<number, { atUs: number; proposer: number }>();
  private readonly commitUs = new Map<number, { node: number; atUs: number }[]>();
  private readonly txOrigin = new Map<string, number>();
  /** 1 for a key no Byzantine node holds, by key index. */
  private readonly honestKeys: Uint8Array;
  private readonly genesisSet: ValidatorSet;
  private readonly keyIndexByPublicKey = new Map<string, number>();
  /**
   * The consensus sets as the honest replicas hold them, each from the height
   * it first decides (the genesis set from 1): a vote of another height than
   * its sender's names its signer by an index into that height's set.
   */
  private readonly setChanges: { fromHeight: number; set: ValidatorSet }[] = [];
  /** The highest height whose set is in setChanges. */
  private setsKnownHeight = 1;
  /** Key index of each member, by the members array (advanced sets share it). */
  private readonly keyIndexBySet = new WeakMap<readonly unknown[], Int32Array>();
  /** Observers of committed transactions (the latency report). */
  onTxCommitted: ((tx: Uint8Array, node: number, atUs: number) => void) | null = null;

  constructor(config: SimConfig) {
    checkConfig(config);
    this.config = config;
    this.prng = new Prng(config.seed);
    const keyPrng = this.prng.fork();
    this.faultPrng = this.prng.fork();
    const netPrng = this.prng.fork();
    this.crypto = new SimCrypto(config.crypto, SIM_CHAIN_ID, config.memoize, `${config.seed}`);
    this.timeouts = timeoutsFor(config.topology);

    // Byzantine validators are the last `byzantine` keys, each with its behaviour.
    const behaviors: (ByzantineBehavior | null)[] = [];
    for (let k = 0; k < config.validators; k++) {
      const byzantine = k >= config.validators - config.byzantine;
      const behavior = !byzantine
        ? null
        : config.behavior === 'mixed'
          ? keyPrng.pick(DRAWN_BEHAVIORS)
          : config.behavior;
      behaviors.push(behavior);
      this.keys.push(this.crypto.key(k));
    }
    this.honestKeys = Uint8Array.from(behaviors, (b) => (b === null ? 1 : 0));
    this.checkers = new Checkers(config.stopOnViolation ?? true, this.honestKeys);
    this.keys.forEach((k, i) => this.keyIndexByPublicKey.set(toHex(k.publicKey), i));
    this.genesis = {
      chainId: SIM_CHAIN_ID,
      genesisTimeMs: SIM_GENESIS_MS,
      validators: this.keys.map((k) => ({ publicKey: k.publicKey, power: 10 })),
      appHash: sha256(utf8(`zomma-sim-genesis/${config.seed}`)),
    };
    this.genesisSet = ValidatorSet.fromUpdates(this.genesis.validators);
    this.setChanges.push({ fromHeight: 1, set: this.genesisSet });
    // One node per key, then a twin node for each key whose behaviour is twins.
    const nodeKeys: number[] = behaviors.map((_, k) => k);
    for (let k = 0; k < config.validators; k++) if (behaviors[k] === 'twins') nodeKeys.push(k);
    this.topology = buildTopology(config.topology, nodeKeys.length, config.seed, nodeKeys);
    this.network = new Network(this.topology, netPrng);
    const skewMax = config.faults === 'none' ? 5 : 50;
    // Peers are named as the transport names them, by the key they connect
    // with: the replica gives validators of the next height their own share of
    // the messages it keeps for it. A twin (a second node with its key) gets
    // another name, so it counts as a full node.
    for (let i = 0; i < nodeKeys.length; i++) {
      const name = i < config.validators ? toHex(this.keys[nodeKeys[i]!]!.publicKey) : `n${i}`;
      this.peerIds.push(name);
      this.peerIndex.set(name, i);
    }
    for (let i = 0; i < nodeKeys.length; i++) {
      const keyIndex = nodeKeys[i]!;
      const behavior = behaviors[keyIndex]!;
      const peers = nodeKeys.map((_, j) => j).filter((j) => j !== i);
      keyPrng.shuffle(peers);
      const app = (config.app ?? hashChainApp)({
        nodeIndex: i,
        genesisAppHash: this.genesis.appHash,
        fillerTxs: config.txsPerBlock,
        genesisValidators: this.genesis.validators.length,
      });
      const node: SimNode = {
        index: i,
        keyIndex,
        behavior,
        peerId: this.peerIds[i]!,
        app,
        replica: null as unknown as Replica,
        wal: [],
        syncedLength: 0,
        lastCheckpointAt: -1,
        blocks: new Map(),
        up: true,
        pausedUntilUs: 0,
        incarnation: 0,
        crashAfterEffects: -1,
        crashedAtUs: -1,
        skewMs: keyPrng.between(-skewMax, skewMax),
        committedHeight: 0,
        mempool: new Map(),
        forger:
          behavior !== null && FORGING_BEHAVIORS.includes(behavior)
            ? new Forger(this.keys[keyIndex]!.signer, {
                setAt: (height) => this.setAt(height),
                blockTimeMs: (height) => this.nodes[i]?.blocks.get(height)?.block.header.timeMs,
              })
            : null,
        groupA: new Set(peers.slice(0, Math.ceil(peers.length / 2))),
      };
      node.replica = this.makeReplica(node);
      this.nodes.push(node);
    }
    const twins = this.nodes.filter((n) => n.index >= config.validators);
    this.healUs = scheduleFaults(this, this.faultPrng, twins.length > 0);
  }

  get honestNodes(): SimNode[] {
    return this.nodes.filter(isHonest);
  }

  /** More Byzantine validators than the protocol tolerates: safety may break, liveness is not owed. */
  get beyondF(): boolean {
    return this.config.byzantine > faultsTolerated(this.config.validators);
  }

  private makeReplica(node: SimNode): Replica {
    return new Replica(
      {
        genesis: this.genesis,
        timeouts: this.timeouts,
        // A Byzantine node means to sign twice: it does not watch for its own key.
        ...(isHonest(node) ? {} : { doubleSignWatchHeights: 0 }),
      },
      {
        signer: this.keys[node.keyIndex]!.signer,
        verifier: this.crypto,
        app: node.app,
        blocks: { load: (h) => node.blocks.get(h) ?? null },
      },
    );
  }

  nowMsOf(node: SimNode): number {
    return SIM_GENESIS_MS + Math.floor(this.nowUs / 1000) + node.skewMs;
  }

  schedule(atUs: number, event: SimEvent): void {
    this.queue.push(atUs, event);
  }

  /** Schedules a fault action (partition, crash …) at a time, with a label for the trace. */
  at(atUs: number, label: string, apply: () => void): void {
    this.queue.push(atUs, { kind: 'fault', label, apply });
  }

  // --- running -------------------------------------------------------------------------

  /** Runs to the end: every honest node at the target height, a safety violation, or the deadline. */
  run(): SimResult {
    for (const node of this.nodes) this.perform(node, node.replica.start([], this.nowMsOf(node)));
    const deadlineUs = this.deadlineUs();
    while (!this.checkers.stop) {
      if (this.nowUs >= this.healUs && this.heightAtHeal < 0) this.noteHeal();
      if (this.heightAtHeal >= 0 && this.committedSinceCheck && this.done()) break;
      this.committedSinceCheck = false;
      const queue = this.queue;
      if (queue.peekUs() > deadlineUs) {
        this.nowUs = Math.max(this.nowUs, Math.min(deadlineUs, queue.peekUs()));
        break;
      }
      const event = queue.popEvent()!;
      this.nowUs = queue.poppedUs;
      this.fire(event);
    }
    if (this.heightAtHeal < 0) this.noteHeal();
    return this.finish();
  }

  /** The target height of the run: the configured heights, and progress after the heal. */
  private targetHeight(): number {
    return Math.max(this.config.heights, this.heightAtHeal + SIM_LIVENESS_HEIGHTS);
  }

  private done(): boolean {
    const target = this.targetHeight();
    for (const node of this.nodes)
      if (isHonest(node) && node.committedHeight < target) return false;
    return true;
  }

  private noteHeal(): void {
    let top = 0;
    for (const node of this.nodes) if (isHonest(node)) top = Math.max(top, node.committedHeight);
    this.heightAtHeal = top;
  }

  /** Liveness bound: after the heal, a number of the longest timeouts per height to reach the target. */
  private livenessBoundUs(): number {
    const t = this.timeouts;
    const perHeightUs = 4 * maxLatencyUs(this.topology) + 1_000;
    return (
      SIM_LIVENESS_TIMEOUTS * t.maxMs * 1_000 +
      (this.config.heights + SIM_LIVENESS_HEIGHTS) * (perHeightUs + 3 * t.proposeMs * 1_000)
    );
  }

  private deadlineUs(): number {
    return this.healUs + this.livenessBoundUs();
  }

  private fire(event: SimEvent): void {
    this.eventsFired++;
    const h = this.traceHeader;
    h[0] = this.nowUs;
    switch (event.kind) {
      case 'deliver': {
        const node = this.nodes[event.to]!;
        if (!node.up) return;
        if (node.pausedUntilUs > this.nowUs) return this.queue.push(node.pausedUntilUs, event);
        h[1] = event.to;
        h[2] = event.from;
        this.traceAppend(this.traceHeaderBytes);
        this.traceAppend(event.bytes);
        if (node.behavior === 'amnesia') this.observe(node, event.bytes);
        this.perform(
          node,
          node.replica.onMessage(this.peerIds[event.from]!, event.bytes, this.nowMsOf(node)),
        );
        return;
      }
      case 'input': {
        const node = this.nodes[event.to]!;
        if (!node.up || event.incarnation !== node.incarnation) return;
        if (node.pausedUntilUs > this.nowUs) return this.queue.push(node.pausedUntilUs, event);
        h[1] = event.to;
        h[2] = -1 - inputTag(event.input);
        this.traceAppend(this.traceHeaderBytes);
        const input = { ...event.input, nowMs: this.nowMsOf(node) } as Input;
        if (input.kind === 'timeout') this.noteTimeout(node, input);
        this.perform(node, node.replica.handle(input));
        return;
      }
      case 'tx':
        h[1] = event.to;
        h[2] = -100;
        this.traceAppend(this.traceHeaderBytes);
        this.traceAppend(event.tx);
        return this.receiveTx(event.to, event.tx, event.origin);
      case 'fault':
        h[1] = -1;
        h[2] = -1;
        this.traceAppend(this.traceHeaderBytes);
        this.traceFlush();
        this.trace.update(event.label);
        event.apply();
        return;
    }
  }

  private traceAppend(bytes: Uint8Array): void {
    const length = bytes.length;
    if (this.traceBufferLength + length > this.traceBuffer.length) {
      this.traceFlush();
      if (length > this.traceBuffer.length) {
        this.trace.update(bytes);
        return;
      }
    }
    this.traceBuffer.set(bytes, this.traceBufferLength);
    this.traceBufferLength += length;
  }

  private traceFlush(): void {
    if (this.traceBufferLength === 0) return;
    this.trace.update(new Uint8Array(this.traceBuffer.buffer, 0, this.traceBufferLength));
    this.traceBufferLength = 0;
  }

  /** The trace hash so far; the run may go on after it is read. */
  private traceDigest(): string {
    this.traceFlush();
    return this.trace.copy().digest('hex');
  }

  // --- effects -----------------------------------------------------------------------------

  private perform(node: SimNode, effects: readonly Effect[]): void {
    const incarnation = node.incarnation;
    for (const effect of effects) {
      if (!node.up || node.incarnation !== incarnation) return;
      this.performOne(node, effect);
      if (node.crashAfterEffects > 0 && --node.crashAfterEffects === 0) {
        node.crashAfterEffects = -1;
        this.crash(node.index, true);
      }
    }
  }

  private performOne(node: SimNode, effect: Effect): void {
    switch (effect.kind) {
      case 'persist':
        return this.persist(node, effect.record, effect.sync);
      case 'send': {
        const to = this.peerIndex.get(effect.to);
        assert(to !== undefined, `a replica sends to a known peer, not ${effect.to}`);
        return this.release(node, effect.bytes, to);
      }
      case 'broadcast':
        return this.release(node, effect.bytes, -1);
      case 'scheduleTimeout':
        return this.input(
          node,
          { kind: 'timeout', timeout: effect.timeout, nowMs: 0 },
          effect.delayMs * 1_000,
        );
      case 'buildProposal': {
        if (effect.round === 0 && !this.heightStartUs.has(effect.height)) {
          this.heightStartUs.set(effect.height, { atUs: this.nowUs, proposer: node.index });
        }
        const txs = node.app.prepareProposal(effect.height, effect.round, [
          ...node.mempool.values(),
        ]);
        return this.input(
          node,
          {
            kind: 'proposalBuilt',
            height: effect.height,
            round: effect.round,
            txs,
            nowMs: 0,
          },
          0,
        );
      }
      case 'finalizeBlock':
        return this.finalize(node, effect);
      case 'committed':
        return this.committed(node, effect.height, effect.round, effect.blockHash);
      case 'diverged':
        // Every honest node executes the same blocks to the same state.
        assert(!isHonest(node), `honest node ${node.index} diverged after height ${effect.height}`);
        return;
      case 'signingPaused':
        // Only a Byzantine node signs with a key twice, and it does not watch:
        // an honest node that pauses took its own signature for another's.
        assert(!isHonest(node), `honest node ${node.index} paused signing at ${effect.height}`);
        return;
      case 'evidenceSeen': {
        if (!isHonest(node)) return;
        const e = effect.evidence;
        const hash = toHex(evidenceHashOf(e));
        const offender = this.setAt(e.voteA.height).validators[e.voteA.validatorIndex];
        this.checkers.onEvidenceSeen(
          node.index,
          hash,
          e.voteA.height,
          e.voteA.validatorIndex,
          offender === undefined
            ? -1
            : (this.keyIndexByPublicKey.get(toHex(offender.publicKey)) ?? -1),
          this.nowUs,
        );
        this.noteTimeline(
          node.index,
          -1,
          'evidence',
          e.voteA.round,
          e.voteA.height,
          this.nowUs,
          'dup',
        );
        return;
      }
    }
  }

  private persist(node: SimNode, record: Uint8Array, sync: boolean): void {
    if (this.checkpointTag < 0) this.learnTags(node);
    if (record[0] === this.checkpointTag) node.lastCheckpointAt = node.wal.length;
    // A proposal signed but lost in a crash before it went out is still proposed: its node may decide it on replay.
    if (record[0] === this.signedTag && signedStep(record) === STEP.propose) {
      const signed = decode(walRecordCodec, record);
      if (signed.kind === 'signed') this.checkers.onReleased(decode(messageCodec, signed.bytes));
    }
    node.wal.push(record);
    if (!sync) return;
    node.syncedLength = node.wal.length;
    // Log rotation: replay starts at the last checkpoint, so a synced one makes what precedes it garbage.
    const at = node.lastCheckpointAt;
    if (at >= SIM_WAL_COMPACT_RECORDS && at < node.syncedLength) {
      node.wal.splice(0, at);
      node.syncedLength -= at;
      node.lastCheckpointAt = 0;
    }
  }

  /** The first byte of a checkpoint and of a signed record, to spot them without decoding every record. */
  private learnTags(node: SimNode): void {
    const state = node.replica.chainState;
    this.checkpointTag = encode(walRecordCodec, { kind: 'checkpoint', state })[0]!;
    const bytes = new Uint8Array(0);
    this.signedTag = encode(walRecordCodec, {
      kind: 'signed',
      height: 1,
      round: 0,
      step: 0,
      bytes,
    })[0]!;
  }

  private input(node: SimNode, input: Input, delayUs: number): void {
    this.queue.push(this.nowUs + delayUs, {
      kind: 'input',
      to: node.index,
      input,
      incarnation: node.incarnation,
    });
  }

  private finalize(node: SimNode, effect: Effect & { kind: 'finalizeBlock' }): void {
    const block = effect.block;
    const height = block.header.height;
    node.blocks.set(height, { block, commit: effect.commit });
    node.blocks.delete(height - SIM_BLOCK_STORE_HEIGHTS);
    const result = node.app.finalizeBlock(block, effect.commit, effect.misbehavior);
    node.app.commit();
    if (isHonest(node)) {
      this.checkers.onExecuted(node.index, height, result.appHash, this.nowUs);
      this.checkBlockTime(block);
      this.noteSet(height + 1, node.replica.nextValidators);
      for (let i = 0; i < block.evidence.length; i++) {
        const offender = this.keyIndexByPublicKey.get(toHex(effect.misbehavior[i]!.publicKey));
        this.checkers.onEvidenceCommitted(
          toHex(evidenceHashOf(block.evidence[i]!)),
          height,
          offender ?? -1,
          this.nowUs,
          block.evidence[i],
        );
      }
    }
    for (const tx of block.txs) {
      if (node.mempool.size > 0) node.mempool.delete(txKey(tx));
      if (this.onTxCommitted !== null && this.txOrigin.has(txKey(tx))) {
        this.onTxCommitted(tx, node.index, this.nowUs);
      }
    }
    this.input(node, { kind: 'blockExecuted', height, result, nowMs: 0 }, SIM_BLOCK_EXECUTE_US);
  }

  /** Hands the checker a committed block's time and the honest precommit times of its lastCommit. */
  private checkBlockTime(block: Block): void {
    const commit = block.lastCommit;
    let low = Infinity;
    let high = -Infinity;
    if (commit !== null) {
      const set = this.setAt(commit.height);
      for (const v of commit.votes) {
        const key = this.keyOfIndex(set, v.validatorIndex);
        if (key < 0 || this.honestKeys[key] !== 1) continue;
        if (v.timestampMs < low) low = v.timestampMs;
        if (v.timestampMs > high) high = v.timestampMs;
      }
    }
    this.checkers.onBlockTime(block.header.height, block.header.timeMs, low, high, this.nowUs);
  }

  /** Records the set deciding `height` the first time an honest replica shows it (agreement makes them equal). */
  private noteSet(height: number, set: ValidatorSet): void {
    if (height <= this.setsKnownHeight) return;
    this.setsKnownHeight = height;
    const last = this.setChanges[this.setChanges.length - 1]!;
    if (!bytesEqual(last.set.hash, set.hash)) this.setChanges.push({ fromHeight: height, set });
  }

  /** The set deciding `height` (the latest known for heights not reached yet). */
  private setAt(height: number): ValidatorSet {
    const changes = this.setChanges;
    for (let i = changes.length - 1; i > 0; i--) {
      if (changes[i]!.fromHeight <= height) return changes[i]!.set;
    }
    return changes[0]!.set;
  }

  private committed(node: SimNode, height: number, round: number, blockHash: Uint8Array): void {
    if (height > node.committedHeight) node.committedHeight = height;
    this.committedSinceCheck = true;
    if (!isHonest(node)) return;
    const hash = toHex(blockHash);
    this.checkers.onCommitted(node.index, height, round, hash, this.nowUs);
    let times = this.commitUs.get(height);
    if (times === undefined) this.commitUs.set(height, (times = []));
    times.push({ node: node.index, atUs: this.nowUs });
    this.noteTimeline(node.index, -1, 'commit', round, height, this.nowUs, hash.slice(0, 6));
    if (height % 1_000 === 0) this.pruneChecker();
  }

  private pruneChecker(): void {
    let low = Infinity;
    for (const node of this.nodes) if (isHonest(node)) low = Math.min(low, node.committedHeight);
    this.checkers.pruneSigned(low);
  }

  // --- the network side of a node -------------------------------------------------------------

  /** A message the replica let out: checked, possibly tampered with (Byzantine), then sent. */
  private release(node: SimNode, bytes: Uint8Array, to: number): void {
    // The core's own encodings decode by identity (memo.ts): no decode per release.
    const message = decodeMessage(bytes);
    this.checkers.onReleased(message);
    // Replicas relay each other's votes: the signature inside, not the sender, says whose it is.
    const signer = this.signerKeyOf(node, message);
    if (signer >= 0 && this.honestKeys[signer] === 1) {
      this.checkers.onHonestSigned(signer, node.index, message, this.nowUs);
    }
    if (node.behavior === 'silent') return;
    // What it signs itself, and what carries no signature of its own (block responses).
    if (node.forger !== null && (signer === node.keyIndex || signer < 0)) {
      const tampered = node.forger.tamper(node.behavior!, message, bytes);
      if (tampered !== null) return this.sendTampered(node, message, bytes, tampered, to);
    }
    if (to >= 0) return this.transmit(node.index, to, bytes, message);
    for (let other = 0; other < this.nodes.length; other++) {
      if (other !== node.index) this.transmit(node.index, other, bytes, message);
    }
  }

  /**
   * The key index of the validator that signed a vote or proposal (-1 for
   * other messages, or a signer outside the genesis keys). A replica releases
   * messages of its own height, so its current set names the signer; a
   * relayed vote of another height is named through that height's set. A
   * relayed proposal of another height is attributed by the set's round-robin
   * from the set's first height (an approximation: no replica relays them).
   */
  private signerKeyOf(node: SimNode, message: Message): number {
    let height: number;
    if (message.kind === 'vote') height = message.vote.height;
    else if (message.kind === 'proposal') height = message.proposal.height;
    else return -1;
    const set = node.replica.height === height ? node.replica.validators : this.setAt(height);
    const index =
      message.kind === 'vote' ? message.vote.validatorIndex : set.proposer(message.proposal.round);
    return this.keyOfIndex(set, index);
  }

  /** The genesis key index of a set's member (-1 if none). */
  private keyOfIndex(set: ValidatorSet, index: number): number {
    if (index >= set.size) return -1;
    let keys = this.keyIndexBySet.get(set.validators);
    if (keys === undefined) {
      keys = new Int32Array(set.size);
      for (let i = 0; i < set.size; i++) {
        keys[i] = this.keyIndexByPublicKey.get(toHex(set.validators[i]!.publicKey)) ?? -1;
      }
      this.keyIndexBySet.set(set.validators, keys);
    }
    return keys[index]!;
  }

  /** An amnesiac Byzantine node notes the proposals it is sent (what it will vote for instead of nil). */
  private observe(node: SimNode, bytes: Uint8Array): void {
    let message: Message;
    try {
      message = decodeMessage(bytes);
    } catch {
      return;
    }
    node.forger!.observe(message);
  }

  private sendTampered(
    node: SimNode,
    message: Message,
    original: Uint8Array,
    tampered: { groupA: readonly Uint8Array[]; groupB: readonly Uint8Array[] },
    to: number,
  ): void {
    for (let other = 0; other < this.nodes.length; other++) {
      if (other === node.index || (to >= 0 && other !== to)) continue;
      const list = node.groupA.has(other) ? tampered.groupA : tampered.groupB;
      for (const bytes of list) {
        // Only the original bytes are `message`: a forgery (alone in its list for an
        // equivocated proposal) is its own message, with its own block hash.
        const m = bytes === original ? message : decode(messageCodec, bytes);
        this.checkers.onReleased(m);
        this.transmit(node.index, other, bytes, m);
      }
    }
  }

  private transmit(from: number, to: number, bytes: Uint8Array, message: Message): void {
    const arrivals = this.network.arrivals(from, to, this.nowUs);
    for (const atUs of arrivals) this.queue.push(atUs, { kind: 'deliver', to, from, bytes });
    if (this.config.timelineHeight !== undefined) this.noteMessage(from, to, message, arrivals);
  }

  // --- faults the schedule calls ------------------------------------------------------------------

  /** Crashes a node now: its unsynced WAL tail is lost (a random part of it survives when `tornTail`). */
  crash(index: number, tornTail: boolean): void {
    const node = this.nodes[index]!;
    if (!node.up) return;
    node.up = false;
    node.incarnation++;
    node.crashedAtUs = this.nowUs;
    node.crashAfterEffects = -1;
    const unsynced = node.wal.length - node.syncedLength;
    const keep =
      node.syncedLength + (tornTail && unsynced > 0 ? this.faultPrng.int(unsynced + 1) : 0);
    this.crashes.crashes++;
    this.crashes.walRecordsLost += node.wal.length - keep;
    node.wal.length = keep;
    node.syncedLength = keep;
    if (node.lastCheckpointAt >= keep) node.lastCheckpointAt = -1;
    node.mempool.clear();
  }

  /** Crashes a node in the middle of its next batch of effects. */
  crashMidway(index: number, afterEffects: number): void {
    const node = this.nodes[index]!;
    if (node.up) node.crashAfterEffects = afterEffects;
  }

  restart(index: number): void {
    const node = this.nodes[index]!;
    if (node.up) return;
    node.up = true;
    node.incarnation++;
    node.pausedUntilUs = 0;
    this.crashes.restarts++;
    node.replica = this.makeReplica(node);
    this.perform(node, node.replica.start(node.wal.slice(), this.nowMsOf(node)));
  }

  pause(index: number, untilUs: number): void {
    const node = this.nodes[index]!;
    if (node.pausedUntilUs < untilUs) node.pausedUntilUs = untilUs;
  }

  /** The end of the fault window: every fault stops and every crashed node comes back. */
  healAll(): void {
    this.network.heal();
    for (const node of this.nodes) {
      node.crashAfterEffects = -1;
      node.pausedUntilUs = Math.min(node.pausedUntilUs, this.nowUs);
      if (!node.up) this.restart(node.index);
    }
  }

  // --- transactions (workloads) ----------------------------------------------------------------------

  /** A transaction reaches `node` at `atUs`; from there it is gossiped to every other node. */
  submitTx(node: number, tx: Uint8Array, atUs: number): void {
    this.txOrigin.set(txKey(tx), node);
    this.queue.push(atUs, { kind: 'tx', to: node, tx, origin: true });
  }

  private receiveTx(index: number, tx: Uint8Array, origin: boolean): void {
    const node = this.nodes[index]!;
    if (node.up) node.mempool.set(txKey(tx), tx);
    if (!origin) return;
    for (let other = 0; other < this.nodes.length; other++) {
      if (other === index) continue;
      for (const atUs of this.network.arrivals(index, other, this.nowUs)) {
        this.queue.push(atUs, { kind: 'tx', to: other, tx, origin: false });
      }
    }
  }

  // --- the timeline ------------------------------------------------------------------------------------

  private noteMessage(
    from: number,
    to: number,
    message: Message,
    arrivals: readonly number[],
  ): void {
    let kind: TimelineEntry['kind'];
    let height: number;
    let round: number;
    let value: string;
    if (message.kind === 'proposal') {
      kind = 'proposal';
      height = message.proposal.height;
      round = message.proposal.round;
      value = toHex(message.proposal.blockHash).slice(0, 6);
    } else if (message.kind === 'vote') {
      const v = message.vote;
      kind = v.type === 3 ? 'prevote' : 'precommit';
      height = v.height;
      round = v.round;
      value = v.blockHash === null ? 'nil' : toHex(v.blockHash).slice(0, 6);
    } else {
      return;
    }
    if (height !== this.config.timelineHeight) return;
    this.timeline.push({
      kind,
      from,
      to,
      round,
      sentUs: this.nowUs,
      arrivedUs: arrivals.length === 0 ? -1 : arrivals[0]!,
      value,
    });
  }

  private noteTimeout(node: SimNode, input: Input & { kind: 'timeout' }): void {
    const t = input.timeout;
    if (t.step > 2 || node.replica.height !== t.height || node.replica.round !== t.round) return;
    const step = ['propose', 'prevote', 'precommit'][t.step]!;
    this.noteTimeline(node.index, -1, 'timeout', t.round, t.height, this.nowUs, step);
  }

  private noteTimeline(
    from: number,
    to: number,
    kind: TimelineEntry['kind'],
    round: number,
    height: number,
    atUs: number,
    value: string,
  ): void {
    if (height !== this.config.timelineHeight) return;
    this.timeline.push({ kind, from, to, round, sentUs: atUs, arrivedUs: atUs, value });
  }

  // --- the end --------------------------------------------------------------------------------------------

  private finish(): SimResult {
    const honest = this.honestNodes;
    const heightsCommitted =
      honest.length === 0 ? 0 : Math.min(...honest.map((n) => n.committedHeight));
    if (!this.checkers.safetyFailed) this.checkEventual(heightsCommitted);
    const rounds: Record<string, number> = {};
    for (const c of this.checkers.committed.values()) {
      const key = String(c.round + 1);
      rounds[key] = (rounds[key] ?? 0) + 1;
    }
    const latencies: number[] = [];
    const samples: LatencySample[] = [];
    for (const [height, times] of this.commitUs) {
      const start = this.heightStartUs.get(height);
      if (start === undefined) continue;
      for (const t of times) {
        latencies.push(t.atUs - start.atUs);
        samples.push({
          height,
          node: t.node,
          proposer: start.proposer,
          latencyUs: t.atUs - start.atUs,
        });
      }
    }
    const violations = this.checkers.violations;
    const safety = violations.filter((v) => SAFETY_KINDS.includes(v.kind)).length;
    const counts = this.checkers.evidenceCounts;
    return {
      config: this.config,
      nodes: this.nodes.length,
      heightsCommitted,
      violations,
      safetyViolations: safety,
      livenessViolations: violations.length - safety,
      roundsPerHeight: rounds,
      commitLatenciesUs: latencies,
      latencySamples: samples,
      traceHash: this.traceDigest(),
      simulatedUs: this.nowUs,
      eventsFired: this.eventsFired,
      verify: { ...this.crypto.stats },
      network: { ...this.network.stats },
      // Counted where they are signed: a replica sends its votes again (gossip,
      // a peer catching up), and each copy carries the same forgery.
      evidence: {
        made: this.nodes.reduce((n, x) => n + (x.forger?.doubleVotes ?? 0), 0),
        ...counts,
      },
      crashes: { ...this.crashes },
      timeline: this.timeline,
      replay: replayCommand(this.config),
    };
  }

  /** Liveness and accountability, owed only within f. */
  private checkEventual(heightsCommitted: number): void {
    if (this.beyondF) return;
    const target = this.targetHeight();
    if (heightsCommitted < target) {
      const stuck = this.honestNodes.filter((n) => n.committedHeight < target);
      this.checkers.flag(
        'liveness',
        this.nowUs,
        `${stuck.length} honest node(s) below height ${target} at ${Math.floor(this.nowUs / 1000)} ms ` +
          `(healed at ${Math.floor(this.healUs / 1000)} ms): ` +
          stuck.map((n) => `node ${n.index} at ${n.committedHeight}`).join(', '),
      );
    }
    const top = Math.max(0, ...this.honestNodes.map((n) => n.committedHeight));
    const bound = Math.max(SIM_EVIDENCE_BOUND_HEIGHTS_MIN, 2 * this.nodes.length + 4);
    this.checkers.checkEvidence(
      top,
      Math.max(0, this.heightAtHeal),
      bound,
      (index, atUs) => this.nodes[index]!.crashedAtUs >= atUs,
      this.nowUs,
    );
    this.checkers.checkJailed(
      this.setsKnownHeight,
      (keyIndex, height) => {
        const set = this.setAt(height);
        return set.size > 1 && set.indexOf(this.keys[keyIndex]!.publicKey) >= 0;
      },
      this.nowUs,
    );
  }
}

function inputTag(input: Input): number {
  switch (input.kind) {
    case 'timeout':
      return 10 * input.timeout.step + 1;
    case 'proposalBuilt':
      return 2;
    case 'blockExecuted':
      return 3;
    default:
      return 4;
  }
}

/**
 * The step of a signed WAL record (tag, height, round, step, bytes), read
 * without decoding the message: only a proposal's record matters to the
 * checkers, and a vote's is persisted twice a height by every node.
 */
function signedStep(record: Uint8Array): number {
  const r = new Reader(record);
  r.u8('wal.tag');
  r.uvarint('wal.height');
  r.uvarint('wal.round');
  return r.u8('wal.step');
}

function txKey(tx: Uint8Array): string {
  return String.fromCharCode.apply(null, tx as unknown as number[]);
}

/** Runs one simulation from its config. */
export function simulate(config: SimConfig): SimResult {
  return new Simulator(config).run();
}
