// Integer helpers with explicit rounding. The pure cores may not use `/`
// (a lint rule enforces it); they divide through these, which say how they round.
//
// `number` versions take and return safe integers; they are exact because
// `a % b` is exact for doubles and `a - a % b` is an exact multiple of `b`.
// The results are never -0, so they encode canonically.

import { assert } from './assert.ts';

export type Rounding = 'floor' | 'ceil' | 'trunc' | 'halfEven';

function checkOperands(a: number, b: number): void {
  assert(Number.isSafeInteger(a) && Number.isSafeInteger(b), 'integer division of non-integers');
  assert(b !== 0, 'division by zero');
}

/** a / b rounded toward zero. */
export function divTrunc(a: number, b: number): number {
  checkOperands(a, b);
  return (a - (a % b)) / b + 0;
}

/** a / b rounded toward negative infinity. */
export function divFloor(a: number, b: number): number {
  checkOperands(a, b);
  const r = a % b;
  const q = (a - r) / b + 0;
  return r !== 0 && r < 0 !== b < 0 ? q - 1 : q;
}

/** a / b rounded toward positive infinity. */
export function divCeil(a: number, b: number): number {
  checkOperands(a, b);
  const r = a % b;
  const q = (a - r) / b + 0;
  return r !== 0 && r < 0 === b < 0 ? q + 1 : q;
}

/** a mod b with the sign of b (so modFloor(-1, 3) = 2). */
export function modFloor(a: number, b: number): number {
  checkOperands(a, b);
  const r = a % b;
  return r !== 0 && r < 0 !== b < 0 ? r + b : r + 0;
}

export function divBig(a: bigint, b: bigint, rounding: Rounding): bigint {
  assert(b !== 0n, 'division by zero');
  const q = a / b;
  const r = a % b;
  if (r === 0n) return q;
  const negative = a < 0n !== b < 0n;
  switch (rounding) {
    case 'trunc':
      return q;
    case 'floor':
      return negative ? q - 1n : q;
    case 'ceil':
      return negative ? q : q + 1n;
    case 'halfEven': {
      const twice = 2n * (r < 0n ? -r : r);
      const absB = b < 0n ? -b : b;
      const away = twice > absB || (twice === absB && (q & 1n) !== 0n);
      if (!away) return q;
      return negative ? q - 1n : q + 1n;
    }
  }
}

export const divFloorBig = (a: bigint, b: bigint): bigint => divBig(a, b, 'floor');
export const divCeilBig = (a: bigint, b: bigint): bigint => divBig(a, b, 'ceil');
export const divTruncBig = (a: bigint, b: bigint): bigint => divBig(a, b, 'trunc');

/** a * b / c with one rounding at the end, in bigint so nothing overflows. */
export function mulDiv(a: bigint, b: bigint, c: bigint, rounding: Rounding): bigint {
  return divBig(a * b, c, rounding);
}

export function absBig(a: bigint): bigint {
  return a < 0n ? -a : a;
}

export function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

export function maxBig(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

export function clampBig(x: bigint, lo: bigint, hi: bigint): bigint {
  assert(lo <= hi, 'clamp bounds crossed');
  return x < lo ? lo : x > hi ? hi : x;
}

/** Integer square root, floor(sqrt(n)), by Newton's method on bigint. */
export function isqrtBig(n: bigint): bigint {
  assert(n >= 0n, 'square root of a negative number');
  if (n < 2n) return n;
  let x = 1n << BigInt((n.toString(2).length >> 1) + 1);
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}

/** Converts a bigint known to be a safe integer to a number, asserting that it is. */
export function toSafeNumber(x: bigint): number {
  assert(
    x >= BigInt(Number.MIN_SAFE_INTEGER) && x <= BigInt(Number.MAX_SAFE_INTEGER),
    `not a safe integer: ${x}`,
  );
  return Number(x);
}
