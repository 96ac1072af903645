// Each operation's accept and reject paths, with hand-computed numbers.
// BTC-PERPETUAL: 1 tick = $0.10, 1 lot = 0.0001 BTC, k = 10 quote units per
// tick·lot; the oracle puts BTC at $50,000 = 500,000 ticks. Fees (tier 0):
// maker 200 ppm, taker 500 ppm. Margin: initial 5%, maintenance 3%.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, USDC, VALIDATORS, genesis, key, limit } from './helpers.ts';
import { actionClass, executionOrder } from '../../src/exchange/ordering.ts';
import { BOOK_ORDERS_MAX, VALIDATOR_POWER_MAX } from '../../src/lib/limits.ts';
import type { ActionResult, TxResult } from '../../src/exchange/index.ts';
import {
  GenesisError,
  decodeGenesis,
  decodeSnapshot,
  encodeGenesis,
  encodeSnapshot,
  genesisCodec,
  validateGenesis,
} from '../../src/exchange/index.ts';
import { DecodeError, encode } from '../../src/codec/wire.ts';

const BTC = 'BTC-PERPETUAL';
const ONE_BTC = 10_000;
const PRICE = 500_000;

function action(r: TxResult): ActionResult {
  assert.equal(r.ok, true, `transaction refused: ${r.code} ${r.message}`);
  return r.actions[0]!;
}

function rejected(r: TxResult, code: string): void {
  const a = action(r);
  assert.equal(a.ok, false, `expected ${code}, got accepted`);
  if (!a.ok) assert.equal(a.code, code, a.message);
}

/** Refused before anything else: an address no deposit or faucet draw has opened. */
function unknownAddress(r: TxResult): void {
  assert.deepEqual([r.ok, r.ok ? undefined : r.code], [false, 'UnknownAccount']);
}

function accepted(r: TxResult): ActionResult {
  const a = action(r);
  assert.equal(a.ok, true, a.ok ? '' : `${a.code}: ${a.message}`);
  return a;
}

test('genesis: the devnet genesis validates and round-trips; a bad field is named', () => {
  const g = genesis();
  validateGenesis(g);
  assert.deepEqual(decodeGenesis(encodeGenesis(g)), g);
  const bad = genesis();
  bad.markets[1] = { ...bad.markets[1]!, maintenanceMarginPpm: 60_000 };
  assert.throws(
    () => validateGenesis(bad),
    (e: unknown) => e instanceof GenesisError && e.field === 'markets[1].initialMarginPpm',
  );
  // An account's resting lots in one book must stay a safe integer.
  const huge = genesis();
  huge.markets[0] = { ...huge.markets[0]!, maxSizeLots: 1_000_000_000_000, openOrdersMax: 10_000 };
  assert.throws(
    () => validateGenesis(huge),
    (e: unknown) => e instanceof GenesisError && e.field === 'markets[0].maxSizeLots',
  );
  const fees = genesis({ feeTiers: [{ volumeQuoteMin: 0n, makerFeePpm: -600, takerFeePpm: 500 }] });
  assert.throws(
    () => validateGenesis(fees),
    (e: unknown) => e instanceof GenesisError && e.field === 'feeTiers',
  );
});

test('genesis: a stake above the largest voting power consensus accepts is refused, by field', () => {
  const withStake = (stake: bigint) =>
    genesis({
      validators: VALIDATORS.map((v, i) => ({
        publicKey: v.publicKey,
        stake: i === 2 ? stake : 1n,
      })),
    });
  const largest = BigInt(VALIDATOR_POWER_MAX);
  validateGenesis(withStake(largest));
  for (const stake of [largest + 1n, 2n ** 63n - 1n]) {
    assert.throws(
      () => validateGenesis(withStake(stake)),
      (e: unknown) => e instanceof GenesisError && e.field === 'validators[2].stake',
    );
    // A genesis file carrying one is refused when read, too.
    assert.throws(
      () => decodeGenesis(encode(genesisCodec, withStake(stake))),
      (e: unknown) => e instanceof DecodeError && e.field.endsWith('.validators[2].stake'),
    );
  }
});

