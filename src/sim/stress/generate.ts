// A state to stress without a running chain (docs/stress.md, "Generated
// states"): N funded accounts holding leveraged long and short positions, made
// through real signed transactions executed by the real state machine —
// faucet, then a GTC sell resting at the index and an IOC buy crossing it,
// pair by pair. One seed gives one state (keys, sizes and leverage are drawn
// from it), so its snapshot and appHash are reproducible.

import { addressOf, keyPairFromSeed, sha256 } from '../../crypto/index.ts';
import type { KeyPair } from '../../crypto/index.ts';
import { ZommaError } from '../../lib/errors.ts';
import { divBig } from '../../lib/int.ts';
import { STRESS_ACCOUNTS_MAX, STRESS_GENERATE_BLOCK_TXS } from '../../lib/limits.ts';
import { Prng } from '../../lib/prng.ts';
import { Exchange, devnetGenesis, quotePerTickLot } from '../../exchange/index.ts';
import type { Block, Genesis, MarketParams, TxResult } from '../../exchange/index.ts';
import { buildTx, placeOrder } from '../../exchange/tx/index.ts';
import type { Action, SignedTx } from '../../exchange/tx/index.ts';

export class StressError extends ZommaError<'BadStressInput'> {
  constructor(message: string) {
    super('BadStressInput', message);
  }
}

const USDC = 1_000_000n;
/** Ten minutes before 2026-01-01T00:00Z: a 15-minute scenario crosses an hourly funding payment. */
export const GENERATE_GENESIS_TIME_MS = 1_767_225_600_000 - 600_000;
export const GENERATE_BLOCK_MS = 1_000;
/** Index prices of the generated state, quote units per whole base unit. */
export const GENERATE_PRICES: Readonly<Record<string, bigint>> = {
  BTC: 60_000n * USDC,
  ETH: 3_000n * USDC,
};
export const GENERATE_INSURANCE_QUOTE = 1_000_000n * USDC;
/** Per account: cash drawn from these bands (whole USDC), then a leverage target in 1..max. */
const CASH_BANDS_USDC: readonly [number, number][] = [
  [1_000, 5_000],
  [5_000, 25_000],
  [25_000, 100_000],
];
const LEVERAGE_MAX = 18;

export interface GenerateOptions {
  accounts: number;
  seed: number;
  insuranceQuote?: bigint;
}

export interface GenerateSummary {
  accounts: number;
  /** Accounts that hold a position (an odd last account, or a pair too small to trade, holds none). */
  withPositions: number;
  openInterestQuote: bigint;
  /** Transactions the state machine refused or rejected an action of: 0 when the generator is right. */
  rejected: number;
  blocks: number;
}

interface Trader {
  readonly key: KeyPair;
  readonly cashQuote: bigint;
  readonly leverage: number;
}

function keyFor(seed: number, role: string, i: number): KeyPair {
  return keyPairFromSeed(sha256(new TextEncoder().encode(`zomma-stress/${seed}/${role}/${i}`)));
}

export function generateGenesis(seed: number, insuranceQuote: bigint): Genesis {
  // Stress states are perpetuals only: no dated listing.
  const { listing: _listing, ...genesis } = devnetGenesis([keyFor(seed, 'validator', 0).publicKey]);
  return {
    ...genesis,
    genesisTimeMs: GENERATE_GENESIS_TIME_MS,
    insuranceFundQuote: insuranceQuote,
  };
}

class Chain {
  readonly exchange: Exchange;
  rejected = 0;
  blocks = 0;

  constructor(genesis: Genesis) {
    this.exchange = new Exchange(genesis);
  }

  get timeMs(): number {
    return this.exchange.state.timeMs;
  }

  run(txs: SignedTx[], oracle: Block['oracle'] = {}): void {
    const state = this.exchange.state;
    const result = this.exchange.finalizeBlock({
      height: state.height + 1,
      timeMs: state.timeMs + GENERATE_BLOCK_MS,
      proposer: state.genesis.validators[0]!.publicKey,
      txs,
      oracle,
    });
    this.blocks++;
    this.rejected += result.results.filter(refused).length;
  }

  /** Runs txs in blocks of at most STRESS_GENERATE_BLOCK_TXS, keeping each group of `unit` together. */
  runAll(build: (nextTimeMs: number) => SignedTx[][]): void {
    const groups = build(this.timeMs + GENERATE_BLOCK_MS);
    let block: SignedTx[] = [];
    for (const group of groups) {
      if (block.length + group.length > STRESS_GENERATE_BLOCK_TXS) {
        this.run(block);
        block = [];
      }
      block.push(...group);
    }
    if (block.length > 0) this.run(block);
  }
}

