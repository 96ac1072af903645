// The withdrawal pause at the block's own marks: a block moves its marks
// before its transactions and liquidates after them, so a counterparty's
// withdrawal in between must already see the account the move took below zero.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Harness,
  USDC,
  genesis,
  key,
  limit,
  replacer,
  sellOutBelowZero,
  unmonitoredGenesis,
} from './helpers.ts';
import { Prng } from '../../src/lib/prng.ts';
import type { Key } from './helpers.ts';
import { Exchange } from '../../src/exchange/index.ts';
import type { Block } from '../../src/exchange/index.ts';
import { decodeSnapshot, encodeSnapshot } from '../../src/exchange/snapshot.ts';
import { equityQuote } from '../../src/exchange/margin.ts';
import type { ActionResult } from '../../src/exchange/results.ts';

const BTC = 'BTC-PERPETUAL';
const ONE_BTC = 10_000;

/** a long 1 BTC at $50,000 with $2,600 of collateral, b short against it; no insurance fund. */
function longAgainstShort() {
  const h = new Harness(genesis({ insuranceFundQuote: 0n }));
  const a = key('a');
  const b = key('b');
  h.fund(a, 2_600n * USDC);
  h.fund(b, 500_000n * USDC);
  assert.equal(h.one(b, limit(BTC, 'sell', 500_000, ONE_BTC)).actions[0]!.ok, true);
  assert.equal(h.one(a, limit(BTC, 'buy', 500_000, ONE_BTC)).actions[0]!.ok, true);
  return { h, a, b };
}

function codeOf(action: ActionResult | undefined): string {
  return action === undefined ? 'rejected' : action.ok ? 'ok' : action.code;
}

function withdrawal(h: Harness, from: Key, amountQuote: bigint) {
  return h.tx(from, { kind: 'withdraw', amountQuote, destination: 'x' });
}

test('a counterparty cannot withdraw its profit in the block whose marks take the loser below zero', () => {
  const { h, a, b } = longAgainstShort();
  assert.equal(h.ex.state.underwater.size, 0);
  // At $47,000 a's equity is 2,575 − 3,000 = −$425; b's short gained $3,000.
  h.oracle = { ...h.oracle, BTC: 47_000n * USDC };
  const r = h.block([withdrawal(h, b, 10_000n * USDC), withdrawal(h, b, 1_000n * USDC)]);
  for (const result of r.results) {
    assert.ok(result.ok && !result.actions[0]!.ok, JSON.stringify(result.actions[0]));
    assert.equal(result.actions[0]!.code, 'WithdrawalsPaused');
  }
  assert.equal(h.ex.state.withdrawnQuote, 0n);
  // The block's scan closes a against b at the bankruptcy price: b carries the loss.
  const adl = r.events.filter((e) => e.type === 'deleverage');
  assert.equal(adl.length, 1);
  assert.equal(h.account(a)!.positionCount, 0);
  assert.equal(equityQuote(h.ex.state, h.account(a)!), 0n);
  assert.equal(h.ex.state.deficits.size + h.ex.state.underwater.size, 0);
  // Resolved: the next block's withdrawal goes through.
  const w = h.one(b, { kind: 'withdraw', amountQuote: 10_000n * USDC, destination: 'x' });
  assert.ok(w.ok && w.actions[0]!.ok, JSON.stringify(w.actions[0]));
  assert.equal(h.ex.state.withdrawnQuote, 10_000n * USDC);
});

test('a withdrawal in a block whose marks moved without taking anyone below zero goes through', () => {
  const { h, a, b } = longAgainstShort();
  // At $49,000 a's equity is $1,575: below maintenance perhaps, not below zero.
  h.oracle = { ...h.oracle, BTC: 49_000n * USDC };
  const r = h.block([withdrawal(h, b, 10_000n * USDC)]);
  assert.ok(r.results[0]!.ok && r.results[0]!.actions[0]!.ok, JSON.stringify(r.results[0]));
  assert.equal(h.ex.state.withdrawnQuote, 10_000n * USDC);
  assert.ok(equityQuote(h.ex.state, h.account(a)!) >= 0n);
});

