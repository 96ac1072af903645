// Per-block execution results kept across restarts: what each transaction of a
// block did (the exchange's TxResult, or null for bytes that failed their
// checks at execution) and the appHash after the block. The node saves them
// before it publishes the block, so `GET /v1/tx/:hash` and block queries
// answer after a restart with what the API answered before it. The file store
// is a record log (storage/record_log.ts) with one record per height, like the
// block store; results are deterministic, so a height lost in a crash is
// written again when restart re-executes its block.
//
// The node saves each block's details (the exchange events the view publishes
// and the insurance fund after the block) with its results, on the live path
// and when restart re-executes a block alike, so a block answers the same on
// every node, restarted or not. A record ends after the
// results when it has no details (every record written before details
// existed); otherwise a format byte (DETAILS_FORMAT) and the details follow.

import type { Codec, Reader, Writer } from '../codec/wire.ts';
import { decode, encode } from '../codec/wire.ts';
import type { TxResult } from '../exchange/index.ts';
import { REJECT_CODES } from '../exchange/index.ts';
import { TAKER_REASONS, TAKER_STATUSES } from '../exchange/book/index.ts';
import type { ActionResult, ExchangeEvent, Fill, OrderOutcome } from '../exchange/results.ts';
import { ACTION_KINDS } from '../exchange/tx/types.ts';
import { BLOCK_EVENT_TYPES } from '../api/view.ts';
import { assert } from '../lib/assert.ts';
import {
  BLOCK_TXS_MAX,
  RESULTS_SYNC_EVERY_HEIGHTS,
  STORED_RESULTS_BYTES_MAX,
  TX_BYTES_MAX,
} from '../lib/limits.ts';
import type { Log } from './log.ts';
import { silentLog } from './log.ts';
import type { RecordLog, RecordRef } from './storage/record_log.ts';
import { openRecordLog } from './storage/record_log.ts';

export interface BlockResults {
  readonly height: number;
  /** The application hash after the block. */
  readonly appHash: Uint8Array;
  /** Per transaction in block order; null: the bytes failed their checks at execution. */
  readonly results: readonly (TxResult | null)[];
  /** Absent: saved before details were kept. */
  readonly details?: BlockDetails;
}

/** What the block view publishes beyond the transactions' results. */
export interface BlockDetails {
  /** The block's exchange events (STORED_EVENT_TYPES), in execution order. */
  readonly events: readonly ExchangeEvent[];
  /** The insurance fund after the block. */
  readonly insuranceQuote: bigint;
  /**
   * Whether `events` holds the block's uncross trades (auctionTrade): every
   * record since details format 2. With them, the block's trades can be
   * listed again after a restart (the view's recent trades).
   */
  readonly auctionTradesKept: boolean;
}

/**
 * The exchange events a block's details keep (and its view publishes): the
 * API's block events, and the liquidations' fills (shown as trades).
 */
export const PUBLISHED_EVENT_TYPES: ReadonlySet<ExchangeEvent['type']> = new Set<
  ExchangeEvent['type']
>(['liquidationFill', ...BLOCK_EVENT_TYPES]);

/** The events a block's details keep: those published, and the uncross trades (public trades). */
export const STORED_EVENT_TYPES: ReadonlySet<ExchangeEvent['type']> = new Set([
  ...PUBLISHED_EVENT_TYPES,
  'auctionTrade',
]);

/** Where a node keeps BlockResults by height. */
export interface ResultsStore {
  /** Highest height held, 0 when empty. */
  lastHeight(): number;
  /**
   * Saves the results of `height`. Heights follow each other; saving a held
   * height again does nothing; a height past a gap restarts the store there.
   */
  save(results: BlockResults): void;
  /**
   * The results of `height`, or null if not held: never saved (executed
   * before the log existed, or below where it restarted), or a record that
   * cannot be read (damaged: the file store logs it).
   */
  load(height: number): BlockResults | null;
  /**
   * Adds the details of `height` to its results, when `height` is the last one
   * saved and has none yet; otherwise does nothing.
   */
  saveDetails(height: number, details: BlockDetails): void;
  /** Makes every save durable. */
  flush(): void;
  close(): void;
}

