import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode, encode } from '../../src/codec/wire.ts';
import {
  CATCHUP_ANSWER_BLOCKS_MIN,
  CATCHUP_ANSWER_BYTES_MIN,
  CATCHUP_BATCH_BLOCKS_MAX,
  CATCHUP_BUFFER_BYTES_PER_PEER_MAX,
  CATCHUP_RETRY_MS,
  CATCHUP_SERVE_BYTES_PER_PEER_MAX,
  CATCHUP_SERVE_LOOKUP_BYTES,
  FUTURE_BYTES_PER_PEER_MAX,
  FUTURE_MESSAGES_FULL_NODES_MAX,
  FUTURE_MESSAGES_MAX,
  TX_BYTES_MAX,
  VALIDATORS_MAX,
} from '../../src/lib/limits.ts';
import { committedBlockCodec, messageCodec } from '../../src/consensus/codec.ts';
import { blockHashOf } from '../../src/consensus/replica.ts';
import { toHex, utf8 } from '../../src/lib/bytes.ts';
import { VOTE_TYPE, type Effect } from '../../src/consensus/types.ts';
import { Harness, blockRequestsTo, laggingReplica } from './harness.ts';

/** Runs 4 replicas and keeps, per height, a vote replica 1 sent to replica 0. */
function runWithVotes(height: number): { h: Harness; votes: Map<number, Uint8Array> } {
  const h = new Harness({ n: 4, seed: 31 });
  const votes = new Map<number, Uint8Array>();
  h.filter = (from, to, bytes) => {
    const m = decode(messageCodec, bytes);
    if (from === 1 && to === 0 && m.kind === 'vote') votes.set(m.vote.height, bytes);
    return true;
  };
  h.startAll();
  assert.ok(h.run(() => h.nodes[0]!.replica.height >= height));
  return { h, votes };
}

function blockResponses(effects: readonly Effect[]): number {
  return effects.filter(
    (e) => e.kind === 'send' && decode(messageCodec, e.bytes).kind === 'blockResponse',
  ).length;
}

test('a late vote from the last height pushes no blocks; a peer still there a retry period later gets them', () => {
  const { h, votes } = runWithVotes(8);
  const replica = h.nodes[0]!.replica;
  const late = votes.get(replica.height - 1)!;
  const t = h.nowMs;
  assert.equal(blockResponses(replica.onMessage('p1', late, t)), 0);
  assert.equal(blockResponses(replica.onMessage('p1', late, t + CATCHUP_RETRY_MS - 1)), 0);
  assert.equal(blockResponses(replica.onMessage('p1', late, t + CATCHUP_RETRY_MS)), 1);
});

test('a peer two heights behind is pushed blocks at once, then rate-limited', () => {
  const { h, votes } = runWithVotes(8);
  const replica = h.nodes[0]!.replica;
  const old = votes.get(replica.height - 2)!;
  const t = h.nowMs;
  assert.equal(blockResponses(replica.onMessage('p1', old, t)), 1);
  assert.equal(blockResponses(replica.onMessage('p1', old, t + 1)), 0);
});

test('certified blocks from catch-up are not put to processProposal: a replica whose app rejects every proposal still follows the chain', () => {
  const h = new Harness({ n: 4, seed: 32 });
  let asked = 0;
  h.nodes[3]!.app.rejectProposals = () => {
    asked++;
    return true;
  };
  h.startAll();
  assert.ok(h.run(() => h.minCommitted([0, 1, 2]) >= 12));
  assert.ok(h.run(() => h.height(3) >= 10));
  for (let height = 1; height <= 10; height++) {
    assert.equal(h.nodes[3]!.committed.get(height), h.nodes[0]!.committed.get(height));
  }
  // It refused what it was asked to prevote, and decided only from certificates.
  assert.ok(asked > 0);
  assert.ok(h.nodes[3]!.replica.metrics.rejectedByApp > 0);
});

/** Heights from..from+count-1. */
function range(from: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => from + i);
}

test('a peer that answers pruned is not asked again; the request goes to another peer at once', () => {
  const { h, ahead } = laggingReplica();
  const lagging = h.nodes[3]!.replica;
  const t = h.nowMs;
  assert.equal(lagging.catchingUp(t), false, 'nothing asked yet');
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p1', ahead, t)), ['p1']);
  assert.equal(lagging.catchingUp(t), true, 'a request is out');
  assert.equal(lagging.catchingUp(t + CATCHUP_RETRY_MS), false, 'and went unanswered');
  // p2 is ahead too; one request is outstanding, so it is not asked yet.
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p2', ahead, t)), []);
  // p1 pruned below height 5: p2 is asked now, not a retry period later.
  assert.deepEqual(blockRequestsTo(lagging.onPeerPruned('p1', 5, t)), ['p2']);
  // p2 pruned too: nobody left to ask, and nobody is asked even after the retry period.
  assert.deepEqual(blockRequestsTo(lagging.onPeerPruned('p2', 5, t)), []);
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p1', ahead, t + CATCHUP_RETRY_MS)), []);
  // A pruned answer naming a height we already passed changes nothing.
  assert.deepEqual(blockRequestsTo(lagging.onPeerPruned('p3', 1, t)), []);
  // A new peer ahead is asked.
  const later = t + 2 * CATCHUP_RETRY_MS;
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p3', ahead, later)), ['p3']);
});

test('a pruned answer from a peer we did not ask, or repeated, sends no request: a faulty peer cannot turn each small message into a block request to an honest peer', () => {
  const { h, ahead } = laggingReplica();
  const lagging = h.nodes[3]!.replica;
  const t = h.nowMs;
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p1', ahead, t)), ['p1']);
  // p3 was never asked: its answers (whatever height they name) ask nobody.
  for (let i = 0; i < 10; i++) {
    assert.deepEqual(blockRequestsTo(lagging.onPeerPruned('p3', 5 + i, t)), []);
  }
  // p1 was asked: its answer moves the request on once; repeating it does nothing more.
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p2', ahead, t)), []);
  assert.deepEqual(blockRequestsTo(lagging.onPeerPruned('p1', 5, t)), ['p2']);
  for (let i = 0; i < 10; i++) {
    assert.deepEqual(blockRequestsTo(lagging.onPeerPruned('p1', 6 + i, t)), []);
  }
  // p3's answer was kept: it is not asked for what it said it pruned.
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p3', ahead, t + CATCHUP_RETRY_MS)), ['p2']);
});

test('a peer that sent a block whose certificate fails is not trusted for catch-up again: its forged blocks cannot hold the buffer and slow a lagging replica to one block per retry period', () => {
  const h = new Harness({ n: 4, seed: 34 });
  // Replica 3 hears nothing while the others build a chain.
  h.filter = (from, to) => from !== 3 && to !== 3;
  h.startAll();
  assert.ok(h.run(() => h.minCommitted([0, 1, 2]) >= 30));
  const lagging = h.nodes[3]!;
  assert.equal(lagging.app.height, 0);
  // Replica 2 is Byzantine towards it: it serves nothing real and keeps
  // sending the blocks ahead of it with a forged signature in each certificate.
  const store = h.nodes[0]!.store;
  let lastForgedMs = -Infinity;
  let injecting = false;
  const forged = (): Uint8Array => {
    const blocks = [];
    const from = lagging.replica.height;
    for (let height = from; height < from + CATCHUP_BATCH_BLOCKS_MAX; height++) {
      const real = store.get(height);
      if (real === undefined) break;
      const votes = real.commit.votes.map((v, i) =>
        i === 0 ? { ...v, signature: v.signature.map((b, j) => (j === 0 ? b ^ 1 : b)) } : v,
      );
      blocks.push({ block: real.block, commit: { ...real.commit, votes } });
    }
    return encode(messageCodec, { kind: 'blockResponse', blocks });
  };
  h.filter = (from, to, bytes) => {
    if (to !== 3 || injecting) return true;
    if (from === 2 && decode(messageCodec, bytes).kind === 'blockResponse') return false;
    if (h.nowMs - lastForgedMs >= 20) {
      lastForgedMs = h.nowMs;
      injecting = true;
      h.send(2, 3, forged());
      injecting = false;
    }
    return true;
  };
  // The others add about 8 heights a second; one block per retry period would never catch up.
  assert.ok(h.run(() => lagging.app.height >= 30, CATCHUP_RETRY_MS));
  for (let height = 1; height <= 30; height++) {
    assert.equal(lagging.committed.get(height), h.nodes[0]!.committed.get(height));
  }
  assert.ok(lagging.replica.metrics.badCertificate >= 1);
  // The node's divergence check asks the same before it examines a block response.
  assert.ok(lagging.replica.refusesBlocksFrom('p2'));
  assert.ok(!lagging.replica.refusesBlocksFrom('p0'));
});

