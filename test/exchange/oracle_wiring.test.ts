import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEVNET_ORACLE,
  Exchange,
  GenesisError,
  decodeSnapshot,
  encodeSnapshot,
} from '../../src/exchange/index.ts';
import type { OracleObservation } from '../../src/exchange/oracle/index.ts';
import { OBSERVED_PRICE_BITS, encodeObservation } from '../../src/exchange/oracle/index.ts';
import { marketWorstTicks } from '../../src/exchange/place_order.ts';
import {
  INDEX_TICKS_MAX,
  OBSERVATION_PRICES_MAX,
  PREMIUM_SAMPLE_PPM_MAX,
  PRICE_TICKS_MAX,
} from '../../src/lib/limits.ts';
import { premiumPpm } from '../../src/exchange/mark.ts';
import { liquidate } from '../../src/exchange/liquidation.ts';
import { Harness, ORACLE, USDC, VALIDATORS, genesis, key, limit } from './helpers.ts';

const BTC = 'BTC-PERPETUAL';

function code(r: ReturnType<Harness['one']>): string | undefined {
  if (!r.ok) return r.code;
  const a = r.actions[0]!;
  return a.ok ? undefined : a.code;
}

/** A harness whose index goes stale after the positions are open. */
function staleHarness() {
  const h = new Harness();
  const maker = key('maker');
  const taker = key('taker');
  h.fund(maker, 1_000_000n * USDC);
  h.fund(taker, 1_000_000n * USDC);
  assert.equal(code(h.one(maker, limit(BTC, 'sell', 500_000, 100))), undefined);
  assert.equal(code(h.one(taker, limit(BTC, 'buy', 500_000, 40))), undefined);
  assert.equal(code(h.one(maker, limit(BTC, 'sell', 501_000, 10))), undefined);
  h.oracle = {};
  for (let s = 0; s < 60; s++) h.block([]);
  assert.equal(h.ex.state.marketByName.get(BTC)!.oracleStale, false, 'exactly 60 s is not stale');
  h.block([]);
  return { h, maker, taker };
}

test('a stale index refuses orders that may add risk and amends; reduce-only and cancels pass; it recovers by itself', () => {
  const { h, maker, taker } = staleHarness();
  const market = h.ex.state.marketByName.get(BTC)!;
  assert.equal(market.oracleStale, true);
  assert.equal(h.ex.state.marketByName.get('ETH-PERPETUAL')!.oracleStale, true);
  assert.equal(code(h.one(taker, limit(BTC, 'buy', 499_000, 5))), 'OracleStale');
  assert.equal(code(h.one(taker, limit(BTC, 'sell', 520_000, 5))), 'OracleStale', 'either side');
  const resting = [...h.ex.state.orders.values()].find((o) => o.account === h.account(maker))!;
  assert.equal(
    code(h.one(maker, { kind: 'amend', instrument: BTC, orderId: resting.orderId, sizeLots: 50 })),
    'OracleStale',
  );
  // Reduce-only: the taker's long sells into nothing (IOC), accepted and unfilled.
  assert.equal(
    code(h.one(taker, limit(BTC, 'sell', 400_000, 5, { reduceOnly: true, timeInForce: 'IOC' }))),
    undefined,
  );
  assert.equal(
    code(h.one(maker, { kind: 'cancel', instrument: BTC, orderId: resting.orderId })),
    undefined,
  );
  h.oracle = { ...ORACLE };
  h.block([]);
  assert.equal(market.oracleStale, false);
  assert.equal(code(h.one(taker, limit(BTC, 'buy', 499_000, 5))), undefined);
});

test('positions in a stale market are not closed by a liquidation', () => {
  const { h, taker } = staleHarness();
  const account = h.account(taker)!;
  const before = account.positions[0]!.sizeLots;
  assert.equal(before, 40);
  liquidate(h.ex.state, account, []);
  assert.equal(account.positions[0]!.sizeLots, before);
});

test('the oracle state is in the snapshot and the hash: a restored exchange goes on identically', () => {
  const { h } = staleHarness();
  const bytes = encodeSnapshot(h.ex);
  const restored = decodeSnapshot(bytes, { checkInvariants: true });
  assert.deepEqual(restored.appHash, h.ex.appHash);
  assert.equal(restored.state.marketByName.get(BTC)!.oracleStale, true);
  assert.deepEqual(restored.state.oracle, h.ex.state.oracle);
  const again = new Harness(undefined, undefined, restored);
  again.timeMs = h.timeMs;
  h.oracle = { ...ORACLE };
  again.oracle = { ...ORACLE };
  assert.deepEqual(again.block([]).appHash, h.block([]).appHash);
});

