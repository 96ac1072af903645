// Accounts whose positions cannot close in this block (a halted market) are
// liquidated after those that can: with the largest shortfall first alone,
// more than LIQUIDATIONS_PER_BLOCK_MAX of them would take every place, block
// after block, ahead of an account that could close.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, USDC, VALIDATORS, genesis, key, limit } from './helpers.ts';
import type { SignedTx } from '../../src/exchange/tx/types.ts';
import { LIQUIDATIONS_PER_BLOCK_MAX } from '../../src/lib/limits.ts';
import { isLiquidatable } from '../../src/exchange/liquidation.ts';

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
  h.block([
    h.tx(VALIDATORS[0]!, {
      kind: 'govPropose',
      proposalId: 1,
      proposal: { kind: 'haltMarket', instrument: ETH },
    }),
    h.tx(VALIDATORS[1]!, { kind: 'govVote', proposalId: 1, approve: true }),
    h.tx(VALIDATORS[2]!, { kind: 'govVote', proposalId: 1, approve: true }),
  ]);
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
