// The dashboard's data: REST reads and one WebSocket with resumable
// subscriptions (docs/api.md). Same origin as the page: the node serves both.
// The socket mirrors the SDK's ZommaSocket (src/api/client/socket.ts), over
// the browser's WebSocket instead of the ws package.

import type { BookDelta, BookView, LevelView } from '../api/view.ts';
import type { WsMessage } from '../api/ws.ts';

export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** GET a JSON resource of the node's API; a non-2xx answer throws HttpError with the API's code. */
export async function getJson<T>(path: string): Promise<T> {
  const response = await fetch(path, { headers: { accept: 'application/json' } });
  const body = (await response.json().catch(() => undefined)) as
    { code?: string; message?: string } | undefined;
  if (!response.ok) {
    throw new HttpError(
      response.status,
      body?.code ?? 'HttpError',
      body?.message ?? `HTTP ${response.status}`,
    );
  }
  return body as T;
}

/** A book kept from a snapshot and its deltas. */
export class LocalBook {
  seq = 0;
  readonly bids = new Map<number, number>();
  readonly asks = new Map<number, number>();

  reset(view: BookView): void {
    this.seq = view.seq;
    this.bids.clear();
    this.asks.clear();
    for (const [p, q] of view.bids) this.bids.set(p, q);
    for (const [p, q] of view.asks) this.asks.set(p, q);
  }

  apply(delta: BookDelta): void {
    this.seq = delta.seq;
    for (const [side, levels] of [
      [this.bids, delta.bids],
      [this.asks, delta.asks],
    ] as const) {
      for (const [p, q] of levels) {
        if (q === 0) side.delete(p);
        else side.set(p, q);
      }
    }
  }

  /** Best first, to a depth. */
  levels(side: 'bids' | 'asks', depth: number): LevelView[] {
    const map = side === 'bids' ? this.bids : this.asks;
    const prices = [...map.keys()].sort((a, b) => (side === 'bids' ? b - a : a - b));
    return prices.slice(0, depth).map((p) => [p, map.get(p)!]);
  }
}

export interface ChannelEvent {
  type: 'snapshot' | 'update';
  channel: string;
  seq: number;
  data: unknown;
  book?: LocalBook;
}

interface Channel {
  name: string;
  handlers: Set<(event: ChannelEvent) => void>;
  lastSeq: number;
  last: ChannelEvent | undefined;
  state: 'subscribing' | 'live' | 'unsubscribing';
  book: LocalBook | undefined;
}

export type SocketState = 'connecting' | 'open' | 'closed';

const RECONNECT_DELAY_MS = 500;
const RECONNECT_DELAY_MS_MAX = 8_000;
/** Half the server's per-connection allowance (WS_MESSAGES_PER_S, WS_BURST_MESSAGES in src/lib/limits.ts). */
const MESSAGES_PER_S = 10;
const BURST_MESSAGES = 20;
/** Requests waiting to be sent; more means a runaway view, and the connection starts over. */
const SEND_QUEUE_MAX = 512;

export class LiveSocket {
  private readonly url: string;
  private readonly channels = new Map<string, Channel>();
  private socket: WebSocket | undefined;
  private delayMs = RECONNECT_DELAY_MS;
  private closed = false;
  private readonly queue: string[] = [];
  private tokens = BURST_MESSAGES;
  private refilledMs = Date.now();
  private draining = false;
  private readonly onState: (state: SocketState, error?: string) => void;

  constructor(url: string, onState: (state: SocketState, error?: string) => void) {
    this.url = url;
    this.onState = onState;
    this.connect();
  }

  /**
   * Follows a channel until the returned function is called. Several handlers
   * may follow one channel (one subscription on the wire); a late one is first
   * handed the channel's last event.
   */
  subscribe(name: string, handler: (event: ChannelEvent) => void): () => void {
    let channel = this.channels.get(name);
    if (channel === undefined) {
      channel = {
        name,
        handlers: new Set(),
        lastSeq: -1,
        last: undefined,
        state: 'subscribing',
        book: name.startsWith('book:') ? new LocalBook() : undefined,
      };
      this.channels.set(name, channel);
      this.sendSubscribe(channel);
    } else if (channel.last !== undefined) {
      handler({ ...channel.last, type: 'snapshot' });
    }
    channel.handlers.add(handler);
    const followed = channel;
    return () => {
      followed.handlers.delete(handler);
      if (followed.handlers.size > 0 || this.channels.get(name) !== followed) return;
      this.channels.delete(name);
      this.send({ op: 'unsubscribe', channel: name });
    };
  }

