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
// built once per height when first needed (40 Black–Scholes evaluations for an
// option) and cached on the market (derived, not state).
// Cost: O(records × scenarios) bigint multiply-adds, two scenario passes;
// with options and dated futures of one underlying, four more over its records
// (with them, beside them) and two or three more in all.

import { divBig } from '../lib/int.ts';
import { imfPpm } from './margin.ts';
import type { MarginPosition, MarginRange, ScenarioInstrument } from './options/index.ts';
import {
  CUSHION_MAINTENANCE_PPM,
  buildFutureScenarios,
  buildOptionScenarios,
  scenarioCount,
  scenarioInitialOverRanges,
  scenarioMargin,
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
 * per base unit: 15% of the forward less the amount out of the money, at least
 * 10%, all of it in initial margin and half in maintenance, the latter once a
 * stale smile's grace is over (UNSHOCKED_MAINTENANCE_GRACE_MS): Deribit's
 * standard margin for a short option, for want of a volatility to shock.
 */
export const UNSHOCKED_SHORT_PPM = 150_000n;
export const UNSHOCKED_SHORT_FLOOR_PPM = 100_000n;
/**
 * How long an option's smile may be stale before its maintenance takes its
 * share of the cushion (initial takes all of it at once): 10 minutes of block
 * time for the validators' smiles to come back.
 */
export const UNSHOCKED_MAINTENANCE_GRACE_MS = 10 * 60_000;

/**
 * Per short lot, in wads of quote: the minimum (shortOptionMinPpm of the
 * forward), the loss (the option's intrinsic value at the forward above its
 * kept mark: the least the option is worth now, which equity, counting it at
 * the kept mark, does not see) and the cushion (UNSHOCKED_SHORT_PPM less the
 * amount out of the money, at least UNSHOCKED_SHORT_FLOOR_PPM). Each rounded up.
 */
export function unshockedShortBounds(
  forwardQuote: bigint,
  strikeQuote: bigint,
  isCall: boolean,
  markQuotePerLot: bigint,
  lotsPerBase: number,
  shortOptionMinPpm: number,
): { minPerLotWad: bigint; lossPerLotWad: bigint; cushionPerLotWad: bigint } {
  const lots = BigInt(lotsPerBase);
  const inMoney = isCall ? forwardQuote - strikeQuote : strikeQuote - forwardQuote;
  const intrinsicPerLotWad = inMoney > 0n ? divBig(inMoney * WAD_PER_QUOTE, lots, 'ceil') : 0n;
  const markPerLotWad = markQuotePerLot * WAD_PER_QUOTE;
  const lossPerLotWad =
    intrinsicPerLotWad > markPerLotWad ? intrinsicPerLotWad - markPerLotWad : 0n;
  const minPerLotWad = divBig(
    forwardQuote * WAD_PER_QUOTE * BigInt(shortOptionMinPpm),
    PPM_BIG * lots,
    'ceil',
  );
  const outOfMoney = inMoney < 0n ? -inMoney : 0n;
  let cushionPpmQuote = forwardQuote * UNSHOCKED_SHORT_PPM - outOfMoney * PPM_BIG;
  const floor = forwardQuote * UNSHOCKED_SHORT_FLOOR_PPM;
  if (cushionPpmQuote < floor) cushionPpmQuote = floor;
  const cushionPerLotWad = divBig(cushionPpmQuote * WAD_PER_QUOTE, PPM_BIG * lots, 'ceil');
  return { minPerLotWad, lossPerLotWad, cushionPerLotWad };
}

/** The scenario values of a listed instrument at the current height. */
export function scenarioOf(state: ExchangeState, m: MarketState): ScenarioInstrument {
  if (m.scenario !== null && m.scenarioHeight === state.height) return m.scenario;
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
    // No fresh smile (or shocked prices the math refuses): the option is held
    // at its kept mark and its scenarios stand still, so it is margined by
    // model-free bounds instead. Without a mark, at this block's forward (not
    // the one of its last mark, kept with a mark interval; not the option's
    // own index, which is its kept mark: listing.ts), which looks at its
    // holders again whenever it moves. With a mark whose shocked prices the
    // math refuses, at the forward of that mark, as a shocked option is: with a
    // mark interval its holders are looked at again only when it is marked.
    const bounds = unshockedShortBounds(
      om !== null ? m.forwardQuote : m.forwardNowQuote,
      instrument.strikeQuote,
      instrument.isCall,
      m.markQuotePerLot,
      p.lotsPerBase,
      params.shortOptionMinPpm,
    );
    s = {
      underlying: p.underlying,
      isOption: true,
      pnlPerLotWad: new Array<bigint>(scenarioCount(params)).fill(0n),
      valuePerLotWad: m.markQuotePerLot * WAD_PER_QUOTE,
      shortMinPerLotWad: bounds.minPerLotWad,
      shortLossPerLotWad: bounds.lossPerLotWad,
      shortCushionPerLotWad: bounds.cushionPerLotWad,
      // A smile stale for less than the grace (listing.ts) leaves maintenance
      // without its cushion: validators failing to agree on a smile for a
      // while must not by itself liquidate the option's sellers.
      cushionMaintenancePpm: om !== null || m.unshockedGraceOver ? CUSHION_MAINTENANCE_PPM : 0n,
    };
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
  m.scenarioHeight = state.height;
  return s;
}

interface Entry {
  market: MarketState;
  size: number;
  buy: number;
  sell: number;
}

const NONE: ReadonlySet<string> = new Set();

const requirement = { initialQuote: 0n, maintenanceQuote: 0n };

/**
 * Initial and maintenance margin of `entries` into `requirement`: by scenario
 * for the underlyings in `scenario` (their options, and their dated futures
 * unless the underlying is in `linearFutures`), the linear formula for the rest.
 */
function requirementOf(
  state: ExchangeState,
  entries: readonly Entry[],
  scenario: ReadonlySet<string>,
  linearFutures: ReadonlySet<string>,
): void {
  let initial = 0n;
  let maintenanceScaled = 0n;
  const now: MarginPosition[] = [];
  const ranges: MarginRange[] = [];
  const marks = new Map<string, ScenarioInstrument>();
  for (const e of entries) {
    const m = e.market;
    if (e.size === 0 && e.buy === 0 && e.sell === 0) continue;
    const underlying = m.params.underlying;
    const future = m.instrument.kind === 'future';
    if (!scenario.has(underlying) || (future && linearFutures.has(underlying))) {
      const lots = Math.max(Math.abs(e.size + e.buy), Math.abs(e.size - e.sell));
      if (lots !== 0) {
        const notional = BigInt(lots) * m.markQuotePerLot;
        // The linear formula, scale-up included (margin.ts).
        initial += ppmCeil(notional, imfPpm(m, notional));
      }
      maintenanceScaled += BigInt(Math.abs(e.size)) * m.maintenancePerLotScaled;
      continue;
    }
    if (future) {
      // The scenario's price shock stands for the linear rate only up to it:
      // the rest of the rate (its base above the shock, and the size scale-up
      // past it) is added, so a large future never goes below the linear formula.
      const lots = Math.max(Math.abs(e.size + e.buy), Math.abs(e.size - e.sell));
      const notional = BigInt(lots) * m.markQuotePerLot;
      const beyond = imfPpm(m, notional) - state.listing!.scenario.priceShockPpm;
      if (lots !== 0 && beyond > 0) initial += ppmCeil(notional, beyond);
    }
    const name = m.params.instrument;
    marks.set(name, scenarioOf(state, m));
    now.push({ instrument: name, sizeLots: e.size });
    ranges.push({ instrument: name, lowLots: e.size - e.sell, highLots: e.size + e.buy });
  }
  let maintenance = divBig(maintenanceScaled, PPM_BIG, 'ceil');
  if (now.length !== 0) {
    const params = state.listing!.scenario;
    maintenance += scenarioMargin(now, marks, params).maintenanceQuote;
    initial += scenarioInitialOverRanges(ranges, marks, params);
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
    const active = e.size !== 0 || e.buy !== 0 || e.sell !== 0;
    if (active && e.market.instrument.kind === 'option') {
      withOptions.add(e.market.params.underlying);
    }
  }
  let equity = 0n;
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
    const active = e.size !== 0 || e.buy !== 0 || e.sell !== 0;
    if (active && m.instrument.kind === 'future' && withOptions.has(m.params.underlying)) {
      mixed.add(m.params.underlying);
    }
  }
  let initial: bigint;
  let maintenance: bigint;
  if (mixed.size === 0) {
    requirementOf(state, entries, withOptions, NONE);
    initial = requirement.initialQuote;
    maintenance = requirement.maintenanceQuote;
  } else {
    const linearInitial = new Set<string>();
    const linearMaintenance = new Set<string>();
    for (const u of mixed) {
      const own = entries.filter((e) => e.market.params.underlying === u);
      const only = new Set([u]);
      requirementOf(state, own, only, NONE);
      const { initialQuote: togetherInitial, maintenanceQuote: togetherMaintenance } = requirement;
      requirementOf(state, own, only, only);
      if (requirement.initialQuote < togetherInitial) linearInitial.add(u);
      if (requirement.maintenanceQuote < togetherMaintenance) linearMaintenance.add(u);
    }
    requirementOf(state, entries, withOptions, linearInitial);
    initial = requirement.initialQuote;
    if (linearInitial.size !== 0) {
      // Initial is not a sum over underlyings: the long premium of all of them
      // is one floor under the scenario losses of all of them. A future kept
      // out of the scenario beside another underlying's long options then
      // pays its linear rate on top of the premium, where in the scenario it
      // would have been under the floor: the account's whole scenario may
      // need less, and initial never takes more than it.
      requirementOf(state, entries, withOptions, NONE);
      if (requirement.initialQuote < initial) initial = requirement.initialQuote;
    }
    requirementOf(state, entries, withOptions, linearMaintenance);
    maintenance = requirement.maintenanceQuote;
  }
  result.equityQuote = equity;
  result.initialQuote = initial;
  result.maintenanceQuote = maintenance;
  return result;
}
