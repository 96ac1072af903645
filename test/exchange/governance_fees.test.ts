// Governance changes the fee schedule (docs/exchange.md, "Fee schedule by
// governance"): a setFeeTiers proposal is validated when proposed by the
// rules genesis applies to its own (InvalidFeeTiers; the transaction's
// checks apply them too), carried by more than 2/3 of the stake it takes
// effect at the approval, within the block: every fill after it is charged
// by the new tiers and the fill guard bounds fees by them; the schedule is
// state (digest and snapshot) only where it differs from genesis's, and a
// snapshot that carries a bad one is refused.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DecodeError, Writer } from '../../src/codec/wire.ts';
import { writeGlobals } from '../../src/exchange/encoding.ts';
import { equityGuard } from '../../src/exchange/fill_guard.ts';
import type { FeeTier } from '../../src/exchange/genesis.ts';
import { checkFeeTiers, GenesisError } from '../../src/exchange/genesis.ts';
import { checkInvariants } from '../../src/exchange/invariants.ts';
import type { Fill } from '../../src/exchange/results.ts';
import {
  SNAPSHOT_FORMAT_PREVIOUS,
  decodeSnapshot,
  encodeSnapshot,
} from '../../src/exchange/snapshot.ts';
import {
  TxError,
  decodeSignedTx,
  encodeSignedTx,
  validateTx,
} from '../../src/exchange/tx/index.ts';
import type { Action, FeeTierValues, SignedTx } from '../../src/exchange/tx/types.ts';
import { AMOUNT_QUOTE_MAX, FEE_TIERS_MAX } from '../../src/lib/limits.ts';
import { toHex } from '../../src/lib/bytes.ts';
import {
  Harness,
  USDC,
  VALIDATORS,
  accepted,
  approve,
  key,
  limit,
  refusesAltered,
  rejected,
  replacer,
} from './helpers.ts';

const BTC = 'BTC-PERPETUAL';
const PPM = 1_000_000n;

/** One flat tier: makers earn a 0.02% rebate, takers pay 0.1%. */
const FLAT: FeeTierValues[] = [{ volumeQuoteMin: 0n, makerFeePpm: -200, takerFeePpm: 1_000 }];
/** Two tiers, the second from $1,000 of volume: maker 0.05% / taker 0.2%, then free / 0.01%. */
const TWO: FeeTierValues[] = [
  { volumeQuoteMin: 0n, makerFeePpm: 500, takerFeePpm: 2_000 },
  { volumeQuoteMin: 1_000n * USDC, makerFeePpm: 0, takerFeePpm: 100 },
];

function propose(id: number, tiers: FeeTierValues[]): Action {
  return { kind: 'govPropose', proposalId: id, proposal: { kind: 'setFeeTiers', tiers } };
}

/** Proposed by validator 0 and approved by 1 and 2 (3 of 4 equal stakes): executed. */
function carried(h: Harness, id: number, tiers: FeeTierValues[]): void {
  accepted(h.one(VALIDATORS[0]!, propose(id, tiers)));
  accepted(h.one(VALIDATORS[1]!, approve(id)));
  accepted(h.one(VALIDATORS[2]!, approve(id)));
}

const maker = key('fees-maker');
const taker = key('fees-taker');

function funded(): Harness {
  const h = new Harness();
  h.fund(maker, 1_000_000n * USDC);
  h.fund(taker, 1_000_000n * USDC);
  return h;
}

/** The fees a fill at priceTicks of sizeLots on BTC is charged by a taker and a maker fee. */
function expected(
  h: Harness,
  priceTicks: number,
  sizeLots: number,
  takerPpm: number,
  makerPpm: number,
) {
  const notional = BigInt(priceTicks) * BigInt(sizeLots) * h.ex.state.markets[0]!.k;
  const ceil = (n: bigint): bigint => (n + PPM - 1n) / PPM;
  return {
    takerFeeQuote: ceil(notional * BigInt(takerPpm)),
    makerFeeQuote:
      makerPpm >= 0 ? ceil(notional * BigInt(makerPpm)) : -((notional * BigInt(-makerPpm)) / PPM),
  };
}

/** Maker rests a sell, taker buys it all: the fill. */
function trade(h: Harness, priceTicks: number, sizeLots: number): Fill {
  accepted(h.one(maker, limit(BTC, 'sell', priceTicks, sizeLots)));
  const r = accepted(h.one(taker, limit(BTC, 'buy', priceTicks, sizeLots, { timeInForce: 'IOC' })));
  assert.equal(r.order!.fills.length, 1, JSON.stringify(r, replacer));
  return r.order!.fills[0]!;
}

