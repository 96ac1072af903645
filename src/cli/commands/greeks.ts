// `zomma greeks`: Black–Scholes price and greeks of one European option, or its
// implied volatility from a price, computed by the same deterministic math the
// exchange uses (src/math).

import { parseArgs } from 'node:util';
import { type Command, type CommandOptions, type Io, UsageError } from '../io.ts';
import {
  blackScholes,
  fromDecimal,
  type Greeks,
  impliedVol,
  MathError,
  SCALE,
  toDecimal,
} from '../../math/index.ts';

const USAGE = `zomma greeks --spot S --strike K --expiry E (--vol V | --price P) [--rate R] [--put] [--json]

  --spot S      underlying price (a decimal, e.g. 60000)
  --strike K    strike price
  --expiry E    years to expiry (0.25), a date (2026-12-27, at 08:00 UTC as crypto
                options expire) or an ISO time with its zone (2026-12-27T08:00:00Z)
  --vol V       volatility per year: 0.8 or 80%
  --price P     option price: solve for the implied volatility instead
  --rate R      risk-free rate per year, continuously compounded: 0.05 or 5% (default 0);
                write a negative one as --rate=-0.01
  --put         a put (default: a call)
  --json        print JSON (every number a decimal string) instead of a table
  --now T       ISO time (or a date: its midnight UTC) to measure a date expiry from (default: now)

Greeks: vega per 1.00 of volatility, theta per year, rho per 1.00 of rate,
vanna = d delta / d vol, volga = d vega / d vol (docs/math.md).`;

const MS_PER_YEAR = 365n * 24n * 3_600_000n; // ACT/365
const EXPIRY_HOUR_UTC = 'T08:00:00Z';
const YEARS = /^\d+(\.\d+)?$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

function decimal(option: string, text: string | undefined): bigint {
  if (text === undefined) throw new UsageError(`--${option} is required`);
  try {
    return fromDecimal(text);
  } catch (error) {
    if (error instanceof MathError) throw new UsageError(`--${option}: ${error.message}`);
    throw error;
  }
}

/** A decimal, or a percentage with a trailing %. */
function fraction(option: string, text: string): bigint {
  if (!text.endsWith('%')) return decimal(option, text);
  const percent = decimal(option, text.slice(0, -1));
  if (percent % 100n !== 0n) {
    // A percentage with more than 16 decimals has no exact 18-decimal fraction.
    throw new UsageError(`--${option}: too many decimals in '${text}'`);
  }
  return percent / 100n;
}

/** An ISO time with its zone; a day the month does not have is refused, not rolled over. */
function parseTime(option: string, text: string): number {
  const ms = ISO_TIME.test(text) ? Date.parse(text) : NaN;
  if (!Number.isFinite(ms)) throw new UsageError(`--${option}: not a valid time: '${text}'`);
  // Date.parse takes 2026-02-31 as 2026-03-03.
  const day = text.slice(0, 10);
  if (new Date(`${day}T00:00:00Z`).toISOString().slice(0, 10) !== day) {
    throw new UsageError(`--${option}: no such day: '${day}'`);
  }
  return ms;
}

function expiryYears(text: string, nowText: string | undefined): bigint {
  // Checked even when the expiry is in years and does not need it: a mistyped --now is not ignored.
  // A date alone is its midnight UTC (as Date.parse reads one).
  const nowMs =
    nowText === undefined
      ? Date.now()
      : parseTime('now', DATE.test(nowText) ? `${nowText}T00:00:00Z` : nowText);
  if (YEARS.test(text)) {
    const years = decimal('expiry', text);
    if (years <= 0n) throw new UsageError('--expiry must be after now');
    return years;
  }
  let expiryMs: number;
  if (DATE.test(text)) expiryMs = parseTime('expiry', `${text}${EXPIRY_HOUR_UTC}`);
  else if (ISO_TIME.test(text)) expiryMs = parseTime('expiry', text);
  else {
    throw new UsageError(
      `--expiry: '${text}' is neither years (0.25), a date (2026-12-27) nor an ISO time with a zone`,
    );
  }
  if (expiryMs <= nowMs) {
    throw new UsageError(`--expiry ${text} is in the past`);
  }
  return (BigInt(expiryMs - nowMs) * SCALE) / MS_PER_YEAR;
}

