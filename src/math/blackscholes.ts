// Black–Scholes prices and greeks of European options, on fixed-point bigints.
//
// Everything is computed per unit of spot (so the formulas see the moneyness
// m = K/S and never the size of the spot), in the internal binary fixed point,
// and leaves as wads. One evaluation shares its intermediate values among the
// eight outputs: one ln, one exp, one 1/sqrt, two normal CDFs and one density
// (for |d1| from 8 to 16, one more exp: normal.ts, normPdfTailFix).
//
//   w = 1/(sigma sqrt T)     d1 = (ln(S/K) + rT + sigma^2 T/2) w     d2 = d1 - sigma sqrt T
//   D = e^(-rT)   sqrt T = sigma T w   1/sigma = sqrt T w   sigma/sqrt T = sigma^2 w
// (the identity K D n(d2) = S n(d1) removes the second density).

import { divBig } from '../lib/int.ts';
import {
  MATH_MONEYNESS_MAX,
  MATH_PRICE_WAD_MAX,
  MATH_RATE_WAD_MAX,
  MATH_TIME_YEARS_WAD_MAX,
  MATH_TIME_YEARS_WAD_MIN,
  MATH_VOL_WAD_MAX,
  MATH_VOL_WAD_MIN,
} from '../lib/limits.ts';
import { MathError } from './errors.ts';
import { expFix, lnFix, rsqrtFix } from './explog.ts';
import { FRAC_BITS, fromWad, mul, mulToWad, ONE, SCALE, describe, toWad } from './fixed.ts';
import { normCdfFix, normPdfFix, normPdfTailFix, PDF_TAIL_END, PDF_TAIL_START } from './normal.ts';

export interface MarketInput {
  /** Spot (or forward-discounted underlying) price, in quote units, at SCALE. */
  spot: bigint;
  /** Strike, in quote units, at SCALE. */
  strike: bigint;
  /** Time to expiry in years, at SCALE. */
  timeYears: bigint;
  /** Continuously compounded risk-free rate per year (0.05 = 5%), at SCALE. */
  rate: bigint;
  isCall: boolean;
}

export interface BlackScholesInput extends MarketInput {
  /** Volatility per year (0.8 = 80%), at SCALE. */
  vol: bigint;
}

/** All at SCALE; units in docs/math.md. */
export interface Greeks {
  /** Option value, in quote units. */
  price: bigint;
  /** dV/dS. */
  delta: bigint;
  /** d2V/dS2, per quote unit. */
  gamma: bigint;
  /** dV/dsigma, per 1.00 of volatility. */
  vega: bigint;
  /** dV/dt as calendar time passes, per year. */
  theta: bigint;
  /** dV/dr, per 1.00 of rate. */
  rho: bigint;
  /** d2V/dS dsigma = d delta/d sigma, per 1.00 of volatility. */
  vanna: bigint;
  /** d2V/dsigma2 = d vega/d sigma, per 1.00 of volatility squared. */
  volga: bigint;
}

/** The volatility-free part of an evaluation, shared by the solver's iterations. */
export interface Prepared {
  spot: bigint;
  isCall: boolean;
  timeYears: bigint;
  rate: bigint;
  /** ln(S/K) + rT, the numerator of d1 before the variance term. */
  drift: bigint;
  /** K e^(-rT) / S. */
  discountedMoneyness: bigint;
}

/** Per unit of spot, in internal fixed point. */
export interface Normalized {
  price: bigint;
  delta: bigint;
  gammaTimesSpot: bigint;
  vega: bigint;
  theta: bigint;
  rho: bigint;
  vanna: bigint;
  volga: bigint;
}

function requireBigint(name: string, value: unknown): asserts value is bigint {
  if (typeof value !== 'bigint') {
    throw new MathError('BadInput', `${name} must be a bigint at scale 10^18`);
  }
}

function requireRange(name: string, value: bigint, min: bigint, max: bigint): void {
  if (value < min || value > max) {
    throw new MathError(
      'BadInput',
      `${name} ${describe(value)} is outside [${describe(min)}, ${describe(max)}]`,
    );
  }
}

/** Checks the inputs every pricing needs, with errors that name the field. */
export function validateMarket(input: MarketInput): void {
  requireBigint('spot', input.spot);
  requireBigint('strike', input.strike);
  requireBigint('timeYears', input.timeYears);
  requireBigint('rate', input.rate);
  if (typeof input.isCall !== 'boolean')
    throw new MathError('BadInput', 'isCall must be a boolean');
  if (input.spot <= 0n) throw new MathError('BadInput', 'spot must be positive');
  if (input.strike <= 0n) throw new MathError('BadInput', 'strike must be positive');
  if (input.timeYears <= 0n) throw new MathError('BadInput', 'timeYears must be positive');
  requireRange('spot', input.spot, 1n, MATH_PRICE_WAD_MAX);
  requireRange('strike', input.strike, 1n, MATH_PRICE_WAD_MAX);
  if (
    input.spot > input.strike * MATH_MONEYNESS_MAX ||
    input.strike > input.spot * MATH_MONEYNESS_MAX
  ) {
    throw new MathError('BadInput', `spot and strike differ by more than ${MATH_MONEYNESS_MAX}x`);
  }
  requireRange('timeYears', input.timeYears, MATH_TIME_YEARS_WAD_MIN, MATH_TIME_YEARS_WAD_MAX);
  requireRange('rate', input.rate, -MATH_RATE_WAD_MAX, MATH_RATE_WAD_MAX);
}

export function validateVol(vol: unknown): asserts vol is bigint {
  requireBigint('vol', vol);
  if (vol <= 0n) throw new MathError('BadInput', 'vol must be positive');
  requireRange('vol', vol, MATH_VOL_WAD_MIN, MATH_VOL_WAD_MAX);
}

