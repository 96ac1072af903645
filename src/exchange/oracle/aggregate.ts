// Oracle aggregation (docs/derivatives.md, "Oracle"). Pure: the state is what
// the exchange keeps per underlying (last price, when it last moved) and per
// smile; time enters only as the block's time.
//
// Each block, one entry per validator of the certificate's set: its
// observation in the certificate if fresh (|observation time − block time| ≤
// freshnessMs), else the latest one it had carried in an earlier certificate,
// if still fresh measured from `sinceMs` (the smaller of its own time and the
// block time that first carried it, so a timestamp in the future buys no extra
// life). Entries neither fresh nor of a member of this set are dropped, so the
// carried state holds at most one observation per member. Then per underlying:
//   1. the entries that price it;
//   2. if their validators hold ≥ 2/3 of the total stake (3·present ≥ 2·total),
//      the candidate is their stake-weighted median: the lowest price at which
//      the stake at or below it reaches half the present stake;
//   3. the move from the last price is clamped to maxMovePerBlockBps of it (at
//      least 1 quote unit); the first price is taken as it is;
//   4. otherwise the price stays, and once blockTime − updatedMs > staleAfterMs
//      the underlying is "oracle stale" (isStale) until a quorum returns.
// Each validator still contributes at most one entry, so with the present stake
// ≥ 2/3 and Byzantine stake < 1/3, honest stake is more than half of the
// present stake, and the median lies between the lowest and highest honest
// prices: a minority reporting absurd prices moves nothing. Carrying lets the
// honest observations of recent certificates count together, so a certificate
// holding just over 1/3 of honest extensions (early empty precommits, a
// proposer picking a minimal certificate) no longer freezes the price.
// Smiles: the same quorum per (underlying, expiry), the median taken per SVI
// parameter; a result that fails validation keeps the previous smile.
// Cost: O(V log V) per underlying and per smile, V validators.

import type { Codec, Reader, Writer } from '../../codec/wire.ts';
import { assert } from '../../lib/assert.ts';
import { divBig } from '../../lib/int.ts';
import {
  OBSERVATION_SMILES_MAX,
  ORACLE_SOURCES_MAX,
  VALIDATORS_MAX,
  VOTE_EXTENSION_BYTES_MAX,
} from '../../lib/limits.ts';
import { encode } from '../../codec/wire.ts';
import { bytesKey } from '../keys.ts';
import type { SviParams } from '../options/svi.ts';
import { SviError, validateSvi } from '../options/svi.ts';
import type { OracleObservation } from './observation.ts';
import {
  OBSERVED_PRICE_BITS,
  OracleError,
  observationCodec,
  validateObservation,
} from './observation.ts';

const PUBLIC_KEY_BYTES = 32;

/** Smiles an oracle state can hold: each needs a quorum, so at most what one validator may report, from each validator. */
const SMILES_STATE_MAX = OBSERVATION_SMILES_MAX * VALIDATORS_MAX;

export interface OracleParams {
  /** Underlyings the exchange prices, in the order they are aggregated. */
  readonly underlyings: readonly string[];
  /** An observation counts if its time is within this of block time. */
  readonly freshnessMs: number;
  /** No update for longer than this: the underlying is stale. */
  readonly staleAfterMs: number;
  /** Largest move per block, basis points of the last price. */
  readonly maxMovePerBlockBps: number;
}

export interface PriceFeed {
  /** Quote units per whole base unit; 0 = never priced. */
  readonly priceQuote: bigint;
  /** Block time of the last update (-1 = never). */
  readonly updatedMs: number;
}

export interface SmileFeed {
  readonly svi: SviParams;
  readonly updatedMs: number;
}

export interface OracleState {
  /** By underlying, in params order. */
  readonly prices: ReadonlyMap<string, PriceFeed>;
  /** By smileKey(underlying, expiryMs); only expiries after block time are kept. */
  readonly smiles: ReadonlyMap<string, SmileFeed>;
  /** Each member's latest fresh observation, by bytesKey(publicKey) ascending. */
  readonly carried: ReadonlyMap<string, CarriedObservation>;
}

export interface CarriedObservation {
  readonly publicKey: Uint8Array;
  readonly observation: OracleObservation;
  /** min(observation.timeMs, time of the block that first carried it): freshness counts from here. */
  readonly sinceMs: number;
}

