// A reference model of order entry on the perpetual markets, written to be
// obviously right rather than fast: each book is an array sorted on demand by
// price then arrival, balances are bigints, and every rule of
// docs/exchange.md ("Orders", "Fees", "Margin", "Fills and equity",
// "In-block ordering") is spelled out once. The seeded driver at the bottom
// builds blocks of mixed transactions from what the model holds, and
// `checkRun` runs them through the exchange and the model side by side,
// comparing every result, fill, fee, event, resting order and balance after
// each block.
//
// The model covers what order entry does; it leaves out liquidation, funding
// payments and auctions, and does not guess there: runs stay inside one
// funding interval (else ModelDomainError), prices stay far within price
// monitoring's bounds where it is on, and margins are wide enough that
// accounts rarely reach maintenance; a run that takes one below it (or below
// zero) stops at that block, whose results are still compared.

import assert from 'node:assert/strict';
import { Prng } from '../../src/lib/prng.ts';
import { Exchange, decodeSnapshot, encodeSnapshot } from '../../src/exchange/index.ts';
import type {
  ActionResult,
  Block,
  BlockResult,
  ExchangeEvent,
  Fill,
  Genesis,
  MarketParams,
  TxResult,
} from '../../src/exchange/index.ts';
import type { Action, BatchableAction, PlaceOrder, SignedTx } from '../../src/exchange/tx/types.ts';
import { bytesKey } from '../../src/exchange/keys.ts';
import { USDC, VALIDATORS, genesis, key, replacer } from './helpers.ts';
import type { Key } from './helpers.ts';

type Side = 'buy' | 'sell';
type Stp = 'cancelResting' | 'cancelIncoming' | 'cancelBoth';

const PPM = 1_000_000n;
const STPS: readonly Stp[] = ['cancelResting', 'cancelIncoming', 'cancelBoth'];

/** The run left what the model covers (a liquidation, a funding payment…): a driver problem, not a finding. */
export class ModelDomainError extends Error {}

function ceilDiv(a: bigint, b: bigint): bigint {
  // b > 0 throughout; bigint division truncates toward zero.
  const q = a / b;
  return q * b === a || a < 0n ? q : q + 1n;
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return q * b === a || a >= 0n ? q : q - 1n;
}

function floorDivNum(a: number, b: number): number {
  return Math.floor(a / b);
}

// --- the genesis the model is written for --------------------------------------

/**
 * Both devnet perpetuals (with the devnet's price monitoring, or without),
 * with small caps so that
 * every limit is reachable: at most 4,000 lots an order, 4 open orders per
 * account and market, ETH orders of 5 lots at least, 10% initial margin
 * (+1% per $20,000 of notional) against 1% maintenance, and fee tiers from
 * $1,000 and $6,000 of volume, the last paying makers a rebate.
 */
export function modelGenesis(monitored = false): Genesis {
  const base = genesis();
  const markets = base.markets.map((m, i) => ({
    ...m,
    triggers: monitored ? m.triggers : [],
    minSizeLots: i === 0 ? 1 : 5,
    maxSizeLots: 4_000,
    openOrdersMax: 4,
    initialMarginPpm: 100_000,
    maintenanceMarginPpm: 10_000,
    imfStepQuote: 20_000n * USDC,
    imfStepPpm: 10_000,
  }));
  const { listing: _listing, ...rest } = base;
  return {
    ...rest,
    markets,
    feeTiers: [
      { volumeQuoteMin: 0n, makerFeePpm: 200, takerFeePpm: 500 },
      { volumeQuoteMin: 1_000n * USDC, makerFeePpm: 0, takerFeePpm: 400 },
      { volumeQuoteMin: 6_000n * USDC, makerFeePpm: -100, takerFeePpm: 300 },
    ],
  };
}

// --- model state -------------------------------------------------------------------

interface MOrder {
  id: number;
  account: MAccount;
  market: number;
  side: Side;
  price: number;
  size: number;
  goodTilMs: number;
  stp: Stp;
  postOnly: boolean;
  clientOrderId: string;
  placedLots: number;
  /** Arrival stamp: time priority within a price. */
  time: number;
}

interface MPosition {
  size: number;
  basis: bigint;
  pnl: bigint;
}

class MAccount {
  cash = 0n;
  volume = 0n;
  readonly positions: MPosition[];
  readonly clientOrderIds = new Map<string, MOrder>();
  constructor(
    readonly index: number,
    readonly trader: number,
    readonly sub: number,
    markets: number,
  ) {
    this.positions = Array.from({ length: markets }, () => ({ size: 0, basis: 0n, pnl: 0n }));
  }
}

interface MMarket {
  readonly index: number;
  readonly p: MarketParams;
  readonly k: bigint;
  indexTicks: number;
  markTicks: number;
  premiumSum: number;
  premiumCount: number;
  orders: MOrder[];
}

interface Taken {
  fills: { order: MOrder; lots: number }[];
  /** Resting orders removed without trading, in the order the taker met them. */
  removed: MOrder[];
  remaining: number;
  stpStopped: boolean;
  guardStopped: boolean;
}

interface TxCtx {
  trader: number;
  sub: number;
}

type Outcome = NonNullable<Extract<ActionResult, { ok: true }>['order']>;

/** The fill check of docs/exchange.md, "Fills and equity", for one taker's order. */
class Guard {
  private left = 0n;
  private readonly losses = new Map<MAccount, bigint>();
  constructor(
    private readonly model: Model,
    private readonly m: MMarket,
    private readonly buy: boolean,
    /** The taker's equity when its whole order at its limit could take it below zero; else null. */
    private readonly takerStart: bigint | null,
    private readonly takerPpm: bigint,
  ) {}

  begin(): void {
    this.losses.clear();
    if (this.takerStart !== null) this.left = this.takerStart;
  }

  admit(maker: MAccount, price: number, lots: number): number {
    let n = lots;
    if (this.takerStart !== null) {
      // The most lots that lower nothing or keep the taker at zero equity or above.
      while (n > 0 && !this.takerAdmits(price, n)) n--;
      if (n === 0) return 0;
    }
    if (!this.makerAdmits(maker, price, n)) return -1;
    if (this.takerStart !== null) this.left -= this.takerLoss(price, n);
    return n;
  }

  private takerLoss(price: number, n: number): bigint {
    const away = this.buy ? price - this.m.markTicks : this.m.markTicks - price;
    const lots = BigInt(n);
    return (
      BigInt(away) * lots * this.m.k + ceilDiv(BigInt(price) * lots * this.m.k * this.takerPpm, PPM)
    );
  }

  private takerAdmits(price: number, n: number): boolean {
    const loss = this.takerLoss(price, n);
    return loss <= 0n || this.left - loss >= 0n;
  }

