// What the API server needs from a node, and nothing more: a read model of
// committed state, a way to submit a transaction, and a stream of committed
// updates. src/node implements NodeView; tests use MemoryView (memory.ts).
// The server never imports src/node (the linter forbids it).
//
// Every enumeration here is one `as const` list (or the exchange's own) and
// its type: the routes' schemas (routes.ts) carry the same list as an `enum`.
//
// Every type here is already in its JSON form, exactly as it goes on the wire:
// money is a decimal string of quote units (6 decimals, may pass 2^53), prices
// are integer ticks, sizes integer lots, times ms of block time, hashes lower-
// case hex, addresses 0x-prefixed lower-case hex (formatAddress). convert.ts
// turns the exchange's records into these.

import { TAKER_REASONS, TAKER_STATUSES } from '../exchange/book/types.ts';
import type { TakerReason, TakerStatus } from '../exchange/book/types.ts';
import { REJECT_CODES } from '../exchange/errors.ts';
import type { RejectCode } from '../exchange/errors.ts';
import type { Instrument } from '../exchange/instruments/names.ts';
import type { ActionKind, Side } from '../exchange/tx/types.ts';

/** A decimal integer string of quote units (1 USD = "1000000"); may be negative where stated. */
export type QuoteString = string;
/** A decimal string of a real number at full precision (greeks, volatility), e.g. "0.5123". */
export type DecimalString = string;

export interface ValidatorView {
  /** 32-byte Ed25519 public key, hex. */
  publicKey: string;
  address: string;
  stakeQuote: QuoteString;
  /** Voting power in the current set (0 when jailed or removed). */
  votingPower: number;
  jailed: boolean;
  /** Why it was jailed, when the node knows (evidence it saw committed). */
  jailReason?: string;
  /** The height whose block jailed it. */
  jailedHeight?: number;
  /** Stake burned by slashing (genesis stake − stakeQuote), when jailed. */
  slashedQuote?: QuoteString;
}

export interface StatusView {
  chainId: string;
  /** Height of the last committed block (0 before the first). */
  height: number;
  /** BFT time of the last committed block. */
  lastBlockTimeMs: number;
  /** The application hash after the last committed block, hex. */
  appHash: string;
  validators: ValidatorView[];
  /** True while the node catches up: its state lags the chain. */
  syncing: boolean;
  /** The package version of the node's build (the same between two releases). */
  version: string;
  /**
   * The execution version: which rules of execution the node runs, bumped by
   * every change of execution (docs/operations.md, "Upgrades").
   */
  executionVersion: number;
  /** The wire version of the peer protocol the node speaks. */
  wireVersion: number;
  /** Emergency halt: every market halted (governance haltAll, or each one halted). */
  emergencyHalt?: boolean;
  /** Why this node stopped executing (an appHash mismatch, …), when it did. */
  haltReason?: string;
  /** The insurance fund after the last block. */
  insuranceQuote?: QuoteString;
  /**
   * The fee schedule in force after the last block: genesis's until
   * governance sets another (the block event feeTiersChanged says when).
   */
  feeTiers?: FeeTierView[];
}

/** What GET /v1/status says of the node's build: constants of the build. */
export type BuildVersionsView = Pick<StatusView, 'version' | 'executionVersion' | 'wireVersion'>;

/**
 * One tier of the fee schedule: from volumeQuoteMin of an account's lifetime
 * traded notional, its maker and taker fees in parts per million of each
 * fill's notional (a negative maker fee is a rebate).
 */
export interface FeeTierView {
  volumeQuoteMin: QuoteString;
  makerFeePpm: number;
  takerFeePpm: number;
}

export const INSTRUMENT_KINDS = [
  'perpetual',
  'future',
  'option',
] as const satisfies readonly Instrument['kind'][];
export type InstrumentKind = (typeof INSTRUMENT_KINDS)[number];
export const INSTRUMENT_STATUSES = ['trading', 'auction', 'halted'] as const;
export type InstrumentStatus = (typeof INSTRUMENT_STATUSES)[number];
export const OPTION_TYPES = ['call', 'put'] as const;
export type OptionType = (typeof OPTION_TYPES)[number];

