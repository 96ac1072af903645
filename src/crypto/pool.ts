// A pool of worker threads that check Ed25519 signatures: batches in, verdicts
// out, in order. A batch is split into chunks (one per worker, at most
// VERIFY_CHUNK_ITEMS_MAX items each); each chunk travels packed in one
// ArrayBuffer, not as per-item objects, so the cost on the calling thread is
// two copies of the bytes (packing, and postMessage's clone). Copied, not
// transferred: a transfer detaches the buffer, and the first ArrayBuffer
// detached in a thread invalidates V8's guarantee that none ever is, on which
// its optimized code of every typed-array access depends. A node's first
// batch past MEMPOOL_VERIFY_INLINE_TXS_MAX then threw away some 160 optimized
// functions (codec, mempool, consensus, hashing) at once, and typed-array
// reads check for detachment from then on. Workers verify with libsodium, as
// verifyRaw does, and copy their verdicts back for the same reason.

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { AssertionError, assert } from '../lib/assert.ts';
import {
  VERIFY_CHUNKS_PER_WORKER_MAX,
  VERIFY_CHUNK_ITEMS_MAX,
  VERIFY_CHUNK_ITEMS_MIN,
  VERIFY_QUEUE_BATCHES_MAX,
} from '../lib/limits.ts';
import { PUBLIC_KEY_BYTES, SIGNATURE_BYTES } from './constants.ts';
import { CryptoError } from './errors.ts';

export interface VerifyItem {
  publicKey: Uint8Array;
  /** The exact signed bytes (already domain-separated: see signedBytes). */
  message: Uint8Array;
  signature: Uint8Array;
}

export interface VerifyPoolOptions {
  /** Worker threads (default: availableParallelism()). */
  workers?: number;
  /** verifyBatch calls held at once, queued or running; one more is refused with 'VerifyQueueFull'. */
  queueBatchesMax?: number;
}

const ITEM_HEADER_BYTES = 5;
const ITEM_FIXED_BYTES = ITEM_HEADER_BYTES + PUBLIC_KEY_BYTES + SIGNATURE_BYTES;
const WORKER_URL = new URL('./verify-worker.js', import.meta.url);

interface Batch {
  readonly verdicts: boolean[];
  chunksLeft: number;
  settled: boolean;
  readonly resolve: (verdicts: boolean[]) => void;
  readonly reject: (error: Error) => void;
}

interface Chunk {
  readonly batch: Batch;
  /** Index in the batch of the chunk's first item. */
  readonly start: number;
  readonly buffer: ArrayBuffer;
}

interface Slot {
  readonly worker: Worker;
  readonly running: Map<number, Chunk>;
  dead: boolean;
}

function isBytes(x: unknown, length?: number): x is Uint8Array {
  return x instanceof Uint8Array && (length === undefined || x.length === length);
}

function wellFormed(item: VerifyItem | undefined): item is VerifyItem {
  return (
    typeof item === 'object' &&
    item !== null &&
    isBytes(item.publicKey, PUBLIC_KEY_BYTES) &&
    isBytes(item.signature, SIGNATURE_BYTES) &&
    isBytes(item.message)
  );
}

/** Packs items [start, end) in the worker's layout (see verify-worker.js). */
export function packChunk(items: readonly VerifyItem[], start: number, end: number): ArrayBuffer {
  let bytes = 4;
  for (let i = start; i < end; i++) {
    const item = items[i];
    bytes += ITEM_FIXED_BYTES + (wellFormed(item) ? item.message.length : 0);
  }
  const buffer = new ArrayBuffer(bytes);
  const out = new Uint8Array(buffer);
  const view = new DataView(buffer);
  view.setUint32(0, end - start, true);
  let offset = 4;
  for (let i = start; i < end; i++) {
    const item = items[i];
    if (!wellFormed(item)) {
      // Length 0 and the flag byte 0 (already zero): the worker answers false.
      offset += ITEM_FIXED_BYTES;
      continue;
    }
    view.setUint32(offset, item.message.length, true);
    out[offset + 4] = 1;
    out.set(item.publicKey, offset + ITEM_HEADER_BYTES);
    out.set(item.signature, offset + ITEM_HEADER_BYTES + PUBLIC_KEY_BYTES);
    out.set(item.message, offset + ITEM_FIXED_BYTES);
    offset += ITEM_FIXED_BYTES + item.message.length;
  }
  assert(offset === bytes, 'packed chunk fills its buffer');
  return buffer;
}

export class VerifyPool {
  private readonly slots: Slot[] = [];
  private readonly workerCount: number;
  private readonly queueBatchesMax: number;
  private readonly queue: Chunk[] = [];
  private queueHead = 0;
  private batchesHeld = 0;
  private nextChunkId = 1;
  private closed = false;
  private closing: Promise<void> | undefined;
  private onDrained: (() => void) | undefined;

  constructor(options: VerifyPoolOptions = {}) {
    this.workerCount = options.workers ?? availableParallelism();
    this.queueBatchesMax = options.queueBatchesMax ?? VERIFY_QUEUE_BATCHES_MAX;
    assert(
      Number.isSafeInteger(this.workerCount) && this.workerCount >= 1,
      'a verify pool needs at least one worker',
    );
    assert(
      Number.isSafeInteger(this.queueBatchesMax) && this.queueBatchesMax >= 1,
      'a verify pool needs room for a batch',
    );
    for (let i = 0; i < this.workerCount; i++) this.slots.push(this.spawn());
  }

  get workers(): number {
    return this.workerCount;
  }

