// The order book and matching engine of one market: price-time priority,
// trades at the resting order's price, pure and deterministic (docs/book.md).
//
// Costs, with L the levels on a side, F the fills and S the self-trade
// cancels of an operation, k the orders it removes, n the orders with a
// good-til time:
//   place        O(levels touched + F + S) (+ O(log L + levels better) for a new level,
//                + O(log n) per order with a good-til time that rests or leaves)
//   FOK check    O(levels touched), or O(orders touched) if the owner rests orders opposite
//   amend        O(1) to reduce in place; otherwise as place
//   cancel       O(1) (+ O(log L + levels better) if its level empties, + O(log n) with good-til)
//   cancelAll    O(k) as k cancels
//   expire       O(k log n)
//   best bid/ask O(1); depth O(levels returned); restingLotsTo O(levels counted)
//   owner stats  O(1); ownerOrders O(orders of the owner)

import { AssertionError, assert } from '../../lib/assert.ts';
import { BOOK_DEPTH_LEVELS_MAX, ORDER_SPARES_MAX, PRICE_TICKS_MAX } from '../../lib/limits.ts';
import { ExpiryHeap } from './expiry.ts';
import { ChangeSet, FillList, RemovedList } from './lists.ts';
import type { Level } from './nodes.ts';
import { Order, OwnerState } from './nodes.ts';
import { BookSide } from './side.ts';
import { IdTable } from './table.ts';
import type {
  FillGuard,
  PlaceOrder,
  RestingOrder,
  Side,
  StpMode,
  TakerReason,
  TakerResult,
  TakerStatus,
} from './types.ts';
import { STOP_AT_ONCE } from './types.ts';

class MutableResult implements TakerResult {
  status: TakerStatus = 'rejected';
  reason: TakerReason | null = null;
  filledLots = 0;
  restedLots = 0;
  cancelledLots = 0;
}

export interface Depth {
  /** Best first. */
  priceTicks: number[];
  sizeLots: number[];
  orderCounts: number[];
}

// Read once: an imported binding may be read through an accessor on every use.
const orderSparesMax = ORDER_SPARES_MAX;

// The checks below run on every operation, so their messages are built only on
// failure (an assert's template message would be formatted on every call).

/** A positive safe integer (prices, sizes), or with `zero` also 0 (owners, times). */
function isCount(x: number, zero: boolean): boolean {
  return Number.isSafeInteger(x) && (x > 0 || (zero && x === 0));
}

function failIf(bad: boolean, field: string, value: number): void {
  if (bad) throw new AssertionError(`book: bad ${field}: ${value}`);
}

/** The tighter of a limit and a stop price for a taker on `side`. */
function stopLimit(side: Side, limitTicks: number, stopTicks: number): number {
  // A limit that no resting price (1..PRICE_TICKS_MAX) meets.
  if (stopTicks === STOP_AT_ONCE) return side === 'buy' ? 0 : PRICE_TICKS_MAX + 1;
  return side === 'buy' ? Math.min(limitTicks, stopTicks) : Math.max(limitTicks, stopTicks);
}

export class OrderBook {
  readonly bids = new BookSide('buy');
  readonly asks = new BookSide('sell');
  /** The highest order id seen; a new order must exceed it. */
  lastOrderId = 0;

  /**
   * Buffers reused by every operation (valid until the next one): the fills of
   * the last place or amend, and the resting orders the last operation removed
   * without trading (self-trade prevention, cancelAll, expire).
   */
  readonly fills = new FillList();
  readonly removed = new RemovedList();
  /** Changed levels and orders since changes.clear(). */
  readonly changes = new ChangeSet();

  private readonly orders = new IdTable<Order>();
  private readonly owners = new IdTable<OwnerState>();
  private readonly expiry = new ExpiryHeap();
  private readonly result = new MutableResult();
  /** Order records of orders that left the book, for reuse. */
  private readonly spareOrders: Order[] = [];
  /** Set by match() when self-trade prevention stopped the incoming order. */
  private stpStopped = false;
  /** Set by match() when the fill guard stopped the incoming order. */
  private guardStopped = false;

  // --- operations --------------------------------------------------------------