test('block requests are served within a budget per peer and retry period: a flood of tiny requests cannot make a replica load and send its blocks without end', () => {
  const { h } = runWithVotes(8);
  const replica = h.nodes[0]!.replica;
  const request = encode(messageCodec, {
    kind: 'blockRequest',
    fromHeight: 1,
    count: CATCHUP_BATCH_BLOCKS_MAX,
  });
  const t = h.nowMs;
  // Each answer is charged the blocks it loaded, and a lookup for the request and for each block.
  const first = replica.onMessage('p1', request, t);
  assert.equal(blockResponses(first), 1);
  const answer = decode(messageCodec, (first[0] as Effect & { kind: 'send' }).bytes);
  assert.ok(answer.kind === 'blockResponse');
  let charge = CATCHUP_SERVE_LOOKUP_BYTES;
  for (const b of answer.blocks) {
    charge += CATCHUP_SERVE_LOOKUP_BYTES + encode(committedBlockCodec, b).length;
  }
  let served = 1;
  for (let i = 0; i < 100_000; i++) served += blockResponses(replica.onMessage('p1', request, t));
  assert.equal(served, Math.ceil(CATCHUP_SERVE_BYTES_PER_PEER_MAX / charge));
  // Another peer has its own budget; the flooder gets a new one a retry period later.
  assert.equal(blockResponses(replica.onMessage('p2', request, t)), 1);
  assert.equal(blockResponses(replica.onMessage('p1', request, t + CATCHUP_RETRY_MS - 1)), 0);
  assert.equal(blockResponses(replica.onMessage('p1', request, t + CATCHUP_RETRY_MS)), 1);
});

test('an honest lagging replica is never refused by the serving budget: each answer draws the next request at once, and thousands of blocks a second stay within it', () => {
  const h = new Harness({ n: 4, seed: 8 });
  h.startAll();
  h.crash(3);
  assert.ok(h.run(() => h.minCommitted([0, 1, 2]) >= 2_000));
  const target = h.minCommitted([0, 1, 2]);
  const startMs = h.nowMs;
  h.restart(3);
  assert.ok(h.run(() => h.height(3) >= target));
  for (const node of h.nodes.slice(0, 3)) assert.equal(node.replica.metrics.rateLimited, 0);
  // No retry period was lost: more than 2,000 blocks in well under one.
  assert.ok(h.nowMs - startMs < CATCHUP_RETRY_MS, `${h.nowMs - startMs} ms`);
});

test('messages kept for the next height are bounded in bytes per peer: one peer cannot fill memory with unverified large proposals', () => {
  const h = new Harness({ n: 4, seed: 35 });
  let proposal: Uint8Array | null = null;
  h.filter = (_from, _to, bytes) => {
    const m = decode(messageCodec, bytes);
    if (proposal === null && m.kind === 'proposal' && m.proposal.height === 2) proposal = bytes;
    return true;
  };
  h.startAll();
  assert.ok(h.run(() => proposal !== null));
  const replica = h.nodes[0]!.replica;
  const m = decode(messageCodec, proposal!);
  assert.ok(m.kind === 'proposal');
  const height = replica.height + 1;
  // Unverified until their height comes: a forged signature costs the sender nothing.
  const tx = new Uint8Array(TX_BYTES_MAX);
  const big = (round: number): Uint8Array =>
    encode(messageCodec, {
      kind: 'proposal',
      proposal: { ...m.proposal, height, round },
      block: { ...m.block, header: { ...m.block.header, height }, txs: new Array(64).fill(tx) },
    });
  const before = replica.metrics.bufferFull;
  const t = h.nowMs;
  let keptBytes = 0;
  for (let round = 0; round < 40; round++) {
    const bytes = big(round);
    const full = replica.metrics.bufferFull;
    replica.onMessage('p9', bytes, t);
    if (replica.metrics.bufferFull === full) keptBytes += bytes.length;
  }
  assert.ok(keptBytes <= FUTURE_BYTES_PER_PEER_MAX, `kept ${keptBytes} bytes`);
  assert.ok(replica.metrics.bufferFull > before);
  // Another peer's message for the next height is still kept.
  const full = replica.metrics.bufferFull;
  replica.onMessage('p1', big(0), t);
  assert.equal(replica.metrics.bufferFull, full);
});

test("messages kept for the next height are bounded in count per peer: one peer cannot take every slot with small votes and keep out the honest peers' proposal and votes", () => {
  const h = new Harness({ n: 4, seed: 35 });
  let vote: Uint8Array | null = null;
  h.filter = (_from, _to, bytes) => {
    const m = decode(messageCodec, bytes);
    if (vote === null && m.kind === 'vote' && m.vote.height === 2) vote = bytes;
    return true;
  };
  h.startAll();
  assert.ok(h.run(() => vote !== null));
  const replica = h.nodes[0]!.replica;
  const m = decode(messageCodec, vote!);
  assert.ok(m.kind === 'vote');
  const height = replica.height + 1;
  const small = (round: number): Uint8Array =>
    encode(messageCodec, { kind: 'vote', vote: { ...m.vote, height, round } });
  const t = h.nowMs;
  for (let round = 0; round <= FUTURE_MESSAGES_MAX; round++)
    replica.onMessage('p9', small(round), t);
  const full = replica.metrics.bufferFull;
  assert.ok(full > 0);
  for (const peer of ['p1', 'p2']) {
    for (let round = 0; round < 3; round++) replica.onMessage(peer, small(round), t);
  }
  assert.equal(replica.metrics.bufferFull, full);
});

test("full nodes together hold a bounded part of the messages kept for the next height: as many of them as there are validators, each within its share, cannot keep out a validator's vote", () => {
  const h = new Harness({ n: 4, seed: 35 });
  let vote: Uint8Array | null = null;
  h.filter = (_from, _to, bytes) => {
    const m = decode(messageCodec, bytes);
    if (vote === null && m.kind === 'vote' && m.vote.height === 2) vote = bytes;
    return true;
  };
  h.startAll();
  assert.ok(h.run(() => vote !== null));
  const replica = h.nodes[0]!.replica;
  const m = decode(messageCodec, vote!);
  assert.ok(m.kind === 'vote');
  const height = replica.height + 1;
  const small = (round: number): Uint8Array =>
    encode(messageCodec, { kind: 'vote', vote: { ...m.vote, height, round } });
  const t = h.nowMs;
  // Four full nodes (peers named by keys no validator holds), each sending up to a peer's share.
  const share = FUTURE_MESSAGES_MAX / h.keys.length;
  let kept = 0;
  for (const peer of ['f0', 'f1', 'f2', 'f3']) {
    for (let round = 0; round < share; round++) {
      const full = replica.metrics.bufferFull;
      replica.onMessage(peer, small(round), t);
      if (replica.metrics.bufferFull === full) kept++;
    }
  }
  assert.equal(kept, FUTURE_MESSAGES_FULL_NODES_MAX);
  // Each validator's node, named by its key as the transport names it, still has its share.
  for (const key of h.keys.slice(1)) {
    const full = replica.metrics.bufferFull;
    for (let round = 0; round < 3; round++)
      replica.onMessage(toHex(key.publicKey), small(round), t);
    assert.equal(replica.metrics.bufferFull, full);
  }
});

