// sha256Words (the state digest's allocation-free SHA-256) against node:crypto:
// every length around the block and padding boundaries, then random messages
// at random offsets in larger buffers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { sha256Words } from '../../src/crypto/index.ts';

function reference(bytes: Uint8Array): Uint32Array {
  const digest = createHash('sha256').update(bytes).digest();
  const out = new Uint32Array(8);
  for (let i = 0; i < 8; i++) out[i] = digest.readUInt32BE(4 * i);
  return out;
}

test('sha256Words equals node:crypto for every length 0..300', () => {
  const bytes = new Uint8Array(400);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 167 + 13) & 0xff;
  const out = new Uint32Array(16);
  for (let length = 0; length <= 300; length++) {
    sha256Words(bytes, length, out, 3);
    assert.deepEqual(out.subarray(3, 11), reference(bytes.subarray(0, length)), `length ${length}`);
  }
});

test('sha256Words of random messages, the known vector of "abc", and a refused length', () => {
  const out = new Uint32Array(8);
  sha256Words(new TextEncoder().encode('abc'), 3, out, 0);
  assert.deepEqual(
    [...out].map((w) => w.toString(16).padStart(8, '0')).join(''),
    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 1000 }), fc.nat(40), (message, pad) => {
      const buffer = new Uint8Array(message.length + pad);
      buffer.set(message);
      sha256Words(buffer, message.length, out, 0);
      assert.deepEqual(out, reference(message));
    }),
    { numRuns: 500, seed: 3 },
  );
  assert.throws(() => sha256Words(new Uint8Array(4), 5, out, 0), RangeError);
});
