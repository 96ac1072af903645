// A stress run as a report (docs/stress.md, "Reading the report"): a summary,
// a time series thinned to STRESS_SERIES_POINTS_MAX blocks, a hash over the
// canonical bytes of everything (same state and scenario → same hash), and
// three renderings: a table, JSON, and an HTML page with inline SVG charts.

import { Writer } from '../../codec/wire.ts';
import { sha256 } from '../../crypto/index.ts';
import { assert } from '../../lib/assert.ts';
import { divBig } from '../../lib/int.ts';
import { STRESS_SERIES_POINTS_MAX } from '../../lib/limits.ts';
import type { BlockSample, StressRun } from './run.ts';
import { sizeIn } from '../../exchange/position.ts';

/** What the volatility path acted on, in words that do not claim more than happened. */
function volatilityNote(v: StressRun['volatility']): string {
  if (!v.oracle)
    return 'no validator oracle in this state, so no smile to scale: the path is recorded only';
  if (v.held === 0) {
    return 'no smile in the oracle state (no option market is listed): the path is recorded, nothing to act on';
  }
  if (v.smiles === 0) {
    // A frozen oracle publishes no smile, and a smile past its expiry is not sent.
    return `none of the ${v.held} smile(s) in the oracle state was published (the path's underlyings frozen or not moved, or their expiries past): the path is recorded only`;
  }
  const scaled = `scaled ${v.smiles} smile(s) by the path's multiplier${v.refused > 0 ? ` (${v.refused} scalings refused by SVI validation)` : ''}`;
  return v.optionLots === 0
    ? `${scaled}; no option position is open, so no option mark or margin moved`
    : `${scaled}; ${v.optionLots} option lots open in ${v.optionMarkets} option markets`;
}

export interface UnderlyingSummary {
  underlying: string;
  moved: boolean;
  startQuote: bigint;
  minQuote: bigint;
  maxQuote: bigint;
  endQuote: bigint;
  /** Blocks in which the oracle published nothing for it. */
  frozenBlocks: number;
  /** Blocks in which it published no smile for it (those frozen included). */
  smilesFrozenBlocks: number;
  volPpmMax: number;
}

