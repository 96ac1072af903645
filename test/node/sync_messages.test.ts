import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DecodeError } from '../../src/codec/wire.ts';
import { sha256 } from '../../src/crypto/index.ts';
import {
  SYNC_BUSY_RETRY_MS_MAX,
  SYNC_BUSY_RETRY_MS_MIN,
  SYNC_CHUNK_BYTES,
  SYNC_CHUNKS_MAX,
  SYNC_MESSAGE_BYTES_MAX,
  SYNC_OFFERS_MAX,
  SYNC_SERVE_FLOOR_REQUESTS_PER_S,
  SYNC_SERVE_TOTAL_BURST_S,
  SYNC_SERVE_TOTAL_REQUESTS_PER_S,
} from '../../src/lib/limits.ts';
import { CHANNEL, frame, unframe } from '../../src/node/framing.ts';
import { MemoryHub } from '../../src/node/network.ts';
import type { PeerNetwork } from '../../src/node/network.ts';
import { openStorage } from '../../src/node/storage/index.ts';
import { RECORD_HEADER_BYTES } from '../../src/node/storage/record_log.ts';
import type { Storage } from '../../src/node/storage/index.ts';
import type { SnapshotOffer, SyncMessage } from '../../src/node/sync_messages.ts';
import {
  SNAPSHOT_FORMAT,
  chunkCountOf,
  decodeSyncMessage,
  encodeSyncMessage,
} from '../../src/node/sync_messages.ts';
import { SyncServer } from '../../src/node/sync_server.ts';
import { tempDir } from './helpers.ts';
import { recordOffsets } from './storage/layout.ts';

function offerOf(height: number, sizeBytes: number): SnapshotOffer {
  const chunkHashes = Array.from({ length: chunkCountOf(sizeBytes) }, (_, i) =>
    sha256(new Uint8Array([i])),
  );
  return { height, format: SNAPSHOT_FORMAT, sizeBytes, chunkHashes, snapshotHash: sha256() };
}

test('sync messages round-trip canonically', () => {
  const messages: SyncMessage[] = [
    { kind: 'offersRequest' },
    { kind: 'offers', offers: [offerOf(30, 10), offerOf(20, 3 * SYNC_CHUNK_BYTES + 1)] },
    { kind: 'chunkRequest', height: 30, index: 2 },
    { kind: 'chunk', height: 30, index: 2, bytes: new Uint8Array([1, 2, 3]) },
    { kind: 'blockRequest', height: 31 },
    { kind: 'block', height: 31, bytes: new Uint8Array([9]) },
    { kind: 'pruned', height: 31, firstHeight: 500 },
    {
      kind: 'busy',
      request: { kind: 'chunkRequest', height: 30, index: 2 },
      retryAfterMs: SYNC_BUSY_RETRY_MS_MIN,
    },
    {
      kind: 'busy',
      request: { kind: 'blockRequest', height: 31 },
      retryAfterMs: SYNC_BUSY_RETRY_MS_MAX,
    },
  ];
  for (const m of messages) {
    const bytes = encodeSyncMessage(m);
    assert.deepEqual(decodeSyncMessage(bytes), m);
    assert.deepEqual(encodeSyncMessage(decodeSyncMessage(bytes)), bytes);
  }
});

