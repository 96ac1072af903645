// The book's internal records. Orders are linked intrusively into three
// structures at once (their price level's FIFO, their owner's list, the
// expiry heap), so every removal is O(1) apart from the heap's O(log n).

import type { RestingOrder, Side, StpMode } from './types.ts';

export class Order implements RestingOrder {
  // Mutable because the book reuses Order records (a free list saves the
  // allocation and the garbage collection of every resting order).
  orderId = 0;
  owner = 0;
  side: Side = 'buy';
  priceTicks = 0;
  sizeLots = 0;
  goodTilMs = 0;
  stp: StpMode = 'cancelResting';
  postOnly = false;

  /** Time priority within the level: prev is ahead, next behind. */
  prev: Order | null = null;
  next: Order | null = null;
  /** Null only while an amended order re-enters as a taker. */
  level: Level | null = null;

  /** The owner's orders in ascending orderId (canonical, so identical after a snapshot restore). */
  ownerPrev: Order | null = null;
  ownerNext: Order | null = null;
  ownerState: OwnerState | null = null;

  /** Position in the expiry heap, -1 when goodTilMs is 0. */
  heapIndex = -1;
  /** The change epoch in which this order was last recorded as changed. */
  changeEpoch = -1;

  /** (Re)initialises a record that is linked nowhere. */
  init(
    orderId: number,
    owner: number,
    side: Side,
    priceTicks: number,
    sizeLots: number,
    goodTilMs: number,
    stp: StpMode,
    postOnly: boolean,
    ownerState: OwnerState,
  ): this {
    this.orderId = orderId;
    this.owner = owner;
    this.side = side;
    this.priceTicks = priceTicks;
    this.sizeLots = sizeLots;
    this.goodTilMs = goodTilMs;
    this.stp = stp;
    this.postOnly = postOnly;
    this.ownerState = ownerState;
    this.changeEpoch = -1;
    return this;
  }
}

/** One price on one side: a FIFO of orders and their total size. */
export class Level {
  readonly side: Side;
  /** Set when the level is (re)used for a price. */
  priceTicks = 0;
  totalLots = 0;
  orderCount = 0;
  head: Order | null = null;
  tail: Order | null = null;
  changeEpoch = -1;

  constructor(side: Side) {
    this.side = side;
  }
}

/** Per owner: open orders (ascending id) and resting size per side, for margin reservations. */
export class OwnerState {
  readonly owner: number;
  orderCount = 0;
  buyLots = 0;
  sellLots = 0;
  head: Order | null = null;
  tail: Order | null = null;

  constructor(owner: number) {
    this.owner = owner;
  }
}
