// Margin of an account's records in listed markets (docs/exchange.md,
// "Option margin"):
//   - an underlying in which the account holds an option (a position or a
//     resting order) is margined by scenario (options/margin.ts) over its
//     options and dated futures of that underlying: long options pay their
//     premium, short ones at least a minimum per lot; maintenance is the
//     scenario maintenance. Where its dated futures need less beside the
//     options than with them (linear, as in a subaccount of their own), they
//     stay linear: initial and maintenance each take the smaller, so a
//     portfolio never needs more than its parts (and initial, whose long
//     premium is one floor over every underlying, never more than with every
//     future in the scenario);
//   - dated futures of other underlyings keep the linear formula of margin.ts.
// Resting orders: the linear formula counts each market at the side of its
// orders that leaves the larger position (exposureLots); the scenario margin
// is the largest over every way the orders could fill, each instrument's size
// anywhere from size − sells to size + buys (scenarioInitialOverRanges): a
// bid beside an offer of the same option does not stand for the short.
//
// The scenario values of an instrument depend only on its marks, so they are
// built when first needed after its marks change (40 Black–Scholes evaluations
// for an option) and cached on the market (derived, not state). The scenario terms
// are sums over the records, so each account keeps them (ListedSums, derived)
// and a check brings them up to date by the records that changed.
// Cost: O(records) comparisons, O(scenarios) bigint multiply-adds per record
// changed since the account's last check (all of them once its marks moved),
// and O(underlyings × scenarios) to take the requirement's largest scenarios.

import { divBig } from '../lib/int.ts';
import { imfPpm } from './margin.ts';
import type { Instrument } from './instruments/index.ts';
import type { ScenarioInstrument, ScenarioParams, SviParams } from './options/index.ts';
import {
  CUSHION_MAINTENANCE_PPM,
  cushionKeptPerLotWad,
  cushionKeptWad,
  addRangeLoss,
  buildFutureScenarios,
  buildOptionScenarios,
  priceMovesPpm,
  quoteToWad,
  scenarioCount,
  shortMinOf,
  sviImpliedVol,
  timeYearsWad,
  VOL_CASES,
  WAD_PER_QUOTE,
} from './options/index.ts';
import { priced } from './options/priced.ts';
import type { Account, ExchangeState, MarketState } from './state.ts';
import { PPM_BIG, ppmCeil } from './units.ts';

export interface ListedMargin {
  /** Σ size × mark × k over the listed records. */
  equityQuote: bigint;
  /** Initial margin with resting orders (and the extra order, if any). */
  initialQuote: bigint;
  maintenanceQuote: bigint;
}

const result: ListedMargin = { equityQuote: 0n, initialQuote: 0n, maintenanceQuote: 0n };

/**
 * The cushion of a short option without a fresh smile, in ppm of the forward
 * per base unit: 15% of the forward (or the grid's priceShockPpm, if larger)
 * less the amount out of the money, at least 10%, all of it in initial margin
 * and half in maintenance, the latter once the grace of a stale smile or index
 * is over (UNSHOCKED_MAINTENANCE_GRACE_MS): Deribit's standard margin for a
 * short option, for want of a volatility to shock. With the rate at least the
 * shock, loss + cushion is at least the option's intrinsic value at the
 * grid's largest move against the short less its kept mark: the least it
 * loses there, which the model would count in that scenario.
 */
export const UNSHOCKED_SHORT_PPM = 150_000n;
export const UNSHOCKED_SHORT_FLOOR_PPM = 100_000n;
/**
 * How long an option's smile (or its underlying's index) may be stale before
 * its maintenance takes a short's share of the cushion and a long's losses at
 * its intrinsic values (initial takes all of them at once): 10 minutes of
 * block time for the validators' smiles and prices to come back.
 */
export const UNSHOCKED_MAINTENANCE_GRACE_MS = 10 * 60_000;

/**
 * Per short lot, in wads of quote: the minimum (shortOptionMinPpm of the
 * forward), the loss (the option's intrinsic value at the forward above its
 * kept mark: the least the option is worth now, which equity, counting it at
 * the kept mark, does not see) and the cushion (UNSHOCKED_SHORT_PPM less the
 * amount out of the money, at least UNSHOCKED_SHORT_FLOOR_PPM; the rate
 * priceShockPpm where that is larger). Each rounded up.
 */
