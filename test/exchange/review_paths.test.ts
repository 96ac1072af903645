// Review of the exchange's non-risk paths: each test here failed before the
// fix named in its title.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BlockResult } from '../../src/exchange/index.ts';
import type { Action } from '../../src/exchange/tx/types.ts';
import { decodeSnapshot, encodeSnapshot } from '../../src/exchange/snapshot.ts';
import {
  ACCOUNTS_MAX,
  PENDING_DEPOSITS_MAX,
  PROPOSALS_PENDING_PER_VALIDATOR_MAX,
} from '../../src/lib/limits.ts';
import type { Key } from './helpers.ts';
import { Harness, USDC, VALIDATORS, genesis, key, limit } from './helpers.ts';

const BTC = 'BTC-PERPETUAL';

function code(r: ReturnType<Harness['one']>): string | undefined {
  if (!r.ok) return r.code;
  const a = r.actions[0]!;
  return a.ok ? undefined : a.code;
}

function orderIdOf(r: ReturnType<Harness['one']>): number {
  assert.ok(r.ok);
  const a = r.actions[0]!;
  assert.ok(a.ok && 'order' in a && a.order !== undefined);
  return a.order.orderId;
}

test('open-interest cap: an amend that cannot take (a smaller size at the same price, or a post-only order) is not bounded by it', () => {
  const g = genesis();
  g.markets = g.markets.map((m, i) => (i === 0 ? { ...m, openInterestCapLots: 50 } : m));
  const h = new Harness(g);
  const maker = key('maker');
  const taker = key('taker');
  const quoter = key('quoter');
  for (const k of [maker, taker, quoter]) h.fund(k, 1_000_000n * USDC);
  // Placed below the cap: a GTC bid and a post-only bid, resting below the market.
  const gtc = orderIdOf(h.one(quoter, limit(BTC, 'buy', 490_000, 10)));
  const post = orderIdOf(
    h.one(quoter, limit(BTC, 'buy', 489_000, 10, { timeInForce: 'postOnly' })),
  );
  assert.equal(
    code(h.one(maker, limit(BTC, 'sell', 500_000, 50, { timeInForce: 'postOnly' }))),
    undefined,
  );
  assert.equal(code(h.one(taker, limit(BTC, 'buy', 500_000, 50))), undefined);
  assert.equal(h.ex.state.marketByName.get(BTC)!.longLots, 50);
  const amend = (orderId: number, change: { priceTicks?: number; sizeLots?: number }) =>
    code(h.one(quoter, { kind: 'amend', instrument: BTC, orderId, ...change }));
  // At the cap, a resting order can still be made smaller in place (it does not take)...
  assert.equal(amend(gtc, { sizeLots: 5 }), undefined);
  // ...and a post-only one moved or grown (it never takes).
  assert.equal(amend(post, { priceTicks: 488_000 }), undefined);
  assert.equal(amend(post, { sizeLots: 20 }), undefined);
  // A GTC order that re-enters may take: still bounded.
  assert.equal(amend(gtc, { sizeLots: 20 }), 'OpenInterestCapExceeded');
  assert.equal(amend(gtc, { priceTicks: 491_000 }), 'OpenInterestCapExceeded');
});

/** Four validators of stake 1,000 (any three are more than 2/3) and 252 of stake 1: 256 in all. */
function manyValidatorsGenesis() {
  const fillers = Array.from({ length: 252 }, (_, i) => key(`filler-validator-${i}`));
  return genesis({
    validators: [
      ...VALIDATORS.map((v) => ({ publicKey: v.publicKey, stake: 1_000n })),
      ...fillers.map((v) => ({ publicKey: v.publicKey, stake: 1n })),
    ],
  });
}

/** Each transaction's code, undefined where its (single) action was accepted. */
function codes(r: BlockResult): (string | undefined)[] {
  return r.results.map((tr) =>
    tr.ok ? (tr.actions[0]!.ok ? undefined : tr.actions[0]!.code) : tr.code,
  );
}

/** A node restored from h's snapshot, and a way to send both the same transactions (explicit nonces). */
function twin(h: Harness) {
  const restored = new Harness(
    undefined,
    { checkInvariants: true },
    decodeSnapshot(encodeSnapshot(h.ex)),
  );
  const base = h.timeMs + 10_000;
  const tx = (x: Harness, k: Key, a: Action, n: number) => x.tx(k, a, { nonce: base + n });
  return { restored, tx };
}