/** Bytes a replica wrote to its log among these effects. */
function persistedBytes(effects: readonly Effect[]): number {
  let bytes = 0;
  for (const e of effects) if (e.kind === 'persist') bytes += e.record.length;
  return bytes;
}

/**
 * A blockResponse of `count` blocks of half a MiB from `fromHeight` on, copies
 * of height 1's block with the height changed: kept unchecked until their
 * height comes.
 */
function largeBlocks(h: Harness, fromHeight: number, count: number): Uint8Array {
  const real = h.nodes[0]!.store.get(1)!;
  const tx = new Uint8Array(TX_BYTES_MAX);
  const blocks = [];
  for (let height = fromHeight; height < fromHeight + count; height++) {
    const header = { ...real.block.header, height };
    blocks.push({
      block: { ...real.block, header, txs: new Array(32).fill(tx) },
      commit: real.commit,
    });
  }
  return encode(messageCodec, { kind: 'blockResponse', blocks });
}

test('blocks buffered for catch-up are bounded in bytes per peer: one peer cannot fill memory and the log with unrequested blocks far ahead', () => {
  const { h } = runWithVotes(4);
  const replica = h.nodes[0]!.replica;
  // Unchecked until their height comes: a forged certificate costs the sender nothing.
  const forged = (fromHeight: number, count: number) => largeBlocks(h, fromHeight, count);
  const t = h.nowMs;
  const first = replica.height + 1;
  const before = replica.metrics.bufferFull;
  let logged = 0;
  // Five responses of 16 blocks of half a MiB each: 40 MiB, unasked for.
  for (let i = 0; i < 5; i++)
    logged += persistedBytes(replica.onMessage('p9', forged(first + 16 * i, 16), t));
  assert.ok(logged <= CATCHUP_BUFFER_BYTES_PER_PEER_MAX, `logged ${logged} bytes`);
  assert.ok(replica.metrics.bufferFull > before);
  // Another peer's blocks are still kept (and logged).
  assert.ok(persistedBytes(replica.onMessage('p1', forged(first + 80, 1), t)) > 0);
});

test('a peer that claims to be ahead but does not answer is passed over: the next request goes to another peer ahead, and one that answers keeps the role', () => {
  const h = new Harness({ n: 4, seed: 35 });
  let ahead: Uint8Array | null = null;
  h.filter = (from, to, bytes) => {
    const m = decode(messageCodec, bytes);
    if (from === 1 && to === 0 && m.kind === 'vote' && m.vote.height === 20) ahead = bytes;
    // Replica 3 hears nothing: it stays at height 1 while the others go on.
    return from !== 3 && to !== 3;
  };
  h.startAll();
  assert.ok(h.run(() => ahead !== null));
  const lagging = h.nodes[3]!.replica;
  assert.equal(lagging.height, 1);
  const t = h.nowMs;
  // p1 claims to be ahead first at every turn, and never answers.
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p1', ahead!, t)), ['p1']);
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p2', ahead!, t)), []);
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p1', ahead!, t + CATCHUP_RETRY_MS)), ['p2']);
  // p2 answers with a fair share of the blocks asked for: it keeps the role,
  // and is asked for the next blocks at once, though p1's claim came first.
  const store = h.nodes[0]!.store;
  const blocks = range(1, CATCHUP_ANSWER_BLOCKS_MIN).map((height) => store.get(height)!);
  const answer = encode(messageCodec, { kind: 'blockResponse', blocks });
  const u = t + CATCHUP_RETRY_MS + 1;
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p2', answer, u)), ['p2']);
  // Now p2 leaves that request unanswered: the next goes to the other peer ahead, whoever speaks first.
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p2', ahead!, u + CATCHUP_RETRY_MS)), ['p1']);
  // p1 again does not answer, and p3 is heard ahead: each peer ahead gets its turn.
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p3', ahead!, u + CATCHUP_RETRY_MS)), []);
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p1', ahead!, u + 2 * CATCHUP_RETRY_MS)), [
    'p2',
  ]);
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p1', ahead!, u + 3 * CATCHUP_RETRY_MS)), [
    'p3',
  ]);
});

test('a peer keeps the catch-up role only by answering with the block we asked for: forged blocks far ahead (unchecked until their height) do not keep it', () => {
  const h = new Harness({ n: 4, seed: 35 });
  let ahead: Uint8Array | null = null;
  h.filter = (from, to, bytes) => {
    const m = decode(messageCodec, bytes);
    if (from === 1 && to === 0 && m.kind === 'vote' && m.vote.height === 8) ahead = bytes;
    return from !== 3 && to !== 3;
  };
  h.startAll();
  assert.ok(h.run(() => ahead !== null));
  const lagging = h.nodes[3]!.replica;
  assert.equal(lagging.height, 1);
  const real = h.nodes[0]!.store.get(2)!;
  const forged = (height: number): Uint8Array =>
    encode(messageCodec, {
      kind: 'blockResponse',
      blocks: [
        { block: { ...real.block, header: { ...real.block.header, height } }, commit: real.commit },
      ],
    });
  const t = h.nowMs;
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p1', ahead!, t)), ['p1']);
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p2', ahead!, t)), []);
  // p1 answers each request with a block far from the one we need: kept (it
  // is checked only when its height comes), but no answer to the request.
  for (let turn = 1; turn <= 4; turn++) {
    assert.ok(persistedBytes(lagging.onMessage('p1', forged(100 + turn), t + 1)) > 0);
    const asked = blockRequestsTo(lagging.onMessage('p1', ahead!, t + turn * CATCHUP_RETRY_MS));
    assert.deepEqual(asked, [turn % 2 === 1 ? 'p2' : 'p1'], `turn ${turn}`);
  }
});

/** Runs 4 replicas with replica 3 cut off at height 1; keeps, per height, a vote replica 1 sent to replica 0. */
function runWithLagging(height: number): { h: Harness; votes: Map<number, Uint8Array> } {
  return lagThird(new Harness({ n: 4, seed: 35 }), height);
}

/**
 * Starts `h` with replica 3 cut off, until replica 0 heard replica 1's vote
 * at `height` (replica 3 still at height 1); keeps, per height, a vote
 * replica 1 sent to replica 0.
 */
function lagThird(h: Harness, height: number): { h: Harness; votes: Map<number, Uint8Array> } {
  const votes = new Map<number, Uint8Array>();
  h.filter = (from, to, bytes) => {
    const m = decode(messageCodec, bytes);
    if (from === 1 && to === 0 && m.kind === 'vote') votes.set(m.vote.height, bytes);
    return from !== 3 && to !== 3;
  };
  h.startAll();
  assert.ok(
    h.run(() => votes.has(height)),
    `the others reach height ${height}`,
  );
  assert.equal(h.nodes[3]!.replica.height, 1);
  return { h, votes };
}

/**
 * Delivers a message to the lagging replica 3 and executes each block it
 * decides, as the harness would; returns the peers it sent block requests to.
 */
