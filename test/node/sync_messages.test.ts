import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DecodeError } from '../../src/codec/wire.ts';
import { sha256 } from '../../src/crypto/index.ts';
import { SYNC_CHUNK_BYTES, SYNC_MESSAGE_BYTES_MAX, SYNC_OFFERS_MAX } from '../../src/lib/limits.ts';
import { CHANNEL, frame } from '../../src/node/framing.ts';
import { MemoryHub } from '../../src/node/network.ts';
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
