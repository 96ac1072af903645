// The mempool: transactions waiting for a block. Admission runs the stateless
// checks first (size, canonical decoding, chain, fields), drops duplicates by
// hash, then checks signatures in the crypto VerifyPool in batches (one batch
// per turn of the event loop, whatever arrived meanwhile), and finally applies
// the limits: per account, per gossiping peer, then in total (a peer's gossip
// is held to them before its check too, counting what still waits for one,
// and at most pendingChecksMax wait at once, batches being checked included,
// a quarter of them for one peer's gossip, three quarters for all peers'). A full pool
// refuses a peer's gossip (it never pushes out what is held); a client's
// transaction evicts to make room: first the oldest of the peer whose gossip
// holds the most bytes, then, with no gossip left, the oldest of all. Proposals reap in arrival order (the exchange orders
// within the block by its own rule), at most a nonce window's worth of one account. After a commit the committed
// transactions leave at once; the re-check of the rest against the new state
// runs later, off the commit path. Every transaction that leaves without
// being committed (evicted, or refused by the re-check) is told to onDropped
// with why, so that whoever waits for it hears at once.

import type { VerifyItem } from '../../crypto/index.ts';
import type { CheckedTx, SignedTx } from '../../exchange/tx/index.ts';
import { TxError, checkTxWithoutSignature, txSignedBytes } from '../../exchange/tx/index.ts';
import { bytesEqual, toHex } from '../../lib/bytes.ts';
import { ZommaError } from '../../lib/errors.ts';
import {
  BLOCK_TXS_PER_ACCOUNT_PROPOSED_MAX,
  MEMPOOL_BYTES_MAX,
  MEMPOOL_BYTES_PER_PEER_MAX,
  MEMPOOL_COMMITTED_HASHES_MAX,
  MEMPOOL_PENDING_CHECKS_MAX,
  MEMPOOL_TXS_MAX,
  MEMPOOL_TXS_PER_ACCOUNT_MAX,
  MEMPOOL_TXS_PER_PEER_MAX,
  NONCE_FUTURE_MS_MAX,
} from '../../lib/limits.ts';
import type { SignatureCache } from './sigcache.ts';

export type MempoolErrorCode =
  /** Already in the mempool or recently committed. */
  | 'DuplicateTx'
  /** The account already has MEMPOOL_TXS_PER_ACCOUNT_MAX transactions waiting. */
  | 'MempoolAccountFull'
  /** The gossiping peer's transactions already take its share (MEMPOOL_TXS_PER_PEER_MAX, MEMPOOL_BYTES_PER_PEER_MAX). */
  | 'MempoolPeerFull'
  /** The pool is full, and a peer's gossip does not evict. */
  | 'MempoolFull'
  /** Too many transactions wait for their signature check. */
  | 'MempoolBusy'
  /** No longer valid against the committed state: the exchange's code for it. */
  | 'Expired'
  | 'StaleNonce'
  | 'DuplicateNonce'
  | 'NotPermitted'
  /** At admission only: its nonce is NONCE_FUTURE_MS_MAX or more ahead of the last block's time. */
  | 'FutureNonce'
  /** Dropped after admission to make room for a client's transaction (onDropped). */
  | 'Evicted';

export class MempoolError extends ZommaError<MempoolErrorCode> {}

/** Trailing bytes of a transaction that index it by content: its signature's last six. */
const TAIL_KEY_BYTES = 6;

/** What a client is told of a transaction the committed state refuses, by its code. */
const STALE_MESSAGES: Readonly<Record<string, string>> = {
  Expired: 'the transaction expired before the last block',
  StaleNonce: "its nonce is too old for the signer's window",
  FutureNonce: `its nonce is ${NONCE_FUTURE_MS_MAX} ms (NONCE_FUTURE_MS_MAX) or more ahead of the last block's time: a nonce is the signing time in ms since the epoch; the signer's clock is probably ahead`,
  DuplicateNonce: 'its nonce was used by a transaction already committed',
  NotPermitted:
    'the signer is neither the account nor an agent of it active at the last block this node executed (an agent signs once the block registering it is executed)',
};