function deliver(h: Harness, from: string, bytes: Uint8Array, nowMs: number): string[] {
  const node = h.nodes[3]!;
  const asked: string[] = [];
  let effects = node.replica.onMessage(from, bytes, nowMs);
  while (effects.length > 0) {
    asked.push(...blockRequestsTo(effects));
    const next: Effect[] = [];
    for (const e of effects) {
      if (e.kind !== 'finalizeBlock') continue;
      const result = node.app.finalizeBlock(e.block, e.commit);
      node.app.commit();
      next.push(...node.replica.onBlockExecuted(e.block.header.height, result, nowMs));
    }
    effects = next;
  }
  return asked;
}

function responseOf(h: Harness, heights: readonly number[]): Uint8Array {
  const blocks = heights.map((height) => h.nodes[0]!.store.get(height)!);
  return encode(messageCodec, { kind: 'blockResponse', blocks });
}

test('a pruned answer from the peer that answered its fair share asks the next peer in turn, as a busy answer does: not the first peer heard, which may be a silent one', () => {
  const { h, votes } = runWithLagging(100);
  const lagging = h.nodes[3]!.replica;
  const ahead = votes.get(100)!;
  const t = h.nowMs;
  assert.deepEqual(blockRequestsTo(lagging.onMessage('silent', ahead, t)), ['silent']);
  for (const p of ['p1', 'p2', 'p3']) {
    assert.deepEqual(blockRequestsTo(lagging.onMessage(p, ahead, t)), [], `${p}: one request out`);
  }
  const next = t + CATCHUP_RETRY_MS;
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p1', ahead, next)), ['p1']);
  // p1 answers in full: it keeps the role. Block 1 is decided (and left
  // executing) and 2 to 39 held, so nothing more is asked for yet.
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p1', responseOf(h, range(1, 39)), next)), []);
  // Then it has pruned what we need next: the next in turn after it is asked.
  assert.deepEqual(blockRequestsTo(lagging.onPeerPruned('p1', 60, next + 1)), ['p2']);
});

test('with the table of pruned peers full of peers never asked, the pruned answer of the peer asked is still kept: it is not asked again at once, nor at its next claim', () => {
  const { h, votes } = runWithLagging(40);
  const lagging = h.nodes[3]!.replica;
  const ahead = votes.get(40)!;
  const t = h.nowMs;
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p1', ahead, t)), ['p1']);
  // Many peers that were never heard ahead (nor asked) say they pruned.
  for (let i = 0; i < 4 * VALIDATORS_MAX; i++) {
    assert.deepEqual(blockRequestsTo(lagging.onPeerPruned(`x${i}`, 5, t)), []);
  }
  // p1, the one asked, pruned too: with no other peer ahead, nobody is asked.
  assert.deepEqual(blockRequestsTo(lagging.onPeerPruned('p1', 5, t)), []);
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p1', ahead, t + CATCHUP_RETRY_MS)), []);
  // A peer ahead that did not prune is asked.
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p2', ahead, t + CATCHUP_RETRY_MS)), ['p2']);
});

test('a request goes only to a peer whose claim reaches the first height asked for: one heard just two heights past ours is not asked for blocks past those we hold', () => {
  const { h, votes } = runWithLagging(40);
  const lagging = h.nodes[3]!.replica;
  const t = h.nowMs;
  // Blocks 1 to 10 arrive unasked: 1 is decided (and left executing), 2 to 10 are held.
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p3', responseOf(h, range(1, 10)), t)), []);
  assert.equal(lagging.height, 1);
  // p2 is heard at height 3: it holds blocks 1 and 2 at most, and we need 11 on.
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p2', votes.get(3)!, t + 1)), []);
  // p1 is heard at 40: asked at once (nothing went out to p2).
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p1', votes.get(40)!, t + 2)), ['p1']);
  // p1 leaves it unanswered; a retry period later, p2's low claim prompts a request again,
  // and it goes to the one peer claiming 11, not to p2.
  const later = t + 2 + CATCHUP_RETRY_MS;
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p2', votes.get(3)!, later)), ['p1']);
});

test("a peer's push of blocks from below the first height asked for is not its answer: the request stays out for the answer on its way, which then closes it, and nothing it brings is asked for again", () => {
  const { h, votes } = runWithLagging(100);
  const ahead = votes.get(100)!;
  const t = h.nowMs;
  // Blocks 1 to 10 arrive unasked and are applied: we ask for 11 on.
  assert.deepEqual(deliver(h, 'p3', responseOf(h, range(1, 10)), t), []);
  assert.equal(h.nodes[3]!.replica.height, 11);
  assert.deepEqual(deliver(h, 'p1', ahead, t), ['p1']);
  assert.deepEqual(deliver(h, 'p2', ahead, t), []);
  // p1 pushes blocks from 5 (where it heard us) before its answer comes:
  // those from 11 on are applied, but the request (11 to 74) stays out.
  assert.deepEqual(deliver(h, 'p1', responseOf(h, range(5, 26)), t + 1), []);
  assert.equal(h.nodes[3]!.replica.height, 31);
  assert.deepEqual(deliver(h, 'p2', ahead, t + 2), [], 'blocks 31 on are on their way');
  // The answer comes: it closes the request, fairly, and the next asks p1 past it.
  assert.deepEqual(deliver(h, 'p1', responseOf(h, range(11, 64)), t + 3), ['p1']);
  assert.equal(h.nodes[3]!.replica.height, 75);
});

test('a peer that pushes blocks but leaves our request unanswered is passed over in turn: its push is not taken as its answer', () => {
  const { h, votes } = runWithLagging(100);
  const ahead = votes.get(100)!;
  const t = h.nowMs;
  assert.deepEqual(deliver(h, 'p3', responseOf(h, range(1, 10)), t), []);
  assert.deepEqual(deliver(h, 'silent', ahead, t), ['silent']);
  assert.deepEqual(deliver(h, 'p1', ahead, t), []);
  // It pushes (from where it heard us), and never answers the request.
  assert.deepEqual(deliver(h, 'silent', responseOf(h, range(5, 26)), t + 1), []);
  assert.deepEqual(deliver(h, 'silent', ahead, t + 2), []);
  // Its request unanswered for a retry period, the next in turn is asked.
  assert.deepEqual(deliver(h, 'silent', ahead, t + CATCHUP_RETRY_MS), ['p1']);
});

test('a replica restarted in the middle of a catch-up asks for blocks at the first message from a peer ahead: its replay sent no request, so none is waited for', () => {
  const { h, votes } = runWithLagging(40);
  const node = h.nodes[3]!;
  const log = (effects: readonly Effect[]): string[] => {
    for (const e of effects) if (e.kind === 'persist') node.wal.push(e.record);
    return blockRequestsTo(effects);
  };
  const t = h.nowMs;
  assert.deepEqual(log(node.replica.onMessage('p1', votes.get(40)!, t)), ['p1']);
  // p1 answers with part of what it holds: the answer is logged, and it draws
  // the next request. The node stops before it executes a block.
  assert.deepEqual(log(node.replica.onMessage('p1', responseOf(h, range(1, 20)), t + 1)), ['p1']);
  h.restart(3);
  // The replay took the answer again, but sent nothing: within the retry
  // period of the request it drew, the first peer heard ahead is asked at once.
  assert.equal(node.replica.height, 1);
  assert.deepEqual(blockRequestsTo(node.replica.onMessage('p2', votes.get(40)!, t + 2)), ['p2']);
});

