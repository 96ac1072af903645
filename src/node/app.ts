// The application adapter: the consensus Application port over the exchange
// state machine. Transactions travel as canonical signed bytes; every check a
// block's transactions get here (decoding, stateless rules, signatures) is a
// pure function of those bytes, so every replica decides the same. Signature
// verdicts come from the node's cache (filled by the mempool's worker-pool
// checks) when present, else are computed here.

import type {
  Block as ConsensusBlock,
  BlockResult,
  CommitCertificate,
  Misbehavior,
  Vote,
} from '../consensus/index.ts';
import { ValidatorSet } from '../consensus/index.ts';
import { addressOf, sha256 } from '../crypto/index.ts';
import type { Genesis as ConsensusGenesis } from '../consensus/index.ts';
import { Exchange, decodeSnapshot, encodeSnapshot } from '../exchange/index.ts';
import type { BlockResult as ExchangeResult, Genesis } from '../exchange/index.ts';
import type { SignedTx } from '../exchange/tx/index.ts';
import {
  checkNonce,
  checkTxWithoutSignature,
  nonceRefusalMessage,
  verifyTxSignature,
} from '../exchange/tx/index.ts';
import { bytesKey } from '../exchange/keys.ts';
import { assert } from '../lib/assert.ts';
import { bytesEqual, toHex } from '../lib/bytes.ts';
import { BLOCK_TX_BYTES_MAX, BLOCK_TXS_MAX, NODE_PRICE_SOURCES } from '../lib/limits.ts';
import { encodeObservation } from '../exchange/oracle/index.ts';
import type { NodeApplication } from './loop.ts';
import type { SignatureCache } from './mempool/sigcache.ts';
import { observationOf, oracleVotesOf, ownObservation, simulatedSmiles } from './oracle.ts';
import type { ObservationSource } from './oracle.ts';
import type { PriceSource } from './oracle_source.ts';

/** The agents' window of an address none of whose agents has signed yet. */
const NO_NONCES: readonly number[] = [];

/** Why the committed state refuses a waiting transaction: the exchange's code for it. */
export type StaleCode = 'Expired' | 'StaleNonce' | 'DuplicateNonce' | 'NotPermitted';

/**
 * Why the committed state refuses a transaction at admission: a StaleCode, or
 * FutureNonce (its nonce NONCE_FUTURE_MS_MAX or more ahead of the last
 * block's time). Only admission refuses that one: later blocks bring block
 * time closer to a nonce, so one admitted never becomes FutureNonce.
 */
export type AdmissionCode = StaleCode | 'FutureNonce';

export interface ExecutedTxs {
  readonly height: number;
  readonly timeMs: number;
  /** Hex hash of every transaction of the block, in block order. */
  readonly hashes: readonly string[];
  /** Each transaction of the block decoded, in block order; null for bytes that failed the checks. */
  readonly txs: readonly (SignedTx | null)[];
  /** The exchange's result per transaction in block order; null for bytes that failed the checks. */
  readonly results: readonly (ExchangeResult['results'][number] | null)[];
  readonly exchange: ExchangeResult;
  /** The index of each priced underlying after the block (quote units per whole base unit). */
  readonly oracle: Readonly<Record<string, bigint>>;
}

export interface ExchangeAppOptions {
  readonly genesis: Genesis;
  readonly consensusGenesis: ConsensusGenesis;
  readonly signatures: SignatureCache;
  /**
   * A transaction this node already admitted, by its exact bytes (the
   * mempool's lookup): decoded with the same chain id and signature-checked
   * here, so a proposal's copy of it is not decoded, hashed or checked again.
   */
  readonly known?: (
    raw: Uint8Array,
  ) => { readonly tx: SignedTx; readonly hash: string } | undefined;
  /**
   * This validator's price source (null: a full node, or no observations). Its
   * observation is the median of NODE_PRICE_SOURCES readings of it — for the
   * devnet's simulated source, independently noisy feeds.
   */
  readonly prices: PriceSource | null;
  /** Separate sources instead (their median is the observation); overrides `prices`. */
  readonly priceSources?: readonly ObservationSource[];
  /** The wall clock, read only to stamp observations. */
  readonly nowMs: () => number;
  readonly checkInvariants?: boolean;
}

