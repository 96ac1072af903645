import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { fromHex, toHex } from '../../src/lib/bytes.ts';
import {
  CryptoError,
  checkPublicKey,
  keyPairFromSeed,
  sign,
  SIGN_KIND,
  verify,
} from '../../src/crypto/index.ts';
import {
  L,
  P,
  decodePoint,
  encodePoint,
  isSmallOrder,
  modPow,
  pointAdd,
  pointEquals,
  powP58,
  scalarMult,
} from '../../src/crypto/curve.ts';

// The eight points of order dividing 8, canonically encoded (as listed in
// "Taming the many EdDSAs", Chalkias et al. 2020, and in ed25519-speccheck).
const TORSION = [
  '0100000000000000000000000000000000000000000000000000000000000000', // order 1 (identity)
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // order 2
  '0000000000000000000000000000000000000000000000000000000000000000', // order 4
  '0000000000000000000000000000000000000000000000000000000000000080', // order 4
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', // order 8
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa', // order 8
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', // order 8
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85', // order 8
];

const BASE = decodePoint(
  fromHex('5866666666666666666666666666666666666666666666666666666666666666'),
);

function littleEndian(value: bigint, signBit = 0): Uint8Array {
  const out = new Uint8Array(32);
  let v = value;
  for (let i = 0; i < 32; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  out[31]! |= signBit << 7;
  return out;
}

function refusal(publicKey: Uint8Array): string {
  try {
    checkPublicKey(publicKey);
  } catch (e) {
    assert.ok(e instanceof CryptoError, `a CryptoError, got ${String(e)}`);
    assert.equal(e.code, 'BadPublicKey');
    return e.message;
  }
  return 'accepted';
}

test('the eight torsion points are exactly the points of small order, and all are refused', () => {
  const points = TORSION.map((hex) => decodePoint(fromHex(hex)));
  const orders = points.map((point) => {
    let q = point;
    let order = 1;
    while (!pointEquals(q, points[0]!)) {
      q = pointAdd(q, point);
      order++;
    }
    return order;
  });
  assert.deepEqual(orders, [1, 2, 4, 4, 8, 8, 8, 8]);
  // They form the group: closed under addition, eight distinct points.
  for (const a of points) {
    for (const b of points) assert.ok(points.some((c) => pointEquals(c, pointAdd(a, b))));
  }
  for (const [i, hex] of TORSION.entries()) {
    assert.equal(toHex(encodePoint(points[i]!)), hex, 'canonical encoding round-trips');
    assert.ok(isSmallOrder(points[i]!));
    assert.match(refusal(fromHex(hex)), /small order/, hex);
  }
});

test('every encoding with y >= p is refused, whatever its sign bit', () => {
  for (let y = P; y < 1n << 255n; y++) {
    for (const signBit of [0, 1]) {
      const message = refusal(littleEndian(y, signBit));
      assert.match(message, /not canonically encoded \(y >= p\)/, `y = p + ${y - P}`);
    }
  }
  // Among them, the non-canonical twins of torsion points (y = p reads as 0, y = p + 1 as 1).
  assert.match(refusal(littleEndian(P + 1n)), /y >= p/);
  assert.match(refusal(littleEndian(P)), /y >= p/);
});

test('x = 0 with the sign bit set is refused as non-canonical', () => {
  // y = 1 and y = −1 are the two points with x = 0.
  assert.match(refusal(littleEndian(1n, 1)), /x = 0 with the sign bit set/);
  assert.match(refusal(littleEndian(P - 1n, 1)), /x = 0 with the sign bit set/);
});

test('a y with no x on the curve is refused', () => {
  // y = 2: (y² − 1)/(d·y² + 1) is not a square mod p.
  assert.match(refusal(littleEndian(2n)), /not a point on the curve/);
  assert.match(refusal(new Uint8Array(31)), /32 bytes/);
  assert.match(refusal(new Uint8Array(33)), /32 bytes/);
});

test('random keys from node:crypto are accepted; tampered bytes give a verdict, never a crash', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (seed) => {
      const key = keyPairFromSeed(seed);
      checkPublicKey(key.publicKey);
      const point = decodePoint(key.publicKey);
      assert.ok(!isSmallOrder(point));
      assert.ok(scalarMult(L, point).X === 0n, 'an honest key lies in the prime-order subgroup');
    }),
    { numRuns: 100, seed: 11 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (bytes) => {
      const verdict = refusal(bytes);
      assert.ok(verdict === 'accepted' || verdict.startsWith('public key'));
    }),
    { numRuns: 300, seed: 12 },
  );
});

test('the bigint arithmetic derives the same public keys as node:crypto (RFC 8032 5.1.5)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (seed) => {
      const h = createHash('sha512').update(seed).digest();
      h[0]! &= 248;
      h[31]! &= 127;
      h[31]! |= 64;
      let s = 0n;
      for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(h[i]!);
      const expected = keyPairFromSeed(seed).publicKey;
      assert.equal(toHex(encodePoint(scalarMult(s, BASE))), toHex(expected));
    }),
    { numRuns: 20, seed: 13 },
  );
});

test('the addition chain for x^((p−5)/8) equals plain exponentiation', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: P - 1n }), (x) => {
      assert.equal(powP58(x), modPow(x, (P - 5n) / 8n));
    }),
    { numRuns: 100, seed: 14 },
  );
});

test('a torsion key makes one signature valid for many messages: why the rule exists', () => {
  // With A the identity, a signature (R, S) with R = [S]B verifies for every
  // message under cofactorless verification: [S]B = R + [k]A = R.
  const identity = fromHex(TORSION[0]!);
  const S = 12345n;
  const signature = new Uint8Array(64);
  signature.set(encodePoint(scalarMult(S, BASE)), 0);
  signature.set(littleEndian(S), 32);
  const chain = 'torsion-demo';
  const verdicts = ['a', 'b', 'c'].map((m) =>
    verify(identity, chain, SIGN_KIND.tx, new TextEncoder().encode(m), signature),
  );
  // Whatever the verifier says here, the same bytes can never be registered.
  assert.equal(new Set(verdicts).size, 1, 'the verdict does not depend on the message');
  assert.match(refusal(identity), /small order/);
  // An honest signature never verifies under a torsion key.
  const honest = keyPairFromSeed(new Uint8Array(32).fill(5));
  const message = new Uint8Array([1, 2, 3]);
  const real = sign(honest, chain, SIGN_KIND.tx, message);
  for (const hex of TORSION) {
    assert.equal(verify(fromHex(hex), chain, SIGN_KIND.tx, message, real), false);
  }
});
