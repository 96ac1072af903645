// The consensus core's data: validators, votes, proposals, blocks, commit
// certificates, evidence, the messages between replicas, the replica's inputs
// and effects, and its write-ahead-log records. Canonical encodings live in
// codec.ts; docs/protocol.md states the protocol these carry.

/** A peer as the shell names it (the transport's connection id). */
export type PeerId = string;

/** A vote's type. Numbered as the signing kinds are (crypto SIGN_KIND). */
export const VOTE_TYPE = { prevote: 3, precommit: 4 } as const;
export type VoteType = (typeof VOTE_TYPE)[keyof typeof VOTE_TYPE];

/** Steps of a round, ordered (CometBFT's RoundStep): the double-sign guard compares them. */
export const STEP = { propose: 0, prevote: 1, precommit: 2 } as const;
export type Step = (typeof STEP)[keyof typeof STEP];

export interface Validator {
  /** Ed25519 public key, 32 bytes. */
  readonly publicKey: Uint8Array;
  /** addressOf(publicKey); validator sets are ordered by it. */
  readonly address: Uint8Array;
  /** Voting power, a positive integer ≤ VALIDATOR_POWER_MAX. */
  readonly power: number;
}

/** A change the application asks for: power 0 removes the validator. */
export interface ValidatorUpdate {
  readonly publicKey: Uint8Array;
  readonly power: number;
}

/**
 * A vote. Precommits carry the signer's local time and the application's vote
 * extension (both signed); prevotes carry timestampMs 0 and an empty extension.
 * blockHash null is a vote for nil.
 */
export interface Vote {
  readonly type: VoteType;
  readonly height: number;
  readonly round: number;
  readonly blockHash: Uint8Array | null;
  /** Index into the validator set of `height`. */
  readonly validatorIndex: number;
  readonly timestampMs: number;
  readonly extension: Uint8Array;
  readonly signature: Uint8Array;
}

/** A precommit as it sits in a commit certificate: what the certificate does not already say. */
export interface CommitVote {
  readonly validatorIndex: number;
  readonly timestampMs: number;
  readonly extension: Uint8Array;
  readonly signature: Uint8Array;
}

/** 2/3+ of a height's voting power precommitting one block in one round. Votes sorted by validatorIndex. */
export interface CommitCertificate {
  readonly height: number;
  readonly round: number;
  readonly blockHash: Uint8Array;
  readonly votes: readonly CommitVote[];
}

/** Two conflicting votes by one validator for the same height, round and type (ordered by their bytes). */
export interface DuplicateVoteEvidence {
  readonly voteA: Vote;
  readonly voteB: Vote;
}

/**
 * Committed evidence as the application receives it (ABCI++ Misbehavior): the
 * offender named by key, resolved against the validator set of the height it
 * equivocated at, which may no longer be the current set.
 */
export interface Misbehavior {
  readonly publicKey: Uint8Array;
  /** Its voting power in the set of `height`. */
  readonly power: number;
  readonly height: number;
  readonly round: number;
  readonly type: VoteType;
}

export interface Header {
  readonly chainId: string;
  readonly height: number;
  /** The round the proposal was made in (the round it was first proposed if re-proposed). */
  readonly round: number;
  /** BFT time: the stake-weighted median of lastCommit's timestamps, ≥ previous time + 1. */
  readonly timeMs: number;
  readonly proposerAddress: Uint8Array;
  /** Zero bytes at the first height. */
  readonly previousBlockHash: Uint8Array;
  /** The application's hash after executing the previous height (genesis appHash at the first). */
  readonly previousAppHash: Uint8Array;
  /** merkleRoot of the transactions' bytes. */
  readonly txsRoot: Uint8Array;
  /** sha256 of the encoded lastCommit (zero bytes at the first height). */
  readonly lastCommitHash: Uint8Array;
  /** merkleRoot of the encoded evidence. */
  readonly evidenceHash: Uint8Array;
  /** Hash of the validator set that decides this height. */
  readonly validatorsHash: Uint8Array;
}

export interface Block {
  readonly header: Header;
  readonly txs: readonly Uint8Array[];
  readonly evidence: readonly DuplicateVoteEvidence[];
  /** The previous height's commit certificate; null at the first height. */
  readonly lastCommit: CommitCertificate | null;
}

/** The signed part of a proposal. polRound is -1 when there is no proof of lock. */
export interface Proposal {
  readonly height: number;
  readonly round: number;
  readonly polRound: number;
  readonly blockHash: Uint8Array;
  readonly signature: Uint8Array;
}

/** A block and the certificate that committed it, as catch-up moves them. */
export interface CommittedBlock {
  readonly block: Block;
  readonly commit: CommitCertificate;
}

