// The option layer against float64 (test/math/float_reference.ts) over seeded
// random inputs, extremes weighted in: SVI parameters anywhere validation lets
// through (its bounds included), forwards from one quote unit to 10^18,
// whole-currency strikes up to the pricing domain's 10^6 ratio, a millisecond
// to three years to expiry; marks, their rounding and monotonicity; and the
// scenario margin of random portfolios against a float64 recomputation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { SviParams } from '../../../src/exchange/options/svi.ts';
import {
  SVI_PARAM_WAD_MAX,
  sviImpliedVol,
  validateSvi,
} from '../../../src/exchange/options/svi.ts';
import { optionMark, timeYearsWad, WAD_PER_QUOTE } from '../../../src/exchange/options/mark.ts';
import type { ScenarioInstrument } from '../../../src/exchange/options/margin.ts';
import {
  DEFAULT_SCENARIO_PARAMS as P,
  buildFutureScenarios,
  buildOptionScenarios,
  priceMovesPpm,
  scenarioMargin,
  shockedVols,
} from '../../../src/exchange/options/margin.ts';
import { SCALE } from '../../../src/math/index.ts';
import { MathError } from '../../../src/math/errors.ts';
import { floatBlackScholes } from '../../math/float_reference.ts';

const WAD = 1e-18;
const num = (x: bigint): number => Number(x) * WAD;
const VOL_MIN = 1e-4;
const VOL_MAX = 10;
const NOW = Date.UTC(2026, 10, 1);

const edge = (lo: bigint, hi: bigint): fc.Arbitrary<bigint> =>
  fc.oneof(fc.constantFrom(lo, hi), fc.bigInt({ min: lo, max: hi }));

/** SVI parameters validation accepts, drawn at its bounds as often as inside. */
const svi: fc.Arbitrary<SviParams> = fc
  .record({
    a: edge(-SVI_PARAM_WAD_MAX, SVI_PARAM_WAD_MAX),
    b: edge(0n, SVI_PARAM_WAD_MAX),
    rho: edge(-SCALE + 1n, SCALE - 1n),
    m: edge(-SVI_PARAM_WAD_MAX, SVI_PARAM_WAD_MAX),
    sigma: edge(1n, SVI_PARAM_WAD_MAX),
  })
  .map((p) => {
    // Lift a to the least that keeps the variance's minimum at 0 or above.
    const floor = -num(p.b) * num(p.sigma) * Math.sqrt(1 - num(p.rho) ** 2);
    const least = BigInt(Math.ceil(floor * 1e18)) + 2n;
    return p.a < least ? { ...p, a: least } : p;
  })
  .filter((p) => {
    try {
      validateSvi(p);
      return true;
    } catch {
      return false;
    }
  });

/** Forward and strike in quote units: a strike of whole currency, within 10^6 of the forward. */
const forwardAndStrike = fc
  .tuple(
    fc.integer({ min: 0, max: 18 }),
    fc.integer({ min: 1, max: 9_999 }),
    fc.double({ min: -6, max: 6, noNaN: true }),
  )
  .map(([digits, mantissa, logRatio]) => {
    const forward = (10n ** BigInt(digits) * BigInt(mantissa)) / 1_000n + 1n;
    let whole = BigInt(Math.round((Number(forward) * 10 ** logRatio) / 1e6));
    if (whole < 1n) whole = 1n;
    return { forward, strike: whole * 1_000_000n };
  })
  .filter(
    ({ forward, strike }) => strike <= forward * 1_000_000n && forward <= strike * 1_000_000n,
  );

const expiryIn = fc.oneof(
  fc.constantFrom(1, 1_000, 60_000, 3 * 365 * 86_400_000),
  fc.integer({ min: 1, max: 3 * 365 * 86_400_000 }),
);

function floatSviVol(p: SviParams, F: number, K: number, T: number): number {
  const x = Math.log(K / F) - num(p.m);
  const w = num(p.a) + num(p.b) * (num(p.rho) * x + Math.sqrt(x * x + num(p.sigma) ** 2));
  return Math.min(VOL_MAX, Math.max(VOL_MIN, Math.sqrt(Math.max(0, w) / T)));
}

