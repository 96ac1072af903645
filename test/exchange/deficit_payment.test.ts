// The insurance fund pays the deficits as it grows again (docs/exchange.md,
// "Liquidation", step 5): after every block's liquidations, in ascending
// account index, each up to what it lacks, event insuranceCover.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Harness,
  USDC,
  key,
  limit,
  replacer,
  sellOutBelowZero,
  unmonitoredGenesis,
} from './helpers.ts';
import type { Key } from './helpers.ts';
import { Exchange } from '../../src/exchange/index.ts';
import type { BlockResult } from '../../src/exchange/index.ts';
import type { ExchangeEvent } from '../../src/exchange/results.ts';
import type { SignedTx } from '../../src/exchange/tx/types.ts';
import { decodeSnapshot, encodeSnapshot } from '../../src/exchange/snapshot.ts';
import { Prng } from '../../src/lib/prng.ts';

const BTC = 'BTC-PERPETUAL';
const ONE_BTC = 10_000;

/** No price monitoring (nothing bounds a trade's price but the traders' limits), no insurance fund. */
function noFund(): Harness {
  return new Harness(unmonitoredGenesis({ insuranceFundQuote: 0n }));
}

function ok(h: Harness, from: Key, action: Parameters<Harness['tx']>[1]): void {
  const r = h.one(from, action);
  assert.ok(r.ok && r.actions[0]!.ok, JSON.stringify(r, replacer));
}

function covers(r: BlockResult): ExchangeEvent[] {
  return r.events.filter((e) => e.type === 'insuranceCover');
}

function withdrawal(h: Harness, from: Key): SignedTx {
  return h.tx(from, { kind: 'withdraw', amountQuote: USDC, destination: 'x' });
}

function codeOf(r: BlockResult, i: number): string {
  const x = r.results[i]!;
  return !x.ok ? 'rejected' : x.actions[0]!.ok ? 'ok' : x.actions[0]!.code;
}

/** sellOutBelowZero with an empty fund: a deficit of all that `a` lacks. */
function tradeIntoDeficit(h: Harness, a: Key, b: Key, c: Key, priceTicks: number): void {
  const r = sellOutBelowZero(h, a, b, c, priceTicks);
  assert.ok(h.ex.state.deficits.has(h.account(a)!), 'a deficit');
  assert.equal(covers(r).length, 0, 'no fund to cover it');
}

/**
 * `p` goes long `lots` from `b` at the mark with `cashQuote`, `c` bids them
 * at `toTicks`, and the mark falls there: `p` is liquidated into the bid at
 * the mark and pays 1% of the notional to the fund. Returns that block.
 */
function liquidationFee(
  h: Harness,
  p: Key,
  b: Key,
  c: Key,
  lots: number,
  toTicks: number,
): BlockResult {
  const at = h.ex.state.marketByName.get(BTC)!.markTicks;
  ok(h, b, limit(BTC, 'sell', at, lots));
  ok(h, p, limit(BTC, 'buy', at, lots));
  ok(h, c, limit(BTC, 'buy', toTicks, lots));
  h.oracle = { ...h.oracle, BTC: (BigInt(toTicks) * USDC) / 10n };
  const r = h.block([]);
  assert.equal(h.account(p)!.positionCount, 0, 'p liquidated');
  return r;
}

