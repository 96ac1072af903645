// The mempool's re-check (ExchangeApp.stillValid, used at admission and after
// each block) reads the nonce window the exchange will check for the signer:
// the address's own key's, or its agents' (docs/transactions.md, "Nonces").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeApp } from '../../src/node/app.ts';
import { SignatureCache } from '../../src/node/mempool/sigcache.ts';
import { consensusGenesisOf } from '../../src/node/node.ts';
import { NONCE_FUTURE_MS_MAX, NONCE_WINDOW } from '../../src/lib/limits.ts';
import { Harness, USDC, key, limit } from '../exchange/helpers.ts';

const BTC = 'BTC-PERPETUAL';

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
  const genesis = h.ex.state.genesis;
  const app = new ExchangeApp(
    {
      genesis,
      consensusGenesis: consensusGenesisOf(genesis),
      signatures: new SignatureCache(),
      prices: null,
      nowMs: () => 0,
    },
    h.ex,
  );
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
