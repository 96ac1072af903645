import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { divBig } from '../../../src/lib/int.ts';
import { SCALE, sqrt } from '../../../src/math/index.ts';
import type { SviParams } from '../../../src/exchange/options/svi.ts';
import {
  SviError,
  sviImpliedVol,
  sviTotalVariance,
  validateSvi,
} from '../../../src/exchange/options/svi.ts';
import { forwardFromIndex, optionMark, timeYearsWad } from '../../../src/exchange/options/mark.ts';
import type { ScenarioInstrument } from '../../../src/exchange/options/margin.ts';
import {
  DEFAULT_SCENARIO_PARAMS as P,
  ScenarioParamsError,
  buildFutureScenarios,
  CUSHION_MAINTENANCE_PPM,
  buildOptionScenarios,
  priceMovesPpm,
  scenarioCount,
  scenarioMargin,
  shockedVols,
  validateScenarioParams,
} from '../../../src/exchange/options/margin.ts';

const W = (x: number): bigint => BigInt(Math.round(x * 1e6)) * 1_000_000_000_000n;
const SMILE: SviParams = { a: W(0.04), b: W(0.1), rho: W(-0.3), m: W(0), sigma: W(0.1) };
const NOW = Date.UTC(2026, 10, 1);
const EXPIRY = Date.UTC(2026, 11, 25, 8);
const F = 60_000_000_000n;

test('SVI: a valid smile passes; each broken condition is refused by name', () => {
  validateSvi(SMILE);
  const cases: [Partial<SviParams>, RegExp][] = [
    [{ b: -1n }, /svi\.b/],
    [{ rho: SCALE }, /svi\.rho/],
    [{ rho: -SCALE }, /svi\.rho/],
    [{ sigma: 0n }, /svi\.sigma/],
    [{ a: W(-0.2) }, /negative/],
    [{ a: 11n * SCALE }, /svi\.a/],
  ];
  for (const [change, message] of cases) {
    assert.throws(
      () => validateSvi({ ...SMILE, ...change }),
      (e) => e instanceof SviError && e.code === 'BadSvi' && message.test(e.message),
    );
  }
});

const validSvi: fc.Arbitrary<SviParams> = fc
  .record({
    b: fc.bigInt({ min: 0n, max: 2n * SCALE }),
    rho: fc.bigInt({ min: -SCALE + 1n, max: SCALE - 1n }),
    m: fc.bigInt({ min: -SCALE, max: SCALE }),
    sigma: fc.bigInt({ min: 1n, max: 2n * SCALE }),
    slack: fc.bigInt({ min: 0n, max: SCALE }),
  })
  .map(({ b, rho, m, sigma, slack }) => {
    // The floor b σ sqrt(1 − ρ²) with validateSvi's own rounding (half-even
    // products), so a = slack − floor is valid exactly when slack ≥ 0.
    const wad = (x: bigint, y: bigint): bigint => divBig(x * y, SCALE, 'halfEven');
    const floor = wad(wad(b, sigma), sqrt(SCALE - wad(rho, rho)));
    return { a: slack - floor, b, rho, m, sigma };
  });

test('SVI: valid parameters give non-negative variance and a volatility in range', () => {
  fc.assert(
    fc.property(validSvi, fc.bigInt({ min: -3n * SCALE, max: 3n * SCALE }), (p, k) => {
      validateSvi(p);
      assert.ok(sviTotalVariance(p, k) >= 0n);
      const vol = sviImpliedVol(p, 60_000n * SCALE, 50_000n * SCALE, SCALE / 4n);
      assert.ok(vol >= 10n ** 14n && vol <= 10n * SCALE);
    }),
  );
});

test('SVI: a flat smile (b = 0) is volatility sqrt(a / T)', () => {
  const flat: SviParams = { a: W(0.16), b: 0n, rho: 0n, m: 0n, sigma: W(0.1) };
  assert.equal(sviImpliedVol(flat, W(100), W(130), SCALE), W(0.4));
  assert.equal(sviImpliedVol(flat, W(100), W(70), SCALE / 4n), W(0.8));
});

