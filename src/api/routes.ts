// Every HTTP route, defined once: method, path, parameters, query, body and
// response schema. The server (server.ts) registers them, the OpenAPI document
// (openapi.ts) describes them, and the SDK (client/) types its calls with them.

import {
  API_BOOK_DEPTH_MAX,
  API_TRADES_MAX,
  API_WAIT_COMMIT_MS_MAX,
  TX_BYTES_MAX,
  WS_SUBMIT_ID_CHARS_MAX,
} from '../lib/limits.ts';
import { REJECT_CODES } from '../exchange/errors.ts';
import { ACTION_KINDS, SIDES } from '../exchange/tx/types.ts';
import {
  array,
  boolean,
  describe,
  either,
  integer,
  integerPair,
  literal,
  nullable,
  object,
  optional,
  string,
} from './schema.ts';
import type { Infer, Schema } from './schema.ts';
import * as V from './view.ts';

// --- field schemas --------------------------------------------------------------

const QUOTE_PATTERN = '^-?[0-9]+$';
const quote = () => string({ pattern: QUOTE_PATTERN, maxLength: 40 });
const decimal = () => string({ pattern: '^-?[0-9]+(\\.[0-9]+)?$', maxLength: 64 });
export const HASH_PATTERN = '^[0-9a-f]{64}$';
export const ADDRESS_PATTERN = '^0x[0-9a-fA-F]{40}$';
export const INSTRUMENT_PATTERN = '^[A-Z0-9]+(-[A-Z0-9]+)*$';
const hash = () => string({ pattern: HASH_PATTERN });
const address = () => string({ pattern: ADDRESS_PATTERN });
const instrument = () => string({ pattern: INSTRUMENT_PATTERN, maxLength: 48 });
const count = () => integer({ minimum: 0 });
const side = () => literal(SIDES);

/** Checks, at compile time, that a schema's type is the view type and names all its fields. */
type Check<S, T> = [Infer<S>] extends [T]
  ? [Exclude<keyof T, keyof Infer<S>>] extends [never]
    ? unknown
    : { missingFields: Exclude<keyof T, keyof Infer<S>> }
  : { typeMismatch: T };
function view<T>() {
  return <S extends Schema<unknown>>(s: S & Check<S, T>): Schema<T> & { optional: false } =>
    s as unknown as Schema<T> & { optional: false };
}

// --- view schemas (view.ts types, checked against them) --------------------------

export const validatorSchema = view<V.ValidatorView>()(
  object({
    publicKey: string({ pattern: '^[0-9a-f]{64}$' }),
    address: address(),
    stakeQuote: quote(),
    votingPower: count(),
    jailed: boolean(),
    jailReason: optional(string()),
    jailedHeight: optional(count()),
    slashedQuote: optional(quote()),
  }),
);

export const feeTierSchema = view<V.FeeTierView>()(
  object({
    volumeQuoteMin: quote(),
    makerFeePpm: integer({ minimum: -1_000_000, maximum: 1_000_000 }),
    takerFeePpm: integer({ minimum: 0, maximum: 1_000_000 }),
  }),
);

export const statusSchema = view<V.StatusView>()(
  object({
    chainId: string(),
    height: count(),
    lastBlockTimeMs: count(),
    appHash: string(),
    validators: array(validatorSchema),
    syncing: boolean(),
    version: string(),
    executionVersion: count(),
    wireVersion: count(),
    emergencyHalt: optional(boolean()),
    haltReason: optional(string()),
    insuranceQuote: optional(quote()),
    feeTiers: optional(array(feeTierSchema)),
  }),
);

export const instrumentSchema = view<V.InstrumentView>()(
  object({
    instrument: instrument(),
    kind: literal(V.INSTRUMENT_KINDS),
    underlying: string(),
    tickSizeQuote: quote(),
    lotsPerBase: count(),
    minSizeLots: count(),
    maxSizeLots: count(),
    status: literal(V.INSTRUMENT_STATUSES),
    auctionEndMs: optional(count()),
    expiryMs: optional(count()),
    strikeTicks: optional(count()),
    optionType: optional(literal(V.OPTION_TYPES)),
    initialMarginPpm: optional(count()),
    maintenanceMarginPpm: optional(count()),
    imfStepQuote: optional(quote()),
    imfStepPpm: optional(count()),
    liquidationQuoteMaxPerBlock: optional(quote()),
    priceBandPpm: optional(count()),
    openInterestCapLots: optional(count()),
  }),
);

