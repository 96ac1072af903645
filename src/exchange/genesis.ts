// The genesis: markets, fee tiers, validators and chain settings as data
// (docs/exchange.md, "Genesis"). Markets are never code: a new perpetual is a
// new entry here.
//
// Units. Money is bigint quote units (6 decimals: 1 USDC = 1_000_000). A price
// is an integer number of ticks, a size an integer number of lots. A market
// fixes tickSizeQuote (quote units per whole base unit per tick) and lotsPerBase
// (lots in one whole base unit); tickSizeQuote must be a multiple of lotsPerBase
// so that notional = priceTicks × sizeLots × quotePerTickLot is exact, with
// quotePerTickLot = tickSizeQuote / lotsPerBase.

import type { Reader, Writer } from '../codec/wire.ts';
import { DecodeError, decode, encode } from '../codec/wire.ts';
import type { Codec } from '../codec/wire.ts';
import { ZommaError } from '../lib/errors.ts';
import { divBig } from '../lib/int.ts';
import {
  FEE_TIERS_MAX,
  FUNDING_SAMPLES_PER_INTERVAL_MAX,
  GENESIS_MARKETS_MAX,
  LISTING_EXPIRIES_PER_CYCLE_MAX,
  LISTING_UNDERLYINGS_MAX,
  GENESIS_VALIDATORS_MAX,
  OBSERVATION_PRICES_MAX,
  ORACLE_FRESHNESS_MS_MAX,
  ORACLE_STALE_AFTER_MS_MAX,
  OPTION_MARK_INTERVAL_MS_DEVNET,
  OPTION_MARK_INTERVAL_MS_MAX,
  PRICE_MONITOR_TRIGGERS_MAX,
  VALIDATOR_POWER_MAX,
} from '../lib/limits.ts';
import { daysFromCivil, expiryMsOfDay } from './instruments/calendar.ts';
import type { ExpiryCycle, ListingSchedule } from './instruments/schedule.ts';
import { EXPIRY_CYCLES, ScheduleError, validateListingSchedule } from './instruments/schedule.ts';
import type { ScenarioParams } from './options/margin.ts';
import {
  DEFAULT_SCENARIO_PARAMS,
  ScenarioParamsError,
  validateScenarioParams,
} from './options/margin.ts';
import type { PriceTrigger } from './auction/monitor.ts';
import { MonitorParamsError, validateTriggers } from './auction/monitor.ts';
import type { OracleParams } from './oracle/aggregate.ts';
import type { RiskValues } from './tx/types.ts';
import { PPM } from './units.ts';

export interface FeeTier {
  /** Lifetime traded notional (quote units) from which this tier applies. */
  volumeQuoteMin: bigint;
  /** Negative = a rebate paid to the maker. */
  makerFeePpm: number;
  takerFeePpm: number;
}

export interface MarketParams {
  instrument: string;
  /** Key of the block's oracle map ('BTC'). */
  underlying: string;
  tickSizeQuote: bigint;
  lotsPerBase: number;
  minSizeLots: number;
  maxSizeLots: number;
  initialMarginPpm: number;
  maintenanceMarginPpm: number;
  /** Initial margin grows by imfStepPpm for each full imfStepQuote of position notional. */
  imfStepQuote: bigint;
  imfStepPpm: number;
  /** A market order without a price may trade at most this far from the index. */
  marketSlippagePpm: number;
  /** The book mid counts toward the mark only within this band around the index. */
  markBandPpm: number;
  openOrdersMax: number;
  fundingIntervalMs: number;
  fundingSampleMs: number;
  /** Interest component per funding interval. */
  fundingInterestPpm: number;
  /** |funding rate| per interval is clamped to this. */
  fundingCapPpm: number;
  liquidationFeePpm: number;
  liquidationFeeQuoteMax: bigint;
  /** Notional this market liquidates at most per block; the rest waits for the next block. */
  liquidationQuoteMaxPerBlock: bigint;
  /** Circuit breaker: a limit order priced further than this from the mark is refused (absent: no band). */
  priceBandPpm?: number;
  /** Circuit breaker: most open interest (long lots) a trade may leave (absent: no cap). */
  openInterestCapLots?: number;
  /**
   * Circuit breaker: price-monitoring triggers (auction/monitor.ts); a trade
   * beyond one starts a volatility auction (absent or empty: none).
   */
  triggers?: PriceTrigger[];
}

/** How the validators' observations become each block's index (docs/derivatives.md, "Oracle"). */
export interface OracleGenesis {
  /** An observation counts if its time is within this of block time. */
  freshnessMs: number;
  /** Not updated for longer than this: the underlying's markets are "oracle stale". */
  staleAfterMs: number;
  /** Largest index move per block, basis points of the last index. */
  maxMovePerBlockBps: number;
}

/**
 * The market parameters of listed instruments of one underlying and kind
 * (docs/exchange.md, "Listing"). `params.instrument` names the template
 * ('BTC-OPTIONS'); each listed market takes every other field, with its own
 * name. Funding fields are unused (dated markets pay no funding); for options
 * the margin fields are unused too (options are margined by scenario).
 */
export interface ListedTemplate {
  kind: 'future' | 'option';
  params: MarketParams;
}

/** Dated futures and options listed as block time passes (docs/derivatives.md, "Listing"). */
export interface ListingGenesis {
  schedule: ListingSchedule;
  /**
   * Options are marked when block time enters a new interval of this many ms
   * (and when first listed), not every block; the mark's inputs are then
   * state (docs/derivatives.md, "Option marks"). Absent: every block.
   */
  markIntervalMs?: number;
  /** Option margin by scenario (options/margin.ts). */
  scenario: ScenarioParams;
  /** One future and one option template per underlying of the schedule. */
  templates: ListedTemplate[];
}

export interface ValidatorInfo {
  /** 32-byte Ed25519 public key. */
  publicKey: Uint8Array;
  stake: bigint;
}

