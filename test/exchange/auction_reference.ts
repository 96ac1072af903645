// A reference model of one perpetual market's circuit breakers and volatility
// auctions, written from docs/exchange.md ("Orders", "Fees", "Circuit
// breakers", "Volatility auctions", "A block", "In-block ordering",
// "Rejection codes") and docs/book.md, not from src/: plain arrays sorted on
// demand, bigint money, every rule spelled out once. It also settles a dated
// market (docs/derivatives.md, "Settlement"): the TWAP of the index over the
// 30 minutes before expiry and the per-position cash of a future or a
// European option.
//
// What it leaves out, so that the driver keeps away from it: margin and the
// fill check (accounts hold far more collateral than their positions can
// lose), funding and the basis (no premium sample falls inside a run, so the
// mark is the median of the index, the banded mid and the index: the index),
// liquidation, client order ids and batches.
//
// Where the docs do not order two checks of a placement, the model takes the
// order of the rejection table's rows where it can and otherwise one order,
// named in `place` below.

export type Side = 'buy' | 'sell';
export type Stp = 'cancelResting' | 'cancelIncoming' | 'cancelBoth';
export type Tif = 'GTC' | 'IOC' | 'FOK' | 'postOnly';

const PPM = 1_000_000n;

export function ceilDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return q * b === a || a < 0n ? q : q + 1n;
}

export function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return q * b === a || a >= 0n ? q : q - 1n;
}

/** Half to even, a ≥ 0, b > 0. */
export function halfEven(a: bigint, b: bigint): bigint {
  const q = a / b;
  const r = a % b;
  if (2n * r > b || (2n * r === b && q % 2n === 1n)) return q + 1n;
  return q;
}

export interface Trigger {
  horizonMs: number;
  maxMoveBps: number;
  auctionMs: number;
}

export interface RefParams {
  /** Quote units per tick and lot. */
  k: bigint;
  tickSizeQuote: bigint;
  marketSlippagePpm: number;
  triggers: Trigger[];
  priceBandPpm?: number;
  openInterestCapLots?: number;
  openOrdersMax: number;
  makerFeePpm: number;
  takerFeePpm: number;
}

export interface ROrder {
  id: number;
  acct: number;
  side: Side;
  price: number;
  open: number;
  /** What the order traded, over its life: an amend's size counts it. */
  filled: number;
  /** Time priority: a counter, renewed when the order loses its place. */
  time: number;
  stp: Stp;
  postOnly: boolean;
  goodTilMs: number;
  /** Waits among the auction orders (not in the book). */
  auction: boolean;
}

export interface RFill {
  makerOrderId: number;
  makerAccount: number;
  priceTicks: number;
  sizeLots: number;
  takerFeeQuote: bigint;
  makerFeeQuote: bigint;
}

export interface ROutcome {
  orderId: number;
  status: 'rested' | 'filled' | 'cancelled';
  reason: string | null;
  filledLots: number;
  restedLots: number;
  cancelledLots: number;
  fills: RFill[];
}

export type RResult = { ok: true; order?: ROutcome; count?: number } | { ok: false; code: string };

export type REvent =
  | { type: 'orderExpired'; orderId: number; account: number }
  | { type: 'auctionStarted'; priceTicks: number; endMs: number }
  | {
      type: 'auctionTrade';
      buyOrderId: number;
      sellOrderId: number;
      buyAccount: number;
      sellAccount: number;
      priceTicks: number;
      sizeLots: number;
      buyFeeQuote: bigint;
      sellFeeQuote: bigint;
    }
  | { type: 'auctionEnded'; priceTicks: number; volumeLots: number }
  | { type: 'makerCancelled'; orderId: number; account: number }
  | { type: 'marketHalted' }
  | { type: 'marketResumed' };

export interface RPlace {
  side: Side;
  type: 'limit' | 'market';
  priceTicks?: number;
  sizeLots: number;
  tif: Tif;
  reduceOnly: boolean;
  stp: Stp;
  goodTilMs?: number;
}

