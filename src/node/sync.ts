// State sync: a new node with an empty data directory starts from a peer's
// snapshot instead of replaying every block from height 1 (which pruned peers
// no longer hold). Modelled on CometBFT's statesync, simpler:
//
// 1. Ask every peer for its snapshot offers (height, format, size, chunk
//    hashes, hash of the whole). An offer more than half of the peers that
//    offered make comes first (with an honest majority of them, it is
//    genuine); then the others, highest first, but at most
//    SYNC_CANDIDATES_PER_PEER_MAX of any one peer's, each peer's best before
//    anyone's second (a peer offering many fake heights cannot crowd out the
//    others' offers). Offers differing in any field are distinct. Once every
//    offer is refused, peers are asked again and the offers not yet tried are
//    tried (SYNC_OFFER_ROUNDS_MAX rounds): a peer still connecting at first
//    is heard then. A peer's offers cost SYNC_CANDIDATES_PER_PEER_MAX tries
//    over all rounds, not per round. The peers are those the transport
//    connected: a peer of another execution or wire version is refused in the
//    handshake (transport/secure.ts), so it is never asked, and a sync that
//    finds no offer says which peers were refused for their versions.
// 2. Fetch the committed blocks of the snapshot's height h and of h+1. The
//    header of h+1 carries previousAppHash, the state after h: the hash the
//    snapshot must reproduce. h+1's certificate is checked against the trusted
//    validator set, the block of h is bound to h+1's header by its hash, and
//    each block's body (transactions, evidence, last commit) must be the one
//    its header hashes: block h is stored and served on, with the certificate
//    h+1 carries (bound by h+1's lastCommitHash, unlike the one a peer pairs
//    with h). Blocks are asked of every peer that answered, not only those
//    offering (any can serve a block, checked by hash or certificate, so a
//    lone liar cannot set the pace). An answer that fails any check is asked
//    of another peer. The blocks come first: an offer of a height no
//    certified block backs costs no chunk.
// 3. Fetch its chunks one at a time, each from the peer offering it that has
//    cost the least time so far (silent, bad or slower than a chunk at
//    SYNC_TRANSFER_BYTES_PER_S_MIN), checking every chunk's sha256 and then
//    the whole snapshot's; a bad or missing answer is asked of another peer,
//    a bounded number of times (a `pruned` answer uses no attempt). The
//    snapshot's buffer grows in place with the chunks verified, not to the
//    size offered (GrowingBytes). The chunks of an offer get SYNC_OFFER_GRACE_MS
//    plus its size at SYNC_TRANSFER_BYTES_PER_S_MIN, then the offer is
//    abandoned (SnapshotTooSlow): a liar serving a large fake correctly but
//    slowly costs that, not the whole SYNC_TIMEOUT_MS. A `busy` answer (the
//    provider's budget for all its peers is spent) is asked again after the
//    delay it names, or of another provider meanwhile; it uses no attempt.
//    Time spent on busy answers is not counted against the offer's budget up
//    to SYNC_BUSY_WAIT_MS_MAX (past it, it is: a share of a busy server below
//    SYNC_TRANSFER_BYTES_PER_S_MIN is too slow, as a slow link is), and one
//    request answered busy for longer than that refuses the offer (SyncBusy):
//    a peer answering busy forever, or nearly, costs a bounded time. A
//    request the offer's end (or the deadline) cut short and left unanswered
//    is neither charged to its peer nor counted an attempt.
// 4. Restore the application from the snapshot and recompute its appHash; any
//    difference refuses the offer (typed error, nothing written).
// 5. Write the snapshot, a WAL checkpoint of height h, then block h: the node
//    then starts as after a restart, and the replica catches up from h+1.
//    The checkpoint is the commit point (saveSynced).
//
// Trust, by default: the validator set of the genesis. The set deciding h+1 is
// the genesis set with its proposer priorities advanced h times, which is the
// chain's only if no validator update ever took effect; a chain whose set
// changed is refused (UntrustedValidators) rather than guessed at.
//
// Trust, with a trusted block T (height and hash, from the operator): step 2
// instead walks the blocks from T down to h by their hashes (the hashes bound
// so far and the last few blocks are kept across offers, so a second offer
// continues the walk instead of repeating it), and the
// consensus state after h is recomputed from the snapshot's validator updates
// and checked against those headers (sync_trust.ts).
//
// Evidence committed in the blocks up to h is not known here: the committed
// evidence restarts empty, from h+1 (ChainState.committedEvidenceFrom). Until
// the evidence age has passed, the replica neither pools nor proposes evidence
// of heights before h, which one of those blocks may have committed already:
// every validator that saw it would refuse the proposal, and each of this
// validator's turns would cost a round. A proposal by another that repeats such
// evidence is still judged differently here (accepted); the validators that
// saw it committed refuse it, and when the others hold more than 2/3 of the
// stake such a block may be committed, which they then follow from its certificate
// (docs/protocol.md, "Evidence").

import { decode, encode } from '../codec/wire.ts';
import type {
  Block,
  ChainState,
  CommitCertificate,
  CommittedBlock,
  Genesis,
  PeerId,
  Verifier,
} from '../consensus/index.ts';
import {
  ValidatorSet,
  ValidatorSetError,
  blockHashOf,
  commitHashOf,
  committedBlockCodec,
  walRecordCodec,
} from '../consensus/index.ts';
import { bodyFactsOf } from '../consensus/memo.ts';
import { sha256 } from '../crypto/index.ts';
import { assert } from '../lib/assert.ts';
import { bytesEqual, toHex } from '../lib/bytes.ts';
import { ZommaError } from '../lib/errors.ts';
import {
  SNAPSHOT_BYTES_MAX,
  SYNC_ATTEMPTS_MAX,
  SYNC_BUSY_WAIT_MS_MAX,
  SYNC_CANDIDATES_MAX,
  SYNC_CANDIDATES_PER_PEER_MAX,
  SYNC_CHUNK_BYTES,
  SYNC_DISCOVERY_MS,
  SYNC_DISCOVERY_WARN_MS,
  SYNC_OFFER_GRACE_MS,
  SYNC_OFFER_ROUNDS_MAX,
  SYNC_REQUEST_RETRY_MS,
  SYNC_RESPONSE_TIMEOUT_MS,
  SYNC_TIMEOUT_MS,
  SYNC_TRANSFER_BYTES_PER_S_MIN,
  SYNC_TRUST_BLOCKS_MAX,
  SYNC_TRUST_CACHED_BLOCKS_MAX,
} from '../lib/limits.ts';
import type { Clock } from './clock.ts';
import { systemClock } from './clock.ts';
import { CHANNEL, frame } from './framing.ts';
import type { Log } from './log.ts';
import { silentLog } from './log.ts';
import type { PeerNetwork } from './network.ts';
import type { Storage } from './storage/index.ts';
import type { SnapshotOffer, SyncMessage } from './sync_messages.ts';
import { chunkBytesOf, decodeSyncMessage, encodeSyncMessage } from './sync_messages.ts';
import type { ChainSets, HeightUpdates, TrustedBlock } from './sync_trust.ts';
import { chainSetsAfter } from './sync_trust.ts';
import { certified } from './watch.ts';

export type SyncErrorCode =
  /** No peer offered a snapshot before the deadline. */
  | 'NoSnapshot'
  /** Chunks or blocks could not be had from any peer within the attempts allowed. */
  | 'SyncUnavailable'
  /** The snapshot's bytes do not match the offer's hash. */
  | 'SnapshotHashMismatch'
  /** The offer's chunks did not arrive within its time budget (SYNC_TRANSFER_BYTES_PER_S_MIN). */
  | 'SnapshotTooSlow'
  /**
   * A request was answered `busy` for longer than SYNC_BUSY_WAIT_MS_MAX, or
   * the offer's chunks ran out their budget with more busy time than that.
   */
  | 'SyncBusy'
  /** Memory or address space ran out holding the snapshot being fetched. */
  | 'SnapshotOutOfMemory'
  /** The snapshot does not decode as the application's state of its height. */
  | 'SnapshotInvalid'
  /** The blocks at the snapshot's height are not a certified, consistent pair. */
  | 'BlocksInvalid'
  /** A block's transactions, evidence or last commit are not the ones its header hashes. */
  | 'BlockBodyMismatch'
  /** The chain's validator set is not the trusted one (it changed since genesis). */
  | 'UntrustedValidators'
  /** The restored state's appHash differs from the one the certified header carries. */
  | 'AppHashMismatch'
  /** Peers hold another block at the trusted height: the trusted hash is wrong, or so are they. */
  | 'TrustedHashMismatch'
  /** No offer lies below the trusted height within SYNC_TRUST_BLOCKS_MAX heights of it. */
  | 'TrustedHeightOutOfRange'
  /** Every offer tried was refused, or the overall deadline passed. */
  | 'SyncFailed'
  /** The data directory holds blocks without a WAL checkpoint: an interrupted sync of an older version. */
  | 'SyncIncomplete';