const EVICTED_MESSAGE =
  "this node dropped it from its mempool to make room; it may still commit from another validator's mempool, or be submitted again";

/**
 * The last TAIL_KEY_BYTES bytes as an integer (below 2^48, exact): a
 * transaction ends with its Ed25519 signature, so transactions rarely share
 * one, and a lookup confirms the whole bytes anyway.
 */
function tailKey(bytes: Uint8Array): number {
  let key = 0;
  for (let i = Math.max(0, bytes.length - TAIL_KEY_BYTES); i < bytes.length; i++) {
    key = key * 256 + bytes[i]!;
  }
  return key;
}

export interface MempoolEntry {
  readonly hash: string;
  readonly bytes: Uint8Array;
  readonly tx: SignedTx;
  /** Account address (hex): the unit of the per-account limit. */
  readonly account: string;
  /** The peer that gossiped it; null for a client's. */
  readonly from: string | null;
  /** Arrival order. */
  readonly seq: number;
}

/**
 * Why an admitted transaction left the pool without being committed:
 * Evicted for room (this node's decision alone: a peer that holds it may
 * still propose it), or refused by the committed state (the exchange's code,
 * which every later block would give it too).
 */
export type DropCode = 'Evicted' | StaleCode;

/** Why the committed state refuses a waiting transaction: the exchange's code for it. */
export type StaleCode = 'Expired' | 'StaleNonce' | 'DuplicateNonce' | 'NotPermitted';

/**
 * Why the committed state refuses a transaction at admission: a StaleCode, or
 * FutureNonce, which the re-check never drops for (block times only rise, so
 * a nonce admitted below the bound stays below it).
 */
export type AdmissionCode = StaleCode | 'FutureNonce';

export interface Dropped {
  readonly hash: string;
  readonly code: DropCode;
  readonly message: string;
}

export type AddResult =
  | { readonly ok: true; readonly hash: string }
  | {
      readonly ok: false;
      readonly hash: string | null;
      readonly code: string;
      readonly message: string;
    };

export interface MempoolLimits {
  readonly txsMax: number;
  readonly bytesMax: number;
  readonly perAccountMax: number;
  readonly perPeerTxsMax: number;
  readonly perPeerBytesMax: number;
  /** Transactions waiting for their signature check at once, batches being checked included. */
  readonly pendingChecksMax: number;
}

export interface MempoolOptions {
  readonly chainId: string;
  readonly verifyBatch: (items: readonly VerifyItem[]) => Promise<boolean[]>;
  readonly signatures: SignatureCache;
  readonly limits?: Partial<MempoolLimits>;
  /** Called with the transactions admitted in one batch from one source (for gossip), once per source. */
  readonly onAdmitted?: (entries: readonly MempoolEntry[], from: string | null) => void;
  /**
   * Why the committed state already refuses a transaction (nonce used or too
   * old, expired), as the exchange's code, or null: one it refuses is not
   * admitted, with that code, so a client hears at once instead of after a block.
   */
  readonly staleCodeOf?: (tx: SignedTx) => string | null;
  /**
   * What such a refusal (at admission or by the re-check) tells the client
   * when it has more to say than the code's fixed words (a nonce's bound and
   * the block time it was judged at), else undefined.
   */
  readonly staleMessageOf?: (tx: SignedTx, code: string) => string | undefined;
  /** Called for each admitted transaction that leaves without being committed, as it leaves. */
  readonly onDropped?: (dropped: Dropped) => void;
}

export interface MempoolStats {
  admitted: number;
  evicted: number;
  rejected: Record<string, number>;
  rechecked: number;
}

interface Pending {
  readonly checked: CheckedTx;
  readonly hash: string;
  readonly from: string | null;
  readonly resolve: (result: AddResult) => void;
}

