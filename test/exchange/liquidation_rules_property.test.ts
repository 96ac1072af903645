// Each liquidation against the rules of docs/exchange.md, "Liquidation and
// deleveraging", on the perpetuals and, in a third of the runs, daily dated
// futures (some settling mid-run): a seeded driver builds adversarial
// situations (thin and one-sided books, resting orders a few ticks either
// side of the bankruptcy price and on the way to it, positions far larger
// than the book, many accounts failing in one block, per-block caps reached
// within an account, insurance funds too small, accounts in both markets,
// gaps of up to ±50% in one block, funding at short intervals, makers too
// poor for their quotes, the failing accounts' own resting orders and
// reduce-only closes, halted markets, stale indexes, price monitoring,
// balances past 2^53) and runs each block beside a reference written from
// the docs (liquidation_reference.ts). Every block's liquidations, from the state its
// transactions left (taken as the liquidation scan starts), must match the
// reference's: which accounts and in what order, each fill and its price,
// fee, cover and deleverage (counterparty, price, size), the fund, the
// deficits and every account after; a block without transactions is
// checked from its start (index, mark, funding) too. Blocks with an auction
// event are left to what always holds, checked after every block:
// collateral is conserved, open interest balances, no account is left
// without positions below zero outside the deficits or while the fund holds
// money, and nodes restored from snapshots taken mid-liquidation give the
// same results and app hashes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../src/lib/prng.ts';
import { bytesKey } from '../../src/exchange/keys.ts';
import { Exchange, decodeSnapshot, encodeSnapshot } from '../../src/exchange/index.ts';
import type { Block, BlockResult, ExchangeEvent } from '../../src/exchange/index.ts';
import type { Account, MarketState } from '../../src/exchange/state.ts';
import type { Action, SignedTx } from '../../src/exchange/tx/types.ts';
import { USDC, VALIDATORS, genesis, key, limit } from './helpers.ts';
import type { Key } from './helpers.ts';
import {
  EXPIRY_MS,
  TICK,
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
  belowMaintenanceRef,
  equityOf,
  referenceStats,
  referenceLiquidations,
  referenceStart,
  viewOf,
} from './liquidation_reference.ts';
import type { RefAccount, RefState } from './liquidation_reference.ts';

const COUNTS = [
  'blocks',
  'checked',
  'liquidations',
  'fills',
  'makerCancels',
  'deleverages',
  'beyondMark',
  'capped',
  'covers',
  'deficits',
  'multiMarket',
  'fees',
  'funding',
  'restores',
  'auctions',
  'severalAtOnce',
  'fundingPushed',
  'midRestore',
  'atLimit',
  'beyondLimit',
  'shortfalls',
  'pastBankruptcy',
  'dated',
  'settled',
  'stale',
] as const;
type Counts = Record<(typeof COUNTS)[number], number>;

