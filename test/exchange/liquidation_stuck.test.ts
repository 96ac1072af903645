// Liquidations that close nothing (docs/exchange.md, "Liquidation and
// deleveraging"): a short option at a kept mark (no fresh smile) with no ask
// to buy it back is liquidated every block and closes nothing. Such an
// attempt takes none of the block's LIQUIDATIONS_PER_BLOCK_MAX places and
// charges nothing to its market's per-block cap (the cap counts what
// closed), and accounts stuck so come after those that may close: more than
// LIQUIDATIONS_PER_BLOCK_MAX of them, with larger shortfalls, do not hold
// back a perpetual's liquidation in the same block. A block attempts at most
// LIQUIDATION_ATTEMPTS_PER_BLOCK_MAX liquidations, those that close nothing
// included, so however many accounts are stuck its work stays bounded.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { equityQuote, freeCollateralQuote } from '../../src/exchange/margin.ts';
import { isLiquidatable, liquidate } from '../../src/exchange/liquidation.ts';
import { sizeIn } from '../../src/exchange/position.ts';
import type { ExchangeEvent } from '../../src/exchange/results.ts';
import type { SignedTx } from '../../src/exchange/tx/types.ts';
import {
  LIQUIDATIONS_PER_BLOCK_MAX,
  LIQUIDATION_ATTEMPTS_PER_BLOCK_MAX,
} from '../../src/lib/limits.ts';
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
const CALL = 'BTC-2MAR26-50000-C';
const PERP = 'BTC-PERPETUAL';

function allAccepted(h: Harness, txs: SignedTx[], what: string): void {
  const r = h.block(txs);
  assert.ok(
    r.results.every((x) => x.ok && x.actions.every((a) => a.ok)),
    `${what}: ${JSON.stringify(
      r.results.find((x) => !x.ok || !x.actions.every((a) => a.ok)),
      replacer,
    )}`,
  );
}

