import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyRaw } from '../../../src/crypto/index.ts';
import type { VerifyItem } from '../../../src/crypto/index.ts';
import { buildTx, placeOrder } from '../../../src/exchange/tx/index.ts';
import { bytesEqual, toHex } from '../../../src/lib/bytes.ts';
import { Prng } from '../../../src/lib/prng.ts';
import {
  BLOCK_TXS_MAX,
  BLOCK_TXS_PER_ACCOUNT_PROPOSED_MAX,
  BLOCK_TX_BYTES_MAX,
  CLIENT_ORDER_ID_BYTES_MAX,
  MEMPOOL_COMMITTED_HASHES_MAX,
  MEMPOOL_PENDING_CHECKS_MAX,
  MEMPOOL_TXS_PER_ACCOUNT_MAX,
} from '../../../src/lib/limits.ts';
import { Mempool } from '../../../src/node/mempool/mempool.ts';
import type { MempoolEntry } from '../../../src/node/mempool/mempool.ts';
import { SignatureCache } from '../../../src/node/mempool/sigcache.ts';
import { testKey } from '../helpers.ts';

const CHAIN = 'zomma-devnet';
let batches = 0;
async function verifyBatch(items: readonly VerifyItem[]): Promise<boolean[]> {
  batches++;
  return items.map((i) => verifyRaw(i.publicKey, i.message, i.signature));
}

function faucet(keyIndex: number, nonce: number) {
  return buildTx({
    chainId: CHAIN,
    key: testKey(keyIndex),
    nonce,
    action: { kind: 'faucet', amountQuote: 1n },
  });
}

test('admission: stateless checks, one signature batch per turn, dedupe, per-account and total limits', async () => {
  const pool = new Mempool({
    chainId: CHAIN,
    verifyBatch,
    signatures: new SignatureCache(),
    limits: { txsMax: 4, perAccountMax: 2 },
  });
  batches = 0;
  const a = [faucet(1, 1), faucet(1, 2), faucet(1, 3)];
  const results = await Promise.all(a.map((t) => pool.add(t.bytes)));
  assert.equal(batches, 1, 'one batch for what arrived in one turn');
  assert.deepEqual(
    results.map((r) => r.ok),
    [true, true, false],
  );
  assert.equal(!results[2]!.ok && results[2]!.code, 'MempoolAccountFull');
  assert.equal((await pool.add(a[0]!.bytes)).ok, false, 'duplicate');
  const garbage = await pool.add(Uint8Array.of(1, 2, 3));
  assert.equal(!garbage.ok && garbage.code, 'Malformed');
  const wrongChain = buildTx({
    chainId: 'other',
    key: testKey(2),
    nonce: 1,
    action: { kind: 'faucet', amountQuote: 1n },
  });
  const wc = await pool.add(wrongChain.bytes);
  assert.equal(!wc.ok && wc.code, 'WrongChain');

  // Total limit: the oldest is evicted to make room.
  for (const t of [faucet(3, 1), faucet(4, 1), faucet(5, 1)])
    assert.equal((await pool.add(t.bytes)).ok, true);
  assert.equal(pool.size, 4);
  assert.equal(pool.has(Buffer.from(a[0]!.hash).toString('hex')), false, 'oldest evicted');
  assert.equal(pool.stats.evicted, 1);

  // Reap in arrival order; committed ones leave and cannot come back.
  const reaped = pool.reap(10, 1 << 20);
  assert.equal(reaped.length, 4);
  assert.deepEqual(reaped[0], a[1]!.bytes);
  const hashes = [a[1]!, faucet(3, 1)].map((t) => Buffer.from(t.hash).toString('hex'));
  pool.removeCommitted(hashes);
  assert.equal(pool.size, 2);
  const again = await pool.add(a[1]!.bytes);
  assert.equal(!again.ok && again.code, 'DuplicateTx');

  // Re-check drops what the new state refuses.
  const dropped = await pool.recheck((tx) => (tx.nonce === 1 ? 'StaleNonce' : null));
  assert.equal(dropped, 2);
  assert.equal(pool.size, 0);
});

test('a transaction whose proposal was checked while it waited for its batch is not checked again', async () => {
  const signatures = new SignatureCache();
  const checked: number[] = [];
  const pool = new Mempool({
    chainId: CHAIN,
    verifyBatch: async (items) => {
      checked.push(items.length);
      return items.map((i) => verifyRaw(i.publicKey, i.message, i.signature));
    },
    signatures,
  });
  const [a, b] = [faucet(6, 1), faucet(7, 1)];
  const pending = [pool.add(a.bytes), pool.add(b.bytes)];
  // Before the batch runs, a proposal holding `a` arrives and the application checks it.
  signatures.add(Buffer.from(a.hash).toString('hex'));
  const results = await Promise.all(pending);
  assert.deepEqual(checked, [1], 'only b went to the verifier');
  assert.deepEqual(
    results.map((r) => r.ok),
    [true, true],
  );
  assert.equal(pool.size, 2);
});

