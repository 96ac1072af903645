// Stress scenarios (docs/stress.md, "Scenario format"): per underlying, a path
// of (time offset, price, volatility multiplier) points, linearly interpolated,
// with segments where the oracle publishes nothing, or no smiles while its
// prices go on. Parsed from JSON with a typed error naming the first bad
// field; four built-ins.
//
// Prices are kept in integer quote units (6 decimals) and interpolated with
// explicit flooring, so one scenario on one state gives one block sequence on
// every machine.

import { ZommaError } from '../../lib/errors.ts';
import { divBig } from '../../lib/int.ts';
import {
  STRESS_BLOCK_MS_MAX,
  STRESS_BLOCKS_MAX,
  STRESS_LADDER_LEVELS_MAX,
  STRESS_POINTS_MAX,
  STRESS_UNDERLYINGS_MAX,
} from '../../lib/limits.ts';

export class ScenarioError extends ZommaError<'BadScenario'> {
  readonly field: string;
  constructor(field: string, reason: string) {
    super('BadScenario', `${field}: ${reason}`);
    this.field = field;
  }
}

/** One point of a path, as written: exactly one of moveBps and priceQuote. */
export interface PathPoint {
  readonly atMs: number;
  /** Move from the state's index at the start, in basis points (−10,000 < x). */
  readonly moveBps?: number;
  /** Absolute index price, quote units per whole base unit. */
  readonly priceQuote?: bigint;
  /** Volatility multiplier, parts per million (1× = 1,000,000). */
  readonly volPpm: number;
  /** From this point until the next, the oracle publishes nothing (the last price holds). */
  readonly frozen: boolean;
  /** From this point until the next, the oracle publishes no smile (its prices go on unless frozen). */
  readonly smilesFrozen: boolean;
}

export interface Liquidity {
  /** Distance of each ladder level from the index, basis points, ascending. */
  readonly levelsBps: readonly number[];
  /** Notional quoted at each level on each side, quote units. */
  readonly quotePerLevel: bigint;
}

export interface Scenario {
  readonly name: string;
  readonly description: string;
  /** Simulated time between blocks. */
  readonly blockMs: number;
  readonly durationMs: number;
  /** By underlying; '*' applies to every underlying not named. */
  readonly paths: ReadonlyMap<string, readonly PathPoint[]>;
  /** null: no liquidity provider, liquidations meet only the book the state had. */
  readonly liquidity: Liquidity | null;
}

/** The path resolved against the state's start price: absolute prices. */
export interface ResolvedPoint {
  readonly atMs: number;
  readonly priceQuote: bigint;
  readonly volPpm: number;
  readonly frozen: boolean;
  readonly smilesFrozen: boolean;
}

export interface PathSample {
  readonly priceQuote: bigint;
  readonly volPpm: number;
  /** The oracle publishes nothing at this time. */
  readonly frozen: boolean;
  /** The oracle publishes no smile at this time (nor anything, where frozen). */
  readonly smilesFrozen: boolean;
}

const BPS = 10_000;
const PPM = 1_000_000;
const QUOTE_DECIMALS = 6;
export const DEFAULT_BLOCK_MS = 1_000;
export const DEFAULT_LIQUIDITY: Liquidity = {
  levelsBps: [10, 25, 50, 100, 200, 500],
  quotePerLevel: 100_000n * 1_000_000n,
};

// --- parsing -------------------------------------------------------------------------

type Json = unknown;

function isRecord(x: Json): x is Record<string, Json> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function onlyKeys(x: Record<string, Json>, field: string, allowed: readonly string[]): void {
  for (const key of Object.keys(x)) {
    if (!allowed.includes(key)) {
      throw new ScenarioError(`${field}.${key}`, `unknown field (allowed: ${allowed.join(', ')})`);
    }
  }
}

function integer(x: Json, field: string, lo: number, hi: number): number {
  if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < lo || x > hi) {
    throw new ScenarioError(field, `must be an integer in [${lo}, ${hi}]`);
  }
  return x;
}

/** A non-negative decimal with at most `decimals` places, scaled to an integer. */
export function parseDecimal(x: Json, field: string, decimals: number): bigint {
  const text = typeof x === 'number' && Number.isFinite(x) ? String(x) : x;
  const re = new RegExp(`^(\\d{1,30})(?:\\.(\\d{1,${decimals}}))?$`);
  const match = typeof text === 'string' ? re.exec(text) : null;
  if (match === null) {
    throw new ScenarioError(
      field,
      `must be a non-negative decimal with at most ${decimals} decimals`,
    );
  }
  const fraction = (match[2] ?? '').padEnd(decimals, '0');
  return BigInt(match[1]!) * 10n ** BigInt(decimals) + BigInt(fraction === '' ? '0' : fraction);
}