export function unshockedShortBounds(
  forwardQuote: bigint,
  strikeQuote: bigint,
  isCall: boolean,
  markQuotePerLot: bigint,
  lotsPerBase: number,
  params: Pick<ScenarioParams, 'shortOptionMinPpm' | 'priceShockPpm'>,
): { minPerLotWad: bigint; lossPerLotWad: bigint; cushionPerLotWad: bigint } {
  const lots = BigInt(lotsPerBase);
  const inMoney = isCall ? forwardQuote - strikeQuote : strikeQuote - forwardQuote;
  const intrinsicPerLotWad = inMoney > 0n ? divBig(inMoney * WAD_PER_QUOTE, lots, 'ceil') : 0n;
  const markPerLotWad = markQuotePerLot * WAD_PER_QUOTE;
  const lossPerLotWad =
    intrinsicPerLotWad > markPerLotWad ? intrinsicPerLotWad - markPerLotWad : 0n;
  const minPerLotWad = divBig(
    forwardQuote * WAD_PER_QUOTE * BigInt(params.shortOptionMinPpm),
    PPM_BIG * lots,
    'ceil',
  );
  const outOfMoney = inMoney < 0n ? -inMoney : 0n;
  const shock = BigInt(params.priceShockPpm);
  const rate = shock > UNSHOCKED_SHORT_PPM ? shock : UNSHOCKED_SHORT_PPM;
  let cushionPpmQuote = forwardQuote * rate - outOfMoney * PPM_BIG;
  const floor = forwardQuote * UNSHOCKED_SHORT_FLOOR_PPM;
  if (cushionPpmQuote < floor) cushionPpmQuote = floor;
  const cushionPerLotWad = divBig(cushionPpmQuote * WAD_PER_QUOTE, PPM_BIG * lots, 'ceil');
  return { minPerLotWad, lossPerLotWad, cushionPerLotWad };
}

/**
 * Per long lot, in wads of quote, for each scenario of the grid: the option's
 * intrinsic value at the forward moved by the scenario's price move, less its
 * kept mark (the same for the three volatility cases). The intrinsic value is
 * the least a European option is worth at that forward (rate 0), so a long
 * without a fresh smile never loses more than this in the scenario, and at
 * most its mark (what equity counts it at); where the move takes it in the
 * money, the gain is one it is sure of. Floored, as scenario values are.
 */
export function unshockedLongPnl(
  forwardQuote: bigint,
  strikeQuote: bigint,
  isCall: boolean,
  markQuotePerLot: bigint,
  lotsPerBase: number,
  params: ScenarioParams,
): bigint[] {
  const scale = PPM_BIG * BigInt(lotsPerBase);
  const markPerLotWad = markQuotePerLot * WAD_PER_QUOTE;
  const strikePpm = strikeQuote * PPM_BIG;
  const pnl: bigint[] = [];
  for (const move of priceMovesPpm(params)) {
    const movedPpm = forwardQuote * (PPM_BIG + BigInt(move));
    const inMoneyPpm = isCall ? movedPpm - strikePpm : strikePpm - movedPpm;
    const intrinsicPerLotWad =
      inMoneyPpm > 0n ? divBig(inMoneyPpm * WAD_PER_QUOTE, scale, 'floor') : 0n;
    for (let v = 0; v < VOL_CASES; v++) pnl.push(intrinsicPerLotWad - markPerLotWad);
  }
  return pnl;
}

/**
 * Whether the market's kept scenario values were built from what it holds
 * now: everything scenarioOf reads that can change (the genesis parameters
 * and the instrument cannot). An option's mark kept between mark intervals
 * keeps its values too, and so the kept sums of its holders (ListedSums).
 */
function scenarioCurrent(state: ExchangeState, m: MarketState): boolean {
  if (m.scenario === null) return false;
  const om = m.optionMark;
  const kept = m.scenarioMark;
  return (
    (om === null
      ? // Without a mark, an option is margined at this block's forward.
        kept === null && m.forwardNowQuote === m.scenarioForwardNow
      : kept !== null && om.ivWad === kept.ivWad && om.timeYearsWad === kept.timeYearsWad) &&
    m.markTicks === m.scenarioMarkTicks &&
    m.forwardQuote === m.scenarioForward &&
    m.unshockedGraceOver === m.scenarioGraceOver &&
    m.graceSmile === m.scenarioGraceSmile &&
    graceSinceMs(m) === m.scenarioGraceSinceMs &&
    // Past expiry a short's values are its intrinsic values' after the grace
    // too, where no other key need move at the expiry (listing.ts drops the
    // grace's smile there, but it may have had none).
    m.expiryMs <= state.timeMs === m.scenarioExpired
  );
}

