// Devnet bots that make the exchange look alive, and exercise it the way
// clients do: through the client SDK over HTTP, with their own keys funded by
// the faucet. The market maker quotes every listed instrument around the
// oracle index, a few levels each side, and replaces its quotes every few
// blocks: per instrument, cancel all, then post-only orders, with several
// instruments packed into one batch; the perpetuals every round, the dated
// instruments a few per round in turn.
// The taker sends small market (IOC) orders against it, and closes its
// largest position (reduce-only) when its margin runs out. Keys live in files,
// so a rerun trades from the same accounts.

import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  ZommaClient,
  addressOfKey,
  generateKey,
  loadKey,
  saveKey,
} from '../../api/client/index.ts';
import type { InstrumentView, KeyPair, Trader } from '../../api/client/index.ts';
import type { BatchableAction } from '../../exchange/tx/index.ts';
import { placeOrder } from '../../exchange/tx/index.ts';
import { BATCH_ACTIONS_MAX } from '../../lib/limits.ts';
import { Prng } from '../../lib/prng.ts';

export interface BotOptions {
  /** The node's API, e.g. http://127.0.0.1:27001. */
  readonly url: string;
  /** Where the bots' key files live. */
  readonly dir: string;
  /** Price levels each side. Default 3. */
  readonly levels?: number;
  /** Distance between levels, parts per million of the index. Default 500 (5 bps). */
  readonly stepPpm?: number;
  /** How often the maker replaces its quotes, ms (a few blocks). Default 2_000. */
  readonly refreshMs?: number;
  /** How often the taker trades, ms. Default 1_500. */
  readonly takeEveryMs?: number;
  readonly seed?: number;
  /** Progress and errors, for the caller to show (the node does not print). */
  readonly onEvent?: (event: BotEvent) => void;
}

export type BotEvent =
  | { type: 'funded'; bot: 'maker' | 'taker'; address: string }
  | { type: 'quoted'; instruments: number; orders: number }
  | { type: 'took'; instrument: string; side: 'buy' | 'sell'; filledLots: number }
  | { type: 'error'; bot: 'maker' | 'taker'; code: string; message: string };

export interface BotStats {
  quotes: number;
  takes: number;
  filledLots: number;
  errors: number;
}

export interface RunningBots {
  readonly maker: string;
  readonly taker: string;
  readonly stats: BotStats;
  stop(): Promise<void>;
}

/** Dollars a bot draws from the faucet (once: the faucet has a lifetime cap per address). */
const BOT_FUNDING_QUOTE = 500_000n * 1_000_000n;
/** A bot tops up when its cash falls below this. */
const BOT_CASH_MIN_QUOTE = 50_000n * 1_000_000n;
/**
 * Dated futures and options the maker requotes per round, taking them in turn.
 * Each costs a ticker read and a batch: quoting all ~90-150 of them at once
 * took more than the node's per-IP burst (API_IP_BURST_REQUESTS), so the round
 * failed on RateLimited and so did every other client on this host (the taker,
 * a dashboard) until the bucket refilled. Twelve a round keeps the bots near
 * 13 requests/s, a quarter of API_IP_REQUESTS_PER_S.
 */
const DATED_QUOTED_PER_ROUND = 12;
/** Notional of one quote level, quote units (about $2,000). */
const LEVEL_NOTIONAL_QUOTE = 2_000n * 1_000_000n;

/**
 * Instruments' quote groups (cancel all, then the levels) packed whole into as
 * few batches as BATCH_ACTIONS_MAX allows: one transaction per instrument
 * would run into the API's per-account rate limit once dozens are listed.
 */
export function packBatches(groups: readonly BatchableAction[][]): BatchableAction[][] {
  const out: BatchableAction[][] = [];
  let current: BatchableAction[] = [];
  for (const group of groups) {
    if (current.length > 0 && current.length + group.length > BATCH_ACTIONS_MAX) {
      out.push(current);
      current = [];
    }
    current = current.concat(group.slice(0, BATCH_ACTIONS_MAX));
  }
  if (current.length > 0) out.push(current);
  return out;
}

function keyIn(dir: string, name: string): KeyPair {
  const path = join(dir, `${name}.json`);
  if (existsSync(path)) return loadKey(path);
  mkdirSync(dir, { recursive: true });
  const key = generateKey();
  saveKey(path, key);
  return key;
}

