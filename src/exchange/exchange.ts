// The exchange state machine: finalizeBlock(block) → { results, events, appHash }.
//
// A block runs in this order (docs/exchange.md, "A block"):
//   1. oracle: with a genesis oracle, the validators' observations of the
//      previous commit are aggregated (oracle/aggregate.ts: >= 2/3 of stake,
//      stake-weighted median, clamped per block) and each market's "oracle
//      stale" flag set; otherwise each market's index from the block's oracle
//      map (kept if absent);
//   2. per market: expired good-til orders leave the books (and the auction
//      orders), then its mark price (mark.ts), funding samples and payments
//      (funding.ts);
//   3. with a genesis listing (listing.ts): settlement TWAPs, settlement of
//      expired dated markets, new listings, option marks; then each market
//      whose volatility auction is due, and that is neither halted nor
//      stale, is uncrossed (auction/call.ts);
//   4. transactions, in the in-block ordering (ordering.ts), each with a result;
//   5. liquidations (liquidation.ts) of the accounts the block touched and of
//      the holders of every market whose mark moved; then the insurance fund
//      pays the deficits as far as it holds (payDeficits);
//   6. invariants (with the checkInvariants option), then the digest and appHash.
// Before all of these, the block's evidence jails and slashes the validators
// who double-signed (governance.ts applyEvidence), so none of their
// transactions in this very block count as a validator's; the pending
// proposals and deposits that the remaining approvals now carry past 2/3 of
// the smaller stake execute and are credited then.

import { Writer } from '../codec/wire.ts';
import { creditRipeDeposits } from './attest_deposit.ts';
import { uncrossAuction } from './auction/call.ts';
import type { OrderBook } from './book/index.ts';
import { ZommaError } from '../lib/errors.ts';
import { divFloor } from '../lib/int.ts';
import { ADDRESS_CACHE_ENTRIES_MAX } from '../lib/limits.ts';
import type { ExchangeEvent, BlockResult, TxResult } from './results.ts';
import { executeTx } from './execute.ts';
import type { Offence } from './governance.ts';
import { applyEvidence, executeRipeProposals, offender } from './governance.ts';
import type { TxEnv } from './execute.ts';
import { advanceFunding } from './funding.ts';
import type { Genesis } from './genesis.ts';
import { encodeGenesis, validateGenesis } from './genesis.ts';
import { Digest, digestFromScratch, resetLeaves, updateDigest } from './hash.ts';
import { AddressCache, sha256 } from './hashing.ts';
import { checkInvariants } from './invariants.ts';
import { bytesKey } from './keys.ts';
import { payDeficits, runLiquidations } from './liquidation.ts';
import { markOptions, runListing } from './listing.ts';
import { computeMarkTicks, indexToTicks } from './mark.ts';
import { SviError, validateSvi } from './options/index.ts';
import type { OracleState, PriceFeed, SmileFeed, StakedObservation } from './oracle/aggregate.ts';
import { NEVER, aggregateOracle, isStale, smileKey } from './oracle/aggregate.ts';
import type { SmileObservation } from './oracle/observation.ts';
import { forgetOrder } from './orders.ts';
import { executionOrder } from './ordering.ts';
import { ExchangeState } from './state.ts';
import type { MarketState, Principal } from './state.ts';
import { getPrincipal } from './context.ts';
import type { SignedTx } from './tx/types.ts';

export interface Block {
  readonly height: number;
  /** BFT time of the block, ms. */
  readonly timeMs: number;
  readonly proposer: Uint8Array;
  /** Decoded transactions whose signatures the node already verified. */
  readonly txs: readonly SignedTx[];
  /**
   * Underlying ('BTC') → index price in quote units per whole base unit, taken
   * as it is (a trusted feed: simulations, benches, tests). Ignored when
   * oracleVotes is given.
   */
  readonly oracle: Readonly<Record<string, bigint>>;
  /** The observations of the commit the block carries (needs a genesis oracle). */
  readonly oracleVotes?: OracleVotes;
  /** Committed evidence of double-signing (consensus checked it), in block order. */
  readonly evidence?: readonly Offence[];
  /** Smiles of a trusted feed, taken as they are (validated); only without oracleVotes. */
  readonly smiles?: readonly SmileObservation[];
}