// --- messages between replicas ------------------------------------------------

export type Message =
  | { readonly kind: 'proposal'; readonly proposal: Proposal; readonly block: Block }
  | { readonly kind: 'vote'; readonly vote: Vote }
  | { readonly kind: 'evidence'; readonly evidence: DuplicateVoteEvidence }
  | { readonly kind: 'blockRequest'; readonly fromHeight: number; readonly count: number }
  | { readonly kind: 'blockResponse'; readonly blocks: readonly CommittedBlock[] }
  /**
   * A block request from `fromHeight` refused because the serving budget all
   * peers share is spent: the asker turns to another peer at once.
   */
  | { readonly kind: 'blockBusy'; readonly fromHeight: number };

// --- genesis and the state carried from height to height ----------------------

export interface Genesis {
  readonly chainId: string;
  readonly genesisTimeMs: number;
  readonly validators: readonly ValidatorUpdate[];
  readonly appHash: Uint8Array;
}

/** What the application returns after executing a height. */
export interface BlockResult {
  readonly appHash: Uint8Array;
  /** Applied to the set deciding height H+2 (H the executed height). */
  readonly validatorUpdates: readonly ValidatorUpdate[];
}

// --- inputs -------------------------------------------------------------------

/**
 * The step of the gossip timer: not a step of Algorithm 1 but a periodic
 * re-send of what this replica signed at its height, because the algorithm
 * assumes every message is eventually delivered and the network may lose them.
 */
export const GOSSIP_STEP = 3 as const;

/** Identifies a scheduled timeout; a timeout for anything but the current (height, round, step) is ignored. */
export interface TimeoutKey {
  readonly height: number;
  readonly round: number;
  readonly step: Step | typeof GOSSIP_STEP;
}

/** Everything that reaches the replica. nowMs is the shell's clock when the input arrived. */
export type Input =
  | {
      readonly kind: 'message';
      readonly from: PeerId;
      readonly bytes: Uint8Array;
      readonly nowMs: number;
    }
  | { readonly kind: 'timeout'; readonly timeout: TimeoutKey; readonly nowMs: number }
  | {
      readonly kind: 'proposalBuilt';
      readonly height: number;
      readonly round: number;
      readonly txs: readonly Uint8Array[];
      readonly nowMs: number;
    }
  | {
      readonly kind: 'blockExecuted';
      readonly height: number;
      readonly result: BlockResult;
      readonly nowMs: number;
    };

// --- effects ------------------------------------------------------------------

/**
 * What the replica asks of its shell, in order. The shell performs them in
 * the order given; a `persist` with `sync: true` is a barrier: the shell makes
 * that record and every record before it durable (fsync) before it performs
 * any effect after it. Signed messages always follow the synced record of
 * their signing, so no signature leaves before it is durable. The bytes of an
 * effect are read-only: the core remembers what the bytes it encoded decode
 * to, and replicas of one process may be handed the same bytes.
 */
export type Effect =
  | { readonly kind: 'send'; readonly to: PeerId; readonly bytes: Uint8Array }
  | { readonly kind: 'broadcast'; readonly bytes: Uint8Array }
  | { readonly kind: 'persist'; readonly record: Uint8Array; readonly sync: boolean }
  | { readonly kind: 'scheduleTimeout'; readonly timeout: TimeoutKey; readonly delayMs: number }
  /** Ask the application for a block body (ABCI++ PrepareProposal); answer with a proposalBuilt input. */
  | { readonly kind: 'buildProposal'; readonly height: number; readonly round: number }
  /** Execute a committed block (ABCI++ FinalizeBlock then Commit); answer with a blockExecuted input. */
  | {
      readonly kind: 'finalizeBlock';
      readonly block: Block;
      readonly blockHash: Uint8Array;
      readonly commit: CommitCertificate;
      /** The block's evidence, one entry per item, in block order. */
      readonly misbehavior: readonly Misbehavior[];
    }
  /** Notification: a height was decided. */
  | {
      readonly kind: 'committed';
      readonly height: number;
      readonly round: number;
      readonly blockHash: Uint8Array;
    }
  /** Notification: a validator equivocated (verified evidence, now pending inclusion). */
  | { readonly kind: 'evidenceSeen'; readonly evidence: DuplicateVoteEvidence }
  /**
   * Notification: the certificate of `height` holds a precommit by this
   * replica's key that this replica never signed (another process signs with
   * the key, or this one lost its WAL); it signs nothing up to `untilHeight`.
   */
  | { readonly kind: 'signingPaused'; readonly height: number; readonly untilHeight: number }
  /**
   * Notification: a block of this replica's next height, certified by the
   * validators and following its last block, says the state after `height`
   * is `chainAppHash`, not the `ourAppHash` its application computed: its
   * execution diverged from the chain's. It decides nothing more (the node
   * halts: AppHashMismatch).
   */
  | {
      readonly kind: 'diverged';
      readonly height: number;
      readonly ourAppHash: Uint8Array;
      readonly chainAppHash: Uint8Array;
      /** The certified block of height + 1 that shows it (the node stores it: it is the chain's). */
      readonly block: CommittedBlock;
    };

