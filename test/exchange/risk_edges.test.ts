// Edge cases of the risk engine found in review: each test failed before its fix.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, USDC, genesis, key, limit } from './helpers.ts';

const BTC = 'BTC-PERPETUAL';
const ONE_BTC = 10_000;

test('a long in a market with 100% maintenance has unbounded slack (no division by zero in the scan)', () => {
  const g = genesis();
  const markets = g.markets.map((m) => ({
    ...m,
    initialMarginPpm: 1_000_000,
    maintenanceMarginPpm: 1_000_000,
  }));
  const h = new Harness(genesis({ markets }));
  const a = key('a');
  const b = key('b');
  h.fund(a, 60_000n * USDC);
  h.fund(b, 200_000n * USDC);
  assert.equal(h.one(b, limit(BTC, 'sell', 500_000, ONE_BTC)).actions[0]!.ok, true);
  assert.equal(h.one(a, limit(BTC, 'buy', 500_000, ONE_BTC)).actions[0]!.ok, true);
  h.oracle = { ...h.oracle, BTC: 49_000n * USDC };
  const r = h.block([]);
  assert.equal(r.events.filter((e) => e.type === 'liquidation').length, 0);
  assert.equal(h.account(a)!.positions[0]!.sizeLots, ONE_BTC);
});
