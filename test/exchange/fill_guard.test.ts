// Fills and equity (docs/exchange.md, "Fills and equity"): no fill may take an
// account's equity below zero, so two accounts of one owner cannot move money
// from the insurance fund to one of them by trading far from the mark.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, USDC, genesis, key, limit } from './helpers.ts';
import { equityQuote } from '../../src/exchange/margin.ts';

const BTC = 'BTC-PERPETUAL';
const ONE_BTC = 10_000;

/**
 * o/0 long 1 BTC at $50,000 with $2,600 of collateral (equity $2,575 after
 * its taker fee), bought from c; o/1 holds $500,000. No price monitoring:
 * nothing bounds a trade's price but the traders' limits.
 */
function longAccount(insuranceFundQuote = 1_000n * USDC) {
  const markets = genesis().markets.map((m) => ({ ...m, triggers: [] }));
  const h = new Harness(genesis({ markets, insuranceFundQuote }));
  const o = key('owner');
  const c = key('c');
  h.fund(o, 2_600n * USDC, 0);
  h.fund(o, 500_000n * USDC, 1);
  h.fund(c, 500_000n * USDC);
  assert.equal(h.one(c, limit(BTC, 'sell', 500_000, ONE_BTC)).actions[0]!.ok, true);
  assert.equal(h.one(o, limit(BTC, 'buy', 500_000, ONE_BTC)).actions[0]!.ok, true);
  return { h, o, c, a: h.account(o, 0)!, b: h.account(o, 1)! };
}

function order(r: ReturnType<Harness['one']>) {
  const action = r.actions[0]!;
  assert.ok(action.ok, JSON.stringify(action));
  return action.order!;
}

test('a closing taker order far below the mark stops where its equity would fall below zero', () => {
  const { h, o, a } = longAccount();
  assert.equal(
    order(h.one(o, limit(BTC, 'buy', 460_000, ONE_BTC), { subaccount: 1 })).status,
    'rested',
  );
  const insurance = h.ex.state.insuranceQuote;
  const r = h.block([h.tx(o, limit(BTC, 'sell', 460_000, ONE_BTC, { timeInForce: 'IOC' }))]);
  assert.equal(h.ex.state.markets[0]!.markTicks, 500_000);
  const sold = r.results[0]!.actions[0]!;
  assert.ok(sold.ok);
  // $4,000 below the mark plus 5 bp of $46,000 a BTC: $0.4023 a lot; $2,575 covers 6,400 lots.
  assert.equal(sold.order!.status, 'cancelled');
  assert.equal(sold.order!.reason, 'InsufficientEquity');
  assert.equal(sold.order!.filledLots, 6_400);
  assert.equal(sold.order!.cancelledLots, 3_600);
  // What is left of the position is liquidated; the insurance fund paid nothing.
  assert.ok(h.ex.state.insuranceQuote >= insurance);
  assert.equal(h.ex.state.deficits.size, 0);
  assert.ok(equityQuote(h.ex.state, a) >= 0n);
});

test('a resting order whose fill would bankrupt its maker is cancelled; the taker trades with the next', () => {
  const { h, o, c, a, b } = longAccount();
  const ask = order(h.one(o, limit(BTC, 'sell', 460_000, ONE_BTC)));
  assert.equal(ask.status, 'rested');
  assert.equal(order(h.one(c, limit(BTC, 'sell', 465_000, ONE_BTC))).status, 'rested');
  // A FOK that could fill only through the cancelled maker does not fill, and cancels nothing.
  const fok = h.one(o, limit(BTC, 'buy', 460_000, ONE_BTC, { timeInForce: 'FOK' }), {
    subaccount: 1,
  });
  assert.equal(order(fok).reason, 'FokUnfillable');
  assert.equal(h.ex.state.orders.has(ask.orderId), true);
  const insurance = h.ex.state.insuranceQuote;
  const r = h.block([
    h.tx(o, limit(BTC, 'buy', 470_000, ONE_BTC, { timeInForce: 'IOC' }), { subaccount: 1 }),
  ]);
  const bought = r.results[0]!.actions[0]!;
  assert.ok(bought.ok);
  assert.equal(bought.order!.status, 'filled');
  assert.deepEqual(
    bought.order!.fills.map((f) => [f.makerAccount, f.priceTicks, f.sizeLots]),
    [[h.account(c)!.index, 465_000, ONE_BTC]],
  );
  assert.deepEqual(
    r.events.filter((e) => e.type === 'makerCancelled'),
    [{ type: 'makerCancelled', market: BTC, orderId: ask.orderId, account: a.index }],
  );
  assert.equal(h.ex.state.orders.has(ask.orderId), false);
  assert.equal(a.positions[0]!.sizeLots, ONE_BTC);
  assert.equal(b.positions[0]!.sizeLots, ONE_BTC);
  assert.equal(h.ex.state.insuranceQuote, insurance);
  assert.equal(h.ex.state.deficits.size, 0);
});

