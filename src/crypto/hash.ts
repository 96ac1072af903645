// SHA-256 (node:crypto, native) and the Merkle root of RFC 6962, section 2.1.

import { createHash, hash } from 'node:crypto';
import { HASH_BYTES } from './constants.ts';
import { assert } from '../lib/assert.ts';

const ONE_SHOT = typeof hash === 'function';

/** SHA-256 of the concatenation of the parts, as a plain Uint8Array of its own. */
export function sha256(...parts: Uint8Array[]): Uint8Array {
  // One part (the state digest's leaves, addresses): the one-shot hash skips
  // the Hash object and is about a third faster (Node ≥ 20.12).
  if (parts.length === 1 && ONE_SHOT) {
    const out = new Uint8Array(HASH_BYTES);
    out.set(hash('sha256', parts[0]!, 'buffer'));
    return out;
  }
  const h = createHash('sha256');
  for (const part of parts) h.update(part);
  const digest = h.digest();
  const out = new Uint8Array(HASH_BYTES);
  out.set(digest);
  return out;
}

/**
 * SHA-256 of one byte string, as node:crypto returns it (a Buffer, no copy):
 * for a caller that reads the 32 bytes at once and keeps nothing (the state
 * digest's leaves). Use sha256() for a hash to keep.
 */
export function sha256Transient(data: Uint8Array): Uint8Array {
  return ONE_SHOT ? hash('sha256', data, 'buffer') : createHash('sha256').update(data).digest();
}

/**
 * SHA-256 of one byte string as 32 latin1 characters, character i being byte
 * i: for a caller that reads the bytes at once and keeps nothing (the state
 * digest's leaves). A short string is the cheapest result node:crypto can
 * return: a Buffer costs an ArrayBuffer with its own backing store per call,
 * which measured twice the time of the hash itself on leaf-sized input.
 */
export function sha256Latin1(data: Uint8Array): string {
  return ONE_SHOT
    ? hash('sha256', data, 'binary')
    : createHash('sha256').update(data).digest('binary');
}

const LEAF_PREFIX = Uint8Array.of(0x00);
const NODE_PREFIX = Uint8Array.of(0x01);

/**
 * RFC 6962 Merkle tree hash: leaf = sha256(0x00 || leaf), node =
 * sha256(0x01 || left || right), the empty tree = sha256(). The prefixes keep a
 * leaf from ever passing for an inner node (second-preimage attacks). The tree
 * splits at the largest power of two below n, so an odd node is never
 * duplicated (CVE-2012-2459, which bit Bitcoin's tree).
 */
export function merkleRoot(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return sha256();
  if (!ONE_SHOT) {
    const level: Uint8Array[] = leaves.map((leaf) => sha256(LEAF_PREFIX, leaf));
    return subtreeRoot(level, 0, level.length, (l, r) => sha256(NODE_PREFIX, l, r));
  }
  // Each hash's input is staged in one buffer and hashed one-shot: a block's
  // root costs about two hashes per transaction on every validator, and a
  // Hash object per hash cost more than the hashing.
  let staged = Buffer.allocUnsafe(256);
  const level = leaves.map((leaf) => {
    if (staged.length < 1 + leaf.length) staged = Buffer.allocUnsafe(2 * (1 + leaf.length));
    staged[0] = LEAF_PREFIX[0]!;
    staged.set(leaf, 1);
    return hash('sha256', staged.subarray(0, 1 + leaf.length), 'buffer');
  });
  const node = Buffer.allocUnsafe(1 + 2 * HASH_BYTES);
  node[0] = NODE_PREFIX[0]!;
  const root = subtreeRoot(level, 0, level.length, (left, right) => {
    node.set(left, 1);
    node.set(right, 1 + HASH_BYTES);
    return hash('sha256', node, 'buffer');
  });
  // A plain Uint8Array of its own, as sha256() returns.
  const out = new Uint8Array(HASH_BYTES);
  out.set(root);
  return out;
}

/** The root over hashed leaves [start, end); O(n) hashes, O(log n) stack. */
function subtreeRoot(
  hashes: Uint8Array[],
  start: number,
  end: number,
  join: (left: Uint8Array, right: Uint8Array) => Uint8Array,
): Uint8Array {
  const n = end - start;
  assert(n >= 1, 'empty subtree');
  if (n === 1) return hashes[start]!;
  let k = 1;
  while (k * 2 < n) k *= 2;
  const left = subtreeRoot(hashes, start, start + k, join);
  const right = subtreeRoot(hashes, start + k, end, join);
  return join(left, right);
}