test('SVI volatility agrees with float64 over every valid smile, bounds included', () => {
  fc.assert(
    fc.property(svi, forwardAndStrike, expiryIn, (p, { forward, strike }, inMs) => {
      const T = timeYearsWad(NOW, NOW + inMs);
      const vol = sviImpliedVol(p, forward * WAD_PER_QUOTE, strike * WAD_PER_QUOTE, T);
      assert.ok(vol >= 10n ** 14n && vol <= 10n * SCALE, 'clamped to the math range');
      const want = floatSviVol(p, Number(forward), Number(strike), num(T));
      // w's own rounding (a few wads, and float64's 1e-15 of its terms) moves
      // sqrt(w / T) by δw / (2 σ T).
      const terms = Math.abs(num(p.a)) + num(p.b) * (30 + num(p.sigma));
      const dw = 1e-14 * terms + 6e-18;
      const tolerance = 1e-12 * want + dw / (2 * want * num(T)) + 2e-18;
      assert.ok(Math.abs(num(vol) - want) <= tolerance, `${num(vol)} vs ${want}`);
    }),
    { numRuns: 600, seed: 1126 },
  );
});

test('option marks agree with float64, round half to even, and are monotone, with parity', () => {
  fc.assert(
    fc.property(
      forwardAndStrike,
      expiryIn,
      fc.oneof(fc.constantFrom(10n ** 14n, 10n * SCALE), edge(10n ** 14n, 10n * SCALE)),
      ({ forward, strike }, inMs, volWad) => {
        // A flat smile at volWad: total variance volWad² T.
        const T = timeYearsWad(NOW, NOW + inMs);
        const flat: SviParams = {
          a: (volWad * volWad * T) / SCALE / SCALE,
          b: 0n,
          rho: 0n,
          m: 0n,
          sigma: SCALE,
        };
        const markOf = (f: bigint, k: bigint, isCall: boolean) => {
          try {
            return optionMark({
              forwardQuote: f,
              strikeQuote: k,
              isCall,
              nowMs: NOW,
              expiryMs: NOW + inMs,
              rateWad: 0n,
              svi: flat,
            });
          } catch (e) {
            // Only outside the pricing domain, as a typed error.
            assert.ok(e instanceof MathError, String(e));
            const outside =
              f * WAD_PER_QUOTE > 10n ** 33n ||
              k * WAD_PER_QUOTE > 10n ** 33n ||
              f > k * 1_000_000n ||
              k > f * 1_000_000n;
            assert.ok(outside, `${String(e)} for ${f} ${k}`);
            return null;
          }
        };
        const call = markOf(forward, strike, true);
        const put = markOf(forward, strike, false);
        if (call === null || put === null) return;
        for (const [mark, isCall] of [
          [call, true],
          [put, false],
        ] as const) {
          // Exactly the math's price rounded half to even to quote units.
          const wad = mark.greeks.price;
          const q = wad / WAD_PER_QUOTE;
          const r = wad - q * WAD_PER_QUOTE;
          const half = WAD_PER_QUOTE / 2n;
          const rounded = r > half || (r === half && q % 2n === 1n) ? q + 1n : q;
          assert.equal(mark.markQuote, rounded, 'half to even');
          const ref = floatBlackScholes(
            Number(forward),
            Number(strike),
            num(mark.timeYearsWad),
            num(mark.ivWad),
            0,
            isCall,
          );
          assert.ok(
            Math.abs(Number(mark.markQuote) - ref.price) <= 0.5 + 1e-11 * ref.terms + 1e-6,
            `${isCall ? 'call' : 'put'} ${forward} ${strike}: ${mark.markQuote} vs ${ref.price}`,
          );
        }
        // Parity at rate 0: C − P = F − K, each mark within half a unit.
        const parity = call.markQuote - put.markQuote - (forward - strike);
        assert.ok(parity >= -1n && parity <= 1n, `parity off by ${parity}`);
        // Monotone: a call falls and a put rises with the strike; the reverse with the forward.
        const nextStrike = strike + 1_000_000n;
        const c2 = markOf(forward, nextStrike, true);
        const p2 = markOf(forward, nextStrike, false);
        if (c2 !== null && p2 !== null && nextStrike <= forward * 1_000_000n) {
          assert.ok(c2.markQuote <= call.markQuote, 'call non-increasing in strike');
          assert.ok(p2.markQuote >= put.markQuote, 'put non-decreasing in strike');
        }
        const nextForward = forward + forward / 1000n + 1n;
        const c3 = markOf(nextForward, strike, true);
        const p3 = markOf(nextForward, strike, false);
        if (c3 !== null && p3 !== null && strike * 1_000_000n >= nextForward) {
          assert.ok(c3.markQuote >= call.markQuote, 'call non-decreasing in forward');
          assert.ok(p3.markQuote <= put.markQuote, 'put non-increasing in forward');
        }
      },
    ),
    { numRuns: 400, seed: 1127 },
  );
});

