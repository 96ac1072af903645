// The node as the API server sees it (src/api/view.ts, NodeView): a read model
// of committed state, submission through the mempool, and one BlockUpdate per
// executed block. Blocks execute synchronously on this thread (loop.ts), so
// whatever a query reads between two blocks is never half applied; the parts
// that a block replaces (status, books, tickers, trades, blocks) are published
// as new immutable records after each block, and queries only read them, so a
// query never waits for execution and execution never waits for a query.
//
// A block costs what it changed and what is read of it: a market's record is
// replaced only when its book, trades or ticker inputs moved (the others are
// shared with the height before); tickers and a block's oracle view are built
// on their first read from inputs captured at their height, so a ReadModel
// kept across blocks, or an update read late (a WebSocket resume), still
// describes its own height; account updates, read from the state of their
// block, are built only for the accounts some listener wants (AccountInterest).
//
// Accounts are the exception: building every account's view after every block
// would cost O(accounts) per block, so an account is read on demand from the
// latest state, and its answer carries the height it was read at.
//
// Transaction results outlive a restart: the node saves each block's results
// (results.ts) before publishing it, and `tx` and `block` read them back with
// the stored blocks, as do the recent trades (readStoredBlocks). A trade's id
// is its market's trade count in the exchange state, so it is the same on
// every node and across restarts. A book's seq is the height that last
// changed its window (BookDelta), the same on every node of the chain.

import type { AccountInterest, AccountUpdate, BlockTxView, BlockUpdate } from '../api/view.ts';
import type { BlockEventView, CommitSignerView, ConsensusView } from '../api/view.ts';
import type { EvidenceView, InsurancePointView, OracleView, RiskView } from '../api/view.ts';
import type { MarketEndView, SettlementView, TxDrop } from '../api/view.ts';
import type { BlockView, BookDelta, BookView, FillView, InstrumentView } from '../api/view.ts';
import type { LevelView, NodeView, OrderView, PositionView, ReadModel } from '../api/view.ts';
import type {
  FeeTierView,
  StatusView,
  SubaccountView,
  SubmitRejectCode,
  SubmitResult,
} from '../api/view.ts';
import type { TickerView, TradeView, TxView, ValidatorView } from '../api/view.ts';
import type { UpdatedOrderView } from '../api/view.ts';
import { windowChanges } from '../api/book_window.ts';
import { committedTxView, quoteString } from '../api/convert.ts';
import { ApiError } from '../api/errors.ts';
import { blockHashOf } from '../consensus/index.ts';
import type {
  Block,
  CommitCertificate,
  CommittedBlock as StoredBlock,
  DuplicateVoteEvidence,
  ValidatorSet,
} from '../consensus/index.ts';
import { addressOf, formatAddress, parseAddress, sha256 } from '../crypto/index.ts';
import {
  equityQuote,
  initialMarginQuote,
  maintenanceMarginQuote,
  type FeeTier,
  type Genesis,
  type TxResult,
} from '../exchange/index.ts';
import type { ExchangeEvent } from '../exchange/results.ts';
import { bookHolding } from '../exchange/auction/index.ts';
import type { RestingOrder } from '../exchange/book/index.ts';
import { booksOf } from '../exchange/hash.ts';
import { bytesKey } from '../exchange/keys.ts';
import { executionOrder } from '../exchange/ordering.ts';
import { settledCashQuote } from '../exchange/instruments/index.ts';
import { costBasisAfterTrade, positionOf as exchangePositionOf } from '../exchange/position.ts';
import { divBig } from '../lib/int.ts';
import { toDecimal } from '../math/fixed.ts';
import type { Account, ExchangeState, MarketState } from '../exchange/state.ts';
import { assert } from '../lib/assert.ts';
import type { Action, SignedTx } from '../exchange/tx/index.ts';
import { decodeSignedTx } from '../exchange/tx/index.ts';
import { toHex } from '../lib/bytes.ts';
import {
  API_ACCOUNT_ORDERS_MAX,
  BOOK_DEPTH_LEVELS_MAX,
  VIEW_BLOCKS_KEPT,
  VIEW_DROPPED_TXS_KEPT,
  VIEW_ENDED_MARKETS_KEPT,
  VIEW_TX_INDEX_BLOCKS_MAX,
  VIEW_CONSENSUS_RECENT_BLOCKS,
  VIEW_INSURANCE_POINTS_KEPT,
  VIEW_RISK_EVENTS_KEPT,
  VIEW_TRADES_KEPT,
  VIEW_TXS_KEPT,
  WS_BOOK_DEPTH_LEVELS,
} from '../lib/limits.ts';
import { buildVersions } from './build_info.ts';
import type { Log } from './log.ts';
import { silentLog } from './log.ts';
import { loadCommitted } from './loop.ts';
import type { BlockResults } from './results.ts';
import type { Dropped } from './mempool/mempool.ts';
import type { CommittedBlock, ZommaNode } from './node.ts';
import { oracleFromVotes, oracleVotesOf } from './oracle.ts';
import type { Storage } from './storage/index.ts';
import { StorageError } from './storage/index.ts';

interface PublishedBook {
  readonly seq: number;
  readonly bids: readonly LevelView[];
  readonly asks: readonly LevelView[];
}

/** One live market as published: replaced whole when any part of it changes, never changed. */
interface PublishedMarket {
  readonly book: PublishedBook;
  readonly ticker: TickerSlot;
  readonly trades: readonly TradeView[];
}

/**
 * What one height publishes: replaced after each block, never changed. Parts
 * that did not change are shared with the height before (a block touches a
 * few of the 80–90 devnet markets), and what costs more to build than to
 * capture (tickers' text, the oracle's decoded observations) is built from
 * captured inputs on its first read, so a record nobody reads costs little.
 */
interface Published {
  readonly height: number;
  readonly timeMs: number;
  readonly appHash: string;
  readonly validators: ValidatorView[];
  readonly instruments: InstrumentView[];
  readonly markets: ReadonlyMap<string, PublishedMarket>;
  readonly insuranceQuote: string;
  /** The fee schedule in force (state.feeTiers), rebuilt only when governance changed it. */
  readonly feeTiers: readonly FeeTierView[];
  readonly oracle: () => readonly OracleView[];
  /** Markets no longer live, by instrument, as far as the node remembers (oldest first). */
  readonly ended: ReadonlyMap<string, MarketEndView>;
}

/** What the view follows of one live market between blocks (never published itself). */
interface Tracked {
  readonly name: string;
  /** What the latest height publishes of it. */
  published: PublishedMarket;
  /** Full depth as last published (the base of the next delta). */
  readonly levels: PublishedLevels;
  /** Its instrument view, and the inputs of it that can change (the rest is fixed at listing). */
  instrument: InstrumentView;
  halted: boolean;
  auctionEndMs: number;
  /** The market's parameters as last shown (replaced whole when governance sets its risk). */
  params: MarketState['params'];
}

/**
 * A value computed on its first use and then kept. Only for values built from
 * inputs captured at their height and never changed after, so that the answer
 * is the same whenever it is first asked for.
 */
function lazy<T>(compute: () => T): () => T {
  let done = false;
  let value: T | undefined;
  return () => {
    if (!done) {
      value = compute();
      done = true;
    }
    return value as T;
  };
}

/** A block's view as kept: its fields, and its oracle (decoded on first read). */
class KeptBlock {
  private built: BlockView | null = null;
  constructor(
    readonly fields: Omit<BlockView, 'oracle'>,
    readonly oracle: () => readonly OracleView[],
  ) {}

  view(): BlockView {
    this.built ??= { ...this.fields, oracle: [...this.oracle()] };
    return this.built;
  }
}

/**
 * The BlockUpdate of one block: what listeners read of every block (its
 * transactions, book deltas, trades, account updates) built with it; its
 * block view and changed tickers built on first read, from inputs captured
 * at its height, so a block nobody follows on those channels does not pay
 * for them and a late reader (a WebSocket resume) still gets that height's.
 */
class ChainUpdate implements BlockUpdate {
  declare readonly block: BlockView;
  declare readonly tickers: TickerView[];
  constructor(
    readonly height: number,
    readonly timeMs: number,
    kept: KeptBlock,
    readonly txs: TxView[],
    readonly books: BookDelta[],
    readonly trades: TradeView[],
    readonly accounts: AccountUpdate[],
    /** The tickers whose inputs moved in this block: before (none: newly listed) and after. */
    moved: readonly (readonly [TickerSlot | undefined, TickerSlot])[],
    readonly ended: MarketEndView[],
  ) {
    const tickers = lazy(() =>
      moved
        .map(([old, now]) => [old?.at(height, timeMs), now.at(height, timeMs)])
        .filter(([old, now]) => old === undefined || !sameTicker(old, now!))
        .map(([, now]) => now!),
    );
    // Own enumerable properties, so that a copy of the update ({ ...u }) has them too.
    Object.defineProperties(this, {
      block: { enumerable: true, get: () => kept.view() },
      tickers: { enumerable: true, get: tickers },
    });
  }
}

export interface ChainViewOptions {
  readonly node: ZommaNode;
  readonly storage: Storage;
  readonly genesis: Genesis;
  readonly log?: Log;
  /** Open orders listed in one account view (default API_ACCOUNT_ORDERS_MAX). */
  readonly accountOrdersMax?: number;
}

const SUBMIT_CODES: Record<string, SubmitRejectCode> = {
  Malformed: 'Malformed',
  Oversize: 'Oversize',
  WrongChain: 'WrongChain',
  BadSignature: 'BadSignature',
  BadField: 'BadField',
  AgentNotAllowed: 'AgentNotAllowed',
  DuplicateTx: 'DuplicateTx',
  // Refused by the committed state already: the code its block would give.
  Expired: 'Expired',
  StaleNonce: 'StaleNonce',
  FutureNonce: 'FutureNonce',
  DuplicateNonce: 'DuplicateNonce',
  NotPermitted: 'NotPermitted',
  MempoolAccountFull: 'MempoolFull',
  MempoolBusy: 'MempoolFull',
  MempoolFull: 'MempoolFull',
};

/** A market's end by its settlement event. */
function settledView(
  e: Extract<ExchangeEvent, { type: 'marketSettled' }>,
  height: number,
  timeMs: number,
): MarketEndView {
  return {
    instrument: e.market,
    reason: 'settled',
    height,
    timeMs,
    priceQuote: quoteString(e.settlementPriceQuote),
    valueQuote: quoteString(e.valueQuote),
  };
}

/**
 * The ended markets after a block: `prev` with `ends` added (last), less any
 * name listed again, the oldest dropped past VIEW_ENDED_MARKETS_KEPT. A new
 * map only when something changed: published records are never changed.
 */
function endedAfter(
  prev: ReadonlyMap<string, MarketEndView>,
  ends: readonly MarketEndView[],
  listed: readonly string[],
): ReadonlyMap<string, MarketEndView> {
  if (ends.length === 0 && !listed.some((name) => prev.has(name))) return prev;
  const next = new Map(prev);
  for (const name of listed) next.delete(name);
  for (const e of ends) {
    next.delete(e.instrument);
    next.set(e.instrument, e);
  }
  while (next.size > VIEW_ENDED_MARKETS_KEPT) next.delete(next.keys().next().value!);
  return next;
}

/** The last `max` items of `old` followed by `added`, as a new array (neither input changes). */
export function lastKept<T>(old: readonly T[], added: readonly T[], max: number): T[] {
  const drop = Math.max(0, old.length + added.length - max);
  return drop >= old.length ? added.slice(drop - old.length) : [...old.slice(drop), ...added];
}

export class ChainView implements NodeView {
  readonly chainId: string;
  private readonly node: ZommaNode;
  private readonly storage: Storage;
  private readonly log: Log;
  private readonly accountOrdersMax: number;
  /** Each listener, with the accounts it reads (undefined: all). */
  private readonly listeners = new Map<
    (update: BlockUpdate) => void,
    AccountInterest | undefined
  >();
  private readonly txs = new Map<string, TxView>();
  /**
   * Transactions the mempool let go of, as `tx` answers them (oldest first):
   * without them a dropped transaction would look unknown to the node.
   */
  private readonly dropped = new Map<string, TxView>();
  private readonly dropListeners = new Set<(drop: TxDrop) => void>();
  private readonly blocks = new Map<number, KeptBlock>();
  /**
   * Proposer and signers of the last VIEW_CONSENSUS_RECENT_BLOCKS blocks a
   * restart read back, so that `/v1/consensus` counts them as a node that ran
   * on would. Filled once, at most that many entries; a height kept live in
   * `blocks` is read there first.
   */
  private readonly storedConsensus = new Map<number, StoredConsensus>();
  /** The live markets, by market index (a settled market's slot may be reused by a new one). */
  private readonly tracked: (Tracked | undefined)[] = [];
  /** The validators' view as last built, and what it was built from. */
  private validatorsBuilt: {
    readonly from: ValidatorInputs[];
    readonly view: ValidatorView[];
  } | null = null;
  private readonly tradeIds = new Map<string, number>();
  private readonly lastTrade = new Map<string, number>();
  /**
   * The insurance fund after each recent block, oldest first: the last
   * VIEW_INSURANCE_POINTS_KEPT are published, and up to as many older ones
   * wait to be dropped together (one copy per that many blocks, not per block).
   */
  private insurance: InsurancePointView[] = [];
  private riskEvents: BlockEventView[] = [];
  /** Why and when a validator was jailed, by address, as far as this node saw it. */
  private readonly jailings = new Map<string, { height: number; reason?: string }>();
  /** Evidence seen committed, by the offending validator's address. */
  private readonly evidenceSeen = new Map<string, string>();
  /**
   * The open positions as of the last block: a block that closes one leaves
   * no trace of what it held (a closing trade zeroes the record's cost basis,
   * settlement drops the record), so its closing row is told from these.
   */
  private readonly held: HeldPositions;
  /** The resting orders as of the last block: what a block's removals are told from. */
  private readonly rested: RestedOrders;
  private published: Published;
  private readonly unsubscribe: () => void;
  private readonly unsubscribeDropped: () => void;
  /** Markets ended in the blocks a restart read back (published with the first height). */
  private readonly storedEnds: MarketEndView[] = [];

