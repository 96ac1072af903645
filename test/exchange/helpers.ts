// Test helpers: traders with deterministic keys, unsigned-but-well-formed
// transactions (finalizeBlock trusts the node's signature check), and a
// harness that feeds blocks with advancing time and an oracle.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { DecodeError } from '../../src/codec/wire.ts';
import { Exchange, devnetGenesis } from '../../src/exchange/index.ts';
import { decodeSnapshot, encodeSnapshot } from '../../src/exchange/snapshot.ts';
import type {
  ActionResult,
  Block,
  BlockResult,
  ExchangeOptions,
  Genesis,
  Offence,
  TxResult,
} from '../../src/exchange/index.ts';
import type { Action, PlaceOrder, SignedTx } from '../../src/exchange/tx/types.ts';
import { bytesKey } from '../../src/exchange/keys.ts';
import { DEVNET_LISTING } from '../../src/exchange/genesis.ts';
import { daysFromCivil, expiryMsOfDay, MS_PER_DAY } from '../../src/exchange/instruments/index.ts';
import type { SmileObservation } from '../../src/exchange/oracle/index.ts';

export const USDC = 1_000_000n;
/** BTC at $50,000 = 500,000 ticks of $0.10; ETH at $3,000 = 300,000 ticks of $0.01. */
export const ORACLE = { BTC: 50_000n * USDC, ETH: 3_000n * USDC };

function sha256(data: Uint8Array | string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}

export interface Key {
  readonly publicKey: Uint8Array;
  readonly address: Uint8Array;
}

export function key(name: string): Key {
  const publicKey = sha256(`key:${name}`);
  return { publicKey, address: sha256(publicKey).slice(0, 20) };
}

export const VALIDATORS = [key('v0'), key('v1'), key('v2'), key('v3')];

export function genesis(overrides: Partial<Genesis> = {}): Genesis {
  return { ...devnetGenesis(VALIDATORS.map((v) => v.publicKey)), ...overrides };
}

export interface TxOptions {
  signer?: Key;
  subaccount?: number;
  nonce?: number;
  expiresAtMs?: number;
}

export class Harness {
  readonly ex: Exchange;
  timeMs: number;
  private nonce = 0;
  oracle: Record<string, bigint> = { ...ORACLE };
  /** Smiles sent with every block (a trusted feed), when set. */
  smiles: SmileObservation[] | null = null;

  constructor(
    g: Genesis = genesis(),
    options: ExchangeOptions = { checkInvariants: true },
    ex?: Exchange,
  ) {
    this.ex = ex ?? new Exchange(g, options);
    this.timeMs = this.ex.state.timeMs;
  }

  tx(from: Key, action: Action, o: TxOptions = {}): SignedTx {
    const tx: SignedTx = {
      chainId: this.ex.state.genesis.chainId,
      signer: (o.signer ?? from).publicKey,
      account: from.address,
      subaccount: o.subaccount ?? 0,
      nonce: o.nonce ?? this.timeMs + ++this.nonce,
      action,
      signature: new Uint8Array(64),
    };
    if (o.expiresAtMs !== undefined) tx.expiresAtMs = o.expiresAtMs;
    return tx;
  }

  block(txs: SignedTx[], dtMs = 1_000, evidence?: readonly Offence[]): BlockResult {
    return this.ex.finalizeBlock(this.nextBlock(txs, dtMs, evidence));
  }

  /**
   * The next block, `dtMs` after the last, without running it: for a test
   * that runs the same block on another node too (one restored from a snapshot).
   */
  nextBlock(txs: SignedTx[], dtMs = 1_000, evidence?: readonly Offence[]): Block {
    this.timeMs += dtMs;
    return {
      height: this.ex.state.height + 1,
      timeMs: this.timeMs,
      proposer: VALIDATORS[0]!.publicKey,
      txs,
      oracle: this.oracle,
      ...(this.smiles !== null ? { smiles: this.smiles } : {}),
      ...(evidence !== undefined ? { evidence } : {}),
    };
  }

  /** Runs one transaction in its own block and returns its single action result. */
  one(from: Key, action: Action, o: TxOptions = {}) {
    const r = this.block([this.tx(from, action, o)]);
    return r.results[0]!;
  }

  fund(k: Key, amountQuote: bigint, subaccount = 0): void {
    const r = this.one(k, { kind: 'faucet', amountQuote }, { subaccount });
    if (!r.ok || !r.actions[0]!.ok)
      throw new Error(`faucet failed: ${JSON.stringify(r, replacer)}`);
  }

  account(k: Key, subaccount = 0) {
    return this.ex.state.principals.get(bytesKey(k.address))?.subaccounts.get(subaccount);
  }
}

export function replacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  return value;
}

export function limit(
  instrument: string,
  side: 'buy' | 'sell',
  priceTicks: number,
  sizeLots: number,
  extra: Partial<PlaceOrder> = {},
): PlaceOrder {
  return {
    kind: 'placeOrder',
    instrument,
    side,
    type: 'limit',
    priceTicks,
    sizeLots,
    timeInForce: 'GTC',
    reduceOnly: false,
    stp: 'cancelResting',
    ...extra,
  };
}