const TEXT_BYTES_MAX = 1_024;
const ACTIONS_MAX = 1_024;
const FILLS_MAX = 100_000;
/** Events of one block in a record: far above what a block makes (liquidations, funding, halts). */
const EVENTS_MAX = 1_000_000;
/**
 * The byte after the results when details follow. Format 2 keeps the uncross
 * trades among the events (format 1 did not: such a record cannot tell whether
 * its block had any).
 */
const DETAILS_FORMAT = 2;
const QUOTE_BITS_MAX = 128;
const EVENT_TYPES = [
  'orderExpired',
  'funding',
  'liquidation',
  'deleverage',
  'insuranceCover',
  'depositCredited',
  'marketHalted',
  'marketResumed',
  // Appended in the order they came, so older records decode unchanged.
  'validatorJailed',
  'liquidationFill',
  'marketListed',
  'marketSettled',
  'auctionStarted',
  'auctionTrade',
  'auctionEnded',
  'makerCancelled',
  'liquidationCancels',
  'marketRiskChanged',
  'feeTiersChanged',
] as const satisfies readonly ExchangeEvent['type'][];
const PUBLIC_KEY_BYTES = 32;
const REJECT_CODE_SET: ReadonlySet<string> = new Set(REJECT_CODES);
const ACTION_KIND_SET: ReadonlySet<string> = new Set(ACTION_KINDS);

function oneOf<T extends string>(r: Reader, field: string, allowed: ReadonlySet<string>): T {
  const text = r.string(field, TEXT_BYTES_MAX);
  if (!allowed.has(text)) throw r.error(field, `unknown value ${JSON.stringify(text)}`);
  return text as T;
}

const fillCodec: Codec<Fill> = {
  write(w, f) {
    w.uvarint(f.makerOrderId).uvarint(f.makerAccount).uvarint(f.priceTicks).uvarint(f.sizeLots);
    w.ivarintBig(f.takerFeeQuote).ivarintBig(f.makerFeeQuote);
  },
  read(r) {
    return {
      makerOrderId: r.uvarint('makerOrderId'),
      makerAccount: r.uvarint('makerAccount'),
      priceTicks: r.uvarint('priceTicks'),
      sizeLots: r.uvarint('sizeLots'),
      takerFeeQuote: r.ivarintBig('takerFeeQuote', 128),
      makerFeeQuote: r.ivarintBig('makerFeeQuote', 128),
    };
  },
};

const orderCodec: Codec<OrderOutcome> = {
  write(w, o) {
    w.uvarint(o.orderId).u8(TAKER_STATUSES.indexOf(o.status));
    w.u8(o.reason === null ? 0 : TAKER_REASONS.indexOf(o.reason) + 1);
    w.uvarint(o.filledLots).uvarint(o.restedLots).uvarint(o.cancelledLots);
    w.uvarint(o.fills.length);
    for (const f of o.fills) fillCodec.write(w, f);
  },
  read(r) {
    const orderId = r.uvarint('orderId');
    const status = TAKER_STATUSES[r.tag('status', TAKER_STATUSES.length)]!;
    const reasonTag = r.tag('reason', TAKER_REASONS.length + 1);
    const reason = reasonTag === 0 ? null : TAKER_REASONS[reasonTag - 1]!;
    const filledLots = r.uvarint('filledLots');
    const restedLots = r.uvarint('restedLots');
    const cancelledLots = r.uvarint('cancelledLots');
    const count = r.uvarint('fills', FILLS_MAX);
    const fills: Fill[] = [];
    for (let i = 0; i < count; i++) fills.push(fillCodec.read(r, `fills[${i}]`));
    return { orderId, status, reason, filledLots, restedLots, cancelledLots, fills };
  },
};

