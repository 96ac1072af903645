// Margin, liquidation, deleveraging and funding with hand-computed numbers.
// BTC-PERPETUAL: k = 10 quote units per tick·lot, 1 BTC = 10,000 lots,
// $50,000 = 500,000 ticks; maintenance 3%, liquidation fee 1%.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, USDC, genesis, key, limit } from './helpers.ts';
import { equityQuote, maintenanceMarginQuote } from '../../src/exchange/index.ts';

const BTC = 'BTC-PERPETUAL';
const ONE_BTC = 10_000;

/** a long 1 BTC at $50,000 with $2,600 of collateral, b short against it (taker a pays $25). */
function longAndShort(): { h: Harness; a: ReturnType<typeof key>; b: ReturnType<typeof key> } {
  const h = new Harness();
  const a = key('a');
  const b = key('b');
  h.fund(a, 2_600n * USDC);
  h.fund(b, 500_000n * USDC);
  assert.equal(h.one(b, limit(BTC, 'sell', 500_000, ONE_BTC)).actions[0]!.ok, true);
  assert.equal(h.one(a, limit(BTC, 'buy', 500_000, ONE_BTC)).actions[0]!.ok, true);
  assert.equal(h.account(a)!.cashQuote, (2_600n - 50_000n - 25n) * USDC);
  return { h, a, b };
}

test('maintenance: equity and requirement at the mark', () => {
  const { h, a } = longAndShort();
  h.oracle = { ...h.oracle, BTC: 48_900n * USDC };
  const r = h.block([]);
  assert.equal(r.events.filter((e) => e.type === 'liquidation').length, 0);
  const acct = h.account(a)!;
  // Equity 2,575 − 1,100 = $1,475; maintenance 3% of $48,900 = $1,467.
  assert.equal(equityQuote(h.ex.state, acct), 1_475n * USDC);
  assert.equal(maintenanceMarginQuote(h.ex.state, acct), 1_467n * USDC);
});

test('liquidation through the book: IOC bounded by the bankruptcy price, capped fee to insurance', () => {
  const { h, a } = longAndShort();
  const c = key('c');
  h.fund(c, 500_000n * USDC);
  assert.equal(h.one(c, limit(BTC, 'buy', 480_000, ONE_BTC)).actions[0]!.ok, true);
  // At $48,800: equity $1,375 < maintenance $1,464. Bankruptcy = 488,000 − 13,750 = 474,250 ticks.
  h.oracle = { ...h.oracle, BTC: 48_800n * USDC };
  const r = h.block([]);
  const liq = r.events.find((e) => e.type === 'liquidation');
  assert.ok(liq !== undefined && liq.type === 'liquidation');
  assert.equal(liq.closedLots, ONE_BTC);
  // Its one fill, reported before it: a sold to c's resting bid; c pays its maker fee (2 bp of $48,000).
  const fills = r.events.filter((e) => e.type === 'liquidationFill');
  assert.deepEqual(
    fills.map((f) => [
      f.account,
      f.side,
      f.makerAccount,
      f.priceTicks,
      f.sizeLots,
      f.makerFeeQuote,
    ]),
    [[h.account(a)!.index, 'sell', h.account(c)!.index, 480_000, ONE_BTC, 9_600_000n]],
  );
  assert.ok(r.events.indexOf(fills[0]!) < r.events.indexOf(liq));
  // Sold at c's bid $48,000: cash −47,425 + 48,000 = $575; fee min(1% × 48,000, equity) = $480.
  assert.equal(liq.feeQuote, 480n * USDC);
  assert.equal(h.account(a)!.cashQuote, 95n * USDC);
  assert.equal(h.account(a)!.positions[0]!.sizeLots, 0);
  assert.equal(h.ex.state.insuranceQuote, 480n * USDC);
  assert.equal(r.events.filter((e) => e.type === 'deleverage').length, 0);
});

