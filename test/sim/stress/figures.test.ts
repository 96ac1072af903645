import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Block, ExchangeEvent } from '../../../src/exchange/index.ts';
import {
  ScenarioError,
  buildReport,
  generateState,
  parseScenario,
  runStress,
} from '../../../src/sim/stress/index.ts';

// The report's money figures recomputed by hand from the state machine's own
// events, on a small perpetuals-only state and a 35% drop in 20 seconds:
// enough to liquidate through the provider's ladder, deleverage and draw on
// the insurance fund.
test('reported figures match the events: book notional at fill prices, deleveraging, fees, insurance', () => {
  const { exchange } = generateState({ accounts: 60, seed: 3, optionSharePct: 0 });
  const state = exchange.state;
  const scenario = parseScenario({
    name: 'drop-35',
    underlyings: {
      '*': [
        { atS: 0, moveBps: 0 },
        { atS: 20, moveBps: -3500 },
        { atS: 40, moveBps: -3500 },
      ],
    },
  });
  const events: ExchangeEvent[] = [];
  const finalize = exchange.finalizeBlock.bind(exchange);
  exchange.finalizeBlock = (block: Block) => {
    const result = finalize(block);
    events.push(...result.events);
    return result;
  };
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
  assert.equal(report.liquidations.feesQuote, feesQuote);
  assert.equal(report.liquidations.accounts, liquidated.size);
  assert.equal(report.badDebt.coveredQuote, coverQuote);
  // Perpetuals only, nothing settles: the fund moves by fees in and cover out alone.
  assert.equal(report.insurance.startQuote, insuranceStart);
  assert.equal(report.insurance.endQuote - insuranceStart, feesQuote - coverQuote);
  assert.equal(collateral(), state.depositedQuote - state.withdrawnQuote);
  const last = report.series[report.series.length - 1]!;
  assert.equal(last.liquidatedNotionalQuote, bookQuote);
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
