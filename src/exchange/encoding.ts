// Canonical encodings of every state entity. The same bytes serve the state
// digest (a leaf is sha256(tag || key || value)) and the snapshot, so the
// digest covers what a snapshot restores (docs/exchange.md, "State hash",
// Coverage; snapshot_cover.test.ts checks it byte by byte).

import type { Reader, Writer } from '../codec/wire.ts';
import { DecodeError, IVARINT_MAX, IVARINT_MIN } from '../codec/wire.ts';
import { fromHex } from '../lib/bytes.ts';
import {
  AGENTS_PER_ADDRESS_MAX,
  LISTED_MARKETS_MAX,
  MATH_TIME_YEARS_WAD_MAX,
  MATH_TIME_YEARS_WAD_MIN,
  MATH_VOL_WAD_MAX,
  MATH_VOL_WAD_MIN,
  STRING_BYTES_MAX,
} from '../lib/limits.ts';
import type { RestingOrder } from './book/index.ts';
import { STP_MODES } from './book/index.ts';
import { bytesKey } from './keys.ts';
import { oracleStateCodec } from './oracle/aggregate.ts';
import { readNonces, writeNonces } from './tx/nonces.ts';
import { optionMarkAtVol } from './options/mark.ts';
import { priced } from './options/priced.ts';
import type { Instrument } from './instruments/names.ts';
import { twapCodec } from './instruments/settlement.ts';
import type {
  Account,
  Deposit,
  ExchangeState,
  MarketState,
  OrderMeta,
  Principal,
  Proposal,
  ValidatorState,
} from './state.ts';
import { Position } from './state.ts';
import type { FeeTier, MarketParams, MarketRisk } from './genesis.ts';
import { GenesisError, checkFeeTiers, checkRisk, riskOf, withRisk } from './genesis.ts';
import { readFeeTiers, readRiskValues, writeFeeTiers, writeRiskValues } from './tx/codec.ts';
import { GOV_PROPOSAL_KINDS } from './tx/types.ts';

export const LEAF = {
  globals: 1,
  market: 2,
  order: 3,
  principal: 4,
  deposit: 6,
  credited: 7,
  proposal: 8,
  validators: 9,
} as const;

/** Money fields are bounded on decode: far beyond any real balance. */
export const MONEY_BITS = 160;
/** Bound on a stored option mark's time to expiry and volatility, at SCALE (far above any real one). */
const WAD_BITS = 128;
const ADDRESS_BYTES = 20;
const KEY_BYTES = 32;

export function writeGlobals(w: Writer, s: ExchangeState, genesisHash: Uint8Array): void {
  w.fixed(genesisHash, 32);
  w.uvarint(s.height).uvarint(s.timeMs);
  w.ivarintBig(s.insuranceQuote).uvarintBig(s.feePoolQuote);
  w.uvarintBig(s.depositedQuote).uvarintBig(s.withdrawnQuote);
  w.uvarint(s.nextOrderId).uvarint(s.accounts.length);
  const deficits = [...s.deficits].map((a) => a.index).sort((a, b) => a - b);
  w.uvarint(deficits.length);
  for (const i of deficits) w.uvarint(i);
  if (s.oracle !== null) oracleStateCodec(s.oracleParams!).write(w, s.oracle);
  if (s.listing !== null) writeTwaps(w, s);
  // A fee schedule set by governance (governance.ts, setFeeTiers), last and
  // only where it differs from genesis's: the leaf of a chain that never
  // changed it is as before.
  if (s.feeTiersChanged) {
    w.bool(true);
    writeFeeTiers(w, s.feeTiers);
  }
}

/**
 * A fee schedule as a snapshot or a proposal's leaf carries it, held to the
 * rules genesis applies to its own (genesis.ts checkFeeTiers), as govPropose
 * held it (tx/codec.ts bounds each volume to an amount).
 */
export function readCheckedFeeTiers(r: Reader, f: string): FeeTier[] {
  const tiers = readFeeTiers(r, f);
  try {
    checkFeeTiers(tiers, f);
  } catch (e) {
    if (e instanceof GenesisError) throw new DecodeError(e.field, e.reason);
    throw e;
  }
  return tiers;
}

