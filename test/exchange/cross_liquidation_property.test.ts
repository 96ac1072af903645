// Liquidations among many accounts that trade with one another (docs/exchange.md,
// "Liquidation and deleveraging"): up to 34 accounts (two subaccounts each)
// cross positions among themselves, rest orders that liquidations fill, and
// are each other's deleveraged counterparties, under oracle shocks of up to
// ±45% in either direction, stale prices, halts and resumes, thin or missing
// quotes, per-block liquidation caps from $1,000 to $5,000,000, insurance
// funds from nothing to $50,000, draws, withdrawals and transfers between
// subaccounts. After every block: the invariants (checkInvariants: among
// them, the deficits are exactly the accounts without positions and with
// negative cash, and none is left while the fund holds money), the digest
// kept block by block equals the one recomputed from the state, an account
// below maintenance that can close is due again in the next block, and nodes
// restored from snapshots taken at seeded blocks give the same results,
// events and appHashes for the rest.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../src/lib/prng.ts';
import { Exchange, decodeSnapshot, encodeSnapshot } from '../../src/exchange/index.ts';
import type { Block } from '../../src/exchange/index.ts';
import type { Action, SignedTx } from '../../src/exchange/tx/types.ts';
import { belowMaintenance } from '../../src/exchange/margin.ts';
import { USDC, VALIDATORS, genesis, key, limit, replacer } from './helpers.ts';
import type { Key } from './helpers.ts';

const BTC = 'BTC-PERPETUAL';
const ETH = 'ETH-PERPETUAL';
const COUNTS = ['liquidations', 'deleverages', 'covers', 'deficits', 'paused', 'restores'] as const;
type Counts = Record<(typeof COUNTS)[number], number>;

