// The insurance fund's cover of a liquidated account (docs/exchange.md,
// "Liquidation and deleveraging", step 2): it pays only for a close, and what
// a block's liquidation did not close keeps none of it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, USDC, VALIDATORS, genesis, key, limit, replacer } from './helpers.ts';
import type { Key } from './helpers.ts';
import { Exchange } from '../../src/exchange/index.ts';
import type { BlockResult } from '../../src/exchange/index.ts';
import type { SignedTx } from '../../src/exchange/tx/types.ts';
import { equityQuote } from '../../src/exchange/margin.ts';
import { decodeSnapshot, encodeSnapshot } from '../../src/exchange/snapshot.ts';

const BTC = 'BTC-PERPETUAL';
const ETH = 'ETH-PERPETUAL';
const ONE_BTC = 10_000;

/** The genesis markets at 2% initial and 1% maintenance margin, `fields` on top: a close within the range of trades allowed can then leave cash below zero. */
function thinMargin(fields: { liquidationFeePpm?: number } = {}) {
  return genesis().markets.map((m) => ({
    ...m,
    initialMarginPpm: 20_000,
    maintenanceMarginPpm: 10_000,
    ...fields,
  }));
}

test('a liquidation that price monitoring stops before any fill keeps none of the cover', () => {
  const markets = genesis().markets.map((m) => ({ ...m, liquidationFeePpm: 0 }));
  const h = new Harness(genesis({ markets, insuranceFundQuote: 10_000n * USDC }));
  const [o, c, rich] = [key('cover-stop-o'), key('cover-stop-c'), key('cover-stop-rich')];
  h.fund(o, 2_600n * USDC);
  h.fund(c, 500_000n * USDC);
  h.fund(rich, 500_000n * USDC);
  assert.ok(h.one(c, limit(BTC, 'sell', 500_000, ONE_BTC)).actions[0]!.ok);
  assert.ok(h.one(o, limit(BTC, 'buy', 500_000, ONE_BTC)).actions[0]!.ok);
  // Above the range of trades allowed ([475,000, 525,000]) with no ask to take: it rests.
  assert.ok(h.one(rich, limit(BTC, 'buy', 530_000, 1)).actions[0]!.ok);
  const market = h.ex.state.marketByName.get(BTC)!;
  const cash = h.account(o)!.cashQuote;
  // At $47,000 o's equity is 2,575 − 3,000 = −$425; its sale would first meet the bid beyond the range.
  h.oracle = { ...h.oracle, BTC: 47_000n * USDC };
  const r = h.block([]);
  assert.ok(market.auction!.active, 'the liquidation started an auction');
  assert.equal(r.events.filter((e) => e.type === 'liquidationFill').length, 0);
  assert.equal(h.account(o)!.positions[0]!.sizeLots, ONE_BTC, 'nothing closed');
  // Nothing closed: the cover goes back, as for a market in an auction already.
  assert.equal(h.ex.state.insuranceQuote, 10_000n * USDC);
  assert.equal(h.account(o)!.cashQuote, cash);
  assert.equal(r.events.filter((e) => e.type === 'insuranceCover').length, 0);
  assert.ok(h.ex.state.underwater.has(h.account(o)!), 'withdrawals wait for it');
  // Had o kept the cover, the price coming back would have left it the fund's $425 in equity.
  h.oracle = { ...h.oracle, BTC: 50_000n * USDC };
  h.block([], 60_000);
  assert.equal(h.ex.state.insuranceQuote, 10_000n * USDC);
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});

