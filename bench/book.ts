// bench:book — one market's order book under a seeded synthetic flow, side by
// side in one run: our book (src/exchange/book) and nodejs-order-book, the
// library a Node.js user would otherwise pick, on the very same operations.
//
// The flow (1,000,000 operations by default): about 70% limit orders around a
// random-walking mid with geometric depth, a tenth of them crossing; about 20%
// cancels of live orders; about 10% market orders. Orders belong to 1,000
// accounts, with self-trade prevention "cancel the resting order" on both
// sides (nodejs-order-book's EXPIRE_MAKER), so both books must end with the
// same resting depth; the run checks it and prints the resting volume.
//
// Throughput is timed over the whole flow per book, from an empty book; each
// round runs both books (interleaved) and the best round of each is kept. A
// separate pass times each of our operations with process.hrtime.bigint for
// the p50 / p99 / p99.9 latency. Prints one JSON line.
//
//   npm run bench:book [-- --ops 1000000 --seed 1 --rounds 3]

import { parseArgs } from 'node:util';
import {
  OrderBook as TheirBook,
  SelfTradePreventionMode,
  Side as TheirSide,
} from 'nodejs-order-book';
import { OrderBook } from '../src/exchange/book/book.ts';
import type { Side } from '../src/exchange/book/types.ts';
import { Prng } from '../src/lib/prng.ts';

const { values } = parseArgs({
  options: {
    ops: { type: 'string', default: '1000000' },
    seed: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '3' },
  },
});
const opCount = Number(values.ops);
const seed = Number(values.seed);
const rounds = Number(values.rounds);

const LIMIT = 0;
const CANCEL = 1;
const MARKET = 2;
const ACCOUNTS = 1000;
const MID_START_TICKS = 1_000_000;

/** The flow, column-wise, so generating it costs neither book anything. */
interface Flow {
  kind: Uint8Array;
  buy: Uint8Array;
  orderId: Float64Array;
  owner: Uint32Array;
  priceTicks: Float64Array;
  sizeLots: Uint32Array;
  /** String ids and account names for nodejs-order-book, made once up front. */
  idText: string[];
  accountText: string[];
}

/** Depth below or above mid, geometric: most orders near the top, a long thin tail. */
function geometric(prng: Prng, keep: number, cap: number): number {
  let n = 1;
  while (n < cap && prng.fraction() < keep) n++;
  return n;
}

/**
 * Generates the flow, running our book alongside to know which orders are
 * live, so that cancels target live orders as a real client's would.
 */
function generate(count: number): Flow {
  const prng = new Prng(seed);
  const flow: Flow = {
    kind: new Uint8Array(count),
    buy: new Uint8Array(count),
    orderId: new Float64Array(count),
    owner: new Uint32Array(count),
    priceTicks: new Float64Array(count),
    sizeLots: new Uint32Array(count),
    idText: new Array<string>(count),
    accountText: Array.from({ length: ACCOUNTS + 1 }, (_, i) => `a${i}`),
  };
  const book = new OrderBook();
  const live: number[] = [];
  const slot = new Map<number, number>();
  const drop = (id: number): void => {
    const i = slot.get(id);
    if (i === undefined) return;
    const last = live.pop()!;
    slot.delete(id);
    if (last !== id) {
      live[i] = last;
      slot.set(last, i);
    }
  };
  let mid = MID_START_TICKS;
  let nextId = 1;
  for (let i = 0; i < count; i++) {
    if (prng.chance(1, 4)) mid += prng.chance(1, 2) ? 1 : -1;
    const roll = prng.int(100);
    const buy = prng.chance(1, 2);
    const side: Side = buy ? 'buy' : 'sell';
    const owner = prng.between(1, ACCOUNTS);
    flow.buy[i] = buy ? 1 : 0;
    flow.owner[i] = owner;
    if (roll < 20 && live.length > 0) {
      const id = live[prng.int(live.length)]!;
      flow.kind[i] = CANCEL;
      flow.orderId[i] = id;
      flow.idText[i] = String(id);
      book.cancel(id);
      drop(id);
      continue;
    }
    const orderId = nextId++;
    flow.orderId[i] = orderId;
    flow.idText[i] = String(orderId);
    let priceTicks: number;
    let sizeLots: number;
    if (roll >= 90) {
      flow.kind[i] = MARKET;
      priceTicks = buy ? Number.MAX_SAFE_INTEGER : 1;
      sizeLots = prng.between(1, 20);
    } else {
      flow.kind[i] = LIMIT;
      const crossing = prng.chance(1, 10);
      const offset = crossing ? prng.between(0, 3) : geometric(prng, 0.85, 400);
      priceTicks = buy === crossing ? mid + offset : mid - offset;
      sizeLots = prng.between(1, 20);
    }
    flow.priceTicks[i] = priceTicks;
    flow.sizeLots[i] = sizeLots;
    const result = book.place({
      orderId,
      owner,
      side,
      priceTicks,
      sizeLots,
      timeInForce: flow.kind[i] === MARKET ? 'IOC' : 'GTC',
    });
    const fills = book.fills;
    for (let f = 0; f < fills.length; f++) if (fills.makerDone[f]) drop(fills.makerOrderId[f]!);
    for (let r = 0; r < book.removed.length; r++) drop(book.removed.orderId[r]!);
    if (result.status === 'rested') {
      slot.set(orderId, live.length);
      live.push(orderId);
    }
  }
  return flow;
}

