// A liquidation within the market's price band (docs/exchange.md,
// "Liquidation and deleveraging", step 3): its order through the book is
// limited at the bankruptcy price no further from the mark than the band, as
// a trader's order would be, and what the book does not take there is
// deleveraged at that price.
//
// The situation: a bid rests at $47,500 from when BTC was at $47,100 (within
// that mark's 1% band). BTC goes to $50,000, o buys 1 BTC there with $2,600
// of collateral ($2,575 after its taker fee), and BTC falls to $48,100: o's
// equity is $675, below its $1,443 maintenance, its bankruptcy price $47,425
// (474,250 ticks); the band is $48,100 ± $481, its low end $47,619 (476,190
// ticks), above the bid. k = 10 quote units per tick·lot.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, USDC, genesis, key, limit } from './helpers.ts';
import type { ExchangeEvent } from '../../src/exchange/index.ts';

const BTC = 'BTC-PERPETUAL';
const ONE_BTC = 10_000;
const BAND_LOW = 476_190;

/** Runs blocks with BTC's oracle price at `usd` until the mark reaches it (2% per block at most). */
function moveTo(h: Harness, usd: bigint): ExchangeEvent[] {
  h.oracle = { ...h.oracle, BTC: usd * USDC };
  const events: ExchangeEvent[] = [];
  for (let i = 0; i < 10; i++) {
    events.push(...h.block([]).events);
    if (h.ex.state.marketByName.get(BTC)!.markTicks === Number(usd * 10n)) return events;
  }
  throw new Error(`the mark did not reach ${usd}`);
}

function liquidatedInBand(
  priceBandPpm: number | undefined,
  liquidationFeePpm = 0,
  liquidationQuoteMaxPerBlock?: bigint,
) {
  const markets = genesis().markets.map((m) => ({
    ...m,
    liquidationFeePpm,
    triggers: [],
    ...(liquidationQuoteMaxPerBlock !== undefined ? { liquidationQuoteMaxPerBlock } : {}),
    ...(priceBandPpm !== undefined ? { priceBandPpm } : {}),
  }));
  const h = new Harness(genesis({ markets, insuranceFundQuote: 10_000n * USDC }));
  const [o, c, bidder] = [key('band-o'), key('band-c'), key('band-bidder')];
  h.fund(o, 2_600n * USDC);
  h.fund(c, 500_000n * USDC);
  h.fund(bidder, 500_000n * USDC);
  moveTo(h, 47_100n);
  assert.ok(h.one(bidder, limit(BTC, 'buy', 475_000, ONE_BTC)).actions[0]!.ok, 'the bid rests');
  moveTo(h, 50_000n);
  assert.ok(h.one(c, limit(BTC, 'sell', 500_000, ONE_BTC)).actions[0]!.ok, 'c sells');
  assert.ok(h.one(o, limit(BTC, 'buy', 500_000, ONE_BTC)).actions[0]!.ok, 'o buys');
  assert.equal(h.account(o)!.cashQuote, -47_425n * USDC, "o's cash after its taker fee");
  moveTo(h, 49_000n);
  const events = moveTo(h, 48_100n);
  return { h, events, o, c, bidder };
}

const fills = (events: ExchangeEvent[]) =>
  events.flatMap((e) =>
    e.type === 'liquidationFill' ? [[e.makerAccount, e.priceTicks, e.sizeLots]] : [],
  );
const deleverages = (events: ExchangeEvent[]) =>
  events.flatMap((e) =>
    e.type === 'deleverage' ? [[e.counterparty, e.priceTicks, e.sizeLots]] : [],
  );

