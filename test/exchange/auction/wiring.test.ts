// Volatility auctions through the state machine (src/exchange/auction/call.ts):
// a trigger starts a call auction, orders accumulate, the uncross trades at
// one volume-maximising price in priority, and state, digest and snapshots
// follow. Every Harness block also checks conservation and open interest.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  Exchange,
  GenesisError,
  decodeGenesis,
  decodeSnapshot,
  encodeGenesis,
  encodeSnapshot,
} from '../../../src/exchange/index.ts';
import type { BlockResult, ExchangeEvent, Genesis } from '../../../src/exchange/index.ts';
import { uncross } from '../../../src/exchange/auction/uncross.ts';
import type { AuctionOrder } from '../../../src/exchange/auction/uncross.ts';
import type { ActionResult } from '../../../src/exchange/results.ts';
import type { Action } from '../../../src/exchange/tx/types.ts';
import { Harness, USDC, VALIDATORS, genesis, key, limit, replacer } from '../helpers.ts';

const BTC = 'BTC-PERPETUAL';
const ETH = 'ETH-PERPETUAL';
/** The devnet trigger: 5% within 5 minutes → a 30-second auction. Mark 500,000 ticks. */
const AUCTION_MS = 30_000;

const maker = key('maker');
const taker = key('taker');
const alice = key('alice');
const bob = key('bob');

function action(r: ReturnType<Harness['one']>): ActionResult {
  assert.ok(r.ok, JSON.stringify(r, replacer));
  return r.actions[0]!;
}

function code(r: ReturnType<Harness['one']>): string | undefined {
  const a = action(r);
  return a.ok ? undefined : a.code;
}

function events(r: BlockResult, type: ExchangeEvent['type']): ExchangeEvent[] {
  return r.events.filter((e) => e.type === type);
}

function btc(h: Harness) {
  return h.ex.state.marketByName.get(BTC)!;
}

function digestSound(h: Harness): void {
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
}

/** A funded market with a first trade at 500,000 (the triggers' reference) and an ask 6% above. */
function tradedMarket(): Harness {
  const h = new Harness();
  for (const k of [maker, taker, alice, bob]) h.fund(k, 1_000_000n * USDC);
  assert.equal(code(h.one(maker, limit(BTC, 'sell', 500_000, 1))), undefined);
  assert.equal(code(h.one(taker, limit(BTC, 'buy', 500_000, 1))), undefined);
  assert.equal(btc(h).auction!.monitor.lastPriceTicks, 500_000);
  assert.equal(code(h.one(maker, limit(BTC, 'sell', 530_000, 3))), undefined);
  return h;
}

/** Starts an auction: a GTC buy that would trade at 530,000 (beyond 525,000). */
function inAuction(): { h: Harness; started: BlockResult } {
  const h = tradedMarket();
  const started = h.block([h.tx(taker, limit(BTC, 'buy', 535_000, 2))]);
  return { h, started };
}

test('a trade beyond a trigger does not happen: the market enters a call auction', () => {
  const { h, started } = inAuction();
  const a = started.results[0]!.actions[0]!;
  assert.ok(a.ok && a.order !== undefined);
  assert.equal(a.order.status, 'rested');
  assert.equal(a.order.reason, 'AuctionTriggered');
  assert.equal(a.order.filledLots, 0);
  assert.equal(a.order.restedLots, 2);
  const [e] = events(started, 'auctionStarted');
  assert.deepEqual(e, {
    type: 'auctionStarted',
    market: BTC,
    priceTicks: 530_000,
    endMs: h.timeMs + AUCTION_MS,
  });
  const m = btc(h);
  assert.ok(m.auction!.active);
  // The book is not crossed: the buy waits among the auction orders.
  assert.equal(m.book.bestBidTicks(), undefined);
  assert.equal(m.book.bestAskTicks(), 530_000);
  assert.equal(m.auction!.bids.bestBidTicks(), 535_000);
  assert.equal(h.account(taker)!.positions[0]!.sizeLots, 1, 'only the first trade happened');
  digestSound(h);
});