export class Mempool {
  private readonly entries = new Map<string, MempoolEntry>();
  /** Entries by tailKey of their bytes (the first held of any that share one). */
  private readonly byTail = new Map<number, MempoolEntry>();
  private readonly perAccount = new Map<string, number>();
  /**
   * Each account's entries in arrival order (for reap), the accounts in the
   * order their queue was made (one whose queue empties is made again at its
   * next entry): each queue's `since` is at or below its first entry's seq.
   */
  private readonly queues = new Map<string, AccountQueue>();
  /** What each peer's gossip holds: its share's bound, and its hashes in arrival order (for eviction). */
  private readonly perPeer = new Map<string, { bytes: number; readonly hashes: Set<string> }>();
  private readonly committed = new Set<string>();
  /**
   * The remembered committed hashes in commit order, as a ring: once full, the
   * next one replaces the oldest (at committedNext). Trimming an array from
   * the front instead moved all MEMPOOL_COMMITTED_HASHES_MAX of them on every
   * block once full.
   */
  private readonly committedRing: string[] = [];
  private committedNext = 0;
  /** Every transaction waiting for its signature check: queued, or in a batch being checked. */
  private readonly pendingHashes = new Set<string>();
  /**
   * What each peer's gossip waiting for its check would add to its share, and
   * all peers' together to the pool: counted before a check, so that a burst
   * of gossip is refused beyond what could still be admitted instead of
   * costing a check each and being refused after it.
   */
  private readonly pendingPerPeer = new Map<string, { txs: number; bytes: number }>();
  private readonly pendingGossip = { txs: 0, bytes: 0 };
  private pending: Pending[] = [];
  private flushScheduled = false;
  private seq = 0;
  /** regossipDue: entries below this seq were held at its previous call; the last seq it returned. */
  private regossipBefore = 0;
  private regossipCursor = -1;
  private bytesTotal = 0;
  private readonly limits: MempoolLimits;
  readonly stats: MempoolStats = { admitted: 0, evicted: 0, rejected: {}, rechecked: 0 };

