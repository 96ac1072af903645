// A small deterministic harness for the consensus core: N replicas, a queue of
// messages delivered in a seeded order at virtual times, a write-ahead log per
// replica whose unsynced tail a crash may lose, a block store, and a trivial
// application. The simulator (src/sim) builds a richer one; this one is for
// the core's own tests.

import { Writer, decode, encode } from '../../src/codec/wire.ts';
import { keyPairFromSeed, sha256, sign, verify } from '../../src/crypto/index.ts';
import { bytesEqual, toHex, utf8 } from '../../src/lib/bytes.ts';
import { Prng } from '../../src/lib/prng.ts';
import { committedBlockCodec, messageCodec, voteSignBytes } from '../../src/consensus/codec.ts';
import { SIGN_KIND_CONSENSUS } from '../../src/consensus/ports.ts';
import { Replica, makeEvidence } from '../../src/consensus/replica.ts';
import type {
  Application,
  ConsensusSignKind,
  Signer,
  TimeoutConfig,
  Verifier,
} from '../../src/consensus/ports.ts';
import type {
  Block,
  BlockResult,
  CommitCertificate,
  CommittedBlock,
  DuplicateVoteEvidence,
  Effect,
  Genesis,
  Input,
  Misbehavior,
  ValidatorUpdate,
  Vote,
} from '../../src/consensus/types.ts';
import { VOTE_TYPE } from '../../src/consensus/types.ts';

export const CHAIN_ID = 'zomma-test';

export const FAST_TIMEOUTS: TimeoutConfig = {
  proposeMs: 300,
  prevoteMs: 100,
  precommitMs: 100,
  deltaMs: 50,
  maxMs: 2_000,
};

// --- keys ---------------------------------------------------------------------

export interface TestKey {
  readonly publicKey: Uint8Array;
  readonly signer: Signer;
}

/**
 * Fake signatures for long runs (a keyed hash: fast, deterministic, and
 * unforgeable only inside tests), real Ed25519 for the rest. The core sees
 * only the ports either way.
 */
export class FakeCrypto implements Verifier {
  private readonly secrets = new Map<string, Uint8Array>();

  key(index: number): TestKey {
    const secret = sha256(utf8(`secret-${index}`));
    const publicKey = sha256(utf8('public'), secret);
    this.secrets.set(toHex(publicKey), secret);
    return {
      publicKey,
      signer: { publicKey, sign: (kind, message) => fakeSign(secret, kind, message) },
    };
  }

  verify(
    publicKey: Uint8Array,
    kind: ConsensusSignKind,
    message: Uint8Array,
    signature: Uint8Array,
  ) {
    const secret = this.secrets.get(toHex(publicKey));
    if (secret === undefined || signature.length !== 64) return false;
    return bytesEqual(fakeSign(secret, kind, message), signature);
  }
}

const CHAIN_ID_BYTES = utf8(CHAIN_ID);

function fakeSign(secret: Uint8Array, kind: number, message: Uint8Array): Uint8Array {
  const a = sha256(secret, CHAIN_ID_BYTES, new Uint8Array([kind]), message);
  const out = new Uint8Array(64);
  out.set(a, 0);
  out.set(sha256(a), 32);
  return out;
}

export class Ed25519Crypto implements Verifier {
  private readonly memo = new Map<string, boolean>();

  key(index: number): TestKey {
    const seed = sha256(utf8(`seed-${index}`));
    const pair = keyPairFromSeed(seed);
    return {
      publicKey: pair.publicKey,
      signer: {
        publicKey: pair.publicKey,
        sign: (kind, message) => sign(pair, CHAIN_ID, kind, message),
      },
    };
  }

  /** Memoized, as the simulator does: every replica checks the same signatures. */
  verify(
    publicKey: Uint8Array,
    kind: ConsensusSignKind,
    message: Uint8Array,
    signature: Uint8Array,
  ): boolean {
    const key = `${toHex(signature)}${toHex(publicKey)}${kind}${toHex(message)}`;
    let ok = this.memo.get(key);
    if (ok === undefined) {
      ok = verify(publicKey, CHAIN_ID, kind, message, signature) === true;
      this.memo.set(key, ok);
    }
    return ok;
  }
}

