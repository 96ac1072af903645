// The TCP transport (docs/decisions/0003-transport.md): listens on the
// configured address only, dials configured peers with exponential backoff
// and jitter, accepts only configured keys, keeps one connection per peer.
//
// Who dials: both sides may, but the side with the higher id waits two
// backoff steps longer, so normally the lower id's dial wins and the higher
// never dials; a peer whose address only the higher side knows (a full node
// behind NAT) is still reached. If two connections with one peer do open,
// both sides keep the same one: the one opened by the lower id, or, when one
// side opened both (it redialed), the newer one.
//
// A peer dropped for flooding (its inbound budget, connection.ts) is banned
// for banMs: its connections are refused after the handshake proves who it
// is, and we do not dial it, so it cannot come straight back for more.
//
// A peer running other versions (another wire version at its hello, another
// execution version after its auth: connection.ts) is refused, counted, and
// logged once per peer and versions, naming both sides' versions. A refusal
// at an inbound hello proves no key: anyone can cause one, from many
// addresses, so those lines are rate-limited (ADDRESS_REFUSAL_LOG_BURST).

import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { KeyPair } from '../../crypto/index.ts';
import { clientKeyOf } from '../../lib/address.ts';
import { assert } from '../../lib/assert.ts';
import { toHex } from '../../lib/bytes.ts';
import { ZommaError } from '../../lib/errors.ts';
import { EXECUTION_VERSION } from '../../exchange/version.ts';
import {
  HANDSHAKES_PENDING_MAX,
  HANDSHAKES_PENDING_PER_IP_MAX,
  HANDSHAKES_PER_IP_BURST,
  HANDSHAKES_PER_IP_PER_S,
  HANDSHAKE_RATE_ADDRESSES_MAX,
  HANDSHAKE_TIMEOUT_MS,
  MESSAGE_BYTES_MAX,
  PEERS_MAX,
  PEER_BAN_MS,
  PEER_IN_BYTES_BURST,
  PEER_IN_BYTES_PER_S,
  PEER_IN_MESSAGES_BURST,
  PEER_IN_MESSAGES_PER_S,
  PEER_PING_INTERVAL_MS,
  PEER_PONG_TIMEOUT_MS,
  PEER_SEND_QUEUE_BYTES_MAX,
  PEER_SEND_QUEUE_FRAMES_MAX,
  RECONNECT_BACKOFF_MS_MAX,
  RECONNECT_BACKOFF_MS_MIN,
} from '../../lib/limits.ts';
import type { Log } from '../log.ts';
import { silentLog } from '../log.ts';
import { Bucket, Connection } from './connection.ts';
import { PROTOCOL_VERSION } from './version.ts';
import type { ConnectionLimits, ConnectionOwner, InboundBudget } from './connection.ts';
import { emptyCounters } from './types.ts';
import type { PeerVersionError, PeerVersionRefusal } from './types.ts';
import type {
  MessageHandler,
  PeerId,
  PeerInfo,
  Transport,
  TransportCounters,
  TransportDropReason,
} from './types.ts';

export interface PeerConfig {
  /** The peer's Ed25519 public key (a validator's, or a configured full node's). */
  readonly publicKey: Uint8Array;
  /** Where to dial it; omit for a peer that only dials us. */
  readonly host?: string;
  readonly port?: number;
}

export interface TransportLimits extends ConnectionLimits {
  readonly backoffMsMin: number;
  readonly backoffMsMax: number;
  /** How long a peer dropped for flooding is refused and not dialed. */
  readonly banMs: number;
}

