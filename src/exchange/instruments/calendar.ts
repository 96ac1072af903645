// Calendar arithmetic on integers (no Date in the pure core): days since
// 1970-01-01 ↔ proleptic Gregorian civil dates, by Howard Hinnant's
// days_from_civil / civil_from_days ("chrono-Compatible Low-Level Date
// Algorithms"), exact for every year in the safe-integer range. Dated
// instruments expire at 08:00 UTC (Deribit's convention). Cost: O(1) each.

import { assert } from '../../lib/assert.ts';
import { divFloor, divTrunc, modFloor } from '../../lib/int.ts';

export const MS_PER_DAY = 86_400_000;
/** Dated futures and options expire at 08:00 UTC of their expiry day. */
export const EXPIRY_TIME_OF_DAY_MS = 8 * 3_600_000;

export const FRIDAY = 5;

export interface CivilDate {
  readonly year: number;
  /** 1 … 12. */
  readonly month: number;
  /** 1 … 31. */
  readonly day: number;
}

/** Days since 1970-01-01 of a civil date. */
export function daysFromCivil(year: number, month: number, day: number): number {
  assert(month >= 1 && month <= 12 && day >= 1 && day <= 31, 'civil date out of range');
  const y = month <= 2 ? year - 1 : year;
  const era = divFloor(y, 400);
  const yoe = y - era * 400;
  const mp = month > 2 ? month - 3 : month + 9;
  const doy = divTrunc(153 * mp + 2, 5) + day - 1;
  const doe = yoe * 365 + divTrunc(yoe, 4) - divTrunc(yoe, 100) + doy;
  return era * 146_097 + doe - 719_468;
}

/** The civil date of a day count since 1970-01-01. */
export function civilFromDays(days: number): CivilDate {
  assert(Number.isSafeInteger(days), 'day count must be an integer');
  const z = days + 719_468;
  const era = divFloor(z, 146_097);
  const doe = z - era * 146_097;
  const yoe = divTrunc(
    doe - divTrunc(doe, 1460) + divTrunc(doe, 36_524) - divTrunc(doe, 146_096),
    365,
  );
  const doy = doe - (365 * yoe + divTrunc(yoe, 4) - divTrunc(yoe, 100));
  const mp = divTrunc(5 * doy + 2, 153);
  const day = doy - divTrunc(153 * mp + 2, 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return { year, month, day };
}

/** 0 = Sunday … 6 = Saturday (1970-01-01 was a Thursday). */
export function weekdayFromDays(days: number): number {
  return modFloor(days + 4, 7);
}

export function isLeapYear(year: number): boolean {
  return modFloor(year, 4) === 0 && (modFloor(year, 100) !== 0 || modFloor(year, 400) === 0);
}

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

export function daysInMonth(year: number, month: number): number {
  assert(month >= 1 && month <= 12, 'month out of range');
  return month === 2 && isLeapYear(year) ? 29 : MONTH_DAYS[month - 1]!;
}

/** True if the civil date exists (30 February does not). */
export function isValidCivil(year: number, month: number, day: number): boolean {
  return (
    Number.isSafeInteger(year) &&
    Number.isSafeInteger(month) &&
    Number.isSafeInteger(day) &&
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= daysInMonth(year, month)
  );
}

/** The day of the last Friday of a month. */
export function lastFridayOfMonth(year: number, month: number): number {
  const last = daysFromCivil(year, month, daysInMonth(year, month));
  return last - modFloor(weekdayFromDays(last) - FRIDAY, 7);
}

/** The first Friday on or after a day. */
export function fridayOnOrAfter(days: number): number {
  return days + modFloor(FRIDAY - weekdayFromDays(days), 7);
}

/** Block time (ms) at which an instrument expiring on this day expires. */
export function expiryMsOfDay(days: number): number {
  return days * MS_PER_DAY + EXPIRY_TIME_OF_DAY_MS;
}

/** The day whose 08:00 UTC is the first expiry strictly after timeMs. */
export function firstExpiryDayAfter(timeMs: number): number {
  const day = divFloor(timeMs, MS_PER_DAY);
  return expiryMsOfDay(day) > timeMs ? day : day + 1;
}