export interface Genesis {
  chainId: string;
  devnet: boolean;
  genesisTimeMs: number;
  markets: MarketParams[];
  /** Ascending volumeQuoteMin, the first at 0. */
  feeTiers: FeeTier[];
  /** Devnet faucet: most quote units one address may draw in total, over all its subaccounts. */
  faucetQuoteMax: bigint;
  validators: ValidatorInfo[];
  insuranceFundQuote: bigint;
  /**
   * Oracle aggregation and staleness. Absent: blocks carry the index directly
   * (Block.oracle), taken as it is and never stale — simulations and benches.
   */
  oracle?: OracleGenesis;
  /**
   * Share of a validator's stake burned when it is jailed for double-signing,
   * parts per million (absent: SLASH_PPM_DEFAULT).
   */
  slashPpm?: number;
  /** Dated futures and options; needs an oracle and a perpetual of each underlying (its index). */
  listing?: ListingGenesis;
}

/** 5% of the offender's stake, when the genesis says nothing. */
export const SLASH_PPM_DEFAULT = 50_000;

export function slashPpmOf(g: Genesis): number {
  return g.slashPpm ?? SLASH_PPM_DEFAULT;
}

export class GenesisError extends ZommaError<'BadGenesis'> {
  readonly field: string;
  readonly reason: string;
  constructor(field: string, reason: string) {
    super('BadGenesis', `${field}: ${reason}`);
    this.field = field;
    this.reason = reason;
  }
}

const NAME_RE = /^[A-Z0-9][A-Z0-9-]{0,63}$/;
const CHAIN_RE = /^[a-z0-9-]{1,64}$/;
const AMOUNT_BITS = 96;
const AMOUNT_MAX = (1n << BigInt(AMOUNT_BITS)) - 1n;

function int(field: string, x: number, lo: number, hi: number): void {
  if (!Number.isSafeInteger(x) || x < lo || x > hi) {
    throw new GenesisError(field, `must be an integer in [${lo}, ${hi}], got ${x}`);
  }
}

/**
 * A fee schedule, genesis's or one governance sets (governance.ts,
 * setFeeTiers): 1..FEE_TIERS_MAX tiers, the first from 0 and ascending
 * strictly by volume, fees within ±10^6 ppm (takers' never negative), and
 * the smallest taker fee covering the largest maker rebate. `field` names
 * the list in the error.
 */
export function checkFeeTiers(tiers: readonly FeeTier[], field: string): void {
  if (!Array.isArray(tiers) || tiers.length < 1 || tiers.length > FEE_TIERS_MAX) {
    throw new GenesisError(field, `1..${FEE_TIERS_MAX} tiers`);
  }
  let minTaker = PPM;
  let maxRebate = 0;
  tiers.forEach((t, i) => {
    const f = `${field}[${i}]`;
    if (typeof t !== 'object' || t === null) throw new GenesisError(f, 'must be an object');
    amount(`${f}.volumeQuoteMin`, t.volumeQuoteMin, 0n);
    if (i === 0 && t.volumeQuoteMin !== 0n)
      throw new GenesisError(`${f}.volumeQuoteMin`, 'must be 0');
    if (i > 0 && t.volumeQuoteMin <= tiers[i - 1]!.volumeQuoteMin) {
      throw new GenesisError(`${f}.volumeQuoteMin`, 'must ascend');
    }
    int(`${f}.makerFeePpm`, t.makerFeePpm, -PPM, PPM);
    int(`${f}.takerFeePpm`, t.takerFeePpm, 0, PPM);
    if (t.takerFeePpm < minTaker) minTaker = t.takerFeePpm;
    if (-t.makerFeePpm > maxRebate) maxRebate = -t.makerFeePpm;
  });
  // Each fill's rebate is paid out of that fill's taker fee, so the fee pool
  // can never go negative: the smallest taker fee must cover the largest rebate.
  if (maxRebate > minTaker) {
    throw new GenesisError(field, 'the largest maker rebate exceeds the smallest taker fee');
  }
}

/** A fee schedule's values alone, as new objects (a proposal's may carry other keys, and are the caller's). */
export function feeTiersOf(tiers: readonly FeeTier[]): FeeTier[] {
  return tiers.map((t) => ({
    volumeQuoteMin: t.volumeQuoteMin,
    makerFeePpm: t.makerFeePpm,
    takerFeePpm: t.takerFeePpm,
  }));
}

/** Two fee schedules are the same, tier by tier. */
export function sameFeeTiers(x: readonly FeeTier[], y: readonly FeeTier[]): boolean {
  return (
    x.length === y.length &&
    x.every(
      (t, i) =>
        t.volumeQuoteMin === y[i]!.volumeQuoteMin &&
        t.makerFeePpm === y[i]!.makerFeePpm &&
        t.takerFeePpm === y[i]!.takerFeePpm,
    )
  );
}

function amount(field: string, x: bigint, lo: bigint): void {
  if (typeof x !== 'bigint' || x < lo || x > AMOUNT_MAX) {
    throw new GenesisError(field, `must be a bigint in [${lo}, 2^${AMOUNT_BITS}), got ${x}`);
  }
}

/** quote units per tick per lot: exact by validation. */
export function quotePerTickLot(m: MarketParams): bigint {
  return divBig(m.tickSizeQuote, BigInt(m.lotsPerBase), 'trunc');
}

/**
 * The risk parameters of a market that governance may change while it
 * trades (governance.ts, setMarketRisk): its margin fractions, the growth of
 * initial margin with the position's size, the notional it liquidates per
 * block, and its price band and open-interest cap (absent: none). The rest
 * stays as listed: tick and lot sizes are in every price and size already
 * held, funding and fee fields in state of their own, triggers in the
 * monitor's state, order limits in the resting orders.
 */
export type MarketRisk = RiskValues;

