// The elementary functions on public fixed point (SCALE = 10^18): each converts
// to the internal binary fixed point, evaluates, and rounds half up back to a wad.

import { isqrtBig } from '../lib/int.ts';
import { MATH_EXP_ARG_WAD_MAX } from '../lib/limits.ts';
import { MathError } from './errors.ts';
import { expFix, lnFix } from './explog.ts';
import { fromWad, SCALE, describe, toWad } from './fixed.ts';
import { normCdfFix, normPdfFix } from './normal.ts';

function requireBigint(name: string, x: unknown): asserts x is bigint {
  if (typeof x !== 'bigint')
    throw new MathError('BadInput', `${name} must be a bigint at scale 10^18`);
}

/** e^x. x at most MATH_EXP_ARG_WAD_MAX; below about -41.4 the result rounds to 0. */
export function exp(x: bigint): bigint {
  requireBigint('x', x);
  if (x > MATH_EXP_ARG_WAD_MAX) {
    throw new MathError(
      'BadInput',
      `exp argument ${describe(x)} exceeds ${describe(MATH_EXP_ARG_WAD_MAX)}`,
    );
  }
  return toWad(expFix(fromWad(x)));
}

/** Natural logarithm, x > 0. */
export function ln(x: bigint): bigint {
  requireBigint('x', x);
  if (x <= 0n) throw new MathError('BadInput', 'ln needs a positive argument');
  return toWad(lnFix(fromWad(x)));
}

/** Square root, x >= 0, correctly rounded to the nearest wad. */
export function sqrt(x: bigint): bigint {
  requireBigint('x', x);
  if (x < 0n) throw new MathError('BadInput', 'sqrt needs a non-negative argument');
  const n = x * SCALE;
  const root = isqrtBig(n);
  // (root + 1/2)^2 = root^2 + root + 1/4, so round up exactly when n - root^2 > root.
  return n - root * root > root ? root + 1n : root;
}

/** The standard normal cumulative distribution function. */
export function normCdf(x: bigint): bigint {
  requireBigint('x', x);
  return toWad(normCdfFix(fromWad(x)));
}

/** The standard normal density. */
export function normPdf(x: bigint): bigint {
  requireBigint('x', x);
  return toWad(normPdfFix(fromWad(x)));
}
