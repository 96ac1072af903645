// Dated futures and options as markets (docs/exchange.md, "Listing and
// settlement"). Each block, after the oracle step:
//   1. every settlement TWAP is fed the index (null while the underlying is
//      stale: that interval does not count);
//   2. each live listed market at or past its expiry whose TWAP has a price
//      settles: its orders are cancelled, every position is closed at the
//      settlement value (instruments/settlement.ts: longs paid rounded down,
//      shorts pay rounded up, the dust to the fee pool, so collateral is
//      conserved exactly), every account's record there is dropped, and the
//      market retires — its slot is free for a later listing. While the TWAP
//      has no price (stale through the window) the market waits, halted;
//   3. the instruments the schedule wants that are not live are listed
//      (listingsDue), each in the lowest free slot, from the genesis template
//      of its underlying and kind, with a TWAP per (underlying, expiry);
//   4. every option is marked (Black–Scholes on the expiry's smile, forward
//      from the expiry's future, else the index), unless its smile or its
//      underlying's index is stale: then it keeps its last mark.
// Cost: O(live listed markets) per block plus O(holders) per settlement and
// one Black–Scholes evaluation per option.

import { assert } from '../lib/assert.ts';
import { divFloor } from '../lib/int.ts';
import { LISTED_MARKETS_MAX } from '../lib/limits.ts';
import { OrderBook } from './book/index.ts';
import { LISTING_TIME_MS_MAX, LISTING_TIME_MS_MIN, listedTemplate } from './genesis.ts';
import type { Instrument, Listing } from './instruments/index.ts';
import {
  listingsDue,
  newTwap,
  observeTwap,
  settlePositions,
  settlementValueQuote,
} from './instruments/index.ts';
import { closeWithoutEffect, inEmergencyHalt } from './governance.ts';
import { settleShortfall } from './liquidation.ts';
import { computeMarkTicks, indexToTicks } from './mark.ts';
import { optionMark } from './options/index.ts';
import { UNSHOCKED_MAINTENANCE_GRACE_MS, forgetListedSums } from './listed_margin.ts';
import { priced } from './options/priced.ts';
import type { SmileFeed } from './oracle/aggregate.ts';
import { NEVER, isStale, smileKey } from './oracle/aggregate.ts';
import { forgetOrder } from './orders.ts';
import { positionOf } from './position.ts';
import type { ExchangeEvent } from './results.ts';
import type { Account, ExchangeState } from './state.ts';
import { MarketState } from './state.ts';

/** The index of an underlying for listing and settlement: null while stale or never priced. */
function freshIndex(state: ExchangeState, underlying: string): bigint | null {
  const feed = state.oracle?.prices.get(underlying) ?? NEVER;
  if (feed.priceQuote <= 0n || isStale(feed, state.timeMs, state.oracleParams!)) return null;
  return feed.priceQuote;
}

function twapKey(m: MarketState): string {
  return smileKey(m.params.underlying, m.expiryMs);
}

/** Steps 1–4 above; a no-op without a genesis listing. */
export function runListing(
  state: ExchangeState,
  events: ExchangeEvent[],
  previousMs: number,
): void {
  if (state.listing === null) return;
  for (const [key, acc] of state.twaps) {
    const underlying = key.slice(0, key.lastIndexOf(':'));
    observeTwap(acc, state.timeMs, freshIndex(state, underlying));
  }
  const live: string[] = [];
  const toExpire: MarketState[] = [];
  for (const m of state.markets) {
    if (!m.listed || m.retired) continue;
    live.push(m.params.instrument);
    if (m.expiryMs <= state.timeMs) toExpire.push(m);
  }
  toExpire.sort((a, b) => (a.params.instrument < b.params.instrument ? -1 : 1));
  for (const m of toExpire) settleMarket(state, m, events);
  for (const m of state.markets) {
    // Past expiry and not settled: the TWAP waits for a fresh price; no trading meanwhile.
    if (m.listed && !m.retired && m.expiryMs <= state.timeMs && !m.halted) {
      m.halted = true;
      m.dirty = true;
      // Said like any other halt, so that a trader's feed shows why its
      // orders are refused until the settlement.
      events.push({ type: 'marketHalted', market: m.params.instrument });
    }
  }
  for (const [key, acc] of state.twaps) {
    if (acc.settlementPrice !== null && !hasLive(state, key)) state.twaps.delete(key);
  }
  // Names exist for years 2000–2099 only: outside them nothing is listed.
  if (state.timeMs >= LISTING_TIME_MS_MIN && state.timeMs < LISTING_TIME_MS_MAX) {
    const prices: Record<string, bigint> = {};
    for (const u of state.listing.schedule.underlyings) {
      const p = freshIndex(state, u.underlying);
      if (p !== null) prices[u.underlying] = p;
    }
    const due = listingsDue(state.listing.schedule, state.timeMs, prices, live);
    listDue(state, due.toList, events);
  }
  markOptions(state, previousMs);
}

