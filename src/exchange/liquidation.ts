// Liquidation and auto-deleveraging (docs/exchange.md, "Liquidation").
//
// After a block's transactions, the exchange scans the accounts the block
// touched that hold positions, plus every holder of a market whose mark moved:
// O(those accounts × markets). An account whose equity is below its
// maintenance margin is liquidated, those that may close in this block first,
// then the largest shortfall below maintenance (byShortfall; ties in
// ascending account index), LIQUIDATIONS_PER_BLOCK_MAX of them per block
// that do more than cancel orders, LIQUIDATION_ATTEMPTS_PER_BLOCK_MAX
// attempts in all (one that does nothing at all reports no event:
// dropSilentSlices):
//   1. its resting orders are cancelled (book and auction; event
//      liquidationCancels, whether or not anything closes in this block);
//   2. if its equity is negative, the insurance fund covers what it can, when
//      a position of it can be closed in this block, and takes back what
//      equity the closes leave plus the cover's share for what stays open
//      (by the notional of all its positions at the marks), up to the cover:
//      all of it when nothing closed;
//   3. each position (ascending market) is closed through the book by an IOC
//      order limited at the position's bankruptcy price — the price at which
//      the account's equity would reach zero, rounded in the account's favour
//      by at most a tick, its equity counting options at kept marks: a long
//      only as far as it is sure to be worth, a short at what it surely or
//      (by its expiry's last smile) likely owes (unsureQuote, countedEquity;
//      such a slice does not go past it at the fund's expense), and no further from
//      the mark than the market's
//      price band, on the side that costs the account (withinBand): the
//      slice's price — a slice within the market's per-block liquidation
//      cap (charged by the lots that closed, at the mark; the rest waits for
//      the next block);
//      the taker pays no trading fee, makers get no rebate, and the account
//      pays a liquidation fee min(notional × liquidationFeePpm, liquidationFeeQuoteMax,
//      the notional counting the lots deleveraged in step 4 at the slice's price,
//      remaining equity, once the rest of the slice is deleveraged) to the insurance fund;
//      A slice that price monitoring stops (auction/call.ts) starts a call
//      auction; the rest waits for its uncross, and positions in a market in
//      an auction are not closed until then. What the book does not take at
//      the bankruptcy price goes through it again past that price, no further
//      than the mark ∓ a lot's maintenance margin (and the price band), the
//      insurance fund paying each fill's loss beyond the bankruptcy price as
//      far as it holds (closePastBankruptcy; price monitoring stops it
//      without an auction);
//   4. what the book could not absorb of the slice, at the bankruptcy price
//      or past it as far as the fund paid, is (but in an option without a
//      fresh mark, where it waits for one: keptMarkOnly)
//      deleveraged against opposite positions at the slice's price, ranked
//      by unrealized profit × notional / equity (highest first, then ascending
//      account index): O(holders log holders), only when it happens — so a
//      position above the cap shrinks by a slice every block, book or not;
//      a counterparty is closed only as far as its equity stays ≥ 0 (the
//      bankruptcy price is beyond the mark once the account's loss passed
//      its equity and the fund's), the rest going down the ranking;
//   5. an account left with no position and negative cash draws on the
//      insurance fund; what remains uncovered is a deficit, covered by
//      deposits to that account or, after every block's liquidations, by the
//      fund as it grows again (payDeficits); withdrawals pause while the
//      deficits and the other accounts below zero lack more than the fund
//      holds (withdraw.ts).

import { assert } from '../lib/assert.ts';
import { divBig, minBig, maxBig } from '../lib/int.ts';
import { LIQUIDATIONS_PER_BLOCK_MAX, LIQUIDATION_ATTEMPTS_PER_BLOCK_MAX } from '../lib/limits.ts';
import { priceBand } from './auction/bands.ts';
import { cancelAllInAuction, recordFills, startAuction, takerStopTicks } from './auction/call.ts';
import type { Side } from './book/index.ts';
import { applyTrade, positionOf, sizeIn } from './position.ts';
import {
  belowMaintenance,
  equityQuote,
  equityQuoteNum,
  maintenanceMarginQuote,
  liquidationSlack,
  scanNum,
  scanNumResult,
} from './margin.ts';
import { equityGuard } from './fill_guard.ts';
import { graceValuePerLotWad } from './listed_margin.ts';
import { WAD_PER_QUOTE } from './options/index.ts';
import { forgetMatched, forgetRemoved, settleFills } from './orders.ts';
import type { ExchangeEvent, Fill } from './results.ts';
import type { Account, ExchangeState, MarketState } from './state.ts';
import { PPM_BIG, notionalQuote, ppmCeil } from './units.ts';

export function isLiquidatable(state: ExchangeState, account: Account): boolean {
  return belowMaintenance(state, account);
}

/**
 * The price (ticks) at which this position's loss takes `equity` to zero: the
 * account's equity as the bankruptcy price counts it (countedEquity).
 */
export function bankruptcyTicks(market: MarketState, account: Account, equity: bigint): number {
  const size = sizeIn(account, market);
  const perTick = BigInt(Math.abs(size)) * market.k;
  const mark = BigInt(market.markTicks);
  const ticks =
    size > 0
      ? mark - divBig(equity, perTick, 'floor') // a long sells no lower: ceil of mark − E/(|s|k)
      : mark + divBig(equity, perTick, 'floor'); // a short buys no higher: floor of mark + E/(|s|k)
  if (ticks < 1n) return 1;
  return ticks > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(ticks);
}

