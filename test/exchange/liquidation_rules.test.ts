// Liquidation rules of docs/exchange.md ("Liquidation and deleveraging")
// where the exchange once did otherwise: each case is the smallest flow that
// showed it (liquidation_rules_property.test.ts found them).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, USDC, key, limit, replacer, unmonitoredGenesis } from './helpers.ts';
import type { Key } from './helpers.ts';
import type { Action } from '../../src/exchange/tx/types.ts';

const BTC = 'BTC-PERPETUAL';

function placed(h: Harness, k: Key, action: Action): void {
  const r = h.one(k, action);
  assert.ok(r.ok && r.actions[0]!.ok, JSON.stringify(r, replacer));
}

test('deleveraging ranks by the exact score: of two counterparties with little leverage, the one with more profit goes first', () => {
  const h = new Harness(unmonitoredGenesis({ faucetQuoteMax: 100_000_000n * USDC }));
  const [a, b, c, o] = [key('rank-a'), key('rank-b'), key('rank-c'), key('rank-o')];
  // a before b: a has the lower account index.
  h.fund(a, 10_000_000n * USDC);
  h.fund(b, 10_000_000n * USDC);
  h.fund(c, 10_000n * USDC);
  h.fund(o, 300_000n);
  // b sells one lot to c at $50,100, a one lot to o at $50,000.
  placed(h, c, limit(BTC, 'buy', 501_000, 1));
  placed(h, b, limit(BTC, 'sell', 501_000, 1, { timeInForce: 'IOC' }));
  placed(h, a, limit(BTC, 'sell', 500_000, 1));
  placed(h, o, limit(BTC, 'buy', 500_000, 1, { timeInForce: 'IOC' }));
  // At $47,500 o's equity ($0.30 less the $0.0025 taker fee and the $0.25
  // loss) is under its maintenance; no bid: its lot is deleveraged. Both
  // shorts gain, b a little more ($0.26 against $0.25): with $10M of equity
  // each, their scores (PnL × notional / equity) are a tenth of a quote
  // unit, and b's is the larger.
  h.oracle = { ...h.oracle, BTC: 47_500n * USDC };
  const r = h.block([]);
  const deleverages = r.events.filter((e) => e.type === 'deleverage');
  assert.equal(deleverages.length, 1, JSON.stringify(r.events, replacer));
  assert.equal(deleverages[0]!.counterparty, h.account(b)!.index, 'the higher score goes first');
});
