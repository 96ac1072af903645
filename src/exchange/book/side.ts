// One side of the book: its price levels in a sorted array (worst first, best
// last, so the best level is the array's end and a level emptied by matching is
// a pop) plus a table from price to level for O(1) lookup. A new or vanished level
// costs a binary search and a splice that moves only the levels better than it,
// which is cheap because activity clusters near the top of the book.

import { LEVEL_SPARES_MAX } from '../../lib/limits.ts';
import { Level } from './nodes.ts';
import { IdTable } from './table.ts';
import type { Side } from './types.ts';

// Read once: an imported binding may be read through an accessor on every use.
const levelSparesMax = LEVEL_SPARES_MAX;

export class BookSide {
  readonly side: Side;
  /** Worst to best: ascending price for bids, descending for asks. */
  readonly levels: Level[] = [];
  readonly byPrice = new IdTable<Level>();
  /** Emptied levels kept for reuse: levels come and go at the top of the book all the time. */
  private readonly spare: Level[] = [];

  constructor(side: Side) {
    this.side = side;
  }

  best(): Level | undefined {
    const levels = this.levels;
    return levels[levels.length - 1];
  }

  /** True when a level at `a` is better (closer to the spread) than one at `b`. */
  better(a: number, b: number): boolean {
    return this.side === 'buy' ? a > b : a < b;
  }

  /** The level at a price, created (and placed in order) if absent. O(1) if present, else O(log L + levels better than it). */
  levelAt(priceTicks: number): Level {
    const existing = this.byPrice.get(priceTicks);
    if (existing !== undefined) return existing;
    const level = this.spare.pop() ?? new Level(this.side);
    level.priceTicks = priceTicks;
    this.byPrice.set(priceTicks, level);
    const levels = this.levels;
    const n = levels.length;
    if (n === 0 || this.better(priceTicks, levels[n - 1]!.priceTicks)) levels.push(level);
    else levels.splice(this.indexOf(priceTicks), 0, level);
    return level;
  }

  /** Removes an empty level. O(1) for the best level, else O(log L + levels better than it). */
  removeLevel(level: Level): void {
    this.byPrice.delete(level.priceTicks);
    const levels = this.levels;
    if (levels[levels.length - 1] === level) levels.pop();
    else levels.splice(this.indexOf(level.priceTicks), 1);
    if (this.spare.length < levelSparesMax) {
      level.changeEpoch = -1;
      this.spare.push(level);
    }
  }

  /** The index of the first level not worse than priceTicks (binary search). */
  indexOf(priceTicks: number): number {
    const levels = this.levels;
    let lo = 0;
    let hi = levels.length;
    const buy = this.side === 'buy';
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const p = levels[mid]!.priceTicks;
      if (buy ? p < priceTicks : p > priceTicks) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
