// Scenario margin for the options and futures of one account
// (docs/derivatives.md, "Margin"), after Deribit's portfolio margin.
//
// Grid: pricePoints moves of the underlying evenly from −priceShockPpm to
// +priceShockPpm (13 points of ±12.5% by default), times three volatility
// cases: down, unchanged, up. The volatility shocks are relative (σ × (1 ± s))
// and scaled by time to expiry: s = shock × min(cap, sqrt(volShockRefMs / T)),
// so short-dated options get the larger shocks; a down shock keeps at least
// 10% of σ. Options are revalued by Black–Scholes at the moved forward with
// their own shocked volatility (sticky strike) and the same time to expiry.
//
// Per underlying, the loss of a scenario is −Σ size × (value in the scenario −
// value now); the worst loss (at least 0) is that underlying's requirement,
// and underlyings add up (no offsets between BTC and ETH). Then
//   maintenance = ceil((Σ worst + Σ short options × shortOptionMin) × maintenancePpm / 10^6
//                      + Σ short options × (loss + cushion / 2))
//   initial     = max(ceil(Σ worst + Σ short options × (shortOptionMin + loss + cushion)),
//                     ceil(long premium))
// where shortOptionMin is shortOptionMinPpm of the forward per base unit, and
// loss and cushion are 0 but for an option that cannot be shocked (its
// intrinsic value above the mark equity counts it at, which is a loss now and
// counts in full, and a cushion for want of a volatility to shock), and
// an option that cannot be shocked has values of its own per side: a long's
// are its intrinsic value at each moved forward less its mark
// (longPnlPerLotWad), a short's stand still, and in maintenance, within
// the grace of a stale smile or index, either side's are the model's at its
// last smile (longMaintenancePnlPerLotWad, shortMaintenancePnlPerLotWad);
// and the long premium is Σ long option size × value now: a long option is paid in
// full (with equity = cash + Σ size × mark, an account holding only long
// options has free collateral equal to its cash), and a scenario loss can never
// exceed that premium for an account of long options alone.
//
// Cost model. The scenario values depend only on an instrument's mark inputs,
// not on any account, so they are computed once per instrument when its mark
// changes (buildOptionScenarios: pricePoints × 3 Black–Scholes evaluations,
// ~39 × 7 µs ≈ 0.3 ms) and cached. An account's recomputation is then a
// weighted sum: positions × scenarios bigint multiply-adds (50 × 39 ≈ 2,000).
// Per-lot values are floored at 10^−18 quote; the sums are exact and are
// rounded once, up, to quote units.

import { assert } from '../../lib/assert.ts';
import { ZommaError } from '../../lib/errors.ts';
import { divBig, divTrunc, isqrtBig } from '../../lib/int.ts';
import { MATH_VOL_WAD_MAX, MATH_VOL_WAD_MIN, SCENARIO_PRICE_POINTS_MAX } from '../../lib/limits.ts';
import { SCALE, blackScholesPrices, exp } from '../../math/index.ts';
import { MS_PER_YEAR, WAD_PER_QUOTE } from './mark.ts';

export interface ScenarioParams {
  /** Largest price move, ppm of the forward (125_000 = ±12.5%). */
  readonly priceShockPpm: number;
  /** Odd, so that 0 is a point: 13 by default. */
  readonly pricePoints: number;
  /** Relative volatility shock up at the reference horizon (450_000: σ × 1.45). */
  readonly volUpPpm: number;
  /** Relative volatility shock down at the reference horizon (300_000: σ × 0.70). */
  readonly volDownPpm: number;
  /** Horizon at which shocks are as stated: 30 days. */
  readonly volShockRefMs: number;
  /** Cap on the time scaling sqrt(ref / T), ppm (3_000_000 = 3×). */
  readonly volShockScaleMaxPpm: number;
  /** Minimum per short option contract, ppm of the forward per base unit. */
  readonly shortOptionMinPpm: number;
  /** Maintenance as a fraction of the scenario margin, ppm. */
  readonly maintenancePpm: number;
}

export const DEFAULT_SCENARIO_PARAMS: ScenarioParams = {
  priceShockPpm: 125_000,
  pricePoints: 13,
  volUpPpm: 450_000,
  volDownPpm: 300_000,
  volShockRefMs: 30 * 86_400_000,
  volShockScaleMaxPpm: 3_000_000,
  shortOptionMinPpm: 10_000,
  maintenancePpm: 800_000,
};