export class SyncError extends ZommaError<SyncErrorCode> {}

/** What the syncing node needs of the restored application. */
export interface RestoredState {
  readonly height: number;
  readonly appHash: Uint8Array;
  /** The validator updates it returned, by height (absent: none); read only with a trusted block. */
  readonly validatorUpdates?: readonly HeightUpdates[];
}

export interface StateSyncOptions {
  readonly network: PeerNetwork;
  readonly consensusGenesis: Genesis;
  readonly verifier: Verifier;
  /** Decodes a snapshot as the application would (throws if it cannot). */
  readonly restore: (bytes: Uint8Array) => RestoredState;
  /** Trust this committed block instead of the genesis validator set (sync_trust.ts). */
  readonly trustedBlock?: TrustedBlock;
  readonly clock?: Clock;
  readonly log?: Log;
  readonly timeoutMs?: number;
  readonly responseTimeoutMs?: number;
  readonly discoveryMs?: number;
  /** Makes the buffer a snapshot is fetched into (default reserveBytes). */
  readonly reserveSnapshot?: ReserveBytes;
}

/** A verified state, ready to be written. */
export interface SyncedState {
  readonly height: number;
  readonly snapshot: Uint8Array;
  /** The bytes to store of block `height`, with the certificate of it that block height+1 carries. */
  readonly blockBytes: Uint8Array;
  readonly chainState: ChainState;
  readonly appHash: Uint8Array;
  /** The peers that offered the snapshot used. */
  readonly providers: readonly PeerId[];
}

export interface SyncStats {
  offersReceived: number;
  chunksFetched: number;
  /** Chunk or block answers refused (wrong hash, undecodable, wrong height) or not received in time. */
  retries: number;
  /** Good answers slower than a chunk at SYNC_TRANSFER_BYTES_PER_S_MIN (their provider is asked later). */
  slowAnswers: number;
  offersRefused: number;
  dropped: number;
  /** Block requests a peer answered with `pruned`: asked of the next provider at once, using no attempt. */
  prunedAnswers: number;
  /** Chunk or block requests a peer answered with `busy`: asked again after its delay, using no attempt. */
  busyAnswers: number;
  /** Time spent on busy answers (their round trips and the delays waited out), all offers. */
  busyWaitMs: number;
}

/** One distinct offer (every field: offerKeyOf) and the peers that made it. */
export interface Candidate {
  readonly offer: SnapshotOffer;
  readonly peers: PeerId[];
}

/** What one peer answered to the offers request. */
export interface PeerOffers {
  readonly peer: PeerId;
  readonly offers: readonly SnapshotOffer[];
}

type Waiter = (message: SyncMessage | null) => void;

export class StateSyncer {
  readonly stats: SyncStats = {
    offersReceived: 0,
    chunksFetched: 0,
    retries: 0,
    slowAnswers: 0,
    prunedAnswers: 0,
    offersRefused: 0,
    dropped: 0,
    busyAnswers: 0,
    busyWaitMs: 0,
  };
  private readonly clock: Clock;
  private readonly log: Log;
  private readonly offers = new Map<PeerId, readonly SnapshotOffer[]>();
  private readonly waiters = new Map<string, { peer: PeerId; resolve: Waiter }>();
  private deadlineMs = 0;
  /** Spreads requests over the providers: each ask starts at the next one. */
  private turn = 0;
  /**
   * Time each peer has cost: a response timeout per request it left
   * unanswered or answered badly, the excess over ANSWER_MS_MAX per slow good
   * answer. pick() asks the cheapest first.
   */
  private readonly costMs = new Map<PeerId, number>();
  /**
   * Peers that answered `busy`, and when they asked to be asked again: each
   * is asked again then, another peer meanwhile if one is ready. Kept across
   * requests: a busy server is busy for the next chunk too.
   */
  private readonly busyUntilMs = new Map<PeerId, number>();
  /** With a trusted block: the hash of each height the walk down from it has bound. */
  private readonly trustedHashes = new Map<number, Uint8Array>();
  /** With a trusted block: the last blocks the walk fetched and checked (their hashes bound). */
  private readonly trustedBlocks = new Map<number, BlockAnswer>();

  constructor(private readonly options: StateSyncOptions) {
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? silentLog;
  }

  /** A sync-channel payload from a peer while syncing. */
  onMessage(peer: PeerId, payload: Uint8Array): void {
    let message: SyncMessage;
    try {
      message = decodeSyncMessage(payload);
    } catch {
      this.stats.dropped++;
      return;
    }
    if (message.kind === 'offers') {
      this.stats.offersReceived++;
      this.offers.set(peer, message.offers);
      return;
    }
    const key = answerKeyOf(message);
    const waiter = key === null ? undefined : this.waiters.get(key);
    // Only the peer asked may answer: another's answer could not be retried elsewhere.
    if (waiter === undefined || waiter.peer !== peer) {
      this.stats.dropped++;
      return;
    }
    this.waiters.delete(key!);
    waiter.resolve(message);
  }

  /**
   * Discovers, fetches and verifies; throws SyncError if no offer checks out
   * in time. Once every offer is refused, peers are asked for offers again
   * (up to SYNC_OFFER_ROUNDS_MAX rounds in all) and the offers not yet tried
   * are tried: a peer that was still connecting when the first answers came
   * is heard then, instead of the first answerers alone deciding the sync.
   */
  async run(): Promise<SyncedState> {
    const timeoutMs = this.options.timeoutMs ?? SYNC_TIMEOUT_MS;
    this.deadlineMs = this.clock.nowMs() + timeoutMs;
    let answers: PeerOffers[];
    try {
      answers = await this.discover();
    } catch (error) {
      // NoSnapshot: logged as every other way a sync fails.
      if (error instanceof SyncError) {
        this.log.error({ code: error.code, error: error.message }, 'state sync failed');
      }
      throw error;
    }
    // Each offer tried: the peers that made it then, and why it was refused.
    const tried = new Map<string, { peers: ReadonlySet<PeerId>; code: SyncErrorCode | null }>();
    // Tried again only if it was refused for want of a good answer and a peer
    // that did not make it then makes it now: a peer still connecting may
    // serve what the others withheld.
    const untried = (c: Candidate): boolean => {
      const before = tried.get(offerKeyOf(c.offer));
      if (before === undefined) return true;
      if (before.code === null || CONDEMNS_OFFER.has(before.code)) return false;
      return c.peers.some((p) => !before.peers.has(p));
    };
    // Offers refused that each peer made: one that made SYNC_CANDIDATES_PER_PEER_MAX
    // gets no more of its own tried in a later round, or a liar offering
    // fresh fakes each round would cost that many tries per round. An offer
    // more than half of the peers offering make is tried all the same (as it
    // comes first in candidatesOf): honest peers whose snapshots could not be
    // had (pruned meanwhile) may offer a newer one.
    const refusedOf = new Map<PeerId, number>();
    const hasTries = (c: Candidate, offering: number): boolean =>
      2 * c.peers.length > offering ||
      c.peers.some((p) => (refusedOf.get(p) ?? 0) < SYNC_CANDIDATES_PER_PEER_MAX);
    const refusals: { height: number; error: SyncError }[] = [];
    let candidatesSeen = 0;
    // An offer refused once the deadline had passed was cut short by it.
    let cutShort = false;
    let unusable: SyncError | null = null;
    for (let round = 0; round < SYNC_OFFER_ROUNDS_MAX; round++) {
      if (round > 0) {
        if (this.clock.nowMs() > this.deadlineMs) break;
        this.log.info({ round, refused: refusals.length }, 'state sync: asking for offers again');
        answers = await this.askOffersAgain();
      }
      let candidates: Candidate[] = [];
      try {
        const usable = this.usable(answers);
        const offering = usable.filter((a) => a.offers.length > 0).length;
        candidates = candidatesOf(usable).filter((c) => untried(c) && hasTries(c, offering));
      } catch (error) {
        if (!(error instanceof SyncError)) throw error;
        unusable = error;
      }
      candidatesSeen += candidates.length;
      for (const candidate of candidates) {
        if (this.clock.nowMs() > this.deadlineMs) break;
        const offer = candidate.offer;
        const attempt = { peers: new Set(candidate.peers), code: null as SyncErrorCode | null };
        tried.set(offerKeyOf(offer), attempt);
        this.log.info(
          { height: offer.height, sizeBytes: offer.sizeBytes, peers: candidate.peers.length },
          'state sync: fetching a snapshot',
        );
        try {
          return await this.fetchAndVerify(candidate);
        } catch (error) {
          if (!(error instanceof SyncError)) throw error;
          attempt.code = error.code;
          for (const p of candidate.peers) refusedOf.set(p, (refusedOf.get(p) ?? 0) + 1);
          refusals.push({ height: offer.height, error });
          cutShort ||= this.clock.nowMs() >= this.deadlineMs;
          this.stats.offersRefused++;
          this.log.error(
            { height: offer.height, code: error.code, error: error.message },
            'state sync: snapshot refused',
          );
        }
      }
      // Asked again and nothing new: asking once more would find nothing either.
      if (round > 0 && candidates.length === 0) break;
    }
    const failure =
      refusals.length === 0 && unusable !== null
        ? unusable
        : failureOf(refusals, candidatesSeen, timeoutMs, cutShort);
    this.log.error({ code: failure.code, error: failure.message }, 'state sync failed');
    throw failure;
  }

