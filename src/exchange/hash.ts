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
  writePrincipal,
  writePrincipalLeaf,
  writeProposal,
  writeSubaccounts,
  writeValidators,
} from './encoding.ts';
import { sha256, sha256Latin1 } from './hashing.ts';
import type { OrderBook } from './book/index.ts';
import type { ExchangeState, MarketState, Principal } from './state.ts';

/** Leaf slots the table starts with (it doubles as needed). */
const LEAF_SLOTS_INITIAL = 4096;

/** Bytes of a memo slot of the smallest class; each class doubles the one before. */
const MEMO_SLOT_MIN_BYTES = 64;
/** Slots a class's slab starts with (it doubles as needed). */
const MEMO_SLOTS_INITIAL = 256;

/**
 * The addresses' memos (writePrincipalLeafMemo) in slots of fixed size, one
 * slab per size class (64, 128, 256 … bytes): an address keeps its class and
 * slot as numbers, so reading its memo opens no typed array of its own, and a
 * memo costs no ArrayBuffer to allocate and collect. A memo that outgrows its
 * slot moves to a larger class; the slot it leaves is reused by the next memo
 * of that class, so the slabs hold at most twice the live memos' bytes plus
 * the slots freed by moves. Derived, like the memos: never part of the state.
 */
export class MemoSlabs {
  readonly slabs: Uint8Array[] = [];
  private readonly used: number[] = [];
  private readonly free: number[][] = [];

  /** The smallest class whose slots hold `length` bytes. */
  static classOf(length: number): number {
    let c = 0;
    while (MEMO_SLOT_MIN_BYTES << c < length) {
      c++;
      assert(c < 24, 'an address leaf of over 512 MiB');
    }
    return c;
  }

  static slotBytes(c: number): number {
    return MEMO_SLOT_MIN_BYTES << c;
  }

  /** A free slot of class c. */
  alloc(c: number): number {
    while (this.slabs.length <= c) {
      const bytes = MemoSlabs.slotBytes(this.slabs.length);
      this.slabs.push(new Uint8Array(bytes * MEMO_SLOTS_INITIAL));
      this.used.push(0);
      this.free.push([]);
    }
    const reused = this.free[c]!.pop();
    if (reused !== undefined) return reused;
    const slot = this.used[c]!++;
    const slab = this.slabs[c]!;
    if ((slot + 1) * MemoSlabs.slotBytes(c) > slab.length) {
      const grown = new Uint8Array(2 * slab.length);
      grown.set(slab);
      this.slabs[c] = grown;
    }
    return slot;
  }

  release(c: number, slot: number): void {
    this.free[c]!.push(slot);
  }
}

/**
 * A 256-bit accumulator: eight 32-bit words, most significant first. It also
 * keeps the current leaves of the entities that change in nearly every block
 * (addresses and resting orders), eight words per slot of one table: no object
 * per leaf to allocate, promote and collect, and subtracting an old leaf reads
 * words, not bytes.
 */
export class Digest {
  readonly words = new Uint32Array(8);
  private table = new Uint32Array(8 * LEAF_SLOTS_INITIAL);
  private slotCount = 0;
  private readonly freeSlots: number[] = [];
  /** Views of viewsOf by length (viewOf). */
  private readonly views: (Uint8Array | undefined)[] = [];
  private viewsOf: Uint8Array | null = null;
  /** The addresses' memos of their subaccounts' bytes (writePrincipalLeafMemo). */
  readonly memos = new MemoSlabs();

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