const [v0, v1, v2] = VALIDATORS as [Key, Key, Key];

test('pending deposits: one validator cannot fill them for all (at most PENDING_DEPOSITS_MAX / validators each); a restore counts them again', () => {
  const h = new Harness(manyValidatorsGenesis());
  const cap = Math.floor(PENDING_DEPOSITS_MAX / 256);
  const alice = key('alice');
  const attest = (n: number): Action => {
    const depositId = new Uint8Array(32);
    depositId[0] = n >> 8;
    depositId[1] = n & 0xff;
    return {
      kind: 'attestDeposit',
      depositId,
      account: alice.address,
      subaccount: 0,
      amountQuote: USDC,
    };
  };
  // v0 alone (less than 2/3) leaves each deposit pending: up to its share, then refused.
  const first = codes(h.block(Array.from({ length: cap + 1 }, (_, n) => h.tx(v0, attest(n)))));
  assert.deepEqual(first.slice(0, cap), new Array(cap).fill(undefined));
  assert.equal(first[cap], 'TooManyPendingDeposits');
  // Another validator still opens deposits of its own.
  assert.deepEqual(codes(h.block([h.tx(v1, attest(1_000))])), [undefined]);
  // A deposit v0 attested is credited (v0, v1 and v2): v0 has room for one more.
  assert.deepEqual(codes(h.block([h.tx(v1, attest(0)), h.tx(v2, attest(0))])), [
    undefined,
    undefined,
  ]);
  assert.equal(h.account(alice)!.cashQuote, USDC);
  const { restored, tx } = twin(h);
  for (const x of [h, restored]) {
    assert.deepEqual(codes(x.block([tx(x, v0, attest(2_000), 1), tx(x, v0, attest(2_001), 2)])), [
      undefined,
      'TooManyPendingDeposits',
    ]);
    // At its cap, v0 may still attest what completes a deposit (it does not stay pending).
    assert.deepEqual(codes(x.block([tx(x, v1, attest(1_001), 3), tx(x, v2, attest(1_001), 4)])), [
      undefined,
      undefined,
    ]);
    assert.deepEqual(codes(x.block([tx(x, v0, attest(1_001), 5)])), [undefined]);
  }
  assert.equal(h.account(alice)!.cashQuote, 2n * USDC);
  assert.deepEqual(restored.ex.appHash, h.ex.appHash);
});

test('pending proposals: at most PROPOSALS_PENDING_PER_VALIDATOR_MAX approvals of proposals not yet executed per validator; a restore counts them again', () => {
  const h = new Harness(manyValidatorsGenesis());
  const propose = (id: number): Action => ({
    kind: 'govPropose',
    proposalId: id,
    proposal: { kind: 'haltMarket', instrument: BTC },
  });
  const vote = (id: number): Action => ({ kind: 'govVote', proposalId: id, approve: true });
  const cap = PROPOSALS_PENDING_PER_VALIDATOR_MAX;
  const first = codes(h.block(Array.from({ length: cap + 1 }, (_, n) => h.tx(v0, propose(n + 1)))));
  assert.deepEqual(first.slice(0, cap), new Array(cap).fill(undefined));
  assert.equal(first[cap], 'TooManyProposals');
  // Executing one of them frees the room its approval held.
  assert.deepEqual(codes(h.block([h.tx(v1, vote(1)), h.tx(v2, vote(1))])), [undefined, undefined]);
  assert.equal(h.ex.state.marketByName.get(BTC)!.halted, true);
  const { restored, tx } = twin(h);
  for (const x of [h, restored]) {
    assert.deepEqual(codes(x.block([tx(x, v0, propose(5_000), 1), tx(x, v0, propose(5_001), 2)])), [
      undefined,
      'TooManyProposals',
    ]);
    // At its cap, v0 may still cast the vote that executes a proposal (it does not stay pending).
    assert.deepEqual(codes(x.block([tx(x, v1, propose(6_000), 3), tx(x, v2, vote(6_000), 4)])), [
      undefined,
      undefined,
    ]);
    assert.deepEqual(codes(x.block([tx(x, v0, vote(6_000), 5)])), [undefined]);
    assert.equal(x.ex.state.proposals.get(6_000)!.executed, true);
  }
  assert.deepEqual(restored.ex.appHash, h.ex.appHash);
});

