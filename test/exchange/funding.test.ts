// Funding against a plain model of docs/exchange.md, "Funding": a sample per
// fundingSampleMs boundary a block crosses, taken from the book as the
// previous block left it at this block's index; a payment at the first
// interval boundary a block crosses (the samples of the intervals it skips
// dropped), prorated when short of a whole interval; nothing while the index
// is stale; every holder paying or receiving size × mark × k × rate / 10^6,
// payers rounded up and receivers down, the dust to the insurance fund.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GenesisError, validateGenesis } from '../../src/exchange/genesis.ts';
import type { MarketState } from '../../src/exchange/state.ts';
import { divBig, divTrunc } from '../../src/lib/int.ts';
import { FUNDING_SAMPLES_PER_INTERVAL_MAX } from '../../src/lib/limits.ts';
import type { Action, SignedTx } from '../../src/exchange/tx/types.ts';
import { Harness, USDC, VALIDATORS, genesis, key, limit, replacer } from './helpers.ts';
import type { ExchangeEvent } from '../../src/exchange/index.ts';

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;

test('genesis refuses a funding interval of more samples than an interval counts', () => {
  const withFunding = (fundingSampleMs: number, fundingIntervalMs: number) => {
    const g = genesis();
    g.markets[0] = { ...g.markets[0]!, fundingSampleMs, fundingIntervalMs };
    return g;
  };
  // Four hours of one-second samples is 14,400: only the first 10,080 (2.8
  // hours) would count, and a premium of the last 1.2 hours would never pay.
  assert.throws(
    () => validateGenesis(withFunding(1_000, 4 * HOUR_MS)),
    (e: unknown) => e instanceof GenesisError && e.message.includes('fundingIntervalMs'),
  );
  // A week of minutes is exactly the most.
  assert.equal(FUNDING_SAMPLES_PER_INTERVAL_MAX, 7 * 24 * 60);
  validateGenesis(withFunding(MINUTE_MS, 7 * 24 * HOUR_MS));
  validateGenesis(withFunding(1_000, HOUR_MS));
});

function lcg(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return (s >>> 8) % n;
  };
}

function modelRate(m: MarketState, sum: number, count: number): number {
  const p = m.params;
  if (count === 0) return 0;
  const avg = divTrunc(sum, count);
  const interest = Math.max(-500, Math.min(500, p.fundingInterestPpm - avg));
  const whole = Math.max(-p.fundingCapPpm, Math.min(p.fundingCapPpm, avg + interest));
  const n = divTrunc(p.fundingIntervalMs, p.fundingSampleMs);
  return count >= n ? whole : divTrunc(whole * count, n);
}

function premiumOf(index: number, bid: number | undefined, ask: number | undefined): number {
  if (bid === undefined || ask === undefined) return 0;
  const away = Math.max(0, bid - index) - Math.max(0, index - ask);
  return Number(divBig(BigInt(away) * 1_000_000n, BigInt(index), 'trunc'));
}