const greeksSchema = view<V.GreeksView>()(
  object({ delta: decimal(), gamma: decimal(), vega: decimal(), theta: decimal() }),
);

export const tickerSchema = view<V.TickerView>()(
  object({
    instrument: instrument(),
    height: count(),
    markTicks: count(),
    indexTicks: count(),
    openInterestLots: count(),
    fundingRatePpm: optional(integer()),
    bestBidTicks: optional(count()),
    bestBidLots: optional(count()),
    bestAskTicks: optional(count()),
    bestAskLots: optional(count()),
    lastTradeTicks: optional(count()),
    timeMs: optional(count()),
    markIv: optional(decimal()),
    greeks: optional(greeksSchema),
  }),
);

const levels = () => describe(array(integerPair()), '[priceTicks, sizeLots] pairs, best first');

const BOOK_FIELDS = {
  instrument: instrument(),
  height: count(),
  seq: count(),
  bids: levels(),
  asks: levels(),
};
export const bookSchema = view<V.BookView>()(object(BOOK_FIELDS));

export const tradeSchema = view<V.TradeView>()(
  object({
    tradeId: count(),
    instrument: instrument(),
    priceTicks: count(),
    sizeLots: count(),
    takerSide: side(),
    height: count(),
    timeMs: count(),
    liquidation: optional(boolean()),
    auction: optional(boolean()),
  }),
);

export const positionSchema = view<V.PositionView>()(
  object({
    instrument: instrument(),
    sizeLots: integer(),
    entryPriceTicks: count(),
    unrealizedPnlQuote: quote(),
    realizedPnlQuote: quote(),
    fundingQuote: quote(),
  }),
);

export const orderSchema = view<V.OrderView>()(
  object({
    orderId: count(),
    instrument: instrument(),
    clientOrderId: optional(string()),
    side: side(),
    priceTicks: count(),
    sizeLots: count(),
    remainingLots: count(),
    filledLots: count(),
    status: literal(V.ORDER_STATUSES),
    reduceOnly: boolean(),
    auction: optional(boolean()),
  }),
);

/**
 * An account update's order: open after the block (as an account view lists
 * it), or gone by its end, when a market order placed without a limit has no
 * priceTicks.
 */
const updatedOrderSchema = view<V.UpdatedOrderView>()(
  either(
    orderSchema,
    object({
      orderId: count(),
      instrument: instrument(),
      clientOrderId: optional(string()),
      side: side(),
      priceTicks: optional(
        describe(count(), "the order's limit; absent for a market order placed without one"),
      ),
      sizeLots: count(),
      remainingLots: count(),
      filledLots: count(),
      status: literal(V.ORDER_STATUSES.filter((s): s is V.GoneOrderStatus => s !== 'open')),
      reduceOnly: boolean(),
      auction: optional(boolean()),
    }),
  ),
);

export const fillSchema = view<V.FillView>()(
  object({
    tradeId: count(),
    orderId: count(),
    instrument: instrument(),
    side: side(),
    priceTicks: count(),
    sizeLots: count(),
    feeQuote: quote(),
    liquidity: literal(V.FILL_LIQUIDITIES),
    height: count(),
    timeMs: count(),
  }),
);

const subaccountSchema = view<V.SubaccountView>()(
  object({
    subaccount: integer({ minimum: 0, maximum: 255 }),
    cashQuote: quote(),
    equityQuote: quote(),
    marginUsedQuote: quote(),
    maintenanceMarginQuote: quote(),
    marginFreeQuote: quote(),
    positions: array(positionSchema),
    openOrders: array(orderSchema),
  }),
);

export const accountSchema = view<V.AccountView>()(
  object({
    address: address(),
    height: count(),
    subaccounts: array(subaccountSchema),
    openOrdersTruncated: optional(boolean()),
  }),
);