  private makerAdmits(maker: MAccount, price: number, n: number): boolean {
    // The maker's fee at the highest maker fee of the tiers (its tier may move with the order's fills).
    let ppm = 0;
    for (const t of this.model.g.feeTiers) ppm = Math.max(ppm, t.makerFeePpm);
    const away = this.buy ? this.m.markTicks - price : price - this.m.markTicks;
    const lots = BigInt(n);
    const loss =
      BigInt(away) * lots * this.m.k + ceilDiv(BigInt(price) * lots * this.m.k * BigInt(ppm), PPM);
    if (loss <= 0n) return true;
    const spent = (this.losses.get(maker) ?? 0n) + loss;
    if (this.model.equity(maker) - spent < 0n) return false;
    this.losses.set(maker, spent);
    return true;
  }
}

export class Model {
  readonly markets: MMarket[];
  readonly accounts: MAccount[] = [];
  private readonly byOwner = new Map<string, MAccount>();
  /** Resting orders by id. */
  readonly orders = new Map<number, MOrder>();
  nextOrderId: number;
  feePool = 0n;
  withdrawn = 0n;
  deposited = 0n;
  timeMs: number;
  private clock = 0;
  private events: ExchangeEvent[] = [];

  constructor(
    readonly g: Genesis,
    nextOrderId: number,
    timeMs: number,
  ) {
    this.nextOrderId = nextOrderId;
    this.timeMs = timeMs;
    this.markets = g.markets.map((p, index) => ({
      index,
      p,
      k: p.tickSizeQuote / BigInt(p.lotsPerBase),
      indexTicks: 0,
      markTicks: 0,
      premiumSum: 0,
      premiumCount: 0,
      orders: [],
    }));
  }

  account(trader: number, sub: number): MAccount | undefined {
    return this.byOwner.get(`${trader}/${sub}`);
  }

  private ensureAccount(trader: number, sub: number): MAccount {
    let a = this.account(trader, sub);
    if (a === undefined) {
      a = new MAccount(this.accounts.length, trader, sub, this.markets.length);
      this.accounts.push(a);
      this.byOwner.set(`${trader}/${sub}`, a);
    }
    return a;
  }

  marketByName(name: string): MMarket | undefined {
    return this.markets.find((m) => m.p.instrument === name);
  }

  // --- books ---------------------------------------------------------------------

  /** One side of a book in priority order: best price first, then arrival. */
  queue(m: MMarket, side: Side): MOrder[] {
    return m.orders
      .filter((o) => o.side === side)
      .sort((a, b) =>
        a.price !== b.price
          ? side === 'buy'
            ? b.price - a.price
            : a.price - b.price
          : a.time - b.time,
      );
  }

  private best(m: MMarket, side: Side): number | undefined {
    return this.queue(m, side)[0]?.price;
  }

  private rest(o: MOrder): void {
    o.time = ++this.clock;
    this.markets[o.market]!.orders.push(o);
    this.orders.set(o.id, o);
    if (o.clientOrderId !== '') o.account.clientOrderIds.set(o.clientOrderId, o);
  }

  private unrest(o: MOrder): void {
    const m = this.markets[o.market]!;
    m.orders = m.orders.filter((x) => x !== o);
    this.orders.delete(o.id);
    if (o.clientOrderId !== '') o.account.clientOrderIds.delete(o.clientOrderId);
  }

  restingLots(a: MAccount, m: MMarket, side: Side): number {
    let lots = 0;
    for (const o of m.orders) if (o.account === a && o.side === side) lots += o.size;
    return lots;
  }

  openOrders(a: MAccount, m: MMarket): number {
    return m.orders.filter((o) => o.account === a).length;
  }

  // --- money -----------------------------------------------------------------------

  equity(a: MAccount): bigint {
    let e = a.cash;
    for (const m of this.markets)
      e += BigInt(a.positions[m.index]!.size) * BigInt(m.markTicks) * m.k;
    return e;
  }

  /** Initial margin with every resting order filled on its worse side, plus an incoming order's lots. */
  initial(a: MAccount, extra?: { m: MMarket; buy: number; sell: number }): bigint {
    let total = 0n;
    for (const m of this.markets) {
      const size = a.positions[m.index]!.size;
      let buy = this.restingLots(a, m, 'buy');
      let sell = this.restingLots(a, m, 'sell');
      if (extra !== undefined && extra.m === m) {
        buy += extra.buy;
        sell += extra.sell;
      }
      const exposure = Math.max(Math.abs(size + buy), Math.abs(size - sell));
      if (exposure === 0) continue;
      const notional = BigInt(exposure) * BigInt(m.markTicks) * m.k;
      let imf = BigInt(m.p.initialMarginPpm);
      if (m.p.imfStepPpm !== 0 && notional >= m.p.imfStepQuote) {
        imf += (notional / m.p.imfStepQuote) * BigInt(m.p.imfStepPpm);
        if (imf > PPM) imf = PPM;
      }
      total += ceilDiv(notional * imf, PPM);
    }
    return total;
  }

  maintenance(a: MAccount): bigint {
    let scaled = 0n;
    for (const m of this.markets) {
      const size = BigInt(Math.abs(a.positions[m.index]!.size));
      scaled += size * BigInt(m.markTicks) * m.k * BigInt(m.p.maintenanceMarginPpm);
    }
    return ceilDiv(scaled, PPM);
  }

  free(a: MAccount): bigint {
    return this.equity(a) - this.initial(a);
  }

  private tier(a: MAccount) {
    const tiers = this.g.feeTiers;
    for (let i = tiers.length - 1; i > 0; i--)
      if (a.volume >= tiers[i]!.volumeQuoteMin) return tiers[i]!;
    return tiers[0]!;
  }

  private takerPpmMax(): number {
    let ppm = 0;
    for (const t of this.g.feeTiers) ppm = Math.max(ppm, t.takerFeePpm);
    return ppm;
  }

  /** One side of a trade: cash pays the notional; cost basis and realized PnL follow. */
  private trade(a: MAccount, m: MMarket, delta: number, price: number): void {
    const pos = a.positions[m.index]!;
    const value = BigInt(delta) * BigInt(price) * m.k;
    a.cash -= value;
    const old = pos.size;
    if (old === 0 || old > 0 === delta > 0) {
      pos.basis += value;
    } else {
      const close = Math.min(Math.abs(delta), Math.abs(old));
      const closeSigned = delta > 0 ? close : -close;
      // Truncated toward zero, as bigint division is.
      const removed = (pos.basis * BigInt(close)) / BigInt(Math.abs(old));
      pos.pnl += -(BigInt(closeSigned) * BigInt(price) * m.k) - removed;
      pos.basis -= removed;
      const open = Math.abs(delta) - close;
      if (open > 0) pos.basis = BigInt(delta > 0 ? open : -open) * BigInt(price) * m.k;
    }
    pos.size = old + delta;
    if (pos.size === 0) pos.basis = 0n;
  }

  // --- matching ----------------------------------------------------------------------