export class ExchangeApp implements NodeApplication {
  exchange: Exchange;
  /** The last block executed, for the read model and the mempool. */
  lastExecuted: ExecutedTxs | null = null;
  /** Consensus sets by who is out of them (jailings only ever remove members). */
  private readonly sets = new Map<string, ValidatorSet>();
  private readonly chainId: string;
  /**
   * Checked transactions by their bytes: a block's are checked when it is
   * proposed and again when it executes (the same arrays), and the verdict is a
   * pure function of the bytes. Weak: entries go with the blocks.
   */
  private readonly checked = new WeakMap<Uint8Array, { tx: SignedTx; hash: string } | null>();

  constructor(
    private readonly options: ExchangeAppOptions,
    restored?: Exchange,
  ) {
    this.exchange =
      restored ??
      new Exchange(options.genesis, { checkInvariants: options.checkInvariants === true });
    this.chainId = options.genesis.chainId;
  }

  /**
   * The consensus set deciding `height`, derived from the exchange's state:
   * the only updates the exchange returns remove the validators a block at
   * height J jailed, from the set deciding J + 2 on, and every other member
   * keeps its genesis stake as power (consensusGenesisOf).
   */
  validatorSetAt(height: number): ValidatorSet {
    const members = this.exchange.state.validators.filter(
      (v) => !v.jailed || height < v.jailedHeight + 2,
    );
    const key = members.map((v) => v.key).join();
    let set = this.sets.get(key);
    if (set === undefined) {
      set = ValidatorSet.fromUpdates(
        members.map((v) => ({ publicKey: v.publicKey, power: Number(v.genesisStake) })),
      );
      this.sets.set(key, set);
    }
    return set;
  }

  /** A block's evidence by offender, as the replica resolves it (the node names them itself on replay). */
  misbehaviorOf(block: ConsensusBlock): Misbehavior[] {
    return block.evidence.map((e) => {
      const vote = e.voteA;
      const validator = this.validatorSetAt(vote.height).validators[vote.validatorIndex];
      assert(validator !== undefined, 'committed evidence names a member of its set');
      return {
        publicKey: validator.publicKey,
        power: validator.power,
        height: vote.height,
        round: vote.round,
        type: vote.type,
      };
    });
  }

  static fromSnapshot(options: ExchangeAppOptions, bytes: Uint8Array): ExchangeApp {
    const exchange = decodeSnapshot(bytes, { checkInvariants: options.checkInvariants === true });
    return new ExchangeApp(options, exchange);
  }

  get height(): number {
    return this.exchange.state.height;
  }

  get appHash(): Uint8Array {
    return this.exchange.appHash;
  }

  encodeSnapshot(): Uint8Array {
    return encodeSnapshot(this.exchange);
  }

  prepareProposal(_height: number, _round: number, txs: readonly Uint8Array[]): Uint8Array[] {
    const out: Uint8Array[] = [];
    let bytes = 0;
    for (const tx of txs) {
      if (out.length >= BLOCK_TXS_MAX || bytes + tx.length > BLOCK_TX_BYTES_MAX) break;
      bytes += tx.length;
      out.push(tx);
    }
    return out;
  }

  processProposal(block: ConsensusBlock): boolean {
    if (block.txs.length > BLOCK_TXS_MAX) return false;
    let bytes = 0;
    for (const raw of block.txs) {
      bytes += raw.length;
      if (bytes > BLOCK_TX_BYTES_MAX || this.decode(raw) === null) return false;
    }
    return true;
  }