test('fills within the bounds stand; an IOC remainder beyond them is cancelled and starts nothing', () => {
  const h = tradedMarket();
  assert.equal(code(h.one(maker, limit(BTC, 'sell', 520_000, 1))), undefined);
  const r = h.block([h.tx(taker, limit(BTC, 'buy', 540_000, 4, { timeInForce: 'IOC' }))]);
  const a = r.results[0]!.actions[0]!;
  assert.ok(a.ok && a.order !== undefined);
  assert.equal(a.order.status, 'cancelled');
  assert.equal(a.order.reason, 'IocRemainder');
  assert.equal(a.order.filledLots, 1);
  assert.deepEqual(
    a.order.fills.map((f) => f.priceTicks),
    [520_000],
  );
  assert.equal(a.order.cancelledLots, 3);
  assert.equal(events(r, 'auctionStarted').length, 0);
  assert.equal(btc(h).auction!.active, false);
  assert.equal(btc(h).auction!.monitor.lastPriceTicks, 520_000);
  // The same order GTC would wait for the trade beyond the bound: that one starts the auction.
  const gtc = action(h.one(taker, limit(BTC, 'buy', 540_000, 1)));
  assert.ok(gtc.ok && gtc.order !== undefined);
  assert.deepEqual([gtc.order.status, gtc.order.reason], ['rested', 'AuctionTriggered']);
  assert.ok(btc(h).auction!.active);
});

test('a FOK that would breach is cancelled whole and starts nothing', () => {
  const h = tradedMarket();
  const r = h.block([h.tx(taker, limit(BTC, 'buy', 540_000, 1, { timeInForce: 'FOK' }))]);
  const a = r.results[0]!.actions[0]!;
  assert.ok(a.ok && a.order !== undefined);
  assert.deepEqual(
    [a.order.status, a.order.reason, a.order.filledLots, a.order.cancelledLots],
    ['cancelled', 'FokUnfillable', 0, 1],
  );
  assert.equal(events(r, 'auctionStarted').length, 0);
  assert.equal(btc(h).auction!.active, false);
});

test('one account cannot hold a market in auction with orders that cannot wait', () => {
  // A bid left beyond the bound (nothing to take when it came) and an IOC or
  // FOK sell into it, repeated after every auction, used to stop the market
  // at no cost: nothing traded and nothing waited.
  const h = tradedMarket();
  // Above the 525,000 bound, below the ask at 530,000: it rests.
  const bid = action(h.one(alice, limit(BTC, 'buy', 528_000, 1)));
  assert.ok(bid.ok && bid.order?.status === 'rested');
  for (const timeInForce of ['IOC', 'FOK'] as const) {
    const r = h.block([h.tx(bob, limit(BTC, 'sell', 528_000, 1, { timeInForce }))]);
    assert.equal(events(r, 'auctionStarted').length, 0, `${timeInForce}`);
    assert.equal(btc(h).auction!.active, false);
  }
  assert.equal(btc(h).book.bestBidTicks(), 528_000);
  // Alice's own sell never trades with her bid: self-trade prevention cancels
  // the bid (cancelResting), as it would without triggers, and starts nothing.
  const r = h.block([h.tx(alice, limit(BTC, 'sell', 528_000, 1, { timeInForce: 'IOC' }))]);
  assert.equal(events(r, 'auctionStarted').length, 0);
  assert.equal(btc(h).book.bestBidTicks(), undefined);
});

