// Pre-trade checks of the circuit breakers (docs/derivatives.md, "Circuit
// breakers"): price bands around the mark and open-interest caps. Pure, O(1).
// They return a rejection (code and reason) or null; the codes are to join
// REJECT_CODES in src/exchange/errors.ts when these are wired in.

import { divBig } from '../../lib/int.ts';

export type BreakerCode = 'PriceOutsideBand' | 'OpenInterestCapExceeded';

export interface BreakerRejection {
  readonly code: BreakerCode;
  readonly message: string;
}

/**
 * The band [mark − d, mark + d] with d = max(1, floor(mark × bandPpm / 10^6)),
 * the low end at least 1 tick. At least one tick each side: a cheap market's
 * (an option's mark of a few ticks) would otherwise be the mark alone, where a
 * bid and an ask can only cross and a limit set before the mark moved fails.
 */
export function priceBand(markTicks: number, bandPpm: number): [number, number] {
  const d = Math.max(1, Number(divBig(BigInt(markTicks) * BigInt(bandPpm), 1_000_000n, 'floor')));
  return [Math.max(1, markTicks - d), markTicks + d];
}

/** An order priced more than bandPpm away from the mark is refused (both sides; a limit is a limit). */
export function checkPriceBand(
  priceTicks: number,
  markTicks: number,
  bandPpm: number,
): BreakerRejection | null {
  if (markTicks <= 0) return null; // no mark yet: the oracle checks refuse the order instead
  const [lo, hi] = priceBand(markTicks, bandPpm);
  if (priceTicks >= lo && priceTicks <= hi) return null;
  return {
    code: 'PriceOutsideBand',
    message: `price ${priceTicks} outside [${lo}, ${hi}] around mark ${markTicks}`,
  };
}

/**
 * Open interest (the long side's lots) after a trade must not exceed the cap
 * when the trade raises it; a trade that lowers or keeps it always passes, so
 * positions can be closed above the cap.
 */
export function checkOpenInterestCap(
  openInterestLots: number,
  deltaLots: number,
  capLots: number,
): BreakerRejection | null {
  const after = openInterestLots + deltaLots;
  if (deltaLots <= 0 || after <= capLots) return null;
  return {
    code: 'OpenInterestCapExceeded',
    message: `open interest would be ${after} lots, above the cap of ${capLots}`,
  };
}

/**
 * How much a trade of `lots` between a buyer and a seller changes open
 * interest: +lots if both open, −lots if both close, else the difference.
 */
export function openInterestDelta(
  buyerSizeLots: number,
  sellerSizeLots: number,
  lots: number,
): number {
  const longBefore = Math.max(0, buyerSizeLots) + Math.max(0, sellerSizeLots);
  const longAfter = Math.max(0, buyerSizeLots + lots) + Math.max(0, sellerSizeLots - lots);
  return longAfter - longBefore;
}