/** Volatility cases per price point: down, unchanged, up. */
export const VOL_CASES = 3;
const VOL_DOWN_FLOOR_PPM = 100_000n;
const PPM = 1_000_000n;
/**
 * The share of a short's cushion (shortCushionPerLotWad) that maintenance
 * takes, ppm, once its grace is over (cushionMaintenancePpm).
 */
export const CUSHION_MAINTENANCE_PPM = 500_000n;

/**
 * The cushion maintenance takes per short lot, wads of quote: the `sharePpm`
 * share of `cushionPerLotWad`, rounded up to a whole wad. The rest (the
 * cushion less this, rounded down) is what a short keeps of its scenario
 * losses once the grace is over (listed_margin.ts), so that the two add up to
 * the cushion exactly: rounded the other way, an odd cushion's half wad per
 * lot was lost, and at a maintenancePpm of 100% maintenance could fall (by a
 * quote unit) when the grace ended.
 */
export function cushionKeptWad(cushionPerLotWad: bigint, sharePpm: bigint): bigint {
  return divBig(cushionPerLotWad * sharePpm, PPM, 'ceil');
}

/** cushionKeptWad of a short lot of `m`, at its cushionMaintenancePpm. */
export function cushionKeptPerLotWad(m: ScenarioInstrument): bigint {
  return cushionKeptWad(m.shortCushionPerLotWad, m.cushionMaintenancePpm);
}

export class ScenarioParamsError extends ZommaError<'BadScenarioParams'> {
  constructor(field: string, reason: string) {
    super('BadScenarioParams', `${field}: ${reason}`);
  }
}

function ppmField(field: string, x: number, lo: number, hi: number): void {
  if (!Number.isSafeInteger(x) || x < lo || x > hi) {
    throw new ScenarioParamsError(field, `must be an integer in [${lo}, ${hi}]`);
  }
}

export function validateScenarioParams(p: ScenarioParams): void {
  ppmField('priceShockPpm', p.priceShockPpm, 0, 900_000);
  ppmField('pricePoints', p.pricePoints, 1, SCENARIO_PRICE_POINTS_MAX);
  if (p.pricePoints % 2 === 0) throw new ScenarioParamsError('pricePoints', 'must be odd');
  ppmField('volUpPpm', p.volUpPpm, 0, 10_000_000);
  ppmField('volDownPpm', p.volDownPpm, 0, 1_000_000);
  ppmField('volShockRefMs', p.volShockRefMs, 1, 10 * 365 * 86_400_000);
  ppmField('volShockScaleMaxPpm', p.volShockScaleMaxPpm, 1, 100_000_000);
  ppmField('shortOptionMinPpm', p.shortOptionMinPpm, 0, 1_000_000);
  ppmField('maintenancePpm', p.maintenancePpm, 1, 1_000_000);
}

/** The price moves of the grid, ppm, ascending (truncated toward zero). */
export function priceMovesPpm(p: ScenarioParams): number[] {
  const n = p.pricePoints;
  if (n === 1) return [0];
  return Array.from({ length: n }, (_, i) => divTrunc(p.priceShockPpm * (2 * i - (n - 1)), n - 1));
}

/** Scenario s = priceIndex × VOL_CASES + volCase (0 down, 1 unchanged, 2 up). */
export function scenarioCount(p: ScenarioParams): number {
  return p.pricePoints * VOL_CASES;
}