/** One member of the set deciding the commit the block carries. */
export interface StakedObservation {
  /** Its index in that set (for the read model; the index shifts when the set changes). */
  readonly validatorIndex: number;
  /** Its identity across blocks and sets, 32 bytes. */
  readonly publicKey: Uint8Array;
  readonly stake: bigint;
  /** Null: the validator did not sign the commit, or sent no (or an invalid) extension. */
  readonly observation: OracleObservation | null;
}

export const NEVER: PriceFeed = { priceQuote: 0n, updatedMs: -1 };

export function emptyOracleState(params: OracleParams): OracleState {
  return {
    prices: new Map(params.underlyings.map((u) => [u, NEVER])),
    smiles: new Map(),
    carried: new Map(),
  };
}

export function smileKey(underlying: string, expiryMs: number): string {
  return `${underlying}:${expiryMs}`;
}

export function isQuorum(presentStake: bigint, totalStake: bigint): boolean {
  return 3n * presentStake >= 2n * totalStake;
}

/** The lowest value at which the stake at or below it reaches half the total. Ties in value order by input order. */
export function weightedMedian(entries: readonly { value: bigint; stake: bigint }[]): bigint {
  assert(entries.length > 0, 'median of nothing');
  const sorted = entries
    .map((e, i) => ({ ...e, i }))
    .sort((x, y) => (x.value < y.value ? -1 : x.value > y.value ? 1 : x.i - y.i));
  let total = 0n;
  for (const e of sorted) total += e.stake;
  let cumulative = 0n;
  for (const e of sorted) {
    cumulative += e.stake;
    if (2n * cumulative >= total) return e.value;
  }
  return sorted[sorted.length - 1]!.value;
}

/** The last price moved toward the candidate by at most maxMovePerBlockBps (at least one unit). */
export function clampMove(last: bigint, candidate: bigint, maxMovePerBlockBps: number): bigint {
  if (last <= 0n) return candidate;
  let band = divBig(last * BigInt(maxMovePerBlockBps), 10_000n, 'floor');
  if (band < 1n) band = 1n;
  if (candidate > last + band) return last + band;
  if (candidate < last - band) return last - band > 0n ? last - band : 1n;
  return candidate;
}

function isFresh(timeMs: number, blockTimeMs: number, params: OracleParams): boolean {
  const d = timeMs - blockTimeMs;
  return d <= params.freshnessMs && -d <= params.freshnessMs;
}

interface Entry {
  readonly stake: bigint;
  readonly observation: OracleObservation;
}

/**
 * One entry per member (the first listed) with stake: its fresh observation
 * in the certificate, else its carried one while fresh. Returns the entries
 * and what is carried to the next block.
 */
function presentEntries(
  carried: ReadonlyMap<string, CarriedObservation>,
  votes: readonly StakedObservation[],
  blockTimeMs: number,
  params: OracleParams,
): { entries: Entry[]; carried: Map<string, CarriedObservation> } {
  const seen = new Set<string>();
  const entries: Entry[] = [];
  const kept: [string, CarriedObservation][] = [];
  for (const v of votes) {
    assert(v.publicKey.length === PUBLIC_KEY_BYTES, 'a validator key is 32 bytes');
    const key = bytesKey(v.publicKey);
    if (seen.has(key) || v.stake <= 0n) continue;
    seen.add(key);
    let entry: CarriedObservation | undefined;
    const o = v.observation;
    if (o !== null && isFresh(o.timeMs, blockTimeMs, params)) {
      const sinceMs = o.timeMs < blockTimeMs ? o.timeMs : blockTimeMs;
      entry = { publicKey: v.publicKey, observation: o, sinceMs };
    } else {
      const c = carried.get(key);
      if (c !== undefined && isFresh(c.sinceMs, blockTimeMs, params)) entry = c;
    }
    if (entry === undefined) continue;
    entries.push({ stake: v.stake, observation: entry.observation });
    kept.push([key, entry]);
  }
  kept.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { entries, carried: new Map(kept) };
}

