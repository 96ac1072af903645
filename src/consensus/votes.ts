// Votes of one height: a stake tally per (round, type, value) and who voted,
// so adding a vote is O(1) and every threshold question is a lookup.

import { bytesEqual, toHex } from '../lib/bytes.ts';
import type { Vote, VoteType } from './types.ts';
import { VOTE_TYPE } from './types.ts';
import { isOneThirdPlus, isQuorum } from './validators.ts';

export const NIL_KEY = 'nil';

/** Values sharing one 48-bit prefix that are remembered; past that (a crafted clash), keys are built afresh. */
const KEY_BUCKET_ENTRIES_MAX = 4;

export function valueKey(blockHash: Uint8Array | null): string {
  return blockHash === null ? NIL_KEY : toHex(blockHash);
}

/**
 * Values besides its first that one validator's votes of one round and type
 * are counted for. An equivocator's second vote must count (below); a third
 * and later are evidence only, so a Byzantine validator cannot grow a tally
 * without bound.
 */
export const CONFLICTING_VALUES_MAX = 2;

/** One round's votes of one type. */
export class RoundVotes {
  /** Each validator's first vote: the one "any" tallies, the speaker set and evidence use. */
  readonly byValidator: (Vote | undefined)[];
  /**
   * Votes for other values than the validator's first, by validator. Algorithm
   * 1 counts messages ⟨PREVOTE, h, r, id(v)⟩ from distinct senders per value:
   * an equivocator's vote counts for each value it signed (CometBFT keeps them
   * per block too), or a polka seen by one replica could never be shown to one
   * that heard the equivocator's other vote first. Made at the first such vote: most rounds have none.
   */
  conflicting: Map<number, Vote[]> | null = null;
  readonly powerByValue = new Map<string, number>();
  /** Power of every validator that voted, whatever the value (the "2f+1 ⟨·, ∗⟩" rules), once each. */
  powerAny = 0;

  constructor(size: number) {
    this.byValidator = new Array<Vote | undefined>(size);
  }

  power(key: string): number {
    return this.powerByValue.get(key) ?? 0;
  }

  /** The vote a validator signed for a value in this round, if we hold one. */
  voteFor(validatorIndex: number, blockHash: Uint8Array | null): Vote | undefined {
    const first = this.byValidator[validatorIndex];
    if (first === undefined || sameValue(first.blockHash, blockHash)) return first;
    const others = this.conflicting?.get(validatorIndex);
    if (others !== undefined)
      for (const v of others) if (sameValue(v.blockHash, blockHash)) return v;
    return undefined;
  }

  /** Whether a validator's votes here count for every value they may: its first and CONFLICTING_VALUES_MAX more. */
  valuesFull(validatorIndex: number): boolean {
    return (this.conflicting?.get(validatorIndex)?.length ?? 0) >= CONFLICTING_VALUES_MAX;
  }

  /** Every vote for a value, by validator index. */
  votesFor(blockHash: Uint8Array | null): Vote[] {
    const out: Vote[] = [];
    for (let i = 0; i < this.byValidator.length; i++) {
      const v = this.voteFor(i, blockHash);
      if (v !== undefined && sameValue(v.blockHash, blockHash)) out.push(v);
    }
    return out;
  }
}

function sameValue(a: Uint8Array | null, b: Uint8Array | null): boolean {
  return a === null ? b === null : b !== null && (a === b || bytesEqual(a, b));
}

export type AddResult =
  | {
      readonly kind: 'added';
      readonly key: string;
      readonly votes: RoundVotes;
      /**
       * The vote took a tally over a threshold (2f+1 for its value or of any
       * value, f+1 speaking in its round). Only then can an upon-rule of
       * Algorithm 1 newly hold, so only then need the replica look.
       */
      readonly crossed: boolean;
    }
  | { readonly kind: 'duplicate' }
  | {
      readonly kind: 'conflict';
      readonly existing: Vote;
      readonly key: string;
      readonly votes: RoundVotes;
      /** Counted for its value (within CONFLICTING_VALUES_MAX). */
      readonly counted: boolean;
      /** Counting it took its value's tally to 2f+1. */
      readonly crossed: boolean;
    };

/** Every vote of one height, per round; plus which validators spoke in each round (round skip). */
export class HeightVotes {
  private readonly prevotes = new Map<number, RoundVotes>();
  private readonly precommits = new Map<number, RoundVotes>();
  /** Per round: who sent anything (vote or proposal), and their power. */
  private readonly speakers = new Map<number, { seen: Uint8Array; power: number }>();
  /** Keys of the values voted for, by a 48-bit prefix: the hex string is built once per value. */
  private readonly keys = new Map<number, { readonly hash: Uint8Array; readonly key: string }[]>();
  private readonly totalPower: number;

