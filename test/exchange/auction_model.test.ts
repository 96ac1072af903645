// Circuit breakers, volatility auctions and dated-market settlement against
// the reference of auction_reference.ts (written from the docs): seeded runs
// of random order flow around and through the triggers' bounds and the price
// band, oracle jumps, auctions with every order type, cancels and amends,
// self-trades, governance halts landing in auctions, good-til expiry in
// auctions, an open-interest cap; every result, event, resting and auction
// order and position must equal the reference's after every block, the
// invariants hold (checkInvariants), and a node restored from a snapshot in
// the middle of a run gives the same results and appHash from there on. A
// second driver lists a daily expiry and settles its future and options
// while the perpetual's auction, or a halt, is under way.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../src/lib/prng.ts';
import { decodeSnapshot, encodeSnapshot } from '../../src/exchange/index.ts';
import type { BlockResult, Exchange, ExchangeEvent, Genesis } from '../../src/exchange/index.ts';
import type { ActionResult } from '../../src/exchange/results.ts';
import type { Action, PlaceOrder, SignedTx } from '../../src/exchange/tx/types.ts';
import { sizeIn } from '../../src/exchange/position.ts';
import type { MarketState } from '../../src/exchange/state.ts';
import { daysFromCivil, expiryMsOfDay } from '../../src/exchange/instruments/index.ts';
import {
  Harness,
  USDC,
  VALIDATORS,
  dailyListingGenesis,
  genesis,
  key,
  limit,
  replacer,
} from './helpers.ts';
import type { Key } from './helpers.ts';
import { RefMarket, RefTwap, optionValue, settlementCash } from './auction_reference.ts';
import type { REvent, RPlace, RResult, Stp, Tif, Trigger } from './auction_reference.ts';

const BTC = 'BTC-PERPETUAL';
const TRIGGERS: Trigger[] = [
  { horizonMs: 4_000, maxMoveBps: 100, auctionMs: 3_000 },
  { horizonMs: 12_000, maxMoveBps: 250, auctionMs: 7_000 },
];
const STPS: Stp[] = ['cancelResting', 'cancelIncoming', 'cancelBoth'];

interface Variant {
  priceBandPpm?: number;
  openInterestCapLots?: number;
}

/**
 * The devnet with BTC monitored by two triggers, one premium sample an hour
 * (a run stays inside the first hour: no sample, so the mark is the index),
 * one fee tier, 6 open orders an account.
 */
function auctionGenesis(v: Variant): Genesis {
  const { listing: _listing, ...base } = genesis();
  const markets = base.markets.map((m) => {
    if (m.instrument !== BTC) return m;
    const p = {
      ...m,
      triggers: TRIGGERS,
      openOrdersMax: 6,
      fundingSampleMs: 3_600_000,
      fundingIntervalMs: 3_600_000,
    };
    if (v.priceBandPpm !== undefined) p.priceBandPpm = v.priceBandPpm;
    if (v.openInterestCapLots !== undefined) p.openInterestCapLots = v.openInterestCapLots;
    return p;
  });
  return {
    ...base,
    markets,
    feeTiers: [{ volumeQuoteMin: 0n, makerFeePpm: 200, takerFeePpm: 500 }],
  };
}

function btc(ex: Exchange): MarketState {
  return ex.state.marketByName.get(BTC)!;
}

export interface Stats {
  counts: Map<string, number>;
}

function bump(s: Stats, k: string): void {
  s.counts.set(k, (s.counts.get(k) ?? 0) + 1);
}

/** An exchange action result in the reference's shape. */
function actual(r: ActionResult): RResult {
  if (!r.ok) return { ok: false, code: r.code };
  const out: RResult = { ok: true };
  if (r.order !== undefined) {
    out.order = {
      orderId: r.order.orderId,
      status: r.order.status as 'rested' | 'filled' | 'cancelled',
      reason: r.order.reason,
      filledLots: r.order.filledLots,
      restedLots: r.order.restedLots,
      cancelledLots: r.order.cancelledLots,
      fills: r.order.fills.map((f) => ({ ...f })),
    };
  }
  if (r.count !== undefined) out.count = r.count;
  return out;
}