  extendVote(_height: number, _round: number, _blockHash: Uint8Array): Uint8Array {
    const params = this.exchange.state.oracleParams;
    const sources = this.sources();
    if (params === null || sources.length === 0) return new Uint8Array(0);
    const nowMs = this.options.nowMs();
    const observation = ownObservation(sources, nowMs, params.underlyings);
    if (observation.prices.length === 0) return new Uint8Array(0);
    // Smiles for the listed expiries, so that options have marks (a devnet has no smile feed).
    const expiries = new Map<string, { underlying: string; expiryMs: number }>();
    for (const m of this.exchange.state.markets) {
      if (m.listed && !m.retired) {
        expiries.set(`${m.params.underlying}:${m.expiryMs}`, {
          underlying: m.params.underlying,
          expiryMs: m.expiryMs,
        });
      }
    }
    const smiles = simulatedSmiles([...expiries.values()], nowMs);
    return encodeObservation({ ...observation, smiles });
  }

  /** An empty extension or a valid observation (a vote with a bad one is refused). */
  verifyVoteExtension(vote: Vote): boolean {
    return vote.extension.length === 0 || observationOf(vote.extension) !== null;
  }

  private sources(): readonly ObservationSource[] {
    if (this.options.priceSources !== undefined) return this.options.priceSources;
    const prices = this.options.prices;
    return prices === null ? [] : new Array<ObservationSource>(NODE_PRICE_SOURCES).fill(prices);
  }

  finalizeBlock(
    block: ConsensusBlock,
    _commit: CommitCertificate,
    misbehavior?: readonly Misbehavior[],
  ): BlockResult {
    const offenders = this.misbehaviorOf(block);
    if (misbehavior !== undefined) {
      // Two derivations of one fact (the replica's set history, the exchange's jailings).
      assert(
        misbehavior.length === offenders.length &&
          misbehavior.every((m, i) => bytesEqual(m.publicKey, offenders[i]!.publicKey)),
        'the replica and the exchange name the same offenders',
      );
    }
    const txs: SignedTx[] = [];
    const positions: number[] = [];
    const hashes: string[] = [];
    const all: (SignedTx | null)[] = [];
    block.txs.forEach((raw, i) => {
      const decoded = this.decode(raw);
      hashes.push(decoded?.hash ?? toHex(sha256(raw)));
      all.push(decoded?.tx ?? null);
      if (decoded === null) return;
      txs.push(decoded.tx);
      positions.push(i);
    });
    const withOracle = this.exchange.state.oracleParams !== null;
    const result = this.exchange.finalizeBlock({
      height: block.header.height,
      timeMs: block.header.timeMs,
      proposer: block.header.proposerAddress,
      txs,
      oracle: {},
      ...(withOracle
        ? {
            oracleVotes: oracleVotesOf(
              block.lastCommit,
              this.validatorSetAt(block.header.height - 1),
            ),
          }
        : {}),
      evidence: offenders.map((m) => ({ publicKey: m.publicKey, height: m.height })),
    });
    const oracle: Record<string, bigint> = {};
    for (const [u, feed] of this.exchange.state.oracle?.prices ?? []) {
      if (feed.priceQuote > 0n) oracle[u] = feed.priceQuote;
    }
    const results: (ExchangeResult['results'][number] | null)[] = block.txs.map(() => null);
    positions.forEach((at, i) => (results[at] = result.results[i]!));
    this.lastExecuted = {
      height: block.header.height,
      timeMs: block.header.timeMs,
      hashes,
      txs: all,
      results,
      exchange: result,
      oracle,
    };
    return { appHash: result.appHash, validatorUpdates: result.validatorUpdates };
  }

  commit(): void {}

  /**
   * Whether a waiting transaction may still be accepted by the committed state
   * (the mempool's admission and re-check): its nonce is neither used, too old
   * nor too far ahead, and it has not expired. What else it needs (margin, orders) is decided at execution.
   */
  stillValid(tx: SignedTx): boolean {
    return this.staleCodeOf(tx) === null;
  }