/**
 * What the account's equity counts of its options held at a kept mark (no
 * fresh smile, no fresh index, a price the math refuses, or past expiry:
 * listing.ts) beyond what they are sure to be worth, other than `except`'s
 * (the market being closed, whose sale or purchase realizes its value): a
 * long's kept mark above its intrinsic value at this block's forward (the
 * least a European option is worth, rate 0: listed_margin.ts, rounded down;
 * all of the mark when the index is stale, no forward being observed), and
 * a short's intrinsic value above its kept mark (the least it owes, rounded
 * up), or, where its expiry's last smile values it (graceSmile: within the
 * grace of a stale smile or index and after it, before expiry), that value
 * at the forward (at the time its grace counts from) above its kept mark if
 * larger, as maintenance values it (listed_margin.ts, graceValuePerLotWad;
 * rounded up to a tick, as a mark is in ticks): its time value is owed as
 * likely as its intrinsic value, and a position closed beside it at a price
 * that spent it would leave the account below zero once a fresh smile marks
 * it. The forward is this block's, or with a stale index the last one
 * observed (forwardNowQuote, held), at which maintenance values the short
 * too: the likeliest forward with none observed since, so that the two
 * still agree on what the short owes once its index goes stale.
 * Liabilities count at their likely value, assets at their sure value: a
 * long within the grace keeps its intrinsic value, and a long with a stale
 * index is sure of nothing. A short's value has no bound above short of the
 * underlying itself. O(the account's listed records), and for a short at a
 * kept mark the scenario values maintenance built (built again only when
 * not current).
 */
export function unsureQuote(state: ExchangeState, account: Account, except: MarketState): bigint {
  let total = 0n;
  for (const p of account.listed) {
    if (p.sizeLots === 0) continue;
    const m = state.markets[p.market]!;
    const option = m.instrument;
    if (m === except || option.kind !== 'option' || m.optionMark !== null) continue;
    const long = p.sizeLots > 0;
    // A long is sure of its intrinsic value only at an observed forward; a
    // short owes it at the last one, held while the index is stale (as
    // maintenance takes it: listed_margin.ts, scenarioOf).
    const forward = long && m.oracleStale ? 0n : m.forwardNowQuote;
    const inMoney =
      forward <= 0n
        ? 0n
        : option.isCall
          ? forward - option.strikeQuote
          : option.strikeQuote - forward;
    const lots = BigInt(p.sizeLots < 0 ? -p.sizeLots : p.sizeLots);
    const kept = lots * m.markQuotePerLot;
    const base = BigInt(m.params.lotsPerBase);
    if (long) {
      const sure = inMoney > 0n ? divBig(inMoney * lots, base, 'floor') : 0n;
      if (kept > sure) total += kept - sure;
    } else {
      let owed = inMoney > 0n ? divBig(inMoney * lots, base, 'ceil') : 0n;
      // The model at that forward (none without one ever observed).
      const model = forward > 0n ? graceValuePerLotWad(state, m) : null;
      if (model !== null) {
        // In whole ticks, rounded up: a fresh mark of no more than that value
        // (halfEven to a tick: listing.ts) owes no more than this.
        const ticks = divBig(model, m.k * WAD_PER_QUOTE, 'ceil');
        const likely = lots * ticks * m.k;
        if (likely > owed) owed = likely;
      }
      if (owed > kept) total += owed - kept;
    }
  }
  return total;
}

/**
 * The equity a bankruptcy price is taken from: the account's equity, less
 * what its kept option marks count beyond what the options are sure to be
 * worth (unsureQuote), no lower than zero for that (a close at the mark then,
 * which costs nobody anything); an equity already below zero as it is (the
 * loss past it falls on the fund and then the counterparties, as it did).
 * Without such options, the equity itself.
 */
function countedEquity(equity: bigint, unsure: bigint): bigint {
  if (unsure === 0n || equity <= 0n) return equity;
  return maxBig(equity - unsure, 0n);
}

export function coverFromInsurance(
  state: ExchangeState,
  account: Account,
  shortfall: bigint,
  events: ExchangeEvent[],
): void {
  const cover = minBig(shortfall, state.insuranceQuote);
  if (cover <= 0n) return;
  state.insuranceQuote -= cover;
  account.cashQuote += cover;
  state.markAccount(account);
  events.push({ type: 'insuranceCover', account: account.index, amountQuote: cover });
}

/**
 * Ranks opposite positions for deleveraging: highest profit × leverage first,
 * unrealized PnL × notional / equity, compared exactly (cross-multiplied; the
 * equity at least one quote unit). A score rounded to whole quote units would
 * tie every counterparty whose profit × notional is below its equity, a
 * profitable one with little leverage among them, and leave them to index order.
 */
function adlQueue(state: ExchangeState, market: MarketState, long: boolean): Account[] {
  const mark = BigInt(market.markTicks) * market.k;
  const ranked: { account: Account; weight: bigint; equity: bigint }[] = [];
  for (const account of market.holders) {
    const position = positionOf(account, market)!;
    if (position.sizeLots > 0 !== long) continue;
    const value = BigInt(position.sizeLots) * mark;
    const pnl = value - position.costBasisQuote;
    const notional = value < 0n ? -value : value;
    const equity = maxBig(equityQuote(state, account), 1n);
    ranked.push({ account, weight: pnl * notional, equity });
  }
  ranked.sort((a, b) => {
    const x = a.weight * b.equity;
    const y = b.weight * a.equity;
    return x > y ? -1 : x < y ? 1 : a.account.index - b.account.index;
  });
  return ranked.map((r) => r.account);
}

/**
 * How many of `lots` a counterparty can close at priceTicks without its equity
 * going below zero (the rule of every fill, fill_guard.ts). At or better than
 * the mark, all of them; beyond it (the bankrupt account's loss went past its
 * equity and the insurance fund's), floor(equity / loss per lot), no fee.
 * buys: the counterparty buys back a short.
 */
function solventLots(
  state: ExchangeState,
  market: MarketState,
  other: Account,
  buys: boolean,
  priceTicks: number,
  lots: number,
): number {
  const awayTicks = buys ? priceTicks - market.markTicks : market.markTicks - priceTicks;
  if (awayTicks <= 0) return lots;
  const equity = equityQuote(state, other);
  if (equity <= 0n) return 0;
  const most = divBig(equity, BigInt(awayTicks) * market.k, 'floor');
  return most < BigInt(lots) ? Number(most) : lots;
}

