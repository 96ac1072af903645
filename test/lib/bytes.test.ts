import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fromHex, toHex } from '../../src/lib/bytes.ts';

test('toHex: lowercase pairs, as Buffer writes them, short and past the scratch size', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 3000 }), (bytes) => {
      const hex = toHex(bytes);
      assert.equal(hex, Buffer.from(bytes).toString('hex'));
      assert.deepEqual(fromHex(hex), bytes);
    }),
    { seed: 7, numRuns: 300 },
  );
});

test('toHex: of a view, only the viewed bytes', () => {
  const whole = Uint8Array.from({ length: 40 }, (_, i) => i * 7);
  assert.equal(toHex(whole.subarray(3, 9)), Buffer.from(whole.subarray(3, 9)).toString('hex'));
  assert.equal(toHex(new Uint8Array(0)), '');
  assert.equal(toHex(Uint8Array.of(0, 255, 16)), '00ff10');
});