/** What margin needs of one instrument: its scenario values, cached per mark update. */
export interface ScenarioInstrument {
  readonly underlying: string;
  readonly isOption: boolean;
  /**
   * Per lot, in wads of quote currency (10^−18), for each scenario: value
   * there − value now. Of a short position; of a long one too but for an
   * option that cannot be shocked (longPnlPerLotWad).
   */
  readonly pnlPerLotWad: readonly bigint[];
  /**
   * Per lot of a long position, as pnlPerLotWad: the same array but for an
   * option that cannot be shocked, whose long is valued in each scenario at
   * its intrinsic value at the moved forward, less the mark equity counts it
   * at (its short keeps values that stand still, margined by its bounds).
   */
  readonly longPnlPerLotWad: readonly bigint[];
  /**
   * Per lot of a long position in maintenance: longPnlPerLotWad, but for an
   * option that cannot be shocked whose smile or index has been stale for
   * less than the grace, valued there by its last smile against its kept
   * mark (without one, its losses stand still and its sure gains count): the
   * same array otherwise. Never below longPnlPerLotWad, so maintenance stays
   * within initial.
   */
  readonly longMaintenancePnlPerLotWad: readonly bigint[];
  /**
   * Per lot of a short position in maintenance, as pnlPerLotWad: the same
   * array but for an option that cannot be shocked within the grace of a
   * stale smile or index, valued there by its last smile (never above its
   * cushion, so maintenance stays within initial).
   */
  readonly shortMaintenancePnlPerLotWad: readonly bigint[];
  /** Value now per lot (options: the premium a long pays), wads of quote currency. */
  readonly valuePerLotWad: bigint;
  /** Minimum per short option lot, wads of quote currency (0 for futures). */
  readonly shortMinPerLotWad: bigint;
  /**
   * Per short option lot, wads of quote currency, added in full to initial
   * and maintenance margin: 0 but for an option the pricing cannot shock, whose
   * intrinsic value at the forward may be above the mark equity counts it at
   * (a loss now, not a risk: maintenance takes all of it).
   */
  readonly shortLossPerLotWad: bigint;
  /**
   * Per short option lot, wads of quote currency, added in full to initial
   * margin and, at cushionMaintenancePpm, to maintenance: 0 but for an option
   * the pricing cannot shock (no fresh smile), whose scenarios stand still
   * (docs/exchange.md, "Dated futures and options").
   */
  readonly shortCushionPerLotWad: bigint;
  /**
   * The share of the cushion maintenance takes, ppm: CUSHION_MAINTENANCE_PPM,
   * or 0 while an option's smile has been stale for less than a grace.
   */
  readonly cushionMaintenancePpm: bigint;
}

export interface FutureScenarioInput {
  readonly underlying: string;
  readonly lotsPerBase: number;
  /** The future's mark, quote units per whole base unit. */
  readonly markQuote: bigint;
}

export function buildFutureScenarios(
  f: FutureScenarioInput,
  p: ScenarioParams,
): ScenarioInstrument {
  const lots = BigInt(f.lotsPerBase);
  const mark = f.markQuote * WAD_PER_QUOTE;
  const pnl: bigint[] = [];
  for (const move of priceMovesPpm(p)) {
    const perLot = divBig(mark * BigInt(move), PPM * lots, 'floor');
    for (let v = 0; v < VOL_CASES; v++) pnl.push(perLot);
  }
  return {
    underlying: f.underlying,
    isOption: false,
    pnlPerLotWad: pnl,
    longPnlPerLotWad: pnl,
    longMaintenancePnlPerLotWad: pnl,
    shortMaintenancePnlPerLotWad: pnl,
    valuePerLotWad: divBig(mark, lots, 'floor'),
    shortMinPerLotWad: 0n,
    shortLossPerLotWad: 0n,
    shortCushionPerLotWad: 0n,
    cushionMaintenancePpm: 0n,
  };
}

export interface OptionScenarioInput {
  readonly underlying: string;
  readonly lotsPerBase: number;
  /** Forward of the expiry, quote units per whole base unit. */
  readonly forwardQuote: bigint;
  readonly strikeQuote: bigint;
  readonly isCall: boolean;
  /** As optionMark returned them. */
  readonly timeYearsWad: bigint;
  readonly ivWad: bigint;
  readonly rateWad: bigint;
}

/** sqrt(ref / T) capped, in ppm. */
export function volShockScalePpm(timeYears: bigint, p: ScenarioParams): bigint {
  const refYears = divBig(BigInt(p.volShockRefMs) * SCALE, BigInt(MS_PER_YEAR), 'floor');
  const ratio = divBig(refYears * PPM * PPM, timeYears, 'floor');
  const scale = isqrtBig(ratio);
  const cap = BigInt(p.volShockScaleMaxPpm);
  return scale > cap ? cap : scale;
}

function clampVol(v: bigint): bigint {
  return v < MATH_VOL_WAD_MIN ? MATH_VOL_WAD_MIN : v > MATH_VOL_WAD_MAX ? MATH_VOL_WAD_MAX : v;
}

