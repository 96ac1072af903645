// A small reference of a block without transactions on the perpetuals,
// written from docs/exchange.md rather than from the code: the index and
// mark ("Mark price"), funding ("Funding") and the liquidation scan,
// liquidations, deleveraging, the insurance fund and the deficits
// ("Liquidation and deleveraging"). It reads the state a block starts from
// (`viewOf`), runs the block on plain records (`referenceBlock`), and gives
// the events a trader would see and the state after, to compare with what
// the exchange did (liquidation_rules_property.test.ts).
//
// Out of its reach (the driver stays away from them, or compares nothing in
// the blocks that have them): the transactions themselves (it starts again
// from the state they leave), a block with an auction event (price
// monitoring stopping a liquidation is modelled, an uncross is not: a block
// with one is compared from the state after it), the start of a block that
// lists or settles dated markets, options, good-til orders, a market that
// was never priced, fee tiers beyond the first, more than
// LIQUIDATIONS_PER_BLOCK_MAX accounts due.

import type { Exchange, ExchangeEvent } from '../../src/exchange/index.ts';
import type { Side } from '../../src/exchange/book/index.ts';
import { FUNDING_INTEREST_BAND_PPM, INDEX_TICKS_MAX } from '../../src/lib/limits.ts';

export interface RefOrder {
  readonly id: number;
  readonly owner: number;
  readonly side: Side;
  readonly price: number;
  size: number;
}

export interface RefMarket {
  readonly name: string;
  readonly underlying: string;
  /** A dated future (listed): no funding, its mark is its index. */
  readonly listed: boolean;
  /** An option: out of the reference's reach (the driver trades none). */
  readonly option: boolean;
  /** Settled: its slot holds nothing. */
  readonly retired: boolean;
  readonly k: bigint;
  readonly tickSizeQuote: bigint;
  readonly mmPpm: number;
  readonly bandPpm: number;
  /** The circuit breaker's price band (absent: none). */
  readonly priceBandPpm: number | undefined;
  readonly feePpm: number;
  readonly feeMax: bigint;
  readonly cap: bigint;
  readonly sampleMs: number;
  readonly intervalMs: number;
  readonly interestPpm: number;
  readonly fundingCapPpm: number;
  readonly halted: boolean;
  /** Its index is stale: nothing of it closes, funding pauses. */
  stale: boolean;
  /** In a volatility auction: nothing of it closes, and its auction orders are the owners' too. */
  inAuction: boolean;
  /** Price monitoring ("Volatility auctions"), null without triggers. */
  readonly monitor: RefMonitor | null;
  auctionOrders: RefOrder[];
  index: number;
  mark: number;
  premiumSum: number;
  premiumCount: number;
  /** Best first, then time priority. */
  bids: RefOrder[];
  asks: RefOrder[];
  /** Notional liquidated in this block, at the mark. */
  liquidated: bigint;
  /** A liquidation here waits (the per-block cap, a count, no counterparty): the next block looks at every holder. */
  readonly backlog: boolean;
}

export interface RefTrigger {
  readonly horizonMs: number;
  readonly maxMoveBps: number;
  readonly auctionMs: number;
  /** The last trade price at the start of its window (0 before a trade). */
  reference: number;
  windowStartMs: number;
}

export interface RefMonitor {
  /** The last trade (or uncrossing) price, 0 before the first. */
  last: number;
  readonly triggers: RefTrigger[];
}

export interface RefAccount {
  readonly index: number;
  cash: bigint;
  readonly size: number[];
  readonly basis: bigint[];
}

export interface RefState {
  timeMs: number;
  readonly markets: RefMarket[];
  readonly accounts: RefAccount[];
  fund: bigint;
  feePool: bigint;
  readonly deficits: Set<number>;
  /** The single fee tier's maker fee (a rebate when negative). */
  readonly makerPpm: number;
}

/** How often liquidation orders met resting orders within two ticks of their limit, inside and beyond it. */
export const referenceStats = {
  atLimit: 0,
  beyondLimit: 0,
  shortfalls: 0,
  triggered: 0,
  /** Slices that filled past the bankruptcy price, the insurance fund paying. */
  pastBankruptcy: 0,
};

/** What the reference reports: the events of these types, in order (a liquidation fill without its order id). */
export type RefEvent = ExchangeEvent;
export const REFERENCE_EVENTS: ReadonlySet<string> = new Set([
  'funding',
  'liquidationCancels',
  'makerCancelled',
  'liquidationFill',
  'liquidation',
  'deleverage',
  'insuranceCover',
  'auctionStarted',
]);