/** The settlement TWAPs, by key. */
export function writeTwaps(w: Writer, s: ExchangeState): void {
  const keys = [...s.twaps.keys()].sort();
  w.uvarint(keys.length);
  for (const key of keys) {
    w.string(key, 64);
    twapCodec.write(w, s.twaps.get(key)!);
  }
}

export function readTwaps(r: Reader, f: string, s: ExchangeState): void {
  const n = r.uvarint(`${f}.twaps`, LISTED_MARKETS_MAX);
  let previous = '';
  for (let i = 0; i < n; i++) {
    const key = r.string(`${f}.twaps[${i}].key`, 64);
    if (key <= previous) throw new DecodeError(`${f}.twaps[${i}].key`, 'keys must ascend');
    previous = key;
    const acc = twapCodec.read(r, `${f}.twaps[${i}]`);
    if (!key.endsWith(`:${acc.expiryMs}`)) {
      throw new DecodeError(`${f}.twaps[${i}].key`, 'not the accumulator expiry');
    }
    s.twaps.set(key, acc);
  }
}

export function writeValidators(w: Writer, s: ExchangeState): void {
  w.uvarint(s.validators.length);
  for (const v of s.validators) writeValidator(w, v);
}

/** A validator not jailed has its genesis stake: only jailing burns, so only then is the stake written. */
export function writeValidator(w: Writer, v: ValidatorState): void {
  w.bool(v.jailed);
  if (v.jailed) w.uvarint(v.jailedHeight).uvarintBig(v.stake);
}

export function readValidatorInto(r: Reader, v: ValidatorState, f: string): void {
  v.jailed = r.bool(`${f}.jailed`);
  if (!v.jailed) return;
  v.jailedHeight = r.uvarint(`${f}.jailedHeight`);
  const stake = r.uvarintBig(`${f}.stake`, MONEY_BITS);
  if (stake > v.genesisStake) throw new DecodeError(`${f}.stake`, 'above its genesis stake');
  v.stake = stake;
}

/** Stake of the validators not jailed (ExchangeState.totalStake, recomputed on restore). */
export function activeStake(s: ExchangeState): bigint {
  let total = 0n;
  for (const v of s.validators) if (!v.jailed) total += v.stake;
  return total;
}

/**
 * `timeMs`: the state's block time (an option past expiry carries when its
 * grace counts from; one before it, a kept start earlier than its oracle
 * state tells, behind a flag as the risk parameters are). `riskFlag`: the
 * snapshot's encoding (format 11 on), which says whether a kept grace start
 * and risk parameters follow; the leaf carries them (behind a 1) only where
 * an option keeps such a start, or governance changed them from those the
 * market was listed with, so the leaves of other markets are as before.
 */
export function writeMarketState(
  w: Writer,
  m: MarketState,
  timeMs: number,
  riskFlag = false,
): void {
  w.uvarint(m.index).uvarint(m.indexTicks).uvarint(m.markTicks);
  w.ivarint(m.premiumSumPpm).uvarint(m.premiumCount).ivarint(m.lastFundingRatePpm);
  w.uvarint(m.longLots).uvarint(m.shortLots).bool(m.halted).bool(m.liquidationBacklog);
  w.uvarint(m.seq).uvarint(m.tradeCount);
  // A listed market's parameters are its genesis template under its own name.
  if (m.listed) w.string(m.params.instrument, STRING_BYTES_MAX);
  // Only markets with triggers carry a monitor, so the others encode as before.
  if (m.auction !== null) m.auction.codec.write(w, m.auction.monitor);
  // An option marked once per interval: what its mark was computed from.
  if (m.marksKept) {
    w.uvarintBig(m.forwardQuote).bool(m.optionMark !== null);
    if (m.optionMark !== null)
      w.uvarintBig(m.optionMark.timeYearsWad).uvarintBig(m.optionMark.ivWad);
  }
  // An option past expiry, waiting for its settlement price: since when its
  // grace counts (listing.ts markOptions), which its smile, dropped at
  // expiry, no longer tells.
  if (expiredOption(m, timeMs)) {
    w.bool(m.unshockedSinceMs !== null);
    if (m.unshockedSinceMs !== null) w.uvarint(m.unshockedSinceMs);
  }
  // An option before expiry whose grace counts from earlier than its oracle
  // state tells (listing.ts markOptions): its kept start; in the leaf
  // (behind a 1) only where it has one.
  if (unexpiredOption(m, timeMs) && (riskFlag || m.graceEarlyMs !== null)) {
    w.bool(m.graceEarlyMs !== null);
    if (m.graceEarlyMs !== null) w.uvarint(m.graceEarlyMs);
  }
  // Risk parameters set by governance (governance.ts, setMarketRisk).
  if (riskFlag || m.riskChanged) w.bool(m.riskChanged);
  if (m.riskChanged) writeRiskValues(w, riskOf(m.params));
}

