import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { daysFromCivil, MS_PER_DAY } from '../../src/exchange/instruments/index.ts';
import { sizeIn } from '../../src/exchange/position.ts';
import {
  SNAPSHOT_FORMAT,
  SNAPSHOT_FORMAT_PREVIOUS,
  decodeSnapshot,
  encodeSnapshot,
} from '../../src/exchange/snapshot.ts';
import { decodeGenesis, encodeGenesis, riskOf } from '../../src/exchange/genesis.ts';
import {
  belowMaintenance,
  equityQuote,
  freeCollateralQuote,
  initialMarginQuote,
  maintenanceMarginQuote,
} from '../../src/exchange/margin.ts';
import { scenarioOf } from '../../src/exchange/listed_margin.ts';
import { WAD_PER_QUOTE } from '../../src/exchange/options/index.ts';
import { markOptions } from '../../src/exchange/listing.ts';
import { isLiquidatable } from '../../src/exchange/liquidation.ts';
import { INDEX_TICKS_MAX } from '../../src/lib/limits.ts';
import { DecodeError } from '../../src/codec/wire.ts';
import type { ExchangeEvent } from '../../src/exchange/results.ts';
import type { MarketState } from '../../src/exchange/state.ts';
import {
  FLAT_SMILE,
  Harness,
  LISTING_DAY_EXPIRY_MS,
  LISTING_DAY_START_MS,
  USDC,
  dailyListingGenesis,
  key,
  limit,
  replacer,
} from './helpers.ts';

const MINUTE_MS = 60_000;
const START_MS = LISTING_DAY_START_MS;
const EXPIRY_MS = LISTING_DAY_EXPIRY_MS;
const FUTURE = 'BTC-2MAR26';
const CALL = 'BTC-2MAR26-50000-C';
const PUT = 'BTC-2MAR26-49000-P';

const FLAT = FLAT_SMILE;

/** The daily listing with flat smiles; with `markIntervalMs`, options are marked once per interval. */
function harness(markIntervalMs?: number): Harness {
  const g = dailyListingGenesis(START_MS);
  if (markIntervalMs !== undefined) g.listing!.markIntervalMs = markIntervalMs;
  const h = new Harness(g);
  h.smiles = [
    { underlying: 'BTC', expiryMs: EXPIRY_MS, svi: FLAT },
    { underlying: 'ETH', expiryMs: EXPIRY_MS, svi: FLAT },
  ];
  return h;
}

/** Alice and Bob funded with $100,000 each, a minute on: the call they trade. */
function fundedCall(h: Harness): MarketState {
  h.fund(alice, 100_000n * USDC);
  h.fund(bob, 100_000n * USDC);
  h.block([], MINUTE_MS);
  return h.ex.state.marketByName.get(CALL)!;
}

/** Alice and Bob funded; Alice short and Bob long two of CALL at its mark. Returns the call. */
function aliceShortTwoCalls(h: Harness): MarketState {
  const call = fundedCall(h);
  assert.ok(h.one(bob, limit(CALL, 'buy', call.markTicks, 2)).actions[0]!.ok);
  assert.ok(h.one(alice, limit(CALL, 'sell', call.markTicks, 2)).actions[0]!.ok);
  return call;
}

/**
 * Alice short and Bob long two of CALL, then BTC's price stops: past expiry
 * the call waits, halted and without a mark. Returns the call and the BTC
 * price withheld (put it back in `h.oracle` to let the call settle).
 */
function expiredCallWaiting(h: Harness): { call: MarketState; btc: bigint } {
  const call = aliceShortTwoCalls(h);
  h.block([], 4 * 60 * MINUTE_MS);
  const { BTC: btc, ...withoutBtc } = h.oracle;
  h.oracle = withoutBtc;
  while (h.timeMs <= EXPIRY_MS) h.block([], 30 * MINUTE_MS);
  assert.ok(!call.retired && call.halted && call.optionMark === null, 'the call waits');
  return { call, btc: btc! };
}

function live(h: Harness): string[] {
  return h.ex.state.markets
    .filter((m) => m.listed && !m.retired)
    .map((m) => m.params.instrument)
    .sort();
}

function events(h: Harness, type: ExchangeEvent['type'], blocks: number, dtMs: number) {
  const out: ExchangeEvent[] = [];
  for (let i = 0; i < blocks; i++) {
    out.push(...h.block([], dtMs).events.filter((e) => e.type === type));
  }
  return out;
}

const alice = key('listing-alice');
const bob = key('listing-bob');

type Key = typeof alice;
type Action = Parameters<Harness['tx']>[1];

/** `action` signed by `from` in a block of its own, which must accept it; its result. */
function accepted(h: Harness, from: Key, action: Action) {
  const r = h.one(from, action).actions[0]!;
  assert.ok(r.ok, JSON.stringify(r, replacer));
  return r;
}

/** Alice sells ten CALL (one BTC) at the mark, resting, and Bob takes them. */
function aliceSellsTenCalls(h: Harness, call: MarketState): void {
  accepted(h, alice, limit(CALL, 'sell', call.markTicks, 10));
  accepted(h, bob, limit(CALL, 'buy', call.markTicks, 10, { timeInForce: 'IOC' }));
}

test('instruments are listed as block time passes, settle at expiry and free their slots', () => {
  const h = harness();
  const listed = events(h, 'marketListed', 1, MINUTE_MS);
  assert.equal(listed.length, 2 + 2 * 5 + 2 * 3);
  assert.ok(live(h).includes(FUTURE) && live(h).includes(CALL) && live(h).includes(PUT));
  const slots = h.ex.state.markets.length;
  // Up to expiry: nothing else happens; the option has a mark from its smile.
  assert.equal(events(h, 'marketListed', 3, 60 * MINUTE_MS).length, 0);
  const call = h.ex.state.marketByName.get(CALL)!;
  assert.ok(call.markTicks > 0 && call.optionMark !== null);
  // Past 08:00 the day's instruments settle and the next day's take their slots.
  const settled = events(h, 'marketSettled', 6, 60 * MINUTE_MS);
  assert.equal(settled.length, 18);
  assert.equal(h.ex.state.marketByName.get(CALL), undefined);
  assert.ok(live(h).includes('BTC-3MAR26'));
  assert.equal(h.ex.state.markets.length, slots, 'settled slots were reused');
  assert.equal(h.ex.state.twaps.size, 2, 'one TWAP per underlying and live expiry');
});

test('settlement closes every position at the TWAP value exactly, dust to the fee pool', () => {
  const h = harness();
  h.fund(alice, 100_000n * USDC);
  h.fund(bob, 100_000n * USDC);
  const future = h.ex.state.marketByName.get(FUTURE)!;
  const call = h.ex.state.marketByName.get(CALL)!;
  const f = future.markTicks;
  const c = call.markTicks;
  assert.ok(h.one(alice, limit(FUTURE, 'buy', f, 3)).actions[0]!.ok);
  assert.ok(h.one(bob, limit(FUTURE, 'sell', f, 3)).actions[0]!.ok);
  assert.ok(h.one(alice, limit(CALL, 'sell', c, 7)).actions[0]!.ok);
  assert.ok(h.one(bob, limit(CALL, 'buy', c, 7)).actions[0]!.ok);
  const a = h.account(alice)!;
  const b = h.account(bob)!;
  assert.equal(sizeIn(a, future), 3);
  assert.equal(sizeIn(b, call), 7);
  assert.equal(a.listed.length, 2);
  // The index steps up to 50,123.456789 for the window, so the TWAP is that price.
  h.oracle = { ...h.oracle, BTC: 50_123_456_789n };
  for (let i = 0; i < 7; i++) h.block([], 60 * MINUTE_MS);
  const cashA = a.cashQuote;
  const cashB = b.cashQuote;
  const pool = h.ex.state.feePoolQuote;
  const settled = events(h, 'marketSettled', 1, 60 * MINUTE_MS).filter(
    (e) => e.type === 'marketSettled' && (e.market === FUTURE || e.market === CALL),
  );
  assert.equal(settled.length, 2);
  const price = 50_123_456_789n;
  // Future: lotsPerBase 10,000. Call: lotsPerBase 10, payoff 123.456789.
  const longFuture = (3n * price) / 10_000n;
  const shortFuture = -((3n * price + 9_999n) / 10_000n);
  const longCall = (7n * 123_456_789n) / 10n;
  const shortCall = -((7n * 123_456_789n + 9n) / 10n);
  assert.equal(a.cashQuote - cashA, longFuture + shortCall);
  assert.equal(b.cashQuote - cashB, shortFuture + longCall);
  const dust = -(longFuture + shortFuture) - (longCall + shortCall);
  assert.equal(h.ex.state.feePoolQuote - pool, dust);
  assert.equal(a.listed.length, 0, 'records leave with the market');
  assert.equal(a.positionCount, 0);
});

test('listed records belong to their account alone, from the first one to after settlement', () => {
  // Accounts without records share one empty list (state.ts): a record added
  // to one account, or left by a settled market, must show in no other.
  const h = harness();
  const carol = key('listing-carol');
  h.fund(alice, 100_000n * USDC);
  h.fund(bob, 100_000n * USDC);
  h.fund(carol, 100_000n * USDC);
  const future = h.ex.state.marketByName.get(FUTURE)!;
  assert.ok(h.one(alice, limit(FUTURE, 'buy', future.markTicks, 2)).actions[0]!.ok);
  const a = h.account(alice)!;
  const c = h.account(carol)!;
  assert.equal(a.listed.length, 1);
  assert.equal(c.listed.length, 0);
  assert.ok(h.one(bob, limit(FUTURE, 'sell', future.markTicks, 2)).actions[0]!.ok);
  assert.equal(h.account(bob)!.listed.length, 1);
  assert.notEqual(a.listed, h.account(bob)!.listed);
  for (let i = 0; i < 9; i++) h.block([], 60 * MINUTE_MS);
  assert.equal(a.listed.length, 0, 'records leave with the market');
  assert.equal(c.listed.length, 0);
  // A record again after settlement, in a market listed since.
  const next = h.ex.state.markets.find((m) => m.listed && !m.retired)!;
  assert.ok(h.one(carol, limit(next.params.instrument, 'buy', next.markTicks, 1)).actions[0]!.ok);
  assert.equal(c.listed.length, 1);
  assert.equal(a.listed.length, 0);
});

test('option margin: a short option needs its scenario margin; a long one its premium', () => {
  const h = harness();
  h.fund(alice, 1_000n * USDC);
  h.fund(bob, 100_000n * USDC);
  h.block([], MINUTE_MS);
  const call = h.ex.state.marketByName.get(CALL)!;
  const c = call.markTicks;
  // 100 lots = 10 BTC short: far beyond $1,000 of margin.
  const big = h.one(alice, limit(CALL, 'sell', c, 100)).actions[0]!;
  assert.equal(big.ok, false);
  assert.equal(!big.ok && big.code, 'InsufficientMargin');
  assert.ok(h.one(alice, limit(CALL, 'sell', c, 1)).actions[0]!.ok);
  // A long option costs its premium: more than the cash is refused.
  const premiumPerLot = BigInt(c) * call.k;
  const lots = Number((1_000n * USDC) / premiumPerLot) + 5;
  const long = h.one(alice, limit(PUT, 'buy', 1_000_000, lots)).actions[0]!;
  assert.equal(!long.ok && long.code, 'InsufficientMargin');
  assert.ok(h.one(bob, limit(CALL, 'buy', c, 1)).actions[0]!.ok);
  assert.ok(maintenanceMarginQuote(h.ex.state, h.account(alice)!) > 0n);
});

test('an option account below maintenance is liquidated through the book', () => {
  const h = harness();
  h.fund(alice, 2_000n * USDC);
  h.fund(bob, 1_000_000n * USDC);
  h.block([], MINUTE_MS);
  const call = h.ex.state.marketByName.get(CALL)!;
  let sold = 0;
  for (let i = 0; i < 20; i++) {
    const r = h.one(alice, limit(CALL, 'sell', call.markTicks, 1)).actions[0]!;
    if (!r.ok) break;
    sold++;
  }
  assert.ok(sold > 0);
  assert.ok(h.one(bob, limit(CALL, 'buy', call.markTicks, sold)).actions[0]!.ok);
  assert.equal(sizeIn(h.account(alice)!, call), -sold);
  // Bob also bids far above, to take the liquidation.
  assert.ok(h.one(bob, limit(CALL, 'buy', call.markTicks * 4, sold)).actions[0]!.ok);
  const liquidations: ExchangeEvent[] = [];
  for (let i = 0; i < 40 && liquidations.length === 0; i++) {
    h.oracle = { ...h.oracle, BTC: h.oracle.BTC! + 200n * USDC };
    liquidations.push(...h.block([], MINUTE_MS).events.filter((e) => e.type === 'liquidation'));
  }
  assert.ok(liquidations.length > 0, 'the short call was liquidated');
  assert.equal(liquidations[0]!.type === 'liquidation' && liquidations[0]!.market, CALL);
});