const actionCodec: Codec<ActionResult> = {
  write(w, a) {
    w.bool(a.ok).string(a.kind, TEXT_BYTES_MAX);
    if (!a.ok) {
      w.string(a.code, TEXT_BYTES_MAX).string(a.message, TX_BYTES_MAX);
      return;
    }
    w.bool(a.order !== undefined);
    if (a.order !== undefined) orderCodec.write(w, a.order);
    w.bool(a.count !== undefined);
    if (a.count !== undefined) w.uvarint(a.count);
  },
  read(r) {
    const ok = r.bool('ok');
    const kind = oneOf<ActionResult['kind']>(r, 'kind', ACTION_KIND_SET);
    if (!ok) {
      const code = oneOf<TxResult['code'] & string>(r, 'code', REJECT_CODE_SET);
      return { ok, kind, code, message: r.string('message', TX_BYTES_MAX) };
    }
    const order = r.bool('hasOrder') ? orderCodec.read(r, 'order') : undefined;
    const count = r.bool('hasCount') ? r.uvarint('count') : undefined;
    return {
      ok,
      kind,
      ...(order !== undefined ? { order } : {}),
      ...(count !== undefined ? { count } : {}),
    };
  },
};

const txResultCodec: Codec<TxResult> = {
  write(w, t) {
    w.uvarint(t.index).bool(t.ok);
    w.bool(t.code !== undefined);
    if (t.code !== undefined) w.string(t.code, TEXT_BYTES_MAX);
    w.bool(t.message !== undefined);
    if (t.message !== undefined) w.string(t.message, TX_BYTES_MAX);
    w.uvarint(t.actions.length);
    for (const a of t.actions) actionCodec.write(w, a);
  },
  read(r) {
    const index = r.uvarint('index', BLOCK_TXS_MAX);
    const ok = r.bool('ok');
    const code = r.bool('hasCode')
      ? oneOf<TxResult['code'] & string>(r, 'code', REJECT_CODE_SET)
      : undefined;
    const message = r.bool('hasMessage') ? r.string('message', TX_BYTES_MAX) : undefined;
    const count = r.uvarint('actions', ACTIONS_MAX);
    const actions: ActionResult[] = [];
    for (let i = 0; i < count; i++) actions.push(actionCodec.read(r, `actions[${i}]`));
    return {
      index,
      ok,
      ...(code !== undefined ? { code } : {}),
      ...(message !== undefined ? { message } : {}),
      actions,
    };
  },
};