export interface InstrumentView {
  instrument: string;
  kind: InstrumentKind;
  underlying: string;
  tickSizeQuote: QuoteString;
  lotsPerBase: number;
  minSizeLots: number;
  maxSizeLots: number;
  /** 'auction': in a volatility call auction until auctionEndMs (orders collect, nothing matches). */
  status: InstrumentStatus;
  /** Block time at which the current call auction uncrosses (status 'auction' only). */
  auctionEndMs?: number;
  /** Futures and options. */
  expiryMs?: number;
  /** Options. */
  strikeTicks?: number;
  optionType?: OptionType;
  /**
   * Risk parameters, as the market has them now (governance may change them:
   * the block event marketRiskChanged). Perpetuals and futures: initial and
   * maintenance margin fractions, and initial margin's growth by imfStepPpm
   * per full imfStepQuote of notional (options are margined by scenario).
   */
  initialMarginPpm?: number;
  maintenanceMarginPpm?: number;
  imfStepQuote?: QuoteString;
  imfStepPpm?: number;
  /**
   * Any market: the notional it liquidates at most per block (a
   * setMarketRisk proposal names it with the others, so it is shown with them).
   */
  liquidationQuoteMaxPerBlock?: QuoteString;
  /** Limit prices further than this from the mark are refused; absent: no band. */
  priceBandPpm?: number;
  /** Orders that could raise open interest above this are refused; absent: no cap. */
  openInterestCapLots?: number;
}

export interface GreeksView {
  delta: DecimalString;
  gamma: DecimalString;
  vega: DecimalString;
  theta: DecimalString;
}

export interface TickerView {
  instrument: string;
  height: number;
  markTicks: number;
  /** The underlying's index in this instrument's ticks; an option's is its model price, its mark. */
  indexTicks: number;
  openInterestLots: number;
  /** Perpetuals: the last funding rate, parts per million per interval. */
  fundingRatePpm?: number;
  bestBidTicks?: number;
  bestBidLots?: number;
  bestAskTicks?: number;
  bestAskLots?: number;
  lastTradeTicks?: number;
  /** BFT time of the block at `height`. */
  timeMs?: number;
  /** Options. */
  markIv?: DecimalString;
  greeks?: GreeksView;
}

/** One price level: [priceTicks, sizeLots]. In a delta, sizeLots 0 removes the level. */
export type LevelView = [number, number];

export interface BookView {
  instrument: string;
  height: number;
  /** The book's sequence number: the height of the block that last changed its window (BookDelta). */
  seq: number;
  /** Best first: bids descending, asks ascending. */
  bids: LevelView[];
  asks: LevelView[];
}

export interface TradeView {
  /**
   * Per instrument, increasing by one per trade: the market's trade count in
   * the exchange state, so the same on every node and across restarts.
   */
  tradeId: number;
  instrument: string;
  priceTicks: number;
  sizeLots: number;
  takerSide: Side;
  height: number;
  timeMs: number;
  /** A trade that closed a liquidated account's position. */
  liquidation?: boolean;
  /**
   * A fill of a call auction's uncrossing: no side took (each pays half a taker
   * fee), so takerSide is 'buy' by convention.
   */
  auction?: boolean;
}

export interface PositionView {
  instrument: string;
  /** Signed: positive long, negative short. */
  sizeLots: number;
  /** Average entry price, rounded to a tick (an account update's closing row keeps the entry it closed at). */
  entryPriceTicks: number;
  unrealizedPnlQuote: QuoteString;
  realizedPnlQuote: QuoteString;
  fundingQuote: QuoteString;
}

export const ORDER_STATUSES = ['open', 'filled', 'cancelled', 'expired'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];
/** The statuses of an order no longer open. */
export type GoneOrderStatus = Exclude<OrderStatus, 'open'>;

export interface OrderView {
  orderId: number;
  instrument: string;
  clientOrderId?: string;
  side: Side;
  /** Its limit (an open order always has one). */
  priceTicks: number;
  /**
   * The size placed, or as the last amend set it: what the order had filled
   * before the amend plus the amend's size (docs/api.md, "Order sizes"). An
   * open order: filledLots + remainingLots; a filled one: filledLots.
   */
  sizeLots: number;
  /** What is open: 0 once the order is filled or cancelled. */
  remainingLots: number;
  /**
   * All the order filled since it was placed (as taker, maker or in an
   * auction's uncross), in an account view and an account update alike; an
   * update's fills are only that block's.
   */
  filledLots: number;
  status: OrderStatus;
  /** Placed reduce-only: such an order never rests, so only an update's gone orders show true. */
  reduceOnly: boolean;
  /** Waits in a volatility call auction, beside the book, until its uncross. */
  auction?: boolean;
}

