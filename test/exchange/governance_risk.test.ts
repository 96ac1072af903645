// Governance changes a market's risk parameters (docs/exchange.md,
// "Governance and validators"): a setMarketRisk proposal is validated when
// proposed (InvalidRiskParams, UnknownInstrument, NotPermitted), carried by
// more than 2/3 of the stake it takes effect at the approval, within the
// block; holders a raise of maintenance leaves below it are liquidated in
// that block's scan (on a halted market once it resumes); the values are
// state (snapshot and digest), and a snapshot that carries bad ones is refused.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ExchangeEvent } from '../../src/exchange/index.ts';
import { decodeSnapshot, encodeSnapshot } from '../../src/exchange/snapshot.ts';
import { riskOf, withRisk } from '../../src/exchange/genesis.ts';
import { checkInvariants } from '../../src/exchange/invariants.ts';
import { AMOUNT_QUOTE_MAX } from '../../src/lib/limits.ts';
import type { Action, RiskValues } from '../../src/exchange/tx/types.ts';
import { toHex } from '../../src/lib/bytes.ts';
import {
  Harness,
  USDC,
  VALIDATORS,
  accepted,
  approve,
  dailyListingGenesis,
  haltByVote,
  key,
  limit,
  refusesAltered,
  rejected,
  replacer,
  runUntilSettled,
} from './helpers.ts';

const BTC = 'BTC-PERPETUAL';
const ETH = 'ETH-PERPETUAL';

/** The devnet's BTC and ETH perpetuals: 5% initial, 3% maintenance, 1% liquidation fee. */
const GENESIS_RISK: RiskValues = {
  initialMarginPpm: 50_000,
  maintenanceMarginPpm: 30_000,
  imfStepQuote: 10_000_000n * USDC,
  imfStepPpm: 10_000,
  liquidationQuoteMaxPerBlock: 5_000_000n * USDC,
};
/** Maintenance doubled, initial to 8%. */
const RAISED: RiskValues = {
  ...GENESIS_RISK,
  initialMarginPpm: 80_000,
  maintenanceMarginPpm: 60_000,
};

function propose(id: number, risk: RiskValues, instrument = BTC): Action {
  return {
    kind: 'govPropose',
    proposalId: id,
    proposal: { kind: 'setMarketRisk', instrument, risk },
  };
}

const a = key('risk-a');
const b = key('risk-b');
const c = key('risk-c');

/**
 * A long one BTC (10,000 lots at $50,000) on $2,700: above 3% maintenance
 * ($1,500), below 6% ($3,000). B is short the other side with plenty, C bids
 * for a liquidation's close.
 */
function longNearMaintenance(): Harness {
  const h = new Harness();
  h.fund(a, 2_700n * USDC);
  h.fund(b, 1_000_000n * USDC);
  h.fund(c, 1_000_000n * USDC);
  accepted(h.one(b, limit(BTC, 'sell', 500_000, 10_000)));
  accepted(h.one(a, limit(BTC, 'buy', 500_000, 10_000, { timeInForce: 'IOC' })));
  accepted(h.one(c, limit(BTC, 'buy', 499_500, 20_000)));
  assert.equal(h.account(a)!.positions[0]!.sizeLots, 10_000);
  return h;
}

function liquidated(events: readonly ExchangeEvent[], account: number): boolean {
  return events.some((e) => e.type === 'liquidation' && e.account === account);
}

