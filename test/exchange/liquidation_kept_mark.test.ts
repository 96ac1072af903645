// A bankruptcy price beside an option held at a kept mark (docs/exchange.md,
// "Liquidation and deleveraging", step 3): the kept mark counts in the
// equity the price is taken from only as far as the option is sure to be
// worth (a long's intrinsic value at this block's forward), so a position
// closed beside it spends no equity nobody observed, and the insurance fund
// pays nothing for what the option may still be worth.
//
// The situation (as listing.test.ts's long put beside a short future): Alice
// holds 3 BTC of the 52,000 put, bought at $2,000 a BTC, and is short 1 BTC
// of the daily future, with $8,500 of equity. The smile goes stale; BTC goes
// up 5% to $52,500, out of the put's money, which keeps its $2,000 mark
// ($300 a BTC at the fresh smile). Her equity by the marks is $6,000, all of
// it the put's kept mark; once the stale smile's grace is over, she is
// liquidated. Her short future's bankruptcy price was the mark + $6,000
// ($58,500): deleveraged there, Bob, long the future, took the $6,000 the put
// was counted at, and Alice, her put worth $900, was left $5,100 below zero,
// a loss for the insurance fund once the smile came back.
//
// A short option valued by its expiry's last smile (within the grace and
// after it) counts the other way: at no less than that value, its time value
// owed as likely as its intrinsic value (the second test), and with its
// index stale at the last forward observed, as maintenance values it (the
// third).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  equityQuote,
  freeCollateralQuote,
  maintenanceMarginQuote,
} from '../../src/exchange/margin.ts';
import { unsureQuote } from '../../src/exchange/liquidation.ts';
import { decodeSnapshot, encodeSnapshot } from '../../src/exchange/index.ts';
import { graceValuePerLotWad } from '../../src/exchange/listed_margin.ts';
import { sizeIn } from '../../src/exchange/position.ts';
import type { ExchangeEvent } from '../../src/exchange/results.ts';
import {
  Harness,
  LISTING_DAY_SMILES,
  LISTING_DAY_START_MS,
  accepted,
  USDC,
  dailyListingGenesis,
  key,
  limit,
  replacer,
} from './helpers.ts';

const MINUTE_MS = 60_000;
const START_MS = LISTING_DAY_START_MS;
const FUTURE = 'BTC-2MAR26';
const PUT = 'BTC-2MAR26-52000-P';
const alice = key('kept-mark-alice');
const bob = key('kept-mark-bob');

test("a short future beside a long option at a kept mark is deleveraged at the mark, not at a bankruptcy price that spends the option's unobserved value", () => {
  const h = new Harness(dailyListingGenesis(START_MS));
  h.smiles = LISTING_DAY_SMILES;
  h.fund(alice, 20_000n * USDC);
  h.fund(bob, 1_000_000n * USDC);
  h.block([], MINUTE_MS);
  const state = h.ex.state;
  const put = state.marketByName.get(PUT)!;
  const future = state.marketByName.get(FUTURE)!;
  accepted(h.one(bob, limit(PUT, 'sell', put.markTicks, 30)));
  accepted(h.one(alice, limit(PUT, 'buy', put.markTicks, 30)));
  accepted(h.one(bob, limit(FUTURE, 'buy', future.markTicks, 10_000)));
  accepted(h.one(alice, limit(FUTURE, 'sell', future.markTicks, 10_000)));
  const a = h.account(alice)!;
  const b = h.account(bob)!;
  h.smiles = null;
  h.block([], 61_000);
  assert.equal(put.optionMark, null, 'no fresh smile: the put keeps its mark');
  accepted(h.one(alice, { kind: 'withdraw', amountQuote: 11_472n * USDC, destination: 'a' }));
  h.oracle = { ...h.oracle, BTC: 52_500n * USDC };
  let events: ExchangeEvent[] = [];
  for (let i = 0; i < 40 && !events.some((e) => e.type === 'liquidation'); i++) {
    events = h.block([], 30_000).events;
  }
  const markTicks = future.markTicks;
  assert.equal(markTicks * Number(future.params.tickSizeQuote), Number(52_500n * USDC));
  assert.ok(events.some((e) => e.type === 'liquidation' && e.account === a.index));
  // The put, out of the money, is sure to be worth nothing: all of its kept
  // $6,000 is unobserved, and so is all of Alice's equity. Its last smile
  // values it at $12.59 a lot ($377.75 for her 30), but a long (an asset)
  // counts at its sure value only; a short (a liability) would count at
  // that likely value.
  assert.equal(unsureQuote(state, a, future), 6_000n * USDC);
  assert.equal(graceValuePerLotWad(state, put), 12_591_783_457_451_024_663n);
  const deleveraged = events.flatMap((e) =>
    e.type === 'deleverage' ? [[e.market, e.counterparty, e.priceTicks, e.sizeLots]] : [],
  );
  assert.deepEqual(deleveraged, [[FUTURE, b.index, markTicks, 10_000]], 'at the mark');
  assert.ok(!events.some((e) => e.type === 'insuranceCover'), 'the fund pays nothing for the put');
  // Alice keeps the put and the equity it is counted at; Bob closed at the mark.
  assert.equal(sizeIn(a, future), 0, 'the future closed');
  assert.equal(sizeIn(a, put), 30, 'the put kept');
  assert.equal(sizeIn(b, future), 0, 'Bob closed');
  assert.equal(equityQuote(state, a), 6_000n * USDC);
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});

