import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { EventQueue } from '../../src/sim/queue.ts';

test('pops events by time, and in insertion order at equal times', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 300 }), (times) => {
      const q = new EventQueue<number>();
      times.forEach((t, i) => q.push(t, i));
      const out: number[] = [];
      for (let e = q.pop(); e !== undefined; e = q.pop()) out.push(e.event);
      const expected = times.map((t, i) => ({ t, i })).sort((a, b) => a.t - b.t || a.i - b.i);
      assert.deepEqual(
        out,
        expected.map((x) => x.i),
      );
    }),
  );
});

test('interleaved pushes and pops keep the order', () => {
  const q = new EventQueue<string>();
  q.push(5, 'a');
  q.push(1, 'b');
  assert.equal(q.pop()!.event, 'b');
  q.push(5, 'c');
  q.push(3, 'd');
  assert.deepEqual([q.pop()!.event, q.pop()!.event, q.pop()!.event], ['d', 'a', 'c']);
  assert.equal(q.pop(), undefined);
  assert.equal(q.peekUs(), Infinity);
});
