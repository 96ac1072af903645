import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, sign as cryptoSign } from 'node:crypto';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { toHex } from '../../src/lib/bytes.ts';
import {
  CryptoError,
  SIGN_KIND,
  SIGNATURE_BYTES,
  checkChainId,
  generateKeyPair,
  keyPairFromSeed,
  sign,
  signedBytes,
  signRaw,
  verify,
  verifyRaw,
} from '../../src/crypto/index.ts';
import type { KeyPair, SignKind } from '../../src/crypto/index.ts';

const KINDS = Object.values(SIGN_KIND) as SignKind[];
const seedOf = (n: number): Uint8Array => new Uint8Array(32).fill(n);
const alice = keyPairFromSeed(seedOf(1));
const bob = keyPairFromSeed(seedOf(2));
const message = new TextEncoder().encode('place BTC-PERPETUAL buy 1 @ 60000');

test('the signed bytes are tag || kind || uvarint length || chain id || message', () => {
  const bytes = signedBytes('zomma-1', SIGN_KIND.precommit, Uint8Array.of(0xaa, 0xbb));
  assert.equal(
    toHex(bytes),
    toHex(new TextEncoder().encode('zomma-sig-v1')) +
      '04' +
      '07' +
      toHex(new TextEncoder().encode('zomma-1')) +
      'aabb',
  );
  // A 64-byte chain id still has a one-byte length; the message may be empty.
  const long = 'a'.repeat(64);
  const empty = signedBytes(long, SIGN_KIND.tx, new Uint8Array(0));
  assert.equal(empty.length, 12 + 1 + 1 + 64);
  assert.equal(empty[13], 64);
});

test('the kinds are the published wire constants', () => {
  assert.deepEqual(SIGN_KIND, {
    tx: 1,
    proposal: 2,
    prevote: 3,
    precommit: 4,
    voteExtension: 5,
    oracle: 6,
    attestation: 7,
    governance: 8,
    handshake: 9,
    evidence: 10,
  });
});

test('a signature verifies for its chain and kind, and for no other chain or kind', () => {
  for (const kind of KINDS) {
    const signature = sign(alice, 'zomma-main', kind, message);
    assert.equal(signature.length, SIGNATURE_BYTES);
    assert.equal(verify(alice.publicKey, 'zomma-main', kind, message, signature), true);
    assert.equal(verify(alice.publicKey, 'zomma-test', kind, message, signature), false);
    for (const other of KINDS) {
      if (other !== kind) {
        assert.equal(verify(alice.publicKey, 'zomma-main', other, message, signature), false);
      }
    }
    // Not valid as a raw signature of the bare message either.
    assert.equal(verifyRaw(alice.publicKey, message, signature), false);
  }
});

test('domain separation holds for arbitrary chains, kinds and messages', () => {
  const chainId = fc.stringMatching(/^[a-z0-9-]{1,64}$/);
  const kind = fc.constantFrom(...KINDS);
  fc.assert(
    fc.property(
      chainId,
      chainId,
      kind,
      kind,
      fc.uint8Array({ maxLength: 200 }),
      (c1, c2, k1, k2, m) => {
        const signature = sign(alice, c1, k1, m);
        assert.equal(verify(alice.publicKey, c1, k1, m, signature), true);
        const same = c1 === c2 && k1 === k2;
        assert.equal(verify(alice.publicKey, c2, k2, m, signature), same);
      },
    ),
    { numRuns: 200, seed: 21 },
  );
});

test('the prefix cannot be shifted between chain id and message', () => {
  // ("ab", "c…") and ("abc", "…") would collide without the length prefix.
  const a = signedBytes('ab', SIGN_KIND.tx, new TextEncoder().encode('c-hello'));
  const b = signedBytes('abc', SIGN_KIND.tx, new TextEncoder().encode('-hello'));
  assert.notEqual(toHex(a), toHex(b));
  const signature = sign(alice, 'ab', SIGN_KIND.tx, new TextEncoder().encode('c-hello'));
  assert.equal(
    verify(alice.publicKey, 'abc', SIGN_KIND.tx, new TextEncoder().encode('-hello'), signature),
    false,
  );
});

test('tampered message, signature or key fails', () => {
  const signature = sign(alice, 'zomma-1', SIGN_KIND.tx, message);
  fc.assert(
    fc.property(fc.nat(message.length * 8 - 1), fc.nat(511), fc.nat(255), (mBit, sBit, kBit) => {
      const m = message.slice();
      m[mBit >> 3]! ^= 1 << (mBit & 7);
      assert.equal(verify(alice.publicKey, 'zomma-1', SIGN_KIND.tx, m, signature), false);
      const s = signature.slice();
      s[sBit >> 3]! ^= 1 << (sBit & 7);
      assert.equal(verify(alice.publicKey, 'zomma-1', SIGN_KIND.tx, message, s), false);
      const k = alice.publicKey.slice();
      k[kBit >> 3]! ^= 1 << (kBit & 7);
      assert.equal(verify(k, 'zomma-1', SIGN_KIND.tx, message, signature), false);
    }),
    { numRuns: 200, seed: 22 },
  );
  assert.equal(verify(bob.publicKey, 'zomma-1', SIGN_KIND.tx, message, signature), false);
});

