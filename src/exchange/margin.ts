// Cross margin (docs/exchange.md, "Margin"). Everything at the mark price, in
// bigint quote units, with what an account owes rounded up.
//
//   equity      = cash + Σ size × mark × k
//   exposure_m  = max(|size + restingBuy|, |size − restingSell|) lots (worst case of resting orders)
//   initial     = Σ ceil(exposure_m × mark × k × imf_m(notional) / 10^6)
//   imf_m(n)    = min(10^6, initialMarginPpm + floor(n / imfStepQuote) × imfStepPpm)
//   maintenance = Σ ceil(|size| × mark × k × maintenanceMarginPpm / 10^6)
//
// Cost: O(markets) per account.

import { divBig } from '../lib/int.ts';
import type { Account, ExchangeState, MarketState } from './state.ts';
import { PPM, ppmCeil } from './units.ts';

export function equityQuote(state: ExchangeState, account: Account): bigint {
  let equity = account.cashQuote;
  if (account.positionCount === 0) return equity;
  const markets = state.markets;
  for (let i = 0; i < markets.length; i++) {
    const size = account.positions[i]!.sizeLots;
    if (size !== 0) {
      const m = markets[i]!;
      equity += BigInt(size) * BigInt(m.markTicks) * m.k;
    }
  }
  return equity;
}

export function imfPpm(market: MarketState, notional: bigint): number {
  const p = market.params;
  if (p.imfStepPpm === 0) return p.initialMarginPpm;
  const steps = divBig(notional, p.imfStepQuote, 'floor');
  const ppm = BigInt(p.initialMarginPpm) + steps * BigInt(p.imfStepPpm);
  return ppm >= BigInt(PPM) ? PPM : Number(ppm);
}

export function exposureLots(sizeLots: number, buyLots: number, sellLots: number): number {
  return Math.max(Math.abs(sizeLots + buyLots), Math.abs(sizeLots - sellLots));
}

export function initialForExposure(market: MarketState, lots: number): bigint {
  if (lots === 0) return 0n;
  const notional = BigInt(lots) * BigInt(market.markTicks) * market.k;
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

export function maintenanceMarginQuote(state: ExchangeState, account: Account): bigint {
  if (account.positionCount === 0) return 0n;
  let total = 0n;
  const markets = state.markets;
  for (let i = 0; i < markets.length; i++) {
    const size = account.positions[i]!.sizeLots;
    if (size === 0) continue;
    const m = markets[i]!;
    const notional = BigInt(Math.abs(size)) * BigInt(m.markTicks) * m.k;
    total += ppmCeil(notional, m.params.maintenanceMarginPpm);
  }
  return total;
}

/** Equity above initial margin (may be negative). */
export function freeCollateralQuote(state: ExchangeState, account: Account): bigint {
  return equityQuote(state, account) - initialMarginQuote(state, account);
}
