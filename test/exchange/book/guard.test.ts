// The book's fill guard (book/types.ts, FillGuard): the caller's check before each fill.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OrderBook } from '../../../src/exchange/book/book.ts';
import type { FillGuard, PlaceOrder } from '../../../src/exchange/book/types.ts';

/** A guard that refuses the makers in `cancel` and lets the taker take `takerLots` in all. */
function guard(cancel: number[], takerLots: number): FillGuard & { calls: number[][] } {
  let left = takerLots;
  return {
    calls: [],
    begin() {
      left = takerLots;
      this.calls.push([]);
    },
    admit(owner, priceTicks, lots) {
      this.calls.push([owner, priceTicks, lots]);
      if (cancel.includes(owner)) return -1;
      const n = Math.min(left, lots);
      left -= n;
      return n;
    },
  };
}

function setup() {
  const book = new OrderBook();
  let nextId = 1;
  const place = (o: Omit<PlaceOrder, 'orderId'> & Partial<PlaceOrder>) => {
    const orderId = nextId++;
    const result = { ...book.place({ ...o, orderId }) };
    book.checkInvariants();
    return { orderId, result, fills: book.fills.toArray(), removed: book.removed.toArray() };
  };
  for (const [owner, priceTicks] of [
    [1, 100],
    [2, 101],
    [3, 102],
  ] as const) {
    place({ owner, side: 'sell', priceTicks, sizeLots: 5, timeInForce: 'GTC' });
  }
  return { book, place };
}

test('a maker the guard refuses is cancelled and listed in removed; the taker goes on', () => {
  const { book, place } = setup();
  const g = guard([1], 100);
  const t = place({
    owner: 9,
    side: 'buy',
    priceTicks: 105,
    sizeLots: 7,
    timeInForce: 'GTC',
    guard: g,
  });
  assert.equal(t.result.status, 'filled');
  assert.deepEqual(
    t.fills.map((f) => [f.makerOwner, f.priceTicks, f.sizeLots]),
    [
      [2, 101, 5],
      [3, 102, 2],
    ],
  );
  assert.deepEqual(
    t.removed.map((r) => r.owner),
    [1],
  );
  assert.equal(book.bestAskTicks(), 102);
});

test('a taker the guard stops trades what it admitted and cancels the rest, even a GTC', () => {
  const { book, place } = setup();
  const t = place({
    owner: 9,
    side: 'buy',
    priceTicks: 105,
    sizeLots: 12,
    timeInForce: 'GTC',
    guard: guard([], 7),
  });
  assert.deepEqual(
    [
      t.result.status,
      t.result.reason,
      t.result.filledLots,
      t.result.restedLots,
      t.result.cancelledLots,
    ],
    ['cancelled', 'InsufficientEquity', 7, 0, 5],
  );
  assert.deepEqual(
    t.fills.map((f) => [f.makerOwner, f.sizeLots, f.makerDone]),
    [
      [1, 5, true],
      [2, 2, false],
    ],
  );
  assert.equal(book.bestBidTicks(), undefined);
  assert.equal(book.levelLots('sell', 101), 3);
});

test('a FOK counts what the guard would admit, and cancels no maker when it cannot fill', () => {
  const { book, place } = setup();
  const no = place({
    owner: 9,
    side: 'buy',
    priceTicks: 101,
    sizeLots: 6,
    timeInForce: 'FOK',
    guard: guard([1], 100),
  });
  assert.equal(no.result.reason, 'FokUnfillable');
  assert.equal(no.removed.length, 0);
  assert.equal(book.levelLots('sell', 100), 5);
  const short = place({
    owner: 9,
    side: 'buy',
    priceTicks: 102,
    sizeLots: 6,
    timeInForce: 'FOK',
    guard: guard([], 5),
  });
  assert.equal(short.result.reason, 'FokUnfillable');
  const yes = place({
    owner: 9,
    side: 'buy',
    priceTicks: 102,
    sizeLots: 6,
    timeInForce: 'FOK',
    guard: guard([1], 100),
  });
  assert.equal(yes.result.status, 'filled');
  assert.deepEqual(
    yes.removed.map((r) => r.owner),
    [1],
  );
  assert.deepEqual(
    yes.fills.map((f) => [f.makerOwner, f.sizeLots]),
    [
      [2, 5],
      [3, 1],
    ],
  );
});

test('an amend that re-enters is guarded as a placement', () => {
  const { book, place } = setup();
  const bid = place({ owner: 9, side: 'buy', priceTicks: 90, sizeLots: 8, timeInForce: 'GTC' });
  const r = book.amend(bid.orderId, 105, 8, 0, guard([2], 6));
  book.checkInvariants();
  assert.deepEqual(
    [r.status, r.reason, r.filledLots, r.cancelledLots],
    ['cancelled', 'InsufficientEquity', 6, 2],
  );
  assert.deepEqual(
    book.removed.toArray().map((x) => x.owner),
    [2],
  );
  assert.equal(book.order(bid.orderId), undefined);
});