function run(seed: number, blocks: number, counts: Counts): void {
  const rng = new Prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)]!;
  const [initialMarginPpm, maintenanceMarginPpm] = pick([
    [20_000, 10_000],
    [50_000, 30_000],
    [100_000, 50_000],
  ] as const);
  const monitored = rng.chance(1, 2);
  const feePpm = pick([0, 5_000, 10_000]);
  const feeMax = pick([1n, 50n, 50_000n]) * USDC;
  const markets = genesis().markets.map((m) => ({
    ...m,
    initialMarginPpm,
    maintenanceMarginPpm,
    liquidationFeePpm: Math.min(feePpm, maintenanceMarginPpm),
    liquidationFeeQuoteMax: feeMax,
    liquidationQuoteMaxPerBlock: pick([1_000n, 5_000n, 30_000n, 5_000_000n]) * USDC,
    ...(monitored ? {} : { triggers: [] }),
    ...(rng.chance(1, 4) ? { priceBandPpm: 200_000 } : {}),
  }));
  const insuranceFundQuote = pick([0n, 0n, 100n, 2_000n, 50_000n]) * USDC;
  const ex = new Exchange(genesis({ markets, listing: undefined, insuranceFundQuote }), {
    checkInvariants: true,
  });
  const traders = Array.from({ length: 4 + rng.int(14) }, (_, i) => key(`cross${seed}-t${i}`));
  const makers = [key(`cross${seed}-m0`), key(`cross${seed}-m1`)];
  let timeMs = ex.state.timeMs;
  let nonce = 0;
  const tx = (k: Key, action: Action, subaccount = 0): SignedTx => ({
    chainId: 'zomma-devnet',
    signer: k.publicKey,
    account: k.address,
    subaccount,
    nonce: timeMs + ++nonce,
    action,
    signature: new Uint8Array(64),
  });
  // Index prices in whole dollars, and the ones seen before (a gap back to one of them).
  const index: Record<string, number> = { BTC: 50_000, ETH: 3_000 };
  const seen: Record<string, number[]> = { BTC: [], ETH: [] };
  let proposal = 0;
  const restored: Exchange[] = [];
  for (let b = 0; b < blocks; b++) {
    const at = `seed ${seed} block ${b + 1}`;
    const txs: SignedTx[] = [];
    if (b === 0) {
      for (const m of makers) txs.push(tx(m, { kind: 'faucet', amountQuote: 900_000n * USDC }));
      for (const t of traders) {
        txs.push(tx(t, { kind: 'faucet', amountQuote: BigInt(500 + rng.int(5_000)) * USDC }));
        if (rng.chance(1, 2)) {
          const amountQuote = BigInt(100 + rng.int(2_000)) * USDC;
          txs.push(tx(t, { kind: 'faucet', amountQuote }, 1));
        }
      }
    }
    // Seconds mostly; now and then past the oracle's staleness or a funding boundary.
    const dtRoll = rng.int(20);
    timeMs +=
      dtRoll < 14
        ? 1_000
        : dtRoll < 17
          ? rng.between(1_000, 40_000)
          : dtRoll < 19
            ? 61_000
            : rng.between(60_000, 3_700_000);
    const oracle: Record<string, bigint> = {};
    for (const u of ['BTC', 'ETH'] as const) {
      const roll = rng.int(30);
      let p = index[u]!;
      seen[u]!.push(p);
      if (roll < 6) p = Math.round((p * rng.between(550, 1_450)) / 1_000);
      else if (roll < 8) p = pick(seen[u]!);
      else if (roll < 22) p = Math.round((p * rng.between(985, 1_015)) / 1_000);
      const [lo, hi] = u === 'BTC' ? [5_000, 500_000] : [300, 30_000];
      index[u] = Math.max(lo, Math.min(hi, p));
      // Two rolls in thirty send no price: the index goes stale after a minute without one.
      if (roll < 28) oracle[u] = BigInt(index[u]!) * USDC;
    }
    // Ticks: $0.10 for BTC, $0.01 for ETH; a lot of either is worth ticks × 10 quote units.
    const ticks = (instrument: string): number =>
      instrument === BTC ? index.BTC! * 10 : index.ETH! * 100;
    if (b > 0) {
      // Thin quotes, often left standing from older prices, sometimes none.
      for (const m of makers) {
        if (rng.chance(1, 4)) txs.push(tx(m, { kind: 'cancelAll' }));
        if (rng.chance(1, 3)) continue;
        for (const instrument of [BTC, ETH]) {
          const mid = ticks(instrument);
          const away = 1 + Math.floor((mid * rng.between(0, 40)) / 1_000);
          const size = instrument === BTC ? rng.between(1, 3_000) : rng.between(10, 30_000);
          const postOnly = { timeInForce: 'postOnly' } as const;
          txs.push(
            tx(m, limit(instrument, 'sell', mid + away, size, postOnly)),
            tx(m, limit(instrument, 'buy', Math.max(1, mid - away), size, postOnly)),
          );
        }
      }
      // Traders take each other's orders at up to $60,000 a trade.
      for (let i = rng.int(8); i > 0; i--) {
        const instrument = rng.chance(1, 2) ? BTC : ETH;
        const mid = ticks(instrument);
        const side = rng.chance(1, 2) ? 'buy' : 'sell';
        const d = Math.floor(mid / 200);
        const price = Math.max(1, mid + rng.between(-d, d));
        const size = Math.max(1, Math.floor((rng.between(500, 60_000) * 100_000) / price));
        txs.push(tx(pick(traders), limit(instrument, side, price, size), rng.int(2)));
        if (rng.chance(3, 4)) {
          const other = side === 'buy' ? 'sell' : 'buy';
          const ioc = { timeInForce: 'IOC' } as const;
          txs.push(tx(pick(traders), limit(instrument, other, price, size, ioc), rng.int(2)));
        }
      }
      // Their resting orders near the mark: makers of liquidations' closes.
      for (let i = rng.int(4); i > 0; i--) {
        const instrument = rng.chance(1, 2) ? BTC : ETH;
        const mid = ticks(instrument);
        const side = rng.chance(1, 2) ? 'buy' : 'sell';
        const away = Math.floor((mid * rng.between(0, 80)) / 1_000);
        const price = Math.max(1, side === 'buy' ? mid - away : mid + away);
        const size = rng.between(1, instrument === BTC ? 500 : 5_000);
        txs.push(tx(pick(traders), limit(instrument, side, price, size), rng.int(2)));
      }
      // Market orders, often reduce-only: an account below zero closing into a better bid.
      for (let i = rng.int(4); i > 0; i--) {
        const instrument = rng.chance(1, 2) ? BTC : ETH;
        const order: Action = {
          kind: 'placeOrder',
          instrument,
          side: rng.chance(1, 2) ? 'buy' : 'sell',
          type: 'market',
          sizeLots: rng.between(1, instrument === BTC ? 5_000 : 50_000),
          timeInForce: 'IOC',
          reduceOnly: rng.chance(1, 2),
          stp: 'cancelResting',
        };
        txs.push(tx(pick(traders), order, rng.int(2)));
      }
      for (let i = rng.int(4); i > 0; i--) {
        const roll = rng.int(10);
        const who = rng.chance(1, 6) ? pick(makers) : pick(traders);
        const amountQuote = BigInt(1 + rng.int(rng.chance(1, 3) ? 20_000 : 500)) * USDC;
        if (roll < 4) {
          txs.push(tx(who, { kind: 'withdraw', amountQuote, destination: 'x' }, rng.int(2)));
        } else if (roll < 8) {
          const from = rng.int(2);
          const action: Action = {
            kind: 'transfer',
            fromSubaccount: from,
            toSubaccount: 1 - from,
            amountQuote,
          };
          txs.push(tx(who, action));
        } else txs.push(tx(who, { kind: 'faucet', amountQuote }, rng.int(2)));
      }
      if (rng.chance(1, 10)) {
        const roll = rng.int(10);
        const instrument = rng.chance(1, 2) ? BTC : ETH;
        const p =
          roll < 4
            ? ({ kind: 'haltMarket', instrument } as const)
            : roll < 8
              ? ({ kind: 'resumeMarket', instrument } as const)
              : roll === 8
                ? ({ kind: 'haltAll' } as const)
                : ({ kind: 'resumeAll' } as const);
        const proposalId = ++proposal;
        txs.push(tx(VALIDATORS[0]!, { kind: 'govPropose', proposalId, proposal: p }));
        for (const v of [1, 2]) {
          txs.push(tx(VALIDATORS[v]!, { kind: 'govVote', proposalId, approve: true }));
        }
      }
      // The proposer's order, partly shuffled (the in-block ordering puts cancels first).
      for (let i = txs.length - 1; i > 0; i--) {
        if (rng.chance(1, 3)) {
          const j = rng.int(i + 1);
          [txs[i], txs[j]] = [txs[j]!, txs[i]!];
        }
      }
    }
    if (restored.length < 3 && rng.chance(1, 12)) {
      restored.push(decodeSnapshot(encodeSnapshot(ex), { checkInvariants: true }));
      counts.restores++;
    }
    const block: Block = {
      height: ex.state.height + 1,
      timeMs,
      proposer: VALIDATORS[0]!.publicKey,
      txs,
      oracle,
    };
    const r = ex.finalizeBlock(block);
    const ours = JSON.stringify([r.results, r.events], replacer);
    for (const node of restored) {
      const theirs = node.finalizeBlock(block);
      assert.equal(JSON.stringify([theirs.results, theirs.events], replacer), ours, at);
      assert.deepEqual(theirs.appHash, r.appHash, `${at}: app hash`);
    }
    assert.deepEqual(ex.digestBytes(), ex.digestFromScratch(), `${at}: digest`);
    const state = ex.state;
    for (const e of r.events) {
      if (e.type === 'liquidation') counts.liquidations++;
      else if (e.type === 'deleverage') counts.deleverages++;
      else if (e.type === 'insuranceCover') counts.covers++;
    }
    counts.deficits += state.deficits.size;
    for (const x of r.results) {
      if (x.ok && !x.actions[0]!.ok && x.actions[0]!.code === 'WithdrawalsPaused') counts.paused++;
    }
    const closable = state.markets.map(
      (m) => !m.halted && !m.oracleStale && m.auction?.active !== true,
    );
    for (const a of state.accounts) {
      if (!belowMaintenance(state, a)) continue;
      const held = state.markets.map((_, i) => a.positions[i]!.sizeLots !== 0);
      if (!held.some((h, i) => h && closable[i])) continue;
      const due = state.markets.some((m, i) => held[i] && m.liquidationBacklog);
      assert.ok(due, `${at}: account ${a.index} below maintenance, no rescan due`);
    }
  }
}

test('property: liquidations among accounts that trade with each other keep the deficits, the fund and restores right', () => {
  const counts = Object.fromEntries(COUNTS.map((k) => [k, 0])) as Counts;
  for (let seed = 90; seed < 150; seed++) run(seed, 120, counts);
  // The flows must reach what they check.
  for (const k of COUNTS) assert.ok(counts[k] > 0, `${k}: ${JSON.stringify(counts)}`);
});
