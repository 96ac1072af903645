// A hand-driven peer for tests: it speaks the handshake of secure.ts over a
// raw socket, then lets a test send well-formed, tampered or oversize frames,
// stop reading, or go silent (read frames but answer no ping).

import { connect } from 'node:net';
import type { Socket } from 'node:net';
import type { KeyPair } from '../../../src/crypto/index.ts';
import { EXECUTION_VERSION } from '../../../src/exchange/version.ts';
import {
  FRAME_KIND,
  FrameDecoder,
  checkAuth,
  clearFrame,
  decodeHello,
  deriveSession,
  encodeAuth,
  encodeHello,
  makeEphemeral,
} from '../../../src/node/transport/secure.ts';
import type { Session } from '../../../src/node/transport/secure.ts';
import { CHAIN_ID, WAIT_MS_MAX } from './helpers.ts';

export interface RawPeer {
  readonly socket: Socket;
  readonly session: Session;
  /** The transport's static key, as its auth frame proved it. */
  readonly peerKey: Uint8Array | null;
  isClosed(): boolean;
  /** Seals and writes one message; returns the frame written. */
  send(bytes: Uint8Array): Buffer;
  /** Frame kinds received after the handshake, in order (FRAME_KIND values). */
  readonly kinds: number[];
  /** Whether a ping is answered with a pong (default true); false plays a dead peer. */
  answerPings: boolean;
  close(): void;
}

export function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Connects and completes the handshake as `key` (or until the transport hangs up). */
export async function rawPeer(
  port: number,
  key: KeyPair,
  chainId = CHAIN_ID,
  executionVersion = EXECUTION_VERSION,
): Promise<RawPeer> {
  const socket = await openSocket(port);
  let closed = false;
  socket.on('close', () => (closed = true));
  socket.on('error', () => {});
  const ephemeral = makeEphemeral();
  const hello = encodeHello(ephemeral, executionVersion);
  socket.write(clearFrame(hello));
  const decoder = new FrameDecoder(1 << 30);
  let session: Session | null = null;
  let peerKey: Uint8Array | null = null;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('raw handshake timed out')), WAIT_MS_MAX);
    const done = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      resolve();
    };
    socket.once('close', done);
    const onData = (chunk: Buffer): void => {
      decoder.push(chunk);
      for (let body = decoder.next(); body !== null && body !== 'oversize'; body = decoder.next()) {
        if (session === null) {
          const theirs = decodeHello(body);
          if (theirs?.kind !== 'hello') return void socket.destroy();
          session = deriveSession(chainId, ephemeral, hello, theirs.bytes);
          socket.write(session!.sender.seal(encodeAuth(key, chainId, session!.transcript)));
        } else {
          const plain = session.receiver.open(body.length, body);
          peerKey = plain === null ? null : checkAuth(plain, chainId, session.transcript);
          return done();
        }
      }
    };
    socket.on('data', onData);
  });
  if (session === null) throw new Error('the transport closed before its hello');
  const ready: Session = session;
  const peer: RawPeer = {
    socket,
    session: ready,
    peerKey,
    kinds: [],
    answerPings: true,
    isClosed: () => closed,
    send(bytes) {
      const frame = ready.sender.seal(bytes, FRAME_KIND.message);
      socket.write(frame);
      return frame;
    },
    close: () => socket.destroy(),
  };
  socket.on('data', (chunk: Buffer) => {
    decoder.push(chunk);
    for (let body = decoder.next(); body !== null && body !== 'oversize'; body = decoder.next()) {
      const plain = ready.receiver.open(body.length, body);
      if (plain === null || plain.length === 0) return void socket.destroy();
      peer.kinds.push(plain[0]!);
      if (plain[0] === FRAME_KIND.ping && peer.answerPings && !closed) {
        socket.write(ready.sender.seal(new Uint8Array(0), FRAME_KIND.pong));
      }
    }
  });
  return peer;
}