/**
 * An order as an account update lists it: open after the block (as in the
 * account view), or gone by its end. A gone one's `priceTicks` is absent for a market
 * order placed without a limit, which has none: it never rests, the exchange
 * bounds it by the index moved by the market's slippage bound, and its fills
 * carry the prices it traded at. A market order placed with a limit shows
 * that limit.
 */
export type UpdatedOrderView =
  | OrderView
  | (Omit<OrderView, 'status' | 'priceTicks'> & {
      status: GoneOrderStatus;
      priceTicks?: number;
    });

/** 'auction': a call auction's uncrossing, where no side took. */
export const FILL_LIQUIDITIES = ['maker', 'taker', 'auction'] as const;
export type FillLiquidity = (typeof FILL_LIQUIDITIES)[number];

export interface FillView {
  tradeId: number;
  orderId: number;
  instrument: string;
  side: Side;
  priceTicks: number;
  sizeLots: number;
  /** Negative: a rebate. */
  feeQuote: QuoteString;
  liquidity: FillLiquidity;
  /** The block that made the fill. */
  height: number;
  /** BFT time of that block, as its trade's timeMs. */
  timeMs: number;
}

export interface SubaccountView {
  subaccount: number;
  cashQuote: QuoteString;
  equityQuote: QuoteString;
  /** Initial margin of positions and open orders. */
  marginUsedQuote: QuoteString;
  maintenanceMarginQuote: QuoteString;
  /** equity − margin used; negative when the account is under water. */
  marginFreeQuote: QuoteString;
  positions: PositionView[];
  openOrders: OrderView[];
}

export interface AccountView {
  address: string;
  height: number;
  subaccounts: SubaccountView[];
  /**
   * Set when the subaccounts' open orders passed what one view lists
   * (API_ACCOUNT_ORDERS_MAX, 10,000): the lists stop there. Ask per subaccount.
   */
  openOrdersTruncated?: boolean;
}

/**
 * The exchange's reason for an accepted order's (or amend's) outcome: why
 * what it had open was cancelled (IocRemainder, an IOC or market order's rest
 * after matching; FokUnfillable; SelfTrade, self-trade prevention stopped it;
 * PostOnlyWouldTake; UnknownOrder; InsufficientEquity, the fill guard stopped
 * it: docs/exchange.md, "Fills and equity"), or, resting, AuctionTriggered:
 * it began a volatility call auction and waits in it.
 */
export const ORDER_REASONS = TAKER_REASONS;
export type OrderReason = TakerReason;

/**
 * What became of a placed (or amended) order in its block: rested (what is
 * left of it rests, maybe after fills), filled, cancelled (its rest, for its
 * reason), rejected (nothing happened, for its reason).
 */
export const ORDER_RESULT_STATUSES = TAKER_STATUSES;
export type OrderResultStatus = TakerStatus;

export interface ActionResultView {
  /** The action's kind, as the transaction named it (placeOrder, cancel, …). */
  kind: ActionKind;
  ok: boolean;
  /** When refused: an exchange rejection code (InsufficientMargin, …). */
  code?: RejectCode;
  message?: string;
  orderId?: number;
  /** placeOrder, amend: the taker outcome (filled, rested, cancelled, …). */
  orderStatus?: OrderResultStatus;
  /** placeOrder, amend: the exchange's reason for orderStatus, when it gives one. */
  reason?: OrderReason;
  filledLots?: number;
  restedLots?: number;
  cancelledLots?: number;
  /** cancelAll: orders cancelled. */
  count?: number;
}

export const TX_STATUSES = ['pending', 'committed', 'rejected', 'dropped'] as const;
export type TxStatus = (typeof TX_STATUSES)[number];

export interface TxView {
  hash: string;
  /**
   * pending: admitted to the mempool, not yet in a block. committed: in a block
   * and accepted. rejected: in a block but refused as a whole (nonce, expiry,
   * agent) or, for a single action, that action refused. dropped: admitted,
   * then let go by this node's mempool before any block it executed held it
   * (`code`, a TxDropCode, says why; docs/api.md, "Dropped transactions").
   */
  status: TxStatus;
  height?: number;
  /** Position in its block. */
  index?: number;
  /** Why it was rejected or dropped (TxCode). */
  code?: TxCode;
  message?: string;
  /** One per action when in a block. */
  actions?: ActionResultView[];
  /**
   * True when this node holds the transaction's block but not its result
   * (executed before the node kept results, or its stored result is damaged):
   * `status` is then 'committed' whatever the block did with it, and there
   * are no `actions`.
   */
  resultUnavailable?: boolean;
}

