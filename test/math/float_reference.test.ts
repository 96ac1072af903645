// Black–Scholes and implied volatility against an independent float64
// reference (float_reference.ts) over seeded random markets across the whole
// accepted domain, extremes weighted in: spots and strikes from one wad to
// 10^15 and up to 10^6 apart, a third of a second to 30 years, 0.01% to 1000%
// volatility, rates from −1 to 1. The mpmath fixture (blackscholes.test.ts)
// holds the 1e−12 bar; this checks every output against a second,
// table-free implementation wherever float64 can tell, and the price against
// the documented envelope where a rate makes the bar unreachable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { blackScholes, impliedVol, MathError, SCALE } from '../../src/math/index.ts';
import { floatBlackScholes } from './float_reference.ts';

const PRICE_MAX = 10n ** 33n;
const TIME_MIN = 10n ** 10n;
const TIME_MAX = 30n * SCALE;
const VOL_MIN = 10n ** 14n;
const VOL_MAX = 10n * SCALE;
const WAD = 1e-18;
/** 2^-118: the documented price error, max(S, K e^(−rT)) · 2^−120, with room. */
const ENVELOPE = 2 ** -118;

/** Log-uniform over [lo, hi], with the ends themselves drawn often. */
function logUniform(lo: bigint, hi: bigint): fc.Arbitrary<bigint> {
  const inside = fc
    .tuple(
      fc.integer({ min: lo.toString().length - 1, max: hi.toString().length - 1 }),
      fc.bigInt({ min: 1n, max: SCALE }),
    )
    .map(([digits, mantissa]) => {
      const x = (10n ** BigInt(digits) * mantissa) / SCALE;
      return x < lo ? lo : x > hi ? hi : x;
    });
  return fc.oneof(
    { weight: 1, arbitrary: fc.constantFrom(lo, hi) },
    { weight: 6, arbitrary: inside },
  );
}

const market = fc
  .record({
    spot: logUniform(1n, PRICE_MAX),
    // log10(K/S) in millionths, the ends (10^±6) included.
    logRatio: fc.oneof(
      fc.constantFrom(-6_000_000, 0, 6_000_000),
      fc.integer({ min: -6_000_000, max: 6_000_000 }),
    ),
    timeYears: logUniform(TIME_MIN, TIME_MAX),
    vol: logUniform(VOL_MIN, VOL_MAX),
    rate: fc.oneof(
      fc.constantFrom(-SCALE, 0n, SCALE),
      fc.bigInt({ min: -SCALE, max: SCALE }),
      fc.constant(0n),
    ),
  })
  .map(({ spot, logRatio, timeYears, vol, rate }) => {
    let strike = BigInt(Math.round(Number(spot) * 10 ** (logRatio / 1e6)));
    if (strike < 1n) strike = 1n;
    if (strike > PRICE_MAX) strike = PRICE_MAX;
    if (strike > spot * 1_000_000n) strike = spot * 1_000_000n;
    if (spot > strike * 1_000_000n) strike = (spot + 999_999n) / 1_000_000n;
    return { spot, strike, timeYears, vol, rate };
  });

const num = (x: bigint): number => Number(x) * WAD;

/**
 * Markets whose d1 lies deep in the tails (6 to 17 either side), where the
 * normal table is at its least precise and greeks multiply the density most.
 */
const tailMarket = fc
  .record({
    spot: logUniform(1n, PRICE_MAX),
    timeYears: logUniform(TIME_MIN, TIME_MAX),
    vol: logUniform(VOL_MIN, VOL_MAX),
    rate: fc.oneof(fc.constant(0n), fc.bigInt({ min: -SCALE, max: SCALE })),
    d1: fc.double({ min: 6, max: 17, noNaN: true }),
    negative: fc.boolean(),
  })
  .map(({ spot, timeYears, vol, rate, d1, negative }) => {
    const sqrtVariance = num(vol) * Math.sqrt(num(timeYears));
    const d = negative ? -d1 : d1;
    // ln(S/K) = d1 σ√T − rT − σ²T/2.
    const logRatio = d * sqrtVariance - num(rate) * num(timeYears) - sqrtVariance ** 2 / 2;
    let strike = BigInt(
      Math.round(Number(spot) * Math.exp(-Math.max(-13.8, Math.min(13.8, logRatio)))),
    );
    if (strike < 1n) strike = 1n;
    if (strike > PRICE_MAX) strike = PRICE_MAX;
    if (strike > spot * 1_000_000n) strike = spot * 1_000_000n;
    if (spot > strike * 1_000_000n) strike = (spot + 999_999n) / 1_000_000n;
    return { spot, strike, timeYears, vol, rate };
  });

