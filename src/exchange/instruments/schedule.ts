// The listing schedule (docs/derivatives.md, "Listing"): which dated futures
// and options are live at a given block time, from genesis parameters.
//
// Expiry cycles, each expiring at 08:00 UTC:
//   daily      the next `dailies` days
//   weekly     the next `weeklies` Fridays
//   monthly    the next `monthlies` last Fridays of a month
//   quarterly  the next `quarterlies` last Fridays of March, June, September, December
// An expiry day belongs to every cycle that selects it (a quarterly is also a
// monthly and a weekly); it lists options on every underlying, and a future
// when one of its cycles is in `futureCycles`. Strikes are the multiples of the
// underlying's strike step within ±strikeRangePpm of the index at listing time,
// at most STRIKES_PER_EXPIRY_MAX of them nearest the money. A strike once listed
// stays until expiry (positions may be open), so as the index moves the grid
// grows at its edges and never shrinks.
//
// Cost of listingsDue: O(live + expiries × underlyings × strikes).

import { ZommaError } from '../../lib/errors.ts';
import { divBig } from '../../lib/int.ts';
import {
  LISTING_EXPIRIES_PER_CYCLE_MAX,
  LISTING_UNDERLYINGS_MAX,
  STRIKES_PER_EXPIRY_MAX,
} from '../../lib/limits.ts';
import {
  civilFromDays,
  daysFromCivil,
  expiryMsOfDay,
  firstExpiryDayAfter,
  fridayOnOrAfter,
  lastFridayOfMonth,
} from './calendar.ts';
import type { Instrument } from './names.ts';
import {
  QUOTE_UNITS_PER_WHOLE,
  STRIKE_WHOLE_MAX,
  expiryMsOf,
  formatInstrument,
  isUnderlying,
  parseInstrument,
} from './names.ts';

export type ExpiryCycle = 'daily' | 'weekly' | 'monthly' | 'quarterly';
export const EXPIRY_CYCLES: readonly ExpiryCycle[] = ['daily', 'weekly', 'monthly', 'quarterly'];

export interface UnderlyingListing {
  /** 'BTC': the key of the oracle's index prices. */
  readonly underlying: string;
  /** Distance between strikes, in quote units: a whole number of quote currency (1000 USDC for BTC). */
  readonly strikeStepQuote: bigint;
  /** Strikes are listed within index × (1 ± strikeRangePpm / 10^6). */
  readonly strikeRangePpm: number;
}

export interface ListingSchedule {
  readonly underlyings: readonly UnderlyingListing[];
  readonly dailies: number;
  readonly weeklies: number;
  readonly monthlies: number;
  readonly quarterlies: number;
  /** Cycles whose expiries also list a dated future. */
  readonly futureCycles: readonly ExpiryCycle[];
}

export class ScheduleError extends ZommaError<'BadListingSchedule'> {
  constructor(field: string, reason: string) {
    super('BadListingSchedule', `${field}: ${reason}`);
  }
}

function count(field: string, x: number): void {
  if (!Number.isSafeInteger(x) || x < 0 || x > LISTING_EXPIRIES_PER_CYCLE_MAX) {
    throw new ScheduleError(field, `must be an integer in [0, ${LISTING_EXPIRIES_PER_CYCLE_MAX}]`);
  }
}

/** Validates a schedule from a genesis; throws ScheduleError naming the first bad field. */
export function validateListingSchedule(s: ListingSchedule): void {
  if (s.underlyings.length > LISTING_UNDERLYINGS_MAX) {
    throw new ScheduleError('underlyings', `at most ${LISTING_UNDERLYINGS_MAX}`);
  }
  const seen = new Set<string>();
  s.underlyings.forEach((u, i) => {
    const f = `underlyings[${i}]`;
    if (!isUnderlying(u.underlying)) throw new ScheduleError(`${f}.underlying`, 'not a valid name');
    if (seen.has(u.underlying)) throw new ScheduleError(`${f}.underlying`, 'duplicate');
    seen.add(u.underlying);
    if (
      typeof u.strikeStepQuote !== 'bigint' ||
      u.strikeStepQuote <= 0n ||
      u.strikeStepQuote % QUOTE_UNITS_PER_WHOLE !== 0n ||
      u.strikeStepQuote > STRIKE_WHOLE_MAX * QUOTE_UNITS_PER_WHOLE
    ) {
      throw new ScheduleError(
        `${f}.strikeStepQuote`,
        'must be a positive whole number of quote currency',
      );
    }
    if (
      !Number.isSafeInteger(u.strikeRangePpm) ||
      u.strikeRangePpm < 0 ||
      u.strikeRangePpm >= 1_000_000
    ) {
      throw new ScheduleError(`${f}.strikeRangePpm`, 'must be an integer in [0, 10^6)');
    }
  });
  count('dailies', s.dailies);
  count('weeklies', s.weeklies);
  count('monthlies', s.monthlies);
  count('quarterlies', s.quarterlies);
  const cycles = new Set<string>();
  for (const c of s.futureCycles) {
    if (!EXPIRY_CYCLES.includes(c)) throw new ScheduleError('futureCycles', `unknown cycle '${c}'`);
    if (cycles.has(c)) throw new ScheduleError('futureCycles', `duplicate cycle '${c}'`);
    cycles.add(c);
  }
}

