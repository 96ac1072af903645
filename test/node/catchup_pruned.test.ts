// The answer to a consensus catch-up request for pruned blocks: the serving
// node says `pruned` with its first height (sync channel), and the asking
// node hands that to its replica, which asks another peer at once.

import { rmSync } from 'node:fs';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unframe, CHANNEL } from '../../src/node/framing.ts';
import { MemoryHub } from '../../src/node/network.ts';
import { openStorage } from '../../src/node/storage/index.ts';
import { decodeSyncMessage, encodeSyncMessage } from '../../src/node/sync_messages.ts';
import { SyncServer } from '../../src/node/sync_server.ts';
import { tempDir } from './helpers.ts';

test('a catch-up request below the first stored block is answered pruned; the answer reaches onPruned', async () => {
  const tmp = tempDir('zomma-catchup-pruned-');
  const storage = openStorage(tmp.dir);
  const other = openStorage(`${tmp.dir}-other`);
  try {
    for (let h = 1; h <= 6; h++) storage.blocks.save(h, new Uint8Array([h]));
    storage.blocks.pruneBefore(4);
    const hub = new MemoryHub();
    const serverNet = hub.join('server');
    const clientNet = hub.join('client');
    await serverNet.start();
    await clientNet.start();
    const clock = { nowMs: () => 0, after: () => () => {} };
    const server = new SyncServer({ storage, network: serverNet, clock, burstRequests: 4 });
    const told: [string, number, number][] = [];
    const client = new SyncServer({
      storage: other,
      network: clientNet,
      clock,
      onPruned: (peer, height, firstHeight) => told.push([peer, height, firstHeight]),
    });
    const frames: Uint8Array[] = [];
    clientNet.onMessage((peer, bytes) => {
      frames.push(bytes);
      const { channel, payload } = unframe(bytes);
      if (channel === CHANNEL.sync) client.onMessage(peer, payload);
    });
    assert.equal(server.onCatchupRequest('client', 2), true);
    // Held, or not yet committed: the replica answers (or stays silent), not us.
    assert.equal(server.onCatchupRequest('client', 4), false);
    assert.equal(server.onCatchupRequest('client', 9), false);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(frames.length, 1);
    assert.deepEqual(decodeSyncMessage(unframe(frames[0]!).payload), {
      kind: 'pruned',
      height: 2,
      firstHeight: 4,
    });
    assert.deepEqual(told, [['server', 2, 4]]);
    assert.equal(server.stats.prunedAnswers, 1);
    assert.equal(client.stats.prunedReceived, 1);
    // The answers share the sync channel's per-peer budget.
    for (let i = 0; i < 20; i++) server.onCatchupRequest('client', 1);
    assert.equal(server.stats.dropped.rateLimited, 17);
  } finally {
    storage.close();
    other.close();
    tmp.remove();
    rmSync(`${tmp.dir}-other`, { recursive: true, force: true });
  }
});

test("pruned messages share the peer's sync budget: a flood of them reaches onPruned (a log line and a replica input each) only within it", () => {
  const tmp = tempDir('zomma-catchup-pruned-flood-');
  const storage = openStorage(tmp.dir);
  try {
    const hub = new MemoryHub();
    const clock = { nowMs: () => 0, after: () => () => {} };
    let told = 0;
    const server = new SyncServer({
      storage,
      network: hub.join('server'),
      clock,
      burstRequests: 4,
      onPruned: () => told++,
    });
    const pruned = encodeSyncMessage({ kind: 'pruned', height: 2, firstHeight: 4 });
    for (let i = 0; i < 100; i++) server.onMessage('faulty', pruned);
    assert.equal(told, 4);
    assert.equal(server.stats.dropped.rateLimited, 96);
  } finally {
    storage.close();
    tmp.remove();
  }
});
