// Funding (docs/exchange.md, "Funding"). Every fundingSampleMs boundary of
// block time that a block crosses adds one premium sample (mark.ts,
// premiumPpm) taken from the book as it stood before the block; every
// fundingIntervalMs boundary pays:
//   avg  = trunc(Σ samples / count)
//   rate = clamp(avg + clamp(interest − avg, ±FUNDING_INTEREST_BAND_PPM), ±fundingCapPpm)
//   each position pays size × mark × k × rate / 10^6: longs pay shorts when
//   rate > 0, shorts pay longs when rate < 0. Payers' amounts round up,
//   receivers' round down; the difference (the dust) goes to the insurance
//   fund, so Σ paid = Σ received + dust exactly and no collateral is created.
// A block that crosses several interval boundaries (after a halt of the
// chain) pays once, with the samples of the interval it ends. Sampling costs
// O(1) per block; a payment O(holders of the market).
// While the market's index is stale, funding pauses: a premium against a
// price that no longer moves measures nothing, and a payment at a mark built
// on it moves money on a price nobody observed. Such blocks add no samples,
// and an interval that ends in one pays nothing (rate 0) and drops its samples.
// An interval with fewer samples than a whole one (stale for a part, or the
// market's first) pays its rate prorated by the samples it has.

import { divTrunc, divFloor } from '../lib/int.ts';
import { FUNDING_INTEREST_BAND_PPM, FUNDING_SAMPLES_PER_INTERVAL_MAX } from '../lib/limits.ts';
import type { ExchangeEvent } from './results.ts';
import type { ExchangeState, MarketState } from './state.ts';
import { premiumPpm } from './mark.ts';
import { ppmCeil, ppmFloor } from './units.ts';

/**
 * The rate of the interval the samples so far close, prorated to the part of
 * it they cover: an interval with `premiumCount` of its n samples pays
 * trunc(rate × premiumCount / n), so a market stale (or not yet priced) for
 * part of an interval pays neither premium nor interest for that part.
 */
export function fundingRatePpm(market: MarketState): number {
  const p = market.params;
  const count = market.premiumCount;
  if (count === 0) return 0;
  const avg = divTrunc(market.premiumSumPpm, count);
  const band = FUNDING_INTEREST_BAND_PPM;
  const interest = Math.max(-band, Math.min(band, p.fundingInterestPpm - avg));
  const whole = Math.max(-p.fundingCapPpm, Math.min(p.fundingCapPpm, avg + interest));
  const perInterval = samplesPerInterval(market);
  return count >= perInterval ? whole : divTrunc(whole * count, perInterval);
}

/** Samples a whole interval takes (never more: advanceFunding adds only the sample boundaries of one interval). */
function samplesPerInterval(market: MarketState): number {
  const p = market.params;
  return Math.min(
    divTrunc(p.fundingIntervalMs, p.fundingSampleMs),
    FUNDING_SAMPLES_PER_INTERVAL_MAX,
  );
}

function addSamples(market: MarketState, count: number, sample: number): void {
  const n = Math.min(count, FUNDING_SAMPLES_PER_INTERVAL_MAX - market.premiumCount);
  if (n <= 0) return;
  market.premiumSumPpm += sample * n;
  market.premiumCount += n;
  market.dirty = true;
}

/** Pays funding of one market at its current mark (rate 0 when `paused`: nothing moves). */
export function payFunding(
  state: ExchangeState,
  market: MarketState,
  events: ExchangeEvent[],
  paused = false,
): void {
  const rate = paused ? 0 : fundingRatePpm(market);
  market.lastFundingRatePpm = rate;
  market.premiumSumPpm = 0;
  market.premiumCount = 0;
  market.dirty = true;
  let paid = 0n;
  let received = 0n;
  if (rate !== 0 && market.markTicks > 0) {
    const mark = BigInt(market.markTicks) * market.k;
    for (const account of market.holders) {
      const position = account.positions[market.index]!;
      const notional = BigInt(position.sizeLots) * mark;
      // Positive: this position pays.
      const owed = notional > 0n === rate > 0;
      const abs = notional < 0n ? -notional : notional;
      const absRate = rate < 0 ? -rate : rate;
      const amount = owed ? ppmCeil(abs, absRate) : ppmFloor(abs, absRate);
      if (owed) paid += amount;
      else received += amount;
      const delta = owed ? -amount : amount;
      account.cashQuote += delta;
      position.fundingQuote += delta;
      state.markAccount(account);
    }
  }
  const dust = paid - received;
  state.insuranceQuote += dust;
  events.push({
    type: 'funding',
    market: market.params.instrument,
    ratePpm: rate,
    markTicks: market.markTicks,
    paidQuote: paid,
    receivedQuote: received,
    dustQuote: dust,
  });
}

/**
 * Samples and pays funding for the block time moving from previousMs to nowMs.
 * Samples taken up to an interval boundary belong to the interval it ends.
 */
export function advanceFunding(
  state: ExchangeState,
  market: MarketState,
  previousMs: number,
  nowMs: number,
  events: ExchangeEvent[],
): void {
  const p = market.params;
  if (nowMs <= previousMs || market.indexTicks === 0) return;
  const s = p.fundingSampleMs;
  const interval = p.fundingIntervalMs;
  if (market.oracleStale) {
    if (divFloor(nowMs, interval) * interval > previousMs) payFunding(state, market, events, true);
    return;
  }
  const sample = premiumPpm(market);
  const firstSample = divFloor(previousMs, s) + 1;
  const lastSample = divFloor(nowMs, s);
  const lastBoundary = divFloor(nowMs, interval) * interval;
  if (lastBoundary <= previousMs) {
    addSamples(market, lastSample - firstSample + 1, sample);
    return;
  }
  // Samples up to the first boundary crossed close that interval.
  const firstBoundary = (divFloor(previousMs, interval) + 1) * interval;
  addSamples(market, divFloor(firstBoundary, s) - firstSample + 1, sample);
  payFunding(state, market, events);
  addSamples(market, lastSample - divFloor(lastBoundary, s), sample);
}
