// Replays a scenario through the real state machine (docs/stress.md): one
// block per `blockMs` of scenario time, each carrying the path's index price
// for every underlying whose oracle is live, and — when the scenario has
// liquidity and the state is a devnet (the provider is funded by the faucet) —
// one signed batch per perpetual and dated future from a liquidity provider
// that cancels its ladder and quotes a fresh one around the path's price
// (options get none: their liquidations meet the book the state had, then
// deleveraging). Liquidations, deleveraging, insurance cover, funding,
// volatility auctions and the settlement of expiring markets are whatever
// finalizeBlock does; this file only watches its events and the state
// between blocks.
//
// Volatility paths act on the oracle's smiles (volatilitySmiles): each block
// carries, as a trusted feed's smiles (Block.smiles), every smile of a moved
// underlying whose oracle is live (a frozen one publishes nothing) that the
// state held at the start, its implied volatility
// multiplied by the path's multiplier — the smiles option marks and scenario
// margin read. The run counts the smiles it scaled and the option positions
// open, so the report says plainly when there was nothing to act on.

import { addressOf, keyPairFromSeed, sha256 } from '../../crypto/index.ts';
import type { KeyPair } from '../../crypto/index.ts';
import { ZommaError } from '../../lib/errors.ts';
import { divBig } from '../../lib/int.ts';
import { equityQuote, maintenanceMarginQuote } from '../../exchange/index.ts';
import type { Exchange, ExchangeEvent, TxResult } from '../../exchange/index.ts';
import type { SmileFeed } from '../../exchange/oracle/aggregate.ts';
import { smileKey } from '../../exchange/oracle/aggregate.ts';
import type { SmileObservation } from '../../exchange/oracle/observation.ts';
import { indexToTicks } from '../../exchange/mark.ts';
import { optionMark, validateSvi } from '../../exchange/options/index.ts';
import type { SviParams } from '../../exchange/options/index.ts';
import type { Account, MarketState } from '../../exchange/state.ts';
import { sizeIn } from '../../exchange/position.ts';
import { buildTx, placeOrder } from '../../exchange/tx/index.ts';
import type { BatchableAction, SignedTx } from '../../exchange/tx/index.ts';
import { StressError } from './generate.ts';
import type { Liquidity, ResolvedPoint, Scenario } from './scenario.ts';
import { ScenarioError, pathFor, resolvePath, samplePath } from './scenario.ts';

const BPS = 10_000n;

export interface StressOptions {
  /** Check every whole-state invariant (collateral conservation first) after each block. Default true. */
  checkInvariants?: boolean;
  /** Called after each block with the state as finalizeBlock left it (tests watch conservation here). */
  onBlock?: (exchange: Exchange, sample: BlockSample) => void;
}

export interface UnderlyingPath {
  readonly underlying: string;
  /** The resolved points, or null when the scenario leaves this underlying alone. */
  readonly points: readonly ResolvedPoint[] | null;
}

/** One block, as the report keeps it. */
export interface BlockSample {
  readonly height: number;
  /** Scenario time of the block. */
  readonly atMs: number;
  /** Per underlying (state order): the path's price (the market). */
  readonly pathQuote: readonly bigint[];
  /** Per underlying: the index the state machine holds after the block. */
  readonly indexQuote: readonly bigint[];
  readonly volPpm: readonly number[];
  readonly frozen: readonly boolean[];
  /** Per underlying: the oracle published no smile for it (frozen, or its smiles alone). */
  readonly smilesFrozen: readonly boolean[];
  readonly insuranceQuote: bigint;
  /** Accounts liquidated so far in the run. */
  readonly liquidatedAccounts: number;
  readonly liquidatedNotionalQuote: bigint;
  readonly deleveragedNotionalQuote: bigint;
  /** Σ long lots × mark over live option markets: what the open options are worth. */
  readonly optionValueQuote: bigint;
  /** Σ (maintenance − equity) over the option holders below maintenance after the block. */
  readonly marginShortfallQuote: bigint;
  readonly shortfallAccounts: number;
  /** Markets in a call auction after the block. */
  readonly auctionMarkets: number;
}

