// The signature rule every validator must share (docs/crypto.md, "The
// verification rule"), pinned on hand-made edge cases: the verdict on a
// transaction or a vote is part of consensus, so a library upgrade that
// changes any of these verdicts is a coordinated change of the protocol, and
// must fail here first. Signatures are built with the bigint arithmetic of
// curve.ts from chosen scalars, so they exercise what no honest signer makes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey, verify as nodeVerify } from 'node:crypto';
import { fromHex } from '../../src/lib/bytes.ts';
import { VerifyPool, checkPublicKey, verifyRaw } from '../../src/crypto/index.ts';
import type { VerifyItem } from '../../src/crypto/index.ts';
import {
  L,
  decodePoint,
  encodePoint,
  isIdentity,
  pointAdd,
  scalarMult,
} from '../../src/crypto/curve.ts';
import type { Point } from '../../src/crypto/curve.ts';

const BASE = decodePoint(
  fromHex('5866666666666666666666666666666666666666666666666666666666666666'),
);
/** A point of order 8 (ed25519-speccheck's list). */
const T8 = decodePoint(fromHex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a'));
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function littleEndian(value: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0, v = value; i < 32; i++, v >>= 8n) out[i] = Number(v & 0xffn);
  return out;
}

function fromLittleEndian(bytes: Uint8Array): bigint {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  return v;
}

/** k = SHA-512(R ‖ A ‖ M) mod L (RFC 8032 section 5.1.7). */
function challenge(R: Uint8Array, A: Uint8Array, message: Uint8Array): bigint {
  const digest = createHash('sha512').update(R).update(A).update(message).digest();
  return fromLittleEndian(digest) % L;
}

function signature(R: Uint8Array, S: bigint): Uint8Array {
  const out = new Uint8Array(64);
  out.set(R, 0);
  out.set(littleEndian(S), 32);
  return out;
}

/** OpenSSL's verdict (node:crypto), for the cases where the libraries part. */
function openSslVerify(publicKey: Uint8Array, message: Uint8Array, sig: Uint8Array): boolean {
  const key = createPublicKey({
    key: Buffer.concat([SPKI_PREFIX, publicKey]),
    format: 'der',
    type: 'spki',
  });
  return nodeVerify(null, message, key, sig);
}

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

// A secret scalar of our choosing, its prime-order key, and the same key plus
// a point of order 8: a key of mixed order, which the registration rule admits.
const a = 0x1234_5678_90ab_cdefn * 8n + 5n;
const A = scalarMult(a, BASE);
const primeKey = encodePoint(A);
const mixedKey = encodePoint(pointAdd(A, T8));
const r = 987_654_321n;
const R = encodePoint(scalarMult(r, BASE));

/** A signature by scalar `a` with nonce `r` (what RFC 8032 signing computes, with our own r). */
function signWith(key: Uint8Array, message: Uint8Array): Uint8Array {
  return signature(R, (r + challenge(R, key, message) * a) % L);
}

/** Messages whose challenge k against the mixed key is, and is not, a multiple of 8. */
function messagesByChallenge(): { multiple: Uint8Array; other: Uint8Array } {
  let multiple: Uint8Array | undefined;
  let other: Uint8Array | undefined;
  for (let i = 0; multiple === undefined || other === undefined; i++) {
    const m = utf8(`message ${i}`);
    if (challenge(R, mixedKey, m) % 8n === 0n) multiple ??= m;
    else other ??= m;
  }
  return { multiple, other };
}

/**
 * A signature under the mixed key whose R is a point of small order and which
 * satisfies the cofactorless equation [S]B = R + [k]A: R + [k]T8 = identity,
 * S = k·a. No honest signer makes one; its key's owner can.
 */
function smallOrderRSignature(): { message: Uint8Array; sig: Uint8Array } {
  const torsion: Point[] = [1n, 2n, 3n, 4n, 5n, 6n, 7n].map((j) => scalarMult(j, T8));
  for (let i = 0; ; i++) {
    const message = utf8(`small R ${i}`);
    for (const point of torsion) {
      const encoded = encodePoint(point);
      const k = challenge(encoded, mixedKey, message);
      if (isIdentity(pointAdd(point, scalarMult(k, T8)))) {
        return { message, sig: signature(encoded, (k * a) % L) };
      }
    }
  }
}

