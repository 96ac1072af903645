import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Block, ExchangeEvent } from '../../../src/exchange/index.ts';
import {
  BlockSides,
  ScenarioError,
  buildReport,
  generateState,
  parseScenario,
  reportText,
  runStress,
  usd,
} from '../../../src/sim/stress/index.ts';
import { sizeIn } from '../../../src/exchange/position.ts';

/** Every underlying 35% down in 20 seconds, then 20 quiet seconds. */
const DROP_35 = parseScenario({
  name: 'drop-35',
  underlyings: {
    '*': [
      { atS: 0, moveBps: 0 },
      { atS: 20, moveBps: -3500 },
      { atS: 40, moveBps: -3500 },
    ],
  },
});

/**
 * Records every block's events, and what each deleverage did to its
 * counterparty against the block's mark: beyond it (a loss passed on) or
 * better (a gain), on the side the position held before the block.
 */
function recordBlocks(exchange: ReturnType<typeof generateState>['exchange']) {
  const out = {
    events: [] as ExchangeEvent[],
    socializedQuote: 0n,
    losers: new Set<number>(),
    gainedQuote: 0n,
    winners: new Set<number>(),
  };
  const state = exchange.state;
  const finalize = exchange.finalizeBlock.bind(exchange);
  exchange.finalizeBlock = (block: Block) => {
    // Which way each position was before the block: the deleverage event does not say.
    const long = new Map<string, boolean>();
    for (const m of state.markets) {
      for (const a of m.holders) long.set(`${a.index}:${m.params.instrument}`, sizeIn(a, m) > 0);
    }
    const result = finalize(block);
    for (const e of result.events) {
      if (e.type !== 'deleverage') continue;
      const m = state.marketByName.get(e.market)!;
      const ticks = long.get(`${e.account}:${e.market}`)
        ? e.priceTicks - m.markTicks
        : m.markTicks - e.priceTicks;
      if (ticks > 0) {
        out.socializedQuote += BigInt(e.sizeLots * ticks) * m.k;
        out.losers.add(e.counterparty);
      } else if (ticks < 0) {
        out.gainedQuote += BigInt(e.sizeLots * -ticks) * m.k;
        out.winners.add(e.counterparty);
      }
    }
    out.events.push(...result.events);
    return result;
  };
  return out;
}

// The report's money figures recomputed by hand from the state machine's own
// events, on a small perpetuals-only state and a 35% drop in 20 seconds:
// enough to liquidate through the provider's ladder, deleverage and draw on
// the insurance fund.
test('reported figures match the events: book notional at fill prices, deleveraging, fees, insurance', () => {
  const { exchange } = generateState({ accounts: 60, seed: 3, optionSharePct: 0 });
  const state = exchange.state;
  const scenario = DROP_35;
  const recorded = recordBlocks(exchange);
  const events = recorded.events;
  const collateral = (): bigint =>
    state.accounts.reduce((sum, a) => sum + a.cashQuote, 0n) +
    state.insuranceQuote +
    state.feePoolQuote;
  const insuranceStart = state.insuranceQuote;
  const report = buildReport(runStress(exchange, scenario));

  let bookQuote = 0n;
  let deleveragedQuote = 0n;
  let feesQuote = 0n;
  let coverQuote = 0n;
  const liquidated = new Set<number>();
  for (const e of events) {
    if (e.type === 'liquidationFill' || e.type === 'deleverage') {
      const k = state.marketByName.get(e.market)!.k;
      const notional = BigInt(e.sizeLots) * BigInt(e.priceTicks) * k;
      if (e.type === 'liquidationFill') bookQuote += notional;
      else deleveragedQuote += notional;
    } else if (e.type === 'liquidation') {
      feesQuote += e.feeQuote;
      liquidated.add(e.account);
    } else if (e.type === 'insuranceCover') coverQuote += e.amountQuote;
  }
  assert.ok(bookQuote > 0n && deleveragedQuote > 0n && coverQuote > 0n, 'the drop does all three');
  assert.equal(report.liquidations.notionalQuote, bookQuote);
  assert.equal(report.deleveraging.notionalQuote, deleveragedQuote);
  assert.equal(report.deleveraging.gainedQuote, recorded.gainedQuote);
  assert.equal(report.deleveraging.gainedCounterparties, recorded.winners.size);
  assert.equal(report.deleveraging.socializedQuote, recorded.socializedQuote);
  assert.equal(report.liquidations.feesQuote, feesQuote);
  assert.equal(report.liquidations.accounts, liquidated.size);
  assert.equal(report.badDebt.coveredQuote, coverQuote);
  // Perpetuals only, nothing settles: the fund moves by fees in and cover out alone.
  assert.equal(report.insurance.startQuote, insuranceStart);
  assert.equal(report.insurance.endQuote - insuranceStart, feesQuote - coverQuote);
  assert.equal(collateral(), state.depositedQuote - state.withdrawnQuote);
  const last = report.series[report.series.length - 1]!;
  assert.equal(last.liquidatedNotionalQuote, bookQuote);
  // The path falls from its first point: its high is the start, not the first block's price.
  for (const u of report.underlyings) {
    assert.equal(u.maxQuote, u.startQuote, `${u.underlying} high`);
    assert.equal(u.minQuote, u.endQuote, `${u.underlying} low`);
  }
});