/** ln(S/K) in float64 to relative precision: log1p of an exact difference. */
function logMoneyness(spot: bigint, strike: bigint): number {
  return spot >= strike
    ? Math.log1p(Number(spot - strike) / Number(strike))
    : -Math.log1p(Number(strike - spot) / Number(spot));
}

test('prices and greeks agree with a float64 reference over the whole domain, rates included', () => {
  fc.assert(
    fc.property(fc.oneof(market, tailMarket), fc.boolean(), (m, isCall) => {
      const g = blackScholes({ ...m, isCall });
      const S = num(m.spot);
      const K = num(m.strike);
      const T = num(m.timeYears);
      const v = num(m.vol);
      const r = num(m.rate);
      const ref = floatBlackScholes(S, K, T, v, r, isCall, logMoneyness(m.spot, m.strike));
      // float64's own error: its inputs and d1 to a few ulps each, so n(d1)
      // and N(d1) to about (|d1| + 2) times d1's error, relatively.
      const sqrtVariance = v * Math.sqrt(T);
      const dError =
        4e-16 * ((Math.abs(ref.logMoneyness) + Math.abs(r * T)) / sqrtVariance + Math.abs(ref.d1));
      const rel = 1e-11 + (Math.abs(ref.d1) + 2) * dError;
      const envelope = Math.max(S, K * Math.exp(-r * T)) * ENVELOPE;
      const slack = 3 * WAD;
      const check = (name: keyof typeof g, tolerance: number): void => {
        const ours = num(g[name]);
        const want = ref[name];
        assert.ok(
          Math.abs(ours - want) <= tolerance,
          `${name} ${isCall ? 'call' : 'put'} ${JSON.stringify(m, (_k, x) =>
            typeof x === 'bigint' ? String(x) : x,
          )}: ours ${ours}, float64 ${want}, tolerance ${tolerance}`,
        );
      };
      check('price', rel * ref.terms + envelope + slack);
      check('delta', rel * Math.abs(ref.delta) + 1e-15 + slack);
      check('gamma', rel * Math.abs(ref.gamma) + slack);
      check('vega', rel * Math.abs(ref.vega) + slack);
      check('vanna', rel * Math.abs(ref.vanna) + slack);
      check('volga', rel * Math.abs(ref.volga) + slack);
      check('theta', rel * ref.thetaTerms + Math.abs(r) * envelope + slack);
      check('rho', rel * Math.abs(ref.rho) + T * envelope + slack);
      // Signs and bounds, whatever the rounding.
      assert.ok(g.gamma >= 0n && g.vega >= 0n, 'gamma and vega are not negative');
      assert.ok(isCall ? g.delta >= 0n && g.delta <= SCALE : g.delta <= 0n && g.delta >= -SCALE);
      assert.ok(isCall ? g.rho >= 0n : g.rho <= 0n, 'rho has the sign of the option');
    }),
    { numRuns: 3000, seed: 20261126 },
  );
});

test('implied volatility over the whole domain, rates included: a bracketing volatility or a typed error', () => {
  fc.assert(
    fc.property(
      market,
      fc.boolean(),
      fc.oneof(fc.constant(0n), fc.bigInt({ min: -3n, max: 3n })),
      (m, isCall, nudge) => {
        const base = { spot: m.spot, strike: m.strike, timeYears: m.timeYears, rate: m.rate };
        const price = blackScholes({ ...base, vol: m.vol, isCall }).price + nudge;
        let solved: bigint;
        try {
          solved = impliedVol({ ...base, isCall, price });
        } catch (e) {
          assert.ok(e instanceof MathError, `a typed error: ${String(e)}`);
          if (e.code === 'BadInput') {
            assert.ok(price < 0n || price > 10n ** 33n, `BadInput only out of range: ${price}`);
            return;
          }
          const low = blackScholes({ ...base, vol: VOL_MIN, isCall }).price;
          const high = blackScholes({ ...base, vol: VOL_MAX, isCall }).price;
          assert.ok(price <= low + 1n || price >= high - 1n, `${price} in (${low}, ${high})`);
          return;
        }
        assert.ok(solved >= VOL_MIN && solved <= VOL_MAX, 'in range');
        const at = (vol: bigint) => blackScholes({ ...base, vol, isCall }).price;
        const below = at(solved > VOL_MIN ? solved - 1n : solved);
        const above = at(solved < VOL_MAX ? solved + 1n : solved);
        // Rounding of the prices themselves: a wad, more where a rate makes them coarser.
        const slack =
          1n +
          BigInt(
            Math.ceil(num(m.strike) * Math.exp(-num(m.rate) * num(m.timeYears)) * ENVELOPE * 1e18),
          );
        assert.ok(
          below <= price + slack && price <= above + slack,
          `${price} not in [${below}, ${above}]`,
        );
      },
    ),
    { numRuns: 300, seed: 20261127 },
  );
});
