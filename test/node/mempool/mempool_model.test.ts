// The mempool against a reference written from the docs (docs/operations.md,
// "The mempool"; docs/api.md, "Submitting" and "Dropped transactions";
// docs/transactions.md, "Nonces"; docs/exchange.md, "In-block ordering" and
// the check order). Seeded flows submit transactions of many accounts, from
// clients and from gossiping peers (valid, signed by a key not the account's, bad signature, malformed, of another
// chain, oversize, duplicate, replayed or stale nonce, expired, past the
// per-account, per-peer and total limits), with signature batches in flight
// across turns; blocks commit some of the pool's transactions and some it never
// saw, on a real exchange whose committed state the mempool reads through
// ExchangeApp.staleCodeOf. After every step: each answer, the pool's content
// and proposal order, the drops told (and their codes), the limits, the
// bookkeeping maps, and that every admitted transaction is committed, still
// held, or was told dropped. Dropped and refused transactions are then put in
// blocks: the exchange must refuse them with the code the pool gave (an
// expired one its block refuses first for its signer is told Expired:
// docs/api.md). The last test: a proposal holds at most a nonce window's
// worth of one account, so that the exchange's cancels-first order never
// makes a bot's own orders, signed in order, StaleNonce.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KeyPair, VerifyItem } from '../../../src/crypto/index.ts';
import { addressOf, keyPairFromSeed, sha256, verifyRaw } from '../../../src/crypto/index.ts';
import type { Action, SignedTx } from '../../../src/exchange/tx/index.ts';
import { buildTx } from '../../../src/exchange/tx/index.ts';
import { bytesEqual, toHex, utf8 } from '../../../src/lib/bytes.ts';
import {
  BLOCK_TX_BYTES_MAX,
  BLOCK_TXS_MAX,
  NONCE_AGE_MS_MAX,
  NONCE_FUTURE_MS_MAX,
  NONCE_WINDOW,
  TX_BYTES_MAX,
} from '../../../src/lib/limits.ts';
import { Prng } from '../../../src/lib/prng.ts';
import { ExchangeApp } from '../../../src/node/app.ts';
import type { Dropped, MempoolEntry, MempoolLimits } from '../../../src/node/mempool/mempool.ts';
import { Mempool } from '../../../src/node/mempool/mempool.ts';
import { SignatureCache } from '../../../src/node/mempool/sigcache.ts';
import { consensusGenesisOf } from '../../../src/node/node.ts';
import { Harness, USDC } from '../../exchange/helpers.ts';

const CHAIN = 'zomma-devnet';
const T0 = 1_700_000_000_000;
const PEERS = ['p1', 'p2', 'p3'];
const LIMITS: MempoolLimits = {
  txsMax: 24,
  bytesMax: 6_000,
  perAccountMax: 5,
  perPeerTxsMax: 7,
  perPeerBytesMax: 2_200,
  pendingChecksMax: 8,
};

// --- keys and transactions ------------------------------------------------------

interface Trader {
  readonly key: KeyPair;
  readonly account: Uint8Array;
  readonly hex: string;
  /** An agent registered at setup (its transactions use the agents' window), or null. */
  readonly agent: KeyPair | null;
}

const keyOf = (name: string): KeyPair => keyPairFromSeed(sha256(utf8(`mempool-model-${name}`)));

interface Tx {
  readonly tx: SignedTx;
  readonly bytes: Uint8Array;
  readonly hash: string;
  /** The signature does not verify. */
  readonly bad: boolean;
}

function signed(
  trader: Trader,
  signer: KeyPair,
  nonce: number,
  action: Action,
  expiresAtMs?: number,
): Tx {
  const built = buildTx({
    chainId: CHAIN,
    key: signer,
    account: trader.account,
    nonce,
    action,
    ...(expiresAtMs !== undefined ? { expiresAtMs } : {}),
  });
  return { tx: built.tx, bytes: built.bytes, hash: toHex(built.hash), bad: false };
}

/** The same transaction with one signature byte changed: it decodes, and fails its check. */
function badSignature(t: Tx): Tx {
  const bytes = Uint8Array.from(t.bytes);
  bytes[bytes.length - 40]! ^= 0x10;
  return { tx: t.tx, bytes, hash: toHex(sha256(bytes)), bad: true };
}

/** Actions of varied sizes; a batch of cancels runs first in its block (in-block ordering). */
function randomAction(rng: Prng, agent: boolean): Action {
  const roll = rng.int(agent ? 2 : 4);
  if (roll === 0) {
    const count = 1 + rng.int(24);
    return {
      kind: 'batch',
      actions: Array.from({ length: count }, (_, i) => ({
        kind: 'cancel' as const,
        instrument: 'BTC-PERPETUAL',
        orderId: 1 + i,
      })),
    };
  }
  if (roll === 1) return { kind: 'cancelAll' };
  if (roll === 2) return { kind: 'faucet', amountQuote: BigInt(1 + rng.int(100)) };
  return {
    kind: 'withdraw',
    amountQuote: 1n,
    destination: 'x'.repeat(1 + rng.int(128)),
  };
}