const MARKET_EVENTS = new Set([
  'orderExpired',
  'auctionStarted',
  'auctionTrade',
  'auctionEnded',
  'makerCancelled',
  'marketHalted',
  'marketResumed',
]);

function btcEvents(events: readonly ExchangeEvent[]): REvent[] {
  const out: REvent[] = [];
  for (const e of events) {
    assert.ok(
      !['liquidation', 'liquidationCancels', 'deleverage', 'insuranceCover'].includes(e.type),
      `the driver keeps accounts far from liquidation: ${JSON.stringify(e, replacer)}`,
    );
    if (!MARKET_EVENTS.has(e.type) || !('market' in e) || e.market !== BTC) continue;
    const { market: _m, ...rest } = e as ExchangeEvent & { market: string };
    out.push(rest as REvent);
  }
  return out;
}

interface Pending {
  tx: SignedTx;
  cls: number;
  run: () => RResult | null;
}

/** The orders of BTC's book and auction in the reference's terms, for comparison. */
function exchangeOrders(ex: Exchange) {
  const m = btc(ex);
  const row = (o: { orderId: number; priceTicks: number; sizeLots: number }) => {
    const meta = ex.state.orders.get(o.orderId)!;
    return { id: o.orderId, acct: meta.account.index, price: o.priceTicks, open: o.sizeLots };
  };
  const seqOf = (id: number) => ex.state.orders.get(id)!.seq;
  const auction = (side: 'buy' | 'sell') => {
    if (m.auction === null || !m.auction.active) return [];
    const book = side === 'buy' ? m.auction.bids : m.auction.asks;
    return [...book.ordersOf(side)]
      .map((o) => ({ ...row(o), seq: seqOf(o.orderId) }))
      .sort((x, y) =>
        x.price !== y.price
          ? side === 'buy'
            ? y.price - x.price
            : x.price - y.price
          : x.seq - y.seq,
      )
      .map(({ seq: _s, ...r }) => r);
  };
  return {
    bids: [...m.book.ordersOf('buy')].map(row),
    asks: [...m.book.ordersOf('sell')].map(row),
    auctionBids: auction('buy'),
    auctionAsks: auction('sell'),
  };
}

function referenceOrders(ref: RefMarket) {
  const row = (o: { id: number; acct: number; price: number; open: number }) => ({
    id: o.id,
    acct: o.acct,
    price: o.price,
    open: o.open,
  });
  const auction = (side: 'buy' | 'sell') =>
    ref.orders
      .filter((o) => o.auction && o.side === side)
      .sort((x, y) =>
        x.price !== y.price
          ? side === 'buy'
            ? y.price - x.price
            : x.price - y.price
          : x.time - y.time,
      )
      .map(row);
  return {
    bids: ref.bookSide('buy').map(row),
    asks: ref.bookSide('sell').map(row),
    auctionBids: auction('buy'),
    auctionAsks: auction('sell'),
  };
}

function ticksOf(quote: bigint): number {
  return Number(quote / 100_000n);
}