function refused(r: TxResult): boolean {
  return !r.ok || r.actions.some((a) => !a.ok);
}

function sign(chainId: string, key: KeyPair, nonce: number, action: Action): SignedTx {
  return buildTx({ chainId, key, nonce, action }).tx;
}

function drawTraders(prng: Prng, count: number, seed: number): Trader[] {
  const traders: Trader[] = [];
  for (let i = 0; i < count; i++) {
    const [lo, hi] = prng.pick(CASH_BANDS_USDC);
    traders.push({
      key: keyFor(seed, 'trader', i),
      cashQuote: BigInt(prng.between(lo, hi)) * USDC,
      leverage: prng.between(1, LEVERAGE_MAX),
    });
  }
  return traders;
}

/**
 * Builds the state: block 1 prices every underlying and funds every account;
 * then pairs of accounts trade at the index, the larger side's leverage cut
 * to the smaller side's capacity (so leverage varies from 1× to 18×).
 */
export function generateState(options: GenerateOptions): {
  exchange: Exchange;
  summary: GenerateSummary;
} {
  const { accounts, seed } = options;
  if (!Number.isSafeInteger(accounts) || accounts < 2 || accounts > STRESS_ACCOUNTS_MAX) {
    throw new StressError(`accounts must be an integer in [2, ${STRESS_ACCOUNTS_MAX}]`);
  }
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new StressError('seed must be a non-negative integer');
  }
  const genesis = generateGenesis(seed, options.insuranceQuote ?? GENERATE_INSURANCE_QUOTE);
  const chain = new Chain(genesis);
  const chainId = genesis.chainId;
  const prng = new Prng(seed);
  const traders = drawTraders(prng, accounts, seed);

  chain.run([], GENERATE_PRICES);
  chain.runAll((nonce) =>
    traders.map((t) => [sign(chainId, t.key, nonce, { kind: 'faucet', amountQuote: t.cashQuote })]),
  );

  const order = prng.shuffle(traders.map((_, i) => i));
  const markets = chain.exchange.state.markets;
  chain.runAll((nonce) => {
    const groups: SignedTx[][] = [];
    for (let i = 0; i + 1 < order.length; i += 2) {
      const long = traders[order[i]!]!;
      const short = traders[order[i + 1]!]!;
      const market = markets[prng.chance(3, 5) ? 0 : prng.int(markets.length)]!;
      const lots = pairLots(market.params, market.indexTicks, long, short);
      if (lots < market.params.minSizeLots) continue;
      const fields = {
        instrument: market.params.instrument,
        sizeLots: lots,
        priceTicks: market.indexTicks,
      };
      // The resting sell arrives first, so the buy right after it meets exactly it.
      groups.push([
        sign(chainId, short.key, nonce, placeOrder({ ...fields, side: 'sell' })),
        sign(chainId, long.key, nonce, placeOrder({ ...fields, side: 'buy', timeInForce: 'IOC' })),
      ]);
    }
    return groups;
  });

  const state = chain.exchange.state;
  let withPositions = 0;
  for (const a of state.accounts) if (a.positionCount > 0) withPositions++;
  let openInterestQuote = 0n;
  for (const m of state.markets) openInterestQuote += BigInt(m.longLots) * m.markQuotePerLot;
  return {
    exchange: chain.exchange,
    summary: {
      accounts: state.accounts.length,
      withPositions,
      openInterestQuote,
      rejected: chain.rejected,
      blocks: chain.blocks,
    },
  };
}

function pairLots(params: MarketParams, priceTicks: number, a: Trader, b: Trader): number {
  const perLot = BigInt(priceTicks) * quotePerTickLot(params);
  const capacity = (t: Trader): bigint => divBig(t.cashQuote * BigInt(t.leverage), perLot, 'floor');
  const lots = capacity(a) < capacity(b) ? capacity(a) : capacity(b);
  return Number(lots < BigInt(params.maxSizeLots) ? lots : BigInt(params.maxSizeLots));
}

/** The address of a generated trader: for tests that look an account up. */
export function generatedAddress(seed: number, i: number): Uint8Array {
  return addressOf(keyFor(seed, 'trader', i).publicKey);
}
