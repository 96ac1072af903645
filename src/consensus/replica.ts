// The replica: Tendermint (Algorithm 1 of "The latest gossip on BFT
// consensus", Buchman, Kwon, Milosevic 2018) as a pure event handler. Inputs
// in, effects out: no I/O, no clock, no timers, no randomness. Each `ruleNN`
// method implements the upon-rule starting at line NN of Algorithm 1;
// docs/protocol.md maps every rule and addition to its function here.

import { DecodeError, Writer, decode, encode } from '../codec/wire.ts';
import { assert } from '../lib/assert.ts';
import { divFloor } from '../lib/int.ts';
import { bytesEqual, compareBytes, fromHex, toHex } from '../lib/bytes.ts';
import {
  BLOCK_TXS_MAX,
  BLOCK_TX_BYTES_MAX,
  CATCHUP_ANSWER_BLOCKS_MIN,
  CATCHUP_ANSWER_BYTES_MIN,
  CATCHUP_BATCH_BLOCKS_MAX,
  CATCHUP_BUFFER_BLOCKS_MAX,
  CATCHUP_BUFFER_BYTES_PER_PEER_MAX,
  CATCHUP_RETRY_MS,
  CATCHUP_SERVE_BYTES_PER_PEER_MAX,
  CATCHUP_SERVE_FLOOR_BYTES,
  CATCHUP_SERVE_FULL_NODES_PART,
  CATCHUP_SERVE_LOOKUP_BYTES,
  CATCHUP_SERVE_TOTAL_BYTES_PER_S,
  DOUBLE_SIGN_WATCH_HEIGHTS,
  EVIDENCE_AGE_HEIGHTS_MAX,
  EVIDENCE_PER_OFFENDER_MAX,
  EVIDENCE_PER_BLOCK_MAX,
  EVIDENCE_POOL_MAX,
  FUTURE_BYTES_PER_PEER_MAX,
  FUTURE_MESSAGES_FULL_NODES_MAX,
  FUTURE_MESSAGES_MAX,
  GOSSIP_INTERVAL_MS,
  MESSAGE_BYTES_MAX,
  PROPOSALS_AHEAD_PER_PROPOSER_MAX,
  ROUNDS_AHEAD_MAX,
  VOTE_ROUNDS_AHEAD_PER_VALIDATOR_MAX,
  ROUND_MAX,
  TIMEOUT_DELTA_MS,
  TIMEOUT_MAX_MS,
  TIMEOUT_PRECOMMIT_MS,
  TIMEOUT_PREVOTE_MS,
  TIMEOUT_PROPOSE_MS,
  TX_BYTES_MAX,
  VALIDATORS_MAX,
  VOTE_EXTENSION_BYTES_MAX,
  VOTE_RELAY_PER_TICK_MAX,
} from '../lib/limits.ts';
import {
  ZERO_HASH,
  committedBlockCodec,
  messageCodec,
  proposalSignBytes,
  voteCodec,
  voteSignBytes,
  walRecordCodec,
} from './codec.ts';
import type { ConsensusReplica, ReplicaConfig, ReplicaPorts, TimeoutConfig } from './ports.ts';
import { SIGN_KIND_CONSENSUS } from './ports.ts';
import type {
  Block,
  BlockResult,
  ChainState,
  CommitCertificate,
  CommitVote,
  CommittedBlock,
  CommittedOffence,
  DropReason,
  DuplicateVoteEvidence,
  Effect,
  Input,
  Message,
  Metrics,
  Misbehavior,
  PeerId,
  Proposal,
  Step,
  TimeoutKey,
  Vote,
  VoteType,
  WalRecord,
} from './types.ts';
import { GOSSIP_STEP, STEP, VOTE_TYPE } from './types.ts';
import { ValidatorSet, isOneThirdPlus, isQuorum } from './validators.ts';
import { HeightVotes, NIL_KEY, valueKey } from './votes.ts';
import type { RoundVotes } from './votes.ts';
import {
  bodyFactsOf,
  commitHashOf,
  commitSignBytesOf,
  decodeMessage,
  encodeMessage,
  evidenceHashOf,
  evidenceRoot,
  headerHashOf,
  proposalSignBytesOf,
  rememberProposalSignBytes,
  rememberVoteSignBytes,
  txsRoot,
  voteBytesOf,
  voteSignBytesOf,
} from './memo.ts';

export const DEFAULT_TIMEOUTS: TimeoutConfig = {
  proposeMs: TIMEOUT_PROPOSE_MS,
  prevoteMs: TIMEOUT_PREVOTE_MS,
  precommitMs: TIMEOUT_PRECOMMIT_MS,
  deltaMs: TIMEOUT_DELTA_MS,
  maxMs: TIMEOUT_MAX_MS,
};

const DROP_REASONS: readonly DropReason[] = [
  'decode',
  'oversize',
  'wrongChain',
  'oldHeight',
  'futureHeight',
  'futureRound',
  'unknownValidator',
  'badSignature',
  'wrongProposer',
  'invalidBlock',
  'rejectedByApp',
  'badExtension',
  'duplicateVote',
  'duplicateProposal',
  'badEvidence',
  'badCertificate',
  'bufferFull',
  'rateLimited',
  'busy',
  'unexpected',
  'staleTimeout',
  'doubleSignRefused',
  'signingPaused',
];

export function emptyMetrics(): Metrics {
  const m = {} as Metrics;
  for (const r of DROP_REASONS) m[r] = 0;
  return m;
}

/** timeoutX(round) = base + round·delta, capped (Algorithm 1's growing timeouts). */
export function timeoutMs(config: TimeoutConfig, step: Step, round: number): number {
  const base =
    step === STEP.propose
      ? config.proposeMs
      : step === STEP.prevote
        ? config.prevoteMs
        : config.precommitMs;
  const grown = base + round * config.deltaMs;
  return grown < config.maxMs ? grown : config.maxMs;
}

