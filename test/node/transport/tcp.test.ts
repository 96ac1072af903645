import { test } from 'node:test';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import assert from 'node:assert/strict';
import {
  FRAME_BYTES_MAX,
  HANDSHAKE_FRAME_BYTES_MAX,
  HANDSHAKES_PENDING_PER_IP_MAX,
  HANDSHAKES_PER_IP_BURST,
  HANDSHAKES_PER_IP_PER_S,
  HANDSHAKE_RATE_ADDRESSES_MAX,
} from '../../../src/lib/limits.ts';
import { toHex } from '../../../src/lib/bytes.ts';
import type { PeerId } from '../../../src/node/transport/index.ts';
import type { TcpTransport } from '../../../src/node/transport/index.ts';
import { TEST_LIMITS, keyOf, makeTransport, startNetwork, until } from './helpers.ts';
import { openSocket, rawPeer } from './raw_peer.ts';
import { Bucket } from '../../../src/node/transport/connection.ts';

/** A started transport (key 0) that accepts keys 1..n. */
async function listener(n = 1, limits = TEST_LIMITS): Promise<TcpTransport> {
  const keys = Array.from({ length: n + 1 }, (_, i) => keyOf(i));
  const t = makeTransport(0, keys, limits);
  await t.start();
  return t;
}

function inbox(t: TcpTransport): { from: PeerId; bytes: Uint8Array }[] {
  const got: { from: PeerId; bytes: Uint8Array }[] = [];
  t.onMessage((from, bytes) => got.push({ from, bytes }));
  return got;
}

test('listens only on the configured address', async () => {
  const t = await listener();
  try {
    assert.equal(t.address().host, '127.0.0.1');
    assert.ok(t.address().port > 0);
  } finally {
    await t.stop();
  }
});

test('a transport whose key is not configured is refused and delivers nothing', async () => {
  const a = await listener(1);
  const stranger = makeTransport(9, [keyOf(0)]);
  await stranger.start();
  try {
    const got = inbox(a);
    stranger.setPeerAddress(toHex(keyOf(0).publicKey), '127.0.0.1', a.address().port);
    await until(() => a.counters().drops.unknownPeer >= 2, 'two refusals');
    stranger.broadcast(Uint8Array.of(1, 2, 3));
    assert.ok(a.peers().every((p) => p.state !== 'connected'));
    assert.equal(a.counters().connections, 0);
    assert.deepEqual(got, []);
  } finally {
    await Promise.all([a.stop(), stranger.stop()]);
  }
});

test('a raw peer with an unknown key is closed after its auth frame', async () => {
  const a = await listener(1);
  try {
    const peer = await rawPeer(a.address().port, keyOf(5));
    await until(() => peer.isClosed(), 'the connection closed');
    assert.equal(a.counters().drops.unknownPeer, 1);
  } finally {
    await a.stop();
  }
});

test('a peer signing for another chain fails the handshake', async () => {
  const a = await listener(1);
  try {
    const peer = await rawPeer(a.address().port, keyOf(1), 'zomma-other-1');
    await until(() => peer.isClosed(), 'the connection closed');
    assert.equal(peer.peerKey, null);
    assert.equal(a.counters().drops.handshakeFailed, 1);
    assert.equal(a.counters().connections, 0);
  } finally {
    await a.stop();
  }
});

test('a tampered frame closes the connection; frames after it are not delivered', async () => {
  const a = await listener(1);
  try {
    const got = inbox(a);
    const peer = await rawPeer(a.address().port, keyOf(1));
    assert.deepEqual(peer.peerKey, keyOf(0).publicKey);
    peer.send(Uint8Array.of(1));
    await until(() => got.length === 1, 'the first message');
    const frame = peer.session.sender.seal(Uint8Array.of(2, 2, 2, 2));
    frame[frame.length - 20]! ^= 0x01;
    peer.socket.write(frame);
    peer.send(Uint8Array.of(3));
    await until(() => peer.isClosed(), 'the connection closed');
    assert.equal(a.counters().drops.badFrame, 1);
    assert.deepEqual(got, [{ from: toHex(keyOf(1).publicKey), bytes: Uint8Array.of(1) }]);
  } finally {
    await a.stop();
  }
});

