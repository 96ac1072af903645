// A state to stress without a running chain (docs/stress.md, "Generated
// states"): N funded accounts holding leveraged long and short positions, made
// through real signed transactions executed by the real state machine —
// faucet, then a GTC sell resting at the mark and an IOC buy crossing it,
// pair by pair. With the devnet listing (the default) the oracle state holds
// a smile per listed expiry, and a share of the pairs trade options (naked
// and spreads, calls and puts near the money) and the monthly dated future,
// each sized with the state machine's own margin functions so every order
// passes. One seed gives one state (keys, sizes and leverage are drawn from
// it), so its snapshot and appHash are reproducible.

import { addressOf, keyPairFromSeed, sha256 } from '../../crypto/index.ts';
import type { KeyPair } from '../../crypto/index.ts';
import { ZommaError } from '../../lib/errors.ts';
import { divBig } from '../../lib/int.ts';
import { STRESS_ACCOUNTS_MAX, STRESS_GENERATE_BLOCK_TXS } from '../../lib/limits.ts';
import { Prng } from '../../lib/prng.ts';
import { SCALE } from '../../math/index.ts';
import { Exchange, devnetGenesis, equityQuote, quotePerTickLot } from '../../exchange/index.ts';
import type { Block, Genesis, MarketParams, TxResult } from '../../exchange/index.ts';
import type { ListingGenesis } from '../../exchange/genesis.ts';
import { marginForOrder } from '../../exchange/margin.ts';
import { MS_PER_YEAR } from '../../exchange/options/index.ts';
import type { SviParams } from '../../exchange/options/index.ts';
import type { SmileObservation } from '../../exchange/oracle/observation.ts';
import type { Account, ExchangeState, MarketState } from '../../exchange/state.ts';
import { buildTx, placeOrder } from '../../exchange/tx/index.ts';
import type { Action, SignedTx } from '../../exchange/tx/index.ts';

export class StressError extends ZommaError<'BadStressInput'> {
  constructor(message: string) {
    super('BadStressInput', message);
  }
}

const USDC = 1_000_000n;
/**
 * 2026-01-02T07:52Z: eight minutes before an hour, so a 10–15 minute scenario
 * crosses an hourly funding payment and the 08:00 expiry of the nearest daily
 * (a Friday: the nearest weekly too), whose options settle inside the run.
 */
export const GENERATE_GENESIS_TIME_MS = 1_767_340_320_000;
export const GENERATE_BLOCK_MS = 1_000;
/** Index prices of the generated state, quote units per whole base unit. */
export const GENERATE_PRICES: Readonly<Record<string, bigint>> = {
  BTC: 60_000n * USDC,
  ETH: 3_000n * USDC,
};
/** At-the-money implied volatility of the generated smiles, ppm (the devnet's simulated ones). */
export const GENERATE_VOL_PPM: Readonly<Record<string, number>> = { BTC: 600_000, ETH: 800_000 };
export const GENERATE_INSURANCE_QUOTE = 1_000_000n * USDC;
/** Default share of the pairs, percent, that trade options and dated futures instead of perpetuals. */
export const GENERATE_OPTION_SHARE_PCT = 30;
/** Per account: cash drawn from these bands (whole USDC), then a leverage target in 1..max. */
const CASH_BANDS_USDC: readonly [number, number][] = [
  [1_000, 5_000],
  [5_000, 25_000],
  [25_000, 100_000],
];
const LEVERAGE_MAX = 18;
/** Strikes listed within ±7% of the index: at-the-money and two steps either side. */
const GENERATE_STRIKE_RANGE_PPM = 70_000;
/**
 * An options trader commits leverage / this of its equity to initial margin
 * (5%..90%): everyone starts above maintenance (80% of the scenario
 * requirement), the most committed close to it.
 */
const OPTION_BUDGET_DIVISOR = 20n;

export interface GenerateOptions {
  accounts: number;
  seed: number;
  insuranceQuote?: bigint;
  /**
   * Percent of the pairs that trade options and the dated future (default
   * GENERATE_OPTION_SHARE_PCT); 0 builds a perpetuals-only state with no
   * listing, as before options existed.
   */
  optionSharePct?: number;
}