  /**
   * Places an incoming order: matches it, then rests (GTC) or cancels its
   * remainder. A market order is an IOC order whose priceTicks is the
   * caller's worst acceptable price. The returned result, like `fills` and
   * `removed`, is reused by the next operation: read it first.
   */
  place(o: PlaceOrder): TakerResult {
    const { orderId, owner, side, priceTicks, sizeLots, timeInForce } = o;
    const postOnly = o.postOnly ?? false;
    const stp = o.stp ?? 'cancelResting';
    const goodTilMs = o.goodTilMs ?? 0;
    const stopTicks = o.stopTicks ?? 0;
    const guard = o.guard ?? null;
    failIf(
      !isCount(orderId, false) || orderId <= this.lastOrderId,
      'orderId (ids increase)',
      orderId,
    );
    failIf(!isCount(owner, true), 'owner', owner);
    failIf(!isCount(priceTicks, false), 'priceTicks', priceTicks);
    failIf(!isCount(sizeLots, false), 'sizeLots', sizeLots);
    failIf(!isCount(goodTilMs, true), 'goodTilMs', goodTilMs);
    if (stopTicks !== 0 && stopTicks !== STOP_AT_ONCE) {
      failIf(!isCount(stopTicks, false), 'stopTicks', stopTicks);
    }
    assert(!postOnly || timeInForce === 'GTC', 'post-only orders are GTC');
    this.lastOrderId = orderId;
    this.begin();

    if (postOnly && this.wouldTake(side, priceTicks)) {
      return this.finish('rejected', 'PostOnlyWouldTake', 0, 0, 0);
    }
    const matchTicks = stopTicks === 0 ? priceTicks : stopLimit(side, priceTicks, stopTicks);
    if (timeInForce === 'FOK' && !this.canFill(side, owner, matchTicks, sizeLots, stp, guard)) {
      return matchTicks !== priceTicks &&
        this.canFill(side, owner, priceTicks, sizeLots, stp, guard)
        ? this.finish('cancelled', 'AuctionTriggered', 0, 0, sizeLots)
        : this.finish('cancelled', 'FokUnfillable', 0, 0, sizeLots);
    }
    const remaining = this.match(side, owner, matchTicks, sizeLots, stp, guard);
    const filled = sizeLots - remaining;
    if (remaining === 0) return this.finish('filled', null, filled, 0, 0);
    if (this.stpStopped) return this.finish('cancelled', 'SelfTrade', filled, 0, remaining);
    // A remainder the guard stopped cannot rest: it would cross the order it stopped at.
    if (this.guardStopped) {
      return this.finish('cancelled', 'InsufficientEquity', filled, 0, remaining);
    }
    if (matchTicks !== priceTicks && this.tradesBeyondStop(side, owner, priceTicks, stp)) {
      return this.finish('cancelled', 'AuctionTriggered', filled, 0, remaining);
    }
    if (this.stpStopped) return this.finish('cancelled', 'SelfTrade', filled, 0, remaining);
    if (timeInForce !== 'GTC')
      return this.finish('cancelled', 'IocRemainder', filled, 0, remaining);

    const ownerState = this.ownerState(owner);
    const order = this.newOrder().init(
      orderId,
      owner,
      side,
      priceTicks,
      remaining,
      goodTilMs,
      stp,
      postOnly,
      ownerState,
    );
    this.orders.set(orderId, order);
    this.linkOwner(order);
    if (goodTilMs !== 0) this.expiry.push(order);
    this.linkLevel(order, this.sideOf(side).levelAt(priceTicks));
    return this.finish('rested', null, filled, remaining, 0);
  }