test('a replayed frame fails authentication (the nonce counter moved on)', async () => {
  const a = await listener(1);
  try {
    const got = inbox(a);
    const peer = await rawPeer(a.address().port, keyOf(1));
    const frame = peer.send(Uint8Array.of(7, 7));
    await until(() => got.length === 1, 'the first message');
    peer.socket.write(frame);
    await until(() => peer.isClosed(), 'the connection closed');
    assert.equal(a.counters().drops.badFrame, 1);
    assert.equal(got.length, 1);
  } finally {
    await a.stop();
  }
});

test('an oversize length prefix closes the connection before any body is read', async () => {
  const a = await listener(1);
  try {
    // Before the handshake the limit is the handshake frame's.
    const early = await openSocket(a.address().port);
    let earlyClosed = false;
    early.on('close', () => (earlyClosed = true));
    early.on('error', () => {});
    early.resume();
    const length = Buffer.alloc(4);
    length.writeUInt32BE(HANDSHAKE_FRAME_BYTES_MAX + 1);
    early.write(length);
    await until(() => earlyClosed, 'the early connection closed');
    assert.equal(a.counters().drops.oversize, 1);
    // After it, the message limit: only the four length bytes are ever sent.
    const peer = await rawPeer(a.address().port, keyOf(1));
    length.writeUInt32BE(FRAME_BYTES_MAX + 1);
    peer.socket.write(length);
    await until(() => peer.isClosed(), 'the connection closed');
    assert.equal(a.counters().drops.oversize, 2);
  } finally {
    await a.stop();
  }
});

