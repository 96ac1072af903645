// Cross margin (docs/exchange.md, "Margin"). Everything at the mark price, in
// bigint quote units, with what an account owes rounded up.
//
//   equity      = cash + Σ size × mark × k
//   exposure_m  = max(|size + restingBuy|, |size − restingSell|) lots (worst case of resting orders)
//   initial     = Σ ceil(exposure_m × mark × k × imf_m(notional) / 10^6)
//   imf_m(n)    = min(10^6, initialMarginPpm + floor(n / imfStepQuote) × imfStepPpm)
//   maintenance = ceil(Σ |size| × mark × k × maintenanceMarginPpm / 10^6)
//   (one rounding over the sum, so "equity < maintenance" needs no division:
//   for an integer equity it is equity × 10^6 < Σ |size| × mark × k × ppm)
//
// Cost: O(markets) per account.

import { divBig } from '../lib/int.ts';
import type { Account, ExchangeState, MarketState } from './state.ts';
import { PPM, PPM_BIG, ppmCeil } from './units.ts';

export function equityQuote(state: ExchangeState, account: Account): bigint {
  let equity = account.cashQuote;
  if (account.positionCount === 0) return equity;
  const markets = state.markets;
  for (let i = 0; i < markets.length; i++) {
    const size = account.positions[i]!.sizeLots;
    if (size !== 0) equity += BigInt(size) * markets[i]!.markQuotePerLot;
  }
  return equity;
}

/** Σ |size| × mark × k × maintenanceMarginPpm: the maintenance margin × 10^6, unrounded. */
function maintenanceScaled(state: ExchangeState, account: Account): bigint {
  let total = 0n;
  const markets = state.markets;
  for (let i = 0; i < markets.length; i++) {
    const size = account.positions[i]!.sizeLots;
    if (size === 0) continue;
    const m = markets[i]!;
    total += BigInt(size < 0 ? -size : size) * m.maintenancePerLotScaled;
  }
  return total;
}

export function maintenanceMarginQuote(state: ExchangeState, account: Account): bigint {
  if (account.positionCount === 0) return 0n;
  return divBig(maintenanceScaled(state, account), PPM_BIG, 'ceil');
}

/**
 * equity < maintenance, without a division (see above), in one pass:
 * cash × 10^6 < Σ |size| × (maintenance per lot × 10^6 ∓ value per lot × 10^6).
 * Cost: O(markets), one bigint product per position.
 */
export function belowMaintenance(state: ExchangeState, account: Account): boolean {
  if (account.positionCount === 0) return false;
  let threshold = 0n;
  const markets = state.markets;
  for (let i = 0; i < markets.length; i++) {
    const size = account.positions[i]!.sizeLots;
    if (size === 0) continue;
    const m = markets[i]!;
    threshold += size > 0 ? BigInt(size) * m.longBelowCoef : BigInt(-size) * m.shortBelowCoef;
  }
  return account.cashQuote * PPM_BIG < threshold;
}

export function imfPpm(market: MarketState, notional: bigint): number {
  const p = market.params;
  if (p.imfStepPpm === 0 || notional < p.imfStepQuote) return p.initialMarginPpm;
  const steps = divBig(notional, p.imfStepQuote, 'floor');
  const ppm = BigInt(p.initialMarginPpm) + steps * BigInt(p.imfStepPpm);
  return ppm >= BigInt(PPM) ? PPM : Number(ppm);
}

export function exposureLots(sizeLots: number, buyLots: number, sellLots: number): number {
  return Math.max(Math.abs(sizeLots + buyLots), Math.abs(sizeLots - sellLots));
}

export function initialForExposure(market: MarketState, lots: number): bigint {
  if (lots === 0) return 0n;
  const notional = BigInt(lots) * market.markQuotePerLot;
  return ppmCeil(notional, imfPpm(market, notional));
}

/**
 * Initial margin of the account with its resting orders; `extra` adds an
 * incoming order of extraLots on extraSide in market `extraMarket`.
 */
