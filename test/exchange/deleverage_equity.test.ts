// Deleveraging and the fill guard (docs/exchange.md, "Liquidation and
// deleveraging"): a counterparty closed at the bankruptcy price of an account
// whose loss went past its equity buys or sells beyond the mark, and is closed
// only as far as its own equity stays at zero or above.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Harness, USDC, key, limit } from './helpers.ts';
import { belowMaintenance, equityQuote } from '../../src/exchange/margin.ts';

const BTC = 'BTC-PERPETUAL';
const ETH = 'ETH-PERPETUAL';
const ONE_BTC = 10_000;

test('a counterparty whose equity cannot absorb the bankruptcy price is deleveraged only to zero; the next one takes the rest', () => {
  const h = new Harness();
  const a = key('a');
  const b = key('b');
  const c = key('c');
  const poor = key('poor');
  const e = key('e');
  h.fund(a, 2_600n * USDC);
  h.fund(b, 500_000n * USDC);
  h.fund(c, 500_000n * USDC);
  h.fund(poor, 1_800n * USDC);
  h.fund(e, 500_000n * USDC);
  // a long 1 BTC at $50,000: 9,000 lots from b, 1,000 from poor; c long 1,000 from b.
  assert.equal(h.one(poor, limit(BTC, 'sell', 500_000, 1_000)).actions[0]!.ok, true);
  assert.equal(h.one(b, limit(BTC, 'sell', 500_000, 10_000)).actions[0]!.ok, true);
  assert.equal(h.one(a, limit(BTC, 'buy', 500_000, ONE_BTC)).actions[0]!.ok, true);
  assert.equal(h.one(c, limit(BTC, 'buy', 500_000, 1_000)).actions[0]!.ok, true);
  // poor also long 10 ETH at $3,000 (maker fees: $1 and $6).
  assert.equal(h.one(poor, limit(ETH, 'buy', 300_000, 10_000)).actions[0]!.ok, true);
  assert.equal(h.one(e, limit(ETH, 'sell', 300_000, 10_000)).actions[0]!.ok, true);
  assert.equal(h.account(poor)!.positions[0]!.sizeLots, -1_000);
  assert.equal(h.account(poor)!.positions[1]!.sizeLots, 10_000);
  // BTC to $47,000 (a: 2,575 − 3,000 = −$425, no insurance: bankruptcy 474,250 ticks),
  // ETH to $2,792.70: poor's equity 1,800 − 7 + 300 − 2,073 = $20.
  h.oracle = { ...h.oracle, BTC: 47_000n * USDC, ETH: 2_792_700_000n };
  const r = h.block([]);
  const adl = r.events.filter((x) => x.type === 'deleverage' && x.account === h.account(a)!.index);
  // poor ranks first (its profit × leverage is the highest). Buying back at $47,425
  // loses it $0.0425 a lot against the mark: $20 covers 470 lots.
  assert.deepEqual(
    adl.map((x) => x.type === 'deleverage' && [x.counterparty, x.sizeLots, x.priceTicks]),
    [
      [h.account(poor)!.index, 470, 474_250],
      [h.account(b)!.index, ONE_BTC - 470, 474_250],
    ],
  );
  assert.equal(h.account(a)!.positionCount, 0);
  assert.equal(h.account(a)!.cashQuote, 0n);
  assert.ok(equityQuote(h.ex.state, h.account(poor)!) >= 0n);
  assert.equal(h.ex.state.deficits.size, 0);
  // Left near zero, poor is liquidated in turn, with equity ≥ 0: nobody is pushed below zero.
  for (const k of [a, b, c, poor, e]) assert.ok(equityQuote(h.ex.state, h.account(k)!) >= 0n);
});