// --- the application ----------------------------------------------------------

/** A trivial application: its state is a hash chain of the blocks it executed. */
export class TestApp implements Application {
  appHash: Uint8Array;
  height = 0;
  readonly blocks: Block[] = [];
  readonly results = new Map<number, BlockResult>();
  /** Validator updates to return when executing a height. */
  readonly updatesAt = new Map<number, ValidatorUpdate[]>();
  /** Heights whose proposals this app rejects (processProposal). */
  rejectProposals: ((block: Block) => boolean) | null = null;
  /** Jail each offender of committed evidence once (power 0), as the exchange does. */
  jailOffenders = false;
  readonly jailed = new Set<string>();
  txCounter = 0;

  constructor(
    genesisAppHash: Uint8Array,
    private readonly name: string,
    private readonly txsPerBlock = 1,
  ) {
    this.appHash = genesisAppHash;
  }

  prepareProposal(height: number, round: number): Uint8Array[] {
    const txs: Uint8Array[] = [];
    for (let i = 0; i < this.txsPerBlock; i++) {
      txs.push(utf8(`tx ${height}/${round} from ${this.name} #${this.txCounter++}`));
    }
    return txs;
  }

  processProposal(block: Block): boolean {
    return this.rejectProposals === null || !this.rejectProposals(block);
  }

  extendVote(height: number, _round: number, _blockHash: Uint8Array): Uint8Array {
    return utf8(`ext ${this.name} ${height}`);
  }

  verifyVoteExtension(vote: { extension: Uint8Array; height: number }): boolean {
    const e = vote.extension;
    return e.length >= 4 && e[0] === 0x65 && e[1] === 0x78 && e[2] === 0x74 && e[3] === 0x20; // 'ext '
  }

  finalizeBlock(
    block: Block,
    _commit: CommitCertificate,
    misbehavior: readonly Misbehavior[] = [],
  ): BlockResult {
    const h = block.header.height;
    const done = this.results.get(h);
    if (done !== undefined) return done; // executed before a restart: the app is durable
    if (h !== this.height + 1) throw new Error(`app at ${this.height} asked to execute ${h}`);
    this.appHash = sha256(
      this.appHash,
      encode(messageCodec, { kind: 'blockRequest', fromHeight: h, count: 1 }),
      ...block.txs,
    );
    this.height = h;
    this.blocks.push(block);
    const validatorUpdates = [...(this.updatesAt.get(h) ?? [])];
    for (const m of this.jailOffenders ? misbehavior : []) {
      const key = toHex(m.publicKey);
      if (this.jailed.has(key)) continue;
      this.jailed.add(key);
      validatorUpdates.push({ publicKey: m.publicKey, power: 0 });
    }
    const result = { appHash: this.appHash, validatorUpdates };
    this.results.set(h, result);
    return result;
  }

  commit(): void {}
}

// --- the network ----------------------------------------------------------------

type Event =
  | { kind: 'deliver'; to: number; from: number; bytes: Uint8Array }
  | { kind: 'input'; to: number; input: Input; incarnation: number };

interface QueueEntry {
  atMs: number;
  seq: number;
  event: Event;
}

export interface NodeState {
  readonly index: number;
  replica: Replica;
  readonly app: TestApp;
  readonly store: Map<number, CommittedBlock>;
  readonly wal: Uint8Array[];
  syncedLength: number;
  up: boolean;
  incarnation: number;
  /** Heights this node saw committed, with the block hash. */
  readonly committed: Map<number, string>;
  topCommitted: number;
  readonly evidenceSeen: DuplicateVoteEvidence[];
  effectsDone: number;
}