/**
 * A market's risk parameters, or a copy of such values carrying only them
 * (absent optional ones stay absent): a new object.
 */
export function riskOf(m: MarketParams | MarketRisk): MarketRisk {
  const risk: MarketRisk = {
    initialMarginPpm: m.initialMarginPpm,
    maintenanceMarginPpm: m.maintenanceMarginPpm,
    imfStepQuote: m.imfStepQuote,
    imfStepPpm: m.imfStepPpm,
    liquidationQuoteMaxPerBlock: m.liquidationQuoteMaxPerBlock,
  };
  if (m.priceBandPpm !== undefined) risk.priceBandPpm = m.priceBandPpm;
  if (m.openInterestCapLots !== undefined) risk.openInterestCapLots = m.openInterestCapLots;
  return risk;
}

/** The market's parameters with these risk parameters (a new object; `m` is left as it is). */
export function withRisk(m: MarketParams, risk: MarketRisk): MarketParams {
  const out: MarketParams = {
    ...m,
    initialMarginPpm: risk.initialMarginPpm,
    maintenanceMarginPpm: risk.maintenanceMarginPpm,
    imfStepQuote: risk.imfStepQuote,
    imfStepPpm: risk.imfStepPpm,
    liquidationQuoteMaxPerBlock: risk.liquidationQuoteMaxPerBlock,
  };
  delete out.priceBandPpm;
  delete out.openInterestCapLots;
  if (risk.priceBandPpm !== undefined) out.priceBandPpm = risk.priceBandPpm;
  if (risk.openInterestCapLots !== undefined) out.openInterestCapLots = risk.openInterestCapLots;
  return out;
}

export function sameRisk(x: MarketRisk, y: MarketRisk): boolean {
  return (
    x.initialMarginPpm === y.initialMarginPpm &&
    x.maintenanceMarginPpm === y.maintenanceMarginPpm &&
    x.imfStepQuote === y.imfStepQuote &&
    x.imfStepPpm === y.imfStepPpm &&
    x.liquidationQuoteMaxPerBlock === y.liquidationQuoteMaxPerBlock &&
    x.priceBandPpm === y.priceBandPpm &&
    x.openInterestCapLots === y.openInterestCapLots
  );
}

/**
 * The rules genesis applies to a market's risk parameters, on `m` (a
 * market's parameters with new risk parameters, withRisk): margin fractions
 * in (0, 10^6] with maintenance at most initial, the liquidation fee at
 * most maintenance, amounts in [1, 2^96), the band in [1, 10^6), the cap at
 * least 1. Throws GenesisError naming the first bad field under `f`.
 */
export function checkRisk(m: MarketParams, f: string): void {
  int(`${f}.maintenanceMarginPpm`, m.maintenanceMarginPpm, 1, PPM);
  int(`${f}.initialMarginPpm`, m.initialMarginPpm, m.maintenanceMarginPpm, PPM);
  amount(`${f}.imfStepQuote`, m.imfStepQuote, 1n);
  int(`${f}.imfStepPpm`, m.imfStepPpm, 0, PPM);
  if (Number.isSafeInteger(m.liquidationFeePpm) && m.liquidationFeePpm > m.maintenanceMarginPpm) {
    throw new GenesisError(
      `${f}.maintenanceMarginPpm`,
      `must be at least the liquidation fee (${m.liquidationFeePpm} ppm)`,
    );
  }
  amount(`${f}.liquidationQuoteMaxPerBlock`, m.liquidationQuoteMaxPerBlock, 1n);
  if (m.priceBandPpm !== undefined) int(`${f}.priceBandPpm`, m.priceBandPpm, 1, PPM - 1);
  if (m.openInterestCapLots !== undefined) {
    int(`${f}.openInterestCapLots`, m.openInterestCapLots, 1, Number.MAX_SAFE_INTEGER);
  }
}

function checkMarket(m: MarketParams, f: string): void {
  if (!NAME_RE.test(m.instrument)) throw new GenesisError(`${f}.instrument`, 'not a valid name');
  if (!/^[A-Z0-9]{1,16}$/.test(m.underlying)) {
    throw new GenesisError(`${f}.underlying`, 'not a valid underlying');
  }
  amount(`${f}.tickSizeQuote`, m.tickSizeQuote, 1n);
  int(`${f}.lotsPerBase`, m.lotsPerBase, 1, 1_000_000_000);
  if (m.tickSizeQuote % BigInt(m.lotsPerBase) !== 0n) {
    throw new GenesisError(`${f}.tickSizeQuote`, 'must be a multiple of lotsPerBase');
  }
  int(`${f}.minSizeLots`, m.minSizeLots, 1, 1_000_000_000_000);
  int(`${f}.maxSizeLots`, m.maxSizeLots, m.minSizeLots, 1_000_000_000_000);
  // The risk parameters, by the rules governance's changes are held to too.
  checkRisk(m, f);
  int(`${f}.marketSlippagePpm`, m.marketSlippagePpm, 0, PPM - 1);
  int(`${f}.markBandPpm`, m.markBandPpm, 0, PPM - 1);
  int(`${f}.openOrdersMax`, m.openOrdersMax, 1, 10_000);
  // An account's resting lots on a side of one book (the book keeps them as a
  // number) must stay a safe integer however it fills its open-order cap.
  if (m.maxSizeLots * m.openOrdersMax > Number.MAX_SAFE_INTEGER) {
    throw new GenesisError(`${f}.maxSizeLots`, 'times openOrdersMax must be at most 2^53 - 1');
  }
  int(`${f}.fundingSampleMs`, m.fundingSampleMs, 1_000, 86_400_000);
  int(`${f}.fundingIntervalMs`, m.fundingIntervalMs, m.fundingSampleMs, 7 * 86_400_000);
  if (m.fundingIntervalMs % m.fundingSampleMs !== 0) {
    throw new GenesisError(`${f}.fundingIntervalMs`, 'must be a multiple of fundingSampleMs');
  }
  // An interval's samples are summed as a safe integer, so at most this many
  // are counted (funding.ts); an interval of more would pay the average of
  // its first ones only and never see the premium of the rest.
  if (m.fundingIntervalMs > m.fundingSampleMs * FUNDING_SAMPLES_PER_INTERVAL_MAX) {
    throw new GenesisError(
      `${f}.fundingIntervalMs`,
      `at most ${FUNDING_SAMPLES_PER_INTERVAL_MAX} times fundingSampleMs`,
    );
  }
  int(`${f}.fundingInterestPpm`, m.fundingInterestPpm, -PPM, PPM);
  int(`${f}.fundingCapPpm`, m.fundingCapPpm, 0, PPM);
  int(`${f}.liquidationFeePpm`, m.liquidationFeePpm, 0, m.maintenanceMarginPpm);
  amount(`${f}.liquidationFeeQuoteMax`, m.liquidationFeeQuoteMax, 0n);
  if (m.triggers !== undefined) {
    if (!Array.isArray(m.triggers)) throw new GenesisError(`${f}.triggers`, 'must be a list');
    try {
      validateTriggers(m.triggers);
    } catch (e) {
      if (e instanceof MonitorParamsError) throw new GenesisError(`${f}.triggers`, e.message);
      throw e;
    }
  }
}

