// Price sources for operators with real feeds (docs/operations.md, "Oracle
// sources"): a local JSON file, re-read when it changes, and an http(s) URL,
// polled in the background. Both read the same format:
//   {"BTC": "60123.45", "ETH": "3011.2", "timeMs": 1795625493510}
// prices as decimal strings in quote currency, timeMs optional. A feed is
// outside input: whatever is wrong with it, the source reports nothing for
// what it concerns and logs one warning with a typed reason. observe() runs
// inside extendVote, so it never throws and never waits for the network.

import { readFileSync, statSync } from 'node:fs';
import { ZommaError } from '../lib/errors.ts';
import {
  ORACLE_FEED_BYTES_MAX,
  ORACLE_FEED_DECIMALS,
  ORACLE_FEED_FETCH_TIMEOUT_MS_MAX,
  ORACLE_PRICE_BITS_MAX,
} from '../lib/limits.ts';
import type { OracleSourceConfig } from './config.ts';
import type { Log } from './log.ts';
import { silentLog } from './log.ts';
import type { Observation } from './oracle.ts';
import type { PriceSource } from './oracle_source.ts';
import { DEVNET_ASSETS, GbmPriceSource } from './oracle_source.ts';

export type FeedErrorCode =
  /** The file cannot be read, or the URL cannot be reached. */
  | 'FeedUnreadable'
  /** Larger than ORACLE_FEED_BYTES_MAX. */
  | 'FeedTooLarge'
  /** The HTTP answer is not 2xx. */
  | 'FeedBadStatus'
  /** The HTTP request took longer than its timeout. */
  | 'FeedTimeout'
  /** Not JSON, not an object, or a bad timeMs: nothing of it is used. */
  | 'FeedMalformed'
  /** A price that is not a positive decimal string with at most 6 decimals, or too large. */
  | 'FeedBadPrice'
  /** A name that is no underlying of the chain. */
  | 'FeedUnknownUnderlying'
  /** timeMs is further than maxAgeMs from this node's clock. */
  | 'FeedStale';

export class FeedError extends ZommaError<FeedErrorCode> {}

/** One good reading of a feed. */
export interface Feed {
  readonly timeMs: number;
  readonly prices: ReadonlyMap<string, bigint>;
}

/** A feed's readable part, and what was left out of it. */
export interface ParsedFeed extends Feed {
  readonly problems: readonly FeedError[];
}

const PRICE_RE = /^(\d{1,40})(?:\.(\d+))?$/;
const SCALE = 10n ** BigInt(ORACLE_FEED_DECIMALS);

/** Quote units of a decimal string; throws FeedBadPrice. */
export function parseFeedPrice(x: unknown, field: string): bigint {
  const match = typeof x === 'string' ? PRICE_RE.exec(x) : null;
  if (match === null) {
    throw new FeedError('FeedBadPrice', `${field}: must be a decimal string such as "60123.45"`);
  }
  const fraction = match[2] ?? '';
  if (fraction.length > ORACLE_FEED_DECIMALS) {
    throw new FeedError('FeedBadPrice', `${field}: at most ${ORACLE_FEED_DECIMALS} decimals`);
  }
  const quote = BigInt(match[1]!) * SCALE + BigInt(fraction.padEnd(ORACLE_FEED_DECIMALS, '0'));
  if (quote <= 0n) throw new FeedError('FeedBadPrice', `${field}: must be positive`);
  // A larger one would not fit the vote extension's encoding.
  if (quote >> BigInt(ORACLE_PRICE_BITS_MAX) !== 0n) {
    throw new FeedError('FeedBadPrice', `${field}: too large`);
  }
  return quote;
}

/**
 * Parses a feed's text. A problem with one underlying leaves only it out (in
 * `problems`); a problem with the whole feed throws FeedError.
 */