const actionResultSchema = view<V.ActionResultView>()(
  object({
    kind: literal(ACTION_KINDS),
    ok: boolean(),
    code: optional(literal(REJECT_CODES)),
    message: optional(string()),
    orderId: optional(count()),
    orderStatus: optional(literal(V.ORDER_RESULT_STATUSES)),
    reason: optional(literal(V.ORDER_REASONS)),
    filledLots: optional(count()),
    restedLots: optional(count()),
    cancelledLots: optional(count()),
    count: optional(count()),
  }),
);

export const txSchema = view<V.TxView>()(
  object({
    hash: hash(),
    status: literal(V.TX_STATUSES),
    height: optional(count()),
    index: optional(count()),
    code: optional(literal(V.TX_CODES)),
    message: optional(string()),
    actions: optional(array(actionResultSchema)),
    resultUnavailable: optional(boolean()),
  }),
);

export const evidenceSchema = view<V.EvidenceView>()(
  object({
    validator: address(),
    height: count(),
    round: count(),
    voteType: literal(V.VOTE_TYPES),
  }),
);

export const blockEventSchema = view<V.BlockEventView>()(
  object({
    type: literal(V.BLOCK_EVENT_TYPES),
    height: count(),
    timeMs: count(),
    instrument: optional(instrument()),
    address: optional(address()),
    subaccount: optional(count()),
    counterparty: optional(address()),
    counterpartySubaccount: optional(count()),
    sizeLots: optional(count()),
    priceTicks: optional(count()),
    amountQuote: optional(quote()),
    ratePpm: optional(integer()),
    endMs: optional(count()),
    priceQuote: optional(quote()),
    positions: optional(count()),
    orders: optional(count()),
    validator: optional(address()),
    offenceHeight: optional(count()),
  }),
);

export const oracleSchema = view<V.OracleView>()(
  object({
    underlying: string({ maxLength: 16 }),
    priceQuote: optional(quote()),
    observations: array(object({ validator: address(), priceQuote: quote() })),
  }),
);

export const blockSchema = view<V.BlockView>()(
  object({
    height: count(),
    timeMs: count(),
    hash: string(),
    appHash: string(),
    proposer: string(),
    txs: array(
      view<V.BlockTxView>()(
        object({
          hash: hash(),
          ok: boolean(),
          code: optional(literal(V.TX_CODES)),
          resultUnavailable: optional(boolean()),
        }),
      ),
    ),
    round: optional(count()),
    signers: optional(
      array(view<V.CommitSignerView>()(object({ validator: address(), delayMs: integer() }))),
    ),
    evidence: optional(array(evidenceSchema)),
    events: optional(array(blockEventSchema)),
    insuranceQuote: optional(quote()),
    oracle: optional(array(oracleSchema)),
  }),
);

export const consensusSchema = view<V.ConsensusView>()(
  object({
    height: count(),
    round: count(),
    step: literal(V.CONSENSUS_STEPS),
    peers: count(),
    lastCommitLatencyMs: count(),
    recentBlocks: count(),
    validators: array(
      view<V.ConsensusValidatorView>()(
        object({
          address: address(),
          votingPower: count(),
          signedLastCommit: boolean(),
          lastCommitDelayMs: optional(integer()),
          signedRecent: count(),
          proposedRecent: count(),
          self: boolean(),
        }),
      ),
    ),
  }),
);

export const riskSchema = view<V.RiskView>()(
  object({
    height: count(),
    insuranceQuote: quote(),
    insurance: array(
      view<V.InsurancePointView>()(
        object({ height: count(), timeMs: count(), insuranceQuote: quote() }),
      ),
    ),
    events: array(blockEventSchema),
    oracle: array(oracleSchema),
  }),
);

/** The `data` of a WebSocket `ended` message (docs/api.md, "Settled markets"). */
export const marketEndSchema = view<V.MarketEndView>()(
  object({
    instrument: instrument(),
    reason: literal(V.MARKET_END_REASONS),
    height: count(),
    timeMs: count(),
    priceQuote: optional(quote()),
    valueQuote: optional(quote()),
  }),
);

// --- WebSocket channels (docs/api.md, "WebSocket") ----------------------------------

/** A book channel's update: its window's changed levels, applied on the book at prevSeq. */
export const bookDeltaSchema = view<V.BookDelta>()(
  object({
    instrument: instrument(),
    seq: count(),
    prevSeq: count(),
    bids: levels(),
    asks: levels(),
  }),
);

