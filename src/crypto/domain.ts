// Domain separation. Every signature covers
//
//   "zomma-sig-v1" || u8 kind || uvarint(len chainId) || chainId || message
//
// so a signature made for one chain, or for one kind of message, never
// verifies for another (docs/crypto.md, "What is signed").

import { Writer } from '../codec/wire.ts';
import { assert } from '../lib/assert.ts';
import { CHAIN_ID_BYTES_MAX, SIGN_PREFIX_CACHE_ENTRIES_MAX } from '../lib/limits.ts';
import { isSignKind } from './constants.ts';
import type { SignKind } from './constants.ts';
import { signRaw, verifyRaw } from './ed25519.ts';
import type { KeyPair } from './ed25519.ts';
import { CryptoError } from './errors.ts';

/** The version tag at the start of all signed bytes; a new layout gets a new tag. */
export const SIGN_DOMAIN_TAG = 'zomma-sig-v1';

const CHAIN_ID_PATTERN = /^[a-z0-9-]+$/;

/** Throws CryptoError 'BadChainId' unless 1..64 characters of [a-z0-9-]. */
export function checkChainId(chainId: string): void {
  if (typeof chainId !== 'string') throw new CryptoError('BadChainId', 'chain id must be a string');
  if (chainId.length < 1 || chainId.length > CHAIN_ID_BYTES_MAX) {
    throw new CryptoError(
      'BadChainId',
      `chain id must be 1 to ${CHAIN_ID_BYTES_MAX} characters, got ${chainId.length}`,
    );
  }
  if (!CHAIN_ID_PATTERN.test(chainId)) {
    throw new CryptoError(
      'BadChainId',
      `chain id ${JSON.stringify(chainId)} may hold only a-z, 0-9 and '-'`,
    );
  }
}

// The prefix (tag, kind, chain id) is the same for every message of a chain and
// kind; there are few of each, so it is built once.
const prefixes = new Map<string, Uint8Array>();

function prefixOf(chainId: string, kind: SignKind): Uint8Array {
  const id = `${kind}:${chainId}`;
  let prefix = prefixes.get(id);
  if (prefix !== undefined) return prefix;
  checkChainId(chainId);
  assert(isSignKind(kind), `unknown signature kind ${String(kind)}`);
  const w = new Writer(SIGN_DOMAIN_TAG.length + 2 + chainId.length);
  for (let i = 0; i < SIGN_DOMAIN_TAG.length; i++) w.u8(SIGN_DOMAIN_TAG.charCodeAt(i));
  w.u8(kind).string(chainId, CHAIN_ID_BYTES_MAX);
  prefix = w.finishOwned();
  if (prefixes.size >= SIGN_PREFIX_CACHE_ENTRIES_MAX) prefixes.clear();
  prefixes.set(id, prefix);
  return prefix;
}

/**
 * The exact bytes an Ed25519 signature covers. Throws CryptoError 'BadChainId'
 * for a bad chain id; an unknown kind is a bug in the caller (assertion).
 */
export function signedBytes(chainId: string, kind: SignKind, message: Uint8Array): Uint8Array {
  const prefix = prefixOf(chainId, kind);
  const out = new Uint8Array(prefix.length + message.length);
  out.set(prefix);
  out.set(message, prefix.length);
  return out;
}

/** A 64-byte signature over signedBytes(chainId, kind, message). */
export function sign(
  key: KeyPair,
  chainId: string,
  kind: SignKind,
  message: Uint8Array,
): Uint8Array {
  return signRaw(key, signedBytes(chainId, kind, message));
}

/** True if the signature is valid; false, never a throw, on any bad input. */
export function verify(
  publicKey: Uint8Array,
  chainId: string,
  kind: SignKind,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  try {
    if (!isSignKind(kind) || !(message instanceof Uint8Array)) return false;
    return verifyRaw(publicKey, signedBytes(chainId, kind, message), signature);
  } catch {
    return false;
  }
}