test('a draw into an account a trade left without positions and below zero does not keep the fund from covering it', () => {
  // 2% initial, 1% maintenance: a close within the range of trades allowed can leave cash below zero.
  const markets = thinMargin({ liquidationFeePpm: 0 });
  const h = new Harness(genesis({ markets, insuranceFundQuote: 10_000n * USDC }));
  const [o, c, bidder] = [key('shortfall-o'), key('shortfall-c'), key('shortfall-bidder')];
  h.fund(o, 1_100n * USDC);
  h.fund(c, 500_000n * USDC);
  h.fund(bidder, 500_000n * USDC);
  assert.ok(h.one(c, limit(BTC, 'sell', 500_000, ONE_BTC)).actions[0]!.ok);
  assert.ok(h.one(o, limit(BTC, 'buy', 500_000, ONE_BTC)).actions[0]!.ok);
  // A bid alone leaves the mark at the index.
  assert.ok(h.one(bidder, limit(BTC, 'buy', 476_000, ONE_BTC)).actions[0]!.ok);
  // At $47,000 o's equity is 1,075 − 3,000 = −$1,925. In the same block it
  // sells to the bid at $47,600 (a gain against the mark: the fill is
  // allowed), which leaves it no position and −$1,348.80 of cash, then draws $1.
  h.oracle = { ...h.oracle, BTC: 47_000n * USDC };
  const sell = limit(BTC, 'sell', 476_000, ONE_BTC, { timeInForce: 'IOC', reduceOnly: true });
  const r = h.block([h.tx(o, sell), h.tx(o, { kind: 'faucet', amountQuote: 1n * USDC })]);
  assert.ok(r.results.every((x) => x.ok && x.actions[0]!.ok));
  const account = h.account(o)!;
  assert.equal(account.positionCount, 0);
  // The fund covers the $1,347.80 left, as it does without the draw: no deficit, no pause.
  assert.equal(account.cashQuote, 0n);
  assert.equal(h.ex.state.insuranceQuote, 10_000n * USDC - 1_347_800_000n);
  assert.equal(h.ex.state.deficits.size, 0);
  const w = h.one(bidder, { kind: 'withdraw', amountQuote: 1n * USDC, destination: 'x' });
  assert.ok(w.actions[0]!.ok, JSON.stringify(w.actions[0]));
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});

test('the liquidation fee leaves what the deleveraging of the rest at the bankruptcy price takes: the next market closes at its mark', () => {
  // 2% initial, 1% maintenance, 1% liquidation fee; the insurance fund starts empty.
  const markets = thinMargin();
  const h = new Harness(genesis({ markets }));
  const [o, c, e, bidder] = [key('fee-o'), key('fee-c'), key('fee-e'), key('fee-bidder')];
  h.fund(o, 2_000n * USDC);
  h.fund(c, 500_000n * USDC);
  h.fund(e, 500_000n * USDC);
  h.fund(bidder, 500_000n * USDC);
  const ETH = 'ETH-PERPETUAL';
  const TEN_ETH = 10_000;
  assert.ok(h.one(c, limit(BTC, 'sell', 500_000, ONE_BTC)).actions[0]!.ok);
  assert.ok(h.one(o, limit(BTC, 'buy', 500_000, ONE_BTC)).actions[0]!.ok);
  assert.ok(h.one(e, limit(ETH, 'sell', 300_000, TEN_ETH)).actions[0]!.ok);
  assert.ok(h.one(o, limit(ETH, 'buy', 300_000, TEN_ETH)).actions[0]!.ok);
  // Half a BTC bid at $48,200 (a bid alone leaves the mark at the index).
  assert.ok(h.one(bidder, limit(BTC, 'buy', 482_000, ONE_BTC / 2)).actions[0]!.ok);
  // o paid $25 + $15 of fees: at $48,200 its equity is 1,960 − 1,800 = $160,
  // below the $780 of maintenance. Its BTC sells no lower than 482,000 − 1,600
  // ticks: half to the bid at the mark, half deleveraged to c at 480,400 ($80).
  h.oracle = { ...h.oracle, BTC: 48_200n * USDC };
  const r = h.block([]);
  const account = h.account(o)!;
  assert.equal(account.positionCount, 0);
  const fees = r.events.filter((x) => x.type === 'liquidation').map((x) => x.feeQuote);
  // The fee is the $160 of equity less the $80 the deleveraging at 480,400 then takes.
  assert.deepEqual(fees, [80n * USDC, 0n]);
  const eth = h.ex.state.marketByName.get(ETH)!;
  const deleverages = r.events.filter((x) => x.type === 'deleverage');
  assert.deepEqual(
    deleverages.map((x) => [x.market, x.priceTicks]),
    [
      [BTC, 480_400],
      // At its mark: e does not pay for a fee the account's equity did not have.
      [ETH, eth.markTicks],
    ],
  );
  assert.equal(account.cashQuote, 0n);
  assert.equal(h.ex.state.insuranceQuote, 80n * USDC);
  assert.equal(r.events.filter((x) => x.type === 'insuranceCover').length, 0);
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});