test('faucet: credits up to the cap, devnet only', () => {
  const h = new Harness();
  const a = key('a');
  accepted(h.one(a, { kind: 'faucet', amountQuote: 600_000n * USDC }));
  const over = action(h.one(a, { kind: 'faucet', amountQuote: 400_001n * USDC }));
  assert.deepEqual(over.ok ? undefined : [over.code, over.message], [
    'FaucetCapExceeded',
    'at most 1,000,000 USDC (1000000000000 quote units) per address in all; ' +
      '600,000 USDC (600000000000) drawn already, so at most 400,000 USDC (400000000000) more',
  ]);
  accepted(h.one(a, { kind: 'faucet', amountQuote: 400_000n * USDC }));
  assert.equal(h.account(a)!.cashQuote, 1_000_000n * USDC);
  rejected(h.one(a, { kind: 'faucet', amountQuote: 0n }), 'InvalidAmount');
  // Without a faucet a draw opens no address (an open one: see the deposits test).
  const main = new Harness(genesis({ devnet: false }));
  unknownAddress(main.one(a, { kind: 'faucet', amountQuote: 1n }));
});

test('faucet: the cap is per address, over all its subaccounts, and survives a snapshot', () => {
  const h = new Harness();
  const a = key('faucet-per-address');
  accepted(h.one(a, { kind: 'faucet', amountQuote: 700_000n * USDC }));
  // Another subaccount of the same address draws from what is left, not a cap of its own.
  const over = action(
    h.one(a, { kind: 'faucet', amountQuote: 300_001n * USDC }, { subaccount: 1 }),
  );
  assert.deepEqual(over.ok ? undefined : [over.code, over.message], [
    'FaucetCapExceeded',
    'at most 1,000,000 USDC (1000000000000 quote units) per address in all; ' +
      '700,000 USDC (700000000000) drawn already, so at most 300,000 USDC (300000000000) more',
  ]);
  accepted(h.one(a, { kind: 'faucet', amountQuote: 200_000n * USDC }, { subaccount: 1 }));
  assert.equal(h.account(a, 1)!.faucetQuote, 200_000n * USDC);
  // A restored node refuses what the original refuses and takes what it takes.
  const restored = new Harness(
    undefined,
    undefined,
    decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true }),
  );
  const nonce = h.timeMs + 100;
  for (const x of [h, restored]) {
    const over = { kind: 'faucet', amountQuote: 100_001n * USDC } as const;
    const refused = action(x.one(a, over, { subaccount: 2, nonce }));
    assert.equal(refused.ok ? undefined : refused.code, 'FaucetCapExceeded');
    const rest = { kind: 'faucet', amountQuote: 100_000n * USDC } as const;
    accepted(x.one(a, rest, { subaccount: 2, nonce: nonce + 1 }));
  }
  assert.deepEqual(restored.ex.digestBytes(), h.ex.digestBytes());
});

test('withdraw and transfer: from free collateral only, by the master key only', () => {
  const h = new Harness();
  const a = key('a');
  h.fund(a, 10_000n * USDC);
  rejected(
    h.one(a, { kind: 'withdraw', amountQuote: 10_001n * USDC, destination: 'x' }),
    'InsufficientFunds',
  );
  accepted(h.one(a, { kind: 'withdraw', amountQuote: 1_000n * USDC, destination: 'x' }));
  // A resting bid of 1 BTC at $50,000 reserves 5% = $2,500 of initial margin.
  accepted(h.one(a, limit(BTC, 'buy', PRICE, ONE_BTC)));
  rejected(
    h.one(a, { kind: 'withdraw', amountQuote: 6_501n * USDC, destination: 'x' }),
    'InsufficientFunds',
  );
  accepted(
    h.one(a, { kind: 'transfer', fromSubaccount: 0, toSubaccount: 3, amountQuote: 6_500n * USDC }),
  );
  assert.equal(h.account(a, 3)!.cashQuote, 6_500n * USDC);
  rejected(
    h.one(a, { kind: 'transfer', fromSubaccount: 0, toSubaccount: 3, amountQuote: 1n }),
    'InsufficientFunds',
  );
  rejected(
    h.one(a, { kind: 'transfer', fromSubaccount: 3, toSubaccount: 3, amountQuote: 1n }),
    'InvalidAmount',
  );
  assert.equal(h.ex.state.withdrawnQuote, 1_000n * USDC);
});

