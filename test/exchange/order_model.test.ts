// Order entry against a reference model (order_model.ts): seeded flows of
// mixed transactions on both perpetuals, where every result code, fill, fee,
// event, resting order (in priority order) and balance must equal the
// model's after every block, the invariants must hold, and a node restored
// from a snapshot before any block must give the same results and appHash.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkRun, newStats } from './order_model.ts';

test('order entry equals the reference model, block by block, restored or not', () => {
  const stats = newStats();
  for (let seed = 1; seed <= 8; seed++) checkRun(seed, 100, stats);
  // The flows must reach what they claim to check.
  const seen = (code: string): boolean =>
    [...stats.rejections.keys(), ...stats.statuses.keys()].some(
      (k) => k === code || k.startsWith(`${code}:`),
    );
  for (const code of [
    'placeOrder:InsufficientMargin',
    'placeOrder:PostOnlyWouldTake',
    'placeOrder:DuplicateClientOrderId',
    'placeOrder:TooManyOpenOrders',
    'placeOrder:BelowMinSize',
    'placeOrder:InvalidSize',
    'placeOrder:InvalidOrder',
    'placeOrder:ReduceOnlyWouldIncrease',
    'amend:PostOnlyWouldTake',
    'cancel:UnknownOrder',
    'withdraw:InsufficientFunds',
    'transfer:InsufficientFunds',
    'placeOrder:filled',
    'placeOrder:rested',
    'placeOrder:cancelled:IocRemainder',
    'placeOrder:cancelled:FokUnfillable',
    'placeOrder:cancelled:SelfTrade',
    'amend:rested',
    'amend:filled',
    // An amend to no more than the order filled: its rest is cancelled.
    'amend:cancelled:',
  ]) {
    assert.ok(seen(code), `no ${code} in the flows`);
  }
  assert.ok(stats.fills > 200, `only ${stats.fills} fills`);
  assert.ok(stats.rebates > 0, 'no maker rebate paid');
  assert.ok(stats.expired > 0, 'no good-til order expired');
  assert.ok(stats.makerCancelled > 0, 'the fill check never refused a maker');
});
