// The mempool's re-check (ExchangeApp.stillValid, used at admission and after
// each block) reads the nonce window the exchange will check for the signer:
// the address's own key's, or its agents' (docs/transactions.md, "Nonces").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeApp } from '../../src/node/app.ts';
import { SignatureCache } from '../../src/node/mempool/sigcache.ts';
import { consensusGenesisOf } from '../../src/node/node.ts';
import { NONCE_AGE_MS_MAX, NONCE_FUTURE_MS_MAX, NONCE_WINDOW } from '../../src/lib/limits.ts';
import { Harness, USDC, key, limit } from '../exchange/helpers.ts';

const BTC = 'BTC-PERPETUAL';

/** The node's application over the harness's exchange: what the mempool asks. */
function appOver(h: Harness): ExchangeApp {
  const genesis = h.ex.state.genesis;
  return new ExchangeApp(
    {
      genesis,
      consensusGenesis: consensusGenesisOf(genesis),
      signatures: new SignatureCache(),
      prices: null,
      nowMs: () => 0,
    },
    h.ex,
  );
}

test('stillValid checks the signer’s window: a full agents’ window leaves the owner’s transactions valid', () => {
  const h = new Harness();
  const owner = key('owner');
  const bot = key('bot');
  h.fund(owner, 10_000n * USDC);
  const reg = h.one(owner, {
    kind: 'registerAgent',
    agentPublicKey: bot.publicKey,
    expiresAtMs: h.timeMs + 3_600_000,
  });
  assert.ok(reg.ok && reg.actions[0]!.ok);
  const top = h.timeMs + 1_000 + NONCE_FUTURE_MS_MAX - 1;
  const flood = Array.from({ length: NONCE_WINDOW }, (_, i) =>
    h.tx(owner, limit(BTC, 'buy', 400_000, 1), { signer: bot, nonce: top - i }),
  );
  assert.ok(h.block(flood).results.every((r) => r.ok));
  const app = appOver(h);
  const n = h.timeMs + 10;
  const revoke = h.tx(owner, { kind: 'revokeAgent', agentPublicKey: bot.publicKey }, { nonce: n });
  assert.equal(app.stillValid(revoke), true);
  // The same nonce by the agent is below its full window: stale.
  assert.equal(
    app.stillValid(h.tx(owner, limit(BTC, 'buy', 400_000, 1), { signer: bot, nonce: n })),
    false,
  );
  // A used nonce is refused in the window it was used in only.
  assert.equal(app.stillValid(flood[0]!), false);
  assert.equal(app.stillValid(h.tx(owner, limit(BTC, 'buy', 400_000, 1), { nonce: top })), true);
  // Once the owner's key has signed, it is recognized by the remembered key.
  assert.ok(h.block([revoke]).results[0]!.ok);
  assert.equal(app.stillValid(revoke), false);
});

test('staleCodeOf gives the code the block would: the nonce before the expiry, so a committed transaction resent after it expired is no Expired', () => {
  const h = new Harness();
  const owner = key('resender');
  h.fund(owner, 10_000n * USDC);
  const app = appOver(h);
  // Committed, then its expiry passes: the same bytes again would be refused
  // in a block for their used nonce (execute.ts checks it first); "Expired"
  // would tell the client they never took effect.
  const tx = h.tx(owner, limit(BTC, 'buy', 400_000, 1), { expiresAtMs: h.timeMs + 1_500 });
  const r = h.block([tx]);
  assert.ok(r.results[0]!.ok, 'committed');
  h.block([], 5_000);
  assert.equal(app.staleCodeOf(tx), 'DuplicateNonce', 'its nonce is used');
  assert.equal(h.block([tx]).results[0]!.code, 'DuplicateNonce', 'as its block says');
  // An address the state does not know yet: a nonce too old is stale in a block too.
  h.block([], NONCE_AGE_MS_MAX);
  const fresh = key('fresh');
  const nonce = h.timeMs - NONCE_AGE_MS_MAX;
  const old = h.tx(fresh, { kind: 'faucet', amountQuote: USDC }, { nonce });
  assert.equal(app.staleCodeOf(old), 'StaleNonce', 'admission refuses it');
  assert.equal(h.block([old]).results[0]!.code, 'StaleNonce', 'the block refuses it so');
  // Expired alone is still told as such.
  const late = h.tx(owner, limit(BTC, 'buy', 400_000, 1), { expiresAtMs: h.timeMs - 1 });
  assert.equal(app.staleCodeOf(late), 'Expired');
});

