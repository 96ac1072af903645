// Reused, column-wise result buffers: matching appends to them instead of
// allocating an object per fill. Each book owns one of each; an operation
// resets them, so their contents are valid until the book's next operation.

import type { Side } from './types.ts';

/** Fills of one operation, in execution order. Trades are at the maker's price. */
export class FillList {
  length = 0;
  readonly makerOrderId: number[] = [];
  readonly makerOwner: number[] = [];
  readonly priceTicks: number[] = [];
  readonly sizeLots: number[] = [];
  /** True when this fill left the maker order fully filled (it left the book). */
  readonly makerDone: boolean[] = [];

  reset(): void {
    this.length = 0;
  }

  push(
    makerOrderId: number,
    makerOwner: number,
    priceTicks: number,
    sizeLots: number,
    makerDone: boolean,
  ): void {
    const i = this.length++;
    this.makerOrderId[i] = makerOrderId;
    this.makerOwner[i] = makerOwner;
    this.priceTicks[i] = priceTicks;
    this.sizeLots[i] = sizeLots;
    this.makerDone[i] = makerDone;
  }

  /** A plain copy, for tests and logs (not for the hot path). */
  toArray(): FillRecord[] {
    const out: FillRecord[] = [];
    for (let i = 0; i < this.length; i++) {
      out.push({
        makerOrderId: this.makerOrderId[i]!,
        makerOwner: this.makerOwner[i]!,
        priceTicks: this.priceTicks[i]!,
        sizeLots: this.sizeLots[i]!,
        makerDone: this.makerDone[i]!,
      });
    }
    return out;
  }
}

export interface FillRecord {
  makerOrderId: number;
  makerOwner: number;
  priceTicks: number;
  sizeLots: number;
  makerDone: boolean;
}

/**
 * Resting orders an operation removed without trading them: by self-trade
 * prevention (place, amend), cancelAll, or expire. The caller releases what it
 * reserved for them. sizeLots is the size that was still open.
 */
export class RemovedList {
  length = 0;
  readonly orderId: number[] = [];
  readonly owner: number[] = [];
  readonly side: Side[] = [];
  readonly priceTicks: number[] = [];
  readonly sizeLots: number[] = [];

  reset(): void {
    this.length = 0;
  }

  push(orderId: number, owner: number, side: Side, priceTicks: number, sizeLots: number): void {
    const i = this.length++;
    this.orderId[i] = orderId;
    this.owner[i] = owner;
    this.side[i] = side;
    this.priceTicks[i] = priceTicks;
    this.sizeLots[i] = sizeLots;
  }

  toArray(): RemovedRecord[] {
    const out: RemovedRecord[] = [];
    for (let i = 0; i < this.length; i++) {
      out.push({
        orderId: this.orderId[i]!,
        owner: this.owner[i]!,
        side: this.side[i]!,
        priceTicks: this.priceTicks[i]!,
        sizeLots: this.sizeLots[i]!,
      });
    }
    return out;
  }
}

export interface RemovedRecord {
  orderId: number;
  owner: number;
  side: Side;
  priceTicks: number;
  sizeLots: number;
}

/**
 * Which price levels and orders changed since the last clear(), for
 * incremental state hashing: a level is listed when its size, count or
 * existence changed, an order when it was added, resized, moved or removed.
 * Look each one up in the book to see its state now (absent = removed). Each
 * entry appears once per clear(), except a level that vanished and came back
 * at the same price, which may appear twice: treat the lists as sets.
 * changeCount counts every mutation ever made, a cheap "did anything change".
 */
export class ChangeSet {
  /** Level and Order records remember the epoch in which they were last listed. */
  epoch = 0;
  changeCount = 0;
  levelCount = 0;
  readonly levelSide: Side[] = [];
  readonly levelPriceTicks: number[] = [];
  orderCount = 0;
  readonly orderId: number[] = [];

  clear(): void {
    this.epoch++;
    this.levelCount = 0;
    this.orderCount = 0;
  }
}
