import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decode, encode } from '../../../src/codec/wire.ts';
import { OrderBook } from '../../../src/exchange/book/index.ts';
import {
  checkOpenInterestCap,
  checkPriceBand,
  openInterestDelta,
  priceBand,
} from '../../../src/exchange/auction/bands.ts';
import type { PriceTrigger } from '../../../src/exchange/auction/monitor.ts';
import {
  MonitorParamsError,
  auctionDue,
  breachAuctionMs,
  endAuction,
  enterAuction,
  inAuction,
  monitorCodec,
  newMonitor,
  onTrade,
  validateTriggers,
} from '../../../src/exchange/auction/monitor.ts';
import type { AuctionOrder } from '../../../src/exchange/auction/uncross.ts';
import { bookOrders, uncross } from '../../../src/exchange/auction/uncross.ts';

test('price bands around the mark', () => {
  assert.deepEqual(priceBand(10_000, 50_000), [9_500, 10_500]);
  assert.equal(checkPriceBand(10_500, 10_000, 50_000), null);
  assert.equal(checkPriceBand(9_500, 10_000, 50_000), null);
  assert.equal(checkPriceBand(10_501, 10_000, 50_000)?.code, 'PriceOutsideBand');
  assert.equal(checkPriceBand(9_499, 10_000, 50_000)?.code, 'PriceOutsideBand');
  assert.equal(checkPriceBand(1, 0, 50_000), null);
  assert.deepEqual(priceBand(3, 999_999), [1, 5]);
});

test('open-interest caps refuse only increases past the cap', () => {
  assert.equal(checkOpenInterestCap(90, 10, 100), null);
  assert.equal(checkOpenInterestCap(90, 11, 100)?.code, 'OpenInterestCapExceeded');
  assert.equal(checkOpenInterestCap(150, -10, 100), null);
  assert.equal(checkOpenInterestCap(150, 0, 100), null);
  assert.equal(openInterestDelta(0, 0, 5), 5); // both open
  assert.equal(openInterestDelta(-5, 5, 5), -5); // both close
  assert.equal(openInterestDelta(-5, 0, 5), 0); // short buys back from a new short
  assert.equal(openInterestDelta(-2, 0, 5), 3);
});

const TRIGGERS: PriceTrigger[] = [
  { horizonMs: 60_000, maxMoveBps: 500, auctionMs: 30_000 },
  { horizonMs: 600_000, maxMoveBps: 1_000, auctionMs: 120_000 },
];

test('monitor: a move past a trigger starts an auction; windows restart after the horizon', () => {
  validateTriggers(TRIGGERS);
  assert.throws(
    () => validateTriggers([{ horizonMs: 0, maxMoveBps: 1, auctionMs: 1 }]),
    MonitorParamsError,
  );
  const s = newMonitor(TRIGGERS);
  assert.equal(breachAuctionMs(s, TRIGGERS, 1_000_000, 0), 0); // no reference yet
  onTrade(s, TRIGGERS, 10_000, 0);
  assert.equal(breachAuctionMs(s, TRIGGERS, 10_500, 1_000), 0);
  assert.equal(breachAuctionMs(s, TRIGGERS, 10_501, 1_000), 30_000);
  assert.equal(breachAuctionMs(s, TRIGGERS, 11_001, 1_000), 120_000);
  onTrade(s, TRIGGERS, 10_400, 30_000);
  // After 60 s the short window's reference is the last price, 10,400; the long one still 10,000.
  assert.equal(breachAuctionMs(s, TRIGGERS, 10_920, 60_000), 0);
  assert.equal(breachAuctionMs(s, TRIGGERS, 11_001, 60_000), 120_000);
  onTrade(s, TRIGGERS, 10_900, 60_000);
  assert.equal(s.triggers[0]!.referenceTicks, 10_400);
  assert.equal(s.triggers[1]!.referenceTicks, 10_000);
  const ms = breachAuctionMs(s, TRIGGERS, 8_999, 61_000);
  assert.equal(ms, 120_000);
  enterAuction(s, ms, 61_000);
  assert.ok(inAuction(s));
  assert.ok(!auctionDue(s, 180_999));
  assert.ok(auctionDue(s, 181_000));
  const codec = monitorCodec(TRIGGERS.length);
  assert.deepEqual(decode(codec, encode(codec, s)), s);
  endAuction(s, 9_500, 181_000);
  assert.ok(!inAuction(s));
  assert.deepEqual(s.triggers, [
    { referenceTicks: 9_500, windowStartMs: 181_000 },
    { referenceTicks: 9_500, windowStartMs: 181_000 },
  ]);
});

