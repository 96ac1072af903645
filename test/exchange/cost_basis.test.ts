// costBasisAfterTrade (position.ts) replays what applyTrade books of a
// position's cost basis, on its number path and on its bigint path.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { applyTrade, costBasisAfterTrade, positionOf } from '../../src/exchange/position.ts';
import { Harness, USDC, key } from './helpers.ts';

test('property: costBasisAfterTrade gives the cost basis applyTrade books, trade by trade, whether the trade is a safe integer or not', () => {
  const trade = fc.record({
    lots: fc.integer({ min: 1, max: 2 ** 20 }).chain((n) => fc.constantFrom(n, -n)),
    // Up to 2^40 ticks: lots × price × k passes 2^53 often (applyTrade's bigint path).
    priceTicks: fc.oneof(
      fc.integer({ min: 1, max: 1_000_000 }),
      fc.integer({ min: 1, max: 2 ** 40 }),
    ),
  });
  fc.assert(
    fc.property(fc.array(trade, { minLength: 1, maxLength: 40 }), (trades) => {
      const h = new Harness();
      const who = key('cost-basis');
      h.fund(who, 1_000n * USDC);
      const state = h.ex.state;
      const market = state.marketByName.get('BTC-PERPETUAL')!;
      const account = h.account(who)!;
      let size = 0;
      let basis = 0n;
      for (const t of trades) {
        if (!Number.isSafeInteger(size + t.lots)) break;
        const replayed = costBasisAfterTrade(market.k, size, basis, t.lots, t.priceTicks);
        applyTrade(state, market, account, t.lots, t.priceTicks);
        const p = positionOf(account, market)!;
        size += t.lots;
        assert.equal(p.sizeLots, size);
        assert.equal(replayed, p.costBasisQuote, `after ${t.lots} at ${t.priceTicks}`);
        basis = replayed;
      }
    }),
    { numRuns: 300 },
  );
});
