// A reference model of the European options and dated futures lifecycle,
// written from docs/exchange.md ("Orders", "Fees", "Dated futures and
// options") and docs/derivatives.md ("Settlement", "Option marks", "Option
// margin"), not from src/exchange: premium cash flows and fees, the payoff and
// cash of a settlement, which orders a market refuses and with what code, and
// the documented floors of the scenario margin. Plain bigint arithmetic with
// its own roundings. options_model.test.ts drives the exchange beside it.

import { ceilDiv, floorDiv } from './funding_reference.ts';

export { refSettlementCash, refSettlementPrice } from './funding_reference.ts';
export type { PricePoint } from './funding_reference.ts';

const PPM = 1_000_000n;

export interface RefTier {
  readonly volumeQuoteMin: bigint;
  readonly makerFeePpm: number;
  readonly takerFeePpm: number;
}

/** The tier of a lifetime volume: the highest whose minimum it reaches. */
export function refTier(tiers: readonly RefTier[], volumeQuote: bigint): RefTier {
  let out = tiers[0]!;
  for (const t of tiers) if (volumeQuote >= t.volumeQuoteMin) out = t;
  return out;
}

/** The taker pays ceil(n × takerFeePpm / 10^6). */
export function refTakerFee(tier: RefTier, notional: bigint): bigint {
  return ceilDiv(notional * BigInt(tier.takerFeePpm), PPM);
}

/** The maker pays ceil(n × fee / 10^6), or receives floor(n × |fee| / 10^6) (negative here). */
export function refMakerFee(tier: RefTier, notional: bigint): bigint {
  const ppm = BigInt(tier.makerFeePpm);
  return ppm >= 0n ? ceilDiv(notional * ppm, PPM) : -floorDiv(notional * -ppm, PPM);
}

/** Notional of a fill: price × lots × k, k = tickSizeQuote / lotsPerBase (the option's premium). */
export function refNotional(priceTicks: bigint, lots: bigint, k: bigint): bigint {
  return priceTicks * lots * k;
}

/**
 * What one fill moves into the taker's cash (the maker's is the opposite
 * notional less its own fee): a buyer pays the premium (or the future's
 * price) and its fee, a seller receives it less its fee.
 */
export function refFillCash(buy: boolean, notional: bigint, fee: bigint): bigint {
  return (buy ? -notional : notional) - fee;
}

/** Value per whole base unit at settlement: the price (future), max(0, S − K) or max(0, K − S). */
export function refSettlementValue(
  price: bigint,
  option: { strikeQuote: bigint; isCall: boolean } | null,
): bigint {
  if (option === null) return price;
  const payoff = option.isCall ? price - option.strikeQuote : option.strikeQuote - price;
  return payoff > 0n ? payoff : 0n;
}

/** What the gates in front of an order see of its market at the block's time. */
export interface RefOrderView {
  /** The name is live (listed and not settled) when the transaction runs. */
  readonly live: boolean;
  /** Its expiry is at or before the block's time. */
  readonly expired: boolean;
  /** It has a mark (an option: marked once at least). */
  readonly marked: boolean;
  /** The underlying's index is stale (no fresh price for more than staleAfterMs). */
  readonly indexStale: boolean;
  /** An option whose expiry has no smile refreshed within staleAfterMs. */
  readonly smileStale: boolean;
  readonly reduceOnly: boolean;
}

/**
 * The code an order is refused with before its own checks (size, price,
 * margin), or null when these gates let it through. "Orders on an expired
 * market are refused (MarketHalted)"; an option "without a smile … has no
 * mark and takes no orders (NoOraclePrice)"; "a smile older than the
 * oracle's staleAfterMs counts as none", and an option that keeps its last
 * mark meanwhile takes, as any market whose price source is stale, only
 * reduce-only orders (OracleStale).
 */
export function refOrderGate(v: RefOrderView): string | null {
  if (!v.live) return 'UnknownInstrument';
  if (v.expired) return 'MarketHalted';
  if (!v.marked) return 'NoOraclePrice';
  if (v.indexStale && !v.reduceOnly) return 'OracleStale';
  if (v.smileStale && !v.reduceOnly) return 'OracleStale';
  return null;
}

/**
 * The floor of a short option's margin: shortOptionMinPpm of the forward per
 * whole base unit, per lot (exact rational, rounded down here so that the
 * margin, rounded up, must be at least this).
 */
export function refShortMinFloor(
  shortLots: bigint,
  forwardQuote: bigint,
  shortOptionMinPpm: number,
  lotsPerBase: bigint,
): bigint {
  return floorDiv(shortLots * forwardQuote * BigInt(shortOptionMinPpm), PPM * lotsPerBase);
}

/**
 * An option without a fresh smile (docs/exchange.md, "Margin without a fresh
 * smile"), for `shortLots` short, rounded down like refShortMinFloor:
 * `requirement` is the per-lot minimum; `loss`, in full in initial and in
 * maintenance, the option's intrinsic value at the forward above its kept mark
 * (`markPerLot`, quote per lot); `cushion`, all of it in initial and half in
 * maintenance, is 15% of the forward less the amount out of the money, at
 * least 10%, per whole base unit.
 */
export function refUnshockedShortFloors(
  shortLots: bigint,
  forwardQuote: bigint,
  option: { strikeQuote: bigint; isCall: boolean },
  markPerLot: bigint,
  shortOptionMinPpm: number,
  lotsPerBase: bigint,
): { requirement: bigint; loss: bigint; cushion: bigint } {
  const inMoney = option.isCall
    ? forwardQuote - option.strikeQuote
    : option.strikeQuote - forwardQuote;
  const intrinsic = inMoney > 0n ? inMoney : 0n;
  const unseen = intrinsic * shortLots - markPerLot * lotsPerBase * shortLots;
  const requirement = refShortMinFloor(shortLots, forwardQuote, shortOptionMinPpm, lotsPerBase);
  const loss = unseen > 0n ? floorDiv(unseen, lotsPerBase) : 0n;
  const outOfMoney = inMoney < 0n ? -inMoney : 0n;
  const a = forwardQuote * 150_000n - outOfMoney * PPM;
  const b = forwardQuote * 100_000n;
  const cushion = floorDiv(shortLots * (a > b ? a : b), PPM * lotsPerBase);
  return { requirement, loss, cushion };
}

/** maintenance = ceil(requirement × maintenancePpm / 10^6). */
export function refMaintenanceOf(requirementQuote: bigint, maintenancePpm: number): bigint {
  return ceilDiv(requirementQuote * BigInt(maintenancePpm), PPM);
}
