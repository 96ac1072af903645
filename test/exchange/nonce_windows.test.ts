// An address's own key and its agents keep separate nonce windows
// (docs/transactions.md, "Nonces"): an agent key, however it fills its
// window, cannot make the owner's nonces stale, and replay stays refused in
// both windows, across a snapshot too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, USDC, key, limit } from './helpers.ts';
import type { Key } from './helpers.ts';
import { decodeSnapshot, encodeSnapshot } from '../../src/exchange/index.ts';
import { bytesKey } from '../../src/exchange/keys.ts';
import { NONCE_FUTURE_MS_MAX, NONCE_WINDOW } from '../../src/lib/limits.ts';
import type { SignedTx } from '../../src/exchange/tx/types.ts';

const BTC = 'BTC-PERPETUAL';
const PRICE = 500_000;

function withAgent(): { h: Harness; owner: Key; bot: Key } {
  const h = new Harness();
  const owner = key('owner');
  const bot = key('bot');
  h.fund(owner, 10_000n * USDC);
  const r = h.one(owner, {
    kind: 'registerAgent',
    agentPublicKey: bot.publicKey,
    expiresAtMs: h.timeMs + 3_600_000,
  });
  assert.ok(r.ok && r.actions[0]!.ok);
  return { h, owner, bot };
}

/** NONCE_WINDOW cancels by the agent with the highest nonces the next block accepts. */
function flood(h: Harness, owner: Key, bot: Key): SignedTx[] {
  const top = h.timeMs + 1_000 + NONCE_FUTURE_MS_MAX - 1;
  return Array.from({ length: NONCE_WINDOW }, (_, i) =>
    h.tx(
      owner,
      { kind: 'cancel', instrument: BTC, clientOrderId: `x${i}` },
      { signer: bot, nonce: top - i },
    ),
  );
}

test('an agent filling its window with the highest nonces does not stop its owner revoking it', () => {
  const { h, owner, bot } = withAgent();
  // Cancels run first in a block, so the flood fills the window before the revoke is checked.
  const revoke = h.tx(owner, { kind: 'revokeAgent', agentPublicKey: bot.publicKey });
  const r = h.block([...flood(h, owner, bot), revoke]);
  assert.equal(r.results.length, NONCE_WINDOW + 1);
  for (const t of r.results.slice(0, NONCE_WINDOW)) assert.equal(t.ok, true);
  const last = r.results[NONCE_WINDOW]!;
  assert.equal(last.ok, true, JSON.stringify(last.code));
  assert.equal(last.actions[0]!.ok, true);
  // Revoked: the agent is refused, and the owner still trades and withdraws.
  const above = h.timeMs + 1_000 + NONCE_FUTURE_MS_MAX - 1;
  const byAgent = h.one(owner, limit(BTC, 'buy', PRICE, 1), { signer: bot, nonce: above });
  assert.equal(byAgent.code, 'NotPermitted');
  assert.equal(h.one(owner, limit(BTC, 'buy', PRICE, 1)).ok, true);
  const w = h.one(owner, { kind: 'withdraw', amountQuote: 1n * USDC, destination: 'x' });
  assert.ok(w.ok && w.actions[0]!.ok);
});

test('replay is refused in each window; an owner nonce and an agent nonce may be equal', () => {
  const { h, owner, bot } = withAgent();
  const n = h.timeMs + 500;
  const byOwner = h.tx(owner, limit(BTC, 'buy', PRICE, 1), { nonce: n });
  const byAgent = h.tx(owner, limit(BTC, 'buy', PRICE, 1), { signer: bot, nonce: n });
  const r = h.block([byOwner, byAgent]);
  assert.equal(r.results[0]!.ok, true);
  assert.equal(r.results[1]!.ok, true);
  const p = h.ex.state.principals.get(bytesKey(owner.address))!;
  assert.ok(p.nonces.includes(n));
  assert.deepEqual(p.agentNonces, [n]);
  assert.equal(h.block([byOwner]).results[0]!.code, 'DuplicateNonce');
  assert.equal(h.block([byAgent]).results[0]!.code, 'DuplicateNonce');
  // The same transactions replayed in one block: the second of each is a duplicate.
  const m = h.timeMs + 700;
  const o2 = h.tx(owner, limit(BTC, 'buy', PRICE, 1), { nonce: m });
  const a2 = h.tx(owner, limit(BTC, 'buy', PRICE, 1), { signer: bot, nonce: m });
  const codes = h.block([o2, a2, o2, a2]).results.map((t) => t.code);
  assert.deepEqual(codes, [undefined, undefined, 'DuplicateNonce', 'DuplicateNonce']);
});

test('a key that is neither the owner nor an agent consumes no nonce of either window', () => {
  const { h, owner } = withAgent();
  const stranger = key('stranger');
  const n = h.timeMs + 500;
  const r = h.one(owner, limit(BTC, 'buy', PRICE, 1), { signer: stranger, nonce: n });
  assert.equal(r.code, 'NotPermitted');
  const p = h.ex.state.principals.get(bytesKey(owner.address))!;
  assert.equal(p.agentNonces, null);
  assert.ok(!p.nonces.includes(n));
});

test('both windows survive a snapshot: same appHash, same digest from scratch, replay still refused', () => {
  const { h, owner, bot } = withAgent();
  const floodTxs = flood(h, owner, bot);
  h.block(floodTxs);
  const own = h.tx(owner, limit(BTC, 'buy', PRICE, 1));
  assert.equal(h.block([own]).results[0]!.ok, true);
  const copy = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
  assert.deepEqual(copy.appHash, h.ex.appHash);
  assert.deepEqual(copy.digestFromScratch(), h.ex.digestBytes());
  assert.deepEqual(h.ex.digestFromScratch(), h.ex.digestBytes());
  const p = copy.state.principals.get(bytesKey(owner.address))!;
  assert.equal(p.agentNonces!.length, NONCE_WINDOW);
  assert.ok(p.nonces.includes(own.nonce));
  const restored = new Harness(undefined, { checkInvariants: true }, copy);
  assert.equal(restored.block([own]).results[0]!.code, 'DuplicateNonce');
  assert.equal(restored.block([floodTxs[0]!]).results[0]!.code, 'DuplicateNonce');
  // The agent's full window makes its own lower nonces stale, never the owner's.
  const low = restored.timeMs + 10;
  const byAgent = restored.tx(owner, limit(BTC, 'buy', PRICE, 1), { signer: bot, nonce: low });
  assert.equal(restored.block([byAgent]).results[0]!.code, 'StaleNonce');
  const byOwner = restored.tx(owner, limit(BTC, 'buy', PRICE, 1), { nonce: low + 1 });
  assert.equal(restored.block([byOwner]).results[0]!.ok, true);
});

test('an address no agent signed for has the same leaf whatever its history of agents', () => {
  // Registering and revoking an agent that never signed leaves the agents' window empty (null).
  const { h, owner, bot } = withAgent();
  assert.ok(h.one(owner, { kind: 'revokeAgent', agentPublicKey: bot.publicKey }).ok);
  const p = h.ex.state.principals.get(bytesKey(owner.address))!;
  assert.equal(p.agentNonces, null);
  const copy = decodeSnapshot(encodeSnapshot(h.ex));
  assert.equal(copy.state.principals.get(bytesKey(owner.address))!.agentNonces, null);
  assert.deepEqual(copy.appHash, h.ex.appHash);
});
