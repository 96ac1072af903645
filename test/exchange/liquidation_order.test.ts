// Accounts whose positions cannot close in this block (a halted market) are
// liquidated after those that can: with the largest shortfall first alone,
// more than LIQUIDATIONS_PER_BLOCK_MAX of them would take every place, block
// after block, ahead of an account that could close. And the places count
// the liquidations that happen: an account due at the scan that an earlier
// liquidation of the block took back above maintenance takes none.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Harness,
  USDC,
  genesis,
  haltByVote,
  key,
  limit,
  replacer,
  unmonitoredGenesis,
} from './helpers.ts';
import type { Key } from './helpers.ts';
import type { Action, SignedTx } from '../../src/exchange/tx/types.ts';
import { LIQUIDATIONS_PER_BLOCK_MAX } from '../../src/lib/limits.ts';
import { isLiquidatable } from '../../src/exchange/liquidation.ts';
import { sizeIn } from '../../src/exchange/position.ts';
import type { ExchangeState } from '../../src/exchange/state.ts';

const BTC = 'BTC-PERPETUAL';
const ETH = 'ETH-PERPETUAL';

test('an account due in a market that can close is liquidated although more than LIQUIDATIONS_PER_BLOCK_MAX accounts of a halted market are due with larger shortfalls', () => {
  const h = new Harness(genesis(), { checkInvariants: false });
  const early = key('order-early');
  const b = key('order-b');
  const maker = key('order-maker');
  // Funded first: the lowest index of the traders.
  h.fund(early, 260n * USDC);
  h.fund(b, 500_000n * USDC);
  h.fund(maker, 900_000n * USDC);
  const many = Array.from({ length: LIQUIDATIONS_PER_BLOCK_MAX + 1 }, (_, i) =>
    key(`order-eth-${i}`),
  );
  h.block(many.map((k) => h.tx(k, { kind: 'faucet', amountQuote: 160n * USDC })));
  assert.ok(h.one(b, limit(BTC, 'sell', 500_000, 1_000)).actions[0]!.ok, 'b sells');
  assert.ok(h.one(early, limit(BTC, 'buy', 500_000, 1_000)).actions[0]!.ok, 'early buys 0.1 BTC');
  assert.ok(h.one(maker, limit(ETH, 'sell', 300_000, 1_000 * many.length)).actions[0]!.ok, 'ask');
  const buys: SignedTx[] = many.map((k) =>
    h.tx(k, limit(ETH, 'buy', 300_000, 1_000, { timeInForce: 'IOC' })),
  );
  const r = h.block(buys);
  assert.ok(
    r.results.every((x) => x.ok && x.actions[0]!.ok),
    'every ETH long opened',
  );
  // ETH halts.
  haltByVote(h, ETH);
  assert.ok(h.ex.state.marketByName.get(ETH)!.halted, 'ETH is halted');
  // At $48,800 early is $8.90 below maintenance; at $2,900 each ETH long is
  // about $27 below it, and its market cannot close.
  h.oracle = { ...h.oracle, BTC: 48_800n * USDC, ETH: 2_900n * USDC };
  let closedEarly = false;
  for (let i = 0; i < 5; i++) {
    const events = h.block([]).events;
    if (events.some((e) => e.type === 'liquidation' && e.account === h.account(early)!.index)) {
      closedEarly = true;
    }
  }
  const state = h.ex.state;
  assert.ok(
    many.every((k) => isLiquidatable(state, h.account(k)!)),
    'every ETH long is still below maintenance: nothing of theirs could close',
  );
  // Those that can close go first, whatever their shortfall.
  assert.ok(closedEarly, 'early was liquidated within five blocks');
});

/**
 * Whether an account with this cash and these sizes (by market) is below
 * maintenance at the state's marks: equity × 10^6 < Σ |size| × mark × k ×
 * maintenanceMarginPpm, the test of the scan.
 */
function belowAtMarks(state: ExchangeState, cash: bigint, sizes: readonly number[]): boolean {
  let equity = cash * 1_000_000n;
  let maintenance = 0n;
  state.markets.forEach((m, i) => {
    const size = BigInt(sizes[i]!);
    equity += size * m.markQuotePerLot * 1_000_000n;
    maintenance += (size < 0n ? -size : size) * m.maintenancePerLotScaled;
  });
  return equity < maintenance;
}

