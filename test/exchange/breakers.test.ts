import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeGenesis, devnetGenesis, encodeGenesis } from '../../src/exchange/index.ts';
import { openingLots } from '../../src/exchange/breakers.ts';
import { priceBand } from '../../src/exchange/auction/bands.ts';
import { REJECT_CODES } from '../../src/exchange/errors.ts';
import { Harness, USDC, VALIDATORS, genesis, key, limit } from './helpers.ts';

const BTC = 'BTC-PERPETUAL';

function code(r: ReturnType<Harness['one']>): string | undefined {
  if (!r.ok) return r.code;
  const a = r.actions[0]!;
  return a.ok ? undefined : a.code;
}

function breakerGenesis() {
  const g = genesis();
  g.markets = g.markets.map((m, i) =>
    i === 0 ? { ...m, priceBandPpm: 50_000, openInterestCapLots: 50 } : m,
  );
  return g;
}

test('the breaker codes are rejection codes', () => {
  for (const c of ['OracleStale', 'PriceOutsideBand', 'OpenInterestCapExceeded']) {
    assert.ok((REJECT_CODES as readonly string[]).includes(c), c);
  }
});

test('limit orders and amends priced more than priceBandPpm from the mark are refused', () => {
  const h = new Harness(breakerGenesis());
  const maker = key('maker');
  h.fund(maker, 1_000_000n * USDC);
  // Mark 500,000 ticks, band 5%: [475,000, 525,000].
  assert.equal(code(h.one(maker, limit(BTC, 'sell', 525_001, 1))), 'PriceOutsideBand');
  assert.equal(code(h.one(maker, limit(BTC, 'buy', 474_999, 1))), 'PriceOutsideBand');
  assert.equal(code(h.one(maker, limit(BTC, 'buy', 475_000, 1))), undefined);
  assert.equal(code(h.one(maker, limit(BTC, 'sell', 525_000, 1))), undefined);
  const sell = [...h.ex.state.orders.values()].find(
    (o) => o.clientOrderId === '' && o.orderId > 1,
  )!;
  assert.equal(
    code(
      h.one(maker, { kind: 'amend', instrument: BTC, orderId: sell.orderId, priceTicks: 530_000 }),
    ),
    'PriceOutsideBand',
  );
  // The other market has no band.
  assert.equal(code(h.one(maker, limit('ETH-PERPETUAL', 'buy', 100_000, 1))), undefined);
});

test('an order left outside the band by the mark cannot grow there: a larger size is refused, a smaller one passes', () => {
  const h = new Harness(breakerGenesis());
  const maker = key('band-grow-maker');
  h.fund(maker, 1_000_000n * USDC);
  // Mark 500,000: a bid at 520,000 is within the band [475,000, 525,000].
  assert.equal(code(h.one(maker, limit(BTC, 'buy', 520_000, 10))), undefined);
  const bid = [...h.ex.state.orders.values()].find((o) => o.account === h.account(maker))!;
  // The mark falls to 490,000: the band is [465,500, 514,500] and the bid is above it.
  h.oracle = { ...h.oracle, BTC: 49_000n * USDC };
  h.block([]);
  assert.equal(h.ex.state.marketByName.get(BTC)!.markTicks, 490_000);
  assert.equal(code(h.one(maker, limit(BTC, 'buy', 520_000, 1))), 'PriceOutsideBand');
  // Grown, it would rest 40 more lots where no placement may: refused as that placement is.
  const amend = (sizeLots: number) =>
    code(h.one(maker, { kind: 'amend', instrument: BTC, orderId: bid.orderId, sizeLots }));
  assert.equal(amend(50), 'PriceOutsideBand');
  assert.equal(h.ex.state.markets[0]!.book.order(bid.orderId)!.sizeLots, 10, 'unchanged');
  // Smaller, it stays in place: nothing new rests there.
  assert.equal(amend(4), undefined);
  assert.equal(h.ex.state.markets[0]!.book.order(bid.orderId)!.sizeLots, 4);
});

