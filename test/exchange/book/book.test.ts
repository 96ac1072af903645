import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OrderBook } from '../../../src/exchange/book/book.ts';
import type { PlaceOrder, TakerResult } from '../../../src/exchange/book/types.ts';
import { AssertionError } from '../../../src/lib/assert.ts';

/** A book with a helper that assigns increasing order ids and checks invariants after each call. */
function setup() {
  const book = new OrderBook();
  let nextId = 1;
  const place = (o: Omit<PlaceOrder, 'orderId' | 'timeInForce'> & Partial<PlaceOrder>) => {
    const orderId = o.orderId ?? nextId++;
    const result = { ...book.place({ timeInForce: 'GTC', ...o, orderId }) };
    book.checkInvariants();
    return { orderId, result, fills: book.fills.toArray(), removed: book.removed.toArray() };
  };
  return { book, place };
}

function taker(result: TakerResult) {
  return [result.status, result.reason, result.filledLots, result.restedLots, result.cancelledLots];
}

test('a GTC order rests; a crossing order trades at the resting price in time priority', () => {
  const { book, place } = setup();
  const a = place({ owner: 1, side: 'sell', priceTicks: 101, sizeLots: 5 });
  const b = place({ owner: 2, side: 'sell', priceTicks: 101, sizeLots: 5 });
  const c = place({ owner: 3, side: 'sell', priceTicks: 100, sizeLots: 2 });
  assert.deepEqual(taker(a.result), ['rested', null, 0, 5, 0]);
  assert.equal(book.bestAskTicks(), 100);
  const t = place({ owner: 4, side: 'buy', priceTicks: 105, sizeLots: 9 });
  assert.deepEqual(taker(t.result), ['filled', null, 9, 0, 0]);
  assert.deepEqual(t.fills, [
    { makerOrderId: c.orderId, makerOwner: 3, priceTicks: 100, sizeLots: 2, makerDone: true },
    { makerOrderId: a.orderId, makerOwner: 1, priceTicks: 101, sizeLots: 5, makerDone: true },
    { makerOrderId: b.orderId, makerOwner: 2, priceTicks: 101, sizeLots: 2, makerDone: false },
  ]);
  assert.deepEqual(book.depth('sell', 10), { priceTicks: [101], sizeLots: [3], orderCounts: [1] });
  assert.equal(book.bestBidTicks(), undefined);
});

test('a GTC remainder rests at its limit after sweeping what it reaches', () => {
  const { book, place } = setup();
  place({ owner: 1, side: 'buy', priceTicks: 99, sizeLots: 3 });
  place({ owner: 1, side: 'buy', priceTicks: 98, sizeLots: 3 });
  const t = place({ owner: 2, side: 'sell', priceTicks: 99, sizeLots: 10 });
  assert.deepEqual(taker(t.result), ['rested', null, 3, 7, 0]);
  assert.equal(book.bestAskTicks(), 99);
  assert.equal(book.bestBidTicks(), 98);
  assert.equal(book.ownerRestingLots(2, 'sell'), 7);
  assert.equal(book.ownerRestingLots(1, 'buy'), 3);
});

test('IOC and market orders cancel their remainder; the worst price bounds a market order', () => {
  const { book, place } = setup();
  place({ owner: 1, side: 'sell', priceTicks: 100, sizeLots: 2 });
  place({ owner: 1, side: 'sell', priceTicks: 110, sizeLots: 2 });
  const ioc = place({ owner: 2, side: 'buy', priceTicks: 100, sizeLots: 5, timeInForce: 'IOC' });
  assert.deepEqual(taker(ioc.result), ['cancelled', 'IocRemainder', 2, 0, 3]);
  // A market buy with a worst price of 105 stops before the 110 level.
  const market = place({ owner: 2, side: 'buy', priceTicks: 105, sizeLots: 5, timeInForce: 'IOC' });
  assert.deepEqual(taker(market.result), ['cancelled', 'IocRemainder', 0, 0, 5]);
  assert.equal(book.orderCount, 1);
  assert.equal(book.bestBidTicks(), undefined);
});

