// Emergency halt, end to end: validators with more than 2/3 of stake halt
// every market; during the halt only cancels and withdrawals (and deposit
// attestations, agent revocations, governance) go on; resumeAll restores
// trading; a proposal with 2/3 of stake or less does nothing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, USDC, VALIDATORS, accepted, genesis, key, limit, rejected } from './helpers.ts';

const BTC = 'BTC-PERPETUAL';
const ETH = 'ETH-PERPETUAL';

function propose(h: Harness, id: number, kind: 'haltAll' | 'resumeAll', voters: number[]) {
  const [first, ...rest] = voters;
  const events = [
    ...h.block([
      h.tx(VALIDATORS[first!]!, { kind: 'govPropose', proposalId: id, proposal: { kind } }),
    ]).events,
  ];
  for (const v of rest) {
    const r = h.block([h.tx(VALIDATORS[v]!, { kind: 'govVote', proposalId: id, approve: true })]);
    accepted(r.results[0]!);
    events.push(...r.events);
  }
  return events;
}

test('emergency halt: >2/3 of stake halts everything; only cancels and withdrawals go on; resume works', () => {
  const h = new Harness();
  const a = key('a');
  const b = key('b');
  const bot = key('bot');
  h.fund(a, 100_000n * USDC);
  h.fund(b, 100_000n * USDC);
  accepted(h.one(a, { kind: 'registerAgent', agentPublicKey: bot.publicKey, expiresAtMs: 1e12 }));
  const resting = accepted(h.one(a, limit(BTC, 'buy', 499_000, 2)));
  accepted(h.one(a, limit(ETH, 'sell', 301_000, 2)));
  accepted(h.one(b, limit(BTC, 'sell', 499_000, 1)));

  // Three of four equal validators: 300 of 400 > 2/3.
  const events = propose(h, 1, 'haltAll', [0, 1, 2]);
  assert.deepEqual(
    events.filter((e) => e.type === 'marketHalted').map((e) => 'market' in e && e.market),
    [BTC, ETH],
  );
  assert.ok(h.ex.state.markets.every((m) => m.halted));

  // Trading stops: orders and amends.
  rejected(h.one(b, limit(BTC, 'buy', 400_000, 1)), 'MarketHalted');
  rejected(h.one(b, limit(ETH, 'sell', 400_000, 1, { timeInForce: 'IOC' })), 'MarketHalted');
  assert.ok(resting.ok && resting.order !== undefined);
  rejected(
    h.one(a, { kind: 'amend', instrument: BTC, orderId: resting.order.orderId, sizeLots: 1 }),
    'MarketHalted',
  );
  // Moving collateral around inside the exchange stops, and so do the faucet and new agents.
  rejected(
    h.one(a, { kind: 'transfer', amountQuote: 1n * USDC, fromSubaccount: 0, toSubaccount: 1 }),
    'ExchangeHalted',
  );
  // A newcomer's draw would be refused, so it does not open the address either.
  const newcomer = h.one(key('newcomer'), { kind: 'faucet', amountQuote: 1n * USDC });
  assert.deepEqual([newcomer.ok, !newcomer.ok && newcomer.code], [false, 'UnknownAccount']);
  rejected(h.one(a, { kind: 'faucet', amountQuote: 1n * USDC }), 'ExchangeHalted');
  rejected(
    h.one(a, { kind: 'registerAgent', agentPublicKey: key('bot2').publicKey, expiresAtMs: 1e12 }),
    'ExchangeHalted',
  );
  // Users can reduce risk and leave: cancels, cancelAll, withdrawals (from free collateral).
  accepted(h.one(a, { kind: 'cancel', instrument: BTC, orderId: resting.order.orderId }));
  accepted(h.one(a, { kind: 'cancelAll' }));
  assert.equal(h.ex.state.orders.size, 0);
  const cashBefore = h.account(a)!.cashQuote;
  accepted(h.one(a, { kind: 'withdraw', amountQuote: 1_000n * USDC, destination: 'x' }));
  assert.equal(h.account(a)!.cashQuote, cashBefore - 1_000n * USDC);
  // A leaked agent key can still be revoked.
  accepted(h.one(a, { kind: 'revokeAgent', agentPublicKey: bot.publicKey }));
  // Money already sent on the collateral chain is credited.
  const depositId = new Uint8Array(32).fill(9);
  for (const v of [0, 1, 2]) {
    accepted(
      h.one(VALIDATORS[v]!, {
        kind: 'attestDeposit',
        depositId,
        account: b.address,
        subaccount: 0,
        amountQuote: 5n * USDC,
      }),
    );
  }
  assert.equal(h.ex.state.withdrawnQuote, 1_000n * USDC);
  // Resume: trading and transfers work again.
  const resumed = propose(h, 2, 'resumeAll', [3, 0, 1]);
  assert.equal(resumed.filter((e) => e.type === 'marketResumed').length, 2);
  accepted(h.one(b, limit(BTC, 'buy', 400_000, 1)));
  accepted(
    h.one(a, { kind: 'transfer', amountQuote: 1n * USDC, fromSubaccount: 0, toSubaccount: 1 }),
  );
});