test('a peer that stops reading is dropped once its queue fills; the queue never passes its bound', async () => {
  const queueBytesMax = 1024 * 1024;
  const a = await listener(1, { ...TEST_LIMITS, sendQueueBytesMax: queueBytesMax });
  try {
    const peer = await rawPeer(a.address().port, keyOf(1));
    const id = toHex(keyOf(1).publicKey);
    await until(() => a.peers()[0]!.state === 'connected', 'connected');
    peer.socket.pause();
    const chunk = new Uint8Array(64 * 1024);
    let queuedMax = 0;
    let sent = 0;
    // The kernel's socket buffers absorb some megabytes first; 256 MB is far beyond them.
    while (a.counters().drops.queueFull === 0) {
      assert.ok(sent < 4096, 'never dropped');
      for (let i = 0; i < 8; i++) {
        if (a.send(id, chunk)) sent++;
        queuedMax = Math.max(queuedMax, a.peers()[0]!.queuedBytes);
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.ok(queuedMax <= queueBytesMax, `queued ${queuedMax}`);
    assert.notEqual(a.peers()[0]!.state, 'connected');
    assert.equal(a.peers()[0]!.queuedBytes, 0);
    assert.equal(a.send(id, chunk), false);
  } finally {
    await a.stop();
  }
});

test('reconnects after the other side restarts on the same port', async () => {
  const net = await startNetwork(2);
  const [a, b] = net.transports as [TcpTransport, TcpTransport];
  let b2: TcpTransport | null = null;
  try {
    await until(() => a.peers()[0]!.state === 'connected', 'first connection');
    const port = b.address().port;
    await b.stop();
    await until(() => a.peers()[0]!.state !== 'connected', 'a sees b go');
    b2 = makeTransport(1, [keyOf(0), keyOf(1)], TEST_LIMITS, port);
    const got = inbox(b2);
    await b2.start();
    b2.setPeerAddress(a.self, '127.0.0.1', a.address().port);
    await until(
      () => a.peers()[0]!.state === 'connected' && b2!.peers()[0]!.state === 'connected',
      'reconnection',
    );
    await until(() => {
      a.send(b.self, Uint8Array.of(4, 2));
      return got.length > 0;
    }, 'a message after the restart');
    assert.deepEqual(got[0], { from: a.self, bytes: Uint8Array.of(4, 2) });
    assert.ok(a.counters().connections >= 2);
  } finally {
    await net.close();
    await b2?.stop();
  }
});

test('simultaneous dials settle on one connection per pair, the same on both sides', async () => {
  const net = await startNetwork(4);
  // Normally the lower id's dial wins, but on a loaded machine the higher id
  // may dial first (it only waits longer), and while a second connection's
  // handshake is in flight the two sides may briefly hold different ones. What
  // is guaranteed is that they settle on the same connection: exactly one side
  // holds it outbound.
  const agreed = (): boolean =>
    net.transports.every((t) =>
      t.peers().every((p) => {
        const back = net.transports
          .find((u) => u.self === p.id)!
          .peers()
          .find((q) => q.id === t.self)!;
        return (
          p.state === 'connected' && back.state === 'connected' && p.outbound !== back.outbound
        );
      }),
    );
  try {
    await until(agreed, 'every pair connected over one connection both sides keep');
    const connections = net.transports.reduce(
      (n, t) => n + t.peers().filter((p) => p.outbound).length,
      0,
    );
    assert.equal(connections, 6, 'one connection per pair of the four');
  } finally {
    await net.close();
  }
});

test('one address holds at most HANDSHAKES_PENDING_PER_IP_MAX handshakes; a known peer still gets in', async () => {
  const a = await listener(1);
  const idle: Socket[] = [];
  try {
    // Connections that never speak: each holds a handshake slot until its timeout.
    for (let i = 0; i < HANDSHAKES_PENDING_PER_IP_MAX + 3; i++) {
      const s = await openSocket(a.address().port);
      s.on('error', () => {});
      idle.push(s);
    }
    await until(() => a.counters().drops.tooManyHandshakes === 3, 'the extra three refused');
    // Those ending free their slots: a real peer from the same address completes its handshake.
    for (const s of idle.splice(0)) s.destroy();
    await until(() => a.handshakesPending() === 0, 'the idle connections closed');
    const peer = await rawPeer(a.address().port, keyOf(1));
    await until(() => a.counters().connections === 1, 'the known peer connected');
    assert.equal(peer.isClosed(), false);
    peer.close();
  } finally {
    for (const s of idle) s.destroy();
    await a.stop();
  }
});

test('an address that keeps starting handshakes it never finishes is held to HANDSHAKES_PER_IP_PER_S', async () => {
  let clockMs = 0;
  const t = makeTransport(0, [keyOf(0), keyOf(1)], TEST_LIMITS, 0, () => clockMs);
  await t.start();
  try {
    // Each connects and leaves at once, freeing its pending slot: only the rate stops them.
    for (let i = 0; i < HANDSHAKES_PER_IP_BURST; i++) {
      const s = await openSocket(t.address().port);
      s.on('error', () => {});
      await until(() => t.handshakesPending() === 1, `attempt ${i} accepted`);
      s.destroy();
      await until(() => t.handshakesPending() === 0, `attempt ${i} gone`);
    }
    assert.equal(t.counters().drops.tooManyHandshakes, 0, 'the burst is allowed');
    const over = await openSocket(t.address().port);
    over.on('error', () => {});
    await until(() => t.counters().drops.tooManyHandshakes === 1, 'the next one refused');
    over.destroy();
    // A second later the address has HANDSHAKES_PER_IP_PER_S again: a known peer gets in.
    clockMs += 1_000;
    const peer = await rawPeer(t.address().port, keyOf(1));
    await until(() => t.counters().connections === 1, 'the known peer connected');
    assert.equal(peer.isClosed(), false);
    peer.close();
  } finally {
    await t.stop();
  }
});

test('handshakes that prove a known key do not use up the address rate', async () => {
  // The clock stands still: no attempt is refilled, each must be given back.
  const t = makeTransport(0, [keyOf(0), keyOf(1)], TEST_LIMITS, 0, () => 0);
  await t.start();
  try {
    // A peer on the same host (a loopback cluster) reconnecting far more often than the rate.
    for (let i = 0; i < HANDSHAKES_PER_IP_BURST + 2 * HANDSHAKES_PER_IP_PER_S; i++) {
      const peer = await rawPeer(t.address().port, keyOf(1));
      await until(() => t.counters().connections === i + 1, `connection ${i} opened`);
      peer.close();
      await until(() => t.peers().every((p) => p.state !== 'connected'), `connection ${i} closed`);
    }
    assert.equal(t.counters().drops.tooManyHandshakes, 0, 'none refused');
  } finally {
    await t.stop();
  }
});

/** A socket to `port` from the loopback address `local` (all of 127.0.0.0/8 is this host). */
function socketFrom(port: number, local: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: local });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** One handshake started and dropped from each of the addresses 127.1.x.y numbered [from, to). */
async function startFrom(t: TcpTransport, from: number, to: number): Promise<void> {
  const port = t.address().port;
  for (let i = from; i < to; i += 32) {
    const batch: Socket[] = [];
    for (let k = i; k < Math.min(to, i + 32); k++) {
      const s = await socketFrom(port, `127.1.${k >> 8}.${k & 255}`);
      s.on('error', () => {});
      batch.push(s);
    }
    await until(() => t.handshakesPending() === batch.length, `batch ${i} accepted`);
    for (const s of batch) s.destroy();
    await until(() => t.handshakesPending() === 0, `batch ${i} gone`);
  }
}

test('a known peer still gets in while every remembered address is paying for a burst', async () => {
  // The clock stands still: an address that started a handshake stays below its burst for good,
  // as under a flood that keeps HANDSHAKE_RATE_ADDRESSES_MAX addresses each a token short.
  const t = makeTransport(0, [keyOf(0), keyOf(1)], TEST_LIMITS, 0, () => 0);
  await t.start();
  try {
    const port = t.address().port;
    const first = await rawPeer(port, keyOf(1));
    await until(() => t.counters().connections === 1, 'the known peer connected');
    first.close();
    await until(() => t.peers().every((p) => p.state !== 'connected'), 'the known peer gone');
    // Every other address of the map, then one more: 127.0.0.1's full bucket is the one forgotten.
    await startFrom(t, 0, HANDSHAKE_RATE_ADDRESSES_MAX);
    assert.equal(t.counters().drops.tooManyHandshakes, 0, 'each address had its burst');
    // The peer comes back from the address it proved its key from.
    const again = await rawPeer(port, keyOf(1)).catch(() => null);
    await until(
      () => t.counters().connections === 2 || t.counters().drops.tooManyHandshakes > 0,
      'the known peer connected or refused',
    );
    assert.equal(t.counters().drops.tooManyHandshakes, 0, 'the known peer was not refused');
    assert.equal(t.counters().connections, 2, 'the known peer connected again');
    again?.close();
  } finally {
    await t.stop();
  }
});

test('newcomers refused while every remembered address is paying for a burst cost no pass over the map each', async () => {
  const t = makeTransport(0, [keyOf(0), keyOf(1)], TEST_LIMITS, 0, () => 0);
  await t.start();
  const isFull = Bucket.prototype.isFull;
  let looked = 0;
  Bucket.prototype.isFull = function (this: Bucket, nowMs: number): boolean {
    looked++;
    return isFull.call(this, nowMs);
  };
  try {
    await startFrom(t, 0, HANDSHAKE_RATE_ADDRESSES_MAX);
    assert.equal(t.counters().drops.tooManyHandshakes, 0, 'each address had its burst');
    const newcomers = 50;
    for (let i = 0; i < newcomers; i++) {
      const k = HANDSHAKE_RATE_ADDRESSES_MAX + i;
      const s = await socketFrom(t.address().port, `127.1.${k >> 8}.${k & 255}`).catch(() => null);
      s?.on('error', () => {});
      await until(() => t.counters().drops.tooManyHandshakes === i + 1, `newcomer ${i} refused`);
      s?.destroy();
    }
    assert.ok(
      looked <= HANDSHAKE_RATE_ADDRESSES_MAX,
      `${looked} buckets looked at for ${newcomers} newcomers: one pass at most`,
    );
  } finally {
    Bucket.prototype.isFull = isFull;
    await t.stop();
  }
});
