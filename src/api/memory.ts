// A small in-memory NodeView for tests of the server, the SDK and the node's
// wiring: state is set by hand, transactions are checked for real (checkTx)
// and committed when the test says so (or right away with autoCommit).

import type { RejectCode } from '../exchange/errors.ts';
import { checkTx } from '../exchange/tx/index.ts';
import { TxError } from '../exchange/tx/index.ts';
import type { SignedTx } from '../exchange/tx/index.ts';
import { toHex } from '../lib/bytes.ts';
import { WS_BOOK_DEPTH_LEVELS } from '../lib/limits.ts';
import { windowChanges } from './book_window.ts';
import type {
  AccountUpdate,
  AccountView,
  BlockUpdate,
  BlockView,
  BookDelta,
  BookView,
  BuildVersionsView,
  ConsensusView,
  FillView,
  RiskView,
  InstrumentView,
  LevelView,
  MarketEndView,
  NodeView,
  ReadModel,
  StatusView,
  SubmitResult,
  TickerView,
  TradeView,
  TxDrop,
  TxDropCode,
  TxView,
  ValidatorView,
} from './view.ts';

export interface MemoryViewOptions {
  chainId: string;
  instruments: InstrumentView[];
  validators?: ValidatorView[];
  genesisTimeMs?: number;
  /** Commit every admitted transaction in a block of its own, on the next turn of the event loop. */
  autoCommit?: boolean;
  /** Decides a committed transaction's fate; default: accepted. */
  decide?: (tx: SignedTx) => { code: RejectCode; message: string } | undefined;
  /** Most transactions pending at once (then MempoolFull). */
  mempoolMax?: number;
  /** The build's versions GET /v1/status shows (src/node/build_info.ts buildVersions()). */
  build: BuildVersionsView;
}

/** An account update as a test stages it: its fills get their block's time at commit. */
export type StagedAccountUpdate = Omit<AccountUpdate, 'fills'> & {
  fills: Omit<FillView, 'timeMs'>[];
};

interface Book {
  seq: number;
  bids: Map<number, number>;
  asks: Map<number, number>;
}

function levels(side: Map<number, number>, descending: boolean, depth: number): LevelView[] {
  const prices = [...side.keys()].sort((a, b) => (descending ? b - a : a - b));
  return prices.slice(0, depth).map((p) => [p, side.get(p)!]);
}

export class MemoryView implements NodeView {
  readonly chainId: string;
  readonly options: MemoryViewOptions;
  /** Optional status fields (emergencyHalt, insuranceQuote, feeTiers, …), set by the test. */
  statusExtra: Pick<StatusView, 'emergencyHalt' | 'haltReason' | 'insuranceQuote' | 'feeTiers'> =
    {};
  /** What /v1/consensus answers (absent: 404, as from a view that does not publish it). */
  consensusState: ConsensusView | undefined;
  /** What /v1/risk answers (absent: 404). */
  riskState: RiskView | undefined;
  height = 0;
  timeMs: number;
  private instrumentList: InstrumentView[];
  private readonly books = new Map<string, Book>();
  private readonly tradeLog = new Map<string, TradeView[]>();
  private readonly nextTradeId = new Map<string, number>();
  private readonly tickers = new Map<string, TickerView>();
  private readonly accounts = new Map<string, AccountView>();
  private readonly txs = new Map<string, TxView>();
  private readonly blocks = new Map<number, BlockView>();
  private readonly listeners = new Set<(u: BlockUpdate) => void>();
  private readonly dropListeners = new Set<(drop: TxDrop) => void>();
  private readonly endedMarkets = new Map<string, MarketEndView>();
  private pending: { hash: string; tx: SignedTx }[] = [];
  /** Markets the next block ends, with their settlement (absent: retired without one). */
  private stagedEnds = new Map<string, { priceQuote: string; valueQuote: string } | undefined>();
  // Staged for the next block.
  private stagedBooks = new Map<string, { bids: Map<number, number>; asks: Map<number, number> }>();
  private stagedTrades: TradeView[] = [];
  private stagedAccounts: StagedAccountUpdate[] = [];

  constructor(options: MemoryViewOptions) {
    this.options = options;
    this.chainId = options.chainId;
    this.timeMs = options.genesisTimeMs ?? 1_700_000_000_000;
    this.instrumentList = options.instruments;
    for (const i of options.instruments) {
      this.books.set(i.instrument, { seq: 0, bids: new Map(), asks: new Map() });
      this.tradeLog.set(i.instrument, []);
      this.nextTradeId.set(i.instrument, 1);
      this.tickers.set(i.instrument, {
        instrument: i.instrument,
        height: 0,
        markTicks: 0,
        indexTicks: 0,
        openInterestLots: 0,
      });
    }
  }

  // --- test controls ----------------------------------------------------------------

  /** Sets a level's size in the next block (0 removes it). */
  setLevel(instrument: string, side: 'bid' | 'ask', priceTicks: number, sizeLots: number): void {
    let staged = this.stagedBooks.get(instrument);
    if (staged === undefined) {
      this.stagedBooks.set(instrument, (staged = { bids: new Map(), asks: new Map() }));
    }
    (side === 'bid' ? staged.bids : staged.asks).set(priceTicks, sizeLots);
  }

