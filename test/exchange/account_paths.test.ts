// Adversarial paths of the account operations: nonces, agents, withdrawals,
// transfers, the faucet and the in-block ordering.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AGENTS_PER_ADDRESS_MAX, NONCE_FUTURE_MS_MAX, NONCE_WINDOW } from '../../src/lib/limits.ts';
import { bytesKey } from '../../src/exchange/keys.ts';
import { freeCollateralQuote } from '../../src/exchange/margin.ts';
import type { Action, BatchableAction } from '../../src/exchange/tx/types.ts';
import { Harness, USDC, key, limit } from './helpers.ts';

const BTC = 'BTC-PERPETUAL';
const PRICE = 500_000;

test('a stranger key signing for an address consumes none of its nonces', () => {
  const h = new Harness();
  const a = key('a');
  const mallory = key('mallory');
  h.fund(a, 1_000n * USDC);
  // Fill the address's window with the highest nonces a block accepts: were they
  // consumed, every nonce of the address's own clock would be stale for an hour.
  const top = h.timeMs + 1_000 + NONCE_FUTURE_MS_MAX - 1;
  const txs = [];
  for (let i = 0; i < NONCE_WINDOW; i++) {
    txs.push(h.tx(a, limit(BTC, 'buy', PRICE, 1), { signer: mallory, nonce: top - i }));
  }
  const r = h.block(txs);
  for (const x of r.results) assert.equal(x.code, 'NotPermitted');
  const own = h.one(a, limit(BTC, 'buy', PRICE, 1), { nonce: h.timeMs + 1_000 });
  assert.equal(own.ok, true);
  assert.equal(own.actions[0]!.ok, true);
});

test('an expired or revoked agent consumes none of the agents’ nonces; an active one does', () => {
  const h = new Harness();
  const a = key('a');
  const bot = key('bot');
  h.fund(a, 1_000n * USDC);
  const reg = h.one(a, {
    kind: 'registerAgent',
    agentPublicKey: bot.publicKey,
    expiresAtMs: h.timeMs + 5_000,
  });
  assert.equal(reg.actions[0]!.ok, true);
  const n = h.timeMs + 100_000;
  // An active agent's refused action (agents never withdraw) still consumes its
  // nonce, in the agents' window: the master key's own window does not hold it.
  const w = h.one(
    a,
    { kind: 'withdraw', amountQuote: 1n, destination: 'x' },
    { signer: bot, nonce: n },
  );
  assert.equal(w.code, 'NotPermitted');
  assert.equal(
    h.one(a, limit(BTC, 'buy', PRICE, 1), { signer: bot, nonce: n }).code,
    'DuplicateNonce',
  );
  assert.equal(h.one(a, limit(BTC, 'buy', PRICE, 1), { nonce: n }).ok, true);
  h.block([], 10_000);
  const m = h.timeMs + 100_000;
  assert.equal(
    h.one(a, limit(BTC, 'buy', PRICE, 1), { signer: bot, nonce: m }).code,
    'NotPermitted',
  );
  assert.deepEqual(h.ex.state.principals.get(bytesKey(a.address))!.agentNonces, [n]);
  assert.equal(h.one(a, limit(BTC, 'buy', PRICE, 1), { nonce: m }).ok, true);
});

test('replay: a nonce once accepted is refused on another subaccount; another chain is refused first', () => {
  const h = new Harness();
  const a = key('a');
  h.fund(a, 1_000n * USDC);
  h.fund(a, 1_000n * USDC, 1);
  const n = h.timeMs + 50_000;
  const w = { kind: 'withdraw', amountQuote: 10n * USDC, destination: 'x' } as const;
  const other = { ...h.tx(a, w, { nonce: n }), chainId: 'zomma-other-1' };
  assert.equal(h.block([other]).results[0]!.code, 'WrongChain');
  assert.equal(h.one(a, w, { nonce: n }).actions[0]!.ok, true);
  assert.equal(h.one(a, w, { nonce: n, subaccount: 1 }).code, 'DuplicateNonce');
  assert.equal(h.one(a, w, { nonce: n }).code, 'DuplicateNonce');
  assert.equal(h.ex.state.withdrawnQuote, 10n * USDC);
});

test('a batch of withdrawals and transfers never takes more than free collateral', () => {
  const h = new Harness();
  const a = key('a');
  h.fund(a, 1_000n * USDC);
  const r = h.one(a, {
    kind: 'batch',
    actions: [
      { kind: 'withdraw', amountQuote: 600n * USDC, destination: 'x' },
      { kind: 'transfer', fromSubaccount: 0, toSubaccount: 1, amountQuote: 600n * USDC },
      { kind: 'withdraw', amountQuote: 600n * USDC, destination: 'x' },
      { kind: 'transfer', fromSubaccount: 0, toSubaccount: 1, amountQuote: 400n * USDC },
      { kind: 'withdraw', amountQuote: 1n, destination: 'x' },
    ],
  });
  assert.deepEqual(
    r.actions.map((x) => (x.ok ? 'ok' : x.code)),
    ['ok', 'InsufficientFunds', 'InsufficientFunds', 'ok', 'InsufficientFunds'],
  );
  assert.equal(h.account(a, 0)!.cashQuote, 0n);
  assert.equal(h.account(a, 1)!.cashQuote, 400n * USDC);
  assert.equal(h.ex.state.withdrawnQuote, 600n * USDC);
});