test('a node restored before the block gives the same answer and the same app hash', () => {
  const { h, b } = longAgainstShort();
  const copy = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
  assert.ok(copy instanceof Exchange);
  h.oracle = { ...h.oracle, BTC: 47_000n * USDC };
  const block: Block = {
    height: h.ex.state.height + 1,
    timeMs: h.ex.state.timeMs + 1_000,
    proposer: h.ex.state.validators[0]!.publicKey,
    txs: [withdrawal(h, b, 10_000n * USDC)],
    oracle: h.oracle,
  };
  const ours = h.ex.finalizeBlock(block);
  const theirs = copy.finalizeBlock(block);
  assert.equal(codeOf(ours.results[0]!.actions[0]), 'WithdrawalsPaused');
  assert.equal(codeOf(theirs.results[0]!.actions[0]), 'WithdrawalsPaused');
  assert.deepEqual(theirs.appHash, ours.appHash);
});

test('a deposit that brings the account back above zero in the same block lifts the pause for later withdrawals', () => {
  const { h, a, b } = longAgainstShort();
  h.oracle = { ...h.oracle, BTC: 47_000n * USDC };
  const r = h.block([
    withdrawal(h, b, 10_000n * USDC),
    h.tx(a, { kind: 'faucet', amountQuote: 1_000n * USDC }),
    withdrawal(h, b, 10_000n * USDC),
  ]);
  assert.equal(codeOf(r.results[0]!.actions[0]), 'WithdrawalsPaused');
  assert.ok(r.results[1]!.ok && r.results[1]!.actions[0]!.ok);
  // a's equity is −$425 + $1,000 = $575: nobody is below zero any more.
  assert.ok(r.results[2]!.ok && r.results[2]!.actions[0]!.ok, JSON.stringify(r.results[2]));
  assert.equal(h.ex.state.withdrawnQuote, 10_000n * USDC);
});

/**
 * Seeded blocks of leveraged trades, withdrawals and deposits over a random
 * walk of BTC, run on the node that ran every block and on nodes restored at
 * different heights: the same results (codes and messages) and app hashes.
 * Returns, per seed, the blocks with a withdrawal refused, those where no
 * account was unresolved at the block's start (a pause at the block's own
 * marks), and those with one that went through while one was.
 */
