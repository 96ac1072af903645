// Slow, high-precision constants for building the lookup tables when the module
// loads. They work at PRECISE_BITS = 192 fraction bits (58 digits), 64 bits more
// than the tables keep, so the tables are correctly rounded to within an ulp.
// Only plain series on bigint: the same bits on every machine.

import { divBig } from '../lib/int.ts';
import { FRAC_BITS } from './fixed.ts';

export const PRECISE_BITS = 192n;
export const PRECISE_ONE = 1n << PRECISE_BITS;
const CUTOFF = 1n; // a term below one ulp ends a series

/** atanh(1/n) = sum 1/((2k+1) n^(2k+1)), at PRECISE_BITS. */
function atanhInverse(n: bigint): bigint {
  const nn = n * n;
  let power = divBig(PRECISE_ONE, n, 'floor');
  let sum = 0n;
  for (let k = 1n; power >= CUTOFF; k += 2n) {
    sum += divBig(power, k, 'floor');
    power = divBig(power, nn, 'floor');
  }
  return sum;
}

/** ln 2 = 2 atanh(1/3). */
export const LN2_PRECISE = 2n * atanhInverse(3n);

/** pi by Machin's formula, pi = 16 atan(1/5) - 4 atan(1/239). */
function atanInverse(n: bigint): bigint {
  const nn = n * n;
  let power = divBig(PRECISE_ONE, n, 'floor');
  let sum = 0n;
  for (let k = 1n, sign = 1n; power >= CUTOFF; k += 2n, sign = -sign) {
    sum += sign * divBig(power, k, 'floor');
    power = divBig(power, nn, 'floor');
  }
  return sum;
}
export const PI_PRECISE = 16n * atanInverse(5n) - 4n * atanInverse(239n);

/** e^x for |x| <= 1 by its Taylor series. */
export function expSmallPrecise(x: bigint): bigint {
  let term = PRECISE_ONE;
  let sum = PRECISE_ONE;
  for (let k = 1n; term !== 0n; k++) {
    term = divBig(term * x, k << PRECISE_BITS, 'trunc');
    sum += term;
  }
  return sum;
}

/** ln x for x in [1/2, 2], as 2 atanh((x-1)/(x+1)). */
export function lnNearOnePrecise(x: bigint): bigint {
  const z = divBig((x - PRECISE_ONE) << PRECISE_BITS, x + PRECISE_ONE, 'trunc');
  const zz = (z * z) >> PRECISE_BITS;
  let power = z;
  let sum = 0n;
  for (let k = 1n; power !== 0n; k += 2n) {
    sum += divBig(power, k, 'trunc');
    power = divBig(power * zz, PRECISE_ONE, 'trunc');
  }
  return 2n * sum;
}

/** A PRECISE_BITS value rounded (half up) to the internal FRAC_BITS. */
export function toFrac(x: bigint): bigint {
  const drop = PRECISE_BITS - FRAC_BITS;
  return (x + (1n << (drop - 1n))) >> drop;
}