export interface HarnessOptions {
  readonly n: number;
  readonly seed: number;
  readonly powers?: readonly number[];
  readonly crypto?: 'fake' | 'ed25519';
  readonly latencyMaxMs?: number;
  readonly timeouts?: TimeoutConfig;
  /** Extra validators' keys (for joining later). */
  readonly spareKeys?: number;
  /** Transactions each proposal carries (default 1; 0 for empty blocks). */
  readonly txsPerBlock?: number;
  /** Share one memo of signature checks across replicas, as the simulator does. */
  readonly memoizeVerifier?: boolean;
  /** Decode every released message to check for double signs (default true; profiling turns it off). */
  readonly checkReleased?: boolean;
  /** Drop what precedes each synced checkpoint, as the node's WAL does (default false). */
  readonly compactWal?: boolean;
  /** Committed blocks each node keeps to serve catch-up (default: all). */
  readonly storeHeightsMax?: number;
  /** Whether the block store tells a block's size without loading it, as the node's does (default true). */
  readonly sizedStore?: boolean;
  /** The replicas' double-sign watch (default: the replica's). */
  readonly doubleSignWatchHeights?: number;
  /** The replicas' catch-up serving budget shared by all peers (default: the replica's). */
  readonly catchupServeTotalBytesPerS?: number;
  /**
   * Name each node to the others by its key, as the transport does (so a
   * replica counts its peers as validators), rather than `p<index>` (default false).
   */
  readonly peersByKey?: boolean;
}

/** The first byte of a checkpoint WAL record (WAL_TAG in src/consensus/codec.ts). */
const CHECKPOINT_TAG = 0;

/**
 * Remembers each check by its exact bytes, as the simulator's verifier does:
 * every replica checks the same signature over the same bytes, and the
 * process does that work once.
 */
export class MemoVerifier implements Verifier {
  private readonly memo = new Map<number, MemoEntry>();
  calls = 0;
  computed = 0;

  constructor(private readonly inner: Verifier) {}

  verify(
    publicKey: Uint8Array,
    kind: ConsensusSignKind,
    message: Uint8Array,
    signature: Uint8Array,
  ): boolean {
    this.calls++;
    // 48 bits of the signature name the entry; its bytes are compared, never trusted.
    const s = signature;
    const id =
      s.length < 6
        ? -1
        : (s[0]! | (s[1]! << 8) | (s[2]! << 16)) * 0x1_000_000 +
          (s[3]! | (s[4]! << 8) | (s[5]! << 16));
    const hit = this.memo.get(id);
    if (
      hit !== undefined &&
      hit.kind === kind &&
      bytesEqual(hit.signature, signature) &&
      bytesEqual(hit.publicKey, publicKey) &&
      bytesEqual(hit.message, message)
    ) {
      return hit.ok;
    }
    this.computed++;
    const ok = this.inner.verify(publicKey, kind, message, signature);
    if (this.memo.size >= MEMO_ENTRIES_MAX) this.memo.clear();
    this.memo.set(id, {
      kind,
      signature: signature.slice(),
      publicKey: publicKey.slice(),
      message: message.slice(),
      ok,
    });
    return ok;
  }
}

/** Checks remembered before the memo starts over (long runs stay within memory). */
const MEMO_ENTRIES_MAX = 100_000;

interface MemoEntry {
  readonly kind: number;
  readonly signature: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly message: Uint8Array;
  readonly ok: boolean;
}

export class Harness {
  readonly nodes: NodeState[] = [];
  readonly keys: TestKey[] = [];
  readonly genesis: Genesis;
  readonly verifier: Verifier;
  readonly prng: Prng;
  nowMs = 1_000_000;
  private seq = 0;
  private queue: QueueEntry[] = [];
  /** Called after each effect a node performs; a test may crash the node there. */
  afterEffect: ((node: NodeState, effect: Effect) => void) | null = null;
  /** Called for each message before delivery; return false to drop it. */
  filter: ((from: number, to: number, bytes: Uint8Array) => boolean) | null = null;
  /** Every vote and proposal each validator released, for the double-sign check. */
  readonly released = new Map<string, string>();
  doubleSigns = 0;
  private readonly options: HarnessOptions;
  /** Each node's name to the others, and its index by that name. */
  readonly peerNames: string[] = [];
  private readonly peerIndex = new Map<string, number>();