test('snapshot and restore across listing, trading and settlement give the same appHash and behaviour', () => {
  const h = harness();
  h.fund(alice, 100_000n * USDC);
  h.fund(bob, 100_000n * USDC);
  const call = h.ex.state.marketByName.get(CALL)!;
  assert.ok(h.one(alice, limit(CALL, 'sell', call.markTicks, 2)).actions[0]!.ok);
  assert.ok(h.one(bob, limit(CALL, 'buy', call.markTicks, 1)).actions[0]!.ok);
  assert.ok(h.one(bob, limit(FUTURE, 'buy', 400_000, 5)).actions[0]!.ok);
  const check = (): void => {
    const copy = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
    assert.deepEqual(copy.appHash, h.ex.appHash);
    assert.deepEqual(copy.digestFromScratch(), h.ex.digestBytes());
    const twin = new Harness(undefined, undefined, copy);
    twin.timeMs = h.timeMs;
    twin.smiles = h.smiles;
    twin.oracle = { ...h.oracle };
    for (let i = 0; i < 3; i++) {
      const x = h.block([], 47 * MINUTE_MS);
      const y = twin.block([], 47 * MINUTE_MS);
      assert.deepEqual(y.appHash, x.appHash);
    }
  };
  check();
  for (let i = 0; i < 6; i++) h.block([], 60 * MINUTE_MS);
  check(); // after settlement and relisting
  assert.deepEqual(h.ex.digestFromScratch(), h.ex.digestBytes());
});

test('property: random trades in futures and options settle with collateral conserved', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          maker: fc.integer({ min: 0, max: 2 }),
          taker: fc.integer({ min: 0, max: 2 }),
          market: fc.constantFrom(FUTURE, CALL, PUT),
          lots: fc.integer({ min: 1, max: 9 }),
          buy: fc.boolean(),
        }),
        { maxLength: 8 },
      ),
      fc.bigInt({ min: 45_000n * USDC, max: 55_000n * USDC }),
      (trades, settle) => {
        const h = harness();
        const keys = [0, 1, 2].map((i) => key(`listing-prop-${i}`));
        for (const k of keys) h.fund(k, 500_000n * USDC);
        for (const t of trades) {
          const m = h.ex.state.marketByName.get(t.market)!;
          const price = m.markTicks;
          h.block([
            h.tx(keys[t.maker]!, limit(t.market, t.buy ? 'buy' : 'sell', price, t.lots)),
            h.tx(
              keys[t.taker]!,
              limit(t.market, t.buy ? 'sell' : 'buy', price, t.lots, {
                timeInForce: 'IOC',
              }),
            ),
          ]);
        }
        h.oracle = { ...h.oracle, BTC: settle };
        // The harness checks every invariant after every block, conservation included.
        for (let i = 0; i < 9; i++) h.block([], 60 * MINUTE_MS);
        for (const k of keys) assert.equal(h.account(k)?.listed.length ?? 0, 0);
        assert.equal(h.ex.state.marketByName.get(FUTURE), undefined);
      },
    ),
    { numRuns: 12, seed: 7 },
  );
});

test('with a mark interval, options are marked once per interval of block time, and their marks are state', () => {
  const h = harness(1_000);
  h.block([], MINUTE_MS);
  const call = () => h.ex.state.marketByName.get(CALL)!;
  const first = call().optionMark;
  assert.ok(first !== null && call().markTicks > 0, 'marked when listed');
  // Within the same second of block time the index moves but the mark stays.
  const btc = h.oracle['BTC']!;
  h.oracle = { ...h.oracle, BTC: btc + 500n * USDC };
  h.block([], 100);
  assert.equal(call().optionMark, first, 'kept within the interval');
  assert.equal(call().indexTicks, call().markTicks, "a kept mark is also the option's index");
  // A snapshot taken mid-interval restores the kept mark and the same appHash.
  const restored = decodeSnapshot(encodeSnapshot(h.ex));
  assert.deepEqual(restored.appHash, h.ex.appHash);
  const kept = restored.state.marketByName.get(CALL)!.optionMark!;
  assert.deepEqual(kept, first);
  // The next block that enters a new second marks again from the moved index.
  h.block([], 1_000);
  const second = call().optionMark!;
  assert.notEqual(second, first);
  assert.ok(second.markQuote > first.markQuote, 'a call gains when the forward rises');
  // Without the interval, the same blocks mark every block.
  const every = harness();
  every.block([], MINUTE_MS);
  const before = every.ex.state.marketByName.get(CALL)!.optionMark;
  every.oracle = { ...every.oracle, BTC: btc + 500n * USDC };
  every.block([], 100);
  assert.notEqual(every.ex.state.marketByName.get(CALL)!.optionMark, before);
});

test('without a mark interval, an expired option waiting for its settlement price is margined alike by a running and a restored node', () => {
  const h = harness();
  const call = aliceShortTwoCalls(h);
  while (h.timeMs < EXPIRY_MS - 120 * MINUTE_MS) {
    // Prices off the option's tick: its last forward (the future's mark) is not
    // a whole number of the option's ticks, as its index is.
    h.oracle = { ...h.oracle, BTC: h.oracle['BTC']! + 10_300_000n };
    h.block([], Math.min(30 * MINUTE_MS, EXPIRY_MS - 120 * MINUTE_MS - h.timeMs));
  }
  // BTC's price stops two hours before expiry: no settlement price, so past
  // expiry the call is halted without a mark, waiting for a fresh price.
  const { BTC: _, ...withoutBtc } = h.oracle;
  h.oracle = withoutBtc;
  while (h.timeMs <= EXPIRY_MS) h.block([], 30 * MINUTE_MS);
  assert.ok(!call.retired && call.halted && call.optionMark === null);
  const copy = decodeSnapshot(encodeSnapshot(h.ex));
  assert.deepEqual(copy.appHash, h.ex.appHash);
  const twin = new Harness(undefined, undefined, copy);
  twin.timeMs = h.timeMs;
  twin.smiles = h.smiles;
  twin.oracle = { ...h.oracle };
  assert.equal(
    maintenanceMarginQuote(twin.ex.state, twin.account(alice)!),
    maintenanceMarginQuote(h.ex.state, h.account(alice)!),
  );
  assert.deepEqual(twin.block([], MINUTE_MS).appHash, h.block([], MINUTE_MS).appHash);
});

test('option scenario values built in a height before its marks are taken are built again from the new marks', () => {
  const h = harness();
  h.block([], MINUTE_MS);
  const state = h.ex.state;
  const call = state.marketByName.get(CALL)!;
  // Built early in the height, as an auction's uncross does before the option marks.
  const early = scenarioOf(state, call);
  // Then the forward moves: the expiry's future is marked higher.
  const future = state.marketByName.get(FUTURE)!;
  future.setMark(future.markTicks + 5_000);
  markOptions(state, state.timeMs - 1_000);
  const used = scenarioOf(state, call);
  assert.notDeepEqual(used, early, 'the forward moved');
  call.scenario = null;
  assert.deepEqual(used, scenarioOf(state, call));
});

test('a mark interval is validated and changes the genesis format (4) only when set', () => {
  const g = dailyListingGenesis(START_MS);
  assert.equal(encodeGenesis(g)[0], 3);
  for (const bad of [0, -1, 1.5, 60_001]) {
    const b = dailyListingGenesis(START_MS);
    b.listing!.markIntervalMs = bad;
    assert.throws(() => encodeGenesis(b), /markIntervalMs/);
  }
  g.listing!.markIntervalMs = 1_000;
  const bytes = encodeGenesis(g);
  assert.equal(bytes[0], 4);
  assert.deepEqual(decodeGenesis(bytes), g);
});

test('within a mark interval a market order on an option is bounded by its kept mark, as with a mark every block', () => {
  for (const markIntervalMs of [undefined, 1_000]) {
    const h = harness(markIntervalMs);
    h.fund(alice, 100_000n * USDC);
    h.fund(bob, 100_000n * USDC);
    h.block([], MINUTE_MS);
    const call = h.ex.state.marketByName.get(CALL)!;
    // A bid at the mark rests; 100 ms later (same second) a market sell takes it.
    assert.ok(h.one(alice, limit(CALL, 'buy', call.markTicks, 1)).actions[0]!.ok);
    const sell = h.block(
      [
        h.tx(bob, {
          ...limit(CALL, 'sell', 0, 1),
          type: 'market',
          priceTicks: undefined,
          timeInForce: 'IOC',
        }),
      ],
      100,
    ).results[0]!;
    assert.ok(sell.ok, `interval ${markIntervalMs}`);
    const action = sell.actions[0]!;
    assert.ok(action.ok && action.kind === 'placeOrder');
    assert.equal(action.order!.filledLots, 1, `interval ${markIntervalMs}`);
  }
});

test('a snapshot whose kept option mark is out of the math range is refused as a decode error', () => {
  const h = harness(1_000);
  h.block([], MINUTE_MS);
  const call = h.ex.state.marketByName.get(CALL)!;
  const honest = call.optionMark!;
  for (const bad of [{ ivWad: 10n ** 24n }, { ivWad: 1n }, { timeYearsWad: 1n }]) {
    call.optionMark = { ...honest, ...bad };
    assert.throws(() => decodeSnapshot(encodeSnapshot(h.ex)), /optionMark.*out of range/);
  }
  call.optionMark = honest;
  // A forward the pricing math refuses (past 10^15 in wads, or a million
  // times from the strike) is a decode error too, not the math's MathError.
  const forward = call.forwardQuote;
  for (const bad of [10n ** 40n, 1n]) {
    call.forwardQuote = bad;
    assert.throws(
      () => decodeSnapshot(encodeSnapshot(h.ex)),
      (e: unknown) => e instanceof DecodeError && /optionMark.*out of range/.test(e.message),
    );
  }
  call.forwardQuote = forward;
  assert.deepEqual(decodeSnapshot(encodeSnapshot(h.ex)).appHash, h.ex.appHash);
});

/** A daily listing without dated futures (the options' forward is the index itself), flat smiles. */
function harnessWithoutFutures(): Harness {
  const g = dailyListingGenesis(START_MS);
  const listing = g.listing!;
  const h = new Harness({
    ...g,
    listing: { ...listing, schedule: { ...listing.schedule, futureCycles: [] } },
  });
  h.smiles = [
    { underlying: 'BTC', expiryMs: EXPIRY_MS, svi: FLAT },
    { underlying: 'ETH', expiryMs: EXPIRY_MS, svi: FLAT },
  ];
  return h;
}

test('an index outside the pricing math’s domain leaves options at their last marks instead of failing the block', () => {
  // No dated future: the options' forward is the index itself.
  const h = harnessWithoutFutures();
  const call = fundedCall(h);
  const mark = call.markTicks;
  assert.ok(h.one(alice, limit(CALL, 'sell', mark, 2)).actions[0]!.ok);
  assert.ok(h.one(bob, limit(CALL, 'buy', mark, 2)).actions[0]!.ok);
  // BTC at one quote unit ($0.000001): the $50,000 strike is 5·10^10 times the
  // forward, past MATH_MONEYNESS_MAX. The block runs; the call keeps its mark, unshocked.
  h.oracle = { ...h.oracle, BTC: 1n };
  const height = h.ex.state.height;
  h.block([], MINUTE_MS);
  assert.equal(h.ex.state.height, height + 1, 'the block ran');
  assert.equal(call.optionMark, null);
  assert.equal(call.markTicks, mark);
  // Margin still answers for its holders, and trading goes on.
  assert.ok(maintenanceMarginQuote(h.ex.state, h.account(alice)!) > 0n);
  assert.ok(h.one(alice, { kind: 'cancelAll' }).ok);
  // Just inside the domain (the strike 950,000 times the forward): marked, but
  // the margin's shocked prices fall outside it; the holders' margin takes
  // the option unshocked instead of failing the block.
  h.oracle = { ...h.oracle, BTC: 52_632n };
  h.block([], MINUTE_MS);
  assert.notEqual(call.optionMark, null);
  assert.ok(maintenanceMarginQuote(h.ex.state, h.account(alice)!) > 0n);
  // Back in range: marked again.
  h.oracle = { ...h.oracle, BTC: 50_000n * USDC };
  h.block([], MINUTE_MS);
  assert.notEqual(call.optionMark, null);
});

test("an option's kept scenario values are built again when it passes its expiry, whatever else stands still", () => {
  // A short's values after the grace are its intrinsic values' past expiry,
  // none before it where the math refuses the option's prices: the kept ones
  // must not outlive the expiry. No block reaches this (an option expiring
  // unsettled had a stale index before, which keyed its values already), so
  // the block time is set here directly.
  const h = harnessWithoutFutures();
  const call = aliceShortTwoCalls(h);
  h.oracle = { ...h.oracle, BTC: 1n };
  h.block([], MINUTE_MS);
  assert.ok(call.optionMark === null && call.unshockedGraceOver && call.graceSmile === null);
  const before = scenarioOf(h.ex.state, call);
  assert.deepEqual(new Set(before.shortMaintenancePnlPerLotWad), new Set([0n]), 'standing still');
  h.ex.state.timeMs = EXPIRY_MS;
  const kept = scenarioOf(h.ex.state, call);
  call.scenario = null;
  const fresh = scenarioOf(h.ex.state, call);
  // Out of the money at every moved forward: it gains its kept mark.
  const markWad = call.markQuotePerLot * WAD_PER_QUOTE;
  assert.deepEqual(new Set(fresh.shortMaintenancePnlPerLotWad), new Set([-markWad]));
  assert.deepEqual(kept, fresh);
});