// A 25% gap on a $1,000 fund: the provider's asks lie above the bankruptcy
// prices, the fund runs dry, and the rest of the losses past the liquidated
// accounts' equity is deleveraged onto their counterparties beyond the mark
// (slice by slice: the gap starts volatility auctions). Ten minutes in 30-second blocks cross
// the 08:00 funding payment, whose rounding dust goes to the fund.
// Options deleveraged with equity left: their counterparties are closed at
// the bankruptcy price, better than the mark, and the report says by how much.
test('what counterparties gain from deleveraging better than the mark is reported', () => {
  const { exchange } = generateState({ accounts: 60, seed: 3, optionSharePct: 30 });
  const recorded = recordBlocks(exchange);
  const report = buildReport(runStress(exchange, DROP_35));
  assert.ok(recorded.gainedQuote > 0n, 'counterparties closed better than the mark');
  assert.equal(report.deleveraging.gainedQuote, recorded.gainedQuote);
  assert.equal(report.deleveraging.gainedCounterparties, recorded.winners.size);
  assert.equal(report.deleveraging.socializedQuote, recorded.socializedQuote);
  const row = reportText(report)
    .split('\n')
    .find((l) => l.startsWith('deleveraging'))!;
  assert.ok(
    row.includes(
      `${usd(recorded.gainedQuote)} gained by ${recorded.winners.size} closed better than it`,
    ),
    row,
  );
});

test('losses past equity are counted where they land: the fund, counterparties beyond the mark', () => {
  const { exchange } = generateState({
    accounts: 60,
    seed: 3,
    optionSharePct: 0,
    insuranceQuote: 1_000n * 1_000_000n,
  });
  const state = exchange.state;
  const scenario = parseScenario({
    name: 'gap-up-dry-fund',
    blockMs: 30_000,
    durationS: 600,
    underlyings: {
      '*': [
        { atS: 0, moveBps: 0 },
        { atS: 30, moveBps: 0 },
        { atS: 30, moveBps: 2500 },
      ],
    },
  });
  const recorded = recordBlocks(exchange);
  const { events, losers } = recorded;
  const insuranceStart = state.insuranceQuote;
  const report = buildReport(runStress(exchange, scenario));

  let feesQuote = 0n;
  let coverQuote = 0n;
  let dustQuote = 0n;
  const positions = new Set<string>();
  let liquidations = 0;
  for (const e of events) {
    if (e.type === 'liquidation') {
      feesQuote += e.feeQuote;
      positions.add(`${e.account}:${e.market}`);
      liquidations++;
    } else if (e.type === 'insuranceCover') coverQuote += e.amountQuote;
    else if (e.type === 'funding') dustQuote += e.dustQuote;
  }
  assert.ok(
    recorded.socializedQuote > 100n * coverQuote,
    'most of the loss lands on counterparties',
  );
  assert.ok(report.insurance.endQuote < 1_000_000n, 'the fund ran dry');
  assert.ok(
    liquidations > positions.size,
    `positions took several slices: ${liquidations} ${positions.size}`,
  );
  assert.ok(dustQuote > 0n, 'the funding payment left dust');
  assert.equal(report.deleveraging.socializedQuote, recorded.socializedQuote);
  assert.equal(report.deleveraging.socializedCounterparties, losers.size);
  assert.equal(report.deleveraging.gainedQuote, recorded.gainedQuote);
  assert.equal(report.deleveraging.gainedCounterparties, recorded.winners.size);
  assert.equal(report.liquidations.positions, positions.size);
  assert.equal(report.liquidations.events, liquidations);
  assert.equal(report.funding.dustQuote, dustQuote);
  // The fund moves by fees and funding dust in, cover out: nothing else.
  assert.equal(report.insurance.endQuote - insuranceStart, feesQuote + dustQuote - coverQuote);
  assert.equal(report.badDebt.coveredQuote, coverQuote);
  // The row's total is the sum of its parts as shown (each part in cents, rounded
  // so that the fund's row adds up): within a cent per part of the exact sum.
  const row = reportText(report)
    .split('\n')
    .find((l) => l.startsWith('bad debt'))!;
  const cents = [...row.matchAll(/\$([0-9,]+)\.([0-9]{2})/g)].map((m) =>
    BigInt(m[1]!.replaceAll(',', '') + m[2]!),
  );
  assert.equal(cents.length, 4, row);
  const [total, paid, socialized, uncovered] = cents as [bigint, bigint, bigint, bigint];
  assert.equal(total, paid + socialized + uncovered, `bad debt adds up its parts: ${row}`);
  const exact = coverQuote + recorded.socializedQuote + report.badDebt.deficitQuote;
  const off = total * 10_000n - exact;
  assert.ok(
    off > -30_000n && off < 30_000n,
    `bad debt counts the fund's cover and what counterparties took: ${row}`,
  );
});