function pausesOnRestoredNodes(insuranceFundQuote: bigint, seeds: readonly number[]) {
  const traders = ['t0', 't1', 't2', 't3', 't4', 't5'].map((n) => key(`pause-prop-${n}`));
  const maker = key('pause-prop-maker');
  const counts: { paused: number; byMarks: number; despite: number }[] = [];
  for (const seed of seeds) {
    const prng = new Prng(seed);
    const h = new Harness(genesis({ insuranceFundQuote }));
    h.fund(maker, 1_000_000n * USDC);
    for (const t of traders) h.fund(t, BigInt(2_600 + prng.int(3_000)) * USDC);
    const nodes: Exchange[] = [];
    let btc = 50_000;
    let paused = 0;
    let byMarks = 0;
    let despite = 0;
    for (let b = 0; b < 60; b++) {
      // A node restored just before this block (no slack memos, no scan
      // groups), and some restored earlier that ran every block since.
      const fresh = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
      assert.ok(fresh instanceof Exchange);
      if (b % 15 === 5) nodes.push(fresh);
      // A random walk with jumps: some moves take a leveraged trader below zero.
      const jump = prng.chance(1, 6) ? 4 + prng.int(6) : prng.int(3);
      btc = Math.max(20_000, btc + ((prng.chance(1, 2) ? 1 : -1) * btc * jump) / 100);
      btc = Math.round(btc);
      h.oracle = { ...h.oracle, BTC: BigInt(btc) * USDC };
      const ticks = btc * 10;
      const txs = [
        h.tx(maker, limit(BTC, 'sell', ticks + 50, 4 * ONE_BTC, { timeInForce: 'postOnly' })),
        h.tx(maker, limit(BTC, 'buy', ticks - 50, 4 * ONE_BTC, { timeInForce: 'postOnly' })),
      ];
      for (let i = 0; i < 3; i++) {
        // Each trader keeps one side (even longs, odd shorts), as leveraged as its margin lets it.
        const n = prng.int(traders.length);
        const buy = n % 2 === 0;
        const px = buy ? ticks + 50 : ticks - 50;
        const size = ONE_BTC / 2 + prng.int(ONE_BTC / 2);
        txs.push(
          h.tx(traders[n]!, limit(BTC, buy ? 'buy' : 'sell', px, size, { timeInForce: 'IOC' })),
        );
      }
      for (let i = 0; i < 2; i++) {
        const who = prng.chance(1, 3) ? maker : traders[prng.int(traders.length)]!;
        txs.splice(
          prng.int(txs.length + 1),
          0,
          withdrawal(h, who, BigInt(1 + prng.int(500)) * USDC),
        );
      }
      if (prng.chance(1, 8)) {
        const t = traders[prng.int(traders.length)]!;
        txs.splice(
          prng.int(txs.length + 1),
          0,
          h.tx(t, { kind: 'faucet', amountQuote: 2_000n * USDC }),
        );
      }
      const unresolved = h.ex.state.underwater.size + h.ex.state.deficits.size;
      const block = h.nextBlock(txs);
      const ours = h.ex.finalizeBlock(block);
      const seen = JSON.stringify(ours.results, replacer);
      for (const node of nodes.includes(fresh) ? nodes : [...nodes, fresh]) {
        const theirs = node.finalizeBlock(block);
        assert.equal(JSON.stringify(theirs.results, replacer), seen, `seed ${seed} block ${b}`);
        assert.deepEqual(theirs.appHash, ours.appHash);
      }
      const codes = ours.results.map((r) => codeOf(r.ok ? r.actions[0] : undefined));
      if (codes.includes('WithdrawalsPaused')) paused++;
      if (unresolved === 0 && codes.includes('WithdrawalsPaused')) byMarks++;
      const withdrew = ours.results.some(
        (r, i) => r.ok && r.actions[0]!.ok && txs[i]!.action.kind === 'withdraw',
      );
      if (unresolved > 0 && withdrew) despite++;
    }
    assert.equal(nodes.length, 4);
    counts.push({ paused, byMarks, despite });
  }
  return counts;
}

test('nodes restored at different heights refuse the same withdrawals, with the same messages, as the node that ran every block', () => {
  for (const [i, { byMarks }] of pausesOnRestoredNodes(0n, [2, 3, 4, 6]).entries()) {
    // The case under test happened: a pause at the block's own marks.
    assert.ok(byMarks > 0, `seed ${i}: no pause at a block's marks`);
  }
});

test('with an insurance fund that covers some of the losses and not others, restored nodes weigh them against it as the node that ran every block', () => {
  const counts = pausesOnRestoredNodes(1_000n * USDC, [2, 3, 4, 6]);
  // Both cases happened: a pause (the losses past the fund), and a withdrawal
  // that went through while an account was unresolved (the fund held its loss).
  assert.ok(
    counts.some((c) => c.paused > 0),
    'some withdrawal was paused',
  );
  assert.ok(
    counts.some((c) => c.despite > 0),
    'some withdrawal went through while an account was unresolved',
  );
});

