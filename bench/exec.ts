// bench:exec — signed orders executed through the whole exchange state machine
// (nonces, agents check, margin, fees, positions, funding, liquidation scan,
// incremental state digest and appHash per block), side by side in one run
// with the bare order book (src/exchange/book) on the same order flow, so the
// ratio shows what accounts, margin, fees and hashing cost on top of matching.
//
// State: 10,000 funded accounts, BTC and ETH perpetuals. Flow: about 70% limit
// orders around a random-walking mid (a tenth of them crossing, some
// post-only), about 20% cancels (by client order id) of the account's earlier
// orders, about 10% market orders; the oracle moves every block. Transactions
// arrive decoded with their signatures already verified, as the node hands
// them over from its verification workers. Prints one JSON line.
//
// With --warm-nonces N, every account first sends N transactions (cancels of
// an unknown order: refused, but each consumes a nonce), so the addresses
// start with the nonce windows of a long-running chain (N = NONCE_WINDOW: full).
//
// It runs with V8's allocation-site pretenuring off, as the node does (bin/zomma.js).
//
//   npm run bench:exec [-- --txs 200000 --block 2000 --accounts 10000 --seed 1 --rounds 3 --warm-nonces 0]

import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { OrderBook } from '../src/exchange/book/book.ts';
import { Exchange, devnetGenesis } from '../src/exchange/index.ts';
import type { Block } from '../src/exchange/index.ts';
import type { Action, PlaceOrder, SignedTx } from '../src/exchange/tx/types.ts';
import { Prng } from '../src/lib/prng.ts';

const { values } = parseArgs({
  options: {
    txs: { type: 'string', default: '200000' },
    block: { type: 'string', default: '2000' },
    accounts: { type: 'string', default: '10000' },
    seed: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '3' },
    'warm-nonces': { type: 'string', default: '0' },
  },
});
const TX_COUNT = Number(values.txs);
const BLOCK_TXS = Number(values.block);
const ACCOUNTS = Number(values.accounts);
const SEED = Number(values.seed);
const ROUNDS = Number(values.rounds);
const WARM_NONCES = Number(values['warm-nonces']);
const USDC = 1_000_000n;
const MARKETS = [
  {
    instrument: 'BTC-PERPETUAL',
    underlying: 'BTC',
    tickQuote: 100_000n,
    mid: 500_000,
    spread: 2_000,
  },
  {
    instrument: 'ETH-PERPETUAL',
    underlying: 'ETH',
    tickQuote: 10_000n,
    mid: 300_000,
    spread: 1_500,
  },
];

function sha256(data: string | Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}

const keys = Array.from({ length: ACCOUNTS }, (_, i) => {
  const publicKey = sha256(`bench-key-${i}`);
  return { publicKey, address: sha256(publicKey).slice(0, 20) };
});
const validators = [sha256('v0'), sha256('v1'), sha256('v2'), sha256('v3')];
const genesis = devnetGenesis(validators);

interface Flow {
  setup: Block[];
  blocks: Block[];
}

function tx(account: number, nonce: number, action: Action): SignedTx {
  const k = keys[account]!;
  return {
    chainId: genesis.chainId,
    signer: k.publicKey,
    account: k.address,
    subaccount: 0,
    nonce,
    action,
    signature: new Uint8Array(64),
  };
}

