// A peer that breaks the protocol on purpose, against a real TcpTransport on
// loopback: each abuse ends in a typed drop (or is harmless), frees what it
// held, and leaves honest peers working.

import { test } from 'node:test';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import assert from 'node:assert/strict';
import { toHex } from '../../../src/lib/bytes.ts';
import { TcpTransport } from '../../../src/node/transport/index.ts';
import type { PeerId } from '../../../src/node/transport/index.ts';
import { EXECUTION_VERSION } from '../../../src/exchange/version.ts';
import {
  FRAME_KIND,
  FrameDecoder,
  HELLO_BYTES,
  PROTOCOL_VERSION,
  clearFrame,
  encodeHello,
  makeEphemeral,
} from '../../../src/node/transport/secure.ts';
import { CHAIN_ID, TEST_LIMITS, keyOf, makeTransport, until } from './helpers.ts';
import { openSocket, rawPeer } from './raw_peer.ts';

async function listener(limits = TEST_LIMITS): Promise<TcpTransport> {
  const t = makeTransport(0, [keyOf(0), keyOf(1), keyOf(2)], limits);
  await t.start();
  return t;
}

function inbox(t: TcpTransport): { from: PeerId; bytes: Uint8Array }[] {
  const got: { from: PeerId; bytes: Uint8Array }[] = [];
  t.onMessage((from, bytes) => got.push({ from, bytes }));
  return got;
}

/** A raw socket that records whether it closed and the clear frames it got. */
async function rawSocket(
  port: number,
): Promise<{ s: Socket; closed: () => boolean; frames: Buffer[] }> {
  const s = await openSocket(port);
  let closed = false;
  const frames: Buffer[] = [];
  const decoder = new FrameDecoder(1 << 20);
  s.on('close', () => (closed = true));
  s.on('error', () => {});
  s.on('data', (chunk: Buffer) => {
    decoder.push(chunk);
    for (let body = decoder.next(); body !== null && body !== 'oversize'; body = decoder.next()) {
      frames.push(Buffer.from(body));
    }
  });
  return { s, closed: () => closed, frames };
}

test('malformed hellos, a reflected hello and a silent peer end in handshakeFailed and free their slots', async () => {
  const a = await listener({ ...TEST_LIMITS, handshakeTimeoutMs: 300 });
  try {
    const hello = (bytes: number[]): Buffer => clearFrame(Uint8Array.from(bytes));
    const cases = [
      hello([PROTOCOL_VERSION, ...new Array<number>(HELLO_BYTES - 2).fill(9)]), // short
      hello([PROTOCOL_VERSION, ...new Array<number>(HELLO_BYTES).fill(9)]), // long
      hello([]), // empty
    ];
    for (const frame of cases) {
      const r = await rawSocket(a.address().port);
      r.s.write(frame);
      await until(r.closed, 'a malformed hello closed');
    }
    assert.equal(a.counters().drops.handshakeFailed, cases.length);
    // Another wire version (1: frames without a kind byte) is refused as such.
    const old = await rawSocket(a.address().port);
    old.s.write(hello([1, ...new Array<number>(32).fill(9)]));
    await until(old.closed, 'a hello of wire version 1 closed');
    assert.equal(a.counters().drops.wireVersion, 1);
    assert.equal(a.counters().drops.handshakeFailed, cases.length);
    // Our own hello sent back.
    const r = await rawSocket(a.address().port);
    await until(() => r.frames.length === 1, 'the transport hello');
    r.s.write(clearFrame(r.frames[0]!));
    await until(r.closed, 'a reflected hello closed');
    assert.equal(a.counters().drops.handshakeFailed, cases.length + 1);
    // A valid hello, then nothing: the handshake timeout closes it.
    const silent = await rawSocket(a.address().port);
    silent.s.write(clearFrame(encodeHello(makeEphemeral(), EXECUTION_VERSION)));
    await until(silent.closed, 'a silent peer closed');
    assert.equal(a.counters().drops.handshakeFailed, cases.length + 2);
    assert.equal(a.handshakesPending(), 0);
    // An honest peer still gets in.
    const got = inbox(a);
    const peer = await rawPeer(a.address().port, keyOf(1));
    peer.send(Uint8Array.of(7));
    await until(() => got.length === 1, 'the honest message');
    peer.close();
  } finally {
    await a.stop();
  }
});

test('a key connecting twice keeps only the newer connection', async () => {
  const a = await listener();
  try {
    const got = inbox(a);
    const first = await rawPeer(a.address().port, keyOf(1));
    await until(() => a.counters().connections === 1, 'first open');
    const second = await rawPeer(a.address().port, keyOf(1));
    await until(() => first.isClosed(), 'the older closed');
    assert.equal(a.counters().drops.duplicate, 1);
    assert.equal(second.isClosed(), false);
    second.send(Uint8Array.of(2));
    await until(() => got.length === 1, 'the newer delivers');
    assert.equal(a.peers().filter((p) => p.state === 'connected').length, 1);
    second.close();
  } finally {
    await a.stop();
  }
});

