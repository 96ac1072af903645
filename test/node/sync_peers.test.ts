// State sync against peers that lie: a chain made once by the consensus
// harness (seeded, fake signatures), peers that answer the sync channel from
// it (some honestly, some not), and a virtual clock whose timers fire only
// when every answer in flight has been handled. No sockets, no wall clock.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { encode } from '../../src/codec/wire.ts';
import type { CommittedBlock, PeerId } from '../../src/consensus/index.ts';
import { blockHashOf, committedBlockCodec } from '../../src/consensus/index.ts';
import { sha256 } from '../../src/crypto/index.ts';
import { concatBytes, toHex, utf8 } from '../../src/lib/bytes.ts';
import { Prng } from '../../src/lib/prng.ts';
import {
  SNAPSHOT_BYTES_MAX,
  SYNC_ATTEMPTS_MAX,
  SYNC_BUSY_RETRY_MS_MAX,
  SYNC_BUSY_RETRY_MS_MIN,
  SYNC_BUSY_WAIT_MS_MAX,
  SYNC_CANDIDATES_MAX,
  SYNC_CANDIDATES_PER_PEER_MAX,
  SYNC_CHUNK_BYTES,
  SYNC_DISCOVERY_MS,
  SYNC_DISCOVERY_WARN_MS,
  SYNC_MESSAGE_BYTES_MAX,
  SYNC_OFFERS_MAX,
  SYNC_RESPONSE_TIMEOUT_MS,
} from '../../src/lib/limits.ts';
import type { Clock } from '../../src/node/clock.ts';
import { CHANNEL, frame, unframe } from '../../src/node/framing.ts';
import { silentLog } from '../../src/node/log.ts';
import type { FrameHandler, PeerNetwork } from '../../src/node/network.ts';
import type {
  ReserveBytes,
  ResizableBuffer,
  RestoredState,
  StateSyncOptions,
  SyncedState,
} from '../../src/node/sync.ts';
import { lastCheckpoint } from '../../src/node/loop.ts';
import { openStorage } from '../../src/node/storage/index.ts';
import type { Storage } from '../../src/node/storage/index.ts';
import {
  GrowingBytes,
  StateSyncer,
  SyncError,
  candidatesOf,
  isEmptyStorage,
  offerBudgetMs,
  reserveBytes,
  saveSynced,
  verifyBlocks,
  verifyTrustedChain,
} from '../../src/node/sync.ts';
import type { SnapshotOffer, SyncMessage } from '../../src/node/sync_messages.ts';
import {
  SNAPSHOT_FORMAT,
  chunkBytesOf,
  chunkCountOf,
  decodeSyncMessage,
  encodeSyncMessage,
} from '../../src/node/sync_messages.ts';
import { SyncServer } from '../../src/node/sync_server.ts';
import type { TrustedBlock } from '../../src/node/sync_trust.ts';
import { Harness } from '../consensus/harness.ts';
import { tempDir } from './helpers.ts';

const TIP = 24;

/** One chain for every test: blocks 1..TIP with certificates, and the appHash after each. */
const chain = (() => {
  const harness = new Harness({ n: 4, seed: 11 });
  harness.startAll();
  assert.ok(
    harness.run(() => harness.minCommitted() >= TIP + 2),
    'the chain reaches its tip',
  );
  const node = harness.nodes[0]!;
  const blocks = new Map<number, CommittedBlock>();
  const appHashes = new Map<number, Uint8Array>();
  for (let h = 1; h <= TIP; h++) {
    blocks.set(h, node.store.get(h)!);
    appHashes.set(h, node.app.results.get(h)!.appHash);
  }
  return { genesis: harness.genesis, verifier: harness.verifier, blocks, appHashes };
})();

/** The test's snapshot format: height (4 bytes), the appHash it restores to, then any padding. */
function snapshotOf(height: number, appHash: Uint8Array, paddingBytes = 0): Uint8Array {
  const head = new Uint8Array(4);
  new DataView(head.buffer).setUint32(0, height);
  const padding = new Uint8Array(paddingBytes).map((_, i) => i % 251);
  return concatBytes(head, appHash, padding);
}

function restore(bytes: Uint8Array): RestoredState {
  if (bytes.length < 36) throw new Error('not a test snapshot');
  const height = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0);
  return { height, appHash: bytes.slice(4, 36), validatorUpdates: [] };
}

const realSnapshot = (h: number) => snapshotOf(h, chain.appHashes.get(h)!);
const fakeSnapshot = (h: number) => snapshotOf(h, sha256(utf8(`fake ${h}`)));

const offers = new WeakMap<Uint8Array, SnapshotOffer>();

/** The offer of a snapshot (kept: the tests hash each snapshot once). */
function offerOf(height: number, bytes: Uint8Array): SnapshotOffer {
  const known = offers.get(bytes);
  if (known !== undefined && known.height === height) return known;
  const offer = hashedOffer(height, bytes);
  offers.set(bytes, offer);
  return offer;
}

function hashedOffer(height: number, bytes: Uint8Array): SnapshotOffer {
  const chunkHashes: Uint8Array[] = [];
  for (let i = 0; i < chunkCountOf(bytes.length); i++) {
    chunkHashes.push(sha256(bytes.subarray(i * SYNC_CHUNK_BYTES, (i + 1) * SYNC_CHUNK_BYTES)));
  }
  return {
    height,
    format: SNAPSHOT_FORMAT,
    sizeBytes: bytes.length,
    chunkHashes,
    snapshotHash: sha256(bytes),
  };
}

/** What a peer serves: snapshots by height, and the block it answers for a height (null: silence). */
interface Peer {
  readonly snapshots: ReadonlyMap<number, Uint8Array>;
  readonly block: (height: number) => CommittedBlock | null;
  /** Virtual time each chunk or block answer takes (0: at once). */
  readonly delayMs?: number;
  /** Answers every block request with `pruned` (claims to hold none). */
  readonly prunesAll?: boolean;
  /** Replaces the answers above: what the peer sends for `message`, given the honest answer. */
  readonly lie?: (message: SyncMessage, honest: SyncMessage | null) => SyncMessage[];
  /** Payloads sent besides, as they are (undecodable, oversized). */
  readonly raw?: (message: SyncMessage) => Uint8Array[];
  /** Virtual time from which the peer is disconnected: nothing reaches it or comes from it. */
  readonly goneAtMs?: number;
}

const honestBlock = (height: number): CommittedBlock | null => chain.blocks.get(height) ?? null;

/** Block `height` with the real header and certificate, and a transaction of the peer's own. */
function forgedBody(height: number): CommittedBlock {
  const real = chain.blocks.get(height)!;
  return { ...real, block: { ...real.block, txs: [utf8('a transfer nobody signed')] } };
}

/** Virtual time: a timer fires only once everything already in flight (microtasks) has run. */
class VirtualClock implements Clock {
  private now = 1_000;
  private seq = 0;
  private readonly timers: { atMs: number; seq: number; fire: () => void; live: boolean }[] = [];
  private scheduled = false;

  nowMs(): number {
    return this.now;
  }

  after(delayMs: number, fire: () => void): () => void {
    const timer = { atMs: this.now + delayMs, seq: this.seq++, fire, live: true };
    this.timers.push(timer);
    this.schedule();
    return () => {
      timer.live = false;
    };
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.fireNext();
    });
  }

  private fireNext(): void {
    const live = this.timers.filter((t) => t.live);
    this.timers.length = 0;
    if (live.length === 0) return;
    live.sort((a, b) => a.atMs - b.atMs || a.seq - b.seq);
    const [first, ...rest] = live;
    this.timers.push(...rest);
    this.now = Math.max(this.now, first!.atMs);
    first!.fire();
    if (this.timers.length > 0) this.schedule();
  }
}

/** The syncing node's network: every request is answered (or not) by the peer's rules, asynchronously. */
class FakePeers implements PeerNetwork {
  private handler: FrameHandler | null = null;
  readonly requests: { peer: PeerId; message: SyncMessage }[] = [];

  constructor(
    private readonly peers: ReadonlyMap<PeerId, Peer>,
    private readonly clock: Clock,
  ) {}

  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  onMessage(handler: FrameHandler): void {
    this.handler = handler;
  }
  peerCount(): number {
    return [...this.peers.values()].filter((p) => !this.gone(p)).length;
  }

  private gone(rules: Peer): boolean {
    return rules.goneAtMs !== undefined && this.clock.nowMs() >= rules.goneAtMs;
  }
  broadcast(bytes: Uint8Array): void {
    for (const peer of this.peers.keys()) this.send(peer, bytes);
  }

  send(peer: PeerId, bytes: Uint8Array): void {
    const message = decodeSyncMessage(unframe(bytes).payload);
    this.requests.push({ peer, message });
    const rules = this.peers.get(peer)!;
    // Best effort, as the transport: a frame to a disconnected peer is dropped.
    if (this.gone(rules)) return;
    const answer = answerOf(rules, message);
    const answers = rules.lie?.(message, answer) ?? (answer === null ? [] : [answer]);
    for (const a of answers) this.deliver(peer, rules, a);
    for (const payload of rules.raw?.(message) ?? []) this.deliverPayload(peer, rules, payload, 0);
  }

  /** A message from `peer`, as if it had sent it unasked. */
  deliver(peer: PeerId, rules: Peer, message: SyncMessage): void {
    const delayMs = message.kind === 'offers' ? 0 : (rules.delayMs ?? 0);
    this.deliverPayload(peer, rules, encodeSyncMessage(message), delayMs);
  }

  private deliverPayload(peer: PeerId, rules: Peer, payload: Uint8Array, delayMs: number): void {
    const reply = frame(CHANNEL.sync, payload);
    const arrive = (): void => {
      if (!this.gone(rules)) this.handler?.(peer, reply);
    };
    if (delayMs > 0) this.clock.after(delayMs, arrive);
    else queueMicrotask(arrive);
  }

  /** The requests of `kind` made of `peer`. */
  asked(peer: PeerId, kind: SyncMessage['kind']): number {
    return this.requests.filter((r) => r.peer === peer && r.message.kind === kind).length;
  }

  /** The heights of the block requests made, in order. */
  blockRequests(): number[] {
    return this.requests.flatMap((r) =>
      r.message.kind === 'blockRequest' ? [r.message.height] : [],
    );
  }
}

