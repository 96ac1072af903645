// Where dated markets, volatility auctions, slashing and the digest's memos
// meet: scenarios across those features, each checked against the digest
// recomputed from scratch, a snapshot round trip and the invariants.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SignedTx } from '../../src/exchange/tx/types.ts';
import { daysFromCivil, MS_PER_DAY } from '../../src/exchange/instruments/index.ts';
import { decodeSnapshot, encodeSnapshot } from '../../src/exchange/snapshot.ts';
import {
  Harness,
  USDC,
  VALIDATORS,
  dailyListingGenesis,
  genesis,
  key,
  limit,
  replacer,
} from './helpers.ts';

const MINUTE_MS = 60_000;
/** Monday 2 March 2026, 00:00 UTC: the first daily expiry is that day at 08:00. */
const START_MS = daysFromCivil(2026, 3, 2) * MS_PER_DAY;

test('emergency halt: a settled market left in a free slot does not keep haltAll from halting the exchange', () => {
  const h = new Harness(dailyListingGenesis(START_MS));
  h.block([], MINUTE_MS);
  // At 50,500 the next day has one BTC strike fewer on each side: two slots stay free.
  h.oracle = { ...h.oracle, BTC: 50_500n * USDC };
  for (let i = 0; i < 9; i++) h.block([], 60 * MINUTE_MS);
  const free = h.ex.state.markets.filter((m) => m.retired);
  assert.ok(free.length > 0, 'a settled slot is still free');
  const a = key('review-halt');
  h.fund(a, 1_000n * USDC);
  const [first, ...rest] = [0, 1, 2];
  h.block([
    h.tx(VALIDATORS[first!]!, { kind: 'govPropose', proposalId: 1, proposal: { kind: 'haltAll' } }),
  ]);
  for (const v of rest) {
    h.block([h.tx(VALIDATORS[v]!, { kind: 'govVote', proposalId: 1, approve: true })]);
  }
  assert.ok(h.ex.state.markets.every((m) => m.retired || m.halted));
  const r = h.one(a, {
    kind: 'transfer',
    amountQuote: 1n * USDC,
    fromSubaccount: 0,
    toSubaccount: 1,
  });
  assert.ok(r.ok);
  const result = r.actions[0]!;
  assert.ok(!result.ok && result.code === 'ExchangeHalted', JSON.stringify(result, replacer));
  // The next day's instruments are listed during the halt: they open halted, and the halt holds.
  const before = new Set(
    h.ex.state.markets.filter((m) => !m.retired).map((m) => m.params.instrument),
  );
  for (let i = 0; i < 25; i++) h.block([], 60 * MINUTE_MS);
  const listed = h.ex.state.markets.filter((m) => !m.retired && !before.has(m.params.instrument));
  assert.ok(listed.length > 0, 'instruments were listed during the halt');
  assert.ok(listed.every((m) => m.halted));
  const again = h.one(a, { kind: 'faucet', amountQuote: 1n * USDC }).actions[0]!;
  assert.ok(!again.ok && again.code === 'ExchangeHalted');
  assert.deepEqual(h.ex.digestFromScratch(), h.ex.digestBytes());
});

/** A small deterministic generator (a seed, not a clock). */
function lcg(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s % n;
  };
}

/**
 * Random orders, amends and cancels in a perpetual with price monitoring and in
 * dated futures and options, with price jumps that start auctions, trading
 * through settlement and relisting: after every block the incremental digest
 * equals the one recomputed from scratch, and a snapshot restores to the same
 * appHash and the same next blocks (auctions open or not).
 */
