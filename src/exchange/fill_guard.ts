// The collateral check of every fill (docs/exchange.md, "Fills and equity"),
// after dYdX v4, which checks both subaccounts of every match: a fill may not
// lower an account's equity (at the block's marks, fees included) below zero.
//  - the maker: a resting order whose fill would do so is cancelled instead
//    (event makerCancelled) and the taker goes on against the next order;
//  - the taker: its order stops before the first fill that would do so (the
//    lots that keep its equity at zero or above trade); the remainder is
//    cancelled (reason InsufficientEquity), never rested.
// A fill at a price that gains against the mark by more than its fee lowers
// nothing and always passes. A liquidation's own order is not checked (it is
// bounded by the bankruptcy price); its makers are. Its order past the
// bankruptcy price is checked as a taker whose loss counts from that price
// and whose budget is the insurance fund, which pays that loss.
//
// Cost, per fill: O(markets of the maker) on safe integers (its equity), the
// bigint functions as fallback. The taker is checked per fill only when the
// order, filled in full at its limit, could take it below zero (placement
// decides once, takerLeftQuote); otherwise nothing is added for it.
// Fees: the taker's own tier (fixed for an order, as settleFills takes it);
// the maker at the highest maker fee of the tiers, an upper bound of what its
// fill is charged (its tier may move with the order's earlier fills). The
// tiers are the schedule in force (state.feeTiers, which governance may
// change between two transactions), their bounds read from the state at each
// use: the guard keeps no copy.

import { divBig, divCeil } from '../lib/int.ts';
import type { FillGuard } from './book/index.ts';
import { equityQuote, equityQuoteNum } from './margin.ts';
import type { Account, ExchangeState, MarketState } from './state.ts';
import { PPM, PPM_BIG, ppmCeil } from './units.ts';

const SAFE = Number.MAX_SAFE_INTEGER;

/**
 * A taker's loss against the mark of its whole order filled at its limit
 * (fee included): when its equity covers it, no fill can take it below zero.
 * Returns null then, else its equity (where the per-fill check starts).
 * equityNum: its equity on safe integers when the caller has it, else NaN.
 */
export function takerLeftQuote(
  state: ExchangeState,
  market: MarketState,
  account: Account,
  buy: boolean,
  limitTicks: number,
  sizeLots: number,
  takerFeePpmMax: number,
  equityNum: number,
): bigint | null {
  const awayTicks = buy ? limitTicks - market.markTicks : market.markTicks - limitTicks;
  const kNum = market.kNum;
  if (equityNum === equityNum && kNum >= 0) {
    const notional = limitTicks * sizeLots * kNum;
    const adverse = awayTicks > 0 ? awayTicks * sizeLots * kNum : 0;
    const scaled = notional * takerFeePpmMax;
    if (notional <= SAFE && adverse <= SAFE && scaled <= SAFE) {
      if (equityNum - adverse - divCeil(scaled, PPM) >= 0) return null;
    }
  }
  const equity = equityQuote(state, account);
  const notional = BigInt(limitTicks) * BigInt(sizeLots) * market.k;
  const adverse = awayTicks > 0 ? BigInt(awayTicks) * BigInt(sizeLots) * market.k : 0n;
  return equity - adverse - ppmCeil(notional, takerFeePpmMax) >= 0n ? null : equity;
}

/**
 * Whether `lots` at priceTicks leave the taker's equity now at zero or above
 * (or lower nothing), its fee at takerFeePpm included: the guard's test of a
 * taker's fill (EquityGuard.admitsTaker), from its equity as it stands.
 * O(markets).
 */
export function takerCanFill(
  state: ExchangeState,
  market: MarketState,
  account: Account,
  buy: boolean,
  priceTicks: number,
  lots: number,
  takerFeePpm: number,
): boolean {
  const away = buy ? priceTicks - market.markTicks : market.markTicks - priceTicks;
  const n = BigInt(lots);
  const loss =
    BigInt(away) * n * market.k + ppmCeil(BigInt(priceTicks) * n * market.k, takerFeePpm);
  return loss <= 0n || equityQuote(state, account) - loss >= 0n;
}

/**
 * Matching passes so far, over every guard of the process: an account's
 * guardEpoch can only equal the pass that wrote it, whichever exchange it
 * belongs to (a counter per guard would restart and meet old stamps).
 */
let passes = 0;

let last: EquityGuard | null = null;

/** The state's guard (one per state, reused while the same state runs). */
export function equityGuard(state: ExchangeState): EquityGuard {
  if (last === null || last.state !== state) last = new EquityGuard(state);
  return last;
}

/**
 * The guard the book calls before each fill of one order (book/types.ts,
 * FillGuard). Set up with `arm` before each book operation; one instance per
 * exchange, reused.
 */
export class EquityGuard implements FillGuard {
  readonly state: ExchangeState;
  private market: MarketState | null = null;
  private takerBuys = false;
  /** The taker's equity at the start, or null when it is not checked. */
  private takerStart: bigint | null = null;
  private takerLeft = 0n;
  private takerPpm = 0;
  /** The price the taker's loss is counted from: the mark, or a liquidation's bankruptcy price. */
  private takerFromTicks = 0;
  /** This matching pass's epoch: makers' losses within it add up on the account. */
  private epoch = 0;

  constructor(state: ExchangeState) {
    this.state = state;
  }

  /**
   * The highest taker fee of the schedule in force: placement's bound
   * (takerLeftQuote). Read from the state at each use, as the maker's bound
   * is, so a schedule governance sets applies from the next order on.
   */
  get takerPpmMax(): number {
    return this.state.feeTakerPpmMax;
  }

