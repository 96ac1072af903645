import { ZommaError } from '../lib/errors.ts';

/**
 * BadInput: an argument is not a number, out of its documented range, or of the wrong sign.
 * NoVolatilityFits: no volatility in the supported range reproduces the given option price.
 */
export type MathErrorCode = 'BadInput' | 'NoVolatilityFits';

export class MathError extends ZommaError<MathErrorCode> {}
