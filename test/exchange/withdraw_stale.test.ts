// Withdrawals and transfers out of a subaccount wait while a market it holds
// a position or rests an order in has a stale index (withdraw.ts,
// staleHolding): its mark is the last index's, and the collateral that mark
// calls free may already be gone at the real price. A perpetual, a dated
// future (before its expiry and waiting past it for its settlement price), an
// option whose smile is fresh but whose underlying's index is stale (it keeps
// its last mark). Each
// refusal is checked to the result, and so is what stays allowed: accounts
// with nothing in the stale market, transfers into a refused account, the
// faucet, and everything once the index is fresh (or the market settled).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { daysFromCivil, expiryMsOfDay, MS_PER_DAY } from '../../src/exchange/instruments/index.ts';
import type { ActionResult } from '../../src/exchange/results.ts';
import type { MarketState } from '../../src/exchange/state.ts';
import type { Action } from '../../src/exchange/tx/types.ts';
import { Harness, USDC, dailyListingGenesis, key, limit, replacer } from './helpers.ts';
import type { Key } from './helpers.ts';

const MINUTE_MS = 60_000;
/** Monday 2 March 2026, 00:00 UTC: the first daily expiry is that day at 08:00. */
const START_MS = daysFromCivil(2026, 3, 2) * MS_PER_DAY;
const EXPIRY_MS = expiryMsOfDay(daysFromCivil(2026, 3, 2));
const PERP = 'BTC-PERPETUAL';
const ETH_PERP = 'ETH-PERPETUAL';
const FUTURE = 'BTC-2MAR26';
const CALL = 'BTC-2MAR26-50000-C';
const PUT = 'BTC-2MAR26-49000-P';
/** A flat smile: total variance for 50% volatility over eight hours. */
const FLAT = { a: 228_000_000_000_000n, b: 0n, rho: 0n, m: 0n, sigma: 100_000_000_000_000_000n };

const WITHDRAW: Action = { kind: 'withdraw', amountQuote: 1n * USDC, destination: 'out' };
const TRANSFER: Action = {
  kind: 'transfer',
  amountQuote: 1n * USDC,
  fromSubaccount: 0,
  toSubaccount: 1,
};

const [alice, bob, carol, dave, erin, frank] = [
  'alice',
  'bob',
  'carol',
  'dave',
  'erin',
  'frank',
].map((n) => key(`withdraw-stale-${n}`)) as [Key, Key, Key, Key, Key, Key];

/** The daily listing with fresh smiles; everyone funded with $100,000, a minute on. */
function harness(): Harness {
  const h = new Harness(dailyListingGenesis(START_MS));
  h.smiles = [
    { underlying: 'BTC', expiryMs: EXPIRY_MS, svi: FLAT },
    { underlying: 'ETH', expiryMs: EXPIRY_MS, svi: FLAT },
  ];
  for (const k of [alice, bob, carol, dave, erin, frank]) h.fund(k, 100_000n * USDC);
  h.block([], MINUTE_MS);
  return h;
}

function market(h: Harness, name: string): MarketState {
  return h.ex.state.marketByName.get(name)!;
}

function act(h: Harness, from: Key, action: Action, subaccount = 0): ActionResult {
  return h.one(from, action, { subaccount }).actions[0]!;
}

function accepted(h: Harness, from: Key, action: Action, subaccount = 0): ActionResult {
  const r = act(h, from, action, subaccount);
  assert.ok(r.ok, JSON.stringify(r, replacer));
  return r;
}

/** Both outflows refused, to the result, and the account's cash untouched. */
function outflowsRefused(h: Harness, from: Key, message: string): void {
  const cash = h.account(from)!.cashQuote;
  for (const action of [WITHDRAW, TRANSFER]) {
    assert.deepEqual(
      act(h, from, action),
      { ok: false, kind: action.kind, code: 'OracleStale', message },
      `${action.kind} while the index is stale`,
    );
  }
  assert.equal(h.account(from)!.cashQuote, cash, 'nothing left the account');
}

