// The WebSocket fan-out (docs/api.md, "WebSocket"). A client subscribes to
// channels; the hub answers each with a snapshot (or, given fromSeq, a replay
// of what it missed) and then forwards the committed updates of every block.
//
// Sequence numbers: a book channel carries the book's own per-instrument
// sequence (the height that last changed its window; a delta applies on the
// book at its prevSeq). Every other channel carries the block height
// (increasing, not contiguous). The hub keeps
// the last WS_RESUME_BLOCKS_MAX block updates so that a client which
// reconnects with the last seq it saw gets exactly what it missed; when that
// is no longer buffered it gets a fresh snapshot instead. Each message to a
// subscription has a seq above the last one it was sent, so nothing repeats.
//
// The node builds account updates only for the addresses the hub asks for
// (AccountInterest): those followed, and for resumeBlocksMax blocks after their
// last follower left, so that a reconnecting client finds them buffered. A
// resume over blocks built without its address gets a snapshot instead.
//
// A market that settles (or is otherwise retired) ends its book, trades and
// ticker channels: each follower gets one `ended` message with how it ended,
// and the subscription is over on the server too (it no longer counts against
// the connection's limit). A subscription to such a market is refused with
// MarketEnded and the same record.

import { randomUUID } from 'node:crypto';
import type { ValidateFunction } from 'ajv';
import type { WebSocket } from 'ws';
import { assert } from '../lib/assert.ts';
import {
  API_RATE_BUCKETS_MAX,
  API_TRADES_DEFAULT,
  WS_CONTROL_MESSAGE_BYTES_MAX,
  WS_BOOK_DEPTH_LEVELS,
  WS_CHANNEL_CHARS_MAX,
  WS_SUBMIT_ID_CHARS_MAX,
} from '../lib/limits.ts';
import { refusalOf, shownName, validatorOf } from './check.ts';
import { ALREADY_SUBSCRIBED, NOT_SUBSCRIBED } from './client/channels.ts';
import { ApiError } from './errors.ts';
import { RateLimiter } from './ratelimit.ts';
import {
  ADDRESS_PATTERN,
  INSTRUMENT_PATTERN,
  MARKET_CHANNEL_KINDS,
  channelSchemas,
  wsSubmitSchema,
} from './routes.ts';
import type { ChannelData, ChannelKind, WsSubmitRequest } from './routes.ts';
import type {
  AccountUpdate,
  BlockUpdate,
  BookDelta,
  MarketEndView,
  NodeView,
  ReadModel,
  TradeView,
} from './view.ts';

export type { ChannelKind } from './routes.ts';
export const CHANNEL_KINDS = Object.keys(channelSchemas) as readonly ChannelKind[];

/** Client → server. */
export type WsRequest =
  | { op: 'subscribe'; channel: string; fromSeq?: number }
  | { op: 'unsubscribe'; channel: string }
  | WsSubmitRequest
  | { op: 'ping' };

/** Server → client. */
export type WsMessage =
  | { type: 'subscribed' | 'unsubscribed'; channel: string }
  | { type: 'snapshot' | 'update'; channel: string; seq: number; data: unknown }
  /** The channel's market settled or was retired: its last message; the subscription is over. */
  | { type: 'ended'; channel: string; seq: number; data: MarketEndView }
  | { type: 'submitted'; id: string; data: unknown }
  | {
      type: 'error';
      code: string;
      message: string;
      channel?: string;
      id?: string;
      field?: string;
      hash?: string;
      retryAfterMs?: number;
      errorId?: string;
      /** The HTTP status POST /v1/tx answers this error with (submissions). */
      status?: number;
      /** MarketEnded: how the channel's market ended. */
      ended?: MarketEndView;
    }
  | { type: 'pong' };

export interface WsLimits {
  subscriptionsMax: number;
  sendBufferBytesMax: number;
  /** Over all connections: past it the ones with the most queued are dropped. */
  sendBufferTotalBytesMax: number;
  resumeBlocksMax: number;
  messagesPerS: number;
  burstMessages: number;
  /** The same over every connection of one client address (never less than one connection's). */
  ipMessagesPerS: number;
  ipBurstMessages: number;
  submitsPendingMax: number;
}

/** A submission's answer: the transaction view POST /v1/tx returns, or its error body. */
export type WsSubmitAnswer =
  | { ok: true; data: unknown }
  | { ok: false; error: { code: string; message: string } & Record<string, unknown> };

