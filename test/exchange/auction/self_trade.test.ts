// An account's own resting orders never start a volatility auction: self-trade
// prevention would never let its order trade with them, so only a trade with
// another account beyond a trigger's bound counts. The devnet trigger: 5%
// within 5 minutes; after a first trade at 500,000 the bounds are
// [475,000, 525,000].

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ActionResult } from '../../../src/exchange/results.ts';
import type { BlockResult } from '../../../src/exchange/index.ts';
import type { StpMode } from '../../../src/exchange/book/index.ts';
import { Harness, USDC, key, limit, replacer } from '../helpers.ts';

const BTC = 'BTC-PERPETUAL';
const maker = key('maker');
const taker = key('taker');
const alice = key('alice');

function order(r: BlockResult): NonNullable<Extract<ActionResult, { ok: true }>['order']> {
  const tx = r.results[0]!;
  assert.ok(tx.ok, JSON.stringify(tx, replacer));
  const a = tx.actions[0]!;
  assert.ok(a.ok && a.order !== undefined, JSON.stringify(a, replacer));
  return a.order;
}

function started(r: BlockResult): number[] {
  return r.events.flatMap((e) => (e.type === 'auctionStarted' ? [e.priceTicks] : []));
}

function btc(h: Harness) {
  return h.ex.state.marketByName.get(BTC)!;
}

function sound(h: Harness): void {
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
}

/** A first trade at 500,000, then the maker's own ask 6% above, beyond the 525,000 bound. */
function tradedMarket(): Harness {
  const h = new Harness();
  for (const k of [maker, taker, alice]) h.fund(k, 1_000_000n * USDC);
  order(h.block([h.tx(maker, limit(BTC, 'sell', 500_000, 1))]));
  order(h.block([h.tx(taker, limit(BTC, 'buy', 500_000, 1))]));
  assert.equal(btc(h).auction!.monitor.lastPriceTicks, 500_000);
  assert.equal(order(h.block([h.tx(maker, limit(BTC, 'sell', 530_000, 3))])).status, 'rested');
  return h;
}

const buyAbove = (stp: StpMode) => limit(BTC, 'buy', 535_000, 2, { stp });

test('a GTC crossing only its own order beyond the bound starts no auction (cancelResting: it rests)', () => {
  const h = tradedMarket();
  const r = h.block([h.tx(maker, buyAbove('cancelResting'))]);
  const o = order(r);
  assert.deepEqual([o.status, o.reason, o.filledLots, o.restedLots], ['rested', null, 0, 2]);
  assert.deepEqual(started(r), []);
  assert.equal(btc(h).auction!.active, false);
  // Its own ask went, as matching would have removed it: the book is not crossed.
  assert.equal(btc(h).book.bestAskTicks(), undefined);
  assert.equal(btc(h).book.bestBidTicks(), 535_000);
  sound(h);
});

test('under cancelIncoming or cancelBoth the order stops at its own order: SelfTrade, no auction', () => {
  for (const stp of ['cancelIncoming', 'cancelBoth'] as const) {
    const h = tradedMarket();
    const r = h.block([h.tx(maker, buyAbove(stp))]);
    const o = order(r);
    assert.deepEqual([o.status, o.reason, o.cancelledLots], ['cancelled', 'SelfTrade', 2], stp);
    assert.deepEqual(started(r), []);
    assert.equal(btc(h).auction!.active, false);
    assert.equal(btc(h).book.bestAskTicks(), stp === 'cancelIncoming' ? 530_000 : undefined);
    assert.equal(btc(h).book.bestBidTicks(), undefined);
    sound(h);
  }
});

test("another account's order behind its own still starts the auction, at that order's price", () => {
  const h = tradedMarket();
  assert.equal(order(h.block([h.tx(alice, limit(BTC, 'sell', 532_000, 1))])).status, 'rested');
  const r = h.block([h.tx(maker, buyAbove('cancelResting'))]);
  const o = order(r);
  assert.deepEqual([o.status, o.reason, o.restedLots], ['rested', 'AuctionTriggered', 2]);
  assert.deepEqual(started(r), [532_000]);
  assert.ok(btc(h).auction!.active);
  assert.equal(btc(h).book.bestAskTicks(), 532_000, 'its own ask was cancelled on the way');
  sound(h);
});