test('more than LIQUIDATION_ATTEMPTS_PER_BLOCK_MAX short calls at a kept mark with no ask close nothing, take no place and charge no cap, and a block attempts LIQUIDATION_ATTEMPTS_PER_BLOCK_MAX of them: a perpetual below maintenance in the same block is liquidated first', () => {
  const h = new Harness(dailyListingGenesis(LISTING_DAY_START_MS), { checkInvariants: false });
  h.smiles = LISTING_DAY_SMILES;
  const dave = key('stuck-dave');
  const erin = key('stuck-erin');
  h.fund(dave, 1_000_000n * USDC);
  h.fund(erin, 100_000n * USDC);
  assert.ok(LIQUIDATION_ATTEMPTS_PER_BLOCK_MAX > LIQUIDATIONS_PER_BLOCK_MAX);
  const many = Array.from({ length: LIQUIDATION_ATTEMPTS_PER_BLOCK_MAX + 1 }, (_, i) =>
    key(`stuck-short-${i}`),
  );
  h.block(many.map((k) => h.tx(k, { kind: 'faucet', amountQuote: 4_000n * USDC })));
  h.block([], MINUTE_MS);
  const state = h.ex.state;
  const call = state.marketByName.get(CALL)!;
  const perp = state.marketByName.get(PERP)!;
  // Each sells 0.2 BTC of the at-the-money call to Dave and withdraws what
  // initial margin leaves free.
  accepted(h.one(dave, limit(CALL, 'buy', call.markTicks, 2 * many.length)));
  allAccepted(
    h,
    many.map((k) => h.tx(k, limit(CALL, 'sell', call.markTicks, 2, { timeInForce: 'IOC' }))),
    'every call sold',
  );
  const free = freeCollateralQuote(state, h.account(many[0]!)!);
  allAccepted(
    h,
    many.map((k) => h.tx(k, { kind: 'withdraw', amountQuote: free, destination: 'a' })),
    'every withdrawal',
  );
  // The smile goes stale; BTC climbs until the short calls are below
  // maintenance (their grace values them by the last smile). Nobody asks
  // the call: nothing of them can close.
  h.smiles = null;
  h.block([], 61_000);
  assert.equal(call.optionMark, null, 'no fresh smile: the call keeps its mark');
  const shorts = many.map((k) => h.account(k)!);
  let usd = 50_000n;
  while (!shorts.every((a) => isLiquidatable(state, a))) {
    usd += 200n;
    assert.ok(usd <= 53_000n, 'the short calls fall below maintenance on the way');
    h.oracle = { ...h.oracle, BTC: usd * USDC };
    h.block([], 20_000);
  }
  // They are liquidated in every block, as many as a block attempts (each
  // spends its slice's order id), close nothing, charge the call's cap
  // nothing, and report nothing: attempts that did nothing at all.
  const ids = state.nextOrderId;
  const later = h.block([], 20_000).events;
  assert.equal(
    state.nextOrderId - ids,
    LIQUIDATION_ATTEMPTS_PER_BLOCK_MAX,
    'as many as a block attempts',
  );
  assert.deepEqual(
    later.filter((e) => e.type === 'liquidation' || e.type === 'liquidationCancels'),
    [],
    'attempts that did nothing report nothing',
  );
  assert.equal(call.liquidatedQuote, 0n, 'nothing closed: the cap is not charged');
  assert.ok(shorts.every((a) => sizeIn(a, call) === -2));
  // Erin shorts 0.1 BTC of the perpetual and withdraws what initial margin
  // leaves free; BTC's next climb takes her below maintenance, by far less
  // than any short call (the largest shortfalls go first among those that
  // may close).
  accepted(h.one(dave, limit(PERP, 'buy', perp.markTicks, 1_000)));
  accepted(h.one(erin, limit(PERP, 'sell', perp.markTicks, 1_000, { timeInForce: 'IOC' })));
  const e = h.account(erin)!;
  accepted(
    h.one(erin, {
      kind: 'withdraw',
      amountQuote: freeCollateralQuote(state, e),
      destination: 'a',
    }),
  );
  assert.ok(!isLiquidatable(state, e));
  usd += 1_000n;
  h.oracle = { ...h.oracle, BTC: usd * USDC };
  const before = state.nextOrderId;
  const events = h.block([], 20_000).events;
  assert.ok(
    events.some((x) => x.type === 'liquidation' && x.account === e.index && x.market === PERP),
    'Erin was liquidated in the block that took her below maintenance',
  );
  const first = events.find((x) => x.type === 'liquidation');
  assert.ok(first?.type === 'liquidation' && first.account === e.index, 'she goes first');
  // Her liquidation's one slice (nothing rests to take past her bankruptcy
  // price), then the short calls' attempts, silent.
  assert.equal(
    state.nextOrderId - before,
    1 + LIQUIDATION_ATTEMPTS_PER_BLOCK_MAX - 1,
    'the short calls take the attempts she left',
  );
  assert.equal(events.filter((x) => x.type === 'liquidation' && x.market === CALL).length, 0);
  assert.equal(sizeIn(e, perp), 0, 'her short closed');
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});

test('a liquidation that does nothing at all reports nothing: a short call at a kept mark with no ask', () => {
  const h = new Harness(dailyListingGenesis(LISTING_DAY_START_MS));
  h.smiles = LISTING_DAY_SMILES;
  const carol = key('stuck-carol');
  const dave = key('stuck-dave');
  h.fund(carol, 40_000n * USDC);
  h.fund(dave, 1_000_000n * USDC);
  h.block([], MINUTE_MS);
  const state = h.ex.state;
  const call = state.marketByName.get(CALL)!;
  accepted(h.one(dave, limit(CALL, 'buy', call.markTicks, 20)));
  accepted(h.one(carol, limit(CALL, 'sell', call.markTicks, 20)));
  const c = h.account(carol)!;
  accepted(
    h.one(carol, {
      kind: 'withdraw',
      amountQuote: freeCollateralQuote(state, c),
      destination: 'a',
    }),
  );
  h.smiles = null;
  h.block([], 61_000);
  for (let usd = 50_200n; !isLiquidatable(state, c); usd += 200n) {
    assert.ok(usd <= 53_000n, 'Carol falls below maintenance on the way');
    h.oracle = { ...h.oracle, BTC: usd * USDC };
    h.block([], 20_000);
  }
  const events: ExchangeEvent[] = [];
  const fund = state.insuranceQuote;
  const acted = liquidate(state, c, events);
  assert.equal(call.liquidatedQuote, 0n, 'nothing closed: the cap is not charged');
  assert.equal(acted, false, 'nothing closed, nothing paid');
  assert.deepEqual(events, [], 'no liquidation event of 0 lots');
  assert.equal(state.insuranceQuote, fund);
  assert.equal(sizeIn(c, call), -20);
});

