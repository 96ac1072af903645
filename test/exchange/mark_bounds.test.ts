// The mark at the edges of the price scale (src/exchange/mark.ts): the mid of
// the book is trunc((bestBid + bestAsk) / 2) exactly, even where the sum of
// the two prices passes 2^53 — an ask rests at up to PRICE_TICKS_MAX
// (2^53 − 1) for the margin of its lots at the mark.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeMarkTicks } from '../../src/exchange/mark.ts';
import { INDEX_TICKS_MAX, PRICE_TICKS_MAX } from '../../src/lib/limits.ts';
import { Harness, USDC, key, limit } from './helpers.ts';

const BTC = 'BTC-PERPETUAL';

test('an ask at PRICE_TICKS_MAX and a bid in the book do not stop the next block', () => {
  const h = new Harness();
  const [a, b] = [key('mark-edge-ask'), key('mark-edge-bid')];
  h.fund(a, 10_000n * USDC);
  h.fund(b, 10_000n * USDC);
  assert.ok(h.one(a, limit(BTC, 'sell', PRICE_TICKS_MAX, 1)).actions[0]!.ok);
  assert.ok(h.one(b, limit(BTC, 'buy', 1, 1)).actions[0]!.ok);
  const market = h.ex.state.marketByName.get(BTC)!;
  h.block([]);
  // The mid is far above the band: the mark is the index (the median of index, index + 0.5%, index).
  assert.equal(market.markTicks, market.indexTicks);
});

test('the mid of two prices whose sum passes 2^53 is exact', () => {
  const h = new Harness();
  const market = h.ex.state.marketByName.get(BTC)!;
  market.indexTicks = INDEX_TICKS_MAX;
  // Within the ±0.5% band above the index; bid + ask is odd and beyond 2^53.
  const bid = INDEX_TICKS_MAX + 1_000;
  const ask = INDEX_TICKS_MAX + 2_000_001;
  assert.ok(bid + ask > Number.MAX_SAFE_INTEGER);
  for (const [side, priceTicks] of [
    ['buy', bid],
    ['sell', ask],
  ] as const) {
    market.book.place({
      orderId: h.ex.state.nextOrderId++,
      owner: side === 'buy' ? 1_000_000 : 1_000_001,
      side,
      priceTicks,
      sizeLots: 1,
      timeInForce: 'GTC',
    });
  }
  // A basis above the mid makes the mid the median.
  market.premiumCount = 1;
  market.premiumSumPpm = 1_000;
  assert.equal(BigInt(computeMarkTicks(market)), (BigInt(bid) + BigInt(ask)) / 2n);
});