  /**
   * Before a book operation of a taker on `buy`'s side in `market`; takerLeft
   * from takerLeftQuote (null: the taker is not checked), takerFeePpm its tier's.
   * fromTicks: the price the taker's loss is counted from, the mark unless
   * given (a liquidation past its bankruptcy price counts from that price,
   * its budget being the insurance fund: liquidation.ts).
   */
  arm(
    market: MarketState,
    buy: boolean,
    takerLeft: bigint | null,
    takerFeePpm: number,
    fromTicks: number = market.markTicks,
  ): this {
    this.market = market;
    this.takerBuys = buy;
    this.takerStart = takerLeft;
    this.takerPpm = takerFeePpm;
    this.takerFromTicks = fromTicks;
    return this;
  }

  begin(): void {
    this.epoch = ++passes;
    if (this.takerStart !== null) this.takerLeft = this.takerStart;
  }

  admit(makerOwner: number, priceTicks: number, lots: number): number {
    let n = lots;
    if (this.takerStart !== null) {
      n = this.takerLots(priceTicks, lots);
      if (n === 0) return 0;
    }
    const maker = this.state.accounts[makerOwner]!;
    if (!this.makerAdmits(maker, priceTicks, n)) return -1;
    if (this.takerStart !== null) this.takerLeft -= this.takerLoss(priceTicks, n);
    return n;
  }

  /** The taker's loss against the mark (or fromTicks) of n lots at priceTicks, its fee included (may be < 0). */
  private takerLoss(priceTicks: number, n: number): bigint {
    const m = this.market!;
    const from = this.takerFromTicks;
    const away = this.takerBuys ? priceTicks - from : from - priceTicks;
    const lots = BigInt(n);
    return BigInt(away) * lots * m.k + ppmCeil(BigInt(priceTicks) * lots * m.k, this.takerPpm);
  }

  /** The most lots (≤ lots) the taker may take at priceTicks. Bigint: only for an order that could bankrupt it. */
  private takerLots(priceTicks: number, lots: number): number {
    const left = this.takerLeft;
    if (this.admitsTaker(priceTicks, lots)) return lots;
    if (left <= 0n) return 0;
    // loss(n) = n × perLot / 10^6 plus less than one unit (the fee's ceiling), so
    // the answer lies in [floor((left − 1) × 10^6 / perLot), floor(left × 10^6 / perLot)]:
    // a binary search there keeps a lower end that is admitted, O(log lots).
    const m = this.market!;
    const from = this.takerFromTicks;
    const away = this.takerBuys ? priceTicks - from : from - priceTicks;
    const perLotScaled =
      BigInt(away) * m.k * PPM_BIG + BigInt(priceTicks) * m.k * BigInt(this.takerPpm);
    if (perLotScaled <= 0n) return 0;
    const bound = (x: bigint): number => {
      const n = divBig(x * PPM_BIG, perLotScaled, 'floor');
      return n < 0n ? 0 : n >= BigInt(lots) ? lots - 1 : Number(n);
    };
    let lo = bound(left - 1n);
    let hi = bound(left);
    if (lo > 0 && !this.admitsTaker(priceTicks, lo)) lo = 0;
    while (lo < hi) {
      const mid = lo + divCeil(hi - lo, 2);
      if (this.admitsTaker(priceTicks, mid)) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Whether n lots at priceTicks lower nothing, or leave the taker's equity at zero or above. */
  private admitsTaker(priceTicks: number, n: number): boolean {
    const loss = this.takerLoss(priceTicks, n);
    return loss <= 0n || this.takerLeft - loss >= 0n;
  }

  /**
   * Whether a maker may be filled n lots at priceTicks: the fill gains, or its
   * equity less its earlier losses in this pass covers the loss (then recorded).
   */
  private makerAdmits(maker: Account, priceTicks: number, n: number): boolean {
    const m = this.market!;
    // The maker sells when the taker buys: it loses what the price is below the mark.
    const away = this.takerBuys ? m.markTicks - priceTicks : priceTicks - m.markTicks;
    if (maker.guardEpoch !== this.epoch) {
      maker.guardEpoch = this.epoch;
      maker.guardLossNum = 0;
    }
    const kNum = m.kNum;
    if (kNum >= 0) {
      const notional = priceTicks * n * kNum;
      const adverse = away * n * kNum;
      const scaled = notional * this.state.feeMakerPpmMax;
      if (notional <= SAFE && adverse <= SAFE && adverse >= -SAFE && scaled <= SAFE) {
        // The fee rounded up, as settleFills charges it (makerFeeQuoteNum).
        const loss = adverse + divCeil(scaled, PPM);
        if (loss <= 0) return true;
        const equity = equityQuoteNum(this.state, maker);
        const spent = maker.guardLossNum + loss;
        if (equity === equity && spent <= SAFE) {
          if (equity - spent < 0) return false;
          maker.guardLossNum = spent;
          return true;
        }
      }
    }
    const loss =
      BigInt(away) * BigInt(n) * m.k +
      ppmCeil(BigInt(priceTicks) * BigInt(n) * m.k, this.state.feeMakerPpmMax);
    if (loss <= 0n) return true;
    const spent = BigInt(maker.guardLossNum) + loss;
    // Losses past 2^53 quote units to one maker within one order are refused rather than tracked.
    if (spent > BigInt(SAFE)) return false;
    if (equityQuote(this.state, maker) - spent < 0n) return false;
    maker.guardLossNum = Number(spent);
    return true;
  }
}
