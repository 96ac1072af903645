// bench:margin — scenario margin of one account holding 50 option positions,
// recomputed per second on one core. Ours (src/exchange/options/margin.ts):
// each instrument's scenario values are built once per mark update (13 price
// points × 3 volatility cases = 39 bigint Black–Scholes evaluations) and cached;
// an account's recomputation is a weighted sum over them. Side by side, in the
// same run, what a user would otherwise write: plain float64 JavaScript
// (Math.exp/log/sqrt, Hart's CDF) revaluing every position in every scenario
// on each recomputation (50 × 39 = 1,950 evaluations), and the same float64 code
// with the same per-instrument cache. Also the largest difference between our
// margin and the float64 one. Prints one JSON line.
//
// Cost model: rebuild = instruments × 39 Black–Scholes (once per mark change,
// shared by every account); per account = positions × 39 multiply-adds.

import { Prng } from '../src/lib/prng.ts';
import type { ScenarioInstrument } from '../src/exchange/options/margin.ts';
import {
  DEFAULT_SCENARIO_PARAMS as P,
  buildOptionScenarios,
  priceMovesPpm,
  scenarioMargin,
  shockedVols,
} from '../src/exchange/options/margin.ts';
import { optionMark, timeYearsWad } from '../src/exchange/options/mark.ts';
import type { SviParams } from '../src/exchange/options/svi.ts';
import { cdfHart } from './float.ts';
import { initialMarginQuote } from '../src/exchange/margin.ts';
import { DEVNET_LISTING } from '../src/exchange/genesis.ts';
import type { MarketState } from '../src/exchange/state.ts';
import { Harness, USDC, genesis, key, limit } from '../test/exchange/helpers.ts';
import { referenceListedMargin } from '../test/exchange/listed_margin_reference.ts';

const ROUNDS = 5;
const NOW = Date.UTC(2026, 10, 2);
const E = 10n ** 18n;
const SVI: SviParams = { a: E / 50n, b: E / 10n, rho: -3n * (E / 10n), m: 0n, sigma: E / 10n };
const FORWARD = 60_000_000_000n;
const LOTS = 1000;

// --- float64 Black–Scholes (price only), as in bench/math.ts -----------------------

function floatPrice(spot: number, strike: number, t: number, vol: number, isCall: boolean): number {
  const volSqrtT = vol * Math.sqrt(t);
  const d1 = (Math.log(spot / strike) + ((vol * vol) / 2) * t) / volSqrtT;
  const d2 = d1 - volSqrtT;
  return isCall
    ? spot * cdfHart(d1) - strike * cdfHart(d2)
    : strike * cdfHart(-d2) - spot * cdfHart(-d1);
}

// --- the account ---------------------------------------------------------------------

interface Leg {
  name: string;
  strike: number;
  isCall: boolean;
  t: number;
  vol: number;
  /** [down, unchanged, up] volatilities, as ours computes them. */
  vols: number[];
  sizeLots: number;
}

function account(): { legs: Leg[]; marks: Map<string, ScenarioInstrument>; buildMs: number } {
  const prng = new Prng(42);
  const expiries = [7, 14, 30, 60, 90].map((d) => Date.UTC(2026, 10, 2 + d, 8));
  const strikes = [50_000, 55_000, 60_000, 65_000, 70_000];
  const legs: Leg[] = [];
  const marks = new Map<string, ScenarioInstrument>();
  let buildNs = 0n;
  for (const expiryMs of expiries) {
    for (const strike of strikes) {
      for (const isCall of [true, false]) {
        const name = `${expiryMs}-${strike}-${isCall ? 'C' : 'P'}`;
        const strikeQuote = BigInt(strike) * 1_000_000n;
        const start = process.hrtime.bigint();
        const m = optionMark({
          forwardQuote: FORWARD,
          strikeQuote,
          isCall,
          nowMs: NOW,
          expiryMs,
          rateWad: 0n,
          svi: SVI,
        });
        const t = timeYearsWad(NOW, expiryMs);
        marks.set(
          name,
          buildOptionScenarios(
            {
              underlying: 'BTC',
              lotsPerBase: LOTS,
              forwardQuote: FORWARD,
              strikeQuote,
              isCall,
              timeYearsWad: t,
              ivWad: m.ivWad,
              rateWad: 0n,
            },
            P,
          ),
        );
        buildNs += process.hrtime.bigint() - start;
        const vols = shockedVols(m.ivWad, t, P).map((v) => Number(v) / 1e18);
        const sizeLots = (prng.int(2) === 0 ? -1 : 1) * (100 + prng.int(5000));
        legs.push({
          name,
          strike,
          isCall,
          t: Number(t) / 1e18,
          vol: Number(m.ivWad) / 1e18,
          vols,
          sizeLots,
        });
      }
    }
  }
  return { legs, marks, buildMs: Number(buildNs) / 1e6 };
}

// --- float64: the same computation ---------------------------------------------------

