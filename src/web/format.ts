// Number formatting for the dashboard. Money arrives as decimal strings of
// quote units (6 decimals, may pass 2^53), prices as integer ticks and sizes as
// integer lots (src/api/view.ts); exact values are formatted with bigint, and
// floats appear only where a chart needs a coordinate.

import type { InstrumentView } from '../api/view.ts';

export const QUOTE_DECIMALS = 6;
const QUOTE_SCALE = 10n ** BigInt(QUOTE_DECIMALS);

function group(digits: string): string {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** A scaled integer as a decimal with grouping: (123456789n, 6, 2) → "123.45" (truncated toward zero). */
export function formatScaled(value: bigint, scaleDigits: number, shownDigits: number): string {
  const negative = value < 0n;
  const abs = negative ? -value : value;
  const scale = 10n ** BigInt(scaleDigits);
  const whole = group((abs / scale).toString());
  let text = whole;
  if (shownDigits > 0) {
    const frac = (abs % scale).toString().padStart(scaleDigits, '0');
    text += '.' + frac.slice(0, shownDigits).padEnd(shownDigits, '0');
  }
  return (negative && /[1-9]/.test(text) ? '−' : '') + text;
}

/** Quote units ("1000500000") → "1,000.50"; `digits` decimals shown. Bad input shows as "—". */
export function formatQuote(units: string | bigint, digits = 2): string {
  if (typeof units === 'string' && !/^-?[0-9]+$/.test(units)) return '—';
  return formatScaled(BigInt(units), QUOTE_DECIMALS, digits);
}

/** Decimals needed to show one tick exactly: tick 500000 (0.5) → 1, 1000000 → 0. */
export function tickDecimals(tickSizeQuote: string): number {
  let tick = BigInt(tickSizeQuote);
  let decimals = QUOTE_DECIMALS;
  while (decimals > 0 && tick % 10n === 0n) {
    tick /= 10n;
    decimals--;
  }
  return decimals;
}

/** Price ticks → a price string in quote currency, at the tick's precision. */
export function formatPrice(ticks: number | undefined, inst: InstrumentView | undefined): string {
  if (ticks === undefined) return '—';
  if (inst === undefined) return String(ticks);
  const units = BigInt(ticks) * BigInt(inst.tickSizeQuote);
  return formatScaled(units, QUOTE_DECIMALS, tickDecimals(inst.tickSizeQuote));
}

/** Price ticks → a float in quote currency, for chart coordinates only. */
export function priceOf(ticks: number, inst: InstrumentView): number {
  return (ticks * Number(inst.tickSizeQuote)) / Number(QUOTE_SCALE);
}

/** Decimals to show a size in base units: lotsPerBase 1000 → 3. */
export function lotDecimals(lotsPerBase: number): number {
  let decimals = 0;
  let n = lotsPerBase;
  while (n > 1 && n % 10 === 0) {
    n /= 10;
    decimals++;
  }
  return n === 1 ? decimals : 4;
}

/** Lots → size in base units ("2.500"); signed. */
export function formatSize(lots: number | undefined, inst: InstrumentView | undefined): string {
  if (lots === undefined) return '—';
  if (inst === undefined) return String(lots);
  const decimals = lotDecimals(inst.lotsPerBase);
  if (10 ** decimals === inst.lotsPerBase) return formatScaled(BigInt(lots), decimals, decimals);
  return (lots / inst.lotsPerBase).toFixed(decimals);
}

/** Lots → base units as a float, for chart coordinates only. */
export function sizeOf(lots: number, inst: InstrumentView): number {
  return lots / inst.lotsPerBase;
}

/** Parts per million → percent with 4 decimals: 125 → "0.0125%". */
export function formatPpm(ppm: number | undefined): string {
  if (ppm === undefined) return '—';
  return formatScaled(BigInt(ppm), 4, 4) + '%';
}

/** A decimal string ("0.5123") as a percentage with 2 decimals ("51.23%"). */
export function formatPercentOf(decimal: string | undefined): string {
  if (decimal === undefined || !/^-?[0-9]+(\.[0-9]+)?$/.test(decimal)) return '—';
  return (Number(decimal) * 100).toFixed(2) + '%';
}

/** A decimal string at a fixed number of places. */
export function formatDecimal(decimal: string | undefined, places: number): string {
  if (decimal === undefined || !/^-?[0-9]+(\.[0-9]+)?$/.test(decimal)) return '—';
  return Number(decimal).toFixed(places);
}

/** A whole number with grouping. */
export function formatInt(n: number | undefined): string {
  return n === undefined ? '—' : group(String(Math.trunc(n)));
}

/** Milliseconds as "850 ms" or "2.4 s" or "3 min". */
export function formatMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/** Block time (ms since epoch) as an ISO UTC time of day: "14:03:22". */
export function formatClock(timeMs: number): string {
  return new Date(timeMs).toISOString().slice(11, 19);
}

/** A UTC date: "27 Dec 2026". */
export function formatDate(timeMs: number): string {
  const d = new Date(timeMs);
  const month = d.toLocaleString('en-GB', { month: 'short', timeZone: 'UTC' });
  return `${d.getUTCDate()} ${month} ${d.getUTCFullYear()}`;
}

/** 0xabcdef…1234 */
export function shortHex(hex: string, head = 6, tail = 4): string {
  return hex.length <= head + tail + 1 ? hex : `${hex.slice(0, head)}…${hex.slice(-tail)}`;
}

/** part / whole as a percentage string, for quote strings; "—" when whole ≤ 0. */
export function formatRatio(part: string, whole: string): string {
  if (!/^-?[0-9]+$/.test(part) || !/^-?[0-9]+$/.test(whole)) return '—';
  const w = BigInt(whole);
  if (w <= 0n) return '—';
  return formatScaled((BigInt(part) * 10_000n) / w, 2, 2) + '%';
}