test('a deep in-the-money option on an underlying priced in the trillions saturates its mark at INDEX_TICKS_MAX', () => {
  // Option ticks of ten quote units (the least a template with 10 lots per
  // base unit allows). Strikes are listed near $10^10, then the underlying
  // goes to $10^13: the calls are worth about $10^13, 10^18 ticks, far past
  // 2^53, yet within the pricing math's domain.
  const g = dailyListingGenesis(START_MS);
  const listing = g.listing!;
  const templates = listing.templates.map((t) =>
    t.kind === 'option'
      ? { ...t, params: { ...t.params, tickSizeQuote: BigInt(t.params.lotsPerBase) } }
      : t,
  );
  const h = new Harness({ ...g, listing: { ...listing, templates } });
  h.smiles = [{ underlying: 'BTC', expiryMs: EXPIRY_MS, svi: FLAT }];
  h.oracle = { ...h.oracle, BTC: 10n ** 10n * USDC };
  h.block([], MINUTE_MS);
  const calls = h.ex.state.markets.filter(
    (m) =>
      m.listed &&
      m.params.underlying === 'BTC' &&
      m.instrument.kind === 'option' &&
      m.instrument.isCall,
  );
  assert.ok(calls.length > 0, 'calls listed near $10^10');
  h.oracle = { ...h.oracle, BTC: 10n ** 13n * USDC };
  const height = h.ex.state.height;
  h.block([], 1_000);
  assert.equal(h.ex.state.height, height + 1, 'the block ran');
  for (const m of calls) {
    assert.notEqual(m.optionMark, null, `${m.params.instrument} is marked`);
    assert.ok(m.optionMark!.markQuote > BigInt(INDEX_TICKS_MAX) * 10n, 'worth more than the cap');
    assert.equal(m.markTicks, INDEX_TICKS_MAX, `${m.params.instrument} saturates`);
    assert.equal(m.indexTicks, INDEX_TICKS_MAX, `${m.params.instrument}'s index too`);
  }
  // The state still encodes: a snapshot restores to the same hash.
  assert.deepEqual(decodeSnapshot(encodeSnapshot(h.ex)).appHash, h.ex.appHash);
});

test('a listing late in 2098 leaves out the expiries past 2099 instead of failing the block', () => {
  const start = daysFromCivil(2098, 12, 31) * MS_PER_DAY;
  const g = dailyListingGenesis(start);
  g.listing!.schedule = { ...g.listing!.schedule, quarterlies: 12, futureCycles: ['quarterly'] };
  const h = new Harness(g);
  const listed = events(h, 'marketListed', 2, 60 * MINUTE_MS);
  assert.ok(listed.some((e) => e.type === 'marketListed' && e.market === 'BTC-25DEC99'));
  assert.ok(live(h).every((name) => /[A-Z]{3}9[89]/.test(name)));
});

test('an expired option waiting without a mark has its short minimum priced from its underlying index, not from its own price', () => {
  const h = harness();
  const { call } = expiredCallWaiting(h);
  const index = h.ex.state.oracle!.prices.get('BTC')!.priceQuote;
  const params = h.ex.state.listing!.scenario;
  // 1% of the underlying per base unit, per lot, in wads: not 1% of the call's premium.
  const expected =
    (index * 1_000_000_000_000n * BigInt(params.shortOptionMinPpm) + 10_000_000n - 1n) /
    10_000_000n;
  assert.equal(scenarioOf(h.ex.state, call).shortMinPerLotWad, expected);
});

test('an expired market waiting for its settlement price is reported halted, once, then settled', () => {
  const h = harness();
  h.block([], MINUTE_MS);
  const call = h.ex.state.marketByName.get(CALL)!;
  h.block([], 4 * 60 * MINUTE_MS);
  // BTC's price stops: past expiry the call cannot settle and waits, halted.
  const { BTC: btc, ...withoutBtc } = h.oracle;
  h.oracle = withoutBtc;
  const halts: number[] = [];
  const haltedAt = (r: ReturnType<Harness['block']>): boolean =>
    r.events.some((e) => e.type === 'marketHalted' && e.market === CALL);
  let passed = 0;
  while (passed < 3) {
    const r = h.block([], 30 * MINUTE_MS);
    if (h.timeMs >= EXPIRY_MS) passed++;
    if (haltedAt(r)) halts.push(h.timeMs);
  }
  assert.ok(!call.retired && call.halted, 'the call waits, halted');
  assert.equal(halts.length, 1, `halted once: ${halts.join(', ')}`);
  assert.ok(halts[0]! >= EXPIRY_MS, 'in the first block past expiry');
  // BTC's price returns: the call settles, and is not reported halted again.
  h.oracle = { ...h.oracle, BTC: btc! };
  let settled = false;
  for (let i = 0; i < 10 && !settled; i++) {
    const r = h.block([], 30 * MINUTE_MS);
    assert.ok(!haltedAt(r), 'no second halt');
    settled = r.events.some((e) => e.type === 'marketSettled' && e.market === CALL);
  }
  assert.ok(settled, 'settled once a fresh price came');
});

test('no collateral leaves a subaccount holding an expired option waiting for its settlement price (OracleStale: its index is stale), short or long, until it settles', () => {
  const h = harness();
  const { call, btc } = expiredCallWaiting(h);
  const withdraw = { kind: 'withdraw' as const, amountQuote: 1n * USDC, destination: 'x' };
  for (const who of [alice, bob]) {
    const refused = h.one(who, withdraw).actions[0]!;
    assert.equal(!refused.ok && refused.code, 'OracleStale', JSON.stringify(refused, replacer));
    assert.ok(
      !refused.ok && refused.message.includes('index is stale'),
      JSON.stringify(refused, replacer),
    );
  }
  h.oracle = { ...h.oracle, BTC: btc };
  for (let i = 0; i < 10 && !call.retired; i++) h.block([], 30 * MINUTE_MS);
  assert.ok(call.retired, 'settled once a fresh price came');
  for (const who of [alice, bob]) {
    const after = h.one(who, withdraw).actions[0]!;
    assert.ok(after.ok, JSON.stringify(after, replacer));
  }
});

test('an option its pricing math cannot mark keeps its last mark as its index, which bounds market orders', () => {
  // No dated future: the options' forward is the index itself.
  const g = dailyListingGenesis(START_MS);
  const listing = g.listing!;
  const h = new Harness({
    ...g,
    listing: { ...listing, schedule: { ...listing.schedule, futureCycles: [] } },
  });
  h.smiles = [{ underlying: 'BTC', expiryMs: EXPIRY_MS, svi: FLAT }];
  const carol = key('listing-carol');
  h.fund(alice, 100_000n * USDC);
  h.fund(bob, 100_000n * USDC);
  h.fund(carol, 100_000n * USDC);
  h.block([], MINUTE_MS);
  const call = h.ex.state.marketByName.get(CALL)!;
  const mark = call.markTicks;
  assert.ok(h.one(alice, limit(CALL, 'sell', mark, 2)).actions[0]!.ok);
  assert.ok(h.one(bob, limit(CALL, 'buy', mark, 2)).actions[0]!.ok);
  // A bid far below the mark: a market sell bounded at half the mark must not reach it.
  assert.ok(h.one(carol, limit(CALL, 'buy', 1, 1)).actions[0]!.ok);
  // BTC at one quote unit: past the pricing math's domain, the call keeps its mark.
  h.oracle = { ...h.oracle, BTC: 1n };
  h.block([], MINUTE_MS);
  assert.equal(call.optionMark, null);
  assert.equal(call.markTicks, mark);
  assert.equal(call.indexTicks, mark, "the option's index is its kept mark");
  // Reduce-only: an option its pricing cannot mark takes nothing else (OracleStale).
  const sell = h.block([
    h.tx(bob, {
      ...limit(CALL, 'sell', 0, 1),
      type: 'market',
      priceTicks: undefined,
      timeInForce: 'IOC',
      reduceOnly: true,
    }),
  ]).results[0]!;
  assert.ok(sell.ok && sell.actions[0]!.ok && sell.actions[0]!.kind === 'placeOrder');
  assert.equal(sell.actions[0]!.order!.filledLots, 0, 'no fill at 1 tick for a call marked higher');
  const copy = decodeSnapshot(encodeSnapshot(h.ex));
  assert.deepEqual(copy.appHash, h.ex.appHash);
});

test('a smile not refreshed for staleAfterMs marks no option: it keeps its last mark until a fresh smile comes', () => {
  const h = harness();
  h.fund(alice, 100_000n * USDC);
  h.block([], MINUTE_MS);
  const call = h.ex.state.marketByName.get(CALL)!;
  assert.notEqual(call.optionMark, null, 'marked from a fresh smile');
  const mark = call.markTicks;
  // The validators stop agreeing on smiles; prices go on. Within staleAfterMs (60 s) the smile marks.
  const smiles = h.smiles;
  h.smiles = null;
  h.block([], 30_000);
  assert.notEqual(call.optionMark, null, 'a smile 30 s old still marks');
  // Past it the smile is as none: the option keeps its last mark, unshocked.
  h.block([], 31_000);
  assert.equal(call.optionMark, null, 'a smile 61 s old marks nothing');
  assert.equal(call.markTicks, mark);
  const copy = decodeSnapshot(encodeSnapshot(h.ex));
  assert.deepEqual(copy.appHash, h.ex.appHash);
  // A fresh smile marks it again.
  h.smiles = smiles;
  h.block([], 1_000);
  assert.notEqual(call.optionMark, null, 'marked again');
});

test('an option whose underlying index is stale is not marked from it, though its smile stays fresh: it keeps its last mark, margined by model-free bounds, until the index comes back', () => {
  // Marked at the stale forward with a smile that goes on (its total
  // variance shrinking as expiry nears), the call lost its time value hour
  // by hour (shorts gaining, longs losing) at a price nobody observed: an
  // option's value does not decay, in expectation, while nothing is known of
  // its forward.
  for (const interval of [undefined, 1_000]) {
    const h = harness(interval);
    const call = aliceShortTwoCalls(h);
    const mark = call.markTicks;
    const equities = () => [alice, bob].map((k) => equityQuote(h.ex.state, h.account(k)!));
    const before = equities();
    // BTC's price stops; the validators still agree on its smiles, whose
    // total variance falls by half.
    const { BTC: btc, ...withoutBtc } = h.oracle;
    h.oracle = withoutBtc;
    const half = { ...FLAT, a: FLAT.a / 2n };
    h.smiles = [
      { underlying: 'BTC', expiryMs: EXPIRY_MS, svi: half },
      { underlying: 'ETH', expiryMs: EXPIRY_MS, svi: half },
    ];
    h.block([], 61_000);
    assert.ok(call.oracleStale, 'the index is stale');
    const smile = h.ex.state.oracle!.smiles.get(`BTC:${EXPIRY_MS}`)!;
    assert.equal(smile.updatedMs, h.timeMs, 'the smile is fresh');
    // The index went stale a second ago: the grace counts from there.
    const graceEndsMs = h.timeMs - 1_000 + 10 * MINUTE_MS;
    const account = h.account(alice)!;
    // Two calls (0.2 BTC) at the money, BTC at $50,000: within the grace,
    // valued by their smile (fresh, at the stale forward) against their kept
    // mark, as a fresh index would; after it half the 15% cushion apart and
    // the smile's scenario losses up to the other half (more, not less).
    while (h.timeMs < EXPIRY_MS - 4 * 60 * MINUTE_MS) {
      assert.equal(call.optionMark, null, `${interval}: not marked at ${h.timeMs}`);
      assert.equal(call.markTicks, mark, `${interval}: the last mark stays at ${h.timeMs}`);
      assert.deepEqual(equities(), before, `${interval}: equities stay at ${h.timeMs}`);
      assert.ok(scenarioOf(h.ex.state, call).shortCushionPerLotWad > 0n, 'model-free bounds');
      const maintenance = maintenanceMarginQuote(h.ex.state, account);
      assert.equal(maintenance, h.timeMs < graceEndsMs ? 1_032_000_057n : 1_430n * USDC);
      const copy = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
      assert.deepEqual(copy.appHash, h.ex.appHash);
      // A node restored here derives the same grace, and so the same margin.
      const restored = copy.state.accounts[account.index]!;
      assert.equal(maintenanceMarginQuote(copy.state, restored), maintenance, 'restored');
      h.block([], h.timeMs < graceEndsMs ? MINUTE_MS : 30 * MINUTE_MS);
    }
    // Orders that add risk wait; the index back, the call is marked again.
    const r = h.one(bob, limit(CALL, 'buy', mark, 1)).actions[0]!;
    assert.equal(!r.ok && r.code, 'OracleStale');
    h.oracle = { ...h.oracle, BTC: btc! };
    h.block([], 1_000);
    assert.ok(!call.oracleStale && call.optionMark !== null, 'marked again');
    assert.ok(call.markTicks < mark, 'at the new smile');
  }
});