test('a cancel ordered ahead of a withdrawal in one block frees only the margin it released', () => {
  const h = new Harness();
  const a = key('a');
  h.fund(a, 1_000n * USDC);
  // A resting bid whose initial margin holds most of the cash.
  const placed = h.one(a, limit(BTC, 'buy', PRICE - 1_000, 3_000));
  const order = placed.actions[0]!;
  assert.equal(order.ok, true);
  const lockedQuote = 1_000n * USDC - freeOf(h, a);
  assert.ok(lockedQuote > 500n * USDC);
  const all = 1_000n * USDC;
  // The withdrawal arrives first, the cancel second: the cancel runs first (class 0).
  const w = h.tx(a, { kind: 'withdraw', amountQuote: all, destination: 'x' });
  const c = h.tx(a, { kind: 'cancelAll' });
  const over = h.tx(a, { kind: 'withdraw', amountQuote: 1n, destination: 'x' });
  const r = h.block([w, c, over]);
  assert.equal(r.results[0]!.actions[0]!.ok, true);
  assert.equal(r.results[1]!.actions[0]!.ok, true);
  assert.equal(r.results[2]!.actions[0]!.ok, false);
  assert.equal(h.ex.state.orders.size, 0);
  assert.equal(h.account(a)!.cashQuote, 0n);
});

test('faucet: draws racing in one block, or in a batch, stop at the cap; a new address opens once', () => {
  const h = new Harness();
  const a = key('a');
  const cap = h.ex.state.genesis.faucetQuoteMax;
  const half = cap / 2n + 1n;
  const r = h.block([
    h.tx(a, { kind: 'faucet', amountQuote: half }),
    h.tx(a, { kind: 'faucet', amountQuote: half }),
    h.tx(a, {
      kind: 'batch',
      actions: [
        { kind: 'faucet', amountQuote: 1n },
        { kind: 'faucet', amountQuote: cap },
      ],
    }),
  ]);
  assert.deepEqual(
    r.results.flatMap((x) => x.actions.map((y) => (y.ok ? 'ok' : y.code))),
    ['ok', 'FaucetCapExceeded', 'ok', 'FaucetCapExceeded'],
  );
  assert.equal(h.account(a)!.faucetQuote, half + 1n);
  assert.equal(h.ex.state.principals.size, 1);
  assert.equal(h.ex.state.depositedQuote, half + 1n);
});

test('an active agent is refused withdraw, transfer, faucet and agent management, alone or in a batch', () => {
  const h = new Harness();
  const a = key('a');
  const bot = key('bot');
  h.fund(a, 1_000n * USDC);
  h.one(a, { kind: 'registerAgent', agentPublicKey: bot.publicKey, expiresAtMs: h.timeMs + 1e7 });
  const forbidden: BatchableAction[] = [
    { kind: 'withdraw', amountQuote: 1n, destination: 'x' },
    { kind: 'transfer', fromSubaccount: 0, toSubaccount: 1, amountQuote: 1n },
    { kind: 'faucet', amountQuote: 1n },
    { kind: 'registerAgent', agentPublicKey: key('c').publicKey, expiresAtMs: h.timeMs + 1e7 },
    { kind: 'revokeAgent', agentPublicKey: bot.publicKey },
  ];
  for (const x of forbidden) {
    assert.equal(h.one(a, x, { signer: bot }).code, 'NotPermitted');
    const batch: Action = { kind: 'batch', actions: [{ kind: 'cancelAll' }, x] };
    assert.equal(h.one(a, batch, { signer: bot }).code, 'NotPermitted');
  }
  assert.equal(h.account(a)!.cashQuote, 1_000n * USDC);
  assert.equal(h.account(a, 1), undefined);
  assert.equal(h.ex.state.principals.get(bytesKey(a.address))!.agents!.size, 1);
});

function freeOf(h: Harness, k: ReturnType<typeof key>): bigint {
  return freeCollateralQuote(h.ex.state, h.account(k)!);
}

test('a registration at the agent cap drops the expired agents first; 16 active ones still refuse', () => {
  const h = new Harness();
  const a = key('a');
  h.fund(a, 1_000n * USDC);
  const register = (name: string, lifeMs: number) =>
    h.one(a, {
      kind: 'registerAgent',
      agentPublicKey: key(name).publicKey,
      expiresAtMs: h.timeMs + lifeMs,
    });
  const codeOf = (r: ReturnType<typeof register>) =>
    !r.ok ? r.code : r.actions[0]!.ok ? 'ok' : r.actions[0]!.code;
  const agents = () => h.ex.state.principals.get(bytesKey(a.address))!.agents!;
  // 15 short-lived agents and one long-lived: the cap is full.
  for (let i = 0; i < AGENTS_PER_ADDRESS_MAX - 1; i++) {
    assert.equal(register(`short-${i}`, 100_000).actions[0]!.ok, true);
  }
  assert.equal(register('long', 1e9).actions[0]!.ok, true);
  assert.equal(codeOf(register('refused', 1e9)), 'TooManyAgents');
  h.block([], 200_000);
  // The 15 have expired: the next registration drops them and takes a place.
  assert.equal(register('next', 1e9).actions[0]!.ok, true);
  assert.deepEqual(
    [...agents().keys()].sort(),
    [bytesKey(key('long').publicKey), bytesKey(key('next').publicKey)].sort(),
  );
  // Fill the cap again with active agents: nothing has expired, so it refuses.
  for (let i = 0; i < AGENTS_PER_ADDRESS_MAX - 2; i++) {
    assert.equal(register(`more-${i}`, 1e9).actions[0]!.ok, true);
  }
  assert.equal(codeOf(register('over', 1e9)), 'TooManyAgents');
  assert.equal(agents().size, AGENTS_PER_ADDRESS_MAX);
});