test('staleCodeOf: a key that is neither the address’s own nor an active agent of it is NotPermitted, as its block says; an agent is permitted until its expiry or revocation', () => {
  const h = new Harness();
  const owner = key('victim');
  const stranger = key('stranger');
  const bot = key('agent');
  h.fund(owner, 10_000n * USDC);
  h.fund(stranger, 10_000n * USDC);
  const app = appOver(h);
  // Signed with the stranger's own key under the victim's address: a valid
  // signature, which every block refuses; admitted, it would take the
  // victim's share of the mempool and of each proposal.
  const forged = h.tx(owner, limit(BTC, 'buy', 400_000, 1), { signer: stranger });
  assert.equal(app.staleCodeOf(forged), 'NotPermitted');
  assert.equal(h.block([forged]).results[0]!.code, 'NotPermitted', 'as its block says');
  assert.equal(app.staleCodeOf(h.tx(owner, limit(BTC, 'buy', 400_000, 1))), null, 'the owner');
  // An agent, from the block that registers it until the one past its expiry.
  const byBot = () => h.tx(owner, limit(BTC, 'buy', 400_000, 1), { signer: bot });
  assert.equal(app.staleCodeOf(byBot()), 'NotPermitted', 'not yet registered');
  const expiresAtMs = h.timeMs + 10_000;
  const reg = h.one(owner, { kind: 'registerAgent', agentPublicKey: bot.publicKey, expiresAtMs });
  assert.ok(reg.ok && reg.actions[0]!.ok);
  assert.equal(app.staleCodeOf(byBot()), null, 'registered');
  h.block([], 10_000);
  assert.ok(h.timeMs >= expiresAtMs);
  const late = byBot();
  assert.equal(app.staleCodeOf(late), 'NotPermitted', 'expired');
  assert.equal(h.block([late]).results[0]!.code, 'NotPermitted', 'as its block says');
  // A nonce too old is still told first, as the block checks it first.
  h.block([], NONCE_AGE_MS_MAX);
  const nonce = h.timeMs - NONCE_AGE_MS_MAX;
  const old = h.tx(owner, limit(BTC, 'buy', 400_000, 1), { signer: stranger, nonce });
  assert.equal(app.staleCodeOf(old), 'StaleNonce');
  assert.equal(h.block([old]).results[0]!.code, 'StaleNonce', 'as its block says');
});

test('staleCodeOf refuses a nonce NONCE_FUTURE_MS_MAX or more ahead of the last block’s time FutureNonce, as its block does, and both messages say the bound, the block time and what to do', () => {
  const h = new Harness();
  const owner = key('fast clock');
  h.fund(owner, 10_000n * USDC);
  const app = appOver(h);
  const t = h.timeMs;
  const ahead = h.tx(owner, limit(BTC, 'buy', 400_000, 1), { nonce: t + 2 * NONCE_FUTURE_MS_MAX });
  assert.equal(app.staleCodeOf(ahead), 'FutureNonce', 'admission refuses it');
  assert.equal(
    app.staleMessageOf(ahead, 'FutureNonce'),
    `nonce ${t + 2 * NONCE_FUTURE_MS_MAX} is ${2 * NONCE_FUTURE_MS_MAX} ms ahead of the last block's time ${t}: ` +
      'a nonce is the signing time in ms since the epoch and must be less than 1 h ' +
      "(NONCE_FUTURE_MS_MAX) ahead of it; the signer's clock is probably ahead",
  );
  // Just under the bound at the last block's time: admitted.
  const edge = h.tx(owner, limit(BTC, 'buy', 400_000, 1), { nonce: t + NONCE_FUTURE_MS_MAX - 1 });
  assert.equal(app.staleCodeOf(edge), null);
  const r = h.block([ahead]).results[0]!;
  assert.equal(r.code, 'FutureNonce', 'as its block says');
  assert.match(
    r.message ?? '',
    new RegExp(`ahead of block time ${h.timeMs}: .* less than 1 h \\(NONCE_FUTURE_MS_MAX\\)`),
  );
  // A nonce too old: the exchange names the age bound and the block time too.
  h.block([], NONCE_AGE_MS_MAX);
  const old = h.tx(owner, limit(BTC, 'buy', 400_000, 1), { nonce: h.timeMs - NONCE_AGE_MS_MAX });
  assert.equal(app.staleCodeOf(old), 'StaleNonce');
  assert.match(app.staleMessageOf(old, 'StaleNonce') ?? '', /behind the last block's time \d+: /);
  const stale = h.block([old]).results[0]!;
  assert.equal(stale.code, 'StaleNonce');
  assert.match(
    stale.message ?? '',
    new RegExp(
      `^nonce \\d+ is \\d+ ms behind block time ${h.timeMs}: .* less than 24 h \\(NONCE_AGE_MS_MAX\\) behind it`,
    ),
  );
});
