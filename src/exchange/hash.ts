// The state digest and appHash (docs/exchange.md, "State hash").
//
// Every entity (globals, validators, each market, resting order, address
// with its subaccounts, pending deposit, spent deposit id, proposal) has a leaf
//   leaf = sha256(u8 tag || canonical encoding of the entity)
// and the digest is the sum of all leaves mod 2^256 (an additive multiset
// hash): a change subtracts the entity's old leaf and adds its new one, so a
// block costs O(entities it touched), never O(state). Then
//   appHash = sha256(u64 height || digest).
//
// Purpose: honest replicas that executed the same blocks hold the same digest,
// so a differing appHash detects divergence at once, and a snapshot can be
// checked against the appHash the chain committed to. Limits: it is not a
// Merkle tree — it proves nothing about a single entity without the whole
// state — and its collision resistance is that of the generalized birthday
// problem for additive hashes over a 256-bit group (a few hundred bits of work
// would be needed to forge; enough against accidental divergence and against
// a crafted snapshot that must still decode and pass the invariants, but not
// a commitment scheme for light clients).

import { Writer } from '../codec/wire.ts';
import { assert } from '../lib/assert.ts';
import {
  LEAF,
  creditedBytes,
  writeDeposit,
  writeGlobals,
  writeMarketState,
  writeOrderLeaf,
  writePrincipalLeaf,
  writeProposal,
  writeValidators,
} from './encoding.ts';
import { sha256 } from './hashing.ts';
import type { OrderBook } from './book/index.ts';
import type { ExchangeState, MarketState } from './state.ts';

/** A 256-bit accumulator: eight 32-bit words, most significant first. */
export class Digest {
  readonly words = new Uint32Array(8);

  add(leaf: Uint8Array): void {
    let carry = 0;
    const w = this.words;
    for (let i = 7; i >= 0; i--) {
      const j = 4 * i;
      const x =
        ((leaf[j]! << 24) | (leaf[j + 1]! << 16) | (leaf[j + 2]! << 8) | leaf[j + 3]!) >>> 0;
      const sum = w[i]! + x + carry;
      w[i] = sum >>> 0;
      carry = sum > 0xffffffff ? 1 : 0;
    }
  }

  sub(leaf: Uint8Array): void {
    let borrow = 0;
    const w = this.words;
    for (let i = 7; i >= 0; i--) {
      const j = 4 * i;
      const x =
        ((leaf[j]! << 24) | (leaf[j + 1]! << 16) | (leaf[j + 2]! << 8) | leaf[j + 3]!) >>> 0;
      const diff = w[i]! - x - borrow;
      w[i] = diff >>> 0;
      borrow = diff < 0 ? 1 : 0;
    }
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(32);
    const view = new DataView(out.buffer);
    for (let i = 0; i < 8; i++) view.setUint32(4 * i, this.words[i]!);
    return out;
  }
}

const writer = new Writer(1024);

function leafOf(tag: number, write: (w: Writer) => void): Uint8Array {
  writer.reset().u8(tag);
  write(writer);
  return sha256(writer.peek());
}

/** Replaces an entity's leaf in the digest. */
function swap(digest: Digest, old: Uint8Array | null, next: Uint8Array | null): void {
  if (old !== null) digest.sub(old);
  if (next !== null) digest.add(next);
}

function updateOrderLeaves(state: ExchangeState, digest: Digest, book: OrderBook): void {
  const changes = book.changes;
  for (let i = 0; i < changes.orderCount; i++) {
    const id = changes.orderId[i]!;
    const meta = state.orders.get(id);
    const order = book.order(id);
    if (meta === undefined || order === undefined) continue;
    const leaf = leafOf(LEAF.order, (w) => writeOrderLeaf(w, order, meta));
    swap(digest, meta.leaf, leaf);
    meta.leaf = leaf;
  }
  changes.clear();
}

/** The market's book, then the books of its auction orders (empty in continuous trading). */
export function booksOf(market: MarketState): OrderBook[] {
  const a = market.auction;
  return a === null ? [market.book] : [market.book, a.bids, a.asks];
}

