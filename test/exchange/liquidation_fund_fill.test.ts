// A liquidation past the bankruptcy price (docs/exchange.md, "Liquidation and
// deleveraging", step 3b): what the book cannot take at the bankruptcy price
// fills through the book past it, the insurance fund paying each fill's loss
// beyond that price, as far as the fund holds and no further than the mark ∓
// a lot's maintenance margin; only the rest is deleveraged.
//
// The same situation throughout: o long 1 BTC at $50,000 with $2,600 of
// collateral (its taker fee paid, $2,575 left), the mark at $48,000 (o's
// equity $575, below its $1,440 maintenance): its bankruptcy price is
// $47,425 (474,250 ticks), the fund's limit $48,000 − 3% = $46,560 (465,600
// ticks). Below the bankruptcy price, bids at $47,400 and $47,300. k = 10
// quote units per tick·lot.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, USDC, genesis, key, limit } from './helpers.ts';
import type { BlockResult, ExchangeEvent } from '../../src/exchange/index.ts';
import type { PriceTrigger } from '../../src/exchange/auction/monitor.ts';
import { equityQuote } from '../../src/exchange/margin.ts';

const BTC = 'BTC-PERPETUAL';
const ONE_BTC = 10_000;
const BANKRUPTCY = 474_250;

interface Setup {
  fundQuote: bigint;
  /** Bids resting below the bankruptcy price: [price ticks, lots]. */
  bids: readonly (readonly [number, number])[];
  triggers?: PriceTrigger[];
  feePpm?: number;
  /** The BTC price of the liquidation's block, $48,000 unless given. */
  usd?: bigint;
}

function liquidated(s: Setup) {
  const markets = genesis().markets.map((m) => ({
    ...m,
    liquidationFeePpm: s.feePpm ?? 0,
    triggers: s.triggers ?? [],
  }));
  const h = new Harness(genesis({ markets, insuranceFundQuote: s.fundQuote }));
  const [o, c, bidder] = [key('fund-fill-o'), key('fund-fill-c'), key('fund-fill-bidder')];
  h.fund(o, 2_600n * USDC);
  h.fund(c, 500_000n * USDC);
  h.fund(bidder, 500_000n * USDC);
  assert.ok(h.one(c, limit(BTC, 'sell', 500_000, ONE_BTC)).actions[0]!.ok, 'c sells');
  assert.ok(h.one(o, limit(BTC, 'buy', 500_000, ONE_BTC)).actions[0]!.ok, 'o buys');
  for (const [price, lots] of s.bids) {
    assert.ok(h.one(bidder, limit(BTC, 'buy', price, lots)).actions[0]!.ok, `bid at ${price}`);
  }
  const state = h.ex.state;
  // Equity at the bankruptcy price exactly zero: $2,575 − ($50,000 − $47,425).
  assert.equal(h.account(o)!.cashQuote, -47_425n * USDC, "o's cash after its taker fee");
  const fundBefore = state.insuranceQuote;
  const usd = s.usd ?? 48_000n;
  h.oracle = { ...h.oracle, BTC: usd * USDC };
  const r = h.block([]);
  assert.equal(state.marketByName.get(BTC)!.markTicks, Number(usd * 10n), 'the mark');
  const of = (type: ExchangeEvent['type']) => r.events.filter((e) => e.type === type);
  return { h, r, o, c, bidder, fundBefore, of };
}

const fills = (r: BlockResult) =>
  r.events.flatMap((e) =>
    e.type === 'liquidationFill' ? [[e.makerAccount, e.priceTicks, e.sizeLots]] : [],
  );
const covers = (r: BlockResult) =>
  r.events.flatMap((e) => (e.type === 'insuranceCover' ? [[e.account, e.amountQuote]] : []));
const deleverages = (r: BlockResult) =>
  r.events.flatMap((e) =>
    e.type === 'deleverage' ? [[e.counterparty, e.priceTicks, e.sizeLots]] : [],
  );