/** The shocked volatilities of an option: [down, unchanged, up]. */
export function shockedVols(iv: bigint, timeYears: bigint, p: ScenarioParams): bigint[] {
  const scale = volShockScalePpm(timeYears, p);
  let downPpm = PPM - divBig(BigInt(p.volDownPpm) * scale, PPM, 'floor');
  if (downPpm < VOL_DOWN_FLOOR_PPM) downPpm = VOL_DOWN_FLOOR_PPM;
  const upPpm = PPM + divBig(BigInt(p.volUpPpm) * scale, PPM, 'floor');
  return [
    clampVol(divBig(iv * downPpm, PPM, 'halfEven')),
    iv,
    clampVol(divBig(iv * upPpm, PPM, 'halfEven')),
  ];
}

/** pricePoints × 3 Black–Scholes evaluations (plus one for the value now). */
export function buildOptionScenarios(
  o: OptionScenarioInput,
  p: ScenarioParams,
): ScenarioInstrument {
  assert(o.forwardQuote > 0n && o.strikeQuote > 0n, 'forward and strike are positive');
  const lots = BigInt(o.lotsPerBase);
  const strike = o.strikeQuote * WAD_PER_QUOTE;
  const discount = exp(-divBig(o.rateWad * o.timeYearsWad, SCALE, 'halfEven'));
  const spotNow = divBig(o.forwardQuote * WAD_PER_QUOTE * discount, SCALE, 'halfEven');
  const market = (spot: bigint) => ({
    spot,
    strike,
    timeYears: o.timeYearsWad,
    rate: o.rateWad,
    isCall: o.isCall,
  });
  const now = blackScholesPrices(market(spotNow), [o.ivWad])[0]!;
  const vols = shockedVols(o.ivWad, o.timeYearsWad, p);
  const pnl: bigint[] = [];
  for (const move of priceMovesPpm(p)) {
    const spot = divBig(spotNow * (PPM + BigInt(move)), PPM, 'halfEven');
    for (const price of blackScholesPrices(market(spot), vols)) {
      pnl.push(divBig(price - now, lots, 'floor'));
    }
  }
  const forward = o.forwardQuote * WAD_PER_QUOTE;
  return {
    underlying: o.underlying,
    isOption: true,
    pnlPerLotWad: pnl,
    longPnlPerLotWad: pnl,
    longMaintenancePnlPerLotWad: pnl,
    shortMaintenancePnlPerLotWad: pnl,
    valuePerLotWad: divBig(now, lots, 'floor'),
    shortMinPerLotWad: divBig(forward * BigInt(p.shortOptionMinPpm), PPM * lots, 'ceil'),
    shortLossPerLotWad: 0n,
    shortCushionPerLotWad: 0n,
    cushionMaintenancePpm: 0n,
  };
}

export interface MarginPosition {
  readonly instrument: string;
  /** Signed lots: positive long. */
  readonly sizeLots: number;
}

export interface WorstScenario {
  readonly underlying: string;
  /** Index into the grid: priceIndex × 3 + volCase. */
  readonly scenario: number;
  readonly priceMovePpm: number;
  readonly volCase: 'down' | 'unchanged' | 'up';
  /** Loss in that scenario, quote units rounded up (0 if no scenario loses). */
  readonly lossQuote: bigint;
}

export interface ScenarioMargin {
  readonly initialQuote: bigint;
  readonly maintenanceQuote: bigint;
  /** The underlying with the largest worst loss, or null without positions. */
  readonly worstScenario: WorstScenario | null;
  /**
   * Each underlying's worst scenario, by underlying name: as initial counts
   * them (a long without a fresh smile at its intrinsic values within the
   * grace too).
   */
  readonly byUnderlying: readonly WorstScenario[];
}

const VOL_CASE_NAMES = ['down', 'unchanged', 'up'] as const;

/**
 * Scenario margin of one account. `marks` holds the cached scenario values of
 * every instrument the positions name (an absent one is a bug in the caller).
 * Cost: O(positions × scenarios) bigint multiply-adds.
 */
