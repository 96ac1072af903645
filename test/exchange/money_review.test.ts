// The money amounts held as safe-integer numbers (state.ts, moneyNum) against
// plain bigints: fills settled on accounts whose cash, volume, cost basis and
// realized PnL sit near ±2^53 cross the boundary both ways and land on the
// same amounts, fee tiers and bytes as the bigint settlement; the numbers stay
// canonical (a number exactly while safe, never -0).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { divBig } from '../../src/lib/int.ts';
import { Reader, Writer } from '../../src/codec/wire.ts';
import { MONEY_BITS, readAccountInto, writeAccount } from '../../src/exchange/encoding.ts';
import { feeTier, makerFeeQuote, takerFeeQuote } from '../../src/exchange/fees.ts';
import { settleFills } from '../../src/exchange/orders.ts';
import type { Fill } from '../../src/exchange/results.ts';
import { Account, ExchangeState, MarketState } from '../../src/exchange/state.ts';
import type { Position } from '../../src/exchange/state.ts';
import type { FeeTier } from '../../src/exchange/genesis.ts';
import { bytesKey } from '../../src/exchange/keys.ts';
import { ensureAccount, ensurePrincipal } from '../../src/exchange/context.ts';
import { genesis, key } from './helpers.ts';

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const TWO52 = 2n ** 52n;

/** Amounts where the representations meet: small, the varint's 2^52, and 2^53. */
const near = (signed: boolean): fc.Arbitrary<bigint> =>
  fc
    .oneof(
      fc.bigInt({ min: 0n, max: 10n ** 9n }),
      fc.bigInt({ min: TWO52 - 10n ** 6n, max: TWO52 + 10n ** 6n }),
      fc.bigInt({ min: SAFE - 10n ** 9n, max: SAFE + 10n ** 9n }),
      fc.bigInt({ min: SAFE - 50n, max: SAFE + 50n }),
    )
    .chain((x) => (signed ? fc.constantFrom(x, -x) : fc.constant(x)));

/** Fee tiers with thresholds on either side of 2^53 and rebates. */
const TIERS: FeeTier[] = [
  { volumeQuoteMin: 0n, makerFeePpm: 200, takerFeePpm: 500 },
  { volumeQuoteMin: SAFE - 2000n, makerFeePpm: -100, takerFeePpm: 400 },
  { volumeQuoteMin: SAFE + 1n, makerFeePpm: -250, takerFeePpm: 300 },
  { volumeQuoteMin: SAFE + 3000n, makerFeePpm: 0, takerFeePpm: 250 },
];

interface Model {
  cash: bigint;
  volume: bigint;
  size: number;
  basis: bigint;
  pnl: bigint;
}

function modelOf(a: Account): Model {
  const p = a.positions[0]!;
  return {
    cash: a.cashQuote,
    volume: a.volumeQuote,
    size: p.sizeLots,
    basis: p.costBasisQuote,
    pnl: p.realizedPnlQuote,
  };
}

/** The bigint fee tier: the highest whose threshold the volume reaches. */
function tierOf(volume: bigint): FeeTier {
  for (let i = TIERS.length - 1; i > 0; i--)
    if (volume >= TIERS[i]!.volumeQuoteMin) return TIERS[i]!;
  return TIERS[0]!;
}

/** applyTrade on bigints only, as before the numbers. */
function tradeModel(m: Model, k: bigint, deltaLots: number, priceTicks: number): void {
  const old = m.size;
  const tradeQuote = BigInt(deltaLots) * BigInt(priceTicks) * k;
  m.cash -= tradeQuote;
  if (old === 0 || old > 0 === deltaLots > 0) {
    m.basis += tradeQuote;
  } else {
    const closeLots = Math.min(Math.abs(deltaLots), Math.abs(old));
    const removed = divBig(m.basis * BigInt(closeLots), BigInt(Math.abs(old)), 'trunc');
    const closeSigned = deltaLots > 0 ? closeLots : -closeLots;
    m.pnl += -(BigInt(closeSigned) * BigInt(priceTicks) * k) - removed;
    m.basis -= removed;
    const openLots = Math.abs(deltaLots) - closeLots;
    if (openLots > 0)
      m.basis = BigInt(deltaLots > 0 ? openLots : -openLots) * BigInt(priceTicks) * k;
  }
  m.size = old + deltaLots;
  if (m.size === 0) m.basis = 0n;
}