/** The state a block starts from, as plain records: perpetuals and dated futures. */
export function viewOf(ex: Exchange): RefState {
  const s = ex.state;
  if (s.genesis.feeTiers.length !== 1) throw new Error('the reference takes one fee tier');
  const markets = s.markets.map((m): RefMarket => {
    const side = (levels: typeof m.book.bids.levels): RefOrder[] => {
      const out: RefOrder[] = [];
      for (let i = levels.length - 1; i >= 0; i--) {
        for (let o = levels[i]!.head; o !== null; o = o.next) {
          out.push({
            id: o.orderId,
            owner: o.owner,
            side: o.side,
            price: o.priceTicks,
            size: o.sizeLots,
          });
        }
      }
      return out;
    };
    const p = m.params;
    return {
      name: p.instrument,
      underlying: p.underlying,
      listed: m.listed,
      option: m.instrument.kind === 'option',
      retired: m.retired,
      k: p.tickSizeQuote / BigInt(p.lotsPerBase),
      tickSizeQuote: p.tickSizeQuote,
      mmPpm: p.maintenanceMarginPpm,
      bandPpm: p.markBandPpm,
      priceBandPpm: p.priceBandPpm,
      feePpm: p.liquidationFeePpm,
      feeMax: p.liquidationFeeQuoteMax,
      cap: p.liquidationQuoteMaxPerBlock,
      sampleMs: p.fundingSampleMs,
      intervalMs: p.fundingIntervalMs,
      interestPpm: p.fundingInterestPpm,
      fundingCapPpm: p.fundingCapPpm,
      halted: m.halted,
      stale: m.oracleStale,
      inAuction: m.auction?.active === true,
      monitor:
        m.auction === null
          ? null
          : {
              last: m.auction.monitor.lastPriceTicks,
              triggers: m.auction.triggers.map((t, i) => ({
                horizonMs: t.horizonMs,
                maxMoveBps: t.maxMoveBps,
                auctionMs: t.auctionMs,
                reference: m.auction!.monitor.triggers[i]!.referenceTicks,
                windowStartMs: m.auction!.monitor.triggers[i]!.windowStartMs,
              })),
            },
      auctionOrders:
        m.auction?.active === true
          ? [...side(m.auction.bids.bids.levels), ...side(m.auction.asks.asks.levels)]
          : [],
      index: m.indexTicks,
      mark: m.markTicks,
      premiumSum: m.premiumSumPpm,
      premiumCount: m.premiumCount,
      bids: side(m.book.bids.levels),
      asks: side(m.book.asks.levels),
      liquidated: 0n,
      backlog: m.liquidationBacklog,
    };
  });
  const accounts = s.accounts.map((a): RefAccount => {
    const size = markets.map(() => 0);
    const basis = markets.map(() => 0n);
    for (const p of [...a.positions, ...a.listed]) {
      size[p.market] = p.sizeLots;
      basis[p.market] = p.costBasisQuote;
    }
    return { index: a.index, cash: a.cashQuote, size, basis };
  });
  return {
    timeMs: s.timeMs,
    markets,
    accounts,
    fund: s.insuranceQuote,
    feePool: s.feePoolQuote,
    deficits: new Set([...s.deficits].map((a) => a.index)),
    makerPpm: s.genesis.feeTiers[0]!.makerFeePpm,
  };
}

// --- integer helpers ----------------------------------------------------------

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}
function ceilDiv(a: bigint, b: bigint): bigint {
  return -floorDiv(-a, b);
}
function halfEvenDiv(a: bigint, b: bigint): bigint {
  const q = floorDiv(a, b);
  const r2 = 2n * (a - q * b);
  if (r2 > b) return q + 1n;
  if (r2 === b) return q % 2n === 0n ? q : q + 1n;
  return q;
}
const truncNum = (a: number, b: number): number => Math.trunc(a / b);
const minB = (a: bigint, b: bigint): bigint => (a < b ? a : b);
const maxB = (a: bigint, b: bigint): bigint => (a > b ? a : b);
const abs = (x: number): number => (x < 0 ? -x : x);
const ppmUp = (x: bigint, ppm: number): bigint => ceilDiv(x * BigInt(ppm), 1_000_000n);
const ppmDown = (x: bigint, ppm: number): bigint => floorDiv(x * BigInt(ppm), 1_000_000n);

// --- the account ------------------------------------------------------------------

export function equityOf(s: RefState, a: RefAccount): bigint {
  let e = a.cash;
  s.markets.forEach((m, i) => {
    e += BigInt(a.size[i]!) * BigInt(m.mark) * m.k;
  });
  return e;
}