export interface TcpTransportConfig {
  readonly chainId: string;
  readonly key: KeyPair;
  /** Listen address: an interface address, never a wildcard by default (tests use 127.0.0.1, port 0). */
  readonly host: string;
  readonly port: number;
  readonly peers: readonly PeerConfig[];
  readonly limits?: Partial<TransportLimits>;
  /** Jitter source in [0, 1); defaults to Math.random (tests pass a seeded one). */
  readonly random?: () => number;
  /** A monotonic clock in ms for inbound budgets and bans; defaults to performance.now. */
  readonly nowMs?: () => number;
  /** Where timeouts and bans are reported (the node passes its logger). */
  readonly log?: Log;
  /** The execution version sent in the hello and required of peers; defaults to EXECUTION_VERSION. */
  readonly executionVersion?: number;
}

export class TransportConfigError extends ZommaError<'BadTransportConfig'> {
  constructor(reason: string) {
    super('BadTransportConfig', reason);
  }
}

interface PeerSlot {
  readonly id: PeerId;
  host: string | null;
  port: number | null;
  /** The open connection. */
  connection: Connection | null;
  /** An outbound attempt in progress: a connecting socket or a handshaking connection. */
  pending: Socket | Connection | null;
  attempts: number;
  timer: NodeJS.Timeout | null;
  /** Refused and not dialed until then (0: not banned). */
  bannedUntilMs: number;
  /** The address (clientKeyOf) its last inbound connection proved its key from, if any. */
  provenIp: string | null;
  /**
   * Its inbound buckets, made at its first connection and kept for the next:
   * a peer that dialed again whenever its budget ran low started each
   * connection with a full burst, and was never held to its rate nor banned.
   */
  budget: InboundBudget | null;
  /** Why its last connection was refused for its versions, until one opens. */
  versionRefusal: PeerVersionError | null;
}

/** Inbound connections refused at their hello from addresses no configured key was dialed at. */
const ADDRESS_REFUSALS_MAX = 64;
/**
 * Log lines for refusals at an inbound hello (no key proved, so anyone can
 * send one, from many addresses and with versions that alternate): a burst,
 * then one a minute. The refusals are all counted and listed all the same.
 */
const ADDRESS_REFUSAL_LOG_BURST = 8;
const ADDRESS_REFUSAL_LOG_PER_S = 1 / 60;

const DEFAULT_LIMITS: TransportLimits = {
  sendQueueBytesMax: PEER_SEND_QUEUE_BYTES_MAX,
  sendQueueFramesMax: PEER_SEND_QUEUE_FRAMES_MAX,
  handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
  backoffMsMin: RECONNECT_BACKOFF_MS_MIN,
  backoffMsMax: RECONNECT_BACKOFF_MS_MAX,
  pingIntervalMs: PEER_PING_INTERVAL_MS,
  pongTimeoutMs: PEER_PONG_TIMEOUT_MS,
  inMessagesPerS: PEER_IN_MESSAGES_PER_S,
  inMessagesBurst: PEER_IN_MESSAGES_BURST,
  inBytesPerS: PEER_IN_BYTES_PER_S,
  inBytesBurst: PEER_IN_BYTES_BURST,
  banMs: PEER_BAN_MS,
};

/** Extra backoff steps of the higher id, so the lower id normally dials. */
const HIGHER_ID_BACKOFF_STEPS = 2;

function checkConfig(config: TcpTransportConfig): void {
  if (config.peers.length > PEERS_MAX) {
    throw new TransportConfigError(`${config.peers.length} peers, above the limit of ${PEERS_MAX}`);
  }
  config.peers.forEach((peer, i) => {
    if (!(peer.publicKey instanceof Uint8Array) || peer.publicKey.length !== 32) {
      throw new TransportConfigError(`peers[${i}].publicKey: not a 32-byte key`);
    }
    if ((peer.host === undefined) !== (peer.port === undefined)) {
      throw new TransportConfigError(`peers[${i}]: give both host and port, or neither`);
    }
    if (
      peer.port !== undefined &&
      !(Number.isInteger(peer.port) && peer.port > 0 && peer.port < 65536)
    ) {
      throw new TransportConfigError(`peers[${i}].port: ${peer.port} is not a TCP port`);
    }
  });
}