function deleverage(
  state: ExchangeState,
  market: MarketState,
  account: Account,
  lots: number,
  priceTicks: number,
  events: ExchangeEvent[],
): number {
  const size = sizeIn(account, market);
  const queue = adlQueue(state, market, size < 0);
  let remaining = lots;
  for (const other of queue) {
    if (remaining === 0) break;
    const take = solventLots(
      state,
      market,
      other,
      size > 0,
      priceTicks,
      Math.min(remaining, Math.abs(sizeIn(other, market))),
    );
    if (take === 0) continue;
    const signed = size > 0 ? -take : take;
    applyTrade(state, market, account, signed, priceTicks);
    applyTrade(state, market, other, -signed, priceTicks);
    remaining -= take;
    events.push({
      type: 'deleverage',
      market: market.params.instrument,
      account: account.index,
      counterparty: other.index,
      sizeLots: take,
      priceTicks,
    });
  }
  // Every counterparty left is at zero equity: the rest waits for the next
  // block (new positions, or marks that move), which scans this market again.
  if (remaining > 0) {
    market.liquidationBacklog = true;
    market.dirty = true;
  }
  return lots - remaining;
}

/** Σ price × lots × k of the fills of the book's last operation. */
function bookNotional(market: MarketState): bigint {
  const fills = market.book.fills;
  let notional = 0n;
  for (let i = 0; i < fills.length; i++) {
    notional += notionalQuote(fills.priceTicks[i]!, fills.sizeLots[i]!, market.k);
  }
  return notional;
}

/** One liquidationFill event per fill of a liquidation's order. */
function pushFills(
  market: MarketState,
  account: Account,
  orderId: number,
  side: Side,
  fills: readonly Fill[],
  events: ExchangeEvent[],
): void {
  for (const f of fills) {
    events.push({
      type: 'liquidationFill',
      market: market.params.instrument,
      account: account.index,
      orderId,
      side,
      makerAccount: f.makerAccount,
      makerOrderId: f.makerOrderId,
      priceTicks: f.priceTicks,
      sizeLots: f.sizeLots,
      makerFeeQuote: f.makerFeeQuote,
    });
  }
}

/**
 * How far past the bankruptcy price the insurance fund pays for a close: the
 * mark ∓ the maintenance margin of a lot, max(1, floor(mark ×
 * maintenanceMarginPpm / 10^6)) ticks (as dYdX bounds its liquidations'
 * fillable price by the maintenance margin), at least 1 tick, and within
 * the market's price band when it has one. Without it, an account's owner
 * resting a bid far below the mark would be paid the whole fund for buying
 * its own liquidated position.
 */
function fundLimitTicks(market: MarketState, sell: boolean): number {
  const mark = market.markTicks;
  const d = Math.max(1, Number(divBig(BigInt(mark) * market.maintenancePpmBig, PPM_BIG, 'floor')));
  // mark ≤ INDEX_TICKS_MAX (2^52 − 1) and d ≤ mark: mark + d stays a price.
  let limit = sell ? Math.max(1, mark - d) : mark + d;
  const bandPpm = market.params.priceBandPpm;
  if (bandPpm !== undefined) {
    const [lo, hi] = priceBand(mark, bandPpm);
    limit = sell ? Math.max(limit, lo) : Math.min(limit, hi);
  }
  return limit;
}

const NOTHING_PAST = { lots: 0, notional: 0n } as const;

/**
 * Step 3b (docs/exchange.md, "Liquidation and deleveraging"), after dYdX v4:
 * the part of the slice the book did not take at the bankruptcy price goes
 * through the book again, by an IOC order limited at fundLimitTicks, and the
 * insurance fund pays each fill's loss beyond the bankruptcy price,
 * lots × (bankruptcy − price) × k for a sale (the other way for a purchase),
 * exact. The account so ends each of these fills as if it had filled at the
 * bankruptcy price, at zero equity or above (what the bankruptcy price's
 * rounding left it), and the fund loses what the account gains. The fund is
 * the order's budget (the fill guard, counting the loss from the bankruptcy
 * price): the order stops before the first lot the fund cannot pay in full,
 * so it never pays more than it holds. Price monitoring stops it as any
 * IOC: before a price outside the triggers' bounds, starting no auction (the
 * rest has a place to go, deleveraging). Its makers are checked as any
 * maker. No order id is spent and nothing happens when the fund is empty,
 * the limit is not past the bankruptcy price, or no other account's order
 * lies within it. Event insuranceCover with what the fund paid, after the
 * order's liquidationFill events. Returns the lots filled and their notional.
 */
function closePastBankruptcy(
  state: ExchangeState,
  market: MarketState,
  account: Account,
  side: Side,
  bankruptcy: number,
  lots: number,
  events: ExchangeEvent[],
): { readonly lots: number; readonly notional: bigint } {
  const fund = state.insuranceQuote;
  if (fund <= 0n) return NOTHING_PAST;
  const sell = side === 'sell';
  const limit = fundLimitTicks(market, sell);
  if (sell ? limit >= bankruptcy : limit <= bankruptcy) return NOTHING_PAST;
  const book = market.book;
  if (book.firstOtherTicks(side, account.index, limit, 'cancelResting') === undefined) {
    return NOTHING_PAST;
  }
  const orderId = state.nextOrderId++;
  book.place({
    orderId,
    owner: account.index,
    side,
    priceTicks: limit,
    sizeLots: lots,
    timeInForce: 'IOC',
    stopTicks: takerStopTicks(market, side, limit, state.timeMs, account.index, 'cancelResting'),
    guard: equityGuard(state).arm(market, !sell, fund, 0, bankruptcy),
  });
  forgetMatched(state, market, account, events);
  const notional = bookNotional(market);
  let paid = 0n;
  const fills = book.fills;
  for (let i = 0; i < fills.length; i++) {
    const beyond = sell ? bankruptcy - fills.priceTicks[i]! : fills.priceTicks[i]! - bankruptcy;
    paid += BigInt(fills.sizeLots[i]!) * BigInt(beyond) * market.k;
  }
  const fillsOut: Fill[] = [];
  const filled = settleFills(state, market, account, side, true, fillsOut);
  // Within the triggers' bounds (the book stopped before the first beyond).
  recordFills(market, book.fills, state.timeMs);
  pushFills(market, account, orderId, side, fillsOut, events);
  if (paid > 0n) {
    // The guard admitted no lot the fund could not pay.
    assert(paid <= state.insuranceQuote, 'a close past the bankruptcy price beyond the fund');
    state.insuranceQuote -= paid;
    account.cashQuote += paid;
    state.markAccount(account);
    events.push({ type: 'insuranceCover', account: account.index, amountQuote: paid });
  }
  return filled === 0 ? NOTHING_PAST : { lots: filled, notional };
}

