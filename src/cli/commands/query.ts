// `zomma query status|instruments|book|ticker|trades|account|tx|block`: reads from a
// node through the client SDK, as tables for people or --json for programs.
// The option parsing and formatting helpers here are shared with `zomma tx`.

import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { ZommaClient, generateKey, loadKey, saveKey } from '../../api/client/index.ts';
import type {
  AccountView,
  ActionResultView,
  FeeTierView,
  KeyPair,
  TxView,
} from '../../api/client/index.ts';
import type { Io } from '../io.ts';
import { InputError, UsageError } from '../io.ts';
import { parseArgs } from 'node:util';
import { ZommaError } from '../../lib/errors.ts';
import { addressOfKey } from '../../api/client/index.ts';
import { unreachableReason } from '../../api/client/http.ts';
import type { Command, CommandOptions } from '../io.ts';
import { API_REQUEST_TIMEOUT_MS } from '../../lib/limits.ts';

/** The devnet's first validator (`zomma devnet`: base port 27000, API at +1). */
export const DEFAULT_NODE_URL = 'http://127.0.0.1:27001';
/** Where `zomma tx` keeps the trader's key unless --key-file says otherwise. */
export const DEFAULT_KEY_FILE = '.zomma/key.json';
const QUOTE_DECIMALS = 6;

