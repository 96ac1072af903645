// A hash table from a non-negative safe integer (an order id, an owner) to a
// record, for the book's per-operation lookups. A Map keyed by numbers costs a
// builtin call and, under the book's churn (every order id is added once and
// deleted once), frequent rehashing of its deleted entries; this table probes
// in place, with linear probing and backward-shift deletion (no tombstones),
// so a lookup is a multiply, a shift and usually one comparison.
//
// The hash mixes the key's low and high 32 bits with a Fibonacci multiply and
// keeps the top bits, so dense ranges of keys (ids, prices) spread evenly.
// Contents depend only on the operations, never on the order of iteration,
// which the book does not use for anything but checks.

import { divTrunc } from '../../lib/int.ts';

const EMPTY = -1;
const CAPACITY_MIN = 16;
const TWO_POW_32 = 0x1_0000_0000;

export class IdTable<V> {
  size = 0;
  /** Key per slot, EMPTY for a free slot; capacity is a power of two. */
  private keys: number[] = [];
  private values: (V | undefined)[] = [];
  private mask = 0;
  /** 32 − log2(capacity): the hash keeps the product's top bits. */
  private shift = 0;

  constructor() {
    this.allocate(CAPACITY_MIN);
  }

  get(key: number): V | undefined {
    const keys = this.keys;
    const mask = this.mask;
    for (let i = this.slot(key); ; i = (i + 1) & mask) {
      const k = keys[i]!;
      if (k === key) return this.values[i];
      if (k === EMPTY) return undefined;
    }
  }

  has(key: number): boolean {
    return this.get(key) !== undefined;
  }

  /** Adds or replaces. */
  set(key: number, value: V): void {
    const keys = this.keys;
    const mask = this.mask;
    let i = this.slot(key);
    for (;;) {
      const k = keys[i]!;
      if (k === key) {
        this.values[i] = value;
        return;
      }
      if (k === EMPTY) break;
      i = (i + 1) & mask;
    }
    keys[i] = key;
    this.values[i] = value;
    // At most half full, so probes stay short.
    if (++this.size > mask >>> 1) this.resize((mask + 1) * 2);
  }

  /** Removes a key; false if absent. */
  delete(key: number): boolean {
    const keys = this.keys;
    const values = this.values;
    const mask = this.mask;
    let i = this.slot(key);
    for (;;) {
      const k = keys[i]!;
      if (k === key) break;
      if (k === EMPTY) return false;
      i = (i + 1) & mask;
    }
    // Backward shift: move later entries of the probe run into the hole when
    // the hole lies on their way from their home slot, so no lookup breaks.
    let hole = i;
    for (let j = (i + 1) & mask; ; j = (j + 1) & mask) {
      const k = keys[j]!;
      if (k === EMPTY) break;
      const home = this.slot(k);
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        keys[hole] = k;
        values[hole] = values[j];
        hole = j;
      }
    }
    keys[hole] = EMPTY;
    values[hole] = undefined;
    this.size--;
    // Shrink once an eighth full, so a book that emptied gives its memory back.
    if (mask + 1 > CAPACITY_MIN && this.size < (mask + 1) >>> 3) this.resize((mask + 1) >>> 1);
    return true;
  }

  /** Every entry, in slot order (which depends on the history: for checks only). */
  *entries(): Generator<[number, V]> {
    const keys = this.keys;
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] !== EMPTY) yield [keys[i]!, this.values[i]!];
    }
  }

  private slot(key: number): number {
    const high = key < TWO_POW_32 ? 0 : divTrunc(key, TWO_POW_32);
    return Math.imul((key | 0) ^ Math.imul(high, 0x7feb_352d), 0x9e37_79b1) >>> this.shift;
  }

  private allocate(capacity: number): void {
    this.keys = new Array<number>(capacity).fill(EMPTY);
    this.values = new Array<V | undefined>(capacity).fill(undefined);
    this.mask = capacity - 1;
    this.shift = 32 - (31 - Math.clz32(capacity));
  }

  private resize(capacity: number): void {
    const oldKeys = this.keys;
    const oldValues = this.values;
    this.allocate(capacity);
    const keys = this.keys;
    const mask = this.mask;
    for (let j = 0; j < oldKeys.length; j++) {
      const key = oldKeys[j]!;
      if (key === EMPTY) continue;
      let i = this.slot(key);
      while (keys[i] !== EMPTY) i = (i + 1) & mask;
      keys[i] = key;
      this.values[i] = oldValues[j];
    }
  }
}