/** The uncross of docs/exchange.md "Uncross" over plain lists: price, volume, fills. */
export interface RUncross {
  price: number;
  volume: number;
  fills: { buy: ROrder; sell: ROrder; lots: number }[];
}

const byPriority = (side: Side) => (x: ROrder, y: ROrder) =>
  x.price !== y.price ? (side === 'buy' ? y.price - x.price : x.price - y.price) : x.time - y.time;

/**
 * The call: among the orders' limit prices, the largest volume min(demand,
 * supply), then the smallest imbalance, then the closest to the reference,
 * then the lower price; fills pair the bids (best price first, earlier first)
 * with the asks the same way, the last order of each side in part.
 */
export function refUncross(orders: readonly ROrder[], reference: number): RUncross | null {
  const bids = orders.filter((o) => o.side === 'buy').sort(byPriority('buy'));
  const asks = orders.filter((o) => o.side === 'sell').sort(byPriority('sell'));
  let best: { p: number; v: number; imb: number } | null = null;
  for (const p of new Set(orders.map((o) => o.price))) {
    let d = 0;
    let s = 0;
    for (const b of bids) if (b.price >= p) d += b.open;
    for (const a of asks) if (a.price <= p) s += a.open;
    const v = Math.min(d, s);
    const imb = Math.abs(d - s);
    if (v === 0) continue;
    const better =
      best === null ||
      v > best.v ||
      (v === best.v &&
        (imb < best.imb ||
          (imb === best.imb &&
            (Math.abs(p - reference) < Math.abs(best.p - reference) ||
              (Math.abs(p - reference) === Math.abs(best.p - reference) && p < best.p)))));
    if (better) best = { p, v, imb };
  }
  if (best === null) return null;
  const fills: RUncross['fills'] = [];
  let i = 0;
  let j = 0;
  let bLeft = bids[0]?.open ?? 0;
  let aLeft = asks[0]?.open ?? 0;
  let left = best.v;
  while (left > 0) {
    const lots = Math.min(bLeft, aLeft, left);
    fills.push({ buy: bids[i]!, sell: asks[j]!, lots });
    left -= lots;
    bLeft -= lots;
    aLeft -= lots;
    if (bLeft === 0 && left > 0) bLeft = bids[++i]!.open;
    if (aLeft === 0 && left > 0) aLeft = asks[++j]!.open;
  }
  return { price: best.p, volume: best.v, fills };
}

/** Lots of an order that would open the position (beyond what closes it). */
export function opening(position: number, side: Side, lots: number): number {
  const closing = side === 'buy' ? Math.max(0, -position) : Math.max(0, position);
  return Math.max(0, lots - closing);
}

export class RefMarket {
  orders: ROrder[] = [];
  positions = new Map<number, number>();
  /** Fees each account paid (rebates none: the model's maker fee is positive). */
  fees = new Map<number, bigint>();
  indexTicks = 0;
  halted = false;
  lastPrice = 0;
  refs: { ref: number; start: number }[];
  auctionEndMs = 0;
  nextOrderId: number;
  private clock = 0;
  nowMs = 0;
  events: REvent[] = [];

  constructor(
    readonly p: RefParams,
    firstOrderId: number,
  ) {
    this.refs = p.triggers.map(() => ({ ref: 0, start: 0 }));
    this.nextOrderId = firstOrderId;
  }

  get mark(): number {
    return this.indexTicks;
  }

  get inAuction(): boolean {
    return this.auctionEndMs !== 0;
  }

  position(acct: number): number {
    return this.positions.get(acct) ?? 0;
  }

  openInterest(): number {
    let oi = 0;
    for (const s of this.positions.values()) oi += Math.max(0, s);
    return oi;
  }

  setOraclePrice(quote: bigint): void {
    let t = halfEven(quote, this.p.tickSizeQuote);
    if (t < 1n) t = 1n;
    this.indexTicks = Number(t);
  }

  // --- price monitoring -------------------------------------------------------------