  /**
   * Asks every peer for its offers again, every SYNC_REQUEST_RETRY_MS for
   * SYNC_DISCOVERY_MS (a peer that connects meanwhile hears it too), and
   * returns every peer's latest answer.
   */
  private async askOffersAgain(): Promise<PeerOffers[]> {
    const request = frame(CHANNEL.sync, encodeSyncMessage({ kind: 'offersRequest' }));
    const untilMs = this.clock.nowMs() + this.discoveryMs();
    do {
      this.options.network.broadcast(request);
      await this.sleep(SYNC_REQUEST_RETRY_MS);
    } while (this.clock.nowMs() < untilMs);
    return [...this.offers].map(([peer, offers]) => ({ peer, offers }));
  }

  private async discover(): Promise<PeerOffers[]> {
    const request = frame(CHANNEL.sync, encodeSyncMessage({ kind: 'offersRequest' }));
    let firstOfferMs: number | null = null;
    let nextWarnMs = this.clock.nowMs() + SYNC_DISCOVERY_WARN_MS;
    for (;;) {
      this.options.network.broadcast(request);
      await this.sleep(SYNC_REQUEST_RETRY_MS);
      const now = this.clock.nowMs();
      const connected = this.options.network.peerCount();
      const offering = [...this.offers.values()].filter((o) => o.length > 0).length;
      if (offering > 0 && firstOfferMs === null) firstOfferMs = now;
      const everyone = this.offers.size >= connected;
      const waited = firstOfferMs !== null && now - firstOfferMs >= this.discoveryMs();
      if (offering > 0 && (everyone || waited)) break;
      if (now > this.deadlineMs) {
        const refused = this.versionRefusals();
        throw new SyncError(
          'NoSnapshot',
          `no peer offered a snapshot (${connected} connected, ${this.offers.size} answered)` +
            (refused !== '' ? `: ${refused}` : connected === 0 ? `: ${NO_PEER_HINT}` : ''),
        );
      }
      // Otherwise the wait until the deadline says nothing: a node that no
      // peer accepts (its key not yet in their peers) looks like one waiting.
      if (offering === 0 && now >= nextWarnMs) {
        nextWarnMs = now + SYNC_DISCOVERY_WARN_MS;
        const refused = this.versionRefusals();
        this.log.warn(
          { connected, answered: this.offers.size },
          refused !== ''
            ? `state sync: no peer offers a snapshot yet; ${refused}`
            : connected === 0
              ? `state sync: no peer connected yet; ${NO_PEER_HINT}`
              : 'state sync: no peer offers a snapshot yet',
        );
      }
    }
    return [...this.offers].map(([peer, offers]) => ({ peer, offers }));
  }

  /**
   * The peers the network refused for their versions, as one sentence, or ''.
   * Such a peer never connects, so it is never asked for a snapshot: one of
   * other execution rules cannot hand this node a state it would go on from
   * under its own.
   */
  private versionRefusals(): string {
    const refused = this.options.network.versionRefusals?.() ?? [];
    if (refused.length === 0) return '';
    // Configured peers come first; the addresses refused at a hello, which
    // anyone can add, are not all spelled out in one line.
    const named = refused.slice(0, SYNC_REFUSALS_NAMED).join('; ');
    const more = refused.length - SYNC_REFUSALS_NAMED;
    return (
      `peers refused for their versions: ${named}` +
      (more > 0 ? `; and ${more} more (the metrics port's /status, peersRefused)` : '')
    );
  }

  /** With a trusted block T, only the offers below T that a bounded walk down from T reaches. */
  private usable(answers: PeerOffers[]): PeerOffers[] {
    const trusted = this.options.trustedBlock;
    if (trusted === undefined) return answers;
    const reached = (o: SnapshotOffer): boolean =>
      o.height < trusted.height && trusted.height - o.height <= SYNC_TRUST_BLOCKS_MAX;
    const usable = answers.map((a) => ({ peer: a.peer, offers: a.offers.filter(reached) }));
    if (usable.every((a) => a.offers.length === 0)) {
      const offered = answers.flatMap((a) => a.offers.map((o) => o.height));
      const heights = [...new Set(offered)].sort((a, b) => b - a).join(', ');
      throw new SyncError(
        'TrustedHeightOutOfRange',
        `no snapshot offered within ${SYNC_TRUST_BLOCKS_MAX} heights below the trusted height ${trusted.height} (offered: ${heights}): trust a block above the newest snapshot`,
      );
    }
    return usable;
  }

  private discoveryMs(): number {
    return this.options.discoveryMs ?? SYNC_DISCOVERY_MS;
  }

  private async fetchAndVerify(candidate: Candidate): Promise<SyncedState> {
    const { offer, peers } = candidate;
    const h = offer.height;
    const trustedBlock = this.options.trustedBlock;
    // The blocks first: a wrong trusted hash, or an offer no certified block
    // backs, is found before any chunk is fetched.
    let at: BlockAnswer;
    let trusted: TrustedState | null = null;
    let chain: BlockAnswer[] | null = null;
    // Any peer can serve a block (checked by hash or certificate): the offer's first.
    const blockPeers = [...new Set([...peers, ...this.offers.keys()])];
    if (trustedBlock === undefined) {
      const pair = await this.fetchGenesisPair(blockPeers, h);
      at = pair.at;
      trusted = pair.trusted;
    } else {
      const walked = await this.fetchTrustedChain(blockPeers, h, trustedBlock);
      chain = [withChainCommit(walked[0]!, walked[1]!), ...walked.slice(1)];
      at = chain[0]!;
    }
    const snapshot = await this.fetchSnapshot(offer, peers);
    let restored: RestoredState;
    try {
      restored = this.options.restore(snapshot);
    } catch (error) {
      throw new SyncError('SnapshotInvalid', `snapshot ${h} does not decode: ${String(error)}`);
    }
    if (restored.height !== h) {
      throw new SyncError(
        'SnapshotInvalid',
        `snapshot offered as ${h} holds height ${restored.height}`,
      );
    }
    const expected =
      chain === null ? trusted!.appHash : chain[1]!.committed.block.header.previousAppHash;
    if (!bytesEqual(restored.appHash, expected)) {
      throw new SyncError(
        'AppHashMismatch',
        `snapshot ${h} restores to appHash ${toHex(restored.appHash)}, the certified header of ${h + 1} says ${toHex(expected)}`,
      );
    }
    // On the genesis path the sets after h are the genesis set's: a jailing at
    // h or h − 1 (out of the sets from h + 1 or h + 2 on) would pass the
    // certificate check above and stall the replica at h + 2.
    const jailings = restored.validatorUpdates ?? [];
    if (chain === null && jailings.length > 0) {
      throw new SyncError(
        'UntrustedValidators',
        `snapshot ${h}: the validator set changed at height ${jailings[0]!.height}; state sync needs a trusted block`,
      );
    }
    if (chain !== null) {
      trusted = verifyTrustedChain(
        this.options.consensusGenesis,
        this.options.verifier,
        chain.map((b) => b.committed),
        restored.validatorUpdates ?? [],
      );
    }
    this.log.info({ height: h, appHash: toHex(restored.appHash) }, 'state sync: snapshot verified');
    return {
      height: h,
      snapshot,
      blockBytes: at.bytes,
      chainState: trusted!.chainState,
      appHash: trusted!.appHash,
      providers: peers.slice(),
    };
  }