/** The numbers beside each amount: exactly the amount while safe, NaN beyond, never -0. */
function assertCanonical(a: Account): void {
  const p = a.positions[0]!;
  const pairs: [number, bigint][] = [
    [a.cashNum, a.cashQuote],
    [a.volumeNum, a.volumeQuote],
    [a.faucetNum, a.faucetQuote],
    [p.costBasisNum, p.costBasisQuote],
    [p.realizedPnlNum, p.realizedPnlQuote],
    [p.fundingNum, p.fundingQuote],
  ];
  for (const [n, x] of pairs) {
    assert.ok(!Object.is(n, -0), 'no negative zero');
    if (x >= -SAFE && x <= SAFE) assert.equal(n, Number(x));
    else assert.ok(Number.isNaN(n), `${x} beyond 2^53 held as ${n}`);
  }
}

/** writeAccount as it was on bigint fields: the reference bytes. */
function referenceBytes(a: Account): Uint8Array {
  const w = new Writer();
  w.fixed(a.address, 20).u8(a.subaccount);
  w.ivarintBig(a.cashQuote).uvarintBig(a.volumeQuote).uvarintBig(a.faucetQuote);
  for (const p of a.positions) {
    w.ivarint(p.sizeLots);
    w.ivarintBig(p.costBasisQuote).ivarintBig(p.realizedPnlQuote).ivarintBig(p.fundingQuote);
  }
  return w.finish();
}

function accountBytes(a: Account): Uint8Array {
  const w = new Writer();
  writeAccount(w, a, false);
  return w.finish();
}

function setPosition(p: Position, size: number, basis: bigint, pnl: bigint, funding: bigint): void {
  p.sizeLots = size;
  p.costBasisQuote = basis;
  p.realizedPnlQuote = pnl;
  p.fundingQuote = funding;
}

const start = fc.record({
  cash: near(true),
  volume: near(false),
  faucet: near(false),
  size: fc.integer({ min: -1000, max: 1000 }),
  basis: near(true),
  pnl: near(true),
  funding: near(true),
});

const fill = fc.record({
  maker: fc.nat(1),
  priceTicks: fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: 10 ** 9 })),
  sizeLots: fc.oneof(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 10 ** 7 })),
});

test('fills on amounts near ±2^53 settle as on bigints: cash, volume, fee tiers, basis, PnL, fee pool, bytes', () => {
  const base = genesis().markets[0]!;
  fc.assert(
    fc.property(
      fc.constantFrom(1n, 7n, 100_000n, 2n ** 60n),
      fc.array(start, { minLength: 3, maxLength: 3 }),
      fc.array(
        fc.record({
          side: fc.constantFrom('buy' as const, 'sell' as const),
          liquidation: fc.boolean(),
          fills: fc.array(fill, { minLength: 1, maxLength: 3 }),
        }),
        { minLength: 1, maxLength: 12 },
      ),
      (k, starts, takes) => {
        const state = new ExchangeState(genesis({ feeTiers: TIERS }), bytesKey);
        const market = new MarketState(0, { ...base, tickSizeQuote: k, lotsPerBase: 1 });
        const accounts = ['t', 'm0', 'm1'].map((n) =>
          ensureAccount(state, ensurePrincipal(state, key(n).address), 0),
        );
        accounts.forEach((a, i) => {
          const s = starts[i]!;
          a.cashQuote = s.cash;
          a.volumeQuote = s.volume;
          a.faucetQuote = s.faucet;
          setPosition(a.positions[0]!, s.size, s.basis, s.pnl, s.funding);
        });
        const models = accounts.map(modelOf);
        let pool = state.feePoolQuote;
        const [taker, ...makers] = accounts;
        for (const t of takes) {
          const fills = market.book.fills;
          fills.reset();
          for (const f of t.fills) {
            fills.push(1, makers[f.maker]!.index, f.priceTicks, f.sizeLots, false);
          }
          const out: Fill[] = [];
          settleFills(state, market, taker!, t.side, t.liquidation, out);
          const takerTier = tierOf(models[0]!.volume);
          t.fills.forEach((f, i) => {
            const maker = models[1 + f.maker]!;
            const signed = t.side === 'buy' ? f.sizeLots : -f.sizeLots;
            tradeModel(models[0]!, k, signed, f.priceTicks);
            tradeModel(maker, k, -signed, f.priceTicks);
            const notional = BigInt(f.priceTicks) * BigInt(f.sizeLots) * k;
            const takerFee = t.liquidation ? 0n : takerFeeQuote(takerTier, notional);
            let makerFee = makerFeeQuote(tierOf(maker.volume), notional);
            if (t.liquidation && makerFee < 0n) makerFee = 0n;
            models[0]!.cash -= takerFee;
            maker.cash -= makerFee;
            models[0]!.volume += notional;
            maker.volume += notional;
            pool += takerFee + makerFee;
            assert.equal(out[i]!.takerFeeQuote, takerFee);
            assert.equal(out[i]!.makerFeeQuote, makerFee);
          });
          accounts.forEach((a, i) => {
            assert.deepEqual(modelOf(a), models[i]);
            assert.equal(feeTier(state, a), tierOf(models[i]!.volume));
            assertCanonical(a);
            assert.deepEqual(accountBytes(a), referenceBytes(a));
          });
          assert.equal(state.feePoolQuote, pool);
        }
      },
    ),
    { numRuns: 400, seed: 5 },
  );
});

