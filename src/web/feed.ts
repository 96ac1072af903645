// The dashboard's data: REST reads and one WebSocket with resumable
// subscriptions (docs/api.md). Same origin as the page: the node serves both.
// The socket keeps its channels as the SDK's ZommaSocket does
// (src/api/client/channels.ts), over the browser's WebSocket instead of the
// ws package, with several followers per channel and a paced send queue.

import { Channels } from '../api/client/channels.ts';
import type { Channel, RawChannelEvent } from '../api/client/channels.ts';

export { LocalBook } from '../api/client/channels.ts';
export type { RawChannelEvent } from '../api/client/channels.ts';

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
  private readonly channels: Channels;
  /** The followers of each channel (one subscription on the wire per channel). */
  private readonly followers = new Map<Channel, Set<(event: RawChannelEvent) => void>>();
  private socket: WebSocket | undefined;
  private delayMs = RECONNECT_DELAY_MS;
  private closed = false;
  private readonly queue: { op?: string; channel?: string }[] = [];
  private tokens = BURST_MESSAGES;
  private refilledMs = Date.now();
  private draining = false;
  private retrying = false;
  private readonly onState: (state: SocketState, error?: string) => void;

  constructor(url: string, onState: (state: SocketState, error?: string) => void) {
    this.url = url;
    this.onState = onState;
    this.channels = new Channels(
      (request) => this.send(request),
      (error) => this.onState('open', `${error.code}: ${error.message}`),
      {
        // A view keeps following its channel through a halt: a reconnect asks again.
        endRefused: false,
        onRateLimited: (retryAfterMs) => this.retryAfter(retryAfterMs),
      },
    );
    this.connect();
  }

  /**
   * Follows a channel until the returned function is called. Several handlers
   * may follow one channel (one subscription on the wire); a late one is first
   * handed the channel's last event.
   */
  subscribe(name: string, handler: (event: RawChannelEvent) => void): () => void {
    let channel = this.channels.get(name);
    if (channel === undefined) {
      const handlers = new Set<(event: RawChannelEvent) => void>();
      channel = this.channels.open(name, (event) => {
        for (const h of handlers) h(event);
      });
      this.followers.set(channel, handlers);
    } else if (channel.last !== undefined) {
      handler({ ...channel.last, type: 'snapshot' });
    }
    const followed = channel;
    const handlers = this.followers.get(followed)!;
    handlers.add(handler);
    return () => {
      handlers.delete(handler);
      if (handlers.size > 0) return;
      this.followers.delete(followed);
      this.channels.close(followed);
    };
  }

  close(): void {
    this.closed = true;
    this.socket?.close(1000);
  }

  /** After RateLimited (tabs share their address's allowance): ask again for what still waits. */
  private retryAfter(retryAfterMs: number | undefined): void {
    if (this.retrying) return;
    this.retrying = true;
    const delayMs = Math.min(retryAfterMs ?? 1_000, RECONNECT_DELAY_MS_MAX);
    setTimeout(() => {
      this.retrying = false;
      if (this.closed || this.socket?.readyState !== WebSocket.OPEN) return;
      this.channels.retrySubscribing((name) => this.queue.some((q) => q.channel === name));
    }, delayMs);
  }

  private connect(): void {
    this.onState('connecting');
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.addEventListener('open', () => {
      this.delayMs = RECONNECT_DELAY_MS;
      this.queue.length = 0;
      this.onState('open');
      this.channels.resubscribeAll();
    });
    socket.addEventListener('message', (event) => this.channels.receive(String(event.data)));
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
    const r = request as { op?: string; channel?: string };
    // A view that closes leaves its channels: a subscribe still waiting here need not go
    // out, nor its unsubscribe, so the next view's subscriptions are not paced behind both.
    if (r.op === 'unsubscribe') {
      const at = this.queue.findIndex((q) => q.op === 'subscribe' && q.channel === r.channel);
      if (at >= 0) {
        this.queue.splice(at, 1);
        return;
      }
    }
    if (this.queue.length >= SEND_QUEUE_MAX) return this.socket.close(4000, 'send queue full');
    this.queue.push(r);
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
      socket.send(JSON.stringify(this.queue.shift()!));
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
}