  /**
   * Changes a resting order's price and/or remaining size (newSizeLots is the
   * new open size, not a new original size). Reducing the size at the same
   * price keeps time priority, in place. A new price or a larger size loses
   * it: the order leaves its level and re-enters with the same id as an
   * incoming GTC order (its own STP mode and good-til time), so it may trade
   * at a crossing price, then rests at the back of its level. A post-only
   * order whose new price would trade is rejected and left unchanged.
   */
  amend(
    orderId: number,
    newPriceTicks: number,
    newSizeLots: number,
    stopTicks = 0,
    guard: FillGuard | null = null,
  ): TakerResult {
    failIf(!isCount(newPriceTicks, false), 'priceTicks', newPriceTicks);
    failIf(!isCount(newSizeLots, false), 'sizeLots', newSizeLots);
    this.begin();
    const order = this.orders.get(orderId);
    if (order === undefined) return this.finish('rejected', 'UnknownOrder', 0, 0, 0);
    if (newPriceTicks === order.priceTicks && newSizeLots <= order.sizeLots) {
      if (newSizeLots < order.sizeLots) this.reduce(order, order.sizeLots - newSizeLots);
      return this.finish('rested', null, 0, newSizeLots, 0);
    }
    if (order.postOnly && this.wouldTake(order.side, newPriceTicks)) {
      return this.finish('rejected', 'PostOnlyWouldTake', 0, 0, 0);
    }
    this.unlinkLevel(order);
    const matchTicks =
      stopTicks === 0 ? newPriceTicks : stopLimit(order.side, newPriceTicks, stopTicks);
    const remaining = this.match(
      order.side,
      order.owner,
      matchTicks,
      newSizeLots,
      order.stp,
      guard,
    );
    const filled = newSizeLots - remaining;
    const triggered =
      remaining > 0 &&
      !this.stpStopped &&
      !this.guardStopped &&
      matchTicks !== newPriceTicks &&
      this.tradesBeyondStop(order.side, order.owner, newPriceTicks, order.stp);
    const stopped = this.stpStopped || this.guardStopped;
    if (remaining === 0 || stopped || triggered) {
      this.forget(order);
      return remaining === 0
        ? this.finish('filled', null, filled, 0, 0)
        : this.finish(
            'cancelled',
            triggered ? 'AuctionTriggered' : this.stpStopped ? 'SelfTrade' : 'InsufficientEquity',
            filled,
            0,
            remaining,
          );
    }
    order.priceTicks = newPriceTicks;
    order.sizeLots = remaining;
    this.linkLevel(order, this.sideOf(order.side).levelAt(newPriceTicks));
    return this.finish('rested', null, filled, remaining, 0);
  }

  /** Cancels one resting order, listing it in `removed`; false if it is not resting. */
  cancel(orderId: number): boolean {
    this.begin();
    const order = this.orders.get(orderId);
    if (order === undefined) return false;
    this.removeListed(order);
    return true;
  }

  /** Cancels every resting order of an owner (on one side, if given), listing them in `removed` by ascending id. */
  cancelAll(owner: number, side?: Side): number {
    this.begin();
    const state = this.owners.get(owner);
    if (state === undefined) return 0;
    let order = state.head;
    while (order !== null) {
      const next = order.ownerNext;
      if (side === undefined || order.side === side) this.removeListed(order);
      order = next;
    }
    return this.removed.length;
  }

  /**
   * Rests an order at the back of its price level without matching: a call
   * auction moves orders between the market's book and the books of orders
   * entered during the auction. The order must not cross the other side; its
   * id may be below lastOrderId (ids of inserted orders are not checked for
   * growth, only for uniqueness). O(log L + levels better) for a new level +
   * O(orders of the owner with a higher id) + O(log n) with a good-til time.
   */
  insert(o: RestingOrder): void {
    failIf(!isCount(o.orderId, false), 'orderId', o.orderId);
    failIf(!isCount(o.owner, true), 'owner', o.owner);
    failIf(!isCount(o.priceTicks, false), 'priceTicks', o.priceTicks);
    failIf(!isCount(o.sizeLots, false), 'sizeLots', o.sizeLots);
    failIf(!isCount(o.goodTilMs, true), 'goodTilMs', o.goodTilMs);
    assert(!this.orders.has(o.orderId), 'insert of an order id that rests');
    assert(!this.wouldTake(o.side, o.priceTicks), 'an inserted order must not cross');
    this.begin();
    const order = this.newOrder().init(
      o.orderId,
      o.owner,
      o.side,
      o.priceTicks,
      o.sizeLots,
      o.goodTilMs,
      o.stp,
      o.postOnly,
      this.ownerState(o.owner),
    );
    this.orders.set(o.orderId, order);
    this.linkOwnerSorted(order);
    if (o.goodTilMs !== 0) this.expiry.push(order);
    this.linkLevel(order, this.sideOf(o.side).levelAt(o.priceTicks));
    if (o.orderId > this.lastOrderId) this.lastOrderId = o.orderId;
  }