test('during an auction IOC, FOK and market orders are refused with MarketInAuction', () => {
  const { h } = inAuction();
  const market: Action = {
    kind: 'placeOrder',
    instrument: BTC,
    side: 'buy',
    type: 'market',
    sizeLots: 1,
    timeInForce: 'IOC',
    reduceOnly: false,
    stp: 'cancelResting',
  };
  assert.equal(code(h.one(alice, market)), 'MarketInAuction');
  assert.equal(
    code(h.one(alice, limit(BTC, 'buy', 530_000, 1, { timeInForce: 'IOC' }))),
    'MarketInAuction',
  );
  assert.equal(
    code(h.one(alice, limit(BTC, 'buy', 530_000, 1, { timeInForce: 'FOK' }))),
    'MarketInAuction',
  );
  // Reduce-only orders execute as IOC: refused too.
  assert.equal(
    code(h.one(taker, limit(BTC, 'sell', 400_000, 1, { reduceOnly: true }))),
    'MarketInAuction',
  );
  // The other market trades on.
  assert.equal(code(h.one(alice, limit(ETH, 'buy', 300_000, 1))), undefined);
});

test('during an auction GTC and post-only orders accumulate without trading; cancels and amends work', () => {
  const { h } = inAuction();
  const m = btc(h);
  const before = h.ex.state.feePoolQuote;
  // A crossing bid and a post-only ask below it: nothing trades.
  const bid = action(h.one(alice, limit(BTC, 'buy', 540_000, 1)));
  assert.ok(bid.ok && bid.order!.status === 'rested' && bid.order!.fills.length === 0);
  const ask = action(h.one(bob, limit(BTC, 'sell', 520_000, 2, { timeInForce: 'postOnly' })));
  assert.ok(ask.ok && ask.order!.status === 'rested');
  assert.equal(h.ex.state.feePoolQuote, before);
  assert.equal(m.auction!.bids.orderCount + m.auction!.asks.orderCount, 3);
  // Margin is reserved for them as for resting orders.
  assert.equal(m.restingLots(h.account(bob)!.index, 'sell'), 2);
  // Amend: a smaller size at the same price stays in place; a new price moves to the back.
  const bobOrder = ask.order!.orderId;
  assert.equal(
    code(h.one(bob, { kind: 'amend', instrument: BTC, orderId: bobOrder, sizeLots: 1 })),
    undefined,
  );
  assert.equal(m.auction!.asks.order(bobOrder)!.sizeLots, 1);
  // A resting order of the book moves among the auction orders when re-priced.
  const resting = [...h.ex.state.orders.values()].find(
    (o) => m.book.order(o.orderId) !== undefined,
  )!;
  const seq = resting.seq;
  assert.equal(
    code(
      h.one(maker, {
        kind: 'amend',
        instrument: BTC,
        orderId: resting.orderId,
        priceTicks: 531_000,
      }),
    ),
    undefined,
  );
  assert.equal(m.book.order(resting.orderId), undefined);
  assert.equal(m.auction!.asks.order(resting.orderId)!.priceTicks, 531_000);
  assert.ok(h.ex.state.orders.get(resting.orderId)!.seq > seq);
  // Cancel works on auction orders.
  assert.equal(
    code(h.one(alice, { kind: 'cancel', instrument: BTC, orderId: bid.order!.orderId })),
    undefined,
  );
  assert.equal(m.auction!.bids.order(bid.order!.orderId), undefined);
  assert.equal(h.ex.state.orders.has(bid.order!.orderId), false);
  digestSound(h);
});

test('an order beyond the account margin is refused during an auction too', () => {
  const { h } = inAuction();
  const poor = key('poor');
  h.fund(poor, 10n * USDC);
  assert.equal(code(h.one(poor, limit(BTC, 'buy', 530_000, 1_000))), 'InsufficientMargin');
});