test('an account a trade left without positions and below zero loses its resting orders before the fund covers it: nothing backs them, and a fill would give a deficit positions', () => {
  const markets = thinMargin({ liquidationFeePpm: 0 });
  const h = new Harness(genesis({ markets, insuranceFundQuote: 0n }));
  const [o, c, bidder] = [key('orders-o'), key('orders-c'), key('orders-bidder')];
  h.fund(o, 1_100n * USDC);
  h.fund(c, 500_000n * USDC);
  h.fund(bidder, 500_000n * USDC);
  assert.ok(h.one(c, limit(BTC, 'sell', 500_000, ONE_BTC)).actions[0]!.ok);
  assert.ok(h.one(o, limit(BTC, 'buy', 500_000, ONE_BTC)).actions[0]!.ok);
  // A small ETH bid of o's, resting below the market.
  assert.ok(h.one(o, limit('ETH-PERPETUAL', 'buy', 290_000, 10)).actions[0]!.ok);
  assert.ok(h.one(bidder, limit(BTC, 'buy', 476_000, ONE_BTC)).actions[0]!.ok);
  // At $47,000 o sells to the bid at $47,600: no position left, about −$1,349 of cash, no fund.
  h.oracle = { ...h.oracle, BTC: 47_000n * USDC };
  const sell = limit(BTC, 'sell', 476_000, ONE_BTC, { timeInForce: 'IOC', reduceOnly: true });
  const r = h.block([h.tx(o, sell)]);
  assert.ok(r.results[0]!.ok && r.results[0]!.actions[0]!.ok);
  const account = h.account(o)!;
  assert.equal(account.positionCount, 0);
  assert.ok(h.ex.state.deficits.has(account), 'a deficit');
  const eth = h.ex.state.marketByName.get('ETH-PERPETUAL')!;
  assert.equal(eth.book.ownerOrderCount(account.index), 0, 'its ETH bid is gone');
  assert.deepEqual(
    r.events.filter((e) => e.type === 'liquidationCancels'),
    [{ type: 'liquidationCancels', account: account.index, orders: 1 }],
  );
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});

/**
 * 2% initial, 1% maintenance (thinMargin), no liquidation fee and a per-block cap of
 * $10,000 on BTC (2,100 lots at $47,600); a $10,000 fund unless given. `o` is long 1 BTC at
 * $50,000 with $1,100, `c` short against it, a bid of 1 BTC rests at $47,600,
 * and `x` holds $1,000. Keys named after `prefix`.
 */
function cappedLong(prefix: string, insuranceFundQuote = 10_000n * USDC) {
  const markets = thinMargin({ liquidationFeePpm: 0 });
  markets[0] = { ...markets[0]!, liquidationQuoteMaxPerBlock: 10_000n * USDC };
  const h = new Harness(genesis({ markets, insuranceFundQuote }));
  const [o, c, bidder, x] = ['o', 'c', 'b', 'x'].map((n) => key(`${prefix}-${n}`)) as [
    Key,
    Key,
    Key,
    Key,
  ];
  h.fund(o, 1_100n * USDC);
  h.fund(c, 500_000n * USDC);
  h.fund(bidder, 500_000n * USDC);
  h.fund(x, 1_000n * USDC);
  assert.ok(h.one(c, limit(BTC, 'sell', 500_000, ONE_BTC)).actions[0]!.ok);
  assert.ok(h.one(o, limit(BTC, 'buy', 500_000, ONE_BTC)).actions[0]!.ok);
  assert.ok(h.one(bidder, limit(BTC, 'buy', 476_000, ONE_BTC)).actions[0]!.ok);
  return { h, o, x };
}