function parsePoint(x: Json, field: string, previousMs: number): PathPoint {
  if (!isRecord(x)) throw new ScenarioError(field, 'must be an object');
  onlyKeys(x, field, ['atS', 'moveBps', 'price', 'vol', 'oracle', 'smiles']);
  const atS = integer(x.atS, `${field}.atS`, 0, Number.MAX_SAFE_INTEGER);
  const atMs = atS * 1_000;
  if (!Number.isSafeInteger(atMs)) throw new ScenarioError(`${field}.atS`, 'too large');
  if (atMs < previousMs) throw new ScenarioError(`${field}.atS`, 'must not decrease');
  const hasMove = x.moveBps !== undefined;
  const hasPrice = x.price !== undefined;
  if (hasMove === hasPrice)
    throw new ScenarioError(field, 'needs exactly one of moveBps and price');
  const volPpm =
    x.vol === undefined ? PPM : Number(parseDecimal(x.vol, `${field}.vol`, QUOTE_DECIMALS));
  if (volPpm <= 0 || volPpm > 100 * PPM) {
    throw new ScenarioError(`${field}.vol`, 'must be in (0, 100]');
  }
  if (x.oracle !== undefined && x.oracle !== 'live' && x.oracle !== 'frozen') {
    throw new ScenarioError(`${field}.oracle`, "must be 'live' or 'frozen'");
  }
  const frozen = x.oracle === 'frozen';
  if (x.smiles !== undefined && x.smiles !== 'live' && x.smiles !== 'frozen') {
    throw new ScenarioError(`${field}.smiles`, "must be 'live' or 'frozen'");
  }
  const smilesFrozen = x.smiles === 'frozen';
  if (hasMove) {
    const moveBps = integer(x.moveBps, `${field}.moveBps`, -BPS + 1, 100 * BPS);
    return { atMs, moveBps, volPpm, frozen, smilesFrozen };
  }
  const priceQuote = parseDecimal(x.price, `${field}.price`, QUOTE_DECIMALS);
  if (priceQuote <= 0n) throw new ScenarioError(`${field}.price`, 'must be positive');
  return { atMs, priceQuote, volPpm, frozen, smilesFrozen };
}

function parsePath(x: Json, field: string): PathPoint[] {
  if (!Array.isArray(x) || x.length < 1 || x.length > STRESS_POINTS_MAX) {
    throw new ScenarioError(field, `must be a list of 1..${STRESS_POINTS_MAX} points`);
  }
  const points: PathPoint[] = [];
  let previousMs = 0;
  x.forEach((p: Json, i) => {
    const point = parsePoint(p, `${field}[${i}]`, previousMs);
    if (i === 0 && point.atMs !== 0) throw new ScenarioError(`${field}[0].atS`, 'must be 0');
    points.push(point);
    previousMs = point.atMs;
  });
  return points;
}

function parseLiquidity(x: Json, field: string): Liquidity | null {
  if (x === undefined) return DEFAULT_LIQUIDITY;
  if (x === 'none') return null;
  if (!isRecord(x)) throw new ScenarioError(field, "must be 'none' or an object");
  onlyKeys(x, field, ['levelsBps', 'quotePerLevel']);
  const levels = x.levelsBps;
  if (!Array.isArray(levels) || levels.length < 1 || levels.length > STRESS_LADDER_LEVELS_MAX) {
    throw new ScenarioError(
      `${field}.levelsBps`,
      `must list 1..${STRESS_LADDER_LEVELS_MAX} levels`,
    );
  }
  const levelsBps = levels.map((l: Json, i) => integer(l, `${field}.levelsBps[${i}]`, 1, BPS - 1));
  for (let i = 1; i < levelsBps.length; i++) {
    if (levelsBps[i]! <= levelsBps[i - 1]!) {
      throw new ScenarioError(`${field}.levelsBps[${i}]`, 'levels must ascend');
    }
  }
  const quotePerLevel = parseDecimal(x.quotePerLevel, `${field}.quotePerLevel`, QUOTE_DECIMALS);
  if (quotePerLevel <= 0n) throw new ScenarioError(`${field}.quotePerLevel`, 'must be positive');
  return { levelsBps, quotePerLevel };
}