export interface StressTotals {
  liquidationEvents: number;
  liquidatedLots: number;
  /** Σ fill price × size × k of the liquidations' fills: the book's share. */
  liquidatedNotionalQuote: bigint;
  liquidationFeesQuote: bigint;
  deleverageEvents: number;
  deleveragedLots: number;
  /** size × price × k of deleveraging trades (at the bankruptcy price). */
  deleveragedNotionalQuote: bigint;
  /**
   * What deleveraging beyond the mark took from the counterparties: Σ size ×
   * (how far the bankruptcy price lay past the mark against them) × k. A
   * liquidated account's loss past its equity that the insurance fund did not
   * cover lands there.
   */
  socializedQuote: bigint;
  /** Counterparties closed beyond the mark (who took a share of that loss). */
  socializedCounterparties: Set<number>;
  /**
   * What deleveraging better than the mark gave the counterparties: Σ size ×
   * (how far the bankruptcy price lay past the mark in their favour) × k. A
   * liquidated account's equity left at its bankruptcy price lands there.
   */
  gainedQuote: bigint;
  /** Counterparties closed better than the mark. */
  gainedCounterparties: Set<number>;
  insuranceCoverEvents: number;
  insuranceCoverQuote: bigint;
  fundingPayments: number;
  fundingPaidQuote: bigint;
  /** What payers paid beyond what receivers got (rounding): it goes to the insurance fund. */
  fundingDustQuote: bigint;
  liquidityOrdersRejected: number;
  liquidityOrdersPlaced: number;
}

/** Options in the run: who held them, what liquidation closed, margin shortfall, marks. */
export interface OptionOutcome {
  /** Live option markets at the start. */
  readonly markets: number;
  /** Accounts holding an option position at the start, and option lots open (long side). */
  readonly accounts: number;
  readonly lotsStart: number;
  lotsEnd: number;
  /** Accounts with a liquidation in an option market. */
  readonly liquidatedAccounts: Set<number>;
  /** Their option positions liquidated ('account:market'), each once however many slices it took. */
  readonly liquidatedPositions: Set<string>;
  liquidationEvents: number;
  /** Option lots closed: through the book, and deleveraged. */
  bookLots: number;
  deleveragedLots: number;
  deleverageEvents: number;
  /** Premium value of those lots: book lots at their fill prices, deleveraged at the bankruptcy price. */
  premiumQuote: bigint;
  /** Underlying notional of those lots: lots × forward / lots per base unit. */
  underlyingQuote: bigint;
  /** Largest Σ (maintenance − equity) over option holders below maintenance, after a block. */
  shortfallPeakQuote: bigint;
  shortfallPeakAccounts: number;
  shortfallPeakAtMs: number;
  shortfallEndQuote: bigint;
  /** Σ long lots × mark over live options at the start and at the end. */
  readonly valueStartQuote: bigint;
  valueEndQuote: bigint;
  /** The same at the end, each option marked with its smile as at the start (the vol path undone). */
  valueEndAtStartVolQuote: bigint;
}

/** Volatility auctions (docs/exchange.md, "Volatility auctions") started and ended in the run. */
export interface AuctionOutcome {
  started: number;
  ended: number;
  /** Markets that held one. */
  readonly markets: Set<string>;
  /** Durations of the ended auctions, from the block that started each to the block that uncrossed it. */
  totalMs: number;
  longestMs: number;
  /** Still in an auction after the last block. */
  openAtEnd: number;
}

/** Dated markets that expired and settled in the run. */
export interface SettlementOutcome {
  /** Time from the start to the nearest expiry of a live listed market, or null with none. */
  readonly nearestExpiryMs: number | null;
  markets: number;
  options: number;
  futures: number;
  /** Positions closed at settlement. */
  positions: number;
}

export interface StressRun {
  readonly scenario: Scenario;
  readonly underlyings: readonly UnderlyingPath[];
  readonly startHeight: number;
  readonly startTimeMs: number;
  readonly accounts: number;
  readonly accountsWithPositions: number;
  readonly startInsuranceQuote: bigint;
  readonly samples: readonly BlockSample[];
  readonly totals: StressTotals;
  readonly liquidatedAccounts: ReadonlySet<number>;
  /** Positions liquidated ('account:market'), each once however many slices and blocks it took. */
  readonly liquidatedPositions: ReadonlySet<string>;
  /** Liquidated accounts whose deficit went to deleveraging counterparties. */
  readonly deleveragedAccounts: ReadonlySet<number>;
  readonly counterparties: ReadonlySet<number>;
  readonly liquidity: LiquidityOutcome;
  readonly invariantsChecked: boolean;
  readonly volatility: VolatilityOutcome;
  readonly options: OptionOutcome;
  readonly auctions: AuctionOutcome;
  readonly settlement: SettlementOutcome;
  readonly exchange: Exchange;
}

