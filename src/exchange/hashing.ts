// The exchange's only door to hashing (crypto/, node:crypto underneath).

import { sha256 } from '../crypto/hash.ts';
import { toHex } from '../lib/bytes.ts';

export { sha256 };

/** An address is the first 20 bytes of SHA-256 of the public key (docs/crypto.md). */
function addressOf(publicKey: Uint8Array): Uint8Array {
  return sha256(publicKey).subarray(0, 20);
}

/**
 * Hex address of a public key, memoized: the same signers sign block after
 * block. The cache is derived data (not state) and is bounded.
 */
export class AddressCache {
  private readonly map = new Map<string, string>();
  private readonly max: number;
  constructor(max: number) {
    this.max = max;
  }
  addressOf(publicKey: Uint8Array): string {
    const key = toHex(publicKey);
    let address = this.map.get(key);
    if (address === undefined) {
      address = toHex(addressOf(publicKey));
      if (this.map.size >= this.max) this.map.clear();
      this.map.set(key, address);
    }
    return address;
  }
}
