import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fromDecimal, MathError, SCALE, toDecimal } from '../../src/math/index.ts';
import { bitLength } from '../../src/math/fixed.ts';

test('fromDecimal reads plain decimals exactly', () => {
  assert.equal(fromDecimal('1'), SCALE);
  assert.equal(fromDecimal('-1.5'), -15n * 10n ** 17n);
  assert.equal(fromDecimal('+0.000000000000000001'), 1n);
  assert.equal(fromDecimal('60000.25'), 60000n * SCALE + SCALE / 4n);
  assert.equal(fromDecimal('007'), 7n * SCALE);
});

test('fromDecimal refuses what is not a plain decimal with at most 18 decimals', () => {
  for (const s of [
    '',
    '.5',
    '5.',
    '1e5',
    '0x10',
    ' 1',
    '1,5',
    'NaN',
    '--1',
    '0.1234567890123456789',
    '9'.repeat(65),
  ]) {
    assert.throws(
      () => fromDecimal(s),
      (e: unknown) => e instanceof MathError && e.code === 'BadInput',
      s,
    );
  }
});

test('toDecimal prints the requested decimals, rounding half to even', () => {
  assert.equal(toDecimal(SCALE), '1.000000000000000000');
  assert.equal(toDecimal(-1n), '-0.000000000000000001');
  assert.equal(toDecimal(15n * 10n ** 17n, 0), '2');
  assert.equal(toDecimal(25n * 10n ** 17n, 0), '2');
  assert.equal(toDecimal(-25n * 10n ** 17n, 0), '-2');
  assert.equal(toDecimal(123456n * 10n ** 13n, 2), '1.23');
  assert.equal(toDecimal(-4n * 10n ** 15n, 2), '0.00');
  assert.throws(() => toDecimal(1n, 19), MathError);
});

test('toDecimal and fromDecimal round-trip every wad', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }), (x) => {
      assert.equal(fromDecimal(toDecimal(x)), x);
    }),
    { numRuns: 1000, seed: 5 },
  );
});

test('bitLength brackets its argument', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 1n, max: (1n << 1000n) - 1n }), (x) => {
      const n = bitLength(x);
      assert.ok(1n << BigInt(n - 1) <= x && x < 1n << BigInt(n));
    }),
    { numRuns: 1000, seed: 6 },
  );
});