test('nonces: duplicates and stale nonces are refused; a refused transaction still consumes its nonce', () => {
  const h = new Harness();
  const a = key('a');
  h.fund(a, 1_000n * USDC);
  const t1 = h.tx(a, limit(BTC, 'buy', PRICE, 1), { nonce: 5_000 });
  const t2 = h.tx(a, limit(BTC, 'buy', PRICE, 1), { nonce: 5_000 });
  const r = h.block([t1, t2]);
  assert.equal(r.results[0]!.ok, true);
  assert.equal(r.results[1]!.code, 'DuplicateNonce');
  h.block([], 25 * 3_600_000);
  assert.equal(h.one(a, limit(BTC, 'buy', PRICE, 1), { nonce: 1 }).code, 'StaleNonce');
  assert.equal(
    h.one(a, limit(BTC, 'buy', PRICE, 1), { nonce: h.timeMs + 2 * 3_600_000 }).code,
    'FutureNonce',
  );
  const n = h.timeMs + 10;
  assert.equal(
    h.one(a, limit(BTC, 'buy', PRICE, 1), { nonce: n, expiresAtMs: h.timeMs }).code,
    'Expired',
  );
  assert.equal(h.one(a, limit(BTC, 'buy', PRICE, 1), { nonce: n }).code, 'DuplicateNonce');
  assert.equal(h.ex.state.orders.size, 1);
});

test('agents trade until revoked or expired, and never withdraw', () => {
  const h = new Harness();
  const a = key('a');
  const bot = key('bot');
  h.fund(a, 10_000n * USDC);
  assert.equal(h.one(a, limit(BTC, 'buy', PRICE, 1), { signer: bot }).code, 'NotPermitted');
  accepted(
    h.one(a, {
      kind: 'registerAgent',
      agentPublicKey: bot.publicKey,
      expiresAtMs: h.timeMs + 10_000,
    }),
  );
  assert.equal(accepted(h.one(a, limit(BTC, 'buy', PRICE, 1), { signer: bot })).ok, true);
  const w = h.one(a, { kind: 'withdraw', amountQuote: 1n, destination: 'x' }, { signer: bot });
  assert.equal(w.code, 'NotPermitted');
  h.block([], 10_000);
  assert.equal(h.one(a, limit(BTC, 'buy', PRICE, 1), { signer: bot }).code, 'NotPermitted');
  accepted(
    h.one(a, {
      kind: 'registerAgent',
      agentPublicKey: bot.publicKey,
      expiresAtMs: h.timeMs + 10_000,
    }),
  );
  accepted(h.one(a, { kind: 'revokeAgent', agentPublicKey: bot.publicKey }));
  assert.equal(h.one(a, limit(BTC, 'buy', PRICE, 1), { signer: bot }).code, 'NotPermitted');
  rejected(h.one(a, { kind: 'revokeAgent', agentPublicKey: bot.publicKey }), 'UnknownAgent');
});

test('an unknown market is refused UnknownInstrument with the same words by every action that names one', () => {
  const h = new Harness();
  const a = key('unknown-market');
  h.fund(a, 10_000n * USDC);
  const DOGE = 'DOGE-PERPETUAL';
  const said = [
    h.one(a, limit(DOGE, 'buy', PRICE, 1)),
    h.one(a, { kind: 'amend', instrument: DOGE, orderId: 1, priceTicks: PRICE }),
    h.one(a, { kind: 'cancel', instrument: DOGE, orderId: 1 }),
    h.one(a, { kind: 'cancelAll', instrument: DOGE }),
    h.one(VALIDATORS[0]!, {
      kind: 'govPropose',
      proposalId: 1,
      proposal: { kind: 'haltMarket', instrument: DOGE },
    }),
  ].map((r) => {
    const x = action(r);
    return x.ok ? [x.kind, 'ok'] : [x.kind, x.code, x.message];
  });
  const no = ['UnknownInstrument', `no market named ${DOGE} (never listed, or settled)`];
  assert.deepEqual(said, [
    ['placeOrder', ...no],
    ['amend', ...no],
    ['cancel', ...no],
    ['cancelAll', ...no],
    ['govPropose', ...no],
  ]);
});

