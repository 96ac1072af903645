// bench:view — the node's read model (src/node/view.ts, ChainView) per block:
// CPU µs of ChainView.onBlock and the listeners the API server attaches (the
// commit waiters and the WebSocket hub, with no client), on the blocks the
// cluster bench commits. The exchange runs the devnet genesis (its listing:
// 80–90 live markets, options marked from the validators' smiles), four
// validators' observations arrive in each block's lastCommit, and each block
// holds --txs 1-lot BTC-PERPETUAL orders crossing the index from --accounts
// accounts (bench/cluster.ts's flow: at concurrency 32 about 17 per block).
// Execution is not timed; only what the read model does with the block.
//
// Compared side by side in the same run: the same blocks with and without a
// read model attached (the difference is the read model's cost), and, with
// --reads, a status, ticker, book and block query between blocks (what a
// dashboard polling one node reads).
//
// --genesis perpetuals: the same without the listing (the two perpetuals).
//
// Usage: npm run bench:view -- [--blocks 1500 --txs 17 --accounts 32 --rounds 3 --reads]
//        [--genesis devnet|perpetuals]
// Prints one JSON line.

import { parseArgs } from 'node:util';
import { DEFAULT_API_LIMITS } from '../src/api/server.ts';
import { WsHub } from '../src/api/ws.ts';
import type { BlockUpdate } from '../src/api/view.ts';
import { ValidatorSet } from '../src/consensus/index.ts';
import type { Block as ChainBlock, CommitCertificate } from '../src/consensus/index.ts';
import { addressOf, sha256 } from '../src/crypto/index.ts';
import { Exchange, devnetGenesis } from '../src/exchange/index.ts';
import { encodeObservation } from '../src/exchange/oracle/index.ts';
import type { SignedTx } from '../src/exchange/tx/types.ts';
import { toHex } from '../src/lib/bytes.ts';
import { Prng } from '../src/lib/prng.ts';
import type { CommittedBlock, ZommaNode } from '../src/node/node.ts';
import { oracleVotesOf, simulatedSmiles } from '../src/node/oracle.ts';
import type { Storage } from '../src/node/storage/index.ts';
import { ChainView } from '../src/node/view.ts';

const { values } = parseArgs({
  options: {
    blocks: { type: 'string', default: '1500' },
    txs: { type: 'string', default: '17' },
    accounts: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '3' },
    reads: { type: 'boolean', default: false },
    // devnet: the devnet genesis with its listing; perpetuals: without the listing.
    genesis: { type: 'string', default: 'devnet' },
  },
});
const GENESIS = values.genesis;
if (GENESIS !== 'devnet' && GENESIS !== 'perpetuals') {
  throw new Error(`--genesis must be devnet or perpetuals, not ${GENESIS}`);
}
const BLOCKS = Number(values.blocks);
const TXS = Number(values.txs);
const ACCOUNTS = Number(values.accounts);
const ROUNDS = Number(values.rounds);
const USDC = 1_000_000n;
/** 2026-11-25T00:00Z: a realistic listing (dailies, weeklies, monthlies, quarterlies). */
const GENESIS_MS = 1_795_564_800_000;
const BLOCK_MS = 40;

const validatorKeys = [0, 1, 2, 3].map((i) => sha256(new TextEncoder().encode(`bench-view-${i}`)));
const set = ValidatorSet.fromUpdates(
  validatorKeys.map((publicKey) => ({ publicKey, power: Number(1_000_000n * USDC) })),
);

interface Chain {
  ex: Exchange;
  height: number;
  timeMs: number;
  nonce: number;
  lastCommit: CommitCertificate | null;
  prng: Prng;
  btcQuote: bigint;
  ethQuote: bigint;
  accounts: { publicKey: Uint8Array; address: Uint8Array }[];
}

function newChain(): Chain {
  const { listing, ...perpetuals } = { ...devnetGenesis(validatorKeys), genesisTimeMs: GENESIS_MS };
  const genesis = GENESIS === 'devnet' ? { ...perpetuals, listing } : perpetuals;
  const chain: Chain = {
    ex: new Exchange(genesis),
    height: 0,
    timeMs: GENESIS_MS,
    nonce: 0,
    lastCommit: null,
    prng: new Prng(1n),
    btcQuote: 50_000n * USDC,
    ethQuote: 3_000n * USDC,
    accounts: Array.from({ length: ACCOUNTS }, (_, i) => {
      const publicKey = sha256(new TextEncoder().encode(`bench-view-account-${i}`));
      return { publicKey, address: addressOf(publicKey) };
    }),
  };
  return chain;
}