/**
 * The time the grace's model values an option at (since when it has been
 * without a fresh smile or index: the start the option keeps, listing.ts
 * markOptions), where it has one: null otherwise, so that
 * the stale times of a fresh smile and index, which move with every update,
 * do not rebuild the kept values of an option that does not read them.
 */
export function graceSinceMs(m: MarketState): number | null {
  return m.graceSmile === null ? null : m.unshockedSinceMs;
}

/**
 * The model's scenarios of an option within its grace: its smile `svi` (the
 * expiry's last in the oracle state) at `forward`, at the time its grace
 * counts from (fixed while the grace lasts, so that they are built again only
 * when the forward or the smile moves, as a fresh option's). Null where the
 * pricing math refuses them.
 */
function graceModel(
  state: ExchangeState,
  m: MarketState,
  forward: bigint,
  svi: SviParams,
  sinceMs: number,
): ScenarioInstrument | null {
  const instrument = m.instrument as Extract<Instrument, { kind: 'option' }>;
  return priced(() => {
    const t = timeYearsWad(sinceMs, m.expiryMs);
    const iv = sviImpliedVol(svi, quoteToWad(forward), quoteToWad(instrument.strikeQuote), t);
    return buildOptionScenarios(
      {
        underlying: m.params.underlying,
        lotsPerBase: m.params.lotsPerBase,
        forwardQuote: forward,
        strikeQuote: instrument.strikeQuote,
        isCall: instrument.isCall,
        timeYearsWad: t,
        ivWad: iv,
        rateWad: 0n,
      },
      state.listing!.scenario,
    );
  });
}

/**
 * The grace model's value (at this block's forward, at the time the grace
 * counts from), per lot in wads of quote (floored, as the model's), of the
 * option whose scenario values were built with it (scenarioOf): derived
 * beside those values, so that whoever reads it takes the same model
 * maintenance took, built once per change of its inputs.
 */
const graceValueOf = new WeakMap<ScenarioInstrument, bigint>();

/**
 * Per lot, in wads of quote, what the expiry's last smile values an option
 * without a mark at (within the grace of a stale smile or index and after it,
 * before expiry: graceSmile): the model's value at this block's forward and
 * at the time the grace counts from (not now: after the grace that time may
 * be hours back, and the value keeps the time value left then), as
 * maintenance values a short there (scenarioOf). Null for an option with a
 * mark or without that smile, and where the pricing math refuses the smile's
 * prices. Read from the cached scenario values (built if they are not
 * current: after a restore, the same inputs give the same value).
 */
export function graceValuePerLotWad(state: ExchangeState, m: MarketState): bigint | null {
  if (m.instrument.kind !== 'option' || m.optionMark !== null || m.graceSmile === null) {
    return null;
  }
  return graceValueOf.get(scenarioOf(state, m)) ?? null;
}