  /**
   * What a taker would do against the opposite side, changing nothing: fills
   * at the makers' prices in priority order, self-trade prevention at the
   * taker's own orders, the fill check at every other.
   */
  private take(
    m: MMarket,
    side: Side,
    owner: MAccount,
    limit: number,
    size: number,
    stp: Stp,
    guard: Guard | null,
  ): Taken {
    const out: Taken = {
      fills: [],
      removed: [],
      remaining: size,
      stpStopped: false,
      guardStopped: false,
    };
    guard?.begin();
    const buy = side === 'buy';
    for (const o of this.queue(m, buy ? 'sell' : 'buy')) {
      if (out.remaining === 0) break;
      if (buy ? o.price > limit : o.price < limit) break;
      if (o.account === owner) {
        if (stp === 'cancelIncoming') {
          out.stpStopped = true;
          break;
        }
        out.removed.push(o);
        if (stp === 'cancelBoth') {
          out.stpStopped = true;
          break;
        }
        continue;
      }
      let lots = Math.min(out.remaining, o.size);
      const admitted = guard === null ? lots : guard.admit(o.account, o.price, lots);
      if (admitted < 0) {
        out.removed.push(o);
        continue;
      }
      if (admitted < lots) {
        out.guardStopped = true;
        lots = admitted;
      }
      if (lots > 0) out.fills.push({ order: o, lots });
      out.remaining -= lots;
      if (out.guardStopped) break;
    }
    return out;
  }

  /** Applies what take() found: removals first (makerCancelled for others' orders), then fills. */
  private apply(m: MMarket, side: Side, taker: MAccount, t: Taken): Fill[] {
    for (const o of t.removed) {
      this.unrest(o);
      if (o.account !== taker) {
        this.events.push({
          type: 'makerCancelled',
          market: m.p.instrument,
          orderId: o.id,
          account: o.account.index,
        });
      }
    }
    const takerTier = this.tier(taker);
    const fills: Fill[] = [];
    for (const { order, lots } of t.fills) {
      const maker = order.account;
      const signed = side === 'buy' ? lots : -lots;
      this.trade(taker, m, signed, order.price);
      this.trade(maker, m, -signed, order.price);
      const makerTier = this.tier(maker);
      const notional = BigInt(order.price) * BigInt(lots) * m.k;
      const takerFee = ceilDiv(notional * BigInt(takerTier.takerFeePpm), PPM);
      const mk = BigInt(makerTier.makerFeePpm);
      const makerFee = mk >= 0n ? ceilDiv(notional * mk, PPM) : -floorDiv(notional * -mk, PPM);
      taker.cash -= takerFee;
      maker.cash -= makerFee;
      taker.volume += notional;
      maker.volume += notional;
      this.feePool += takerFee + makerFee;
      order.size -= lots;
      if (order.size === 0) this.unrest(order);
      fills.push({
        makerOrderId: order.id,
        makerAccount: maker.index,
        priceTicks: order.price,
        sizeLots: lots,
        takerFeeQuote: takerFee,
        makerFeeQuote: makerFee,
      });
    }
    return fills;
  }

  /** The guard of a taker's order: the taker is checked only when its whole order could take it below zero. */
  private guardFor(m: MMarket, a: MAccount, buy: boolean, price: number, size: number): Guard {
    const away = buy ? price - m.markTicks : m.markTicks - price;
    const equity = this.equity(a);
    const adverse = away > 0 ? BigInt(away) * BigInt(size) * m.k : 0n;
    const fee = ceilDiv(BigInt(price) * BigInt(size) * m.k * BigInt(this.takerPpmMax()), PPM);
    const checked = equity - adverse - fee < 0n;
    const takerPpm = checked ? BigInt(this.tier(a).takerFeePpm) : 0n;
    return new Guard(this, m, buy, checked ? equity : null, takerPpm);
  }

  // --- actions ---------------------------------------------------------------------

  private placeOrder(ctx: TxCtx, a: PlaceOrder): ActionResult {
    const no = (code: string): ActionResult =>
      ({ ok: false, kind: 'placeOrder', code, message: '' }) as ActionResult;
    const m = this.marketByName(a.instrument);
    if (m === undefined) return no('UnknownInstrument');
    const p = m.p;
    const buy = a.side === 'buy';
    if (a.sizeLots <= 0 || a.sizeLots > p.maxSizeLots) return no('InvalidSize');
    let size = a.sizeLots;
    let tif: 'GTC' | 'IOC' | 'FOK';
    let postOnly = false;
    let price: number;
    if (a.type === 'limit') {
      if (a.priceTicks === undefined || a.priceTicks <= 0) return no('InvalidPrice');
      price = a.priceTicks;
      postOnly = a.timeInForce === 'postOnly';
      tif = a.timeInForce === 'postOnly' ? 'GTC' : a.timeInForce;
    } else {
      if (a.timeInForce === 'GTC' || a.timeInForce === 'postOnly') return no('InvalidOrder');
      tif = a.timeInForce;
      // The slippage bound around the index (not the mark), floor for buys and ceil for sells.
      const slip = BigInt(p.marketSlippagePpm);
      const index = BigInt(m.indexTicks);
      const worstBig = buy
        ? floorDiv(index * (PPM + slip), PPM)
        : ceilDiv(index * (PPM - slip), PPM);
      const worst = worstBig < 1n ? 1 : Number(worstBig);
      price =
        a.priceTicks === undefined
          ? worst
          : buy
            ? Math.min(worst, a.priceTicks)
            : Math.max(worst, a.priceTicks);
    }
    if (a.goodTilMs !== undefined && (tif !== 'GTC' || a.goodTilMs <= this.timeMs)) {
      return no('InvalidOrder');
    }
    const acct = this.account(ctx.trader, ctx.sub);
    if (acct === undefined) return no('InsufficientMargin');
    if (a.reduceOnly) {
      if (postOnly || a.goodTilMs !== undefined) return no('InvalidOrder');
      const pos = acct.positions[m.index]!.size;
      if (pos === 0 || pos > 0 === buy) return no('ReduceOnlyWouldIncrease');
      size = Math.min(size, Math.abs(pos));
      if (tif === 'GTC') tif = 'IOC';
    }
    if (size < p.minSizeLots) return no('BelowMinSize');
    const cid = a.clientOrderId ?? '';
    if (cid !== '' && acct.clientOrderIds.has(cid)) return no('DuplicateClientOrderId');
    if (tif === 'GTC' && this.openOrders(acct, m) >= p.openOrdersMax)
      return no('TooManyOpenOrders');
    if (postOnly) {
      const best = this.best(m, buy ? 'sell' : 'buy');
      if (best !== undefined && (buy ? best <= price : best >= price))
        return no('PostOnlyWouldTake');
    }
    if (!a.reduceOnly) {
      const before = this.initial(acct);
      const after = this.initial(acct, { m, buy: buy ? size : 0, sell: buy ? 0 : size });
      const away = buy ? price - m.markTicks : m.markTicks - price;
      const adverse = away > 0 ? BigInt(away) * BigInt(size) * m.k : 0n;
      if (after > before && this.equity(acct) - adverse < after) return no('InsufficientMargin');
    }
    const id = this.nextOrderId++;
    const stp = a.stp;
    const guard = postOnly ? null : this.guardFor(m, acct, buy, price, size);
    // A FOK fills in full or changes nothing: a dry run of the same matching decides.
    if (tif === 'FOK' && this.take(m, a.side, acct, price, size, stp, guard).remaining > 0) {
      return this.placed(id, 'cancelled', 'FokUnfillable', 0, 0, size, []);
    }
    const t = this.take(m, a.side, acct, price, size, stp, guard);
    const fills = this.apply(m, a.side, acct, t);
    const filled = size - t.remaining;
    if (t.remaining === 0) return this.placed(id, 'filled', null, filled, 0, 0, fills);
    if (t.stpStopped)
      return this.placed(id, 'cancelled', 'SelfTrade', filled, 0, t.remaining, fills);
    if (t.guardStopped) {
      return this.placed(id, 'cancelled', 'InsufficientEquity', filled, 0, t.remaining, fills);
    }
    if (tif !== 'GTC')
      return this.placed(id, 'cancelled', 'IocRemainder', filled, 0, t.remaining, fills);
    this.rest({
      id,
      account: acct,
      market: m.index,
      side: a.side,
      price,
      size: t.remaining,
      goodTilMs: a.goodTilMs ?? 0,
      stp,
      postOnly,
      clientOrderId: cid,
      placedLots: size,
      time: 0,
    });
    return this.placed(id, 'rested', null, filled, t.remaining, 0, fills);
  }

