// A binary min-heap of the orders that carry a good-til time, keyed by
// (goodTilMs, orderId) so ties break the same way on every validator. Each
// order knows its index, so a cancel or a fill removes it in O(log n) and
// expire(nowMs) costs O(k log n) for k expired orders.

import type { Order } from './nodes.ts';

function before(a: Order, b: Order): boolean {
  return a.goodTilMs < b.goodTilMs || (a.goodTilMs === b.goodTilMs && a.orderId < b.orderId);
}

export class ExpiryHeap {
  readonly items: Order[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): Order | undefined {
    return this.items[0];
  }

  push(order: Order): void {
    const items = this.items;
    order.heapIndex = items.length;
    items.push(order);
    this.up(order.heapIndex);
  }

  remove(order: Order): void {
    const items = this.items;
    const i = order.heapIndex;
    const last = items.pop()!;
    order.heapIndex = -1;
    if (last === order) return;
    items[i] = last;
    last.heapIndex = i;
    this.up(i);
    this.down(last.heapIndex);
  }

  private up(i: number): void {
    const items = this.items;
    const order = items[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent]!;
      if (!before(order, p)) break;
      items[i] = p;
      p.heapIndex = i;
      i = parent;
    }
    items[i] = order;
    order.heapIndex = i;
  }

  private down(i: number): void {
    const items = this.items;
    const n = items.length;
    const order = items[i]!;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && before(items[right]!, items[left]!) ? right : left;
      const c = items[child]!;
      if (!before(c, order)) break;
      items[i] = c;
      c.heapIndex = i;
      i = child;
    }
    items[i] = order;
    order.heapIndex = i;
  }
}