  constructor(private readonly powers: readonly number[]) {
    let total = 0;
    for (const p of powers) total += p;
    this.totalPower = total;
  }

  round(type: VoteType, round: number): RoundVotes | undefined {
    return (type === VOTE_TYPE.prevote ? this.prevotes : this.precommits).get(round);
  }

  /** valueKey(blockHash), from the values this height has seen. */
  keyOf(blockHash: Uint8Array | null): string {
    if (blockHash === null) return NIL_KEY;
    const h = blockHash;
    const id =
      h.length < 6
        ? -1
        : (h[0]! | (h[1]! << 8) | (h[2]! << 16)) * 0x1_000_000 +
          (h[3]! | (h[4]! << 8) | (h[5]! << 16));
    let bucket = this.keys.get(id);
    if (bucket === undefined) {
      bucket = [];
      this.keys.set(id, bucket);
    }
    for (const entry of bucket) if (bytesEqual(entry.hash, blockHash)) return entry.key;
    const key = toHex(blockHash);
    if (bucket.length < KEY_BUCKET_ENTRIES_MAX) bucket.push({ hash: blockHash.slice(), key });
    return key;
  }

  add(vote: Vote): AddResult {
    const table = vote.type === VOTE_TYPE.prevote ? this.prevotes : this.precommits;
    let votes = table.get(vote.round);
    if (votes === undefined) {
      votes = new RoundVotes(this.powers.length);
      table.set(vote.round, votes);
    }
    const existing = votes.byValidator[vote.validatorIndex];
    if (existing !== undefined) return this.addConflicting(votes, existing, vote);
    votes.byValidator[vote.validatorIndex] = vote;
    const power = this.powers[vote.validatorIndex]!;
    const key = this.keyOf(vote.blockHash);
    const total = this.totalPower;
    const valueBefore = votes.power(key);
    const anyBefore = votes.powerAny;
    votes.powerByValue.set(key, valueBefore + power);
    votes.powerAny = anyBefore + power;
    const speakingBefore = this.speakingPower(vote.round);
    const speaking = this.speak(vote.round, vote.validatorIndex);
    const crossed =
      (!isQuorum(valueBefore, total) && isQuorum(valueBefore + power, total)) ||
      (!isQuorum(anyBefore, total) && isQuorum(anyBefore + power, total)) ||
      (!isOneThirdPlus(speakingBefore, total) && isOneThirdPlus(speaking, total));
    return { kind: 'added', key, votes, crossed };
  }

  private addConflicting(votes: RoundVotes, existing: Vote, vote: Vote): AddResult {
    const held = votes.voteFor(vote.validatorIndex, vote.blockHash);
    if (held !== undefined && sameValue(held.blockHash, vote.blockHash))
      return { kind: 'duplicate' };
    const key = this.keyOf(vote.blockHash);
    const conflicting = (votes.conflicting ??= new Map());
    let others = conflicting.get(vote.validatorIndex);
    if (others === undefined) {
      others = [];
      conflicting.set(vote.validatorIndex, others);
    }
    if (others.length >= CONFLICTING_VALUES_MAX) {
      return { kind: 'conflict', existing, key, votes, counted: false, crossed: false };
    }
    others.push(vote);
    const before = votes.power(key);
    const after = before + this.powers[vote.validatorIndex]!;
    votes.powerByValue.set(key, after);
    const crossed = !isQuorum(before, this.totalPower) && isQuorum(after, this.totalPower);
    return { kind: 'conflict', existing, key, votes, counted: true, crossed };
  }

  /** Records that a validator sent something in a round; returns the round's speaking power. */
  speak(round: number, validatorIndex: number): number {
    let s = this.speakers.get(round);
    if (s === undefined) {
      s = { seen: new Uint8Array(this.powers.length), power: 0 };
      this.speakers.set(round, s);
    }
    if (s.seen[validatorIndex] === 0) {
      s.seen[validatorIndex] = 1;
      s.power += this.powers[validatorIndex]!;
    }
    return s.power;
  }

  speakingPower(round: number): number {
    return this.speakers.get(round)?.power ?? 0;
  }

  /** Rounds with any speaker, for the round-skip rule. */
  spokenRounds(): IterableIterator<number> {
    return this.speakers.keys();
  }
}