test("one signature batch holding a peer's and a client's transactions reports each with its own source, so the client's is gossiped", async () => {
  const admitted: { from: string | null; count: number }[] = [];
  const pool = new Mempool({
    chainId: CHAIN,
    verifyBatch,
    signatures: new SignatureCache(),
    onAdmitted: (entries, from) => admitted.push({ from, count: entries.length }),
  });
  const fromPeer = faucet(6, 1);
  const fromClient = [faucet(7, 1), faucet(7, 2)];
  const results = await Promise.all([
    pool.add(fromPeer.bytes, 'peer-a'),
    ...fromClient.map((t) => pool.add(t.bytes)),
  ]);
  assert.ok(results.every((r) => r.ok));
  const sum = (from: string | null) =>
    admitted.filter((a) => a.from === from).reduce((n, a) => n + a.count, 0);
  assert.equal(sum(null), 2, "the client transactions are reported as the client's");
  assert.equal(sum('peer-a'), 1);
});

const hex = (t: { hash: Uint8Array }): string => Buffer.from(t.hash).toString('hex');

test("a peer's gossip past its share, or into a full pool, is refused before its signature is checked", async () => {
  let checked = 0;
  const pool = new Mempool({
    chainId: CHAIN,
    verifyBatch: async (items) => {
      checked += items.length;
      return verifyBatch(items);
    },
    signatures: new SignatureCache(),
    limits: { txsMax: 6, perPeerTxsMax: 3 },
  });
  for (const t of [1, 2, 3].map((n) => faucet(40, n)))
    assert.equal((await pool.add(t.bytes, 'p1')).ok, true);
  assert.equal(checked, 3);
  const over = await Promise.all([4, 5, 6].map((n) => pool.add(faucet(40, n).bytes, 'p1')));
  assert.ok(over.every((r) => !r.ok && r.code === 'MempoolPeerFull'));
  assert.equal(checked, 3, 'no signature checked past the share');
  for (const t of [1, 2, 3].map((n) => faucet(41, n)))
    assert.equal((await pool.add(t.bytes)).ok, true);
  assert.equal(checked, 6);
  const full = await pool.add(faucet(42, 1).bytes, 'p2');
  assert.equal(!full.ok && full.code, 'MempoolFull');
  assert.equal(checked, 6, 'none checked for a full pool');
});

test("a peer's gossip cannot push out what the pool holds: when full its transactions are refused, and its share of the pool is bounded", async () => {
  const pool = new Mempool({
    chainId: CHAIN,
    verifyBatch,
    signatures: new SignatureCache(),
    limits: { txsMax: 8, perPeerTxsMax: 3 },
  });
  const clients = [1, 2, 3, 4, 5].map((k) => faucet(10 + k, 1));
  for (const t of clients) assert.equal((await pool.add(t.bytes)).ok, true);
  // One peer floods: it gets its share and no more.
  const flood = Array.from({ length: 20 }, (_, i) => faucet(30, i + 1));
  const results = await Promise.all(flood.map((t) => pool.add(t.bytes, 'p9')));
  assert.equal(results.filter((r) => r.ok).length, 3);
  assert.ok(results.slice(3).every((r) => !r.ok && r.code === 'MempoolPeerFull'));
  assert.equal(pool.size, 8);
  // The pool is full: another peer's gossip is refused, nothing is evicted.
  const other = await pool.add(faucet(31, 1).bytes, 'p1');
  assert.equal(!other.ok && other.code, 'MempoolFull');
  for (const t of clients) assert.ok(pool.has(hex(t)), 'every client transaction is kept');
  // A client's transaction makes room by evicting gossip first, the largest holder's oldest.
  const late = faucet(20, 1);
  assert.equal((await pool.add(late.bytes)).ok, true);
  assert.equal(pool.has(hex(flood[0]!)), false);
  for (const t of [...clients, late]) assert.ok(pool.has(hex(t)));
  // Room freed by a commit lets the peer in again, within its share.
  pool.removeCommitted([hex(flood[1]!)]);
  assert.equal((await pool.add(faucet(30, 40).bytes, 'p9')).ok, true);
  assert.equal(pool.stats.evicted, 1);
});

test('regossipDue: clients’ transactions held since the previous round, at most max, in turn', async () => {
  const pool = new Mempool({ chainId: CHAIN, verifyBatch, signatures: new SignatureCache() });
  const hex = (t: { hash: Uint8Array }) => Buffer.from(t.hash).toString('hex');
  const clients = [1, 2, 3, 4, 5].map((k) => faucet(30 + k, 1));
  const peer = faucet(40, 1);
  for (const t of clients.slice(0, 3)) assert.equal((await pool.add(t.bytes)).ok, true);
  assert.equal((await pool.add(peer.bytes, 'peer-a')).ok, true);
  // The first round only marks what is held: nothing has waited a whole round yet.
  assert.deepEqual(pool.regossipDue(2), []);
  for (const t of clients.slice(3)) assert.equal((await pool.add(t.bytes)).ok, true);
  // Held since the first round: the three older clients' (never the peer's), two at a time.
  assert.deepEqual(
    pool.regossipDue(2).map((e) => e.hash),
    [hex(clients[0]!), hex(clients[1]!)],
  );
  // The next round goes on from there, then around from the oldest.
  assert.deepEqual(
    pool.regossipDue(2).map((e) => e.hash),
    [hex(clients[2]!), hex(clients[3]!)],
  );
  assert.deepEqual(
    pool.regossipDue(2).map((e) => e.hash),
    [hex(clients[4]!), hex(clients[0]!)],
  );
  // Committed ones leave the rounds.
  pool.removeCommitted(clients.map(hex));
  assert.deepEqual(pool.regossipDue(10), []);
});

