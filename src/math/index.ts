// Deterministic fixed-point option math: the public surface. Numbers are bigints
// at SCALE = 10^18 (1.5 is 1_500_000_000_000_000_000n); docs/math.md has the
// algorithms, accuracy and the units of every greek.

export { SCALE, fromDecimal, toDecimal } from './fixed.ts';
export { exp, ln, sqrt, normCdf, normPdf } from './functions.ts';
export {
  blackScholes,
  blackScholesPrices,
  type BlackScholesInput,
  type Greeks,
  type MarketInput,
} from './blackscholes.ts';
export { impliedVol, type ImpliedVolInput } from './impliedvol.ts';
export { MathError, type MathErrorCode } from './errors.ts';