function tx(
  chain: Chain,
  account: Chain['accounts'][number],
  action: SignedTx['action'],
): SignedTx {
  return {
    chainId: 'zomma-devnet',
    signer: account.publicKey,
    account: account.address,
    subaccount: 0,
    nonce: chain.timeMs + ++chain.nonce,
    action,
    signature: new Uint8Array(64),
  };
}

/** Four validators' observations: the index walks a little, as the devnet's simulated feed does. */
function commitOf(chain: Chain, height: number, blockHash: Uint8Array): CommitCertificate {
  const step = (p: bigint) => p + (p * BigInt(chain.prng.int(21) - 10)) / 100_000n;
  chain.btcQuote = step(chain.btcQuote);
  chain.ethQuote = step(chain.ethQuote);
  const expiries = new Map<string, { underlying: string; expiryMs: number }>();
  for (const m of chain.ex.state.markets) {
    if (m.listed && !m.retired)
      expiries.set(`${m.params.underlying}:${m.expiryMs}`, {
        underlying: m.params.underlying,
        expiryMs: m.expiryMs,
      });
  }
  const smiles = simulatedSmiles([...expiries.values()], chain.timeMs);
  return {
    height,
    round: 0,
    blockHash,
    votes: [0, 1, 2, 3].map((validatorIndex) => ({
      validatorIndex,
      timestampMs: chain.timeMs + 5 + validatorIndex,
      extension: encodeObservation({
        timeMs: chain.timeMs,
        prices: [
          { underlying: 'BTC', priceQuote: chain.btcQuote + BigInt(validatorIndex) },
          { underlying: 'ETH', priceQuote: chain.ethQuote - BigInt(validatorIndex) },
        ],
        smiles,
      }),
      signature: new Uint8Array(64),
    })),
  };
}

/** Executes one block of `txs` and returns what the node hands its subscribers. */
function execute(chain: Chain, txs: SignedTx[]): CommittedBlock {
  chain.height++;
  chain.timeMs += BLOCK_MS;
  const height = chain.height;
  const lastCommit = chain.lastCommit;
  const result = chain.ex.finalizeBlock({
    height,
    timeMs: chain.timeMs,
    proposer: validatorKeys[height % 4]!,
    txs,
    oracle: {},
    oracleVotes: oracleVotesOf(lastCommit, set),
  });
  const blockHash = sha256(new Uint8Array([height & 255, height >> 8]));
  const hashes = txs.map((_, i) => toHex(sha256(new Uint8Array([height & 255, height >> 8, i]))));
  const block = {
    header: {
      height,
      timeMs: chain.timeMs,
      proposerAddress: addressOf(validatorKeys[height % 4]!),
    },
    txs: txs.map(() => new Uint8Array(0)),
    lastCommit,
    evidence: [],
  } as unknown as ChainBlock;
  const commit = commitOf(chain, height, blockHash);
  chain.lastCommit = commit;
  return {
    executed: { block, blockHash, result, commit, executionMs: 0 },
    txs: {
      height,
      timeMs: chain.timeMs,
      hashes,
      txs,
      results: result.results,
      exchange: result,
      oracle: {},
    },
  } as unknown as CommittedBlock;
}

function ordersOf(chain: Chain, n: number): SignedTx[] {
  const index = chain.ex.state.marketByName.get('BTC-PERPETUAL')!.indexTicks;
  const spread = Math.max(1, Math.floor(index / 1_000));
  const out: SignedTx[] = [];
  for (let i = 0; i < n; i++) {
    const w = chain.prng.int(ACCOUNTS);
    const side = (w + chain.nonce) % 2 === 0 ? 'buy' : 'sell';
    out.push(
      tx(chain, chain.accounts[w]!, {
        kind: 'placeOrder',
        instrument: 'BTC-PERPETUAL',
        side,
        type: 'limit',
        priceTicks: side === 'buy' ? index + spread : index - spread,
        sizeLots: 1,
        timeInForce: 'GTC',
        reduceOnly: false,
        stp: 'cancelResting',
      }),
    );
  }
  return out;
}