// --- the reference -----------------------------------------------------------------

/** docs/transactions.md, "Nonces": why a nonce is refused at block time `t`, or null. */
function nonceRule(window: readonly number[], nonce: number, t: number): string | null {
  if (!(t - NONCE_AGE_MS_MAX < nonce)) return 'StaleNonce';
  if (!(nonce < t + NONCE_FUTURE_MS_MAX)) return 'FutureNonce';
  if (window.length === NONCE_WINDOW && nonce <= window[0]!) return 'StaleNonce';
  return window.includes(nonce) ? 'DuplicateNonce' : null;
}

interface RefEntry {
  readonly t: Tx;
  readonly from: string | null;
  readonly account: string;
}

interface Queued {
  readonly t: Tx;
  readonly from: string | null;
}

type Answer = { ok: true; hash: string } | { ok: false; hash: string | null; code: string };

/** The chain's state as the docs describe it: nonce windows, agents, time. */
class RefChain {
  timeMs = 0;
  /** Windows by `${account}:${master|agent}`, ascending. */
  readonly windows = new Map<string, number[]>();
  /** Masters and active agents, by `${account}:${signer}`. */
  readonly allowed = new Map<string, 'master' | 'agent'>();

  windowOf(tx: SignedTx): number[] {
    const who = this.allowed.get(`${toHex(tx.account)}:${toHex(tx.signer)}`);
    const key = `${toHex(tx.account)}:${who === 'master' ? 'master' : 'agent'}`;
    let w = this.windows.get(key);
    if (w === undefined) this.windows.set(key, (w = []));
    return w;
  }

  /** docs/api.md, "Submitting": the code the committed state already refuses with (FutureNonce at admission only), or null. */
  staleCode(tx: SignedTx): string | null {
    const code = nonceRule(this.windowOf(tx), tx.nonce, this.timeMs);
    if (code !== null) return code;
    // Every account here is open: a signer neither its key nor an active agent is refused.
    if (!this.allowed.has(`${toHex(tx.account)}:${toHex(tx.signer)}`)) return 'NotPermitted';
    if (tx.expiresAtMs !== undefined && tx.expiresAtMs < this.timeMs) return 'Expired';
    return null;
  }

  /** docs/exchange.md, "Results" check order, at block time: the transaction's refusal or null. */
  execute(tx: SignedTx): string | null {
    const window = this.windowOf(tx);
    const code = nonceRule(window, tx.nonce, this.timeMs);
    if (code !== null) return code;
    const who = this.allowed.get(`${toHex(tx.account)}:${toHex(tx.signer)}`);
    if (who === undefined) return 'NotPermitted';
    window.push(tx.nonce);
    window.sort((a, b) => a - b);
    if (window.length > NONCE_WINDOW) window.shift();
    if (tx.expiresAtMs !== undefined && tx.expiresAtMs < this.timeMs) return 'Expired';
    const a = tx.action;
    const kinds = a.kind === 'batch' ? a.actions.map((x) => x.kind) : [a.kind];
    if (who === 'agent' && kinds.some((k) => k === 'faucet' || k === 'withdraw')) {
      return 'NotPermitted';
    }
    return null;
  }
}

/** docs/exchange.md, "In-block ordering": cancels first (a batch takes its latest class), stable. */
function inBlockOrder(txs: readonly Tx[]): Tx[] {
  const classOf = (t: Tx): number => {
    const a = t.tx.action;
    const kinds = a.kind === 'batch' ? a.actions.map((x) => x.kind) : [a.kind];
    return kinds.every((k) => k === 'cancel' || k === 'cancelAll') ? 0 : 2;
  };
  return [...txs].sort((x, y) => classOf(x) - classOf(y));
}

/** The mempool as docs/operations.md describes it. */
class RefPool {
  readonly entries: RefEntry[] = [];
  readonly committed = new Set<string>();
  readonly verified = new Set<string>();
  /** Signature batches: queued this turn (last), or being checked (before). */
  readonly batches: Queued[][] = [[]];
  readonly drops: { hash: string; code: string }[] = [];
  readonly admitted: { hash: string; from: string | null }[] = [];

  constructor(
    readonly chain: RefChain,
    readonly limits: MempoolLimits,
  ) {}

  private held(hash: string): boolean {
    return this.entries.some((e) => e.t.hash === hash);
  }

  private pending(): Queued[] {
    return this.batches.flat();
  }

  private bytes(): number {
    return this.entries.reduce((n, e) => n + e.t.bytes.length, 0);
  }

  private shareOf(from: string, withPending: boolean): { txs: number; bytes: number } {
    const list = [
      ...this.entries.filter((e) => e.from === from).map((e) => e.t),
      ...(withPending ? this.pending().filter((q) => q.from === from) : []).map((q) => q.t),
    ];
    return { txs: list.length, bytes: list.reduce((n, t) => n + t.bytes.length, 0) };
  }

