// The safe-integer paths of fill settlement (fees.ts, position.ts) and the
// digest's leaf table (hash.ts) against their references: the bigint
// formulas, and adding and subtracting leaves as bytes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { divBig } from '../../src/lib/int.ts';
import {
  makerFeeQuote,
  makerFeeQuoteNum,
  takerFeeQuote,
  takerFeeQuoteNum,
} from '../../src/exchange/fees.ts';
import { sha256 } from '../../src/crypto/index.ts';
import { Digest } from '../../src/exchange/hash.ts';
import { applyTrade } from '../../src/exchange/position.ts';
import { ExchangeState, MarketState } from '../../src/exchange/state.ts';
import { bytesKey } from '../../src/exchange/keys.ts';
import { ensureAccount, ensurePrincipal } from '../../src/exchange/context.ts';
import { genesis, key } from './helpers.ts';

const SAFE = Number.MAX_SAFE_INTEGER;

test('fee fast paths equal the bigint fees or decline beyond 2^53', () => {
  let declined = 0;
  fc.assert(
    fc.property(
      fc.oneof(fc.integer({ min: 0, max: 10 ** 12 }), fc.integer({ min: 0, max: SAFE })),
      fc.integer({ min: -1_000_000, max: 1_000_000 }),
      fc.integer({ min: 0, max: 1_000_000 }),
      (notional, makerFeePpm, takerFeePpm) => {
        const tier = { volumeQuoteMin: 0n, makerFeePpm, takerFeePpm };
        const taker = takerFeeQuoteNum(tier, notional);
        const maker = makerFeeQuoteNum(tier, notional);
        if (taker === undefined) declined++;
        else assert.equal(BigInt(taker), takerFeeQuote(tier, BigInt(notional)));
        if (maker !== undefined) {
          assert.equal(BigInt(maker), makerFeeQuote(tier, BigInt(notional)));
          assert.ok(!Object.is(maker, -0), 'no negative zero');
        }
      },
    ),
    { numRuns: 3000, seed: 7 },
  );
  assert.ok(declined > 0, 'some cases leave the safe integers');
});

/** applyTrade as written on bigints only: the reference. */
function referenceTrade(
  p: { sizeLots: number; costBasisQuote: bigint; realizedPnlQuote: bigint; cashQuote: bigint },
  k: bigint,
  deltaLots: number,
  priceTicks: number,
): void {
  const old = p.sizeLots;
  const tradeQuote = BigInt(deltaLots) * BigInt(priceTicks) * k;
  p.cashQuote -= tradeQuote;
  if (old === 0 || old > 0 === deltaLots > 0) {
    p.costBasisQuote += tradeQuote;
  } else {
    const closeLots = Math.min(Math.abs(deltaLots), Math.abs(old));
    const removed = divBig(p.costBasisQuote * BigInt(closeLots), BigInt(Math.abs(old)), 'trunc');
    const closeSigned = deltaLots > 0 ? closeLots : -closeLots;
    p.realizedPnlQuote += -(BigInt(closeSigned) * BigInt(priceTicks) * k) - removed;
    p.costBasisQuote -= removed;
    const openLots = Math.abs(deltaLots) - closeLots;
    if (openLots > 0)
      p.costBasisQuote = BigInt(deltaLots > 0 ? openLots : -openLots) * BigInt(priceTicks) * k;
  }
  p.sizeLots = old + deltaLots;
  if (p.sizeLots === 0) p.costBasisQuote = 0n;
}

test('applyTrade equals the bigint reference, small amounts and near 2^53 alike', () => {
  const base = genesis().markets[0]!;
  fc.assert(
    fc.property(
      // quote per tick per lot: ordinary, large, and beyond 2^53 (the bigint path throughout).
      fc.constantFrom(1n, 100_000n, 10n ** 9n, 2n ** 60n),
      fc.array(
        fc.record({
          deltaLots: fc.oneof(
            fc.integer({ min: -200, max: 200 }),
            fc.integer({ min: -(10 ** 7), max: 10 ** 7 }),
          ),
          priceTicks: fc.oneof(
            fc.integer({ min: 1, max: 1_000_000 }),
            fc.integer({ min: 1, max: 10 ** 9 }),
          ),
        }),
        { maxLength: 30 },
      ),
      (k, trades) => {
        const state = new ExchangeState(genesis(), bytesKey);
        const market = new MarketState(0, { ...base, tickSizeQuote: k, lotsPerBase: 1 });
        const account = ensureAccount(state, ensurePrincipal(state, key('t').address), 0);
        const ref = { sizeLots: 0, costBasisQuote: 0n, realizedPnlQuote: 0n, cashQuote: 0n };
        for (const t of trades) {
          if (t.deltaLots === 0) continue;
          applyTrade(state, market, account, t.deltaLots, t.priceTicks);
          referenceTrade(ref, k, t.deltaLots, t.priceTicks);
          const p = account.positions[0]!;
          assert.deepEqual(
            {
              sizeLots: p.sizeLots,
              costBasisQuote: p.costBasisQuote,
              realizedPnlQuote: p.realizedPnlQuote,
              cashQuote: account.cashQuote,
            },
            ref,
          );
        }
      },
    ),
    { numRuns: 500, seed: 11 },
  );
});

test('leaves kept in slots add and subtract as the same leaves in bytes', () => {
  // Messages on both sides of the JS/node:crypto threshold (119 bytes).
  const message = fc.uint8Array({ maxLength: 300 });
  fc.assert(
    fc.property(
      fc.array(
        fc.record({ op: fc.constantFrom('new', 'swap', 'release'), pick: fc.nat(), message }),
        { maxLength: 60 },
      ),
      (ops) => {
        const slotted = new Digest();
        const reference = new Digest();
        const live: { slot: number; leaf: Uint8Array }[] = [];
        for (const { op, pick, message } of ops) {
          // The message sits in a larger buffer, as in the digest's Writer.
          const buffer = new Uint8Array(message.length + 17);
          buffer.set(message);
          const leaf = sha256(message);
          if (op === 'new' || live.length === 0) {
            live.push({ slot: slotted.swapSlotHashing(null, buffer, message.length), leaf });
            reference.add(leaf);
          } else if (op === 'swap') {
            const entry = live[pick % live.length]!;
            assert.equal(slotted.swapSlotHashing(entry.slot, buffer, message.length), entry.slot);
            reference.sub(entry.leaf);
            reference.add(leaf);
            entry.leaf = leaf;
          } else {
            const [entry] = live.splice(pick % live.length, 1);
            slotted.releaseSlot(entry!.slot);
            reference.sub(entry!.leaf);
          }
          assert.deepEqual(slotted.bytes(), reference.bytes());
          for (const e of live) assert.deepEqual(slotted.slotBytes(e.slot), e.leaf);
        }
        assert.equal(new Set(live.map((e) => e.slot)).size, live.length, 'live slots are distinct');
      },
    ),
    { numRuns: 300, seed: 5 },
  );
});
