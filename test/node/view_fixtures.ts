// The read model (ChainView) over an exchange driven block by block in this
// process, without consensus or I/O: a stand-in node hands ChainView each
// block the harness executed, and a stored chain keeps blocks and results as
// a node's block store and results log do.

import { committedBlockCodec } from '../../src/consensus/index.ts';
import type {
  CommitCertificate,
  DuplicateVoteEvidence,
  ValidatorSet,
} from '../../src/consensus/index.ts';
import { encode } from '../../src/codec/wire.ts';
import { sha256 } from '../../src/crypto/index.ts';
import type { BlockResult, Genesis } from '../../src/exchange/index.ts';
import { DEVNET_LISTING } from '../../src/exchange/genesis.ts';
import { daysFromCivil, MS_PER_DAY } from '../../src/exchange/instruments/index.ts';
import { encodeSignedTx } from '../../src/exchange/tx/index.ts';
import type { SignedTx } from '../../src/exchange/tx/index.ts';
import { toHex } from '../../src/lib/bytes.ts';
import type { AddResult } from '../../src/node/mempool/mempool.ts';
import type { Log } from '../../src/node/log.ts';
import type { CommittedBlock, ZommaNode } from '../../src/node/node.ts';
import { STORED_EVENT_TYPES } from '../../src/node/results.ts';
import type { BlockResults } from '../../src/node/results.ts';
import type { Storage } from '../../src/node/storage/index.ts';
import { ChainView } from '../../src/node/view.ts';
import { USDC, genesis } from '../exchange/helpers.ts';
import type { Harness } from '../exchange/helpers.ts';

/**
 * The devnet perpetuals and, from Monday 2 March 2026, one daily BTC expiry
 * (its future BTC-2MAR26 settles that day at 08:00), strikes within ±4%.
 */
export function btcDailyGenesis(): Genesis {
  return genesis({
    genesisTimeMs: daysFromCivil(2026, 3, 2) * MS_PER_DAY,
    listing: {
      ...DEVNET_LISTING,
      schedule: {
        underlyings: [
          { underlying: 'BTC', strikeStepQuote: 1_000n * USDC, strikeRangePpm: 40_000 },
        ],
        dailies: 1,
        weeklies: 0,
        monthlies: 0,
        quarterlies: 0,
        futureCycles: ['daily'],
      },
    },
  });
}

/** Blocks and results by height, as a node's block store and results log keep them. */
export interface StoredChain {
  blocks: Map<number, Uint8Array>;
  results: Map<number, BlockResults>;
}

/**
 * Keeps a block the harness just executed as a node stores it: by default its
 * certificate holds no votes and it carries no lastCommit.
 */
export function store(
  chain: StoredChain,
  h: Harness,
  r: BlockResult,
  txs: readonly SignedTx[],
  certificates: { commit?: CommitCertificate; lastCommit?: CommitCertificate } = {},
): void {
  const height = h.ex.state.height;
  const zeros = (n: number) => new Uint8Array(n);
  const block = {
    header: {
      chainId: h.ex.state.genesis.chainId,
      height,
      round: 0,
      timeMs: h.timeMs,
      proposerAddress: zeros(20),
      previousBlockHash: zeros(32),
      previousAppHash: zeros(32),
      txsRoot: zeros(32),
      lastCommitHash: zeros(32),
      evidenceHash: zeros(32),
      validatorsHash: zeros(32),
    },
    txs: txs.map(encodeSignedTx),
    evidence: [],
    lastCommit: certificates.lastCommit ?? null,
  };
  const commit = certificates.commit ?? { height, round: 0, blockHash: zeros(32), votes: [] };
  chain.blocks.set(height, encode(committedBlockCodec, { block, commit }));
  chain.results.set(height, {
    height,
    appHash: r.appHash,
    results: txs.length === 0 ? [] : r.results,
    details: {
      events: r.events.filter((e) => STORED_EVENT_TYPES.has(e.type)),
      insuranceQuote: h.ex.state.insuranceQuote,
      auctionTradesKept: true,
    },
  });
}

/**
 * A ChainView over `h` through a stand-in node. `deliver` hands the view the
 * block the harness just executed, as the node's commit listener does.
 */
export function standInView(
  h: Harness,
  o: {
    validators?: ValidatorSet | { validators: [] };
    /** The set that decided a height (default: `validators` at every height). */
    setAt?: (height: number) => ValidatorSet | { validators: [] };
    submit?: (bytes: Uint8Array) => Promise<AddResult>;
    accountOrdersMax?: number;
    /** What the node stored of each height (default: nothing), as a restarted node reads it. */
    stored?: StoredChain;
    /** Where the view logs (default: nowhere). */
    log?: Log;
  } = {},
): {
  view: ChainView;
  /** Sets the node's halt report, as the loop does when it halts. */
  halt: (report: { code: string; message: string }) => void;
  /** `txs`: the block's transactions, when the view is to see them (their trades and fills). */
  deliver: (
    r: BlockResult,
    txs: readonly SignedTx[],
    lastCommit?: CommitCertificate,
    evidence?: readonly DuplicateVoteEvidence[],
  ) => void;
} {
  const validators = o.validators ?? { validators: [] };
  const stored = o.stored;
  let listener: ((b: CommittedBlock) => void) | undefined;
  const node = {
    app: {
      exchange: h.ex,
      appHash: new Uint8Array(32),
      validatorSetAt: o.setAt ?? (() => validators),
    },
    loop: {
      replica: { validators, height: 1, round: 0, step: 0 },
      haltReport: null as { code: string; message: string } | null,
      catchingUp: () => false,
      stats: { lastCommitLatencyMs: 0 },
    },
    publicKey: null,
    peerCount: () => 0,
    mempool: { has: () => false },
    results: { load: (height: number) => stored?.results.get(height) ?? null },
    submit: o.submit,
    subscribe: (l: (b: CommittedBlock) => void) => {
      listener = l;
      return () => (listener = undefined);
    },
    subscribeDropped: () => () => {},
  };
  const storage = { blocks: { load: (height: number) => stored?.blocks.get(height) ?? null } };
  const view = new ChainView({
    node: node as unknown as ZommaNode,
    storage: storage as unknown as Storage,
    genesis: h.ex.state.genesis,
    ...(o.accountOrdersMax === undefined ? {} : { accountOrdersMax: o.accountOrdersMax }),
    ...(o.log === undefined ? {} : { log: o.log }),
  });
  const deliver = (
    r: BlockResult,
    txs: readonly SignedTx[],
    lastCommit?: CommitCertificate,
    evidence: readonly DuplicateVoteEvidence[] = [],
  ): void => {
    const height = h.ex.state.height;
    listener!({
      executed: {
        block: {
          header: { height, timeMs: h.timeMs, proposerAddress: new Uint8Array(20) },
          txs: [],
          lastCommit: lastCommit ?? null,
          evidence,
        },
        blockHash: new Uint8Array(32),
        result: { appHash: r.appHash },
        commit: null,
      },
      txs: {
        height,
        timeMs: h.timeMs,
        // As the node hashes them, so that `tx` finds a transaction live as after a restart.
        hashes: txs.map((t) => toHex(sha256(encodeSignedTx(t)))),
        txs,
        results: txs.length === 0 ? [] : r.results,
        exchange: r,
        oracle: {},
      },
    } as unknown as CommittedBlock);
  };
  return { view, deliver, halt: (report) => (node.loop.haltReport = report) };
}