function hasLive(state: ExchangeState, key: string): boolean {
  for (const m of state.markets) if (m.listed && !m.retired && twapKey(m) === key) return true;
  return false;
}

function listDue(state: ExchangeState, toList: readonly Listing[], events: ExchangeEvent[]): void {
  if (toList.length === 0) return;
  let live = 0;
  const free: number[] = [];
  for (const m of state.markets) {
    if (m.retired) free.push(m.index);
    else if (m.listed) live++;
  }
  // Listing goes on during an emergency halt, but a new market must not end it: it opens halted.
  const emergency = inEmergencyHalt(state);
  let nextFree = 0;
  for (const l of toList) {
    // A limit on everything: past it the schedule waits for settlements to free slots.
    if (live >= LISTED_MARKETS_MAX) break;
    const instrument = l.instrument;
    if (instrument.kind === 'perpetual') continue;
    const template = listedTemplate(state.listing!, instrument.underlying, instrument.kind);
    const params = { ...template, instrument: l.name };
    const index = nextFree < free.length ? free[nextFree++]! : state.markets.length;
    const m = new MarketState(index, params, instrument);
    m.marksKept = instrument.kind === 'option' && state.listing!.markIntervalMs !== undefined;
    state.markets[index] = m;
    state.marketByName.set(l.name, m);
    m.halted = emergency;
    live++;
    const key = twapKey(m);
    let acc = state.twaps.get(key);
    if (acc === undefined) {
      acc = newTwap(m.expiryMs);
      state.twaps.set(key, acc);
      observeTwap(acc, state.timeMs, freshIndex(state, params.underlying));
    }
    const feed = state.oracle!.prices.get(params.underlying) ?? NEVER;
    m.oracleStale = isStale(feed, state.timeMs, state.oracleParams!);
    if (instrument.kind === 'future' && feed.priceQuote > 0n) {
      m.indexTicks = indexToTicks(m, feed.priceQuote);
      m.setMark(computeMarkTicks(m));
    }
    events.push({ type: 'marketListed', market: l.name, expiryMs: m.expiryMs });
    if (emergency) events.push({ type: 'marketHalted', market: l.name });
  }
}

/**
 * Marks every live option: its smile and forward at this block. Without a
 * fresh smile or a fresh index the option keeps its last mark (0 before the first: no
 * orders, NoOraclePrice). Also run after a restore (`previousMs` null).
 *
 * With a genesis markIntervalMs, an option's mark is computed again only in
 * the first block of a new interval of block time (or when it has none); in
 * between it keeps the one in the state, whose forward, time and volatility
 * the market's leaf and the snapshot carry. After a restore those come from
 * the snapshot, so nothing is recomputed. Without it, every block marks every
 * option, and a restore recomputes the same marks from the same inputs.
 */
