// The book channel's window deltas: applied on the window before, they give
// exactly the window after, whatever the two books.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { windowChanges } from '../../src/api/book_window.ts';
import { LocalBook } from '../../src/api/client/channels.ts';
import type { LevelView } from '../../src/api/view.ts';

const side = fc.dictionary(
  fc.integer({ min: 1, max: 40 }).map(String),
  fc.integer({ min: 1, max: 5 }),
);

function bestFirst(levels: Record<string, number>, descending: boolean): LevelView[] {
  const out: LevelView[] = Object.entries(levels).map(([p, s]) => [Number(p), s]);
  return out.sort((a, b) => (descending ? b[0] - a[0] : a[0] - b[0]));
}

test('window changes turn the top levels before into the top levels after, best first', () => {
  fc.assert(
    fc.property(side, side, fc.integer({ min: 1, max: 12 }), fc.boolean(), (a, b, depth, desc) => {
      const old = bestFirst(a, desc);
      const now = bestFirst(b, desc);
      const changes = windowChanges(old, now, depth, desc);
      const kept = new Map(old.slice(0, depth));
      for (const [p, s] of changes) {
        if (s === 0) kept.delete(p);
        else kept.set(p, s);
      }
      assert.deepEqual(bestFirst(Object.fromEntries(kept), desc), now.slice(0, depth));
      assert.deepEqual(changes, bestFirst(Object.fromEntries(changes), desc), 'best first');
    }),
    { seed: 20_261_126 },
  );
});

test('the local book keeps the snapshot depth: a level pushed below it is dropped', () => {
  const book = new LocalBook();
  book.reset({
    instrument: 'X',
    height: 1,
    seq: 1,
    bids: [
      [10, 1],
      [9, 1],
    ],
    asks: [],
    depth: 2,
  });
  // A delta that adds a best bid without naming the one it pushes out (the window's job).
  book.apply({
    instrument: 'X',
    seq: 2,
    prevSeq: 1,
    bids: [[11, 3]],
    asks: [
      [12, 1],
      [13, 1],
      [14, 1],
    ],
  });
  assert.deepEqual(book.levels('bids'), [
    [11, 3],
    [10, 1],
  ]);
  assert.deepEqual(book.levels('asks'), [
    [12, 1],
    [13, 1],
  ]);
});