/** Monday 2 March 2026, 00:00 UTC: the day the daily listing tests start; its first expiry is at 08:00. */
export const LISTING_DAY_START_MS = daysFromCivil(2026, 3, 2) * MS_PER_DAY;
/** That day's expiry (08:00 UTC). */
export const LISTING_DAY_EXPIRY_MS = expiryMsOfDay(daysFromCivil(2026, 3, 2));
/** A flat smile: total variance for 50% volatility over eight hours. */
export const FLAT_SMILE = {
  a: 228_000_000_000_000n,
  b: 0n,
  rho: 0n,
  m: 0n,
  sigma: 100_000_000_000_000_000n,
};

/** Both underlyings' smiles for that day's expiry, flat. */
export const LISTING_DAY_SMILES: SmileObservation[] = [
  { underlying: 'BTC', expiryMs: LISTING_DAY_EXPIRY_MS, svi: FLAT_SMILE },
  { underlying: 'ETH', expiryMs: LISTING_DAY_EXPIRY_MS, svi: FLAT_SMILE },
];

/**
 * A genesis listing one daily expiry with a future, from `startMs`; strikes
 * within ±4% (BTC 48,000–52,000 by 1,000; ETH 2,900–3,100 by 100).
 */
export function dailyListingGenesis(startMs: number): Genesis {
  return genesis({
    genesisTimeMs: startMs,
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

/** The devnet genesis without price monitoring: nothing bounds a trade's price but the traders' limits. */
export function unmonitoredGenesis(overrides: Partial<Genesis> = {}): Genesis {
  const markets = genesis().markets.map((m) => ({ ...m, triggers: [] }));
  return genesis({ markets, ...overrides });
}

/**
 * `a` goes long 1 BTC from `b` at `priceTicks` (the mark), the mark falls
 * $3,000, and `a` sells out into `c`'s bid $50 above the new mark: no
 * position, and cash below zero by what the fall took past its collateral
 * less the $50 and its fees (with $2,600 from $50,000: −$398.525), which the
 * insurance fund covers as far as it holds; the rest is a deficit. Needs a
 * genesis without price monitoring (unmonitoredGenesis). Returns the block
 * of the sale.
 */
export function sellOutBelowZero(
  h: Harness,
  a: Key,
  b: Key,
  c: Key,
  priceTicks: number,
): BlockResult {
  const BTC = 'BTC-PERPETUAL';
  const ok = (from: Key, action: Action): void => {
    const r = h.one(from, action);
    assert.ok(r.ok && r.actions[0]!.ok, JSON.stringify(r, replacer));
  };
  ok(b, limit(BTC, 'sell', priceTicks, 10_000));
  ok(a, limit(BTC, 'buy', priceTicks, 10_000));
  const low = priceTicks - 30_000;
  ok(c, limit(BTC, 'buy', low + 500, 10_000));
  h.oracle = { ...h.oracle, BTC: (BigInt(low) * USDC) / 10n };
  const r = h.block([h.tx(a, limit(BTC, 'sell', low, 10_000, { timeInForce: 'IOC' }))]);
  assert.ok(r.results[0]!.ok && r.results[0]!.actions[0]!.ok, 'a sells out');
  assert.equal(h.account(a)!.positionCount, 0, 'a holds no position');
  return r;
}

/**
 * The market halted by the validators' vote: validator 0 proposes, 1 and 2
 * approve, all in one block (three of four: past two thirds).
 */
export function haltByVote(h: Harness, instrument: string, proposalId = 1): BlockResult {
  return h.block([
    h.tx(VALIDATORS[0]!, {
      kind: 'govPropose',
      proposalId,
      proposal: { kind: 'haltMarket', instrument },
    }),
    h.tx(VALIDATORS[1]!, { kind: 'govVote', proposalId, approve: true }),
    h.tx(VALIDATORS[2]!, { kind: 'govVote', proposalId, approve: true }),
  ]);
}

/** The single action result of a transaction that was executed (not refused whole). */
export function actionOf(r: TxResult): ActionResult {
  assert.ok(r.ok, JSON.stringify(r, replacer));
  return r.actions[0]!;
}

/** The single action, which succeeded. */
export function accepted(r: TxResult): Extract<ActionResult, { ok: true }> {
  const a = actionOf(r);
  assert.ok(a.ok, JSON.stringify(a, replacer));
  return a;
}

/** A governance approval of proposal `id`. */
export function approve(id: number): Action {
  return { kind: 'govVote', proposalId: id, approve: true };
}

/**
 * A check that `bytes`, a snapshot, altered by `change` and encoded again, is
 * refused as a DecodeError matching `why`.
 */
export function refusesAltered(
  bytes: Uint8Array,
): (change: (copy: Exchange) => void, why: RegExp) => void {
  return (change, why) => {
    const copy = decodeSnapshot(bytes);
    change(copy);
    const damaged = encodeSnapshot(copy);
    assert.throws(() => decodeSnapshot(damaged), DecodeError);
    assert.throws(() => decodeSnapshot(damaged), why);
  };
}

/** The single action, refused with `code`: its message. */
export function rejected(r: TxResult, code: string): string {
  const a = actionOf(r);
  assert.ok(!a.ok && a.code === code, JSON.stringify(a, replacer));
  return a.ok ? '' : a.message;
}

/** Empty blocks a minute apart until the listed market `name` settles (at most 400). */
export function runUntilSettled(h: Harness, name: string): void {
  for (let i = 0; i < 400; i++) {
    const r = h.block([], 60_000);
    if (r.events.some((e) => e.type === 'marketSettled' && e.market === name)) return;
  }
  assert.fail(`${name} did not settle`);
}
