// Errors on the wire. Every error answer is { code, message } (plus `field`,
// `hash` or `retryAfterMs` where they help), with the same codes as the
// transaction and exchange layers where they apply (docs/api.md, "Errors").

import { ZommaError } from '../lib/errors.ts';

/**
 * Codes the API itself answers with (besides TxError, mempool and exchange
 * rejection codes), over HTTP and the WebSocket: docs/api.md lists each.
 */
export const API_ERROR_CODES = [
  /** A parameter, query, body or WebSocket message breaks its schema. */
  'BadRequest',
  /** The body (or a WebSocket message) is not valid JSON. */
  'MalformedJson',
  /** The body is larger than API_BODY_BYTES_MAX. */
  'BodyTooLarge',
  'UnsupportedMediaType',
  /** No such route, instrument, account, transaction, block or subscription. */
  'NotFound',
  'RateLimited',
  /** A WebSocket upgrade past the connections one client address may hold open. */
  'TooManyConnections',
  /** A subscription past WS_SUBSCRIPTIONS_MAX on one connection. */
  'TooManySubscriptions',
  /** A WebSocket submission past WS_SUBMITS_PENDING_MAX awaiting their answer. */
  'TooManyPending',
  /** A plain GET of the WebSocket endpoint. */
  'UpgradeRequired',
  /** `wait=commit` ran out of time; the transaction may still commit. */
  'CommitTimeout',
  /**
   * `wait=commit`: this node's mempool dropped the transaction to make room
   * before any block held it; it may still commit, or be submitted again.
   */
  'Evicted',
  /** A WebSocket subscription to a market that settled (or was retired): it has no more messages. */
  'MarketEnded',
  /** The server is at a limit (commit waiters), shutting down, or its node halted (no account state). */
  'Unavailable',
  'InternalError',
] as const;
export type ApiErrorCode = (typeof API_ERROR_CODES)[number];

export interface ErrorBody {
  code: string;
  message: string;
  field?: string;
  hash?: string;
  retryAfterMs?: number;
  /** InternalError: the id under which the server logged the details. */
  errorId?: string;
}

export class ApiError extends ZommaError {
  readonly statusCode: number;
  readonly extra: Omit<ErrorBody, 'code' | 'message'>;
  constructor(
    code: string,
    statusCode: number,
    message: string,
    extra: Omit<ErrorBody, 'code' | 'message'> = {},
  ) {
    super(code, message);
    this.statusCode = statusCode;
    this.extra = extra;
  }

  body(): ErrorBody {
    return { code: this.code, message: this.message, ...this.extra };
  }
}

/** HTTP status of a code from the tx layer, the mempool or the exchange. */
export function statusOfCode(code: string): number {
  switch (code) {
    case 'Oversize':
      return 413;
    case 'AgentNotAllowed':
    case 'NotPermitted':
      return 403;
    case 'DuplicateTx':
    case 'DuplicateNonce':
    case 'DuplicateClientOrderId':
      return 409;
    case 'Evicted':
      return 410;
    case 'MempoolFull':
      return 503;
    case 'Malformed':
    case 'WrongChain':
    case 'BadSignature':
    case 'BadField':
    case 'DecodeError':
    case 'BadHex':
    case 'BadAddress':
      return 400;
    default:
      // Exchange rejections of a committed transaction (InsufficientMargin, …).
      return 422;
  }
}