function expiredOption(m: MarketState, timeMs: number): boolean {
  return m.listed && m.instrument.kind === 'option' && m.expiryMs <= timeMs;
}

function unexpiredOption(m: MarketState, timeMs: number): boolean {
  return m.listed && m.instrument.kind === 'option' && m.expiryMs > timeMs;
}

export function readMarketState(r: Reader, m: MarketState, f: string, timeMs: number): void {
  const index = r.uvarint(`${f}.index`);
  if (index !== m.index) throw new DecodeError(`${f}.index`, 'markets out of order');
  m.indexTicks = r.uvarint(`${f}.indexTicks`);
  m.setMark(r.uvarint(`${f}.markTicks`));
  m.premiumSumPpm = r.ivarint(`${f}.premiumSumPpm`);
  m.premiumCount = r.uvarint(`${f}.premiumCount`);
  m.lastFundingRatePpm = r.ivarint(`${f}.lastFundingRatePpm`);
  m.longLots = r.uvarint(`${f}.longLots`);
  m.shortLots = r.uvarint(`${f}.shortLots`);
  m.halted = r.bool(`${f}.halted`);
  m.liquidationBacklog = r.bool(`${f}.liquidationBacklog`);
  m.seq = r.uvarint(`${f}.seq`);
  m.tradeCount = r.uvarint(`${f}.tradeCount`);
  if (m.listed && r.string(`${f}.instrument`, STRING_BYTES_MAX) !== m.params.instrument) {
    throw new DecodeError(`${f}.instrument`, 'not the market listed in this slot');
  }
  if (m.auction !== null) m.auction.monitor = m.auction.codec.read(r, `${f}.monitor`);
  if (m.marksKept) {
    m.forwardQuote = r.uvarintBig(`${f}.forwardQuote`, MONEY_BITS);
    m.optionMark = null;
    if (r.bool(`${f}.hasOptionMark`)) {
      const timeYearsWad = r.uvarintBig(`${f}.optionMark.timeYearsWad`, WAD_BITS);
      const ivWad = r.uvarintBig(`${f}.optionMark.ivWad`, WAD_BITS);
      const option = m.instrument as Extract<Instrument, { kind: 'option' }>;
      // optionMark only ever keeps values in the math module's ranges (it clamps
      // them), and a forward it could price against the strike: anything else
      // (the pricing math's MathError included) is not a state it left.
      const mark =
        m.forwardQuote <= 0n ||
        timeYearsWad < MATH_TIME_YEARS_WAD_MIN ||
        timeYearsWad > MATH_TIME_YEARS_WAD_MAX ||
        ivWad < MATH_VOL_WAD_MIN ||
        ivWad > MATH_VOL_WAD_MAX
          ? null
          : priced(() =>
              optionMarkAtVol(
                {
                  forwardQuote: m.forwardQuote,
                  strikeQuote: option.strikeQuote,
                  isCall: option.isCall,
                  rateWad: 0n,
                },
                timeYearsWad,
                ivWad,
              ),
            );
      if (mark === null) {
        throw new DecodeError(`${f}.optionMark`, 'forward, time or volatility out of range');
      }
      m.optionMark = mark;
    }
  }
  if (expiredOption(m, timeMs)) {
    m.unshockedSinceMs = null;
    if (r.bool(`${f}.hasUnshockedSince`)) {
      const since = r.uvarint(`${f}.unshockedSinceMs`);
      // The earlier of the expiry and when the smile went stale: never later.
      if (since > m.expiryMs) throw new DecodeError(`${f}.unshockedSinceMs`, 'after the expiry');
      m.unshockedSinceMs = since;
    }
  }
  m.graceEarlyMs = null;
  m.graceStartMs = null;
  if (unexpiredOption(m, timeMs) && r.bool(`${f}.hasGraceEarly`)) {
    // Checked by the restore's markOptions (snapshot.ts decodeSnapshot writes
    // it again): one not earlier than the oracle state's, or on an option
    // with both fresh, is not a state it left.
    const early = r.uvarint(`${f}.graceEarlyMs`);
    m.graceEarlyMs = early;
    m.graceStartMs = early;
  }
  if (r.bool(`${f}.riskChanged`)) {
    // An option is margined by scenario: governance never sets its values
    // (govPropose refuses it), and its leaf holds a kept grace start where a
    // perpetual's or future's holds them.
    if (m.instrument.kind === 'option') {
      throw new DecodeError(`${f}.riskChanged`, 'an option takes no risk parameters');
    }
    m.setRisk(readMarketRisk(r, m.baseParams, `${f}.risk`));
    // Written only where they differ: the same values again would be a second encoding.
    if (!m.riskChanged) throw new DecodeError(`${f}.risk`, 'the values it was listed with');
  }
}