  constructor(options: ChainViewOptions) {
    this.node = options.node;
    this.storage = options.storage;
    this.log = options.log ?? silentLog;
    this.accountOrdersMax = options.accountOrdersMax ?? API_ACCOUNT_ORDERS_MAX;
    this.chainId = options.genesis.chainId;
    const state = this.state;
    const recent = this.readStoredBlocks();
    const markets = new Map<string, PublishedMarket>();
    for (const m of state.markets) {
      if (m.retired) continue;
      const name = m.params.instrument;
      // A market's last trade may be older than any stored block (a quiet
      // market, a start from a snapshot): a monitored market's state keeps
      // its price (the last fill or uncross), so every node shows the same.
      const kept = m.auction?.monitor.lastPriceTicks ?? 0;
      if (!this.lastTrade.has(name) && kept !== 0) this.lastTrade.set(name, kept);
      markets.set(name, this.openMarket(m, state.height, recent.get(name)));
    }
    this.published = {
      height: state.height,
      timeMs: state.timeMs,
      appHash: toHex(this.node.app.appHash),
      validators: this.validatorsNow(state, state.height, false),
      instruments: this.instrumentsNow(),
      markets,
      insuranceQuote: quoteString(state.insuranceQuote),
      feeTiers: this.feeTiersNow(),
      oracle: () => [],
      ended: endedAfter(
        new Map(),
        this.storedEnds.filter((e) => !state.marketByName.has(e.instrument)),
        [],
      ),
    };
    this.held = new HeldPositions(state, this.log);
    this.rested = new RestedOrders(state);
    this.unsubscribe = this.node.subscribe((b) => this.onBlock(b));
    this.unsubscribeDropped = this.node.subscribeDropped((d) => this.onDropped(d));
  }

  /** Starts following a market (at construction, and when one is listed): its first publication. */
  private openMarket(m: MarketState, height: number, trades: TradeView[] = []): PublishedMarket {
    const name = m.params.instrument;
    const bids = depthMap(m, 'buy');
    const asks = depthMap(m, 'sell');
    const published: PublishedMarket = {
      book: { seq: height, bids: sorted(bids, true), asks: sorted(asks, false) },
      ticker: new TickerSlot(tickerInputsOf(m, this.lastTrade.get(name))),
      trades,
    };
    this.tracked[m.index] = {
      name,
      published,
      levels: { bids, asks, book: m.book, changeCount: m.book.changes.changeCount },
      instrument: instrumentOf(m),
      halted: m.halted,
      auctionEndMs: auctionEndOf(m),
      params: m.params,
    };
    this.tradeIds.set(name, m.tradeCount);
    return published;
  }

  close(): void {
    this.unsubscribe();
    this.unsubscribeDropped();
    this.listeners.clear();
    this.dropListeners.clear();
  }

  private get state(): ExchangeState {
    return this.node.app.exchange.state;
  }

  // --- NodeView ---------------------------------------------------------------------

  read(): ReadModel {
    const p = this.published;
    return {
      height: p.height,
      status: () => this.statusOf(p),
      validators: () => p.validators,
      instruments: () => p.instruments,
      ticker: (instrument) => p.markets.get(instrument)?.ticker.at(p.height, p.timeMs),
      book: (instrument, depth) => {
        const book = p.markets.get(instrument)?.book;
        if (book === undefined) return undefined;
        const view: BookView = {
          instrument,
          height: p.height,
          seq: book.seq,
          bids: book.bids.slice(0, depth),
          asks: book.asks.slice(0, depth),
        };
        return view;
      },
      trades: (instrument, count) => p.markets.get(instrument)?.trades.slice(-count),
      ended: (instrument) => p.ended.get(instrument),
      account: (address, subaccount) => this.accountOf(address, subaccount),
      tx: (hash) => this.txOf(hash),
      block: (height) => (height <= p.height ? this.blockOf(height) : undefined),
      consensus: () => this.consensusOf(p),
      risk: () => this.riskOf(p),
    };
  }

  async submit(bytes: Uint8Array): Promise<SubmitResult> {
    const result = await this.node.submit(bytes);
    if (result.ok) return { ok: true, hash: result.hash };
    const code = SUBMIT_CODES[result.code] ?? 'BadField';
    const field = /^([A-Za-z0-9_.[\]]+): /.exec(result.message)?.[1];
    return { ok: false, code, message: result.message, ...(field ? { field } : {}) };
  }

  subscribe(listener: (update: BlockUpdate) => void, accounts?: AccountInterest): () => void {
    this.listeners.set(listener, accounts);
    return () => this.listeners.delete(listener);
  }

  subscribeDropped(listener: (drop: TxDrop) => void): () => void {
    this.dropListeners.add(listener);
    return () => this.dropListeners.delete(listener);
  }

  /** The mempool let go of a transaction: `tx` says so from now, and the listeners hear it. */
  private onDropped(d: Dropped): void {
    this.dropped.delete(d.hash);
    this.dropped.set(d.hash, { hash: d.hash, status: 'dropped', code: d.code, message: d.message });
    if (this.dropped.size > VIEW_DROPPED_TXS_KEPT) {
      this.dropped.delete(this.dropped.keys().next().value!);
    }
    const drop: TxDrop = { hash: d.hash, code: d.code, message: d.message };
    for (const listener of this.dropListeners) {
      try {
        listener(drop);
      } catch (error) {
        this.log.error({ error: String(error) }, 'a drop listener failed');
      }
    }
  }

  /** Which touched accounts get an update this block: all, some (by address), or none. */
  private accountsWanted(): ((address: string) => boolean) | 'all' | 'none' {
    const some: AccountInterest[] = [];
    for (const interest of this.listeners.values()) {
      if (interest === undefined) return 'all';
      if (interest.any()) some.push(interest);
    }
    if (some.length === 0) return 'none';
    return (address) => some.some((i) => i.has(address));
  }

  // --- reads ------------------------------------------------------------------------

  private statusOf(p: Published): StatusView {
    return {
      chainId: this.chainId,
      height: p.height,
      lastBlockTimeMs: p.timeMs,
      appHash: p.appHash,
      validators: p.validators,
      syncing: this.node.loop.catchingUp(),
      ...buildVersions(),
      emergencyHalt: p.instruments.length > 0 && p.instruments.every((i) => i.status === 'halted'),
      ...(this.node.loop.haltReport
        ? {
            haltReason: `${this.node.loop.haltReport.code}: ${this.node.loop.haltReport.message}`,
          }
        : {}),
      insuranceQuote: p.insuranceQuote,
      feeTiers: p.feeTiers.map((t) => ({ ...t })),
    };
  }

  /**
   * The fee schedule in force as the API shows it. The state replaces its
   * schedule whole when governance sets one (state.ts setFeeTiers), so the
   * view is built again only when the state's differs from the one it was
   * built from.
   */
  private feeTiersNow(): readonly FeeTierView[] {
    const tiers = this.state.feeTiers;
    if (this.feeTiersFrom !== tiers) {
      this.feeTiersFrom = tiers;
      this.feeTiersView = tiers.map((t) => ({
        volumeQuoteMin: quoteString(t.volumeQuoteMin),
        makerFeePpm: t.makerFeePpm,
        takerFeePpm: t.takerFeePpm,
      }));
    }
    return this.feeTiersView;
  }
  private feeTiersFrom: readonly FeeTier[] | null = null;
  private feeTiersView: readonly FeeTierView[] = [];

  private get validatorSet(): ValidatorSet {
    return this.node.loop.replica.validators;
  }

  /**
   * The set that decided `height`: a certificate's and evidence's validator
   * indices are in it, and it differs from today's once a validator is jailed.
   */
  private setAt(height: number): ValidatorSet {
    return this.node.app.validatorSetAt(height);
  }

  private consensusOf(p: Published): ConsensusView {
    const replica = this.node.loop.replica;
    const set = this.validatorSet;
    const last = this.blocks.get(p.height)?.fields ?? this.storedConsensus.get(p.height);
    const signed = new Map<string, number>();
    const proposed = new Map<string, number>();
    let recent = 0;
    for (let h = p.height; h > 0 && recent < VIEW_CONSENSUS_RECENT_BLOCKS; h--) {
      const block = this.blocks.get(h)?.fields ?? this.storedConsensus.get(h);
      if (block === undefined) break;
      recent++;
      proposed.set(block.proposer, (proposed.get(block.proposer) ?? 0) + 1);
      for (const s of block.signers ?? [])
        signed.set(s.validator, (signed.get(s.validator) ?? 0) + 1);
    }
    const own = this.node.publicKey;
    const self =
      own === null ? -1 : set.validators.findIndex((v) => toHex(v.publicKey) === toHex(own));
    const step = replica.step;
    return {
      height: replica.height,
      round: replica.round,
      step: step === 0 ? 'propose' : step === 1 ? 'prevote' : 'precommit',
      peers: this.node.peerCount(),
      lastCommitLatencyMs: Math.max(0, Math.round(this.node.loop.stats.lastCommitLatencyMs)),
      recentBlocks: recent,
      validators: set.validators.map((v, i) => {
        const address = formatAddress(v.address);
        const signer = last?.signers?.find((s) => s.validator === address);
        return {
          address,
          votingPower: v.power,
          signedLastCommit: signer !== undefined,
          ...(signer !== undefined ? { lastCommitDelayMs: signer.delayMs } : {}),
          signedRecent: signed.get(address) ?? 0,
          proposedRecent: proposed.get(address) ?? 0,
          self: i === self,
        };
      }),
    };
  }

  private riskOf(p: Published): RiskView {
    return {
      height: p.height,
      insuranceQuote: p.insuranceQuote,
      insurance: this.insurance.slice(-VIEW_INSURANCE_POINTS_KEPT),
      events: this.riskEvents.slice(),
      oracle: [...p.oracle()],
    };
  }

  /**
   * Round, signers, evidence and oracle of a block and a certificate for it.
   * Nodes can hold different, equally valid certificates for one height; the
   * canonical one is the lastCommit of the next block, used once it exists, so
   * every node answers the same for every block below its tip.
   */
  private consensusFieldsOf(
    block: Block,
    commit: CommitCertificate | null,
  ): Pick<BlockView, 'round' | 'signers' | 'evidence'> {
    return {
      ...(commit !== null
        ? {
            round: commit.round,
            signers: signersOf(commit, this.setAt(commit.height), block.header.timeMs),
          }
        : {}),
      evidence: block.evidence.map((e) => evidenceOf(e, this.setAt(e.voteA.height))),
    };
  }

  /** The oracle input of a block, decoded on first read (in the set that decided its lastCommit). */
  private oracleOf(block: Block): () => readonly OracleView[] {
    const lastCommit = block.lastCommit;
    const set = lastCommit === null ? null : this.setAt(lastCommit.height);
    return lazy(() => (set === null ? [] : oracleViewOf(lastCommit, set)));
  }

  private txOf(hash: string): TxView | undefined {
    const known = this.txs.get(hash);
    if (known !== undefined) return known;
    // Held again (submitted again after its drop): pending, whatever became of the copy before.
    if (this.node.mempool.has(hash)) return { hash, status: 'pending' };
    return this.dropped.get(hash);
  }

  private blockOf(height: number): BlockView | undefined {
    const kept = this.blocks.get(height);
    if (kept !== undefined) return kept.view();
    const stored = loadCommitted(this.storage, height);
    if (stored === null) return undefined;
    const results = this.node.results.load(height);
    let appHash: string;
    if (results !== null) appHash = toHex(results.appHash);
    else {
      const next = loadCommitted(this.storage, height + 1);
      appHash =
        next !== null
          ? toHex(next.block.header.previousAppHash)
          : height === this.state.height
            ? toHex(this.node.app.appHash)
            : '';
    }
    const txs: BlockTxView[] = stored.block.txs.map((raw, index) => {
      const hash = toHex(sha256(raw));
      if (results === null || results.results.length !== stored.block.txs.length) {
        // Executed before the results log existed, or its record is damaged:
        // known to be in the block, not how it ended.
        return { hash, ok: true, resultUnavailable: true };
      }
      return blockTxOf(txViewOf(hash, height, index, results.results[index]!));
    });
    const timeMs = stored.block.header.timeMs;
    // Results saved without details (no view, or before they were kept) leave the fields out.
    const details = results?.details;
    return {
      height,
      timeMs,
      hash: toHex(blockHashOf(stored.block)),
      appHash,
      proposer: addressText(stored.block.header.proposerAddress),
      txs,
      ...this.consensusFieldsOf(
        stored.block,
        loadCommitted(this.storage, height + 1)?.block.lastCommit ?? stored.commit,
      ),
      oracle: [...this.oracleOf(stored.block)()],
      ...(details !== undefined
        ? {
            events: details.events.flatMap((e) => this.eventOf(e, height, timeMs)),
            insuranceQuote: quoteString(details.insuranceQuote),
          }
        : {}),
    };
  }

