// A market's volatility-auction state (docs/exchange.md, "Volatility
// auctions"): its price-monitoring triggers and their state (monitor.ts), and
// the orders that entered during the current auction. Those may cross one
// another (bids above asks), and a book never holds crossed orders, so they
// wait beside the market's book in two one-sided books, bids and asks: a
// one-sided book never matches, and it gives the auction orders everything a
// resting order has (time priority, cancel, amend, good-til expiry, per-owner
// totals for margin). Both are empty in continuous trading.

import type { Side } from '../book/index.ts';
import { OrderBook } from '../book/index.ts';
import type { Codec } from '../../codec/wire.ts';
import type { MonitorState, PriceTrigger } from './monitor.ts';
import { monitorCodec, newMonitor } from './monitor.ts';

export class CallAuction {
  readonly triggers: readonly PriceTrigger[];
  monitor: MonitorState;
  bids = new OrderBook();
  asks = new OrderBook();
  /** The monitor's canonical encoding (part of the market's leaf and snapshot). */
  readonly codec: Codec<MonitorState>;

  constructor(triggers: readonly PriceTrigger[]) {
    this.triggers = triggers;
    this.monitor = newMonitor(triggers);
    this.codec = monitorCodec(triggers.length);
  }

  /** In a call auction (until block time reaches monitor.auctionEndMs). */
  get active(): boolean {
    return this.monitor.auctionEndMs !== 0;
  }

  bookOf(side: Side): OrderBook {
    return side === 'buy' ? this.bids : this.asks;
  }

  /** An owner's open size on a side among the auction orders (margin reserves it like a resting order's). */
  restingLots(owner: number, side: Side): number {
    return this.bookOf(side).ownerRestingLots(owner, side);
  }

  orderCount(owner: number): number {
    return this.bids.ownerOrderCount(owner) + this.asks.ownerOrderCount(owner);
  }
}
