// Ed25519 keys and raw signatures. Raw means without domain separation: RFC
// 8032 test vectors and the verify pool use these; everything else signs
// through sign()/verify() in domain.ts. Keys and signatures come from
// node:crypto (OpenSSL); verification from libsodium (sodium-native), which
// checks a signature in well under half of OpenSSL's time on the machines we
// measured, and verification is the largest single cost of an order on a
// validator (docs/decisions/0004-signature-verification.md). Signing is
// libsodium's too: Ed25519 signatures are deterministic (RFC 8032), so the
// bytes are OpenSSL's, at less than half its time (about 20 against 50 µs
// here), and a validator signs two or three votes every height.

import { randomBytes } from 'node:crypto';
import sodium from 'sodium-native';
import { assert } from '../lib/assert.ts';
import { PUBLIC_KEY_CACHE_ENTRIES_MAX } from '../lib/limits.ts';
import { BoundedCache, bytesKey } from './cache.ts';
import { PUBLIC_KEY_BYTES, SEED_BYTES, SIGNATURE_BYTES } from './constants.ts';
import { checkPublicKeyUncached } from './curve.ts';
import { CryptoError } from './errors.ts';
import { addressOf } from './address.ts';

/** libsodium's Ed25519 secret key: the seed, then the public key derived from it. */
const SECRET_KEY_BYTES = SEED_BYTES + PUBLIC_KEY_BYTES;

export interface KeyPair {
  readonly publicKey: Uint8Array;
  readonly seed: Uint8Array;
  readonly address: Uint8Array;
}

/** A KeyPair that carries its libsodium secret key, so signing derives nothing. */
class Ed25519KeyPair implements KeyPair {
  readonly publicKey: Uint8Array;
  readonly seed: Uint8Array;
  readonly address: Uint8Array;
  readonly secretKey: Uint8Array;

  constructor(seed: Uint8Array, publicKey: Uint8Array, secretKey: Uint8Array) {
    this.seed = seed;
    this.publicKey = publicKey;
    this.address = addressOf(publicKey);
    this.secretKey = secretKey;
  }

  // The seed is a secret: keep it out of logs and inspection.
  toJSON(): object {
    return { publicKey: Buffer.from(this.publicKey).toString('hex') };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `KeyPair { publicKey: ${Buffer.from(this.publicKey).toString('hex')} }`;
  }
}

/** A copy in an ArrayBuffer of its own, as a plain Uint8Array (not a pooled Buffer). */
function own(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length);
  out.set(bytes);
  return out;
}

/** libsodium's secret key of a seed, and the public key it derives (both from the seed alone). */
function secretKeyOf(seed: Uint8Array): { secretKey: Uint8Array; publicKey: Uint8Array } {
  assert(seed.length === SEED_BYTES, `an Ed25519 seed is ${SEED_BYTES} bytes, got ${seed.length}`);
  const publicKey = new Uint8Array(PUBLIC_KEY_BYTES);
  const secretKey = new Uint8Array(SECRET_KEY_BYTES);
  sodium.crypto_sign_seed_keypair(publicKey, secretKey, seed);
  return { secretKey, publicKey };
}

/** The key pair of a 32-byte seed: deterministic (tests and the simulator use it). */
export function keyPairFromSeed(seed: Uint8Array): KeyPair {
  const { secretKey, publicKey } = secretKeyOf(seed);
  return new Ed25519KeyPair(own(seed), publicKey, secretKey);
}

/** A fresh key pair from the operating system's random source. */
export function generateKeyPair(): KeyPair {
  return keyPairFromSeed(own(randomBytes(SEED_BYTES)));
}

// Key pairs built by hand ({ publicKey, seed, address }) get their secret key
// memoised here, keyed by the object. It is derived from the seed alone, as
// OpenSSL's signing does: a hand-built pair's publicKey is never trusted.
const secretKeys = new WeakMap<KeyPair, Uint8Array>();

function secretKeyOfPair(key: KeyPair): Uint8Array {
  if (key instanceof Ed25519KeyPair) return key.secretKey;
  let secretKey = secretKeys.get(key);
  if (secretKey === undefined) {
    secretKey = secretKeyOf(key.seed).secretKey;
    secretKeys.set(key, secretKey);
  }
  return secretKey;
}

/** An Ed25519 signature over exactly these bytes (RFC 8032; no domain separation). */
export function signRaw(key: KeyPair, message: Uint8Array): Uint8Array {
  const signature = new Uint8Array(SIGNATURE_BYTES);
  sodium.crypto_sign_detached(signature, message, secretKeyOfPair(key));
  return signature;
}

/** True if the signature is valid for exactly these bytes; false, never a throw, on any bad input. */
export function verifyRaw(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  try {
    if (!(message instanceof Uint8Array) || !(signature instanceof Uint8Array)) return false;
    if (!(publicKey instanceof Uint8Array) || signature.length !== SIGNATURE_BYTES) return false;
    if (publicKey.length !== PUBLIC_KEY_BYTES) return false;
    return sodium.crypto_sign_verify_detached(signature, message, publicKey);
  } catch {
    return false;
  }
}

/** Keys that passed checkPublicKey: the check is a modular exponentiation, and signers repeat. */
let checkedKeys: BoundedCache<true> | undefined;

/**
 * Throws CryptoError 'BadPublicKey' (with the reason) unless the key may be
 * registered: a canonical encoding of a curve point that is not of small
 * order (docs/crypto.md, "The public-key rule").
 */
export function checkPublicKey(publicKey: Uint8Array): void {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== PUBLIC_KEY_BYTES) {
    throw new CryptoError('BadPublicKey', `public key must be ${PUBLIC_KEY_BYTES} bytes`);
  }
  checkedKeys ??= new BoundedCache(PUBLIC_KEY_CACHE_ENTRIES_MAX);
  const id = bytesKey(publicKey);
  if (checkedKeys.get(id) === true) return;
  checkPublicKeyUncached(publicKey);
  checkedKeys.set(id, true);
}