function soak(
  seed: number,
  blocks: number,
  markIntervalMs?: number,
): { auctions: number; settled: number; fills: number } {
  const g = dailyListingGenesis(START_MS);
  if (markIntervalMs !== undefined) g.listing!.markIntervalMs = markIntervalMs;
  const h = new Harness(g);
  const flat = { a: 228_000_000_000_000n, b: 0n, rho: 0n, m: 0n, sigma: 100_000_000_000_000_000n };
  const rnd = lcg(seed);
  const keys = [0, 1, 2, 3, 4].map((i) => key(`review-soak-${i}`));
  for (const k of keys) h.fund(k, (20_000n + BigInt(rnd(200_000))) * USDC);
  const orderIds: { id: number; instrument: string; owner: number }[] = [];
  let auctions = 0;
  let settled = 0;
  let fills = 0;
  for (let b = 0; b < blocks; b++) {
    const dayMs = Math.floor(h.timeMs / MS_PER_DAY) * MS_PER_DAY;
    h.smiles = [0, 1].map((d) => ({
      underlying: 'BTC',
      expiryMs: dayMs + d * MS_PER_DAY + 8 * 60 * MINUTE_MS,
      svi: flat,
    }));
    if (rnd(4) === 0) {
      const move = BigInt(rnd(2_001) - 1_000) * USDC;
      h.oracle = { ...h.oracle, BTC: h.oracle.BTC! + move };
    }
    const live = h.ex.state.markets.filter((m) => !m.retired && !m.halted && m.markTicks > 0);
    const txs: SignedTx[] = [];
    for (let i = 0; i < 1 + rnd(6); i++) {
      const who = rnd(keys.length);
      // Half the orders in the perpetuals (the markets with price monitoring).
      const m = rnd(2) === 0 ? h.ex.state.markets[rnd(2)]! : live[rnd(live.length)]!;
      if (m.halted || m.retired || m.markTicks === 0) continue;
      const name = m.params.instrument;
      const r = rnd(10);
      if (r < 6) {
        // Mostly near the mark; now and then far through it, which trips the perpetual's trigger.
        const far = rnd(3) === 0;
        const offset = far ? Math.ceil(m.markTicks / 10) : rnd(Math.max(2, m.markTicks / 200));
        const side = rnd(2) === 0 ? 'buy' : 'sell';
        const price =
          side === 'buy' ? m.markTicks + offset - 1 : Math.max(1, m.markTicks - offset + 1);
        const tif = rnd(5) === 0 ? 'IOC' : 'GTC';
        txs.push(h.tx(keys[who]!, limit(name, side, price, 1 + rnd(5), { timeInForce: tif })));
      } else if (r < 8 && orderIds.length > 0) {
        const o = orderIds[rnd(orderIds.length)]!;
        const amend = {
          kind: 'amend' as const,
          instrument: o.instrument,
          orderId: o.id,
          ...(rnd(2) === 0
            ? { sizeLots: 1 + rnd(4) }
            : { priceTicks: Math.max(1, live[0]!.markTicks) }),
        };
        txs.push(
          h.tx(
            keys[o.owner]!,
            rnd(3) === 0 ? { kind: 'cancel', instrument: o.instrument, orderId: o.id } : amend,
          ),
        );
      } else if (r === 9 && rnd(4) === 0) {
        txs.push(h.tx(keys[who]!, { kind: 'cancelAll' }));
      }
    }
    const result = h.block(txs, (1 + rnd(3)) * (rnd(10) === 0 ? 20 * MINUTE_MS : 10_000));
    result.results.forEach((tr, i) => {
      if (!tr.ok) return;
      for (const a of tr.actions) {
        if (a.ok && a.kind === 'placeOrder' && a.order !== undefined) {
          const tx = txs[i]!;
          const owner = keys.findIndex((k) => k.address === tx.account);
          const instrument = tx.action.kind === 'placeOrder' ? tx.action.instrument : '';
          orderIds.push({ id: a.order.orderId, instrument, owner });
        }
      }
    });
    if (orderIds.length > 60) orderIds.splice(0, orderIds.length - 60);
    for (const e of result.events) {
      if (e.type === 'auctionStarted') auctions++;
      if (e.type === 'marketSettled') settled++;
      if (e.type === 'auctionTrade' || e.type === 'liquidationFill') fills++;
    }
    assert.deepEqual(h.ex.digestFromScratch(), h.ex.digestBytes(), `digest drifted at block ${b}`);
    if (b % 25 === 24 || result.events.some((e) => e.type === 'auctionStarted')) {
      const copy = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
      assert.deepEqual(copy.appHash, h.ex.appHash, `snapshot appHash at block ${b}`);
      assert.deepEqual(copy.digestFromScratch(), h.ex.digestBytes());
      assert.deepEqual(encodeSnapshot(copy), encodeSnapshot(h.ex));
    }
  }
  return { auctions, settled, fills };
}

