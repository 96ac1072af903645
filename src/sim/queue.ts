// The simulator's clock: a discrete-event queue ordered by (time, sequence
// number). The sequence number breaks ties in insertion order, so two runs
// from one seed pop events in exactly the same order. A binary heap: push and
// pop are O(log n).

import { assert } from '../lib/assert.ts';

interface Entry<T> {
  readonly atUs: number;
  readonly seq: number;
  readonly event: T;
}

export class EventQueue<T> {
  private heap: Entry<T>[] = [];
  private seqNext = 0;

  get size(): number {
    return this.heap.length;
  }

  push(atUs: number, event: T): void {
    assert(Number.isSafeInteger(atUs) && atUs >= 0, 'event time is a whole microsecond');
    const heap = this.heap;
    const entry: Entry<T> = { atUs, seq: this.seqNext++, event };
    let i = heap.length;
    heap.push(entry);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (!before(entry, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = entry;
  }

  /** The time of the next event, or Infinity when none is queued. */
  peekUs(): number {
    return this.heap.length === 0 ? Infinity : this.heap[0]!.atUs;
  }

  pop(): { atUs: number; event: T } | undefined {
    const heap = this.heap;
    const top = heap[0];
    if (top === undefined) return undefined;
    const last = heap.pop()!;
    const n = heap.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const m = r < n && before(heap[r]!, heap[l]!) ? r : l;
        if (!before(heap[m]!, last)) break;
        heap[i] = heap[m]!;
        i = m;
      }
      heap[i] = last;
    }
    return top;
  }
}

function before<T>(a: Entry<T>, b: Entry<T>): boolean {
  return a.atUs < b.atUs || (a.atUs === b.atUs && a.seq < b.seq);
}
