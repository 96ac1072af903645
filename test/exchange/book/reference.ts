// A deliberately simple reference book for the property test: one array of
// orders, re-sorted into priority order whenever it is read. Slow, short and
// obviously correct, so that the real book can be compared with it exactly.

import type { FillRecord, RemovedRecord } from '../../../src/exchange/book/lists.ts';
import type {
  PlaceOrder,
  Side,
  StpMode,
  TakerReason,
  TakerStatus,
} from '../../../src/exchange/book/types.ts';

interface RefOrder {
  orderId: number;
  owner: number;
  side: Side;
  priceTicks: number;
  sizeLots: number;
  goodTilMs: number;
  stp: StpMode;
  postOnly: boolean;
  /** Time priority: smaller is earlier. */
  seq: number;
}

export interface RefResult {
  status: TakerStatus;
  reason: TakerReason | null;
  filledLots: number;
  restedLots: number;
  cancelledLots: number;
  fills: FillRecord[];
  removed: RemovedRecord[];
}

export class ReferenceBook {
  orders: RefOrder[] = [];
  private seq = 0;

  /** Orders of one side, best price first, then earliest. */
  sorted(side: Side): RefOrder[] {
    return this.orders
      .filter((o) => o.side === side)
      .sort((a, b) =>
        a.priceTicks !== b.priceTicks
          ? side === 'buy'
            ? b.priceTicks - a.priceTicks
            : a.priceTicks - b.priceTicks
          : a.seq - b.seq,
      );
  }

  private reaches(takerSide: Side, limitTicks: number, makerTicks: number): boolean {
    return takerSide === 'buy' ? makerTicks <= limitTicks : makerTicks >= limitTicks;
  }

  private opposite(side: Side): Side {
    return side === 'buy' ? 'sell' : 'buy';
  }

  private result(
    status: TakerStatus,
    reason: TakerReason | null,
    filledLots: number,
    restedLots: number,
    cancelledLots: number,
    fills: FillRecord[] = [],
    removed: RemovedRecord[] = [],
  ): RefResult {
    return { status, reason, filledLots, restedLots, cancelledLots, fills, removed };
  }

  private wouldTake(side: Side, priceTicks: number): boolean {
    const best = this.sorted(this.opposite(side))[0];
    return best !== undefined && this.reaches(side, priceTicks, best.priceTicks);
  }

  private toRemoved(o: RefOrder): RemovedRecord {
    return {
      orderId: o.orderId,
      owner: o.owner,
      side: o.side,
      priceTicks: o.priceTicks,
      sizeLots: o.sizeLots,
    };
  }

  private drop(o: RefOrder): void {
    this.orders = this.orders.filter((x) => x !== o);
  }

  private match(
    side: Side,
    owner: number,
    limitTicks: number,
    sizeLots: number,
    stp: StpMode,
  ): { remaining: number; stopped: boolean; fills: FillRecord[]; removed: RemovedRecord[] } {
    const fills: FillRecord[] = [];
    const removed: RemovedRecord[] = [];
    let remaining = sizeLots;
    let stopped = false;
    for (const maker of this.sorted(this.opposite(side))) {
      if (remaining === 0 || !this.reaches(side, limitTicks, maker.priceTicks)) break;
      if (maker.owner === owner) {
        if (stp === 'cancelIncoming') {
          stopped = true;
          break;
        }
        removed.push(this.toRemoved(maker));
        this.drop(maker);
        if (stp === 'cancelBoth') {
          stopped = true;
          break;
        }
        continue;
      }
      const q = Math.min(remaining, maker.sizeLots);
      remaining -= q;
      maker.sizeLots -= q;
      fills.push({
        makerOrderId: maker.orderId,
        makerOwner: maker.owner,
        priceTicks: maker.priceTicks,
        sizeLots: q,
        makerDone: maker.sizeLots === 0,
      });
      if (maker.sizeLots === 0) this.drop(maker);
    }
    return { remaining, stopped, fills, removed };
  }

  private fokFillable(
    side: Side,
    owner: number,
    limitTicks: number,
    sizeLots: number,
    stp: StpMode,
  ): boolean {
    let available = 0;
    for (const maker of this.sorted(this.opposite(side))) {
      if (!this.reaches(side, limitTicks, maker.priceTicks)) break;
      if (maker.owner === owner) {
        if (stp === 'cancelResting') continue;
        break;
      }
      available += maker.sizeLots;
    }
    return available >= sizeLots;
  }

