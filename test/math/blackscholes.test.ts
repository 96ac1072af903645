import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  blackScholes,
  blackScholesPrices,
  exp,
  fromDecimal,
  MathError,
  SCALE,
} from '../../src/math/index.ts';
import { GREEK_NAMES, WAD_TO_REF, abs, inputsOf, parseRef, reference } from './reference.ts';

// The accuracy bar: every output within 1e-12 of the reference relatively, or
// within two wads (2e-18, the output's own rounding) absolutely. For values
// below a millionth, two wads is the looser of the two; that is "absolute
// 1e-12 of spot near zero" for any spot above 2e-6.
const REL_DENOMINATOR = 10n ** 12n;
const ABS_SLACK = 2n * WAD_TO_REF;

test('prices and greeks match the mpmath reference over the grid', (t) => {
  assert.ok(reference.options.length >= 600);
  const worst: Record<string, number> = {};
  for (const c of reference.options) {
    const got = blackScholes(inputsOf(c));
    for (const name of GREEK_NAMES) {
      const expected = parseRef(c.expected[name]);
      const error = abs(got[name] * WAD_TO_REF - expected);
      assert.ok(
        error * REL_DENOMINATOR <= abs(expected) + ABS_SLACK * REL_DENOMINATOR,
        `${name} of ${JSON.stringify(c)}: got ${got[name]} (wad), expected ${c.expected[name]}`,
      );
      if (abs(expected) >= 10n ** 21n) {
        const relative = Number((error * 10n ** 18n) / abs(expected)) * 1e-18;
        worst[name] = Math.max(worst[name] ?? 0, relative);
      }
    }
  }
  t.diagnostic(`largest relative error where |value| >= 1e-6: ${JSON.stringify(worst)}`);
});

// Far out-of-the-money calls on large prices, rate 0 (as the exchange prices
// them): S N(d1) and K N(d2) with K up to 10^6 S, where N(d2) lies in the deep
// tail. An absolute error of 2^-102 in N there, times K, came to tens of wads;
// the last row has d2 just below -12, where N used to be cut to 0 (K N(-12) is
// 1.8 wads there, just inside the bar; the cut is now at 13).
// Reference prices from mpmath at 80 digits, at 10^27 (wad x 10^9):
// S K T vol, then S N(d1) - K N(d2).
const DEEP_TAIL_CALLS = [
  [
    '650610476115448173925731626',
    '395103380545865482509792227568906',
    '11571071011479575626',
    '378374396380378691',
    '10979826221773',
  ],
  [
    '284360943113144443489114774',
    '98483862872147767691359076138516',
    '18010943571299955682',
    '297506357450260609',
    '45525109583181',
  ],
  [
    '471433835048536770611291485',
    '405244996041557256554236771797485',
    '25558071455801443960',
    '247688173182437812',
    '20486567400',
  ],
  [
    '789966848089708699334621774',
    '347194379569667421901062942781870',
    '18727749346326469849',
    '299474455731001566',
    '317172810950128',
  ],
  [
    '779329636832169866115275494',
    '725389115348468061001972815958284',
    '19079080162524274446',
    '358959714505442172',
    '90287757318104703375',
  ],
  [
    '1000000000000000000000000000',
    '1000000000000000000000000000000000',
    '1000000000000000000',
    '1211000000000000000',
    '165805761',
  ],
] as const;

test('far out-of-the-money calls on large strikes meet the bar (the normal tail is accurate)', () => {
  for (const [spot, strike, timeYears, vol, expected] of DEEP_TAIL_CALLS) {
    const input = { spot: BigInt(spot), strike: BigInt(strike), timeYears: BigInt(timeYears) };
    const got = blackScholes({ ...input, vol: BigInt(vol), rate: 0n, isCall: true }).price;
    const error = abs(got * WAD_TO_REF - BigInt(expected));
    assert.ok(
      error * REL_DENOMINATOR <= BigInt(expected) + ABS_SLACK * REL_DENOMINATOR,
      `call ${spot} ${strike} ${timeYears} ${vol}: got ${got} (wad), expected ${expected} (x10^-27)`,
    );
  }
});