const settlementSchema = view<V.SettlementView>()(
  object({
    instrument: instrument(),
    sizeLots: integer(),
    valueQuote: quote(),
    height: count(),
  }),
);

/** What one block changed for one subaccount: an account channel's update lists them. */
export const accountUpdateSchema = view<V.AccountUpdate>()(
  object({
    address: address(),
    subaccount: integer({ minimum: 0, maximum: 255 }),
    orders: array(updatedOrderSchema),
    fills: array(fillSchema),
    positions: array(positionSchema),
    settlements: optional(array(settlementSchema)),
    cashQuote: optional(quote()),
    equityQuote: optional(quote()),
    marginUsedQuote: optional(quote()),
    maintenanceMarginQuote: optional(quote()),
    marginFreeQuote: optional(quote()),
  }),
);

const tradesDataSchema = object({ trades: array(tradeSchema) });

/**
 * The `data` of each channel's snapshot and update messages, by the
 * channel's kind (its name up to the colon): the server sends them, the
 * SDK types a subscription's events with them (client/channels.ts).
 */
export const channelSchemas = {
  book: {
    /** The book to the depth of the window its updates keep (WS_BOOK_DEPTH_LEVELS). */
    snapshot: object({ ...BOOK_FIELDS, depth: count() }),
    update: bookDeltaSchema,
  },
  trades: { snapshot: tradesDataSchema, update: tradesDataSchema },
  ticker: { snapshot: nullable(tickerSchema), update: tickerSchema },
  account: {
    /** null: the address holds no account yet. */
    snapshot: nullable(accountSchema),
    update: object({ subaccounts: array(accountUpdateSchema) }),
  },
  /** The snapshot: the last block, null before the first. */
  blocks: { snapshot: nullable(blockSchema), update: blockSchema },
} as const;

export type ChannelKind = keyof typeof channelSchemas;
/** The `data` of a channel's snapshot or update. */
export type ChannelData<K extends ChannelKind, T extends 'snapshot' | 'update'> = Infer<
  (typeof channelSchemas)[K][T]
>;
/** The channels a market's end closes, with an `ended` message (marketEndSchema). */
export const MARKET_CHANNEL_KINDS = [
  'book',
  'trades',
  'ticker',
] as const satisfies readonly ChannelKind[];
export type MarketChannelKind = (typeof MARKET_CHANNEL_KINDS)[number];
/** A channel's name: `book:<instrument>`, `trades:…`, `ticker:…`, `account:<address>`, `blocks`. */
export type ChannelName = `${Exclude<ChannelKind, 'blocks'>}:${string}` | 'blocks';
/** The kind of the channel named N; of a name known only when the code runs, any kind. */
export type ChannelKindOf<N extends string> = N extends 'blocks'
  ? 'blocks'
  : N extends `${infer K extends Exclude<ChannelKind, 'blocks'>}:${string}`
    ? K
    : ChannelKind;

export const errorSchema = object({
  code: string(),
  message: string(),
  field: optional(string()),
  hash: optional(string()),
  retryAfterMs: optional(count()),
  errorId: optional(string()),
});

// --- routes -------------------------------------------------------------------------

/** The HTTP statuses of error answers (docs/api.md, "Errors"). */
export type ErrorStatus = 400 | 403 | 404 | 409 | 410 | 413 | 415 | 422 | 429 | 500 | 503 | 504;
/** A route's error answers: each status it can give and what it means there. */
export type ErrorAnswers = Readonly<Partial<Record<ErrorStatus, string>>>;

/** What any route can answer: a schema refusal, the address's rate limit, an internal error. */
export const ROUTE_ERRORS = {
  400: 'Bad request: a parameter, query or body breaks the schema (unknown ones included)',
  429: 'Rate limited: retryAfterMs, and a Retry-After header',
  500: 'Internal error (details logged under errorId)',
} as const satisfies ErrorAnswers;

export interface RouteDef<
  P extends Schema<unknown> | undefined = Schema<unknown> | undefined,
  Q extends Schema<unknown> | undefined = Schema<unknown> | undefined,
  B extends Schema<unknown> | undefined = Schema<unknown> | undefined,
  R extends Schema<unknown> = Schema<unknown>,
