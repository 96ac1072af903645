// Pricing that stays inside the math's domain. Black–Scholes and the smile
// refuse inputs outside their ranges (src/math: moneyness past
// MATH_MONEYNESS_MAX, prices, times and volatilities past their bounds) with
// a MathError. Inside a block such an error would fail the block on every
// validator alike and stop the chain, so the exchange asks through this and
// takes null as "cannot be priced now". The error is a pure function of the
// inputs, so every validator takes the same branch.

import { MathError } from '../../math/errors.ts';

export function priced<T>(price: () => T): T | null {
  try {
    return price();
  } catch (error) {
    if (error instanceof MathError) return null;
    throw error;
  }
}
