// Marks, funding and dated-futures settlement against the reference model of
// funding_reference.ts (written from the docs). Seeded runs of blocks with
// random gaps (identical times, a millisecond, seconds, exactly on sample and
// interval boundaries, hours, exactly at expiry and at the settlement
// window's start), a trusted oracle feed that jumps, crashes and goes stale,
// and books that are thick, thin, one-sided, empty, far from the index or
// waiting in a volatility auction, with positions in both perpetuals and the
// BTC dated future. After every block the exchange must agree with the model
// on every index and mark, the premium samples, each funding payment (rate,
// each holder's cash, paid, received, dust), each settlement (price, value,
// each holder's cash and realized PnL, orders and records gone), every
// account's cash and positions (the fills of the block's results and
// auctions added), the insurance fund, the fee pool and collateral
// conservation; and a node restored from a snapshot in mid-run must run the
// next blocks to the same results and appHash.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../src/lib/prng.ts';
import { daysFromCivil, MS_PER_DAY } from '../../src/exchange/instruments/index.ts';
import { bytesKey } from '../../src/exchange/keys.ts';
import { equityQuote } from '../../src/exchange/margin.ts';
import { positionOf } from '../../src/exchange/position.ts';
import { decodeSnapshot, encodeSnapshot } from '../../src/exchange/snapshot.ts';
import type { Exchange, Genesis, MarketParams } from '../../src/exchange/index.ts';
import type { BlockResult, ExchangeEvent } from '../../src/exchange/results.ts';
import type { Account, ExchangeState, MarketState } from '../../src/exchange/state.ts';
import type { Action, PlaceOrder, SignedTx } from '../../src/exchange/tx/types.ts';
import { Harness, USDC, dailyListingGenesis, key, limit, replacer } from './helpers.ts';
import type { FundingParams, PricePoint, RefFundingState, Top } from './funding_reference.ts';
import {
  REF_PREMIUM_SAMPLE_MAX,
  refAdvanceFunding,
  refFundingDelta,
  refIndexTicks,
  refMark,
  refPremium,
  refSettlementCash,
  refSettlementPrice,
} from './funding_reference.ts';

const SECOND_MS = 1_000;
const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
/** Monday 2 March 2026, 00:00 UTC. */
const DAY0_MS = daysFromCivil(2026, 3, 2) * MS_PER_DAY;
const STALE_AFTER_MS = 60_000;
const TRADERS = [0, 1, 2, 3, 4, 5].map((i) => key(`funding-model-${i}`));

/** Funding and mark parameters a perpetual may take: the devnet's, and two far from it. */
const VARIANTS: Partial<MarketParams>[] = [
  {},
  {
    fundingIntervalMs: 10 * MINUTE_MS,
    fundingSampleMs: 20 * SECOND_MS,
    fundingInterestPpm: 900,
    fundingCapPpm: 300,
    markBandPpm: 50_000,
  },
  {
    fundingIntervalMs: 2 * HOUR_MS,
    fundingSampleMs: MINUTE_MS,
    fundingInterestPpm: -700,
    fundingCapPpm: 50,
    markBandPpm: 100,
  },
];

function fundingGenesis(seed: number): Genesis {
  const g = dailyListingGenesis(DAY0_MS + (seed % 4) * 7 * MINUTE_MS + seed * 1_234);
  g.markets = g.markets.map((m, i) => ({ ...m, ...VARIANTS[(seed + i) % VARIANTS.length]! }));
  return g;
}

interface HeldPosition {
  size: bigint;
  funding: bigint;
  costBasis: bigint;
  realized: bigint;
}

/** What the model expects of an account after the block, from its state before it. */
interface AccountView {
  cash: bigint;
  positions: Map<MarketState, HeldPosition>;
}

function positionsOf(state: ExchangeState, a: Account): Map<MarketState, HeldPosition> {
  const out = new Map<MarketState, HeldPosition>();
  for (const m of state.markets) {
    if (m.retired) continue;
    const p = positionOf(a, m);
    // Kept at size 0 too: a position's funding and PnL carry over a close and a reopen.
    if (p === undefined) continue;
    out.set(m, {
      size: BigInt(p.sizeLots),
      funding: p.fundingQuote,
      costBasis: p.costBasisQuote,
      realized: p.realizedPnlQuote,
    });
  }
  return out;
}

function kOf(m: MarketState): bigint {
  return m.params.tickSizeQuote / BigInt(m.params.lotsPerBase);
}

