// Votes of one height: a stake tally per (round, type, value) and who voted,
// so adding a vote is O(1) and every threshold question is a lookup.

import { toHex } from '../lib/bytes.ts';
import type { Vote, VoteType } from './types.ts';
import { VOTE_TYPE } from './types.ts';

export const NIL_KEY = 'nil';

export function valueKey(blockHash: Uint8Array | null): string {
  return blockHash === null ? NIL_KEY : toHex(blockHash);
}

/** One round's votes of one type. */
export class RoundVotes {
  readonly byValidator: (Vote | undefined)[];
  readonly powerByValue = new Map<string, number>();
  /** Power of every vote, whatever its value (the "2f+1 ⟨·, ∗⟩" rules). */
  powerAny = 0;

  constructor(size: number) {
    this.byValidator = new Array<Vote | undefined>(size);
  }

  power(key: string): number {
    return this.powerByValue.get(key) ?? 0;
  }
}

export type AddResult =
  | { readonly kind: 'added'; readonly key: string; readonly votes: RoundVotes }
  | { readonly kind: 'duplicate' }
  | { readonly kind: 'conflict'; readonly existing: Vote };

/** Every vote of one height, per round; plus which validators spoke in each round (round skip). */
export class HeightVotes {
  private readonly prevotes = new Map<number, RoundVotes>();
  private readonly precommits = new Map<number, RoundVotes>();
  /** Per round: who sent anything (vote or proposal), and their power. */
  private readonly speakers = new Map<number, { seen: Uint8Array; power: number }>();

  constructor(private readonly powers: readonly number[]) {}

  round(type: VoteType, round: number): RoundVotes | undefined {
    return (type === VOTE_TYPE.prevote ? this.prevotes : this.precommits).get(round);
  }

  add(vote: Vote): AddResult {
    const table = vote.type === VOTE_TYPE.prevote ? this.prevotes : this.precommits;
    let votes = table.get(vote.round);
    if (votes === undefined) {
      votes = new RoundVotes(this.powers.length);
      table.set(vote.round, votes);
    }
    const existing = votes.byValidator[vote.validatorIndex];
    if (existing !== undefined) {
      const same =
        existing.blockHash === null
          ? vote.blockHash === null
          : vote.blockHash !== null && toHex(existing.blockHash) === toHex(vote.blockHash);
      return same ? { kind: 'duplicate' } : { kind: 'conflict', existing };
    }
    votes.byValidator[vote.validatorIndex] = vote;
    const power = this.powers[vote.validatorIndex]!;
    const key = valueKey(vote.blockHash);
    votes.powerByValue.set(key, votes.power(key) + power);
    votes.powerAny += power;
    this.speak(vote.round, vote.validatorIndex);
    return { kind: 'added', key, votes };
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
