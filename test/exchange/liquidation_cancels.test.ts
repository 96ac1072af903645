// A liquidation cancels the account's resting orders before it closes
// anything, and reports it (liquidationCancels) even when nothing of it can
// close in the block (here: its market halted).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLiquidatable } from '../../src/exchange/liquidation.ts';
import { Harness, USDC, VALIDATORS, genesis, key, limit, replacer } from './helpers.ts';
import type { Key } from './helpers.ts';
import type { BlockResult, TxResult } from '../../src/exchange/index.ts';

const BTC = 'BTC-PERPETUAL';
const ETH = 'ETH-PERPETUAL';
const ONE_BTC = 10_000;

function accepted(r: TxResult): void {
  assert.ok(r.ok && r.actions[0]!.ok, JSON.stringify(r, replacer));
}

/**
 * o long 1 BTC at $50,000 on $2,600, resting a BTC bid, a BTC ask and an ETH
 * bid; c rich. No price monitoring.
 */
function ready(prefix: string): { h: Harness; o: Key; orders: number[] } {
  const markets = genesis().markets.map((m) => ({ ...m, triggers: [] }));
  const h = new Harness(genesis({ markets }));
  const [o, c] = [key(`${prefix}-owner`), key(`${prefix}-c`)];
  h.fund(o, 2_600n * USDC);
  h.fund(c, 500_000n * USDC);
  accepted(h.one(c, limit(BTC, 'sell', 500_000, ONE_BTC)));
  accepted(h.one(o, limit(BTC, 'buy', 500_000, ONE_BTC)));
  const r = h.block([
    h.tx(o, limit(BTC, 'buy', 400_000, 1)),
    h.tx(o, limit(BTC, 'sell', 600_000, 1)),
    h.tx(o, limit(ETH, 'buy', 20_000, 1)),
  ]);
  const orders = r.results.map((t) => {
    const a = t.actions[0]!;
    assert.ok(a.ok && a.order !== undefined, JSON.stringify(t, replacer));
    return a.order.orderId;
  });
  return { h, o, orders };
}

function haltBtc(h: Harness): void {
  accepted(
    h.one(VALIDATORS[0]!, {
      kind: 'govPropose',
      proposalId: 1,
      proposal: { kind: 'haltMarket', instrument: BTC },
    }),
  );
  for (const v of [1, 2]) {
    accepted(h.one(VALIDATORS[v]!, { kind: 'govVote', proposalId: 1, approve: true }));
  }
  assert.equal(h.ex.state.marketByName.get(BTC)!.halted, true);
}

/** The block in which the BTC index falls to $47,700: o goes below maintenance. */
function drop(h: Harness): BlockResult {
  h.oracle = { ...h.oracle, BTC: 47_700n * USDC };
  return h.block([]);
}

function check(h: Harness, o: Key, orders: number[], r: BlockResult): void {
  const account = h.account(o)!;
  assert.ok(isLiquidatable(h.ex.state, account), 'below maintenance after the block');
  assert.equal(account.positions[0]!.sizeLots, ONE_BTC, 'nothing closed');
  assert.deepEqual(
    r.events.filter((e) => e.type.startsWith('liquidation')),
    [{ type: 'liquidationCancels', account: account.index, orders: orders.length }],
  );
  for (const id of orders) assert.equal(h.ex.state.orders.has(id), false);
}

test('a liquidation in a halted market cancels the orders, closes nothing and reports the cancels', () => {
  const { h, o, orders } = ready('liq-cancels-halted');
  haltBtc(h);
  check(h, o, orders, drop(h));
  // The next block looks at it again and finds no order left: no second report.
  const next = h.block([]);
  assert.equal(next.events.filter((e) => e.type === 'liquidationCancels').length, 0);
});

test('a liquidation that closes reports its cancels before its fills', () => {
  const { h, o, orders } = ready('liq-cancels-closes');
  const c = key('liq-cancels-closes-bid');
  h.fund(c, 500_000n * USDC);
  accepted(h.one(c, limit(BTC, 'buy', 476_000, ONE_BTC)));
  const r = drop(h);
  const types = r.events.map((e) => e.type).filter((t) => t.startsWith('liquidation'));
  assert.equal(types[0], 'liquidationCancels');
  assert.ok(types.includes('liquidation'), JSON.stringify(types));
  const account = h.account(o)!;
  const cancels = r.events.find((e) => e.type === 'liquidationCancels');
  assert.deepEqual(cancels, {
    type: 'liquidationCancels',
    account: account.index,
    orders: orders.length,
  });
});
