// The WebSocket client: subscriptions that survive reconnects (channels.ts
// keeps them: resubscribe from the last seq delivered, no duplicates, no
// silent gaps), over the ws package.

import WebSocket from 'ws';
import { WS_PATH } from '../routes.ts';
import { Channels } from './channels.ts';
import type { Channel, ChannelEvent } from './channels.ts';

export { LocalBook } from './channels.ts';
export type { ChannelEvent } from './channels.ts';

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
  private readonly channels: Channels;
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
    this.channels = new Channels(
      (request) => {
        if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(request));
      },
      (error) => this.options.onStatus?.({ type: 'error', ...error }),
    );
    this.connect();
  }

  /** Follows a channel: book:<instrument>, trades:<instrument>, ticker:<instrument>, account:<address>, blocks. */
  subscribe(channel: string, handler: (event: ChannelEvent) => void): SocketSubscription {
    if (this.channels.get(channel) !== undefined)
      throw new Error(`already subscribed to ${channel}`);
    const followed: Channel = this.channels.open(channel, handler);
    return { channel, unsubscribe: () => this.channels.close(followed) };
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
      this.channels.resubscribeAll();
    });
    socket.on('message', (raw) => this.channels.receive(raw.toString()));
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
}