test('a setFeeTiers proposal breaking any rule genesis applies is InvalidFeeTiers, stores nothing and changes nothing', () => {
  const h = funded();
  const cases: [string, FeeTierValues[], RegExp][] = [
    ['no tier', [], /1\.\.16 tiers/],
    [
      'more than FEE_TIERS_MAX',
      Array.from({ length: FEE_TIERS_MAX + 1 }, (_, i) => ({
        volumeQuoteMin: BigInt(i) * USDC,
        makerFeePpm: 0,
        takerFeePpm: 100,
      })),
      /1\.\.16 tiers/,
    ],
    [
      'the first not from 0',
      [{ ...FLAT[0]!, volumeQuoteMin: 1n }],
      /tiers\[0\]\.volumeQuoteMin: must be 0/,
    ],
    [
      'volumes not ascending',
      [TWO[0]!, { ...TWO[1]!, volumeQuoteMin: 0n }],
      /tiers\[1\]\.volumeQuoteMin: must ascend/,
    ],
    [
      'a negative volume',
      [TWO[0]!, { ...TWO[1]!, volumeQuoteMin: -1n }],
      /tiers\[1\]\.volumeQuoteMin/,
    ],
    [
      'a volume past an amount',
      [TWO[0]!, { ...TWO[1]!, volumeQuoteMin: AMOUNT_QUOTE_MAX + 1n }],
      /tiers\[1\]\.volumeQuoteMin/,
    ],
    [
      'a maker fee below -10^6',
      [{ ...FLAT[0]!, makerFeePpm: -1_000_001, takerFeePpm: 1_000_000 }],
      /tiers\[0\]\.makerFeePpm/,
    ],
    [
      'a maker fee above 10^6',
      [{ ...FLAT[0]!, makerFeePpm: 1_000_001 }],
      /tiers\[0\]\.makerFeePpm/,
    ],
    [
      'a negative taker fee',
      [{ ...FLAT[0]!, makerFeePpm: 0, takerFeePpm: -1 }],
      /tiers\[0\]\.takerFeePpm/,
    ],
    [
      'a taker fee above 10^6',
      [{ ...FLAT[0]!, takerFeePpm: 1_000_001 }],
      /tiers\[0\]\.takerFeePpm/,
    ],
    ['a fee not an integer', [{ ...FLAT[0]!, takerFeePpm: 1.5 }], /tiers\[0\]\.takerFeePpm/],
    [
      // The second tier's rebate is paid out of the first tier's taker fee.
      'a rebate above the smallest taker fee',
      [
        { volumeQuoteMin: 0n, makerFeePpm: 0, takerFeePpm: 300 },
        { volumeQuoteMin: 1n, makerFeePpm: -301, takerFeePpm: 1_000 },
      ],
      /the largest maker rebate exceeds the smallest taker fee/,
    ],
  ];
  const before = toHex(h.ex.appHash);
  for (const [i, [name, tiers, why]] of cases.entries()) {
    const message = rejected(h.one(VALIDATORS[0]!, propose(i + 1, tiers)), 'InvalidFeeTiers');
    assert.match(message, why, name);
    // The same rule refuses it in the transaction's checks (BadField), before any node runs it.
    const tx: SignedTx = h.tx(VALIDATORS[0]!, propose(i + 1, tiers));
    assert.throws(
      () => validateTx(tx, tx.chainId),
      (e: unknown) => e instanceof TxError && e.code === 'BadField' && why.test(e.message),
      name,
    );
  }
  assert.equal(h.ex.state.proposals.size, 0);
  assert.ok(!h.ex.state.feeTiersChanged);
  // Only the blocks moved (height, time): the refusals left no trace.
  assert.notEqual(toHex(h.ex.appHash), before);
  // The edge of the last rule is accepted: the rebate equal to the smallest taker fee.
  accepted(
    h.one(
      VALIDATORS[0]!,
      propose(99, [
        { volumeQuoteMin: 0n, makerFeePpm: 0, takerFeePpm: 300 },
        { volumeQuoteMin: 1n, makerFeePpm: -300, takerFeePpm: 1_000 },
      ]),
    ),
  );
});