function checkOracle(g: Genesis, o: OracleGenesis): void {
  int('oracle.freshnessMs', o.freshnessMs, 1, ORACLE_FRESHNESS_MS_MAX);
  int('oracle.staleAfterMs', o.staleAfterMs, 1, ORACLE_STALE_AFTER_MS_MAX);
  int('oracle.maxMovePerBlockBps', o.maxMovePerBlockBps, 1, 10_000);
  // Every validator observes every underlying in one vote extension: more would not encode.
  const underlyings = new Set(g.markets.map((m) => m.underlying)).size;
  if (underlyings > OBSERVATION_PRICES_MAX) {
    throw new GenesisError(
      'oracle',
      `at most ${OBSERVATION_PRICES_MAX} underlyings (one observation's prices), not ${underlyings}`,
    );
  }
}

/** The exchange/oracle parameters of a genesis with an oracle: underlyings ascending. */
export function oracleParamsOf(g: Genesis): OracleParams | null {
  if (g.oracle === undefined) return null;
  const underlyings = [...new Set(g.markets.map((m) => m.underlying))].sort();
  return { underlyings, ...g.oracle };
}

function checkListing(g: Genesis, l: ListingGenesis): void {
  if (g.oracle === undefined) throw new GenesisError('listing', 'needs an oracle');
  const interval = l.markIntervalMs;
  if (
    interval !== undefined &&
    (!Number.isSafeInteger(interval) || interval < 1 || interval > OPTION_MARK_INTERVAL_MS_MAX)
  ) {
    throw new GenesisError(
      'listing.markIntervalMs',
      `an integer from 1 to ${OPTION_MARK_INTERVAL_MS_MAX} ms`,
    );
  }
  try {
    validateListingSchedule(l.schedule);
  } catch (e) {
    if (e instanceof ScheduleError) throw new GenesisError('listing.schedule', e.message);
    throw e;
  }
  try {
    validateScenarioParams(l.scenario);
  } catch (e) {
    if (e instanceof ScenarioParamsError) throw new GenesisError('listing.scenario', e.message);
    throw e;
  }
  if (l.templates.length > 2 * LISTING_UNDERLYINGS_MAX) {
    throw new GenesisError('listing.templates', `at most ${2 * LISTING_UNDERLYINGS_MAX}`);
  }
  const seen = new Set<string>();
  l.templates.forEach((t, i) => {
    const f = `listing.templates[${i}]`;
    if (t.kind !== 'future' && t.kind !== 'option') throw new GenesisError(`${f}.kind`, 'unknown');
    checkMarket(t.params, `${f}.params`);
    // Listed markets have no price monitoring (yet): a template's triggers would be ignored.
    if ((t.params.triggers?.length ?? 0) > 0) {
      throw new GenesisError(`${f}.params.triggers`, 'listed markets take no triggers');
    }
    const key = `${t.params.underlying}:${t.kind}`;
    if (seen.has(key)) throw new GenesisError(f, 'duplicate underlying and kind');
    seen.add(key);
  });
  const perpetuals = new Set(g.markets.map((m) => m.underlying));
  l.schedule.underlyings.forEach((u, i) => {
    const f = `listing.schedule.underlyings[${i}]`;
    if (!perpetuals.has(u.underlying)) throw new GenesisError(f, 'no market gives its index');
    for (const kind of ['future', 'option']) {
      if (!seen.has(`${u.underlying}:${kind}`)) throw new GenesisError(f, `no ${kind} template`);
    }
  });
}

/** The template of a listed instrument's market (validation keeps one per underlying and kind). */
export function listedTemplate(
  l: ListingGenesis,
  underlying: string,
  kind: 'future' | 'option',
): MarketParams {
  const t = l.templates.find((x) => x.kind === kind && x.params.underlying === underlying);
  if (t === undefined) throw new GenesisError('listing.templates', `no ${kind} of ${underlying}`);
  return t.params;
}