test('FOK fills in full or does nothing at all', () => {
  const { book, place } = setup();
  place({ owner: 1, side: 'sell', priceTicks: 100, sizeLots: 2 });
  place({ owner: 1, side: 'sell', priceTicks: 101, sizeLots: 2 });
  const before = book.changes.changeCount;
  const miss = place({ owner: 2, side: 'buy', priceTicks: 101, sizeLots: 5, timeInForce: 'FOK' });
  assert.deepEqual(taker(miss.result), ['cancelled', 'FokUnfillable', 0, 0, 5]);
  assert.deepEqual(miss.fills, []);
  assert.equal(book.changes.changeCount, before, 'an unfillable FOK changes nothing');
  const limited = place({
    owner: 2,
    side: 'buy',
    priceTicks: 100,
    sizeLots: 3,
    timeInForce: 'FOK',
  });
  assert.equal(limited.result.reason, 'FokUnfillable', 'liquidity beyond the limit does not count');
  const hit = place({ owner: 2, side: 'buy', priceTicks: 101, sizeLots: 4, timeInForce: 'FOK' });
  assert.deepEqual(taker(hit.result), ['filled', null, 4, 0, 0]);
  assert.equal(book.orderCount, 0);
});

test('FOK counts only liquidity that self-trade prevention would let trade', () => {
  const { book, place } = setup();
  place({ owner: 1, side: 'sell', priceTicks: 100, sizeLots: 3 });
  place({ owner: 2, side: 'sell', priceTicks: 100, sizeLots: 3 });
  place({ owner: 3, side: 'sell', priceTicks: 101, sizeLots: 3 });
  // cancelResting: owner 1's order is skipped (it would be cancelled), the rest counts.
  const skip = { owner: 1, side: 'buy', priceTicks: 101, timeInForce: 'FOK' } as const;
  assert.equal(place({ ...skip, sizeLots: 7 }).result.reason, 'FokUnfillable');
  assert.equal(book.orderCount, 3, 'nothing was cancelled by the failed FOK');
  // cancelIncoming would stop at owner 1's order, which is first: nothing can fill.
  const stop = { ...skip, stp: 'cancelIncoming' } as const;
  assert.equal(place({ ...stop, sizeLots: 1 }).result.reason, 'FokUnfillable');
  const ok = place({ ...skip, sizeLots: 6 });
  assert.deepEqual(taker(ok.result), ['filled', null, 6, 0, 0]);
  assert.deepEqual(
    ok.removed.map((r) => r.orderId),
    [1],
  );
  assert.equal(book.orderCount, 0);
});

test('post-only rests when it would not trade and is rejected when it would', () => {
  const { book, place } = setup();
  place({ owner: 1, side: 'sell', priceTicks: 100, sizeLots: 2 });
  const maker = place({ owner: 2, side: 'buy', priceTicks: 99, sizeLots: 2, postOnly: true });
  assert.deepEqual(taker(maker.result), ['rested', null, 0, 2, 0]);
  const crossing = place({ owner: 2, side: 'buy', priceTicks: 100, sizeLots: 2, postOnly: true });
  assert.deepEqual(taker(crossing.result), ['rejected', 'PostOnlyWouldTake', 0, 0, 0]);
  // Even against the owner's own order: post-only never reaches self-trade prevention.
  const own = place({ owner: 1, side: 'buy', priceTicks: 100, sizeLots: 2, postOnly: true });
  assert.equal(own.result.reason, 'PostOnlyWouldTake');
  assert.equal(book.orderCount, 2);
});

test('STP cancelResting (the default) cancels the own resting order in full and keeps matching', () => {
  const { book, place } = setup();
  place({ owner: 1, side: 'sell', priceTicks: 100, sizeLots: 4 });
  place({ owner: 2, side: 'sell', priceTicks: 100, sizeLots: 3 });
  const t = place({ owner: 1, side: 'buy', priceTicks: 100, sizeLots: 5 });
  assert.deepEqual(taker(t.result), ['rested', null, 3, 2, 0]);
  assert.deepEqual(t.removed, [
    { orderId: 1, owner: 1, side: 'sell', priceTicks: 100, sizeLots: 4 },
  ]);
  assert.deepEqual(
    t.fills.map((f) => [f.makerOrderId, f.sizeLots]),
    [[2, 3]],
  );
  assert.equal(book.bestBidTicks(), 100);
});

test('STP cancelIncoming cancels the incoming remainder and leaves the resting order', () => {
  const { book, place } = setup();
  place({ owner: 2, side: 'sell', priceTicks: 100, sizeLots: 3 });
  place({ owner: 1, side: 'sell', priceTicks: 100, sizeLots: 4 });
  place({ owner: 2, side: 'sell', priceTicks: 100, sizeLots: 3 });
  const t = place({ owner: 1, side: 'buy', priceTicks: 100, sizeLots: 8, stp: 'cancelIncoming' });
  assert.deepEqual(taker(t.result), ['cancelled', 'SelfTrade', 3, 0, 5]);
  assert.deepEqual(t.removed, []);
  assert.deepEqual(book.depth('sell', 1).sizeLots, [7]);
  assert.equal(book.bestBidTicks(), undefined, 'a GTC order stopped by STP never rests');
});