test('bad sync messages are refused with a DecodeError naming the field', () => {
  const refuse = (bytes: Uint8Array, field: RegExp) =>
    assert.throws(
      () => decodeSyncMessage(bytes),
      (e: unknown) => e instanceof DecodeError && field.test(e.message),
    );
  const good = encodeSyncMessage({ kind: 'offers', offers: [offerOf(5, 100)] });
  refuse(new Uint8Array([9]), /kind/);
  // A pruned answer must name a first height above the one asked.
  refuse(new Uint8Array([6, 10, 10]), /firstHeight/);
  refuse(new Uint8Array([...good, 0]), /trailing/);
  // A chunk count that disagrees with the size.
  const wrongCount = encodeSyncMessage({
    kind: 'offers',
    offers: [{ ...offerOf(5, 100), chunkHashes: [sha256(), sha256()] }],
  });
  refuse(wrongCount, /chunks/);
  refuse(
    encodeSyncMessage({ kind: 'offers', offers: [{ ...offerOf(5, 100), format: 2 }] }),
    /format/,
  );
  refuse(encodeSyncMessage({ kind: 'offers', offers: [offerOf(0, 100)] }), /height/);
  const tooMany = Array.from({ length: SYNC_OFFERS_MAX + 1 }, (_, i) => offerOf(i + 1, 10));
  refuse(encodeSyncMessage({ kind: 'offers', offers: tooMany }), /offers/);
  refuse(
    encodeSyncMessage({ kind: 'chunk', height: 1, index: 0, bytes: new Uint8Array(0) }),
    /bytes/,
  );
  refuse(new Uint8Array(SYNC_MESSAGE_BYTES_MAX + 1), /above/);
});

test('a busy answer must name a chunk or block request and a delay within its bounds', () => {
  const refuse = (bytes: Uint8Array, field: RegExp, why: string) =>
    assert.throws(
      () => decodeSyncMessage(bytes),
      (e: unknown) => e instanceof DecodeError && field.test(e.field),
      why,
    );
  const busy = (retryAfterMs: number): Uint8Array =>
    encodeSyncMessage({
      kind: 'busy',
      request: { kind: 'chunkRequest', height: 30, index: 2 },
      retryAfterMs,
    });
  // Tag 7, the request (tag 2, height 30, index 2), then the delay.
  assert.deepEqual([...busy(SYNC_BUSY_RETRY_MS_MIN)].slice(0, 4), [7, 2, 30, 2]);
  // The delay: none, too short to be a delay, or longer than a silence would cost.
  for (const ms of [0, 1, SYNC_BUSY_RETRY_MS_MIN - 1, SYNC_BUSY_RETRY_MS_MAX + 1, 2 ** 40]) {
    refuse(busy(ms), /^sync\.retryAfterMs$/, `a delay of ${ms} ms`);
  }
  refuse(busy(SYNC_BUSY_RETRY_MS_MIN).subarray(0, 4), /^sync\.retryAfterMs$/, 'no delay at all');
  // The request it answers: anything but a chunk or block request is unknown.
  const delay = [...busy(SYNC_BUSY_RETRY_MS_MIN)].slice(4);
  for (const tag of [0, 1, 3, 5, 6, 7, 8, 255]) {
    refuse(new Uint8Array([7, tag, 30, 2, ...delay]), /^sync\.request\.kind$/, `tag ${tag}`);
  }
  refuse(new Uint8Array([7]), /^sync\.request\.kind$/, 'no request');
  // The request's own fields, bounded as in the request itself.
  const bad = encodeSyncMessage({
    kind: 'busy',
    request: { kind: 'chunkRequest', height: 30, index: SYNC_CHUNKS_MAX },
    retryAfterMs: SYNC_BUSY_RETRY_MS_MIN,
  });
  refuse(bad, /^sync\.request\.index$/, 'a chunk index no snapshot has');
  refuse(new Uint8Array([...busy(SYNC_BUSY_RETRY_MS_MIN), 0]), /^sync$/, 'trailing bytes');
});

test('decoding arbitrary bytes either yields a canonical message or a DecodeError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      try {
        const m = decodeSyncMessage(bytes);
        assert.deepEqual(encodeSyncMessage(m), bytes);
      } catch (error) {
        assert.ok(error instanceof DecodeError);
      }
    }),
    { seed: 7, numRuns: 2_000 },
  );
});