/** The stake-weighted median of a certificate's timestamps: the first time by which more than half its power has voted. */
export function weightedMedianMs(commit: CommitCertificate, set: ValidatorSet): number {
  const votes = commit.votes;
  // Indices sorted by time: one small typed array instead of an object per vote.
  const order = new Uint16Array(votes.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  order.sort((a, b) => votes[a]!.timestampMs - votes[b]!.timestampMs);
  let total = 0;
  for (const v of votes) total += set.validators[v.validatorIndex]!.power;
  let sum = 0;
  for (const i of order) {
    const v = votes[i]!;
    sum += set.validators[v.validatorIndex]!.power;
    if (2 * sum > total) return v.timestampMs;
  }
  return 0;
}

/** sha256 of the encoded header (computed once per header object). */
export function blockHashOf(block: Block): Uint8Array {
  return headerHashOf(block.header);
}

export { bodyFactsOf, commitHashOf, evidenceHashOf, evidenceRoot };

/** Two conflicting votes as evidence, in their canonical order (by encoded bytes). */
export function makeEvidence(a: Vote, b: Vote): DuplicateVoteEvidence {
  const order = compareBytes(encode(voteCodec, a), encode(voteCodec, b));
  return order < 0 ? { voteA: a, voteB: b } : { voteA: b, voteB: a };
}

/** A response's blocks by height, lowest first (as sent, when they already are). */
function byHeight(blocks: readonly CommittedBlock[]): readonly CommittedBlock[] {
  for (let i = 1; i < blocks.length; i++) {
    if (blocks[i]!.block.header.height < blocks[i - 1]!.block.header.height) {
      return [...blocks].sort((a, b) => a.block.header.height - b.block.header.height);
    }
  }
  return blocks;
}

/**
 * An upper bound of a committed block's encoded size, without encoding it:
 * its transactions and vote extensions, plus the most each fixed part
 * (header, counts, a vote's other fields) takes.
 */
function committedBytesOf(c: CommittedBlock): number {
  const b = c.block;
  let bytes = 1024;
  for (const tx of b.txs) bytes += 4 + tx.length;
  for (const e of b.evidence) bytes += 256 + e.voteA.extension.length + e.voteB.extension.length;
  for (const v of b.lastCommit?.votes ?? []) bytes += 128 + v.extension.length;
  for (const v of c.commit.votes) bytes += 128 + v.extension.length;
  return bytes;
}

interface ProposalEntry {
  readonly proposal: Proposal;
  readonly block: Block;
  readonly hash: Uint8Array;
  readonly key: string;
  /** valid(v) of Algorithm 1, computed once: the block checks and the app's processProposal. */
  valid: boolean | null;
  /**
   * For a block valid(v) refused that 2/3+ of the stake then precommitted:
   * whether it extends our chain as a certified block (checkCommittedBlock),
   * computed once; undefined until asked.
   */
  certified?: DropReason | null;
}

interface Decision {
  readonly block: Block;
  readonly hash: Uint8Array;
  readonly commit: CommitCertificate;
}

/** The sets of recent heights, oldest first, that evidence in its window may need. */
type ChainHistory = readonly { readonly height: number; readonly set: ValidatorSet }[];

interface Chain {
  readonly height: number;
  readonly lastBlockHash: Uint8Array;
  readonly lastBlockTimeMs: number;
  readonly lastCommit: CommitCertificate | null;
  readonly appHash: Uint8Array;
  readonly validators: ValidatorSet;
  readonly nextValidators: ValidatorSet;
  readonly history: ChainHistory;
  /** Committed evidence by hash: the height that committed it, and its offence (null: unknown). */
  readonly committedEvidence: ReadonlyMap<string, CommittedEntry>;
  /** The known offences of `committedEvidence`, by offenceKey. */
  readonly committedOffences: ReadonlySet<string>;
  /** ChainState.committedEvidenceFrom; 0 when committedEvidence is complete. */
  readonly committedEvidenceFrom: number;
}

interface CommittedEntry {
  readonly height: number;
  readonly offence: CommittedOffence | null;
}

/** An offence's identity: the offender's public key (hex) and the height it double-signed at. */
function offenceKey(offenderHex: string, height: number): string {
  return `${offenderHex}@${height}`;
}

function offencesOf(committed: ReadonlyMap<string, CommittedEntry>): ReadonlySet<string> {
  const out = new Set<string>();
  for (const { offence } of committed.values()) {
    if (offence !== null) out.add(offenceKey(toHex(offence.publicKey), offence.height));
  }
  return out;
}

interface SignedEntry {
  readonly round: number;
  readonly step: Step;
  readonly key: string;
  readonly bytes: Uint8Array;
}

function hrsKey(height: number, round: number, step: Step): string {
  return `${height}/${round}/${step}`;
}

function compareHrs(
  a: readonly [number, number, number],
  b: readonly [number, number, number],
): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

const EMPTY = new Uint8Array(0);

function sameValue(a: Uint8Array | null, b: Uint8Array | null): boolean {
  return a === null ? b === null : b !== null && bytesEqual(a, b);
}

/** Two votes of one validator, (height, round, type) already equal, are the same vote. */
function sameVote(a: Vote, b: Vote): boolean {
  if (a === b) return true;
  return (
    a.timestampMs === b.timestampMs &&
    sameValue(a.blockHash, b.blockHash) &&
    bytesEqual(a.signature, b.signature) &&
    bytesEqual(a.extension, b.extension)
  );
}

/** A certificate's precommit is one this replica already verified: same block, time, extension and signature. */
function sameCommitVote(seen: Vote, v: CommitVote, blockHash: Uint8Array): boolean {
  return (
    seen.timestampMs === v.timestampMs &&
    seen.blockHash !== null &&
    bytesEqual(seen.blockHash, blockHash) &&
    bytesEqual(seen.signature, v.signature) &&
    bytesEqual(seen.extension, v.extension)
  );
}

/** A precommit, not yet in the certificate, for the decided block in the certificate's round. */
function joinsCertificate(decided: Decision, vote: Vote): boolean {
  const commit = decided.commit;
  return (
    vote.type === VOTE_TYPE.precommit &&
    vote.round === commit.round &&
    vote.blockHash !== null &&
    bytesEqual(vote.blockHash, decided.hash) &&
    commit.votes.every((v) => v.validatorIndex !== vote.validatorIndex)
  );
}

/** The certificate with one more precommit, its votes kept in validator order. */
function withPrecommit(commit: CommitCertificate, vote: Vote): CommitCertificate {
  const added: CommitVote = {
    validatorIndex: vote.validatorIndex,
    timestampMs: vote.timestampMs,
    extension: vote.extension,
    signature: vote.signature,
  };
  const votes = [...commit.votes, added].sort((a, b) => a.validatorIndex - b.validatorIndex);
  return { ...commit, votes };
}

export class Replica implements ConsensusReplica {
  readonly metrics: Metrics = emptyMetrics();
  /**
   * Timeouts that moved this replica on, by step (WAL replay included): a
   * healthy chain under load decides in round 0 without any, so each one is
   * a round or a vote the network did not deliver in time.
   */
  readonly timeoutsFired = { propose: 0, prevote: 0, precommit: 0 };

  private readonly chainId: string;
  private readonly timeouts: TimeoutConfig;
  private readonly doubleSignWatchHeights: number;
  private readonly writer = new Writer(1024);
  private chain: Chain;

  // Round state of the current height (Algorithm 1's h_p, round_p, step_p …).
  private heightValue = 1;
  private roundValue = 0;
  private stepValue: Step = STEP.propose;
  private locked: ProposalEntry | null = null;
  private lockedRoundValue = -1;
  private validEntry: ProposalEntry | null = null;
  private validRoundValue = -1;
  private readonly proposals = new Map<number, ProposalEntry>();
  private readonly blocksByKey = new Map<string, ProposalEntry>();
  /** Rounds of the proposals kept while ahead of ours, by proposer (those we have reached no longer count). */
  private readonly proposalRoundsAhead = new Map<number, number[]>();
  /**
   * By validator: the rounds beyond our next one whose votes by it we take,
   * and the time (the input's) each slot last moved. See voteAheadSlot.
   */
  private readonly voteRoundsAhead = new Map<number, { round: number; atMs: number }[]>();
  private votes = new HeightVotes([]);
  /** The last height's votes (all verified), so its certificate in the next block is not verified again. */
  private previousVotes = new HeightVotes([]);
  /** BFT times computed from certificates (blockTimeFor), by certificate. */
  private readonly blockTimes = new WeakMap<CommitCertificate, number>();
  /** The set myIndex was looked up in (advanced sets share its members array). */
  private myIndexSet: ValidatorSet | null = null;
  private decided: Decision | null = null;
  private readonly decisionCandidates = new Map<string, { round: number; key: string }>();
  private skipRound = -1;
  private readonly prevoteTimeoutRounds = new Set<number>();
  private readonly precommitTimeoutRounds = new Set<number>();
  private readonly line36Rounds = new Set<number>();
  private pendingBuildRound = -1;
  private myIndex = -1;
  private blockTimeMs = 0;

  // Messages for the next height, kept until we get there.
  private future: { from: PeerId; message: Message; nowMs: number; bytes: Uint8Array }[] = [];
  /** Bytes and messages of `future` by sender: they are unverified, so each peer gets its own bound. */
  private futureBytes = new Map<PeerId, { readonly bytes: number; readonly count: number }>();
  /** Messages of `future` from peers that are not validators of the next height: FUTURE_MESSAGES_FULL_NODES_MAX together. */
  private futureFromFullNodes = 0;
  // Verified evidence not yet committed, by hash.
  private evidencePool = new Map<string, DuplicateVoteEvidence>();
  /** The pool's items by offender (its public key, hex): EVIDENCE_PER_OFFENDER_MAX each. */
  private evidenceByOffender = new Map<string, Set<string>>();

  // Catch-up.
  private catchupBuffer = new Map<number, CommittedBlock>();
  /** Who sent each buffered block, and its size: a peer whose block fails its checks loses every block it sent. */
  private catchupSources = new Map<number, { readonly from: PeerId; readonly bytes: number }>();
  /** Bytes of `catchupBuffer` by sender: the blocks are unchecked, so each peer gets its own bound. */
  private catchupBytes = new Map<PeerId, number>();
  /**
   * Bytes of its own held blocks each sender pushed out at this height to
   * make room for lower ones (onBlockResponse): at most
   * CATCHUP_BUFFER_BYTES_PER_PEER_MAX (the block of our height aside), so
   * what one peer gets logged per height stays within a few shares. Keys are
   * senders with blocks held
   * (unbuffer forgets the others); cleared at each height.
   */
  private catchupEvicted = new Map<PeerId, number>();
  /**
   * Peers that sent a committed block failing its certificate or chain checks
   * (an honest peer serves only blocks it verified): their blocks are refused
   * and they are not asked again. Otherwise a faulty peer's forged blocks,
   * first in the buffer, would keep out the real ones for the same heights,
   * and each would cost a retry period.
   */
  private catchupDistrusted = new Set<PeerId>();
  private peerHeights = new Map<PeerId, number>();
  private requestedUpTo = 0;
  /** The peer our last block request went to: only its pruned answer moves the request on at once. */
  private requestedFrom: PeerId | null = null;
  /** The first height that request asked for. */
  private requestedHeight = 0;
  /** How many blocks that request asked for (fewer than a batch when the buffer had less room). */
  private requestedCount = 0;
  /**
   * That peer answered with the block at requestedHeight, which we kept, and
   * a fair share of the rest (coversFairShare; catchupPeer: it keeps the
   * role, or is passed over).
   */
  private requestAnswered = false;
  private lastRequestMs = -CATCHUP_RETRY_MS;
  /** The last height was decided from a peer's committed block (catch-up), not from votes heard. */
  private decidedFromPeer = false;
  private lastPushMs = new Map<PeerId, number>();
  /** What each peer's block requests drew in its current retry period (not lifted by the gossip timer). */
  private servedRequests = new Map<PeerId, { sinceMs: number; chargedBytes: number }>();
  /**
   * What all peers' block requests drew beyond their floors in the current
   * retry period (serveWithinBudgets): from the open part, and from the
   * validators' part by validators without a share of it.
   */
  private servedShared = { sinceMs: 0, openBytes: 0, newcomersBytes: 0 };
  /**
   * When each validator last asked past its floor: those of the last two
   * periods get a share of the validators' part at a period's start, and
   * older ones are forgotten then. Keys of the validator sets only, at most
   * 4·VALIDATORS_MAX.
   */
  private validatorsAskedMs = new Map<PeerId, number>();
  /** The validators with a share of the current period's validators' part, and what each drew on it. */
  private validatorShares = new Map<PeerId, number>();
  private readonly serveTotalBytes: number;
  /** Peers that answered our block request `blockBusy`, and when: not asked for a retry period. */
  private busyPeers = new Map<PeerId, number>();
  /** Peers that told us they hold no block below this height (they pruned): not asked for lower ones. */
  private prunedBelow = new Map<PeerId, number>();
  /** Peers heard one height behind, and since when: a late vote is normal, a peer still there later is stuck. */
  private behindSinceMs = new Map<PeerId, { readonly height: number; readonly sinceMs: number }>();
  private lastGossipMs = new Map<PeerId, number>();
  /** The gossip timer waiting to fire (one at a time, across heights). */
  private gossipPending: TimeoutKey | null = null;
  private gossipSeq = 0;

  // The double-sign guard: everything signed at the current height and above, and the highest (h, r, step).
  private signed = new Map<string, SignedEntry & { readonly height: number }>();
  private historyState: {
    readonly of: ChainHistory;
    readonly state: ChainState['history'];
  } | null = null;
  private lastSigned: [number, number, number] = [0, 0, -1];
  /**
   * The signing pause: nothing is signed at heights up to this one, because a
   * certificate showed a precommit by this key that this replica never signed.
   */
  private signingPausedUntil = 0;

  private effects: Effect[] = [];
  private replaying = false;
  private started = false;

  constructor(
    config: ReplicaConfig,
    private readonly ports: ReplicaPorts,
  ) {
    this.chainId = config.genesis.chainId;
    this.timeouts = config.timeouts ?? DEFAULT_TIMEOUTS;
    this.doubleSignWatchHeights = config.doubleSignWatchHeights ?? DOUBLE_SIGN_WATCH_HEIGHTS;
    this.serveTotalBytes = config.catchupServeTotalBytesPerS ?? CATCHUP_SERVE_TOTAL_BYTES_PER_S;
    assert(
      Number.isSafeInteger(this.serveTotalBytes) && this.serveTotalBytes > 0,
      'catchupServeTotalBytesPerS is a count of bytes',
    );
    assert(
      Number.isSafeInteger(this.doubleSignWatchHeights) && this.doubleSignWatchHeights >= 0,
      'doubleSignWatchHeights is a count of heights',
    );
    const validators = ValidatorSet.fromUpdates(config.genesis.validators);
    this.chain = {
      height: 0,
      lastBlockHash: ZERO_HASH,
      lastBlockTimeMs: config.genesis.genesisTimeMs,
      lastCommit: null,
      appHash: config.genesis.appHash,
      validators,
      nextValidators: validators.advanced(),
      history: [],
      committedEvidence: new Map(),
      committedOffences: new Set(),
      committedEvidenceFrom: 0,
    };
  }

  // --- what tests and the shell may look at ---------------------------------------

  get height(): number {
    return this.heightValue;
  }
  /** Whether this peer sent a catch-up block that failed its checks: its blocks are refused for good. */
  refusesBlocksFrom(peer: PeerId): boolean {
    return this.catchupDistrusted.has(peer);
  }

  /**
   * Catching up: blocks fetched from peers wait to be applied, or a request
   * for blocks at or above this height is out and within its retry period.
   */
  catchingUp(nowMs: number): boolean {
    if (this.catchupBuffer.size > 0) return true;
    return this.requestedUpTo >= this.heightValue && nowMs - this.lastRequestMs < CATCHUP_RETRY_MS;
  }
  /**
   * Whether the last height was decided from a certified block a peer sent
   * (catch-up) rather than from the votes of its round: what a node behind
   * the chain does, and what no peer's claim to be ahead alone brings about.
   */
  get lastDecidedFromPeer(): boolean {
    return this.decidedFromPeer;
  }
  get round(): number {
    return this.roundValue;
  }
  get step(): Step {
    return this.stepValue;
  }
  get lockedRound(): number {
    return this.lockedRoundValue;
  }
  get lockedBlockHash(): Uint8Array | null {
    return this.locked?.hash ?? null;
  }
  get validRound(): number {
    return this.validRoundValue;
  }
  get validators(): ValidatorSet {
    return this.chain.validators;
  }
  /** The set deciding the next height (already fixed: the application's updates decide the one after). */
  get nextValidators(): ValidatorSet {
    return this.chain.nextValidators;
  }
  get pendingEvidence(): number {
    return this.evidencePool.size;
  }
  /** The double-sign watch: nothing is signed at heights up to this one (0: never paused). */
  get signingPausedUntilHeight(): number {
    return this.signingPausedUntil;
  }
  /** The state the current height started from (what a checkpoint records). */
  get chainState(): ChainState {
    return this.stateRecord();
  }

  // --- entry points ------------------------------------------------------------

  start(walRecords: readonly Uint8Array[], nowMs: number): Effect[] {
    this.effects = [];
    const records: WalRecord[] = [];
    for (const bytes of walRecords) {
      try {
        records.push(decode(walRecordCodec, bytes, 'wal'));
      } catch (error) {
        // A torn or corrupt record ends the log: what follows it was never synced before it.
        if (error instanceof DecodeError) break;
        throw error;
      }
    }
    let from = 0;
    let evidence: readonly DuplicateVoteEvidence[] = [];
    for (let i = records.length - 1; i >= 0; i--) {
      const record = records[i]!;
      if (record.kind === 'checkpoint') {
        this.loadState(record.state);
        this.signingPausedUntil = record.signingPausedUntil ?? 0;
        evidence = record.evidence ?? [];
        from = i + 1;
        break;
      }
    }
    for (const record of records) if (record.kind === 'signed') this.rememberSigned(record);
    this.replaying = true;
    this.enterHeight(nowMs);
    // Before the inputs, as it was pooled before them.
    this.restoreEvidence(evidence);
    for (let i = from; i < records.length; i++) {
      const record = records[i]!;
      if (record.kind === 'input') this.dispatch(record.input);
    }
    this.replaying = false;
    this.started = true;
    this.resendSigned();
    return this.flush();
  }

  handle(input: Input): Effect[] {
    assert(this.started, 'start() before any input');
    this.effects = [];
    this.dispatch(input);
    return this.flush();
  }

  onMessage(from: PeerId, bytes: Uint8Array, nowMs: number): Effect[] {
    return this.handle({ kind: 'message', from, bytes, nowMs });
  }

  onTimeout(timeout: TimeoutKey, nowMs: number): Effect[] {
    return this.handle({ kind: 'timeout', timeout, nowMs });
  }

  onProposalBuilt(
    height: number,
    round: number,
    txs: readonly Uint8Array[],
    nowMs: number,
  ): Effect[] {
    return this.handle({ kind: 'proposalBuilt', height, round, txs, nowMs });
  }

  onBlockExecuted(height: number, result: BlockResult, nowMs: number): Effect[] {
    return this.handle({ kind: 'blockExecuted', height, result, nowMs });
  }

  /**
   * A peer answered our block request: it holds no block below `firstHeight`.
   * Not a protocol input (nothing is logged or decided from it, and a lying
   * peer only loses our requests): it steers catch-up to another peer now
   * instead of after CATCHUP_RETRY_MS. No send among the effects means no
   * peer we know of can serve our height. Only the answer of the peer our
   * last request went to does so, once: anyone may send this message, and
   * acting on each would turn every one into a block request to another
   * peer, past the one request per retry period.
   */
  onPeerPruned(peer: PeerId, firstHeight: number, nowMs: number): Effect[] {
    assert(this.started, 'start() before any input');
    this.effects = [];
    if (firstHeight > this.heightValue) {
      if (!this.prunedBelow.has(peer) && this.prunedBelow.size >= 4 * VALIDATORS_MAX) {
        // Full: forget the answers that no longer steer anything (a height we
        // passed) and those of peers never heard ahead (never asked until
        // they are; then they answer again). Otherwise peers saying so
        // unasked filled the table, and the peer asked, not kept, was asked
        // again at once. The rest are peers heard ahead, at most as many.
        for (const [p, first] of this.prunedBelow) {
          if (first <= this.heightValue || !this.peerHeights.has(p)) this.prunedBelow.delete(p);
        }
      }
      if (this.prunedBelow.has(peer) || this.prunedBelow.size < 4 * VALIDATORS_MAX) {
        this.prunedBelow.set(peer, firstHeight);
      }
      if (peer !== this.requestedFrom) return this.flush();
      // Nothing is out any more, but the pruned peer stays the last asked
      // (requestedFrom), as after a busy answer (onBlockBusy): catchupPeer
      // asks the next peer in turn after it, not the first peer heard, which
      // may be a silent one.
      this.requestedUpTo = 0;
      this.requestBlocks(peer, nowMs);
    }
    return this.flush();
  }

  // --- effects --------------------------------------------------------------------

  private flush(): Effect[] {
    const out = this.effects;
    this.effects = [];
    return out;
  }

  /**
   * Emits an effect. While replaying, what the log already holds is not written
   * again and nothing is sent but what is newly signed (`own`): the messages
   * signed before the crash are re-sent once replay ends.
   */
  private emit(effect: Effect, own = false): void {
    if (this.replaying && !own) {
      if (effect.kind === 'persist' || effect.kind === 'send' || effect.kind === 'broadcast') {
        return;
      }
    }
    this.effects.push(effect);
  }

  private drop(reason: DropReason): void {
    this.metrics[reason]++;
  }

  private logInput(input: Input, sync = false): void {
    const record = encode(walRecordCodec, { kind: 'input', input });
    this.emit({ kind: 'persist', record, sync });
  }

  private scheduleTimeout(step: Step): void {
    const timeout = { height: this.heightValue, round: this.roundValue, step };
    this.emit({
      kind: 'scheduleTimeout',
      timeout,
      delayMs: timeoutMs(this.timeouts, step, this.roundValue),
    });
  }

  // --- dispatch -------------------------------------------------------------------

  private dispatch(input: Input): void {
    switch (input.kind) {
      case 'message':
        return this.onMessageInput(input);
      case 'timeout':
        return this.onTimeoutInput(input);
      case 'proposalBuilt':
        return this.onProposalBuiltInput(input);
      case 'blockExecuted':
        return this.onBlockExecutedInput(input);
    }
  }

  private onMessageInput(input: Input & { kind: 'message' }): void {
    if (input.bytes.length > MESSAGE_BYTES_MAX) return this.drop('oversize');
    let message: Message;
    try {
      message = decodeMessage(input.bytes);
    } catch (error) {
      if (error instanceof DecodeError) return this.drop('decode');
      throw error;
    }
    this.onDecoded(input, message);
  }

  private onDecoded(input: Input & { kind: 'message' }, message: Message): void {
    switch (message.kind) {
      case 'vote':
        return this.onVote(input, message);
      case 'proposal':
        return this.onProposal(input, message, message.proposal, message.block);
      case 'evidence':
        return this.onEvidence(input, message.evidence);
      case 'blockRequest':
        return this.onBlockRequest(input.from, message.fromHeight, message.count, input.nowMs);
      case 'blockResponse':
        return this.onBlockResponse(input, message.blocks);
      case 'blockBusy':
        return this.onBlockBusy(input.from, message.fromHeight, input.nowMs);
    }
  }

  /** Routes by height: the current height is handled, the next is kept, the rest start catch-up. */
  private admitHeight(
    input: Input & { kind: 'message' },
    message: Message,
    height: number,
  ): boolean {
    if (height === this.heightValue) return true;
    if (height < this.heightValue) {
      this.drop('oldHeight');
      this.pushBlocks(input.from, height, input.nowMs);
      return false;
    }
    this.notePeerAhead(input.from, height, input.nowMs);
    if (height === this.heightValue + 1) {
      const held = this.futureBytes.get(input.from);
      const bytes = (held?.bytes ?? 0) + input.bytes.length;
      const count = (held?.count ?? 0) + 1;
      const set = this.chain.nextValidators;
      // The transport names a peer by its key, and a validator's node uses its
      // validator key: full nodes together get a bounded part of the slots,
      // so they cannot hold the validators' messages off.
      const fromValidator = set.hasKeyHex(input.from);
      // A share of the validators' part per peer: unverified small votes from
      // one peer could otherwise take them all and keep out the others'.
      const countMax = Math.max(
        1,
        divFloor(FUTURE_MESSAGES_MAX - FUTURE_MESSAGES_FULL_NODES_MAX, set.size),
      );
      if (
        this.future.length >= FUTURE_MESSAGES_MAX ||
        (!fromValidator && this.futureFromFullNodes >= FUTURE_MESSAGES_FULL_NODES_MAX) ||
        bytes > FUTURE_BYTES_PER_PEER_MAX ||
        count > countMax
      ) {
        this.drop('bufferFull');
      } else {
        this.futureBytes.set(input.from, { bytes, count });
        if (!fromValidator) this.futureFromFullNodes++;
        this.future.push({ from: input.from, message, nowMs: input.nowMs, bytes: input.bytes });
      }
      return false;
    }
    this.drop('futureHeight');
    return false;
  }

  // --- votes ---------------------------------------------------------------------

  private onVote(input: Input & { kind: 'message' }, message: Message & { kind: 'vote' }): void {
    const vote = message.vote;
    if (!this.admitHeight(input, message, vote.height)) return;
    if (vote.round > this.roundValue + ROUNDS_AHEAD_MAX) return this.drop('futureRound');
    const set = this.chain.validators;
    if (vote.validatorIndex >= set.size) return this.drop('unknownValidator');
    if (vote.validatorIndex === this.myIndex) return this.drop('duplicateVote');
    const roundVotes = this.votes.round(vote.type, vote.round);
    const existing = roundVotes?.byValidator[vote.validatorIndex];
    if (existing !== undefined && sameVote(existing, vote)) {
      // A vote heard again: its signer re-sent it (its gossip timer, or a
      // restart), so it has not moved on for a while and may lack ours.
      this.regossip(input.from, vote.round, input.nowMs);
      return this.drop('duplicateVote');
    }
    const held =
      existing === undefined ? undefined : roundVotes!.voteFor(vote.validatorIndex, vote.blockHash);
    // Its validator has a vote for this value here already (this one, or one
    // signed at another time: a precommit's time is signed): it adds nothing,
    // and evidence needs another value. Past the values counted per
    // validator, another value is evidence at most, which the second made.
    // Both are refused before the signature: a Byzantine validator may sign
    // any number of them, and each cost a check and, but for copies of its
    // first value, a log record.
    if (held !== undefined) return this.drop('duplicateVote');
    if (existing !== undefined && roundVotes!.valuesFull(vote.validatorIndex)) {
      return this.drop('bufferFull');
    }
    // Decided, waiting for execution (and the node's commit pause): no rule
    // runs, but a precommit for the decided block joins its certificate. The
    // next block carries that certificate, and the oracle reads its extensions:
    // the first precommits past 2/3 may be too few to price (docs/derivatives.md,
    // "Oracle"). Any other new vote is neither checked nor logged.
    if (existing === undefined && this.decided !== null) {
      if (!joinsCertificate(this.decided, vote)) return this.drop('oldHeight');
      if (!this.verifyVote(vote, set)) return this.drop('badSignature');
      if (!this.ports.app.verifyVoteExtension(vote)) return this.drop('badExtension');
      this.logInput(input);
      this.votes.add(vote);
      this.decided = { ...this.decided, commit: withPrecommit(this.decided.commit, vote) };
      return;
    }
    // Checked before the signature: refusing must cost a lookup.
    const slot =
      vote.round > this.roundValue + 1 ? this.voteAheadSlot(vote, existing, input.nowMs) : -1;
    if (slot === null) return this.drop('bufferFull');
    if (!this.verifyVote(vote, set)) return this.drop('badSignature');
    if (
      vote.type === VOTE_TYPE.precommit &&
      vote.blockHash !== null &&
      !this.ports.app.verifyVoteExtension(vote)
    ) {
      return this.drop('badExtension');
    }
    if (slot >= 0) {
      const slots = this.voteRoundsAhead.get(vote.validatorIndex) ?? [];
      slots[slot] = { round: vote.round, atMs: input.nowMs };
      this.voteRoundsAhead.set(vote.validatorIndex, slots);
    }
    if (existing !== undefined) {
      if (sameValue(existing.blockHash, vote.blockHash)) return this.drop('duplicateVote');
      this.logInput(input);
      this.addEvidence(makeEvidence(existing, vote));
      // It still counts for its value: others may have seen it first, and their polka or commit relies on it.
      if (this.addVote(vote)) this.progress(input.nowMs);
      return;
    }
    this.logInput(input);
    // Between inputs no rule holds (progress ran to a fixed point); a vote that
    // crossed no threshold cannot make one hold.
    if (this.addVote(vote)) this.progress(input.nowMs);
  }

  /**
   * Whether a vote for a round beyond our next one is taken, before its
   * signature is checked: -1 if its round already holds a slot of its
   * validator, the index of the slot it takes, or null (refused). Each
   * validator has VOTE_ROUNDS_AHEAD_PER_VALIDATOR_MAX slots; a full set gives
   * its lowest slot to a higher round once that slot is a gossip period old.
   * An honest validator's rounds only go up and it re-sends its current
   * round's votes every period, so its current round gets a slot within about
   * two periods, and f+1 honest validators sitting in one round show the
   * round skip (line 55) that round; a faulty one gets a few rounds per period
   * however many it signs. The votes of a round a slot leaves stay counted
   * (tallies only grow, which keeps replay simple): the rate bounds them. An
   * equivocator's further values that far ahead are refused too: they matter
   * only once we are there, and then they are taken as any other.
   * Deterministic: the time is the input's, logged with it.
   */
  private voteAheadSlot(vote: Vote, existing: Vote | undefined, nowMs: number): number | null {
    if (existing !== undefined) return null;
    const slots = this.voteRoundsAhead.get(vote.validatorIndex);
    if (slots === undefined) return 0;
    let lowest = 0;
    for (let i = 0; i < slots.length; i++) {
      if (slots[i]!.round === vote.round) return -1;
      if (slots[i]!.round < slots[lowest]!.round) lowest = i;
    }
    if (slots.length < VOTE_ROUNDS_AHEAD_PER_VALIDATOR_MAX) return slots.length;
    const oldest = slots[lowest]!;
    const periodMs = this.timeouts.gossipMs ?? GOSSIP_INTERVAL_MS;
    // A logged vote was taken when it came: replay takes it again even if the
    // period is now longer, or it would rebuild a lower round than the one we
    // signed in (and would refuse what followed from it).
    const aged = this.replaying || nowMs - oldest.atMs >= periodMs;
    return vote.round > oldest.round && aged ? lowest : null;
  }

  private verifyVote(vote: Vote, set: ValidatorSet): boolean {
    const kind =
      vote.type === VOTE_TYPE.prevote ? SIGN_KIND_CONSENSUS.prevote : SIGN_KIND_CONSENSUS.precommit;
    const publicKey = set.validators[vote.validatorIndex]!.publicKey;
    return this.ports.verifier.verify(publicKey, kind, voteSignBytesOf(vote), vote.signature);
  }

  /** Tallies a vote; true if an upon-rule may now hold (a threshold was crossed), so progress() must look. */
  private addVote(vote: Vote): boolean {
    const result = this.votes.add(vote);
    if (result.kind === 'duplicate') return false;
    if (result.kind === 'conflict') {
      if (!result.counted) return false;
      this.noteDecisionCandidate(vote, result.key, result.votes);
      return result.crossed;
    }
    const changed = this.noteSkip(vote.round) || result.crossed;
    this.noteDecisionCandidate(vote, result.key, result.votes);
    return changed;
  }

  /** Line 55's condition: f+1 of the stake speaks in a round above ours. True if it newly holds. */
  private noteSkip(round: number): boolean {
    if (round <= this.roundValue || round <= this.skipRound) return false;
    if (!isOneThirdPlus(this.votes.speakingPower(round), this.chain.validators.totalPower)) {
      return false;
    }
    this.skipRound = round;
    return true;
  }

  private noteDecisionCandidate(vote: Vote, key: string, votes: RoundVotes): void {
    if (
      vote.type === VOTE_TYPE.precommit &&
      key !== NIL_KEY &&
      isQuorum(votes.power(key), this.chain.validators.totalPower)
    ) {
      this.decisionCandidates.set(`${vote.round}/${key}`, { round: vote.round, key });
    }
  }

  // --- proposals ------------------------------------------------------------------

  private onProposal(
    input: Input & { kind: 'message' },
    message: Message,
    proposal: Proposal,
    block: Block,
  ): void {
    if (!this.admitHeight(input, message, proposal.height)) return;
    if (proposal.round > this.roundValue + ROUNDS_AHEAD_MAX) return this.drop('futureRound');
    if (this.proposals.has(proposal.round)) return this.drop('duplicateProposal');
    const set = this.chain.validators;
    const proposerIndex = set.proposer(proposal.round);
    if (proposerIndex === this.myIndex) return this.drop('wrongProposer');
    const ahead = proposal.round > this.roundValue ? this.roundsAheadOf(proposerIndex) : null;
    if (ahead !== null && ahead.length >= PROPOSALS_AHEAD_PER_PROPOSER_MAX) {
      return this.drop('bufferFull');
    }
    const publicKey = set.validators[proposerIndex]!.publicKey;
    if (
      !this.ports.verifier.verify(
        publicKey,
        SIGN_KIND_CONSENSUS.proposal,
        proposalSignBytesOf(proposal),
        proposal.signature,
      )
    ) {
      return this.drop('badSignature');
    }
    const hash = blockHashOf(block);
    if (!bytesEqual(hash, proposal.blockHash) || block.header.round > proposal.round) {
      return this.drop('invalidBlock');
    }
    // The proposer signed the header; the body is bound to it only by the roots. A
    // relay that swapped the body must not take the round's one slot: the real
    // proposal would be dropped as a duplicate and we would prevote nil on it.
    if (!bodyFactsOf(block).matchesHeader) return this.drop('invalidBlock');
    this.logInput(input);
    if (ahead !== null) {
      ahead.push(proposal.round);
      this.proposalRoundsAhead.set(proposerIndex, ahead);
    }
    this.addProposal(proposal, block, hash, null);
    this.votes.speak(proposal.round, proposerIndex);
    // Line 55 counts every message of a round, the proposal too.
    this.noteSkip(proposal.round);
    this.progress(input.nowMs);
  }

  /**
   * The rounds ahead of ours whose proposals by this proposer we keep. A
   * proposal ahead is of use only once we get to its round, and its proposer
   * re-sends it while there; without a bound a faulty proposer could sign a
   * largest block for every round it leads within ROUNDS_AHEAD_MAX, each kept
   * and logged.
   */
  private roundsAheadOf(proposerIndex: number): number[] {
    const rounds = this.proposalRoundsAhead.get(proposerIndex) ?? [];
    return rounds.filter((round) => round > this.roundValue);
  }

  private addProposal(
    proposal: Proposal,
    block: Block,
    hash: Uint8Array,
    valid: boolean | null,
  ): ProposalEntry {
    const key = toHex(hash);
    const entry: ProposalEntry = { proposal, block, hash, key, valid };
    this.proposals.set(proposal.round, entry);
    if (!this.blocksByKey.has(key)) this.blocksByKey.set(key, entry);
    return entry;
  }

  /** valid(v): the block fits our chain, and the application accepts it. Computed once per proposal. */
  private isValid(entry: ProposalEntry): boolean {
    if (entry.valid === null) {
      const problem = this.checkBlock(entry.block);
      if (problem !== null) {
        this.drop(problem);
        entry.valid = false;
      } else if (!this.ports.app.processProposal(entry.block)) {
        this.drop('rejectedByApp');
        entry.valid = false;
      } else {
        entry.valid = true;
      }
    }
    return entry.valid;
  }

  /**
   * Everything a block of the current height must satisfy, whoever sent it.
   * `certified`: 2/3+ of the stake committed it, so evidence we saw committed
   * before is no reason to refuse it (checkCommittedBlock).
   */
  private checkBlock(block: Block, certified = false): DropReason | null {
    const h = block.header;
    const chain = this.chain;
    if (h.chainId !== this.chainId) return 'wrongChain';
    if (h.height !== this.heightValue) return 'invalidBlock';
    if (!bytesEqual(h.previousBlockHash, chain.lastBlockHash)) return 'invalidBlock';
    if (!bytesEqual(h.previousAppHash, chain.appHash)) return 'invalidBlock';
    if (!bytesEqual(h.validatorsHash, chain.validators.hash)) return 'invalidBlock';
    if (h.round > this.roundValue + ROUNDS_AHEAD_MAX) return 'futureRound';
    const proposer = chain.validators.validators[chain.validators.proposer(h.round)]!;
    if (!bytesEqual(h.proposerAddress, proposer.address)) return 'wrongProposer';
    const body = bodyFactsOf(block);
    if (body.txBytes > BLOCK_TX_BYTES_MAX) return 'oversize';
    if (!body.matchesHeader) return 'invalidBlock';
    if (!this.checkLastCommit(block.lastCommit)) return 'badCertificate';
    if (h.timeMs !== this.blockTimeFor(block.lastCommit)) return 'invalidBlock';
    const seen = new Set<string>();
    const offenders = new Set<string>();
    for (const e of block.evidence) {
      const key = toHex(evidenceHashOf(e));
      if (seen.has(key)) return 'badEvidence';
      if (!certified && chain.committedEvidence.has(key)) return 'badEvidence';
      seen.add(key);
      if (!this.verifyEvidence(e, this.heightValue - 1)) return 'badEvidence';
      // Evidence that can change nothing (spentOffence). Not for a certified
      // block: it is final, and one committed by replicas that took such
      // evidence must still be followed.
      if (certified) continue;
      const offender = this.offenderOf(e)!;
      if (offenders.has(offender) || this.spentOffence(offender, e)) return 'badEvidence';
      offenders.add(offender);
    }
    return null;
  }

  private checkLastCommit(commit: CommitCertificate | null): boolean {
    const chain = this.chain;
    if (chain.height === 0) return commit === null;
    if (commit === null) return false;
    const set = this.setAt(chain.height);
    return set !== null && this.verifyCommit(commit, set, chain.height, chain.lastBlockHash);
  }

  /** A certificate: its votes are for `hash` at `height`, each signed, together more than 2/3 of the set. */
  private verifyCommit(
    commit: CommitCertificate,
    set: ValidatorSet,
    height: number,
    hash: Uint8Array,
  ): boolean {
    if (commit.height !== height || !bytesEqual(commit.blockHash, hash)) return false;
    const known =
      height === this.heightValue
        ? this.votes
        : height === this.heightValue - 1
          ? this.previousVotes
          : null;
    const verified = known?.round(VOTE_TYPE.precommit, commit.round)?.byValidator;
    let power = 0;
    for (let i = 0; i < commit.votes.length; i++) {
      const v = commit.votes[i]!;
      if (v.validatorIndex >= set.size) return false;
      // Strictly ascending, so no validator's power counts twice. The codec
      // refuses any other order already; this keeps the quorum sound for a
      // certificate that reaches here another way.
      if (i > 0 && v.validatorIndex <= commit.votes[i - 1]!.validatorIndex) return false;
      const validator = set.validators[v.validatorIndex]!;
      // The precommits that decided the last height were checked on arrival: a certificate repeats them.
      const seen = verified?.[v.validatorIndex];
      if (seen === undefined || !sameCommitVote(seen, v, hash)) {
        const bytes = commitSignBytesOf(commit)[i]!;
        if (
          !this.ports.verifier.verify(
            validator.publicKey,
            SIGN_KIND_CONSENSUS.precommit,
            bytes,
            v.signature,
          )
        ) {
          return false;
        }
      }
      power += validator.power;
    }
    return isQuorum(power, set.totalPower);
  }

  // --- evidence -------------------------------------------------------------------

  private onEvidence(input: Input & { kind: 'message' }, evidence: DuplicateVoteEvidence): void {
    const key = toHex(evidenceHashOf(evidence));
    if (this.evidencePool.has(key) || this.mayBeCommitted(key, evidence)) {
      return this.drop('duplicateVote');
    }
    // Before the signatures are checked: an offender we hold evidence against costs nothing more.
    const offender = this.offenderOf(evidence);
    if (offender !== null && this.spentOffence(offender, evidence)) {
      return this.drop('duplicateVote');
    }
    if (offender !== null && !this.evidenceRoomFor(offender)) return this.drop('bufferFull');
    if (!this.verifyEvidence(evidence, this.heightValue)) return this.drop('badEvidence');
    if (this.evidencePool.size >= EVIDENCE_POOL_MAX) return this.drop('bufferFull');
    assert(offender !== null, 'verified evidence names a member of its set');
    this.logInput(input);
    this.poolEvidence(key, evidence, offender);
    this.emit({ kind: 'evidenceSeen', evidence });
  }

  /**
   * Committed already, or may be: old enough that a block this replica never
   * saw (before its state sync) could hold it. Such evidence is neither
   * pooled nor proposed: if committed, every replica that saw it refuses a
   * block repeating it, and each of our proposer turns would cost a round
   * until it left the window. If it is not, the peers that sent it hold it
   * and propose it themselves.
   */
  private mayBeCommitted(key: string, e: DuplicateVoteEvidence): boolean {
    const chain = this.chain;
    return chain.committedEvidence.has(key) || e.voteA.height + 1 < chain.committedEvidenceFrom;
  }

  /** Two votes of one validator, same height, round and type, different values, both signed; recent enough. */
  private verifyEvidence(e: DuplicateVoteEvidence, newestHeight: number): boolean {
    const a = e.voteA;
    const b = e.voteB;
    if (a.type !== b.type || a.height !== b.height || a.round !== b.round) return false;
    if (a.validatorIndex !== b.validatorIndex) return false;
    if (sameValue(a.blockHash, b.blockHash)) return false;
    if (compareBytes(encode(voteCodec, a), encode(voteCodec, b)) >= 0) return false;
    if (a.height > newestHeight || a.height < newestHeight - EVIDENCE_AGE_HEIGHTS_MAX) return false;
    const set = this.setAt(a.height);
    if (set === null || a.validatorIndex >= set.size) return false;
    return this.verifyVote(a, set) && this.verifyVote(b, set);
  }

  private addEvidence(evidence: DuplicateVoteEvidence): void {
    const key = toHex(evidenceHashOf(evidence));
    if (this.evidencePool.has(key) || this.chain.committedEvidence.has(key)) return;
    const offender = this.offenderOf(evidence);
    assert(offender !== null, 'evidence seen at our height names a member of our set');
    if (this.spentOffence(offender, evidence)) return;
    if (!this.evidenceRoomFor(offender) || this.evidencePool.size >= EVIDENCE_POOL_MAX) {
      return this.drop('bufferFull');
    }
    this.poolEvidence(key, evidence, offender);
    this.emit({ kind: 'evidenceSeen', evidence });
    this.emit({ kind: 'broadcast', bytes: encodeMessage({ kind: 'evidence', evidence }) });
  }

  /** The offender's public key (hex) in the set of its height, or null if there is none such. */
  private offenderOf(e: DuplicateVoteEvidence): string | null {
    const validator = this.setAt(e.voteA.height)?.validators[e.voteA.validatorIndex];
    return validator === undefined ? null : toHex(validator.publicKey);
  }

  /**
   * This evidence can change nothing. Either its offender has no place in
   * the set deciding the next height, so the application removed it (its
   * answer to a height before ours): the applications here remove a
   * validator only by jailing it, for evidence committed earlier, and a
   * jailed validator is left as it is whatever else it did (the exchange's
   * applyEvidence, the simulator's app). Or evidence of the same offence
   * (this offender, this height) was committed already, within the age
   * window: the offence is punished, and another of its pairs would only be
   * committed again, once a block, which nothing else stops for the last
   * validator (never removed). Such evidence is neither pooled, proposed nor
   * accepted in a proposal (docs/protocol.md, "Evidence"). Every replica
   * holds both inputs: the next set is chain state; a state-synced replica
   * at h knows the offences committed from h+1 on, which are all the
   * offences of heights from h on, and it neither pools nor proposes
   * evidence of heights before (mayBeCommitted).
   */
  private spentOffence(offender: string, e: DuplicateVoteEvidence): boolean {
    const chain = this.chain;
    return (
      !chain.nextValidators.hasKeyHex(offender) ||
      chain.committedOffences.has(offenceKey(offender, e.voteA.height))
    );
  }

  /**
   * A validator may sign any number of conflicting pairs, each distinct valid
   * evidence; the pool keeps EVIDENCE_PER_OFFENDER_MAX against each, so one
   * offender cannot fill it and keep out the evidence against others.
   */
  private evidenceRoomFor(offender: string): boolean {
    return (this.evidenceByOffender.get(offender)?.size ?? 0) < EVIDENCE_PER_OFFENDER_MAX;
  }

  private poolEvidence(key: string, evidence: DuplicateVoteEvidence, offender: string): void {
    this.evidencePool.set(key, evidence);
    const keys = this.evidenceByOffender.get(offender);
    if (keys === undefined) this.evidenceByOffender.set(offender, new Set([key]));
    else keys.add(key);
  }

  private forgetEvidence(key: string): void {
    if (!this.evidencePool.delete(key)) return;
    for (const [offender, keys] of this.evidenceByOffender) {
      if (!keys.delete(key)) continue;
      if (keys.size === 0) this.evidenceByOffender.delete(offender);
      return;
    }
  }

  /** The validator set of a height within the evidence window, or null. */
  private setAt(height: number): ValidatorSet | null {
    if (height === this.heightValue) return this.chain.validators;
    if (height === this.heightValue + 1) return this.chain.nextValidators;
    const history = this.chain.history;
    for (let i = history.length - 1; i >= 0; i--) {
      if (history[i]!.height <= height) return history[i]!.set;
    }
    return null;
  }

  // --- timeouts and building ------------------------------------------------------------

  private onTimeoutInput(input: Input & { kind: 'timeout' }): void {
    const t = input.timeout;
    if (t.step === GOSSIP_STEP) return this.onGossipTimer(t, input.nowMs);
    if (t.height !== this.heightValue || t.round !== this.roundValue || this.decided !== null) {
      return this.drop('staleTimeout');
    }
    if (t.step === STEP.propose && this.stepValue === STEP.propose) {
      // Line 57: OnTimeoutPropose.
      this.timeoutsFired.propose++;
      this.logInput(input);
      this.signVote(VOTE_TYPE.prevote, null, input.nowMs);
      this.stepValue = STEP.prevote;
    } else if (t.step === STEP.prevote && this.stepValue === STEP.prevote) {
      // Line 61: OnTimeoutPrevote.
      this.timeoutsFired.prevote++;
      this.logInput(input);
      this.signVote(VOTE_TYPE.precommit, null, input.nowMs);
      this.stepValue = STEP.precommit;
    } else if (t.step === STEP.precommit) {
      // Line 65: OnTimeoutPrecommit.
      this.timeoutsFired.precommit++;
      this.logInput(input);
      this.startRound(this.roundValue + 1, input.nowMs);
    } else {
      return this.drop('staleTimeout');
    }
    this.progress(input.nowMs);
  }

  /**
   * Re-sends this round's own messages and lifts the rate limits, so lost
   * messages are made up for. One timer runs across heights: a chain that
   * commits faster than the period does not pay a timer per height.
   */
  private onGossipTimer(t: TimeoutKey, nowMs: number): void {
    const pending = this.gossipPending;
    if (pending === null || t.height !== pending.height || t.round !== pending.round) {
      return this.drop('staleTimeout');
    }
    this.gossipPending = null;
    this.lastPushMs.clear();
    this.lastGossipMs.clear();
    this.lastRequestMs = nowMs - CATCHUP_RETRY_MS;
    const entry = this.proposals.get(this.roundValue);
    if (entry !== undefined && entry.proposal.round === this.roundValue) {
      const message: Message = { kind: 'proposal', proposal: entry.proposal, block: entry.block };
      this.emit({ kind: 'broadcast', bytes: encodeMessage(message) });
    }
    for (const step of [STEP.prevote, STEP.precommit] as const) {
      const signed = this.signed.get(hrsKey(this.heightValue, this.roundValue, step));
      if (signed !== undefined) this.emit({ kind: 'broadcast', bytes: signed.bytes });
    }
    this.relayPolkas();
    this.regossipEvidence();
    this.scheduleGossip();
  }

  /**
   * Sends the pending evidence again: a peer that was down or cut off when it
   * was first sent (it goes out once, on detection) gets it now, and can put
   * it in a block of its own. Done at each gossip tick (every
   * GOSSIP_INTERVAL_MS, whatever the heights do); a peer that holds an item
   * drops the copy by its hash, before any signature check. The pool is
   * bounded (EVIDENCE_POOL_MAX, EVIDENCE_PER_OFFENDER_MAX each), and empty
   * unless someone equivocated.
   */
  private regossipEvidence(): void {
    for (const evidence of this.evidencePool.values()) {
      this.emit({ kind: 'broadcast', bytes: encodeMessage({ kind: 'evidence', evidence }) });
    }
  }

  /**
   * The polkas a re-proposal may name as its proof of lock (line 28): the
   * 2f+1 prevotes of our valid round and of the current proposal's POL round,
   * every signer's, ours included. A replica that lost some of those
   * prevotes prevotes nil on the re-proposal in every later round; with the
   * others locked on the value (or on another) the height never ends. As
   * CometBFT's gossip does, we relay the signed votes as they are (a relay
   * signs nothing). At most two rounds' votes go out per tick, each at most
   * one per validator: VOTE_RELAY_PER_TICK_MAX per peer.
   */
  private relayPolkas(): void {
    let sent = 0;
    const relay = (round: number, key: string, hash: Uint8Array): void => {
      const prevotes = this.votes.round(VOTE_TYPE.prevote, round);
      if (prevotes === undefined) return;
      if (!isQuorum(prevotes.power(key), this.chain.validators.totalPower)) return;
      for (const vote of prevotes.votesFor(hash)) {
        if (sent >= VOTE_RELAY_PER_TICK_MAX) return;
        sent++;
        this.emit({ kind: 'broadcast', bytes: voteBytesOf(vote) });
      }
    };
    const valid = this.validEntry;
    if (valid !== null && this.validRoundValue < this.roundValue) {
      relay(this.validRoundValue, valid.key, valid.hash);
    }
    const entry = this.proposals.get(this.roundValue);
    const polRound = entry?.proposal.polRound ?? -1;
    if (entry !== undefined && polRound >= 0 && polRound !== this.validRoundValue) {
      relay(polRound, entry.key, entry.hash);
    }
  }

  private scheduleGossip(): void {
    if (this.gossipPending !== null) return;
    // The round field numbers the timer, so a stray one (from before a restart, say) is told apart.
    this.gossipSeq = this.gossipSeq < ROUND_MAX ? this.gossipSeq + 1 : 0;
    const timeout: TimeoutKey = {
      height: this.heightValue,
      round: this.gossipSeq,
      step: GOSSIP_STEP,
    };
    this.gossipPending = timeout;
    this.emit({
      kind: 'scheduleTimeout',
      timeout,
      delayMs: this.timeouts.gossipMs ?? GOSSIP_INTERVAL_MS,
    });
  }

  private onProposalBuiltInput(input: Input & { kind: 'proposalBuilt' }): void {
    if (
      input.height !== this.heightValue ||
      input.round !== this.roundValue ||
      this.pendingBuildRound !== input.round ||
      this.stepValue !== STEP.propose
    ) {
      return this.drop('unexpected');
    }
    this.logInput(input);
    this.pendingBuildRound = -1;
    this.propose(this.assemble(input.txs), -1);
    this.progress(input.nowMs);
  }

  /** Our block for this height: the app's transactions within limits, pending evidence, BFT time. */
  private assemble(candidates: readonly Uint8Array[]): Block {
    const txs: Uint8Array[] = [];
    let bytes = 0;
    for (const tx of candidates) {
      if (txs.length >= BLOCK_TXS_MAX) break;
      if (tx.length > TX_BYTES_MAX || bytes + tx.length > BLOCK_TX_BYTES_MAX) continue;
      txs.push(tx);
      bytes += tx.length;
    }
    // One piece per offender, and none against a validator already removed
    // (spentOffence): every replica refuses a block with more (checkBlock).
    const offenders = new Set<string>();
    const evidence = [...this.evidencePool.entries()]
      .filter(
        ([key, e]) =>
          !this.chain.committedEvidence.has(key) && this.verifyEvidence(e, this.heightValue - 1),
      )
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .filter(([, e]) => {
        const offender = this.offenderOf(e)!;
        if (offenders.has(offender) || this.spentOffence(offender, e)) return false;
        offenders.add(offender);
        return true;
      })
      .slice(0, EVIDENCE_PER_BLOCK_MAX)
      .map(([, e]) => e);
    const chain = this.chain;
    const me = chain.validators.validators[this.myIndex]!;
    return {
      header: {
        chainId: this.chainId,
        height: this.heightValue,
        round: this.roundValue,
        timeMs: this.blockTimeMs,
        proposerAddress: me.address,
        previousBlockHash: chain.lastBlockHash,
        previousAppHash: chain.appHash,
        txsRoot: txsRoot(txs),
        lastCommitHash: commitHashOf(chain.lastCommit),
        evidenceHash: evidenceRoot(evidence),
        validatorsHash: chain.validators.hash,
      },
      txs,
      evidence,
      lastCommit: chain.lastCommit,
    };
  }

  // --- Algorithm 1 ------------------------------------------------------------------

  /** Lines 10-21: StartRound. The proposer proposes its valid value, or asks the app for a block. */
  private startRound(round: number, _nowMs: number): void {
    this.roundValue = round;
    this.stepValue = STEP.propose;
    this.pendingBuildRound = -1;
    if (this.myIndex >= 0 && this.chain.validators.proposer(round) === this.myIndex) {
      const signedBefore = this.signed.get(hrsKey(this.heightValue, round, STEP.propose));
      if (signedBefore !== undefined) {
        this.reuseProposal(signedBefore.bytes);
      } else if (this.heightValue <= this.signingPausedUntil) {
        this.drop('signingPaused');
      } else if (this.validEntry !== null) {
        this.propose(this.validEntry.block, this.validRoundValue);
      } else {
        this.pendingBuildRound = round;
        this.emit({ kind: 'buildProposal', height: this.heightValue, round });
      }
    }
    this.scheduleTimeout(STEP.propose);
  }

  /** Applies every upon-rule whose condition now holds, until none does. */
  private progress(nowMs: number): void {
    for (;;) {
      if (this.decided !== null) return;
      if (this.rule49(nowMs)) continue;
      if (this.rule55(nowMs)) continue;
      if (this.rule22(nowMs) || this.rule28(nowMs)) continue;
      this.rule34();
      if (this.rule36(nowMs)) continue;
      if (this.rule44(nowMs)) continue;
      this.rule47();
      return;
    }
  }

  /** Line 22: a fresh proposal (no proof of lock): prevote it if valid and we are unlocked or locked on it. */
  private rule22(nowMs: number): boolean {
    if (this.stepValue !== STEP.propose) return false;
    const entry = this.proposals.get(this.roundValue);
    if (entry === undefined || entry.proposal.polRound !== -1) return false;
    const ok =
      this.isValid(entry) && (this.lockedRoundValue === -1 || this.locked?.key === entry.key);
    this.signVote(VOTE_TYPE.prevote, ok ? entry.hash : null, nowMs);
    this.stepValue = STEP.prevote;
    return true;
  }

  /** Line 28: a re-proposal with a proof of lock from round vr: prevote it if our lock is no newer, or on it. */
  private rule28(nowMs: number): boolean {
    if (this.stepValue !== STEP.propose) return false;
    const entry = this.proposals.get(this.roundValue);
    if (entry === undefined) return false;
    const vr = entry.proposal.polRound;
    if (vr < 0 || vr >= this.roundValue) return false;
    const prevotes = this.votes.round(VOTE_TYPE.prevote, vr);
    if (
      prevotes === undefined ||
      !isQuorum(prevotes.power(entry.key), this.chain.validators.totalPower)
    ) {
      return false;
    }
    const ok =
      this.isValid(entry) && (this.lockedRoundValue <= vr || this.locked?.key === entry.key);
    this.signVote(VOTE_TYPE.prevote, ok ? entry.hash : null, nowMs);
    this.stepValue = STEP.prevote;
    return true;
  }

  /** Line 34: 2f+1 prevotes of any kind in this round: start the prevote timeout (once). */
  private rule34(): void {
    if (this.stepValue !== STEP.prevote || this.prevoteTimeoutRounds.has(this.roundValue)) return;
    const prevotes = this.votes.round(VOTE_TYPE.prevote, this.roundValue);
    if (prevotes === undefined || !isQuorum(prevotes.powerAny, this.chain.validators.totalPower))
      return;
    this.prevoteTimeoutRounds.add(this.roundValue);
    this.scheduleTimeout(STEP.prevote);
  }

  /** Line 36: the proposal and 2f+1 prevotes for it: lock and precommit it (in prevote step); remember it as valid. */
  private rule36(nowMs: number): boolean {
    if (this.stepValue < STEP.prevote || this.line36Rounds.has(this.roundValue)) return false;
    const entry = this.proposals.get(this.roundValue);
    if (entry === undefined) return false;
    const prevotes = this.votes.round(VOTE_TYPE.prevote, this.roundValue);
    if (
      prevotes === undefined ||
      !isQuorum(prevotes.power(entry.key), this.chain.validators.totalPower)
    ) {
      return false;
    }
    if (!this.isValid(entry)) return false;
    this.line36Rounds.add(this.roundValue);
    if (this.stepValue === STEP.prevote) {
      this.locked = entry;
      this.lockedRoundValue = this.roundValue;
      this.signVote(VOTE_TYPE.precommit, entry.hash, nowMs);
      this.stepValue = STEP.precommit;
    }
    this.validEntry = entry;
    this.validRoundValue = this.roundValue;
    return true;
  }

  /** Line 44: 2f+1 prevotes for nil: precommit nil. */
  private rule44(nowMs: number): boolean {
    if (this.stepValue !== STEP.prevote) return false;
    const prevotes = this.votes.round(VOTE_TYPE.prevote, this.roundValue);
    if (
      prevotes === undefined ||
      !isQuorum(prevotes.power(NIL_KEY), this.chain.validators.totalPower)
    ) {
      return false;
    }
    this.signVote(VOTE_TYPE.precommit, null, nowMs);
    this.stepValue = STEP.precommit;
    return true;
  }

  /** Line 47: 2f+1 precommits of any kind in this round: start the precommit timeout (once). */
  private rule47(): void {
    if (this.precommitTimeoutRounds.has(this.roundValue)) return;
    const precommits = this.votes.round(VOTE_TYPE.precommit, this.roundValue);
    if (
      precommits === undefined ||
      !isQuorum(precommits.powerAny, this.chain.validators.totalPower)
    )
      return;
    this.precommitTimeoutRounds.add(this.roundValue);
    this.scheduleTimeout(STEP.precommit);
  }

  /**
   * Line 49: 2f+1 precommits for a block we hold and find valid, in any
   * round: decide it. A block we hold but refused in voting (valid(v) was
   * false: the application rejected it, or evidence in it we saw committed)
   * is decided all the same once its certificate verifies and it extends our
   * chain as a committed block does (decidesCertified): 2/3+ of the stake
   * committed it, as a peer's catch-up block would tell us a retry period
   * later. A block we never received is asked of a peer that committed it.
   */
  private rule49(nowMs: number): boolean {
    for (const { round, key } of this.decisionCandidates.values()) {
      const entry = this.blocksByKey.get(key);
      if (entry === undefined) {
        this.requestDecidedBlock(nowMs);
        continue;
      }
      const commit = this.certificate(round, key);
      if (!this.isValid(entry) && !this.decidesCertified(entry, commit)) continue;
      this.decidedFromPeer = false;
      this.decide(entry.block, entry.hash, commit);
      return true;
    }
    return false;
  }

  /**
   * A block valid(v) refused, with 2/3+ precommits for it: decided as a
   * catch-up block is (applyCatchup), without processProposal and with
   * evidence committed before no reason to refuse it. The certificate is
   * checked again (hash, order, power; its signatures were verified as the
   * precommits arrived) and the block must extend our chain.
   */
  private decidesCertified(entry: ProposalEntry, commit: CommitCertificate): boolean {
    // A block its own checks refused stays refused: no certificate to verify again.
    if (entry.certified !== undefined && entry.certified !== null) return false;
    if (!this.verifyCommit(commit, this.chain.validators, this.heightValue, entry.hash)) {
      return false;
    }
    // Only the round bound depends on the certificate: the rest is the block's own.
    if (entry.block.header.round > commit.round) return false;
    if (entry.certified === undefined && this.showsDivergence({ block: entry.block, commit })) {
      // Decides nothing: the node halts. Not shown twice.
      entry.certified = 'invalidBlock';
      return false;
    }
    if (entry.certified === undefined) {
      entry.certified = this.checkCommittedBlock(entry.block, commit);
      if (entry.certified !== null) this.drop(entry.certified);
    }
    return entry.certified === null;
  }

  /** Line 55: f+1 of the stake speaks in a higher round: skip to it. */
  private rule55(nowMs: number): boolean {
    if (this.skipRound <= this.roundValue) return false;
    this.startRound(this.skipRound, nowMs);
    return true;
  }

  private certificate(round: number, key: string): CommitCertificate {
    const precommits = this.votes.round(VOTE_TYPE.precommit, round);
    assert(precommits !== undefined, 'a decision has its precommits');
    const votes: CommitVote[] = [];
    const hash = this.blocksByKey.get(key)?.hash ?? null;
    assert(hash !== null, 'a decision holds its block');
    for (const v of precommits.votesFor(hash)) {
      votes.push({
        validatorIndex: v.validatorIndex,
        timestampMs: v.timestampMs,
        extension: v.extension,
        signature: v.signature,
      });
    }
    return { height: this.heightValue, round, blockHash: hash, votes };
  }

  private decide(block: Block, hash: Uint8Array, commit: CommitCertificate): void {
    assert(this.decided === null, 'one decision per height');
    this.decided = { block, hash, commit };
    this.emit({
      kind: 'committed',
      height: this.heightValue,
      round: commit.round,
      blockHash: hash,
    });
    const misbehavior = block.evidence.map((e) => this.misbehaviorOf(e));
    this.emit({ kind: 'finalizeBlock', block, blockHash: hash, commit, misbehavior });
  }

  /** Evidence by the offender's key: its index means something only in the set of its height. */
  private misbehaviorOf(e: DuplicateVoteEvidence): Misbehavior {
    const vote = e.voteA;
    const set = this.setAt(vote.height);
    const validator = set?.validators[vote.validatorIndex];
    assert(validator !== undefined, 'committed evidence was checked against its set');
    return {
      publicKey: validator.publicKey,
      power: validator.power,
      height: vote.height,
      round: vote.round,
      type: vote.type,
    };
  }

  // --- signing (never twice differently) -------------------------------------------------

  private rememberSigned(record: WalRecord & { kind: 'signed' }): void {
    let message: Message;
    try {
      message = decode(messageCodec, record.bytes);
    } catch (error) {
      if (error instanceof DecodeError) return;
      throw error;
    }
    const key =
      message.kind === 'vote'
        ? valueKey(message.vote.blockHash)
        : message.kind === 'proposal'
          ? toHex(message.proposal.blockHash)
          : NIL_KEY;
    this.signed.set(hrsKey(record.height, record.round, record.step), {
      height: record.height,
      round: record.round,
      step: record.step,
      key,
      bytes: record.bytes,
    });
    const hrs: [number, number, number] = [record.height, record.round, record.step];
    if (compareHrs(hrs, this.lastSigned) > 0) this.lastSigned = hrs;
  }

  /**
   * The guard in front of every signature: a (height, round, step) already
   * signed is only ever re-sent, never signed for another value; anything at
   * or below the last signed point is refused. The signed message is
   * persisted with sync before it is broadcast.
   */
  private signGuard(step: Step, key: string): 'sign' | 'resend' | 'refuse' | 'paused' {
    const before = this.signed.get(hrsKey(this.heightValue, this.roundValue, step));
    if (before !== undefined) return before.key === key ? 'resend' : 'refuse';
    if (this.heightValue <= this.signingPausedUntil) return 'paused';
    const hrs: [number, number, number] = [this.heightValue, this.roundValue, step];
    return compareHrs(hrs, this.lastSigned) > 0 ? 'sign' : 'refuse';
  }

  private recordSigned(step: Step, key: string, bytes: Uint8Array): void {
    const record = encode(walRecordCodec, {
      kind: 'signed',
      height: this.heightValue,
      round: this.roundValue,
      step,
      bytes,
    });
    this.emit({ kind: 'persist', record, sync: true }, true);
    this.signed.set(hrsKey(this.heightValue, this.roundValue, step), {
      height: this.heightValue,
      round: this.roundValue,
      step,
      key,
      bytes,
    });
    this.lastSigned = [this.heightValue, this.roundValue, step];
    this.emit({ kind: 'broadcast', bytes }, true);
  }

  private signVote(type: VoteType, blockHash: Uint8Array | null, nowMs: number): void {
    const signer = this.ports.signer;
    if (signer === null || this.myIndex < 0) return;
    const step = type === VOTE_TYPE.prevote ? STEP.prevote : STEP.precommit;
    const key = this.votes.keyOf(blockHash);
    const verdict = this.signGuard(step, key);
    if (verdict === 'refuse') return this.drop('doubleSignRefused');
    if (verdict === 'paused') return this.drop('signingPaused');
    if (verdict === 'resend') {
      const bytes = this.signed.get(hrsKey(this.heightValue, this.roundValue, step))!.bytes;
      const message = decodeMessage(bytes);
      assert(message.kind === 'vote', 'a signed vote record holds a vote');
      this.emit({ kind: 'broadcast', bytes });
      this.addVote(message.vote);
      return;
    }
    let timestampMs = 0;
    let extension: Uint8Array = EMPTY;
    if (type === VOTE_TYPE.precommit) {
      timestampMs = nowMs;
      if (blockHash !== null) {
        // BFT time stays monotonic: every precommit for a block is later than the block.
        const blockTime = this.blocksByKey.get(key)?.block.header.timeMs ?? this.blockTimeMs;
        if (timestampMs <= blockTime) timestampMs = blockTime + 1;
        extension = this.ports.app.extendVote(this.heightValue, this.roundValue, blockHash);
        assert(extension.length <= VOTE_EXTENSION_BYTES_MAX, 'vote extension too large');
      }
    }
    const kind =
      type === VOTE_TYPE.prevote ? SIGN_KIND_CONSENSUS.prevote : SIGN_KIND_CONSENSUS.precommit;
    const signBytes = voteSignBytes(
      this.writer,
      type,
      this.heightValue,
      this.roundValue,
      blockHash,
      timestampMs,
      extension,
    );
    const vote: Vote = {
      type,
      height: this.heightValue,
      round: this.roundValue,
      blockHash,
      validatorIndex: this.myIndex,
      timestampMs,
      extension,
      signature: signer.sign(kind, signBytes),
    };
    rememberVoteSignBytes(vote, signBytes);
    this.recordSigned(step, key, encodeMessage({ kind: 'vote', vote }));
    this.addVote(vote);
  }

  private propose(block: Block, polRound: number): void {
    const signer = this.ports.signer;
    if (signer === null) return;
    const hash = blockHashOf(block);
    const key = toHex(hash);
    const verdict = this.signGuard(STEP.propose, key);
    if (verdict === 'refuse') return this.drop('doubleSignRefused');
    if (verdict === 'paused') return this.drop('signingPaused');
    if (verdict === 'resend') {
      return this.reuseProposal(
        this.signed.get(hrsKey(this.heightValue, this.roundValue, STEP.propose))!.bytes,
      );
    }
    const signBytes = proposalSignBytes(
      this.writer,
      this.heightValue,
      this.roundValue,
      polRound,
      hash,
    );
    const proposal: Proposal = {
      height: this.heightValue,
      round: this.roundValue,
      polRound,
      blockHash: hash,
      signature: signer.sign(SIGN_KIND_CONSENSUS.proposal, signBytes),
    };
    rememberProposalSignBytes(proposal, signBytes);
    this.recordSigned(STEP.propose, key, encodeMessage({ kind: 'proposal', proposal, block }));
    this.addProposal(proposal, block, hash, true);
    this.votes.speak(this.roundValue, this.myIndex);
  }

  /** Re-sends a proposal signed before a restart instead of building another. */
  private reuseProposal(bytes: Uint8Array): void {
    const message = decodeMessage(bytes);
    assert(message.kind === 'proposal', 'a signed proposal record holds a proposal');
    this.emit({ kind: 'broadcast', bytes });
    if (!this.proposals.has(message.proposal.round)) {
      this.addProposal(message.proposal, message.block, message.proposal.blockHash, null);
    }
  }

  /** After replay: send again, in order, what was signed at this height before the restart. */
  private resendSigned(): void {
    const entries = [...this.signed.values()]
      .filter((e) => e.height === this.heightValue)
      .sort((a, b) => a.round - b.round || a.step - b.step);
    for (const e of entries) this.emit({ kind: 'broadcast', bytes: e.bytes });
  }

  // --- heights ----------------------------------------------------------------------

  private onBlockExecutedInput(input: Input & { kind: 'blockExecuted' }): void {
    const decided = this.decided;
    if (decided === null || input.height !== this.heightValue) return this.drop('unexpected');
    const pausedBefore = this.signingPausedUntil;
    this.watchForeignPrecommit(decided.commit);
    // A pause started or moved here must survive a crash, and the shell syncs
    // a checkpoint only when it rotates its log (a paused replica signs
    // nothing, so no vote's sync follows). This input is synced instead: a
    // replay decides and executes this height again and finds the same
    // certificate.
    this.logInput(input, this.signingPausedUntil !== pausedBefore);
    this.advance(decided, input.result);
    // The pause rides in the checkpoint, which starts the log a restart
    // replays: it must outlive the certificates that started it. So does the
    // evidence still pending: the inputs that brought it lie before the
    // checkpoint, and it is sent once, so lost in a restart it would never
    // be committed (docs/protocol.md, "Evidence").
    const paused = this.signingPausedUntil > this.chain.height;
    const evidence = this.pendingEvidenceFor(this.chain.height + 1);
    this.emit({
      kind: 'persist',
      record: encode(walRecordCodec, {
        kind: 'checkpoint',
        state: this.stateRecord(),
        ...(paused ? { signingPausedUntil: this.signingPausedUntil } : {}),
        ...(evidence.length > 0 ? { evidence } : {}),
      }),
      // Synced: the shell rotates its log here (replay starts at the last
      // checkpoint), so once older records are dropped this one must not be lost.
      sync: true,
    });
    this.enterHeight(input.nowMs);
  }

  /** The pool's evidence a block of `height` may still carry (the rest expires on entering it). */
  private pendingEvidenceFor(height: number): DuplicateVoteEvidence[] {
    const out: DuplicateVoteEvidence[] = [];
    for (const e of this.evidencePool.values()) {
      if (e.voteA.height >= height - EVIDENCE_AGE_HEIGHTS_MAX) out.push(e);
    }
    return out;
  }

  /**
   * Evidence a checkpoint carried, pooled again at a restart as when it first
   * came (verified against the sets of its height, within the bounds), but
   * neither logged nor announced: it is not new.
   */
  private restoreEvidence(evidence: readonly DuplicateVoteEvidence[]): void {
    for (const e of evidence) {
      const key = toHex(evidenceHashOf(e));
      if (this.evidencePool.has(key) || this.mayBeCommitted(key, e)) continue;
      const offender = this.offenderOf(e);
      if (offender === null || this.spentOffence(offender, e) || !this.evidenceRoomFor(offender)) {
        continue;
      }
      if (this.evidencePool.size >= EVIDENCE_POOL_MAX) return;
      if (!this.verifyEvidence(e, this.heightValue)) continue;
      this.poolEvidence(key, e, offender);
    }
  }

  /**
   * The double-sign watch. A precommit by this key in the height's
   * certificate that this replica did not sign (none in its signed records
   * for that round, or one for another value) was made by another process
   * holding the key, or by this one before it lost its WAL. Either may still
   * be signing, so the two would sign conflicting votes and the key would be
   * jailed. Signing pauses until that signer has been silent for
   * doubleSignWatchHeights heights; what this replica signed itself is never
   * mistaken for it, so an ordinary restart never pauses.
   */
  private watchForeignPrecommit(commit: CommitCertificate): void {
    if (this.myIndex < 0 || this.doubleSignWatchHeights === 0) return;
    const vote = commit.votes.find((v) => v.validatorIndex === this.myIndex);
    if (vote === undefined) return;
    const own = this.signed.get(hrsKey(commit.height, commit.round, STEP.precommit));
    if (own !== undefined && own.key === this.votes.keyOf(commit.blockHash)) return;
    const untilHeight = commit.height + this.doubleSignWatchHeights;
    if (untilHeight <= this.signingPausedUntil) return;
    this.signingPausedUntil = untilHeight;
    this.emit({ kind: 'signingPaused', height: commit.height, untilHeight });
  }

  /** The state after executing the decided block: sets for H+1 and H+2, history, committed evidence. */
  private advance(decided: Decision, result: BlockResult): void {
    const chain = this.chain;
    const height = this.heightValue;
    // History and committed evidence are immutable values: a height that
    // changes neither (most do not) keeps the very objects, and no copies.
    let history = chain.history;
    const last = history[history.length - 1];
    const pushSet = last === undefined || !bytesEqual(last.set.hash, chain.validators.hash);
    // Keep the sets that evidence still in its window may need.
    const oldest = height + 1 - EVIDENCE_AGE_HEIGHTS_MAX;
    if (pushSet || (history.length >= 2 && history[1]!.height <= oldest)) {
      const copy = history.slice();
      if (pushSet) copy.push({ height, set: chain.validators });
      while (copy.length >= 2 && copy[1]!.height <= oldest) copy.shift();
      history = copy;
    }
    let committedEvidence = chain.committedEvidence;
    let committedOffences = chain.committedOffences;
    let expired = false;
    for (const c of committedEvidence.values()) if (c.height < oldest) expired = true;
    if (expired || decided.block.evidence.length > 0) {
      const next = new Map<string, CommittedEntry>();
      for (const [key, c] of chain.committedEvidence) if (c.height >= oldest) next.set(key, c);
      for (const e of decided.block.evidence) {
        const key = toHex(evidenceHashOf(e));
        // The block's evidence was verified against the set of its height (checkBlock).
        const offender = this.offenderOf(e);
        const offence =
          offender === null ? null : { publicKey: fromHex(offender), height: e.voteA.height };
        next.set(key, { height, offence });
        this.forgetEvidence(key);
      }
      committedEvidence = next;
      committedOffences = offencesOf(next);
    }
    // Evidence of height x may be in blocks x+1 and up: once no evidence a
    // block may still carry (x >= oldest - 1) could be in one before
    // committedEvidenceFrom, the committed evidence is complete.
    const committedEvidenceFrom =
      chain.committedEvidenceFrom > oldest ? chain.committedEvidenceFrom : 0;
    this.chain = {
      height,
      lastBlockHash: decided.hash,
      lastBlockTimeMs: decided.block.header.timeMs,
      lastCommit: decided.commit,
      appHash: result.appHash.slice(),
      validators: chain.nextValidators,
      nextValidators: chain.nextValidators.withUpdates(result.validatorUpdates).advanced(),
      history,
      committedEvidence,
      committedOffences,
      committedEvidenceFrom,
    };
  }

  /** Starts the height after the chain's, then takes up what waited for it. */
  private enterHeight(nowMs: number): void {
    const chain = this.chain;
    this.heightValue = chain.height + 1;
    this.locked = null;
    this.lockedRoundValue = -1;
    this.validEntry = null;
    this.validRoundValue = -1;
    this.proposals.clear();
    this.blocksByKey.clear();
    this.proposalRoundsAhead.clear();
    this.voteRoundsAhead.clear();
    this.previousVotes = this.votes;
    this.votes = new HeightVotes(chain.validators.powers);
    this.decided = null;
    this.decisionCandidates.clear();
    this.skipRound = -1;
    this.prevoteTimeoutRounds.clear();
    this.precommitTimeoutRounds.clear();
    this.line36Rounds.clear();
    const signer = this.ports.signer;
    if (this.myIndexSet === null || this.myIndexSet.validators !== chain.validators.validators) {
      this.myIndexSet = chain.validators;
      this.myIndex = signer === null ? -1 : chain.validators.indexOf(signer.publicKey);
    }
    this.blockTimeMs = this.blockTimeFor(chain.lastCommit);
    for (const key of this.signed.keys()) {
      if (this.signed.get(key)!.height < this.heightValue) this.signed.delete(key);
    }
    for (const [key, e] of this.evidencePool) {
      const offender = this.offenderOf(e);
      if (
        e.voteA.height < this.heightValue - EVIDENCE_AGE_HEIGHTS_MAX ||
        offender === null ||
        this.spentOffence(offender, e)
      ) {
        this.forgetEvidence(key);
      }
    }
    for (const h of this.catchupBuffer.keys()) {
      if (h < this.heightValue) this.unbuffer(h);
    }
    this.catchupEvicted.clear();
    this.startRound(0, nowMs);
    this.scheduleGossip();
    const waiting = this.future;
    this.future = [];
    this.futureBytes.clear();
    this.futureFromFullNodes = 0;
    for (const w of waiting) {
      this.onDecoded({ kind: 'message', from: w.from, bytes: w.bytes, nowMs: w.nowMs }, w.message);
    }
    this.applyCatchup(nowMs);
    this.progress(nowMs);
  }

  /**
   * BFT time of a block carrying `lastCommit`: the stake-weighted median of its
   * timestamps, at least one ms after the last block (the genesis time at the first height).
   */
  private blockTimeFor(lastCommit: CommitCertificate | null): number {
    const chain = this.chain;
    if (lastCommit === null) return chain.lastBlockTimeMs;
    // A certificate names its height, so its time is fixed once computed (every proposal of a height repeats it).
    const known = this.blockTimes.get(lastCommit);
    if (known !== undefined) return known;
    const set = this.setAt(chain.height);
    assert(set !== null, 'the last height keeps its validator set');
    const median = weightedMedianMs(lastCommit, set);
    const timeMs = median > chain.lastBlockTimeMs ? median : chain.lastBlockTimeMs + 1;
    this.blockTimes.set(lastCommit, timeMs);
    return timeMs;
  }

  private stateRecord(): ChainState {
    const c = this.chain;
    return {
      chainId: this.chainId,
      height: c.height,
      lastBlockHash: c.lastBlockHash,
      lastBlockTimeMs: c.lastBlockTimeMs,
      lastCommit: c.lastCommit,
      appHash: c.appHash,
      validators: c.validators.toState(),
      nextValidators: c.nextValidators.toState(),
      history: this.historyRecord(c.history),
      committedEvidence: [...c.committedEvidence].map(([key, { height, offence }]) => ({
        height,
        hash: fromHex(key),
        ...(offence === null ? {} : { offence }),
      })),
      ...(c.committedEvidenceFrom > 0 ? { committedEvidenceFrom: c.committedEvidenceFrom } : {}),
    };
  }

  /** The history as recorded, remembered while the chain keeps the same history array. */
  private historyRecord(history: ChainHistory): ChainState['history'] {
    if (this.historyState?.of !== history) {
      const state = history.map((h) => ({ height: h.height, set: h.set.toState() }));
      this.historyState = { of: history, state };
    }
    return this.historyState.state;
  }

  private loadState(state: ChainState): void {
    assert(state.chainId === this.chainId, 'the WAL belongs to this chain');
    const committedEvidence = new Map<string, CommittedEntry>(
      state.committedEvidence.map((e) => [
        toHex(e.hash),
        { height: e.height, offence: e.offence ?? null },
      ]),
    );
    this.chain = {
      height: state.height,
      lastBlockHash: state.lastBlockHash,
      lastBlockTimeMs: state.lastBlockTimeMs,
      lastCommit: state.lastCommit,
      appHash: state.appHash,
      validators: ValidatorSet.fromState(state.validators),
      nextValidators: ValidatorSet.fromState(state.nextValidators),
      history: state.history.map((h) => ({ height: h.height, set: ValidatorSet.fromState(h.set) })),
      committedEvidence,
      committedOffences: offencesOf(committedEvidence),
      committedEvidenceFrom: state.committedEvidenceFrom ?? 0,
    };
  }

  // --- catch-up ----------------------------------------------------------------------

  /** A peer speaks at a later height: it has committed the blocks before it; ask for ours. */
  private notePeerAhead(from: PeerId, height: number, nowMs: number): void {
    const known = this.peerHeights.get(from);
    if (known === undefined && this.peerHeights.size >= 4 * VALIDATORS_MAX) return;
    if (known === undefined || height > known) this.peerHeights.set(from, height);
    if (height >= this.heightValue + 2) this.requestBlocks(from, nowMs);
    else if (this.lacksDecidedBlock()) this.requestDecidedBlock(nowMs, from);
  }

  /**
   * 2f+1 precommits for a block of our height that we never received: a
   * peer heard at the next height committed it and can serve it now. Without
   * this the replica waited for that peer's push (a retry period, once it
   * heard us still at this height) or for a peer two heights on.
   */
  private lacksDecidedBlock(): boolean {
    if (this.decided !== null) return false;
    for (const { key } of this.decisionCandidates.values()) {
      if (!this.blocksByKey.has(key)) return true;
    }
    return false;
  }

  private canServe(peer: PeerId, height: number): boolean {
    if (this.catchupDistrusted.has(peer)) return false;
    const first = this.prunedBelow.get(peer);
    return first === undefined || first <= height;
  }

  /** The peer answered our block request `blockBusy` less than a retry period ago. */
  private answeredBusy(peer: PeerId, nowMs: number): boolean {
    const atMs = this.busyPeers.get(peer);
    return atMs !== undefined && nowMs - atMs < CATCHUP_RETRY_MS;
  }

  private requestBlocks(trigger: PeerId, nowMs: number): void {
    // A height decided and being executed is not asked for again.
    let fromHeight = this.decided !== null ? this.heightValue + 1 : this.heightValue;
    while (this.catchupBuffer.has(fromHeight)) fromHeight++;
    // Only what the buffer can take (onBlockResponse drops the rest): an
    // answer of dropped blocks would not close the request, and the next
    // would wait a retry period. A full buffer asks again once a block of it
    // is executed and the next peer message comes.
    const count = Math.min(
      CATCHUP_BATCH_BLOCKS_MAX,
      this.heightValue + CATCHUP_BUFFER_BLOCKS_MAX - fromHeight,
    );
    if (count <= 0) return;
    const stillWaiting =
      this.requestedUpTo >= fromHeight && nowMs - this.lastRequestMs < CATCHUP_RETRY_MS;
    if (stillWaiting) return;
    const from = this.catchupPeer(trigger, fromHeight, nowMs);
    if (from === null) return;
    this.lastRequestMs = nowMs;
    this.requestedUpTo = fromHeight + count - 1;
    this.requestedFrom = from;
    this.requestedHeight = fromHeight;
    this.requestedCount = count;
    this.requestAnswered = false;
    const bytes = encode(messageCodec, { kind: 'blockRequest', fromHeight, count });
    this.emit({ kind: 'send', to: from, bytes });
  }

  /**
   * Whom a block request goes to. A request goes to the peer whose message
   * prompted it, and the first such message after each retry period is any
   * peer's claim to be ahead, unverified: a peer that claims it at every
   * turn and never answers would be asked every time, and we would never
   * catch up. So the peer last asked keeps the role while it answers with a
   * fair share of what we asked (coversFairShare); after a request it left
   * unanswered, or answered short, the next goes to the next peer in turn that
   * claimed to be ahead (in the order we first heard them), so each peer that
   * does not answer costs one retry period per round of them. One that
   * pruned what we need is not asked, nor one whose claim falls short of the
   * first height we ask for (a peer heard at H holds the blocks below H): the
   * prompting peer may claim just two heights past ours while the blocks we
   * hold run further, and asking it would cost a retry period. When no peer
   * claims that height, nobody is asked: the next claim that does asks again.
   * Nor is a peer that answered busy within the retry period (its serving
   * budget for all peers was spent): asking it again at once would draw only
   * another busy answer. A peer that answered fairly but may not be asked
   * now is passed over in turn too, as an unanswered one.
   */
  private catchupPeer(trigger: PeerId, fromHeight: number, nowMs: number): PeerId | null {
    const fits = (peer: PeerId): boolean =>
      (this.peerHeights.get(peer) ?? 0) > fromHeight &&
      this.canServe(peer, fromHeight) &&
      !this.answeredBusy(peer, nowMs);
    const last = this.requestedFrom;
    if (last !== null && this.requestAnswered && fits(last)) return last;
    // Also when it answered fairly but may not be asked now (it pruned what
    // we need, or answered busy): the first peer heard may be a silent one.
    if (last !== null) {
      let passed = false;
      let first: PeerId | null = null;
      for (const peer of this.peerHeights.keys()) {
        if (peer === last) {
          passed = true;
        } else if (fits(peer)) {
          if (passed) return peer;
          first ??= peer;
        }
      }
      if (first !== null) return first;
    }
    if (fits(trigger)) return trigger;
    // It pruned what we need, or claims less: ask a peer that may hold it, if we know one.
    for (const peer of this.peerHeights.keys()) if (fits(peer)) return peer;
    return null;
  }

  /**
   * 2f+1 precommits for a block we never received: ask a peer that may have
   * committed it, unless a request for our height is still out (an answered
   * one is closed, and waiting out its period would stall us here).
   */
  private requestDecidedBlock(nowMs: number, trigger?: PeerId): void {
    if (this.requestedUpTo >= this.heightValue && nowMs - this.lastRequestMs < CATCHUP_RETRY_MS) {
      return;
    }
    if (trigger !== undefined) return this.requestBlocks(trigger, nowMs);
    for (const [peer, height] of this.peerHeights) {
      if (height > this.heightValue) return this.requestBlocks(peer, nowMs);
    }
  }

  /**
   * The core sends each message once; a peer that was down or lost it would
   * wait forever (Algorithm 1 assumes gossip eventually delivers). So a peer
   * heard from at our height is sent, at most once per retry period, what we
   * signed in this round and the round's proposal; and, when the vote it
   * re-sent is of an earlier round (it is likely still there), what we signed
   * in that round. Our own gossip timer re-sends only the current round's: a
   * peer that lost our precommit of the round we left would wait forever for
   * the 2f+1 precommits that start its precommit timeout (line 47).
   */
  private regossip(to: PeerId, peerRound: number, nowMs: number): void {
    const last = this.lastGossipMs.get(to);
    if (last !== undefined && nowMs - last < CATCHUP_RETRY_MS) return;
    if (last === undefined && this.lastGossipMs.size >= 4 * VALIDATORS_MAX) return;
    this.lastGossipMs.set(to, nowMs);
    const entry = this.proposals.get(this.roundValue);
    if (entry !== undefined && entry.proposal.round === this.roundValue) {
      const message: Message = { kind: 'proposal', proposal: entry.proposal, block: entry.block };
      this.emit({ kind: 'send', to, bytes: encodeMessage(message) });
    }
    const rounds = peerRound < this.roundValue ? [peerRound, this.roundValue] : [this.roundValue];
    for (const round of rounds) {
      for (const step of [STEP.prevote, STEP.precommit] as const) {
        const signed = this.signed.get(hrsKey(this.heightValue, round, step));
        if (signed !== undefined) this.emit({ kind: 'send', to, bytes: signed.bytes });
      }
    }
  }

  /** A peer speaks at an earlier height: send it what it misses (at most once per retry period). */
  private pushBlocks(to: PeerId, height: number, nowMs: number): void {
    if (height === this.heightValue - 1) {
      // Votes of the last height keep arriving after 2f+1 decided it; only a
      // peer still speaking there a retry period later (its gossip timer
      // re-sends) is behind. Pushing on every late vote would send n² batches.
      const behind = this.behindSinceMs.get(to);
      if (behind === undefined || behind.height !== height) {
        if (behind !== undefined || this.behindSinceMs.size < 4 * VALIDATORS_MAX) {
          this.behindSinceMs.set(to, { height, sinceMs: nowMs });
        }
        return;
      }
      if (nowMs - behind.sinceMs < CATCHUP_RETRY_MS) return;
    }
    const last = this.lastPushMs.get(to);
    if (last !== undefined && nowMs - last < CATCHUP_RETRY_MS) return;
    if (last === undefined && this.lastPushMs.size >= 4 * VALIDATORS_MAX) return;
    this.lastPushMs.set(to, nowMs);
    // Within the serving budgets, as a request of that peer: pushes to many
    // peers behind would otherwise draw on the store without a shared bound.
    this.serveWithinBudgets(to, height, CATCHUP_BATCH_BLOCKS_MAX, nowMs);
  }

  /**
   * A peer asks for blocks: answered within its budget per retry period
   * (else dropped: rateLimited) and the one all peers share (else answered
   * `blockBusy`: busy), serveWithinBudgets.
   */
  private onBlockRequest(from: PeerId, fromHeight: number, count: number, nowMs: number): void {
    const refused = this.serveWithinBudgets(from, fromHeight, count, nowMs);
    if (refused === null) return;
    this.drop(refused);
    if (refused !== 'busy') return;
    // The asker turns to another peer at once instead of waiting out its retry period.
    const bytes = encode(messageCodec, { kind: 'blockBusy', fromHeight });
    this.emit({ kind: 'send', to: from, bytes });
  }

  /**
   * Serves blocks to `peer` if its budgets allow, and charges them; returns
   * null, or why it did not. Each peer draws at most
   * CATCHUP_SERVE_BYTES_PER_PEER_MAX per retry period (plus one answer). Its
   * first CATCHUP_SERVE_FLOOR_BYTES of each period are its floor, served
   * whatever the others ask; past them it draws on the budget all peers
   * share (serveTotalBytes a period). Without the shared budget, many peers
   * each within its own budget made us load and send blocks without a bound;
   * without the floor, they could together spend the shared budget first at
   * every period and starve a lagging peer. A refused request is charged a
   * lookup: a peer asking in a loop gets at most that many busy answers a
   * period.
   *
   * The shared budget has two parts. The open part
   * (1/CATCHUP_SERVE_FULL_NODES_PART of it) is drawn first come by full
   * nodes, and by validators past their shares. The rest is the
   * validators': at each period's start, each validator that asked past its
   * floor in the last two periods gets an equal share of it, and those
   * without one draw first come on what the shares leave (all of it when
   * none asked). A lagging validator asks a server until it is refused, and
   * again a retry period later, so it always has a share: the validators'
   * part over at most f + the honest validators lagging. With the part
   * first come, one Byzantine validator (up to its own budget) and full
   * nodes filling the open part, or two Byzantine validators, left an
   * honest lagging validator only its floor; with shares counted among
   * those asking so far, one asking early in a period, or skipping periods
   * to come back new, would still take another's. O(1) a request, and once a
   * period O(validators that asked).
   */
  private serveWithinBudgets(
    peer: PeerId,
    fromHeight: number,
    count: number,
    nowMs: number,
  ): 'bufferFull' | 'rateLimited' | 'busy' | null {
    let served = this.servedRequests.get(peer);
    if (served === undefined || nowMs - served.sinceMs >= CATCHUP_RETRY_MS) {
      if (served === undefined && this.servedRequests.size >= 4 * VALIDATORS_MAX) {
        // Full of peers: forget those whose period is over.
        for (const [p, s] of this.servedRequests) {
          if (nowMs - s.sinceMs >= CATCHUP_RETRY_MS) this.servedRequests.delete(p);
        }
        if (this.servedRequests.size >= 4 * VALIDATORS_MAX) return 'bufferFull';
      }
      served = { sinceMs: nowMs, chargedBytes: 0 };
      this.servedRequests.set(peer, served);
    }
    if (served.chargedBytes >= CATCHUP_SERVE_BYTES_PER_PEER_MAX) return 'rateLimited';
    const shared = this.servedShared;
    let part: 'floor' | 'share' | 'newcomer' | 'open' = 'floor';
    let limitBytes = Number.MAX_SAFE_INTEGER;
    if (served.chargedBytes >= CATCHUP_SERVE_FLOOR_BYTES) {
      const openMax = divFloor(this.serveTotalBytes, CATCHUP_SERVE_FULL_NODES_PART);
      if (nowMs - shared.sinceMs >= CATCHUP_RETRY_MS) {
        shared.sinceMs = nowMs;
        shared.openBytes = 0;
        shared.newcomersBytes = 0;
        this.validatorShares = new Map();
        // Each share holds at least one full answer: shares smaller than a
        // block could never be drawn, and the validators' part went unused.
        // With more validators asking, those that waited longest get them,
        // and go last (the map's order) for the next period.
        const sharesMax = Math.max(
          1,
          divFloor(this.serveTotalBytes - openMax, CATCHUP_SERVE_FLOOR_BYTES),
        );
        for (const [validator, atMs] of this.validatorsAskedMs) {
          // A key no longer of the sets would hold a share it cannot draw.
          if (
            nowMs - atMs >= 2 * CATCHUP_RETRY_MS ||
            !(
              this.chain.validators.hasKeyHex(validator) ||
              this.chain.nextValidators.hasKeyHex(validator)
            )
          ) {
            this.validatorsAskedMs.delete(validator);
          } else if (this.validatorShares.size < sharesMax) {
            this.validatorShares.set(validator, 0);
          }
        }
        for (const validator of this.validatorShares.keys()) {
          const atMs = this.validatorsAskedMs.get(validator)!;
          this.validatorsAskedMs.delete(validator);
          this.validatorsAskedMs.set(validator, atMs);
        }
      }
      // A peer counts as a validator when its name is one of the sets' keys
      // (docs/protocol.md): consensus liveness first.
      if (this.chain.validators.hasKeyHex(peer) || this.chain.nextValidators.hasKeyHex(peer)) {
        if (this.validatorsAskedMs.has(peer) || this.validatorsAskedMs.size < 4 * VALIDATORS_MAX) {
          this.validatorsAskedMs.set(peer, nowMs);
        }
        const validatorsPart = this.serveTotalBytes - openMax;
        const holders = this.validatorShares.size;
        const share = holders === 0 ? 0 : divFloor(validatorsPart, holders);
        const drawn = this.validatorShares.get(peer);
        const room =
          drawn !== undefined
            ? share - drawn
            : validatorsPart - holders * share - shared.newcomersBytes;
        // The answer is cut to the room left (serveBlocks), so a share is
        // never overdrawn; with no room for the first block, the open part.
        const first = this.ports.blocks.sizeOf?.(fromHeight) ?? 0;
        if (room >= 2 * CATCHUP_SERVE_LOOKUP_BYTES + first) {
          part = drawn !== undefined ? 'share' : 'newcomer';
          limitBytes = room;
        }
      }
      if (part === 'floor') {
        if (shared.openBytes >= openMax) {
          served.chargedBytes += CATCHUP_SERVE_LOOKUP_BYTES;
          return 'busy';
        }
        part = 'open';
      }
    }
    const charged = this.serveBlocks(peer, fromHeight, count, limitBytes);
    served.chargedBytes += charged;
    if (part === 'share') {
      this.validatorShares.set(peer, (this.validatorShares.get(peer) ?? 0) + charged);
    }
    if (part === 'newcomer') shared.newcomersBytes += charged;
    if (part === 'open') shared.openBytes += charged;
    return null;
  }

  /**
   * The peer our last request went to answered `blockBusy`: its serving
   * budget for all peers is spent. Another peer is asked at once, and the
   * busy one not for a retry period (it would answer busy again). With no
   * other, the request stays out as an unanswered one would (we are still
   * catching up), and the next message from a peer ahead once the busy
   * peer's period is over asks again. As with a `pruned` answer
   * (onPeerPruned), only the answer of the peer asked, to the request it
   * was sent, counts, and once: anyone may send one, and acting on each
   * would turn every one into a request. Once means once also when the
   * request stayed with that peer: a repeat within the retry period is
   * refused (we never ask a peer within its busy period, so an answer to a
   * later request comes after it).
   */
  private onBlockBusy(from: PeerId, fromHeight: number, nowMs: number): void {
    if (
      from !== this.requestedFrom ||
      fromHeight !== this.requestedHeight ||
      this.requestAnswered ||
      this.requestedUpTo < fromHeight ||
      this.answeredBusy(from, nowMs)
    ) {
      return this.drop('unexpected');
    }
    // Its keys are peers we asked, so among peerHeights' (bounded).
    this.busyPeers.set(from, nowMs);
    const upTo = this.requestedUpTo;
    // The request stays the busy peer's (requestedFrom), as an unanswered one
    // would: catchupPeer then asks the next peer in turn after it. Without
    // it, each busy answer went to the first peer heard that may serve, and
    // a silent one heard first cost a retry period after every busy answer.
    this.requestedUpTo = 0;
    this.requestBlocks(from, nowMs);
    if (this.requestedFrom === from) this.requestedUpTo = upTo;
  }

  /**
   * Answers a block request from the store, within one message's size.
   * Returns its cost: the bytes of the blocks loaded, and
   * CATCHUP_SERVE_LOOKUP_BYTES for the request and each block looked up. A
   * store that tells a block's size without loading it (sizeOf) spares the
   * load, and the charge, of the block that would not fit: with blocks over
   * half a message, each answer would otherwise be charged two blocks for the
   * one it carries, and a lagger would hit the budget at half the rate.
   * The charge stays within `limitBytes` (what is left of a validator's
   * share, with room for the first block): a block that would take it past
   * is neither loaded nor charged; a store that does not tell sizes stops
   * after the block that took it past.
   */
  private serveBlocks(to: PeerId, fromHeight: number, count: number, limitBytes: number): number {
    const blocks: CommittedBlock[] = [];
    let bytes = 16;
    let chargedBytes = CATCHUP_SERVE_LOOKUP_BYTES;
    for (let h = fromHeight; h < fromHeight + count && h <= this.chain.height; h++) {
      const size = this.ports.blocks.sizeOf?.(h) ?? null;
      if (size !== null && chargedBytes + CATCHUP_SERVE_LOOKUP_BYTES + size > limitBytes) break;
      chargedBytes += CATCHUP_SERVE_LOOKUP_BYTES;
      if (size !== null && bytes + size > MESSAGE_BYTES_MAX) break;
      const committed = this.ports.blocks.load(h);
      if (committed === null) break;
      const blockBytes = encode(committedBlockCodec, committed).length;
      chargedBytes += blockBytes;
      bytes += blockBytes;
      if (bytes > MESSAGE_BYTES_MAX) break;
      blocks.push(committed);
      if (chargedBytes >= limitBytes) break;
    }
    if (blocks.length > 0) {
      this.emit({
        kind: 'send',
        to,
        bytes: encode(messageCodec, { kind: 'blockResponse', blocks }),
      });
    }
    return chargedBytes;
  }

  private onBlockResponse(
    input: Input & { kind: 'message' },
    blocks: readonly CommittedBlock[],
  ): void {
    if (this.catchupDistrusted.has(input.from)) return this.drop('badCertificate');
    const kept: CommittedBlock[] = [];
    let held = this.catchupBytes.get(input.from) ?? 0;
    let evicted = this.catchupEvicted.get(input.from) ?? 0;
    // The heights this sender holds, lowest first, taken when its share first
    // fills in this response: only those may be pushed out for its blocks,
    // never another peer's (a peer sending forged blocks would otherwise push
    // out the real ones). Any of them kept from this response are lower than
    // the block that finds the share full, so never pushed out for it.
    let own: number[] | null = null;
    // Lowest heights first, as an honest server sends them: a block of this
    // response then never pushes out one it brought before it.
    const sorted = byHeight(blocks);
    // Taken before its blocks are: the block asked for may already be held
    // (another peer's, or this one's push, brought it first).
    const answer = input.from === this.requestedFrom && this.answersRequest(sorted);
    for (const b of sorted) {
      const h = b.block.header.height;
      if (
        h < this.heightValue ||
        this.catchupBuffer.has(h) ||
        (h === this.heightValue && this.decided !== null)
      ) {
        this.drop('oldHeight');
        continue;
      }
      const bytes = committedBytesOf(b);
      if (h >= this.heightValue + CATCHUP_BUFFER_BLOCKS_MAX) {
        this.drop('bufferFull');
        continue;
      }
      if (held + bytes > CATCHUP_BUFFER_BYTES_PER_PEER_MAX) {
        // Its share is full. When the sender's own blocks above this height
        // hold enough, they go, the highest first, and this one is kept: a
        // block nearer the next height to apply is worth more than a far one,
        // and blocks held past a missing height are never applied, so their
        // bytes never free. Dropping this one instead (the block a request
        // asked for, say) closed nothing: the request timed out and catch-up
        // lost a retry period, again at each answer when blocks are large.
        // Those pushed out are asked for again when their turn comes.
        // Only for a block the sender was asked for: unasked, a faulty peer
        // could have its large far blocks logged again at every height while
        // we are not even behind.
        const asked =
          input.from === this.requestedFrom &&
          h >= this.requestedHeight &&
          h < this.requestedHeight + this.requestedCount;
        if (h !== this.heightValue && !asked) {
          this.drop('bufferFull');
          continue;
        }
        if (!asked) {
          // Unasked, of our height: kept over the share without pushing out
          // anything. It is applied or refused (its sender distrusted) at the
          // end of this handler, so the share is over by one block for that
          // long; pushing out the sender's far blocks for it would let a
          // faulty peer have one of them logged again at every height while
          // we are behind.
          held += bytes;
          this.catchupBuffer.set(h, b);
          this.catchupSources.set(h, { from: input.from, bytes });
          kept.push(b);
          continue;
        }
        own ??= this.heightsHeldFrom(input.from);
        const need = held + bytes - CATCHUP_BUFFER_BYTES_PER_PEER_MAX;
        let freed = 0;
        let keep = own.length;
        while (freed < need && keep > 0 && own[keep - 1]! > h) {
          freed += this.catchupSources.get(own[--keep]!)!.bytes;
        }
        // Not a byte more than the share per height: a peer sending small
        // blocks low and large ones far ahead in turn would otherwise have
        // its large ones logged again and again. Except for the block of our
        // height: it is applied or refused (its sender then distrusted) at
        // once, so at most once a height, and nothing else can free its
        // sender's share while it is missing: refused here, catch-up from a
        // sole peer that spent its budget would stop for good.
        const budgeted = h !== this.heightValue;
        if (freed < need || (budgeted && evicted + freed > CATCHUP_BUFFER_BYTES_PER_PEER_MAX)) {
          this.drop('bufferFull');
          continue;
        }
        for (let i = own.length - 1; i >= keep; i--) {
          this.catchupBuffer.delete(own[i]!);
          this.catchupSources.delete(own[i]!);
          this.drop('bufferFull');
        }
        own.length = keep;
        held -= freed;
        evicted += freed;
      }
      held += bytes;
      this.catchupBuffer.set(h, b);
      this.catchupSources.set(h, { from: input.from, bytes });
      kept.push(b);
    }
    // Only the block asked for answers: blocks of later heights are kept
    // unchecked until their height comes, so a peer sending a forged one far
    // ahead at each request would otherwise keep the role and never be passed over.
    if (
      answer &&
      (kept.some((b) => b.block.header.height === this.requestedHeight) ||
        this.catchupBuffer.has(this.requestedHeight) ||
        this.applied(this.requestedHeight))
    ) {
      this.requestAnswered = this.coversFairShare();
      // The answer closes the request: what it did not bring is asked for at
      // once (of this peer if it answered fairly, else of the next in turn),
      // not a retry period later. An honest peer whose blocks are large
      // answers with a few per message, and a few blocks a period could fall
      // behind a chain that makes them faster.
      this.requestedUpTo = this.requestedHeight - 1;
      if (kept.length === 0) return this.applyCatchup(input.nowMs);
    }
    if (kept.length === 0) return;
    this.catchupBytes.set(input.from, held);
    if (evicted > 0) this.catchupEvicted.set(input.from, evicted);
    // The log needs what it kept (a restart before these are executed replays
    // them), and only that: a peer's refused blocks must not fill the disk.
    // Blocks pushed out above stay in the records that brought them. A replay
    // runs this handler over the same records and, from the same buffer,
    // pushes out the same blocks; but it starts at the last checkpoint without
    // the blocks held then (logged before it), so its buffer can differ, as
    // it already could: a block pushed out here may be kept again, or a later
    // one dropped. No decision changes: a buffered block is applied only at
    // its height, once its certificate verifies against our validator set and
    // it extends our chain, and a certified block is the one block the chain
    // committed there (two would need more than a third of the stake to sign
    // both). Which copy we hold, and from whom, changes only what is asked
    // for next and of whom, and a replay sends nothing.
    const bytes =
      kept.length === blocks.length
        ? input.bytes
        : encodeMessage({ kind: 'blockResponse', blocks: kept });
    this.logInput({ ...input, bytes });
    this.applyCatchup(input.nowMs);
  }

  /** The block of `height` is decided: below our height, or ours decided and executing. */
  private applied(height: number): boolean {
    return height < this.heightValue || (height === this.heightValue && this.decided !== null);
  }

  /**
   * Whether a response from the peer asked is its answer to our request: it
   * starts at the block asked for (its copy the one we hold, if we held it
   * already) and holds none past what was asked. A server pushes blocks to a
   * peer behind from the height it heard it at, below what we ask when we
   * hold blocks past it: taken as the answer, such a push closed the request,
   * the next one re-asked what the answer still on its way brought, and a
   * peer that pushes but never answers kept the role and cost a retry
   * period at each turn. O(1) (a block hash when the block was held).
   */
  private answersRequest(sorted: readonly CommittedBlock[]): boolean {
    const first = sorted[0];
    const last = sorted[sorted.length - 1];
    if (first === undefined || last === undefined) return false;
    if (first.block.header.height !== this.requestedHeight) return false;
    if (last.block.header.height >= this.requestedHeight + this.requestedCount) return false;
    const held = this.catchupBuffer.get(this.requestedHeight);
    return held === undefined || bytesEqual(blockHashOf(held.block), blockHashOf(first.block));
  }

  /**
   * Whether an answer to our request brings a fair share of it: the blocks
   * buffered from requestedHeight on without a gap, which it completed (what
   * it lets us apply now), are at least CATCHUP_ANSWER_BLOCKS_MIN (or every one
   * the peers we may ask claim to hold, or every one asked for, if fewer) or
   * CATCHUP_ANSWER_BYTES_MIN.
   * An honest server sends all it holds up to MESSAGE_BYTES_MAX; a peer that
   * sends one block per request would otherwise keep the role and hold us to
   * one block per retry period. Not the blocks the answer carries: copies of
   * blocks held far ahead (its own, sent earlier and unchecked until their
   * height) would count without moving us. O(peers heard + blocks counted),
   * once per request.
   */
  private coversFairShare(): boolean {
    // A peer heard at height H committed the blocks below H. What the peers
    // we may ask claim now, not what the asked one claimed: one claiming a
    // height or two past ours at each turn would otherwise keep the role with
    // a block or two per request while others hold far more.
    let claimed = 1;
    for (const [peer, height] of this.peerHeights) {
      if (height - this.requestedHeight > claimed && this.canServe(peer, this.requestedHeight)) {
        claimed = height - this.requestedHeight;
      }
    }
    // Nor more than we asked for: a request the buffer's room cut short is
    // answered in full by fewer blocks than the share.
    const wanted = Math.min(claimed, CATCHUP_ANSWER_BLOCKS_MIN, this.requestedCount);
    let bytes = 0;
    for (let h = this.requestedHeight; h - this.requestedHeight < wanted; h++) {
      // Decided already (a push brought it before the answer): held.
      if (this.applied(h)) continue;
      const source = this.catchupSources.get(h);
      if (source === undefined) return bytes >= CATCHUP_ANSWER_BYTES_MIN;
      bytes += source.bytes;
    }
    return true;
  }

  /** Decides the current height from a caught-up block once its certificate checks against our validator set. */
  private applyCatchup(nowMs: number): void {
    if (this.decided !== null) return;
    const next = this.catchupBuffer.get(this.heightValue);
    if (next === undefined) {
      for (const [peer, height] of this.peerHeights) {
        if (height >= this.heightValue + 2) return this.requestBlocks(peer, nowMs);
      }
      return;
    }
    const source = this.catchupSources.get(this.heightValue)?.from;
    this.unbuffer(this.heightValue);
    const hash = blockHashOf(next.block);
    const certified = this.verifyCommit(next.commit, this.chain.validators, this.heightValue, hash);
    // Refusing its sender (an honest peer) and waiting would stall us
    // silently, a full node behind one peer for good: the node halts instead.
    if (certified && this.showsDivergence(next)) return;
    const problem = !certified
      ? 'badCertificate'
      : this.checkCommittedBlock(next.block, next.commit);
    if (problem !== null) {
      this.drop(problem);
      if (source !== undefined) this.distrustCatchupPeer(source, nowMs);
      return;
    }
    this.decidedFromPeer = true;
    this.decide(next.block, hash, next.commit);
    // Prefetch: ask for the next batch before this one runs out.
    let ahead = this.heightValue + 1;
    while (this.catchupBuffer.has(ahead)) ahead++;
    if (2 * (ahead - this.heightValue) <= CATCHUP_BATCH_BLOCKS_MAX) {
      for (const [peer, height] of this.peerHeights) {
        if (height > ahead) return this.requestBlocks(peer, nowMs);
      }
    }
  }

  /**
   * For a block of our height whose certificate verified (a peer's catch-up
   * block, or a proposal with 2/3+ precommits, decidesCertified): if the
   * validators committed it after our last block on a state other than the
   * one we computed, our execution diverged, and this says so (`diverged`:
   * the node halts with AppHashMismatch, the same report whichever way the
   * block came) rather than refuse the block and wait. Only with the body
   * its header names: the node stores this block, and the certificate signs
   * the header alone (another body is refused with its sender).
   */
  private showsDivergence(next: CommittedBlock): boolean {
    const header = next.block.header;
    if (
      header.chainId !== this.chainId ||
      !bytesEqual(header.previousBlockHash, this.chain.lastBlockHash) ||
      bytesEqual(header.previousAppHash, this.chain.appHash) ||
      !bodyFactsOf(next.block).matchesHeader
    ) {
      return false;
    }
    this.emit({
      kind: 'diverged',
      height: this.heightValue - 1,
      ourAppHash: this.chain.appHash,
      chainAppHash: header.previousAppHash,
      block: next,
    });
    return true;
  }

  /** Forgets a buffered block, and gives its bytes back to its sender's bound. */
  private unbuffer(height: number): void {
    const source = this.catchupSources.get(height);
    this.catchupBuffer.delete(height);
    this.catchupSources.delete(height);
    if (source === undefined) return;
    const held = this.catchupBytes.get(source.from)! - source.bytes;
    if (held > 0) {
      this.catchupBytes.set(source.from, held);
    } else {
      this.catchupBytes.delete(source.from);
      this.catchupEvicted.delete(source.from);
    }
  }

  /** The heights of the blocks buffered from `peer`, lowest first. O(buffer), once per response that fills its share. */
  private heightsHeldFrom(peer: PeerId): number[] {
    const heights: number[] = [];
    for (const [h, source] of this.catchupSources) if (source.from === peer) heights.push(h);
    return heights.sort((a, b) => a - b);
  }

  /**
   * A peer sent a committed block that fails: drop every block it sent, refuse
   * its blocks from now on, and ask another peer at once for what it held.
   */
  private distrustCatchupPeer(peer: PeerId, nowMs: number): void {
    if (this.catchupDistrusted.size < 4 * VALIDATORS_MAX) this.catchupDistrusted.add(peer);
    for (const [h, source] of this.catchupSources) {
      if (source.from === peer) this.unbuffer(h);
    }
    this.requestedUpTo = 0;
    for (const [other, height] of this.peerHeights) {
      if (height > this.heightValue && this.canServe(other, this.heightValue)) {
        return this.requestBlocks(other, nowMs);
      }
    }
  }

  /**
   * A committed block skips valid() but must still extend our chain. Evidence
   * it repeats from an earlier block does not refuse it: whether evidence was
   * committed before is known only to replicas that saw that block, not to
   * those restored by state sync since, so with enough of the stake among
   * them (and a Byzantine proposer) such a block is committed, and a replica
   * that refused it could never follow the chain again.
   */
  private checkCommittedBlock(block: Block, commit: CommitCertificate): DropReason | null {
    const round = block.header.round;
    if (round > commit.round) return 'invalidBlock';
    // The proposer check bounds its own work by the round; a certified block's round is already bounded by its signers.
    const saved = this.roundValue;
    this.roundValue = commit.round;
    const problem = this.checkBlock(block, true);
    this.roundValue = saved;
    return problem;
  }
}