test('an account due at the scan that an earlier liquidation of the block takes back above maintenance takes none of the LIQUIDATIONS_PER_BLOCK_MAX places', () => {
  const h = new Harness(unmonitoredGenesis(), { checkInvariants: false });
  const ok = (from: Key, action: Action, what: string): void => {
    const r = h.one(from, action);
    assert.ok(r.ok && r.actions[0]!.ok, `${what}: ${JSON.stringify(r, replacer)}`);
  };
  const l = key('place-l');
  const r = key('place-r');
  const b = key('place-b');
  const maker = key('place-maker');
  h.fund(l, 260n * USDC);
  h.fund(r, 190n * USDC);
  h.fund(b, 500_000n * USDC);
  h.fund(maker, 900_000n * USDC);
  // With l and r, one more account due than there are places.
  const many = Array.from({ length: LIQUIDATIONS_PER_BLOCK_MAX - 1 }, (_, i) =>
    key(`place-eth-${i}`),
  );
  const last = many[many.length - 1]!;
  // A dollar more than the others: the smallest shortfall, so the last in the order.
  h.block(
    many.map((k) => h.tx(k, { kind: 'faucet', amountQuote: (k === last ? 161n : 160n) * USDC })),
  );
  // l: long 0.1 BTC at $50,000.
  ok(b, limit(BTC, 'sell', 500_000, 1_000), 'b asks');
  ok(l, limit(BTC, 'buy', 500_000, 1_000), 'l buys 0.1 BTC');
  // r: short 0.01 BTC at $50,000, long 1 ETH at $3,000, and a bid buying its
  // short back at $48,700.
  ok(r, limit(BTC, 'sell', 500_000, 100), 'r asks');
  ok(maker, limit(BTC, 'buy', 500_000, 100), 'r sells 0.01 BTC');
  ok(maker, limit(ETH, 'sell', 300_000, 1_000 * (many.length + 1)), 'ETH ask');
  ok(r, limit(ETH, 'buy', 300_000, 1_000, { timeInForce: 'IOC' }), 'r buys 1 ETH');
  ok(r, limit(BTC, 'buy', 487_000, 100), 'r bids');
  const buys: SignedTx[] = many.map((k) =>
    h.tx(k, limit(ETH, 'buy', 300_000, 1_000, { timeInForce: 'IOC' })),
  );
  const opened = h.block(buys);
  assert.ok(
    opened.results.every((x) => x.ok && x.actions[0]!.ok),
    'every ETH long opened',
  );
  // The last ETH long rests an order: its liquidation shows (liquidationCancels).
  ok(last, limit(ETH, 'sell', 400_000, 1_000), 'the last ETH long asks');
  haltByVote(h, ETH);
  const state = h.ex.state;
  assert.ok(state.marketByName.get(ETH)!.halted, 'ETH is halted');
  const rAccount = h.account(r)!;
  const rCash = rAccount.cashQuote;
  const rSizes = state.markets.map((m) => sizeIn(rAccount, m));
  assert.deepEqual(rSizes, [-100, 1_000], 'r is short 0.01 BTC and long 1 ETH');
  // BTC $48,800, ETH $2,900: l $8.90 below maintenance, r $1.24 below it (its
  // ETH loss), each ETH long $28.50 (the last $27.50): 1,001 accounts due, l
  // and r first (their market can close), l the larger shortfall.
  h.oracle = { ...h.oracle, BTC: 48_800n * USDC, ETH: 2_900n * USDC };
  const events = h.block([]).events;
  assert.deepEqual(
    state.markets.map((m) => m.markTicks),
    [488_000, 290_000],
    'the marks moved to the index in this block',
  );
  assert.ok(!events.some((e) => e.type === 'funding'), "no funding moved r's cash");
  assert.ok(belowAtMarks(state, rCash, rSizes), 'r was below maintenance at the scan');
  assert.ok(
    many.every((k) => isLiquidatable(state, h.account(k)!)),
    'every ETH long is below maintenance (at the scan as after: nothing of theirs changed)',
  );
  const li = h.account(l)!.index;
  const ri = rAccount.index;
  assert.ok(
    events.some((e) => e.type === 'liquidation' && e.account === li),
    'l was liquidated',
  );
  assert.ok(
    events.some(
      (e) =>
        e.type === 'liquidationFill' &&
        e.account === li &&
        e.makerAccount === ri &&
        e.priceTicks === 487_000 &&
        e.sizeLots === 100,
    ),
    "l's close filled r's bid",
  );
  assert.equal(sizeIn(rAccount, state.marketByName.get(BTC)!), 0, 'r bought its short back');
  assert.ok(!isLiquidatable(state, rAccount), 'r is above maintenance at its turn');
  assert.ok(
    !events.some(
      (e) => (e.type === 'liquidation' || e.type === 'liquidationCancels') && e.account === ri,
    ),
    'r was not liquidated',
  );
  // r's turn took no place: the last account due was reached in this block.
  assert.ok(
    events.some(
      (e) =>
        e.type === 'liquidationCancels' && e.account === h.account(last)!.index && e.orders === 1,
    ),
    'the last ETH long was liquidated in this block (its ask cancelled)',
  );
  assert.equal(
    state.marketByName.get(ETH)!.book.ownerOrderCount(h.account(last)!.index),
    0,
    'its ask is gone',
  );
});