test('a liquidation sells no lower than the price band: the bid below it is not taken, the rest is deleveraged at the band', () => {
  const { h, events, o, c, bidder } = liquidatedInBand(10_000);
  assert.deepEqual(fills(events), [], 'nothing sold below the band');
  assert.deepEqual(deleverages(events), [[h.account(c)!.index, BAND_LOW, ONE_BTC]]);
  assert.equal(h.account(o)!.positionCount, 0, 'o closed');
  // Sold at $47,619 rather than its bankruptcy price $47,425: o keeps $194.
  assert.equal(h.account(o)!.cashQuote, 194n * USDC);
  assert.equal(h.account(bidder)!.positionCount, 0, 'the bid below the band did not trade');
  assert.equal(h.account(c)!.positionCount, 0, 'c closed, at $481 better than the mark');
  assert.ok(
    !events.some((e) => e.type === 'insuranceCover'),
    'the fund pays nothing: the band holds the slice short of the bankruptcy price',
  );
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});

test('the deleveraged slice pays the liquidation fee from what the band left the account', () => {
  const fund = (h: Harness) => h.ex.state.insuranceQuote;
  const { h, events, o, c } = liquidatedInBand(10_000, 2_000);
  assert.deepEqual(fills(events), []);
  assert.deepEqual(deleverages(events), [[h.account(c)!.index, BAND_LOW, ONE_BTC]]);
  // 0.2% of the $47,619 deleveraged: $95.238, from the $194 the band left o.
  const liquidation = events.find((e) => e.type === 'liquidation');
  assert.ok(liquidation !== undefined && liquidation.type === 'liquidation');
  assert.equal(liquidation.feeQuote, 95_238_000n);
  assert.equal(h.account(o)!.cashQuote, 194n * USDC - 95_238_000n);
  assert.equal(fund(h), 10_000n * USDC + 95_238_000n, 'the fee went to the insurance fund');
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});

test('without a band the same liquidation sells to the bid above its bankruptcy price', () => {
  const { h, events, o, bidder } = liquidatedInBand(undefined);
  assert.deepEqual(fills(events), [[h.account(bidder)!.index, 475_000, ONE_BTC]]);
  assert.deepEqual(deleverages(events), []);
  assert.equal(h.account(o)!.cashQuote, 75n * USDC, 'sold at $47,500: $75 above bankruptcy');
});

test("a position above the per-block cap is deleveraged at the band slice by slice, each slice's lots paying the fee once", () => {
  // A cap of $10,000 a block: 2,079 lots (floor(10,000 / 4.81)) at the
  // $48,100 mark. Each slice is deleveraged at the band's low end and pays
  // 0.2% of its own lots there; the next block's slice is another 2,079,
  // the fifth the last 1,684. Altogether 0.2% of the $47,619 the whole BTC
  // was deleveraged at (the slices' fees each rounded up: 4 units more), from
  // the $194 the band left o.
  const { h, events, o, c } = liquidatedInBand(10_000, 2_000, 10_000n * USDC);
  const all = [...events];
  for (let i = 0; i < 6; i++) all.push(...h.block([]).events);
  const cIndex = h.account(c)!.index;
  assert.deepEqual(deleverages(all), [
    [cIndex, BAND_LOW, 2_079],
    [cIndex, BAND_LOW, 2_079],
    [cIndex, BAND_LOW, 2_079],
    [cIndex, BAND_LOW, 2_079],
    [cIndex, BAND_LOW, 1_684],
  ]);
  assert.deepEqual(fills(all), []);
  const fees = all.flatMap((e) => (e.type === 'liquidation' ? [e.feeQuote] : []));
  // ceil(2,079 × $47.619 × 0.2%) and ceil(1,684 × $47.619 × 0.2%), in quote units.
  assert.deepEqual(fees, [19_799_981n, 19_799_981n, 19_799_981n, 19_799_981n, 16_038_080n]);
  assert.equal(h.account(o)!.positionCount, 0, 'o closed');
  assert.equal(h.account(o)!.cashQuote, 194n * USDC - 95_238_004n);
  assert.equal(h.ex.state.insuranceQuote, 10_000n * USDC + 95_238_004n);
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});