test('a perpetual liquidated beside a short call in its grace closes at the bankruptcy price of the equity less what the call owes by its last smile; the call then waits for a fresh mark, charged nothing block after block, and its fresh mark leaves the account above zero', () => {
  // Carol sells 2 BTC of the at-the-money 50,000 call ($30 a lot, $300 a
  // BTC) and 1 BTC of the perpetual, both to Dave, and withdraws what initial
  // margin leaves free. The smile goes stale and BTC climbs $200 a block.
  // Within the grace maintenance values the call by its last smile, and at
  // $51,200 it liquidates her: equity $14,198.06 at the call's kept mark
  // ($600). By that smile at $51,200 the call is worth $121.90 a lot: $2,440
  // for her 20 lots at whole ticks ($122 a lot), $40 of time value above its
  // intrinsic value ($2,400), and $1,840 above its kept mark, which her
  // equity does not see. The perpetual's bankruptcy price leaves that
  // $1,840: $51,200 + $12,358.06, floored to $63,558 (no band here), and its
  // fee is what the tick's rounding left above it ($0.061082). The call,
  // without a fresh mark and with no bid, closes nothing: its liquidation in
  // each block after that charges no fee and moves nothing. A fresh smile
  // (the same, hours later) marks the call at $122 a lot: her cash pays it,
  // and the call is deleveraged no further than its mark, the insurance fund
  // paying nothing. Counted at its intrinsic value only ($1,800 above the
  // kept mark), the perpetual closed $38 higher, spending the call's time
  // value: at its fresh mark Carol was $40 below zero, and Dave, deleveraged
  // against her four ticks past the mark, paid it.
  const carol = key('kept-mark-carol');
  const dave = key('kept-mark-dave');
  const CALL = 'BTC-2MAR26-50000-C';
  const PERP = 'BTC-PERPETUAL';
  const h = new Harness(dailyListingGenesis(START_MS));
  h.smiles = LISTING_DAY_SMILES;
  h.fund(carol, 40_000n * USDC);
  h.fund(dave, 1_000_000n * USDC);
  h.block([], MINUTE_MS);
  const state = h.ex.state;
  const call = state.marketByName.get(CALL)!;
  const perp = state.marketByName.get(PERP)!;
  assert.equal(call.markQuotePerLot, 30n * USDC);
  accepted(h.one(dave, limit(CALL, 'buy', call.markTicks, 20)));
  accepted(h.one(carol, limit(CALL, 'sell', call.markTicks, 20)));
  accepted(h.one(dave, limit(PERP, 'buy', perp.markTicks, 10_000)));
  accepted(h.one(carol, limit(PERP, 'sell', perp.markTicks, 10_000)));
  const c = h.account(carol)!;
  const d = h.account(dave)!;
  const free = freeCollateralQuote(state, c);
  accepted(h.one(carol, { kind: 'withdraw', amountQuote: free, destination: 'a' }));
  h.smiles = null;
  h.block([], 61_000);
  assert.equal(call.optionMark, null, 'no fresh smile: the call keeps its mark');
  let events: ExchangeEvent[] = [];
  let before = encodeSnapshot(h.ex);
  let beforeMs = h.timeMs;
  for (let usd = 50_200n; !events.some((e) => e.type === 'liquidation'); usd += 200n) {
    assert.ok(usd <= 52_000n, 'Carol is liquidated on the way');
    h.oracle = { ...h.oracle, BTC: usd * USDC };
    before = encodeSnapshot(h.ex);
    beforeMs = h.timeMs;
    events = h.block([], 20_000).events;
  }
  assert.equal(perp.markTicks, 512_000);
  assert.ok(!call.unshockedGraceOver, 'within the grace');
  assert.equal(graceValuePerLotWad(state, call), 121_902_138_557_696_355_477n);
  assert.equal(unsureQuote(state, c, perp), 1_840n * USDC, 'the call at $122 a lot, less $30');
  const own = (e: ExchangeEvent) => e.type === 'liquidation' || e.type === 'deleverage';
  const liquidated = [
    { type: 'liquidation', market: PERP, account: c.index, closedLots: 0, feeQuote: 61_082n },
    {
      type: 'deleverage',
      market: PERP,
      account: c.index,
      counterparty: d.index,
      sizeLots: 10_000,
      priceTicks: 635_580,
    },
    { type: 'liquidation', market: CALL, account: c.index, closedLots: 0, feeQuote: 0n },
  ].map((e) => JSON.stringify(e, replacer));
  assert.deepEqual(
    events.filter(own).map((e) => JSON.stringify(e, replacer)),
    liquidated,
  );
  assert.equal(sizeIn(c, perp), 0, 'the perpetual closed');
  assert.equal(equityQuote(state, c), 1_840n * USDC, 'what the call owes above its mark');
  // A node restored before that block, its scenario values not yet built,
  // counts the call alike and runs the block to the same state.
  const copy = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
  const twinCall = copy.state.marketByName.get(CALL)!;
  const twinPerp = copy.state.marketByName.get(PERP)!;
  assert.equal(twinCall.scenario, null, 'nothing built yet');
  const twinC = new Harness(undefined, undefined, copy).account(carol)!;
  assert.equal(unsureQuote(copy.state, twinC, twinPerp), 1_840n * USDC);
  const twin = new Harness(undefined, undefined, decodeSnapshot(before, { checkInvariants: true }));
  twin.timeMs = beforeMs;
  twin.smiles = null;
  twin.oracle = { ...h.oracle };
  const replayed = twin.block([], 20_000);
  assert.deepEqual(
    replayed.events.filter(own).map((e) => JSON.stringify(e, replacer)),
    liquidated,
  );
  assert.deepEqual(replayed.appHash, h.ex.appHash);
  // Blocks go by with the smile stale: the call is liquidated in each (its
  // slice spends an order id), closes nothing (no bid, no counterparty at a
  // kept mark), pays nothing, and so reports nothing.
  const fund = state.insuranceQuote;
  for (let i = 0; i < 5; i++) {
    const ids = state.nextOrderId;
    const later = h.block([], 20_000).events.filter(own);
    assert.equal(state.nextOrderId - ids, 1, 'attempted');
    assert.deepEqual(later, []);
  }
  assert.equal(state.insuranceQuote, fund, 'no fee block after block');
  assert.equal(sizeIn(c, call), -20);
  assert.equal(equityQuote(state, c), 1_840n * USDC);
  const cash = c.cashQuote;
  assert.equal(cash, 2_440n * USDC, 'the call by its last smile, at whole ticks');
  // A fresh smile gives the call a mark: its time value, which the perpetual
  // did not spend, pays for it, and it is deleveraged against Dave no
  // further than its mark (at it or past it on his side), the fund paying
  // nothing.
  h.smiles = LISTING_DAY_SMILES;
  const fresh = h.block([], 20_000).events;
  assert.ok(call.optionMark !== null);
  assert.equal(call.markQuotePerLot, 122n * USDC, 'marked where its last smile valued it');
  assert.ok(cash >= 20n * call.markQuotePerLot, 'not below zero at the fresh mark');
  const deleveraged = fresh.flatMap((e) =>
    e.type === 'deleverage' && e.market === CALL
      ? [[e.counterparty, e.sizeLots, e.priceTicks]]
      : [],
  );
  assert.equal(deleveraged.length, 1);
  const [counterparty, lots, priceTicks] = deleveraged[0]!;
  assert.deepEqual([counterparty, lots], [d.index, 20]);
  assert.ok(priceTicks! >= call.markTicks, 'Dave sells her the call no lower than its mark');
  assert.ok(!fresh.some((e) => e.type === 'insuranceCover'), 'the fund pays nothing');
  assert.ok(state.insuranceQuote >= fund);
  assert.equal(sizeIn(c, call), 0, 'the call closed');
  assert.ok(c.cashQuote >= 0n, 'Carol is left with no deficit');
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});

