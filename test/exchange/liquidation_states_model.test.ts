// Liquidation and deleveraging where they meet the other states of a market
// (docs/exchange.md, "Liquidation and deleveraging", "Circuit breakers",
// "Volatility auctions", "Oracle", "Dated futures and options",
// "Invariants"): a seeded driver pushes accounts below maintenance (index
// jumps, funding, thin books) while their markets go in and out of volatility
// auctions, governance halts and stale indexes, some with an open-interest
// cap, dated futures expiring among them, cross-margin accounts in several
// markets of which only some can close. After every block, from the state the
// block's transactions left, the block's liquidations are run beside the
// reference of the rules (liquidation_reference.ts, price monitoring of the
// liquidation slices included): which accounts in which order, every fill,
// fee, cover, deleverage, deficit and account after. Besides, from the docs
// alone: nothing trades in a market that may not (halted, stale, in an
// auction, an auction started by a liquidation of this very block), the
// per-block cap, the withdrawal pause against what the accounts below zero
// lack, conservation and open interest, the invariants (checkInvariants),
// and nodes restored mid-run giving the same results and app hashes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../src/lib/prng.ts';
import { bytesKey } from '../../src/exchange/keys.ts';
import { Exchange, decodeSnapshot, encodeSnapshot } from '../../src/exchange/index.ts';
import type { Block, BlockResult } from '../../src/exchange/index.ts';
import type { Account, MarketState } from '../../src/exchange/state.ts';
import type { SignedTx } from '../../src/exchange/tx/types.ts';
import { USDC, VALIDATORS, genesis, key, limit } from './helpers.ts';
import type { Key } from './helpers.ts';
import {
  EXPIRY_MS,
  UNDERLYINGS,
  checkConserved,
  checkDeficits,
  governTxs,
  liquidationGenesis,
  liquidationParams,
  oracleAt,
  replay,
  sameAccounts,
  sameBalances,
  sameEvents,
  show,
  txMaker,
  watchScan,
  withoutOrderId,
} from './liquidation_driver.ts';
import {
  REFERENCE_EVENTS,
  equityOf,
  referenceLiquidations,
  viewOf,
} from './liquidation_reference.ts';
import type { RefAccount, RefState } from './liquidation_reference.ts';

const COUNTS = [
  'blocks',
  'liquidations',
  'fills',
  'deleverages',
  'covers',
  'coverBack',
  'triggered',
  'waitingHalted',
  'waitingStale',
  'waitingAuction',
  'partlyClosable',
  'uncrossThenLiquidated',
  'capped',
  'paused',
  'unpaused',
  'deficits',
  'restores',
  'settled',
  'oiCapped',
] as const;
type Counts = Record<(typeof COUNTS)[number], number>;

