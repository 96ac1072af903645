// The book channel's window (docs/api.md, "WebSocket"): its updates keep the
// top WS_BOOK_DEPTH_LEVELS levels of each side, the depth of its snapshot. A
// delta between two windows names every level whose size in the window
// changed: one that entered (moved up when a level above went, or placed)
// with its size, one that left (removed, or pushed below the window) with
// size 0. Applied on the window before, it gives exactly the window after,
// which a delta of the changed levels alone does not once the book is deeper
// than the window.

import type { LevelView } from './view.ts';

/**
 * The changes from the top `depth` levels of `old` to those of `now` (both
 * best first), best first. O(depth): only the windows are read.
 */
export function windowChanges(
  old: readonly LevelView[],
  now: readonly LevelView[],
  depth: number,
  descending: boolean,
): LevelView[] {
  const oldCount = Math.min(old.length, depth);
  const nowCount = Math.min(now.length, depth);
  const out: LevelView[] = [];
  let i = 0;
  let j = 0;
  while (i < oldCount || j < nowCount) {
    const was = i < oldCount ? old[i]! : undefined;
    const is = j < nowCount ? now[j]! : undefined;
    if (is === undefined || (was !== undefined && better(was[0], is[0], descending))) {
      out.push([was![0], 0]);
      i++;
    } else if (was === undefined || better(is[0], was[0], descending)) {
      out.push([is[0], is[1]]);
      j++;
    } else {
      if (was[1] !== is[1]) out.push([is[0], is[1]]);
      i++;
      j++;
    }
  }
  return out;
}

function better(a: number, b: number, descending: boolean): boolean {
  return descending ? a > b : a < b;
}
