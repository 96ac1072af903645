import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { daysFromCivil, MS_PER_DAY } from '../../src/exchange/instruments/index.ts';
import { listedMargin, scenarioOf } from '../../src/exchange/listed_margin.ts';
import type { ScenarioInstrument } from '../../src/exchange/options/index.ts';
import type { SignedTx } from '../../src/exchange/tx/types.ts';
import type { Account, MarketState } from '../../src/exchange/state.ts';
import { Harness, USDC, dailyListingGenesis, key, limit, replacer } from './helpers.ts';
import { referenceListedMargin } from './listed_margin_reference.ts';

const START_MS = daysFromCivil(2026, 3, 2) * MS_PER_DAY;
/** Flat smiles: total variance for 50% volatility over eight hours. */
const FLAT = { a: 228_000_000_000_000n, b: 0n, rho: 0n, m: 0n, sigma: 100_000_000_000_000_000n };
const SMILES = ['BTC', 'ETH'].map((underlying) => ({
  underlying,
  expiryMs: START_MS + 8 * 3_600_000,
  svi: FLAT,
}));

const traders = [0, 1, 2].map((i) => key(`listed-sums-${i}`));

const stepArb = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('order' as const),
      trader: fc.nat(traders.length - 1),
      market: fc.nat(1_000),
      buy: fc.boolean(),
      offTicks: fc.integer({ min: -3, max: 3 }),
      lots: fc.integer({ min: 1, max: 20 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('cancelAll' as const),
      trader: fc.nat(traders.length - 1),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('move' as const),
      underlying: fc.constantFrom('BTC', 'ETH'),
      ppm: fc.integer({ min: -30_000, max: 30_000 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('smiles' as const), on: fc.boolean() }) },
  // Eleven minutes with no transaction: a smile stale for the grace has its
  // scenario values rebuilt (its holders' maintenance takes its bounds).
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('wait' as const) }) },
);

const extraArb = fc.record({
  market: fc.nat(1_000),
  buyLots: fc.nat(30),
  sellLots: fc.nat(30),
});

test('property: the scenario sums an account keeps from check to check, and the scenario values a market keeps between its marks, give to the unit what is taken afresh', () => {
  /** Checks of an account holding an option position, and of one holding a dated future beside it. */
  let withOptions = 0;
  let mixed = 0;
  /** Scenario values found kept from an earlier block, and equal to those built afresh. */
  let keptAcrossBlocks = 0;
  /** Checks of an account long an option without a fresh smile, within its grace and past it. */
  let longWithinGrace = 0;
  let longPastGrace = 0;
  fc.assert(
    fc.property(
      fc.array(stepArb, { minLength: 8, maxLength: 30 }),
      fc.array(extraArb, { minLength: 2, maxLength: 2 }),
      // Options marked every block, or every third (their marks, and so
      // their scenario values, kept in between).
      fc.constantFrom(undefined, 3_000),
      (steps, extras, markIntervalMs) => {
        const g = dailyListingGenesis(START_MS);
        const h = new Harness(
          markIntervalMs === undefined ? g : { ...g, listing: { ...g.listing!, markIntervalMs } },
        );
        h.smiles = SMILES;
        for (const t of traders) h.fund(t, 1_000_000n * USDC);
        h.block([], 60_000);
        const state = h.ex.state;
        const listed = (): MarketState[] =>
          state.markets.filter((m) => m.listed && !m.retired && m.markTicks > 0);
        // Orders go to a few markets of each underlying (its future and two
        // options), so that the traders' orders meet and leave positions.
        const traded = (): MarketState[] =>
          listed().filter((m) => {
            if (m.instrument.kind !== 'option') return true;
            const options = listed().filter(
              (o) => o.instrument.kind === 'option' && o.params.underlying === m.params.underlying,
            );
            return options.indexOf(m) < 2;
          });
        const seen = new WeakSet<ScenarioInstrument>();
        const compare = (where: string): void => {
          const markets = listed();
          for (const t of traders) {
            const a: Account = h.account(t)!;
            // With no extra order, with one, and without again: the kept sums
            // take the order's market in and out.
            const checks: [MarketState | null, number, number][] = [[null, 0, 0]];
            for (const x of extras) {
              checks.push([markets[x.market % markets.length]!, x.buyLots, x.sellLots]);
              checks.push([null, 0, 0]);
            }
            const held = a.listed.filter((p) => p.sizeLots !== 0);
            const kinds = new Set(held.map((p) => state.markets[p.market]!.instrument.kind));
            if (kinds.has('option')) withOptions++;
            if (kinds.has('option') && kinds.has('future')) mixed++;
            for (const p of held) {
              const m = state.markets[p.market]!;
              if (p.sizeLots <= 0 || m.instrument.kind !== 'option' || m.optionMark !== null)
                continue;
              if (m.unshockedGraceOver) longPastGrace++;
              else longWithinGrace++;
            }
            for (const [extra, buy, sell] of checks) {
              const fresh = referenceListedMargin(state, a, extra, buy, sell);
              const kept = { ...listedMargin(state, a, extra, buy, sell) };
              assert.deepEqual(
                kept,
                fresh,
                `${where}: ${extra?.params.instrument ?? 'no extra'} +${buy}/-${sell}: ${JSON.stringify({ kept, fresh }, replacer)}`,
              );
            }
          }
          // Each market's kept values against values built now, then kept
          // again (built afresh every time, the sums above would take every
          // record again at every step).
          for (const m of markets) {
            const kept = scenarioOf(state, m);
            m.scenario = null;
            assert.deepEqual(kept, scenarioOf(state, m), `${where}: ${m.params.instrument}`);
            m.scenario = kept;
            if (seen.has(kept)) keptAcrossBlocks++;
            seen.add(kept);
          }
        };
        compare('start');
        steps.forEach((step, i) => {
          const txs: SignedTx[] = [];
          if (step.kind === 'order') {
            const markets = traded();
            const m = markets[step.market % markets.length]!;
            const price = Math.max(1, m.markTicks + step.offTicks);
            const side = step.buy ? 'buy' : 'sell';
            const order = limit(m.params.instrument, side, price, step.lots);
            txs.push(h.tx(traders[step.trader]!, order));
          } else if (step.kind === 'cancelAll') {
            txs.push(h.tx(traders[step.trader]!, { kind: 'cancelAll' }));
          } else if (step.kind === 'move') {
            const index = h.oracle[step.underlying]!;
            h.oracle = {
              ...h.oracle,
              [step.underlying]: index + (index * BigInt(step.ppm)) / 1_000_000n,
            };
          } else if (step.kind === 'smiles') {
            h.smiles = step.on ? SMILES : null;
          }
          // Smiles turned off go stale a minute later: their options are then
          // margined without a mark, at each block's forward.
          h.block(
            txs,
            step.kind === 'smiles' && !step.on ? 61_000 : step.kind === 'wait' ? 660_000 : 1_000,
          );
          compare(`after step ${i} (${step.kind})`);
        });
      },
    ),
    { seed: 9, numRuns: 30 },
  );
  // The runs reached the cases the sums are for.
  assert.ok(withOptions > 100, `only ${withOptions} checks of an account holding options`);
  assert.ok(mixed > 20, `only ${mixed} checks of an account holding a future beside options`);
  assert.ok(longWithinGrace >= 5, `only ${longWithinGrace} checks of a long within the grace`);
  assert.ok(longPastGrace >= 3, `only ${longPastGrace} checks of a long past the grace`);
  assert.ok(
    keptAcrossBlocks > 1_000,
    `only ${keptAcrossBlocks} scenario values kept across blocks`,
  );
});
