// The paths a trader's money takes besides plain matching, seeded and run
// block by block: perpetual funding (a sample each minute, a payment each
// hour), dated futures and options from listing through expiry to settlement
// (some waiting past expiry, halted, for a fresh price), leveraged traders
// liquidated in the same blocks, transfers, withdrawals and faucet draws at
// the free-collateral edge, an insurance fund that runs dry, smiles and an
// index that go stale. After every block, besides the harness's invariants
// (collateral conserved to the unit, long = short open interest per market):
//   - the incremental digest equals the one from scratch;
//   - each funding payment is what its holders owe and receive, each
//     size × mark × k × rate rounded against the holder, its dust paid −
//     received, less than a unit per position;
//   - each settlement pays each holder floor(size × value / lotsPerBase), its
//     dust −Σ of them and less than a unit per position, and leaves nothing
//     of its market: no name, order, record or holder;
//   - a node restored from a snapshot of the block has the same appHash, the
//     same equity, initial and maintenance margin for every account (its
//     margins taken afresh, the running node's from the scenario sums it
//     kept across the block's settlements), and runs the next block to the
//     same results, events and appHash;
//   - the read model's account updates (src/node/view.ts) say what the state
//     holds: balances, margins, positions, which orders rest; every holder of
//     a settled market gets its closed position (flat, with the entry it
//     had, its funding, and the realized PnL settlement left on its record),
//     and every order resting there before the block reads cancelled; every
//     position the block's trades closed (fills, liquidations, deleveraging)
//     is listed flat too, with its record's realized PnL and funding and the
//     entry it had, and no flat row lists a position the block did not trade.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../src/lib/prng.ts';
import type { BlockUpdate } from '../../src/api/view.ts';
import { formatAddress } from '../../src/crypto/address.ts';
import { daysFromCivil, expiryMsOfDay, MS_PER_DAY } from '../../src/exchange/instruments/index.ts';
import { booksOf } from '../../src/exchange/hash.ts';
import {
  equityQuote,
  freeCollateralQuote,
  initialMarginQuote,
  maintenanceMarginQuote,
} from '../../src/exchange/margin.ts';
import { positionOf } from '../../src/exchange/position.ts';
import { decodeSnapshot, encodeSnapshot } from '../../src/exchange/snapshot.ts';
import type { Exchange, Genesis } from '../../src/exchange/index.ts';
import type { BlockResult, ExchangeEvent } from '../../src/exchange/results.ts';
import type { Account, ExchangeState, MarketState, Position } from '../../src/exchange/state.ts';
import type { SignedTx } from '../../src/exchange/tx/types.ts';
import { Harness, USDC, dailyListingGenesis, key, limit, replacer } from './helpers.ts';
import { standInView } from '../node/view_fixtures.ts';
import { silentLog } from '../../src/node/log.ts';

const MINUTE_MS = 60_000;
/** Monday 2 March 2026, 05:00 UTC: three hours before the first daily expiry. */
const START_MS = daysFromCivil(2026, 3, 2) * MS_PER_DAY + 5 * 60 * MINUTE_MS;
/** A flat smile: total variance for 50% volatility over eight hours. */
const FLAT = { a: 228_000_000_000_000n, b: 0n, rho: 0n, m: 0n, sigma: 100_000_000_000_000_000n };
const TRADERS = [0, 1, 2, 3, 4, 5, 6].map((i) => key(`money-paths-${i}`));
/** Traders 0 and 1 quote; the others take, leveraged. */
const MAKERS = 2;

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

/** Odd seeds mark options once per interval; every third has no price monitoring; even ones start with no insurance fund. */
function moneyGenesis(seed: number): Genesis {
  const g = dailyListingGenesis(START_MS);
  if (seed % 2 === 1) g.listing!.markIntervalMs = 1_000 * (1 + (seed % 7));
  if (seed % 3 === 0) g.markets = g.markets.map((m) => ({ ...m, triggers: [] }));
  g.insuranceFundQuote = seed % 2 === 0 ? 0n : 2_000n * USDC;
  g.faucetQuoteMax = 10_000_000n * USDC;
  return g;
}

type Counts = Record<string, number>;

/**
 * Every live market's holders (their sizes), resting orders and lot
 * arithmetic before a block: funding and settlement come before the block's
 * transactions and auctions, so they pay these holders.
 */