  /**
   * Notes a stored block's proposer and signers. The signers come from its own
   * certificate until the next block's lastCommit, the canonical one, is read
   * (as consensusFieldsOf chooses).
   */
  private noteStoredConsensus(height: number, { block, commit }: StoredBlock): void {
    const timeMs = block.header.timeMs;
    this.storedConsensus.set(height, {
      proposer: addressText(block.header.proposerAddress),
      timeMs,
      signers: signersOf(commit, this.setAt(commit.height), timeMs),
    });
    const lastCommit = block.lastCommit;
    const previous = this.storedConsensus.get(height - 1);
    if (lastCommit !== null && previous !== undefined) {
      previous.signers = signersOf(lastCommit, this.setAt(lastCommit.height), previous.timeMs);
    }
  }

  /**
   * After a restart: indexes the hashes of recently stored blocks, so `tx`
   * finds them, and lists their trades again, so the recent trades and the
   * last trade price do not start empty. Returns each live market's recent
   * trades (and notes its last trade price), numbered back from its
   * tradeCount. Trades are listed only from the heights after the last one
   * whose results cannot tell every trade it made (no results, no details,
   * or details from before the uncross trades were kept): numbering back
   * needs every trade up to the state's height.
   */
  private readStoredBlocks(): Map<string, TradeView[]> {
    const top = this.state.height;
    this.indexOlderTxs(top - VIEW_BLOCKS_KEPT);
    let trades = new Map<string, StoredTrades>();
    const placedSides = new Map<number, 'buy' | 'sell'>();
    // Only the last VIEW_TRADES_KEPT listed of each market are kept (trimmed
    // in steps of as many): a busy window holds millions of trades.
    const add = (instrument: string, t: StoredTrade): void => {
      let s = trades.get(instrument);
      if (s === undefined)
        trades.set(instrument, (s = { count: 0, lastPriceTicks: 0, listed: [] }));
      if (t.view !== null) s.listed.push({ position: s.count, view: t.view });
      s.count++;
      s.lastPriceTicks = t.priceTicks;
      if (s.listed.length >= 2 * VIEW_TRADES_KEPT) s.listed.splice(0, VIEW_TRADES_KEPT);
    };
    for (let h = Math.max(1, top - VIEW_BLOCKS_KEPT + 1); h <= top; h++) {
      const stored = loadCommitted(this.storage, h);
      const results = stored === null ? null : this.node.results.load(h);
      if (stored !== null && h > top - VIEW_CONSENSUS_RECENT_BLOCKS)
        this.noteStoredConsensus(h, stored);
      const complete =
        stored !== null && results !== null && results.results.length === stored.block.txs.length;
      stored?.block.txs.forEach((raw, index) => {
        const hash = toHex(sha256(raw));
        this.remember(
          hash,
          complete
            ? txViewOf(hash, h, index, results.results[index]!)
            : { hash, status: 'committed', height: h, index, resultUnavailable: true },
        );
      });
      const details = results?.details;
      if (stored !== null && details !== undefined) {
        const timeMs = stored.block.header.timeMs;
        for (const e of details.events) {
          if (e.type === 'marketSettled') this.storedEnds.push(settledView(e, h, timeMs));
        }
        // The risk feed's history, as a node that ran on would have it.
        this.noteRisk(
          h,
          timeMs,
          quoteString(details.insuranceQuote),
          details.events.flatMap((e) => this.eventOf(e, h, timeMs)),
          stored.block.evidence.map((e) => evidenceOf(e, this.setAt(e.voteA.height))),
        );
      }
      if (!complete || results.details?.auctionTradesKept !== true) {
        trades = new Map();
        continue;
      }
      const timeMs = stored.block.header.timeMs;
      storedBlockTrades(this.state, stored.block.txs, results, h, timeMs, placedSides, add);
    }
    const recent = new Map<string, TradeView[]>();
    for (const [instrument, s] of trades) {
      const market = this.state.marketByName.get(instrument);
      if (market === undefined || s.count > market.tradeCount) continue;
      const firstId = market.tradeCount - s.count + 1;
      const views = s.listed
        .slice(-VIEW_TRADES_KEPT)
        .map(({ position, view }) => ({ tradeId: firstId + position, instrument, ...view }));
      this.lastTrade.set(instrument, s.lastPriceTicks);
      recent.set(instrument, views);
    }
    return recent;
  }

  /**
   * After a restart, before the recent blocks: the transactions of the
   * blocks from `from` down, newest first, until VIEW_TXS_KEPT of them or
   * VIEW_TX_INDEX_BLOCKS_MAX blocks, remembered oldest first, so that `tx`
   * answers for about what a node that ran on remembers (it keeps the last
   * VIEW_TXS_KEPT, however many blocks they span). Stops at a block or
   * results not stored (pruned, or executed before the results log).
   */
  private indexOlderTxs(from: number): void {
    const older: { hash: string; view: TxView }[][] = [];
    let count = 0;
    const last = Math.max(1, from - VIEW_TX_INDEX_BLOCKS_MAX + 1);
    for (let h = from; h >= last && count < VIEW_TXS_KEPT; h--) {
      let stored: ReturnType<typeof loadCommitted>;
      let results: BlockResults | null;
      try {
        stored = loadCommitted(this.storage, h);
        results = stored === null ? null : this.node.results.load(h);
      } catch (error) {
        // A damaged old block or result costs its lookups, not the start.
        if (!(error instanceof StorageError)) throw error;
        this.log.warn(
          { height: h, error: error.message },
          'stored block unreadable; older transactions not indexed',
        );
        break;
      }
      if (stored === null || results === null) break;
      if (results.results.length !== stored.block.txs.length) break;
      const txs = stored.block.txs.map((raw, index) => {
        const hash = toHex(sha256(raw));
        return { hash, view: txViewOf(hash, h, index, results.results[index]!) };
      });
      older.push(txs);
      count += txs.length;
    }
    for (let i = older.length - 1; i >= 0; i--) {
      for (const { hash, view } of older[i]!) this.remember(hash, view);
    }
  }

  private remember(hash: string, view: TxView): void {
    // The same bytes included again (a proposer may) are refused for their
    // used nonce: that refusal says nothing of what the copy before did.
    if (isReplayRefusal(view) && this.txs.has(hash)) return;
    // An evicted transaction another validator proposed: its block's answer is the one that holds.
    this.dropped.delete(hash);
    this.txs.delete(hash);
    this.txs.set(hash, view);
    if (this.txs.size > VIEW_TXS_KEPT) {
      const oldest = this.txs.keys().next().value;
      if (oldest !== undefined) this.txs.delete(oldest);
    }
  }

  private accountOf(address: string, subaccount?: number) {
    // Accounts are read from the live state, which a halt may have left in the
    // middle of a block (execution threw): a halted node serves none.
    const halt = this.node.loop.haltReport;
    if (halt !== null) {
      throw new ApiError('Unavailable', 503, `the node halted (${halt.code}): no account state`);
    }
    let bytes: Uint8Array;
    try {
      bytes = parseAddress(address);
    } catch {
      return undefined;
    }
    const state = this.state;
    const principal = state.principals.get(bytesKey(bytes));
    if (principal === undefined) return undefined;
    const subaccounts: SubaccountView[] = [];
    const numbers = [...principal.subaccounts.keys()].sort((a, b) => a - b);
    const orders = { left: this.accountOrdersMax, truncated: false };
    for (const n of numbers) {
      if (subaccount !== undefined && n !== subaccount) continue;
      subaccounts.push(this.subaccountOf(principal.subaccounts.get(n)!, orders));
    }
    return {
      address: formatAddress(bytes),
      height: state.height,
      subaccounts,
      ...(orders.truncated ? { openOrdersTruncated: true } : {}),
    };
  }

  private subaccountOf(
    account: Account,
    orders: { left: number; truncated: boolean },
  ): SubaccountView {
    const state = this.state;
    const equity = equityQuote(state, account);
    const initial = initialMarginQuote(state, account);
    return {
      subaccount: account.subaccount,
      cashQuote: quoteString(account.cashQuote),
      equityQuote: quoteString(equity),
      marginUsedQuote: quoteString(initial),
      maintenanceMarginQuote: quoteString(maintenanceMarginQuote(state, account)),
      marginFreeQuote: quoteString(equity - initial),
      positions: heldMarkets(state, account).map((m) => positionOf(m, account)),
      openOrders: recordMarkets(state, account).flatMap((m) => {
        const open = this.openOrdersOf(m, account, orders.left);
        orders.left -= open.length;
        if (open.length < m.ownerOrderCount(account.index)) orders.truncated = true;
        return open;
      }),
    };
  }

  /**
   * The account's open orders in the market, at most `max` of them: those of
   * its book, then, during a call auction, those waiting in the auction (they
   * hold margin and can be cancelled like the others).
   */
  private openOrdersOf(market: MarketState, account: Account, max = Infinity): OrderView[] {
    const out: OrderView[] = [];
    if (market.ownerOrderCount(account.index) === 0) return out;
    for (const book of booksOf(market)) {
      if (book.ownerOrderCount(account.index) === 0) continue;
      for (const o of book.ownerOrders(account.index)) {
        if (out.length >= max) return out;
        out.push(this.orderViewOf(market, o, book !== market.book));
      }
    }
    return out;
  }

  /**
   * The account's order `note` names, if it still rests: looked up by id, so
   * a block's update costs the orders it touched, not all the account rests.
   */
  private restingOrderOf(account: Account, note: OrderNote): OrderView | undefined {
    const market = this.state.marketByName.get(note.instrument);
    if (market === undefined || market.retired) return undefined;
    const book = bookHolding(market, note.orderId);
    const o = book?.order(note.orderId);
    return o === undefined || o.owner !== account.index
      ? undefined
      : this.orderViewOf(market, o, book !== market.book);
  }

  /** `inAuction`: the order waits among a call auction's orders, not in the market's book. */
  private orderViewOf(market: MarketState, o: RestingOrder, inAuction: boolean): OrderView {
    const meta = this.state.orders.get(o.orderId);
    const placedLots = meta?.placedLots ?? o.sizeLots;
    return {
      orderId: o.orderId,
      instrument: market.params.instrument,
      ...(meta?.clientOrderId ? { clientOrderId: meta.clientOrderId } : {}),
      side: o.side,
      priceTicks: o.priceTicks,
      sizeLots: placedLots,
      remainingLots: o.sizeLots,
      filledLots: placedLots - o.sizeLots,
      status: 'open',
      reduceOnly: false,
      ...(inAuction ? { auction: true } : {}),
    };
  }

  /**
   * The insurance point, the risk events and the evidence of a block: one
   * just executed, or one a restart read back (its stored details).
   */
  private noteRisk(
    height: number,
    timeMs: number,
    insuranceQuote: string,
    events: readonly BlockEventView[],
    evidence: readonly EvidenceView[],
  ): void {
    this.insurance.push({ height, timeMs, insuranceQuote });
    if (this.insurance.length > 2 * VIEW_INSURANCE_POINTS_KEPT)
      this.insurance = this.insurance.slice(-VIEW_INSURANCE_POINTS_KEPT);
    for (const e of events) if (e.type !== 'funding') this.riskEvents.push(e);
    if (this.riskEvents.length > VIEW_RISK_EVENTS_KEPT)
      this.riskEvents = this.riskEvents.slice(-VIEW_RISK_EVENTS_KEPT);
    for (const e of evidence) {
      this.evidenceSeen.set(
        e.validator,
        `duplicate ${e.voteType} at height ${e.height} round ${e.round} (evidence in block ${height})`,
      );
    }
  }

  /** Exchange events to API events; those not in PUBLISHED_EVENT_TYPES map to none. */
  private eventOf(e: ExchangeEvent, height: number, timeMs: number): BlockEventView[] {
    const who = (index: number): { address?: string; subaccount?: number } => {
      const a = this.state.accounts[index];
      return a === undefined ? {} : { address: formatAddress(a.address), subaccount: a.subaccount };
    };
    switch (e.type) {
      case 'liquidationCancels':
        return [
          { type: 'liquidationCancels', height, timeMs, ...who(e.account), orders: e.orders },
        ];
      case 'liquidation':
        return [
          {
            type: 'liquidation',
            height,
            timeMs,
            instrument: e.market,
            ...who(e.account),
            sizeLots: e.closedLots,
            amountQuote: quoteString(e.feeQuote),
          },
        ];
      case 'deleverage': {
        const other = who(e.counterparty);
        return [
          {
            type: 'deleverage',
            height,
            timeMs,
            instrument: e.market,
            ...who(e.account),
            ...(other.address !== undefined
              ? { counterparty: other.address, counterpartySubaccount: other.subaccount! }
              : {}),
            sizeLots: e.sizeLots,
            priceTicks: e.priceTicks,
          },
        ];
      }
      case 'insuranceCover':
        return [
          {
            type: 'insuranceCover',
            height,
            timeMs,
            ...who(e.account),
            amountQuote: quoteString(e.amountQuote),
          },
        ];
      case 'marketHalted':
      case 'marketResumed':
      case 'marketRiskChanged':
        return [{ type: e.type, height, timeMs, instrument: e.market }];
      case 'feeTiersChanged':
        return [{ type: e.type, height, timeMs }];
      case 'funding':
        return [{ type: 'funding', height, timeMs, instrument: e.market, ratePpm: e.ratePpm }];
      case 'auctionStarted':
        return [
          {
            type: 'auctionStarted',
            height,
            timeMs,
            instrument: e.market,
            priceTicks: e.priceTicks,
            endMs: e.endMs,
          },
        ];
      case 'auctionEnded':
        return [
          {
            type: 'auctionEnded',
            height,
            timeMs,
            instrument: e.market,
            priceTicks: e.priceTicks,
            sizeLots: e.volumeLots,
          },
        ];
      case 'marketSettled':
        return [
          {
            type: 'marketSettled',
            height,
            timeMs,
            instrument: e.market,
            priceQuote: quoteString(e.settlementPriceQuote),
            amountQuote: quoteString(e.valueQuote),
            positions: e.positions,
          },
        ];
      case 'validatorJailed':
        return [
          {
            type: 'validatorJailed',
            height,
            timeMs,
            validator: formatAddress(addressOf(e.validator)),
            offenceHeight: e.offenceHeight,
            amountQuote: quoteString(e.burnedStake),
          },
        ];
      default:
        return [];
    }
  }

