// Versions in the handshake (secure.ts, docs/protocol.md "Peer connections"):
// peers of another execution version are refused by name on both sides,
// matching ones connect, a version altered on the way fails the auth, and a
// hello of another wire version (an older build's, or a later format) is
// refused at once with the versions it states.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { Socket } from 'node:net';
import type { KeyPair } from '../../../src/crypto/index.ts';
import { EXECUTION_VERSION } from '../../../src/exchange/index.ts';
import { toHex } from '../../../src/lib/bytes.ts';
import type { Log } from '../../../src/node/log.ts';
import {
  PROTOCOL_VERSION,
  PeerVersionError,
  TcpTransport,
} from '../../../src/node/transport/index.ts';
import {
  FrameDecoder,
  PROLOGUE_BYTES,
  clearFrame,
  decodeHello,
  deriveSession,
  encodeAuth,
  encodeHello,
  makeEphemeral,
} from '../../../src/node/transport/secure.ts';
import { CHAIN_ID, TEST_LIMITS, keyOf, until } from './helpers.ts';
import { openSocket, rawPeer } from './raw_peer.ts';

interface Line {
  readonly level: string;
  readonly fields: Record<string, unknown>;
  readonly message: string;
}

function recordingLog(lines: Line[]): Log {
  const at =
    (level: string) =>
    (fields: object, message: string): void =>
      void lines.push({ level, fields: fields as Record<string, unknown>, message });
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    fatal: at('fatal'),
  };
}

function transport(
  i: number,
  peers: readonly KeyPair[],
  executionVersion: number,
  lines: Line[] = [],
): TcpTransport {
  return new TcpTransport({
    chainId: CHAIN_ID,
    key: keyOf(i),
    host: '127.0.0.1',
    port: 0,
    peers: peers.map((key) => ({ publicKey: key.publicKey })),
    limits: TEST_LIMITS,
    random: () => 0.5,
    executionVersion,
    log: recordingLog(lines),
  });
}

/** Two transports with the given execution versions, started, each told where the other listens. */
async function pair(
  versions: readonly [number, number],
): Promise<{ a: TcpTransport; b: TcpTransport; lines: [Line[], Line[]]; stop(): Promise<void> }> {
  const keys = [keyOf(0), keyOf(1)];
  const lines: [Line[], Line[]] = [[], []];
  const a = transport(0, keys, versions[0], lines[0]);
  const b = transport(1, keys, versions[1], lines[1]);
  await Promise.all([a.start(), b.start()]);
  a.setPeerAddress(b.self, '127.0.0.1', b.address().port);
  b.setPeerAddress(a.self, '127.0.0.1', a.address().port);
  return { a, b, lines, stop: () => Promise.all([a.stop(), b.stop()]).then(() => {}) };
}

test('peers of one execution version connect and exchange messages', async () => {
  const { a, b, stop } = await pair([EXECUTION_VERSION, EXECUTION_VERSION]);
  try {
    const got: Uint8Array[] = [];
    b.onMessage((_from, bytes) => got.push(bytes));
    await until(() => a.peers()[0]!.state === 'connected', 'a connected');
    await until(() => a.send(b.self, Uint8Array.of(7)) && got.length > 0, 'a message through');
    assert.deepEqual(got[0], Uint8Array.of(7));
    assert.equal(a.counters().drops.executionVersion, 0);
    assert.deepEqual(a.versionRefusals(), []);
  } finally {
    await stop();
  }
});

test('peers of different execution versions refuse each other, both sides, naming the versions and the key', async () => {
  const { a, b, lines, stop } = await pair([4, 5]);
  try {
    await until(
      () => a.counters().drops.executionVersion >= 2 && b.counters().drops.executionVersion >= 2,
      'refusals on both sides (and a redial refused again)',
    );
    assert.equal(a.counters().connections, 0);
    assert.equal(b.counters().connections, 0);
    for (const [self, other, ours, theirs, log] of [
      [a, b, 4, 5, lines[0]],
      [b, a, 5, 4, lines[1]],
    ] as const) {
      const refusals = self.versionRefusals();
      assert.equal(refusals.length, 1);
      assert.deepEqual(
        { ...refusals[0]!, address: null },
        {
          kind: 'execution',
          peer: other.self,
          address: null,
          wireVersion: null,
          executionVersion: theirs,
          ourExecutionVersion: ours,
        },
      );
      const error = new PeerVersionError(refusals[0]!);
      assert.equal(error.code, 'PeerVersionMismatch');
      // Logged once, however often the peer redials with the same versions.
      const warned = log.filter((l) => l.fields.code === 'PeerVersionMismatch');
      assert.equal(warned.length, 1);
      assert.equal(warned[0]!.level, 'warn');
      assert.match(
        warned[0]!.message,
        new RegExp(
          `^peer ${other.self} \\(127\\.0\\.0\\.1\\) runs execution version ${theirs}, this node ${ours}: refused; see docs/operations\\.md "Upgrades"$`,
        ),
      );
      assert.equal(warned[0]!.fields.peerExecutionVersion, theirs);
      assert.equal(warned[0]!.fields.executionVersion, ours);
    }
  } finally {
    await stop();
  }
});