test('scenario margin agrees with a float64 recomputation, is never negative, and keeps its floors', () => {
  const LOTS = 10;
  const instrument = fc.record({
    strikeRatio: fc.double({ min: 0.3, max: 3, noNaN: true }),
    isCall: fc.boolean(),
    vol: fc.double({ min: 0.05, max: 4, noNaN: true }),
    inMs: fc.integer({ min: 1_000, max: 365 * 86_400_000 }),
    size: fc.integer({ min: -50, max: 50 }),
  });
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 100_000_000 }),
      fc.array(instrument, { minLength: 1, maxLength: 6 }),
      fc.integer({ min: -50, max: 50 }),
      (forwardWhole, options, futureLots) => {
        const forward = BigInt(forwardWhole) * 1_000_000n;
        const marks = new Map<string, ScenarioInstrument>();
        marks.set(
          'FUT',
          buildFutureScenarios({ underlying: 'X', lotsPerBase: LOTS, markQuote: forward }, P),
        );
        const positions = [{ instrument: 'FUT', sizeLots: futureLots }];
        const moves = priceMovesPpm(P);
        const floatLoss = new Array<number>(moves.length * 3).fill(0);
        moves.forEach((move, i) => {
          for (let v = 0; v < 3; v++) {
            floatLoss[i * 3 + v]! -= (futureLots / LOTS) * Number(forward) * (move / 1e6);
          }
        });
        let shortMin = 0;
        let premium = 0;
        options.forEach((o, n) => {
          const strike = BigInt(Math.max(1, Math.round(forwardWhole * o.strikeRatio))) * 1_000_000n;
          const T = timeYearsWad(NOW, NOW + o.inMs);
          const iv = BigInt(Math.round(o.vol * 1e6)) * 10n ** 12n;
          const name = `O${n}`;
          marks.set(
            name,
            buildOptionScenarios(
              {
                underlying: 'X',
                lotsPerBase: LOTS,
                forwardQuote: forward,
                strikeQuote: strike,
                isCall: o.isCall,
                timeYearsWad: T,
                ivWad: iv,
                rateWad: 0n,
              },
              P,
            ),
          );
          positions.push({ instrument: name, sizeLots: o.size });
          const value = (f: number, vol: bigint) =>
            floatBlackScholes(f, Number(strike), num(T), num(vol), 0, o.isCall).price;
          const now = value(Number(forward), iv);
          const vols = shockedVols(iv, T, P);
          moves.forEach((move, i) => {
            vols.forEach((vol, v) => {
              const moved = value(Number(forward) * (1 + move / 1e6), vol);
              floatLoss[i * 3 + v]! -= (o.size / LOTS) * (moved - now);
            });
          });
          if (o.size < 0)
            shortMin += (-o.size / LOTS) * Number(forward) * (P.shortOptionMinPpm / 1e6);
          else premium += (o.size / LOTS) * now;
        });
        const m = scenarioMargin(positions, marks, P);
        const requirement = Math.max(0, ...floatLoss) + shortMin;
        const tolerance = 2 + 1e-9 * Number(forward) * 60;
        assert.ok(m.maintenanceQuote >= 0n && m.initialQuote >= m.maintenanceQuote, 'ordered');
        assert.ok(Number(m.initialQuote) >= premium - tolerance, 'the long premium is a floor');
        assert.ok(Number(m.initialQuote) >= shortMin - 1, 'the short minimum is a floor');
        assert.ok(
          Math.abs(Number(m.initialQuote) - Math.max(requirement, premium)) <= tolerance,
          `initial ${m.initialQuote} vs float64 ${Math.max(requirement, premium)}`,
        );
        assert.ok(
          Math.abs(Number(m.maintenanceQuote) - requirement * (P.maintenancePpm / 1e6)) <=
            tolerance,
          `maintenance ${m.maintenanceQuote} vs float64 ${requirement * 0.8}`,
        );
      },
    ),
    { numRuns: 150, seed: 1128 },
  );
});