export const exchangeEventCodec: Codec<ExchangeEvent> = {
  write(w, e) {
    w.u8(EVENT_TYPES.indexOf(e.type));
    switch (e.type) {
      case 'orderExpired':
      case 'makerCancelled':
        w.string(e.market, TEXT_BYTES_MAX).uvarint(e.orderId).uvarint(e.account);
        return;
      case 'funding':
        w.string(e.market, TEXT_BYTES_MAX).ivarint(e.ratePpm).uvarint(e.markTicks);
        w.ivarintBig(e.paidQuote).ivarintBig(e.receivedQuote).ivarintBig(e.dustQuote);
        return;
      case 'liquidation':
        w.string(e.market, TEXT_BYTES_MAX).uvarint(e.account).uvarint(e.closedLots);
        w.ivarintBig(e.feeQuote);
        return;
      case 'liquidationCancels':
        w.uvarint(e.account).uvarint(e.orders);
        return;
      case 'liquidationFill':
        w.string(e.market, TEXT_BYTES_MAX).uvarint(e.account).uvarint(e.orderId);
        w.bool(e.side === 'buy');
        w.uvarint(e.makerAccount).uvarint(e.makerOrderId).uvarint(e.priceTicks);
        w.uvarint(e.sizeLots).ivarintBig(e.makerFeeQuote);
        return;
      case 'deleverage':
        w.string(e.market, TEXT_BYTES_MAX).uvarint(e.account).uvarint(e.counterparty);
        w.uvarint(e.sizeLots).uvarint(e.priceTicks);
        return;
      case 'insuranceCover':
      case 'depositCredited':
        w.uvarint(e.account).ivarintBig(e.amountQuote);
        return;
      case 'marketHalted':
      case 'marketResumed':
      case 'marketRiskChanged':
        w.string(e.market, TEXT_BYTES_MAX);
        return;
      case 'feeTiersChanged':
        return;
      case 'validatorJailed':
        w.fixed(e.validator, PUBLIC_KEY_BYTES).uvarint(e.offenceHeight).uvarintBig(e.burnedStake);
        return;
      case 'marketListed':
        w.string(e.market, TEXT_BYTES_MAX).uvarint(e.expiryMs);
        return;
      case 'marketSettled':
        w.string(e.market, TEXT_BYTES_MAX).uvarintBig(e.settlementPriceQuote);
        w.uvarintBig(e.valueQuote).uvarint(e.positions).uvarintBig(e.dustQuote);
        return;
      case 'auctionStarted':
        w.string(e.market, TEXT_BYTES_MAX).uvarint(e.priceTicks).uvarint(e.endMs);
        return;
      case 'auctionTrade':
        w.string(e.market, TEXT_BYTES_MAX).uvarint(e.buyOrderId).uvarint(e.sellOrderId);
        w.uvarint(e.buyAccount).uvarint(e.sellAccount).uvarint(e.priceTicks).uvarint(e.sizeLots);
        w.ivarintBig(e.buyFeeQuote).ivarintBig(e.sellFeeQuote);
        return;
      case 'auctionEnded':
        w.string(e.market, TEXT_BYTES_MAX).uvarint(e.priceTicks).uvarint(e.volumeLots);
        return;
    }
  },
  read(r) {
    const type = EVENT_TYPES[r.tag('type', EVENT_TYPES.length)]!;
    switch (type) {
      case 'orderExpired':
      case 'makerCancelled':
        return {
          type,
          market: r.string('market', TEXT_BYTES_MAX),
          orderId: r.uvarint('orderId'),
          account: r.uvarint('account'),
        };
      case 'funding':
        return {
          type,
          market: r.string('market', TEXT_BYTES_MAX),
          ratePpm: r.ivarint('ratePpm'),
          markTicks: r.uvarint('markTicks'),
          paidQuote: r.ivarintBig('paidQuote', QUOTE_BITS_MAX),
          receivedQuote: r.ivarintBig('receivedQuote', QUOTE_BITS_MAX),
          dustQuote: r.ivarintBig('dustQuote', QUOTE_BITS_MAX),
        };
      case 'liquidation':
        return {
          type,
          market: r.string('market', TEXT_BYTES_MAX),
          account: r.uvarint('account'),
          closedLots: r.uvarint('closedLots'),
          feeQuote: r.ivarintBig('feeQuote', QUOTE_BITS_MAX),
        };
      case 'liquidationCancels':
        return { type, account: r.uvarint('account'), orders: r.uvarint('orders') };
      case 'liquidationFill':
        return {
          type,
          market: r.string('market', TEXT_BYTES_MAX),
          account: r.uvarint('account'),
          orderId: r.uvarint('orderId'),
          side: r.bool('side') ? 'buy' : 'sell',
          makerAccount: r.uvarint('makerAccount'),
          makerOrderId: r.uvarint('makerOrderId'),
          priceTicks: r.uvarint('priceTicks'),
          sizeLots: r.uvarint('sizeLots'),
          makerFeeQuote: r.ivarintBig('makerFeeQuote', QUOTE_BITS_MAX),
        };
      case 'deleverage':
        return {
          type,
          market: r.string('market', TEXT_BYTES_MAX),
          account: r.uvarint('account'),
          counterparty: r.uvarint('counterparty'),
          sizeLots: r.uvarint('sizeLots'),
          priceTicks: r.uvarint('priceTicks'),
        };
      case 'insuranceCover':
      case 'depositCredited':
        return {
          type,
          account: r.uvarint('account'),
          amountQuote: r.ivarintBig('amountQuote', QUOTE_BITS_MAX),
        };
      case 'marketHalted':
      case 'marketResumed':
      case 'marketRiskChanged':
        return { type, market: r.string('market', TEXT_BYTES_MAX) };
      case 'feeTiersChanged':
        return { type };
      case 'validatorJailed':
        return {
          type,
          validator: r.fixed('validator', PUBLIC_KEY_BYTES).slice(),
          offenceHeight: r.uvarint('offenceHeight'),
          burnedStake: r.uvarintBig('burnedStake', QUOTE_BITS_MAX),
        };
      case 'marketListed':
        return {
          type,
          market: r.string('market', TEXT_BYTES_MAX),
          expiryMs: r.uvarint('expiryMs'),
        };
      case 'marketSettled':
        return {
          type,
          market: r.string('market', TEXT_BYTES_MAX),
          settlementPriceQuote: r.uvarintBig('settlementPriceQuote', QUOTE_BITS_MAX),
          valueQuote: r.uvarintBig('valueQuote', QUOTE_BITS_MAX),
          positions: r.uvarint('positions'),
          dustQuote: r.uvarintBig('dustQuote', QUOTE_BITS_MAX),
        };
      case 'auctionStarted':
        return {
          type,
          market: r.string('market', TEXT_BYTES_MAX),
          priceTicks: r.uvarint('priceTicks'),
          endMs: r.uvarint('endMs'),
        };
      case 'auctionTrade':
        return {
          type,
          market: r.string('market', TEXT_BYTES_MAX),
          buyOrderId: r.uvarint('buyOrderId'),
          sellOrderId: r.uvarint('sellOrderId'),
          buyAccount: r.uvarint('buyAccount'),
          sellAccount: r.uvarint('sellAccount'),
          priceTicks: r.uvarint('priceTicks'),
          sizeLots: r.uvarint('sizeLots'),
          buyFeeQuote: r.ivarintBig('buyFeeQuote', QUOTE_BITS_MAX),
          sellFeeQuote: r.ivarintBig('sellFeeQuote', QUOTE_BITS_MAX),
        };
      case 'auctionEnded':
        return {
          type,
          market: r.string('market', TEXT_BYTES_MAX),
          priceTicks: r.uvarint('priceTicks'),
          volumeLots: r.uvarint('volumeLots'),
        };
    }
  },
};