  addTrade(instrument: string, priceTicks: number, sizeLots: number, takerSide: 'buy' | 'sell') {
    const tradeId = this.nextTradeId.get(instrument)!;
    this.nextTradeId.set(instrument, tradeId + 1);
    this.stagedTrades.push({
      tradeId,
      instrument,
      priceTicks,
      sizeLots,
      takerSide,
      height: this.height + 1,
      timeMs: this.timeMs,
    });
  }

  setTicker(ticker: Omit<TickerView, 'height'>): void {
    this.tickers.set(ticker.instrument, { ...ticker, height: this.height });
  }

  /**
   * Replaces an account's view now, and publishes `update` with the next
   * block, its fills stamped with that block's time (as trades are).
   */
  setAccount(account: Omit<AccountView, 'height'>, update?: StagedAccountUpdate): void {
    this.accounts.set(account.address.toLowerCase(), { ...account, height: this.height });
    if (update !== undefined) this.stagedAccounts.push(update);
  }

  /**
   * Ends a market with the next block, as its settlement does (`settlement`
   * absent: retired without one): it leaves the instruments, its book, trades
   * and ticker go, and the block's update lists it as ended.
   */
  settle(instrument: string, settlement?: { priceQuote: string; valueQuote: string }): void {
    this.stagedEnds.set(instrument, settlement);
  }

  /**
   * Lets go of a pending transaction as a node's mempool does (evicted, or
   * refused by the committed state): it leaves the pending ones, looks up as
   * `dropped`, and every drop listener hears of it now.
   */
  drop(hash: string, code: TxDropCode, message: string = code): void {
    const at = this.pending.findIndex((p) => p.hash === hash);
    if (at < 0) throw new Error(`no pending transaction ${hash}`);
    this.pending.splice(at, 1);
    this.txs.set(hash, { hash, status: 'dropped', code, message });
    for (const listener of this.dropListeners) listener({ hash, code, message });
  }

  /** Commits a block: every pending transaction and every staged change. */
  commit(timeMsStep = 1_000): BlockUpdate {
    this.height++;
    this.timeMs += timeMsStep;
    const height = this.height;
    const txs: TxView[] = this.pending.map(({ hash, tx }, index) => {
      const refusal = this.options.decide?.(tx);
      const view: TxView =
        refusal === undefined
          ? {
              hash,
              status: 'committed',
              height,
              index,
              actions: [{ kind: tx.action.kind, ok: true }],
            }
          : {
              hash,
              status: 'rejected',
              height,
              index,
              code: refusal.code,
              message: refusal.message,
              actions: [{ kind: tx.action.kind, ok: false, ...refusal }],
            };
      this.txs.set(hash, view);
      return view;
    });
    this.pending = [];
    const books: BookDelta[] = [];
    for (const [instrument, staged] of this.stagedBooks) {
      const book = this.books.get(instrument)!;
      // As the node publishes it: the changes of the book channel's window (src/api/book_window.ts).
      const window = WS_BOOK_DEPTH_LEVELS;
      const bidsBefore = levels(book.bids, true, window);
      const asksBefore = levels(book.asks, false, window);
      for (const [side, changes] of [
        [book.bids, staged.bids],
        [book.asks, staged.asks],
      ] as const) {
        for (const [p, s] of changes) {
          if (s === 0) side.delete(p);
          else side.set(p, s);
        }
      }
      const bids = windowChanges(bidsBefore, levels(book.bids, true, window), window, true);
      const asks = windowChanges(asksBefore, levels(book.asks, false, window), window, false);
      if (bids.length === 0 && asks.length === 0) continue;
      books.push({ instrument, seq: height, prevSeq: book.seq, bids, asks });
      book.seq = height;
    }
    this.stagedBooks = new Map();
    const trades = this.stagedTrades.map((t) => ({ ...t, height, timeMs: this.timeMs }));
    this.stagedTrades = [];
    for (const t of trades) this.tradeLog.get(t.instrument)!.push(t);
    const accounts = this.stagedAccounts.map((a) => ({
      ...a,
      fills: a.fills.map((f) => ({ ...f, timeMs: this.timeMs })),
    }));
    this.stagedAccounts = [];
    const tickers: TickerView[] = [];
    for (const instrument of new Set([
      ...books.map((b) => b.instrument),
      ...trades.map((t) => t.instrument),
    ])) {
      tickers.push(this.refreshTicker(instrument));
    }
    const block: BlockView = {
      height,
      timeMs: this.timeMs,
      hash: toHex(new Uint8Array(32).fill(height % 256)),
      appHash: toHex(new Uint8Array(32).fill((height * 7) % 256)),
      proposer: this.options.validators?.[0]?.address ?? '0x' + '00'.repeat(20),
      txs: txs.map((t) => ({
        hash: t.hash,
        ok: t.status === 'committed',
        ...(t.code ? { code: t.code } : {}),
      })),
    };
    this.blocks.set(height, block);
    const ended: MarketEndView[] = [];
    for (const [instrument, settlement] of this.stagedEnds) {
      const end: MarketEndView = {
        instrument,
        reason: settlement === undefined ? 'retired' : 'settled',
        height,
        timeMs: this.timeMs,
        ...settlement,
      };
      ended.push(end);
      this.endedMarkets.set(instrument, end);
      this.books.delete(instrument);
      this.tickers.delete(instrument);
      this.tradeLog.delete(instrument);
      this.instrumentList = this.instrumentList.filter((i) => i.instrument !== instrument);
    }
    this.stagedEnds = new Map();
    const update: BlockUpdate = {
      height,
      timeMs: this.timeMs,
      block,
      txs,
      books,
      trades,
      tickers,
      accounts,
      ended,
    };
    for (const listener of this.listeners) listener(update);
    return update;
  }

