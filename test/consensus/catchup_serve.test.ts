// The catch-up serving budget all peers share (Replica.serveWithinBudgets):
// many peers, each within its own budget, draw at most the shared budget
// beyond their floors; full nodes at most half of it, and each validator that
// asked lately its share of the other half whatever the others ask; a request
// over it is answered blockBusy, and the asker turns to another peer at once.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DecodeError, decode, encode } from '../../src/codec/wire.ts';
import {
  CATCHUP_RETRY_MS,
  CATCHUP_SERVE_BYTES_PER_PEER_MAX,
  CATCHUP_SERVE_FLOOR_BYTES,
  CATCHUP_SERVE_FULL_NODES_PART,
  CATCHUP_SERVE_LOOKUP_BYTES,
  CATCHUP_SERVE_TOTAL_BYTES_PER_S,
  CATCHUP_SERVE_TOTAL_MIB_PER_S_MIN,
} from '../../src/lib/limits.ts';
import { committedBlockCodec, messageCodec } from '../../src/consensus/codec.ts';
import { toHex } from '../../src/lib/bytes.ts';
import type { Effect } from '../../src/consensus/types.ts';
import type { Replica } from '../../src/consensus/replica.ts';
import { FAST_TIMEOUTS, Harness, blockRequestsTo, laggingReplica } from './harness.ts';

const MIB = 1024 * 1024;

const request = encode(messageCodec, { kind: 'blockRequest', fromHeight: 1, count: 64 });

/**
 * What a server's effects for one request show: the charge of the blocks it
 * answered with (a lookup for the request and each block, and each block's
 * bytes: they are small, so none was left out of the answer for its size),
 * 0 if it sent none; and whether it answered busy.
 */
function servedBy(effects: readonly Effect[]): { charge: number; busy: boolean } {
  let charge = 0;
  let busy = false;
  for (const e of effects) {
    if (e.kind !== 'send') continue;
    const m = decode(messageCodec, e.bytes);
    if (m.kind === 'blockBusy') busy = true;
    if (m.kind !== 'blockResponse') continue;
    charge += CATCHUP_SERVE_LOOKUP_BYTES;
    for (const b of m.blocks) {
      charge += CATCHUP_SERVE_LOOKUP_BYTES + encode(committedBlockCodec, b).length;
    }
  }
  return { charge, busy };
}

