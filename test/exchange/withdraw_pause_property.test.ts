// A withdrawal the pause rule lets through is never followed, in the
// same block's liquidations, by a deleveraging beyond the mark, and nodes
// restored at any height give the same results. Seeded blocks of leveraged
// one-sided traders in two markets, a small per-block liquidation cap, an
// insurance fund of varying size, withdrawals, transfers, draws and halts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, USDC, VALIDATORS, genesis, key, limit, replacer } from './helpers.ts';
import { Prng } from '../../src/lib/prng.ts';
import { Exchange } from '../../src/exchange/index.ts';
import type { SignedTx } from '../../src/exchange/tx/types.ts';
import { decodeSnapshot, encodeSnapshot } from '../../src/exchange/snapshot.ts';
import { equityQuote } from '../../src/exchange/margin.ts';

const BTC = 'BTC-PERPETUAL';
const ETH = 'ETH-PERPETUAL';

function run(seed: number, insuranceFundQuote: bigint, feePpm: number) {
  const prng = new Prng(seed);
  const markets = genesis().markets.map((m) => ({
    ...m,
    initialMarginPpm: 20_000,
    maintenanceMarginPpm: 10_000,
    liquidationFeePpm: feePpm,
  }));
  markets[0] = { ...markets[0]!, liquidationQuoteMaxPerBlock: 30_000n * USDC };
  markets[1] = { ...markets[1]!, liquidationQuoteMaxPerBlock: 10_000n * USDC };
  const h = new Harness(genesis({ markets, insuranceFundQuote }));
  const traders = Array.from({ length: 8 }, (_, i) => key(`probe-${seed}-t${i}`));
  const maker = key(`probe-${seed}-maker`);
  h.fund(maker, 900_000n * USDC);
  for (const t of traders) {
    h.fund(t, BigInt(1_000 + prng.int(3_000)) * USDC);
    h.fund(t, BigInt(500 + prng.int(1_000)) * USDC, 1);
  }
  const long = new Map<number, boolean>();
  traders.forEach((t, i) => {
    long.set(h.account(t, 0)!.index, i % 2 === 0);
    long.set(h.account(t, 1)!.index, i % 2 === 0);
  });
  let btc = 50_000;
  let eth = 3_000;
  let proposal = 1;
  let halted = false;
  const restored: Exchange[] = [];
  const violations: string[] = [];
  let withdrewWhileNegative = 0;
  let beyond = 0;
  let makerDeleveraged = 0;
  for (let b = 0; b < 80; b++) {
    if (b % 10 === 3) {
      const copy = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
      assert.ok(copy instanceof Exchange, 'restores');
      restored.push(copy);
      if (restored.length > 3) restored.shift();
    }
    const move = (p: number) => {
      const jump = prng.chance(1, 5) ? 2 + prng.int(5) : prng.int(2);
      return Math.max(p / 3, Math.round(p + ((prng.chance(1, 2) ? 1 : -1) * p * jump) / 100));
    };
    btc = move(btc);
    eth = move(eth);
    h.oracle = { ...h.oracle, BTC: BigInt(btc) * USDC, ETH: BigInt(eth) * USDC };
    const bt = btc * 10;
    const et = eth * 100;
    const txs: SignedTx[] = [
      h.tx(maker, { kind: 'cancelAll' }),
      h.tx(maker, limit(BTC, 'sell', bt + 20, 30_000, { timeInForce: 'postOnly' })),
      h.tx(maker, limit(BTC, 'buy', bt - 20, 30_000, { timeInForce: 'postOnly' })),
      h.tx(maker, limit(ETH, 'sell', et + 20, 300_000, { timeInForce: 'postOnly' })),
      h.tx(maker, limit(ETH, 'buy', et - 20, 300_000, { timeInForce: 'postOnly' })),
    ];
    const rand = <T>(xs: readonly T[]): T => xs[prng.int(xs.length)]!;
    for (let i = 0; i < 4; i++) {
      const n = prng.int(traders.length);
      const buy = n % 2 === 0;
      const btcMarket = prng.chance(1, 2);
      const px = btcMarket ? (buy ? bt + 20 : bt - 20) : buy ? et + 20 : et - 20;
      const size = btcMarket ? 2_000 + prng.int(8_000) : 20_000 + prng.int(80_000);
      txs.push(
        h.tx(
          traders[n]!,
          limit(btcMarket ? BTC : ETH, buy ? 'buy' : 'sell', px, size, { timeInForce: 'IOC' }),
          { subaccount: prng.int(2) },
        ),
      );
    }
    const extra: SignedTx[] = [];
    for (let i = 0; i < 3; i++) {
      const who = prng.chance(1, 4) ? maker : rand(traders);
      extra.push(
        h.tx(
          who,
          { kind: 'withdraw', amountQuote: BigInt(1 + prng.int(300)) * USDC, destination: 'x' },
          { subaccount: who === maker ? 0 : prng.int(2) },
        ),
      );
    }
    if (prng.chance(1, 2)) {
      const from = prng.int(2);
      extra.push(
        h.tx(rand(traders), {
          kind: 'transfer',
          fromSubaccount: from,
          toSubaccount: 1 - from,
          amountQuote: BigInt(1 + prng.int(500)) * USDC,
        }),
      );
    }
    if (prng.chance(1, 6)) {
      extra.push(
        h.tx(rand(traders), { kind: 'faucet', amountQuote: BigInt(1 + prng.int(400)) * USDC }),
      );
    }
    if (prng.chance(1, 12)) {
      const id = proposal++;
      const kind = halted ? 'resumeMarket' : 'haltMarket';
      halted = !halted;
      extra.push(
        h.tx(VALIDATORS[0]!, {
          kind: 'govPropose',
          proposalId: id,
          proposal: { kind, instrument: ETH },
        }),
        h.tx(VALIDATORS[1]!, { kind: 'govVote', proposalId: id, approve: true }),
        h.tx(VALIDATORS[2]!, { kind: 'govVote', proposalId: id, approve: true }),
      );
    }
    for (const x of extra) txs.splice(prng.int(txs.length + 1), 0, x);
    const negativeBefore = h.ex.state.underwater.size + h.ex.state.deficits.size;
    const block = h.nextBlock(txs);
    const deficitsBefore = h.ex.state.deficits.size;
    const ours = h.ex.finalizeBlock(block);
    const seen = JSON.stringify(ours.results, replacer);
    for (const node of restored) {
      const theirs = node.finalizeBlock(block);
      assert.equal(JSON.stringify(theirs.results, replacer), seen, `seed ${seed} block ${b}`);
      assert.deepEqual(theirs.appHash, ours.appHash, `seed ${seed} block ${b} app hash`);
    }
    const withdrew = ours.results.some(
      (r, i) => r.ok && r.actions[0]!.ok && txs[i]!.action.kind === 'withdraw',
    );
    if (withdrew && negativeBefore > 0) withdrewWhileNegative++;
    for (const e of ours.events) {
      if (e.type !== 'deleverage') continue;
      const m = h.ex.state.marketByName.get(e.market)!;
      const isLong = long.get(e.account);
      if (isLong === undefined) {
        makerDeleveraged++;
        continue;
      }
      const past = isLong ? e.priceTicks > m.markTicks : e.priceTicks < m.markTicks;
      if (past) {
        beyond++;
        if (withdrew) {
          violations.push(
            `seed ${seed} block ${b}: a withdrawal went through and ${e.market} deleveraged account ${e.account} at ${e.priceTicks}, mark ${m.markTicks}`,
          );
        }
      }
    }
    if (withdrew && h.ex.state.deficits.size > deficitsBefore) {
      violations.push(`seed ${seed} block ${b}: a withdrawal went through and a deficit was left`);
    }
    // Every account with negative equity is counted by the state's sets.
    for (const a of h.ex.state.accounts) {
      if (a.positionCount === 0 && a.cashQuote < 0n) {
        assert.ok(h.ex.state.deficits.has(a), `seed ${seed} block ${b}: uncounted negative cash`);
      }
      if (a.positionCount > 0 && equityQuote(h.ex.state, a) < 0n) {
        assert.ok(h.ex.state.underwater.has(a), `seed ${seed} block ${b}: uncounted underwater`);
      }
    }
  }
  return { violations, withdrewWhileNegative, beyond, makerDeleveraged };
}

test('no withdrawal goes through in a block whose liquidations deleverage beyond the mark', () => {
  const all: string[] = [];
  let despite = 0;
  let beyond = 0;
  let maker = 0;
  for (const fund of [0n, 300n * USDC, 2_000n * USDC, 20_000n * USDC]) {
    for (const seed of [1, 2, 3]) {
      for (const fee of [0, 10_000]) {
        const r = run(seed * 7 + Number(fund / USDC), fund, fee);
        all.push(...r.violations);
        despite += r.withdrewWhileNegative;
        beyond += r.beyond;
        maker += r.makerDeleveraged;
      }
    }
  }
  assert.ok(despite > 0, 'some withdrawal went through while an account was below zero');
  assert.ok(beyond > 0, 'some deleveraging went beyond the mark');
  assert.equal(maker, 0, 'the maker, of either side, was never deleveraged');
  assert.deepEqual(all.slice(0, 10), []);
});