test('an own order beyond the far bound (breachesAtOnce) starts nothing either', () => {
  const h = tradedMarket();
  // Above the 525,000 bound, below the ask at 530,000: it rests.
  assert.equal(order(h.block([h.tx(alice, limit(BTC, 'buy', 528_000, 1))])).status, 'rested');
  const r = h.block([h.tx(alice, limit(BTC, 'sell', 527_000, 1))]);
  const o = order(r);
  assert.deepEqual([o.status, o.reason, o.restedLots], ['rested', null, 1]);
  assert.deepEqual(started(r), []);
  assert.equal(btc(h).auction!.active, false);
  assert.equal(btc(h).book.bestBidTicks(), undefined);
  assert.equal(btc(h).book.bestAskTicks(), 527_000);
  sound(h);
});

test('an amend that would cross only its own order beyond the bound starts no auction', () => {
  const h = tradedMarket();
  const bid = order(h.block([h.tx(maker, limit(BTC, 'buy', 510_000, 2))]));
  const r = h.block([
    h.tx(maker, { kind: 'amend', instrument: BTC, orderId: bid.orderId, priceTicks: 535_000 }),
  ]);
  assert.ok(r.results[0]!.ok);
  assert.deepEqual(started(r), []);
  assert.equal(btc(h).auction!.active, false);
  assert.equal(btc(h).book.bestAskTicks(), undefined);
  assert.equal(btc(h).book.bestBidTicks(), 535_000);
  sound(h);
});

/**
 * Alice's own bid at 529,000 ahead of the maker's at 528,000, both above the
 * 525,000 bound: a sell of hers crossing them breaches at once, at the maker's.
 */
function ownBidAheadOfBreach(): [Harness, number] {
  const h = tradedMarket();
  assert.equal(order(h.block([h.tx(maker, limit(BTC, 'buy', 528_000, 1))])).status, 'rested');
  const own = order(h.block([h.tx(alice, limit(BTC, 'buy', 529_000, 1))]));
  assert.equal(own.status, 'rested');
  return [h, own.orderId];
}

test('breaching at once, cancelResting cancels the own orders ahead as the book path does (place and amend alike)', () => {
  const [placed, placedBid] = ownBidAheadOfBreach();
  const r = placed.block([placed.tx(alice, limit(BTC, 'sell', 527_000, 2))]);
  const o = order(r);
  assert.deepEqual([o.status, o.reason, o.restedLots], ['rested', 'AuctionTriggered', 2]);
  assert.deepEqual(started(r), [528_000]);
  // Not left to trade with the order in the uncross.
  assert.equal(btc(placed).book.bestBidTicks(), 528_000, 'its own bid was cancelled');
  assert.equal(placed.ex.state.orders.has(placedBid), false);
  sound(placed);

  const [amended, amendedBid] = ownBidAheadOfBreach();
  const ask = order(amended.block([amended.tx(alice, limit(BTC, 'sell', 540_000, 2))]));
  const a = amended.block([
    amended.tx(alice, {
      kind: 'amend',
      instrument: BTC,
      orderId: ask.orderId,
      priceTicks: 527_000,
    }),
  ]);
  assert.ok(a.results[0]!.ok);
  assert.deepEqual(started(a), [528_000]);
  assert.equal(btc(amended).book.bestBidTicks(), 528_000);
  assert.equal(amended.ex.state.orders.has(amendedBid), false);
  sound(amended);
});

test('breaching at once, an IOC cancels the own orders ahead (as matching would) and starts nothing', () => {
  const [h, bid] = ownBidAheadOfBreach();
  const r = h.block([h.tx(alice, limit(BTC, 'sell', 527_000, 2, { timeInForce: 'IOC' }))]);
  const o = order(r);
  assert.deepEqual([o.status, o.reason, o.cancelledLots], ['cancelled', 'IocRemainder', 2]);
  assert.deepEqual(started(r), []);
  assert.equal(btc(h).book.bestBidTicks(), 528_000);
  assert.equal(h.ex.state.orders.has(bid), false);
  sound(h);
});