const blockDetailsCodec: Codec<BlockDetails> = {
  write(w, d) {
    assert(d.events.length <= EVENTS_MAX, `${d.events.length} events in one block`);
    w.ivarintBig(d.insuranceQuote).uvarint(d.events.length);
    for (const e of d.events) exchangeEventCodec.write(w, e);
  },
  read(r) {
    const insuranceQuote = r.ivarintBig('insuranceQuote', QUOTE_BITS_MAX);
    const count = r.uvarint('events', EVENTS_MAX);
    const events: ExchangeEvent[] = [];
    for (let i = 0; i < count; i++) events.push(exchangeEventCodec.read(r, `events[${i}]`));
    return { events, insuranceQuote, auctionTradesKept: true };
  },
};

export const blockResultsCodec: Codec<BlockResults> = {
  write(w: Writer, b: BlockResults) {
    w.uvarint(b.height).bytes(b.appHash, 64);
    w.uvarint(b.results.length);
    for (const t of b.results) {
      w.bool(t !== null);
      if (t !== null) txResultCodec.write(w, t);
    }
    if (b.details !== undefined) {
      // Details of format 1 are never written again: they lack the uncross trades.
      assert(b.details.auctionTradesKept, 'details written keep the uncross trades');
      w.u8(DETAILS_FORMAT);
      blockDetailsCodec.write(w, b.details);
    }
  },
  read(r: Reader) {
    const height = r.uvarint('height');
    const appHash = r.bytesField('appHash', 64).slice();
    const count = r.uvarint('results', BLOCK_TXS_MAX);
    const results: (TxResult | null)[] = [];
    for (let i = 0; i < count; i++) {
      results.push(r.bool(`results[${i}].present`) ? txResultCodec.read(r, `results[${i}]`) : null);
    }
    // Nothing after the results: a record without details (the format before them).
    if (r.remaining === 0) return { height, appHash, results };
    const format = r.u8('format');
    if (format !== 1 && format !== DETAILS_FORMAT) {
      throw r.error('format', `unknown record format ${format}`);
    }
    const details = blockDetailsCodec.read(r, 'details');
    return { height, appHash, results, details: { ...details, auctionTradesKept: format !== 1 } };
  },
};

