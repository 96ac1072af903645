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
//                 them before any signature check);
//   time-skew   — re-signs its precommits for a block with a time far in the
//                 future (odd heights) or at the epoch (even heights): BFT
//                 time must stay within the honest validators' times;
//   bad-extension — re-signs its precommits for a block with an extension the
//                 application refuses (a largest one at odd heights, a short
//                 one at even heights);
//   lying-pol   — re-signs its proposals with another POL round: a fresh
//                 proposal claims the round before it, a re-proposal claims
//                 none;
//   amnesia     — ignores its lock: each nil vote it signs is re-signed for
//                 the block proposed in that round, when it has seen one;
//   commit-trim — dates its precommits far in the future, and proposes its
//                 blocks with the previous height's certificate cut to the
//                 fewest precommits that still pass 2/3 (its own, re-signed
//                 far in the future, then the latest, so the other
//                 commit-trim nodes' first),
//                 the block time recomputed: the most a proposer can pull BFT
//                 time, which must still stay within the honest times;
//   withhold    — double-votes as double-vote does, leaves all evidence out of
//                 the blocks it proposes, and sends each evidence message it
//                 relays twice: honest proposers must still commit it;
//   catchup-forge — answers block requests with each block altered (one more
//                 transaction, its root fixed) under the real certificate,
//                 and sends, with each vote, evidence of no offence (a
//                 precommit paired with itself re-dated, a prevote or nil
//                 precommit with its own vote for another value in the next
//                 round).

import { Writer, decode, encode } from '../codec/wire.ts';
import {
  SIGN_KIND_CONSENSUS,
  VOTE_TYPE,
  commitHashOf,
  evidenceRoot,
  headerCodec,
  isQuorum,
  makeEvidence,
  messageCodec,
  proposalSignBytes,
  voteSignBytes,
  weightedMedianMs,
} from '../consensus/index.ts';
import type {
  Block,
  CommitCertificate,
  CommitVote,
  CommittedBlock,
  ConsensusSignKind,
  Message,
  Proposal,
  Signer,
  ValidatorSet,
  Vote,
  VoteType,
} from '../consensus/index.ts';
import { merkleRoot, sha256 } from '../crypto/index.ts';
import { utf8 } from '../lib/bytes.ts';
import {
  SIM_FLOOD_AHEAD_ROUNDS,
  SIM_FORGED_ENTRIES_MAX,
  SIM_SKEWED_TIME_MS,
  VOTE_EXTENSION_BYTES_MAX,
} from '../lib/limits.ts';

/** What `mixed` and the swarm draw from (unchanged, so a seed draws what it always drew). */
export const DRAWN_BEHAVIORS = ['twins', 'equivocate', 'double-vote', 'silent'] as const;
/** Drawn by the swarm, in a draw of their own (so the seeds that draw the behaviours above keep them). */
export const LATER_DRAWN_BEHAVIORS = [
  'time-skew',
  'bad-extension',
  'lying-pol',
  'amnesia',
  'commit-trim',
  'withhold',
  'catchup-forge',
] as const;
export const BYZANTINE_BEHAVIORS = [
  ...DRAWN_BEHAVIORS,
  'flood-ahead',
  ...LATER_DRAWN_BEHAVIORS,
] as const;
/** The behaviours that rewrite what they send (the others need no Forger). */
export const FORGING_BEHAVIORS: readonly ByzantineBehavior[] = [
  'equivocate',
  'double-vote',
  'flood-ahead',
  ...LATER_DRAWN_BEHAVIORS,
];
export type ByzantineBehavior = (typeof BYZANTINE_BEHAVIORS)[number];