function answerOf(peer: Peer, message: SyncMessage): SyncMessage | null {
  switch (message.kind) {
    case 'offersRequest':
      return {
        kind: 'offers',
        offers: [...peer.snapshots].map(([height, bytes]) => offerOf(height, bytes)),
      };
    case 'chunkRequest': {
      const snapshot = peer.snapshots.get(message.height);
      const start = message.index * SYNC_CHUNK_BYTES;
      if (snapshot === undefined || start >= snapshot.length) return null;
      const bytes = snapshot.slice(start, start + SYNC_CHUNK_BYTES);
      return { kind: 'chunk', height: message.height, index: message.index, bytes };
    }
    case 'blockRequest': {
      if (peer.prunesAll === true) {
        return { kind: 'pruned', height: message.height, firstHeight: message.height + 1 };
      }
      const block = peer.block(message.height);
      if (block === null) return null;
      return {
        kind: 'block',
        height: message.height,
        bytes: encode(committedBlockCodec, block),
      };
    }
    default:
      return null;
  }
}

function syncerFor(
  peers: Record<PeerId, Peer>,
  trustedBlock?: TrustedBlock,
  timeoutMs?: number,
  more: Partial<StateSyncOptions> = {},
): { syncer: StateSyncer; network: FakePeers; clock: VirtualClock } {
  const clock = new VirtualClock();
  const network = new FakePeers(new Map(Object.entries(peers)), clock);
  const options: StateSyncOptions = {
    network,
    consensusGenesis: chain.genesis,
    verifier: chain.verifier,
    restore,
    clock,
    ...(trustedBlock !== undefined ? { trustedBlock } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...more,
  };
  const syncer = new StateSyncer(options);
  network.onMessage((peer, bytes) => syncer.onMessage(peer, unframe(bytes).payload));
  return { syncer, network, clock };
}

const trustedTip: TrustedBlock = { height: TIP, hash: blockHashOf(chain.blocks.get(TIP)!.block) };

const honest = (...heights: number[]): Peer => ({
  snapshots: new Map(heights.map((h) => [h, realSnapshot(h)])),
  block: honestBlock,
});

/** Block `height` as synced: the chain's block, with the certificate of it the next block carries. */
function assertStoredBlockIsReal(synced: SyncedState): void {
  const real = encode(committedBlockCodec, {
    block: chain.blocks.get(synced.height)!.block,
    commit: chain.blocks.get(synced.height + 1)!.block.lastCommit!,
  });
  assert.equal(toHex(synced.blockBytes), toHex(real));
}

const refusedWith =
  (code: string) =>
  (e: unknown): boolean =>
    e instanceof SyncError && e.code === code;

for (const path of ['genesis', 'trusted'] as const) {
  const trusted = path === 'trusted' ? trustedTip : undefined;

  test(`${path} path: block h with a body its header does not hash is refused (BlockBodyMismatch), and asked of another peer`, async () => {
    const liar: Peer = {
      snapshots: new Map([[16, realSnapshot(16)]]),
      block: (h) => (h === 16 ? forgedBody(h) : honestBlock(h)),
    };
    const alone = syncerFor({ liar }, trusted);
    await assert.rejects(alone.syncer.run(), refusedWith('BlockBodyMismatch'));
    assert.equal(alone.syncer.stats.chunksFetched, 0, 'refused before any chunk');

    const both = syncerFor({ liar, honest: honest(16) }, trusted);
    const synced = await both.syncer.run();
    assert.equal(synced.height, 16);
    assertStoredBlockIsReal(synced);
  });

  test(`${path} path: block h is stored with the certificate h+1 carries, not the one a peer pairs with it`, async () => {
    const other = chain.blocks.get(15)!.commit;
    const liar: Peer = {
      snapshots: new Map([[16, realSnapshot(16)]]),
      block: (h) => (h === 16 ? { ...chain.blocks.get(h)!, commit: other } : honestBlock(h)),
    };
    const { syncer } = syncerFor({ liar }, trusted);
    assertStoredBlockIsReal(await syncer.run());
  });

  test(`${path} path: one peer offering many fake snapshots above the honest one does not crowd it out`, async () => {
    // Fakes at real heights, with the real blocks: each is refused only once its snapshot is restored.
    const fakes = [22, 21, 20, 19].slice(0, SYNC_OFFERS_MAX);
    const liar: Peer = {
      snapshots: new Map(fakes.map((h) => [h, fakeSnapshot(h)])),
      block: honestBlock,
    };
    const { syncer } = syncerFor({ liar, honest: honest(12) }, trusted);
    const synced = await syncer.run();
    assert.equal(synced.height, 12);
    assert.equal(toHex(synced.appHash), toHex(chain.appHashes.get(12)!));
    assert.equal(syncer.stats.offersRefused, 1, 'the liar cost one try');
    assertStoredBlockIsReal(synced);
  });
}

test('trusted path: a second offer continues the walk down from the trusted block instead of repeating it', async () => {
  const liar: Peer = { snapshots: new Map([[18, fakeSnapshot(18)]]), block: honestBlock };
  const { syncer, network } = syncerFor({ liar, honest: honest(12) }, trustedTip);
  const synced = await syncer.run();
  assert.equal(synced.height, 12);
  assert.equal(syncer.stats.offersRefused, 1);
  const asked = network.blockRequests();
  const expected = Array.from({ length: TIP - 12 + 1 }, (_, i) => TIP - i);
  assert.deepEqual(asked, expected, 'each block from the trusted one down to 12 asked once');
});

test('a peer that echoes an honest offer and then stalls costs one response timeout, not one per request', async () => {
  const staller: Peer = { snapshots: new Map([[12, realSnapshot(12)]]), block: () => null };
  const { syncer, network } = syncerFor({ staller, honest: honest(12) }, trustedTip);
  const synced = await syncer.run();
  assert.equal(synced.height, 12);
  const stalled = network.requests.filter(
    (r) => r.peer === 'staller' && r.message.kind !== 'offersRequest',
  );
  assert.equal(stalled.length, 1, 'asked once, then passed over');
  assert.equal(syncer.stats.retries, 1);
});

test('a node no peer accepts says so while it waits, and its NoSnapshot names the connected peers and why', async () => {
  // What a full node started before the validators were restarted with its key meets.
  const clock = new VirtualClock();
  const network = new FakePeers(new Map(), clock);
  const warnings: string[] = [];
  const errors: string[] = [];
  const log = {
    ...silentLog,
    warn: (_fields: object, message: string) => warnings.push(message),
    error: (_fields: object, message: string) => errors.push(message),
  };
  const timeoutMs = 3 * SYNC_DISCOVERY_WARN_MS + 1;
  const syncer = new StateSyncer({
    network,
    consensusGenesis: chain.genesis,
    verifier: chain.verifier,
    restore,
    clock,
    log,
    timeoutMs,
  });
  await assert.rejects(
    syncer.run(),
    (e: unknown) =>
      e instanceof SyncError &&
      e.code === 'NoSnapshot' &&
      /0 connected, 0 answered/.test(e.message) &&
      /add this node's key to the validators' peers/.test(e.message),
  );
  assert.equal(warnings.length, 3, `one warning every ${SYNC_DISCOVERY_WARN_MS} ms: ${warnings}`);
  for (const w of warnings) assert.match(w, /^state sync: no peer connected yet; /);
  assert.deepEqual(errors, ['state sync failed'], 'logged as every other failure');
});

test('a NoSnapshot names a few of the peers refused for their versions, and counts the rest', async () => {
  // Refusals at a hello prove no key: an address can send many, and its own words.
  const clock = new VirtualClock();
  const network = Object.assign(new FakePeers(new Map(), clock), {
    versionRefusals: () => Array.from({ length: 70 }, (_, i) => `refusal ${i}`),
  });
  const syncer = new StateSyncer({
    network,
    consensusGenesis: chain.genesis,
    verifier: chain.verifier,
    restore,
    clock,
    log: silentLog,
    timeoutMs: 1,
  });
  await assert.rejects(syncer.run(), (e: unknown) => {
    assert.ok(e instanceof SyncError && e.code === 'NoSnapshot');
    assert.match(
      e.message,
      /: peers refused for their versions: refusal 0; refusal 1; refusal 2; refusal 3; and 66 more \(the metrics port's \/status, peersRefused\)$/,
    );
    return true;
  });
});

test('a snapshot of several chunks, from two peers, is put together byte for byte', async () => {
  const bytes = snapshotOf(12, chain.appHashes.get(12)!, 2 * SYNC_CHUNK_BYTES + 100);
  const peer: Peer = { snapshots: new Map([[12, bytes]]), block: honestBlock };
  const { syncer, network } = syncerFor({ a: peer, b: peer });
  const synced = await syncer.run();
  assert.equal(syncer.stats.chunksFetched, 3);
  assert.equal(toHex(sha256(synced.snapshot)), toHex(sha256(bytes)));
  const askedOf = (p: string) =>
    network.requests.filter((r) => r.peer === p && r.message.kind === 'chunkRequest').length;
  assert.ok(askedOf('a') >= 1 && askedOf('b') >= 1, 'the chunks are spread over the providers');
});

test('a body altered in any of its three parts is refused by the pure checks too', () => {
  const h = 10;
  const at = chain.blocks.get(h)!;
  const next = chain.blocks.get(h + 1)!;
  const right = verifyBlocks(chain.genesis, chain.verifier, at, next);
  assert.equal(toHex(right.appHash), toHex(chain.appHashes.get(h)!));
  const other = chain.blocks.get(h - 1)!.block;
  const altered: CommittedBlock[] = [
    forgedBody(h),
    { ...at, block: { ...at.block, lastCommit: other.lastCommit } },
    { ...at, block: { ...at.block, evidence: [], txs: [...at.block.txs, utf8('one more')] } },
  ];
  for (const bad of altered) {
    assert.throws(
      () => verifyBlocks(chain.genesis, chain.verifier, bad, next),
      refusedWith('BlockBodyMismatch'),
    );
    assert.throws(
      () => verifyTrustedChain(chain.genesis, chain.verifier, [bad, next], []),
      refusedWith('BlockBodyMismatch'),
    );
  }
});

test('candidates: each peer its best first, at most SYNC_CANDIDATES_PER_PEER_MAX of any one peer', () => {
  const offer = (h: number, tag: string) => offerOf(h, snapshotOf(h, sha256(utf8(tag))));
  const honestOffers = [offer(100, 'real'), offer(90, 'real')];
  const liarOffers = [offer(500, 'a'), offer(499, 'b'), offer(498, 'c'), offer(497, 'd')];
  const one = candidatesOf([
    { peer: 'liar', offers: liarOffers },
    { peer: 'honest', offers: honestOffers },
  ]);
  assert.deepEqual(
    one.map((c) => [c.offer.height, c.peers]),
    [
      [500, ['liar']],
      [100, ['honest']],
      [499, ['liar']],
    ].slice(0, Math.max(2, SYNC_CANDIDATES_MAX)),
  );
  const perPeer = (peer: string) => one.filter((c) => c.peers.includes(peer)).length;
  assert.ok(perPeer('liar') <= SYNC_CANDIDATES_PER_PEER_MAX);

  // More liars than SYNC_CANDIDATES_MAX: every peer's best is still tried.
  const liars = Array.from({ length: SYNC_CANDIDATES_MAX + 2 }, (_, i) => ({
    peer: `liar${i}`,
    offers: [offer(600 + i, `x${i}`), offer(550 + i, `y${i}`)],
  }));
  const many = candidatesOf([...liars, { peer: 'honest', offers: honestOffers }]);
  assert.equal(many.length, liars.length + 1);
  assert.ok(many.some((c) => c.offer.height === 100));

  // An offer several peers make is one candidate; repeats count once. One more
  // than half of the peers offering make comes first, above a higher one.
  const shared = candidatesOf([
    { peer: 'a', offers: [offer(100, 'real'), offer(100, 'real')] },
    { peer: 'b', offers: [offer(200, 'b'), offer(100, 'real')] },
  ]);
  assert.deepEqual(
    shared.map((c) => [c.offer.height, c.peers]),
    [
      [100, ['a', 'b']],
      [200, ['b']],
    ],
  );
  // Half of the peers offering is not a majority (a peer offering nothing does not count).
  const split = candidatesOf([
    { peer: 'a', offers: [offer(100, 'real')] },
    { peer: 'b', offers: [offer(200, 'b'), offer(100, 'real')] },
    { peer: 'c', offers: [offer(300, 'c')] },
    { peer: 'd', offers: [] },
    { peer: 'e', offers: [offer(400, 'e')] },
  ]);
  assert.deepEqual(
    split.map((c) => c.offer.height),
    [400, 300, 200, 100],
  );
});

/** A snapshot of `chunks` whole chunks at height h: real (it restores to h's appHash) or fake. */
function largeSnapshot(h: number, chunks: number, real: boolean): Uint8Array {
  const appHash = real ? chain.appHashes.get(h)! : sha256(utf8(`fake ${h}`));
  return snapshotOf(h, appHash, chunks * SYNC_CHUNK_BYTES - 36);
}

/** Just under the response timeout: each answer is accepted. */
const trickleMs = SYNC_RESPONSE_TIMEOUT_MS - 1;

test('a liar serving a large fake snapshot correctly but slowly is abandoned within its budget, and the honest offer then fits the deadline', async () => {
  // 13 chunks just under the response timeout each outlast a 60 s deadline.
  const chunks = 13;
  const timeoutMs = 60_000;
  assert.ok(chunks * trickleMs > timeoutMs, 'the chunks outlast the deadline');
  const fake = largeSnapshot(22, chunks, false);
  const liar: Peer = { snapshots: new Map([[22, fake]]), block: honestBlock, delayMs: trickleMs };

  const alone = syncerFor({ liar }, undefined, timeoutMs);
  const startMs = alone.clock.nowMs();
  await assert.rejects(alone.syncer.run(), refusedWith('SnapshotTooSlow'));
  const budgetMs = offerBudgetMs(fake.length);
  assert.ok(budgetMs < timeoutMs / 2, `a budget of ${budgetMs} ms`);
  const tookMs = alone.clock.nowMs() - startMs;
  assert.ok(tookMs <= budgetMs + 2 * SYNC_DISCOVERY_MS + 2 * trickleMs, `${tookMs} ms`);
  const liarChunks = alone.network.asked('liar', 'chunkRequest');
  assert.ok(liarChunks < chunks, `${liarChunks} chunks asked`);

  const { syncer } = syncerFor({ liar, honest: honest(12) }, undefined, timeoutMs);
  const synced = await syncer.run();
  assert.equal(synced.height, 12);
  assert.equal(syncer.stats.offersRefused, 1, 'the liar cost one offer');
  assertStoredBlockIsReal(synced);
});

test('an offer more than half of the peers make is tried first: a lone liar above it costs no chunk', async () => {
  const liar: Peer = {
    snapshots: new Map([[22, largeSnapshot(22, 4, false)]]),
    block: honestBlock,
    delayMs: trickleMs,
  };
  const { syncer, network } = syncerFor({ liar, a: honest(12), b: honest(12) });
  const synced = await syncer.run();
  assert.equal(synced.height, 12);
  assert.equal(syncer.stats.offersRefused, 0);
  assert.equal(network.asked('liar', 'chunkRequest'), 0);
});

test('a provider that echoes the honest snapshot and trickles it does not set the pace', async () => {
  const chunks = 8;
  const bytes = largeSnapshot(12, chunks, true);
  const slow: Peer = { snapshots: new Map([[12, bytes]]), block: honestBlock, delayMs: trickleMs };
  const fast: Peer = { snapshots: new Map([[12, bytes]]), block: honestBlock };
  const { syncer, network } = syncerFor({ slow, fast });
  const synced = await syncer.run();
  assert.equal(toHex(sha256(synced.snapshot)), toHex(sha256(bytes)));
  const slowAsked = network.asked('slow', 'chunkRequest') + network.asked('slow', 'blockRequest');
  assert.ok(slowAsked <= 1, `asked of the slow provider ${slowAsked} times`);
  assert.equal(syncer.stats.slowAnswers, slowAsked);
});

test('trusted path: blocks are asked of every peer that answered, so a liar trickling its walk does not set its pace', async () => {
  const liar: Peer = {
    snapshots: new Map([[18, fakeSnapshot(18)]]),
    block: honestBlock,
    delayMs: trickleMs,
  };
  const { syncer, network } = syncerFor({ liar, honest: honest(12) }, trustedTip);
  const synced = await syncer.run();
  assert.equal(synced.height, 12);
  const liarAsked = network.asked('liar', 'blockRequest');
  assert.ok(liarAsked <= 1, `${liarAsked} blocks asked of the liar`);
});

test('a state sync cut short while writing leaves nothing a restart resumes from, or a whole state', async () => {
  const tmp = tempDir('zomma-syncsave-');
  try {
    const at16 = await syncerFor({ a: honest(16) }).syncer.run();
    const at12 = await syncerFor({ a: honest(12) }).syncer.run();
    const failing = (storage: Storage, part: 'wal' | 'blocks'): Storage => {
      const broken = Object.create(storage[part]) as Storage['wal'] & Storage['blocks'];
      if (part === 'wal') broken.append = () => assert.fail('disk full');
      else broken.save = () => assert.fail('disk full');
      return { ...storageParts(storage), [part]: broken };
    };

    // Cut short before the checkpoint: at most a snapshot, and the node syncs again (at another height).
    const first = openStorage(join(tmp.dir, 'first'));
    assert.throws(() => saveSynced(failing(first, 'wal'), at16));
    assert.equal(first.blocks.lastHeight(), 0, 'no block before the checkpoint');
    assert.ok(isEmptyStorage(first));
    saveSynced(first, at12);
    assert.deepEqual(first.snapshots.heights(), [12], 'the leftover above it is gone');
    assert.equal(lastCheckpoint(first.wal.readAll()).height, 12);
    assert.equal(first.blocks.firstHeight(), 12);
    assert.ok(!isEmptyStorage(first));
    first.close();

    // Cut short after it: a restart resumes from the snapshot at the checkpoint, no block needed.
    const second = openStorage(join(tmp.dir, 'second'));
    assert.throws(() => saveSynced(failing(second, 'blocks'), at16));
    assert.ok(!isEmptyStorage(second));
    const checkpoint = lastCheckpoint(second.wal.readAll());
    assert.equal(checkpoint.height, 16);
    assert.deepEqual(checkpoint.appHash, chain.appHashes.get(16));
    assert.deepEqual(second.snapshots.load(16), realSnapshot(16));
    second.close();

    // What an older version cut short left (a block, no checkpoint) is refused, saying what to do.
    const legacy = openStorage(join(tmp.dir, 'legacy'));
    legacy.snapshots.save(16, at16.snapshot);
    legacy.blocks.save(16, at16.blockBytes);
    assert.throws(() => isEmptyStorage(legacy), refusedWith('SyncIncomplete'));
    legacy.close();
  } finally {
    tmp.remove();
  }
});

function storageParts(storage: Storage): Storage {
  return {
    wal: storage.wal,
    blocks: storage.blocks,
    snapshots: storage.snapshots,
    close: () => storage.close(),
  };
}

test('a peer answering pruned to every block request is asked once per block, not for every attempt', async () => {
  // Its fake offer above the tip is tried first (no offer has a majority); the
  // honest peers, silent for heights they do not hold, cost a timeout there.
  const liar: Peer = {
    snapshots: new Map([[TIP + 10, fakeSnapshot(TIP + 10)]]),
    block: () => null,
    prunesAll: true,
  };
  const { syncer, network } = syncerFor({ liar, a: honest(12), b: honest(16) });
  const synced = await syncer.run();
  assert.equal(synced.height, 16);
  assertStoredBlockIsReal(synced);
  assert.ok(
    network.asked('liar', 'blockRequest') <= network.blockRequests().length / 2,
    `the liar was asked ${network.asked('liar', 'blockRequest')} of ${network.blockRequests().length} block requests`,
  );
});

test('a liar offering the largest snapshot and serving one good chunk costs memory for that chunk, not for the size it offered', async () => {
  const first = new Uint8Array(SYNC_CHUNK_BYTES).map((_, i) => i % 253);
  const huge = hugeOffer(22);
  const offer: SnapshotOffer = {
    ...huge,
    chunkHashes: [sha256(first), ...huge.chunkHashes.slice(1)],
  };
  const heldBytes: number[] = [];
  const bufferBytes: number[] = [];
  // The buffers the syncer puts snapshots together in. A resizable buffer's
  // bytes are not counted in process.memoryUsage().arrayBuffers (Node 20):
  // its byteLength says what it holds.
  const reserved: ResizableBuffer[] = [];
  const reserveSnapshot: ReserveBytes = (maxBytes) => {
    const buffer = reserveBytes(maxBytes);
    reserved.push(buffer);
    return buffer;
  };
  const liar: Peer = {
    snapshots: new Map(),
    block: honestBlock,
    lie: (message, honestAnswer) => {
      if (message.kind === 'offersRequest') return [{ kind: 'offers', offers: [offer] }];
      if (message.kind !== 'chunkRequest') return honestAnswer === null ? [] : [honestAnswer];
      if (message.index === 0) return [{ kind: 'chunk', height: 22, index: 0, bytes: first }];
      // Asked for a second chunk: the first has checked out and been kept.
      heldBytes.push(process.memoryUsage().arrayBuffers - baseline);
      bufferBytes.push(reserved.length === 1 ? reserved[0]!.byteLength : -reserved.length);
      return [];
    },
  };
  const { syncer } = syncerFor({ liar, honest: honest(12) }, undefined, undefined, {
    reserveSnapshot,
  });
  const baseline = process.memoryUsage().arrayBuffers;
  const synced = await syncer.run();
  assert.equal(synced.height, 12, 'the honest offer, once the liar is abandoned');
  assert.ok(heldBytes.length > 0, 'the liar was asked past its first chunk');
  const most = Math.max(...heldBytes);
  assert.ok(
    most < 64 * SYNC_CHUNK_BYTES,
    `${most} bytes held after one chunk of ${offer.sizeBytes} offered`,
  );
  assert.equal(reserved[0]!.maxByteLength, offer.sizeBytes, "the liar's size, reserved");
  // One buffer (the liar's offer is fetched first), holding the one good chunk.
  assert.deepEqual([...new Set(bufferBytes)], [SYNC_CHUNK_BYTES]);
});

test('an honest peer that answers for offers after the discovery window is still tried once the early liar is refused', async () => {
  const liar: Peer = { snapshots: new Map([[22, fakeSnapshot(22)]]), block: honestBlock };
  let openMs = Infinity;
  const late: Peer = {
    ...honest(12),
    // Still connecting: it answers nothing for its first seconds, then as an honest peer does.
    lie: (_message, honestAnswer) =>
      clock.nowMs() < openMs || honestAnswer === null ? [] : [honestAnswer],
  };
  const { syncer, clock } = syncerFor({ liar, late });
  openMs = clock.nowMs() + 2 * SYNC_DISCOVERY_MS;
  const synced = await syncer.run();
  assert.equal(synced.height, 12);
  assert.equal(syncer.stats.offersRefused, 1, 'the liar cost its one offer');
  assertStoredBlockIsReal(synced);
});

test('an offer refused for want of chunks is tried again once a late peer makes it too, and an offer refused for its bytes is not', async () => {
  // Echoes the honest offer, then withholds every chunk.
  const withholder: Peer = {
    snapshots: new Map([[16, realSnapshot(16)]]),
    block: honestBlock,
    lie: (message, honestAnswer) =>
      message.kind === 'chunkRequest' || honestAnswer === null ? [] : [honestAnswer],
  };
  const liar: Peer = { snapshots: new Map([[22, fakeSnapshot(22)]]), block: honestBlock };
  let openMs = Infinity;
  const late: Peer = {
    snapshots: new Map([
      [16, realSnapshot(16)],
      [22, fakeSnapshot(22)],
    ]),
    block: honestBlock,
    lie: (_message, honestAnswer) =>
      clock.nowMs() < openMs || honestAnswer === null ? [] : [honestAnswer],
  };
  const { syncer, clock, network } = syncerFor({ withholder, liar, late });
  openMs = clock.nowMs() + 2 * SYNC_DISCOVERY_MS;
  const synced = await syncer.run();
  assert.equal(synced.height, 16);
  assertStoredBlockIsReal(synced);
  assert.equal(syncer.stats.offersRefused, 2, 'the fake once, the withheld offer once');
  const fakeChunks = network.requests.filter(
    (r) => r.message.kind === 'chunkRequest' && r.message.height === 22,
  );
  assert.equal(fakeChunks.length, 1, 'the fake fetched once, though the late peer makes it too');
});

test('peers answering pruned to every block request, however many, do not use up the attempts an honest peer needs', async () => {
  const peers: Record<PeerId, Peer> = {};
  for (let i = 0; i < 2 * SYNC_ATTEMPTS_MAX; i++) {
    // Each echoes the honest offer (so it is a majority's), then claims to hold no block.
    peers[`pruner${i}`] = {
      snapshots: new Map([[12, realSnapshot(12)]]),
      block: () => null,
      prunesAll: true,
    };
  }
  peers.honest = honest(12);
  const { syncer, network } = syncerFor(peers);
  const synced = await syncer.run();
  assert.equal(synced.height, 12);
  assertStoredBlockIsReal(synced);
  for (let i = 0; i < 2 * SYNC_ATTEMPTS_MAX; i++) {
    assert.ok(network.asked(`pruner${i}`, 'blockRequest') <= 2, `pruner${i} asked once per block`);
  }
});

test('a liar echoing an honest offer with another size (same chunk count and hashes) does not take the honest offer down', async () => {
  const real = offerOf(12, realSnapshot(12));
  const resized: SnapshotOffer = { ...real, sizeBytes: real.sizeBytes - 1 };
  assert.equal(chunkCountOf(resized.sizeBytes), real.chunkHashes.length, 'a decodable offer');
  const liar: Peer = {
    snapshots: new Map(),
    block: honestBlock,
    lie: (message, honestAnswer) =>
      message.kind === 'offersRequest'
        ? [{ kind: 'offers', offers: [resized] }]
        : honestAnswer === null
          ? []
          : [honestAnswer],
  };
  // The liar answers first, so its copy of the offer would be the one kept.
  const { syncer } = syncerFor({ liar, honest: honest(12) });
  const synced = await syncer.run();
  assert.equal(synced.height, 12);
  assert.equal(toHex(synced.snapshot), toHex(realSnapshot(12)));
});

// --- seeded liars ------------------------------------------------------------

/** Snapshots of a whole chunk and a part, so that chunks can come out of order or from elsewhere. */
const chunked = new Map<string, Uint8Array>();
/**
 * Runs a sync among lying peers: true if it synced, and then to the real
 * state; false if it was refused with a typed error, which only a seed
 * without an honest peer may be.
 */
async function syncedRealState(
  syncer: StateSyncer,
  what: string,
  withHonest: boolean,
): Promise<boolean> {
  try {
    const result = await syncer.run();
    assert.equal(
      toHex(result.snapshot),
      toHex(chunkedSnapshot(result.height, true)),
      `${what}: the real snapshot`,
    );
    assert.equal(toHex(result.appHash), toHex(chain.appHashes.get(result.height)!), what);
    assertStoredBlockIsReal(result);
    return true;
  } catch (error) {
    if (error instanceof assert.AssertionError) throw error;
    assert.ok(error instanceof SyncError, `${what}: ${String(error)}`);
    assert.ok(
      !withHonest,
      `${what}: refused (${error.code}: ${error.message}) with an honest peer`,
    );
    return false;
  }
}

function chunkedSnapshot(h: number, real: boolean): Uint8Array {
  const key = `${h}:${real}`;
  let bytes = chunked.get(key);
  if (bytes === undefined) {
    const appHash = real ? chain.appHashes.get(h)! : sha256(utf8(`fake ${h}`));
    bytes = snapshotOf(h, appHash, SYNC_CHUNK_BYTES + 1_000);
    chunked.set(key, bytes);
  }
  return bytes;
}

const hugeOffers = new Map<number, SnapshotOffer>();

/** An offer no bytes back: the largest size, chunk hashes of nothing. */
function hugeOffer(h: number): SnapshotOffer {
  const count = chunkCountOf(SNAPSHOT_BYTES_MAX);
  const known = hugeOffers.get(h);
  if (known !== undefined) return known;
  const offer: SnapshotOffer = {
    height: h,
    format: SNAPSHOT_FORMAT,
    sizeBytes: SNAPSHOT_BYTES_MAX,
    chunkHashes: Array.from({ length: count }, (_, i) => sha256(utf8(`huge ${h} ${i}`))),
    snapshotHash: sha256(utf8(`huge ${h}`)),
  };
  hugeOffers.set(h, offer);
  return offer;
}

const LIES = [
  'honest',
  'silent',
  'flippedChunk',
  'otherIndex',
  'mislabelled',
  'replay',
  'otherHeight',
  'uncertified',
  'alteredHeader',
  'forgedBody',
  'garbage',
  'pruned',
  'twice',
] as const;

/** What a lying peer sends for one request: the honest answer damaged one of the ways above. */
function lieAbout(
  rng: Prng,
  message: SyncMessage,
  honest: SyncMessage | null,
  snapshots: ReadonlyMap<number, Uint8Array>,
  past: readonly SyncMessage[],
): SyncMessage[] {
  const lie = LIES[rng.int(LIES.length)]!;
  const block = (b: CommittedBlock, height: number): SyncMessage => ({
    kind: 'block',
    height,
    bytes: encode(committedBlockCodec, b),
  });
  switch (lie) {
    case 'honest':
      return honest === null ? [] : [honest];
    case 'silent':
      return [];
    case 'replay':
      return past.length === 0 ? [] : [past[rng.int(past.length)]!];
    case 'twice':
      return honest === null ? [] : [honest, honest, ...past.slice(-1)];
    default:
  }
  if (message.kind === 'chunkRequest') {
    if (honest?.kind !== 'chunk') return [];
    const { height, index } = message;
    if (lie === 'flippedChunk') {
      const bytes = honest.bytes.slice();
      bytes[rng.int(bytes.length)]! ^= 1 << rng.int(8);
      return [{ ...honest, bytes }];
    }
    if (lie === 'otherIndex') {
      const snapshot = snapshots.get(height)!;
      const other = (index + 1) % chunkCountOf(snapshot.length);
      const start = other * SYNC_CHUNK_BYTES;
      return [{ ...honest, bytes: snapshot.slice(start, start + SYNC_CHUNK_BYTES) }];
    }
    if (lie === 'mislabelled') {
      return [
        rng.int(2) === 0 ? { ...honest, index: index + 1 } : { ...honest, height: height + 1 },
      ];
    }
    // The same chunk of the other snapshot at this height (real for a fake, fake for a real one).
    const other = chunkedSnapshot(height, snapshots.get(height) !== chunkedSnapshot(height, true));
    const start = index * SYNC_CHUNK_BYTES;
    return [{ ...honest, bytes: other.slice(start, start + SYNC_CHUNK_BYTES) }];
  }
  if (message.kind !== 'blockRequest') return [];
  const h = message.height;
  const real = chain.blocks.get(h);
  if (real === undefined) return [];
  switch (lie) {
    case 'pruned':
      return [{ kind: 'pruned', height: h, firstHeight: h + 1 + rng.int(5) }];
    case 'otherHeight': {
      const other = chain.blocks.get(h + (rng.int(2) === 0 ? 1 : -1));
      return other === undefined ? [] : [block(other, h)];
    }
    case 'uncertified': {
      const other = chain.blocks.get(h - 1);
      return other === undefined ? [] : [block({ ...real, commit: other.commit }, h)];
    }
    case 'alteredHeader': {
      const header = { ...real.block.header, previousAppHash: sha256(utf8(`lie ${h}`)) };
      return [block({ ...real, block: { ...real.block, header } }, h)];
    }
    case 'forgedBody':
      return [block(forgedBody(h), h)];
    case 'garbage':
      return [{ kind: 'block', height: h, bytes: sha256(utf8(`garbage ${h}`)) }];
    default:
      return [honest ?? { kind: 'pruned', height: h, firstHeight: h + 1 }];
  }
}

/** A peer that lies by `rng`: what it offers is drawn once, each answer anew. */
function lyingPeer(rng: Prng): Peer {
  const heights = [12, 16, 20, TIP + 5];
  const snapshots = new Map<number, Uint8Array>();
  const offers: SnapshotOffer[] = [];
  const kind = rng.int(4);
  for (let i = 0; i < 1 + rng.int(SYNC_OFFERS_MAX); i++) {
    const h = heights[rng.int(heights.length)]!;
    if (kind === 0) offers.push(hugeOffer(h));
    else {
      // Real or fake bytes (an echo of an honest offer, or its own fake at a real height).
      const bytes = chunkedSnapshot(h, kind === 1 && h <= TIP - 1);
      snapshots.set(h, bytes);
      offers.push(offerOf(h, bytes));
    }
  }
  if (kind === 3) offers.push(offers[0]!);
  const past: SyncMessage[] = [];
  const peer: Peer = {
    snapshots,
    block: honestBlock,
    lie: (message, honest) => {
      if (message.kind === 'offersRequest') return [{ kind: 'offers', offers }];
      const answers = lieAbout(rng, message, honest, snapshots, past);
      if (honest !== null) past.push(honest);
      if (past.length > 8) past.shift();
      return answers;
    },
  };
  return peer;
}

test('seeded liars (chunks out of order or of another snapshot, replays, uncertified or altered blocks, huge offers): an honest peer among them is synced from, and nothing else is ever accepted', async () => {
  let synced = 0;
  let refused = 0;
  for (let seed = 1; seed <= 16; seed++) {
    const rng = new Prng(seed);
    const peers: Record<PeerId, Peer> = {};
    const liars = 1 + rng.int(3);
    for (let i = 0; i < liars; i++) peers[`liar${i}`] = lyingPeer(rng);
    const withHonest = seed % 4 !== 0;
    if (withHonest) {
      const h = rng.int(2) === 0 ? 12 : 16;
      peers.honest = { snapshots: new Map([[h, chunkedSnapshot(h, true)]]), block: honestBlock };
    }
    const trusted = seed % 2 === 0 ? trustedTip : undefined;
    const { syncer, network, clock } = syncerFor(peers, trusted);
    // Unasked messages in between: offers that change, chunks and blocks nobody asked for.
    for (let k = 0; k < 6; k++) {
      clock.after(rng.int(20_000), () => {
        const from = `liar${rng.int(liars)}`;
        const h = 1 + rng.int(TIP - 1);
        const unasked: SyncMessage[] = [
          { kind: 'chunk', height: h, index: rng.int(3), bytes: utf8('unasked') },
          { kind: 'block', height: h, bytes: encode(committedBlockCodec, chain.blocks.get(h)!) },
          { kind: 'offers', offers: [hugeOffer(h)] },
          { kind: 'pruned', height: h, firstHeight: h + 1 },
        ];
        network.deliver(from, peers[from]!, unasked[rng.int(unasked.length)]!);
      });
    }
    const what = `seed ${seed} (${liars} liars${withHonest ? ', one honest peer' : ''}, ${trusted === undefined ? 'genesis' : 'trusted'} path)`;
    if (await syncedRealState(syncer, what, withHonest)) synced++;
    else refused++;
    const waiters = (syncer as unknown as { waiters: Map<string, unknown> }).waiters;
    assert.equal(waiters.size, 0, `${what}: no request left waiting`);
    assert.ok(syncer.stats.chunksFetched <= 3 * 3 * SYNC_ATTEMPTS_MAX, `${what}: chunks fetched`);
  }
  assert.equal(synced + refused, 16);
  assert.ok(synced >= 12, `${synced} synced: every seed with an honest peer`);
});

test('a snapshot being fetched grows one buffer in place, holding the bytes appended and no more, and ends as that buffer at its size', () => {
  const sizeBytes = 5 * SYNC_CHUNK_BYTES + 7;
  const reserved: ResizableBuffer[] = [];
  const bytes = new GrowingBytes(sizeBytes, 'snapshot 5', (maxBytes) => {
    const buffer = reserveBytes(maxBytes);
    reserved.push(buffer);
    return buffer;
  });
  assert.equal(reserved.length, 1, 'one buffer, made before any chunk');
  const buffer = reserved[0]!;
  assert.equal(buffer.maxByteLength, sizeBytes, 'the size offered is reserved');
  assert.equal(buffer.byteLength, 0, 'nothing held before a chunk checks out');
  let appended = 0;
  for (let index = 0; index < chunkCountOf(sizeBytes); index++) {
    const chunk = new Uint8Array(chunkBytesOf(sizeBytes, index)).fill(index + 1);
    bytes.append(chunk);
    appended += chunk.length;
    // No second buffer: a growth that copied would hold the old one beside the new.
    assert.equal(reserved.length, 1, `chunk ${index}: no other buffer made`);
    assert.equal(buffer.byteLength, appended, `chunk ${index}: the same buffer grew in place`);
    assert.equal(bytes.capacityBytes, appended, `${bytes.capacityBytes} held for ${appended}`);
  }
  const whole = bytes.whole();
  assert.equal(whole.buffer, buffer, 'the snapshot is the buffer it was put together in');
  assert.equal(whole.byteOffset, 0);
  assert.equal(whole.length, sizeBytes);
  assert.equal(whole.buffer.byteLength, sizeBytes, 'no room left over');
  for (let index = 0; index < chunkCountOf(sizeBytes); index++) {
    assert.equal(whole[index * SYNC_CHUNK_BYTES], index + 1, `chunk ${index} in its place`);
  }
  assert.equal(whole[sizeBytes - 1], 6);
});

test('the buffer for the largest snapshot is reserved, not held: a liar offering it and serving one chunk costs that chunk', () => {
  const bytes = new GrowingBytes(SNAPSHOT_BYTES_MAX);
  assert.equal(bytes.capacityBytes, 0);
  bytes.append(new Uint8Array(SYNC_CHUNK_BYTES).fill(1));
  assert.equal(bytes.capacityBytes, SYNC_CHUNK_BYTES);
});

test('memory running out while a snapshot is fetched is a SyncError (SnapshotOutOfMemory), not a RangeError', () => {
  const outOfMemory = (e: unknown): boolean =>
    e instanceof SyncError &&
    e.code === 'SnapshotOutOfMemory' &&
    e.message.startsWith('snapshot 7: out of memory') &&
    e.message.includes('Array buffer allocation failed');
  // Reserving fails (an address space limit, as `ulimit -v` sets).
  const noSpace: ReserveBytes = () => {
    throw new RangeError('Array buffer allocation failed');
  };
  assert.throws(() => new GrowingBytes(3 * SYNC_CHUNK_BYTES, 'snapshot 7', noSpace), outOfMemory);
  // Growing fails at the third chunk: V8 throws a RangeError from resize().
  const failsAt =
    (limitBytes: number): ReserveBytes =>
    (maxBytes) => {
      const buffer = reserveBytes(maxBytes);
      const resize = buffer.resize.bind(buffer);
      buffer.resize = (byteLength) => {
        if (byteLength > limitBytes) throw new RangeError('Array buffer allocation failed');
        resize(byteLength);
      };
      return buffer;
    };
  const bytes = new GrowingBytes(3 * SYNC_CHUNK_BYTES, 'snapshot 7', failsAt(2 * SYNC_CHUNK_BYTES));
  bytes.append(new Uint8Array(SYNC_CHUNK_BYTES));
  bytes.append(new Uint8Array(SYNC_CHUNK_BYTES));
  assert.throws(
    () => bytes.append(new Uint8Array(SYNC_CHUNK_BYTES)),
    (e: unknown) => {
      assert.ok(outOfMemory(e), `a SyncError: ${String(e)}`);
      assert.match((e as Error).message, /growing to 3145728 of its 3145728 bytes/);
      return true;
    },
  );
  assert.equal(bytes.capacityBytes, 2 * SYNC_CHUNK_BYTES, 'what was held before');
  // A buffer reserved too small (its maxByteLength): V8's own RangeError, the same way.
  const tiny = new GrowingBytes(3 * SYNC_CHUNK_BYTES, 'snapshot 7', () => reserveBytes(10));
  assert.throws(
    () => tiny.append(new Uint8Array(SYNC_CHUNK_BYTES)),
    (e: unknown) => e instanceof SyncError && e.code === 'SnapshotOutOfMemory',
  );
  // Anything else is no memory shortage and is thrown as it is.
  assert.throws(
    () =>
      new GrowingBytes(10, 'snapshot 7', () => {
        throw new TypeError('a bug');
      }),
    TypeError,
  );
});

test('an offer whose snapshot does not fit in memory is refused (SnapshotOutOfMemory) and the next one tried', async () => {
  const big = largeSnapshot(22, 3, true);
  const peers = { big: { snapshots: new Map([[22, big]]), block: honestBlock }, small: honest(12) };
  // Memory for two chunks: the 3-chunk snapshot does not fit, the one-chunk one does.
  const reserveSnapshot: ReserveBytes = (maxBytes) => {
    const buffer = reserveBytes(maxBytes);
    const resize = buffer.resize.bind(buffer);
    buffer.resize = (byteLength) => {
      if (byteLength > 2 * SYNC_CHUNK_BYTES) throw new RangeError('Array buffer allocation failed');
      resize(byteLength);
    };
    return buffer;
  };
  const alone = syncerFor({ big: peers.big }, undefined, undefined, { reserveSnapshot });
  await assert.rejects(alone.syncer.run(), refusedWith('SnapshotOutOfMemory'));
  const { syncer } = syncerFor(peers, undefined, undefined, { reserveSnapshot });
  const synced = await syncer.run();
  assert.equal(synced.height, 12);
  assert.equal(syncer.stats.offersRefused, 1, 'the offer too large was refused');
  assertStoredBlockIsReal(synced);
});

// --- a mix of lying, slow and vanishing peers ------------------------------

/** An offers payload that does not decode: an unknown format, or a chunk count its size does not have. */
function inconsistentOffers(rng: Prng): Uint8Array {
  const bytes = encodeSyncMessage({ kind: 'offers', offers: [offerOf(12, realSnapshot(12))] });
  // tag, count, height 12, format, size 36, chunk count: one byte each.
  assert.equal(bytes[5], 1, 'the chunk count byte');
  const damaged = bytes.slice();
  if (rng.int(2) === 0) damaged[3] = SNAPSHOT_FORMAT + 1;
  else damaged[5] = 2;
  return damaged;
}

/** A chunk or block answer one byte over the sync message limit. */
function oversized(message: SyncMessage): Uint8Array {
  const head = encodeSyncMessage(
    message.kind === 'chunkRequest'
      ? { kind: 'chunk', height: message.height, index: message.index, bytes: new Uint8Array(1) }
      : {
          kind: 'block',
          height: message.kind === 'blockRequest' ? message.height : 1,
          bytes: new Uint8Array(1),
        },
  );
  const out = new Uint8Array(SYNC_MESSAGE_BYTES_MAX + 1);
  out.set(head);
  return out;
}

const MIX = [
  'lies',
  'drip',
  'vanishes',
  'oversized',
  'inconsistent',
  'resized',
  'unbacked',
] as const;

/** A peer of the mix: one way of misbehaving, drawn once, on top of the seeded lies above. */
function mixedPeer(rng: Prng, startMs: number): Peer {
  const kind = MIX[rng.int(MIX.length)]!;
  const real = chunkedSnapshot(16, true);
  switch (kind) {
    case 'lies':
      return lyingPeer(rng);
    case 'drip':
      // Echoes the honest offer; each answer takes up to two response timeouts.
      return {
        snapshots: new Map([[16, real]]),
        block: honestBlock,
        delayMs: rng.int(2 * SYNC_RESPONSE_TIMEOUT_MS),
      };
    case 'vanishes':
      return {
        snapshots: new Map([[16, real]]),
        block: honestBlock,
        goneAtMs: startMs + rng.int(8_000),
      };
    case 'oversized':
      return {
        snapshots: new Map([[16, real]]),
        block: honestBlock,
        lie: (message) =>
          message.kind === 'offersRequest' ? [{ kind: 'offers', offers: [offerOf(16, real)] }] : [],
        raw: (message) => (message.kind === 'offersRequest' ? [] : [oversized(message)]),
      };
    case 'inconsistent':
      return {
        snapshots: new Map(),
        block: honestBlock,
        lie: (message) =>
          message.kind === 'offersRequest' ? [{ kind: 'offers', offers: [hugeOffer(20)] }] : [],
        raw: (message) => (message.kind === 'offersRequest' ? [inconsistentOffers(rng)] : []),
      };
    case 'resized': {
      const offer = offerOf(16, real);
      const resized = { ...offer, sizeBytes: offer.sizeBytes - 1 - rng.int(500) };
      return {
        snapshots: new Map([[16, real]]),
        block: honestBlock,
        lie: (message, honestAnswer) =>
          message.kind === 'offersRequest'
            ? [{ kind: 'offers', offers: [resized] }]
            : honestAnswer === null
              ? []
              : [honestAnswer],
      };
    }
    case 'unbacked':
      // Heights no certified block backs: above the tip.
      return {
        snapshots: new Map([[TIP + 1 + rng.int(20), chunkedSnapshot(TIP + 3, false)]]),
        block: honestBlock,
      };
  }
}

test('seeded mix (lies, drip, answers twice, vanishing, oversized, undecodable or resized offers, unbacked heights, a late honest peer): synced within the deadline from the honest peer, never from anything else', async () => {
  const seeds = 24;
  let synced = 0;
  for (let seed = 1; seed <= seeds; seed++) {
    const rng = new Prng(1_000 + seed);
    const peers: Record<PeerId, Peer> = {};
    const liars = 1 + rng.int(4);
    const withHonest = seed % 6 !== 0;
    // Every virtual clock starts at the same time.
    const startMs = new VirtualClock().nowMs();
    const openMs = startMs + rng.int(4_000);
    let clock: VirtualClock | null = null;
    for (let i = 0; i < liars; i++) peers[`liar${i}`] = mixedPeer(rng, startMs);
    if (withHonest) {
      const h = rng.int(2) === 0 ? 12 : 16;
      const real: Peer = {
        snapshots: new Map([[h, chunkedSnapshot(h, true)]]),
        block: honestBlock,
      };
      // Some seeds: still connecting while the liars answer.
      peers.honest =
        rng.int(2) === 0
          ? real
          : {
              ...real,
              lie: (_m, answer) => (clock!.nowMs() < openMs || answer === null ? [] : [answer]),
            };
    }
    const timeoutMs = 240_000;
    const made = syncerFor(peers, seed % 2 === 0 ? trustedTip : undefined, timeoutMs);
    const syncer = made.syncer;
    clock = made.clock;
    assert.equal(clock.nowMs(), startMs);
    const what = `seed ${seed} (${liars} liars${withHonest ? ', an honest peer' : ''})`;
    if (await syncedRealState(syncer, what, withHonest)) synced++;
    assert.ok(
      clock.nowMs() - startMs <= timeoutMs + SYNC_RESPONSE_TIMEOUT_MS,
      `${what}: ${clock.nowMs() - startMs} ms`,
    );
    const waiters = (syncer as unknown as { waiters: Map<string, unknown> }).waiters;
    assert.equal(waiters.size, 0, `${what}: no request left waiting`);
  }
  // Peers echoing the real snapshot sync the node too when no honest peer is there.
  assert.ok(
    synced >= seeds - Math.floor(seeds / 6),
    `${synced} synced: every seed with an honest peer`,
  );
});

test('trusted path: a peer answering pruned just before the response timeout is asked for one block of the walk, not a share of them', async () => {
  // A pruned answer costs no attempt, so a slow one must cost its provider
  // the time it took, as a slow good answer does: otherwise it is asked in
  // turn for every block of a walk of up to SYNC_TRUST_BLOCKS_MAX blocks,
  // each costing almost a response timeout, and runs out the deadline.
  const slowPruner: Peer = {
    snapshots: new Map(),
    block: () => null,
    prunesAll: true,
    delayMs: SYNC_RESPONSE_TIMEOUT_MS - 1,
  };
  const { syncer, network } = syncerFor({ slowPruner, a: honest(12), b: honest(12) }, trustedTip);
  const synced = await syncer.run();
  assert.equal(synced.height, 12);
  assertStoredBlockIsReal(synced);
  assert.ok(network.blockRequests().length > TIP - 12, 'the walk asked every block down to 12');
  assert.equal(
    network.asked('slowPruner', 'blockRequest'),
    1,
    'the slow pruner is asked again only when no other peer is cheaper',
  );
});

test('a liar offering fresh fakes every round costs SYNC_CANDIDATES_PER_PEER_MAX tries in all, not that many per round', async () => {
  const early = [22, 20];
  const fresh = [18, 16];
  let openMs = Infinity;
  const liar: Peer = {
    snapshots: new Map([...early, ...fresh].map((h) => [h, fakeSnapshot(h)])),
    block: honestBlock,
    // New fakes, above the honest offer, once the first ones are refused.
    lie: (message, honestAnswer) => {
      if (message.kind !== 'offersRequest') return honestAnswer === null ? [] : [honestAnswer];
      const heights = clock.nowMs() < openMs ? early : fresh;
      return [{ kind: 'offers', offers: heights.map((h) => offerOf(h, fakeSnapshot(h))) }];
    },
  };
  const late: Peer = {
    ...honest(12),
    lie: (_message, honestAnswer) =>
      clock.nowMs() < openMs || honestAnswer === null ? [] : [honestAnswer],
  };
  const { syncer, clock, network } = syncerFor({ liar, late });
  openMs = clock.nowMs() + 2 * SYNC_DISCOVERY_MS;
  const synced = await syncer.run();
  assert.equal(synced.height, 12);
  assertStoredBlockIsReal(synced);
  assert.equal(
    syncer.stats.offersRefused,
    SYNC_CANDIDATES_PER_PEER_MAX,
    'the first two of the liar',
  );
  const freshAsked = network.requests.filter(
    (r) => r.message.kind === 'blockRequest' && fresh.includes(r.message.height),
  );
  assert.equal(freshAsked.length, 0, 'no block of a fresh fake asked');
});

test('the deadline running out while the last offer is fetched ends in SyncFailed naming the deadline, not the chunk that was being asked', async () => {
  // Each answer takes 4 s (under the response timeout): the two blocks take
  // 8 s of the 10 s deadline, and the first chunk is still due when it ends.
  const slow: Peer = {
    snapshots: new Map([[12, chunkedSnapshot(12, true)]]),
    block: honestBlock,
    delayMs: 4_000,
  };
  const { syncer } = syncerFor({ slow }, undefined, 10_000);
  await assert.rejects(syncer.run(), (e: unknown) => {
    assert.ok(e instanceof SyncError, `a SyncError: ${String(e)}`);
    assert.equal(e.code, 'SyncFailed');
    assert.match(e.message, /deadline of 10000 ms passed/);
    assert.match(e.message, /12: SyncUnavailable/);
    return true;
  });
});

test('peers whose offers were all refused are still heard for an offer a majority of them makes in a later round (a snapshot taken meanwhile)', async () => {
  // Their first two snapshots cannot be had (their chunks never come, as if
  // pruned meanwhile); by the next round they offer a newer one, and serve it.
  let openMs = Infinity;
  const peer = (): Peer => ({
    snapshots: new Map([12, 16, 20].map((h) => [h, realSnapshot(h)])),
    block: honestBlock,
    lie: (message, honestAnswer) => {
      if (message.kind === 'offersRequest') {
        const heights = clock.nowMs() < openMs ? [16, 12] : [20];
        return [{ kind: 'offers', offers: heights.map((h) => offerOf(h, realSnapshot(h))) }];
      }
      if (message.kind === 'chunkRequest' && message.height !== 20) return [];
      return honestAnswer === null ? [] : [honestAnswer];
    },
  });
  const { syncer, clock } = syncerFor({ a: peer(), b: peer(), c: peer() });
  openMs = clock.nowMs() + 2 * SYNC_DISCOVERY_MS;
  const synced = await syncer.run();
  assert.equal(synced.height, 20);
  assertStoredBlockIsReal(synced);
  assert.equal(syncer.stats.offersRefused, 2, 'the two first offers');
});

// --- providers that answer busy (their budget for all peers spent) -----------

/**
 * Answers the first `times` requests of `kinds` busy (with `retryAfterMs`),
 * then as `rules` would.
 */
function busyAtFirst(
  rules: Peer,
  times: number,
  retryAfterMs: number,
  kinds: readonly ('chunkRequest' | 'blockRequest')[] = ['chunkRequest', 'blockRequest'],
): Peer & { busied: () => number } {
  let busied = 0;
  return {
    ...rules,
    busied: () => busied,
    lie: (message, answer) => {
      const asked = message.kind === 'chunkRequest' || message.kind === 'blockRequest';
      if (asked && kinds.includes(message.kind) && busied < times) {
        busied++;
        return [{ kind: 'busy', request: message, retryAfterMs }];
      }
      return answer === null ? [] : [answer];
    },
  };
}

test('a lone provider answering busy for longer than the offer budget, more times than the attempts, still completes the sync', async () => {
  // On silence instead (what a refused request got before busy existed), two
  // unanswered chunk requests of 5 s each outlast this offer's 10.5 s budget.
  const bytes = snapshotOf(12, chain.appHashes.get(12)!, 2 * SYNC_CHUNK_BYTES + 100);
  const retryAfterMs = 2_000;
  const times = SYNC_ATTEMPTS_MAX + 4;
  assert.ok(
    times * retryAfterMs > offerBudgetMs(bytes.length),
    'the busy time outlasts the budget',
  );
  assert.ok(times * retryAfterMs <= SYNC_BUSY_WAIT_MS_MAX, 'within the busy time allowed');
  const busy = busyAtFirst(
    { snapshots: new Map([[12, bytes]]), block: honestBlock },
    times,
    retryAfterMs,
    ['chunkRequest'],
  );
  const { syncer, network, clock } = syncerFor({ busy });
  const startMs = clock.nowMs();
  const synced = await syncer.run();
  assert.equal(toHex(sha256(synced.snapshot)), toHex(sha256(bytes)));
  assertStoredBlockIsReal(synced);
  assert.equal(busy.busied(), times);
  assert.equal(syncer.stats.busyAnswers, times);
  assert.equal(syncer.stats.retries, 0, 'a busy answer uses no try');
  assert.equal(syncer.stats.busyWaitMs, times * retryAfterMs, 'each delay waited out, no longer');
  assert.equal(
    network.asked('busy', 'chunkRequest') + network.asked('busy', 'blockRequest'),
    2 + 3 + times,
    'two blocks, three chunks, and each busy one again',
  );
  assert.ok(clock.nowMs() - startMs >= times * retryAfterMs, 'the delays were waited');
});

test('a provider answering busy is not asked again within its delay: another provider of the offer is asked meanwhile', async () => {
  const bytes = snapshotOf(12, chain.appHashes.get(12)!, 2 * SYNC_CHUNK_BYTES + 100);
  const rules = { snapshots: new Map([[12, bytes]]), block: honestBlock };
  const busy = busyAtFirst(rules, Infinity, SYNC_BUSY_RETRY_MS_MAX);
  const { syncer, network, clock } = syncerFor({ busy, other: rules });
  const startMs = clock.nowMs();
  const synced = await syncer.run();
  assert.equal(toHex(sha256(synced.snapshot)), toHex(sha256(bytes)));
  const busyAsked = network.asked('busy', 'chunkRequest') + network.asked('busy', 'blockRequest');
  assert.equal(busyAsked, 1, 'asked once, then left alone for its delay');
  assert.equal(syncer.stats.busyAnswers, 1);
  assert.equal(syncer.stats.busyWaitMs, 0, 'nobody waited: the other was ready');
  assert.ok(clock.nowMs() - startMs < SYNC_BUSY_RETRY_MS_MAX, 'done within the busy delay');
});

test('a provider answering busy forever costs its offer SYNC_BUSY_WAIT_MS_MAX on one request, then SyncBusy refuses it and the next offer is tried', async () => {
  const stalling = busyAtFirst(
    { snapshots: new Map([[16, realSnapshot(16)]]), block: honestBlock },
    Infinity,
    1_000,
    ['chunkRequest'],
  );
  const alone = syncerFor({ stalling });
  const startMs = alone.clock.nowMs();
  await assert.rejects(alone.syncer.run(), (e: unknown) => {
    assert.ok(e instanceof SyncError, `a SyncError: ${String(e)}`);
    assert.equal(e.code, 'SyncBusy');
    assert.match(e.message, /chunk:16:0 .*SYNC_BUSY_WAIT_MS_MAX/);
    return true;
  });
  const tookMs = alone.clock.nowMs() - startMs;
  // Each round asks for offers again and tries the offer once more (no other peer offers it: not tried again).
  assert.ok(tookMs <= SYNC_BUSY_WAIT_MS_MAX + 2 * SYNC_DISCOVERY_MS, `${tookMs} ms`);
  assert.equal(alone.syncer.stats.busyWaitMs, SYNC_BUSY_WAIT_MS_MAX, 'bounded');
  assert.equal(alone.syncer.stats.retries, 0);
  assert.equal(alone.syncer.stats.chunksFetched, 0);
  assert.ok(
    offerBudgetMs(realSnapshot(16).length) < SYNC_BUSY_WAIT_MS_MAX,
    'the busy time outlasted the offer budget: only SYNC_BUSY_WAIT_MS_MAX ended it',
  );

  // Its blocks come from the honest peer; its chunks only from itself.
  const { syncer } = syncerFor({ stalling, honest: honest(12) });
  const synced = await syncer.run();
  assert.equal(synced.height, 12);
  assert.equal(syncer.stats.offersRefused, 1, 'the stalling offer, once');
  assertStoredBlockIsReal(synced);
});

test('an offer whose busy time is past SYNC_BUSY_WAIT_MS_MAX is given up at its end: a busy wait stops there rather than sleeping out the provider delay', async () => {
  const bytes = snapshotOf(12, chain.appHashes.get(12)!, 2 * SYNC_CHUNK_BYTES + 100);
  const retryAfterMs = 5_000;
  // Chunk 0 is answered after SYNC_BUSY_WAIT_MS_MAX of busy answers (the most
  // one request may wait), chunk 1 never: the offer's end, moved by the busy
  // time up to SYNC_BUSY_WAIT_MS_MAX, then stays where it is.
  const chunk0Busy = SYNC_BUSY_WAIT_MS_MAX / retryAfterMs;
  let busied0 = 0;
  let firstChunkMs: number | null = null;
  let clockOf: VirtualClock | null = null;
  const stalling: Peer = {
    snapshots: new Map([[12, bytes]]),
    block: honestBlock,
    lie: (message, answer) => {
      if (message.kind === 'chunkRequest') {
        firstChunkMs ??= clockOf!.nowMs();
        if (message.index > 0 || busied0++ < chunk0Busy) {
          return [{ kind: 'busy', request: message, retryAfterMs }];
        }
      }
      return answer === null ? [] : [answer];
    },
  };
  let refusedAtMs: number | null = null;
  const log = {
    ...silentLog,
    error: (_fields: object, message: string) => {
      if (message === 'state sync: snapshot refused') refusedAtMs ??= clockOf!.nowMs();
    },
  };
  const { syncer, clock } = syncerFor({ stalling }, undefined, undefined, { log });
  clockOf = clock;
  await assert.rejects(syncer.run(), (e: unknown) => e instanceof SyncError);
  const endMs = firstChunkMs! + offerBudgetMs(bytes.length) + SYNC_BUSY_WAIT_MS_MAX;
  assert.ok(refusedAtMs !== null, 'the offer was refused');
  assert.ok((endMs - firstChunkMs!) % retryAfterMs !== 0, 'the end falls within a busy delay');
  assert.equal(refusedAtMs, endMs, 'given up at its end, not at the provider delay past it');
});

test('busy answers for requests a peer was not sent are dropped as any unasked answer', async () => {
  const bytes = snapshotOf(12, chain.appHashes.get(12)!, 2 * SYNC_CHUNK_BYTES + 100);
  const busyFor = (
    request: SyncMessage & { kind: 'chunkRequest' | 'blockRequest' },
  ): SyncMessage => ({
    kind: 'busy',
    request,
    retryAfterMs: SYNC_BUSY_RETRY_MS_MIN,
  });
  const meddler: Peer = {
    snapshots: new Map([[12, bytes]]),
    block: honestBlock,
    lie: (message, answer) => {
      const honestAnswer = answer === null ? [] : [answer];
      // Before anything is asked: busy for requests not yet made.
      if (message.kind === 'offersRequest') {
        return [
          ...honestAnswer,
          busyFor({ kind: 'chunkRequest', height: 12, index: 0 }),
          busyFor({ kind: 'blockRequest', height: 13 }),
        ];
      }
      // Asked for chunk i: busy for chunk i + 1 (not asked yet), then the chunk.
      if (message.kind === 'chunkRequest') {
        const next = { kind: 'chunkRequest' as const, height: 12, index: message.index + 1 };
        return [busyFor(next), ...honestAnswer];
      }
      return honestAnswer;
    },
  };
  const { syncer, network } = syncerFor({ meddler });
  const synced = await syncer.run();
  assert.equal(toHex(sha256(synced.snapshot)), toHex(sha256(bytes)));
  assert.equal(syncer.stats.busyAnswers, 0, 'none taken as an answer');
  assert.equal(syncer.stats.retries, 0);
  assert.equal(syncer.stats.dropped, 2 * network.asked('meddler', 'offersRequest') + 3);
  assert.equal(network.asked('meddler', 'chunkRequest'), 3, 'no chunk asked twice');
});

test('three nodes syncing at once from one server share its budget: each completes with no try lost, and what it serves stays within the budget', async () => {
  const tmp = tempDir('zomma-syncbusy-');
  const storage = openStorage(tmp.dir);
  try {
    const bytes = snapshotOf(12, chain.appHashes.get(12)!, 2 * SYNC_CHUNK_BYTES + 100);
    storage.snapshots.save(12, bytes);
    for (const h of [12, 13]) {
      storage.blocks.save(h, encode(committedBlockCodec, chain.blocks.get(h)!));
    }
    const clock = new VirtualClock();
    const names = ['n0', 'n1', 'n2'];
    const syncers = new Map<PeerId, StateSyncer>();
    const quiet = { start: async () => {}, stop: async () => {}, onMessage: () => {} };
    const server = new SyncServer({
      storage,
      clock,
      network: {
        ...quiet,
        peerCount: () => names.length,
        broadcast: () => assert.fail('a server answers one peer'),
        // Asynchronously, as a transport: the virtual clock moves once all answers are in.
        send: (peer, frameBytes) =>
          queueMicrotask(() => syncers.get(peer)!.onMessage('server', unframe(frameBytes).payload)),
      },
      totalRequestsPerS: 4,
      totalBurstRequests: 4,
      floorRequestsPerS: 0,
    });
    for (const name of names) {
      const send = (_peer: PeerId, frameBytes: Uint8Array): void =>
        queueMicrotask(() => server.onMessage(name, unframe(frameBytes).payload));
      const network: PeerNetwork = {
        ...quiet,
        peerCount: () => 1,
        broadcast: (frameBytes) => send('server', frameBytes),
        send,
      };
      const options = { network, consensusGenesis: chain.genesis, verifier: chain.verifier };
      syncers.set(name, new StateSyncer({ ...options, restore, clock }));
    }
    const startMs = clock.nowMs();
    const synced = await Promise.all([...syncers.values()].map((s) => s.run()));
    const elapsedMs = clock.nowMs() - startMs;
    for (const s of synced) assert.equal(toHex(sha256(s.snapshot)), toHex(sha256(bytes)));
    const stats = [...syncers.values()].map((s) => s.stats);
    assert.deepEqual(
      stats.map((s) => s.retries),
      [0, 0, 0],
      'a busy answer uses no try',
    );
    assert.ok(server.stats.dropped.busy > 0, 'the budget held them back');
    assert.ok(
      stats.every((s) => s.busyAnswers > 0),
      'each was answered busy',
    );
    // Each chunk once to each node: nothing asked twice for want of an answer.
    assert.equal(server.stats.chunkBytesServed, names.length * bytes.length);
    // The budget: its burst, then 4 a second.
    const budget = 4 + Math.floor((4 * elapsedMs) / 1_000);
    assert.ok(
      server.stats.served <= budget,
      `${server.stats.served} served in ${elapsedMs} ms, over the budget of ${budget}`,
    );
  } finally {
    storage.close();
    tmp.remove();
  }
});

test('a provider answering each chunk busy for a while, then serving it, has the busy time past SYNC_BUSY_WAIT_MS_MAX counted against its offer budget (SyncBusy)', async () => {
  // Four busy answers of 1 s before each chunk: 52 s for 13 chunks, past the
  // budget of 10 s + 13 × 0.25 s with 30 s of busy time on top.
  const chunks = 13;
  const fake = largeSnapshot(22, chunks, false);
  const busyEach = 4;
  assert.ok(
    chunks * busyEach * 1_000 > offerBudgetMs(fake.length) + SYNC_BUSY_WAIT_MS_MAX,
    'the busy time outlasts the budget and the allowance',
  );
  const tries = new Map<number, number>();
  const dripping: Peer = {
    snapshots: new Map([[22, fake]]),
    block: honestBlock,
    lie: (message, answer) => {
      if (message.kind === 'chunkRequest') {
        const n = tries.get(message.index) ?? 0;
        tries.set(message.index, n + 1);
        if (n < busyEach) return [{ kind: 'busy', request: message, retryAfterMs: 1_000 }];
      }
      return answer === null ? [] : [answer];
    },
  };
  const alone = syncerFor({ dripping });
  await assert.rejects(alone.syncer.run(), (e: unknown) => {
    assert.ok(e instanceof SyncError, `a SyncError: ${String(e)}`);
    assert.equal(e.code, 'SyncBusy');
    assert.match(e.message, /snapshot 22 .* on busy answers: over its budget/);
    return true;
  });
  const fetched = alone.syncer.stats.chunksFetched;
  assert.ok(fetched > 0 && fetched < chunks, `${fetched} chunks fetched`);

  const { syncer } = syncerFor({ dripping, honest: honest(12) });
  const synced = await syncer.run();
  assert.equal(synced.height, 12);
  assert.equal(syncer.stats.offersRefused, 1, 'the dripping offer, once');
});

test('co-providers answering every chunk busy just under ANSWER_MS_MAX do not make an honest offer above the least rate fail', async () => {
  // 200 chunks at 240 ms each (about 4.3 MiB/s): within the offer's budget alone.
  const chunks = 200;
  const bytes = largeSnapshot(12, chunks, true);
  const h: Peer = { snapshots: new Map([[12, bytes]]), block: honestBlock, delayMs: 240 };
  const staller = (): Peer => ({
    snapshots: new Map([[12, bytes]]),
    block: honestBlock,
    delayMs: 249,
    lie: (message, answer) =>
      message.kind === 'chunkRequest'
        ? [{ kind: 'busy', request: message, retryAfterMs: SYNC_BUSY_RETRY_MS_MIN }]
        : answer === null
          ? []
          : [answer],
  });
  // Charged only their time past 250 ms, the stallers kept their place and
  // added their 249 ms to every chunk: SyncBusy after 30 s of it.
  const { syncer } = syncerFor({ h, b1: staller(), b2: staller() });
  const synced = await syncer.run();
  assert.equal(synced.height, 12);
  assert.equal(syncer.stats.offersRefused, 0, 'the honest offer completed');
});

// --- an offer's end after a busy wait ------------------------------------------

test('a busy wait that runs past the offer budget (its busy time over SYNC_BUSY_WAIT_MS_MAX) sends no request after it: the offer ends at its end', async () => {
  // Four busy answers of 1 s before each chunk: past 30 s of busy time the
  // budget's end stops moving, and a wait ends past it.
  const chunks = 13;
  const fake = largeSnapshot(22, chunks, false);
  const tries = new Map<number, number>();
  const chunkAsked: number[] = [];
  let clock: VirtualClock | null = null;
  const dripping: Peer = {
    snapshots: new Map([[22, fake]]),
    block: honestBlock,
    lie: (message, answer) => {
      if (message.kind === 'chunkRequest') {
        chunkAsked.push(clock!.nowMs());
        const n = tries.get(message.index) ?? 0;
        tries.set(message.index, n + 1);
        if (n < 4) return [{ kind: 'busy', request: message, retryAfterMs: 1_000 }];
      }
      return answer === null ? [] : [answer];
    },
  };
  const made = syncerFor({ dripping });
  clock = made.clock;
  await assert.rejects(made.syncer.run(), refusedWith('SyncBusy'));
  // The first chunk is asked as the offer's fetch starts (nothing is awaited before it).
  const endMs = chunkAsked[0]! + offerBudgetMs(fake.length) + SYNC_BUSY_WAIT_MS_MAX;
  const late = chunkAsked.filter((atMs) => atMs >= endMs);
  assert.deepEqual(late, [], `chunks asked at or after the offer's end (${endMs})`);
  assert.ok(
    clock.nowMs() >= endMs,
    'the busy time did outlast the offer budget and the busy allowance',
  );
});

test('a request the offer deadline cuts short (sent a millisecond before it, after a busy wait) and left unanswered costs its peer no timeout and no try', async () => {
  // Busy answers of up to 5 s, timed so that the last wait ends 1 ms before
  // the offer's end, once 30 s of busy time have fixed that end; the request
  // then sent gets no answer within that millisecond.
  const chunks = 13;
  const fake = largeSnapshot(22, chunks, false);
  const budgetMs = offerBudgetMs(fake.length);
  const tries = new Map<number, number>();
  let clock: VirtualClock | null = null;
  let endMs = 0;
  let silentAtMs = 0;
  const dripping: Peer = {
    snapshots: new Map([[22, fake]]),
    block: honestBlock,
    lie: (message, answer) => {
      if (message.kind !== 'chunkRequest') return answer === null ? [] : [answer];
      const nowMs = clock!.nowMs();
      if (endMs === 0) endMs = nowMs + budgetMs + SYNC_BUSY_WAIT_MS_MAX;
      if (nowMs === endMs - 1) {
        silentAtMs = nowMs;
        return [];
      }
      const n = tries.get(message.index) ?? 0;
      tries.set(message.index, n + 1);
      if (n >= 5) return answer === null ? [] : [answer];
      const retryAfterMs = Math.min(SYNC_BUSY_RETRY_MS_MAX, endMs - 1 - nowMs);
      assert.ok(
        retryAfterMs >= SYNC_BUSY_RETRY_MS_MIN,
        `${retryAfterMs} ms: a delay a busy answer may name`,
      );
      return [{ kind: 'busy', request: message, retryAfterMs }];
    },
  };
  const made = syncerFor({ dripping });
  clock = made.clock;
  await assert.rejects(made.syncer.run(), refusedWith('SyncBusy'));
  assert.equal(silentAtMs, endMs - 1, 'a request went out a millisecond before the end');
  assert.equal(made.syncer.stats.retries, 0, 'the deadline, not the peer, left it unanswered');
});