test("a perpetual of another underlying liquidated beside a short call whose smile, then index, went stale closes at the bankruptcy price of the equity less what the call owes at the last forward, as maintenance counts it; the call's fresh mark leaves the account at zero, not below", () => {
  // Erin sells 2 BTC of the at-the-money 50,000 call ($30 a lot) and 1 ETH
  // of the ETH perpetual, both to Frank, and withdraws what initial margin
  // leaves free. The smile goes stale and BTC climbs to $51,000, where the
  // call's last smile values it at $103.39 a lot: $1,470 for her 20 lots at
  // whole ticks ($103.50 a lot) above its kept mark. Then the BTC index goes
  // stale: the last forward, $51,000, is held, and maintenance values the
  // call there as before (to the unit). ETH jumps to $3,600 and liquidates
  // her: equity $12,448.061082. The perpetual's bankruptcy price leaves the
  // $1,470 the call owes: $3,600 + $10,978.061082, floored to $14,578.06.
  // A fresh index and smile mark the call at $103.50 a lot: her cash pays it
  // to the unit, and the call is deleveraged at its mark, the fund paying
  // nothing. Counted at nothing owed once the index was stale (as a stale
  // index had it), the perpetual closed $1,470 higher, spending what the
  // call owed: at its fresh mark Erin was $1,470 below zero, and Frank,
  // deleveraged against her at $30 a lot, $73.50 past the mark, paid it.
  const erin = key('kept-mark-erin');
  const frank = key('kept-mark-frank');
  const CALL = 'BTC-2MAR26-50000-C';
  const EPERP = 'ETH-PERPETUAL';
  const h = new Harness(dailyListingGenesis(START_MS));
  h.smiles = LISTING_DAY_SMILES;
  h.fund(erin, 40_000n * USDC);
  h.fund(frank, 1_000_000n * USDC);
  h.block([], MINUTE_MS);
  const state = h.ex.state;
  const call = state.marketByName.get(CALL)!;
  const perp = state.marketByName.get(EPERP)!;
  assert.equal(call.markQuotePerLot, 30n * USDC);
  assert.equal(perp.markTicks, 300_000);
  accepted(h.one(frank, limit(CALL, 'buy', call.markTicks, 20)));
  accepted(h.one(erin, limit(CALL, 'sell', call.markTicks, 20)));
  accepted(h.one(frank, limit(EPERP, 'buy', perp.markTicks, 1_000)));
  accepted(h.one(erin, limit(EPERP, 'sell', perp.markTicks, 1_000)));
  const e = h.account(erin)!;
  const f = h.account(frank)!;
  const free = freeCollateralQuote(state, e);
  accepted(h.one(erin, { kind: 'withdraw', amountQuote: free, destination: 'a' }));
  h.smiles = null;
  h.block([], 61_000);
  assert.equal(call.optionMark, null, 'no fresh smile: the call keeps its mark');
  for (let usd = 50_200n; usd <= 51_000n; usd += 200n) {
    h.oracle = { ...h.oracle, BTC: usd * USDC };
    const events = h.block([], 20_000).events;
    assert.ok(!events.some((x) => x.type === 'liquidation'), 'above maintenance on the way');
  }
  assert.equal(graceValuePerLotWad(state, call), 103_387_681_618_810_614_088n);
  assert.equal(unsureQuote(state, e, perp), 1_470n * USDC, 'the call at $103.50 a lot, less $30');
  // Frank's long call is sure of its intrinsic value at a fresh index ($2,000
  // above its $600 kept mark): nothing beyond it counts.
  assert.equal(unsureQuote(state, f, perp), 0n);
  const maintenance = maintenanceMarginQuote(state, e);
  // The BTC index goes stale (no BTC price in the blocks); ETH stays fresh.
  h.oracle = { ETH: 3_000n * USDC };
  for (let i = 0; i < 4; i++) h.block([], 20_000);
  assert.ok(call.oracleStale && !perp.oracleStale, 'BTC stale, ETH fresh');
  assert.equal(call.forwardNowQuote, 51_000n * USDC, 'the last forward, held');
  assert.ok(!call.unshockedGraceOver, 'within the grace');
  assert.equal(maintenanceMarginQuote(state, e), maintenance, 'maintenance counts the call alike');
  assert.equal(unsureQuote(state, e, perp), 1_470n * USDC, 'and so does the bankruptcy price');
  // A long is sure of nothing with its index stale: all of its kept mark counts.
  assert.equal(unsureQuote(state, f, perp), 600n * USDC, 'the long call, 20 lots at $30');
  const before = encodeSnapshot(h.ex);
  const beforeMs = h.timeMs;
  h.oracle = { ETH: 3_600n * USDC };
  const events = h.block([], 20_000).events;
  const own = (x: ExchangeEvent) => x.type === 'liquidation' || x.type === 'deleverage';
  const liquidated = [
    { type: 'liquidation', market: EPERP, account: e.index, closedLots: 0, feeQuote: 1_082n },
    {
      type: 'deleverage',
      market: EPERP,
      account: e.index,
      counterparty: f.index,
      sizeLots: 1_000,
      priceTicks: 1_457_806,
    },
  ].map((x) => JSON.stringify(x, replacer));
  assert.deepEqual(
    events.filter(own).map((x) => JSON.stringify(x, replacer)),
    liquidated,
    'the call, its index stale, waits',
  );
  assert.equal(sizeIn(e, perp), 0, 'the perpetual closed');
  assert.equal(sizeIn(e, call), -20, 'the call kept');
  assert.equal(equityQuote(state, e), 1_470n * USDC, 'what the call owes above its mark');
  // A node restored before that block, its scenario values not yet built,
  // counts the call alike and runs the block to the same state.
  const twin = new Harness(undefined, undefined, decodeSnapshot(before, { checkInvariants: true }));
  twin.timeMs = beforeMs;
  twin.oracle = { ...h.oracle };
  const replayed = twin.block([], 20_000);
  assert.deepEqual(
    replayed.events.filter(own).map((x) => JSON.stringify(x, replacer)),
    liquidated,
  );
  assert.deepEqual(replayed.appHash, h.ex.appHash);
  // The index and the smile come back: the call is marked where its last
  // smile valued it at the last forward, her cash pays it, and it is
  // deleveraged against Frank at its mark, the fund paying nothing.
  const fund = state.insuranceQuote;
  const cash = e.cashQuote;
  assert.equal(cash, 2_070n * USDC);
  h.oracle = { BTC: 51_000n * USDC, ETH: 3_600n * USDC };
  h.smiles = LISTING_DAY_SMILES;
  const fresh = h.block([], 20_000).events;
  assert.ok(call.optionMark !== null);
  assert.equal(call.markQuotePerLot, 103_500_000n);
  assert.ok(cash >= 20n * call.markQuotePerLot, 'not below zero at the fresh mark');
  const deleveraged = fresh.flatMap((x) =>
    x.type === 'deleverage' && x.market === CALL
      ? [[x.counterparty, x.sizeLots, x.priceTicks]]
      : [],
  );
  assert.deepEqual(deleveraged, [[f.index, 20, call.markTicks]], 'at the mark');
  assert.ok(!fresh.some((x) => x.type === 'insuranceCover'), 'the fund pays nothing');
  assert.ok(state.insuranceQuote >= fund);
  assert.equal(sizeIn(e, call), 0, 'the call closed');
  assert.equal(e.cashQuote, 0n, 'Erin is left with no deficit');
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});