  private async fetchSnapshot(offer: SnapshotOffer, peers: readonly PeerId[]): Promise<Uint8Array> {
    // Grows with the chunks that check out, not to the size offered: a liar
    // offering SNAPSHOT_BYTES_MAX and serving one good chunk costs that chunk.
    // Filled in place (chunks then one concatenated copy would hold it twice).
    const snapshot = new GrowingBytes(
      offer.sizeBytes,
      `snapshot ${offer.height}`,
      this.options.reserveSnapshot,
    );
    const startMs = this.clock.nowMs();
    const budgetMs = offerBudgetMs(offer.sizeBytes);
    // Time spent on busy answers is not the provider's slowness: it moves the
    // budget's end, up to SYNC_BUSY_WAIT_MS_MAX (a liar answering busy costs that).
    const busyAtStartMs = this.stats.busyWaitMs;
    const busyMs = (): number => this.stats.busyWaitMs - busyAtStartMs;
    const budgetEndMs = (): number =>
      startMs + budgetMs + Math.min(SYNC_BUSY_WAIT_MS_MAX, busyMs());
    const tooSlow = (index: number): SyncError => {
      const of = `snapshot ${offer.height} (${offer.sizeBytes} bytes): ${index} of ${offer.chunkHashes.length} chunks in ${this.clock.nowMs() - startMs} ms`;
      const rate = `${SYNC_TRANSFER_BYTES_PER_S_MIN} bytes/s, SYNC_TRANSFER_BYTES_PER_S_MIN`;
      // Most of the time went on busy answers: its providers are overloaded (or stall), not slow.
      if (busyMs() > SYNC_BUSY_WAIT_MS_MAX) {
        return new SyncError(
          'SyncBusy',
          `${of}, ${busyMs()} ms of them on busy answers: over its budget of ${budgetMs} ms (${rate}) and SYNC_BUSY_WAIT_MS_MAX (${SYNC_BUSY_WAIT_MS_MAX} ms) of busy answers; its providers are overloaded (many nodes syncing at once) or stalling: abandoned for the next offer`,
        );
      }
      return new SyncError(
        'SnapshotTooSlow',
        `${of} (${busyMs()} ms of them on busy answers), over its budget of ${budgetMs} ms (${rate}): abandoned for the next offer`,
      );
    };
    for (let index = 0; index < offer.chunkHashes.length; index++) {
      if (this.clock.nowMs() >= budgetEndMs()) throw tooSlow(index);
      const expected = offer.chunkHashes[index]!;
      const sizeBytes = chunkBytesOf(offer.sizeBytes, index);
      let chunk: Uint8Array;
      try {
        chunk = await this.ask(
          peers,
          chunkKey(offer.height, index),
          (m) =>
            m.kind === 'chunk' &&
            m.bytes.length === sizeBytes &&
            bytesEqual(sha256(m.bytes), expected)
              ? m.bytes
              : null,
          () => Math.min(budgetEndMs(), this.deadlineMs),
          // Busy waits move the end only up to SYNC_BUSY_WAIT_MS_MAX of busy
          // time: past that, one would sleep beyond it for nothing.
          () => Math.min(startMs + budgetMs + SYNC_BUSY_WAIT_MS_MAX, this.deadlineMs),
        );
      } catch (error) {
        if (
          error instanceof SyncError &&
          error.code !== 'SyncBusy' &&
          this.clock.nowMs() >= budgetEndMs()
        ) {
          throw tooSlow(index);
        }
        throw error;
      }
      snapshot.append(chunk);
      this.stats.chunksFetched++;
    }
    const bytes = snapshot.whole();
    if (!bytesEqual(sha256(bytes), offer.snapshotHash)) {
      throw new SyncError('SnapshotHashMismatch', `snapshot ${offer.height} fails its hash`);
    }
    return bytes;
  }

  /**
   * The certified blocks of h and h+1, checked against the genesis set
   * (verifyBlocks); an answer that fails a check is asked of another peer.
   * h+1 first: it names the hash block h must have.
   */
  private async fetchGenesisPair(
    peers: readonly PeerId[],
    h: number,
  ): Promise<{ at: BlockAnswer; trusted: TrustedState }> {
    const { consensusGenesis: genesis, verifier } = this.options;
    const setAt = genesisSetAfter(genesis, h - 1);
    const setNext = setAt.advanced();
    const next = await this.askBlock(peers, h + 1, (b) => {
      const block = b.committed.block;
      if (block.header.chainId !== genesis.chainId) return blocksInvalid(h + 1, 'another chain');
      if (!bytesEqual(block.header.validatorsHash, setNext.hash)) {
        return new SyncError(
          'UntrustedValidators',
          `the validator set deciding ${h + 1} is not the genesis set: state sync trusts only the genesis validators`,
        );
      }
      if (!certified(block, b.committed.commit, setNext, verifier)) {
        return blocksInvalid(h + 1, 'its certificate is not 2/3+ of the trusted validators');
      }
      return bodyRefusal(b.committed.block);
    });
    const previous = next.committed.block.header.previousBlockHash;
    const at = await this.askBlock(peers, h, (b) => {
      if (!bytesEqual(blockHashOf(b.committed.block), previous)) {
        return blocksInvalid(h, `not the block ${h + 1} extends`);
      }
      return bodyRefusal(b.committed.block);
    });
    const stored = withChainCommit(at, next);
    return {
      at: stored,
      trusted: verifyBlocks(genesis, verifier, stored.committed, next.committed),
    };
  }

  /**
   * The blocks from the trusted height T down to h, each the one its successor
   * names by hash, T the one with the trusted hash, each with the body its
   * header hashes (a peer's other answer is asked of another peer). Returns
   * those of h, h+1 and h+2 that are at or below T, in height order. Throws
   * TrustedHashMismatch when every answer at T was a block with another hash.
   *
   * What a walk bound stays bound for the next offer (lower or equal, as
   * offers are tried highest first): the hash of every height reached, at
   * most SYNC_TRUST_BLOCKS_MAX + 1 of them, and the last
   * SYNC_TRUST_CACHED_BLOCKS_MAX blocks fetched. A second offer continues the
   * walk from where the first stopped.
   */
  private async fetchTrustedChain(
    peers: readonly PeerId[],
    h: number,
    trustedBlock: TrustedBlock,
  ): Promise<BlockAnswer[]> {
    const top = trustedBlock.height;
    assert(h < top && top - h <= SYNC_TRUST_BLOCKS_MAX, 'usable() kept this offer');
    if (this.trustedHashes.size === 0) this.trustedHashes.set(top, trustedBlock.hash);
    // The lowest height whose hash is bound; the walk goes on from there.
    let low = top - this.trustedHashes.size + 1;
    while (low > h) {
      await this.trustedBlockAt(peers, low, trustedBlock);
      low--;
    }
    const kept: BlockAnswer[] = [];
    for (let k = h; k <= Math.min(top, h + 2); k++) {
      kept.push(await this.trustedBlockAt(peers, k, trustedBlock));
    }
    return kept;
  }