export function parseFeed(
  text: string,
  underlyings: ReadonlySet<string>,
  defaultTimeMs: number,
): ParsedFeed {
  if (text.length > ORACLE_FEED_BYTES_MAX) {
    throw new FeedError('FeedTooLarge', `more than ${ORACLE_FEED_BYTES_MAX} bytes`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text) as unknown;
  } catch (error) {
    throw new FeedError('FeedMalformed', `not JSON: ${(error as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new FeedError('FeedMalformed', 'must be a JSON object');
  }
  const entries = raw as Record<string, unknown>;
  let timeMs = defaultTimeMs;
  if (entries.timeMs !== undefined) {
    const t = entries.timeMs;
    if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 0) {
      throw new FeedError('FeedMalformed', 'timeMs: must be a non-negative integer (ms)');
    }
    timeMs = t;
  }
  const prices = new Map<string, bigint>();
  const problems: FeedError[] = [];
  for (const name of Object.keys(entries).sort()) {
    if (name === 'timeMs') continue;
    if (!underlyings.has(name)) {
      problems.push(new FeedError('FeedUnknownUnderlying', `${name}: not an underlying`));
      continue;
    }
    try {
      prices.set(name, parseFeedPrice(entries[name], name));
    } catch (error) {
      if (!(error instanceof FeedError)) throw error;
      problems.push(error);
    }
  }
  return { timeMs, prices, problems };
}

/** Logs a feed's trouble once, until it changes or clears. */
class FeedWarnings {
  private last = '';
  constructor(
    private readonly log: Log,
    private readonly source: string,
  ) {}

  warn(errors: readonly FeedError[]): void {
    const reasons = errors.map((e) => `${e.code}: ${e.message}`);
    const key = reasons.join('\n');
    if (key === this.last) return;
    this.last = key;
    this.log.warn(
      { source: this.source, code: errors[0]!.code, reasons },
      'price feed: left out what is wrong',
    );
  }

  clear(): void {
    this.last = '';
  }
}

/**
 * A feed's prices at `nowMs`, or none when it is older (or newer) than
 * maxAgeMs: one warning when it turns stale, another if it does again.
 */
function freshPrices(
  feed: Feed | null,
  nowMs: number,
  maxAgeMs: number,
  staleness: FeedWarnings,
): Observation {
  if (feed === null) return new Map();
  if (Math.abs(nowMs - feed.timeMs) > maxAgeMs) {
    staleness.warn([
      new FeedError(
        'FeedStale',
        `timeMs ${feed.timeMs} is more than ${maxAgeMs} ms from this clock`,
      ),
    ]);
    return new Map();
  }
  staleness.clear();
  return feed.prices;
}

export interface FileSourceOptions {
  readonly path: string;
  readonly maxAgeMs: number;
  /** The chain's underlyings: any other name in the file is left out. */
  readonly underlyings: readonly string[];
  readonly log?: Log;
}

/**
 * Reads a local JSON file, again only when its mtime or size changes (a stat
 * per observation: once a height). Without timeMs the file's mtime is its
 * time. Writers should replace the file by rename, so that no half-written
 * file is read.
 */
export class FilePriceSource implements PriceSource {
  private readonly underlyings: ReadonlySet<string>;
  private readonly warnings: FeedWarnings;
  private readonly staleness: FeedWarnings;
  private seen: { mtimeMs: number; size: number } | null = null;
  private feed: Feed | null = null;

  constructor(private readonly options: FileSourceOptions) {
    this.underlyings = new Set(options.underlyings);
    this.warnings = new FeedWarnings(options.log ?? silentLog, `file:${options.path}`);
    this.staleness = new FeedWarnings(options.log ?? silentLog, `file:${options.path}`);
  }

  observe(nowMs: number): Observation {
    this.refresh();
    return freshPrices(this.feed, nowMs, this.options.maxAgeMs, this.staleness);
  }

  private refresh(): void {
    const { path } = this.options;
    let stat: { mtimeMs: number; size: number };
    try {
      stat = statSync(path);
    } catch (error) {
      this.seen = null;
      this.fail(new FeedError('FeedUnreadable', `${path}: ${(error as Error).message}`));
      return;
    }
    if (this.seen?.mtimeMs === stat.mtimeMs && this.seen.size === stat.size) return;
    this.seen = { mtimeMs: stat.mtimeMs, size: stat.size };
    if (stat.size > ORACLE_FEED_BYTES_MAX) {
      this.fail(new FeedError('FeedTooLarge', `${path}: more than ${ORACLE_FEED_BYTES_MAX} bytes`));
      return;
    }
    try {
      const text = readFileSync(path, 'utf8');
      this.accept(parseFeed(text, this.underlyings, Math.round(stat.mtimeMs)));
    } catch (error) {
      if (error instanceof FeedError) this.fail(error);
      else this.fail(new FeedError('FeedUnreadable', `${path}: ${(error as Error).message}`));
    }
  }

  private accept(parsed: ParsedFeed): void {
    this.feed = parsed;
    if (parsed.problems.length > 0) this.warnings.warn(parsed.problems);
    else this.warnings.clear();
  }

  private fail(error: FeedError): void {
    this.feed = null;
    this.warnings.warn([error]);
  }
}

export interface UrlSourceOptions {
  readonly url: string;
  readonly intervalMs: number;
  readonly maxAgeMs: number;
  readonly underlyings: readonly string[];
  readonly log?: Log;
  /** Wall time, ms: the time of an answer without timeMs. */
  readonly nowMs?: () => number;
  /** Per request (default: the interval, at most ORACLE_FEED_FETCH_TIMEOUT_MS_MAX). */
  readonly fetchTimeoutMs?: number;
}

/**
 * Polls an http(s) URL every intervalMs in the background and reports the last
 * good answer while it is fresh. A failed poll keeps the previous answer,
 * which ages out after maxAgeMs; without timeMs an answer's time is when it
 * arrived.
 */
export class UrlPriceSource implements PriceSource {
  private readonly underlyings: ReadonlySet<string>;
  private readonly warnings: FeedWarnings;
  private readonly staleness: FeedWarnings;
  private readonly nowMs: () => number;
  private readonly fetchTimeoutMs: number;
  private feed: Feed | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private inFlight: Promise<void> | null = null;

  /** The URL as logs show it: its query (often an API key) left out. */
  private readonly shown: string;

  constructor(private readonly options: UrlSourceOptions) {
    this.underlyings = new Set(options.underlyings);
    this.shown = shownUrl(options.url);
    this.warnings = new FeedWarnings(options.log ?? silentLog, `url:${this.shown}`);
    this.staleness = new FeedWarnings(options.log ?? silentLog, `url:${this.shown}`);
    this.nowMs = options.nowMs ?? Date.now;
    this.fetchTimeoutMs =
      options.fetchTimeoutMs ?? Math.min(options.intervalMs, ORACLE_FEED_FETCH_TIMEOUT_MS_MAX);
  }

  observe(nowMs: number): Observation {
    return freshPrices(this.feed, nowMs, this.options.maxAgeMs, this.staleness);
  }

  /** Polls now and then every intervalMs; the timer does not keep the process alive. */
  start(): void {
    if (this.timer !== null) return;
    void this.poll();
    this.timer = setInterval(() => void this.poll(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** One request (joins the one in flight); never rejects. */
  poll(): Promise<void> {
    this.inFlight ??= this.pollOnce().finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  private async pollOnce(): Promise<void> {
    try {
      const text = await this.fetchText();
      const parsed = parseFeed(text, this.underlyings, this.nowMs());
      this.feed = parsed;
      if (parsed.problems.length > 0) this.warnings.warn(parsed.problems);
      else this.warnings.clear();
    } catch (error) {
      this.warnings.warn([asFeedError(error, this.shown, this.options.url)]);
    }
  }

  private async fetchText(): Promise<string> {
    const url = this.shown;
    const response = await fetch(this.options.url, {
      signal: AbortSignal.timeout(this.fetchTimeoutMs),
    });
    if (!response.ok) {
      await response.body?.cancel();
      throw new FeedError('FeedBadStatus', `${url}: HTTP ${response.status}`);
    }
    const declared = Number(response.headers.get('content-length') ?? 0);
    if (declared > ORACLE_FEED_BYTES_MAX) {
      await response.body?.cancel();
      throw new FeedError('FeedTooLarge', `${url}: more than ${ORACLE_FEED_BYTES_MAX} bytes`);
    }
    // The header may be absent or wrong: the body is counted as it comes.
    const chunks: Uint8Array[] = [];
    let bytes = 0;
    if (response.body !== null) {
      for await (const chunk of response.body) {
        bytes += chunk.length;
        if (bytes > ORACLE_FEED_BYTES_MAX) {
          await response.body.cancel().catch(() => {});
          throw new FeedError('FeedTooLarge', `${url}: more than ${ORACLE_FEED_BYTES_MAX} bytes`);
        }
        chunks.push(chunk);
      }
    }
    return Buffer.concat(chunks).toString('utf8');
  }
}

/**
 * `url` without its query and fragment (an API key often rides there) and
 * without credentials: what a log line or an error may show of it.
 */
export function shownUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search === '' ? '' : '?…'}`;
  } catch {
    return '(a URL that does not parse)';
  }
}

function asFeedError(error: unknown, url: string, raw: string): FeedError {
  if (error instanceof FeedError) return error;
  const e = error as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') {
    return new FeedError('FeedTimeout', `${url}: no answer in time`);
  }
  const reason = e.cause?.code ?? e.cause?.message ?? e.message;
  // fetch's messages may quote the whole URL, query included.
  return new FeedError('FeedUnreadable', `${url}: ${reason.split(raw).join(url)}`);
}

/** A node's configured sources, and the background work of those that poll. */
export interface PriceSources {
  readonly sources: readonly PriceSource[];
  start(): void;
  stop(): void;
}

export interface BuildContext {
  /** The chain's underlyings (its markets'). */
  readonly underlyings: readonly string[];
  /** Where the simulated market starts (the genesis time). */
  readonly originMs: number;
  readonly log?: Log;
}

export function buildPriceSources(
  configs: readonly OracleSourceConfig[],
  context: BuildContext,
): PriceSources {
  const log = context.log ?? silentLog;
  const urls: UrlPriceSource[] = [];
  const sources = configs.map((c): PriceSource => {
    switch (c.kind) {
      case 'simulated':
        return new GbmPriceSource(DEVNET_ASSETS, c.seed, c.index, context.originMs);
      case 'file':
        return new FilePriceSource({ ...c, underlyings: context.underlyings, log });
      case 'url': {
        const source = new UrlPriceSource({ ...c, underlyings: context.underlyings, log });
        urls.push(source);
        return source;
      }
    }
  });
  return {
    sources,
    start: () => urls.forEach((u) => u.start()),
    stop: () => urls.forEach((u) => u.stop()),
  };
}