  private placed(
    orderId: number,
    status: Outcome['status'],
    reason: Outcome['reason'],
    filledLots: number,
    restedLots: number,
    cancelledLots: number,
    fills: Fill[],
    kind: 'placeOrder' | 'amend' = 'placeOrder',
  ): ActionResult {
    return {
      ok: true,
      kind,
      order: { orderId, status, reason, filledLots, restedLots, cancelledLots, fills },
    };
  }

  private amend(ctx: TxCtx, a: Extract<Action, { kind: 'amend' }>): ActionResult {
    const no = (code: string): ActionResult =>
      ({ ok: false, kind: 'amend', code, message: '' }) as ActionResult;
    const m = this.marketByName(a.instrument);
    if (m === undefined) return no('UnknownInstrument');
    const acct = this.account(ctx.trader, ctx.sub);
    const o = this.orders.get(a.orderId);
    if (o === undefined || o.account !== acct || o.market !== m.index) return no('UnknownOrder');
    const p = m.p;
    const price = a.priceTicks ?? o.price;
    if (price <= 0) return no('InvalidPrice');
    // The size is the order's whole size, what it filled included; without one it keeps its open size.
    const placedLots = a.sizeLots ?? o.placedLots;
    const size = placedLots - (o.placedLots - o.size);
    if (a.sizeLots !== undefined) {
      if (placedLots <= 0 || placedLots > p.maxSizeLots) return no('InvalidSize');
      if (placedLots < p.minSizeLots) return no('BelowMinSize');
      if (size <= 0) {
        // No more than it filled: the rest is cancelled.
        this.unrest(o);
        return this.placed(o.id, 'cancelled', null, 0, 0, o.size, [], 'amend');
      }
    }
    const buy = o.side === 'buy';
    // A post-only order moved to where it would take is refused for that
    // first, before its margin is weighed, as its placement there would be.
    if (o.postOnly) {
      const best = this.best(m, buy ? 'sell' : 'buy');
      if (best !== undefined && (buy ? best <= price : best >= price))
        return no('PostOnlyWouldTake');
    }
    const grow = size - o.size;
    if (grow > 0 || price !== o.price) {
      // As a placement: refused only when it raises the initial margin beyond
      // what equity covers; a new price beyond the mark is weighed as the
      // placement of the amended order, against the account without it.
      const before = this.initial(acct);
      const after = this.initial(acct, { m, buy: buy ? grow : 0, sell: buy ? 0 : grow });
      const away = buy ? price - m.markTicks : m.markTicks - price;
      const adverse = away > 0 ? BigInt(away) * BigInt(size) * m.k : 0n;
      const without = this.initial(acct, {
        m,
        buy: buy ? -o.size : 0,
        sell: buy ? 0 : -o.size,
      });
      const raises = after > before || (adverse > 0n && after > without);
      if (raises && this.equity(acct) - adverse < after) return no('InsufficientMargin');
    }
    if (price === o.price && size <= o.size) {
      // Smaller at the same price: in place, keeping its time priority.
      o.size = size;
      o.placedLots = placedLots;
      return this.placed(o.id, 'rested', null, 0, size, 0, [], 'amend');
    }
    const guard = this.guardFor(m, acct, buy, price, size);
    const t = this.take(m, o.side, acct, price, size, o.stp, guard);
    const fills = this.apply(m, o.side, acct, t);
    const filled = size - t.remaining;
    if (t.remaining === 0) {
      this.unrest(o);
      return this.placed(o.id, 'filled', null, filled, 0, 0, fills, 'amend');
    }
    if (t.stpStopped || t.guardStopped) {
      this.unrest(o);
      const reason = t.stpStopped ? 'SelfTrade' : 'InsufficientEquity';
      return this.placed(o.id, 'cancelled', reason, filled, 0, t.remaining, fills, 'amend');
    }
    // A new price or a larger size: to the back of its (new) level.
    this.unrest(o);
    o.price = price;
    o.size = t.remaining;
    o.placedLots = placedLots;
    this.rest(o);
    return this.placed(o.id, 'rested', null, filled, t.remaining, 0, fills, 'amend');
  }

  private cancel(ctx: TxCtx, a: Extract<Action, { kind: 'cancel' }>): ActionResult {
    const m = this.marketByName(a.instrument);
    if (m === undefined)
      return { ok: false, kind: 'cancel', code: 'UnknownInstrument', message: '' };
    const acct = this.account(ctx.trader, ctx.sub);
    const o =
      a.orderId !== undefined
        ? this.orders.get(a.orderId)
        : acct?.clientOrderIds.get(a.clientOrderId);
    if (o === undefined || o.account !== acct || o.market !== m.index) {
      return { ok: false, kind: 'cancel', code: 'UnknownOrder', message: '' };
    }
    this.unrest(o);
    return { ok: true, kind: 'cancel', count: 1 };
  }

  private cancelAll(ctx: TxCtx, a: Extract<Action, { kind: 'cancelAll' }>): ActionResult {
    let markets = this.markets;
    if (a.instrument !== undefined) {
      const m = this.marketByName(a.instrument);
      if (m === undefined)
        return { ok: false, kind: 'cancelAll', code: 'UnknownInstrument', message: '' };
      markets = [m];
    }
    const acct = this.account(ctx.trader, ctx.sub);
    let count = 0;
    for (const m of markets) {
      for (const o of m.orders.filter((x) => x.account === acct)) {
        this.unrest(o);
        count++;
      }
    }
    return { ok: true, kind: 'cancelAll', count };
  }