  /**
   * Replaces the leaf kept in `slot` (a new slot when null) by the leaf
   * sha256(bytes[0, length)), in the table and in the sum; returns the slot.
   * The hash (node:crypto, over the writer's bytes in place, as a latin1
   * string) goes straight into the table as eight words.
   */
  swapSlotHashing(slot: number | null, bytes: Uint8Array, length: number): number {
    let at: number;
    if (slot === null) {
      at = this.allocSlot();
    } else {
      at = 8 * slot;
      this.subAt(at);
    }
    const table = this.table;
    const leaf = sha256Latin1(this.viewOf(bytes, length));
    for (let i = 0, j = 0; i < 8; i++, j += 4) {
      table[at + i] =
        ((leaf.charCodeAt(j) << 24) |
          (leaf.charCodeAt(j + 1) << 16) |
          (leaf.charCodeAt(j + 2) << 8) |
          leaf.charCodeAt(j + 3)) >>>
        0;
    }
    let carry = 0;
    const w = this.words;
    for (let i = 7; i >= 0; i--) {
      const sum = w[i]! + table[at + i]! + carry;
      w[i] = sum >>> 0;
      carry = sum > 0xffffffff ? 1 : 0;
    }
    return at >>> 3;
  }

  /**
   * bytes[0, length) as a view, reused while `bytes` is the same array: the
   * leaves are hashed from one writer's buffer, and a view per leaf was most
   * of what hashing allocated.
   */
  private viewOf(bytes: Uint8Array, length: number): Uint8Array {
    if (bytes !== this.viewsOf) {
      this.viewsOf = bytes;
      this.views.length = 0;
    }
    let view = this.views[length];
    if (view === undefined) {
      view = new Uint8Array(bytes.buffer, bytes.byteOffset, length);
      while (this.views.length < length) this.views.push(undefined);
      this.views[length] = view;
    }
    return view;
  }

  /** Subtracts the leaf kept in `slot` and frees the slot (the entity is gone). */
  releaseSlot(slot: number): void {
    this.subAt(8 * slot);
    this.freeSlots.push(slot);
  }

  /** The leaf kept in `slot`, as bytes (for tests). */
  slotBytes(slot: number): Uint8Array {
    const out = new Uint8Array(32);
    const view = new DataView(out.buffer);
    for (let i = 0; i < 8; i++) view.setUint32(4 * i, this.table[8 * slot + i]!);
    return out;
  }

  private subAt(at: number): void {
    const table = this.table;
    let borrow = 0;
    const w = this.words;
    for (let i = 7; i >= 0; i--) {
      const diff = w[i]! - table[at + i]! - borrow;
      w[i] = diff >>> 0;
      borrow = diff < 0 ? 1 : 0;
    }
  }

