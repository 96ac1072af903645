// European options and dated futures, from listing to settlement, against the
// reference model of options_reference.ts (written from the docs). Seeded runs
// of blocks whose gaps cross several daily expiries (hours, minutes, seconds,
// exactly at expiry and inside the settlement window), a trusted feed whose
// index and smiles move, jump and go stale, and traders (one with a second
// subaccount it moves collateral to) buying and selling calls, puts and dated
// futures: makers, takers, market orders, shorts, reduce-only closes,
// cancels. After every block the exchange must agree with the model on every
// fill's premium cash and fees (tiers by lifetime volume), every account's
// cash, each settlement (price from the index history, value, each holder's
// cash, dust, orders and records gone, open interest zero, the name
// unknown), the open interest of every live market, collateral conservation,
// the codes of orders on expired, settled, unmarked and stale markets, and
// the documented floors, cases and monotonicity of the scenario margin; and a
// node restored from a snapshot in mid-run must run the next blocks to the
// same results and appHash.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../src/lib/prng.ts';
import { daysFromCivil, MS_PER_DAY } from '../../src/exchange/instruments/index.ts';
import { executionOrder } from '../../src/exchange/ordering.ts';
import {
  initialMarginQuote,
  maintenanceMarginQuote,
  marginForOrder,
} from '../../src/exchange/margin.ts';
import { positionOf, sizeIn } from '../../src/exchange/position.ts';
import { decodeSnapshot, encodeSnapshot } from '../../src/exchange/snapshot.ts';
import type { Exchange, Genesis } from '../../src/exchange/index.ts';
import type { Block } from '../../src/exchange/index.ts';
import { bytesKey } from '../../src/exchange/keys.ts';
import type { BlockResult, ExchangeEvent } from '../../src/exchange/results.ts';
import type { Account, MarketState } from '../../src/exchange/state.ts';
import type { Action, PlaceOrder, SignedTx } from '../../src/exchange/tx/types.ts';
import type { SmileObservation } from '../../src/exchange/oracle/index.ts';
import type { Key } from './helpers.ts';
import { Harness, USDC, dailyListingGenesis, key, limit, replacer } from './helpers.ts';
import type { PricePoint, RefTier } from './options_reference.ts';
import {
  refFillCash,
  refMaintenanceOf,
  refMakerFee,
  refNotional,
  refOrderGate,
  refSettlementCash,
  refSettlementPrice,
  refSettlementValue,
  refShortMinFloor,
  refUnshockedShortFloors,
  refTakerFee,
  refTier,
} from './options_reference.ts';

const SECOND_MS = 1_000;
const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const WAD = 10n ** 18n;
const YEAR_MS = 365n * 86_400_000n;
/** Monday 2 March 2026, 00:00 UTC: the first daily expiry is at 08:00. */
const DAY0_MS = daysFromCivil(2026, 3, 2) * MS_PER_DAY;
const STALE_AFTER_MS = 60_000;
/** How long a smile stays stale before maintenance takes a short's cushion (docs/exchange.md). */
const GRACE_MS = 10 * MINUTE_MS;
const TRADERS = [0, 1, 2, 3, 4].map((i) => key(`options-model-${i}`));
const UNDERLYINGS = ['BTC', 'ETH'] as const;
/** Tiers low enough for option premiums to climb them, the top one with a rebate. */
const TIERS: RefTier[] = [
  { volumeQuoteMin: 0n, makerFeePpm: 200, takerFeePpm: 500 },
  { volumeQuoteMin: 2_000n * USDC, makerFeePpm: 0, takerFeePpm: 400 },
  { volumeQuoteMin: 8_000n * USDC, makerFeePpm: -100, takerFeePpm: 300 },
];

function optionsGenesis(seed: number): Genesis {
  const g = dailyListingGenesis(DAY0_MS + (seed % 3) * 37 * MINUTE_MS);
  g.listing!.schedule = { ...g.listing!.schedule, dailies: 2 };
  // Every other seed marks options once per interval (their mark is then state).
  if (seed % 2 === 1) g.listing!.markIntervalMs = 1_000 * (1 + (seed % 5));
  g.feeTiers = TIERS.map((t) => ({ ...t }));
  return g;
}

interface Feed {
  price: bigint;
  updatedMs: number;
}

interface Stats {
  blocks: number;
  fills: number;
  optionFills: number;
  rebates: number;
  settlements: number;
  optionSettlements: number;
  inTheMoney: number;
  settledPositions: number;
  waited: number;
  cancelledAtSettlement: number;
  refused: Map<string, number>;
  staleSmileBlocks: number;
  /** Options with a fresh smile left at their last mark by a stale index. */
  staleIndexKeptMarks: number;
  liquidationBlocks: number;
  marginChecks: number;
  singleShortCases: number;
  singleUnshockedShortCases: number;
  /** Of those, within the grace and past it. */
  unshockedWithinGrace: number;
  unshockedPastGrace: number;
  /** Accounts holding only such shorts, one of them within the grace. */
  onlyUnshockedWithinGrace: number;
  unshockedShortAccounts: number;
  restores: number;
  transfers: number;
  reduceOnlyFills: number;
}

function newStats(): Stats {
  return {
    blocks: 0,
    fills: 0,
    optionFills: 0,
    rebates: 0,
    settlements: 0,
    optionSettlements: 0,
    inTheMoney: 0,
    settledPositions: 0,
    waited: 0,
    cancelledAtSettlement: 0,
    refused: new Map(),
    staleSmileBlocks: 0,
    staleIndexKeptMarks: 0,
    liquidationBlocks: 0,
    marginChecks: 0,
    singleShortCases: 0,
    singleUnshockedShortCases: 0,
    unshockedWithinGrace: 0,
    unshockedPastGrace: 0,
    onlyUnshockedWithinGrace: 0,
    unshockedShortAccounts: 0,
    restores: 0,
    transfers: 0,
    reduceOnlyFills: 0,
  };
}