  private transfer(ctx: TxCtx, a: Extract<Action, { kind: 'transfer' }>): ActionResult {
    const no = (code: string): ActionResult =>
      ({ ok: false, kind: 'transfer', code, message: '' }) as ActionResult;
    if (a.amountQuote <= 0n || a.fromSubaccount === a.toSubaccount) return no('InvalidAmount');
    const from = this.account(ctx.trader, a.fromSubaccount);
    if (from === undefined || this.free(from) < a.amountQuote) return no('InsufficientFunds');
    const to = this.ensureAccount(ctx.trader, a.toSubaccount);
    from.cash -= a.amountQuote;
    to.cash += a.amountQuote;
    return { ok: true, kind: 'transfer' };
  }

  private withdraw(ctx: TxCtx, a: Extract<Action, { kind: 'withdraw' }>): ActionResult {
    if (a.amountQuote <= 0n)
      return { ok: false, kind: 'withdraw', code: 'InvalidAmount', message: '' };
    const acct = this.account(ctx.trader, ctx.sub);
    if (acct === undefined || this.free(acct) < a.amountQuote) {
      return { ok: false, kind: 'withdraw', code: 'InsufficientFunds', message: '' };
    }
    acct.cash -= a.amountQuote;
    this.withdrawn += a.amountQuote;
    return { ok: true, kind: 'withdraw' };
  }

  private faucet(ctx: TxCtx, a: Extract<Action, { kind: 'faucet' }>): ActionResult {
    const acct = this.ensureAccount(ctx.trader, ctx.sub);
    acct.cash += a.amountQuote;
    this.deposited += a.amountQuote;
    return { ok: true, kind: 'faucet' };
  }

  private run(ctx: TxCtx, a: BatchableAction): ActionResult {
    switch (a.kind) {
      case 'placeOrder':
        return this.placeOrder(ctx, a);
      case 'amend':
        return this.amend(ctx, a);
      case 'cancel':
        return this.cancel(ctx, a);
      case 'cancelAll':
        return this.cancelAll(ctx, a);
      case 'transfer':
        return this.transfer(ctx, a);
      case 'withdraw':
        return this.withdraw(ctx, a);
      case 'faucet':
        return this.faucet(ctx, a);
      default:
        throw new ModelDomainError(`the model has no ${a.kind}`);
    }
  }

  // --- blocks ----------------------------------------------------------------------

  private mark(m: MMarket): number {
    const index = m.indexTicks;
    const bid = this.best(m, 'buy');
    const ask = this.best(m, 'sell');
    let mid = index;
    if (bid !== undefined && ask !== undefined) {
      const d = Math.floor((index * m.p.markBandPpm) / 1e6);
      mid = Math.min(index + d, Math.max(Math.max(1, index - d), Math.floor((bid + ask) / 2)));
    }
    let basis = 0;
    if (m.premiumCount > 0) {
      const avg = Math.trunc(m.premiumSum / m.premiumCount);
      basis = Math.trunc((index * avg) / 1e6);
    }
    const sorted = [index, mid, index + basis].sort((x, y) => x - y);
    return Math.max(1, sorted[1]!);
  }

  private premium(m: MMarket): number {
    const bid = this.best(m, 'buy');
    const ask = this.best(m, 'sell');
    if (bid === undefined || ask === undefined) return 0;
    const away = Math.max(0, bid - m.indexTicks) - Math.max(0, m.indexTicks - ask);
    return Math.trunc((away * 1e6) / m.indexTicks);
  }

  /** The block's class of an action: cancels, then post-only placements, then the rest (a batch: its latest). */
  static actionClass(a: Action): number {
    if (a.kind === 'batch') return Math.max(...a.actions.map((x) => Model.actionClass(x)));
    if (a.kind === 'cancel' || a.kind === 'cancelAll') return 0;
    if (a.kind === 'placeOrder' && a.timeInForce === 'postOnly') return 1;
    return 2;
  }

  /**
   * Runs a block. `outside` says where the model stops covering the run: an
   * account below zero at the block's new marks (withdrawals may pause), so
   * nothing of the block can be compared; or one the block's end would
   * liquidate, so only the transactions' results can.
   */
  block(
    b: Block,
    owners: Map<string, number>,
  ): { results: TxResult[]; events: ExchangeEvent[]; outside: 'before' | 'after' | null } {
    this.events = [];
    const previousMs = this.timeMs;
    this.timeMs = b.timeMs;
    for (const m of this.markets) {
      const price = b.oracle[m.p.underlying];
      if (typeof price === 'bigint') {
        assert.equal(price % m.p.tickSizeQuote, 0n, 'the driver prices the index in whole ticks');
        m.indexTicks = Number(price / m.p.tickSizeQuote);
      }
      const expired = m.orders
        .filter((o) => o.goodTilMs !== 0 && o.goodTilMs <= b.timeMs)
        .sort((x, y) => x.goodTilMs - y.goodTilMs || x.id - y.id);
      for (const o of expired) {
        this.unrest(o);
        this.events.push({
          type: 'orderExpired',
          market: m.p.instrument,
          orderId: o.id,
          account: o.account.index,
        });
      }
      m.markTicks = this.mark(m);
      const interval = m.p.fundingIntervalMs;
      if (floorDivNum(b.timeMs, interval) * interval > previousMs) {
        throw new ModelDomainError('the run crossed a funding interval');
      }
      const s = m.p.fundingSampleMs;
      const count = floorDivNum(b.timeMs, s) - (floorDivNum(previousMs, s) + 1) + 1;
      if (count > 0) {
        m.premiumSum += this.premium(m) * count;
        m.premiumCount += count;
      }
    }
    if (this.accounts.some((a) => this.equity(a) < 0n)) {
      return { results: [], events: [], outside: 'before' };
    }
    const order = b.txs.map((_, i) => i);
    // Stable: within a class, the proposer's order.
    order.sort(
      (x, y) => Model.actionClass(b.txs[x]!.action) - Model.actionClass(b.txs[y]!.action) || x - y,
    );
    const results: TxResult[] = new Array(b.txs.length);
    for (const i of order) {
      const tx = b.txs[i]!;
      const trader = owners.get(bytesKey(tx.account));
      assert.ok(trader !== undefined, 'a transaction of a trader the model knows');
      const ctx = { trader, sub: tx.subaccount };
      const actions = tx.action.kind === 'batch' ? tx.action.actions : [tx.action];
      results[i] = { index: i, ok: true, actions: actions.map((a) => this.run(ctx, a)) };
    }
    const liquidated = this.accounts.some(
      (a) => a.positions.some((p) => p.size !== 0) && this.equity(a) < this.maintenance(a),
    );
    return { results, events: this.events, outside: liquidated ? 'after' : null };
  }
}

// --- comparing with the exchange ------------------------------------------------------

/** Results without their messages (the model checks codes, not wording). */
function bare(results: readonly TxResult[]): unknown {
  return results.map((r) => ({
    ...r,
    actions: r.actions.map((a) => (a.ok ? a : { ok: false, kind: a.kind, code: a.code })),
  }));
}