// --- write-ahead log ------------------------------------------------------------

/** The state a height starts from, written to the WAL after each executed height. */
export interface ChainState {
  readonly chainId: string;
  /** The last committed and executed height (0 before the first). */
  readonly height: number;
  readonly lastBlockHash: Uint8Array;
  readonly lastBlockTimeMs: number;
  readonly lastCommit: CommitCertificate | null;
  /** The application's hash after executing `height`. */
  readonly appHash: Uint8Array;
  /** The sets deciding height+1 and height+2, with their proposer priorities. */
  readonly validators: ValidatorSetState;
  readonly nextValidators: ValidatorSetState;
  /** Sets of recent heights, for checking evidence (newest last, bounded by the evidence age). */
  readonly history: readonly { readonly height: number; readonly set: ValidatorSetState }[];
  /**
   * Hashes of evidence committed within the evidence age, with the height it
   * was committed at, and its offence: the offender's public key and the
   * height it double-signed at (absent in checkpoints of builds before the
   * rule that refuses a committed offence again: unknown, and not refused).
   */
  readonly committedEvidence: readonly {
    readonly height: number;
    readonly hash: Uint8Array;
    readonly offence?: CommittedOffence;
  }[];
  /**
   * The first height whose block's evidence `committedEvidence` holds; absent
   * when it holds every block's within the evidence age. State sync at h
   * starts it at h+1: the blocks before came as a snapshot, unseen, so
   * evidence old enough to be in one of them may be committed already, and
   * the replica neither pools nor proposes it (a block repeating committed
   * evidence is refused by every replica that saw it). Dropped once no
   * evidence still in its window can be that old.
   */
  readonly committedEvidenceFrom?: number;
}

/** What a piece of committed evidence punished: the offender (by key) and the height it double-signed at. */
export interface CommittedOffence {
  readonly publicKey: Uint8Array;
  readonly height: number;
}

/** A validator set as carried in state: members by address, and CometBFT proposer priorities. */
export interface ValidatorSetState {
  readonly validators: readonly Validator[];
  readonly priorities: readonly bigint[];
}

export type WalRecord =
  /** Where replay starts: the state after executing a height. */
  | {
      readonly kind: 'checkpoint';
      readonly state: ChainState;
      /**
       * Signing is paused up to this height (the double-sign watch); absent
       * when it is not. In the checkpoint itself: a log rotation drops every
       * record before the checkpoint, and one written after it could be lost.
       */
      readonly signingPausedUntil?: number;
      /**
       * Verified evidence not yet committed (absent when there is none),
       * pooled again by a restart. In the checkpoint for the same reason as
       * the pause: the inputs that brought it lie before the checkpoint, and
       * a rotation there drops them.
       */
      readonly evidence?: readonly DuplicateVoteEvidence[];
    }
  /** An input that changed the replica's state, written before its effects. */
  | { readonly kind: 'input'; readonly input: Input }
  /** A message this replica signed (encoded Message bytes), synced before it is sent. */
  | {
      readonly kind: 'signed';
      readonly height: number;
      readonly round: number;
      readonly step: Step;
      readonly bytes: Uint8Array;
    };

/** Counters of dropped input, keyed by reason. */
export type DropReason =
  | 'decode'
  | 'oversize'
  | 'wrongChain'
  | 'oldHeight'
  | 'futureHeight'
  | 'futureRound'
  | 'unknownValidator'
  | 'badSignature'
  | 'wrongProposer'
  | 'invalidBlock'
  | 'rejectedByApp'
  | 'badExtension'
  | 'duplicateVote'
  | 'duplicateProposal'
  | 'badEvidence'
  | 'badCertificate'
  | 'bufferFull'
  /** A peer past its budget of block requests answered per retry period. */
  | 'rateLimited'
  /**
   * A block request within its peer's budget, over its part of the one all
   * peers share (and past its peer's floor): answered `blockBusy`.
   */
  | 'busy'
  | 'unexpected'
  | 'staleTimeout'
  | 'doubleSignRefused'
  /** A signature not made while signing is paused: this key signed elsewhere (Replica, "signing pause"). */
  | 'signingPaused';

export type Metrics = Record<DropReason, number>;