test('oracle votes: a quorum of fresh observations moves the index at most maxMovePerBlockBps per block', () => {
  const h = new Harness();
  const obs = (timeMs: number, btc: bigint): OracleObservation => ({
    timeMs,
    prices: [{ underlying: 'BTC', priceQuote: btc }],
    smiles: [],
  });
  const run = (btc: bigint, voters: number, ageMs = 0) => {
    h.timeMs += 1_000;
    h.ex.finalizeBlock({
      height: h.ex.state.height + 1,
      timeMs: h.timeMs,
      proposer: VALIDATORS[0]!.publicKey,
      txs: [],
      oracle: {},
      oracleVotes: {
        votes: VALIDATORS.slice(0, voters).map((v, i) => ({
          validatorIndex: i,
          publicKey: v.publicKey,
          stake: 100n,
          observation: obs(h.timeMs - ageMs, btc),
        })),
        totalStake: 400n,
      },
    });
    return h.ex.state.oracle!.prices.get('BTC')!.priceQuote;
  };
  assert.equal(run(50_000n * USDC, 3), 50_000n * USDC, 'the first price is taken as it is');
  const step = (50_000n * USDC * BigInt(DEVNET_ORACLE.maxMovePerBlockBps)) / 10_000n;
  assert.equal(run(60_000n * USDC, 3), 50_000n * USDC + step, 'clamped');
  assert.equal(run(60_000n * USDC, 2), 50_000n * USDC + step, 'half the stake is no quorum');
  assert.equal(
    run(60_000n * USDC, 4, DEVNET_ORACLE.freshnessMs + 1),
    50_000n * USDC + step,
    'old observations do not count',
  );
  assert.throws(
    () =>
      new Harness(genesis({ oracle: undefined, listing: undefined })).ex.finalizeBlock({
        height: 1,
        timeMs: 1,
        proposer: VALIDATORS[0]!.publicKey,
        txs: [],
        oracle: {},
        oracleVotes: { votes: [], totalStake: 1n },
      }),
    /oracle votes without a genesis oracle/,
  );
});

test('funding pauses while the index is stale: no samples, and an interval that ends then pays nothing', () => {
  const { h, taker } = staleHarness();
  const market = h.ex.state.marketByName.get(BTC)!;
  const account = h.account(taker)!;
  const cash = account.cashQuote;
  const samples = market.premiumCount;
  h.block([], 60_000);
  assert.equal(market.premiumCount, samples, 'no sample against a stale index');
  // An hour later, still stale: the interval ends at a rate of 0 and its samples go.
  const r = h.block([], 3_600_000);
  assert.equal(market.oracleStale, true);
  const f = r.events.find((e) => e.type === 'funding' && e.market === BTC);
  assert.ok(f !== undefined && f.type === 'funding');
  assert.deepEqual([f.ratePpm, f.paidQuote, f.receivedQuote], [0, 0n, 0n]);
  assert.equal(account.cashQuote, cash);
  assert.equal(account.positions[0]!.fundingQuote, 0n);
  assert.equal(market.premiumCount, 0);
  // Fresh again: the next interval samples and pays (the interest rate, 12 ppm).
  h.oracle = { ...ORACLE };
  const paid = h.block([], 3_600_000).events.find((e) => e.type === 'funding' && e.market === BTC);
  assert.ok(paid !== undefined && paid.type === 'funding');
  assert.notEqual(paid.ratePpm, 0);
  assert.ok(account.cashQuote < cash);
});