  /** Trigger i's reference now: its window's, the last price once the horizon passed, the mark before any trade. */
  private reference(i: number): number {
    const s = this.refs[i]!;
    const expired = this.nowMs - s.start >= this.p.triggers[i]!.horizonMs;
    const r = s.ref === 0 || expired ? this.lastPrice : s.ref;
    return r === 0 ? this.mark : r;
  }

  /** [lo, hi] per trigger, as they stand when an order arrives. */
  bounds(): [number, number][] {
    return this.p.triggers.map((t, i) => {
      const r = this.reference(i);
      const d = Number((BigInt(r) * BigInt(t.maxMoveBps)) / 10_000n);
      return [r - d, r + d];
    });
  }

  private onTrade(price: number): void {
    this.p.triggers.forEach((t, i) => {
      const s = this.refs[i]!;
      if (s.ref === 0 || this.nowMs - s.start >= t.horizonMs) {
        s.ref = this.lastPrice;
        s.start = this.nowMs;
      }
    });
    this.lastPrice = price;
    for (const s of this.refs) {
      if (s.ref === 0) {
        s.ref = price;
        s.start = this.nowMs;
      }
    }
  }

  private startAuction(price: number, bounds: [number, number][]): void {
    let ms = 0;
    this.p.triggers.forEach((t, i) => {
      const [lo, hi] = bounds[i]!;
      if (price < lo || price > hi) ms = Math.max(ms, t.auctionMs);
    });
    this.auctionEndMs = this.nowMs + ms;
    this.events.push({ type: 'auctionStarted', priceTicks: price, endMs: this.auctionEndMs });
  }

  // --- the block ----------------------------------------------------------------------

  /** Steps 2 and 4 of a block: good-til expiry, then the uncross when due. */
  beginBlock(nowMs: number): void {
    this.nowMs = nowMs;
    this.events = [];
    const gone = this.orders
      .filter((o) => o.goodTilMs !== 0 && o.goodTilMs <= nowMs)
      .sort((x, y) => x.goodTilMs - y.goodTilMs || x.id - y.id);
    for (const o of gone) {
      this.remove(o);
      this.events.push({ type: 'orderExpired', orderId: o.id, account: o.acct });
    }
    if (this.inAuction && !this.halted && nowMs >= this.auctionEndMs) this.uncrossNow();
  }

  private remove(o: ROrder): void {
    const i = this.orders.indexOf(o);
    if (i >= 0) this.orders.splice(i, 1);
  }

  private applyTrade(acct: number, lots: number, price: number, fee: bigint): void {
    void price;
    this.positions.set(acct, this.position(acct) + lots);
    this.fees.set(acct, (this.fees.get(acct) ?? 0n) + fee);
  }

  private notional(price: number, lots: number): bigint {
    return BigInt(price) * BigInt(lots) * this.p.k;
  }

  uncrossNow(): void {
    const reference = this.lastPrice !== 0 ? this.lastPrice : this.mark;
    let r: RUncross | null;
    for (let round = 0; ; round++) {
      r = refUncross(this.orders, reference);
      if (r === null) break;
      let cancel: ROrder[] = [];
      const over = this.overCap(r);
      if (round < 8) {
        if (over !== null) cancel = [over];
      } else if (over !== null) {
        cancel = this.openingOrders();
      }
      if (cancel.length === 0) break;
      for (const o of cancel) {
        this.remove(o);
        this.events.push({ type: 'makerCancelled', orderId: o.id, account: o.acct });
      }
    }
    const price = r?.price ?? 0;
    for (const f of r?.fills ?? []) {
      const n = this.notional(price, f.lots);
      const fee = ceilDiv(ceilDiv(n * BigInt(this.p.takerFeePpm), PPM), 2n);
      this.applyTrade(f.buy.acct, f.lots, price, fee);
      this.applyTrade(f.sell.acct, -f.lots, price, fee);
      for (const o of [f.buy, f.sell]) {
        o.open -= f.lots;
        o.filled += f.lots;
        if (o.open === 0) this.remove(o);
      }
      this.events.push({
        type: 'auctionTrade',
        buyOrderId: f.buy.id,
        sellOrderId: f.sell.id,
        buyAccount: f.buy.acct,
        sellAccount: f.sell.acct,
        priceTicks: price,
        sizeLots: f.lots,
        buyFeeQuote: fee,
        sellFeeQuote: fee,
      });
    }
    for (const o of this.orders) o.auction = false;
    this.auctionEndMs = 0;
    if (price > 0) this.lastPrice = price;
    for (const s of this.refs) {
      s.ref = this.lastPrice;
      s.start = this.nowMs;
    }
    this.events.push({ type: 'auctionEnded', priceTicks: price, volumeLots: r?.volume ?? 0 });
  }