test('a transaction the committed state already refuses (nonce used or too old, expired) is not admitted: its code at once', async () => {
  const used = new Set([7]);
  const pool = new Mempool({
    chainId: CHAIN,
    verifyBatch,
    signatures: new SignatureCache(),
    staleCodeOf: (tx) => (used.has(tx.nonce) ? 'DuplicateNonce' : null),
  });
  const stale = await pool.add(faucet(50, 7).bytes);
  assert.deepEqual([stale.ok, !stale.ok && stale.code], [false, 'DuplicateNonce']);
  assert.equal((await pool.add(faucet(50, 8).bytes)).ok, true);
  assert.equal(pool.size, 1);
});

test('a nonce too far ahead is refused at admission with the message the application gives, and never dropped by the re-check', async () => {
  let aheadFrom = 100;
  const pool = new Mempool({
    chainId: CHAIN,
    verifyBatch,
    signatures: new SignatureCache(),
    staleCodeOf: (tx) => (tx.nonce >= aheadFrom ? 'FutureNonce' : null),
    staleMessageOf: (tx, code) => `${code}: nonce ${tx.nonce} is too far ahead`,
  });
  const ahead = await pool.add(faucet(51, 100).bytes);
  assert.deepEqual(
    [ahead.ok, !ahead.ok && ahead.code, !ahead.ok && ahead.message],
    [false, 'FutureNonce', 'FutureNonce: nonce 100 is too far ahead'],
  );
  assert.equal(pool.size, 0);
  assert.equal((await pool.add(faucet(51, 99).bytes)).ok, true);
  // Were the re-check ever to find one ahead, it is no reason to let it go.
  aheadFrom = 0;
  assert.equal(await pool.recheck((tx) => (tx.nonce >= aheadFrom ? 'FutureNonce' : null)), 0);
  assert.equal(pool.size, 1);
});

test('lookup finds a held transaction by a copy of its bytes, never other bytes sharing its tail', async () => {
  const pool = new Mempool({ chainId: CHAIN, verifyBatch, signatures: new SignatureCache() });
  const a = faucet(1, 1);
  const b = faucet(2, 1);
  assert.equal((await pool.add(a.bytes)).ok, true);
  assert.equal((await pool.add(b.bytes)).ok, true);
  const copy = Uint8Array.from(a.bytes);
  const held = pool.lookup(copy);
  assert.ok(held !== undefined);
  assert.equal(held.hash, Buffer.from(a.hash).toString('hex'));
  assert.equal(held.tx.nonce, 1);
  assert.deepEqual(held.tx.account, a.tx.account);
  // Other bytes with the same signature tail (a forged copy, say) are not it.
  const forged = Uint8Array.from(a.bytes);
  forged[0]! ^= 1;
  assert.equal(pool.lookup(forged), undefined);
  assert.equal(pool.lookup(Uint8Array.of(1, 2, 3)), undefined);
  // Committed: gone from the index with the entry.
  pool.removeCommitted([held.hash]);
  assert.equal(pool.lookup(copy), undefined);
  assert.ok(pool.lookup(Uint8Array.from(b.bytes)) !== undefined);
});

test('committed hashes: the newest MEMPOOL_COMMITTED_HASHES_MAX are remembered, the oldest forgotten first, across blocks of any size', async () => {
  const pool = new Mempool({ chainId: CHAIN, verifyBatch, signatures: new SignatureCache() });
  const hex = (t: { hash: Uint8Array }) => Buffer.from(t.hash).toString('hex');
  const max = MEMPOOL_COMMITTED_HASHES_MAX;
  let filler = 0;
  // `count` other committed hashes, in blocks of varied sizes.
  const commitOthers = (count: number) => {
    const sizes = [1, 7, 1000, 333];
    for (let left = count, k = 0; left > 0; k++) {
      const size = Math.min(left, sizes[k % sizes.length]!);
      pool.removeCommitted(Array.from({ length: size }, () => `filler-${filler++}`));
      left -= size;
    }
  };
  const refused = async (t: { bytes: Uint8Array }) => {
    const result = await pool.add(t.bytes);
    return !result.ok && result.code === 'DuplicateTx';
  };
  const first = faucet(1, 1);
  const second = faucet(2, 1);
  pool.removeCommitted([hex(first)]);
  commitOthers(max - 2);
  // A hash committed again is not remembered twice (it would be forgotten early).
  pool.removeCommitted([hex(first), hex(second)]);
  assert.equal(await refused(first), true, 'the pool is full: nothing forgotten yet');
  commitOthers(1);
  assert.equal(await refused(first), false, 'the oldest is the first forgotten');
  assert.equal(await refused(second), true);
  commitOthers(max - 2);
  assert.equal(await refused(second), true, 'still among the newest after a whole turn');
  commitOthers(1);
  assert.equal(await refused(second), false);
});

