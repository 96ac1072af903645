// Seeded random drivers over the lifecycle paths: dated futures and options
// from listing through trading to expiry and settlement, governance halts and
// resumes, agent keys, transfers and withdrawals near the free-collateral
// edge, amends and client order ids, across many heights with block time and
// the oracle moving. After every block, besides the harness's invariants: the
// incremental digest equals the one from scratch, a few reference facts
// (below), and every few blocks a snapshot restored runs the next blocks to
// the same results and appHash.

import assert from 'node:assert/strict';
import { Prng } from '../../src/lib/prng.ts';
import { daysFromCivil, expiryMsOfDay, MS_PER_DAY } from '../../src/exchange/instruments/index.ts';
import { freeCollateralQuote } from '../../src/exchange/margin.ts';
import { bytesKey } from '../../src/exchange/keys.ts';
import { decodeSnapshot, encodeSnapshot } from '../../src/exchange/snapshot.ts';
import type { Exchange, Genesis } from '../../src/exchange/index.ts';
import type { BlockResult, ExchangeEvent } from '../../src/exchange/results.ts';
import type { Account, ExchangeState, MarketState } from '../../src/exchange/state.ts';
import type { Action, BatchableAction, SignedTx } from '../../src/exchange/tx/types.ts';
import { MASTER_ONLY_ACTIONS } from '../../src/exchange/tx/types.ts';
import { Harness, USDC, VALIDATORS, dailyListingGenesis, key, limit, replacer } from './helpers.ts';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
/** Monday 2 March 2026, 00:00 UTC: the first daily expiry is that day at 08:00. */
const START_MS = daysFromCivil(2026, 3, 2) * MS_PER_DAY;
/** A flat smile: total variance for 50% volatility over eight hours. */
const FLAT = { a: 228_000_000_000_000n, b: 0n, rho: 0n, m: 0n, sigma: 100_000_000_000_000_000n };

/** The daily listing, with a price band and an open-interest cap on the listed markets. */
function lifecycleGenesis(markIntervalMs: number | undefined): Genesis {
  const g = dailyListingGenesis(START_MS);
  const listing = g.listing!;
  listing.templates = listing.templates.map((t) => ({
    ...t,
    params: {
      ...t.params,
      priceBandPpm: t.kind === 'future' ? 50_000 : 900_000,
      openInterestCapLots: t.kind === 'future' ? 400 : 200,
    },
  }));
  if (markIntervalMs !== undefined) listing.markIntervalMs = markIntervalMs;
  return g;
}

/** Smiles for the next few daily expiries: the harness sends them with every block. */
function smilesAt(timeMs: number) {
  const day = Math.floor(timeMs / MS_PER_DAY);
  const out = [];
  for (let d = day; d < day + 3; d++) {
    const expiryMs = expiryMsOfDay(d);
    if (expiryMs <= timeMs) continue;
    out.push(
      { underlying: 'BTC', expiryMs, svi: FLAT },
      { underlying: 'ETH', expiryMs, svi: FLAT },
    );
  }
  return out;
}

const TRADERS = [0, 1, 2, 3].map((i) => key(`life-trader-${i}`));
const AGENTS = [0, 1, 2].map((i) => key(`life-agent-${i}`));
const CLIENT_IDS = ['a', 'b', 'c'];

interface Sent {
  tx: SignedTx;
  trader: number;
  /** The agent that signed it, or -1 for the account's own key (or a validator). */
  agent: number;
}

class Driver {
  readonly h: Harness;
  readonly r: Prng;
  /** trader → agent → expiresAtMs, as the results of register and revoke say. */
  readonly agents = TRADERS.map(() => new Map<number, number>());
  private proposalId = 1;
  private stale: string | null = null;