test('a liquidation the per-block cap cuts short keeps the cover only for what it closed: the share for the rest goes back, so the fund does not carry positions that stay open', () => {
  const { h, o } = cappedLong('cap-cover');
  // At $47,600 (the mark: a bid alone leaves it at the index) o's equity is
  // 1,075 − 2,400 = −$1,325: the fund covers it, the bankruptcy price is the
  // mark, and the cap ($10,000 at $4.76 a lot: 2,100 lots) closes a fifth of it.
  h.oracle = { ...h.oracle, BTC: 47_600n * USDC };
  const r = h.block([]);
  const account = h.account(o)!;
  const left = account.positions[0]!.sizeLots;
  assert.equal(left, ONE_BTC - 2_100);
  // The share of the $1,325 for the lots still open went back (rounded up): the
  // fund paid for the closed slice only, and o stays below zero for the rest.
  const cover = 1_325n * USDC;
  const back = (cover * BigInt(left) + BigInt(ONE_BTC) - 1n) / BigInt(ONE_BTC);
  assert.equal(back, 1_046_750_000n);
  assert.equal(h.ex.state.insuranceQuote, 10_000n * USDC - (cover - back));
  assert.deepEqual(
    r.events.filter((e) => e.type === 'insuranceCover'),
    [{ type: 'insuranceCover', account: account.index, amountQuote: cover - back }],
  );
  assert.equal(equityQuote(h.ex.state, account), -back);
  assert.ok(h.ex.state.underwater.has(account));
  // Prices come back before the next slice: the fund pays nothing more, and
  // what o regains is not the fund's money.
  h.oracle = { ...h.oracle, BTC: 50_000n * USDC };
  h.block([]);
  assert.equal(h.ex.state.insuranceQuote, 10_000n * USDC - (cover - back));
  assert.ok(equityQuote(h.ex.state, account) > 0n);
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});

/**
 * Runs `txs` in one block on the node that ran every block and on `copy`, a
 * node restored from a snapshot: the same results and the same appHash.
 */
function onBoth(h: Harness, copy: Exchange, txs: SignedTx[]): BlockResult {
  const block = h.nextBlock(txs);
  const ours = h.ex.finalizeBlock(block);
  const theirs = copy.finalizeBlock(block);
  assert.equal(JSON.stringify(theirs.results, replacer), JSON.stringify(ours.results, replacer));
  assert.deepEqual(theirs.appHash, ours.appHash, 'the restored node agrees');
  return ours;
}

/**
 * Five blocks at $47,600, in each a withdrawal of x and a transfer between
 * x's subaccounts (unrelated to o), from the third on also on a node
 * restored from a snapshot taken after the second: the refusal codes per
 * block, o's BTC position after each, and what the fund paid (its events).
 */
function slicesWithOutflows(h: Harness, o: Key, x: Key) {
  // At $47,600 o is $1,325 below zero: five slices, the last one of 1,600 lots.
  h.oracle = { ...h.oracle, BTC: 47_600n * USDC };
  const sizes: number[] = [];
  const codes: string[][] = [];
  let covered = 0n;
  let copy: Exchange | null = null;
  for (let b = 0; b < 5; b++) {
    if (b === 2) {
      const restored = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
      assert.ok(restored instanceof Exchange, 'the snapshot restores');
      copy = restored;
    }
    const txs = [
      h.tx(x, { kind: 'withdraw', amountQuote: 1n, destination: 'x' }),
      h.tx(x, { kind: 'transfer', fromSubaccount: 0, toSubaccount: 1, amountQuote: 1n }),
    ];
    const r = copy === null ? h.block(txs) : onBoth(h, copy, txs);
    for (const e of r.events) if (e.type === 'insuranceCover') covered += e.amountQuote;
    codes.push(
      r.results.map((t) => (!t.ok ? 'rejected' : t.actions[0]!.ok ? 'ok' : t.actions[0]!.code)),
    );
    sizes.push(h.account(o)!.positions[0]!.sizeLots);
  }
  return { sizes, codes, covered };
}

