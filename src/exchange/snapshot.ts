// The whole state as canonical bytes and back (docs/exchange.md, "Snapshots").
//
//   u8 format (SNAPSHOT_FORMAT) · genesis · globals · validators · markets (state, then the
//   book in its own canonical form) · addresses (ascending) · accounts (by
//   index) · order records (ascending id) · pending deposits (ascending key) ·
//   spent deposit ids (ascending) · proposals (ascending id) · oracle state
//   (oracle/aggregate.ts oracleStateCodec; only with a genesis oracle)
//
// A restored exchange recomputes every leaf from scratch, so it has the same
// digest and appHash as the one that wrote the snapshot, and it behaves
// identically: every iteration that decides an outcome follows an order kept
// in the state (account index, order id, book priority), never the insertion
// order of a Map or Set. A snapshot that decodes but breaks an invariant is
// refused with a DecodeError.
//
// The format byte comes first and is checked before anything else is read:
// any change to the encoding (here or in encoding.ts) raises SNAPSHOT_FORMAT,
// and a snapshot of another format (other than the one before it, below) is
// refused with a SnapshotFormatError naming both. Format 2 added the markets' liquidationBacklog flag; format 1
// snapshots are refused (some were written before the flag, some after, so
// they cannot be told apart). Format 3 added the oracle state. Format 4 adds
// each validator's jailing (jailed, the height that jailed it, its stake after
// slashing); for markets with price-monitoring triggers, the monitor state (in
// the market state) and the two books of auction orders after the market's
// book; and, with a genesis listing, the listed markets' slots, accounts'
// listed records and the settlement TWAPs (after the oracle state). Format 5
// drops each book's lastOrderId (not state: the exchange assigns ids from
// nextOrderId, and no leaf covered it) and the free slots after the last live
// listed market (a new listing takes the same index with or without them), so
// that nothing is read that the appHash does not check. Format 6 adds, in the
// oracle state, each validator's carried observation (oracle/aggregate.ts).
// Format 7 adds each address's agents' nonce window, after its own key's
// (format 6 snapshots are refused: their one window held both). Format 8 adds
// each market's tradeCount after its seq. Format 9 adds each order record's
// placedLots after its seq. Format 10 adds, for a listed option past expiry
// (waiting for its settlement price), since when its maintenance grace counts
// (unshockedSinceMs), after its kept mark. Format 11 adds, after each
// market's state, whether governance changed its risk parameters and if so
// their values (governance.ts, setMarketRisk), and the setMarketRisk
// proposal kind with its values after a proposal's status, and, for a
// listed option before expiry, after its kept mark, the start its
// maintenance grace keeps where earlier than its oracle state tells
// (graceEarlyMs, listing.ts markOptions). Format 12 adds, after the
// deficits, whether governance changed the fee schedule and if so the
// schedule in force (governance.ts, setFeeTiers), and the setFeeTiers
// proposal kind with its schedule after a proposal's status. Format 11 is
// read too (SNAPSHOT_FORMAT_PREVIOUS): the fee schedule is genesis's and no
// proposal is a setFeeTiers.
//
// Canonical: a state has one encoding (and one more in format 11, where it
// has one there: without the fee schedule's flag), and every other byte
// string is refused or decodes to a state with another appHash
// (snapshot_cover.test.ts flips bits to check it). Lists written in ascending order are refused out of
// order; an option whose mark the restore recomputes (no mark interval) must
// carry the mark it recomputes to.