test('option marks: put-call parity with the forward, and intrinsic at expiry', () => {
  const rate = W(0.05);
  const t = timeYearsWad(NOW, EXPIRY);
  const fwd = forwardFromIndex(F, rate, t);
  assert.ok(fwd > F);
  for (const strikeQuote of [40_000_000_000n, 60_000_000_000n, 80_000_000_000n]) {
    const base = {
      forwardQuote: fwd,
      strikeQuote,
      nowMs: NOW,
      expiryMs: EXPIRY,
      rateWad: rate,
      svi: SMILE,
    };
    const c = optionMark({ ...base, isCall: true });
    const p = optionMark({ ...base, isCall: false });
    assert.equal(c.ivWad, p.ivWad);
    // C − P = e^(−rT)(F − K), each mark rounded to a quote unit.
    const df = Math.exp(-0.05 * (Number(t) / 1e18));
    const parity = df * Number(fwd - strikeQuote);
    assert.ok(Math.abs(Number(c.markQuote - p.markQuote) - parity) < 3, `${strikeQuote}`);
    assert.ok(c.greeks.delta > 0n && p.greeks.delta < 0n && c.greeks.vega > 0n);
  }
  const expired = optionMark({
    forwardQuote: F,
    strikeQuote: 55_000_000_000n,
    isCall: true,
    nowMs: EXPIRY,
    expiryMs: EXPIRY,
    rateWad: 0n,
    svi: SMILE,
  });
  assert.equal(expired.markQuote, 5_000_000_000n);
});

test('scenario grid: ±12.5% in 13 points; vol shocks grow as expiry nears', () => {
  validateScenarioParams(P);
  const moves = priceMovesPpm(P);
  assert.equal(moves.length, 13);
  assert.equal(moves[0], -125_000);
  assert.equal(moves[6], 0);
  assert.equal(moves[12], 125_000);
  const month = shockedVols(W(0.5), W(30 / 365), P);
  assert.ok(month[0]! < W(0.5) && month[2]! > W(0.5));
  const week = shockedVols(W(0.5), W(7 / 365), P);
  assert.ok(week[2]! > month[2]! && week[0]! < month[0]!);
  const year = shockedVols(W(0.5), SCALE, P);
  assert.ok(year[2]! < month[2]!);
  assert.throws(() => validateScenarioParams({ ...P, pricePoints: 12 }), ScenarioParamsError);
  assert.throws(() => validateScenarioParams({ ...P, maintenancePpm: 0 }), ScenarioParamsError);
});

// A few instruments, built once: the scenario values are what the margin sums.
const LOTS = 1000;
const t = timeYearsWad(NOW, EXPIRY);
function option(strikeWhole: number, isCall: boolean): ScenarioInstrument {
  const strikeQuote = BigInt(strikeWhole) * 1_000_000n;
  const mark = optionMark({
    forwardQuote: F,
    strikeQuote,
    isCall,
    nowMs: NOW,
    expiryMs: EXPIRY,
    rateWad: 0n,
    svi: SMILE,
  });
  return buildOptionScenarios(
    {
      underlying: 'BTC',
      lotsPerBase: LOTS,
      forwardQuote: F,
      strikeQuote,
      isCall,
      timeYearsWad: t,
      ivWad: mark.ivWad,
      rateWad: 0n,
    },
    P,
  );
}
const MARKS = new Map<string, ScenarioInstrument>([
  ['FUT', buildFutureScenarios({ underlying: 'BTC', lotsPerBase: LOTS, markQuote: F }, P)],
  [
    'ETHFUT',
    buildFutureScenarios({ underlying: 'ETH', lotsPerBase: LOTS, markQuote: 3_000_000_000n }, P),
  ],
  ['C55', option(55_000, true)],
  ['C60', option(60_000, true)],
  ['C65', option(65_000, true)],
  ['P55', option(55_000, false)],
  ['P60', option(60_000, false)],
]);
const NAMES = [...MARKS.keys()];

