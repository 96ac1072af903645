// Memos of pure functions of consensus values. A broadcast hands the very same
// bytes to every replica of one process (the simulator, the test harness), and
// the same block, vote and certificate objects reach every replica after
// that: decoding, hashing and the sign bytes are computed once per value, not
// once per replica. Each memo is keyed by object identity (WeakMap: it dies
// with the value) and returns exactly what the uncached function would.
//
// Values reached through the core's types are readonly and never mutated after
// they are built, and so are the bytes of the effects the core returns (the
// shell sends them, it does not edit them). Bytes from outside are not trusted
// to stay put (a shell may reuse a receive buffer), so a message decoded from
// them is returned only while the bytes still equal the copy it was decoded from.

import { decode, encode } from '../codec/wire.ts';
import { merkleRoot, sha256 } from '../crypto/index.ts';
import { bytesEqual } from '../lib/bytes.ts';
import {
  ZERO_HASH,
  commitCodec,
  evidenceCodec,
  headerCodec,
  messageCodec,
  proposalSignBytes,
  voteSignBytes,
} from './codec.ts';
import type {
  Block,
  CommitCertificate,
  DuplicateVoteEvidence,
  Header,
  Message,
  Proposal,
  Vote,
} from './types.ts';
import { Writer } from '../codec/wire.ts';
import { VOTE_TYPE } from './types.ts';

const writer = new Writer(1024);

const decoded = new WeakMap<Uint8Array, { readonly copy: Uint8Array; readonly message: Message }>();

/** decode(messageCodec, bytes), once per bytes object while its contents stay the same. Throws DecodeError. */
export function decodeMessage(bytes: Uint8Array): Message {
  const hit = decoded.get(bytes);
  if (hit !== undefined && (hit.copy === bytes || bytesEqual(hit.copy, bytes))) return hit.message;
  const message = decode(messageCodec, bytes);
  decoded.set(bytes, { copy: bytes.slice(), message });
  return message;
}

/**
 * encode(messageCodec, message), remembering that the bytes decode to
 * `message` (canonical encoding: one value, one encoding), so the replicas
 * that receive them skip the decode.
 */
export function encodeMessage(message: Message): Uint8Array {
  const bytes = encode(messageCodec, message);
  decoded.set(bytes, { copy: bytes, message });
  return bytes;
}

const voteMessages = new WeakMap<Vote, Uint8Array>();

/** The message that carries a vote, as its signer sent it (one encoding per value), once per vote. */
export function voteBytesOf(vote: Vote): Uint8Array {
  let bytes = voteMessages.get(vote);
  if (bytes === undefined) {
    bytes = encodeMessage({ kind: 'vote', vote });
    voteMessages.set(vote, bytes);
  }
  return bytes;
}

const headerHashes = new WeakMap<Header, Uint8Array>();

/** sha256 of the encoded header: the block hash. */
export function headerHashOf(header: Header): Uint8Array {
  let hash = headerHashes.get(header);
  if (hash === undefined) {
    hash = sha256(encode(headerCodec, header));
    headerHashes.set(header, hash);
  }
  return hash;
}

const commitHashes = new WeakMap<CommitCertificate, Uint8Array>();

/** sha256 of the encoded certificate (zero bytes for none). */
export function commitHashOf(commit: CommitCertificate | null): Uint8Array {
  if (commit === null) return ZERO_HASH;
  let hash = commitHashes.get(commit);
  if (hash === undefined) {
    hash = sha256(encode(commitCodec, commit));
    commitHashes.set(commit, hash);
  }
  return hash;
}

const evidenceHashes = new WeakMap<DuplicateVoteEvidence, Uint8Array>();

export function evidenceHashOf(evidence: DuplicateVoteEvidence): Uint8Array {
  let hash = evidenceHashes.get(evidence);
  if (hash === undefined) {
    hash = sha256(encode(evidenceCodec, evidence));
    evidenceHashes.set(evidence, hash);
  }
  return hash;
}

/** The root of no leaves: most blocks carry no evidence, and an idle chain no transactions. */
const EMPTY_ROOT = merkleRoot([]);

export function evidenceRoot(evidence: readonly DuplicateVoteEvidence[]): Uint8Array {
  if (evidence.length === 0) return EMPTY_ROOT;
  return merkleRoot(evidence.map((e) => encode(evidenceCodec, e)));
}

export function txsRoot(txs: readonly Uint8Array[]): Uint8Array {
  return txs.length === 0 ? EMPTY_ROOT : merkleRoot(txs as Uint8Array[]);
}

export interface BodyFacts {
  /** Total bytes of the transactions. */
  readonly txBytes: number;
  /** The header's txsRoot, lastCommitHash and evidenceHash match the body. */
  readonly matchesHeader: boolean;
}

const bodies = new WeakMap<Block, BodyFacts>();

/** What a block's body says of itself, whatever chain it is checked against. */
export function bodyFactsOf(block: Block): BodyFacts {
  let facts = bodies.get(block);
  if (facts === undefined) {
    let txBytes = 0;
    for (const tx of block.txs) txBytes += tx.length;
    const h = block.header;
    const matchesHeader =
      bytesEqual(h.txsRoot, txsRoot(block.txs)) &&
      bytesEqual(h.lastCommitHash, commitHashOf(block.lastCommit)) &&
      bytesEqual(h.evidenceHash, evidenceRoot(block.evidence));
    facts = { txBytes, matchesHeader };
    bodies.set(block, facts);
  }
  return facts;
}

const voteBytes = new WeakMap<Vote, Uint8Array>();

/** The bytes a vote's signature covers. */
export function voteSignBytesOf(vote: Vote): Uint8Array {
  let bytes = voteBytes.get(vote);
  if (bytes === undefined) {
    bytes = voteSignBytes(
      writer,
      vote.type,
      vote.height,
      vote.round,
      vote.blockHash,
      vote.timestampMs,
      vote.extension,
    );
    voteBytes.set(vote, bytes);
  }
  return bytes;
}

/** The sign bytes a vote was built from (its signer's), so that voteSignBytesOf returns that very object. */
export function rememberVoteSignBytes(vote: Vote, bytes: Uint8Array): void {
  voteBytes.set(vote, bytes);
}

const proposalBytes = new WeakMap<Proposal, Uint8Array>();

/** The sign bytes a proposal was built from, as for votes. */
export function rememberProposalSignBytes(proposal: Proposal, bytes: Uint8Array): void {
  proposalBytes.set(proposal, bytes);
}

/** The bytes a proposal's signature covers. */
export function proposalSignBytesOf(proposal: Proposal): Uint8Array {
  let bytes = proposalBytes.get(proposal);
  if (bytes === undefined) {
    bytes = proposalSignBytes(
      writer,
      proposal.height,
      proposal.round,
      proposal.polRound,
      proposal.blockHash,
    );
    proposalBytes.set(proposal, bytes);
  }
  return bytes;
}

const commitBytes = new WeakMap<CommitCertificate, readonly Uint8Array[]>();

/** The bytes each precommit of a certificate signed, in the certificate's order. */
export function commitSignBytesOf(commit: CommitCertificate): readonly Uint8Array[] {
  let list = commitBytes.get(commit);
  if (list === undefined) {
    list = commit.votes.map((v) =>
      voteSignBytes(
        writer,
        VOTE_TYPE.precommit,
        commit.height,
        commit.round,
        commit.blockHash,
        v.timestampMs,
        v.extension,
      ),
    );
    commitBytes.set(commit, list);
  }
  return list;
}
