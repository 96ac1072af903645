import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Account, Position, Principal } from '../../src/exchange/state.ts';

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);
// Amounts around and far beyond the safe integers, where the number gives way to the bigint.
const amount = fc.oneof(
  fc.bigInt({ min: -SAFE - 10n, max: SAFE + 10n }),
  fc.bigInt({ min: SAFE - 1000n, max: SAFE + 1000n }),
  fc.bigInt({ min: -SAFE - 1000n, max: -SAFE + 1000n }),
  fc.bigInt({ min: -(2n ** 120n), max: 2n ** 120n }),
);
const delta = fc.oneof(
  fc.integer({ min: -1000, max: 1000 }),
  fc.constantFrom(Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER),
);

function num(x: bigint): number {
  return x >= -SAFE && x <= SAFE ? Number(x) : NaN;
}

test('money fields read back every bigint written, and add on the number as on the bigint', () => {
  fc.assert(
    fc.property(amount, delta, (x, d) => {
      const a = new Account(0, new Principal('k', new Uint8Array(20)), 0, 1);
      const p = new Position(0);
      a.cashQuote = x;
      a.volumeQuote = x < 0n ? -x : x;
      a.faucetQuote = x < 0n ? -x : x;
      p.costBasisQuote = x;
      p.realizedPnlQuote = x;
      p.fundingQuote = x;
      assert.equal(a.cashQuote, x);
      assert.equal(a.volumeQuote, x < 0n ? -x : x);
      assert.equal(a.faucetQuote, x < 0n ? -x : x);
      assert.equal(p.costBasisQuote, x);
      assert.equal(p.realizedPnlQuote, x);
      assert.equal(p.fundingQuote, x);
      assert.ok(Object.is(a.cashNum, num(x)));
      assert.ok(Object.is(p.costBasisNum, num(x)));
      a.addCash(d);
      p.addCostBasis(d);
      p.addRealizedPnl(d);
      assert.equal(a.cashQuote, x + BigInt(d));
      assert.ok(Object.is(a.cashNum, num(x + BigInt(d))));
      assert.equal(p.costBasisQuote, x + BigInt(d));
      assert.ok(Object.is(p.costBasisNum, num(x + BigInt(d))));
      assert.equal(p.realizedPnlQuote, x + BigInt(d));
      if (d >= 0) {
        a.addVolume(d);
        const v = (x < 0n ? -x : x) + BigInt(d);
        assert.equal(a.volumeQuote, v);
        assert.ok(Object.is(a.volumeNum, num(v)));
      }
    }),
    { numRuns: 2000, seed: 3 },
  );
});