test('a setMarketRisk proposal with values genesis would refuse is InvalidRiskParams, and changes nothing', () => {
  const h = new Harness();
  h.block([]);
  const cases: [RiskValues, RegExp][] = [
    // Maintenance above initial.
    [{ ...GENESIS_RISK, maintenanceMarginPpm: 60_000 }, /initialMarginPpm/],
    // Maintenance below the market's liquidation fee (1%): a rule against a parameter it does not set.
    [{ ...GENESIS_RISK, maintenanceMarginPpm: 5_000 }, /liquidation fee/],
    [{ ...GENESIS_RISK, maintenanceMarginPpm: 0 }, /maintenanceMarginPpm/],
    [{ ...GENESIS_RISK, initialMarginPpm: 1_000_001 }, /initialMarginPpm/],
    [{ ...GENESIS_RISK, imfStepQuote: 0n }, /imfStepQuote/],
    [{ ...GENESIS_RISK, imfStepQuote: AMOUNT_QUOTE_MAX + 1n }, /imfStepQuote/],
    [{ ...GENESIS_RISK, imfStepPpm: 1_000_001 }, /imfStepPpm/],
    [{ ...GENESIS_RISK, liquidationQuoteMaxPerBlock: 0n }, /liquidationQuoteMaxPerBlock/],
    [{ ...GENESIS_RISK, priceBandPpm: 1_000_000 }, /priceBandPpm/],
    [{ ...GENESIS_RISK, openInterestCapLots: 0 }, /openInterestCapLots/],
  ];
  const before = toHex(h.ex.appHash);
  for (const [i, [risk, field]] of cases.entries()) {
    const message = rejected(h.one(VALIDATORS[0]!, propose(i + 1, risk)), 'InvalidRiskParams');
    assert.match(message, field);
  }
  assert.equal(h.ex.state.proposals.size, 0, 'no proposal recorded');
  assert.deepEqual(riskOf(h.ex.state.markets[0]!.params), GENESIS_RISK);
  // Only nonces moved: the same state as a chain of empty blocks would have, but for them.
  assert.notEqual(toHex(h.ex.appHash), before);
  // Maintenance equal to initial, and equal to the liquidation fee, are what genesis allows.
  const edge = { ...GENESIS_RISK, initialMarginPpm: 10_000, maintenanceMarginPpm: 10_000 };
  accepted(h.one(VALIDATORS[0]!, propose(100, edge)));
});

test('a setMarketRisk proposal names a live market that is not an option, and comes from an active validator', () => {
  const h = new Harness(dailyListingGenesis(Date.UTC(2024, 0, 10, 7, 30)));
  h.block([]);
  rejected(h.one(VALIDATORS[0]!, propose(1, RAISED, 'DOGE-PERPETUAL')), 'UnknownInstrument');
  const option = h.ex.state.markets.find((m) => !m.retired && m.instrument.kind === 'option');
  assert.ok(option !== undefined, 'the listing lists options');
  const why = rejected(
    h.one(VALIDATORS[0]!, propose(2, RAISED, option.params.instrument)),
    'InvalidRiskParams',
  );
  assert.match(why, /scenario/);
  const outsider = key('not-a-validator');
  h.fund(outsider, 1n * USDC);
  rejected(h.one(outsider, propose(3, RAISED)), 'NotPermitted');
});