function makeFlow(): Flow {
  const rng = new Prng(SEED);
  let timeMs = 1_000;
  let nonce = 1_000;
  const mids = MARKETS.map((m) => m.mid);
  const oracle = (): Record<string, bigint> =>
    Object.fromEntries(MARKETS.map((m, i) => [m.underlying, BigInt(mids[i]!) * m.tickQuote]));
  const setup: Block[] = [];
  const setupBlock = (txs: SignedTx[]): void => {
    setup.push({
      height: setup.length + 1,
      timeMs: (timeMs += 1_000),
      proposer: validators[0]!,
      txs,
      oracle: oracle(),
    });
  };
  for (let start = 0; start < ACCOUNTS; start += 5_000) {
    const txs: SignedTx[] = [];
    for (let a = start; a < Math.min(ACCOUNTS, start + 5_000); a++) {
      txs.push(tx(a, ++nonce, { kind: 'faucet', amountQuote: 1_000_000n * USDC }));
    }
    setupBlock(txs);
  }
  for (let round = 0; round < WARM_NONCES; round++) {
    setupBlock(
      keys.map((_, a) =>
        tx(a, ++nonce, {
          kind: 'cancel',
          instrument: MARKETS[0]!.instrument,
          clientOrderId: 'none',
        }),
      ),
    );
  }
  const open: string[][] = Array.from({ length: ACCOUNTS }, () => []);
  let clientSeq = 0;
  const blocks: Block[] = [];
  for (let b = 0; b * BLOCK_TXS < TX_COUNT; b++) {
    timeMs += 1_000;
    for (let i = 0; i < mids.length; i++) mids[i] = mids[i]! + rng.between(-100, 100);
    const txs: SignedTx[] = [];
    for (let t = 0; t < BLOCK_TXS; t++) {
      const account = rng.int(ACCOUNTS);
      const mi = rng.int(MARKETS.length);
      const m = MARKETS[mi]!;
      const mid = mids[mi]!;
      const roll = rng.int(100);
      const buy = rng.chance(1, 2);
      let action: Action;
      if (roll < 20 && open[account]!.length > 0) {
        const list = open[account]!;
        const id = list.splice(rng.int(list.length), 1)[0]!;
        action = {
          kind: 'cancel',
          instrument: id.startsWith('B') ? MARKETS[0]!.instrument : MARKETS[1]!.instrument,
          clientOrderId: id,
        };
      } else if (roll < 30) {
        action = {
          kind: 'placeOrder',
          instrument: m.instrument,
          side: buy ? 'buy' : 'sell',
          type: 'market',
          sizeLots: rng.between(1, 50),
          timeInForce: 'IOC',
          reduceOnly: false,
          stp: 'cancelResting',
        };
      } else {
        // Geometric depth: most orders near the spread; a tenth cross it.
        let away = 1;
        while (away < m.spread && rng.chance(7, 8)) away += rng.between(1, 20);
        const crossing = rng.chance(1, 10);
        const priceTicks = buy
          ? crossing
            ? mid + away
            : mid - away
          : crossing
            ? mid - away
            : mid + away;
        const clientOrderId = `${m.underlying[0]}${++clientSeq}`;
        const post = !crossing && rng.chance(1, 3);
        action = {
          kind: 'placeOrder',
          instrument: m.instrument,
          side: buy ? 'buy' : 'sell',
          type: 'limit',
          priceTicks,
          sizeLots: rng.between(1, 200),
          timeInForce: post ? 'postOnly' : 'GTC',
          reduceOnly: false,
          clientOrderId,
          stp: 'cancelResting',
        } satisfies PlaceOrder;
        open[account]!.push(clientOrderId);
        if (open[account]!.length > 40) open[account]!.shift();
      }
      txs.push(tx(account, ++nonce, action));
    }
    blocks.push({
      height: setup.length + blocks.length + 1,
      timeMs,
      proposer: validators[0]!,
      txs,
      oracle: oracle(),
    });
  }
  return { setup, blocks };
}

/** CPU seconds of this process (all its threads) since `since`: steadier than wall time on a loaded machine. */
function cpuSeconds(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
}