test('an account near ±2^52 and ±2^53 encodes as its bigints did, and reads back to the same bytes', () => {
  const state = new ExchangeState(genesis(), bytesKey);
  const a = ensureAccount(state, ensurePrincipal(state, key('e').address), 0);
  fc.assert(
    fc.property(start, start, (s, s2) => {
      a.cashQuote = s.cash;
      a.volumeQuote = s.volume;
      a.faucetQuote = s.faucet;
      setPosition(a.positions[0]!, s.size, s.basis, s.pnl, s.funding);
      setPosition(a.positions[1]!, s2.size, s2.basis, s2.pnl, s2.funding);
      assertCanonical(a);
      const bytes = accountBytes(a);
      assert.deepEqual(bytes, referenceBytes(a));
      const b = new Account(1, a.principal, 0, a.positions.length);
      const r = new Reader(bytes);
      r.fixed('address', 20);
      r.u8('subaccount');
      readAccountInto(r, 'a', b, null);
      r.done();
      assertCanonical(b);
      assert.deepEqual(accountBytes(b), bytes);
      assert.deepEqual(modelOf(b), modelOf(a));
      assert.ok(MONEY_BITS > 54);
    }),
    { numRuns: 1500, seed: 9 },
  );
});

test('add… across 2^53 and back, in sequences, keeps the amount and its number as the bigint sum', () => {
  const state = new ExchangeState(genesis(), bytesKey);
  const a = ensureAccount(state, ensurePrincipal(state, key('x').address), 0);
  const p = a.positions[0]!;
  const step = fc.oneof(
    fc.integer({ min: -1000, max: 1000 }),
    fc.integer({ min: -Number.MAX_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
    fc.constantFrom(Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 1, -1, 0),
  );
  fc.assert(
    fc.property(near(true), fc.array(step, { minLength: 1, maxLength: 20 }), (x, steps) => {
      a.cashQuote = x;
      p.costBasisQuote = x;
      p.realizedPnlQuote = x;
      a.volumeQuote = x < 0n ? -x : x;
      let cash = x;
      let volume = x < 0n ? -x : x;
      for (const d of steps) {
        a.addCash(d);
        p.addCostBasis(d);
        p.addRealizedPnl(d);
        cash += BigInt(d);
        if (d > 0) {
          a.addVolume(d);
          volume += BigInt(d);
        }
        assert.equal(a.cashQuote, cash);
        assert.equal(p.costBasisQuote, cash);
        assert.equal(p.realizedPnlQuote, cash);
        assert.equal(a.volumeQuote, volume);
        assertCanonical(a);
      }
    }),
    { numRuns: 2000, seed: 13 },
  );
});

test("a principal's remembered key, held as words, matches exactly that key: every byte, any sign", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.nat(31),
      fc.integer({ min: 1, max: 255 }),
      (signer, at, flip) => {
        const principal = ensurePrincipal(new ExchangeState(genesis(), bytesKey), key('w').address);
        assert.equal(principal.hasMasterKey(), false);
        assert.equal(principal.isMasterKey(signer), false);
        principal.rememberMasterKey(signer);
        assert.equal(principal.hasMasterKey(), true);
        assert.equal(principal.isMasterKey(signer.slice()), true);
        // A view into a larger buffer reads from its own offset.
        const framed = new Uint8Array(40);
        framed.set(signer, 5);
        assert.equal(principal.isMasterKey(framed.subarray(5, 37)), true);
        const other = signer.slice();
        other[at] = other[at]! ^ flip;
        assert.equal(principal.isMasterKey(other), false);
        assert.equal(principal.isMasterKey(signer.subarray(0, 31)), false);
      },
    ),
    { numRuns: 500, seed: 17 },
  );
});