test('a long option without a fresh smile counts what it may lose: its kept mark does not stand for a short future beside it', () => {
  // Alice long 3 BTC of an in-the-money put ($2,000 each at BTC $50,000) and
  // short 1 BTC of the daily future. Margined apart, the future needs 5%
  // ($2,500) and the puts their premium ($6,000). Once the smile is stale,
  // a put whose scenarios stood still lost nothing in any of them: initial
  // was max(the future's 12.5% shock, the premium) = $6,250, the kept mark
  // counting as collateral for the future as well, and a rise of the price
  // (which takes the put out of the money) went unseen by its maintenance.
  const h = harness();
  h.fund(alice, 20_000n * USDC);
  h.fund(bob, 1_000_000n * USDC);
  h.block([], MINUTE_MS);
  const state = h.ex.state;
  const put = state.marketByName.get('BTC-2MAR26-52000-P')!;
  const future = state.marketByName.get(FUTURE)!;
  assert.equal(put.markQuotePerLot * BigInt(put.params.lotsPerBase), 2_000n * USDC);
  accepted(h, bob, limit(put.params.instrument, 'sell', put.markTicks, 30));
  accepted(h, alice, limit(put.params.instrument, 'buy', put.markTicks, 30));
  accepted(h, bob, limit(FUTURE, 'buy', future.markTicks, 10_000));
  accepted(h, alice, limit(FUTURE, 'sell', future.markTicks, 10_000));
  const a = h.account(alice)!;
  // $20,000 less $28 of fees.
  assert.equal(equityQuote(state, a), 19_972n * USDC);
  // With the fresh smile: $11,468.59 free.
  assert.equal(freeCollateralQuote(state, a), 11_468_591_302n);
  h.smiles = null;
  h.block([], 61_000);
  assert.equal(put.optionMark, null, 'no fresh smile: the put keeps its mark');
  // Initial: the future in the scenario would count the put at its intrinsic
  // value at each moved forward ($12,250 at +12.5%); beside it, linear, $8,500.
  assert.equal(initialMarginQuote(state, a), 8_500n * USDC);
  const free = freeCollateralQuote(state, a);
  assert.equal(free, 11_472n * USDC);
  // (The build before: $13,722, more than the smile going stale freed.)
  const refused = h.one(alice, { kind: 'withdraw', amountQuote: free + 1n, destination: 'a' });
  assert.equal(!refused.actions[0]!.ok && refused.actions[0]!.code, 'InsufficientFunds');
  accepted(h, alice, { kind: 'withdraw', amountQuote: free, destination: 'a' });
  // BTC up 5%: the put, $300 a BTC at a fresh smile, is still counted at
  // $2,000. Within the grace of the stale smile maintenance values the put
  // by its last smile at the moved forward against its kept mark: it sees
  // the put's loss at once, as a fresh smile would, and Alice is liquidated
  // in the block of the move, not once a fresh smile shows her below zero.
  // (The build before left the put's loss aside for the grace: the future's
  // 3%, $1,575, against $6,000 of equity, liquidating her only as the grace
  // ended.)
  assert.ok(!belowMaintenance(state, a));
  h.oracle = { ...h.oracle, BTC: 52_500n * USDC };
  const graceEndsMs = h.timeMs - 61_000 + state.oracleParams!.staleAfterMs + 10 * MINUTE_MS;
  const moved = h.block([], 30_000);
  assert.ok(h.timeMs < graceEndsMs && !put.unshockedGraceOver, 'within the grace');
  assert.ok(
    moved.events.some((e) => e.type === 'liquidation' && e.account === a.index),
    'Alice is liquidated in the block of the move',
  );
});

test('a long-dated long option without a fresh smile takes its intrinsic bound in initial at once, in maintenance once the grace is over: a smile outage alone liquidates no one', () => {
  // A one-year at-the-money put ($10,185 a BTC at 50% volatility) is counted
  // by the fresh model at about a third of its premium as its worst loss; its
  // intrinsic value at BTC up 12.5% is 0, all of it. Alice holds one BTC of it
  // beside one BTC short of the future of its expiry, her equity just above
  // her fresh maintenance; Carol holds the same with more cash.
  const carol = key('listing-long-grace-carol');
  const g = dailyListingGenesis(START_MS);
  g.listing!.schedule = { ...g.listing!.schedule, quarterlies: 5, futureCycles: ['quarterly'] };
  const h = new Harness(g);
  h.fund(alice, 10_250n * USDC);
  h.fund(carol, 20_000n * USDC);
  h.fund(bob, 1_000_000n * USDC);
  h.block([], MINUTE_MS);
  const state = h.ex.state;
  const put = state.marketByName.get('BTC-26MAR27-50000-P')!;
  const future = state.marketByName.get('BTC-26MAR27')!;
  // 50% volatility over 1.07 years.
  const a = 266_666_666_666_666_667n;
  h.smiles = [{ underlying: 'BTC', expiryMs: put.expiryMs, svi: { ...FLAT, a } }];
  h.block([], 1_000);
  assert.equal(put.markQuotePerLot * BigInt(put.params.lotsPerBase), 10_185n * USDC);
  for (const k of [alice, carol]) {
    accepted(h, bob, limit(put.params.instrument, 'sell', put.markTicks, 10));
    accepted(h, k, limit(put.params.instrument, 'buy', put.markTicks, 10));
    accepted(h, bob, limit(future.params.instrument, 'buy', future.markTicks, 10_000));
    accepted(h, k, limit(future.params.instrument, 'sell', future.markTicks, 10_000));
  }
  // BTC rises to $54,500, a fresh smile marking the put all the way.
  for (let i = 1; i <= 9; i++) {
    h.oracle = { ...h.oracle, BTC: (50_000n + 500n * BigInt(i)) * USDC };
    h.block([], 1_000);
  }
  const al = h.account(alice)!;
  const ca = h.account(carol)!;
  const margins = (ex: Harness['ex']): string =>
    JSON.stringify(
      [al, ca].map((x) => {
        const y = ex.state.accounts[x.index]!;
        return [
          equityQuote(ex.state, y),
          initialMarginQuote(ex.state, y),
          maintenanceMarginQuote(ex.state, y),
        ];
      }),
      replacer,
    );
  // Alice: $4,074.91 of equity, $3,917.07 of maintenance with the fresh smile.
  assert.equal(equityQuote(state, al), 4_074_907_500n);
  assert.equal(maintenanceMarginQuote(state, al), 3_917_073_746n);
  // The smile stops.
  h.smiles = null;
  const graceEndsMs = h.timeMs + state.oracleParams!.staleAfterMs + 10 * MINUTE_MS;
  const freshFree = freeCollateralQuote(state, ca);
  let first = true;
  let liquidatedAt: number | null = null;
  let copy = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
  while (h.timeMs < graceEndsMs + 2 * MINUTE_MS) {
    const block = h.nextBlock([], first ? 61_000 : 30_000);
    const r = h.ex.finalizeBlock(block);
    const b = copy.finalizeBlock(block);
    const at = `${h.timeMs - graceEndsMs} ms from the grace end`;
    assert.equal(
      JSON.stringify({ r: b.results, e: b.events }, replacer),
      JSON.stringify({ r: r.results, e: r.events }, replacer),
      `${at}: results or events`,
    );
    assert.deepEqual(b.appHash, r.appHash, `${at}: appHash`);
    assert.equal(margins(copy), margins(h.ex), `${at}: margins`);
    assert.equal(put.optionMark, null, `${at}: no fresh smile`);
    if (first) {
      // Initial takes the bound at once: the put's premium ($8,540) beside the
      // future's 5% ($2,725), where the fresh smile needed $9,665.09. Carol's
      // free collateral falls from $4,159.82 to $2,559.91, and no more leaves.
      first = false;
      assert.equal(initialMarginQuote(state, ca), 11_265n * USDC);
      const free = freeCollateralQuote(state, ca);
      assert.equal(freshFree, 4_159_815_317n);
      assert.equal(free, 2_559_907_500n);
      const refused = h.one(carol, { kind: 'withdraw', amountQuote: free + 1n, destination: 'c' });
      assert.equal(!refused.actions[0]!.ok && refused.actions[0]!.code, 'InsufficientFunds');
      accepted(h, carol, { kind: 'withdraw', amountQuote: free, destination: 'c' });
    }
    const liquidated = r.events.some((e) => e.type === 'liquidation' && e.account === al.index);
    if (h.timeMs < graceEndsMs) {
      // Within the grace the put is valued by its last smile: maintenance as
      // at the fresh smile.
      assert.ok(!liquidated, `${at}: Alice is not liquidated within the grace`);
      assert.ok(!put.unshockedGraceOver, `${at}: within the grace`);
      assert.equal(maintenanceMarginQuote(state, al), 3_916_843_750n, at);
    } else {
      // Then 80% of the put's premium too: $8,467, above Alice's equity, below Carol's.
      assert.equal(maintenanceMarginQuote(state, ca), 8_467n * USDC, at);
      if (liquidated) liquidatedAt ??= h.timeMs;
    }
    // A node restored at this block derives the same margins.
    copy = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
    assert.equal(margins(copy), margins(h.ex), `${at}: restored margins`);
  }
  assert.ok(
    liquidatedAt !== null && liquidatedAt < graceEndsMs + 30_000,
    `Alice is liquidated as the grace ends: ${liquidatedAt} against ${graceEndsMs}`,
  );
  assert.ok(!belowMaintenance(state, ca), 'Carol is not');
});

test('an option without a fresh smile keeps its last mark and takes only orders that reduce (OracleStale); amends wait too', () => {
  for (const interval of [undefined, 1_000]) {
    const h = harness(interval);
    const carol = key('listing-carol');
    h.fund(alice, 100_000n * USDC);
    h.fund(bob, 100_000n * USDC);
    h.fund(carol, 100_000n * USDC);
    h.block([], MINUTE_MS);
    const call = h.ex.state.marketByName.get(CALL)!;
    const mark = call.markTicks;
    const ok = (from: Key, action: Action) => accepted(h, from, action);
    // Alice is short one call and offers another; Bob is long one; Carol bids.
    const resting = ok(alice, limit(CALL, 'sell', mark, 2)).order!.orderId;
    ok(bob, limit(CALL, 'buy', mark, 1, { timeInForce: 'IOC' }));
    ok(carol, limit(CALL, 'buy', mark - 1, 5));
    // The smile stops: past staleAfterMs it counts as none, and the call keeps its last mark.
    h.smiles = null;
    h.block([], 61_000);
    assert.equal(call.optionMark, null, 'no fresh smile, no mark computed');
    assert.ok(call.markTicks > 0, 'the last mark stays');
    const refused = (from: typeof alice, action: Parameters<Harness['tx']>[1]) => {
      const r = h.one(from, action).actions[0]!;
      assert.equal(!r.ok && r.code, 'OracleStale', JSON.stringify(r, replacer));
    };
    // Opening a short at the last mark would be margined at the per-lot minimum alone.
    refused(alice, limit(CALL, 'sell', call.markTicks, 10));
    refused(carol, limit(CALL, 'buy', call.markTicks - 1, 1));
    refused(alice, { kind: 'amend', instrument: CALL, orderId: resting, sizeLots: 20 });
    // Reducing goes on: Bob sells his call into Carol's bid, and cancels go.
    const close = ok(
      bob,
      limit(CALL, 'sell', call.markTicks - 1, 1, { reduceOnly: true, timeInForce: 'IOC' }),
    );
    assert.equal(close.order!.filledLots, 1, 'the reduce-only order filled');
    assert.equal(sizeIn(h.account(bob)!, call), 0);
    ok(alice, { kind: 'cancel', instrument: CALL, orderId: resting });
    // A fresh smile again: orders open again.
    h.smiles = [
      { underlying: 'BTC', expiryMs: EXPIRY_MS, svi: FLAT },
      { underlying: 'ETH', expiryMs: EXPIRY_MS, svi: FLAT },
    ];
    h.block([], 1_000);
    assert.ok(call.optionMark !== null, 'marked again');
    ok(alice, limit(CALL, 'sell', call.markTicks, 1));
  }
});

