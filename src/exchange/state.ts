// The exchange's whole state, as plain records. Every mutation goes through
// the operation files, which mark what they touch (markAccount, markPrincipal,
// markMarket, orders through the book's change set) so the state digest is
// updated in work proportional to the block (hash.ts).
//
// Money model (docs/exchange.md, "Collateral"): an account's cashQuote is the
// ledger. A buy of q lots at p pays p·q·k from the buyer's cash to the
// seller's; fees, funding and liquidation fees are transfers too. So
//   deposits − withdrawals = Σ cash + insurance fund + fee pool
// holds exactly at every step, and equity = cash + Σ size × mark × k. Cost
// basis and realized PnL are kept per position for traders; they move no money.

import { assert } from '../lib/assert.ts';
import { CallAuction } from './auction/call_state.ts';
import type { Side } from './book/index.ts';
import { OrderBook } from './book/index.ts';
import type { FeeTier, Genesis, ListingGenesis, MarketParams, MarketRisk } from './genesis.ts';
import type { GovProposalKind } from './tx/types.ts';
import type { Instrument, TwapAccumulator } from './instruments/index.ts';
import { expiryMsOf } from './instruments/index.ts';
import type { OptionMark, ScenarioInstrument } from './options/index.ts';
import {
  oracleParamsOf,
  quotePerTickLot,
  riskOf,
  sameFeeTiers,
  sameRisk,
  withRisk,
} from './genesis.ts';
import type { OracleParams, OracleState, SmileFeed } from './oracle/aggregate.ts';
import { emptyOracleState } from './oracle/aggregate.ts';
import { ScanSchedule } from './scan.ts';
import type { ScanGroup } from './scan.ts';

const SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);

/** A signer's public key (ed25519). */
const MASTER_KEY_BYTES = 32;