  /**
   * Why the committed state already refuses a transaction, with the code its
   * block would give (FutureNonce, Expired, StaleNonce, DuplicateNonce,
   * NotPermitted), or null: the mempool refuses it at admission with that
   * code, so a client hears at once what a block would tell it. The nonce is
   * judged at the last block's time (FutureNonce: the next block's is hardly
   * later). NotPermitted: the address
   * exists and the signer is neither its key nor an agent of it active at
   * the last block's time. Without that, anyone could sign with a key of
   * their own under another's address and fill that address's share of the
   * mempool and of each proposal with transactions every block refuses. (An
   * agent must be registered in a committed block before it signs.)
   */
  staleCodeOf(tx: SignedTx): AdmissionCode | null {
    const state = this.exchange.state;
    // In the exchange's order (execute.ts): the nonce first, then the expiry.
    // A transaction already committed and resent once expired is told its
    // nonce is used, not Expired, which would say it never took effect.
    const { window, permitted } = this.signerOf(tx);
    const rejection = checkNonce(window, tx.nonce, state.timeMs);
    if (rejection !== undefined) return rejection;
    if (!permitted) return 'NotPermitted';
    // Expired even when its block would refuse it first for its signer (not
    // the address's key nor an active agent's, or an address not yet known):
    // expired, it never commits, whatever key becomes an agent later.
    if (tx.expiresAtMs !== undefined && tx.expiresAtMs < state.timeMs) return 'Expired';
    return null;
  }

  /**
   * What a refusal by staleCodeOf tells the client, when it has more to say
   * than the code's fixed words: for a nonce refused for its time or the
   * signer's window, the bound it broke and the last block's time it was
   * judged at (as the exchange's own message says it). Undefined otherwise.
   */
  staleMessageOf(tx: SignedTx, code: string): string | undefined {
    if (code !== 'FutureNonce' && code !== 'StaleNonce') return undefined;
    const { window } = this.signerOf(tx);
    const timeMs = this.exchange.state.timeMs;
    return nonceRefusalMessage(code, window, tx.nonce, timeMs, "the last block's time");
  }

  /**
   * The nonce window the exchange checks for this signer (execute.ts): its
   * own key's, or its agents'; an address not yet known has none, but its
   * nonce may still be too old for the block's time. And whether the signer
   * may sign for the address: not when the address exists and the signer is
   * neither its key nor an agent of it active at the last block's time.
   */
  private signerOf(tx: SignedTx): { window: readonly number[]; permitted: boolean } {
    const state = this.exchange.state;
    const principal = state.principals.get(bytesKey(tx.account));
    if (principal === undefined) return { window: NO_NONCES, permitted: true };
    const byMaster = principal.hasMasterKey()
      ? principal.isMasterKey(tx.signer)
      : bytesEqual(addressOf(tx.signer), tx.account);
    if (byMaster) return { window: principal.nonces, permitted: true };
    const agent = principal.agents?.get(bytesKey(tx.signer));
    return {
      window: principal.agentNonces ?? NO_NONCES,
      permitted: agent !== undefined && agent.expiresAtMs > state.timeMs,
    };
  }

  private decode(raw: Uint8Array): { tx: SignedTx; hash: string } | null {
    const known = this.checked.get(raw);
    if (known !== undefined) return known;
    const decoded = this.check(raw);
    this.checked.set(raw, decoded);
    return decoded;
  }

  private check(raw: Uint8Array): { tx: SignedTx; hash: string } | null {
    const held = this.options.known?.(raw);
    if (held !== undefined) return { tx: held.tx, hash: held.hash };
    try {
      const checked = checkTxWithoutSignature(raw, this.chainId);
      const hash = toHex(checked.hash);
      if (!this.options.signatures.has(hash)) {
        if (!verifyTxSignature(checked.tx, checked.bytes)) return null;
        this.options.signatures.add(hash);
      }
      return { tx: checked.tx, hash };
    } catch {
      return null;
    }
  }
}