test('the server offers stored snapshots in hashed chunks, rate-limits each peer and drops bad input', async () => {
  const tmp = tempDir('zomma-syncserve-');
  const storage = openStorage(tmp.dir);
  try {
    const snapshot = new Uint8Array(SYNC_CHUNK_BYTES + 10).map((_, i) => i & 0xff);
    storage.snapshots.save(4, snapshot);
    storage.snapshots.save(8, new Uint8Array([1]));
    for (let h = 3; h <= 5; h++) storage.blocks.save(h, new Uint8Array([h]));
    const hub = new MemoryHub();
    const serverNet = hub.join('server');
    const clientNet = hub.join('client');
    await serverNet.start();
    await clientNet.start();
    let nowMs = 0;
    const server = new SyncServer({
      storage,
      network: serverNet,
      clock: { nowMs: () => nowMs, after: () => () => {} },
      requestsPerS: 1,
      burstRequests: 4,
    });
    serverNet.onMessage((peer, bytes) => server.onMessage(peer, bytes.subarray(1)));
    const answers: SyncMessage[] = [];
    clientNet.onMessage((_peer, bytes) => answers.push(decodeSyncMessage(bytes.subarray(1))));
    const ask = (m: SyncMessage) => server.onMessage('client', encodeSyncMessage(m));

    // Snapshot 8 has no block 9 stored: it is not offered.
    ask({ kind: 'offersRequest' });
    ask({ kind: 'chunkRequest', height: 4, index: 1 });
    ask({ kind: 'blockRequest', height: 5 });
    ask({ kind: 'blockRequest', height: 6 });
    ask({ kind: 'offersRequest' }); // the bucket of 4 is empty
    server.onMessage('client', new Uint8Array([0xff]));
    server.onMessage('client', encodeSyncMessage({ kind: 'offers', offers: [] }));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(answers.length, 3);
    const offers = answers[0]!;
    assert.equal(offers.kind, 'offers');
    if (offers.kind !== 'offers') return;
    assert.deepEqual(
      offers.offers.map((o) => [o.height, o.sizeBytes, o.chunkHashes.length]),
      [[4, SYNC_CHUNK_BYTES + 10, 2]],
    );
    assert.deepEqual(offers.offers[0]!.snapshotHash, sha256(snapshot));
    const chunk = answers[1]!;
    assert.ok(chunk.kind === 'chunk' && chunk.bytes.length === 10);
    assert.deepEqual(
      sha256(chunk.kind === 'chunk' ? chunk.bytes : new Uint8Array()),
      offers.offers[0]!.chunkHashes[1],
    );
    assert.deepEqual(answers[2], { kind: 'block', height: 5, bytes: new Uint8Array([5]) });
    assert.equal(server.stats.dropped.unknownBlock, 1);
    assert.equal(server.stats.dropped.rateLimited, 1);
    assert.equal(server.stats.dropped.decode, 1);
    assert.equal(server.stats.dropped.unexpected, 1);
    // Tokens come back with time.
    nowMs += 1_000;
    ask({ kind: 'chunkRequest', height: 4, index: 5 });
    assert.equal(server.stats.dropped.unknownSnapshot, 1);
    assert.equal(frame(CHANNEL.sync, new Uint8Array())[0], 2);
  } finally {
    storage.close();
    tmp.remove();
  }
});

/** A server's network that keeps what it sends, in order. */
function recording(): { network: PeerNetwork; sent: { peer: string; message: SyncMessage }[] } {
  const sent: { peer: string; message: SyncMessage }[] = [];
  const network: PeerNetwork = {
    start: async () => {},
    stop: async () => {},
    onMessage: () => {},
    peerCount: () => 0,
    broadcast: () => assert.fail('a server answers one peer'),
    send: (peer, bytes) => sent.push({ peer, message: decodeSyncMessage(unframe(bytes).payload) }),
  };
  return { network, sent };
}

