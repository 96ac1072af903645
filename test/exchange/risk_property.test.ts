// The risk engine under violent markets (docs/exchange.md, "Liquidation and
// deleveraging", "Funding"): a few accounts at high leverage against a thin
// book, oracle moves of up to ±50% in one block, gaps back, stale oracles.
// After every block: the invariants (collateral conservation, open interest),
// a non-negative insurance fund, every account below zero known to the
// withdrawal pause, none left below zero while the fund could have covered
// it, none left below maintenance without a rescan due, funding zero-sum but
// for its dust, and no liquidation of an account above maintenance. The
// validators halt and resume markets now and then (a resumed market's
// holders are due a rescan). Two runs from one seed give the same appHashes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Prng } from '../../src/lib/prng.ts';
import { Exchange, decodeSnapshot, encodeSnapshot } from '../../src/exchange/index.ts';
import type { ExchangeEvent } from '../../src/exchange/results.ts';
import type { Action, GovProposal, SignedTx } from '../../src/exchange/tx/types.ts';
import type { Genesis } from '../../src/exchange/genesis.ts';
import { belowMaintenance, equityQuote } from '../../src/exchange/margin.ts';
import { LIQUIDATIONS_PER_BLOCK_MAX } from '../../src/lib/limits.ts';
import { ORACLE, USDC, VALIDATORS, genesis, key, limit } from './helpers.ts';
import type { Key } from './helpers.ts';

const MARKETS = [
  { instrument: 'BTC-PERPETUAL', underlying: 'BTC', tickQuote: 100_000n },
  { instrument: 'ETH-PERPETUAL', underlying: 'ETH', tickQuote: 10_000n },
];
const TRADERS = Array.from({ length: 4 }, (_, i) => key(`risk${i}`));
const MAKER = key('riskmm');

/** `scale` multiplies every amount and size: 10^6 puts cash and notionals past 2^53. */
function riskGenesis(insuranceFundQuote: bigint, scale: bigint): Genesis {
  const g = genesis();
  const markets = g.markets.map((m) => ({
    ...m,
    liquidationQuoteMaxPerBlock: m.liquidationQuoteMaxPerBlock * scale,
    liquidationFeeQuoteMax: m.liquidationFeeQuoteMax * scale,
    imfStepQuote: m.imfStepQuote * scale,
  }));
  return genesis({
    markets,
    listing: undefined,
    insuranceFundQuote: insuranceFundQuote * scale,
    faucetQuoteMax: 10n ** 25n,
  });
}

function tx(k: Key, nonce: number, action: Action): SignedTx {
  return {
    chainId: 'zomma-devnet',
    signer: k.publicKey,
    account: k.address,
    subaccount: 0,
    nonce,
    action,
    signature: new Uint8Array(64),
  };
}

/** What a flow's blocks did, counted from their events. */
const COUNTS = ['liquidations', 'deleverages', 'covers', 'fundings', 'halts', 'resumes'] as const;
type Counts = Record<(typeof COUNTS)[number], number>;

function noCounts(): Counts {
  return Object.fromEntries(COUNTS.map((k) => [k, 0])) as Counts;
}

interface Outcome extends Counts {
  hashes: string[];
}

function closable(ex: Exchange, i: number): boolean {
  const m = ex.state.markets[i]!;
  return !m.halted && !m.oracleStale && m.auction?.active !== true;
}