/**
 * Risk parameters for a market listed with `base`, read as the transaction
 * carries them and held to the rules genesis applies (genesis.ts checkRisk).
 * A market's may only be what governance could set; a proposal's, pending
 * or not, what govPropose accepted.
 */
export function readMarketRisk(r: Reader, base: MarketParams, f: string): MarketRisk {
  const risk = readRiskValues(r, f);
  try {
    checkRisk(withRisk(base, risk), f);
  } catch (e) {
    if (e instanceof GenesisError) throw new DecodeError(e.field, e.reason);
    throw e;
  }
  return risk;
}

/**
 * An order's leaf value: the book's view of it plus the exchange's record,
 * then, for an order among a volatility auction's orders (call_state.ts)
 * rather than in the market's book, a 1. Which book holds an order decides
 * its place after the uncross, so it is state; orders in the market's book
 * keep the leaf they had before the marker existed.
 */
export function writeOrderLeaf(
  w: Writer,
  o: RestingOrder,
  meta: OrderMeta,
  inAuction: boolean,
): void {
  w.uvarint(meta.market)
    .uvarint(o.orderId)
    .uvarint(o.owner)
    .u8(o.side === 'buy' ? 0 : 1);
  w.uvarint(o.priceTicks).uvarint(o.sizeLots).uvarint(o.goodTilMs);
  w.u8(STP_MODES.indexOf(o.stp)).bool(o.postOnly).uvarint(meta.seq).uvarint(meta.placedLots);
  w.string(meta.clientOrderId, STRING_BYTES_MAX);
  if (inAuction) w.u8(1);
}

export function writeOrderMeta(w: Writer, meta: OrderMeta): void {
  w.uvarint(meta.orderId).uvarint(meta.market).uvarint(meta.account.index);
  w.string(meta.clientOrderId, STRING_BYTES_MAX).uvarint(meta.seq).uvarint(meta.placedLots);
}

/** Address, its own key's nonce window, its agents' window, then its agents. */
export function writePrincipal(w: Writer, p: Principal): void {
  w.fixed(p.address, ADDRESS_BYTES);
  writeNonces(w, p.nonces);
  // Count 0 (writeNonces of an empty window) without a call, for the many addresses without agents.
  const agentNonces = p.agentNonces;
  if (agentNonces === null) w.uvarint(0);
  else writeNonces(w, agentNonces);
  const agents = p.agents;
  if (agents === null || agents.size === 0) {
    w.uvarint(0);
    return;
  }
  const keys = [...agents.keys()].sort();
  w.uvarint(keys.length);
  for (const key of keys) {
    const agent = agents.get(key)!;
    w.fixed(agent.publicKey, KEY_BYTES)
      .uvarint(agent.expiresAtMs)
      .string(agent.name, STRING_BYTES_MAX);
  }
}

/**
 * An address's leaf value: the address record and every subaccount of it in
 * ascending subaccount (one leaf per address, so a transaction that touches
 * its nonces and its account hashes once). At most 256 subaccounts.
 */
export function writePrincipalLeaf(w: Writer, p: Principal, withListed: boolean): void {
  writePrincipal(w, p);
  writeSubaccounts(w, p, withListed);
}

