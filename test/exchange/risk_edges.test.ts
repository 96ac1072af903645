// Edge cases of the risk engine found in review: each test failed before its fix.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, USDC, VALIDATORS, dailyListingGenesis, genesis, key, limit } from './helpers.ts';
import { daysFromCivil, expiryMsOfDay, MS_PER_DAY } from '../../src/exchange/instruments/index.ts';
import {
  belowMaintenance,
  equityQuote,
  maintenanceMarginQuote,
} from '../../src/exchange/margin.ts';
import { decodeSnapshot, encodeSnapshot } from '../../src/exchange/snapshot.ts';
import type { GovProposal } from '../../src/exchange/tx/types.ts';

const BTC = 'BTC-PERPETUAL';
const ONE_BTC = 10_000;

test('a long in a market with 100% maintenance has unbounded slack (no division by zero in the scan)', () => {
  const g = genesis();
  const markets = g.markets.map((m) => ({
    ...m,
    initialMarginPpm: 1_000_000,
    maintenanceMarginPpm: 1_000_000,
  }));
  const h = new Harness(genesis({ markets }));
  const a = key('a');
  const b = key('b');
  h.fund(a, 60_000n * USDC);
  h.fund(b, 200_000n * USDC);
  assert.equal(h.one(b, limit(BTC, 'sell', 500_000, ONE_BTC)).actions[0]!.ok, true);
  assert.equal(h.one(a, limit(BTC, 'buy', 500_000, ONE_BTC)).actions[0]!.ok, true);
  h.oracle = { ...h.oracle, BTC: 49_000n * USDC };
  const r = h.block([]);
  assert.equal(r.events.filter((e) => e.type === 'liquidation').length, 0);
  assert.equal(h.account(a)!.positions[0]!.sizeLots, ONE_BTC);
});

/** a long 1 BTC at $50,000 with $2,600 of collateral, b short against it; BTC then halted. */
function longInHaltedMarket(insuranceFundQuote: bigint) {
  const h = new Harness(genesis({ insuranceFundQuote }));
  const a = key('a');
  const b = key('b');
  h.fund(a, 2_600n * USDC);
  h.fund(b, 500_000n * USDC);
  assert.equal(h.one(b, limit(BTC, 'sell', 500_000, ONE_BTC)).actions[0]!.ok, true);
  assert.equal(h.one(a, limit(BTC, 'buy', 500_000, ONE_BTC)).actions[0]!.ok, true);
  govern(h, 1, { kind: 'haltMarket', instrument: BTC });
  assert.equal(h.ex.state.markets[0]!.halted, true);
  return { h, a, b };
}

/** Three of the four equal validators approve: more than 2/3 of stake. */
function govern(h: Harness, proposalId: number, proposal: GovProposal) {
  const events = [
    ...h.block([h.tx(VALIDATORS[0]!, { kind: 'govPropose', proposalId, proposal })]).events,
  ];
  for (const v of [1, 2]) {
    const r = h.block([h.tx(VALIDATORS[v]!, { kind: 'govVote', proposalId, approve: true })]);
    assert.equal(r.results[0]!.ok, true);
    events.push(...r.events);
  }
  return events;
}

test('the insurance fund does not cover an account whose positions cannot be closed (halted market)', () => {
  const { h, a } = longInHaltedMarket(10_000n * USDC);
  // At $47,000 equity is 2,575 − 3,000 = −$425, but the halted market closes nothing.
  h.oracle = { ...h.oracle, BTC: 47_000n * USDC };
  const r = h.block([]);
  assert.equal(r.events.filter((e) => e.type === 'insuranceCover').length, 0);
  assert.equal(h.ex.state.insuranceQuote, 10_000n * USDC);
  // The price comes back: the account is whole again with its own money only.
  h.oracle = { ...h.oracle, BTC: 50_000n * USDC };
  h.block([]);
  assert.equal(h.account(a)!.cashQuote, (2_600n - 50_000n - 25n) * USDC);
  assert.equal(h.ex.state.insuranceQuote, 10_000n * USDC);
});

