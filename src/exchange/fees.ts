// Trading fees (docs/exchange.md, "Fees"). The taker pays ceil(notional ×
// taker fee); a maker pays ceil(notional × maker fee) or, when the fee is
// negative, receives floor(notional × |maker fee|). The schedule in force is
// genesis's, or the one governance last set (governance.ts, setFeeTiers);
// both are held to the same rules (genesis.ts checkFeeTiers), among them
// that the smallest taker fee covers the largest rebate, and a fill is
// charged both its fees by one schedule, so every fill adds
// ceil(n·t) − floor(n·r) ≥ 0 to the fee pool: the pool never goes negative.
// Cost: O(tiers) per account lookup (tiers ≤ FEE_TIERS_MAX).

import { divCeil, divFloor } from '../lib/int.ts';
import type { FeeTier } from './genesis.ts';
import type { Account, ExchangeState } from './state.ts';
import { PPM, ppmCeil, ppmFloor } from './units.ts';

export function feeTier(state: ExchangeState, account: Account): FeeTier {
  const tiers = state.feeTiers;
  // The number inline while it holds the volume (a number and a bigint compare exactly).
  const volume = Number.isNaN(account.volumeNum) ? account.volumeQuote : account.volumeNum;
  for (let i = tiers.length - 1; i > 0; i--) {
    if (volume >= tiers[i]!.volumeQuoteMin) return tiers[i]!;
  }
  return tiers[0]!;
}

export function takerFeeQuote(tier: FeeTier, notional: bigint): bigint {
  return ppmCeil(notional, tier.takerFeePpm);
}

/** Positive: paid by the maker; negative: a rebate to it. */
export function makerFeeQuote(tier: FeeTier, notional: bigint): bigint {
  const ppm = tier.makerFeePpm;
  return ppm >= 0 ? ppmCeil(notional, ppm) : -ppmFloor(notional, -ppm);
}

/**
 * takerFeeQuote and makerFeeQuote on a safe-integer notional (margin.ts, "Safe
 * integers"): undefined when notional × fee leaves the safe integers, and the
 * bigint versions must decide.
 */
export function takerFeeQuoteNum(tier: FeeTier, notional: number): number | undefined {
  const scaled = notional * tier.takerFeePpm;
  return Number.isSafeInteger(scaled) ? divCeil(scaled, PPM) : undefined;
}

export function makerFeeQuoteNum(tier: FeeTier, notional: number): number | undefined {
  const ppm = tier.makerFeePpm;
  const scaled = notional * (ppm >= 0 ? ppm : -ppm);
  if (!Number.isSafeInteger(scaled)) return undefined;
  return ppm >= 0 ? divCeil(scaled, PPM) : 0 - divFloor(scaled, PPM);
}