test('a pending setMarketRisk about a dated future that settles is closed without effect; the settled name is UnknownInstrument', () => {
  const h = new Harness(dailyListingGenesis(Date.UTC(2024, 0, 10, 7, 30)));
  h.block([]);
  const future = h.ex.state.markets.find((m) => !m.retired && m.instrument.kind === 'future')!;
  const name = future.params.instrument;
  const futureRisk = { ...riskOf(future.params), maintenanceMarginPpm: 45_000 };
  futureRisk.initialMarginPpm = Math.max(futureRisk.initialMarginPpm, 60_000);
  // Executed on the listed future: its leaf carries the values while it lives.
  accepted(h.one(VALIDATORS[0]!, propose(1, futureRisk, name)));
  const r = h.block([h.tx(VALIDATORS[1]!, approve(1)), h.tx(VALIDATORS[2]!, approve(1))]);
  assert.ok(r.events.some((e) => e.type === 'marketRiskChanged' && e.market === name));
  assert.equal(future.params.maintenanceMarginPpm, 45_000);
  assert.ok(future.riskChanged);
  // Another one stays pending (one validator of four) until the settlement closes it.
  accepted(
    h.one(VALIDATORS[3]!, propose(2, { ...futureRisk, maintenanceMarginPpm: 40_000 }, name)),
  );
  const restoredBefore = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
  assert.deepEqual(restoredBefore.appHash, h.ex.appHash);
  assert.equal(restoredBefore.state.marketByName.get(name)!.params.maintenanceMarginPpm, 45_000);
  const listedRisk = riskOf(future.baseParams);
  runUntilSettled(h, name);
  const p = h.ex.state.proposals.get(2)!;
  assert.deepEqual([p.executed, p.closed], [true, true], 'closed with no effect');
  // Its slot holds the next listing, with the listing template's values and no flag.
  const relisted = h.ex.state.markets[future.index]!;
  assert.ok(!relisted.retired && relisted.params.instrument !== name, 'the slot is listed again');
  assert.equal(relisted.riskChanged, false);
  assert.deepEqual(riskOf(relisted.params), listedRisk);
  rejected(h.one(VALIDATORS[0]!, propose(3, futureRisk, name)), 'UnknownInstrument');
  // Executed and closed proposals keep their values through a snapshot.
  const restored = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
  assert.deepEqual(restored.appHash, h.ex.appHash);
  assert.equal(restored.state.proposals.get(2)!.risk!.maintenanceMarginPpm, 40_000);
  assert.deepEqual(riskOf(restored.state.markets[future.index]!.params), listedRisk);
});

test('carried past 2/3 of the stake, the values take effect at the approval: later orders of the block are checked by them, earlier ones were not', () => {
  const h = new Harness();
  const d = key('risk-d');
  h.fund(d, 100n * USDC);
  // 2 of 4 equal validators: not past 2/3.
  accepted(h.one(VALIDATORS[0]!, propose(1, RAISED)));
  accepted(h.one(VALIDATORS[1]!, approve(1)));
  assert.equal(h.ex.state.markets[0]!.params.maintenanceMarginPpm, 30_000);
  assert.equal(h.ex.state.proposals.get(1)!.executed, false);
  // A bid of $1,715 needs $85.75 at 5%, $137.20 at 8%: the first fits $100, the second not.
  const bid = (): Action => limit(BTC, 'buy', 490_000, 350);
  const r = h.block([h.tx(d, bid()), h.tx(VALIDATORS[2]!, approve(1)), h.tx(d, bid())]);
  accepted(r.results[0]!);
  accepted(r.results[1]!);
  rejected(r.results[2]!, 'InsufficientMargin');
  assert.deepEqual(
    r.events.filter((e) => e.type === 'marketRiskChanged'),
    [{ type: 'marketRiskChanged', market: BTC }],
  );
  const m = h.ex.state.markets[0]!;
  assert.deepEqual(riskOf(m.params), RAISED);
  assert.equal(m.maintenancePpmBig, 60_000n);
  assert.equal(h.ex.state.proposals.get(1)!.executed, true);
  // ETH is as it was; the resting bid stays (the invariants held after the block).
  assert.deepEqual(riskOf(h.ex.state.markets[1]!.params), GENESIS_RISK);
  assert.equal(h.account(d)!.principal !== undefined, true);
  assert.equal(m.book.ownerRestingLots(h.account(d)!.index, 'buy'), 350);
  // A later vote changes nothing more.
  accepted(h.one(VALIDATORS[3]!, approve(1)));
  assert.deepEqual(riskOf(m.params), RAISED);
});

test('a raise of maintenance liquidates, in the block of the approval, a holder it leaves below maintenance', () => {
  const h = longNearMaintenance();
  const control = longNearMaintenance();
  const index = h.account(a)!.index;
  accepted(h.one(VALIDATORS[0]!, propose(1, RAISED)));
  accepted(h.one(VALIDATORS[1]!, approve(1)));
  // No mark moves: only the new maintenance puts it below.
  const r = h.block([h.tx(VALIDATORS[2]!, approve(1))]);
  assert.ok(liquidated(r.events, index), JSON.stringify(r.events, replacer));
  assert.ok(h.account(a)!.positions[0]!.sizeLots < 10_000);
  // Without the change, the same blocks liquidate nobody.
  for (const from of [VALIDATORS[0]!, VALIDATORS[1]!])
    control.one(from, { kind: 'faucet', amountQuote: 1n });
  const same = control.block([]);
  assert.ok(!liquidated(same.events, index));
  assert.equal(control.account(a)!.positions[0]!.sizeLots, 10_000);
});