function smileKeyOf(underlying: string, expiryMs: number): string {
  return `${underlying}:${expiryMs}`;
}

function option(m: MarketState): { strikeQuote: bigint; isCall: boolean } | null {
  return m.instrument.kind === 'option' ? m.instrument : null;
}

/** A probe: an order whose refusal code (or passage) the model predicts. */
interface Probe {
  tx: number;
  name: string;
  expected: string | null;
}

class Model {
  readonly h: Harness;
  readonly r: Prng;
  readonly seed: number;
  readonly stats: Stats;
  readonly feeds = new Map<string, Feed>();
  /** The fresh index of each underlying at every block (null while stale). */
  readonly history = new Map<string, PricePoint[]>();
  readonly price: Record<string, bigint> = { BTC: 50_000n * USDC, ETH: 3_000n * USDC };
  /** Implied volatility level per underlying, ppm. */
  readonly vol: Record<string, number> = { BTC: 600_000, ETH: 800_000 };
  readonly silent: Record<string, number> = { BTC: 0, ETH: 0 };
  /** Blocks left in which no smile is sent (all of them go stale after staleAfterMs). */
  smileSilent = 0;
  /** When each (underlying, expiry)'s smile was last sent. */
  readonly smileSent = new Map<string, number>();
  /** Names settled (never listed again: a name carries its expiry). */
  readonly settled: string[] = [];
  /** Σ faucet draws: deposits − withdrawals. */
  deposits = 0n;
  twin: { ex: Exchange; left: number } | null = null;

  constructor(seed: number, stats: Stats) {
    this.seed = seed;
    this.stats = stats;
    this.h = new Harness(optionsGenesis(seed));
    this.r = new Prng(seed);
    for (const u of UNDERLYINGS) this.history.set(u, []);
  }