test('a peer answering each request with only the block asked for is passed over after one answer: it slows catch-up by one rotation, not to one block per retry period', () => {
  const { h, votes } = runWithLagging(20);
  const lagging = h.nodes[3]!.replica;
  const ahead = votes.get(20)!;
  const t = h.nowMs;
  assert.deepEqual(deliver(h, 'p1', ahead, t), ['p1']);
  assert.deepEqual(deliver(h, 'p2', ahead, t), []);
  // p1 serves the one block asked for first, real and kept: too short to keep
  // the role. The answer closes the request, and the next goes to p2 at once.
  assert.deepEqual(deliver(h, 'p1', responseOf(h, [1]), t + 1), ['p2']);
  assert.equal(lagging.height, 2);
  assert.deepEqual(deliver(h, 'p1', ahead, t + 2), []);
  // p2 serves a fair share: it keeps the role, and is asked for the rest at once.
  const fair = responseOf(h, range(2, CATCHUP_ANSWER_BLOCKS_MIN));
  assert.deepEqual(deliver(h, 'p2', fair, t + 3), ['p2']);
  assert.equal(lagging.height, 2 + CATCHUP_ANSWER_BLOCKS_MIN);
  // p1 is not asked while p2's request is out.
  assert.deepEqual(deliver(h, 'p1', ahead, t + 4), []);
});

test('a peer only a block or two ahead keeps the role by sending all it holds: what a request expects is bounded by the heights the peers were heard at', () => {
  const { h, votes } = runWithLagging(6);
  const lagging = h.nodes[3]!.replica;
  const t = h.nowMs;
  // p2 and p3 are heard two heights ahead of us; p2 is asked.
  assert.deepEqual(deliver(h, 'p2', votes.get(3)!, t), ['p2']);
  assert.deepEqual(deliver(h, 'p3', votes.get(3)!, t), []);
  // It holds blocks 1 and 2 only, and sends them: no peer claims more, so that is its whole share.
  deliver(h, 'p2', responseOf(h, [1, 2]), t + 1);
  assert.equal(lagging.height, 3);
  // Heard ahead again, it is asked again at once; p3 is not, while that request is out.
  assert.deepEqual(deliver(h, 'p2', votes.get(5)!, t + 2), ['p2']);
  assert.deepEqual(deliver(h, 'p3', votes.get(5)!, t + 3), []);
  deliver(h, 'p2', responseOf(h, [3, 4]), t + 4);
  assert.equal(lagging.height, 5);
});

test('a peer that claims to be only a block or two ahead while another claims more is held to the larger share: a low claim of its own does not let it keep the role with one block per request', () => {
  const { h, votes } = runWithLagging(20);
  const lagging = h.nodes[3]!.replica;
  const t = h.nowMs;
  // p2 is heard two heights ahead of us and asked; p1 is heard far ahead.
  assert.deepEqual(deliver(h, 'p2', votes.get(3)!, t), ['p2']);
  assert.deepEqual(deliver(h, 'p1', votes.get(20)!, t), []);
  // p2 sends the two blocks it claims to hold: all of its own claim, far
  // short of what p1 claims, so the next request goes to p1 at once. Claiming
  // one height more at each turn, p2 would otherwise keep the role at a block
  // or two per request.
  assert.deepEqual(deliver(h, 'p2', responseOf(h, [1, 2]), t + 1), ['p1']);
  assert.equal(lagging.height, 3);
  assert.deepEqual(deliver(h, 'p2', votes.get(5)!, t + 2), []);
});

test('an answer is fair by the blocks it lets us apply: a peer that answers with the block asked for and copies of blocks it sent earlier, far ahead, does not keep the role', () => {
  const { h, votes } = runWithLagging(40);
  const lagging = h.nodes[3]!.replica;
  const t = h.nowMs;
  assert.deepEqual(deliver(h, 'p2', votes.get(40)!, t), ['p2']);
  assert.deepEqual(deliver(h, 'p1', votes.get(40)!, t), []);
  // Unasked, p2 sends real blocks far ahead: kept until their height comes.
  const planted = range(20, CATCHUP_ANSWER_BLOCKS_MIN - 1);
  deliver(h, 'p2', responseOf(h, planted), t + 1);
  // Its answer: the block asked for, and those again (already held): short,
  // so the next request goes to p1 at once.
  assert.deepEqual(deliver(h, 'p2', responseOf(h, [1, ...planted]), t + 2), ['p1']);
  assert.equal(lagging.height, 2);
  assert.deepEqual(deliver(h, 'p2', votes.get(40)!, t + 3), []);
});

/** Four replicas (seed 33) where node 3 computes another state after height 5 (a nondeterminism bug, say). */
function divergingAfter5(): { h: Harness; app: Harness['nodes'][number]['app'] } {
  const h = new Harness({ n: 4, seed: 33 });
  const app = h.nodes[3]!.app;
  const execute = app.finalizeBlock.bind(app);
  app.finalizeBlock = (block, commit) => {
    const r = execute(block, commit);
    if (block.header.height !== 5) return r;
    app.appHash = new Uint8Array(32).fill(7);
    const wrong = { ...r, appHash: app.appHash };
    app.results.set(5, wrong);
    return wrong;
  };
  return { h, app };
}

test('a replica whose execution diverged from the chain says so when a certified block of its next height shows it, instead of refusing the peer that sent it and waiting', () => {
  const { h, app } = divergingAfter5();
  // No proposal reaches node 3: it never holds the block its precommits
  // decide, so only a peer's catch-up answer shows it the divergence.
  h.filter = (_from, to, bytes) => to !== 3 || decode(messageCodec, bytes).kind !== 'proposal';
  const diverged: Extract<Effect, { kind: 'diverged' }>[] = [];
  h.afterEffect = (node, e) => {
    if (node.index === 3 && e.kind === 'diverged') diverged.push(e);
  };
  h.startAll();
  assert.ok(h.run(() => h.minCommitted([0, 1, 2]) >= 10));
  assert.ok(diverged.length > 0, 'the divergence was reported');
  const e = diverged[0]!;
  assert.equal(e.height, 5);
  assert.deepEqual(e.ourAppHash, app.results.get(5)!.appHash);
  assert.deepEqual(e.chainAppHash, h.nodes[0]!.app.results.get(5)!.appHash);
  // It executed nothing past the divergence.
  assert.equal(h.height(3), 5);
});

test('peers that answer each request at once with only the block asked for cost one request per block gained, no more', () => {
  const { h, votes } = runWithLagging(40);
  const lagging = h.nodes[3]!.replica;
  const t = h.nowMs;
  assert.deepEqual(deliver(h, 'p1', votes.get(40)!, t), ['p1']);
  assert.deepEqual(deliver(h, 'p2', votes.get(40)!, t), []);
  // Each answers with the one block asked for (the lagging height, once the
  // last is executed): short, so the two ping-pong, and each answer draws
  // the next request at once. Every request is paid for by a block gained.
  let asked = ['p1'];
  let requests = 1;
  for (let step = 1; asked.length > 0; step++) {
    assert.equal(asked.length, 1);
    asked = deliver(h, asked[0]!, responseOf(h, [lagging.height]), t + step);
    requests += asked.length;
    assert.ok(step < 100);
  }
  assert.equal(lagging.height, 40);
  assert.ok(requests <= 39, `${requests} requests for 39 blocks`);
});