/**
 * What a slice did beyond the lots it closed: started an auction, or ran the
 * deleveraging queue (O(holders log holders)) whether or not it found a
 * counterparty. Either takes one of the block's places (liquidate).
 */
const sliceWork = { acted: false };

/** Closes a slice of the account's position in the market; returns the lots closed (book and deleveraging). */
function closePosition(
  state: ExchangeState,
  market: MarketState,
  account: Account,
  events: ExchangeEvent[],
): number {
  const p = market.params;
  const size = sizeIn(account, market);
  const perLot = BigInt(market.markTicks) * market.k;
  const room = p.liquidationQuoteMaxPerBlock - market.liquidatedQuote;
  if (room <= 0n) {
    market.liquidationBacklog = true;
    market.dirty = true;
    return 0;
  }
  const roomLots = divBig(room, perLot, 'floor');
  const lots = Number(minBig(BigInt(Math.abs(size)), maxBig(roomLots, 1n)));
  const capped = lots < Math.abs(size);
  if (capped) {
    market.liquidationBacklog = true;
    market.dirty = true;
  }
  // A kept option mark beside the position counts only as far as the option
  // is sure to be worth: the unobserved rest is no equity to close at.
  const unsure = account.listed.length === 0 ? 0n : unsureQuote(state, account, market);
  const equity = equityQuote(state, account);
  const counted = countedEquity(equity, unsure);
  const bankruptcy = bankruptcyTicks(market, account, counted);
  const side = size > 0 ? 'sell' : 'buy';
  // The slice's price: the bankruptcy price, no further from the mark than
  // the market's price band, where a trader's order would be held.
  const limit = withinBand(market, side === 'sell', bankruptcy);
  const book = market.book;
  const orderId = state.nextOrderId++;
  const r = book.place({
    orderId,
    owner: account.index,
    side,
    priceTicks: limit,
    sizeLots: lots,
    timeInForce: 'IOC',
    // No stp given: the book's default, cancelResting, here and below.
    stopTicks: takerStopTicks(market, side, limit, state.timeMs, account.index, 'cancelResting'),
    // The bankruptcy price bounds the liquidated account; its makers are checked as any maker.
    guard: equityGuard(state).arm(market, side === 'buy', null, 0),
  });
  const triggered = r.reason === 'AuctionTriggered';
  forgetMatched(state, market, account, events);
  let notional = bookNotional(market);
  const fillsOut: Fill[] = [];
  let filled = settleFills(state, market, account, side, true, fillsOut);
  // A stopped slice starts its auction against the references it met, before
  // its fills are recorded (placeOrder); nothing below uses the book until then.
  if (!triggered) recordFills(market, book.fills, state.timeMs);
  pushFills(market, account, orderId, side, fillsOut, events);
  // What the book did not take at the bankruptcy price, past it as far as the
  // insurance fund pays the difference (step 3b); only the rest is deleveraged.
  // Not when the band held the slice short of the bankruptcy price: the
  // fund's limit, within the band, is then not past it.
  // Nor when kept option marks lowered the equity it was taken from: the
  // fund would pay for what the account's options may still be worth. Not in
  // part either: the fund paying only past what those options count would
  // spend their unobserved value (the account below zero once they are
  // marked lower, a loss for the fund), the fund paying all of it spares the
  // account a loss its options may cover; deleveraging the rest at the
  // slice's price costs nobody anything (docs/exchange.md, step 3).
  if (!triggered && filled < lots && counted === equity) {
    const past = closePastBankruptcy(
      state,
      market,
      account,
      side,
      bankruptcy,
      lots - filled,
      events,
    );
    filled += past.lots;
    notional += past.notional;
  }
  // The fee leaves what deleveraging the rest of the slice at the bankruptcy
  // price (below) takes: charged from the equity before it, it took the
  // account below zero, and its next market closed beyond the mark, at its
  // counterparties' expense. Fills past the bankruptcy price left the account
  // as at that price (the fund paid the difference): they count as the rest does.
  const restLots = triggered ? 0 : lots - filled;
  const awayTicks = side === 'sell' ? market.markTicks - limit : limit - market.markTicks;
  // A bankruptcy price beyond the mark (equity below zero) is a gain: it raises no fee.
  const restLossQuote = awayTicks > 0 ? BigInt(restLots) * BigInt(awayTicks) * market.k : 0n;
  const fee = minBig(
    minBig(ppmCeil(notional, p.liquidationFeePpm), p.liquidationFeeQuoteMax),
    // What the kept option marks count beyond their sure value is no equity to pay it from.
    maxBig(equityQuote(state, account) - unsure - restLossQuote, 0n),
  );
  account.cashQuote -= fee;
  state.insuranceQuote += fee;
  state.markAccount(account);
  const liquidation = {
    type: 'liquidation' as const,
    market: p.instrument,
    account: account.index,
    closedLots: filled,
    feeQuote: fee,
  };
  events.push(liquidation);
  // What the book could not absorb of this block's slice is deleveraged, capped
  // or not: otherwise a position above the cap facing an empty book would
  // never shrink. The cap bounds the slice; the rest waits for the next block.
  // A slice stopped by price monitoring waits for the auction's uncross instead.
  if (triggered) {
    sliceWork.acted = true;
    startAuction(market, side, state.timeMs, events, account.index, 'cancelResting');
    recordFills(market, book.fills, state.timeMs);
    market.liquidationBacklog = true;
    market.dirty = true;
  } else if (filled < lots && !keptMarkOnly(market)) {
    sliceWork.acted = true;
    const deleveraged = deleverage(state, market, account, lots - filled, limit, events);
    // The deleveraged lots pay the fee as lots the book took would have: a
    // slice the band held short of its bankruptcy price leaves the account
    // equity to pay it from (at the bankruptcy price it leaves at most a
    // tick's rounding), which a close through the book would have paid.
    const owed =
      minBig(
        ppmCeil(notional + BigInt(deleveraged) * BigInt(limit) * market.k, p.liquidationFeePpm),
        p.liquidationFeeQuoteMax,
      ) - fee;
    const extra = minBig(owed, maxBig(equityQuote(state, account) - unsure, 0n));
    if (extra > 0n) {
      account.cashQuote -= extra;
      state.insuranceQuote += extra;
      state.markAccount(account);
      liquidation.feeQuote = fee + extra;
    }
    filled += deleveraged;
  }
  // The cap is charged by what closed (at the mark): a slice that closed
  // nothing (a kept option mark without a bid, no counterparty able to take
  // the price) leaves the room to the market's next liquidation.
  market.liquidatedQuote += BigInt(filled) * perLot;
  return filled;
}