test('STP cancelBoth cancels the own resting order and the incoming remainder', () => {
  const { book, place } = setup();
  place({ owner: 2, side: 'buy', priceTicks: 100, sizeLots: 1 });
  place({ owner: 1, side: 'buy', priceTicks: 100, sizeLots: 4 });
  place({ owner: 2, side: 'buy', priceTicks: 100, sizeLots: 3 });
  const t = place({ owner: 1, side: 'sell', priceTicks: 90, sizeLots: 8, stp: 'cancelBoth' });
  assert.deepEqual(taker(t.result), ['cancelled', 'SelfTrade', 1, 0, 7]);
  assert.deepEqual(
    t.removed.map((r) => [r.orderId, r.sizeLots]),
    [[2, 4]],
  );
  assert.deepEqual(book.depth('buy', 5), { priceTicks: [100], sizeLots: [3], orderCounts: [1] });
});

test('amend: a smaller size keeps priority; a larger size or a new price loses it', () => {
  const { book, place } = setup();
  place({ owner: 1, side: 'buy', priceTicks: 100, sizeLots: 5 }); // 1
  place({ owner: 2, side: 'buy', priceTicks: 100, sizeLots: 5 }); // 2
  place({ owner: 3, side: 'buy', priceTicks: 100, sizeLots: 5 }); // 3
  assert.deepEqual(taker(book.amend(1, 100, 2)), ['rested', null, 0, 2, 0]);
  assert.deepEqual(
    [...book.ordersOf('buy')].map((o) => o.orderId),
    [1, 2, 3],
  );
  assert.deepEqual(taker(book.amend(2, 100, 6)), ['rested', null, 0, 6, 0]);
  assert.deepEqual(
    [...book.ordersOf('buy')].map((o) => o.orderId),
    [1, 3, 2],
  );
  book.amend(1, 101, 2);
  book.amend(1, 100, 2);
  assert.deepEqual(
    [...book.ordersOf('buy')].map((o) => o.orderId),
    [3, 2, 1],
    'moving away and back puts it last',
  );
  assert.equal(book.ownerRestingLots(2, 'buy'), 6);
  book.checkInvariants();
});

test('amend to a crossing price trades as an incoming order; post-only amends are rejected instead', () => {
  const { book, place } = setup();
  place({ owner: 1, side: 'sell', priceTicks: 102, sizeLots: 2 }); // 1
  place({ owner: 2, side: 'buy', priceTicks: 100, sizeLots: 5 }); // 2
  place({ owner: 2, side: 'buy', priceTicks: 99, sizeLots: 5, postOnly: true }); // 3
  assert.deepEqual(taker(book.amend(3, 102, 5)), ['rejected', 'PostOnlyWouldTake', 0, 0, 0]);
  assert.equal(book.order(3)!.priceTicks, 99);
  const r = taker(book.amend(2, 103, 5));
  assert.deepEqual(r, ['rested', null, 2, 3, 0]);
  assert.deepEqual(
    book.fills.toArray().map((f) => [f.makerOrderId, f.priceTicks, f.sizeLots]),
    [[1, 102, 2]],
  );
  assert.equal(book.order(2)!.priceTicks, 103);
  assert.equal(book.order(2)!.sizeLots, 3);
  assert.deepEqual(taker(book.amend(99, 100, 1)), ['rejected', 'UnknownOrder', 0, 0, 0]);
  book.checkInvariants();
});

test('cancel, cancelAll and per-owner statistics', () => {
  const { book, place } = setup();
  place({ owner: 7, side: 'buy', priceTicks: 100, sizeLots: 1 });
  place({ owner: 7, side: 'sell', priceTicks: 105, sizeLots: 2 });
  place({ owner: 8, side: 'buy', priceTicks: 100, sizeLots: 3 });
  place({ owner: 7, side: 'buy', priceTicks: 98, sizeLots: 4 });
  assert.equal(book.ownerOrderCount(7), 3);
  assert.equal(book.ownerRestingLots(7, 'buy'), 5);
  assert.deepEqual(
    [...book.ownerOrders(7)].map((o) => o.orderId),
    [1, 2, 4],
  );
  assert.equal(book.cancel(1), true);
  assert.deepEqual(book.removed.toArray(), [
    { orderId: 1, owner: 7, side: 'buy', priceTicks: 100, sizeLots: 1 },
  ]);
  assert.equal(book.cancel(1), false, 'a second cancel finds nothing');
  assert.equal(book.removed.length, 0);
  book.checkInvariants();
  assert.equal(book.cancelAll(7, 'buy'), 1);
  assert.deepEqual(
    book.removed.toArray().map((r) => r.orderId),
    [4],
  );
  assert.equal(book.cancelAll(7), 1);
  assert.equal(book.ownerOrderCount(7), 0);
  assert.equal(book.ownerRestingLots(7, 'sell'), 0);
  assert.equal(book.cancelAll(7), 0);
  assert.equal(book.orderCount, 1);
  book.checkInvariants();
});