/** One seeded run of `blocks` blocks; returns nothing, asserts everything. */
function runAuctionModel(seed: number, blocks: number, v: Variant, stats: Stats): void {
  const rng = new Prng(seed);
  const h = new Harness(auctionGenesis(v), { checkInvariants: true });
  const traders: Key[] = Array.from({ length: 5 }, (_, i) => key(`auction-model-${seed}-${i}`));
  h.oracle = { ...h.oracle, BTC: 50_000n * USDC };
  // Fund everyone in one block.
  h.block(traders.map((t) => h.tx(t, { kind: 'faucet', amountQuote: 1_000_000n * USDC })));
  const acct = traders.map((t) => h.account(t)!.index);
  const m0 = btc(h.ex);
  const ref = new RefMarket(
    {
      k: m0.k,
      tickSizeQuote: m0.params.tickSizeQuote,
      marketSlippagePpm: m0.params.marketSlippagePpm,
      triggers: TRIGGERS,
      ...(v.priceBandPpm !== undefined ? { priceBandPpm: v.priceBandPpm } : {}),
      ...(v.openInterestCapLots !== undefined
        ? { openInterestCapLots: v.openInterestCapLots }
        : {}),
      openOrdersMax: 6,
      makerFeePpm: 200,
      takerFeePpm: 500,
    },
    h.ex.state.nextOrderId,
  );
  let oracleQuote = 50_000n * USDC;
  let proposalId = 1000 * seed;
  let restored: { ex: Exchange; h: Harness } | null = null;
  const snapshotAt = Math.floor(blocks / 2);

  for (let b = 0; b < blocks; b++) {
    // The oracle: mostly still or drifting, sometimes a jump through the bands.
    const roll = rng.int(100);
    if (roll < 18) {
      const bps = BigInt(rng.between(-450, 450));
      oracleQuote = (oracleQuote * (10_000n + bps)) / 10_000n;
    } else if (roll < 50) {
      oracleQuote += BigInt(rng.between(-30_000, 30_000)) * 1_000n;
    }
    if (rng.chance(1, 4)) oracleQuote = (oracleQuote / 100_000n) * 100_000n + 50_000n; // a tie
    h.oracle = { ...h.oracle, BTC: oracleQuote };
    const dt = rng.pick([400, 700, 1_000, 1_000, 1_500, 2_500]);

    // Transactions, built from what the reference holds.
    const pending: Pending[] = [];
    const nTx = rng.int(7);
    const center = (): number => {
      const last = ref.lastPrice !== 0 && rng.chance(1, 2) ? ref.lastPrice : ticksOf(oracleQuote);
      return Math.max(1, Math.floor((last * (10_000 + rng.between(-400, 400))) / 10_000));
    };
    for (let i = 0; i < nTx; i++) {
      const t = rng.int(traders.length);
      const k = traders[t]!;
      const a = acct[t]!;
      const mine = ref.orders.filter((o) => o.acct === a);
      const r = rng.int(100);
      if (r < 55 || mine.length === 0) {
        const side = rng.chance(1, 2) ? 'buy' : 'sell';
        const tr = rng.int(100);
        const tif: Tif = tr < 45 ? 'GTC' : tr < 62 ? 'postOnly' : tr < 80 ? 'IOC' : 'FOK';
        const market = tif !== 'GTC' && tif !== 'postOnly' && rng.chance(1, 4);
        const reduceOnly = !market && tif !== 'postOnly' && rng.chance(1, 12);
        const place: RPlace = {
          side,
          type: market ? 'market' : 'limit',
          sizeLots: rng.between(1, 30),
          tif,
          reduceOnly,
          stp: rng.pick(STPS),
        };
        if (!market) place.priceTicks = center();
        else if (rng.chance(1, 3)) place.priceTicks = center();
        if (tif === 'GTC' && !reduceOnly && rng.chance(1, 6))
          place.goodTilMs = h.timeMs + dt + rng.between(300, 6_000);
        const action: PlaceOrder = {
          kind: 'placeOrder',
          instrument: BTC,
          side,
          type: place.type,
          sizeLots: place.sizeLots,
          timeInForce: place.tif,
          reduceOnly,
          stp: place.stp,
        };
        if (place.priceTicks !== undefined) action.priceTicks = place.priceTicks;
        if (place.goodTilMs !== undefined) action.goodTilMs = place.goodTilMs;
        pending.push({
          tx: h.tx(k, action),
          cls: tif === 'postOnly' ? 2 : 3,
          run: () => ref.place(a, place),
        });
      } else if (r < 70) {
        const o = rng.pick(mine);
        const id = rng.chance(1, 10) ? 999_999 : o.id;
        pending.push({
          tx: h.tx(k, { kind: 'cancel', instrument: BTC, orderId: id }),
          cls: 1,
          run: () => ref.cancel(a, id),
        });
      } else if (r < 74) {
        pending.push({
          tx: h.tx(k, { kind: 'cancelAll', instrument: BTC }),
          cls: 1,
          run: () => ref.cancelAll(a),
        });
      } else {
        const o = rng.pick(mine);
        const amend: Action & { kind: 'amend' } = { kind: 'amend', instrument: BTC, orderId: o.id };
        const ar = rng.int(4);
        if (ar !== 1) amend.priceTicks = rng.chance(1, 3) ? o.price + rng.between(-3, 3) : center();
        if (ar !== 0) {
          const sr = rng.int(4);
          amend.sizeLots =
            sr === 0 ? Math.max(1, o.filled) : o.filled + Math.max(1, o.open + rng.between(-5, 5));
        }
        const { priceTicks, sizeLots } = amend;
        pending.push({
          tx: h.tx(k, amend),
          cls: 3,
          run: () => ref.amend(a, o.id, priceTicks, sizeLots),
        });
      }
    }
    // A governance halt or resume now and then: proposal, then two votes (3 of 4 validators).
    if (rng.chance(1, ref.halted ? 4 : 40)) {
      const id = ++proposalId;
      const kind = ref.halted ? 'resumeMarket' : 'haltMarket';
      const gov: Pending[] = [
        {
          tx: h.tx(VALIDATORS[0]!, {
            kind: 'govPropose',
            proposalId: id,
            proposal: { kind, instrument: BTC },
          }),
          cls: 3,
          run: () => null,
        },
        {
          tx: h.tx(VALIDATORS[1]!, { kind: 'govVote', proposalId: id, approve: true }),
          cls: 3,
          run: () => null,
        },
        {
          tx: h.tx(VALIDATORS[2]!, { kind: 'govVote', proposalId: id, approve: true }),
          cls: 3,
          run: () => {
            if (kind === 'haltMarket') ref.halt();
            else ref.resume();
            return null;
          },
        },
      ];
      // Interleaved with the block's orders, in the order proposed.
      const at = rng.int(pending.length + 1);
      pending.splice(at, 0, ...gov);
    }

    // The block through the exchange (and a restored node), then through the reference.
    const block = h.nextBlock(
      pending.map((p) => p.tx),
      dt,
    );
    const result: BlockResult = h.ex.finalizeBlock(block);
    if (restored !== null) {
      const r2: BlockResult = restored.ex.finalizeBlock(block);
      assert.deepEqual(
        JSON.stringify(r2, replacer),
        JSON.stringify(result, replacer),
        `seed ${seed} block ${b}: the restored node differs`,
      );
    }
    // The mark is taken before the uncross (step 2 before step 4): the index first.
    ref.setOraclePrice(oracleQuote);
    ref.beginBlock(h.timeMs);
    const expected = new Map<number, RResult | null>();
    const order = pending.map((p, i) => ({ p, i })).sort((x, y) => x.p.cls - y.p.cls || x.i - y.i);
    for (const { p, i } of order) expected.set(i, p.run());
    const where = `seed ${seed} block ${b} (t=${h.timeMs})`;
    for (let i = 0; i < pending.length; i++) {
      const tr = result.results[i]!;
      assert.ok(tr.ok, `${where}: tx ${i} refused: ${JSON.stringify(tr, replacer)}`);
      const want = expected.get(i)!;
      if (want === null) continue;
      const got = actual(tr.actions[0]!);
      assert.deepEqual(
        got,
        want,
        `${where}: tx ${i} ${JSON.stringify(pending[i]!.tx.action, replacer)}\n got ${JSON.stringify(got, replacer)}\nwant ${JSON.stringify(want, replacer)}`,
      );
      const kind = pending[i]!.tx.action.kind;
      bump(
        stats,
        got.ok
          ? `${kind}:${got.order?.status ?? 'ok'}:${got.order?.reason ?? ''}`
          : `${kind}:${got.code}`,
      );
    }
    // Expiries across the book and the auction's books come in no documented
    // order among themselves (each book's in (goodTilMs, orderId) order): by id.
    const expiriesById = (es: REvent[]): REvent[] => {
      const ids = (e: REvent) => (e.type === 'orderExpired' ? e.orderId : 0);
      const exp = es.filter((e) => e.type === 'orderExpired').sort((x, y) => ids(x) - ids(y));
      return [...exp, ...es.filter((e) => e.type !== 'orderExpired')];
    };
    const gotEvents = expiriesById(btcEvents(result.events));
    assert.deepEqual(
      gotEvents,
      expiriesById(ref.events),
      `${where}: events\n got ${JSON.stringify(gotEvents, replacer)}\nwant ${JSON.stringify(ref.events, replacer)}`,
    );
    for (const e of gotEvents) bump(stats, `event:${e.type}`);
    if (gotEvents.some((e) => e.type === 'auctionEnded' && e.volumeLots > 0))
      bump(stats, 'uncross:volume');
    if (gotEvents.some((e) => e.type === 'auctionTrade' && e.buyAccount === e.sellAccount))
      bump(stats, 'uncross:selfTrade');
    if (ref.halted && ref.inAuction && h.timeMs >= ref.auctionEndMs)
      bump(stats, 'uncross:waitsHalted');
    if (ref.inAuction && ref.orders.some((o) => o.goodTilMs !== 0)) bump(stats, 'auction:goodTil');
    assert.deepEqual(exchangeOrders(h.ex), referenceOrders(ref), `${where}: resting orders`);
    const m = btc(h.ex);
    assert.equal(m.auction!.monitor.auctionEndMs, ref.auctionEndMs, `${where}: auction end`);
    assert.equal(m.halted, ref.halted, `${where}: halted`);
    assert.equal(m.markTicks, ref.mark, `${where}: mark`);
    for (let t = 0; t < traders.length; t++) {
      assert.equal(
        sizeIn(h.account(traders[t]!)!, m),
        ref.position(acct[t]!),
        `${where}: position of ${t}`,
      );
    }
    assert.equal(m.longLots, ref.openInterest(), `${where}: open interest`);

    if (b === snapshotAt) {
      const bytes = encodeSnapshot(h.ex);
      const ex2 = decodeSnapshot(bytes, { checkInvariants: true });
      assert.deepEqual(encodeSnapshot(ex2), bytes, `${where}: snapshot round trip`);
      assert.deepEqual(ex2.appHash, h.ex.appHash, `${where}: restored appHash`);
      restored = { ex: ex2, h };
    }
    if (restored !== null) assert.deepEqual(restored.ex.appHash, h.ex.appHash, `${where}: appHash`);
  }
}