test('auto-deleveraging: with no bid above the bankruptcy price, the most profitable short takes the position at it', () => {
  const { h, a, b } = longAndShort();
  const poor = key('poor-short');
  const c = key('c');
  h.fund(poor, 10_000n * USDC);
  h.fund(c, 500_000n * USDC);
  // A second, smaller and less levered short, opened at a worse price.
  assert.equal(h.one(c, limit(BTC, 'buy', 499_000, 100)).actions[0]!.ok, true);
  assert.equal(h.one(poor, limit(BTC, 'sell', 499_000, 100)).actions[0]!.ok, true);
  h.oracle = { ...h.oracle, BTC: 48_800n * USDC };
  const r = h.block([]);
  const adl = r.events.filter((e) => e.type === 'deleverage');
  assert.equal(adl.length, 1);
  const e = adl[0]!;
  assert.ok(e.type === 'deleverage');
  assert.equal(e.counterparty, h.account(b)!.index);
  assert.equal(e.priceTicks, 474_250);
  assert.equal(e.sizeLots, ONE_BTC);
  // Sold at the bankruptcy price: the account ends at exactly zero, no loss for anyone else.
  assert.equal(h.account(a)!.cashQuote, 0n);
  assert.equal(h.account(b)!.positions[0]!.sizeLots, 0);
  assert.equal(h.account(poor)!.positions[0]!.sizeLots, -100);
});

test('a gap below the bankruptcy price: the insurance fund covers what it can, deleveraging the rest', () => {
  const { h, a, b } = longAndShort();
  // At $47,000 equity is 2,575 − 3,000 = −$425, and the insurance fund is empty.
  h.oracle = { ...h.oracle, BTC: 47_000n * USDC };
  const r = h.block([]);
  const adl = r.events.find((e) => e.type === 'deleverage');
  assert.ok(adl !== undefined && adl.type === 'deleverage');
  // Bankruptcy = 470,000 + 4,250 = 474,250: the short buys back above the mark, absorbing the loss.
  assert.equal(adl.priceTicks, 474_250);
  assert.equal(h.account(a)!.cashQuote, 0n);
  assert.equal(h.account(b)!.positions[0]!.sizeLots, 0);
  assert.equal(h.ex.state.deficits.size, 0);
});

test('funding: longs pay shorts at the clamped rate; payers round up, receivers down, dust to insurance', () => {
  const h = new Harness();
  const longs = [key('l1'), key('l2'), key('l3')];
  const s = key('s');
  h.fund(s, 1_000_000n * USDC);
  for (const l of longs) h.fund(l, 100_000n * USDC);
  // Three longs of 3 lots each against one short of 9 lots, at $50,000.
  for (const l of longs) {
    assert.equal(h.one(s, limit(BTC, 'sell', 500_000, 3)).actions[0]!.ok, true);
    assert.equal(h.one(l, limit(BTC, 'buy', 500_000, 3)).actions[0]!.ok, true);
  }
  const cashBefore = [...longs, s].map((k) => h.account(k)!.cashQuote);
  const insuranceBefore = h.ex.state.insuranceQuote;
  // An empty book has no premium: rate = clamp(0 + clamp(12 − 0, ±500), ±5,000) = 12 ppm.
  h.oracle = { ...h.oracle, BTC: 50_000_1n * 100_000n };
  const r = h.block([], 3_600_000 - h.timeMs);
  const f = r.events.find((e) => e.type === 'funding' && e.market === BTC);
  assert.ok(f !== undefined && f.type === 'funding');
  assert.equal(f.ratePpm, 12);
  // Each long: 3 lots × 500,001 ticks × 10 × 12 / 10^6 = 180.00036 → pays 181; the short: 9 lots → 540.00108 → receives 540.
  assert.equal(f.paidQuote, 3n * 181n);
  assert.equal(f.receivedQuote, 540n);
  assert.equal(f.dustQuote, 3n);
  assert.equal(f.paidQuote, f.receivedQuote + f.dustQuote);
  const after = [...longs, s].map((k) => h.account(k)!.cashQuote);
  assert.deepEqual(
    after.map((x, i) => x - cashBefore[i]!),
    [-181n, -181n, -181n, 540n],
  );
  assert.equal(h.ex.state.insuranceQuote - insuranceBefore, 3n);
});