test('once the last request is answered, a decided block we never received is asked for at once, not a retry period after that request', () => {
  const h = new Harness({ n: 4, seed: 35 });
  const votes = new Map<number, Uint8Array>();
  const precommits = new Map<number, Map<number, Uint8Array>>();
  h.filter = (from, to, bytes) => {
    const m = decode(messageCodec, bytes);
    if (m.kind === 'vote') {
      if (from === 1 && to === 0) votes.set(m.vote.height, bytes);
      if (m.vote.type === VOTE_TYPE.precommit && m.vote.blockHash !== null) {
        const at = precommits.get(m.vote.height) ?? new Map<number, Uint8Array>();
        precommits.set(m.vote.height, at.set(from, bytes));
      }
    }
    return from !== 3 && to !== 3;
  };
  h.startAll();
  assert.ok(h.run(() => votes.has(21)));
  const lagging = h.nodes[3]!.replica;
  const t = h.nowMs;
  assert.deepEqual(deliver(h, 'p1', votes.get(20)!, t), ['p1']);
  // p1 answers with all it claimed to hold: the request is closed, and no peer claims more.
  assert.deepEqual(deliver(h, 'p1', responseOf(h, range(1, 19)), t + 1), []);
  assert.equal(lagging.height, 20);
  // p1 is heard at 21 (it committed 20), and 2f+1 precommits for 20 arrive
  // without its proposal: nothing is out, so the block is asked for now.
  assert.deepEqual(deliver(h, 'p1', votes.get(21)!, t + 2), []);
  const asked: string[] = [];
  for (const [from, bytes] of precommits.get(20)!)
    asked.push(...deliver(h, `v${from}`, bytes, t + 3));
  assert.deepEqual(asked, ['p1']);
});

function blockRequestsOf(effects: readonly Effect[]): { fromHeight: number; count: number }[] {
  return effects.flatMap((e) => {
    if (e.kind !== 'send') return [];
    const m = decode(messageCodec, e.bytes);
    return m.kind === 'blockRequest' ? [{ fromHeight: m.fromHeight, count: m.count }] : [];
  });
}

test('a block request asks only for what the catch-up buffer can take: none while it is full, and no more than its room (an answer of blocks it would drop closes nothing, and the next request would wait a retry period)', () => {
  const { h, votes } = runWithLagging(300);
  const lagging = h.nodes[3]!.replica;
  const t = h.nowMs;
  // Blocks 1 to 250 arrive unasked: 1 is decided (and left executing), 2 to 250 are held.
  for (let from = 1; from <= 250; from += CATCHUP_BATCH_BLOCKS_MAX) {
    const heights = range(from, Math.min(CATCHUP_BATCH_BLOCKS_MAX, 251 - from));
    lagging.onMessage('p3', responseOf(h, heights), t);
  }
  assert.equal(lagging.height, 1);
  // Room for heights 251 to 256 (the buffer holds up to CATCHUP_BUFFER_BLOCKS_MAX past ours).
  assert.deepEqual(blockRequestsOf(lagging.onMessage('p1', votes.get(300)!, t + 1)), [
    { fromHeight: 251, count: 6 },
  ]);
  lagging.onMessage('p1', responseOf(h, range(251, 6)), t + 2);
  // Full: nothing is asked for (it was asked for 257 to 320, all of them dropped).
  assert.deepEqual(blockRequestsOf(lagging.onMessage('p1', votes.get(300)!, t + 3)), []);
});

test('an answer bringing every block a request asked for keeps its sender the role, however few the buffer had room for', () => {
  const { h, votes } = runWithLagging(300);
  const node = h.nodes[3]!;
  const lagging = node.replica;
  const t = h.nowMs;
  // Blocks 1 to 250 arrive unasked: 1 is decided (and left executing), 2 to 250 are held.
  const effects: Effect[] = [];
  for (let from = 1; from <= 250; from += CATCHUP_BATCH_BLOCKS_MAX) {
    const heights = range(from, Math.min(CATCHUP_BATCH_BLOCKS_MAX, 251 - from));
    effects.push(...lagging.onMessage('p3', responseOf(h, heights), t));
  }
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p1', votes.get(300)!, t + 1)), ['p1']);
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p2', votes.get(300)!, t + 1)), []);
  // p1 brings all six blocks the buffer had room for.
  lagging.onMessage('p1', responseOf(h, range(251, 6)), t + 2);
  // Block 1 executed: room for one more block, asked of p1 again, not of the next peer in turn.
  const first = effects.find((e) => e.kind === 'finalizeBlock');
  assert.ok(first !== undefined && first.kind === 'finalizeBlock');
  const result = node.app.finalizeBlock(first.block, first.commit);
  node.app.commit();
  assert.deepEqual(blockRequestsTo(lagging.onBlockExecuted(1, result, t + 3)), []);
  const next = lagging.onMessage('p2', votes.get(300)!, t + 4);
  assert.deepEqual(blockRequestsOf(next), [{ fromHeight: 257, count: 1 }]);
  assert.deepEqual(blockRequestsTo(next), ['p1']);
});

/** Transactions of TX_BYTES_MAX in the large blocks of height `height`: each block is more than half a message, so one fills an answer. */
function largeTxCount(height: number): number {
  return 290 + ((height * 7) % 5) * 17;
}

/**
 * Runs 4 replicas whose blocks up to height `largeUpTo` carry
 * largeTxCount(height) transactions of TX_BYTES_MAX (each block more than
 * half a message, so an answer carries one and a peer's catch-up share
 * holds three), with replica 3 cut off at height 1, until replica 0 heard
 * replica 1's vote at `height`; keeps, per height, a vote replica 1 sent to
 * replica 0.
 */
function runLargeWithLagging(
  height: number,
  largeUpTo = height,
  sizedStore = true,
): { h: Harness; votes: Map<number, Uint8Array> } {
  const h = new Harness({ n: 4, seed: 36, compactWal: true, sizedStore });
  const tx = new Uint8Array(TX_BYTES_MAX);
  for (const node of h.nodes) {
    const small = node.app.prepareProposal.bind(node.app);
    node.app.prepareProposal = (at, round) =>
      at > largeUpTo
        ? small(at, round)
        : [
            utf8(`${at}/${round} from ${node.index}`),
            ...new Array<Uint8Array>(largeTxCount(at)).fill(tx),
          ];
  }
  return lagThird(h, height);
}

/** Catch-up bytes (committedBytesOf's bound) of replica 0's block at `height`. */
function heldBytesOf(h: Harness, height: number): number {
  const b = h.nodes[0]!.store.get(height)!;
  let bytes = 1024;
  for (const tx of b.block.txs) bytes += 4 + tx.length;
  for (const v of b.block.lastCommit?.votes ?? []) bytes += 128 + v.extension.length;
  for (const v of b.commit.votes) bytes += 128 + v.extension.length;
  return bytes;
}

/** A blockResponse of replica 0's block at `height` with its height changed to `as`: its certificate fails there. */
function forgedAt(h: Harness, height: number, as: number): Uint8Array {
  const real = h.nodes[0]!.store.get(height)!;
  const block = { ...real.block, header: { ...real.block.header, height: as } };
  return encode(messageCodec, { kind: 'blockResponse', blocks: [{ block, commit: real.commit }] });
}

