// The order book's public vocabulary. Prices are integer ticks, sizes integer
// lots, times integer milliseconds of block time (docs/book.md). The caller
// validates client input (tick, lot and minimum sizes, caps) before it reaches
// the book; the book asserts what it relies on.

export type Side = 'buy' | 'sell';

/** GTC rests its remainder; IOC cancels it; FOK trades all of it at once or nothing. */
export type TimeInForce = 'GTC' | 'IOC' | 'FOK';

/**
 * What happens when an incoming order meets a resting order of the same owner
 * (the incoming order's mode decides; a resting order's own mode is kept only
 * for when it is amended and re-enters):
 *  - cancelResting: that resting order is cancelled in full; the incoming order
 *    keeps its whole remaining size and goes on matching behind it.
 *  - cancelIncoming: the incoming order's remaining size is cancelled there and
 *    then (it never rests); fills already made stand; the resting order is untouched.
 *  - cancelBoth: the resting order is cancelled in full and the incoming order's
 *    remaining size is cancelled.
 */
export type StpMode = 'cancelResting' | 'cancelIncoming' | 'cancelBoth';

export const STP_MODES: readonly StpMode[] = ['cancelResting', 'cancelIncoming', 'cancelBoth'];
export const TIME_IN_FORCES: readonly TimeInForce[] = ['GTC', 'IOC', 'FOK'];
/**
 * The stopTicks under which a taker trades nothing and, if another owner's
 * order is within its limit, is AuctionTriggered: a buyer's first ask may be at
 * 1 tick, a seller's first bid at PRICE_TICKS_MAX, with no stop just before it.
 */
export const STOP_AT_ONCE = -1;

/** An incoming order. A market order is an IOC order whose price is the caller's worst price. */
export interface PlaceOrder {
  /** Assigned by the caller, strictly increasing across every order this book sees. */
  orderId: number;
  /** One number per account or subaccount, assigned by the caller. */
  owner: number;
  side: Side;
  /** The limit: the highest price a buy pays, the lowest a sell accepts. */
  priceTicks: number;
  sizeLots: number;
  timeInForce: TimeInForce;
  /** Rejected ('PostOnlyWouldTake') instead of trading; GTC only. */
  postOnly?: boolean;
  /** Default cancelResting. */
  stp?: StpMode;
  /** Block time at which a resting order expires (expire(nowMs) with nowMs ≥ goodTilMs); 0 = never. */
  goodTilMs?: number;
  /**
   * Price monitoring (a volatility auction's trigger): matching trades at
   * most up to this price (a buy at asks ≤ stopTicks, a sell at bids ≥ it); an
   * order that could trade beyond it within its limit, with another owner,
   * stops there and its remainder is cancelled ('AuctionTriggered'), never
   * rested. Its own orders beyond the stop, up to that owner's, meet its STP
   * mode as in matching: they never count as a trade. 0 = none; STOP_AT_ONCE:
   * nothing trades (no price in 1..PRICE_TICKS_MAX says that on both sides).
   */
  stopTicks?: number;
  /** Decides each fill before it happens (the caller's collateral check); null or absent: none. */
  guard?: FillGuard | null;
}

/**
 * The caller's check of every fill, called by matching before each one with
 * the resting order's owner, the price and the lots that would trade:
 *  - `lots` (or more): the fill happens in full;
 *  - 0 < n < lots: n lots trade, then the incoming order stops ('InsufficientEquity');
 *  - 0: the incoming order stops there ('InsufficientEquity');
 *  - −1: the resting order is cancelled (listed in `removed`) and matching goes on.
 * `begin` is called before each matching pass: a FOK's check runs the guard
 * over the same sequence of fills first (cancelling nothing), so its answer is
 * exact. The guard must answer the same sequence of calls the same way.
 */
export interface FillGuard {
  begin(): void;
  admit(makerOwner: number, priceTicks: number, lots: number): number;
}

/** An order resting in the book, as callers see it (read-only). */
export interface RestingOrder {
  readonly orderId: number;
  readonly owner: number;
  readonly side: Side;
  readonly priceTicks: number;
  /** Remaining (open) size. */
  readonly sizeLots: number;
  readonly goodTilMs: number;
  readonly stp: StpMode;
  readonly postOnly: boolean;
}

/**
 * What happened to the incoming (or amended) order, in the order the results
 * log numbers them (node/results.ts): add new ones at the end.
 *  - rested: its remainder (restedLots > 0) now rests in the book, possibly after fills;
 *  - filled: it traded in full;
 *  - cancelled: its remainder (cancelledLots > 0) was cancelled, for `reason`;
 *  - rejected: nothing happened at all, for `reason`.
 */
export const TAKER_STATUSES = ['rested', 'filled', 'cancelled', 'rejected'] as const;
export type TakerStatus = (typeof TAKER_STATUSES)[number];

/**
 * Why a taker's order (or amend) was cancelled or rejected, in the order the
 * results log numbers them (node/results.ts): add new ones at the end.
 */
export const TAKER_REASONS = [
  /** IOC (and market) remainder after matching. */
  'IocRemainder',
  /** FOK could not fill in full within its limit: no fills, nothing cancelled in the book. */
  'FokUnfillable',
  /** Self-trade prevention stopped the incoming order (cancelIncoming, cancelBoth). */
  'SelfTrade',
  /** A post-only order (or amend of one) would have traded. */
  'PostOnlyWouldTake',
  /** amend of an order id that is not resting. */
  'UnknownOrder',
  /** The order would have traded beyond its stopTicks: the caller starts a call auction. */
  'AuctionTriggered',
  /** The fill guard stopped the incoming order: the next fill would leave its equity below zero. */
  'InsufficientEquity',
] as const;
export type TakerReason = (typeof TAKER_REASONS)[number];

export interface TakerResult {
  readonly status: TakerStatus;
  readonly reason: TakerReason | null;
  readonly filledLots: number;
  readonly restedLots: number;
  readonly cancelledLots: number;
}
