// Integer units shared by the exchange (docs/exchange.md, "Units"). Fractions
// are parts per million; money is bigint quote units (6 decimals).

import { divBig } from '../lib/int.ts';
import { toDecimal } from '../math/fixed.ts';
import { WAD_PER_QUOTE } from './options/mark.ts';

/** Parts per million: 1% = 10_000 ppm. */
export const PPM = 1_000_000;
export const PPM_BIG = 1_000_000n;

/** x × ppm / 10^6 rounded up: what an account owes (fees, margin) is never rounded in its favour. */
export function ppmCeil(x: bigint, ppm: number): bigint {
  return divBig(x * BigInt(ppm), PPM_BIG, 'ceil');
}

/** x × ppm / 10^6 rounded down: what an account receives (rebates) is never rounded in its favour. */
export function ppmFloor(x: bigint, ppm: number): bigint {
  return divBig(x * BigInt(ppm), PPM_BIG, 'floor');
}

/** Notional of sizeLots at priceTicks: exact. */
export function notionalQuote(
  priceTicks: number,
  sizeLots: number,
  quotePerTickLot: bigint,
): bigint {
  return BigInt(priceTicks) * BigInt(sizeLots) * quotePerTickLot;
}

/** Quote units as a decimal of the quote asset (6 places), for messages: 1500000 → "1.500000". */
export function quoteDecimal(amountQuote: bigint | number): string {
  return toDecimal(BigInt(amountQuote) * WAD_PER_QUOTE, 6);
}