/** How the server takes submissions (server.ts): the path of POST /v1/tx, rate limits included. */
export interface WsSubmitter {
  /** Takes a token of the address's request bucket; > 0: refused, retry after this many ms. */
  takeIp(ip: string): number;
  /** Never rejects: every failure is an answer. */
  submit(request: WsSubmitRequest, ip: string): Promise<WsSubmitAnswer>;
}

/** Where an unexpected failure's details go, under the id its InternalError answer names. */
export type InternalErrorLog = (errorId: string, error: unknown) => void;

// A JSON message, as a JSON body: the same validator options as POST /v1/tx's body (no coercion).
const validateSubmit = validatorOf(
  'body',
  wsSubmitSchema.json,
) as ValidateFunction<WsSubmitRequest>;

const instrumentRe = new RegExp(INSTRUMENT_PATTERN);
const addressRe = new RegExp(ADDRESS_PATTERN);

/** `book:BTC-PERPETUAL`, `trades:…`, `ticker:…`, `account:0x…`, `blocks`. */
export function parseChannel(channel: string): { kind: ChannelKind; key: string } | undefined {
  if (typeof channel !== 'string' || channel.length > WS_CHANNEL_CHARS_MAX) return undefined;
  if (channel === 'blocks') return { kind: 'blocks', key: '' };
  const colon = channel.indexOf(':');
  if (colon < 0) return undefined;
  const kind = channel.slice(0, colon) as ChannelKind;
  const key = channel.slice(colon + 1);
  if (kind === 'account') return addressRe.test(key) ? { kind, key: key.toLowerCase() } : undefined;
  if (kind === 'book' || kind === 'trades' || kind === 'ticker') {
    return instrumentRe.test(key) && key.length <= 48 ? { kind, key } : undefined;
  }
  return undefined;
}

/** How a market ended, in words (a MarketEnded refusal, a 404 for its instrument). */
export function endedMessage(end: MarketEndView): string {
  return end.reason === 'settled'
    ? `${end.instrument} settled at height ${end.height}` +
        (end.priceQuote !== undefined
          ? ` at the settlement price ${end.priceQuote} quote units per base unit`
          : '') +
        '; it has no book, trades or ticker any more'
    : `${end.instrument} was retired at height ${end.height}; it has no book, trades or ticker any more`;
}

/** The one name of a parsed channel: an account's address in lower case. */
function channelName(parsed: { kind: ChannelKind; key: string }): string {
  return parsed.kind === 'blocks' ? 'blocks' : `${parsed.kind}:${parsed.key}`;
}

interface Subscription {
  readonly kind: ChannelKind;
  /** The channel as the client spelled it (an address may have capitals): its messages carry it. */
  readonly name: string;
  lastSeq: number;
}

/** What of the connection's byte stream the hub uses: holding its writes back within a turn. */
export interface Corkable {
  cork(): void;
  uncork(): void;
}

class Connection {
  readonly socket: WebSocket;
  readonly ip: string;
  /** The socket under the WebSocket, when known: its writes are held back within a turn. */
  readonly stream: Corkable | null;
  corked = false;
  /** By channelName: two spellings of one account are one subscription. */
  readonly subs = new Map<string, Subscription>();
  /** The ids of its submissions not answered yet (ids must differ among them). */
  readonly pendingIds = new Set<string>();
  /** Its send buffer's bytes when last looked at (counted in the hub's bufferedTotal). */
  buffered = 0;
  constructor(socket: WebSocket, ip: string, stream: Corkable | null) {
    this.socket = socket;
    this.ip = ip;
    this.stream = stream;
  }
}

/** One channel's message of one block. */
interface ChannelMessage {
  channel: string;
  seq: number;
  data: unknown;
}

/**
 * The per-channel messages of a block update, for the channels some client
 * follows. A kind nobody follows is not read at all: a node may build an
 * update's parts on first read (src/node/view.ts).
 */
function messagesOf(
  u: BlockUpdate,
  wanted: (channel: string) => boolean,
  wantsKind: (kind: ChannelKind) => boolean,
): ChannelMessage[] {
  const out: ChannelMessage[] = [];
  if (wantsKind('book')) messagesOfBooks(u, wanted, out);
  if (wantsKind('trades')) messagesOfTrades(u, wanted, out);
  if (wantsKind('ticker')) {
    for (const t of u.tickers) {
      const channel = `ticker:${t.instrument}`;
      if (wanted(channel)) {
        out.push({ channel, seq: u.height, data: t satisfies ChannelData<'ticker', 'update'> });
      }
    }
  }
  if (wantsKind('account')) messagesOfAccounts(u, wanted, out);
  if (wantsKind('blocks') && wanted('blocks')) {
    out.push({
      channel: 'blocks',
      seq: u.height,
      data: u.block satisfies ChannelData<'blocks', 'update'>,
    });
  }
  return out;
}