/** The scenario values of a listed instrument, built from its marks as they are now. */
export function scenarioOf(state: ExchangeState, m: MarketState): ScenarioInstrument {
  if (scenarioCurrent(state, m)) return m.scenario!;
  const params = state.listing!.scenario;
  const p = m.params;
  const instrument = m.instrument;
  const om = m.optionMark;
  let s: ScenarioInstrument;
  // Shocked prices outside the pricing math's domain (priced.ts): held as
  // an option without a smile is, rather than failing the block.
  const shocked =
    instrument.kind === 'option' && om !== null && m.forwardQuote > 0n
      ? priced(() =>
          buildOptionScenarios(
            {
              underlying: p.underlying,
              lotsPerBase: p.lotsPerBase,
              forwardQuote: m.forwardQuote,
              strikeQuote: instrument.strikeQuote,
              isCall: instrument.isCall,
              timeYearsWad: om.timeYearsWad,
              ivWad: om.ivWad,
              rateWad: 0n,
            },
            params,
          ),
        )
      : null;
  if (shocked !== null) {
    // Equity counts the option at its mark (rounded to ticks, at least one):
    // a long pays at least that, or buying at a mark above the exact value
    // would leave free collateral above cash.
    const markWad = m.markQuotePerLot * WAD_PER_QUOTE;
    s = shocked.valuePerLotWad >= markWad ? shocked : { ...shocked, valuePerLotWad: markWad };
  } else if (instrument.kind === 'option') {
    // No fresh smile, a stale index (or shocked prices the math refuses): the
    // option is held at its kept mark, without the model's scenarios, so it is
    // margined by model-free bounds instead: a short's scenarios stand still
    // beside its bounds, a long's are its intrinsic value at each moved forward. Without a mark, at this block's forward (not
    // the one of its last mark, kept with a mark interval; not the option's
    // own index, which is its kept mark: listing.ts), which looks at its
    // holders again whenever it moves. With a mark whose shocked prices the
    // math refuses, at the forward of that mark, as a shocked option is: with a
    // mark interval its holders are looked at again only when it is marked.
    const forward = om !== null ? m.forwardQuote : m.forwardNowQuote;
    // Within the grace of a stale smile or index (listing.ts), as the short's
    // cushion: validators failing to agree on a smile or a price for a while
    // must not by itself liquidate anyone.
    const graceOver = om !== null || m.unshockedGraceOver;
    const bounds = unshockedShortBounds(
      forward,
      instrument.strikeQuote,
      instrument.isCall,
      m.markQuotePerLot,
      p.lotsPerBase,
      params,
    );
    // A long counts what it may lose, and hedges with what it is sure to be
    // worth: its intrinsic value at each moved forward. In initial at once
    // (no new risk, no withdrawal rides on the kept mark). A short's
    // scenarios stand still beside its bounds.
    const longPnl = unshockedLongPnl(
      forward,
      instrument.strikeQuote,
      instrument.isCall,
      m.markQuotePerLot,
      p.lotsPerBase,
      params,
    );
    const still = new Array<bigint>(scenarioCount(params)).fill(0n);
    const markWad = m.markQuotePerLot * WAD_PER_QUOTE;
    // Maintenance, within the grace, values either side by the expiry's last
    // smile (graceSmile: the model's scenarios at the forward, at the time
    // the grace counts from; after the grace a short's, up to half its
    // cushion: below) against the kept mark, as a fresh smile would:
    // an outage alone neither takes a hedge's credit (a long call beside a
    // short future) nor a short's scenario losses away. A long never below
    // its intrinsic values (what initial counts), a short never above its
    // cushion (initial counts that instead): maintenance stays within
    // initial. Without that smile before expiry (prices the math refuses) a
    // long's losses stand still and its sure gains count, and a short's
    // scenarios stand still.
    const sinceMs = graceSinceMs(m);
    const model =
      m.graceSmile === null || sinceMs === null || forward <= 0n
        ? null
        : graceModel(state, m, forward, m.graceSmile.svi, sinceMs);
    // Past expiry (the oracle has dropped its smile) an option is worth its
    // intrinsic value at the forward it settles at: its values at the moved
    // forwards stand for the model's.
    const expired = m.expiryMs <= state.timeMs;
    let longMaintenance: bigint[];
    let shortMaintenance: bigint[];
    // Less the loss counted apart (shortLossPerLotWad): the kept mark, or
    // the intrinsic value above it; never above `cap`.
    const shortValued = (valued: readonly bigint[], cap: bigint): bigint[] => {
      const counted = markWad + bounds.lossPerLotWad;
      return valued.map((v) => {
        const x = v - counted;
        return x < cap ? x : cap;
      });
    };
    // The model's value in each scenario, per lot (its change there plus its
    // value now); past expiry its intrinsic values at the moved forwards.
    const valued =
      model !== null
        ? model.pnlPerLotWad.map((x) => x + model.valuePerLotWad)
        : expired
          ? longPnl.map((x) => x + markWad)
          : null;
    if (graceOver) {
      longMaintenance = longPnl;
      // Once the grace is over maintenance takes half the cushion apart
      // (k, cushionKeptPerLotWad: rounded up to a wad); a short keeps those
      // scenario losses up to the rest (c − k), so that its maintenance does
      // not fall when the grace ends (m·min(x, c − k) + k ≥ m·min(x, c) for a
      // maintenance fraction m ≤ 1, to the wad) and stays within initial (≤ c).
      const cap =
        bounds.cushionPerLotWad - cushionKeptWad(bounds.cushionPerLotWad, CUSHION_MAINTENANCE_PPM);
      shortMaintenance = valued === null ? still : shortValued(valued, cap);
    } else if (valued === null) {
      longMaintenance = longPnl.map((x) => (x > 0n ? x : 0n));
      shortMaintenance = still;
    } else {
      longMaintenance = valued.map((v, i) => {
        const x = v - markWad;
        return x > longPnl[i]! ? x : longPnl[i]!;
      });
      shortMaintenance = shortValued(valued, bounds.cushionPerLotWad);
    }
    s = {
      underlying: p.underlying,
      isOption: true,
      pnlPerLotWad: still,
      longPnlPerLotWad: longPnl,
      longMaintenancePnlPerLotWad: longMaintenance,
      shortMaintenancePnlPerLotWad: shortMaintenance,
      valuePerLotWad: markWad,
      shortMinPerLotWad: bounds.minPerLotWad,
      shortLossPerLotWad: bounds.lossPerLotWad,
      shortCushionPerLotWad: bounds.cushionPerLotWad,
      // A smile or index stale for less than the grace leaves maintenance
      // without the short's cushion.
      cushionMaintenancePpm: graceOver ? CUSHION_MAINTENANCE_PPM : 0n,
    };
    if (model !== null) graceValueOf.set(s, model.valuePerLotWad);
  } else {
    s = buildFutureScenarios(
      {
        underlying: p.underlying,
        lotsPerBase: p.lotsPerBase,
        markQuote: BigInt(m.markTicks) * p.tickSizeQuote,
      },
      params,
    );
  }
  m.scenario = s;
  m.scenarioMark = om;
  m.scenarioMarkTicks = m.markTicks;
  m.scenarioForward = m.forwardQuote;
  m.scenarioForwardNow = m.forwardNowQuote;
  m.scenarioGraceOver = m.unshockedGraceOver;
  // The smile itself, not its time: a smile is replaced, never changed, so
  // another one (even of the same block time) builds the values again.
  m.scenarioGraceSmile = m.graceSmile;
  m.scenarioGraceSinceMs = graceSinceMs(m);
  m.scenarioExpired = m.expiryMs <= state.timeMs;
  return s;
}