test('a frame written a byte at a time, unasked pongs and a ping flood are harmless', async () => {
  const a = await listener();
  try {
    const got = inbox(a);
    const peer = await rawPeer(a.address().port, keyOf(1));
    const frame = peer.session.sender.seal(Uint8Array.of(1, 2, 3, 4, 5), FRAME_KIND.message);
    for (const byte of frame) peer.socket.write(Uint8Array.of(byte));
    await until(() => got.length === 1, 'the trickled message');
    assert.deepEqual([...got[0]!.bytes], [1, 2, 3, 4, 5]);
    for (let i = 0; i < 50; i++) {
      peer.socket.write(peer.session.sender.seal(new Uint8Array(0), FRAME_KIND.pong));
    }
    for (let i = 0; i < 500; i++) {
      peer.socket.write(peer.session.sender.seal(new Uint8Array(0), FRAME_KIND.ping));
    }
    await until(() => peer.kinds.filter((k) => k === FRAME_KIND.pong).length === 500, 'pongs');
    peer.send(Uint8Array.of(9));
    await until(() => got.length === 2, 'a message after the flood');
    assert.equal(peer.isClosed(), false);
    assert.equal(a.peers().find((p) => p.id === toHex(keyOf(1).publicKey))!.state, 'connected');
    peer.close();
  } finally {
    await a.stop();
  }
});

test("a failed accept (the server's error event) is logged, and the transport keeps accepting", async () => {
  const warnings: string[] = [];
  const ignore = (): void => {};
  const a = new TcpTransport({
    chainId: CHAIN_ID,
    key: keyOf(0),
    host: '127.0.0.1',
    port: 0,
    peers: [{ publicKey: keyOf(1).publicKey }],
    limits: TEST_LIMITS,
    log: {
      debug: ignore,
      info: ignore,
      error: ignore,
      fatal: ignore,
      warn: (_f, message) => warnings.push(message),
    },
  });
  await a.start();
  try {
    // What Node emits when accept(2) fails, e.g. with every file descriptor in use.
    const server = (a as unknown as { server: Server }).server;
    server.emit('error', Object.assign(new Error('accept EMFILE'), { code: 'EMFILE' }));
    assert.deepEqual(warnings, ['peer connection not accepted']);
    const got = inbox(a);
    const peer = await rawPeer(a.address().port, keyOf(1));
    peer.send(Uint8Array.of(3));
    await until(() => got.length === 1, 'a message after the failed accept');
    peer.close();
  } finally {
    await a.stop();
  }
});

test('a peer flooding pings without reading its pongs is dropped with a typed reason, its queue bounded', async () => {
  const a = await listener({ ...TEST_LIMITS, sendQueueFramesMax: 100 });
  try {
    const peer = await rawPeer(a.address().port, keyOf(1));
    await until(() => a.counters().connections === 1, 'connected');
    peer.socket.pause();
    const ping = (): Buffer => peer.session.sender.seal(new Uint8Array(0), FRAME_KIND.ping);
    let queuedMax = 0;
    for (let round = 0; round < 200 && !peer.isClosed(); round++) {
      const burst = Buffer.concat(Array.from({ length: 500 }, ping));
      peer.socket.write(burst);
      await new Promise((resolve) => setImmediate(resolve));
      queuedMax = Math.max(queuedMax, a.peers()[0]!.queuedFrames);
      const d = a.counters().drops;
      if (d.queueFull + d.rateLimited > 0) break;
    }
    const d = a.counters().drops;
    assert.equal(d.queueFull + d.rateLimited, 1, `drops ${JSON.stringify(d)}`);
    assert.ok(queuedMax <= 100, `queued ${queuedMax} frames`);
    assert.notEqual(a.peers()[0]!.state, 'connected');
    peer.close();
  } finally {
    await a.stop();
  }
});

test('a peer banned while a redial to it was waiting is not dialed', async () => {
  // Servers standing in for peers 1 and 2: they count dials and hang up.
  const dials = [0, 0];
  const servers = [0, 1].map((i) =>
    createServer((s) => {
      dials[i]!++;
      s.destroy();
    }),
  );
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))));
  const portOf = (i: number): number => (servers[i]!.address() as { port: number }).port;
  const ignore = (): void => {};
  const a = new TcpTransport({
    chainId: CHAIN_ID,
    key: keyOf(0),
    host: '127.0.0.1',
    port: 0,
    peers: [
      { publicKey: keyOf(1).publicKey, host: '127.0.0.1', port: portOf(0) },
      { publicKey: keyOf(2).publicKey },
    ],
    // Every redial waits exactly 500 ms, so redials fire in the order they were scheduled.
    // One message a second past a burst of 5: the flood below is over its budget
    // however slowly a loaded machine delivers it (at the default rate the
    // bucket could refill between its messages, and no ban came).
    limits: {
      ...TEST_LIMITS,
      backoffMsMin: 1000,
      backoffMsMax: 1000,
      inMessagesBurst: 5,
      inMessagesPerS: 1,
    },
    random: () => 0,
    log: { debug: ignore, info: ignore, error: ignore, warn: ignore, fatal: ignore },
  });
  await a.start();
  try {
    // The dial to peer 1 fails: a redial is scheduled.
    await until(() => dials[0] === 1 && a.counters().drops.socketClosed === 1, 'a failed dial');
    // Peer 1 dials in instead, then floods and is banned.
    const peer = await rawPeer(a.address().port, keyOf(1));
    await until(() => a.counters().connections === 1, 'peer 1 connected');
    for (let i = 0; i < 10; i++) peer.send(Uint8Array.of(i));
    await until(() => a.counters().drops.rateLimited === 1, 'peer 1 banned');
    // A redial of peer 2 scheduled now fires after the old one of peer 1 would have.
    const id2 = toHex(keyOf(2).publicKey);
    const direct = a.self < id2 ? 1 : 0;
    a.setPeerAddress(id2, '127.0.0.1', portOf(1));
    await until(() => dials[1] === direct + 1, 'peer 2 dialed after a backoff');
    assert.equal(dials[0], 1, 'the banned peer was dialed');
    peer.close();
  } finally {
    await a.stop();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
});