  constructor(options: HarnessOptions) {
    this.options = options;
    this.prng = new Prng(options.seed);
    const crypto = options.crypto === 'ed25519' ? new Ed25519Crypto() : new FakeCrypto();
    this.verifier = options.memoizeVerifier === true ? new MemoVerifier(crypto) : crypto;
    for (let i = 0; i < options.n + (options.spareKeys ?? 0); i++) this.keys.push(crypto.key(i));
    for (let i = 0; i < options.n; i++) {
      const name = options.peersByKey === true ? toHex(this.keys[i]!.publicKey) : `p${i}`;
      this.peerNames.push(name);
      this.peerIndex.set(name, i);
    }
    this.genesis = {
      chainId: CHAIN_ID,
      genesisTimeMs: this.nowMs,
      validators: this.keys.slice(0, options.n).map((k, i) => ({
        publicKey: k.publicKey,
        power: options.powers?.[i] ?? 10,
      })),
      appHash: sha256(utf8('genesis')),
    };
    for (let i = 0; i < options.n; i++) {
      const app = new TestApp(this.genesis.appHash, `v${i}`, options.txsPerBlock ?? 1);
      const node: NodeState = {
        index: i,
        replica: null as unknown as Replica,
        app,
        store: new Map(),
        wal: [],
        syncedLength: 0,
        up: true,
        incarnation: 0,
        committed: new Map(),
        topCommitted: 0,
        evidenceSeen: [],
        effectsDone: 0,
      };
      node.replica = this.makeReplica(node);
      this.nodes.push(node);
    }
  }

  private makeReplica(node: NodeState): Replica {
    return new Replica(
      {
        genesis: this.genesis,
        timeouts: this.options.timeouts ?? FAST_TIMEOUTS,
        ...(this.options.doubleSignWatchHeights === undefined
          ? {}
          : { doubleSignWatchHeights: this.options.doubleSignWatchHeights }),
        ...(this.options.catchupServeTotalBytesPerS === undefined
          ? {}
          : { catchupServeTotalBytesPerS: this.options.catchupServeTotalBytesPerS }),
      },
      {
        signer: this.keys[node.index]!.signer,
        verifier: this.verifier,
        app: node.app,
        blocks: {
          load: (h) => node.store.get(h) ?? null,
          ...(this.options.sizedStore === false
            ? {}
            : {
                sizeOf: (h: number) => {
                  const committed = node.store.get(h);
                  return committed === undefined
                    ? null
                    : encode(committedBlockCodec, committed).length;
                },
              }),
        },
      },
    );
  }

  startAll(): void {
    for (const node of this.nodes) this.perform(node, node.replica.start([], this.nowMs));
  }

  /** Crashes a node: unsynced WAL records are lost (keepUnsynced of them survive), pending inputs die. */
  crash(index: number, keepUnsynced = 0): void {
    const node = this.nodes[index]!;
    node.up = false;
    node.incarnation++;
    const keep = Math.min(node.wal.length, node.syncedLength + keepUnsynced);
    node.wal.length = keep;
    node.syncedLength = keep;
  }

  restart(index: number): void {
    const node = this.nodes[index]!;
    node.up = true;
    node.incarnation++;
    node.replica = this.makeReplica(node);
    this.perform(node, node.replica.start(node.wal.slice(), this.nowMs));
  }

  /** Delivers events until `until` says stop or the time budget runs out. Returns whether it stopped by `until`. */
  run(until: () => boolean, budgetMs = 600_000): boolean {
    const end = this.nowMs + budgetMs;
    while (!until()) {
      const next = this.pop();
      if (next === undefined || next.atMs > end) return false;
      this.nowMs = next.atMs;
      this.fire(next.event);
    }
    return true;
  }

