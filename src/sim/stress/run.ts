// Replays a scenario through the real state machine (docs/stress.md): one
// block per `blockMs` of scenario time, each carrying the path's index price
// for every underlying whose oracle is live, and — when the scenario has
// liquidity and the state is a devnet (the provider is funded by the faucet) —
// one signed batch per market from a liquidity provider that cancels its
// ladder and quotes a fresh one around the path's price. Liquidations,
// deleveraging, insurance cover and funding are whatever finalizeBlock does;
// this file only watches its events and the state between blocks.
//
// Volatility paths act on the oracle's smiles (applyVolatility): before each
// block, every smile of a moved underlying is the one the state held at the
// start with its implied volatility multiplied by the path's multiplier — the
// smiles option marks and scenario margin read. The run counts the smiles it
// scaled and the option positions open, so the report says plainly when
// there was nothing for the volatility to act on.

import { addressOf, keyPairFromSeed, sha256 } from '../../crypto/index.ts';
import type { KeyPair } from '../../crypto/index.ts';
import { divBig } from '../../lib/int.ts';
import type { Exchange, ExchangeEvent } from '../../exchange/index.ts';
import { parseInstrument } from '../../exchange/instruments/names.ts';
import type { SmileFeed } from '../../exchange/oracle/aggregate.ts';
import { validateSvi } from '../../exchange/options/svi.ts';
import type { SviParams } from '../../exchange/options/svi.ts';
import { buildTx, placeOrder } from '../../exchange/tx/index.ts';
import type { BatchableAction, SignedTx } from '../../exchange/tx/index.ts';
import type { Liquidity, ResolvedPoint, Scenario } from './scenario.ts';
import { pathFor, resolvePath, samplePath } from './scenario.ts';

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
  readonly insuranceQuote: bigint;
  /** Accounts liquidated so far in the run. */
  readonly liquidatedAccounts: number;
  readonly liquidatedNotionalQuote: bigint;
  readonly deleveragedNotionalQuote: bigint;
}

export interface StressTotals {
  liquidationEvents: number;
  liquidatedLots: number;
  /** closedLots × the block's mark × k, summed: the book's share. */
  liquidatedNotionalQuote: bigint;
  liquidationFeesQuote: bigint;
  deleverageEvents: number;
  deleveragedLots: number;
  /** size × price × k of deleveraging trades (at the bankruptcy price). */
  deleveragedNotionalQuote: bigint;
  insuranceCoverEvents: number;
  insuranceCoverQuote: bigint;
  fundingPayments: number;
  fundingPaidQuote: bigint;
  liquidityOrdersRejected: number;
  liquidityOrdersPlaced: number;
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
  /** Liquidated accounts whose deficit went to deleveraging counterparties. */
  readonly deleveragedAccounts: ReadonlySet<number>;
  readonly counterparties: ReadonlySet<number>;
  readonly liquidity: LiquidityOutcome;
  readonly invariantsChecked: boolean;
  readonly volatility: VolatilityOutcome;
  readonly exchange: Exchange;
}

/** What the volatility path had to act on. */
export interface VolatilityOutcome {
  /** The state has a validator oracle (the only place a smile lives). */
  readonly oracle: boolean;
  /** Smiles (underlying × expiry) of moved underlyings that the path scaled. */
  smiles: number;
  /** Scaled smiles refused by SVI validation (the previous smile stayed), summed over blocks. */
  refused: number;
  /** Listed option markets. */
  readonly optionMarkets: number;
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
 * Sets the oracle's smiles for the block about to run: each smile of the
 * `baseline` (the state's smiles at the start of the run) whose underlying
 * the path moves (volPpm[i] for names[i], null when it leaves it alone),
 * scaled by its multiplier. A scaled smile that fails SVI validation leaves
 * the previous one. Returns [smiles set, refused]. The state machine carries
 * smiles from block to block when the block brings no votes, as in a stress
 * run, and hashes them with the oracle state.
 */
export function applyVolatility(
  exchange: Exchange,
  baseline: ReadonlyMap<string, SmileFeed>,
  names: readonly string[],
  volPpm: readonly (number | null)[],
): [number, number] {
  const oracle = exchange.state.oracle;
  if (oracle === null || baseline.size === 0) return [0, 0];
  const smiles = new Map(oracle.smiles);
  let set = 0;
  let refused = 0;
  for (const [key, feed] of baseline) {
    const i = names.indexOf(key.slice(0, key.indexOf(':')));
    const ppm = i < 0 ? null : volPpm[i]!;
    if (ppm === null) continue;
    const svi = scaleSvi(feed.svi, ppm);
    try {
      validateSvi(svi);
    } catch {
      refused++;
      continue;
    }
    smiles.set(key, { svi, updatedMs: exchange.state.timeMs });
    set++;
  }
  exchange.state.oracle = { prices: oracle.prices, smiles };
  return [set, refused];
}

function optionMarkets(exchange: Exchange): number[] {
  const out: number[] = [];
  for (const m of exchange.state.markets) {
    try {
      if (parseInstrument(m.params.instrument).kind === 'option') out.push(m.index);
    } catch {
      // A name outside the listing grammar is not an option the listing made.
    }
  }
  return out;
}

interface Provider {
  readonly key: KeyPair;
  readonly market: number;
  readonly underlying: number;
}

function providerKey(instrument: string): KeyPair {
  return keyPairFromSeed(sha256(new TextEncoder().encode(`zomma-stress/liquidity/${instrument}`)));
}

function underlyingsOf(exchange: Exchange): string[] {
  const names: string[] = [];
  for (const m of exchange.state.markets) {
    if (!names.includes(m.params.underlying)) names.push(m.params.underlying);
  }
  return names;
}

function startPrice(exchange: Exchange, underlying: string): bigint {
  const market = exchange.state.marketByUnderlying.get(underlying)![0]!;
  return BigInt(market.indexTicks) * market.params.tickSizeQuote;
}

function ladder(
  exchange: Exchange,
  p: Provider,
  liquidity: Liquidity,
  priceQuote: bigint,
): BatchableAction[] {
  const market = exchange.state.markets[p.market]!;
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
    insuranceCoverEvents: 0,
    insuranceCoverQuote: 0n,
    fundingPayments: 0,
    fundingPaidQuote: 0n,
    liquidityOrdersRejected: 0,
    liquidityOrdersPlaced: 0,
  };
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
    for (const m of state.markets) {
      providers.push({
        key: providerKey(m.params.instrument),
        market: m.index,
        underlying: names.indexOf(m.params.underlying),
      });
    }
  }