interface Before {
  held: Map<string, Map<Account, number>>;
  /** Each holder's position record and its cost basis (settlement zeroes it, then drops the record). */
  records: Map<string, Map<Account, { record: Position; basis: bigint }>>;
  resting: Map<number, { owner: Account; market: string }>;
  lots: Map<string, { lotsPerBase: bigint; k: bigint }>;
}

function before(state: ExchangeState): Before {
  const held = new Map<string, Map<Account, number>>();
  const records = new Map<string, Map<Account, { record: Position; basis: bigint }>>();
  const resting = new Map<number, { owner: Account; market: string }>();
  const lots = new Map<string, { lotsPerBase: bigint; k: bigint }>();
  for (const m of state.markets) {
    if (m.retired) continue;
    lots.set(m.params.instrument, { lotsPerBase: BigInt(m.params.lotsPerBase), k: m.k });
    const sizes = new Map<Account, number>();
    const kept = new Map<Account, { record: Position; basis: bigint }>();
    for (const a of m.holders) {
      const record = positionOf(a, m)!;
      sizes.set(a, record.sizeLots);
      kept.set(a, { record, basis: record.costBasisQuote });
    }
    held.set(m.params.instrument, sizes);
    records.set(m.params.instrument, kept);
    for (const book of booksOf(m)) {
      for (const side of ['buy', 'sell'] as const) {
        for (const o of book.ordersOf(side)) {
          resting.set(o.orderId, { owner: state.accounts[o.owner]!, market: m.params.instrument });
        }
      }
    }
  }
  return { held, records, resting, lots };
}

function floorDiv(x: bigint, y: bigint): bigint {
  const q = x / y;
  return q * y > x ? q - 1n : q;
}

function ceilDiv(x: bigint, y: bigint): bigint {
  return -floorDiv(-x, y);
}

/** Funding and settlement events against what the holders held before the block. */
function checkEvents(
  at: string,
  state: ExchangeState,
  events: readonly ExchangeEvent[],
  b: Before,
  count: (what: string) => void,
): void {
  for (const e of events) {
    if (e.type === 'funding') {
      const holders = b.held.get(e.market)!;
      let paid = 0n;
      let received = 0n;
      const rate = BigInt(e.ratePpm);
      for (const size of holders.values()) {
        const notional = BigInt(size) * BigInt(e.markTicks) * b.lots.get(e.market)!.k;
        const owed = notional * rate; // > 0: the holder pays
        const abs = owed < 0n ? -owed : owed;
        if (owed > 0n) paid += ceilDiv(abs, 1_000_000n);
        else received += floorDiv(abs, 1_000_000n);
      }
      assert.equal(e.paidQuote, paid, `${at}: ${e.market} funding paid`);
      assert.equal(e.receivedQuote, received, `${at}: ${e.market} funding received`);
      assert.equal(e.dustQuote, paid - received, `${at}: ${e.market} funding dust`);
      assert.ok(
        e.dustQuote >= 0n && e.dustQuote < BigInt(Math.max(1, holders.size)),
        `${at}: ${e.market} funding dust ${e.dustQuote} over ${holders.size} positions`,
      );
      if (paid > 0n) count('fundingPaid');
    } else if (e.type === 'marketSettled') {
      const holders = b.held.get(e.market)!;
      let total = 0n;
      for (const size of holders.values()) {
        total += floorDiv(BigInt(size) * e.valueQuote, b.lots.get(e.market)!.lotsPerBase);
      }
      assert.equal(e.positions, holders.size, `${at}: ${e.market} positions settled`);
      assert.equal(e.dustQuote, -total, `${at}: ${e.market} settlement dust`);
      assert.ok(
        e.dustQuote >= 0n && e.dustQuote < BigInt(Math.max(1, holders.size)),
        `${at}: ${e.market} settlement dust ${e.dustQuote} over ${holders.size} positions`,
      );
      // Nothing of the market is left: its slot is free or holds another market.
      assert.equal(state.marketByName.get(e.market), undefined, `${at}: ${e.market} still named`);
      for (const m of state.markets) {
        if (m.params.instrument !== e.market) continue;
        assert.ok(m.retired, `${at}: ${e.market} still live`);
        assert.equal(m.holders.size + m.records.size + m.book.orderCount, 0, `${at}: ${e.market}`);
      }
      for (const [orderId, r] of b.resting) {
        if (r.market === e.market)
          assert.ok(!state.orders.has(orderId), `${at}: order ${orderId} of ${e.market} rests`);
      }
      count('settled');
      if (holders.size > 0) count('settledWithHolders');
    }
  }
}