test('a proposal with 2/3 of stake or less does nothing', () => {
  // Three validators of 100: two approvals are exactly 2/3, not more.
  const h = new Harness(
    genesis({
      validators: VALIDATORS.slice(0, 3).map((v) => ({ publicKey: v.publicKey, stake: 100n })),
    }),
  );
  const a = key('a');
  h.fund(a, 100_000n * USDC);
  const events = propose(h, 1, 'haltAll', [0, 1]);
  assert.equal(events.length, 0);
  assert.ok(h.ex.state.markets.every((m) => !m.halted));
  assert.equal(h.ex.state.proposals.get(1)!.executed, false);
  accepted(h.one(a, limit(BTC, 'buy', 400_000, 1)));
  accepted(
    h.one(a, { kind: 'transfer', amountQuote: 1n * USDC, fromSubaccount: 0, toSubaccount: 1 }),
  );
  // The third approval passes 2/3: now it executes.
  const r = h.block([h.tx(VALIDATORS[2]!, { kind: 'govVote', proposalId: 1, approve: true })]);
  assert.equal(r.events.filter((e) => e.type === 'marketHalted').length, 2);
  rejected(h.one(a, limit(BTC, 'buy', 400_000, 1)), 'MarketHalted');
});

test('one halted market is no emergency halt: transfers go on', () => {
  const h = new Harness();
  const a = key('a');
  h.fund(a, 100_000n * USDC);
  for (const [i, v] of [0, 1, 2].entries()) {
    const tx =
      i === 0
        ? h.tx(VALIDATORS[v]!, {
            kind: 'govPropose',
            proposalId: 1,
            proposal: { kind: 'haltMarket', instrument: BTC },
          })
        : h.tx(VALIDATORS[v]!, { kind: 'govVote', proposalId: 1, approve: true });
    h.block([tx]);
  }
  assert.ok(h.ex.state.marketByName.get(BTC)!.halted);
  rejected(h.one(a, limit(BTC, 'buy', 400_000, 1)), 'MarketHalted');
  accepted(h.one(a, limit(ETH, 'buy', 200_000, 1)));
  accepted(
    h.one(a, { kind: 'transfer', amountQuote: 1n * USDC, fromSubaccount: 0, toSubaccount: 1 }),
  );
});

test('off a devnet, the faucet answers NotPermitted during an emergency halt too', () => {
  const h = new Harness(genesis({ devnet: false }));
  const a = key('a');
  const depositId = new Uint8Array(32).fill(9);
  const attest = {
    kind: 'attestDeposit' as const,
    depositId,
    account: a.address,
    subaccount: 0,
    amountQuote: 5n * USDC,
  };
  for (const v of [0, 1, 2]) accepted(h.one(VALIDATORS[v]!, attest));
  h.block([]);
  assert.equal(h.account(a)?.cashQuote, 5n * USDC, 'the deposit is credited');
  propose(h, 1, 'haltAll', [0, 1, 2]);
  assert.ok(
    h.ex.state.markets.every((m) => m.halted),
    'every market is halted',
  );
  // The faucet does not exist here; a halt does not make it merely paused.
  rejected(h.one(a, { kind: 'faucet', amountQuote: 1n }), 'NotPermitted');
  rejected(
    h.one(a, { kind: 'transfer', amountQuote: 1n, fromSubaccount: 0, toSubaccount: 1 }),
    'ExchangeHalted',
  );
});
