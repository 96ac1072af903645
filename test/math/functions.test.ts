import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  exp,
  fromDecimal,
  ln,
  MathError,
  normCdf,
  normPdf,
  SCALE,
  sqrt,
} from '../../src/math/index.ts';
import { WAD_TO_REF, abs, parseRef, reference } from './reference.ts';

const FUNCTIONS = { exp, ln, sqrt, normCdf, normPdf };

test('exp, ln, sqrt, normCdf and normPdf agree with mpmath to within one wad', () => {
  for (const [name, f] of Object.entries(FUNCTIONS)) {
    const cases = reference.functions[name as keyof typeof FUNCTIONS];
    assert.ok(cases.length >= 10, name);
    for (const { x, y } of cases) {
      const expected = parseRef(y);
      const got = f(fromDecimal(x)) * WAD_TO_REF;
      // Within one wad, or 28 significant digits for results too large for that (e^60).
      const tolerance = WAD_TO_REF + abs(expected) / 10n ** 28n;
      assert.ok(
        abs(got - expected) <= tolerance,
        `${name}(${x}) = ${got} (x10^-27), expected ${y}`,
      );
    }
  }
});

const wadReal = fc.bigInt({ min: -40n * SCALE, max: 40n * SCALE });

test('exp and ln invert each other, and exp(a + b) = exp(a) exp(b), to rounding', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: SCALE / 1000n, max: 10n ** 30n }), (x) => {
      const back = exp(ln(x));
      // ln is rounded to 10^-18, which moves exp by a relative 10^-18.
      assert.ok(abs(back - x) <= 2n + x / (SCALE / 2n), `${x} -> ${back}`);
    }),
    { numRuns: 300, seed: 1 },
  );
  fc.assert(
    fc.property(wadReal, wadReal, (a, b) => {
      const lhs = exp(a + b);
      const rhs = (exp(a) * exp(b)) / SCALE;
      assert.ok(abs(lhs - rhs) <= 2n + lhs / 10n ** 16n + (exp(a) + exp(b)) / SCALE);
    }),
    { numRuns: 300, seed: 2 },
  );
});

test('sqrt is the correctly rounded square root', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: 10n ** 40n }), (x) => {
      const r = sqrt(x);
      const n = x * SCALE; // r is the integer nearest sqrt(n)
      assert.ok((r === 0n || (2n * r - 1n) ** 2n <= 4n * n) && 4n * n <= (2n * r + 1n) ** 2n);
    }),
    { numRuns: 500, seed: 3 },
  );
});

test('the normal CDF is symmetric and increasing; the density is even and peaks at 0', () => {
  fc.assert(
    fc.property(wadReal, wadReal, (a, b) => {
      assert.ok(abs(normCdf(a) + normCdf(-a) - SCALE) <= 1n);
      assert.equal(normPdf(a), normPdf(-a));
      if (a <= b) assert.ok(normCdf(a) <= normCdf(b));
      assert.ok(normPdf(a) <= normPdf(0n));
    }),
    { numRuns: 500, seed: 4 },
  );
  assert.equal(normCdf(0n), SCALE / 2n);
  assert.equal(normCdf(-100n * SCALE), 0n);
  assert.equal(normCdf(100n * SCALE), SCALE);
  assert.equal(normPdf(100n * SCALE), 0n);
});

test('domain errors are typed', () => {
  const bad: Array<() => unknown> = [
    () => ln(0n),
    () => ln(-1n),
    () => sqrt(-1n),
    () => exp(101n * SCALE),
    () => exp(1 as unknown as bigint),
  ];
  for (const f of bad) {
    assert.throws(f, (e: unknown) => e instanceof MathError && e.code === 'BadInput');
  }
});