/** A restored node holds every account with the same equity and margins, its own taken afresh. */
function checkRestored(at: string, ex: Exchange, copy: Exchange): void {
  assert.deepEqual(copy.appHash, ex.appHash, `${at}: restored appHash`);
  for (const a of ex.state.accounts) {
    const c = copy.state.accounts[a.index]!;
    const margins = (s: ExchangeState, x: Account) => [
      equityQuote(s, x),
      initialMarginQuote(s, x),
      maintenanceMarginQuote(s, x),
    ];
    assert.deepEqual(
      margins(ex.state, a),
      margins(copy.state, c),
      `${at}: account ${a.index} margins kept and taken afresh`,
    );
  }
}

/** The block's account updates against the state, and the settlements against the holders before it. */
function checkView(
  at: string,
  state: ExchangeState,
  u: BlockUpdate,
  events: readonly ExchangeEvent[],
  b: Before,
  count: (what: string) => void,
): void {
  const updates = new Map<Account, BlockUpdate['accounts'][number]>();
  for (const a of state.accounts) {
    const address = formatAddress(a.address);
    const up = u.accounts.find((x) => x.address === address && x.subaccount === a.subaccount);
    if (up === undefined) continue;
    updates.set(a, up);
    const equity = equityQuote(state, a);
    const initial = initialMarginQuote(state, a);
    const where = `${at}: account ${a.index}'s update`;
    assert.equal(up.cashQuote, String(a.cashQuote), `${where}: cash`);
    assert.equal(up.equityQuote, String(equity), `${where}: equity`);
    assert.equal(up.marginUsedQuote, String(initial), `${where}: initial margin`);
    assert.equal(
      up.maintenanceMarginQuote,
      String(maintenanceMarginQuote(state, a)),
      `${where}: maintenance margin`,
    );
    assert.equal(up.marginFreeQuote, String(equity - initial), `${where}: free`);
    const held: [string, number][] = [];
    for (const m of state.markets) {
      const p = m.retired ? undefined : positionOf(a, m);
      if (p !== undefined && p.sizeLots !== 0) held.push([m.params.instrument, p.sizeLots]);
    }
    assert.deepEqual(
      up.positions
        .filter((p) => p.sizeLots !== 0)
        .map((p) => [p.instrument, p.sizeLots])
        .sort(),
      held.sort(),
      `${where}: positions`,
    );
    for (const o of up.orders) {
      const rests = state.orders.get(o.orderId)?.account === a;
      assert.equal(o.status === 'open', rests, `${where}: order ${o.orderId} ${o.status}`);
    }
  }
  // Each position the block's trades closed (fills, liquidations, deleveraging)
  // is listed once more, flat: the record's realized PnL and funding, and the
  // entry it had; one the block only reduced (no fill adding to it) closes at
  // the entry it had before the block, up to the rounding of what the partial
  // closes left in its basis.
  const settled = new Set(events.flatMap((e) => (e.type === 'marketSettled' ? [e.market] : [])));
  for (const m of state.markets) {
    if (m.retired) continue;
    const name = m.params.instrument;
    for (const [a, size] of b.held.get(name) ?? []) {
      const record = positionOf(a, m)!;
      if (record.sizeLots !== 0) continue;
      const where = `${at}: account ${a.index}'s ${name} position (${size}), closed`;
      const up = updates.get(a);
      const row = up?.positions.find((p) => p.instrument === name);
      assert.ok(row !== undefined, `${where}: listed`);
      assert.deepEqual(
        { ...row, entryPriceTicks: 0 },
        {
          instrument: name,
          sizeLots: 0,
          entryPriceTicks: 0,
          unrealizedPnlQuote: '0',
          realizedPnlQuote: String(record.realizedPnlQuote),
          fundingQuote: String(record.fundingQuote),
        },
        where,
      );
      const kept = b.records.get(name)!.get(a)!;
      const denominator = BigInt(size) * b.lots.get(name)!.k;
      const had = Number((kept.basis * 2n + denominator) / (2n * denominator));
      const reducing = size > 0 ? 'sell' : 'buy';
      if (up!.fills.every((f) => f.instrument !== name || f.side === reducing)) {
        assert.ok(
          Math.abs(row.entryPriceTicks - had) <= 1,
          `${where}: entry ${had}, listed ${row.entryPriceTicks}`,
        );
        count(
          up!.fills.some((f) => f.instrument === name)
            ? 'viewClosedByFill'
            : 'viewClosedByDeleverage',
        );
      } else {
        assert.ok(row.entryPriceTicks > 0, `${where}: an entry`);
        count('viewClosedAfterAdding');
      }
    }
  }
  for (const up of updates.values()) {
    for (const p of up.positions) {
      if (p.sizeLots === 0 && !settled.has(p.instrument)) {
        const a = state.accounts.find(
          (x) => formatAddress(x.address) === up.address && x.subaccount === up.subaccount,
        )!;
        const m = state.marketByName.get(p.instrument)!;
        assert.equal(positionOf(a, m)?.sizeLots, 0, `${at}: a flat row is flat`);
        assert.ok(
          up.fills.some((f) => f.instrument === p.instrument) ||
            events.some(
              (e) =>
                e.type === 'deleverage' &&
                e.market === p.instrument &&
                (e.account === a.index || e.counterparty === a.index),
            ),
          `${at}: a flat row of a position the block traded`,
        );
      }
    }
  }
  for (const e of events) {
    if (e.type !== 'marketSettled') continue;
    for (const [a, size] of b.held.get(e.market)!) {
      const up = updates.get(a);
      const s = up?.settlements?.find((x) => x.instrument === e.market);
      assert.ok(
        s !== undefined && s.sizeLots === size && s.valueQuote === String(e.valueQuote),
        `${at}: holder ${a.index} of ${e.market} (${size}) reads ${JSON.stringify(up?.settlements)}`,
      );
      // The closing row: the record's final realized PnL (settlement booked it
      // there before dropping it), its funding, and the entry it had.
      const kept: { record: Position; basis: bigint } = b.records.get(e.market)!.get(a)!;
      const denominator: bigint = BigInt(size) * b.lots.get(e.market)!.k;
      const entry: bigint = (kept.basis * 2n + denominator) / (2n * denominator);
      assert.deepEqual(
        up!.positions.find((p) => p.instrument === e.market),
        {
          instrument: e.market,
          sizeLots: 0,
          entryPriceTicks: Number(entry < 0n ? 0n : entry),
          unrealizedPnlQuote: '0',
          realizedPnlQuote: String(kept.record.realizedPnlQuote),
          fundingQuote: String(kept.record.fundingQuote),
        },
        `${at}: holder ${a.index}'s closed ${e.market} position`,
      );
      count('viewSettledHolder');
    }
    for (const [orderId, r] of b.resting) {
      if (r.market !== e.market) continue;
      const o = updates.get(r.owner)?.orders.find((x) => x.orderId === orderId);
      assert.equal(o?.status, 'cancelled', `${at}: order ${orderId} of settled ${e.market}`);
      count('viewSettledOrder');
    }
  }
}

