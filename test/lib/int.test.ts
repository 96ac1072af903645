import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  divBig,
  divCeil,
  divFloor,
  divTrunc,
  isqrtBig,
  modFloor,
  mulDiv,
} from '../../src/lib/int.ts';

const safe = fc.integer({ min: -(2 ** 40), max: 2 ** 40 });
const nonZero = safe.filter((x) => x !== 0);

test('number division rounds as named and agrees with bigint', () => {
  fc.assert(
    fc.property(safe, nonZero, (a, b) => {
      const A = BigInt(a);
      const B = BigInt(b);
      assert.equal(divFloor(a, b), Number(divBig(A, B, 'floor')));
      assert.equal(divCeil(a, b), Number(divBig(A, B, 'ceil')));
      assert.equal(divTrunc(a, b), Number(divBig(A, B, 'trunc')));
      assert.ok(divFloor(a, b) * b <= a === b > 0 || divFloor(a, b) * b === a);
      assert.ok(!Object.is(divTrunc(a, b), -0));
      const m = modFloor(a, b);
      assert.equal(divFloor(a, b) * b + m, a);
    }),
  );
});

test('bigint division: floor, ceil and half-even on known values', () => {
  assert.equal(divBig(-7n, 2n, 'floor'), -4n);
  assert.equal(divBig(-7n, 2n, 'ceil'), -3n);
  assert.equal(divBig(-7n, 2n, 'trunc'), -3n);
  assert.equal(divBig(5n, 2n, 'halfEven'), 2n);
  assert.equal(divBig(7n, 2n, 'halfEven'), 4n);
  assert.equal(divBig(-5n, 2n, 'halfEven'), -2n);
  assert.equal(divBig(-7n, 2n, 'halfEven'), -4n);
  assert.equal(divBig(8n, 3n, 'halfEven'), 3n);
  assert.equal(mulDiv(10n ** 30n, 3n, 7n, 'floor'), (3n * 10n ** 30n) / 7n);
});

test('isqrtBig is the floor square root', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: 1n << 200n }), (n) => {
      const r = isqrtBig(n);
      assert.ok(r * r <= n && (r + 1n) * (r + 1n) > n);
    }),
  );
});
