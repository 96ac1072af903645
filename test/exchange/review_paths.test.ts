// Review of the exchange's non-risk paths: each test here failed before the
// fix named in its title.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, USDC, genesis, key, limit } from './helpers.ts';

const BTC = 'BTC-PERPETUAL';

function code(r: ReturnType<Harness['one']>): string | undefined {
  if (!r.ok) return r.code;
  const a = r.actions[0]!;
  return a.ok ? undefined : a.code;
}

function orderIdOf(r: ReturnType<Harness['one']>): number {
  assert.ok(r.ok);
  const a = r.actions[0]!;
  assert.ok(a.ok && 'order' in a && a.order !== undefined);
  return a.order.orderId;
}

test('open-interest cap: an amend that cannot take (a smaller size at the same price, or a post-only order) is not bounded by it', () => {
  const g = genesis();
  g.markets = g.markets.map((m, i) => (i === 0 ? { ...m, openInterestCapLots: 50 } : m));
  const h = new Harness(g);
  const maker = key('maker');
  const taker = key('taker');
  const quoter = key('quoter');
  for (const k of [maker, taker, quoter]) h.fund(k, 1_000_000n * USDC);
  // Placed below the cap: a GTC bid and a post-only bid, resting below the market.
  const gtc = orderIdOf(h.one(quoter, limit(BTC, 'buy', 490_000, 10)));
  const post = orderIdOf(
    h.one(quoter, limit(BTC, 'buy', 489_000, 10, { timeInForce: 'postOnly' })),
  );
  assert.equal(
    code(h.one(maker, limit(BTC, 'sell', 500_000, 50, { timeInForce: 'postOnly' }))),
    undefined,
  );
  assert.equal(code(h.one(taker, limit(BTC, 'buy', 500_000, 50))), undefined);
  assert.equal(h.ex.state.marketByName.get(BTC)!.longLots, 50);
  const amend = (orderId: number, change: { priceTicks?: number; sizeLots?: number }) =>
    code(h.one(quoter, { kind: 'amend', instrument: BTC, orderId, ...change }));
  // At the cap, a resting order can still be made smaller in place (it does not take)...
  assert.equal(amend(gtc, { sizeLots: 5 }), undefined);
  // ...and a post-only one moved or grown (it never takes).
  assert.equal(amend(post, { priceTicks: 488_000 }), undefined);
  assert.equal(amend(post, { sizeLots: 20 }), undefined);
  // A GTC order that re-enters may take: still bounded.
  assert.equal(amend(gtc, { sizeLots: 20 }), 'OpenInterestCapExceeded');
  assert.equal(amend(gtc, { priceTicks: 491_000 }), 'OpenInterestCapExceeded');
});