  private full(size: number, withPendingGossip: boolean): boolean {
    const gossip = withPendingGossip ? this.pending().filter((q) => q.from !== null) : [];
    const txs = this.entries.length + gossip.length;
    const bytes = this.bytes() + gossip.reduce((n, q) => n + q.t.bytes.length, 0);
    return txs >= this.limits.txsMax || bytes + size > this.limits.bytesMax;
  }

  /** A peer's gossip past its share or into a full pool: refused, before its check too. */
  private peerRefusal(t: Tx, from: string, withPending: boolean): string | null {
    const share = this.shareOf(from, withPending);
    const size = t.bytes.length;
    if (
      share.txs >= this.limits.perPeerTxsMax ||
      share.bytes + size > this.limits.perPeerBytesMax
    ) {
      return 'MempoolPeerFull';
    }
    return this.full(size, withPending) ? 'MempoolFull' : null;
  }

  /** An add: its answer now, or 'queued' for its signature batch. */
  add(t: Tx, from: string | null, stateless: string | null): Answer | 'queued' {
    if (stateless !== null) return { ok: false, hash: null, code: stateless };
    const hash = t.hash;
    if (
      this.held(hash) ||
      this.committed.has(hash) ||
      this.pending().some((q) => q.t.hash === hash)
    )
      return { ok: false, hash, code: 'DuplicateTx' };
    if (from !== null) {
      const refused = this.peerRefusal(t, from, true);
      if (refused !== null) return { ok: false, hash, code: refused };
    }
    // A known signature needs no place among those waiting for a check.
    if (this.verified.has(hash)) return this.admit(t, from);
    if (this.pending().length >= this.limits.pendingChecksMax || this.gossipBusy(from))
      return { ok: false, hash, code: 'MempoolBusy' };
    this.batches[this.batches.length - 1]!.push({ t, from });
    return 'queued';
  }

  /** A peer's gossip waits for its check in a quarter of the places at most, all peers' in three quarters. */
  private gossipBusy(from: string | null): boolean {
    if (from === null) return false;
    const quarter = Math.max(1, Math.floor(this.limits.pendingChecksMax / 4));
    const gossip = this.pending().filter((q) => q.from !== null);
    return (
      gossip.filter((q) => q.from === from).length >= quarter ||
      gossip.length >= this.limits.pendingChecksMax - quarter
    );
  }

  /** The oldest batch's check is over: its answers, in order. */
  settle(): Map<Queued, Answer> {
    const batch = this.batches.shift()!;
    const answers = new Map<Queued, Answer>();
    for (const q of batch) {
      if (q.t.bad && !this.verified.has(q.t.hash))
        answers.set(q, { ok: false, hash: q.t.hash, code: 'BadSignature' });
    }
    for (const q of batch) {
      if (answers.has(q)) continue;
      this.verified.add(q.t.hash);
      answers.set(q, this.admit(q.t, q.from));
    }
    return answers;
  }

  private admit(t: Tx, from: string | null): Answer {
    const hash = t.hash;
    if (this.held(hash) || this.committed.has(hash))
      return { ok: false, hash, code: 'DuplicateTx' };
    const stale = this.chain.staleCode(t.tx);
    if (stale !== null) return { ok: false, hash, code: stale };
    const account = toHex(t.tx.account);
    if (this.entries.filter((e) => e.account === account).length >= this.limits.perAccountMax)
      return { ok: false, hash, code: 'MempoolAccountFull' };
    if (from !== null) {
      const refused = this.peerRefusal(t, from, false);
      if (refused !== null) return { ok: false, hash, code: refused };
    }
    while (this.entries.length > 0 && this.full(t.bytes.length, false)) this.evict();
    this.entries.push({ t, from, account });
    this.touch();
    this.admitted.push({ hash, from });
    return { ok: true, hash };
  }

  /**
   * Room for a client's transaction: the oldest gossip of the peer whose gossip
   * holds the most bytes (of equal ones, the one holding gossip the longest
   * without a pause), else the oldest of all.
   */
  private evict(): void {
    let victim: RefEntry | undefined;
    let most = -1;
    for (const peer of this.peerOrder()) {
      const bytes = this.shareOf(peer, false).bytes;
      if (bytes > most) {
        most = bytes;
        victim = this.entries.find((e) => e.from === peer);
      }
    }
    victim ??= this.entries[0]!;
    this.remove(victim.t.hash);
    this.drops.push({ hash: victim.t.hash, code: 'Evicted' });
  }

  /** Peers holding gossip, by when their share began (it ends when it holds nothing). */
  private readonly since = new Map<string, number>();
  private clock = 0;
  private peerOrder(): string[] {
    for (const peer of [...this.since.keys()]) {
      if (!this.entries.some((e) => e.from === peer)) this.since.delete(peer);
    }
    for (const e of this.entries) {
      if (e.from !== null && !this.since.has(e.from)) this.since.set(e.from, this.clock++);
    }
    return [...this.since.entries()].sort((a, b) => a[1] - b[1]).map(([peer]) => peer);
  }

  /** Keeps peerOrder's record in step with every change (a share that empties ends). */
  touch(): void {
    this.peerOrder();
  }

