// Price monitoring (docs/derivatives.md, "Volatility auctions"), after Vega's
// price-monitoring triggers. Each trigger has a horizon, a largest move in
// basis points and an auction length. Its reference price is the last trade
// price at the start of its current horizon window; the window restarts (and
// the reference is taken again) once the horizon has passed. A trade whose
// price is more than maxMoveBps from any trigger's reference does not happen:
// the market enters a call auction for the longest auction among the triggers
// breached, and leaves it when block time reaches its end (then the book is
// uncrossed, uncross.ts, and the uncrossing price becomes every reference).
// State is plain integers with a canonical encoding. Cost: O(triggers).

import type { Codec, Reader, Writer } from '../../codec/wire.ts';
import { assert } from '../../lib/assert.ts';
import { ZommaError } from '../../lib/errors.ts';
import { divBig } from '../../lib/int.ts';
import { PRICE_MONITOR_TRIGGERS_MAX } from '../../lib/limits.ts';

export interface PriceTrigger {
  readonly horizonMs: number;
  readonly maxMoveBps: number;
  readonly auctionMs: number;
}

export class MonitorParamsError extends ZommaError<'BadPriceMonitor'> {
  constructor(field: string, reason: string) {
    super('BadPriceMonitor', `${field}: ${reason}`);
  }
}

export function validateTriggers(triggers: readonly PriceTrigger[]): void {
  if (triggers.length > PRICE_MONITOR_TRIGGERS_MAX) {
    throw new MonitorParamsError('triggers', `at most ${PRICE_MONITOR_TRIGGERS_MAX}`);
  }
  triggers.forEach((t, i) => {
    const ok = (x: number, lo: number, hi: number): boolean =>
      Number.isSafeInteger(x) && x >= lo && x <= hi;
    if (!ok(t.horizonMs, 1, 7 * 86_400_000))
      throw new MonitorParamsError(`triggers[${i}].horizonMs`, 'in [1 ms, 7 days]');
    if (!ok(t.maxMoveBps, 1, 100_000))
      throw new MonitorParamsError(`triggers[${i}].maxMoveBps`, 'in [1, 100000]');
    if (!ok(t.auctionMs, 1, 86_400_000))
      throw new MonitorParamsError(`triggers[${i}].auctionMs`, 'in [1 ms, 1 day]');
  });
}

export interface TriggerState {
  /** 0 = no reference yet (the first trade sets it). */
  referenceTicks: number;
  windowStartMs: number;
}

export interface MonitorState {
  /** 0 = continuous trading; otherwise the block time at which the auction ends. */
  auctionEndMs: number;
  /** The last trade (or uncrossing) price, 0 before the first. */
  lastPriceTicks: number;
  readonly triggers: TriggerState[];
}

export function newMonitor(triggers: readonly PriceTrigger[]): MonitorState {
  return {
    auctionEndMs: 0,
    lastPriceTicks: 0,
    triggers: triggers.map(() => ({ referenceTicks: 0, windowStartMs: 0 })),
  };
}

export function inAuction(state: MonitorState): boolean {
  return state.auctionEndMs !== 0;
}

/** Restarts the windows whose horizon has passed, taking the last price as their reference. */
export function rollWindows(
  state: MonitorState,
  triggers: readonly PriceTrigger[],
  nowMs: number,
): void {
  triggers.forEach((t, i) => {
    const s = state.triggers[i]!;
    if (s.referenceTicks === 0 || nowMs - s.windowStartMs >= t.horizonMs) {
      s.referenceTicks = state.lastPriceTicks;
      s.windowStartMs = nowMs;
    }
  });
}

/** The bounds a trade must stay within for trigger i: reference ± floor(reference × bps / 10^4). */
export function triggerBounds(referenceTicks: number, maxMoveBps: number): [number, number] {
  const d = Number(divBig(BigInt(referenceTicks) * BigInt(maxMoveBps), 10_000n, 'floor'));
  return [referenceTicks - d, referenceTicks + d];
}

/**
 * The auction length if a trade at priceTicks now would breach a trigger
 * (the longest among those breached), else 0. Pure: call before each fill.
 */
export function breachAuctionMs(
  state: MonitorState,
  triggers: readonly PriceTrigger[],
  priceTicks: number,
  nowMs: number,
): number {
  assert(!inAuction(state), 'no continuous trades during an auction');
  let auctionMs = 0;
  triggers.forEach((t, i) => {
    const s = state.triggers[i]!;
    const expired = nowMs - s.windowStartMs >= t.horizonMs;
    const reference = expired || s.referenceTicks === 0 ? state.lastPriceTicks : s.referenceTicks;
    if (reference === 0) return;
    const [lo, hi] = triggerBounds(reference, t.maxMoveBps);
    if (priceTicks < lo || priceTicks > hi) auctionMs = Math.max(auctionMs, t.auctionMs);
  });
  return auctionMs;
}

/** Records a trade that happened (after breachAuctionMs returned 0). */
export function onTrade(
  state: MonitorState,
  triggers: readonly PriceTrigger[],
  priceTicks: number,
  nowMs: number,
): void {
  assert(priceTicks > 0, 'a price is positive');
  rollWindows(state, triggers, nowMs);
  state.lastPriceTicks = priceTicks;
  rollWindows(state, triggers, nowMs);
}

export function enterAuction(state: MonitorState, auctionMs: number, nowMs: number): void {
  assert(auctionMs > 0 && !inAuction(state), 'enter an auction once');
  state.auctionEndMs = nowMs + auctionMs;
}

/** True when the auction is due to end at nowMs: uncross, then call endAuction. */
export function auctionDue(state: MonitorState, nowMs: number): boolean {
  return inAuction(state) && nowMs >= state.auctionEndMs;
}

/** Leaves the auction; an uncrossing price (0 if nothing traded) becomes the last price and every reference. */
export function endAuction(state: MonitorState, uncrossPriceTicks: number, nowMs: number): void {
  assert(inAuction(state), 'not in an auction');
  state.auctionEndMs = 0;
  if (uncrossPriceTicks > 0) state.lastPriceTicks = uncrossPriceTicks;
  for (const s of state.triggers) {
    s.referenceTicks = state.lastPriceTicks;
    s.windowStartMs = nowMs;
  }
}

export function monitorCodec(triggerCount: number): Codec<MonitorState> {
  return {
    write(w: Writer, s: MonitorState): void {
      assert(s.triggers.length === triggerCount, 'state of other triggers');
      w.uvarint(s.auctionEndMs).uvarint(s.lastPriceTicks);
      for (const t of s.triggers) w.uvarint(t.referenceTicks).uvarint(t.windowStartMs);
    },
    read(r: Reader, field: string): MonitorState {
      const previous = r.enter(field);
      const auctionEndMs = r.uvarint('auctionEndMs');
      const lastPriceTicks = r.uvarint('lastPriceTicks');
      const triggers: TriggerState[] = [];
      for (let i = 0; i < triggerCount; i++) {
        triggers.push({
          referenceTicks: r.uvarint('referenceTicks'),
          windowStartMs: r.uvarint('windowStartMs'),
        });
      }
      r.leave(previous);
      return { auctionEndMs, lastPriceTicks, triggers };
    },
  };
}
