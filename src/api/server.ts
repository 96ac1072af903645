// The HTTP and WebSocket server over a NodeView (view.ts). Routes come from
// routes.ts; every error answer is { code, message } with a 4xx for a bad
// request, and an unknown failure becomes a 500 InternalError whose details
// (stack included) go only to the log, under an id the answer names.

import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { clientKeyOf } from '../lib/address.ts';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import Fastify from 'fastify';
import type {
  FastifyBaseLogger,
  FastifyError,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
} from 'fastify';
import { WebSocketServer } from 'ws';
import { sha256 } from '../crypto/index.ts';
import { decodeSignedTx } from '../exchange/tx/index.ts';
import type { SignedTx } from '../exchange/tx/index.ts';
import { toHex } from '../lib/bytes.ts';
import * as L from '../lib/limits.ts';
import {
  NO_QUERY,
  looseIntegerOf,
  refusalOf,
  repeatedFieldOf,
  shownName,
  validatorOf,
} from './check.ts';
import { ApiError, statusOfCode } from './errors.ts';
import type { ErrorBody } from './errors.ts';
import { openApiDocument } from './openapi.ts';
import { RateLimiter } from './ratelimit.ts';
import { OPENAPI_PATH, WS_PATH, errorSchema, routes } from './routes.ts';
import type {
  BodyOf,
  ParamsOf,
  QueryOf,
  ResponseOf,
  RouteDef,
  RouteName,
  Routes,
} from './routes.ts';
import type { JsonSchema } from './schema.ts';
import type { NodeView, ReadModel, SubmitResult, TxView } from './view.ts';
import { WsHub, endedMessage } from './ws.ts';
import type { WsLimits, WsSubmitter } from './ws.ts';

export interface ApiLimits extends WsLimits {
  bodyBytesMax: number;
  ipRequestsPerS: number;
  ipBurstRequests: number;
  accountTxsPerS: number;
  accountBurstTxs: number;
  rateBucketsMax: number;
  wsMessageBytesMax: number;
  wsConnectionsPerIpMax: number;
  connectionsPerIpMax: number;
  waitCommitMsDefault: number;
  waitCommitMsMax: number;
  commitWaitersMax: number;
  commitWaitersPerIpMax: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** How often Node looks for requests past those timeouts. */
  timeoutCheckMs: number;
}

export const DEFAULT_API_LIMITS: ApiLimits = {
  bodyBytesMax: L.API_BODY_BYTES_MAX,
  ipRequestsPerS: L.API_IP_REQUESTS_PER_S,
  ipBurstRequests: L.API_IP_BURST_REQUESTS,
  accountTxsPerS: L.API_ACCOUNT_TXS_PER_S,
  accountBurstTxs: L.API_ACCOUNT_BURST_TXS,
  rateBucketsMax: L.API_RATE_BUCKETS_MAX,
  wsMessageBytesMax: L.WS_MESSAGE_BYTES_MAX,
  wsConnectionsPerIpMax: L.WS_CONNECTIONS_PER_IP_MAX,
  connectionsPerIpMax: L.API_CONNECTIONS_PER_IP_MAX,
  waitCommitMsDefault: L.API_WAIT_COMMIT_MS_DEFAULT,
  waitCommitMsMax: L.API_WAIT_COMMIT_MS_MAX,
  commitWaitersMax: L.API_COMMIT_WAITERS_MAX,
  commitWaitersPerIpMax: L.API_COMMIT_WAITERS_PER_IP_MAX,
  headersTimeoutMs: L.API_HEADERS_TIMEOUT_MS,
  requestTimeoutMs: L.API_REQUEST_TIMEOUT_MS,
  timeoutCheckMs: L.API_TIMEOUT_CHECK_MS,
  subscriptionsMax: L.WS_SUBSCRIPTIONS_MAX,
  sendBufferBytesMax: L.WS_SEND_BUFFER_BYTES_MAX,
  sendBufferTotalBytesMax: L.WS_SEND_BUFFER_TOTAL_BYTES_MAX,
  resumeBlocksMax: L.WS_RESUME_BLOCKS_MAX,
  messagesPerS: L.WS_MESSAGES_PER_S,
  burstMessages: L.WS_BURST_MESSAGES,
  ipMessagesPerS: L.WS_IP_MESSAGES_PER_S,
  ipBurstMessages: L.WS_IP_BURST_MESSAGES,
  submitsPendingMax: L.WS_SUBMITS_PENDING_MAX,
};