  remove(hash: string): void {
    const at = this.entries.findIndex((e) => e.t.hash === hash);
    if (at >= 0) this.entries.splice(at, 1);
    this.touch();
  }

  /** docs/operations.md: arrival order, within the bounds, at most perAccountMax of one account. */
  reap(txsMax: number, bytesMax: number, perAccountMax: number): string[] {
    const out: string[] = [];
    const taken = new Map<string, number>();
    let bytes = 0;
    for (const e of this.entries) {
      if (out.length >= txsMax || bytes + e.t.bytes.length > bytesMax) break;
      if ((taken.get(e.account) ?? 0) >= perAccountMax) continue;
      taken.set(e.account, (taken.get(e.account) ?? 0) + 1);
      bytes += e.t.bytes.length;
      out.push(e.t.hash);
    }
    return out;
  }

  commit(hashes: readonly string[]): void {
    for (const h of hashes) {
      this.remove(h);
      this.committed.add(h);
    }
  }

  recheck(): void {
    for (const e of [...this.entries]) {
      const code = this.chain.staleCode(e.t.tx);
      // Block times only rise: a nonce ahead of one is no reason to drop.
      if (code !== null && code !== 'FutureNonce') {
        this.remove(e.t.hash);
        this.drops.push({ hash: e.t.hash, code });
      }
    }
  }
}

// --- the flow ------------------------------------------------------------------------

interface Stats {
  answers: Map<string, number>;
  blockCodes: Map<string, number>;
  drops: Map<string, number>;
  inFlightTurns: number;
  refusedAsBlock: number;
}

const bump = (m: Map<string, number>, k: string): void => void m.set(k, (m.get(k) ?? 0) + 1);