test('a liquidation still closes through the book; a maker its fill would bankrupt is passed over', () => {
  const { h, o, c, a } = longAccount(10_000n * USDC);
  const d = key('d');
  h.fund(d, 2_600n * USDC);
  // $2,500 of initial margin at $50,000: d may bid; at $46,000 its fill would cost it $3,910.
  const bid = order(h.one(d, limit(BTC, 'buy', 499_000, ONE_BTC)));
  assert.equal(bid.status, 'rested');
  assert.equal(order(h.one(c, limit(BTC, 'buy', 460_000, ONE_BTC))).status, 'rested');
  h.oracle = { ...h.oracle, BTC: 46_000n * USDC };
  const r = h.block([]);
  assert.equal(h.ex.state.markets[0]!.markTicks, 460_000);
  const liquidation = r.events.find((e) => e.type === 'liquidation');
  assert.ok(liquidation !== undefined && liquidation.type === 'liquidation');
  assert.equal(liquidation.closedLots, ONE_BTC);
  const fills = r.events.filter((e) => e.type === 'liquidationFill');
  assert.deepEqual(
    fills.map((f) => f.type === 'liquidationFill' && [f.makerAccount, f.priceTicks]),
    [[h.account(c)!.index, 460_000]],
  );
  assert.deepEqual(
    r.events
      .filter((e) => e.type === 'makerCancelled')
      .map((e) => e.type === 'makerCancelled' && e.account),
    [h.account(d)!.index],
  );
  assert.equal(a.positions[0]!.sizeLots, 0);
  assert.equal(h.account(d)!.positions[0]!.sizeLots, 0);
  assert.equal(h.account(d)!.cashQuote, 2_600n * USDC);
  void o;
});

test('an account below zero equity may trade only at prices that do not lower it', () => {
  const { h, o, c, a } = longAccount(100n * USDC);
  assert.equal(order(h.one(c, limit(BTC, 'buy', 469_000, ONE_BTC))).status, 'rested');
  // At $47,000 o/0's equity is 2,575 − 3,000 = −$425.
  h.oracle = { ...h.oracle, BTC: 47_000n * USDC };
  const r = h.block([
    h.tx(o, limit(BTC, 'sell', 469_000, ONE_BTC, { timeInForce: 'IOC' })),
    h.tx(c, limit(BTC, 'buy', 470_500, ONE_BTC)),
    h.tx(o, limit(BTC, 'sell', 470_000, ONE_BTC, { timeInForce: 'IOC' })),
  ]);
  const loses = r.results[0]!.actions[0]!;
  const gains = r.results[2]!.actions[0]!;
  // $1,000 below the mark: refused whole.
  assert.ok(loses.ok && gains.ok);
  assert.deepEqual(
    [loses.order!.status, loses.order!.reason, loses.order!.filledLots],
    ['cancelled', 'InsufficientEquity', 0],
  );
  // $50 above the mark, less a $23.525 fee: it gains, so it trades.
  assert.equal(gains.order!.filledLots, ONE_BTC);
  assert.equal(a.positionCount, 0);
});
