// The checkers, run on every step of a simulation. Safety: agreement (no two
// honest nodes commit different blocks at one height), validity (a committed
// block was proposed by someone), one appHash per height on every honest
// node, and no honest node ever signing two values for one (height, round,
// step), across its crashes. Accountability and liveness are eventual, and
// checked when the run ends: every equivocation an honest node saw ends in a
// committed block within a bound (unless other evidence against its offender
// was committed within it: replicas drop evidence against a validator already
// removed, and evidence of an offence already committed, docs/protocol.md
// "Evidence"), its offender is out of the validator set
// deciding H+2 (H the height that committed it; unless it is the last member),
// and after the network heals every honest node commits within a bound.
// Also safety: block time only grows and stays within the honest precommits'
// times, and no evidence against an honest validator is ever committed.

import type { DuplicateVoteEvidence, Message, Vote } from '../consensus/index.ts';
import { bytesEqual, toHex } from '../lib/bytes.ts';

export type ViolationKind =
  | 'agreement'
  | 'validity'
  | 'appHash'
  | 'doubleSign'
  | 'bftTime'
  | 'falseEvidence'
  | 'evidence'
  | 'liveness';

export const SAFETY_KINDS: readonly ViolationKind[] = [
  'agreement',
  'validity',
  'appHash',
  'doubleSign',
  'bftTime',
  'falseEvidence',
];

export interface Violation {
  readonly kind: ViolationKind;
  readonly atUs: number;
  readonly message: string;
}

interface SeenEvidence {
  readonly height: number;
  readonly validatorIndex: number;
  /** The offender's key index (-1 when it names no known key). */
  readonly offenderKey: number;
  readonly seenUs: number;
  readonly seenBy: number[];
}

export class Checkers {
  readonly violations: Violation[] = [];
  /** Block hash committed at each height (by the first honest node to commit it). */
  readonly committed = new Map<number, { hash: string; round: number; atUs: number }>();
  private readonly appHashes = new Map<number, string>();
  private readonly proposed = new Set<string>();
  /** Per height, per (key, round, step): the value signed (null for nil). */
  private readonly signed = new Map<number, Map<number, Uint8Array | null>>();
  private readonly evidenceSeen = new Map<string, SeenEvidence>();
  private readonly evidenceCommitted = new Map<string, number>();
  /** Per committed evidence, its offender's key index (-1 when it names no known key). */
  private readonly offenders = new Map<string, number>();

  /** The time of each recently committed block (the first honest node's). */
  private readonly blockTimes = new Map<number, number>();

  /** `honestKeys[k]` is 1 when validator key k is honest. */
  constructor(
    private readonly stopOnViolation: boolean,
    private readonly honestKeys: Uint8Array = new Uint8Array(0),
  ) {}

  get failed(): boolean {
    return this.violations.length > 0;
  }

  get safetyFailed(): boolean {
    // Asked after every event: the common answer comes without a closure.
    if (this.violations.length === 0) return false;
    return this.violations.some((v) => SAFETY_KINDS.includes(v.kind));
  }

  /** Whether the run should stop now. */
  get stop(): boolean {
    return this.stopOnViolation && this.safetyFailed;
  }

  flag(kind: ViolationKind, atUs: number, message: string): void {
    this.violations.push({ kind, atUs, message });
  }

  /** Every proposal any node released (honest or not) makes its block "proposed". */
  onReleased(message: Message): void {
    if (message.kind === 'proposal') this.proposed.add(toHex(message.proposal.blockHash));
  }

