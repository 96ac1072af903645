// Oracle prices through vote extensions. Each validator's precommit carries its
// observation (index prices from its own source, signed with the vote); the
// exchange block of height H+1 takes, per underlying, the stake-weighted median
// of the observations in H+1's lastCommit — the certificate every replica holds
// identically — so every replica derives the same prices without trusting the
// proposer. An underlying observed by one third of the stake or less is left
// out of the block (the exchange keeps its previous index).

import { Reader, Writer } from '../codec/wire.ts';
import type { CommitCertificate } from '../consensus/index.ts';
import type { ValidatorSet } from '../consensus/index.ts';
import { isOneThirdPlus } from '../consensus/index.ts';
import { ORACLE_PRICE_BITS_MAX, ORACLE_UNDERLYINGS_MAX } from '../lib/limits.ts';

/** Underlying ('BTC') → index price in quote units per whole base unit. */
export type Observation = ReadonlyMap<string, bigint>;

const UNDERLYING_RE = /^[A-Z0-9]{1,16}$/;

/** Canonical: underlyings ascending and unique, prices positive. Empty map → empty bytes. */
export function encodeObservation(prices: Observation): Uint8Array {
  if (prices.size === 0) return new Uint8Array(0);
  const names = [...prices.keys()].sort();
  const w = new Writer(16 + names.length * 24);
  w.uvarint(names.length);
  for (const name of names) w.string(name, 16).uvarintBig(prices.get(name)!);
  return w.finish();
}

/** The observation in an extension, or null if it is not a canonical one. */
export function decodeObservation(bytes: Uint8Array): Map<string, bigint> | null {
  const out = new Map<string, bigint>();
  if (bytes.length === 0) return out;
  try {
    const r = new Reader(bytes);
    const count = r.uvarint('count', ORACLE_UNDERLYINGS_MAX);
    let previous = '';
    for (let i = 0; i < count; i++) {
      const name = r.string('underlying', 16);
      const price = r.uvarintBig('price', ORACLE_PRICE_BITS_MAX);
      if (!UNDERLYING_RE.test(name) || name <= previous || price <= 0n) return null;
      previous = name;
      out.set(name, price);
    }
    r.done('observation');
    return count === 0 ? null : out;
  } catch {
    return null;
  }
}

/** The block's oracle input from the previous height's certificate (empty at the first height). */
export function oracleFromCommit(
  commit: CommitCertificate | null,
  set: ValidatorSet,
): Record<string, bigint> {
  const oracle: Record<string, bigint> = {};
  if (commit === null) return oracle;
  const byUnderlying = new Map<string, { price: bigint; power: number }[]>();
  for (const vote of commit.votes) {
    const validator = set.validators[vote.validatorIndex];
    const observation = validator === undefined ? null : decodeObservation(vote.extension);
    if (observation === null) continue;
    for (const [name, price] of observation) {
      let list = byUnderlying.get(name);
      if (list === undefined) byUnderlying.set(name, (list = []));
      list.push({ price, power: validator!.power });
    }
  }
  for (const name of [...byUnderlying.keys()].sort()) {
    const list = byUnderlying.get(name)!;
    const power = list.reduce((sum, x) => sum + x.power, 0);
    if (!isOneThirdPlus(power, set.totalPower)) continue;
    oracle[name] = weightedMedian(list, power);
  }
  return oracle;
}

/** The lowest price at which more than half of the observing power lies at or below it. */
export function weightedMedian(
  list: readonly { price: bigint; power: number }[],
  total: number,
): bigint {
  const sorted = list.slice().sort((a, b) => (a.price < b.price ? -1 : a.price > b.price ? 1 : 0));
  let acc = 0;
  for (const x of sorted) {
    acc += x.power;
    if (2 * acc > total) return x.price;
  }
  return sorted[sorted.length - 1]!.price;
}