/** What the volatility path had to act on. */
export interface VolatilityOutcome {
  /** The state has a validator oracle (the only place a smile lives). */
  readonly oracle: boolean;
  /** Smiles the oracle state held at the start (what the path scales). */
  readonly held: number;
  /** Smiles (underlying × expiry) of moved underlyings that the path scaled, most in one block. */
  smiles: number;
  /** Scaled smiles refused by SVI validation (the previous smile stayed), summed over blocks. */
  refused: number;
  /** Live option markets at the end of the run (those settled gone, those listed in the run counted). */
  optionMarkets: number;
  /** Option lots held (long side), at the end of the run. */
  optionLots: number;
}

export interface LiquidityOutcome {
  /** Why there is no provider, or null when there is one. */
  readonly absent: string | null;
  /** The provider's account index per market (−1 when none). */
  readonly accounts: readonly number[];
}

const PPM_SQUARED = 1_000_000_000_000n;

/**
 * Raw SVI with implied volatility multiplied by volPpm / 10^6 at every
 * strike: total variance w scales by the square, so a and b do (ρ, m and σ
 * shape the smile and stay).
 */
export function scaleSvi(svi: SviParams, volPpm: number): SviParams {
  const f = BigInt(volPpm) * BigInt(volPpm);
  return {
    ...svi,
    a: divBig(svi.a * f, PPM_SQUARED, 'halfEven'),
    b: divBig(svi.b * f, PPM_SQUARED, 'halfEven'),
  };
}

/**
 * The smiles a block carries (Block.smiles, a trusted feed's): each smile of
 * the `baseline` (the state's smiles at the start of the run) for an expiry
 * after `timeMs` whose underlying the path moves (volPpm[i] for names[i],
 * null when it leaves it alone or its oracle is frozen), scaled by its multiplier. A scaled smile
 * that fails SVI validation is left out (the state keeps the previous one)
 * and counted as refused. Always scaled from the baseline, never
 * cumulatively; the state machine validates, stores and hashes them.
 */
export function volatilitySmiles(
  baseline: ReadonlyMap<string, SmileFeed>,
  names: readonly string[],
  volPpm: readonly (number | null)[],
  timeMs: number,
): { smiles: SmileObservation[]; refused: number } {
  const smiles: SmileObservation[] = [];
  let refused = 0;
  for (const [key, feed] of baseline) {
    const at = key.lastIndexOf(':');
    const underlying = key.slice(0, at);
    const expiryMs = Number(key.slice(at + 1));
    const i = names.indexOf(underlying);
    const ppm = i < 0 ? null : volPpm[i]!;
    if (ppm === null || expiryMs <= timeMs) continue;
    const svi = scaleSvi(feed.svi, ppm);
    try {
      validateSvi(svi);
    } catch {
      refused++;
      continue;
    }
    smiles.push({ underlying, expiryMs, svi });
  }
  return { smiles, refused };
}

function isOption(m: MarketState): boolean {
  return !m.retired && m.instrument.kind === 'option';
}

function optionValue(exchange: Exchange): bigint {
  let value = 0n;
  for (const m of exchange.state.markets) {
    if (isOption(m)) value += BigInt(m.longLots) * m.markQuotePerLot;
  }
  return value;
}

/** optionValue with every option marked by its start smile at this block's forward and time. */
function optionValueAtStartVol(
  exchange: Exchange,
  baseline: ReadonlyMap<string, SmileFeed>,
): bigint {
  const state = exchange.state;
  let value = 0n;
  for (const m of state.markets) {
    if (!isOption(m) || m.longLots === 0) continue;
    const feed = baseline.get(smileKey(m.params.underlying, m.expiryMs));
    const instrument = m.instrument;
    if (
      feed === undefined ||
      instrument.kind !== 'option' ||
      m.optionMark === null ||
      m.forwardQuote <= 0n
    ) {
      value += BigInt(m.longLots) * m.markQuotePerLot;
      continue;
    }
    const mark = optionMark({
      forwardQuote: m.forwardQuote,
      strikeQuote: instrument.strikeQuote,
      isCall: instrument.isCall,
      nowMs: state.timeMs,
      expiryMs: m.expiryMs,
      rateWad: 0n,
      svi: feed.svi,
    });
    // Rounded to ticks as the state machine marks (listing.ts markOptions).
    value += BigInt(m.longLots) * BigInt(indexToTicks(m, mark.markQuote)) * m.k;
  }
  return value;
}