function compareState(ex: Exchange, model: Model, where: string): void {
  const state = ex.state;
  assert.equal(state.accounts.length, model.accounts.length, `${where}: account count`);
  for (const a of model.accounts) {
    const x = state.accounts[a.index]!;
    const got = {
      cash: x.cashQuote,
      volume: x.volumeQuote,
      positions: model.markets.map((m) => {
        const p = x.positions[m.index]!;
        return { size: p.sizeLots, basis: p.costBasisQuote, pnl: p.realizedPnlQuote };
      }),
      clientOrderIds: [...x.clientOrderIds.entries()].sort(),
    };
    const want = {
      cash: a.cash,
      volume: a.volume,
      positions: a.positions.map((p) => ({ size: p.size, basis: p.basis, pnl: p.pnl })),
      clientOrderIds: [...a.clientOrderIds.entries()].map(([c, o]) => [c, o.id]).sort(),
    };
    assert.deepEqual(got, want, `${where}: account ${a.index}`);
  }
  assert.equal(state.feePoolQuote, model.feePool, `${where}: fee pool`);
  assert.equal(state.withdrawnQuote, model.withdrawn, `${where}: withdrawn`);
  assert.equal(state.nextOrderId, model.nextOrderId, `${where}: next order id`);
  assert.equal(state.orders.size, model.orders.size, `${where}: open orders`);
  for (const m of model.markets) {
    const market = state.markets[m.index]!;
    assert.equal(market.markTicks, m.markTicks, `${where}: mark of ${m.p.instrument}`);
    for (const side of ['buy', 'sell'] as const) {
      const got = [...market.book.ordersOf(side)].map((o) => {
        const meta = state.orders.get(o.orderId)!;
        return [
          o.orderId,
          meta.account.index,
          o.priceTicks,
          o.sizeLots,
          o.goodTilMs,
          o.stp,
          o.postOnly,
          meta.clientOrderId,
          meta.placedLots,
        ];
      });
      const want = model
        .queue(m, side)
        .map((o) => [
          o.id,
          o.account.index,
          o.price,
          o.size,
          o.goodTilMs,
          o.stp,
          o.postOnly,
          o.clientOrderId,
          o.placedLots,
        ]);
      assert.deepEqual(got, want, `${where}: ${m.p.instrument} ${side} queue`);
    }
  }
}

// --- the driver ---------------------------------------------------------------------

export const TRADERS: readonly Key[] = Array.from({ length: 4 }, (_, i) => key(`order-model-${i}`));
/** What each trader draws into subaccounts 0 and 1: some thin, some deep. */
const FUNDING = [
  [20_000n, 2_000n],
  [60_000n, 10_000n],
  [30_000n, 4_000n],
  [100_000n, 500n],
].map(([a, b]) => [a! * USDC, b! * USDC]);

export interface Stats {
  fills: number;
  rejections: Map<string, number>;
  statuses: Map<string, number>;
  makerCancelled: number;
  expired: number;
  rebates: number;
  /** Runs that left what the model covers before their last block. */
  endedEarly: number;
}

interface Driver {
  rng: Prng;
  model: Model;
  nonce: number;
  timeMs: number;
  index: number[];
  startIndex: number[];
  /** Price monitoring is on: prices stay well within its 5%. */
  monitored: boolean;
}

function pickOwn(
  d: Driver,
  trader: number,
  sub: number,
): { id: number; market: number } | undefined {
  const own = [...d.model.orders.values()].filter(
    (o) => o.account.trader === trader && o.account.sub === sub,
  );
  if (own.length === 0) return undefined;
  const o = d.rng.pick(own);
  return { id: o.id, market: o.market };
}

function randomPrice(d: Driver, market: number, side?: Side): number {
  const idx = d.index[market]!;
  const m = d.model.markets[market]!;
  if (side !== undefined && d.rng.chance(1, 2)) {
    // Marketable: at or through the best opposite price, so orders meet.
    const best = d.model.queue(m, side === 'buy' ? 'sell' : 'buy')[0]?.price ?? idx;
    const through = d.rng.between(-2, 12);
    return side === 'buy' ? best + through : best - through;
  }
  if (!d.monitored && d.rng.chance(1, 15)) {
    // Far through the mark: a maker there may be unable to pay for its fill (the fill check).
    const away = d.rng.between(Math.floor(idx / 10), Math.floor(idx / 5));
    return d.rng.chance(1, 2) ? idx + away : idx - away;
  }
  return d.rng.chance(1, 10)
    ? idx + d.rng.between(-Math.floor(idx / 100), Math.floor(idx / 100))
    : idx + d.rng.between(-30, 30);
}

function randomSize(d: Driver): number {
  const roll = d.rng.int(100);
  if (roll < 70) return d.rng.between(1, 200);
  if (roll < 90) return d.rng.between(200, 1_500);
  if (roll < 95) return d.rng.between(3_990, 4_010);
  return d.rng.between(1, 6);
}

function cid(d: Driver): string {
  return `c${d.rng.int(6)}`;
}

function randomPlace(d: Driver, market: number): PlaceOrder {
  const rng = d.rng;
  const instrument = d.model.markets[market]!.p.instrument;
  const side = rng.chance(1, 2) ? 'buy' : 'sell';
  const stp = rng.pick(STPS);
  if (rng.chance(1, 5)) {
    const a: PlaceOrder = {
      kind: 'placeOrder',
      instrument,
      side,
      type: 'market',
      sizeLots: randomSize(d),
      timeInForce: rng.chance(1, 20) ? 'GTC' : rng.chance(1, 3) ? 'FOK' : 'IOC',
      reduceOnly: rng.chance(1, 3),
      stp,
    };
    if (rng.chance(1, 3)) a.priceTicks = randomPrice(d, market, side);
    return a;
  }
  const tif = rng.pick(['GTC', 'GTC', 'IOC', 'FOK', 'postOnly', 'postOnly'] as const);
  const a: PlaceOrder = {
    kind: 'placeOrder',
    instrument,
    side,
    type: 'limit',
    priceTicks: randomPrice(
      d,
      market,
      tif === 'IOC' || tif === 'FOK' || rng.chance(1, 3) ? side : undefined,
    ),
    sizeLots: randomSize(d),
    timeInForce: tif,
    reduceOnly: rng.chance(1, 10),
    stp,
  };
  if (rng.chance(2, 5)) a.clientOrderId = cid(d);
  if (rng.chance(1, 6)) a.goodTilMs = d.timeMs + rng.between(-2_000, 20_000);
  return a;
}