export interface ApiServerOptions {
  view: NodeView;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  limits?: Partial<ApiLimits>;
  /** A monotonic ms clock for the rate limits; tests pass their own. */
  nowMs?: () => number;
  /** Default: no logging. */
  logger?: FastifyBaseLogger;
  /**
   * Take the client IP from X-Forwarded-For, its right-most entry (behind one
   * trusted proxy that appends the address it saw; only).
   */
  trustProxy?: boolean;
  /** Adds routes of the embedding program (e.g. the dashboard) before the server listens. */
  register?: (app: FastifyInstance) => void;
}

export interface ApiServer {
  /** http://host:port */
  readonly url: string;
  readonly app: FastifyInstance;
  readonly hub: WsHub;
  close(): Promise<void>;
}

type Handlers = {
  [K in RouteName]: (input: {
    params: ParamsOf<Routes[K]>;
    query: QueryOf<Routes[K]>;
    body: BodyOf<Routes[K]> | Buffer;
    ip: string;
  }) => ResponseOf<Routes[K]> | Promise<ResponseOf<Routes[K]>>;
};

/** The Retry-After header's whole seconds: never less than the wait. */
function retryAfterSeconds(retryAfterMs: number): number {
  return Math.ceil(retryAfterMs / 1000);
}

function notFound(what: string): ApiError {
  return new ApiError('NotFound', 404, `no ${what}`);
}

/**
 * Maps any thrown value to a status and a body that never holds a stack
 * trace. Only the API's own errors (and the framework's refusals of a
 * request) are the client's: a typed error of a lower layer thrown by a read
 * (a corrupt block file, a value out of a formula's range) is the node's
 * failure, a 500 like any other, and its message (a file path) goes to the log.
 */
function errorAnswer(
  err: unknown,
  log: FastifyBaseLogger,
): { statusCode: number; body: ErrorBody; retryAfterMs?: number } {
  if (err instanceof ApiError) {
    return { statusCode: err.statusCode, body: err.body(), retryAfterMs: err.extra.retryAfterMs };
  }
  const e = err as Partial<FastifyError> & { validationContext?: string };
  if (e.validation !== undefined) {
    const { field, message } = refusalOf(e.validationContext ?? 'request', e.validation[0]);
    return { statusCode: 400, body: { code: 'BadRequest', message, field } };
  }
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        statusCode: 413,
        body: { code: 'BodyTooLarge', message: 'request body exceeds API_BODY_BYTES_MAX' },
      };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        statusCode: 415,
        body: {
          code: 'UnsupportedMediaType',
          message: 'send application/json or application/octet-stream',
        },
      };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { statusCode: 400, body: { code: 'MalformedJson', message: 'the body is not JSON' } };
  }
  if (err instanceof SyntaxError && e.statusCode === 400) {
    return { statusCode: 400, body: { code: 'MalformedJson', message: 'the body is not JSON' } };
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    // Fastify's own client errors (bad content length, …): their messages hold no internals.
    return {
      statusCode: e.statusCode,
      body: { code: 'BadRequest', message: String(e.message ?? 'bad request') },
    };
  }
  const errorId = randomUUID();
  log.error({ errorId, err }, 'internal error');
  return {
    statusCode: 500,
    body: { code: 'InternalError', message: 'internal error', errorId },
  };
}

const BASE64_PATTERN = /^[A-Za-z0-9+/]*={0,2}$/;
const HEX_PATTERN = /^(0x)?([0-9a-fA-F]{2})*$/;

function txBytes(body: BodyOf<Routes['submitTx']> | Buffer | undefined): Uint8Array {
  // Fastify validates no schema against a request that has no body at all.
  if (body === undefined || body === null) {
    throw new ApiError(
      'BadRequest',
      400,
      'body is required: the transaction as application/octet-stream or JSON { tx }',
      { field: 'body' },
    );
  }
  if (Buffer.isBuffer(body)) return new Uint8Array(body.buffer, body.byteOffset, body.length);
  if ((body.encoding ?? 'hex') === 'hex') {
    if (!HEX_PATTERN.test(body.tx)) {
      throw new ApiError('BadRequest', 400, 'body/tx is not even-length hex', { field: 'body/tx' });
    }
    return Uint8Array.from(Buffer.from(body.tx.replace(/^0x/, ''), 'hex'));
  }
  if (!BASE64_PATTERN.test(body.tx) || body.tx.length % 4 !== 0) {
    throw new ApiError('BadRequest', 400, 'body/tx is not padded base64', { field: 'body/tx' });
  }
  return Uint8Array.from(Buffer.from(body.tx, 'base64'));
}