test('on a halted market the new values take effect at once, and the liquidation they call for waits for the resume', () => {
  const h = longNearMaintenance();
  const index = h.account(a)!.index;
  haltByVote(h, BTC, 1);
  assert.ok(h.ex.state.markets[0]!.halted);
  const r = h.block([
    h.tx(VALIDATORS[0]!, propose(2, RAISED)),
    h.tx(VALIDATORS[1]!, approve(2)),
    h.tx(VALIDATORS[2]!, approve(2)),
  ]);
  assert.ok(r.events.some((e) => e.type === 'marketRiskChanged'));
  assert.equal(h.ex.state.markets[0]!.params.maintenanceMarginPpm, 60_000);
  assert.ok(!liquidated(r.events, index), 'not while halted');
  const resumed = h.block([
    h.tx(VALIDATORS[0]!, {
      kind: 'govPropose',
      proposalId: 3,
      proposal: { kind: 'resumeMarket', instrument: BTC },
    }),
    h.tx(VALIDATORS[1]!, approve(3)),
    h.tx(VALIDATORS[2]!, approve(3)),
  ]);
  assert.ok(resumed.events.some((e) => e.type === 'marketResumed'));
  assert.ok(liquidated(resumed.events, index), JSON.stringify(resumed.events, replacer));
});

test('a price band and an open-interest cap can be set where genesis has none, and removed again', () => {
  const h = new Harness();
  h.fund(a, 100_000n * USDC);
  h.fund(b, 100_000n * USDC);
  const apply = (id: number, risk: RiskValues): void => {
    const r = h.block([
      h.tx(VALIDATORS[0]!, propose(id, risk, ETH)),
      h.tx(VALIDATORS[1]!, approve(id)),
      h.tx(VALIDATORS[2]!, approve(id)),
    ]);
    assert.ok(r.events.some((e) => e.type === 'marketRiskChanged' && e.market === ETH));
  };
  apply(1, { ...GENESIS_RISK, priceBandPpm: 10_000, openInterestCapLots: 5 });
  // 5% from the mark, beyond a 1% band.
  rejected(h.one(a, limit(ETH, 'buy', 285_000, 1)), 'PriceOutsideBand');
  accepted(h.one(a, limit(ETH, 'sell', 300_000, 5)));
  rejected(
    h.one(b, limit(ETH, 'buy', 300_000, 6, { timeInForce: 'IOC' })),
    'OpenInterestCapExceeded',
  );
  // Back to the genesis values: the leaf and snapshot carry no values for ETH again.
  apply(2, GENESIS_RISK);
  assert.equal(h.ex.state.markets[1]!.riskChanged, false);
  accepted(h.one(a, limit(ETH, 'buy', 285_000, 1)));
  accepted(h.one(b, limit(ETH, 'buy', 300_000, 6, { timeInForce: 'IOC' })));
});