test('genesis and governance apply the same check: genesis refuses what a proposal is refused for', () => {
  assert.throws(
    () => checkFeeTiers([{ volumeQuoteMin: 5n, makerFeePpm: 0, takerFeePpm: 1 }], 'feeTiers'),
    (e: unknown) => e instanceof GenesisError && e.field === 'feeTiers[0].volumeQuoteMin',
  );
  const h = new Harness();
  assert.throws(
    () =>
      new Harness({
        ...h.ex.state.genesis,
        feeTiers: [{ volumeQuoteMin: 0n, makerFeePpm: -2, takerFeePpm: 1 }],
      }),
    /the largest maker rebate exceeds the smallest taker fee/,
  );
});

test('a setFeeTiers proposal comes from an active validator; a trader is NotPermitted', () => {
  const h = funded();
  rejected(h.one(taker, propose(1, FLAT)), 'NotPermitted');
  assert.equal(h.ex.state.proposals.size, 0);
});

test('carried past 2/3 of the stake, the schedule is in force from the approval: a fill earlier in the block is charged by the old tiers, a later one by the new', () => {
  const h = funded();
  accepted(h.one(maker, limit(BTC, 'sell', 500_000, 20)));
  const buy = () => limit(BTC, 'buy', 500_000, 10, { timeInForce: 'IOC' as const });
  const r = h.block([
    h.tx(VALIDATORS[0]!, propose(1, FLAT)),
    h.tx(VALIDATORS[1]!, approve(1)),
    h.tx(taker, buy()),
    h.tx(VALIDATORS[2]!, approve(1)),
    h.tx(taker, buy()),
  ]);
  for (const x of r.results) assert.ok(x.ok && x.actions[0]!.ok, JSON.stringify(x, replacer));
  const before = r.results[2]!.actions[0]!;
  const after = r.results[4]!.actions[0]!;
  assert.ok(before.ok && after.ok);
  // Genesis's first tier (maker 0.02%, taker 0.05%), then FLAT.
  const old = expected(h, 500_000, 10, 500, 200);
  const now = expected(h, 500_000, 10, 1_000, -200);
  assert.equal(before.order!.fills[0]!.takerFeeQuote, old.takerFeeQuote);
  assert.equal(before.order!.fills[0]!.makerFeeQuote, old.makerFeeQuote);
  assert.equal(after.order!.fills[0]!.takerFeeQuote, now.takerFeeQuote);
  assert.equal(after.order!.fills[0]!.makerFeeQuote, now.makerFeeQuote);
  assert.ok(now.makerFeeQuote < 0n, 'a rebate');
  // One event, in the block that carried it.
  assert.deepEqual(
    r.events.filter((e) => e.type === 'feeTiersChanged'),
    [{ type: 'feeTiersChanged' }],
  );
  assert.ok(h.ex.state.proposals.get(1)!.executed);
  assert.deepEqual(h.ex.state.feeTiers, FLAT);
  assert.ok(h.ex.state.feeTiersChanged);
});

test('after approval every fill follows the new tiers, by each account’s volume; the fee pool takes taker fee less rebate and never goes negative', () => {
  const h = funded();
  carried(h, 1, TWO);
  // $500 a fill: the first two at the first tier, then the maker and taker are past $1,000.
  const price = 500_000;
  const k = h.ex.state.markets[0]!.k;
  const lots = Number((500n * USDC) / (BigInt(price) * k));
  const seen: [bigint, bigint][] = [];
  for (let i = 0; i < 4; i++) {
    const pool = h.ex.state.feePoolQuote;
    const volume = h.account(taker)!.volumeQuote;
    const tier = volume >= TWO[1]!.volumeQuoteMin ? TWO[1]! : TWO[0]!;
    const f = trade(h, price, lots);
    const want = expected(h, price, lots, tier.takerFeePpm, tier.makerFeePpm);
    assert.equal(f.takerFeeQuote, want.takerFeeQuote, `fill ${i}`);
    assert.equal(f.makerFeeQuote, want.makerFeeQuote, `fill ${i}`);
    assert.equal(h.ex.state.feePoolQuote - pool, f.takerFeeQuote + f.makerFeeQuote);
    seen.push([f.takerFeeQuote, f.makerFeeQuote]);
  }
  assert.notDeepEqual(seen[0], seen[3], 'the second tier was reached');
  // Rebates as large as the smallest taker fee: the pool still never goes below zero.
  carried(h, 2, [
    { volumeQuoteMin: 0n, makerFeePpm: -300, takerFeePpm: 300 },
    { volumeQuoteMin: 1n, makerFeePpm: -300, takerFeePpm: 300 },
  ]);
  for (const size of [1, 3, 7, 11]) {
    const pool = h.ex.state.feePoolQuote;
    const f = trade(h, 500_001, size);
    assert.ok(f.makerFeeQuote < 0n);
    assert.ok(h.ex.state.feePoolQuote >= pool, `size ${size}`);
  }
  assert.ok(h.ex.state.feePoolQuote >= 0n);
  checkInvariants(h.ex.state);
});