  chance(percent: number): boolean {
    return this.r.int(100) < percent;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.r.int(xs.length)]!;
  }

  live(): MarketState[] {
    return this.h.ex.state.markets.filter((m) => m.listed && !m.retired);
  }

  account(k: Key, sub = 0): Account | undefined {
    return this.h.account(k, sub);
  }

  // --- the flow ------------------------------------------------------------------

  dt(): number {
    const t = this.h.timeMs;
    const expiries = this.live()
      .map((m) => m.expiryMs)
      .filter((e) => e > t);
    const next = expiries.length > 0 ? Math.min(...expiries) : t + MS_PER_DAY;
    const roll = this.r.int(100);
    if (roll < 4) return 0;
    if (roll < 40) return 1 + this.r.int(30 * SECOND_MS);
    if (roll < 70) return MINUTE_MS + this.r.int(9 * MINUTE_MS);
    if (roll < 80) {
      // Toward the next expiry: its window's start, inside the window, exactly at it, just past it.
      const target = this.pick([
        next - 30 * MINUTE_MS,
        next - 30 * MINUTE_MS + 1 + this.r.int(29 * MINUTE_MS),
        next - 1 - this.r.int(5 * MINUTE_MS),
        next,
        next + 1 + this.r.int(3 * MINUTE_MS),
      ]);
      if (target > t) return target - t;
      return 1 + this.r.int(5 * MINUTE_MS);
    }
    if (roll < 98) {
      // An hour or so, but not past the coming window's start (so that the window is walked through).
      const hours = 30 * MINUTE_MS + this.r.int(HOUR_MS);
      const cap = next - 31 * MINUTE_MS - t;
      return cap > 0 ? Math.min(hours, cap) : 1 + this.r.int(10 * MINUTE_MS);
    }
    return 2 * HOUR_MS + this.r.int(6 * HOUR_MS);
  }

  oracle(): Record<string, bigint> {
    const out: Record<string, bigint> = {};
    for (const u of UNDERLYINGS) {
      let p = this.price[u]!;
      const roll = this.r.int(100);
      if (roll < 60) p += (p * BigInt(this.r.int(61) - 30)) / 10_000n;
      else if (roll < 75) p += (p * BigInt(this.r.int(601) - 300)) / 10_000n;
      // Keep the strikes listed at the start within reach, so that options end in and out of the money.
      const base = u === 'BTC' ? 50_000n * USDC : 3_000n * USDC;
      if (p > (base * 108n) / 100n || p < (base * 92n) / 100n) p = base;
      this.price[u] = p;
      if (this.silent[u]! > 0) this.silent[u]!--;
      else if (this.chance(4)) this.silent[u] = 1 + this.r.int(4);
      if (this.silent[u] === 0) out[u] = p;
    }
    return out;
  }

  /** Smiles for every live expiry, total variance from a volatility level; none while silent. */
  smiles(nowMs: number): SmileObservation[] {
    if (this.smileSilent > 0) {
      this.smileSilent--;
      return [];
    }
    if (this.chance(3)) {
      this.smileSilent = 1 + this.r.int(3);
      return [];
    }
    const out: SmileObservation[] = [];
    const seen = new Set<string>();
    for (const m of this.live()) {
      const k = smileKeyOf(m.params.underlying, m.expiryMs);
      if (m.expiryMs <= nowMs || seen.has(k)) continue;
      seen.add(k);
      const u = m.params.underlying;
      if (this.chance(20)) {
        this.vol[u] = Math.max(
          200_000,
          Math.min(1_500_000, this.vol[u]! + this.r.int(200_001) - 100_000),
        );
      }
      const t = BigInt(m.expiryMs - nowMs);
      const iv = BigInt(this.vol[u]!);
      // w = iv² × T (years), in wads; a small skew around it.
      const a = (iv * iv * 10n ** 6n * t) / YEAR_MS;
      const b = (BigInt(this.r.int(50)) * WAD) / 1_000n;
      const rho = (BigInt(this.r.int(801) - 400) * WAD) / 1_000n;
      out.push({
        underlying: u,
        expiryMs: m.expiryMs,
        svi: { a: a + 1n, b, rho, m: 0n, sigma: WAD / 10n },
      });
    }
    return out;
  }

  randomOrder(m: MarketState, trader: Key, sub: number): PlaceOrder {
    const name = m.params.instrument;
    const mark = m.markTicks > 0 ? m.markTicks : 100;
    const a = this.account(trader, sub);
    const held = a === undefined ? 0 : sizeIn(a, m);
    const roll = this.r.int(100);
    const size = 1 + this.r.int(this.chance(80) ? 8 : 40);
    if (roll < 15 && held !== 0) {
      // Closes: reduce-only, whole or in part, limit or market.
      const side = held > 0 ? 'sell' : 'buy';
      const lots = this.chance(50) ? Math.abs(held) : 1 + this.r.int(Math.abs(held) + 3);
      if (this.chance(40)) {
        return {
          ...limit(name, side, 1, lots, { timeInForce: 'IOC', reduceOnly: true }),
          type: 'market',
          priceTicks: undefined,
        };
      }
      const px = side === 'sell' ? Math.max(1, mark - this.r.int(5)) : mark + this.r.int(5);
      return limit(name, side, px, lots, {
        reduceOnly: true,
        timeInForce: this.pick(['GTC', 'IOC', 'FOK']),
      });
    }
    const side = this.chance(50) ? 'buy' : 'sell';
    const spread = Math.max(1, Math.floor(mark / 50));
    if (roll < 55) {
      // A maker near the mark.
      const off = this.r.int(spread + 1);
      const px = Math.max(1, side === 'buy' ? mark - off : mark + off);
      return limit(name, side, px, size, { timeInForce: this.chance(25) ? 'postOnly' : 'GTC' });
    }
    if (roll < 85) {
      // A taker at or through the other side.
      const best = side === 'buy' ? m.book.bestAskTicks() : m.book.bestBidTicks();
      const base = best ?? mark;
      const through = this.r.int(spread + 1);
      const px = Math.max(1, side === 'buy' ? base + through : base - through);
      return limit(name, side, px, size, { timeInForce: this.pick(['IOC', 'GTC', 'FOK']) });
    }
    // A market order (bounded by the slippage of the option's mark).
    return {
      kind: 'placeOrder',
      instrument: name,
      side,
      type: 'market',
      sizeLots: size,
      timeInForce: this.pick(['IOC', 'FOK']),
      reduceOnly: false,
      stp: 'cancelResting',
    };
  }

  txs(
    nowMs: number,
    probes: Probe[],
    staleIndex: Set<string>,
    staleSmile: Set<string>,
  ): SignedTx[] {
    const h = this.h;
    const out: SignedTx[] = [];
    const live = this.live();
    const n = this.r.int(12);
    for (let i = 0; i < n && live.length > 0; i++) {
      const trader = this.pick(TRADERS);
      const sub = trader === TRADERS[0] && this.chance(50) ? 1 : 0;
      const roll = this.r.int(100);
      let action: Action;
      if (roll < 82) {
        const options = this.focus(live);
        const pool = options.length > 0 && this.chance(85) ? options : live;
        action = this.randomOrder(this.pick(pool), trader, sub);
      } else if (roll < 90) {
        action = { kind: 'cancelAll', instrument: this.pick(live).params.instrument };
      } else if (roll < 95) {
        this.stats.transfers++;
        action = {
          kind: 'transfer',
          fromSubaccount: sub,
          toSubaccount: 1 - sub,
          amountQuote: BigInt(1 + this.r.int(20_000)) * USDC,
        };
        out.push(h.tx(TRADERS[0]!, action, { subaccount: sub }));
        continue;
      } else {
        action = { kind: 'cancelAll' };
      }
      out.push(h.tx(trader, action, { subaccount: sub }));
    }
    // Probes: an order whose gate the model decides.
    const gateOf = (m: MarketState | undefined, reduceOnly: boolean): string | null => {
      const settles = m !== undefined && m.expiryMs <= nowMs && this.settlesNow(m);
      const u = m?.params.underlying ?? 'BTC';
      const k = m === undefined ? '' : smileKeyOf(u, m.expiryMs);
      const smileStale = m !== undefined && m.instrument.kind === 'option' && staleSmile.has(k);
      return refOrderGate({
        live: m !== undefined && !settles,
        expired: m !== undefined && m.expiryMs <= nowMs,
        // An option is marked in this block if it was before, or its smile is fresh now.
        marked:
          m !== undefined && (m.markTicks > 0 || (m.instrument.kind === 'option' && !smileStale)),
        indexStale: staleIndex.has(u),
        smileStale,
        reduceOnly,
      });
    };
    const probeCount = this.r.int(3);
    for (let i = 0; i < probeCount; i++) {
      const trader = this.pick(TRADERS);
      const roll = this.r.int(100);
      let name: string;
      let m: MarketState | undefined;
      if (roll < 25 && this.settled.length > 0) {
        name = this.pick(this.settled);
        m = undefined;
      } else {
        const expired = live.filter((x) => x.expiryMs <= nowMs);
        const options = live.filter((x) => x.instrument.kind === 'option');
        m =
          roll < 60 && expired.length > 0
            ? this.pick(expired)
            : this.pick(options.length > 0 ? options : live);
        name = m.params.instrument;
      }
      const a = this.account(trader);
      const held = a !== undefined && m !== undefined ? sizeIn(a, m) : 0;
      const reduceOnly = held !== 0 && this.chance(40);
      const side = reduceOnly ? (held > 0 ? 'sell' : 'buy') : this.chance(50) ? 'buy' : 'sell';
      const mark = m !== undefined && m.markTicks > 0 ? m.markTicks : 100;
      // Resting far from the market, one lot: nothing but the gates can refuse it
      // (and a reduce-only one, as IOC, cancels what does not fill).
      const px = side === 'buy' ? Math.max(1, Math.floor(mark / 3)) : mark * 3;
      const action = limit(name, side, px, 1, {
        reduceOnly,
        timeInForce: reduceOnly ? 'IOC' : 'GTC',
      });
      probes.push({ tx: out.length, name, expected: gateOf(m, reduceOnly) });
      out.push(h.tx(trader, action));
    }
    return out;
  }

  /**
   * The options traded: per underlying and expiry, the call and put of the
   * two strikes nearest the index (one in, one out of the money), so that
   * books meet.
   */
  focus(live: MarketState[]): MarketState[] {
    const out: MarketState[] = [];
    const groups = new Map<string, MarketState[]>();
    for (const m of live) {
      if (m.instrument.kind !== 'option' || m.markTicks === 0) continue;
      const k = smileKeyOf(m.params.underlying, m.expiryMs);
      groups.set(k, [...(groups.get(k) ?? []), m]);
    }
    for (const m of live) if (m.instrument.kind === 'future' && m.markTicks > 0) out.push(m);
    for (const g of groups.values()) {
      const index = this.price[g[0]!.params.underlying]!;
      const distance = (m: MarketState): bigint => {
        const d = option(m)!.strikeQuote - index;
        return d < 0n ? -d : d;
      };
      const strikes = [...new Set(g.map((m) => option(m)!.strikeQuote))].sort((x, y) => {
        const dx = distance(g.find((m) => option(m)!.strikeQuote === x)!);
        const dy = distance(g.find((m) => option(m)!.strikeQuote === y)!);
        return dx < dy ? -1 : dx > dy ? 1 : 0;
      });
      const near = new Set(strikes.slice(0, 2));
      out.push(...g.filter((m) => near.has(option(m)!.strikeQuote)));
    }
    return out;
  }

  /** Whether a live market past its expiry settles in the coming block (its TWAP has a price). */
  settlesNow(m: MarketState): boolean {
    return refSettlementPrice(this.history.get(m.params.underlying)!, BigInt(m.expiryMs)) !== null;
  }

  // --- one block against the model ----------------------------------------------

  step(
    txsOf: (
      nowMs: number,
      probes: Probe[],
      staleIndex: Set<string>,
      staleSmile: Set<string>,
    ) => SignedTx[],
    dt: number,
  ): void {
    const h = this.h;
    const state = h.ex.state;
    const nowMs = state.timeMs + dt;
    const at = `seed ${this.seed} height ${state.height + 1} (t ${nowMs - DAY0_MS})`;
    const oracle = this.oracle();
    for (const [u, p] of Object.entries(oracle)) this.feeds.set(u, { price: p, updatedMs: nowMs });
    const staleIndex = new Set<string>();
    for (const u of UNDERLYINGS) {
      const f = this.feeds.get(u);
      const stale = f === undefined || nowMs - f.updatedMs > STALE_AFTER_MS;
      if (stale) staleIndex.add(u);
      this.history.get(u)!.push({ timeMs: BigInt(nowMs), price: stale ? null : f.price });
    }
    const smiles = this.smiles(nowMs);
    for (const s of smiles) this.smileSent.set(smileKeyOf(s.underlying, s.expiryMs), nowMs);
    const staleSmile = new Set<string>();
    for (const m of this.live()) {
      const k = smileKeyOf(m.params.underlying, m.expiryMs);
      const sent = this.smileSent.get(k);
      if (sent === undefined || nowMs - sent > STALE_AFTER_MS) staleSmile.add(k);
    }
    if (staleSmile.size > 0) this.stats.staleSmileBlocks++;

    const probes: Probe[] = [];
    // Nonces are taken from the block's time (an hour's gap would leave older ones stale).
    h.timeMs = nowMs;
    const txs = txsOf(nowMs, probes, staleIndex, staleSmile);
    h.timeMs = nowMs - dt;

    // The state before the block, as the model needs it.
    const liveBefore = this.live();
    const marksBefore = new Map(liveBefore.map((m) => [m, m.markTicks]));
    const cashBefore = new Map<Account, bigint>();
    const volume = new Map<Account, bigint>();
    const sizes = new Map<Account, Map<MarketState, bigint>>();
    for (const a of state.accounts) {
      cashBefore.set(a, a.cashQuote);
      volume.set(a, a.volumeQuote);
      const held = new Map<MarketState, bigint>();
      for (const m of liveBefore) {
        const p = positionOf(a, m);
        if (p !== undefined && p.sizeLots !== 0) held.set(m, BigInt(p.sizeLots));
      }
      sizes.set(a, held);
    }
    const expected = new Map(cashBefore);
    const ordersBefore = new Map<MarketState, number[]>();
    for (const m of liveBefore) {
      ordersBefore.set(
        m,
        [...m.book.ordersOf('buy'), ...m.book.ordersOf('sell')].map((o) => o.orderId),
      );
    }

    // Settlements: each expired market whose TWAP has a price, in the model's eyes.
    const settling = new Map<string, { m: MarketState; price: bigint; value: bigint }>();
    for (const m of liveBefore) {
      if (m.expiryMs > nowMs) continue;
      const price = refSettlementPrice(this.history.get(m.params.underlying)!, BigInt(m.expiryMs));
      if (price === null) continue;
      const value = refSettlementValue(price, option(m));
      settling.set(m.params.instrument, { m, price, value });
      for (const [a, held] of sizes) {
        const s = held.get(m);
        if (s === undefined) continue;
        expected.set(
          a,
          expected.get(a)! + refSettlementCash(s, value, BigInt(m.params.lotsPerBase)),
        );
      }
    }

    // Run it (and on the restored twin, which must agree).
    h.oracle = oracle;
    h.smiles = smiles;
    const block: Block = h.nextBlock(txs, dt);
    const result = h.ex.finalizeBlock(block);
    this.stats.blocks++;
    if (this.twin !== null) {
      const other = this.twin.ex.finalizeBlock(block);
      assert.equal(
        JSON.stringify(other.results, replacer),
        JSON.stringify(result.results, replacer),
        `${at}: the restored node's results`,
      );
      assert.equal(
        JSON.stringify(other.events, replacer),
        JSON.stringify(result.events, replacer),
        `${at}: the restored node's events`,
      );
      assert.deepEqual(other.appHash, result.appHash, `${at}: the restored node's appHash`);
      if (--this.twin.left === 0) this.twin = null;
    }
    for (const [u, p] of Object.entries(oracle)) this.price[u] = p;

    this.checkSettlements(at, result, settling, ordersBefore);
    const liquidated = result.events.some(
      (e) =>
        e.type === 'liquidation' ||
        e.type === 'liquidationFill' ||
        e.type === 'deleverage' ||
        e.type === 'insuranceCover',
    );
    this.checkFills(at, block, result, expected, volume, liquidated);
    this.checkProbes(at, result, probes);
    this.checkGates(at, block, result, staleIndex, staleSmile);
    this.checkStaleIndexMarks(at, marksBefore, staleIndex, staleSmile);
    this.checkOpenInterest(at);
    // Margin is the costly part (scenario sums for every holder): every other block.
    if (state.height % 2 === 0) this.checkMargin(at);
  }

  checkSettlements(
    at: string,
    result: BlockResult,
    settling: Map<string, { m: MarketState; price: bigint; value: bigint }>,
    ordersBefore: Map<MarketState, number[]>,
  ): void {
    const state = this.h.ex.state;
    const events = result.events.filter(
      (e): e is Extract<ExchangeEvent, { type: 'marketSettled' }> => e.type === 'marketSettled',
    );
    assert.deepEqual(
      events.map((e) => e.market).sort(),
      [...settling.keys()].sort(),
      `${at}: the markets settled`,
    );
    for (const e of events) {
      const s = settling.get(e.market)!;
      assert.equal(e.settlementPriceQuote, s.price, `${at}: ${e.market} settlement price`);
      assert.equal(e.valueQuote, s.value, `${at}: ${e.market} settlement value`);
      this.stats.settlements++;
      this.stats.settledPositions += e.positions;
      if (s.m.instrument.kind === 'option') {
        this.stats.optionSettlements++;
        if (s.value > 0n) this.stats.inTheMoney++;
      }
      assert.equal(state.marketByName.get(e.market), undefined, `${at}: ${e.market} is gone`);
      assert.ok(s.m.retired, `${at}: ${e.market} retired`);
      assert.equal(
        s.m.longLots + s.m.shortLots,
        0,
        `${at}: ${e.market} open interest after settlement`,
      );
      for (const id of ordersBefore.get(s.m) ?? []) {
        assert.equal(
          state.orders.get(id),
          undefined,
          `${at}: order ${id} of ${e.market} cancelled`,
        );
        this.stats.cancelledAtSettlement++;
      }
      for (const a of state.accounts) {
        // Its slot may hold a market listed in the same block: the record must not name this one.
        assert.ok(
          !a.listed.some((p) => state.markets[p.market] === s.m),
          `${at}: ${e.market}: account ${a.index} keeps a record`,
        );
      }
      this.settled.push(e.market);
    }
    // Expired and not settled: halted, waiting for a price.
    for (const m of this.live()) {
      if (m.expiryMs <= state.timeMs) {
        assert.ok(m.halted, `${at}: ${m.params.instrument} waits for its settlement, halted`);
        this.stats.waited++;
      }
    }
  }

  checkFills(
    at: string,
    block: Block,
    result: BlockResult,
    expected: Map<Account, bigint>,
    volume: Map<Account, bigint>,
    liquidated: boolean,
  ): void {
    const state = this.h.ex.state;
    const accountOf = (tx: SignedTx): Account =>
      state.principals.get(bytesKey(tx.account))!.subaccounts.get(tx.subaccount)!;
    const volumeOf = (a: Account): bigint => volume.get(a) ?? 0n;
    for (const i of executionOrder(block.txs.map((t) => t.action))) {
      const tx = block.txs[i]!;
      const r = result.results[i]!;
      if (!r.ok) continue;
      const actions = tx.action.kind === 'batch' ? tx.action.actions : [tx.action];
      actions.forEach((action, j) => {
        const ar = r.actions[j]!;
        if (!ar.ok) {
          this.stats.refused.set(ar.code, (this.stats.refused.get(ar.code) ?? 0) + 1);
          return;
        }
        if (action.kind === 'faucet') {
          const to = accountOf(tx);
          expected.set(to, (expected.get(to) ?? 0n) + action.amountQuote);
          return;
        }
        if (action.kind === 'transfer') {
          const from = this.account(TRADERS[0]!, action.fromSubaccount)!;
          const to = this.account(TRADERS[0]!, action.toSubaccount)!;
          expected.set(from, (expected.get(from) ?? 0n) - action.amountQuote);
          expected.set(to, (expected.get(to) ?? 0n) + action.amountQuote);
          return;
        }
        if (action.kind !== 'placeOrder' || ar.order === undefined) return;
        const taker = accountOf(tx);
        const m = state.marketByName.get(action.instrument)!;
        const k = m.params.tickSizeQuote / BigInt(m.params.lotsPerBase);
        const buy = action.side === 'buy';
        const takerTier = refTier(TIERS, volumeOf(taker));
        for (const f of ar.order.fills) {
          const maker = state.accounts[f.makerAccount]!;
          const n = refNotional(BigInt(f.priceTicks), BigInt(f.sizeLots), k);
          const makerTier = refTier(TIERS, volumeOf(maker));
          assert.equal(
            f.takerFeeQuote,
            refTakerFee(takerTier, n),
            `${at}: taker fee of a fill of ${n}`,
          );
          assert.equal(
            f.makerFeeQuote,
            refMakerFee(makerTier, n),
            `${at}: maker fee of a fill of ${n}`,
          );
          if (f.makerFeeQuote < 0n) this.stats.rebates++;
          expected.set(taker, (expected.get(taker) ?? 0n) + refFillCash(buy, n, f.takerFeeQuote));
          expected.set(maker, (expected.get(maker) ?? 0n) + refFillCash(!buy, n, f.makerFeeQuote));
          volume.set(taker, volumeOf(taker) + n);
          volume.set(maker, volumeOf(maker) + n);
          this.stats.fills++;
          if (m.instrument.kind === 'option') this.stats.optionFills++;
          if (action.reduceOnly) this.stats.reduceOnlyFills++;
        }
        if (action.reduceOnly) {
          // Never more than the position it reduces, and never past zero.
          assert.ok(ar.order.restedLots === 0, `${at}: a reduce-only order never rests`);
        }
      });
    }
    // Conservation: deposits = Σ cash + insurance fund + fee pool.
    let cash = 0n;
    for (const a of state.accounts) cash += a.cashQuote;
    assert.equal(
      cash + state.insuranceQuote + state.feePoolQuote,
      this.deposits,
      `${at}: collateral conserved`,
    );
    if (liquidated) {
      // Liquidation fills and covers move cash the results do not show: the cash check waits.
      this.stats.liquidationBlocks++;
      return;
    }
    for (const a of state.accounts) {
      assert.equal(a.cashQuote, expected.get(a) ?? 0n, `${at}: cash of account ${a.index}`);
      assert.equal(a.volumeQuote, volume.get(a) ?? 0n, `${at}: volume of account ${a.index}`);
    }
  }

  checkProbes(at: string, result: BlockResult, probes: Probe[]): void {
    for (const p of probes) {
      const r = result.results[p.tx]!;
      assert.ok(r.ok, `${at}: probe on ${p.name} refused whole: ${JSON.stringify(r, replacer)}`);
      const a = r.actions[0]!;
      if (p.expected === null) {
        // Through the gates: far from the market, it rests (or, reduce-only, cancels) or fails a later check.
        if (!a.ok) {
          assert.ok(
            ['InsufficientMargin', 'ReduceOnlyWouldIncrease', 'TooManyOpenOrders'].includes(a.code),
            `${at}: probe on ${p.name}: ${a.code} ${a.message}`,
          );
        }
      } else {
        assert.equal(a.ok ? 'accepted' : a.code, p.expected, `${at}: probe on ${p.name}`);
      }
    }
  }

  /** Every accepted order passed the gates the docs set. */
  checkGates(
    at: string,
    block: Block,
    result: BlockResult,
    staleIndex: Set<string>,
    staleSmile: Set<string>,
  ): void {
    block.txs.forEach((tx, i) => {
      const action = tx.action;
      const r = result.results[i]!;
      if (action.kind !== 'placeOrder' || !r.ok || !r.actions[0]!.ok) return;
      const m = this.h.ex.state.marketByName.get(action.instrument);
      assert.ok(
        m !== undefined,
        `${at}: an order accepted on ${action.instrument}, which is not live`,
      );
      assert.ok(
        m.expiryMs > block.timeMs,
        `${at}: an order accepted on expired ${action.instrument}`,
      );
      if (action.reduceOnly) return;
      assert.ok(!staleIndex.has(m.params.underlying), `${at}: an opening order on a stale index`);
      if (m.instrument.kind === 'option') {
        const k = smileKeyOf(m.params.underlying, m.expiryMs);
        assert.ok(
          !staleSmile.has(k),
          `${at}: an opening order on ${action.instrument} without a fresh smile`,
        );
      }
    });
  }

  /**
   * An option whose underlying's index is stale is not marked, whatever its
   * smile: it keeps the mark it had before the block.
   */
  checkStaleIndexMarks(
    at: string,
    marksBefore: Map<MarketState, number>,
    staleIndex: Set<string>,
    staleSmile: Set<string>,
  ): void {
    const nowMs = this.h.ex.state.timeMs;
    for (const [m, before] of marksBefore) {
      if (m.retired || m.instrument.kind !== 'option' || m.expiryMs <= nowMs) continue;
      if (!staleIndex.has(m.params.underlying)) continue;
      const name = m.params.instrument;
      assert.equal(m.optionMark, null, `${at}: ${name} marked at a stale index`);
      assert.equal(m.markTicks, before, `${at}: ${name} keeps its mark at a stale index`);
      if (before > 0 && !staleSmile.has(smileKeyOf(m.params.underlying, m.expiryMs))) {
        this.stats.staleIndexKeptMarks++;
      }
    }
  }

  checkOpenInterest(at: string): void {
    const state = this.h.ex.state;
    for (const m of this.live()) {
      let long = 0;
      let short = 0;
      for (const a of state.accounts) {
        const s = sizeIn(a, m);
        if (s > 0) long += s;
        else short -= s;
      }
      assert.equal(long, short, `${at}: ${m.params.instrument} longs equal shorts`);
      assert.equal(m.longLots, long, `${at}: ${m.params.instrument} open interest`);
    }
  }

  /**
   * Whether maintenance takes the cushion of a short in `m` without a fresh
   * smile or index: at once for a fresh smile the math refuses (or none ever
   * sent), else once one of them has been stale for GRACE_MS, from when the
   * first went stale (sent + STALE_AFTER_MS, the index's last update +
   * STALE_AFTER_MS), past expiry from the earlier of that and the expiry.
   */
  unshockedGraceOver(m: MarketState, nowMs: number): boolean {
    const sent = this.smileSent.get(smileKeyOf(m.params.underlying, m.expiryMs));
    if (sent === undefined) return true;
    const feed = this.feeds.get(m.params.underlying);
    const staleMs = Math.min(sent, feed?.updatedMs ?? sent) + STALE_AFTER_MS;
    if (m.expiryMs > nowMs) return nowMs <= staleMs || nowMs - staleMs >= GRACE_MS;
    return nowMs - Math.min(staleMs, m.expiryMs) >= GRACE_MS;
  }

  /** The scenario margin's documented floors, cases and monotonicity. */
  checkMargin(at: string): void {
    const state = this.h.ex.state;
    const scenario = state.listing!.scenario;
    for (const a of state.accounts) {
      if (a.listed.length === 0) continue;
      this.stats.marginChecks++;
      const initial = initialMarginQuote(state, a);
      const maintenance = maintenanceMarginQuote(state, a);
      assert.ok(
        maintenance <= initial,
        `${at}: account ${a.index} maintenance ${maintenance} > initial ${initial}`,
      );
      let shortFloor = 0n;
      let premium = 0n;
      let shorts = 0;
      let longs = 0;
      let futures = 0;
      let resting = 0;
      let unshocked = 0;
      let unshockedMaintenance = 0n;
      /** Half the cushion of the shorts without a fresh smile whose grace is over, and of the others. */
      let cushionPastGrace = 0n;
      let cushionWithinGrace = 0n;
      for (const p of a.listed) {
        const m = state.markets[p.market]!;
        resting +=
          m.book.ownerRestingLots(a.index, 'buy') + m.book.ownerRestingLots(a.index, 'sell');
        if (p.sizeLots === 0) continue;
        if (m.instrument.kind === 'future') {
          futures++;
          continue;
        }
        const lots = BigInt(p.sizeLots);
        if (lots > 0n) {
          longs++;
          premium += lots * BigInt(m.markTicks) * m.k;
        } else {
          shorts++;
          const index = state.oracle!.prices.get(m.params.underlying)!.priceQuote;
          const forward = m.forwardQuote > 0n ? m.forwardQuote : index;
          if (m.optionMark === null && m.instrument.kind === 'option') {
            // Without a fresh smile: model-free bounds, initial with all of its cushion.
            unshocked++;
            // At this block's forward: the expiry's future mark, else the index.
            const future = state.markets.find(
              (f) =>
                !f.retired &&
                f.instrument.kind === 'future' &&
                f.params.underlying === m.params.underlying &&
                f.expiryMs === m.expiryMs &&
                f.markTicks > 0,
            );
            const now =
              future === undefined ? index : BigInt(future.markTicks) * future.params.tickSizeQuote;
            const f = refUnshockedShortFloors(
              -lots,
              now,
              m.instrument,
              m.markQuotePerLot,
              scenario.shortOptionMinPpm,
              BigInt(m.params.lotsPerBase),
            );
            shortFloor += f.requirement + f.loss + f.cushion;
            unshockedMaintenance +=
              refMaintenanceOf(f.requirement, scenario.maintenancePpm) + f.loss - 1n;
            // Half the cushion too, once the smile has been stale for the grace.
            if (this.unshockedGraceOver(m, state.timeMs)) cushionPastGrace += f.cushion / 2n;
            else cushionWithinGrace += f.cushion / 2n;
          } else {
            shortFloor += refShortMinFloor(
              -lots,
              forward,
              scenario.shortOptionMinPpm,
              BigInt(m.params.lotsPerBase),
            );
          }
        }
      }
      if (unshocked > 0) {
        this.stats.unshockedShortAccounts++;
        if (cushionPastGrace > 0n) this.stats.unshockedPastGrace++;
        if (cushionWithinGrace > 0n) this.stats.unshockedWithinGrace++;
        // Whatever else the account holds adds to it: at least 80% of each
        // short's minimum, its loss, and half its cushion past the grace.
        assert.ok(
          maintenance >= unshockedMaintenance + cushionPastGrace,
          `${at}: account ${a.index} short options without a fresh smile: maintenance ${maintenance} under ${unshockedMaintenance} + ${cushionPastGrace} of cushion past the grace`,
        );
        // Holding nothing else, that is all of it, but for rounding and, within
        // the grace, 80% of the shorts' scenario losses by their last smile,
        // each never above its cushion: within initial, which takes the
        // cushion in full.
        if (a.positionCount === unshocked && cushionWithinGrace > 0n) {
          this.stats.onlyUnshockedWithinGrace++;
          const scenarioMost =
            (2n * cushionWithinGrace * BigInt(scenario.maintenancePpm) + 999_999n) / 1_000_000n;
          assert.ok(
            maintenance <=
              unshockedMaintenance + cushionPastGrace + scenarioMost + BigInt(unshocked),
            `${at}: account ${a.index} short options without a fresh smile only: maintenance ${maintenance} over its bound within the grace`,
          );
          assert.ok(maintenance <= initial, `${at}: maintenance ${maintenance} within initial`);
        }
      }
      // Short options pay at least the per-lot minimum; long ones at least their premium at the mark.
      assert.ok(
        initial >= shortFloor,
        `${at}: account ${a.index} initial ${initial} under the short minimum ${shortFloor}`,
      );
      assert.ok(
        initial >= premium,
        `${at}: account ${a.index} initial ${initial} under its long premium ${premium}`,
      );
      if (longs > 0 && shorts === 0 && futures === 0 && resting === 0) {
        // A scenario loss of long options alone never exceeds their value: maintenance ≤ 80% of it.
        assert.ok(
          maintenance <= refMaintenanceOf(initial, scenario.maintenancePpm),
          `${at}: account ${a.index} long options only, maintenance ${maintenance} over 80% of ${initial}`,
        );
      }
      if (
        shorts === 1 &&
        longs === 0 &&
        futures === 0 &&
        resting === 0 &&
        a.listed.filter((p) => p.sizeLots !== 0).length === 1
      ) {
        if (unshocked === 1) {
          // Its scenarios stand still: maintenance as above.
          this.stats.singleUnshockedShortCases++;
          continue;
        }
        // One short option: initial = ceil(requirement), maintenance = ceil(80% of it).
        this.stats.singleShortCases++;
        const low = refMaintenanceOf(initial - 1n, scenario.maintenancePpm);
        const high = refMaintenanceOf(initial, scenario.maintenancePpm);
        assert.ok(
          maintenance >= low && maintenance <= high,
          `${at}: account ${a.index} one short option: maintenance ${maintenance} not 80% of ${initial}`,
        );
      }
    }
    // Monotonicity: more lots of an order never need less initial margin.
    const options = this.live().filter(
      (m) => m.instrument.kind === 'option' && m.expiryMs > state.timeMs,
    );
    const trader = this.account(this.pick(TRADERS));
    if (options.length === 0 || trader === undefined) return;
    const m = this.pick(options);
    // An account's first option of an underlying takes its dated futures there
    // from the linear formula into the scenario, whose long premium floor may
    // then cover them (docs/exchange.md, "Dated futures and options", Margin):
    // that first order may lower initial margin. Any other may not. A record
    // without a position or a resting order (one the account closed, or
    // whose orders it cancelled) is margined as none: it holds nothing.
    const u = m.params.underlying;
    const held = trader.listed
      .filter((p) => {
        const x = state.markets[p.market]!;
        const resting =
          x.book.ownerRestingLots(trader.index, 'buy') +
          x.book.ownerRestingLots(trader.index, 'sell');
        return p.sizeLots !== 0 || resting > 0;
      })
      .map((p) => state.markets[p.market]!);
    const first =
      held.some((x) => x.params.underlying === u && x.instrument.kind === 'future') &&
      !held.some((x) => x.params.underlying === u && x.instrument.kind === 'option');
    for (const buy of [false, true]) {
      let last = -1n;
      for (const lots of [1, 4, 25]) {
        const mm = marginForOrder(state, trader, m.index, buy ? lots : 0, buy ? 0 : lots);
        assert.ok(
          first || mm.after >= mm.before,
          `${at}: ${lots} ${buy ? 'bought' : 'sold'} of ${m.params.instrument} lowered initial margin from ${mm.before} to ${mm.after}; holds ${JSON.stringify(trader.listed.map((p) => [state.markets[p.market]!.params.instrument, p.sizeLots, state.markets[p.market]!.book.ownerRestingLots(trader.index, 'buy'), state.markets[p.market]!.book.ownerRestingLots(trader.index, 'sell')]))}`,
        );
        assert.ok(
          mm.after >= last,
          `${at}: ${lots} lots ${buy ? 'bought' : 'sold'} of ${m.params.instrument} need less than fewer`,
        );
        last = mm.after;
      }
    }
  }

  /** Snapshot now; the restored node runs the next blocks beside this one. */
  restore(blocks: number): void {
    const copy = decodeSnapshot(encodeSnapshot(this.h.ex), { checkInvariants: true });
    assert.deepEqual(copy.appHash, this.h.ex.appHash, `seed ${this.seed}: restored appHash`);
    this.twin = { ex: copy, left: blocks };
    this.stats.restores++;
  }

  fund(): void {
    const txs: SignedTx[] = [];
    for (const k of TRADERS)
      txs.push(this.h.tx(k, { kind: 'faucet', amountQuote: 200_000n * USDC }));
    txs.push(
      this.h.tx(TRADERS[0]!, { kind: 'faucet', amountQuote: 50_000n * USDC }, { subaccount: 1 }),
    );
    this.deposits = 1_050_000n * USDC;
    this.step(() => txs, 1_000);
  }
}