test('placeOrder: reject paths', () => {
  const h = new Harness();
  const a = key('a');
  const b = key('b');
  unknownAddress(h.one(a, limit(BTC, 'buy', PRICE, 1)));
  h.fund(a, 2_500n * USDC);
  h.fund(b, 100_000n * USDC);
  rejected(h.one(a, limit('DOGE-PERPETUAL', 'buy', PRICE, 1)), 'UnknownInstrument');
  rejected(h.one(a, limit(BTC, 'buy', PRICE, 0)), 'InvalidSize');
  rejected(h.one(a, { ...limit(BTC, 'buy', PRICE, 1), priceTicks: undefined }), 'InvalidPrice');
  // Exactly 5% of $50,000 fits; one more lot does not.
  rejected(h.one(a, limit(BTC, 'buy', PRICE, ONE_BTC + 1)), 'InsufficientMargin');
  accepted(h.one(a, limit(BTC, 'buy', PRICE, ONE_BTC, { clientOrderId: 'x1' })));
  rejected(
    h.one(a, limit(BTC, 'buy', PRICE - 10, 1, { clientOrderId: 'x1' })),
    'DuplicateClientOrderId',
  );
  // A bid above the mark costs its immediate loss too: 10 ticks × 1 lot × k = 100 quote units.
  rejected(
    h.one(a, limit(BTC, 'sell', PRICE - 10, 1, { reduceOnly: true })),
    'ReduceOnlyWouldIncrease',
  );
  accepted(h.one(b, limit(BTC, 'sell', PRICE + 100, 5, { timeInForce: 'postOnly' })));
  rejected(
    h.one(b, limit(BTC, 'sell', PRICE, 5, { timeInForce: 'postOnly' })),
    'PostOnlyWouldTake',
  );
  rejected(
    h.one(a, { ...limit(BTC, 'buy', PRICE, 1), type: 'market', timeInForce: 'GTC' }),
    'InvalidOrder',
  );
  const small = new Harness(
    genesis({
      markets: genesis().markets.map((m) => ({ ...m, openOrdersMax: 2, minSizeLots: 3 })),
    }),
  );
  small.fund(a, 10_000n * USDC);
  rejected(small.one(a, limit(BTC, 'buy', PRICE, 2)), 'BelowMinSize');
  accepted(small.one(a, limit(BTC, 'buy', PRICE - 1, 3)));
  accepted(small.one(a, limit(BTC, 'buy', PRICE - 2, 3)));
  rejected(small.one(a, limit(BTC, 'buy', PRICE - 3, 3)), 'TooManyOpenOrders');
  const fresh = new Harness();
  fresh.oracle = {};
  fresh.fund(a, 10_000n * USDC);
  rejected(fresh.one(a, limit(BTC, 'buy', PRICE, 1)), 'NoOraclePrice');
});

test('a market holding BOOK_ORDERS_MAX resting orders refuses another GTC order (BookFull); IOC goes on', () => {
  const h = new Harness();
  const a = key('a');
  const b = key('b');
  h.fund(a, 10_000n * USDC);
  h.fund(b, 10_000n * USDC);
  accepted(h.one(b, limit(BTC, 'sell', PRICE, 5)));
  const market = h.ex.state.marketByName.get(BTC)!;
  assert.equal(market.restingOrderCount(), 1);
  // Four million real orders are too many for a unit test: the count is stubbed.
  market.restingOrderCount = () => BOOK_ORDERS_MAX;
  rejected(h.one(a, limit(BTC, 'buy', PRICE - 10, 1)), 'BookFull');
  // An order that never rests still trades.
  accepted(h.one(a, limit(BTC, 'buy', PRICE, 1, { timeInForce: 'IOC' })));
  assert.equal(h.ex.state.marketByName.get(BTC)!.book.orderCount, 1);
});

