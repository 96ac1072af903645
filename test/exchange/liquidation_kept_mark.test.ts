// A bankruptcy price beside an option held at a kept mark (docs/exchange.md,
// "Liquidation and deleveraging", step 3): the kept mark counts in the
// equity the price is taken from only as far as the option is sure to be
// worth (a long's intrinsic value at this block's forward), so a position
// closed beside it spends no equity nobody observed, and the insurance fund
// pays nothing for what the option may still be worth.
//
// The situation (as listing.test.ts's long put beside a short future): Alice
// holds 3 BTC of the 52,000 put, bought at $2,000 a BTC, and is short 1 BTC
// of the daily future, with $8,500 of equity. The smile goes stale; BTC goes
// up 5% to $52,500, out of the put's money, which keeps its $2,000 mark
// ($300 a BTC at the fresh smile). Her equity by the marks is $6,000, all of
// it the put's kept mark; once the stale smile's grace is over, she is
// liquidated. Her short future's bankruptcy price was the mark + $6,000
// ($58,500): deleveraged there, Bob, long the future, took the $6,000 the put
// was counted at, and Alice, her put worth $900, was left $5,100 below zero,
// a loss for the insurance fund once the smile came back.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { daysFromCivil, expiryMsOfDay, MS_PER_DAY } from '../../src/exchange/instruments/index.ts';
import { equityQuote } from '../../src/exchange/margin.ts';
import { unsureQuote } from '../../src/exchange/liquidation.ts';
import { sizeIn } from '../../src/exchange/position.ts';
import type { ExchangeEvent } from '../../src/exchange/results.ts';
import type { Action } from '../../src/exchange/tx/types.ts';
import { Harness, USDC, dailyListingGenesis, key, limit, replacer } from './helpers.ts';
import type { Key } from './helpers.ts';

const MINUTE_MS = 60_000;
const START_MS = daysFromCivil(2026, 3, 2) * MS_PER_DAY;
const EXPIRY_MS = expiryMsOfDay(daysFromCivil(2026, 3, 2));
const FUTURE = 'BTC-2MAR26';
const PUT = 'BTC-2MAR26-52000-P';
const FLAT = { a: 228_000_000_000_000n, b: 0n, rho: 0n, m: 0n, sigma: 100_000_000_000_000_000n };
const alice = key('kept-mark-alice');
const bob = key('kept-mark-bob');

function accepted(h: Harness, from: Key, action: Action): void {
  const r = h.one(from, action).actions[0]!;
  assert.ok(r.ok, JSON.stringify(r, replacer));
}

test("a short future beside a long option at a kept mark is deleveraged at the mark, not at a bankruptcy price that spends the option's unobserved value", () => {
  const h = new Harness(dailyListingGenesis(START_MS));
  h.smiles = [
    { underlying: 'BTC', expiryMs: EXPIRY_MS, svi: FLAT },
    { underlying: 'ETH', expiryMs: EXPIRY_MS, svi: FLAT },
  ];
  h.fund(alice, 20_000n * USDC);
  h.fund(bob, 1_000_000n * USDC);
  h.block([], MINUTE_MS);
  const state = h.ex.state;
  const put = state.marketByName.get(PUT)!;
  const future = state.marketByName.get(FUTURE)!;
  accepted(h, bob, limit(PUT, 'sell', put.markTicks, 30));
  accepted(h, alice, limit(PUT, 'buy', put.markTicks, 30));
  accepted(h, bob, limit(FUTURE, 'buy', future.markTicks, 10_000));
  accepted(h, alice, limit(FUTURE, 'sell', future.markTicks, 10_000));
  const a = h.account(alice)!;
  const b = h.account(bob)!;
  h.smiles = null;
  h.block([], 61_000);
  assert.equal(put.optionMark, null, 'no fresh smile: the put keeps its mark');
  accepted(h, alice, { kind: 'withdraw', amountQuote: 11_472n * USDC, destination: 'a' });
  h.oracle = { ...h.oracle, BTC: 52_500n * USDC };
  let events: ExchangeEvent[] = [];
  for (let i = 0; i < 40 && !events.some((e) => e.type === 'liquidation'); i++) {
    events = h.block([], 30_000).events;
  }
  const markTicks = future.markTicks;
  assert.equal(markTicks * Number(future.params.tickSizeQuote), Number(52_500n * USDC));
  assert.ok(events.some((e) => e.type === 'liquidation' && e.account === a.index));
  // The put, out of the money, is sure to be worth nothing: all of its kept
  // $6,000 is unobserved, and so is all of Alice's equity.
  assert.equal(unsureQuote(state, a, future), 6_000n * USDC);
  const deleveraged = events.flatMap((e) =>
    e.type === 'deleverage' ? [[e.market, e.counterparty, e.priceTicks, e.sizeLots]] : [],
  );
  assert.deepEqual(deleveraged, [[FUTURE, b.index, markTicks, 10_000]], 'at the mark');
  assert.ok(!events.some((e) => e.type === 'insuranceCover'), 'the fund pays nothing for the put');
  // Alice keeps the put and the equity it is counted at; Bob closed at the mark.
  assert.equal(sizeIn(a, future), 0, 'the future closed');
  assert.equal(sizeIn(a, put), 30, 'the put kept');
  assert.equal(sizeIn(b, future), 0, 'Bob closed');
  assert.equal(equityQuote(state, a), 6_000n * USDC);
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});
