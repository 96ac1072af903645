// Which accounts below maintenance may close in this block (docs/exchange.md,
// "Liquidation and deleveraging"): those go first. An option at a kept mark
// (no fresh smile) closes only against another account's order resting
// within its slice's price, the bankruptcy price of the equity the slice
// sees: for an account below zero, that equity after the insurance fund's
// cover, which comes before its slices; or past that price within the fund's
// limit, where the fund the cover left pays a lot's loss beyond the
// bankruptcy price (step 3's close past it).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { equityQuote, maintenanceMarginQuote } from '../../src/exchange/margin.ts';
import { bankruptcyTicks, isLiquidatable, mayClose } from '../../src/exchange/liquidation.ts';
import { sizeIn } from '../../src/exchange/position.ts';
import type { ExchangeEvent } from '../../src/exchange/index.ts';
import {
  Harness,
  LISTING_DAY_SMILES,
  LISTING_DAY_START_MS,
  accepted,
  USDC,
  dailyListingGenesis,
  key,
  limit,
  replacer,
} from './helpers.ts';

const MINUTE_MS = 60_000;
const CALL = 'BTC-2MAR26-50000-C';
const PERP = 'BTC-PERPETUAL';

/**
 * Carol, short 20 of the call at a kept mark (the smile stale), $100 below
 * zero; Erin, short the perpetual, $1 below her maintenance margin; Ann's ask
 * of 5 calls rests `askAboveMarkTicks` above the call's mark. The fund holds
 * `fundQuote`. Invariants are off: the equities are set by hand.
 */
function carolAndErin(prefix: string, askAboveMarkTicks: number, fundQuote: bigint) {
  const h = new Harness(dailyListingGenesis(LISTING_DAY_START_MS), { checkInvariants: false });
  h.smiles = LISTING_DAY_SMILES;
  const carol = key(`${prefix}-carol`);
  const dave = key(`${prefix}-dave`);
  const ann = key(`${prefix}-ann`);
  const erin = key(`${prefix}-erin`);
  h.fund(carol, 40_000n * USDC);
  h.fund(dave, 1_000_000n * USDC);
  h.fund(ann, 100_000n * USDC);
  h.fund(erin, 100_000n * USDC);
  h.block([], MINUTE_MS);
  const state = h.ex.state;
  const call = state.marketByName.get(CALL)!;
  const perp = state.marketByName.get(PERP)!;
  accepted(h.one(dave, limit(CALL, 'buy', call.markTicks, 20)));
  accepted(h.one(carol, limit(CALL, 'sell', call.markTicks, 20)));
  accepted(h.one(dave, limit(PERP, 'buy', perp.markTicks, 1_000)));
  accepted(h.one(erin, limit(PERP, 'sell', perp.markTicks, 1_000, { timeInForce: 'IOC' })));
  const askTicks = call.markTicks + askAboveMarkTicks;
  accepted(h.one(ann, limit(CALL, 'sell', askTicks, 5)));
  // The smile goes stale, and the call keeps its mark.
  h.smiles = null;
  h.block([], 61_000);
  assert.equal(call.optionMark, null);
  assert.equal(call.markTicks, askTicks - askAboveMarkTicks);
  const c = h.account(carol)!;
  const e = h.account(erin)!;
  c.cashQuote -= equityQuote(state, c) + 100n * USDC;
  e.cashQuote -= equityQuote(state, e) - maintenanceMarginQuote(state, e) + USDC;
  state.insuranceQuote = fundQuote;
  state.markAccount(c);
  state.markAccount(e);
  assert.ok(isLiquidatable(state, c) && isLiquidatable(state, e));
  assert.equal(equityQuote(state, c), -100n * USDC);
  return { h, state, c, e, call, perp };
}

/** The accounts of the block's liquidations, each once, in their order. */
function liquidationOrder(events: readonly ExchangeEvent[]): number[] {
  const order = events.flatMap((x) => (x.type === 'liquidation' ? [x.account] : []));
  return order.filter((a, i) => order.indexOf(a) === i);
}

test('a short call at a kept mark below zero equity, with an ask resting at the mark, may close once the fund covers it: it goes before a perpetual with a smaller shortfall', () => {
  const { h, state, c, e, call, perp } = carolAndErin('mc', 0, 1_000_000n * USDC);
  // Without the cover, her bankruptcy price lies below the mark, short of
  // Ann's ask; with it, at the mark.
  assert.ok(bankruptcyTicks(call, c, equityQuote(state, c)) < call.markTicks);
  assert.equal(bankruptcyTicks(call, c, 0n), call.markTicks);
  const events = h.block([], 20_000).events;
  assert.deepEqual(
    liquidationOrder(events),
    [c.index, e.index],
    `Carol, the larger shortfall, first: ${JSON.stringify(events, replacer)}`,
  );
  assert.equal(sizeIn(c, call), -15, 'she bought back Ann’s 5 calls');
  assert.equal(sizeIn(e, perp), 0, 'Erin closed');
});

/**
 * As carolAndErin, Ann's ask one tick above the call's mark, past Carol's
 * slice price (the mark, once the fund covers her) and within the fund's
 * limit (the mark + max(1, 3% of it) ticks: one tick).
 */
