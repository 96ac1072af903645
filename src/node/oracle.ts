// Oracle prices through vote extensions (docs/derivatives.md, "Oracle"). Each
// validator's precommit carries its observation in the exchange's encoding
// (src/exchange/oracle encodeObservation: its clock's time and, per
// underlying, the median of its price sources), signed with the vote. The
// block of height H+1 hands the exchange the observations of H+1's lastCommit
// — the certificate every replica holds identically — with each signer's
// stake, and the exchange aggregates them (>= 2/3 of stake, stake-weighted
// median, clamped per block, staleness) so every replica derives the same
// index without trusting the proposer.

import type { CommitCertificate, ValidatorSet } from '../consensus/index.ts';
import { ZommaError } from '../lib/errors.ts';
import { NODE_PRICE_SOURCES_MIN, OBSERVATION_SMILES_MAX } from '../lib/limits.ts';
import type { OracleVotes } from '../exchange/exchange.ts';
import type {
  OracleObservation,
  PriceObservation,
  SmileObservation,
  StakedObservation,
} from '../exchange/oracle/index.ts';
import {
  decodeObservation as decodeExchangeObservation,
  isQuorum,
  medianOfSources,
  weightedMedian,
} from '../exchange/oracle/index.ts';

/** Underlying ('BTC') → index price in quote units per whole base unit: one source's reading. */
export type Observation = ReadonlyMap<string, bigint>;

/** Something that reads index prices (oracle_source.ts). */
export interface ObservationSource {
  observe(nowMs: number): Observation;
}

/**
 * This validator's observation at `nowMs`: per underlying (ascending), the
 * median of what its sources report; an underlying fewer than
 * NODE_PRICE_SOURCES_MIN sources report is left out.
 */
export function ownObservation(
  sources: readonly ObservationSource[],
  nowMs: number,
  underlyings: readonly string[],
): OracleObservation {
  const readings = sources.map((s) => s.observe(nowMs));
  const prices: PriceObservation[] = [];
  for (const underlying of [...underlyings].sort()) {
    const values: bigint[] = [];
    for (const r of readings) {
      const p = r.get(underlying);
      if (p !== undefined) values.push(p);
    }
    const priceQuote = medianOfSources(values, NODE_PRICE_SOURCES_MIN);
    if (priceQuote !== null) prices.push({ underlying, priceQuote });
  }
  return { timeMs: nowMs, prices, smiles: [] };
}

/** Annualized volatility of the devnet's simulated smiles, by underlying (others: DEVNET_VOL_DEFAULT). */
const DEVNET_VOLS: Readonly<Record<string, number>> = { BTC: 0.6, ETH: 0.8 };
const DEVNET_VOL_DEFAULT = 0.7;
const YEAR_MS = 365 * 86_400_000;
const WAD = 1e18;

/**
 * Simulated SVI smiles for the listed expiries (the devnet has no options
 * market to fit): at-the-money volatility σ of the underlying, a skew ρ = −0.3
 * and curvature 0.1, scaled to total variance σ²T so that w(0) = σ²T. Floats
 * are fine here: only the integer parameters enter the chain, validated.
 * At most OBSERVATION_SMILES_MAX of them: the nearest expiries of every
 * underlying together, listed by (underlying, expiry) as an observation is.
 */
export function simulatedSmiles(
  expiries: readonly { underlying: string; expiryMs: number }[],
  nowMs: number,
): SmileObservation[] {
  const out: SmileObservation[] = [];
  const byUnderlying = (x: { underlying: string }, y: { underlying: string }): number =>
    x.underlying < y.underlying ? -1 : x.underlying > y.underlying ? 1 : 0;
  // The nearest expiries are chosen across underlyings (an underlying sorted
  // first must not take every place with its far expiries and leave the
  // others' options without a smile), then put in the order the encoding needs.
  const sorted = [...expiries]
    .filter((e) => e.expiryMs > nowMs)
    .sort((x, y) => x.expiryMs - y.expiryMs || byUnderlying(x, y))
    .slice(0, OBSERVATION_SMILES_MAX)
    .sort((x, y) => byUnderlying(x, y) || x.expiryMs - y.expiryMs);
  for (const e of sorted) {
    const vol = DEVNET_VOLS[e.underlying] ?? DEVNET_VOL_DEFAULT;
    const variance = vol * vol * ((e.expiryMs - nowMs) / YEAR_MS);
    const b = variance;
    const sigma = 0.1;
    const a = variance - b * sigma;
    out.push({
      underlying: e.underlying,
      expiryMs: e.expiryMs,
      svi: {
        a: BigInt(Math.round(a * WAD)),
        b: BigInt(Math.round(b * WAD)),
        rho: BigInt(Math.round(-0.3 * WAD)),
        m: 0n,
        sigma: BigInt(Math.round(sigma * WAD)),
      },
    });
  }
  return out;
}

/** An extension's observation, or null when it is empty or not a valid one. */
export function observationOf(bytes: Uint8Array): OracleObservation | null {
  try {
    return decodeExchangeObservation(bytes);
  } catch (e) {
    if (e instanceof ZommaError) return null;
    throw e;
  }
}

/**
 * The block's oracle input: every member of the set deciding the previous
 * commit, with its stake and its observation there (null if it did not sign or
 * sent none; every one null at the first height). The exchange carries each
 * member's latest fresh observation across blocks by public key.
 */
export function oracleVotesOf(commit: CommitCertificate | null, set: ValidatorSet): OracleVotes {
  const signed = new Map<number, Uint8Array>();
  for (const vote of commit?.votes ?? []) signed.set(vote.validatorIndex, vote.extension);
  const votes: StakedObservation[] = set.validators.map((validator, validatorIndex) => {
    const extension = signed.get(validatorIndex);
    return {
      validatorIndex,
      publicKey: validator.publicKey,
      stake: BigInt(validator.power),
      observation: extension === undefined ? null : observationOf(extension),
    };
  });
  return { votes, totalStake: BigInt(set.totalPower) };
}

/** The prices of an extension (the read model's per-validator view); null when it carries none. */
export function decodeObservation(bytes: Uint8Array): Map<string, bigint> | null {
  const o = observationOf(bytes);
  if (o === null) return null;
  return new Map(o.prices.map((p) => [p.underlying, p.priceQuote]));
}

/**
 * Per underlying, the stake-weighted median of a certificate's observations
 * where they hold >= 2/3 of the stake — the candidate before the exchange's
 * per-block clamp and freshness rule, for the read model.
 */
export function oracleFromCommit(
  commit: CommitCertificate | null,
  set: ValidatorSet,
): Record<string, bigint> {
  return oracleFromVotes(oracleVotesOf(commit, set));
}

/** oracleFromCommit over observations already decoded (oracleVotesOf). */
export function oracleFromVotes({ votes, totalStake }: OracleVotes): Record<string, bigint> {
  const out: Record<string, bigint> = {};
  const byUnderlying = new Map<string, { value: bigint; stake: bigint }[]>();
  for (const v of votes) {
    for (const p of v.observation?.prices ?? []) {
      let list = byUnderlying.get(p.underlying);
      if (list === undefined) byUnderlying.set(p.underlying, (list = []));
      list.push({ value: p.priceQuote, stake: v.stake });
    }
  }
  for (const name of [...byUnderlying.keys()].sort()) {
    const list = byUnderlying.get(name)!;
    const present = list.reduce((sum, x) => sum + x.stake, 0n);
    if (isQuorum(present, totalStake)) out[name] = weightedMedian(list);
  }
  return out;
}