  /**
   * Removes every order whose goodTilMs ≤ nowMs, listing them in `removed` in
   * (goodTilMs, orderId) order. Call it with the block time before the block's
   * orders: the book does not skip expired orders while matching.
   */
  expire(nowMs: number): number {
    failIf(!Number.isSafeInteger(nowMs), 'nowMs', nowMs);
    this.begin();
    for (;;) {
      const order = this.expiry.peek();
      if (order === undefined || order.goodTilMs > nowMs) break;
      this.removeListed(order);
    }
    return this.removed.length;
  }

  // --- queries -------------------------------------------------------------------

  bestBidTicks(): number | undefined {
    return this.bids.best()?.priceTicks;
  }

  bestAskTicks(): number | undefined {
    return this.asks.best()?.priceTicks;
  }

  /**
   * The price of the first order of another owner that an incoming order of
   * `owner` on `side` up to limitTicks would reach, as matching would walk:
   * past the owner's own orders under cancelResting (matching would cancel
   * them), undefined when one stops it first under cancelIncoming or
   * cancelBoth, or when no such order is within the limit. Changes nothing.
   * O(levels and own orders passed).
   */
  firstOtherTicks(side: Side, owner: number, limitTicks: number, stp: StpMode): number | undefined {
    const opposite = this.opposite(side);
    const levels = opposite.levels;
    for (let i = levels.length - 1; i >= 0; i--) {
      const level = levels[i]!;
      if (opposite.better(limitTicks, level.priceTicks)) return undefined;
      for (let order = level.head; order !== null; order = order.next) {
        if (order.owner !== owner) return level.priceTicks;
        if (stp !== 'cancelResting') return undefined;
      }
    }
    return undefined;
  }

  /**
   * Removes the owner's orders an incoming order of its on `side` up to
   * limitTicks would meet before another owner's, listing them in `removed`:
   * what matching under cancelResting does to them, for a taker that does
   * not reach the book (the caller's breachesAtOnce). O(own orders passed).
   */
  cancelOwnAhead(side: Side, owner: number, limitTicks: number): number {
    this.begin();
    this.tradesBeyondStop(side, owner, limitTicks, 'cancelResting');
    return this.removed.length;
  }

  /**
   * A resting order, or undefined. The record is the book's own and is reused
   * once the order leaves: read it now, do not keep it across operations.
   */
  order(orderId: number): RestingOrder | undefined {
    return this.orders.get(orderId);
  }

  get orderCount(): number {
    return this.orders.size;
  }

  levelCount(side: Side): number {
    return this.sideOf(side).levels.length;
  }

  /** Total resting size at one price on one side (0 if no level). */
  levelLots(side: Side, priceTicks: number): number {
    return this.sideOf(side).byPrice.get(priceTicks)?.totalLots ?? 0;
  }

  /** The top `levels` price levels of a side, best first. */
  depth(side: Side, levels: number): Depth {
    assert(
      Number.isSafeInteger(levels) && levels >= 0 && levels <= BOOK_DEPTH_LEVELS_MAX,
      `bad depth: ${levels}`,
    );
    const all = this.sideOf(side).levels;
    const out: Depth = { priceTicks: [], sizeLots: [], orderCounts: [] };
    for (let i = all.length - 1; i >= 0 && out.priceTicks.length < levels; i--) {
      const level = all[i]!;
      out.priceTicks.push(level.priceTicks);
      out.sizeLots.push(level.totalLots);
      out.orderCounts.push(level.orderCount);
    }
    return out;
  }

  /**
   * Resting size on `side` at prices a taker with limit priceTicks could reach
   * (bids at ≥ priceTicks, asks at ≤ priceTicks), ignoring self-trade prevention.
   */
  restingLotsTo(side: Side, priceTicks: number): number {
    const book = this.sideOf(side);
    const levels = book.levels;
    let total = 0;
    for (let i = levels.length - 1; i >= 0; i--) {
      const level = levels[i]!;
      if (book.better(priceTicks, level.priceTicks)) break;
      total += level.totalLots;
    }
    assert(Number.isSafeInteger(total), 'resting volume overflows a safe integer');
    return total;
  }

  ownerOrderCount(owner: number): number {
    return this.owners.get(owner)?.orderCount ?? 0;
  }

  /** Total open size an owner rests on one side (the caller reserves margin for it). */
  ownerRestingLots(owner: number, side: Side): number {
    const state = this.owners.get(owner);
    if (state === undefined) return 0;
    return side === 'buy' ? state.buyLots : state.sellLots;
  }

