// A bounded map keyed by short byte strings, with first-in-first-out eviction.
// FIFO rather than LRU: a hit then costs one Map lookup, and a key that falls
// out is only rebuilt, never wrong.

import { assert } from '../lib/assert.ts';

/** A Map key for up to a few dozen bytes: one UTF-16 unit per byte. */
export function bytesKey(bytes: Uint8Array): string {
  return String.fromCharCode.apply(null, bytes as unknown as number[]);
}

export class BoundedCache<V> {
  private readonly map = new Map<string, V>();
  private readonly entriesMax: number;

  constructor(entriesMax: number) {
    assert(Number.isSafeInteger(entriesMax) && entriesMax >= 1, 'cache needs room for an entry');
    this.entriesMax = entriesMax;
  }

  get size(): number {
    return this.map.size;
  }

  get(key: string): V | undefined {
    return this.map.get(key);
  }

  set(key: string, value: V): void {
    if (this.map.size >= this.entriesMax && !this.map.has(key)) {
      const oldest = this.map.keys().next();
      if (oldest.done !== true) this.map.delete(oldest.value);
    }
    this.map.set(key, value);
  }

  clear(): void {
    this.map.clear();
  }
}