function fundingParams(m: MarketState): FundingParams {
  const p = m.params;
  return {
    sampleMs: BigInt(p.fundingSampleMs),
    intervalMs: BigInt(p.fundingIntervalMs),
    interestPpm: BigInt(p.fundingInterestPpm),
    capPpm: BigInt(p.fundingCapPpm),
  };
}

/** The best bid and ask once the good-til orders expiring at `nowMs` have left ("A block", step 2). */
function topAt(m: MarketState, nowMs: number): Top {
  const best = (side: 'buy' | 'sell'): bigint | undefined => {
    let out: number | undefined;
    for (const o of m.book.ordersOf(side)) {
      if (o.goodTilMs !== 0 && o.goodTilMs <= nowMs) continue;
      if (out === undefined || (side === 'buy' ? o.priceTicks > out : o.priceTicks < out)) {
        out = o.priceTicks;
      }
    }
    return out === undefined ? undefined : BigInt(out);
  };
  return { bid: best('buy'), ask: best('sell') };
}

interface Feed {
  price: bigint;
  updatedMs: number;
}

interface Stats {
  blocks: number;
  payments: number;
  paymentsMovingMoney: number;
  skippedIntervals: number;
  staleIntervals: number;
  proratedPayments: number;
  cappedRates: number;
  settlements: number;
  settledPositions: number;
  waitedSettlements: number;
  markOffIndex: number;
  midBanded: number;
  markFromBasis: number;
  cappedPremiums: number;
  ordersCancelledAtSettlement: number;
  refusedExpired: number;
  auctions: number;
  fills: number;
  expired: number;
  sameTimeBlocks: number;
}

class Model {
  readonly h: Harness;
  readonly r: Prng;
  readonly seed: number;
  /** What the feed holds per underlying, as this driver sent it. */
  readonly feeds = new Map<string, Feed>();
  /** The samples of each perpetual's current interval. */
  readonly funding = new Map<MarketState, RefFundingState>();
  /** Per live dated future: the fresh index at every block since it was listed. */
  readonly history = new Map<MarketState, PricePoint[]>();
  /** Prices as the driver moves them (sent or held back). */
  readonly price: Record<string, bigint> = { BTC: 50_000n * USDC, ETH: 3_000n * USDC };
  /** Blocks left in which an underlying's price is held back. */
  readonly silent: Record<string, number> = { BTC: 0, ETH: 0 };
  readonly stats: Stats;
  twin: { ex: Exchange; left: number } | null = null;

  constructor(seed: number, stats: Stats) {
    this.seed = seed;
    this.stats = stats;
    this.h = new Harness(fundingGenesis(seed));
    this.r = new Prng(seed);
    for (const m of this.h.ex.state.markets) {
      if (!m.listed) this.funding.set(m, { sum: 0n, count: 0n });
    }
  }