/**
 * A liquidation's price no further from the mark than the market's price
 * band (auction/bands.ts) on the side that costs the account: a sale no
 * lower than the band's low end, a purchase no higher than its high end.
 * Beyond the mark on the other side (a bankruptcy price past the mark: the
 * account's loss went beyond its equity and the fund's) it is unchanged: a
 * fill there gains the account, and a lower sale would take it further below
 * zero. Without a band, the price itself.
 */
function withinBand(market: MarketState, sell: boolean, ticks: number): number {
  const bandPpm = market.params.priceBandPpm;
  if (bandPpm === undefined) return ticks;
  const [lo, hi] = priceBand(market.markTicks, bandPpm);
  return sell ? Math.max(ticks, lo) : Math.min(ticks, hi);
}

/**
 * An option without a fresh mark (no fresh smile, or a price its math
 * refuses; a stale index is not closable at all): its kept mark is no price to
 * force on a counterparty. The bankruptcy price taken from it may lie below a
 * long's intrinsic value (or above what a short's option is worth), and the
 * loss beyond the account's equity, which the kept mark hides from the
 * insurance cover and from solventLots, would fall on the counterparty. The
 * book still takes what rests there; the rest waits for a fresh mark, which
 * looks at the option's holders again (listing.ts, remarkedHeight).
 */
function keptMarkOnly(market: MarketState): boolean {
  return market.instrument.kind === 'option' && market.optionMark === null;
}

/**
 * A stale index is no price to close at: the position waits for the oracle.
 * Nothing trades during a call auction: it waits for the uncross (which rescans).
 */
function closable(market: MarketState): boolean {
  return (
    !market.retired && !market.halted && !market.oracleStale && market.auction?.active !== true
  );
}

/** Cancels every resting order of the account, in every book, and reports them (liquidationCancels). */
function cancelRestingOf(state: ExchangeState, account: Account, events: ExchangeEvent[]): void {
  let cancelled = 0;
  for (const market of state.markets) {
    if (market.retired) continue;
    if (market.book.ownerOrderCount(account.index) > 0) {
      cancelled += market.book.cancelAll(account.index);
      forgetRemoved(state, market.book);
    }
    if (market.auction !== null) cancelled += cancelAllInAuction(state, market, account.index);
  }
  if (cancelled > 0)
    events.push({ type: 'liquidationCancels', account: account.index, orders: cancelled });
}

/**
 * Liquidates the account (steps 1 to 5). Returns whether it did anything but
 * cancel the account's orders (a fill, a fee, a cover kept, a draw on the
 * fund, a new deficit, an auction started, or the deleveraging queue run,
 * whether or not it found a counterparty): one that did not takes no place
 * among the block's LIQUIDATIONS_PER_BLOCK_MAX (runLiquidations), and costs
 * O(markets + its records + one IOC order); one that did not cancel any
 * order either reports nothing (dropSilentSlices).
 */
export function liquidate(
  state: ExchangeState,
  account: Account,
  events: ExchangeEvent[],
): boolean {
  const cashBefore = account.cashQuote;
  const fundBefore = state.insuranceQuote;
  const deficitBefore = state.deficits.has(account);
  sliceWork.acted = false;
  let closedLots = 0;
  const eventsBefore = events.length;
  // Reported whether or not anything closes in this block: the orders are gone either way.
  cancelRestingOf(state, account, events);
  // The fund covers a gap only for a close it makes possible: an account none
  // of whose positions can be closed in this block (halted, stale, in an
  // auction, or the market's cap spent) would keep the cover if prices came back.
  let anyClosable = false;
  for (const market of state.markets) {
    if (sizeIn(account, market) === 0 || !closable(market)) continue;
    if (market.liquidatedQuote < market.params.liquidationQuoteMaxPerBlock) anyClosable = true;
    else {
      // The rest waits for the next block, which scans this market's holders again.
      market.liquidationBacklog = true;
      market.dirty = true;
    }
  }
  if (anyClosable) {
    // The cover sets the bankruptcy price at the mark; a close that then fills
    // better than it leaves the account equity the fund paid for: that much
    // goes back, and the event reports the net cover.
    const equity = equityQuote(state, account);
    const cover = equity < 0n ? minBig(-equity, state.insuranceQuote) : 0n;
    const openBefore = cover > 0n ? heldNotional(state, account) : 0n;
    state.insuranceQuote -= cover;
    account.cashQuote += cover;
    for (const market of state.markets) {
      if (sizeIn(account, market) !== 0 && closable(market)) {
        closedLots += closePosition(state, market, account, events);
      }
    }
    if (cover > 0n) {
      // Nothing closed (price monitoring stopped the first fill, or no
      // counterparty could take a price beyond the mark): the whole cover goes
      // back, as when no market could close — kept, it would be the account's
      // if prices came back.
      // What stays open (a close cut short by the per-block cap or price
      // monitoring, positions in markets that could not close this block:
      // halted, stale, in an auction, cap spent) gives back the cover's share
      // for it, by notional at the marks, rounded up: kept, the fund's money
      // would carry those positions, theirs if prices came back (so one lot
      // in an open market does not unlock the cover of a halted position).
      // The account stays below zero and is covered as its positions close;
      // the fund holds the share meanwhile, which is what keeps withdrawals
      // going while it can cover all the accounts below zero (withdraw.ts).
      const openAfter = closedLots === 0 ? openBefore : heldNotional(state, account);
      const share = openBefore > 0n ? divBig(cover * openAfter, openBefore, 'ceil') : 0n;
      const back = minBig(cover, maxBig(equityQuote(state, account), 0n) + share);
      account.cashQuote -= back;
      state.insuranceQuote += back;
      state.markAccount(account);
      if (cover > back) {
        events.push({ type: 'insuranceCover', account: account.index, amountQuote: cover - back });
      }
    }
  }
  settleShortfall(state, account, events);
  const acted =
    closedLots > 0 ||
    sliceWork.acted ||
    account.cashQuote !== cashBefore ||
    state.insuranceQuote !== fundBefore ||
    state.deficits.has(account) !== deficitBefore;
  // An attempt that did nothing at all reports nothing (dropSilentSlices).
  if (!acted) dropSilentSlices(events, eventsBefore);
  return acted;
}

