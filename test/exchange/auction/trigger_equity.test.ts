// The trade that would start a volatility auction must be one that could
// happen (docs/exchange.md, "Volatility auctions", Trigger): a GTC order
// whose owner could not take even one lot at the first other account's
// price beyond the bounds without going below zero equity (the fill guard's
// rule) is cancelled as the guard cancels a taker (InsufficientEquity), and
// the market stays in continuous trading.
//
// The situation (devnet triggers: 5% within 5 minutes): a bid of one lot
// rests at 1,000 ticks ($100), far below the bound (475,000 ticks at the
// $50,000 mark). o is long one lot (0.0001 BTC, $5) and sells it, a closing
// order that needs no margin, limited at 1,000 ticks: one lot there loses
// (500,000 − 1,000) × 10 = $4.99 against the mark.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, USDC, key, limit } from '../helpers.ts';
import type { ActionResult } from '../../../src/exchange/results.ts';
import type { BlockResult } from '../../../src/exchange/index.ts';

const BTC = 'BTC-PERPETUAL';

function longOneLot(collateralQuote: bigint) {
  const h = new Harness();
  const [o, c, bidder] = [key('trigger-eq-o'), key('trigger-eq-c'), key('trigger-eq-bidder')];
  h.fund(o, collateralQuote);
  h.fund(c, 10_000n * USDC);
  h.fund(bidder, 10_000n * USDC);
  assert.ok(h.one(bidder, limit(BTC, 'buy', 1_000, 1)).actions[0]!.ok, 'the far bid');
  assert.ok(h.one(c, limit(BTC, 'sell', 500_000, 1)).actions[0]!.ok, 'c sells a lot');
  assert.ok(h.one(o, limit(BTC, 'buy', 500_000, 1)).actions[0]!.ok, 'o buys it');
  assert.equal(h.account(o)!.positions[0]!.sizeLots, 1);
  return { h, o };
}

const order = (r: BlockResult) => {
  assert.ok(r.results[0]!.ok);
  const a = r.results[0]!.actions[0]! as ActionResult;
  assert.ok(a.ok && (a.kind === 'placeOrder' || a.kind === 'amend'), JSON.stringify(a));
  assert.ok(a.order !== undefined);
  return a.order;
};
const started = (r: BlockResult) => r.events.some((e) => e.type === 'auctionStarted');

test('a GTC order whose owner cannot take one lot at the breaching price starts no auction', () => {
  const { h, o } = longOneLot(USDC); // $1 of collateral: less than the $4.99 one lot loses
  const r = h.block([h.tx(o, limit(BTC, 'sell', 1_000, 1))]);
  const placed = order(r);
  assert.equal(placed.status, 'cancelled');
  assert.equal(placed.reason, 'InsufficientEquity');
  assert.equal(placed.cancelledLots, 1);
  assert.ok(!started(r), 'no auction');
  assert.equal(h.ex.state.marketByName.get(BTC)!.auction!.active, false);
  assert.equal(h.account(o)!.positions[0]!.sizeLots, 1, 'o still holds its lot');
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});

test('the same order from an owner that can take the loss starts the auction and waits in it', () => {
  const { h, o } = longOneLot(10n * USDC);
  const r = h.block([h.tx(o, limit(BTC, 'sell', 1_000, 1))]);
  const placed = order(r);
  assert.equal(placed.status, 'rested');
  assert.equal(placed.reason, 'AuctionTriggered');
  assert.ok(started(r), 'the auction starts');
  assert.equal(h.ex.state.marketByName.get(BTC)!.auction!.active, true);
});

test('an amend into the breaching bid by an owner that cannot take one lot there starts no auction', () => {
  const { h, o } = longOneLot(USDC);
  const rested = order(h.block([h.tx(o, limit(BTC, 'sell', 499_000, 1))]));
  assert.equal(rested.status, 'rested', 'the ask rests');
  const r = h.block([
    h.tx(o, {
      kind: 'amend',
      instrument: BTC,
      orderId: rested.orderId,
      priceTicks: 1_000,
      sizeLots: 1,
    }),
  ]);
  const amended = order(r);
  assert.equal(amended.status, 'cancelled');
  assert.equal(amended.reason, 'InsufficientEquity');
  assert.ok(!started(r), 'no auction');
  assert.equal(h.ex.state.marketByName.get(BTC)!.auction!.active, false);
  assert.equal(h.ex.state.orders.has(rested.orderId), false, 'the order is gone');
  assert.equal(h.ex.state.marketByName.get(BTC)!.book.order(rested.orderId), undefined);
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});