  /** The later order of the first fill that raises open interest above the cap, walking the fills as allocated. */
  private overCap(r: RUncross): ROrder | null {
    const cap = this.p.openInterestCapLots;
    if (cap === undefined) return null;
    const sizes = new Map(this.positions);
    let oi = this.openInterest();
    const move = (acct: number, lots: number): void => {
      const before = sizes.get(acct) ?? 0;
      sizes.set(acct, before + lots);
      oi += Math.max(0, before + lots) - Math.max(0, before);
    };
    for (const f of r.fills) {
      const before = oi;
      move(f.buy.acct, f.lots);
      move(f.sell.acct, -f.lots);
      if (oi > before && oi > cap) return f.buy.time > f.sell.time ? f.buy : f.sell;
    }
    return null;
  }

  /** Every order that could open its owner's position, with the owner's earlier orders on its side. */
  private openingOrders(): ROrder[] {
    const out: ROrder[] = [];
    for (const side of ['buy', 'sell'] as const) {
      const ahead = new Map<number, number>();
      for (const o of this.orders.filter((x) => x.side === side).sort((x, y) => x.time - y.time)) {
        const lots = (ahead.get(o.acct) ?? 0) + o.open;
        ahead.set(o.acct, lots);
        if (opening(this.position(o.acct), side, lots) > 0) out.push(o);
      }
    }
    return out;
  }

  // --- transactions ---------------------------------------------------------------------

  private outsideBand(price: number): boolean {
    const band = this.p.priceBandPpm;
    if (band === undefined) return false;
    const mark = BigInt(this.mark);
    let d = (mark * BigInt(band)) / PPM;
    if (d < 1n) d = 1n;
    const lo = mark - d < 1n ? 1n : mark - d;
    return BigInt(price) < lo || BigInt(price) > mark + d;
  }

  private overOiCap(acct: number, side: Side, lots: number): boolean {
    const cap = this.p.openInterestCapLots;
    if (cap === undefined) return false;
    const open = opening(this.position(acct), side, lots);
    return open > 0 && this.openInterest() + open > cap;
  }

  private ownCount(acct: number): number {
    return this.orders.filter((o) => o.acct === acct).length;
  }