function randomAmend(d: Driver, trader: number, sub: number): BatchableAction {
  const rng = d.rng;
  const own = pickOwn(d, trader, sub);
  if (own === undefined || rng.chance(1, 20)) {
    const market = rng.int(2);
    return {
      kind: 'amend',
      instrument: d.model.markets[market]!.p.instrument,
      orderId: rng.between(1, d.model.nextOrderId + 2),
      sizeLots: randomSize(d),
    };
  }
  const o = d.model.orders.get(own.id)!;
  const m = d.model.markets[own.market]!;
  const instrument = m.p.instrument;
  const roll = rng.int(100);
  // Sizes are whole sizes: what the order filled, and what stays open.
  const filled = o.placedLots - o.size;
  if (roll < 30) {
    // Smaller: often still above what it filled (in place), sometimes at or below it (ended).
    const size = rng.chance(3, 4) ? filled + rng.between(1, o.size) : rng.between(1, filled + 1);
    return { kind: 'amend', instrument, orderId: o.id, sizeLots: size };
  }
  if (roll < 55) {
    return {
      kind: 'amend',
      instrument,
      orderId: o.id,
      priceTicks: randomPrice(d, own.market, rng.chance(1, 3) ? o.side : undefined),
    };
  }
  if (roll < 70) {
    return {
      kind: 'amend',
      instrument,
      orderId: o.id,
      sizeLots: o.placedLots + rng.between(1, 300),
    };
  }
  if (roll < 85) {
    return {
      kind: 'amend',
      instrument,
      orderId: o.id,
      priceTicks: randomPrice(d, own.market),
      sizeLots: randomSize(d),
    };
  }
  if (roll < 90) {
    return {
      kind: 'amend',
      instrument,
      orderId: o.id,
      priceTicks: o.price,
      sizeLots: o.placedLots,
    };
  }
  if (roll < 95) {
    // At the best opposite price: a post-only order must refuse it.
    const opposite = d.model.queue(m, o.side === 'buy' ? 'sell' : 'buy')[0];
    return { kind: 'amend', instrument, orderId: o.id, priceTicks: opposite?.price ?? o.price + 1 };
  }
  // In the other market: not an order of it.
  return {
    kind: 'amend',
    instrument: d.model.markets[1 - own.market]!.p.instrument,
    orderId: o.id,
    sizeLots: 1,
  };
}

function randomCancel(d: Driver, trader: number, sub: number): BatchableAction {
  const rng = d.rng;
  const roll = rng.int(100);
  const own = pickOwn(d, trader, sub);
  const market = own?.market ?? rng.int(2);
  const instrument = d.model.markets[market]!.p.instrument;
  if (roll < 55 && own !== undefined) return { kind: 'cancel', instrument, orderId: own.id };
  if (roll < 80) {
    const named = [...(d.model.account(trader, sub)?.clientOrderIds.values() ?? [])];
    if (named.length > 0 && rng.chance(3, 4)) {
      const o = rng.pick(named);
      return {
        kind: 'cancel',
        instrument: d.model.markets[o.market]!.p.instrument,
        clientOrderId: o.clientOrderId,
      };
    }
    return { kind: 'cancel', instrument, clientOrderId: cid(d) };
  }
  if (roll < 90 && own !== undefined) {
    return {
      kind: 'cancel',
      instrument: d.model.markets[1 - market]!.p.instrument,
      orderId: own.id,
    };
  }
  return { kind: 'cancel', instrument, orderId: rng.between(1, d.model.nextOrderId + 2) };
}

function randomMoney(d: Driver, trader: number, sub: number): bigint {
  const acct = d.model.account(trader, sub);
  const free = acct === undefined ? 0n : d.model.free(acct);
  const roll = d.rng.int(10);
  // Now and then all of it, or one unit more: the boundary.
  if (free > 0n && roll === 0) return free;
  if (free > 0n && roll === 1) return free + 1n;
  if (free > 0n && roll < 8) return (free * BigInt(d.rng.between(1, 10))) / 100n + 1n;
  return BigInt(d.rng.between(1, 500)) * USDC;
}

function randomAction(d: Driver, trader: number, sub: number, inBatch: boolean): BatchableAction {
  const rng = d.rng;
  const acct = d.model.account(trader, sub);
  const far = [...d.model.orders.values()].some(
    (o) => o.account === acct && Math.abs(o.price - d.index[o.market]!) * 20 > d.index[o.market]!,
  );
  if (acct !== undefined && far && rng.chance(1, 3)) {
    // All its free collateral: its order far through the mark then costs more than its equity.
    return { kind: 'withdraw', amountQuote: d.model.free(acct), destination: 'collateral-chain-1' };
  }
  const roll = rng.int(inBatch ? 85 : 100);
  if (roll < 50) return randomPlace(d, rng.int(2));
  if (roll < 60) return randomCancel(d, trader, sub);
  if (roll < 62) {
    return rng.chance(1, 2)
      ? { kind: 'cancelAll' }
      : { kind: 'cancelAll', instrument: d.model.markets[rng.int(2)]!.p.instrument };
  }
  if (roll < 85) return randomAmend(d, trader, sub);
  if (roll < 92) {
    const from = rng.int(2);
    return {
      kind: 'transfer',
      fromSubaccount: from,
      toSubaccount: rng.chance(1, 10) ? 2 : 1 - from,
      amountQuote: randomMoney(d, trader, from),
    };
  }
  return {
    kind: 'withdraw',
    amountQuote: randomMoney(d, trader, sub),
    destination: 'collateral-chain-1',
  };
}

function tx(d: Driver, trader: number, sub: number, action: Action): SignedTx {
  const k = TRADERS[trader]!;
  return {
    chainId: d.model.g.chainId,
    signer: k.publicKey,
    account: k.address,
    subaccount: sub,
    nonce: d.timeMs + ++d.nonce,
    action,
    signature: new Uint8Array(64),
  };
}

function nextBlock(d: Driver, height: number, txs: SignedTx[]): Block {
  const oracle: Record<string, bigint> = {};
  d.model.markets.forEach(
    (m, i) => (oracle[m.p.underlying] = BigInt(d.index[i]!) * m.p.tickSizeQuote),
  );
  return { height, timeMs: d.timeMs, proposer: VALIDATORS[0]!.publicKey, txs, oracle };
}

/**
 * A maker far through the mark (15–20%) that then takes out all the free
 * collateral the order leaves it, in one batch: its fill would cost more
 * than its equity, which the fill check must refuse (the maker's side).
 */
function farMaker(d: Driver, trader: number, sub: number): Action | undefined {
  const acct = d.model.account(trader, sub);
  if (acct === undefined || d.model.free(acct) <= 0n) return undefined;
  const market = d.rng.int(2);
  const m = d.model.markets[market]!;
  const idx = d.index[market]!;
  const buy = d.rng.chance(1, 2);
  const away = d.rng.between(Math.floor((idx * 3) / 20), Math.floor(idx / 5));
  // About 40% of a lot's value per lot: the margin and the loss against the mark.
  const perLot = (BigInt(m.markTicks) * m.k * 2n) / 5n;
  const size = Math.min(m.p.maxSizeLots, Number(d.model.free(acct) / perLot));
  if (size < m.p.minSizeLots) return undefined;
  const after = d.model.initial(acct, { m, buy: buy ? size : 0, sell: buy ? 0 : size });
  const amountQuote = d.model.equity(acct) - after;
  if (amountQuote <= 0n) return undefined;
  return {
    kind: 'batch',
    actions: [
      {
        kind: 'placeOrder',
        instrument: m.p.instrument,
        side: buy ? 'buy' : 'sell',
        type: 'limit',
        priceTicks: buy ? idx + away : idx - away,
        sizeLots: size,
        timeInForce: 'GTC',
        reduceOnly: false,
        stp: 'cancelResting',
      },
      { kind: 'withdraw', amountQuote, destination: 'collateral-chain-1' },
    ],
  };
}