test('a thin book below the bankruptcy price: the fund pays the fills past it and nothing is deleveraged', () => {
  const { h, r, o, c, bidder, fundBefore, of } = liquidated({
    fundQuote: 10_000n * USDC,
    bids: [
      [474_000, 6_000],
      [473_000, 6_000],
    ],
  });
  const b = h.account(bidder)!.index;
  assert.deepEqual(fills(r), [
    [b, 474_000, 6_000],
    [b, 473_000, 4_000],
  ]);
  // 6,000 × 250 ticks × 10 + 4,000 × 1,250 ticks × 10 = $15 + $50.
  const paid = 65n * USDC;
  assert.deepEqual(covers(r), [[h.account(o)!.index, paid]]);
  assert.equal(h.ex.state.insuranceQuote, fundBefore - paid, 'the fund paid exactly that');
  assert.deepEqual(deleverages(r), [], 'no deleveraging');
  const liq = of('liquidation');
  assert.equal(liq.length, 1, 'one liquidation');
  assert.ok(liq[0]!.type === 'liquidation' && liq[0]!.closedLots === ONE_BTC, 'closed in full');
  // o ends as at its bankruptcy price: no position, zero equity, not below.
  assert.equal(h.account(o)!.positionCount, 0);
  assert.equal(h.account(o)!.cashQuote, 0n);
  // c's short is untouched; the bidder is long what it bought.
  assert.equal(h.account(c)!.positions[0]!.sizeLots, -ONE_BTC);
  assert.equal(h.account(bidder)!.positions[0]!.sizeLots, ONE_BTC);
  assert.equal(h.ex.state.deficits.size, 0);
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});

test('a fund too small for every fill: the fills it can pay, then the rest deleveraged at the bankruptcy price', () => {
  const { h, r, o, c, bidder, fundBefore, of } = liquidated({
    fundQuote: 30n * USDC,
    bids: [
      [474_000, 6_000],
      [473_000, 6_000],
    ],
  });
  const b = h.account(bidder)!.index;
  // $15 for the 6,000 lots at 474,000; the $15 left pays 1,200 lots at 473,000 ($0.0125 each).
  assert.deepEqual(fills(r), [
    [b, 474_000, 6_000],
    [b, 473_000, 1_200],
  ]);
  assert.deepEqual(covers(r), [[h.account(o)!.index, 30n * USDC]]);
  assert.equal(fundBefore, 30n * USDC);
  assert.equal(h.ex.state.insuranceQuote, 0n, 'the fund paid all it held, no more');
  assert.deepEqual(deleverages(r), [[h.account(c)!.index, BANKRUPTCY, 2_800]]);
  const liq = of('liquidation');
  assert.ok(
    liq[0]!.type === 'liquidation' && liq[0]!.closedLots === 7_200,
    'the book closed 7,200',
  );
  assert.equal(h.account(o)!.positionCount, 0);
  assert.equal(h.account(o)!.cashQuote, 0n);
  assert.equal(h.account(c)!.positions[0]!.sizeLots, -ONE_BTC + 2_800);
  // What the fund could not pay for stays in the book.
  const market = h.ex.state.marketByName.get(BTC)!;
  assert.equal(market.book.bids.levels.at(-1)!.priceTicks, 473_000);
  assert.equal(market.book.bids.levels.at(-1)!.head!.sizeLots, 4_800);
});

test('an empty fund: nothing fills past the bankruptcy price, all of it is deleveraged there as before', () => {
  const { h, r, c, fundBefore, of } = liquidated({
    fundQuote: 0n,
    bids: [[474_000, 6_000]],
  });
  assert.deepEqual(fills(r), []);
  assert.deepEqual(of('insuranceCover'), []);
  assert.equal(fundBefore, 0n);
  assert.equal(h.ex.state.insuranceQuote, 0n);
  assert.deepEqual(deleverages(r), [[h.account(c)!.index, BANKRUPTCY, ONE_BTC]]);
  assert.equal(h.ex.state.marketByName.get(BTC)!.book.bids.levels.at(-1)!.head!.sizeLots, 6_000);
});

test('the fund pays for no fill past the mark less a lot maintenance margin: a bid below $46,560 is left, the rest deleveraged', () => {
  const { h, r, c, bidder, fundBefore, of } = liquidated({
    fundQuote: 10_000n * USDC,
    bids: [
      [474_000, 2_000],
      [465_600, 1_000],
      [465_599, 5_000],
    ],
  });
  const b = h.account(bidder)!.index;
  assert.deepEqual(fills(r), [
    [b, 474_000, 2_000],
    [b, 465_600, 1_000],
  ]);
  // 2,000 × 250 × 10 + 1,000 × 8,650 × 10.
  const paid = 5_000_000n + 86_500_000n;
  assert.equal(h.ex.state.insuranceQuote, fundBefore - paid);
  assert.equal(of('insuranceCover').length, 1);
  assert.deepEqual(deleverages(r), [[h.account(c)!.index, BANKRUPTCY, 7_000]]);
});