/** What a commit waiter gets when the server closes before its transaction is final. */
const SERVER_CLOSED = 'closed';

/**
 * What a commit waiter ends with: the final view, undefined when cancelled
 * (its time ran out), or SERVER_CLOSED.
 */
type WaitEnd = TxView | undefined | typeof SERVER_CLOSED;

/**
 * Transactions some `wait=commit` request waits on, resolved from the block
 * stream, or by the mempool's drops (a `dropped` view) as they happen.
 */
class CommitWaiters {
  private readonly waiting = new Map<string, Set<(tx: WaitEnd) => void>>();
  private count = 0;
  private closed = false;
  private readonly countMax: number;
  /** Waiters per client address (clientKeyOf), each at most perIpMax. */
  private readonly byIp = new Map<string, number>();
  private readonly perIpMax: number;

  constructor(countMax: number, perIpMax: number) {
    this.countMax = countMax;
    this.perIpMax = perIpMax;
  }

  /** Starts waiting (before submitting, so a fast commit is not missed). */
  add(hash: string, ip: string): { promise: Promise<WaitEnd>; cancel: () => void } {
    if (this.closed) throw closingError();
    if (this.count >= this.countMax) {
      throw new ApiError('Unavailable', 503, 'too many transactions awaiting commit; retry later');
    }
    const ofIp = this.byIp.get(ip) ?? 0;
    if (ofIp >= this.perIpMax) {
      throw new ApiError(
        'Unavailable',
        503,
        `at most ${this.perIpMax} transactions of one address awaiting commit; retry later`,
      );
    }
    let resolve!: (tx: WaitEnd) => void;
    const promise = new Promise<WaitEnd>((r) => (resolve = r));
    let set = this.waiting.get(hash);
    if (set === undefined) this.waiting.set(hash, (set = new Set()));
    // Each waiter releases its address's place once, whether it is settled or cancelled.
    let held = true;
    const release = (tx: WaitEnd) => {
      if (held) {
        held = false;
        const n = (this.byIp.get(ip) ?? 1) - 1;
        if (n === 0) this.byIp.delete(ip);
        else this.byIp.set(ip, n);
      }
      resolve(tx);
    };
    set.add(release);
    this.count++;
    this.byIp.set(ip, ofIp + 1);
    const cancel = () => {
      const s = this.waiting.get(hash);
      if (s === undefined || !s.delete(release)) return;
      this.count--;
      if (s.size === 0) this.waiting.delete(hash);
      release(undefined);
    };
    return { promise, cancel };
  }

  settle(tx: TxView): void {
    const set = this.waiting.get(tx.hash);
    if (set === undefined) return;
    this.waiting.delete(tx.hash);
    this.count -= set.size;
    for (const release of set) release(tx);
  }

  /** The server closes: every waiter is answered so (not as timed out), and no more are taken. */
  closeAll(): void {
    this.closed = true;
    for (const set of this.waiting.values()) for (const release of set) release(SERVER_CLOSED);
    this.waiting.clear();
    this.count = 0;
  }
}

