// Typed HTTP calls, derived from the route definitions (../routes.ts): one
// generic request() and a named method per route.

import { ZommaError } from '../../lib/errors.ts';
import {
  API_CLIENT_ANSWER_TIMEOUT_MS_MAX,
  API_REQUEST_TIMEOUT_MS,
  API_WAIT_COMMIT_MS_DEFAULT,
} from '../../lib/limits.ts';
import { checkRouteInput } from '../check.ts';
import { routes } from '../routes.ts';
import type { BodyOf, ParamsOf, QueryOf, ResponseOf, RouteDef, Routes } from '../routes.ts';
import type { TxView } from '../view.ts';

/** An error answer from a node: the same code as on the wire (docs/api.md, "Errors"). */
export class ZommaApiError extends ZommaError {
  readonly status: number;
  readonly field: string | undefined;
  /** The transaction concerned (CommitTimeout, exchange rejections with wait=commit). */
  readonly hash: string | undefined;
  readonly retryAfterMs: number | undefined;
  constructor(
    status: number,
    body: { code: string; message: string; field?: string; hash?: string; retryAfterMs?: number },
    options?: ErrorOptions,
  ) {
    super(body.code, body.message, options);
    this.status = status;
    this.field = body.field;
    this.hash = body.hash;
    this.retryAfterMs = body.retryAfterMs;
  }
}

/**
 * A request the SDK refused before sending it (checkRouteInput): the
 * BadRequest the node would answer, with its field and message, found
 * without a round trip. Nothing reached the node.
 */
export class ZommaRequestRefused extends ZommaApiError {}

/**
 * Why a request got no answer, from what fetch threw: its cause's message
 * (`connect ECONNREFUSED 127.0.0.1:27001`, `getaddrinfo ENOTFOUND host`, `bad
 * port`), with the system code when the message does not name it. fetch's own
 * message is only "fetch failed".
 */
export function unreachableReason(error: unknown): string {
  let inner: unknown = error;
  while (inner instanceof Error && inner.cause instanceof Error) inner = inner.cause;
  if (!(inner instanceof Error)) return String(inner);
  // Both addresses of a name refused (IPv4 and IPv6): each attempt's error is inside.
  const each = inner instanceof AggregateError ? inner.errors : [];
  const message =
    inner.message !== ''
      ? inner.message
      : each.map((e: unknown) => (e instanceof Error ? e.message : String(e))).join('; ');
  const code = (inner as { code?: unknown }).code;
  if (typeof code === 'string' && !message.includes(code)) {
    return message === '' ? code : `${code}: ${message}`;
  }
  return message === '' ? String(inner) : message;
}

/**
 * Whether an error answer to a route the SDK knows comes from something other
 * than the node's API (another server at that URL: the node's metrics port, a
 * proxy in front of nothing): the API serves every route the SDK asks for,
 * so it never answers 405, and its 404s say what is missing (an instrument,
 * an account …) in a message that does not begin "no route". `message`: the
 * answer's message, undefined when it had none (or was not JSON).
 */
function notTheApi(status: number, message: unknown): boolean {
  if (status === 405) return true;
  if (status !== 404) return false;
  return typeof message !== 'string' || message.startsWith('no route ');
}

type Optional<K extends string, T> = undefined extends T ? { [P in K]?: T } : { [P in K]: T };
export type RequestInput<R extends RouteDef> = Optional<'params', ParamsOf<R>> &
  Optional<'query', QueryOf<R>> &
  Optional<'body', BodyOf<R> | Uint8Array>;

export interface HttpClientOptions {
  /** The node's base URL, e.g. http://127.0.0.1:26657. */
  url: string;
  /** Default: the global fetch (Node 20). */
  fetch?: typeof fetch;
  /**
   * How long a request waits for the node's whole answer, ms, beyond the
   * commit wait of a `wait=commit` submission (its timeoutMs, else the node's
   * default): a node that took the connection and never answers (its process
   * stopped or hung) is then NodeUnreachable, instead of holding the caller
   * for fetch's own five minutes. Default API_REQUEST_TIMEOUT_MS, within which
   * a live node answers or closes the request.
   */
  answerTimeoutMs?: number;
}

export class HttpClient {
  readonly url: string;
  private readonly fetchFn: typeof fetch;
  private readonly answerTimeoutMs: number;

  constructor(options: HttpClientOptions) {
    this.url = options.url.replace(/\/+$/, '');
    this.fetchFn = options.fetch ?? fetch;
    const answerMs = options.answerTimeoutMs ?? API_REQUEST_TIMEOUT_MS;
    // At most API_CLIENT_ANSWER_TIMEOUT_MS_MAX: past 2^31 - 1 ms, with a commit
    // wait added, Node fires a timer at once, and every request would fail.
    if (
      !Number.isSafeInteger(answerMs) ||
      answerMs < 1 ||
      answerMs > API_CLIENT_ANSWER_TIMEOUT_MS_MAX
    ) {
      throw new RangeError(
        `answerTimeoutMs must be a whole number of ms from 1 to ${API_CLIENT_ANSWER_TIMEOUT_MS_MAX}: ${answerMs}`,
      );
    }
    this.answerTimeoutMs = answerMs;
  }