test('the fill guard bounds fees by the schedule in force: the same guard reports the new bounds, no stale copy', () => {
  const h = funded();
  const guard = equityGuard(h.ex.state);
  assert.equal(guard.takerPpmMax, 500);
  carried(h, 1, [
    { volumeQuoteMin: 0n, makerFeePpm: 3_000, takerFeePpm: 90_000 },
    { volumeQuoteMin: USDC, makerFeePpm: 0, takerFeePpm: 1_000 },
  ]);
  assert.equal(equityGuard(h.ex.state), guard);
  assert.equal(guard.takerPpmMax, 90_000);
  assert.equal(h.ex.state.feeMakerPpmMax, 3_000);
  // $300 of equity buying $5,000 at the mark: initial margin (5%, $250)
  // allows it, a 9% fee ($450) does not. Bounded by genesis's 0.05% the
  // order would not be checked per fill and would fill whole, the fee taking
  // its equity below zero; by the schedule in force it stops at the last
  // lot its equity pays for (666 lots, a $299.70 fee), the rest cancelled.
  const poor = key('fees-poor');
  h.fund(poor, 300n * USDC);
  accepted(h.one(maker, limit(BTC, 'sell', 500_000, 1_000)));
  const r = accepted(h.one(poor, limit(BTC, 'buy', 500_000, 1_000, { timeInForce: 'IOC' }))).order!;
  assert.equal(r.reason, 'InsufficientEquity', JSON.stringify(r, replacer));
  assert.equal(r.filledLots, 666);
  assert.equal(r.fills[0]!.takerFeeQuote, 299_700_000n);
  assert.ok(h.account(poor)!.cashQuote >= 0n);
  checkInvariants(h.ex.state);
});

test('a snapshot taken while a setFeeTiers is pending, and one after it executed, restore to the same appHash and run on identically', () => {
  const h = funded();
  accepted(h.one(VALIDATORS[0]!, propose(1, TWO)));
  const pending = encodeSnapshot(h.ex);
  const mid = decodeSnapshot(pending, { checkInvariants: true });
  assert.deepEqual(mid.appHash, h.ex.appHash);
  assert.deepEqual(mid.state.proposals.get(1)!.feeTiers, TWO);
  assert.ok(!mid.state.feeTiersChanged);
  const restored = new Harness(undefined, { checkInvariants: true }, mid);
  restored.timeMs = h.timeMs;
  accepted(h.one(maker, limit(BTC, 'sell', 500_000, 50), { nonce: 70 }));
  accepted(restored.one(maker, limit(BTC, 'sell', 500_000, 50), { nonce: 70 }));
  for (const blockTxs of [
    (x: Harness) => [x.tx(VALIDATORS[1]!, approve(1), { nonce: 77 })],
    (x: Harness) => [
      x.tx(VALIDATORS[2]!, approve(1), { nonce: 78 }),
      x.tx(taker, limit(BTC, 'buy', 500_000, 5, { timeInForce: 'IOC' }), { nonce: 79 }),
    ],
    (x: Harness) => [
      x.tx(taker, limit(BTC, 'buy', 500_000, 5, { timeInForce: 'IOC' }), { nonce: 80 }),
    ],
  ]) {
    const one = h.ex.finalizeBlock(h.nextBlock(blockTxs(h)));
    const two = restored.ex.finalizeBlock(restored.nextBlock(blockTxs(restored)));
    assert.equal(JSON.stringify(two, replacer), JSON.stringify(one, replacer));
  }
  assert.ok(h.ex.state.feeTiersChanged);
  // After: the schedule is state; restored from scratch, the same digest and the same fees.
  const bytes = encodeSnapshot(h.ex);
  const after = decodeSnapshot(bytes, { checkInvariants: true });
  assert.deepEqual(after.appHash, h.ex.appHash);
  assert.deepEqual(after.state.feeTiers, TWO);
  assert.equal(after.state.feeTakerPpmMax, 2_000);
  assert.deepEqual(encodeSnapshot(after), bytes);
  // Format 11 has no encoding of it.
  assert.throws(() => encodeSnapshot(h.ex, SNAPSHOT_FORMAT_PREVIOUS), /no format 11 encoding/);
});

