// A float64 Black–Scholes for property tests: independent of src/math (no
// tables, no fixed point), accurate to about 1e-14 relatively wherever its
// inputs are, so that it tells a wrong formula, branch or sign from rounding.
// N(x) by its Taylor series about 0 for |x| < 3 and by the continued fraction
// of the Mills ratio beyond (Q(t) = n(t) / (t + 1/(t + 2/(t + 3/(t + …))))),
// both to relative precision, tails included.

const INV_SQRT_TWO_PI = 0.3989422804014327;

export function pdf(x: number): number {
  return INV_SQRT_TWO_PI * Math.exp(-0.5 * x * x);
}

/** Q(t) = N(−t) for t ≥ 3, by the continued fraction evaluated backwards. */
function upperTail(t: number): number {
  let f = t;
  for (let k = 120; k >= 1; k--) f = t + k / f;
  return pdf(t) / f;
}

export function cdf(x: number): number {
  if (x <= -3) return upperTail(-x);
  if (x >= 3) return 1 - upperTail(x);
  // N(x) = 1/2 + n(x) (x + x^3/3 + x^5/(3·5) + …).
  let term = x;
  let sum = x;
  for (let k = 3; Math.abs(term) > 1e-18 * Math.abs(sum); k += 2) {
    term *= (x * x) / k;
    sum += term;
  }
  return 0.5 + pdf(x) * sum;
}

export interface FloatGreeks {
  price: number;
  delta: number;
  gamma: number;
  vega: number;
  theta: number;
  rho: number;
  vanna: number;
  volga: number;
  /** S N(±d1) + K e^(−rT) N(±d2): the size of the two terms a price is the difference of. */
  terms: number;
  /** |S n(d1) σ/(2√T)| + |r K e^(−rT) N(±d2)|, theta's two terms. */
  thetaTerms: number;
  d1: number;
  logMoneyness: number;
}

export function floatBlackScholes(
  S: number,
  K: number,
  T: number,
  v: number,
  r: number,
  isCall: boolean,
  logMoneyness = Math.log(S / K),
): FloatGreeks {
  const sqrtT = Math.sqrt(T);
  const d1 = (logMoneyness + (r + (v * v) / 2) * T) / (v * sqrtT);
  const d2 = d1 - v * sqrtT;
  const D = Math.exp(-r * T);
  const n1 = pdf(d1);
  const vega = S * n1 * sqrtT;
  const decay = (-S * n1 * v) / (2 * sqrtT);
  const shared = {
    gamma: n1 / (S * v * sqrtT),
    vega,
    vanna: (-n1 * d2) / v,
    volga: (vega * d1 * d2) / v,
    d1,
    logMoneyness,
  };
  if (isCall) {
    const a = S * cdf(d1);
    const b = K * D * cdf(d2);
    return {
      ...shared,
      price: a - b,
      delta: cdf(d1),
      theta: decay - r * b,
      rho: T * b,
      terms: a + b,
      thetaTerms: -decay + Math.abs(r * b),
    };
  }
  const a = K * D * cdf(-d2);
  const b = S * cdf(-d1);
  return {
    ...shared,
    price: a - b,
    delta: -cdf(-d1),
    theta: decay + r * a,
    rho: -T * a,
    terms: a + b,
    thetaTerms: -decay + Math.abs(r * a),
  };
}
