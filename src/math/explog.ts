// exp, ln and 1/sqrt in the internal binary fixed point (fixed.ts), each by
// table-driven argument reduction and a short polynomial, so one call costs
// about a dozen bigint multiplications.

import { assert } from '../lib/assert.ts';
import { divBig, isqrtBig } from '../lib/int.ts';
import { bitLength, FRAC_BITS, mul, ONE } from './fixed.ts';
import {
  expSmallPrecise,
  LN2_PRECISE,
  lnNearOnePrecise,
  PRECISE_BITS,
  PRECISE_ONE,
  toFrac,
} from './precise.ts';

/** ln 2 at FRAC_BITS, and with 32 more bits for reducing large arguments. */
export const LN2 = toFrac(LN2_PRECISE);
const LN2_EXTRA_BITS = 32n;
const LN2_EXTRA = LN2_PRECISE >> (PRECISE_BITS - FRAC_BITS - LN2_EXTRA_BITS);
/** 1/ln 2, floored, so that x * INV_LN2 never overshoots x / ln 2 for x >= 0. */
const INV_LN2 = divBig(PRECISE_ONE << FRAC_BITS, LN2_PRECISE, 'floor');

// --- exp ----------------------------------------------------------------------
// x = k ln2 + j/256 + s with 0 <= s < 1/256, so e^x = 2^k e^(j/256) e^s.
// e^s by Taylor to s^9: the first omitted term, s^10/10!, is below 2^-101.
const EXP_TABLE_BITS = 8n;
const EXP_STEP_SHIFT = FRAC_BITS - EXP_TABLE_BITS;
const EXP_TABLE: bigint[] = (() => {
  const step = expSmallPrecise(PRECISE_ONE >> EXP_TABLE_BITS);
  const table: bigint[] = [];
  // ln2 * 256 < 178: one spare entry covers a remainder that lands exactly on ln 2.
  for (let j = 0, e = PRECISE_ONE; j <= 178; j++, e = (e * step) >> PRECISE_BITS) {
    table.push(toFrac(e));
  }
  return table;
})();
const EXP_DEGREE = 9;
const EXP_COEFFICIENTS: bigint[] = (() => {
  const out: bigint[] = [];
  let factorial = 1n;
  for (let k = 0; k <= EXP_DEGREE; k++) {
    if (k > 0) factorial *= BigInt(k);
    out.push(divBig(ONE, factorial, 'halfEven'));
  }
  return out;
})();
/** Below this e^x is under 2^-129, which rounds to zero at FRAC_BITS. */
const EXP_UNDERFLOW = -90n * ONE;

/** e^x in internal fixed point. Arguments below -90 give 0. */
export function expFix(x: bigint): bigint {
  if (x < EXP_UNDERFLOW) return 0n;
  let k = (x * INV_LN2) >> (2n * FRAC_BITS);
  let r = x - ((k * LN2_EXTRA) >> LN2_EXTRA_BITS);
  while (r < 0n) {
    r += LN2;
    k -= 1n;
  }
  const j = r >> EXP_STEP_SHIFT;
  const s = r - (j << EXP_STEP_SHIFT);
  let p = EXP_COEFFICIENTS[EXP_DEGREE]!;
  for (let i = EXP_DEGREE - 1; i >= 0; i--) p = ((p * s) >> FRAC_BITS) + EXP_COEFFICIENTS[i]!;
  const y = mul(EXP_TABLE[Number(j)]!, p);
  return k >= 0n ? y << k : y >> -k;
}

// --- ln -----------------------------------------------------------------------
// x = 2^k y with 1 <= y < 2; y lies in [1 + j/256, 1 + (j+1)/256), and
// multiplying by R_j, a rounding of 1/(1 + (j+1/2)/256), leaves y R_j = 1 + u
// with |u| <= 2^-9. ln y = ln(1+u) - ln R_j; ln(1+u) by Taylor to u^10: the
// first omitted term, u^11/11, is below 2^-102.
const LN_TABLE_BITS = 8n;
const LN_STEP_SHIFT = FRAC_BITS - LN_TABLE_BITS;
const LN_TABLE_SIZE = 256;
const LN_RECIPROCAL: bigint[] = [];
const LN_OF_INVERSE_RECIPROCAL: bigint[] = [];
for (let j = 0; j < LN_TABLE_SIZE; j++) {
  const reciprocal = divBig(ONE << 9n, BigInt(512 + 2 * j + 1), 'halfEven');
  LN_RECIPROCAL.push(reciprocal);
  const precise = reciprocal << (PRECISE_BITS - FRAC_BITS);
  LN_OF_INVERSE_RECIPROCAL.push(toFrac(-lnNearOnePrecise(precise)));
}
const LN_DEGREE = 10;
const LN_COEFFICIENTS: bigint[] = [0n];
for (let k = 1; k <= LN_DEGREE; k++) {
  const c = divBig(ONE, BigInt(k), 'halfEven');
  LN_COEFFICIENTS.push(k % 2 === 1 ? c : -c);
}

/** ln x in internal fixed point, x > 0. */
export function lnFix(x: bigint): bigint {
  assert(x > 0n, 'ln of a non-positive number');
  const k = BigInt(bitLength(x) - 1) - FRAC_BITS;
  const y = k >= 0n ? x >> k : x << -k;
  const j = Number(y >> LN_STEP_SHIFT) - LN_TABLE_SIZE;
  const u = mul(y, LN_RECIPROCAL[j]!) - ONE;
  let p = LN_COEFFICIENTS[LN_DEGREE]!;
  for (let i = LN_DEGREE - 1; i >= 1; i--) p = ((p * u) >> FRAC_BITS) + LN_COEFFICIENTS[i]!;
  return mul(p, u) + LN_OF_INVERSE_RECIPROCAL[j]! + ((k * LN2_EXTRA) >> LN2_EXTRA_BITS);
}

// --- 1/sqrt -------------------------------------------------------------------
// x = 4^e y with 1 <= y < 4; a 192-entry table gives 1/sqrt(y) to 2^-8, and four
// Newton steps w <- w (3 - y w^2) / 2 square the error each time: 2^-8 -> 2^-121.
const RSQRT_TABLE_BITS = 6n;
const RSQRT_STEP_SHIFT = FRAC_BITS - RSQRT_TABLE_BITS;
const RSQRT_TABLE_FIRST = 64; // y >= 1
const RSQRT_GUESS: bigint[] = [];
for (let i = RSQRT_TABLE_FIRST; i < 4 * RSQRT_TABLE_FIRST; i++) {
  // 1/sqrt((2i+1)/128) = sqrt(128/(2i+1)), from an integer square root.
  RSQRT_GUESS.push(isqrtBig(divBig(128n << (2n * FRAC_BITS), BigInt(2 * i + 1), 'floor')));
}
const THREE = 3n * ONE;
const RSQRT_NEWTON_STEPS = 4;

/** 1/sqrt(x) in internal fixed point, x > 0. */
export function rsqrtFix(x: bigint): bigint {
  assert(x > 0n, '1/sqrt of a non-positive number');
  const e = (bitLength(x) - 1 - Number(FRAC_BITS)) >> 1;
  const e2 = BigInt(2 * e);
  const y = e2 >= 0n ? x >> e2 : x << -e2;
  let w = RSQRT_GUESS[Number(y >> RSQRT_STEP_SHIFT) - RSQRT_TABLE_FIRST]!;
  for (let i = 0; i < RSQRT_NEWTON_STEPS; i++) w = mul(w, THREE - mul(y, mul(w, w))) >> 1n;
  return e >= 0 ? w >> BigInt(e) : w << BigInt(-e);
}
