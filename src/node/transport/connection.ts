// One peer connection over a socket: the handshake of secure.ts, then framed,
// encrypted messages, with a bounded send queue that honours the socket's
// backpressure, a keepalive (ping when idle, close when a ping goes
// unanswered) and an inbound budget (token buckets on messages and bytes).
// The transport (tcp.ts) owns the decisions: which keys may connect, which of
// two connections with one peer survives, how long a flooding peer is banned.

import type { Socket } from 'node:net';
import type { KeyPair } from '../../crypto/index.ts';
import { toHex } from '../../lib/bytes.ts';
import { FRAME_BYTES_MAX, HANDSHAKE_FRAME_BYTES_MAX } from '../../lib/limits.ts';
import type { Ephemeral, Hello, Session } from './secure.ts';
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
} from './secure.ts';
import type { TransportCounters, TransportDropReason } from './types.ts';
import { PeerVersionError } from './types.ts';

export interface ConnectionLimits {
  readonly sendQueueBytesMax: number;
  readonly sendQueueFramesMax: number;
  readonly handshakeTimeoutMs: number;
  /** Idle time (nothing received) before a ping. */
  readonly pingIntervalMs: number;
  /** Time after a ping within which something must arrive. */
  readonly pongTimeoutMs: number;
  readonly inMessagesPerS: number;
  readonly inMessagesBurst: number;
  readonly inBytesPerS: number;
  readonly inBytesBurst: number;
}

/** A token bucket: `tokens` refill at `perS` up to `burst`. */
export class Bucket {
  private tokens: number;
  private atMs: number;

  constructor(
    private readonly perS: number,
    private readonly burst: number,
    nowMs: number,
  ) {
    this.tokens = burst;
    this.atMs = nowMs;
  }

  /** Takes `cost` tokens; false (and nothing taken) if there are not enough. */
  take(cost: number, nowMs: number): boolean {
    const elapsedMs = nowMs - this.atMs;
    if (elapsedMs > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsedMs * this.perS) / 1000);
      this.atMs = nowMs;
    }
    if (this.tokens < cost) return false;
    this.tokens -= cost;
    return true;
  }

  /** Gives back `cost` tokens taken earlier (never past the burst). */
  refund(cost: number): void {
    this.tokens = Math.min(this.burst, this.tokens + cost);
  }

  /** Refilled to its burst by now: forgetting it changes nothing. */
  isFull(nowMs: number): boolean {
    return this.tokens + ((nowMs - this.atMs) * this.perS) / 1000 >= this.burst;
  }

  /** How long until it is full, if nothing is taken meanwhile (0: full now). */
  msUntilFull(nowMs: number): number {
    const tokens = this.tokens + ((nowMs - this.atMs) * this.perS) / 1000;
    return Math.max(0, ((this.burst - tokens) * 1000) / this.perS);
  }
}

export interface ConnectionOwner {
  readonly chainId: string;
  readonly key: KeyPair;
  /** This node's execution version, sent in its hello; a peer's must be the same. */
  readonly executionVersion: number;
  readonly limits: ConnectionLimits;
  readonly counters: TransportCounters;
  /** A monotonic clock for the inbound buckets. */
  nowMs(): number;
  /** Null to accept an authenticated peer, or the reason to refuse it. */
  authorize(connection: Connection, peer: string): TransportDropReason | null;
  /**
   * A peer refused for its versions: at its hello (another wire version;
   * `peer` is the key dialed, or null inbound) or after its auth (another
   * execution version; `peer` is the key it proved). Returns the reason the
   * connection closes with: the version's, or, for a key that would be
   * refused whatever its version (not configured, not the one dialed,
   * banned), that one.
   */
  onVersionRefused(connection: Connection, error: PeerVersionError): TransportDropReason;
  /**
   * The inbound budget of an accepted peer: the same buckets for each of its
   * connections, so that dialing again does not refill them.
   */
  inboundBudget(peer: string): InboundBudget;
  onOpen(connection: Connection): void;
  onMessage(connection: Connection, bytes: Uint8Array): void;
  /** `reason` null: closed by us on purpose (stop), not counted as a drop. */
  onClose(connection: Connection, reason: TransportDropReason | null): void;
}

/** One peer's token buckets: messages and bytes. */
export interface InboundBudget {
  readonly messages: Bucket;
  readonly bytes: Bucket;
}