export interface BlockTxView {
  hash: string;
  /** Whether the block accepted it; true when `resultUnavailable` (then unknown). */
  ok: boolean;
  /** Why it was refused (TxCode: in a block, never a drop's Evicted). */
  code?: TxCode;
  /** As TxView's: this node holds the block but not this transaction's result. */
  resultUnavailable?: boolean;
}

/**
 * Why a node's mempool let go of an admitted transaction before any block
 * held it. Evicted: this node dropped it to make room, and it may still
 * commit (a validator that holds it may propose it) or be submitted again.
 * The others are the exchange's refusals by the committed state, which every
 * later block would give it too: it will never commit (NotPermitted: its
 * signer is no longer an active agent of the account, revoked or expired;
 * submitted again once it is one again, it may).
 */
export const TX_DROP_CODES = [
  'Evicted',
  'Expired',
  'StaleNonce',
  'DuplicateNonce',
  'NotPermitted',
] as const;
export type TxDropCode = (typeof TX_DROP_CODES)[number];

/**
 * What a transaction's `code` can say. Refused in a block: an exchange
 * rejection code (the transaction's own, or its single action's),
 * BadSignature (it failed its checks at execution), or Rejected (refused
 * with no code given). Dropped: a TxDropCode (all of them rejection codes
 * but Evicted).
 */
export const TX_CODES = [...REJECT_CODES, 'Evicted', 'BadSignature', 'Rejected'] as const;
export type TxCode = (typeof TX_CODES)[number];

/** A transaction a node's mempool let go of (NodeView.subscribeDropped). */
export interface TxDrop {
  hash: string;
  code: TxDropCode;
  message: string;
}

export const VOTE_TYPES = ['prevote', 'precommit'] as const;
export type VoteType = (typeof VOTE_TYPES)[number];

/** Duplicate-vote evidence committed in a block. */
export interface EvidenceView {
  /** The validator that signed two conflicting votes (resolved against the current set). */
  validator: string;
  height: number;
  round: number;
  voteType: VoteType;
}

export const BLOCK_EVENT_TYPES = [
  'liquidationCancels',
  'liquidation',
  'deleverage',
  'insuranceCover',
  'marketHalted',
  'marketResumed',
  'marketRiskChanged',
  'feeTiersChanged',
  'funding',
  'auctionStarted',
  'auctionEnded',
  'marketSettled',
  'validatorJailed',
] as const;
export type BlockEventType = (typeof BLOCK_EVENT_TYPES)[number];

/**
 * What the exchange did on its own while finalizing a block: liquidations,
 * ADL, halts, volatility auctions, settlements, jailing.
 */
export interface BlockEventView {
  type: BlockEventType;
  height: number;
  timeMs: number;
  instrument?: string;
  /** The account concerned (the liquidated one; for deleverage, the one closed out). */
  address?: string;
  subaccount?: number;
  /** deleverage: the profitable account whose position was reduced against it. */
  counterparty?: string;
  counterpartySubaccount?: number;
  /** auctionEnded: the volume uncrossed. */
  sizeLots?: number;
  /** auctionStarted: the price that breached the trigger; auctionEnded: the uncross price (0: none). */
  priceTicks?: number;
  /**
   * liquidation: the fee to the insurance fund; insuranceCover: the amount the
   * fund paid; marketSettled: what one whole base unit long received;
   * validatorJailed: the stake burned.
   */
  amountQuote?: QuoteString;
  /** funding: the rate applied. */
  ratePpm?: number;
  /** auctionStarted: the block time at which the auction uncrosses. */
  endMs?: number;
  /** marketSettled: the settlement price (30-minute index TWAP), quote units per whole base unit. */
  priceQuote?: QuoteString;
  /** marketSettled: positions closed. */
  positions?: number;
  /** liquidationCancels: the resting orders the liquidation cancelled (all of the account's). */
  orders?: number;
  /** validatorJailed: the validator's address, and the height it double-signed at. */
  validator?: string;
  offenceHeight?: number;
}

/** One validator's signature in a commit certificate. */
export interface CommitSignerView {
  validator: string;
  /** The precommit's wall-clock timestamp minus the block's BFT time. */
  delayMs: number;
}

/** The oracle input of a block for one underlying: each validator's observation and their median. */
export interface OracleView {
  underlying: string;
  /** The stake-weighted median, quote units per whole base unit (absent: under a third observed). */
  priceQuote?: QuoteString;
  observations: { validator: string; priceQuote: QuoteString }[];
}