  constructor(seed: number, markIntervalMs: number | undefined) {
    this.h = new Harness(lifecycleGenesis(markIntervalMs));
    this.r = new Prng(seed);
    this.h.smiles = smilesAt(this.h.timeMs);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.r.int(xs.length)]!;
  }

  chance(percent: number): boolean {
    return this.r.int(100) < percent;
  }

  liveMarkets(): string[] {
    return [...this.h.ex.state.marketByName.keys()].sort();
  }

  account(trader: number, sub: number): Account | undefined {
    return this.h.account(TRADERS[trader]!, sub);
  }

  ordersOf(trader: number, sub: number): number[] {
    const a = this.account(trader, sub);
    if (a === undefined) return [];
    const ids: number[] = [];
    for (const [id, meta] of this.h.ex.state.orders) if (meta.account === a) ids.push(id);
    return ids.sort((x, y) => x - y);
  }

  /** Where the trading concentrates: BTC's perpetual, its nearest future and options near the money. */
  hotMarkets(): string[] {
    const state = this.h.ex.state;
    const listed = state.markets.filter(
      (m) => m.listed && !m.retired && m.params.underlying === 'BTC',
    );
    if (listed.length === 0) return ['BTC-PERPETUAL'];
    const expiry = Math.min(...listed.map((m) => m.expiryMs));
    const index = state.markets[0]!.indexTicks * 100_000;
    const near = listed
      .filter((m) => m.expiryMs === expiry)
      .map((m) => {
        const i = m.instrument;
        const away = i.kind === 'option' ? Math.abs(Number(i.strikeQuote) - index) : 0;
        return { name: m.params.instrument, away };
      })
      .sort((a, b) => a.away - b.away || (a.name < b.name ? -1 : 1));
    return ['BTC-PERPETUAL', ...near.slice(0, 3).map((x) => x.name)];
  }

  orderAction(): BatchableAction {
    const state = this.h.ex.state;
    const name = this.pick(this.chance(70) ? this.hotMarkets() : this.liveMarkets());
    const m = state.marketByName.get(name)!;
    const mark = m.markTicks > 0 ? m.markTicks : 1_000;
    const spread = m.instrument.kind === 'option' ? Math.max(2, mark >> 3) : 200;
    const side = this.chance(50) ? 'buy' : 'sell';
    // Often at the best price on the other side, so that orders meet.
    const best = side === 'buy' ? m.book.bestAskTicks() : m.book.bestBidTicks();
    // Now and then far through a perpetual's book: its price monitoring starts an auction.
    const far = m.auction !== null && this.chance(8);
    const price = far
      ? mark + Math.floor(((side === 'buy' ? 1 : -1) * mark * (6 + this.r.int(4))) / 100)
      : best !== undefined && this.chance(50)
        ? best
        : Math.max(1, mark + this.r.int(2 * spread + 1) - spread);
    const extra: Record<string, unknown> = {};
    if (this.chance(40)) extra.clientOrderId = this.pick(CLIENT_IDS);
    const tif = this.pick(['GTC', 'GTC', 'GTC', 'IOC', 'FOK', 'postOnly'] as const);
    extra.timeInForce = tif;
    if (tif === 'GTC' && this.chance(20)) {
      extra.goodTilMs = this.h.timeMs + 1 + this.r.int(2 * HOUR_MS);
    }
    if (tif !== 'postOnly' && this.chance(10)) {
      extra.reduceOnly = true;
      delete extra.goodTilMs;
    }
    extra.stp = this.pick(['cancelResting', 'cancelIncoming', 'cancelBoth'] as const);
    if (this.chance(10) && tif !== 'GTC' && tif !== 'postOnly') {
      return { ...limit(name, side, price, 1 + this.r.int(5), extra), type: 'market' };
    }
    return limit(name, side, price, 1 + this.r.int(5), extra);
  }

  tradeAction(trader: number, sub: number): BatchableAction {
    const state = this.h.ex.state;
    const ids = this.ordersOf(trader, sub);
    const roll = this.r.int(100);
    if (roll < 55 || ids.length === 0) return this.orderAction();
    const id = this.pick(ids);
    const meta = state.orders.get(id)!;
    const instrument = state.markets[meta.market]!.params.instrument;
    if (roll < 70) {
      if (meta.clientOrderId !== '' && this.chance(50)) {
        return { kind: 'cancel', instrument, clientOrderId: meta.clientOrderId };
      }
      return { kind: 'cancel', instrument, orderId: id };
    }
    if (roll < 75) {
      return this.chance(50) ? { kind: 'cancelAll' } : { kind: 'cancelAll', instrument };
    }
    const m = state.markets[meta.market]!;
    const order =
      m.book.order(id) ?? m.auction?.bids.order(id) ?? m.auction?.asks.order(id) ?? undefined;
    const a: Action = { kind: 'amend', instrument, orderId: id };
    const price = order?.priceTicks ?? m.markTicks;
    // An amend's size is the order's whole size: what it filled and what stays open.
    const size = order === undefined ? 1 : meta.placedLots;
    if (this.chance(60)) a.priceTicks = Math.max(1, price + this.r.int(41) - 20);
    if (a.priceTicks === undefined || this.chance(40)) {
      a.sizeLots = Math.max(1, size + this.r.int(5) - 2);
    }
    // An order that ended: its id (or its client id) is gone.
    if (this.chance(10)) a.orderId = id + 1_000_000;
    return a;
  }

  moneyAction(trader: number, sub: number): BatchableAction {
    const a = this.account(trader, sub);
    const free = a === undefined ? 0n : freeCollateralQuote(this.h.ex.state, a);
    const edge = free > 0n ? free : 1n;
    const amount = this.pick([edge, edge + 1n, edge / 2n + 1n, 1_000n * USDC]);
    const roll = this.r.int(100);
    if (roll < 35) return { kind: 'withdraw', amountQuote: amount, destination: 'dest' };
    if (roll < 75) {
      return { kind: 'transfer', fromSubaccount: sub, toSubaccount: 1 - sub, amountQuote: amount };
    }
    return { kind: 'faucet', amountQuote: 1_000n * USDC * BigInt(1 + this.r.int(20)) };
  }

  agentAdmin(): BatchableAction {
    const agent = this.r.int(AGENTS.length);
    if (this.chance(30)) return { kind: 'revokeAgent', agentPublicKey: AGENTS[agent]!.publicKey };
    const expiresAtMs =
      this.h.timeMs + this.pick([1, 1_000, 10 * MINUTE_MS, 3 * HOUR_MS, 3 * HOUR_MS, 24 * HOUR_MS]);
    return { kind: 'registerAgent', agentPublicKey: AGENTS[agent]!.publicKey, expiresAtMs };
  }

  govTx(): SignedTx {
    const state = this.h.ex.state;
    const v = this.pick(VALIDATORS);
    const pending = [...state.proposals.values()].filter((p) => !p.executed);
    if (pending.length > 0 && this.chance(70)) {
      const p = this.pick(pending);
      return this.h.tx(v, { kind: 'govVote', proposalId: p.proposalId, approve: this.chance(90) });
    }
    // Halts are proposed, and resumed again, a market at a time; now and then all of them.
    const halted = this.liveMarkets().filter((n) => state.marketByName.get(n)!.halted);
    const roll = this.r.int(100);
    const instrument = this.pick(this.chance(60) ? this.hotMarkets() : this.liveMarkets());
    const proposal =
      halted.length > 0 && roll < 50
        ? this.chance(80)
          ? { kind: 'resumeMarket' as const, instrument: this.pick(halted) }
          : { kind: 'resumeAll' as const }
        : roll < 95
          ? { kind: 'haltMarket' as const, instrument }
          : { kind: 'haltAll' as const };
    return this.h.tx(v, { kind: 'govPropose', proposalId: this.proposalId++, proposal });
  }

  /** The transactions of the next block. */
  txs(): Sent[] {
    const out: Sent[] = [];
    const n = this.r.int(6);
    for (let i = 0; i < n; i++) {
      const trader = this.r.int(TRADERS.length);
      const k = TRADERS[trader]!;
      const sub = this.chance(75) ? 0 : 1;
      const roll = this.r.int(100);
      if (roll < 55) {
        out.push({
          tx: this.h.tx(k, this.tradeAction(trader, sub), { subaccount: sub }),
          trader,
          agent: -1,
        });
      } else if (roll < 70) {
        out.push({
          tx: this.h.tx(k, this.moneyAction(trader, sub), { subaccount: sub }),
          trader,
          agent: -1,
        });
      } else if (roll < 77) {
        out.push({ tx: this.h.tx(k, this.agentAdmin()), trader, agent: -1 });
      } else if (roll < 96) {
        // An agent: mostly trades, sometimes what only the account's own key may do.
        const registered = [...this.agents[trader]!]
          .filter(([, t]) => t > this.h.timeMs)
          .map(([a]) => a);
        const agent =
          registered.length > 0 && this.chance(80)
            ? this.pick(registered)
            : this.r.int(AGENTS.length);
        const action = this.chance(70)
          ? this.tradeAction(trader, sub)
          : this.chance(50)
            ? this.moneyAction(trader, sub)
            : this.agentAdmin();
        const wrapped: Action = this.chance(20)
          ? { kind: 'batch', actions: [this.orderAction(), action] }
          : action;
        const tx = this.h.tx(k, wrapped, { subaccount: sub, signer: AGENTS[agent]! });
        out.push({ tx, trader, agent });
      } else {
        out.push({ tx: this.govTx(), trader: -1, agent: -1 });
      }
    }
    return out;
  }

  /** Moves the index, and now and then lets one underlying go stale for a while. */
  moveOracle(): void {
    const next: Record<string, bigint> = {};
    for (const u of ['BTC', 'ETH']) {
      const p = this.h.oracle[u] ?? this.lastPrice(u);
      const step = BigInt(this.r.int(201) - 100); // ±1%
      next[u] = p + (p * step) / 10_000n;
    }
    if (this.stale === null && this.chance(3)) this.stale = this.pick(['BTC', 'ETH']);
    else if (this.stale !== null && this.chance(25)) this.stale = null;
    if (this.stale !== null) {
      this.last[this.stale] = next[this.stale]!;
      delete next[this.stale];
    }
    this.h.oracle = next;
  }

  private readonly last: Record<string, bigint> = { BTC: 50_000n * USDC, ETH: 3_000n * USDC };
  private lastPrice(u: string): bigint {
    return this.last[u]!;
  }

  dt(): number {
    return this.pick([1, 500, 1_000, 10_000, MINUTE_MS, 10 * MINUTE_MS, 10 * MINUTE_MS, HOUR_MS]);
  }
}

