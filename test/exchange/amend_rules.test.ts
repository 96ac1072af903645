// Amend rules a trader relies on (docs/exchange.md, "Orders" and "Margin"):
// an amend is margined as a placement of the amended order would be.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, USDC, key, limit, replacer } from './helpers.ts';
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