  /**
   * A placement. Checks in this order: MarketHalted, the reduce-only rules
   * (ReduceOnlyWouldIncrease, clamp), MarketInAuction, TooManyOpenOrders,
   * PostOnlyWouldTake, PriceOutsideBand, OpenInterestCapExceeded. The docs
   * order none of these against each other; the driver meets each pair.
   */
  place(acct: number, a: RPlace): RResult {
    if (this.halted) return { ok: false, code: 'MarketHalted' };
    const buy = a.side === 'buy';
    let size = a.sizeLots;
    let tif: 'GTC' | 'IOC' | 'FOK' = a.tif === 'postOnly' ? 'GTC' : a.tif;
    const postOnly = a.tif === 'postOnly';
    let price: number;
    if (a.type === 'limit') price = a.priceTicks!;
    else {
      const index = BigInt(this.mark);
      const slip = BigInt(this.p.marketSlippagePpm);
      let worst = buy ? (index * (PPM + slip)) / PPM : ceilDiv(index * (PPM - slip), PPM);
      if (worst < 1n) worst = 1n;
      price = Number(worst);
      if (a.priceTicks !== undefined)
        price = buy ? Math.min(price, a.priceTicks) : Math.max(price, a.priceTicks);
    }
    if (a.reduceOnly) {
      const pos = this.position(acct);
      if (pos === 0 || pos > 0 === buy) return { ok: false, code: 'ReduceOnlyWouldIncrease' };
      size = Math.min(size, Math.abs(pos));
      if (tif === 'GTC') tif = 'IOC';
    }
    if (this.inAuction && tif !== 'GTC') return { ok: false, code: 'MarketInAuction' };
    if (tif === 'GTC' && this.ownCount(acct) >= this.p.openOrdersMax)
      return { ok: false, code: 'TooManyOpenOrders' };
    if (postOnly && !this.inAuction) {
      const opp = this.bookSide(buy ? 'sell' : 'buy');
      if (opp.length > 0 && (buy ? opp[0]!.price <= price : opp[0]!.price >= price))
        return { ok: false, code: 'PostOnlyWouldTake' };
    }
    if (a.type === 'limit' && this.outsideBand(price))
      return { ok: false, code: 'PriceOutsideBand' };
    if (!postOnly && this.overOiCap(acct, a.side, size))
      return { ok: false, code: 'OpenInterestCapExceeded' };
    const o: ROrder = {
      id: this.nextOrderId++,
      acct,
      side: a.side,
      price,
      open: size,
      filled: 0,
      time: ++this.clock,
      stp: a.stp,
      postOnly,
      goodTilMs: a.goodTilMs ?? 0,
      auction: false,
    };
    if (this.inAuction) {
      o.auction = true;
      this.orders.push(o);
      return { ok: true, order: this.outcome(o, 'rested', null, 0, size, 0, []) };
    }
    return { ok: true, order: this.take(o, tif) };
  }

  private outcome(
    o: ROrder,
    status: ROutcome['status'],
    reason: string | null,
    filledLots: number,
    restedLots: number,
    cancelledLots: number,
    fills: RFill[],
  ): ROutcome {
    return { orderId: o.id, status, reason, filledLots, restedLots, cancelledLots, fills };
  }

  /** The book's orders of a side (not the auction's), best first. */
  bookSide(side: Side): ROrder[] {
    return this.orders.filter((o) => o.side === side && !o.auction).sort(byPriority(side));
  }

