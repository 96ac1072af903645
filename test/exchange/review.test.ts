// Where dated markets, volatility auctions, slashing and the digest's memos
// meet: scenarios across those features, each checked against the digest
// recomputed from scratch, a snapshot round trip and the invariants.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Genesis } from '../../src/exchange/index.ts';
import { DEVNET_LISTING } from '../../src/exchange/genesis.ts';
import { daysFromCivil, MS_PER_DAY } from '../../src/exchange/instruments/index.ts';
import { Harness, USDC, VALIDATORS, genesis, key, replacer } from './helpers.ts';

const MINUTE_MS = 60_000;
/** Monday 2 March 2026, 00:00 UTC: the first daily expiry is that day at 08:00. */
const START_MS = daysFromCivil(2026, 3, 2) * MS_PER_DAY;

function listingGenesis(): Genesis {
  return genesis({
    genesisTimeMs: START_MS,
    listing: {
      ...DEVNET_LISTING,
      schedule: {
        underlyings: [
          { underlying: 'BTC', strikeStepQuote: 1_000n * USDC, strikeRangePpm: 40_000 },
          { underlying: 'ETH', strikeStepQuote: 100n * USDC, strikeRangePpm: 40_000 },
        ],
        dailies: 1,
        weeklies: 0,
        monthlies: 0,
        quarterlies: 0,
        futureCycles: ['daily'],
      },
    },
  });
}

test('emergency halt: a settled market left in a free slot does not keep haltAll from halting the exchange', () => {
  const h = new Harness(listingGenesis());
  h.block([], MINUTE_MS);
  // At 50,500 the next day has one BTC strike fewer on each side: two slots stay free.
  h.oracle = { ...h.oracle, BTC: 50_500n * USDC };
  for (let i = 0; i < 9; i++) h.block([], 60 * MINUTE_MS);
  const free = h.ex.state.markets.filter((m) => m.retired);
  assert.ok(free.length > 0, 'a settled slot is still free');
  const a = key('review-halt');
  h.fund(a, 1_000n * USDC);
  const [first, ...rest] = [0, 1, 2];
  h.block([
    h.tx(VALIDATORS[first!]!, { kind: 'govPropose', proposalId: 1, proposal: { kind: 'haltAll' } }),
  ]);
  for (const v of rest) {
    h.block([h.tx(VALIDATORS[v]!, { kind: 'govVote', proposalId: 1, approve: true })]);
  }
  assert.ok(h.ex.state.markets.every((m) => m.retired || m.halted));
  const r = h.one(a, {
    kind: 'transfer',
    amountQuote: 1n * USDC,
    fromSubaccount: 0,
    toSubaccount: 1,
  });
  assert.ok(r.ok);
  const result = r.actions[0]!;
  assert.ok(!result.ok && result.code === 'ExchangeHalted', JSON.stringify(result, replacer));
  // The next day's instruments are listed during the halt: they open halted, and the halt holds.
  const before = new Set(
    h.ex.state.markets.filter((m) => !m.retired).map((m) => m.params.instrument),
  );
  for (let i = 0; i < 25; i++) h.block([], 60 * MINUTE_MS);
  const listed = h.ex.state.markets.filter((m) => !m.retired && !before.has(m.params.instrument));
  assert.ok(listed.length > 0, 'instruments were listed during the halt');
  assert.ok(listed.every((m) => m.halted));
  const again = h.one(a, { kind: 'faucet', amountQuote: 1n * USDC }).actions[0]!;
  assert.ok(!again.ok && again.code === 'ExchangeHalted');
  assert.deepEqual(h.ex.digestFromScratch(), h.ex.digestBytes());
});
