// The auction stop at the edges of the price scale (src/exchange/auction/call.ts
// takerStopTicks): a taker whose first trade would be with an order beyond the
// far bound trades nothing and starts the auction, even when that order sits
// at 1 tick (a buyer: no positive stop lies below it) or at PRICE_TICKS_MAX (a
// seller: none lies above it).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { takerStopTicks } from '../../../src/exchange/auction/call.ts';
import { OrderBook, STOP_AT_ONCE } from '../../../src/exchange/book/index.ts';
import type { PlaceOrder } from '../../../src/exchange/book/index.ts';
import type { BlockResult, ExchangeEvent } from '../../../src/exchange/index.ts';
import type { TxResult } from '../../../src/exchange/index.ts';
import { PRICE_TICKS_MAX } from '../../../src/lib/limits.ts';
import { Harness, USDC, key, limit, replacer } from '../helpers.ts';

const BTC = 'BTC-PERPETUAL';
const ONE_BTC = 10_000;

function accepted(r: TxResult): void {
  assert.ok(r.ok && r.actions[0]!.ok, JSON.stringify(r, replacer));
}

function events(r: BlockResult, type: ExchangeEvent['type']): ExchangeEvent[] {
  return r.events.filter((e) => e.type === type);
}

/**
 * o short 1 BTC at $50,000 on $2,600 (the triggers' reference: 500,000 ticks,
 * trades allowed in [475,000, 525,000]); another account's ask rests at 1
 * tick, far below the range (no bid to take when it came).
 */
function shortWithAskAtOneTick(prefix: string) {
  const h = new Harness();
  const [o, c, cheap] = [key(`${prefix}-o`), key(`${prefix}-c`), key(`${prefix}-cheap`)];
  h.fund(o, 2_600n * USDC);
  h.fund(c, 500_000n * USDC);
  h.fund(cheap, 500_000n * USDC);
  accepted(h.one(c, limit(BTC, 'buy', 500_000, ONE_BTC)));
  accepted(h.one(o, limit(BTC, 'sell', 500_000, ONE_BTC)));
  const ask = h.one(cheap, limit(BTC, 'sell', 1, 1));
  accepted(ask);
  const a = ask.actions[0]!;
  assert.ok(a.ok && a.order !== undefined);
  const market = h.ex.state.marketByName.get(BTC)!;
  assert.equal(market.book.bestAskTicks(), 1);
  assert.equal(market.auction!.active, false);
  return { h, o, market, askId: a.order.orderId };
}

test('a liquidation buy whose first ask is at 1 tick, below the range, trades nothing and starts the auction', () => {
  const { h, o, market } = shortWithAskAtOneTick('stop-edge-liq');
  // The index rises to $52,300 (within the range): o falls below maintenance.
  h.oracle = { ...h.oracle, BTC: 52_300n * USDC };
  const r = h.block([]);
  assert.deepEqual(
    events(r, 'liquidationFill').map((e) => ('priceTicks' in e ? e.priceTicks : -1)),
    [],
    'no trade at 1 tick',
  );
  const [started] = events(r, 'auctionStarted');
  assert.ok(started !== undefined && started.type === 'auctionStarted');
  assert.equal(started.priceTicks, 1);
  assert.ok(market.auction!.active);
  assert.equal(market.book.bestAskTicks(), 1, 'the ask waits for the uncross');
  assert.equal(h.account(o)!.positions[0]!.sizeLots, -ONE_BTC, 'nothing closed yet');
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});

test('a liquidation sell whose first bid is above the range trades nothing and starts the auction', () => {
  const h = new Harness();
  const [o, c, rich] = [key('stop-edge-long-o'), key('stop-edge-long-c'), key('stop-edge-rich')];
  h.fund(o, 2_600n * USDC);
  h.fund(c, 500_000n * USDC);
  h.fund(rich, 500_000n * USDC);
  accepted(h.one(c, limit(BTC, 'sell', 500_000, ONE_BTC)));
  accepted(h.one(o, limit(BTC, 'buy', 500_000, ONE_BTC)));
  // Above the 525,000 bound with no ask to take: it rests.
  accepted(h.one(rich, limit(BTC, 'buy', 530_000, 1)));
  const market = h.ex.state.marketByName.get(BTC)!;
  h.oracle = { ...h.oracle, BTC: 47_700n * USDC };
  const r = h.block([]);
  assert.equal(events(r, 'liquidationFill').length, 0);
  const [started] = events(r, 'auctionStarted');
  assert.ok(started !== undefined && started.type === 'auctionStarted');
  assert.equal(started.priceTicks, 530_000);
  assert.ok(market.auction!.active);
  assert.equal(h.account(o)!.positions[0]!.sizeLots, ONE_BTC);
});