function run(seed: number, counts: Counts): void {
  const rng = new Prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)]!;
  const [im, mm] = pick([
    [20_000, 10_000],
    [50_000, 30_000],
    [100_000, 50_000],
  ] as const);
  const feePpm = Math.min(pick([0, 5_000, 10_000, 50_000]), mm);
  const feeMax = pick([1n, 20n, 50_000n]) * USDC;
  const cap = pick([300n, 3_000n, 30_000n, 5_000_000n]) * USDC;
  const shortFunding = rng.chance(1, 2);
  const monitored = rng.chance(1, 3);
  const terms = { im, mm, feePpm, feeMax, cap };
  const markets = genesis().markets.map((m) => ({
    ...m,
    ...liquidationParams(terms),
    // Price monitoring now and then: a block with an auction event is only checked for what always holds.
    triggers: monitored
      ? [{ horizonMs: 60_000, maxMoveBps: pick([100, 500]), auctionMs: 30_000 }]
      : [],
    fundingSampleMs: 1_000,
    fundingIntervalMs: shortFunding ? 10_000 : 3_600_000,
    fundingCapPpm: pick([500, 5_000, 20_000]),
    fundingInterestPpm: pick([12, 400, -400]),
  }));
  const insuranceFundQuote = pick([0n, 50n, 2_000n, 1_000_000n]) * USDC;
  const makerFeePpm = pick([-100, 0, 200]);
  const whale = rng.chance(1, 5);
  // Now and then dated futures (daily, one strike of options each, never
  // traded), at times before an expiry, so some settle while liquidations wait.
  const dated = rng.chance(1, 3);
  const g = liquidationGenesis({
    terms,
    markets,
    startMs: dated ? EXPIRY_MS - rng.pick([45_000, 90_000, 150_000, 3_600_000]) : undefined,
    insuranceFundQuote,
    makerFeePpm,
  });
  const ex = new Exchange(g, { checkInvariants: true });
  const restored: Exchange[] = [];
  let deposited = insuranceFundQuote;

  const makers = [key(`rules${seed}-mk0`), key(`rules${seed}-mk1`)];
  const poor = [key(`rules${seed}-pm0`), key(`rules${seed}-pm1`)];
  const traders = Array.from({ length: 5 + rng.int(14) }, (_, i) => key(`rules${seed}-t${i}`));
  let timeMs = ex.state.timeMs;
  const tx = txMaker(g.chainId, () => timeMs);
  const index = [500_000, 300_000];
  const oracleOf = (): Record<string, bigint> => oracleAt(index);
  let oracle = oracleOf();
  // When each underlying was last priced: an index older than a minute is stale.
  const pricedMs: Record<string, number> = { BTC: timeMs, ETH: timeMs };
  const staleAt =
    (nowMs: number) =>
    (u: string): boolean =>
      nowMs - pricedMs[u]! > 60_000;
  let proposal = 0;
  const accountOf = (k: Key, sub = 0) =>
    ex.state.principals.get(bytesKey(k.address))?.subaccounts.get(sub);
  /** The markets that take orders: perpetuals and dated futures not expired. */
  const tradable = (): MarketState[] =>
    ex.state.markets.filter(
      (m) =>
        !m.retired &&
        m.instrument.kind !== 'option' &&
        !(m.listed && m.expiryMs <= timeMs + 10_000),
    );
  const under = (m: MarketState): number => UNDERLYINGS.indexOf(m.params.underlying as 'BTC');
  const sizeOf = (a: Account, m: MarketState): number =>
    (m.listed ? a.listed.find((p) => p.market === m.index) : a.positions[m.index])?.sizeLots ?? 0;

  // The state after the block's transactions, as its liquidation scan starts.
  const captured = watchScan(ex);

  const block = (txs: SignedTx[], dtMs: number, at: string): BlockResult => {
    timeMs += dtMs;
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
    for (const u of UNDERLYINGS) if (oracle[u] !== undefined) pricedMs[u] = timeMs;
    counts.blocks++;
    r.results.forEach((x, i) => {
      const action = txs[i]!.action;
      if (x.ok && x.actions[0]!.ok && action.kind === 'faucet') deposited += action.amountQuote;
    });
    replay(restored, b, r, at);
    assert.ok(captured.state !== null, `${at}: the scan ran`);
    // A block that lists or settles dated markets is checked from its liquidations on.
    const listing = r.events.some(
      (e) => e.type === 'marketListed' || e.type === 'marketSettled' || e.type === 'marketHalted',
    );
    if (r.events.some((e) => e.type === 'marketSettled')) counts.settled++;
    if (ex.state.markets.some((m) => m.oracleStale && m.holders.size > 0)) counts.stale++;
    if (r.events.some((e) => e.type.startsWith('auction'))) counts.auctions++;
    else compare(before, txs.length === 0 && !listing, listing, captured.state, r, at);
    checkAfter(at);
    return r;
  };

  const sameState = (x: RefState, y: RefState, at: string): void => {
    sameBalances(x, y, at);
    assert.equal(x.accounts.length, y.accounts.length, `${at}: accounts`);
    sameAccounts(x, y, at);
    x.markets.forEach((m, i) => {
      const n = y.markets[i]!;
      if (m.option || m.retired) return;
      assert.equal(m.index, n.index, `${at}: index of ${m.name}`);
      assert.equal(m.mark, n.mark, `${at}: mark of ${m.name}`);
      assert.equal(m.premiumSum, n.premiumSum, `${at}: premium samples of ${m.name}`);
      assert.equal(m.premiumCount, n.premiumCount, `${at}: premium count of ${m.name}`);
      assert.equal(show([m.bids, m.asks]), show([n.bids, n.asks]), `${at}: book of ${m.name}`);
    });
  };

  /**
   * The block against the reference: its start (marks, funding) from the
   * state before it when it has no transactions, and its liquidations from
   * the state after its transactions.
   */
  const compare = (
    previous: RefState,
    quiet: boolean,
    listing: boolean,
    after: RefState,
    r: BlockResult,
    at: string,
  ): void => {
    // The scan looks at the accounts the block changed and at every holder of
    // a market whose mark moved or whose liquidations wait.
    const moved = after.markets.map((m, i) => {
      const p = previous.markets[i];
      return p === undefined || p.name !== m.name || m.mark !== p.mark || p.backlog;
    });
    const looked = (a: RefAccount): boolean => {
      const p = previous.accounts[a.index];
      if (p === undefined || p.cash !== a.cash) return true;
      return a.size.some((x, i) => x !== (p.size[i] ?? 0) || (x !== 0 && moved[i]));
    };
    const before: RefState | null = quiet ? structuredClone(previous) : null;
    const got = r.events.filter((e) => REFERENCE_EVENTS.has(e.type)).map(withoutOrderId);
    let expected: ExchangeEvent[] = [];
    // Who was below maintenance at the block's marks before its funding.
    let belowBeforeFunding: Set<number> | null = null;
    if (before !== null) {
      const unpaid = structuredClone(before);
      referenceStart(unpaid, timeMs, oracle, staleAt(timeMs), false);
      belowBeforeFunding = new Set(
        unpaid.accounts.filter((a) => belowMaintenanceRef(unpaid, a)).map((a) => a.index),
      );
      expected = referenceStart(before, timeMs, oracle, staleAt(timeMs));
      sameState(before, after, `${at} (the block's start)`);
    }
    const s = after;
    const ref = referenceLiquidations(s, looked);
    // With transactions, the events before the liquidations are theirs (a
    // maker cancelled by a fill's guard): the reference's must end the list.
    const from = before === null ? got.length - ref.events.length : 0;
    if (before === null && !listing) {
      for (const e of got.slice(0, Math.max(0, from))) {
        assert.ok(
          e.type === 'makerCancelled' || e.type === 'funding',
          `${at}: a liquidation's event before the liquidations: ${show(e)}`,
        );
      }
    }
    expected = [...expected, ...ref.events];
    sameEvents(before === null ? got.slice(Math.max(0, from)) : got, expected, at);
    counts.checked++;
    sameState(viewOf(ex), s, at);
    for (const e of ref.events) {
      if (e.type === 'liquidation') {
        counts.liquidations++;
        if (e.feeQuote > 0n) counts.fees++;
      } else if (e.type === 'liquidationFill') {
        counts.fills++;
        if (s.markets.find((x) => x.name === e.market)!.listed) counts.dated++;
      } else if (e.type === 'makerCancelled') counts.makerCancels++;
      else if (e.type === 'deleverage') {
        counts.deleverages++;
        const m = s.markets.find((x) => x.name === e.market)!;
        if (e.priceTicks !== m.mark) counts.beyondMark++;
        if (m.listed) counts.dated++;
      } else if (e.type === 'insuranceCover') counts.covers++;
    }
    for (const e of expected) if (e.type === 'funding' && e.ratePpm !== 0) counts.funding++;
    for (const i of ref.liquidated) {
      if (s.accounts[i]!.size.filter((x) => x !== 0).length > 1) counts.multiMarket++;
      if (belowBeforeFunding !== null && !belowBeforeFunding.has(i)) counts.fundingPushed++;
    }
    if (ref.liquidated.length >= 3) counts.severalAtOnce++;
    if (s.markets.some((m) => m.liquidated >= m.cap)) counts.capped++;
  };

  /** What must hold after every block. */
  const checkAfter = (at: string): void => {
    const state = ex.state;
    checkConserved(state, deposited, at);
    for (const m of state.markets) {
      let long = 0;
      let short = 0;
      for (const a of state.accounts) {
        const size = sizeOf(a, m);
        if (size > 0) long += size;
        else short -= size;
      }
      assert.ok(
        long === short && long === m.longLots && short === m.shortLots,
        `${at}: open interest of ${m.params.instrument}`,
      );
    }
    checkDeficits(state, at);
    counts.deficits += state.deficits.size;
  };

  // Funding: makers rich, poor makers thin, traders from $300 to $60,000.
  {
    const txs: SignedTx[] = [];
    for (const m of makers) {
      txs.push(
        tx(m, { kind: 'faucet', amountQuote: (whale ? 60_000_000_000n : 50_000_000n) * USDC }),
      );
    }
    for (const p of poor)
      txs.push(tx(p, { kind: 'faucet', amountQuote: BigInt(rng.between(500, 20_000)) * USDC }));
    // Clones: the same collateral and, below, the same positions, so their
    // shortfalls tie and their index decides.
    let last = 0n;
    for (const t of traders) {
      const amountQuote =
        last > 0n && rng.chance(1, 4) ? last : BigInt(rng.between(300, 60_000)) * USDC;
      last = amountQuote;
      txs.push(tx(t, { kind: 'faucet', amountQuote }));
    }
    // A whale past 2^53 quote units: the scan, the margin and the fill guard on bigints.
    if (whale) txs.push(tx(traders[0]!, { kind: 'faucet', amountQuote: 20_000_000_000n * USDC }));
    block(txs, 1_000, `seed ${seed} funding`);
  }

  const rounds = 2 + rng.int(3);
  for (let round = 0; round < rounds; round++) {
    const at = (what: string): string =>
      `seed ${seed} round ${round} ${what} (height ${ex.state.height + 1})`;
    const state = ex.state;
    // Positions: each trader in one market or two, against a maker or another trader.
    {
      const txs: SignedTx[] = [];
      const open = tradable();
      type Plan = { markets: MarketState[]; use: bigint; side: boolean };
      let previous: Plan | null = null;
      for (const t of traders) {
        const a = accountOf(t);
        if (a === undefined) continue;
        // A clone does what the trader before it did.
        const plan: Plan =
          previous !== null && rng.chance(1, 4)
            ? previous
            : {
                markets: rng.chance(1, 3) ? rng.shuffle([...open]).slice(0, 2) : [pick(open)],
                use: BigInt(rng.between(150, 980)),
                side: rng.chance(1, 2),
              };
        previous = plan;
        for (const m of plan.markets) {
          const mark = m.markTicks;
          const equity = a.cashQuote > 0n ? a.cashQuote : 0n;
          const budget = (equity * plan.use) / 1_000n / BigInt(plan.markets.length);
          const notional = (budget * 1_000_000n) / BigInt(im);
          let lots = Number(notional / (BigInt(mark) * m.k));
          if (lots > m.params.maxSizeLots) lots = m.params.maxSizeLots;
          if (lots < 1) continue;
          const side = plan.side ? 'buy' : 'sell';
          const other = side === 'buy' ? 'sell' : 'buy';
          const cp = rng.chance(1, 2) || t === traders[0] ? makers[0]! : pick(traders);
          if (cp === t) continue;
          const name = m.params.instrument;
          txs.push(tx(cp, limit(name, other, mark, lots)));
          txs.push(tx(t, limit(name, side, mark, lots, { timeInForce: 'IOC' })));
        }
        // Now and then one lot in another market too: its bankruptcy price
        // comes from the whole account's equity.
        if (plan.markets.length === 1 && rng.chance(1, 5)) {
          const m = pick(open);
          if (m === plan.markets[0]) continue;
          const side = rng.chance(1, 2) ? 'buy' : 'sell';
          const other = side === 'buy' ? 'sell' : 'buy';
          const name = m.params.instrument;
          txs.push(tx(makers[1]!, limit(name, other, m.markTicks, 1)));
          txs.push(tx(t, limit(name, side, m.markTicks, 1, { timeInForce: 'IOC' })));
        }
      }
      block(txs, 1_000, at('positions'));
    }

    // The shock to come: per underlying, none, small, medium, large, a gap of
    // up to 50%, or aimed at one holder's maintenance or bankruptcy price.
    const planned = [...index];
    const s0 = viewOf(ex);
    for (let u = 0; u < 2; u++) {
      const roll = rng.int(12);
      const dir = rng.chance(1, 2) ? 1 : -1;
      const p = index[u]!;
      let next = p;
      if (roll === 0) next = p;
      else if (roll < 3) next = p + dir * Math.floor((p * rng.between(1, 10)) / 1_000);
      else if (roll < 6) next = p + dir * Math.floor((p * rng.between(10, 80)) / 1_000);
      else if (roll < 8) next = p + dir * Math.floor((p * rng.between(100, 300)) / 1_000);
      else if (roll < 9) next = p + dir * Math.floor((p * rng.between(400, 500)) / 1_000);
      else {
        // Aimed: where a holder of one market's equity meets its maintenance
        // (or zero), a few ticks either side.
        const holders = s0.accounts.filter((a) => {
          const held = a.size.flatMap((x, i) => (x !== 0 ? [i] : []));
          return held.length === 1 && s0.markets[held[0]!]!.underlying === UNDERLYINGS[u];
        });
        if (holders.length > 0) {
          const a = pick(holders);
          const size = BigInt(a.size.find((x) => x !== 0)!);
          const k = 10n;
          const ppm = BigInt(roll < 11 ? mm : 0);
          // cash + size × P × k = |size| × P × k × mm / 10^6  →  P = −cash × 10^6 / (k × (size × 10^6 − |size| × mm))
          const absSize = size < 0n ? -size : size;
          const den = k * (size * 1_000_000n - absSize * ppm);
          if (den !== 0n) {
            const target = Number((-a.cash * 1_000_000n) / den);
            // Within 60% of the price: beyond it a whale's maker losses pass 2^53 quote units.
            if (target > (p * 2) / 5 && target < (p * 8) / 5) next = target + rng.between(-3, 3);
          }
        }
      }
      planned[u] = Math.max(10, next);
    }

    // The books for it: makers' quotes around the coming index (thin,
    // one-sided or none), stale quotes, poor makers' quotes at the mark, and
    // the traders' own resting orders.
    {
      const txs: SignedTx[] = [];
      const open = tradable();
      for (const m of makers) if (rng.chance(1, 2)) txs.push(tx(m, { kind: 'cancelAll' }));
      for (const m of open) {
        const p = planned[under(m)]!;
        const name = m.params.instrument;
        const mode = rng.int(5); // 0 none, 1 bids, 2 asks, 3 both, 4 thin both
        if (mode === 0) continue;
        for (const side of ['buy', 'sell'] as const) {
          if ((mode === 1 && side === 'sell') || (mode === 2 && side === 'buy')) continue;
          for (let n = mode === 4 ? 1 : rng.between(1, 4); n > 0; n--) {
            const away = Math.floor((p * pick([0, 1, 5, 20, 100, 300])) / 1_000) + rng.int(3);
            const price = Math.max(1, side === 'buy' ? p - away - 1 : p + away + 1);
            const size = pick([1, 5, 50, 500, 5_000]);
            txs.push(tx(pick(makers), limit(name, side, price, size)));
          }
        }
      }
      // Stale quotes: a rich maker's bid and ask a few ticks from today's
      // mark, large, still there after the shock, and others on the way to
      // the coming price. An account below zero may close into them (a gain
      // against the new mark, less than its gap), and liquidations fill
      // there better than their bankruptcy price.
      for (const m of open) {
        if (!rng.chance(1, 2)) continue;
        const mark = m.markTicks;
        const name = m.params.instrument;
        const size = pick([1_000, 20_000, 300_000]);
        txs.push(tx(makers[1]!, limit(name, 'buy', mark - 1 - rng.int(5), size)));
        txs.push(tx(makers[1]!, limit(name, 'sell', mark + 1 + rng.int(5), size)));
        const to = planned[under(m)]!;
        for (let n = rng.int(4); n > 0; n--) {
          const price = to + Math.floor(((mark - to) * rng.between(5, 95)) / 100);
          const lots = pick([10, 1_000, 20_000]);
          if (to < mark && price < mark) txs.push(tx(makers[1]!, limit(name, 'buy', price, lots)));
          if (to > mark && price > mark) txs.push(tx(makers[1]!, limit(name, 'sell', price, lots)));
        }
      }
      // Poor makers quote both sides at the mark, as large as their margin lets them.
      for (const pm of poor) {
        if (!rng.chance(1, 2)) continue;
        const m = pick(open);
        const mark = m.markTicks;
        const a = accountOf(pm);
        if (a === undefined) continue;
        const lots = Math.max(
          1,
          Number((a.cashQuote * 1_000_000n) / BigInt(im) / (BigInt(mark) * m.k) / 2n),
        );
        const name = m.params.instrument;
        txs.push(tx(pm, limit(name, 'buy', mark - rng.int(20), lots)));
        txs.push(tx(pm, limit(name, 'sell', mark + rng.int(20), lots)));
      }
      // The traders' own orders: liquidation cancels them.
      for (const t of traders) {
        if (!rng.chance(1, 3)) continue;
        const m = pick(open);
        const mark = m.markTicks;
        const side = rng.chance(1, 2) ? 'buy' : 'sell';
        const away = Math.floor((mark * rng.between(2, 40)) / 1_000);
        const price = side === 'buy' ? mark - away : mark + away;
        txs.push(tx(t, limit(m.params.instrument, side, price, rng.between(1, 40))));
      }
      // Now and then a halt of one market, resumed after the shock.
      if (rng.chance(1, 6)) {
        const proposalId = ++proposal;
        const instrument = pick(open).params.instrument;
        txs.push(...governTxs(tx, proposalId, { kind: 'haltMarket', instrument }));
      }
      block(txs, 1_000, at('books'));
    }
    // A few ticks either side of where the holders will be bankrupt at the
    // shock's marks (the reference's start of that block, funding included),
    // in a block of their own just before it.
    {
      const txs: SignedTx[] = [];
      const s1 = structuredClone(viewOf(ex));
      referenceStart(s1, timeMs + 2_000, oracleAt(planned), staleAt(timeMs + 2_000));
      const open = new Set(tradable().map((m) => m.params.instrument));
      for (const a of s1.accounts) {
        a.size.forEach((size, i) => {
          const m = s1.markets[i]!;
          if (size === 0 || !open.has(m.name) || !rng.chance(2, 3)) return;
          const e = equityOf(s1, a);
          const perTick = BigInt(Math.abs(size)) * m.k;
          const away = e >= 0n ? e / perTick : -((-e + perTick - 1n) / perTick);
          const mark = BigInt(m.mark);
          const b = Number(size > 0 ? mark - away : mark + away);
          const side = size > 0 ? 'buy' : 'sell';
          for (let n = rng.between(1, 3); n > 0; n--) {
            const price = b + rng.between(-2, 2);
            if (price < 1) continue;
            const lots = Math.max(1, Math.floor((Math.abs(size) * rng.between(1, 60)) / 100));
            txs.push(tx(pick(makers), limit(m.name, side, price, lots)));
          }
        });
      }
      block(txs, 1_000, at('bankruptcy prices'));
    }

    // The shock, in a block of its own or, now and then, with the traders'
    // market orders (reduce-only or not) and closes below zero.
    index[0] = planned[0]!;
    index[1] = planned[1]!;
    oracle = oracleOf();
    // Now and then off the tick grid: the index rounds half to even.
    if (rng.chance(1, 4))
      oracle[UNDERLYINGS[0]] = oracle[UNDERLYINGS[0]]! + BigInt(rng.int(Number(TICK[0])));
    if (rng.chance(1, 3)) {
      const txs: SignedTx[] = [];
      const open = tradable();
      for (const t of traders) {
        if (!rng.chance(1, 2)) continue;
        const m = pick(open);
        const a = accountOf(t);
        const size = a === undefined ? 0 : sizeOf(a, m);
        const order: Action = {
          kind: 'placeOrder',
          instrument: m.params.instrument,
          side: size > 0 ? 'sell' : 'buy',
          type: 'market',
          sizeLots: Math.max(1, ((Math.abs(size) * rng.between(1, 150)) / 100) | 0),
          timeInForce: 'IOC',
          reduceOnly: rng.chance(2, 3),
          stp: 'cancelResting',
        };
        txs.push(tx(t, order));
      }
      // Accounts the shock takes below zero close out into a bid (an ask)
      // between the new mark and their bankruptcy price: a gain against the
      // mark, less than their gap. No position, cash below zero: the fund,
      // then the deficits.
      const s2 = structuredClone(viewOf(ex));
      referenceStart(s2, timeMs + 1_000, oracle, staleAt(timeMs + 1_000));
      const names = new Set(open.map((m) => m.params.instrument));
      let outs = 0;
      for (const a of s2.accounts) {
        const e = equityOf(s2, a);
        const held = a.size.flatMap((x, i) => (x !== 0 ? [i] : []));
        if (e >= 0n || held.length !== 1 || outs >= 2 || !rng.chance(1, 2)) continue;
        const m = s2.markets[held[0]!]!;
        const size = a.size[held[0]!]!;
        if (!names.has(m.name) || Math.abs(size) > 1_000_000) continue;
        const perTick = BigInt(Math.abs(size)) * m.k;
        const gapTicks = Number((-e + perTick - 1n) / perTick);
        const price = size > 0 ? m.mark + 1 + rng.int(gapTicks) : m.mark - 1 - rng.int(gapTicks);
        if (price < 1) continue;
        const side = size > 0 ? 'buy' : 'sell';
        const other = size > 0 ? 'sell' : 'buy';
        const owner = traders.find((t) => accountOf(t)?.index === a.index);
        if (owner === undefined) continue;
        outs++;
        const lots = Math.abs(size);
        txs.push(tx(makers[1]!, limit(m.name, side, price, lots, { timeInForce: 'postOnly' })));
        const close = { timeInForce: 'IOC', reduceOnly: true } as const;
        txs.push(tx(owner, limit(m.name, other, price, lots, close)));
      }
      block(txs, 1_000, at('shock with orders'));
    } else block([], 1_000, at('shock'));

    // The blocks after it, without transactions: slices the caps left, the
    // accounts past them, funding; a snapshot taken now and then.
    const after = 1 + rng.int(6);
    for (let j = 0; j < after; j++) {
      if (restored.length < 2 && rng.chance(1, 5)) {
        restored.push(decodeSnapshot(encodeSnapshot(ex), { checkInvariants: true }));
        counts.restores++;
        if (ex.state.markets.some((m) => m.liquidationBacklog) || ex.state.underwater.size > 0) {
          counts.midRestore++;
        }
      }
      const roll = rng.int(12);
      // Now and then past an auction's end (30 s), or a funding interval's,
      // or a minute without one underlying's price: its index goes stale
      // (nothing of it closes, funding pauses) until a price comes.
      const dt =
        roll < 7
          ? 1_000
          : roll < 9
            ? rng.between(2_000, 12_000)
            : roll < 11
              ? rng.between(30_000, 40_000)
              : 61_000;
      const sent = oracle;
      if (roll === 11) {
        oracle = { ...oracle };
        delete oracle[pick(UNDERLYINGS)];
      }
      block([], dt, at(`after ${j}`));
      oracle = sent;
    }
    // Markets halted by governance resume (a block with transactions); an
    // expired dated market stays halted for its settlement.
    const halted = state.markets.filter(
      (m) => m.halted && !m.retired && !(m.listed && m.expiryMs <= timeMs),
    );
    if (halted.length > 0) {
      const txs: SignedTx[] = [];
      for (const m of halted) {
        const proposalId = ++proposal;
        const instrument = m.params.instrument;
        txs.push(...governTxs(tx, proposalId, { kind: 'resumeMarket', instrument }));
      }
      block(txs, 1_000, at('resume'));
      for (let j = rng.int(3); j > 0; j--) block([], 1_000, at(`after resume ${j}`));
    }
  }
}

test('property: every liquidation does what docs/exchange.md says, against a reference of the rules', () => {
  const counts = Object.fromEntries(COUNTS.map((k) => [k, 0])) as Counts;
  referenceStats.atLimit = 0;
  referenceStats.beyondLimit = 0;
  referenceStats.shortfalls = 0;
  referenceStats.pastBankruptcy = 0;
  for (let seed = 1; seed <= 30; seed++) run(seed, counts);
  counts.atLimit = referenceStats.atLimit;
  counts.beyondLimit = referenceStats.beyondLimit;
  counts.shortfalls = referenceStats.shortfalls;
  counts.pastBankruptcy = referenceStats.pastBankruptcy;
  for (const k of COUNTS) assert.ok(counts[k] > 0, `${k}: ${show(counts)}`);
});
