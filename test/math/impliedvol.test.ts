import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { blackScholes, fromDecimal, impliedVol, MathError, SCALE } from '../../src/math/index.ts';
import { WAD_TO_REF, abs, inputsOf, parseRef, reference } from './reference.ts';

test('implied volatility recovers the grid volatility from the reference price', (t) => {
  let solved = 0;
  let refused = 0;
  for (const c of reference.options) {
    const input = inputsOf(c);
    const price = (parseRef(c.expected.price) + WAD_TO_REF / 2n) / WAD_TO_REF;
    let vol: bigint;
    try {
      vol = impliedVol({ ...input, price });
    } catch (e) {
      // Refused only where the price carries (almost) no volatility information:
      // within a few wads of the value at the lowest or highest volatility.
      assert.ok(e instanceof MathError && e.code === 'NoVolatilityFits', String(e));
      const low = blackScholes({ ...input, vol: fromDecimal('0.0001') }).price;
      const high = blackScholes({ ...input, vol: fromDecimal('10') }).price;
      assert.ok(abs(price - low) <= 2n || abs(price - high) <= 2n, `${JSON.stringify(c)}`);
      refused++;
      continue;
    }
    // Exact to 1e-12 of the volatility, unless the price itself (known to half
    // a wad) pins the volatility less finely: then the error times vega is
    // within a couple of wads of price.
    const error = abs(vol - input.vol);
    const vega = parseRef(c.expected.vega); // at 10^27
    assert.ok(
      error * 10n ** 12n <= input.vol || error * vega <= 2n * 10n ** 27n,
      `${JSON.stringify(c)}: solved ${vol}`,
    );
    solved++;
  }
  t.diagnostic(`solved ${solved}, no volatility fits ${refused}`);
  assert.ok(solved > reference.options.length / 2);
});

test('round trip: impliedVol(blackScholes(vol)) = vol where vega is not tiny', () => {
  fc.assert(
    fc.property(
      fc.bigInt({ min: SCALE, max: 100_000n * SCALE }),
      fc.integer({ min: 50, max: 200 }),
      fc.bigInt({ min: SCALE / 365n, max: 3n * SCALE }),
      fc.bigInt({ min: SCALE / 20n, max: 4n * SCALE }),
      fc.bigInt({ min: -SCALE / 20n, max: SCALE / 5n }),
      fc.boolean(),
      (spot, ratioPercent, timeYears, vol, rate, isCall) => {
        const input = {
          spot,
          strike: (spot * 100n) / BigInt(ratioPercent),
          timeYears,
          rate,
          isCall,
        };
        const g = blackScholes({ ...input, vol });
        // Where vega is below a millionth of spot the price barely depends on
        // volatility; the grid test above covers those.
        fc.pre(g.vega * 1_000_000n >= spot);
        const solved = impliedVol({ ...input, price: g.price });
        // The price is rounded to a wad, so vol is known to about 10^-18 / vega.
        const slack = (10n * SCALE) / (g.vega > 0n ? g.vega : 1n) + 1n;
        assert.ok(abs(solved - vol) <= slack, `vol ${vol} solved ${solved} vega ${g.vega}`);
      },
    ),
    { numRuns: 200, seed: 11 },
  );
});

const atm = {
  spot: 100n * SCALE,
  strike: 100n * SCALE,
  timeYears: SCALE,
  rate: SCALE / 20n,
  isCall: true,
};

test('a price at or under intrinsic value, or at or over the spot, has no volatility', () => {
  const intrinsic = blackScholes({ ...atm, strike: 50n * SCALE, vol: SCALE / 10_000n }).price;
  for (const [patch, message] of [
    [{ strike: 50n * SCALE, price: intrinsic - SCALE }, /at or below/],
    [{ price: 0n }, /at or below/],
    [{ price: 100n * SCALE }, /at or above/],
    [{ price: 150n * SCALE }, /at or above/],
    [{ isCall: false, price: 96n * SCALE }, /at or above/],
  ] as const) {
    assert.throws(
      () => impliedVol({ ...atm, ...patch }),
      (e: unknown) =>
        e instanceof MathError && e.code === 'NoVolatilityFits' && message.test(e.message),
    );
  }
});

test('bad inputs to impliedVol are BadInput', () => {
  for (const patch of [
    { price: -1n },
    { spot: 0n, price: SCALE },
    { timeYears: 0n, price: SCALE },
    { price: 1 as unknown as bigint },
  ]) {
    assert.throws(
      () => impliedVol({ ...atm, ...{ price: SCALE }, ...patch }),
      (e: unknown) => e instanceof MathError && e.code === 'BadInput',
    );
  }
});

test('a known implied volatility: the Hull call at 10.4506 is 20% to four digits', () => {
  const vol = impliedVol({ ...atm, price: fromDecimal('10.450583572185566782') });
  assert.ok(abs(vol - SCALE / 5n) <= 10n, String(vol));
});

test('at rate 0, over the whole domain, the solved volatility brackets the price to a wad', () => {
  const edge = (lo: bigint, hi: bigint) =>
    fc.oneof(fc.constant(lo), fc.constant(hi), fc.bigInt({ min: lo, max: hi }));
  const volMin = 10n ** 14n;
  const volMax = 10n * SCALE;
  fc.assert(
    fc.property(
      edge(1n, 10n ** 33n),
      fc.integer({ min: 1, max: 1_000_000 }),
      fc.boolean(),
      edge(10n ** 10n, 30n * SCALE),
      edge(volMin, volMax),
      fc.integer({ min: -10, max: 10 }),
      fc.boolean(),
      (spot, ratio, strikeAbove, timeYears, vol, nudge, isCall) => {
        const strike = strikeAbove
          ? spot * BigInt(ratio)
          : (spot + BigInt(ratio) - 1n) / BigInt(ratio);
        if (strike > 10n ** 33n) return;
        const m = { spot, strike, timeYears, rate: 0n, isCall };
        const price = blackScholes({ ...m, vol }).price + BigInt(nudge);
        if (price < 0n || price > 10n ** 33n) return; // BadInput, tested above
        let solved: bigint;
        try {
          solved = impliedVol({ ...m, price });
        } catch (e) {
          assert.ok(e instanceof MathError && e.code === 'NoVolatilityFits', String(e));
          // Then the price is outside what the volatility range gives (to rounding).
          const low = blackScholes({ ...m, vol: volMin }).price;
          const high = blackScholes({ ...m, vol: volMax }).price;
          assert.ok(price <= low + 1n || price >= high - 1n, `${price} in (${low}, ${high})`);
          return;
        }
        assert.ok(solved >= volMin && solved <= volMax);
        const below = blackScholes({ ...m, vol: solved > volMin ? solved - 1n : solved }).price;
        const above = blackScholes({ ...m, vol: solved < volMax ? solved + 1n : solved }).price;
        assert.ok(
          below <= price + 1n && price <= above + 1n,
          `${price} not in [${below}, ${above}]`,
        );
      },
    ),
    { numRuns: 400, seed: 17 },
  );
});
