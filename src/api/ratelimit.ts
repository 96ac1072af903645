// Token buckets keyed by IP or account. The clock is injected so tests move
// time by hand instead of sleeping. Buckets live in a Map in least-recently-
// used order, bounded by bucketsMax: a flood of new keys evicts old buckets
// (which then start full again) instead of growing memory without limit.

import { assert } from '../lib/assert.ts';

export interface BucketLimit {
  /** Tokens added per second. */
  perSecond: number;
  /** Most tokens a bucket holds (the burst). */
  burst: number;
}

interface Bucket {
  tokens: number;
  atMs: number;
}

export class RateLimiter {
  private readonly limit: BucketLimit;
  private readonly bucketsMax: number;
  private readonly nowMs: () => number;
  private readonly buckets = new Map<string, Bucket>();

  constructor(limit: BucketLimit, bucketsMax: number, nowMs: () => number) {
    assert(limit.perSecond > 0 && limit.burst >= 1, 'a bucket refills and holds a token');
    assert(bucketsMax >= 1, 'a limiter keeps at least one bucket');
    this.limit = limit;
    this.bucketsMax = bucketsMax;
    this.nowMs = nowMs;
  }

  /**
   * Takes `tokens` tokens for `key` (a batch costs one per action), all or
   * none: 0 if granted, else the ms until that many are available. More than
   * the burst costs the whole burst: a bucket never holds more, so asking for
   * more could never be granted.
   */
  take(key: string, tokens = 1): number {
    const cost = this.costOf(tokens);
    const bucket = this.refill(key);
    if (bucket.tokens >= cost) {
      bucket.tokens -= cost;
      return 0;
    }
    return this.waitMs(bucket, cost);
  }

  /** What take(key, tokens) would answer, taking nothing: to check two buckets before taking from either. */
  check(key: string, tokens = 1): number {
    const cost = this.costOf(tokens);
    const bucket = this.refill(key);
    return bucket.tokens >= cost ? 0 : this.waitMs(bucket, cost);
  }

  /**
   * Gives back what a take of `tokens` took for `key` (up to the burst): the
   * work it paid for turned out not to be the key's to pay (a submission
   * refused for what anyone may send under an account).
   */
  refund(key: string, tokens = 1): void {
    const bucket = this.refill(key);
    bucket.tokens = Math.min(this.limit.burst, bucket.tokens + this.costOf(tokens));
  }

  private costOf(tokens: number): number {
    assert(Number.isSafeInteger(tokens) && tokens >= 1, 'a take costs a whole number of tokens');
    return Math.min(tokens, this.limit.burst);
  }

  private waitMs(bucket: Bucket, cost: number): number {
    return Math.ceil(((cost - bucket.tokens) * 1000) / this.limit.perSecond);
  }

  /** The key's bucket, refilled to now and made the most recently used. */
  private refill(key: string): Bucket {
    const now = this.nowMs();
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: this.limit.burst, atMs: now };
      if (this.buckets.size >= this.bucketsMax) {
        this.buckets.delete(this.buckets.keys().next().value!);
      }
    } else {
      this.buckets.delete(key);
      const elapsedMs = Math.max(0, now - bucket.atMs);
      bucket.tokens = Math.min(
        this.limit.burst,
        bucket.tokens + (elapsedMs * this.limit.perSecond) / 1000,
      );
      bucket.atMs = now;
    }
    this.buckets.set(key, bucket);
    return bucket;
  }

  get size(): number {
    return this.buckets.size;
  }
}
