// Implied volatility: the volatility at which Black–Scholes gives a price.
//
// The price is strictly increasing in volatility, so a root in
// [MATH_VOL_WAD_MIN, MATH_VOL_WAD_MAX] exists exactly when the price lies
// between the prices at those two ends; otherwise no volatility fits. Inside,
// Newton's method on a bracket that every step narrows ("rtsafe"): a Newton step
// that leaves the bracket, or is not under half the step before last, becomes a
// bisection; after MATH_IV_NEWTON_ITERATIONS_MAX steps plain bisection finishes.
// It starts from the Manaster–Koehler point sigma^2 = 2|ln(S/K) + rT|/T (where
// vega peaks, and from where Newton converges monotonically), or at the money
// from the Brenner–Subrahmanyam estimate sigma = sqrt(2 pi / T) (price - intrinsic)/S. It stops when a step moves less than 2^-72 (about 2e-22, far below
// one wad) or the bracket is that narrow.

import { assert } from '../lib/assert.ts';
import { divBig, maxBig, minBig } from '../lib/int.ts';
import {
  MATH_IV_NEWTON_ITERATIONS_MAX,
  MATH_PRICE_WAD_MAX,
  MATH_VOL_WAD_MAX,
  MATH_VOL_WAD_MIN,
} from '../lib/limits.ts';
import {
  type MarketInput,
  type Prepared,
  evaluate,
  prepare,
  validateMarket,
} from './blackscholes.ts';
import { MathError } from './errors.ts';
import { rsqrtFix } from './explog.ts';
import { FRAC_BITS, fromWad, mul, mulToWad, ONE, describe, toWad } from './fixed.ts';
import { PI_PRECISE, toFrac } from './precise.ts';

export interface ImpliedVolInput extends MarketInput {
  /** The option's price, in quote units, at SCALE. */
  price: bigint;
}

const VOL_LOW = fromWad(MATH_VOL_WAD_MIN);
const VOL_HIGH = fromWad(MATH_VOL_WAD_MAX);
const TOLERANCE = ONE >> 72n;
const SQRT_TWO_PI = mul(toFrac(2n * PI_PRECISE), rsqrtFix(toFrac(2n * PI_PRECISE)));

function abs(x: bigint): bigint {
  return x < 0n ? -x : x;
}

/** sqrt(x) for x > 0 in internal fixed point. */
function sqrtFix(x: bigint): bigint {
  return mul(x, rsqrtFix(x));
}

/**
 * The volatility (at SCALE, per year) at which Black–Scholes reproduces `price`.
 * Throws MathError('NoVolatilityFits') when the price is at or below the lowest
 * price any volatility in range gives (about the discounted intrinsic value) or
 * at or above the highest (below the spot for a call, the discounted strike for a put).
 */
export function impliedVol(input: ImpliedVolInput): bigint {
  validateMarket(input);
  if (typeof input.price !== 'bigint') {
    throw new MathError('BadInput', 'price must be a bigint at scale 10^18');
  }
  if (input.price < 0n || input.price > MATH_PRICE_WAD_MAX) {
    throw new MathError('BadInput', `price ${describe(input.price)} is negative or too large`);
  }
  const p = prepare(input);
  const target = divBig(input.price << FRAC_BITS, input.spot, 'halfEven');
  const lowest = evaluate(p, VOL_LOW).price;
  const highest = evaluate(p, VOL_HIGH).price;
  const inQuote = (x: bigint): string => describe(mulToWad(x, input.spot));
  if (target <= lowest) {
    throw new MathError(
      'NoVolatilityFits',
      `price ${describe(input.price)} is at or below ${inQuote(lowest)}, the value at the lowest ` +
        `volatility ${describe(MATH_VOL_WAD_MIN)} (the option's discounted intrinsic value)`,
    );
  }
  if (target >= highest) {
    throw new MathError(
      'NoVolatilityFits',
      `price ${describe(input.price)} is at or above ${inQuote(highest)}, the value at the ` +
        `highest volatility ${describe(MATH_VOL_WAD_MAX)}`,
    );
  }
  return toWad(solve(p, target, initialGuess(p, target)));
}

function initialGuess(p: Prepared, target: bigint): bigint {
  let guess: bigint;
  const spread = 2n * abs(p.drift);
  if (spread > TOLERANCE) {
    guess = sqrtFix(divBig(spread << FRAC_BITS, p.timeYears, 'floor'));
  } else {
    const intrinsic = maxBig(
      0n,
      p.isCall ? ONE - p.discountedMoneyness : p.discountedMoneyness - ONE,
    );
    guess = mul(mul(maxBig(target - intrinsic, TOLERANCE), SQRT_TWO_PI), rsqrtFix(p.timeYears));
  }
  return minBig(maxBig(guess, VOL_LOW), VOL_HIGH);
}

function solve(p: Prepared, target: bigint, start: bigint): bigint {
  let low = VOL_LOW; // price(low) < target
  let high = VOL_HIGH; // price(high) > target
  let vol = start;
  let step = high - low;
  let stepBefore = step;
  for (let i = 0; i < MATH_IV_NEWTON_ITERATIONS_MAX; i++) {
    const e = evaluate(p, vol);
    const error = e.price - target;
    if (error === 0n) return vol;
    if (error < 0n) low = vol;
    else high = vol;
    if (high - low <= TOLERANCE) return (low + high) >> 1n;
    const newton = e.vega > 0n ? divBig(error << FRAC_BITS, e.vega, 'trunc') : high - low;
    let next = vol - newton;
    // As in Numerical Recipes' rtsafe: bisect when Newton leaves the bracket or
    // its step is not under half the step before last (it is not converging).
    const stepBeforeLast = stepBefore;
    stepBefore = step;
    if (next <= low || next >= high || 2n * abs(newton) > stepBeforeLast) {
      next = (low + high) >> 1n;
      step = next - low;
    } else {
      step = abs(newton);
      if (step <= TOLERANCE) return next;
    }
    vol = next;
  }
  // Newton did not settle: bisect what is left of the bracket, which started
  // below 2^4, so 76 halvings reach 2^-72.
  for (let i = 0; i < 80; i++) {
    if (high - low <= TOLERANCE) return (low + high) >> 1n;
    const middle = (low + high) >> 1n;
    if (evaluate(p, middle).price < target) low = middle;
    else high = middle;
  }
  assert(false, 'implied volatility bisection did not converge');
}