test('volatility auctions and circuit breakers equal the reference, block by block, restored or not', () => {
  const stats: Stats = { counts: new Map() };
  const variants: Variant[] = [{}, { priceBandPpm: 30_000 }, { openInterestCapLots: 60 }];
  for (let seed = 1; seed <= 6; seed++) runAuctionModel(seed, 120, variants[seed % 3]!, stats);
  // The flows must reach what they claim to check.
  for (const k of [
    'placeOrder:rested:AuctionTriggered',
    'amend:rested:AuctionTriggered',
    'placeOrder:MarketInAuction',
    'placeOrder:MarketHalted',
    'placeOrder:PriceOutsideBand',
    'placeOrder:OpenInterestCapExceeded',
    'placeOrder:PostOnlyWouldTake',
    'placeOrder:cancelled:IocRemainder',
    'placeOrder:cancelled:FokUnfillable',
    'placeOrder:cancelled:SelfTrade',
    'amend:PriceOutsideBand',
    'amend:cancelled:',
    'event:auctionEnded',
    'event:makerCancelled',
    'event:orderExpired',
    'uncross:volume',
    'uncross:selfTrade',
    'uncross:waitsHalted',
    'auction:goodTil',
  ]) {
    assert.ok((stats.counts.get(k) ?? 0) > 0, `no ${k} in the flows`);
  }
});