test('a liquidation that runs the deleveraging queue takes a place even when no counterparty can take its price', () => {
  // A crash both markets would make, written into the state: a long below
  // zero with an empty fund sells beyond the mark, and its only counterparty
  // has too little equity for a lot's loss there. The queue, O(holders log
  // holders), finds nobody: nothing closes, yet the attempt counts as a
  // liquidation, so a block runs at most LIQUIDATIONS_PER_BLOCK_MAX queues.
  const h = new Harness(undefined, { checkInvariants: false });
  const a = key('adl-a');
  const b = key('adl-b');
  h.fund(a, 2_600n * USDC);
  h.fund(b, 500_000n * USDC);
  accepted(h.one(b, limit(PERP, 'sell', 500_000, 10_000)));
  accepted(h.one(a, limit(PERP, 'buy', 500_000, 10_000)));
  const state = h.ex.state;
  const perp = state.marketByName.get(PERP)!;
  const la = h.account(a)!;
  const lb = h.account(b)!;
  la.cashQuote -= 20_000n * USDC;
  lb.cashQuote -= equityQuote(state, lb) - 1n;
  state.insuranceQuote = 0n;
  assert.ok(equityQuote(state, la) < 0n);
  assert.equal(equityQuote(state, lb), 1n);
  const events: ExchangeEvent[] = [];
  const acted = liquidate(state, la, events);
  assert.deepEqual(
    events.map((x) => JSON.stringify(x, replacer)),
    [{ type: 'liquidation', market: PERP, account: la.index, closedLots: 0, feeQuote: 0n }].map(
      (x) => JSON.stringify(x, replacer),
    ),
  );
  assert.equal(sizeIn(la, perp), 10_000);
  assert.equal(perp.liquidatedQuote, 0n, 'nothing closed: the cap is not charged');
  assert.equal(perp.liquidationBacklog, true, 'the rest waits for the next block');
  assert.equal(acted, true, 'the deleveraging queue ran: a place');
});

test('a stuck account reports its first attempt (its orders cancelled), is silent while nothing happens, and reports the close once a fresh smile marks the option', () => {
  const h = new Harness(dailyListingGenesis(LISTING_DAY_START_MS));
  h.smiles = LISTING_DAY_SMILES;
  const carol = key('stuck-carol');
  const dave = key('stuck-dave');
  h.fund(carol, 40_000n * USDC);
  h.fund(dave, 1_000_000n * USDC);
  h.block([], MINUTE_MS);
  const state = h.ex.state;
  const call = state.marketByName.get(CALL)!;
  const perp = state.marketByName.get(PERP)!;
  accepted(h.one(dave, limit(CALL, 'buy', call.markTicks, 20)));
  accepted(h.one(carol, limit(CALL, 'sell', call.markTicks, 20)));
  // A bid of hers rests far below the perpetual's mark.
  accepted(h.one(carol, limit(PERP, 'buy', Math.floor(perp.markTicks / 2), 1)));
  const c = h.account(carol)!;
  accepted(
    h.one(carol, {
      kind: 'withdraw',
      amountQuote: freeCollateralQuote(state, c),
      destination: 'a',
    }),
  );
  h.smiles = null;
  h.block([], 61_000);
  assert.equal(call.optionMark, null);
  const hers = (events: readonly ExchangeEvent[]): string[] =>
    events
      .filter(
        (e) =>
          (e.type === 'liquidation' ||
            e.type === 'liquidationCancels' ||
            e.type === 'liquidationFill') &&
          e.account === c.index,
      )
      .map((e) => JSON.stringify(e, replacer));
  let first: string[] = [];
  for (let usd = 50_200n; !isLiquidatable(state, c); usd += 200n) {
    assert.ok(usd <= 53_000n, 'Carol falls below maintenance on the way');
    h.oracle = { ...h.oracle, BTC: usd * USDC };
    first = hers(h.block([], 20_000).events);
  }
  // The attempt that cancelled her bid did something: reported as before.
  assert.deepEqual(
    first,
    [
      { type: 'liquidationCancels', account: c.index, orders: 1 },
      { type: 'liquidation', market: CALL, account: c.index, closedLots: 0, feeQuote: 0n },
    ].map((x) => JSON.stringify(x, replacer)),
  );
  // Stuck: attempted every block, nothing to report.
  for (let i = 0; i < 3; i++) {
    h.oracle = { ...h.oracle, BTC: h.oracle.BTC! + 10n * USDC };
    const ids = state.nextOrderId;
    assert.deepEqual(hers(h.block([], 20_000).events), []);
    assert.equal(state.nextOrderId - ids, 1, 'attempted: its slice spent an order id');
    assert.ok(isLiquidatable(state, c));
  }
  // The smile comes back: the call has a fresh mark, and her next attempt
  // closes (deleveraged against Dave's long: a liquidation event, then its
  // deleverage events) and reports so.
  h.smiles = LISTING_DAY_SMILES;
  const events = h.block([], 20_000).events;
  assert.notEqual(call.optionMark, null);
  assert.ok(
    events.some((e) => e.type === 'liquidation' && e.account === c.index && e.market === CALL),
  );
  let deleveraged = 0;
  for (const e of events) {
    if (e.type === 'deleverage' && e.account === c.index) deleveraged += e.sizeLots;
  }
  assert.ok(deleveraged > 0);
  assert.equal(sizeIn(c, call), -20 + deleveraged);
});

