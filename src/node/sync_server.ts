// The serving side of state sync: every node answers offer, chunk and block
// requests from its own snapshot and block stores. Each peer has a token bucket
// (a request costs a token per SYNC_CHUNK_BYTES of its answer, at least one),
// because a chunk answer is a megabyte read from disk and sent, and a block
// one up to nine: a peer asking in a loop must not take the node's I/O. A
// request over its peer's bucket goes unanswered. All peers' requests also
// share one bucket (SYNC_SERVE_TOTAL_REQUESTS_PER_S, or
// config.syncServeTotalRequestsPerS), so many peers asking at once, each
// within its own, do not take the I/O either. A chunk or block request over that one is
// answered `busy` with the time until the shared bucket holds a token again:
// the fetcher waits that out (or asks another peer) without counting it as a
// failed try, where silence would cost it a response timeout and a try. An
// offers request over it goes unanswered: fetchers repeat those every
// SYNC_REQUEST_RETRY_MS anyway.
//
// An offered snapshot is hashed once (the file read whole and its checksum
// checked, as a restart would), then only its chunk hashes and an open reader
// of its file are kept, never its bytes: a snapshot may be SNAPSHOT_BYTES_MAX,
// and SYNC_OFFERS_MAX of them held in memory would cost that four times over.
// A chunk is read at its offset when asked for and sent only if it has the
// hash offered. The reader keeps the file opened: a snapshot pruned or
// replaced after it was offered is still served as offered, until it is no
// longer among the newest at the next offers request (its disk space is
// freed then). close() closes the readers.
//
// It also answers the consensus catch-up request for a height below our first
// stored block with the same `pruned` answer, so the requester asks another
// peer at once instead of waiting out its retry period; and it hands a
// `pruned` answer we receive to `onPruned` (the node steers its catch-up).

import type { PeerId } from '../consensus/index.ts';
import { sha256 } from '../crypto/index.ts';
import { bytesEqual } from '../lib/bytes.ts';
import { assert } from '../lib/assert.ts';
import {
  SYNC_BUSY_RETRY_MS_MAX,
  SYNC_BUSY_RETRY_MS_MIN,
  SYNC_CHUNK_BYTES,
  SYNC_MESSAGE_BYTES_MAX,
  SYNC_OFFERS_MAX,
  SYNC_SERVE_BURST_REQUESTS,
  SYNC_SERVE_FLOOR_REQUESTS_PER_S,
  SYNC_SERVE_PEERS_MAX,
  SYNC_SERVE_REQUESTS_PER_S,
  SYNC_SERVE_TOTAL_BURST_S,
  SYNC_SERVE_TOTAL_REQUESTS_PER_S,
} from '../lib/limits.ts';
import type { Clock } from './clock.ts';
import { CHANNEL, frame } from './framing.ts';
import type { Log } from './log.ts';
import { silentLog } from './log.ts';
import type { PeerNetwork } from './network.ts';
import { StorageError } from './storage/index.ts';
import type { SnapshotReader, Storage } from './storage/index.ts';
import type { SnapshotOffer, SyncMessage } from './sync_messages.ts';
import {
  SNAPSHOT_FORMAT,
  chunkBytesOf,
  chunkCountOf,
  decodeSyncMessage,
  encodeSyncMessage,
} from './sync_messages.ts';

/** The answer a token pays for: a chunk with its message's header. */
const TOKEN_ANSWER_BYTES = SYNC_CHUNK_BYTES + 1024;

/** Why a sync-channel message was not answered. */
export type SyncServeDrop =
  | 'decode'
  | 'rateLimited'
  /**
   * Within its peer's bucket, over the one all peers share: a chunk or block
   * request answered `busy`, an offers request not answered.
   */
  | 'busy'
  /** An answer (offers, chunk, block) nobody here asked for. */
  | 'unexpected'
  | 'unknownSnapshot'
  /** The stored snapshot no longer reads as offered (the disk changed it): forgotten. */
  | 'snapshotChanged'
  /** A block we do not hold. */
  | 'unknownBlock'
  /** A block whose stored record is damaged (logged as an error: the disk needs a look). */
  | 'damagedBlock'
  /** A stored block too large for one message (cannot happen within the block limits). */
  | 'oversize';

export interface SyncServerStats {
  served: number;
  /** Bytes of the chunks among them. */
  chunkBytesServed: number;
  /** Block requests answered with `pruned` (below our first stored height), sync and consensus. */
  prunedAnswers: number;
  /** `pruned` answers received from peers (to our consensus catch-up requests). */
  prunedReceived: number;
  dropped: Record<SyncServeDrop, number>;
}