test('takerStopTicks says "nothing trades" for a buyer facing an ask at 1 tick and a seller facing a bid at PRICE_TICKS_MAX', () => {
  const { h, market, askId } = shortWithAskAtOneTick('stop-edge-unit');
  const now = h.timeMs;
  const owner = 1_000_000;
  assert.equal(takerStopTicks(market, 'buy', 500_000, now, owner, 'cancelResting'), STOP_AT_ONCE);
  // A bid at the top of the price scale, put in the book directly (no account
  // could pay its margin): a seller's stop one tick above it does not exist.
  const book = market.book;
  book.cancel(askId);
  book.place({
    orderId: h.ex.state.nextOrderId++,
    owner: owner + 1,
    side: 'buy',
    priceTicks: PRICE_TICKS_MAX,
    sizeLots: 1,
    timeInForce: 'GTC',
  });
  const stop = takerStopTicks(market, 'sell', 1, now, owner, 'cancelResting');
  assert.equal(stop, STOP_AT_ONCE);
  const r0 = book.place({
    orderId: h.ex.state.nextOrderId++,
    owner,
    side: 'sell',
    priceTicks: 1,
    sizeLots: 1,
    timeInForce: 'IOC',
    stopTicks: stop,
  });
  assert.deepEqual(
    [r0.status, r0.reason, r0.filledLots, book.fills.length],
    ['cancelled', 'AuctionTriggered', 0, 0],
  );
  assert.equal(book.bestBidTicks(), PRICE_TICKS_MAX);
});

test("STOP_AT_ONCE on every path of the book: nothing trades, nothing rests across, and only another owner's order triggers", () => {
  const fresh = () => {
    const book = new OrderBook();
    let id = 0;
    const rest = (owner: number, side: 'buy' | 'sell', priceTicks: number, sizeLots = 1) => {
      const orderId = ++id;
      book.place({ orderId, owner, side, priceTicks, sizeLots, timeInForce: 'GTC' });
      return orderId;
    };
    const take = (o: Omit<PlaceOrder, 'orderId' | 'stopTicks'>) => {
      const r = { ...book.place({ ...o, orderId: ++id, stopTicks: STOP_AT_ONCE }) };
      book.checkInvariants();
      return [r.status, r.reason, r.filledLots, r.restedLots, book.fills.length];
    };
    return { book, rest, take };
  };
  for (const timeInForce of ['GTC', 'IOC', 'FOK'] as const) {
    const { book, rest, take } = fresh();
    rest(2, 'sell', 1, 3);
    assert.deepEqual(
      take({ owner: 1, side: 'buy', priceTicks: 10, sizeLots: 2, timeInForce }),
      ['cancelled', 'AuctionTriggered', 0, 0, 0],
      timeInForce,
    );
    assert.equal(book.levelLots('sell', 1), 3);
    // A seller facing a bid at the top of the price scale.
    const top = fresh();
    top.rest(2, 'buy', PRICE_TICKS_MAX, 3);
    assert.deepEqual(
      top.take({ owner: 1, side: 'sell', priceTicks: 1, sizeLots: 2, timeInForce }),
      ['cancelled', 'AuctionTriggered', 0, 0, 0],
      timeInForce,
    );
    assert.equal(top.book.levelLots('buy', PRICE_TICKS_MAX), 3);
  }
  {
    // Nothing within the limit: a GTC rests, as without a stop; a post-only too.
    const { book, rest, take } = fresh();
    rest(2, 'sell', 100);
    assert.deepEqual(
      take({ owner: 1, side: 'buy', priceTicks: 99, sizeLots: 1, timeInForce: 'GTC' }),
      ['rested', null, 0, 1, 0],
    );
    assert.deepEqual(
      take({
        owner: 1,
        side: 'buy',
        priceTicks: 100,
        sizeLots: 1,
        timeInForce: 'GTC',
        postOnly: true,
      }),
      ['rejected', 'PostOnlyWouldTake', 0, 0, 0],
    );
    assert.equal(book.bestBidTicks(), 99);
  }
  {
    // Own orders ahead: cancelResting removes them and triggers on the other
    // owner's behind; cancelIncoming stops at the first one, trading nothing.
    const { book, rest, take } = fresh();
    const own = rest(1, 'sell', 1);
    rest(2, 'sell', 2);
    assert.deepEqual(
      take({
        owner: 1,
        side: 'buy',
        priceTicks: 5,
        sizeLots: 1,
        timeInForce: 'IOC',
        stp: 'cancelIncoming',
      }),
      ['cancelled', 'SelfTrade', 0, 0, 0],
    );
    assert.equal(book.order(own)?.orderId, own);
    assert.deepEqual(
      take({ owner: 1, side: 'buy', priceTicks: 5, sizeLots: 1, timeInForce: 'IOC' }),
      ['cancelled', 'AuctionTriggered', 0, 0, 0],
    );
    assert.deepEqual(
      book.removed.toArray().map((r) => r.orderId),
      [own],
    );
    assert.equal(book.bestAskTicks(), 2);
  }
  {
    // An amend: the order leaves the book, nothing trades.
    const { book, rest } = fresh();
    rest(2, 'buy', 100);
    const ask = rest(1, 'sell', 200);
    const r = { ...book.amend(ask, 50, 1, STOP_AT_ONCE) };
    book.checkInvariants();
    assert.deepEqual(
      [r.status, r.reason, r.filledLots, book.fills.length],
      ['cancelled', 'AuctionTriggered', 0, 0],
    );
    assert.equal(book.order(ask), undefined);
    assert.equal(book.levelLots('buy', 100), 1);
    // A bid amended to the top of the price scale facing a seller's stop.
    const bid = rest(3, 'buy', 90);
    const s = { ...book.amend(bid, 90, 1, STOP_AT_ONCE) };
    assert.deepEqual(
      [s.status, s.restedLots],
      ['rested', 1],
      'a smaller size in place trades nothing',
    );
  }
});