test('a cap lowered below the open interest and a band narrowed inside resting orders keep positions and orders; opening orders are refused, closing ones trade', () => {
  const h = new Harness();
  h.fund(a, 100_000n * USDC);
  h.fund(b, 100_000n * USDC);
  h.fund(c, 100_000n * USDC);
  // 10 lots of open interest at the mark ($3,000: 300,000 ticks); orders resting 2% away.
  accepted(h.one(a, limit(ETH, 'sell', 300_000, 10)));
  accepted(h.one(b, limit(ETH, 'buy', 300_000, 10, { timeInForce: 'IOC' })));
  const ask = accepted(h.one(a, limit(ETH, 'sell', 306_000, 3))).order!.orderId;
  const bid = accepted(h.one(b, limit(ETH, 'buy', 294_000, 3))).order!.orderId;
  const m = h.ex.state.markets[1]!;
  assert.equal(m.longLots, 10);
  // A cap of 5 lots and a 1% band, in one proposal.
  const r = h.block([
    h.tx(
      VALIDATORS[0]!,
      propose(1, { ...GENESIS_RISK, priceBandPpm: 10_000, openInterestCapLots: 5 }, ETH),
    ),
    h.tx(VALIDATORS[1]!, approve(1)),
    h.tx(VALIDATORS[2]!, approve(1)),
  ]);
  assert.ok(r.events.some((e) => e.type === 'marketRiskChanged' && e.market === ETH));
  // Nothing is closed or cancelled by the change (the harness checks the invariants every block).
  assert.deepEqual([m.longLots, m.shortLots], [10, 10]);
  assert.equal(h.account(a)!.positions[1]!.sizeLots, -10);
  assert.equal(h.account(b)!.positions[1]!.sizeLots, 10);
  const restingIds = (side: 'buy' | 'sell'): number[] =>
    [...m.book.ordersOf(side)].map((o) => o.orderId);
  assert.deepEqual(restingIds('sell'), [ask]);
  assert.deepEqual(restingIds('buy'), [bid]);
  // Above the cap: an order that would open more is refused, on either side.
  rejected(
    h.one(b, limit(ETH, 'buy', 300_000, 1, { timeInForce: 'IOC' })),
    'OpenInterestCapExceeded',
  );
  rejected(h.one(c, limit(ETH, 'sell', 300_000, 1)), 'OpenInterestCapExceeded');
  // Outside the new band: refused at placement, as is an amend to a new price there.
  rejected(
    h.one(c, limit(ETH, 'sell', 306_000, 1, { timeInForce: 'postOnly' })),
    'PriceOutsideBand',
  );
  rejected(
    h.one(a, { kind: 'amend', instrument: ETH, orderId: ask, priceTicks: 305_000 }),
    'PriceOutsideBand',
  );
  // Closing trades go on inside the band and lower the open interest: a buys back 2 from b.
  accepted(h.one(a, limit(ETH, 'buy', 299_000, 2)));
  accepted(h.one(b, limit(ETH, 'sell', 299_000, 2, { timeInForce: 'IOC' })));
  assert.deepEqual([m.longLots, m.shortLots], [8, 8]);
  assert.equal(h.account(b)!.positions[1]!.sizeLots, 8);
  // A post-only order never takes: the cap does not bound it, the band does.
  accepted(h.one(c, limit(ETH, 'sell', 302_000, 1, { timeInForce: 'postOnly' })));
  // The orders outside the band still rest; a snapshot restores all of it to the same appHash.
  assert.ok(restingIds('sell').includes(ask) && restingIds('buy').includes(bid));
  const restored = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
  assert.deepEqual(restored.appHash, h.ex.appHash);
  assert.deepEqual(riskOf(restored.state.markets[1]!.params), {
    ...GENESIS_RISK,
    priceBandPpm: 10_000,
    openInterestCapLots: 5,
  });
});