function makeHandlers(
  view: NodeView,
  limits: ApiLimits,
  ipLimiter: RateLimiter,
  accountLimiter: RateLimiter,
  waiters: CommitWaiters,
): Handlers {
  return {
    status: () => view.read().status(),
    validators: () => {
      const read = view.read();
      return { height: read.height, validators: read.validators() };
    },
    instruments: () => {
      const read = view.read();
      return { height: read.height, instruments: read.instruments() };
    },
    ticker: ({ params }) => {
      const read = view.read();
      return read.ticker(params.instrument) ?? noInstrument(read, params.instrument);
    },
    book: ({ params, query }) => {
      const read = view.read();
      return (
        read.book(params.instrument, query.depth ?? L.API_BOOK_DEPTH_DEFAULT) ??
        noInstrument(read, params.instrument)
      );
    },
    trades: ({ params, query }) => {
      const read = view.read();
      const trades = read.trades(params.instrument, query.limit ?? L.API_TRADES_DEFAULT);
      if (trades === undefined) return noInstrument(read, params.instrument);
      return { instrument: params.instrument, height: read.height, trades };
    },
    account: ({ params, query }) =>
      view.read().account(params.address.toLowerCase(), query.subaccount) ??
      notFoundOf(`account ${params.address}`),
    tx: ({ params }) => view.read().tx(params.hash) ?? notFoundOf(`transaction ${params.hash}`),
    block: ({ params }) =>
      view.read().block(params.height) ?? notFoundOf(`block at height ${params.height}`),
    consensus: () => {
      const read = view.read();
      return read.consensus?.() ?? notFoundOf('consensus state (this node does not publish it)');
    },
    risk: () => {
      const read = view.read();
      return read.risk?.() ?? notFoundOf('risk state (this node does not publish it)');
    },
    submitTx: async ({ query, body, ip }) => {
      const bytes = txBytes(body);
      if (bytes.length > L.TX_BYTES_MAX) {
        throw new ApiError('Oversize', 413, `${bytes.length} bytes exceeds TX_BYTES_MAX`);
      }
      const refundAccount = limitSubmission(bytes, ip, ipLimiter, accountLimiter);
      const hash = toHex(sha256(bytes));
      const wait = query.wait === 'commit';
      let waiter: ReturnType<CommitWaiters['add']> | undefined;
      let result: SubmitResult;
      try {
        waiter = wait ? waiters.add(hash, ip) : undefined;
        result = await view.submit(bytes);
      } catch (err) {
        // No place among the waiters (503), or a failed submission (a 500),
        // which gives back its place: kept, the waiter would hold it for
        // good, and its address's share of them with it.
        waiter?.cancel();
        refundAccount();
        throw err;
      }
      if (!result.ok) {
        waiter?.cancel();
        refundAccount();
        const extra = result.field !== undefined ? { field: result.field } : {};
        throw new ApiError(result.code, statusOfCode(result.code), result.message, extra);
      }
      if (waiter === undefined) return { hash, status: 'pending' };
      const timeoutMs = query.timeoutMs ?? limits.waitCommitMsDefault;
      const final = await waitFinal(
        view,
        hash,
        waiter,
        Math.min(timeoutMs, limits.waitCommitMsMax),
      );
      if (final.status === 'rejected' || final.status === 'dropped') {
        // Refused in its block, or let go by the mempool before any block held it
        // (Evicted, or the committed state's refusal: TX_DROP_CODES).
        const code = final.code ?? 'Rejected';
        throw new ApiError(code, statusOfCode(code), final.message ?? code, { hash });
      }
      return final;
    },
  };
}

/**
 * The client address of an upgrade request, as fastify's req.ip gives it for
 * HTTP: behind a trusted proxy (trustProxy), the right-most X-Forwarded-For
 * entry, the one that proxy wrote (those left of it are the client's own
 * claims); otherwise the socket's peer.
 */
function clientIpOf(req: IncomingMessage, trustProxy: boolean): string {
  const peer = req.socket.remoteAddress ?? '';
  if (!trustProxy) return peer;
  const forwarded = req.headers['x-forwarded-for'];
  const last = (Array.isArray(forwarded) ? forwarded.join(',') : forwarded)
    ?.split(',')
    .pop()
    ?.trim();
  return last !== undefined && last !== '' ? last : peer;
}

export { clientKeyOf };

function notFoundOf(what: string): never {
  throw notFound(what);
}

/** An instrument with no market now: 404, saying how it ended when the node remembers that. */
function noInstrument(read: ReadModel, instrument: string): never {
  const ended = read.ended(instrument);
  if (ended === undefined) throw notFound(`instrument ${instrument}`);
  throw new ApiError('NotFound', 404, endedMessage(ended));
}

/**
 * The rate buckets of a submission, taken before any node work, so a flood
 * costs the node nothing. A batch of n actions takes n tokens of the
 * account's bucket (execution costs per action) and, beyond the request's
 * own token of the address's bucket (onRequest, or the WebSocket message's),
 * one more per API_IP_BATCH_ACTIONS_PER_TOKEN further actions (handling it is
 * one request); a bucket short of them refuses the whole batch. Returns
 * what gives the account's back, for a submission the node does not admit:
 * the account is read from unchecked bytes, and anyone may write any account
 * there (with a signature that does not verify, or as a copy of one of its
 * old transactions), which must not use up that account's allowance.
 */