  /** An owner's resting orders by ascending order id. Do not mutate the book while iterating. */
  *ownerOrders(owner: number): Generator<RestingOrder> {
    let order = this.owners.get(owner)?.head ?? null;
    while (order !== null) {
      yield order;
      order = order.ownerNext;
    }
  }

  /** Every resting order of a side in priority order: best level first, then time. */
  *ordersOf(side: Side): Generator<RestingOrder> {
    const levels = this.sideOf(side).levels;
    for (let i = levels.length - 1; i >= 0; i--) {
      for (let order = levels[i]!.head; order !== null; order = order.next) yield order;
    }
  }

  // --- matching --------------------------------------------------------------------

  /** True if an order at this limit would meet the opposite side (used by post-only). */
  private wouldTake(side: Side, priceTicks: number): boolean {
    const best = this.opposite(side).best();
    if (best === undefined) return false;
    return side === 'buy' ? best.priceTicks <= priceTicks : best.priceTicks >= priceTicks;
  }

  /**
   * Whether a FOK order would fill in full: counts only size that matching
   * would actually trade. Under cancelResting the owner's own orders are
   * skipped (they would be cancelled, not traded); under cancelIncoming and
   * cancelBoth counting stops at the first own order, where matching would stop.
   */
  private canFill(
    side: Side,
    owner: number,
    priceTicks: number,
    sizeLots: number,
    stp: StpMode,
    guard: FillGuard | null,
  ): boolean {
    if (guard !== null) return this.canFillGuarded(side, owner, priceTicks, sizeLots, stp, guard);
    const opposite = this.opposite(side);
    const levels = opposite.levels;
    const state = this.owners.get(owner);
    const ownOpposite = state === undefined ? 0 : side === 'buy' ? state.sellLots : state.buyLots;
    let available = 0;
    for (let i = levels.length - 1; i >= 0; i--) {
      const level = levels[i]!;
      if (opposite.better(priceTicks, level.priceTicks)) return false;
      if (ownOpposite === 0) {
        available += level.totalLots;
        if (available >= sizeLots) return true;
        continue;
      }
      for (let order = level.head; order !== null; order = order.next) {
        if (order.owner === owner) {
          if (stp !== 'cancelResting') return false;
          continue;
        }
        available += order.sizeLots;
        if (available >= sizeLots) return true;
      }
    }
    return false;
  }

  /**
   * canFill with a fill guard: the guard sees the very fills matching would
   * make, in the same order (a resting order it would cancel counts nothing).
   * O(orders touched).
   */
  private canFillGuarded(
    side: Side,
    owner: number,
    priceTicks: number,
    sizeLots: number,
    stp: StpMode,
    guard: FillGuard,
  ): boolean {
    guard.begin();
    const opposite = this.opposite(side);
    const levels = opposite.levels;
    let available = 0;
    for (let i = levels.length - 1; i >= 0; i--) {
      const level = levels[i]!;
      if (opposite.better(priceTicks, level.priceTicks)) return false;
      for (let order = level.head; order !== null; order = order.next) {
        if (order.owner === owner) {
          if (stp !== 'cancelResting') return false;
          continue;
        }
        const lots = Math.min(order.sizeLots, sizeLots - available);
        const admitted = guard.admit(order.owner, level.priceTicks, lots);
        if (admitted < 0) continue;
        if (admitted < lots) return false;
        available += lots;
        if (available >= sizeLots) return true;
      }
    }
    return false;
  }

  /**
   * After matching stopped at the auction stop with size left: whether the
   * order would go on to trade beyond it, with another owner. Up to that
   * owner's order, the order's STP mode meets the owner's own orders as
   * matching would (cancelResting removes them and goes on; cancelIncoming
   * and cancelBoth stop it, stpStopped), so an own order never starts an
   * auction, and a remainder that rests crosses none. Nothing trades.
   * O(own orders passed).
   */
  private tradesBeyondStop(side: Side, owner: number, limitTicks: number, stp: StpMode): boolean {
    const opposite = this.opposite(side);
    for (;;) {
      const level = opposite.best();
      if (level === undefined || opposite.better(limitTicks, level.priceTicks)) return false;
      const order = level.head!;
      if (order.owner !== owner) return true;
      if (stp !== 'cancelIncoming') this.removeListed(order);
      if (stp !== 'cancelResting') {
        this.stpStopped = true;
        return false;
      }
    }
  }

