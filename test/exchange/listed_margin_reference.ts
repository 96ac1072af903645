// The margin of an account's listed records as it was computed before each
// account kept its scenario sums (src/exchange/listed_margin.ts): afresh on
// every check, through scenarioMargin and scenarioInitialOverRanges over all
// of its records. The sums kept from check to check must give the same
// amounts, to the unit, whatever changed in between.

import { divBig } from '../../src/lib/int.ts';
import { scenarioOf } from '../../src/exchange/listed_margin.ts';
import { imfPpm } from '../../src/exchange/margin.ts';
import type {
  MarginPosition,
  MarginRange,
  ScenarioInstrument,
} from '../../src/exchange/options/index.ts';
import { scenarioInitialOverRanges, scenarioMargin } from '../../src/exchange/options/index.ts';
import type { Account, ExchangeState, MarketState } from '../../src/exchange/state.ts';
import { PPM_BIG, ppmCeil } from '../../src/exchange/units.ts';

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
export function referenceListedMargin(
  state: ExchangeState,
  account: Account,
  extra: MarketState | null,
  extraBuyLots: number,
  extraSellLots: number,
): { equityQuote: bigint; initialQuote: bigint; maintenanceQuote: bigint } {
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
  return { equityQuote: equity, initialQuote: initial, maintenanceQuote: maintenance };
}