  /**
   * An incoming order against the book (continuous trading): a placement, or
   * an amend that re-enters (not yet in `orders`). docs/book.md "Matching
   * rules", "Self-trade prevention", "Auction stop"; docs/exchange.md
   * "Volatility auctions", "Trigger" and "Own orders never trigger".
   */
  private take(o: ROrder, tif: 'GTC' | 'IOC' | 'FOK'): ROutcome {
    const buy = o.side === 'buy';
    const within = (x: ROrder): boolean => (buy ? x.price <= o.price : x.price >= o.price);
    const opp = this.bookSide(buy ? 'sell' : 'buy').filter(within);
    const bounds = this.bounds();
    const lo = Math.max(1, ...bounds.map((b) => b[0]));
    const hi = Math.min(Number.MAX_SAFE_INTEGER, ...bounds.map((b) => b[1]));
    const beyondNear = (p: number): boolean => (buy ? p > hi : p < lo);
    const beyondFar = (p: number): boolean => (buy ? p < lo : p > hi);
    const size = o.open;
    if (o.postOnly) {
      this.orders.push(o);
      return this.outcome(o, 'rested', null, 0, size, 0, []);
    }
    // The first other account's order, past the taker's own under its STP mode.
    let first: ROrder | undefined;
    for (const x of opp) {
      if (x.acct !== o.acct) {
        first = x;
        break;
      }
      if (o.stp !== 'cancelResting') break;
    }
    if (first !== undefined && beyondFar(first.price)) {
      // Breaches at once: nothing trades.
      if (tif !== 'FOK' && o.stp === 'cancelResting') {
        for (const x of opp) {
          if (x === first) break;
          this.remove(x);
        }
      }
      if (tif === 'GTC') {
        this.startAuction(first.price, bounds);
        o.auction = true;
        this.orders.push(o);
        return this.outcome(o, 'rested', 'AuctionTriggered', 0, size, 0, []);
      }
      if (tif === 'FOK') return this.outcome(o, 'cancelled', 'FokUnfillable', 0, 0, size, []);
      return this.outcome(o, 'cancelled', 'IocRemainder', 0, 0, size, []);
    }
    if (tif === 'FOK') {
      let can = 0;
      for (const x of opp) {
        if (x.acct === o.acct) {
          if (o.stp === 'cancelResting') continue;
          break;
        }
        if (beyondNear(x.price)) break;
        can += x.open;
      }
      if (can < size) return this.outcome(o, 'cancelled', 'FokUnfillable', 0, 0, size, []);
    }
    let left = size;
    const fills: RFill[] = [];
    let stopped: 'SelfTrade' | 'AuctionTriggered' | null = null;
    let breach: ROrder | undefined;
    for (const x of opp) {
      if (left === 0) break;
      if (x.acct === o.acct) {
        if (o.stp !== 'cancelIncoming') this.remove(x);
        if (o.stp === 'cancelResting') continue;
        stopped = 'SelfTrade';
        break;
      }
      if (beyondNear(x.price)) {
        stopped = 'AuctionTriggered';
        breach = x;
        break;
      }
      const lots = Math.min(left, x.open);
      const n = this.notional(x.price, lots);
      const takerFee = ceilDiv(n * BigInt(this.p.takerFeePpm), PPM);
      const makerFee = ceilDiv(n * BigInt(this.p.makerFeePpm), PPM);
      this.applyTrade(o.acct, buy ? lots : -lots, x.price, takerFee);
      this.applyTrade(x.acct, buy ? -lots : lots, x.price, makerFee);
      this.onTrade(x.price);
      fills.push({
        makerOrderId: x.id,
        makerAccount: x.acct,
        priceTicks: x.price,
        sizeLots: lots,
        takerFeeQuote: takerFee,
        makerFeeQuote: makerFee,
      });
      left -= lots;
      o.filled += lots;
      x.open -= lots;
      x.filled += lots;
      if (x.open === 0) this.remove(x);
    }
    const filled = size - left;
    o.open = left;
    if (left === 0) return this.outcome(o, 'filled', null, filled, 0, 0, fills);
    if (stopped === 'SelfTrade')
      return this.outcome(o, 'cancelled', 'SelfTrade', filled, 0, left, fills);
    if (stopped === 'AuctionTriggered' && tif === 'GTC') {
      this.startAuction(breach!.price, bounds);
      o.auction = true;
      this.orders.push(o);
      return this.outcome(o, 'rested', 'AuctionTriggered', filled, left, 0, fills);
    }
    if (tif === 'GTC') {
      this.orders.push(o);
      return this.outcome(o, 'rested', null, filled, left, 0, fills);
    }
    return this.outcome(o, 'cancelled', 'IocRemainder', filled, 0, left, fills);
  }

  cancel(acct: number, orderId: number): RResult {
    const o = this.orders.find((x) => x.id === orderId && x.acct === acct);
    if (o === undefined) return { ok: false, code: 'UnknownOrder' };
    this.remove(o);
    return { ok: true, count: 1 };
  }

  cancelAll(acct: number): RResult {
    const mine = this.orders.filter((x) => x.acct === acct);
    for (const o of mine) this.remove(o);
    return { ok: true, count: mine.length };
  }