type State = 'hello' | 'auth' | 'open' | 'closed';

export class Connection {
  readonly outbound: boolean;
  /** For an outbound connection, the peer id it dialed. */
  readonly dialed: string | null;
  /** The authenticated peer id, once open. */
  peer: string | null = null;
  private state: State = 'hello';
  private readonly socket: Socket;
  private readonly owner: ConnectionOwner;
  private readonly ephemeral: Ephemeral = makeEphemeral();
  private readonly hello: Uint8Array;
  /** The peer's hello, once received (its execution version is checked after its auth). */
  private peerHello: Extract<Hello, { kind: 'hello' }> | null = null;
  private session: Session | null = null;
  private readonly decoder = new FrameDecoder(HANDSHAKE_FRAME_BYTES_MAX);
  private readonly queue: Buffer[] = [];
  private queueBytes = 0;
  private blocked = false;
  private handshakeTimer: NodeJS.Timeout | null;
  private idleTimer: NodeJS.Timeout | null = null;
  private pongTimer: NodeJS.Timeout | null = null;
  /** Something arrived since the last idle check. */
  private heard = false;
  private inMessages: Bucket | null = null;
  private inBytes: Bucket | null = null;

  constructor(socket: Socket, outbound: boolean, dialed: string | null, owner: ConnectionOwner) {
    this.socket = socket;
    this.outbound = outbound;
    this.dialed = dialed;
    this.owner = owner;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.onDrain());
    // 'close' follows every 'error'; the error itself tells the peer nothing it can act on.
    socket.on('error', () => {});
    socket.on('close', () => this.close('socketClosed'));
    this.handshakeTimer = setTimeout(
      () => this.close('handshakeFailed'),
      owner.limits.handshakeTimeoutMs,
    );
    this.handshakeTimer.unref();
    this.hello = encodeHello(this.ephemeral, owner.executionVersion);
    this.write(clearFrame(this.hello));
  }

  isOpen(): boolean {
    return this.state === 'open';
  }

  isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Bytes waiting: in our queue and in the socket's buffer. */
  queuedBytes(): number {
    return this.queueBytes + this.socket.writableLength;
  }

  queuedFrames(): number {
    return this.queue.length;
  }

  /** Encrypts and queues one message; false if not open or the queue overflowed (then closed). */
  send(bytes: Uint8Array): boolean {
    if (this.state !== 'open') return false;
    const frame = this.session!.sender.seal(bytes, FRAME_KIND.message);
    const counters = this.owner.counters;
    counters.framesOut++;
    counters.bytesOut += bytes.length;
    return this.write(frame);
  }

  close(reason: TransportDropReason | null): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    this.stopKeepalive();
    this.queue.length = 0;
    this.queueBytes = 0;
    this.socket.destroy();
    this.owner.onClose(this, reason);
  }

  private write(frame: Buffer): boolean {
    if (!this.blocked) {
      this.blocked = !this.socket.write(frame);
      return true;
    }
    this.queue.push(frame);
    this.queueBytes += frame.length;
    const limits = this.owner.limits;
    if (
      this.queuedBytes() > limits.sendQueueBytesMax ||
      this.queue.length > limits.sendQueueFramesMax
    ) {
      this.close('queueFull');
      return false;
    }
    return true;
  }

  private onDrain(): void {
    this.blocked = false;
    while (this.queue.length > 0 && !this.blocked && !this.isClosed()) {
      const frame = this.queue.shift()!;
      this.queueBytes -= frame.length;
      this.blocked = !this.socket.write(frame);
    }
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    this.decoder.push(chunk);
    while (!this.isClosed()) {
      const body = this.decoder.next();
      if (body === null) return;
      if (body === 'oversize') return this.close('oversize');
      if (this.state === 'hello') this.onHello(body);
      else if (this.state === 'auth') this.onAuth(body);
      else this.onFrame(body);
    }
  }

  private onHello(body: Buffer): void {
    const hello = decodeHello(body);
    if (hello === null) return this.close('handshakeFailed');
    if (hello.kind === 'otherWire') {
      // Nothing after the prologue can be read: refused here, by what it says.
      const reason = this.owner.onVersionRefused(
        this,
        new PeerVersionError({
          kind: 'wire',
          peer: this.dialed,
          address: this.remoteAddress(),
          wireVersion: hello.wireVersion,
          executionVersion: hello.executionVersion,
          ourExecutionVersion: this.owner.executionVersion,
        }),
      );
      return this.close(reason);
    }
    const session = deriveSession(this.owner.chainId, this.ephemeral, this.hello, hello.bytes);
    if (session === null) return this.close('handshakeFailed');
    this.peerHello = hello;
    this.session = session;
    this.state = 'auth';
    const auth = encodeAuth(this.owner.key, this.owner.chainId, session.transcript);
    this.write(session.sender.seal(auth));
  }

  private onAuth(body: Buffer): void {
    const session = this.session!;
    const plain = session.receiver.open(body.length, body);
    const peerKey =
      plain === null ? null : checkAuth(plain, this.owner.chainId, session.transcript);
    if (peerKey === null) return this.close('handshakeFailed');
    const peer = toHex(peerKey);
    // The version came in the hello, which the signature just checked covers.
    const theirs = this.peerHello!.executionVersion;
    if (theirs !== this.owner.executionVersion) {
      const reason = this.owner.onVersionRefused(
        this,
        new PeerVersionError({
          kind: 'execution',
          peer,
          address: this.remoteAddress(),
          wireVersion: null,
          executionVersion: theirs,
          ourExecutionVersion: this.owner.executionVersion,
        }),
      );
      return this.close(reason);
    }
    const refusal = this.owner.authorize(this, peer);
    if (refusal !== null) return this.close(refusal);
    this.peer = peer;
    this.state = 'open';
    this.decoder.maxBytes = FRAME_BYTES_MAX;
    clearTimeout(this.handshakeTimer!);
    this.handshakeTimer = null;
    const limits = this.owner.limits;
    const budget = this.owner.inboundBudget(peer);
    this.inMessages = budget.messages;
    this.inBytes = budget.bytes;
    this.idleTimer = setInterval(() => this.onIdleCheck(), limits.pingIntervalMs);
    this.idleTimer.unref();
    this.owner.onOpen(this);
  }

  /** The remote address, as far as the socket knows it. */
  remoteAddress(): string | null {
    return this.socket.remoteAddress ?? null;
  }

  private onFrame(body: Buffer): void {
    // Charged before decryption: a flood costs us no AEAD work past its budget.
    const nowMs = this.owner.nowMs();
    if (!this.inMessages!.take(1, nowMs) || !this.inBytes!.take(body.length, nowMs)) {
      return this.close('rateLimited');
    }
    const plain = this.session!.receiver.open(body.length, body);
    if (plain === null || plain.length === 0) return this.close('badFrame');
    this.heard = true;
    if (this.pongTimer !== null) {
      clearTimeout(this.pongTimer);
      this.pongTimer = null;
    }
    switch (plain[0]) {
      case FRAME_KIND.message: {
        const message = plain.subarray(1);
        const counters = this.owner.counters;
        counters.framesIn++;
        counters.bytesIn += message.length;
        return this.owner.onMessage(this, message);
      }
      case FRAME_KIND.ping:
        if (plain.length !== 1) return this.close('badFrame');
        this.write(this.session!.sender.seal(EMPTY, FRAME_KIND.pong));
        return;
      case FRAME_KIND.pong:
        if (plain.length !== 1) return this.close('badFrame');
        return;
      default:
        return this.close('badFrame');
    }
  }

  /**
   * Every ping interval: if nothing arrived since the last check, send a ping
   * and give the peer the pong timeout to show life (any frame will do).
   */
  private onIdleCheck(): void {
    if (this.heard) {
      this.heard = false;
      return;
    }
    if (this.pongTimer !== null || this.state !== 'open') return;
    this.owner.counters.pings++;
    this.write(this.session!.sender.seal(EMPTY, FRAME_KIND.ping));
    if (this.isClosed()) return;
    this.pongTimer = setTimeout(() => this.close('timeout'), this.owner.limits.pongTimeoutMs);
    this.pongTimer.unref();
  }

  private stopKeepalive(): void {
    if (this.idleTimer !== null) clearInterval(this.idleTimer);
    if (this.pongTimer !== null) clearTimeout(this.pongTimer);
    this.idleTimer = null;
    this.pongTimer = null;
  }
}

const EMPTY = new Uint8Array(0);