export function markOptions(state: ExchangeState, previousMs: number | null): void {
  if (state.listing === null || state.oracle === null) return;
  const interval = state.listing.markIntervalMs;
  const due =
    interval === undefined ||
    (previousMs !== null && divFloor(state.timeMs, interval) !== divFloor(previousMs, interval));
  const restoring = interval !== undefined && previousMs === null;
  const futures = new Map<string, MarketState>();
  for (const m of state.markets) {
    if (!m.retired && m.instrument.kind === 'future') futures.set(twapKey(m), m);
  }
  for (const m of state.markets) {
    if (m.retired || !m.listed) continue;
    const key = twapKey(m);
    if (m.instrument.kind === 'future') {
      m.forwardQuote = BigInt(m.markTicks) * m.params.tickSizeQuote;
      continue;
    }
    // A smile not refreshed for staleAfterMs is as none, like a stale price:
    // validators that stopped agreeing on the volatility must not leave an
    // old one marking (and margining) the option until its expiry.
    const held = state.oracle.smiles.get(key);
    const smile =
      held !== undefined && state.timeMs - held.updatedMs <= state.oracleParams!.staleAfterMs
        ? held
        : undefined;
    const feed = state.oracle.prices.get(m.params.underlying) ?? NEVER;
    const index = feed.priceQuote;
    // A stale index is no forward to price at, a fresh smile or not: an
    // option marked from it would lose its time value hour by hour at a price
    // nobody observed (in expectation an option's value does not decay while
    // nothing is known of its forward). It keeps its last mark, as a stale
    // perpetual or future keeps the last index's.
    const indexStale = isStale(feed, state.timeMs, state.oracleParams!);
    const future = futures.get(key);
    const forward =
      future !== undefined && future.markTicks > 0
        ? BigInt(future.markTicks) * future.params.tickSizeQuote
        : index; // index × e^(rT) with the rate 0
    const forwardMoved = m.forwardNowQuote !== forward;
    m.forwardNowQuote = forward;
    // Since when the option has been without a fresh smile or a fresh index,
    // for the grace its maintenance waits before taking its cushion: the
    // moment the first of them went stale (the other's moment, still to come
    // while it is fresh, is later); past expiry, the expiry, or that moment if
    // it came first (the oracle has dropped the smile by then: kept in
    // unshockedSinceMs, so that a smile stale for hours does not start the
    // grace again at expiry); none without a staleness to wait out (no smile
    // ever: never marked, so held by no one).
    //
    // While the option is not both fresh the grace keeps its start: the
    // earlier of the kept one and the one derived now, so that an index
    // coming back for a block while the smile stays stale (the derived start
    // then moving on to the smile's staleness) does not start it again. Both
    // fresh, it is cleared. Where the kept start is earlier than the derived
    // one it is state (graceEarlyMs: in the market's leaf and the snapshot).
    const expired = m.expiryMs <= state.timeMs;
    let early: number | null = null;
    if (!expired) {
      const staleAfterMs = state.oracleParams!.staleAfterMs;
      const smileStaleMs = held === undefined ? null : held.updatedMs + staleAfterMs;
      const indexStaleMs = feed.priceQuote > 0n ? feed.updatedMs + staleAfterMs : null;
      const derived =
        smileStaleMs === null || indexStaleMs === null
          ? smileStaleMs
          : Math.min(smileStaleMs, indexStaleMs);
      const fresh = smile !== undefined && !indexStale;
      const kept = m.graceStartMs;
      const start = !fresh && derived !== null && kept !== null && kept < derived ? kept : derived;
      if (start !== derived) early = start;
      m.unshockedSinceMs = start;
      m.graceStartMs = fresh ? null : start;
    } else {
      m.graceStartMs = null;
      if (m.unshockedSinceMs !== null && m.unshockedSinceMs > m.expiryMs) {
        m.unshockedSinceMs = m.expiryMs;
      }
    }
    if (m.graceEarlyMs !== early) {
      m.graceEarlyMs = early;
      m.dirty = true;
    }
    const staleSinceMs = expired || smile === undefined || indexStale ? m.unshockedSinceMs : null;
    const graceOver =
      staleSinceMs === null || state.timeMs - staleSinceMs >= UNSHOCKED_MAINTENANCE_GRACE_MS;
    const graceMoved = m.unshockedGraceOver !== graceOver;
    m.unshockedGraceOver = graceOver;
    // Without a fresh smile or index, maintenance values the option by its
    // expiry's last smile (fresh while only the index is stale, and then it
    // moves): within the grace, and after it a short up to the half of its
    // cushion maintenance does not take apart (listed_margin.ts).
    // Its holders are looked at again when that smile moves: by value, not by
    // object (a restored node's smiles are other objects), and by its
    // parameters too, not by its time alone (a block may have the time of
    // the one before). The time the grace values it at moves only with the
    // index coming back (its markets' holders looked at again then) or a
    // new smile.
    const graceSmile = staleSinceMs !== null && !expired && held !== undefined ? held : null;
    const graceSmileMoved = !sameSmile(m.graceSmile, graceSmile);
    m.graceSmile = graceSmile;
    if (restoring) continue;
    const option = m.instrument as Extract<Instrument, { kind: 'option' }>;
    const priceable =
      smile !== undefined && !indexStale && forward > 0n && m.expiryMs > state.timeMs;
    if (priceable && !due && m.optionMark !== null) {
      // The kept mark is also the option's index (the block set the underlying's price there).
      m.indexTicks = m.markTicks;
      continue;
    }
    const mark = !priceable
      ? null
      : priced(() =>
          optionMark({
            forwardQuote: forward,
            strikeQuote: option.strikeQuote,
            isCall: option.isCall,
            nowMs: state.timeMs,
            expiryMs: m.expiryMs,
            rateWad: 0n,
            svi: smile.svi,
          }),
        );
    if (mark === null) {
      // No smile, no fresh index, past expiry, or a price outside what the pricing
      // math covers (the forward a million times the strike or its millionth,
      // a smile's log overflowing): the option keeps its last mark (margined by
      // model-free bounds: listed_margin.ts) rather than failing the block on
      // every validator.
      // Its holders' margin is looked at again when the mark goes, and then
      // whenever the forward its model-free margin is taken at moves, its
      // grace starts or ends, or the smile its grace values it by moves.
      if (m.optionMark !== null || forwardMoved || graceMoved || graceSmileMoved) {
        m.remarkedHeight = state.height;
      }
      m.optionMark = null;
      // Its index stays its kept mark, not the underlying's price in its ticks
      // (the block's first step): market orders are bounded from it.
      if (m.markTicks > 0) m.indexTicks = m.markTicks;
      // Without the interval the forward is not state (not in the leaf or the
      // snapshot): forget it with the mark, so that a node restored here, which
      // never had it, holds the same. (Its margin is taken at forwardNowQuote.)
      if (interval === undefined) m.forwardQuote = 0n;
      continue;
    }
    m.optionMark = mark;
    m.forwardQuote = forward;
    // Its scenario values (forward, time, volatility) changed even where its
    // mark in ticks did not: its holders' margin is looked at again.
    m.remarkedHeight = state.height;
    // Rounded as an index is: a far out-of-the-money option still has a price
    // to trade at (one tick), and a deep in-the-money one on an underlying
    // priced in the trillions saturates at INDEX_TICKS_MAX, as the index does,
    // so that its mark, band and slippage bound stay safe integers (a mark
    // past 2^53 ticks failed the block when the state was encoded).
    const markTicks = indexToTicks(m, mark.markQuote);
    m.indexTicks = markTicks;
    if (markTicks !== m.markTicks) {
      m.setMark(markTicks);
      m.dirty = true;
    }
  }
}