// The density deep in its tail, where greeks multiply it by far more than
// the spot: volga by sqrt(T) d1 d2 / sigma (up to 10^7 per unit of spot) and
// gamma by 1/(S sigma sqrt T). The table holds n(d1) to about 2^-125
// absolutely, a few bits at |d1| = 13: volga on a spot of 5·10^14 was off by
// 370 wads at rate 0 (0 for 3.7·10^-16), and gamma on a spot of one wad with
// a rate by thousands of wads. Rows from mpmath at 80 digits, at 10^27:
// S K T vol rate (wads), then gamma, vega, vanna, volga of the call.
const DEEP_TAIL_DENSITY = [
  // d1 = 9
  [
    '500000000000000000000000000000000',
    '497541388152475524020302087755201',
    '30000000000000000000',
    '100000000000000',
    '0',
    '0',
    '2815231935624257015757772',
    '-92512331681149',
    '2280199090912430652414058390931',
  ],
  // d1 = 12
  [
    '500000000000000000000000000000000',
    '496724515540855208921230880676930',
    '30000000000000000000',
    '100000000000000',
    '0',
    '0',
    '58781139454',
    '-3',
    '84640977323386002',
  ],
  // d1 = 12.9
  [
    '500000000000000000000000000000000',
    '496479715383143422142350025096130',
    '30000000000000000000',
    '100000000000000',
    '0',
    '0',
    '799776',
    '0',
    '1330850619834',
  ],
  // d1 = 13
  [
    '500000000000000000000000000000000',
    '496452522813903489615064438159160',
    '30000000000000000000',
    '100000000000000',
    '0',
    '0',
    '219057',
    '0',
    '370190596757',
  ],
  // d1 = -13.05
  [
    '500000000000000000000000000000000',
    '503586768399806578878896217143315',
    '30000000000000000000',
    '100000000000000',
    '0',
    '0',
    '114215',
    '0',
    '194518963220',
  ],
  // d1 = 13.2
  [
    '500000000000000000000000000000000',
    '499340437905101415745137023504978',
    '1000000000000000000',
    '100000000000000',
    '0',
    '0',
    '2912',
    '0',
    '5073286388',
  ],
  // d1 = -12.74, a rate, the smallest spot
  [
    '1',
    '1',
    '197918505021863',
    '890997064804673',
    '-807088023350383900',
    '173362403974365',
    '0',
    '0',
    '0',
  ],
  // d1 = -12.41
  [
    '1',
    '1',
    '26618271841205500',
    '1168578286923855',
    '-88918800377568390',
    '716188894055185',
    '0',
    '0',
    '0',
  ],
] as const;

test('greeks of the density deep in its tail meet the bar (the density keeps relative precision)', () => {
  for (const [spot, strike, timeYears, vol, rate, ...expected] of DEEP_TAIL_DENSITY) {
    const input = {
      spot: BigInt(spot),
      strike: BigInt(strike),
      timeYears: BigInt(timeYears),
      vol: BigInt(vol),
      rate: BigInt(rate),
    };
    for (const isCall of [true, false]) {
      const g = blackScholes({ ...input, isCall });
      (['gamma', 'vega', 'vanna', 'volga'] as const).forEach((name, i) => {
        const want = BigInt(expected[i]!);
        const error = abs(g[name] * WAD_TO_REF - want);
        assert.ok(
          error * REL_DENOMINATOR <= abs(want) + ABS_SLACK * REL_DENOMINATOR,
          `${name} of ${spot} ${strike} ${timeYears} ${vol} ${rate}: got ${g[name]} (wad), expected ${want} (x10^-27)`,
        );
      });
    }
  }
});

const wad = (x: number | string) => fromDecimal(String(x));
const market = fc.record({
  spot: fc.bigInt({ min: SCALE / 100n, max: 100_000n * SCALE }),
  ratioPercent: fc.integer({ min: 20, max: 500 }),
  timeYears: fc.bigInt({ min: SCALE / 8760n, max: 3n * SCALE }),
  vol: fc.bigInt({ min: SCALE / 20n, max: 4n * SCALE }),
  rate: fc.bigInt({ min: -SCALE / 20n, max: SCALE / 5n }),
});

test('property: the prices at several volatilities are blackScholes(…).price at each, to the unit, and refused alike', () => {
  const vols = fc.array(fc.bigInt({ min: SCALE / 20n, max: 4n * SCALE }), {
    minLength: 1,
    maxLength: 4,
  });
  fc.assert(
    fc.property(market, fc.boolean(), vols, (m, isCall, vs) => {
      const input = { ...m, strike: (m.spot * 100n) / BigInt(m.ratioPercent), isCall };
      assert.deepEqual(
        blackScholesPrices(input, vs),
        vs.map((vol) => blackScholes({ ...input, vol }).price),
      );
    }),
    { numRuns: 300, seed: 9 },
  );
  // A volatility or a market out of range is refused as blackScholes refuses it.
  const good = { spot: SCALE, strike: SCALE, timeYears: SCALE, rate: 0n, isCall: true };
  for (const [input, vs] of [
    [good, [SCALE / 2n, 0n]],
    [good, [100n * SCALE]],
    [{ ...good, strike: 10_000_000n * SCALE }, [SCALE / 2n]],
    [{ ...good, timeYears: 0n }, [SCALE / 2n]],
  ] as const) {
    assert.throws(() => blackScholes({ ...input, vol: vs[vs.length - 1]! }), MathError);
    assert.throws(() => blackScholesPrices(input, vs), MathError);
  }
});

