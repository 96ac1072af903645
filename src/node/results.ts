// Per-block execution results kept across restarts: what each transaction of a
// block did (the exchange's TxResult, or null for bytes that failed their
// checks at execution) and the appHash after the block. The node saves them
// before it publishes the block, so `GET /v1/tx/:hash` and block queries
// answer after a restart with what the API answered before it. The file store
// is a record log (storage/record_log.ts) with one record per height, like the
// block store; results are deterministic, so a height lost in a crash is
// written again when restart re-executes its block.

import type { Codec, Reader, Writer } from '../codec/wire.ts';
import { decode, encode } from '../codec/wire.ts';
import type { TxResult } from '../exchange/index.ts';
import { REJECT_CODES } from '../exchange/index.ts';
import type { ActionResult, Fill, OrderOutcome } from '../exchange/results.ts';
import { ACTION_KINDS } from '../exchange/tx/types.ts';
import { assert } from '../lib/assert.ts';
import { BLOCK_TXS_MAX, STORED_RESULTS_BYTES_MAX, TX_BYTES_MAX } from '../lib/limits.ts';
import type { RecordLog, RecordRef } from './storage/record_log.ts';
import { openRecordLog } from './storage/record_log.ts';

export interface BlockResults {
  readonly height: number;
  /** The application hash after the block. */
  readonly appHash: Uint8Array;
  /** Per transaction in block order; null: the bytes failed their checks at execution. */
  readonly results: readonly (TxResult | null)[];
}

/** Where a node keeps BlockResults by height. */
export interface ResultsStore {
  /** Highest height held, 0 when empty. */
  lastHeight(): number;
  /**
   * Saves the results of `height`. Heights follow each other; saving a held
   * height again does nothing; a height past a gap restarts the store there.
   */
  save(results: BlockResults): void;
  load(height: number): BlockResults | null;
  /** Makes every save durable. */
  flush(): void;
  close(): void;
}

const TEXT_BYTES_MAX = 1_024;
const ACTIONS_MAX = 1_024;
const FILLS_MAX = 100_000;
const REJECT_CODE_SET: ReadonlySet<string> = new Set(REJECT_CODES);
const ACTION_KIND_SET: ReadonlySet<string> = new Set(ACTION_KINDS);
const TAKER_STATUSES = ['rested', 'filled', 'cancelled', 'rejected'] as const;
const TAKER_REASONS = [
  'IocRemainder',
  'FokUnfillable',
  'SelfTrade',
  'PostOnlyWouldTake',
  'UnknownOrder',
] as const;

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

export const blockResultsCodec: Codec<BlockResults> = {
  write(w: Writer, b: BlockResults) {
    w.uvarint(b.height).bytes(b.appHash, 64);
    w.uvarint(b.results.length);
    for (const t of b.results) {
      w.bool(t !== null);
      if (t !== null) txResultCodec.write(w, t);
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
    return { height, appHash, results };
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

  flush(): void {}

  close(): void {}
}

/**
 * Results in a record log: record i holds height base + i (base in the file
 * header). Saves are not synced on the spot: the fsync runs in the background
 * and flush() is the barrier the node calls before anything that makes a later
 * height durable.
 */
export class FileResultsStore implements ResultsStore {
  private base: number;
  private refs: RecordRef[];

  constructor(
    private readonly log: RecordLog,
    base: number,
    refs: RecordRef[],
  ) {
    this.base = base;
    this.refs = refs;
  }

  lastHeight(): number {
    return this.refs.length === 0 ? 0 : this.base + this.refs.length - 1;
  }

  save(results: BlockResults): void {
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
    this.refs.push(this.log.append(encode(blockResultsCodec, results), false));
    this.log.syncInBackground();
  }

  load(height: number): BlockResults | null {
    if (!Number.isSafeInteger(height) || height < this.base) return null;
    const ref = this.refs[height - this.base];
    if (ref === undefined) return null;
    try {
      const decoded = decode(blockResultsCodec, this.log.read(ref), 'results');
      return decoded.height === height ? decoded : null;
    } catch {
      return null;
    }
  }

  flush(): void {
    if (this.log.needsSync) this.log.sync();
  }

  close(): void {
    this.log.close();
  }
}

/** Opens (or creates) the results log at `path`. */
export function openFileResultsStore(path: string): FileResultsStore {
  const opened = openRecordLog(path, {
    magic: 'ZRES',
    recordBytesMax: STORED_RESULTS_BYTES_MAX,
    verifyPayloads: false,
  });
  return new FileResultsStore(opened.log, opened.base, opened.records);
}
