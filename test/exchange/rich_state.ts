// A state holding every kind of entity a snapshot carries, for the tests
// that damage snapshots (snapshot_cover.test.ts, snapshot_mutate.test.ts).

import assert from 'node:assert/strict';
import { ZommaError } from '../../src/lib/errors.ts';
import { decodeSnapshot, encodeSnapshot } from '../../src/exchange/snapshot.ts';
import type { Exchange } from '../../src/exchange/index.ts';
import { daysFromCivil, expiryMsOfDay, MS_PER_DAY } from '../../src/exchange/instruments/index.ts';
import type { Action } from '../../src/exchange/tx/types.ts';
import type { Key } from './helpers.ts';
import { Harness, USDC, VALIDATORS, dailyListingGenesis, key, limit, replacer } from './helpers.ts';

const START_MS = daysFromCivil(2026, 3, 2) * MS_PER_DAY;
const EXPIRY_MS = expiryMsOfDay(daysFromCivil(2026, 3, 2));
/** A flat smile: total variance for 50% volatility over eight hours. */
const FLAT = { a: 228_000_000_000_000n, b: 0n, rho: 0n, m: 0n, sigma: 100_000_000_000_000_000n };
export const BTC = 'BTC-PERPETUAL';
export const ETH = 'ETH-PERPETUAL';
const FUTURE = 'BTC-2MAR26';
const CALL = 'BTC-2MAR26-50000-C';

export const [a, b, c, d] = [key('cover-a'), key('cover-b'), key('cover-c'), key('cover-d')] as [
  Key,
  Key,
  Key,
  Key,
];

function ok(h: Harness, from: Key, action: Action, subaccount = 0): void {
  const r = h.one(from, action, { subaccount });
  assert.ok(r.ok && r.actions.every((x) => x.ok), JSON.stringify(r, replacer));
}

function attest(id: number, amountQuote: bigint): Action {
  return {
    kind: 'attestDeposit',
    depositId: new Uint8Array(32).fill(id),
    account: key('cover-depositor').address,
    subaccount: 3,
    amountQuote,
  };
}

/**
 * Every kind of state a snapshot carries. With `markIntervalMs` options keep
 * their marks between intervals (state); without, the restore recomputes them.
 */
export function rich(markIntervalMs?: number): Harness {
  const g = dailyListingGenesis(START_MS);
  if (markIntervalMs !== undefined) g.listing!.markIntervalMs = markIntervalMs;
  const h = new Harness(g, {});
  h.smiles = [
    { underlying: 'BTC', expiryMs: EXPIRY_MS, svi: FLAT },
    { underlying: 'ETH', expiryMs: EXPIRY_MS, svi: FLAT },
  ];
  for (const k of [a, b, c, d]) h.fund(k, 500_000n * USDC);
  h.fund(a, 50_000n * USDC, 1);
  // Perpetuals: a trade, then resting orders (two at one level) on both sides.
  ok(h, a, limit(BTC, 'sell', 500_000, 3));
  ok(h, b, limit(BTC, 'buy', 500_000, 3));
  ok(
    h,
    c,
    limit(BTC, 'buy', 499_000, 2, { clientOrderId: 'c1', goodTilMs: START_MS + MS_PER_DAY }),
  );
  ok(h, d, limit(BTC, 'buy', 499_000, 5));
  ok(h, c, limit(BTC, 'sell', 501_000, 4, { stp: 'cancelBoth' }));
  ok(h, a, limit(ETH, 'sell', 300_000, 7), 1);
  ok(h, d, limit(ETH, 'buy', 300_000, 5));
  ok(h, d, limit(ETH, 'buy', 299_000, 5, { timeInForce: 'postOnly' }));
  // A dated future and an option, traded and resting.
  const future = h.ex.state.marketByName.get(FUTURE)!;
  const call = h.ex.state.marketByName.get(CALL)!;
  ok(h, a, limit(FUTURE, 'buy', future.markTicks, 3));
  ok(h, b, limit(FUTURE, 'sell', future.markTicks, 2));
  ok(h, c, limit(CALL, 'sell', call.markTicks, 7));
  ok(h, d, limit(CALL, 'buy', call.markTicks, 5));
  ok(h, d, limit(CALL, 'buy', Math.max(1, call.markTicks - 5), 2));
  // Agents, subaccounts, withdrawals.
  const agent = (name: string, expiresAtMs: number): Action => ({
    kind: 'registerAgent',
    agentPublicKey: key(name).publicKey,
    expiresAtMs,
    name,
  });
  ok(h, a, agent('cover-bot', START_MS + 10 * MS_PER_DAY));
  ok(h, b, agent('cover-mm', START_MS + MS_PER_DAY));
  ok(h, b, { kind: 'transfer', fromSubaccount: 0, toSubaccount: 2, amountQuote: 1_000n * USDC });
  ok(h, c, { kind: 'withdraw', amountQuote: 10n * USDC, destination: 'dest' });
  // Deposits: one credited, two pending; proposals: one executed, two pending.
  for (const v of [0, 1, 2]) ok(h, VALIDATORS[v]!, attest(1, 77n * USDC));
  ok(h, VALIDATORS[1]!, attest(2, 5n * USDC));
  ok(h, VALIDATORS[2]!, attest(3, 6n * USDC));
  const propose = (proposalId: number, kind: 'haltMarket' | 'resumeMarket'): Action => ({
    kind: 'govPropose',
    proposalId,
    proposal: { kind, instrument: ETH },
  });
  ok(h, VALIDATORS[0]!, propose(7, 'haltMarket'));
  ok(h, VALIDATORS[1]!, propose(8, 'haltMarket'));
  ok(h, VALIDATORS[2]!, propose(9, 'resumeMarket'));
  for (const v of [0, 1]) ok(h, VALIDATORS[v]!, { kind: 'govVote', proposalId: 9, approve: true });
  // A jailed validator.
  h.timeMs += 1_000;
  h.ex.finalizeBlock({
    height: h.ex.state.height + 1,
    timeMs: h.timeMs,
    proposer: VALIDATORS[0]!.publicKey,
    txs: [],
    oracle: h.oracle,
    smiles: h.smiles,
    evidence: [{ publicKey: VALIDATORS[3]!.publicKey, height: 2 }],
  });
  // A volatility auction on BTC with orders waiting in it on both sides.
  ok(h, a, limit(BTC, 'sell', 530_000, 3));
  const started = h.block([h.tx(b, limit(BTC, 'buy', 535_000, 6))]);
  assert.ok(started.events.some((e) => e.type === 'auctionStarted'));
  ok(h, c, limit(BTC, 'buy', 532_000, 2));
  ok(h, d, limit(BTC, 'sell', 528_000, 1, { goodTilMs: h.timeMs + 10_000 }));
  return h;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/** Why `mutated` is unsound against the snapshot `original` restores to `appHash`, or null. */
export function unsound(
  mutated: Uint8Array,
  original: Uint8Array,
  appHash: Uint8Array,
): string | null {
  let restored: Exchange;
  try {
    restored = decodeSnapshot(mutated);
  } catch (e) {
    return e instanceof ZommaError ? null : `refused with an untyped ${String(e)}`;
  }
  if (hex(restored.appHash) !== hex(appHash)) return null;
  return hex(encodeSnapshot(restored)) === hex(original)
    ? 'a second encoding of the same state'
    : 'a changed state under the same appHash';
}