/** The second part of an address's leaf value: its subaccounts, ascending. */
export function writeSubaccounts(w: Writer, p: Principal, withListed: boolean): void {
  const count = p.subaccountCount;
  if (count === 0) {
    w.uvarint(0);
    return;
  }
  if (count === 1 && p.account0 !== null) {
    // The common case, without opening the map or sorting a key list.
    w.uvarint(1).uvarint(p.account0.index);
    writeAccount(w, p.account0, withListed);
    return;
  }
  const subs = [...p.subaccounts.keys()].sort((a, b) => a - b);
  w.uvarint(subs.length);
  for (const sub of subs) {
    const a = p.subaccounts.get(sub)!;
    w.uvarint(a.index);
    writeAccount(w, a, withListed);
  }
}

export function readPrincipalInto(
  r: Reader,
  f: string,
  make: (address: Uint8Array) => Principal,
): Principal {
  const address = r.fixed(`${f}.address`, ADDRESS_BYTES).slice();
  const p = make(address);
  readNonces(r, `${f}.nonces`, p.nonces);
  const agentNonces: number[] = [];
  readNonces(r, `${f}.agentNonces`, agentNonces);
  // Empty is null, as before an agent's first transaction: one state, one encoding.
  if (agentNonces.length > 0) p.agentNonces = agentNonces;
  const n = r.uvarint(`${f}.agents`, AGENTS_PER_ADDRESS_MAX);
  let previous = '';
  for (let i = 0; i < n; i++) {
    const publicKey = r.fixed(`${f}.agents[${i}].publicKey`, KEY_BYTES).slice();
    const key = bytesKey(publicKey);
    if (key <= previous) throw new DecodeError(`${f}.agents[${i}]`, 'agents must ascend');
    previous = key;
    const expiresAtMs = r.uvarint(`${f}.agents[${i}].expiresAtMs`);
    const name = r.string(`${f}.agents[${i}].name`, STRING_BYTES_MAX);
    (p.agents ??= new Map()).set(key, { publicKey, expiresAtMs, name });
  }
  return p;
}

// Money is bigint, but nearly every amount fits a double exactly: writing it
// through the number varint gives the same bytes without the bigint shifts and
// temporaries of uvarintBig/ivarintBig (the leaf encoding is the hot part of
// the state digest).
const UVARINT_FAST_MAX = BigInt(Number.MAX_SAFE_INTEGER);
const IVARINT_FAST_MAX = BigInt(IVARINT_MAX);
const IVARINT_FAST_MIN = BigInt(IVARINT_MIN);

/** w.uvarintBig(x), byte for byte. */
function writeUBig(w: Writer, x: bigint): void {
  if (x >= 0n && x <= UVARINT_FAST_MAX) w.uvarint(Number(x));
  else w.uvarintBig(x);
}

/**
 * w.ivarint(x), byte for byte, without the range assertion that formats its
 * message on every call.
 */
function writeInt(w: Writer, x: number): void {
  if (!(Number.isInteger(x) && x >= IVARINT_MIN && x <= IVARINT_MAX)) w.ivarint(x);
  else w.uvarint(x >= 0 ? x * 2 : -x * 2 - 1);
}

/** w.ivarintBig(x), byte for byte: the zigzag of x is the same in either domain. */
function writeIBig(w: Writer, x: bigint): void {
  if (x >= IVARINT_FAST_MIN && x <= IVARINT_FAST_MAX) writeInt(w, Number(x));
  else w.ivarintBig(x);
}

// The state holds its amounts as numbers while they are safe integers (NaN
// beyond: state.ts, moneyNum): those are written from the number, the same
// bytes as writeIBig/writeUBig of their bigint, without building it.

/** Whether writeInt writes the amount `n` (a number, or NaN beyond 2^53 − 1) as writeIBig would. */
function intFits(n: number): boolean {
  return n >= IVARINT_MIN && n <= IVARINT_MAX;
}

/** Whether w.uvarint writes the amount `n` (NaN beyond 2^53 − 1) as writeUBig would. */
function uintFits(n: number): boolean {
  return n >= 0 && n <= Number.MAX_SAFE_INTEGER;
}