/**
 * A buffered block update, with its messages per channel of one kind, built
 * on the first resume that asks for that kind: a resume then costs one lookup
 * per buffered block, not a scan of every block's trades or accounts, however
 * many clients resume (or one client subscribes and unsubscribes again).
 */
class KeptUpdate {
  readonly update: BlockUpdate;
  private readonly byKind = new Map<ChannelKind, Map<string, ChannelMessage>>();
  constructor(update: BlockUpdate) {
    this.update = update;
  }

  message(kind: ChannelKind, channel: string): ChannelMessage | undefined {
    let index = this.byKind.get(kind);
    if (index === undefined) {
      index = new Map();
      for (const m of messagesOf(
        this.update,
        () => true,
        (k) => k === kind,
      )) {
        index.set(m.channel, m);
      }
      this.byKind.set(kind, index);
    }
    return index.get(channel);
  }
}

function messagesOfBooks(
  u: BlockUpdate,
  wanted: (channel: string) => boolean,
  out: ChannelMessage[],
): void {
  for (const d of u.books) {
    const channel = `book:${d.instrument}`;
    if (wanted(channel)) {
      out.push({ channel, seq: d.seq, data: d satisfies ChannelData<'book', 'update'> });
    }
  }
}

function messagesOfTrades(
  u: BlockUpdate,
  wanted: (channel: string) => boolean,
  out: ChannelMessage[],
): void {
  const trades = new Map<string, TradeView[]>();
  for (const t of u.trades) {
    const channel = `trades:${t.instrument}`;
    if (!wanted(channel)) continue;
    let list = trades.get(channel);
    if (list === undefined) trades.set(channel, (list = []));
    list.push(t);
  }
  for (const [channel, list] of trades) {
    const data = { trades: list } satisfies ChannelData<'trades', 'update'>;
    out.push({ channel, seq: u.height, data });
  }
}

function messagesOfAccounts(
  u: BlockUpdate,
  wanted: (channel: string) => boolean,
  out: ChannelMessage[],
): void {
  const accounts = new Map<string, AccountUpdate[]>();
  for (const a of u.accounts) {
    const channel = `account:${a.address.toLowerCase()}`;
    if (!wanted(channel)) continue;
    let list = accounts.get(channel);
    if (list === undefined) accounts.set(channel, (list = []));
    list.push(a);
  }
  for (const [channel, list] of accounts) {
    const data = { subaccounts: list } satisfies ChannelData<'account', 'update'>;
    out.push({ channel, seq: u.height, data });
  }
}

export class WsHub {
  private readonly view: NodeView;
  private readonly limits: WsLimits;
  private readonly nowMs: () => number;
  private readonly connections = new Set<Connection>();
  private readonly followers = new Map<string, Set<Connection>>();
  /** Subscriptions per channel kind, over all connections. */
  private readonly kindCounts = new Map<ChannelKind, number>();
  /**
   * The addresses whose account updates the hub asks the node for, each with
   * the first height whose update carries it. An address stays asked for
   * resumeBlocksMax blocks after its last follower left (accountsReleased:
   * until which height), so a client that reconnects in that window resumes
   * from the buffer; a resume the buffer cannot cover gets a snapshot.
   */
  private readonly accountsSince = new Map<string, number>();
  private readonly accountsReleased = new Map<string, number>();
  /** The height of the last update (the view's, before the first). */
  private height: number;
  private readonly followed = (channel: string) => this.followers.has(channel);
  private readonly followedKind = (kind: ChannelKind) => (this.kindCounts.get(kind) ?? 0) > 0;
  /** The last resumeBlocksMax updates, oldest first. */
  private readonly recent: KeptUpdate[] = [];
  private readonly unsubscribe: () => void;
  private readonly submitter: WsSubmitter | null;
  /** Submissions awaiting their answer, by client address. */
  private readonly pendingByIp = new Map<string, number>();
  /**
   * The sum of the connections' `buffered`: updated on each send, so it can
   * run above the truth when a connection drained since its last send, never
   * below it (a buffer grows only by what is sent). Only once it passes
   * sendBufferTotalBytesMax are the connections looked at (shed).
   */
  private bufferedTotal = 0;
  /** Connections whose writes are held back until the end of this turn. */
  private corked: Connection[] = [];
  private readonly uncorkAll = (): void => {
    const list = this.corked;
    this.corked = [];
    for (const conn of list) {
      conn.corked = false;
      conn.stream!.uncork();
    }
  };
  /**
   * Messages other than submissions, by client address, as well as by
   * connection: an address's connections share one allowance.
   */
  private readonly ipMessages: RateLimiter;
  private readonly logInternal: InternalErrorLog;