test('the uncross trades every crossing order at one volume-maximising price, in price-time priority', () => {
  const { h } = inAuction();
  const m = btc(h);
  // Auction orders: bids 535,000×2 (taker, first), 532,000×2 (alice), 532,000×1 (bob, later);
  // asks 530,000×3 (maker, resting since before), 528,000×1 (maker). Volume 4 at
  // 530,000 and at 532,000 (imbalance 1 at both): 530,000 is closer to 500,000.
  h.one(alice, limit(BTC, 'buy', 532_000, 2));
  h.one(bob, limit(BTC, 'buy', 532_000, 1));
  h.one(maker, limit(BTC, 'sell', 528_000, 1));
  const side = (s: 'buy' | 'sell'): AuctionOrder[] =>
    [m.book, m.auction!.bookOf(s)].flatMap((b) =>
      [...b.ordersOf(s)].map((o) => ({
        orderId: o.orderId,
        priceTicks: o.priceTicks,
        sizeLots: o.sizeLots,
        seq: h.ex.state.orders.get(o.orderId)!.seq,
      })),
    );
  const expected = uncross(side('buy'), side('sell'), 500_000)!;
  assert.equal(expected.volumeLots, 4);
  assert.equal(expected.priceTicks, 530_000);
  const cash = [maker, taker, alice, bob].map((k) => h.account(k)!.cashQuote);
  const longBefore = m.longLots;

  // Not yet: the block before the end leaves it alone.
  const early = h.block([], m.auction!.monitor.auctionEndMs - 1 - h.timeMs);
  assert.equal(events(early, 'auctionEnded').length, 0);
  const end = h.block([], 1);
  const trades = events(end, 'auctionTrade') as Extract<ExchangeEvent, { type: 'auctionTrade' }>[];
  const [ended] = events(end, 'auctionEnded');
  assert.deepEqual(ended, {
    type: 'auctionEnded',
    market: BTC,
    priceTicks: 530_000,
    volumeLots: 4,
  });
  assert.ok(
    trades.every((t) => t.priceTicks === expected.priceTicks),
    'one price',
  );
  assert.deepEqual(
    trades.map((t) => [t.buyOrderId, t.sellOrderId, t.sizeLots]),
    expected.fills.map((f) => [f.buyOrderId, f.sellOrderId, f.sizeLots]),
  );
  // Priority: the 535,000 bid fills first, then alice's earlier 532,000 bid before bob's.
  const buyers = trades.map((t) => t.buyAccount);
  assert.deepEqual(
    [...new Set(buyers)],
    [h.account(taker)!.index, h.account(alice)!.index],
    'bob, last at 532,000, gets nothing',
  );
  assert.equal(h.account(taker)!.positions[0]!.sizeLots, 1 + 2);
  assert.equal(h.account(alice)!.positions[0]!.sizeLots, 2);
  assert.equal(m.longLots, longBefore + 4);
  assert.equal(m.longLots, m.shortLots);
  // Fees: each side half a taker fee, to the fee pool; money only moved.
  const totalCash = [maker, taker, alice, bob].reduce((s, k) => s + h.account(k)!.cashQuote, 0n);
  const fees = trades.reduce((s, t) => s + t.buyFeeQuote + t.sellFeeQuote, 0n);
  assert.ok(fees > 0n);
  assert.equal(cash.reduce((s, c) => s + c, 0n) - totalCash, fees);
  // Continuous trading resumes; what is left rests uncrossed in the book.
  assert.ok(!m.auction!.active);
  assert.equal(m.auction!.bids.orderCount + m.auction!.asks.orderCount, 0);
  const bid = m.book.bestBidTicks()!;
  const ask = m.book.bestAskTicks();
  assert.ok(ask === undefined || bid < ask);
  assert.equal(m.auction!.monitor.lastPriceTicks, expected.priceTicks);
  const ioc = action(h.one(alice, limit(BTC, 'sell', bid, 1, { timeInForce: 'IOC' })));
  assert.ok(ioc.ok && ioc.order!.filledLots === 1);
  digestSound(h);
});