/** A storage holding snapshot 4 (three chunks) and blocks 3–5 for `run`, removed after it. */
function withSnapshot4(run: (storage: Storage) => void): void {
  const tmp = tempDir('zomma-syncserve-');
  const storage = openStorage(tmp.dir);
  try {
    storage.snapshots.save(
      4,
      new Uint8Array(3 * SYNC_CHUNK_BYTES).map((_, i) => (i * 13) & 0xff),
    );
    for (let h = 3; h <= 5; h++) storage.blocks.save(h, new Uint8Array([h]));
    run(storage);
  } finally {
    storage.close();
    tmp.remove();
  }
}

test('many peers asking at once, each within its own bucket, are served no more than the budget all share; the others are answered busy', () => {
  withSnapshot4((storage) => {
    const { network, sent } = recording();
    let nowMs = 0;
    const server = new SyncServer({
      storage,
      network,
      clock: { nowMs: () => nowMs, after: () => () => {} },
      requestsPerS: 10,
      burstRequests: 20,
      totalRequestsPerS: 10,
      totalBurstRequests: 30,
      // The shared budget alone (the floors have a test of their own).
      floorRequestsPerS: 0,
    });
    assert.equal(server.offers().length, 1, 'snapshot 4 is offered');
    const peers = ['p0', 'p1', 'p2', 'p3', 'p4'];
    // Every 100 ms for 10 s, each of five peers asks for a chunk: 10 a second
    // each, its own bucket's rate, and 50 a second in all.
    const asked: { peer: string; request: SyncMessage }[] = [];
    for (let step = 0; step < 100; step++) {
      nowMs = step * 100;
      peers.forEach((peer, i) => {
        const request: SyncMessage = { kind: 'chunkRequest', height: 4, index: (step + i) % 3 };
        asked.push({ peer, request });
        server.onMessage(peer, encodeSyncMessage(request));
      });
    }
    // The shared bucket's 30, then 10 a second over the 9.9 s between the first and last.
    const budget = 30 + (10 * 9_900) / 1_000;
    const chunks = sent.filter((s) => s.message.kind === 'chunk');
    assert.equal(chunks.length, budget, 'the whole budget is used, and no more');
    assert.equal(server.stats.served, budget);
    const bytes = chunks.reduce(
      (n, s) => n + (s.message.kind === 'chunk' ? s.message.bytes.length : 0),
      0,
    );
    assert.equal(server.stats.chunkBytesServed, bytes);
    assert.equal(bytes, budget * SYNC_CHUNK_BYTES, 'a megabyte a request served');
    assert.equal(server.stats.dropped.rateLimited, 0, 'no peer went past its own bucket');
    assert.equal(server.stats.dropped.busy, 500 - budget);
    // Every request got one answer, a chunk or a busy naming it, in the order asked.
    assert.equal(sent.length, asked.length);
    sent.forEach((s, i) => {
      const { peer, request } = asked[i]!;
      assert.equal(s.peer, peer);
      if (s.message.kind === 'chunk') {
        assert.deepEqual(
          [s.message.height, s.message.index],
          request.kind === 'chunkRequest' ? [request.height, request.index] : [],
        );
        return;
      }
      // Empty once the step's token is taken: the next comes in 100 ms.
      assert.deepEqual(s.message, { kind: 'busy', request, retryAfterMs: 100 }, `answer ${i}`);
    });

    // A peer past its own bucket is refused in silence, and takes nothing from the others' budget.
    nowMs += 100_000;
    const before = sent.length;
    for (let i = 0; i < 25; i++)
      server.onMessage('greedy', encodeSyncMessage({ kind: 'blockRequest', height: 4 }));
    assert.equal(sent.length - before, 20, 'its own burst');
    assert.equal(server.stats.dropped.rateLimited, 5);
    for (let i = 0; i < 10; i++)
      server.onMessage('p1', encodeSyncMessage({ kind: 'blockRequest', height: 5 }));
    assert.deepEqual(
      sent.slice(before + 20).map((s) => s.message.kind),
      Array<string>(10).fill('block'),
      'the shared 30 less the 20 it took',
    );
    // The budget spent: an offers request goes unanswered (fetchers repeat them), a block request gets busy.
    server.onMessage('p2', encodeSyncMessage({ kind: 'offersRequest' }));
    server.onMessage('p2', encodeSyncMessage({ kind: 'blockRequest', height: 3 }));
    assert.deepEqual(sent.slice(before + 30), [
      {
        peer: 'p2',
        message: { kind: 'busy', request: { kind: 'blockRequest', height: 3 }, retryAfterMs: 100 },
      },
    ]);
    assert.equal(server.stats.dropped.busy, 500 - budget + 2);
    // A busy sent to a server (nobody asked it anything) is dropped as any unasked answer.
    server.onMessage(
      'p3',
      encodeSyncMessage({
        kind: 'busy',
        request: { kind: 'blockRequest', height: 3 },
        retryAfterMs: 100,
      }),
    );
    assert.equal(server.stats.dropped.unexpected, 1);
    assert.equal(sent.length, before + 31);
  });
});