function count(stats: Map<string, number>, what: string): void {
  stats.set(what, (stats.get(what) ?? 0) + 1);
}

/** Every client order id an account holds names one of its open orders with that id. */
function checkClientIds(state: ExchangeState): void {
  for (const a of state.accounts) {
    for (const [cid, id] of a.clientOrderIds) {
      const meta = state.orders.get(id);
      assert.ok(
        meta !== undefined && meta.account === a && meta.clientOrderId === cid,
        `account ${a.index}: client id ${cid} names order ${id}, which is not its open order`,
      );
    }
  }
}

/** A settled market's slot holds nothing, and nothing points at it. */
function checkRetired(state: ExchangeState): void {
  for (const m of state.markets) {
    if (!m.retired) continue;
    assert.equal(
      m.holders.size + m.records.size + m.book.orderCount,
      0,
      'a free slot holds nothing',
    );
    assert.equal(m.longLots + m.shortLots, 0, 'a free slot has no open interest');
    assert.notEqual(state.marketByName.get(m.params.instrument), m, 'a free slot has no name');
    for (const meta of state.orders.values()) {
      assert.notEqual(meta.market, m.index, `order ${meta.orderId} in a free slot`);
    }
    for (const p of state.proposals.values()) {
      assert.ok(
        p.executed || p.market !== m.index,
        `proposal ${p.proposalId} pending on a free slot`,
      );
    }
  }
  for (const a of state.accounts) {
    for (const p of a.listed) {
      assert.ok(!state.markets[p.market]!.retired, `account ${a.index}: record in a free slot`);
    }
  }
  // A TWAP for each live expiry and no other.
  const keys = new Set<string>();
  for (const m of state.markets) {
    if (m.listed && !m.retired) keys.add(`${m.params.underlying}:${m.expiryMs}`);
  }
  assert.deepEqual([...state.twaps.keys()].sort(), [...keys].sort(), 'TWAPs of live expiries');
}

