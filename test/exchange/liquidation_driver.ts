// What the seeded liquidation drivers (liquidation_rules_property.test.ts,
// liquidation_states_model.test.ts) build and check alike: the genesis with
// the drawn liquidation terms on the perpetuals and the daily dated futures,
// the transactions, the oracle, the state taken as the liquidation scan
// starts, restored nodes replaying each block, and the checks of the state
// against the reference's. None of it draws from the seed: each driver keeps
// its own draws, in its own order.

import assert from 'node:assert/strict';
import type { Block, BlockResult, Exchange, ExchangeEvent } from '../../src/exchange/index.ts';
import type { ExchangeState } from '../../src/exchange/state.ts';
import type { MarketParams } from '../../src/exchange/genesis.ts';
import type { Action, SignedTx } from '../../src/exchange/tx/types.ts';
import type { Genesis } from '../../src/exchange/index.ts';
import { USDC, VALIDATORS, genesis, replacer } from './helpers.ts';
import type { Key } from './helpers.ts';
import { viewOf } from './liquidation_reference.ts';
import type { RefState } from './liquidation_reference.ts';

export const UNDERLYINGS = ['BTC', 'ETH'] as const;
/** Oracle quote units per tick, of the perpetuals and dated futures of each underlying alike. */
export const TICK = [100_000n, 10_000n] as const;
/** 2024-01-10 08:00 UTC: a daily expiry; dated runs start before it, so their futures expire mid-run. */
export const EXPIRY_MS = Date.UTC(2024, 0, 10, 8);

export const show = (x: unknown): string => JSON.stringify(x, replacer);

/** A fill's order id is the exchange's own; the reference does not number orders. */
export const withoutOrderId = (e: ExchangeEvent): ExchangeEvent =>
  e.type === 'liquidationFill' ? { ...e, orderId: -1 } : e;

/** The drawn margins and liquidation terms, alike on every perpetual and dated future. */
export interface LiquidationTerms {
  readonly im: number;
  readonly mm: number;
  readonly feePpm: number;
  readonly feeMax: bigint;
  readonly cap: bigint;
}

export function liquidationParams(
  t: LiquidationTerms,
): Pick<
  MarketParams,
  | 'initialMarginPpm'
  | 'maintenanceMarginPpm'
  | 'liquidationFeePpm'
  | 'liquidationFeeQuoteMax'
  | 'liquidationQuoteMaxPerBlock'
> {
  return {
    initialMarginPpm: t.im,
    maintenanceMarginPpm: t.mm,
    liquidationFeePpm: t.feePpm,
    liquidationFeeQuoteMax: t.feeMax,
    liquidationQuoteMaxPerBlock: t.cap,
  };
}

/**
 * The genesis of a run: the given perpetuals and, when `startMs` is set, a
 * daily dated future of each underlying (one strike of options, never
 * traded) under the same terms, from `startMs`.
 */
export function liquidationGenesis(o: {
  readonly terms: LiquidationTerms;
  readonly markets: Genesis['markets'];
  readonly startMs: number | undefined;
  readonly insuranceFundQuote: bigint;
  readonly makerFeePpm: number;
}): Genesis {
  const dated = o.startMs !== undefined;
  const base = genesis();
  const listing =
    dated && base.listing !== undefined
      ? {
          ...base.listing,
          markIntervalMs: undefined,
          schedule: {
            underlyings: [
              { underlying: 'BTC', strikeStepQuote: 1_000n * USDC, strikeRangePpm: 10_000 },
              { underlying: 'ETH', strikeStepQuote: 100n * USDC, strikeRangePpm: 10_000 },
            ],
            dailies: 1,
            weeklies: 0,
            monthlies: 0,
            quarterlies: 0,
            futureCycles: ['daily' as const],
          },
          templates: base.listing.templates.map((t) =>
            t.kind === 'option'
              ? t
              : { ...t, params: { ...t.params, ...liquidationParams(o.terms) } },
          ),
        }
      : undefined;
  return genesis({
    markets: o.markets,
    listing,
    ...(dated ? { genesisTimeMs: o.startMs } : {}),
    insuranceFundQuote: o.insuranceFundQuote,
    feeTiers: [{ volumeQuoteMin: 0n, makerFeePpm: o.makerFeePpm, takerFeePpm: 500 }],
    faucetQuoteMax: 100_000_000_000n * USDC,
  });
}