interface Result {
  type: 'call' | 'put';
  spot: bigint;
  strike: bigint;
  timeYears: bigint;
  rate: bigint;
  vol: bigint;
  volFromPrice: boolean;
  greeks: Greeks;
}

const ROWS: Array<[keyof Greeks, string]> = [
  ['price', ''],
  ['delta', ''],
  ['gamma', 'per unit of spot'],
  ['vega', 'per 1.00 vol'],
  ['theta', 'per year'],
  ['rho', 'per 1.00 rate'],
  ['vanna', 'd delta / d vol'],
  ['volga', 'd vega / d vol'],
];

function trim(x: bigint, digits = 18): string {
  const text = toDecimal(x, digits);
  return text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text;
}

function printTable(io: Io, r: Result): void {
  const g = r.greeks;
  const header =
    `${r.type}  spot ${trim(r.spot)}  strike ${trim(r.strike)}  ` +
    `expiry ${trim(r.timeYears, 8)} years  rate ${trim(r.rate * 100n)}%  ` +
    `vol ${trim(r.vol * 100n, 16)}%${r.volFromPrice ? ' (implied from the price)' : ''}`;
  const values = ROWS.map(([name]) => toDecimal(g[name], 10));
  const width = Math.max(...values.map((v) => v.length));
  const lines = ROWS.map(([name, unit], i) =>
    `  ${name.padEnd(6)} ${values[i]!.padStart(width)}  ${unit}`.trimEnd(),
  );
  lines.push(
    '',
    `  per day: theta ${toDecimal(g.theta / 365n, 10)}; per vol point: vega ${toDecimal(g.vega / 100n, 10)}`,
  );
  io.out([header, ...lines].join('\n'));
}

function printJson(io: Io, r: Result): void {
  const g = r.greeks;
  const out: Record<string, string | boolean> = {
    type: r.type,
    spot: toDecimal(r.spot),
    strike: toDecimal(r.strike),
    timeYears: toDecimal(r.timeYears),
    rate: toDecimal(r.rate),
    vol: toDecimal(r.vol),
    volFromPrice: r.volFromPrice,
  };
  for (const [name] of ROWS) out[name] = toDecimal(g[name]);
  io.out(JSON.stringify(out));
}

/** What run() gives util.parseArgs; main() names the nearest of them for an unknown option. */
const OPTIONS = {
  spot: { type: 'string' },
  strike: { type: 'string' },
  expiry: { type: 'string' },
  vol: { type: 'string' },
  price: { type: 'string' },
  rate: { type: 'string' },
  put: { type: 'boolean' },
  json: { type: 'boolean' },
  now: { type: 'string' },
} as const satisfies CommandOptions;

export const command: Command = {
  name: 'greeks',
  options: OPTIONS,
  summary: 'Black–Scholes price and greeks of an option, or its implied volatility',
  usage: USAGE,
  async run(args, io) {
    const { values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: OPTIONS,
    });
    if ((values.vol === undefined) === (values.price === undefined)) {
      throw new UsageError('give exactly one of --vol (to price) and --price (to solve for vol)');
    }
    const spot = decimal('spot', values.spot);
    const strike = decimal('strike', values.strike);
    if (spot <= 0n) throw new UsageError('--spot must be positive');
    if (strike <= 0n) throw new UsageError('--strike must be positive');
    if (values.expiry === undefined) throw new UsageError('--expiry is required');
    const timeYears = expiryYears(values.expiry, values.now);
    const rate = values.rate === undefined ? 0n : fraction('rate', values.rate);
    const isCall = values.put !== true;
    const market = { spot, strike, timeYears, rate, isCall };
    let vol: bigint;
    if (values.vol !== undefined) {
      vol = fraction('vol', values.vol);
      if (vol <= 0n) throw new UsageError('--vol must be positive');
    } else {
      const price = decimal('price', values.price);
      if (price < 0n) throw new UsageError('--price must not be negative');
      vol = impliedVol({ ...market, price });
    }
    const result: Result = {
      type: isCall ? 'call' : 'put',
      ...market,
      vol,
      volFromPrice: values.price !== undefined,
      greeks: blackScholes({ ...market, vol }),
    };
    if (values.json === true) printJson(io, result);
    else printTable(io, result);
    return 0;
  },
};