/** Results in memory (tests, and nodes built without a data directory). */
export class MemoryResultsStore implements ResultsStore {
  private readonly byHeight = new Map<number, Uint8Array>();
  private last = 0;

  lastHeight(): number {
    return this.last;
  }

  save(results: BlockResults): void {
    if (this.byHeight.has(results.height)) return;
    if (results.height !== this.last + 1) this.byHeight.clear();
    this.byHeight.set(results.height, encode(blockResultsCodec, results));
    this.last = results.height;
  }

  load(height: number): BlockResults | null {
    const bytes = this.byHeight.get(height);
    return bytes === undefined ? null : decode(blockResultsCodec, bytes, 'results');
  }

  saveDetails(height: number, details: BlockDetails): void {
    if (height !== this.last) return;
    const held = this.load(height);
    if (held === null || held.details !== undefined) return;
    this.byHeight.set(height, encode(blockResultsCodec, { ...held, details }));
  }

  flush(): void {}

  close(): void {}
}

/**
 * Damaged records logged one by one (FileResultsStore.load); past it, the
 * heights already noted are all a store remembers, and one more line says so.
 */
export const DAMAGED_RECORDS_LOGGED_MAX = 1_000;

/**
 * Results in a record log: record i holds height base + i (base in the file
 * header). Saves are not synced on the spot: flush() is the barrier the node
 * calls before it saves a snapshot, the one thing that needs the results below
 * it (a restore re-executes, and so records again, every height after the
 * snapshot it starts from; restore.ts). A sync per height would cost an
 * fdatasync on every validator for every block; one in the background every
 * RESULTS_SYNC_EVERY_HEIGHTS keeps what the barrier has left to write small. A
 * save with its details (every save the node makes) is written at once; one
 * without waits in memory for them (saveDetails) and is written with them, or
 * as it is by the next save, load or flush.
 *
 * A record that cannot be read back (its payload fails its checksum, below
 * what the open checks: record_log.ts; it does not decode; it holds another
 * height) loads as null, as a height never saved, and is logged once. It stays
 * as it is: the log is only appended to, and a restart writes no height it
 * holds again, so the API shows that height's transactions without their
 * results (docs/operations.md, "Restarts and crashes").
 */
export class FileResultsStore implements ResultsStore {
  private base: number;
  private refs: RecordRef[];
  private pending: BlockResults | null = null;
  /** Records written since the last background sync was started. */
  private unsynced = 0;
  /** Heights whose damaged record was logged (at most DAMAGED_RECORDS_LOGGED_MAX). */
  private readonly damagedLogged = new Set<number>();

  constructor(
    private readonly log: RecordLog,
    base: number,
    refs: RecordRef[],
    private readonly logger: Log = silentLog,
  ) {
    this.base = base;
    this.refs = refs;
  }

  lastHeight(): number {
    if (this.pending !== null) return this.pending.height;
    return this.refs.length === 0 ? 0 : this.base + this.refs.length - 1;
  }