  /** Matches an incoming order against the opposite side; returns its unfilled size. */
  private match(
    side: Side,
    owner: number,
    limitTicks: number,
    sizeLots: number,
    stp: StpMode,
    guard: FillGuard | null,
  ): number {
    this.stpStopped = false;
    this.guardStopped = false;
    if (guard !== null) guard.begin();
    const opposite = this.opposite(side);
    const buy = side === 'buy';
    const fills = this.fills;
    let remaining = sizeLots;
    while (remaining > 0) {
      const level = opposite.best();
      if (level === undefined) break;
      const priceTicks = level.priceTicks;
      if (buy ? priceTicks > limitTicks : priceTicks < limitTicks) break;
      let order = level.head;
      while (order !== null && remaining > 0) {
        const next = order.next;
        if (order.owner === owner) {
          if (stp === 'cancelIncoming') {
            this.stpStopped = true;
            break;
          }
          this.removeListed(order);
          if (stp === 'cancelBoth') {
            this.stpStopped = true;
            break;
          }
        } else {
          let lots = remaining < order.sizeLots ? remaining : order.sizeLots;
          const admitted = guard === null ? lots : guard.admit(order.owner, priceTicks, lots);
          if (admitted < 0) {
            this.removeListed(order);
          } else {
            if (admitted < lots) {
              this.guardStopped = true;
              lots = admitted;
            }
            if (lots === order.sizeLots) {
              fills.push(order.orderId, order.owner, priceTicks, lots, true);
              this.remove(order);
            } else if (lots > 0) {
              fills.push(order.orderId, order.owner, priceTicks, lots, false);
              this.reduce(order, lots);
            }
            remaining -= lots;
            if (this.guardStopped) break;
          }
        }
        order = next;
      }
      if (this.stpStopped || this.guardStopped) break;
    }
    return remaining;
  }

  // --- structure -----------------------------------------------------------------

  private begin(): void {
    this.fills.reset();
    this.removed.reset();
  }

  private finish(
    status: TakerStatus,
    reason: TakerReason | null,
    filledLots: number,
    restedLots: number,
    cancelledLots: number,
  ): TakerResult {
    const r = this.result;
    r.status = status;
    r.reason = reason;
    r.filledLots = filledLots;
    r.restedLots = restedLots;
    r.cancelledLots = cancelledLots;
    return r;
  }

  private sideOf(side: Side): BookSide {
    return side === 'buy' ? this.bids : this.asks;
  }

  private opposite(side: Side): BookSide {
    return side === 'buy' ? this.asks : this.bids;
  }

  private ownerState(owner: number): OwnerState {
    let state = this.owners.get(owner);
    if (state === undefined) {
      state = new OwnerState(owner);
      this.owners.set(owner, state);
    }
    return state;
  }

  /** Removes an order without trading it and lists it in `removed`. */
  private removeListed(order: Order): void {
    this.removed.push(order.orderId, order.owner, order.side, order.priceTicks, order.sizeLots);
    this.remove(order);
  }

  private remove(order: Order): void {
    this.unlinkLevel(order);
    this.forget(order);
  }

  /** Drops an order that is in no level from the owner index, the expiry heap and the id map. */
  private forget(order: Order): void {
    this.unlinkOwner(order);
    if (order.heapIndex >= 0) this.expiry.remove(order);
    this.orders.delete(order.orderId);
    this.markOrder(order);
    order.ownerState = null;
    if (this.spareOrders.length < orderSparesMax) this.spareOrders.push(order);
  }

  private newOrder(): Order {
    return this.spareOrders.pop() ?? new Order();
  }

  private reduce(order: Order, lots: number): void {
    order.sizeLots -= lots;
    const level = order.level!;
    level.totalLots -= lots;
    const state = order.ownerState!;
    if (order.side === 'buy') state.buyLots -= lots;
    else state.sellLots -= lots;
    this.markLevel(level);
    this.markOrder(order);
  }

