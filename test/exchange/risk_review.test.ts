import { test } from 'node:test';
import assert from 'node:assert/strict';
import { daysFromCivil, expiryMsOfDay, MS_PER_DAY } from '../../src/exchange/instruments/index.ts';
import {
  freeCollateralQuote,
  initialForExposure,
  initialMarginQuote,
} from '../../src/exchange/margin.ts';
import { sizeIn } from '../../src/exchange/position.ts';
import { Harness, USDC, dailyListingGenesis, genesis, key, limit } from './helpers.ts';

const MINUTE_MS = 60_000;
const START_MS = daysFromCivil(2026, 3, 2) * MS_PER_DAY;
const EXPIRY_MS = expiryMsOfDay(daysFromCivil(2026, 3, 2));
const FUTURE = 'BTC-2MAR26';
const BTC = 'BTC-PERPETUAL';
const ONE_BTC = 10_000;
/** Far out of the money at the $50,000 forward: marked at its one-tick floor. */
const FAR_CALL = 'BTC-2MAR26-52000-C';
/** A flat smile: total variance for 50% volatility over eight hours. */
const FLAT = { a: 228_000_000_000_000n, b: 0n, rho: 0n, m: 0n, sigma: 100_000_000_000_000_000n };

function harness(): Harness {
  const h = new Harness(dailyListingGenesis(START_MS));
  h.smiles = [{ underlying: 'BTC', expiryMs: EXPIRY_MS, svi: FLAT }];
  return h;
}

test('one option lot does not lower a large dated future below its scaled-up initial margin', () => {
  const h = harness();
  const alice = key('risk-review-alice');
  h.fund(alice, 1_000n * USDC);
  h.block([], MINUTE_MS);
  const state = h.ex.state;
  const future = state.marketByName.get(FUTURE)!;
  const call = state.marketByName.get(FAR_CALL)!;
  // $100M of the future: 5% + 10 steps of 1% = 15% linear, above the ±12.5% price shock.
  const lots = Number((100_000_000n * USDC) / future.markQuotePerLot);
  const linear = initialForExposure(future, lots);
  const account = h.account(alice)!;
  assert.equal(initialMarginQuote(state, account, future.index, lots, 0), linear);
  // A bid for one lot of a far call puts the BTC records under the scenario margin.
  assert.ok(h.one(alice, limit(FAR_CALL, 'buy', 1, 1)).actions[0]!.ok);
  assert.equal(call.book.ownerRestingLots(account.index, 'buy'), 1);
  const withOption = initialMarginQuote(state, account, future.index, lots, 0);
  assert.ok(withOption >= linear, `${withOption} < ${linear}`);
  // Short too: the scale-up counts the exposure whichever side.
  assert.ok(initialMarginQuote(state, account, future.index, 0, lots) >= linear);
});

test('long options at the one-tick mark floor give no free collateral above cash', () => {
  const h = harness();
  const alice = key('risk-review-long');
  const bob = key('risk-review-writer');
  h.fund(alice, 1_000n * USDC);
  h.fund(bob, 1_000_000n * USDC);
  h.block([], MINUTE_MS);
  const state = h.ex.state;
  const call = state.marketByName.get(FAR_CALL)!;
  assert.equal(call.markTicks, 1);
  const lots = 1_000;
  assert.ok(h.one(bob, limit(FAR_CALL, 'sell', 1, lots)).actions[0]!.ok);
  assert.ok(h.one(alice, limit(FAR_CALL, 'buy', 1, lots)).actions[0]!.ok);
  const account = h.account(alice)!;
  assert.equal(sizeIn(account, call), lots);
  // The premium paid is counted back at the mark: it is not free collateral.
  const free = freeCollateralQuote(state, account);
  assert.ok(free <= account.cashQuote, `free ${free} > cash ${account.cashQuote}`);
  // Withdrawing the cash deposited would leave it short of cash, backed by a
  // worthless option the insurance fund pays for at expiry.
  const w = h.one(alice, { kind: 'withdraw', amountQuote: 1_000n * USDC, destination: 'x' });
  assert.equal(!w.actions[0]!.ok && w.actions[0]!.code, 'InsufficientFunds');
  assert.ok(account.cashQuote >= 0n);
});

test('a liquidation that sells above the bankruptcy price returns the insurance cover it did not need', () => {
  const markets = genesis().markets.map((m) => ({ ...m, liquidationFeePpm: 0 }));
  const h = new Harness(genesis({ markets, insuranceFundQuote: 10_000n * USDC }));
  const a = key('risk-review-cover-a');
  const b = key('risk-review-cover-b');
  const c = key('risk-review-cover-c');
  h.fund(a, 2_600n * USDC);
  h.fund(b, 500_000n * USDC);
  h.fund(c, 500_000n * USDC);
  assert.ok(h.one(b, limit(BTC, 'sell', 500_000, ONE_BTC)).actions[0]!.ok);
  assert.ok(h.one(a, limit(BTC, 'buy', 500_000, ONE_BTC)).actions[0]!.ok);
  // A bid at $47,500 alone leaves the mark at the index.
  assert.ok(h.one(c, limit(BTC, 'buy', 475_000, ONE_BTC)).actions[0]!.ok);
  // At $47,000 a's equity is 2,575 − 3,000 = −$425, but its long sells at $47,500: +$75.
  h.oracle = { ...h.oracle, BTC: 47_000n * USDC };
  const r = h.block([]);
  const fill = r.events.find((e) => e.type === 'liquidationFill');
  assert.ok(fill !== undefined && fill.type === 'liquidationFill');
  assert.equal(fill.priceTicks, 475_000);
  assert.equal(h.account(a)!.positions[0]!.sizeLots, 0);
  // The fund paid nothing for a position that had equity at its sale.
  assert.equal(h.ex.state.insuranceQuote, 10_000n * USDC);
  assert.equal(h.account(a)!.cashQuote, 75n * USDC);
  assert.equal(r.events.filter((e) => e.type === 'insuranceCover').length, 0);
});

test('a liquidation that sells below the mark keeps the cover it needed, reported net', () => {
  const markets = genesis().markets.map((m) => ({ ...m, liquidationFeePpm: 0 }));
  const h = new Harness(genesis({ markets, insuranceFundQuote: 10_000n * USDC }));
  const a = key('risk-review-cover2-a');
  const b = key('risk-review-cover2-b');
  const c = key('risk-review-cover2-c');
  h.fund(a, 2_600n * USDC);
  h.fund(b, 500_000n * USDC);
  h.fund(c, 500_000n * USDC);
  assert.ok(h.one(b, limit(BTC, 'sell', 500_000, ONE_BTC)).actions[0]!.ok);
  assert.ok(h.one(a, limit(BTC, 'buy', 500_000, ONE_BTC)).actions[0]!.ok);
  h.oracle = { ...h.oracle, BTC: 47_000n * USDC };
  // No bid: b, the short in profit, takes the long at the bankruptcy price (the mark, after the cover).
  const r = h.block([]);
  assert.equal(h.account(a)!.positions[0]!.sizeLots, 0);
  assert.equal(h.ex.state.insuranceQuote, 9_575n * USDC);
  assert.equal(h.account(a)!.cashQuote, 0n);
  const covers = r.events.filter((e) => e.type === 'insuranceCover');
  assert.deepEqual(
    covers.map((e) => e.type === 'insuranceCover' && e.amountQuote),
    [425n * USDC],
  );
  void c;
});
