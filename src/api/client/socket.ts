// The WebSocket client: subscriptions that survive reconnects (channels.ts
// keeps them: resubscribe from the last seq delivered, no duplicates, no
// silent gaps), over the ws package.

import WebSocket from 'ws';
import { sha256 } from '../../crypto/index.ts';
import { toHex } from '../../lib/bytes.ts';
import { WS_BURST_MESSAGES, WS_CHANNEL_CHARS_MAX, WS_MESSAGES_PER_S } from '../../lib/limits.ts';
import { statusOfCode } from '../errors.ts';
import { WS_PATH } from '../routes.ts';
import type { ChannelKindOf, ChannelName, WsSubmitRequest } from '../routes.ts';
import type { TxView } from '../view.ts';
import type { WsMessage } from '../ws.ts';
import { Channels } from './channels.ts';
import type { Channel, ChannelEvent, RawChannelEvent } from './channels.ts';
import { ZommaApiError } from './http.ts';

export { LocalBook } from './channels.ts';
export type {
  ChannelEnded,
  ChannelEvent,
  ChannelSnapshot,
  ChannelUpdate,
  RawChannelEvent,
} from './channels.ts';

export interface SocketOptions {
  /** First reconnect delay; doubles per failed attempt up to reconnectDelayMsMax. Default 250. */
  reconnectDelayMs?: number;
  reconnectDelayMsMax?: number;
  /**
   * A ping every this many ms; a connection that has not answered the last
   * one by the next is dropped (and reconnected): a peer gone without closing
   * (a dead host, a cut link) otherwise looks connected for minutes, with its
   * submissions unanswered. Default 15,000; 0: none.
   */
  heartbeatMs?: number;
  /**
   * Subscribe and unsubscribe requests go out at most this many a second, after
   * a burst of burstMessages, the rest waiting their turn: the server answers a
   * faster connection with RateLimited and drops the request, which would leave
   * a channel silent (a reconnect resubscribes every channel at once). Default
   * half the server's allowance (WS_MESSAGES_PER_S, WS_BURST_MESSAGES).
   */
  messagesPerS?: number;
  burstMessages?: number;
  /**
   * Called on every connection state change and server error, for logging. A
   * refused connection reports the server's code (RateLimited,
   * TooManyConnections, …) and, when it gave one, its Retry-After: the next
   * attempt waits at least that long.
   */
  onStatus?: (status: {
    type: 'open' | 'close' | 'error';
    code?: string;
    message?: string;
    channel?: string;
    retryAfterMs?: number;
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

interface PendingSubmit {
  readonly hash: string;
  readonly resolve: (tx: TxView) => void;
  readonly reject: (error: ZommaApiError) => void;
}

export class ZommaSocket {
  readonly url: string;
  private readonly options: SocketOptions;
  private readonly channels: Channels;
  private socket: WebSocket | undefined;
  /** Submissions sent on the current connection, by their id, awaiting an answer. */
  private readonly pending = new Map<string, PendingSubmit>();
  /** Submissions waiting for the connection to open. */
  private readonly queued: { request: WsSubmitRequest; pending: PendingSubmit }[] = [];
  private lastId = 0;
  private closed = false;
  private delayMs: number;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Subscription requests waiting for a token of the connection's pace. */
  private readonly outbox: object[] = [];
  private readonly messagesPerS: number;
  private readonly burstMessages: number;
  private tokens = 0;
  private refilledMs = 0;
  private drainTimer: ReturnType<typeof setTimeout> | undefined;
  /** Re-asks for the subscriptions a RateLimited answer may have refused. */
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Times a connection opened (the first, then each reconnect). */
  connects = 0;

  constructor(url: string, options: SocketOptions = {}) {
    this.url = webSocketUrl(url);
    this.options = options;
    this.delayMs = options.reconnectDelayMs ?? 250;
    this.messagesPerS = options.messagesPerS ?? WS_MESSAGES_PER_S / 2;
    this.burstMessages = options.burstMessages ?? WS_BURST_MESSAGES / 2;
    this.channels = new Channels(
      (request) => {
        if (this.socket?.readyState !== WebSocket.OPEN) return;
        this.outbox.push(request);
        this.drain();
      },
      (error) => this.options.onStatus?.({ type: 'error', ...error }),
      { onRateLimited: (retryAfterMs) => this.retrySubscribingAfter(retryAfterMs) },
    );
    this.connect();
  }

  /**
   * Follows a channel: book:<instrument>, trades:<instrument>,
   * ticker:<instrument>, account:<address> (its events name the address in
   * lower case, however it was written), blocks. A channel the server refuses
   * (an unknown instrument, too many subscriptions) is reported to `onStatus`
   * with its name and ends; it may be subscribed again. A market's channel
   * whose market settles ends with an `ended` event to `handler` (its data a
   * MarketEndView) and is not asked for again. `handler` gets the channel's
   * events typed by its kind: the handler of `subscribe('account:0x…', …)`
   * reads an update's `e.data.subaccounts` without a cast.
   */
  subscribe<N extends ChannelName>(
    channel: N,
    handler: (event: ChannelEvent<ChannelKindOf<N>>) => void,
  ): SocketSubscription;
  /**
   * A channel whose name is known only when the code runs (a `string`): its
   * handler gets an event of any channel. A name written out that names no
   * channel (`trade:…`, `block`) is refused at compile time.
   */
  subscribe<N extends string>(
    channel: string extends N ? N : ChannelName,
    handler: (event: ChannelEvent) => void,
  ): SocketSubscription;
  subscribe(channel: string, handler: (event: never) => void): SocketSubscription {
    // The server keys an account's channel by its address in lower case: two
    // spellings would be one subscription there and two here.
    const name = channel.startsWith('account:') ? channel.toLowerCase() : channel;
    // The server takes no longer name, and names a longer one back cut short.
    if (name.length > WS_CHANNEL_CHARS_MAX) {
      throw new Error(`a channel name is at most ${WS_CHANNEL_CHARS_MAX} characters`);
    }
    if (this.channels.get(name) !== undefined) throw new Error(`already subscribed to ${name}`);
    // The server's messages of a channel follow its schemas (routes.ts,
    // channelSchemas), as the API contract test checks: its events are of its type.
    const deliver = handler as (event: RawChannelEvent) => void;
    const followed: Channel = this.channels.open(name, deliver);
    return {
      channel: name,
      unsubscribe: () => {
        // A request for it still waiting to be sent would reach the server after the unsubscribe.
        this.dropQueued(name);
        this.channels.close(followed);
      },
    };
  }

  /**
   * Sends canonical transaction bytes over the socket (the `submit` op), with
   * the answers of HttpClient.submitTx: the pending or final transaction, or
   * a ZommaApiError with the same code and status. Sent at once when the
   * connection is open, else when the connection being made opens. If the
   * connection drops before the answer, rejects with `Disconnected`: the
   * transaction may have been taken, so look it up by its hash (error.hash)
   * before sending it again (a resend of the same bytes is refused, as a
   * DuplicateTx while the node remembers them, else for their used nonce:
   * never executed twice). If it drops or fails before the
   * transaction was sent, rejects with `NotSent`: nothing is resent later.
   */
  submitTx(
    bytes: Uint8Array,
    options: { wait?: 'none' | 'commit'; timeoutMs?: number } = {},
  ): Promise<TxView> {
    const request: WsSubmitRequest = {
      op: 'submit',
      id: String(++this.lastId),
      tx: toHex(bytes),
      ...(options.wait !== undefined ? { wait: options.wait } : {}),
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    };
    const hash = toHex(sha256(bytes));
    return new Promise<TxView>((resolve, reject) => {
      const pending: PendingSubmit = { hash, resolve, reject };
      if (this.closed) return reject(notSent(hash));
      if (this.socket?.readyState === WebSocket.OPEN) this.sendSubmit(request, pending);
      else this.queued.push({ request, pending });
    });
  }

  /** Stops reconnecting and closes the connection. */
  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.drainTimer !== undefined) clearTimeout(this.drainTimer);
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.outbox.length = 0;
    this.socket?.close(1000);
    this.failPending();
  }

  /** Sends what the pace allows now, and comes back for the rest. */
  private drain(): void {
    const nowMs = performance.now();
    this.tokens = Math.min(
      this.burstMessages,
      this.tokens + ((nowMs - this.refilledMs) * this.messagesPerS) / 1_000,
    );
    this.refilledMs = nowMs;
    while (this.outbox.length > 0 && this.tokens >= 1) {
      if (this.socket?.readyState !== WebSocket.OPEN) {
        this.outbox.length = 0;
        return;
      }
      this.socket.send(JSON.stringify(this.outbox.shift()));
      this.tokens -= 1;
    }
    if (this.outbox.length > 0 && this.drainTimer === undefined) {
      this.drainTimer = setTimeout(
        () => {
          this.drainTimer = undefined;
          this.drain();
        },
        Math.ceil(1_000 / this.messagesPerS),
      );
    }
  }

  /** Takes out the requests for `channel` still waiting to be sent. */
  private dropQueued(channel: string): void {
    for (let i = this.outbox.length - 1; i >= 0; i--) {
      if ((this.outbox[i] as { channel?: unknown }).channel === channel) this.outbox.splice(i, 1);
    }
  }

  /** After a RateLimited answer: the subscriptions still waiting are asked for again, once. */
  private retrySubscribingAfter(retryAfterMs: number | undefined): void {
    if (this.retryTimer !== undefined) return;
    const delayMs =
      retryAfterMs !== undefined && Number.isFinite(retryAfterMs) && retryAfterMs > 0
        ? Math.min(retryAfterMs, RETRY_SUBSCRIBING_MS_MAX)
        : Math.ceil(1_000 / this.messagesPerS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.closed && this.socket?.readyState === WebSocket.OPEN) {
        this.channels.retrySubscribing((name) =>
          this.outbox.some((r) => (r as { channel?: unknown }).channel === name),
        );
      }
    }, delayMs);
  }

  private sendSubmit(request: WsSubmitRequest, pending: PendingSubmit): void {
    this.pending.set(request.id, pending);
    this.socket!.send(JSON.stringify(request));
  }

  /** An answer to a submission: settles it and returns true; anything else: false. */
  private answer(message: WsMessage): boolean {
    if (message.type !== 'submitted' && message.type !== 'error') return false;
    const id = message.id;
    const pending = id === undefined ? undefined : this.pending.get(id);
    if (pending === undefined) return false;
    this.pending.delete(id!);
    if (message.type === 'submitted') pending.resolve(message.data as TxView);
    else pending.reject(new ZommaApiError(message.status ?? statusOfCode(message.code), message));
    return true;
  }

  /**
   * Every submission without an answer fails: those sent with Disconnected
   * (they may have been taken), those never sent with NotSent.
   */
  private failPending(): void {
    const sent = [...this.pending.values()];
    const unsent = this.queued.splice(0).map((q) => q.pending);
    this.pending.clear();
    for (const p of sent) p.reject(disconnected(p.hash));
    for (const p of unsent) p.reject(notSent(p.hash));
  }

  private connect(): void {
    const socket = new WebSocket(this.url);
    this.socket = socket;
    let heartbeat: ReturnType<typeof setInterval> | undefined;
    socket.on('open', () => {
      this.connects++;
      const heartbeatMs = this.options.heartbeatMs ?? 15_000;
      if (heartbeatMs > 0) {
        let answered = true;
        socket.on('pong', () => (answered = true));
        heartbeat = setInterval(() => {
          if (!answered) return socket.terminate();
          answered = false;
          socket.ping();
        }, heartbeatMs);
        heartbeat.unref();
      }
      this.delayMs = this.options.reconnectDelayMs ?? 250;
      this.options.onStatus?.({ type: 'open' });
      // A new connection: a full bucket on the server, and nothing left to send of the last one.
      this.outbox.length = 0;
      this.tokens = this.burstMessages;
      this.refilledMs = performance.now();
      this.channels.resubscribeAll();
      for (const q of this.queued.splice(0)) this.sendSubmit(q.request, q.pending);
    });
    socket.on('message', (raw) => {
      let message: WsMessage;
      try {
        message = JSON.parse(raw.toString()) as WsMessage;
      } catch {
        return;
      }
      // Not a message of the protocol (`null`, a number): reading its type would throw here.
      if (typeof message !== 'object' || message === null) return;
      if (this.pending.size > 0 && this.answer(message)) return;
      this.channels.handle(message);
    });
    let refused = false;
    let retryAfterMs = 0;
    socket.on('unexpected-response', (_req, res) => {
      refused = true;
      const seconds = Number(res.headers['retry-after']);
      if (Number.isSafeInteger(seconds) && seconds > 0) retryAfterMs = seconds * 1_000;
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        // The server's refusals are a short JSON object; anything longer is not one.
        if (text.length < REFUSAL_CHARS_MAX) text += chunk;
      });
      res.on('end', () => {
        const body = refusalBody(text);
        this.options.onStatus?.({
          type: 'error',
          code: body?.code ?? 'HttpError',
          message: body?.message ?? `the server refused the connection: HTTP ${res.statusCode}`,
          ...(retryAfterMs > 0 ? { retryAfterMs } : {}),
        });
        socket.terminate();
      });
    });
    socket.on('error', (e) => {
      // A refused upgrade was reported with the server's answer; this is ws's note of the abort.
      if (!refused) this.options.onStatus?.({ type: 'error', message: e.message });
    });
    socket.on('close', () => {
      if (heartbeat !== undefined) clearInterval(heartbeat);
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.options.onStatus?.({ type: 'close' });
      // Sent and unanswered, or waiting for a connection that failed: the
      // caller decides what to resend (no burst of stale orders on reconnect).
      this.failPending();
      if (this.closed) return;
      const delayMs = Math.max(this.delayMs, retryAfterMs);
      this.delayMs = Math.min(2 * this.delayMs, this.options.reconnectDelayMsMax ?? 10_000);
      this.timer = setTimeout(() => {
        this.timer = undefined;
        if (!this.closed) this.connect();
      }, delayMs);
    });
  }
}

const REFUSAL_CHARS_MAX = 4_096;
/** Longest wait before asking again for subscriptions a RateLimited answer refused. */
const RETRY_SUBSCRIBING_MS_MAX = 10_000;

/** The `{ code, message }` of a refused upgrade's body, if it is one. */
function refusalBody(text: string): { code: string; message: string } | undefined {
  try {
    const body = JSON.parse(text) as { code?: unknown; message?: unknown };
    if (typeof body.code === 'string' && typeof body.message === 'string') {
      return { code: body.code, message: body.message };
    }
  } catch {
    // Not JSON: reported by its HTTP status.
  }
  return undefined;
}

function disconnected(hash: string): ZommaApiError {
  return new ZommaApiError(0, {
    code: 'Disconnected',
    message: 'the connection closed before the answer: look the transaction up by its hash',
    hash,
  });
}

function notSent(hash: string): ZommaApiError {
  return new ZommaApiError(0, {
    code: 'NotSent',
    message: 'no connection was open to send the transaction on: it was not submitted',
    hash,
  });
}
