// Which accounts below maintenance may close in this block (docs/exchange.md,
// "Liquidation and deleveraging"): those go first. An option at a kept mark
// (no fresh smile) closes only against another account's order resting
// within its slice's price, the bankruptcy price of the equity the slice
// sees: for an account below zero, that equity after the insurance fund's
// cover, which comes before its slices.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { equityQuote, maintenanceMarginQuote } from '../../src/exchange/margin.ts';
import { bankruptcyTicks, isLiquidatable } from '../../src/exchange/liquidation.ts';
import { sizeIn } from '../../src/exchange/position.ts';
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

test('a short call at a kept mark below zero equity, with an ask resting at the mark, may close once the fund covers it: it goes before a perpetual with a smaller shortfall', () => {
  const h = new Harness(dailyListingGenesis(LISTING_DAY_START_MS), { checkInvariants: false });
  h.smiles = LISTING_DAY_SMILES;
  const carol = key('mc-carol');
  const dave = key('mc-dave');
  const ann = key('mc-ann');
  const erin = key('mc-erin');
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
  // Ann's ask rests at the call's mark; the smile goes stale, and the call
  // keeps that mark.
  const askTicks = call.markTicks;
  accepted(h.one(ann, limit(CALL, 'sell', askTicks, 5)));
  h.smiles = null;
  h.block([], 61_000);
  assert.equal(call.optionMark, null);
  assert.equal(call.markTicks, askTicks);
  // Carol's equity goes $100 below zero, which the fund covers; Erin's goes
  // $1 below her maintenance margin.
  const c = h.account(carol)!;
  const e = h.account(erin)!;
  c.cashQuote -= equityQuote(state, c) + 100n * USDC;
  e.cashQuote -= equityQuote(state, e) - maintenanceMarginQuote(state, e) + USDC;
  state.insuranceQuote = 1_000_000n * USDC;
  state.markAccount(c);
  state.markAccount(e);
  assert.ok(isLiquidatable(state, c) && isLiquidatable(state, e));
  assert.equal(equityQuote(state, c), -100n * USDC);
  // Without the cover, her bankruptcy price lies below the mark, short of
  // Ann's ask; with it, at the mark.
  assert.ok(bankruptcyTicks(call, c, equityQuote(state, c)) < call.markTicks);
  assert.equal(bankruptcyTicks(call, c, 0n), call.markTicks);
  const events = h.block([], 20_000).events;
  const order = events.flatMap((x) => (x.type === 'liquidation' ? [x.account] : []));
  assert.deepEqual(
    order.filter((a, i) => order.indexOf(a) === i),
    [c.index, e.index],
    `Carol, the larger shortfall, first: ${JSON.stringify(events, replacer)}`,
  );
  assert.equal(sizeIn(c, call), -15, 'she bought back Ann’s 5 calls');
  assert.equal(sizeIn(e, perp), 0, 'Erin closed');
});