export const CLIENT_OPTIONS = {
  node: { type: 'string', default: DEFAULT_NODE_URL },
  // No default here: keyOf tells the default file from one named on purpose.
  'key-file': { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

/**
 * How long a command waits for a node's answer beyond a `tx`'s commit wait,
 * ms (the SDK's answerTimeoutMs): a live node answers within its request
 * timeout. A node that takes the connection and never answers (its process
 * stopped or hung) would otherwise hold the command for fetch's own five
 * minutes.
 */
export const NODE_ANSWER_MS = API_REQUEST_TIMEOUT_MS;

export function clientOf(url: string, answerMs = NODE_ANSWER_MS): ZommaClient {
  if (!/^https?:\/\/[^\s/]+/.test(url))
    throw new UsageError(`--node must be an http(s) URL: ${url}`);
  // The SDK's NodeUnreachable names the system's reason; a person also gets the likely fix.
  const reach: typeof fetch = async (input, init) => {
    try {
      return await fetch(input, init);
    } catch (error) {
      // No answer in time: the SDK says so.
      if (init?.signal?.aborted === true) throw error;
      throw new ZommaError(
        'NodeUnreachable',
        `cannot reach ${url} (${unreachableReason(error)}); is the node running?`,
        { cause: error },
      );
    }
  };
  return new ZommaClient({ url, fetch: reach, answerTimeoutMs: answerMs });
}

/**
 * Loads the key file at `path` (absent: the default one). Only the default
 * one is created on first use, and only when `createDefault` (`tx faucet`, a
 * devnet convenience): a mistyped --key-file must not trade from a new empty
 * key. A missing or unreadable file is bad input, found before anything is sent.
 */
export function keyOf(path: string | undefined, io: Io, createDefault: boolean): KeyPair {
  const file = path ?? DEFAULT_KEY_FILE;
  if (!existsSync(file)) {
    if (path !== undefined || !createDefault) {
      throw new InputError(
        'NoKeyFile',
        `no key file at ${file}; create one with: zomma keys new --out ${file}`,
      );
    }
    mkdirSync(dirname(file), { recursive: true });
    const key = generateKey();
    saveKey(file, key);
    io.err(`created a new key in ${file}`);
    return key;
  }
  try {
    return loadKey(file);
  } catch (error) {
    if (error instanceof ZommaError) throw new InputError(error.code, error.message);
    throw error;
  }
}

/** "12.5" dollars → 12_500_000n quote units; at most 6 decimals. */
export function parseDollars(text: string, what: string): bigint {
  const m = /^(\d{1,15})(?:\.(\d{1,6}))?$/.exec(text);
  if (m === null)
    throw new UsageError(`${what} must be a positive amount in dollars, e.g. 1000 or 12.5`);
  const cents = (m[2] ?? '').padEnd(QUOTE_DECIMALS, '0');
  const value = BigInt(m[1]!) * 10n ** BigInt(QUOTE_DECIMALS) + BigInt(cents);
  if (value <= 0n) throw new UsageError(`${what} must be positive`);
  return value;
}

/** Quote units (a decimal string) → "1234.5" dollars. */
export function formatDollars(quote: string): string {
  const negative = quote.startsWith('-');
  const digits = (negative ? quote.slice(1) : quote).padStart(QUOTE_DECIMALS + 1, '0');
  const whole = digits.slice(0, -QUOTE_DECIMALS);
  const frac = digits.slice(-QUOTE_DECIMALS).replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${frac ? `.${frac}` : ''}`;
}

export function parseCount(
  text: string | undefined,
  what: string,
  min = 1,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const n = Number(text);
  if (text === undefined || !/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min || n > max) {
    // A huge count is not "below 1": say what bound it passed.
    const tooLarge = text !== undefined && /^\d+$/.test(text) && !(n <= max);
    const range =
      max !== Number.MAX_SAFE_INTEGER
        ? `in ${min} … ${max}`
        : tooLarge
          ? `≥ ${min} and at most ${max}`
          : `≥ ${min}`;
    throw new UsageError(`${what} must be an integer ${range}`);
  }
  return n;
}

/** Left-aligned columns with a header row. */
export function table(header: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (c === undefined ? '' : String(c))))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (c ?? '').padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Key: value lines. */
export function fields(entries: readonly [string, unknown][]): string {
  const width = Math.max(...entries.map(([k]) => k.length));
  return entries
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k.padEnd(width)}  ${String(v)}`)
    .join('\n');
}

const USAGE = [
  'zomma query status|instruments [--node URL] [--json]',
  '       zomma query book INSTRUMENT [--depth N] [--node URL] [--json]   (--depth: levels a side, default 10)',
  '       zomma query ticker INSTRUMENT [--node URL] [--json]',
  '       zomma query trades INSTRUMENT [--limit N] [--node URL] [--json]   (--limit: the last N, default 20)',
  '       zomma query account [ADDRESS] [--subaccount N] [--key-file FILE] [--node URL] [--json]',
  '       zomma query tx HASH | block HEIGHT [--node URL] [--json]',
].join('\n');

/** What run() gives util.parseArgs; main() names the nearest of them for an unknown option. */
const OPTIONS = {
  ...CLIENT_OPTIONS,
  depth: { type: 'string', default: '10' },
  limit: { type: 'string', default: '20' },
  subaccount: { type: 'string' },
} as const satisfies CommandOptions;

export const command: Command = {
  name: 'query',
  options: OPTIONS,
  summary:
    'read status, instruments, books, tickers, trades, accounts, transactions and blocks from a node',
  usage: USAGE,
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args,
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    });
    const [what, arg, extra] = positionals;
    // Refused, not ignored: `query book BTC-PERPETUAL 5` would otherwise show the default depth.
    const takesArg = what !== 'status' && what !== 'instruments';
    const unexpected = takesArg ? extra : arg;
    if (unexpected !== undefined) throw new UsageError(`unexpected argument '${unexpected}'`);
    // Checked whatever the query, so a bad value is never silently ignored.
    const depth = parseCount(values.depth, '--depth');
    const limit = parseCount(values.limit, '--limit');
    const subaccount =
      values.subaccount === undefined
        ? undefined
        : parseCount(values.subaccount, '--subaccount', 0, 255);
    const client = clientOf(values.node);
    const print = (json: unknown, text: () => string) =>
      io.out(values.json ? JSON.stringify(json) : text());
    switch (what) {
      case 'status': {
        const s = await client.status();
        print(
          s,
          () =>
            fields([
              ['chain', s.chainId],
              ['height', s.height],
              ['block time', new Date(s.lastBlockTimeMs).toISOString()],
              ['app hash', s.appHash],
              ['validators', s.validators.length],
              ['syncing', s.syncing],
              // Without these a halted node's status reads as a healthy one.
              ['halted', s.haltReason],
              ['emergency halt', s.emergencyHalt === true ? 'every market halted' : undefined],
              [
                'insurance $',
                s.insuranceQuote === undefined ? undefined : formatDollars(s.insuranceQuote),
              ],
            ]) + describeFeeTiers(s.feeTiers),
        );
        return 0;
      }
      case 'instruments': {
        const r = await client.instruments();
        print(r, () =>
          table(
            // Margin as governance sets it (options: by scenario, none); --json has every risk value.
            [
              'instrument',
              'kind',
              'tick $',
              'lots/base',
              'min lots',
              'status',
              'initial ppm',
              'maint. ppm',
            ],
            r.instruments.map((i) => [
              i.instrument,
              i.kind,
              formatDollars(i.tickSizeQuote),
              i.lotsPerBase,
              i.minSizeLots,
              i.status,
              i.initialMarginPpm,
              i.maintenanceMarginPpm,
            ]),
          ),
        );
        return 0;
      }
      case 'book': {
        const instrument = need(arg, 'INSTRUMENT');
        const b = await client.book(instrument, depth);
        print(b, () => {
          const rows = [
            ...b.asks
              .slice()
              .reverse()
              .map(([p, s]) => ['ask', p, s]),
            ...b.bids.map(([p, s]) => ['bid', p, s]),
          ];
          return `${b.instrument} at height ${b.height} (seq ${b.seq})\n${table(['side', 'price ticks', 'size lots'], rows)}`;
        });
        return 0;
      }
      case 'ticker': {
        const t = await client.ticker(need(arg, 'INSTRUMENT'));
        print(t, () =>
          fields([
            ['instrument', t.instrument],
            ['height', t.height],
            ['index ticks', t.indexTicks],
            ['mark ticks', t.markTicks],
            [
              'best bid',
              t.bestBidTicks === undefined ? '-' : `${t.bestBidTicks} × ${t.bestBidLots}`,
            ],
            [
              'best ask',
              t.bestAskTicks === undefined ? '-' : `${t.bestAskTicks} × ${t.bestAskLots}`,
            ],
            ['last trade', t.lastTradeTicks ?? '-'],
            ['open interest lots', t.openInterestLots],
            ['funding ppm', t.fundingRatePpm],
            // Options: per whole base unit, as the API gives them (docs/api.md).
            ['mark IV', t.markIv],
            ['delta', t.greeks?.delta],
            ['gamma', t.greeks?.gamma],
            ['vega $ per 1.00 vol', t.greeks?.vega],
            ['theta $ per year', t.greeks?.theta],
          ]),
        );
        return 0;
      }
      case 'trades': {
        const r = await client.trades(need(arg, 'INSTRUMENT'), limit);
        print(r, () =>
          r.trades.length === 0
            ? `${r.instrument}: no trades at height ${r.height}`
            : `${r.instrument} at height ${r.height}, oldest first\n${table(
                ['trade', 'time', 'taker', 'price ticks', 'size lots', 'height'],
                r.trades.map((t) => [
                  t.tradeId,
                  new Date(t.timeMs).toISOString(),
                  t.takerSide +
                    (t.liquidation === true
                      ? ' (liquidation)'
                      : t.auction === true
                        ? ' (auction)'
                        : ''),
                  t.priceTicks,
                  t.sizeLots,
                  t.height,
                ]),
              )}`,
        );
        return 0;
      }
      case 'account': {
        const address = arg ?? addressOfKey(keyOf(values['key-file'], io, false));
        const a = await client.account(address, subaccount);
        print(a, () => describeAccount(a, subaccount));
        return 0;
      }
      case 'tx': {
        const t = await client.tx(need(arg, 'HASH').replace(/^0x/, '').toLowerCase());
        print(t, () => describeTx(t));
        return 0;
      }
      case 'block': {
        const b = await client.block(parseCount(arg, 'HEIGHT'));
        print(b, () =>
          [
            fields([
              ['height', b.height],
              ['time', new Date(b.timeMs).toISOString()],
              ['hash', b.hash],
              ['app hash', b.appHash],
              ['proposer', b.proposer],
              ['transactions', b.txs.length],
            ]),
            ...(b.txs.length > 0
              ? [
                  table(
                    ['tx', 'ok', 'code'],
                    b.txs.map((t) => [t.hash, t.ok, t.code]),
                  ),
                ]
              : []),
          ].join('\n'),
        );
        return 0;
      }
      default:
        throw new UsageError(what === undefined ? 'what to query?' : `unknown query '${what}'`);
    }
  },
};