test('put–call parity holds to a few wads: C − P = S − K e^(−rT)', () => {
  fc.assert(
    fc.property(market, (m) => {
      const strike = (m.spot * 100n) / BigInt(m.ratioPercent);
      const base = { ...m, strike };
      const call = blackScholes({ ...base, isCall: true });
      const put = blackScholes({ ...base, isCall: false });
      const discountedStrike = (strike * exp(-(m.rate * m.timeYears) / SCALE)) / SCALE;
      // Each price is rounded to a wad; rT truncated to a wad and e^(−rT)
      // rounded to one each carry up to K × 10^-18.
      const tolerance = 4n + (3n * strike) / SCALE;
      assert.ok(abs(call.price - put.price - (m.spot - discountedStrike)) <= tolerance);
      assert.equal(call.delta - put.delta, SCALE);
      assert.equal(call.gamma, put.gamma);
      assert.equal(call.vega, put.vega);
      assert.equal(call.vanna, put.vanna);
      assert.equal(call.volga, put.volga);
    }),
    { numRuns: 200, seed: 42 },
  );
});

test('price rises with volatility and a call with the spot', () => {
  fc.assert(
    fc.property(market, fc.boolean(), (m, isCall) => {
      const strike = (m.spot * 100n) / BigInt(m.ratioPercent);
      const low = blackScholes({ ...m, strike, isCall });
      const high = blackScholes({ ...m, strike, vol: m.vol + SCALE / 100n, isCall });
      assert.ok(high.price >= low.price);
      const up = blackScholes({ ...m, spot: m.spot + m.spot / 100n, strike, isCall: true });
      assert.ok(up.price >= blackScholes({ ...m, strike, isCall: true }).price);
    }),
    { numRuns: 100, seed: 7 },
  );
});

test('known value: the at-the-money one-year call, S = K = 100, 20% vol, 5% rate', () => {
  const g = blackScholes({
    spot: wad(100),
    strike: wad(100),
    timeYears: wad(1),
    vol: wad('0.2'),
    rate: wad('0.05'),
    isCall: true,
  });
  // Hull's textbook 10.4506; mpmath: 10.45058357218556678165...
  assert.equal(g.price, 10_450583572185566782n);
});

test('out-of-range inputs are refused with BadInput naming the field', () => {
  const good = {
    spot: wad(100),
    strike: wad(100),
    timeYears: wad(1),
    vol: wad('0.2'),
    rate: wad('0.05'),
    isCall: true,
  };
  const bad: Array<[Partial<typeof good> | Record<string, unknown>, RegExp]> = [
    [{ spot: 0n }, /spot/],
    [{ spot: -wad(1) }, /spot/],
    [{ strike: 0n }, /strike/],
    [{ timeYears: 0n }, /timeYears/],
    [{ timeYears: -1n }, /timeYears/],
    [{ timeYears: wad(31) }, /timeYears/],
    [{ vol: 0n }, /vol/],
    [{ vol: -wad('0.2') }, /vol/],
    [{ vol: wad(11) }, /vol/],
    [{ rate: wad(2) }, /rate/],
    [{ strike: wad(100) * 2_000_000n }, /differ/],
    [{ spot: 100 }, /spot must be a bigint/],
    [{ isCall: 'yes' }, /isCall/],
  ];
  for (const [patch, message] of bad) {
    assert.throws(
      () => blackScholes({ ...good, ...patch } as typeof good),
      (e: unknown) => e instanceof MathError && e.code === 'BadInput' && message.test(e.message),
      JSON.stringify(patch, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)),
    );
  }
});