function aggregateSmiles(
  previous: ReadonlyMap<string, SmileFeed>,
  fresh: readonly Entry[],
  totalStake: bigint,
  blockTimeMs: number,
): Map<string, SmileFeed> {
  const groups = new Map<
    string,
    { underlying: string; expiryMs: number; entries: { svi: SviParams; stake: bigint }[] }
  >();
  for (const v of fresh) {
    for (const s of v.observation.smiles) {
      if (s.expiryMs <= blockTimeMs) continue;
      const key = smileKey(s.underlying, s.expiryMs);
      let g = groups.get(key);
      if (g === undefined)
        groups.set(key, (g = { underlying: s.underlying, expiryMs: s.expiryMs, entries: [] }));
      g.entries.push({ svi: s.svi, stake: v.stake });
    }
  }
  const next = new Map<string, SmileFeed>();
  const keys = new Set([...previous.keys(), ...groups.keys()]);
  const ordered = [...keys]
    .map((key) => ({ key, feed: previous.get(key), group: groups.get(key) }))
    .map((x) => ({ ...x, expiryMs: x.group?.expiryMs ?? expiryOfKey(x.key) }))
    .filter((x) => x.expiryMs > blockTimeMs)
    .sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
  for (const { key, feed, group } of ordered) {
    let updated = feed;
    if (group !== undefined) {
      const stake = group.entries.reduce((sum, e) => sum + e.stake, 0n);
      if (isQuorum(stake, totalStake)) {
        const pick = (f: (p: SviParams) => bigint): bigint =>
          weightedMedian(group.entries.map((e) => ({ value: f(e.svi), stake: e.stake })));
        const svi: SviParams = {
          a: pick((p) => p.a),
          b: pick((p) => p.b),
          rho: pick((p) => p.rho),
          m: pick((p) => p.m),
          sigma: pick((p) => p.sigma),
        };
        try {
          validateSvi(svi);
          updated = { svi, updatedMs: blockTimeMs };
        } catch (e) {
          if (!(e instanceof SviError)) throw e;
        }
      }
    }
    if (updated !== undefined) next.set(key, updated);
  }
  return next;
}

function expiryOfKey(key: string): number {
  return Number(key.slice(key.lastIndexOf(':') + 1));
}

/**
 * The oracle state after a block. `votes` are the members of the validator set
 * deciding the commit the block carries, each with its observation in that
 * commit or null (each at most once; later duplicates are ignored), `totalStake`
 * that set's stake. Returns a new state.
 */
export function aggregateOracle(
  state: OracleState,
  votes: readonly StakedObservation[],
  totalStake: bigint,
  blockTimeMs: number,
  params: OracleParams,
): OracleState {
  assert(totalStake > 0n, 'a validator set has stake');
  const { entries: fresh, carried } = presentEntries(state.carried, votes, blockTimeMs, params);
  const prices = new Map<string, PriceFeed>();
  for (const underlying of params.underlyings) {
    const last = state.prices.get(underlying) ?? NEVER;
    const entries: { value: bigint; stake: bigint }[] = [];
    let present = 0n;
    for (const v of fresh) {
      const p = v.observation.prices.find((x) => x.underlying === underlying);
      if (p === undefined) continue;
      entries.push({ value: p.priceQuote, stake: v.stake });
      present += v.stake;
    }
    if (entries.length === 0 || !isQuorum(present, totalStake)) {
      prices.set(underlying, last);
      continue;
    }
    const candidate = weightedMedian(entries);
    const priceQuote = clampMove(last.priceQuote, candidate, params.maxMovePerBlockBps);
    prices.set(underlying, { priceQuote, updatedMs: blockTimeMs });
  }
  return {
    prices,
    smiles: aggregateSmiles(state.smiles, fresh, totalStake, blockTimeMs),
    carried,
  };
}

/** "Oracle stale": never priced, or not updated for more than staleAfterMs. */
export function isStale(feed: PriceFeed, blockTimeMs: number, params: OracleParams): boolean {
  return feed.priceQuote === 0n || blockTimeMs - feed.updatedMs > params.staleAfterMs;
}

/**
 * A validator's own price: the median of its sources (the mean of the two
 * middle ones, floored, for an even count), or null with fewer than
 * minSources positive prices. Runs in the node before it signs; pure.
 */
