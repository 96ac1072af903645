// Fee tiers (docs/exchange.md, "Fees"): the taker's tier is that of its volume
// before the order, for all of the order's fills; a maker's is that of its
// volume before each fill.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, USDC, genesis, key, limit, replacer } from './helpers.ts';

const BTC = 'BTC-PERPETUAL';
/** 1 lot at 500,000 ticks of $0.10: $5 of notional. */
const PRICE = 500_000;
const LOT_NOTIONAL = 5n * USDC;

test("the taker's fee tier holds for all of an order's fills; a maker's moves up between fills", () => {
  const h = new Harness(
    genesis({
      feeTiers: [
        { volumeQuoteMin: 0n, makerFeePpm: 200, takerFeePpm: 500 },
        // Reached by one lot's notional.
        { volumeQuoteMin: LOT_NOTIONAL, makerFeePpm: 0, takerFeePpm: 100 },
      ],
    }),
  );
  const [maker, taker] = [key('tiers-maker'), key('tiers-taker')];
  for (const k of [maker, taker]) h.fund(k, 10_000n * USDC);
  // Two asks of one lot: one order takes both.
  h.block([h.tx(maker, limit(BTC, 'sell', PRICE, 1)), h.tx(maker, limit(BTC, 'sell', PRICE, 1))]);
  const first = h.one(taker, limit(BTC, 'buy', PRICE, 2));
  const action = first.actions[0]!;
  assert.ok(action.ok && action.order !== undefined, JSON.stringify(first, replacer));
  const fills = action.order.fills;
  assert.equal(fills.length, 2);
  const ppm = (p: bigint) => (LOT_NOTIONAL * p) / 1_000_000n;
  // The taker had no volume before the order: tier 0 for both fills, though the first took it past tier 1's threshold.
  assert.deepEqual(
    fills.map((f) => f.takerFeeQuote),
    [ppm(500n), ppm(500n)],
  );
  // The maker is read at each fill: tier 0 for the first, tier 1 (no fee) for the second.
  assert.deepEqual(
    fills.map((f) => f.makerFeeQuote),
    [ppm(200n), 0n],
  );
  // The taker's next order starts from the volume it has now: tier 1.
  h.one(maker, limit(BTC, 'sell', PRICE, 1));
  const next = h.one(taker, limit(BTC, 'buy', PRICE, 1)).actions[0]!;
  assert.ok(next.ok && next.order !== undefined);
  assert.deepEqual(
    next.order.fills.map((f) => f.takerFeeQuote),
    [ppm(100n)],
  );
});
