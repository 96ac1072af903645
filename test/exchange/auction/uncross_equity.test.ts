// The uncross and the fill guard (docs/exchange.md, "Fills and equity"): an
// auction order whose fill at the uncrossing price would take its owner's
// equity below zero at the block's marks is cancelled, and the uncross is
// computed without it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uncrossAuction } from '../../../src/exchange/auction/call.ts';
import type { ExchangeEvent } from '../../../src/exchange/index.ts';
import { equityQuote } from '../../../src/exchange/margin.ts';
import type { MarketState } from '../../../src/exchange/state.ts';
import { Harness, USDC, key, limit } from '../helpers.ts';
import type { Key } from '../helpers.ts';

const BTC = 'BTC-PERPETUAL';
const ETH = 'ETH-PERPETUAL';

function ok(r: ReturnType<Harness['one']>): void {
  assert.ok(
    r.actions[0]!.ok,
    JSON.stringify(r.actions[0], (_k, v) => (typeof v === 'bigint' ? String(v) : v)),
  );
}

/** The maker and the taker, funded with $1,000,000 each. */
function makerAndTaker(h: Harness): { maker: Key; taker: Key } {
  const maker = key('maker');
  const taker = key('taker');
  for (const k of [maker, taker]) h.fund(k, 1_000_000n * USDC);
  return { maker, taker };
}

/**
 * A first trade at 500,000 (the trigger's reference), an ask 6% above, and a
 * bid that would trade there: the BTC market enters a call auction.
 */
function enterBtcAuction(h: Harness, maker: Key, taker: Key): MarketState {
  ok(h.one(maker, limit(BTC, 'sell', 500_000, 1)));
  ok(h.one(taker, limit(BTC, 'buy', 500_000, 1)));
  ok(h.one(maker, limit(BTC, 'sell', 530_000, 3)));
  ok(h.one(taker, limit(BTC, 'buy', 535_000, 2)));
  const m = h.ex.state.marketByName.get(BTC)!;
  assert.ok(m.auction!.active);
  return m;
}

test('an auction bid whose fill would bankrupt its owner after the mark fell is cancelled before the uncross', () => {
  const h = new Harness();
  const { maker, taker } = makerAndTaker(h);
  const thin = key('thin');
  h.fund(thin, 3_500n * USDC);
  const m = enterBtcAuction(h, maker, taker);
  // thin bids for 0.5 BTC at 535,000 (within its margin at the $50,000 mark), the maker offers more.
  ok(h.one(thin, limit(BTC, 'buy', 535_000, 5_000)));
  const thinOrder = [...m.auction!.bids.ordersOf('buy')].find(
    (o) => o.owner === h.account(thin)!.index,
  )!;
  ok(h.one(maker, limit(BTC, 'sell', 530_000, 5_000)));
  // The mark falls to $45,000 as the auction ends: at 530,000, thin's 0.5 BTC
  // would cost it $4,000 against the mark, more than its $3,500.
  h.oracle = { ...h.oracle, BTC: 45_000n * USDC };
  const r = h.block([], m.auction!.monitor.auctionEndMs - h.timeMs);
  const of = <T extends ExchangeEvent['type']>(type: T) =>
    r.events.filter((e): e is Extract<ExchangeEvent, { type: T }> => e.type === type);
  assert.equal(m.markTicks, 450_000);
  assert.deepEqual(of('makerCancelled'), [
    {
      type: 'makerCancelled',
      market: BTC,
      orderId: thinOrder.orderId,
      account: h.account(thin)!.index,
    },
  ]);
  // Without it: the taker's 2 lots at 530,000 against the maker's earliest ask.
  const [ended] = of('auctionEnded');
  assert.deepEqual(ended, {
    type: 'auctionEnded',
    market: BTC,
    priceTicks: 530_000,
    volumeLots: 2,
  });
  assert.deepEqual(
    of('auctionTrade').map((t) => [t.buyAccount, t.sizeLots]),
    [[h.account(taker)!.index, 2]],
  );
  assert.equal(h.account(thin)!.positionCount, 0);
  assert.equal(h.account(thin)!.cashQuote, 3_500n * USDC);
  assert.equal(h.ex.state.orders.has(thinOrder.orderId), false);
  for (const k of [maker, taker, thin]) assert.ok(equityQuote(h.ex.state, h.account(k)!) >= 0n);
  assert.equal(h.ex.state.deficits.size, 0);
});

