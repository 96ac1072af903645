// Addresses: the first 20 bytes of SHA-256 of the public key, written as
// 0x-prefixed lowercase hex.

import { assert } from '../lib/assert.ts';
import { toHex } from '../lib/bytes.ts';
import { ADDRESS_BYTES, PUBLIC_KEY_BYTES } from './constants.ts';
import { CryptoError } from './errors.ts';
import { sha256 } from './hash.ts';

export function addressOf(publicKey: Uint8Array): Uint8Array {
  assert(publicKey.length === PUBLIC_KEY_BYTES, 'an address is taken of a 32-byte public key');
  return sha256(publicKey).slice(0, ADDRESS_BYTES);
}

export function formatAddress(address: Uint8Array): string {
  assert(address.length === ADDRESS_BYTES, `an address is ${ADDRESS_BYTES} bytes`);
  return `0x${toHex(address)}`;
}

const ADDRESS_PATTERN = /^0x[0-9a-fA-F]{40}$/;

/**
 * The 20 bytes of a written address. Upper-case hex digits are accepted (the
 * bytes are the same); formatAddress always writes lower case.
 * Throws CryptoError 'BadAddress'.
 */
export function parseAddress(text: string): Uint8Array {
  if (typeof text !== 'string') throw new CryptoError('BadAddress', 'address must be a string');
  if (!ADDRESS_PATTERN.test(text)) {
    const shown = text.length > 60 ? `${JSON.stringify(text.slice(0, 60))}…` : JSON.stringify(text);
    throw new CryptoError(
      'BadAddress',
      `address ${shown} must be 0x followed by ${2 * ADDRESS_BYTES} hex digits`,
    );
  }
  return Uint8Array.from(Buffer.from(text.slice(2), 'hex'));
}