test('a deficit left with an empty fund is paid off once liquidation fees refill the fund, and withdrawals resume', () => {
  const h = noFund();
  const [a, b, c, p] = ['a', 'b', 'c', 'p'].map((n) => key(`pay-${n}`)) as [Key, Key, Key, Key];
  h.fund(a, 2_600n * USDC);
  h.fund(b, 1_000_000n * USDC);
  h.fund(c, 1_000_000n * USDC);
  h.fund(p, 3_000n * USDC);
  tradeIntoDeficit(h, a, b, c, 500_000);
  const deficit = h.account(a)!;
  // 2,600 − 25 (taker fee) − 3,000 + 50 − 23.525 (taker fee at $47,050).
  assert.equal(deficit.cashQuote, -398_525_000n);
  assert.equal(h.ex.state.insuranceQuote, 0n);
  // Blocks with a deficit and nothing in the fund pay nothing.
  const idle = h.block([withdrawal(h, c)]);
  assert.equal(codeOf(idle, 0), 'WithdrawalsPaused');
  assert.equal(covers(idle).length, 0);
  // p long 1 BTC at $47,000 ($23.50 fee): at $44,500 its equity is $476.50,
  // below maintenance ($1,335); closed at the mark, its fee is 1% of
  // $44,500 = $445, past what a lacks.
  const r = liquidationFee(h, p, b, c, ONE_BTC, 445_000);
  const fee = r.events.find((e) => e.type === 'liquidation');
  assert.ok(fee !== undefined && fee.type === 'liquidation', 'a liquidation');
  assert.equal(fee.feeQuote, 445_000_000n);
  // After the liquidation, in the same block: the fund pays what a lacks.
  assert.deepEqual(covers(r), [
    { type: 'insuranceCover', account: deficit.index, amountQuote: 398_525_000n },
  ]);
  assert.ok(r.events.indexOf(covers(r)[0]!) > r.events.indexOf(fee), 'paid after the liquidation');
  assert.equal(deficit.cashQuote, 0n);
  assert.equal(h.ex.state.deficits.size, 0, 'a left the deficits');
  assert.equal(h.ex.state.insuranceQuote, 445_000_000n - 398_525_000n);
  const after = h.block([withdrawal(h, c)]);
  assert.equal(codeOf(after, 0), 'ok');
  assert.equal(covers(after).length, 0);
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});

test('a fund holding less than the deficit pays all it holds, and the account stays a deficit for the rest', () => {
  const h = noFund();
  const [a, b, c, p] = ['a', 'b', 'c', 'p'].map((n) => key(`part-${n}`)) as [Key, Key, Key, Key];
  h.fund(a, 2_600n * USDC);
  h.fund(b, 1_000_000n * USDC);
  h.fund(c, 1_000_000n * USDC);
  h.fund(p, 700n * USDC);
  tradeIntoDeficit(h, a, b, c, 500_000);
  const deficit = h.account(a)!;
  // p long 0.2 BTC at $47,000 ($4.70 fee): at $44,800 it is closed at the
  // mark, paying 1% of $8,960 = $89.60.
  const r = liquidationFee(h, p, b, c, 2_000, 448_000);
  assert.deepEqual(covers(r), [
    { type: 'insuranceCover', account: deficit.index, amountQuote: 89_600_000n },
  ]);
  assert.equal(h.ex.state.insuranceQuote, 0n);
  assert.equal(deficit.cashQuote, -398_525_000n + 89_600_000n);
  assert.ok(h.ex.state.deficits.has(deficit), 'still a deficit');
  const w = h.block([withdrawal(h, c)]);
  assert.equal(codeOf(w, 0), 'WithdrawalsPaused');
  // A deposit covers the rest, as before: the account leaves the deficits.
  h.fund(a, 308_925_000n);
  assert.equal(deficit.cashQuote, 0n);
  assert.equal(h.ex.state.deficits.size, 0);
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});

/** Runs the block on both nodes; the same results, events and app hash. */
function both(h: Harness, copy: Exchange, txs: SignedTx[]): BlockResult {
  const block = h.nextBlock(txs);
  const ours = h.ex.finalizeBlock(block);
  const theirs = copy.finalizeBlock(block);
  assert.equal(JSON.stringify(theirs, replacer), JSON.stringify(ours, replacer));
  return ours;
}

