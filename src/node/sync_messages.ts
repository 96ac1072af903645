// The state-sync channel's messages (CometBFT's statesync reactor, simpler): a
// new node asks for snapshot offers, fetches one snapshot in chunks, then the
// committed blocks of the snapshot's height and of the one after (whose header
// carries the snapshot's appHash), or, with a trusted block, those from it
// down to the snapshot's. Every length and count is bounded before it is read;
// a chunk's size and an offer's chunk count must agree with the offer's size,
// so a decoded offer is self-consistent. A server whose budget for all peers
// is spent answers a chunk or block request `busy`, naming the request and
// how long to wait before asking again.

import type { Codec, Reader, Writer } from '../codec/wire.ts';
import { DecodeError, decode, encode } from '../codec/wire.ts';
import {
  STORED_BLOCK_BYTES_MAX,
  SNAPSHOT_BYTES_MAX,
  SYNC_BUSY_RETRY_MS_MAX,
  SYNC_BUSY_RETRY_MS_MIN,
  SYNC_CHUNK_BYTES,
  SYNC_CHUNKS_MAX,
  SYNC_MESSAGE_BYTES_MAX,
  SYNC_OFFERS_MAX,
} from '../lib/limits.ts';

export const SYNC_HASH_BYTES = 32;
/** The only snapshot format: the exchange's snapshot encoding, cut in SYNC_CHUNK_BYTES pieces. */
export const SNAPSHOT_FORMAT = 1;

export interface SnapshotOffer {
  /** The state after executing this height. */
  readonly height: number;
  readonly format: number;
  readonly sizeBytes: number;
  /** sha256 of each chunk, in order. */
  readonly chunkHashes: readonly Uint8Array[];
  /** sha256 of the whole snapshot. */
  readonly snapshotHash: Uint8Array;
}

/** The requests a fetcher waits on one peer's answer to: those a `busy` answer may name. */
export type FetchRequest =
  | { readonly kind: 'chunkRequest'; readonly height: number; readonly index: number }
  | { readonly kind: 'blockRequest'; readonly height: number };

export type SyncMessage =
  | { readonly kind: 'offersRequest' }
  | { readonly kind: 'offers'; readonly offers: readonly SnapshotOffer[] }
  | { readonly kind: 'chunkRequest'; readonly height: number; readonly index: number }
  | {
      readonly kind: 'chunk';
      readonly height: number;
      readonly index: number;
      readonly bytes: Uint8Array;
    }
  | { readonly kind: 'blockRequest'; readonly height: number }
  /** The committed block of `height` with its certificate (consensus committedBlockCodec), as stored. */
  | { readonly kind: 'block'; readonly height: number; readonly bytes: Uint8Array }
  /**
   * The answer to a blockRequest for a height this peer no longer holds: its
   * blocks start at `firstHeight` (> height). The requester asks elsewhere at
   * once instead of waiting out its response timeout.
   */
  | { readonly kind: 'pruned'; readonly height: number; readonly firstHeight: number }
  /**
   * The answer to `request` when the server's budget for all peers' requests
   * is spent: ask again after `retryAfterMs` (SYNC_BUSY_RETRY_MS_MIN to
   * SYNC_BUSY_RETRY_MS_MAX), or ask another peer. Without it the request
   * would go unanswered and cost the requester a response timeout and a try.
   */
  | { readonly kind: 'busy'; readonly request: FetchRequest; readonly retryAfterMs: number };

const TAG = {
  offersRequest: 0,
  offers: 1,
  chunkRequest: 2,
  chunk: 3,
  blockRequest: 4,
  block: 5,
  pruned: 6,
  busy: 7,
} as const;

/** Chunks a snapshot of `sizeBytes` is cut into (an empty snapshot is refused elsewhere). */
export function chunkCountOf(sizeBytes: number): number {
  return Math.ceil(sizeBytes / SYNC_CHUNK_BYTES);
}

/** The byte length chunk `index` of a snapshot of `sizeBytes` must have. */
export function chunkBytesOf(sizeBytes: number, index: number): number {
  return Math.min(SYNC_CHUNK_BYTES, sizeBytes - index * SYNC_CHUNK_BYTES);
}

const offerCodec: Codec<SnapshotOffer> = {
  write(w: Writer, o: SnapshotOffer): void {
    w.uvarint(o.height).uvarint(o.format).uvarint(o.sizeBytes).uvarint(o.chunkHashes.length);
    for (const h of o.chunkHashes) w.fixed(h, SYNC_HASH_BYTES);
    w.fixed(o.snapshotHash, SYNC_HASH_BYTES);
  },
  read(r: Reader, field: string): SnapshotOffer {
    const height = r.uvarint(`${field}.height`);
    if (height < 1) throw r.error(`${field}.height`, 'a snapshot is of height 1 or above');
    const format = r.uvarint(`${field}.format`);
    if (format !== SNAPSHOT_FORMAT) throw r.error(`${field}.format`, `unknown format ${format}`);
    const sizeBytes = r.uvarint(`${field}.sizeBytes`, SNAPSHOT_BYTES_MAX);
    if (sizeBytes < 1) throw r.error(`${field}.sizeBytes`, 'an empty snapshot');
    const count = r.uvarint(`${field}.chunks`, SYNC_CHUNKS_MAX);
    if (count !== chunkCountOf(sizeBytes)) {
      throw r.error(`${field}.chunks`, `${count} chunks for ${sizeBytes} bytes`);
    }
    const chunkHashes: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      chunkHashes.push(r.fixedCopy(`${field}.chunkHashes[${i}]`, SYNC_HASH_BYTES));
    }
    const snapshotHash = r.fixedCopy(`${field}.snapshotHash`, SYNC_HASH_BYTES);
    return { height, format, sizeBytes, chunkHashes, snapshotHash };
  },
};