function pastBankruptcy(fundQuote: bigint) {
  const { h, state, c, e, call, perp } = carolAndErin('mcp', 1, fundQuote);
  assert.equal(bankruptcyTicks(call, c, 0n), call.markTicks, 'covered: the mark');
  assert.equal(call.k, USDC / 2n, 'a tick of a lot: $0.50');
  const predicted = mayClose(state, c);
  const events = h.block([], 20_000).events;
  return { c, e, call, perp, events, predicted, order: liquidationOrder(events) };
}

test("a short call at a kept mark below zero equity, with an ask resting a tick past its slice's price that the insurance fund pays for, may close: it goes before a perpetual with a smaller shortfall", () => {
  // The fund covers her $100 and has $1,000 left: Ann's 5 calls cost it
  // $0.50 each past the bankruptcy price. Predicted unable to close, Carol
  // came after Erin.
  const { c, e, call, perp, events, order, predicted } = pastBankruptcy(1_100n * USDC);
  assert.ok(predicted, 'may close');
  assert.deepEqual(order, [c.index, e.index], `Carol first: ${JSON.stringify(events, replacer)}`);
  assert.equal(sizeIn(c, call), -15, 'she bought back Ann’s 5 calls past the bankruptcy price');
  const covers = events.flatMap((x) =>
    x.type === 'insuranceCover' && x.account === c.index ? [x.amountQuote] : [],
  );
  assert.ok(covers.includes(2_500_000n), `the fund paid 5 × $0.50: ${covers.join(', ')}`);
  assert.equal(sizeIn(e, perp), 0, 'Erin closed');
});

test('a short call at a kept mark may close past its slice price exactly as far as the fund left by its cover pays a lot there: $0.50 left closes one lot, $0.40 none', () => {
  // $0.50 left: one of Ann's calls, the fund paying its $0.50; Carol first.
  const one = pastBankruptcy(100_500_000n);
  assert.ok(one.predicted);
  assert.deepEqual(one.order, [one.c.index, one.e.index]);
  assert.equal(sizeIn(one.c, one.call), -19, 'one lot past the bankruptcy price');
  assert.equal(sizeIn(one.e, one.perp), 0, 'Erin closed');
  // $0.40 left: not a lot. Predicted unable to close, Carol comes after
  // Erin, and her attempt closes nothing (and so reports nothing).
  const none = pastBankruptcy(100_400_000n);
  assert.ok(!none.predicted);
  assert.deepEqual(none.order, [none.e.index]);
  assert.equal(sizeIn(none.c, none.call), -20, 'nothing closed');
  assert.equal(sizeIn(none.e, none.perp), 0, 'Erin closed');
});

test('a short call at a kept mark whose equity other kept marks lower may not close past its slice price: the fund pays nothing there, and the ask past it is predicted out of reach', () => {
  // Carol, short 20 of the call at a kept mark, also holds 10 of the
  // at-the-money ETH 3,000 call at a kept mark (the smile stale), sure of
  // no intrinsic value at the forward; her equity is $1, below her maintenance margin. That
  // call's kept mark counts more than $1: her counted equity is 0, the BTC
  // call's slice price its mark, and Ann's ask a tick above it is past that
  // price. The fund holds plenty, but a close past the bankruptcy price is
  // not made when kept marks lowered the equity (closePastBankruptcy): she
  // closes nothing, and is not predicted to.
  const ETH_CALL = 'ETH-2MAR26-3000-C';
  const h = new Harness(dailyListingGenesis(LISTING_DAY_START_MS), { checkInvariants: false });
  h.smiles = LISTING_DAY_SMILES;
  const carol = key('mcq-carol');
  const dave = key('mcq-dave');
  const ann = key('mcq-ann');
  h.fund(carol, 40_000n * USDC);
  h.fund(dave, 1_000_000n * USDC);
  h.fund(ann, 100_000n * USDC);
  h.block([], MINUTE_MS);
  const state = h.ex.state;
  const call = state.marketByName.get(CALL)!;
  const ethCall = state.marketByName.get(ETH_CALL)!;
  accepted(h.one(dave, limit(CALL, 'buy', call.markTicks, 20)));
  accepted(h.one(carol, limit(CALL, 'sell', call.markTicks, 20)));
  accepted(h.one(dave, limit(ETH_CALL, 'sell', ethCall.markTicks, 10)));
  accepted(h.one(carol, limit(ETH_CALL, 'buy', ethCall.markTicks, 10)));
  const askTicks = call.markTicks + 1;
  accepted(h.one(ann, limit(CALL, 'sell', askTicks, 5)));
  h.smiles = null;
  h.block([], 61_000);
  assert.equal(call.optionMark, null);
  assert.equal(ethCall.optionMark, null);
  assert.equal(call.markTicks, askTicks - 1);
  const c = h.account(carol)!;
  c.cashQuote -= equityQuote(state, c) - USDC;
  state.insuranceQuote = 1_000_000n * USDC;
  state.markAccount(c);
  assert.equal(equityQuote(state, c), USDC);
  assert.ok(isLiquidatable(state, c));
  assert.ok(10n * ethCall.markQuotePerLot > USDC, 'the ETH call counts more than her equity');
  assert.ok(!mayClose(state, c), 'no order within her slices’ prices');
  h.block([], 20_000);
  assert.equal(sizeIn(c, call), -20, 'nothing bought past the bankruptcy price');
  assert.equal(sizeIn(c, ethCall), 10);
  assert.equal(state.insuranceQuote, 1_000_000n * USDC, 'the fund paid nothing');
});