test('with two accounts below zero, withdrawals stay paused until deposits lift both', () => {
  const h = new Harness(genesis({ insuranceFundQuote: 0n }));
  const [a1, a2, b] = [key('a1'), key('a2'), key('b')];
  h.fund(a1, 2_600n * USDC);
  h.fund(a2, 2_600n * USDC);
  h.fund(b, 500_000n * USDC);
  assert.equal(h.one(b, limit(BTC, 'sell', 500_000, 2 * ONE_BTC)).actions[0]!.ok, true);
  assert.equal(h.one(a1, limit(BTC, 'buy', 500_000, ONE_BTC)).actions[0]!.ok, true);
  assert.equal(h.one(a2, limit(BTC, 'buy', 500_000, ONE_BTC)).actions[0]!.ok, true);
  // At $47,000 each long is at −$425.
  h.oracle = { ...h.oracle, BTC: 47_000n * USDC };
  const r = h.block([
    withdrawal(h, b, 1_000n * USDC),
    h.tx(a1, { kind: 'faucet', amountQuote: 1_000n * USDC }),
    withdrawal(h, b, 1_000n * USDC),
    withdrawal(h, b, 1_000n * USDC),
    h.tx(a2, { kind: 'faucet', amountQuote: 1_000n * USDC }),
    withdrawal(h, b, 1_000n * USDC),
  ]);
  assert.deepEqual(
    r.results.map((x) => (x.ok ? codeOf(x.actions[0]) : 'rejected')),
    ['WithdrawalsPaused', 'ok', 'WithdrawalsPaused', 'WithdrawalsPaused', 'ok', 'ok'],
  );
  assert.equal(h.ex.state.withdrawnQuote, 1_000n * USDC);
});

test('transfers are paused with withdrawals, except into an account that is below zero: subaccounts are margined apart, and a counterparty moving its collateral out of the one deleveraging may close beyond the mark would leave that loss uncovered', () => {
  const { h, a, b } = longAgainstShort();
  h.fund(a, 1_000n * USDC, 1);
  h.oracle = { ...h.oracle, BTC: 47_000n * USDC };
  const move = (k: Key, fromSubaccount: number, toSubaccount: number, amountQuote: bigint) =>
    h.tx(k, { kind: 'transfer', fromSubaccount, toSubaccount, amountQuote });
  // At $47,000 a's subaccount 0 is at −$425: b's short gained $3,000.
  const r = h.block([move(b, 0, 1, 10_000n * USDC), move(a, 1, 0, 425n * USDC)]);
  assert.equal(codeOf(r.results[0]!.actions[0]), 'TransfersPaused');
  assert.equal(h.account(b, 1), undefined);
  // Into the account below zero, up to its shortfall: it helps resolve it, so it goes through.
  assert.equal(codeOf(r.results[1]!.actions[0]), 'ok');
  assert.equal(h.account(a, 1)!.cashQuote, 575n * USDC);
  // Resolved by the block (a's $425 covered its loss, the rest was closed): b's transfer goes through.
  assert.equal(h.ex.state.deficits.size + h.ex.state.underwater.size, 0);
  const later = h.one(b, {
    kind: 'transfer',
    fromSubaccount: 0,
    toSubaccount: 1,
    amountQuote: 10_000n * USDC,
  });
  assert.equal(codeOf(later.actions[0]), 'ok');
  assert.equal(h.account(b, 1)!.cashQuote, 10_000n * USDC);
});

test("into an account below zero, a paused transfer brings at most its shortfall at the block's marks: past it, collateral of a subaccount deleveraging may hit would be parked in a sibling out of its reach", () => {
  const { h, a, b } = longAgainstShort();
  // b's subaccount 1 is long like a, against d: at $47,000 both longs are at −$425,
  // and b's subaccount 0 is the short that deleveraging a closes against.
  const d = key('d');
  h.fund(b, 2_600n * USDC, 1);
  h.fund(d, 500_000n * USDC);
  assert.equal(h.one(d, limit(BTC, 'sell', 500_000, ONE_BTC)).actions[0]!.ok, true);
  const buy = h.one(b, limit(BTC, 'buy', 500_000, ONE_BTC), { subaccount: 1 });
  assert.equal(buy.actions[0]!.ok, true);
  h.fund(a, 1_000n * USDC, 1);
  h.oracle = { ...h.oracle, BTC: 47_000n * USDC };
  const move = (k: Key, fromSubaccount: number, toSubaccount: number, amountQuote: bigint) =>
    h.tx(k, { kind: 'transfer', fromSubaccount, toSubaccount, amountQuote });
  const faucet = (k: Key, amountQuote: bigint, subaccount: number) =>
    h.tx(k, { kind: 'faucet', amountQuote }, { subaccount });
  const r = h.block([
    // Past b's subaccount 1's shortfall: the rest would leave the short's reach.
    move(b, 0, 1, 10_000n * USDC),
    // Within its shortfall: it goes through (b's subaccount 1 stays below zero).
    move(b, 0, 1, 400n * USDC),
    // a's subaccount 0 lifted above zero by a deposit of the block: no longer
    // below zero, though the block's memo found it so.
    faucet(a, 1_000n * USDC, 0),
    move(a, 1, 0, 100n * USDC),
  ]);
  const codes = r.results.map((x) => codeOf(x.actions[0]));
  assert.deepEqual(codes, ['TransfersPaused', 'ok', 'ok', 'TransfersPaused']);
  assert.equal(h.account(a, 1)!.cashQuote, 1_000n * USDC);
});