  /**
   * One verdict per item, in order: true if the signature is valid for the
   * message under the public key. Malformed items are false, never an error.
   * Rejects with CryptoError 'VerifyQueueFull' when queueBatchesMax batches are
   * already held; the caller should shed load (drop or delay the input).
   */
  verifyBatch(items: readonly VerifyItem[]): Promise<boolean[]> {
    if (this.closed) return Promise.reject(new AssertionError('verify pool is closed'));
    if (this.batchesHeld >= this.queueBatchesMax) {
      return Promise.reject(
        new CryptoError(
          'VerifyQueueFull',
          `verify pool holds ${this.batchesHeld} batches, its limit`,
        ),
      );
    }
    const n = items.length;
    if (n === 0) return Promise.resolve([]);
    const chunkItems = Math.min(
      VERIFY_CHUNK_ITEMS_MAX,
      Math.max(VERIFY_CHUNK_ITEMS_MIN, Math.ceil(n / this.workerCount)),
    );
    const packed: { start: number; buffer: ArrayBuffer }[] = [];
    for (let start = 0; start < n; start += chunkItems) {
      packed.push({ start, buffer: packChunk(items, start, Math.min(n, start + chunkItems)) });
    }
    return new Promise<boolean[]>((resolve, reject) => {
      const batch: Batch = {
        verdicts: new Array<boolean>(n).fill(false),
        chunksLeft: packed.length,
        settled: false,
        resolve,
        reject,
      };
      this.batchesHeld++;
      for (const { start, buffer } of packed) this.queue.push({ batch, start, buffer });
      this.dispatch();
    });
  }

  /** Finishes the batches already accepted, then stops the workers. */
  close(): Promise<void> {
    this.closing ??= this.drainAndStop();
    return this.closing;
  }

  private async drainAndStop(): Promise<void> {
    this.closed = true;
    if (this.batchesHeld > 0) {
      await new Promise<void>((resolve) => {
        this.onDrained = resolve;
      });
    }
    await Promise.all(this.slots.map((slot) => slot.worker.terminate()));
  }

  private spawn(): Slot {
    // execArgv []: the worker is plain JavaScript and needs no TypeScript loader.
    const worker = new Worker(WORKER_URL, { execArgv: [] });
    const slot: Slot = { worker, running: new Map(), dead: false };
    worker.unref();
    worker.on('message', (message: { id: number; verdicts: ArrayBuffer }) =>
      this.onVerdicts(slot, message.id, new Uint8Array(message.verdicts)),
    );
    worker.on('error', (error: Error) => this.onWorkerFailed(slot, error));
    worker.on('exit', (code: number) => {
      // After close() drains, workers exit with nothing running: that is no failure.
      if (!this.closed || slot.running.size > 0) {
        this.onWorkerFailed(slot, new Error(`verify worker exited (${code})`));
      }
    });
    return slot;
  }

  private dispatch(): void {
    while (this.queueHead < this.queue.length) {
      let best: Slot | undefined;
      for (const slot of this.slots) {
        if (slot.dead || slot.running.size >= VERIFY_CHUNKS_PER_WORKER_MAX) continue;
        if (best === undefined || slot.running.size < best.running.size) best = slot;
      }
      if (best === undefined) return;
      const chunk = this.queue[this.queueHead]!;
      this.queue[this.queueHead++] = undefined as unknown as Chunk;
      if (this.queueHead === this.queue.length) {
        this.queue.length = 0;
        this.queueHead = 0;
      }
      if (chunk.batch.settled) continue;
      const id = this.nextChunkId++;
      if (best.running.size === 0) best.worker.ref();
      best.running.set(id, chunk);
      // No transfer list: see the header.
      best.worker.postMessage({ id, buffer: chunk.buffer });
    }
  }

  private onVerdicts(slot: Slot, id: number, verdicts: Uint8Array): void {
    const chunk = slot.running.get(id);
    assert(chunk !== undefined, 'verdicts for a chunk the worker was given');
    slot.running.delete(id);
    if (slot.running.size === 0) slot.worker.unref();
    const batch = chunk.batch;
    if (!batch.settled) {
      for (let i = 0; i < verdicts.length; i++) batch.verdicts[chunk.start + i] = verdicts[i] === 1;
      batch.chunksLeft--;
      if (batch.chunksLeft === 0) this.settle(batch, undefined);
    }
    this.dispatch();
  }

  /** A worker died (a bug, or out of memory): fail its batches, replace it, carry on. */
  private onWorkerFailed(slot: Slot, error: Error): void {
    if (slot.dead) return;
    slot.dead = true;
    for (const chunk of slot.running.values()) this.settle(chunk.batch, error);
    slot.running.clear();
    void slot.worker.terminate();
    const index = this.slots.indexOf(slot);
    if (!this.closed && index >= 0) this.slots[index] = this.spawn();
    if (this.slots.every((s) => s.dead)) this.failQueued(error);
    this.dispatch();
  }

  /** No worker is left to run what is queued (the pool is closing): fail it, so close() ends. */
  private failQueued(error: Error): void {
    for (let i = this.queueHead; i < this.queue.length; i++)
      this.settle(this.queue[i]!.batch, error);
    this.queue.length = 0;
    this.queueHead = 0;
  }

  private settle(batch: Batch, error: Error | undefined): void {
    if (batch.settled) return;
    batch.settled = true;
    this.batchesHeld--;
    if (error === undefined) batch.resolve(batch.verdicts);
    else batch.reject(error);
    if (this.batchesHeld === 0 && this.onDrained !== undefined) this.onDrained();
  }
}