  /**
   * The validators' view, rebuilt only when a validator's stake or jailing
   * moved or the block carried evidence (a jailing's reason); otherwise the
   * one already published.
   */
  private validatorsNow(state: ExchangeState, height: number, evidence: boolean): ValidatorView[] {
    const built = this.validatorsBuilt;
    if (!evidence && built !== null && sameValidators(built.from, state)) return built.view;
    const view = validatorsOf(state).map((v) => {
      if (!v.jailed) {
        this.jailings.delete(v.address);
        return v;
      }
      let j = this.jailings.get(v.address);
      if (j === undefined) {
        const reason = this.evidenceSeen.get(v.address);
        // The exchange records the height that jailed it (a snapshot keeps it too).
        j = { height: v.jailedHeight ?? height, ...(reason !== undefined ? { reason } : {}) };
        this.jailings.set(v.address, j);
      }
      return {
        ...v,
        jailedHeight: j.height,
        ...(j.reason !== undefined ? { jailReason: j.reason } : {}),
      };
    });
    this.validatorsBuilt = { from: state.validators.map(validatorInputsOf), view };
    return view;
  }

  /** The live markets' instrument views, in market order. */
  private instrumentsNow(): InstrumentView[] {
    const out: InstrumentView[] = [];
    for (const m of this.state.markets) {
      if (!m.retired) out.push(this.tracked[m.index]!.instrument);
    }
    return out;
  }

  // --- after each block -------------------------------------------------------------

  private onBlock(committed: CommittedBlock): void {
    const { executed, txs } = committed;
    const state = this.state;
    const height = executed.block.header.height;
    const timeMs = executed.block.header.timeMs;
    // Decoded once by the application; null where the checks failed (and the result is null too).
    const decoded = txs.txs;

    const txViews: TxView[] = [];
    const blockTxs: BlockTxView[] = [];
    txs.results.forEach((result, index) => {
      const hash = txs.hashes[index]!;
      const view = txViewOf(hash, height, index, result);
      txViews.push(view);
      this.remember(hash, view);
      blockTxs.push(blockTxOf(view));
    });
    const events = txs.exchange.events.flatMap((e) => this.eventOf(e, height, timeMs));
    const insuranceQuote = quoteString(state.insuranceQuote);
    const fields: Omit<BlockView, 'oracle'> = {
      height,
      timeMs,
      hash: toHex(executed.blockHash),
      appHash: toHex(executed.result.appHash),
      proposer: addressText(executed.block.header.proposerAddress),
      txs: blockTxs,
      ...this.consensusFieldsOf(executed.block, executed.commit),
      events,
      insuranceQuote,
    };
    const kept = new KeptBlock(fields, this.oracleOf(executed.block));
    this.noteRisk(height, timeMs, insuranceQuote, events, fields.evidence ?? []);
    this.blocks.set(height, kept);
    this.canonicalize(height - 1, executed.block.lastCommit);
    this.blocks.delete(height - VIEW_BLOCKS_KEPT);

    const wanted = this.accountsWanted();
    const activity = this.collectActivity(
      decoded,
      txs.results,
      txs.exchange.events,
      height,
      timeMs,
      wanted !== 'none',
    );
    this.noteLiquidationFills(activity, txs.exchange.events, height, timeMs);
    this.noteMovedBalances(activity, txs.exchange.events);
    this.alignTradeIds(activity.trades);
    this.noteSettlements(activity, txs.exchange.events, height);
    const closedByTrading = this.held.refresh(state, activity.traded, height);
    if (activity.accounts) this.noteClosedByTrading(activity, closedByTrading);
    const ordersMoved = this.noteRemovals(activity, txs.exchange.events);
    const prev = this.published;
    const published = this.publishMarkets(prev, activity.trades, height);
    const ends = this.endsOf(published.ended, txs.exchange.events, height, timeMs);
    this.published = {
      height,
      timeMs,
      appHash: fields.appHash,
      validators: this.validatorsNow(state, height, executed.block.evidence.length > 0),
      instruments: published.instrumentsMoved ? this.instrumentsNow() : prev.instruments,
      markets: published.markets,
      insuranceQuote: fields.insuranceQuote!,
      feeTiers: this.feeTiersNow(),
      oracle: kept.oracle,
      ended: endedAfter(prev.ended, ends, published.listed),
    };
    const update = new ChainUpdate(
      height,
      timeMs,
      kept,
      txViews,
      published.deltas,
      activity.trades,
      wanted === 'none' ? [] : this.accountUpdates(activity, wanted === 'all' ? null : wanted),
      published.movedTickers,
      ends,
    );
    // After the account updates: they read the orders as they rested before this block.
    this.rested.refresh(state, ordersMoved);
    for (const listener of this.listeners.keys()) {
      try {
        listener(update);
      } catch (error) {
        this.log.error({ error: String(error) }, 'a view listener failed');
      }
    }
  }

  /**
   * The live markets after a block: a new record for each market the block
   * changed (its book, its trades, what its ticker shows), the others shared
   * with the previous height. O(live markets) comparisons, and work only for
   * what moved.
   */
  private publishMarkets(
    prev: Published,
    trades: readonly TradeView[],
    height: number,
  ): {
    markets: ReadonlyMap<string, PublishedMarket>;
    deltas: BookDelta[];
    movedTickers: (readonly [TickerSlot | undefined, TickerSlot])[];
    instrumentsMoved: boolean;
    /** Markets this block listed, and those it ended (no longer live), by instrument. */
    listed: string[];
    ended: string[];
  } {
    // One new list per instrument that traded (published lists are never changed in place).
    const newTrades = new Map<string, TradeView[]>();
    for (const t of trades) {
      const list = newTrades.get(t.instrument);
      if (list === undefined) newTrades.set(t.instrument, [t]);
      else list.push(t);
    }
    let markets: Map<string, PublishedMarket> | null = null;
    const deltas: BookDelta[] = [];
    const movedTickers: (readonly [TickerSlot | undefined, TickerSlot])[] = [];
    let instrumentsMoved = false;
    const listed: string[] = [];
    const ended: string[] = [];
    let live = 0;
    for (const m of this.state.markets) {
      if (m.retired) {
        this.tracked[m.index] = undefined;
        continue;
      }
      live++;
      const name = m.params.instrument;
      let tracked = this.tracked[m.index];
      if (tracked === undefined || tracked.name !== name) {
        // Listed by this block: the feed follows it from here, its first delta at the next change.
        const opened = this.openMarket(m, height - 1);
        listed.push(name);
        tracked = this.tracked[m.index]!;
        (markets ??= new Map(prev.markets)).set(name, opened);
        movedTickers.push([undefined, opened.ticker]);
        instrumentsMoved = true;
      }
      const old = tracked.published;
      if (
        m.halted !== tracked.halted ||
        auctionEndOf(m) !== tracked.auctionEndMs ||
        m.params !== tracked.params
      ) {
        tracked.instrument = instrumentOf(m);
        tracked.halted = m.halted;
        tracked.auctionEndMs = auctionEndOf(m);
        tracked.params = m.params;
        instrumentsMoved = true;
      }
      let book = old.book;
      if (this.refreshLevels(m, tracked.levels)) {
        book = windowedBook(name, book, tracked.levels, height, deltas);
      }
      const added = newTrades.size === 0 ? undefined : newTrades.get(name);
      const marketTrades =
        added === undefined ? old.trades : lastKept(old.trades, added, VIEW_TRADES_KEPT);
      let ticker = old.ticker;
      const lastTradeTicks =
        added === undefined ? ticker.inputs.lastTradeTicks : this.lastTrade.get(name);
      if (tickerMoved(ticker.inputs, m, lastTradeTicks)) {
        ticker = new TickerSlot(tickerInputsOf(m, lastTradeTicks));
        movedTickers.push([old.ticker, ticker]);
      }
      if (book !== old.book || marketTrades !== old.trades || ticker !== old.ticker) {
        tracked.published = { book, ticker, trades: marketTrades };
        (markets ??= new Map(prev.markets)).set(name, tracked.published);
      }
    }
    if ((markets ?? prev.markets).size > live) {
      // Settled by this block: the feed follows the live markets only.
      markets ??= new Map(prev.markets);
      for (const name of [...markets.keys()]) {
        if (this.state.marketByName.has(name)) continue;
        markets.delete(name);
        this.tradeIds.delete(name);
        ended.push(name);
      }
      instrumentsMoved = true;
    }
    return {
      markets: markets ?? prev.markets,
      deltas,
      movedTickers,
      instrumentsMoved,
      listed,
      ended,
    };
  }

  /**
   * How each market the block ended did: settled, with its settlement from
   * the block's event, or retired (no market leaves otherwise today, but one
   * that did would still end its channels).
   */
  private endsOf(
    names: readonly string[],
    events: readonly ExchangeEvent[],
    height: number,
    timeMs: number,
  ): MarketEndView[] {
    if (names.length === 0) return [];
    return names.map((instrument) => {
      const e = events.find((x) => x.type === 'marketSettled' && x.market === instrument);
      return e?.type === 'marketSettled'
        ? settledView(e, height, timeMs)
        : { instrument, reason: 'retired', height, timeMs };
    });
  }

  /** Replaces the kept view of `height` (or the signers a restart read back of it) with its canonical certificate. */
  private canonicalize(height: number, lastCommit: CommitCertificate | null): void {
    if (lastCommit === null || lastCommit.height !== height) return;
    const kept = this.blocks.get(height);
    if (kept === undefined) {
      // The top block a restart read back counted its own certificate until now.
      const stored = this.storedConsensus.get(height);
      if (stored !== undefined) {
        stored.signers = signersOf(lastCommit, this.setAt(lastCommit.height), stored.timeMs);
      }
      return;
    }
    const fields = {
      ...kept.fields,
      round: lastCommit.round,
      signers: signersOf(lastCommit, this.setAt(lastCommit.height), kept.fields.timeMs),
    };
    this.blocks.set(height, new KeptBlock(fields, kept.oracle));
  }

  /** Brings one market's published levels up to its book (`full`, in place): whether any changed. */
  private refreshLevels(m: MarketState, full: PublishedLevels): boolean {
    // The book counts its level changes: an untouched book (most markets, most
    // blocks) has nothing to diff, and reading its depth would cost O(levels).
    const changeCount = m.book.changes.changeCount;
    if (full.book === m.book && full.changeCount === changeCount) return false;
    full.book = m.book;
    full.changeCount = changeCount;
    const bids = refreshSide(full.bids, depthMap(m, 'buy'));
    const asks = refreshSide(full.asks, depthMap(m, 'sell'));
    return bids || asks;
  }

  /**
   * Trades and fills of the block's uncrossings and transactions, in
   * execution order, and the accounts they touched.
   */
  private collectActivity(
    decoded: readonly (SignedTx | null)[],
    results: readonly (TxResult | null)[],
    events: readonly ExchangeEvent[],
    height: number,
    timeMs: number,
    accounts: boolean,
  ): Activity {
    const state = this.state;
    const activity: Activity = {
      accounts,
      trades: [],
      fills: new Map(),
      touched: new Map(),
      orders: new Map(),
      settlements: new Map(),
      closed: new Map(),
      traded: new Map(),
      moved: new Set(),
      acting: new Set(),
      placedSides: new Map(),
    };
    // Uncrossings run before the transactions: a cancel of what one left is noted after it.
    this.noteAuctionTrades(activity, events, height, timeMs);
    const present = decoded.map((tx, i) => (tx !== null && results[i] !== null ? i : -1));
    const kept = present.filter((i) => i >= 0);
    const order = executionOrder(kept.map((i) => decoded[i]!.action)).map((j) => kept[j]!);
    for (const i of order) {
      const tx = decoded[i]!;
      const result = results[i]!;
      // Looked up whatever `accounts`: RestedOrders needs the acting accounts.
      const subaccounts = state.principals.get(bytesKey(tx.account))?.subaccounts;
      const account = subaccounts?.get(tx.subaccount);
      const actions = tx.action.kind === 'batch' ? tx.action.actions : [tx.action];
      if (activity.accounts) {
        // Both ends of a transfer changed, and neither need be the subaccount
        // that signed it (which need not even exist).
        actions.forEach((action, k) => {
          if (action.kind !== 'transfer' || result.actions[k]?.ok !== true) return;
          for (const n of [action.fromSubaccount, action.toSubaccount]) {
            const end = subaccounts?.get(n);
            if (end !== undefined) touch(activity, end);
          }
        });
      }
      if (account === undefined && activity.accounts) continue;
      // The taker's account matters to its account update only.
      const taker = activity.accounts ? account! : null;
      if (taker !== null) touch(activity, taker);
      for (let k = 0; k < result.actions.length; k++) {
        const action = actions[k] as Action | undefined;
        const r = result.actions[k]!;
        if (action === undefined || !r.ok) continue;
        if (account !== undefined && removesOwn(action)) activity.acting.add(account.index);
        if (action.kind === 'cancel' && action.orderId !== undefined)
          activity.moved.add(action.orderId);
        this.noteAction(activity, action, r, taker, account?.index, height, timeMs);
      }
    }
    return activity;
  }

