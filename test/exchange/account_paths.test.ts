// Adversarial paths of the account operations: nonces, agents, withdrawals,
// transfers, the faucet and the in-block ordering.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NONCE_FUTURE_MS_MAX, NONCE_WINDOW } from '../../src/lib/limits.ts';
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

test('an expired or revoked agent consumes none of the address nonces; an active one does', () => {
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
  // An active agent's refused action (agents never withdraw) still consumes its nonce.
  const w = h.one(
    a,
    { kind: 'withdraw', amountQuote: 1n, destination: 'x' },
    { signer: bot, nonce: n },
  );
  assert.equal(w.code, 'NotPermitted');
  assert.equal(h.one(a, limit(BTC, 'buy', PRICE, 1), { nonce: n }).code, 'DuplicateNonce');
  h.block([], 10_000);
  const m = h.timeMs + 100_000;
  assert.equal(
    h.one(a, limit(BTC, 'buy', PRICE, 1), { signer: bot, nonce: m }).code,
    'NotPermitted',
  );
  assert.equal(h.one(a, limit(BTC, 'buy', PRICE, 1), { nonce: m }).ok, true);
});