  /**
   * An amend: MarketHalted, UnknownOrder, a size at or below what filled ends
   * the order, PostOnlyWouldTake (a post-only one that would trade, outside
   * an auction), PriceOutsideBand (an amend to a new price or a larger
   * size), OpenInterestCapExceeded (an amend that can take), then during an
   * auction a move among the auction orders, else a reduce in place or a
   * re-entry as an incoming GTC order.
   */
  amend(acct: number, orderId: number, priceTicks?: number, sizeLots?: number): RResult {
    if (this.halted) return { ok: false, code: 'MarketHalted' };
    const o = this.orders.find((x) => x.id === orderId && x.acct === acct);
    if (o === undefined) return { ok: false, code: 'UnknownOrder' };
    const price = priceTicks ?? o.price;
    let open = o.open;
    if (sizeLots !== undefined) {
      open = sizeLots - o.filled;
      if (open <= 0) {
        this.remove(o);
        return { ok: true, order: this.outcome(o, 'cancelled', null, 0, 0, o.open, []) };
      }
    }
    const losesPlace = price !== o.price || open > o.open;
    // A post-only order moved to where it would take is refused for that
    // first, before the breakers, as its placement there would be.
    if (o.postOnly && !this.inAuction) {
      const buy = o.side === 'buy';
      const opp = this.bookSide(buy ? 'sell' : 'buy').filter((x) => x !== o);
      if (opp.length > 0 && (buy ? opp[0]!.price <= price : opp[0]!.price >= price))
        return { ok: false, code: 'PostOnlyWouldTake' };
    }
    if (losesPlace && this.outsideBand(price)) return { ok: false, code: 'PriceOutsideBand' };
    if (!o.postOnly && losesPlace && this.overOiCap(acct, o.side, open))
      return { ok: false, code: 'OpenInterestCapExceeded' };
    if (this.inAuction) {
      o.price = price;
      o.open = open;
      if (losesPlace) {
        o.time = ++this.clock;
        o.auction = true;
      }
      return { ok: true, order: this.outcome(o, 'rested', null, 0, open, 0, []) };
    }
    if (!losesPlace) {
      o.open = open;
      return { ok: true, order: this.outcome(o, 'rested', null, 0, open, 0, []) };
    }
    this.remove(o);
    o.price = price;
    o.open = open;
    o.time = ++this.clock;
    return { ok: true, order: this.take(o, 'GTC') };
  }

  halt(): void {
    if (!this.halted) this.events.push({ type: 'marketHalted' });
    this.halted = true;
  }

  resume(): void {
    if (this.halted) this.events.push({ type: 'marketResumed' });
    this.halted = false;
  }
}

// --- settlement of a dated market (docs/derivatives.md "Settlement") -------------------

export const SETTLEMENT_WINDOW_MS = 30 * 60_000;

/** The index as a step function of block times: each block's price holds until the next block. */
export class RefTwap {
  private readonly points: { t: number; price: bigint | null }[] = [];
  constructor(readonly expiryMs: number) {}

  observe(t: number, price: bigint | null): void {
    this.points.push({ t, price });
  }

  /** The settlement price once a block at or after expiry came, counting whole ms; null while nothing counted. */
  price(): bigint | null {
    const start = this.expiryMs - SETTLEMENT_WINDOW_MS;
    let sum = 0n;
    let ms = 0n;
    for (let i = 0; i + 1 < this.points.length; i++) {
      const { t, price } = this.points[i]!;
      if (price === null) continue;
      const a = Math.max(t, start);
      const b = Math.min(this.points[i + 1]!.t, this.expiryMs);
      if (b <= a) continue;
      sum += price * BigInt(b - a);
      ms += BigInt(b - a);
    }
    if (ms === 0n) {
      // Nothing in the window: the first fresh price at or after expiry.
      const late = this.points.find((p) => p.t >= this.expiryMs && p.price !== null);
      return late?.price ?? null;
    }
    return halfEven(sum, ms);
  }
}

/** What a position of `lots` receives at settlement (negative: pays): floor(lots × value / lotsPerBase). */
export function settlementCash(lots: number, valueQuote: bigint, lotsPerBase: number): bigint {
  return floorDiv(BigInt(lots) * valueQuote, BigInt(lotsPerBase));
}

export function optionValue(price: bigint, strike: bigint, call: boolean): bigint {
  const v = call ? price - strike : strike - price;
  return v > 0n ? v : 0n;
}