test('two deficits are paid in ascending account index, on the running node (which found the later account first) and on one restored from a snapshot alike', () => {
  const h = noFund();
  const [a1, a2, b, c, p, q] = ['a1', 'a2', 'b', 'c', 'p', 'q'].map((n) => key(`two-${n}`)) as [
    Key,
    Key,
    Key,
    Key,
    Key,
    Key,
  ];
  h.fund(a1, 2_600n * USDC);
  h.fund(a2, 2_600n * USDC);
  h.fund(b, 1_000_000n * USDC);
  h.fund(c, 1_000_000n * USDC);
  h.fund(p, 700n * USDC);
  h.fund(q, 3_000n * USDC);
  const first = h.account(a1)!;
  const second = h.account(a2)!;
  assert.ok(first.index < second.index);
  // a2 becomes a deficit first (−$398.525), then a1, at $47,000 → $44,000
  // (2,600 − 23.50 − 3,000 + 50 − 22.025 = −$395.525): the running node's
  // set holds them in that order, a restored node's in ascending index.
  tradeIntoDeficit(h, a2, b, c, 500_000);
  tradeIntoDeficit(h, a1, b, c, 470_000);
  assert.equal(second.cashQuote, -398_525_000n);
  assert.equal(first.cashQuote, -395_525_000n);
  assert.deepEqual(
    [...h.ex.state.deficits].map((a) => a.index),
    [second.index, first.index],
  );
  const copy = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
  assert.ok(copy instanceof Exchange);
  const c1 = copy.state.accounts[first.index]!;
  const c2 = copy.state.accounts[second.index]!;

  // p long 0.2 BTC at $44,000 ($4.40 fee): at $41,600 it is closed at the
  // mark, paying 1% of $8,320 = $83.20, all to a1, the lower index.
  const mark = () => h.ex.state.marketByName.get(BTC)!.markTicks;
  assert.equal(mark(), 440_000);
  both(h, copy, [h.tx(b, limit(BTC, 'sell', 440_000, 2_000))]);
  both(h, copy, [h.tx(p, limit(BTC, 'buy', 440_000, 2_000))]);
  both(h, copy, [h.tx(c, limit(BTC, 'buy', 416_000, 2_000))]);
  h.oracle = { ...h.oracle, BTC: 41_600n * USDC };
  const r1 = both(h, copy, [withdrawal(h, c)]);
  assert.equal(h.account(p)!.positionCount, 0, 'p liquidated');
  assert.equal(codeOf(r1, 0), 'WithdrawalsPaused');
  assert.deepEqual(covers(r1), [
    { type: 'insuranceCover', account: first.index, amountQuote: 83_200_000n },
  ]);
  assert.equal(first.cashQuote, -395_525_000n + 83_200_000n);
  assert.equal(second.cashQuote, -398_525_000n);

  // q long 1 BTC at $41,600 ($20.80 fee): at $39,500 it is closed at the
  // mark, paying 1% of $39,500 = $395: a1's last $312.325, then $82.675 to a2.
  both(h, copy, [h.tx(b, limit(BTC, 'sell', 416_000, ONE_BTC))]);
  both(h, copy, [h.tx(q, limit(BTC, 'buy', 416_000, ONE_BTC))]);
  both(h, copy, [h.tx(c, limit(BTC, 'buy', 395_000, ONE_BTC))]);
  h.oracle = { ...h.oracle, BTC: 39_500n * USDC };
  const r2 = both(h, copy, []);
  assert.equal(h.account(q)!.positionCount, 0, 'q liquidated');
  assert.deepEqual(covers(r2), [
    { type: 'insuranceCover', account: first.index, amountQuote: 312_325_000n },
    { type: 'insuranceCover', account: second.index, amountQuote: 82_675_000n },
  ]);
  assert.equal(h.ex.state.insuranceQuote, 0n);
  assert.equal(first.cashQuote, 0n);
  assert.equal(second.cashQuote, -398_525_000n + 82_675_000n);
  assert.deepEqual(
    [...h.ex.state.deficits].map((a) => a.index),
    [second.index],
  );
  // The restored node agrees on the state, not only the hash.
  assert.equal(c1.cashQuote, first.cashQuote);
  assert.equal(c2.cashQuote, second.cashQuote);
  assert.deepEqual(
    [...copy.state.deficits].map((a) => a.index),
    [second.index],
  );
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
  assert.deepEqual(copy.digestBytes(), copy.digestFromScratch());
});