interface Entry {
  market: MarketState;
  size: number;
  buy: number;
  sell: number;
}

function active(e: Entry): boolean {
  return e.size !== 0 || e.buy !== 0 || e.sell !== 0;
}

/**
 * A record margined by scenario, as its terms were last added to its
 * underlying's sums: the scenario values they were taken with (replaced, not
 * changed, when the marks move) and its sizes.
 */
interface Held {
  scenario: ScenarioInstrument;
  underlying: string;
  isFuture: boolean;
  size: number;
  /** size − sells and size + buys: the ends of what its resting orders may make it. */
  low: number;
  high: number;
  /** The sync that last found it (ListedSums.stamp). */
  seen: number;
}

/**
 * One underlying's terms summed over its records margined by scenario,
 * options and dated futures apart (its futures may be kept linear beside the
 * options). Over the ranges of the resting orders (initial,
 * scenarioInitialOverRanges): per scenario, each record's larger loss of its
 * two ends (with its short minimum at that end), the larger short minimum of
 * the two ends, and the long premium with every bid filled. At the positions
 * (maintenance, scenarioMargin): per scenario the loss, and the short
 * minimum, unseen loss and cushion kept. All exact bigints: a sum kept by
 * adding and subtracting records equals the sum taken afresh.
 */
class Sums {
  readonly optionRange: bigint[];
  readonly futureRange: bigint[];
  rangeShortMin = 0n;
  premium = 0n;
  readonly optionLoss: bigint[];
  readonly futureLoss: bigint[];
  shortMin = 0n;
  unseen = 0n;
  cushionKept = 0n;
  records = 0;

  constructor(count: number) {
    this.optionRange = new Array<bigint>(count).fill(0n);
    this.futureRange = new Array<bigint>(count).fill(0n);
    this.optionLoss = new Array<bigint>(count).fill(0n);
    this.futureLoss = new Array<bigint>(count).fill(0n);
  }
}

/**
 * An account's scenario sums (derived, never state): kept from one margin
 * check to the next and brought up to date by the records that changed, so a
 * market maker's check of one more order costs O(records) comparisons and
 * O(scenarios) for the record it changes, not O(records × scenarios) bigint
 * products (100 option markets quoted on both sides: a thousand times fewer).
 * Every check compares each record with what it holds, so the sums are right
 * whatever changed in between, and a fresh account (a restored node) holds
 * the same after its first check.
 */
class ListedSums {
  readonly held = new Map<number, Held>();
  readonly byUnderlying = new Map<string, Sums>();
  stamp = 0;
}

const sumsOfAccount = new WeakMap<Account, ListedSums>();