/** The part of the evaluation that does not depend on volatility. Inputs already validated. */
export function prepare(input: MarketInput): Prepared {
  const moneyness = divBig(input.strike << FRAC_BITS, input.spot, 'halfEven');
  const timeYears = fromWad(input.timeYears);
  const rate = fromWad(input.rate);
  const rateTime = mul(rate, timeYears);
  return {
    spot: input.spot,
    isCall: input.isCall,
    timeYears,
    rate,
    drift: rateTime - lnFix(moneyness),
    discountedMoneyness: mul(moneyness, expFix(-rateTime)),
  };
}

/** d1, d2 and what they are made of, for volatility `vol` (internal fixed point). */
interface Core {
  volSquared: bigint;
  /** 1/(sigma sqrt T). */
  w: bigint;
  d1: bigint;
  d2: bigint;
  cdf1: bigint;
  cdf2: bigint;
}

function core(p: Prepared, vol: bigint): Core {
  const volSquared = mul(vol, vol);
  const variance = mul(volSquared, p.timeYears);
  const w = rsqrtFix(variance);
  const d1 = mul(p.drift + (variance >> 1n), w);
  const d2 = d1 - mul(variance, w);
  return { volSquared, w, d1, d2, cdf1: normCdfFix(d1), cdf2: normCdfFix(d2) };
}

/** The price alone per unit of spot: evaluate's, without the greeks (no density). */
function evaluatePrice(p: Prepared, vol: bigint): bigint {
  const { cdf1, cdf2 } = core(p, vol);
  if (p.isCall) return cdf1 - mul(p.discountedMoneyness, cdf2);
  return mul(p.discountedMoneyness, ONE - cdf2) - (ONE - cdf1);
}

/** Price and greeks per unit of spot for volatility `vol` (internal fixed point). */
export function evaluate(p: Prepared, vol: bigint): Normalized {
  const { volSquared, w, d1, d2, cdf1, cdf2 } = core(p, vol);
  // n(d1) = pdf1 × 2^-shift: in the tail the density carries its own power
  // of two, so that the greeks that multiply it by large factors keep their
  // relative precision (normal.ts, normPdfTailFix); elsewhere shift is 0.
  const t1 = d1 < 0n ? -d1 : d1;
  let pdf1 = 0n;
  let shift = 0n;
  if (t1 < PDF_TAIL_START) pdf1 = normPdfFix(d1);
  else if (t1 < PDF_TAIL_END) ({ mantissa: pdf1, shift } = normPdfTailFix(d1));
  const sqrtTime = mul(mul(p.timeYears, vol), w);
  const inverseVol = mul(sqrtTime, w);
  const vegaScaled = mul(pdf1, sqrtTime);
  const vega = vegaScaled >> shift;
  const decay = mul(pdf1, mul(volSquared, w)) >> (shift + 1n); // n(d1) sigma / (2 sqrt T)
  const gammaTimesSpot = mul(pdf1, w) >> shift;
  const vanna = -(mul(mul(pdf1, d2), inverseVol) >> shift);
  const volga = mul(mul(vegaScaled, mul(d1, d2)), inverseVol) >> shift;
  if (p.isCall) {
    const carry = mul(p.discountedMoneyness, cdf2); // K D N(d2) / S
    const theta = -decay - mul(p.rate, carry);
    const rho = mul(p.timeYears, carry);
    return { price: cdf1 - carry, delta: cdf1, gammaTimesSpot, vega, theta, rho, vanna, volga };
  }
  const carry = mul(p.discountedMoneyness, ONE - cdf2); // K D N(-d2) / S
  const theta = -decay + mul(p.rate, carry);
  const rho = -mul(p.timeYears, carry);
  const price = carry - (ONE - cdf1);
  return { price, delta: cdf1 - ONE, gammaTimesSpot, vega, theta, rho, vanna, volga };
}

const SCALE_SQUARED = SCALE * SCALE;

/** Scales a per-unit-of-spot evaluation back to quote units, at SCALE. */
export function toGreeks(spot: bigint, n: Normalized): Greeks {
  return {
    price: mulToWad(n.price, spot),
    delta: toWad(n.delta),
    gamma: divBig(n.gammaTimesSpot * SCALE_SQUARED, spot << FRAC_BITS, 'halfEven'),
    vega: mulToWad(n.vega, spot),
    theta: mulToWad(n.theta, spot),
    rho: mulToWad(n.rho, spot),
    vanna: toWad(n.vanna),
    volga: mulToWad(n.volga, spot),
  };
}

/**
 * Black–Scholes price and greeks of a European call or put (no dividends).
 * Throws MathError('BadInput') for inputs out of range (limits.ts, MATH_*).
 */
export function blackScholes(input: BlackScholesInput): Greeks {
  validateMarket(input);
  validateVol(input.vol);
  const prepared = prepare(input);
  return toGreeks(input.spot, evaluate(prepared, fromWad(input.vol)));
}

/**
 * The prices at each of `vols` of one option (blackScholes(…).price for
 * each, to the unit): the part that does not depend on the volatility is
 * computed once, and no greek is. What the option margin's scenarios need
 * (options/margin.ts: three volatilities at each shocked price). Throws
 * MathError('BadInput') as blackScholes does for any of them.
 */
export function blackScholesPrices(market: MarketInput, vols: readonly bigint[]): bigint[] {
  validateMarket(market);
  for (const vol of vols) validateVol(vol);
  const prepared = prepare(market);
  return vols.map((vol) => mulToWad(evaluatePrice(prepared, fromWad(vol)), market.spot));
}