/** A stand-in node: the exchange and what ChainView reads of the consensus side. */
function nodeOf(chain: Chain) {
  let listener: ((b: CommittedBlock) => void) | undefined;
  const node = {
    app: {
      exchange: chain.ex,
      get appHash() {
        return chain.ex.appHash;
      },
      // The set never changes here.
      validatorSetAt: () => set,
    },
    loop: {
      replica: { validators: set, height: 1, round: 0, step: 0 },
      haltReport: null,
      stats: { lastCommitLatencyMs: 0 },
    },
    publicKey: validatorKeys[0]!,
    peerCount: () => 3,
    mempool: { has: () => false },
    results: { load: () => null },
    subscribe: (l: (b: CommittedBlock) => void) => {
      listener = l;
      return () => (listener = undefined);
    },
    // The mempool drops nothing here.
    subscribeDropped: () => () => {},
  };
  const deliver = (b: CommittedBlock) => listener?.(b);
  return { node: node as unknown as ZommaNode, deliver };
}

interface RoundResult {
  viewUsPerBlock: number;
  viewWallUsPerBlock: number;
  readsUsPerBlock: number;
  markets: number;
}

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** One chain of BLOCKS blocks; with `attached`, a ChainView and the API's listeners follow it. */
function run(attached: boolean): RoundResult {
  const chain = newChain();
  const { node, deliver } = nodeOf(chain);
  const storage = { blocks: { load: () => null } } as unknown as Storage;
  let view: ChainView | null = null;
  let hub: WsHub | null = null;
  let settled = 0;
  // Funding blocks first (untimed), so that orders have collateral.
  deliver(execute(chain, []));
  if (attached) {
    view = new ChainView({ node, storage, genesis: chain.ex.state.genesis });
    // What startApiServer attaches: the commit waiters and the WebSocket hub.
    view.subscribe(
      (u: BlockUpdate) => {
        for (const t of u.txs) if (t.status !== 'pending') settled++;
      },
      { any: () => false, has: () => false },
    );
    hub = new WsHub(view, DEFAULT_API_LIMITS, () => 0);
  }
  deliver(
    execute(
      chain,
      chain.accounts.map((a) => tx(chain, a, { kind: 'faucet', amountQuote: 1_000_000n * USDC })),
    ),
  );
  let viewUs = 0;
  let viewWallUs = 0;
  let readsUs = 0;
  const warmup = Math.floor(BLOCKS / 5);
  for (let b = 0; b < warmup + BLOCKS; b++) {
    const committed = execute(chain, ordersOf(chain, TXS));
    const w0 = performance.now();
    const t0 = cpuUs();
    deliver(committed);
    const t1 = cpuUs();
    const w1 = performance.now();
    if (b >= warmup) {
      viewUs += t1 - t0;
      viewWallUs += (w1 - w0) * 1_000;
    }
    if (values.reads && view !== null) {
      const r = view.read();
      r.status();
      r.ticker('BTC-PERPETUAL');
      r.book('BTC-PERPETUAL', 20);
      r.block(r.height);
      if (b >= warmup) readsUs += cpuUs() - t1;
    }
  }
  hub?.close();
  view?.close();
  if (attached && settled === 0) throw new Error('no transaction settled');
  const markets = chain.ex.state.markets.filter((m) => !m.retired).length;
  return {
    viewUsPerBlock: viewUs / BLOCKS,
    viewWallUsPerBlock: viewWallUs / BLOCKS,
    readsUsPerBlock: readsUs / BLOCKS,
    markets,
  };
}

const rounds: {
  attached: number;
  detached: number;
  attachedWall: number;
  detachedWall: number;
  reads: number;
}[] = [];
let markets = 0;
for (let r = 0; r < ROUNDS; r++) {
  const detached = run(false);
  const attached = run(true);
  markets = attached.markets;
  rounds.push({
    attached: attached.viewUsPerBlock,
    detached: detached.viewUsPerBlock,
    attachedWall: attached.viewWallUsPerBlock,
    detachedWall: detached.viewWallUsPerBlock,
    reads: attached.readsUsPerBlock,
  });
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round1 = (x: number) => Math.round(x * 10) / 10;
process.stdout.write(
  `${JSON.stringify({
    bench: 'view',
    genesis: GENESIS,
    blocks: BLOCKS,
    txsPerBlock: TXS,
    markets,
    readModelCpuUsPerBlock: round1(median(rounds.map((r) => r.attached - r.detached))),
    readModelWallUsPerBlock: round1(median(rounds.map((r) => r.attachedWall - r.detachedWall))),
    rounds: rounds.map((r) => ({
      withView: round1(r.attached),
      without: round1(r.detached),
      withViewWall: round1(r.attachedWall),
      withoutWall: round1(r.detachedWall),
      ...(values.reads ? { readsBetweenBlocks: round1(r.reads) } : {}),
    })),
  })}\n`,
);
