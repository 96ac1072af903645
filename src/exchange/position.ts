// Position arithmetic: one trade moves cash between two accounts at the trade
// price and changes both positions, exactly. Cost: O(1).

import { divBig, divTrunc } from '../lib/int.ts';
import { assert } from '../lib/assert.ts';
import type { Account, ExchangeState, MarketState } from './state.ts';
import { Position } from './state.ts';

/**
 * An account's record in a market: the dense array for a genesis market
 * (O(1)), a binary search of the account's listed records otherwise
 * (O(log records)); undefined when it has none there.
 */
export function positionOf(account: Account, market: MarketState): Position | undefined {
  const i = market.index;
  if (!market.listed) return account.positions[i];
  const list = account.listed;
  let lo = 0;
  let hi = list.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const m = list[mid]!.market;
    if (m === i) return list[mid];
    if (m < i) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

/** Signed position size in a market (0 without a record). */
export function sizeIn(account: Account, market: MarketState): number {
  return positionOf(account, market)?.sizeLots ?? 0;
}

/** The account's record in a market, created (in index order) when missing. Marks the account. */
export function ensurePosition(
  state: ExchangeState,
  market: MarketState,
  account: Account,
): Position {
  const found = positionOf(account, market);
  if (found !== undefined) return found;
  const p = new Position(market.index);
  const list = account.ownListed();
  let at = list.length;
  while (at > 0 && list[at - 1]!.market > market.index) at--;
  list.splice(at, 0, p);
  market.records.add(account);
  state.markAccount(account);
  return p;
}

/**
 * Changes an account's position in a market by deltaLots (signed) at
 * priceTicks: cash pays the notional, cost basis and realized PnL follow.
 * Closing part of a position removes a pro-rata share of its cost basis,
 * truncated toward zero (the truncation stays in the basis of the rest).
 */
export function applyTrade(
  state: ExchangeState,
  market: MarketState,
  account: Account,
  deltaLots: number,
  priceTicks: number,
): void {
  assert(deltaLots !== 0, 'empty trade');
  const k = market.k;
  const kNum = market.kNum;
  const position = ensurePosition(state, market, account);
  const old = position.sizeLots;
  // Safe integers first (margin.ts, "Safe integers"): one bigint per result instead of a chain of them.
  const tradeNum = deltaLots * priceTicks * kNum;
  const safe = kNum >= 0 && Number.isSafeInteger(tradeNum);
  // On the numbers the state holds (state.ts, moneyNum) when the trade is a safe integer.
  const tradeQuote = safe ? 0n : BigInt(deltaLots) * BigInt(priceTicks) * k;
  if (safe) account.addCash(-tradeNum);
  else account.cashQuote -= tradeQuote;
  if (old === 0 || old > 0 === deltaLots > 0) {
    if (safe) position.addCostBasis(tradeNum);
    else position.costBasisQuote += tradeQuote;
  } else {
    const closeLots = Math.min(Math.abs(deltaLots), Math.abs(old));
    const closeSigned = deltaLots > 0 ? closeLots : -closeLots;
    // The number while the basis is a safe integer (NaN beyond: the bigint path).
    const basisNum = Number.isNaN(position.costBasisNum) ? SAFE_OUT : position.costBasisNum;
    const removedScaled = basisNum * closeLots;
    const closeNum = closeSigned * priceTicks * kNum;
    if (kNum >= 0 && Number.isSafeInteger(removedScaled) && Number.isSafeInteger(closeNum)) {
      const removedNum = divTrunc(removedScaled, Math.abs(old));
      const pnl = -closeNum - removedNum;
      if (Number.isSafeInteger(pnl)) position.addRealizedPnl(pnl);
      else position.realizedPnlQuote += -BigInt(closeNum) - BigInt(removedNum);
      position.addCostBasis(-removedNum);
    } else {
      const basis = position.costBasisQuote;
      const removed = closedBasisQuote(basis, closeLots, old);
      position.realizedPnlQuote += -(BigInt(closeSigned) * BigInt(priceTicks) * k) - removed;
      position.costBasisQuote -= removed;
    }
    const openLots = Math.abs(deltaLots) - closeLots;
    if (openLots > 0) {
      assert(position.costBasisNum === 0, 'flipped position keeps a basis');
      position.costBasisQuote = openedBasisQuote(deltaLots, openLots, priceTicks, k);
    }
  }
  const size = old + deltaLots;
  assert(Number.isSafeInteger(size), 'position size overflows');
  position.sizeLots = size;
  if (size === 0) position.costBasisQuote = 0n;
  setOpenInterest(market, account, old, size);
  state.markAccount(account);
}

/**
 * The part of a position's cost basis that closing `closeLots` of it takes
 * away: a pro-rata share, truncated toward zero (the truncation stays in
 * the basis of the rest). The number path of applyTrade computes the same
 * with divTrunc.
 */
function closedBasisQuote(costBasisQuote: bigint, closeLots: number, sizeLots: number): bigint {
  return divBig(costBasisQuote * BigInt(closeLots), BigInt(Math.abs(sizeLots)), 'trunc');
}

/** The cost basis of the `openLots` a trade of deltaLots (signed) opened on the other side. */
function openedBasisQuote(
  deltaLots: number,
  openLots: number,
  priceTicks: number,
  k: bigint,
): bigint {
  return BigInt(deltaLots > 0 ? openLots : -openLots) * BigInt(priceTicks) * k;
}

/**
 * A position's cost basis after a trade of deltaLots (signed) at priceTicks,
 * as applyTrade books it, from its size and basis before, with nothing
 * changed: for replaying a position's trades outside the state (the node's
 * read model tells the entry a closed position had from it). O(1).
 */
export function costBasisAfterTrade(
  k: bigint,
  sizeLots: number,
  costBasisQuote: bigint,
  deltaLots: number,
  priceTicks: number,
): bigint {
  assert(deltaLots !== 0, 'empty trade');
  if (sizeLots === 0 || sizeLots > 0 === deltaLots > 0)
    return costBasisQuote + BigInt(deltaLots) * BigInt(priceTicks) * k;
  if (sizeLots + deltaLots === 0) return 0n;
  const closeLots = Math.min(Math.abs(deltaLots), Math.abs(sizeLots));
  const openLots = Math.abs(deltaLots) - closeLots;
  if (openLots > 0) return openedBasisQuote(deltaLots, openLots, priceTicks, k);
  return costBasisQuote - closedBasisQuote(costBasisQuote, closeLots, sizeLots);
}

/** Beyond the safe integers: sends a computation to the bigint path. */
const SAFE_OUT = 2 ** 53;

/** Keeps open interest, the holder set and the account's position count in step with a size change. */
function setOpenInterest(market: MarketState, account: Account, old: number, size: number): void {
  if (old > 0) market.longLots -= old;
  else if (old < 0) market.shortLots += old;
  if (size > 0) market.longLots += size;
  else if (size < 0) market.shortLots -= size;
  if (old === 0 && size !== 0) {
    market.holders.add(account);
    account.positionCount++;
  } else if (old !== 0 && size === 0) {
    market.holders.delete(account);
    account.positionCount--;
  }
  market.dirty = true;
}