/** A verifier whose batches wait until `release` is called: batches in flight across turns. */
function gatedVerifier() {
  const gates: (() => void)[] = [];
  const state = {
    checked: 0,
    verifyBatch: async (items: readonly VerifyItem[]): Promise<boolean[]> => {
      state.checked += items.length;
      await new Promise<void>((resolve) => gates.push(resolve));
      return items.map((i) => verifyRaw(i.publicKey, i.message, i.signature));
    },
    release: () => gates.splice(0).forEach((open) => open()),
  };
  return state;
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

test("a peer's burst is held to its share before any check, counting its gossip still being checked", async () => {
  const verifier = gatedVerifier();
  const pool = new Mempool({
    chainId: CHAIN,
    verifyBatch: verifier.verifyBatch,
    signatures: new SignatureCache(),
    limits: { perPeerTxsMax: 3 },
  });
  const first = [1, 2, 3, 4, 5].map((n) => pool.add(faucet(43, n).bytes, 'p1'));
  await turn();
  assert.equal(verifier.checked, 3, 'one turn: only its share is checked');
  // Its first batch is still being checked: the next turn's gossip is past the share too.
  const second = [6, 7].map((n) => pool.add(faucet(43, n).bytes, 'p1'));
  const other = pool.add(faucet(44, 1).bytes, 'p2');
  await turn();
  assert.equal(verifier.checked, 4, "only the other peer's is checked");
  verifier.release();
  await turn();
  verifier.release();
  const results = await Promise.all([...first, ...second, other]);
  assert.deepEqual(
    results.map((r) => (r.ok ? 'ok' : r.code)),
    ['ok', 'ok', 'ok', 'MempoolPeerFull', 'MempoolPeerFull'].concat([
      'MempoolPeerFull',
      'MempoolPeerFull',
      'ok',
    ]),
  );
  assert.equal(pool.size, 4);
  // Checked and admitted, its share frees as its transactions leave.
  pool.removeCommitted([hex(faucet(43, 1))]);
  const again = pool.add(faucet(43, 8).bytes, 'p1');
  await turn();
  verifier.release();
  assert.equal((await again).ok, true);
});

test('gossip into a pool whose free room is taken by gossip being checked is refused before its check', async () => {
  const verifier = gatedVerifier();
  const pool = new Mempool({
    chainId: CHAIN,
    verifyBatch: verifier.verifyBatch,
    signatures: new SignatureCache(),
    limits: { txsMax: 3 },
  });
  const held = pool.add(faucet(45, 1).bytes);
  await turn();
  verifier.release();
  assert.equal((await held).ok, true);
  const gossip = [pool.add(faucet(46, 1).bytes, 'p1'), pool.add(faucet(47, 1).bytes, 'p2')];
  const late = pool.add(faucet(48, 1).bytes, 'p3');
  assert.equal(verifier.checked, 1);
  await turn();
  assert.equal(verifier.checked, 3, 'two fit the two free places; the third is not checked');
  verifier.release();
  const results = await Promise.all([...gossip, late]);
  assert.deepEqual(
    results.map((r) => (r.ok ? 'ok' : r.code)),
    ['ok', 'ok', 'MempoolFull'],
  );
  // A client's transaction still makes room, by evicting gossip.
  const client = pool.add(faucet(49, 1).bytes);
  await turn();
  verifier.release();
  assert.equal((await client).ok, true);
  assert.equal(pool.size, 3);
});

test('the bound on transactions waiting for their signature check counts the batches being checked, and not one whose signature is known', async () => {
  const verifier = gatedVerifier();
  const signatures = new SignatureCache();
  const pool = new Mempool({
    chainId: CHAIN,
    verifyBatch: verifier.verifyBatch,
    signatures,
    limits: { pendingChecksMax: 2 },
  });
  const first = [pool.add(faucet(50, 1).bytes), pool.add(faucet(50, 2).bytes)];
  await turn();
  assert.equal(verifier.checked, 2, 'the first batch is being checked');
  const busy = await pool.add(faucet(50, 3).bytes);
  assert.deepEqual([busy.ok, !busy.ok && busy.code], [false, 'MempoolBusy']);
  // One whose signature is known already (held by a proposal, or here before
  // its eviction) needs no place to wait in: admitted at once.
  const known = faucet(51, 1);
  signatures.add(Buffer.from(known.hash).toString('hex'));
  const cached = await pool.add(known.bytes);
  assert.equal(cached.ok, true, JSON.stringify(cached));
  verifier.release();
  assert.ok(
    (await Promise.all(first)).every((r) => r.ok),
    'the first batch is admitted',
  );
  // Checked, they no longer wait: room for more.
  const next = pool.add(faucet(50, 3).bytes);
  await turn();
  verifier.release();
  assert.equal((await next).ok, true);
  assert.equal(pool.size, 4);
});

test('every admitted transaction that leaves uncommitted is told to onDropped with why: evicted for room, or refused by the re-check', async () => {
  const dropped: { hash: string; code: string; message: string }[] = [];
  const pool = new Mempool({
    chainId: CHAIN,
    verifyBatch,
    signatures: new SignatureCache(),
    limits: { txsMax: 3 },
    onDropped: (d) => dropped.push(d),
  });
  const hex = (t: { hash: Uint8Array }) => Buffer.from(t.hash).toString('hex');
  const gossip = faucet(60, 1);
  const clients = [61, 62, 63, 64].map((k) => faucet(k, 1));
  assert.equal((await pool.add(gossip.bytes, 'peer-a')).ok, true);
  for (const t of clients.slice(0, 2)) assert.equal((await pool.add(t.bytes)).ok, true);
  assert.equal(dropped.length, 0, 'admissions into room drop nothing');
  // Full: a client's transaction pushes out the gossip first, then the oldest client's.
  assert.equal((await pool.add(clients[2]!.bytes)).ok, true);
  assert.equal((await pool.add(clients[3]!.bytes)).ok, true);
  assert.deepEqual(
    dropped.map((d) => [d.hash, d.code]),
    [
      [hex(gossip), 'Evicted'],
      [hex(clients[0]!), 'Evicted'],
    ],
  );
  assert.match(dropped[0]!.message, /may still commit/);
  // Committed ones leave without a word; the re-check drops each with its code.
  dropped.length = 0;
  pool.removeCommitted([hex(clients[1]!)]);
  const account = (t: { tx: { account: Uint8Array } }) => toHex(t.tx.account);
  const codes = new Map<string, 'Expired' | 'DuplicateNonce'>([
    [account(clients[2]!), 'DuplicateNonce'],
    [account(clients[3]!), 'Expired'],
  ]);
  assert.equal(await pool.recheck((tx) => codes.get(account({ tx })) ?? null), 2);
  assert.deepEqual(
    dropped.map((d) => [d.hash, d.code, d.message]),
    [
      [hex(clients[2]!), 'DuplicateNonce', 'its nonce was used by a transaction already committed'],
      [hex(clients[3]!), 'Expired', 'the transaction expired before the last block'],
    ],
  );
  assert.equal(pool.size, 0);
});

test("a peer flooding bad signatures holds at most a quarter of the places for checks: a client's transaction and another peer's are still checked", async () => {
  const flooder = testKey(70);
  const gates: (() => void)[] = [];
  const pool = new Mempool({
    chainId: CHAIN,
    // The flood's signatures are all bad: answered without the Ed25519 work.
    verifyBatch: async (items) => {
      await new Promise<void>((resolve) => gates.push(resolve));
      return items.map(
        (i) =>
          !bytesEqual(i.publicKey, flooder.publicKey) &&
          verifyRaw(i.publicKey, i.message, i.signature),
      );
    },
    signatures: new SignatureCache(),
  });
  // MEMPOOL_PENDING_CHECKS_MAX transactions with bad signatures, each its own bytes.
  const base = faucet(70, 1).bytes;
  const flood = Array.from({ length: MEMPOOL_PENDING_CHECKS_MAX }, (_, i) => {
    const bytes = Uint8Array.from(base);
    bytes[bytes.length - 40] = i & 0xff;
    bytes[bytes.length - 41] = i >> 8;
    return pool.add(bytes, 'p-flood');
  });
  const client = pool.add(faucet(71, 1).bytes);
  const other = pool.add(faucet(72, 1).bytes, 'p-honest');
  while (gates.length === 0) await turn();
  gates.splice(0).forEach((open) => open());
  const answers = await Promise.all(flood);
  assert.equal((await client).ok, true, "the client's transaction is checked and admitted");
  assert.equal((await other).ok, true, "the other peer's too");
  const codes = new Map<string, number>();
  for (const r of answers)
    codes.set(r.ok ? 'ok' : r.code, (codes.get(r.ok ? 'ok' : r.code) ?? 0) + 1);
  assert.deepEqual(
    codes,
    new Map([
      ['BadSignature', MEMPOOL_PENDING_CHECKS_MAX / 4],
      ['MempoolBusy', (MEMPOOL_PENDING_CHECKS_MAX * 3) / 4],
    ]),
  );
});

/** The reap a walk through the pool in arrival order makes (as reap did before its accounts' queues). */
function walkReap(
  held: readonly MempoolEntry[],
  txsMax: number,
  bytesMax: number,
  perAccountMax: number,
): Uint8Array[] {
  const out: Uint8Array[] = [];
  const taken = new Map<string, number>();
  let bytes = 0;
  for (const entry of held) {
    if (out.length >= txsMax) break;
    if (bytes + entry.bytes.length > bytesMax) break;
    const n = taken.get(entry.account) ?? 0;
    if (n >= perAccountMax) continue;
    taken.set(entry.account, n + 1);
    bytes += entry.bytes.length;
    out.push(entry.bytes);
  }
  return out;
}

test('the reap of a pool one account floods takes what a walk through the pool takes, and passes over few of the account’s transactions past its share', async () => {
  const pool = new Mempool({
    chainId: CHAIN,
    verifyBatch: (items) => Promise.resolve(items.map(() => true)),
    signatures: new SignatureCache(),
  });
  // The flooder's transactions of several sizes (faucets, and placeOrders with
  // a client order id), the others' interleaved with them and after them.
  const flooder = 70;
  const txs: Uint8Array[] = [];
  for (let n = 1; n <= MEMPOOL_TXS_PER_ACCOUNT_MAX; n++) {
    txs.push(
      n % 7 === 0
        ? buildTx({
            chainId: CHAIN,
            key: testKey(flooder),
            nonce: n,
            action: placeOrder({
              instrument: 'BTC-PERPETUAL',
              side: 'buy',
              sizeLots: 1,
              priceTicks: n,
              clientOrderId: 'x'.repeat(CLIENT_ORDER_ID_BYTES_MAX),
            }),
          }).bytes
        : faucet(flooder, n).bytes,
    );
    if (n % 50 === 0) txs.push(faucet(71 + n / 50, 1).bytes);
  }
  for (let k = 0; k < 30; k++) txs.push(faucet(100 + k, 1).bytes, faucet(100 + k, 2).bytes);
  for (const bytes of txs) assert.equal((await pool.add(bytes)).ok, true);
  // What the pool holds, in arrival order.
  const heldNow = (): MempoolEntry[] =>
    pool.reap(Infinity, Infinity, Infinity).map((b) => pool.lookup(b)!);
  const held = heldNow();
  assert.equal(held.length, txs.length, 'all held');
  const account = held[0]!.account;
  const sizes = new Set(held.filter((e) => e.account === account).map((e) => e.bytes.length));
  assert.ok(sizes.size >= 2, `the flooder’s transactions are of ${sizes.size} sizes`);

  const hashesOf = (list: readonly Uint8Array[]): string[] => list.map((b) => pool.lookup(b)!.hash);
  const same = (
    txsMax: number,
    bytesMax: number,
    perAccountMax: number,
    inPool = heldNow(),
  ): number => {
    const taken = pool.reap(txsMax, bytesMax, perAccountMax);
    assert.deepEqual(
      hashesOf(taken),
      hashesOf(walkReap(inPool, txsMax, bytesMax, perAccountMax)),
      `reap(${txsMax}, ${bytesMax}, ${perAccountMax})`,
    );
    return taken.length;
  };
  // A block's bounds: the flooder's first BLOCK_TXS_PER_ACCOUNT_PROPOSED_MAX and every other.
  assert.equal(
    same(BLOCK_TXS_MAX, BLOCK_TX_BYTES_MAX, BLOCK_TXS_PER_ACCOUNT_PROPOSED_MAX),
    BLOCK_TXS_PER_ACCOUNT_PROPOSED_MAX + txs.length - MEMPOOL_TXS_PER_ACCOUNT_MAX,
  );
  // Every bound on bytes from nothing to all taken, a step at a time: the
  // walk stops at the first that does not fit, a skipped larger one of the
  // flooder's included.
  const all = held.reduce((n, e) => n + e.bytes.length, 0);
  const stops = new Set<number>();
  for (let bytesMax = 0; bytesMax <= all; bytesMax += 97) {
    for (const perAccountMax of [1, 3, BLOCK_TXS_PER_ACCOUNT_PROPOSED_MAX]) {
      stops.add(same(BLOCK_TXS_MAX, bytesMax, perAccountMax, held));
    }
  }
  assert.ok(stops.size > 100, `${stops.size} different reaps`);
  for (const txsMax of [0, 1, 25, 60, 200]) same(txsMax, BLOCK_TX_BYTES_MAX, 3);
  assert.deepEqual(pool.reap(10, BLOCK_TX_BYTES_MAX, 0), []);

  // The flooder's transactions past its share are not visited one by one:
  // the walk passes over at most as many as it took before the queues are
  // merged instead (a walk through the pool passed over all 900 of them).
  const inner = pool as unknown as {
    entries: Map<string, MempoolEntry>;
    queues: Map<string, { entries: Map<string, MempoolEntry> }>;
  };
  const queue = inner.queues.get(account)!.entries;
  const skipped = [...queue.values()].slice(BLOCK_TXS_PER_ACCOUNT_PROPOSED_MAX);
  const visited = new Set<string>();
  for (const entry of skipped) {
    const watched = new Proxy(entry, {
      get: (target, key, receiver) => {
        visited.add(target.hash);
        return Reflect.get(target, key, receiver) as unknown;
      },
    });
    queue.set(entry.hash, watched);
    inner.entries.set(entry.hash, watched);
  }
  same(BLOCK_TXS_MAX, BLOCK_TX_BYTES_MAX, BLOCK_TXS_PER_ACCOUNT_PROPOSED_MAX);
  visited.clear();
  const taken = pool.reap(BLOCK_TXS_MAX, BLOCK_TX_BYTES_MAX);
  assert.equal(
    taken.length,
    BLOCK_TXS_PER_ACCOUNT_PROPOSED_MAX + txs.length - MEMPOOL_TXS_PER_ACCOUNT_MAX,
  );
  // The walk gives up once it has passed over one more than it took: the
  // flooder's 100 and the few others' it met on the way (104).
  assert.ok(
    visited.size <= BLOCK_TXS_PER_ACCOUNT_PROPOSED_MAX + 10,
    `${visited.size} of the flooder's ${skipped.length} skipped transactions visited`,
  );

  // Committed, the rest move up: the next reap takes the flooder's next share.
  pool.removeCommitted(hashesOf(taken));
  same(BLOCK_TXS_MAX, BLOCK_TX_BYTES_MAX, BLOCK_TXS_PER_ACCOUNT_PROPOSED_MAX);
  const next = pool.reap(BLOCK_TXS_MAX, BLOCK_TX_BYTES_MAX);
  assert.equal(next.length, BLOCK_TXS_PER_ACCOUNT_PROPOSED_MAX);
  assert.deepEqual(
    next.map((b) => pool.lookup(b)!.tx.nonce),
    Array.from(
      { length: BLOCK_TXS_PER_ACCOUNT_PROPOSED_MAX },
      (_, i) => i + 1 + BLOCK_TXS_PER_ACCOUNT_PROPOSED_MAX,
    ),
  );
});

test('the merge of the accounts’ queues takes what a walk through the pool takes, on seeded pools with holes and accounts that left and came back', async () => {
  const pool = new Mempool({
    chainId: CHAIN,
    verifyBatch: (items) => Promise.resolve(items.map(() => true)),
    signatures: new SignatureCache(),
  });
  const merged = (pool as unknown as { mergedReap: Mempool['reap'] }).mergedReap.bind(pool);
  const rng = new Prng(7);
  const nonces = new Map<number, number>();
  const nextTx = (): Uint8Array => {
    const key = 80 + rng.int(8);
    const nonce = (nonces.get(key) ?? 0) + 1;
    nonces.set(key, nonce);
    // Of several sizes: a faucet, or a placeOrder with a client order id of any length.
    const action =
      rng.int(3) === 0
        ? ({ kind: 'faucet', amountQuote: 1n } as const)
        : placeOrder({
            instrument: 'BTC-PERPETUAL',
            side: 'buy',
            sizeLots: 1,
            priceTicks: 1 + rng.int(1_000_000),
            clientOrderId: 'x'.repeat(1 + rng.int(CLIENT_ORDER_ID_BYTES_MAX)),
          });
    return buildTx({ chainId: CHAIN, key: testKey(key), nonce, action }).bytes;
  };
  let compared = 0;
  for (let round = 0; round < 12; round++) {
    for (let i = 0; i < 40; i++) assert.equal((await pool.add(nextTx())).ok, true);
    const held = pool.reap(Infinity, Infinity, Infinity).map((b) => pool.lookup(b)!);
    const all = held.reduce((n, e) => n + e.bytes.length, 0);
    for (let k = 0; k < 200; k++) {
      const txsMax = rng.int(held.length + 2);
      const bytesMax = rng.int(all + 300);
      const perAccountMax = rng.int(12);
      assert.deepEqual(
        merged(txsMax, bytesMax, perAccountMax).map((b) => pool.lookup(b)!.hash),
        walkReap(held, txsMax, bytesMax, perAccountMax).map((b) => pool.lookup(b)!.hash),
        `round ${round}: mergedReap(${txsMax}, ${bytesMax}, ${perAccountMax})`,
      );
      compared++;
    }
    // Some leave (committed or dropped): heads, middles, whole accounts.
    const leaving = held.filter(() => rng.int(3) === 0).map((e) => e.hash);
    pool.removeCommitted(leaving);
  }
  assert.equal(compared, 2_400);
});

test('reap takes what a walk through the pool takes, on seeded pools built by adds, evictions, commits and re-checks, accounts emptying and coming back', async () => {
  /** The pool's own bookkeeping, read to check it agrees with itself after every change. */
  interface Queue {
    readonly since: number;
    readonly entries: Map<string, MempoolEntry>;
    readonly bytesMaxBound: number;
    holdsOver(bytes: number): boolean;
  }
  interface Inner {
    entries: Map<string, MempoolEntry>;
    perAccount: Map<string, number>;
    queues: Map<string, Queue>;
    mergedReap: Mempool['reap'];
  }
  // Each account's queue's `since` as last seen, to count queues made again.
  let sinces = new Map<string, number>();
  let remade = 0;
  const checkBookkeeping = (inner: Inner, where: string): void => {
    const accounts = new Map<string, MempoolEntry[]>();
    for (const e of inner.entries.values()) {
      const list = accounts.get(e.account) ?? [];
      list.push(e);
      accounts.set(e.account, list);
    }
    assert.deepEqual(
      [...inner.queues.keys()].sort(),
      [...accounts.keys()].sort(),
      `${where}: a queue for each account held, and none for another (none left empty)`,
    );
    assert.deepEqual(
      [...inner.perAccount].sort(),
      [...accounts].map(([a, list]) => [a, list.length]).sort(),
      `${where}: perAccount counts what is held`,
    );
    let since = -1;
    for (const [account, queue] of inner.queues) {
      // The queues in the order they were made: `since` grows, so an account
      // not met yet holds nothing before it.
      assert.ok(queue.since > since, `${where}: queue of ${account} made after the one before`);
      // Made again (it emptied) while an account's older queue is still held.
      const before = sinces.get(account);
      if (before !== undefined && before !== queue.since && since >= 0) remade++;
      sinces.set(account, queue.since);
      since = queue.since;
      const held = accounts.get(account)!;
      assert.deepEqual([...queue.entries.values()], held, `${where}: ${account}'s queue`);
      assert.ok(
        queue.since <= held[0]!.seq,
        `${where}: ${account}'s since is at or below its first`,
      );
      const largest = Math.max(...held.map((e) => e.bytes.length));
      assert.ok(queue.bytesMaxBound >= largest, `${where}: ${account}'s bound over its largest`);
    }
  };

  let reaps = 0;
  let merges = 0;
  let stoppedOnSkipped = 0;
  let evicted = 0;
  for (let seed = 1; seed <= 24; seed++) {
    const rng = new Prng(seed);
    sinces = new Map();
    // Half the seeds hold transactions of one size (faucets), half of many.
    const oneSize = seed % 2 === 0;
    const peers = ['p1', 'p2'];
    const pool = new Mempool({
      chainId: CHAIN,
      verifyBatch: (items) => Promise.resolve(items.map(() => true)),
      signatures: new SignatureCache(),
      limits: {
        txsMax: 12 + rng.int(30),
        perAccountMax: 4 + rng.int(20),
        perPeerTxsMax: 10 + rng.int(20),
      },
    });
    const inner = pool as unknown as Inner;
    const merged = inner.mergedReap.bind(pool);
    // Counts the reaps that gave up walking for the merge.
    inner.mergedReap = (...args) => {
      merges++;
      return merged(...args);
    };
    const nonces = new Map<number, number>();
    const dropped: Uint8Array[] = [];
    const nextTx = (): Uint8Array => {
      // One account floods; nine others come and go.
      const key = rng.chance(2, 5) ? 200 : 201 + rng.int(9);
      const nonce = (nonces.get(key) ?? 0) + 1;
      nonces.set(key, nonce);
      const action =
        oneSize || rng.chance(1, 3)
          ? ({ kind: 'faucet', amountQuote: 1n } as const)
          : placeOrder({
              instrument: 'BTC-PERPETUAL',
              side: 'buy',
              sizeLots: 1,
              priceTicks: 1,
              clientOrderId: 'x'.repeat(1 + rng.int(CLIENT_ORDER_ID_BYTES_MAX)),
            });
      return buildTx({ chainId: CHAIN, key: testKey(key), nonce, action }).bytes;
    };

    for (let step = 0; step < 40; step++) {
      const held = [...inner.entries.values()];
      const what = rng.int(10);
      if (what < 5 || held.length === 0) {
        // Arrivals from one source: a client's evict when the pool is full
        // (the largest gossip first), a peer's are refused.
        const from = rng.chance(1, 2) ? null : peers[rng.int(peers.length)]!;
        const batch = Array.from({ length: 1 + rng.int(10) }, () =>
          dropped.length > 0 && rng.chance(1, 6)
            ? dropped.splice(rng.int(dropped.length), 1)[0]!
            : nextTx(),
        );
        await Promise.all(batch.map((b) => pool.add(b, from)));
      } else if (what < 7) {
        // Committed: some at random, or every one of an account's.
        const account = held[rng.int(held.length)]!.account;
        const leaving = rng.chance(1, 2)
          ? held.filter((e) => e.account === account)
          : held.filter(() => rng.chance(1, 3));
        pool.removeCommitted(leaving.map((e) => e.hash));
      } else {
        // Refused by the re-check: some at random, or every one of an account's.
        const account = held[rng.int(held.length)]!.account;
        const stale = new Set(
          (rng.chance(1, 2)
            ? held.filter((e) => e.account === account)
            : held.filter(() => rng.chance(1, 4))
          ).map((e) => e.tx),
        );
        for (const e of held) if (stale.has(e.tx)) dropped.push(e.bytes);
        await pool.recheck((tx) => (stale.has(tx) ? 'StaleNonce' : null), 1 + rng.int(20));
      }
      const where = `seed ${seed} step ${step}`;
      checkBookkeeping(inner, where);

      const inPool = [...inner.entries.values()];
      const sizes = [...new Set(inPool.map((e) => e.bytes.length))];
      // The bytes before each held transaction: bounds at and around where a walk stops.
      const prefix: number[] = [0];
      for (const e of inPool) prefix.push(prefix[prefix.length - 1]! + e.bytes.length);
      const total = prefix[prefix.length - 1]!;
      for (let k = 0; k < 40; k++) {
        const txsMax = [0, 1, 2, rng.int(inPool.length + 2), BLOCK_TXS_MAX][rng.int(5)]!;
        const at = prefix[rng.int(prefix.length)]!;
        const size = sizes.length > 0 ? sizes[rng.int(sizes.length)]! : 0;
        const bytesMax = [
          rng.int(total + 300),
          at + rng.int(3) - 1,
          at + size + rng.int(3) - 1,
          size,
          total,
          BLOCK_TX_BYTES_MAX,
        ][rng.int(6)]!;
        const perAccountMax = [0, 1, 2, 3, 1 + rng.int(8), Infinity][rng.int(6)]!;
        const expected = walkReap(inPool, txsMax, bytesMax, perAccountMax).map(
          (b) => pool.lookup(b)!.hash,
        );
        const label = `${where}: (${txsMax}, ${bytesMax}, ${perAccountMax})`;
        assert.deepEqual(
          pool.reap(txsMax, bytesMax, perAccountMax).map((b) => pool.lookup(b)!.hash),
          expected,
          `${label}: reap`,
        );
        assert.deepEqual(
          merged(txsMax, bytesMax, perAccountMax).map((b) => pool.lookup(b)!.hash),
          expected,
          `${label}: the merge alone`,
        );
        // Where the walk stopped: on an account's transaction past its share, too large?
        // (None when it took txsMax: it stopped there.)
        const taken = new Map<string, number>();
        let bytes = 0;
        for (const e of expected.length < txsMax ? inPool : []) {
          const n = taken.get(e.account) ?? 0;
          if (bytes + e.bytes.length > bytesMax) {
            if (n >= perAccountMax && perAccountMax > 0) stoppedOnSkipped++;
            break;
          }
          if (n >= perAccountMax) continue;
          taken.set(e.account, n + 1);
          bytes += e.bytes.length;
        }
        reaps++;
      }
      // The bound on an account's largest is exact once asked about.
      for (const queue of inner.queues.values()) {
        const largest = Math.max(...[...queue.entries.values()].map((e) => e.bytes.length));
        assert.equal(queue.holdsOver(largest - 1), true, `${where}: holds one over largest - 1`);
        assert.equal(queue.holdsOver(largest), false, `${where}: holds none over its largest`);
        assert.equal(queue.bytesMaxBound, largest, `${where}: the bound recounted`);
      }
      checkBookkeeping(inner, `${where}, after reaping`);
    }
    evicted += pool.stats.evicted;
  }
  // The runs went where they were meant to: merges, walks stopped by an
  // account's transaction past its share, evictions, queues made again.
  assert.equal(reaps, 24 * 40 * 40);
  assert.ok(merges > reaps / 10, `${merges} of ${reaps} reaps merged the queues`);
  assert.ok(stoppedOnSkipped > 100, `${stoppedOnSkipped} walks stopped on a skipped one`);
  assert.ok(evicted > 100, `${evicted} evicted`);
  assert.ok(remade > 100, `${remade} queues made again`);
});