test('every accepted input, extremes included, gives bounded, sane outputs', () => {
  const edge = (lo: bigint, hi: bigint) =>
    fc.oneof(fc.constant(lo), fc.constant(hi), fc.bigInt({ min: lo, max: hi }));
  fc.assert(
    fc.property(
      edge(1n, 10n ** 33n),
      edge(-6n, 6n),
      edge(10n ** 10n, 30n * SCALE),
      edge(10n ** 14n, 10n * SCALE),
      edge(-SCALE, SCALE),
      fc.boolean(),
      (spot, logRatio, timeYears, vol, rate, isCall) => {
        // Spot and strike up to 10^6 apart, inside the price range.
        const down = 10n ** (logRatio < 0n ? -logRatio : 0n);
        const strikeRaw = logRatio >= 0n ? spot * 10n ** logRatio : (spot + down - 1n) / down;
        const strike = strikeRaw < 1n ? 1n : strikeRaw > 10n ** 33n ? 10n ** 33n : strikeRaw;
        const g = blackScholes({ spot, strike, timeYears, vol, rate, isCall });
        assert.ok(g.price >= -1n, 'price not negative');
        assert.ok(g.price <= (isCall ? spot : strike * 10n ** 14n) + 1n, 'price bounded');
        assert.ok(isCall ? g.delta >= 0n && g.delta <= SCALE : g.delta <= 0n && g.delta >= -SCALE);
        assert.ok(g.gamma >= 0n && g.vega >= 0n);
      },
    ),
    { numRuns: 500, seed: 9 },
  );
});

test('at rate 0, over the whole domain: parity, no-arbitrage bounds, and monotone in S, K, σ and T', () => {
  // Log-uniform inputs, so that far out-of-the-money options on strikes near
  // 10^15 come up as often as everyday ones.
  const logUniform = (lo: bigint, hi: bigint) =>
    fc
      .tuple(
        fc.integer({ min: lo.toString().length - 1, max: hi.toString().length - 1 }),
        fc.bigInt({ min: 1n, max: 10n ** 18n }),
      )
      .map(([digits, mantissa]) => {
        const x = (10n ** BigInt(digits) * mantissa) / 10n ** 18n;
        return x < lo ? lo : x > hi ? hi : x;
      });
  const priceMax = 10n ** 33n;
  fc.assert(
    fc.property(
      logUniform(1n, priceMax),
      fc.integer({ min: -6_000_000, max: 6_000_000 }),
      logUniform(10n ** 10n, 30n * SCALE),
      logUniform(10n ** 14n, 10n * SCALE),
      (spot, logRatioMicro, timeYears, vol) => {
        // strike = spot × 10^(logRatioMicro / 10^6), kept in range.
        const ratio = exp((BigInt(logRatioMicro) * 2_302_585_092_994n) / 1_000_000n);
        let strike = (spot * ratio) / SCALE;
        if (strike < 1n) strike = 1n;
        if (strike > priceMax) strike = priceMax;
        if (strike > spot * 1_000_000n || spot > strike * 1_000_000n) return;
        const m = { spot, strike, timeYears, vol, rate: 0n };
        const call = blackScholes({ ...m, isCall: true }).price;
        const put = blackScholes({ ...m, isCall: false }).price;
        // Each price is within half a wad (plus far less) of the exact one.
        assert.ok(abs(call - put - (spot - strike)) <= 1n, 'parity');
        assert.ok(call >= 0n && put >= 0n, 'not negative');
        assert.ok(call <= spot && put <= strike, 'below the underlying');
        assert.ok(call >= spot - strike && put >= strike - spot, 'above intrinsic');
        const up = (x: bigint, max: bigint) => {
          const y = x + x / 1000n + 1n;
          return y > max ? max : y;
        };
        const moved = (patch: Partial<typeof m>) => {
          const n = { ...m, ...patch };
          if (n.strike > n.spot * 1_000_000n || n.spot > n.strike * 1_000_000n) return null;
          return blackScholes({ ...n, isCall: true }).price;
        };
        const higherSpot = moved({ spot: up(spot, priceMax) });
        const higherStrike = moved({ strike: up(strike, priceMax) });
        const higherVol = moved({ vol: up(vol, 10n * SCALE) });
        const longer = moved({ timeYears: up(timeYears, 30n * SCALE) });
        if (higherSpot !== null) assert.ok(higherSpot >= call - 1n, 'call rises with spot');
        if (higherStrike !== null) assert.ok(higherStrike <= call + 1n, 'call falls with strike');
        if (higherVol !== null) assert.ok(higherVol >= call - 1n, 'call rises with vol');
        if (longer !== null) assert.ok(longer >= call - 1n, 'call rises with time');
      },
    ),
    { numRuns: 1000, seed: 13 },
  );
});
