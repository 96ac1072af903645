import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { fromHex, toHex } from '../../src/lib/bytes.ts';
import { checkPublicKey, keyPairFromSeed, signRaw, verifyRaw } from '../../src/crypto/index.ts';
import { RFC8032_VECTORS } from './rfc8032.ts';

test('the SHA(abc) vector signs SHA-512 of "abc"', () => {
  const abc = RFC8032_VECTORS.find((v) => v.name === 'TEST SHA(abc)')!;
  assert.equal(createHash('sha512').update('abc').digest('hex'), abc.message);
  assert.equal(RFC8032_VECTORS.find((v) => v.name === 'TEST 1024')!.message.length, 2 * 1023);
});

for (const v of RFC8032_VECTORS) {
  test(`RFC 8032 ${v.name}: key, signature and verification`, () => {
    const key = keyPairFromSeed(fromHex(v.secretKey));
    assert.equal(toHex(key.publicKey), v.publicKey);
    const message = fromHex(v.message);
    // Ed25519 is deterministic: the signature must be the RFC's, byte for byte.
    assert.equal(toHex(signRaw(key, message)), v.signature);
    assert.equal(verifyRaw(fromHex(v.publicKey), message, fromHex(v.signature)), true);
    checkPublicKey(fromHex(v.publicKey));
  });

  test(`RFC 8032 ${v.name}: one flipped bit anywhere fails`, () => {
    const publicKey = fromHex(v.publicKey);
    const message = fromHex(v.message);
    const signature = fromHex(v.signature);
    for (const bit of [0, 7, 100, 255, 256, 300, 511]) {
      const bad = signature.slice();
      bad[bit >> 3]! ^= 1 << (bit & 7);
      assert.equal(verifyRaw(publicKey, message, bad), false, `signature bit ${bit}`);
    }
    if (message.length > 0) {
      const bad = message.slice();
      bad[message.length - 1]! ^= 0x40;
      assert.equal(verifyRaw(publicKey, bad, signature), false, 'message');
    }
    const badKey = publicKey.slice();
    badKey[3]! ^= 0x08;
    assert.equal(verifyRaw(badKey, message, signature), false, 'public key');
  });
}