  save(results: BlockResults): void {
    this.writePending();
    const height = results.height;
    assert(Number.isSafeInteger(height) && height >= 1, `results height ${height}`);
    if (this.refs.length > 0 && height <= this.lastHeight()) return;
    if (this.refs.length === 0 ? height !== this.base : height !== this.lastHeight() + 1) {
      // A first record, or a gap (the results of the heights between were
      // never kept): the log restarts at this height.
      this.log.rewrite(height, this.log.size());
      this.refs = [];
    }
    this.base = height - this.refs.length;
    this.pending = results;
    // Nothing will join it: written now, so it is in the file before anything
    // the loop writes after this height (a snapshot, the next block).
    if (results.details !== undefined) this.writePending();
  }

  saveDetails(height: number, details: BlockDetails): void {
    const pending = this.pending;
    if (pending === null || pending.height !== height || pending.details !== undefined) return;
    this.pending = { ...pending, details };
    this.writePending();
  }

  load(height: number): BlockResults | null {
    this.writePending();
    if (!Number.isSafeInteger(height) || height < this.base) return null;
    const ref = this.refs[height - this.base];
    if (ref === undefined) return null;
    let decoded: BlockResults;
    try {
      decoded = decode(blockResultsCodec, this.log.read(ref), 'results');
    } catch (error) {
      this.noteDamaged(height, ref, error instanceof Error ? error.message : String(error));
      return null;
    }
    if (decoded.height !== height) {
      this.noteDamaged(height, ref, `the record holds the results of height ${decoded.height}`);
      return null;
    }
    return decoded;
  }

  /** Logs a record of `height` that cannot be read, once per height. */
  private noteDamaged(height: number, ref: RecordRef, error: string): void {
    if (this.damagedLogged.has(height)) return;
    if (this.damagedLogged.size > DAMAGED_RECORDS_LOGGED_MAX) return;
    this.damagedLogged.add(height);
    if (this.damagedLogged.size > DAMAGED_RECORDS_LOGGED_MAX) {
      this.logger.warn(
        { height, path: this.log.path },
        `more than ${DAMAGED_RECORDS_LOGGED_MAX} damaged results records: no more are logged until the node restarts`,
      );
      return;
    }
    this.logger.warn(
      { height, path: this.log.path, offset: ref.offset, error },
      "a stored results record cannot be read (damaged): the API shows this height's transactions without their results",
    );
  }

  flush(): void {
    this.writePending();
    if (this.log.needsSync) this.log.sync();
  }

  /**
   * Throws a failed sync of the last results (or an earlier background one
   * no one heard of). With `sync` false, writes nothing more and closes the
   * file as a crash would leave it (its storage was found replaced).
   */
  close(sync = true): void {
    if (!sync) {
      this.pending = null;
      this.log.close(false);
      return;
    }
    let error: unknown = null;
    try {
      this.writePending();
    } catch (thrown) {
      // The log failed earlier: the file is closed all the same, unsynced.
      error = thrown;
    }
    const closeError = this.log.close();
    if (error !== null) throw error;
    if (closeError !== null) throw closeError;
  }

  private writePending(): void {
    const pending = this.pending;
    if (pending === null) return;
    this.pending = null;
    this.refs.push(this.log.append(encode(blockResultsCodec, pending), false));
    if (++this.unsynced >= RESULTS_SYNC_EVERY_HEIGHTS) {
      this.unsynced = 0;
      this.log.syncInBackground();
    }
  }
}

/** Opens (or creates) the results log at `path`; a damaged record met later is logged to `log`. */
export function openFileResultsStore(path: string, log: Log = silentLog): FileResultsStore {
  const opened = openRecordLog(path, {
    magic: 'ZRES',
    recordBytesMax: STORED_RESULTS_BYTES_MAX,
    verifyPayloads: false,
  });
  return new FileResultsStore(opened.log, opened.base, opened.records, log);
}