class Driver {
  readonly r: Prng;
  readonly h: Harness;
  private price: Record<string, bigint> = { BTC: 50_000n * USDC, ETH: 3_000n * USDC };
  private stale: string | null = null;
  private smilesOffFor = 0;

  constructor(readonly seed: number) {
    this.r = new Prng(seed);
    this.h = new Harness(moneyGenesis(seed));
    this.h.smiles = smilesAt(this.h.timeMs);
  }

  int(n: number): number {
    return this.r.int(n);
  }

  chance(percent: number): boolean {
    return this.r.int(100) < percent;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.r.int(xs.length)]!;
  }

  fund(): void {
    for (const [i, k] of TRADERS.entries()) {
      this.h.fund(k, i < MAKERS ? 800_000n * USDC : BigInt(500 + this.int(8_000)) * USDC);
      if (this.chance(60)) this.h.fund(k, BigInt(500 + this.int(3_000)) * USDC, 1);
    }
  }

  /** Live markets of the underlying that take orders, nearest expiry first (perpetual first). */
  near(underlying: string): MarketState[] {
    const state = this.h.ex.state;
    return [...state.marketByName.values()]
      .filter((m) => m.params.underlying === underlying && m.markTicks > 0)
      .filter((m) => m.expiryMs === 0 || m.expiryMs > state.timeMs)
      .sort((x, y) => x.expiryMs - y.expiryMs);
  }

  txs(): SignedTx[] {
    const h = this.h;
    const state = h.ex.state;
    const txs: SignedTx[] = [];
    for (let mm = 0; mm < MAKERS; mm++) {
      const k = TRADERS[mm]!;
      txs.push(h.tx(k, { kind: 'cancelAll' }));
      for (const m of this.near(mm === 0 ? 'BTC' : this.pick(['BTC', 'ETH'])).slice(0, 8)) {
        if (!this.chance(60)) continue;
        const option = m.instrument.kind === 'option';
        const spread = Math.max(1, Math.floor(m.markTicks / (option ? 20 : 400)));
        const size = option ? 1 + this.int(20) : 1 + this.int(2_000);
        const name = m.params.instrument;
        txs.push(h.tx(k, limit(name, 'buy', Math.max(1, m.markTicks - spread), size)));
        txs.push(h.tx(k, limit(name, 'sell', m.markTicks + spread, size)));
      }
    }
    for (let n = this.int(8); n > 0; n--) {
      const k = TRADERS[MAKERS + this.int(TRADERS.length - MAKERS)]!;
      const sub = this.chance(80) ? 0 : 1;
      const roll = this.int(100);
      if (roll < 70) {
        const markets = this.near(this.pick(['BTC', 'ETH'])).slice(0, 10);
        if (markets.length === 0) continue;
        const m = this.pick(markets);
        const buy = this.chance(50);
        // Up to 6% through the mark: now and then beyond a price monitoring bound.
        const away = Math.floor((m.markTicks * this.int(60)) / 1_000);
        const price = buy ? m.markTicks + away : Math.max(1, m.markTicks - away);
        const size = m.instrument.kind === 'option' ? 1 + this.int(30) : 1 + this.int(5_000);
        const tif = this.pick(['IOC', 'GTC', 'GTC'] as const);
        const reduceOnly = tif === 'IOC' && this.chance(10);
        const order = limit(m.params.instrument, buy ? 'buy' : 'sell', price, size, {
          timeInForce: tif,
          reduceOnly,
        });
        txs.push(h.tx(k, order, { subaccount: sub }));
        continue;
      }
      const a = h.account(k, sub);
      const free = a === undefined ? 0n : freeCollateralQuote(state, a);
      const amountQuote = this.pick([free, free / 2n, free + 1n, 100n * USDC, 1n]);
      if (roll < 96 && amountQuote <= 0n) continue;
      if (roll < 80) {
        txs.push(
          h.tx(k, { kind: 'withdraw', amountQuote, destination: 'out' }, { subaccount: sub }),
        );
      } else if (roll < 92) {
        const action = { kind: 'transfer' as const, fromSubaccount: sub, toSubaccount: 1 - sub };
        txs.push(h.tx(k, { ...action, amountQuote }));
      } else if (roll < 96) {
        const amount = BigInt(100 + this.int(3_000)) * USDC;
        txs.push(h.tx(k, { kind: 'faucet', amountQuote: amount }, { subaccount: sub }));
      } else {
        txs.push(h.tx(k, { kind: 'cancelAll' }, { subaccount: sub }));
      }
    }
    return txs;
  }

  /**
   * The index walks (now and then a jump of 3–12%), an underlying goes stale
   * for a while, and the smiles stop for a while. Odd seeds hold BTC's index
   * back from 50 minutes before an expiry to 15 after it (the price of a
   * block holds until the next, at most 13 minutes later, so none counts in
   * the 30-minute window): its dated markets then wait past expiry, halted,
   * for the first fresh price.
   */
  moveOracle(nowMs: number): void {
    const next: Record<string, bigint> = {};
    for (const u of ['BTC', 'ETH']) {
      const p = this.price[u]!;
      const bps = this.chance(4)
        ? (this.chance(50) ? 1 : -1) * (300 + this.int(900))
        : this.int(101) - 50;
      next[u] = p + (p * BigInt(bps)) / 10_000n;
    }
    this.price = next;
    if (this.stale === null && this.chance(3)) this.stale = this.pick(['BTC', 'ETH']);
    else if (this.stale !== null && this.chance(20)) this.stale = null;
    const oracle = { ...next };
    if (this.stale !== null) delete oracle[this.stale];
    const expiryMs = expiryMsOfDay(Math.floor(nowMs / MS_PER_DAY));
    if (
      this.seed % 2 === 1 &&
      nowMs > expiryMs - 50 * MINUTE_MS &&
      nowMs < expiryMs + 15 * MINUTE_MS
    )
      delete oracle.BTC;
    this.h.oracle = oracle;
    if (this.smilesOffFor === 0 && this.chance(4)) this.smilesOffFor = 3 + this.int(25);
    this.h.smiles = this.smilesOffFor > 0 ? null : smilesAt(nowMs);
    if (this.smilesOffFor > 0) this.smilesOffFor--;
  }

  dt(): number {
    return this.pick([1_000, 1_000, 5_000, 20_000, MINUTE_MS, 5 * MINUTE_MS, 13 * MINUTE_MS]);
  }
}

