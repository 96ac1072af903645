import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Reader, Writer, decode, encode } from '../../../src/codec/wire.ts';
import {
  SETTLEMENT_WINDOW_MS,
  newTwap,
  observeTwap,
  settlePositions,
  settlementValueQuote,
  twapCodec,
} from '../../../src/exchange/instruments/settlement.ts';

const EXPIRY = Date.UTC(2026, 11, 25, 8);
const START = EXPIRY - SETTLEMENT_WINDOW_MS;

test('constant price settles at that price; two halves average', () => {
  const a = newTwap(EXPIRY);
  assert.equal(observeTwap(a, START - 5000, 100n), null);
  assert.equal(observeTwap(a, EXPIRY + 2000, 999n), 100n);
  const b = newTwap(EXPIRY);
  observeTwap(b, START, 100n);
  observeTwap(b, START + SETTLEMENT_WINDOW_MS / 2, 201n);
  // (100 + 201) / 2 = 150.5 → half to even 150
  assert.equal(observeTwap(b, EXPIRY, 1n), 150n);
  // Once known, the settlement price does not move.
  assert.equal(observeTwap(b, EXPIRY + 60_000, 5n), 150n);
});

test('stale intervals are not counted; nothing counted waits for the first fresh price', () => {
  const a = newTwap(EXPIRY);
  observeTwap(a, START, 100n);
  observeTwap(a, START + 60_000, null);
  assert.equal(observeTwap(a, EXPIRY, null), 100n);
  const b = newTwap(EXPIRY);
  observeTwap(b, START - 1, null);
  assert.equal(observeTwap(b, EXPIRY + 1, null), null);
  assert.equal(observeTwap(b, EXPIRY + 2, 7n), 7n);
});

// Blocks on whole seconds, so a brute-force sum over each second of the window is the reference.
test('TWAP is exact against a per-second brute force', () => {
  const block = fc.record({
    gapS: fc.integer({ min: 1, max: 400 }),
    price: fc.option(fc.bigInt({ min: 1n, max: 10n ** 14n }), { freq: 5 }),
  });
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 600 }),
      fc.array(block, { minLength: 1, maxLength: 40 }),
      (leadS, blocks) => {
        const a = newTwap(EXPIRY);
        let t = START - leadS * 1000;
        const times: number[] = [];
        const prices: (bigint | null)[] = [];
        let result: bigint | null = null;
        for (const b of blocks) {
          times.push(t);
          prices.push(b.price);
          result = observeTwap(a, t, b.price);
          t += b.gapS * 1000;
          if (result !== null) break;
        }
        if (result === null) {
          times.push(Math.max(t, EXPIRY));
          prices.push(null);
          result = observeTwap(a, Math.max(t, EXPIRY), null);
        }
        let sum = 0n;
        let counted = 0n;
        for (let s = START; s < EXPIRY; s += 1000) {
          let i = -1;
          while (i + 1 < times.length && times[i + 1]! <= s) i++;
          if (i < 0 || i === times.length - 1) continue; // before the first block, or at/after the last
          const p = prices[i]!;
          if (p === null) continue;
          sum += p * 1000n;
          counted += 1000n;
        }
        if (counted === 0n) {
          assert.equal(result, null);
          return;
        }
        const q = sum / counted;
        const r = sum % counted;
        const expected = 2n * r > counted || (2n * r === counted && q % 2n === 1n) ? q + 1n : q;
        assert.equal(result, expected);
        assert.deepEqual(decode(twapCodec, encode(twapCodec, a)), a);
      },
    ),
  );
});

test('accumulator encoding is canonical and refuses bad fields', () => {
  const a = newTwap(EXPIRY);
  observeTwap(a, START + 10, 12345n);
  const bytes = encode(twapCodec, a);
  assert.deepEqual(decode(twapCodec, bytes), a);
  const w = new Writer();
  w.uvarint(EXPIRY).uvarint(0).uvarint(0).ivarint(-1).bool(true).uvarint(0).bool(false);
  assert.throws(() => decode(twapCodec, w.finish()), /a price is positive/);
  assert.throws(() => twapCodec.read(new Reader(bytes.subarray(0, 3)), 'twap'), /unexpected end/);
});

test('settlement closes every position exactly: longs rounded down, shorts up, dust to the pool', () => {
  // 3 lots per base unit; value 100 per base unit.
  const r = settlePositions(
    [
      { sizeLots: 1, costBasisQuote: 30n },
      { sizeLots: 1, costBasisQuote: 40n },
      { sizeLots: -2, costBasisQuote: -60n },
    ],
    100n,
    3,
  );
  assert.deepEqual(r.cashQuote, [33n, 33n, -67n]);
  assert.deepEqual(r.realizedPnlQuote, [3n, -7n, -7n]);
  assert.equal(r.dustQuote, 1n);
  assert.equal(settlementValueQuote(70n, { strikeQuote: 60n, isCall: true }), 10n);
  assert.equal(settlementValueQuote(70n, { strikeQuote: 60n, isCall: false }), 0n);
  assert.equal(settlementValueQuote(50n, { strikeQuote: 60n, isCall: false }), 10n);
  assert.equal(settlementValueQuote(70n), 70n);
});

test('settlement conserves collateral: Σ cash + dust = 0, dust < one unit per position', () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: -1_000_000, max: 1_000_000 }), { minLength: 1, maxLength: 30 }),
      fc.bigInt({ min: 0n, max: 10n ** 15n }),
      fc.integer({ min: 1, max: 1_000_000 }),
      (sizes, value, lots) => {
        const net = sizes.reduce((s, x) => s + x, 0);
        const all = [...sizes, -net].map((sizeLots) => ({ sizeLots, costBasisQuote: 0n }));
        const r = settlePositions(all, value, lots);
        assert.equal(r.cashQuote.reduce((s, x) => s + x, 0n) + r.dustQuote, 0n);
        assert.ok(r.dustQuote >= 0n && r.dustQuote < BigInt(all.length));
      },
    ),
  );
});
