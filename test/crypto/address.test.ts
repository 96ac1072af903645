import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ADDRESS_BYTES,
  CryptoError,
  addressOf,
  formatAddress,
  keyPairFromSeed,
  parseAddress,
  sha256,
} from '../../src/crypto/index.ts';

test('an address is the first 20 bytes of SHA-256 of the public key', () => {
  const key = keyPairFromSeed(new Uint8Array(32));
  assert.deepEqual(addressOf(key.publicKey), sha256(key.publicKey).subarray(0, ADDRESS_BYTES));
  assert.deepEqual(key.address, addressOf(key.publicKey));
  // The zero seed's key is 3b6a27bc…; its address, computed once, pins the layout.
  assert.equal(formatAddress(key.address), '0x139e3940e64b5491722088d9a0d741628fc826e0');
});

test('formatAddress and parseAddress round-trip; upper-case digits parse to the same bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 20, maxLength: 20 }), (bytes) => {
      const text = formatAddress(bytes);
      assert.match(text, /^0x[0-9a-f]{40}$/);
      assert.deepEqual(parseAddress(text), bytes);
      assert.deepEqual(parseAddress(`0x${text.slice(2).toUpperCase()}`), bytes);
    }),
    { numRuns: 100, seed: 41 },
  );
});

test('malformed addresses are refused with BadAddress', () => {
  const good = '0x139e3940e64b5491722088d9a0d741628fc826e0';
  const bad = [
    '',
    good.slice(2),
    `0X${good.slice(2)}`,
    good.slice(0, -1),
    `${good}0`,
    `${good.slice(0, -1)}g`,
    ` ${good}`,
    `0x${'0'.repeat(64)}`,
    'x'.repeat(10_000),
  ];
  for (const text of bad) {
    assert.throws(
      () => parseAddress(text),
      (e: unknown) => e instanceof CryptoError && e.code === 'BadAddress' && e.message.length < 200,
      JSON.stringify(text.slice(0, 50)),
    );
  }
  assert.throws(
    () => parseAddress(42 as unknown as string),
    (e: unknown) => e instanceof CryptoError && e.code === 'BadAddress',
  );
});