test('a request costs the shared budget a token per chunk of its answer: block answers of several megabytes draw no more bytes than as many chunk answers would', () => {
  const tmp = tempDir('zomma-syncserve-');
  const storage = openStorage(tmp.dir);
  try {
    // Blocks as large as a stored block may be: nine chunks' worth each.
    const large = new Uint8Array(SYNC_MESSAGE_BYTES_MAX - 1024).fill(7);
    for (let h = 3; h <= 5; h++) storage.blocks.save(h, large);
    const { network, sent } = recording();
    const server = new SyncServer({
      storage,
      network,
      clock: { nowMs: () => 0, after: () => () => {} },
      requestsPerS: 1_000,
      burstRequests: 1_000,
      totalRequestsPerS: 10,
      totalBurstRequests: 20,
      floorRequestsPerS: 0,
    });
    // Peers, each within its own bucket, ask at once for large blocks.
    for (let i = 0; i < 40; i++) {
      server.onMessage(
        `p${i % 4}`,
        encodeSyncMessage({ kind: 'blockRequest', height: 3 + (i % 3) }),
      );
    }
    const answered = sent.filter((s) => s.message.kind === 'block');
    const bytes = answered.reduce(
      (n, s) => n + (s.message.kind === 'block' ? s.message.bytes.length : 0),
      0,
    );
    // The burst's 20 chunks' worth, and the one answer that took it into debt.
    assert.ok(
      bytes <= 20 * SYNC_CHUNK_BYTES + large.length,
      `${answered.length} blocks, ${bytes} bytes served from a budget of 20 chunks`,
    );
    assert.ok(answered.length >= 2, 'the budget serves what it holds');
    assert.equal(server.stats.dropped.busy, 40 - answered.length);
  } finally {
    storage.close();
    tmp.remove();
  }
});

test('peers within their own limits cannot together starve another: each keeps its floor, and requests for nothing held cost the shared budget nothing', () => {
  withSnapshot4((storage) => {
    const { network, sent } = recording();
    let nowMs = 0;
    const server = new SyncServer({
      storage,
      network,
      clock: { nowMs: () => nowMs, after: () => () => {} },
      requestsPerS: 50,
      burstRequests: 50,
      totalRequestsPerS: 20,
      totalBurstRequests: 20,
    });
    assert.equal(server.offers().length, 1, 'snapshot 4 is offered');
    // Asking for a snapshot it does not hold, at its own rate: nothing read, nothing taken.
    for (let i = 0; i < 40; i++) {
      server.onMessage('asker', encodeSyncMessage({ kind: 'chunkRequest', height: 9, index: 0 }));
    }
    assert.equal(server.stats.dropped.busy, 0, 'the shared budget is untouched');
    // Two greedy peers ask for real chunks every 20 ms (50 a second each, their
    // own limit) for 10 s; an honest one every 250 ms (4 a second: the floor).
    const honest: string[] = [];
    for (let step = 0; step < 500; step++) {
      nowMs = 1_000 + step * 20;
      for (const greedy of ['g1', 'g2']) {
        server.onMessage(
          greedy,
          encodeSyncMessage({ kind: 'chunkRequest', height: 4, index: step % 3 }),
        );
      }
      if (step % 12 === 0) {
        const before = sent.length;
        server.onMessage(
          'honest',
          encodeSyncMessage({ kind: 'chunkRequest', height: 4, index: 1 }),
        );
        honest.push(...sent.slice(before).map((x) => x.message.kind));
      }
    }
    assert.equal(honest.length, 42);
    assert.deepEqual(
      honest,
      Array<string>(42).fill('chunk'),
      'every request of the honest peer served',
    );
    assert.ok(server.stats.dropped.busy > 0, 'the greedy peers were held back');
    // The total stays within the shared budget and the floors of the three.
    const served = sent.filter((x) => x.message.kind === 'chunk').length;
    const floors = 3 * SYNC_SERVE_FLOOR_REQUESTS_PER_S * (1 + 10);
    assert.ok(served <= 20 + 20 * 10 + floors, `${served} served`);
  });
});