/**
 * Drops the account's kept sums: called when its last listed record goes (a
 * settlement), after which nothing checks its listed margin to empty them.
 */
export function forgetListedSums(account: Account): void {
  sumsOfAccount.delete(account);
}

/** Adds (sign 1n) or removes (−1n) a record's terms. O(scenarios). */
function apply(sums: Sums, h: Held, sign: bigint): void {
  const m = h.scenario;
  const lo = BigInt(h.low);
  const hi = BigInt(h.high);
  const size = BigInt(h.size);
  const minLow = shortMinOf(m, lo);
  const minHigh = shortMinOf(m, hi);
  sums.rangeShortMin += sign * (minLow > minHigh ? minLow : minHigh);
  if (m.isOption && h.high > 0) sums.premium += sign * hi * m.valuePerLotWad;
  addRangeLoss(h.isFuture ? sums.futureRange : sums.optionRange, m, lo, hi, minLow, minHigh, sign);
  if (size !== 0n) {
    const pnl = size > 0n ? m.longMaintenancePnlPerLotWad : m.shortMaintenancePnlPerLotWad;
    const loss = h.isFuture ? sums.futureLoss : sums.optionLoss;
    for (let i = 0; i < pnl.length; i++) loss[i]! -= sign * size * pnl[i]!;
  }
  if (m.isOption && h.size < 0) {
    sums.shortMin -= sign * size * m.shortMinPerLotWad;
    sums.unseen -= sign * size * m.shortLossPerLotWad;
    sums.cushionKept -= sign * size * cushionKeptPerLotWad(m);
  }
  sums.records += sign > 0n ? 1 : -1;
}

/**
 * Brings the account's sums to its active records in the underlyings of
 * `scenario`: a record unchanged since the last check costs a comparison,
 * a changed one its old terms out and its new ones in, one gone its terms out.
 */
function syncSums(
  state: ExchangeState,
  account: Account,
  entries: readonly Entry[],
  scenario: ReadonlySet<string>,
): ListedSums {
  let c = sumsOfAccount.get(account);
  if (c === undefined) {
    c = new ListedSums();
    sumsOfAccount.set(account, c);
  }
  const stamp = ++c.stamp;
  const count = scenarioCount(state.listing!.scenario);
  const sumsFor = (underlying: string): Sums => {
    let sums = c.byUnderlying.get(underlying);
    if (sums === undefined) {
      sums = new Sums(count);
      c.byUnderlying.set(underlying, sums);
    }
    return sums;
  };
  const remove = (h: Held): void => {
    const sums = c.byUnderlying.get(h.underlying)!;
    apply(sums, h, -1n);
    if (sums.records === 0) c.byUnderlying.delete(h.underlying);
  };
  let found = 0;
  for (const e of entries) {
    const m = e.market;
    const underlying = m.params.underlying;
    if (!active(e) || !scenario.has(underlying)) continue;
    const s = scenarioOf(state, m);
    const low = e.size - e.sell;
    const high = e.size + e.buy;
    found++;
    let h = c.held.get(m.index);
    if (h !== undefined) {
      h.seen = stamp;
      if (h.scenario === s && h.size === e.size && h.low === low && h.high === high) continue;
      remove(h);
      h.scenario = s;
      h.underlying = underlying;
      h.isFuture = m.instrument.kind === 'future';
      h.size = e.size;
      h.low = low;
      h.high = high;
    } else {
      const isFuture = m.instrument.kind === 'future';
      h = { scenario: s, underlying, isFuture, size: e.size, low, high, seen: stamp };
      c.held.set(m.index, h);
    }
    apply(sumsFor(underlying), h, 1n);
  }
  if (c.held.size !== found) {
    for (const [index, h] of c.held) {
      if (h.seen === stamp) continue;
      remove(h);
      c.held.delete(index);
    }
  }
  return c;
}

/** One underlying margined by scenario, reduced for the requirement's variants. */
interface Reduced {
  underlying: string;
  /** Initial over ranges: the largest of the short minimum and each scenario, futures in and out. */
  rangeWith: bigint;
  rangeWithout: bigint;
  premium: bigint;
  /** Maintenance: the largest loss over the scenarios (≥ 0), futures in and out. */
  lossWith: bigint;
  lossWithout: bigint;
  shortMin: bigint;
  unseen: bigint;
  cushionKept: bigint;
  /** Its dated futures kept linear: initial, and maintenance × 10^6 unrounded. */
  linearInitial: bigint;
  linearMaintenanceScaled: bigint;
  /** Its dated futures in the scenario: the rate beyond the price shock. */
  beyondInitial: bigint;
}