function writePosition(w: Writer, p: Position): void {
  writeInt(w, p.sizeLots);
  const basis = p.costBasisNum;
  if (intFits(basis)) writeInt(w, basis);
  else writeIBig(w, p.costBasisQuote);
  const pnl = p.realizedPnlNum;
  if (intFits(pnl)) writeInt(w, pnl);
  else writeIBig(w, p.realizedPnlQuote);
  const funding = p.fundingNum;
  if (intFits(funding)) writeInt(w, funding);
  else writeIBig(w, p.fundingQuote);
}

function readPosition(r: Reader, g: string, p: Position): void {
  p.sizeLots = r.ivarint(`${g}.sizeLots`);
  p.costBasisQuote = r.ivarintBig(`${g}.costBasisQuote`, MONEY_BITS);
  p.realizedPnlQuote = r.ivarintBig(`${g}.realizedPnlQuote`, MONEY_BITS);
  p.fundingQuote = r.ivarintBig(`${g}.fundingQuote`, MONEY_BITS);
}

/**
 * An account: its genesis markets' positions in market order, then (with a
 * genesis listing) its listed records, each with its market index.
 */
export function writeAccount(w: Writer, a: Account, withListed: boolean): void {
  w.fixed(a.address, ADDRESS_BYTES).u8(a.subaccount);
  const cash = a.cashNum;
  if (intFits(cash)) writeInt(w, cash);
  else writeIBig(w, a.cashQuote);
  const volume = a.volumeNum;
  if (uintFits(volume)) w.uvarint(volume);
  else writeUBig(w, a.volumeQuote);
  const faucet = a.faucetNum;
  if (uintFits(faucet)) w.uvarint(faucet);
  else writeUBig(w, a.faucetQuote);
  const positions = a.positions;
  for (let i = 0; i < positions.length; i++) writePosition(w, positions[i]!);
  if (!withListed) return;
  w.uvarint(a.listed.length);
  for (const p of a.listed) {
    w.uvarint(p.market);
    writePosition(w, p);
  }
}

/** Reads an account; `listedAt` gives the live listed market of an index (or undefined). */
export function readAccountInto(
  r: Reader,
  f: string,
  a: Account,
  listedAt: ((index: number) => MarketState | undefined) | null,
): void {
  a.cashQuote = r.ivarintBig(`${f}.cashQuote`, MONEY_BITS);
  a.volumeQuote = r.uvarintBig(`${f}.volumeQuote`, MONEY_BITS);
  a.faucetQuote = r.uvarintBig(`${f}.faucetQuote`, MONEY_BITS);
  a.positions.forEach((p, i) => readPosition(r, `${f}.positions[${i}]`, p));
  if (listedAt === null) return;
  const n = r.uvarint(`${f}.listed`, LISTED_MARKETS_MAX);
  let previous = -1;
  for (let i = 0; i < n; i++) {
    const g = `${f}.listed[${i}]`;
    const index = r.uvarint(`${g}.market`);
    const market = listedAt(index);
    if (index <= previous || market === undefined) {
      throw new DecodeError(`${g}.market`, 'ascending indices of live listed markets');
    }
    previous = index;
    const p = new Position(index);
    readPosition(r, g, p);
    a.ownListed().push(p);
    market.records.add(a);
  }
}

export function writeDeposit(w: Writer, d: Deposit): void {
  w.fixed(d.depositId, 32).fixed(d.account, ADDRESS_BYTES).u8(d.subaccount);
  w.uvarintBig(d.amountQuote).uvarint(d.attesters.length);
  for (const v of d.attesters) w.uvarint(v);
  w.uvarintBig(d.stake);
}

export function writeProposal(w: Writer, p: Proposal): void {
  w.uvarint(p.proposalId).u8(GOV_PROPOSAL_KINDS.indexOf(p.kind)).ivarint(p.market);
  w.uvarint(p.approvers.length);
  for (const v of p.approvers) w.uvarint(v);
  // 0 pending, 1 executed, 2 closed by its market's settlement (0 and 1 as the boolean was).
  w.uvarintBig(p.stake).u8(p.closed ? 2 : p.executed ? 1 : 0);
  // A setMarketRisk proposal's values, last (the other kinds encode as before).
  if (p.risk !== null) writeRiskValues(w, p.risk);
  // A setFeeTiers proposal's schedule, last likewise.
  if (p.feeTiers !== null) writeFeeTiers(w, p.feeTiers);
}

export function creditedBytes(idHex: string): Uint8Array {
  return fromHex(idHex);
}