> {
  method: 'GET' | 'POST';
  /** Fastify form: `/v1/book/:instrument`. */
  path: string;
  summary: string;
  params: P;
  query: Q;
  body: B;
  response: R;
  /** The error answers of this route besides ROUTE_ERRORS (which it may describe more closely). */
  errors: ErrorAnswers;
  /** Also accepts the raw transaction as application/octet-stream. */
  rawBody?: boolean;
}

function route<
  P extends Schema<unknown> | undefined,
  Q extends Schema<unknown> | undefined,
  B extends Schema<unknown> | undefined,
  R extends Schema<unknown>,
>(def: RouteDef<P, Q, B, R>): RouteDef<P, Q, B, R> {
  return def;
}

type InferOr<S, Else> = S extends Schema<infer T> ? T : Else;
export type ParamsOf<R extends RouteDef> = InferOr<R['params'], undefined>;
export type QueryOf<R extends RouteDef> = InferOr<R['query'], undefined>;
export type BodyOf<R extends RouteDef> = InferOr<R['body'], undefined>;
export type ResponseOf<R extends RouteDef> = Infer<R['response']>;

const instrumentParams = object({ instrument: instrument() });

/** The transaction encodings a JSON submission may use. */
export const TX_ENCODINGS = ['hex', 'base64'] as const;

/** A submitted transaction's fields: the body of POST /v1/tx and of the WebSocket `submit` op. */
const SUBMIT_BODY = {
  tx: describe(
    string({ maxLength: 2 * TX_BYTES_MAX, minLength: 1 }),
    'the canonical signed transaction bytes',
  ),
  encoding: optional(literal(TX_ENCODINGS)),
};
/** How a submission answers: the query of POST /v1/tx and fields of the WebSocket `submit` op. */
const SUBMIT_QUERY = {
  wait: optional(literal(['none', 'commit'] as const)),
  timeoutMs: optional(integer({ minimum: 1, maximum: API_WAIT_COMMIT_MS_MAX })),
};