/**
 * An attempt that did nothing at all (no order cancelled, its own or a
 * maker's, nothing closed or paid, no auction, no deleveraging queue run)
 * reports nothing: an account stuck so (an option at a kept mark that nobody
 * bids or offers within its price) is attempted block after block, and its
 * slices' `liquidation` events, each of 0 lots for a fee of 0, would fill
 * every block's results. Removes the events from `from` on when they are
 * only such slices; otherwise (`liquidationCancels`, `makerCancelled`, ...)
 * the attempt did something and its events stay as they are. O(its events).
 */
function dropSilentSlices(events: ExchangeEvent[], from: number): void {
  for (let i = from; i < events.length; i++) {
    const e = events[i]!;
    if (e.type !== 'liquidation' || e.closedLots !== 0 || e.feeQuote !== 0n) return;
  }
  events.length = from;
}

/**
 * Σ |size| × mark × k over the account's positions, every market: what the
 * insurance cover's share for what stays open is weighed over. O(its records).
 */
function heldNotional(state: ExchangeState, account: Account): bigint {
  const markets = state.markets;
  let total = 0n;
  const positions = account.positions;
  for (let i = 0; i < positions.length; i++) {
    const size = positions[i]!.sizeLots;
    if (size !== 0) total += BigInt(Math.abs(size)) * markets[i]!.markQuotePerLot;
  }
  for (const p of account.listed) {
    if (p.sizeLots !== 0)
      total += BigInt(Math.abs(p.sizeLots)) * markets[p.market]!.markQuotePerLot;
  }
  return total;
}

/**
 * An account without positions and with negative cash draws on the insurance
 * fund; what stays uncovered is a deficit, until deposits to it or the fund,
 * once it grows again, cover it (payDeficits; withdrawals pause while the
 * accounts below zero lack more than the fund holds, withdraw.ts). Its
 * resting orders are cancelled first, as a liquidation's are: nothing backs
 * them, and one filling later would give a deficit
 * positions (which deficits never hold) or take its cash back above zero
 * unseen (deficits leave the set only when cash is put into them).
 */
export function settleShortfall(
  state: ExchangeState,
  account: Account,
  events: ExchangeEvent[],
): void {
  if (account.positionCount !== 0 || account.cashQuote >= 0n) return;
  cancelRestingOf(state, account, events);
  coverFromInsurance(state, account, -account.cashQuote, events);
  if (account.cashQuote < 0n) state.deficits.add(account);
}

/**
 * The insurance fund pays the deficits as far as it holds: in ascending
 * account index, each up to what it lacks (event insuranceCover); one brought
 * to zero cash leaves the set. Called once per block, after the block's
 * liquidations (exchange.ts): the fees and covers given back of this very
 * block count, the block's own liquidations drew on the fund first (a cover
 * there closes positions at the mark, which spares their counterparties), and
 * the fund never moves during the block's transactions, whose withdrawal
 * pause keeps a memo that assumes it does not (withdraw.ts). A payment moves
 * as much from the fund to an account below zero: what the accounts below
 * zero lack less the fund, which the pause weighs, is the same after it.
 * Sorted by index, not the set's order, which differs on a restored node.
 * O(1) without a deficit or without money in the fund, else
 * O(deficits log deficits).
 */
export function payDeficits(state: ExchangeState, events: ExchangeEvent[]): void {
  if (state.deficits.size === 0 || state.insuranceQuote <= 0n) return;
  const owed = [...state.deficits].sort((a, b) => a.index - b.index);
  for (const account of owed) {
    if (state.insuranceQuote <= 0n) break;
    // Marks the account for the digest; the fund and the set are in the globals leaf.
    coverFromInsurance(state, account, -account.cashQuote, events);
    if (account.cashQuote >= 0n) state.deficits.delete(account);
  }
}

/** Keeps the account's place in state.underwater: positions and negative equity. O(markets). */
export function setUnderwater(state: ExchangeState, account: Account): void {
  if (account.positionCount === 0) {
    state.underwater.delete(account);
    return;
  }
  const num = equityQuoteNum(state, account);
  const negative = num === num ? num < 0 : equityQuote(state, account) < 0n;
  if (negative) state.underwater.add(account);
  else state.underwater.delete(account);
}

/** What the account lacks to reach zero equity now (cash alone without positions), or 0. O(markets). */
export function shortfallOf(state: ExchangeState, account: Account): bigint {
  if (account.positionCount === 0) return account.cashQuote < 0n ? -account.cashQuote : 0n;
  const num = equityQuoteNum(state, account);
  if (num === num) return num < 0 ? BigInt(-num) : 0n;
  const equity = equityQuote(state, account);
  return equity < 0n ? -equity : 0n;
}

/**
 * The accounts below zero equity at the block's own marks, in the middle of
 * a block, changing nothing (withdraw.ts), each with what it lacks to reach
 * zero, into state.shortfalls and their sum into state.shortfallQuote:
 * the deficits, the accounts in state.underwater, those the block changed so
 * far, and the holders the end-of-block scan would look at for the markets
 * whose mark the block moved (state.marksBefore). Any other account has the
 * cash and the marks it had at the last scan, which put it in
 * state.underwater or the deficits, or found it not below zero; one within
 * its slack is above maintenance, so not below zero. So the set is every
 * account below zero, on a restored node too (whose scan looks at more
 * holders, in another order: only a sum and a set are kept). Cost: the
 * scan's look at those accounts, O(accounts × markets), without liquidating
 * any.
 */
