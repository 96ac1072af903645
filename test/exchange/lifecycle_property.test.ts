// The lifecycle driver (lifecycle_driver.ts) on a few seeds: listing to
// settlement with governance halts, agent keys, transfers and withdrawals at
// the free-collateral edge, amends and client order ids, checked after every
// block and against restored nodes. The paths asserted below were exercised,
// so that a change to the driver or the rules cannot leave it checking nothing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from './lifecycle_driver.ts';

test('lifecycle driver: listing to settlement with halts, agents, transfers and amends, restored alike', () => {
  const stats = new Map<string, number>();
  for (const seed of [1, 2, 6]) run(seed, 250, undefined, stats);
  for (const path of [
    'event:marketSettled',
    'event:marketHalted',
    'event:marketResumed',
    'event:orderExpired',
    'event:auctionStarted',
    'placeOrder:ok',
    'placeOrder:DuplicateClientOrderId',
    'placeOrder:MarketHalted',
    'amend:ok',
    'amend:MarketHalted',
    'cancel:ok',
    'withdraw:ok',
    'withdraw:InsufficientFunds',
    'transfer:ok',
    'transfer:ExchangeHalted',
    'registerAgent:ok',
    'revokeAgent:ok',
    'tx:NotPermitted',
  ]) {
    assert.ok((stats.get(path) ?? 0) > 0, `the driver never reached ${path}`);
  }
});

test('lifecycle driver with option marks kept between intervals', () => {
  const stats = new Map<string, number>();
  for (const seed of [11, 12]) run(seed, 200, 1_000, stats);
  assert.ok((stats.get('event:marketSettled') ?? 0) > 0, 'markets settled');
});