test('a snapshot taken while a setMarketRisk is pending, and one after it executed, restore to the same appHash and run on identically', () => {
  const h = longNearMaintenance();
  accepted(h.one(VALIDATORS[0]!, propose(1, { ...RAISED, priceBandPpm: 50_000 })));
  const pending = encodeSnapshot(h.ex);
  const mid = decodeSnapshot(pending, { checkInvariants: true });
  assert.deepEqual(mid.appHash, h.ex.appHash);
  assert.deepEqual(mid.state.proposals.get(1)!.risk, { ...RAISED, priceBandPpm: 50_000 });
  const restored = new Harness(undefined, { checkInvariants: true }, mid);
  restored.timeMs = h.timeMs;
  for (const blockTxs of [
    (x: Harness) => [x.tx(VALIDATORS[1]!, approve(1), { nonce: 77 })],
    (x: Harness) => [x.tx(VALIDATORS[2]!, approve(1), { nonce: 78 })],
    (x: Harness) => [x.tx(b, limit(BTC, 'buy', 499_000, 5), { nonce: 79 })],
  ]) {
    const one = h.ex.finalizeBlock(h.nextBlock(blockTxs(h)));
    const two = restored.ex.finalizeBlock(restored.nextBlock(blockTxs(restored)));
    assert.equal(JSON.stringify(two, replacer), JSON.stringify(one, replacer));
  }
  assert.ok(h.ex.state.markets[0]!.riskChanged);
  // After: the market's values are state; restored from scratch, the same digest.
  const after = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
  assert.deepEqual(after.appHash, h.ex.appHash);
  assert.deepEqual(riskOf(after.state.markets[0]!.params), { ...RAISED, priceBandPpm: 50_000 });
  assert.equal(after.state.markets[0]!.maintenancePpmBig, 60_000n);
  assert.deepEqual(encodeSnapshot(after), encodeSnapshot(h.ex));
});

test('the same blocks give the same appHash on two nodes, and a different one than without the change', () => {
  const run = (risk: RiskValues): string => {
    const h = longNearMaintenance();
    h.block([
      h.tx(VALIDATORS[0]!, propose(1, risk), { nonce: 1 }),
      h.tx(VALIDATORS[1]!, approve(1), { nonce: 2 }),
      h.tx(VALIDATORS[2]!, approve(1), { nonce: 3 }),
    ]);
    h.block([]);
    return toHex(h.ex.appHash);
  };
  assert.equal(run(RAISED), run(RAISED));
  assert.notEqual(run(RAISED), run({ ...RAISED, liquidationQuoteMaxPerBlock: 1n * USDC }));
  // The genesis values again: the state of a chain that never changed them, but for the proposal.
  assert.notEqual(run(GENESIS_RISK), run(RAISED));
});

test('a format 11 snapshot with risk values governance could not have set, or a flag for the listed ones, is refused as a DecodeError', () => {
  const h = new Harness();
  h.block([]);
  accepted(h.one(VALIDATORS[0]!, propose(1, RAISED)));
  const bytes = encodeSnapshot(h.ex);
  decodeSnapshot(bytes, { checkInvariants: true });
  const refused = refusesAltered(bytes);
  // A market's values: maintenance above initial; below the liquidation fee.
  refused(
    (x) => x.state.markets[0]!.setRisk({ ...RAISED, maintenanceMarginPpm: 90_000 }),
    /initialMarginPpm/,
  );
  refused(
    (x) =>
      x.state.markets[1]!.setRisk({
        ...RAISED,
        maintenanceMarginPpm: 5_000,
        initialMarginPpm: 5_000,
      }),
    /liquidation fee/,
  );
  // A flag with the values the market was listed with: a second encoding of the same state.
  refused((x) => {
    x.state.markets[0]!.riskChanged = true;
  }, /listed with/);
  // A pending proposal's values.
  refused((x) => {
    (x.state.proposals.get(1)!.risk as RiskValues).maintenanceMarginPpm = 0;
  }, /maintenanceMarginPpm/);
});

test('the invariants hold a market to its risk flag and its derived maintenance', () => {
  const h = new Harness();
  h.block([]);
  const m = h.ex.state.markets[0]!;
  m.setRisk(RAISED);
  checkInvariants(h.ex.state);
  // The flag without the values (the leaf would leave them out), and values without it.
  m.riskChanged = false;
  assert.throws(() => checkInvariants(h.ex.state), /risk flag drifted/);
  m.setRisk(GENESIS_RISK);
  m.params = withRisk(m.params, RAISED);
  assert.throws(() => checkInvariants(h.ex.state), /risk flag drifted/);
  m.riskChanged = true;
  assert.throws(() => checkInvariants(h.ex.state), /derived maintenance drifted/);
});
