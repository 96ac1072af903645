// A due volatility auction waits while its market's index is stale
// (docs/exchange.md, "Volatility auctions", "Uncross"): the uncross is a
// trade between orders that may each open a position, which a stale market
// takes from no order (only reduce-only ones), checked against equity at a
// mark nobody observed, and the positions it opens could not be liquidated
// until the index came back. It runs at the first block with a fresh index.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BlockResult, ExchangeEvent } from '../../../src/exchange/index.ts';
import { sizeIn } from '../../../src/exchange/position.ts';
import { Harness, ORACLE, USDC, key, limit, replacer } from '../helpers.ts';

const BTC = 'BTC-PERPETUAL';
/** The devnet's trigger: an auction of 30 s; its oracle: stale after 60 s without a price. */
const AUCTION_MS = 30_000;

const maker = key('maker');
const taker = key('taker');

function ok(r: ReturnType<Harness['one']>): void {
  assert.ok(r.ok && r.actions[0]!.ok, JSON.stringify(r, replacer));
}

function auctionEvents(r: BlockResult): ExchangeEvent[] {
  return r.events.filter((e) => e.type === 'auctionTrade' || e.type === 'auctionEnded');
}

test('a due auction waits while its index is stale and uncrosses at the first fresh block', () => {
  const h = new Harness();
  for (const k of [maker, taker]) h.fund(k, 1_000_000n * USDC);
  ok(h.one(maker, limit(BTC, 'sell', 500_000, 1)));
  ok(h.one(taker, limit(BTC, 'buy', 500_000, 1)));
  ok(h.one(maker, limit(BTC, 'sell', 530_000, 3)));
  // The oracle stops; 45 s later (still fresh) a bid beyond the 5% bound starts an auction.
  h.oracle = {};
  for (let s = 0; s < 45; s++) h.block([]);
  const started = h.one(taker, limit(BTC, 'buy', 535_000, 2));
  ok(started);
  const m = h.ex.state.marketByName.get(BTC)!;
  assert.ok(m.auction!.active);
  assert.equal(m.oracleStale, false);
  const endMs = m.auction!.monitor.auctionEndMs;
  assert.equal(endMs, h.timeMs + AUCTION_MS);
  // The index goes stale before the auction's end; the end passes, nothing trades.
  while (h.timeMs < endMs + 10_000) {
    const r = h.block([]);
    assert.deepEqual(auctionEvents(r), [], `no uncross at ${h.timeMs}`);
  }
  assert.equal(m.oracleStale, true);
  assert.ok(m.auction!.active, 'the auction waits for the index');
  assert.equal(sizeIn(h.account(taker)!, m), 1);
  assert.equal(sizeIn(h.account(maker)!, m), -1);
  assert.equal(m.auction!.bids.bestBidTicks(), 535_000);
  // The index returns: the uncross runs at the start of that block.
  h.oracle = { ...ORACLE };
  const fresh = h.block([]);
  assert.equal(m.oracleStale, false);
  assert.deepEqual(
    auctionEvents(fresh).map((e) => e.type),
    ['auctionTrade', 'auctionEnded'],
  );
  assert.equal(m.auction!.active, false);
  assert.equal(sizeIn(h.account(taker)!, m), 3);
  assert.equal(sizeIn(h.account(maker)!, m), -3);
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});