/** A whole position closed at any price down to 20% through the mark (the taker's side of the fill check). */
function dump(d: Driver, trader: number, sub: number): Action | undefined {
  const acct = d.model.account(trader, sub);
  const market = d.rng.int(2);
  const pos = acct?.positions[market]!.size ?? 0;
  if (pos === 0) return undefined;
  const idx = d.index[market]!;
  return {
    kind: 'placeOrder',
    instrument: d.model.markets[market]!.p.instrument,
    side: pos > 0 ? 'sell' : 'buy',
    type: 'limit',
    priceTicks: pos > 0 ? idx - Math.floor(idx / 5) : idx + Math.floor(idx / 5),
    sizeLots: Math.abs(pos),
    timeInForce: 'IOC',
    reduceOnly: d.rng.chance(1, 2),
    stp: d.rng.pick(STPS),
  };
}

function randomBlock(d: Driver, height: number): Block {
  const rng = d.rng;
  d.timeMs += rng.chance(1, 10) ? rng.between(5_000, 20_000) : rng.between(100, 2_500);
  d.index = d.index.map((x, i) => {
    if (!rng.chance(1, 5)) return x;
    const start = d.startIndex[i]!;
    const bound = Math.floor(start / 200);
    return Math.min(start + bound, Math.max(start - bound, x + rng.between(-20, 20)));
  });
  const txs: SignedTx[] = [];
  const n = rng.between(0, 9);
  for (let i = 0; i < n; i++) {
    let trader = rng.int(TRADERS.length);
    let sub = rng.chance(1, 15) ? 2 : rng.int(2);
    const resting = [...d.model.orders.values()];
    if (resting.length > 0 && rng.chance(3, 5)) {
      // Someone with orders to cancel or amend.
      const o = rng.pick(resting);
      trader = o.account.trader;
      sub = o.account.sub;
    }
    const stress = d.monitored
      ? undefined
      : rng.chance(1, 20)
        ? farMaker(d, trader, sub)
        : rng.chance(1, 30)
          ? dump(d, trader, sub)
          : undefined;
    if (stress !== undefined) {
      txs.push(tx(d, trader, sub, stress));
    } else if (rng.chance(1, 8)) {
      const actions = Array.from({ length: rng.between(2, 4) }, () =>
        randomAction(d, trader, sub, true),
      );
      txs.push(tx(d, trader, sub, { kind: 'batch', actions }));
    } else {
      txs.push(tx(d, trader, sub, randomAction(d, trader, sub, false)));
    }
  }
  return nextBlock(d, height, txs);
}

function tally(stats: Stats, r: BlockResult): void {
  for (const t of r.results) {
    for (const a of t.actions) {
      if (!a.ok)
        stats.rejections.set(
          `${a.kind}:${a.code}`,
          (stats.rejections.get(`${a.kind}:${a.code}`) ?? 0) + 1,
        );
      else if (a.order !== undefined) {
        const s = `${a.kind}:${a.order.status}:${a.order.reason ?? ''}`;
        stats.statuses.set(s, (stats.statuses.get(s) ?? 0) + 1);
        stats.fills += a.order.fills.length;
        for (const f of a.order.fills) if (f.makerFeeQuote < 0n) stats.rebates++;
      }
    }
  }
  for (const e of r.events) {
    if (e.type === 'makerCancelled') stats.makerCancelled++;
    if (e.type === 'orderExpired') stats.expired++;
  }
}

export function newStats(): Stats {
  return {
    fills: 0,
    rejections: new Map(),
    statuses: new Map(),
    makerCancelled: 0,
    expired: 0,
    rebates: 0,
    endedEarly: 0,
  };
}

/**
 * One seeded run of `blocks` blocks through the exchange and the model. After
 * each block: results, events, resting orders and balances equal the model's;
 * the exchange's invariants hold (checkInvariants), its incremental digest
 * equals the digest from scratch; and a node restored from a
 * snapshot taken before the block gives the same results and appHash for it
 * (the run then goes on with the restored node half the time).
 */
export function checkRun(seed: number, blocks: number, stats: Stats = newStats()): Stats {
  // Half the runs with the devnet's price monitoring, whose bounds (5%) the
  // driver's prices never reach: its checks run on every order and must change nothing.
  const monitored = seed % 2 === 1;
  const g = modelGenesis(monitored);
  let ex = new Exchange(g, { checkInvariants: true });
  const model = new Model(g, ex.state.nextOrderId, ex.state.timeMs);
  const owners = new Map(TRADERS.map((t, i) => [bytesKey(t.address), i]));
  const d: Driver = {
    rng: new Prng(seed),
    model,
    nonce: 0,
    timeMs: ex.state.timeMs,
    index: [500_000, 300_000],
    startIndex: [500_000, 300_000],
    monitored,
  };
  /** False once the run leaves what the model covers (the rest of it is not compared). */
  const runBlock = (b: Block): boolean => {
    const where = `seed ${seed}, height ${b.height}`;
    const snapshot = encodeSnapshot(ex);
    const restored = decodeSnapshot(snapshot, { checkInvariants: true });
    assert.deepEqual(restored.appHash, ex.appHash, `${where}: restored appHash`);
    const want = model.block(b, owners);
    const got = ex.finalizeBlock(b);
    const again = restored.finalizeBlock(b);
    assert.deepEqual(again, got, `${where}: the restored node's block`);
    assert.deepEqual(ex.digestBytes(), ex.digestFromScratch(), `${where}: incremental digest`);
    tally(stats, got);
    if (want.outside === 'before') return false;
    assert.deepEqual(
      JSON.parse(JSON.stringify(bare(got.results), replacer)),
      JSON.parse(JSON.stringify(bare(want.results), replacer)),
      `${where}: results`,
    );
    if (want.outside === 'after') return false;
    assert.deepEqual(got.events, want.events, `${where}: events`);
    compareState(ex, model, where);
    if (d.rng.chance(1, 2)) ex = restored;
    return true;
  };
  d.timeMs += 1_000;
  const setup: SignedTx[] = [];
  TRADERS.forEach((_, t) =>
    FUNDING[t]!.forEach((amount, sub) =>
      setup.push(tx(d, t, sub, { kind: 'faucet', amountQuote: amount })),
    ),
  );
  assert.ok(runBlock(nextBlock(d, 1, setup)), 'the setup block is within the model');
  for (let h = 2; h <= blocks; h++) {
    if (!runBlock(randomBlock(d, h))) {
      stats.endedEarly++;
      break;
    }
  }
  return stats;
}