export const routes = {
  status: route({
    method: 'GET',
    path: '/v1/status',
    summary:
      "Chain id, height, last block time, app hash, validators, sync state and the build's versions",
    params: undefined,
    query: undefined,
    body: undefined,
    response: statusSchema,
    errors: {},
  }),
  validators: route({
    method: 'GET',
    path: '/v1/validators',
    summary: 'The validator set with stake and voting state',
    params: undefined,
    query: undefined,
    body: undefined,
    response: object({ height: count(), validators: array(validatorSchema) }),
    errors: {},
  }),
  instruments: route({
    method: 'GET',
    path: '/v1/instruments',
    summary: 'Every instrument: kind, tick, lot, minimum size, trading status',
    params: undefined,
    query: undefined,
    body: undefined,
    response: object({ height: count(), instruments: array(instrumentSchema) }),
    errors: {},
  }),
  ticker: route({
    method: 'GET',
    path: '/v1/ticker/:instrument',
    summary: 'Mark, index, funding, open interest, best bid and ask (options: mark IV, greeks)',
    params: instrumentParams,
    query: undefined,
    body: undefined,
    response: tickerSchema,
    errors: { 404: 'No such instrument' },
  }),
  book: route({
    method: 'GET',
    path: '/v1/book/:instrument',
    summary: 'The L2 order book to a depth, with its sequence number',
    params: instrumentParams,
    query: object({ depth: optional(integer({ minimum: 1, maximum: API_BOOK_DEPTH_MAX })) }),
    body: undefined,
    response: bookSchema,
    errors: { 404: 'No such instrument' },
  }),
  trades: route({
    method: 'GET',
    path: '/v1/trades/:instrument',
    summary: 'Recent trades, oldest first',
    params: instrumentParams,
    query: object({ limit: optional(integer({ minimum: 1, maximum: API_TRADES_MAX })) }),
    body: undefined,
    response: object({ instrument: instrument(), height: count(), trades: array(tradeSchema) }),
    errors: { 404: 'No such instrument' },
  }),
  account: route({
    method: 'GET',
    path: '/v1/account/:address',
    summary: 'Balances, positions, open orders and margin per subaccount',
    params: object({ address: address() }),
    query: object({ subaccount: optional(integer({ minimum: 0, maximum: 255 })) }),
    body: undefined,
    response: accountSchema,
    errors: {
      404: 'No such account (it never held collateral)',
      503: 'Unavailable: the node halted and serves no account state',
    },
  }),
  tx: route({
    method: 'GET',
    path: '/v1/tx/:hash',
    summary:
      "A transaction by hash: pending, committed or rejected with its result, or dropped from this node's mempool",
    params: object({ hash: hash() }),
    query: undefined,
    body: undefined,
    response: txSchema,
    errors: { 404: 'No such transaction known to this node' },
  }),
  block: route({
    method: 'GET',
    path: '/v1/block/:height',
    summary: 'A committed block: header fields, transaction hashes and result codes',
    params: object({ height: integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) }),
    query: undefined,
    body: undefined,
    response: blockSchema,
    errors: { 404: 'No block at this height yet' },
  }),
  consensus: route({
    method: 'GET',
    path: '/v1/consensus',
    summary:
      "This node's consensus state (height, round, step, peers, commit latency) and each validator's recent signing",
    params: undefined,
    query: undefined,
    body: undefined,
    response: consensusSchema,
    errors: { 404: 'This node does not publish its consensus state' },
  }),
  risk: route({
    method: 'GET',
    path: '/v1/risk',
    summary:
      'Insurance fund now and per recent block, recent liquidations and deleveraging, the oracle by validator',
    params: undefined,
    query: undefined,
    body: undefined,
    response: riskSchema,
    errors: { 404: 'This node does not publish its risk state' },
  }),
  submitTx: route({
    method: 'POST',
    path: '/v1/tx',
    summary:
      'Submit a signed transaction (canonical bytes as hex or base64 in JSON, or application/octet-stream); ' +
      'wait=commit answers once it is final',
    params: undefined,
    query: object(SUBMIT_QUERY),
    body: object(SUBMIT_BODY),
    rawBody: true,
    response: txSchema,
    errors: {
      400:
        'Bad request: the schema, the encoding, or the transaction checks ' +
        '(Malformed, WrongChain, BadField, BadSignature)',
      403: 'AgentNotAllowed; NotPermitted (at admission, or with wait=commit)',
      409:
        'DuplicateTx, or DuplicateNonce (a nonce the committed state holds; with wait=commit ' +
        'and the hash, also once admitted: it will never commit); ' +
        'with wait=commit, DuplicateClientOrderId',
      410:
        'Evicted (wait=commit), with the hash: this node dropped it from its mempool to make ' +
        'room before any block held it; it may still commit, or be submitted again',
      413: 'BodyTooLarge (API_BODY_BYTES_MAX) or Oversize (TX_BYTES_MAX)',
      415: 'UnsupportedMediaType: send application/json or application/octet-stream',
      422:
        'Committed but rejected by the exchange (wait=commit), with its code and the hash; ' +
        'or refused as its block would refuse it: Expired, StaleNonce (at admission, or with ' +
        'wait=commit and the hash once admitted: it will never commit), FutureNonce (at ' +
        "admission: its nonce NONCE_FUTURE_MS_MAX, 1 h, or more ahead of the last block's time)",
      503:
        'MempoolFull, or Unavailable (too many transactions awaiting commit; or, with wait=commit, ' +
        'the server shutting down: with the hash once submitted, and it may still commit)',
      504: 'CommitTimeout (wait=commit): not final in time, with the hash; it may still commit',
    },
  }),
} as const;

export type Routes = typeof routes;
export type RouteName = keyof Routes;

/** The server's WebSocket endpoint (docs/api.md, "WebSocket"). */
export const WS_PATH = '/v1/ws';

/**
 * The WebSocket `submit` op: POST /v1/tx over the socket. `id` is the
 * client's own, echoed in the answer, so that answers (which arrive in
 * commit order, not request order, with wait=commit) can be matched.
 */
export const wsSubmitSchema = object({
  op: literal(['submit'] as const),
  id: string({ minLength: 1, maxLength: WS_SUBMIT_ID_CHARS_MAX }),
  ...SUBMIT_BODY,
  ...SUBMIT_QUERY,
});
export type WsSubmitRequest = Infer<typeof wsSubmitSchema>;
/** The OpenAPI document. */
export const OPENAPI_PATH = '/openapi.json';