test('many peers asking for blocks, each within its own budget, draw at most the shared budget beyond their floors: full nodes at most half of it, the validators the rest, each peer its floor; a request over it is answered blockBusy', () => {
  const h = new Harness({ n: 4, seed: 41 });
  h.startAll();
  assert.ok(
    h.run(() => h.minCommitted() >= 20),
    'the chain grows',
  );
  const server = h.nodes[0]!.replica;
  const fullNodes = Array.from({ length: 40 }, (_, i) => `full${i}`);
  // The transport names a validator's node by its key: these count as validators.
  const validators = h.keys.slice(1, 4).map((k) => toHex(k.publicKey));
  const peers = [...fullNodes, ...validators];
  const t = h.nowMs;
  // Each peer's answers in turn (their charges) and busy answers (-1), all within one period.
  const events = new Map<string, number[]>(peers.map((p) => [p, []]));
  // Full nodes ask first at each round: they would take everything if they could.
  for (let round = 0; round < 250; round++) {
    for (const peer of peers) {
      const { charge, busy } = servedBy(server.onMessage(peer, request, t));
      if (charge > 0) events.get(peer)!.push(charge);
      if (busy) events.get(peer)!.push(-1);
    }
  }
  let answerMax = 0;
  let total = 0;
  let sharedFullNodes = 0;
  let sharedValidators = 0;
  let busyAnswers = 0;
  for (const peer of peers) {
    // Its first CATCHUP_SERVE_FLOOR_BYTES of the period are its floor; the rest the shared budget's.
    let drawn = 0;
    let floor = 0;
    for (const charge of events.get(peer)!) {
      if (charge < 0) {
        busyAnswers++;
        assert.ok(drawn >= CATCHUP_SERVE_FLOOR_BYTES, `${peer} answered busy within its floor`);
        drawn += CATCHUP_SERVE_LOOKUP_BYTES;
        continue;
      }
      answerMax = Math.max(answerMax, charge);
      total += charge;
      if (drawn < CATCHUP_SERVE_FLOOR_BYTES) floor += charge;
      else if (validators.includes(peer)) sharedValidators += charge;
      else sharedFullNodes += charge;
      drawn += charge;
    }
    assert.ok(floor >= CATCHUP_SERVE_FLOOR_BYTES, `${peer} was served its floor (${floor} bytes)`);
    assert.ok(drawn <= CATCHUP_SERVE_BYTES_PER_PEER_MAX + answerMax, `${peer} within its own`);
  }
  const fullNodesMax = CATCHUP_SERVE_TOTAL_BYTES_PER_S / CATCHUP_SERVE_FULL_NODES_PART;
  assert.ok(
    sharedFullNodes <= fullNodesMax + answerMax,
    `full nodes drew ${sharedFullNodes} bytes of the shared budget, over their part of ${fullNodesMax}`,
  );
  assert.ok(
    sharedFullNodes + sharedValidators <= CATCHUP_SERVE_TOTAL_BYTES_PER_S + answerMax,
    `${sharedFullNodes + sharedValidators} bytes of the shared budget drawn, over ${CATCHUP_SERVE_TOTAL_BYTES_PER_S}`,
  );
  assert.ok(
    sharedValidators >= CATCHUP_SERVE_TOTAL_BYTES_PER_S - fullNodesMax - answerMax,
    `the validators drew ${sharedValidators} bytes: their part is theirs whatever full nodes ask`,
  );
  // The bound as a whole: the shared budget, and a floor and an answer per peer.
  const bound =
    CATCHUP_SERVE_TOTAL_BYTES_PER_S +
    answerMax +
    peers.length * (CATCHUP_SERVE_FLOOR_BYTES + answerMax);
  assert.ok(total <= bound, `${total} bytes served in one period, over ${bound}`);
  assert.ok(busyAnswers > 0, 'requests over the shared budget were answered busy');
  assert.equal(server.metrics.busy, busyAnswers);
  assert.equal(server.metrics.rateLimited, 0, 'no peer went past its own budget');
  // The next period, a full node is served again.
  assert.ok(servedBy(server.onMessage(fullNodes[0]!, request, t + CATCHUP_RETRY_MS)).charge > 0);
});

test('an honest lagging replica catches up while other peers, each within its own budget, flood its servers with block requests; what they draw stays within the shared bound', () => {
  // The least shared budget the config allows: the flood is the larger part of what is asked.
  const totalBytes = CATCHUP_SERVE_TOTAL_MIB_PER_S_MIN * MIB;
  const h = new Harness({ n: 4, seed: 8, catchupServeTotalBytesPerS: totalBytes });
  h.startAll();
  h.crash(3);
  assert.ok(h.run(() => h.minCommitted([0, 1, 2]) >= 3_000));
  const target = h.minCommitted([0, 1, 2]);
  const flooders = Array.from({ length: 6 }, (_, i) => `flood${i}`);
  const servers = [0, 1, 2];
  const drawn = [0, 0, 0];
  let answerMax = 0;
  let nextFloodMs = h.nowMs;
  // Every 10 ms each flooder asks each server again and again, until it is refused.
  h.afterEffect = () => {
    if (h.nowMs < nextFloodMs) return;
    nextFloodMs = h.nowMs + 10;
    for (const s of servers) {
      const server = h.nodes[s]!.replica;
      for (const flooder of flooders) {
        for (let i = 0; i < 1_000; i++) {
          const { charge } = servedBy(server.onMessage(flooder, request, h.nowMs));
          if (charge === 0) break;
          drawn[s]! += charge;
          answerMax = Math.max(answerMax, charge);
        }
      }
    }
  };
  const startMs = h.nowMs;
  h.restart(3);
  assert.ok(
    h.run(() => h.height(3) >= target, 60_000),
    `the lagging replica reached ${h.height(3)} of ${target}`,
  );
  h.afterEffect = null;
  // Each period (of the shared budget, and of each peer) lasts CATCHUP_RETRY_MS at least.
  const periods = Math.floor((h.nowMs - startMs) / CATCHUP_RETRY_MS) + 1;
  const bound =
    periods * (totalBytes + answerMax + flooders.length * (CATCHUP_SERVE_FLOOR_BYTES + answerMax));
  for (const s of servers) {
    assert.ok(drawn[s]! <= bound, `server ${s}: ${drawn[s]} bytes to the flood, over ${bound}`);
    assert.ok(h.nodes[s]!.replica.metrics.busy > 0, `server ${s} held the flood back`);
  }
  for (let height = 1; height <= target; height++) {
    assert.equal(h.nodes[3]!.committed.get(height), h.nodes[0]!.committed.get(height));
  }
});