test('property: funding samples, rates and payments follow the model over gaps of seconds to hours', () => {
  let payments = 0;
  for (let seed = 1; seed <= 6; seed++) {
    const rnd = lcg(seed);
    // Genesis inside an interval: the first one is prorated.
    const h = new Harness(genesis({ genesisTimeMs: 1_234_567 + seed * 7_777 }));
    const traders = [0, 1, 2, 3, 4, 5].map((i) => key(`funding-${seed}-${i}`));
    for (const t of traders) h.fund(t, BigInt(1_000 + rnd(10_000)) * USDC);
    const model = h.ex.state.markets.map((m) => ({ sum: m.premiumSumPpm, count: m.premiumCount }));
    let btc = 50_000n * USDC;
    let eth = 3_000n * USDC;
    for (let b = 0; b < 250; b++) {
      const state = h.ex.state;
      const t = h.timeMs;
      const kind = rnd(20);
      let dt = 1_000 + rnd(20_000);
      if (kind >= 12 && kind < 15) dt = MINUTE_MS * (1 + rnd(5)) + rnd(3) * 1_000;
      else if (kind === 15)
        dt = HOUR_MS * (1 + rnd(4)) + rnd(HOUR_MS); // a halted chain resuming
      else if (kind >= 16 && kind < 18)
        dt = (Math.floor(t / MINUTE_MS) + 1 + rnd(3)) * MINUTE_MS - t;
      else if (kind >= 18) dt = (Math.floor(t / HOUR_MS) + 1) * HOUR_MS - t; // at the payment instant
      if (rnd(3) === 0) btc += BigInt(rnd(801) - 400) * USDC;
      if (rnd(25) === 0) btc += BigInt(rnd(8_001) - 4_000) * USDC;
      if (rnd(3) === 0) eth += BigInt(rnd(41) - 20) * USDC;
      // Now and then no price: past a minute without one, the index is stale.
      h.oracle = rnd(15) === 0 ? {} : { BTC: btc, ETH: eth };
      const txs: SignedTx[] = [];
      for (let i = rnd(10); i > 0; i--) {
        const m = state.markets[rnd(2)]!;
        const index = m.indexTicks;
        const price = Math.max(1, index + Math.floor((index * (rnd(201) - 100)) / 20_000));
        const side = rnd(2) === 0 ? 'buy' : 'sell';
        const r = rnd(8);
        const action: Action =
          r < 5
            ? limit(m.params.instrument, side, price, 1 + rnd(3_000))
            : r < 6
              ? limit(m.params.instrument, side, price, 1 + rnd(3_000), { timeInForce: 'IOC' })
              : r < 7
                ? limit(m.params.instrument, side, price, 1 + rnd(3_000), {
                    timeInForce: 'IOC',
                    reduceOnly: true,
                  })
                : { kind: 'cancelAll' };
        txs.push(h.tx(traders[rnd(traders.length)]!, action));
      }
      const before = state.markets.map((m) => ({
        bid: m.book.bestBidTicks(),
        ask: m.book.bestAskTicks(),
        holders: [...m.holders].map((a) => {
          const p = a.positions[m.index]!;
          return { p, size: p.sizeLots, funding: p.fundingQuote };
        }),
      }));
      const previousMs = h.timeMs;
      const r = h.block(txs, dt);
      const nowMs = h.timeMs;
      const at = `seed ${seed} block ${b}`;
      for (const m of state.markets) {
        const mo = model[m.index]!;
        const { fundingSampleMs: s, fundingIntervalMs: interval } = m.params;
        let rate: number | null = null;
        if (m.oracleStale) {
          if (Math.floor(nowMs / interval) * interval > previousMs) {
            rate = 0;
            mo.sum = 0;
            mo.count = 0;
          }
        } else {
          const sample = premiumOf(m.indexTicks, before[m.index]!.bid, before[m.index]!.ask);
          for (let tau = (Math.floor(previousMs / s) + 1) * s; tau <= nowMs; tau += s) {
            mo.sum += sample;
            mo.count++;
            if (tau % interval === 0) {
              rate ??= modelRate(m, mo.sum, mo.count);
              mo.sum = 0;
              mo.count = 0;
            }
          }
        }
        assert.equal(m.premiumCount, mo.count, `${at}: sample count`);
        assert.equal(m.premiumSumPpm, mo.sum, `${at}: sample sum`);
        const events = r.events.filter(
          (e) => e.type === 'funding' && e.market === m.params.instrument,
        );
        if (rate === null) {
          assert.equal(events.length, 0, `${at}: no payment`);
          continue;
        }
        const ratePpm: number = rate;
        const e = events[0]!;
        assert.ok(events.length === 1 && e.type === 'funding', `${at}: one payment`);
        assert.equal(e.ratePpm, ratePpm, `${at}: rate`);
        assert.equal(e.markTicks, m.markTicks, `${at}: paid at the block's mark`);
        let paid = 0n;
        let received = 0n;
        for (const { p, size, funding } of before[m.index]!.holders) {
          const owed: bigint = BigInt(size) * BigInt(e.markTicks) * m.k * BigInt(ratePpm);
          const delta: bigint =
            owed > 0n ? -divBig(owed, 1_000_000n, 'ceil') : divBig(-owed, 1_000_000n, 'floor');
          if (delta < 0n) paid -= delta;
          else received += delta;
          assert.equal(p.fundingQuote - funding, delta, `${at}: a holder's funding`);
        }
        assert.equal(e.paidQuote, paid, `${at}: paid`);
        assert.equal(e.receivedQuote, received, `${at}: received`);
        assert.equal(e.dustQuote, paid - received, `${at}: dust`);
        if (paid > 0n) payments++;
      }
    }
  }
  assert.ok(payments > 100, `only ${payments} payments moved money`);
});