export interface LiveExpiry {
  /** Days since 1970-01-01. */
  readonly day: number;
  readonly expiryMs: number;
  /** The cycles that select this day. */
  readonly cycles: readonly ExpiryCycle[];
}

function lastFridays(firstDay: number, n: number, quarterly: boolean): number[] {
  const out: number[] = [];
  let { year, month } = civilFromDays(firstDay);
  while (out.length < n) {
    if (!quarterly || month % 3 === 0) {
      const day = lastFridayOfMonth(year, month);
      if (day >= firstDay) out.push(day);
    }
    month++;
    if (month > 12) {
      month = 1;
      year++;
    }
  }
  return out;
}

/** The last day with an instrument name (names.ts: years 2000–2099). */
const LAST_NAMED_DAY = daysFromCivil(2099, 12, 31);

/**
 * The expiry days the schedule keeps live at timeMs (each strictly after it),
 * ascending. Days past 2099 have no names and are left out: twelve
 * quarterlies reach three years ahead.
 */
export function liveExpiries(s: ListingSchedule, timeMs: number): LiveExpiry[] {
  const first = firstExpiryDayAfter(timeMs);
  const byDay = new Map<number, ExpiryCycle[]>();
  const add = (cycle: ExpiryCycle, days: readonly number[]): void => {
    for (const d of days) {
      const list = byDay.get(d) ?? [];
      list.push(cycle);
      byDay.set(d, list);
    }
  };
  add(
    'daily',
    Array.from({ length: s.dailies }, (_, i) => first + i),
  );
  const friday = fridayOnOrAfter(first);
  add(
    'weekly',
    Array.from({ length: s.weeklies }, (_, i) => friday + 7 * i),
  );
  add('monthly', lastFridays(first, s.monthlies, false));
  add('quarterly', lastFridays(first, s.quarterlies, true));
  return [...byDay.keys()]
    .filter((day) => day <= LAST_NAMED_DAY)
    .sort((a, b) => a - b)
    .map((day) => ({ day, expiryMs: expiryMsOfDay(day), cycles: byDay.get(day)! }));
}

/** The strikes for an index price: multiples of the step within the range, nearest the money first trimmed. */
export function strikeGrid(u: UnderlyingListing, indexQuote: bigint): bigint[] {
  if (indexQuote <= 0n) return [];
  const step = u.strikeStepQuote;
  const range = BigInt(u.strikeRangePpm);
  let lo = divBig(divBig(indexQuote * (1_000_000n - range), 1_000_000n, 'ceil'), step, 'ceil');
  let hi = divBig(divBig(indexQuote * (1_000_000n + range), 1_000_000n, 'floor'), step, 'floor');
  const atm = divBig(indexQuote, step, 'halfEven');
  const half = BigInt((STRIKES_PER_EXPIRY_MAX - 1) >> 1);
  if (lo < atm - half) lo = atm - half;
  if (hi > atm + half) hi = atm + half;
  if (lo < 1n) lo = 1n;
  const maxMultiple = divBig(STRIKE_WHOLE_MAX * QUOTE_UNITS_PER_WHOLE, step, 'floor');
  if (hi > maxMultiple) hi = maxMultiple;
  const out: bigint[] = [];
  for (let m = lo; m <= hi; m++) out.push(m * step);
  return out;
}

export interface Listing {
  readonly name: string;
  readonly instrument: Instrument;
  readonly expiryMs: number;
}

export interface ListingsDue {
  /** New instruments, by expiry, then underlying in schedule order, future first, strike, call before put. */
  readonly toList: Listing[];
  /** Live dated instruments whose expiry is at or before the block time, by name. */
  readonly toExpire: string[];
}

/**
 * What to list and what to expire at a block. `indexPrices` maps an
 * underlying to its index in quote units per whole base unit (0 or absent:
 * no options are listed for it, futures still are); `liveInstruments` are the
 * names of the markets now live (perpetuals are ignored).
 */
export function listingsDue(
  schedule: ListingSchedule,
  blockTimeMs: number,
  indexPrices: Readonly<Record<string, bigint>>,
  liveInstruments: Iterable<string>,
): ListingsDue {
  const live = new Set<string>();
  const toExpire: string[] = [];
  for (const name of liveInstruments) {
    live.add(name);
    const expiryMs = expiryMsOf(parseInstrument(name));
    if (expiryMs !== undefined && expiryMs <= blockTimeMs) toExpire.push(name);
  }
  toExpire.sort();
  const toList: Listing[] = [];
  const push = (instrument: Instrument, expiryMs: number): void => {
    const name = formatInstrument(instrument);
    if (!live.has(name)) toList.push({ name, instrument, expiryMs });
  };
  for (const e of liveExpiries(schedule, blockTimeMs)) {
    const future = e.cycles.some((c) => schedule.futureCycles.includes(c));
    for (const u of schedule.underlyings) {
      if (future) push({ kind: 'future', underlying: u.underlying, expiryDay: e.day }, e.expiryMs);
      const index = indexPrices[u.underlying];
      if (typeof index !== 'bigint') continue;
      for (const strikeQuote of strikeGrid(u, index)) {
        for (const isCall of [true, false]) {
          push(
            { kind: 'option', underlying: u.underlying, expiryDay: e.day, strikeQuote, isCall },
            e.expiryMs,
          );
        }
      }
    }
  }
  return { toList, toExpire };
}