export function unresolvedShortfalls(state: ExchangeState): void {
  const found = state.shortfalls;
  found.clear();
  let total = 0n;
  // Each account once: a changed holder comes again with its markets, a
  // deficit or an underwater account may have changed, and after a restore a
  // holder of several moved markets comes once per market.
  const seen = new Set<Account>();
  const test = (account: Account): void => {
    if (seen.has(account)) return;
    seen.add(account);
    const lacks = shortfallOf(state, account);
    if (lacks === 0n) return;
    found.set(account, lacks);
    total += lacks;
  };
  for (const account of state.deficits) test(account);
  for (const account of state.underwater) test(account);
  for (const account of state.dirtyAccounts) test(account);
  const before = state.marksBefore;
  const moved = state.markets.map((m, i) => m.markTicks !== before[i]);
  if (moved.includes(true)) {
    state.scan.peekMoved(state, moved, (a) => withinSlack(state, a), test);
  }
  state.shortfallQuote = total;
}

/**
 * After cash came into the account: what it lacks in the block's memo
 * (unresolvedShortfalls) is looked at again, and leaves it at zero. O(markets).
 * Nothing else within a block raises what an account lacks or takes a new one
 * below zero (every fill keeps equity ≥ 0 and lowers none below it,
 * fill_guard.ts; withdrawals and transfers keep it above initial margin;
 * marks, funding and the insurance fund move only outside the block's
 * transactions), so the memo's sum stays at least what the accounts lack
 * (a fill that gains an account below zero is seen by the next block's).
 */
export function shortfallLessened(state: ExchangeState, account: Account): void {
  if (state.shortfallHeight !== state.height) return;
  const was = state.shortfalls.get(account);
  if (was === undefined) return;
  const lacks = shortfallOf(state, account);
  state.shortfallQuote -= was - lacks;
  if (lacks === 0n) state.shortfalls.delete(account);
  else state.shortfalls.set(account, lacks);
}

/** Unchanged since its slack was taken, and no mark it is exposed to moved further than it. */
function withinSlack(state: ExchangeState, account: Account): boolean {
  const slack = account.slackTicks;
  // An account with listed records has no slack (margin.ts): it is never here.
  if (slack < 0) return false;
  const markets = state.markets;
  const positions = account.positions;
  for (let i = 0; i < positions.length; i++) {
    if (positions[i]!.sizeLots === 0) continue;
    const moved = markets[i]!.markTicks - positions[i]!.slackMarkTicks;
    if (moved > slack || -moved > slack) return false;
  }
  return true;
}

/**
 * Liquidates every account below maintenance among those the block touched
 * and the holders of markets whose mark moved (marksMoved[i]), in byShortfall's
 * order. Each account is looked at once per block.
 */
export function runLiquidations(
  state: ExchangeState,
  touched: readonly Account[],
  marksMoved: readonly boolean[],
  events: ExchangeEvent[],
): void {
  const due: Account[] = [];
  const short: Account[] = [];
  const height = state.height;
  const schedule = state.scan;
  schedule.begin(state);
  const look = (account: Account): void => {
    if (account.scannedHeight === height) return;
    account.scannedHeight = height;
    if (account.positionCount === 0) {
      account.slackTicks = -1;
      if (state.underwater.size !== 0) state.underwater.delete(account);
      // Out of its last position with negative cash (a fill that closes does not
      // check margin, a maker's fill does not): a shortfall as after a liquidation.
      if (account.cashQuote < 0n && !state.deficits.has(account)) short.push(account);
    } else if (scanNum(state, account)) {
      if (scanNumResult.below) due.push(account);
      else if (state.underwater.size !== 0) state.underwater.delete(account);
    } else {
      if (isLiquidatable(state, account)) due.push(account);
      else if (state.underwater.size !== 0) state.underwater.delete(account);
      liquidationSlack(state, account);
    }
    schedule.file(account);
  };
  // Touched accounts changed: full check, fresh bounds.
  for (const account of touched) look(account);
  // Holders of markets whose mark moved, unless within their slack.
  if (marksMoved.includes(true)) {
    schedule.visitMoved(state, marksMoved, (a) => withinSlack(state, a), look);
  }
  // O(1) each and never looked at again (no position): all of them, first.
  short.sort((a, b) => a.index - b.index);
  for (const account of short) settleShortfall(state, account, events);
  if (due.length > 1) byShortfall(state, due);
  // The places count the liquidations that happen: an account that an earlier
  // liquidation of this block took back above maintenance (the maker of its
  // close, or deleveraged at a gain) takes none, or one still below it further
  // down the list would wait a block for a place nobody used; nor does one
  // that did nothing but cancel its orders (an option at a kept mark without
  // a bid, every position waiting on a halted market): accounts stuck so,
  // block after block, would otherwise hold back every other liquidation.
  // Their work is bounded by the attempts instead, each O(markets + its
  // records + one IOC order), and they come after every account that may
  // close (byShortfall). One that ran the deleveraging queue, O(holders log
  // holders), takes a place even when the queue had no counterparty able to
  // take the price: those stay LIQUIDATIONS_PER_BLOCK_MAX a block.
  let next = 0;
  let liquidated = 0;
  let attempts = 0;
  while (
    next < due.length &&
    liquidated < LIQUIDATIONS_PER_BLOCK_MAX &&
    attempts < LIQUIDATION_ATTEMPTS_PER_BLOCK_MAX
  ) {
    const account = due[next++]!;
    if (!isLiquidatable(state, account)) continue;
    attempts++;
    if (liquidate(state, account, events)) liquidated++;
  }
  // Liquidations and deleveraging changed accounts after their bounds were
  // taken (every account they change is in `touched`, the block's marked list).
  if (due.length > 0) {
    const left: Account[] = [];
    for (const account of touched) {
      account.slackTicks = -1;
      schedule.file(account);
      setUnderwater(state, account);
      // A maker of a liquidation's close, or a deleveraged counterparty, was
      // looked at before the liquidations: one they left below maintenance is
      // due in the next block even if no mark moves (its slack of −1 only
      // sends it to a check when a mark moves).
      if (account.positionCount !== 0 && isLiquidatable(state, account)) backlog(state, account);
      else if (account.positionCount === 0 && account.cashQuote < 0n) left.push(account);
    }
    // An account already below zero whose last position another's
    // liquidation closed (as the maker of its close, or deleveraged at or
    // better than the mark: a gain, which may be less than it lacks) is
    // liquidated by no one: its own turn finds no position, or never comes
    // (past the block's count), and without positions no later scan looks
    // at it. Like a liquidated account, it goes to the fund, then to the
    // deficits (not one already there: payDeficits pays those). In ascending
    // index: the order of `touched` differs on a restored node, and the fund
    // may not cover them all.
    left.sort((a, b) => a.index - b.index);
    for (const account of left) {
      if (!state.deficits.has(account)) settleShortfall(state, account, events);
    }
  }
  // Above maintenance means equity ≥ 0; below it, after what the block could
  // liquidate, the account may still be under zero (halted, stale, in an
  // auction, past a cap), and withdrawals weigh it. An account not looked
  // at did not change and no mark it holds moved: its place stands.
  for (const account of due) setUnderwater(state, account);
  schedule.end();
  // Accounts beyond the per-block count wait: the next block rescans their markets.
  for (let i = next; i < due.length; i++) backlog(state, due[i]!);
}