  /** Appends an order at the back of a level's queue. */
  private linkLevel(order: Order, level: Level): void {
    order.level = level;
    order.prev = level.tail;
    order.next = null;
    if (level.tail === null) level.head = order;
    else level.tail.next = order;
    level.tail = order;
    level.orderCount++;
    level.totalLots += order.sizeLots;
    assert(Number.isSafeInteger(level.totalLots), 'level size overflows a safe integer');
    const state = order.ownerState!;
    if (order.side === 'buy') state.buyLots += order.sizeLots;
    else state.sellLots += order.sizeLots;
    this.markLevel(level);
    this.markOrder(order);
  }

  private unlinkLevel(order: Order): void {
    const level = order.level!;
    const { prev, next } = order;
    if (prev === null) level.head = next;
    else prev.next = next;
    if (next === null) level.tail = prev;
    else next.prev = prev;
    order.prev = null;
    order.next = null;
    order.level = null;
    level.orderCount--;
    level.totalLots -= order.sizeLots;
    const state = order.ownerState!;
    if (order.side === 'buy') state.buyLots -= order.sizeLots;
    else state.sellLots -= order.sizeLots;
    this.markLevel(level);
    this.markOrder(order);
    if (level.orderCount === 0) this.sideOf(level.side).removeLevel(level);
  }

  /** Appends to the owner's list: ids only grow, so the list stays in ascending id. */
  private linkOwner(order: Order): void {
    const state = order.ownerState!;
    order.ownerPrev = state.tail;
    order.ownerNext = null;
    if (state.tail === null) state.head = order;
    else state.tail.ownerNext = order;
    state.tail = order;
    state.orderCount++;
  }

  /** Links an order into its owner's list at its place by id (insert: ids need not grow). */
  private linkOwnerSorted(order: Order): void {
    const state = order.ownerState!;
    let after = state.tail;
    while (after !== null && after.orderId > order.orderId) after = after.ownerPrev;
    const before = after === null ? state.head : after.ownerNext;
    order.ownerPrev = after;
    order.ownerNext = before;
    if (after === null) state.head = order;
    else after.ownerNext = order;
    if (before === null) state.tail = order;
    else before.ownerPrev = order;
    state.orderCount++;
  }

  private unlinkOwner(order: Order): void {
    const state = order.ownerState!;
    const { ownerPrev, ownerNext } = order;
    if (ownerPrev === null) state.head = ownerNext;
    else ownerPrev.ownerNext = ownerNext;
    if (ownerNext === null) state.tail = ownerPrev;
    else ownerNext.ownerPrev = ownerPrev;
    order.ownerPrev = null;
    order.ownerNext = null;
    // An owner's entry stays when its last order goes: owners are accounts, which
    // come back, and re-creating the entry on every round trip costs more than it holds.
    state.orderCount--;
  }

  private markLevel(level: Level): void {
    const changes = this.changes;
    changes.changeCount++;
    if (level.changeEpoch === changes.epoch) return;
    level.changeEpoch = changes.epoch;
    const i = changes.levelCount++;
    changes.levelSide[i] = level.side;
    changes.levelPriceTicks[i] = level.priceTicks;
  }

  private markOrder(order: Order): void {
    const changes = this.changes;
    if (order.changeEpoch === changes.epoch) return;
    order.changeEpoch = changes.epoch;
    changes.orderId[changes.orderCount++] = order.orderId;
  }

  // --- restore and invariants ------------------------------------------------------

  /**
   * Rebuilds a book from resting orders given side by side, level by level in
   * price order, and in time priority within a level (the snapshot order).
   * The caller (the snapshot decoder) has validated them.
   */
  static restore(lastOrderId: number, orders: readonly RestingOrder[]): OrderBook {
    const book = new OrderBook();
    book.lastOrderId = lastOrderId;
    const built: Order[] = [];
    for (const o of orders) {
      const order = new Order().init(
        o.orderId,
        o.owner,
        o.side,
        o.priceTicks,
        o.sizeLots,
        o.goodTilMs,
        o.stp,
        o.postOnly,
        book.ownerState(o.owner),
      );
      assert(!book.orders.has(o.orderId), `duplicate order id ${o.orderId}`);
      book.orders.set(o.orderId, order);
      if (o.goodTilMs !== 0) book.expiry.push(order);
      book.linkLevel(order, book.sideOf(o.side).levelAt(o.priceTicks));
      built.push(order);
    }
    built.sort((a, b) => a.orderId - b.orderId);
    for (const order of built) book.linkOwner(order);
    book.changes.clear();
    book.checkInvariants();
    return book;
  }