export interface GenerateSummary {
  accounts: number;
  /** Accounts that hold a position (an odd last account, or a pair too small to trade, holds none). */
  withPositions: number;
  /** Σ long lots × mark over live markets (options at their premium). */
  openInterestQuote: bigint;
  /** Accounts holding an option position, and option lots open (long side). */
  optionAccounts: number;
  optionLots: number;
  /** Accounts holding a dated-future position. */
  futureAccounts: number;
  /** Live listed markets (dated futures and options). */
  listedMarkets: number;
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

/**
 * The devnet genesis at GENERATE_GENESIS_TIME_MS with a narrower listing
 * (its templates and margin grid unchanged): per underlying the next daily
 * and the monthly with its dated future, strikes within ±7% of the index
 * (5 per expiry, each a call and a put), because the state machine marks
 * every live option (every block, or once a second with the devnet's mark
 * interval: the same with the stress run's one-second blocks) and revalues
 * every held one under 40 scenarios. `listing` false drops it: a
 * perpetuals-only state.
 */
export function generateGenesis(seed: number, insuranceQuote: bigint, listing = true): Genesis {
  const { listing: devnet, ...genesis } = devnetGenesis([keyFor(seed, 'validator', 0).publicKey]);
  const narrow: ListingGenesis | undefined =
    devnet === undefined
      ? undefined
      : {
          ...devnet,
          schedule: {
            ...devnet.schedule,
            dailies: 1,
            weeklies: 0,
            monthlies: 1,
            underlyings: devnet.schedule.underlyings.map((u) => ({
              ...u,
              strikeRangePpm: GENERATE_STRIKE_RANGE_PPM,
            })),
          },
        };
  return {
    ...genesis,
    ...(listing && narrow !== undefined ? { listing: narrow } : {}),
    genesisTimeMs: GENERATE_GENESIS_TIME_MS,
    insuranceFundQuote: insuranceQuote,
  };
}

/**
 * Raw SVI with at-the-money implied volatility volPpm at an expiry, in the
 * devnet oracle's shape (src/node/oracle.ts simulatedSmiles): total variance
 * v = vol² T, b = v, σ = 0.1, a = v − bσ (so w(0) = v), ρ = −0.3 (puts richer).
 */
export function generatedSmile(volPpm: number, nowMs: number, expiryMs: number): SviParams {
  const variance = divBig(
    BigInt(volPpm) * BigInt(volPpm) * BigInt(expiryMs - nowMs) * SCALE,
    1_000_000_000_000n * BigInt(MS_PER_YEAR),
    'halfEven',
  );
  return {
    a: divBig(variance * 9n, 10n, 'halfEven'),
    b: variance,
    rho: divBig(-3n * SCALE, 10n, 'halfEven'),
    m: 0n,
    sigma: divBig(SCALE, 10n, 'halfEven'),
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

  /** One block; every block carries the index prices, so the oracle stays fresh. */
  run(txs: SignedTx[], smiles?: readonly SmileObservation[]): void {
    const state = this.exchange.state;
    const block: Block = {
      height: state.height + 1,
      timeMs: state.timeMs + GENERATE_BLOCK_MS,
      proposer: state.genesis.validators[0]!.publicKey,
      txs,
      oracle: GENERATE_PRICES,
      ...(smiles === undefined ? {} : { smiles }),
    };
    const result = this.exchange.finalizeBlock(block);
    this.blocks++;
    this.rejected += result.results.filter(refused).length;
  }

  /** Runs txs in blocks of at most STRESS_GENERATE_BLOCK_TXS, keeping each group together. */
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

/** The smiles of every listed option expiry, at the generated volatilities. */
function listedSmiles(state: ExchangeState, nowMs: number): SmileObservation[] {
  const seen = new Set<string>();
  const out: SmileObservation[] = [];
  for (const m of state.markets) {
    if (m.retired || m.instrument.kind !== 'option') continue;
    const underlying = m.params.underlying;
    const key = `${underlying}:${m.expiryMs}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const volPpm = GENERATE_VOL_PPM[underlying] ?? 700_000;
    out.push({ underlying, expiryMs: m.expiryMs, svi: generatedSmile(volPpm, nowMs, m.expiryMs) });
  }
  return out.sort((x, y) =>
    x.underlying < y.underlying ? -1 : x.underlying > y.underlying ? 1 : x.expiryMs - y.expiryMs,
  );
}

/**
 * Builds the state: the first blocks price every underlying (the listing
 * lists its expiries) and publish a smile per option expiry; then every
 * account is funded; then pairs trade — perpetuals at the index, the larger
 * side's leverage cut to the smaller side's capacity (1× to 18×), and, for
 * `optionSharePct` of the pairs, options and the dated future (optionPairs).
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
  const share = options.optionSharePct ?? GENERATE_OPTION_SHARE_PCT;
  if (!Number.isSafeInteger(share) || share < 0 || share > 100) {
    throw new StressError('the option share must be an integer percent in [0, 100]');
  }
  const genesis = generateGenesis(
    seed,
    options.insuranceQuote ?? GENERATE_INSURANCE_QUOTE,
    share > 0,
  );
  const chain = new Chain(genesis);
  const chainId = genesis.chainId;
  const prng = new Prng(seed);
  const traders = drawTraders(prng, accounts, seed);

  chain.run([]);
  if (share > 0)
    chain.run([], listedSmiles(chain.exchange.state, chain.timeMs + GENERATE_BLOCK_MS));
  chain.runAll((nonce) =>
    traders.map((t) => [sign(chainId, t.key, nonce, { kind: 'faucet', amountQuote: t.cashQuote })]),
  );

  const order = prng.shuffle(traders.map((_, i) => i));
  const pairs: [Trader, Trader][] = [];
  for (let i = 0; i + 1 < order.length; i += 2) {
    pairs.push([traders[order[i]!]!, traders[order[i + 1]!]!]);
  }
  const optionPairCount = Math.floor((pairs.length * share) / 100);
  const perpetualPairs = pairs.slice(optionPairCount);
  const markets = chain.exchange.state.markets.filter((m) => !m.listed);
  chain.runAll((nonce) => {
    const groups: SignedTx[][] = [];
    for (const [long, short] of perpetualPairs) {
      const market = markets[prng.chance(3, 5) ? 0 : prng.int(markets.length)]!;
      const group = pairTrade(chainId, nonce, market, pairLots(market, long, short), long, short);
      if (group !== null) groups.push(group);
    }
    return groups;
  });
  if (optionPairCount > 0) optionPairs(chain, prng, pairs.slice(0, optionPairCount));

  return { exchange: chain.exchange, summary: summarize(chain) };
}

function summarize(chain: Chain): GenerateSummary {
  const state = chain.exchange.state;
  let withPositions = 0;
  let optionAccounts = 0;
  let futureAccounts = 0;
  for (const a of state.accounts) {
    if (a.positionCount > 0) withPositions++;
    const held = (kind: string): boolean =>
      a.listed.some((p) => p.sizeLots !== 0 && state.markets[p.market]!.instrument.kind === kind);
    if (held('option')) optionAccounts++;
    if (held('future')) futureAccounts++;
  }
  let openInterestQuote = 0n;
  let optionLots = 0;
  let listedMarkets = 0;
  for (const m of state.markets) {
    if (m.retired) continue;
    openInterestQuote += BigInt(m.longLots) * m.markQuotePerLot;
    if (m.listed) listedMarkets++;
    if (m.instrument.kind === 'option') optionLots += m.longLots;
  }
  return {
    accounts: state.accounts.length,
    withPositions,
    openInterestQuote,
    optionAccounts,
    optionLots,
    futureAccounts,
    listedMarkets,
    rejected: chain.rejected,
    blocks: chain.blocks,
  };
}

/** A GTC sell resting at the mark, then an IOC buy meeting exactly it; null when too small. */
function pairTrade(
  chainId: string,
  nonce: number,
  market: MarketState,
  lots: number,
  long: Trader,
  short: Trader,
): SignedTx[] | null {
  if (lots < market.params.minSizeLots) return null;
  const fields = {
    instrument: market.params.instrument,
    sizeLots: lots,
    priceTicks: market.markTicks,
  };
  // The resting sell arrives first, so the buy right after it meets exactly it.
  return [
    sign(chainId, short.key, nonce, placeOrder({ ...fields, side: 'sell' })),
    sign(chainId, long.key, nonce, placeOrder({ ...fields, side: 'buy', timeInForce: 'IOC' })),
  ];
}

function pairLots(market: MarketState, a: Trader, b: Trader): number {
  const params: MarketParams = market.params;
  const perLot = BigInt(market.markTicks) * quotePerTickLot(params);
  const capacity = (t: Trader): bigint => divBig(t.cashQuote * BigInt(t.leverage), perLot, 'floor');
  const lots = capacity(a) < capacity(b) ? capacity(a) : capacity(b);
  return Number(lots < BigInt(params.maxSizeLots) ? lots : BigInt(params.maxSizeLots));
}

// --- options and dated futures ---------------------------------------------------------

type OptionMarket = MarketState & {
  instrument: { kind: 'option'; strikeQuote: bigint; isCall: boolean };
};

interface Leg {
  readonly market: MarketState;
  /** The trader that buys (the other sells). */
  readonly buyer: Trader;
  readonly seller: Trader;
  readonly lots: number;
}

/**
 * The largest size (≤ cap) whose initial margin, by the state machine's own
 * placement check (marginForOrder), stays within the budget, or within what
 * the account already uses when the order lowers it. Margin grows with size.
 */
function lotsWithin(
  state: ExchangeState,
  account: Account,
  market: MarketState,
  buy: boolean,
  budgetQuote: bigint,
  capLots: number,
): number {
  const fits = (lots: number): boolean => {
    const mm = marginForOrder(state, account, market.index, buy ? lots : 0, buy ? 0 : lots);
    return mm.after <= mm.before || mm.after <= budgetQuote;
  };
  let lo = 0;
  let hi = capLots;
  while (lo < hi) {
    const mid = hi - Math.floor((hi - lo) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function accountOf(state: ExchangeState, t: Trader): Account {
  const address = addressOf(t.key.publicKey);
  const found = state.accounts.find(
    (a) => a.subaccount === 0 && a.address.every((byte, i) => byte === address[i]),
  );
  if (found === undefined) throw new StressError('a funded trader has no account');
  return found;
}

function budget(state: ExchangeState, t: Trader, account: Account): bigint {
  return divBig(equityQuote(state, account) * BigInt(t.leverage), OPTION_BUDGET_DIVISOR, 'floor');
}

/**
 * Live options of an underlying near the money (within one strike step of
 * the index) at two expiries: the nearest, which settles inside a
 * quarter-hour scenario, and the one with a dated future (the monthly), which
 * carries the most vega. Few instruments on purpose: the state machine
 * revalues each held option under 40 scenarios every block.
 */
function nearMoney(state: ExchangeState, underlying: string): OptionMarket[] {
  const step = state.listing!.schedule.underlyings.find((u) => u.underlying === underlying)!;
  const stepQuote = step.strikeStepQuote;
  const index = GENERATE_PRICES[underlying]!;
  const expiries = new Set<number>();
  let nearest = Number.MAX_SAFE_INTEGER;
  for (const m of state.markets) {
    if (m.retired || m.params.underlying !== underlying) continue;
    if (m.instrument.kind === 'future') expiries.add(m.expiryMs);
    if (m.instrument.kind === 'option') nearest = Math.min(nearest, m.expiryMs);
  }
  expiries.add(nearest);
  const out: OptionMarket[] = [];
  for (const m of state.markets) {
    if (m.retired || m.params.underlying !== underlying || m.instrument.kind !== 'option') continue;
    if (m.markTicks <= 0 || !expiries.has(m.expiryMs)) continue;
    const distance = m.instrument.strikeQuote - index;
    if (distance <= stepQuote && -distance <= stepQuote) out.push(m as OptionMarket);
  }
  return out;
}

/** The option one strike further out of the money than `m` at the same expiry, if listed. */
function furtherOut(state: ExchangeState, m: OptionMarket): OptionMarket | undefined {
  const step = state.listing!.schedule.underlyings.find(
    (u) => u.underlying === m.params.underlying,
  )!;
  const strike = m.instrument.strikeQuote + (m.instrument.isCall ? 1n : -1n) * step.strikeStepQuote;
  for (const other of state.markets) {
    if (other.retired || other.instrument.kind !== 'option') continue;
    const o = other as OptionMarket;
    if (
      o.expiryMs === m.expiryMs &&
      o.params.underlying === m.params.underlying &&
      o.instrument.isCall === m.instrument.isCall &&
      o.instrument.strikeQuote === strike &&
      o.markTicks > 0
    ) {
      return o;
    }
  }
  return undefined;
}

/**
 * Option pairs, in two rounds of blocks. Round 1: each pair opens a leg — a
 * writer sells a near-the-money call or put to a buyer (naked), or the same
 * as the first leg of a spread, or the pair trades the monthly dated future.
 * Round 2: each spread's buyer sells the option one strike further out to
 * its writer, so one holds a debit spread and the other a credit spread.
 * Sizes come from the margin check itself, against the state each round
 * starts from, with the writer's and the buyer's budgets.
 */
function optionPairs(chain: Chain, prng: Prng, pairs: readonly [Trader, Trader][]): void {
  const state = chain.exchange.state;
  const chainId = state.genesis.chainId;
  const underlyings = Object.keys(GENERATE_PRICES);
  const spreads: { first: OptionMarket; writer: Trader; buyer: Trader }[] = [];
  const legs: Leg[] = [];
  for (const [a, b] of pairs) {
    const underlying = prng.chance(3, 5)
      ? underlyings[0]!
      : underlyings[prng.int(underlyings.length)]!;
    const kind = prng.int(20);
    if (kind >= 16) {
      const future = state.markets.find(
        (m) => !m.retired && m.instrument.kind === 'future' && m.params.underlying === underlying,
      );
      if (future !== undefined)
        legs.push({ market: future, buyer: a, seller: b, lots: pairLots(future, a, b) });
      continue;
    }
    const near = nearMoney(state, underlying);
    if (near.length === 0) continue;
    const m = prng.pick(near);
    const cap = m.params.maxSizeLots;
    const sellLots = lotsWithin(
      state,
      accountOf(state, b),
      m,
      false,
      budget(state, b, accountOf(state, b)),
      cap,
    );
    const buyLots = lotsWithin(
      state,
      accountOf(state, a),
      m,
      true,
      budget(state, a, accountOf(state, a)),
      cap,
    );
    legs.push({ market: m, buyer: a, seller: b, lots: Math.min(sellLots, buyLots) });
    if (kind >= 9) spreads.push({ first: m, writer: b, buyer: a });
  }
  chain.runAll((nonce) =>
    legs.flatMap((l) => {
      const group = pairTrade(chainId, nonce, l.market, l.lots, l.buyer, l.seller);
      return group === null ? [] : [group];
    }),
  );

  const second: Leg[] = [];
  for (const s of spreads) {
    const writer = accountOf(state, s.writer);
    const buyer = accountOf(state, s.buyer);
    const held = buyer.listed.find((p) => p.market === s.first.index)?.sizeLots ?? 0;
    const wing = furtherOut(state, s.first);
    if (held <= 0 || wing === undefined) continue;
    // The buyer sells the wing (its risk falls), the writer buys it with what premium it has left.
    const sellLots = lotsWithin(state, buyer, wing, false, equityQuote(state, buyer), held);
    const writerBudget = divBig(equityQuote(state, writer) * 19n, 20n, 'floor');
    const buyLots = lotsWithin(state, writer, wing, true, writerBudget, held);
    second.push({
      market: wing,
      buyer: s.writer,
      seller: s.buyer,
      lots: Math.min(sellLots, buyLots),
    });
  }
  chain.runAll((nonce) =>
    second.flatMap((l) => {
      const group = pairTrade(chainId, nonce, l.market, l.lots, l.buyer, l.seller);
      return group === null ? [] : [group];
    }),
  );
}

/** The address of a generated trader: for tests that look an account up. */
export function generatedAddress(seed: number, i: number): Uint8Array {
  return addressOf(keyFor(seed, 'trader', i).publicKey);
}
