// Amend rules a trader relies on (docs/exchange.md, "Orders" and "Margin"):
// an amend is margined as a placement of the amended order would be.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, USDC, genesis, key, limit, replacer } from './helpers.ts';
import type { Key } from './helpers.ts';
import type { Action } from '../../src/exchange/tx/types.ts';
import type { ActionResult } from '../../src/exchange/index.ts';

const BTC = 'BTC-PERPETUAL';
const PRICE = 500_000;

function act(h: Harness, k: Key, action: Action): ActionResult {
  const r = h.one(k, action);
  assert.ok(r.ok, JSON.stringify(r, replacer));
  return r.actions[0]!;
}

function accepted(h: Harness, k: Key, action: Action): ActionResult {
  const a = act(h, k, action);
  assert.ok(a.ok, JSON.stringify(a, replacer));
  return a;
}

function orderIdOf(a: ActionResult): number {
  assert.ok(a.ok && a.order !== undefined, 'an order result');
  return a.order.orderId;
}

test('an amend that raises no initial margin is accepted whatever its price, as a placement is', () => {
  const h = new Harness();
  const a = key('thin');
  const b = key('deep');
  h.fund(a, 300n * USDC);
  h.fund(b, 100_000n * USDC);
  // a goes long 1,000 lots ($5,000) on $300: initial margin $250.
  accepted(h, b, limit(BTC, 'sell', PRICE, 1_000));
  accepted(h, a, limit(BTC, 'buy', PRICE, 1_000, { timeInForce: 'IOC' }));
  // A take-profit above the mark: it only closes, so it raises no margin.
  const id = orderIdOf(accepted(h, a, limit(BTC, 'sell', PRICE + 500, 1_000)));
  // 1% under the mark it would lose $50 against it, more than a's equity above
  // initial margin; still it only closes, and a new order there is accepted.
  const placed = act(h, a, limit(BTC, 'sell', PRICE - 5_000, 1_000, { timeInForce: 'IOC' }));
  assert.ok(placed.ok, JSON.stringify(placed, replacer));
  const amended = act(h, a, {
    kind: 'amend',
    instrument: BTC,
    orderId: id,
    priceTicks: PRICE - 5_000,
  });
  assert.ok(
    amended.ok,
    `the amend is margined as the placement: ${JSON.stringify(amended, replacer)}`,
  );
  assert.equal(
    h.ex.state.markets[0]!.book.order(id)?.priceTicks,
    PRICE - 5_000,
    'it rests at its new price',
  );
});

/** The bids of BTC in priority order: [order id, open lots]. */
function bids(h: Harness): [number, number][] {
  return [...h.ex.state.markets[0]!.book.ordersOf('buy')].map((o) => [o.orderId, o.sizeLots]);
}

test("an amend's size is the order's whole size, what it filled included, so an amend racing a fill never grows the order", () => {
  const h = new Harness();
  const [a, b, c] = [key('amend-size-a'), key('amend-size-b'), key('amend-size-c')];
  for (const k of [a, b, c]) h.fund(k, 100_000n * USDC);
  const x = orderIdOf(accepted(h, a, limit(BTC, 'buy', PRICE - 100, 10)));
  const y = orderIdOf(accepted(h, c, limit(BTC, 'buy', PRICE - 100, 5)));
  accepted(h, b, limit(BTC, 'sell', PRICE - 100, 7, { timeInForce: 'IOC' }));
  assert.deepEqual(
    bids(h),
    [
      [x, 3],
      [y, 5],
    ],
    '7 of 10 filled',
  );
  // Down to 9 of which 7 filled: 2 open, in its place.
  const down = accepted(h, a, { kind: 'amend', instrument: BTC, orderId: x, sizeLots: 9 });
  assert.ok(down.ok && down.order?.status === 'rested' && down.order.restedLots === 2, 'rests 2');
  assert.deepEqual(
    bids(h),
    [
      [x, 2],
      [y, 5],
    ],
    'smaller keeps its place',
  );
  assert.equal(h.ex.state.orders.get(x)!.placedLots, 9, 'its size is 9');
  // Up to 12: 5 open, behind y.
  accepted(h, a, { kind: 'amend', instrument: BTC, orderId: x, sizeLots: 12 });
  assert.deepEqual(
    bids(h),
    [
      [y, 5],
      [x, 5],
    ],
    'larger goes to the back',
  );
  // Down to 6 with 7 filled: nothing more may fill, the rest is cancelled.
  const done = accepted(h, a, { kind: 'amend', instrument: BTC, orderId: x, sizeLots: 6 });
  assert.ok(done.ok && done.order !== undefined, 'an order result');
  assert.deepEqual(
    [done.order.status, done.order.filledLots, done.order.restedLots, done.order.cancelledLots],
    ['cancelled', 0, 0, 5],
  );
  assert.deepEqual(bids(h), [[y, 5]], 'x left the book');
  assert.equal(h.ex.state.orders.has(x), false, 'and the state');
  assert.equal(h.account(a)!.positions[0]!.sizeLots, 7, 'a bought 7, never more');
});