export interface BlockView {
  height: number;
  timeMs: number;
  hash: string;
  /** The application hash after this block. */
  appHash: string;
  proposer: string;
  txs: BlockTxView[];
  /** The round it was decided in (0: the first): round + 1 rounds were needed. */
  round?: number;
  /**
   * The validators whose precommits are in this block's commit certificate:
   * the canonical one (the next block's lastCommit) once the node has it, so
   * the same on every node below its tip; at the tip, this node's own.
   */
  signers?: CommitSignerView[];
  evidence?: EvidenceView[];
  /** Liquidations, deleveraging, insurance cover, halts (kept for recent blocks only). */
  events?: BlockEventView[];
  /** The insurance fund after this block (recent blocks only). */
  insuranceQuote?: QuoteString;
  /** The block's oracle input, from the previous commit's vote extensions. */
  oracle?: OracleView[];
}

/**
 * A book's changed levels in one block; applies on top of the book at
 * `prevSeq`. A book's seq is the height of the block that last changed its
 * window (or the height its node began following it at), the same on every
 * node that publishes it, so seqs are not contiguous: `prevSeq` links them.
 */
export interface BookDelta {
  instrument: string;
  seq: number;
  /** The seq of the book this delta applies on: the previous delta's, or the snapshot's. */
  prevSeq: number;
  bids: LevelView[];
  asks: LevelView[];
}

/** A position closed by its market's settlement at expiry. */
export interface SettlementView {
  instrument: string;
  /** The position closed (signed: positive long). */
  sizeLots: number;
  /** What one whole base unit long received (the price for a future, the payoff for an option). */
  valueQuote: QuoteString;
  height: number;
}

/** What changed for one subaccount in one block. */
export interface AccountUpdate {
  address: string;
  subaccount: number;
  /** Orders that were placed, amended, filled, cancelled or expired (their state after the block). */
  orders: UpdatedOrderView[];
  fills: FillView[];
  /**
   * Positions held after the block, then each the block closed (by trading,
   * a liquidation, a deleveraging or settlement), listed once more with
   * sizeLots 0, the entry it closed at, its funding, and its realized PnL with
   * what the close realized. One taken through zero to the other side is
   * listed once, with its new size.
   */
  positions: PositionView[];
  /** Positions closed this block by their market's settlement. */
  settlements?: SettlementView[];
  /** Balances after the block (as in SubaccountView). */
  cashQuote?: QuoteString;
  equityQuote?: QuoteString;
  marginUsedQuote?: QuoteString;
  maintenanceMarginQuote?: QuoteString;
  marginFreeQuote?: QuoteString;
}

/** A validator as this node sees the consensus. */
export interface ConsensusValidatorView {
  address: string;
  votingPower: number;
  /** Its precommit is in the last commit certificate. */
  signedLastCommit: boolean;
  /** Its precommit's timestamp minus the last block's BFT time (absent: it did not sign). */
  lastCommitDelayMs?: number;
  /** Blocks it signed among the last ones the node keeps. */
  signedRecent: number;
  /** Blocks it proposed among the same. */
  proposedRecent: number;
  /** This node. */
  self: boolean;
}

export const CONSENSUS_STEPS = ['propose', 'prevote', 'precommit'] as const;
export type ConsensusStep = (typeof CONSENSUS_STEPS)[number];

export interface ConsensusView {
  /** The height being decided (last committed + 1). */
  height: number;
  round: number;
  step: ConsensusStep;
  /** Peers connected to this node. */
  peers: number;
  /** This node's last proposal-to-commit time, wall clock. */
  lastCommitLatencyMs: number;
  /** How many recent blocks signedRecent and proposedRecent count. */
  recentBlocks: number;
  validators: ConsensusValidatorView[];
}

export interface InsurancePointView {
  height: number;
  timeMs: number;
  insuranceQuote: QuoteString;
}

export interface RiskView {
  height: number;
  insuranceQuote: QuoteString;
  /** The fund after each recent block, oldest first (bounded: VIEW_INSURANCE_POINTS_KEPT). */
  insurance: InsurancePointView[];
  /** Recent liquidation, deleverage, insurance-cover and halt events, oldest first. */
  events: BlockEventView[];
  /** The last block's oracle input. */
  oracle: OracleView[];
}

export const MARKET_END_REASONS = ['settled', 'retired'] as const;
export type MarketEndReason = (typeof MARKET_END_REASONS)[number];

/**
 * A market that left the exchange in a block: settled at its expiry (every
 * position closed at the settlement value), or retired without a settlement.
 * Its book, trades and ticker are no longer published.
 */