/** Validates a genesis; throws GenesisError naming the first bad field. */
export function validateGenesis(g: Genesis): void {
  if (typeof g.chainId !== 'string' || !CHAIN_RE.test(g.chainId)) {
    throw new GenesisError('chainId', '1..64 characters of [a-z0-9-]');
  }
  int('genesisTimeMs', g.genesisTimeMs, 0, Number.MAX_SAFE_INTEGER);
  if (g.markets.length < 1 || g.markets.length > GENESIS_MARKETS_MAX) {
    throw new GenesisError('markets', `1..${GENESIS_MARKETS_MAX} markets`);
  }
  const names = new Set<string>();
  g.markets.forEach((m, i) => {
    checkMarket(m, `markets[${i}]`);
    if (names.has(m.instrument)) throw new GenesisError(`markets[${i}].instrument`, 'duplicate');
    names.add(m.instrument);
  });
  checkFeeTiers(g.feeTiers, 'feeTiers');
  amount('faucetQuoteMax', g.faucetQuoteMax, 0n);
  amount('insuranceFundQuote', g.insuranceFundQuote, 0n);
  if (g.validators.length < 1 || g.validators.length > GENESIS_VALIDATORS_MAX) {
    throw new GenesisError('validators', `1..${GENESIS_VALIDATORS_MAX} validators`);
  }
  const keys = new Set<string>();
  g.validators.forEach((v, i) => {
    if (!(v.publicKey instanceof Uint8Array) || v.publicKey.length !== 32) {
      throw new GenesisError(`validators[${i}].publicKey`, 'must be 32 bytes');
    }
    const key = Array.from(v.publicKey).join(',');
    if (keys.has(key)) throw new GenesisError(`validators[${i}].publicKey`, 'duplicate');
    keys.add(key);
    // The node hands each stake to consensus as its voting power: a stake
    // consensus would refuse must fail here, not when the node starts. The
    // total then fits TOTAL_POWER_MAX too (limits.ts asserts a full set does).
    amount(`validators[${i}].stake`, v.stake, 1n);
    if (v.stake > BigInt(VALIDATOR_POWER_MAX)) {
      throw new GenesisError(
        `validators[${i}].stake`,
        `at most VALIDATOR_POWER_MAX (2^40), the largest voting power, got ${v.stake}`,
      );
    }
  });
  if (g.oracle !== undefined) checkOracle(g, g.oracle);
  if (g.slashPpm !== undefined) int('slashPpm', g.slashPpm, 0, PPM);
  if (g.listing !== undefined) checkListing(g, g.listing);
}

// --- canonical encoding ------------------------------------------------------------

// Format 2 adds the circuit breakers and the oracle; a genesis without them
// keeps format 1 (and so its hash), and format 2 must carry at least one.
// Format 3 is format 2's layout followed by the optional sections, each
// behind a presence flag: slashPpm, the listing, then each genesis market's
// price-monitoring triggers. A genesis with none of them keeps format 1 or 2
// (and so its bytes and hash).
const FORMAT = 1;
const FORMAT_BREAKERS = 2;
const FORMAT_SECTIONS = 3;
/** Format 3 then the listing's markIntervalMs: written only when it is set, so older chains keep their bytes. */
const FORMAT_MARKS = 4;

function writeListing(w: Writer, l: ListingGenesis): void {
  const s = l.schedule;
  w.uvarint(s.underlyings.length);
  for (const u of s.underlyings) {
    w.string(u.underlying, 16).uvarintBig(u.strikeStepQuote).uvarint(u.strikeRangePpm);
  }
  w.uvarint(s.dailies).uvarint(s.weeklies).uvarint(s.monthlies).uvarint(s.quarterlies);
  w.uvarint(s.futureCycles.length);
  for (const c of s.futureCycles) w.u8(EXPIRY_CYCLES.indexOf(c));
  const p = l.scenario;
  w.uvarint(p.priceShockPpm).uvarint(p.pricePoints).uvarint(p.volUpPpm).uvarint(p.volDownPpm);
  w.uvarint(p.volShockRefMs).uvarint(p.volShockScaleMaxPpm);
  w.uvarint(p.shortOptionMinPpm).uvarint(p.maintenancePpm);
  w.uvarint(l.templates.length);
  for (const t of l.templates) {
    w.u8(t.kind === 'future' ? 0 : 1);
    writeMarket(w, t.params);
    w.uvarint(t.params.priceBandPpm ?? 0).uvarint(t.params.openInterestCapLots ?? 0);
  }
}

function readListing(r: Reader, f: string): ListingGenesis {
  const underlyings = [];
  const nu = count(r, `${f}.schedule.underlyings`, LISTING_UNDERLYINGS_MAX);
  for (let i = 0; i < nu; i++) {
    const g = `${f}.schedule.underlyings[${i}]`;
    underlyings.push({
      underlying: r.string(`${g}.underlying`, 16),
      strikeStepQuote: r.uvarintBig(`${g}.strikeStepQuote`, AMOUNT_BITS),
      strikeRangePpm: r.uvarint(`${g}.strikeRangePpm`, PPM),
    });
  }
  const dailies = r.uvarint(`${f}.schedule.dailies`, LISTING_EXPIRIES_PER_CYCLE_MAX);
  const weeklies = r.uvarint(`${f}.schedule.weeklies`, LISTING_EXPIRIES_PER_CYCLE_MAX);
  const monthlies = r.uvarint(`${f}.schedule.monthlies`, LISTING_EXPIRIES_PER_CYCLE_MAX);
  const quarterlies = r.uvarint(`${f}.schedule.quarterlies`, LISTING_EXPIRIES_PER_CYCLE_MAX);
  const futureCycles: ExpiryCycle[] = [];
  const nc = count(r, `${f}.schedule.futureCycles`, EXPIRY_CYCLES.length);
  for (let i = 0; i < nc; i++) {
    futureCycles.push(EXPIRY_CYCLES[r.tag(`${f}.schedule.futureCycles[${i}]`, 4)]!);
  }
  const scenario: ScenarioParams = {
    priceShockPpm: r.uvarint(`${f}.scenario.priceShockPpm`),
    pricePoints: r.uvarint(`${f}.scenario.pricePoints`),
    volUpPpm: r.uvarint(`${f}.scenario.volUpPpm`),
    volDownPpm: r.uvarint(`${f}.scenario.volDownPpm`),
    volShockRefMs: r.uvarint(`${f}.scenario.volShockRefMs`),
    volShockScaleMaxPpm: r.uvarint(`${f}.scenario.volShockScaleMaxPpm`),
    shortOptionMinPpm: r.uvarint(`${f}.scenario.shortOptionMinPpm`),
    maintenancePpm: r.uvarint(`${f}.scenario.maintenancePpm`),
  };
  const templates: ListedTemplate[] = [];
  const nt = count(r, `${f}.templates`, 2 * LISTING_UNDERLYINGS_MAX);
  for (let i = 0; i < nt; i++) {
    const g = `${f}.templates[${i}]`;
    const kind = r.tag(`${g}.kind`, 2) === 0 ? 'future' : 'option';
    const params = readMarket(r, `${g}.params`);
    const band = r.uvarint(`${g}.params.priceBandPpm`, PPM);
    const cap = r.uvarint(`${g}.params.openInterestCapLots`);
    if (band !== 0) params.priceBandPpm = band;
    if (cap !== 0) params.openInterestCapLots = cap;
    templates.push({ kind, params });
  }
  const schedule = { underlyings, dailies, weeklies, monthlies, quarterlies, futureCycles };
  return { schedule, scenario, templates };
}