  chance(percent: number): boolean {
    return this.r.int(100) < percent;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.r.int(xs.length)]!;
  }

  /** Perpetuals and live dated futures (options here have no smile: no mark, no orders). */
  linear(): MarketState[] {
    return this.h.ex.state.markets.filter((m) => !m.retired && m.instrument.kind !== 'option');
  }

  // --- the flow ------------------------------------------------------------------

  dt(): number {
    const t = this.h.timeMs;
    const m = this.pick(this.h.ex.state.markets.filter((x) => !x.listed));
    const { fundingSampleMs: s, fundingIntervalMs: interval } = m.params;
    const nextExpiry = Math.min(
      ...this.h.ex.state.markets.filter((x) => x.listed && !x.retired).map((x) => x.expiryMs),
    );
    const roll = this.r.int(100);
    if (roll < 6) return 0;
    if (roll < 9) return 1;
    if (roll < 40) return 1 + this.r.int(20 * SECOND_MS);
    if (roll < 55) return (Math.floor(t / s) + 1 + this.r.int(3)) * s - t;
    if (roll < 65) return (Math.floor(t / interval) + 1) * interval - t;
    if (roll < 68) return (Math.floor(t / interval) + 1 + this.r.int(4)) * interval - t;
    if (roll < 72) return MINUTE_MS * (1 + this.r.int(10)) + this.r.int(3) * SECOND_MS;
    if (roll < 80 && Number.isFinite(nextExpiry) && nextExpiry > t) {
      // Exactly at expiry, at the window's start, or just around them.
      const target = this.pick([
        nextExpiry,
        nextExpiry - 30 * MINUTE_MS,
        nextExpiry - 1,
        nextExpiry + 1,
        nextExpiry - 10 * MINUTE_MS,
      ]);
      if (target > t) return target - t;
    }
    if (roll < 90) return HOUR_MS * (1 + this.r.int(5)) + this.r.int(HOUR_MS);
    return 5 * SECOND_MS + this.r.int(MINUTE_MS);
  }

  /** Moves the prices and decides what the block's feed carries. */
  oracle(): Record<string, bigint> {
    const out: Record<string, bigint> = {};
    for (const u of ['BTC', 'ETH']) {
      let p = this.price[u]!;
      const roll = this.r.int(100);
      if (roll < 50) p += (p * BigInt(this.r.int(61) - 30)) / 10_000n;
      else if (roll < 60) p += (p * BigInt(this.r.int(801) - 400)) / 10_000n;
      else if (roll < 61 && u === 'ETH')
        p = BigInt(1 + this.r.int(30_000)); // a crash to a few ticks
      else if (roll < 63 && p < 1_000n * USDC) p = 3_000n * USDC; // and back
      if (p < 1n) p = 1n;
      this.price[u] = p;
      if (this.silent[u]! > 0) this.silent[u]!--;
      else if (this.chance(4)) this.silent[u] = 1 + this.r.int(6);
      if (this.silent[u] === 0) out[u] = p;
    }
    return out;
  }

  order(m: MarketState): PlaceOrder {
    const name = m.params.instrument;
    const index = m.indexTicks > 0 ? m.indexTicks : 1_000;
    const side = this.chance(50) ? 'buy' : 'sell';
    const size = 1 + this.r.int(this.chance(80) ? 50 : 400);
    // Against an index of a few ticks, often far orders: a premium at its cap.
    const roll = index < 100 && this.chance(50) ? 99 : this.r.int(100);
    const spread = Math.max(1, Math.floor((index * (1 + this.r.int(80))) / 10_000));
    if (roll < 45) {
      // A maker, near the index, on either side of it (a bid above it samples a premium).
      const offset = this.r.int(2 * spread + 1) - Math.floor(spread / 3);
      const price = Math.max(1, side === 'buy' ? index - offset : index + offset);
      const extra: Partial<PlaceOrder> = { timeInForce: this.chance(30) ? 'postOnly' : 'GTC' };
      if (this.chance(30)) {
        // Expiring exactly on a block time, a sample boundary, or soon after.
        const t = this.h.timeMs;
        extra.goodTilMs = this.pick([
          t + 1,
          t + 1 + this.r.int(2 * MINUTE_MS),
          (Math.floor(t / MINUTE_MS) + 1) * MINUTE_MS,
          (Math.floor(t / HOUR_MS) + 1) * HOUR_MS,
        ]);
      }
      return limit(name, side, price, size, extra);
    }
    if (roll < 85) {
      // A taker at the other side's best, or through it.
      const best = side === 'buy' ? m.book.bestAskTicks() : m.book.bestBidTicks();
      const base = best ?? index;
      const through = this.r.int(spread + 1);
      const price = Math.max(1, side === 'buy' ? base + through : base - through);
      return limit(name, side, price, size, { timeInForce: this.pick(['IOC', 'IOC', 'GTC']) });
    }
    if (roll < 92) {
      // Far from the index: rests alone on an empty side, or starts a perpetual's auction.
      const away = Math.floor((index * (6 + this.r.int(20))) / 100);
      const price = Math.max(1, side === 'buy' ? index + away : index - away);
      return limit(name, side, price, 1 + this.r.int(5));
    }
    if (index < 100 && this.chance(60)) {
      // Against an index of a few ticks: a bid a million times above it (premium at its cap) and an ask above that.
      return limit(name, side, side === 'buy' ? index * 1_000_000 : index * 2_000_000, 1);
    }
    // A lone far bid (a large premium against a small index) or a far ask.
    const price = side === 'buy' ? index * (2 + this.r.int(50)) : index * (2 + this.r.int(5));
    return limit(name, side, price, 1);
  }

  txs(): SignedTx[] {
    const out: SignedTx[] = [];
    const markets = this.linear().filter((m) => m.indexTicks > 0);
    const n = this.r.int(7);
    for (let i = 0; i < n && markets.length > 0; i++) {
      const trader = this.pick(TRADERS);
      const m = this.pick(markets);
      const roll = this.r.int(100);
      let action: Action;
      if (roll < 80) action = this.order(m);
      else if (roll < 92) action = { kind: 'cancelAll', instrument: m.params.instrument };
      else {
        // One side of the book emptied: the trader's orders there cancelled.
        const a = this.h.account(trader);
        const side = this.chance(50) ? 'buy' : 'sell';
        const ids = [...m.book.ordersOf(side)]
          .filter((o) => a !== undefined && o.owner === a.index)
          .map((o) => o.orderId);
        if (ids.length === 0) action = { kind: 'cancelAll' };
        else
          action = {
            kind: 'batch',
            actions: ids.slice(0, 8).map((orderId) => ({
              kind: 'cancel' as const,
              instrument: m.params.instrument,
              orderId,
            })),
          };
      }
      out.push(this.h.tx(trader, action));
    }
    return out;
  }

  // --- one block against the model ----------------------------------------------

  step(txs: SignedTx[], dt: number, oracle: Record<string, bigint>): void {
    const h = this.h;
    const state = h.ex.state;
    const previousMs = state.timeMs;
    const nowMs = previousMs + dt;
    const at = `seed ${this.seed} height ${state.height + 1} (t ${nowMs - DAY0_MS})`;
    if (dt === 0) this.stats.sameTimeBlocks++;

    // The feed after this block: a price sent is fresh now; one held back ages.
    for (const [u, p] of Object.entries(oracle)) this.feeds.set(u, { price: p, updatedMs: nowMs });
    const feedOf = (u: string): Feed | undefined => this.feeds.get(u);
    const staleOf = (u: string): boolean => {
      const f = feedOf(u);
      return f === undefined || nowMs - f.updatedMs > STALE_AFTER_MS;
    };

    // What the model needs of the state before the block: books, positions, cash, pools.
    const linearBefore = this.linear();
    const tops = new Map(linearBefore.map((m) => [m, topAt(m, nowMs)]));
    const accountsBefore = new Map<Account, AccountView>();
    for (const a of state.accounts) {
      accountsBefore.set(a, { cash: a.cashQuote, positions: positionsOf(state, a) });
    }
    const insuranceBefore = state.insuranceQuote;
    const feePoolBefore = state.feePoolQuote;
    const expected = new Map<Account, AccountView>();
    for (const [a, v] of accountsBefore) {
      const positions = new Map<MarketState, HeldPosition>();
      for (const [m, p] of v.positions) positions.set(m, { ...p });
      expected.set(a, { cash: v.cash, positions });
    }
    let insurance = insuranceBefore;
    let feePool = feePoolBefore;

    // Marks and funding of the markets live before the block.
    const marks = new Map<MarketState, bigint>();
    const rates = new Map<MarketState, bigint | null>();
    const fundingEvents: Extract<ExchangeEvent, { type: 'funding' }>[] = [];
    for (const m of linearBefore) {
      const feed = feedOf(m.params.underlying);
      if (feed === undefined) continue;
      const index = refIndexTicks(feed.price, m.params.tickSizeQuote);
      const top = tops.get(m)!;
      const f = this.funding.get(m);
      const mark = refMark(index, top, BigInt(m.params.markBandPpm), f?.sum ?? 0n, f?.count ?? 0n);
      marks.set(m, mark);
      const d = (index * BigInt(m.params.markBandPpm)) / 1_000_000n;
      if (top.bid !== undefined && top.ask !== undefined) {
        const mid = (top.bid + top.ask) / 2n;
        if (mid > index + d || mid < index - d) this.stats.midBanded++;
      }
      const f0 = this.funding.get(m);
      if (f0 !== undefined && f0.count > 0n && mark !== index) {
        if (mark === index + (index * (f0.sum / f0.count)) / 1_000_000n) this.stats.markFromBasis++;
      }
      if (f === undefined || m.listed) continue;
      const stale = staleOf(m.params.underlying);
      const seen = { samplesPaid: 0n };
      const premium = refPremium(index, top);
      if (premium === REF_PREMIUM_SAMPLE_MAX) this.stats.cappedPremiums++;
      const rate = refAdvanceFunding(
        fundingParams(m),
        f,
        BigInt(previousMs),
        BigInt(nowMs),
        premium,
        stale,
        seen,
      );
      rates.set(m, rate);
      if (rate === null) continue;
      const { fundingIntervalMs: interval, fundingSampleMs: sampleMs } = m.params;
      if (Math.floor(nowMs / interval) - Math.floor(previousMs / interval) > 1) {
        this.stats.skippedIntervals++;
      }
      if (stale) this.stats.staleIntervals++;
      else if (seen.samplesPaid < BigInt(interval / sampleMs)) this.stats.proratedPayments++;
      let paid = 0n;
      let received = 0n;
      for (const v of expected.values()) {
        const p = v.positions.get(m);
        if (p === undefined) continue;
        const delta = refFundingDelta(p.size, mark, kOf(m), rate);
        v.cash += delta;
        p.funding += delta;
        if (delta < 0n) paid -= delta;
        else received += delta;
      }
      // Each position's rounding is less than one quote unit.
      const holders = [...expected.values()].filter(
        (v) => (v.positions.get(m)?.size ?? 0n) !== 0n,
      ).length;
      assert.ok(
        paid - received < BigInt(Math.max(1, holders)),
        `${at}: funding dust ${paid - received}`,
      );
      insurance += paid - received;
      fundingEvents.push({
        type: 'funding',
        market: m.params.instrument,
        ratePpm: Number(rate),
        markTicks: Number(mark),
        paidQuote: paid,
        receivedQuote: received,
        dustQuote: paid - received,
      });
    }

    // Settlement TWAPs: every live dated future's expiry sees this block's fresh index.
    const settles = new Map<MarketState, { price: bigint; positions: number; dust: bigint }>();
    for (const m of linearBefore) {
      const hist = this.history.get(m);
      if (hist === undefined) continue;
      const u = m.params.underlying;
      const f = feedOf(u);
      hist.push({ timeMs: BigInt(nowMs), price: staleOf(u) || f === undefined ? null : f.price });
      if (m.expiryMs > nowMs) continue;
      const price = refSettlementPrice(hist, BigInt(m.expiryMs));
      if (price === null) {
        this.stats.waitedSettlements++;
        continue;
      }
      let total = 0n;
      let positions = 0;
      for (const v of expected.values()) {
        const p = v.positions.get(m);
        if (p === undefined || p.size === 0n) continue;
        const cash = refSettlementCash(p.size, price, BigInt(m.params.lotsPerBase));
        v.cash += cash;
        p.realized += cash - p.costBasis;
        p.size = 0n;
        total += cash;
        positions++;
      }
      assert.ok(-total < BigInt(Math.max(1, positions)), `${at}: settlement dust ${-total}`);
      feePool += -total;
      settles.set(m, { price, positions, dust: -total });
      this.stats.ordersCancelledAtSettlement += m.book.orderCount;
    }

    // The block.
    h.oracle = oracle;
    const block = h.nextBlock(txs, dt);
    let result: BlockResult;
    try {
      result = h.ex.finalizeBlock(block);
    } catch (e) {
      throw new Error(`${at}: ${(e as Error).message}`, { cause: e });
    }
    if (this.twin !== null) {
      const other = this.twin.ex.finalizeBlock(block);
      assert.equal(
        JSON.stringify(other, replacer),
        JSON.stringify(result, replacer),
        `${at}: a restored node ran the block differently`,
      );
      if (--this.twin.left === 0) this.twin = null;
    }
    this.stats.blocks++;

    // Trades of the block (transactions and auction uncrosses) move cash, positions and the fee pool.
    const trade = (
      a: Account,
      m: MarketState,
      side: 'buy' | 'sell',
      priceTicks: number,
      lots: number,
      fee: bigint,
    ): void => {
      let v = expected.get(a);
      if (v === undefined) {
        v = { cash: 0n, positions: new Map() };
        expected.set(a, v);
      }
      const notional = BigInt(priceTicks) * BigInt(lots) * kOf(m);
      v.cash += side === 'buy' ? -notional : notional;
      v.cash -= fee;
      feePool += fee;
      const p = v.positions.get(m) ?? { size: 0n, funding: 0n, costBasis: 0n, realized: 0n };
      // The basis is the signed entry notional of the open size; a close removes
      // its pro-rata share (truncated toward zero) and realizes the rest.
      const q = side === 'buy' ? BigInt(lots) : -BigInt(lots);
      const price = BigInt(priceTicks) * kOf(m);
      if (p.size === 0n || p.size > 0n === q > 0n) p.costBasis += q * price;
      else {
        const abs = p.size < 0n ? -p.size : p.size;
        const close = lots < abs ? BigInt(lots) : abs;
        const closeSigned = q > 0n ? close : -close;
        const removed = (p.costBasis * close) / abs;
        p.realized += -closeSigned * price - removed;
        p.costBasis -= removed;
        if (BigInt(lots) > close) p.costBasis = (q - closeSigned) * price;
      }
      p.size += q;
      if (p.size === 0n) p.costBasis = 0n;
      v.positions.set(m, p);
    };
    const byName = (name: string): MarketState =>
      state.marketByName.get(name) ?? state.markets.find((x) => x.params.instrument === name)!;
    // The uncrosses, at the start of the block, trade before the transactions.
    for (const e of result.events) {
      if (e.type === 'auctionTrade') {
        const m = byName(e.market);
        trade(state.accounts[e.buyAccount]!, m, 'buy', e.priceTicks, e.sizeLots, e.buyFeeQuote);
        trade(state.accounts[e.sellAccount]!, m, 'sell', e.priceTicks, e.sizeLots, e.sellFeeQuote);
        this.stats.fills++;
      }
      if (e.type === 'auctionStarted') this.stats.auctions++;
      if (e.type === 'orderExpired') this.stats.expired++;
      // Accounts here hold far more than their positions could lose.
      assert.ok(
        !['liquidation', 'liquidationFill', 'deleverage', 'insuranceCover'].includes(e.type),
        `${at}: unexpected ${e.type}`,
      );
    }

    // Transactions run in the documented in-block order: cancels, then
    // post-only placements, then the rest, stable; a batch in its latest class.
    const classOf = (a: Action): number =>
      a.kind === 'batch'
        ? Math.max(...a.actions.map(classOf))
        : a.kind === 'cancel' || a.kind === 'cancelAll'
          ? 0
          : a.kind === 'placeOrder' && a.timeInForce === 'postOnly'
            ? 1
            : 2;
    const order = txs
      .map((_, i) => i)
      .sort((i, j) => classOf(txs[i]!.action) - classOf(txs[j]!.action) || i - j);
    for (const i of order) {
      const r = result.results[i]!;
      const tx = txs[i]!;
      const account = state.principals.get(bytesKey(tx.account))?.subaccounts.get(tx.subaccount);
      const actions = tx.action.kind === 'batch' ? tx.action.actions : [tx.action];
      r.actions.forEach((ar, j) => {
        const action = actions[j]!;
        if (!ar.ok) return;
        if (action.kind === 'faucet') {
          let v = expected.get(account!);
          if (v === undefined) {
            v = { cash: 0n, positions: new Map() };
            expected.set(account!, v);
          }
          v.cash += action.amountQuote;
        }
        if (action.kind !== 'placeOrder' || ar.order === undefined) return;
        const m = byName(action.instrument);
        for (const f of ar.order.fills) {
          this.stats.fills++;
          const maker = state.accounts[f.makerAccount]!;
          trade(account!, m, action.side, f.priceTicks, f.sizeLots, f.takerFeeQuote);
          const makerSide = action.side === 'buy' ? 'sell' : 'buy';
          trade(maker, m, makerSide, f.priceTicks, f.sizeLots, f.makerFeeQuote);
        }
      });
    }
    try {
      this.check({
        nowMs,
        previousMs,
        txs,
        marks,
        rates,
        fundingEvents,
        settles,
        result,
        expected,
        insurance,
        feePool,
        linearBefore,
      });
    } catch (e) {
      // An assertion names what differs; anything else is a fault of the driver: its stack.
      const detail = e instanceof assert.AssertionError ? '' : `\n${(e as Error).stack}`;
      throw new Error(`${at}: ${(e as Error).message}${detail}`, { cause: e });
    }

    // Listings of this block start their TWAP history here.
    for (const e of result.events) {
      if (e.type !== 'marketListed') continue;
      const m = state.marketByName.get(e.market)!;
      if (m.instrument.kind !== 'future') continue;
      const u = m.params.underlying;
      const f = feedOf(u);
      this.history.set(m, [
        { timeMs: BigInt(nowMs), price: staleOf(u) || f === undefined ? null : f.price },
      ]);
      // Listed this block: its mark is its index (no samples, an empty book).
      if (f !== undefined) {
        assert.equal(
          BigInt(m.markTicks),
          refIndexTicks(f.price, m.params.tickSizeQuote),
          `${at}: ${e.market} listed at its index`,
        );
      }
    }
  }

  /** The block's effects against the model's; the caller prefixes what fails with the block. */
  check(x: {
    nowMs: number;
    previousMs: number;
    txs: SignedTx[];
    marks: Map<MarketState, bigint>;
    rates: Map<MarketState, bigint | null>;
    fundingEvents: Extract<ExchangeEvent, { type: 'funding' }>[];
    settles: Map<MarketState, { price: bigint; positions: number; dust: bigint }>;
    result: BlockResult;
    expected: Map<Account, AccountView>;
    insurance: bigint;
    feePool: bigint;
    linearBefore: MarketState[];
  }): void {
    const state = this.h.ex.state;
    // Index and mark of every market live before the block and not settled in it.
    for (const m of x.linearBefore) {
      if (x.settles.has(m)) continue;
      const mark = x.marks.get(m);
      if (mark === undefined) continue;
      const feed = this.feeds.get(m.params.underlying)!;
      assert.equal(
        BigInt(m.indexTicks),
        refIndexTicks(feed.price, m.params.tickSizeQuote),
        `${m.params.instrument} index`,
      );
      assert.equal(BigInt(m.markTicks), mark, `${m.params.instrument} mark`);
      if (m.listed)
        assert.equal(
          m.markTicks,
          m.indexTicks,
          `${m.params.instrument}: a future's mark is its index`,
        );
      if (mark !== BigInt(m.indexTicks)) this.stats.markOffIndex++;
    }
    // Funding: samples, rate, events.
    const events = x.result.events.filter((e) => e.type === 'funding');
    assert.deepEqual(
      JSON.stringify(events, replacer),
      JSON.stringify(x.fundingEvents, replacer),
      'funding events',
    );
    for (const [m, f] of this.funding) {
      assert.equal(BigInt(m.premiumCount), f.count, `${m.params.instrument} sample count`);
      assert.equal(BigInt(m.premiumSumPpm), f.sum, `${m.params.instrument} sample sum`);
      const rate = x.rates.get(m);
      if (rate !== null && rate !== undefined) {
        assert.equal(BigInt(m.lastFundingRatePpm), rate, `${m.params.instrument} last rate`);
      }
    }
    for (const e of x.fundingEvents) {
      this.stats.payments++;
      if (e.paidQuote > 0n) this.stats.paymentsMovingMoney++;
      const m = state.marketByName.get(e.market)!;
      if (Math.abs(e.ratePpm) === m.params.fundingCapPpm && e.ratePpm !== 0)
        this.stats.cappedRates++;
    }
    // Settlements.
    const settled = x.result.events.filter(
      (e): e is Extract<ExchangeEvent, { type: 'marketSettled' }> => e.type === 'marketSettled',
    );
    const futuresSettled = settled.filter(
      (e) => !e.market.endsWith('-C') && !e.market.endsWith('-P'),
    );
    assert.deepEqual(
      futuresSettled.map((e) => e.market).sort(),
      [...x.settles.keys()].map((m) => m.params.instrument).sort(),
      'futures settled',
    );
    for (const e of futuresSettled) {
      const m = [...x.settles.keys()].find((y) => y.params.instrument === e.market)!;
      const { price } = x.settles.get(m)!;
      assert.equal(e.settlementPriceQuote, price, `${e.market} settlement price`);
      assert.equal(e.valueQuote, price, `${e.market} settlement value`);
      const count = x.settles.get(m)!.positions;
      assert.equal(e.dustQuote, x.settles.get(m)!.dust, `${e.market} settlement dust`);
      assert.equal(e.positions, count, `${e.market} positions closed`);
      assert.ok(m.retired, `${e.market} retired`);
      assert.ok(
        [...state.orders.values()].every((o) => state.markets[o.market] !== m),
        `${e.market}: orders cancelled`,
      );
      assert.equal(m.book.orderCount, 0, `${e.market}: book empty`);
      this.history.delete(m);
      this.stats.settlements++;
      this.stats.settledPositions += count;
    }
    // Expired and waiting: halted (said once, in the first block past expiry), taking no orders.
    const haltedNow = new Set(
      x.result.events
        .filter((e) => e.type === 'marketHalted')
        .map((e) => (e as { market: string }).market),
    );
    for (const m of state.markets) {
      if (!m.listed || m.retired || m.instrument.kind !== 'future') continue;
      const waiting = m.expiryMs <= x.nowMs;
      if (waiting) assert.ok(m.halted, `${m.params.instrument} expired and waiting is halted`);
      const first = waiting && !(m.expiryMs <= x.previousMs && x.linearBefore.includes(m));
      assert.equal(
        haltedNow.has(m.params.instrument),
        first,
        `${m.params.instrument}: marketHalted in the first block past expiry`,
      );
    }
    x.txs.forEach((tx, i) => {
      const action = tx.action;
      if (action.kind !== 'placeOrder') return;
      const m = state.marketByName.get(action.instrument);
      if (m === undefined || !m.listed || m.expiryMs > x.nowMs) return;
      const r = x.result.results[i]!;
      const ar = r.actions[0]!;
      this.stats.refusedExpired++;
      assert.ok(
        r.ok && !ar.ok && ar.code === 'MarketHalted',
        `an order on expired ${action.instrument}: ${JSON.stringify(r, replacer)}`,
      );
    });
    // Accounts: cash and positions.
    for (const [a, v] of x.expected) {
      assert.equal(a.cashQuote, v.cash, `account ${a.index}: cash`);
      const actual = positionsOf(state, a);
      for (const [m, p] of v.positions) {
        if (x.settles.has(m)) {
          assert.equal(
            positionOf(a, m),
            undefined,
            `account ${a.index}: ${m.params.instrument} record dropped`,
          );
          continue;
        }
        const got = actual.get(m);
        assert.equal(
          BigInt(got?.size ?? 0),
          p.size,
          `account ${a.index}: ${m.params.instrument} size`,
        );
        if (got !== undefined) {
          const what = `account ${a.index}: ${m.params.instrument}`;
          assert.equal(got.funding, p.funding, `${what} funding`);
          assert.equal(got.costBasis, p.costBasis, `${what} cost basis`);
          assert.equal(got.realized, p.realized, `${what} realized PnL`);
        }
        actual.delete(m);
      }
      for (const [m, p] of actual) {
        assert.equal(
          p.size,
          0n,
          `account ${a.index}: an unexpected ${m.params.instrument} position`,
        );
      }
    }
    // equity = cash + Σ size × mark × k
    for (const a of state.accounts) {
      let equity = a.cashQuote;
      for (const [m, p] of positionsOf(state, a)) equity += p.size * BigInt(m.markTicks) * kOf(m);
      assert.equal(equityQuote(state, a), equity, `account ${a.index}: equity`);
    }
    assert.equal(state.insuranceQuote, x.insurance, 'insurance fund');
    assert.equal(state.feePoolQuote, x.feePool, 'fee pool');
    let cash = 0n;
    for (const a of state.accounts) cash += a.cashQuote;
    assert.equal(
      cash + state.insuranceQuote + state.feePoolQuote,
      state.depositedQuote - state.withdrawnQuote,
      'collateral conserved',
    );
  }
}