test('funding samples: a premium from a book above the index raises the rate', () => {
  const h = new Harness();
  const mm = key('mm');
  h.fund(mm, 1_000_000n * USDC);
  // Best bid 0.1% above the index: premium = 1,000 ppm; the rate is capped by the interest band: 1,000 + clamp(12 − 1,000, ±500) = 500.
  assert.equal(h.one(mm, limit(BTC, 'buy', 500_500, 1)).actions[0]!.ok, true);
  assert.equal(h.one(mm, limit(BTC, 'sell', 501_000, 1)).actions[0]!.ok, true);
  const r = h.block([], 3_600_000 - h.timeMs);
  const f = r.events.find((e) => e.type === 'funding' && e.market === BTC);
  assert.ok(f !== undefined && f.type === 'funding');
  assert.equal(f.ratePpm, 500);
});

test('the per-block liquidation cap spreads a large liquidation over blocks', () => {
  const g = genesis();
  g.markets[0] = { ...g.markets[0]!, liquidationQuoteMaxPerBlock: 20_000n * USDC };
  const h = new Harness(g);
  const a = key('a');
  const b = key('b');
  const c = key('c');
  h.fund(a, 2_600n * USDC);
  h.fund(b, 500_000n * USDC);
  h.fund(c, 500_000n * USDC);
  assert.equal(h.one(b, limit(BTC, 'sell', 500_000, ONE_BTC)).actions[0]!.ok, true);
  assert.equal(h.one(a, limit(BTC, 'buy', 500_000, ONE_BTC)).actions[0]!.ok, true);
  assert.equal(h.one(c, limit(BTC, 'buy', 480_000, ONE_BTC)).actions[0]!.ok, true);
  h.oracle = { ...h.oracle, BTC: 48_800n * USDC };
  // $20,000 at a mark of 488,000 ticks × k = 4.88 USDC per lot: 4,098 lots per block.
  const first = h.block([]).events.find((e) => e.type === 'liquidation');
  assert.ok(first !== undefined && first.type === 'liquidation');
  assert.equal(first.closedLots, 4_098);
  // Nothing else happens in the next block, yet the backlog is picked up.
  const second = h.block([]).events.find((e) => e.type === 'liquidation');
  assert.ok(second !== undefined && second.type === 'liquidation');
  assert.equal(h.account(a)!.positions[0]!.sizeLots, ONE_BTC - 4_098 - second.closedLots);
});

test('the per-block cap goes to the largest shortfall first, not the lowest account index', () => {
  const g = genesis();
  g.markets[0] = { ...g.markets[0]!, liquidationQuoteMaxPerBlock: 20_000n * USDC };
  const h = new Harness(g);
  const small = key('small');
  const large = key('large');
  const b = key('b');
  const c = key('c');
  // Funded first: the lower index.
  h.fund(small, 260n * USDC);
  h.fund(large, 2_600n * USDC);
  h.fund(b, 500_000n * USDC);
  h.fund(c, 500_000n * USDC);
  assert.equal(h.one(b, limit(BTC, 'sell', 500_000, ONE_BTC + 1_000)).actions[0]!.ok, true);
  assert.equal(h.one(small, limit(BTC, 'buy', 500_000, 1_000)).actions[0]!.ok, true);
  assert.equal(h.one(large, limit(BTC, 'buy', 500_000, ONE_BTC)).actions[0]!.ok, true);
  assert.equal(h.one(c, limit(BTC, 'buy', 480_000, 2 * ONE_BTC)).actions[0]!.ok, true);
  assert.ok(h.account(small)!.index < h.account(large)!.index, 'small was funded first');
  // At $48,800: small's equity 260 − 2.50 − 120 = $137.50 against $146.40 (short $8.90);
  // large's 2,600 − 25 − 1,200 = $1,375 against $1,464 (short $89).
  h.oracle = { ...h.oracle, BTC: 48_800n * USDC };
  const first = h.block([]).events.filter((e) => e.type === 'liquidation' && e.closedLots > 0);
  // The cap ($20,000 at 4.88 USDC a lot: 4,098 lots) goes to the larger shortfall first;
  // in index order the small account would have closed its 1,000 lots and left 3,098.
  const closed = first.map((e) => e.type === 'liquidation' && [e.account, e.closedLots]);
  assert.deepEqual(closed[0], [h.account(large)!.index, 4_098]);
  assert.ok(h.account(small)!.positions[0]!.sizeLots > 990, 'the cap was spent on large');
  // The smaller waits its turn: still below maintenance, picked up from the backlog.
  // The next block: large again first, then what the cap leaves to small; large is then
  // back above maintenance, and small closes its rest from the backlog.
  const liquidated = (): [number, number][] =>
    h
      .block([])
      .events.flatMap((e) =>
        e.type === 'liquidation' && e.closedLots > 0 ? [[e.account, e.closedLots]] : [],
      ) as [number, number][];
  const [iLarge, iSmall] = [h.account(large)!.index, h.account(small)!.index];
  assert.deepEqual(liquidated(), [
    [iLarge, 4_098],
    [iSmall, 1],
  ]);
  assert.equal(h.account(large)!.positions[0]!.sizeLots, ONE_BTC - 2 * 4_098);
  assert.deepEqual(liquidated(), [[iSmall, 998]]);
  assert.equal(h.account(small)!.positionCount, 0);
});