test('by default the budget all peers share is SYNC_SERVE_TOTAL_REQUESTS_PER_S with SYNC_SERVE_TOTAL_BURST_S of burst', () => {
  const tmp = tempDir('zomma-syncserve-');
  const storage = openStorage(tmp.dir);
  try {
    storage.blocks.save(1, new Uint8Array([1]));
    const { network, sent } = recording();
    const server = new SyncServer({
      storage,
      network,
      clock: { nowMs: () => 0, after: () => () => {} },
      floorRequestsPerS: 0,
    });
    const burst = SYNC_SERVE_TOTAL_REQUESTS_PER_S * SYNC_SERVE_TOTAL_BURST_S;
    // Many peers, a few requests each: well within each one's own bucket.
    for (let i = 0; i < burst + 5; i++) {
      server.onMessage(`p${i % 50}`, encodeSyncMessage({ kind: 'blockRequest', height: 1 }));
    }
    assert.equal(server.stats.served, burst);
    assert.equal(sent.filter((s) => s.message.kind === 'busy').length, 5);
    // With no time passed, a token is 1 / rate away, or the shortest delay allowed.
    const busy = sent[sent.length - 1]!.message;
    assert.ok(busy.kind === 'busy', 'the last answer is busy');
    assert.equal(
      busy.retryAfterMs,
      Math.max(SYNC_BUSY_RETRY_MS_MIN, 1_000 / SYNC_SERVE_TOTAL_REQUESTS_PER_S),
    );
  } finally {
    storage.close();
    tmp.remove();
  }
});