function holdsOption(exchange: Exchange, a: Account): boolean {
  const markets = exchange.state.markets;
  return a.listed.some((p) => p.sizeLots !== 0 && isOption(markets[p.market]!));
}

/** Σ (maintenance − equity) and the count, over the option holders below maintenance. */
function shortfall(exchange: Exchange, holders: readonly Account[]): [bigint, number] {
  const state = exchange.state;
  let total = 0n;
  let count = 0;
  for (const a of holders) {
    if (a.positionCount === 0) continue;
    const gap = maintenanceMarginQuote(state, a) - equityQuote(state, a);
    if (gap > 0n) {
      total += gap;
      count++;
    }
  }
  return [total, count];
}

interface Provider {
  readonly key: KeyPair;
  readonly market: MarketState;
  readonly underlying: number;
}

function providerKey(instrument: string): KeyPair {
  return keyPairFromSeed(sha256(new TextEncoder().encode(`zomma-stress/liquidity/${instrument}`)));
}

function underlyingsOf(exchange: Exchange): string[] {
  const names: string[] = [];
  for (const m of exchange.state.markets) {
    if (!m.retired && !names.includes(m.params.underlying)) names.push(m.params.underlying);
  }
  return names;
}

function startPrice(exchange: Exchange, underlying: string): bigint {
  const market = exchange.state.marketByUnderlying.get(underlying)![0]!;
  return BigInt(market.indexTicks) * market.params.tickSizeQuote;
}

function ladder(p: Provider, liquidity: Liquidity, priceQuote: bigint): BatchableAction[] {
  const market = p.market;
  const params = market.params;
  const center = divBig(priceQuote, params.tickSizeQuote, 'halfEven');
  const actions: BatchableAction[] = [{ kind: 'cancelAll', instrument: params.instrument }];
  if (center < 1n) return actions;
  for (const bps of liquidity.levelsBps) {
    const bid = divBig(center * (BPS - BigInt(bps)), BPS, 'floor');
    const ask = divBig(center * (BPS + BigInt(bps)), BPS, 'ceil');
    for (const [side, ticks] of [
      ['buy', bid],
      ['sell', ask],
    ] as const) {
      if (ticks < 1n) continue;
      const lots = divBig(liquidity.quotePerLevel, ticks * market.k, 'floor');
      const sizeLots = Number(
        lots < BigInt(params.maxSizeLots) ? lots : BigInt(params.maxSizeLots),
      );
      if (sizeLots < params.minSizeLots) continue;
      actions.push(
        placeOrder({ instrument: params.instrument, side, sizeLots, priceTicks: Number(ticks) }),
      );
    }
  }
  return actions;
}

function emptyTotals(): StressTotals {
  return {
    liquidationEvents: 0,
    liquidatedLots: 0,
    liquidatedNotionalQuote: 0n,
    liquidationFeesQuote: 0n,
    deleverageEvents: 0,
    deleveragedLots: 0,
    deleveragedNotionalQuote: 0n,
    socializedQuote: 0n,
    socializedCounterparties: new Set<number>(),
    gainedQuote: 0n,
    gainedCounterparties: new Set<number>(),
    insuranceCoverEvents: 0,
    insuranceCoverQuote: 0n,
    fundingPayments: 0,
    fundingPaidQuote: 0n,
    fundingDustQuote: 0n,
    liquidityOrdersRejected: 0,
    liquidityOrdersPlaced: 0,
  };
}

function startOptions(exchange: Exchange): { outcome: OptionOutcome; holders: Account[] } {
  const state = exchange.state;
  const holders = state.accounts.filter((a) => holdsOption(exchange, a));
  let markets = 0;
  let lots = 0;
  for (const m of state.markets) {
    if (!isOption(m)) continue;
    markets++;
    lots += m.longLots;
  }
  const value = optionValue(exchange);
  const outcome: OptionOutcome = {
    markets,
    accounts: holders.length,
    lotsStart: lots,
    lotsEnd: lots,
    liquidatedAccounts: new Set<number>(),
    liquidatedPositions: new Set<string>(),
    liquidationEvents: 0,
    bookLots: 0,
    deleveragedLots: 0,
    deleverageEvents: 0,
    premiumQuote: 0n,
    underlyingQuote: 0n,
    shortfallPeakQuote: 0n,
    shortfallPeakAccounts: 0,
    shortfallPeakAtMs: 0,
    shortfallEndQuote: 0n,
    valueStartQuote: value,
    valueEndQuote: value,
    valueEndAtStartVolQuote: value,
  };
  return { outcome, holders };
}