export function maintenanceOf(s: RefState, a: RefAccount): bigint {
  let scaled = 0n;
  s.markets.forEach((m, i) => {
    scaled += BigInt(abs(a.size[i]!)) * BigInt(m.mark) * m.k * BigInt(m.mmPpm);
  });
  return ceilDiv(scaled, 1_000_000n);
}

const holds = (a: RefAccount): boolean => a.size.some((x) => x !== 0);
export const belowMaintenanceRef = (s: RefState, a: RefAccount): boolean =>
  holds(a) && equityOf(s, a) < maintenanceOf(s, a);

/** A trade of `delta` lots at `price`: cash pays the notional, the basis follows ("Accounts and collateral"). */
function trade(m: RefMarket, i: number, a: RefAccount, delta: number, price: number): void {
  const notional = BigInt(delta) * BigInt(price) * m.k;
  a.cash -= notional;
  const old = a.size[i]!;
  if (old === 0 || old > 0 === delta > 0) {
    a.basis[i] = a.basis[i]! + notional;
  } else {
    const closing = Math.min(abs(delta), abs(old));
    // Truncated toward zero: BigInt division.
    a.basis[i] = a.basis[i]! - (a.basis[i]! * BigInt(closing)) / BigInt(abs(old));
    const opening = abs(delta) - closing;
    if (opening > 0) a.basis[i] = BigInt(delta > 0 ? opening : -opening) * BigInt(price) * m.k;
  }
  a.size[i] = old + delta;
  if (a.size[i] === 0) a.basis[i] = 0n;
}

// --- the block's start: index, mark, funding ---------------------------------------

function indexTicks(m: RefMarket, priceQuote: bigint): number {
  const t = halfEvenDiv(priceQuote, m.tickSizeQuote);
  if (t < 1n) return 1;
  return t > BigInt(INDEX_TICKS_MAX) ? INDEX_TICKS_MAX : Number(t);
}

function markOf(m: RefMarket): number {
  const index = m.index;
  let mid = index;
  const bid = m.bids[0]?.price;
  const ask = m.asks[0]?.price;
  if (bid !== undefined && ask !== undefined) {
    const d = Number((BigInt(index) * BigInt(m.bandPpm)) / 1_000_000n);
    const lo = Math.max(1, index - d);
    const hi = index + d;
    const raw = Number((BigInt(bid) + BigInt(ask)) / 2n);
    mid = Math.min(hi, Math.max(lo, raw));
  }
  let basis = 0;
  if (m.premiumCount > 0) {
    const avg = truncNum(m.premiumSum, m.premiumCount);
    basis = Number((BigInt(index) * BigInt(avg)) / 1_000_000n);
  }
  const c = index + basis;
  const median = Math.max(Math.min(index, mid), Math.min(Math.max(index, mid), c));
  return Math.max(1, median);
}

function premiumOf(m: RefMarket): number {
  const bid = m.bids[0]?.price;
  const ask = m.asks[0]?.price;
  if (bid === undefined || ask === undefined) return 0;
  const away = Math.max(0, bid - m.index) - Math.max(0, m.index - ask);
  return Number((BigInt(away) * 1_000_000n) / BigInt(m.index));
}

function pay(s: RefState, i: number, events: RefEvent[]): void {
  const m = s.markets[i]!;
  const perInterval = m.intervalMs / m.sampleMs;
  let rate = 0;
  if (m.premiumCount > 0) {
    const avg = truncNum(m.premiumSum, m.premiumCount);
    const band = FUNDING_INTEREST_BAND_PPM;
    const interest = Math.max(-band, Math.min(band, m.interestPpm - avg));
    const whole = Math.max(-m.fundingCapPpm, Math.min(m.fundingCapPpm, avg + interest));
    rate = m.premiumCount >= perInterval ? whole : truncNum(whole * m.premiumCount, perInterval);
  }
  m.premiumSum = 0;
  m.premiumCount = 0;
  let paid = 0n;
  let received = 0n;
  if (rate !== 0) {
    for (const a of s.accounts) {
      const size = a.size[i]!;
      if (size === 0) continue;
      const notional = BigInt(size) * BigInt(m.mark) * m.k;
      const payer = notional > 0n === rate > 0;
      const absNotional = notional < 0n ? -notional : notional;
      const amount = payer ? ppmUp(absNotional, abs(rate)) : ppmDown(absNotional, abs(rate));
      if (payer) {
        paid += amount;
        a.cash -= amount;
      } else {
        received += amount;
        a.cash += amount;
      }
    }
  }
  s.fund += paid - received;
  events.push({
    type: 'funding',
    market: m.name,
    ratePpm: rate,
    markTicks: m.mark,
    paidQuote: paid,
    receivedQuote: received,
    dustQuote: paid - received,
  });
}