function limitSubmission(
  bytes: Uint8Array,
  ip: string,
  ipLimiter: RateLimiter,
  accountLimiter: RateLimiter,
): () => void {
  let tx: SignedTx;
  try {
    tx = decodeSignedTx(bytes);
  } catch {
    // Not decodable: the node's checks answer with the precise code.
    return () => {};
  }
  const count = tx.action.kind === 'batch' ? Math.max(1, tx.action.actions.length) : 1;
  const ipExtra = Math.floor((count - 1) / L.API_IP_BATCH_ACTIONS_PER_TOKEN);
  const account = toHex(tx.account);
  // Both buckets checked before either is taken from: a refused batch costs nothing.
  const ipWaitMs = ipExtra > 0 ? ipLimiter.check(ip, ipExtra) : 0;
  if (ipWaitMs > 0) {
    throw new ApiError('RateLimited', 429, 'too many requests from this address', {
      retryAfterMs: ipWaitMs,
    });
  }
  const accountWaitMs = accountLimiter.check(account, count);
  if (accountWaitMs > 0) {
    throw new ApiError('RateLimited', 429, 'too many transactions from this account', {
      retryAfterMs: accountWaitMs,
    });
  }
  if (ipExtra > 0) ipLimiter.take(ip, ipExtra);
  accountLimiter.take(account, count);
  return () => accountLimiter.refund(account, count);
}

/**
 * A wait=commit the server ends by closing: with the hash of one it had
 * submitted, which may still commit (as after a timeout); without, one it
 * took no more.
 */
function closingError(hash?: string): ApiError {
  if (hash === undefined) {
    return new ApiError('Unavailable', 503, 'the server is shutting down: nothing was submitted');
  }
  return new ApiError(
    'Unavailable',
    503,
    'the server is shutting down before the transaction was final; it may still commit',
    { hash },
  );
}

async function waitFinal(
  view: NodeView,
  hash: string,
  waiter: { promise: Promise<WaitEnd>; cancel: () => void },
  timeoutMs: number,
): Promise<TxView> {
  let now: TxView | undefined;
  try {
    now = view.read().tx(hash);
  } catch (err) {
    waiter.cancel();
    throw err;
  }
  if (now !== undefined && now.status !== 'pending') {
    waiter.cancel();
    return now;
  }
  const timer = setTimeout(waiter.cancel, timeoutMs);
  const final = await waiter.promise;
  clearTimeout(timer);
  if (final === SERVER_CLOSED) throw closingError(hash);
  if (final === undefined) {
    throw new ApiError(
      'CommitTimeout',
      504,
      `not final after ${timeoutMs} ms; it may still commit`,
      {
        hash,
      },
    );
  }
  return final;
}

function fastifySchema(def: RouteDef): Record<string, unknown> {
  const schema: Record<string, unknown> = {
    response: { 200: def.response.json, '4xx': errorSchema.json, '5xx': errorSchema.json },
    querystring: def.query?.json ?? NO_QUERY,
  };
  if (def.params !== undefined) schema.params = def.params.json;
  if (def.body !== undefined) {
    // Only JSON bodies are checked against the schema; raw bytes are checked as a transaction.
    schema.body = { content: { 'application/json': { schema: def.body.json } } };
  }
  return schema;
}

/**
 * For a route with an integer in its path or query, or a query at all:
 * refuses a query field given more than once, and an integer not written as
 * plain decimal digits, before the schema's coercion reads them (check.ts).
 */
function decimalIntegersOnly(def: RouteDef): {
  preValidation?: (req: FastifyRequest) => Promise<void>;
} {
  const integers = (s: JsonSchema | undefined) =>
    Object.values((s?.properties ?? {}) as Record<string, JsonSchema>).some(
      (p) => p.type === 'integer',
    );
  const named = Object.keys(def.query?.json.properties ?? {}).length > 0;
  if (!integers(def.params?.json) && !integers(def.query?.json) && !named) return {};
  return {
    preValidation: async (req) => {
      const loose =
        repeatedFieldOf('querystring', def.query?.json, req.query) ??
        looseIntegerOf('params', def.params?.json, req.params) ??
        looseIntegerOf('querystring', def.query?.json, req.query);
      if (loose !== undefined) {
        throw new ApiError('BadRequest', 400, loose.message, { field: loose.field });
      }
    },
  };
}

