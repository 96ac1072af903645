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
// Cost: O(markets the account holds a record in) per account.
//
// Records in listed markets (dated futures, options) are margined by
// listed_margin.ts: an account holding options of an underlying is margined
// by scenario on its options and dated futures of that underlying. Such an
// account takes the bigint path everywhere and has no liquidation slack.
//
// Safe integers: the placement check runs first on numbers (marginForOrderNum),
// which is exact while every intermediate is a safe integer: a sum or product
// of safe integers whose true value is within ±(2^53 − 1) is computed exactly,
// and one whose true value is beyond it comes out beyond it too (rounding is
// monotone and ±2^53 are doubles), so checking each intermediate against
// MAX_SAFE_INTEGER tells an exact result from an inexact one. Any check that
// fails sends the whole computation to the bigint path, which is the
// reference; a property test holds the two equal, near 2^53 included.

import { divBig, divCeil, divFloor } from '../lib/int.ts';
import { listedMargin } from './listed_margin.ts';
import type { Account, ExchangeState, MarketState } from './state.ts';
import { PPM, PPM_BIG, ppmCeil } from './units.ts';

export function equityQuote(state: ExchangeState, account: Account): bigint {
  let equity = account.cashQuote;
  if (account.positionCount === 0) return equity;
  const markets = state.markets;
  const positions = account.positions;
  for (let i = 0; i < positions.length; i++) {
    const size = positions[i]!.sizeLots;
    if (size !== 0) equity += BigInt(size) * markets[i]!.markQuotePerLot;
  }
  for (const p of account.listed) {
    if (p.sizeLots !== 0) equity += BigInt(p.sizeLots) * markets[p.market]!.markQuotePerLot;
  }
  return equity;
}

/**
 * equityQuote on safe integers, or NaN when an amount leaves them (or the
 * account holds listed records): then equityQuote decides. O(markets).
 */
export function equityQuoteNum(state: ExchangeState, account: Account): number {
  // cashNum is NaN when the cash is beyond the safe integers.
  const cash = account.cashNum;
  if (cash !== cash || account.listed.length !== 0) return NaN;
  let equity = cash;
  if (account.positionCount === 0) return equity;
  const markets = state.markets;
  const positions = account.positions;
  for (let i = 0; i < positions.length; i++) {
    const size = positions[i]!.sizeLots;
    if (size === 0) continue;
    const perLot = markets[i]!.markQuotePerLotNum;
    const value = size * perLot;
    equity += value;
    if (perLot < 0 || value > SAFE || value < -SAFE || equity > SAFE || equity < -SAFE) return NaN;
  }
  return equity;
}

/** Σ |size| × mark × k × maintenanceMarginPpm: the maintenance margin × 10^6, unrounded. */
function maintenanceScaled(state: ExchangeState, account: Account): bigint {
  let total = 0n;
  const markets = state.markets;
  const positions = account.positions;
  for (let i = 0; i < positions.length; i++) {
    const size = positions[i]!.sizeLots;
    if (size === 0) continue;
    const m = markets[i]!;
    total += BigInt(size < 0 ? -size : size) * m.maintenancePerLotScaled;
  }
  return total;
}

export function maintenanceMarginQuote(state: ExchangeState, account: Account): bigint {
  if (account.positionCount === 0) return 0n;
  const dense = divBig(maintenanceScaled(state, account), PPM_BIG, 'ceil');
  if (account.listed.length === 0) return dense;
  return dense + listedMargin(state, account, null, 0, 0).maintenanceQuote;
}

/**
 * equity < maintenance, without a division (see above), in one pass:
 * cash × 10^6 < Σ |size| × (maintenance per lot × 10^6 ∓ value per lot × 10^6).
 * Cost: O(markets), one bigint product per position.
 */