test('a liquidation the per-block cap cuts into slices pauses neither withdrawals nor transfers while the insurance fund can pay what the account lacks, and pays no more in all than the cover at once', () => {
  const { h, o, x } = cappedLong('cap-pause');
  const fund = h.ex.state.insuranceQuote;
  const { sizes, codes, covered } = slicesWithOutflows(h, o, x);
  assert.deepEqual(sizes, [7_900, 5_800, 3_700, 1_600, 0]);
  // o stays below zero until its last slice, but the fund holds what it lacks
  // (the cover's share for what stays open went back): deleveraging would
  // close at the mark, which costs no counterparty anything.
  assert.deepEqual(
    codes,
    Array.from({ length: 5 }, () => ['ok', 'ok']),
  );
  assert.equal(h.account(x)!.cashQuote, 1_000n * USDC - 10n);
  assert.equal(h.account(x, 1)!.cashQuote, 5n);
  // At static prices the fund paid the whole gap, no more, and the events say so.
  assert.equal(fund - h.ex.state.insuranceQuote, 1_325n * USDC);
  assert.equal(covered, 1_325n * USDC);
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});

test('a liquidation the per-block cap cuts into slices pauses withdrawals and transfers for everyone until its last slice when the insurance fund cannot pay what the account lacks', () => {
  const { h, o, x } = cappedLong('cap-short', 500n * USDC);
  const { sizes, codes, covered } = slicesWithOutflows(h, o, x);
  assert.deepEqual(sizes, [7_900, 5_800, 3_700, 1_600, 0]);
  // The first block's outflows come before its liquidation (o lacks $1,325 at
  // the block's marks, the fund holds $500); then o lacks more than the fund
  // holds until its last slice: the rest is deleveraged beyond the mark.
  assert.deepEqual(
    codes,
    Array.from({ length: 5 }, () => ['WithdrawalsPaused', 'TransfersPaused']),
  );
  assert.equal(h.account(x)!.cashQuote, 1_000n * USDC);
  assert.equal(covered, 500n * USDC);
  assert.equal(h.ex.state.insuranceQuote, 0n);
  assert.equal(h.ex.state.underwater.size + h.ex.state.deficits.size, 0);
  const w = h.one(x, { kind: 'withdraw', amountQuote: 1n, destination: 'x' });
  assert.ok(w.ok && w.actions[0]!.ok, 'withdrawals go on once the last slice closed');
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});