/** Validates a parsed JSON scenario; throws ScenarioError naming the first bad field. */
export function parseScenario(x: Json): Scenario {
  if (!isRecord(x)) throw new ScenarioError('scenario', 'must be a JSON object');
  onlyKeys(x, 'scenario', [
    'name',
    'description',
    'blockMs',
    'durationS',
    'underlyings',
    'liquidity',
  ]);
  if (typeof x.name !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(x.name)) {
    throw new ScenarioError('name', '1..64 characters of [A-Za-z0-9_.-]');
  }
  if (
    x.description !== undefined &&
    (typeof x.description !== 'string' || x.description.length > 1_000)
  ) {
    throw new ScenarioError('description', 'a string of at most 1000 characters');
  }
  const blockMs =
    x.blockMs === undefined
      ? DEFAULT_BLOCK_MS
      : integer(x.blockMs, 'blockMs', 1, STRESS_BLOCK_MS_MAX);
  const underlyings = x.underlyings;
  if (!isRecord(underlyings)) throw new ScenarioError('underlyings', 'must be an object');
  const names = Object.keys(underlyings).sort();
  if (names.length < 1 || names.length > STRESS_UNDERLYINGS_MAX) {
    throw new ScenarioError('underlyings', `must name 1..${STRESS_UNDERLYINGS_MAX} underlyings`);
  }
  const paths = new Map<string, PathPoint[]>();
  let lastMs = 0;
  for (const name of names) {
    if (name !== '*' && !/^[A-Z0-9]{1,16}$/.test(name)) {
      throw new ScenarioError(`underlyings.${name}`, "an underlying ('BTC') or '*'");
    }
    const path = parsePath(underlyings[name], `underlyings.${name}`);
    paths.set(name, path);
    lastMs = Math.max(lastMs, path[path.length - 1]!.atMs);
  }
  const durationMs =
    x.durationS === undefined
      ? lastMs
      : integer(x.durationS, 'durationS', 1, Number.MAX_SAFE_INTEGER) * 1_000;
  if (durationMs < blockMs) throw new ScenarioError('durationS', 'shorter than one block');
  if (durationMs / blockMs > STRESS_BLOCKS_MAX) {
    throw new ScenarioError('durationS', `more than ${STRESS_BLOCKS_MAX} blocks`);
  }
  return {
    name: x.name,
    description: typeof x.description === 'string' ? x.description : '',
    blockMs,
    durationMs,
    paths,
    liquidity: parseLiquidity(x.liquidity, 'liquidity'),
  };
}

// --- built-ins -----------------------------------------------------------------------

/** The built-in scenarios, as the JSON a user would write (docs/stress.md). */
export const BUILTIN_SCENARIOS: Readonly<Record<string, Json>> = {
  'crash-40': {
    name: 'crash-40',
    description:
      'every underlying falls 40% in 10 minutes, volatility doubling; then 4 quiet minutes',
    durationS: 900,
    underlyings: {
      '*': [
        { atS: 0, moveBps: 0 },
        { atS: 60, moveBps: 0 },
        { atS: 660, moveBps: -4000, vol: 2 },
        { atS: 900, moveBps: -4000, vol: 2 },
      ],
    },
  },
  'gap-up-25': {
    name: 'gap-up-25',
    description: 'every underlying gaps up 25% between two blocks, volatility 1.5×; then 9 minutes',
    durationS: 600,
    underlyings: {
      '*': [
        { atS: 0, moveBps: 0 },
        { atS: 60, moveBps: 0 },
        { atS: 60, moveBps: 2500, vol: 1.5 },
        { atS: 600, moveBps: 2500, vol: 1.5 },
      ],
    },
  },
  'oracle-freeze': {
    name: 'oracle-freeze',
    description:
      'the oracle publishes nothing for 5 minutes while the market falls 15%, then jumps to it',
    durationS: 600,
    underlyings: {
      '*': [
        { atS: 0, moveBps: 0 },
        { atS: 60, moveBps: 0, oracle: 'frozen' },
        { atS: 360, moveBps: -1500, vol: 1.5 },
        { atS: 600, moveBps: -1500, vol: 1.5 },
      ],
    },
  },
  // Longer than a smile's staleAfterMs and the 10 minutes of grace after it
  // (UNSHOCKED_MAINTENANCE_GRACE_MS): options lose their marks, maintenance
  // values them by their last smile for the grace, then takes the sellers'
  // cushion, while the index moves on, by a gap among others.
  'smile-freeze': {
    name: 'smile-freeze',
    description:
      'the oracle publishes no smile for 20 minutes while its prices go on: down 10% in 8 minutes, a gap to -25%, then back up to -20%; smiles back for the last 5 minutes',
    durationS: 1560,
    underlyings: {
      '*': [
        { atS: 0, moveBps: 0 },
        { atS: 60, moveBps: 0, smiles: 'frozen' },
        { atS: 540, moveBps: -1000, smiles: 'frozen' },
        { atS: 540, moveBps: -2500, smiles: 'frozen' },
        { atS: 1260, moveBps: -2000 },
        { atS: 1560, moveBps: -2000 },
      ],
    },
  },
};