/** Brings the digest up to date with everything marked since the last call. */
export function updateDigest(state: ExchangeState, digest: Digest, genesisHash: Uint8Array): void {
  for (const leaf of state.goneLeaves) digest.sub(leaf);
  state.goneLeaves.length = 0;

  for (const market of state.markets) {
    if (market.retired) continue;
    updateOrderLeaves(state, digest, market.book);
    // An order that moved between books is looked up in each: only the one holding it hashes it.
    const auction = market.auction;
    if (auction !== null) {
      updateOrderLeaves(state, digest, auction.bids);
      updateOrderLeaves(state, digest, auction.asks);
    }
    if (market.dirty) {
      const leaf = leafOf(LEAF.market, (w) => writeMarketState(w, market));
      swap(digest, market.leaf, leaf);
      market.leaf = leaf;
      market.dirty = false;
    }
  }
  state.dirtyAccounts.length = 0;
  for (const p of state.dirtyPrincipals) {
    const leaf = leafOf(LEAF.principal, (w) => writePrincipalLeaf(w, p, state.listing !== null));
    swap(digest, p.leaf, leaf);
    p.leaf = leaf;
  }
  state.dirtyPrincipals.length = 0;
  for (const d of state.dirtyDeposits) {
    const alive = state.deposits.get(d.key) === d;
    const leaf = alive ? leafOf(LEAF.deposit, (w) => writeDeposit(w, d)) : null;
    swap(digest, d.leaf, leaf);
    d.leaf = leaf;
    d.dirty = false;
  }
  state.dirtyDeposits.length = 0;
  for (const id of state.newCredited)
    digest.add(leafOf(LEAF.credited, (w) => w.raw(creditedBytes(id))));
  state.newCredited.length = 0;
  for (const p of state.dirtyProposals) {
    const leaf = leafOf(LEAF.proposal, (w) => writeProposal(w, p));
    swap(digest, p.leaf, leaf);
    p.leaf = leaf;
    p.dirty = false;
  }
  state.dirtyProposals.length = 0;
  if (state.validatorsDirty) {
    const leaf = leafOf(LEAF.validators, (w) => writeValidators(w, state));
    swap(digest, state.validatorsLeaf, leaf);
    state.validatorsLeaf = leaf;
    state.validatorsDirty = false;
  }
  const globals = leafOf(LEAF.globals, (w) => writeGlobals(w, state, genesisHash));
  swap(digest, state.globalsLeaf, globals);
  state.globalsLeaf = globals;
  state.epoch++;
}

/** The digest recomputed from every entity: O(state). For tests and restore. */
export function digestFromScratch(state: ExchangeState, genesisHash: Uint8Array): Digest {
  const digest = new Digest();
  digest.add(leafOf(LEAF.globals, (w) => writeGlobals(w, state, genesisHash)));
  digest.add(leafOf(LEAF.validators, (w) => writeValidators(w, state)));
  for (const market of state.markets) {
    if (market.retired) continue;
    digest.add(leafOf(LEAF.market, (w) => writeMarketState(w, market)));
    for (const book of booksOf(market)) {
      for (const side of ['buy', 'sell'] as const) {
        for (const order of book.ordersOf(side)) {
          const meta = state.orders.get(order.orderId);
          assert(meta !== undefined, `resting order ${order.orderId} has no record`);
          digest.add(leafOf(LEAF.order, (w) => writeOrderLeaf(w, order, meta)));
        }
      }
    }
  }
  for (const p of state.principals.values())
    digest.add(leafOf(LEAF.principal, (w) => writePrincipalLeaf(w, p, state.listing !== null)));
  for (const d of state.deposits.values())
    digest.add(leafOf(LEAF.deposit, (w) => writeDeposit(w, d)));
  for (const id of state.creditedDeposits)
    digest.add(leafOf(LEAF.credited, (w) => w.raw(creditedBytes(id))));
  for (const p of state.proposals.values())
    digest.add(leafOf(LEAF.proposal, (w) => writeProposal(w, p)));
  return digest;
}

/** Sets every entity's stored leaf from scratch (after a restore). */
export function resetLeaves(state: ExchangeState, genesisHash: Uint8Array): Digest {
  const digest = new Digest();
  for (const market of state.markets) {
    if (market.retired) continue;
    market.dirty = true;
    for (const book of booksOf(market)) {
      book.changes.clear();
      for (const side of ['buy', 'sell'] as const) {
        for (const order of book.ordersOf(side)) {
          const meta = state.orders.get(order.orderId)!;
          meta.leaf = leafOf(LEAF.order, (w) => writeOrderLeaf(w, order, meta));
          digest.add(meta.leaf);
        }
      }
    }
  }
  for (const a of state.accounts) state.markAccount(a);
  for (const p of state.principals.values()) state.markPrincipal(p);
  for (const d of state.deposits.values()) state.markDeposit(d);
  for (const id of state.creditedDeposits) state.newCredited.push(id);
  for (const p of state.proposals.values()) state.markProposal(p);
  state.validatorsDirty = true;
  updateDigest(state, digest, genesisHash);
  return digest;
}