/**
 * A raw HTTP answer on a socket no route handles (a refused upgrade, an
 * unparsable request); `headers`: more header lines, each ending in CRLF.
 */
function rawAnswer(
  socket: Duplex,
  status: string,
  body: ErrorBody,
  close = true,
  headers = '',
): void {
  const text = JSON.stringify(body);
  const retry =
    body.retryAfterMs === undefined
      ? ''
      : `retry-after: ${retryAfterSeconds(body.retryAfterMs)}\r\n`;
  const head = `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n${retry}${headers}connection: close\r\n\r\n`;
  if (close) {
    // Closed both ways once the answer is out: end() alone leaves the socket
    // open for a client that never closes its side, and an upgrade's socket
    // counts against its address (and no server timeout watches it).
    socket.once('finish', () => socket.destroy());
    socket.end(head + text);
  } else {
    socket.write(head + text);
  }
}

/** Node's HTTP parser refused the request (malformed, headers too large, too slow). */
function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  // A request already being answered (its headers parsed and routed, the parser
  // failing on its body) has its answer: a second one would be read as the
  // answer to the client's next request. Node's own handler looks the same.
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } | null })
    ._httpMessage;
  const answered = inFlight?.headersSent === true;
  if (error.code !== 'ECONNRESET' && !socket.destroyed && socket.writable && !answered) {
    if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      rawAnswer(
        socket,
        '408 Request Timeout',
        {
          code: 'BadRequest',
          message: 'the request did not arrive in time',
        },
        false,
      );
    } else if (error.code === 'HPE_HEADER_OVERFLOW') {
      rawAnswer(
        socket,
        '431 Request Header Fields Too Large',
        {
          code: 'BadRequest',
          message: 'the request headers are too large',
        },
        false,
      );
    } else {
      rawAnswer(
        socket,
        '400 Bad Request',
        {
          code: 'BadRequest',
          message: 'the request is not valid HTTP/1.1',
        },
        false,
      );
    }
  }
  socket.destroy();
}

