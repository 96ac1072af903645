// Per-peer inbound budgets: a peer past its messages or bytes per second is
// disconnected and banned, while a well-behaved peer keeps its connection.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PeerId, TransportLimits } from '../../../src/node/transport/index.ts';
import { TEST_LIMITS, keyOf, makeTransport, until } from './helpers.ts';
import { rawPeer } from './raw_peer.ts';

const BUDGET: Partial<TransportLimits> = {
  ...TEST_LIMITS,
  // A slow refill: the flood below is thousands of times the rate, on any machine.
  inMessagesPerS: 10,
  inMessagesBurst: 200,
  inBytesPerS: 10_000,
  inBytesBurst: 256 * 1024,
  banMs: 60_000,
};

test('a flooding peer is dropped and banned; a well-behaved peer keeps its connection', async () => {
  const keys = [keyOf(0), keyOf(1), keyOf(2)];
  const a = makeTransport(0, keys, BUDGET);
  const got: { from: PeerId; bytes: Uint8Array }[] = [];
  a.onMessage((from, bytes) => got.push({ from, bytes }));
  await a.start();
  const good = makeTransport(1, keys, TEST_LIMITS);
  const goodGot: Uint8Array[] = [];
  good.onMessage((_, bytes) => goodGot.push(bytes));
  await good.start();
  try {
    good.setPeerAddress(a.self, '127.0.0.1', a.address().port);
    await until(() => a.peers().filter((p) => p.state === 'connected').length === 1, 'good peer');
    const flooder = await rawPeer(a.address().port, keyOf(2));
    for (let i = 0; i < 1_000; i++) flooder.send(Uint8Array.of(0xf1, i & 0xff));
    await until(() => flooder.isClosed(), 'the flooder dropped');
    assert.equal(a.counters().drops.rateLimited, 1);
    const flooded = got.filter((m) => m.bytes[0] === 0xf1).length;
    assert.ok(flooded <= 200, `delivered ${flooded} of the flood, above the burst`);
    // Its reconnection is refused while the ban lasts.
    const again = await rawPeer(a.address().port, keyOf(2));
    await until(() => again.isClosed(), 'the banned peer refused');
    assert.equal(a.counters().drops.banned, 1);
    // The good peer was never touched and still talks both ways.
    const goodId = good.self;
    const state = (id: string) => a.peers().find((p) => p.id === id)!.state;
    assert.equal(state(goodId), 'connected');
    good.send(a.self, Uint8Array.of(7));
    a.send(goodId, Uint8Array.of(8));
    await until(() => got.some((m) => m.from === goodId) && goodGot.length === 1, 'good traffic');
    assert.deepEqual(goodGot, [Uint8Array.of(8)]);
    assert.equal(good.counters().drops.rateLimited + good.counters().drops.socketClosed, 0);
  } finally {
    await Promise.all([a.stop(), good.stop()]);
  }
});

test('a peer past its bytes per second is dropped; the frame past the budget is not delivered', async () => {
  const a = makeTransport(0, [keyOf(0), keyOf(1)], BUDGET);
  const got: Uint8Array[] = [];
  a.onMessage((_, bytes) => got.push(bytes));
  await a.start();
  try {
    const peer = await rawPeer(a.address().port, keyOf(1));
    const chunk = new Uint8Array(100 * 1024);
    for (let i = 0; i < 4; i++) peer.send(chunk);
    await until(() => peer.isClosed(), 'dropped');
    assert.equal(a.counters().drops.rateLimited, 1);
    // The burst holds two of these frames, not the third.
    assert.equal(got.length, 2);
  } finally {
    await a.stop();
  }
});

test('a banned peer is not dialed until its ban ends, then reconnects', async () => {
  const keys = [keyOf(0), keyOf(1)];
  let nowMs = 0;
  // The ban is measured on the transport's clock; the test moves it by hand.
  const a = makeTransport(0, keys, { ...BUDGET, banMs: 50 }, 0, () => nowMs);
  const b = makeTransport(1, keys, TEST_LIMITS);
  await Promise.all([a.start(), b.start()]);
  try {
    const peer = await rawPeer(a.address().port, keyOf(1));
    for (let i = 0; i < 300; i++) peer.send(Uint8Array.of(i & 0xff));
    await until(() => peer.isClosed(), 'dropped');
    a.setPeerAddress(b.self, '127.0.0.1', b.address().port);
    b.setPeerAddress(a.self, '127.0.0.1', a.address().port);
    // Whoever dials, a refuses b while banned.
    await until(() => a.counters().drops.banned >= 1, 'refused while banned');
    assert.equal(a.peers()[0]!.state === 'connected', false);
    nowMs += 1_000;
    await until(() => a.peers()[0]!.state === 'connected', 'reconnected after the ban');
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});

test('a peer that reconnects before its budget runs out finds it as it left it: dropped and banned past it all the same', async () => {
  // The clock stands still: nothing refills, so the burst is all any connection of the peer gets.
  const a = makeTransport(0, [keyOf(0), keyOf(1)], BUDGET, 0, () => 0);
  const got: Uint8Array[] = [];
  a.onMessage((_, bytes) => got.push(bytes));
  await a.start();
  try {
    // Each connection sends three quarters of the burst, then the peer dials again.
    let delivered = 0;
    for (let i = 0; i < 4 && a.counters().drops.rateLimited === 0; i++) {
      const peer = await rawPeer(a.address().port, keyOf(1));
      if (peer.isClosed()) break;
      for (let k = 0; k < 150; k++) peer.send(Uint8Array.of(i, k & 0xff));
      await until(
        () => got.length === delivered + 150 || peer.isClosed(),
        `connection ${i}: its messages delivered, or it dropped`,
      );
      delivered = got.length;
    }
    assert.ok(got.length <= 200, `delivered ${got.length} messages, above the burst of 200`);
    assert.equal(a.counters().drops.rateLimited, 1);
  } finally {
    await a.stop();
  }
});