function run(seed: number, blocks: number, stats: Stats): void {
  const model = new Model(seed, stats);
  model.fund();
  for (let i = 0; i < blocks; i++) {
    if (i === Math.floor(blocks / 2)) model.restore(10);
    const dt = model.dt();
    model.step((now, probes, si, ss) => model.txs(now, probes, si, ss), dt);
  }
}

test('options and dated futures from listing to settlement equal the reference model, block by block', () => {
  const stats = newStats();
  for (const seed of [1, 2, 3]) run(seed, 130, stats);
  // The runs reached what they are for.
  assert.ok(stats.optionSettlements >= 20, `option settlements: ${stats.optionSettlements}`);
  assert.ok(stats.inTheMoney >= 4, `in the money: ${stats.inTheMoney}`);
  assert.ok(stats.settledPositions >= 20, `settled positions: ${stats.settledPositions}`);
  assert.ok(stats.optionFills >= 100, `option fills: ${stats.optionFills}`);
  assert.ok(stats.staleSmileBlocks >= 5, `stale smiles: ${stats.staleSmileBlocks}`);
  assert.ok(
    stats.staleIndexKeptMarks >= 5,
    `options with a fresh smile at a stale index: ${stats.staleIndexKeptMarks}`,
  );
  assert.ok(
    stats.fills - stats.optionFills >= 10,
    `future fills: ${stats.fills - stats.optionFills}`,
  );
  assert.ok(stats.reduceOnlyFills >= 1, `reduce-only fills: ${stats.reduceOnlyFills}`);
  assert.ok(stats.singleShortCases >= 3, `one short option: ${stats.singleShortCases}`);
  assert.ok(
    stats.unshockedShortAccounts >= 5,
    `accounts short an option without a fresh smile: ${stats.unshockedShortAccounts}`,
  );
  assert.ok(
    stats.unshockedWithinGrace >= 3 && stats.unshockedPastGrace >= 3,
    `of them within the grace: ${stats.unshockedWithinGrace}, past it: ${stats.unshockedPastGrace}`,
  );
  assert.ok(
    stats.onlyUnshockedWithinGrace >= 1,
    `accounts holding only such shorts, within the grace: ${stats.onlyUnshockedWithinGrace}`,
  );
  assert.ok(stats.waited >= 1, `settlements waiting for a price: ${stats.waited}`);
  for (const code of ['OracleStale', 'UnknownInstrument', 'MarketHalted', 'NoOraclePrice']) {
    assert.ok((stats.refused.get(code) ?? 0) >= 1, `orders refused ${code}`);
  }
  assert.equal(stats.restores, 3, 'restores');
});