function reduce(underlying: string, sums: Sums | undefined): Reduced {
  let rangeWith = 0n;
  let rangeWithout = 0n;
  let lossWith = 0n;
  let lossWithout = 0n;
  if (sums !== undefined) {
    rangeWith = sums.rangeShortMin;
    rangeWithout = sums.rangeShortMin;
    const { optionRange, futureRange, optionLoss, futureLoss } = sums;
    for (let i = 0; i < optionRange.length; i++) {
      const option = optionRange[i]!;
      if (option > rangeWithout) rangeWithout = option;
      const both = option + futureRange[i]!;
      if (both > rangeWith) rangeWith = both;
      const optionOnly = optionLoss[i]!;
      if (optionOnly > lossWithout) lossWithout = optionOnly;
      const bothLoss = optionOnly + futureLoss[i]!;
      if (bothLoss > lossWith) lossWith = bothLoss;
    }
  }
  return {
    underlying,
    rangeWith,
    rangeWithout,
    premium: sums?.premium ?? 0n,
    lossWith,
    lossWithout,
    shortMin: sums?.shortMin ?? 0n,
    unseen: sums?.unseen ?? 0n,
    cushionKept: sums?.cushionKept ?? 0n,
    linearInitial: 0n,
    linearMaintenanceScaled: 0n,
    beyondInitial: 0n,
  };
}

const NONE: ReadonlySet<string> = new Set();

const requirement = { initialQuote: 0n, maintenanceQuote: 0n };

/**
 * Initial and maintenance margin into `requirement` of the underlyings
 * `scenario` margined by scenario (their dated futures linear beside the
 * options for those in `linear`), plus `others`: the linear terms of the
 * underlyings without options. As scenarioInitialOverRanges and
 * scenarioMargin over those records, with each formula's one rounding over
 * the whole: initial's premium floor spans every underlying.
 */
function requirementOf(
  state: ExchangeState,
  scenario: readonly Reduced[],
  linear: ReadonlySet<string>,
  others: { initial: bigint; maintenanceScaled: bigint } | null,
): void {
  let initial = others?.initial ?? 0n;
  let maintenanceScaled = others?.maintenanceScaled ?? 0n;
  let range = 0n;
  let premium = 0n;
  let loss = 0n;
  let shortMin = 0n;
  let unseen = 0n;
  let cushionKept = 0n;
  for (const r of scenario) {
    const kept = linear.has(r.underlying);
    if (kept) {
      initial += r.linearInitial;
      maintenanceScaled += r.linearMaintenanceScaled;
    } else initial += r.beyondInitial;
    range += kept ? r.rangeWithout : r.rangeWith;
    loss += kept ? r.lossWithout : r.lossWith;
    premium += r.premium;
    shortMin += r.shortMin;
    unseen += r.unseen;
    cushionKept += r.cushionKept;
  }
  const params = state.listing?.scenario;
  let maintenance = divBig(maintenanceScaled, PPM_BIG, 'ceil');
  if (params !== undefined && scenario.length !== 0) {
    maintenance += divBig(
      (loss + shortMin) * BigInt(params.maintenancePpm) + (unseen + cushionKept) * PPM_BIG,
      PPM_BIG * WAD_PER_QUOTE,
      'ceil',
    );
    const scenarioQuote = divBig(range, WAD_PER_QUOTE, 'ceil');
    const premiumQuote = divBig(premium, WAD_PER_QUOTE, 'ceil');
    initial += scenarioQuote > premiumQuote ? scenarioQuote : premiumQuote;
  }
  requirement.initialQuote = initial;
  requirement.maintenanceQuote = maintenance;
}

/**
 * Equity, initial and maintenance margin of the account's listed records;
 * `extra` adds extraBuyLots/extraSellLots of resting orders in that listed
 * market (which the account may have no record in yet). The returned record
 * is reused by the next call.
 */