  /** Block k (its hash bound already), from the cache or a peer; binds the hash of k − 1. */
  private async trustedBlockAt(
    peers: readonly PeerId[],
    k: number,
    trustedBlock: TrustedBlock,
  ): Promise<BlockAnswer> {
    const expected = this.trustedHashes.get(k);
    assert(expected !== undefined, 'the walk binds each hash before its block is asked');
    let answer = this.trustedBlocks.get(k);
    if (answer === undefined) {
      answer = await this.askBlock(peers, k, (b) => {
        const hash = blockHashOf(b.committed.block);
        if (bytesEqual(hash, expected)) return bodyRefusal(b.committed.block);
        if (k === trustedBlock.height) {
          return new SyncError(
            'TrustedHashMismatch',
            `peers answer block ${k} with hash ${toHex(hash)}, not the trusted ${toHex(trustedBlock.hash)}`,
          );
        }
        return blocksInvalid(k, `not the block ${k + 1} names as its previous`);
      });
      this.trustedBlocks.set(k, answer);
      // Walks go down and offers are tried highest first: the highest block is the one not needed again.
      if (this.trustedBlocks.size > SYNC_TRUST_CACHED_BLOCKS_MAX) {
        this.trustedBlocks.delete(Math.max(...this.trustedBlocks.keys()));
      }
    }
    if (k > 1 && !this.trustedHashes.has(k - 1)) {
      this.trustedHashes.set(k - 1, answer.committed.block.header.previousBlockHash);
    }
    return answer;
  }

  /**
   * Asks for block `height` until an answer decodes and `check` returns null.
   * If none does, throws the last refusal `check` gave (SyncUnavailable if
   * no answer got that far).
   */
  private async askBlock(
    peers: readonly PeerId[],
    height: number,
    check: (answer: BlockAnswer) => SyncError | null,
  ): Promise<BlockAnswer> {
    let refusal: SyncError | null = null;
    try {
      return await this.ask(peers, blockKey(height), (m) => {
        const answer = decodeBlock(m, height);
        if (answer === null) return null;
        const why = check(answer);
        if (why === null) return answer;
        refusal = why;
        return null;
      });
    } catch (error) {
      if (!(error instanceof SyncError) || error.code === 'SyncBusy' || refusal === null) {
        throw error;
      }
      throw refusal as SyncError;
    }
  }

  /**
   * Asks `key` of the providers in turn until `accept` takes an answer; each
   * wait is bounded, and so are the attempts. `deadlineMs` is read at each
   * try (an offer's budget moves with the time spent on busy answers);
   * `latestEndMs` is the furthest waiting out busy answers can move it to.
   */
  private async ask<T>(
    peers: readonly PeerId[],
    key: string,
    accept: (message: SyncMessage) => T | null,
    deadlineMs: () => number = () => this.deadlineMs,
    latestEndMs: () => number = deadlineMs,
  ): Promise<T> {
    const turn = this.turn++;
    const responseTimeoutMs = this.options.responseTimeoutMs ?? SYNC_RESPONSE_TIMEOUT_MS;
    // Peers that gave no good answer for this key are not asked again while
    // another has not been: a peer answering `pruned` to everything costs no
    // time, so by cost alone it would be picked for every attempt.
    const failed = new Set<PeerId>();
    // Peers that answered `pruned` (they hold it no longer, or claim so) are
    // not asked for it again, and their answers use no attempt: otherwise
    // SYNC_ATTEMPTS_MAX peers answering `pruned` at once, honest or not,
    // would refuse an offer that another peer could serve.
    const pruned = new Set<PeerId>();
    const skipped = (p: PeerId): boolean => failed.has(p) || pruned.has(p);
    const busyUntilMs = this.busyUntilMs;
    // Time this request has spent on busy answers: SYNC_BUSY_WAIT_MS_MAX at most.
    const waited = { ms: 0 };
    for (let asked = 0, attempt = 0; attempt < SYNC_ATTEMPTS_MAX; asked++) {
      if (this.clock.nowMs() >= deadlineMs()) break;
      if (peers.every((p) => pruned.has(p))) break;
      if (peers.every(skipped)) failed.clear();
      const waiting = (p: PeerId): boolean => (busyUntilMs.get(p) ?? 0) > this.clock.nowMs();
      if (peers.every((p) => skipped(p) || waiting(p))) {
        if (!(await this.waitOutBusy(peers, skipped, waited, key, latestEndMs()))) break;
        // The wait moves an offer's end only up to SYNC_BUSY_WAIT_MS_MAX of
        // busy time: past that it may have run out the offer meanwhile, and a
        // request sent now would go out with no time left to answer.
        if (this.clock.nowMs() >= deadlineMs()) break;
      }
      const peer = this.pick(peers, turn + asked, (p) => skipped(p) || waiting(p));
      const startMs = this.clock.nowMs();
      const timeoutMs = Math.min(responseTimeoutMs, deadlineMs() - startMs);
      const answer = await this.request(peer, key, timeoutMs);
      const elapsedMs = this.clock.nowMs() - startMs;
      // Unanswered within less than a response timeout: the deadline ended the
      // wait, not the peer, so it is neither charged nor counted a try (a
      // request sent a millisecond before the end would cost its peer a whole
      // timeout, and its place for every later offer).
      if (answer === null && timeoutMs < responseTimeoutMs) break;
      // Busy: no attempt used and no time charged against the offer (up to
      // SYNC_BUSY_WAIT_MS_MAX); its whole round trip is charged to its peer,
      // so peers that serve are asked first: a peer answering busy after
      // nearly ANSWER_MS_MAX, again and again, would otherwise keep its place
      // and add that time to every chunk another serves.
      if (answer?.kind === 'busy') {
        this.stats.busyAnswers++;
        busyUntilMs.set(peer, this.clock.nowMs() + answer.retryAfterMs);
        this.charge(peer, elapsedMs);
        this.spendBusy(waited, elapsedMs, key);
        this.log.debug(
          { peer, what: key, retryAfterMs: answer.retryAfterMs },
          'state sync: peer busy, asking again after its delay',
        );
        continue;
      }
      const accepted = answer === null ? null : accept(answer);
      if (accepted !== null) {
        // Correct but slow: the others offering it are asked first, so one slow provider does not set the pace.
        if (elapsedMs > ANSWER_MS_MAX) {
          this.stats.slowAnswers++;
          this.charge(peer, elapsedMs - ANSWER_MS_MAX);
        }
        return accepted;
      }
      // A pruned answer costs no attempt (silence and bad answers do); one
      // slower than a good answer may be costs its provider the time over, as
      // a slow good answer does, or a peer answering `pruned` just before the
      // response timeout would be asked in turn for every block of a walk.
      if (answer?.kind === 'pruned') {
        this.stats.prunedAnswers++;
        pruned.add(peer);
        if (elapsedMs > ANSWER_MS_MAX) this.charge(peer, elapsedMs - ANSWER_MS_MAX);
      } else {
        failed.add(peer);
        this.charge(peer, responseTimeoutMs);
        attempt++;
      }
      this.stats.retries++;
      this.log.warn({ peer, what: key, attempt }, 'state sync: no good answer, asking again');
    }
    const prunedBy =
      pruned.size === 0 ? '' : ` (${pruned.size} of ${peers.length} peers pruned it)`;
    throw new SyncError('SyncUnavailable', `no peer gave a good answer for ${key}${prunedBy}`);
  }