export interface MarketEndView {
  instrument: string;
  reason: MarketEndReason;
  /** The block that ended it. */
  height: number;
  timeMs: number;
  /** settled: the settlement price (30-minute index TWAP), quote units per whole base unit. */
  priceQuote?: QuoteString;
  /** settled: what one whole base unit long received (the price for a future, the payoff for an option). */
  valueQuote?: QuoteString;
}

/** Everything one committed block changed, published once the read model shows it. */
export interface BlockUpdate {
  height: number;
  timeMs: number;
  block: BlockView;
  /** The final status of every transaction in the block. */
  txs: TxView[];
  books: BookDelta[];
  trades: TradeView[];
  tickers: TickerView[];
  /**
   * One per account the block touched that a listener wants (AccountInterest):
   * every one while some listener subscribed without an interest.
   */
  accounts: AccountUpdate[];
  /** The markets this block ended (settled or retired). */
  ended: MarketEndView[];
}

/**
 * The accounts whose updates a listener reads (BlockUpdate.accounts). An
 * account update is read from the state of its block, so it cannot be built
 * later; a node builds only those some listener wants, asked before each block
 * is published.
 */
export interface AccountInterest {
  /** Whether any account is wanted (false: the node need not note the block's fills). */
  any(): boolean;
  /** Whether the updates of this address (lower-case 0x hex) are wanted. */
  has(address: string): boolean;
}

/**
 * Committed state at one height. All calls on one ReadModel answer from the
 * same height: a node swaps in a new ReadModel only after a block is fully
 * applied, so no answer ever mixes two blocks.
 */
export interface ReadModel {
  readonly height: number;
  status(): StatusView;
  validators(): ValidatorView[];
  instruments(): InstrumentView[];
  ticker(instrument: string): TickerView | undefined;
  /** undefined: no such instrument. */
  book(instrument: string, depthLevels: number): BookView | undefined;
  /** Most recent last; undefined: no such instrument. */
  trades(instrument: string, count: number): TradeView[] | undefined;
  /**
   * How a market that is no longer live ended, if the node remembers it
   * (docs/api.md, "Settled markets"); undefined for a live or unknown one.
   */
  ended(instrument: string): MarketEndView | undefined;
  /** undefined: the address has no account. `subaccount` narrows to one. */
  account(address: string, subaccount?: number): AccountView | undefined;
  /** Pending transactions (in this node's mempool) too, and those it recently dropped. */
  tx(hash: string): TxView | undefined;
  block(height: number): BlockView | undefined;
  /** Consensus state as this node sees it; absent: the view does not know it. */
  consensus?(): ConsensusView;
  /** Insurance fund history, liquidation events, oracle; absent: the view does not know it. */
  risk?(): RiskView;
}

/** Codes a node may refuse a submission with, before any block. */
export const SUBMIT_REJECT_CODES = [
  'Malformed',
  'Oversize',
  'WrongChain',
  'BadSignature',
  'BadField',
  'AgentNotAllowed',
  // Already in the mempool or a recent block.
  'DuplicateTx',
  // Refused by the committed state already, with the code its block would give.
  'Expired',
  'StaleNonce',
  // Its nonce NONCE_FUTURE_MS_MAX or more ahead of the last block's time.
  'FutureNonce',
  'DuplicateNonce',
  'NotPermitted',
  'MempoolFull',
] as const;
export type SubmitRejectCode = (typeof SUBMIT_REJECT_CODES)[number];

export type SubmitResult =
  | { ok: true; hash: string }
  | { ok: false; code: SubmitRejectCode; message: string; field?: string };

export interface NodeView {
  readonly chainId: string;
  /** The latest committed state. */
  read(): ReadModel;
  /** Stateless, signature and mempool checks, then admission. Never throws for bad input. */
  submit(bytes: Uint8Array): Promise<SubmitResult>;
  /**
   * Calls `listener` once per committed block, in height order, after read()
   * shows that block. `accounts`: the account updates it reads (absent: every
   * one). Returns the unsubscribe function.
   */
  subscribe(listener: (update: BlockUpdate) => void, accounts?: AccountInterest): () => void;
  /**
   * Calls `listener` for each transaction the node's mempool lets go of
   * after admitting it, before any block it executed held it, as it goes
   * (read().tx then answers `dropped` for it). Returns the unsubscribe function.
   */
  subscribeDropped(listener: (drop: TxDrop) => void): () => void;
}
