import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { IdTable } from '../../../src/exchange/book/table.ts';

/** Applies the operations to the table and to a Map, checking every answer and the size. */
function agree(ops: readonly (readonly [boolean, number])[]): void {
  const table = new IdTable<number>();
  const map = new Map<number, number>();
  let n = 0;
  for (const [add, key] of ops) {
    if (add) {
      table.set(key, n);
      map.set(key, n++);
    } else assert.equal(table.delete(key), map.delete(key));
    assert.equal(table.size, map.size);
    assert.equal(table.get(key), map.get(key));
  }
  for (const [key, value] of map) assert.equal(table.get(key), value);
  assert.deepEqual(
    [...table.entries()].sort((a, b) => a[0] - b[0]),
    [...map].sort((a, b) => a[0] - b[0]),
  );
}

test('IdTable agrees with a Map under random sets and deletes', () => {
  // Small key ranges force replacements, deletes of absent keys and long probe runs;
  // large ones cover keys past 2^32 and up to the largest safe integer.
  const key = fc.oneof(
    fc.integer({ min: 0, max: 40 }),
    fc.integer({ min: 0, max: 1 << 20 }).map((k) => k * 4096),
    fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    fc.integer({ min: 0, max: 64 }).map((k) => 0x1_0000_0000 * k + 7),
  );
  fc.assert(fc.property(fc.array(fc.tuple(fc.boolean(), key), { maxLength: 400 }), agree), {
    numRuns: 300,
  });
});

test("IdTable grows and shrinks through churn like the book's (ids added once, deleted once)", () => {
  const ops: [boolean, number][] = [];
  for (let id = 1; id <= 20_000; id++) {
    ops.push([true, id]);
    if (id % 3 !== 0) ops.push([false, id - (id % 97)]);
  }
  for (let id = 1; id <= 20_000; id++) ops.push([false, id]);
  agree(ops);
});