/**
 * A raw handshake against `port` as `key`: sends a hello of `sent` execution
 * version, but signs a transcript over a hello of `signed` (a man in the
 * middle who rewrote the version on the way). Resolves once the transport
 * hangs up.
 */
async function tamperedHandshake(
  port: number,
  key: KeyPair,
  sent: number,
  signed: number,
): Promise<void> {
  const socket = await openSocket(port);
  socket.on('error', () => {});
  const ephemeral = makeEphemeral();
  const signedHello = encodeHello(ephemeral, signed);
  socket.write(clearFrame(encodeHello(ephemeral, sent)));
  const decoder = new FrameDecoder(1 << 20);
  let answered = false;
  await new Promise<void>((resolve) => {
    socket.once('close', () => resolve());
    socket.on('data', (chunk: Buffer) => {
      decoder.push(chunk);
      const body = answered ? null : decoder.next();
      if (body === null || body === 'oversize') return;
      // The transport's hello, then its auth frame (not read: the test is about ours).
      answered = true;
      const theirs = decodeHello(body);
      if (theirs?.kind !== 'hello') return void socket.destroy();
      const session = deriveSession(CHAIN_ID, ephemeral, signedHello, theirs.bytes)!;
      socket.write(session.sender.seal(encodeAuth(key, CHAIN_ID, session.transcript)));
    });
  });
}

test('an execution version altered on the way fails the auth (the signatures cover the hellos)', async () => {
  const keys = [keyOf(0), keyOf(1)];
  const lines: Line[] = [];
  const a = transport(0, keys, 5, lines);
  await a.start();
  try {
    // The peer runs 4 and signs that; a middlebox rewrote its hello to say 5.
    await tamperedHandshake(a.address().port, keyOf(1), 5, 4);
    assert.equal(a.counters().drops.handshakeFailed, 1);
    assert.equal(a.counters().connections, 0);
    // Nor the other way: a hello of version 4 whose signature claims 5.
    await tamperedHandshake(a.address().port, keyOf(1), 4, 5);
    assert.equal(a.counters().drops.handshakeFailed, 2);
    assert.equal(a.counters().drops.executionVersion, 0);
    assert.equal(a.counters().connections, 0);
    // The untampered handshake of a peer of version 4 is refused for its version, by name.
    await tamperedHandshake(a.address().port, keyOf(1), 4, 4);
    assert.equal(a.counters().drops.executionVersion, 1);
    assert.equal(a.versionRefusals()[0]?.peer, toHex(keyOf(1).publicKey));
  } finally {
    await a.stop();
  }
});

/** Sends `hello` in clear to `port` and resolves once the transport hangs up. */
async function helloOnly(port: number, hello: Uint8Array): Promise<void> {
  const socket = await openSocket(port);
  socket.on('error', () => {});
  // Read (and drop) what comes: a paused socket would never see its end.
  socket.resume();
  await new Promise<void>((resolve) => {
    socket.once('close', () => resolve());
    socket.write(clearFrame(hello));
  });
}

test('the hello of a build before versions were exchanged (wire version 2) is refused at once, saying so', async () => {
  const lines: Line[] = [];
  const a = transport(0, [keyOf(0), keyOf(1)], EXECUTION_VERSION, lines);
  await a.start();
  try {
    const key = makeEphemeral().publicKey;
    // Exactly what that build sends: version 2, then its ephemeral key.
    await helloOnly(a.address().port, Uint8Array.of(2, ...key));
    assert.equal(a.counters().drops.wireVersion, 1);
    assert.equal(a.counters().drops.handshakeFailed, 0);
    const refusals = a.versionRefusals();
    assert.equal(refusals.length, 1);
    assert.equal(refusals[0]!.kind, 'wire');
    assert.equal(refusals[0]!.peer, null);
    assert.equal(refusals[0]!.wireVersion, 2);
    assert.equal(refusals[0]!.executionVersion, null);
    const warned = lines.filter((l) => l.fields.code === 'PeerVersionMismatch');
    assert.equal(warned.length, 1);
    assert.equal(
      warned[0]!.message,
      `a peer at 127.0.0.1 speaks peer protocol (wire) version 2, which carries no execution version (a build from before versions were exchanged); this node speaks wire version ${PROTOCOL_VERSION}, execution version ${EXECUTION_VERSION}: refused; see docs/operations.md "Upgrades"`,
    );
    // Again from the same address with the same versions: counted, not logged again.
    await helloOnly(a.address().port, Uint8Array.of(2, ...key));
    assert.equal(a.counters().drops.wireVersion, 2);
    assert.equal(lines.filter((l) => l.fields.code === 'PeerVersionMismatch').length, 1);
  } finally {
    await a.stop();
  }
});