export interface SyncServerOptions {
  readonly storage: Storage;
  readonly network: PeerNetwork;
  readonly clock: Clock;
  readonly requestsPerS?: number;
  readonly burstRequests?: number;
  /** All peers' requests together (default SYNC_SERVE_TOTAL_REQUESTS_PER_S). */
  readonly totalRequestsPerS?: number;
  /** Default: SYNC_SERVE_TOTAL_BURST_S of totalRequestsPerS. */
  readonly totalBurstRequests?: number;
  /**
   * Each peer's floor once the shared budget is spent (takeFloor), a second
   * of it as burst. Default SYNC_SERVE_FLOOR_REQUESTS_PER_S; 0: none (tests
   * of the shared budget alone).
   */
  readonly floorRequestsPerS?: number;
  /** A peer told us it holds no block below `firstHeight` (asked for `height`). */
  readonly onPruned?: (peer: PeerId, height: number, firstHeight: number) => void;
  readonly log?: Log;
}

interface Bucket {
  tokens: number;
  atMs: number;
}

interface Prepared {
  /** Its chunk hashes: SYNC_CHUNKS_MAX × 32 bytes at most. */
  readonly offer: SnapshotOffer;
  readonly reader: SnapshotReader;
}

export class SyncServer {
  /** Set by close(): no frame is served after it. */
  private closed = false;
  /** Offerable heights whose snapshot file could not be offered (damaged, empty); at most SYNC_OFFERS_MAX. */
  private readonly unusable = new Set<number>();
  readonly stats: SyncServerStats = {
    served: 0,
    chunkBytesServed: 0,
    prunedAnswers: 0,
    prunedReceived: 0,
    dropped: {
      decode: 0,
      rateLimited: 0,
      busy: 0,
      unexpected: 0,
      unknownSnapshot: 0,
      snapshotChanged: 0,
      unknownBlock: 0,
      damagedBlock: 0,
      oversize: 0,
    },
  };
  private readonly buckets = new Map<PeerId, Bucket>();
  /** Each peer's floor when the shared budget is spent (takeFloor). */
  private readonly floors = new Map<PeerId, Bucket>();
  private readonly floorPerS: number;
  /** The offers made, by height, with their open files: at most SYNC_OFFERS_MAX. */
  private readonly prepared = new Map<number, Prepared>();
  private readonly ratePerS: number;
  private readonly burst: number;
  private readonly totalRatePerS: number;
  private readonly totalBurst: number;
  /** The bucket all peers' requests share. */
  private readonly total: Bucket;

  constructor(private readonly options: SyncServerOptions) {
    this.ratePerS = options.requestsPerS ?? SYNC_SERVE_REQUESTS_PER_S;
    this.burst = options.burstRequests ?? SYNC_SERVE_BURST_REQUESTS;
    this.totalRatePerS = options.totalRequestsPerS ?? SYNC_SERVE_TOTAL_REQUESTS_PER_S;
    this.totalBurst =
      options.totalBurstRequests ?? Math.ceil(this.totalRatePerS * SYNC_SERVE_TOTAL_BURST_S);
    assert(this.totalRatePerS > 0 && this.totalBurst >= 1, 'the shared bucket serves something');
    this.total = { tokens: this.totalBurst, atMs: options.clock.nowMs() };
    this.floorPerS = options.floorRequestsPerS ?? SYNC_SERVE_FLOOR_REQUESTS_PER_S;
  }

  /** A sync-channel payload from a peer. Never throws on the peer's bytes. */
  onMessage(peer: PeerId, payload: Uint8Array): void {
    // After close(), a late frame must not open snapshot files again.
    if (this.closed) return;
    let message: SyncMessage;
    try {
      message = decodeSyncMessage(payload);
    } catch {
      return this.drop('decode');
    }
    const isRequest =
      message.kind === 'offersRequest' ||
      message.kind === 'chunkRequest' ||
      message.kind === 'blockRequest';
    if (message.kind === 'pruned' && this.options.onPruned !== undefined) {
      // Any peer may send one, asked or not: each is a replica input and a log line.
      if (!this.take(peer)) return this.drop('rateLimited');
      this.stats.prunedReceived++;
      return this.options.onPruned(peer, message.height, message.firstHeight);
    }
    if (!isRequest) return this.drop('unexpected');
    if (!this.take(peer)) return this.drop('rateLimited');
    // After the peer's own: a peer over its share takes nothing from the others'.
    // With the shared budget spent, each peer still has its floor (the least
    // rate a sync needs), so peers within their own limits cannot together
    // starve another.
    const nowMs = this.options.clock.nowMs();
    const shared = takeToken(this.total, nowMs, this.totalRatePerS, this.totalBurst);
    if (!shared && !this.takeFloor(peer, nowMs)) {
      this.drop('busy');
      if (message.kind !== 'chunkRequest' && message.kind !== 'blockRequest') return;
      return this.send(peer, { kind: 'busy', request: message, retryAfterMs: this.retryAfterMs() });
    }
    const answer = this.answer(message);
    if (answer === null) {
      // Nothing read (no such snapshot or block): the shared token goes back.
      if (shared) this.total.tokens = Math.min(this.totalBurst, this.total.tokens + 1);
      return;
    }
    const bytes = encodeSyncMessage(answer);
    if (bytes.length > SYNC_MESSAGE_BYTES_MAX) return this.drop('oversize');
    // A token is a chunk's worth of answer: a block answer of up to
    // SYNC_MESSAGE_BYTES_MAX costs what as many chunks would, not one. The
    // rest is taken once its size is known, into debt if need be (the
    // buckets refill it before their next request).
    const extra = Math.ceil(bytes.length / TOKEN_ANSWER_BYTES) - 1;
    if (extra > 0) {
      this.buckets.get(peer)!.tokens -= extra;
      if (shared) this.total.tokens -= extra;
      else this.floors.get(peer)!.tokens -= extra;
    }
    this.stats.served++;
    if (answer.kind === 'chunk') this.stats.chunkBytesServed += answer.bytes.length;
    this.options.network.send(peer, frame(CHANNEL.sync, bytes));
  }