test('no collateral leaves an account short, or offering, an option without a fresh smile (OracleStale); a long, and the account once flat, may', () => {
  const h = harness(undefined);
  const [carol, dave] = [key('listing-carol-out'), key('listing-dave-out')];
  for (const who of [alice, bob, carol, dave]) h.fund(who, 100_000n * USDC);
  h.block([], MINUTE_MS);
  const call = h.ex.state.marketByName.get(CALL)!;
  const mark = call.markTicks;
  const act = (from: typeof alice, action: Parameters<Harness['tx']>[1]) =>
    h.one(from, action).actions[0]!;
  const ok = (from: typeof alice, action: Parameters<Harness['tx']>[1]) => {
    const r = act(from, action);
    assert.ok(r.ok, JSON.stringify(r, replacer));
    return r;
  };
  const refused = (from: typeof alice, action: Parameters<Harness['tx']>[1]) => {
    const r = act(from, action);
    assert.equal(!r.ok && r.code, 'OracleStale', JSON.stringify(r, replacer));
  };
  // Alice is short one call and Bob long it; Carol and Dave only offer one each.
  ok(alice, limit(CALL, 'sell', mark, 1));
  ok(bob, limit(CALL, 'buy', mark, 1, { timeInForce: 'IOC' }));
  ok(carol, limit(CALL, 'sell', mark + 10, 1));
  const offer = ok(dave, limit(CALL, 'sell', mark + 50, 1)).order!.orderId;
  const withdraw = { kind: 'withdraw' as const, amountQuote: 1n * USDC, destination: 'x' };
  const transfer = {
    kind: 'transfer' as const,
    amountQuote: 1n * USDC,
    fromSubaccount: 0,
    toSubaccount: 1,
  };
  // Fresh smile: every one of them may move collateral.
  for (const who of [alice, bob, carol, dave]) ok(who, withdraw);

  h.smiles = null;
  h.block([], 61_000);
  assert.equal(call.optionMark, null, 'no fresh smile');
  refused(alice, withdraw);
  refused(alice, transfer);
  refused(carol, withdraw);
  refused(dave, transfer);
  // A long's margin is its premium at the mark whatever the smile: it goes on.
  ok(bob, withdraw);
  ok(bob, transfer);
  // Dave's offer gone, he may again.
  ok(dave, { kind: 'cancel', instrument: CALL, orderId: offer });
  ok(dave, withdraw);
  // Alice buys back her short from Carol's offer (reduce-only): Alice is flat
  // and may again; Carol is short now and may not.
  ok(alice, limit(CALL, 'buy', mark + 10, 1, { reduceOnly: true, timeInForce: 'IOC' }));
  assert.equal(sizeIn(h.account(alice)!, call), 0);
  assert.equal(sizeIn(h.account(carol)!, call), -1);
  ok(alice, withdraw);
  refused(carol, withdraw);
});

test('a short option without a fresh smile is margined by model-free bounds: a cushion of 15% of the forward less the amount out of the money (at least 10%), and its intrinsic value above its kept mark', () => {
  // With a mark interval the option keeps the forward of its last mark: the bounds take this block's.
  for (const interval of [undefined, MINUTE_MS]) {
    const h = harness(interval);
    const carol = key('listing-carol-bounds');
    h.fund(alice, 20_000n * USDC);
    h.fund(bob, 100_000n * USDC);
    h.fund(carol, 1_000_000n * USDC);
    h.block([], MINUTE_MS);
    const call = h.ex.state.marketByName.get(CALL)!;
    const ok = (from: Key, action: Action) => accepted(h, from, action);
    // Alice sells ten calls struck at $50,000 with BTC at $50,000.
    aliceSellsTenCalls(h, call);
    // Carol offers calls far above, while orders are still taken.
    ok(carol, limit(CALL, 'sell', call.markTicks * 30, 10));
    const account = h.account(alice)!;
    const fresh = {
      initial: initialMarginQuote(h.ex.state, account),
      maintenance: maintenanceMarginQuote(h.ex.state, account),
    };
    h.smiles = null;
    h.block([], 61_000);
    assert.equal(call.optionMark, null, 'no fresh smile');
    const lots = BigInt(call.params.lotsPerBase);
    const params = h.ex.state.listing!.scenario;
    const ceilDiv = (a: bigint, b: bigint): bigint => (a + b - 1n) / b;
    // Per lot, from docs/exchange.md: 1% of the forward, the intrinsic value above the kept mark …
    const expect = (forward: bigint, graceOver: boolean) => {
      const strike = call.instrument.kind === 'option' ? call.instrument.strikeQuote : 0n;
      const intrinsic = forward > strike ? ceilDiv(forward - strike, lots) : 0n;
      const kept = call.markQuotePerLot;
      const min = ceilDiv(forward * BigInt(params.shortOptionMinPpm), 1_000_000n * lots);
      const loss = intrinsic > kept ? intrinsic - kept : 0n;
      // … and a cushion of 15% of the forward less the amount out of the money, at least 10%:
      // the loss in full in both, the cushion all in initial and half in
      // maintenance once the smile has been stale for the grace.
      const outOfMoney = strike > forward ? strike - forward : 0n;
      const cushion = forward * 150_000n - outOfMoney * 1_000_000n;
      const extra = ceilDiv(
        cushion > forward * 100_000n ? cushion : forward * 100_000n,
        1_000_000n * lots,
      );
      return {
        initial: 10n * (min + loss + extra),
        maintenance: ceilDiv(
          10n * min * BigInt(params.maintenancePpm) +
            10n * loss * 1_000_000n +
            (graceOver ? 10n * extra * 500_000n : 0n),
          1_000_000n,
        ),
      };
    };
    // This block's forward: the mark of the expiry's future.
    const future = h.ex.state.marketByName.get(FUTURE)!;
    const forward = (): bigint => BigInt(future.markTicks) * future.params.tickSizeQuote;
    let want = expect(forward(), false);
    assert.equal(initialMarginQuote(h.ex.state, account), want.initial);
    // Initial above the scenario margin with a fresh smile, not the per-lot
    // minimum alone; maintenance, within the grace, the calls valued by their
    // last smile against their kept mark: about the fresh smile's (a smile
    // stale for a while alone liquidates no seller), not 80% of the minimum
    // ($400) as in the build before.
    assert.ok(want.initial > fresh.initial, `${want.initial} over the fresh ${fresh.initial}`);
    assert.equal(want.maintenance, 400n * USDC);
    const within = maintenanceMarginQuote(h.ex.state, account);
    for (const x of [fresh.maintenance, within]) {
      assert.ok(x > 5_150n * USDC && x < 5_170n * USDC, `${interval}: ${x}`);
    }
    // So the margin a fresh smile would free is not there to open a perpetual with.
    const perp = h.ex.state.marketByName.get('BTC-PERPETUAL')!;
    // Five BTC: $12,500 of initial margin at 5%, under the $13,551 a fresh
    // smile leaves free, above the $12,000 free without it.
    assert.ok(freeCollateralQuote(h.ex.state, account) < 12_500n * USDC);
    const fiveBtc = 5 * perp.params.lotsPerBase;
    const r = h.one(alice, limit('BTC-PERPETUAL', 'buy', perp.markTicks, fiveBtc)).actions[0]!;
    assert.equal(!r.ok && r.code, 'InsufficientMargin', JSON.stringify(r, replacer));
    // BTC rises while the smile stays stale: the call's kept mark no longer
    // holds its intrinsic value, and maintenance counts what is missing.
    for (let i = 0; i < 25; i++) {
      h.oracle = { ...h.oracle, BTC: h.oracle.BTC! + 200n * USDC };
      h.block([], 1_000);
    }
    assert.equal(call.optionMark, null, 'still no fresh smile');
    assert.equal(forward(), 55_000n * USDC);
    want = expect(forward(), false);
    assert.equal(initialMarginQuote(h.ex.state, account), want.initial);
    // One BTC of calls $5,000 in the money is worth $4,700 more than its kept
    // mark says: all of it in maintenance, beside 80% of the 1% minimum, and,
    // within the grace, 80% of the calls' scenario losses by their last smile.
    assert.equal(want.maintenance, 440n * USDC + 4_700n * USDC);
    const maintenance = maintenanceMarginQuote(h.ex.state, account);
    assert.ok(maintenance > want.maintenance, `${maintenance}`);
    // Carol offers calls; BTC goes on up, and Alice, with $20,000, is liquidated
    // before her calls are worth more than she holds (invariants checked every block).
    const liquidations: ExchangeEvent[] = [];
    for (let i = 0; i < 80 && liquidations.length === 0; i++) {
      h.oracle = { ...h.oracle, BTC: h.oracle.BTC! + 200n * USDC };
      const r = h.block([], 1_000);
      liquidations.push(
        ...r.events.filter((e) => e.type === 'liquidation' || e.type === 'deleverage'),
      );
    }
    assert.ok(liquidations.length > 0, 'the short calls were liquidated');
    assert.ok(h.account(alice)!.cashQuote > 0n, `cash ${h.account(alice)!.cashQuote}`);
  }
});

test('a short put without a fresh smile is liquidated before what it is worth at the forward takes its equity below zero', () => {
  // Equity counts the put at its kept mark; the value it has at the forward
  // (its intrinsic value) above that mark is a loss already there. Counted at
  // 80% with the scenario requirement, a well-funded seller stayed above
  // maintenance while its equity at that value went below zero.
  const h = harness();
  h.fund(alice, 20_000n * USDC);
  h.fund(bob, 1_000_000n * USDC);
  h.block([], MINUTE_MS);
  const put = h.ex.state.marketByName.get(PUT)!;
  const strike = put.instrument.kind === 'option' ? put.instrument.strikeQuote : 0n;
  const lots = BigInt(put.params.lotsPerBase);
  assert.ok(h.one(alice, limit(PUT, 'sell', put.markTicks, 10)).actions[0]!.ok);
  const buy = h.one(bob, limit(PUT, 'buy', put.markTicks, 10, { timeInForce: 'IOC' }));
  assert.ok(buy.actions[0]!.ok, JSON.stringify(buy, replacer));
  h.smiles = null;
  h.block([], 61_000);
  assert.equal(put.optionMark, null, 'no fresh smile');
  const account = h.account(alice)!;
  let liquidated = false;
  for (let i = 0; i < 60; i++) {
    h.oracle = { ...h.oracle, BTC: h.oracle.BTC! - 500n * USDC };
    const ids = h.ex.state.nextOrderId;
    h.block([], 1_000);
    // A liquidation attempted (its slice spends an order id; one that closes
    // nothing at the kept mark reports no event).
    liquidated = h.ex.state.nextOrderId !== ids;
    if (liquidated) break;
    // Still short and not liquidated: above maintenance, so its equity with
    // the put at what it is worth at the forward is not below zero.
    const size = BigInt(-sizeIn(account, put));
    const intrinsic = strike - put.forwardNowQuote;
    const unseen = size * intrinsic - size * lots * put.markQuotePerLot;
    const equity = equityQuote(h.ex.state, account) - (unseen > 0n ? unseen / lots : 0n);
    assert.ok(
      equity >= 0n,
      `BTC ${h.oracle.BTC}: equity ${equity} at the put's intrinsic value, maintenance ${maintenanceMarginQuote(h.ex.state, account)}`,
    );
  }
  assert.ok(liquidated, 'the short puts were liquidated');
  assert.ok(equityQuote(h.ex.state, account) >= 0n, 'and paid for');
});

test('an option without a fresh smile deleverages no one at its kept mark: what the book does not take of a liquidation waits for a fresh smile', () => {
  // Alice short one BTC of the 49,000 put, Bob long it. The smile goes
  // stale and BTC falls to $25,000 in one block: the put, kept at its mark
  // of a few dollars, is worth at least its intrinsic value, $24,000 a BTC.
  // Alice is liquidated (maintenance counts that value); no one offers the
  // put. At a bankruptcy price taken from the kept mark (about $20,000 a
  // BTC), deleveraging made Bob sell his puts for less than they are sure
  // to be worth, the loss beyond Alice's equity falling on him rather than
  // on the insurance fund, which a kept mark never shows it.
  const h = harness();
  h.fund(alice, 20_000n * USDC);
  h.fund(bob, 1_000_000n * USDC);
  h.block([], MINUTE_MS);
  const put = h.ex.state.marketByName.get(PUT)!;
  accepted(h, alice, limit(PUT, 'sell', put.markTicks, 10));
  accepted(h, bob, limit(PUT, 'buy', put.markTicks, 10, { timeInForce: 'IOC' }));
  const a = h.account(alice)!;
  const b = h.account(bob)!;
  const smiles = h.smiles;
  h.smiles = null;
  h.block([], 61_000);
  assert.equal(put.optionMark, null, 'no fresh smile');
  h.oracle = { ...h.oracle, BTC: 25_000n * USDC };
  const ids = h.ex.state.nextOrderId;
  const r = h.block([], 1_000);
  assert.equal(put.optionMark, null, 'still no fresh smile');
  // Attempted (its slice spent an order id), closing nothing: no event.
  assert.ok(isLiquidatable(h.ex.state, a), 'Alice is below maintenance');
  assert.equal(h.ex.state.nextOrderId - ids, 1, 'Alice is liquidated');
  const deleveraged = r.events.filter((e) => e.type === 'deleverage' && e.market === PUT);
  assert.deepEqual(deleveraged, [], 'no one deleveraged at the kept mark');
  assert.equal(sizeIn(b, put), 10);
  assert.equal(sizeIn(a, put), -10);
  // A fresh smile marks the put again, and its holders are looked at again:
  // Alice's short is closed at that mark's bankruptcy price.
  h.smiles = smiles;
  const fresh = h.block([], 1_000);
  assert.notEqual(put.optionMark, null, 'a fresh smile');
  assert.ok(
    fresh.events.some((e) => e.type === 'deleverage' && e.market === PUT),
    JSON.stringify(fresh.events, replacer),
  );
  assert.equal(sizeIn(a, put), 0);
});