// --- settlement of a daily expiry while the perpetual is in an auction or halted ------------

/** A flat smile: total variance for 50% volatility over eight hours. */
const FLAT = { a: 228_000_000_000_000n, b: 0n, rho: 0n, m: 0n, sigma: 100_000_000_000_000_000n };
const DAY = daysFromCivil(2026, 3, 2);
const EXPIRY_MS = expiryMsOfDay(DAY);

/** A listed instrument's payoff terms from its name (BTC-2MAR26 or BTC-2MAR26-50000-C). */
function termsOf(name: string): { strikeQuote: bigint; call: boolean } | null {
  const parts = name.split('-');
  if (parts.length < 4) return null;
  return { strikeQuote: BigInt(parts[2]!) * USDC, call: parts[3] === 'C' };
}

function runSettlement(seed: number, stats: Stats): void {
  const rng = new Prng(seed);
  const g = dailyListingGenesis(EXPIRY_MS - 40 * 60_000);
  g.markets = g.markets.map((m) =>
    m.instrument === BTC
      ? { ...m, triggers: [{ horizonMs: 300_000, maxMoveBps: 500, auctionMs: 90_000 }] }
      : m,
  );
  const h = new Harness(g, { checkInvariants: true });
  h.smiles = [
    { underlying: 'BTC', expiryMs: EXPIRY_MS, svi: FLAT },
    { underlying: 'ETH', expiryMs: EXPIRY_MS, svi: FLAT },
  ];
  let oracleQuote = 50_000n * USDC;
  h.oracle = { ...h.oracle, BTC: oracleQuote };
  const traders: Key[] = Array.from({ length: 4 }, (_, i) => key(`settle-model-${seed}-${i}`));
  const perpTraders: Key[] = [key(`settle-perp-${seed}-a`), key(`settle-perp-${seed}-b`)];
  const twap = new RefTwap(EXPIRY_MS);
  // The index of every block, as the settlement's TWAP sees it (a trusted feed is never stale).
  const feed = (): void => twap.observe(h.timeMs, oracleQuote);
  h.block(
    [...traders, ...perpTraders].map((t) =>
      h.tx(t, { kind: 'faucet', amountQuote: 1_000_000n * USDC }),
    ),
    60_000,
  );
  feed();
  const acct = traders.map((t) => h.account(t)!.index);
  const listed = [...h.ex.state.marketByName.values()]
    .filter((m) => m.listed && m.params.underlying === 'BTC' && m.expiryMs === EXPIRY_MS)
    .map((m) => m.params.instrument);
  assert.ok(listed.length >= 5, `the daily BTC expiry is listed: ${listed.join(', ')}`);
  // One continuous-trading reference per listed market (they take no triggers).
  const refs = new Map<string, RefMarket>();
  const refOf = (name: string): RefMarket => {
    let r = refs.get(name);
    if (r === undefined) {
      const m = h.ex.state.marketByName.get(name)!;
      r = new RefMarket(
        {
          k: m.k,
          tickSizeQuote: m.params.tickSizeQuote,
          marketSlippagePpm: m.params.marketSlippagePpm,
          triggers: [],
          openOrdersMax: m.params.openOrdersMax,
          makerFeePpm: 200,
          takerFeePpm: 500,
        },
        0,
      );
      refs.set(name, r);
    }
    return r;
  };
  const haltListed = rng.chance(1, 2) ? rng.pick(listed) : null;
  const haltPerp = rng.chance(1, 2);
  let proposalId = 1000 * seed;
  const halt = (instrument: string, kind: 'haltMarket' | 'resumeMarket'): SignedTx[] => {
    const id = ++proposalId;
    return [
      h.tx(VALIDATORS[0]!, { kind: 'govPropose', proposalId: id, proposal: { kind, instrument } }),
      h.tx(VALIDATORS[1]!, { kind: 'govVote', proposalId: id, approve: true }),
      h.tx(VALIDATORS[2]!, { kind: 'govVote', proposalId: id, approve: true }),
    ];
  };
  let settledSeen = false;
  let perpAuction = false;
  for (let b = 0; b < 200 && !settledSeen; b++) {
    const dt = rng.between(15_000, 60_000);
    const next = h.timeMs + dt;
    const settling = next >= EXPIRY_MS;
    if (rng.chance(1, 3))
      oracleQuote += BigInt(rng.between(-200, 200)) * USDC + BigInt(rng.int(1_000_000));
    h.oracle = { ...h.oracle, BTC: oracleQuote };
    const txs: SignedTx[] = [];
    const checks: { i: number; want: RResult; name: string }[] = [];
    // Option and future trades among the traders, never in the settling block.
    const liveNames = listed.filter((n) => h.ex.state.marketByName.has(n));
    for (let i = 0; !settling && i < rng.int(5); i++) {
      const name = rng.pick(liveNames);
      const m = h.ex.state.marketByName.get(name)!;
      if (m.halted || m.markTicks === 0) continue;
      const t = rng.int(traders.length);
      const side = rng.chance(1, 2) ? 'buy' : 'sell';
      const price = Math.max(1, m.markTicks + rng.between(-3, 3));
      const place: RPlace = {
        side,
        type: 'limit',
        priceTicks: price,
        sizeLots: rng.between(1, 5),
        tif: rng.chance(1, 4) ? 'IOC' : 'GTC',
        reduceOnly: false,
        stp: 'cancelResting',
      };
      const ref = refOf(name);
      ref.nextOrderId = h.ex.state.nextOrderId + checks.filter((c) => c.want.ok).length;
      checks.push({ i: txs.length, want: ref.place(acct[t]!, place), name });
      txs.push(
        h.tx(
          traders[t]!,
          limit(name, side, price, place.sizeLots, {
            timeInForce: place.tif as 'GTC' | 'IOC',
          }),
        ),
      );
    }
    // A few blocks before expiry the perpetual enters an auction that spans it.
    const perp = btc(h.ex);
    if (!perpAuction && next >= EXPIRY_MS - 120_000 && !settling) {
      perpAuction = true;
      const p = perp.markTicks;
      txs.push(
        h.tx(perpTraders[0]!, limit(BTC, 'sell', p, 1)),
        h.tx(perpTraders[1]!, limit(BTC, 'buy', p, 1)),
        h.tx(perpTraders[0]!, limit(BTC, 'sell', Math.floor((p * 107) / 100), 2)),
        h.tx(perpTraders[1]!, limit(BTC, 'buy', Math.floor((p * 108) / 100), 2)),
      );
      if (haltPerp) txs.push(...halt(BTC, 'haltMarket'));
      if (haltListed !== null) txs.push(...halt(haltListed, 'haltMarket'));
    }
    // The cash of each trader before the block, to weigh settlement's payments.
    const cashBefore = traders.map((t) => h.account(t)!.cashQuote);
    const sizes = new Map(
      liveNames.map((n) => {
        const m = h.ex.state.marketByName.get(n)!;
        return [n, traders.map((t) => sizeIn(h.account(t)!, m))];
      }),
    );
    const r = h.block(txs, dt);
    feed();
    const where = `settlement seed ${seed} block ${b} (t=${h.timeMs})`;
    for (const c of checks) {
      const tr = r.results[c.i]!;
      assert.ok(tr.ok, `${where}: refused ${JSON.stringify(tr, replacer)}`);
      assert.deepEqual(actual(tr.actions[0]!), c.want, `${where}: ${c.name} tx ${c.i}`);
    }
    for (const tr of r.results) {
      assert.ok(
        tr.ok && tr.actions.every((a) => a.ok),
        `${where}: ${JSON.stringify(tr, replacer)}`,
      );
    }
    if (perpAuction && perp.auction!.active) {
      bump(stats, 'settle:perpInAuction');
    }
    const settled = r.events.filter(
      (e): e is Extract<ExchangeEvent, { type: 'marketSettled' }> =>
        e.type === 'marketSettled' && listed.includes(e.market),
    );
    if (!settling) {
      assert.equal(settled.length, 0, `${where}: nothing settles before expiry`);
      continue;
    }
    // The first block at or after expiry: every BTC market of the expiry settles, halted or not.
    settledSeen = true;
    if (perp.auction!.active) bump(stats, 'settle:duringPerpAuction');
    if (perp.halted) bump(stats, 'settle:duringPerpHalt');
    if (haltListed !== null) bump(stats, 'settle:haltedListed');
    const price = twap.price();
    assert.ok(price !== null, 'a fresh price every block');
    assert.deepEqual(
      settled.map((e) => e.market).sort(),
      [...listed].sort(),
      `${where}: every market of the expiry settles`,
    );
    const cashWant = traders.map(() => 0n);
    for (const e of settled) {
      const m = e.market;
      const terms = termsOf(m);
      const value: bigint =
        terms === null ? price : optionValue(price, terms.strikeQuote, terms.call);
      const lotsPerBase = g.listing!.templates.find(
        (t) => t.kind === (terms === null ? 'future' : 'option') && t.params.underlying === 'BTC',
      )!.params.lotsPerBase;
      const sz = sizes.get(m)!;
      let dust = 0n;
      let positions = 0;
      sz.forEach((s, t) => {
        if (s === 0) return;
        positions++;
        const cash = settlementCash(s, value, lotsPerBase);
        cashWant[t]! += cash;
        dust -= cash;
      });
      assert.deepEqual(
        [e.settlementPriceQuote, e.valueQuote, e.positions, e.dustQuote],
        [price, value, positions, dust],
        `${where}: ${m} settles at the TWAP's value`,
      );
      if (positions > 0) bump(stats, terms === null ? 'settle:future' : 'settle:option');
      assert.equal(h.ex.state.marketByName.get(m), undefined, `${where}: ${m} leaves`);
    }
    traders.forEach((t, i) => {
      const a = h.account(t)!;
      assert.equal(a.cashQuote - cashBefore[i]!, cashWant[i], `${where}: trader ${i}'s settlement`);
      assert.equal(a.listed.length, 0, `${where}: trader ${i} keeps no listed record`);
    });
    for (const meta of h.ex.state.orders.values()) {
      assert.ok(
        !listed.includes(h.ex.state.markets[meta.market]!.params.instrument) ||
          h.ex.state.markets[meta.market]!.expiryMs !== EXPIRY_MS,
        `${where}: order ${meta.orderId} of a settled market is left`,
      );
    }
    // The perpetual's auction is untouched by the settlement: it uncrosses once resumed.
    const bytes = encodeSnapshot(h.ex);
    assert.deepEqual(decodeSnapshot(bytes).appHash, h.ex.appHash, `${where}: restore`);
  }
  assert.ok(settledSeen, 'the run reached expiry');
}