test('a market halted by governance goes on sampling its premium and paying funding, at its mark', () => {
  // docs/exchange.md, "Orders": a halted market refuses orders and amends;
  // cancels and funding go on. Its holders pay and receive as in any hour.
  const h = new Harness();
  const long = key('halted-funding-long');
  const short = key('halted-funding-short');
  const quoter = key('halted-funding-quoter');
  for (const k of [long, short, quoter]) h.fund(k, 1_000_000n * USDC);
  const BTC = 'BTC-PERPETUAL';
  const run = (k: typeof long, action: Action): void => {
    const r = h.one(k, action);
    assert.ok(r.ok && r.actions[0]!.ok, JSON.stringify(r, replacer));
  };
  run(short, limit(BTC, 'sell', 500_000, 1_000));
  run(long, limit(BTC, 'buy', 500_000, 1_000));
  // A bid 0.2% over the index and an ask above it: a premium of 2,000 ppm a sample.
  run(quoter, limit(BTC, 'buy', 501_000, 1));
  run(quoter, limit(BTC, 'sell', 502_000, 1));
  const m = h.ex.state.marketByName.get(BTC)!;
  const halt: SignedTx[] = [
    h.tx(VALIDATORS[0]!, {
      kind: 'govPropose',
      proposalId: 1,
      proposal: { kind: 'haltMarket', instrument: BTC },
    }),
    h.tx(VALIDATORS[1]!, { kind: 'govVote', proposalId: 1, approve: true }),
    h.tx(VALIDATORS[2]!, { kind: 'govVote', proposalId: 1, approve: true }),
  ];
  h.block(halt);
  assert.ok(m.halted, 'BTC is halted');
  // To the next interval boundary, a minute at a time: every minute samples the halted book.
  const countBefore = m.premiumCount;
  const cash = h.account(long)!.cashQuote;
  let paid: ExchangeEvent | undefined;
  for (let i = 0; i < 61 && paid === undefined; i++) {
    const next = (Math.floor(h.timeMs / MINUTE_MS) + 1) * MINUTE_MS;
    const r = h.block([], next - h.timeMs);
    paid = r.events.find((e) => e.type === 'funding' && e.market === BTC);
    if (paid === undefined) assert.equal(m.premiumCount, countBefore + i + 1, 'a sample a minute');
  }
  assert.ok(paid !== undefined && paid.type === 'funding', 'the halted market pays at the hour');
  assert.ok(m.halted, 'still halted');
  assert.ok(paid.ratePpm > 0, `longs pay a premium: ${paid.ratePpm} ppm`);
  const owed = divBig(
    1_000n * BigInt(paid.markTicks) * m.k * BigInt(paid.ratePpm),
    1_000_000n,
    'ceil',
  );
  assert.equal(h.account(long)!.cashQuote, cash - owed, 'the long paid size × mark × k × rate');
  assert.equal(paid.paidQuote - paid.receivedQuote, paid.dustQuote, 'exact, with the dust');
});
