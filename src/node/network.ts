// What the node needs from the peer network: opaque frames to one peer or to
// all, and frames in. The TCP transport (src/node/transport) provides it over
// encrypted connections; MemoryHub below provides it inside one process for
// tests of the node loop. Both deliver asynchronously, never re-entrantly.

import type { PeerId } from '../consensus/index.ts';

export type FrameHandler = (peer: PeerId, bytes: Uint8Array) => void;

export interface PeerNetwork {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Best effort: a frame to an unknown or disconnected peer is dropped. */
  send(peer: PeerId, bytes: Uint8Array): void;
  broadcast(bytes: Uint8Array): void;
  onMessage(handler: FrameHandler): void;
  /** Peers connected now. */
  peerCount(): number;
  /**
   * Why peers are refused for their versions (PeerVersionError messages),
   * each peer's latest, while it is not connected: read by state sync to say
   * why no peer answers. Absent over an in-process network.
   */
  versionRefusals?(): string[];
}

/** An in-process network: every member reaches every other unless cut off. */
export class MemoryHub {
  private readonly members = new Map<PeerId, MemoryNetwork>();
  /** Members cut off from everyone (a crashed process, a partition). */
  readonly isolated = new Set<PeerId>();
  /** Frames delivered only where this says true (a test's lossy link); null: all. */
  filter: ((from: PeerId, to: PeerId, bytes: Uint8Array) => boolean) | null = null;

  join(id: PeerId): MemoryNetwork {
    const net = new MemoryNetwork(this, id);
    this.members.set(id, net);
    return net;
  }

  leave(id: PeerId): void {
    this.members.delete(id);
  }

  /** @internal */
  deliver(from: PeerId, to: PeerId, bytes: Uint8Array): void {
    if (this.isolated.has(from) || this.isolated.has(to)) return;
    const target = this.members.get(to);
    if (target === undefined) return;
    const copy = bytes.slice();
    setImmediate(() => {
      if (this.isolated.has(from) || this.isolated.has(to)) return;
      if (this.filter !== null && !this.filter(from, to, copy)) return;
      target.receive(from, copy);
    });
  }

  /** @internal */
  others(id: PeerId): PeerId[] {
    return [...this.members.keys()].filter((m) => m !== id);
  }
}

export class MemoryNetwork implements PeerNetwork {
  private handler: FrameHandler | null = null;
  private running = false;

  constructor(
    private readonly hub: MemoryHub,
    readonly id: PeerId,
  ) {}

  async start(): Promise<void> {
    this.running = true;
  }

  async stop(): Promise<void> {
    this.running = false;
    this.hub.leave(this.id);
  }

  send(peer: PeerId, bytes: Uint8Array): void {
    if (this.running) this.hub.deliver(this.id, peer, bytes);
  }

  broadcast(bytes: Uint8Array): void {
    if (!this.running) return;
    for (const peer of this.hub.others(this.id)) this.hub.deliver(this.id, peer, bytes);
  }

  onMessage(handler: FrameHandler): void {
    this.handler = handler;
  }

  peerCount(): number {
    return this.hub.others(this.id).filter((p) => !this.hub.isolated.has(p)).length;
  }

  /** @internal */
  receive(from: PeerId, bytes: Uint8Array): void {
    if (this.running) this.handler?.(from, bytes);
  }
}