  /**
   * The trades of the block's liquidations (they run after its transactions),
   * flagged as liquidations, with the fills of both sides; with the
   * deleveraging among them, in the order they came, the positions they moved.
   */
  private noteLiquidationFills(
    activity: Activity,
    events: readonly ExchangeEvent[],
    height: number,
    timeMs: number,
  ): void {
    for (const e of events) {
      if (e.type === 'deleverage') {
        // Each side reduces its own position (the counterparty holds the other side).
        const trade = { lots: e.sizeLots, priceTicks: e.priceTicks, reduces: true } as const;
        noteTraded(activity, e.market, e.account, trade);
        noteTraded(activity, e.market, e.counterparty, trade);
        continue;
      }
      if (e.type !== 'liquidationFill') continue;
      const account = this.state.accounts[e.account];
      if (account === undefined) continue;
      this.noteTrade(activity, {
        instrument: e.market,
        taker: account,
        takerIndex: e.account,
        takerOrderId: e.orderId,
        takerSide: e.side,
        takerFeeQuote: 0n,
        makerAccount: e.makerAccount,
        makerOrderId: e.makerOrderId,
        makerFeeQuote: e.makerFeeQuote,
        priceTicks: e.priceTicks,
        sizeLots: e.sizeLots,
        liquidation: true,
        height,
        timeMs,
      });
    }
  }

  /**
   * The accounts whose money or positions the block changed without a
   * transaction or a fill of their own: a deposit the validators credited,
   * each side of a deleveraging (a liquidation the book could not close), a
   * liquidated account and the cover the insurance fund paid it. Their
   * subscribers would otherwise hold the state before the block.
   */
  private noteMovedBalances(activity: Activity, events: readonly ExchangeEvent[]): void {
    if (!activity.accounts) return;
    const accounts = this.state.accounts;
    const note = (index: number) => {
      const account = accounts[index];
      if (account !== undefined) touch(activity, account);
    };
    for (const e of events) {
      if (e.type === 'deleverage') {
        note(e.account);
        note(e.counterparty);
      } else if (
        e.type === 'depositCredited' ||
        e.type === 'insuranceCover' ||
        e.type === 'liquidation'
      ) {
        note(e.account);
      }
    }
  }

  /**
   * The fills of the block's call-auction uncrossings: public trades flagged
   * as auction trades, and a fill for each side (neither took; each paid
   * half a taker fee).
   */
  private noteAuctionTrades(
    activity: Activity,
    events: readonly ExchangeEvent[],
    height: number,
    timeMs: number,
  ): void {
    for (const e of events) {
      if (e.type !== 'auctionTrade') continue;
      const name = e.market;
      const tradeId = this.nextTradeId(name, e.priceTicks);
      const { priceTicks, sizeLots } = e;
      activity.trades.push({
        tradeId,
        instrument: name,
        priceTicks,
        sizeLots,
        takerSide: 'buy',
        height,
        timeMs,
        auction: true,
      });
      noteTraded(activity, name, e.buyAccount, { lots: sizeLots, priceTicks });
      noteTraded(activity, name, e.sellAccount, { lots: -sizeLots, priceTicks });
      if (!activity.accounts) continue;
      const market = this.state.marketByName.get(name);
      const sides = [
        { side: 'buy', account: e.buyAccount, orderId: e.buyOrderId, feeQuote: e.buyFeeQuote },
        { side: 'sell', account: e.sellAccount, orderId: e.sellOrderId, feeQuote: e.sellFeeQuote },
      ] as const;
      for (const s of sides) {
        const account = this.state.accounts[s.account];
        if (account === undefined) continue;
        touch(activity, account);
        addFill(activity, account, {
          tradeId,
          orderId: s.orderId,
          instrument: name,
          side: s.side,
          priceTicks,
          sizeLots,
          feeQuote: quoteString(s.feeQuote),
          liquidity: 'auction',
          height,
          timeMs,
        });
        const resting = market?.book.order(s.orderId);
        noteOrder(activity, account, {
          orderId: s.orderId,
          instrument: name,
          status: resting === undefined ? 'filled' : 'open',
          side: s.side,
          remainingLots: resting?.sizeLots ?? 0,
        });
      }
    }
  }

  /**
   * The positions each settled market closed, from its holders as of the
   * block before (HeldPositions, whatever the time since): settlement comes
   * before the block's transactions, so their records were still those when
   * it closed them. The market's holdings are forgotten whether or not the
   * accounts' parts are noted.
   */
  private noteSettlements(
    activity: Activity,
    events: readonly ExchangeEvent[],
    height: number,
  ): void {
    for (const e of events) {
      if (e.type !== 'marketSettled') continue;
      const settling = this.held.settle(e.market, e.positions, height);
      if (settling === undefined || !activity.accounts) continue;
      for (const held of settling.holdings) {
        const account = this.state.accounts[held.account];
        if (account === undefined) continue;
        touch(activity, account);
        const list = activity.settlements.get(account.index) ?? [];
        list.push({
          instrument: e.market,
          sizeLots: held.sizeLots,
          valueQuote: quoteString(e.valueQuote),
          height,
        });
        activity.settlements.set(account.index, list);
        const closed = activity.closed.get(account.index) ?? [];
        closed.push(closedPosition(settling.market, held, e.valueQuote));
        activity.closed.set(account.index, closed);
      }
    }
  }

  /**
   * The positions the block's trades left flat (fills of transactions and
   * uncrosses, a liquidation's fills, deleveraging), each listed once more
   * with sizeLots 0: the record keeps its realized PnL (with what the closing
   * trade realized) and its funding, but not its cost basis, so the entry it
   * had when it closed comes from HeldPositions.refresh. A position flipped
   * through zero is not flat: it is listed with its new size only.
   */
  private noteClosedByTrading(activity: Activity, closed: readonly ClosedByTrading[]): void {
    const state = this.state;
    for (const c of closed) {
      const account = state.accounts[c.account];
      const p = account === undefined ? undefined : exchangePositionOf(account, c.market);
      if (account === undefined || p === undefined) continue;
      touch(activity, account);
      const rows = activity.closed.get(account.index) ?? [];
      rows.push({
        instrument: c.market.params.instrument,
        sizeLots: 0,
        entryPriceTicks: c.entryPriceTicks,
        unrealizedPnlQuote: '0',
        realizedPnlQuote: quoteString(p.realizedPnlQuote),
        fundingQuote: quoteString(p.fundingQuote),
      });
      activity.closed.set(account.index, rows);
    }
  }

  /**
   * The orders the block removed without filling them in full, noted
   * cancelled: those the exchange reports (the fill guard's makerCancelled,
   * good-til expiry), those an account's own actions or its liquidation
   * removed without a report (self-trade prevention, cancelAll, a cancel by
   * client order id), found among the orders the acting accounts rested
   * before the block, and those of a market its settlement removed. An order
   * gone after a maker fill is left to its fills (accountUpdates). Returns
   * every order the block may have changed (the transactions' ones noted by
   * collectActivity, whether or not a listener reads accounts), for
   * RestedOrders.refresh. O(events + orders the acting accounts rested), and
   * O(kept orders) in a block that settles a market.
   */
  private noteRemovals(activity: Activity, events: readonly ExchangeEvent[]): Set<number> {
    const state = this.state;
    const { moved, acting } = activity;
    let settled: Set<string> | undefined;
    const cancelled = (accountIndex: number, orderId: number): void => {
      const account = state.accounts[accountIndex];
      const before = this.rested.get(orderId);
      if (account === undefined || before === undefined) return;
      touch(activity, account);
      noteOrder(activity, account, { orderId, instrument: before.instrument, status: 'cancelled' });
    };
    for (const e of events) {
      if (e.type === 'makerCancelled' || e.type === 'orderExpired') {
        moved.add(e.orderId);
        cancelled(e.account, e.orderId);
      } else if (e.type === 'auctionTrade') {
        moved.add(e.buyOrderId).add(e.sellOrderId);
      } else if (e.type === 'liquidationFill') {
        moved.add(e.makerOrderId);
        acting.add(e.account);
      } else if (e.type === 'liquidation' || e.type === 'liquidationCancels') {
        acting.add(e.account);
      } else if (e.type === 'marketSettled') {
        (settled ??= new Set()).add(e.market);
      }
    }
    // A settled market's book goes without a report of its orders; settlements
    // are rare (one block per expiry), so every kept order is looked at then.
    // Gone without a note of its own (its fills, if any, note it): cancelled.
    const gone = (owner: number, orderId: number): void => {
      moved.add(orderId);
      const noted = activity.orders.get(owner)?.some((n) => n.orderId === orderId);
      if (noted !== true) cancelled(owner, orderId);
    };
    if (settled !== undefined) {
      for (const [orderId, before] of this.rested.inInstruments(settled))
        gone(before.owner, orderId);
    }
    for (const owner of acting) {
      for (const orderId of this.rested.ofOwner(owner)) {
        if (!state.orders.has(orderId)) gone(owner, orderId);
      }
    }
    return moved;
  }

  /**
   * Trade ids are the market's tradeCount (exchange state) as each trade made
   * it, so every node and every restart numbers a trade alike. The block's
   * trades were numbered on from the count before it, in execution order; if
   * the exchange counted more than were listed, the next block starts from its
   * count, so an id is never given twice.
   */
  private alignTradeIds(trades: readonly TradeView[]): void {
    for (const t of trades) {
      const market = this.state.marketByName.get(t.instrument);
      if (market !== undefined && market.tradeCount > this.tradeIds.get(t.instrument)!)
        this.tradeIds.set(t.instrument, market.tradeCount);
    }
  }

  /** The next trade id of an instrument, noting its last price. */
  private nextTradeId(name: string, priceTicks: number): number {
    const tradeId = (this.tradeIds.get(name) ?? 0) + 1;
    this.tradeIds.set(name, tradeId);
    this.lastTrade.set(name, priceTicks);
    return tradeId;
  }

  /** One trade: its id, the public trade, the fills of both sides and the maker's order. */
  private noteTrade(activity: Activity, t: TradeNote): void {
    const name = t.instrument;
    const tradeId = this.nextTradeId(name, t.priceTicks);
    const { priceTicks, sizeLots, takerSide, height } = t;
    activity.trades.push({
      tradeId,
      instrument: name,
      priceTicks,
      sizeLots,
      takerSide,
      height,
      timeMs: t.timeMs,
      ...(t.liquidation ? { liquidation: true } : {}),
    });
    const takerLots = takerSide === 'buy' ? sizeLots : -sizeLots;
    if (t.takerIndex !== undefined)
      noteTraded(activity, name, t.takerIndex, { lots: takerLots, priceTicks });
    noteTraded(activity, name, t.makerAccount, { lots: -takerLots, priceTicks });
    if (t.taker === null) return;
    const fill = { tradeId, instrument: name, priceTicks, sizeLots, height, timeMs: t.timeMs };
    touch(activity, t.taker);
    addFill(activity, t.taker, {
      ...fill,
      orderId: t.takerOrderId,
      side: takerSide,
      feeQuote: quoteString(t.takerFeeQuote),
      liquidity: 'taker',
    });
    const maker = this.state.accounts[t.makerAccount];
    if (maker === undefined) return;
    touch(activity, maker);
    const makerSide = takerSide === 'buy' ? 'sell' : 'buy';
    addFill(activity, maker, {
      ...fill,
      orderId: t.makerOrderId,
      side: makerSide,
      feeQuote: quoteString(t.makerFeeQuote),
      liquidity: 'maker',
    });
    const resting = this.state.marketByName.get(name)?.book.order(t.makerOrderId);
    noteOrder(activity, maker, {
      orderId: t.makerOrderId,
      instrument: name,
      status: resting === undefined ? 'filled' : 'open',
      side: makerSide,
      priceTicks,
      remainingLots: resting?.sizeLots ?? 0,
    });
  }

  /**
   * An amended order's side: where it rests now, or, when the amend filled it
   * out or something removed it, as it rested before this block or as this
   * block placed it.
   */
  private sideOfAmended(activity: Activity, market: MarketState, orderId: number): 'buy' | 'sell' {
    const side =
      bookHolding(market, orderId)?.order(orderId)?.side ??
      this.rested.get(orderId)?.side ??
      activity.placedSides.get(orderId);
    assert(
      side !== undefined,
      'an accepted amend names an order that rested or was placed this block',
    );
    return side;
  }

  private noteAction(
    activity: Activity,
    action: Action,
    r: TxResult['actions'][number],
    /** null: the accounts' parts are not noted. */
    taker: Account | null,
    /** The acting account's index, whatever `taker`. */
    takerIndex: number | undefined,
    height: number,
    timeMs: number,
  ): void {
    if (!r.ok) return;
    if (action.kind === 'cancel' && action.orderId !== undefined) {
      if (taker === null) return;
      noteOrder(activity, taker, {
        orderId: action.orderId,
        instrument: action.instrument,
        status: 'cancelled',
      });
      return;
    }
    if (r.order === undefined) return;
    activity.moved.add(r.order.orderId);
    for (const f of r.order.fills) activity.moved.add(f.makerOrderId);
    if (action.kind !== 'placeOrder' && action.kind !== 'amend') return;
    const market = this.state.marketByName.get(action.instrument);
    if (market === undefined) return;
    const name = market.params.instrument;
    const takerSide =
      action.kind === 'placeOrder'
        ? action.side
        : this.sideOfAmended(activity, market, r.order.orderId);
    if (action.kind === 'placeOrder') activity.placedSides.set(r.order.orderId, takerSide);
    const o = r.order;
    if (taker !== null)
      noteOrder(activity, taker, {
        orderId: o.orderId,
        instrument: name,
        status:
          o.restedLots > 0
            ? 'open'
            : o.filledLots > 0 && o.cancelledLots === 0
              ? 'filled'
              : 'cancelled',
        side: takerSide,
        ...(action.priceTicks !== undefined ? { priceTicks: action.priceTicks } : {}),
        // An amend sets a new size, part of which it may have filled in earlier blocks: the
        // size placed no longer tells when it is filled, its part in this block does.
        // The size the exchange took: a reduce-only order's is cut to the position it closes.
        placedLots:
          action.kind === 'placeOrder' ? o.filledLots + o.restedLots + o.cancelledLots : undefined,
        amendedLots:
          action.kind === 'amend'
            ? // What self-trade prevention or the fill guard cancelled of it was amended to as well.
              filledOf(activity, taker, o.orderId) + o.filledLots + o.restedLots + o.cancelledLots
            : undefined,
        remainingLots: o.restedLots,
        ...(action.kind === 'placeOrder' && action.reduceOnly ? { reduceOnly: true } : {}),
        ...(action.kind === 'placeOrder' && action.clientOrderId !== undefined
          ? { clientOrderId: action.clientOrderId }
          : {}),
      });
    for (const f of o.fills) {
      this.noteTrade(activity, {
        instrument: name,
        taker,
        takerIndex,
        takerOrderId: o.orderId,
        takerSide,
        takerFeeQuote: f.takerFeeQuote,
        makerAccount: f.makerAccount,
        makerOrderId: f.makerOrderId,
        makerFeeQuote: f.makerFeeQuote,
        priceTicks: f.priceTicks,
        sizeLots: f.sizeLots,
        liquidation: false,
        height,
        timeMs,
      });
    }
  }