function outflowsAccepted(h: Harness, from: Key): void {
  const cash = h.account(from)!.cashQuote;
  assert.deepEqual(act(h, from, WITHDRAW), { ok: true, kind: 'withdraw' });
  assert.deepEqual(act(h, from, TRANSFER), { ok: true, kind: 'transfer' });
  assert.equal(h.account(from)!.cashQuote, cash - 2n * USDC, 'both left the account');
}

function positionMessage(instrument: string): string {
  return `a position in ${instrument}, whose index is stale: its margin cannot be measured until the index is fresh`;
}

function ordersMessage(instrument: string): string {
  return `orders in ${instrument}, whose index is stale: its margin cannot be measured until the index is fresh`;
}

/** BTC's index withheld past staleAfterMs (60 s); returns the price to put back. */
function btcStale(h: Harness, ...markets: MarketState[]): bigint {
  const { BTC: btc, ...withoutBtc } = h.oracle;
  h.oracle = withoutBtc;
  h.block([], 61_000);
  for (const m of markets) assert.ok(m.oracleStale, `${m.params.instrument}'s index is stale`);
  return btc!;
}

function btcFresh(h: Harness, btc: bigint, ...markets: MarketState[]): void {
  h.oracle = { ...h.oracle, BTC: btc };
  h.block([], 1_000);
  for (const m of markets) assert.ok(!m.oracleStale, `${m.params.instrument}'s index is fresh`);
}

test('perpetual: no withdrawal or transfer out of an account holding a position or resting an order where the index is stale (OracleStale); others, transfers in and the faucet go on; all once it is fresh', () => {
  const h = harness();
  const perp = market(h, PERP);
  const eth = market(h, ETH_PERP);
  const mark = perp.markTicks;
  // Alice long 0.1 BTC from Bob; Carol only bids, Dave only offers, far from the mark.
  accepted(h, bob, limit(PERP, 'sell', mark, 1_000));
  accepted(h, alice, limit(PERP, 'buy', mark, 1_000, { timeInForce: 'IOC' }));
  accepted(h, carol, limit(PERP, 'buy', mark - 5_000, 100));
  accepted(h, dave, limit(PERP, 'sell', mark + 5_000, 100));
  // Erin long ETH from Frank: another underlying, whose index stays fresh.
  accepted(h, frank, limit(ETH_PERP, 'sell', eth.markTicks, 1_000));
  accepted(h, erin, limit(ETH_PERP, 'buy', eth.markTicks, 1_000, { timeInForce: 'IOC' }));
  // Alice keeps a second subaccount without positions.
  h.fund(alice, 1_000n * USDC, 1);
  // While fresh, everyone may move collateral.
  for (const k of [alice, bob, carol, dave, erin, frank]) outflowsAccepted(h, k);

  const btc = btcStale(h, perp);
  assert.ok(!eth.oracleStale, "ETH's index is fresh");
  outflowsRefused(h, alice, positionMessage(PERP));
  outflowsRefused(h, bob, positionMessage(PERP));
  outflowsRefused(h, carol, ordersMessage(PERP));
  outflowsRefused(h, dave, ordersMessage(PERP));
  for (const k of [erin, frank]) outflowsAccepted(h, k);
  // Into the refused subaccount: from its sibling, and from the faucet.
  const cash = h.account(alice)!.cashQuote;
  assert.deepEqual(
    act(
      h,
      alice,
      { kind: 'transfer', amountQuote: 5n * USDC, fromSubaccount: 1, toSubaccount: 0 },
      1,
    ),
    { ok: true, kind: 'transfer' },
  );
  assert.deepEqual(act(h, alice, { kind: 'faucet', amountQuote: 5n * USDC }), {
    ok: true,
    kind: 'faucet',
  });
  assert.equal(h.account(alice)!.cashQuote, cash + 10n * USDC, 'both came in');
  // The sibling without positions is not held back by its sibling's.
  assert.deepEqual(act(h, alice, WITHDRAW, 1), { ok: true, kind: 'withdraw' });
  // Once Carol's bid is cancelled (cancels go on) she may again.
  const bid = [...perp.book.ownerOrders(h.account(carol)!.index)][0]!.orderId;
  accepted(h, carol, { kind: 'cancel', instrument: PERP, orderId: bid });
  outflowsAccepted(h, carol);

  btcFresh(h, btc, perp);
  for (const k of [alice, bob, dave]) outflowsAccepted(h, k);
});