const MOVES = priceMovesPpm(P).map((m) => m / 1e6);
const F = Number(FORWARD) / 1e6;

/** Float64, revaluing every position in every scenario. */
function floatMargin(legs: readonly Leg[]): { initial: number; maintenance: number } {
  const n = MOVES.length * 3;
  const loss = new Array<number>(n).fill(0);
  let shortMin = 0;
  let premium = 0;
  for (const leg of legs) {
    const now = floatPrice(F, leg.strike, leg.t, leg.vol, leg.isCall);
    const base = leg.sizeLots / LOTS;
    for (let i = 0; i < MOVES.length; i++) {
      const spot = F * (1 + MOVES[i]!);
      for (let v = 0; v < 3; v++) {
        loss[i * 3 + v]! -=
          base * (floatPrice(spot, leg.strike, leg.t, leg.vols[v]!, leg.isCall) - now);
      }
    }
    if (leg.sizeLots < 0) shortMin -= base * F * (P.shortOptionMinPpm / 1e6);
    else premium += base * now;
  }
  const worst = Math.max(0, ...loss);
  const requirement = worst + shortMin;
  return {
    initial: Math.max(requirement, premium),
    maintenance: (requirement * P.maintenancePpm) / 1e6,
  };
}

/** Float64 with the same per-instrument cache as ours. */
function floatTables(legs: readonly Leg[]): Map<string, { pnl: Float64Array; value: number }> {
  const out = new Map<string, { pnl: Float64Array; value: number }>();
  for (const leg of legs) {
    const now = floatPrice(F, leg.strike, leg.t, leg.vol, leg.isCall);
    const pnl = new Float64Array(MOVES.length * 3);
    for (let i = 0; i < MOVES.length; i++) {
      for (let v = 0; v < 3; v++) {
        pnl[i * 3 + v] =
          (floatPrice(F * (1 + MOVES[i]!), leg.strike, leg.t, leg.vols[v]!, leg.isCall) - now) /
          LOTS;
      }
    }
    out.set(leg.name, { pnl, value: now / LOTS });
  }
  return out;
}

function floatCachedMargin(
  legs: readonly Leg[],
  tables: Map<string, { pnl: Float64Array; value: number }>,
): number {
  const loss = new Float64Array(MOVES.length * 3);
  let shortMin = 0;
  let premium = 0;
  for (const leg of legs) {
    const t = tables.get(leg.name)!;
    for (let s = 0; s < loss.length; s++) loss[s]! -= leg.sizeLots * t.pnl[s]!;
    if (leg.sizeLots < 0) shortMin -= (leg.sizeLots / LOTS) * F * (P.shortOptionMinPpm / 1e6);
    else premium += leg.sizeLots * t.value;
  }
  let worst = 0;
  for (let s = 0; s < loss.length; s++) if (loss[s]! > worst) worst = loss[s]!;
  return Math.max(worst + shortMin, premium);
}

// --- a market maker's order check ----------------------------------------------------

interface Maker {
  check: () => void;
  afresh: () => void;
  optionMarkets: number;
  restingOrders: number;
}

/** The devnet's listing at NOW, a flat smile per expiry, and a maker quoting every option. */
function maker(): Maker {
  const h = new Harness(genesis({ genesisTimeMs: NOW, listing: DEVNET_LISTING }));
  h.block([], 60_000);
  const state = h.ex.state;
  const listed = (): MarketState[] => state.markets.filter((m) => m.listed && !m.retired);
  const expiries = new Map<string, { underlying: string; expiryMs: number }>();
  for (const m of listed()) {
    const { underlying } = m.params;
    expiries.set(`${underlying}${m.expiryMs}`, { underlying, expiryMs: m.expiryMs });
  }
  h.smiles = [...expiries.values()].map((e) => ({ ...e, svi: SVI }));
  h.block([], 1_000);
  const mm = key('bench-margin-maker');
  const taker = key('bench-margin-taker');
  h.fund(mm, 1_000_000n * USDC);
  h.fund(taker, 1_000_000n * USDC);
  const options = listed().filter((m) => m.instrument.kind === 'option' && m.markTicks > 2);
  h.block(
    options.flatMap((m) => [
      h.tx(mm, limit(m.params.instrument, 'buy', m.markTicks - 1, 20)),
      h.tx(mm, limit(m.params.instrument, 'sell', m.markTicks + 1, 20)),
    ]),
  );
  // A few of the quotes taken: the maker holds positions too.
  h.block(
    options
      .filter((_, i) => i % 4 === 0)
      .map((m, i) =>
        h.tx(
          taker,
          limit(
            m.params.instrument,
            i % 2 === 0 ? 'buy' : 'sell',
            i % 2 === 0 ? m.markTicks + 1 : m.markTicks - 1,
            5,
          ),
        ),
      ),
  );
  const account = h.account(mm)!;
  let next = 0;
  return {
    check: () => {
      const m = options[next++ % options.length]!;
      sink ^= Number(initialMarginQuote(state, account, m.index, 1, 0) & 1n);
    },
    afresh: () => {
      const m = options[next++ % options.length]!;
      sink ^= Number(referenceListedMargin(state, account, m, 1, 0).initialQuote & 1n);
    },
    optionMarkets: options.length,
    restingOrders: options.reduce(
      (n, m) =>
        n +
        (m.book.ownerRestingLots(account.index, 'buy') > 0 ? 1 : 0) +
        (m.book.ownerRestingLots(account.index, 'sell') > 0 ? 1 : 0),
      0,
    ),
  };
}