export function scenarioMargin(
  positions: readonly MarginPosition[],
  marks: ReadonlyMap<string, ScenarioInstrument>,
  params: ScenarioParams,
): ScenarioMargin {
  const count = scenarioCount(params);
  const losses = new Map<string, bigint[]>();
  /** The same with a long's values in maintenance (longMaintenancePnlPerLotWad). */
  const maintenanceLosses = new Map<string, bigint[]>();
  let shortMin = 0n;
  let unseen = 0n;
  let cushion = 0n;
  /** The cushion maintenance takes, wads (cushionKeptPerLotWad). */
  let cushionKept = 0n;
  let premium = 0n;
  for (const position of positions) {
    const size = position.sizeLots;
    if (size === 0) continue;
    const m = marks.get(position.instrument);
    assert(m !== undefined, 'no scenario values for a position');
    assert(m.pnlPerLotWad.length === count, 'scenario values from other parameters');
    let loss = losses.get(m.underlying);
    let maintenanceLoss = maintenanceLosses.get(m.underlying);
    if (loss === undefined || maintenanceLoss === undefined) {
      loss = new Array<bigint>(count).fill(0n);
      losses.set(m.underlying, loss);
      maintenanceLoss = new Array<bigint>(count).fill(0n);
      maintenanceLosses.set(m.underlying, maintenanceLoss);
    }
    const s = BigInt(size);
    const pnl = size > 0 ? m.longPnlPerLotWad : m.pnlPerLotWad;
    const maintenancePnl =
      size > 0 ? m.longMaintenancePnlPerLotWad : m.shortMaintenancePnlPerLotWad;
    assert(
      pnl.length === count && maintenancePnl.length === count,
      'scenario values from other parameters',
    );
    for (let i = 0; i < count; i++) {
      loss[i]! -= s * pnl[i]!;
      maintenanceLoss[i]! -= s * maintenancePnl[i]!;
    }
    if (m.isOption) {
      if (size < 0) {
        shortMin -= s * m.shortMinPerLotWad;
        unseen -= s * m.shortLossPerLotWad;
        cushion -= s * m.shortCushionPerLotWad;
        cushionKept -= s * cushionKeptPerLotWad(m);
      } else premium += s * m.valuePerLotWad;
    }
  }
  const moves = priceMovesPpm(params);
  const byUnderlying: WorstScenario[] = [];
  let worstTotal = 0n;
  let worstMaintenanceTotal = 0n;
  for (const underlying of [...losses.keys()].sort()) {
    const loss = losses.get(underlying)!;
    let worst = 0;
    for (let i = 1; i < count; i++) if (loss[i]! > loss[worst]!) worst = i;
    const lossWad = loss[worst]! > 0n ? loss[worst]! : 0n;
    worstTotal += lossWad;
    let worstMaintenance = 0n;
    for (const x of maintenanceLosses.get(underlying)!)
      if (x > worstMaintenance) worstMaintenance = x;
    worstMaintenanceTotal += worstMaintenance;
    byUnderlying.push({
      underlying,
      scenario: worst,
      priceMovePpm: moves[divTrunc(worst, VOL_CASES)]!,
      volCase: VOL_CASE_NAMES[worst % VOL_CASES]!,
      lossQuote: divBig(lossWad, WAD_PER_QUOTE, 'ceil'),
    });
  }
  const requirement = worstTotal + shortMin;
  const maintenanceQuote = divBig(
    (worstMaintenanceTotal + shortMin) * BigInt(params.maintenancePpm) +
      (unseen + cushionKept) * PPM,
    PPM * WAD_PER_QUOTE,
    'ceil',
  );
  const scenarioQuote = divBig(requirement + unseen + cushion, WAD_PER_QUOTE, 'ceil');
  const premiumQuote = divBig(premium, WAD_PER_QUOTE, 'ceil');
  const initialQuote = scenarioQuote > premiumQuote ? scenarioQuote : premiumQuote;
  let worstScenario: WorstScenario | null = null;
  for (const w of byUnderlying) {
    if (worstScenario === null || w.lossQuote > worstScenario.lossQuote) worstScenario = w;
  }
  return { initialQuote, maintenanceQuote, worstScenario, byUnderlying };
}

/**
 * What `lots` (signed) of an instrument add to initial's short minimum: for a
 * short option, the minimum, the unseen loss and the cushion per lot; else 0.
 */
export function shortMinOf(m: ScenarioInstrument, lots: bigint): bigint {
  return m.isOption && lots < 0n
    ? -lots * (m.shortMinPerLotWad + m.shortLossPerLotWad + m.shortCushionPerLotWad)
    : 0n;
}