test("a counterparty below zero whose last position another account's liquidation closes (deleveraged at the mark's side) before its own turn draws on the fund and becomes a deficit, and withdrawals weigh it", () => {
  const h = new Harness(unmonitoredGenesis({ insuranceFundQuote: 30n * USDC }));
  const [o, a, y, w] = ['o', 'a', 'y', 'w'].map((n) => key(`hidden-${n}`)) as [Key, Key, Key, Key];
  h.fund(o, 9_800n * USDC);
  h.fund(a, 5_200n * USDC);
  h.fund(y, 1_000_000n * USDC);
  h.fund(w, 1_000n * USDC);
  // o short 1 BTC to a at $50,000 ($10 maker fee); a also long 10 ETH from y at $3,000.
  ok(h, o, limit(BTC, 'sell', 500_000, ONE_BTC));
  ok(h, a, limit(BTC, 'buy', 500_000, ONE_BTC));
  ok(h, y, limit('ETH-PERPETUAL', 'sell', 300_000, 10_000));
  ok(h, a, limit('ETH-PERPETUAL', 'buy', 300_000, 10_000));
  const short = h.account(o)!;
  // Cash is the ledger: the sale's $50,000 in, the fee out.
  assert.equal(short.cashQuote, 59_790n * USDC);
  // BTC to $60,000, ETH to $1,500: o is at −$210 (shortfall below maintenance
  // $2,010); a at $160 (5,160 + 10,000 − 15,000), shortfall $2,090, goes
  // first. Its BTC long, facing an empty book, is deleveraged against o at
  // its bankruptcy price, $59,840: o buys back at $160 under the mark and is
  // left with no position and −$50 of cash, before its own turn comes.
  h.oracle = { BTC: 60_000n * USDC, ETH: 1_500n * USDC };
  const r = h.block([]);
  assert.ok(
    r.events.some((e) => e.type === 'deleverage' && e.counterparty === short.index),
    'o was deleveraged',
  );
  assert.equal(short.positionCount, 0);
  // Like any account a liquidation leaves without positions below zero: the
  // fund pays what it holds, and the rest is a deficit.
  assert.deepEqual(
    covers(r).filter((e) => e.type === 'insuranceCover' && e.account === short.index),
    [{ type: 'insuranceCover', account: short.index, amountQuote: 30n * USDC }],
  );
  assert.equal(short.cashQuote, -20n * USDC);
  assert.ok(h.ex.state.deficits.has(short), 'o is a deficit');
  assert.equal(h.ex.state.insuranceQuote, 0n);
  // Its $20 lack is more than the fund holds: collateral may not leave.
  assert.equal(codeOf(h.block([withdrawal(h, w)]), 0), 'WithdrawalsPaused');
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});

/** A harness whose every block also runs on the nodes in `mirrors`, which must give the same result. */
class Mirrored extends Harness {
  readonly mirrors: Exchange[] = [];

  override block(txs: SignedTx[], dtMs = 1_000): BlockResult {
    const block = this.nextBlock(txs, dtMs);
    const ours = this.ex.finalizeBlock(block);
    const expected = JSON.stringify(ours, replacer);
    for (const node of this.mirrors) {
      assert.equal(
        JSON.stringify(node.finalizeBlock(block), replacer),
        expected,
        `${block.height}`,
      );
    }
    return ours;
  }
}

/**
 * Seeded episodes over one chain: traders sell out below zero (a deficit
 * each, the fund empty), liquidations pay fees into the fund (which pays the
 * deficits, in part or in full), deposits go into deficits (part of what one
 * lacks, or more), and withdrawals wait or go through; now and then a node
 * is restored from a snapshot and runs every later block. Every node checks
 * the invariants after every block (collateral conserved, the deficits
 * exactly the accounts without positions below zero, none left while the
 * fund holds money) and gives the same results, events and app hash.
 * Returns what the payments did, to show the cases happened.
 */