// --- timing ----------------------------------------------------------------------------

let sink = 0;

function rate(iterations: number, run: () => void): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) run();
  return iterations / (Number(process.hrtime.bigint() - start) / 1e9);
}

function main(): void {
  account(); // warm up the math module's tables and the JIT
  const { legs, marks, buildMs } = account();
  const positions = legs.map((l) => ({ instrument: l.name, sizeLots: l.sizeLots }));
  const tables = floatTables(legs);
  const ours = (): void => {
    sink ^= Number(scenarioMargin(positions, marks, P).initialQuote & 1n);
  };
  const naive = (): void => {
    sink += floatMargin(legs).initial;
  };
  const cached = (): void => {
    sink += floatCachedMargin(legs, tables);
  };
  rate(200, ours);
  rate(200, naive);
  rate(2000, cached);
  const best = { ours: 0, naive: 0, cached: 0 };
  for (let r = 0; r < ROUNDS; r++) {
    best.ours = Math.max(best.ours, rate(2_000, ours));
    best.naive = Math.max(best.naive, rate(500, naive));
    best.cached = Math.max(best.cached, rate(20_000, cached));
  }
  const mm = maker();
  rate(500, mm.check);
  rate(50, mm.afresh);
  const makerBest = { kept: 0, afresh: 0 };
  for (let r = 0; r < ROUNDS; r++) {
    makerBest.kept = Math.max(makerBest.kept, rate(5_000, mm.check));
    makerBest.afresh = Math.max(makerBest.afresh, rate(200, mm.afresh));
  }
  // The largest difference between ours and float64 over random portfolios of these 50 instruments.
  const prng = new Prng(7);
  let maxAbsDiffQuote = 0;
  let maxRelDiff = 0;
  for (let k = 0; k < 200; k++) {
    const sized = legs.map((l) => ({
      ...l,
      sizeLots: (prng.int(2) === 0 ? -1 : 1) * prng.int(5000),
    }));
    const o = scenarioMargin(
      sized.map((l) => ({ instrument: l.name, sizeLots: l.sizeLots })),
      marks,
      P,
    );
    const f = floatMargin(sized);
    for (const [a, b] of [
      [Number(o.initialQuote) / 1e6, f.initial],
      [Number(o.maintenanceQuote) / 1e6, f.maintenance],
    ] as const) {
      maxAbsDiffQuote = Math.max(maxAbsDiffQuote, Math.abs(a - b));
      if (b > 0) maxRelDiff = Math.max(maxRelDiff, Math.abs(a - b) / b);
    }
  }
  const result = {
    bench: 'margin',
    what: 'scenario margin recomputations per second of one account with 50 option positions, one core',
    grid: {
      pricePoints: P.pricePoints,
      volCases: 3,
      scenarios: P.pricePoints * 3,
      positions: legs.length,
    },
    ours: {
      recomputationsPerSec: Math.round(best.ours),
      tableBuildMsFor50Instruments: Number(buildMs.toFixed(1)),
    },
    float64Naive: {
      recomputationsPerSec: Math.round(best.naive),
      blackScholesPerRecomputation: legs.length * MOVES.length * 3,
    },
    float64Cached: { recomputationsPerSec: Math.round(best.cached) },
    ratioOursOverFloat64Naive: Number((best.ours / best.naive).toFixed(2)),
    ratioFloat64CachedOverOurs: Number((best.cached / best.ours).toFixed(1)),
    maxAbsDiffQuote: Number(maxAbsDiffQuote.toExponential(2)),
    maxRelDiff: Number(maxRelDiff.toExponential(2)),
    makerOrderCheck: {
      what: 'initial margin with one more order, an account quoting both sides of every devnet option',
      optionMarkets: mm.optionMarkets,
      restingOrders: mm.restingOrders,
      keptSumsChecksPerSec: Math.round(makerBest.kept),
      afreshChecksPerSec: Math.round(makerBest.afresh),
      ratioKeptOverAfresh: Number((makerBest.kept / makerBest.afresh).toFixed(1)),
    },
    bar: { recomputationsPerSecMin: 2_000, met: best.ours >= 2_000 },
  };
  if (Number.isNaN(sink)) process.exitCode = 3;
  console.log(JSON.stringify(result));
}

main();