export function listedMargin(
  state: ExchangeState,
  account: Account,
  extra: MarketState | null,
  extraBuyLots: number,
  extraSellLots: number,
): ListedMargin {
  const markets = state.markets;
  const owner = account.index;
  const entries: Entry[] = [];
  let extraSeen = false;
  for (const p of account.listed) {
    const market = markets[p.market]!;
    let buy = market.book.ownerRestingLots(owner, 'buy');
    let sell = market.book.ownerRestingLots(owner, 'sell');
    if (market === extra) {
      buy += extraBuyLots;
      sell += extraSellLots;
      extraSeen = true;
    }
    entries.push({ market, size: p.sizeLots, buy, sell });
  }
  if (extra !== null && !extraSeen) {
    entries.push({ market: extra, size: 0, buy: extraBuyLots, sell: extraSellLots });
  }
  const withOptions = new Set<string>();
  for (const e of entries) {
    if (active(e) && e.market.instrument.kind === 'option') {
      withOptions.add(e.market.params.underlying);
    }
  }
  const sums = syncSums(state, account, entries, withOptions);
  const reduced = new Map<string, Reduced>();
  for (const u of withOptions) reduced.set(u, reduce(u, sums.byUnderlying.get(u)));
  let equity = 0n;
  // The linear terms of dated futures: of the underlyings without options,
  // and of those with options, to keep beside them or not (below).
  const others = { initial: 0n, maintenanceScaled: 0n };
  // Underlyings with options and dated futures both: their futures go into
  // the scenario with the options, or stay linear beside them (as in a
  // subaccount of their own), whichever needs less, for initial and for
  // maintenance each. Always with them, an option lot of a cent would take a
  // future from its linear rates to the ±12.5% shock: a bid for it alone
  // would more than treble the future's maintenance, and the liquidation
  // that cancels the bid would close the future anyway.
  const mixed = new Set<string>();
  for (const e of entries) {
    const m = e.market;
    if (e.size !== 0) equity += BigInt(e.size) * m.markQuotePerLot;
    if (!active(e) || m.instrument.kind !== 'future') continue;
    const lots = Math.max(Math.abs(e.size + e.buy), Math.abs(e.size - e.sell));
    const notional = BigInt(lots) * m.markQuotePerLot;
    const rate = imfPpm(m, notional);
    // The linear formula, scale-up included (margin.ts).
    const linearInitial = lots !== 0 ? ppmCeil(notional, rate) : 0n;
    const linearMaintenanceScaled = BigInt(Math.abs(e.size)) * m.maintenancePerLotScaled;
    const r = reduced.get(m.params.underlying);
    if (r === undefined) {
      others.initial += linearInitial;
      others.maintenanceScaled += linearMaintenanceScaled;
      continue;
    }
    mixed.add(r.underlying);
    r.linearInitial += linearInitial;
    r.linearMaintenanceScaled += linearMaintenanceScaled;
    // In the scenario, its price shock stands for the linear rate only up to
    // it: the rest of the rate (its base above the shock, and the size
    // scale-up past it) is added, so a large future never goes below the
    // linear formula.
    const beyond = rate - state.listing!.scenario.priceShockPpm;
    if (lots !== 0 && beyond > 0) r.beyondInitial += ppmCeil(notional, beyond);
  }
  const all = [...reduced.values()];
  let initial: bigint;
  let maintenance: bigint;
  if (mixed.size === 0) {
    requirementOf(state, all, NONE, others);
    initial = requirement.initialQuote;
    maintenance = requirement.maintenanceQuote;
  } else {
    const linearInitial = new Set<string>();
    const linearMaintenance = new Set<string>();
    for (const u of mixed) {
      const own = [reduced.get(u)!];
      const only = new Set([u]);
      requirementOf(state, own, NONE, null);
      const { initialQuote: togetherInitial, maintenanceQuote: togetherMaintenance } = requirement;
      requirementOf(state, own, only, null);
      if (requirement.initialQuote < togetherInitial) linearInitial.add(u);
      if (requirement.maintenanceQuote < togetherMaintenance) linearMaintenance.add(u);
    }
    requirementOf(state, all, linearInitial, others);
    initial = requirement.initialQuote;
    if (linearInitial.size !== 0) {
      // Initial is not a sum over underlyings: the long premium of all of them
      // is one floor under the scenario losses of all of them. A future kept
      // out of the scenario beside another underlying's long options then
      // pays its linear rate on top of the premium, where in the scenario it
      // would have been under the floor: the account's whole scenario may
      // need less, and initial never takes more than it.
      requirementOf(state, all, NONE, others);
      if (requirement.initialQuote < initial) initial = requirement.initialQuote;
    }
    requirementOf(state, all, linearMaintenance, others);
    maintenance = requirement.maintenanceQuote;
  }
  result.equityQuote = equity;
  result.initialQuote = initial;
  result.maintenanceQuote = maintenance;
  return result;
}