test('a part-filled order whose open rest is under the minimum size can still be repriced', () => {
  const markets = genesis().markets.map((m, i) => (i === 0 ? { ...m, minSizeLots: 5 } : m));
  const h = new Harness(genesis({ markets }));
  const [a, b] = [key('amend-min-a'), key('amend-min-b')];
  for (const k of [a, b]) h.fund(k, 100_000n * USDC);
  const x = orderIdOf(accepted(h, a, limit(BTC, 'buy', PRICE - 100, 10)));
  accepted(h, b, limit(BTC, 'sell', PRICE - 100, 7, { timeInForce: 'IOC' }));
  const moved = act(h, a, { kind: 'amend', instrument: BTC, orderId: x, priceTicks: PRICE - 200 });
  assert.ok(moved.ok, JSON.stringify(moved, replacer));
  assert.deepEqual(bids(h), [[x, 3]], 'its 3 open lots rest at the new price');
  assert.equal(h.ex.state.markets[0]!.book.order(x)!.priceTicks, PRICE - 200, 'repriced');
  // A size is still held to the minimum, as a placement's.
  const small = act(h, a, { kind: 'amend', instrument: BTC, orderId: x, sizeLots: 4 });
  assert.ok(!small.ok && small.code === 'BelowMinSize', JSON.stringify(small, replacer));
});

test('an amend that moves an opening order through the mark is margined with its adverse loss, as its placement is', () => {
  const h = new Harness();
  const [a, twin] = [key('amend-open-a'), key('amend-open-twin')];
  for (const k of [a, twin]) h.fund(k, 300n * USDC);
  // 1,000 lots ($5,000) on $300: initial margin $250, so $50 to spare.
  const id = orderIdOf(accepted(h, a, limit(BTC, 'buy', PRICE - 100, 1_000)));
  // 2% over the mark it would lose $100 against it: refused as a placement.
  const placed = act(h, twin, limit(BTC, 'buy', PRICE + 10_000, 1_000));
  assert.ok(
    !placed.ok && placed.code === 'InsufficientMargin',
    `the placement is refused: ${JSON.stringify(placed, replacer)}`,
  );
  // The same order reached by an amend is no different.
  const amended = act(h, a, {
    kind: 'amend',
    instrument: BTC,
    orderId: id,
    priceTicks: PRICE + 10_000,
  });
  assert.ok(
    !amended.ok && amended.code === 'InsufficientMargin',
    `the amend is refused as the placement: ${JSON.stringify(amended, replacer)}`,
  );
  assert.equal(
    h.ex.state.markets[0]!.book.order(id)?.priceTicks,
    PRICE - 100,
    'it rests where it was',
  );
  // A passive move raises nothing and passes, as it always did.
  const passive = act(h, a, {
    kind: 'amend',
    instrument: BTC,
    orderId: id,
    priceTicks: PRICE - 200,
  });
  assert.ok(passive.ok, `a passive move passes: ${JSON.stringify(passive, replacer)}`);
});

test('a post-only order amended to where it would take is refused PostOnlyWouldTake before its margin is weighed, as its placement is', () => {
  const h = new Harness();
  const a = key('post-thin');
  const b = key('post-deep');
  h.fund(a, 100n * USDC);
  h.fund(b, 100_000n * USDC);
  accepted(h, b, limit(BTC, 'sell', PRICE + 1_000, 10));
  const bid = orderIdOf(
    accepted(h, a, limit(BTC, 'buy', PRICE - 1_000, 10, { timeInForce: 'postOnly' })),
  );
  // Through the ask, and far more than $100 can margin: a placement says PostOnlyWouldTake.
  const placed = act(h, a, limit(BTC, 'buy', PRICE + 1_000, 10_000, { timeInForce: 'postOnly' }));
  assert.ok(!placed.ok && placed.code === 'PostOnlyWouldTake', JSON.stringify(placed, replacer));
  const amended = act(h, a, {
    kind: 'amend',
    instrument: BTC,
    orderId: bid,
    priceTicks: PRICE + 1_000,
    sizeLots: 10_000,
  });
  assert.ok(!amended.ok && amended.code === 'PostOnlyWouldTake', JSON.stringify(amended, replacer));
  // Below the ask it is margined as before.
  const short = act(h, a, {
    kind: 'amend',
    instrument: BTC,
    orderId: bid,
    priceTicks: PRICE,
    sizeLots: 10_000,
  });
  assert.ok(!short.ok && short.code === 'InsufficientMargin', JSON.stringify(short, replacer));
});