test('a peer whose share is full of blocks held past a missing height still brings that height: its own farthest blocks make room, and no retry period is lost', () => {
  const { h, votes } = runLargeWithLagging(12);
  const lagging = h.nodes[3]!.replica;
  const t = h.nowMs;
  for (let height = 1; height <= 11; height++) {
    assert.ok(
      heldBytesOf(h, height) > CATCHUP_ANSWER_BYTES_MIN,
      `block ${height} is over half a message`,
    );
  }
  // p0 pushed blocks 3 to 5 unasked (one a message): held past the missing
  // 1 and 2, they fill its share (a fourth block would not fit).
  for (const height of [3, 4, 5]) {
    assert.ok(
      persistedBytes(lagging.onMessage('p0', responseOf(h, [height]), t)) > 0,
      `${height} kept`,
    );
  }
  assert.ok(
    heldBytesOf(h, 3) + heldBytesOf(h, 4) + heldBytesOf(h, 5) + heldBytesOf(h, 1) >
      CATCHUP_BUFFER_BYTES_PER_PEER_MAX,
    "p0's share has no room for block 1",
  );
  const full = lagging.metrics.bufferFull;
  // p0 is heard ahead and asked for block 1 on; it is the only peer.
  assert.deepEqual(deliver(h, 'p0', votes.get(12)!, t + 1), ['p0']);
  // Its answer brings block 1: kept, its farthest block (5) pushed out to
  // make room, block 1 applied, and block 2 asked for at once.
  assert.deepEqual(deliver(h, 'p0', responseOf(h, [1]), t + 2), ['p0']);
  assert.equal(lagging.height, 2);
  assert.equal(lagging.metrics.bufferFull, full + 1, 'block 5 was pushed out');
  // Block 2 fits beside 3 and 4; with it, 3 and 4 are applied, and 5 is
  // asked for again at once.
  assert.deepEqual(deliver(h, 'p0', responseOf(h, [2]), t + 3), ['p0']);
  assert.equal(lagging.height, 5);
  assert.deepEqual(deliver(h, 'p0', responseOf(h, [5]), t + 4), ['p0']);
  assert.equal(lagging.height, 6);
  for (let height = 1; height <= 5; height++) {
    assert.deepEqual(h.nodes[3]!.app.results.get(height), h.nodes[0]!.app.results.get(height));
  }
});

test("a long run of large blocks is caught up from a single peer whose share starts full of blocks held past a missing height: no retry period is lost to the lagging replica's buffer", () => {
  const target = 40;
  const { h } = runLargeWithLagging(target + 1, target);
  const lagging = h.nodes[3]!;
  // p0 pushed blocks 5 to 7 unasked: held past the missing 1 to 4, they fill its share.
  for (const height of [5, 6, 7]) {
    assert.ok(
      persistedBytes(lagging.replica.onMessage('p0', responseOf(h, [height]), h.nowMs)) > 0,
    );
  }
  // Now replica 3 hears replica 0 alone (and replica 0 it), while the others go on.
  const rateLimited = h.nodes[0]!.replica.metrics.rateLimited;
  const requests: { fromHeight: number; atMs: number }[] = [];
  h.filter = (from, to, bytes) => {
    if (from === 3 && to === 0) {
      const m = decode(messageCodec, bytes);
      if (m.kind === 'blockRequest') requests.push({ fromHeight: m.fromHeight, atMs: h.nowMs });
    }
    return (from !== 3 && to !== 3) || (from === 0 && to === 3) || (from === 3 && to === 0);
  };
  assert.ok(
    h.run(() => h.height(3) >= target, 15_000),
    `replica 3 reached ${h.height(3)}`,
  );
  for (let height = 1; height <= target; height++) {
    assert.equal(
      lagging.committed.get(height),
      h.nodes[0]!.committed.get(height),
      `block ${height}`,
    );
    assert.deepEqual(lagging.app.results.get(height), h.nodes[0]!.app.results.get(height));
  }
  // An answered request is followed by the next at once; a retry period
  // between two requests is one lost. Each was lost because replica 0
  // refused a request for its serving budget (about eight such blocks a
  // period: the block that did not fit an answer is charged too), none
  // because the lagging replica dropped an answer.
  let waits = 0;
  for (let i = 1; i < requests.length; i++) {
    if (requests[i]!.atMs - requests[i - 1]!.atMs >= CATCHUP_RETRY_MS / 2) waits++;
  }
  const refused = h.nodes[0]!.replica.metrics.rateLimited - rateLimited;
  assert.ok(waits <= refused, `${waits} retry periods lost, ${refused} requests refused`);
  assert.ok(waits <= target / 8, `${waits} retry periods lost for ${target} blocks`);
  assert.ok(requests.length <= target + waits, `${requests.length} requests for ${target} blocks`);
});

test("a peer sending forged or unrequested blocks pushes out only its own, never another peer's, and does not keep the catch-up role", () => {
  const { h, votes } = runLargeWithLagging(12);
  const lagging = h.nodes[3]!.replica;
  const t = h.nowMs;
  // p1 (honest) pushed real blocks 3 and 4.
  for (const height of [3, 4]) {
    assert.ok(persistedBytes(lagging.onMessage('p1', responseOf(h, [height]), t)) > 0);
  }
  // p2 fills its share with forged copies far ahead (unchecked until their height comes).
  for (const height of [20, 21, 22]) {
    assert.ok(persistedBytes(lagging.onMessage('p2', forgedAt(h, 2, height), t)) > 0);
  }
  assert.equal(
    persistedBytes(lagging.onMessage('p2', forgedAt(h, 2, 23), t)),
    0,
    "p2's share is full",
  );
  // Forged blocks at p1's heights, or unrequested ones between: p1's blocks
  // stay, and an unrequested one pushes out nothing, not even p2's own (a
  // faulty peer would otherwise have its far blocks logged again at every
  // height): dropped.
  const full = lagging.metrics.bufferFull;
  assert.equal(persistedBytes(lagging.onMessage('p2', forgedAt(h, 2, 3), t)), 0);
  assert.equal(persistedBytes(lagging.onMessage('p2', forgedAt(h, 2, 4), t)), 0);
  assert.equal(persistedBytes(lagging.onMessage('p2', forgedAt(h, 2, 6), t)), 0, '6 dropped');
  assert.equal(lagging.metrics.bufferFull, full + 1, 'dropped as bufferFull');
  assert.equal(persistedBytes(lagging.onMessage('p1', responseOf(h, [3]), t)), 0, '3 still held');
  assert.equal(persistedBytes(lagging.onMessage('p1', responseOf(h, [4]), t)), 0, '4 still held');
  assert.equal(persistedBytes(lagging.onMessage('p3', forgedAt(h, 2, 22), t)), 0, '22 still held');
  // p2 is heard ahead first and asked; p1 is heard ahead too.
  assert.deepEqual(deliver(h, 'p2', votes.get(12)!, t + 1), ['p2']);
  assert.deepEqual(deliver(h, 'p1', votes.get(12)!, t + 1), []);
  // Its answer of a block it was asked for but not the first, lower than its
  // far ones (which it pushes out), closes nothing: p1 is asked once the
  // retry period is over.
  assert.ok(persistedBytes(lagging.onMessage('p2', forgedAt(h, 2, 7), t + 2)) > 0, '7 kept');
  assert.deepEqual(deliver(h, 'p2', votes.get(12)!, t + 3), []);
  assert.deepEqual(deliver(h, 'p1', votes.get(12)!, t + 1 + CATCHUP_RETRY_MS), ['p1']);
  // Asked again in turn, it answers with a forged block at the height asked
  // for: kept by pushing out its own farthest, applied at once, found forged:
  // all its blocks go, and p1 is asked at once.
  assert.deepEqual(deliver(h, 'p2', votes.get(12)!, t + 1 + 2 * CATCHUP_RETRY_MS), ['p2']);
  assert.deepEqual(deliver(h, 'p2', forgedAt(h, 2, 1), t + 2 + 2 * CATCHUP_RETRY_MS), ['p1']);
  assert.ok(lagging.refusesBlocksFrom('p2'));
  assert.equal(lagging.height, 1);
  // p1's blocks were never touched: with 1 and 2 from it, 3 and 4 are applied.
  deliver(h, 'p1', responseOf(h, [1]), t + 3 + 2 * CATCHUP_RETRY_MS);
  deliver(h, 'p1', responseOf(h, [2]), t + 4 + 2 * CATCHUP_RETRY_MS);
  assert.equal(lagging.height, 5);
});