test('futures only: the loss is the size times the 12.5% move, per underlying', () => {
  const m = scenarioMargin(
    [
      { instrument: 'FUT', sizeLots: 2000 },
      { instrument: 'ETHFUT', sizeLots: -1000 },
    ],
    MARKS,
    P,
  );
  // 2 BTC × 60,000 × 12.5% = 15,000; 1 ETH × 3,000 × 12.5% = 375 (quote has 6 decimals).
  assert.deepEqual(
    m.byUnderlying.map((w) => [w.underlying, w.priceMovePpm, w.lossQuote]),
    [
      ['BTC', -125_000, 15_000_000_000n],
      ['ETH', 125_000, 375_000_000n],
    ],
  );
  assert.equal(m.initialQuote, 15_375_000_000n);
  assert.equal(m.maintenanceQuote, 12_300_000_000n);
  assert.equal(m.worstScenario?.underlying, 'BTC');
  assert.deepEqual(scenarioMargin([], MARKS, P), {
    initialQuote: 0n,
    maintenanceQuote: 0n,
    worstScenario: null,
    byUnderlying: [],
  });
});

test('hedged positions need less margin than naked ones', () => {
  const m = (positions: { instrument: string; sizeLots: number }[]): bigint =>
    scenarioMargin(positions, MARKS, P).initialQuote;
  const nakedCall = m([{ instrument: 'C60', sizeLots: -1000 }]);
  assert.ok(
    m([
      { instrument: 'C60', sizeLots: -1000 },
      { instrument: 'FUT', sizeLots: 500 },
    ]) < nakedCall,
  );
  assert.ok(
    m([
      { instrument: 'C60', sizeLots: -1000 },
      { instrument: 'C65', sizeLots: 1000 },
    ]) < nakedCall,
  );
  const nakedPut = m([{ instrument: 'P60', sizeLots: -1000 }]);
  assert.ok(
    m([
      { instrument: 'P60', sizeLots: -1000 },
      { instrument: 'P55', sizeLots: 1000 },
    ]) < nakedPut,
  );
  // A long call hedged by a short future, against the future alone.
  const nakedFuture = m([{ instrument: 'FUT', sizeLots: -1000 }]);
  assert.ok(
    m([
      { instrument: 'FUT', sizeLots: -1000 },
      { instrument: 'C60', sizeLots: 1000 },
    ]) < nakedFuture,
  );
});

test('long options need their premium and no more', () => {
  const long = scenarioMargin([{ instrument: 'C60', sizeLots: 1000 }], MARKS, P);
  const premium = (MARKS.get('C60')!.valuePerLotWad * 1000n + 10n ** 12n - 1n) / 10n ** 12n;
  assert.equal(long.initialQuote, premium);
  assert.ok(long.worstScenario!.lossQuote <= premium);
});

const position = fc.record({
  instrument: fc.constantFrom(...NAMES),
  sizeLots: fc.integer({ min: -5000, max: 5000 }),
});

test('margin grows with the size of a portfolio and maintenance stays below initial', () => {
  fc.assert(
    fc.property(fc.array(position, { maxLength: 8 }), fc.integer({ min: 2, max: 5 }), (ps, c) => {
      const one = scenarioMargin(ps, MARKS, P);
      const more = scenarioMargin(
        ps.map((p) => ({ ...p, sizeLots: p.sizeLots * c })),
        MARKS,
        P,
      );
      assert.ok(more.initialQuote >= one.initialQuote);
      assert.ok(more.maintenanceQuote >= one.maintenanceQuote);
      assert.ok(one.maintenanceQuote <= one.initialQuote);
      assert.ok(one.initialQuote >= 0n);
    }),
    { numRuns: 200 },
  );
});