async function fund(client: ZommaClient, trader: Trader): Promise<void> {
  const account = await client.account(trader.account).catch(() => undefined);
  const cash = BigInt(account?.subaccounts[0]?.cashQuote ?? '0');
  if (cash >= BOT_CASH_MIN_QUOTE) return;
  await trader.faucet(BOT_FUNDING_QUOTE);
}

export async function startBots(options: BotOptions): Promise<RunningBots> {
  const client = new ZommaClient(options.url);
  const emit = options.onEvent ?? (() => {});
  const maker = client.trader(keyIn(options.dir, 'maker'), { timeoutMs: 20_000 });
  const taker = client.trader(keyIn(options.dir, 'taker'), { timeoutMs: 20_000 });
  await fund(client, maker);
  emit({ type: 'funded', bot: 'maker', address: addressOfKey(maker.key) });
  await fund(client, taker);
  emit({ type: 'funded', bot: 'taker', address: addressOfKey(taker.key) });
  const trading = async (): Promise<InstrumentView[]> =>
    (await client.instruments()).instruments.filter((i) => i.status === 'trading');
  // Dated futures and options are listed and settled as time passes: each round re-reads the list.
  let instruments = await trading();

  const stats: BotStats = { quotes: 0, takes: 0, filledLots: 0, errors: 0 };
  const levels = options.levels ?? 3;
  const stepPpm = options.stepPpm ?? 500;
  const prng = new Prng(options.seed ?? 7);
  let stopping = false;
  const inFlight = new Set<Promise<void>>();
  const failed = (bot: 'maker' | 'taker') => (error: unknown) => {
    stats.errors++;
    const e = error as { code?: unknown; message?: unknown };
    emit({
      type: 'error',
      bot,
      code: typeof e.code === 'string' ? e.code : 'Error',
      message: String(e.message ?? error),
    });
  };
  /** Runs `work` unless the previous round of this bot is still out (no pile-up behind a slow node). */
  const every = (ms: number, bot: 'maker' | 'taker', work: () => Promise<void>) => {
    let busy = false;
    const timer = setInterval(() => {
      if (busy || stopping) return;
      busy = true;
      const p = work()
        .catch(failed(bot))
        .finally(() => {
          busy = false;
          inFlight.delete(p);
        });
      inFlight.add(p);
    }, ms);
    return timer;
  };

  let datedNext = 0;
  const quote = async () => {
    instruments = await trading();
    // Perpetuals every round; the dated instruments DATED_QUOTED_PER_ROUND at a time, in turn.
    const dated = instruments.filter((i) => i.kind !== 'perpetual');
    const start = datedNext % Math.max(1, dated.length);
    datedNext = start + DATED_QUOTED_PER_ROUND;
    const quoted = [
      ...instruments.filter((i) => i.kind === 'perpetual'),
      ...[...dated.slice(start), ...dated.slice(0, start)].slice(0, DATED_QUOTED_PER_ROUND),
    ];
    const indexTicks = await Promise.all(
      quoted.map(async (i) => (await client.ticker(i.instrument)).indexTicks),
    );
    // An underlying's price per base unit, from its perpetual's index (quote units).
    const basePrice = new Map<string, bigint>();
    quoted.forEach((i, k) => {
      if (i.kind === 'perpetual' && indexTicks[k]! > 0) {
        basePrice.set(i.underlying, BigInt(indexTicks[k]!) * BigInt(i.tickSizeQuote));
      }
    });
    const batches = quoted.map((i, k) => quotesFor(i, indexTicks[k]!, basePrice.get(i.underlying)));
    let orders = 0;
    await Promise.all(
      packBatches(batches.filter((actions) => actions.length > 1)).map(async (actions) => {
        const tx = await maker.send({ kind: 'batch', actions });
        // Actions the exchange refused inside an accepted batch (margin, bands) are errors too.
        const refused = (tx.actions ?? []).filter((a) => !a.ok);
        if (refused.length > 0) {
          stats.errors += refused.length;
          emit({
            type: 'error',
            bot: 'maker',
            code: refused[0]!.code ?? 'Refused',
            message: `${refused.length} of ${actions.length} quote actions refused: ${refused[0]!.message ?? ''}`,
          });
        }
        orders += actions.filter((a) => a.kind === 'placeOrder').length - refused.length;
      }),
    );
    stats.quotes++;
    emit({ type: 'quoted', instruments: batches.length, orders });
  };

  const quotesFor = (
    i: InstrumentView,
    indexTicks: number,
    basePriceQuote: bigint | undefined,
  ): BatchableAction[] => {
    const actions: BatchableAction[] = [{ kind: 'cancelAll', instrument: i.instrument }];
    if (indexTicks <= 0) return actions;
    // A level's size is its notional in the underlying: an option's premium per
    // lot can be a few cents, and sizing by it put hundreds of BTC of short
    // options on one level, whose margin used up the maker within minutes.
    const lotQuote =
      (i.kind === 'option' && basePriceQuote !== undefined
        ? basePriceQuote
        : BigInt(indexTicks) * BigInt(i.tickSizeQuote)) / BigInt(i.lotsPerBase);
    const sizeLots = Math.max(
      i.minSizeLots,
      Number(LEVEL_NOTIONAL_QUOTE / (lotQuote > 0n ? lotQuote : 1n)),
    );
    for (let k = 1; k <= levels; k++) {
      const offset = Math.max(k, Math.floor((indexTicks * stepPpm * k) / 1_000_000));
      for (const side of ['buy', 'sell'] as const) {
        const priceTicks = side === 'buy' ? indexTicks - offset : indexTicks + offset;
        if (priceTicks <= 0) continue;
        actions.push(
          placeOrder({
            instrument: i.instrument,
            side,
            priceTicks,
            sizeLots: sizeLots + prng.int(sizeLots),
            timeInForce: 'postOnly',
          }),
        );
      }
    }
    return actions;
  };

  const take = async () => {
    // Half the takes go to a perpetual, where the volume is, however many dated instruments are listed.
    const perpetuals = instruments.filter((x) => x.kind === 'perpetual');
    const pool = prng.int(2) === 0 && perpetuals.length > 0 ? perpetuals : instruments;
    const i = pool[prng.int(pool.length)];
    if (i === undefined) return;
    const side = prng.int(2) === 0 ? 'buy' : 'sell';
    const ticker = await client.ticker(i.instrument);
    const top = side === 'buy' ? ticker.bestAskLots : ticker.bestBidLots;
    if (top === undefined) return;
    const sizeLots = Math.max(
      i.minSizeLots,
      Math.floor(top / 4) + prng.int(Math.max(1, Math.floor(top / 4))),
    );
    let tx;
    try {
      tx = await taker.placeOrder({
        instrument: i.instrument,
        side,
        type: 'market',
        timeInForce: 'IOC',
        sizeLots,
      });
    } catch (error) {
      // Its random walk has used up its margin: close its largest position instead (reduce-only).
      if ((error as { code?: unknown }).code !== 'InsufficientMargin') throw error;
      await flattenLargest();
      return;
    }
    const filledLots = tx.actions?.[0]?.filledLots ?? 0;
    stats.takes++;
    stats.filledLots += filledLots;
    emit({ type: 'took', instrument: i.instrument, side, filledLots });
  };

  const flattenLargest = async () => {
    const account = await client.account(taker.account);
    const positions = account.subaccounts[0]?.positions ?? [];
    const largest = positions
      .filter((p) => p.sizeLots !== 0)
      .sort((a, b) => Math.abs(b.sizeLots) - Math.abs(a.sizeLots))[0];
    if (largest === undefined) return;
    const tx = await taker.placeOrder({
      instrument: largest.instrument,
      side: largest.sizeLots > 0 ? 'sell' : 'buy',
      type: 'market',
      timeInForce: 'IOC',
      sizeLots: Math.abs(largest.sizeLots),
      reduceOnly: true,
    });
    const filledLots = tx.actions?.[0]?.filledLots ?? 0;
    stats.takes++;
    stats.filledLots += filledLots;
    emit({
      type: 'took',
      instrument: largest.instrument,
      side: largest.sizeLots > 0 ? 'sell' : 'buy',
      filledLots,
    });
  };

  await quote().catch(failed('maker'));
  const timers = [
    every(options.refreshMs ?? 2_000, 'maker', quote),
    every(options.takeEveryMs ?? 1_500, 'taker', take),
  ];
  return {
    maker: addressOfKey(maker.key),
    taker: addressOfKey(taker.key),
    stats,
    async stop() {
      stopping = true;
      for (const t of timers) clearInterval(t);
      await Promise.allSettled([...inFlight]);
    },
  };
}