test('an account below zero equity that a halt keeps from liquidation pauses withdrawals, while it lacks more than the insurance fund holds, until it is resolved', () => {
  // A $100 fund: a's $425 gap would be deleveraged beyond the mark, against b.
  const { h, a, b } = longInHaltedMarket(100n * USDC);
  // b's short gained $3,000 that only a's collateral, now −$425, backs.
  h.oracle = { ...h.oracle, BTC: 47_000n * USDC };
  h.block([]);
  assert.ok(h.ex.state.underwater.has(h.account(a)!), 'a is underwater');
  const paused = h.one(b, { kind: 'withdraw', amountQuote: 1_000n * USDC, destination: 'x' });
  assert.ok(paused.ok && !paused.actions[0]!.ok, 'the withdrawal is refused');
  assert.equal(paused.actions[0]!.code, 'WithdrawalsPaused');
  // A restored node rebuilds the set from the state, and agrees.
  const copy = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
  assert.deepEqual(
    [...copy.state.underwater].map((x) => x.index),
    [h.account(a)!.index],
  );
  // The market resumes: a is liquidated (the fund covers $100 of its gap, b's
  // short the rest), withdrawals go on.
  govern(h, 2, { kind: 'resumeMarket', instrument: BTC });
  assert.equal(h.ex.state.underwater.size, 0);
  assert.equal(h.account(a)!.positionCount, 0);
  assert.equal(h.ex.state.insuranceQuote, 0n);
  const w = h.one(b, { kind: 'withdraw', amountQuote: 1_000n * USDC, destination: 'x' });
  assert.ok(w.ok && w.actions[0]!.ok, JSON.stringify(w.actions[0]));
});

test('an account below zero equity that a halt keeps from liquidation pauses no withdrawal while the insurance fund can pay what it lacks, on a restored node too', () => {
  const { h, a, b } = longInHaltedMarket(10_000n * USDC);
  h.oracle = { ...h.oracle, BTC: 47_000n * USDC };
  h.block([]);
  assert.ok(h.ex.state.underwater.has(h.account(a)!), 'a is underwater');
  const copy = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
  const block = h.nextBlock([
    h.tx(b, { kind: 'withdraw', amountQuote: 1_000n * USDC, destination: 'x' }),
  ]);
  const ours = h.ex.finalizeBlock(block);
  const theirs = copy.finalizeBlock(block);
  // a lacks $425, the fund holds $10,000: were the market to resume, a would
  // be closed at the mark, the fund paying its gap.
  assert.ok(ours.results[0]!.ok && ours.results[0]!.actions[0]!.ok, 'the withdrawal goes through');
  assert.deepEqual(theirs.results, ours.results);
  assert.deepEqual(theirs.appHash, ours.appHash);
  assert.ok(h.ex.state.underwater.has(h.account(a)!), 'a is still underwater');
  govern(h, 2, { kind: 'resumeMarket', instrument: BTC });
  assert.equal(h.account(a)!.positionCount, 0);
  assert.equal(h.ex.state.insuranceQuote, 10_000n * USDC - 425n * USDC);
});

test('an account below maintenance in a halted market is liquidated when the market resumes, marks unmoved', () => {
  const { h, a } = longInHaltedMarket(0n);
  // At $48,800: equity $1,375 < maintenance $1,464; the halt holds the position.
  h.oracle = { ...h.oracle, BTC: 48_800n * USDC };
  h.block([]);
  h.block([]);
  assert.equal(h.account(a)!.positions[0]!.sizeLots, ONE_BTC);
  const c = key('c');
  h.fund(c, 500_000n * USDC);
  const events = govern(h, 2, { kind: 'resumeMarket', instrument: BTC });
  assert.equal(h.ex.state.markets[0]!.halted, false);
  // Nothing moves the mark any more; the resumed market's holders are scanned all the same.
  events.push(...h.block([h.tx(c, limit(BTC, 'buy', 480_000, ONE_BTC))]).events);
  events.push(...h.block([]).events);
  assert.equal(events.filter((e) => e.type === 'liquidation').length, 1);
  assert.equal(h.account(a)!.positions[0]!.sizeLots, 0);
});

test('an account that trades out of its last position with negative cash is a deficit: insurance, then withdrawals pause', () => {
  // No price monitoring: nothing bounds a trade's price but the traders' limits.
  const markets = genesis().markets.map((m) => ({ ...m, triggers: [] }));
  const h = new Harness(genesis({ markets, insuranceFundQuote: 100n * USDC }));
  const a = key('a');
  const b = key('b');
  const c = key('c');
  h.fund(a, 2_600n * USDC);
  h.fund(b, 500_000n * USDC);
  h.fund(c, 500_000n * USDC);
  assert.equal(h.one(b, limit(BTC, 'sell', 500_000, ONE_BTC)).actions[0]!.ok, true);
  assert.equal(h.one(a, limit(BTC, 'buy', 500_000, ONE_BTC)).actions[0]!.ok, true);
  assert.equal(h.one(c, limit(BTC, 'buy', 470_500, ONE_BTC)).actions[0]!.ok, true);
  // At $47,000 a's equity is −$425. Selling $50 above the mark gains (less its
  // $23.525 fee), so the fill guard lets it through, before the block's scan.
  h.oracle = { ...h.oracle, BTC: 47_000n * USDC };
  h.block([h.tx(a, limit(BTC, 'sell', 470_000, ONE_BTC, { timeInForce: 'IOC' }))]);
  const acct = h.account(a)!;
  assert.equal(acct.positionCount, 0);
  // Cash 2,575 − 3,000 + 50 − 23.525 = −$398.525; the fund covers $100.
  assert.equal(h.ex.state.insuranceQuote, 0n);
  assert.equal(acct.cashQuote, -298_525_000n);
  assert.ok(h.ex.state.deficits.has(acct));
  const w = h.one(c, { kind: 'withdraw', amountQuote: USDC, destination: 'x' });
  assert.ok(w.ok && !w.actions[0]!.ok && w.actions[0]!.code === 'WithdrawalsPaused');
});