test('the server keeps no snapshot bytes: each chunk is read from the file when asked, as offered even if pruned since', async () => {
  const tmp = tempDir('zomma-syncserve-');
  const storage = openStorage(tmp.dir);
  try {
    const sizeBytes = 3 * SYNC_CHUNK_BYTES + 5;
    const first = new Uint8Array(sizeBytes).map((_, i) => (i * 7) & 0xff);
    storage.snapshots.save(4, first);
    for (let h = 3; h <= 5; h++) storage.blocks.save(h, new Uint8Array([h]));
    const reads = { whole: 0, ranges: 0, open: 0 };
    const snapshots = storage.snapshots;
    const counted: Storage = {
      wal: storage.wal,
      blocks: storage.blocks,
      close: () => {},
      snapshots: {
        save: (h, b) => snapshots.save(h, b),
        latest: () => snapshots.latest(),
        prune: (k) => snapshots.prune(k),
        clear: () => snapshots.clear(),
        heights: () => snapshots.heights(),
        load: (h) => (reads.whole++, snapshots.load(h)),
        openReader: (h) => {
          const reader = snapshots.openReader(h);
          if (reader === null) return null;
          reads.open++;
          return {
            sizeBytes: reader.sizeBytes,
            read: (o, l) => (reads.ranges++, reader.read(o, l)),
            close: () => (reads.open--, reader.close()),
          };
        },
      },
    };
    const { server, ask } = await serving(counted);
    const chunks = async (offer: SnapshotOffer): Promise<Uint8Array[]> => {
      const got: Uint8Array[] = [];
      for (let index = 0; index < offer.chunkHashes.length; index++) {
        const chunk = await ask({ kind: 'chunkRequest', height: offer.height, index });
        assert.ok(chunk?.kind === 'chunk', `chunk ${index} served`);
        assert.deepEqual(sha256(chunk.bytes), offer.chunkHashes[index]);
        got.push(chunk.bytes);
      }
      return got;
    };

    const offered = await ask({ kind: 'offersRequest' });
    assert.ok(offered?.kind === 'offers');
    const offer = offered.offers[0]!;
    assert.equal(offer.chunkHashes.length, 4);
    assert.deepEqual(sha256(...(await chunks(offer))), offer.snapshotHash);
    await ask({ kind: 'offersRequest' });
    assert.deepEqual(reads, { whole: 1, ranges: 4, open: 1 }, 'hashed once, one read per chunk');

    // Pruned after the offer (a newer snapshot saved): still served as offered from the open file.
    storage.snapshots.save(5, new Uint8Array([5]));
    storage.snapshots.prune(1);
    assert.deepEqual(sha256(...(await chunks(offer))), offer.snapshotHash);

    // No longer among the newest at the next offers request: forgotten, its file closed.
    storage.blocks.save(6, new Uint8Array([6]));
    const next = await ask({ kind: 'offersRequest' });
    assert.ok(next?.kind === 'offers');
    assert.deepEqual(
      next.offers.map((o) => o.height),
      [5],
    );
    assert.equal(reads.open, 1, 'the reader of 4 closed, the one of 5 open');
    assert.equal(await ask({ kind: 'chunkRequest', height: 4, index: 0 }), undefined);
    assert.equal(server.stats.dropped.unknownSnapshot, 1);
    server.close();
    assert.equal(reads.open, 0);
  } finally {
    storage.close();
    tmp.remove();
  }
});

test('a chunk the disk changed under an offer is not sent (snapshotChanged), and the offer is made anew', async () => {
  const tmp = tempDir('zomma-syncserve-');
  const storage = openStorage(tmp.dir);
  try {
    const snapshot = new Uint8Array(SYNC_CHUNK_BYTES + 10).map((_, i) => i & 0xff);
    storage.snapshots.save(4, snapshot);
    for (let h = 3; h <= 5; h++) storage.blocks.save(h, new Uint8Array([h]));
    const { server, answers, ask } = await serving(storage);
    await ask({ kind: 'offersRequest' });
    // Bit rot in place, in the second chunk (the file's 16-byte header first).
    const path = join(tmp.dir, 'snapshots', 'snapshot-0000000000000004.snap');
    const fd = openSync(path, 'r+');
    writeSync(fd, new Uint8Array([0xee]), 0, 1, 16 + SYNC_CHUNK_BYTES + 3);
    closeSync(fd);
    await ask({ kind: 'chunkRequest', height: 4, index: 1 });
    assert.equal(answers.length, 1, 'only the offers answered');
    assert.equal(server.stats.dropped.snapshotChanged, 1);
    // Made anew: the whole file fails its checksum now, so it is not offered.
    const snapshots = storage.snapshots;
    const load = snapshots.load.bind(snapshots);
    let loads = 0;
    snapshots.load = (height: number) => {
      loads++;
      return load(height);
    };
    await ask({ kind: 'offersRequest' });
    assert.deepEqual(answers[1], { kind: 'offers', offers: [] });
    // Nor read again in full for every later offers request.
    await ask({ kind: 'offersRequest' });
    assert.deepEqual(answers[2], { kind: 'offers', offers: [] });
    assert.equal(loads, 1, 'the damaged file read whole once');
    server.close();
  } finally {
    storage.close();
    tmp.remove();
  }
});