  /**
   * Calls one route; throws ZommaApiError with the node's code on an error
   * answer, and NodeUnreachable without one (nothing within answerTimeoutMs
   * plus the commit wait of a wait=commit submission, the time the node may
   * take on purpose).
   */
  async request<R extends RouteDef>(route: R, input: RequestInput<R>): Promise<ResponseOf<R>> {
    const { params, query, body } = input as { params?: object; query?: object; body?: unknown };
    // Refused here as the node would refuse it, rather than sent, or quietly sent without.
    const refusal = checkRouteInput(route, { params, query, body });
    if (refusal !== undefined)
      throw new ZommaRequestRefused(400, { code: 'BadRequest', ...refusal });
    let path = route.path.replace(/:([A-Za-z0-9_]+)/g, (_, name: string) =>
      encodeURIComponent(String((params as Record<string, unknown>)[name])),
    );
    const search = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v !== undefined) search.set(k, String(v));
    }
    if (search.size > 0) path += `?${search}`;
    const init: RequestInit = { method: route.method, headers: {} };
    if (body instanceof Uint8Array) {
      init.body = body;
      init.headers = { 'content-type': 'application/octet-stream' };
    } else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'content-type': 'application/json' };
    }
    const answerMs = this.answerTimeoutMs + commitWaitOf(route, query);
    // A timer of its own rather than AbortSignal.timeout(), whose timer does
    // not keep its signal alive: the abort must come however long it takes.
    const late = new AbortController();
    const timer = setTimeout(() => late.abort(), answerMs);
    init.signal = late.signal;
    let response: Response;
    let text: string;
    try {
      response = await this.fetchFn(this.url + path, init);
      text = await response.text();
    } catch (error) {
      if (error instanceof ZommaError) throw error;
      const reason = late.signal.aborted
        ? `no answer within ${answerMs / 1000} s`
        : unreachableReason(error);
      throw new ZommaApiError(
        0,
        { code: 'NodeUnreachable', message: `cannot reach ${this.url} (${reason})` },
        { cause: error },
      );
    } finally {
      clearTimeout(timer);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      const message = `HTTP ${response.status}: not a JSON answer`;
      throw new ZommaApiError(response.status, {
        code: response.ok ? 'MalformedJson' : 'HttpError',
        message: notTheApi(response.status, undefined)
          ? `${message}${this.notTheApiHint(route)}`
          : message,
      });
    }
    if (!response.ok) {
      // Not the node's error body (a proxy's `null`, a list): only its status is known.
      const e = (typeof json === 'object' && json !== null ? json : {}) as {
        code?: unknown;
        message?: unknown;
      };
      const message = typeof e.message === 'string' ? e.message : `HTTP ${response.status}`;
      throw new ZommaApiError(response.status, {
        ...e,
        code: typeof e.code === 'string' ? e.code : 'HttpError',
        message: notTheApi(response.status, e.message)
          ? `${message}${this.notTheApiHint(route)}`
          : message,
      });
    }
    return json as ResponseOf<R>;
  }

  /** What a route's "no such route" answer adds: the URL may be some other server's. */
  private notTheApiHint(route: RouteDef): string {
    return ` (${this.url} may not be the node's API: the API serves ${route.method} ${route.path})`;
  }

  status() {
    return this.request(routes.status, {});
  }
  validators() {
    return this.request(routes.validators, {});
  }
  instruments() {
    return this.request(routes.instruments, {});
  }
  ticker(instrument: string) {
    return this.request(routes.ticker, { params: { instrument } });
  }
  book(instrument: string, depth?: number) {
    return this.request(routes.book, {
      params: { instrument },
      query: depth === undefined ? {} : { depth },
    });
  }
  trades(instrument: string, limit?: number) {
    return this.request(routes.trades, {
      params: { instrument },
      query: limit === undefined ? {} : { limit },
    });
  }
  account(address: string, subaccount?: number) {
    return this.request(routes.account, {
      params: { address },
      query: subaccount === undefined ? {} : { subaccount },
    });
  }
  tx(hash: string) {
    return this.request(routes.tx, { params: { hash } });
  }
  block(height: number) {
    return this.request(routes.block, { params: { height } });
  }
  /** Sends canonical transaction bytes; with wait 'commit', answers once final (or throws). */
  submitTx(
    bytes: Uint8Array,
    options: { wait?: 'none' | 'commit'; timeoutMs?: number } = {},
  ): Promise<TxView> {
    const query: QueryOf<Routes['submitTx']> = {};
    if (options.wait !== undefined) query.wait = options.wait;
    if (options.timeoutMs !== undefined) query.timeoutMs = options.timeoutMs;
    return this.request(routes.submitTx, { query, body: bytes });
  }
}

/**
 * How long the node may hold a request on purpose, ms: a wait=commit
 * submission's commit wait (its timeoutMs, else the node's default), whether
 * it comes through submitTx or the generic request(). The query is the one
 * checkRouteInput accepted: timeoutMs a whole number, or its decimal digits.
 */
function commitWaitOf(route: RouteDef, query: object | undefined): number {
  if (route !== routes.submitTx) return 0;
  const q = (query ?? {}) as { wait?: unknown; timeoutMs?: unknown };
  if (q.wait !== 'commit') return 0;
  return q.timeoutMs === undefined ? API_WAIT_COMMIT_MS_DEFAULT : Number(q.timeoutMs);
}