/** Whether two smiles (or none) are the same: of the same time, with the same parameters. */
function sameSmile(a: SmileFeed | null, b: SmileFeed | null): boolean {
  if (a === null || b === null) return a === b;
  const x = a.svi;
  const y = b.svi;
  return (
    a.updatedMs === b.updatedMs &&
    x.a === y.a &&
    x.b === y.b &&
    x.rho === y.rho &&
    x.m === y.m &&
    x.sigma === y.sigma
  );
}

/** Closes every position of an expired market at its settlement value and retires it. */
function settleMarket(state: ExchangeState, m: MarketState, events: ExchangeEvent[]): void {
  const acc = state.twaps.get(twapKey(m));
  assert(acc !== undefined, 'a listed market has a settlement TWAP');
  const price = acc.settlementPrice;
  if (price === null) return;
  for (const side of ['buy', 'sell'] as const) {
    const ids: number[] = [];
    for (const o of m.book.ordersOf(side)) ids.push(o.orderId);
    for (const id of ids) forgetOrder(state, id);
  }
  m.book = new OrderBook();
  const instrument = m.instrument;
  const value = settlementValueQuote(price, instrument.kind === 'option' ? instrument : undefined);
  const holders = [...m.holders].sort((a, b) => a.index - b.index);
  const positions = holders.map((a) => positionOf(a, m)!);
  const settled = settlePositions(positions, value, m.params.lotsPerBase);
  holders.forEach((a, i) => {
    const p = positions[i]!;
    a.cashQuote += settled.cashQuote[i]!;
    p.realizedPnlQuote += settled.realizedPnlQuote[i]!;
    p.costBasisQuote = 0n;
    p.sizeLots = 0;
    a.positionCount--;
  });
  m.holders.clear();
  m.longLots = 0;
  m.shortLots = 0;
  state.feePoolQuote += settled.dustQuote;
  for (const a of m.records) dropRecord(state, a, m);
  m.records.clear();
  for (const a of holders) {
    // A short that paid more than it had: the insurance fund, then a deficit (as after a liquidation).
    settleShortfall(state, a, events);
  }
  m.retired = true;
  // A pending proposal names its market by slot: closed here (with no effect), it
  // cannot act on whatever is listed in this slot next.
  for (const proposal of state.proposals.values()) {
    if (proposal.market === m.index) closeWithoutEffect(state, proposal);
  }
  if (m.leaf !== null) state.goneLeaves.push(m.leaf);
  m.leaf = null;
  m.dirty = false;
  state.marketByName.delete(m.params.instrument);
  events.push({
    type: 'marketSettled',
    market: m.params.instrument,
    settlementPriceQuote: price,
    valueQuote: value,
    positions: holders.length,
    dustQuote: settled.dustQuote,
  });
}

function dropRecord(state: ExchangeState, a: Account, m: MarketState): void {
  const at = a.listed.findIndex((p) => p.market === m.index);
  assert(at >= 0, 'a record the market lists');
  a.listed.splice(at, 1);
  if (a.listed.length === 0) forgetListedSums(a);
  state.markAccount(a);
}