test('a block request below the first stored height is answered pruned, naming that height', async () => {
  const tmp = tempDir('zomma-syncpruned-');
  const storage = openStorage(tmp.dir);
  try {
    for (let h = 1; h <= 6; h++) storage.blocks.save(h, new Uint8Array([h]));
    storage.blocks.pruneBefore(4);
    const { server, answers, ask } = await serving(storage);
    await ask({ kind: 'blockRequest', height: 2 });
    await ask({ kind: 'blockRequest', height: 4 });
    // Above the last height: not pruned, not known yet; no answer.
    await ask({ kind: 'blockRequest', height: 9 });
    assert.deepEqual(answers, [
      { kind: 'pruned', height: 2, firstHeight: 4 },
      { kind: 'block', height: 4, bytes: new Uint8Array([4]) },
    ]);
    assert.equal(server.stats.prunedAnswers, 1);
    assert.equal(server.stats.dropped.unknownBlock, 1);
    // Closed (the node stopping): a late frame is not served.
    server.close();
    assert.equal(await ask({ kind: 'offersRequest' }), undefined);
    assert.equal(await ask({ kind: 'blockRequest', height: 4 }), undefined);
    assert.equal(answers.length, 2);
  } finally {
    storage.close();
    tmp.remove();
  }
});

/**
 * A sync server on `storage` (its clock stopped at 0) and a client collecting
 * its answers; ask() sends one request and waits a turn for its answer (the
 * last one received, or undefined when none came).
 */
async function serving(storage: Storage) {
  const hub = new MemoryHub();
  const serverNet = hub.join('server');
  const clientNet = hub.join('client');
  await serverNet.start();
  await clientNet.start();
  const server = new SyncServer({
    storage,
    network: serverNet,
    clock: { nowMs: () => 0, after: () => () => {} },
  });
  const answers: SyncMessage[] = [];
  clientNet.onMessage((_peer, bytes) => answers.push(decodeSyncMessage(bytes.subarray(1))));
  const ask = async (m: SyncMessage): Promise<SyncMessage | undefined> => {
    const before = answers.length;
    server.onMessage('client', encodeSyncMessage(m));
    await new Promise((resolve) => setImmediate(resolve));
    return answers.length > before ? answers[answers.length - 1] : undefined;
  };
  return { server, answers, ask };
}

test('a stored block that fails its checksum is not served and does not throw at the peer', async () => {
  const tmp = tempDir('zomma-sync-serve-rot-');
  const storage = openStorage(tmp.dir);
  try {
    for (let h = 1; h <= 3; h++) storage.blocks.save(h, new Uint8Array(64).fill(h));
    // Media rot in the payload of block 2, mid-file (the open did not read it).
    const path = join(tmp.dir, 'blocks.log');
    const block2 = recordOffsets(readFileSync(path))[1]!;
    const fd = openSync(path, 'r+');
    writeSync(fd, new Uint8Array([0xee]), 0, 1, block2 + RECORD_HEADER_BYTES + 5);
    closeSync(fd);
    const hub = new MemoryHub();
    const net = hub.join('server');
    await net.start();
    const errors: string[] = [];
    const ignore = (): void => {};
    const server = new SyncServer({
      storage,
      network: net,
      clock: { nowMs: () => 0, after: () => () => {} },
      log: {
        debug: ignore,
        info: ignore,
        warn: ignore,
        error: (_o, msg) => errors.push(msg),
        fatal: ignore,
      },
    });
    server.onMessage('client', encodeSyncMessage({ kind: 'blockRequest', height: 2 }));
    assert.equal(server.stats.dropped.damagedBlock, 1);
    assert.equal(server.stats.dropped.unknownBlock, 0);
    assert.deepEqual(errors, ['a stored block is damaged: not served to a peer']);
    server.onMessage('client', encodeSyncMessage({ kind: 'blockRequest', height: 3 }));
    assert.equal(server.stats.served, 1);
    server.close();
  } finally {
    storage.close();
    tmp.remove();
  }
});