function run(seed: number, blocks: number, counts: Counts): void {
  const count = (what: string) => (counts[what] = (counts[what] ?? 0) + 1);
  const d = new Driver(seed);
  const h = d.h;
  d.fund();
  // The view checks what it keeps of each position against the exchange: it must never differ.
  const drift: string[] = [];
  const log = {
    ...silentLog,
    error: (f: object, m: string) => drift.push(`${m} ${JSON.stringify(f)}`),
  };
  const { view, deliver } = standInView(h, { log });
  let twin: Exchange | null = null;
  try {
    for (let i = 0; i < blocks; i++) {
      const state = h.ex.state;
      const dt = d.dt();
      // Nonces from the block's own time (a gap of minutes would leave older ones stale).
      h.timeMs += dt;
      const txs = d.txs();
      h.timeMs -= dt;
      d.moveOracle(h.timeMs + dt);
      const b = before(state);
      const block = h.nextBlock(txs, dt);
      const at = `seed ${seed} height ${block.height}`;
      let result: BlockResult;
      try {
        result = h.ex.finalizeBlock(block);
      } catch (e) {
        throw new Error(`${at}: ${(e as Error).message}`, { cause: e });
      }
      if (twin !== null) {
        const other: BlockResult = twin.finalizeBlock(block);
        assert.equal(
          JSON.stringify(other, replacer),
          JSON.stringify(result, replacer),
          `${at}: the node restored before the block ran it otherwise`,
        );
      }
      assert.deepEqual(h.ex.digestFromScratch(), h.ex.digestBytes(), `${at}: digest drifted`);
      checkEvents(at, h.ex.state, result.events, b, count);
      let update: BlockUpdate | undefined;
      const stop = view.subscribe((u) => (update = u));
      deliver(result, txs);
      stop();
      assert.ok(update !== undefined, `${at}: the view published the block`);
      assert.deepEqual(drift, [], `${at}: the view's positions are the exchange's`);
      checkView(at, h.ex.state, update, result.events, b, count);
      const bytes = encodeSnapshot(h.ex);
      const copy = decodeSnapshot(bytes, { checkInvariants: true });
      checkRestored(at, h.ex, copy);
      assert.deepEqual(encodeSnapshot(copy), bytes, `${at}: the snapshot re-encodes`);
      twin = copy;
      for (const e of result.events) count(e.type);
      for (const r of result.results) {
        for (const a of r.actions) count(a.ok ? `${a.kind}:ok` : `${a.kind}:${a.code}`);
      }
    }
  } finally {
    view.close();
  }
}

test('property: funding, settlement, liquidation and collateral moves across blocks: paid once, to the unit, restored alike, and as the read model says', () => {
  const counts: Counts = {};
  for (const seed of [1, 2, 3, 4]) run(seed, 150, counts);
  // The runs reached the paths they are for.
  for (const what of [
    'fundingPaid',
    'settledWithHolders',
    'viewSettledHolder',
    'viewSettledOrder',
    'viewClosedByFill',
    'viewClosedByDeleverage',
    'marketHalted',
    'liquidation',
    'deleverage',
    'insuranceCover',
    'withdraw:ok',
    'withdraw:OracleStale',
    'transfer:ok',
    'faucet:ok',
  ]) {
    assert.ok((counts[what] ?? 0) > 0, `never reached ${what}: ${JSON.stringify(counts)}`);
  }
});
