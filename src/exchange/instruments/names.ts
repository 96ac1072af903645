// Instrument names as traders know them, in Deribit's format:
//   BTC-PERPETUAL          a perpetual
//   BTC-27DEC26 BTC-5JAN27 a dated future (day without a leading zero, month, two-digit year)
//   BTC-27DEC26-60000-C    a European option: expiry, strike in whole quote currency, C or P
// Dated instruments expire at 08:00 UTC of the named day (calendar.ts); years
// are 2000–2099. Parsing refuses anything that does not format back to the
// same string, so one instrument has exactly one name. Cost: O(name length).

import { ZommaError } from '../../lib/errors.ts';
import { divBig } from '../../lib/int.ts';
import { INSTRUMENT_BYTES_MAX } from '../../lib/limits.ts';
import { civilFromDays, daysFromCivil, expiryMsOfDay, isValidCivil } from './calendar.ts';

export type InstrumentErrorCode = 'BadInstrumentName';

export class InstrumentError extends ZommaError<InstrumentErrorCode> {}

/** Quote units (6 decimals) in one whole unit of the quote currency. */
export const QUOTE_UNITS_PER_WHOLE = 1_000_000n;
/** Largest strike in a name, in whole quote currency. */
export const STRIKE_WHOLE_MAX = 1_000_000_000_000n;

export type Instrument =
  | { readonly kind: 'perpetual'; readonly underlying: string }
  | { readonly kind: 'future'; readonly underlying: string; readonly expiryDay: number }
  | {
      readonly kind: 'option';
      readonly underlying: string;
      readonly expiryDay: number;
      /** In quote units (6 decimals): a whole multiple of QUOTE_UNITS_PER_WHOLE. */
      readonly strikeQuote: bigint;
      readonly isCall: boolean;
    };

const MONTHS = [
  'JAN',
  'FEB',
  'MAR',
  'APR',
  'MAY',
  'JUN',
  'JUL',
  'AUG',
  'SEP',
  'OCT',
  'NOV',
  'DEC',
] as const;

const UNDERLYING_RE = /^[A-Z][A-Z0-9]{0,15}$/;
const DATE_RE = /^([1-9][0-9]?)([A-Z]{3})([0-9]{2})$/;
const STRIKE_RE = /^[1-9][0-9]{0,12}$/;

export function isUnderlying(text: string): boolean {
  return UNDERLYING_RE.test(text);
}

/** '27DEC26' for the day count of 2026-12-27. Years outside 2000–2099 have no name. */
export function formatExpiryDate(expiryDay: number): string {
  const { year, month, day } = civilFromDays(expiryDay);
  if (year < 2000 || year > 2099) {
    throw new InstrumentError('BadInstrumentName', `expiry year ${year} is outside 2000-2099`);
  }
  return `${day}${MONTHS[month - 1]!}${String(year - 2000).padStart(2, '0')}`;
}

function parseExpiryDate(text: string, name: string): number {
  const m = DATE_RE.exec(text);
  if (m === null) throw bad(name, `expiry '${text}' is not like 27DEC26 or 5JAN27`);
  const day = Number(m[1]);
  const month = MONTHS.indexOf(m[2] as (typeof MONTHS)[number]) + 1;
  const year = 2000 + Number(m[3]);
  if (month === 0) throw bad(name, `unknown month '${m[2]}'`);
  if (!isValidCivil(year, month, day)) throw bad(name, `no such date '${text}'`);
  return daysFromCivil(year, month, day);
}

function bad(name: string, reason: string): InstrumentError {
  return new InstrumentError('BadInstrumentName', `'${name}': ${reason}`);
}

export function formatInstrument(i: Instrument): string {
  if (!isUnderlying(i.underlying)) {
    throw new InstrumentError('BadInstrumentName', `bad underlying '${i.underlying}'`);
  }
  if (i.kind === 'perpetual') return `${i.underlying}-PERPETUAL`;
  const date = formatExpiryDate(i.expiryDay);
  if (i.kind === 'future') return `${i.underlying}-${date}`;
  if (
    i.strikeQuote <= 0n ||
    i.strikeQuote % QUOTE_UNITS_PER_WHOLE !== 0n ||
    i.strikeQuote > STRIKE_WHOLE_MAX * QUOTE_UNITS_PER_WHOLE
  ) {
    throw new InstrumentError(
      'BadInstrumentName',
      `strike ${i.strikeQuote} is not a whole number of quote currency in (0, ${STRIKE_WHOLE_MAX}]`,
    );
  }
  const strike = divBig(i.strikeQuote, QUOTE_UNITS_PER_WHOLE, 'trunc'); // exact: checked above
  return `${i.underlying}-${date}-${strike}-${i.isCall ? 'C' : 'P'}`;
}

/** Parses a name; throws InstrumentError('BadInstrumentName') naming what is wrong. */
export function parseInstrument(name: string): Instrument {
  if (typeof name !== 'string' || name.length === 0 || name.length > INSTRUMENT_BYTES_MAX) {
    throw bad(String(name), `must be 1..${INSTRUMENT_BYTES_MAX} characters`);
  }
  const parts = name.split('-');
  const underlying = parts[0]!;
  if (!isUnderlying(underlying)) throw bad(name, `bad underlying '${underlying}'`);
  if (parts.length === 2 && parts[1] === 'PERPETUAL') return { kind: 'perpetual', underlying };
  if (parts.length === 2) {
    return { kind: 'future', underlying, expiryDay: parseExpiryDate(parts[1]!, name) };
  }
  if (parts.length !== 4) throw bad(name, 'expected UNDERLYING-DATE or UNDERLYING-DATE-STRIKE-C|P');
  const expiryDay = parseExpiryDate(parts[1]!, name);
  const strikeText = parts[2]!;
  if (!STRIKE_RE.test(strikeText)) {
    throw bad(name, `strike '${strikeText}' is not a positive integer without leading zeros`);
  }
  const strike = BigInt(strikeText);
  if (strike > STRIKE_WHOLE_MAX) throw bad(name, `strike above ${STRIKE_WHOLE_MAX}`);
  const type = parts[3];
  if (type !== 'C' && type !== 'P') throw bad(name, `option type '${type}' is not C or P`);
  return {
    kind: 'option',
    underlying,
    expiryDay,
    strikeQuote: strike * QUOTE_UNITS_PER_WHOLE,
    isCall: type === 'C',
  };
}

/** Block time (ms) of expiry, or undefined for a perpetual. */
export function expiryMsOf(i: Instrument): number | undefined {
  return i.kind === 'perpetual' ? undefined : expiryMsOfDay(i.expiryDay);
}