function actionsOf(sent: Sent): BatchableAction[] {
  const a = sent.tx.action;
  return a.kind === 'batch' ? a.actions : [a];
}

/** The reference facts of one block, given the state before and after it. */
function checkBlock(
  d: Driver,
  sent: readonly Sent[],
  result: BlockResult,
  before: { withdrawn: bigint; halted: Map<MarketState, number> },
): void {
  const state = d.h.ex.state;
  // Agents trade; only the account's own key moves money out or manages agents.
  let withdrawn = 0n;
  const adminThisBlock = new Set<number>();
  sent.forEach((s, i) => {
    const r = result.results[i]!;
    if (s.agent < 0 && s.trader >= 0) {
      for (const a of actionsOf(s)) {
        if (a.kind === 'registerAgent' || a.kind === 'revokeAgent') adminThisBlock.add(s.trader);
      }
    }
    if (!r.ok) return;
    actionsOf(s).forEach((a, j) => {
      const ar = r.actions[j]!;
      if (s.agent >= 0) {
        assert.ok(
          !MASTER_ONLY_ACTIONS.has(a.kind) && a.kind !== 'faucet',
          `an agent's ${a.kind} was let through: ${JSON.stringify(ar, replacer)}`,
        );
      }
      if (a.kind === 'withdraw' && ar.ok) withdrawn += a.amountQuote;
    });
  });
  assert.equal(state.withdrawnQuote - before.withdrawn, withdrawn, 'withdrawn as the results say');
  // An agent's transaction passes the signer check exactly while it is registered and unexpired.
  sent.forEach((s, i) => {
    if (s.agent < 0 || adminThisBlock.has(s.trader)) return;
    const r = result.results[i]!;
    if (!r.ok && r.code !== 'NotPermitted') return;
    const expires = d.agents[s.trader]!.get(s.agent);
    const active = expires !== undefined && expires > state.timeMs;
    if (r.ok) assert.ok(active, `agent ${s.agent} of trader ${s.trader} acted while inactive`);
    else if (r.message !== 'agents only trade') {
      assert.ok(!active, `agent ${s.agent} of trader ${s.trader} refused while active`);
    }
  });
  // The model of agents follows the accepted registrations and revocations.
  sent.forEach((s, i) => {
    const r = result.results[i]!;
    if (s.agent >= 0 || s.trader < 0 || !r.ok) return;
    actionsOf(s).forEach((a, j) => {
      if (!r.actions[j]!.ok || (a.kind !== 'registerAgent' && a.kind !== 'revokeAgent')) return;
      const agent = AGENTS.findIndex((k) => bytesKey(k.publicKey) === bytesKey(a.agentPublicKey));
      if (a.kind === 'registerAgent') d.agents[s.trader]!.set(agent, a.expiresAtMs);
      if (a.kind === 'revokeAgent') d.agents[s.trader]!.delete(agent);
    });
  });
  // A market halted through the whole block trades nothing.
  const resumed = new Set(
    result.events
      .filter((e) => e.type === 'marketResumed')
      .map((e) => (e as { market: string }).market),
  );
  for (const [m, trades] of before.halted) {
    if (m.retired || !m.halted || resumed.has(m.params.instrument)) continue;
    assert.equal(m.tradeCount, trades, `${m.params.instrument} traded while halted`);
  }
  // At the free-collateral edge: alone in its block (the marks are set before
  // the transactions, and nothing was liquidated after), an accepted outflow
  // leaves free collateral ≥ 0, and one refused for it was more than there was.
  const liquidated = result.events.some(
    (e) => e.type.startsWith('liquidation') || e.type === 'deleverage',
  );
  if (sent.length === 1 && !liquidated && sent[0]!.agent < 0) {
    const s = sent[0]!;
    const a = s.tx.action;
    const r = result.results[0]!;
    if (r.ok && (a.kind === 'withdraw' || a.kind === 'transfer')) {
      const sub = a.kind === 'withdraw' ? s.tx.subaccount : a.fromSubaccount;
      const from = d.account(s.trader, sub);
      const ar = r.actions[0]!;
      if (from !== undefined) {
        const free = freeCollateralQuote(state, from);
        if (ar.ok) assert.ok(free >= 0n, `a ${a.kind} left free collateral ${free}`);
        else if (ar.code === 'InsufficientFunds') {
          assert.ok(
            free < a.amountQuote,
            `a ${a.kind} of ${a.amountQuote} refused with ${free} free`,
          );
        }
      }
    }
  }
  checkClientIds(state);
  checkRetired(state);
}