test("a transfer into an account the block's memo found below zero that a deposit then lifted gets the same answer on a restored node (the memo's order differs there)", () => {
  const h = new Harness(genesis({ insuranceFundQuote: 0n }));
  const [a, b, c] = [key('a'), key('b'), key('c')];
  h.fund(a, 2_600n * USDC);
  h.fund(a, 1_000n * USDC, 1);
  h.fund(c, 2_600n * USDC);
  h.fund(b, 500_000n * USDC);
  assert.equal(h.one(b, limit(BTC, 'sell', 500_000, 2 * ONE_BTC)).actions[0]!.ok, true);
  // c (the later account) takes its long a block before a: the running node's
  // scan groups list c before a, the restored node's holders a before c.
  assert.equal(h.one(c, limit(BTC, 'buy', 500_000, ONE_BTC)).actions[0]!.ok, true);
  assert.equal(h.one(a, limit(BTC, 'buy', 500_000, ONE_BTC)).actions[0]!.ok, true);
  h.block([]);
  const copy = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
  assert.ok(copy instanceof Exchange);
  // At $47,000 a and c are both at −$425.
  h.oracle = { ...h.oracle, BTC: 47_000n * USDC };
  const block: Block = {
    height: h.ex.state.height + 1,
    timeMs: h.ex.state.timeMs + 1_000,
    proposer: h.ex.state.validators[0]!.publicKey,
    txs: [
      withdrawal(h, b, 10_000n * USDC),
      h.tx(a, { kind: 'faucet', amountQuote: 1_000n * USDC }),
      h.tx(a, { kind: 'transfer', fromSubaccount: 1, toSubaccount: 0, amountQuote: 100n * USDC }),
    ],
    oracle: h.oracle,
  };
  const ours = h.ex.finalizeBlock(block);
  const theirs = copy.finalizeBlock(block);
  const codes = (r: typeof ours) => r.results.map((x) => codeOf(x.actions[0]));
  // c is still below zero; a, at $575, is no account a transfer may resolve.
  // (The memo alone answered by its order: the restored node let the transfer through.)
  assert.deepEqual(codes(ours), ['WithdrawalsPaused', 'ok', 'TransfersPaused']);
  assert.deepEqual(codes(theirs), codes(ours));
  assert.deepEqual(theirs.appHash, ours.appHash);
});