function runOurs(flow: Flow, count: number, latency?: Float64Array): OrderBook {
  const book = new OrderBook();
  const { kind, buy, orderId, owner, priceTicks, sizeLots } = flow;
  for (let i = 0; i < count; i++) {
    const start = latency === undefined ? 0n : process.hrtime.bigint();
    const k = kind[i];
    if (k === CANCEL) book.cancel(orderId[i]!);
    else {
      book.place({
        orderId: orderId[i]!,
        owner: owner[i]!,
        side: buy[i] === 1 ? 'buy' : 'sell',
        priceTicks: priceTicks[i]!,
        sizeLots: sizeLots[i]!,
        timeInForce: k === MARKET ? 'IOC' : 'GTC',
      });
    }
    // A block's worth of changes is consumed (hashed) and cleared, as the exchange would.
    if ((i & 1023) === 1023) book.changes.clear();
    if (latency !== undefined) latency[i] = Number(process.hrtime.bigint() - start);
  }
  return book;
}

function runTheirs(flow: Flow, count: number): TheirBook {
  const book = new TheirBook();
  const { kind, buy, owner, priceTicks, sizeLots, idText, accountText } = flow;
  const stpMode = SelfTradePreventionMode.EXPIRE_MAKER;
  for (let i = 0; i < count; i++) {
    const k = kind[i];
    const side = buy[i] === 1 ? TheirSide.BUY : TheirSide.SELL;
    if (k === CANCEL) book.cancel(idText[i]!);
    else if (k === MARKET) {
      book.market({ side, size: sizeLots[i]!, accountId: accountText[owner[i]!]!, stpMode });
    } else {
      book.limit({
        id: idText[i]!,
        side,
        size: sizeLots[i]!,
        price: priceTicks[i]!,
        accountId: accountText[owner[i]!]!,
        stpMode,
      });
    }
  }
  return book;
}

function timeMs(run: () => void): number {
  const start = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function percentile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const flow = generate(opCount);
const mix = { limit: 0, cancel: 0, market: 0 };
for (let i = 0; i < opCount; i++) {
  if (flow.kind[i] === LIMIT) mix.limit++;
  else if (flow.kind[i] === CANCEL) mix.cancel++;
  else mix.market++;
}

let oursMs = Infinity;
let theirsMs = Infinity;
let ours: OrderBook | undefined;
let theirs: TheirBook | undefined;
for (let round = 0; round < rounds; round++) {
  oursMs = Math.min(
    oursMs,
    timeMs(() => (ours = runOurs(flow, opCount))),
  );
  theirsMs = Math.min(
    theirsMs,
    timeMs(() => (theirs = runTheirs(flow, opCount))),
  );
}

// Both books must end with the same resting depth, level by level.
const ourBids = ours!.depth('buy', ours!.levelCount('buy'));
const ourAsks = ours!.depth('sell', ours!.levelCount('sell'));
const [theirAsks, theirBids] = theirs!.depth();
const sameLevels = (mine: typeof ourBids, other: [number, number][]): boolean =>
  mine.priceTicks.length === other.length &&
  other.every(([p, s], i) => mine.priceTicks[i] === p && mine.sizeLots[i] === s);
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const sameDepth =
  sameLevels(
    ourBids,
    [...theirBids].sort((a, b) => b[0] - a[0]),
  ) &&
  sameLevels(
    ourAsks,
    [...theirAsks].sort((a, b) => a[0] - b[0]),
  );
ours!.checkInvariants();

const latency = new Float64Array(opCount);
runOurs(flow, opCount, latency);
latency.sort();

const oursOpsPerSec = Math.round(opCount / (oursMs / 1000));
const theirsOpsPerSec = Math.round(opCount / (theirsMs / 1000));
console.log(
  JSON.stringify({
    bench: 'book',
    ops: opCount,
    seed,
    rounds,
    mix,
    ours: { ms: Math.round(oursMs), opsPerSec: oursOpsPerSec },
    nodejsOrderBook: { ms: Math.round(theirsMs), opsPerSec: theirsOpsPerSec },
    speedup: Number((theirsMs / oursMs).toFixed(2)),
    latencyNs: {
      p50: percentile(latency, 0.5),
      p99: percentile(latency, 0.99),
      p999: percentile(latency, 0.999),
      max: latency[latency.length - 1],
    },
    resting: {
      orders: ours!.orderCount,
      bidLevels: ourBids.priceTicks.length,
      askLevels: ourAsks.priceTicks.length,
      bidLots: sum(ourBids.sizeLots),
      askLots: sum(ourAsks.sizeLots),
      theirBidLots: sum(theirBids.map(([, s]) => s)),
      theirAskLots: sum(theirAsks.map(([, s]) => s)),
    },
    sameDepth,
  }),
);
if (!sameDepth) process.exitCode = 1;