import type { Reader, Writer } from '../codec/wire.ts';
import { DecodeError, Reader as WireReader, Writer as WireWriter } from '../codec/wire.ts';
import { AssertionError, assert } from '../lib/assert.ts';
import { divFloor } from '../lib/int.ts';
import { bytesKey } from './keys.ts';
import { NEVER, isStale, oracleStateCodec } from './oracle/aggregate.ts';
import {
  ACCOUNTS_MAX,
  SNAPSHOT_BYTES_MAX,
  GENESIS_VALIDATORS_MAX,
  LISTED_MARKETS_MAX,
  PENDING_DEPOSITS_MAX,
  PROPOSALS_MAX,
  SIZE_LOTS_MAX,
  STRING_BYTES_MAX,
} from '../lib/limits.ts';
import { readBookOrders, writeBookOrders } from './book/index.ts';
import {
  MONEY_BITS,
  activeStake,
  readAccountInto,
  readTwaps,
  writeTwaps,
  readCheckedFeeTiers,
  readMarketRisk,
  readMarketState,
  readPrincipalInto,
  readValidatorInto,
  writeAccount,
  writeDeposit,
  writeMarketState,
  writeOrderMeta,
  writePrincipal,
  writeProposal,
  writeValidator,
} from './encoding.ts';
import { depositKey, indexDeposit } from './attest_deposit.ts';
import { Exchange } from './exchange.ts';
import type { ExchangeOptions } from './exchange.ts';
import type { MarketParams, MarketRisk } from './genesis.ts';
import { GenesisError, genesisCodec, listedTemplate } from './genesis.ts';
import type { Instrument } from './instruments/index.ts';
import { InstrumentError, parseInstrument } from './instruments/index.ts';
import { checkInvariants } from './invariants.ts';
import { countPending } from './governance.ts';
import { setUnderwater } from './liquidation.ts';
import type { Deposit, Proposal } from './state.ts';
import { writeFeeTiers } from './tx/codec.ts';
import { GOV_PROPOSAL_KINDS } from './tx/types.ts';
import { Account, ExchangeState, MarketState, Principal } from './state.ts';

/** A spent deposit id in a snapshot: its length byte and 64 hex characters. */
const CREDITED_RECORD_BYTES = 65;

/** The snapshot encoding this build writes. */
export const SNAPSHOT_FORMAT = 12;
/**
 * The format before it, which this build reads too: a chain the build before
 * stopped at a halt height resumes from that build's snapshot under this one
 * (docs/operations.md, "Upgrades"). Its bytes are format 12's without the
 * fee schedule's flag (in format 11 the schedule is genesis's) and without
 * setFeeTiers proposals.
 */
export const SNAPSHOT_FORMAT_PREVIOUS = 11;

/** A snapshot of a format this build does not read (a DecodeError, so callers refusing bad snapshots refuse it too). */
export class SnapshotFormatError extends DecodeError {
  readonly foundFormat: number;
  readonly supportedFormat: number;
  constructor(foundFormat: number) {
    super(
      'snapshot.format',
      `snapshot format ${foundFormat} is not supported: this build reads format ${SNAPSHOT_FORMAT} (and ${SNAPSHOT_FORMAT_PREVIOUS}, the one before)`,
    );
    this.foundFormat = foundFormat;
    this.supportedFormat = SNAPSHOT_FORMAT;
  }
}
/** Proposal kinds a format 11 snapshot knows (GOV_PROPOSAL_KINDS but setFeeTiers). */
const PROPOSAL_KINDS_PREVIOUS = 5;