test('with a mark interval, an option marked but whose shocked prices the math refuses keeps its margin until it is marked again', () => {
  // Its holders are looked at again when it is marked (listing.ts): a margin
  // taken at a forward that moves in between would move unseen by the scan.
  // No dated future: the forward is the index, here 950,000 times the
  // $50,000 strike, so the call is priced but its shocked prices are not.
  const g = dailyListingGenesis(START_MS);
  const listing = g.listing!;
  const h = new Harness({
    ...g,
    listing: {
      ...listing,
      markIntervalMs: MINUTE_MS,
      schedule: { ...listing.schedule, futureCycles: [] },
    },
  });
  h.smiles = [{ underlying: 'BTC', expiryMs: EXPIRY_MS, svi: FLAT }];
  h.block([], MINUTE_MS);
  const call = h.ex.state.marketByName.get(CALL)!;
  h.oracle = { ...h.oracle, BTC: 950_000n * 50_000n * USDC };
  h.block([], MINUTE_MS);
  assert.notEqual(call.optionMark, null, 'marked');
  const before = scenarioOf(h.ex.state, call);
  assert.ok(before.shortCushionPerLotWad > 0n, 'margined by model-free bounds');
  for (const step of [1n, 2n, 3n]) {
    h.oracle = { ...h.oracle, BTC: (950_000n + step * 1_000n) * 50_000n * USDC };
    h.block([], 1_000);
    assert.notEqual(call.remarkedHeight, h.ex.state.height, 'not marked again');
    assert.deepEqual(scenarioOf(h.ex.state, call), before, `BTC ${h.oracle.BTC}`);
  }
});

test('a node restored at any height while smiles are stale margins, liquidates and hashes as the node that ran', () => {
  // The forward the model-free margin is taken at is derived (markOptions,
  // after a restore too), as is the height at which an option's holders are
  // looked at again when it moves: with a mark interval or without, a node
  // restored before any block of a stale smile and a rising, then falling,
  // underlying gives the same margins, results, events and appHash.
  for (const interval of [undefined, 1_000]) {
    const h = harness(interval);
    const carol = key('listing-restore-carol');
    const dave = key('listing-restore-dave');
    h.fund(alice, 12_000n * USDC);
    h.fund(dave, 15_000n * USDC);
    h.fund(bob, 1_000_000n * USDC);
    h.fund(carol, 1_000_000n * USDC);
    h.block([], MINUTE_MS);
    const call = h.ex.state.marketByName.get(CALL)!;
    const put = h.ex.state.marketByName.get(PUT)!;
    const perp = h.ex.state.marketByName.get('BTC-PERPETUAL')!;
    const ok = (from: Key, action: Action) => accepted(h, from, action);
    aliceSellsTenCalls(h, call);
    ok(dave, limit(PUT, 'sell', put.markTicks, 10));
    ok(bob, limit(PUT, 'buy', put.markTicks, 10, { timeInForce: 'IOC' }));
    ok(dave, limit('BTC-PERPETUAL', 'buy', perp.markTicks, perp.params.lotsPerBase / 2));
    ok(carol, limit('BTC-PERPETUAL', 'sell', perp.markTicks, perp.params.lotsPerBase / 2));
    // Carol offers calls far above the mark, taken only by a liquidation.
    ok(carol, limit(CALL, 'sell', call.markTicks * 30, 10));
    h.smiles = null;
    const margins = (ex: Harness['ex']): string =>
      JSON.stringify(
        ex.state.accounts
          .filter((a) => a.listed.length > 0)
          .map((a) => [
            a.index,
            equityQuote(ex.state, a),
            initialMarginQuote(ex.state, a),
            maintenanceMarginQuote(ex.state, a),
          ]),
        replacer,
      );
    // One twin restored when the smile goes stale runs beside the whole way.
    let twin: Harness['ex'] | null = null;
    const moves = [
      ...new Array<bigint>(60).fill(200n * USDC),
      ...new Array<bigint>(100).fill(-250n * USDC),
      // Then minutes with no move: the grace ends (maintenance takes the cushion).
      ...new Array<bigint>(12).fill(0n),
    ];
    const quietFrom = 161;
    let graceEndedShort: boolean | null = null;
    const seen = new Set<string>();
    for (const [i, move] of [0n, ...moves].entries()) {
      const copy = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
      assert.equal(
        margins(copy),
        margins(h.ex),
        `interval ${interval}: restored margins, step ${i}`,
      );
      if (i === 1) twin = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
      h.oracle = { ...h.oracle, BTC: h.oracle.BTC! + move };
      const block = h.nextBlock([], i === 0 ? 61_000 : i >= quietFrom ? MINUTE_MS : 1_000);
      const a = h.ex.finalizeBlock(block);
      for (const other of twin === null ? [copy] : [copy, twin]) {
        const b = other.finalizeBlock(block);
        assert.equal(
          JSON.stringify({ r: b.results, e: b.events }, replacer),
          JSON.stringify({ r: a.results, e: a.events }, replacer),
          `interval ${interval}: results or events, step ${i}`,
        );
        assert.deepEqual(b.appHash, a.appHash, `interval ${interval}: appHash, step ${i}`);
        assert.equal(margins(other), margins(h.ex), `interval ${interval}: margins, step ${i}`);
      }
      for (const e of a.events) seen.add(`${e.type}:${'market' in e ? e.market : ''}`);
      assert.equal(call.optionMark, null, 'no fresh smile');
      if (call.unshockedGraceOver && graceEndedShort === null) {
        graceEndedShort = h.ex.state.accounts.some((x) => sizeIn(x, call) < 0);
      }
    }
    // The grace ended while an account was still short the call (Carol, from
    // a liquidation), whose maintenance the restored nodes took alike.
    assert.equal(graceEndedShort, true, `interval ${interval}: the grace ended on a short`);
    // Both shorts were liquidated against the underlying's move (the calls up, the puts down).
    for (const market of [CALL, PUT]) {
      assert.ok(
        seen.has(`liquidation:${market}`),
        `interval ${interval}: ${market} liquidated: ${[...seen].join(', ')}`,
      );
    }
  }
});

test('an option whose smile stays stale past the grace has its sellers’ maintenance take half the cushion then, and its holders looked at again, though no price moves', () => {
  // Ten at-the-money calls: maintenance $5,160.18 within the grace (by the
  // last smile, about the fresh $5,159), $7,150 after it: half the cushion
  // apart and the last smile's losses up to the other half, never less than
  // within the grace (docs/exchange.md, "Margin without a fresh smile").
  const h = harness();
  const call = fundedCall(h);
  aliceSellsTenCalls(h, call);
  const account = h.account(alice)!;
  h.smiles = null;
  h.block([], 61_000);
  assert.equal(call.optionMark, null, 'no fresh smile');
  // The smile, last fresh a minute and a second ago, went stale a second ago.
  const graceEndsMs = h.timeMs - 1_000 + 10 * MINUTE_MS;
  let ended: number | null = null;
  for (let i = 0; i < 30 && ended === null; i++) {
    h.block([], 30_000);
    const maintenance = maintenanceMarginQuote(h.ex.state, account);
    if (h.timeMs < graceEndsMs) {
      assert.equal(maintenance, 5_160_177_997n, `within the grace, at ${h.timeMs}`);
      continue;
    }
    ended = h.timeMs;
    assert.equal(maintenance, 7_150n * USDC, 'half the cushion apart once the grace is over');
    assert.equal(call.remarkedHeight, h.ex.state.height, 'its holders are looked at again');
  }
  assert.ok(ended !== null && ended < graceEndsMs + 30_000, `the grace ended at ${ended}`);
  // And it stays so, with no further look while nothing moves.
  h.block([], 30_000);
  assert.equal(maintenanceMarginQuote(h.ex.state, account), 7_150n * USDC);
  assert.notEqual(call.remarkedHeight, h.ex.state.height, 'nothing moved');
});

test('the grace ends at the block whose time is the smile’s going stale plus 10 minutes, not before: a long holder whose bound then counts is liquidated there, by a running node and by one restored at any block around it, with a mark interval or without', () => {
  const carol = key('listing-grace-carol');
  for (const interval of [undefined, MINUTE_MS]) {
    // Alice long one BTC of a one-year at-the-money put beside one BTC short
    // of the future of its expiry, her equity after BTC's rise to $54,500
    // just above her maintenance, within the grace too (the put valued by its
    // last smile), and under it once the put's intrinsic bound counts
    // (docs/exchange.md, "Margin without a fresh smile").
    const g = dailyListingGenesis(START_MS);
    if (interval !== undefined) g.listing!.markIntervalMs = interval;
    g.listing!.schedule = { ...g.listing!.schedule, quarterlies: 5, futureCycles: ['quarterly'] };
    const h = new Harness(g);
    h.fund(alice, 10_250n * USDC);
    h.fund(bob, 1_000_000n * USDC);
    h.fund(carol, 1_000_000n * USDC);
    h.block([], MINUTE_MS);
    const call = h.ex.state.marketByName.get('BTC-26MAR27-50000-P')!;
    const future = h.ex.state.marketByName.get('BTC-26MAR27')!;
    const a = 266_666_666_666_666_667n;
    h.smiles = [{ underlying: 'BTC', expiryMs: call.expiryMs, svi: { ...FLAT, a } }];
    h.block([], 1_000);
    accepted(h, carol, limit(call.params.instrument, 'sell', call.markTicks, 10));
    accepted(h, alice, limit(call.params.instrument, 'buy', call.markTicks, 10));
    accepted(h, carol, limit(future.params.instrument, 'buy', future.markTicks, 10_000));
    accepted(h, alice, limit(future.params.instrument, 'sell', future.markTicks, 10_000));
    for (let i = 1; i <= 9; i++) {
      h.oracle = { ...h.oracle, BTC: (50_000n + 500n * BigInt(i)) * USDC };
      h.block([], 1_000);
    }
    const account = h.account(alice)!;
    h.smiles = null;
    const staleSinceMs =
      h.ex.state.oracle!.smiles.get(`BTC:${call.expiryMs}`)!.updatedMs +
      h.ex.state.oracleParams!.staleAfterMs;
    const graceEndsMs = staleSinceMs + 10 * MINUTE_MS;
    h.block([], 61_000);
    assert.equal(call.optionMark, null, `interval ${interval}: no fresh smile`);
    const within = maintenanceMarginQuote(h.ex.state, account);
    assert.ok(within < equityQuote(h.ex.state, account), `${within}`);
    // Blocks a minute apart up to two seconds before the end, then a second apart past it.
    const steps: number[] = [];
    let t = h.timeMs;
    for (; t + MINUTE_MS < graceEndsMs - 2_000; t += MINUTE_MS) steps.push(MINUTE_MS);
    steps.push(graceEndsMs - 2_000 - t, 1_000, 1_000, 1_000);
    let liquidatedAt: number | null = null;
    for (const dt of steps) {
      // A node restored before each block runs it as the running node does.
      const copy = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
      const block = h.nextBlock([], dt);
      const a = h.ex.finalizeBlock(block);
      const b = copy.finalizeBlock(block);
      const at = `interval ${interval}, ${h.timeMs - graceEndsMs} ms from the grace end`;
      assert.equal(
        JSON.stringify({ r: b.results, e: b.events }, replacer),
        JSON.stringify({ r: a.results, e: a.events }, replacer),
        `${at}: results or events`,
      );
      assert.deepEqual(b.appHash, a.appHash, `${at}: appHash`);
      const liquidated = a.events.some(
        (e) => (e.type === 'liquidation' || e.type === 'deleverage') && e.account === account.index,
      );
      if (h.timeMs < graceEndsMs) {
        assert.ok(!liquidated, `${at}: not liquidated within the grace`);
        assert.ok(!call.unshockedGraceOver, `${at}: within the grace`);
        assert.equal(maintenanceMarginQuote(h.ex.state, account), within, at);
      } else {
        assert.ok(call.unshockedGraceOver, `${at}: the grace is over`);
        if (liquidated) liquidatedAt ??= h.timeMs;
      }
    }
    assert.equal(liquidatedAt, graceEndsMs, `interval ${interval}: liquidated at the grace end`);
  }
});

