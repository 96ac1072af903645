// Detects that our state has diverged from the chain's. The next header carries
// the appHash after the previous height; if a block certified by 2/3+ of the
// validators says something other than what we computed, honest execution
// here disagrees with the chain and the only safe move is to halt loudly.
// (The replica would only drop such blocks as invalid and wait forever.)
// Only certified blocks count: a lone proposal may come from a faulty proposer.

import { Writer, decode } from '../codec/wire.ts';
import type { Block, CommitCertificate, Verifier } from '../consensus/index.ts';
import {
  SIGN_KIND_CONSENSUS,
  VOTE_TYPE,
  blockHashOf,
  isQuorum,
  messageCodec,
  voteSignBytes,
} from '../consensus/index.ts';
import type { ValidatorSet } from '../consensus/index.ts';
import { bytesEqual } from '../lib/bytes.ts';

/** The tag byte of a blockResponse message (consensus codec.ts, MESSAGE_TAG). */
const BLOCK_RESPONSE_TAG = 4;

export interface Divergence {
  /** The height after which the states differ. */
  readonly height: number;
  readonly ourAppHash: Uint8Array;
  readonly chainAppHash: Uint8Array;
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
 * replica validates and counts those.
 */
export function checkCertifiedBlock(
  payload: Uint8Array,
  app: AppState,
  replica: ReplicaView,
  verifier: Verifier,
): Divergence | null {
  if (payload[0] !== BLOCK_RESPONSE_TAG || replica.height !== app.height + 1) return null;
  let blocks;
  try {
    const message = decode(messageCodec, payload);
    if (message.kind !== 'blockResponse') return null;
    blocks = message.blocks;
  } catch {
    return null;
  }
  for (const { block, commit } of blocks) {
    if (block.header.height !== replica.height) continue;
    if (bytesEqual(block.header.previousAppHash, app.appHash)) return null;
    if (!certified(block, commit, replica.validators, verifier)) continue;
    return {
      height: app.height,
      ourAppHash: app.appHash,
      chainAppHash: block.header.previousAppHash,
    };
  }
  return null;
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