function runFlow(seed: number, blockCount: number, scale: bigint, insurance: bigint): Outcome {
  const rng = new Prng(seed);
  const ex = new Exchange(riskGenesis(insurance, scale), { checkInvariants: true });
  // Past 2^53, prices go up a hundredfold too: an order has at most 10^9 lots.
  const priceScale = scale === 1n ? 1n : 100n;
  const index: Record<string, bigint> = {
    BTC: ORACLE.BTC * priceScale,
    ETH: ORACLE.ETH * priceScale,
  };
  const previous: Record<string, bigint> = { ...index };
  const out: Outcome = { hashes: [], ...noCounts() };
  let timeMs = ex.state.timeMs;
  let nonce = 0;
  let proposals = 0;
  const lots = (n: number): number => Number((BigInt(n) * scale) / priceScale);
  for (let b = 0; b < blockCount; b++) {
    const txs: SignedTx[] = [];
    if (b === 0) {
      for (const t of TRADERS) {
        txs.push(tx(t, ++nonce, { kind: 'faucet', amountQuote: 3_000n * USDC * scale }));
      }
      txs.push(tx(MAKER, ++nonce, { kind: 'faucet', amountQuote: 5_000_000n * USDC * scale }));
    }
    // Time: seconds, or a funding boundary crossed, or a gap that lets an unpriced index go stale.
    const dtRoll = rng.int(10);
    timeMs +=
      dtRoll < 6 ? rng.between(1, 5_000) : dtRoll < 9 ? rng.between(60_000, 3_600_000) : 61_000;
    const oracle: Record<string, bigint> = {};
    for (const u of ['BTC', 'ETH']) {
      const roll = rng.int(20);
      let next = index[u]!;
      if (roll < 2) next = (next * BigInt(rng.between(500_000, 1_500_000))) / 1_000_000n;
      else if (roll < 4) next = previous[u]!;
      else if (roll < 16) next = (next * BigInt(rng.between(960_000, 1_040_000))) / 1_000_000n;
      previous[u] = index[u]!;
      index[u] = next > 0n ? next : 1n;
      // Now and then no price at all: after staleAfterMs the market is stale.
      if (roll !== 19) oracle[u] = index[u]!;
    }
    if (b > 0) {
      const n = rng.between(0, 6);
      for (let i = 0; i < n; i++) {
        const mi = rng.int(MARKETS.length);
        const m = MARKETS[mi]!;
        const mid = Number(index[m.underlying]! / m.tickQuote);
        const side = rng.chance(1, 2) ? 'buy' : 'sell';
        if (rng.chance(1, 3)) {
          // The market maker: a thin quote a little away from the index.
          const away = Math.max(1, Math.floor((mid * rng.between(1, 30)) / 1_000));
          const price = side === 'buy' ? Math.max(1, mid - away) : mid + away;
          txs.push(
            tx(MAKER, ++nonce, limit(m.instrument, side, price, lots(rng.between(100, 20_000)))),
          );
        } else {
          // A trader at up to ~15× leverage of its $3,000, crossing the spread or resting.
          const t = rng.pick(TRADERS);
          const d = Math.floor(mid / 100);
          const price = Math.max(1, mid + rng.between(-d, d));
          const notionalUsd = rng.between(1_000, 45_000);
          // k = 10 in both markets: a lot is worth mark ticks × 10 quote units.
          const size = Math.max(1, Math.floor((notionalUsd * 100_000 * Number(priceScale)) / mid));
          const tif = rng.chance(1, 2) ? 'IOC' : 'GTC';
          txs.push(
            tx(t, ++nonce, limit(m.instrument, side, price, lots(size), { timeInForce: tif })),
          );
        }
      }
    }
    // Now and then the validators halt or resume a market, or all of them.
    if (b > 0 && rng.chance(1, 8)) {
      const roll = rng.int(10);
      const instrument = MARKETS[rng.int(MARKETS.length)]!.instrument;
      const proposal: GovProposal =
        roll < 4
          ? { kind: 'haltMarket', instrument }
          : roll < 8
            ? { kind: 'resumeMarket', instrument }
            : roll === 8
              ? { kind: 'haltAll' }
              : { kind: 'resumeAll' };
      const proposalId = ++proposals;
      txs.push(tx(VALIDATORS[0]!, ++nonce, { kind: 'govPropose', proposalId, proposal }));
      for (const v of [1, 2])
        txs.push(tx(VALIDATORS[v]!, ++nonce, { kind: 'govVote', proposalId, approve: true }));
    }
    const before = encodeSnapshot(ex);
    const block = { height: b + 1, timeMs, proposer: VALIDATORS[0]!.publicKey, txs, oracle };
    const r = ex.finalizeBlock(block);
    out.hashes.push(Buffer.from(r.appHash).toString('hex'));
    checkBlock(ex, r.events, txs.length, before, out, b);
  }
  return out;
}