test('past the rounds allowed, auction orders are screened at their own limits: the uncross left is solvent', () => {
  const h = new Harness();
  const { maker, taker } = makerAndTaker(h);
  const thin = key('thin');
  const thin2 = key('thin2');
  h.fund(thin, 3_500n * USDC);
  // Solvent at the uncross price ($4,000 lost there) but not at its own limit ($4,250).
  h.fund(thin2, 4_150n * USDC);
  const m = enterBtcAuction(h, maker, taker);
  ok(h.one(thin, limit(BTC, 'buy', 535_000, 5_000)));
  ok(h.one(thin2, limit(BTC, 'buy', 535_000, 5_000)));
  ok(h.one(maker, limit(BTC, 'sell', 530_000, 5_000)));
  const thinIndex = h.account(thin)!.index;
  const thin2Index = h.account(thin2)!.index;
  // The auction ends with the mark at $45,000, uncrossed with no round of
  // fill checks allowed: the screen at limits decides alone.
  m.setMark(450_000);
  const events: ExchangeEvent[] = [];
  uncrossAuction(h.ex.state, m, m.auction!.monitor.auctionEndMs, events, 0);
  const cancelled = events.filter((e) => e.type === 'makerCancelled');
  // The round of fill checks would have cancelled thin's bid only, and
  // filled thin2's; the screen cancels both, conservatively.
  assert.deepEqual(
    cancelled.map((e) => e.account).sort((a, b) => a - b),
    [thinIndex, thin2Index].sort((a, b) => a - b),
  );
  const trades = events.filter(
    (e): e is Extract<ExchangeEvent, { type: 'auctionTrade' }> => e.type === 'auctionTrade',
  );
  assert.deepEqual(
    trades.map((t) => [t.buyAccount, t.sizeLots]),
    [[h.account(taker)!.index, 2]],
  );
  for (const k of [maker, taker, thin, thin2]) {
    assert.ok(equityQuote(h.ex.state, h.account(k)!) >= 0n);
  }
});

test('an uncross values the owner at every market’s mark of its block, not a later market’s old one', () => {
  const h = new Harness();
  const { maker, taker } = makerAndTaker(h);
  const thin = key('thin');
  h.fund(thin, 2_000n * USDC);
  // thin is long 2 ETH at $3,000.
  ok(h.one(maker, limit(ETH, 'sell', 300_000, 2_000)));
  ok(h.one(thin, limit(ETH, 'buy', 300_000, 2_000)));
  // The BTC market enters a call auction; thin bids for 0.1 BTC at 53,500.
  const m = enterBtcAuction(h, maker, taker);
  ok(h.one(thin, limit(BTC, 'buy', 535_000, 1_000)));
  ok(h.one(maker, limit(BTC, 'sell', 530_000, 5_000)));
  // ETH falls to $2,000 in the block that ends the auction (BTC stays): at
  // ETH's new mark thin has nothing left for the $300 its BTC fill would cost
  // against BTC's mark; at ETH's old mark it had $2,000. BTC is uncrossed
  // before ETH comes in the block's loop over markets.
  h.oracle = { ...h.oracle, ETH: 2_000n * USDC };
  const r = h.block([], m.auction!.monitor.auctionEndMs - h.timeMs);
  assert.equal(h.ex.state.marketByName.get(ETH)!.markTicks, 200_000);
  const cancelled = r.events.filter((e) => e.type === 'makerCancelled');
  assert.deepEqual(
    cancelled.map((e) => e.account),
    [h.account(thin)!.index],
  );
});