test('a fill: trade at the maker price, fees to the pool, exact cash', () => {
  const h = new Harness();
  const maker = key('maker');
  const taker = key('taker');
  h.fund(maker, 100_000n * USDC);
  h.fund(taker, 100_000n * USDC);
  accepted(h.one(maker, limit(BTC, 'sell', PRICE, ONE_BTC)));
  const r = accepted(h.one(taker, limit(BTC, 'buy', PRICE + 500, 4_000)));
  assert.ok(r.ok && r.order !== undefined);
  assert.equal(r.order.status, 'filled');
  assert.deepEqual(
    r.order.fills.map((f) => [f.priceTicks, f.sizeLots, f.takerFeeQuote, f.makerFeeQuote]),
    // 0.4 BTC at $50,000 = $20,000: taker 5 bps = $10, maker 2 bps = $4.
    [[PRICE, 4_000, 10n * USDC, 4n * USDC]],
  );
  assert.equal(h.account(taker)!.cashQuote, (100_000n - 20_000n - 10n) * USDC);
  assert.equal(h.account(maker)!.cashQuote, (100_000n + 20_000n - 4n) * USDC);
  assert.equal(h.account(taker)!.positions[0]!.sizeLots, 4_000);
  assert.equal(h.account(maker)!.positions[0]!.sizeLots, -4_000);
  assert.equal(h.ex.state.feePoolQuote, 14n * USDC);
  // Closing half at $51,000 realizes 0.2 × $1,000 = $200 on the taker's long.
  accepted(h.one(maker, limit(BTC, 'buy', 510_000, 2_000)));
  accepted(
    h.one(taker, {
      ...limit(BTC, 'sell', 1, 2_000),
      type: 'market',
      timeInForce: 'IOC',
      priceTicks: undefined,
    }),
  );
  assert.equal(h.account(taker)!.positions[0]!.realizedPnlQuote, 200n * USDC);
});

test('market orders stop at the slippage bound; reduce-only clamps to the position', () => {
  const h = new Harness();
  const mm = key('mm');
  const t = key('t');
  h.fund(mm, 1_000_000n * USDC);
  h.fund(t, 100_000n * USDC);
  // Asks at +1% and +6%: a market buy reaches +5% at most.
  accepted(h.one(mm, limit(BTC, 'sell', 505_000, 100)));
  accepted(h.one(mm, limit(BTC, 'sell', 530_000, 100)));
  const m = accepted(
    h.one(t, {
      ...limit(BTC, 'buy', 0, 300),
      type: 'market',
      timeInForce: 'IOC',
      priceTicks: undefined,
    }),
  );
  assert.ok(m.ok && m.order !== undefined);
  assert.equal(m.order.filledLots, 100);
  assert.equal(m.order.cancelledLots, 200);
  accepted(h.one(mm, limit(BTC, 'buy', 495_000, 1_000)));
  const r = accepted(h.one(t, limit(BTC, 'sell', 495_000, 1_000, { reduceOnly: true })));
  assert.ok(r.ok && r.order !== undefined);
  assert.equal(r.order.filledLots, 100);
  assert.equal(h.account(t)!.positions[0]!.sizeLots, 0);
});