/** The charges of the answers `server` gives `peer`, asking at `t` until it is refused (busy, or over its own budget). */
function askUntilRefused(server: Replica, peer: string, t: number): number[] {
  const charges: number[] = [];
  for (let i = 0; i < 10_000; i++) {
    const { charge } = servedBy(server.onMessage(peer, request, t));
    if (charge === 0) return charges;
    charges.push(charge);
  }
  throw new Error(`${peer} was never refused`);
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/** The most a server charges a request for its first block: the room a share must have left to serve it. */
function firstBlockChargeMax(h: Harness): number {
  let blockMax = 0;
  for (const b of h.nodes[0]!.store.values()) {
    blockMax = Math.max(blockMax, encode(committedBlockCodec, b).length);
  }
  return 2 * CATCHUP_SERVE_LOOKUP_BYTES + blockMax;
}

for (const f of [1, 2]) {
  test(`with ${f} Byzantine validator${f === 1 ? '' : 's'} asking first and full nodes filling the open part, an honest lagging validator that asked the period before draws each period its floor and its share of the validators' part (the part over ${f + 1}); one skipping a period to come back new takes none of it; the draws stay within the shared bound`, () => {
    const n = 3 * f + 1;
    const h = new Harness({ n, seed: 41 });
    h.startAll();
    assert.ok(
      h.run(() => h.minCommitted() >= 20),
      'the chain grows',
    );
    const server = h.nodes[0]!.replica;
    // The transport names a validator's node by its key: these count as validators.
    const names = h.keys.map((k) => toHex(k.publicKey));
    const byzantine = names.slice(1, 1 + f);
    const lagging = names[n - 1]!;
    const fullNodes = Array.from({ length: 40 }, (_, i) => `full${i}`);
    const openMax = Math.floor(CATCHUP_SERVE_TOTAL_BYTES_PER_S / CATCHUP_SERVE_FULL_NODES_PART);
    const validatorsPart = CATCHUP_SERVE_TOTAL_BYTES_PER_S - openMax;
    const firstMax = firstBlockChargeMax(h);
    const t0 = h.nowMs;
    for (let period = 0; period < 4; period++) {
      const t = t0 + period * CATCHUP_RETRY_MS;
      // The first Byzantine validator skips period 2 and comes back new in period 3.
      const asking = period === 2 ? byzantine.slice(1) : byzantine;
      const drawn = new Map<string, number[]>();
      for (const peer of asking) drawn.set(peer, askUntilRefused(server, peer, t));
      // Full nodes in turn, until each is refused.
      for (const peer of fullNodes) drawn.set(peer, []);
      for (let served = true; served;) {
        served = false;
        for (const peer of fullNodes) {
          const { charge } = servedBy(server.onMessage(peer, request, t));
          if (charge > 0) drawn.get(peer)!.push(charge);
          served ||= charge > 0;
        }
      }
      drawn.set(lagging, askUntilRefused(server, lagging, t));
      const answerMax = Math.max(...[...drawn.values()].flat());
      // What each drew beyond its floor (its first CATCHUP_SERVE_FLOOR_BYTES).
      const beyondFloor = (peer: string): number => {
        let total = 0;
        let beyond = 0;
        for (const charge of drawn.get(peer)!) {
          if (total >= CATCHUP_SERVE_FLOOR_BYTES) beyond += charge;
          total += charge;
        }
        return beyond;
      };
      const fullNodesBeyond = sum(fullNodes.map(beyondFloor));
      const allBeyond = sum([...drawn.keys()].map(beyondFloor));
      assert.ok(
        fullNodesBeyond <= openMax + answerMax,
        `period ${period}: full nodes drew ${fullNodesBeyond} bytes beyond their floors, over their part of ${openMax}`,
      );
      assert.ok(
        allBeyond <= CATCHUP_SERVE_TOTAL_BYTES_PER_S + answerMax,
        `period ${period}: ${allBeyond} bytes drawn beyond the floors, over ${CATCHUP_SERVE_TOTAL_BYTES_PER_S}`,
      );
      for (const peer of drawn.keys()) {
        assert.ok(
          sum(drawn.get(peer)!) <= CATCHUP_SERVE_BYTES_PER_PEER_MAX + answerMax,
          `period ${period}: ${peer} within its own budget`,
        );
      }
      const lagger = sum(drawn.get(lagging)!);
      assert.ok(lagger >= CATCHUP_SERVE_FLOOR_BYTES, `period ${period}: the lagger drew its floor`);
      if (period === 0) continue;
      // The validators with a share: those that asked past their floors in
      // the last two periods (the one that skipped has its share in period 2,
      // and none in period 3: what it draws then takes nothing from the lagger's).
      const holders = period === 3 ? f : f + 1;
      const share = Math.floor(validatorsPart / holders);
      // Its floor, and its share but for the room of a first block (an answer is cut to the share left).
      const expected = Math.min(
        CATCHUP_SERVE_FLOOR_BYTES + share - firstMax,
        CATCHUP_SERVE_BYTES_PER_PEER_MAX,
      );
      assert.ok(
        lagger >= expected,
        `period ${period}: the lagging validator drew ${lagger} bytes, less than its floor and its share (${expected})`,
      );
    }
  });
}

for (const f of [1, 2]) {
  test(`an honest lagging validator catches up from a server that ${f} Byzantine validator${f === 1 ? '' : 's'} and full nodes flood: from its second period on it draws its floor and its share there before it is answered busy, and it waits out a bounded number of busy periods`, () => {
    const n = 3 * f + 1;
    // The validators' part (36 MiB) less than one validator's own budget: a
    // single Byzantine validator asking first could take all of it.
    const totalBytes = 72 * MIB;
    const h = new Harness({ n, seed: 8, peersByKey: true, catchupServeTotalBytesPerS: totalBytes });
    const lagging = n - 1;
    // It reaches one honest server: the Byzantine validators serve it
    // nothing, and the other honest ones are out of its reach.
    h.filter = (from, to) => (from !== lagging && to !== lagging) || from === 0 || to === 0;
    h.startAll();
    h.crash(lagging);
    const others = Array.from({ length: n - 1 }, (_, i) => i);
    assert.ok(
      h.run(() => h.minCommitted(others) >= 3_000, 3_000_000),
      'the others go on',
    );
    const target = h.minCommitted(others);
    const server = h.nodes[0]!.replica;
    const names = h.keys.map((k) => toHex(k.publicKey));
    const flooders = [...names.slice(1, 1 + f), ...Array.from({ length: 6 }, (_, i) => `full${i}`)];
    const lagger = names[lagging]!;
    // What the server sent the lagger, and when: answers' charges, and busy answers.
    const answers: { atMs: number; charge: number }[] = [];
    const busyMs: number[] = [];
    let nextFloodMs = h.nowMs;
    h.afterEffect = (node, effect) => {
      if (node.index === 0 && effect.kind === 'send' && effect.to === lagger) {
        const { charge, busy } = servedBy([effect]);
        if (charge > 0) answers.push({ atMs: h.nowMs, charge });
        if (busy) busyMs.push(h.nowMs);
      }
      if (h.nowMs < nextFloodMs) return;
      nextFloodMs = h.nowMs + 10;
      // Every 10 ms, the Byzantine validators first, each asks until it is refused.
      for (const flooder of flooders) askUntilRefused(server, flooder, h.nowMs);
    };
    const startMs = h.nowMs;
    h.restart(lagging);
    assert.ok(
      h.run(() => h.height(lagging) >= target, 60_000),
      `the lagging validator reached ${h.height(lagging)} of ${target}`,
    );
    h.afterEffect = null;
    const elapsedMs = h.nowMs - startMs;
    for (let height = 1; height <= target; height++) {
      assert.equal(h.nodes[lagging]!.committed.get(height), h.nodes[0]!.committed.get(height));
    }
    const share = Math.floor(
      (totalBytes - Math.floor(totalBytes / CATCHUP_SERVE_FULL_NODES_PART)) / (f + 1),
    );
    const firstMax = firstBlockChargeMax(h);
    const answerMax = Math.max(...answers.map((a) => a.charge));
    // In its first period it has no share yet (it had not asked): its floor.
    // From then on, before each busy answer, its floor and its share but
    // for the room of a first block, within the retry period before.
    const perPeriod = CATCHUP_SERVE_FLOOR_BYTES + share - firstMax;
    for (const atMs of busyMs.slice(1)) {
      const drawn = sum(
        answers
          .filter((a) => a.atMs > atMs - CATCHUP_RETRY_MS && a.atMs <= atMs)
          .map((a) => a.charge),
      );
      assert.ok(
        drawn >= perPeriod,
        `answered busy at ${atMs - startMs} ms after ${drawn} bytes in the period, less than its floor and share (${perPeriod})`,
      );
    }
    // The bound: what catching up costs the server (a lookup for each
    // request and block, and each block's bytes), drawn at its floor the
    // first period and at perPeriod the others, less four answers a period of
    // blocks that came twice (the server pushes a peer behind a batch each
    // retry period, and the answer to the request then out brings some
    // again: two or three answers a period here). Each busy answer is a
    // retry period waited, stretched by the server's next message (a propose
    // timeout at most) and the answers.
    let needBytes = Math.ceil(target / 64) * CATCHUP_SERVE_LOOKUP_BYTES;
    for (let height = 1; height <= target; height++) {
      const block = h.nodes[0]!.store.get(height)!;
      needBytes += CATCHUP_SERVE_LOOKUP_BYTES + encode(committedBlockCodec, block).length;
    }
    const waitsMax = Math.ceil(
      (needBytes - CATCHUP_SERVE_FLOOR_BYTES) / (perPeriod - 4 * answerMax),
    );
    assert.ok(
      busyMs.length <= waitsMax,
      `${busyMs.length} busy answers while catching up, over ${waitsMax}`,
    );
    const boundMs = (waitsMax + 1) * (CATCHUP_RETRY_MS + FAST_TIMEOUTS.proposeMs + 200);
    assert.ok(elapsedMs <= boundMs, `caught up in ${elapsedMs} ms, over ${boundMs}`);
  });
}

test('a blockBusy answer from the peer asked moves the request to another peer at once, and the busy peer is not asked for a retry period; one from a peer not asked, or repeated, asks nobody', () => {
  const { h, ahead } = laggingReplica();
  const lagging = h.nodes[3]!.replica;
  const busy = encode(messageCodec, { kind: 'blockBusy', fromHeight: 1 });
  const t = h.nowMs;
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p1', ahead, t)), ['p1']);
  // p2 is ahead too; one request is outstanding, so it is not asked yet.
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p2', ahead, t)), []);
  // p2 was not asked: its busy answer asks nobody.
  const unexpected = lagging.metrics.unexpected;
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p2', busy, t)), []);
  assert.equal(lagging.metrics.unexpected, unexpected + 1);
  // p1 was asked: its busy answer moves the request to p2 now, not a retry period later.
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p1', busy, t)), ['p2']);
  // Repeated, it does nothing more.
  for (let i = 0; i < 10; i++)
    assert.deepEqual(blockRequestsTo(lagging.onMessage('p1', busy, t)), []);
  // p2 busy too: nobody else to ask, and neither is asked within the retry period.
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p2', busy, t + 1)), []);
  assert.equal(lagging.catchingUp(t + 1), true, 'still catching up: the request stays out');
  for (let i = 0; i < 10; i++) {
    assert.deepEqual(blockRequestsTo(lagging.onMessage('p2', busy, t + 2)), []);
  }
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p1', ahead, t + CATCHUP_RETRY_MS - 1)), []);
  // Once p1's period is over, it is asked again (its floor is there again by then).
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p1', ahead, t + CATCHUP_RETRY_MS)), ['p1']);
});

/**
 * A lagging replica that heard first from a peer claiming to be ahead that
 * never answers ('silent'), then from p1, p2 and p3; the silent peer's
 * request unanswered for a retry period, p1, the next in turn, was asked at
 * `next`.
 */
function silentPeerHeardFirst(): { lagging: Replica; next: number } {
  const { h, ahead } = laggingReplica();
  const lagging = h.nodes[3]!.replica;
  const t = h.nowMs;
  assert.deepEqual(blockRequestsTo(lagging.onMessage('silent', ahead, t)), ['silent']);
  for (const p of ['p1', 'p2', 'p3']) {
    assert.deepEqual(blockRequestsTo(lagging.onMessage(p, ahead, t)), [], `${p}: one request out`);
  }
  const next = t + CATCHUP_RETRY_MS;
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p1', ahead, next)), ['p1']);
  return { lagging, next };
}

test('a blockBusy answer moves the request to the next peer in turn, as silence would: a silent peer heard first is not asked again after every busy answer', () => {
  const { lagging, next } = silentPeerHeardFirst();
  const busy = encode(messageCodec, { kind: 'blockBusy', fromHeight: 1 });
  // Busy answers go round the others in turn before the silent peer again.
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p1', busy, next)), ['p2']);
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p2', busy, next)), ['p3']);
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p3', busy, next)), ['silent']);
});

test('a pruned answer moves the request to the next peer in turn, as a busy one does: a silent peer heard first is not asked again after every pruned answer', () => {
  const { lagging, next } = silentPeerHeardFirst();
  // Each pruned answer asks the next in turn; the silent peer comes last.
  assert.deepEqual(blockRequestsTo(lagging.onPeerPruned('p1', 2, next)), ['p2']);
  assert.deepEqual(blockRequestsTo(lagging.onPeerPruned('p2', 2, next)), ['p3']);
  assert.deepEqual(blockRequestsTo(lagging.onPeerPruned('p3', 2, next)), ['silent']);
});

test('a blockBusy answer is taken once also when no other peer may be asked: a repeat within the retry period is unexpected and does not keep its peer from being asked again', () => {
  const { h, ahead } = laggingReplica();
  const lagging = h.nodes[3]!.replica;
  const busy = encode(messageCodec, { kind: 'blockBusy', fromHeight: 1 });
  const t = h.nowMs;
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p1', ahead, t)), ['p1']);
  // No other peer: the request stays out.
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p1', busy, t)), []);
  assert.equal(lagging.catchingUp(t), true, 'still catching up: the request stays out');
  const unexpected = lagging.metrics.unexpected;
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p1', busy, t + CATCHUP_RETRY_MS - 1)), []);
  assert.equal(lagging.metrics.unexpected, unexpected + 1, 'the repeat is unexpected');
  // A retry period after its busy answer, p1 is asked again.
  assert.deepEqual(blockRequestsTo(lagging.onMessage('p1', ahead, t + CATCHUP_RETRY_MS)), ['p1']);
});

test('a malformed blockBusy (height 0, a byte past its end, a tag past the last) is refused with a DecodeError naming what is wrong, and the replica drops it as undecodable', () => {
  const good = encode(messageCodec, { kind: 'blockBusy', fromHeight: 300 });
  assert.deepEqual(decode(messageCodec, good), { kind: 'blockBusy', fromHeight: 300 });
  const cases: [Uint8Array, string][] = [
    [Uint8Array.of(5, 0), 'message.fromHeight'],
    [Uint8Array.of(5), 'message.fromHeight'],
    [Uint8Array.of(...good, 0), 'message'],
    [Uint8Array.of(6, 1), 'message.kind'],
  ];
  const h = new Harness({ n: 4, seed: 34 });
  h.startAll();
  const replica = h.nodes[0]!.replica;
  for (const [bytes, field] of cases) {
    assert.throws(
      () => decode(messageCodec, bytes),
      (e: unknown) => e instanceof DecodeError && e.field === field,
      `${toHex(bytes)}: refused at ${field}`,
    );
    const dropped = replica.metrics.decode;
    assert.deepEqual(replica.onMessage('p1', bytes, h.nowMs), []);
    assert.equal(replica.metrics.decode, dropped + 1, `${toHex(bytes)}: dropped as undecodable`);
  }
});

test("with shares smaller than a block, the validators that asked take the validators' part in turn, each a full share, rather than none of them drawing on it", () => {
  // A validators' part that holds one answer's first block, but not two: two
  // equal shares could never be drawn.
  const blockMax = 4096;
  const validatorsPart = 2 * CATCHUP_SERVE_LOOKUP_BYTES + blockMax + CATCHUP_SERVE_LOOKUP_BYTES;
  const h = new Harness({ n: 4, seed: 43, catchupServeTotalBytesPerS: 2 * validatorsPart });
  h.startAll();
  assert.ok(
    h.run(() => h.minCommitted() >= 20),
    'the chain grows',
  );
  const firstMax = firstBlockChargeMax(h);
  assert.ok(firstMax <= 2 * CATCHUP_SERVE_LOOKUP_BYTES + blockMax, `blocks of ${firstMax} bytes`);
  assert.ok(2 * firstMax > validatorsPart, 'two shares smaller than a first block');
  const served = h.nodes[0]!.replica;
  const names = h.keys.map((k) => toHex(k.publicKey));
  const validators = [names[1]!, names[2]!];
  const fullNodes = Array.from({ length: 4 }, (_, i) => `full${i}`);
  const t0 = h.nowMs;
  const beyond = new Map(validators.map((v) => [v, [] as number[]]));
  for (let period = 0; period < 5; period++) {
    const t = t0 + period * CATCHUP_RETRY_MS;
    // Full nodes fill the open part first.
    for (const peer of fullNodes) askUntilRefused(served, peer, t);
    for (const v of validators) {
      let total = 0;
      let past = 0;
      for (const charge of askUntilRefused(served, v, t)) {
        if (total >= CATCHUP_SERVE_FLOOR_BYTES) past += charge;
        total += charge;
      }
      beyond.get(v)!.push(past);
    }
  }
  for (const v of validators) {
    const draws = beyond.get(v)!.slice(1);
    // In turn: each draws the whole part (less a block's room) every other period.
    assert.ok(
      draws.filter((d) => d >= validatorsPart - firstMax).length >= 2,
      `${v} drew ${draws.join(', ')} beyond its floor in periods 1 to 4`,
    );
    assert.ok(
      draws.every((d) => d <= validatorsPart),
      `${v} drew ${draws.join(', ')}, over the validators' part ${validatorsPart}`,
    );
  }
});

test("a key that stops being a validator gets no share of the validators' part: the validators still asking share it all", () => {
  const h = new Harness({ n: 5, seed: 44 });
  const H = 22;
  for (const n of h.nodes) n.app.updatesAt.set(H, [{ publicKey: h.keys[4]!.publicKey, power: 0 }]);
  h.startAll();
  assert.ok(
    h.run(() => h.minCommitted() >= 20),
    'the chain grows',
  );
  const server = h.nodes[0]!.replica;
  const names = h.keys.map((k) => toHex(k.publicKey));
  const t0 = h.nowMs;
  askUntilRefused(server, names[4]!, t0);
  askUntilRefused(server, names[1]!, t0);
  assert.ok(
    h.run(() => h.minCommitted([0, 1, 2, 3]) >= H + 3),
    'the key leaves the set',
  );
  assert.ok(!server.validators.hasKeyHex(names[4]!), 'no longer a validator');
  const t1 = Math.max(h.nowMs, t0 + CATCHUP_RETRY_MS);
  assert.ok(t1 - t0 < 2 * CATCHUP_RETRY_MS, 'within two periods of its asking');
  for (const peer of Array.from({ length: 40 }, (_, i) => `full${i}`)) {
    askUntilRefused(server, peer, t1);
  }
  const drawn = sum(askUntilRefused(server, names[1]!, t1));
  const openMax = Math.floor(CATCHUP_SERVE_TOTAL_BYTES_PER_S / CATCHUP_SERVE_FULL_NODES_PART);
  const validatorsPart = CATCHUP_SERVE_TOTAL_BYTES_PER_S - openMax;
  const expected = Math.min(
    CATCHUP_SERVE_FLOOR_BYTES + validatorsPart - firstBlockChargeMax(h),
    CATCHUP_SERVE_BYTES_PER_PEER_MAX,
  );
  assert.ok(drawn >= expected, `the validator still asking drew ${drawn}, less than ${expected}`);
});