test('an interval stale for a part pays its rate prorated by the samples it has', () => {
  const { h, taker } = staleHarness();
  const market = h.ex.state.marketByName.get(BTC)!;
  const account = h.account(taker)!;
  // Stale to the hour's end (pays nothing), then 45 more minutes.
  h.block([], 3_600_000 - h.timeMs);
  h.block([], 45 * 60_000);
  assert.equal(market.premiumCount, 0);
  // Fresh for the interval's last 15 minutes: 15 of its 60 samples. With no
  // bids the premium is 0, so the whole rate would be the interest, 12 ppm.
  h.oracle = { ...ORACLE };
  const before = account.positions[0]!.fundingQuote;
  const r = h.block([], 15 * 60_000);
  const f = r.events.find((e) => e.type === 'funding' && e.market === BTC);
  assert.ok(f !== undefined && f.type === 'funding');
  assert.equal(f.ratePpm, 3, 'trunc(12 × 15 / 60)');
  // The long of 40 lots pays 40 × mark × k × 3 / 10^6, rounded up.
  const owed = -((40n * BigInt(market.markTicks) * market.k * 3n + 999_999n) / 1_000_000n);
  assert.equal(account.positions[0]!.fundingQuote - before, owed);
  // A whole fresh interval pays the whole rate.
  const next = h.block([], 3_600_000).events.find((e) => e.type === 'funding' && e.market === BTC);
  assert.ok(next !== undefined && next.type === 'funding');
  assert.equal(next.ratePpm, 12);
});

test('the largest price an observation may carry saturates the index in ticks instead of stopping the chain', () => {
  const h = new Harness();
  const largest = (1n << BigInt(OBSERVED_PRICE_BITS)) - 1n;
  const votes = (timeMs: number) => ({
    votes: VALIDATORS.map((v, i) => ({
      validatorIndex: i,
      publicKey: v.publicKey,
      stake: 100n,
      observation: { timeMs, prices: [{ underlying: 'BTC', priceQuote: largest }], smiles: [] },
    })),
    totalStake: 400n,
  });
  // A fresh exchange: the first price is taken as it is, unclamped.
  h.timeMs += 1_000;
  h.ex.finalizeBlock({
    height: 1,
    timeMs: h.timeMs,
    proposer: VALIDATORS[0]!.publicKey,
    txs: [],
    oracle: {},
    oracleVotes: votes(h.timeMs),
  });
  const market = h.ex.state.marketByName.get(BTC)!;
  assert.equal(h.ex.state.oracle!.prices.get('BTC')!.priceQuote, largest);
  assert.equal(market.indexTicks, INDEX_TICKS_MAX);
  assert.ok(market.markTicks > 0 && market.markTicks <= PRICE_TICKS_MAX);
  assert.ok(marketWorstTicks(market, true) <= PRICE_TICKS_MAX);
  // A trusted feed takes the same road.
  h.oracle = { BTC: largest };
  h.block([]);
  assert.equal(market.indexTicks, INDEX_TICKS_MAX);
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});

test('a bid far above an index of one tick: premium samples stay bounded and the chain goes on through a whole funding interval', () => {
  const h = new Harness();
  h.oracle = { ...ORACLE, BTC: 100_000n };
  h.block([]);
  const market = h.ex.state.marketByName.get(BTC)!;
  assert.equal(market.indexTicks, 1);
  const a = key('a');
  const b = key('b');
  h.fund(a, 1_000_000n * USDC);
  h.fund(b, 1_000_000n * USDC);
  // About $1 of margin each: the bid is 10^10 times the index.
  assert.equal(code(h.one(a, limit(BTC, 'buy', 10_000_000_000, 1))), undefined);
  assert.equal(code(h.one(b, limit(BTC, 'sell', 20_000_000_000, 1))), undefined);
  assert.equal(premiumPpm(market), PREMIUM_SAMPLE_PPM_MAX);
  for (let i = 0; i < 61; i++) h.block([], 60_000);
  assert.ok(Number.isSafeInteger(market.premiumSumPpm));
  assert.ok(h.ex.state.height > 60);
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});

test('a genesis with an oracle prices at most what one observation can carry: more underlyings are refused', () => {
  const base = genesis();
  const template = base.markets[0]!;
  const withUnderlyings = (n: number) =>
    genesis({
      listing: undefined,
      markets: Array.from({ length: n }, (_, i) => {
        const underlying = `U${String(i).padStart(2, '0')}`;
        return { ...template, underlying, instrument: `${underlying}-PERPETUAL`, triggers: [] };
      }),
    });
  const largest = new Exchange(withUnderlyings(OBSERVATION_PRICES_MAX));
  const params = largest.state.oracleParams!;
  // Each validator observes every underlying: that observation must encode.
  const prices = params.underlyings.map((underlying) => ({ underlying, priceQuote: 1n }));
  assert.ok(encodeObservation({ timeMs: 0, prices, smiles: [] }).length > 0);
  assert.throws(
    () => new Exchange(withUnderlyings(OBSERVATION_PRICES_MAX + 1)),
    (e: unknown) => e instanceof GenesisError && /oracle/.test(e.message),
  );
});