test('a full account table refuses a new account (TooManyAccounts) instead of stopping every validator at an assertion', () => {
  const h = new Harness(genesis(), { checkInvariants: false });
  const alice = key('alice');
  h.fund(alice, 1_000n * USDC);
  const accounts = h.ex.state.accounts;
  const used = accounts.length;
  // Stand-in for ACCOUNTS_MAX accounts: the table's length is what the guard reads.
  accounts.length = ACCOUNTS_MAX;
  const one = (k: Key, a: Action, subaccount = 0) =>
    codes(h.block([h.tx(k, a, { subaccount })]))[0];
  // A newcomer's draw would be refused for want of room, so it does not open the address.
  assert.equal(one(key('newcomer'), { kind: 'faucet', amountQuote: USDC }), 'UnknownAccount');
  assert.equal(one(alice, { kind: 'faucet', amountQuote: USDC }, 2), 'TooManyAccounts');
  assert.equal(
    one(alice, { kind: 'transfer', fromSubaccount: 0, toSubaccount: 1, amountQuote: USDC }),
    'TooManyAccounts',
  );
  const deposit: Action = {
    kind: 'attestDeposit',
    depositId: new Uint8Array(32).fill(9),
    account: key('depositor').address,
    subaccount: 0,
    amountQuote: USDC,
  };
  const [v0, v1, v2] = VALIDATORS as [Key, Key, Key];
  assert.equal(one(v0, deposit), undefined);
  assert.equal(one(v1, deposit), undefined);
  assert.equal(one(v2, deposit), 'TooManyAccounts', 'the deposit waits');
  // Existing accounts go on.
  assert.equal(one(alice, { kind: 'faucet', amountQuote: USDC }), undefined);
  accounts.length = used;
  assert.equal(one(v2, deposit), undefined);
  assert.equal(h.account(key('depositor'))!.cashQuote, USDC);
});

test('new keys cannot grow the state: only a deposit, a faucet draw that succeeds or a validator opens an address', () => {
  const h = new Harness();
  const before = h.ex.state.principals.size;
  const fresh = (n: number) => key(`fresh-${n}`);
  const thief = fresh(99);
  const txs = [
    h.tx(fresh(1), limit(BTC, 'buy', 500_000, 1)),
    h.tx(fresh(2), { kind: 'cancelAll' }),
    h.tx(fresh(3), { kind: 'faucet', amountQuote: 0n }),
    h.tx(fresh(4), { kind: 'faucet', amountQuote: 10n ** 30n }),
    // Signed by another key: not the address's own.
    h.tx(fresh(5), { kind: 'faucet', amountQuote: USDC }, { signer: thief }),
    h.tx(fresh(6), { kind: 'faucet', amountQuote: USDC }, { expiresAtMs: 1 }),
    h.tx(fresh(7), { kind: 'batch', actions: [limit(BTC, 'buy', 500_000, 1)] }),
    h.tx(fresh(8), { kind: 'govVote', proposalId: 1, approve: true }),
  ];
  const r = h.block(txs);
  assert.deepEqual(
    codes(r),
    txs.map(() => 'UnknownAccount'),
  );
  assert.equal(h.ex.state.principals.size, before, 'no address record was made');
  // A refusal consumed no nonce: the same nonce opens the address with a draw.
  const nonce = txs[0]!.nonce;
  const open = h.tx(fresh(1), { kind: 'faucet', amountQuote: USDC }, { nonce });
  assert.deepEqual(codes(h.block([open])), [undefined]);
  // A batch whose first action is a good draw opens it too; a validator's own action does.
  const batch = h.tx(fresh(2), {
    kind: 'batch',
    actions: [{ kind: 'faucet', amountQuote: 100_000n * USDC }, limit(BTC, 'buy', 500_000, 1)],
  });
  assert.deepEqual(codes(h.block([batch])), [undefined]);
  assert.equal(h.ex.state.principals.size, before + 2);
});