  /** The updates of the touched accounts `wanted` accepts (null: all). */
  private accountUpdates(
    activity: Activity,
    wanted: ((address: string) => boolean) | null,
  ): AccountUpdate[] {
    const out: AccountUpdate[] = [];
    const state = this.state;
    for (const account of activity.touched.values()) {
      const address = formatAddress(account.address);
      if (wanted !== null && !wanted(address)) continue;
      const fills = activity.fills.get(account.index) ?? [];
      // An order's part in the block, as a taker, a maker or in an uncross, is
      // the sum of its fills: a maker's note has no size of its own.
      const filled = new Map<number, number>();
      for (const f of fills) filled.set(f.orderId, (filled.get(f.orderId) ?? 0) + f.sizeLots);
      const orders: UpdatedOrderView[] = [];
      for (const note of activity.orders.get(account.index) ?? []) {
        const filledLots = filled.get(note.orderId) ?? 0;
        const live = this.restingOrderOf(account, note);
        if (live !== undefined) {
          orders.push(live);
          continue;
        }
        // Gone by the block's end: filled only if its fills cover what it
        // had open (the size placed or amended to by this block, else its
        // open size before the block); self-trade prevention, a cancelAll or
        // a liquidation's cancels may have removed the rest unreported.
        const placed = note.placedLots;
        const before = this.rested.get(note.orderId);
        const openLots = placed ?? note.amendedLots ?? before?.sizeLots;
        const status =
          note.status === 'cancelled' || (openLots !== undefined && filledLots < openLots)
            ? 'cancelled'
            : 'filled';
        // What it filled in earlier blocks stays filled (an amend keeps it too).
        const filledBefore = before === undefined ? 0 : before.placedLots - before.sizeLots;
        const totalFilledLots = filledBefore + filledLots;
        // Filled out: it was placed (or amended) at what it filled.
        const sizeLots = placed ?? filledBefore + (openLots ?? filledLots);
        // The client's id stays with the order to its end, as in its views while it rested.
        const clientOrderId = note.clientOrderId ?? before?.clientOrderId;
        const limit = note.priceTicks ?? before?.priceTicks;
        orders.push({
          orderId: note.orderId,
          instrument: note.instrument,
          ...(clientOrderId !== undefined ? { clientOrderId } : {}),
          side: note.side ?? before?.side ?? 'buy',
          // Its limit: a fill in an uncross carries the uncross price, not the order's.
          // A market order placed without one has none to show (docs/api.md).
          ...(limit !== undefined ? { priceTicks: limit } : {}),
          sizeLots: status === 'filled' ? totalFilledLots : Math.max(sizeLots, totalFilledLots),
          remainingLots: 0,
          filledLots: totalFilledLots,
          status,
          reduceOnly: note.reduceOnly === true,
        });
      }
      const settlements = activity.settlements.get(account.index);
      out.push({
        address,
        subaccount: account.subaccount,
        orders,
        fills,
        positions: [
          ...heldMarkets(state, account).map((m) => positionOf(m, account)),
          ...(activity.closed.get(account.index) ?? []),
        ],
        ...(settlements !== undefined ? { settlements } : {}),
        ...balancesOf(state, account),
      });
    }
    return out;
  }
}

/** A trade read back from a stored block: null view when its taker's side is unknown (counted, not listed). */
interface StoredTrade {
  readonly priceTicks: number;
  readonly view: Omit<TradeView, 'tradeId' | 'instrument'> | null;
}

/** A market's trades read back so far: how many, the last price, and the last ones listed with their positions. */
interface StoredTrades {
  count: number;
  lastPriceTicks: number;
  readonly listed: { position: number; view: NonNullable<StoredTrade['view']> }[];
}

/**
 * A stored block's public trades in the order the live path lists them (and
 * the exchange counts them): uncross trades, the transactions' fills in
 * execution order, then liquidation fills. An amend's side is its order's,
 * found resting now or as an earlier stored block placed it (`placedSides`,
 * kept up to date here), else opposite to a maker's found so; the trades of an
 * amend whose side none of these tell are counted but not listed.
 */
function storedBlockTrades(
  state: ExchangeState,
  raws: readonly Uint8Array[],
  results: BlockResults,
  height: number,
  timeMs: number,
  placedSides: Map<number, 'buy' | 'sell'>,
  add: (instrument: string, t: StoredTrade) => void,
): void {
  const events = results.details!.events;
  for (const e of events) {
    if (e.type !== 'auctionTrade') continue;
    const { priceTicks, sizeLots } = e;
    add(e.market, {
      priceTicks,
      view: { priceTicks, sizeLots, takerSide: 'buy', height, timeMs, auction: true },
    });
  }
  // Decoded (a restart reads up to VIEW_BLOCKS_KEPT blocks): the transactions
  // that traded, and those that rested an order gone since (an amend of it may
  // trade later, and only the placement tells its side). The order is stable
  // within a class, so ordering these alone keeps their relative execution order.
  const decoded = raws.map((raw, i) => {
    const r = results.results[i];
    if (r === null || r === undefined) return null;
    const needed = r.actions.some(
      (a) =>
        a.ok &&
        a.order !== undefined &&
        (a.order.fills.length > 0 ||
          (a.kind === 'placeOrder' &&
            a.order.restedLots > 0 &&
            !state.orders.has(a.order.orderId))),
    );
    if (!needed) return null;
    try {
      return decodeSignedTx(raw);
    } catch {
      return null;
    }
  });
  const kept = decoded.flatMap((tx, i) => (tx === null ? [] : [i]));
  const order = executionOrder(kept.map((i) => decoded[i]!.action)).map((j) => kept[j]!);
  for (const i of order) {
    const tx = decoded[i]!;
    const actions = tx.action.kind === 'batch' ? tx.action.actions : [tx.action];
    const outcomes = results.results[i]!.actions;
    for (let k = 0; k < outcomes.length; k++) {
      const action = actions[k] as Action | undefined;
      const r = outcomes[k]!;
      if (action === undefined || !r.ok || r.order === undefined) continue;
      if (action.kind !== 'placeOrder' && action.kind !== 'amend') continue;
      const orderId = r.order.orderId;
      let side: 'buy' | 'sell' | undefined;
      if (action.kind === 'placeOrder') {
        side = action.side;
        placedSides.set(orderId, side);
      } else {
        const market = state.marketByName.get(action.instrument);
        const sideOf = (id: number): 'buy' | 'sell' | undefined =>
          (market === undefined ? undefined : bookHolding(market, id)?.order(id)?.side) ??
          placedSides.get(id);
        side = sideOf(orderId);
        // Else a maker's side tells it (the other one): an order placed before
        // these blocks and gone since has one whenever it traded.
        for (let m = 0; side === undefined && m < r.order.fills.length; m++) {
          const makerSide = sideOf(r.order.fills[m]!.makerOrderId);
          if (makerSide !== undefined) side = makerSide === 'buy' ? 'sell' : 'buy';
        }
        if (side !== undefined) placedSides.set(orderId, side);
      }
      for (const f of r.order.fills) {
        const { priceTicks, sizeLots } = f;
        add(action.instrument, {
          priceTicks,
          view:
            side === undefined ? null : { priceTicks, sizeLots, takerSide: side, height, timeMs },
        });
      }
    }
  }
  for (const e of events) {
    if (e.type !== 'liquidationFill') continue;
    const { priceTicks, sizeLots } = e;
    add(e.market, {
      priceTicks,
      view: { priceTicks, sizeLots, takerSide: e.side, height, timeMs, liquidation: true },
    });
  }
}

/** What `tx` answers for the transaction at `index` of block `height`, given its result. */
function txViewOf(hash: string, height: number, index: number, result: TxResult | null): TxView {
  if (result !== null) return committedTxView(hash, height, result);
  return {
    hash,
    status: 'rejected',
    height,
    index,
    code: 'BadSignature',
    message: 'the transaction failed its checks at execution',
  };
}

/** A transaction refused because its nonce was used: by itself, when these are bytes seen before. */
function isReplayRefusal(view: TxView): boolean {
  return (
    view.status === 'rejected' && (view.code === 'DuplicateNonce' || view.code === 'StaleNonce')
  );
}

function blockTxOf(view: TxView): BlockTxView {
  return {
    hash: view.hash,
    ok: view.status === 'committed',
    ...(view.code ? { code: view.code } : {}),
  };
}

interface OrderNote {
  orderId: number;
  instrument: string;
  status: 'open' | 'filled' | 'cancelled';
  side?: 'buy' | 'sell';
  priceTicks?: number;
  remainingLots?: number;
  /** The size placed, when the block placed the order. */
  placedLots?: number;
  /** When the block amended the order: its fills in the block up to the amend and the open size the amend gave it. */
  amendedLots?: number;
  /** Placed reduce-only by the block (such an order never rests). */
  reduceOnly?: boolean;
  /** The client order id the block placed it with. */
  clientOrderId?: string;
}

interface Activity {
  /** Whether the accounts' parts (touched, fills, orders, settlements) are noted: some listener reads them. */
  readonly accounts: boolean;
  trades: TradeView[];
  fills: Map<number, FillView[]>;
  touched: Map<number, Account>;
  orders: Map<number, OrderNote[]>;
  settlements: Map<number, SettlementView[]>;
  /** The positions those settlements and the block's trades closed, as the account update lists them. */
  closed: Map<number, PositionView[]>;
  /**
   * Each position the block traded, by instrument and account index, with
   * its trades in execution order (noted whatever `accounts`: HeldPositions
   * follows them).
   */
  traded: Map<string, Map<number, PositionTrade[]>>;
  /** Every order the block may have changed, for RestedOrders.refresh (noted whatever `accounts`). */
  moved: Set<number>;
  /** The accounts whose actions may have removed their own orders unreported (self-trade prevention, cancelAll). */
  acting: Set<number>;
  /** The side of each order the block placed, for an amend of it the same block that leaves nothing resting. */
  placedSides: Map<number, 'buy' | 'sell'>;
}

/** An account's position in a listed market, by account index, with what its record held. */
interface Holding {
  readonly account: number;
  readonly sizeLots: number;
  readonly costBasisQuote: bigint;
  readonly realizedPnlQuote: bigint;
  readonly fundingQuote: bigint;
}

/** A market's holdings as HeldPositions keeps them, and the market (it is gone once settled). */
interface Settling {
  readonly market: MarketState;
  readonly holdings: readonly Holding[];
}

/**
 * One trade of a position: `lots` signed (positive buys), or, `reduces`,
 * that many lots toward zero (a deleveraging: the event gives no side).
 */
interface PositionTrade {
  readonly lots: number;
  readonly priceTicks: number;
  readonly reduces?: true;
}

/** A position a block's trades left flat, and the average entry it had when the last of them closed it. */
interface ClosedByTrading {
  readonly market: MarketState;
  readonly account: number;
  readonly entryPriceTicks: number;
}

/** One market's open positions as HeldPositions keeps them, and their open interest. */
interface KeptMarket {
  market: MarketState;
  readonly held: Map<number, Holding>;
  longLots: number;
  shortLots: number;
}

/**
 * The open positions (size not 0) as of the last block the view published,
 * by instrument and account index: what a block that closes one no longer
 * shows. Built once from the live markets' holders (O(open positions)), then
 * kept up to date per block from the positions the block traded (their
 * records read after it) and the markets it settled, so O(those) per block,
 * whatever the time between blocks. Only trades and settlement change a
 * position's size, cost basis and realized PnL; funding changes a
 * perpetual's funding unseen, so a holding's `fundingQuote` is read only for
 * a listed market (settlement), which pays none.
 *
 * Checked against the exchange where that is cheap: each traded position's
 * trades, replayed from its holding, must give its record's size and cost
 * basis; each traded market's holders and open interest must be the kept
 * ones; a settled market must have closed as many positions as were kept.
 * A difference (a change to a position the view did not see) is logged as
 * an error, and the market's holdings are read again from the state.
 */
class HeldPositions {
  private readonly byInstrument = new Map<string, KeptMarket>();

  constructor(
    state: ExchangeState,
    private readonly log: Log,
  ) {
    for (const m of state.markets) {
      if (!m.retired) this.rebuild(m);
    }
  }

  get(instrument: string, account: number): Holding | undefined {
    return this.byInstrument.get(instrument)?.held.get(account);
  }