function deficitEpisodes(seed: number) {
  const prng = new Prng(seed);
  const h = new Mirrored(unmonitoredGenesis({ insuranceFundQuote: 0n }));
  const [b, c] = [key(`ep-${seed}-b`), key(`ep-${seed}-c`)];
  h.fund(b, 1_000_000n * USDC);
  h.fund(c, 1_000_000n * USDC);
  const seen = { partial: 0, full: 0, severalPaid: 0, depositedInto: 0, restored: 0 };
  const mark = () => h.ex.state.marketByName.get(BTC)!.markTicks;
  const keys = new Map<number, Key>();
  for (let e = 0; e < 24; e++) {
    const roll = prng.int(10);
    const owed = [...h.ex.state.deficits].sort((x, y) => x.index - y.index);
    if (roll < 4 || owed.length === 0) {
      // A new trader below zero, by $150-450, at the current mark.
      const a = key(`ep-${seed}-a${e}`);
      h.fund(a, BigInt(2_530 + prng.int(300)) * USDC);
      // With money in the fund, it covers what it can of it first.
      sellOutBelowZero(h, a, b, c, mark());
      keys.set(h.account(a)!.index, a);
      // The price back between $46,000 and $50,000: a's collateral is the margin there.
      h.oracle = { ...h.oracle, BTC: BigInt(46_000 + prng.int(4_001)) * USDC };
      h.block([]);
    } else if (roll < 8) {
      // A trader at 6% of the notional, liquidated 4% lower: a fee of 1% of the notional.
      const p = key(`ep-${seed}-p${e}`);
      const lots = 1_000 + prng.int(2 * ONE_BTC);
      const at = mark();
      h.fund(p, (BigInt(at) * BigInt(lots) * 10n * 6n) / 100n + USDC);
      const before = new Map(owed.map((a) => [a.index, a.cashQuote]));
      const r = liquidationFee(h, p, b, c, lots, Math.floor((at * 96) / 100));
      const paid = covers(r).filter((x) => x.type === 'insuranceCover' && before.has(x.account));
      if (paid.length > 1) seen.severalPaid++;
      for (const x of paid) {
        if (x.type !== 'insuranceCover') continue;
        if (h.ex.state.accounts[x.account]!.cashQuote === 0n) seen.full++;
        else seen.partial++;
      }
      // Paid in ascending index, each up to what it lacked, the lowest first:
      // only the last one paid may be left short.
      const order = paid.map((x) => (x.type === 'insuranceCover' ? x.account : -1));
      assert.deepEqual(
        order,
        [...order].sort((x, y) => x - y),
        `episode ${e}: out of order`,
      );
      for (const x of paid.slice(0, -1)) {
        if (x.type === 'insuranceCover') assert.equal(-before.get(x.account)!, x.amountQuote);
      }
      h.oracle = { ...h.oracle, BTC: (BigInt(at) * USDC) / 10n };
      h.block([]);
    } else if (roll === 8) {
      // A deposit into a deficit, and a withdrawal in the same block.
      const a = owed[prng.int(owed.length)]!;
      const lacks = -a.cashQuote;
      const amountQuote = prng.chance(1, 2) ? 1n + BigInt(prng.int(Number(lacks))) : lacks + USDC;
      h.block([
        withdrawal(h, c),
        h.tx(keys.get(a.index)!, { kind: 'faucet', amountQuote }),
        withdrawal(h, c),
      ]);
      seen.depositedInto++;
      assert.equal(h.ex.state.deficits.has(a), amountQuote < lacks);
    } else {
      h.mirrors.push(decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true }));
      seen.restored++;
    }
  }
  for (const node of h.mirrors) assert.deepEqual(node.appHash, h.ex.appHash);
  return seen;
}

test('seeded episodes of deficits, payments and deposits into them: nodes restored in the middle of them give the same results, events and app hash, with collateral conserved throughout', () => {
  const total = { partial: 0, full: 0, severalPaid: 0, depositedInto: 0, restored: 0 };
  for (const seed of [1, 2, 3, 4]) {
    const seen = deficitEpisodes(seed);
    for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += seen[k];
  }
  // The cases under test happened.
  const all = JSON.stringify(total);
  assert.ok(total.partial > 0, `a payment short of the deficit: ${all}`);
  assert.ok(total.full > 0, `a deficit paid off: ${all}`);
  assert.ok(total.severalPaid > 0, `several deficits paid in one block: ${all}`);
  assert.ok(total.depositedInto > 0, `a deposit into a deficit: ${all}`);
  assert.ok(total.restored > 0, `a node restored: ${all}`);
});