export class TcpTransport implements Transport {
  readonly self: PeerId;
  readonly chainId: string;
  readonly key: KeyPair;
  readonly executionVersion: number;
  readonly limits: TransportLimits;
  private readonly stats: TransportCounters = emptyCounters();
  private readonly owner: ConnectionOwner;
  private readonly host: string;
  private readonly port: number;
  private readonly random: () => number;
  private readonly nowMs: () => number;
  private readonly log: Log;
  private readonly slots = new Map<PeerId, PeerSlot>();
  /** The latest refusal at a hello of another wire version per inbound address (bounded). */
  private readonly addressRefusals = new Map<string, PeerVersionError>();
  /** Log lines left for refusals at an inbound hello (ADDRESS_REFUSAL_LOG_BURST). */
  private readonly addressRefusalLog: Bucket;
  /** Refusals at an inbound hello not logged for want of lines, since the last one logged. */
  private addressRefusalsUnlogged = 0;
  private readonly live = new Set<Connection>();
  private readonly handshaking = new Set<Connection>();
  /** Inbound handshakes by remote address (HANDSHAKES_PENDING_PER_IP_MAX), and each one's address. */
  private readonly handshakesByIp = new Map<string, number>();
  private readonly handshakeIp = new Map<Connection, string>();
  /** Each remote address's allowance of new handshakes (HANDSHAKES_PER_IP_PER_S). */
  private readonly handshakeRates = new Map<string, Bucket>();
  /**
   * The addresses configured peers last proved their keys from, each with how
   * many peers did (a cluster on one host shares one): at most one per peer.
   */
  private readonly provenIps = new Map<string, number>();
  /** With every remembered address short of its burst, no sweep frees one before then. */
  private sweepAfterMs = -Infinity;
  private handler: MessageHandler = () => {};
  private server: Server | null = null;
  private stopped = false;

  constructor(config: TcpTransportConfig) {
    checkConfig(config);
    this.chainId = config.chainId;
    this.key = config.key;
    this.executionVersion = config.executionVersion ?? EXECUTION_VERSION;
    assert(
      Number.isSafeInteger(this.executionVersion) &&
        this.executionVersion >= 0 &&
        this.executionVersion <= 0xffff_ffff,
      'execution version',
    );
    this.self = toHex(config.key.publicKey);
    this.host = config.host;
    this.port = config.port;
    this.random = config.random ?? Math.random;
    this.nowMs = config.nowMs ?? (() => performance.now());
    this.addressRefusalLog = new Bucket(
      ADDRESS_REFUSAL_LOG_PER_S,
      ADDRESS_REFUSAL_LOG_BURST,
      this.nowMs(),
    );
    this.log = config.log ?? silentLog;
    this.limits = { ...DEFAULT_LIMITS, ...config.limits };
    this.owner = this.makeOwner();
    const l = this.limits;
    assert(l.sendQueueBytesMax >= 0 && l.backoffMsMin >= 1, 'transport limits');
    assert(l.pingIntervalMs >= 1 && l.pongTimeoutMs >= 1 && l.banMs >= 0, 'keepalive limits');
    for (const peer of config.peers) {
      const id = toHex(peer.publicKey);
      if (id === this.self) continue;
      this.slots.set(id, {
        id,
        host: peer.host ?? null,
        port: peer.port ?? null,
        connection: null,
        pending: null,
        attempts: 0,
        timer: null,
        bannedUntilMs: 0,
        provenIp: null,
        budget: null,
        versionRefusal: null,
      });
    }
  }

  counters(): TransportCounters {
    return this.stats;
  }

  /** Connections accepted or dialed whose handshake has not finished. */
  handshakesPending(): number {
    return this.handshaking.size;
  }

