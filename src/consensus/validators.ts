// Validator sets: members ordered by address, stake-weighted thresholds, and
// CometBFT's weighted round-robin proposer selection (types/validator_set.go):
// each step adds every validator's power to its priority, picks the highest
// (ties to the lower address), and takes the total from the one picked.

import { Writer } from '../codec/wire.ts';
import { addressOf, sha256 } from '../crypto/index.ts';
import { ZommaError } from '../lib/errors.ts';
import { assert } from '../lib/assert.ts';
import { toHex, compareBytes } from '../lib/bytes.ts';
import { divBig } from '../lib/int.ts';
import {
  TOTAL_POWER_MAX,
  VALIDATORS_MAX,
  VALIDATOR_POWER_MAX,
  VALIDATOR_UPDATES_MAX,
} from '../lib/limits.ts';
import { PUBLIC_KEY_BYTES } from './codec.ts';
import type { Validator, ValidatorSetState, ValidatorUpdate } from './types.ts';

/**
 * Sets by the updates they were built from (immutable values, like the sets:
 * the memo returns what building again would).
 */
const genesisSets = new WeakMap<readonly ValidatorUpdate[], ValidatorSet>();

/** CometBFT keeps priorities within 2 × total power of each other. */
const PRIORITY_WINDOW_FACTOR = 2n;

export class ValidatorSetError extends ZommaError<'InvalidValidatorSet'> {
  constructor(message: string) {
    super('InvalidValidatorSet', message);
  }
}

/** 3·power > 2·total: more than two thirds of the stake (exact: both stay safe integers). */
export function isQuorum(power: number, total: number): boolean {
  return 3 * power > 2 * total;
}

/** 3·power > total: more than a third, so at least one honest validator (the round-skip rule). */
export function isOneThirdPlus(power: number, total: number): boolean {
  return 3 * power > total;
}

/** An immutable validator set with proposer priorities as of the start of its height. */
export class ValidatorSet {
  readonly validators: readonly Validator[];
  readonly priorities: readonly bigint[];
  readonly totalPower: number;
  /** Each member's power, by index. */
  readonly powers: readonly number[];
  readonly hash: Uint8Array;
  private readonly indexByKey: ReadonlyMap<string, number>;
  /** proposers[r] is the proposer of round r; priorities after r+1 steps are cursor. */
  private readonly proposers: number[] = [];
  private cursor: bigint[];
  private state: ValidatorSetState | undefined;

  /** `same`: a set with these very members, whose hash and index are reused (the members are immutable). */
  private constructor(
    validators: readonly Validator[],
    priorities: readonly bigint[],
    same: ValidatorSet | null = null,
  ) {
    assert(validators.length === priorities.length, 'one priority per validator');
    this.validators = validators;
    this.priorities = priorities;
    this.cursor = priorities.slice();
    if (same !== null) {
      assert(same.validators === validators, 'the same members');
      this.powers = same.powers;
      this.totalPower = same.totalPower;
      this.hash = same.hash;
      this.indexByKey = same.indexByKey;
      return;
    }
    let total = 0;
    const indexByKey = new Map<string, number>();
    const w = new Writer(64 * validators.length + 8);
    w.uvarint(validators.length);
    for (let i = 0; i < validators.length; i++) {
      const v = validators[i]!;
      total += v.power;
      indexByKey.set(toHex(v.publicKey), i);
      w.fixed(v.publicKey, PUBLIC_KEY_BYTES).uvarint(v.power);
    }
    this.totalPower = total;
    this.powers = validators.map((v) => v.power);
    this.indexByKey = indexByKey;
    this.hash = sha256(w.peek());
  }

  /** A set from a state record; refuses what a set must never be. */
  static fromState(state: ValidatorSetState): ValidatorSet {
    checkMembers(state.validators);
    return new ValidatorSet(state.validators, state.priorities);
  }

  /**
   * The genesis set: all priorities start at zero. Bounded by the set's size, not by one block's changes.
   * One set per updates array: the replicas of one process (the simulator's) then share its members,
   * so a signature memo hit finds the very key object it stored, not a copy whose bytes it must compare.
   */
  static fromUpdates(updates: readonly ValidatorUpdate[]): ValidatorSet {
    let set = genesisSets.get(updates);
    if (set === undefined) {
      set = new ValidatorSet([], []).applyUpdates(updates, VALIDATORS_MAX);
      genesisSets.set(updates, set);
    }
    return set;
  }

  /** The same object every time: the set is immutable, so its encoding can be remembered. */
  toState(): ValidatorSetState {
    this.state ??= { validators: this.validators, priorities: this.priorities };
    return this.state;
  }

  get size(): number {
    return this.validators.length;
  }

  indexOf(publicKey: Uint8Array): number {
    return this.indexByKey.get(toHex(publicKey)) ?? -1;
  }

  /** Whether a key, in lowercase hex (as the transport names a peer), is one of this set's. */
  hasKeyHex(publicKeyHex: string): boolean {
    return this.indexByKey.has(publicKeyHex);
  }

  /** The proposer of a round of this set's height. O(n) per round not yet asked, cached. */
  proposer(round: number): number {
    while (this.proposers.length <= round) {
      const next = step(this.cursor, this.validators, this.totalPower);
      this.proposers.push(next.chosen);
      this.cursor = next.priorities;
    }
    return this.proposers[round]!;
  }