test('cancel, cancel by client id, cancelAll and amend', () => {
  const h = new Harness();
  const a = key('a');
  const b = key('b');
  h.fund(a, 100_000n * USDC);
  h.fund(b, 100_000n * USDC);
  const o1 = accepted(h.one(a, limit(BTC, 'buy', PRICE - 100, 10, { clientOrderId: 'c1' })));
  assert.ok(o1.ok && o1.order !== undefined);
  rejected(
    h.one(b, { kind: 'cancel', instrument: BTC, orderId: o1.order.orderId }),
    'UnknownOrder',
  );
  accepted(h.one(a, { kind: 'cancel', instrument: BTC, clientOrderId: 'c1' }));
  rejected(h.one(a, { kind: 'cancel', instrument: BTC, clientOrderId: 'c1' }), 'UnknownOrder');
  accepted(h.one(a, limit(BTC, 'buy', PRICE - 100, 10)));
  accepted(h.one(a, limit('ETH-PERPETUAL', 'buy', 299_000, 10)));
  const all = accepted(h.one(a, { kind: 'cancelAll' }));
  assert.ok(all.ok);
  assert.equal(all.count, 2);
  assert.equal(h.ex.state.orders.size, 0);
  const o2 = accepted(h.one(a, limit(BTC, 'buy', PRICE - 100, 10)));
  assert.ok(o2.ok && o2.order !== undefined);
  accepted(h.one(b, limit(BTC, 'sell', PRICE, 4)));
  // Amending across the spread trades 4 lots at the ask and rests the rest.
  const am = accepted(
    h.one(a, { kind: 'amend', instrument: BTC, orderId: o2.order.orderId, priceTicks: PRICE }),
  );
  assert.ok(am.ok && am.order !== undefined);
  assert.equal(am.order.filledLots, 4);
  assert.equal(am.order.restedLots, 6);
  rejected(
    h.one(a, { kind: 'amend', instrument: BTC, orderId: 999_999, sizeLots: 1 }),
    'UnknownOrder',
  );
  rejected(
    h.one(a, { kind: 'amend', instrument: BTC, orderId: o2.order.orderId, sizeLots: 10_000_000 }),
    'InsufficientMargin',
  );
});

test('in-block ordering: cancels, then post-only, then the rest, whatever the proposer did', () => {
  const h = new Harness();
  const mm = key('mm');
  const t = key('t');
  h.fund(mm, 1_000_000n * USDC);
  h.fund(t, 100_000n * USDC);
  const old = accepted(h.one(mm, limit(BTC, 'sell', PRICE + 10, 5)));
  assert.ok(old.ok && old.order !== undefined);
  const r = h.block([
    h.tx(t, limit(BTC, 'buy', PRICE + 50, 5, { timeInForce: 'IOC' })),
    h.tx(mm, limit(BTC, 'sell', PRICE + 20, 5, { timeInForce: 'postOnly' })),
    h.tx(mm, { kind: 'cancel', instrument: BTC, orderId: old.order.orderId }),
  ]);
  const taker = r.results[0]!.actions[0]!;
  assert.ok(taker.ok && taker.order !== undefined);
  // The cancel ran first, so the taker met the new post-only ask at +20, not the old one at +10.
  assert.deepEqual(
    taker.order.fills.map((f) => f.priceTicks),
    [PRICE + 20],
  );
  assert.equal(r.results[2]!.actions[0]!.ok, true);
});

test('a batch: one result per action; it runs in the class of its latest action', () => {
  const h = new Harness();
  const a = key('a');
  h.fund(a, 100_000n * USDC);
  const r = h.one(a, {
    kind: 'batch',
    actions: [limit(BTC, 'buy', PRICE - 10, 1), limit('NOPE', 'buy', 1, 1), { kind: 'cancelAll' }],
  });
  assert.deepEqual(
    r.actions.map((x) => x.ok),
    [true, false, true],
  );
});

