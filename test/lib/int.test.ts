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

// The definitions, as exact comparisons of a/b with q: floor is the largest q
// with q <= a/b, ceil the smallest with q >= a/b, trunc the one of the two
// nearer zero, and halfEven the nearest, the even one at an exact half.
function checkRounding(a: bigint, b: bigint): void {
  const s = b < 0n ? -1n : 1n; // q <= a/b  <=>  q |b| <= a s
  const at = (q: bigint): bigint => q * b * s; // a/b compared through q·|b| vs a·s
  const as = a * s;
  const floor = divBig(a, b, 'floor');
  assert.ok(at(floor) <= as && at(floor + 1n) > as, `floor ${a}/${b}`);
  const ceil = divBig(a, b, 'ceil');
  assert.ok(at(ceil) >= as && at(ceil - 1n) < as, `ceil ${a}/${b}`);
  assert.equal(divBig(a, b, 'trunc'), a * b >= 0n ? floor : ceil, `trunc ${a}/${b}`);
  const half = divBig(a, b, 'halfEven');
  // |a/b - q| compared as |2 a s - 2 q |b||; ties go to the even candidate.
  const distance = (q: bigint): bigint => {
    const d = 2n * as - 2n * at(q);
    return d < 0n ? -d : d;
  };
  assert.ok(half === floor || half === ceil, `halfEven ${a}/${b} not adjacent`);
  const other = half === floor ? ceil : floor;
  const dh = distance(half);
  const dother = distance(other);
  const exact = floor === ceil;
  assert.ok(exact || dh < dother || (dh === dother && (half & 1n) === 0n), `halfEven ${a}/${b}`);
}

test('divBig rounds as named for every sign, exact halves included', () => {
  const big = fc.bigInt({ min: -(1n << 130n), max: 1n << 130n });
  const divisor = fc.oneof(fc.bigInt({ min: -20n, max: 20n }), big).filter((b) => b !== 0n);
  fc.assert(
    fc.property(big, divisor, (a, b) => checkRounding(a, b)),
    { numRuns: 2000, seed: 5 },
  );
  // Exact halves: a = (2k + 1) b / 2 for even b, every sign combination.
  fc.assert(
    fc.property(fc.bigInt({ min: -1000n, max: 1000n }), divisor, (k, b) => {
      const even = 2n * b;
      checkRounding(((2n * k + 1n) * even) / 2n, even);
    }),
    { numRuns: 1000, seed: 6 },
  );
  for (const [a, b, want] of [
    [5n, -2n, -2n],
    [-5n, -2n, 2n],
    [7n, -2n, -4n],
    [-7n, -2n, 4n],
    [1n, 2n, 0n],
    [-1n, 2n, 0n],
    [3n, -2n, -2n],
  ] as const) {
    assert.equal(divBig(a, b, 'halfEven'), want, `${a}/${b}`);
  }
});

test('number division is exact across the whole safe-integer range', () => {
  const full = fc.oneof(
    fc.constantFrom(Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 0, 1, -1),
    fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
  );
  const divisor = fc.oneof(fc.integer({ min: -7, max: 7 }), full).filter((b) => b !== 0);
  fc.assert(
    fc.property(full, divisor, (a, b) => {
      const A = BigInt(a);
      const B = BigInt(b);
      assert.equal(divFloor(a, b), Number(divBig(A, B, 'floor')));
      assert.equal(divCeil(a, b), Number(divBig(A, B, 'ceil')));
      assert.equal(divTrunc(a, b), Number(divBig(A, B, 'trunc')));
      const m = modFloor(a, b);
      assert.equal(BigInt(m), A - BigInt(divFloor(a, b)) * B);
      assert.ok(m === 0 || m < 0 === b < 0);
      for (const q of [divFloor(a, b), divCeil(a, b), divTrunc(a, b), m]) {
        assert.ok(!Object.is(q, -0));
      }
    }),
    { numRuns: 2000, seed: 7 },
  );
});