  minCommitted(indices?: readonly number[]): number {
    let min = Infinity;
    for (const node of this.nodes) {
      if (indices !== undefined && !indices.includes(node.index)) continue;
      min = Math.min(min, node.topCommitted);
    }
    return min;
  }

  height(index: number): number {
    return this.nodes[index]!.app.height;
  }

  private push(atMs: number, event: Event): void {
    const entry = { atMs, seq: this.seq++, event };
    // A binary heap keyed by (atMs, seq): the seeded latencies decide the order.
    const q = this.queue;
    q.push(entry);
    let i = q.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(q[i]!, q[parent]!)) break;
      [q[i], q[parent]] = [q[parent]!, q[i]!];
      i = parent;
    }
  }

  private pop(): QueueEntry | undefined {
    const q = this.queue;
    if (q.length === 0) return undefined;
    const top = q[0]!;
    const last = q.pop()!;
    if (q.length > 0) {
      q[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < q.length && before(q[l]!, q[m]!)) m = l;
        if (r < q.length && before(q[r]!, q[m]!)) m = r;
        if (m === i) break;
        [q[i], q[m]] = [q[m]!, q[i]!];
        i = m;
      }
    }
    return top;
  }

  private latency(): number {
    return 1 + this.prng.int(this.options.latencyMaxMs ?? 10);
  }

  private fire(event: Event): void {
    const node = this.nodes[event.to]!;
    if (!node.up) return;
    if (event.kind === 'deliver') {
      this.perform(
        node,
        node.replica.onMessage(this.peerNames[event.from]!, event.bytes, this.nowMs),
      );
    } else if (event.incarnation === node.incarnation) {
      this.perform(node, node.replica.handle({ ...event.input, nowMs: this.nowMs } as Input));
    }
  }

  send(from: number, to: number, bytes: Uint8Array): void {
    if (this.filter !== null && !this.filter(from, to, bytes)) return;
    this.push(this.nowMs + this.latency(), { kind: 'deliver', to, from, bytes });
  }

  private input(node: NodeState, input: Input, delayMs = 0): void {
    this.push(this.nowMs + delayMs, {
      kind: 'input',
      to: node.index,
      input,
      incarnation: node.incarnation,
    });
  }

  private perform(node: NodeState, effects: readonly Effect[]): void {
    const incarnation = node.incarnation;
    for (const effect of effects) {
      if (!node.up || node.incarnation !== incarnation) return;
      this.performOne(node, effect);
      node.effectsDone++;
      this.afterEffect?.(node, effect);
    }
  }

  private performOne(node: NodeState, effect: Effect): void {
    switch (effect.kind) {
      case 'persist':
        node.wal.push(effect.record);
        if (!effect.sync) return;
        if (this.options.compactWal === true && effect.record[0] === CHECKPOINT_TAG) {
          node.wal.splice(0, node.wal.length - 1);
        }
        node.syncedLength = node.wal.length;
        return;
      case 'send': {
        this.noteReleased(node, effect.bytes);
        const to = this.peerIndex.get(effect.to);
        if (to === undefined) throw new Error(`node ${node.index} sent to ${effect.to}, no node`);
        this.send(node.index, to, effect.bytes);
        return;
      }
      case 'broadcast':
        this.noteReleased(node, effect.bytes);
        for (const other of this.nodes)
          if (other !== node) this.send(node.index, other.index, effect.bytes);
        return;
      case 'scheduleTimeout':
        this.input(node, { kind: 'timeout', timeout: effect.timeout, nowMs: 0 }, effect.delayMs);
        return;
      case 'buildProposal': {
        const txs = node.app.prepareProposal(effect.height, effect.round);
        this.input(node, {
          kind: 'proposalBuilt',
          height: effect.height,
          round: effect.round,
          txs,
          nowMs: 0,
        });
        return;
      }
      case 'finalizeBlock': {
        const h = effect.block.header.height;
        node.store.set(h, { block: effect.block, commit: effect.commit });
        const keep = this.options.storeHeightsMax;
        if (keep !== undefined) node.store.delete(h - keep);
        const result = node.app.finalizeBlock(effect.block, effect.commit, effect.misbehavior);
        node.app.commit();
        this.input(node, { kind: 'blockExecuted', height: h, result, nowMs: 0 });
        return;
      }
      case 'committed': {
        const hash = toHex(effect.blockHash);
        const before = node.committed.get(effect.height);
        if (before !== undefined && before !== hash)
          throw new Error(`node ${node.index} committed two blocks at ${effect.height}`);
        node.committed.set(effect.height, hash);
        if (effect.height > node.topCommitted) node.topCommitted = effect.height;
        return;
      }
      case 'evidenceSeen':
        node.evidenceSeen.push(effect.evidence);
        return;
    }
  }

  /** Records every signed vote and proposal a node lets out; two different values for one (h, r, type) is a double sign. */
  private noteReleased(node: NodeState, bytes: Uint8Array): void {
    if (this.options.checkReleased === false) return;
    const message = decode(messageCodec, bytes);
    let key: string;
    let value: string;
    if (message.kind === 'vote') {
      const v = message.vote;
      key = `${node.index}/${v.height}/${v.round}/${v.type}`;
      value = v.blockHash === null ? 'nil' : toHex(v.blockHash);
    } else if (message.kind === 'proposal') {
      const p = message.proposal;
      key = `${node.index}/${p.height}/${p.round}/proposal`;
      value = toHex(p.blockHash);
    } else {
      return;
    }
    const before = this.released.get(key);
    if (before === undefined) this.released.set(key, value);
    else if (before !== value) this.doubleSigns++;
  }
}