test('price monitoring stops a close past the bankruptcy price without an auction: the rest is deleveraged', () => {
  // 5% in 5 minutes from the last trade ($50,000): no trade below $47,500.
  const triggers = [{ horizonMs: 300_000, maxMoveBps: 500, auctionMs: 30_000 }];
  const { h, r, c, fundBefore, of } = liquidated({
    fundQuote: 10_000n * USDC,
    bids: [[474_000, 6_000]],
    triggers,
  });
  assert.deepEqual(fills(r), []);
  assert.deepEqual(of('auctionStarted'), []);
  assert.equal(h.ex.state.marketByName.get(BTC)!.auction!.active, false);
  assert.equal(h.ex.state.insuranceQuote, fundBefore);
  assert.deepEqual(deleverages(r), [[h.account(c)!.index, BANKRUPTCY, ONE_BTC]]);
});

test('the liquidation fee comes out of what the account keeps at the bankruptcy price: none is left, none is charged', () => {
  const { h, o, fundBefore, of } = liquidated({
    fundQuote: 10_000n * USDC,
    bids: [[474_000, ONE_BTC]],
    feePpm: 10_000,
  });
  const liq = of('liquidation');
  assert.ok(liq[0]!.type === 'liquidation' && liq[0]!.feeQuote === 0n, 'no fee');
  assert.equal(h.ex.state.insuranceQuote, fundBefore - 25n * USDC);
  assert.equal(equityQuote(h.ex.state, h.account(o)!), 0n);
});

test('an account below zero: the fund covers it to the mark (step 2), then pays the fills past the mark', () => {
  // At $47,000 o's equity is −$425: covered, its bankruptcy price is the mark.
  const { h, r, o, fundBefore, of } = liquidated({
    fundQuote: 10_000n * USDC,
    bids: [
      [469_000, 6_000],
      [468_000, 6_000],
    ],
    usd: 47_000n,
  });
  assert.deepEqual(
    fills(r).map((f) => f.slice(1)),
    [
      [469_000, 6_000],
      [468_000, 4_000],
    ],
  );
  // Past the mark: 6,000 × 1,000 × 10 + 4,000 × 2,000 × 10 = $60 + $80, after
  // the fills; the cover's event comes at the end of the liquidation.
  assert.deepEqual(
    of('insuranceCover').map((e) => e.type === 'insuranceCover' && e.amountQuote),
    [140n * USDC, 425n * USDC],
  );
  assert.equal(h.ex.state.insuranceQuote, fundBefore - 565n * USDC);
  assert.deepEqual(deleverages(r), []);
  assert.equal(h.account(o)!.positionCount, 0);
  assert.equal(h.account(o)!.cashQuote, 0n);
});

test("the fund pays for no fill outside the market's price band: a bid placed when the mark was lower is left", () => {
  for (const band of [20_000, undefined]) {
    const markets = genesis().markets.map((m) => ({
      ...m,
      liquidationFeePpm: 0,
      triggers: [],
      ...(band !== undefined ? { priceBandPpm: band } : {}),
    }));
    const h = new Harness(genesis({ markets, insuranceFundQuote: 10_000n * USDC }));
    const [o, c, bidder] = [key('band-o'), key('band-c'), key('band-bidder')];
    h.fund(o, 2_600n * USDC);
    h.fund(c, 500_000n * USDC);
    h.fund(bidder, 500_000n * USDC);
    // At $48,000 the band (2%) reaches down to 470,400 ticks: the bid rests.
    h.oracle = { ...h.oracle, BTC: 48_000n * USDC };
    assert.ok(h.one(bidder, limit(BTC, 'buy', 474_000, 6_000)).actions[0]!.ok, 'the bid');
    h.oracle = { ...h.oracle, BTC: 50_000n * USDC };
    assert.ok(h.one(c, limit(BTC, 'sell', 500_000, ONE_BTC)).actions[0]!.ok, 'c sells');
    assert.ok(h.one(o, limit(BTC, 'buy', 500_000, ONE_BTC)).actions[0]!.ok, 'o buys');
    // At $48,800 o is below maintenance ($1,375 against $1,464); its bankruptcy
    // price is still 474,250, the fund's limit 473,360, the band's low end 478,240.
    h.oracle = { ...h.oracle, BTC: 48_800n * USDC };
    const r = h.block([]);
    const cIndex = h.account(c)!.index;
    if (band !== undefined) {
      assert.deepEqual(fills(r), [], 'the band leaves the bid');
      assert.equal(h.ex.state.insuranceQuote, 10_000n * USDC);
      // Deleveraged at the band's low end, the slice's price, not below it.
      assert.deepEqual(deleverages(r), [[cIndex, 478_240, ONE_BTC]]);
    } else {
      assert.deepEqual(fills(r), [[h.account(bidder)!.index, 474_000, 6_000]], 'no band: filled');
      assert.equal(h.ex.state.insuranceQuote, 10_000n * USDC - 15n * USDC);
      assert.deepEqual(deleverages(r), [[cIndex, BANKRUPTCY, 4_000]]);
    }
  }
});