  private refreshTicker(instrument: string): TickerView {
    const book = this.books.get(instrument)!;
    const old = this.tickers.get(instrument)!;
    const ticker: TickerView = {
      instrument,
      height: this.height,
      markTicks: old.markTicks,
      indexTicks: old.indexTicks,
      openInterestLots: old.openInterestLots,
    };
    const bid = levels(book.bids, true, 1)[0];
    const ask = levels(book.asks, false, 1)[0];
    if (bid !== undefined) [ticker.bestBidTicks, ticker.bestBidLots] = bid;
    if (ask !== undefined) [ticker.bestAskTicks, ticker.bestAskLots] = ask;
    const last = this.tradeLog.get(instrument)!.at(-1);
    if (last !== undefined) ticker.lastTradeTicks = last.priceTicks;
    if (old.fundingRatePpm !== undefined) ticker.fundingRatePpm = old.fundingRatePpm;
    if (old.markIv !== undefined) ticker.markIv = old.markIv;
    if (old.greeks !== undefined) ticker.greeks = old.greeks;
    this.tickers.set(instrument, ticker);
    return ticker;
  }

  // --- NodeView ---------------------------------------------------------------------

  read(): ReadModel {
    const height = this.height;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the read model's closures read this view
    const self = this;
    return {
      height,
      status: (): StatusView => ({
        chainId: self.chainId,
        height,
        lastBlockTimeMs: self.timeMs,
        appHash: self.blocks.get(height)?.appHash ?? '',
        validators: self.options.validators ?? [],
        syncing: false,
        version: self.options.build.version,
        executionVersion: self.options.build.executionVersion,
        wireVersion: self.options.build.wireVersion,
        ...self.statusExtra,
      }),
      validators: () => self.options.validators ?? [],
      instruments: () => self.instrumentList,
      ticker: (instrument) => self.tickers.get(instrument),
      book: (instrument, depth): BookView | undefined => {
        const book = self.books.get(instrument);
        if (book === undefined) return undefined;
        return {
          instrument,
          height,
          seq: book.seq,
          bids: levels(book.bids, true, depth),
          asks: levels(book.asks, false, depth),
        };
      },
      trades: (instrument, count) => self.tradeLog.get(instrument)?.slice(-count),
      ended: (instrument) => self.endedMarkets.get(instrument),
      account: (address, subaccount) => {
        const account = self.accounts.get(address.toLowerCase());
        if (account === undefined || subaccount === undefined) return account;
        return {
          ...account,
          subaccounts: account.subaccounts.filter((s) => s.subaccount === subaccount),
        };
      },
      tx: (hash) => self.txs.get(hash),
      block: (h) => self.blocks.get(h),
      ...(self.consensusState !== undefined ? { consensus: () => self.consensusState! } : {}),
      ...(self.riskState !== undefined ? { risk: () => self.riskState! } : {}),
    };
  }

  async submit(bytes: Uint8Array): Promise<SubmitResult> {
    let checked: { tx: SignedTx; hash: Uint8Array };
    try {
      checked = checkTx(bytes, this.chainId);
    } catch (e) {
      if (!(e instanceof TxError)) throw e;
      return {
        ok: false,
        code: e.code,
        message: e.message,
        ...(e.field ? { field: e.field } : {}),
      };
    }
    const hash = toHex(checked.hash);
    // A dropped one may be submitted again, as to a node's mempool.
    if (this.txs.has(hash) && this.txs.get(hash)!.status !== 'dropped') {
      return { ok: false, code: 'DuplicateTx', message: 'already submitted' };
    }
    if (this.pending.length >= (this.options.mempoolMax ?? 10_000)) {
      return { ok: false, code: 'MempoolFull', message: 'the mempool is full' };
    }
    this.pending.push({ hash, tx: checked.tx });
    this.txs.set(hash, { hash, status: 'pending' });
    if (this.options.autoCommit === true) setImmediate(() => this.commit());
    return { ok: true, hash };
  }

  subscribe(listener: (u: BlockUpdate) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  subscribeDropped(listener: (drop: TxDrop) => void): () => void {
    this.dropListeners.add(listener);
    return () => this.dropListeners.delete(listener);
  }
}