interface Held {
  cash: bigint;
  /** Instrument → (signed lots, lots per whole base unit). */
  lots: Map<string, { lots: number; lotsPerBase: number }>;
}

/** Accounts whose positions are all in listed markets, with their sizes and cash. */
function listedOnly(state: ExchangeState): Map<Account, Held> {
  const out = new Map<Account, Held>();
  for (const a of state.accounts) {
    if (a.positionCount === 0 || a.positions.some((p) => p.sizeLots !== 0)) continue;
    const lots = new Map<string, { lots: number; lotsPerBase: number }>();
    for (const p of a.listed) {
      if (p.sizeLots === 0) continue;
      const m = state.markets[p.market]!;
      lots.set(m.params.instrument, { lots: p.sizeLots, lotsPerBase: m.params.lotsPerBase });
    }
    out.set(a, { cash: a.cashQuote, lots });
  }
  return out;
}

function floorDiv(x: bigint, y: bigint): bigint {
  const q = x / y;
  return q * y > x ? q - 1n : q;
}

/**
 * An account that held only positions the block settled, and that nothing
 * else in the block touched, received floor(size × value / lotsPerBase) for
 * each (a short pays rounded up), and nothing more.
 */
function checkSettlementCash(
  state: ExchangeState,
  settled: readonly Extract<ExchangeEvent, { type: 'marketSettled' }>[],
  held: Map<Account, Held>,
  touched: Set<Account>,
): void {
  const values = new Map(settled.map((e) => [e.market, e.valueQuote]));
  for (const [a, before] of held) {
    if (touched.has(a) || state.deficits.has(a) || a.cashQuote < 0n) continue;
    let expected = before.cash;
    let all = true;
    for (const [name, p] of before.lots) {
      const value = values.get(name);
      if (value === undefined) all = false;
      else expected += floorDiv(BigInt(p.lots) * value, BigInt(p.lotsPerBase));
    }
    if (all) assert.equal(a.cashQuote, expected, `account ${a.index}: cash after settlement`);
  }
}

