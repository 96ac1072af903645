// The exchange's only door to hashing (crypto/, node:crypto underneath).

import { addressOf, sha256, sha256Latin1 } from '../crypto/index.ts';
import { bytesKey } from './keys.ts';

export { sha256, sha256Latin1 };

/**
 * The address key (keys.ts) of a public key, memoized: the same signers sign block after
 * block. The cache is derived data (not state) and is bounded.
 */
export class AddressCache {
  private readonly map = new Map<string, string>();
  private readonly max: number;
  constructor(max: number) {
    this.max = max;
  }
  /** `key` is bytesKey(publicKey), which the caller already has. */
  addressOf(publicKey: Uint8Array, key: string): string {
    let address = this.map.get(key);
    if (address === undefined) {
      address = bytesKey(addressOf(publicKey));
      if (this.map.size >= this.max) this.map.clear();
      this.map.set(key, address);
    }
    return address;
  }
}