/** What a Byzantine node sends instead of one released message: per peer group, messages in order. */
/** What a commit-trim node reads of its chain: the set deciding a height, and a committed block's time. */
export interface ChainView {
  setAt(height: number): ValidatorSet;
  blockTimeMs(height: number): number | undefined;
}

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

  /** Messages the later behaviours rewrote (a test's proof that the lie was told). */
  liesTold = 0;
  /**
   * Votes signed a second time for another value (double-vote, withhold): one
   * per (height, round, type), however often the replica sends the vote again.
   */
  doubleVotes = 0;
  /** The block proposed in each (height, round) this node has seen, for `amnesia`. */
  private readonly proposed = new Map<string, Uint8Array>();

  constructor(
    private readonly signer: Signer,
    private readonly chain: ChainView | null = null,
  ) {}

  /** A message delivered to this node: `amnesia` remembers the proposals. */
  observe(message: Message): void {
    if (message.kind !== 'proposal') return;
    const p = message.proposal;
    if (this.proposed.size >= SIM_FORGED_ENTRIES_MAX) this.proposed.clear();
    this.proposed.set(`${p.height}/${p.round}`, p.blockHash);
  }

  /** The tampered form of a message, or null to send it unchanged. */
  tamper(behavior: ByzantineBehavior, message: Message, bytes: Uint8Array): Tampered | null {
    if (behavior === 'silent') return { groupA: [], groupB: [] };
    if (behavior === 'equivocate' && message.kind === 'proposal') {
      const other = this.forgeProposal(message.proposal, message.block);
      return { groupA: [bytes], groupB: [other] };
    }
    if ((behavior === 'double-vote' || behavior === 'withhold') && message.kind === 'vote') {
      const other = this.forgeVote(message.vote);
      return { groupA: [bytes, other], groupB: [other, bytes] };
    }
    if (behavior === 'flood-ahead' && message.kind === 'vote') {
      const all = [bytes, ...this.floodAhead(message.vote)];
      return { groupA: all, groupB: all };
    }
    const other = this.lie(behavior, message, bytes);
    if (other === null) return null;
    this.liesTold++;
    return { groupA: other, groupB: other };
  }

  /** The later behaviours: what replaces a message for every peer alike, or null. */
  private lie(
    behavior: ByzantineBehavior,
    message: Message,
    bytes: Uint8Array,
  ): Uint8Array[] | null {
    if (message.kind === 'proposal') {
      this.observe(message);
      const p = message.proposal;
      if (behavior === 'withhold') {
        const stripped = this.withoutEvidence(p, message.block);
        return stripped === null ? null : [stripped];
      }
      if (behavior === 'commit-trim') {
        const trimmed = this.trimmedProposal(p, message.block);
        return trimmed === null ? null : [trimmed];
      }
      if (behavior !== 'lying-pol') return null;
      const polRound = p.polRound === -1 ? p.round - 1 : -1;
      if (polRound === p.polRound) return null;
      return [this.reproposal(p, message.block, polRound)];
    }
    if (message.kind === 'blockResponse') {
      if (behavior !== 'catchup-forge') return null;
      const blocks = message.blocks.map((c): CommittedBlock => {
        const txs = [...c.block.txs, utf8(`forged ${c.block.header.height}`)];
        const block = { ...c.block, txs, header: { ...c.block.header, txsRoot: merkleRoot(txs) } };
        return { block, commit: c.commit };
      });
      return [encode(messageCodec, { kind: 'blockResponse', blocks })];
    }
    if (message.kind === 'evidence') return behavior === 'withhold' ? [bytes, bytes] : null;
    if (message.kind !== 'vote') return null;
    const v = message.vote;
    const precommitFor = v.type === VOTE_TYPE.precommit && v.blockHash !== null;
    if (behavior === 'commit-trim' && precommitFor) {
      // Dated far ahead like the one in its own certificates, so that another
      // commit-trim proposer, keeping the latest precommits, keeps this one.
      const timestampMs = v.timestampMs + SIM_SKEWED_TIME_MS;
      return [this.revote('t', v, v.round, v.blockHash, timestampMs, v.extension)];
    }
    if (behavior === 'time-skew' && precommitFor) {
      const timestampMs = v.height % 2 === 1 ? v.timestampMs + SIM_SKEWED_TIME_MS : 0;
      return [this.revote('t', v, v.round, v.blockHash, timestampMs, v.extension)];
    }
    if (behavior === 'bad-extension' && precommitFor) {
      const extension =
        v.height % 2 === 1
          ? new Uint8Array(VOTE_EXTENSION_BYTES_MAX).fill(0xee)
          : utf8(`extension of height ${v.height + 1}`);
      return [this.revote('x', v, v.round, v.blockHash, v.timestampMs, extension)];
    }
    if (behavior === 'amnesia' && v.blockHash === null) {
      const blockHash = this.proposed.get(`${v.height}/${v.round}`);
      if (blockHash === undefined) return null;
      return [this.revote('a', v, v.round, blockHash, v.timestampMs, EMPTY)];
    }
    if (behavior === 'catchup-forge') {
      // No offence: one block at two times, or two values in two rounds.
      const otherValue = v.blockHash === null ? sha256(utf8(`no offence ${v.height}`)) : null;
      const other = precommitFor
        ? this.revote('e', v, v.round, v.blockHash, v.timestampMs + 1, v.extension)
        : this.revote('e', v, v.round + 1, otherValue, v.timestampMs, EMPTY);
      const forged = decode(messageCodec, other);
      if (forged.kind !== 'vote') return null;
      const evidence = makeEvidence(v, forged.vote);
      return [bytes, encode(messageCodec, { kind: 'evidence', evidence })];
    }
    return null;
  }

  /** A vote of this node signed again with other contents (once per tag and vote). */
  private revote(
    tag: string,
    vote: Vote,
    round: number,
    blockHash: Uint8Array | null,
    timestampMs: number,
    extension: Uint8Array,
  ): Uint8Array {
    const id = `${tag}/${vote.height}/${vote.round}/${vote.type}`;
    const done = this.forged.get(id);
    if (done !== undefined) return done;
    const signBytes = voteSignBytes(
      this.writer,
      vote.type,
      vote.height,
      round,
      blockHash,
      timestampMs,
      extension,
    );
    const forged: Vote = {
      ...vote,
      round,
      blockHash,
      timestampMs,
      extension,
      signature: this.signer.sign(signKindOf(vote.type), signBytes),
    };
    const bytes = encode(messageCodec, { kind: 'vote', vote: forged });
    this.remember(id, bytes);
    return bytes;
  }

  /**
   * Its fresh proposal again, the block's lastCommit cut to the fewest
   * precommits past 2/3: its own (re-signed far in the future) first, then the
   * latest. Header time and hashes recomputed as the replicas will check them.
   */
  private trimmedProposal(proposal: Proposal, block: Block): Uint8Array | null {
    const commit = block.lastCommit;
    const chain = this.chain;
    if (proposal.polRound !== -1 || commit === null || chain === null) return null;
    const id = `c/${proposal.height}/${proposal.round}`;
    const done = this.forged.get(id);
    if (done !== undefined) return done;
    const set = chain.setAt(commit.height);
    const lastTimeMs = chain.blockTimeMs(commit.height);
    if (lastTimeMs === undefined) return null;
    const me = set.indexOf(this.signer.publicKey);
    const order = [...commit.votes].sort(
      (a, b) =>
        Number(b.validatorIndex === me) - Number(a.validatorIndex === me) ||
        b.timestampMs - a.timestampMs,
    );
    const kept: CommitVote[] = [];
    let power = 0;
    for (const v of order) {
      if (isQuorum(power, set.totalPower)) break;
      power += set.validators[v.validatorIndex]!.power;
      if (v.validatorIndex !== me) {
        kept.push(v);
        continue;
      }
      const timestampMs = v.timestampMs + SIM_SKEWED_TIME_MS;
      const signBytes = voteSignBytes(
        this.writer,
        VOTE_TYPE.precommit,
        commit.height,
        commit.round,
        commit.blockHash,
        timestampMs,
        v.extension,
      );
      const signature = this.signer.sign(SIGN_KIND_CONSENSUS.precommit, signBytes);
      kept.push({ ...v, timestampMs, signature });
    }
    kept.sort((a, b) => a.validatorIndex - b.validatorIndex);
    const lastCommit: CommitCertificate = { ...commit, votes: kept };
    const median = weightedMedianMs(lastCommit, set);
    const header = {
      ...block.header,
      timeMs: median > lastTimeMs ? median : lastTimeMs + 1,
      lastCommitHash: commitHashOf(lastCommit),
    };
    return this.resigned(id, proposal, { ...block, header, lastCommit }, proposal.polRound);
  }

  /** Its fresh proposal again, its block without the evidence it carried. */
  private withoutEvidence(proposal: Proposal, block: Block): Uint8Array | null {
    if (proposal.polRound !== -1 || block.evidence.length === 0) return null;
    const id = `w/${proposal.height}/${proposal.round}`;
    const done = this.forged.get(id);
    if (done !== undefined) return done;
    const header = { ...block.header, evidenceHash: evidenceRoot([]) };
    return this.resigned(id, proposal, { ...block, header, evidence: [] }, -1);
  }

  /** A proposal of this node signed again with another POL round, same block. */
  private reproposal(proposal: Proposal, block: Block, polRound: number): Uint8Array {
    const id = `l/${proposal.height}/${proposal.round}`;
    const done = this.forged.get(id);
    if (done !== undefined) return done;
    return this.resigned(id, proposal, block, polRound);
  }

  /**
   * `proposal` signed again for `block` (its hash taken anew) with `polRound`,
   * encoded with the block and remembered under `id`.
   */
  private resigned(id: string, proposal: Proposal, block: Block, polRound: number): Uint8Array {
    const blockHash = sha256(encode(headerCodec, block.header));
    const signBytes = proposalSignBytes(
      this.writer,
      proposal.height,
      proposal.round,
      polRound,
      blockHash,
    );
    const forged: Proposal = {
      ...proposal,
      polRound,
      blockHash,
      signature: this.signer.sign(SIGN_KIND_CONSENSUS.proposal, signBytes),
    };
    const bytes = encode(messageCodec, { kind: 'proposal', proposal: forged, block });
    this.remember(id, bytes);
    return bytes;
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
    return this.resigned(id, proposal, forgedBlock, proposal.polRound);
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
    this.doubleVotes++;
    return bytes;
  }
}

const EMPTY = new Uint8Array(0);

function signKindOf(type: VoteType): ConsensusSignKind {
  return type === VOTE_TYPE.prevote ? SIGN_KIND_CONSENSUS.prevote : SIGN_KIND_CONSENSUS.precommit;
}