function addSamples(m: RefMarket, n: number, sample: number): void {
  if (n <= 0) return;
  m.premiumSum += sample * n;
  m.premiumCount += n;
}

function fundingStep(
  s: RefState,
  i: number,
  previousMs: number,
  nowMs: number,
  events: RefEvent[],
  paying: boolean,
): void {
  const m = s.markets[i]!;
  if (nowMs <= previousMs) return;
  if (m.stale) {
    // Paused: no sample; an interval that ends now pays nothing and drops its samples.
    if (Math.floor(nowMs / m.intervalMs) * m.intervalMs > previousMs) {
      m.premiumSum = 0;
      m.premiumCount = 0;
      events.push({
        type: 'funding',
        market: m.name,
        ratePpm: 0,
        markTicks: m.mark,
        paidQuote: 0n,
        receivedQuote: 0n,
        dustQuote: 0n,
      });
    }
    return;
  }
  const sample = premiumOf(m);
  const firstSample = Math.floor(previousMs / m.sampleMs) + 1;
  const lastSample = Math.floor(nowMs / m.sampleMs);
  const lastBoundary = Math.floor(nowMs / m.intervalMs) * m.intervalMs;
  if (lastBoundary <= previousMs) {
    addSamples(m, lastSample - firstSample + 1, sample);
    return;
  }
  const firstBoundary = (Math.floor(previousMs / m.intervalMs) + 1) * m.intervalMs;
  addSamples(m, Math.floor(firstBoundary / m.sampleMs) - firstSample + 1, sample);
  if (paying) pay(s, i, events);
  addSamples(m, lastSample - Math.floor(lastBoundary / m.sampleMs), sample);
}

// --- price monitoring ("Volatility auctions") ------------------------------------

/**
 * The prices a trade may have now: each trigger allows reference ±
 * floor(reference × maxMoveBps / 10^4), its reference the last trade price at
 * the start of its window, taken again once its horizon has passed, before a
 * market's first trade the mark.
 */
export function tradeBounds(m: RefMarket, nowMs: number): [number, number] {
  let lo = 1;
  let hi = Number.MAX_SAFE_INTEGER;
  for (const t of m.monitor?.triggers ?? []) {
    const [l, h] = triggerRange(m, t, nowMs);
    lo = Math.max(lo, l);
    hi = Math.min(hi, h);
  }
  return [lo, hi];
}

function triggerRange(m: RefMarket, t: RefTrigger, nowMs: number): [number, number] {
  const renewed = t.reference === 0 || nowMs - t.windowStartMs >= t.horizonMs;
  let reference = renewed ? m.monitor!.last : t.reference;
  if (reference === 0) reference = m.mark;
  const d = Number((BigInt(reference) * BigInt(t.maxMoveBps)) / 10_000n);
  return [reference - d, reference + d];
}

/** The auction a trade at `price` would start: the longest among the triggers it breaches. */
function breachAuctionMs(m: RefMarket, price: number, nowMs: number): number {
  let ms = 0;
  for (const t of m.monitor?.triggers ?? []) {
    const [lo, hi] = triggerRange(m, t, nowMs);
    if (price < lo || price > hi) ms = Math.max(ms, t.auctionMs);
  }
  return ms;
}

/** A trade at `price` now: windows past their horizon restart at the last price, which becomes `price`. */
function monitorTrade(m: RefMarket, price: number, nowMs: number): void {
  const monitor = m.monitor;
  if (monitor === null) return;
  const roll = (): void => {
    for (const t of monitor.triggers) {
      if (t.reference === 0 || nowMs - t.windowStartMs >= t.horizonMs) {
        t.reference = monitor.last;
        t.windowStartMs = nowMs;
      }
    }
  };
  roll();
  monitor.last = price;
  roll();
}

// --- liquidation -----------------------------------------------------------------

/** Not settled, halted (a dated market past its expiry is), stale nor in an auction. */
const closable = (m: RefMarket): boolean => !m.retired && !m.halted && !m.stale && !m.inAuction;

function cancelOrdersOf(s: RefState, a: RefAccount, events: RefEvent[]): void {
  let n = 0;
  for (const m of s.markets) {
    const keep = (o: RefOrder): boolean => {
      if (o.owner !== a.index) return true;
      n++;
      return false;
    };
    m.bids = m.bids.filter(keep);
    m.asks = m.asks.filter(keep);
    m.auctionOrders = m.auctionOrders.filter(keep);
  }
  if (n > 0) events.push({ type: 'liquidationCancels', account: a.index, orders: n });
}