function checkBlock(
  ex: Exchange,
  events: ExchangeEvent[],
  txCount: number,
  before: Uint8Array,
  out: Outcome,
  b: number,
): void {
  const state = ex.state;
  const at = `block ${b + 1}`;
  assert.ok(state.insuranceQuote >= 0n, `${at}: insurance ${state.insuranceQuote}`);
  const liquidated = events.filter((e) => e.type === 'liquidation').length;
  out.liquidations += liquidated;
  for (const e of events) {
    if (e.type === 'funding') {
      out.fundings++;
      assert.equal(e.paidQuote, e.receivedQuote + e.dustQuote, `${at}: funding not zero-sum`);
      // At most a quote unit per position paid (holders may since have been liquidated).
      const positions = BigInt(state.accounts.length);
      assert.ok(e.dustQuote >= 0n && e.dustQuote <= positions, `${at}: dust ${e.dustQuote}`);
    } else if (e.type === 'deleverage') {
      out.deleverages++;
      assert.notEqual(e.counterparty, e.account);
    } else if (e.type === 'insuranceCover') out.covers++;
    else if (e.type === 'marketHalted') out.halts++;
    else if (e.type === 'marketResumed') out.resumes++;
  }
  // The first account liquidated in a block without transactions, funding
  // payments or auctions before it was below maintenance at the block's marks.
  const first = events.findIndex(
    (e) => e.type === 'liquidation' || e.type === 'liquidationCancels',
  );
  const quiet = events
    .slice(0, first)
    .every((e) => e.type === 'funding' && e.paidQuote === 0n && e.receivedQuote === 0n);
  if (first >= 0 && txCount === 0 && quiet) {
    const e = events[first]!;
    const copy = decodeSnapshot(before);
    copy.state.markets.forEach((m, i) => m.setMark(state.markets[i]!.markTicks));
    const acct = copy.state.accounts[(e as { account: number }).account]!;
    assert.ok(belowMaintenance(copy.state, acct), `${at}: liquidated above maintenance`);
  }
  // The fund pays the deficits after every block's liquidations: it holds
  // nothing while one is left, and every one still lacks something.
  if (state.deficits.size > 0) assert.equal(state.insuranceQuote, 0n, `${at}: deficit unpaid`);
  for (const a of state.deficits) {
    assert.ok(a.cashQuote < 0n && a.positionCount === 0, `${at}: deficit ${a.index} resolved`);
  }
  for (const a of state.accounts) {
    if (a.positionCount === 0) {
      if (a.cashQuote < 0n) assert.ok(state.deficits.has(a), `${at}: deficit ${a.index} unknown`);
      continue;
    }
    const equity = equityQuote(state, a);
    const held = state.markets.map((_, i) => a.positions[i]!.sizeLots !== 0);
    const closableHeld = held.map((h, i) => h && closable(ex, i));
    if (equity < 0n) {
      // Withdrawals wait for it.
      assert.ok(state.underwater.has(a), `${at}: account ${a.index} below zero, not paused`);
      // The fund covers what it can of an account it can close (a close the
      // cap cut short gives the share for the rest back until its next slice).
      const room = state.markets.some(
        (m, i) =>
          closableHeld[i] &&
          !m.liquidationBacklog &&
          m.liquidatedQuote < m.params.liquidationQuoteMaxPerBlock,
      );
      if (room && liquidated < LIQUIDATIONS_PER_BLOCK_MAX)
        assert.equal(state.insuranceQuote, 0n, `${at}: ${a.index} below zero, fund not empty`);
    }
    if (belowMaintenance(state, a) && closableHeld.includes(true)) {
      // Due again in the next block, whether or not a mark moves.
      const due = state.markets.some((m, i) => held[i] && m.liquidationBacklog);
      assert.ok(due, `${at}: account ${a.index} below maintenance, no rescan due`);
    }
  }
}

for (const [name, scale] of [
  ['amounts of a few thousand dollars', 1n],
  ['amounts past 2^53 quote units', 1_000_000n],
] as const) {
  test(`property: risk engine under violent oracle moves, ${name}`, () => {
    const totals = noCounts();
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.constantFrom(0n, 2_000n),
        (seed, insurance) => {
          const a = runFlow(seed, 40, scale, insurance);
          const b = runFlow(seed, 40, scale, insurance);
          assert.deepEqual(a.hashes, b.hashes);
          for (const k of COUNTS) totals[k] += a[k];
        },
      ),
      { numRuns: 15, seed: 20_261_126 },
    );
    // The flows must reach what they check.
    assert.ok(
      totals.liquidations > 0 &&
        totals.deleverages > 0 &&
        totals.fundings > 0 &&
        totals.halts > 0 &&
        totals.resumes > 0,
      JSON.stringify(totals),
    );
  });
}