test('a cheap market band is at least one tick each side: a two-sided quote fits', () => {
  // Mark 10 ticks, band 5%: floor(10 × 5%) = 0 would leave [10, 10], where a
  // bid and an ask can only cross, and any order fails once the mark moves.
  assert.deepEqual(priceBand(10, 50_000), [9, 11]);
  assert.deepEqual(priceBand(1, 50_000), [1, 2]);
  assert.deepEqual(priceBand(500_000, 50_000), [475_000, 525_000]);
  const h = new Harness(breakerGenesis());
  h.oracle = { ...h.oracle, BTC: 1n * USDC };
  const maker = key('cheap-maker');
  h.fund(maker, 1_000_000n * USDC);
  assert.equal(h.ex.state.marketByName.get(BTC)!.markTicks, 10);
  assert.equal(code(h.one(maker, limit(BTC, 'buy', 9, 1))), undefined);
  assert.equal(code(h.one(maker, limit(BTC, 'sell', 11, 1))), undefined);
  assert.equal(code(h.one(maker, limit(BTC, 'buy', 8, 1))), 'PriceOutsideBand');
  assert.equal(code(h.one(maker, limit(BTC, 'sell', 12, 1))), 'PriceOutsideBand');
});

test('open interest cannot be raised above the cap; closing trades always pass', () => {
  const h = new Harness(breakerGenesis());
  const maker = key('maker');
  const taker = key('taker');
  h.fund(maker, 1_000_000n * USDC);
  h.fund(taker, 1_000_000n * USDC);
  // Post-only quotes never take: not bounded.
  assert.equal(
    code(h.one(maker, limit(BTC, 'sell', 500_000, 100, { timeInForce: 'postOnly' }))),
    undefined,
  );
  assert.equal(code(h.one(taker, limit(BTC, 'buy', 500_000, 51))), 'OpenInterestCapExceeded');
  assert.equal(code(h.one(taker, limit(BTC, 'buy', 500_000, 50))), undefined);
  const market = h.ex.state.marketByName.get(BTC)!;
  assert.equal(market.longLots, 50);
  assert.equal(code(h.one(taker, limit(BTC, 'buy', 500_000, 1))), 'OpenInterestCapExceeded');
  // The taker closes 20 into a bid: allowed at the cap.
  assert.equal(
    code(h.one(maker, limit(BTC, 'buy', 499_000, 20, { timeInForce: 'postOnly' }))),
    undefined,
  );
  assert.equal(code(h.one(taker, limit(BTC, 'sell', 499_000, 20))), undefined);
  assert.equal(market.longLots, 30);
});

test('openingLots: the part of an order beyond what it closes', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: -1000, max: 1000 }),
      fc.boolean(),
      fc.integer({ min: 1, max: 1000 }),
      (pos, buy, size) => {
        const after = pos + (buy ? size : -size);
        const opened = (buy ? after > 0 : after < 0) ? Math.min(size, Math.abs(after)) : 0;
        assert.equal(openingLots(pos, buy, size), opened);
      },
    ),
  );
});

test('breaker parameters round-trip in genesis format 2; a genesis without them keeps format 1', () => {
  const g = breakerGenesis();
  assert.deepEqual(decodeGenesis(encodeGenesis(g)), g);
  const devnet = devnetGenesis(VALIDATORS.map((v) => v.publicKey));
  const markets = devnet.markets.map(({ triggers: _, ...m }) => m);
  const plain = { ...devnet, markets, oracle: undefined, listing: undefined };
  delete plain.oracle;
  delete plain.listing;
  const bytes = encodeGenesis(plain);
  assert.equal(bytes[0], 1);
  assert.deepEqual(decodeGenesis(bytes), plain);
  // With a listing or triggers the format is 3; without them 2. The devnet's
  // listing also sets a mark interval: format 4.
  assert.equal(encodeGenesis(g)[0], 4);
  const everyBlock = { ...g, listing: { ...g.listing!, markIntervalMs: undefined } };
  delete everyBlock.listing.markIntervalMs;
  assert.equal(encodeGenesis(everyBlock)[0], 3);
  assert.deepEqual(decodeGenesis(encodeGenesis(everyBlock)), everyBlock);
  const { listing: _listing, ...unlisted } = g;
  const plainer = { ...unlisted, markets: g.markets.map(({ triggers: _, ...m }) => m) };
  assert.equal(encodeGenesis(plainer)[0], 2);
  assert.deepEqual(decodeGenesis(encodeGenesis(plainer)), plainer);
  assert.equal(encodeGenesis(unlisted)[0], 3);
  assert.deepEqual(decodeGenesis(encodeGenesis(unlisted)), unlisted);
});