test('soak: perpetual auctions, dated markets, settlement and relisting keep the digest and snapshots exact', () => {
  let auctions = 0;
  let settled = 0;
  for (const seed of [1, 2, 3]) {
    const r = soak(seed, 160);
    auctions += r.auctions;
    settled += r.settled;
  }
  assert.ok(auctions > 0, 'auctions started');
  assert.ok(settled > 0, 'markets settled');
});

test('soak with options marked once a minute (blocks 10–30 s apart): marks kept between intervals stay exact in the digest and snapshots', () => {
  let settled = 0;
  for (const seed of [4, 5]) settled += soak(seed, 160, 60_000).settled;
  assert.ok(settled > 0, 'markets settled');
});

test('price monitoring: a taker never trades with a resting order priced beyond the far bound of the trigger', () => {
  const h = new Harness(genesis());
  const a = key('review-band-a');
  const b = key('review-band-b');
  h.fund(a, 200_000n * USDC);
  h.fund(b, 200_000n * USDC);
  const market = h.ex.state.marketByName.get('BTC-PERPETUAL')!;
  // Mark 500,000, trigger 5%: trades within 475,000..525,000. A bid 10% above rests (nothing to take).
  const bid = h.one(a, limit('BTC-PERPETUAL', 'buy', 550_000, 2)).actions[0]!;
  assert.ok(bid.ok && bid.order?.status === 'rested');
  // A sell at 450,000 would take that bid at 550,000: a breach, so no trade and an auction.
  const r = h.block([h.tx(b, limit('BTC-PERPETUAL', 'sell', 450_000, 1))]);
  const sell = r.results[0]!.ok ? r.results[0]!.actions[0]! : undefined;
  assert.ok(sell?.ok === true && sell.kind === 'placeOrder', JSON.stringify(sell, replacer));
  assert.equal(sell.order!.filledLots, 0, JSON.stringify(sell, replacer));
  assert.equal(sell.order!.reason, 'AuctionTriggered');
  assert.ok(r.events.some((e) => e.type === 'auctionStarted'));
  assert.ok(market.auction!.active);
  assert.deepEqual(h.ex.digestFromScratch(), h.ex.digestBytes());
});

test('governance: a pending proposal about a dated market is closed when the market settles, so it never acts on the next market in its slot', () => {
  const h = new Harness(dailyListingGenesis(START_MS));
  h.block([], MINUTE_MS);
  const daily = h.ex.state.markets.find(
    (m) => m.listed && !m.retired && m.instrument.kind === 'option',
  )!;
  const name = daily.params.instrument;
  const slot = daily.index;
  // One approval of four: pending.
  h.block([
    h.tx(VALIDATORS[0]!, {
      kind: 'govPropose',
      proposalId: 7,
      proposal: { kind: 'haltMarket', instrument: name },
    }),
  ]);
  assert.equal(h.ex.state.proposals.get(7)!.executed, false);
  // Past 08:00 the daily settles; the next day's instruments are listed, reusing slots.
  for (let i = 0; i < 30 && h.ex.state.markets[slot]!.params.instrument === name; i++) {
    h.block([], 60 * MINUTE_MS);
  }
  for (let i = 0; i < 30 && h.ex.state.markets[slot]!.retired; i++) h.block([], 60 * MINUTE_MS);
  const next = h.ex.state.markets[slot]!;
  assert.ok(!next.retired && next.params.instrument !== name, 'the slot holds a new market');
  assert.equal(h.ex.state.proposals.get(7)!.executed, true, 'closed at settlement');
  for (const v of [1, 2, 3]) {
    h.block([h.tx(VALIDATORS[v]!, { kind: 'govVote', proposalId: 7, approve: true })]);
  }
  assert.equal(h.ex.state.markets[slot]!.halted, false, 'the new market is not halted');
  assert.deepEqual(h.ex.digestFromScratch(), h.ex.digestBytes());
});