/** Step 5: no position, negative cash: the fund, then the deficits. */
function settleShortfall(s: RefState, a: RefAccount, events: RefEvent[]): void {
  if (holds(a) || a.cash >= 0n) return;
  referenceStats.shortfalls++;
  cancelOrdersOf(s, a, events);
  const cover = minB(-a.cash, s.fund);
  if (cover > 0n) {
    s.fund -= cover;
    a.cash += cover;
    events.push({ type: 'insuranceCover', account: a.index, amountQuote: cover });
  }
  if (a.cash < 0n) s.deficits.add(a.index);
}

function bankruptcy(s: RefState, m: RefMarket, i: number, a: RefAccount): number {
  const size = a.size[i]!;
  const e = equityOf(s, a);
  const away = floorDiv(e, BigInt(abs(size)) * m.k);
  const t = size > 0 ? BigInt(m.mark) - away : BigInt(m.mark) + away;
  if (t < 1n) return 1;
  return t > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(t);
}

/**
 * The liquidation's IOC order through the book at `limit`, price-time, at the
 * makers' prices. A maker whose fill would take its equity below zero at the
 * marks, its maker fee counted and its losses in this order added up, is
 * cancelled whole ("Fills and equity"). Returns the fills.
 */
function matchIoc(
  s: RefState,
  m: RefMarket,
  sell: boolean,
  limit: number,
  lots: number,
  events: RefEvent[],
): {
  fills: { owner: number; id: number; price: number; size: number }[];
  /** The price of the trade that did not happen, when price monitoring stopped the slice, else 0. */
  breach: number;
} {
  const book = sell ? m.bids : m.asks;
  const fills: { owner: number; id: number; price: number; size: number }[] = [];
  const spent = new Map<number, bigint>();
  const guardPpm = Math.max(0, s.makerPpm);
  // Price monitoring: the slice trades no price outside the triggers' bounds
  // (its own orders are gone, step 1); an order within its limit beyond that
  // bound starts an auction, and so does a first order beyond the far bound.
  const [lo, hi] = tradeBounds(m, s.timeMs);
  const within = (price: number): boolean => price >= lo && price <= hi;
  let breach = 0;
  let remaining = lots;
  let i = 0;
  while (remaining > 0 && i < book.length) {
    const o = book[i]!;
    if (sell ? o.price < limit : o.price > limit) {
      if (Math.abs(o.price - limit) <= 2) referenceStats.beyondLimit++;
      break;
    }
    if (m.monitor !== null && !within(o.price)) {
      breach = o.price;
      break;
    }
    if (Math.abs(o.price - limit) <= 2) referenceStats.atLimit++;
    const n = Math.min(remaining, o.size);
    // The maker buys when the liquidated account sells: it loses what it pays above the mark.
    const away = sell ? o.price - m.mark : m.mark - o.price;
    const loss =
      BigInt(away) * BigInt(n) * m.k + ppmUp(BigInt(o.price) * BigInt(n) * m.k, guardPpm);
    if (loss > 0n) {
      const maker = s.accounts[o.owner]!;
      const total = (spent.get(o.owner) ?? 0n) + loss;
      if (equityOf(s, maker) - total < 0n) {
        events.push({ type: 'makerCancelled', market: m.name, orderId: o.id, account: o.owner });
        book.splice(i, 1);
        continue;
      }
      spent.set(o.owner, total);
    }
    fills.push({ owner: o.owner, id: o.id, price: o.price, size: n });
    o.size -= n;
    remaining -= n;
    if (o.size === 0) book.splice(i, 1);
    else i++;
  }
  return { fills, breach };
}

/** The ranking of step 4: unrealized PnL × notional / equity, highest first, then ascending index. */
function deleverageQueue(s: RefState, m: RefMarket, i: number, longs: boolean): RefAccount[] {
  const ranked = s.accounts
    .filter((b) => (longs ? b.size[i]! > 0 : b.size[i]! < 0))
    .map((b) => {
      const value = BigInt(b.size[i]!) * BigInt(m.mark) * m.k;
      const pnl = value - b.basis[i]!;
      const notional = value < 0n ? -value : value;
      // Equity at or below zero counts as one quote unit: the most leverage there is.
      const equity = maxB(equityOf(s, b), 1n);
      return { b, num: pnl * notional, den: equity };
    });
  ranked.sort((x, y) => {
    const l = x.num * y.den;
    const r = y.num * x.den;
    return l > r ? -1 : l < r ? 1 : x.b.index - y.b.index;
  });
  return ranked.map((r) => r.b);
}