function run(seed: number, counts: Counts): void {
  const rng = new Prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)]!;
  const [im, mm] = pick([
    [20_000, 10_000],
    [50_000, 30_000],
  ] as const);
  const feePpm = pick([0, 5_000, 10_000]);
  const feeMax = pick([20n, 50_000n]) * USDC;
  const cap = pick([3_000n, 30_000n, 5_000_000n]) * USDC;
  const oiCap = rng.chance(1, 2);
  const terms = { im, mm, feePpm, feeMax, cap };
  const markets = genesis().markets.map((m) => ({
    ...m,
    ...liquidationParams(terms),
    // Always monitored: tight bounds, so liquidation slices meet them.
    triggers: rng.chance(1, 3)
      ? [
          { horizonMs: 5_000, maxMoveBps: pick([50, 200]), auctionMs: pick([2_000, 9_000]) },
          { horizonMs: 60_000, maxMoveBps: pick([300, 800]), auctionMs: 20_000 },
        ]
      : [
          {
            horizonMs: pick([5_000, 60_000]),
            maxMoveBps: pick([100, 300, 800]),
            auctionMs: pick([2_000, 9_000, 20_000]),
          },
        ],
    ...(oiCap ? { openInterestCapLots: pick([2_000, 50_000, 400_000]) } : {}),
    fundingSampleMs: 1_000,
    fundingIntervalMs: 10_000,
    fundingCapPpm: pick([5_000, 20_000]),
    fundingInterestPpm: pick([400, -400]),
  }));
  const insuranceFundQuote = pick([0n, 50n, 5_000n, 1_000_000n]) * USDC;
  const makerFeePpm = pick([-100, 0, 200]);
  const dated = rng.chance(1, 3);
  const g = liquidationGenesis({
    terms,
    markets,
    startMs: dated ? EXPIRY_MS - pick([40_000, 120_000, 300_000]) : undefined,
    insuranceFundQuote,
    makerFeePpm,
  });
  const ex = new Exchange(g, { checkInvariants: true });
  const restored: Exchange[] = [];
  let deposited = insuranceFundQuote;

  const makers = [key(`states${seed}-mk0`), key(`states${seed}-mk1`)];
  const poor = key(`states${seed}-pm`);
  const traders = Array.from({ length: 6 + rng.int(8) }, (_, i) => key(`states${seed}-t${i}`));
  let timeMs = ex.state.timeMs;
  const tx = txMaker(g.chainId, () => timeMs);
  const index = [500_000, 300_000];
  /** The underlyings whose price the next blocks leave out (their index goes stale after a minute). */
  const silent = new Set<string>();
  let proposal = 0;
  const accountOf = (k: Key): Account | undefined =>
    ex.state.principals.get(bytesKey(k.address))?.subaccounts.get(0);
  const live = (): MarketState[] =>
    ex.state.markets.filter((m) => !m.retired && m.instrument.kind !== 'option');
  const tradable = (): MarketState[] =>
    live().filter(
      (m) =>
        !m.halted &&
        !m.oracleStale &&
        m.auction?.active !== true &&
        !(m.listed && m.expiryMs <= timeMs + 10_000),
    );
  const under = (m: MarketState): number => UNDERLYINGS.indexOf(m.params.underlying as 'BTC');

  const captured = watchScan(ex);

  /** What the accounts below zero lack at the state's marks: the withdrawal pause's sum. */
  const lacking = (s: RefState): bigint => {
    let total = 0n;
    for (const a of s.accounts) {
      const e = equityOf(s, a);
      if (e < 0n) total -= e;
    }
    return total;
  };

  const block = (txs: SignedTx[], dtMs: number, at: string): BlockResult => {
    timeMs += dtMs;
    const oracle = oracleAt(index);
    for (const u of silent) delete oracle[u];
    const b: Block = {
      height: ex.state.height + 1,
      timeMs,
      proposer: VALIDATORS[0]!.publicKey,
      txs,
      oracle,
    };
    const before = viewOf(ex);
    captured.state = null;
    const r = ex.finalizeBlock(b);
    counts.blocks++;
    r.results.forEach((x, i) => {
      const action = txs[i]!.action;
      if (x.ok && x.actions[0]!.ok && action.kind === 'faucet') deposited += action.amountQuote;
      if (x.ok && x.actions[0]!.ok && action.kind === 'withdraw') deposited -= action.amountQuote;
      if (!x.ok || x.actions[0]!.ok) return;
      if (x.actions[0]!.code === 'OpenInterestCapExceeded') counts.oiCapped++;
    });
    replay(restored, b, r, at);
    assert.ok(captured.state !== null, `${at}: the scan ran`);
    if (r.events.some((e) => e.type === 'marketSettled')) counts.settled++;
    compare(before, captured.state, r, at);
    checkAfter(at);
    return r;
  };

  const compare = (previous: RefState, after: RefState, r: BlockResult, at: string): void => {
    const ended = new Set(r.events.flatMap((e) => (e.type === 'auctionEnded' ? [e.market] : [])));
    // The scan looks at the accounts the block changed and at every holder of
    // a market whose mark moved, whose liquidations waited, that resumed,
    // came back from stale or uncrossed.
    const moved = after.markets.map((m, i) => {
      const p = previous.markets[i];
      return (
        p === undefined ||
        p.name !== m.name ||
        m.mark !== p.mark ||
        p.backlog ||
        (p.halted && !m.halted) ||
        (p.stale && !m.stale) ||
        ended.has(m.name)
      );
    });
    const looked = (a: RefAccount): boolean => {
      const p = previous.accounts[a.index];
      if (p === undefined || p.cash !== a.cash) return true;
      return a.size.some((x, i) => x !== (p.size[i] ?? 0) || (x !== 0 && moved[i]));
    };
    const s = structuredClone(after);
    // Per account, before: which of its markets can close.
    const waitingOf = (a: RefAccount): string[] =>
      s.markets.flatMap((m, i) =>
        a.size[i] === 0 || m.retired
          ? []
          : [m.halted ? 'halted' : m.stale ? 'stale' : m.inAuction ? 'auction' : 'open'],
      );
    const states = new Map(s.accounts.map((a) => [a.index, waitingOf(a)]));
    const lackingBefore = lacking(s);
    const ref = referenceLiquidations(s, looked);
    const got = r.events.filter((e) => REFERENCE_EVENTS.has(e.type)).map(withoutOrderId);
    const from = got.length - ref.events.length;
    // Before them: the uncross's and the fill guard's cancels, funding, and
    // the fund's cover of a short a settlement left below zero (its orders
    // cancelled first).
    const settled = r.events.some((e) => e.type === 'marketSettled');
    for (const e of got.slice(0, Math.max(0, from))) {
      assert.ok(
        e.type === 'makerCancelled' ||
          e.type === 'funding' ||
          e.type === 'auctionStarted' ||
          ((e.type === 'insuranceCover' || e.type === 'liquidationCancels') && settled),
        `${at}: an event before the liquidations: ${show(e)} in ${show(r.events)}`,
      );
    }
    sameEvents(got.slice(Math.max(0, from)), ref.events, at);
    // The state after, against the reference's.
    const now = viewOf(ex);
    sameBalances(now, s, at);
    sameAccounts(now, s, at);
    now.markets.forEach((m, i) => {
      const n = s.markets[i]!;
      if (m.option || m.retired) return;
      assert.equal(show([m.bids, m.asks]), show([n.bids, n.asks]), `${at}: book of ${m.name}`);
      assert.equal(m.inAuction, n.inAuction, `${at}: ${m.name} in an auction`);
      assert.equal(m.monitor?.last, n.monitor?.last, `${at}: ${m.name}'s last trade price`);
    });

    // From the docs alone. Nothing trades where it may not: a market halted,
    // stale or in an auction as the scan began, or from the auction a
    // liquidation of this block started there.
    const stopped = new Set(
      after.markets.filter((m) => m.halted || m.stale || m.inAuction).map((m) => m.name),
    );
    // A due auction waits while its market is halted (halts move only with transactions).
    for (const name of ended) {
      const p = previous.markets.find((m) => m.name === name)!;
      assert.ok(!p.halted, `${at}: ${name} uncrossed while halted`);
    }
    const sliceLots = new Map<string, number>();
    for (const e of r.events) {
      if (e.type === 'auctionStarted') stopped.add(e.market);
      if (e.type === 'liquidationFill' || e.type === 'deleverage') {
        assert.ok(!stopped.has(e.market), `${at}: ${e.type} in ${e.market}, which may not trade`);
        sliceLots.set(e.market, (sliceLots.get(e.market) ?? 0) + e.sizeLots);
      }
    }
    // The per-block cap, at the mark: each slice at least one lot, so at most one lot over.
    for (const [name, lots] of sliceLots) {
      const m = after.markets.find((x) => x.name === name)!;
      const perLot = BigInt(m.mark) * m.k;
      assert.ok(
        BigInt(lots) * perLot < m.cap + perLot,
        `${at}: ${lots} lots of ${name} liquidated, cap ${m.cap}`,
      );
      if (BigInt(lots) * perLot >= m.cap) counts.capped++;
    }
    // Covers: for an account that closed nothing, none; the withdrawal pause
    // of the next block weighs what is left.
    const liquidatedHere = new Set(ref.liquidated);
    for (const e of ref.events) {
      if (e.type === 'liquidation') counts.liquidations++;
      else if (e.type === 'liquidationFill') counts.fills++;
      else if (e.type === 'deleverage') counts.deleverages++;
      else if (e.type === 'insuranceCover' && liquidatedHere.has(e.account)) counts.covers++;
    }
    if (
      r.events.some(
        (e) =>
          e.type === 'auctionStarted' &&
          after.markets.some((m) => m.name === e.market && !m.inAuction),
      )
    ) {
      if (ref.liquidated.length > 0) counts.triggered++;
    }
    for (const i of ref.liquidated) {
      const st = states.get(i)!;
      if (st.includes('halted')) counts.waitingHalted++;
      if (st.includes('stale')) counts.waitingStale++;
      if (st.includes('auction')) counts.waitingAuction++;
      if (st.includes('open') && st.some((x) => x !== 'open')) counts.partlyClosable++;
    }
    if (ended.size > 0 && ref.liquidated.length > 0) counts.uncrossThenLiquidated++;
    if (lackingBefore > 0n && ref.liquidated.length > 0) counts.coverBack++;
  };

  const checkAfter = (at: string): void => {
    const state = ex.state;
    checkConserved(state, deposited, at);
    checkDeficits(state, at);
    counts.deficits += state.deficits.size;
  };

  // --- the steps -------------------------------------------------------------

  const fund = (): void => {
    const txs: SignedTx[] = [];
    for (const m of makers) txs.push(tx(m, { kind: 'faucet', amountQuote: 50_000_000n * USDC }));
    txs.push(tx(poor, { kind: 'faucet', amountQuote: BigInt(rng.between(500, 5_000)) * USDC }));
    for (const t of traders)
      txs.push(tx(t, { kind: 'faucet', amountQuote: BigInt(rng.between(300, 40_000)) * USDC }));
    block(txs, 1_000, `seed ${seed} funding`);
  };

  /** Traders take positions in one market or two (cross margin), against a maker. */
  const positions = (at: string): void => {
    const txs: SignedTx[] = [];
    const open = tradable();
    if (open.length === 0) return;
    for (const t of traders) {
      const a = accountOf(t);
      if (a === undefined || !rng.chance(2, 3)) continue;
      const chosen = rng.chance(1, 2) ? rng.shuffle([...open]).slice(0, 2) : [pick(open)];
      const use = BigInt(rng.between(200, 950));
      const buy = rng.chance(1, 2);
      for (const m of chosen) {
        const equity = a.cashQuote > 0n ? a.cashQuote : 0n;
        const notional = (equity * use * 1_000n) / BigInt(im) / BigInt(chosen.length);
        let lots = Number(notional / (BigInt(m.markTicks) * m.k));
        lots = Math.min(lots, m.params.maxSizeLots);
        if (lots < 1) continue;
        const side =
          buy !== (chosen.length > 1 && m === chosen[1] && rng.chance(1, 2)) ? 'buy' : 'sell';
        const other = side === 'buy' ? 'sell' : 'buy';
        const name = m.params.instrument;
        txs.push(tx(pick(makers), limit(name, other, m.markTicks, lots)));
        txs.push(tx(t, limit(name, side, m.markTicks, lots, { timeInForce: 'IOC' })));
      }
    }
    block(txs, 1_000, at);
  };

  /** Makers' quotes around where the index goes: thin, one-sided, beyond the bounds, or none. */
  const quotes = (planned: readonly number[], at: string): void => {
    const txs: SignedTx[] = [];
    for (const m of makers) if (rng.chance(1, 2)) txs.push(tx(m, { kind: 'cancelAll' }));
    for (const m of live()) {
      if (m.halted || m.oracleStale) continue;
      const p = planned[under(m)]!;
      const name = m.params.instrument;
      const mode = rng.int(5);
      if (mode === 0) continue;
      for (const side of ['buy', 'sell'] as const) {
        if ((mode === 1 && side === 'sell') || (mode === 2 && side === 'buy')) continue;
        for (let n = mode === 4 ? 1 : rng.between(1, 3); n > 0; n--) {
          const away = Math.floor((p * pick([0, 2, 10, 30, 100])) / 1_000) + rng.int(3);
          const price = Math.max(1, side === 'buy' ? p - away - 1 : p + away + 1);
          txs.push(tx(pick(makers), limit(name, side, price, pick([1, 10, 200, 3_000]))));
        }
      }
      // Stale quotes near today's mark, on the way to the coming price.
      if (rng.chance(1, 2)) {
        const mark = m.markTicks;
        const size = pick([500, 20_000]);
        txs.push(tx(makers[1]!, limit(name, 'buy', mark - 1 - rng.int(5), size)));
        txs.push(tx(makers[1]!, limit(name, 'sell', mark + 1 + rng.int(5), size)));
      }
    }
    // A poor maker quotes both sides of one market as large as it may.
    const a = accountOf(poor);
    const open = tradable();
    if (a !== undefined && open.length > 0 && rng.chance(1, 2)) {
      const m = pick(open);
      const lots = Math.max(
        1,
        Number((a.cashQuote * 1_000_000n) / BigInt(im) / (BigInt(m.markTicks) * m.k) / 2n),
      );
      txs.push(tx(poor, limit(m.params.instrument, 'buy', m.markTicks - rng.int(20), lots)));
      txs.push(tx(poor, limit(m.params.instrument, 'sell', m.markTicks + rng.int(20), lots)));
    }
    // Traders' own orders: their liquidation cancels them, auction orders too.
    for (const t of traders) {
      if (!rng.chance(1, 4)) continue;
      const ms = live().filter((m) => !m.halted && !m.oracleStale);
      if (ms.length === 0) break;
      const m = pick(ms);
      const side = rng.chance(1, 2) ? 'buy' : 'sell';
      const away = Math.floor((m.markTicks * rng.between(2, 40)) / 1_000);
      const price = side === 'buy' ? m.markTicks - away : m.markTicks + away;
      txs.push(tx(t, limit(m.params.instrument, side, price, rng.between(1, 30))));
    }
    block(txs, 1_000, at);
  };

  /** A GTC order across the bounds: the market goes into an auction, others wait in it. */
  const auction = (at: string): void => {
    const open = tradable().filter((m) => !m.listed);
    if (open.length === 0) return;
    const m = pick(open);
    const name = m.params.instrument;
    const up = rng.chance(1, 2);
    const far = Math.floor((m.markTicks * pick([20, 60, 120])) / 1_000);
    const txs: SignedTx[] = [
      tx(
        makers[0]!,
        limit(name, up ? 'sell' : 'buy', up ? m.markTicks + far : m.markTicks - far, 50),
      ),
      tx(
        makers[1]!,
        limit(name, up ? 'buy' : 'sell', up ? m.markTicks + far : m.markTicks - far, 100),
      ),
    ];
    block(txs, 1_000, at);
    // Orders that wait in it, some of the traders' near their means.
    const in2: SignedTx[] = [];
    for (const t of traders) {
      if (!rng.chance(1, 3)) continue;
      const side = rng.chance(1, 2) ? 'buy' : 'sell';
      const price = m.markTicks + rng.between(-far, far);
      if (price > 0) in2.push(tx(t, limit(name, side, price, rng.between(1, 200))));
    }
    if (in2.length > 0) block(in2, 1_000, `${at} (orders in it)`);
  };

  const govern = (halt: boolean, m: MarketState, at: string): void => {
    const proposalId = ++proposal;
    const instrument = m.params.instrument;
    const txs = governTxs(tx, proposalId, {
      kind: halt ? 'haltMarket' : 'resumeMarket',
      instrument,
    });
    block(txs, 1_000, at);
  };

  /** A withdrawal of one dollar, alone in its block: refused WithdrawalsPaused exactly while the accounts below zero lack more than the fund. */
  const withdraw = (at: string): void => {
    const who = pick([...traders, makers[0]!]);
    if (accountOf(who) === undefined) return;
    const r = block(
      [tx(who, { kind: 'withdraw', amountQuote: USDC, destination: 'x' })],
      pick([0, 1_000]),
      at,
    );
    const c = captured.state!;
    const result = r.results[0]!;
    assert.ok(result.ok, `${at}: the withdrawal's transaction`);
    const action = result.actions[0]!;
    const paused = !action.ok && action.code === 'WithdrawalsPaused';
    const expected = lacking(c) > c.fund;
    assert.equal(
      paused,
      expected,
      `${at}: paused ${paused}, lacking ${lacking(c)}, fund ${c.fund}`,
    );
    if (paused) counts.paused++;
    else if (lacking(c) > 0n) counts.unpaused++;
  };

  fund();
  const steps = 14 + rng.int(8);
  for (let step = 0; step < steps; step++) {
    const at = (what: string): string =>
      `seed ${seed} step ${step} ${what} (height ${ex.state.height + 1})`;
    if (restored.length < 2 && rng.chance(1, 8)) {
      restored.push(decodeSnapshot(encodeSnapshot(ex), { checkInvariants: true }));
      counts.restores++;
    }
    const roll = rng.int(16);
    if (roll < 3) positions(at('positions'));
    else if (roll < 5) quotes(index, at('quotes'));
    else if (roll < 9) {
      // A shock: books for it first, now and then; then the index moves.
      const planned = index.map((p) => {
        const r = rng.int(6);
        const dir = rng.chance(1, 2) ? 1 : -1;
        if (r === 0) return p;
        const per =
          r < 3 ? rng.between(5, 30) : r < 5 ? rng.between(30, 120) : rng.between(150, 400);
        return Math.max(10, p + dir * Math.floor((p * per) / 1_000));
      });
      if (rng.chance(2, 3)) quotes(planned, at('quotes for a shock'));
      index[0] = planned[0]!;
      index[1] = planned[1]!;
      block([], 1_000, at('shock'));
    } else if (roll < 10) auction(at('auction'));
    else if (roll < 12) {
      const ms = live();
      const halted = ms.filter((m) => m.halted && !(m.listed && m.expiryMs <= timeMs));
      if (halted.length > 0 && rng.chance(1, 2)) govern(false, pick(halted), at('resume'));
      else if (ms.length > 0)
        govern(
          true,
          pick(
            ms
              .filter((m) => !m.halted)
              .concat(ms)
              .slice(0, 3),
          ),
          at('halt'),
        );
    } else if (roll < 13) {
      // An underlying without price for a minute: its markets go stale; or its price comes back.
      if (silent.size > 0 && rng.chance(1, 2)) silent.clear();
      else silent.add(pick(UNDERLYINGS));
      block([], pick([1_000, 61_000]), at('oracle'));
    } else if (roll < 14) withdraw(at('withdraw'));
    else {
      // Time passes: auctions end, funding pays, slices the caps left go on.
      block([], pick([1_000, 3_000, 10_000, 25_000]), at('time'));
    }
  }
  // The end: every halt lifted, prices back, the rest liquidated.
  silent.clear();
  for (const m of live()) {
    if (m.halted && !(m.listed && m.expiryMs <= timeMs)) govern(false, m, `seed ${seed} resume`);
  }
  for (let j = 0; j < 3; j++) block([], 10_000, `seed ${seed} end ${j}`);
}

test('model: liquidations beside auctions, halts, stale indexes, caps and expiries follow the docs', () => {
  const counts = Object.fromEntries(COUNTS.map((k) => [k, 0])) as Counts;
  for (let seed = 1; seed <= 90; seed++) run(seed, counts);
  // Each situation the driver is for happened.
  for (const k of COUNTS) assert.ok(counts[k] > 0, `${k}: ${show(counts)}`);
});