  const startHeight = state.height;
  const startTimeMs = state.timeMs;
  const baselineSmiles = new Map(state.oracle?.smiles ?? []);
  const optionIndices = optionMarkets(exchange);
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
    deleveragedAccounts: new Set<number>(),
    counterparties: new Set<number>(),
    liquidity: { absent, accounts: [] as number[] },
    invariantsChecked: check,
    volatility: {
      oracle: state.oracle !== null,
      smiles: 0,
      refused: 0,
      optionMarkets: optionIndices.length,
      optionLots: 0,
    } satisfies VolatilityOutcome,
    exchange,
  };

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
    for (const p of providers) {
      const actions: BatchableAction[] = [];
      if (b === 1) actions.push({ kind: 'faucet', amountQuote: state.genesis.faucetQuoteMax });
      const s = path[p.underlying];
      const price =
        s === null || s === undefined ? startPrice(exchange, names[p.underlying]!) : s.priceQuote;
      actions.push(...ladder(exchange, p, scenario.liquidity!, price));
      txs.push(
        buildTx({ chainId, key: p.key, nonce: timeMs, action: { kind: 'batch', actions } }).tx,
      );
    }
    const [smiles, refused] = applyVolatility(
      exchange,
      baselineSmiles,
      names,
      path.map((s) => s?.volPpm ?? null),
    );
    run.volatility.smiles = Math.max(run.volatility.smiles, smiles);
    run.volatility.refused += refused;
    const result = exchange.finalizeBlock({
      height: state.height + 1,
      timeMs,
      proposer,
      txs,
      oracle,
    });
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
    tally(exchange, result.events, run);
    const sample: BlockSample = {
      height: state.height,
      atMs,
      pathQuote: path.map((s, i) => s?.priceQuote ?? startPrice(exchange, names[i]!)),
      indexQuote: names.map((n) => startPrice(exchange, n)),
      volPpm: path.map((s) => s?.volPpm ?? 1_000_000),
      frozen: path.map((s) => s?.frozen ?? false),
      insuranceQuote: state.insuranceQuote,
      liquidatedAccounts: run.liquidatedAccounts.size,
      liquidatedNotionalQuote: run.totals.liquidatedNotionalQuote,
      deleveragedNotionalQuote: run.totals.deleveragedNotionalQuote,
    };
    run.samples.push(sample);
    options.onBlock?.(exchange, sample);
  }
  run.volatility.optionLots = optionIndices.reduce((n, i) => n + state.markets[i]!.longLots, 0);
  return run;
}

function findAccount(exchange: Exchange, address: Uint8Array): number {
  const found = exchange.state.accounts.find(
    (a) => a.subaccount === 0 && a.address.every((byte, i) => byte === address[i]),
  );
  return found?.index ?? -1;
}

function tally(
  exchange: Exchange,
  events: readonly ExchangeEvent[],
  run: {
    totals: StressTotals;
    liquidatedAccounts: Set<number>;
    deleveragedAccounts: Set<number>;
    counterparties: Set<number>;
  },
): void {
  const t = run.totals;
  const markets = exchange.state.marketByName;
  for (const e of events) {
    switch (e.type) {
      case 'liquidation': {
        const m = markets.get(e.market)!;
        t.liquidationEvents++;
        t.liquidatedLots += e.closedLots;
        t.liquidatedNotionalQuote += BigInt(e.closedLots) * m.markQuotePerLot;
        t.liquidationFeesQuote += e.feeQuote;
        run.liquidatedAccounts.add(e.account);
        break;
      }
      case 'deleverage': {
        const m = markets.get(e.market)!;
        t.deleverageEvents++;
        t.deleveragedLots += e.sizeLots;
        t.deleveragedNotionalQuote += BigInt(e.sizeLots) * BigInt(e.priceTicks) * m.k;
        run.deleveragedAccounts.add(e.account);
        run.counterparties.add(e.counterparty);
        break;
      }
      case 'insuranceCover':
        t.insuranceCoverEvents++;
        t.insuranceCoverQuote += e.amountQuote;
        break;
      case 'funding':
        t.fundingPayments++;
        t.fundingPaidQuote += e.paidQuote;
        break;
      default:
        break;
    }
  }
}
