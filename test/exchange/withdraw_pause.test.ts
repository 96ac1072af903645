// The withdrawal pause at the block's own marks: a block moves its marks
// before its transactions and liquidates after them, so a counterparty's
// withdrawal in between must already see the account the move took below zero.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, USDC, genesis, key, limit } from './helpers.ts';
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