function newStats(): Stats {
  return {
    blocks: 0,
    payments: 0,
    paymentsMovingMoney: 0,
    skippedIntervals: 0,
    staleIntervals: 0,
    proratedPayments: 0,
    cappedRates: 0,
    settlements: 0,
    settledPositions: 0,
    waitedSettlements: 0,
    markOffIndex: 0,
    midBanded: 0,
    markFromBasis: 0,
    cappedPremiums: 0,
    ordersCancelledAtSettlement: 0,
    refusedExpired: 0,
    auctions: 0,
    fills: 0,
    expired: 0,
    sameTimeBlocks: 0,
  };
}

function run(seed: number, blocks: number, stats: Stats): void {
  const model = new Model(seed, stats);
  const h = model.h;
  for (const t of TRADERS) {
    model.step([h.tx(t, { kind: 'faucet', amountQuote: 1_000_000n * USDC })], 1_000, {
      BTC: model.price.BTC!,
      ETH: model.price.ETH!,
    });
  }
  for (let b = 0; b < blocks; b++) {
    const txs = model.txs();
    const oracle = model.oracle();
    model.step(txs, model.dt(), oracle);
    if (model.twin === null && b % 23 === 11) {
      const bytes = encodeSnapshot(h.ex);
      const restored = decodeSnapshot(bytes, { checkInvariants: true });
      assert.deepEqual(restored.appHash, h.ex.appHash, `seed ${seed}: restored appHash`);
      assert.deepEqual(encodeSnapshot(restored), bytes, `seed ${seed}: snapshot re-encodes`);
      model.twin = { ex: restored, left: 4 };
    }
  }
}

test('marks, funding and dated-futures settlement equal the reference model, block by block', () => {
  const stats = newStats();
  for (let seed = Number(process.env.SEED0 ?? 1); seed <= Number(process.env.SEED1 ?? 6); seed++)
    run(seed, Number(process.env.BLOCKS ?? 150), stats);
  // The flows must reach what they claim to check.
  for (const [what, least] of [
    ['payments', 300],
    ['paymentsMovingMoney', 200],
    ['skippedIntervals', 20],
    ['staleIntervals', 10],
    ['proratedPayments', 10],
    ['cappedRates', 20],
    ['cappedPremiums', 1],
    ['markFromBasis', 10],
    ['midBanded', 50],
    ['settlements', 20],
    ['settledPositions', 20],
    ['waitedSettlements', 1],
    ['ordersCancelledAtSettlement', 10],
    ['refusedExpired', 1],
    ['auctions', 10],
    ['fills', 300],
    ['expired', 20],
    ['sameTimeBlocks', 20],
  ] as const) {
    assert.ok(stats[what] >= least, `only ${stats[what]} ${what}: ${JSON.stringify(stats)}`);
  }
});
