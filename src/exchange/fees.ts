// Trading fees (docs/exchange.md, "Fees"). The taker pays ceil(notional ×
// taker fee); a maker pays ceil(notional × maker fee) or, when the fee is
// negative, receives floor(notional × |maker fee|). Genesis guarantees the
// smallest taker fee covers the largest rebate, so every fill adds
// ceil(n·t) − floor(n·r) ≥ 0 to the fee pool: the pool never goes negative.
// Cost: O(tiers) per account lookup (tiers ≤ FEE_TIERS_MAX).

import type { FeeTier } from './genesis.ts';
import type { Account, ExchangeState } from './state.ts';
import { ppmCeil, ppmFloor } from './units.ts';

export function feeTier(state: ExchangeState, account: Account): FeeTier {
  const tiers = state.genesis.feeTiers;
  for (let i = tiers.length - 1; i > 0; i--) {
    if (account.volumeQuote >= tiers[i]!.volumeQuoteMin) return tiers[i]!;
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