test('property: a block of liquidations and deleveraging takes no account from zero or above to below zero', () => {
  // poor, short BTC against a, long ETH: the ETH price is set so that poor's
  // equity at the new marks is `slackUsd`, around what deleveraging a's long at
  // its bankruptcy price (beyond the mark) would cost it. Between its
  // maintenance and that cost it is not liquidated itself, so nothing in the
  // block would bring it back to zero (the example: $1,300 against $1,712).
  // It is the ranking's first (the highest profit × leverage).
  fc.assert(
    fc.property(
      fc.integer({ min: 44_000, max: 49_000 }),
      fc.integer({ min: 1, max: 5_000 }),
      fc.integer({ min: 0, max: 2_000 }),
      (btcUsd, poorLots, slackUsd) => {
        const h = new Harness();
        const a = key('a');
        const b = key('b');
        const c = key('c');
        const poor = key('poor');
        const e = key('e');
        h.fund(a, 2_600n * USDC);
        for (const k of [b, c, e]) h.fund(k, 500_000n * USDC);
        h.fund(poor, 3_000n * USDC);
        const placed = (r: ReturnType<Harness['one']>): void => assert.ok(r.actions[0]!.ok);
        placed(h.one(poor, limit(BTC, 'sell', 500_000, poorLots)));
        placed(h.one(b, limit(BTC, 'sell', 500_000, ONE_BTC)));
        placed(h.one(a, limit(BTC, 'buy', 500_000, ONE_BTC)));
        placed(h.one(c, limit(BTC, 'buy', 500_000, poorLots)));
        placed(h.one(poor, limit(ETH, 'buy', 300_000, 5_000)));
        placed(h.one(e, limit(ETH, 'sell', 300_000, 5_000)));
        // k = 10 in both markets: equity = cash + Σ size × mark ticks × 10.
        const btcTicks = BigInt(btcUsd) * 10n;
        const poorCash = h.account(poor)!.cashQuote;
        const ethTicks =
          (BigInt(slackUsd) * USDC - poorCash + BigInt(poorLots) * btcTicks * 10n + 49_999n) /
          50_000n;
        const marks = [btcTicks, ethTicks];
        const keys = [a, b, c, poor, e];
        const before = keys.map((k) => {
          const acct = h.account(k)!;
          return acct.positions.reduce(
            (s, p, i) => s + BigInt(p.sizeLots) * marks[i]! * 10n,
            acct.cashQuote,
          );
        });
        h.oracle = { ...h.oracle, BTC: btcTicks * 100_000n, ETH: ethTicks * 10_000n };
        h.block([]);
        keys.forEach((k, i) => {
          if (before[i]! >= 0n) assert.ok(equityQuote(h.ex.state, h.account(k)!) >= 0n, `${i}`);
        });
      },
    ),
    { numRuns: 40, seed: 7, examples: [[44_000, 5_000, 1_300]] },
  );
});

test('a counterparty that deleveraging leaves below maintenance is liquidated in the next block, marks unmoved', () => {
  const h = new Harness();
  const a = key('a');
  const poor = key('poor');
  const [b, c, e] = [key('b'), key('c'), key('e')];
  h.fund(a, 2_600n * USDC);
  for (const k of [b, c, e]) h.fund(k, 500_000n * USDC);
  h.fund(poor, 3_000n * USDC);
  assert.ok(h.one(poor, limit(BTC, 'sell', 500_000, 5_000)).actions[0]!.ok);
  assert.ok(h.one(b, limit(BTC, 'sell', 500_000, ONE_BTC)).actions[0]!.ok);
  assert.ok(h.one(a, limit(BTC, 'buy', 500_000, ONE_BTC)).actions[0]!.ok);
  assert.ok(h.one(c, limit(BTC, 'buy', 500_000, 5_000)).actions[0]!.ok);
  assert.ok(h.one(poor, limit(ETH, 'buy', 300_000, 5_000)).actions[0]!.ok);
  assert.ok(h.one(e, limit(ETH, 'sell', 300_000, 5_000)).actions[0]!.ok);
  // BTC to $44,000 (a's bankruptcy price far above the mark), ETH to $2,001.60:
  // poor starts the block above maintenance and ends it a few cents above zero.
  h.oracle = { ...h.oracle, BTC: 44_000n * USDC, ETH: 2_001_600_000n };
  const first = h.block([]);
  assert.ok(
    first.events.some((x) => x.type === 'deleverage' && x.counterparty === h.account(poor)!.index),
  );
  assert.ok(belowMaintenance(h.ex.state, h.account(poor)!));
  assert.notEqual(h.account(poor)!.positions[0]!.sizeLots, 0);
  // The same oracle: no mark moves, and poor is liquidated all the same.
  const marks = h.ex.state.markets.map((m) => m.markTicks);
  const next = h.block([]);
  assert.deepEqual(
    h.ex.state.markets.map((m) => m.markTicks),
    marks,
  );
  assert.ok(
    next.events.some((x) => x.type === 'liquidation' && x.account === h.account(poor)!.index),
  );
  assert.equal(belowMaintenance(h.ex.state, h.account(poor)!), false);
});
