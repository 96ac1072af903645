import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { ScenarioInstrument } from '../../src/exchange/options/index.ts';
import {
  DEFAULT_SCENARIO_PARAMS,
  scenarioCount,
  scenarioInitialOverRanges,
  scenarioMargin,
} from '../../src/exchange/options/index.ts';
import { scenarioOf } from '../../src/exchange/listed_margin.ts';
import { applyTrade, sizeIn } from '../../src/exchange/position.ts';
import {
  equityQuote,
  initialMarginQuote,
  maintenanceMarginQuote,
} from '../../src/exchange/margin.ts';
import type { Account } from '../../src/exchange/state.ts';
import {
  FLAT_SMILE,
  Harness,
  LISTING_DAY_EXPIRY_MS,
  LISTING_DAY_START_MS,
  USDC,
  dailyListingGenesis,
  key,
  limit,
  replacer,
} from './helpers.ts';

const MINUTE_MS = 60_000;
const START_MS = LISTING_DAY_START_MS;
const EXPIRY_MS = LISTING_DAY_EXPIRY_MS;
const CALL = 'BTC-2MAR26-50000-C';
const FUTURE = 'BTC-2MAR26';
const FLAT = FLAT_SMILE;

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
  // An option that cannot be shocked: its long has values of its own.
  longPnl: fc.option(
    fc.array(fc.bigInt(-(10n ** 15n), 10n ** 15n), {
      minLength: scenarioCount(DEFAULT_SCENARIO_PARAMS),
      maxLength: scenarioCount(DEFAULT_SCENARIO_PARAMS),
    }),
  ),
  valuePerLotWad: fc.bigInt(0n, 10n ** 15n),
  shortMinPerLotWad: fc.bigInt(0n, 10n ** 14n),
  shortLossPerLotWad: fc.oneof(fc.constant(0n), fc.bigInt(0n, 10n ** 15n)),
  shortCushionPerLotWad: fc.oneof(fc.constant(0n), fc.bigInt(0n, 10n ** 15n)),
  cushionMaintenancePpm: fc.constantFrom(0n, 500_000n),
  // Within the grace, maintenance counts the long no lower than its kept mark.
  withinGrace: fc.boolean(),
  // Within the grace, maintenance values either side by the last smile: a
  // long no lower than its own values, a short no higher than its cushion.
  graceModel: fc.option(
    fc.array(fc.bigInt(-(10n ** 15n), 10n ** 15n), {
      minLength: scenarioCount(DEFAULT_SCENARIO_PARAMS),
      maxLength: scenarioCount(DEFAULT_SCENARIO_PARAMS),
    }),
  ),
});

