// The node's network port: authenticated, encrypted, framed messages between
// validators (and configured full nodes). The real implementation is TCP
// (tcp.ts, docs/decisions/0003-transport.md); the simulator has its own. Both
// pass test/compliance/transport.ts.
//
// Delivery is best effort: a message to a peer that is not connected, or
// whose connection drops, is lost. The consensus core tolerates that (it
// re-sends through its gossip timer); what the transport guarantees is that a
// delivered message came from the peer it names, unaltered, in the order that
// peer sent it on that connection, and at most once.

import type { PeerId } from '../../consensus/types.ts';
import { ZommaError } from '../../lib/errors.ts';
import { PROTOCOL_VERSION } from './version.ts';

export type { PeerId };

export type PeerState = 'connected' | 'connecting' | 'disconnected';

export interface PeerInfo {
  /** The peer's Ed25519 public key as lowercase hex: the id consensus sees. */
  readonly id: PeerId;
  readonly state: PeerState;
  /** True if this side opened the current connection (meaningful when connected). */
  readonly outbound: boolean;
  /** Bytes and frames waiting to be written to the peer. */
  readonly queuedBytes: number;
  readonly queuedFrames: number;
}

/** Why a frame, a message or a connection was dropped. */
export type TransportDropReason =
  /** Malformed hello, an auth frame that fails decryption or signature, or a handshake timeout. */
  | 'handshakeFailed'
  /** A peer proved a key that is not configured (or is ours, or is not the key dialed). */
  | 'unknownPeer'
  /** Too many connections handshaking at once. */
  | 'tooManyHandshakes'
  /** A frame failed authentication on an open connection. */
  | 'badFrame'
  /** A length prefix above the limit: closed before the body is read. */
  | 'oversize'
  /** A slow peer: its send queue passed its bound. */
  | 'queueFull'
  /** A second connection with one peer, closed by the one-connection rule. */
  | 'duplicate'
  /** A message sent to a peer with no open connection. */
  | 'notConnected'
  /** The socket failed or the peer closed it. */
  | 'socketClosed'
  /** Keepalive: nothing received within the pong timeout after a ping (a dead or stalled peer). */
  | 'timeout'
  /** The peer passed its inbound budget (messages or bytes per second): disconnected and banned. */
  | 'rateLimited'
  /** A connection from (or to) a peer still banned for flooding. */
  | 'banned'
  /** A peer whose hello is of another wire version (the peer protocol's own format): refused at it. */
  | 'wireVersion'
  /** An authenticated peer of another execution version (other rules of execution): refused. */
  | 'executionVersion';

/** Which versions a refused peer runs, and why it was refused (PeerVersionError). */
export interface PeerVersionRefusal {
  /** 'wire': its hello is of another wire version; 'execution': another execution version. */
  readonly kind: 'wire' | 'execution';
  /**
   * The peer's key as hex: the one it proved ('execution'), or the one this
   * node dialed at that address ('wire', outbound); null for an inbound
   * connection refused at its hello, before it proved any.
   */
  readonly peer: PeerId | null;
  readonly address: string | null;
  /** Its wire version, for 'wire' (ours is PROTOCOL_VERSION); null for 'execution' (the same). */
  readonly wireVersion: number | null;
  /** Its execution version; null when its hello carries none (wire version 2 and before). */
  readonly executionVersion: number | null;
  readonly ourExecutionVersion: number;
}

const UPGRADES_HINT = 'see docs/operations.md "Upgrades"';

/**
 * A peer refused for running other versions than this node: another
 * execution version (it would execute blocks otherwise, and the chain would
 * split or halt on an appHash mismatch) or another wire version (it speaks
 * another peer protocol). Mixed builds meet during an upgrade adopted one
 * node at a time, or when a node missed the halt height.
 */
export class PeerVersionError extends ZommaError<'PeerVersionMismatch'> {
  readonly refusal: PeerVersionRefusal;

  constructor(refusal: PeerVersionRefusal) {
    super('PeerVersionMismatch', versionMessage(refusal));
    this.refusal = refusal;
  }
}

function versionMessage(r: PeerVersionRefusal): string {
  const who =
    r.peer !== null
      ? `peer ${r.peer}${r.address === null ? '' : ` (${r.address})`}`
      : `a peer at ${r.address ?? 'an unknown address'}`;
  if (r.kind === 'execution') {
    return `${who} runs execution version ${r.executionVersion}, this node ${r.ourExecutionVersion}: refused; ${UPGRADES_HINT}`;
  }
  const execution =
    r.executionVersion === null
      ? 'which carries no execution version (a build from before versions were exchanged)'
      : `execution version ${r.executionVersion}`;
  return `${who} speaks peer protocol (wire) version ${r.wireVersion}, ${execution}; this node speaks wire version ${PROTOCOL_VERSION}, execution version ${r.ourExecutionVersion}: refused; ${UPGRADES_HINT}`;
}

export interface TransportCounters {
  framesIn: number;
  framesOut: number;
  /** Message bytes (plaintext), in and out. */
  bytesIn: number;
  bytesOut: number;
  /** Connections that completed the handshake. */
  connections: number;
  /** Keepalive pings sent on idle connections. */
  pings: number;
  readonly drops: Record<TransportDropReason, number>;
}

export type MessageHandler = (peer: PeerId, bytes: Uint8Array) => void;

export interface Transport {
  /** This node's id (its public key as hex). */
  readonly self: PeerId;
  /** Starts listening and dialing; resolves once listening. */
  start(): Promise<void>;
  /** Closes every connection and the listener; resolves once closed. No handler runs after. */
  stop(): Promise<void>;
  /**
   * Queues one message (≤ MESSAGE_BYTES_MAX) for a peer. Returns false if it
   * was dropped (not connected, or the queue overflowed and the peer was
   * dropped). The transport owns a copy; the caller may reuse `bytes`.
   */
  send(peer: PeerId, bytes: Uint8Array): boolean;
  /** send() to every connected peer. */
  broadcast(bytes: Uint8Array): void;
  /** Sets the one handler of incoming messages; `bytes` is the handler's to keep. */
  onMessage(handler: MessageHandler): void;
  /** Every configured peer and its connection state. */
  peers(): PeerInfo[];
  /** Counters for metrics (a live object: read, do not write). */
  counters(): TransportCounters;
}

export function emptyCounters(): TransportCounters {
  return {
    framesIn: 0,
    framesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    connections: 0,
    pings: 0,
    drops: {
      handshakeFailed: 0,
      unknownPeer: 0,
      tooManyHandshakes: 0,
      badFrame: 0,
      oversize: 0,
      queueFull: 0,
      duplicate: 0,
      notConnected: 0,
      socketClosed: 0,
      timeout: 0,
      rateLimited: 0,
      banned: 0,
      wireVersion: 0,
      executionVersion: 0,
    },
  };
}