/** An account for people: each subaccount's money, positions and open orders. */
function describeAccount(a: AccountView, subaccount: number | undefined): string {
  if (a.subaccounts.length === 0) {
    const none = subaccount === undefined ? 'no subaccounts' : `no subaccount ${subaccount}`;
    return `${a.address} has ${none} at height ${a.height}`;
  }
  return a.subaccounts
    .map((s) =>
      [
        `${a.address} subaccount ${s.subaccount} at height ${a.height}`,
        fields([
          ['cash $', formatDollars(s.cashQuote)],
          ['equity $', formatDollars(s.equityQuote)],
          ['margin used $', formatDollars(s.marginUsedQuote)],
          ['maintenance $', formatDollars(s.maintenanceMarginQuote)],
          ['free $', formatDollars(s.marginFreeQuote)],
        ]),
        s.positions.length === 0
          ? 'no positions'
          : table(
              ['instrument', 'size lots', 'entry ticks', 'unrealized $', 'realized $', 'funding $'],
              s.positions.map((p) => [
                p.instrument,
                p.sizeLots,
                p.entryPriceTicks,
                formatDollars(p.unrealizedPnlQuote),
                // What the position's closed part made (fees apart), as --json gives it.
                formatDollars(p.realizedPnlQuote),
                formatDollars(p.fundingQuote),
              ]),
            ),
        s.openOrders.length === 0
          ? a.openOrdersTruncated === true
            ? 'no open orders listed'
            : 'no open orders'
          : table(
              [
                'order',
                'instrument',
                'side',
                'price ticks',
                'lots',
                'filled',
                'open lots',
                // What `tx cancel INSTRUMENT --client-id ID` names, and flags the order carries.
                'client id',
                'flags',
              ],
              s.openOrders.map((o) => [
                o.orderId,
                o.instrument,
                o.side,
                o.priceTicks,
                o.sizeLots,
                o.filledLots,
                o.remainingLots,
                o.clientOrderId ?? '-',
                [o.reduceOnly ? 'reduce-only' : '', o.auction === true ? 'auction' : '']
                  .filter((f) => f !== '')
                  .join(',') || '-',
              ]),
            ),
      ].join('\n'),
    )
    .concat(
      // Without this line a subaccount past the cap would read "no open orders".
      a.openOrdersTruncated === true
        ? [
            'open orders: the node lists only so many in one answer, and these lists stop short' +
              (subaccount === undefined ? '; ask for one subaccount with --subaccount N' : ''),
          ]
        : [],
    )
    .join('\n\n');
}

