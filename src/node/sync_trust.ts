// State sync from a trusted block (CometBFT's trust_height and trust_hash,
// verified backwards): the operator names one committed block T by its height
// and hash, read from a source they trust (`zomma query block T` on a node
// they run, or an explorer). A snapshot of height h < T is then bound to T by
// hashes alone: block T has the trusted hash, each block k below it is the one
// block k+1's header names as previousBlockHash, down to h, and the header of
// h+1 carries previousAppHash, which the restored snapshot must reproduce.
// No validator set is trusted on the way, so the set may have changed since
// genesis (evidence jails double-signers and removes them).
//
// What no header holds is the consensus state after h: the sets deciding h+1
// and h+2 with their proposer priorities, and the recent sets evidence is
// checked against. It is recomputed here from the genesis set and the
// validator updates the restored application returned, height by height, as
// the replica's advance() computes it; sync.ts then checks it against the
// trusted headers (validators hash and proposer of each of h, h+1, h+2 at or
// below T) and refuses it on any difference.

import type { ChainState, Genesis, ValidatorUpdate } from '../consensus/index.ts';
import { ValidatorSet } from '../consensus/index.ts';
import { assert } from '../lib/assert.ts';
import { bytesEqual } from '../lib/bytes.ts';
import { EVIDENCE_AGE_HEIGHTS_MAX } from '../lib/limits.ts';
import type { ExchangeAppOptions } from './app.ts';
import { ExchangeApp } from './app.ts';
import type { RestoredState } from './sync.ts';

/** A committed block the operator vouches for. */
export interface TrustedBlock {
  readonly height: number;
  /** blockHashOf(block): the `hash` that `zomma query block` prints. */
  readonly hash: Uint8Array;
}

/** The validator updates the application returned when it executed `height`. */
export interface HeightUpdates {
  readonly height: number;
  readonly updates: readonly ValidatorUpdate[];
}

/** The consensus sets around a height h, as the replica holds them after executing h. */
export interface ChainSets {
  /** The sets deciding h, h+1 and h+2, with their proposer priorities. */
  readonly deciding: readonly [ValidatorSet, ValidatorSet, ValidatorSet];
  /** ChainState.history after h: the sets evidence in its window may need. */
  readonly history: ChainState['history'];
}

/**
 * Replays the replica's set bookkeeping (replica.ts, advance) from genesis
 * through `height`: the set deciding k+2 is the one deciding k+1 with the
 * updates of k applied, advanced one proposer step. O(height × validators).
 * Throws ValidatorSetError if the updates do not apply (an unknown member).
 */
export function chainSetsAfter(
  genesis: Genesis,
  height: number,
  updates: readonly HeightUpdates[],
): ChainSets {
  assert(Number.isSafeInteger(height) && height >= 1, 'sets after a committed height');
  const byHeight = new Map<number, readonly ValidatorUpdate[]>();
  for (const u of updates) {
    assert(u.height >= 1 && u.height <= height && !byHeight.has(u.height), 'one entry a height');
    byHeight.set(u.height, u.updates);
  }
  let current = ValidatorSet.fromUpdates(genesis.validators);
  let next = current.advanced();
  let previous = current;
  const history: { height: number; set: ValidatorSet }[] = [];
  for (let k = 1; k <= height; k++) {
    // `current` decided k: the replica records it when it differs from the last recorded.
    const last = history[history.length - 1];
    if (last === undefined || !bytesEqual(last.set.hash, current.hash)) {
      history.push({ height: k, set: current });
    }
    const oldest = k + 1 - EVIDENCE_AGE_HEIGHTS_MAX;
    while (history.length >= 2 && history[1]!.height <= oldest) history.shift();
    previous = current;
    current = next;
    next = next.withUpdates(byHeight.get(k) ?? []).advanced();
  }
  return {
    deciding: [previous, current, next],
    history: history.map((e) => ({ height: e.height, set: e.set.toState() })),
  };
}

/** What the exchange's state says of a validator (exchange/state.ts ValidatorState). */
export interface ExchangeValidator {
  readonly publicKey: Uint8Array;
  readonly jailed: boolean;
  /** The height whose block jailed it (0: never). */
  readonly jailedHeight: number;
}

/**
 * The exchange's validator updates by height: its only updates are jailings,
 * each removing the validator from the set deciding jailedHeight + 2
 * (governance.ts applyEvidence; app.ts validatorSetAt reads them the same way).
 */
export function updateHistoryOf(validators: readonly ExchangeValidator[]): HeightUpdates[] {
  const byHeight = new Map<number, ValidatorUpdate[]>();
  for (const v of validators) {
    if (!v.jailed) continue;
    const list = byHeight.get(v.jailedHeight) ?? [];
    list.push({ publicKey: v.publicKey, power: 0 });
    byHeight.set(v.jailedHeight, list);
  }
  return [...byHeight]
    .sort((a, b) => a[0] - b[0])
    .map(([height, list]) => ({ height, updates: list }));
}

/** How state sync restores an exchange snapshot: the application, with its update history. */
export function exchangeRestorer(
  options: ExchangeAppOptions,
): (bytes: Uint8Array) => RestoredState {
  return (bytes) => {
    const app = ExchangeApp.fromSnapshot(options, bytes);
    return {
      height: app.height,
      appHash: app.appHash,
      validatorUpdates: updateHistoryOf(app.exchange.state.validators),
    };
  };
}