/** A trusted feed's smiles over the previous ones; expired ones are dropped, as aggregation does. */
function trustedSmiles(
  previous: ReadonlyMap<string, SmileFeed>,
  smiles: readonly SmileObservation[],
  timeMs: number,
): Map<string, SmileFeed> {
  const next = new Map<string, SmileFeed>();
  for (const [key, feed] of previous) next.set(key, feed);
  for (const s of smiles) {
    try {
      validateSvi(s.svi);
    } catch (e) {
      if (e instanceof SviError) throw new BlockError(`smile ${s.underlying}: ${e.message}`);
      throw e;
    }
    next.set(smileKey(s.underlying, s.expiryMs), { svi: s.svi, updatedMs: timeMs });
  }
  for (const key of [...next.keys()]) {
    if (Number(key.slice(key.lastIndexOf(':') + 1)) <= timeMs) next.delete(key);
  }
  return new Map([...next.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export interface OracleVotes {
  readonly votes: readonly StakedObservation[];
  /** Stake of the commit's whole validator set. */
  readonly totalStake: bigint;
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
      // Option marks: recomputed from the same inputs, or (with a mark interval) read from the snapshot.
      markOptions(restored, null);
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
    if (block.oracleVotes !== undefined && state.oracleParams === null) {
      throw new BlockError('oracle votes without a genesis oracle');
    }
    for (const o of block.evidence ?? []) {
      if (offender(state, o) === undefined)
        throw new BlockError('evidence against a non-validator');
    }
    const events: ExchangeEvent[] = [];
    const previousMs = state.timeMs;
    state.height = block.height;
    state.timeMs = block.timeMs;
    const validatorUpdates = applyEvidence(state, block.evidence ?? [], events);
    if (validatorUpdates.length > 0) {
      // The thresholds are now 2/3 of less stake: what the approvals still
      // counted already carry takes effect, halts before credits.
      executeRipeProposals(state, events);
      creditRipeDeposits(state, events);
    }

    const marksBefore = state.markets.map((m) => m.markTicks);
    state.marksBefore = marksBefore;
    this.updateOracle(block);
    for (const market of state.markets) {
      if (market.retired) continue;
      if (state.oracle !== null) {
        const feed = state.oracle.prices.get(market.params.underlying) ?? NEVER;
        if (feed.priceQuote > 0n) market.indexTicks = indexToTicks(market, feed.priceQuote);
        const stale = isStale(feed, block.timeMs, state.oracleParams!);
        // Liquidations skipped while stale are looked at again once it recovers.
        if (market.oracleStale && !stale) market.liquidationBacklog = true;
        market.oracleStale = stale;
      } else {
        const index = block.oracle[market.params.underlying];
        if (typeof index === 'bigint' && index > 0n) {
          market.indexTicks = indexToTicks(market, index);
        }
      }
      market.liquidatedQuote = 0n;
      market.dirty = true;
      this.expireOrders(market, market.book, block.timeMs, events);
      const auction = market.auction;
      if (auction !== null && auction.active) {
        this.expireOrders(market, auction.bids, block.timeMs, events);
        this.expireOrders(market, auction.asks, block.timeMs, events);
      }
      // Options are marked from their smile (listing.ts); dated markets pay no funding.
      if (market.instrument.kind !== 'option') {
        if (market.indexTicks > 0) market.setMark(computeMarkTicks(market));
        if (!market.listed) advanceFunding(state, market, previousMs, block.timeMs, events);
      }
    }
    // Expiries, listings and option marks come next, so that auctions end
    // once every market's index and mark are this block's, options' included:
    // the uncross checks each owner's equity at them (fill_guard.ts), and a
    // market later in this loop, or an option not yet marked, would otherwise
    // still show last block's mark. (Listed markets have no auctions.)
    runListing(state, events, previousMs);
    // A due auction waits while its market is halted, or while its index is
    // stale: the uncross trades orders that may open positions, which a stale
    // market takes from no order, against equity at a mark nobody observed.
    for (const market of state.markets) {
      const auction = market.auction;
      if (
        !market.retired &&
        auction?.active === true &&
        block.timeMs >= auction.monitor.auctionEndMs &&
        !market.halted &&
        !market.oracleStale
      ) {
        uncrossAuction(state, market, block.timeMs, events);
      }
    }

    const env: TxEnv = {
      state,
      blockTimeMs: block.timeMs,
      events,
      addressOf: (pk, key) => this.addresses.addressOf(pk, key),
    };
    const order = executionOrder(block.txs.map((tx) => tx.action));
    // Every address looked up in one tight pass first: the lookups miss cache
    // (thousands of addresses), and there the misses overlap instead of
    // waiting one by one between transactions. Addresses are never removed, so
    // a record found stays valid; one created by an earlier transaction of the
    // block is looked up again by executeTx.
    const known = new Array<Principal | undefined>(block.txs.length);
    for (let i = 0; i < block.txs.length; i++)
      known[i] = getPrincipal(state, block.txs[i]!.account);
    const results: TxResult[] = new Array(block.txs.length);
    for (const i of order) results[i] = executeTx(env, block.txs[i]!, i, known[i]);

    // Holders are scanned where the mark moved, where an option was marked
    // again (its scenario margin moves with its forward, time and volatility,
    // even when its mark in ticks does not), or where the per-block cap left a
    // liquidation unfinished in the previous block.
    const moved = state.markets.map((m, i) => {
      const rescan =
        m.markTicks !== marksBefore[i] || m.liquidationBacklog || m.remarkedHeight === state.height;
      m.liquidationBacklog = false;
      return rescan;
    });
    runLiquidations(state, state.dirtyAccounts, moved, events);
    // Here, not before the transactions: the fund's inflows of this block
    // (liquidation fees, covers given back, funding dust) count, the block's
    // liquidations drew on it first, and the withdrawal pause's memo of the
    // block (withdraw.ts) assumes the fund does not move during them.
    payDeficits(state, events);

    if (this.options.checkInvariants === true) checkInvariants(state);
    updateDigest(state, this.digest, this.genesisHash);
    this.appHash = this.computeAppHash();
    return { results, events, appHash: this.appHash, validatorUpdates };
  }

  private updateOracle(block: Block): void {
    const state = this.state;
    const params = state.oracleParams;
    if (params === null || state.oracle === null) return;
    if (block.oracleVotes !== undefined) {
      const { votes, totalStake } = block.oracleVotes;
      if (block.smiles !== undefined) throw new BlockError('smiles come with oracle votes');
      if (totalStake <= 0n) throw new BlockError('oracle votes with no stake');
      state.oracle = aggregateOracle(state.oracle, votes, totalStake, block.timeMs, params);
      return;
    }
    // A trusted feed: its prices are taken as they are, and count as fresh.
    const direct = block.oracle;
    const prices = new Map<string, PriceFeed>();
    for (const u of params.underlyings) {
      const p = direct[u];
      const feed =
        typeof p === 'bigint' && p > 0n ? { priceQuote: p, updatedMs: block.timeMs } : null;
      prices.set(u, feed ?? state.oracle.prices.get(u) ?? NEVER);
    }
    let smiles = state.oracle.smiles;
    if (block.smiles !== undefined) smiles = trustedSmiles(smiles, block.smiles, block.timeMs);
    const next: OracleState = { prices, smiles, carried: state.oracle.carried };
    state.oracle = next;
  }

  private expireOrders(
    market: MarketState,
    book: OrderBook,
    nowMs: number,
    events: ExchangeEvent[],
  ): void {
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