function deleverage(
  s: RefState,
  m: RefMarket,
  i: number,
  a: RefAccount,
  lots: number,
  price: number,
  events: RefEvent[],
): number {
  const long = a.size[i]! > 0;
  let remaining = lots;
  for (const b of deleverageQueue(s, m, i, !long)) {
    if (remaining === 0) break;
    const want = Math.min(remaining, abs(b.size[i]!));
    // The counterparty buys from a long, sells to a short: its loss per lot against the mark.
    const away = long ? price - m.mark : m.mark - price;
    let take = want;
    if (away > 0) {
      const e = equityOf(s, b);
      take = e <= 0n ? 0 : Number(minB(BigInt(want), e / (BigInt(away) * m.k)));
    }
    if (take === 0) continue;
    const signed = long ? -take : take;
    trade(m, i, a, signed, price);
    trade(m, i, b, -signed, price);
    remaining -= take;
    events.push({
      type: 'deleverage',
      market: m.name,
      account: a.index,
      counterparty: b.index,
      sizeLots: take,
      priceTicks: price,
    });
  }
  return lots - remaining;
}

/** A liquidation fill: the trade, the maker's fee, the event. Returns its notional. */
function settleFill(
  s: RefState,
  m: RefMarket,
  i: number,
  a: RefAccount,
  sell: boolean,
  f: { owner: number; id: number; price: number; size: number },
  events: RefEvent[],
): bigint {
  const maker = s.accounts[f.owner]!;
  const signed = sell ? -f.size : f.size;
  trade(m, i, a, signed, f.price);
  trade(m, i, maker, -signed, f.price);
  const n = BigInt(f.price) * BigInt(f.size) * m.k;
  // No taker fee, no rebate; a positive maker fee is charged.
  const makerFee = s.makerPpm > 0 ? ppmUp(n, s.makerPpm) : 0n;
  maker.cash -= makerFee;
  s.feePool += makerFee;
  events.push({
    type: 'liquidationFill',
    market: m.name,
    account: a.index,
    orderId: -1,
    side: sell ? 'sell' : 'buy',
    makerAccount: f.owner,
    makerOrderId: f.id,
    priceTicks: f.price,
    sizeLots: f.size,
    makerFeeQuote: makerFee,
  });
  return n;
}

/**
 * Step 3b: what the book did not take at the bankruptcy price, through the
 * book past it, no further than the mark ∓ the maintenance margin of a lot
 * (at least a tick; within the price band when the market has one): the
 * insurance fund pays each fill's loss beyond the bankruptcy price, and the
 * order stops before the first lot it cannot pay, and (starting nothing)
 * before a price outside price monitoring's bounds. Makers as in matchIoc.
 */
function pastBankruptcy(
  s: RefState,
  m: RefMarket,
  i: number,
  a: RefAccount,
  sell: boolean,
  bankrupt: number,
  lots: number,
  events: RefEvent[],
): { filled: number; notional: bigint } {
  const none = { filled: 0, notional: 0n };
  if (s.fund <= 0n) return none;
  const d = Math.max(1, Number((BigInt(m.mark) * BigInt(m.mmPpm)) / 1_000_000n));
  let limit = sell ? Math.max(1, m.mark - d) : m.mark + d;
  if (m.priceBandPpm !== undefined) {
    const b = Math.max(1, Number((BigInt(m.mark) * BigInt(m.priceBandPpm)) / 1_000_000n));
    limit = sell ? Math.max(limit, Math.max(1, m.mark - b)) : Math.min(limit, m.mark + b);
  }
  if (sell ? limit >= bankrupt : limit <= bankrupt) return none;
  const book = sell ? m.bids : m.asks;
  const [lo, hi] = tradeBounds(m, s.timeMs);
  const spent = new Map<number, bigint>();
  const guardPpm = Math.max(0, s.makerPpm);
  let budget = s.fund;
  let paid = 0n;
  let filled = 0;
  let notional = 0n;
  const fills: { owner: number; id: number; price: number; size: number }[] = [];
  while (filled < lots && book.length > 0) {
    const o = book[0]!;
    if (sell ? o.price < limit : o.price > limit) break;
    if (m.monitor !== null && (o.price < lo || o.price > hi)) break;
    const beyond = BigInt(sell ? bankrupt - o.price : o.price - bankrupt);
    const want = Math.min(lots - filled, o.size);
    const n = beyond <= 0n ? want : Math.min(want, Number(budget / (beyond * m.k)));
    if (n === 0) break;
    const away = sell ? o.price - m.mark : m.mark - o.price;
    const loss =
      BigInt(away) * BigInt(n) * m.k + ppmUp(BigInt(o.price) * BigInt(n) * m.k, guardPpm);
    if (loss > 0n) {
      const total = (spent.get(o.owner) ?? 0n) + loss;
      if (equityOf(s, s.accounts[o.owner]!) - total < 0n) {
        events.push({ type: 'makerCancelled', market: m.name, orderId: o.id, account: o.owner });
        book.shift();
        continue;
      }
      spent.set(o.owner, total);
    }
    fills.push({ owner: o.owner, id: o.id, price: o.price, size: n });
    budget -= BigInt(n) * beyond * m.k;
    o.size -= n;
    filled += n;
    if (o.size === 0) book.shift();
    if (n < want) break;
  }
  for (const f of fills) {
    const beyond = BigInt(sell ? bankrupt - f.price : f.price - bankrupt);
    paid += BigInt(f.size) * beyond * m.k;
    notional += settleFill(s, m, i, a, sell, f, events);
    monitorTrade(m, f.price, s.timeMs);
  }
  if (filled > 0) referenceStats.pastBankruptcy++;
  if (paid > 0n) {
    s.fund -= paid;
    a.cash += paid;
    events.push({ type: 'insuranceCover', account: a.index, amountQuote: paid });
  }
  return { filled, notional };
}

