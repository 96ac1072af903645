// The narrow ports the consensus core talks through. Every method is
// synchronous and, for the application, a pure function of its committed
// state: the core stays a deterministic event handler (inputs in, effects out).

import type {
  Block,
  BlockResult,
  CommitCertificate,
  CommittedBlock,
  Effect,
  Misbehavior,
  Genesis,
  Input,
  Metrics,
  PeerId,
  TimeoutKey,
  Vote,
} from './types.ts';

/**
 * Signing kinds, numbered as crypto's SIGN_KIND: the kind (and the chain id,
 * which the signer and verifier bind) is part of every signed message.
 */
export const SIGN_KIND_CONSENSUS = { proposal: 2, prevote: 3, precommit: 4 } as const;
export type ConsensusSignKind = (typeof SIGN_KIND_CONSENSUS)[keyof typeof SIGN_KIND_CONSENSUS];

/** This replica's key. The shell wraps crypto.sign(key, chainId, kind, message). */
export interface Signer {
  readonly publicKey: Uint8Array;
  sign(kind: ConsensusSignKind, message: Uint8Array): Uint8Array;
}

/**
 * Signature checks, bound to the chain id. The simulator may memoize it
 * (every replica checks the same signatures); the node may batch it.
 */
export interface Verifier {
  verify(
    publicKey: Uint8Array,
    kind: ConsensusSignKind,
    message: Uint8Array,
    signature: Uint8Array,
  ): boolean;
}

/**
 * The application's synchronous side, called by the core (ABCI++
 * ProcessProposal, ExtendVote, VerifyVoteExtension). Each must be a pure
 * function of the application's committed state and its arguments.
 */
export interface ConsensusApp {
  /** Accept or reject a proposed block (its header, transactions, evidence and lastCommit are already checked). */
  processProposal(block: Block): boolean;
  /** Opaque bytes to sign with this replica's precommit for `blockHash` (≤ VOTE_EXTENSION_BYTES_MAX). */
  extendVote(height: number, round: number, blockHash: Uint8Array): Uint8Array;
  /** Check another validator's extension before its precommit counts. */
  verifyVoteExtension(vote: Vote): boolean;
}

/**
 * The whole application as the shell drives it: the core calls the
 * ConsensusApp part; the shell answers the buildProposal effect with
 * prepareProposal and the finalizeBlock effect with finalizeBlock then commit.
 */
export interface Application extends ConsensusApp {
  /** Choose a block body for (height, round) from candidate transactions (ABCI++ PrepareProposal). */
  prepareProposal(height: number, round: number, txs: readonly Uint8Array[]): Uint8Array[];
  /**
   * Execute a committed block. Its evidence reaches the application here, as
   * `misbehavior` (the offenders by key); the application may answer with
   * validator updates (power 0 removes), which decide height H+2. A removed
   * validator is taken as punished for good: evidence against it is no
   * longer pooled, proposed or accepted (docs/protocol.md, "Evidence").
   */
  finalizeBlock(
    block: Block,
    commit: CommitCertificate,
    misbehavior: readonly Misbehavior[],
  ): BlockResult;
  /** Make the state after finalizeBlock durable. */
  commit(): void;
}

/**
 * Committed blocks with their certificates, kept by the shell (it saves each
 * finalizeBlock effect's block before executing it). The core reads it only
 * to serve catch-up.
 */
export interface BlockStore {
  load(height: number): CommittedBlock | null;
  /**
   * The bytes of the stored block's encoding (committedBlockCodec), without
   * loading it; null if not held. Optional: serving then loads a block to
   * learn whether it fits the answer.
   */
  sizeOf?(height: number): number | null;
}

/** Timeouts of a step grow linearly with the round, up to a cap (Tendermint's timeoutX(r) = base + r·delta). */
export interface TimeoutConfig {
  readonly proposeMs: number;
  readonly prevoteMs: number;
  readonly precommitMs: number;
  readonly deltaMs: number;
  readonly maxMs: number;
  /** Period of the gossip timer (re-sending what was signed at the current height); defaults to GOSSIP_INTERVAL_MS. */
  readonly gossipMs?: number;
}

export interface ReplicaPorts {
  /** Null for a replica that follows the chain without voting. */
  readonly signer: Signer | null;
  readonly verifier: Verifier;
  readonly app: ConsensusApp;
  readonly blocks: BlockStore;
}

export interface ReplicaConfig {
  readonly genesis: Genesis;
  /** Defaults to the TIMEOUT_* constants of src/lib/limits.ts. */
  readonly timeouts?: TimeoutConfig;
  /**
   * Heights to sign nothing after a certificate shows a precommit by this
   * replica's key that it never signed (default DOUBLE_SIGN_WATCH_HEIGHTS;
   * 0 turns the watch off).
   */
  readonly doubleSignWatchHeights?: number;
  /**
   * Bytes of catch-up serving all peers share per CATCHUP_RETRY_MS beyond
   * each one's floor (default CATCHUP_SERVE_TOTAL_BYTES_PER_S).
   */
  readonly catchupServeTotalBytesPerS?: number;
}

/**
 * The replica's entry points (implemented by `Replica` in replica.ts:
 * `new Replica(config: ReplicaConfig, ports: ReplicaPorts)`). Every call
 * returns the effects to perform, in order; none throws on peer input.
 * Broadcast means every peer but this replica: the replica counts its own
 * proposals and votes itself.
 */
export interface ConsensusReplica {
  /** Dropped input, by reason. */
  readonly metrics: Metrics;
  /**
   * Starts or restarts: replays the encoded WAL records the shell loaded
   * (none on a first start) through the same handlers, from the last
   * checkpoint, re-sending what it had already signed, then joins the height.
   */
  start(walRecords: readonly Uint8Array[], nowMs: number): Effect[];
  /** The one entry point for every input; the methods below are shorthands for it. */
  handle(input: Input): Effect[];
  onMessage(from: PeerId, bytes: Uint8Array, nowMs: number): Effect[];
  onTimeout(timeout: TimeoutKey, nowMs: number): Effect[];
  onProposalBuilt(
    height: number,
    round: number,
    txs: readonly Uint8Array[],
    nowMs: number,
  ): Effect[];
  onBlockExecuted(height: number, result: BlockResult, nowMs: number): Effect[];
}