  /** A settled market's holdings (by account index), forgotten; `positions`, how many it closed. */
  settle(instrument: string, positions: number, height: number): Settling | undefined {
    const kept = this.byInstrument.get(instrument);
    if (kept === undefined) {
      if (positions > 0) this.drifted(instrument, height, { kept: 0, settled: positions });
      return undefined;
    }
    this.byInstrument.delete(instrument);
    if (kept.held.size !== positions)
      this.drifted(instrument, height, { kept: kept.held.size, settled: positions });
    const holdings = [...kept.held.values()].sort((x, y) => x.account - y.account);
    return { market: kept.market, holdings };
  }

  /**
   * Brings the traded positions up to the state after the block: each
   * position's trades replayed from its holding before the block with the
   * exchange's cost-basis arithmetic, checked against its record. Returns
   * the positions they left flat, with the entry each closed at.
   */
  refresh(state: ExchangeState, traded: Activity['traded'], height: number): ClosedByTrading[] {
    const closed: ClosedByTrading[] = [];
    for (const [name, byAccount] of traded) {
      const m = state.marketByName.get(name);
      if (m === undefined) continue;
      let drift: Record<string, unknown> | undefined;
      for (const [index, trades] of byAccount) {
        const a = state.accounts[index];
        if (a === undefined) continue;
        const r = replay(m, this.get(name, index), trades);
        const p = exchangePositionOf(a, m);
        const [size, basis] = [p?.sizeLots ?? 0, p?.costBasisQuote ?? 0n];
        if (r.sizeLots !== size || r.costBasisQuote !== basis) {
          drift ??= {
            account: index,
            replayed: { sizeLots: r.sizeLots, costBasisQuote: String(r.costBasisQuote) },
            record: { sizeLots: size, costBasisQuote: String(basis) },
          };
        }
        // Traded and flat after: closed by the block (a replay that found no close has drifted).
        if (size === 0)
          closed.push({ market: m, account: index, entryPriceTicks: r.closedAtTicks ?? 0 });
        this.keep(m, a);
      }
      const kept = this.byInstrument.get(name);
      const [holders, longLots, shortLots] = [
        kept?.held.size ?? 0,
        kept?.longLots ?? 0,
        kept?.shortLots ?? 0,
      ];
      if (holders !== m.holders.size || longLots !== m.longLots || shortLots !== m.shortLots) {
        drift ??= {
          kept: { holders, longLots, shortLots },
          market: { holders: m.holders.size, longLots: m.longLots, shortLots: m.shortLots },
        };
      }
      if (drift !== undefined) {
        this.drifted(name, height, drift);
        this.rebuild(m);
      }
    }
    return closed;
  }

  private drifted(instrument: string, height: number, detail: Record<string, unknown>): void {
    this.log.error(
      { instrument, height, ...detail },
      "the read model's positions differ from the exchange's: closing rows may be wrong",
    );
  }

  /** A market's holdings read again from its holders: O(them). */
  private rebuild(m: MarketState): void {
    this.byInstrument.delete(m.params.instrument);
    for (const a of m.holders) this.keep(m, a);
  }

  private keep(m: MarketState, a: Account): void {
    const name = m.params.instrument;
    let kept = this.byInstrument.get(name);
    const old = kept?.held.get(a.index);
    if (kept !== undefined && old !== undefined) {
      if (old.sizeLots > 0) kept.longLots -= old.sizeLots;
      else kept.shortLots += old.sizeLots;
      kept.held.delete(a.index);
    }
    const p = exchangePositionOf(a, m);
    if (p === undefined || p.sizeLots === 0) return;
    if (kept === undefined) {
      kept = { market: m, held: new Map(), longLots: 0, shortLots: 0 };
      this.byInstrument.set(name, kept);
    }
    kept.market = m;
    if (p.sizeLots > 0) kept.longLots += p.sizeLots;
    else kept.shortLots -= p.sizeLots;
    kept.held.set(a.index, {
      account: a.index,
      sizeLots: p.sizeLots,
      costBasisQuote: p.costBasisQuote,
      realizedPnlQuote: p.realizedPnlQuote,
      fundingQuote: p.fundingQuote,
    });
  }
}

/**
 * A position's block replayed from its holding before the block (none:
 * flat) through the block's trades of it, with the exchange's cost-basis
 * arithmetic (position.ts, costBasisAfterTrade): its size and basis after,
 * and the average entry it had when a trade last took it to zero
 * (undefined: none did).
 */
function replay(
  m: MarketState,
  before: Holding | undefined,
  trades: readonly PositionTrade[],
): { sizeLots: number; costBasisQuote: bigint; closedAtTicks: number | undefined } {
  let size = before?.sizeLots ?? 0;
  let basis = before?.costBasisQuote ?? 0n;
  let closedAtTicks: number | undefined;
  for (const t of trades) {
    const lots = !t.reduces ? t.lots : size > 0 ? -t.lots : size < 0 ? t.lots : 0;
    if (lots === 0) continue;
    if (size + lots === 0) closedAtTicks = entryPriceTicks(m, size, basis);
    basis = costBasisAfterTrade(m.k, size, basis, lots, t.priceTicks);
    size += lots;
  }
  return { sizeLots: size, costBasisQuote: basis, closedAtTicks };
}

/**
 * A position closed by settlement, as the account update lists it: flat, with
 * what it had (its entry, its funding) and its realized PnL with what
 * settlement realized, the cash it paid or received less the position's cost
 * basis (listing.ts, settleMarket).
 */
function closedPosition(m: MarketState, held: Holding, valueQuote: bigint): PositionView {
  const cash = settledCashQuote(held.sizeLots, valueQuote, m.params.lotsPerBase);
  return {
    instrument: m.params.instrument,
    sizeLots: 0,
    entryPriceTicks: entryPriceTicks(m, held.sizeLots, held.costBasisQuote),
    unrealizedPnlQuote: '0',
    realizedPnlQuote: quoteString(held.realizedPnlQuote + cash - held.costBasisQuote),
    fundingQuote: quoteString(held.fundingQuote),
  };
}

interface TradeNote {
  readonly instrument: string;
  /** null: the accounts' parts are not noted (Activity.accounts). */
  readonly taker: Account | null;
  /** The taker's account index (undefined: its transaction names no subaccount, and trades nothing). */
  readonly takerIndex: number | undefined;
  readonly takerOrderId: number;
  readonly takerSide: 'buy' | 'sell';
  readonly takerFeeQuote: bigint;
  readonly makerAccount: number;
  readonly makerOrderId: number;
  readonly makerFeeQuote: bigint;
  readonly priceTicks: number;
  readonly sizeLots: number;
  readonly liquidation: boolean;
  readonly height: number;
  readonly timeMs: number;
}

/** One trade of an account's position, noted whatever `accounts` (HeldPositions follows them). */
function noteTraded(
  activity: Activity,
  instrument: string,
  account: number,
  trade: PositionTrade,
): void {
  let byAccount = activity.traded.get(instrument);
  if (byAccount === undefined) activity.traded.set(instrument, (byAccount = new Map()));
  const trades = byAccount.get(account);
  if (trades === undefined) byAccount.set(account, [trade]);
  else trades.push(trade);
}

function touch(activity: Activity, account: Account): void {
  if (activity.accounts) activity.touched.set(account.index, account);
}

function addFill(activity: Activity, account: Account, fill: FillView): void {
  if (!activity.accounts) return;
  const list = activity.fills.get(account.index) ?? [];
  list.push(fill);
  activity.fills.set(account.index, list);
}

/** Whether the action may remove its account's own orders unreported (self-trade prevention, cancelAll, a cancel by client order id). */
function removesOwn(action: Action): boolean {
  return (
    action.kind === 'placeOrder' ||
    action.kind === 'amend' ||
    action.kind === 'cancel' ||
    action.kind === 'cancelAll'
  );
}

/** What the account's fills noted so far filled of an order. */
function filledOf(activity: Activity, account: Account, orderId: number): number {
  let lots = 0;
  for (const f of activity.fills.get(account.index) ?? [])
    if (f.orderId === orderId) lots += f.sizeLots;
  return lots;
}

function noteOrder(activity: Activity, account: Account, note: OrderNote): void {
  if (!activity.accounts) return;
  const list = activity.orders.get(account.index) ?? [];
  const at = list.findIndex((n) => n.orderId === note.orderId);
  if (at >= 0) list[at] = { ...list[at]!, ...note };
  else list.push(note);
  activity.orders.set(account.index, list);
}

/** What the view keeps of a resting order, to tell what a block did to it once it is gone. */
interface Rested {
  readonly instrument: string;
  readonly owner: number;
  readonly side: 'buy' | 'sell';
  /** Its limit. */
  readonly priceTicks: number;
  /** Its open size. */
  readonly sizeLots: number;
  /** Its size placed (OrderMeta.placedLots): it had filled placedLots − sizeLots. */
  readonly placedLots: number;
  /** Its client order id, if it has one (OrderMeta.clientOrderId). */
  readonly clientOrderId?: string;
}

/**
 * The resting orders (books and waiting auction orders) as of the last block
 * the view published. The state forgets an order when it leaves, and neither
 * an uncross's fills nor a removal report its limit or its open size; these
 * tell a block's update whether an order it no longer finds was filled out or
 * cancelled, and at what limit. Kept up to date per block from the orders the
 * block changed (ChainView.noteRemovals), so O(those) per block; an order
 * that left unseen (a liquidation's cancels when it closes nothing) stays
 * until the next rebuild, which comes once the kept outnumber twice the live.
 */
class RestedOrders {
  private readonly byId = new Map<number, Rested>();
  private readonly byOwner = new Map<number, Set<number>>();

  constructor(state: ExchangeState) {
    this.rebuild(state);
  }

  get(orderId: number): Rested | undefined {
    return this.byId.get(orderId);
  }

  /** The kept orders of these instruments. O(kept orders). */
  *inInstruments(names: ReadonlySet<string>): Iterable<[number, Rested]> {
    for (const entry of this.byId) if (names.has(entry[1].instrument)) yield entry;
  }

  /** The owner's orders as kept (some may be gone since: the caller checks). */
  ofOwner(owner: number): Iterable<number> {
    return this.byOwner.get(owner) ?? [];
  }

  /** Brings the given orders up to the state: kept if they rest, else dropped. */
  refresh(state: ExchangeState, orderIds: Iterable<number>): void {
    for (const orderId of orderIds) {
      const meta = state.orders.get(orderId);
      const market = meta === undefined ? undefined : state.markets[meta.market];
      const o = market === undefined ? undefined : bookHolding(market, orderId)?.order(orderId);
      if (o === undefined || market === undefined || meta === undefined) this.drop(orderId);
      else this.keep(market, o, meta.placedLots, meta.clientOrderId);
    }
    if (this.byId.size > 2 * state.orders.size + REST_KEPT_SLACK) this.rebuild(state);
  }

  private rebuild(state: ExchangeState): void {
    this.byId.clear();
    this.byOwner.clear();
    for (const m of state.markets) {
      if (m.retired) continue;
      for (const book of booksOf(m)) {
        for (const side of ['buy', 'sell'] as const) {
          for (const o of book.ordersOf(side)) {
            const meta = state.orders.get(o.orderId);
            this.keep(m, o, meta?.placedLots ?? o.sizeLots, meta?.clientOrderId ?? '');
          }
        }
      }
    }
  }

  private keep(
    market: MarketState,
    o: RestingOrder,
    placedLots: number,
    /** '' when it has none, as in OrderMeta. */
    clientOrderId: string,
  ): void {
    this.byId.set(o.orderId, {
      instrument: market.params.instrument,
      owner: o.owner,
      side: o.side,
      priceTicks: o.priceTicks,
      sizeLots: o.sizeLots,
      placedLots,
      ...(clientOrderId !== '' ? { clientOrderId } : {}),
    });
    let owned = this.byOwner.get(o.owner);
    if (owned === undefined) this.byOwner.set(o.owner, (owned = new Set()));
    owned.add(o.orderId);
  }

  private drop(orderId: number): void {
    const kept = this.byId.get(orderId);
    if (kept === undefined) return;
    this.byId.delete(orderId);
    const owned = this.byOwner.get(kept.owner)!;
    owned.delete(orderId);
    if (owned.size === 0) this.byOwner.delete(kept.owner);
  }
}

/** Stale orders RestedOrders tolerates beyond twice the live ones before a rebuild. */
const REST_KEPT_SLACK = 1024;

function depthMap(m: MarketState, side: 'buy' | 'sell'): Map<number, number> {
  const depth = m.book.depth(side, Math.min(m.book.levelCount(side), BOOK_DEPTH_LEVELS_MAX));
  const out = new Map<number, number>();
  for (let i = 0; i < depth.priceTicks.length; i++)
    out.set(depth.priceTicks[i]!, depth.sizeLots[i]!);
  return out;
}

/** Brings `old` to `now` in place: whether any level changed. */
function refreshSide(old: Map<number, number>, now: Map<number, number>): boolean {
  let changed = false;
  for (const [p, s] of now) {
    if (old.get(p) === s) continue;
    old.set(p, s);
    changed = true;
  }
  for (const p of old.keys()) {
    if (now.has(p)) continue;
    old.delete(p);
    changed = true;
  }
  return changed;
}

/**
 * A market's book after its levels changed, and its feed delta (pushed on
 * `deltas`): the changes of its top WS_BOOK_DEPTH_LEVELS window, the depth
 * of the book channel's snapshot (src/api/book_window.ts). A change below the
 * window publishes the new levels under the same seq: the window, all a
 * client holds, did not move. O(levels) to sort, O(window) to diff.
 */