function hasTriggers(g: Genesis): boolean {
  return g.markets.some((m) => (m.triggers?.length ?? 0) > 0);
}

function hasBreakers(g: Genesis): boolean {
  return (
    g.oracle !== undefined ||
    hasTriggers(g) ||
    g.markets.some((m) => m.priceBandPpm !== undefined || m.openInterestCapLots !== undefined)
  );
}

function writeMarket(w: Writer, m: MarketParams): void {
  w.string(m.instrument, 64).string(m.underlying, 16);
  w.uvarintBig(m.tickSizeQuote).uvarint(m.lotsPerBase);
  w.uvarint(m.minSizeLots).uvarint(m.maxSizeLots);
  w.uvarint(m.initialMarginPpm).uvarint(m.maintenanceMarginPpm);
  w.uvarintBig(m.imfStepQuote).uvarint(m.imfStepPpm);
  w.uvarint(m.marketSlippagePpm).uvarint(m.markBandPpm).uvarint(m.openOrdersMax);
  w.uvarint(m.fundingIntervalMs).uvarint(m.fundingSampleMs);
  w.ivarint(m.fundingInterestPpm).uvarint(m.fundingCapPpm);
  w.uvarint(m.liquidationFeePpm).uvarintBig(m.liquidationFeeQuoteMax);
  w.uvarintBig(m.liquidationQuoteMaxPerBlock);
}

function readMarket(r: Reader, f: string): MarketParams {
  return {
    instrument: r.string(`${f}.instrument`, 64),
    underlying: r.string(`${f}.underlying`, 16),
    tickSizeQuote: r.uvarintBig(`${f}.tickSizeQuote`, AMOUNT_BITS),
    lotsPerBase: r.uvarint(`${f}.lotsPerBase`),
    minSizeLots: r.uvarint(`${f}.minSizeLots`),
    maxSizeLots: r.uvarint(`${f}.maxSizeLots`),
    initialMarginPpm: r.uvarint(`${f}.initialMarginPpm`),
    maintenanceMarginPpm: r.uvarint(`${f}.maintenanceMarginPpm`),
    imfStepQuote: r.uvarintBig(`${f}.imfStepQuote`, AMOUNT_BITS),
    imfStepPpm: r.uvarint(`${f}.imfStepPpm`),
    marketSlippagePpm: r.uvarint(`${f}.marketSlippagePpm`),
    markBandPpm: r.uvarint(`${f}.markBandPpm`),
    openOrdersMax: r.uvarint(`${f}.openOrdersMax`),
    fundingIntervalMs: r.uvarint(`${f}.fundingIntervalMs`),
    fundingSampleMs: r.uvarint(`${f}.fundingSampleMs`),
    fundingInterestPpm: r.ivarint(`${f}.fundingInterestPpm`),
    fundingCapPpm: r.uvarint(`${f}.fundingCapPpm`),
    liquidationFeePpm: r.uvarint(`${f}.liquidationFeePpm`),
    liquidationFeeQuoteMax: r.uvarintBig(`${f}.liquidationFeeQuoteMax`, AMOUNT_BITS),
    liquidationQuoteMaxPerBlock: r.uvarintBig(`${f}.liquidationQuoteMaxPerBlock`, AMOUNT_BITS),
  };
}

function count(r: Reader, field: string, max: number): number {
  return r.uvarint(field, max);
}