function before(a: QueueEntry, b: QueueEntry): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
}

/**
 * Two prevotes by validator `signer` (a harness key) at `height` and `round` (0 by default), for
 * two values: evidence. `index`: the signer's place in the set of `height`
 * (by default its place in node 0's current set).
 */
export function equivocation(
  h: Harness,
  signer: number,
  height: number,
  index = h.nodes[0]!.replica.validators.indexOf(h.keys[signer]!.publicKey),
  round = 0,
): DuplicateVoteEvidence {
  const writer = new Writer(256);
  const prevote = (blockHash: Uint8Array): Vote => ({
    type: VOTE_TYPE.prevote,
    height,
    round,
    blockHash,
    validatorIndex: index,
    timestampMs: 0,
    extension: new Uint8Array(0),
    signature: h.keys[signer]!.signer.sign(
      SIGN_KIND_CONSENSUS.prevote,
      voteSignBytes(writer, VOTE_TYPE.prevote, height, round, blockHash, 0, new Uint8Array(0)),
    ),
  });
  return makeEvidence(prevote(sha256(utf8('a'))), prevote(sha256(utf8('b'))));
}

/** The peers a block request in `effects` went to. */
export function blockRequestsTo(effects: readonly Effect[]): string[] {
  return effects.flatMap((e) =>
    e.kind === 'send' && decode(messageCodec, e.bytes).kind === 'blockRequest' ? [e.to] : [],
  );
}

/**
 * Four replicas of which the fourth hears nothing and stays at height 1
 * while the others go on, and a vote of height 8 (a claim to be ahead any
 * peer name may carry to it).
 */
export function laggingReplica(): { h: Harness; ahead: Uint8Array } {
  const h = new Harness({ n: 4, seed: 33 });
  let ahead: Uint8Array | null = null;
  h.filter = (from, to, bytes) => {
    if (from === 1 && to === 0) {
      const m = decode(messageCodec, bytes);
      if (m.kind === 'vote' && m.vote.height === 8) ahead = bytes;
    }
    return from !== 3 && to !== 3;
  };
  h.startAll();
  if (!h.run(() => ahead !== null)) throw new Error('the others did not reach height 8');
  if (h.nodes[3]!.replica.height !== 1) throw new Error('the fourth replica moved');
  return { h, ahead: ahead! };
}