test('an expired option waiting for its settlement price counts its grace from when its smile or its index went stale, whichever came first, and a node restored past expiry counts it alike', () => {
  // The smile last fresh until expiry, until 5 minutes before it, until 6
  // hours before it; the index stale from 34 minutes before it (an option
  // waits only when the index was stale through the settlement window).
  for (const staleBeforeMs of [0, 5 * MINUTE_MS, 6 * 60 * MINUTE_MS]) {
    const h = harness();
    h.fund(alice, 100_000n * USDC);
    h.fund(bob, 100_000n * USDC);
    h.block([], MINUTE_MS);
    const call = h.ex.state.marketByName.get(CALL)!;
    aliceSellsTenCalls(h, call);
    const account = h.account(alice)!;
    const smiles = h.smiles;
    const staleAfterMs = h.ex.state.oracleParams!.staleAfterMs;
    const lastSmileMs = EXPIRY_MS - staleBeforeMs - staleAfterMs;
    // BTC's price stops before the settlement window (the last 30 minutes):
    // past expiry the call waits, halted, for its settlement price.
    const lastPriceMs = EXPIRY_MS - 35 * MINUTE_MS;
    const staleSinceMs = Math.min(lastSmileMs, lastPriceMs) + staleAfterMs;
    const btc = h.oracle.BTC!;
    // On a grid of minutes, so that the block times above are among them.
    h.block([], MINUTE_MS - (h.timeMs % MINUTE_MS));
    let twin: Harness['ex'] | null = null;
    let checked = 0;
    while (h.timeMs < EXPIRY_MS + 15 * MINUTE_MS) {
      const t = h.timeMs + MINUTE_MS;
      h.smiles = t <= lastSmileMs ? smiles : null;
      const { BTC: _, ...withoutBtc } = h.oracle;
      h.oracle = t <= lastPriceMs ? { ...h.oracle, BTC: btc } : withoutBtc;
      const block = h.nextBlock([], MINUTE_MS);
      const a = h.ex.finalizeBlock(block);
      const at = `stale ${staleBeforeMs} ms before expiry, at ${t - EXPIRY_MS} ms from it`;
      if (twin !== null) assert.deepEqual(twin.finalizeBlock(block).appHash, a.appHash, at);
      // A node restored a minute past expiry: the smile that told when the grace began is gone.
      if (t === EXPIRY_MS + MINUTE_MS) {
        twin = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
      }
      if (t <= staleSinceMs) continue;
      assert.ok(!call.retired && call.optionMark === null, `${at}: the call waits unmarked`);
      // Ten at-the-money calls on $50,000: $7,150 after the grace (half the
      // cushion apart, the other half taken by the last smile's losses before
      // expiry and the intrinsic values' past it); within it,
      // by their last smile before expiry and their intrinsic values past it,
      // above that (80% of their loss at BTC up 12.5%).
      const over = t >= staleSinceMs + 10 * MINUTE_MS;
      const got = maintenanceMarginQuote(h.ex.state, account);
      const want = over ? 7_150n * USDC : got;
      assert.equal(got, want, at);
      if (!over) assert.ok(got > 5_000n * USDC && got < 5_200n * USDC, `${at}: ${got}`);
      if (twin !== null) {
        const copy = twin.state.accounts[account.index]!;
        assert.equal(maintenanceMarginQuote(twin.state, copy), want, `${at}: restored`);
      }
      checked++;
    }
    assert.ok(checked >= 15, `stale ${staleBeforeMs} ms before expiry: ${checked} blocks checked`);
  }
});

test('when an expired option’s grace counts from is in its market’s leaf: a snapshot changing it restores another appHash, and one after the expiry is refused', () => {
  const h = harness();
  const { call } = expiredCallWaiting(h);
  const since = call.unshockedSinceMs;
  assert.ok(since !== null && since <= EXPIRY_MS, `the grace counts from ${since}`);
  const bytes = encodeSnapshot(h.ex);
  assert.deepEqual(decodeSnapshot(bytes).appHash, h.ex.appHash);
  for (const other of [since - 1, null, EXPIRY_MS]) {
    if (other === since) continue;
    const copy = decodeSnapshot(bytes);
    copy.state.markets[call.index]!.unshockedSinceMs = other;
    const restored = decodeSnapshot(encodeSnapshot(copy));
    assert.notDeepEqual(restored.appHash, h.ex.appHash, `counted from ${other}`);
  }
  const copy = decodeSnapshot(bytes);
  copy.state.markets[call.index]!.unshockedSinceMs = EXPIRY_MS + 1;
  assert.throws(
    () => decodeSnapshot(encodeSnapshot(copy)),
    (e: unknown) => e instanceof DecodeError && e.message.includes('after the expiry'),
  );
});

test('a snapshot of the format before (11, without a fee schedule set by governance) restores the same appHash, an option waiting for its settlement price included', () => {
  assert.equal(SNAPSHOT_FORMAT_PREVIOUS, SNAPSHOT_FORMAT - 1);
  const h = harness();
  aliceShortTwoCalls(h);
  h.block([], MINUTE_MS);
  const waiting = harness();
  expiredCallWaiting(waiting);
  for (const ex of [h.ex, waiting.ex]) {
    const before = encodeSnapshot(ex, SNAPSHOT_FORMAT_PREVIOUS);
    assert.equal(before[0], SNAPSHOT_FORMAT_PREVIOUS);
    const restored = decodeSnapshot(before, { checkInvariants: true });
    assert.deepEqual(restored.appHash, ex.appHash);
    // The restored state writes the current format.
    assert.equal(encodeSnapshot(restored)[0], SNAPSHOT_FORMAT);
  }
});

test('an option already halted when it expires still has its market leaf updated at expiry (the incremental digest equals one from scratch)', () => {
  // Past expiry an option's leaf carries since when its grace counts; a
  // market halted before (here by hand, as governance would) is not halted
  // again at expiry, so its leaf must be refreshed anyway.
  const h = harness();
  const call = aliceShortTwoCalls(h);
  h.block([], 4 * 60 * MINUTE_MS);
  call.halted = true;
  call.dirty = true;
  const { BTC: _btc, ...withoutBtc } = h.oracle;
  h.oracle = withoutBtc;
  while (h.timeMs <= EXPIRY_MS) {
    h.block([], 30 * MINUTE_MS);
    assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch(), `at ${h.timeMs}`);
  }
  assert.ok(!call.retired && call.halted, 'the call waits');
});

test('a short that its settlement leaves below zero, with no other position, loses its resting orders and is covered by the insurance fund, the rest a deficit', () => {
  const g = dailyListingGenesis(START_MS);
  g.insuranceFundQuote = 2_000n * USDC;
  const h = new Harness(g);
  h.fund(alice, 5_000n * USDC);
  h.fund(bob, 100_000n * USDC);
  const future = h.ex.state.marketByName.get(FUTURE)!;
  const perp = h.ex.state.marketByName.get('ETH-PERPETUAL')!;
  // Alice short 1 BTC of the future to Bob, and a bid resting on ETH.
  accepted(h, bob, limit(FUTURE, 'buy', future.markTicks, 10_000));
  accepted(h, alice, limit(FUTURE, 'sell', future.markTicks, 10_000, { timeInForce: 'IOC' }));
  accepted(h, alice, limit('ETH-PERPETUAL', 'buy', perp.markTicks - 1_000, 1));
  // BTC's price stops before the window and comes back past expiry $10,000
  // higher: no liquidation while stale, and the settlement takes that price.
  const { BTC: btc, ...withoutBtc } = h.oracle;
  h.oracle = withoutBtc;
  while (h.timeMs <= EXPIRY_MS) h.block([], 30 * MINUTE_MS);
  assert.ok(!future.retired && future.halted, 'the future waits for its price');
  const a = h.account(alice)!;
  const fund = h.ex.state.insuranceQuote;
  const deposited = h.ex.state.depositedQuote - h.ex.state.withdrawnQuote;
  h.oracle = { ...h.oracle, BTC: btc! + 10_000n * USDC };
  const cashBefore = a.cashQuote;
  const r = h.block([], MINUTE_MS);
  assert.ok(future.retired, 'settled');
  // One BTC short pays the settlement price in full.
  const settledCash = cashBefore - (btc! + 10_000n * USDC);
  assert.ok(settledCash < 0n, `the settlement took alice below zero (${settledCash})`);
  // The fund holds its $2,000 of the genesis: it pays that much of the $5,000 and more alice lacks.
  assert.equal(fund, 2_000n * USDC);
  assert.ok(-settledCash > fund, 'more than the fund');
  const mine = r.events.filter(
    (e) =>
      (e.type === 'liquidationCancels' || e.type === 'insuranceCover') && e.account === a.index,
  );
  assert.deepEqual(mine, [
    { type: 'liquidationCancels', account: a.index, orders: 1 },
    { type: 'insuranceCover', account: a.index, amountQuote: fund },
  ]);
  assert.equal(a.positionCount, 0);
  assert.equal(h.ex.state.orders.size, 0, "alice's ETH bid is gone");
  assert.equal(a.cashQuote, settledCash + fund);
  assert.equal(h.ex.state.insuranceQuote, 0n);
  assert.ok(a.cashQuote < 0n && h.ex.state.deficits.has(a), 'the rest is a deficit');
  // Conservation (also checked after every block by the harness).
  const cash = h.ex.state.accounts.reduce((s, x) => s + x.cashQuote, 0n);
  assert.equal(cash + h.ex.state.insuranceQuote + h.ex.state.feePoolQuote, deposited);
});

test('a short option without a fresh smile is margined for at least the grid’s price shock: at a 50% shock its initial margin does not fall when the smile goes stale', () => {
  // Ten at-the-money calls (one BTC, BTC at $50,000) where the grid shocks
  // the price by ±50%: the fresh model's worst loss is about half the
  // forward. The cushion took 15% of it whatever the shock ($8,000 of
  // initial with the 1% minimum): the smile going stale freed two thirds of
  // the seller's margin.
  const g = dailyListingGenesis(START_MS);
  g.listing!.scenario = { ...g.listing!.scenario, priceShockPpm: 500_000 };
  const h = new Harness(g);
  h.smiles = [{ underlying: 'BTC', expiryMs: EXPIRY_MS, svi: FLAT }];
  const call = fundedCall(h);
  aliceSellsTenCalls(h, call);
  const account = h.account(alice)!;
  const fresh = initialMarginQuote(h.ex.state, account);
  assert.ok(fresh > 24_000n * USDC && fresh < 26_000n * USDC, `fresh: ${fresh}`);
  h.smiles = null;
  h.block([], 61_000);
  assert.equal(call.optionMark, null, 'no fresh smile');
  // The 1% minimum and 50% of the forward.
  assert.equal(initialMarginQuote(h.ex.state, account), 25_500n * USDC);
  assert.ok(initialMarginQuote(h.ex.state, account) >= fresh);
  // Past the grace, maintenance takes half the cushion apart and the last
  // smile's losses up to the other half: 80% of the minimum, 25% of the
  // forward and 80% of 25% of it, above the fresh maintenance.
  for (let i = 0; i < 21; i++) h.block([], 30_000);
  assert.ok(call.unshockedGraceOver);
  assert.equal(maintenanceMarginQuote(h.ex.state, account), 22_900n * USDC);
});

test('a long option hedged by a future keeps its hedge credit in maintenance within the grace of a stale smile: its maintenance does not jump in the block the smile goes stale', () => {
  // Alice long one BTC of a one-year at-the-money call ($10,185 at 50%
  // volatility, BTC at $50,000) and short 0.6 BTC of the future of its
  // expiry (about the call's delta): $665.53 of maintenance at the fresh
  // smile. Within the grace, the build before counted the call's gains at
  // its intrinsic values only (none at BTC up 12.5%: $6,250 is less than its
  // kept mark), and the future alone: its linear 3%, $900, a third more
  // than the hedge needed, in the very block the smile went stale.
  const g = dailyListingGenesis(START_MS);
  g.listing!.schedule = { ...g.listing!.schedule, quarterlies: 5, futureCycles: ['quarterly'] };
  const h = new Harness(g);
  h.fund(alice, 20_000n * USDC);
  h.fund(bob, 1_000_000n * USDC);
  h.block([], MINUTE_MS);
  const state = h.ex.state;
  const call = state.marketByName.get('BTC-26MAR27-50000-C')!;
  const future = state.marketByName.get('BTC-26MAR27')!;
  h.smiles = [
    { underlying: 'BTC', expiryMs: call.expiryMs, svi: { ...FLAT, a: 266_666_666_666_666_667n } },
  ];
  h.block([], 1_000);
  accepted(h, bob, limit(call.params.instrument, 'sell', call.markTicks, 10));
  accepted(h, alice, limit(call.params.instrument, 'buy', call.markTicks, 10));
  accepted(h, bob, limit(future.params.instrument, 'buy', future.markTicks, 6_000));
  accepted(h, alice, limit(future.params.instrument, 'sell', future.markTicks, 6_000));
  const a = h.account(alice)!;
  assert.equal(maintenanceMarginQuote(state, a), 665_534_217n);
  h.smiles = null;
  const graceEndsMs = h.timeMs + state.oracleParams!.staleAfterMs + 10 * MINUTE_MS;
  h.block([], 61_000);
  assert.equal(call.optionMark, null, 'no fresh smile');
  while (h.timeMs < graceEndsMs) {
    assert.ok(!call.unshockedGraceOver, 'within the grace');
    // The call valued by its last smile (at the time the grace counts from):
    // the hedge as at the fresh smile.
    assert.equal(maintenanceMarginQuote(state, a), 663_670_807n);
    // Initial takes the model-free bounds at once: the premium.
    assert.equal(initialMarginQuote(state, a), 10_185n * USDC);
    // A node restored here derives the same.
    const copy = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
    assert.deepEqual(copy.appHash, h.ex.appHash);
    assert.equal(maintenanceMarginQuote(copy.state, copy.state.accounts[a.index]!), 663_670_807n);
    h.block([], MINUTE_MS);
  }
  // Past the grace, the model-free rule: the call's intrinsic values, which
  // lose all its kept mark at an unchanged price, where the future neither
  // gains nor loses (80% of $10,185).
  assert.ok(call.unshockedGraceOver, 'the grace is over');
  assert.equal(maintenanceMarginQuote(state, a), 8_148n * USDC);
});