test('a short option whose scenario margin rises while its mark in ticks stays is liquidated', () => {
  const start = daysFromCivil(2026, 3, 2) * MS_PER_DAY;
  const expiry = expiryMsOfDay(daysFromCivil(2026, 3, 2));
  // A flat smile: total variance for 50% volatility over eight hours.
  const flat = { a: 228_000_000_000_000n, b: 0n, rho: 0n, m: 0n, sigma: 10n ** 17n };
  const h = new Harness(dailyListingGenesis(start));
  h.smiles = [
    { underlying: 'BTC', expiryMs: expiry, svi: flat },
    { underlying: 'ETH', expiryMs: expiry, svi: flat },
  ];
  const a = key('a');
  const b = key('b');
  h.fund(a, 2_000n * USDC);
  h.fund(b, 1_000_000n * USDC);
  h.block([], 60_000);
  const CALL = 'BTC-2MAR26-52000-C';
  const call = h.ex.state.marketByName.get(CALL)!;
  // Far out of the money: one tick ($5) at a forward of $50,000.
  assert.equal(call.markTicks, 1);
  assert.equal(h.one(a, limit(CALL, 'sell', 1, 3)).actions[0]!.ok, true);
  assert.equal(h.one(b, limit(CALL, 'buy', 1, 3)).actions[0]!.ok, true);
  // A long ETH perpetual whose losses take a to $10 or so above maintenance.
  assert.equal(h.one(b, limit('ETH-PERPETUAL', 'sell', 300_000, 1_000)).actions[0]!.ok, true);
  assert.equal(h.one(a, limit('ETH-PERPETUAL', 'buy', 300_000, 1_000)).actions[0]!.ok, true);
  const state = h.ex.state;
  const acct = h.account(a)!;
  const gap = () => equityQuote(state, acct) - maintenanceMarginQuote(state, acct);
  for (let i = 0; i < 4; i++) {
    // 1 ETH long: $1 of ETH is $1 of equity.
    h.oracle = { ...h.oracle, ETH: h.oracle.ETH! - ((gap() - 10n * USDC) * 97n) / 100n };
    h.block([]);
  }
  assert.ok(gap() > 0n && gap() < 11n * USDC);
  // BTC up $100: the call's mark stays one tick, its scenario loss at +12.5% grows.
  h.oracle = { ...h.oracle, BTC: h.oracle.BTC! + 100n * USDC };
  const r = h.block([]);
  assert.equal(call.markTicks, 1);
  assert.ok(r.events.some((e) => e.type === 'liquidation' && e.account === acct.index));
  assert.equal(belowMaintenance(state, acct), false);
});

test('a dated future takes the initial-margin scale-up of its template, as a perpetual does', () => {
  const start = daysFromCivil(2026, 3, 2) * MS_PER_DAY;
  const h = new Harness(dailyListingGenesis(start));
  const a = key('a');
  h.fund(a, 850_000n * USDC);
  h.block([], 60_000);
  // Three bids of 100 BTC (a dated future's largest order) at $50,000: $15M of
  // exposure needs 5% + 1% for one full $10M step = $900,000 > $850,000.
  for (const instrument of [BTC, 'BTC-2MAR26']) {
    const bid = () => h.one(a, limit(instrument, 'buy', 500_000, 100 * ONE_BTC)).actions[0]!;
    assert.equal(bid().ok, true);
    assert.equal(bid().ok, true);
    const r = bid();
    assert.equal(!r.ok && r.code, 'InsufficientMargin', instrument);
    assert.equal(h.one(a, { kind: 'cancelAll', instrument }).actions[0]!.ok, true);
  }
});