test("before the market's first trade, the uncross breaks a tie between prices by their distance to the mark", () => {
  const h = new Harness();
  for (const k of [maker, taker, alice, bob]) h.fund(k, 1_000_000n * USDC);
  const m = btc(h);
  assert.equal(m.auction!.monitor.lastPriceTicks, 0, 'no trade yet');
  assert.equal(m.markTicks, 500_000);
  // The first trade would be at 530,000, beyond 5% of the mark: an auction.
  assert.equal(code(h.one(maker, limit(BTC, 'sell', 530_000, 1))), undefined);
  const started = action(h.one(taker, limit(BTC, 'buy', 540_000, 1)));
  assert.ok(started.ok && started.order!.reason === 'AuctionTriggered', 'the auction started');
  // Bids 540,000×1 and 508,000×10, asks 530,000×1 and 490,000×10: volume 10 and
  // imbalance 1 at 490,000 and at 508,000 alike. 508,000 is the closer to the
  // mark (8,000 ticks against 10,000); the lower price would be 490,000.
  assert.equal(code(h.one(alice, limit(BTC, 'buy', 508_000, 10))), undefined);
  assert.equal(code(h.one(bob, limit(BTC, 'sell', 490_000, 10))), undefined);
  const end = h.block([], AUCTION_MS);
  assert.equal(m.markTicks, 500_000, 'the mark of the block');
  assert.deepEqual(events(end, 'auctionEnded')[0], {
    type: 'auctionEnded',
    market: BTC,
    priceTicks: 508_000,
    volumeLots: 10,
  });
  digestSound(h);
});

test('an auction with nothing crossing ends without trades and keeps every order', () => {
  const { h } = inAuction();
  const m = btc(h);
  // Cancel the ask the trigger would have hit: nothing crosses any more.
  const ask = [...h.ex.state.orders.values()].find((o) => m.book.order(o.orderId) !== undefined)!;
  h.one(maker, { kind: 'cancel', instrument: BTC, orderId: ask.orderId });
  const end = h.block([], AUCTION_MS);
  assert.deepEqual(events(end, 'auctionEnded')[0], {
    type: 'auctionEnded',
    market: BTC,
    priceTicks: 0,
    volumeLots: 0,
  });
  assert.equal(m.book.bestBidTicks(), 535_000, 'the triggering bid rests in the book');
  assert.equal(m.auction!.monitor.lastPriceTicks, 500_000);
  digestSound(h);
});

test('a snapshot taken mid-auction restores an identical exchange that goes on identically', () => {
  const { h } = inAuction();
  h.one(alice, limit(BTC, 'buy', 532_000, 2));
  h.one(bob, limit(BTC, 'sell', 528_000, 2, { goodTilMs: h.timeMs + 10_000 }));
  const restored = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
  assert.deepEqual(restored.appHash, h.ex.appHash);
  assert.deepEqual(restored.digestBytes(), h.ex.digestBytes());
  const twin = new Harness(undefined, undefined, restored);
  const txs = (x: Harness) => [
    x.tx(alice, limit(BTC, 'sell', 529_000, 1), { nonce: 10_000_001 }),
    x.tx(bob, { kind: 'cancelAll', instrument: BTC }, { nonce: 10_000_002 }),
  ];
  const steps: [number, (x: Harness) => ReturnType<Harness['tx']>[]][] = [
    [1_000, txs],
    [AUCTION_MS, () => []],
    [
      1_000,
      (x) => [
        x.tx(taker, limit(BTC, 'sell', 500_000, 1, { timeInForce: 'IOC' }), { nonce: 10_000_003 }),
      ],
    ],
  ];
  for (const [dt, make] of steps) {
    const a = h.block(make(h), dt);
    const b = twin.block(make(twin), dt);
    assert.deepEqual(b.appHash, a.appHash);
    assert.deepEqual(JSON.stringify(b, big), JSON.stringify(a, big));
  }
  assert.ok(!btc(h).auction!.active);
  assert.deepEqual(encodeSnapshot(restored), encodeSnapshot(h.ex));
});

function big(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? `${v}` : v instanceof Uint8Array ? [...v] : v;
}