test('a deficit pauses withdrawals and transfers while it is larger than the insurance fund, which pays it off as liquidation fees grow it: then collateral may leave again', () => {
  const h = new Harness(unmonitoredGenesis({ insuranceFundQuote: 100n * USDC }));
  const [a, b, c, p, q] = ['a', 'b', 'c', 'p', 'q'].map((n) => key(`deficit-${n}`)) as [
    Key,
    Key,
    Key,
    Key,
    Key,
  ];
  h.fund(a, 2_600n * USDC);
  h.fund(b, 500_000n * USDC);
  h.fund(c, 500_000n * USDC);
  h.fund(p, 700n * USDC);
  h.fund(q, 2_000n * USDC);
  // At $47,000 a sells out of its −$425 into c's bid ($50 above the mark, less
  // its $23.525 fee): −$398.525 of cash, the fund's $100 covers part of it.
  sellOutBelowZero(h, a, b, c, 500_000);
  const deficit = h.account(a)!;
  assert.ok(h.ex.state.deficits.has(deficit), 'a is a deficit');
  assert.equal(deficit.cashQuote, -298_525_000n);
  assert.equal(h.ex.state.insuranceQuote, 0n);
  // p and q go long 0.2 and 0.5 BTC at $47,000, against b.
  assert.equal(h.one(b, limit(BTC, 'sell', 470_000, 7_000)).actions[0]!.ok, true);
  assert.equal(h.one(p, limit(BTC, 'buy', 470_000, 2_000)).actions[0]!.ok, true);
  assert.equal(h.one(q, limit(BTC, 'buy', 470_000, 5_000)).actions[0]!.ok, true);
  const outflows = () => [
    h.tx(c, { kind: 'withdraw', amountQuote: USDC, destination: 'x' }),
    h.tx(c, { kind: 'transfer', fromSubaccount: 0, toSubaccount: 1, amountQuote: USDC }),
  ];
  const codes = (r: { results: { ok: boolean; actions: ActionResult[] }[] }) =>
    r.results.map((x) => (x.ok ? codeOf(x.actions[0]) : 'rejected'));
  // At $44,800 p is below maintenance and closes into c's bid at the mark,
  // paying a liquidation fee of 1% of $8,960 to the fund: $89.60.
  assert.equal(h.one(c, limit(BTC, 'buy', 448_000, 2_000)).actions[0]!.ok, true);
  h.oracle = { ...h.oracle, BTC: 44_800n * USDC };
  const first = h.block(outflows());
  assert.deepEqual(codes(first), ['WithdrawalsPaused', 'TransfersPaused']);
  assert.equal(h.account(p)!.positionCount, 0);
  // The fee went to the deficit at the end of the block, all of it: less than a lacks.
  assert.deepEqual(
    first.events.filter((e) => e.type === 'insuranceCover'),
    [{ type: 'insuranceCover', account: deficit.index, amountQuote: 89_600_000n }],
  );
  assert.equal(h.ex.state.insuranceQuote, 0n);
  assert.equal(deficit.cashQuote, -298_525_000n + 89_600_000n);
  assert.ok(h.ex.state.deficits.has(deficit), 'a is still a deficit');
  // Still lacking more than the fund holds: paused.
  const second = h.block(outflows());
  assert.deepEqual(codes(second), ['WithdrawalsPaused', 'TransfersPaused']);
  const message = second.results[0]!.ok ? second.results[0]!.actions[0] : undefined;
  assert.ok(message !== undefined && !message.ok, 'the withdrawal is refused');
  assert.equal(
    message.message,
    "1 account(s) below zero equity lack 208.925000 in the quote asset, more than the insurance fund's 0.000000",
  );
  // At $43,500 q closes into c's bid at the mark: 1% of $21,750 more, of
  // which the fund pays the $208.925 a still lacks in the same block.
  assert.equal(h.one(c, limit(BTC, 'buy', 435_000, 5_000)).actions[0]!.ok, true);
  h.oracle = { ...h.oracle, BTC: 43_500n * USDC };
  const third = h.block([]);
  assert.equal(h.account(q)!.positionCount, 0);
  assert.deepEqual(
    third.events.filter((e) => e.type === 'insuranceCover'),
    [{ type: 'insuranceCover', account: deficit.index, amountQuote: 208_925_000n }],
  );
  assert.equal(h.ex.state.insuranceQuote, 217_500_000n - 208_925_000n);
  assert.equal(deficit.cashQuote, 0n);
  assert.equal(h.ex.state.deficits.size, 0, 'a is no longer a deficit');
  // Nothing is left for deleveraging to cover: collateral may leave again.
  assert.deepEqual(codes(h.block(outflows())), ['ok', 'ok']);
  assert.equal(h.account(c, 1)!.cashQuote, USDC);
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
});