  /**
   * A message signed by an honest validator's key, released by any node (its
   * signer or a relay): never two values for one (key, height, round, step).
   * Keyed by the signer inside the message, so relaying is not signing.
   */
  onHonestSigned(keyIndex: number, nodeIndex: number, message: Message, atUs: number): void {
    let height: number;
    let round: number;
    let step: number;
    let value: Uint8Array | null;
    if (message.kind === 'vote') {
      const v = message.vote;
      height = v.height;
      round = v.round;
      step = v.type;
      value = v.blockHash;
    } else if (message.kind === 'proposal') {
      const p = message.proposal;
      height = p.height;
      round = p.round;
      step = 0;
      value = p.blockHash;
    } else {
      return;
    }
    let atHeight = this.signed.get(height);
    if (atHeight === undefined) this.signed.set(height, (atHeight = new Map()));
    // (key, round, step) as one number: key < 2^12, step < 2^4, rounds far below 2^32.
    const id = (round * 4096 + keyIndex) * 16 + step;
    const before = atHeight.get(id);
    if (before === undefined) {
      atHeight.set(id, value);
      return;
    }
    if (before === value) return;
    if (before !== null && value !== null && bytesEqual(before, value)) return;
    const kind = step === 0 ? 'proposal' : step;
    this.flag(
      'doubleSign',
      atUs,
      `honest key ${keyIndex} signed ${keyIndex}/${height}/${round}/${kind} for ${shortOf(before)} and ${shortOf(value)} (seen leaving node ${nodeIndex})`,
    );
  }

  /** Forgets what honest keys signed below a height no replica can sign at again. */
  pruneSigned(belowHeight: number): void {
    for (const height of this.signed.keys()) if (height < belowHeight) this.signed.delete(height);
  }

  onCommitted(nodeIndex: number, height: number, round: number, hash: string, atUs: number): void {
    const first = this.committed.get(height);
    if (first === undefined) {
      this.committed.set(height, { hash, round, atUs });
    } else if (first.hash !== hash) {
      this.flag(
        'agreement',
        atUs,
        `height ${height}: node ${nodeIndex} committed ${short(hash)}, another honest node ${short(first.hash)}`,
      );
    }
    if (!this.proposed.has(hash)) {
      this.flag(
        'validity',
        atUs,
        `height ${height}: node ${nodeIndex} committed ${short(hash)}, never proposed`,
      );
    }
  }

  onExecuted(nodeIndex: number, height: number, appHash: Uint8Array, atUs: number): void {
    const hex = toHex(appHash);
    const first = this.appHashes.get(height);
    if (first === undefined) this.appHashes.set(height, hex);
    else if (first !== hex) {
      this.flag(
        'appHash',
        atUs,
        `height ${height}: node ${nodeIndex} has appHash ${short(hex)}, another honest node ${short(first)}`,
      );
    }
  }

  onEvidenceSeen(
    nodeIndex: number,
    hash: string,
    height: number,
    validatorIndex: number,
    offenderKey: number,
    atUs: number,
  ): void {
    const seen = this.evidenceSeen.get(hash);
    if (seen === undefined) {
      this.evidenceSeen.set(hash, {
        height,
        validatorIndex,
        offenderKey,
        seenUs: atUs,
        seenBy: [nodeIndex],
      });
    } else if (!seen.seenBy.includes(nodeIndex)) seen.seenBy.push(nodeIndex);
  }

  /**
   * A committed block's time: later than the block before it, and within the
   * times of the honest precommits its lastCommit carries (`low`..`high`; none
   * at the first height). Byzantine precommits may be dated anywhere.
   */
  onBlockTime(height: number, timeMs: number, low: number, high: number, atUs: number): void {
    if (this.blockTimes.has(height)) return;
    this.blockTimes.set(height, timeMs);
    this.blockTimes.delete(height - 2);
    const before = this.blockTimes.get(height - 1);
    if (before !== undefined && timeMs <= before) {
      this.flag('bftTime', atUs, `height ${height}: block time ${timeMs} ms, not after ${before}`);
    }
    if (low <= high && (timeMs < low || timeMs > high)) {
      this.flag(
        'bftTime',
        atUs,
        `height ${height}: block time ${timeMs} ms outside the honest precommits' ${low}..${high}`,
      );
    }
  }