test('price monitoring: an amend never trades with a resting order priced beyond the far bound either', () => {
  const h = new Harness(genesis());
  const a = key('review-amend-a');
  const b = key('review-amend-b');
  h.fund(a, 200_000n * USDC);
  h.fund(b, 200_000n * USDC);
  const market = h.ex.state.marketByName.get('BTC-PERPETUAL')!;
  // Mark 500,000, trigger 5%: a bid 10% above rests; b's ask above it rests too.
  assert.ok(h.one(a, limit('BTC-PERPETUAL', 'buy', 550_000, 2)).actions[0]!.ok);
  const ask = h.one(b, limit('BTC-PERPETUAL', 'sell', 560_000, 1)).actions[0]!;
  assert.ok(ask.ok && ask.order?.status === 'rested');
  // Moving the ask down to 450,000 would sell to that bid at 550,000: no trade, an auction.
  const r = h.block([
    h.tx(b, {
      kind: 'amend',
      instrument: 'BTC-PERPETUAL',
      orderId: ask.order!.orderId,
      priceTicks: 450_000,
    }),
  ]);
  const amended = r.results[0]!.actions[0]!;
  assert.ok(amended.ok && amended.kind === 'amend', JSON.stringify(amended, replacer));
  assert.equal(amended.order!.filledLots, 0);
  assert.equal(amended.order!.reason, 'AuctionTriggered');
  assert.ok(market.auction!.active);
  assert.equal(h.account(a)!.positions[0]!.sizeLots, 0, 'the far bid did not trade');
  assert.deepEqual(h.ex.digestFromScratch(), h.ex.digestBytes());
});

test('price monitoring: a liquidation never trades with a resting order priced beyond the far bound', () => {
  const BTC = 'BTC-PERPETUAL';
  const h = new Harness(genesis());
  const [a, b, c] = [key('review-liq-a'), key('review-liq-b'), key('review-liq-c')];
  h.fund(a, 2_600n * USDC);
  h.fund(b, 500_000n * USDC);
  h.fund(c, 500_000n * USDC);
  // a long 1 BTC at $50,000 on thin collateral; then a bid 10% above the mark rests (nothing to take).
  assert.ok(h.one(b, limit(BTC, 'sell', 500_000, 10_000)).actions[0]!.ok);
  assert.ok(h.one(a, limit(BTC, 'buy', 500_000, 10_000)).actions[0]!.ok);
  const far = h.one(c, limit(BTC, 'buy', 550_000, 10_000)).actions[0]!;
  assert.ok(far.ok && far.order?.status === 'rested');
  // At $48,800 a is below maintenance: its liquidation would sell to that bid at 550,000.
  h.oracle = { ...h.oracle, BTC: 48_800n * USDC };
  const r = h.block([]);
  assert.ok(
    r.events.some((e) => e.type === 'auctionStarted'),
    'the auction starts instead',
  );
  assert.equal(r.events.filter((e) => e.type === 'liquidationFill').length, 0);
  assert.equal(h.account(c)!.positions[0]!.sizeLots, 0, 'the far bid did not trade');
  assert.deepEqual(h.ex.digestFromScratch(), h.ex.digestBytes());
});