  async start(): Promise<void> {
    assert(this.server === null && !this.stopped, 'a transport starts once');
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.host, port: this.port, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // Once listening, the server's errors are failed accepts (EMFILE, ENFILE,
    // a network error pending on the new socket): the server keeps listening,
    // and an 'error' with no listener would end the process.
    server.on('error', (error: NodeJS.ErrnoException) =>
      this.log.warn({ code: error.code ?? null }, 'peer connection not accepted'),
    );
    for (const slot of this.slots.values()) this.scheduleDial(slot, this.self < slot.id);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const slot of this.slots.values()) {
      if (slot.timer !== null) clearTimeout(slot.timer);
      slot.timer = null;
      if (slot.pending !== null && !(slot.pending instanceof Connection)) slot.pending.destroy();
      slot.pending = null;
    }
    for (const connection of [...this.live]) connection.close(null);
    const server = this.server;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The address actually listened on (the port is the kernel's choice when configured as 0). */
  address(): { host: string; port: number } {
    const address = this.server?.address();
    assert(
      address !== null && address !== undefined && typeof address !== 'string',
      'not listening',
    );
    return { host: address.address, port: address.port };
  }

  /** Sets where a configured peer listens (learned after start, as tests with port 0 do). */
  setPeerAddress(peer: PeerId, host: string, port: number): void {
    const slot = this.slots.get(peer);
    assert(slot !== undefined, `unknown peer ${peer}`);
    slot.host = host;
    slot.port = port;
    if (this.server !== null) this.scheduleDial(slot, this.self < slot.id);
  }

  send(peer: PeerId, bytes: Uint8Array): boolean {
    assert(
      bytes.length <= MESSAGE_BYTES_MAX,
      `message of ${bytes.length} bytes is above the limit`,
    );
    const connection = this.slots.get(peer)?.connection ?? null;
    if (connection === null) {
      this.stats.drops.notConnected++;
      return false;
    }
    return connection.send(bytes);
  }

  broadcast(bytes: Uint8Array): void {
    for (const slot of this.slots.values()) if (slot.connection !== null) this.send(slot.id, bytes);
  }

  onMessage(handler: MessageHandler): void {
    this.handler = handler;
  }

  peers(): PeerInfo[] {
    return [...this.slots.values()].map((slot) => ({
      id: slot.id,
      state:
        slot.connection !== null
          ? 'connected'
          : slot.pending !== null || slot.timer !== null
            ? 'connecting'
            : 'disconnected',
      outbound: slot.connection?.outbound ?? false,
      queuedBytes: slot.connection?.queuedBytes() ?? 0,
      queuedFrames: slot.connection?.queuedFrames() ?? 0,
    }));
  }

  /**
   * The peers refused for their versions and not connected since: each
   * configured peer's latest refusal, then inbound addresses refused at a
   * hello of another wire version (the newest few).
   */
  versionRefusals(): PeerVersionRefusal[] {
    const out: PeerVersionRefusal[] = [];
    for (const slot of this.slots.values()) {
      if (slot.versionRefusal !== null) out.push(slot.versionRefusal.refusal);
    }
    for (const error of this.addressRefusals.values()) out.push(error.refusal);
    return out;
  }

  // --- ConnectionOwner (through makeOwner) --------------------------------------

  private onVersionRefused(connection: Connection, error: PeerVersionError): TransportDropReason {
    const { peer, address } = error.refusal;
    const slot = peer === null ? undefined : this.slots.get(peer);
    const reason = error.refusal.kind === 'execution' ? 'executionVersion' : 'wireVersion';
    if (error.refusal.kind === 'execution') {
      // Refused for its key first: anyone can make one, and state any version.
      if (slot === undefined || this.stopped) return 'unknownPeer';
      if (connection.outbound && connection.dialed !== peer) return 'unknownPeer';
      if (this.isBanned(slot)) return 'banned';
    }
    let before: PeerVersionError | undefined;
    if (slot !== undefined) {
      before = slot.versionRefusal ?? undefined;
      slot.versionRefusal = error;
    } else if (peer === null && address !== null) {
      // An inbound hello of another wire version: the key is not known yet.
      const ip = clientKeyOf(address);
      before = this.addressRefusals.get(ip);
      this.addressRefusals.delete(ip);
      if (this.addressRefusals.size >= ADDRESS_REFUSALS_MAX) {
        this.addressRefusals.delete(this.addressRefusals.keys().next().value!);
      }
      this.addressRefusals.set(ip, error);
    } else {
      return reason;
    }
    // Once per peer and versions: a peer redialing every few seconds would fill the log.
    if (before !== undefined && sameVersions(before.refusal, error.refusal)) return reason;
    let unlogged = 0;
    if (slot === undefined) {
      if (!this.addressRefusalLog.take(1, this.nowMs())) {
        this.addressRefusalsUnlogged++;
        return reason;
      }
      unlogged = this.addressRefusalsUnlogged;
      this.addressRefusalsUnlogged = 0;
    }
    this.log.warn(
      {
        code: error.code,
        peer,
        address,
        ...(unlogged > 0 ? { unlogged } : {}),
        peerWireVersion: error.refusal.wireVersion ?? PROTOCOL_VERSION,
        peerExecutionVersion: error.refusal.executionVersion,
        wireVersion: PROTOCOL_VERSION,
        executionVersion: this.executionVersion,
      },
      error.message,
    );
    return reason;
  }

  private authorize(connection: Connection, peer: string): TransportDropReason | null {
    const slot = this.slots.get(peer);
    if (slot === undefined || this.stopped) return 'unknownPeer';
    if (connection.outbound && connection.dialed !== peer) return 'unknownPeer';
    if (this.isBanned(slot)) return 'banned';
    const existing = slot.connection;
    if (existing === null) return null;
    const opener = (c: Connection): string => (c.outbound ? this.self : peer);
    const keepNew =
      opener(existing) === opener(connection) || opener(connection) < opener(existing);
    if (!keepNew) return 'duplicate';
    existing.close('duplicate');
    return null;
  }

  private inboundBudget(peer: PeerId): InboundBudget {
    const slot = this.slots.get(peer)!;
    if (slot.budget === null) {
      const l = this.limits;
      const nowMs = this.nowMs();
      slot.budget = {
        messages: new Bucket(l.inMessagesPerS, l.inMessagesBurst, nowMs),
        bytes: new Bucket(l.inBytesPerS, l.inBytesBurst, nowMs),
      };
    }
    return slot.budget;
  }

  private onOpen(connection: Connection): void {
    const slot = this.slots.get(connection.peer!)!;
    const ip = this.handshakeIp.get(connection);
    if (ip !== undefined) this.noteProven(slot, ip);
    this.handshakeDone(connection, true);
    slot.connection = connection;
    slot.versionRefusal = null;
    // What was refused at its hello from that address runs our versions now.
    this.addressRefusals.delete(ip ?? clientKeyOf(connection.remoteAddress() ?? ''));
    if (slot.pending === connection) slot.pending = null;
    // A redial still waiting (the peer came back by dialing us) would fire
    // later, even if this connection has been dropped and the peer banned.
    if (slot.timer !== null) clearTimeout(slot.timer);
    slot.timer = null;
    slot.attempts = 0;
    this.stats.connections++;
  }

  private deliver(connection: Connection, bytes: Uint8Array): void {
    if (!this.stopped) this.handler(connection.peer!, bytes);
  }

  private onClose(connection: Connection, reason: TransportDropReason | null): void {
    if (reason !== null) this.stats.drops[reason]++;
    this.live.delete(connection);
    this.handshakeDone(connection);
    const id = connection.peer ?? connection.dialed;
    const slot = id === null ? undefined : this.slots.get(id);
    if (slot === undefined) return;
    if (reason === 'rateLimited') {
      slot.bannedUntilMs = this.nowMs() + this.limits.banMs;
      this.log.warn(
        { peer: slot.id, banMs: this.limits.banMs },
        'peer dropped: past its inbound budget (messages or bytes per second); banned',
      );
    } else if (reason === 'timeout') {
      this.log.warn(
        { peer: slot.id, pongTimeoutMs: this.limits.pongTimeoutMs },
        'peer dropped: no answer to a keepalive ping; reconnecting',
      );
    }
    if (slot.connection === connection) slot.connection = null;
    if (slot.pending === connection) slot.pending = null;
    this.scheduleDial(slot, false);
  }

  // --- connecting -------------------------------------------------------------

  private accept(socket: Socket): void {
    if (this.stopped) return void socket.destroy();
    // One address cannot hold every handshake slot: peers dialing in from
    // their own hosts still find room while it waits out its timeouts.
    const ip = clientKeyOf(socket.remoteAddress ?? '');
    const fromIp = this.handshakesByIp.get(ip) ?? 0;
    if (
      this.handshaking.size >= HANDSHAKES_PENDING_MAX ||
      fromIp >= HANDSHAKES_PENDING_PER_IP_MAX ||
      !this.takeHandshake(ip)
    ) {
      this.stats.drops.tooManyHandshakes++;
      return void socket.destroy();
    }
    const connection = new Connection(socket, false, null, this.owner);
    this.live.add(connection);
    this.handshaking.add(connection);
    this.handshakesByIp.set(ip, fromIp + 1);
    this.handshakeIp.set(connection, ip);
  }

  /** A peer proved its key on a connection from `ip`: the address it now comes from. */
  private noteProven(slot: PeerSlot, ip: string): void {
    if (slot.provenIp === ip) return;
    if (slot.provenIp !== null) {
      const left = this.provenIps.get(slot.provenIp)! - 1;
      if (left === 0) this.provenIps.delete(slot.provenIp);
      else this.provenIps.set(slot.provenIp, left);
    }
    slot.provenIp = ip;
    this.provenIps.set(ip, (this.provenIps.get(ip) ?? 0) + 1);
  }

  /** Takes one of the address's handshakes; false if it has used up its rate. */
  private takeHandshake(ip: string): boolean {
    const nowMs = this.nowMs();
    let bucket = this.handshakeRates.get(ip);
    if (bucket === undefined) {
      // An address a configured peer proved its key from is never refused a
      // bucket: a flood that keeps every remembered address short of its
      // burst would otherwise shut the validators out once their own (full)
      // buckets were forgotten. There is one such address per peer at most.
      if (!this.provenIps.has(ip) && !this.makeRoom(nowMs)) return false;
      bucket = new Bucket(HANDSHAKES_PER_IP_PER_S, HANDSHAKES_PER_IP_BURST, nowMs);
      this.handshakeRates.set(ip, bucket);
    }
    return bucket.take(1, nowMs);
  }

  /**
   * Whether a new address may be remembered: past HANDSHAKE_RATE_ADDRESSES_MAX,
   * those with a full allowance are forgotten. One pass, then none until a
   * bucket can have refilled: a flood of newcomers must not cost a pass over
   * the map each.
   */
  private makeRoom(nowMs: number): boolean {
    if (this.handshakeRates.size < HANDSHAKE_RATE_ADDRESSES_MAX) return true;
    if (nowMs < this.sweepAfterMs) return false;
    let soonestMs = Infinity;
    for (const [known, b] of this.handshakeRates) {
      if (b.isFull(nowMs)) this.handshakeRates.delete(known);
      else soonestMs = Math.min(soonestMs, b.msUntilFull(nowMs));
    }
    if (this.handshakeRates.size < HANDSHAKE_RATE_ADDRESSES_MAX) return true;
    // Every remembered address is still paying for a burst: the newcomer waits its turn.
    this.sweepAfterMs = nowMs + soonestMs;
    return false;
  }

  /**
   * A handshake ended. One that proved a known peer's key gives its address
   * the attempt back: the rate is for failed attempts, and a cluster on one
   * host (all of it dialing from 127.0.0.1) reconnects as often as it needs.
   */
  private handshakeDone(connection: Connection, opened = false): void {
    this.handshaking.delete(connection);
    const ip = this.handshakeIp.get(connection);
    if (ip === undefined) return;
    if (opened) this.handshakeRates.get(ip)?.refund(1);
    this.handshakeIp.delete(connection);
    const left = this.handshakesByIp.get(ip)! - 1;
    if (left === 0) this.handshakesByIp.delete(ip);
    else this.handshakesByIp.set(ip, left);
  }

  /** Dials `slot` now, or after its backoff, unless it is connected, being dialed, or has no address. */
  private scheduleDial(slot: PeerSlot, now: boolean): void {
    if (this.stopped || slot.host === null || slot.port === null) return;
    if (slot.connection !== null || slot.pending !== null || slot.timer !== null) return;
    const banMs = this.isBanned(slot) ? slot.bannedUntilMs - this.nowMs() : 0;
    if (now && banMs <= 0) return this.dial(slot);
    const steps = slot.attempts + (this.self > slot.id ? HIGHER_ID_BACKOFF_STEPS : 0);
    const capped = Math.min(
      this.limits.backoffMsMax,
      this.limits.backoffMsMin * 2 ** Math.min(steps, 30),
    );
    // Full jitter over the upper half: peers that lost each other at once do not redial in step.
    const delayMs = Math.max(
      Math.ceil(capped / 2 + (this.random() * capped) / 2),
      Math.ceil(banMs),
    );
    slot.timer = setTimeout(() => {
      slot.timer = null;
      this.dial(slot);
    }, delayMs);
    slot.timer.unref();
  }

  private isBanned(slot: PeerSlot): boolean {
    return slot.bannedUntilMs > this.nowMs();
  }

  private dial(slot: PeerSlot): void {
    if (this.stopped || slot.connection !== null || slot.pending !== null) return;
    slot.attempts++;
    const socket = connect({ host: slot.host!, port: slot.port! });
    slot.pending = socket;
    const failed = (): void => {
      if (slot.pending !== socket) return;
      slot.pending = null;
      this.scheduleDial(slot, false);
    };
    socket.once('error', failed);
    socket.once('close', failed);
    // SYNs nobody answers (a host powered off, a dropping firewall) would hold
    // the dial for the kernel's connect timeout, minutes past the backoff cap.
    socket.setTimeout(this.limits.handshakeTimeoutMs, () => socket.destroy());
    socket.once('connect', () => {
      socket.setTimeout(0);
      socket.off('error', failed);
      socket.off('close', failed);
      if (this.stopped || slot.pending !== socket) return void socket.destroy();
      const connection = new Connection(socket, true, slot.id, this.owner);
      slot.pending = connection;
      this.live.add(connection);
    });
  }

  private makeOwner(): ConnectionOwner {
    return {
      chainId: this.chainId,
      key: this.key,
      executionVersion: this.executionVersion,
      limits: this.limits,
      counters: this.stats,
      nowMs: () => this.nowMs(),
      authorize: (c, peer) => this.authorize(c, peer),
      onVersionRefused: (c, error) => this.onVersionRefused(c, error),
      inboundBudget: (peer) => this.inboundBudget(peer),
      onOpen: (c) => this.onOpen(c),
      onMessage: (c, bytes) => this.deliver(c, bytes),
      onClose: (c, reason) => this.onClose(c, reason),
    };
  }
}

function sameVersions(a: PeerVersionRefusal, b: PeerVersionRefusal): boolean {
  return (
    a.kind === b.kind &&
    a.wireVersion === b.wireVersion &&
    a.executionVersion === b.executionVersion
  );
}