  onEvidenceCommitted(
    hash: string,
    height: number,
    offenderKey: number,
    atUs: number,
    evidence?: DuplicateVoteEvidence,
  ): void {
    if (this.evidenceCommitted.has(hash)) return;
    if (evidence !== undefined && !conflicting(evidence.voteA, evidence.voteB)) {
      this.flag(
        'falseEvidence',
        atUs,
        `height ${height}: evidence against validator key ${offenderKey} of two votes that do not conflict`,
      );
    }
    if (offenderKey >= 0 && this.honestKeys[offenderKey] === 1) {
      this.flag(
        'falseEvidence',
        atUs,
        `height ${height}: evidence against honest validator key ${offenderKey} committed`,
      );
    }
    this.evidenceCommitted.set(hash, height);
    this.offenders.set(hash, offenderKey);
  }

  /**
   * At the end: the offender of every committed evidence is out of the set
   * deciding two heights after the evidence's block, where the run reached it.
   * `removable(key, height)` says whether key is still in that set and could
   * have been removed (the app never removes the last member).
   */
  checkJailed(
    knownHeight: number,
    removable: (keyIndex: number, height: number) => boolean,
    atUs: number,
  ): void {
    for (const [hash, height] of this.evidenceCommitted) {
      const key = this.offenders.get(hash)!;
      if (key < 0 || height + 2 > knownHeight || !removable(key, height + 2)) continue;
      this.flag(
        'evidence',
        atUs,
        `validator key ${key}, whose evidence was committed at height ${height}, is still in the set deciding ${height + 2}`,
      );
    }
  }

  get evidenceCounts(): { seen: number; committed: number } {
    return { seen: this.evidenceSeen.size, committed: this.evidenceCommitted.size };
  }

  /**
   * At the end: evidence seen by an honest node that stayed up must be
   * committed within `boundHeights` of the later of its height and the height
   * at which the network healed, if the chain got that far; unless other
   * evidence against the same offender was committed by then (it was jailed,
   * or that offence punished: the replicas then drop the rest, which could
   * change nothing). Committed
   * only later, it excuses nothing: the offender went unpunished past the bound.
   */
  checkEvidence(
    topHeight: number,
    healHeight: number,
    boundHeights: number,
    crashedAfter: (node: number, atUs: number) => boolean,
    atUs: number,
  ): void {
    // Each offender's first committed evidence, by height.
    const punishedAt = new Map<number, number>();
    for (const [hash, height] of this.evidenceCommitted) {
      const key = this.offenders.get(hash)!;
      const first = punishedAt.get(key);
      if (key >= 0 && (first === undefined || height < first)) punishedAt.set(key, height);
    }
    for (const [hash, e] of this.evidenceSeen) {
      if (this.evidenceCommitted.has(hash)) continue;
      const deadline = Math.max(e.height, healHeight) + boundHeights;
      const punished = punishedAt.get(e.offenderKey);
      if (punished !== undefined && punished <= deadline) continue;
      if (topHeight < deadline) continue;
      if (e.seenBy.every((node) => crashedAfter(node, e.seenUs))) continue;
      this.flag(
        'evidence',
        atUs,
        `evidence against validator ${e.validatorIndex} at height ${e.height} (seen by node ${e.seenBy[0]}) not committed by height ${deadline}`,
      );
    }
  }
}

/** One validator's two votes of one (height, round, type) for different values: an offence. */
function conflicting(a: Vote, b: Vote): boolean {
  const sameValue =
    a.blockHash === null
      ? b.blockHash === null
      : b.blockHash !== null && bytesEqual(a.blockHash, b.blockHash);
  return (
    a.validatorIndex === b.validatorIndex &&
    a.height === b.height &&
    a.round === b.round &&
    a.type === b.type &&
    !sameValue
  );
}

function shortOf(value: Uint8Array | null): string {
  return value === null ? 'nil' : toHex(value).slice(0, 12);
}

function short(hex: string): string {
  return hex === 'nil' ? 'nil' : hex.slice(0, 12);
}