  /** The word offset of a free slot. */
  private allocSlot(): number {
    const free = this.freeSlots.pop();
    if (free !== undefined) return 8 * free;
    const slot = this.slotCount++;
    if (8 * this.slotCount > this.table.length) {
      const grown = new Uint32Array(2 * this.table.length);
      grown.set(this.table);
      this.table = grown;
    }
    return 8 * slot;
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

function updateOrderLeaves(
  state: ExchangeState,
  digest: Digest,
  book: OrderBook,
  inAuction: boolean,
): void {
  const changes = book.changes;
  for (let i = changes.orderCount - 1; i >= 0; i--) {
    const id = changes.orderId[i]!;
    const meta = state.orders.get(id);
    const order = book.order(id);
    if (meta === undefined || order === undefined) continue;
    writeOrderLeaf(writer.reset().u8(LEAF.order), order, meta, inAuction);
    meta.leaf = digest.swapSlotHashing(meta.leaf, writer.backing(), writer.length);
  }
  changes.clear();
}

/** The market's book, then the books of its auction orders (empty in continuous trading). */
export function booksOf(market: MarketState): OrderBook[] {
  const a = market.auction;
  return a === null ? [market.book] : [market.book, a.bids, a.asks];
}

/** The epoch updateDigest is closing, for writePrincipalLeafMemo. */
let memoEpoch = 0;

/**
 * writePrincipalLeaf, byte for byte, with the subaccounts' bytes taken from
 * the address's memo when no markAccount came since the memo was taken
 * (markAccount sets accountsEpoch, so a memo of epoch E is current while
 * accountsEpoch <= E); otherwise written and remembered. digestFromScratch
 * never uses memos, so the hash tests would catch a mutation that skipped
 * markAccount.
 */
function writePrincipalLeafMemo(
  w: Writer,
  p: Principal,
  withListed: boolean,
  memos: MemoSlabs,
): void {
  writePrincipal(w, p);
  let c = p.accountsMemoClass;
  if (c >= 0 && p.accountsMemoEpoch >= p.accountsEpoch) {
    const slab = memos.slabs[c]!;
    w.rawRange(slab, p.accountsMemoSlot * MemoSlabs.slotBytes(c), p.accountsMemoLength);
    return;
  }
  const start = w.length;
  writeSubaccounts(w, p, withListed);
  const length = w.length - start;
  // A slot keeps room to grow (balances and sizes change the length of their
  // varints from block to block): the memo moves only when it outgrows it.
  if (c < 0 || MemoSlabs.slotBytes(c) < length) {
    if (c >= 0) memos.release(c, p.accountsMemoSlot);
    c = MemoSlabs.classOf(length);
    p.accountsMemoClass = c;
    p.accountsMemoSlot = memos.alloc(c);
  }
  const slab = memos.slabs[c]!;
  const at = p.accountsMemoSlot * MemoSlabs.slotBytes(c);
  const bytes = w.backing();
  for (let i = 0; i < length; i++) slab[at + i] = bytes[start + i]!;
  p.accountsMemoLength = length;
  p.accountsMemoEpoch = memoEpoch;
}

/** Brings the digest up to date with everything marked since the last call. */
export function updateDigest(state: ExchangeState, digest: Digest, genesisHash: Uint8Array): void {
  for (const leaf of state.goneLeaves) digest.sub(leaf);
  state.goneLeaves.length = 0;
  const goneSlots = state.goneLeafSlots;
  for (let i = 0; i < goneSlots.length; i++) digest.releaseSlot(goneSlots[i]!);
  goneSlots.length = 0;

  for (const market of state.markets) {
    if (market.retired) continue;
    updateOrderLeaves(state, digest, market.book, false);
    // An order that moved between books is looked up in each: only the one holding it hashes it.
    const auction = market.auction;
    if (auction !== null) {
      updateOrderLeaves(state, digest, auction.bids, true);
      updateOrderLeaves(state, digest, auction.asks, true);
    }
    if (market.dirty) {
      const leaf = leafOf(LEAF.market, (w) => writeMarketState(w, market, state.timeMs));
      swap(digest, market.leaf, leaf);
      market.leaf = leaf;
      market.dirty = false;
    }
  }
  state.dirtyAccounts.length = 0;
  memoEpoch = state.epoch;
  const withListed = state.listing !== null;
  const principals = state.dirtyPrincipals;
  // Latest first: the addresses the block touched last are the likeliest still
  // in cache, and reading the oldest first would evict them (the sum does not
  // depend on the order).
  for (let i = principals.length - 1; i >= 0; i--) {
    const p = principals[i]!;
    writePrincipalLeafMemo(writer.reset().u8(LEAF.principal), p, withListed, digest.memos);
    p.leaf = digest.swapSlotHashing(p.leaf, writer.backing(), writer.length);
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
    digest.add(leafOf(LEAF.market, (w) => writeMarketState(w, market, state.timeMs)));
    for (const book of booksOf(market)) {
      const inAuction = book !== market.book;
      for (const side of ['buy', 'sell'] as const) {
        for (const order of book.ordersOf(side)) {
          const meta = state.orders.get(order.orderId);
          assert(meta !== undefined, `resting order ${order.orderId} has no record`);
          digest.add(leafOf(LEAF.order, (w) => writeOrderLeaf(w, order, meta, inAuction)));
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
      const inAuction = book !== market.book;
      for (const side of ['buy', 'sell'] as const) {
        for (const order of book.ordersOf(side)) {
          const meta = state.orders.get(order.orderId)!;
          writeOrderLeaf(writer.reset().u8(LEAF.order), order, meta, inAuction);
          meta.leaf = digest.swapSlotHashing(null, writer.backing(), writer.length);
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
