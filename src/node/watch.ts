// Detects that our state has diverged from the chain's. The next header carries
// the appHash after the previous height; if a block certified by 2/3+ of the
// validators says something other than what we computed, honest execution
// here disagrees with the chain and the only safe move is to halt loudly.
// (The replica would only drop such blocks as invalid and wait forever.)
// Only certified blocks count: a lone proposal may come from a faulty proposer.
// A block that agrees with us costs a comparison; one that disagrees costs up
// to a certificate's signature checks, so the check is bounded (DivergenceWatch):
// one block per message, one check per peer and height.

import { Writer, decode } from '../codec/wire.ts';
import type {
  Block,
  CommitCertificate,
  CommittedBlock,
  PeerId,
  Verifier,
} from '../consensus/index.ts';
import {
  SIGN_KIND_CONSENSUS,
  VOTE_TYPE,
  blockHashOf,
  bodyFactsOf,
  isQuorum,
  messageCodec,
  voteSignBytes,
} from '../consensus/index.ts';
import type { ValidatorSet } from '../consensus/index.ts';
import { bytesEqual } from '../lib/bytes.ts';
import { VALIDATORS_MAX } from '../lib/limits.ts';

/** The tag byte of a blockResponse message (consensus codec.ts, MESSAGE_TAG). */
const BLOCK_RESPONSE_TAG = 4;

export interface Divergence {
  /** The height after which the states differ. */
  readonly height: number;
  readonly ourAppHash: Uint8Array;
  readonly chainAppHash: Uint8Array;
  /** The certified block of height + 1 that shows it. */
  readonly block: CommittedBlock;
}

interface AppState {
  readonly height: number;
  readonly appHash: Uint8Array;
}

interface ReplicaView {
  readonly height: number;
  readonly validators: ValidatorSet;
}

/**
 * Looks at a consensus payload: if it carries the block of our next height,
 * certified, whose header disagrees with our appHash, returns the divergence.
 * Anything else (other messages, bad bytes, uncertified blocks) is null: the
 * replica validates and counts those. Only the first block of that height in
 * the payload is examined: an honest response holds one block per height, and
 * each further one would cost a certificate's signature checks.
 */
export function checkCertifiedBlock(
  payload: Uint8Array,
  app: AppState,
  replica: ReplicaView,
  verifier: Verifier,
): Divergence | null {
  const block = divergentBlockOf(payload, app, replica);
  if (block === null) return null;
  return divergenceOf(block, app, replica, verifier);
}

/** The first block of our next height in a block response, if its header disagrees with our appHash. */
function divergentBlockOf(
  payload: Uint8Array,
  app: AppState,
  replica: ReplicaView,
): CommittedBlock | null {
  if (payload[0] !== BLOCK_RESPONSE_TAG || replica.height !== app.height + 1) return null;
  let blocks;
  try {
    const message = decode(messageCodec, payload);
    if (message.kind !== 'blockResponse') return null;
    blocks = message.blocks;
  } catch {
    return null;
  }
  const at = blocks.find((b) => b.block.header.height === replica.height);
  if (at === undefined || bytesEqual(at.block.header.previousAppHash, app.appHash)) return null;
  // The certificate signs the header only, which names the body by its
  // roots: a copy with another body (a peer's forgery) is no block of the
  // chain, and the node stores the block that shows a divergence. Not noted
  // against its sender either: the real block may follow from the same peer.
  if (!bodyFactsOf(at.block).matchesHeader) return null;
  return at;
}

function divergenceOf(
  committed: CommittedBlock,
  app: AppState,
  replica: ReplicaView,
  verifier: Verifier,
): Divergence | null {
  const { block, commit } = committed;
  if (!certified(block, commit, replica.validators, verifier)) return null;
  return {
    height: app.height,
    ourAppHash: app.appHash,
    chainAppHash: block.header.previousAppHash,
    block: committed,
  };
}

/**
 * checkCertifiedBlock for the messages of every peer, bounded per peer: a
 * peer whose disagreeing block was not certified is not examined again at
 * that height. An honest peer serves only blocks it verified, so its first
 * disagreeing block at a height is certified and halts us; without the bound
 * a faulty one (or f Byzantine validators signing its forgeries) cost up to
 * f+1 signature checks per message, before the replica dropped it. A peer
 * whose blocks the replica refuses is examined all the same: the replica
 * refuses the sender of a buffered block that disagrees with our state, which
 * is how a real divergence is first met while catching up (the blocks
 * buffered past our next height are not examined here), and a lone peer (a
 * validator's sentry) is then the only one that can show it to us.
 */
export class DivergenceWatch {
  /** The height at which each peer's disagreeing block was last checked. */
  private readonly checkedAt = new Map<PeerId, number>();

  constructor(private readonly verifier: Verifier) {}

  check(from: PeerId, payload: Uint8Array, app: AppState, replica: ReplicaView): Divergence | null {
    if (payload[0] !== BLOCK_RESPONSE_TAG || replica.height !== app.height + 1) return null;
    if (this.checkedAt.get(from) === replica.height) return null;
    const block = divergentBlockOf(payload, app, replica);
    if (block === null) return null;
    this.note(from, replica.height);
    return divergenceOf(block, app, replica, this.verifier);
  }

  private note(peer: PeerId, height: number): void {
    if (!this.checkedAt.has(peer) && this.checkedAt.size >= 4 * VALIDATORS_MAX) {
      for (const [p, h] of this.checkedAt) if (h < height) this.checkedAt.delete(p);
      // Every peer known was checked at this height: start over rather than
      // stop checking (that could miss a real divergence, and no height
      // would pass to free the entries). Costs a check per peer again, at most.
      if (this.checkedAt.size >= 4 * VALIDATORS_MAX) this.checkedAt.clear();
    }
    this.checkedAt.set(peer, height);
  }
}

/** 2/3+ of `set`'s power precommitted `block` (each signature checked once, no index twice). */
export function certified(
  block: Block,
  commit: CommitCertificate,
  set: ValidatorSet,
  verifier: Verifier,
): boolean {
  const hash = blockHashOf(block);
  if (commit.height !== block.header.height || !bytesEqual(commit.blockHash, hash)) return false;
  const w = new Writer(256);
  let power = 0;
  const seen = new Set<number>();
  for (const v of commit.votes) {
    if (v.validatorIndex >= set.size || seen.has(v.validatorIndex)) return false;
    seen.add(v.validatorIndex);
    const bytes = voteSignBytes(
      w,
      VOTE_TYPE.precommit,
      commit.height,
      commit.round,
      hash,
      v.timestampMs,
      v.extension,
    );
    const key = set.validators[v.validatorIndex]!.publicKey;
    if (!verifier.verify(key, SIGN_KIND_CONSENSUS.precommit, bytes, v.signature)) return false;
    power += set.validators[v.validatorIndex]!.power;
  }
  return isQuorum(power, set.totalPower);
}