test('a path to a millionth of a dollar runs through: options past the pricing math keep their last marks', () => {
  const { exchange } = generateState({ accounts: 20, seed: 1 });
  const scenario = parseScenario({
    name: 'to-zero',
    underlyings: {
      '*': [
        { atS: 0, moveBps: 0 },
        { atS: 3, price: '0.000001' },
      ],
    },
  });
  const before = exchange.state.height;
  runStress(exchange, scenario);
  assert.ok(exchange.state.height > before + 2, 'every block of the path ran');
  const unpriced = exchange.state.markets.filter(
    (m) => !m.retired && m.instrument.kind === 'option' && m.optionMark === null,
  );
  assert.ok(unpriced.length > 0, 'options outside the domain hold their marks unpriced');
});

test('a scenario naming an underlying the state lacks is refused, not run as a quiet one', () => {
  const { exchange } = generateState({ accounts: 10, seed: 1, optionSharePct: 0 });
  const height = exchange.state.height;
  const scenario = parseScenario({
    name: 'typo',
    underlyings: {
      BTCC: [
        { atS: 0, moveBps: 0 },
        { atS: 3, moveBps: -3000 },
      ],
    },
  });
  assert.throws(
    () => runStress(exchange, scenario),
    (error: unknown) =>
      error instanceof ScenarioError &&
      error.field === 'underlyings.BTCC' &&
      /no such underlying \(it has BTC, ETH\)/.test(error.message),
  );
  assert.equal(exchange.state.height, height, 'no block ran');
});

// A deleverage event does not say which way its account was: the side is
// followed through the block, so a position an uncross or a fill as maker
// turned before its liquidation counts its loss the right way round (the
// side before the block read a long turned short as still long).
test('a position turned within the block is deleveraged on its new side', () => {
  const { exchange } = generateState({ accounts: 20, seed: 3, optionSharePct: 0 });
  const m = exchange.state.markets[0]!;
  const market = m.params.instrument;
  const holder = [...m.holders].find((a) => sizeIn(a, m) > 0)!;
  const sides = BlockSides.before(exchange);
  const before = sizeIn(holder, m);
  assert.equal(sides.size(holder.index, market), before);
  // The uncross sells it past zero, then a liquidation's buy meets its ask.
  sides.auctionTrades([
    {
      type: 'auctionTrade',
      market,
      buyOrderId: 1,
      sellOrderId: 2,
      buyAccount: 999,
      sellAccount: holder.index,
      priceTicks: m.markTicks,
      sizeLots: before + 3,
      buyFeeQuote: 0n,
      sellFeeQuote: 0n,
    },
  ]);
  assert.equal(sides.size(holder.index, market), -3, 'short after the uncross');
  sides.trade(holder.index, market, 5);
  assert.equal(sides.size(holder.index, market), 2, 'long again as a maker');
});