export const genesisCodec: Codec<Genesis> = {
  write(w: Writer, g: Genesis): void {
    const triggers = hasTriggers(g);
    const sections = g.slashPpm !== undefined || g.listing !== undefined || triggers;
    const breakers = sections || hasBreakers(g);
    const marks = g.listing?.markIntervalMs !== undefined;
    w.u8(marks ? FORMAT_MARKS : sections ? FORMAT_SECTIONS : breakers ? FORMAT_BREAKERS : FORMAT)
      .string(g.chainId, 64)
      .bool(g.devnet)
      .uvarint(g.genesisTimeMs);
    w.uvarint(g.markets.length);
    for (const m of g.markets) writeMarket(w, m);
    w.uvarint(g.feeTiers.length);
    for (const t of g.feeTiers) {
      w.uvarintBig(t.volumeQuoteMin).ivarint(t.makerFeePpm).uvarint(t.takerFeePpm);
    }
    w.uvarintBig(g.faucetQuoteMax).uvarintBig(g.insuranceFundQuote);
    w.uvarint(g.validators.length);
    for (const v of g.validators) w.fixed(v.publicKey, 32).uvarintBig(v.stake);
    if (!breakers) return;
    // 0 = absent: validation keeps both at least 1 when present.
    for (const m of g.markets) w.uvarint(m.priceBandPpm ?? 0).uvarint(m.openInterestCapLots ?? 0);
    w.bool(g.oracle !== undefined);
    if (g.oracle !== undefined) {
      w.uvarint(g.oracle.freshnessMs).uvarint(g.oracle.staleAfterMs);
      w.uvarint(g.oracle.maxMovePerBlockBps);
    }
    if (sections) {
      w.bool(g.slashPpm !== undefined);
      if (g.slashPpm !== undefined) w.uvarint(g.slashPpm);
      w.bool(g.listing !== undefined);
      if (g.listing !== undefined) writeListing(w, g.listing);
      w.bool(triggers);
      if (triggers) {
        for (const m of g.markets) {
          const list = m.triggers ?? [];
          w.uvarint(list.length);
          for (const t of list) w.uvarint(t.horizonMs).uvarint(t.maxMoveBps).uvarint(t.auctionMs);
        }
      }
      if (marks) w.uvarint(g.listing!.markIntervalMs!);
    }
  },
  read(r: Reader, f: string): Genesis {
    const format = r.u8(`${f}.format`);
    if (
      format !== FORMAT &&
      format !== FORMAT_BREAKERS &&
      format !== FORMAT_SECTIONS &&
      format !== FORMAT_MARKS
    ) {
      throw new DecodeError(`${f}.format`, 'unknown format');
    }
    const chainId = r.string(`${f}.chainId`, 64);
    const devnet = r.bool(`${f}.devnet`);
    const genesisTimeMs = r.uvarint(`${f}.genesisTimeMs`);
    const markets: MarketParams[] = [];
    const nm = count(r, `${f}.markets`, GENESIS_MARKETS_MAX);
    for (let i = 0; i < nm; i++) markets.push(readMarket(r, `${f}.markets[${i}]`));
    const feeTiers: FeeTier[] = [];
    const nt = count(r, `${f}.feeTiers`, FEE_TIERS_MAX);
    for (let i = 0; i < nt; i++) {
      const t = `${f}.feeTiers[${i}]`;
      feeTiers.push({
        volumeQuoteMin: r.uvarintBig(`${t}.volumeQuoteMin`, AMOUNT_BITS),
        makerFeePpm: r.ivarint(`${t}.makerFeePpm`, PPM),
        takerFeePpm: r.uvarint(`${t}.takerFeePpm`, PPM),
      });
    }
    const faucetQuoteMax = r.uvarintBig(`${f}.faucetQuoteMax`, AMOUNT_BITS);
    const insuranceFundQuote = r.uvarintBig(`${f}.insuranceFundQuote`, AMOUNT_BITS);
    const validators: ValidatorInfo[] = [];
    const nv = count(r, `${f}.validators`, GENESIS_VALIDATORS_MAX);
    for (let i = 0; i < nv; i++) {
      const publicKey = r.fixed(`${f}.validators[${i}].publicKey`, 32).slice();
      validators.push({
        publicKey,
        stake: r.uvarintBig(`${f}.validators[${i}].stake`, AMOUNT_BITS),
      });
    }
    const g: Genesis = {
      chainId,
      devnet,
      genesisTimeMs,
      markets,
      feeTiers,
      faucetQuoteMax,
      validators,
      insuranceFundQuote,
    };
    if (format !== FORMAT) {
      markets.forEach((m, i) => {
        const band = r.uvarint(`${f}.markets[${i}].priceBandPpm`, PPM);
        const cap = r.uvarint(`${f}.markets[${i}].openInterestCapLots`);
        if (band !== 0) m.priceBandPpm = band;
        if (cap !== 0) m.openInterestCapLots = cap;
      });
      if (r.bool(`${f}.oracle`)) {
        g.oracle = {
          freshnessMs: r.uvarint(`${f}.oracle.freshnessMs`),
          staleAfterMs: r.uvarint(`${f}.oracle.staleAfterMs`),
          maxMovePerBlockBps: r.uvarint(`${f}.oracle.maxMovePerBlockBps`),
        };
      }
      if (format === FORMAT_SECTIONS || format === FORMAT_MARKS) {
        if (r.bool(`${f}.hasSlashPpm`)) g.slashPpm = r.uvarint(`${f}.slashPpm`, PPM);
        if (r.bool(`${f}.hasListing`)) g.listing = readListing(r, `${f}.listing`);
        if (r.bool(`${f}.hasTriggers`)) {
          markets.forEach((m, i) => {
            const t = `${f}.markets[${i}].triggers`;
            const n = r.uvarint(t, PRICE_MONITOR_TRIGGERS_MAX);
            if (n === 0) return;
            m.triggers = [];
            for (let j = 0; j < n; j++) {
              m.triggers.push({
                horizonMs: r.uvarint(`${t}[${j}].horizonMs`),
                maxMoveBps: r.uvarint(`${t}[${j}].maxMoveBps`),
                auctionMs: r.uvarint(`${t}[${j}].auctionMs`),
              });
            }
          });
          if (!hasTriggers(g))
            throw new DecodeError(`${f}.format`, 'triggers section without a trigger');
        }
        if (format === FORMAT_MARKS) {
          const interval = r.uvarint(`${f}.listing.markIntervalMs`, OPTION_MARK_INTERVAL_MS_MAX);
          if (g.listing === undefined) {
            throw new DecodeError(`${f}.format`, 'a mark interval without a listing');
          }
          g.listing.markIntervalMs = interval;
        }
      } else if (!hasBreakers(g)) throw new DecodeError(`${f}.format`, 'format 2 without breakers');
    }
    try {
      validateGenesis(g);
    } catch (e) {
      if (e instanceof GenesisError) throw new DecodeError(`${f}.${e.field}`, e.message);
      throw e;
    }
    return g;
  },
};

export function encodeGenesis(g: Genesis): Uint8Array {
  validateGenesis(g);
  return encode(genesisCodec, g);
}