  constructor(
    view: NodeView,
    limits: WsLimits,
    nowMs: () => number,
    submitter: WsSubmitter | null = null,
    logInternal: InternalErrorLog = () => {},
  ) {
    this.view = view;
    this.limits = limits;
    this.nowMs = nowMs;
    this.submitter = submitter;
    this.logInternal = logInternal;
    this.ipMessages = new RateLimiter(
      {
        perSecond: Math.max(limits.ipMessagesPerS, limits.messagesPerS),
        burst: Math.max(limits.ipBurstMessages, limits.burstMessages),
      },
      API_RATE_BUCKETS_MAX,
      nowMs,
    );
    this.height = view.read().height;
    this.unsubscribe = view.subscribe((u) => this.onBlock(u), {
      any: () => this.accountsSince.size > 0,
      has: (address) => this.accountsSince.has(address),
    });
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /**
   * A new client. `stream`: the TCP socket under `socket` (the upgrade's), so
   * that the messages of one turn of the event loop (the answers to a block's
   * transactions, a block's channel updates) leave in one write instead of
   * one each.
   */
  attach(socket: WebSocket, ip = '', stream: Corkable | null = null): void {
    const conn = new Connection(socket, ip, stream);
    this.connections.add(conn);
    // One bucket per connection: the limiter holds a single key.
    const limiter = new RateLimiter(
      { perSecond: this.limits.messagesPerS, burst: this.limits.burstMessages },
      1,
      this.nowMs,
    );
    socket.on('message', (raw, isBinary) => {
      try {
        const bytes = Array.isArray(raw)
          ? raw.reduce((n, b) => n + b.byteLength, 0)
          : raw.byteLength;
        this.onRequest(conn, isBinary ? undefined : raw.toString(), bytes, limiter);
      } catch (e) {
        // Thrown out of the socket's event, it would end the process: answered
        // as HTTP answers an unexpected failure, and the connection goes on.
        this.internalError(conn, e);
      }
    });
    socket.on('close', () => this.detach(conn));
    socket.on('error', () => {
      // What the connection was sent goes out before it ends: the answers held
      // back within this turn, and the close frame with its code (1009: too
      // big) that ws wrote on the client's protocol error.
      if (conn.corked) {
        conn.corked = false;
        conn.stream!.uncork();
      }
      socket.terminate();
    });
  }

  /** Closes every client connection (they reconnect and resume). */
  dropAll(): void {
    for (const conn of this.connections) conn.socket.terminate();
  }

  close(): void {
    this.unsubscribe();
    for (const conn of this.connections) conn.socket.close(1001, 'server shutting down');
  }

  private detach(conn: Connection): void {
    if (!this.connections.delete(conn)) return;
    this.bufferedTotal -= conn.buffered;
    conn.buffered = 0;
    for (const channel of conn.subs.keys()) this.unfollow(conn, channel);
  }

  private unfollow(conn: Connection, channel: string): void {
    const sub = conn.subs.get(channel);
    if (sub !== undefined) this.kindCounts.set(sub.kind, (this.kindCounts.get(sub.kind) ?? 1) - 1);
    conn.subs.delete(channel);
    const set = this.followers.get(channel);
    if (set === undefined) return;
    set.delete(conn);
    if (set.size > 0) return;
    this.followers.delete(channel);
    if (sub?.kind === 'account') {
      this.accountsReleased.set(
        channel.slice('account:'.length),
        this.height + this.limits.resumeBlocksMax,
      );
    }
  }

  private send(conn: Connection, message: WsMessage | string): void {
    const socket = conn.socket;
    if (socket.readyState !== socket.OPEN) return;
    if (socket.bufferedAmount > this.limits.sendBufferBytesMax) {
      // A client that cannot keep up is dropped; it resumes from its last seq.
      this.drop(conn);
      return;
    }
    if (conn.stream !== null && !conn.corked) {
      conn.corked = true;
      conn.stream.cork();
      this.corked.push(conn);
      // After this turn's promise continuations (a block's answers run in them).
      if (this.corked.length === 1) setImmediate(this.uncorkAll);
    }
    socket.send(typeof message === 'string' ? message : JSON.stringify(message));
    const buffered = socket.bufferedAmount;
    this.bufferedTotal += buffered - conn.buffered;
    conn.buffered = buffered;
    if (this.bufferedTotal > this.limits.sendBufferTotalBytesMax) this.shed();
  }

  /**
   * Terminates a connection at once: a close frame would wait behind the
   * bytes it has queued, and those are what must be freed. Its buffer leaves
   * the total now, not when the close event comes.
   */
  private drop(conn: Connection): void {
    this.bufferedTotal -= conn.buffered;
    conn.buffered = 0;
    conn.socket.terminate();
  }

  /**
   * The running total passed sendBufferTotalBytesMax: takes the true total
   * and, while it is still over, drops the connections with the most queued
   * (the slowest), as one over sendBufferBytesMax is dropped, down to three
   * quarters of the bound: under sustained pressure a total left just under
   * it would send every next send back here, each a walk of every connection.
   */
  private shed(): void {
    let total = 0;
    const open: Connection[] = [];
    for (const conn of this.connections) {
      const socket = conn.socket;
      conn.buffered = socket.readyState === socket.OPEN ? socket.bufferedAmount : 0;
      total += conn.buffered;
      if (conn.buffered > 0) open.push(conn);
    }
    this.bufferedTotal = total;
    if (total <= this.limits.sendBufferTotalBytesMax) return;
    open.sort((a, b) => b.buffered - a.buffered);
    const targetBytes = Math.floor((this.limits.sendBufferTotalBytesMax * 3) / 4);
    for (const conn of open) {
      if (this.bufferedTotal <= targetBytes) break;
      this.drop(conn);
    }
  }

  /** An unexpected failure: its details go only to the log, under the id the answer names. */
  private internalError(conn: Connection, error: unknown, channel?: string): void {
    const errorId = randomUUID();
    this.logInternal(errorId, error);
    this.send(conn, {
      type: 'error',
      code: 'InternalError',
      message: 'internal error',
      errorId,
      ...(channel !== undefined ? { channel } : {}),
    });
  }

  private error(conn: Connection, code: string, message: string, channel?: string): void {
    this.send(conn, {
      type: 'error',
      code,
      message,
      ...(channel !== undefined ? { channel } : {}),
    });
  }

  /** `text`: the message, undefined for a binary one; `bytes`: its size. */
  private onRequest(
    conn: Connection,
    text: string | undefined,
    bytes: number,
    limiter: RateLimiter,
  ): void {
    // Every message takes a token before it is parsed. A submission (any
    // message naming "submit": the only kind near WS_MESSAGE_BYTES_MAX) takes
    // it from the client address's bucket, as a POST /v1/tx would; any other
    // from the connection's own bucket and then its address's, which
    // submissions leave alone.
    const submitter = this.submitter;
    const submitLike = submitter !== null && text !== undefined && text.includes('"submit"');
    if (!submitLike && bytes > WS_CONTROL_MESSAGE_BYTES_MAX) {
      // Only a submission may be that large (a binary message is none); no
      // JSON parse for anything else. Bytes, not characters: one character
      // may take up to three.
      conn.socket.close(1009, 'message too big');
      return;
    }
    if (submitLike) {
      if (this.limited(conn, submitter.takeIp(conn.ip), sniffId(text!))) return;
    } else {
      const retryAfterMs = limiter.take('') || this.ipMessages.take(conn.ip);
      if (this.limited(conn, retryAfterMs, null)) return;
    }
    let request: unknown;
    try {
      request = text === undefined ? undefined : JSON.parse(text);
    } catch {
      request = undefined;
    }
    const r = request as Record<string, unknown> | null | undefined;
    // The op spelled with escapes: a submission all the same.
    if (!submitLike && submitter !== null && typeof r === 'object' && r?.op === 'submit') {
      if (this.limited(conn, submitter.takeIp(conn.ip), idOf(r).id ?? '')) return;
    }
    if (request === undefined) {
      return this.error(conn, 'MalformedJson', 'a message is one JSON object');
    }
    if (typeof r !== 'object' || r === null || Array.isArray(r)) {
      return this.error(conn, 'BadRequest', 'a message is one JSON object with an op');
    }
    const unknown = unknownFieldOf(r);
    if (unknown !== undefined) {
      const field = `${shownName(String(r.op))}/${shownName(unknown)}`;
      return this.send(conn, {
        type: 'error',
        code: 'BadRequest',
        message: `${field} is not a known field`,
        field,
        ...(typeof r.channel === 'string' ? { channel: shownName(r.channel) } : {}),
      });
    }
    switch (r.op) {
      case 'ping':
        return this.send(conn, { type: 'pong' });
      case 'subscribe':
        return this.subscribe(conn, r.channel, r.fromSeq);
      case 'unsubscribe': {
        const parsed = typeof r.channel === 'string' ? parseChannel(r.channel) : undefined;
        const name = parsed === undefined ? undefined : channelName(parsed);
        if (name === undefined || !conn.subs.has(name)) {
          return this.error(
            conn,
            'NotFound',
            NOT_SUBSCRIBED,
            typeof r.channel === 'string' ? shownName(r.channel) : undefined,
          );
        }
        this.unfollow(conn, name);
        return this.send(conn, { type: 'unsubscribed', channel: r.channel as string });
      }
      case 'submit':
        return this.submit(conn, r);
      default:
        return this.error(conn, 'BadRequest', 'op must be subscribe, unsubscribe, submit or ping');
    }
  }

  /**
   * Answers RateLimited and returns true when a bucket refused (retryAfterMs
   * > 0). `submission`: the refused submission's id ('' if none was read), or
   * null for another message.
   */
  private limited(conn: Connection, retryAfterMs: number, submission: string | null): boolean {
    if (retryAfterMs <= 0) return false;
    this.send(conn, {
      type: 'error',
      code: 'RateLimited',
      message: submission !== null ? 'too many requests from this address' : 'too many messages',
      retryAfterMs,
      ...(submission !== null ? { status: 429 } : {}),
      ...(submission ? { id: submission } : {}),
    });
    return true;
  }

  private submit(conn: Connection, r: Record<string, unknown>): void {
    const submitter = this.submitter;
    if (submitter === null) {
      return this.send(conn, {
        type: 'error',
        code: 'BadRequest',
        message: 'this server takes no submissions',
        status: 400,
        ...idOf(r),
      });
    }
    if (!validateSubmit(r)) {
      const { field, message } = refusalOf('submit', validateSubmit.errors?.[0]);
      return this.send(conn, {
        type: 'error',
        code: 'BadRequest',
        message,
        field,
        status: 400,
        ...idOf(r),
      });
    }
    if (conn.pendingIds.has(r.id)) {
      return this.send(conn, {
        type: 'error',
        code: 'BadRequest',
        message: 'another submission with this id awaits its answer',
        field: 'submit/id',
        status: 400,
        id: r.id,
      });
    }
    // Per address, not per connection: a submission whose connection closed
    // still waits for its commit, and a new connection must not start afresh.
    const ip = conn.ip;
    const pending = this.pendingByIp.get(ip) ?? 0;
    if (pending >= this.limits.submitsPendingMax) {
      return this.send(conn, {
        type: 'error',
        code: 'TooManyPending',
        message: `at most ${this.limits.submitsPendingMax} submissions from one address awaiting an answer`,
        status: 429,
        id: r.id,
      });
    }
    this.pendingByIp.set(ip, pending + 1);
    conn.pendingIds.add(r.id);
    submitter
      .submit(r, ip)
      .then(
        (answer) =>
          answer.ok
            ? ({ type: 'submitted', id: r.id, data: answer.data } as const)
            : ({ type: 'error', ...answer.error, id: r.id } as const),
        () =>
          ({
            type: 'error',
            code: 'InternalError',
            message: 'internal error',
            status: 500,
            id: r.id,
          }) as const,
      )
      .then((message) => {
        this.releasePending(ip);
        conn.pendingIds.delete(r.id);
        this.send(conn, message);
      })
      .catch(() => conn.socket.terminate());
  }

  private releasePending(ip: string): void {
    const n = (this.pendingByIp.get(ip) ?? 1) - 1;
    if (n === 0) this.pendingByIp.delete(ip);
    else this.pendingByIp.set(ip, n);
  }

  private subscribe(conn: Connection, channel: unknown, fromSeq: unknown): void {
    const parsed = typeof channel === 'string' ? parseChannel(channel) : undefined;
    if (parsed === undefined) {
      return this.error(
        conn,
        'BadRequest',
        'channel must be book:<instrument>, trades:<instrument>, ticker:<instrument>, account:<address> or blocks',
        // Named back, so a client with several requests in flight knows which was refused.
        typeof channel === 'string' ? shownName(channel) : undefined,
      );
    }
    // Messages go out under the client's spelling; everything else keys on the one name.
    const shown = channel as string;
    const name = channelName(parsed);
    if (fromSeq !== undefined && !(Number.isSafeInteger(fromSeq) && (fromSeq as number) >= 0)) {
      return this.error(conn, 'BadRequest', 'fromSeq must be a non-negative integer', shown);
    }
    if (conn.subs.has(name)) return this.error(conn, 'BadRequest', ALREADY_SUBSCRIBED, shown);
    if (conn.subs.size >= this.limits.subscriptionsMax) {
      return this.error(
        conn,
        'TooManySubscriptions',
        `at most ${this.limits.subscriptionsMax} subscriptions per connection`,
        shown,
      );
    }
    const read = this.view.read();
    if (parsed.kind !== 'account' && parsed.kind !== 'blocks') {
      if (read.book(parsed.key, 1) === undefined) {
        const ended = read.ended(parsed.key);
        if (ended !== undefined) {
          // Not "no such instrument": it existed, and its channels have nothing more to say.
          return this.send(conn, {
            type: 'error',
            code: 'MarketEnded',
            message: endedMessage(ended),
            channel: shown,
            ended,
          });
        }
        return this.error(conn, 'NotFound', `no instrument ${parsed.key}`, shown);
      }
    }
    const sub: Subscription = { kind: parsed.kind, name: shown, lastSeq: -1 };
    conn.subs.set(name, sub);
    this.kindCounts.set(parsed.kind, (this.kindCounts.get(parsed.kind) ?? 0) + 1);
    if (parsed.kind === 'account') {
      // From the next block on, the node builds this address's updates.
      if (!this.accountsSince.has(parsed.key)) this.accountsSince.set(parsed.key, this.height + 1);
      this.accountsReleased.delete(parsed.key);
    }
    let set = this.followers.get(name);
    if (set === undefined) this.followers.set(name, (set = new Set()));
    set.add(conn);
    this.send(conn, { type: 'subscribed', channel: shown });
    try {
      const resumed =
        fromSeq !== undefined && this.resume(conn, sub, name, parsed.kind, read, fromSeq as number);
      if (!resumed) this.snapshot(conn, sub, parsed.kind, parsed.key, read);
    } catch (e) {
      // A read the node refuses (a halted node serves no account state), or
      // one that failed: the subscription ends with the reason, as an HTTP
      // read would answer it (a failure: InternalError, its details logged).
      this.unfollow(conn, name);
      if (e instanceof ApiError) this.error(conn, e.code, e.message, shown);
      else this.internalError(conn, e, shown);
    }
  }

  /** Replays what a client missed after fromSeq, if it is all still buffered. */
  private resume(
    conn: Connection,
    sub: Subscription,
    channel: string,
    kind: ChannelKind,
    read: ReadModel,
    fromSeq: number,
  ): boolean {
    const missed: ChannelMessage[] = [];
    for (const kept of this.recent) {
      const m = kept.message(kind, channel);
      if (m !== undefined && m.seq > fromSeq) missed.push(m);
    }
    if (kind === 'account') {
      // Every missed block must have been built with this address's updates.
      const since = this.accountsSince.get(channel.slice('account:'.length));
      if (fromSeq < read.height && (since === undefined || since > fromSeq + 1)) return false;
    }
    if (kind === 'book') {
      const book = read.book(channel.slice('book:'.length), 1)!;
      if (fromSeq > book.seq) return false;
      // Replayed deltas must start from the client's own book: a seq is a
      // height, so one held from another node that published the same window
      // links on; anything else gets a snapshot.
      const first = missed[0]?.data as BookDelta | undefined;
      if (first === undefined ? book.seq !== fromSeq : first.prevSeq !== fromSeq) return false;
    } else {
      if (fromSeq > read.height) return false;
      const oldest = this.recent.length > 0 ? this.recent[0]!.update.height : read.height + 1;
      if (fromSeq < oldest - 1 && fromSeq !== read.height) return false;
    }
    sub.lastSeq = fromSeq;
    for (const m of missed) this.deliver(conn, sub, m.seq, JSON.stringify(m.data));
    return true;
  }

  private snapshot(
    conn: Connection,
    sub: Subscription,
    kind: ChannelKind,
    key: string,
    read: ReadModel,
  ): void {
    let seq = read.height;
    let data: unknown;
    switch (kind) {
      case 'book': {
        // The window the channel's updates keep: the client holds exactly these levels.
        const book = read.book(key, WS_BOOK_DEPTH_LEVELS)!;
        seq = book.seq;
        data = { ...book, depth: WS_BOOK_DEPTH_LEVELS } satisfies ChannelData<'book', 'snapshot'>;
        break;
      }
      case 'trades': {
        const trades = read.trades(key, API_TRADES_DEFAULT) ?? [];
        data = { trades } satisfies ChannelData<'trades', 'snapshot'>;
        break;
      }
      case 'ticker':
        data = (read.ticker(key) ?? null) satisfies ChannelData<'ticker', 'snapshot'>;
        break;
      case 'account':
        data = (read.account(key) ?? null) satisfies ChannelData<'account', 'snapshot'>;
        break;
      case 'blocks': {
        const block = read.height > 0 ? (read.block(read.height) ?? null) : null;
        data = block satisfies ChannelData<'blocks', 'snapshot'>;
        break;
      }
    }
    sub.lastSeq = seq;
    this.send(conn, { type: 'snapshot', channel: sub.name, seq, data });
  }

  private deliver(conn: Connection, sub: Subscription, seq: number, dataJson: string): void {
    if (seq <= sub.lastSeq) return;
    sub.lastSeq = seq;
    // The data is serialized once per block and channel, whatever the number of followers.
    this.send(
      conn,
      `{"type":"update","channel":${JSON.stringify(sub.name)},"seq":${seq},"data":${dataJson}}`,
    );
  }

  private onBlock(u: BlockUpdate): void {
    const last = this.recent[this.recent.length - 1];
    assert(
      last === undefined || u.height > last.update.height,
      'block updates arrive in height order',
    );
    this.recent.push(new KeptUpdate(u));
    if (this.recent.length > this.limits.resumeBlocksMax) this.recent.shift();
    this.height = u.height;
    for (const [address, until] of this.accountsReleased) {
      if (u.height < until) continue;
      this.accountsReleased.delete(address);
      this.accountsSince.delete(address);
    }
    for (const m of messagesOf(u, this.followed, this.followedKind)) {
      const dataJson = JSON.stringify(m.data);
      for (const conn of this.followers.get(m.channel)!) {
        this.deliver(conn, conn.subs.get(m.channel)!, m.seq, dataJson);
      }
    }
    for (const end of u.ended) this.endMarket(end);
  }

  /**
   * A market ended in the block just delivered: each of its channels' followers
   * gets its last message, and the subscription is over on the server too.
   */
  private endMarket(end: MarketEndView): void {
    for (const kind of MARKET_CHANNEL_KINDS) {
      const channel = `${kind}:${end.instrument}`;
      const set = this.followers.get(channel);
      if (set === undefined) continue;
      for (const conn of [...set]) {
        const sub = conn.subs.get(channel)!;
        this.unfollow(conn, channel);
        this.send(conn, { type: 'ended', channel: sub.name, seq: end.height, data: end });
      }
    }
  }
}

/** The fields of each op but submit (whose schema names its own): any other is refused, as over HTTP. */
const OP_FIELDS: ReadonlyMap<unknown, ReadonlySet<string>> = new Map([
  ['ping', new Set(['op'])],
  ['subscribe', new Set(['op', 'channel', 'fromSeq'])],
  ['unsubscribe', new Set(['op', 'channel'])],
]);

/** The first field a control message's op does not take (own fields only: `__proto__` included). */
function unknownFieldOf(r: Record<string, unknown>): string | undefined {
  const fields = OP_FIELDS.get(r.op);
  if (fields === undefined) return undefined;
  return Object.keys(r).find((k) => !fields.has(k));
}

/** The client's id of a message, echoed in its error when it is one a client may have set. */
function idOf(r: unknown): { id?: string } {
  const id = typeof r === 'object' && r !== null ? (r as { id?: unknown }).id : undefined;
  return typeof id === 'string' && id.length > 0 && id.length <= WS_SUBMIT_ID_CHARS_MAX
    ? { id }
    : {};
}

/**
 * The id of a submission refused before it is parsed, read without parsing
 * (so that a flood of refused messages costs no JSON parse), for the client
 * to match the refusal; an id written with escapes is not found.
 */
function sniffId(text: string): string {
  return /"id"\s*:\s*"([^"\\]{1,64})"/.exec(text)?.[1] ?? '';
}