/**
 * The fee schedule in force, after the status fields (nothing from a node
 * that does not give it): each tier's lifetime traded notional from which it
 * applies, in dollars, and its fees in parts per million of a fill's notional.
 */
function describeFeeTiers(tiers: readonly FeeTierView[] | undefined): string {
  if (tiers === undefined || tiers.length === 0) return '';
  const rows = tiers.map((t) => [formatDollars(t.volumeQuoteMin), t.makerFeePpm, t.takerFeePpm]);
  return (
    "\n\nfee tiers in force (ppm of a fill's notional; a negative maker fee is a rebate)\n" +
    table(['traded from $', 'maker ppm', 'taker ppm'], rows)
  );
}

function need(value: string | undefined, name: string): string {
  if (value === undefined) throw new UsageError(`${name} is required`);
  return value;
}

/** A transaction's final state for people: status, block, and each action's result. */
export function describeTx(t: TxView): string {
  const lines = [
    fields([
      ['tx', t.hash],
      ['status', t.status],
      ['height', t.height],
      // A drop's code may be one a block gives too (DuplicateNonce, …): it was in none.
      ['block', t.status === 'dropped' ? "none: this node's mempool let it go" : undefined],
      ['code', t.code],
      ['message', t.message],
    ]),
  ];
  if (t.actions !== undefined && t.actions.length > 0) {
    const columns: [string, (a: ActionResultView) => unknown][] = [
      ['action', (a) => a.kind],
      ['ok', (a) => a.ok],
      ['order', (a) => a.orderId],
      ['outcome', (a) => a.orderStatus],
      ['filled', (a) => a.filledLots],
      ['rested', (a) => a.restedLots],
      ['cancelled', (a) => a.cancelledLots],
      // Why the rest was cancelled (IocRemainder, SelfTrade, …), as --json gives it.
      ['reason', (a) => a.reason],
      // cancelAll: how many orders it removed, which --json gives as `count`.
      ['orders cancelled', (a) => a.count],
      ['code', (a) => a.code],
    ];
    // Only the columns some action fills: a faucet's row is not five empty ones.
    const shown = columns.filter(
      ([, of], i) => i < 2 || t.actions!.some((a) => of(a) !== undefined),
    );
    lines.push(
      table(
        shown.map(([name]) => name),
        t.actions.map((a) => shown.map(([, of]) => of(a))),
      ),
    );
  }
  return lines.join('\n');
}