function windowedBook(
  instrument: string,
  old: PublishedBook,
  levels: PublishedLevels,
  height: number,
  deltas: BookDelta[],
): PublishedBook {
  const bids = sorted(levels.bids, true);
  const asks = sorted(levels.asks, false);
  const delta: BookDelta = {
    instrument,
    seq: height,
    prevSeq: old.seq,
    bids: windowChanges(old.bids, bids, WS_BOOK_DEPTH_LEVELS, true),
    asks: windowChanges(old.asks, asks, WS_BOOK_DEPTH_LEVELS, false),
  };
  if (delta.bids.length === 0 && delta.asks.length === 0) return { seq: old.seq, bids, asks };
  deltas.push(delta);
  return { seq: delta.seq, bids, asks };
}

function sorted(levels: Map<number, number>, descending: boolean): LevelView[] {
  const out: LevelView[] = [...levels.entries()];
  return out.sort((a, b) => (descending ? b[0] - a[0] : a[0] - b[0]));
}

interface PublishedLevels {
  bids: Map<number, number>;
  asks: Map<number, number>;
  /** The book and its change count when these levels were read. */
  book: MarketState['book'];
  changeCount: number;
}

/**
 * What a market's ticker shows, captured at a height (the book's best levels
 * read then; the option mark is replaced, never changed, by the exchange).
 */
interface TickerInputs {
  readonly instrument: string;
  readonly markTicks: number;
  readonly indexTicks: number;
  readonly longLots: number;
  readonly fundingRatePpm: number;
  readonly optionMark: MarketState['optionMark'];
  readonly book: MarketState['book'];
  readonly changeCount: number;
  readonly bestBidTicks: number | undefined;
  readonly bestBidLots: number;
  readonly bestAskTicks: number | undefined;
  readonly bestAskLots: number;
  readonly lastTradeTicks: number | undefined;
}

function tickerInputsOf(m: MarketState, lastTradeTicks: number | undefined): TickerInputs {
  const book = m.book;
  const bid = book.bestBidTicks();
  const ask = book.bestAskTicks();
  return {
    instrument: m.params.instrument,
    markTicks: m.markTicks,
    indexTicks: m.indexTicks,
    longLots: m.longLots,
    fundingRatePpm: m.lastFundingRatePpm,
    optionMark: m.optionMark,
    book,
    changeCount: book.changes.changeCount,
    bestBidTicks: bid,
    bestBidLots: bid === undefined ? 0 : book.levelLots('buy', bid),
    bestAskTicks: ask,
    bestAskLots: ask === undefined ? 0 : book.levelLots('sell', ask),
    lastTradeTicks,
  };
}

/** Whether anything a ticker shows may have moved since `i` was captured (no allocation). */
function tickerMoved(i: TickerInputs, m: MarketState, lastTradeTicks: number | undefined): boolean {
  return (
    i.markTicks !== m.markTicks ||
    i.indexTicks !== m.indexTicks ||
    i.longLots !== m.longLots ||
    i.fundingRatePpm !== m.lastFundingRatePpm ||
    i.optionMark !== m.optionMark ||
    i.book !== m.book ||
    i.changeCount !== m.book.changes.changeCount ||
    i.lastTradeTicks !== lastTradeTicks
  );
}

/** A market's ticker from captured inputs: built on first read, the same at every height it is shown. */
class TickerSlot {
  private body: TickerView | null = null;
  constructor(readonly inputs: TickerInputs) {}

  /** The ticker as shown at `height` (a height at which these inputs are current). */
  at(height: number, timeMs: number): TickerView {
    this.body ??= tickerViewOf(this.inputs);
    return { ...this.body, height, timeMs };
  }
}

function tickerViewOf(i: TickerInputs): TickerView {
  const ticker: TickerView = {
    instrument: i.instrument,
    height: 0,
    markTicks: i.markTicks,
    indexTicks: i.indexTicks,
    openInterestLots: i.longLots,
    timeMs: 0,
  };
  if (i.instrument.endsWith('-PERPETUAL')) ticker.fundingRatePpm = i.fundingRatePpm;
  const om = i.optionMark;
  if (om !== null) {
    ticker.markIv = toDecimal(om.ivWad, 6);
    ticker.greeks = {
      delta: toDecimal(om.greeks.delta, 6),
      gamma: toDecimal(om.greeks.gamma, 12),
      vega: toDecimal(om.greeks.vega, 6),
      theta: toDecimal(om.greeks.theta, 6),
    };
  }
  if (i.bestBidTicks !== undefined) {
    ticker.bestBidTicks = i.bestBidTicks;
    ticker.bestBidLots = i.bestBidLots;
  }
  if (i.bestAskTicks !== undefined) {
    ticker.bestAskTicks = i.bestAskTicks;
    ticker.bestAskLots = i.bestAskLots;
  }
  if (i.lastTradeTicks !== undefined) ticker.lastTradeTicks = i.lastTradeTicks;
  return ticker;
}

/** Whether two tickers would tell a subscriber the same: an update is sent only when they differ. */
export function sameTicker(a: TickerView, b: TickerView): boolean {
  return (
    a.markTicks === b.markTicks &&
    a.indexTicks === b.indexTicks &&
    a.openInterestLots === b.openInterestLots &&
    a.fundingRatePpm === b.fundingRatePpm &&
    a.bestBidTicks === b.bestBidTicks &&
    a.bestBidLots === b.bestBidLots &&
    a.bestAskTicks === b.bestAskTicks &&
    a.bestAskLots === b.bestAskLots &&
    a.lastTradeTicks === b.lastTradeTicks &&
    // An option's IV and greeks move with its underlying and the smile, book or not.
    a.markIv === b.markIv &&
    a.greeks?.delta === b.greeks?.delta &&
    a.greeks?.gamma === b.greeks?.gamma &&
    a.greeks?.vega === b.greeks?.vega &&
    a.greeks?.theta === b.greeks?.theta
  );
}

/**
 * The live markets where an account can have open orders, by market index:
 * every genesis market (one position record each) and the listed markets it
 * has a record in (one from its first order there until settlement).
 */
function recordMarkets(state: ExchangeState, account: Account): MarketState[] {
  const out: MarketState[] = [];
  for (const p of account.positions) {
    const m = state.markets[p.market]!;
    if (!m.retired) out.push(m);
  }
  for (const p of account.listed) {
    const m = state.markets[p.market]!;
    if (!m.retired) out.push(m);
  }
  return out;
}

function auctionEndOf(m: MarketState): number {
  return m.auction?.monitor.auctionEndMs ?? 0;
}

/** The markets an account holds a position in, by market index. */
function heldMarkets(state: ExchangeState, account: Account): MarketState[] {
  const out: MarketState[] = [];
  for (const p of [...account.positions, ...account.listed]) {
    if (p.sizeLots !== 0) out.push(state.markets[p.market]!);
  }
  return out;
}

/** The average entry of an open size, rounded to a tick (0 when flat). */
function entryPriceTicks(m: MarketState, sizeLots: number, costBasisQuote: bigint): number {
  const denominator = BigInt(sizeLots) * m.k;
  const entry = denominator === 0n ? 0n : (costBasisQuote * 2n + denominator) / (2n * denominator);
  return Number(entry < 0n ? 0n : entry);
}

function positionOf(m: MarketState, account: Account): PositionView {
  const p = exchangePositionOf(account, m)!;
  const valueQuote = BigInt(p.sizeLots) * m.markQuotePerLot;
  return {
    instrument: m.params.instrument,
    sizeLots: p.sizeLots,
    entryPriceTicks: entryPriceTicks(m, p.sizeLots, p.costBasisQuote),
    unrealizedPnlQuote: quoteString(valueQuote - p.costBasisQuote),
    realizedPnlQuote: quoteString(p.realizedPnlQuote),
    fundingQuote: quoteString(p.fundingQuote),
  };
}

function instrumentOf(m: MarketState): InstrumentView {
  const p = m.params;
  const option = /-(\d+)-([CP])$/.exec(p.instrument);
  const kind = p.instrument.endsWith('-PERPETUAL') ? 'perpetual' : option ? 'option' : 'future';
  const view: InstrumentView = {
    instrument: p.instrument,
    kind,
    underlying: p.underlying,
    tickSizeQuote: quoteString(p.tickSizeQuote),
    lotsPerBase: p.lotsPerBase,
    minSizeLots: p.minSizeLots,
    maxSizeLots: p.maxSizeLots,
    status: m.halted ? 'halted' : 'trading',
  };
  const auctionEndMs = auctionEndOf(m);
  if (!m.halted && auctionEndMs !== 0) {
    view.status = 'auction';
    view.auctionEndMs = auctionEndMs;
  }
  if (option) view.optionType = option[2] === 'C' ? 'call' : 'put';
  if (m.listed) view.expiryMs = m.expiryMs;
  const i = m.instrument;
  if (i.kind === 'option') {
    view.strikeTicks = Number(divBig(i.strikeQuote, p.tickSizeQuote, 'floor'));
  } else {
    view.initialMarginPpm = p.initialMarginPpm;
    view.maintenanceMarginPpm = p.maintenanceMarginPpm;
    view.imfStepQuote = quoteString(p.imfStepQuote);
    view.imfStepPpm = p.imfStepPpm;
  }
  view.liquidationQuoteMaxPerBlock = quoteString(p.liquidationQuoteMaxPerBlock);
  if (p.priceBandPpm !== undefined) view.priceBandPpm = p.priceBandPpm;
  if (p.openInterestCapLots !== undefined) view.openInterestCapLots = p.openInterestCapLots;
  return view;
}

/** What a validator's view is built from (the exchange changes these in place). */
interface ValidatorInputs {
  readonly publicKey: Uint8Array;
  readonly stake: bigint;
  readonly jailed: boolean;
  readonly jailedHeight: number | undefined;
}

function validatorInputsOf(v: ExchangeState['validators'][number]): ValidatorInputs {
  return { publicKey: v.publicKey, stake: v.stake, jailed: v.jailed, jailedHeight: v.jailedHeight };
}

function sameValidators(from: readonly ValidatorInputs[], state: ExchangeState): boolean {
  if (from.length !== state.validators.length) return false;
  return state.validators.every((v, i) => {
    const f = from[i]!;
    return (
      f.publicKey === v.publicKey &&
      f.stake === v.stake &&
      f.jailed === v.jailed &&
      f.jailedHeight === v.jailedHeight
    );
  });
}

function validatorsOf(state: ExchangeState): ValidatorView[] {
  return state.validators.map((v) => ({
    publicKey: toHex(v.publicKey),
    address: formatAddress(addressOf(v.publicKey)),
    stakeQuote: quoteString(v.stake),
    votingPower: v.jailed ? 0 : Number(v.stake),
    jailed: v.jailed,
    ...(v.jailed
      ? { jailedHeight: v.jailedHeight, slashedQuote: quoteString(v.genesisStake - v.stake) }
      : {}),
  }));
}

/** What `/v1/consensus` counts of a block a restart read back. */
interface StoredConsensus {
  readonly proposer: string;
  readonly timeMs: number;
  signers: CommitSignerView[];
}

function addressText(bytes: Uint8Array): string {
  return bytes.length === 20 ? formatAddress(bytes) : toHex(bytes);
}

function balancesOf(state: ExchangeState, account: Account) {
  const equity = equityQuote(state, account);
  const initial = initialMarginQuote(state, account);
  return {
    cashQuote: quoteString(account.cashQuote),
    equityQuote: quoteString(equity),
    marginUsedQuote: quoteString(initial),
    maintenanceMarginQuote: quoteString(maintenanceMarginQuote(state, account)),
    marginFreeQuote: quoteString(equity - initial),
  };
}

/** Each set's member addresses as text, by index (a set is immutable; two per block read it). */
const memberAddresses = new WeakMap<ValidatorSet, readonly string[]>();

function memberAddress(set: ValidatorSet, index: number): string | undefined {
  let addresses = memberAddresses.get(set);
  if (addresses === undefined) {
    addresses = set.validators.map((v) => formatAddress(v.address));
    memberAddresses.set(set, addresses);
  }
  return addresses[index];
}

function signersOf(
  commit: CommitCertificate,
  set: ValidatorSet,
  timeMs: number,
): CommitSignerView[] {
  const out: CommitSignerView[] = [];
  for (const vote of commit.votes) {
    const validator = memberAddress(set, vote.validatorIndex);
    if (validator !== undefined) out.push({ validator, delayMs: vote.timestampMs - timeMs });
  }
  return out;
}

function evidenceOf(e: DuplicateVoteEvidence, set: ValidatorSet): EvidenceView {
  const v = e.voteA;
  return {
    validator: memberAddress(set, v.validatorIndex) ?? formatAddress(new Uint8Array(20)),
    height: v.height,
    round: v.round,
    voteType: v.type === 3 ? 'prevote' : 'precommit',
  };
}

/** Each validator's observation in a certificate's vote extensions, with the block's median. */
function oracleViewOf(commit: CommitCertificate | null, set: ValidatorSet): OracleView[] {
  if (commit === null) return [];
  // Each extension decoded once, for the median and the per-validator list.
  const votes = oracleVotesOf(commit, set);
  const aggregate = oracleFromVotes(votes);
  const byUnderlying = new Map<string, { validator: string; priceQuote: string }[]>();
  for (const vote of votes.votes) {
    const validator = memberAddress(set, vote.validatorIndex);
    if (validator === undefined || vote.observation === null) continue;
    for (const p of vote.observation.prices) {
      let list = byUnderlying.get(p.underlying);
      if (list === undefined) byUnderlying.set(p.underlying, (list = []));
      list.push({ validator, priceQuote: p.priceQuote.toString() });
    }
  }
  return [...byUnderlying.keys()].sort().map((underlying) => {
    const median = aggregate[underlying];
    return {
      underlying,
      ...(median !== undefined ? { priceQuote: median.toString() } : {}),
      observations: byUnderlying.get(underlying)!,
    };
  });
}
