// The exchange state machine: finalizeBlock(block) → { results, events, appHash }.
//
// A block runs in this order (docs/exchange.md, "A block"):
//   1. oracle: each market's index from the block's oracle map (kept if absent);
//   2. mark prices (mark.ts), then funding samples and payments (funding.ts);
//   3. expired good-til orders leave the books;
//   4. transactions, in the in-block ordering (ordering.ts), each with a result;
//   5. liquidations (liquidation.ts) of the accounts the block touched and of
//      the holders of every market whose mark moved;
//   6. invariants (with the checkInvariants option), then the digest and appHash.

import { Writer } from '../codec/wire.ts';
import { ZommaError } from '../lib/errors.ts';
import { divFloor } from '../lib/int.ts';
import { ADDRESS_CACHE_ENTRIES_MAX } from '../lib/limits.ts';
import type { ExchangeEvent, BlockResult, TxResult } from './results.ts';
import { executeTx } from './execute.ts';
import type { TxEnv } from './execute.ts';
import { advanceFunding } from './funding.ts';
import type { Genesis } from './genesis.ts';
import { encodeGenesis, validateGenesis } from './genesis.ts';
import { Digest, digestFromScratch, resetLeaves, updateDigest } from './hash.ts';
import { AddressCache, sha256 } from './hashing.ts';
import { checkInvariants } from './invariants.ts';
import { bytesKey } from './keys.ts';
import { runLiquidations } from './liquidation.ts';
import { computeMarkTicks, indexToTicks } from './mark.ts';
import { forgetOrder } from './orders.ts';
import { executionOrder } from './ordering.ts';
import { ExchangeState } from './state.ts';
import type { SignedTx } from './tx/types.ts';

export interface Block {
  readonly height: number;
  /** BFT time of the block, ms. */
  readonly timeMs: number;
  readonly proposer: Uint8Array;
  /** Decoded transactions whose signatures the node already verified. */
  readonly txs: readonly SignedTx[];
  /** Underlying ('BTC') → index price in quote units per whole base unit. */
  readonly oracle: Readonly<Record<string, bigint>>;
}

export interface ExchangeOptions {
  /** Check every whole-state invariant after each block (O(state)): for tests and debugging. */
  checkInvariants?: boolean;
}

export class BlockError extends ZommaError<'BadBlock'> {
  constructor(message: string) {
    super('BadBlock', message);
  }
}

export class Exchange {
  readonly state: ExchangeState;
  readonly genesisHash: Uint8Array;
  readonly options: ExchangeOptions;
  private readonly digest: Digest;
  private readonly addresses = new AddressCache(ADDRESS_CACHE_ENTRIES_MAX);
  appHash: Uint8Array;

  /** `restored` is a decoded state (snapshot.ts); its leaves are recomputed from scratch. */
  constructor(genesis: Genesis, options: ExchangeOptions = {}, restored?: ExchangeState) {
    validateGenesis(genesis);
    this.options = options;
    this.genesisHash = sha256(encodeGenesis(genesis));
    if (restored !== undefined) {
      this.state = restored;
      this.digest = resetLeaves(restored, this.genesisHash);
    } else {
      this.state = new ExchangeState(genesis, bytesKey);
      this.digest = new Digest();
      updateDigest(this.state, this.digest, this.genesisHash);
    }
    this.appHash = this.computeAppHash();
  }

  private computeAppHash(): Uint8Array {
    const w = new Writer(48);
    w.u32(divFloor(this.state.height, 0x1_0000_0000)).u32(this.state.height >>> 0);
    w.raw(this.digest.bytes());
    return sha256(w.peek());
  }

  /** The state digest (sum of leaves), as maintained incrementally. */
  digestBytes(): Uint8Array {
    return this.digest.bytes();
  }

  /** The digest recomputed from the whole state: O(state), for tests. */
  digestFromScratch(): Uint8Array {
    return digestFromScratch(this.state, this.genesisHash).bytes();
  }

  finalizeBlock(block: Block): BlockResult {
    const state = this.state;
    if (block.height !== state.height + 1) {
      throw new BlockError(`height ${block.height} after ${state.height}`);
    }
    if (!Number.isSafeInteger(block.timeMs) || block.timeMs < state.timeMs) {
      throw new BlockError(`time ${block.timeMs} before ${state.timeMs}`);
    }
    const events: ExchangeEvent[] = [];
    const previousMs = state.timeMs;
    state.height = block.height;
    state.timeMs = block.timeMs;

    const marksBefore = state.markets.map((m) => m.markTicks);
    for (const market of state.markets) {
      const index = block.oracle[market.params.underlying];
      if (typeof index === 'bigint' && index > 0n) {
        market.indexTicks = indexToTicks(market, index);
      }
      if (market.indexTicks > 0) market.setMark(computeMarkTicks(market));
      market.liquidatedQuote = 0n;
      market.dirty = true;
      advanceFunding(state, market, previousMs, block.timeMs, events);
      this.expireOrders(market.index, block.timeMs, events);
    }

    const env: TxEnv = {
      state,
      blockTimeMs: block.timeMs,
      events,
      addressOf: (pk, key) => this.addresses.addressOf(pk, key),
    };
    const order = executionOrder(block.txs.map((tx) => tx.action));
    const results: TxResult[] = new Array(block.txs.length);
    for (const i of order) results[i] = executeTx(env, block.txs[i]!, i);

    // Holders are scanned where the mark moved, or where the per-block cap
    // left a liquidation unfinished in the previous block.
    const moved = state.markets.map((m, i) => {
      const rescan = m.markTicks !== marksBefore[i] || m.liquidationBacklog;
      m.liquidationBacklog = false;
      return rescan;
    });
    runLiquidations(state, state.dirtyAccounts, moved, events);

    if (this.options.checkInvariants === true) checkInvariants(state);
    updateDigest(state, this.digest, this.genesisHash);
    this.appHash = this.computeAppHash();
    return { results, events, appHash: this.appHash };
  }

  private expireOrders(marketIndex: number, nowMs: number, events: ExchangeEvent[]): void {
    const market = this.state.markets[marketIndex]!;
    const book = market.book;
    if (book.expire(nowMs) === 0) return;
    const removed = book.removed;
    for (let i = 0; i < removed.length; i++) {
      const meta = forgetOrder(this.state, removed.orderId[i]!);
      events.push({
        type: 'orderExpired',
        market: market.params.instrument,
        orderId: meta.orderId,
        account: meta.account.index,
      });
    }
  }
}