test('the schedule is state only while it differs from genesis: set back to genesis’s, the globals leaf and the snapshot carry none', () => {
  const h = funded();
  const s = h.ex.state;
  const genesisTiers: FeeTier[] = s.genesis.feeTiers.map((t) => ({ ...t }));
  const globals = (): string => {
    const w = new Writer(256);
    writeGlobals(w, s, new Uint8Array(32));
    return toHex(w.finish());
  };
  const plain = globals();
  carried(h, 1, FLAT);
  carried(h, 2, genesisTiers);
  assert.ok(!s.feeTiersChanged);
  assert.deepEqual(s.feeTiers, genesisTiers);
  const back = globals();
  // The same state but for the schedule: the leaf is the one before with the schedule after it.
  s.setFeeTiers(FLAT);
  const changed = globals();
  assert.ok(changed.startsWith(back) && changed.length > back.length);
  s.setFeeTiers(genesisTiers);
  assert.equal(globals(), back);
  // Height and time moved, nothing else: as long as the leaf of the chain before the proposals.
  assert.equal(back.length, plain.length);
  // The snapshot: the flag, and no schedule.
  const bytes = encodeSnapshot(h.ex);
  const restored = decodeSnapshot(bytes, { checkInvariants: true });
  assert.deepEqual(restored.appHash, h.ex.appHash);
  assert.ok(!restored.state.feeTiersChanged);
  assert.equal(restored.state.feeTiers, restored.state.genesis.feeTiers);
});

test('the same blocks give the same appHash on two nodes, and a different one for another schedule', () => {
  const run = (tiers: FeeTierValues[]): string => {
    const h = funded();
    h.block([
      h.tx(VALIDATORS[0]!, propose(1, tiers), { nonce: 1 }),
      h.tx(VALIDATORS[1]!, approve(1), { nonce: 2 }),
      h.tx(VALIDATORS[2]!, approve(1), { nonce: 3 }),
    ]);
    h.block([]);
    return toHex(h.ex.appHash);
  };
  assert.equal(run(TWO), run(TWO));
  assert.notEqual(run(TWO), run([TWO[0]!, { ...TWO[1]!, takerFeePpm: 101 }]));
});

test('a snapshot with a schedule genesis’s rules refuse, genesis’s schedule flagged as changed, or a setFeeTiers proposal marked format 11, is refused as a DecodeError', () => {
  const h = funded();
  carried(h, 1, TWO);
  accepted(h.one(VALIDATORS[0]!, propose(2, FLAT)));
  const bytes = encodeSnapshot(h.ex);
  decodeSnapshot(bytes, { checkInvariants: true });
  const refused = refusesAltered(bytes);
  refused((x) => x.state.setFeeTiers([TWO[1]!, TWO[0]!]), /must be 0/);
  refused(
    (x) => x.state.setFeeTiers([{ volumeQuoteMin: 0n, makerFeePpm: -501, takerFeePpm: 500 }]),
    /rebate/,
  );
  refused((x) => {
    x.state.setFeeTiers(x.state.genesis.feeTiers);
    x.state.feeTiersChanged = true;
  }, /the genesis schedule/);
  refused((x) => {
    (x.state.proposals.get(2)!.feeTiers as FeeTierValues[]).push(TWO[1]!);
  }, /rebate|ascend|volumeQuoteMin/);
  // A pending proposal of the new kind in a snapshot marked format 11.
  const h2 = funded();
  accepted(h2.one(VALIDATORS[0]!, propose(1, FLAT)));
  const asEleven = encodeSnapshot(h2.ex).slice();
  asEleven[0] = SNAPSHOT_FORMAT_PREVIOUS;
  assert.throws(() => decodeSnapshot(asEleven), DecodeError);
});

test('the invariants hold the fee schedule to its flag and its derived bounds', () => {
  const h = new Harness();
  h.block([]);
  const s = h.ex.state;
  s.setFeeTiers(FLAT);
  checkInvariants(s);
  s.feeTiersChanged = false;
  assert.throws(() => checkInvariants(s), /fee schedule flag drifted/);
  s.setFeeTiers(FLAT);
  s.feeTakerPpmMax = 500;
  assert.throws(() => checkInvariants(s), /fee schedule bounds drifted/);
});

test('a setFeeTiers transaction encodes and decodes to itself', () => {
  const h = new Harness();
  const tx = h.tx(VALIDATORS[0]!, propose(5, TWO));
  const back = decodeSignedTx(encodeSignedTx(tx));
  assert.deepEqual(back.action, tx.action);
});