  /**
   * Checks every structural invariant (O(orders)), for tests: no crossed book,
   * no empty level or zero-size order, level totals, links, the id map, the
   * per-owner indices and the expiry heap all consistent with the levels.
   */
  checkInvariants(): void {
    const bid = this.bids.best();
    const ask = this.asks.best();
    if (bid !== undefined && ask !== undefined) {
      assert(
        bid.priceTicks < ask.priceTicks,
        `crossed book: ${bid.priceTicks} ≥ ${ask.priceTicks}`,
      );
    }
    const owners = new Map<number, { count: number; buyLots: number; sellLots: number }>();
    let orderTotal = 0;
    let withExpiry = 0;
    for (const book of [this.bids, this.asks]) {
      assert(book.byPrice.size === book.levels.length, 'level map and array differ');
      let previous: number | undefined;
      for (const level of book.levels) {
        assert(level.side === book.side, 'level on the wrong side');
        assert(book.byPrice.get(level.priceTicks) === level, 'level missing from the map');
        if (previous !== undefined)
          assert(book.better(level.priceTicks, previous), 'levels out of order');
        previous = level.priceTicks;
        assert(level.orderCount > 0 && level.head !== null, 'empty level');
        let total = 0;
        let count = 0;
        let prev: Order | null = null;
        for (let order: Order | null = level.head; order !== null; order = order.next) {
          assert(order.prev === prev, 'broken level links');
          assert(order.level === level, 'order points at another level');
          assert(
            order.side === book.side && order.priceTicks === level.priceTicks,
            'misplaced order',
          );
          assert(Number.isSafeInteger(order.sizeLots) && order.sizeLots > 0, 'zero-size order');
          assert(this.orders.get(order.orderId) === order, 'order missing from the id map');
          assert(order.orderId <= this.lastOrderId, 'order id above lastOrderId');
          total += order.sizeLots;
          count++;
          prev = order;
          const o = owners.get(order.owner) ?? { count: 0, buyLots: 0, sellLots: 0 };
          o.count++;
          if (order.side === 'buy') o.buyLots += order.sizeLots;
          else o.sellLots += order.sizeLots;
          owners.set(order.owner, o);
          if (order.goodTilMs !== 0) {
            withExpiry++;
            assert(
              this.expiry.items[order.heapIndex] === order,
              'order missing from the expiry heap',
            );
          } else assert(order.heapIndex === -1, 'order without expiry in the heap');
        }
        assert(level.tail === prev, 'level tail is not its last order');
        assert(total === level.totalLots && count === level.orderCount, 'level totals drifted');
        orderTotal += count;
      }
    }
    assert(orderTotal === this.orders.size, 'id map holds orders that are in no level');
    assert(withExpiry === this.expiry.size, 'expiry heap holds orders that are in no level');
    const heap = this.expiry.items;
    for (let i = 1; i < heap.length; i++) {
      const parent = heap[(i - 1) >> 1]!;
      const child = heap[i]!;
      assert(
        parent.goodTilMs < child.goodTilMs ||
          (parent.goodTilMs === child.goodTilMs && parent.orderId < child.orderId),
        'expiry heap out of order',
      );
    }
    for (const [owner, state] of this.owners.entries()) {
      if (!owners.has(owner)) {
        assert(
          state.orderCount === 0 && state.head === null,
          `owner ${owner} lists orders it has not`,
        );
        assert(state.buyLots === 0 && state.sellLots === 0, `owner ${owner} rests lots it has not`);
      }
    }
    for (const [owner, expected] of owners) {
      const state = this.owners.get(owner);
      assert(state !== undefined, `owner ${owner} missing from the owner index`);
      assert(
        state.orderCount === expected.count &&
          state.buyLots === expected.buyLots &&
          state.sellLots === expected.sellLots,
        `owner ${owner} totals drifted`,
      );
      let count = 0;
      let prev: Order | null = null;
      for (let order = state.head; order !== null; order = order.ownerNext) {
        assert(order.ownerPrev === prev && order.ownerState === state, 'broken owner links');
        assert(prev === null || prev.orderId < order.orderId, 'owner list not in id order');
        assert(this.orders.get(order.orderId) === order, 'owner lists an order that is gone');
        prev = order;
        count++;
      }
      assert(state.tail === prev && count === state.orderCount, 'owner list count drifted');
    }
  }
}