test('property: the initial margin over ranges is the largest over every size in them, and maintenance within initial at each', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({ inst: instrumentArb, low: fc.integer({ min: -3, max: 3 }), width: fc.nat(3) }),
        { minLength: 1, maxLength: 3 },
      ),
      (rows) => {
        const marks = new Map<string, ScenarioInstrument>();
        rows.forEach((r, i) => {
          const { longPnl, withinGrace, graceModel, ...inst } = r.inst;
          const own = inst.isOption && longPnl !== null;
          const long = own ? longPnl : inst.pnlPerLotWad;
          const model = own && withinGrace ? graceModel : null;
          const cushion = inst.isOption ? inst.shortCushionPerLotWad : 0n;
          marks.set(`I${i}`, {
            ...inst,
            longPnlPerLotWad: long,
            longMaintenancePnlPerLotWad:
              model !== null
                ? long.map((x, j) => (model[j]! > x ? model[j]! : x))
                : own && withinGrace
                  ? long.map((x) => (x > 0n ? x : 0n))
                  : long,
            shortMaintenancePnlPerLotWad:
              model !== null
                ? model.map((x, j) => {
                    // Its values in initial stand still (0) in the exchange.
                    const most = inst.pnlPerLotWad[j]! + cushion;
                    return x < most ? x : most;
                  })
                : inst.pnlPerLotWad,
            cushionMaintenancePpm: own && withinGrace ? 0n : inst.cushionMaintenancePpm,
            shortMinPerLotWad: inst.isOption ? inst.shortMinPerLotWad : 0n,
            shortLossPerLotWad: inst.isOption ? inst.shortLossPerLotWad : 0n,
            shortCushionPerLotWad: inst.isOption ? inst.shortCushionPerLotWad : 0n,
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
            const margin = scenarioMargin(positions, marks, DEFAULT_SCENARIO_PARAMS);
            const m = margin.initialQuote;
            // The loss in full and half the cushion: maintenance stays within initial.
            assert.ok(
              margin.maintenanceQuote <= m,
              `maintenance ${margin.maintenanceQuote} > ${m}`,
            );
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

test('an option whose long and short values differ is at its worst with no position where its range spans 0', () => {
  // Long or short, this option gains in every scenario (a long of one that
  // cannot be shocked, in the money at every moved forward, and a short whose
  // values stand still above its bounds): the future beside it loses alone.
  const count = scenarioCount(DEFAULT_SCENARIO_PARAMS);
  const future: ScenarioInstrument = {
    underlying: 'BTC',
    isOption: false,
    pnlPerLotWad: new Array<bigint>(count).fill(-(10n ** 21n)),
    longPnlPerLotWad: new Array<bigint>(count).fill(-(10n ** 21n)),
    longMaintenancePnlPerLotWad: new Array<bigint>(count).fill(-(10n ** 21n)),
    shortMaintenancePnlPerLotWad: new Array<bigint>(count).fill(-(10n ** 21n)),
    valuePerLotWad: 0n,
    shortMinPerLotWad: 0n,
    shortLossPerLotWad: 0n,
    shortCushionPerLotWad: 0n,
    cushionMaintenancePpm: 0n,
  };
  const option: ScenarioInstrument = {
    ...future,
    isOption: true,
    pnlPerLotWad: new Array<bigint>(count).fill(-(10n ** 20n)),
    longPnlPerLotWad: new Array<bigint>(count).fill(10n ** 20n),
    longMaintenancePnlPerLotWad: new Array<bigint>(count).fill(10n ** 20n),
  };
  const marks = new Map([
    ['F', future],
    ['O', option],
  ]);
  const ranges = [
    { instrument: 'F', lowLots: 1, highLots: 1 },
    { instrument: 'O', lowLots: -1, highLots: 1 },
  ];
  const alone = scenarioMargin([{ instrument: 'F', sizeLots: 1 }], marks, DEFAULT_SCENARIO_PARAMS);
  assert.equal(alone.initialQuote, 1_000_000_000n);
  assert.equal(scenarioInitialOverRanges(ranges, marks, DEFAULT_SCENARIO_PARAMS), 1_000_000_000n);
});

test('a bid for one cheap option does not take a dated future of its underlying off its linear maintenance', () => {
  const h = harness();
  h.fund(alice, 7_000n * USDC);
  h.fund(bob, 1_000_000n * USDC);
  h.block([], MINUTE_MS);
  const state = h.ex.state;
  const future = state.marketByName.get(FUTURE)!;
  const far = state.marketByName.get('BTC-2MAR26-52000-C')!;
  const ok = (k: typeof alice, order: ReturnType<typeof limit>): void => {
    const r = h.one(k, order);
    assert.ok(r.ok && r.actions[0]!.ok, JSON.stringify(r, replacer));
  };
  // Long 1 BTC of the future: 3% maintenance ($1,500), 5% initial ($2,500).
  ok(bob, limit(FUTURE, 'sell', future.markTicks, 10_000));
  ok(alice, limit(FUTURE, 'buy', future.markTicks, 10_000));
  const a = h.account(alice)!;
  const maintenance = maintenanceMarginQuote(state, a);
  assert.equal(maintenance, 1_500n * USDC);
  // A bid for one lot of a far call at one tick ($0.50 a lot): it can lose
  // nothing until it fills, and then at most its premium.
  ok(alice, limit(far.params.instrument, 'buy', 1, 1));
  assert.equal(maintenanceMarginQuote(state, a), maintenance);
  assert.equal(initialMarginQuote(state, a), 2_500n * USDC + far.markQuotePerLot);
  // BTC falls 7%: equity ~$3,475 is above the future's 3% ($1,395), below the
  // scenario's 10% ($4,650). Nothing is liquidated, and the bid still rests.
  h.oracle = { ...h.oracle, BTC: 46_500n * USDC };
  const r = h.block([], MINUTE_MS);
  assert.deepEqual(
    r.events.filter((e) => e.type === 'liquidation' || e.type === 'liquidationCancels'),
    [],
  );
  assert.equal(sizeIn(a, future), 10_000);
  assert.equal(far.book.ownerOrderCount(a.index), 1);
  assert.ok(equityQuote(state, a) > maintenanceMarginQuote(state, a), 'above maintenance');
});

test('a future hedged by a put still takes the scenario when that needs less than its parts', () => {
  const h = harness();
  h.fund(alice, 20_000n * USDC);
  h.fund(bob, 1_000_000n * USDC);
  h.block([], MINUTE_MS);
  const state = h.ex.state;
  const future = state.marketByName.get(FUTURE)!;
  const put = state.marketByName.get('BTC-2MAR26-50000-P')!;
  const a = h.account(alice)!;
  const b = h.account(bob)!;
  applyTrade(state, future, a, 10_000, future.markTicks);
  applyTrade(state, future, b, -10_000, future.markTicks);
  const futureOnly = maintenanceMarginQuote(state, a);
  applyTrade(state, put, a, 10, put.markTicks);
  applyTrade(state, put, b, -10, put.markTicks);
  // Linear beside the put it would need at least the future's 3%: the
  // scenario, where the put pays for the fall, needs less.
  const hedged = maintenanceMarginQuote(state, a);
  assert.ok(hedged < futureOnly, `a protective put lowers maintenance: ${hedged} < ${futureOnly}`);
});

test('property: a portfolio of dated futures and options needs no more than its parts, and a long option adds at most its premium, with fresh smiles or stale ones', () => {
  // Stale, the options are margined by model-free bounds at a forward moved
  // from their kept marks (a loss for some shorts, a cushion for every one).
  for (const stale of [false, true]) {
    const h = harness();
    const names = [0, 1, 2, 3].map((i) => key(`listed-margin-parts-${i}`));
    for (const k of names) h.fund(k, 1_000n * USDC);
    h.fund(bob, 1_000_000n * USDC);
    h.block([], MINUTE_MS);
    if (stale) {
      h.smiles = null;
      h.block([], 61_000);
      h.oracle = { ...h.oracle, BTC: h.oracle.BTC! + 1_500n * USDC };
      h.block([], 1_000);
    }
    const state = h.ex.state;
    const [whole, futures, options, more] = names.map((k) => h.account(k)!) as [
      Account,
      Account,
      Account,
      Account,
    ];
    const counterparty = h.account(bob)!;
    const listed = state.markets.filter(
      (m) => m.listed && !m.retired && m.params.underlying === 'BTC',
    );
    // Options never marked (listed while the smile is stale) take no orders.
    const optionMarkets = listed.filter((m) => m.instrument.kind === 'option' && m.markTicks > 0);
    const future = listed.find((m) => m.instrument.kind === 'future')!;
    const trade = (a: Account, m: (typeof listed)[number], lots: number): void => {
      if (lots === 0) return;
      applyTrade(state, m, a, lots, m.markTicks);
      applyTrade(state, m, counterparty, -lots, m.markTicks);
    };
    fc.assert(
      fc.property(
        fc.integer({ min: -30_000, max: 30_000 }),
        fc.array(
          fc.record({
            option: fc.nat(optionMarkets.length - 1),
            lots: fc.integer({ min: -20, max: 20 }),
          }),
          { maxLength: 4 },
        ),
        fc.record({
          option: fc.nat(optionMarkets.length - 1),
          lots: fc.integer({ min: 1, max: 10 }),
        }),
        (futureLots, held, added) => {
          const done: [Account, (typeof listed)[number], number][] = [];
          const put = (a: Account, m: (typeof listed)[number], lots: number): void => {
            trade(a, m, lots);
            done.push([a, m, lots]);
          };
          for (const a of [whole, futures, more]) put(a, future, futureLots);
          for (const o of held) {
            for (const a of [whole, options, more]) put(a, optionMarkets[o.option]!, o.lots);
          }
          const o = optionMarkets[added.option]!;
          put(more, o, added.lots);
          const m = (a: Account) => maintenanceMarginQuote(state, a);
          const i = (a: Account) => initialMarginQuote(state, a);
          for (const a of [whole, futures, options, more]) {
            assert.ok(m(a) <= i(a), `maintenance ${m(a)} above initial ${i(a)}`);
          }
          assert.ok(m(whole) <= m(futures) + m(options), `maintenance ${m(whole)} above its parts`);
          assert.ok(i(whole) <= i(futures) + i(options), `initial ${i(whole)} above its parts`);
          // Bought at the mark, the option leaves equity as it was: maintenance
          // rises by at most its premium (80% of its value, to a tick per lot).
          const premium = BigInt(added.lots) * (o.markQuotePerLot + o.k);
          assert.ok(
            m(more) - m(whole) <= premium,
            `a long option raised maintenance by ${m(more) - m(whole)} > ${premium}`,
          );
          for (const [a, market, lots] of done.reverse()) trade(a, market, -lots);
          for (const a of names.map((k) => h.account(k)!)) assert.equal(a.positionCount, 0);
        },
      ),
      { seed: 11, numRuns: 60 },
    );
    if (stale) {
      assert.ok(
        optionMarkets.every((o) => o.optionMark === null),
        'no option marked while the smile is stale',
      );
    }
  }
});

test('a dated future kept linear beside its options never takes initial above the whole scenario, with long options of another underlying', () => {
  const h = harness();
  h.smiles = [...(h.smiles ?? []), { underlying: 'ETH', expiryMs: EXPIRY_MS, svi: FLAT }];
  h.fund(alice, 100_000n * USDC);
  h.fund(bob, 1_000_000n * USDC);
  h.block([], MINUTE_MS);
  const state = h.ex.state;
  const a = h.account(alice)!;
  const b = h.account(bob)!;
  // Long 1 BTC of the future and one far BTC call ($0.50): alone, the future
  // needs less linear (5%) than in the scenario (12.5%). Long ETH calls and
  // puts in the money ($20,000 of premium, little scenario loss): the premium
  // is the floor of the account's initial, and the future's $6,250 of
  // scenario loss fits under it.
  const held: [string, number][] = [
    [FUTURE, 10_000],
    ['BTC-2MAR26-52000-C', 1],
    ['ETH-2MAR26-2900-C', 1_000],
    ['ETH-2MAR26-3100-P', 1_000],
  ];
  for (const [name, lots] of held) {
    const m = state.marketByName.get(name)!;
    applyTrade(state, m, a, lots, m.markTicks);
    applyTrade(state, m, b, -lots, m.markTicks);
  }
  const marks = new Map(
    held.map(([name]) => [name, scenarioOf(state, state.marketByName.get(name)!)]),
  );
  const whole = scenarioInitialOverRanges(
    held.map(([instrument, lots]) => ({ instrument, lowLots: lots, highLots: lots })),
    marks,
    state.listing!.scenario,
  );
  const premium = held
    .filter(([name]) => name.startsWith('ETH'))
    .reduce(
      (sum, [name, lots]) => sum + BigInt(lots) * state.marketByName.get(name)!.markQuotePerLot,
      0n,
    );
  assert.ok(
    whole < premium + 2_500n * USDC,
    `the whole scenario ${whole} is below premium + linear`,
  );
  // The future's linear $2,500 on top of the premium would be more than that.
  assert.equal(initialMarginQuote(state, a), whole);
  assert.ok(
    maintenanceMarginQuote(state, a) <= initialMarginQuote(state, a),
    'maintenance within initial',
  );
});