  constructor(private readonly options: MempoolOptions) {
    this.limits = {
      txsMax: options.limits?.txsMax ?? MEMPOOL_TXS_MAX,
      bytesMax: options.limits?.bytesMax ?? MEMPOOL_BYTES_MAX,
      perAccountMax: options.limits?.perAccountMax ?? MEMPOOL_TXS_PER_ACCOUNT_MAX,
      perPeerTxsMax: options.limits?.perPeerTxsMax ?? MEMPOOL_TXS_PER_PEER_MAX,
      perPeerBytesMax: options.limits?.perPeerBytesMax ?? MEMPOOL_BYTES_PER_PEER_MAX,
      pendingChecksMax: options.limits?.pendingChecksMax ?? MEMPOOL_PENDING_CHECKS_MAX,
    };
  }

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.bytesTotal;
  }

  has(hash: string): boolean {
    return this.entries.has(hash);
  }

  /**
   * The entry holding exactly these bytes, if held: a proposal's transactions
   * arrive as bytes of their own, and those this pool holds were decoded,
   * hashed and signature-checked at admission. Without a hash to look up by,
   * found by the bytes' tail and confirmed on all of them; one sharing its
   * tail with another held entry is not found (the caller checks it itself).
   */
  lookup(bytes: Uint8Array): MempoolEntry | undefined {
    const entry = this.byTail.get(tailKey(bytes));
    return entry !== undefined && bytesEqual(entry.bytes, bytes) ? entry : undefined;
  }

  /**
   * Clients' transactions to gossip again: those already held at the previous
   * call, at most `max`, in arrival order from where the previous call stopped
   * (then around from the oldest). Entries are kept in arrival order.
   */
  regossipDue(max: number): MempoolEntry[] {
    const before = this.regossipBefore;
    this.regossipBefore = this.seq;
    const cursor = this.regossipCursor;
    const out: MempoolEntry[] = [];
    for (const e of this.entries.values()) {
      if (e.seq >= before || out.length >= max) break;
      if (e.from === null && e.seq > cursor) out.push(e);
    }
    for (const e of this.entries.values()) {
      if (e.seq > cursor || e.seq >= before || out.length >= max) break;
      if (e.from === null) out.push(e);
    }
    if (out.length > 0) this.regossipCursor = out[out.length - 1]!.seq;
    return out;
  }

  /** Admits one transaction (from a client: `from` null; from a peer: its id). Never throws. */
  add(bytes: Uint8Array, from: string | null = null): Promise<AddResult> {
    let checked: CheckedTx;
    try {
      checked = checkTxWithoutSignature(bytes, this.options.chainId);
    } catch (error) {
      if (error instanceof TxError)
        return Promise.resolve(this.reject(null, error.code, error.message));
      throw error;
    }
    const hash = toHex(checked.hash);
    if (this.entries.has(hash) || this.committed.has(hash) || this.pendingHashes.has(hash)) {
      return Promise.resolve(
        this.reject(hash, 'DuplicateTx', 'already in the mempool or committed'),
      );
    }
    // Checked again at admission; refused here, a peer's gossip past its share
    // or into a full pool costs no signature check.
    const refused = from === null ? null : this.peerRefusal(hash, from, checked.bytes.length, true);
    if (refused !== null) return Promise.resolve(refused);
    // Its signature already checked (a proposal held it, or it was here
    // before its eviction): it needs no place among those waiting for a check.
    if (this.options.signatures.has(hash))
      return Promise.resolve(this.admit([{ checked, hash, from }])[0]!);
    // pendingHashes, not `pending`: the batches already being checked wait too.
    if (this.pendingHashes.size >= this.limits.pendingChecksMax || this.gossipBusy(from)) {
      return Promise.resolve(
        this.reject(hash, 'MempoolBusy', 'too many transactions being checked'),
      );
    }
    this.pendingHashes.add(hash);
    if (from !== null) this.countPending(from, checked.bytes.length, 1);
    return new Promise((resolve) => {
      this.pending.push({ checked, hash, from, resolve });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  /** Checks the signatures of everything that arrived since the last flush, in one batch. */
  private async flush(): Promise<void> {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    // A proposal holding one of these may have been checked since it arrived
    // (the application caches its verdicts here too): not checked twice.
    const cache = this.options.signatures;
    const items: VerifyItem[] = [];
    // Per pending: its item's index, or -1 when the cache already holds its verdict.
    const slots = batch.map((p) => {
      if (cache.has(p.hash)) return -1;
      const s = txSignedBytes(p.checked.tx, p.checked.bytes);
      return (
        items.push({ publicKey: s.publicKey, message: s.signedBytes, signature: s.signature }) - 1
      );
    });
    let verdicts: boolean[];
    try {
      const checked = items.length === 0 ? [] : await this.options.verifyBatch(items);
      verdicts = slots.map((k) => k < 0 || checked[k] === true);
    } catch (error) {
      for (const p of batch) {
        this.settle(p);
        p.resolve(
          this.reject(p.hash, 'MempoolBusy', `signature check unavailable: ${String(error)}`),
        );
      }
      return;
    }
    const good: Pending[] = [];
    batch.forEach((p, i) => {
      this.settle(p);
      if (verdicts[i] === true) {
        this.options.signatures.add(p.hash);
        good.push(p);
      } else {
        // Named as checkTxSignature names it (`field: message`): the API answers its field.
        p.resolve(
          this.reject(p.hash, 'BadSignature', 'tx.signature: the signature does not verify'),
        );
      }
    });
    const results = this.admit(
      good.map((p) => ({ checked: p.checked, hash: p.hash, from: p.from })),
    );
    good.forEach((p, i) => p.resolve(results[i]!));
  }

  /**
   * Whether a peer's gossip finds its places for checks taken: one peer's may
   * hold a quarter of them, all peers' three quarters. A peer's share of the
   * pool bounds what it holds, not what it sends: gossip with bad signatures
   * frees its places as soon as it is checked, so one peer sending it without
   * pause otherwise held every place, and clients' transactions (and the other
   * peers') were refused MempoolBusy.
   */
  private gossipBusy(from: string | null): boolean {
    if (from === null) return false;
    const quarter = Math.max(1, Math.floor(this.limits.pendingChecksMax / 4));
    return (
      (this.pendingPerPeer.get(from)?.txs ?? 0) >= quarter ||
      this.pendingGossip.txs >= this.limits.pendingChecksMax - quarter
    );
  }

  /** A pending transaction's check is over: it no longer waits, nor counts against its peer. */
  private settle(p: Pending): void {
    this.pendingHashes.delete(p.hash);
    if (p.from !== null) this.countPending(p.from, p.checked.bytes.length, -1);
  }

  private countPending(from: string, bytes: number, sign: 1 | -1): void {
    this.pendingGossip.txs += sign;
    this.pendingGossip.bytes += sign * bytes;
    const share = this.pendingPerPeer.get(from) ?? { txs: 0, bytes: 0 };
    share.txs += sign;
    share.bytes += sign * bytes;
    if (share.txs === 0) this.pendingPerPeer.delete(from);
    else this.pendingPerPeer.set(from, share);
  }

  private admit(
    list: readonly { checked: CheckedTx; hash: string; from: string | null }[],
  ): AddResult[] {
    // By source: one batch may hold a client's transactions (gossiped) and a peer's (not).
    const admitted = new Map<string | null, MempoolEntry[]>();
    const results = list.map(({ checked, hash, from }) => {
      if (this.entries.has(hash) || this.committed.has(hash)) {
        return this.reject(hash, 'DuplicateTx', 'already in the mempool or committed');
      }
      const stale = this.options.staleCodeOf?.(checked.tx) ?? null;
      if (stale !== null) return this.reject(hash, stale, this.staleMessage(checked.tx, stale));
      const account = toHex(checked.tx.account);
      const count = this.perAccount.get(account) ?? 0;
      if (count >= this.limits.perAccountMax) {
        return this.reject(
          hash,
          'MempoolAccountFull',
          'too many pending transactions for this account',
        );
      }
      const size = checked.bytes.length;
      if (from !== null) {
        const refused = this.peerRefusal(hash, from, size);
        if (refused !== null) return refused;
      }
      while (this.entries.size > 0 && this.isFull(size)) this.evict();
      const entry: MempoolEntry = {
        hash,
        bytes: checked.bytes,
        tx: checked.tx,
        account,
        from,
        seq: this.seq++,
      };
      this.insert(entry);
      const group = admitted.get(from);
      if (group === undefined) admitted.set(from, [entry]);
      else group.push(entry);
      this.stats.admitted++;
      return { ok: true, hash } as const;
    });
    for (const [from, entries] of admitted) this.options.onAdmitted?.(entries, from);
    return results;
  }

  /** What a client is told of a transaction the committed state refuses with `code`. */
  private staleMessage(tx: SignedTx, code: string): string {
    return this.options.staleMessageOf?.(tx, code) ?? STALE_MESSAGES[code] ?? code;
  }

  /**
   * Why a peer's gossip of `size` bytes is refused now (its share, or a full
   * pool), or null. Before its check (`withPending`), gossip still waiting for
   * its own check counts as held.
   */
  private peerRefusal(
    hash: string,
    from: string,
    size: number,
    withPending = false,
  ): AddResult | null {
    const share = this.perPeer.get(from);
    const waiting = withPending ? this.pendingPerPeer.get(from) : undefined;
    const txs = (share?.hashes.size ?? 0) + (waiting?.txs ?? 0);
    const bytes = (share?.bytes ?? 0) + (waiting?.bytes ?? 0);
    if (txs >= this.limits.perPeerTxsMax || bytes + size > this.limits.perPeerBytesMax) {
      return this.reject(hash, 'MempoolPeerFull', "the peer's gossip holds its share");
    }
    const more = withPending ? this.pendingGossip : { txs: 0, bytes: 0 };
    if (this.isFull(size, more.txs, more.bytes)) {
      return this.reject(hash, 'MempoolFull', 'the mempool is full');
    }
    return null;
  }

  private isFull(bytes: number, moreTxs = 0, moreBytes = 0): boolean {
    return (
      this.entries.size + moreTxs >= this.limits.txsMax ||
      this.bytesTotal + moreBytes + bytes > this.limits.bytesMax
    );
  }

  private insert(entry: MempoolEntry): void {
    this.entries.set(entry.hash, entry);
    const key = tailKey(entry.bytes);
    if (!this.byTail.has(key)) this.byTail.set(key, entry);
    this.bytesTotal += entry.bytes.length;
    this.perAccount.set(entry.account, (this.perAccount.get(entry.account) ?? 0) + 1);
    let queue = this.queues.get(entry.account);
    if (queue === undefined) {
      queue = new AccountQueue(entry.seq);
      this.queues.set(entry.account, queue);
    }
    queue.add(entry);
    if (entry.from !== null) {
      let share = this.perPeer.get(entry.from);
      if (share === undefined) {
        share = { bytes: 0, hashes: new Set() };
        this.perPeer.set(entry.from, share);
      }
      share.bytes += entry.bytes.length;
      share.hashes.add(entry.hash);
    }
  }

  private remove(hash: string): void {
    const entry = this.entries.get(hash);
    if (entry === undefined) return;
    this.entries.delete(hash);
    const key = tailKey(entry.bytes);
    if (this.byTail.get(key) === entry) this.byTail.delete(key);
    this.bytesTotal -= entry.bytes.length;
    const count = (this.perAccount.get(entry.account) ?? 1) - 1;
    if (count === 0) this.perAccount.delete(entry.account);
    else this.perAccount.set(entry.account, count);
    const queue = this.queues.get(entry.account)!;
    queue.delete(entry);
    if (queue.entries.size === 0) this.queues.delete(entry.account);
    if (entry.from === null) return;
    const share = this.perPeer.get(entry.from)!;
    share.bytes -= entry.bytes.length;
    share.hashes.delete(hash);
    if (share.hashes.size === 0) this.perPeer.delete(entry.from);
  }

  /**
   * Makes room for a client's transaction. Gossip goes first, from the peer
   * holding the most bytes (a flooding peer loses its own), since its origin
   * holds it too; then the oldest of all: it has had the most chances to be included.
   */
  private evict(): void {
    let largest: { bytes: number; readonly hashes: Set<string> } | null = null;
    for (const share of this.perPeer.values()) {
      if (largest === null || share.bytes > largest.bytes) largest = share;
    }
    const first = largest !== null ? largest.hashes.values().next() : this.entries.keys().next();
    if (first.done === true) return;
    this.remove(first.value);
    this.stats.evicted++;
    this.options.onDropped?.({ hash: first.value, code: 'Evicted', message: EVICTED_MESSAGE });
  }

  private reject(hash: string | null, code: string, message: string): AddResult {
    this.stats.rejected[code] = (this.stats.rejected[code] ?? 0) + 1;
    return { ok: false, hash, code, message };
  }

  /**
   * Transactions for a proposal, in arrival order, within the given bounds,
   * and at most `perAccountMax` of one account: its later ones wait for the
   * next block (BLOCK_TXS_PER_ACCOUNT_PROPOSED_MAX says why). Taken as a
   * walk through the pool in arrival order takes them: it stops at the first
   * transaction that does not fit the bytes left (an account's later ones
   * included), or once `txsMax` are taken.
   *
   * The walk itself is the quickest while it takes most of what it visits.
   * Once it has passed over more transactions than it took (accounts past
   * their share, as when one floods the pool), the accounts' queues are
   * merged instead (mergedReap), which passes over none of them one by one:
   * either way the work is within a small multiple of the transactions taken
   * and the accounts met, not of the pool.
   */
  reap(
    txsMax: number,
    bytesMax: number,
    perAccountMax = BLOCK_TXS_PER_ACCOUNT_PROPOSED_MAX,
  ): Uint8Array[] {
    const out: Uint8Array[] = [];
    const taken = new Map<string, number>();
    let bytes = 0;
    let skipped = 0;
    for (const entry of this.entries.values()) {
      if (out.length >= txsMax) break;
      if (bytes + entry.bytes.length > bytesMax) break;
      const n = taken.get(entry.account) ?? 0;
      if (n >= perAccountMax) {
        if (++skipped > out.length) return this.mergedReap(txsMax, bytesMax, perAccountMax);
        continue;
      }
      taken.set(entry.account, n + 1);
      bytes += entry.bytes.length;
      out.push(entry.bytes);
    }
    return out;
  }

  /**
   * What reap takes, from the accounts' queues merged by arrival (a heap of
   * the accounts met, each at its next transaction): an account that reaches
   * `perAccountMax` leaves the merge, and its later transactions are not
   * visited. Whether one of those would have stopped the walk (too large for
   * the bytes left where it lies) is decided afterwards (firstStop), looking
   * only at an account holding one larger than the bytes left at the end.
   */
  private mergedReap(txsMax: number, bytesMax: number, perAccountMax: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    // The seq of each transaction taken, and the bytes taken before it.
    const seqs: number[] = [];
    const before: number[] = [];
    const capped: Cursor[] = [];
    const heads = new CursorHeap();
    if (perAccountMax <= 0) return out;
    const accounts = this.queues.values();
    let unmet = accounts.next();
    let bytes = 0;
    for (;;) {
      // An account not met yet has no transaction before its queue's `since`.
      while (
        unmet.done !== true &&
        (heads.size === 0 || unmet.value.since < heads.top().entry.seq)
      ) {
        const queue = unmet.value;
        const entries = queue.entries.values();
        heads.push({ queue, entries, entry: entries.next().value!, taken: 0 });
        unmet = accounts.next();
      }
      if (heads.size === 0) break;
      const cursor = heads.top();
      const entry = cursor.entry;
      if (out.length >= txsMax) break;
      if (bytes + entry.bytes.length > bytesMax) break;
      seqs.push(entry.seq);
      before.push(bytes);
      bytes += entry.bytes.length;
      out.push(entry.bytes);
      cursor.taken++;
      const next = cursor.taken < perAccountMax ? cursor.entries.next() : null;
      if (next === null) capped.push(cursor);
      if (next === null || next.done === true) heads.pop();
      else {
        cursor.entry = next.value;
        heads.siftDown();
      }
    }
    const stop = firstStop(capped, seqs, before, bytesMax - bytes, bytesMax);
    if (stop < seqs.length) out.length = stop;
    return out;
  }

  /** Committed transactions leave the pool and are remembered, so a replay of them is refused. */
  removeCommitted(hashes: readonly string[]): void {
    for (const hash of hashes) {
      this.remove(hash);
      if (this.committed.has(hash)) continue;
      this.committed.add(hash);
      if (this.committedRing.length < MEMPOOL_COMMITTED_HASHES_MAX) {
        this.committedRing.push(hash);
        continue;
      }
      this.committed.delete(this.committedRing[this.committedNext]!);
      this.committedRing[this.committedNext] = hash;
      this.committedNext = (this.committedNext + 1) % MEMPOOL_COMMITTED_HASHES_MAX;
    }
  }

  /**
   * Drops the transactions the new committed state refuses (`refusalOf`: the
   * exchange's code for why, or null), telling onDropped of each. Called
   * after a commit, outside the loop's turn; yields to the event loop between
   * slices so a large pool never stalls consensus.
   */
  async recheck(
    refusalOf: (tx: SignedTx) => AdmissionCode | null,
    sliceTxs = 1_000,
  ): Promise<number> {
    let dropped = 0;
    let inSlice = 0;
    for (const entry of [...this.entries.values()]) {
      if (!this.entries.has(entry.hash)) continue;
      const code = refusalOf(entry.tx);
      // A nonce ahead of block time only comes closer as blocks pass: no drop.
      if (code !== null && code !== 'FutureNonce') {
        this.remove(entry.hash);
        dropped++;
        this.options.onDropped?.({
          hash: entry.hash,
          code,
          message: this.staleMessage(entry.tx, code),
        });
      }
      this.stats.rechecked++;
      if (++inSlice >= sliceTxs) {
        inSlice = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    return dropped;
  }
}

/** One account's entries in arrival order. */
class AccountQueue {
  readonly entries = new Map<string, MempoolEntry>();
  /** At least the largest entry's bytes (exact again once recounted). */
  private bytesMaxBound = 0;
  private boundExact = true;

  /** `since`: the seq of the entry the queue was made for, at or below every entry's it holds. */
  constructor(readonly since: number) {}

  add(entry: MempoolEntry): void {
    this.entries.set(entry.hash, entry);
    this.bytesMaxBound = Math.max(this.bytesMaxBound, entry.bytes.length);
  }

  delete(entry: MempoolEntry): void {
    this.entries.delete(entry.hash);
    if (entry.bytes.length === this.bytesMaxBound) this.boundExact = false;
  }

  /**
   * Whether an entry is larger than `bytes`. Against the bound first: only a
   * bound above it makes the queue recount (reaps rarely come that close to
   * their bytes), so a flooding account is not walked at each proposal.
   */
  holdsOver(bytes: number): boolean {
    if (this.bytesMaxBound <= bytes) return false;
    if (!this.boundExact) {
      let largest = 0;
      for (const e of this.entries.values()) largest = Math.max(largest, e.bytes.length);
      this.bytesMaxBound = largest;
      this.boundExact = true;
    }
    return this.bytesMaxBound > bytes;
  }
}

/** Where a reap stands in one account: the next entry not yet taken, and how many were. */
interface Cursor {
  readonly queue: AccountQueue;
  readonly entries: Iterator<MempoolEntry>;
  entry: MempoolEntry;
  taken: number;
}

/**
 * The index of the first transaction taken that a walk through the pool in
 * arrival order would not have reached (seqs.length: all reached). Such a
 * walk stops at an account's skipped transaction (one past perAccountMax)
 * that does not fit the bytes taken before it. A skipped transaction no
 * larger than the bytes left at the end (`bytesLeft`) fits wherever it lies,
 * so only an account holding a larger one has its skipped transactions
 * looked at (a reap within TX_BYTES_MAX of its bytes), and only those before
 * the last one taken: at most MEMPOOL_TXS_PER_ACCOUNT_MAX for each account
 * that had perAccountMax taken.
 */
function firstStop(
  capped: readonly Cursor[],
  seqs: readonly number[],
  before: readonly number[],
  bytesLeft: number,
  bytesMax: number,
): number {
  let stop = seqs.length;
  for (const cursor of capped) {
    if (!cursor.queue.holdsOver(bytesLeft)) continue;
    // The cursor stands after its last entry taken: the rest were skipped.
    for (let next = cursor.entries.next(); next.done !== true; next = cursor.entries.next()) {
      const entry = next.value;
      // The first taken after it (binary search): before[lo] bytes were taken before it.
      let lo = 0;
      let hi = stop;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (seqs[mid]! < entry.seq) lo = mid + 1;
        else hi = mid;
      }
      // Past the last one still taken, it can stop nothing.
      if (lo >= stop) break;
      if (before[lo]! + entry.bytes.length > bytesMax) {
        stop = lo;
        break;
      }
    }
  }
  return stop;
}

/** Cursors by the seq of their next entry, least on top (a binary heap). */
class CursorHeap {
  private readonly items: Cursor[] = [];

  get size(): number {
    return this.items.length;
  }

  top(): Cursor {
    return this.items[0]!;
  }

  push(cursor: Cursor): void {
    const items = this.items;
    let i = items.push(cursor) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent]!.entry.seq <= cursor.entry.seq) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = cursor;
  }

  pop(): void {
    const last = this.items.pop()!;
    if (this.items.length === 0) return;
    this.items[0] = last;
    this.siftDown();
  }

  /** Restores the order after the top's entry moved on (its seq grew). */
  siftDown(): void {
    const items = this.items;
    const cursor = items[0]!;
    const n = items.length;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && items[child + 1]!.entry.seq < items[child]!.entry.seq) child++;
      if (items[child]!.entry.seq >= cursor.entry.seq) break;
      items[i] = items[child]!;
      i = child;
    }
    items[i] = cursor;
  }
}