  place(o: PlaceOrder): RefResult {
    const stp = o.stp ?? 'cancelResting';
    const postOnly = o.postOnly ?? false;
    if (postOnly && this.wouldTake(o.side, o.priceTicks)) {
      return this.result('rejected', 'PostOnlyWouldTake', 0, 0, 0);
    }
    if (
      o.timeInForce === 'FOK' &&
      !this.fokFillable(o.side, o.owner, o.priceTicks, o.sizeLots, stp)
    ) {
      return this.result('cancelled', 'FokUnfillable', 0, 0, o.sizeLots);
    }
    const m = this.match(o.side, o.owner, o.priceTicks, o.sizeLots, stp);
    const filled = o.sizeLots - m.remaining;
    if (m.remaining === 0) return this.result('filled', null, filled, 0, 0, m.fills, m.removed);
    if (m.stopped) {
      return this.result('cancelled', 'SelfTrade', filled, 0, m.remaining, m.fills, m.removed);
    }
    if (o.timeInForce !== 'GTC') {
      return this.result('cancelled', 'IocRemainder', filled, 0, m.remaining, m.fills, m.removed);
    }
    this.orders.push({
      orderId: o.orderId,
      owner: o.owner,
      side: o.side,
      priceTicks: o.priceTicks,
      sizeLots: m.remaining,
      goodTilMs: o.goodTilMs ?? 0,
      stp,
      postOnly,
      seq: this.seq++,
    });
    return this.result('rested', null, filled, m.remaining, 0, m.fills, m.removed);
  }

  amend(orderId: number, priceTicks: number, sizeLots: number): RefResult {
    const order = this.orders.find((o) => o.orderId === orderId);
    if (order === undefined) return this.result('rejected', 'UnknownOrder', 0, 0, 0);
    if (priceTicks === order.priceTicks && sizeLots <= order.sizeLots) {
      order.sizeLots = sizeLots;
      return this.result('rested', null, 0, sizeLots, 0);
    }
    if (order.postOnly && this.wouldTake(order.side, priceTicks)) {
      return this.result('rejected', 'PostOnlyWouldTake', 0, 0, 0);
    }
    this.drop(order);
    const m = this.match(order.side, order.owner, priceTicks, sizeLots, order.stp);
    const filled = sizeLots - m.remaining;
    if (m.remaining === 0) return this.result('filled', null, filled, 0, 0, m.fills, m.removed);
    if (m.stopped) {
      return this.result('cancelled', 'SelfTrade', filled, 0, m.remaining, m.fills, m.removed);
    }
    this.orders.push({ ...order, priceTicks, sizeLots: m.remaining, seq: this.seq++ });
    return this.result('rested', null, filled, m.remaining, 0, m.fills, m.removed);
  }

  cancel(orderId: number): RemovedRecord | undefined {
    const order = this.orders.find((o) => o.orderId === orderId);
    if (order === undefined) return undefined;
    this.drop(order);
    return this.toRemoved(order);
  }

  cancelAll(owner: number, side?: Side): RemovedRecord[] {
    const gone = this.ownerOrders(owner).filter((o) => side === undefined || o.side === side);
    for (const o of gone) this.drop(o);
    return gone.map((o) => this.toRemoved(o));
  }

  expire(nowMs: number): RemovedRecord[] {
    const gone = this.orders
      .filter((o) => o.goodTilMs !== 0 && o.goodTilMs <= nowMs)
      .sort((a, b) => a.goodTilMs - b.goodTilMs || a.orderId - b.orderId);
    for (const o of gone) this.drop(o);
    return gone.map((o) => this.toRemoved(o));
  }

  ownerOrders(owner: number): RefOrder[] {
    return this.orders.filter((o) => o.owner === owner).sort((a, b) => a.orderId - b.orderId);
  }

  ownerRestingLots(owner: number, side: Side): number {
    return this.ownerOrders(owner)
      .filter((o) => o.side === side)
      .reduce((sum, o) => sum + o.sizeLots, 0);
  }

  /** Every level, best first: [priceTicks, sizeLots, orderCount]. */
  depth(side: Side): [number, number, number][] {
    const out: [number, number, number][] = [];
    for (const o of this.sorted(side)) {
      const last = out[out.length - 1];
      if (last !== undefined && last[0] === o.priceTicks) {
        last[1] += o.sizeLots;
        last[2]++;
      } else out.push([o.priceTicks, o.sizeLots, 1]);
    }
    return out;
  }

  /** Every resting order of a side in priority order, as ids. */
  queue(side: Side): number[] {
    return this.sorted(side).map((o) => o.orderId);
  }
}