/**
 * Adds (sign 1n) or removes (−1n), per scenario, the largest loss (with the
 * short minimum, `minLow` and `minHigh` at the ends) of sizes from `lo` to
 * `hi` of one instrument: at an end, or at 0 (no loss) where the range spans
 * it, for the long and short values may differ (longPnlPerLotWad). Shared
 * with the kept sums (listed_margin.ts), which must equal this to the unit.
 */
export function addRangeLoss(
  target: bigint[],
  m: ScenarioInstrument,
  lo: bigint,
  hi: bigint,
  minLow: bigint,
  minHigh: bigint,
  sign: bigint,
): void {
  const pnlLow = lo > 0n ? m.longPnlPerLotWad : m.pnlPerLotWad;
  const pnlHigh = hi > 0n ? m.longPnlPerLotWad : m.pnlPerLotWad;
  assert(pnlLow.length === target.length && pnlHigh.length === target.length, 'scenario values');
  const spansZero = lo < 0n && hi > 0n;
  for (let i = 0; i < target.length; i++) {
    const atLow = minLow - lo * pnlLow[i]!;
    const atHigh = minHigh - hi * pnlHigh[i]!;
    let most = atLow > atHigh ? atLow : atHigh;
    if (spansZero && most < 0n) most = 0n;
    target[i]! += sign * most;
  }
}

export interface MarginRange {
  readonly instrument: string;
  /** The position if every resting sell fills (size − sells). */
  readonly lowLots: number;
  /** The position if every resting buy fills (size + buys). */
  readonly highLots: number;
}

/**
 * The largest initialQuote of scenarioMargin over every portfolio whose size
 * in each instrument lies in [lowLots, highLots]: the initial margin of an
 * account with resting orders, whichever of them fill. Choosing one side per
 * instrument is not enough: a resting bid as large as an offer would stand for
 * it (a long option costs its premium, the short it becomes may cost many
 * times that), and two instruments' worst sides depend on each other. A
 * scenario's loss and the short minimum are linear in each size on either
 * side of 0 (a long and a short of an option that cannot be shocked have
 * values of their own), so their largest value over the box is at one of its
 * ends or at 0, chosen per instrument and per scenario; the requirement is
 * the largest over scenarios of those sums
 * (at least the largest short minimum alone), and the premium the one with
 * every bid filled. With lowLots = highLots it is scenarioMargin's initial.
 * Cost: O(ranges × scenarios) bigint multiply-adds.
 */
export function scenarioInitialOverRanges(
  ranges: readonly MarginRange[],
  marks: ReadonlyMap<string, ScenarioInstrument>,
  params: ScenarioParams,
): bigint {
  const count = scenarioCount(params);
  const sums = new Map<string, { best: bigint[]; shortMin: bigint }>();
  let premium = 0n;
  for (const range of ranges) {
    const low = range.lowLots;
    const high = range.highLots;
    assert(low <= high, 'a range is ordered');
    if (low === 0 && high === 0) continue;
    const m = marks.get(range.instrument);
    assert(m !== undefined, 'no scenario values for a position');
    assert(m.pnlPerLotWad.length === count, 'scenario values from other parameters');
    let sum = sums.get(m.underlying);
    if (sum === undefined) {
      sum = { best: new Array<bigint>(count).fill(0n), shortMin: 0n };
      sums.set(m.underlying, sum);
    }
    const lo = BigInt(low);
    const hi = BigInt(high);
    const minLow = shortMinOf(m, lo);
    const minHigh = shortMinOf(m, hi);
    sum.shortMin += minLow > minHigh ? minLow : minHigh;
    if (m.isOption && high > 0) premium += hi * m.valuePerLotWad;
    addRangeLoss(sum.best, m, lo, hi, minLow, minHigh, 1n);
  }
  let requirement = 0n;
  for (const { best, shortMin } of sums.values()) {
    let worst = shortMin;
    for (const x of best) if (x > worst) worst = x;
    requirement += worst;
  }
  const scenarioQuote = divBig(requirement, WAD_PER_QUOTE, 'ceil');
  const premiumQuote = divBig(premium, WAD_PER_QUOTE, 'ceil');
  return scenarioQuote > premiumQuote ? scenarioQuote : premiumQuote;
}