test('verify never throws: garbage of any shape gives false', () => {
  const anything = fc.oneof(
    fc.uint8Array({ maxLength: 100 }),
    fc.uint8Array({ minLength: 32, maxLength: 32 }),
    fc.uint8Array({ minLength: 64, maxLength: 64 }),
    fc.string(),
    fc.integer(),
    fc.constant(null),
    fc.constant(undefined),
    fc.object(),
    fc.array(fc.nat(255), { minLength: 32, maxLength: 64 }),
  );
  const chain = fc.oneof(fc.string({ maxLength: 80 }), fc.constant('zomma-1'), anything);
  const kind = fc.oneof(fc.constantFrom(...KINDS), fc.integer(), anything);
  fc.assert(
    fc.property(anything, chain, kind, anything, anything, (key, chainId, k, m, s) => {
      const args = [key, chainId, k, m, s] as unknown as Parameters<typeof verify>;
      assert.equal(verify(...args), false);
      const raw = [key, m, s] as unknown as Parameters<typeof verifyRaw>;
      assert.equal(verifyRaw(...raw), false);
    }),
    { numRuns: 2000, seed: 23 },
  );
  // A valid key and signature with one wrong-typed part are still just false.
  const signature = sign(alice, 'zomma-1', SIGN_KIND.tx, message);
  assert.equal(verify(alice.publicKey, 'zomma-1', 99 as SignKind, message, signature), false);
  assert.equal(verify(alice.publicKey, 'Zomma-1', SIGN_KIND.tx, message, signature), false);
  assert.equal(
    verify(alice.publicKey, 'zomma-1', SIGN_KIND.tx, message, signature.subarray(1)),
    false,
  );
  assert.equal(
    verify(alice.publicKey, 'zomma-1', SIGN_KIND.tx, message, Buffer.from(signature)),
    true,
    'a Buffer is a Uint8Array',
  );
});

test('chain ids: 1 to 64 characters of a-z, 0-9 and -; others refused with BadChainId', () => {
  for (const good of ['a', 'zomma-1', 'zomma-devnet-7', '0', 'a'.repeat(64)]) checkChainId(good);
  for (const bad of [
    '',
    'a'.repeat(65),
    'Zomma',
    'zomma_1',
    'zomma 1',
    'zömma',
    'zomma.1',
    '\u0000',
  ]) {
    assert.throws(
      () => checkChainId(bad),
      (e: unknown) => e instanceof CryptoError && e.code === 'BadChainId',
      JSON.stringify(bad),
    );
    assert.throws(
      () => signedBytes(bad, SIGN_KIND.tx, message),
      (e: unknown) => e instanceof CryptoError && e.code === 'BadChainId',
    );
  }
});

test('keys: a seed gives the same key pair every time; generated keys differ and work', () => {
  const again = keyPairFromSeed(seedOf(1));
  assert.deepEqual(again.publicKey, alice.publicKey);
  assert.deepEqual(again.address, alice.address);
  assert.deepEqual(signRaw(again, message), signRaw(alice, message));
  const a = generateKeyPair();
  const b = generateKeyPair();
  assert.notDeepEqual(a.publicKey, b.publicKey);
  assert.equal(verifyRaw(a.publicKey, message, signRaw(a, message)), true);
  // A key pair written out by hand (no cached private key) signs the same.
  const plain: KeyPair = { publicKey: a.publicKey, seed: a.seed, address: a.address };
  assert.deepEqual(signRaw(plain, message), signRaw(a, message));
  // The seed never shows in JSON or inspection.
  assert.ok(!JSON.stringify(a).includes(toHex(a.seed)));
});

test('signatures and keys are plain Uint8Arrays with buffers of their own', () => {
  const signature = sign(alice, 'zomma-1', SIGN_KIND.tx, message);
  for (const bytes of [signature, alice.publicKey, alice.address, alice.seed]) {
    assert.equal(Object.getPrototypeOf(bytes), Uint8Array.prototype);
    assert.equal(bytes.buffer.byteLength, bytes.length);
  }
});

test("signRaw gives OpenSSL's signature (RFC 8032 is deterministic) for any seed and message", () => {
  const pkcs8Prefix = Buffer.from('302e020100300506032b657004220420', 'hex');
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.uint8Array({ maxLength: 600 }),
      (seed, bytes) => {
        const key = keyPairFromSeed(seed);
        const privateKey = createPrivateKey({
          key: Buffer.concat([pkcs8Prefix, seed]),
          format: 'der',
          type: 'pkcs8',
        });
        assert.equal(toHex(signRaw(key, bytes)), toHex(cryptoSign(null, bytes, privateKey)));
      },
    ),
    { numRuns: 200, seed: 8032 },
  );
});

test("a hand-built key pair signs with its seed's own key, whatever public key it names", () => {
  // libsodium hashes the public key it is handed into the signature: signing
  // one message under two public keys with one seed would give away the
  // private scalar. The secret key is derived from the seed alone.
  const forged: KeyPair = { publicKey: bob.publicKey, seed: alice.seed, address: bob.address };
  const signature = signRaw(forged, message);
  assert.deepEqual(signature, signRaw(alice, message));
  assert.equal(verifyRaw(alice.publicKey, message, signature), true);
  assert.equal(verifyRaw(bob.publicKey, message, signature), false);
});

test('a key pair shows neither its seed nor its secret key in JSON or inspection', () => {
  const key = generateKeyPair();
  const seedHex = toHex(key.seed);
  for (const shown of [JSON.stringify(key), inspect(key), inspect({ key }, { depth: 5 })]) {
    assert.ok(!shown.includes(seedHex));
    // A Uint8Array shows as its decimal bytes.
    assert.ok(!shown.includes(Array.from(key.seed.subarray(0, 8)).join(', ')));
  }
});