function nearestExpiryMs(exchange: Exchange): number | null {
  const state = exchange.state;
  let nearest: number | null = null;
  for (const m of state.markets) {
    if (m.retired || !m.listed) continue;
    const inMs = m.expiryMs - state.timeMs;
    if (nearest === null || inMs < nearest) nearest = inMs;
  }
  return nearest;
}

/** Runs the scenario on `exchange` (mutated: it ends in the stressed state). */
export function runStress(
  exchange: Exchange,
  scenario: Scenario,
  options: StressOptions = {},
): StressRun {
  const state = exchange.state;
  const check = options.checkInvariants ?? true;
  // The option is read by finalizeBlock at each block.
  (exchange.options as { checkInvariants?: boolean }).checkInvariants = check;
  const names = underlyingsOf(exchange);
  // A path for an underlying the state lacks would move nothing: a typo ('BTCC') must not pass
  // for a quiet scenario.
  for (const named of scenario.paths.keys()) {
    if (named !== '*' && !names.includes(named)) {
      throw new ScenarioError(
        `underlyings.${named}`,
        `the state has no such underlying (it has ${names.join(', ')})`,
      );
    }
  }
  const underlyings: UnderlyingPath[] = names.map((underlying) => {
    const points = pathFor(scenario, underlying);
    if (points === undefined) return { underlying, points: null };
    const field = `underlyings.${scenario.paths.has(underlying) ? underlying : '*'}`;
    return {
      underlying,
      points: resolvePath(points, startPrice(exchange, underlying), field),
    };
  });

  const providers: Provider[] = [];
  let absent: string | null = null;
  if (scenario.liquidity === null) absent = 'the scenario has none';
  else if (!state.genesis.devnet) absent = 'not a devnet state: no faucet to fund a provider';
  else {
    // Options get no ladder: a ladder in basis points of the underlying is no quote for a premium.
    for (const m of state.markets) {
      if (m.retired || m.instrument.kind === 'option') continue;
      providers.push({
        key: providerKey(m.params.instrument),
        market: m,
        underlying: names.indexOf(m.params.underlying),
      });
    }
  }

  const startHeight = state.height;
  const startTimeMs = state.timeMs;
  const baselineSmiles = new Map(state.oracle?.smiles ?? []);
  const started = startOptions(exchange);
  let withPositions = 0;
  for (const a of state.accounts) if (a.positionCount > 0) withPositions++;
  const run = {
    scenario,
    underlyings,
    startHeight,
    startTimeMs,
    accounts: state.accounts.length,
    accountsWithPositions: withPositions,
    startInsuranceQuote: state.insuranceQuote,
    samples: [] as BlockSample[],
    totals: emptyTotals(),
    liquidatedAccounts: new Set<number>(),
    liquidatedPositions: new Set<string>(),
    deleveragedAccounts: new Set<number>(),
    counterparties: new Set<number>(),
    liquidity: { absent, accounts: [] as number[] },
    invariantsChecked: check,
    volatility: {
      oracle: state.oracle !== null,
      held: baselineSmiles.size,
      smiles: 0,
      refused: 0,
      optionMarkets: started.outcome.markets,
      optionLots: 0,
    } satisfies VolatilityOutcome,
    options: started.outcome,
    auctions: {
      started: 0,
      ended: 0,
      markets: new Set<string>(),
      totalMs: 0,
      longestMs: 0,
      openAtEnd: 0,
    } satisfies AuctionOutcome,
    settlement: {
      nearestExpiryMs: nearestExpiryMs(exchange),
      markets: 0,
      options: 0,
      futures: 0,
      positions: 0,
    } satisfies SettlementOutcome,
    exchange,
  };
  const auctionStartMs = new Map<string, number>();

  const blocks = Math.floor(scenario.durationMs / scenario.blockMs);
  const chainId = state.genesis.chainId;
  const proposer = state.genesis.validators[0]!.publicKey;
  for (let b = 1; b <= blocks; b++) {
    const atMs = b * scenario.blockMs;
    const timeMs = startTimeMs + atMs;
    const path = underlyings.map((u) => (u.points === null ? null : samplePath(u.points, atMs)));
    const oracle: Record<string, bigint> = {};
    path.forEach((s, i) => {
      if (s !== null && !s.frozen) oracle[names[i]!] = s.priceQuote;
    });
    const txs: SignedTx[] = [];
    // Each transaction's provider and actions, in the block's order (its fills move positions).
    const batches: [Provider, BatchableAction[]][] = [];
    for (const p of providers) {
      // A dated future that settled takes no more quotes.
      if (p.market.retired) continue;
      const actions: BatchableAction[] = [];
      if (b === 1) actions.push({ kind: 'faucet', amountQuote: state.genesis.faucetQuoteMax });
      const s = path[p.underlying];
      const price =
        s === null || s === undefined ? startPrice(exchange, names[p.underlying]!) : s.priceQuote;
      actions.push(...ladder(p, scenario.liquidity!, price));
      txs.push(
        buildTx({ chainId, key: p.key, nonce: timeMs, action: { kind: 'batch', actions } }).tx,
      );
      batches.push([p, actions]);
    }
    const vol =
      state.oracle === null || baselineSmiles.size === 0
        ? null
        : volatilitySmiles(
            baselineSmiles,
            names,
            // A frozen oracle publishes no smile either (nor one whose
            // smiles alone are frozen): the state keeps the one it has.
            path.map((s) => (s === null || s.frozen || s.smilesFrozen ? null : s.volPpm)),
            timeMs,
          );
    if (vol !== null) {
      run.volatility.smiles = Math.max(run.volatility.smiles, vol.smiles.length);
      run.volatility.refused += vol.refused;
    }
    const sides = BlockSides.before(exchange);
    let result: ReturnType<Exchange['finalizeBlock']>;
    try {
      result = exchange.finalizeBlock({
        height: state.height + 1,
        timeMs,
        proposer,
        txs,
        oracle,
        ...(vol === null || vol.smiles.length === 0 ? {} : { smiles: vol.smiles }),
      });
    } catch (error) {
      // A path the state machine cannot price (an option's mark past its math's domain)
      // stops the run: say at which block and which prices, not just what overflowed.
      if (!(error instanceof ZommaError)) throw error;
      const prices = Object.entries(oracle)
        .map(([u, p]) => `${u} ${p}`)
        .join(', ');
      throw new StressError(
        `block ${b} (${atMs / 1000} s into ${scenario.name}, index quote units: ${prices || 'none'}) failed in the state machine: ${error.code}: ${error.message}`,
      );
    }
    for (const r of result.results) {
      for (const a of r.actions) {
        if (a.kind !== 'placeOrder') continue;
        if (a.ok) run.totals.liquidityOrdersPlaced++;
        else run.totals.liquidityOrdersRejected++;
      }
    }
    if (b === 1) {
      run.liquidity.accounts = providers.map((p) =>
        findAccount(exchange, addressOf(p.key.publicKey)),
      );
    }
    sides.auctionTrades(result.events);
    batches.forEach(([p, actions], i) => {
      sides.batchFills(
        findAccount(exchange, addressOf(p.key.publicKey)),
        actions,
        result.results[i]!,
      );
    });
    tally(exchange, result.events, run, sides);
    watchAuctions(result.events, timeMs, run.auctions, auctionStartMs);
    const [gap, short] = shortfall(exchange, started.holders);
    const o = run.options;
    if (gap > o.shortfallPeakQuote) {
      o.shortfallPeakQuote = gap;
      o.shortfallPeakAccounts = short;
      o.shortfallPeakAtMs = atMs;
    }
    o.shortfallEndQuote = gap;
    let auctionMarkets = 0;
    for (const m of state.markets) if (!m.retired && m.auction?.active === true) auctionMarkets++;
    const sample: BlockSample = {
      height: state.height,
      atMs,
      pathQuote: path.map((s, i) => s?.priceQuote ?? startPrice(exchange, names[i]!)),
      indexQuote: names.map((n) => startPrice(exchange, n)),
      volPpm: path.map((s) => s?.volPpm ?? 1_000_000),
      frozen: path.map((s) => s?.frozen ?? false),
      smilesFrozen: path.map((s) => s !== null && (s.frozen || s.smilesFrozen)),
      insuranceQuote: state.insuranceQuote,
      liquidatedAccounts: run.liquidatedAccounts.size,
      liquidatedNotionalQuote: run.totals.liquidatedNotionalQuote,
      deleveragedNotionalQuote: run.totals.deleveragedNotionalQuote,
      optionValueQuote: optionValue(exchange),
      marginShortfallQuote: gap,
      shortfallAccounts: short,
      auctionMarkets,
    };
    run.samples.push(sample);
    options.onBlock?.(exchange, sample);
  }
  run.auctions.openAtEnd = auctionStartMs.size;
  let optionLots = 0;
  for (const m of state.markets) if (isOption(m)) optionLots += m.longLots;
  run.volatility.optionLots = optionLots;
  run.volatility.optionMarkets = state.markets.filter(isOption).length;
  run.options.lotsEnd = optionLots;
  run.options.valueEndQuote = optionValue(exchange);
  run.options.valueEndAtStartVolQuote = optionValueAtStartVol(exchange, baselineSmiles);
  return run;
}