export function run(
  seed: number,
  blocks: number,
  markIntervalMs?: number,
  stats: Map<string, number> = new Map(),
): { settled: number; trades: number } {
  const d = new Driver(seed, markIntervalMs);
  const h = d.h;
  for (const k of TRADERS) {
    h.fund(k, 200_000n * USDC);
    h.fund(k, 20_000n * USDC, 1);
  }
  let twin: { ex: Exchange; left: number } | null = null;
  let settled = 0;
  let trades = 0;
  for (let height = 0; height < blocks; height++) {
    const sent = d.txs();
    d.moveOracle();
    const state = h.ex.state;
    const halted = new Map<MarketState, number>();
    for (const m of state.markets) if (!m.retired && m.halted) halted.set(m, m.tradeCount);
    const before = { withdrawn: state.withdrawnQuote, halted };
    const positions = listedOnly(state);
    const dt = d.dt();
    h.smiles = smilesAt(h.timeMs + dt);
    const block = h.nextBlock(
      sent.map((s) => s.tx),
      dt,
    );
    let result: BlockResult;
    try {
      result = h.ex.finalizeBlock(block);
    } catch (e) {
      throw new Error(`seed ${seed} height ${block.height}: ${(e as Error).message}`, { cause: e });
    }
    if (twin !== null) {
      const other: BlockResult = twin.ex.finalizeBlock(block);
      assert.equal(
        JSON.stringify(other, replacer),
        JSON.stringify(result, replacer),
        `seed ${seed} height ${block.height}: a restored node ran the block differently`,
      );
      if (--twin.left === 0) twin = null;
    }
    assert.deepEqual(h.ex.digestFromScratch(), h.ex.digestBytes(), `seed ${seed}: digest drifted`);
    try {
      checkBlock(d, sent, result, before);
      const settledEvents = result.events.filter(
        (e): e is Extract<ExchangeEvent, { type: 'marketSettled' }> => e.type === 'marketSettled',
      );
      settled += settledEvents.length;
      if (settledEvents.length > 0) {
        const touched = new Set<Account>();
        for (const s of sent) {
          if (s.trader < 0) continue;
          const p = h.ex.state.principals.get(bytesKey(TRADERS[s.trader]!.address));
          for (const a of p?.subaccounts.values() ?? []) touched.add(a);
        }
        for (const r of result.results) {
          for (const a of r.actions) {
            if (!a.ok || a.order === undefined) continue;
            for (const f of a.order.fills) touched.add(h.ex.state.accounts[f.makerAccount]!);
          }
        }
        for (const e of result.events) {
          if ('account' in e && typeof e.account === 'number')
            touched.add(h.ex.state.accounts[e.account]!);
          if (e.type === 'deleverage') touched.add(h.ex.state.accounts[e.counterparty]!);
        }
        checkSettlementCash(h.ex.state, settledEvents, positions, touched);
      }
    } catch (e) {
      throw new Error(`seed ${seed} height ${block.height}: ${(e as Error).message}`, { cause: e });
    }
    for (const r of result.results) {
      if (!r.ok) count(stats, `tx:${r.code}`);
      for (const a of r.actions) {
        if (a.ok && a.order !== undefined) trades += a.order.fills.length;
        count(stats, a.ok ? `${a.kind}:ok` : `${a.kind}:${a.code}`);
      }
    }
    for (const e of result.events) count(stats, `event:${e.type}`);
    if (twin === null && height % 7 === 3) {
      const bytes = encodeSnapshot(h.ex);
      const restored = decodeSnapshot(bytes, { checkInvariants: true });
      assert.deepEqual(restored.appHash, h.ex.appHash, `seed ${seed}: restored appHash`);
      assert.deepEqual(encodeSnapshot(restored), bytes, `seed ${seed}: snapshot re-encodes`);
      twin = { ex: restored, left: 3 };
    }
  }
  return { settled, trades };
}