  close(): void {
    this.closed = true;
    this.socket?.close(1000);
  }

  private connect(): void {
    this.onState('connecting');
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.addEventListener('open', () => {
      this.delayMs = RECONNECT_DELAY_MS;
      this.queue.length = 0;
      this.onState('open');
      for (const channel of this.channels.values()) {
        channel.state = 'subscribing';
        this.sendSubscribe(channel);
      }
    });
    socket.addEventListener('message', (event) => this.onMessage(String(event.data)));
    socket.addEventListener('close', () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.onState('closed');
      if (this.closed) return;
      const delayMs = this.delayMs;
      this.delayMs = Math.min(2 * delayMs, RECONNECT_DELAY_MS_MAX);
      setTimeout(() => {
        if (!this.closed) this.connect();
      }, delayMs);
    });
  }

  /**
   * Sends at most MESSAGES_PER_S (with a burst), queueing the rest: the server
   * answers a faster client with RateLimited and drops the request, which
   * would lose a subscription when a view with many channels opens.
   */
  private send(request: object): void {
    if (this.socket?.readyState !== WebSocket.OPEN) return;
    if (this.queue.length >= SEND_QUEUE_MAX) return this.socket.close(4000, 'send queue full');
    this.queue.push(JSON.stringify(request));
    this.drain();
  }

  private drain(): void {
    const nowMs = Date.now();
    this.tokens = Math.min(
      BURST_MESSAGES,
      this.tokens + ((nowMs - this.refilledMs) * MESSAGES_PER_S) / 1_000,
    );
    this.refilledMs = nowMs;
    while (this.queue.length > 0 && this.tokens >= 1) {
      const socket = this.socket;
      if (socket?.readyState !== WebSocket.OPEN) {
        this.queue.length = 0;
        return;
      }
      socket.send(this.queue.shift()!);
      this.tokens -= 1;
    }
    if (this.queue.length > 0 && !this.draining) {
      this.draining = true;
      setTimeout(
        () => {
          this.draining = false;
          this.drain();
        },
        Math.ceil(1_000 / MESSAGES_PER_S),
      );
    }
  }

  private sendSubscribe(channel: Channel): void {
    this.send({
      op: 'subscribe',
      channel: channel.name,
      ...(channel.lastSeq >= 0 ? { fromSeq: channel.lastSeq } : {}),
    });
  }

  private onMessage(text: string): void {
    let message: WsMessage;
    try {
      message = JSON.parse(text) as WsMessage;
    } catch {
      return;
    }
    switch (message.type) {
      case 'subscribed': {
        const channel = this.channels.get(message.channel);
        if (channel?.state === 'subscribing') channel.state = 'live';
        return;
      }
      case 'unsubscribed': {
        const channel = this.channels.get(message.channel);
        if (channel?.state === 'unsubscribing') {
          channel.state = 'subscribing';
          this.sendSubscribe(channel);
        }
        return;
      }
      case 'snapshot':
      case 'update':
        return this.onData(message);
      case 'error':
        this.onState('open', `${message.code}: ${message.message}`);
        return;
      case 'pong':
        return;
    }
  }

  private onData(message: Extract<WsMessage, { type: 'snapshot' | 'update' }>): void {
    const channel = this.channels.get(message.channel);
    if (channel === undefined || channel.state !== 'live') return;
    const { seq } = message;
    if (message.type === 'update' && seq <= channel.lastSeq) return;
    if (channel.book !== undefined) {
      if (message.type === 'snapshot') {
        channel.book.reset(message.data as BookView);
      } else if (seq !== channel.lastSeq + 1) {
        // A gap: ask again from what we hold; the server replays or sends a snapshot.
        channel.state = 'unsubscribing';
        this.send({ op: 'unsubscribe', channel: channel.name });
        return;
      } else {
        channel.book.apply(message.data as BookDelta);
      }
    } else if (message.type === 'snapshot' && seq < channel.lastSeq) {
      return;
    }
    channel.lastSeq = seq;
    const event: ChannelEvent = {
      type: message.type,
      channel: channel.name,
      seq,
      data: message.data,
    };
    if (channel.book !== undefined) event.book = channel.book;
    channel.last = event;
    for (const handler of channel.handlers) handler(event);
  }
}