test('deposits are credited once validators with more than 2/3 of stake attest the same content', () => {
  const h = new Harness(genesis({ devnet: false }));
  const alice = key('alice');
  const depositId = new Uint8Array(32).fill(7);
  const attest = (amountQuote: bigint) => ({
    kind: 'attestDeposit' as const,
    depositId,
    account: alice.address,
    subaccount: 0,
    amountQuote,
  });
  unknownAddress(h.one(alice, attest(5n * USDC)));
  accepted(h.one(VALIDATORS[0]!, attest(5n * USDC)));
  rejected(h.one(VALIDATORS[0]!, attest(5n * USDC)), 'DuplicateAttestation');
  accepted(h.one(VALIDATORS[1]!, attest(6n * USDC)));
  accepted(h.one(VALIDATORS[2]!, attest(5n * USDC)));
  assert.equal(h.account(alice), undefined);
  const r = h.block([h.tx(VALIDATORS[3]!, attest(5n * USDC))]);
  assert.ok(r.events.some((e) => e.type === 'depositCredited'));
  assert.equal(h.account(alice)!.cashQuote, 5n * USDC);
  rejected(h.one(VALIDATORS[1]!, attest(5n * USDC)), 'AlreadyCredited');
  // The deposit opened the address; this chain has no faucet.
  rejected(h.one(alice, { kind: 'faucet', amountQuote: 1n }), 'NotPermitted');
});

test('governance: 2/3 of stake halts a market; cancels still work there', () => {
  const h = new Harness();
  const a = key('a');
  h.fund(a, 100_000n * USDC);
  const o = accepted(h.one(a, limit(BTC, 'buy', PRICE - 10, 1)));
  assert.ok(o.ok && o.order !== undefined);
  accepted(
    h.one(VALIDATORS[0]!, {
      kind: 'govPropose',
      proposalId: 1,
      proposal: { kind: 'haltMarket', instrument: BTC },
    }),
  );
  accepted(h.one(VALIDATORS[1]!, { kind: 'govVote', proposalId: 1, approve: true }));
  accepted(h.one(a, limit(BTC, 'buy', PRICE - 10, 1)));
  accepted(h.one(VALIDATORS[2]!, { kind: 'govVote', proposalId: 1, approve: true }));
  // A placement and an amend are refused with the same words, which say what still goes.
  const halted = [
    'MarketHalted',
    `${BTC} is halted by the validators: it takes only cancels until they resume it`,
  ];
  const place = action(h.one(a, limit(BTC, 'buy', PRICE - 10, 1)));
  assert.deepEqual(place.ok ? [] : [place.code, place.message], halted);
  const amended = action(
    h.one(a, { kind: 'amend', instrument: BTC, orderId: o.order.orderId, priceTicks: PRICE - 11 }),
  );
  assert.deepEqual(amended.ok ? [] : [amended.code, amended.message], halted);
  accepted(h.one(a, { kind: 'cancel', instrument: BTC, orderId: o.order.orderId }));
  rejected(h.one(a, { kind: 'govVote', proposalId: 1, approve: true }), 'NotPermitted');
});

test('good-til orders expire at the start of the first block at or after their time', () => {
  const h = new Harness();
  const a = key('a');
  h.fund(a, 100_000n * USDC);
  accepted(h.one(a, limit(BTC, 'buy', PRICE - 10, 1, { goodTilMs: h.timeMs + 3_500 })));
  assert.equal(h.block([]).events.length, 0);
  assert.equal(h.block([]).events.length, 0);
  const r = h.block([]);
  assert.deepEqual(
    r.events.map((e) => e.type),
    ['orderExpired'],
  );
  assert.equal(h.ex.state.orders.size, 0);
});

test('ordering classes: cancels 0, post-only 1, the rest 2; a batch takes its latest class', () => {
  const post = limit(BTC, 'buy', PRICE, 1, { timeInForce: 'postOnly' });
  const ioc = limit(BTC, 'buy', PRICE, 1, { timeInForce: 'IOC' });
  const cancelAll = { kind: 'cancelAll' } as const;
  assert.equal(actionClass(cancelAll), 0);
  assert.equal(actionClass(post), 1);
  assert.equal(actionClass(ioc), 2);
  assert.equal(actionClass({ kind: 'faucet', amountQuote: 1n }), 2);
  assert.equal(actionClass({ kind: 'batch', actions: [cancelAll, post] as never }), 1);
  assert.equal(actionClass({ kind: 'batch', actions: [cancelAll, ioc] as never }), 2);
  assert.deepEqual(executionOrder([ioc, post, cancelAll, ioc, cancelAll]), [2, 4, 1, 0, 3]);
});