test('good-til orders expire at their time, in (time, id) order, and not before', () => {
  const { book, place } = setup();
  place({ owner: 1, side: 'buy', priceTicks: 100, sizeLots: 1, goodTilMs: 2000 });
  place({ owner: 1, side: 'buy', priceTicks: 99, sizeLots: 1, goodTilMs: 1000 });
  place({ owner: 2, side: 'sell', priceTicks: 105, sizeLots: 1, goodTilMs: 1000 });
  place({ owner: 2, side: 'sell', priceTicks: 106, sizeLots: 1 });
  assert.equal(book.expire(999), 0);
  assert.equal(book.expire(1000), 2);
  assert.deepEqual(
    book.removed.toArray().map((r) => r.orderId),
    [2, 3],
  );
  book.checkInvariants();
  // A filled or cancelled good-til order leaves the expiry index too.
  place({ owner: 3, side: 'sell', priceTicks: 100, sizeLots: 1 });
  assert.equal(book.expire(1_000_000), 0);
  assert.equal(book.orderCount, 1);
  book.checkInvariants();
});

test('depth, resting volume to a price and level sizes', () => {
  const { book, place } = setup();
  for (const [price, size] of [
    [101, 1],
    [103, 2],
    [102, 3],
    [101, 4],
  ] as const) {
    place({ owner: 1, side: 'sell', priceTicks: price, sizeLots: size });
  }
  place({ owner: 1, side: 'buy', priceTicks: 97, sizeLots: 6 });
  place({ owner: 1, side: 'buy', priceTicks: 99, sizeLots: 7 });
  assert.deepEqual(book.depth('sell', 2), {
    priceTicks: [101, 102],
    sizeLots: [5, 3],
    orderCounts: [2, 1],
  });
  assert.deepEqual(book.depth('buy', 5).priceTicks, [99, 97]);
  assert.equal(book.restingLotsTo('sell', 102), 8);
  assert.equal(book.restingLotsTo('sell', 100), 0);
  assert.equal(book.restingLotsTo('buy', 97), 13);
  assert.equal(book.restingLotsTo('buy', 98), 7);
  assert.equal(book.levelLots('sell', 103), 2);
  assert.equal(book.levelLots('sell', 104), 0);
  assert.equal(book.levelCount('sell'), 3);
});

test('the change set lists the levels and orders an operation touched', () => {
  const { book, place } = setup();
  place({ owner: 1, side: 'sell', priceTicks: 101, sizeLots: 1 });
  place({ owner: 1, side: 'sell', priceTicks: 102, sizeLots: 1 });
  place({ owner: 1, side: 'sell', priceTicks: 103, sizeLots: 1 });
  book.changes.clear();
  place({ owner: 2, side: 'buy', priceTicks: 102, sizeLots: 3 });
  const c = book.changes;
  const levels = c.levelSide.slice(0, c.levelCount).map((s, i) => `${s}@${c.levelPriceTicks[i]}`);
  assert.deepEqual(levels.sort(), ['buy@102', 'sell@101', 'sell@102']);
  assert.deepEqual(c.orderId.slice(0, c.orderCount).sort(), [1, 2, 4]);
});

test('the book refuses what a caller must never pass (assertions, not client errors)', () => {
  const { book, place } = setup();
  place({ owner: 1, side: 'buy', priceTicks: 100, sizeLots: 1, orderId: 10 });
  const bad: Partial<PlaceOrder>[] = [
    { orderId: 10 },
    { orderId: 9 },
    { sizeLots: 0 },
    { sizeLots: 1.5 },
    { priceTicks: 0 },
    { priceTicks: -3 },
    { postOnly: true, timeInForce: 'IOC' },
  ];
  for (const b of bad) {
    const order: PlaceOrder = {
      orderId: 11,
      owner: 1,
      side: 'sell',
      priceTicks: 101,
      sizeLots: 1,
      timeInForce: 'GTC',
      ...b,
    };
    assert.throws(() => book.place(order), AssertionError, JSON.stringify(b));
  }
  assert.throws(() => book.amend(10, 100, 0), AssertionError);
  book.checkInvariants();
});