test('with a mark interval, a marked option keeps its scenario values from block to block until it is marked again, though its index and smile are updated every block', () => {
  // The grace's inputs (since when the option would be without a fresh smile
  // or index, which every update of them moves) are no key of the values of
  // an option that does not read them: rebuilt every block, its holders'
  // kept sums were too, at each margin check of theirs.
  const h = harness(MINUTE_MS);
  const call = aliceShortTwoCalls(h);
  const account = h.account(alice)!;
  let kept = 0;
  for (let i = 0; i < 90; i++) {
    const mark = call.optionMark;
    const values = scenarioOf(h.ex.state, call);
    const maintenance = maintenanceMarginQuote(h.ex.state, account);
    h.oracle = { ...h.oracle, BTC: h.oracle.BTC! + (i % 2 === 0 ? 1n : -1n) * USDC };
    h.block([], 1_000);
    assert.ok(call.optionMark !== null && call.unshockedGraceOver, 'fresh');
    if (call.optionMark !== mark) continue;
    kept++;
    assert.equal(scenarioOf(h.ex.state, call), values, `block ${i}: kept with the mark`);
    assert.equal(maintenanceMarginQuote(h.ex.state, account), maintenance);
  }
  assert.ok(kept >= 80, `${kept} blocks within a mark interval`);
});

test('within the grace of a stale index, a smile replaced by another in a block of the same time values the option by the new one, on a running node as on one restored before it', () => {
  for (const interval of [undefined, MINUTE_MS]) {
    const h = harness(interval);
    const call = aliceShortTwoCalls(h);
    const account = h.account(alice)!;
    // BTC's price stops; its smiles go on.
    const { BTC: _, ...withoutBtc } = h.oracle;
    h.oracle = withoutBtc;
    h.block([], 61_000);
    assert.ok(call.oracleStale && !call.unshockedGraceOver && call.graceSmile !== null);
    const before = maintenanceMarginQuote(h.ex.state, account);
    const twin = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
    // The next block, of the same time, brings a smile of twice the variance.
    h.smiles = [{ underlying: 'BTC', expiryMs: EXPIRY_MS, svi: { ...FLAT, a: 2n * FLAT.a } }];
    const block = h.nextBlock([], 0);
    const a = h.ex.finalizeBlock(block);
    const b = twin.finalizeBlock(block);
    assert.deepEqual(b.appHash, a.appHash);
    const restored = maintenanceMarginQuote(twin.state, twin.state.accounts[account.index]!);
    const running = maintenanceMarginQuote(h.ex.state, account);
    assert.ok(restored > before, `${interval}: the short's scenario losses grow with the variance`);
    assert.equal(running, restored, `${interval}: the running node values it alike`);
    assert.equal(
      call.remarkedHeight,
      h.ex.state.height,
      `${interval}: its holders looked at again`,
    );
  }
});

/**
 * Alice short two calls; BTC's index stops, then (two minutes on) the call's
 * smile; the index comes back for one block while the smile stays stale, and
 * stops again. Returns when the index first went stale.
 */
function indexThenSmileStale(h: Harness, call: MarketState): number {
  const staleAfterMs = h.ex.state.oracleParams!.staleAfterMs;
  const btc = h.oracle.BTC!;
  const { BTC: _, ...withoutBtc } = h.oracle;
  h.oracle = withoutBtc;
  h.block([], 61_000);
  const firstStaleMs = h.ex.state.oracle!.prices.get('BTC')!.updatedMs + staleAfterMs;
  assert.ok(call.oracleStale && !call.unshockedGraceOver, 'the index is stale');
  assert.equal(call.unshockedSinceMs, firstStaleMs);
  h.block([], MINUTE_MS);
  h.block([], MINUTE_MS);
  h.smiles = null;
  h.block([], 61_000);
  assert.equal(call.unshockedSinceMs, firstStaleMs, 'the smile stale too');
  // The index back for one block: the oracle state alone would now tell the
  // smile's going stale, later.
  h.oracle = { ...withoutBtc, BTC: btc };
  h.block([], 1_000);
  assert.ok(!call.oracleStale && call.optionMark === null, 'the index fresh, the smile not');
  const smileStaleMs = h.ex.state.oracle!.smiles.get(`BTC:${EXPIRY_MS}`)!.updatedMs + staleAfterMs;
  assert.ok(smileStaleMs > firstStaleMs);
  assert.equal(call.unshockedSinceMs, firstStaleMs, 'the grace keeps its start');
  assert.equal(call.graceEarlyMs, firstStaleMs, 'state: earlier than the oracle state tells');
  h.oracle = withoutBtc;
  return firstStaleMs;
}

test('an index back for one block while the smile stays stale does not start the grace again: it ends 10 minutes after the first staleness, on a running node and on nodes restored mid-way', () => {
  for (const interval of [undefined, MINUTE_MS]) {
    const h = harness(interval);
    const call = aliceShortTwoCalls(h);
    const account = h.account(alice)!;
    const firstStaleMs = indexThenSmileStale(h, call);
    const graceEndsMs = firstStaleMs + 10 * MINUTE_MS;
    // Nodes restored after the block the index came back in, and after the next.
    const twins = [decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true })];
    assert.deepEqual(twins[0]!.appHash, h.ex.appHash);
    const steps: number[] = [61_000];
    let t = h.timeMs + 61_000;
    for (; t + MINUTE_MS < graceEndsMs - 2_000; t += MINUTE_MS) steps.push(MINUTE_MS);
    steps.push(graceEndsMs - 2_000 - t, 1_000, 1_000, 1_000);
    let endedMs: number | null = null;
    for (const [i, dt] of steps.entries()) {
      const block = h.nextBlock([], dt);
      const a = h.ex.finalizeBlock(block);
      const at = `interval ${interval}, ${h.timeMs - graceEndsMs} ms from the grace end`;
      for (const twin of twins) {
        const b = twin.finalizeBlock(block);
        assert.equal(
          JSON.stringify({ r: b.results, e: b.events }, replacer),
          JSON.stringify({ r: a.results, e: a.events }, replacer),
          `${at}: results or events`,
        );
        assert.deepEqual(b.appHash, a.appHash, `${at}: appHash`);
        const other = twin.state.accounts[account.index]!;
        assert.equal(
          maintenanceMarginQuote(twin.state, other),
          maintenanceMarginQuote(h.ex.state, account),
          `${at}: maintenance`,
        );
        assert.equal(twin.state.markets[call.index]!.unshockedGraceOver, call.unshockedGraceOver);
      }
      if (i === 0) {
        assert.ok(call.oracleStale, 'the index stale again');
        assert.equal(call.unshockedSinceMs, firstStaleMs);
        twins.push(decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true }));
      }
      if (h.timeMs < graceEndsMs) assert.ok(!call.unshockedGraceOver, `${at}: within the grace`);
      else endedMs ??= call.unshockedGraceOver ? h.timeMs : null;
    }
    assert.equal(
      endedMs,
      graceEndsMs,
      `interval ${interval}: the grace ends at the first staleness plus 10 minutes`,
    );
  }
});

test('a kept grace start is cleared once smile and index are both fresh; in the snapshot it is state, and one not earlier than the oracle state tells is refused', () => {
  const h = harness();
  const call = aliceShortTwoCalls(h);
  const firstStaleMs = indexThenSmileStale(h, call);
  const bytes = encodeSnapshot(h.ex);
  // Another kept start restores another appHash; one no earlier than the
  // oracle state's is not a state markOptions leaves.
  const copy = decodeSnapshot(bytes);
  copy.state.markets[call.index]!.graceEarlyMs = firstStaleMs - 1;
  copy.state.markets[call.index]!.graceStartMs = firstStaleMs - 1;
  assert.notDeepEqual(decodeSnapshot(encodeSnapshot(copy)).appHash, h.ex.appHash);
  const late = decodeSnapshot(bytes);
  late.state.markets[call.index]!.graceEarlyMs = h.timeMs + 10 * MINUTE_MS;
  assert.throws(
    () => decodeSnapshot(encodeSnapshot(late)),
    (e: unknown) => e instanceof DecodeError && e.message.includes('canonical'),
  );
  // Both fresh: the kept start goes; a new staleness starts a new grace.
  h.oracle = { ...h.oracle, BTC: 50_000n * USDC };
  h.smiles = [{ underlying: 'BTC', expiryMs: EXPIRY_MS, svi: FLAT }];
  h.block([], 1_000);
  assert.ok(call.optionMark !== null, 'marked again');
  assert.equal(call.graceStartMs, null);
  assert.equal(call.graceEarlyMs, null);
  h.smiles = null;
  h.block([], 61_000);
  const smileStaleMs =
    h.ex.state.oracle!.smiles.get(`BTC:${EXPIRY_MS}`)!.updatedMs +
    h.ex.state.oracleParams!.staleAfterMs;
  assert.ok(smileStaleMs > firstStaleMs + 10 * MINUTE_MS || !call.unshockedGraceOver);
  assert.equal(call.unshockedSinceMs, smileStaleMs, 'counted from the new staleness');
  assert.ok(!call.unshockedGraceOver, 'within the new grace');
  assert.equal(call.graceEarlyMs, null);
});

test('a format 11 snapshot giving an option risk parameters is refused: governance never sets them, and its leaf holds a kept grace start there', () => {
  const h = harness();
  const call = aliceShortTwoCalls(h);
  indexThenSmileStale(h, call);
  for (const early of [true, false]) {
    const copy = decodeSnapshot(encodeSnapshot(h.ex));
    const m = copy.state.markets[call.index]!;
    if (!early) {
      m.graceEarlyMs = null;
      m.graceStartMs = null;
    }
    const risk = riskOf(m.params);
    m.setRisk({ ...risk, initialMarginPpm: risk.initialMarginPpm + 1 });
    assert.ok(m.riskChanged);
    assert.throws(
      () => decodeSnapshot(encodeSnapshot(copy)),
      (e: unknown) =>
        e instanceof DecodeError && /an option takes no risk parameters/.test(e.message),
      `kept grace start ${early}`,
    );
  }
});

test('a smile stale before the index and back while the index stays stale does not start the grace again either: a restored node agrees block by block', () => {
  const h = harness();
  const call = aliceShortTwoCalls(h);
  const staleAfterMs = h.ex.state.oracleParams!.staleAfterMs;
  const smiles = h.smiles;
  const { BTC: _, ...withoutBtc } = h.oracle;
  h.smiles = null;
  h.block([], 61_000);
  const firstStaleMs = h.ex.state.oracle!.smiles.get(`BTC:${EXPIRY_MS}`)!.updatedMs + staleAfterMs;
  assert.equal(call.unshockedSinceMs, firstStaleMs, 'the smile stale');
  h.oracle = withoutBtc;
  h.block([], MINUTE_MS);
  h.block([], 61_000);
  assert.ok(call.oracleStale, 'the index stale too');
  // The smile back, the index still stale: the oracle state alone now tells the index's moment.
  h.smiles = smiles;
  h.block([], 1_000);
  const indexStaleMs = h.ex.state.oracle!.prices.get('BTC')!.updatedMs + staleAfterMs;
  assert.ok(indexStaleMs > firstStaleMs && call.oracleStale);
  assert.equal(call.unshockedSinceMs, firstStaleMs, 'the grace keeps its start');
  assert.equal(call.graceEarlyMs, firstStaleMs);
  const twin = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
  assert.deepEqual(twin.appHash, h.ex.appHash);
  let endedMs: number | null = null;
  while (endedMs === null) {
    const block = h.nextBlock([], 30_000);
    const a = h.ex.finalizeBlock(block);
    assert.deepEqual(twin.finalizeBlock(block).appHash, a.appHash, `at ${h.timeMs}`);
    if (call.unshockedGraceOver) endedMs = h.timeMs;
  }
  assert.ok(endedMs >= firstStaleMs + 10 * MINUTE_MS);
  assert.ok(endedMs < firstStaleMs + 10 * MINUTE_MS + 30_000, 'over 10 minutes after the first');
});