export const syncMessageCodec: Codec<SyncMessage> = {
  write(w: Writer, m: SyncMessage): void {
    w.u8(TAG[m.kind]);
    switch (m.kind) {
      case 'offersRequest':
        return;
      case 'offers':
        w.uvarint(m.offers.length);
        for (const o of m.offers) offerCodec.write(w, o);
        return;
      case 'chunkRequest':
        w.uvarint(m.height).uvarint(m.index);
        return;
      case 'busy':
        syncMessageCodec.write(w, m.request);
        w.uvarint(m.retryAfterMs);
        return;
      case 'chunk':
        w.uvarint(m.height).uvarint(m.index).bytes(m.bytes, SYNC_CHUNK_BYTES);
        return;
      case 'blockRequest':
        w.uvarint(m.height);
        return;
      case 'block':
        w.uvarint(m.height).bytes(m.bytes, STORED_BLOCK_BYTES_MAX);
        return;
      case 'pruned':
        w.uvarint(m.height).uvarint(m.firstHeight);
        return;
    }
  },
  read(r: Reader, field: string): SyncMessage {
    const tag = r.tag(`${field}.kind`, 8);
    switch (tag) {
      case TAG.offersRequest:
        return { kind: 'offersRequest' };
      case TAG.offers: {
        const count = r.uvarint(`${field}.offers`, SYNC_OFFERS_MAX);
        const offers: SnapshotOffer[] = [];
        for (let i = 0; i < count; i++) offers.push(offerCodec.read(r, `${field}.offers[${i}]`));
        return { kind: 'offers', offers };
      }
      case TAG.chunkRequest:
        return readFetchRequest(r, field, tag);
      case TAG.chunk: {
        const height = r.uvarint(`${field}.height`);
        const index = r.uvarint(`${field}.index`, SYNC_CHUNKS_MAX - 1);
        const bytes = r.bytesField(`${field}.bytes`, SYNC_CHUNK_BYTES).slice();
        if (bytes.length === 0) throw r.error(`${field}.bytes`, 'an empty chunk');
        return { kind: 'chunk', height, index, bytes };
      }
      case TAG.blockRequest:
        return readFetchRequest(r, field, tag);
      case TAG.pruned: {
        const height = r.uvarint(`${field}.height`);
        const firstHeight = r.uvarint(`${field}.firstHeight`);
        if (firstHeight <= height) {
          throw r.error(`${field}.firstHeight`, `${firstHeight} does not prune ${height}`);
        }
        return { kind: 'pruned', height, firstHeight };
      }
      case TAG.busy: {
        const kindField = `${field}.request.kind`;
        const requestTag = r.u8(kindField);
        if (requestTag !== TAG.chunkRequest && requestTag !== TAG.blockRequest) {
          throw r.error(kindField, `tag ${requestTag} is not a chunk or block request`);
        }
        const request = readFetchRequest(r, `${field}.request`, requestTag);
        const retryAfterMs = r.uvarint(`${field}.retryAfterMs`, SYNC_BUSY_RETRY_MS_MAX);
        // Zero or a few ms would have the fetcher ask again in a loop.
        if (retryAfterMs < SYNC_BUSY_RETRY_MS_MIN) {
          throw r.error(
            `${field}.retryAfterMs`,
            `${retryAfterMs} is below ${SYNC_BUSY_RETRY_MS_MIN}`,
          );
        }
        return { kind: 'busy', request, retryAfterMs };
      }
      default: {
        const height = r.uvarint(`${field}.height`);
        const bytes = r.bytesField(`${field}.bytes`, STORED_BLOCK_BYTES_MAX).slice();
        return { kind: 'block', height, bytes };
      }
    }
  },
};

/** The fields of a chunk or block request, after its tag. */
function readFetchRequest(
  r: Reader,
  field: string,
  tag: typeof TAG.chunkRequest | typeof TAG.blockRequest,
): FetchRequest {
  const height = r.uvarint(`${field}.height`);
  if (tag === TAG.blockRequest) return { kind: 'blockRequest', height };
  return { kind: 'chunkRequest', height, index: r.uvarint(`${field}.index`, SYNC_CHUNKS_MAX - 1) };
}

export function encodeSyncMessage(message: SyncMessage): Uint8Array {
  return encode(syncMessageCodec, message);
}

/** Throws DecodeError on anything but one canonical message within SYNC_MESSAGE_BYTES_MAX. */
export function decodeSyncMessage(bytes: Uint8Array): SyncMessage {
  if (bytes.length > SYNC_MESSAGE_BYTES_MAX) {
    throw new DecodeError('sync', `${bytes.length} bytes is above ${SYNC_MESSAGE_BYTES_MAX}`);
  }
  return decode(syncMessageCodec, bytes, 'sync');
}