export function belowMaintenance(state: ExchangeState, account: Account): boolean {
  if (account.positionCount === 0) return false;
  if (account.listed.length !== 0) {
    return equityQuote(state, account) < maintenanceMarginQuote(state, account);
  }
  let threshold = 0n;
  const markets = state.markets;
  const positions = account.positions;
  for (let i = 0; i < positions.length; i++) {
    const size = positions[i]!.sizeLots;
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
  const positions = account.positions;
  for (let i = 0; i < positions.length; i++) {
    const m = markets[i]!;
    const size = positions[i]!.sizeLots;
    let buy = m.restingLots(account.index, 'buy');
    let sell = m.restingLots(account.index, 'sell');
    if (i === extraMarket) {
      buy += extraBuyLots;
      sell += extraSellLots;
    }
    if (size === 0 && buy === 0 && sell === 0) continue;
    total += initialForExposure(m, exposureLots(size, buy, sell));
  }
  const extra = extraMarket >= 0 ? markets[extraMarket]! : null;
  if (account.listed.length !== 0 || (extra !== null && extra.listed)) {
    const listed = extra !== null && extra.listed ? extra : null;
    total += listedMargin(state, account, listed, extraBuyLots, extraSellLots).initialQuote;
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
  if (account.listed.length !== 0 || state.markets[marketIndex]!.listed) {
    orderMargin.before = initialMarginQuote(state, account);
    orderMargin.after = initialMarginQuote(state, account, marketIndex, buyLots, sellLots);
    orderMargin.equity = equityQuote(state, account);
    return orderMargin;
  }
  let before = 0n;
  let delta = 0n;
  let equity = account.cashQuote;
  const markets = state.markets;
  const owner = account.index;
  const positions = account.positions;
  for (let i = 0; i < positions.length; i++) {
    const m = markets[i]!;
    const size = positions[i]!.sizeLots;
    if (size !== 0) equity += BigInt(size) * m.markQuotePerLot;
    const buy = m.restingLots(owner, 'buy');
    const sell = m.restingLots(owner, 'sell');
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

const SAFE = Number.MAX_SAFE_INTEGER;
const SAFE_BIG = BigInt(SAFE);

/** ceil(x × ppm / 10^6) for safe x ≥ 0 and 0 ≤ ppm ≤ 2 × 10^6, or −1 when the result is not safe. */
export function ppmCeilNum(x: number, ppm: number): number {
  // x × ppm may pass 2^53: split x = q × 10^6 + r, so x × ppm / 10^6 = q × ppm + r × ppm / 10^6.
  const q = divFloor(x, PPM);
  const whole = q * ppm;
  if (whole > SAFE) return -1;
  const result = whole + divCeil((x - q * PPM) * ppm, PPM);
  return result > SAFE ? -1 : result;
}

/** initialForExposure on numbers, or −1 when it leaves the safe integers. */
export function initialForExposureNum(market: MarketState, lots: number): number {
  if (lots === 0) return 0;
  const perLot = market.markQuotePerLotNum;
  const notional = lots * perLot;
  if (perLot < 0 || notional > SAFE) return -1;
  const p = market.params;
  const step = market.imfStepQuoteNum;
  // An unsafe step is above every safe notional: no step reached.
  if (p.imfStepPpm === 0 || step < 0 || notional < step) {
    return ppmCeilNum(notional, p.initialMarginPpm);
  }
  const steps = divFloor(notional, step);
  // imfStepPpm ≥ 1, so 10^6 steps or more reach the cap; below that the product is small.
  const ppm = steps >= PPM ? PPM : Math.min(PPM, p.initialMarginPpm + steps * p.imfStepPpm);
  return ppmCeilNum(notional, ppm);
}

/** marginForOrder's result on numbers (valid after marginForOrderNum returned true). */
export interface OrderMarginNum {
  before: number;
  after: number;
  equity: number;
}

const orderMarginNum: OrderMarginNum = { before: 0, after: 0, equity: 0 };

/**
 * marginForOrder on safe integers: the record (reused by the next call), or
 * undefined when an intermediate leaves the safe integers — then the caller
 * uses marginForOrder. Same cost, no bigint temporaries.
 */
export function marginForOrderNum(
  state: ExchangeState,
  account: Account,
  marketIndex: number,
  buyLots: number,
  sellLots: number,
): OrderMarginNum | undefined {
  const cash = account.cashNum;
  if (cash !== cash) return undefined;
  const markets = state.markets;
  if (account.listed.length !== 0 || markets[marketIndex]!.listed) return undefined;
  let equity = cash;
  let before = 0;
  let delta = 0;
  const owner = account.index;
  const positions = account.positions;
  for (let i = 0; i < positions.length; i++) {
    const m = markets[i]!;
    const size = positions[i]!.sizeLots;
    if (size !== 0) {
      const perLot = m.markQuotePerLotNum;
      const value = size * perLot;
      equity += value;
      if (perLot < 0 || value > SAFE || value < -SAFE || equity > SAFE || equity < -SAFE) {
        return undefined;
      }
    }
    const buy = m.restingLots(owner, 'buy');
    const sell = m.restingLots(owner, 'sell');
    const exposure = size === 0 && buy === 0 && sell === 0 ? 0 : exposureLots(size, buy, sell);
    const im = initialForExposureNum(m, exposure);
    if (im < 0) return undefined;
    before += im;
    if (before > SAFE) return undefined;
    if (i === marketIndex) {
      const grown = exposureLots(size, buy + buyLots, sell + sellLots);
      if (grown !== exposure) {
        const imGrown = initialForExposureNum(m, grown);
        if (imGrown < 0) return undefined;
        delta = imGrown - im;
      }
    }
  }
  const after = before + delta;
  if (after > SAFE) return undefined;
  orderMarginNum.before = before;
  orderMarginNum.after = after;
  orderMarginNum.equity = equity;
  return orderMarginNum;
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
  if (account.positionCount === 0 || account.listed.length !== 0) return;
  let threshold = 0n;
  let perTick = 0n;
  const markets = state.markets;
  const positions = account.positions;
  for (let i = 0; i < positions.length; i++) {
    const size = positions[i]!.sizeLots;
    positions[i]!.slackMarkTicks = markets[i]!.markTicks;
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
  // Longs only, at 100% maintenance: no mark move changes the threshold.
  if (perTick === 0n) {
    account.slackTicks = SAFE;
    return;
  }
  const slack = divBig(safety, perTick, 'floor');
  account.slackTicks = slack > SAFE_BIG ? SAFE : Number(slack);
}

/** What scanNum found (valid after it returned true). */
export const scanNumResult = { below: false };

/**
 * The liquidation scan's look at one account on safe integers: sets
 * scanNumResult.below to belowMaintenance(…) and the account's slack memo to a
 * value at most liquidationSlack's (a smaller slack only sends the account to
 * a full check sooner). False when an intermediate leaves the safe integers:
 * then nothing is set and the caller uses the bigint functions. With
 * n = |size| × mark × k = q × 10^6 + r per position, maintenance × 10^6 =
 * 10^6 × A + B with A = Σ q × mm and B = Σ r × mm (B < 10^12 per market), so
 *   below  ⟺  equity × 10^6 < 10^6 × A + B  ⟺  (equity − A) × 10^6 < B,
 * and with d = equity − A, P = Σ ceil(|size| × k × (10^6 ∓ mm) / 10^6) ≥ the
 * exact threshold change per tick / 10^6,
 *   slack = floor((d − ceil(B / 10^6)) / P)  ≤  liquidationSlack's floor(S / perTick).
 * Cost: O(markets), no bigint temporaries.
 */
export function scanNum(state: ExchangeState, account: Account): boolean {
  const cash = account.cashNum;
  if (account.positionCount === 0 || cash !== cash) return false;
  if (account.listed.length !== 0) return false;
  let equity = cash;
  let a = 0;
  let b = 0;
  let perTick = 0;
  const markets = state.markets;
  const positions = account.positions;
  for (let i = 0; i < positions.length; i++) {
    const m = markets[i]!;
    const size = positions[i]!.sizeLots;
    if (size === 0) continue;
    const perLot = m.markQuotePerLotNum;
    const lots = size < 0 ? -size : size;
    const notional = lots * perLot;
    if (perLot < 0 || m.kNum < 0 || notional > SAFE) return false;
    equity += size < 0 ? -notional : notional;
    const mm = m.params.maintenanceMarginPpm;
    const q = divFloor(notional, PPM);
    a += q * mm;
    b += (notional - q * PPM) * mm;
    const move = ppmCeilNum(lots * m.kNum, size > 0 ? PPM - mm : PPM + mm);
    if (move < 0 || lots * m.kNum > SAFE) return false;
    perTick += move;
    if (equity > SAFE || equity < -SAFE || a > SAFE || perTick > SAFE) return false;
  }
  const d = equity - a;
  if (d < -SAFE || perTick === 0) return false;
  // d × 10^6 beyond 2^53 is beyond B too, so the comparison stays right.
  scanNumResult.below = d < 0 || d * PPM < b;
  const room = d - divCeil(b, PPM);
  account.slackTicks = room < 0 ? -1 : divFloor(room, perTick);
  for (let i = 0; i < positions.length; i++) positions[i]!.slackMarkTicks = markets[i]!.markTicks;
  return true;
}