test('uncross: a worked example', () => {
  const bids: AuctionOrder[] = [
    { orderId: 1, priceTicks: 105, sizeLots: 5, seq: 1 },
    { orderId: 2, priceTicks: 103, sizeLots: 5, seq: 2 },
    { orderId: 3, priceTicks: 100, sizeLots: 10, seq: 3 },
  ];
  const asks: AuctionOrder[] = [
    { orderId: 4, priceTicks: 99, sizeLots: 4, seq: 4 },
    { orderId: 5, priceTicks: 102, sizeLots: 4, seq: 5 },
    { orderId: 6, priceTicks: 104, sizeLots: 10, seq: 6 },
  ];
  // At 102 and 103 demand is 10 and supply 8: volume 8, imbalance 2; 103 is closer to 104.
  const r = uncross(bids, asks, 104)!;
  assert.equal(r.priceTicks, 103);
  assert.equal(r.volumeLots, 8);
  assert.equal(r.imbalanceLots, 2);
  assert.deepEqual(r.fills, [
    { buyOrderId: 1, sellOrderId: 4, sizeLots: 4 },
    { buyOrderId: 1, sellOrderId: 5, sizeLots: 1 },
    { buyOrderId: 2, sellOrderId: 5, sizeLots: 3 },
  ]);
  assert.equal(uncross(bids, asks, 0)!.priceTicks, 102);
  assert.equal(
    uncross(
      [{ orderId: 1, priceTicks: 10, sizeLots: 1, seq: 0 }],
      [{ orderId: 2, priceTicks: 11, sizeLots: 1, seq: 0 }],
      10,
    ),
    null,
  );
  assert.equal(uncross([], [], 10), null);
});

const order = (side: number) =>
  fc
    .record({
      priceTicks: fc.integer({ min: 90, max: 110 }),
      sizeLots: fc.integer({ min: 1, max: 20 }),
    })
    .map((o) => ({ ...o, side }));

function volumeAt(
  bids: readonly AuctionOrder[],
  asks: readonly AuctionOrder[],
  p: number,
): [number, number] {
  let d = 0;
  let s = 0;
  for (const b of bids) if (b.priceTicks >= p) d += b.sizeLots;
  for (const a of asks) if (a.priceTicks <= p) s += a.sizeLots;
  return [d, s];
}

test('uncross maximizes volume (against brute force) and follows the tie-breaks', () => {
  fc.assert(
    fc.property(
      fc.array(order(0), { maxLength: 25 }),
      fc.array(order(1), { maxLength: 25 }),
      fc.integer({ min: 85, max: 115 }),
      (b, a, ref) => {
        const bids = b.map((o, i) => ({
          orderId: i + 1,
          priceTicks: o.priceTicks,
          sizeLots: o.sizeLots,
          seq: i,
        }));
        const asks = a.map((o, i) => ({
          orderId: 100 + i,
          priceTicks: o.priceTicks,
          sizeLots: o.sizeLots,
          seq: i,
        }));
        let bestVolume = 0;
        for (let p = 80; p <= 120; p++) {
          const [d, s] = volumeAt(bids, asks, p);
          bestVolume = Math.max(bestVolume, Math.min(d, s));
        }
        const r = uncross(bids, asks, ref);
        if (bestVolume === 0) {
          assert.equal(r, null);
          return;
        }
        assert.ok(r !== null);
        assert.equal(r.volumeLots, bestVolume);
        // Brute force over every order price with the same preference order.
        const prices = [...new Set([...bids, ...asks].map((o) => o.priceTicks))];
        const key = (p: number): number[] => {
          const [d, s] = volumeAt(bids, asks, p);
          return [-Math.min(d, s), Math.abs(d - s), Math.abs(p - ref), p];
        };
        prices.sort((x, y) => {
          const kx = key(x);
          const ky = key(y);
          for (let i = 0; i < 4; i++) if (kx[i] !== ky[i]) return kx[i]! - ky[i]!;
          return 0;
        });
        assert.equal(r.priceTicks, prices[0]);
        // Fills: total volume, at most each order's size, only orders that cross the price.
        let total = 0;
        const used = new Map<number, number>();
        for (const f of r.fills) {
          total += f.sizeLots;
          used.set(f.buyOrderId, (used.get(f.buyOrderId) ?? 0) + f.sizeLots);
          used.set(f.sellOrderId, (used.get(f.sellOrderId) ?? 0) + f.sizeLots);
        }
        assert.equal(total, r.volumeLots);
        for (const o of [...bids, ...asks]) {
          const u = used.get(o.orderId) ?? 0;
          assert.ok(u <= o.sizeLots);
        }
        for (const o of bids)
          if ((used.get(o.orderId) ?? 0) > 0) assert.ok(o.priceTicks >= r.priceTicks);
        for (const o of asks)
          if ((used.get(o.orderId) ?? 0) > 0) assert.ok(o.priceTicks <= r.priceTicks);
      },
    ),
  );
});

test('bookOrders reads a book in price-time priority', () => {
  const book = new OrderBook();
  let id = 0;
  const place = (side: 'buy' | 'sell', priceTicks: number, sizeLots: number): void => {
    book.place({ orderId: ++id, owner: id, side, priceTicks, sizeLots, timeInForce: 'GTC' });
  };
  place('buy', 99, 1);
  place('buy', 100, 2);
  place('buy', 99, 3);
  place('sell', 101, 4);
  place('sell', 102, 5);
  const { bids, asks } = bookOrders(book);
  assert.deepEqual(
    bids.map((o) => [o.orderId, o.priceTicks, o.sizeLots]),
    [
      [2, 100, 2],
      [1, 99, 1],
      [3, 99, 3],
    ],
  );
  assert.deepEqual(
    asks.map((o) => o.orderId),
    [4, 5],
  );
  assert.ok(bids[1]!.seq < bids[2]!.seq);
});
