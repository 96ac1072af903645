// Liquidation rules of docs/exchange.md ("Liquidation and deleveraging")
// where the exchange once did otherwise: each case is the smallest flow that
// showed it (liquidation_rules_property.test.ts found them).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, USDC, VALIDATORS, key, limit, replacer, unmonitoredGenesis } from './helpers.ts';
import { equityQuote } from '../../src/exchange/margin.ts';
import type { Key } from './helpers.ts';
import type { Action } from '../../src/exchange/tx/types.ts';

const BTC = 'BTC-PERPETUAL';
const ETH = 'ETH-PERPETUAL';

function placed(h: Harness, k: Key, action: Action): void {
  const r = h.one(k, action);
  assert.ok(r.ok && r.actions[0]!.ok, JSON.stringify(r, replacer));
}

test('deleveraging ranks by the exact score: of two counterparties with little leverage, the one with more profit goes first', () => {
  const h = new Harness(unmonitoredGenesis({ faucetQuoteMax: 100_000_000n * USDC }));
  const [a, b, c, o] = [key('rank-a'), key('rank-b'), key('rank-c'), key('rank-o')];
  // a before b: a has the lower account index.
  h.fund(a, 10_000_000n * USDC);
  h.fund(b, 10_000_000n * USDC);
  h.fund(c, 10_000n * USDC);
  h.fund(o, 300_000n);
  // b sells one lot to c at $50,100, a one lot to o at $50,000.
  placed(h, c, limit(BTC, 'buy', 501_000, 1));
  placed(h, b, limit(BTC, 'sell', 501_000, 1, { timeInForce: 'IOC' }));
  placed(h, a, limit(BTC, 'sell', 500_000, 1));
  placed(h, o, limit(BTC, 'buy', 500_000, 1, { timeInForce: 'IOC' }));
  // At $47,500 o's equity ($0.30 less the $0.0025 taker fee and the $0.25
  // loss) is under its maintenance; no bid: its lot is deleveraged. Both
  // shorts gain, b a little more ($0.26 against $0.25): with $10M of equity
  // each, their scores (PnL × notional / equity) are a tenth of a quote
  // unit, and b's is the larger.
  h.oracle = { ...h.oracle, BTC: 47_500n * USDC };
  const r = h.block([]);
  const deleverages = r.events.filter((e) => e.type === 'deleverage');
  assert.equal(deleverages.length, 1, JSON.stringify(r.events, replacer));
  assert.equal(deleverages[0]!.counterparty, h.account(b)!.index, 'the higher score goes first');
});

test('the insurance fund does not carry a position a liquidation could not close: a lot in another market does not unlock the cover of a halted one', () => {
  const h = new Harness(unmonitoredGenesis({ insuranceFundQuote: 10_000n * USDC }));
  const [o, c, e] = [key('halted-o'), key('halted-c'), key('halted-e')];
  h.fund(o, 2_600n * USDC);
  h.fund(c, 500_000n * USDC);
  h.fund(e, 500_000n * USDC);
  // o: long 1 BTC at $50,000 and one ETH lot at $3,000.
  placed(h, c, limit(BTC, 'sell', 500_000, 10_000));
  placed(h, o, limit(BTC, 'buy', 500_000, 10_000, { timeInForce: 'IOC' }));
  placed(h, e, limit(ETH, 'sell', 300_000, 1));
  placed(h, o, limit(ETH, 'buy', 300_000, 1, { timeInForce: 'IOC' }));
  govern(h, 1, 'haltMarket', BTC);
  // At $47,000 o is $425.0015 below zero ($2,600 less $25.0015 of fees and the
  // $3,000 lost): only its ETH lot can close, at the mark.
  h.oracle = { ...h.oracle, BTC: 47_000n * USDC };
  h.block([]);
  const account = h.account(o)!;
  assert.equal(account.positions[0]!.sizeLots, 10_000, 'the BTC long waits for its market');
  assert.equal(account.positions[1]!.sizeLots, 0, 'the ETH lot closed');
  // The fund keeps the cover's share for the $47,000 of BTC that stays open:
  // it pays for the $3 of ETH that closed, rounded, and o stays below zero.
  const gap = 425_001_500n;
  const back = (gap * 47_000n + 47_003n - 1n) / 47_003n;
  assert.equal(h.ex.state.insuranceQuote, 10_000n * USDC - (gap - back));
  assert.equal(equityQuote(h.ex.state, account), -back);
  assert.ok(h.ex.state.underwater.has(account), 'withdrawals weigh what it lacks');
  // Prices come back before BTC resumes: what o regains is its own, not the fund's.
  h.oracle = { ...h.oracle, BTC: 50_000n * USDC };
  govern(h, 2, 'resumeMarket', BTC);
  assert.equal(h.ex.state.insuranceQuote, 10_000n * USDC - (gap - back));
  assert.ok(equityQuote(h.ex.state, account) > 0n);
});

function govern(
  h: Harness,
  proposalId: number,
  kind: 'haltMarket' | 'resumeMarket',
  instrument: string,
): void {
  const propose = h.tx(VALIDATORS[0]!, {
    kind: 'govPropose',
    proposalId,
    proposal: { kind, instrument },
  });
  const votes = [1, 2].map((v) =>
    h.tx(VALIDATORS[v]!, { kind: 'govVote', proposalId, approve: true }),
  );
  const r = h.block([propose, ...votes]);
  assert.ok(
    r.results.every((x) => x.ok && x.actions[0]!.ok),
    JSON.stringify(r.results, replacer),
  );
  assert.equal(h.ex.state.marketByName.get(instrument)!.halted, kind === 'haltMarket');
}