test('without triggers a market trades at any price, as before', () => {
  const g: Genesis = genesis();
  g.markets = g.markets.map(({ triggers: _, ...m }) => m);
  const h = new Harness(g);
  h.fund(maker, 1_000_000n * USDC);
  h.fund(taker, 1_000_000n * USDC);
  h.one(maker, limit(BTC, 'sell', 500_000, 1));
  h.one(taker, limit(BTC, 'buy', 500_000, 1));
  h.one(maker, limit(BTC, 'sell', 600_000, 1));
  const a = action(h.one(taker, limit(BTC, 'buy', 600_000, 1)));
  assert.ok(a.ok && a.order!.status === 'filled');
  assert.equal(btc(h).auction, null);
});

test('triggers are validated and round-trip in the genesis sections (format 3, or 4 with a mark interval)', () => {
  const g = genesis();
  const bytes = encodeGenesis(g);
  assert.equal(bytes[0], g.listing?.markIntervalMs === undefined ? 3 : 4);
  assert.deepEqual(decodeGenesis(bytes), g);
  for (const bad of [
    { horizonMs: 0, maxMoveBps: 500, auctionMs: 1_000 },
    { horizonMs: 60_000, maxMoveBps: 0, auctionMs: 1_000 },
    { horizonMs: 60_000, maxMoveBps: 500, auctionMs: 0 },
    { horizonMs: 60_000, maxMoveBps: 500.5, auctionMs: 1_000 },
  ]) {
    const b = genesis();
    b.markets[0] = { ...b.markets[0]!, triggers: [bad] };
    assert.throws(() => new Exchange(b), GenesisError);
  }
  const many = genesis();
  many.markets[0] = {
    ...many.markets[0]!,
    triggers: Array.from({ length: 9 }, () => ({ horizonMs: 1, maxMoveBps: 1, auctionMs: 1 })),
  };
  assert.throws(() => new Exchange(many), /at most 8/);
  void VALIDATORS;
});

test('random flows through auctions keep the invariants, the digest and snapshots sound', () => {
  let auctions = 0;
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          who: fc.integer({ min: 0, max: 3 }),
          buy: fc.boolean(),
          awayBps: fc.integer({ min: -900, max: 900 }),
          sizeLots: fc.integer({ min: 1, max: 5 }),
          tif: fc.constantFrom('GTC', 'GTC', 'IOC', 'FOK', 'postOnly', 'cancelAll', 'amend'),
          dtMs: fc.constantFrom(1_000, 5_000, 20_000),
        }),
        { minLength: 5, maxLength: 40 },
      ),
      (steps) => {
        const h = new Harness();
        const traders = [maker, taker, alice, bob];
        for (const k of traders) h.fund(k, 1_000_000n * USDC);
        for (const s of steps) {
          const k = traders[s.who]!;
          const price = 500_000 + Math.trunc((500_000 * s.awayBps) / 10_000);
          let a: Action;
          if (s.tif === 'cancelAll') a = { kind: 'cancelAll', instrument: BTC };
          else if (s.tif === 'amend') {
            const mine = [...h.ex.state.orders.values()].find((o) => o.account === h.account(k));
            if (mine === undefined) continue;
            a = { kind: 'amend', instrument: BTC, orderId: mine.orderId, priceTicks: price };
          } else a = limit(BTC, s.buy ? 'buy' : 'sell', price, s.sizeLots, { timeInForce: s.tif });
          auctions += events(h.block([h.tx(k, a)], s.dtMs), 'auctionEnded').length;
          digestSound(h);
        }
        const restored = decodeSnapshot(encodeSnapshot(h.ex));
        assert.deepEqual(restored.appHash, h.ex.appHash);
        h.block([], 60_000);
        assert.ok(!btc(h).auction!.active);
        digestSound(h);
      },
    ),
    { seed: 7, numRuns: 40 },
  );
  assert.ok(auctions >= 3, `${auctions} auctions ended`);
});
