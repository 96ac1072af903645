import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { daysFromCivil, expiryMsOfDay, MS_PER_DAY } from '../../src/exchange/instruments/index.ts';
import type { ScenarioInstrument } from '../../src/exchange/options/index.ts';
import {
  DEFAULT_SCENARIO_PARAMS,
  scenarioCount,
  scenarioInitialOverRanges,
  scenarioMargin,
} from '../../src/exchange/options/index.ts';
import { sizeIn } from '../../src/exchange/position.ts';
import { Harness, USDC, dailyListingGenesis, key, limit } from './helpers.ts';

const MINUTE_MS = 60_000;
const START_MS = daysFromCivil(2026, 3, 2) * MS_PER_DAY;
const EXPIRY_MS = expiryMsOfDay(daysFromCivil(2026, 3, 2));
const CALL = 'BTC-2MAR26-50000-C';
/** A flat smile: total variance for 50% volatility over eight hours. */
const FLAT = { a: 228_000_000_000_000n, b: 0n, rho: 0n, m: 0n, sigma: 100_000_000_000_000_000n };

function harness(): Harness {
  const h = new Harness(dailyListingGenesis(START_MS));
  h.smiles = [{ underlying: 'BTC', expiryMs: EXPIRY_MS, svi: FLAT }];
  return h;
}

const alice = key('listed-margin-alice');
const bob = key('listed-margin-bob');

test('a resting bid does not stand for the short an offer of the same option would open', () => {
  const h = harness();
  h.fund(alice, 1_000n * USDC);
  h.fund(bob, 1_000_000n * USDC);
  h.block([], MINUTE_MS);
  const call = h.ex.state.marketByName.get(CALL)!;
  const c = call.markTicks;
  // As many lots as the cash pays the premium of: a bid for them is accepted.
  const lots = Number((1_000n * USDC) / (BigInt(c) * call.k)) - 1;
  assert.ok(lots >= 10);
  assert.ok(h.one(alice, limit(CALL, 'buy', c - 1, lots)).actions[0]!.ok);
  // Shorting as many is ~20 times the cash: the bid beside it changes nothing.
  const offer = h.one(alice, limit(CALL, 'sell', c, lots)).actions[0]!;
  assert.equal(!offer.ok && offer.code, 'InsufficientMargin');
  // Were it accepted, a buyer would leave alice short with nothing behind it.
  assert.ok(h.one(bob, limit(CALL, 'buy', c, lots)).actions[0]!.ok);
  assert.equal(sizeIn(h.account(alice)!, call), 0);
});

/** Synthetic scenario values: any per-lot numbers exercise the arithmetic. */
const instrumentArb = fc.record({
  underlying: fc.constantFrom('BTC', 'ETH'),
  isOption: fc.boolean(),
  pnlPerLotWad: fc.array(fc.bigInt(-(10n ** 15n), 10n ** 15n), {
    minLength: scenarioCount(DEFAULT_SCENARIO_PARAMS),
    maxLength: scenarioCount(DEFAULT_SCENARIO_PARAMS),
  }),
  valuePerLotWad: fc.bigInt(0n, 10n ** 15n),
  shortMinPerLotWad: fc.bigInt(0n, 10n ** 14n),
});

test('property: the initial margin over ranges is the largest over every size in them', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({ inst: instrumentArb, low: fc.integer({ min: -3, max: 3 }), width: fc.nat(3) }),
        { minLength: 1, maxLength: 3 },
      ),
      (rows) => {
        const marks = new Map<string, ScenarioInstrument>();
        rows.forEach((r, i) => {
          const inst = r.inst;
          marks.set(`I${i}`, {
            ...inst,
            shortMinPerLotWad: inst.isOption ? inst.shortMinPerLotWad : 0n,
          });
        });
        const ranges = rows.map((r, i) => ({
          instrument: `I${i}`,
          lowLots: r.low,
          highLots: r.low + r.width,
        }));
        let brute = 0n;
        const visit = (i: number, sizes: number[]): void => {
          if (i === ranges.length) {
            const positions = sizes.map((s, j) => ({ instrument: `I${j}`, sizeLots: s }));
            const m = scenarioMargin(positions, marks, DEFAULT_SCENARIO_PARAMS).initialQuote;
            if (m > brute) brute = m;
            return;
          }
          for (let s = ranges[i]!.lowLots; s <= ranges[i]!.highLots; s++)
            visit(i + 1, [...sizes, s]);
        };
        visit(0, []);
        assert.equal(scenarioInitialOverRanges(ranges, marks, DEFAULT_SCENARIO_PARAMS), brute);
      },
    ),
    { seed: 7, numRuns: 300 },
  );
});