test('adding a short call never lowers the margin of short calls', () => {
  const shortPosition = fc.record({
    instrument: fc.constantFrom('C55', 'C60', 'C65'),
    sizeLots: fc.integer({ min: -5000, max: -1 }),
  });
  fc.assert(
    fc.property(fc.array(shortPosition, { maxLength: 6 }), shortPosition, (ps, extra) => {
      const before = scenarioMargin(ps, MARKS, P).initialQuote;
      const after = scenarioMargin([...ps, extra], MARKS, P).initialQuote;
      assert.ok(after >= before);
    }),
    { numRuns: 200 },
  );
});

/**
 * A short option without a fresh smile as listed_margin.ts values it, within
 * its grace (its scenario losses `x` up to its cushion `c`, no cushion in
 * maintenance) and after it (up to c − k, and k of the cushion apart: k half of
 * c rounded up to a wad).
 */
function graceShort(c: bigint, x: bigint, shortMin: bigint, over: boolean): ScenarioInstrument {
  const k = divBig(c * CUSHION_MAINTENANCE_PPM, 1_000_000n, 'ceil');
  const cap = over ? c - k : c;
  const zeros = new Array<bigint>(scenarioCount(P)).fill(0n);
  return {
    underlying: 'BTC',
    isOption: true,
    pnlPerLotWad: zeros,
    longPnlPerLotWad: zeros,
    longMaintenancePnlPerLotWad: zeros,
    shortMaintenancePnlPerLotWad: zeros.map((_, i) => (i === 0 ? (x < cap ? x : cap) : 0n)),
    valuePerLotWad: 1n,
    shortMinPerLotWad: shortMin,
    shortLossPerLotWad: 0n,
    shortCushionPerLotWad: c,
    cushionMaintenancePpm: over ? CUSHION_MAINTENANCE_PPM : 0n,
  };
}

test('maintenance does not fall when the grace of a short without a fresh smile ends, at 100% too', () => {
  const full = { ...P, maintenancePpm: 1_000_000 };
  const margins = (
    c: bigint,
    x: bigint,
    shortMin: bigint,
    lots: number,
    params: typeof P,
  ): { within: bigint; over: bigint; initial: bigint } => {
    const at = (over: boolean) =>
      scenarioMargin(
        [{ instrument: 'S', sizeLots: -lots }],
        new Map([['S', graceShort(c, x, shortMin, over)]]),
        params,
      );
    return {
      within: at(false).maintenanceQuote,
      over: at(true).maintenanceQuote,
      initial: at(true).initialQuote,
    };
  };
  // An odd cushion, scenario losses beyond it, 3 lots: exactly 3 × (c + min)
  // is 1 wad over a whole quote unit, which the half wad per lot lost to
  // rounding took away (maintenance fell by a unit when the grace ended).
  const c = 1_000_001n;
  const shortMin = 666_666_666_667n - c + 1_000_000_000_000n;
  const m = margins(c, 2n * c, shortMin, 3, full);
  assert.equal(m.within, 6n);
  assert.equal(m.over, 6n);
  assert.ok(m.over <= m.initial);
  fc.assert(
    fc.property(
      fc.bigInt({ min: 1n, max: 10n ** 15n }),
      fc.bigInt({ min: -(10n ** 15n), max: 2n * 10n ** 15n }),
      fc.bigInt({ min: 0n, max: 10n ** 15n }),
      fc.integer({ min: 1, max: 9 }),
      fc.integer({ min: 0, max: 1_000_000 }),
      (c, x, shortMin, lots, maintenancePpm) => {
        const r = margins(c, x, shortMin, lots, { ...P, maintenancePpm });
        assert.ok(r.over >= r.within, `maintenance fell from ${r.within} to ${r.over}`);
        assert.ok(r.over <= r.initial, `maintenance ${r.over} above initial ${r.initial}`);
      },
    ),
    { numRuns: 300 },
  );
});