/** Four bytes of `bytes` from `at`, big-endian, as a signed 32-bit integer. */
function word(bytes: Uint8Array, at: number): number {
  return (bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!;
}

/**
 * The listed records of every account that has none: shared and frozen, so
 * the margin paths' "no listed records" test reads an object already in cache
 * instead of an empty array per account (ownListed gives an account its own).
 */
const NO_LISTED: Position[] = Object.freeze([] as Position[]) as Position[];

/**
 * Money is bigint, but nearly every amount is a safe integer. The state's
 * long-lived amounts (an account's cash, volume and faucet draws; a
 * position's cost basis, realized PnL and funding) are held as a number while
 * they are one (NaN beyond 2^53 − 1, and then the bigint beside it): as
 * bigint fields, every fill allocated some ten heap objects kept until the
 * account's next trade (for the collector to move), and the leaf encoding
 * opened each one, a cache miss apiece. The bigint getters build their value
 * on read (short-lived); the setters take any bigint; the add… methods and
 * `…Num` work on the number inline (NaN: take the bigint).
 */
function moneyNum(x: bigint): number {
  const n = Number(x);
  return Number.isSafeInteger(n) ? n : NaN;
}

/**
 * The first value a money field (`…Num`) holds, before its constructor sets
 * it: a number beyond V8's small integers (31 bits), so the field is a double
 * from the first object on. Started at 0, a field is held as a small integer
 * until the first account's amount passes 2^30 (a fresh chain's traded
 * volume does within a minute); V8 then changes the class's layout and
 * discards the optimized code of every function that reads it: in
 * bench:cluster some thirty of the exchange's and the read model's, compiled
 * again on cores the validators share, one such cascade per field.
 * The value never survives the constructor; no amount is changed by this.
 */
const DOUBLE_FIELD = 2 ** 53;

export class Position {
  /** The market's index. */
  readonly market: number;
  /** Signed: positive long, negative short. */
  sizeLots = 0;
  /** costBasisQuote while a safe integer, else NaN (see moneyNum); 0 from the constructor (DOUBLE_FIELD). */
  costBasisNum = DOUBLE_FIELD;
  realizedPnlNum = DOUBLE_FIELD;
  fundingNum = DOUBLE_FIELD;
  private costBasisBig: bigint | null = null;
  private realizedPnlBig: bigint | null = null;
  private fundingBig: bigint | null = null;
  /** The liquidation scan's memo: the mark when the account's slack was taken (not state). */
  slackMarkTicks = 0;
  constructor(market: number) {
    this.market = market;
    this.costBasisNum = 0;
    this.realizedPnlNum = 0;
    this.fundingNum = 0;
  }

  /** Σ signed entry notional of the open size: average entry = costBasis / (size × k). */
  get costBasisQuote(): bigint {
    return this.costBasisBig ?? BigInt(this.costBasisNum);
  }

  set costBasisQuote(x: bigint) {
    const n = moneyNum(x);
    this.costBasisNum = n;
    this.costBasisBig = Number.isNaN(n) ? x : null;
  }

  /** costBasisQuote += d, a safe integer: on the number while the sum is one. */
  addCostBasis(d: number): void {
    const n = this.costBasisNum + d;
    if (Number.isSafeInteger(n)) this.costBasisNum = n;
    else this.costBasisQuote = this.costBasisQuote + BigInt(d);
  }

  /** realizedPnlQuote += d, a safe integer: on the number while the sum is one. */
  addRealizedPnl(d: number): void {
    const n = this.realizedPnlNum + d;
    if (Number.isSafeInteger(n)) this.realizedPnlNum = n;
    else this.realizedPnlQuote = this.realizedPnlQuote + BigInt(d);
  }

  get realizedPnlQuote(): bigint {
    return this.realizedPnlBig ?? BigInt(this.realizedPnlNum);
  }

  set realizedPnlQuote(x: bigint) {
    const n = moneyNum(x);
    this.realizedPnlNum = n;
    this.realizedPnlBig = Number.isNaN(n) ? x : null;
  }

  get fundingQuote(): bigint {
    return this.fundingBig ?? BigInt(this.fundingNum);
  }

  set fundingQuote(x: bigint) {
    const n = moneyNum(x);
    this.fundingNum = n;
    this.fundingBig = Number.isNaN(n) ? x : null;
  }
}

export class Account {
  readonly index: number;
  readonly address: Uint8Array;
  readonly subaccount: number;
  readonly principal: Principal;
  /**
   * cashQuote as a number while it is a safe integer, else NaN (see
   * moneyNum): the margin, scan and fill-guard paths on safe integers read it
   * inline. 0 from the constructor (DOUBLE_FIELD), as the others.
   */
  cashNum = DOUBLE_FIELD;
  /** volumeQuote and faucetQuote likewise. */
  volumeNum = DOUBLE_FIELD;
  faucetNum = DOUBLE_FIELD;
  /** Behind the amounts beyond 2^53 − 1 (null while the number holds it). */
  private cashBig: bigint | null = null;
  private volumeBig: bigint | null = null;
  private faucetBig: bigint | null = null;

  /** The ledger: this account's collateral, quote units. */
  get cashQuote(): bigint {
    return this.cashBig ?? BigInt(this.cashNum);
  }

  set cashQuote(x: bigint) {
    const n = moneyNum(x);
    this.cashNum = n;
    this.cashBig = Number.isNaN(n) ? x : null;
  }

  /**
   * cashQuote += d, a safe integer: on the number while the sum is one (a
   * NaN number, a balance beyond 2^53 − 1, takes the bigint).
   */
  addCash(d: number): void {
    const n = this.cashNum + d;
    if (Number.isSafeInteger(n)) this.cashNum = n;
    else this.cashQuote = this.cashQuote + BigInt(d);
  }

  /** volumeQuote += d, a safe integer, likewise. */
  addVolume(d: number): void {
    const n = this.volumeNum + d;
    if (Number.isSafeInteger(n)) this.volumeNum = n;
    else this.volumeQuote = this.volumeQuote + BigInt(d);
  }

  /** Lifetime traded notional, for the fee tier. */
  get volumeQuote(): bigint {
    return this.volumeBig ?? BigInt(this.volumeNum);
  }

  set volumeQuote(x: bigint) {
    const n = moneyNum(x);
    this.volumeNum = n;
    this.volumeBig = Number.isNaN(n) ? x : null;
  }

  get faucetQuote(): bigint {
    return this.faucetBig ?? BigInt(this.faucetNum);
  }

  set faucetQuote(x: bigint) {
    const n = moneyNum(x);
    this.faucetNum = n;
    this.faucetBig = Number.isNaN(n) ? x : null;
  }
  /** One per genesis market (perpetuals), by market index: the hot path indexes it directly. */
  readonly positions: Position[];
  /**
   * Records in listed markets (dated futures, options), ascending market
   * index: one per market where the account has traded or rested an order,
   * dropped when that market settles. So an account costs nothing for the
   * markets it never touched, however many were ever listed (position.ts).
   * Shared and frozen while empty: add records through ownListed().
   */
  listed: Position[] = NO_LISTED;
  /** Open orders by client order id. */
  readonly clientOrderIds = new Map<string, number>();
  /** Markets where this account has a position (a count, for quick "any position" checks). */
  positionCount = 0;
  dirtyEpoch = -1;
  /** The block height at which the liquidation scan last looked at this account (not state). */
  scannedHeight = -1;
  /**
   * The liquidation scan's memo (not state; margin.ts, liquidationSlack): the
   * account stays above maintenance while every mark moves at most slackTicks
   * from slackMarks; -1 when unknown.
   */
  slackTicks = -1;
  /** Where the scan schedule filed this account (scan.ts; not state). */
  scanGroup: ScanGroup | null = null;
  scanUnknown = false;
  /**
   * The fill guard's memo (fill_guard.ts; not state): losses admitted to this
   * account as a maker in the matching pass numbered guardEpoch.
   */
  guardEpoch = -1;
  guardLossNum = DOUBLE_FIELD;

  /** listed, as an array of this account's own, to add records to. */
  ownListed(): Position[] {
    if (this.listed === NO_LISTED) this.listed = [];
    return this.listed;
  }

  constructor(index: number, principal: Principal, subaccount: number, genesisMarketCount: number) {
    this.index = index;
    this.principal = principal;
    this.address = principal.address;
    this.subaccount = subaccount;
    this.cashNum = 0;
    this.volumeNum = 0;
    this.faucetNum = 0;
    this.guardLossNum = 0;
    this.positions = [];
    for (let i = 0; i < genesisMarketCount; i++) this.positions.push(new Position(i));
  }
}

export interface Agent {
  readonly publicKey: Uint8Array;
  expiresAtMs: number;
  readonly name: string;
}

/** Per address: replay protection, agent keys, and its subaccounts. */
export class Principal {
  readonly key: string;
  readonly address: Uint8Array;
  /**
   * The public key whose address this is, once it signed (derived, not
   * state), as eight big-endian 32-bit words (signed, so each is a small
   * integer V8 keeps inline) in this record itself: the signer of nearly every
   * transaction is compared with fields already in cache, not with a key
   * array of its own (an object and a buffer, two more misses), and its next
   * transactions need no key string or address-cache lookup.
   */
  private masterKnown = false;
  private mk0 = 0;
  private mk1 = 0;
  private mk2 = 0;
  private mk3 = 0;
  private mk4 = 0;
  private mk5 = 0;
  private mk6 = 0;
  private mk7 = 0;
  /**
   * The nonce window (tx/nonces.ts) of its own key's transactions, ascending,
   * held here rather than in an object of its own.
   */
  readonly nonces: number[] = [];
  /**
   * The window its agents' transactions share, apart from `nonces` so that no
   * agent key can fill the window its owner needs to revoke it; null until an
   * agent's transaction is accepted (most addresses have none).
   */
  agentNonces: number[] | null = null;
  /** By public key (keys.ts); null until an agent is registered (most addresses never do). */
  agents: Map<string, Agent> | null = null;
  /** Add through addSubaccount, which keeps account0 and subaccountCount in step. */
  readonly subaccounts = new Map<number, Account>();
  /** Subaccount 0, the one nearly every transaction acts on, without a map lookup. */
  account0: Account | null = null;
  /** subaccounts.size, kept beside account0 so the leaf encoding need not open the map. */
  subaccountCount = 0;
  /** The slot of its leaf in the digest's table (hash.ts); null until first hashed. */
  leaf: number | null = null;
  dirtyEpoch = -1;
  /** The last epoch in which markAccount marked one of its subaccounts. */
  accountsEpoch = -1;
  /**
   * Its subaccounts' bytes in its leaf as last encoded, at digest epoch
   * accountsMemoEpoch (hash.ts; derived, not state): reused while no
   * markAccount came after, so an address whose only change is a nonce does
   * not read its accounts again. Kept in a slot of the digest's memo slabs:
   * its size class (−1: no memo) and slot there.
   */
  accountsMemoClass = -1;
  accountsMemoSlot = 0;
  /** How many of the slot's bytes are the memo (the rest is room to grow). */
  accountsMemoLength = 0;
  accountsMemoEpoch = -1;

  constructor(key: string, address: Uint8Array) {
    this.key = key;
    this.address = address;
  }

  /** Whether the address's own key is known (it signed since the record was built). */
  hasMasterKey(): boolean {
    return this.masterKnown;
  }

  /** Whether `key` is the address's own key, as remembered (false while none is). */
  isMasterKey(key: Uint8Array): boolean {
    return (
      this.masterKnown &&
      key.length === MASTER_KEY_BYTES &&
      this.mk0 === word(key, 0) &&
      this.mk1 === word(key, 4) &&
      this.mk2 === word(key, 8) &&
      this.mk3 === word(key, 12) &&
      this.mk4 === word(key, 16) &&
      this.mk5 === word(key, 20) &&
      this.mk6 === word(key, 24) &&
      this.mk7 === word(key, 28)
    );
  }

  /** Remembers the address's own key (the caller checked that it hashes to the address). */
  rememberMasterKey(key: Uint8Array): void {
    assert(key.length === MASTER_KEY_BYTES, 'a public key is 32 bytes');
    this.mk0 = word(key, 0);
    this.mk1 = word(key, 4);
    this.mk2 = word(key, 8);
    this.mk3 = word(key, 12);
    this.mk4 = word(key, 16);
    this.mk5 = word(key, 20);
    this.mk6 = word(key, 24);
    this.mk7 = word(key, 28);
    this.masterKnown = true;
  }

  addSubaccount(subaccount: number, account: Account): void {
    this.subaccounts.set(subaccount, account);
    this.subaccountCount = this.subaccounts.size;
    if (subaccount === 0) this.account0 = account;
  }

  subaccount(subaccount: number): Account | undefined {
    return subaccount === 0 ? (this.account0 ?? undefined) : this.subaccounts.get(subaccount);
  }
}

/** What the exchange keeps beside each resting order (the book keeps the rest). */
export interface OrderMeta {
  readonly orderId: number;
  readonly market: number;
  readonly account: Account;
  readonly clientOrderId: string;
  /** Time priority stamp: rises each time the order joins the back of a level. */
  seq: number;
  /**
   * The order's size as placed, or as its last amend set it: the lots it
   * filled since plus its open lots (the book's sizeLots), so what it filled
   * is placedLots − open. Never below the open size. Reported (the
   * account's open orders), and an amend's size is judged against it: what
   * it filled is the part of the new size already taken.
   */
  placedLots: number;
  /** The slot of its leaf in the digest's table (hash.ts); null until first hashed. */
  leaf: number | null;
}

export class MarketState {
  /** Its slot in ExchangeState.markets; a settled listed market's slot is reused by a later listing. */
  readonly index: number;
  /**
   * Its parameters: those it was listed with (baseParams) but for the risk
   * parameters governance set since (governance.ts, setMarketRisk; state:
   * in the market's leaf and the snapshot when they differ from the base).
   * Replaced whole, never changed in place: a listing shares its template's.
   */
  params: MarketParams;
  /** What it was listed with: the genesis market, or its template under its own name. */
  readonly baseParams: MarketParams;
  /** Its risk parameters differ from baseParams' (then they are written as state; set by setRisk). */
  riskChanged = false;
  readonly instrument: Instrument;
  /** Listed past genesis (a dated future or an option): settles at expiryMs and retires. */
  readonly listed: boolean;
  /** 0 for a perpetual. */
  readonly expiryMs: number;
  /** Settled: its slot is free (not state; the slot's market is gone from the digest). */
  retired = false;
  /** Accounts with a record here (listed markets only; order not relied on). */
  readonly records = new Set<Account>();
  /**
   * An option's mark, volatility and greeks: derived from the oracle at this
   * block, or, with a genesis markIntervalMs (marksKept), at the first block of
   * the current mark interval, and then state (its forward, time and
   * volatility are in the market's leaf and the snapshot).
   */
  optionMark: OptionMark | null = null;
  /** The option's forward or the future's mark, quote units per whole base unit (state when marksKept). */
  forwardQuote = 0n;
  /** A listed option whose mark is kept between mark intervals (genesis listing.markIntervalMs). */
  marksKept = false;
  /**
   * Scenario values for option margin, built when needed and kept while what
   * they are built from is unchanged (scenarioOf; derived): the mark (an
   * option's kept between mark intervals), the forwards, the grace.
   */
  scenario: ScenarioInstrument | null = null;
  scenarioMark: OptionMark | null = null;
  scenarioMarkTicks = 0;
  scenarioForward = 0n;
  scenarioForwardNow = 0n;
  scenarioGraceOver = false;
  /** The grace's smile and start the kept values were built from (listed_margin.ts graceKey). */
  scenarioGraceSmile: SmileFeed | null = null;
  scenarioGraceSinceMs: number | null = null;
  /** Whether the kept values were built past the option's expiry (its intrinsic values stand for the model's). */
  scenarioExpired = false;
  /** The height at which markOptions last computed or dropped this option's mark (derived). */
  remarkedHeight = -1;
  /**
   * An option's forward at this block (the expiry's future mark, else the
   * underlying's index; 0 without either), whether or not it could be marked:
   * the model-free margin of one without a fresh smile moves with it (derived,
   * set by markOptions every block and after a restore).
   */
  forwardNowQuote = 0n;
  /**
   * Whether an option without a fresh smile (or index) has been so for the grace
   * (listed_margin.ts, UNSHOCKED_MAINTENANCE_GRACE_MS), or has no staleness to
   * wait out (a smile its pricing math refuses): its maintenance then takes its
   * cushion (derived, set by markOptions every block and after a restore).
   */
  unshockedGraceOver = true;
  /**
   * When an option's grace counts from: the moment its smile or its
   * underlying's index goes (or went) stale, whichever first, its updatedMs +
   * staleAfterMs; null without a smile (nothing to wait out). Derived from the
   * oracle state every block before expiry, the kept start (graceStartMs)
   * where earlier while smile and index are not both fresh; past it, where the
   * oracle has dropped the smile, it stays at the earlier of that and the
   * expiry, and is state (in the market's leaf and the snapshot): a smile
   * stale since long before expiry does not start the grace again there.
   */
  unshockedSinceMs: number | null = null;
  /**
   * Before expiry, the grace's start kept while the option is not both
   * fresh (smile and index): markOptions takes the earlier of it and the one
   * derived from the oracle state; null while both are fresh (derived, but
   * for graceEarlyMs).
   */
  graceStartMs: number | null = null;
  /**
   * The kept grace start where it is earlier than the one the oracle state
   * tells (an index back for a while, the smile still stale), else null:
   * state, in the market's leaf and the snapshot (format 11), set by
   * markOptions. A restore sets graceStartMs from it.
   */
  graceEarlyMs: number | null = null;
  /**
   * Within the grace of an option without a fresh smile (or index), before
   * its expiry: its expiry's last smile in the oracle state, stale or not,
   * by which maintenance values it meanwhile (listed_margin.ts, scenarioOf);
   * null otherwise (derived, set by markOptions every block and after a
   * restore, from the oracle state).
   */
  graceSmile: SmileFeed | null = null;
  readonly k: bigint;
  /** The parameters' maintenanceMarginPpm as a bigint (derived, kept in step by setRisk). */
  maintenancePpmBig: bigint;
  book: OrderBook;
  /** Last oracle index, in ticks (0 = never priced). */
  indexTicks = 0;
  markTicks = 0;
  /** markTicks × k: the value of one lot at the mark (derived, kept in step by setMark). */
  markQuotePerLot = 0n;
  /**
   * Safe-integer copies for the margin fast path (margin.ts, "Safe integers"):
   * k, markQuotePerLot and imfStepQuote as numbers, or −1 when one is beyond
   * 2^53 − 1 (then every check on this market takes the bigint path).
   */
  readonly kNum: number;
  imfStepQuoteNum: number;
  markQuotePerLotNum = 0;
  /** markQuotePerLot × maintenanceMarginPpm (derived, kept in step by setMark). */
  maintenancePerLotScaled = 0n;
  /**
   * Per lot of a long (short) position, maintenance × 10^6 minus (plus) the
   * lot's value × 10^6: an account is below maintenance when
   * cash × 10^6 < Σ |size| × coefficient (margin.ts, belowMaintenance).
   */
  longBelowCoef = 0n;
  shortBelowCoef = 0n;
  /** Premium samples of the current funding interval. */
  premiumSumPpm = 0;
  premiumCount = 0;
  lastFundingRatePpm = 0;
  longLots = 0;
  shortLots = 0;
  halted = false;
  /**
   * The underlying's index has had no quorum for longer than staleAfterMs (or
   * never had one): risk-increasing orders are refused and its holders are not
   * liquidated. Derived each block from the oracle state and block time.
   */
  oracleStale = false;
  /** A liquidation here was cut by the per-block cap: next block scans all holders again. */
  liquidationBacklog = false;
  seq = 0;
  /**
   * Trades ever made here (book fills, liquidation fills, auction uncross
   * trades): the API numbers a market's trades from it, so a trade has the
   * same id on every node and across restarts.
   */
  tradeCount = 0;
  /** Accounts with a non-zero position here (iteration order is not relied on). */
  readonly holders = new Set<Account>();
  /** Notional liquidated in the current block (reset each block; not state). */
  liquidatedQuote = 0n;
  leaf: Uint8Array | null = null;
  dirty = true;
  /** Price monitoring and the orders of a volatility auction; null without triggers in the genesis. */
  readonly auction: CallAuction | null;

  /** An owner's open size on a side: its resting orders and, during an auction, its auction orders. */
  restingLots(owner: number, side: Side): number {
    const lots = this.book.ownerRestingLots(owner, side);
    const auction = this.auction;
    return auction === null || !auction.active ? lots : lots + auction.restingLots(owner, side);
  }

  /** Resting orders in the market's book and its auction's books together. */
  restingOrderCount(): number {
    const a = this.auction;
    return this.book.orderCount + (a === null ? 0 : a.bids.orderCount + a.asks.orderCount);
  }

  /** An owner's open orders here, in the book and among the auction orders. */
  ownerOrderCount(owner: number): number {
    const count = this.book.ownerOrderCount(owner);
    const auction = this.auction;
    return auction === null || !auction.active ? count : count + auction.orderCount(owner);
  }

  setMark(ticks: number): void {
    this.markTicks = ticks;
    this.markQuotePerLot = BigInt(ticks) * this.k;
    this.markQuotePerLotNum = this.markQuotePerLot <= SAFE_BIG ? Number(this.markQuotePerLot) : -1;
    this.maintenancePerLotScaled = this.markQuotePerLot * this.maintenancePpmBig;
    const valueScaled = this.markQuotePerLot * 1_000_000n;
    this.longBelowCoef = this.maintenancePerLotScaled - valueScaled;
    this.shortBelowCoef = this.maintenancePerLotScaled + valueScaled;
  }

  /** Takes new risk parameters (validated: genesis.ts checkRisk) and what is derived from them. */
  setRisk(risk: MarketRisk): void {
    this.params = withRisk(this.params, risk);
    this.riskChanged = !sameRisk(risk, riskOf(this.baseParams));
    this.maintenancePpmBig = BigInt(this.params.maintenanceMarginPpm);
    const step = this.params.imfStepQuote;
    this.imfStepQuoteNum = step <= SAFE_BIG ? Number(step) : -1;
    this.setMark(this.markTicks);
  }

  constructor(index: number, params: MarketParams, instrument?: Instrument) {
    this.index = index;
    this.params = params;
    this.baseParams = params;
    this.instrument = instrument ?? { kind: 'perpetual', underlying: params.underlying };
    this.listed = instrument !== undefined && instrument.kind !== 'perpetual';
    this.expiryMs = expiryMsOf(this.instrument) ?? 0;
    this.k = quotePerTickLot(params);
    this.maintenancePpmBig = BigInt(params.maintenanceMarginPpm);
    this.kNum = this.k <= SAFE_BIG ? Number(this.k) : -1;
    this.imfStepQuoteNum = params.imfStepQuote <= SAFE_BIG ? Number(params.imfStepQuote) : -1;
    this.book = new OrderBook();
    const triggers = params.triggers ?? [];
    this.auction = triggers.length === 0 ? null : new CallAuction(triggers);
  }
}

export interface Deposit {
  /** depositKey(): the whole content. */
  readonly key: string;
  readonly depositId: Uint8Array;
  readonly account: Uint8Array;
  readonly subaccount: number;
  readonly amountQuote: bigint;
  /** Validator indices that attested, ascending. */
  readonly attesters: number[];
  stake: bigint;
  leaf: Uint8Array | null;
  dirty: boolean;
}

export interface Proposal {
  readonly proposalId: number;
  readonly kind: GovProposalKind;
  readonly market: number;
  /** A setMarketRisk proposal's new values (null for the other kinds). */
  readonly risk: MarketRisk | null;
  /** A setFeeTiers proposal's new schedule (null for the other kinds). */
  readonly feeTiers: readonly FeeTier[] | null;
  readonly approvers: number[];
  stake: bigint;
  /** Executed, or closed: it can no longer act. */
  executed: boolean;
  /**
   * Closed by its market's settlement, never executed: its approvals keep
   * holding their room (governance.ts closeWithoutEffect), so proposals about
   * markets that settle cannot grow the state past the validators' rooms.
   */
  closed: boolean;
  leaf: Uint8Array | null;
  dirty: boolean;
}

/**
 * A validator's bonded stake (genesis.ts ValidatorInfo). Stake is not
 * collateral: it never entered through a deposit, so burning it moves no
 * money and leaves deposits − withdrawals = balances + fund + fees as it was.
 */
export class ValidatorState {
  readonly publicKey: Uint8Array;
  readonly key: string;
  /** The genesis stake: its voting power while it is in the consensus set. */
  readonly genesisStake: bigint;
  /** Bonded stake after slashing (governance.ts, applyEvidence). */
  stake: bigint;
  jailed = false;
  /** The height whose block jailed it (0: never); it leaves the set deciding jailedHeight + 2. */
  jailedHeight = 0;
  /** Derived (governance.ts countPending): pending deposits it attested, proposals not executed it approved. */
  pendingDeposits = 0;
  pendingProposals = 0;
  constructor(publicKey: Uint8Array, key: string, stake: bigint) {
    this.publicKey = publicKey;
    this.key = key;
    this.genesisStake = stake;
    this.stake = stake;
  }
}

export class ExchangeState {
  readonly genesis: Genesis;
  /** By index: the genesis markets, then listed markets (a settled one's slot is reused). */
  readonly markets: MarketState[];
  /** Markets 0..genesisMarketCount−1 are the genesis's (perpetuals): they never retire. */
  readonly genesisMarketCount: number;
  readonly listing: ListingGenesis | null;
  /** Settlement TWAPs by smileKey(underlying, expiryMs), one per listed expiry until it settles. */
  readonly twaps = new Map<string, TwapAccumulator>();
  readonly marketByName = new Map<string, MarketState>();
  readonly marketByUnderlying = new Map<string, MarketState[]>();
  readonly validators: ValidatorState[];
  readonly validatorByKey = new Map<string, ValidatorState>();
  /** Stake of the validators not jailed: the base of every 2/3 threshold (governance, deposits). */
  totalStake: bigint;
  validatorsDirty = true;

  height = 0;
  timeMs: number;
  insuranceQuote: bigint;
  feePoolQuote = 0n;
  depositedQuote: bigint;
  withdrawnQuote = 0n;
  nextOrderId = 1;
  /**
   * The fee schedule in force (fees.ts feeTier): genesis's until governance
   * sets another (governance.ts, setFeeTiers). Only through setFeeTiers,
   * which keeps what is derived from it.
   */
  feeTiers: readonly FeeTier[];
  /** It differs from genesis's: then it is state (the globals leaf and the snapshot). */
  feeTiersChanged = false;
  /** Derived: the highest maker fee of the schedule, at least 0: a rebate is never counted as a gain (fill_guard.ts). */
  feeMakerPpmMax = 0;
  /** Derived: the highest taker fee of the schedule (fill_guard.ts, placement's bound). */
  feeTakerPpmMax = 0;
  /**
   * Accounts left with negative cash and no position: withdrawals weigh them
   * with the others below zero against the insurance fund (withdraw.ts), and
   * the fund pays them as it grows again (liquidation.ts, payDeficits).
   */
  readonly deficits = new Set<Account>();
  /**
   * Accounts holding positions with negative equity at the end of the last
   * block (liquidation.ts, setUnderwater): withdrawals weigh them (withdraw.ts). A
   * function of the state (an invariant holds it equal to the scan of every
   * account), so not in the snapshot or the digest: rebuilt on restore.
   */
  readonly underwater = new Set<Account>();
  /** Every market's mark before the current block moved it (exchange.ts; not state). */
  marksBefore: readonly number[] = [];
  /**
   * withdraw.ts's memo of a block (not state): the height it last looked at,
   * every account it found below zero equity at that block's marks with what
   * it lacks to reach zero (liquidation.ts, unresolvedShortfalls; lowered as
   * cash comes into one), and their sum. A function of the state and the
   * block's transactions: its order is never read.
   */
  shortfallHeight = -1;
  readonly shortfalls = new Map<Account, bigint>();
  shortfallQuote = 0n;

  readonly principals = new Map<string, Principal>();
  readonly accounts: Account[] = [];
  readonly orders = new Map<number, OrderMeta>();
  /** Deposits awaiting attestations, by their whole content (attest_deposit.ts). */
  readonly deposits = new Map<string, Deposit>();
  /** Derived: the keys of `deposits` by deposit id (hex), so a credit drops its id's other groups. */
  readonly depositKeysById = new Map<string, string[]>();
  /** Spent deposit ids (hex). */
  readonly creditedDeposits = new Set<string>();
  /** Credited since the digest was last brought up to date. */
  readonly newCredited: string[] = [];
  readonly proposals = new Map<number, Proposal>();
  /** Parameters and state of the validators' oracle; null when the genesis has none. */
  readonly oracleParams: OracleParams | null;
  oracle: OracleState | null;

  /** Which holders the liquidation scan looks at (scan.ts; derived, not state). */
  readonly scan = new ScanSchedule();

  /** Entities changed since the digest was last brought up to date. */
  epoch = 0;
  readonly dirtyAccounts: Account[] = [];
  readonly dirtyPrincipals: Principal[] = [];
  readonly dirtyDeposits: Deposit[] = [];
  readonly dirtyProposals: Proposal[] = [];
  /** Orders whose exchange-side record changed (the book reports its own changes). */
  readonly dirtyOrders: number[] = [];
  /** Leaves of entities that are gone (orders that left the book), to subtract. */
  readonly goneLeaves: Uint8Array[] = [];
  /** Leaf slots (hash.ts) of orders that left the book, to subtract and free. */
  readonly goneLeafSlots: number[] = [];
  globalsLeaf: Uint8Array | null = null;
  validatorsLeaf: Uint8Array | null = null;

  constructor(genesis: Genesis, validatorKeyOf: (publicKey: Uint8Array) => string) {
    this.genesis = genesis;
    this.timeMs = genesis.genesisTimeMs;
    this.insuranceQuote = genesis.insuranceFundQuote;
    // The initial insurance fund is collateral that entered the system.
    this.depositedQuote = genesis.insuranceFundQuote;
    this.markets = genesis.markets.map((p, i) => new MarketState(i, p));
    this.genesisMarketCount = this.markets.length;
    this.listing = genesis.listing ?? null;
    for (const m of this.markets) {
      this.marketByName.set(m.params.instrument, m);
      const list = this.marketByUnderlying.get(m.params.underlying) ?? [];
      list.push(m);
      this.marketByUnderlying.set(m.params.underlying, list);
    }
    let total = 0n;
    this.validators = genesis.validators.map((v) => {
      const s = new ValidatorState(v.publicKey, validatorKeyOf(v.publicKey), v.stake);
      this.validatorByKey.set(s.key, s);
      total += v.stake;
      return s;
    });
    this.totalStake = total;
    this.feeTiers = genesis.feeTiers;
    this.setFeeTiers(genesis.feeTiers);
    this.oracleParams = oracleParamsOf(genesis);
    this.oracle = this.oracleParams === null ? null : emptyOracleState(this.oracleParams);
  }

  /** An account's data is part of its address's leaf (hash.ts): marking one marks both. */
  markAccount(a: Account): void {
    if (a.dirtyEpoch === this.epoch) return;
    a.principal.accountsEpoch = this.epoch;
    a.dirtyEpoch = this.epoch;
    this.dirtyAccounts.push(a);
    this.markPrincipal(a.principal);
  }

  markPrincipal(p: Principal): void {
    if (p.dirtyEpoch === this.epoch) return;
    p.dirtyEpoch = this.epoch;
    this.dirtyPrincipals.push(p);
  }

  markDeposit(d: Deposit): void {
    if (d.dirty) return;
    d.dirty = true;
    this.dirtyDeposits.push(d);
  }

  markProposal(p: Proposal): void {
    if (p.dirty) return;
    p.dirty = true;
    this.dirtyProposals.push(p);
  }

  /**
   * Takes a fee schedule (validated: genesis.ts checkFeeTiers) and what is
   * derived from it; every reader takes them from here, so none keeps the
   * one before.
   */
  setFeeTiers(tiers: readonly FeeTier[]): void {
    this.feeTiers = tiers;
    this.feeTiersChanged = !sameFeeTiers(tiers, this.genesis.feeTiers);
    let maker = 0;
    let taker = 0;
    for (const t of tiers) {
      if (t.makerFeePpm > maker) maker = t.makerFeePpm;
      if (t.takerFeePpm > taker) taker = t.takerFeePpm;
    }
    this.feeMakerPpmMax = maker;
    this.feeTakerPpmMax = taker;
  }

  /** Stake strictly above two thirds of the total. */
  isSupermajority(stake: bigint): boolean {
    return stake * 3n > this.totalStake * 2n;
  }
}
