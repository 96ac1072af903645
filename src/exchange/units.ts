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

/**
 * The quote asset's name in messages. Genesis does not name it: it fixes
 * only its 6 decimals (docs/exchange.md, "Units": 1 USDC = 1,000,000 quote units).
 */
export const QUOTE_ASSET = 'USDC';

/**
 * Quote units as whole units of the quote asset for messages, thousands
 * grouped and trailing zeros of the fraction dropped: 1234500000 → "1,234.5 USDC".
 */
export function quoteText(amountQuote: bigint): string {
  const [whole, fraction] = quoteDecimal(amountQuote).split('.') as [string, string];
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const cut = fraction.replace(/0+$/, '');
  return `${grouped}${cut === '' ? '' : `.${cut}`} ${QUOTE_ASSET}`;
}