  /**
   * Every provider not skipped answered `busy` and is still within its delay:
   * waits until the first may be asked again, and returns true; false if
   * `endMs` came first (the sync's deadline, or the latest an offer's end can
   * move to: the wait moves its end, but only up to SYNC_BUSY_WAIT_MS_MAX of
   * busy time, and a wait past it would only end in its refusal). Throws
   * SyncBusy if the wait would take the request's busy time (`waited`) over
   * SYNC_BUSY_WAIT_MS_MAX.
   */
  private async waitOutBusy(
    peers: readonly PeerId[],
    skipped: (peer: PeerId) => boolean,
    waited: { ms: number },
    key: string,
    endMs: number,
  ): Promise<boolean> {
    const nowMs = this.clock.nowMs();
    const readyMs = Math.min(
      ...peers.filter((p) => !skipped(p)).map((p) => this.busyUntilMs.get(p) ?? nowMs),
    );
    const untilMs = Math.min(readyMs, endMs);
    const waitMs = Math.max(0, untilMs - nowMs);
    // Waiting would only end in the same refusal.
    if (waited.ms + waitMs > SYNC_BUSY_WAIT_MS_MAX) throw tooBusy(key, waited.ms + waitMs);
    await this.sleep(waitMs);
    // Those waited for are ready, even if a timer fired a millisecond early.
    for (const [p, atMs] of this.busyUntilMs) if (atMs <= untilMs) this.busyUntilMs.delete(p);
    this.spendBusy(waited, this.clock.nowMs() - nowMs, key);
    return readyMs <= endMs;
  }

  /** Counts `ms` spent on busy answers for one request; throws SyncBusy once past SYNC_BUSY_WAIT_MS_MAX. */
  private spendBusy(waited: { ms: number }, ms: number, key: string): void {
    waited.ms += ms;
    this.stats.busyWaitMs += ms;
    if (waited.ms > SYNC_BUSY_WAIT_MS_MAX) throw tooBusy(key, waited.ms);
  }

  private charge(peer: PeerId, ms: number): void {
    this.costMs.set(peer, (this.costMs.get(peer) ?? 0) + ms);
  }

  /**
   * The provider to ask: of those that have cost the least time so far
   * (silences, bad answers, slow answers), the first from `start` in turn. A
   * peer that offers what others offer and then stalls or trickles each
   * request would otherwise cost up to a response timeout on every other
   * chunk, enough to run out the deadline.
   */
  private pick(peers: readonly PeerId[], start: number, skip: (peer: PeerId) => boolean): PeerId {
    let best: PeerId | undefined;
    let bestCostMs = Infinity;
    for (let i = 0; i < peers.length && bestCostMs > 0; i++) {
      const peer = peers[(start + i) % peers.length]!;
      if (skip(peer)) continue;
      const costMs = this.costMs.get(peer) ?? 0;
      if (costMs < bestCostMs) {
        best = peer;
        bestCostMs = costMs;
      }
    }
    assert(best !== undefined, 'a peer not skipped');
    return best;
  }

  private request(peer: PeerId, key: string, timeoutMs: number): Promise<SyncMessage | null> {
    return new Promise((resolve) => {
      const cancel = this.clock.after(timeoutMs, () => {
        if (this.waiters.get(key)?.resolve === done) this.waiters.delete(key);
        resolve(null);
      });
      const done: Waiter = (message) => {
        cancel();
        resolve(message);
      };
      this.waiters.set(key, { peer, resolve: done });
      this.options.network.send(peer, frame(CHANNEL.sync, encodeSyncMessage(requestFor(key))));
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.clock.after(ms, resolve));
  }
}

/** An ArrayBuffer made with a maxByteLength (ES2024; the project's TypeScript lib is ES2022). */
export interface ResizableBuffer extends ArrayBuffer {
  readonly maxByteLength: number;
  resize(byteLength: number): void;
}

/** Makes an empty buffer that may grow to `maxBytes`; throws RangeError when it cannot. */
export type ReserveBytes = (maxBytes: number) => ResizableBuffer;

const Resizable = ArrayBuffer as unknown as new (
  byteLength: number,
  options: { maxByteLength: number },
) => ResizableBuffer;

/**
 * V8 reserves the address space of maxByteLength and commits pages only as
 * resize() reaches them (on Linux, measured: the reservation leaves the
 * resident size and the committed memory as they were), and grows the buffer
 * in place, with no copy.
 */
export const reserveBytes: ReserveBytes = (maxBytes) =>
  new Resizable(0, { maxByteLength: maxBytes });

/**
 * The bytes of a snapshot being fetched, chunk after chunk: held in one
 * resizable buffer that grows in place to the end of each chunk appended, up
 * to the size offered. So it holds the bytes appended and no more, a
 * snapshot fetched whole ends in that one buffer at exactly its size, and no
 * growth copies what came before (the peak is the snapshot plus the chunk
 * being appended). The buffer reserves the size offered as address space
 * only: a liar offering SNAPSHOT_BYTES_MAX and serving one good chunk costs
 * memory for that chunk. Memory or address space running out (a RangeError
 * from V8) is a SyncError (SnapshotOutOfMemory): the offer is refused and
 * the next one tried.
 */
export class GrowingBytes {
  private readonly buffer: ResizableBuffer;
  private length = 0;

  constructor(
    private readonly sizeBytes: number,
    /** Names the snapshot in errors (`snapshot 12`). */
    private readonly what = 'snapshot',
    reserve: ReserveBytes = reserveBytes,
  ) {
    try {
      this.buffer = reserve(sizeBytes);
    } catch (error) {
      throw this.outOfMemory(error, `reserving address space for its ${sizeBytes} bytes`);
    }
  }

  /** Bytes held for it now (its capacity). */
  get capacityBytes(): number {
    return this.buffer.byteLength;
  }

  append(chunk: Uint8Array): void {
    const end = this.length + chunk.length;
    assert(end <= this.sizeBytes, 'the chunks are of the size offered');
    try {
      this.buffer.resize(end);
    } catch (error) {
      throw this.outOfMemory(error, `growing to ${end} of its ${this.sizeBytes} bytes`);
    }
    new Uint8Array(this.buffer, this.length, chunk.length).set(chunk);
    this.length = end;
  }

  /** All the bytes of the size offered, once every chunk is appended. */
  whole(): Uint8Array {
    assert(this.length === this.sizeBytes, 'every chunk appended');
    return new Uint8Array(this.buffer, 0, this.sizeBytes);
  }