function execRound(flow: Flow): {
  seconds: number;
  cpuSeconds: number;
  fills: number;
  rejected: number;
  rejectedByCode: Record<string, number>;
  blockMs: number[];
  appHash: string;
} {
  const ex = new Exchange(genesis);
  for (const b of flow.setup) ex.finalizeBlock(b);
  let fills = 0;
  let rejected = 0;
  const rejectedByCode: Record<string, number> = {};
  const blockMs: number[] = [];
  const cpuStart = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (const b of flow.blocks) {
    const t0 = process.hrtime.bigint();
    const r = ex.finalizeBlock(b);
    blockMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    for (const t of r.results) {
      for (const a of t.actions) {
        if (!a.ok) {
          rejected++;
          rejectedByCode[a.code] = (rejectedByCode[a.code] ?? 0) + 1;
        } else if (a.order !== undefined) fills += a.order.fills.length;
      }
    }
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return {
    seconds,
    cpuSeconds: cpuSeconds(cpuStart),
    fills,
    rejected,
    rejectedByCode,
    blockMs,
    appHash: Buffer.from(ex.appHash).toString('hex'),
  };
}

/** The same flow on bare books: owner = account, limits and markets as placed, cancels by the client id's order. */
function bookRound(flow: Flow): { seconds: number; cpuSeconds: number; fills: number } {
  const books = MARKETS.map(() => new OrderBook());
  const byClient = new Map<string, number>();
  const owners = new Map<string, number>(
    keys.map((k, i) => [Buffer.from(k.address).toString('hex'), i]),
  );
  // Resolving owners is not the book's work: do it before the clock starts.
  const ownerOf = flow.blocks.map((b) =>
    b.txs.map((t) => owners.get(Buffer.from(t.account).toString('hex'))!),
  );
  const mids = flow.blocks.map((b) =>
    MARKETS.map((m) => Number(b.oracle[m.underlying]! / m.tickQuote)),
  );
  let orderId = 0;
  let fills = 0;
  const cpuStart = process.cpuUsage();
  const start = process.hrtime.bigint();
  flow.blocks.forEach((b, bi) => {
    b.txs.forEach((t, ti) => {
      const a = t.action;
      if (a.kind === 'cancel') {
        const id = byClient.get(a.clientOrderId!);
        if (id !== undefined) {
          byClient.delete(a.clientOrderId!);
          books[a.instrument === MARKETS[0]!.instrument ? 0 : 1]!.cancel(id);
        }
        return;
      }
      if (a.kind !== 'placeOrder') return;
      const mi = a.instrument === MARKETS[0]!.instrument ? 0 : 1;
      const book = books[mi]!;
      const id = ++orderId;
      const mid = mids[bi]![mi]!;
      const market = a.type === 'market';
      const r = book.place({
        orderId: id,
        owner: ownerOf[bi]![ti]!,
        side: a.side,
        priceTicks: market
          ? a.side === 'buy'
            ? mid + (mid >> 4)
            : mid - (mid >> 4)
          : a.priceTicks!,
        sizeLots: a.sizeLots,
        timeInForce: market ? 'IOC' : 'GTC',
        postOnly: a.timeInForce === 'postOnly',
        stp: a.stp,
      });
      fills += book.fills.length;
      if (r.status === 'rested' && a.clientOrderId !== undefined) byClient.set(a.clientOrderId, id);
    });
  });
  return {
    seconds: Number(process.hrtime.bigint() - start) / 1e9,
    cpuSeconds: cpuSeconds(cpuStart),
    fills,
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

const flow = makeFlow();
const txCount = flow.blocks.reduce((n, b) => n + b.txs.length, 0);
let bestExec: ReturnType<typeof execRound> | undefined;
let bestBook: ReturnType<typeof bookRound> | undefined;
let execCpu = Infinity;
let bookCpu = Infinity;
for (let r = 0; r < ROUNDS; r++) {
  const e = execRound(flow);
  if (bestExec === undefined || e.seconds < bestExec.seconds) bestExec = e;
  execCpu = Math.min(execCpu, e.cpuSeconds);
  const b = bookRound(flow);
  if (bestBook === undefined || b.seconds < bestBook.seconds) bestBook = b;
  bookCpu = Math.min(bookCpu, b.cpuSeconds);
}
const exec = bestExec!;
const book = bestBook!;
const blockMs = [...exec.blockMs].sort((a, b) => a - b);
const execRate = txCount / exec.seconds;
const bookRate = txCount / book.seconds;
console.log(
  JSON.stringify({
    bench: 'exec',
    txs: txCount,
    blockTxs: BLOCK_TXS,
    accounts: ACCOUNTS,
    markets: MARKETS.length,
    execTxPerSec: Math.round(execRate),
    bareBookOpsPerSec: Math.round(bookRate),
    bookOverExecRatio: Number((bookRate / execRate).toFixed(2)),
    execUsPerTx: Number(((exec.seconds * 1e6) / txCount).toFixed(2)),
    // The same on CPU time (this process, all threads, GC included): on a
    // shared machine, wall time also counts the time other work held the core.
    execTxPerCpuSec: Math.round(txCount / execCpu),
    bareBookOpsPerCpuSec: Math.round(txCount / bookCpu),
    bookOverExecCpuRatio: Number((execCpu / bookCpu).toFixed(2)),
    blockMsP50: Number(percentile(blockMs, 50).toFixed(2)),
    blockMsP99: Number(percentile(blockMs, 99).toFixed(2)),
    fills: exec.fills,
    bareBookFills: book.fills,
    rejectedActions: exec.rejected,
    rejectedByCode: exec.rejectedByCode,
    appHash: exec.appHash,
    rounds: ROUNDS,
    warmNonces: WARM_NONCES,
  }),
);
