// Byzantine validators, built from the honest replica: the simulator runs the
// same core and tampers with what it lets out. Twins (two honest copies of one
// key, each with its own state) need no tampering; the simulator only starts
// the second copy. The others rewrite a released message:
//   equivocate  — a proposer signs a second block for the same (height, round)
//                 and shows each half of its peers a different one;
//   double-vote — every vote is signed a second time for another value (nil
//                 for a block, a made-up block for nil), and every peer gets
//                 both, in opposite orders for the two halves;
//   silent      — withholds everything it signs (and answers nothing);
//   flood-ahead — with each vote it releases, sends signed votes of its type
//                 for the SIM_FLOOD_AHEAD_ROUNDS rounds past the next, nil and
//                 a made-up block each (docs/protocol.md, "Votes for rounds
//                 ahead": the replicas' per-validator bound refuses most of
//                 them before any signature check).

import { Writer, encode } from '../codec/wire.ts';
import {
  SIGN_KIND_CONSENSUS,
  VOTE_TYPE,
  headerCodec,
  messageCodec,
  proposalSignBytes,
  voteSignBytes,
} from '../consensus/index.ts';
import type { Block, Message, Proposal, Signer, Vote } from '../consensus/index.ts';
import { merkleRoot, sha256 } from '../crypto/index.ts';
import { utf8 } from '../lib/bytes.ts';
import { SIM_FLOOD_AHEAD_ROUNDS, SIM_FORGED_ENTRIES_MAX } from '../lib/limits.ts';

/** What `mixed` and the swarm draw from (unchanged, so a seed draws what it always drew). */
export const DRAWN_BEHAVIORS = ['twins', 'equivocate', 'double-vote', 'silent'] as const;
export const BYZANTINE_BEHAVIORS = [...DRAWN_BEHAVIORS, 'flood-ahead'] as const;
export type ByzantineBehavior = (typeof BYZANTINE_BEHAVIORS)[number];

/** What a Byzantine node sends instead of one released message: per peer group, messages in order. */
export interface Tampered {
  readonly groupA: readonly Uint8Array[];
  readonly groupB: readonly Uint8Array[];
}

export class Forger {
  private readonly writer = new Writer(256);
  /** One forgery per (height, round, kind): a Byzantine node is consistent in what it lies. */
  private readonly forged = new Map<string, Uint8Array>();
  /** The flood sent with each vote of a (height, round, type), signed once. */
  private readonly floods = new Map<string, readonly Uint8Array[]>();

  constructor(private readonly signer: Signer) {}

  /** The tampered form of a message, or null to send it unchanged. */
  tamper(behavior: ByzantineBehavior, message: Message, bytes: Uint8Array): Tampered | null {
    if (behavior === 'silent') return { groupA: [], groupB: [] };
    if (behavior === 'equivocate' && message.kind === 'proposal') {
      const other = this.forgeProposal(message.proposal, message.block);
      return { groupA: [bytes], groupB: [other] };
    }
    if (behavior === 'double-vote' && message.kind === 'vote') {
      const other = this.forgeVote(message.vote);
      return { groupA: [bytes, other], groupB: [other, bytes] };
    }
    if (behavior === 'flood-ahead' && message.kind === 'vote') {
      const all = [bytes, ...this.floodAhead(message.vote)];
      return { groupA: all, groupB: all };
    }
    return null;
  }

  private floodAhead(vote: Vote): readonly Uint8Array[] {
    const id = `f/${vote.height}/${vote.round}/${vote.type}`;
    const done = this.floods.get(id);
    if (done !== undefined) return done;
    const out: Uint8Array[] = [];
    const extension = new Uint8Array(0);
    // Votes of the released vote's own type, so its timestamp rule holds.
    const type = vote.type;
    for (let r = vote.round + 2; r < vote.round + 2 + SIM_FLOOD_AHEAD_ROUNDS; r++) {
      {
        for (const blockHash of [null, sha256(utf8(`flood ${vote.height}/${r}`))]) {
          const signBytes = voteSignBytes(
            this.writer,
            type,
            vote.height,
            r,
            blockHash,
            vote.timestampMs,
            extension,
          );
          const kind =
            type === VOTE_TYPE.prevote
              ? SIGN_KIND_CONSENSUS.prevote
              : SIGN_KIND_CONSENSUS.precommit;
          const forged: Vote = {
            ...vote,
            type,
            round: r,
            blockHash,
            extension,
            signature: this.signer.sign(kind, signBytes),
          };
          out.push(encode(messageCodec, { kind: 'vote', vote: forged }));
        }
      }
    }
    if (this.floods.size >= SIM_FORGED_ENTRIES_MAX) this.floods.clear();
    this.floods.set(id, out);
    return out;
  }

  private remember(id: string, bytes: Uint8Array): void {
    if (this.forged.size >= SIM_FORGED_ENTRIES_MAX) this.forged.clear();
    this.forged.set(id, bytes);
  }

  private forgeProposal(proposal: Proposal, block: Block): Uint8Array {
    const id = `p/${proposal.height}/${proposal.round}`;
    const done = this.forged.get(id);
    if (done !== undefined) return done;
    const txs = [...block.txs, utf8(`equivocation ${proposal.height}/${proposal.round}`)];
    const forgedBlock: Block = {
      ...block,
      txs,
      header: { ...block.header, txsRoot: merkleRoot(txs) },
    };
    const blockHash = sha256(encode(headerCodec, forgedBlock.header));
    const signBytes = proposalSignBytes(
      this.writer,
      proposal.height,
      proposal.round,
      proposal.polRound,
      blockHash,
    );
    const forged: Proposal = {
      ...proposal,
      blockHash,
      signature: this.signer.sign(SIGN_KIND_CONSENSUS.proposal, signBytes),
    };
    const bytes = encode(messageCodec, { kind: 'proposal', proposal: forged, block: forgedBlock });
    this.remember(id, bytes);
    return bytes;
  }

  private forgeVote(vote: Vote): Uint8Array {
    const id = `v/${vote.height}/${vote.round}/${vote.type}`;
    const done = this.forged.get(id);
    if (done !== undefined) return done;
    const blockHash =
      vote.blockHash === null ? sha256(utf8(`made-up block ${vote.height}/${vote.round}`)) : null;
    const extension = new Uint8Array(0);
    const signBytes = voteSignBytes(
      this.writer,
      vote.type,
      vote.height,
      vote.round,
      blockHash,
      vote.timestampMs,
      extension,
    );
    const kind =
      vote.type === VOTE_TYPE.prevote ? SIGN_KIND_CONSENSUS.prevote : SIGN_KIND_CONSENSUS.precommit;
    const forged: Vote = {
      ...vote,
      blockHash,
      extension,
      signature: this.signer.sign(kind, signBytes),
    };
    const bytes = encode(messageCodec, { kind: 'vote', vote: forged });
    this.remember(id, bytes);
    return bytes;
  }
}
