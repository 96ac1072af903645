// Keepalive: an idle connection is pinged inside the encrypted channel; one
// that answers nothing within the pong timeout is closed and redialed. The
// intervals are a few ms here, so the tests wait on conditions, not clocks.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { toHex } from '../../../src/lib/bytes.ts';
import { FRAME_KIND } from '../../../src/node/transport/secure.ts';
import type { TcpTransport, TransportLimits } from '../../../src/node/transport/index.ts';
import { TEST_LIMITS, keyOf, makeTransport, until } from './helpers.ts';
import { rawPeer } from './raw_peer.ts';

const KEEPALIVE: Partial<TransportLimits> = {
  ...TEST_LIMITS,
  pingIntervalMs: 10,
  pongTimeoutMs: 30,
};

/**
 * A TCP relay in front of a port. freeze() makes every pair open now swallow
 * whatever either side writes, without closing (a dead peer, a cut cable,
 * a stalled process); pairs opened later relay normally.
 */
async function relay(targetPort: number): Promise<{
  port: number;
  freeze(): void;
  pairs(): number;
  close(): Promise<void>;
}> {
  const pairs: { frozen: boolean; sockets: Socket[] }[] = [];
  const server: Server = createServer((inbound) => {
    const outbound = connect({ host: '127.0.0.1', port: targetPort });
    const pair = { frozen: false, sockets: [inbound, outbound] };
    pairs.push(pair);
    for (const [from, to] of [
      [inbound, outbound],
      [outbound, inbound],
    ] as const) {
      from.on('data', (chunk: Buffer) => {
        if (!pair.frozen) to.write(chunk);
      });
      from.on('error', () => {});
      from.on('close', () => {
        if (!pair.frozen) to.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return {
    port: address.port,
    freeze: () => pairs.forEach((p) => (p.frozen = true)),
    pairs: () => pairs.length,
    close: async () => {
      for (const p of pairs) for (const s of p.sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

test('an idle connection is pinged and stays up while the peer answers', async () => {
  // A pong timeout far above the ping interval: a loaded machine's late pong is still in time.
  const a = makeTransport(0, [keyOf(0), keyOf(1)], { ...KEEPALIVE, pongTimeoutMs: 5_000 });
  await a.start();
  try {
    const peer = await rawPeer(a.address().port, keyOf(1));
    await until(() => a.counters().pings >= 5, 'five pings');
    assert.ok(peer.kinds.every((k) => k === FRAME_KIND.ping));
    assert.equal(peer.isClosed(), false);
    assert.equal(a.peers()[0]!.state, 'connected');
    assert.equal(a.counters().drops.timeout, 0);
  } finally {
    await a.stop();
  }
});

test('a peer that stops answering is closed at the pong timeout and counted', async () => {
  const a = makeTransport(0, [keyOf(0), keyOf(1)], KEEPALIVE);
  await a.start();
  try {
    const peer = await rawPeer(a.address().port, keyOf(1));
    await until(() => a.peers()[0]!.state === 'connected', 'connected');
    peer.answerPings = false;
    await until(() => peer.isClosed(), 'the silent peer closed');
    assert.equal(a.counters().drops.timeout, 1);
    assert.ok(peer.kinds.includes(FRAME_KIND.ping));
    assert.notEqual(a.peers()[0]!.state, 'connected');
  } finally {
    await a.stop();
  }
});

test('a ping is answered with a pong, and messages still flow around keepalive frames', async () => {
  // A long interval on the transport: the only ping here is the raw peer's.
  const a = makeTransport(0, [keyOf(0), keyOf(1)], { ...TEST_LIMITS, pingIntervalMs: 60_000 });
  const got: Uint8Array[] = [];
  a.onMessage((_, bytes) => got.push(bytes));
  await a.start();
  try {
    const peer = await rawPeer(a.address().port, keyOf(1));
    peer.send(Uint8Array.of(1));
    peer.socket.write(peer.session.sender.seal(new Uint8Array(0), FRAME_KIND.ping));
    peer.send(Uint8Array.of(2));
    await until(() => peer.kinds.includes(FRAME_KIND.pong), 'the pong');
    await until(() => got.length === 2, 'both messages');
    assert.deepEqual(got, [Uint8Array.of(1), Uint8Array.of(2)]);
    // A frame of an unknown kind is a protocol error: the connection closes.
    peer.socket.write(peer.session.sender.seal(new Uint8Array(0), 7));
    await until(() => peer.isClosed(), 'closed on an unknown kind');
    assert.equal(a.counters().drops.badFrame, 1);
  } finally {
    await a.stop();
  }
});

test('a connection gone dead in the middle is let go on both sides and re-established', async () => {
  const keys = [keyOf(0), keyOf(1)];
  const a = makeTransport(0, keys, KEEPALIVE);
  const b = makeTransport(1, keys, KEEPALIVE);
  await Promise.all([a.start(), b.start()]);
  const link = await relay(b.address().port);
  const got: Uint8Array[] = [];
  b.onMessage((_, bytes) => got.push(bytes));
  try {
    // Only a knows an address (the relay's), so every connection goes through it.
    a.setPeerAddress(b.self, '127.0.0.1', link.port);
    const connected = (t: TcpTransport): boolean => t.peers()[0]!.state === 'connected';
    await until(() => connected(a) && connected(b), 'first connection');
    link.freeze();
    await until(() => a.counters().drops.timeout >= 1, 'a times out');
    // b either times out too or sees a's new connection replace the dead one first.
    await until(
      () => b.counters().drops.timeout + b.counters().drops.duplicate >= 1,
      'b lets the dead connection go',
    );
    await until(() => connected(a) && connected(b) && link.pairs() >= 2, 'reconnected');
    await until(() => {
      a.send(toHex(keyOf(1).publicKey), Uint8Array.of(9));
      return got.length > 0;
    }, 'a message over the new connection');
    assert.deepEqual(got[0], Uint8Array.of(9));
    assert.ok(a.counters().connections >= 2);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
    await link.close();
  }
});