test('an attempt that closes nothing but cancels a maker’s order (the fill guard) reports it: the makerCancelled and its slice stay', () => {
  const h = new Harness(dailyListingGenesis(LISTING_DAY_START_MS), { checkInvariants: false });
  h.smiles = LISTING_DAY_SMILES;
  const carol = key('stuck-carol');
  const dave = key('stuck-dave');
  const ann = key('stuck-ann');
  h.fund(carol, 40_000n * USDC);
  h.fund(dave, 1_000_000n * USDC);
  h.fund(ann, 100_000n * USDC);
  h.block([], MINUTE_MS);
  const state = h.ex.state;
  const call = state.marketByName.get(CALL)!;
  accepted(h.one(dave, limit(CALL, 'buy', call.markTicks, 20)));
  accepted(h.one(carol, limit(CALL, 'sell', call.markTicks, 20)));
  // Ann offers 5 calls a tick below the mark, which the call keeps once its
  // smile goes stale: within Carol's price when she is liquidated.
  const askId = state.nextOrderId;
  accepted(h.one(ann, limit(CALL, 'sell', call.markTicks - 1, 5)));
  const c = h.account(carol)!;
  accepted(
    h.one(carol, {
      kind: 'withdraw',
      amountQuote: freeCollateralQuote(state, c),
      destination: 'a',
    }),
  );
  h.smiles = null;
  h.block([], 61_000);
  assert.equal(call.optionMark, null);
  assert.ok(state.orders.has(askId), 'her ask rests');
  // Ann's equity is written to zero: selling a tick below the mark would
  // take it below zero, so the fill guard cancels her ask instead.
  const a = h.account(ann)!;
  a.cashQuote -= equityQuote(state, a);
  state.markAccount(a);
  let first: ExchangeEvent[] = [];
  for (let usd = 50_200n; !isLiquidatable(state, c); usd += 200n) {
    assert.ok(usd <= 53_000n, 'Carol falls below maintenance on the way');
    h.oracle = { ...h.oracle, BTC: usd * USDC };
    first = h.block([], 20_000).events;
  }
  assert.equal(sizeIn(c, call), -20, 'nothing closed');
  assert.ok(!state.orders.has(askId), 'her ask is gone');
  // The attempt cancelled a maker's order: its events stay, slice and all.
  assert.deepEqual(
    first
      .filter((x) => x.type === 'makerCancelled' || x.type === 'liquidation')
      .map((x) => JSON.stringify(x, replacer)),
    [
      { type: 'makerCancelled', market: CALL, orderId: askId, account: a.index },
      { type: 'liquidation', market: CALL, account: c.index, closedLots: 0, feeQuote: 0n },
    ].map((x) => JSON.stringify(x, replacer)),
  );
});