export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const limits: ApiLimits = { ...DEFAULT_API_LIMITS, ...options.limits };
  const nowMs = options.nowMs ?? (() => performance.now());
  const view = options.view;
  const app: FastifyInstance = Fastify({
    ...(options.logger !== undefined ? { loggerInstance: options.logger } : { logger: false }),
    bodyLimit: limits.bodyBytesMax,
    // A body naming __proto__ (or constructor.prototype) is parsed as JSON.parse
    // does, into an own field that sets no prototype, and refused by its schema
    // as a field it does not name: Fastify's default answers "not JSON" instead.
    onProtoPoisoning: 'ignore',
    onConstructorPoisoning: 'ignore',
    // A slow client is answered 408 (answerClientError) once its headers or its
    // whole request take too long. Node stops the clock when the body is read,
    // so a wait=commit request's wait is bounded by waitCommitMsMax alone.
    requestTimeout: limits.requestTimeoutMs,
    http: {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      connectionsCheckingInterval: limits.timeoutCheckMs,
    },
    // One hop: req.ip is the address the proxy saw, the right-most X-Forwarded-For entry.
    trustProxy: options.trustProxy === true ? (_address: string, hop: number) => hop === 0 : false,
    // A request Node's HTTP parser refuses never reaches a route: answered here
    // with the API's error body instead of Fastify's own.
    clientErrorHandler: answerClientError,
    // A path the router cannot decode, or a parameter past its length, is refused
    // before any route or hook: the API's error body instead of Fastify's own.
    frameworkErrors: (err: FastifyError, _req: FastifyRequest, reply: FastifyReply) => {
      const message =
        err.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? 'a path parameter is too long'
          : 'the path is not a valid URL';
      void reply.status(400).send({ code: 'BadRequest', message });
    },
  }) as unknown as FastifyInstance;
  const log = app.log;

  // The SDK checks its arguments with the same validators (check.ts): the path
  // and the query are text read as numbers, a JSON body's types are its own.
  app.setValidatorCompiler(({ schema, httpPart }) => validatorOf(httpPart ?? 'body', schema));

  // JSON and raw bytes only: a text body would otherwise reach the handler as a string.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser(
    'application/octet-stream',
    { parseAs: 'buffer', bodyLimit: limits.bodyBytesMax },
    (_req, body, done) => done(null, body),
  );

  const ipLimiter = new RateLimiter(
    { perSecond: limits.ipRequestsPerS, burst: limits.ipBurstRequests },
    limits.rateBucketsMax,
    nowMs,
  );
  const accountLimiter = new RateLimiter(
    { perSecond: limits.accountTxsPerS, burst: limits.accountBurstTxs },
    limits.rateBucketsMax,
    nowMs,
  );
  const waiters = new CommitWaiters(limits.commitWaitersMax, limits.commitWaitersPerIpMax);
  // The waiters read transactions only: no account updates are built for them.
  const unsubscribe = view.subscribe(
    (u) => {
      for (const tx of u.txs) waiters.settle(tx);
    },
    { any: () => false, has: () => false },
  );
  // A transaction the mempool lets go of is answered at once: no block will
  // bring it to this node's waiters (an evicted one may still commit elsewhere).
  const unsubscribeDropped = view.subscribeDropped((drop) =>
    waiters.settle({ hash: drop.hash, status: 'dropped', code: drop.code, message: drop.message }),
  );

  app.addHook('onRequest', async (req: FastifyRequest) => {
    const retryAfterMs = ipLimiter.take(clientKeyOf(req.ip));
    if (retryAfterMs > 0) {
      throw new ApiError('RateLimited', 429, 'too many requests from this address', {
        retryAfterMs,
      });
    }
  });

  app.setErrorHandler((err, req, reply) => {
    const answer = errorAnswer(err, req.log ?? log);
    if (answer.retryAfterMs !== undefined) {
      reply.header('retry-after', retryAfterSeconds(answer.retryAfterMs));
    }
    reply.status(answer.statusCode).send(answer.body);
  });
  app.setNotFoundHandler((req, reply) => {
    reply
      .status(404)
      .send({ code: 'NotFound', message: `no route ${req.method} ${shownName(req.url)}` });
  });

  const handlers = makeHandlers(view, limits, ipLimiter, accountLimiter, waiters);
  for (const name of Object.keys(routes) as RouteName[]) {
    const def = routes[name] as RouteDef;
    const handler = handlers[name] as (input: {
      params: unknown;
      query: unknown;
      body: unknown;
      ip: string;
    }) => unknown;
    app.route({
      method: def.method,
      url: def.path,
      schema: fastifySchema(def),
      ...decimalIntegersOnly(def),
      handler: async (req) =>
        handler({
          params: req.params,
          query: req.query ?? {},
          body: req.body,
          ip: clientKeyOf(req.ip),
        }),
    });
  }

  const document = openApiDocument();
  app.get(OPENAPI_PATH, { schema: { querystring: NO_QUERY } }, async () => document);
  app.get(WS_PATH, { schema: { querystring: NO_QUERY } }, async () => {
    throw new ApiError('UpgradeRequired', 426, 'connect with a WebSocket upgrade');
  });

  const submitter: WsSubmitter = {
    takeIp: (ip) => ipLimiter.take(ip),
    // POST /v1/tx's handler, so both paths answer alike.
    submit: async (r, ip) => {
      try {
        const data = await handlers.submitTx({
          params: undefined,
          query: {
            ...(r.wait !== undefined ? { wait: r.wait } : {}),
            ...(r.timeoutMs !== undefined ? { timeoutMs: r.timeoutMs } : {}),
          },
          body: { tx: r.tx, ...(r.encoding !== undefined ? { encoding: r.encoding } : {}) },
          ip,
        });
        return { ok: true, data };
      } catch (err) {
        const answer = errorAnswer(err, log);
        const retry = answer.retryAfterMs;
        const status = answer.statusCode;
        // The body's fields are the message's here: `submit/tx`, as the socket names its others.
        const body = answer.body;
        if (body.field?.startsWith('body/') === true) {
          const field = `submit/${body.field.slice('body/'.length)}`;
          body.message = body.message.replace(body.field, field);
          body.field = field;
        }
        return {
          ok: false,
          error: {
            ...body,
            status,
            ...(retry !== undefined ? { retryAfterMs: retry } : {}),
          },
        };
      }
    },
  };
  const hub = new WsHub(view, limits, nowMs, submitter, (errorId, err) =>
    log.error({ errorId, err }, 'internal error'),
  );
  if (options.trustProxy !== true) {
    const connectionsMax = Math.max(
      limits.connectionsPerIpMax,
      limits.ipBurstRequests + limits.wsConnectionsPerIpMax,
    );
    const connections = new Map<string, number>();
    app.server.on('connection', (socket: Socket) => {
      const ip = clientKeyOf(socket.remoteAddress ?? '');
      const open = connections.get(ip) ?? 0;
      if (open >= connectionsMax) {
        socket.destroy();
        return;
      }
      connections.set(ip, open + 1);
      socket.once('close', () => {
        const n = (connections.get(ip) ?? 1) - 1;
        if (n === 0) connections.delete(ip);
        else connections.set(ip, n);
      });
    });
  }
  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.wsMessageBytesMax });
  // An upgrade ws refuses (not a GET, no valid key, an unknown version, a bad
  // protocol header) gets the API's error body, not ws's text/html one. Its
  // messages name the header and hold nothing internal.
  wss.on('wsClientError', (error: Error, socket: Duplex, req: IncomingMessage) => {
    if (req.method !== 'GET') {
      // As any request of a method no route takes.
      const message = `no route ${String(req.method)} ${shownName(req.url ?? '')}`;
      return rawAnswer(socket, '404 Not Found', { code: 'NotFound', message });
    }
    // RFC 6455 4.4: a refused version is answered with the versions spoken.
    const versions = /Version/.test(error.message) ? 'sec-websocket-version: 13, 8\r\n' : '';
    rawAnswer(
      socket,
      '400 Bad Request',
      { code: 'BadRequest', message: error.message },
      true,
      versions,
    );
  });
  const perIp = new Map<string, number>();
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // The HTTP server hands an upgrade's socket over without its own error
    // listener: a client resetting it while it is refused (or before ws takes
    // it) would be an unhandled 'error', which ends the process.
    socket.on('error', () => socket.destroy());
    const [path, query] = (req.url ?? '').split('?', 2);
    const ip = clientKeyOf(clientIpOf(req, options.trustProxy === true));
    const refuse = (status: string, body: ErrorBody) => rawAnswer(socket, status, body);
    if (path !== WS_PATH) {
      return refuse('404 Not Found', {
        code: 'NotFound',
        message: `no WebSocket at ${shownName(path ?? '')}`,
      });
    }
    const retryAfterMs = ipLimiter.take(ip);
    if (retryAfterMs > 0) {
      return refuse('429 Too Many Requests', {
        code: 'RateLimited',
        message: 'too many requests from this address',
        retryAfterMs,
      });
    }
    // The endpoint takes no query parameters, like every route without a query schema.
    const unknown = new URLSearchParams(query ?? '').keys().next();
    if (unknown.done !== true) {
      const field = `querystring/${shownName(unknown.value)}`;
      return refuse('400 Bad Request', {
        code: 'BadRequest',
        message: `${field} is not a known field`,
        field,
      });
    }
    const open = perIp.get(ip) ?? 0;
    if (open >= limits.wsConnectionsPerIpMax) {
      // No Retry-After: no time frees a place, only closing one of this address's connections.
      return refuse('429 Too Many Requests', {
        code: 'TooManyConnections',
        message: `at most ${limits.wsConnectionsPerIpMax} WebSocket connections from one address`,
      });
    }
    perIp.set(ip, open + 1);
    // Counted down when the socket closes, whether or not the upgrade succeeded.
    socket.once('close', () => {
      const n = (perIp.get(ip) ?? 1) - 1;
      if (n === 0) perIp.delete(ip);
      else perIp.set(ip, n);
    });
    wss.handleUpgrade(req, socket, head, (ws) => hub.attach(ws, ip, socket));
  });

  options.register?.(app);
  const address = await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 });
  // Once listening, an 'error' is a failed accept (a network error on a
  // connection being taken): unhandled, it would end the node's process.
  app.server.on('error', (error: NodeJS.ErrnoException) =>
    app.log.warn({ code: error.code }, 'API connection not accepted'),
  );
  return {
    url: address,
    app,
    hub,
    async close() {
      unsubscribe();
      unsubscribeDropped();
      waiters.closeAll();
      hub.close();
      for (const client of wss.clients) client.terminate();
      wss.close();
      await app.close();
    },
  };
}