  /** A RangeError from V8's allocation as a SyncError; anything else as it is. */
  private outOfMemory(error: unknown, doing: string): unknown {
    if (!(error instanceof RangeError)) return error;
    return new SyncError(
      'SnapshotOutOfMemory',
      `${this.what}: out of memory ${doing} (${error.message}); a node syncing needs free memory for the whole snapshot, up to SNAPSHOT_BYTES_MAX (${SNAPSHOT_BYTES_MAX} bytes)`,
    );
  }
}

/** Refusals that no other peer's answers can change: the offer's bytes themselves are wrong, or too many. */
const CONDEMNS_OFFER: ReadonlySet<SyncErrorCode> = new Set<SyncErrorCode>([
  'SnapshotHashMismatch',
  'SnapshotInvalid',
  'AppHashMismatch',
  // Its size does not fit: fetching it again would run out where it did.
  'SnapshotOutOfMemory',
]);

/** Peers refused for their versions that a NoSnapshot or a wait's warning names; the rest are counted. */
const SYNC_REFUSALS_NAMED = 4;
/** Why no peer connects, most often, to a node just added to a network. */
const NO_PEER_HINT =
  "a peer accepts only the keys in its config.json's peers, read at its start: add this node's key to the validators' peers (zomma init --add-full-node does) and restart them";

/** A good answer slower than this (a full chunk at the minimum rate) counts against its provider. */
const ANSWER_MS_MAX = Math.ceil((SYNC_CHUNK_BYTES * 1000) / SYNC_TRANSFER_BYTES_PER_S_MIN);

/** The time an offer's chunks get: SYNC_OFFER_GRACE_MS plus its size at SYNC_TRANSFER_BYTES_PER_S_MIN. */
export function offerBudgetMs(sizeBytes: number): number {
  return SYNC_OFFER_GRACE_MS + Math.ceil((sizeBytes * 1000) / SYNC_TRANSFER_BYTES_PER_S_MIN);
}

/**
 * The error a sync that verified no offer ends with, saying why: the one
 * refusal, or each offer's, and whether the deadline cut it short (offers
 * left untried, or an offer refused because the deadline came while it was
 * fetched: its own code, SyncUnavailable, would not say so).
 */
function failureOf(
  refusals: readonly { height: number; error: SyncError }[],
  candidates: number,
  timeoutMs: number,
  cutShort: boolean,
): SyncError {
  const last = refusals[refusals.length - 1];
  const each = refusals.map((r) => `${r.height}: ${r.error.code}`).join(', ');
  if (refusals.length < candidates || (cutShort && last !== undefined)) {
    return new SyncError(
      'SyncFailed',
      `the state sync deadline of ${timeoutMs} ms passed with ${candidates - refusals.length} of ${candidates} offers untried (refused: ${each}); last: ${last?.error.message ?? 'none'}`,
    );
  }
  if (last === undefined) return new SyncError('SyncFailed', 'no snapshot offer to try');
  if (refusals.length === 1) return last.error;
  return new SyncError(
    last.error.code,
    `every offer was refused (${each}); last: ${last.error.message}`,
  );
}

interface BlockAnswer {
  readonly committed: CommittedBlock;
  readonly bytes: Uint8Array;
}

/** A block answer of `height` that decodes, or null. */
function decodeBlock(m: SyncMessage, height: number): BlockAnswer | null {
  if (m.kind !== 'block') return null;
  try {
    const committed = decode(committedBlockCodec, m.bytes, 'block');
    if (committed.block.header.height !== height) return null;
    return { committed, bytes: m.bytes };
  } catch {
    return null;
  }
}

/**
 * Block h with the certificate block h+1 carries, which h+1's header binds by
 * lastCommitHash, instead of the one the answering peer paired with it: no
 * hash covers that one, and block h is stored and served on with it (a bad
 * one would also refuse an honest offer). Throws BlocksInvalid if h+1 carries
 * none (it always does above height 1).
 */
function withChainCommit(at: BlockAnswer, next: BlockAnswer): BlockAnswer {
  const commit = next.committed.block.lastCommit;
  if (commit === null) {
    throw blocksInvalid(next.committed.block.header.height, 'it carries no last commit');
  }
  const committed: CommittedBlock = { block: at.committed.block, commit };
  return { committed, bytes: encode(committedBlockCodec, committed) };
}

function blocksInvalid(height: number, why: string): SyncError {
  return new SyncError('BlocksInvalid', `block ${height}: ${why}`);
}

/** BlockBodyMismatch unless the block's transactions, evidence and last commit are the ones its header hashes. */
function bodyRefusal(block: Block): SyncError | null {
  if (bodyFactsOf(block).matchesHeader) return null;
  return new SyncError(
    'BlockBodyMismatch',
    `block ${block.header.height}: its transactions, evidence or last commit are not the ones its header hashes`,
  );
}

function chunkKey(height: number, index: number): string {
  return `chunk:${height}:${index}`;
}

function blockKey(height: number): string {
  return `block:${height}`;
}

function tooBusy(key: string, busyMs: number): SyncError {
  return new SyncError(
    'SyncBusy',
    `the peers asked for ${key} answered busy for ${busyMs} ms, over SYNC_BUSY_WAIT_MS_MAX (${SYNC_BUSY_WAIT_MS_MAX} ms): they are overloaded (many nodes syncing at once) or stalling`,
  );
}

/** The key of the request `message` answers (chunk, block, pruned, busy); null for others. */
function answerKeyOf(message: SyncMessage): string | null {
  switch (message.kind) {
    case 'chunk':
      return chunkKey(message.height, message.index);
    case 'block':
    case 'pruned':
      return blockKey(message.height);
    case 'busy': {
      const request = message.request;
      return request.kind === 'chunkRequest'
        ? chunkKey(request.height, request.index)
        : blockKey(request.height);
    }
    default:
      return null;
  }
}

function requestFor(key: string): SyncMessage {
  const parts = key.split(':');
  const height = Number(parts[1]);
  if (parts[0] === 'chunk') return { kind: 'chunkRequest', height, index: Number(parts[2]) };
  return { kind: 'blockRequest', height };
}

/**
 * What tells offers apart: every field. An offer is fetched as its first
 * maker gave it, so a peer echoing an honest offer with one field changed
 * (a size a byte short, the chunk count and hashes the same) must make
 * another offer, not join the honest one and have it refused.
 */
function offerKeyOf(offer: SnapshotOffer): string {
  const hashes = toHex(sha256(...offer.chunkHashes));
  return `${offer.height}:${offer.format}:${offer.sizeBytes}:${toHex(offer.snapshotHash)}:${hashes}`;
}

/**
 * The offers to try, in order. Each peer's offers rank by height, its highest
 * first; an offer takes the best rank any peer offering it gives it. Only the
 * first SYNC_CANDIDATES_PER_PEER_MAX ranks are kept, and every peer's best
 * comes before anyone's second (highest first within a rank, then the one
 * more peers vouch for). So a peer offering many heights, true or not, costs
 * at most SYNC_CANDIDATES_PER_PEER_MAX tries, and the best offer of every
 * peer that answered is tried, whatever the others offer: the tries are at
 * most SYNC_CANDIDATES_MAX, or one per answering peer where more answered.
 *
 * Of those, an offer more than half of the peers that offered make is tried
 * first (highest first): if more than half of them are honest, at least one
 * honest peer makes it, so it is genuine, and no liar's offer costs time
 * before it. Without such a majority the order above stands, and a lying
 * peer costs at most one offer's time budget (offerBudgetMs) before every
 * peer's best is tried. O(offers log offers).
 */
export function candidatesOf(answers: readonly PeerOffers[]): Candidate[] {
  const byKey = new Map<string, Candidate & { rank: number }>();
  for (const { peer, offers } of answers) {
    const seen = new Set<string>();
    const ranked = offers.slice().sort((a, b) => b.height - a.height);
    for (const offer of ranked) {
      const key = offerKeyOf(offer);
      // A peer repeating one offer in its list neither adds a rank nor counts twice.
      if (seen.has(key)) continue;
      const rank = seen.size;
      seen.add(key);
      const known = byKey.get(key);
      if (known === undefined) byKey.set(key, { offer, peers: [peer], rank });
      else {
        known.peers.push(peer);
        known.rank = Math.min(known.rank, rank);
      }
    }
  }
  const ordered = [...byKey.values()]
    .filter((c) => c.rank < SYNC_CANDIDATES_PER_PEER_MAX)
    .sort(
      (a, b) =>
        a.rank - b.rank || b.offer.height - a.offer.height || b.peers.length - a.peers.length,
    );
  const best = ordered.filter((c) => c.rank === 0).length;
  const offering = answers.filter((a) => a.offers.length > 0).length;
  const majority = (c: Candidate): boolean => 2 * c.peers.length > offering;
  const kept = ordered.slice(0, Math.max(best, SYNC_CANDIDATES_MAX));
  return [...kept.filter(majority), ...kept.filter((c) => !majority(c))].map(
    ({ offer, peers }) => ({ offer, peers }),
  );
}

/** The genesis set with priorities advanced `steps` times (one step per height). */
export function genesisSetAfter(genesis: Genesis, steps: number): ValidatorSet {
  let set = ValidatorSet.fromUpdates(genesis.validators);
  for (let i = 0; i < steps; i++) set = set.advanced();
  return set;
}

export interface TrustedState {
  /** The state after the snapshot's height, from the certified header of the next. */
  readonly appHash: Uint8Array;
  readonly chainState: ChainState;
}

/**
 * Checks the committed blocks of h and h+1 against the trusted (genesis)
 * validator set and builds the consensus state after h from them. Throws
 * SyncError (BlocksInvalid, UntrustedValidators).
 */
export function verifyBlocks(
  genesis: Genesis,
  verifier: Verifier,
  at: CommittedBlock,
  next: CommittedBlock,
): TrustedState {
  const h = at.block.header.height;
  const invalid = (why: string): SyncError =>
    new SyncError('BlocksInvalid', `blocks ${h}, ${h + 1}: ${why}`);
  const header = next.block.header;
  if (h < 1 || header.height !== h + 1) throw invalid('not consecutive heights');
  if (header.chainId !== genesis.chainId || at.block.header.chainId !== genesis.chainId) {
    throw invalid('another chain');
  }
  checkBodies([at, next]);
  const setAt = genesisSetAfter(genesis, h - 1);
  const setNext = setAt.advanced();
  if (!bytesEqual(header.validatorsHash, setNext.hash)) {
    throw new SyncError(
      'UntrustedValidators',
      `the validator set deciding ${h + 1} is not the genesis set: state sync trusts only the genesis validators`,
    );
  }
  if (!certified(next.block, next.commit, setNext, verifier)) {
    throw invalid(`the certificate of ${h + 1} is not 2/3+ of the trusted validators`);
  }
  if (!bytesEqual(blockHashOf(at.block), header.previousBlockHash)) {
    throw invalid(`block ${h} is not the one ${h + 1} extends`);
  }
  if (!certified(at.block, at.commit, setAt, verifier)) {
    throw invalid(`the certificate of ${h} is not 2/3+ of the trusted validators`);
  }
  const lastCommit = lastCommitOf(next, h, invalid);
  const chainState: ChainState = {
    chainId: genesis.chainId,
    height: h,
    lastBlockHash: header.previousBlockHash,
    lastBlockTimeMs: at.block.header.timeMs,
    lastCommit,
    appHash: header.previousAppHash,
    validators: setNext.toState(),
    nextValidators: setNext.advanced().toState(),
    // The set has not changed since height 1 (checked above): one history entry, as the replica keeps it.
    history: [{ height: 1, set: ValidatorSet.fromUpdates(genesis.validators).toState() }],
    committedEvidence: [],
    committedEvidenceFrom: h + 1,
  };
  return { appHash: header.previousAppHash, chainState };
}

/**
 * Each block's body must be the one its header hashes: block h is stored and
 * served on, and a header bound by hash says nothing of a body paired with it.
 */
function checkBodies(blocks: readonly CommittedBlock[]): void {
  for (const b of blocks) {
    const refusal = bodyRefusal(b.block);
    if (refusal !== null) throw refusal;
  }
}

/** The certificate of h that block h+1 carries, checked against its header. */
function lastCommitOf(
  next: CommittedBlock,
  h: number,
  invalid: (why: string) => SyncError,
): CommitCertificate {
  const header = next.block.header;
  const lastCommit = next.block.lastCommit;
  if (lastCommit === null || !bytesEqual(commitHashOf(lastCommit), header.lastCommitHash)) {
    throw invalid(`the last commit in ${h + 1} does not match its header`);
  }
  if (lastCommit.height !== h || !bytesEqual(lastCommit.blockHash, header.previousBlockHash)) {
    throw invalid(`the last commit in ${h + 1} is not for block ${h}`);
  }
  return lastCommit;
}

/**
 * The consensus state after h, from the blocks of h, h+1 and (if at or below
 * the trusted height) h+2, already bound to the trusted block by their hashes
 * (fetchTrustedChain), and the validator updates of the snapshot whose appHash
 * h+1 carries. The sets are recomputed from genesis and refused
 * (UntrustedValidators) unless each header names the recomputed set's hash and
 * the proposer its priorities pick: the header does not hash the priorities,
 * and a wrong priority would make the node refuse every honest proposal. Block
 * h's certificate, stored and served on, is checked against its set. Throws
 * SyncError (BlocksInvalid, UntrustedValidators).
 */
export function verifyTrustedChain(
  genesis: Genesis,
  verifier: Verifier,
  blocks: readonly CommittedBlock[],
  updates: readonly HeightUpdates[],
): TrustedState {
  if (blocks.length < 2 || blocks.length > 3) {
    throw new SyncError(
      'BlocksInvalid',
      `${blocks.length} blocks: h, h+1 and maybe h+2 are needed`,
    );
  }
  const at = blocks[0]!;
  const next = blocks[1]!;
  const h = at.block.header.height;
  const invalid = (why: string): SyncError =>
    new SyncError('BlocksInvalid', `blocks ${h}, ${h + 1}: ${why}`);
  if (h < 1) throw invalid('a snapshot is of height 1 or above');
  blocks.forEach((b, i) => {
    if (b.block.header.height !== h + i) throw invalid('not consecutive heights');
    if (b.block.header.chainId !== genesis.chainId) throw invalid('another chain');
  });
  checkBodies(blocks);
  // The snapshot decoded, but its jail heights are still read from outside: checked, not asserted.
  updates.forEach((u, i) => {
    if (!Number.isSafeInteger(u.height) || u.height < 1 || u.height > h) {
      throw new SyncError(
        'SnapshotInvalid',
        `a validator update at height ${u.height} in state ${h}`,
      );
    }
    if (i > 0 && u.height <= updates[i - 1]!.height) {
      throw new SyncError('SnapshotInvalid', 'validator updates out of height order');
    }
  });
  let sets: ChainSets;
  try {
    sets = chainSetsAfter(genesis, h, updates);
  } catch (error) {
    if (!(error instanceof ValidatorSetError)) throw error;
    throw new SyncError(
      'UntrustedValidators',
      `the snapshot's validator updates do not apply to the genesis set: ${error.message}`,
    );
  }
  blocks.forEach((b, i) => {
    const header = b.block.header;
    const set = sets.deciding[i]!;
    if (!bytesEqual(header.validatorsHash, set.hash)) {
      throw new SyncError(
        'UntrustedValidators',
        `the validator set the snapshot implies for ${header.height} is not the one its header names`,
      );
    }
    const proposer = set.validators[set.proposer(header.round)]!;
    if (!bytesEqual(header.proposerAddress, proposer.address)) {
      throw new SyncError(
        'UntrustedValidators',
        `the proposer priorities the snapshot implies for ${header.height} do not pick its proposer`,
      );
    }
  });
  if (!certified(at.block, at.commit, sets.deciding[0], verifier)) {
    throw invalid(`the certificate of ${h} is not 2/3+ of its validators`);
  }
  const lastCommit = lastCommitOf(next, h, invalid);
  const header = next.block.header;
  const chainState: ChainState = {
    chainId: genesis.chainId,
    height: h,
    lastBlockHash: header.previousBlockHash,
    lastBlockTimeMs: at.block.header.timeMs,
    lastCommit,
    appHash: header.previousAppHash,
    validators: sets.deciding[1].toState(),
    nextValidators: sets.deciding[2].toState(),
    history: sets.history,
    committedEvidence: [],
    committedEvidenceFrom: h + 1,
  };
  return { appHash: header.previousAppHash, chainState };
}

/**
 * Whether state sync is to run: the storage holds no WAL record and no block,
 * nothing a restart resumes from. A snapshot alone is what a sync cut short
 * before its checkpoint leaves (saveSynced): it is replaced, or lies unused
 * until pruned. Blocks without any WAL record are what an older version's
 * sync cut short left (it saved block h before the checkpoint): refused with
 * SyncIncomplete, which says what to do, rather than started from genesis.
 */
export function isEmptyStorage(storage: Storage): boolean {
  if (storage.wal.nextIndex() > 0) return false;
  const last = storage.blocks.lastHeight();
  if (last === 0) return true;
  throw new SyncError(
    'SyncIncomplete',
    `the data directory holds block ${last} but no WAL checkpoint: a state sync was interrupted while writing; empty the data directory and start again`,
  );
}

/**
 * Writes a verified state: the snapshot, the synced WAL checkpoint that makes
 * the node resume from it, then block h. The checkpoint is the commit point:
 * cut short before it, the storage holds at most a snapshot and the node
 * syncs again (isEmptyStorage); after it, a node restarts from the snapshot
 * at the checkpoint's height and replays no block, so block h missing (cut
 * short before it) only means it is not served to others.
 */
export function saveSynced(storage: Storage, synced: SyncedState): void {
  // Left by a sync cut short before its checkpoint (the storage is empty
  // otherwise): one above this height would count among the snapshots kept
  // and could get this one pruned before the node's own replace it.
  storage.snapshots.clear();
  storage.snapshots.save(synced.height, synced.snapshot);
  const record = encode(walRecordCodec, { kind: 'checkpoint', state: synced.chainState });
  storage.wal.append(record, true);
  storage.blocks.save(synced.height, synced.blockBytes);
}