/**
 * Signed position sizes ('account:market') through one block, so that a
 * deleverage finds the side its account held at that moment: the event does
 * not say it, and whether its price was a loss or a gain to the counterparty
 * depends on it. Taken before the block (O(positions)), then moved by the
 * block's trades as they happened: an auction's uncross and the transactions'
 * fills (before any liquidation), then the liquidations' fills and
 * deleverages in their order. A position an uncross, a fill or a liquidation
 * it made the book for turned within the block reads its new side.
 */
export class BlockSides {
  private readonly sizes = new Map<string, number>();

  static before(exchange: Exchange): BlockSides {
    const sides = new BlockSides();
    for (const m of exchange.state.markets) {
      if (m.retired) continue;
      for (const a of m.holders) {
        const size = sizeIn(a, m);
        if (size !== 0) sides.sizes.set(`${a.index}:${m.params.instrument}`, size);
      }
    }
    return sides;
  }

  size(account: number, market: string): number {
    return this.sizes.get(`${account}:${market}`) ?? 0;
  }

  /** `lots` bought (positive) or sold (negative) by the account. */
  trade(account: number, market: string, lots: number): void {
    const key = `${account}:${market}`;
    this.sizes.set(key, (this.sizes.get(key) ?? 0) + lots);
  }

  /** The block's auction trades: all of them uncross before its transactions. */
  auctionTrades(events: readonly ExchangeEvent[]): void {
    for (const e of events) {
      if (e.type !== 'auctionTrade') continue;
      this.trade(e.buyAccount, e.market, e.sizeLots);
      this.trade(e.sellAccount, e.market, -e.sizeLots);
    }
  }