export function initialMarginQuote(
  state: ExchangeState,
  account: Account,
  extraMarket = -1,
  extraBuyLots = 0,
  extraSellLots = 0,
): bigint {
  let total = 0n;
  const markets = state.markets;
  for (let i = 0; i < markets.length; i++) {
    const m = markets[i]!;
    const size = account.positions[i]!.sizeLots;
    let buy = m.book.ownerRestingLots(account.index, 'buy');
    let sell = m.book.ownerRestingLots(account.index, 'sell');
    if (i === extraMarket) {
      buy += extraBuyLots;
      sell += extraSellLots;
    }
    if (size === 0 && buy === 0 && sell === 0) continue;
    total += initialForExposure(m, exposureLots(size, buy, sell));
  }
  return total;
}

/** Equity above initial margin (may be negative). */
export function freeCollateralQuote(state: ExchangeState, account: Account): bigint {
  return equityQuote(state, account) - initialMarginQuote(state, account);
}

export interface OrderMargin {
  /** Initial margin with the resting orders, without and with the incoming order. */
  before: bigint;
  after: bigint;
  equity: bigint;
}

const orderMargin: OrderMargin = { before: 0n, after: 0n, equity: 0n };

/**
 * Everything the placement check needs in one pass over the markets: the
 * initial margin before and after adding buyLots/sellLots of resting exposure
 * in one market, and equity. The returned record is reused by the next call.
 */
export function marginForOrder(
  state: ExchangeState,
  account: Account,
  marketIndex: number,
  buyLots: number,
  sellLots: number,
): OrderMargin {
  let before = 0n;
  let delta = 0n;
  let equity = account.cashQuote;
  const markets = state.markets;
  const owner = account.index;
  for (let i = 0; i < markets.length; i++) {
    const m = markets[i]!;
    const size = account.positions[i]!.sizeLots;
    if (size !== 0) equity += BigInt(size) * m.markQuotePerLot;
    const buy = m.book.ownerRestingLots(owner, 'buy');
    const sell = m.book.ownerRestingLots(owner, 'sell');
    const exposure = size === 0 && buy === 0 && sell === 0 ? 0 : exposureLots(size, buy, sell);
    const im = initialForExposure(m, exposure);
    before += im;
    if (i === marketIndex) {
      const grown = exposureLots(size, buy + buyLots, sell + sellLots);
      if (grown !== exposure) delta = initialForExposure(m, grown) - im;
    }
  }
  orderMargin.before = before;
  orderMargin.after = before + delta;
  orderMargin.equity = equity;
  return orderMargin;
}

/**
 * The liquidation scan's memo for a safe account: how many ticks every mark
 * it holds a position in may move, from the marks of now, before the account
 * could fall below maintenance. With safety S = cash × 10^6 − Σ |size| ×
 * coefficient (≥ 0, see belowMaintenance) and, per market, the change of the
 * threshold per tick c = k × (|size| × mm − size × 10^6),
 *   slack = floor(S / Σ |c|)
 * since a move of at most `slack` ticks in each market changes the threshold
 * by at most Σ |c| × slack ≤ S. Every change to the account marks it, and
 * marked accounts are checked in full. Cost: O(markets), one bigint division.
 */
export function liquidationSlack(state: ExchangeState, account: Account): void {
  account.slackTicks = -1;
  if (account.positionCount === 0) return;
  let threshold = 0n;
  let perTick = 0n;
  const markets = state.markets;
  for (let i = 0; i < markets.length; i++) {
    const size = account.positions[i]!.sizeLots;
    account.slackMarks[i] = markets[i]!.markTicks;
    if (size === 0) continue;
    const m = markets[i]!;
    if (size > 0) {
      threshold += BigInt(size) * m.longBelowCoef;
      perTick += BigInt(size) * m.k * (PPM_BIG - m.maintenancePpmBig);
    } else {
      threshold += BigInt(-size) * m.shortBelowCoef;
      perTick += BigInt(-size) * m.k * (PPM_BIG + m.maintenancePpmBig);
    }
  }
  const safety = account.cashQuote * PPM_BIG - threshold;
  if (safety < 0n) return;
  const slack = divBig(safety, perTick, 'floor');
  account.slackTicks = slack > SAFE_MAX ? Number.MAX_SAFE_INTEGER : Number(slack);
}

const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);
