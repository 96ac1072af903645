// The per-expiry volatility smile, in Gatheral's raw SVI form
// (docs/derivatives.md, "Option marks"):
//   w(k) = a + b (ρ (k − m) + sqrt((k − m)² + σ²)),   k = ln(K / F)
// w is the total implied variance, so the implied volatility is sqrt(w / T).
// Parameters come from the oracle (validators' vote extensions) and are
// validated for the basic no-arbitrage conditions: b ≥ 0, |ρ| < 1, σ > 0 and
// a + b σ sqrt(1 − ρ²) ≥ 0 (the minimum of w is not negative). All values are
// bigints at the math SCALE (10^18). Cost: one ln and one or two sqrt.

import { ZommaError } from '../../lib/errors.ts';
import { divBig } from '../../lib/int.ts';
import { MATH_VOL_WAD_MAX, MATH_VOL_WAD_MIN } from '../../lib/limits.ts';
import { SCALE, ln, sqrt } from '../../math/index.ts';

export interface SviParams {
  /** Vertical level of total variance. */
  readonly a: bigint;
  /** Slope of the wings, ≥ 0. */
  readonly b: bigint;
  /** Skew, in (−1, 1). */
  readonly rho: bigint;
  /** Horizontal shift, in log-moneyness. */
  readonly m: bigint;
  /** Curvature at the vertex, > 0. */
  readonly sigma: bigint;
}

export class SviError extends ZommaError<'BadSvi'> {
  constructor(field: string, reason: string) {
    super('BadSvi', `${field}: ${reason}`);
  }
}

/** |a|, b, |m| and σ are at most 10 (total variance 10 is 316% volatility over a year). */
export const SVI_PARAM_WAD_MAX = 10n * SCALE;

function wadMul(x: bigint, y: bigint): bigint {
  return divBig(x * y, SCALE, 'halfEven');
}

function inRange(field: string, x: bigint, lo: bigint, hi: bigint, reason: string): void {
  if (typeof x !== 'bigint' || x < lo || x > hi) throw new SviError(field, reason);
}

/** Throws SviError naming the first parameter that breaks a condition. */
export function validateSvi(p: SviParams, field = 'svi'): void {
  const max = SVI_PARAM_WAD_MAX;
  inRange(`${field}.a`, p.a, -max, max, 'must be within ±10');
  inRange(`${field}.b`, p.b, 0n, max, 'must be in [0, 10]');
  inRange(`${field}.rho`, p.rho, -SCALE + 1n, SCALE - 1n, 'must be in (−1, 1)');
  inRange(`${field}.m`, p.m, -max, max, 'must be within ±10');
  inRange(`${field}.sigma`, p.sigma, 1n, max, 'must be in (0, 10]');
  const floor = p.a + wadMul(wadMul(p.b, p.sigma), sqrt(SCALE - wadMul(p.rho, p.rho)));
  if (floor < 0n) {
    throw new SviError(field, 'a + b σ sqrt(1 − ρ²) < 0: total variance would go negative');
  }
}

/** Total implied variance at log-moneyness k (never below 0). */
export function sviTotalVariance(p: SviParams, k: bigint): bigint {
  const x = k - p.m;
  const root = sqrt(wadMul(x, x) + wadMul(p.sigma, p.sigma));
  const w = p.a + wadMul(p.b, wadMul(p.rho, x) + root);
  return w > 0n ? w : 0n;
}

/**
 * Implied volatility for a strike, forward and time to expiry (all at SCALE),
 * clamped to the math module's volatility range.
 */
export function sviImpliedVol(
  p: SviParams,
  forward: bigint,
  strike: bigint,
  timeYears: bigint,
): bigint {
  const k = ln(divBig(strike * SCALE, forward, 'halfEven'));
  const w = sviTotalVariance(p, k);
  const vol = sqrt(divBig(w * SCALE, timeYears, 'halfEven'));
  if (vol < MATH_VOL_WAD_MIN) return MATH_VOL_WAD_MIN;
  if (vol > MATH_VOL_WAD_MAX) return MATH_VOL_WAD_MAX;
  return vol;
}