  /** The same members with priorities advanced one step: the set of the following height. */
  advanced(): ValidatorSet {
    this.proposer(0);
    const after = this.proposers.length === 1 ? this.cursor : stepOnce(this);
    return new ValidatorSet(this.validators, after, this);
  }

  /**
   * Applies the application's updates (power 0 removes). New validators start
   * at -1.125 × the new total, as in CometBFT, so they do not propose at once.
   */
  withUpdates(updates: readonly ValidatorUpdate[]): ValidatorSet {
    return this.applyUpdates(updates, VALIDATOR_UPDATES_MAX);
  }

  private applyUpdates(updates: readonly ValidatorUpdate[], updatesMax: number): ValidatorSet {
    if (updates.length > updatesMax) {
      throw new ValidatorSetError(`${updates.length} updates exceed ${updatesMax}`);
    }
    if (updates.length === 0) return this;
    const byKey = new Map<string, { validator: Validator; priority: bigint | null }>();
    for (let i = 0; i < this.validators.length; i++) {
      const v = this.validators[i]!;
      byKey.set(toHex(v.publicKey), { validator: v, priority: this.priorities[i]! });
    }
    const seen = new Set<string>();
    for (const u of updates) {
      const key = toHex(u.publicKey);
      if (u.publicKey.length !== PUBLIC_KEY_BYTES) {
        throw new ValidatorSetError(`public key of ${u.publicKey.length} bytes`);
      }
      if (seen.has(key)) throw new ValidatorSetError(`validator ${key} updated twice`);
      seen.add(key);
      if (!Number.isSafeInteger(u.power) || u.power < 0 || u.power > VALIDATOR_POWER_MAX) {
        throw new ValidatorSetError(`power ${u.power} of ${key} out of range`);
      }
      const existing = byKey.get(key);
      if (u.power === 0) {
        if (existing === undefined)
          throw new ValidatorSetError(`removing unknown validator ${key}`);
        byKey.delete(key);
      } else if (existing !== undefined) {
        byKey.set(key, {
          validator: { ...existing.validator, power: u.power },
          priority: existing.priority,
        });
      } else {
        const validator = {
          publicKey: u.publicKey.slice(),
          address: addressOf(u.publicKey),
          power: u.power,
        };
        byKey.set(key, { validator, priority: null });
      }
    }
    const entries = [...byKey.values()].sort((a, b) =>
      compareBytes(a.validator.address, b.validator.address),
    );
    const validators = entries.map((e) => e.validator);
    checkMembers(validators);
    let total = 0;
    for (const v of validators) total += v.power;
    const newcomer = -(BigInt(total) + (BigInt(total) >> 3n));
    const priorities = entries.map((e) => e.priority ?? newcomer);
    return new ValidatorSet(
      validators,
      this.validators.length === 0 ? priorities.map(() => 0n) : center(priorities),
    );
  }
}

function stepOnce(set: ValidatorSet): bigint[] {
  return step(set.priorities, set.validators, set.totalPower).priorities;
}

function checkMembers(validators: readonly Validator[]): void {
  if (validators.length === 0) throw new ValidatorSetError('a validator set may not be empty');
  if (validators.length > VALIDATORS_MAX) {
    throw new ValidatorSetError(`${validators.length} validators exceed ${VALIDATORS_MAX}`);
  }
  let total = 0;
  for (let i = 0; i < validators.length; i++) {
    const v = validators[i]!;
    if (v.power <= 0 || v.power > VALIDATOR_POWER_MAX)
      throw new ValidatorSetError('power out of range');
    if (i > 0 && compareBytes(validators[i - 1]!.address, v.address) >= 0) {
      throw new ValidatorSetError('validators must be ordered by address, without duplicates');
    }
    total += v.power;
  }
  if (total > TOTAL_POWER_MAX)
    throw new ValidatorSetError(`total power ${total} exceeds ${TOTAL_POWER_MAX}`);
}

/** Shifts priorities so they average zero (floor), as CometBFT does after changes. */
function center(priorities: readonly bigint[]): bigint[] {
  let sum = 0n;
  for (const p of priorities) sum += p;
  const average = divBig(sum, BigInt(priorities.length), 'floor');
  return priorities.map((p) => p - average);
}

/** One step of the proposer rotation: rescale into the window, add powers, pick, subtract the total. */
function step(
  priorities: readonly bigint[],
  validators: readonly Validator[],
  totalPower: number,
): { priorities: bigint[]; chosen: number } {
  const total = BigInt(totalPower);
  let next = priorities.slice();
  let lo = next[0]!;
  let hi = next[0]!;
  for (const p of next) {
    if (p < lo) lo = p;
    if (p > hi) hi = p;
  }
  const window = PRIORITY_WINDOW_FACTOR * total;
  if (hi - lo > window) {
    const ratio = divBig(hi - lo, window, 'ceil');
    next = next.map((p) => divBig(p, ratio, 'trunc'));
  }
  let chosen = 0;
  for (let i = 0; i < next.length; i++) {
    next[i] = next[i]! + BigInt(validators[i]!.power);
    // Strictly greater: ties go to the lower index, which is the lower address.
    if (next[i]! > next[chosen]!) chosen = i;
  }
  next[chosen] = next[chosen]! - total;
  return { priorities: next, chosen };
}
