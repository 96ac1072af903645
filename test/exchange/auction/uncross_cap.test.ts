// The open-interest cap holds through a volatility auction's uncross. The
// orders that wait in an auction were each checked against open interest when
// they came, as if they alone would trade, but nobody takes in the uncross and
// they all trade together: a fill that would raise open interest above the cap
// cancels the later of its two orders, and the price is chosen again.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BlockResult, ExchangeEvent, Genesis } from '../../../src/exchange/index.ts';
import { decodeSnapshot, encodeSnapshot } from '../../../src/exchange/index.ts';
import { uncrossAuction } from '../../../src/exchange/auction/call.ts';
import type { MarketState } from '../../../src/exchange/state.ts';
import type { Key } from '../helpers.ts';
import { Harness, USDC, genesis, key, limit, replacer } from '../helpers.ts';

const BTC = 'BTC-PERPETUAL';
const CAP = 10;

function capGenesis(): Genesis {
  const g = genesis();
  g.markets = g.markets.map((m, i) => (i === 0 ? { ...m, openInterestCapLots: CAP } : m));
  return g;
}

function place(h: Harness, from: Key, ...order: Parameters<typeof limit>): number {
  const r = h.one(from, limit(...order));
  assert.ok(r.ok && r.actions[0]!.ok, JSON.stringify(r, replacer));
  const a = r.actions[0]!;
  return a.ok && a.kind === 'placeOrder' ? a.order!.orderId : 0;
}

function ofType<T extends ExchangeEvent['type']>(
  events: readonly ExchangeEvent[],
  type: T,
): Extract<ExchangeEvent, { type: T }>[] {
  return events.filter((e): e is Extract<ExchangeEvent, { type: T }> => e.type === type);
}

const [maker, taker, a, b, c, d] = ['maker', 'taker', 'a', 'b', 'c', 'd'].map((n) =>
  key(`cap-${n}`),
) as [Key, Key, Key, Key, Key, Key];

/**
 * A first trade at 500,000 (open interest 1), a GTC bid beyond the 5% trigger
 * starts an auction, and two pairs of 8 lots at 500,000 wait in it: each pair
 * fits under the cap on its own (1 + 8 ≤ 10), not both.
 */
function crowdedAuction(): { h: Harness; m: MarketState; lateBuy: number; lateSell: number } {
  const h = new Harness(capGenesis());
  for (const k of [maker, taker, a, b, c, d]) h.fund(k, 1_000_000n * USDC);
  const m = h.ex.state.marketByName.get(BTC)!;
  place(h, maker, BTC, 'sell', 500_000, 1);
  place(h, taker, BTC, 'buy', 500_000, 1);
  place(h, maker, BTC, 'sell', 530_000, 1);
  place(h, taker, BTC, 'buy', 535_000, 1);
  assert.ok(m.auction!.active, 'in an auction');
  assert.equal(m.longLots, 1);
  place(h, a, BTC, 'buy', 500_000, 8);
  place(h, b, BTC, 'sell', 500_000, 8);
  const lateBuy = place(h, c, BTC, 'buy', 500_000, 8);
  const lateSell = place(h, d, BTC, 'sell', 500_000, 8);
  return { h, m, lateBuy, lateSell };
}

test('an uncross does not raise open interest above the cap: the later order of the fill that would is cancelled', () => {
  const { h, m, lateBuy, lateSell } = crowdedAuction();
  const restored = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
  const r: BlockResult = h.block([], 30_000);
  const [ended] = ofType(r.events, 'auctionEnded');
  assert.ok(ended !== undefined, 'the auction ended');
  assert.ok(m.longLots <= CAP, `open interest ${m.longLots} above the cap of ${CAP}`);
  // All four at 500,000 would fill 16 lots: the taker's 1 and a's 8 from b's and
  // d's asks, then c's 7 from d's, which would take open interest from 10 to 17.
  // d's ask came after c's bid: it is cancelled, and the uncross without it
  // fills the taker and a from b (open interest 9); c's bid waits in the book.
  assert.deepEqual(
    ofType(r.events, 'makerCancelled').map((e) => e.orderId),
    [lateSell],
  );
  assert.equal(ended.volumeLots, 8);
  assert.equal(m.longLots, 9);
  assert.equal(m.book.order(lateBuy)?.sizeLots, 8, "c's bid rests whole");
  // A node restored mid-auction gives the same block.
  const copy = new Harness(capGenesis(), { checkInvariants: true }, restored);
  copy.timeMs = h.timeMs - 30_000;
  assert.equal(JSON.stringify(copy.block([], 30_000), replacer), JSON.stringify(r, replacer));
});

test('past the rounds, every auction order that could open a position is cancelled, and orders that close still trade', () => {
  const { h, m } = crowdedAuction();
  // The maker (short 1) bids 1 and the taker (long 1) offers 1: both only close.
  const closingBuy = place(h, maker, BTC, 'buy', 500_000, 1);
  const closingSell = place(h, taker, BTC, 'sell', 500_000, 1);
  const events: ExchangeEvent[] = [];
  uncrossAuction(h.ex.state, m, m.auction!.monitor.auctionEndMs, events, 0);
  assert.equal(ofType(events, 'makerCancelled').length, 6, 'every order that opens');
  assert.deepEqual(
    ofType(events, 'auctionTrade').map((t) => [t.buyOrderId, t.sellOrderId, t.sizeLots]),
    [[closingBuy, closingSell, 1]],
  );
  assert.equal(m.longLots, 0);
});