/** Step 3 and 4 for one market: the slice through the book, past the bankruptcy price as far as the fund pays, the fee, the rest deleveraged. Lots closed. */
function closeSlice(s: RefState, i: number, a: RefAccount, events: RefEvent[]): number {
  const m = s.markets[i]!;
  const size = a.size[i]!;
  const lotValue = BigInt(m.mark) * m.k;
  const room = m.cap - m.liquidated;
  if (room <= 0n) return 0;
  const roomLots = room / lotValue;
  const lots = Number(minB(BigInt(abs(size)), maxB(roomLots, 1n)));
  const price = bankruptcy(s, m, i, a);
  const sell = size > 0;
  const { fills, breach } = matchIoc(s, m, sell, price, lots, events);
  const triggered = breach !== 0;
  let filled = 0;
  let notional = 0n;
  for (const f of fills) {
    notional += settleFill(s, m, i, a, sell, f, events);
    filled += f.size;
  }
  if (!triggered) {
    for (const f of fills) monitorTrade(m, f.price, s.timeMs);
    if (filled < lots) {
      const past = pastBankruptcy(s, m, i, a, sell, price, lots - filled, events);
      filled += past.filled;
      notional += past.notional;
    }
  }
  // Stopped by price monitoring: the auction starts, the rest waits for its uncross.
  const rest = triggered ? 0 : lots - filled;
  const away = sell ? m.mark - price : price - m.mark;
  const restLoss = away > 0 ? BigInt(rest) * BigInt(away) * m.k : 0n;
  const fee = minB(minB(ppmUp(notional, m.feePpm), m.feeMax), maxB(equityOf(s, a) - restLoss, 0n));
  a.cash -= fee;
  s.fund += fee;
  const liquidation = {
    type: 'liquidation' as const,
    market: m.name,
    account: a.index,
    closedLots: filled,
    feeQuote: fee,
  };
  events.push(liquidation);
  // The auction a stopped slice starts is measured against the references
  // its fills met, then they are recorded.
  if (triggered) {
    m.inAuction = true;
    referenceStats.triggered++;
    events.push({
      type: 'auctionStarted',
      market: m.name,
      priceTicks: breach,
      endMs: s.timeMs + breachAuctionMs(m, breach, s.timeMs),
    });
    for (const f of fills) monitorTrade(m, f.price, s.timeMs);
  }
  if (rest === 0) {
    // The cap counts what closed, at the mark.
    m.liquidated += BigInt(filled) * lotValue;
    return filled;
  }
  // The deleveraged lots count in the fee's notional, paid from what equity is left after them.
  const deleveraged = deleverage(s, m, i, a, rest, price, events);
  const owed = minB(
    ppmUp(notional + BigInt(deleveraged) * BigInt(price) * m.k, m.feePpm),
    m.feeMax,
  );
  const extra = minB(owed - fee, maxB(equityOf(s, a), 0n));
  if (extra > 0n) {
    a.cash -= extra;
    s.fund += extra;
    liquidation.feeQuote = fee + extra;
  }
  m.liquidated += BigInt(filled + deleveraged) * lotValue;
  return filled + deleveraged;
}

