// The WebSocket client: subscriptions that survive reconnects. It reconnects
// by itself, resubscribes each channel from the last seq it delivered (the
// server replays what was missed or sends a fresh snapshot), drops anything at
// or below that seq (no duplicates), and on a book seq that skips one it asks
// for the channel again (no silent gaps). Book channels also keep the local
// book, so a consumer can read it whole after each event.

import WebSocket from 'ws';
import { WS_PATH } from '../routes.ts';
import type { BookDelta, BookView, LevelView } from '../view.ts';
import type { WsMessage } from '../ws.ts';

export interface ChannelEvent {
  type: 'snapshot' | 'update';
  channel: string;
  seq: number;
  data: unknown;
  /** Book channels: the whole local book after this event. */
  book?: LocalBook;
}

export class LocalBook {
  seq = 0;
  readonly bids = new Map<number, number>();
  readonly asks = new Map<number, number>();

  reset(view: BookView): void {
    this.seq = view.seq;
    this.bids.clear();
    this.asks.clear();
    for (const [p, s] of view.bids) this.bids.set(p, s);
    for (const [p, s] of view.asks) this.asks.set(p, s);
  }

  apply(delta: BookDelta): void {
    this.seq = delta.seq;
    for (const [side, levels] of [
      [this.bids, delta.bids],
      [this.asks, delta.asks],
    ] as const) {
      for (const [p, s] of levels) {
        if (s === 0) side.delete(p);
        else side.set(p, s);
      }
    }
  }

  /** Best first, to a depth. */
  levels(side: 'bids' | 'asks', depth = Infinity): LevelView[] {
    const map = side === 'bids' ? this.bids : this.asks;
    const prices = [...map.keys()].sort((a, b) => (side === 'bids' ? b - a : a - b));
    return prices.slice(0, depth).map((p) => [p, map.get(p)!]);
  }
}

type ChannelState = 'live' | 'unsubscribing' | 'subscribing';

interface Channel {
  name: string;
  handler: (event: ChannelEvent) => void;
  /** The last seq delivered to the handler (−1: none yet). */
  lastSeq: number;
  state: ChannelState;
  book: LocalBook | undefined;
}

export interface SocketOptions {
  /** First reconnect delay; doubles per failed attempt up to reconnectDelayMsMax. Default 250. */
  reconnectDelayMs?: number;
  reconnectDelayMsMax?: number;
  /** Called on every connection state change and server error, for logging. */
  onStatus?: (status: {
    type: 'open' | 'close' | 'error';
    code?: string;
    message?: string;
    channel?: string;
  }) => void;
}

export interface SocketSubscription {
  readonly channel: string;
  unsubscribe(): void;
}

/** `http://host:port` or `ws://host:port` → the node's WebSocket URL. */
export function webSocketUrl(url: string): string {
  const base = url.replace(/\/+$/, '').replace(/^http/, 'ws');
  return base.endsWith(WS_PATH) ? base : base + WS_PATH;
}

export class ZommaSocket {
  readonly url: string;
  private readonly options: SocketOptions;
  private readonly channels = new Map<string, Channel>();
  private socket: WebSocket | undefined;
  private closed = false;
  private delayMs: number;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Times a connection opened (the first, then each reconnect). */
  connects = 0;

  constructor(url: string, options: SocketOptions = {}) {
    this.url = webSocketUrl(url);
    this.options = options;
    this.delayMs = options.reconnectDelayMs ?? 250;
    this.connect();
  }

  /** Follows a channel: book:<instrument>, trades:<instrument>, ticker:<instrument>, account:<address>, blocks. */
  subscribe(channel: string, handler: (event: ChannelEvent) => void): SocketSubscription {
    if (this.channels.has(channel)) throw new Error(`already subscribed to ${channel}`);
    const state: Channel = {
      name: channel,
      handler,
      lastSeq: -1,
      state: 'subscribing',
      book: channel.startsWith('book:') ? new LocalBook() : undefined,
    };
    this.channels.set(channel, state);
    this.sendSubscribe(state);
    return {
      channel,
      unsubscribe: () => {
        if (this.channels.get(channel) !== state) return;
        this.channels.delete(channel);
        this.send({ op: 'unsubscribe', channel });
      },
    };
  }

  /** Stops reconnecting and closes the connection. */
  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.socket?.close(1000);
  }

  private connect(): void {
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.on('open', () => {
      this.connects++;
      this.delayMs = this.options.reconnectDelayMs ?? 250;
      this.options.onStatus?.({ type: 'open' });
      for (const channel of this.channels.values()) {
        channel.state = 'subscribing';
        this.sendSubscribe(channel);
      }
    });
    socket.on('message', (raw) => this.onMessage(raw.toString()));
    socket.on('error', (e) => this.options.onStatus?.({ type: 'error', message: e.message }));
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.options.onStatus?.({ type: 'close' });
      if (this.closed) return;
      const delayMs = this.delayMs;
      this.delayMs = Math.min(2 * delayMs, this.options.reconnectDelayMsMax ?? 10_000);
      this.timer = setTimeout(() => {
        this.timer = undefined;
        if (!this.closed) this.connect();
      }, delayMs);
    });
  }

  private send(request: object): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(request));
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
        if (channel !== undefined && channel.state === 'subscribing') channel.state = 'live';
        return;
      }
      case 'unsubscribed': {
        const channel = this.channels.get(message.channel);
        if (channel !== undefined && channel.state === 'unsubscribing') {
          channel.state = 'subscribing';
          this.sendSubscribe(channel);
        }
        return;
      }
      case 'snapshot':
      case 'update':
        return this.onData(message);
      case 'error':
        this.options.onStatus?.({
          type: 'error',
          code: message.code,
          message: message.message,
          ...(message.channel !== undefined ? { channel: message.channel } : {}),
        });
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
        // A gap: ask for the channel again from what we have; the server replays or sends a snapshot.
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
    channel.handler(event);
  }
}