export function medianOfSources(prices: readonly bigint[], minSources: number): bigint | null {
  if (prices.length > ORACLE_SOURCES_MAX) {
    throw new OracleError('sources', `at most ${ORACLE_SOURCES_MAX}`);
  }
  assert(Number.isSafeInteger(minSources) && minSources >= 1, 'at least one source');
  const valid = prices.filter((p) => p > 0n).sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  const n = valid.length;
  if (n < minSources || n === 0) return null;
  const mid = n >> 1;
  if (n % 2 === 1) return valid[mid]!;
  return divBig(valid[mid - 1]! + valid[mid]!, 2n, 'floor');
}

/** Canonical encoding for snapshots and the state hash: prices in params order, smiles by key, carried observations by public key. */
export function oracleStateCodec(params: OracleParams): Codec<OracleState> {
  return {
    write(w: Writer, s: OracleState): void {
      for (const u of params.underlyings) {
        const feed = s.prices.get(u) ?? NEVER;
        w.uvarintBig(feed.priceQuote).ivarint(feed.updatedMs);
      }
      const keys = [...s.smiles.keys()].sort();
      w.uvarint(keys.length);
      for (const key of keys) {
        const f = s.smiles.get(key)!;
        w.string(key, 64).uvarint(f.updatedMs);
        w.ivarintBig(f.svi.a).ivarintBig(f.svi.b).ivarintBig(f.svi.rho);
        w.ivarintBig(f.svi.m).ivarintBig(f.svi.sigma);
      }
      const carried = [...s.carried.keys()].sort();
      w.uvarint(carried.length);
      for (const key of carried) {
        const c = s.carried.get(key)!;
        w.fixed(c.publicKey, PUBLIC_KEY_BYTES).uvarint(c.sinceMs);
        observationCodec.write(w, c.observation);
      }
    },
    read(r: Reader, field: string): OracleState {
      const previous = r.enter(field);
      const prices = new Map<string, PriceFeed>();
      for (const u of params.underlyings) {
        const priceQuote = r.uvarintBig(`${u}.priceQuote`, OBSERVED_PRICE_BITS);
        const updatedMs = r.ivarint(`${u}.updatedMs`);
        if (updatedMs < -1 || (updatedMs === -1) !== (priceQuote === 0n)) {
          throw r.error(`${u}.updatedMs`, 'inconsistent with the price');
        }
        prices.set(u, { priceQuote, updatedMs });
      }
      const smiles = new Map<string, SmileFeed>();
      const n = r.uvarint('smiles', SMILES_STATE_MAX);
      let last = '';
      for (let i = 0; i < n; i++) {
        const key = r.string('smiles.key', 64);
        if (i > 0 && key <= last) throw r.error('smiles.key', 'keys must strictly ascend');
        last = key;
        const updatedMs = r.uvarint('smiles.updatedMs');
        const svi: SviParams = {
          a: r.ivarintBig('smiles.a', 72),
          b: r.ivarintBig('smiles.b', 72),
          rho: r.ivarintBig('smiles.rho', 72),
          m: r.ivarintBig('smiles.m', 72),
          sigma: r.ivarintBig('smiles.sigma', 72),
        };
        try {
          validateSvi(svi);
        } catch (e) {
          if (e instanceof SviError) throw r.error('smiles.svi', e.message);
          throw e;
        }
        smiles.set(key, { svi, updatedMs });
      }
      const carried = new Map<string, CarriedObservation>();
      const m = r.uvarint('carried', VALIDATORS_MAX);
      let lastKey = '';
      for (let i = 0; i < m; i++) {
        const publicKey = r.fixedCopy('carried.publicKey', PUBLIC_KEY_BYTES);
        const key = bytesKey(publicKey);
        if (i > 0 && key <= lastKey)
          throw r.error('carried.publicKey', 'keys must strictly ascend');
        lastKey = key;
        const sinceMs = r.uvarint('carried.sinceMs');
        const observation = observationCodec.read(r, 'carried.observation');
        try {
          validateObservation(observation);
        } catch (e) {
          if (e instanceof OracleError) throw r.error('carried.observation', e.message);
          throw e;
        }
        if (encode(observationCodec, observation).length > VOTE_EXTENSION_BYTES_MAX) {
          throw r.error('carried.observation', `exceeds ${VOTE_EXTENSION_BYTES_MAX} bytes`);
        }
        if (sinceMs > observation.timeMs) {
          throw r.error('carried.sinceMs', 'after the observation time');
        }
        carried.set(key, { publicKey, observation, sinceMs });
      }
      r.leave(previous);
      return { prices, smiles, carried };
    },
  };
}
