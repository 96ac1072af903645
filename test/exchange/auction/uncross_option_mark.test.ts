// The uncross values an owner's options at this block's marks.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  daysFromCivil,
  expiryMsOfDay,
  MS_PER_DAY,
} from '../../../src/exchange/instruments/index.ts';
import { equityQuote } from '../../../src/exchange/margin.ts';
import { Harness, USDC, dailyListingGenesis, key, limit } from '../helpers.ts';

const START_MS = daysFromCivil(2026, 3, 2) * MS_PER_DAY;
const EXPIRY_MS = expiryMsOfDay(daysFromCivil(2026, 3, 2));
const CALL = 'BTC-2MAR26-50000-C';
const ETH = 'ETH-PERPETUAL';
const FLAT = { a: 228_000_000_000_000n, b: 0n, rho: 0n, m: 0n, sigma: 100_000_000_000_000_000n };

function ok(r: ReturnType<Harness['one']>): void {
  assert.ok(
    r.actions[0]!.ok,
    JSON.stringify(r.actions[0], (_k, v) => (typeof v === 'bigint' ? String(v) : v)),
  );
}

test('an uncross values the owner’s options at this block’s marks, not the last block’s', () => {
  const h = new Harness(dailyListingGenesis(START_MS));
  h.smiles = [
    { underlying: 'BTC', expiryMs: EXPIRY_MS, svi: FLAT },
    { underlying: 'ETH', expiryMs: EXPIRY_MS, svi: FLAT },
  ];
  h.block([], 60_000);
  const maker = key('maker');
  const taker = key('taker');
  const thin = key('thin');
  for (const k of [maker, taker]) h.fund(k, 1_000_000n * USDC);
  h.fund(thin, 1_500n * USDC);
  // thin is short one lot (0.1 BTC) of the $50,000 call, at its mark of $30.
  const call = h.ex.state.marketByName.get(CALL)!;
  const eth = h.ex.state.marketByName.get(ETH)!;
  assert.equal(call.markTicks, 60);
  ok(h.one(maker, limit(CALL, 'buy', 60, 1)));
  ok(h.one(thin, limit(CALL, 'sell', 60, 1)));
  // The ETH market enters a call auction, and thin bids there for 1,000 lots:
  // at the uncross price of 318,000 ticks, $180 above ETH's mark.
  ok(h.one(maker, limit(ETH, 'sell', 300_000, 1)));
  ok(h.one(taker, limit(ETH, 'buy', 300_000, 1)));
  ok(h.one(maker, limit(ETH, 'sell', 318_000, 3)));
  ok(h.one(taker, limit(ETH, 'buy', 321_000, 2)));
  assert.ok(eth.auction?.active === true);
  ok(h.one(thin, limit(ETH, 'buy', 321_000, 1_000)));
  const thinBid = [...eth.auction.bids.ordersOf('buy')].find(
    (o) => o.owner === h.account(thin)!.index,
  )!;
  ok(h.one(maker, limit(ETH, 'sell', 318_000, 2_000)));
  // BTC jumps to $65,000 in the block that ends the auction: the call is
  // marked at $1,500 a lot, which leaves thin about $30, short of the $180
  // its fill would cost; at the call's previous mark it had $1,500.
  h.oracle = { ...h.oracle, BTC: 65_000n * USDC };
  const r = h.block([], eth.auction.monitor.auctionEndMs - h.timeMs);
  assert.equal(call.markTicks, 3_000);
  assert.deepEqual(
    r.events.filter((e) => e.type === 'makerCancelled'),
    [
      {
        type: 'makerCancelled',
        market: ETH,
        orderId: thinBid.orderId,
        account: h.account(thin)!.index,
      },
    ],
  );
  const ended = r.events.find((e) => e.type === 'auctionEnded');
  assert.deepEqual(ended, {
    type: 'auctionEnded',
    market: ETH,
    priceTicks: 318_000,
    volumeLots: 2,
  });
  // No ETH position reached thin, so no one was deleveraged in ETH at a loss.
  assert.equal(r.events.filter((e) => e.type === 'deleverage' && e.market === ETH).length, 0);
  for (const k of [maker, taker, thin]) assert.ok(equityQuote(h.ex.state, h.account(k)!) >= 0n);
});
