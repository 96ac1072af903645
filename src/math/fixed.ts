// Fixed-point numbers on bigint, in two scales.
//
// The public scale is decimal: SCALE = 10^18 ("wad"), so 1.5 is 1_500_000_000_000_000_000n.
// Values cross the module boundary at this scale (and as decimal strings).
//
// Inside, the functions work in binary fixed point with FRAC_BITS = 128 fraction
// bits (ONE = 2^128, about 38 decimal digits): rescaling a product is a shift,
// not a division, which is what makes the Black–Scholes evaluation fast enough.
// Every internal shift right floors (bigint `>>` rounds toward negative
// infinity); results leave through toWad, which rounds half up. Series are cut
// at about 2^-100 (30 digits), far below the 10^-18 of the public scale.

import { divBig, type Rounding } from '../lib/int.ts';
import { MATH_DECIMAL_CHARS_MAX } from '../lib/limits.ts';
import { MathError } from './errors.ts';

/** The public fixed-point scale: 10^18. */
export const SCALE = 10n ** 18n;
/** Decimal digits after the point at SCALE. */
export const SCALE_DIGITS = 18;

/** Fraction bits of the internal binary fixed point. */
export const FRAC_BITS = 128n;
/** 1.0 in the internal binary fixed point. */
export const ONE = 1n << FRAC_BITS;
const HALF_ULP = 1n << (FRAC_BITS - 1n);

/** a * b in internal fixed point, floored. */
export function mul(a: bigint, b: bigint): bigint {
  return (a * b) >> FRAC_BITS;
}

/** A wad (SCALE) value to internal fixed point, floored. */
export function fromWad(x: bigint): bigint {
  return divBig(x << FRAC_BITS, SCALE, 'floor');
}

/** An internal value to wad, rounded half up. */
export function toWad(x: bigint): bigint {
  return (x * SCALE + HALF_ULP) >> FRAC_BITS;
}

/** An internal value times a wad quantity, as a wad, rounded half up. */
export function mulToWad(x: bigint, wad: bigint): bigint {
  return (x * wad + HALF_ULP) >> FRAC_BITS;
}

// Powers of two for bitLength's binary search (comparisons allocate nothing).
const POW2_COUNT = 1024;
const POW2: bigint[] = Array.from({ length: POW2_COUNT + 1 }, (_, i) => 1n << BigInt(i));

/** The number of bits of a positive bigint below 2^1024: 2^(bitLength-1) <= x < 2^bitLength. */
export function bitLength(x: bigint): number {
  if (x <= 0n || x >= POW2[POW2_COUNT]!) {
    throw new MathError('BadInput', 'value out of the representable range');
  }
  let lo = 0; // POW2[lo] <= x
  let hi = POW2_COUNT; // x < POW2[hi]
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (x >= POW2[mid]!) lo = mid;
    else hi = mid;
  }
  return lo + 1;
}

const DECIMAL = /^([+-]?)(\d+)(?:\.(\d+))?$/;

/**
 * Parses a plain decimal string ("-12.5", "0.000001") into a wad. More than 18
 * fraction digits is refused rather than rounded, so no input is silently changed.
 */
export function fromDecimal(s: string): bigint {
  if (typeof s !== 'string' || s.length > MATH_DECIMAL_CHARS_MAX) {
    throw new MathError(
      'BadInput',
      `not a decimal number (at most ${MATH_DECIMAL_CHARS_MAX} characters)`,
    );
  }
  const match = DECIMAL.exec(s);
  if (match === null) throw new MathError('BadInput', `not a decimal number: '${s}'`);
  const [, sign, whole, fraction = ''] = match;
  if (fraction.length > SCALE_DIGITS) {
    throw new MathError('BadInput', `more than ${SCALE_DIGITS} decimals: '${s}'`);
  }
  const magnitude = BigInt(whole!) * SCALE + BigInt(fraction.padEnd(SCALE_DIGITS, '0'));
  return sign === '-' ? -magnitude : magnitude;
}

/**
 * Formats a wad as a decimal string with exactly `digits` decimals (0 to 18),
 * rounding half to even when digits < 18.
 */
export function toDecimal(
  x: bigint,
  digits = SCALE_DIGITS,
  rounding: Rounding = 'halfEven',
): string {
  if (!Number.isInteger(digits) || digits < 0 || digits > SCALE_DIGITS) {
    throw new MathError('BadInput', `digits must be an integer from 0 to ${SCALE_DIGITS}`);
  }
  const scaled = divBig(x, 10n ** BigInt(SCALE_DIGITS - digits), rounding);
  const negative = scaled < 0n;
  const text = (negative ? -scaled : scaled).toString().padStart(digits + 1, '0');
  const whole = text.slice(0, text.length - digits);
  const fraction = text.slice(text.length - digits);
  return `${negative ? '-' : ''}${whole}${digits > 0 ? `.${fraction}` : ''}`;
}

/** A wad as a short decimal for messages: 18 decimals, trailing zeros dropped. */
export function describe(x: bigint): string {
  return toDecimal(x).replace(/\.?0+$/, '');
}
