// Ed25519 keys and raw signatures. Raw means without domain separation: RFC
// 8032 test vectors and the verify pool use these; everything else signs
// through sign()/verify() in domain.ts. Keys and signatures come from
// node:crypto (OpenSSL); verification from libsodium (sodium-native), which
// checks a signature in well under half of OpenSSL's time on the machines we
// measured, and verification is the largest single cost of an order on a
// validator (docs/decisions/0004-signature-verification.md).

import { createPrivateKey, createPublicKey, randomBytes, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import sodium from 'sodium-native';
import { assert } from '../lib/assert.ts';
import { PUBLIC_KEY_CACHE_ENTRIES_MAX } from '../lib/limits.ts';
import { BoundedCache, bytesKey } from './cache.ts';
import { PUBLIC_KEY_BYTES, SEED_BYTES, SIGNATURE_BYTES } from './constants.ts';
import { checkPublicKeyUncached } from './curve.ts';
import { CryptoError } from './errors.ts';
import { addressOf } from './address.ts';

/** DER prefixes that wrap a raw key for node:crypto (RFC 8410: SubjectPublicKeyInfo, PKCS #8). */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface KeyPair {
  readonly publicKey: Uint8Array;
  readonly seed: Uint8Array;
  readonly address: Uint8Array;
}

/** A KeyPair that carries its node:crypto private key, so signing builds no KeyObject. */
class Ed25519KeyPair implements KeyPair {
  readonly publicKey: Uint8Array;
  readonly seed: Uint8Array;
  readonly address: Uint8Array;
  readonly privateKey: KeyObject;

  constructor(seed: Uint8Array, publicKey: Uint8Array, privateKey: KeyObject) {
    this.seed = seed;
    this.publicKey = publicKey;
    this.address = addressOf(publicKey);
    this.privateKey = privateKey;
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

function privateKeyObject(seed: Uint8Array): KeyObject {
  return createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
}

/** The key pair of a 32-byte seed: deterministic (tests and the simulator use it). */
export function keyPairFromSeed(seed: Uint8Array): KeyPair {
  assert(seed.length === SEED_BYTES, `an Ed25519 seed is ${SEED_BYTES} bytes, got ${seed.length}`);
  const privateKey = privateKeyObject(seed);
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  assert(spki.length === SPKI_PREFIX.length + PUBLIC_KEY_BYTES, 'unexpected SPKI length');
  const publicKey = own(spki.subarray(SPKI_PREFIX.length));
  return new Ed25519KeyPair(own(seed), publicKey, privateKey);
}

/** A fresh key pair from the operating system's random source. */
export function generateKeyPair(): KeyPair {
  return keyPairFromSeed(own(randomBytes(SEED_BYTES)));
}

// Key pairs built by hand ({ publicKey, seed, address }) get their private
// KeyObject memoised here, keyed by the object.
const privateKeys = new WeakMap<KeyPair, KeyObject>();

function privateKeyOf(key: KeyPair): KeyObject {
  if (key instanceof Ed25519KeyPair) return key.privateKey;
  let privateKey = privateKeys.get(key);
  if (privateKey === undefined) {
    assert(key.seed.length === SEED_BYTES, `an Ed25519 seed is ${SEED_BYTES} bytes`);
    privateKey = privateKeyObject(key.seed);
    privateKeys.set(key, privateKey);
  }
  return privateKey;
}

/** An Ed25519 signature over exactly these bytes (RFC 8032; no domain separation). */
export function signRaw(key: KeyPair, message: Uint8Array): Uint8Array {
  const signature = sign(null, message, privateKeyOf(key));
  assert(signature.length === SIGNATURE_BYTES, 'Ed25519 signatures are 64 bytes');
  return own(signature);
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