test('the hand-made signatures are real: both libraries accept one under a prime-order key', () => {
  const message = utf8('baseline');
  const sig = signWith(primeKey, message);
  assert.equal(verifyRaw(primeKey, message, sig), true);
  assert.equal(openSslVerify(primeKey, message, sig), true);
});

test('S must be canonical (S < L): S + L, the same point equation, is refused', () => {
  const message = utf8('malleable?');
  const sig = signWith(primeKey, message);
  const S = fromLittleEndian(sig.subarray(32));
  // [S + L]B = [S]B: a verifier that reduced S would accept a second
  // signature, and so a second transaction hash, for the same transaction.
  for (const s of [S + L, S + 2n * L, S + 15n * L]) {
    assert.ok(s < 1n << 256n);
    assert.equal(verifyRaw(primeKey, message, signature(R, s)), false, `S + ${(s - S) / L}L`);
  }
});

test('the equation is cofactorless: under a mixed-order key only a challenge divisible by 8 verifies', () => {
  checkPublicKey(mixedKey); // admitted by the registration rule (docs/crypto.md)
  const { multiple, other } = messagesByChallenge();
  // [S]B = R + [k]A + [k]T8 holds exactly when 8 divides k. A cofactored
  // verifier (ZIP-215) checks [8][S]B = [8]R + [8k]A and would accept both:
  // a validator running one would prevote for blocks the others refuse.
  assert.equal(verifyRaw(mixedKey, multiple, signWith(mixedKey, multiple)), true);
  assert.equal(verifyRaw(mixedKey, other, signWith(mixedKey, other)), false);
  // OpenSSL is cofactorless too; on these the libraries agree.
  assert.equal(openSslVerify(mixedKey, multiple, signWith(mixedKey, multiple)), true);
  assert.equal(openSslVerify(mixedKey, other, signWith(mixedKey, other)), false);
});

test('R of small order is refused, where OpenSSL accepts: why every node verifies with libsodium', () => {
  const { message, sig } = smallOrderRSignature();
  assert.equal(verifyRaw(mixedKey, message, sig), false);
  // The documented disagreement (decision 0004): a node verifying with
  // node:crypto would count this signature valid and split from the others.
  assert.equal(openSslVerify(mixedKey, message, sig), true);
});

test('small-order and non-canonical keys verify nothing, even the signature that fits them', () => {
  // Under the identity key, R = [S]B satisfies the cofactorless equation for any message.
  const S = 12_345n;
  const forged = signature(encodePoint(scalarMult(S, BASE)), S);
  const keys = [
    '0100000000000000000000000000000000000000000000000000000000000000', // identity
    'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // identity, y = p + 1
    'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // order 2
    'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', // order 8
  ];
  for (const hex of keys) {
    assert.equal(verifyRaw(fromHex(hex), utf8('anything'), forged), false, hex);
  }
});

test('the verify pool gives the same verdict as the calling thread on every edge case', async () => {
  const { multiple, other } = messagesByChallenge();
  const small = smallOrderRSignature();
  const baseline = signWith(primeKey, utf8('baseline'));
  const S = fromLittleEndian(baseline.subarray(32));
  const items: VerifyItem[] = [
    { publicKey: primeKey, message: utf8('baseline'), signature: baseline },
    { publicKey: primeKey, message: utf8('baseline'), signature: signature(R, S + L) },
    { publicKey: mixedKey, message: multiple, signature: signWith(mixedKey, multiple) },
    { publicKey: mixedKey, message: other, signature: signWith(mixedKey, other) },
    { publicKey: mixedKey, message: small.message, signature: small.sig },
  ];
  const pool = new VerifyPool({ workers: 1 });
  try {
    const verdicts = await pool.verifyBatch(items);
    assert.deepEqual(verdicts, [true, false, true, false, false]);
    assert.deepEqual(
      verdicts,
      items.map((i) => verifyRaw(i.publicKey, i.message, i.signature)),
    );
  } finally {
    await pool.close();
  }
});