export function decodeGenesis(bytes: Uint8Array): Genesis {
  return decode(genesisCodec, bytes, 'genesis');
}

// --- devnet --------------------------------------------------------------------------

const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;
const USDC = 1_000_000n;

function perpetual(
  underlying: string,
  tickSizeQuote: bigint,
  lotsPerBase: number,
  minSizeLots: number,
): MarketParams {
  return {
    instrument: `${underlying}-PERPETUAL`,
    underlying,
    tickSizeQuote,
    lotsPerBase,
    minSizeLots,
    maxSizeLots: 1_000_000_000,
    initialMarginPpm: 50_000,
    maintenanceMarginPpm: 30_000,
    imfStepQuote: 10_000_000n * USDC,
    imfStepPpm: 10_000,
    marketSlippagePpm: 50_000,
    markBandPpm: 5_000,
    openOrdersMax: 200,
    fundingIntervalMs: HOUR_MS,
    fundingSampleMs: MINUTE_MS,
    fundingInterestPpm: 12,
    fundingCapPpm: 5_000,
    liquidationFeePpm: 10_000,
    liquidationFeeQuoteMax: 50_000n * USDC,
    liquidationQuoteMaxPerBlock: 5_000_000n * USDC,
  };
}

/**
 * The devnet genesis. BTC: tick $0.10, lot 0.0001 BTC (10 quote units per
 * tick·lot); ETH: tick $0.01, lot 0.001 ETH (10 quote units per tick·lot).
 */
export function devnetGenesis(validatorKeys: readonly Uint8Array[]): Genesis {
  return {
    chainId: 'zomma-devnet',
    devnet: true,
    genesisTimeMs: 0,
    markets: [
      { ...perpetual('BTC', 100_000n, 10_000, 1), triggers: [...DEVNET_TRIGGERS] },
      { ...perpetual('ETH', 10_000n, 1_000, 1), triggers: [...DEVNET_TRIGGERS] },
    ],
    feeTiers: [
      { volumeQuoteMin: 0n, makerFeePpm: 200, takerFeePpm: 500 },
      { volumeQuoteMin: 1_000_000n * USDC, makerFeePpm: 0, takerFeePpm: 400 },
      { volumeQuoteMin: 100_000_000n * USDC, makerFeePpm: -100, takerFeePpm: 300 },
    ],
    faucetQuoteMax: 1_000_000n * USDC,
    // 1,000,000 USDC of stake each: the voting power is the stake in quote units (≤ VALIDATOR_POWER_MAX).
    validators: validatorKeys.map((publicKey) => ({ publicKey, stake: 1_000_000n * USDC })),
    insuranceFundQuote: 0n,
    oracle: DEVNET_ORACLE,
    listing: { ...DEVNET_LISTING, markIntervalMs: OPTION_MARK_INTERVAL_MS_DEVNET },
  };
}

function listedTemplateOf(
  kind: 'future' | 'option',
  underlying: string,
  tickSizeQuote: bigint,
  lotsPerBase: number,
): ListedTemplate {
  const params: MarketParams = {
    ...perpetual(underlying, tickSizeQuote, lotsPerBase, 1),
    instrument: `${underlying}-${kind === 'future' ? 'FUTURES' : 'OPTIONS'}`,
    maxSizeLots: 1_000_000,
    openOrdersMax: 100,
  };
  // Option premiums move by whole multiples of themselves: market orders may trade further from the mark.
  if (kind === 'option') params.marketSlippagePpm = 500_000;
  return { kind, params };
}

/**
 * Devnet listing, kept small so the devnet stays fast: per underlying 2
 * dailies, 2 weeklies and 1 monthly (with a dated future), strikes within
 * ±10% of the index (about 7 per expiry, each a call and a put). Options:
 * BTC tick $5, lot 0.1 BTC; ETH tick $0.50, lot 0.1 ETH.
 */
export const DEVNET_LISTING: ListingGenesis = {
  schedule: {
    underlyings: [
      { underlying: 'BTC', strikeStepQuote: 2_000n * USDC, strikeRangePpm: 100_000 },
      { underlying: 'ETH', strikeStepQuote: 100n * USDC, strikeRangePpm: 100_000 },
    ],
    dailies: 2,
    weeklies: 2,
    monthlies: 1,
    quarterlies: 0,
    futureCycles: ['monthly'],
  },
  scenario: DEFAULT_SCENARIO_PARAMS,
  templates: [
    listedTemplateOf('future', 'BTC', 100_000n, 10_000),
    listedTemplateOf('option', 'BTC', 5_000_000n, 10),
    listedTemplateOf('future', 'ETH', 10_000n, 1_000),
    listedTemplateOf('option', 'ETH', 500_000n, 10),
  ],
};

/** Block times before this have no instrument names (years 2000–2099): nothing is listed. */
export const LISTING_TIME_MS_MIN = expiryMsOfDay(daysFromCivil(2000, 1, 1));
/** Block times from this on would list expiries past 2099. */
export const LISTING_TIME_MS_MAX = expiryMsOfDay(daysFromCivil(2099, 1, 1));

/**
 * Devnet price monitoring: a trade more than 5% away from the price at the
 * start of a 5-minute window starts a 30-second call auction (Vega's
 * defaults are of this order: a few percent over minutes, auctions of
 * tens of seconds to minutes).
 */
export const DEVNET_TRIGGERS: readonly PriceTrigger[] = [
  { horizonMs: 5 * MINUTE_MS, maxMoveBps: 500, auctionMs: 30_000 },
];

/**
 * Observations within 30 s of block time count (a precommit's observation is
 * used by the next block); an index without a quorum for a minute is stale;
 * at most 2% per block.
 */
export const DEVNET_ORACLE: OracleGenesis = {
  freshnessMs: 30_000,
  staleAfterMs: 60_000,
  maxMovePerBlockBps: 200,
};