function liquidate(s: RefState, a: RefAccount, events: RefEvent[]): void {
  cancelOrdersOf(s, a, events);
  const canClose = (i: number): boolean => {
    const m = s.markets[i]!;
    return a.size[i] !== 0 && closable(m) && m.liquidated < m.cap;
  };
  if (s.markets.some((_, i) => canClose(i))) {
    // The cover's share for what stays open, every position weighed, goes back.
    const open = (): bigint =>
      s.markets.reduce((t, m, i) => t + BigInt(abs(a.size[i]!)) * BigInt(m.mark) * m.k, 0n);
    const e = equityOf(s, a);
    const cover = e < 0n ? minB(-e, s.fund) : 0n;
    const openBefore = open();
    s.fund -= cover;
    a.cash += cover;
    let closed = 0;
    s.markets.forEach((m, i) => {
      if (a.size[i] !== 0 && closable(m)) closed += closeSlice(s, i, a, events);
    });
    if (cover > 0n) {
      const openAfter = closed === 0 ? openBefore : open();
      const share = openBefore > 0n ? ceilDiv(cover * openAfter, openBefore) : 0n;
      const back = minB(cover, maxB(equityOf(s, a), 0n) + share);
      a.cash -= back;
      s.fund += back;
      if (cover > back)
        events.push({ type: 'insuranceCover', account: a.index, amountQuote: cover - back });
    }
  }
  settleShortfall(s, a, events);
}

const holdsClosable = (s: RefState, a: RefAccount): boolean =>
  s.markets.some((m, i) => a.size[i] !== 0 && closable(m));

/**
 * The order of the accounts due: closable first, the largest shortfall,
 * ascending index. Every account below maintenance that holds a position
 * that can close is due; one whose positions all wait (halted, in an
 * auction) only when the scan looks at it (`looked`): nothing of it closes,
 * and a liquidation would only cancel the orders it placed since, which
 * cannot raise its margin.
 */
export function dueOrder(s: RefState, looked: (a: RefAccount) => boolean): RefAccount[] {
  const due = s.accounts.filter(
    (a) => belowMaintenanceRef(s, a) && (holdsClosable(s, a) || looked(a)),
  );
  const info = new Map(
    due.map((a) => [
      a,
      {
        canClose: holdsClosable(s, a),
        shortfall: maintenanceOf(s, a) - equityOf(s, a),
      },
    ]),
  );
  return due.sort((x, y) => {
    const p = info.get(x)!;
    const q = info.get(y)!;
    if (p.canClose !== q.canClose) return p.canClose ? -1 : 1;
    if (p.shortfall !== q.shortfall) return p.shortfall > q.shortfall ? -1 : 1;
    return x.index - y.index;
  });
}

/**
 * The start of a block at `nowMs` with the oracle `prices` ("A block", steps
 * 1 and 2): each market's index, mark and funding. Changes `s` in place;
 * returns the funding events.
 */
export function referenceStart(
  s: RefState,
  nowMs: number,
  prices: Readonly<Record<string, bigint>>,
  stale: (underlying: string) => boolean,
  paying = true,
): RefEvent[] {
  const events: RefEvent[] = [];
  s.markets.forEach((m, i) => {
    if (m.retired || m.option) return;
    const price = prices[m.underlying];
    if (price !== undefined && price > 0n) m.index = indexTicks(m, price);
    m.stale = stale(m.underlying);
    m.liquidated = 0n;
    // A dated future's mark by the same formula, without funding: no basis, so its index.
    m.mark = markOf(m);
    if (!m.listed) fundingStep(s, i, s.timeMs, nowMs, events, paying);
  });
  s.timeMs = nowMs;
  return events;
}

/**
 * The block's liquidations and the fund's payment of the deficits (steps 6 of
 * "A block") on the state after its transactions, changed in place: returns
 * the events of REFERENCE_EVENTS' types in order and the accounts liquidated.
 */
export function referenceLiquidations(
  s: RefState,
  looked: (a: RefAccount) => boolean,
): { events: RefEvent[]; liquidated: number[] } {
  const events: RefEvent[] = [];
  // Out of its last position with negative cash in this block: the fund, then the deficits, first.
  for (const a of s.accounts) {
    if (!holds(a) && a.cash < 0n && !s.deficits.has(a.index)) settleShortfall(s, a, events);
  }
  const liquidated: number[] = [];
  const order = dueOrder(s, looked);
  for (const a of order) {
    if (!belowMaintenanceRef(s, a)) continue;
    liquidated.push(a.index);
    liquidate(s, a, events);
  }
  // An account already below zero whose last position another's liquidation closed.
  for (const a of s.accounts) {
    if (!holds(a) && a.cash < 0n && !s.deficits.has(a.index)) settleShortfall(s, a, events);
  }
  // The fund pays the deficits, ascending index.
  for (const index of [...s.deficits].sort((x, y) => x - y)) {
    if (s.fund <= 0n) break;
    const a = s.accounts[index]!;
    const cover = minB(-a.cash, s.fund);
    s.fund -= cover;
    a.cash += cover;
    events.push({ type: 'insuranceCover', account: a.index, amountQuote: cover });
    if (a.cash >= 0n) s.deficits.delete(index);
  }
  return { events, liquidated };
}