/**
 * Why `blockMs` cannot sample the scenario, or undefined if it can: the CLI
 * answers a bad `--block-ms` with this as a usage error, withBlockMs as a
 * BadScenario.
 */
export function blockMsProblem(scenario: Scenario, blockMs: number): string | undefined {
  if (!Number.isSafeInteger(blockMs) || blockMs < 1 || blockMs > STRESS_BLOCK_MS_MAX) {
    return `must be an integer in [1, ${STRESS_BLOCK_MS_MAX}]`;
  }
  if (scenario.durationMs < blockMs) {
    return `longer than the scenario (${scenario.durationMs} ms)`;
  }
  if (scenario.durationMs / blockMs > STRESS_BLOCKS_MAX) {
    return `more than ${STRESS_BLOCKS_MAX} blocks in the scenario's ${scenario.durationMs} ms`;
  }
  return undefined;
}

/**
 * The scenario sampled at another block interval (`--block-ms`): the same
 * paths, fewer or more blocks. Coarser blocks trade resolution for speed on
 * states with options, where every block revalues every held option.
 */
export function withBlockMs(scenario: Scenario, blockMs: number): Scenario {
  const problem = blockMsProblem(scenario, blockMs);
  if (problem !== undefined) throw new ScenarioError('blockMs', problem);
  return { ...scenario, blockMs };
}

export function builtinScenario(name: string): Scenario | undefined {
  const json = BUILTIN_SCENARIOS[name];
  return json === undefined ? undefined : parseScenario(json);
}

// --- paths ---------------------------------------------------------------------------

/** The points for an underlying: its own, else '*', else none (its price holds). */
export function pathFor(scenario: Scenario, underlying: string): readonly PathPoint[] | undefined {
  return scenario.paths.get(underlying) ?? scenario.paths.get('*');
}

/** Turns moves into prices against the state's index at the start (quote units). */
export function resolvePath(
  points: readonly PathPoint[],
  startPriceQuote: bigint,
  field: string,
): ResolvedPoint[] {
  return points.map((p, i) => {
    let priceQuote = p.priceQuote;
    if (priceQuote === undefined) {
      if (startPriceQuote <= 0n) {
        throw new ScenarioError(`${field}[${i}].moveBps`, 'the state has no index price to move');
      }
      priceQuote = divBig(startPriceQuote * BigInt(BPS + p.moveBps!), BigInt(BPS), 'halfEven');
      if (priceQuote < 1n) priceQuote = 1n;
    }
    return {
      atMs: p.atMs,
      priceQuote,
      volPpm: p.volPpm,
      frozen: p.frozen,
      smilesFrozen: p.smilesFrozen,
    };
  });
}

function lerp(a: bigint, b: bigint, num: number, den: number): bigint {
  return a + divBig((b - a) * BigInt(num), BigInt(den), 'floor');
}

/**
 * The path at `atMs`: linear between the points around it (at two points with
 * the same time, the later one wins: a gap), the last point's value after it.
 * The oracle is frozen on [frozen point, next point), its smiles alike.
 */
export function samplePath(points: readonly ResolvedPoint[], atMs: number): PathSample {
  let i = 0;
  while (i + 1 < points.length && points[i + 1]!.atMs <= atMs) i++;
  const a = points[i]!;
  const b = points[i + 1];
  if (b === undefined || b.atMs === a.atMs) {
    return {
      priceQuote: a.priceQuote,
      volPpm: a.volPpm,
      frozen: a.frozen,
      smilesFrozen: a.smilesFrozen,
    };
  }
  const num = atMs - a.atMs;
  const den = b.atMs - a.atMs;
  return {
    priceQuote: lerp(a.priceQuote, b.priceQuote, num, den),
    volPpm: Number(lerp(BigInt(a.volPpm), BigInt(b.volPpm), num, den)),
    frozen: a.frozen,
    smilesFrozen: a.smilesFrozen,
  };
}