test('the cover share of a position in a halted market goes back to the fund, which holds it while the account lacks it: a halt does not pause withdrawals for everyone while the fund can pay', () => {
  const markets = thinMargin({ liquidationFeePpm: 0 });
  const h = new Harness(genesis({ markets, insuranceFundQuote: 10_000n * USDC }));
  const [o, c, bidder, x] = [key('halt-o'), key('halt-c'), key('halt-b'), key('halt-x')];
  h.fund(o, 1_300n * USDC);
  h.fund(c, 500_000n * USDC);
  h.fund(bidder, 500_000n * USDC);
  h.fund(x, 1_000n * USDC);
  assert.ok(h.one(c, limit(BTC, 'sell', 500_000, ONE_BTC)).actions[0]!.ok);
  assert.ok(h.one(o, limit(BTC, 'buy', 500_000, ONE_BTC)).actions[0]!.ok);
  // 4,000 ETH lots at $3,000 ($12,000 of notional), at no profit or loss.
  assert.ok(h.one(c, limit(ETH, 'sell', 300_000, 4_000)).actions[0]!.ok);
  assert.ok(h.one(o, limit(ETH, 'buy', 300_000, 4_000)).actions[0]!.ok);
  assert.ok(h.one(bidder, limit(BTC, 'buy', 476_000, ONE_BTC)).actions[0]!.ok);
  govern(h, 1, 'haltMarket');
  const fund = h.ex.state.insuranceQuote;
  // At $47,600 the BTC long closes in full at the mark; the ETH one waits.
  h.oracle = { ...h.oracle, BTC: 47_600n * USDC };
  h.block([]);
  const account = h.account(o)!;
  assert.equal(account.positions[0]!.sizeLots, 0);
  assert.equal(account.positions[1]!.sizeLots, 4_000);
  // The cover's share for the ETH long that stays open ($12,000 of the
  // $59,600 at the marks) went back: kept, the fund's money would carry it,
  // the account's if prices came back. The fund holds it while o lacks it,
  // so a long halt does not pause withdrawals for everyone while it can pay.
  // o's gap: $1,300 less $31 of fees and $2,400 lost.
  const gap = 1_131n * USDC;
  const lacking = (gap * 12_000n + 59_600n - 1n) / 59_600n;
  assert.equal(equityQuote(h.ex.state, account), -lacking);
  assert.ok(h.ex.state.underwater.has(account));
  assert.equal(fund - h.ex.state.insuranceQuote, gap - lacking);
  for (let b = 0; b < 3; b++) {
    const w = h.one(x, { kind: 'withdraw', amountQuote: 1n, destination: 'x' });
    assert.ok(w.actions[0]!.ok, JSON.stringify(w.actions[0]));
  }
  // Resumed, the ETH position closes at its mark: at static prices the fund
  // has paid, in all, the gap it would have paid at once.
  govern(h, 2, 'resumeMarket');
  h.block([]);
  assert.equal(account.positionCount, 0);
  assert.equal(h.ex.state.underwater.size, 0);
  assert.equal(fund - h.ex.state.insuranceQuote, gap);
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});

function govern(h: Harness, proposalId: number, kind: 'haltMarket' | 'resumeMarket'): void {
  const propose = h.tx(VALIDATORS[0]!, {
    kind: 'govPropose',
    proposalId,
    proposal: { kind, instrument: ETH },
  });
  assert.ok(h.block([propose]).results[0]!.actions[0]!.ok);
  for (const v of [1, 2]) {
    const vote = h.tx(VALIDATORS[v]!, { kind: 'govVote', proposalId, approve: true });
    assert.ok(h.block([vote]).results[0]!.actions[0]!.ok);
  }
  assert.equal(h.ex.state.marketByName.get(ETH)!.halted, kind === 'haltMarket');
}

test('the pause weighs what the accounts below zero lack against the fund: a fund of exactly that much pays it all at the mark, one unit less does not', () => {
  const exact = cappedLong('cap-exact', 1_325n * USDC);
  const enough = slicesWithOutflows(exact.h, exact.o, exact.x);
  assert.deepEqual(
    enough.codes,
    Array.from({ length: 5 }, () => ['ok', 'ok']),
  );
  assert.equal(exact.h.ex.state.insuranceQuote, 0n);
  const short = cappedLong('cap-unit', 1_325n * USDC - 1n);
  const lacking = slicesWithOutflows(short.h, short.o, short.x);
  // One unit short, the first slice closes beyond the mark (a tick, in o's
  // favour): its counterparty bears what the fund lacked, and from then on the
  // fund holds what o lacks for the rest.
  assert.deepEqual(lacking.codes, [
    ['WithdrawalsPaused', 'TransfersPaused'],
    ...Array.from({ length: 4 }, () => ['ok', 'ok']),
  ]);
  assert.deepEqual(lacking.sizes, [7_900, 5_800, 3_700, 1_600, 0]);
});