/** A verifier whose batches wait for `release`, so that a batch is in flight across turns. */
function gatedVerifier() {
  const gates: (() => void)[] = [];
  return {
    waiting: () => gates.length,
    verifyBatch: async (items: readonly VerifyItem[]): Promise<boolean[]> => {
      await new Promise<void>((resolve) => gates.push(resolve));
      return items.map((i) => verifyRaw(i.publicKey, i.message, i.signature));
    },
    releaseOne: () => gates.shift()?.(),
  };
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A harness's exchange behind the node's application, with the signature cache they share with a mempool. */
function exchangeApp(): { h: Harness; signatures: SignatureCache; app: ExchangeApp } {
  const h = new Harness(undefined, { checkInvariants: false });
  const genesis = h.ex.state.genesis;
  const signatures = new SignatureCache();
  const app = new ExchangeApp(
    {
      genesis,
      consensusGenesis: consensusGenesisOf(genesis),
      signatures,
      prices: null,
      nowMs: () => 0,
    },
    h.ex,
  );
  return { h, signatures, app };
}

async function run(seed: number, steps: number, stats: Stats): Promise<void> {
  const rng = new Prng(seed);
  const { h, signatures, app } = exchangeApp();
  const verifier = gatedVerifier();
  const dropped: Dropped[] = [];
  const gossiped: { hash: string; from: string | null }[] = [];
  const pool = new Mempool({
    chainId: CHAIN,
    verifyBatch: verifier.verifyBatch,
    signatures,
    limits: LIMITS,
    staleCodeOf: (tx) => app.staleCodeOf(tx),
    onDropped: (d) => dropped.push(d),
    onAdmitted: (entries: readonly MempoolEntry[], from) => {
      for (const e of entries) {
        assert.equal(e.from, from, 'an admitted batch is reported with its own source');
        gossiped.push({ hash: e.hash, from });
      }
    },
  });
  const chain = new RefChain();
  const ref = new RefPool(chain, LIMITS);

  // Traders, a third with an agent; funded (and agents registered) in blocks the pool never sees.
  const traders: Trader[] = Array.from({ length: 10 }, (_, i) => {
    const key = keyOf(`${seed}-t${i}`);
    const account = addressOf(key.publicKey);
    return {
      key,
      account,
      hex: toHex(account),
      agent: i % 3 === 0 ? keyOf(`${seed}-a${i}`) : null,
    };
  });
  const stranger = keyOf(`${seed}-stranger`);
  /** Each signer's clock: nonces it hands out rise (docs/api.md, NonceClock). */
  const clocks = new Map<string, number>();
  const fresh = (signer: KeyPair): number => {
    const k = toHex(signer.publicKey);
    const n = Math.max((clocks.get(k) ?? 0) + 1, chain.timeMs + rng.int(3_000));
    clocks.set(k, n);
    return n;
  };
  const commitBlock = (txs: readonly Tx[], dtMs: number): void => {
    const ordered = inBlockOrder(txs);
    chain.timeMs = h.timeMs + dtMs;
    // What the committed state said of each just before it ran (for mustRefuse).
    const before: (string | null)[] = [];
    const expected = ordered.map((t) => {
      before.push(chain.staleCode(t.tx));
      return chain.execute(t.tx);
    });
    const result = h.block(
      ordered.map((t) => t.tx),
      dtMs,
    );
    assert.equal(result.results.length, ordered.length);
    result.results.forEach((r, i) => {
      const code = r.ok ? null : r.code;
      bump(stats.blockCodes, code ?? 'ok');
      assert.equal(
        code,
        expected[i],
        `seed ${seed}: block result of ${ordered[i]!.hash.slice(0, 8)} (nonce ${ordered[i]!.tx.nonce})`,
      );
    });
    assert.equal(h.ex.state.timeMs, chain.timeMs);
    ordered.forEach((t, i) => {
      const code = mustRefuse.get(t);
      if (code === undefined) return;
      mustRefuse.delete(t);
      const r = result.results[i]!;
      assert.ok(!r.ok, `seed ${seed}: a transaction refused or dropped as ${code} never commits`);
      // Earlier transactions of its block may have made it stale otherwise.
      if (before[i] !== code) return;
      // Expiry is for good: one its block refuses first for its signer is told Expired.
      const signerRefused = r.ok || r.code === 'NotPermitted' || r.code === 'UnknownAccount';
      assert.equal(
        code === 'Expired' && signerRefused && !r.ok ? code : r.ok ? 'ok' : r.code,
        code,
        `seed ${seed}: a transaction the pool refused or dropped as ${code} is refused alike in a block`,
      );
    });
    const hashes = ordered.map((t) => t.hash);
    pool.removeCommitted(hashes);
    ref.commit(hashes);
    for (const hash of hashes) live.delete(hash);
  };

  // Setup: every account opened by a faucet draw, agents registered.
  const setup: Tx[] = [];
  for (const tr of traders) {
    clocks.set(toHex(tr.key.publicKey), T0);
    setup.push(signed(tr, tr.key, T0 + 1, { kind: 'faucet', amountQuote: 1_000n * USDC }));
    chain.allowed.set(`${tr.hex}:${toHex(tr.key.publicKey)}`, 'master');
    if (tr.agent !== null) {
      setup.push(
        signed(tr, tr.key, T0 + 2, {
          kind: 'registerAgent',
          agentPublicKey: tr.agent.publicKey,
          expiresAtMs: T0 + 1_000 * NONCE_AGE_MS_MAX,
        }),
      );
      chain.allowed.set(`${tr.hex}:${toHex(tr.agent.publicKey)}`, 'agent');
    }
  }
  const live = new Set<string>();
  const mustRefuse = new Map<Tx, string>();
  commitBlock(setup, T0 + 1_000 - h.timeMs);

  /** Every transaction made so far, for duplicates, replays and blocks. */
  const made: Tx[] = [];
  /** Those the pool refused as stale or dropped by the re-check, with the code: a block must agree. */
  const refusedStale: { t: Tx; code: string }[] = [];

  const makeTx = (): Tx => {
    const tr = traders[rng.int(traders.length)]!;
    const roll = rng.int(20);
    const signer =
      roll === 0 ? stranger : tr.agent !== null && rng.chance(1, 3) ? tr.agent : tr.key;
    const agent = signer !== tr.key;
    const window = chain.windows.get(`${tr.hex}:${agent ? 'agent' : 'master'}`) ?? [];
    const handed = made.filter((t) => bytesEqual(t.tx.signer, signer.publicKey));
    let nonce: number;
    switch (rng.int(20)) {
      case 0: // replayed
        nonce = window.length > 0 ? window[rng.int(window.length)]! : fresh(signer);
        break;
      case 1: // below a full window
        nonce = window.length === NONCE_WINDOW ? window[0]! - rng.int(50) : fresh(signer);
        break;
      case 2: // too old
        nonce = chain.timeMs - NONCE_AGE_MS_MAX - rng.int(1_000);
        break;
      case 3: // too far ahead
        nonce = chain.timeMs + NONCE_FUTURE_MS_MAX + rng.int(1_000);
        break;
      case 4: // one nonce, two transactions
      case 5:
        nonce =
          handed.length > 0
            ? handed.at(-1 - rng.int(Math.min(5, handed.length)))!.tx.nonce
            : fresh(signer);
        break;
      default:
        nonce = fresh(signer);
    }
    const expiry = rng.int(8) === 0 ? chain.timeMs + rng.int(5_000) - 2_500 : undefined;
    const t = signed(tr, signer, nonce, randomAction(rng, agent), expiry);
    made.push(t);
    return t;
  };

  for (let step = 0; step < steps; step++) {
    const roll = rng.int(10);
    if (roll < 6) {
      // Submissions in one turn, maybe a second turn while the first batch is checked.
      const turns = rng.chance(1, 3) ? 2 : 1;
      const calls: { promise: Promise<unknown>; expect: Answer | 'queued'; q?: Queued; t: Tx }[] =
        [];
      for (let k = 0; k < turns; k++) {
        if (k > 0) {
          await turn(); // the first batch's check begins
          ref.batches.push([]);
          stats.inFlightTurns++;
        }
        const count = 1 + rng.int(9);
        for (let i = 0; i < count; i++) {
          const from = rng.chance(2, 5) ? PEERS[rng.int(PEERS.length)]! : null;
          const what = rng.int(40);
          let t: Tx;
          let stateless: string | null = null;
          let bytes: Uint8Array;
          if (what === 0) {
            t = made.length > 0 ? made[rng.int(made.length)]! : makeTx();
            bytes = Uint8Array.from([...t.bytes, 0]);
            stateless = 'Malformed';
          } else if (what === 1) {
            bytes = new Uint8Array(TX_BYTES_MAX + 1 + rng.int(100));
            t = { ...makeTx(), bytes };
            stateless = 'Oversize';
          } else if (what === 2) {
            const tr = traders[0]!;
            const other = buildTx({
              chainId: 'other-chain',
              key: tr.key,
              nonce: fresh(tr.key),
              action: { kind: 'cancelAll' },
            });
            bytes = other.bytes;
            t = { tx: other.tx, bytes, hash: toHex(other.hash), bad: false };
            stateless = 'WrongChain';
          } else if (what < 6) {
            t = badSignature(makeTx());
            bytes = t.bytes;
          } else if (what < 12 && made.length > 0) {
            t = made[made.length - 1 - rng.int(Math.min(made.length, 30))]!; // again
            bytes = Uint8Array.from(t.bytes);
          } else {
            t = makeTx();
            bytes = t.bytes;
          }
          if (what === 13 && !t.bad) {
            // A proposal holding it was checked first (the application caches its verdict).
            signatures.add(t.hash);
            ref.verified.add(t.hash);
          }
          const expect = ref.add(t, from, stateless);
          const q = expect === 'queued' ? ref.batches[ref.batches.length - 1]!.at(-1) : undefined;
          calls.push({ promise: pool.add(bytes, from), expect, ...(q ? { q } : {}), t });
        }
      }
      // The batches are checked, oldest first.
      for (;;) {
        await turn();
        if (verifier.waiting() === 0) break;
        verifier.releaseOne();
      }
      const settled = new Map<Queued, Answer>();
      while (ref.batches.length > 0) {
        for (const [q, a] of ref.settle()) settled.set(q, a);
      }
      ref.batches.push([]);
      const results = await Promise.all(calls.map((c) => c.promise));
      calls.forEach((c, i) => {
        const expect = c.expect === 'queued' ? settled.get(c.q!)! : c.expect;
        const got = results[i] as Answer & { message?: string };
        const gotCode = got.ok ? 'ok' : got.code;
        bump(stats.answers, gotCode);
        assert.deepEqual(
          { ok: got.ok, hash: got.hash, code: got.ok ? 'ok' : got.code },
          { ok: expect.ok, hash: expect.hash, code: expect.ok ? 'ok' : expect.code },
          `seed ${seed} step ${step}: answer to call ${i}`,
        );
        if (got.ok) live.add(c.t.hash);
        if (
          !got.ok &&
          (got.code === 'StaleNonce' ||
            got.code === 'FutureNonce' ||
            got.code === 'DuplicateNonce' ||
            got.code === 'Expired')
        ) {
          refusedStale.push({ t: c.t, code: got.code });
        }
      });
    } else if (roll < 8) {
      // A block: a prefix of what this pool would propose, and transactions it never saw.
      const own = pool.reap(rng.int(8), 1 + rng.int(4_000));
      const txs: Tx[] = own.map((bytes) => {
        const entry = pool.lookup(bytes)!;
        return made.find((t) => t.hash === entry.hash)!;
      });
      const others = rng.int(4);
      for (let i = 0; i < others; i++) txs.push(makeTx());
      if (rng.chance(1, 12)) {
        // A trader's bot fills its window elsewhere: this pool's nonces of it fall below.
        const tr = traders[rng.int(traders.length)]!;
        for (let i = 0; i < NONCE_WINDOW; i++) {
          const t = signed(tr, tr.key, fresh(tr.key), { kind: 'cancelAll' });
          made.push(t);
          txs.push(t);
        }
      }
      const dtMs = rng.chance(1, 25) ? NONCE_AGE_MS_MAX + rng.int(5_000) : 1 + rng.int(3_000);
      // Now and then, one the pool refused or dropped as stale: the block must
      // refuse it alike (unless its block's later time makes it stale otherwise).
      if (refusedStale.length > 0 && rng.chance(1, 3)) {
        const { t, code } = refusedStale.splice(rng.int(refusedStale.length), 1)[0]!;
        const now = chain.timeMs;
        const same = chain.staleCode(t.tx) === code;
        chain.timeMs = h.timeMs + dtMs;
        const sameThen = chain.staleCode(t.tx) === code;
        chain.timeMs = now;
        if (!txs.includes(t) && same && sameThen) {
          txs.push(t);
          mustRefuse.set(t, code);
          stats.refusedAsBlock++;
        }
      }
      commitBlock(txs, dtMs);
      if (rng.chance(3, 4)) {
        await pool.recheck((tx) => app.staleCodeOf(tx), 1 + rng.int(5));
        ref.recheck();
      }
    } else if (roll === 8) {
      await pool.recheck((tx) => app.staleCodeOf(tx), 1 + rng.int(5));
      ref.recheck();
    } else {
      // Clients' transactions to gossip again: only clients', only held ones.
      for (const e of pool.regossipDue(1 + rng.int(5))) {
        assert.equal(e.from, null, 'only clients’ transactions are gossiped again');
        assert.ok(pool.has(e.hash), 'only held transactions are gossiped again');
      }
    }

    // The drops told, in order, with their codes; then everything the pool holds, in order.
    assert.deepEqual(
      dropped.map((d) => ({ hash: d.hash, code: d.code })),
      ref.drops,
      `seed ${seed} step ${step}: drops`,
    );
    for (const d of dropped) {
      bump(stats.drops, d.code);
      assert.ok(live.delete(d.hash), `seed ${seed}: ${d.hash} dropped while not held`);
      if (d.code !== 'Evicted') {
        refusedStale.push({ t: made.find((t) => t.hash === d.hash)!, code: d.code });
      }
    }
    dropped.length = 0;
    ref.drops.length = 0;
    // Reported by source, each source's in arrival order.
    for (const from of [null, ...PEERS]) {
      assert.deepEqual(
        gossiped.filter((g) => g.from === from),
        ref.admitted.filter((g) => g.from === from),
        `seed ${seed} step ${step}: admissions reported for ${from ?? 'clients'}`,
      );
    }
    assert.equal(gossiped.length, ref.admitted.length);
    gossiped.length = 0;
    ref.admitted.length = 0;
    const held = pool.reap(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
    const heldHashes = held.map((b) => toHex(sha256(b)));
    assert.deepEqual(
      heldHashes,
      ref.entries.map((e) => e.t.hash),
      `seed ${seed} step ${step}: the pool's content in proposal order`,
    );
    // Nothing admitted is lost: held, committed, or told dropped.
    assert.deepEqual(
      [...live].sort(),
      [...heldHashes].sort(),
      `seed ${seed} step ${step}: held = admitted − committed − dropped`,
    );
    assertLimits(pool, held, seed, step);
    for (const hash of heldHashes) {
      assert.ok(!ref.committed.has(hash), 'a committed transaction is never held, nor proposed');
    }
    // A proposal within bounds is a prefix of the pool's order within them.
    const txsMax = rng.int(10);
    const bytesMax = rng.int(3_000);
    const perAccountMax = 1 + rng.int(LIMITS.perAccountMax);
    assert.deepEqual(
      pool.reap(txsMax, bytesMax, perAccountMax).map((b) => toHex(sha256(b))),
      ref.reap(txsMax, bytesMax, perAccountMax),
      `seed ${seed} step ${step}: reap(${txsMax}, ${bytesMax}, ${perAccountMax})`,
    );
    const proposal = app.prepareProposal(1, 0, held);
    assert.ok(
      proposal.length <= BLOCK_TXS_MAX &&
        proposal.reduce((n, b) => n + b.length, 0) <= BLOCK_TX_BYTES_MAX,
      'a proposal keeps the block limits',
    );
  }
}

function assertLimits(pool: Mempool, held: readonly Uint8Array[], seed: number, step: number) {
  const where = `seed ${seed} step ${step}`;
  assert.ok(pool.size <= LIMITS.txsMax, `${where}: ${pool.size} transactions held`);
  const bytes = held.reduce((n, b) => n + b.length, 0);
  assert.equal(pool.bytes, bytes, `${where}: the bytes counted are the bytes held`);
  assert.ok(bytes <= LIMITS.bytesMax, `${where}: ${bytes} bytes held`);
  const perAccount = new Map<string, number>();
  const perPeer = new Map<string, { txs: number; bytes: number }>();
  for (const b of held) {
    const e = pool.lookup(b);
    assert.ok(
      e !== undefined && bytesEqual(e.bytes, b),
      `${where}: a held entry is found by its bytes`,
    );
    perAccount.set(e.account, (perAccount.get(e.account) ?? 0) + 1);
    if (e.from !== null) {
      const share = perPeer.get(e.from) ?? { txs: 0, bytes: 0 };
      share.txs++;
      share.bytes += b.length;
      perPeer.set(e.from, share);
    }
  }
  for (const [account, n] of perAccount) {
    assert.ok(n <= LIMITS.perAccountMax, `${where}: ${n} held for ${account}`);
  }
  for (const [peer, share] of perPeer) {
    assert.ok(
      share.txs <= LIMITS.perPeerTxsMax && share.bytes <= LIMITS.perPeerBytesMax,
      `${where}: ${peer} holds ${share.txs} transactions, ${share.bytes} bytes`,
    );
  }
  // The bookkeeping holds what is held and nothing else (memory stays bounded).
  const inner = pool as unknown as {
    perAccount: Map<string, number>;
    perPeer: Map<string, { bytes: number; hashes: Set<string> }>;
    byTail: Map<number, MempoolEntry>;
    pendingHashes: Set<string>;
    pendingPerPeer: Map<string, unknown>;
    pendingGossip: { txs: number; bytes: number };
  };
  // (Maps compare without regard to order.)
  assert.deepEqual(inner.perAccount, perAccount, where);
  assert.deepEqual(
    new Map([...inner.perPeer].map(([p, s]) => [p, { txs: s.hashes.size, bytes: s.bytes }])),
    perPeer,
    where,
  );
  assert.ok(inner.byTail.size <= pool.size, `${where}: the tail index holds held entries only`);
  assert.equal(inner.pendingHashes.size, 0, `${where}: nothing waits for a check between steps`);
  assert.equal(inner.pendingPerPeer.size, 0, where);
  assert.deepEqual(inner.pendingGossip, { txs: 0, bytes: 0 }, where);
}

test('the mempool equals the reference model: answers, content and order, drops, limits, blocks', async () => {
  const stats: Stats = {
    answers: new Map(),
    blockCodes: new Map(),
    drops: new Map(),
    inFlightTurns: 0,
    refusedAsBlock: 0,
  };
  for (let seed = 1; seed <= 6; seed++) await run(seed, 180, stats);
  const answers = [...stats.answers.keys()];
  for (const code of [
    'ok',
    'DuplicateTx',
    'BadSignature',
    'Malformed',
    'Oversize',
    'WrongChain',
    'StaleNonce',
    'FutureNonce',
    'DuplicateNonce',
    'Expired',
    'MempoolAccountFull',
    'MempoolPeerFull',
    'MempoolFull',
    'MempoolBusy',
  ]) {
    assert.ok(answers.includes(code), `no ${code} answer in the flows: ${answers.join(' ')}`);
  }
  for (const code of ['Evicted', 'DuplicateNonce', 'StaleNonce', 'Expired']) {
    assert.ok((stats.drops.get(code) ?? 0) > 0, `no drop ${code}: ${[...stats.drops.keys()]}`);
  }
  for (const code of [
    'ok',
    'DuplicateNonce',
    'StaleNonce',
    'FutureNonce',
    'Expired',
    'NotPermitted',
  ]) {
    assert.ok(
      stats.blockCodes.has(code),
      `no block result ${code}: ${[...stats.blockCodes.keys()]}`,
    );
  }
  assert.ok(stats.inFlightTurns > 20, 'submissions arrived while a batch was being checked');
  assert.ok(stats.refusedAsBlock > 10, `only ${stats.refusedAsBlock} refused ones put in blocks`);
});

test("a proposal takes at most a nonce window's worth of one account: a bot's burst of orders and cancels, signed in order, loses none to StaleNonce", async () => {
  const { h, signatures, app } = exchangeApp();
  const pool = new Mempool({
    chainId: CHAIN,
    verifyBatch: async (items) => items.map((i) => verifyRaw(i.publicKey, i.message, i.signature)),
    signatures,
    staleCodeOf: (tx) => app.staleCodeOf(tx),
  });
  const key = keyOf('burst');
  const bot: Trader = { key, account: addressOf(key.publicKey), hex: '', agent: null };
  const open = signed(bot, key, T0, { kind: 'faucet', amountQuote: 1_000_000n * USDC });
  assert.ok(h.block([open.tx], T0).results[0]!.ok, 'the account is open');
  // One bot's burst: an order and a cancel in turn, each signed after the one
  // before (nonces rise), all waiting in the pool at once. The exchange runs a
  // block's cancels first; with more than a window's worth of its transactions
  // in one block, its later cancels would fill the window above its orders.
  const burst = Array.from({ length: 3 * NONCE_WINDOW }, (_, i) =>
    signed(
      bot,
      key,
      T0 + 1 + i,
      i % 2 === 0
        ? { ...limitBuy(400_000 + i) }
        : { kind: 'cancel', instrument: 'BTC-PERPETUAL', orderId: 1 },
    ),
  );
  const admitted = await Promise.all(burst.map((t) => pool.add(t.bytes)));
  assert.ok(
    admitted.every((r) => r.ok),
    'the burst is admitted',
  );
  const codes = new Map<string, number>();
  let blocks = 0;
  while (pool.size > 0) {
    const proposal = app.prepareProposal(1, 0, pool.reap(BLOCK_TXS_MAX, BLOCK_TX_BYTES_MAX));
    assert.ok(proposal.length <= NONCE_WINDOW, `${proposal.length} of one account in a block`);
    const txs = proposal.map((bytes) => pool.lookup(bytes)!);
    const result = h.block(txs.map((e) => e.tx));
    for (const r of result.results) bump(codes, r.ok ? 'ok' : (r.code ?? 'refused'));
    pool.removeCommitted(txs.map((e) => e.hash));
    blocks++;
  }
  assert.deepEqual([...codes], [['ok', 3 * NONCE_WINDOW]], 'every transaction of the burst ran');
  assert.equal(blocks, 3);
});

function limitBuy(priceTicks: number): Action {
  return {
    kind: 'placeOrder',
    instrument: 'BTC-PERPETUAL',
    side: 'buy',
    type: 'limit',
    priceTicks,
    sizeLots: 1,
    timeInForce: 'GTC',
    reduceOnly: false,
    stp: 'cancelResting',
  };
}