  private send(peer: PeerId, message: SyncMessage): void {
    this.options.network.send(peer, frame(CHANNEL.sync, encodeSyncMessage(message)));
  }

  /**
   * The time until the shared bucket holds a token again, within the bounds a
   * `busy` answer may name: no sooner than SYNC_BUSY_RETRY_MS_MIN, which
   * keeps a fetcher retrying within its own bucket.
   */
  private retryAfterMs(): number {
    const ms = Math.ceil(((1 - this.total.tokens) * 1000) / this.totalRatePerS);
    return Math.min(SYNC_BUSY_RETRY_MS_MAX, Math.max(SYNC_BUSY_RETRY_MS_MIN, ms));
  }

  /**
   * A consensus catch-up request from `fromHeight`: if we pruned that height,
   * answers `pruned` on the sync channel and returns true; false (the replica
   * serves it) otherwise. Rate-limited with the other requests.
   */
  onCatchupRequest(peer: PeerId, fromHeight: number): boolean {
    const firstHeight = this.options.storage.blocks.firstHeight();
    if (!(firstHeight > fromHeight)) return false;
    if (!this.take(peer)) {
      this.drop('rateLimited');
      return true;
    }
    this.stats.prunedAnswers++;
    this.stats.served++;
    const answer: SyncMessage = { kind: 'pruned', height: fromHeight, firstHeight };
    this.options.network.send(peer, frame(CHANNEL.sync, encodeSyncMessage(answer)));
    return true;
  }

  /** The offers we would make now: our newest snapshots whose block and next block we hold. */
  offers(): SnapshotOffer[] {
    const { snapshots, blocks } = this.options.storage;
    const first = blocks.firstHeight();
    const heights = snapshots
      .heights()
      .filter((h) => h >= 1 && first >= 1 && h >= first && h + 1 <= blocks.lastHeight());
    const newest = heights.slice(-SYNC_OFFERS_MAX).reverse();
    for (const h of [...this.prepared.keys()]) if (!newest.includes(h)) this.forget(h);
    for (const h of [...this.unusable]) if (!newest.includes(h)) this.unusable.delete(h);
    const out: SnapshotOffer[] = [];
    for (const h of newest) {
      const prepared = this.prepare(h);
      if (prepared !== null) out.push(prepared.offer);
    }
    return out;
  }

  private answer(message: SyncMessage): SyncMessage | null {
    switch (message.kind) {
      case 'offersRequest':
        return { kind: 'offers', offers: this.offers() };
      case 'chunkRequest':
        return this.chunk(message.height, message.index);
      case 'blockRequest': {
        const blocks = this.options.storage.blocks;
        const firstHeight = blocks.firstHeight();
        if (firstHeight > message.height) {
          this.stats.prunedAnswers++;
          return { kind: 'pruned', height: message.height, firstHeight };
        }
        let bytes: Uint8Array | null;
        try {
          bytes = blocks.load(message.height);
        } catch (error) {
          // A damaged record (StorageCorrupt) is ours to report, not the asking peer's to trip.
          if (!(error instanceof StorageError)) throw error;
          (this.options.log ?? silentLog).error(
            { height: message.height, error: error.message },
            'a stored block is damaged: not served to a peer',
          );
          this.drop('damagedBlock');
          return null;
        }
        if (bytes === null) {
          this.drop('unknownBlock');
          return null;
        }
        return { kind: 'block', height: message.height, bytes };
      }
      default:
        return null;
    }
  }

  /** Closes the files of the snapshots offered. */
  close(): void {
    this.closed = true;
    for (const h of [...this.prepared.keys()]) this.forget(h);
  }