/** Unsigned transactions on the chain, each with a fresh nonce from the driver's clock. */
export function txMaker(
  chainId: string,
  nowMs: () => number,
): (k: Key, action: Action, subaccount?: number) => SignedTx {
  let nonce = 0;
  return (k, action, subaccount = 0) => ({
    chainId,
    signer: k.publicKey,
    account: k.address,
    subaccount,
    nonce: nowMs() + ++nonce,
    action,
    signature: new Uint8Array(64),
  });
}

/** The oracle's prices at these index ticks, one per underlying. */
export function oracleAt(ticks: readonly number[]): Record<string, bigint> {
  const o: Record<string, bigint> = {};
  UNDERLYINGS.forEach((u, i) => {
    o[u] = BigInt(ticks[i]!) * TICK[i]!;
  });
  return o;
}

/** A governance proposal with the votes that pass it (three of four validators). */
export function governTxs(
  tx: (k: Key, action: Action) => SignedTx,
  proposalId: number,
  proposal: { kind: 'haltMarket' | 'resumeMarket'; instrument: string },
): SignedTx[] {
  const txs = [tx(VALIDATORS[0]!, { kind: 'govPropose', proposalId, proposal })];
  for (const v of [1, 2])
    txs.push(tx(VALIDATORS[v]!, { kind: 'govVote', proposalId, approve: true }));
  return txs;
}

/**
 * The state after a block's transactions, as its liquidation scan starts
 * (ScanSchedule.begin is the first thing runLiquidations does): `state` is
 * set then; the driver clears it before each block.
 */
export function watchScan(ex: Exchange): { state: RefState | null } {
  const seen: { state: RefState | null } = { state: null };
  const scan = ex.state.scan;
  const begin = scan.begin.bind(scan);
  scan.begin = (s) => {
    seen.state = viewOf(ex);
    begin(s);
  };
  return seen;
}

/** Nodes restored from snapshots run the block to the same results, events and app hash. */
export function replay(restored: readonly Exchange[], b: Block, r: BlockResult, at: string): void {
  const ours = show([r.results, r.events]);
  for (const node of restored) {
    const theirs = node.finalizeBlock(b);
    assert.equal(show([theirs.results, theirs.events]), ours, `${at}: a restored node`);
    assert.deepEqual(theirs.appHash, r.appHash, `${at}: a restored node's app hash`);
  }
}

/** The exchange's events from the reference's on, the first difference shown with what came before it. */
export function sameEvents(
  got: readonly ExchangeEvent[],
  expected: readonly ExchangeEvent[],
  at: string,
): void {
  if (show(got) === show(expected)) return;
  const n = Math.max(got.length, expected.length);
  let i = 0;
  while (i < n && show(got[i]) === show(expected[i])) i++;
  assert.fail(
    `${at}: events differ at ${i}:\n  exchange  ${show(got.slice(i, i + 4))}\n  reference ${show(expected.slice(i, i + 4))}\n  before: ${show(got.slice(Math.max(0, i - 4), i))}`,
  );
}

/** The fund, the fee pool and the deficits. */
export function sameBalances(x: RefState, y: RefState, at: string): void {
  assert.equal(x.fund, y.fund, `${at}: insurance fund`);
  assert.equal(x.feePool, y.feePool, `${at}: fee pool`);
  const sorted = (d: Set<number>): number[] => [...d].sort((p, q) => p - q);
  assert.deepEqual(sorted(x.deficits), sorted(y.deficits), `${at}: deficits`);
}

/** Every account's cash, positions and cost basis. */
export function sameAccounts(x: RefState, y: RefState, at: string): void {
  x.accounts.forEach((a, j) => {
    const b = y.accounts[j]!;
    assert.equal(a.cash, b.cash, `${at}: cash of account ${a.index}`);
    assert.deepEqual(a.size, b.size, `${at}: positions of account ${a.index}`);
    assert.deepEqual(a.basis, b.basis, `${at}: cost basis of account ${a.index}`);
  });
}

/** Collateral is conserved: the fund, the fee pool and the accounts hold what was deposited. */
export function checkConserved(state: ExchangeState, deposited: bigint, at: string): void {
  let total = state.insuranceQuote + state.feePoolQuote;
  for (const a of state.accounts) total += a.cashQuote;
  assert.equal(total, deposited, `${at}: collateral is conserved`);
}

/** No account without positions is below zero outside the deficits, nor while the fund holds money. */
export function checkDeficits(state: ExchangeState, at: string): void {
  for (const a of state.accounts) {
    if (a.positionCount !== 0 || a.cashQuote >= 0n) continue;
    assert.ok(state.deficits.has(a), `${at}: account ${a.index} below zero outside the deficits`);
    assert.equal(state.insuranceQuote, 0n, `${at}: a deficit left while the fund holds money`);
  }
}