test('dated future: no withdrawal or transfer out of its holders while its index is stale, before its expiry and waiting past it for a settlement price; again once fresh, and once settled', () => {
  const h = harness();
  const future = market(h, FUTURE);
  accepted(h, bob, limit(FUTURE, 'sell', future.markTicks, 1_000));
  accepted(h, alice, limit(FUTURE, 'buy', future.markTicks, 1_000, { timeInForce: 'IOC' }));
  accepted(h, carol, limit(FUTURE, 'buy', future.markTicks - 5_000, 100));

  let btc = btcStale(h, future);
  outflowsRefused(h, alice, positionMessage(FUTURE));
  outflowsRefused(h, bob, positionMessage(FUTURE));
  outflowsRefused(h, carol, ordersMessage(FUTURE));
  outflowsAccepted(h, dave);
  btcFresh(h, btc, future);
  for (const k of [alice, bob, carol]) outflowsAccepted(h, k);

  // BTC stops from before the expiry to after it: the future waits, halted.
  h.block([], 7 * 60 * MINUTE_MS);
  btc = btcStale(h, future);
  while (h.timeMs <= EXPIRY_MS) h.block([], 30 * MINUTE_MS);
  assert.ok(!future.retired && future.halted && future.oracleStale, 'the future waits');
  outflowsRefused(h, alice, positionMessage(FUTURE));
  outflowsRefused(h, bob, positionMessage(FUTURE));
  // Carol's bid still rests (settlement cancels it): cancelled, she may again.
  outflowsRefused(h, carol, ordersMessage(FUTURE));
  const bid = [...future.book.ownerOrders(h.account(carol)!.index)][0]!.orderId;
  accepted(h, carol, { kind: 'cancel', instrument: FUTURE, orderId: bid });
  outflowsAccepted(h, carol);

  h.oracle = { ...h.oracle, BTC: btc };
  for (let i = 0; i < 10 && !future.retired; i++) h.block([], 30 * MINUTE_MS);
  assert.ok(future.retired, 'settled once a fresh price came');
  for (const k of [alice, bob]) outflowsAccepted(h, k);
});

test("option with a fresh smile: no withdrawal or transfer out of its holders, long or short, nor its bidders or offerers, while its underlying's index is stale; again once fresh", () => {
  const h = harness();
  const call = market(h, CALL);
  const put = market(h, PUT);
  const future = market(h, FUTURE);
  assert.ok(call.markTicks > 0 && put.markTicks > 0, 'the options are marked');
  // Alice short two calls to Bob; Carol bids a put, Dave offers one.
  accepted(h, alice, limit(CALL, 'sell', call.markTicks, 2));
  accepted(h, bob, limit(CALL, 'buy', call.markTicks, 2, { timeInForce: 'IOC' }));
  accepted(h, carol, limit(PUT, 'buy', Math.max(1, put.markTicks - 100), 1));
  accepted(h, dave, limit(PUT, 'sell', put.markTicks + 100, 1));
  for (const k of [alice, bob, carol, dave]) outflowsAccepted(h, k);

  const marks = [call.markTicks, put.markTicks];
  const btc = btcStale(h, call, put, future);
  // The smile is fresh, but a stale index marks no option: each keeps its last mark.
  assert.ok(call.optionMark === null && put.optionMark === null, 'the options are not marked');
  assert.deepEqual([call.markTicks, put.markTicks], marks);
  outflowsRefused(h, alice, positionMessage(CALL));
  outflowsRefused(h, bob, positionMessage(CALL));
  outflowsRefused(h, carol, ordersMessage(PUT));
  outflowsRefused(h, dave, ordersMessage(PUT));
  // Nothing in BTC: unaffected.
  outflowsAccepted(h, erin);

  btcFresh(h, btc, call, put);
  assert.ok(call.optionMark !== null && put.optionMark !== null, 'marked again');
  for (const k of [alice, bob, carol, dave]) outflowsAccepted(h, k);
});
