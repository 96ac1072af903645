// Transaction hashes whose signatures this node has verified. A hash names the
// whole signed bytes (signature included), so a hit means these exact bytes
// verified before: the mempool fills it, and checking a proposal or executing
// a block then skips the Ed25519 work for every transaction it already saw.

import { SIGNATURE_CACHE_ENTRIES_MAX } from '../../lib/limits.ts';

export class SignatureCache {
  private entries = new Set<string>();
  private previous = new Set<string>();

  constructor(private readonly entriesMax = SIGNATURE_CACHE_ENTRIES_MAX) {}

  /** Two generations: when the current one fills, it becomes the previous and the oldest is dropped. */
  add(hashHex: string): void {
    if (this.entries.size >= this.entriesMax / 2) {
      this.previous = this.entries;
      this.entries = new Set();
    }
    this.entries.add(hashHex);
  }

  has(hashHex: string): boolean {
    return this.entries.has(hashHex) || this.previous.has(hashHex);
  }

  get size(): number {
    return this.entries.size + this.previous.size;
  }
}