test('a hello of a later wire version is refused at once, naming its wire and execution versions', async () => {
  const lines: Line[] = [];
  const a = transport(0, [keyOf(0), keyOf(1)], EXECUTION_VERSION, lines);
  await a.start();
  try {
    const later = encodeHello(makeEphemeral(), EXECUTION_VERSION + 1);
    later[0] = PROTOCOL_VERSION + 1;
    // Whatever follows the prologue in that version is not read.
    await helloOnly(a.address().port, Uint8Array.of(...later.subarray(0, PROLOGUE_BYTES), 9, 9));
    assert.equal(a.counters().drops.wireVersion, 1);
    const warned = lines.filter((l) => l.fields.code === 'PeerVersionMismatch');
    assert.equal(warned.length, 1);
    assert.match(
      warned[0]!.message,
      new RegExp(
        `speaks peer protocol \\(wire\\) version ${PROTOCOL_VERSION + 1}, execution version ${EXECUTION_VERSION + 1}; this node speaks wire version ${PROTOCOL_VERSION}`,
      ),
    );
  } finally {
    await a.stop();
  }
});

test('a peer dialed that answers with another wire version is named by the key dialed', async () => {
  const lines: Line[] = [];
  const a = transport(0, [keyOf(0), keyOf(1)], EXECUTION_VERSION, lines);
  await a.start();
  // A listener playing a build of wire version 2: it answers every connection with its hello.
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.write(clearFrame(Uint8Array.of(2, ...makeEphemeral().publicKey)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const address = server.address();
    assert.ok(address !== null && typeof address !== 'string');
    const peer = toHex(keyOf(1).publicKey);
    a.setPeerAddress(peer, '127.0.0.1', address.port);
    await until(() => a.counters().drops.wireVersion >= 1, 'the refusal');
    assert.equal(a.versionRefusals()[0]?.peer, peer);
    const warned = lines.filter((l) => l.fields.code === 'PeerVersionMismatch');
    assert.match(
      warned[0]!.message,
      new RegExp(`^peer ${peer} \\(127\\.0\\.0\\.1\\) speaks peer protocol \\(wire\\) version 2`),
    );
  } finally {
    await a.stop();
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('hellos of other wire versions from addresses not authenticated cannot flood the log, however their versions alternate', async () => {
  const lines: Line[] = [];
  const a = transport(0, [keyOf(0), keyOf(1)], EXECUTION_VERSION, lines);
  await a.start();
  try {
    const key = makeEphemeral().publicKey;
    // An address (no key proved) alternating between two claimed versions.
    for (let i = 0; i < 24; i++) {
      await helloOnly(a.address().port, Uint8Array.of(i % 2 === 0 ? 2 : 1, ...key));
    }
    assert.equal(a.counters().drops.wireVersion, 24);
    const warned = lines.filter((l) => l.fields.code === 'PeerVersionMismatch');
    assert.ok(warned.length <= 8, `${warned.length} lines logged for 24 hellos`);
  } finally {
    await a.stop();
  }
});

test('an address refused at its hello is no longer listed once a peer connects from it', async () => {
  const a = transport(0, [keyOf(0), keyOf(1)], EXECUTION_VERSION);
  await a.start();
  try {
    await helloOnly(a.address().port, Uint8Array.of(2, ...makeEphemeral().publicKey));
    assert.equal(a.versionRefusals().length, 1);
    // The build there was upgraded: the peer now connects from that address.
    const peer = await rawPeer(a.address().port, keyOf(1));
    try {
      await until(() => a.peers()[0]!.state === 'connected', 'the peer connected');
      assert.deepEqual(a.versionRefusals(), []);
    } finally {
      peer.close();
    }
  } finally {
    await a.stop();
  }
});

test('a key not configured is refused as unknown whatever execution version it states, not counted as a peer of another version', async () => {
  const lines: Line[] = [];
  const a = transport(0, [keyOf(0), keyOf(1)], EXECUTION_VERSION, lines);
  await a.start();
  try {
    // Anyone can make a key: its version says nothing of this node's peers.
    const stranger = await rawPeer(a.address().port, keyOf(2), CHAIN_ID, EXECUTION_VERSION + 1);
    await until(() => stranger.isClosed(), 'the stranger refused');
    assert.equal(a.counters().drops.unknownPeer, 1);
    assert.equal(a.counters().drops.executionVersion, 0);
    assert.deepEqual(a.versionRefusals(), []);
    assert.equal(lines.filter((l) => l.fields.code === 'PeerVersionMismatch').length, 0);
  } finally {
    await a.stop();
  }
});