test('a position above the per-block cap facing an empty book is deleveraged a capped slice per block', () => {
  const g = genesis();
  // At $30,000 a lot is worth 300,000 ticks × k = 3 USDC: $6,000 is 2,000 lots per block.
  const capQuote = 6_000n * USDC;
  g.markets[0] = { ...g.markets[0]!, liquidationQuoteMaxPerBlock: capQuote };
  const h = new Harness(g);
  const a = key('a');
  const b = key('b');
  h.fund(a, 2_600n * USDC);
  h.fund(b, 500_000n * USDC);
  assert.equal(h.one(b, limit(BTC, 'sell', 500_000, ONE_BTC)).actions[0]!.ok, true);
  assert.equal(h.one(a, limit(BTC, 'buy', 500_000, ONE_BTC)).actions[0]!.ok, true);
  assert.equal(h.ex.state.markets[0]!.book.ownerOrderCount(h.account(b)!.index), 0);
  // A crash to $30,000 with nothing on the book: equity 2,575 − 20,000 = −$17,425, no
  // insurance, so the bankruptcy price is 300,000 + 174,250 = 474,250 ticks.
  h.oracle = { ...h.oracle, BTC: 30_000n * USDC };
  const notionalQuote = 10_000n * 3n * USDC;
  const blocks = Number((notionalQuote + capQuote - 1n) / capQuote);
  assert.equal(blocks, 5);
  const account = h.account(a)!;
  for (let i = 0; i < blocks; i++) {
    const r = h.block([]);
    const adl = r.events.filter((e) => e.type === 'deleverage');
    assert.equal(adl.length, 1, `block ${i}`);
    const e = adl[0]!;
    assert.ok(e.type === 'deleverage');
    assert.equal(e.sizeLots, 2_000);
    assert.equal(e.priceTicks, 474_250);
    assert.equal(account.positions[0]!.sizeLots, ONE_BTC - 2_000 * (i + 1));
    // Each slice is closed at the bankruptcy price: the loss shrinks with the position.
    assert.equal(equityQuote(h.ex.state, account), (-17_425n * USDC * BigInt(4 - i)) / 5n);
  }
  assert.equal(account.positionCount, 0);
  assert.equal(account.cashQuote, 0n);
  assert.equal(h.account(b)!.positions[0]!.sizeLots, 0);
  assert.equal(h.ex.state.deficits.size, 0);
  // Resolved: the next block has nothing left to liquidate.
  const after = h.block([]);
  assert.equal(after.events.filter((e) => e.type === 'liquidation').length, 0);
  assert.equal(h.ex.state.markets[0]!.liquidationBacklog, false);
});