test('a daily expiry settles at the TWAP, whatever the perpetual’s auction or a halt is doing', () => {
  const stats: Stats = { counts: new Map() };
  for (let seed = 1; seed <= 6; seed++) runSettlement(seed, stats);
  for (const k of [
    'settle:future',
    'settle:option',
    'settle:duringPerpAuction',
    'settle:duringPerpHalt',
    'settle:haltedListed',
  ]) {
    assert.ok((stats.counts.get(k) ?? 0) > 0, `no ${k} in the runs`);
  }
});

test('before a market’s first trade, an auction lasts as long as the triggers the price breaches around the mark', () => {
  // Two triggers: ±1% → 3 s, ±2.5% → 7 s. No trade yet: both references are
  // the mark, 500,000. A buy takes the ask at 504,000 (within 1%), then
  // meets 506,000: beyond 1%, within 2.5%, so the 3-second auction. That
  // first fill must not become the reference the auction's length is read
  // against (506,000 is within 1% of 504,000, which left no trigger breached).
  const h = new Harness(auctionGenesis({}), { checkInvariants: true });
  const [maker, other, taker] = ['first-maker', 'first-other', 'first-taker'].map((n) => key(n));
  h.block(
    [maker!, other!, taker!].map((k) => h.tx(k, { kind: 'faucet', amountQuote: 100_000n * USDC })),
  );
  const gtc = (side: 'buy' | 'sell', priceTicks: number, sizeLots: number): PlaceOrder =>
    limit(BTC, side, priceTicks, sizeLots);
  h.block([h.tx(maker!, gtc('sell', 504_000, 1)), h.tx(other!, gtc('sell', 506_000, 1))]);
  assert.equal(btc(h.ex).markTicks, 500_000);
  const r = h.block([h.tx(taker!, gtc('buy', 510_000, 2))]);
  const a = r.results[0]!.actions[0]!;
  assert.ok(a.ok && a.order !== undefined, JSON.stringify(a, replacer));
  assert.deepEqual(
    [a.order.status, a.order.reason, a.order.filledLots],
    ['rested', 'AuctionTriggered', 1],
  );
  const started = r.events.find((e) => e.type === 'auctionStarted');
  assert.deepEqual(started, {
    type: 'auctionStarted',
    market: BTC,
    priceTicks: 506_000,
    endMs: h.timeMs + 3_000,
  });
});