  /** Chunk `index` of the snapshot offered at `height`, read from its file now. */
  private chunk(height: number, index: number): SyncMessage | null {
    const prepared = this.prepared.get(height);
    if (prepared === undefined || index >= prepared.offer.chunkHashes.length) {
      this.drop('unknownSnapshot');
      return null;
    }
    const { offer, reader } = prepared;
    let bytes: Uint8Array | null;
    try {
      bytes = reader.read(index * SYNC_CHUNK_BYTES, chunkBytesOf(offer.sizeBytes, index));
    } catch {
      bytes = null;
    }
    // Checked before it leaves (a disk that changed what it holds): a bad chunk would strike us.
    if (bytes === null || !bytesEqual(sha256(bytes), offer.chunkHashes[index]!)) {
      this.forget(height);
      this.drop('snapshotChanged');
      return null;
    }
    return { kind: 'chunk', height, index, bytes };
  }

  /**
   * The offer of the stored snapshot of `height`, with its file kept open.
   * The whole is read once to hash it (checksum checked), then let go.
   */
  private prepare(height: number): Prepared | null {
    const known = this.prepared.get(height);
    if (known !== undefined) return known;
    // Read whole once: a damaged file would otherwise cost a full read per offers request.
    if (this.unusable.has(height)) return null;
    const prepared = this.prepareFromFile(height);
    if (prepared === null) this.unusable.add(height);
    return prepared;
  }

  private prepareFromFile(height: number): Prepared | null {
    const snapshots = this.options.storage.snapshots;
    let reader: SnapshotReader | null = null;
    let bytes: Uint8Array | null;
    try {
      // Opened first: a snapshot replaced in between fails its chunk hashes when served.
      reader = snapshots.openReader(height);
      bytes = reader === null ? null : snapshots.load(height);
    } catch {
      // A damaged snapshot file is not offered; the node's own restore reports it.
      reader?.close();
      return null;
    }
    if (reader === null || bytes === null || bytes.length === 0) {
      reader?.close();
      return null;
    }
    const chunkHashes: Uint8Array[] = [];
    for (let i = 0; i < chunkCountOf(bytes.length); i++) {
      chunkHashes.push(sha256(bytes.subarray(i * SYNC_CHUNK_BYTES, (i + 1) * SYNC_CHUNK_BYTES)));
    }
    const offer: SnapshotOffer = {
      height,
      format: SNAPSHOT_FORMAT,
      sizeBytes: bytes.length,
      chunkHashes,
      snapshotHash: sha256(bytes),
    };
    if (reader.sizeBytes !== offer.sizeBytes) {
      reader.close();
      return null;
    }
    const prepared = { offer, reader };
    this.prepared.set(height, prepared);
    return prepared;
  }

  private forget(height: number): void {
    this.prepared.get(height)?.reader.close();
    this.prepared.delete(height);
  }

  /** Token bucket per peer; the map is bounded by forgetting the least recently seen peer. */
  private take(peer: PeerId): boolean {
    const nowMs = this.options.clock.nowMs();
    let bucket = this.buckets.get(peer);
    if (bucket === undefined) {
      if (this.buckets.size >= SYNC_SERVE_PEERS_MAX) {
        const oldest = this.buckets.keys().next().value;
        if (oldest !== undefined) this.buckets.delete(oldest);
      }
      bucket = { tokens: this.burst, atMs: nowMs };
    } else {
      this.buckets.delete(peer);
    }
    this.buckets.set(peer, bucket);
    return takeToken(bucket, nowMs, this.ratePerS, this.burst);
  }

  /**
   * A peer's floor: floorPerS (a burst of one second), served when the shared
   * budget is spent. Its buckets live as long as the peer's own (take, which
   * runs first, keeps the map bounded).
   */
  private takeFloor(peer: PeerId, nowMs: number): boolean {
    if (this.floorPerS <= 0) return false;
    let bucket = this.floors.get(peer);
    if (bucket === undefined) {
      bucket = { tokens: this.floorPerS, atMs: nowMs };
      this.floors.set(peer, bucket);
    }
    for (const known of this.floors.keys()) {
      if (this.floors.size <= this.buckets.size) break;
      if (!this.buckets.has(known)) this.floors.delete(known);
    }
    return takeToken(bucket, nowMs, this.floorPerS, this.floorPerS);
  }

  private drop(reason: SyncServeDrop): void {
    this.stats.dropped[reason]++;
  }
}

/** Refills `bucket` for the time since it was last seen, then takes a token if it holds one. */
function takeToken(bucket: Bucket, nowMs: number, ratePerS: number, burst: number): boolean {
  const elapsedMs = Math.max(0, nowMs - bucket.atMs);
  bucket.tokens = Math.min(burst, bucket.tokens + (elapsedMs * ratePerS) / 1000);
  bucket.atMs = nowMs;
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}