  /** Fills of the orders one account's batch placed, and of the makers they met. */
  batchFills(account: number, actions: readonly BatchableAction[], result: TxResult): void {
    result.actions.forEach((r, j) => {
      const action = actions[j];
      if (!r.ok || r.order === undefined || action?.kind !== 'placeOrder') return;
      const sign = action.side === 'buy' ? 1 : -1;
      for (const f of r.order.fills) {
        this.trade(account, action.instrument, sign * f.sizeLots);
        this.trade(f.makerAccount, action.instrument, -sign * f.sizeLots);
      }
    });
  }
}

function findAccount(exchange: Exchange, address: Uint8Array): number {
  const found = exchange.state.accounts.find(
    (a) => a.subaccount === 0 && a.address.every((byte, i) => byte === address[i]),
  );
  return found?.index ?? -1;
}

/** Pairs each auction's start with its end by market; durations in block time. */
function watchAuctions(
  events: readonly ExchangeEvent[],
  timeMs: number,
  auctions: AuctionOutcome,
  startMs: Map<string, number>,
): void {
  for (const e of events) {
    if (e.type === 'auctionStarted') {
      auctions.started++;
      auctions.markets.add(e.market);
      if (!startMs.has(e.market)) startMs.set(e.market, timeMs);
    } else if (e.type === 'auctionEnded') {
      auctions.ended++;
      const from = startMs.get(e.market);
      if (from === undefined) continue;
      startMs.delete(e.market);
      auctions.totalMs += timeMs - from;
      auctions.longestMs = Math.max(auctions.longestMs, timeMs - from);
    }
  }
}