test('a block pushed out of the catch-up buffer after it was logged is kept again by a replay of the log, within the share', () => {
  const { h, votes } = runLargeWithLagging(12);
  const node = h.nodes[3]!;
  const log = (effects: readonly Effect[]): number => {
    for (const e of effects) if (e.kind === 'persist') node.wal.push(e.record);
    return persistedBytes(effects);
  };
  const t = h.nowMs;
  for (const height of [3, 4, 5])
    assert.ok(log(node.replica.onMessage('p0', responseOf(h, [height]), t)) > 0);
  assert.deepEqual(blockRequestsTo(node.replica.onMessage('p0', votes.get(12)!, t + 1)), ['p0']);
  // Block 1, asked for, pushes out 5 (logged before it) and is decided; the
  // node stops before executing it.
  assert.ok(log(node.replica.onMessage('p0', responseOf(h, [1]), t + 2)) > 0);
  assert.equal(node.replica.metrics.bufferFull, 1, 'block 1 pushed out one block');
  h.restart(3);
  const replayed = node.replica;
  assert.equal(replayed.height, 1);
  // The replay sent no request, so there block 1 is unasked: it is kept over
  // the share without pushing anything out and applied at once, which brings
  // the share back within its bound. 5 is held again (it is in the record
  // that brought it); no decision differs.
  assert.equal(replayed.metrics.bufferFull, 0, 'the replay pushed out nothing');
  for (const height of [3, 4, 5]) {
    assert.equal(
      persistedBytes(replayed.onMessage('p0', responseOf(h, [height]), t + 3)),
      0,
      `${height} already held`,
    );
  }
  // The share is full again: a further unasked block of p0 above them is dropped.
  assert.equal(persistedBytes(replayed.onMessage('p0', responseOf(h, [6]), t + 3)), 0);
  assert.equal(replayed.metrics.bufferFull, 1, '6 found the share full');
});

/** p0's blocks 10 to 12, unasked, fill its share of replica 3's catch-up buffer (each kept and logged). */
function fillShareFromP0(
  h: Harness,
  replica: Harness['nodes'][number]['replica'],
  t: number,
): void {
  for (const height of [10, 11, 12]) {
    assert.ok(
      persistedBytes(replica.onMessage('p0', responseOf(h, [height]), t)) > 0,
      `${height} kept`,
    );
  }
}

test('a sole serving peer whose share is full of blocks past a gap, unasked blocks of it refused, still brings the gap: catch-up goes on', () => {
  const { h } = runLargeWithLagging(20);
  const lagging = h.nodes[3]!;
  const t = h.nowMs;
  // p0's real blocks arrive out of order, unasked (pushes, or late answers):
  // 10 to 12 fill its share; 9, 8 and 7 find it full and, unasked, push out
  // nothing (a faulty peer could otherwise have its far blocks logged again
  // at every height): dropped.
  fillShareFromP0(h, lagging.replica, t);
  for (const height of [9, 8, 7]) {
    assert.equal(
      persistedBytes(lagging.replica.onMessage('p0', responseOf(h, [height]), t)),
      0,
      `${height} dropped`,
    );
  }
  // Block 1, the one the node needs, pushes out p0's blocks above it: without
  // it they are never applied, and nothing else would free p0's share.
  let requests = 0;
  h.filter = (from, to, bytes) => {
    if (from === 3 && to === 0 && decode(messageCodec, bytes).kind === 'blockRequest') requests++;
    return (from !== 3 && to !== 3) || (from === 0 && to === 3) || (from === 3 && to === 0);
  };
  h.run(() => lagging.replica.height > 1, 20_000);
  assert.ok(requests > 0, `${requests} requests were sent`);
  assert.ok(
    lagging.replica.height > 1,
    `replica 3 stuck at height ${lagging.replica.height} after ${requests} requests`,
  );
});

test("an unasked block of our height is kept without pushing out its sender's far blocks: a faulty peer cannot have them logged again at each height while we are behind", () => {
  const { h } = runLargeWithLagging(20);
  const lagging = h.nodes[3]!;
  const t = h.nowMs;
  // p0's share full of far blocks, unasked.
  fillShareFromP0(h, lagging.replica, t);
  // Block 1, unasked, of our height: kept over the share and applied at once.
  assert.ok(
    persistedBytes(lagging.replica.onMessage('p0', responseOf(h, [1]), t)) > 0,
    'block 1 kept',
  );
  assert.equal(lagging.replica.metrics.bufferFull, 0, 'block 1 pushed out nothing');
  // The far blocks are still held: sent again, they are not logged again.
  const oldHeight = lagging.replica.metrics.oldHeight;
  for (const height of [10, 11, 12]) {
    assert.equal(
      persistedBytes(lagging.replica.onMessage('p0', responseOf(h, [height]), t)),
      0,
      `${height} still held`,
    );
  }
  assert.equal(lagging.replica.metrics.oldHeight, oldHeight + 3, 'each refused as held');
});

test('an answer of large blocks is charged for the blocks it carries: a store that tells sizes spares the block that would not fit, and a lagger gets twice the blocks per period', () => {
  const answersPerPeriod = (sizedStore: boolean): number => {
    const { h } = runLargeWithLagging(12, 12, sizedStore);
    const server = h.nodes[0]!.replica;
    const t = h.nowMs;
    let answers = 0;
    for (let i = 0; i < 100; i++) {
      // Each block is over half a message, so each answer carries one.
      const effects = server.onMessage(
        'p3',
        encode(messageCodec, { kind: 'blockRequest', fromHeight: 1 + (i % 10), count: 2 }),
        t,
      );
      for (const e of effects) {
        if (e.kind !== 'send') continue;
        const m = decode(messageCodec, e.bytes);
        if (m.kind === 'blockResponse') {
          assert.equal(m.blocks.length, 1, 'one large block per answer');
          answers++;
        }
      }
    }
    return answers;
  };
  const sized = answersPerPeriod(true);
  const loaded = answersPerPeriod(false);
  assert.ok(sized >= 2 * loaded - 1, `${sized} answers with sizes against ${loaded} without`);
});

test('a diverged replica holding the next block and 2/3+ precommits for it says so at once, as catch-up would, without asking a peer for blocks', () => {
  const { h, app } = divergingAfter5();
  // No committed block reaches node 3 from a peer: only the proposal and the
  // votes of height 6 can show it the divergence.
  h.filter = (_from, to, bytes) => to !== 3 || decode(messageCodec, bytes).kind !== 'blockResponse';
  const diverged: { e: Extract<Effect, { kind: 'diverged' }>; othersAt: number }[] = [];
  h.afterEffect = (node, e) => {
    if (node.index === 3 && e.kind === 'diverged') {
      diverged.push({ e, othersAt: h.minCommitted([0, 1, 2]) });
    }
  };
  h.startAll();
  assert.ok(h.run(() => h.minCommitted([0, 1, 2]) >= 10));
  assert.equal(diverged.length, 1, 'the divergence was reported, once');
  const { e, othersAt } = diverged[0]!;
  // The report catch-up gives: the height after which the states differ,
  // both hashes, and the certified block of the next height.
  assert.equal(e.height, 5);
  assert.deepEqual(e.ourAppHash, app.results.get(5)!.appHash);
  assert.deepEqual(e.chainAppHash, h.nodes[0]!.app.results.get(5)!.appHash);
  const chainBlock = h.nodes[0]!.app.blocks.find((b) => b.header.height === 6)!;
  assert.deepEqual(blockHashOf(e.block.block), blockHashOf(chainBlock));
  assert.equal(e.block.commit.height, 6);
  assert.deepEqual(e.block.commit.blockHash, blockHashOf(chainBlock));
  // At once: by the time the others decided 6, not heights later.
  assert.ok(othersAt <= 6, `reported when the others had committed ${othersAt}`);
  assert.equal(h.height(3), 5);
});