function sortedBy<T>(items: Iterable<T>, key: (x: T) => string | number): T[] {
  return [...items].sort((a, b) => {
    const x = key(a);
    const y = key(b);
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

/**
 * `format`: SNAPSHOT_FORMAT, or SNAPSHOT_FORMAT_PREVIOUS for a state that
 * has an encoding there (decodeSnapshot's check of a format 11 snapshot).
 */
export function writeSnapshot(w: Writer, ex: Exchange, format = SNAPSHOT_FORMAT): void {
  const s = ex.state;
  const feeFlag = format === SNAPSHOT_FORMAT;
  if (!feeFlag) {
    assert(format === SNAPSHOT_FORMAT_PREVIOUS, `snapshot format ${format} is not written`);
    assert(
      !s.feeTiersChanged && [...s.proposals.values()].every((p) => p.kind !== 'setFeeTiers'),
      'a fee schedule set by governance has no format 11 encoding',
    );
  }
  w.u8(format);
  genesisCodec.write(w, s.genesis);
  w.uvarint(s.height).uvarint(s.timeMs);
  w.ivarintBig(s.insuranceQuote).uvarintBig(s.feePoolQuote);
  w.uvarintBig(s.depositedQuote).uvarintBig(s.withdrawnQuote).uvarint(s.nextOrderId);
  const deficits = [...s.deficits].map((a) => a.index).sort((a, b) => a - b);
  w.uvarint(deficits.length);
  for (const i of deficits) w.uvarint(i);
  // The fee schedule in force, where governance changed it from genesis's.
  if (feeFlag) w.bool(s.feeTiersChanged);
  if (s.feeTiersChanged) writeFeeTiers(w, s.feeTiers);
  for (const v of s.validators) writeValidator(w, v);
  for (let i = 0; i < s.genesisMarketCount; i++) {
    const m = s.markets[i]!;
    writeMarketState(w, m, s.timeMs, true);
    writeBookOrders(w, m.book);
    if (m.auction !== null) {
      writeBookOrders(w, m.auction.bids);
      writeBookOrders(w, m.auction.asks);
    }
  }
  if (s.listing !== null) {
    // Listed slots up to the last live one: a free one is just a flag; a live
    // one its name, state and book.
    let end = s.markets.length;
    while (end > s.genesisMarketCount && s.markets[end - 1]!.retired) end--;
    w.uvarint(end - s.genesisMarketCount);
    for (let i = s.genesisMarketCount; i < end; i++) {
      const m = s.markets[i]!;
      w.bool(!m.retired);
      if (m.retired) continue;
      w.string(m.params.instrument, STRING_BYTES_MAX);
      writeMarketState(w, m, s.timeMs, true);
      writeBookOrders(w, m.book);
    }
  }
  const principals = sortedBy(s.principals.values(), (p) => p.key);
  w.uvarint(principals.length);
  for (const p of principals) writePrincipal(w, p);
  w.uvarint(s.accounts.length);
  for (const a of s.accounts) writeAccount(w, a, s.listing !== null);
  const orders = sortedBy(s.orders.values(), (o) => o.orderId);
  w.uvarint(orders.length);
  for (const o of orders) writeOrderMeta(w, o);
  const deposits = sortedBy(s.deposits.values(), (d) => d.key);
  w.uvarint(deposits.length);
  for (const d of deposits) writeDeposit(w, d);
  const credited = [...s.creditedDeposits].sort();
  w.uvarint(credited.length);
  for (const id of credited) w.string(id, 64);
  const proposals = sortedBy(s.proposals.values(), (p) => p.proposalId);
  w.uvarint(proposals.length);
  for (const p of proposals) writeProposal(w, p);
  if (s.oracle !== null) oracleStateCodec(s.oracleParams!).write(w, s.oracle);
  if (s.listing !== null) writeTwaps(w, s);
}

/** A listed market's slot from its name (the genesis template under that name). */
function readListedSlot(r: Reader, s: ExchangeState, index: number, f: string): MarketState {
  const name = r.string(`${f}.instrument`, STRING_BYTES_MAX);
  let instrument: Instrument;
  try {
    instrument = parseInstrument(name);
  } catch (e) {
    if (e instanceof InstrumentError) throw new DecodeError(`${f}.instrument`, e.message);
    throw e;
  }
  if (instrument.kind === 'perpetual' || s.marketByName.has(name)) {
    throw new DecodeError(`${f}.instrument`, 'not a new dated instrument');
  }
  let params: MarketParams;
  try {
    params = {
      ...listedTemplate(s.listing!, instrument.underlying, instrument.kind),
      instrument: name,
    };
  } catch (e) {
    if (e instanceof GenesisError) throw new DecodeError(`${f}.instrument`, e.message);
    throw e;
  }
  const m = new MarketState(index, params, instrument);
  m.marksKept = instrument.kind === 'option' && s.listing!.markIntervalMs !== undefined;
  s.marketByName.set(name, m);
  return m;
}

function readDeposit(r: Reader, f: string): Deposit {
  const depositId = r.fixed(`${f}.depositId`, 32).slice();
  const account = r.fixed(`${f}.account`, 20).slice();
  const subaccount = r.u8(`${f}.subaccount`);
  const amountQuote = r.uvarintBig(`${f}.amountQuote`, MONEY_BITS);
  const n = r.uvarint(`${f}.attesters`, GENESIS_VALIDATORS_MAX);
  const attesters: number[] = [];
  for (let i = 0; i < n; i++)
    attesters.push(r.uvarint(`${f}.attesters[${i}]`, GENESIS_VALIDATORS_MAX));
  const stake = r.uvarintBig(`${f}.stake`, MONEY_BITS);
  const key = depositKey({ depositId, account, subaccount, amountQuote });
  return {
    key,
    depositId,
    account,
    subaccount,
    amountQuote,
    attesters,
    stake,
    leaf: null,
    dirty: false,
  };
}

/** Attesters and approvers are validator indices, strictly ascending (as attest and approve keep them). */
function checkVoters(indices: readonly number[], validators: number, field: string): void {
  indices.forEach((v, i) => {
    if (v >= validators || (i > 0 && v <= indices[i - 1]!)) {
      throw new DecodeError(field, 'validator indices, strictly ascending');
    }
  });
}

/**
 * A proposal names its market as govPropose and settlement leave it: all
 * markets (-1) for haltAll and resumeAll, a slot for the others; a pending
 * one a live slot (settling a market closes the proposals about it), and a
 * closed one a slot (only settlement closes). Unchecked, a pending proposal
 * naming no market would throw at the approval that executes it, and one
 * naming -1 or below would act on every market.
 */
function checkProposalMarket(s: ExchangeState, p: Proposal, field: string): void {
  // A proposal about no market: -1 (as govPropose sets it).
  const all = p.kind === 'haltAll' || p.kind === 'resumeAll' || p.kind === 'setFeeTiers';
  if (all ? p.market !== -1 : p.market < 0) {
    throw new DecodeError(field, `not the market of a ${p.kind} proposal`);
  }
  if (p.closed && all) throw new DecodeError(field, 'only a proposal about a market is closed');
  if (!p.executed && !all && (s.markets[p.market] === undefined || s.markets[p.market]!.retired)) {
    throw new DecodeError(field, 'a pending proposal names a live market');
  }
}

/**
 * `kinds`: how many of GOV_PROPOSAL_KINDS the snapshot's format knows (a
 * format 11 snapshot has no setFeeTiers). A setFeeTiers proposal's schedule
 * follows its status, held to genesis's rules as govPropose held it. A setMarketRisk proposal's
 * values follow its status, held to the rules govPropose applied: against
 * its market's parameters while it is pending (its market is live), alone
 * once executed or closed (its slot may hold another market since).
 */
function readProposal(s: ExchangeState, r: Reader, f: string, kinds: number): Proposal {
  const proposalId = r.uvarint(`${f}.proposalId`);
  const kind = GOV_PROPOSAL_KINDS[r.tag(`${f}.kind`, kinds)]!;
  const market = r.ivarint(`${f}.market`);
  const n = r.uvarint(`${f}.approvers`, GENESIS_VALIDATORS_MAX);
  const approvers: number[] = [];
  for (let i = 0; i < n; i++)
    approvers.push(r.uvarint(`${f}.approvers[${i}]`, GENESIS_VALIDATORS_MAX));
  const stake = r.uvarintBig(`${f}.stake`, MONEY_BITS);
  const status = r.tag(`${f}.executed`, 3);
  let risk: MarketRisk | null = null;
  if (kind === 'setMarketRisk') {
    const live = s.markets[market];
    const pending = status === 0 && live !== undefined && !live.retired;
    // An executed one is held to the rules that do not depend on its market.
    const base = pending ? live.params : s.markets[0]!.baseParams;
    risk = readMarketRisk(r, status === 0 ? base : { ...base, liquidationFeePpm: 0 }, `${f}.risk`);
    if (pending && live.instrument.kind === 'option') {
      throw new DecodeError(`${f}.risk`, 'an option takes no risk parameters');
    }
  }
  const feeTiers = kind === 'setFeeTiers' ? readCheckedFeeTiers(r, `${f}.tiers`) : null;
  return {
    proposalId,
    kind,
    market,
    risk,
    feeTiers,
    approvers,
    stake,
    executed: status >= 1,
    closed: status === 2,
    leaf: null,
    dirty: false,
  };
}

export function readSnapshot(r: Reader, options: ExchangeOptions = {}): Exchange {
  const f = 'snapshot';
  const format = r.u8(`${f}.format`);
  if (format !== SNAPSHOT_FORMAT && format !== SNAPSHOT_FORMAT_PREVIOUS) {
    throw new SnapshotFormatError(format);
  }
  const formatPrevious = format === SNAPSHOT_FORMAT_PREVIOUS;
  const genesis = genesisCodec.read(r, `${f}.genesis`);
  const s = new ExchangeState(genesis, bytesKey);
  s.height = r.uvarint(`${f}.height`);
  s.timeMs = r.uvarint(`${f}.timeMs`);
  s.insuranceQuote = r.ivarintBig(`${f}.insuranceQuote`, MONEY_BITS);
  s.feePoolQuote = r.uvarintBig(`${f}.feePoolQuote`, MONEY_BITS);
  s.depositedQuote = r.uvarintBig(`${f}.depositedQuote`, MONEY_BITS);
  s.withdrawnQuote = r.uvarintBig(`${f}.withdrawnQuote`, MONEY_BITS);
  s.nextOrderId = r.uvarint(`${f}.nextOrderId`);
  if (s.nextOrderId < 1) throw new DecodeError(`${f}.nextOrderId`, 'order ids start at 1');
  // Every order id so far is below nextOrderId: the bound of every book's ids.
  const lastOrderId = s.nextOrderId - 1;
  const deficitCount = r.uvarint(`${f}.deficits`, ACCOUNTS_MAX);
  const deficits: number[] = [];
  for (let i = 0; i < deficitCount; i++) {
    const index = r.uvarint(`${f}.deficits[${i}]`);
    if (i > 0 && index <= deficits[i - 1]!) {
      throw new DecodeError(`${f}.deficits[${i}]`, 'account indices must ascend');
    }
    deficits.push(index);
  }
  if (!formatPrevious && r.bool(`${f}.feeTiersChanged`)) {
    s.setFeeTiers(readCheckedFeeTiers(r, `${f}.feeTiers`));
    // Written only where it differs: genesis's again would be a second encoding.
    if (!s.feeTiersChanged) throw new DecodeError(`${f}.feeTiers`, 'the genesis schedule');
  }
  for (const v of s.validators) readValidatorInto(r, v, `${f}.validators`);
  s.totalStake = activeStake(s);
  // Every book's orders, each of which has one record (read after the books).
  let restingOrders = 0;
  for (const m of s.markets) {
    readMarketState(r, m, `${f}.markets[${m.index}]`, s.timeMs);
    m.book = readBookOrders(r, `${f}.markets[${m.index}].book`, lastOrderId);
    restingOrders += m.book.orderCount;
    if (m.auction !== null) {
      const g = `${f}.markets[${m.index}].auction`;
      m.auction.bids = readBookOrders(r, `${g}.bids`, lastOrderId);
      m.auction.asks = readBookOrders(r, `${g}.asks`, lastOrderId);
      restingOrders += m.auction.bids.orderCount + m.auction.asks.orderCount;
    }
  }
  if (s.listing !== null) {
    const slots = r.uvarint(`${f}.listedSlots`, LISTED_MARKETS_MAX * 2);
    for (let j = 0; j < slots; j++) {
      const index = s.genesisMarketCount + j;
      const g = `${f}.markets[${index}]`;
      if (!r.bool(`${g}.live`)) {
        // The writer stops at the last live slot.
        if (j === slots - 1) throw new DecodeError(`${g}.live`, 'a free slot last');
        // A free slot: nothing of it is state; it holds the place of its index.
        const free = new MarketState(index, s.markets[0]!.params);
        free.retired = true;
        free.dirty = false;
        s.markets.push(free);
        continue;
      }
      const m = readListedSlot(r, s, index, g);
      s.markets.push(m);
      readMarketState(r, m, g, s.timeMs);
      m.book = readBookOrders(r, `${g}.book`, lastOrderId);
      restingOrders += m.book.orderCount;
    }
  }
  const listedAt =
    s.listing === null
      ? null
      : (i: number): MarketState | undefined => {
          const m = s.markets[i];
          return m !== undefined && m.listed && !m.retired ? m : undefined;
        };
  const principalCount = r.uvarint(`${f}.principals`, ACCOUNTS_MAX);
  let previous = '';
  for (let i = 0; i < principalCount; i++) {
    const p = readPrincipalInto(
      r,
      `${f}.principals[${i}]`,
      (address) => new Principal(bytesKey(address), address),
    );
    if (p.key <= previous) throw new DecodeError(`${f}.principals[${i}]`, 'addresses must ascend');
    previous = p.key;
    s.principals.set(p.key, p);
  }
  const accountCount = r.uvarint(`${f}.accounts`, ACCOUNTS_MAX);
  for (let i = 0; i < accountCount; i++) {
    const g = `${f}.accounts[${i}]`;
    const principal = s.principals.get(bytesKey(r.fixed(`${g}.address`, 20)));
    if (principal === undefined) throw new DecodeError(`${g}.address`, 'unknown address');
    const sub = r.u8(`${g}.subaccount`);
    if (principal.subaccounts.has(sub)) throw new DecodeError(`${g}.subaccount`, 'duplicate');
    const a = new Account(i, principal, sub, s.genesisMarketCount);
    readAccountInto(r, g, a, listedAt);
    principal.addSubaccount(sub, a);
    s.accounts.push(a);
    for (const p of [...a.positions, ...a.listed]) {
      if (p.sizeLots !== 0) {
        a.positionCount++;
        s.markets[p.market]!.holders.add(a);
      }
    }
  }
  for (const i of deficits) {
    const a = s.accounts[i];
    if (a === undefined) throw new DecodeError(`${f}.deficits`, 'unknown account');
    s.deficits.add(a);
  }
  // BOOK_ORDERS_MAX bounds one book, not the records of every book together:
  // one record per resting order, whatever the books hold between them.
  const orderCount = r.uvarint(`${f}.orders`);
  if (orderCount !== restingOrders) {
    throw new DecodeError(
      `${f}.orders`,
      `${orderCount} records for ${restingOrders} resting orders`,
    );
  }
  let lastId = 0;
  for (let i = 0; i < orderCount; i++) {
    const g = `${f}.orders[${i}]`;
    const orderId = r.uvarint(`${g}.orderId`);
    if (orderId <= lastId) throw new DecodeError(`${g}.orderId`, 'order ids must ascend');
    lastId = orderId;
    const market = r.uvarint(`${g}.market`, s.markets.length - 1);
    if (s.markets[market]!.retired) throw new DecodeError(`${g}.market`, 'a free slot');
    const account = s.accounts[r.uvarint(`${g}.account`)];
    if (account === undefined) throw new DecodeError(`${g}.account`, 'unknown account');
    const clientOrderId = r.string(`${g}.clientOrderId`, STRING_BYTES_MAX);
    const seq = r.uvarint(`${g}.seq`);
    // At least its open size: the invariants below check it against the books.
    const placedLots = r.uvarint(`${g}.placedLots`, SIZE_LOTS_MAX);
    s.orders.set(orderId, {
      orderId,
      market,
      account,
      clientOrderId,
      seq,
      placedLots,
      leaf: null,
    });
    if (clientOrderId !== '') account.clientOrderIds.set(clientOrderId, orderId);
  }
  const depositCount = r.uvarint(`${f}.deposits`, PENDING_DEPOSITS_MAX);
  let previousKey = '';
  for (let i = 0; i < depositCount; i++) {
    const d = readDeposit(r, `${f}.deposits[${i}]`);
    checkVoters(d.attesters, s.validators.length, `${f}.deposits[${i}].attesters`);
    if (d.key <= previousKey) throw new DecodeError(`${f}.deposits[${i}]`, 'deposits must ascend');
    previousKey = d.key;
    s.deposits.set(d.key, d);
    indexDeposit(s, d);
  }
  // Spent deposit ids accumulate for good (execution does not bound them), so
  // the count is bounded only by what a snapshot can hold: each takes exactly
  // CREDITED_RECORD_BYTES, checked below, so the count allocates nothing ahead.
  const creditedCount = r.uvarint(
    `${f}.credited`,
    divFloor(SNAPSHOT_BYTES_MAX, CREDITED_RECORD_BYTES),
  );
  let previousId = '';
  for (let i = 0; i < creditedCount; i++) {
    const id = r.string(`${f}.credited[${i}]`, 64);
    if (!/^[0-9a-f]{64}$/.test(id) || id <= previousId) {
      throw new DecodeError(`${f}.credited[${i}]`, 'ascending lowercase hex deposit ids');
    }
    previousId = id;
    s.creditedDeposits.add(id);
  }
  const proposalCount = r.uvarint(`${f}.proposals`, PROPOSALS_MAX);
  let previousProposal = -1;
  for (let i = 0; i < proposalCount; i++) {
    const kinds = formatPrevious ? PROPOSAL_KINDS_PREVIOUS : GOV_PROPOSAL_KINDS.length;
    const p = readProposal(s, r, `${f}.proposals[${i}]`, kinds);
    checkVoters(p.approvers, s.validators.length, `${f}.proposals[${i}].approvers`);
    if (p.proposalId <= previousProposal) {
      throw new DecodeError(`${f}.proposals[${i}]`, 'proposal ids must ascend');
    }
    previousProposal = p.proposalId;
    checkProposalMarket(s, p, `${f}.proposals[${i}].market`);
    s.proposals.set(p.proposalId, p);
  }
  countPending(s);
  if (s.oracleParams !== null) {
    const params = s.oracleParams;
    s.oracle = oracleStateCodec(params).read(r, `${f}.oracle`);
    for (const m of s.markets) {
      const feed = s.oracle.prices.get(m.params.underlying) ?? NEVER;
      m.oracleStale = isStale(feed, s.timeMs, params);
    }
  }
  if (s.listing !== null) readTwaps(r, f, s);
  // Derived (state.ts): the marks read are the ones the restore keeps (checked below).
  for (const a of s.accounts) setUnderwater(s, a);
  try {
    checkInvariants(s);
  } catch (e) {
    if (e instanceof AssertionError) throw new DecodeError(f, e.message);
    throw e;
  }
  // Options marked every block get their marks again on restore (listing.ts
  // markOptions): the snapshot's must be those, or two encodings would
  // restore one state.
  const written = s.markets.map((m) => [m.indexTicks, m.markTicks]);
  const ex = new Exchange(genesis, options, s);
  for (const m of s.markets) {
    const [indexTicks, markTicks] = written[m.index]!;
    if (m.indexTicks !== indexTicks || m.markTicks !== markTicks) {
      throw new DecodeError(`${f}.markets[${m.index}].markTicks`, 'not the mark of its smile');
    }
  }
  return ex;
}

export function encodeSnapshot(ex: Exchange, format = SNAPSHOT_FORMAT): Uint8Array {
  const w = new WireWriter(1 << 16);
  writeSnapshot(w, ex, format);
  return w.finish();
}

export function decodeSnapshot(bytes: Uint8Array, options: ExchangeOptions = {}): Exchange {
  const r = new WireReader(bytes);
  const ex = readSnapshot(r, options);
  r.done('snapshot');
  // The reader's checks make the encoding canonical; this makes it so by
  // construction (O(state), as the decode): a node keeps and serves the bytes
  // it took, and peers group offers by their hash.
  // A format 11 snapshot restores a state with genesis's fee schedule: its
  // format 11 encoding is the one to compare with.
  const again = encodeSnapshot(ex, bytes[0]);
  if (again.length !== bytes.length || again.some((x, i) => x !== bytes[i])) {
    throw new DecodeError('snapshot', 'not the canonical encoding of the state it restores');
  }
  return ex;
}