/**
 * Sorts accounts below maintenance: those holding a position that may close
 * in this block first (its market not halted, stale or in an auction; an
 * option at a kept mark only when another account's order rests within the
 * slice's price, its equity after the fund's cover, or past it as far as
 * the fund pays, its only ways to close: mayClose), then
 * the largest shortfall (the maintenance margin less the equity, at the
 * block's marks), then ascending index. The per-block count and each market's
 * per-block notional go first to the accounts that put the most at risk, so
 * that many small accounts pushed below maintenance ahead of a large one
 * cannot hold its liquidation back while its loss grows (in index order,
 * accounts opened early went first, whatever their size); and accounts whose
 * every position waits on a halted market, whose shortfall does not shrink
 * meanwhile, cannot take every place block after block ahead of one that
 * could close. O(due × the records each holds), only for the accounts due.
 */
function byShortfall(state: ExchangeState, due: Account[]): void {
  const shortfall = new Map<Account, bigint>();
  const canClose = new Set<Account>();
  for (const account of due) {
    shortfall.set(account, maintenanceMarginQuote(state, account) - equityQuote(state, account));
    if (mayClose(state, account)) canClose.add(account);
  }
  due.sort((a, b) => {
    const ca = canClose.has(a);
    if (ca !== canClose.has(b)) return ca ? -1 : 1;
    const x = shortfall.get(a)!;
    const y = shortfall.get(b)!;
    return x === y ? a.index - b.index : x > y ? -1 : 1;
  });
}

/**
 * Whether the account holds a position that may close in this block: in a
 * market that can close, and, for an option at a kept mark (which only the
 * book closes: keptMarkOnly), with another account's order resting within
 * the slice's price, or past it within the fund's limit where the insurance
 * fund would pay the first lot's loss beyond the bankruptcy price (step 3b,
 * closePastBankruptcy): what the liquidation's orders would trade against.
 * That price is taken from the equity the slice would see: below zero,
 * raised by the insurance fund's cover as the fund holds now (liquidate
 * covers before its slices, the whole gap when the fund holds it, which
 * puts the price at the mark), and the fund past it is what the cover
 * leaves. A prediction: earlier liquidations of the block (and the
 * account's own earlier slices) may draw on the fund or take the order
 * first, and the makers' checks and price monitoring are not looked at.
 * O(its records), and O(its listed records²) with options at kept marks
 * (unsureQuote), not O(markets).
 */
export function mayClose(state: ExchangeState, account: Account): boolean {
  const markets = state.markets;
  const positions = account.positions;
  for (let i = 0; i < positions.length; i++) {
    if (positions[i]!.sizeLots !== 0 && closable(markets[i]!)) return true;
  }
  let equity: bigint | null = null;
  let fund = 0n;
  for (const p of account.listed) {
    if (p.sizeLots === 0) continue;
    const market = markets[p.market]!;
    if (!closable(market)) continue;
    if (!keptMarkOnly(market)) return true;
    const sell = p.sizeLots > 0;
    if (equity === null) {
      equity = equityQuote(state, account);
      fund = state.insuranceQuote;
      if (equity < 0n) {
        const cover = minBig(-equity, fund);
        equity += cover;
        fund -= cover;
      }
    }
    const unsure = unsureQuote(state, account, market);
    const counted = countedEquity(equity, unsure);
    const bankruptcy = bankruptcyTicks(market, account, counted);
    const limit = withinBand(market, sell, bankruptcy);
    // Past the slice's price as far as the fund pays for a close there
    // (step 3b, closePastBankruptcy: not when kept marks lowered the equity,
    // nor with the fund empty, nor when its limit is not past the slice's).
    let reach = limit;
    if (counted === equity && fund > 0n) {
      const past = fundLimitTicks(market, sell);
      if (sell ? past < limit : past > limit) reach = past;
    }
    const side = sell ? 'sell' : 'buy';
    const at = market.book.firstOtherTicks(side, account.index, reach, 'cancelResting');
    if (at === undefined) continue;
    // Within the slice's price, or past it where the fund pays a lot's loss
    // beyond the bankruptcy price (its order's budget, no fee).
    const beyond = sell ? bankruptcy - at : at - bankruptcy;
    if (beyond <= 0 || BigInt(beyond) * market.k <= fund) return true;
  }
  return false;
}

/** The next block rescans the holders of every market the account holds. */
function backlog(state: ExchangeState, account: Account): void {
  for (const market of state.markets) {
    if (!market.retired && sizeIn(account, market) !== 0) {
      market.liquidationBacklog = true;
      market.dirty = true;
    }
  }
}