/** Underlying notional of option lots: lots × this block's forward (marked or not) / lots per base unit. */
function underlyingQuote(m: MarketState, lots: number): bigint {
  return divBig(BigInt(lots) * m.forwardNowQuote, BigInt(m.params.lotsPerBase), 'floor');
}

function tally(
  exchange: Exchange,
  events: readonly ExchangeEvent[],
  run: {
    totals: StressTotals;
    liquidatedAccounts: Set<number>;
    liquidatedPositions: Set<string>;
    deleveragedAccounts: Set<number>;
    counterparties: Set<number>;
    options: OptionOutcome;
    settlement: SettlementOutcome;
  },
  sides: BlockSides,
): void {
  const t = run.totals;
  const o = run.options;
  const markets = exchange.state.marketByName;
  for (const e of events) {
    switch (e.type) {
      case 'liquidationFill': {
        // What the liquidation's orders traded at: between the mark and the bankruptcy price, or past it (the fund paying the difference).
        const m = markets.get(e.market)!;
        const notional = BigInt(e.sizeLots) * BigInt(e.priceTicks) * m.k;
        t.liquidatedNotionalQuote += notional;
        if (m.instrument.kind === 'option') o.premiumQuote += notional;
        const lots = e.side === 'buy' ? e.sizeLots : -e.sizeLots;
        sides.trade(e.account, e.market, lots);
        sides.trade(e.makerAccount, e.market, -lots);
        break;
      }
      case 'liquidation': {
        const m = markets.get(e.market)!;
        t.liquidationEvents++;
        t.liquidatedLots += e.closedLots;
        t.liquidationFeesQuote += e.feeQuote;
        run.liquidatedAccounts.add(e.account);
        run.liquidatedPositions.add(`${e.account}:${e.market}`);
        if (m.instrument.kind === 'option') {
          o.liquidationEvents++;
          o.liquidatedAccounts.add(e.account);
          o.liquidatedPositions.add(`${e.account}:${e.market}`);
          o.bookLots += e.closedLots;
          o.underlyingQuote += underlyingQuote(m, e.closedLots);
        }
        break;
      }
      case 'deleverage': {
        const m = markets.get(e.market)!;
        const notional = BigInt(e.sizeLots) * BigInt(e.priceTicks) * m.k;
        t.deleverageEvents++;
        t.deleveragedLots += e.sizeLots;
        t.deleveragedNotionalQuote += notional;
        run.deleveragedAccounts.add(e.account);
        run.counterparties.add(e.counterparty);
        // The mark is the block's (set before its liquidations). A long sold to
        // the counterparty above it, a short bought from it below it: its loss.
        // The side is the account's at this deleverage (it closes toward zero).
        const long = sides.size(e.account, e.market) > 0;
        sides.trade(e.account, e.market, long ? -e.sizeLots : e.sizeLots);
        sides.trade(e.counterparty, e.market, long ? e.sizeLots : -e.sizeLots);
        const pastTicks = long ? e.priceTicks - m.markTicks : m.markTicks - e.priceTicks;
        if (pastTicks > 0) {
          t.socializedQuote += BigInt(e.sizeLots) * BigInt(pastTicks) * m.k;
          t.socializedCounterparties.add(e.counterparty);
        } else if (pastTicks < 0) {
          t.gainedQuote += BigInt(e.sizeLots) * BigInt(-pastTicks) * m.k;
          t.gainedCounterparties.add(e.counterparty);
        }
        if (m.instrument.kind === 'option') {
          o.deleverageEvents++;
          o.deleveragedLots += e.sizeLots;
          o.premiumQuote += notional;
          o.underlyingQuote += underlyingQuote(m, e.sizeLots);
        }
        break;
      }
      case 'insuranceCover':
        t.insuranceCoverEvents++;
        t.insuranceCoverQuote += e.amountQuote;
        break;
      case 'funding':
        t.fundingPayments++;
        t.fundingPaidQuote += e.paidQuote;
        t.fundingDustQuote += e.dustQuote;
        break;
      case 'marketSettled': {
        const s = run.settlement;
        s.markets++;
        s.positions += e.positions;
        // The name says what settled: options end in -C or -P.
        if (/-[CP]$/.test(e.market)) s.options++;
        else s.futures++;
        break;
      }
      default:
        break;
    }
  }
}