export interface StressReport {
  scenario: string;
  description: string;
  blocks: number;
  blockMs: number;
  startHeight: number;
  endHeight: number;
  startTimeMs: number;
  accounts: number;
  accountsWithPositions: number;
  underlyings: UnderlyingSummary[];
  liquidations: {
    accounts: number;
    /** Positions liquidated (account × market), each once however many slices it took. */
    positions: number;
    /** 'liquidation' events: one per slice and block, those an auction stopped included. */
    events: number;
    lots: number;
    notionalQuote: bigint;
    feesQuote: bigint;
  };
  deleveraging: {
    events: number;
    accounts: number;
    counterparties: number;
    lots: number;
    notionalQuote: bigint;
    /** Losses past the liquidated accounts' equity passed to counterparties: closed beyond the mark. */
    socializedQuote: bigint;
    socializedCounterparties: number;
    /** What counterparties closed better than the mark gained: the liquidated accounts' equity left. */
    gainedQuote: bigint;
    gainedCounterparties: number;
  };
  insurance: { startQuote: bigint; endQuote: bigint; minQuote: bigint; coverQuote: bigint };
  badDebt: {
    /** Losses past accounts' equity that the insurance fund paid. */
    coveredQuote: bigint;
    /** Uncovered deficits at the end (withdrawals pause while these and the other open losses exceed the fund). */
    deficitQuote: bigint;
    deficitAccounts: number;
    /** Negative equity of accounts still holding positions at the end (cut by per-block caps). */
    openNegativeEquityQuote: bigint;
  };
  /** dustQuote: paid beyond what receivers got, to the insurance fund. */
  funding: { payments: number; paidQuote: bigint; dustQuote: bigint };
  liquidity: {
    provider: string;
    ordersPlaced: number;
    ordersRejected: number;
    providerLiquidated: boolean;
  };
  options: {
    /** Live option markets and accounts holding an option position at the start. */
    markets: number;
    accounts: number;
    lotsStart: number;
    lotsEnd: number;
    /** Accounts with a liquidation in an option market, their option positions liquidated. */
    liquidatedAccounts: number;
    liquidatedPositions: number;
    liquidationEvents: number;
    bookLots: number;
    deleveragedLots: number;
    /** Premium value closed (book at the fill prices, deleveraged at the bankruptcy price). */
    premiumQuote: bigint;
    /** Underlying notional closed: lots × forward / lots per base unit. */
    underlyingQuote: bigint;
    /** Σ (maintenance − equity) over option holders still below maintenance after a block: its peak, and at the end. */
    shortfallPeakQuote: bigint;
    shortfallPeakAccounts: number;
    shortfallPeakAtMs: number;
    shortfallEndQuote: bigint;
    /** Open options at their marks: start, end, and the end with the start smiles (the vol path undone). */
    valueStartQuote: bigint;
    valueEndQuote: bigint;
    valueEndAtStartVolQuote: bigint;
  };
  auctions: {
    started: number;
    ended: number;
    markets: number;
    totalMs: number;
    longestMs: number;
    openAtEnd: number;
  };
  settlement: {
    /** Time from the start to the nearest expiry, or −1 with no dated market. */
    nearestExpiryMs: number;
    markets: number;
    options: number;
    futures: number;
    positions: number;
  };
  volatility: {
    /** A smile was scaled. */
    applied: boolean;
    /** Smiles the oracle state held at the start; the most scaled in one block. */
    held: number;
    smiles: number;
    refused: number;
    optionMarkets: number;
    optionLots: number;
    note: string;
  };
  invariantsChecked: boolean;
  appHash: string;
  series: BlockSample[];
  reportHash: string;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/** Evenly spaced blocks, always the last: at most STRESS_SERIES_POINTS_MAX. */
export function thin<T>(items: readonly T[], max = STRESS_SERIES_POINTS_MAX): T[] {
  if (items.length <= max) return [...items];
  const out: T[] = [];
  const step = Math.ceil(items.length / (max - 1));
  for (let i = 0; i < items.length - 1; i += step) out.push(items[i]!);
  out.push(items[items.length - 1]!);
  return out;
}

function minMax(xs: readonly bigint[]): [bigint, bigint] {
  let lo = xs[0]!;
  let hi = xs[0]!;
  for (const x of xs) {
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  return [lo, hi];
}

export function buildReport(run: StressRun): StressReport {
  const state = run.exchange.state;
  const samples = run.samples;
  const last = samples[samples.length - 1]!;
  const underlyings = run.underlyings.map((u, i): UnderlyingSummary => {
    const prices = samples.map((s) => s.pathQuote[i]!);
    const startQuote = u.points?.[0]?.priceQuote ?? prices[0]!;
    // The start is on the path: a path falling from its first block has its high there.
    const [minQuote, maxQuote] = minMax([startQuote, ...prices]);
    return {
      underlying: u.underlying,
      moved: u.points !== null,
      startQuote,
      minQuote,
      maxQuote,
      endQuote: last.pathQuote[i]!,
      frozenBlocks: samples.filter((s) => s.frozen[i]).length,
      smilesFrozenBlocks: samples.filter((s) => s.smilesFrozen[i]).length,
      volPpmMax: Math.max(...samples.map((s) => s.volPpm[i]!)),
    };
  });
  let deficitQuote = 0n;
  for (const a of state.deficits) deficitQuote -= a.cashQuote;
  let openNegativeEquityQuote = 0n;
  for (const a of state.accounts) {
    if (a.positionCount === 0) continue;
    let equity = a.cashQuote;
    for (const m of state.markets)
      if (!m.retired) equity += BigInt(sizeIn(a, m)) * m.markQuotePerLot;
    if (equity < 0n) openNegativeEquityQuote -= equity;
  }
  const t = run.totals;
  const o = run.options;
  const insuranceMin = minMax([
    run.startInsuranceQuote,
    ...samples.map((s) => s.insuranceQuote),
  ])[0];
  const report: Omit<StressReport, 'reportHash'> = {
    scenario: run.scenario.name,
    description: run.scenario.description,
    blocks: samples.length,
    blockMs: run.scenario.blockMs,
    startHeight: run.startHeight,
    endHeight: state.height,
    startTimeMs: run.startTimeMs,
    accounts: run.accounts,
    accountsWithPositions: run.accountsWithPositions,
    underlyings,
    liquidations: {
      accounts: run.liquidatedAccounts.size,
      positions: run.liquidatedPositions.size,
      events: t.liquidationEvents,
      lots: t.liquidatedLots,
      notionalQuote: t.liquidatedNotionalQuote,
      feesQuote: t.liquidationFeesQuote,
    },
    deleveraging: {
      events: t.deleverageEvents,
      accounts: run.deleveragedAccounts.size,
      counterparties: run.counterparties.size,
      lots: t.deleveragedLots,
      notionalQuote: t.deleveragedNotionalQuote,
      socializedQuote: t.socializedQuote,
      socializedCounterparties: t.socializedCounterparties.size,
      gainedQuote: t.gainedQuote,
      gainedCounterparties: t.gainedCounterparties.size,
    },
    insurance: {
      startQuote: run.startInsuranceQuote,
      endQuote: state.insuranceQuote,
      minQuote: insuranceMin,
      coverQuote: t.insuranceCoverQuote,
    },
    badDebt: {
      coveredQuote: t.insuranceCoverQuote,
      deficitQuote,
      deficitAccounts: state.deficits.size,
      openNegativeEquityQuote,
    },
    funding: {
      payments: t.fundingPayments,
      paidQuote: t.fundingPaidQuote,
      dustQuote: t.fundingDustQuote,
    },
    liquidity: {
      provider:
        run.liquidity.absent === null
          ? `ladder ${run.scenario.liquidity!.levelsBps.join('/')} bps, ${usd(run.scenario.liquidity!.quotePerLevel)} per level and side`
          : `none (${run.liquidity.absent})`,
      ordersPlaced: t.liquidityOrdersPlaced,
      ordersRejected: t.liquidityOrdersRejected,
      providerLiquidated: run.liquidity.accounts.some((i) => run.liquidatedAccounts.has(i)),
    },
    options: {
      markets: o.markets,
      accounts: o.accounts,
      lotsStart: o.lotsStart,
      lotsEnd: o.lotsEnd,
      liquidatedAccounts: o.liquidatedAccounts.size,
      liquidatedPositions: o.liquidatedPositions.size,
      liquidationEvents: o.liquidationEvents,
      bookLots: o.bookLots,
      deleveragedLots: o.deleveragedLots,
      premiumQuote: o.premiumQuote,
      underlyingQuote: o.underlyingQuote,
      shortfallPeakQuote: o.shortfallPeakQuote,
      shortfallPeakAccounts: o.shortfallPeakAccounts,
      shortfallPeakAtMs: o.shortfallPeakAtMs,
      shortfallEndQuote: o.shortfallEndQuote,
      valueStartQuote: o.valueStartQuote,
      valueEndQuote: o.valueEndQuote,
      valueEndAtStartVolQuote: o.valueEndAtStartVolQuote,
    },
    auctions: {
      started: run.auctions.started,
      ended: run.auctions.ended,
      markets: run.auctions.markets.size,
      totalMs: run.auctions.totalMs,
      longestMs: run.auctions.longestMs,
      openAtEnd: run.auctions.openAtEnd,
    },
    settlement: {
      nearestExpiryMs: run.settlement.nearestExpiryMs ?? -1,
      markets: run.settlement.markets,
      options: run.settlement.options,
      futures: run.settlement.futures,
      positions: run.settlement.positions,
    },
    volatility: {
      applied: run.volatility.smiles > 0,
      held: run.volatility.held,
      smiles: run.volatility.smiles,
      refused: run.volatility.refused,
      optionMarkets: run.volatility.optionMarkets,
      optionLots: run.volatility.optionLots,
      note: volatilityNote(run.volatility),
    },
    invariantsChecked: run.invariantsChecked,
    appHash: hex(run.exchange.appHash),
    series: [...samples],
  };
  return { ...report, reportHash: hex(sha256(encodeReport(report))) };
}

/** Canonical bytes of a report (without its hash): what reportHash is taken over. */
export function encodeReport(r: Omit<StressReport, 'reportHash'>): Uint8Array {
  const w = new Writer(1 << 12);
  w.string(r.scenario, 64).string(r.description, 4_000);
  w.uvarint(r.blocks).uvarint(r.blockMs).uvarint(r.startHeight).uvarint(r.endHeight);
  w.uvarint(r.startTimeMs).uvarint(r.accounts).uvarint(r.accountsWithPositions);
  w.uvarint(r.underlyings.length);
  for (const u of r.underlyings) {
    w.string(u.underlying, 16).bool(u.moved);
    w.uvarintBig(u.startQuote).uvarintBig(u.minQuote).uvarintBig(u.maxQuote).uvarintBig(u.endQuote);
    w.uvarint(u.frozenBlocks).uvarint(u.smilesFrozenBlocks).uvarint(u.volPpmMax);
  }
  const l = r.liquidations;
  w.uvarint(l.accounts)
    .uvarint(l.positions)
    .uvarint(l.events)
    .uvarint(l.lots)
    .uvarintBig(l.notionalQuote)
    .uvarintBig(l.feesQuote);
  const d = r.deleveraging;
  w.uvarint(d.events)
    .uvarint(d.accounts)
    .uvarint(d.counterparties)
    .uvarint(d.lots)
    .uvarintBig(d.notionalQuote)
    .uvarintBig(d.socializedQuote)
    .uvarint(d.socializedCounterparties)
    .uvarintBig(d.gainedQuote)
    .uvarint(d.gainedCounterparties);
  const i = r.insurance;
  w.ivarintBig(i.startQuote).ivarintBig(i.endQuote).ivarintBig(i.minQuote).uvarintBig(i.coverQuote);
  const b = r.badDebt;
  w.uvarintBig(b.coveredQuote).uvarintBig(b.deficitQuote).uvarint(b.deficitAccounts);
  w.uvarintBig(b.openNegativeEquityQuote);
  w.uvarint(r.funding.payments).uvarintBig(r.funding.paidQuote).uvarintBig(r.funding.dustQuote);
  w.string(r.liquidity.provider, 4_000).uvarint(r.liquidity.ordersPlaced);
  w.uvarint(r.liquidity.ordersRejected).bool(r.liquidity.providerLiquidated);
  const o = r.options;
  w.uvarint(o.markets).uvarint(o.accounts).uvarint(o.lotsStart).uvarint(o.lotsEnd);
  w.uvarint(o.liquidatedAccounts).uvarint(o.liquidatedPositions).uvarint(o.liquidationEvents);
  w.uvarint(o.bookLots);
  w.uvarint(o.deleveragedLots).uvarintBig(o.premiumQuote).uvarintBig(o.underlyingQuote);
  w.uvarintBig(o.shortfallPeakQuote).uvarint(o.shortfallPeakAccounts).uvarint(o.shortfallPeakAtMs);
  w.uvarintBig(o.shortfallEndQuote).uvarintBig(o.valueStartQuote).uvarintBig(o.valueEndQuote);
  w.uvarintBig(o.valueEndAtStartVolQuote);
  const a = r.auctions;
  w.uvarint(a.started).uvarint(a.ended).uvarint(a.markets).uvarint(a.totalMs);
  w.uvarint(a.longestMs).uvarint(a.openAtEnd);
  const st = r.settlement;
  w.ivarint(st.nearestExpiryMs).uvarint(st.markets).uvarint(st.options).uvarint(st.futures);
  w.uvarint(st.positions);
  const v = r.volatility;
  w.bool(v.applied).uvarint(v.held).uvarint(v.smiles).uvarint(v.refused).uvarint(v.optionMarkets);
  w.uvarint(v.optionLots).bool(r.invariantsChecked).string(r.appHash, 64);
  w.uvarint(r.series.length);
  for (const s of r.series) {
    w.uvarint(s.height).uvarint(s.atMs).ivarintBig(s.insuranceQuote).uvarint(s.liquidatedAccounts);
    w.uvarintBig(s.liquidatedNotionalQuote).uvarintBig(s.deleveragedNotionalQuote);
    w.uvarintBig(s.optionValueQuote).uvarintBig(s.marginShortfallQuote);
    w.uvarint(s.shortfallAccounts).uvarint(s.auctionMarkets);
    for (let k = 0; k < s.pathQuote.length; k++) {
      w.uvarintBig(s.pathQuote[k]!)
        .uvarintBig(s.indexQuote[k]!)
        .uvarint(s.volPpm[k]!)
        .bool(s.frozen[k]!)
        .bool(s.smilesFrozen[k]!);
    }
  }
  return w.finish();
}

// --- renderings ----------------------------------------------------------------------

const QUOTE_PER_CENT = 10_000n;

/** Cents as dollars, thousands separated: 123456 → "$1,234.56". */
function dollars(cents: bigint): string {
  const negative = cents < 0n;
  const abs = negative ? -cents : cents;
  const whole = (abs / 100n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const fraction = (abs % 100n).toString().padStart(2, '0');
  return `${negative ? '-' : ''}$${whole}.${fraction}`;
}

/** Quote units as dollars with cents (cut toward zero), thousands separated: 1234567890 → "$1,234.56". */
export function usd(quote: bigint): string {
  return dollars(cents(quote));
}

function cents(quote: bigint): bigint {
  return divBig(quote, QUOTE_PER_CENT, 'trunc');
}

/**
 * Cents of parts that add up to their sum's cents: the sum is rounded down
 * once, at each running total, and a part is the step between two of them.
 * Cut one by one, parts a fraction of a cent each add up to a cent or more
 * less than their total; this way each part is within a cent of its exact
 * value and the parts shown add up to the total shown.
 */
function centsAddingUp(parts: readonly bigint[]): bigint[] {
  let runningQuote = 0n;
  let before = 0n;
  return parts.map((quote) => {
    runningQuote += quote;
    const cents = divBig(runningQuote, QUOTE_PER_CENT, 'floor');
    const step = cents - before;
    before = cents;
    return step;
  });
}

/** The table's money lines whose figures add up (docs/stress.md, "Reading the report"), in cents. */
interface TableCents {
  fundStart: bigint;
  fundEnd: bigint;
  fundLow: bigint;
  fees: bigint;
  dust: bigint;
  paid: bigint;
  bookNotional: bigint;
  deleveragedNotional: bigint;
  socialized: bigint;
  uncovered: bigint;
}

function tableCents(r: StressReport): TableCents {
  const i = r.insurance;
  // The fund moves only by liquidation fees and funding dust in and cover out
  // (docs/stress.md, funding): its end is derived from the parts shown.
  assert(
    i.startQuote + r.liquidations.feesQuote + r.funding.dustQuote - r.badDebt.coveredQuote ===
      i.endQuote,
    'the insurance fund moved by fees, funding dust and cover only',
  );
  const [fundStart, fees, dust, paidNegative] = centsAddingUp([
    i.startQuote,
    r.liquidations.feesQuote,
    r.funding.dustQuote,
    -r.badDebt.coveredQuote,
  ]) as [bigint, bigint, bigint, bigint];
  const [bookNotional, deleveragedNotional] = centsAddingUp([
    r.liquidations.notionalQuote,
    r.deleveraging.notionalQuote,
  ]) as [bigint, bigint];
  const fundEnd = fundStart + fees + dust + paidNegative;
  return {
    fundStart,
    fundEnd,
    // The low is at most the end: rounded down as the end is, it stays so.
    fundLow: divBig(i.minQuote, QUOTE_PER_CENT, 'floor'),
    fees,
    dust,
    paid: -paidNegative,
    bookNotional,
    deleveragedNotional,
    socialized: divBig(r.deleveraging.socializedQuote, QUOTE_PER_CENT, 'floor'),
    uncovered: divBig(r.badDebt.deficitQuote, QUOTE_PER_CENT, 'floor'),
  };
}

function percent(part: bigint, whole: bigint): string {
  if (whole === 0n) return 'n/a';
  const bp = (part * 10_000n) / whole - 10_000n;
  const sign = bp < 0n ? '-' : '+';
  const abs = bp < 0n ? -bp : bp;
  return `${sign}${abs / 100n}.${(abs % 100n).toString().padStart(2, '0')}%`;
}

function vol(ppm: number): string {
  return `${(ppm / 1_000_000).toFixed(2)}×`;
}

export function reportRows(r: StressReport): [string, string][] {
  const rows: [string, string][] = [
    ['scenario', `${r.scenario}: ${r.description}`],
    ['blocks', `${r.blocks} × ${r.blockMs} ms (heights ${r.startHeight + 1}..${r.endHeight})`],
    ['accounts', `${r.accounts} (${r.accountsWithPositions} with positions at the start)`],
  ];
  for (const u of r.underlyings) {
    rows.push([
      `${u.underlying} path`,
      u.moved
        ? `${usd(u.startQuote)} → ${usd(u.endQuote)} (${percent(u.endQuote, u.startQuote)}), low ${usd(u.minQuote)}, high ${usd(u.maxQuote)}, vol up to ${vol(u.volPpmMax)}` +
          (u.frozenBlocks > 0 ? `, oracle frozen ${u.frozenBlocks} blocks` : '') +
          // smilesFrozenBlocks counts the frozen blocks too: the row names those apart.
          (u.smilesFrozenBlocks > u.frozenBlocks
            ? `, smiles alone frozen ${u.smilesFrozenBlocks - u.frozenBlocks} blocks`
            : '')
        : 'not in the scenario (price held)',
    ]);
  }
  const l = r.liquidations;
  const d = r.deleveraging;
  const b = r.badDebt;
  const c = tableCents(r);
  rows.push(
    ['accounts liquidated', `${l.accounts} (${l.positions} positions, ${l.events} liquidations)`],
    [
      'notional liquidated',
      `${dollars(c.bookNotional + c.deleveragedNotional)} (book ${dollars(c.bookNotional)}, deleveraged ${dollars(c.deleveragedNotional)})`,
    ],
    ['liquidation fees', `${dollars(c.fees)} to the insurance fund`],
    [
      'deleveraging',
      `${d.events} trades, ${d.accounts} liquidated accounts against ${d.counterparties} counterparties; ${dollars(c.socialized)} of losses passed to ${d.socializedCounterparties} of them beyond the mark, ${usd(d.gainedQuote)} gained by ${d.gainedCounterparties} closed better than it`,
    ],
    [
      'insurance fund',
      `${dollars(c.fundStart)} → ${dollars(c.fundEnd)} (low ${dollars(c.fundLow)})`,
    ],
    [
      'bad debt',
      `${dollars(c.paid + c.socialized + c.uncovered)} (insurance paid ${dollars(c.paid)}, deleveraged onto counterparties ${dollars(c.socialized)}, uncovered ${dollars(c.uncovered)} in ${b.deficitAccounts} accounts)`,
    ],
    ['open negative equity', usd(b.openNegativeEquityQuote)],
    ...optionRows(r),
    ['settlement', settlementText(r)],
    ['auctions', auctionText(r)],
    [
      'funding',
      `${r.funding.payments} payments, ${usd(r.funding.paidQuote)} paid, ${dollars(c.dust)} of it (rounding) to the insurance fund`,
    ],
    [
      'liquidity',
      `${r.liquidity.provider}; ${r.liquidity.ordersPlaced} orders placed, ${r.liquidity.ordersRejected} refused${r.liquidity.providerLiquidated ? '; the provider was liquidated' : ''}`,
    ],
    ['volatility', r.volatility.note],
    [
      'invariants',
      r.invariantsChecked ? 'checked after every block (collateral conserved)' : 'not checked',
    ],
    ['appHash', r.appHash],
    ['report hash', r.reportHash],
  );
  return rows;
}

function secondsText(ms: number): string {
  return `${Math.floor(ms / 1000)} s`;
}

function optionRows(r: StressReport): [string, string][] {
  const o = r.options;
  if (o.markets === 0) return [['options', 'no option market listed']];
  return [
    [
      'option accounts',
      `${o.accounts} holding options at the start (${o.lotsStart} lots in ${o.markets} option markets; ${o.lotsEnd} open at the end)`,
    ],
    [
      'option accounts liquidated',
      `${o.liquidatedAccounts} (${o.liquidatedPositions} positions, ${o.liquidationEvents} liquidations)`,
    ],
    [
      'option notional liquidated',
      `${usd(o.premiumQuote)} of premium on ${usd(o.underlyingQuote)} of underlying (${o.bookLots} lots through the book, ${o.deleveragedLots} deleveraged)`,
    ],
    [
      'scenario margin shortfall',
      `peak ${usd(o.shortfallPeakQuote)} in ${o.shortfallPeakAccounts} accounts at ${secondsText(o.shortfallPeakAtMs)}, ${usd(o.shortfallEndQuote)} at the end (option holders still below maintenance after a block)`,
    ],
    [
      'option marks',
      `open options worth ${usd(o.valueStartQuote)} → ${usd(o.valueEndQuote)}; with the start smiles ${usd(o.valueEndAtStartVolQuote)}, so the vol path added ${dollars(cents(o.valueEndQuote) - cents(o.valueEndAtStartVolQuote))}`,
    ],
  ];
}

function settlementText(r: StressReport): string {
  const st = r.settlement;
  if (st.nearestExpiryMs < 0) return 'no dated market listed';
  const nearest = `the nearest expiry was ${secondsText(st.nearestExpiryMs)} after the start`;
  if (st.markets === 0) {
    return `nothing expired: ${nearest}, the run lasted ${secondsText(r.blocks * r.blockMs)}`;
  }
  return `${st.markets} markets settled (${st.options} options, ${st.futures} futures, ${st.positions} positions closed); ${nearest}`;
}

function auctionText(r: StressReport): string {
  const a = r.auctions;
  if (a.started === 0) return 'none';
  return (
    `${a.started} started in ${a.markets} markets, ${a.ended} uncrossed; ${secondsText(a.totalMs)} in auction in all, longest ${secondsText(a.longestMs)}` +
    (a.openAtEnd > 0 ? `; ${a.openAtEnd} still in auction at the end` : '')
  );
}

export function reportText(r: StressReport): string {
  const rows = reportRows(r);
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

function jsonValue(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/** JSON with money as decimal strings of quote units and the series thinned. */
export function reportJson(r: StressReport): string {
  return JSON.stringify({ ...r, series: thin(r.series) }, jsonValue);
}

// --- HTML ----------------------------------------------------------------------------

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

interface Line {
  label: string;
  color: string;
  dashed?: boolean;
  points: [number, number][];
}

function chart(title: string, unit: string, lines: Line[], shade: [number, number][]): string {
  const w = 760;
  const h = 240;
  const left = 70;
  const bottom = 30;
  const top = 24;
  const xs = lines.flatMap((l) => l.points.map((p) => p[0]));
  const ys = lines.flatMap((l) => l.points.map((p) => p[1]));
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs, x0 + 1);
  let y0 = Math.min(...ys);
  let y1 = Math.max(...ys);
  if (y1 - y0 < 1e-9) {
    y0 -= 1;
    y1 += 1;
  }
  const sx = (x: number): number => left + ((x - x0) / (x1 - x0)) * (w - left - 10);
  const sy = (y: number): number => top + (1 - (y - y0) / (y1 - y0)) * (h - top - bottom);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img">`,
    `<title>${escapeHtml(title)}</title>`,
    `<text x="${left}" y="16" font-size="13" font-weight="bold">${escapeHtml(title)}</text>`,
  ];
  for (const [a, b] of shade) {
    parts.push(
      `<rect x="${sx(a).toFixed(1)}" y="${top}" width="${Math.max(1, sx(b) - sx(a)).toFixed(1)}" height="${h - top - bottom}" fill="#eee"/>`,
    );
  }
  for (let k = 0; k <= 4; k++) {
    const y = y0 + ((y1 - y0) * k) / 4;
    parts.push(
      `<line x1="${left}" x2="${w - 10}" y1="${sy(y).toFixed(1)}" y2="${sy(y).toFixed(1)}" stroke="#ddd"/>`,
      `<text x="${left - 4}" y="${(sy(y) + 4).toFixed(1)}" font-size="10" text-anchor="end">${escapeHtml(y.toLocaleString('en-US', { maximumFractionDigits: 2 }))}${unit}</text>`,
    );
    const x = x0 + ((x1 - x0) * k) / 4;
    parts.push(
      `<text x="${sx(x).toFixed(1)}" y="${h - 10}" font-size="10" text-anchor="middle">${Math.round(x)} s</text>`,
    );
  }
  lines.forEach((l, i) => {
    const d = l.points
      .map(([x, y], j) => `${j === 0 ? 'M' : 'L'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`)
      .join('');
    parts.push(
      `<path d="${d}" fill="none" stroke="${l.color}" stroke-width="1.5"${l.dashed === true ? ' stroke-dasharray="4 3"' : ''}/>`,
      `<text x="${left + 8 + i * 150}" y="${top + 12}" font-size="11" fill="${l.color}">${escapeHtml(l.label)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}

function toNumber(quote: bigint): number {
  return Number(quote) / 1e6;
}

/** A self-contained page: summary table and inline SVG charts (prices, insurance, liquidations, volatility), no scripts, no network. */
export function reportHtml(r: StressReport): string {
  const series = thin(r.series);
  const seconds = (s: BlockSample): number => s.atMs / 1000;
  const priceLines: Line[] = [];
  r.underlyings.forEach((u, i) => {
    const color = COLORS[i % COLORS.length]!;
    const start = toNumber(u.startQuote) || 1;
    priceLines.push({
      label: `${u.underlying} index %`,
      color,
      points: series.map((s) => [seconds(s), (toNumber(s.indexQuote[i]!) / start) * 100]),
    });
    if (u.frozenBlocks > 0) {
      priceLines.push({
        label: `${u.underlying} market %`,
        color,
        dashed: true,
        points: series.map((s) => [seconds(s), (toNumber(s.pathQuote[i]!) / start) * 100]),
      });
    }
  });
  const shade: [number, number][] = [];
  let from: number | null = null;
  for (const s of series) {
    const frozen = s.frozen.some((f) => f);
    if (frozen && from === null) from = seconds(s);
    if (!frozen && from !== null) {
      shade.push([from, seconds(s)]);
      from = null;
    }
  }
  if (from !== null) shade.push([from, seconds(series[series.length - 1]!)]);
  const insurance: Line[] = [
    {
      label: 'insurance fund (USD)',
      color: '#2ca02c',
      points: series.map((s) => [seconds(s), toNumber(s.insuranceQuote)]),
    },
  ];
  const liquidated: Line[] = [
    {
      label: 'liquidated through the book (USD)',
      color: '#d62728',
      points: series.map((s) => [seconds(s), toNumber(s.liquidatedNotionalQuote)]),
    },
    {
      label: 'deleveraged (USD)',
      color: '#9467bd',
      points: series.map((s) => [seconds(s), toNumber(s.deleveragedNotionalQuote)]),
    },
  ];
  const optionLines: Line[] = [
    {
      label: 'open options at their marks (USD)',
      color: '#1f77b4',
      points: series.map((s) => [seconds(s), toNumber(s.optionValueQuote)]),
    },
    {
      label: 'margin shortfall (USD)',
      color: '#d62728',
      points: series.map((s) => [seconds(s), toNumber(s.marginShortfallQuote)]),
    },
  ];
  const auctionLines: Line[] = [
    {
      label: 'markets in a call auction',
      color: '#ff7f0e',
      points: series.map((s) => [seconds(s), s.auctionMarkets]),
    },
  ];
  const volLines: Line[] = r.underlyings.map((u, i) => ({
    label: `${u.underlying} vol ×`,
    color: COLORS[i % COLORS.length]!,
    points: series.map((s) => [seconds(s), s.volPpm[i]! / 1_000_000]),
  }));
  const rows = reportRows(r)
    .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>zomma stress: ${escapeHtml(r.scenario)}</title>
<style>body{font-family:system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin-bottom:16px}
th,td{text-align:left;padding:3px 10px;border-bottom:1px solid #eee;font-size:13px;vertical-align:top}th{white-space:nowrap}</style>
</head><body>
<h1>Stress: ${escapeHtml(r.scenario)}</h1>
<table>
${rows}
</table>
${chart('Index price, % of start (shaded: oracle frozen)', '%', priceLines, shade)}
${chart('Insurance fund', '', insurance, shade)}
${chart('Notional liquidated, cumulative', '', liquidated, shade)}
${r.options.markets > 0 ? chart('Options: open value and scenario margin shortfall', '', optionLines, shade) : ''}
${chart('Volatility auctions', '', auctionLines, shade)}
${chart(`Volatility multiplier (${r.volatility.applied ? 'applied to the oracle smiles' : 'recorded only'})`, '×', volLines, shade)}
</body></html>
`;
}
