// The simulated network: per-link delays from the topology plus jitter, and
// the faults a real network shows — loss, duplication, reordering, partitions
// (symmetric, asymmetric, one-way, each healing at a set time) and clogging (a
// link's delay multiplied for a while). It only decides when (and whether) a
// message arrives; the simulator queues the delivery.

import { assert } from '../lib/assert.ts';
import type { Prng } from '../lib/prng.ts';
import type { Topology } from './topology.ts';

export const PPM = 1_000_000;

export type PartitionKind = 'symmetric' | 'asymmetric' | 'one-way';

export interface Partition {
  readonly kind: PartitionKind;
  /** symmetric: a and b cannot talk; asymmetric and one-way: a cannot reach b (b still reaches a). */
  readonly a: readonly number[];
  readonly b: readonly number[];
  readonly untilUs: number;
}

export interface NetworkStats {
  sent: number;
  lost: number;
  blocked: number;
  duplicated: number;
  reordered: number;
}

export class Network {
  readonly n: number;
  lossPpm = 0;
  duplicatePpm = 0;
  reorderPpm = 0;
  reorderMaxUs = 0;
  readonly stats: NetworkStats = { sent: 0, lost: 0, blocked: 0, duplicated: 0, reordered: 0 };
  /** Per directed link: blocked until this time. */
  private readonly blockedUntilUs: Float64Array;
  /** Per directed link: delay multiplied by clogFactor until clogUntilUs. */
  private readonly clogUntilUs: Float64Array;
  private readonly clogFactor: Uint32Array;
  private readonly baseUs: Float64Array;
  private readonly jitterMaxUs: Float64Array;

  constructor(
    readonly topology: Topology,
    private readonly prng: Prng,
  ) {
    const n = topology.latencyUs.length;
    this.n = n;
    this.blockedUntilUs = new Float64Array(n * n);
    this.clogUntilUs = new Float64Array(n * n);
    this.clogFactor = new Uint32Array(n * n).fill(1);
    this.baseUs = new Float64Array(n * n);
    this.jitterMaxUs = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const base = topology.latencyUs[i]![j]!;
        this.baseUs[i * n + j] = base;
        this.jitterMaxUs[i * n + j] =
          Math.floor((base * topology.jitterPpm) / PPM) + topology.jitterFloorUs;
      }
    }
  }

  partition(p: Partition): void {
    for (const x of p.a) {
      for (const y of p.b) {
        if (x === y) continue;
        this.block(x, y, p.untilUs);
        if (p.kind === 'symmetric') this.block(y, x, p.untilUs);
      }
    }
  }

  private block(from: number, to: number, untilUs: number): void {
    const k = from * this.n + to;
    if (this.blockedUntilUs[k]! < untilUs) this.blockedUntilUs[k] = untilUs;
  }

  /** Multiplies the delay of every link touching `node` (both directions) until `untilUs`. */
  clog(node: number, factor: number, untilUs: number): void {
    assert(Number.isInteger(factor) && factor >= 1, 'a clog slows a link down');
    for (let other = 0; other < this.n; other++) {
      for (const k of [node * this.n + other, other * this.n + node]) {
        this.clogFactor[k] = factor;
        this.clogUntilUs[k] = untilUs;
      }
    }
  }

  /** Ends every fault now: the network is healthy from here on. */
  heal(): void {
    this.lossPpm = 0;
    this.duplicatePpm = 0;
    this.reorderPpm = 0;
    this.blockedUntilUs.fill(0);
    this.clogUntilUs.fill(0);
    this.clogFactor.fill(1);
  }

  isBlocked(from: number, to: number, nowUs: number): boolean {
    return this.blockedUntilUs[from * this.n + to]! > nowUs;
  }

  /** The delay of one message with no fault but jitter, µs. */
  delayUs(from: number, to: number, nowUs: number): number {
    const k = from * this.n + to;
    const jitterMax = this.jitterMaxUs[k]!;
    let delay = this.baseUs[k]! + (jitterMax > 0 ? this.prng.int(jitterMax + 1) : 0);
    if (this.clogUntilUs[k]! > nowUs) delay *= this.clogFactor[k]!;
    return delay;
  }

  /**
   * When copies of a message sent now from `from` to `to` arrive: none (lost
   * or partitioned), one, or two (duplicated). Draws from the network's own
   * random stream only when a fault is configured, so a fault-free run's
   * stream does not depend on fault settings.
   */
  arrivals(from: number, to: number, nowUs: number): number[] {
    this.stats.sent++;
    if (this.isBlocked(from, to, nowUs)) {
      this.stats.blocked++;
      return [];
    }
    if (this.lossPpm > 0 && this.prng.int(PPM) < this.lossPpm) {
      this.stats.lost++;
      return [];
    }
    const first = nowUs + this.delayUs(from, to, nowUs) + this.reorderUs();
    if (this.duplicatePpm > 0 && this.prng.int(PPM) < this.duplicatePpm) {
      this.stats.duplicated++;
      return [first, nowUs + this.delayUs(from, to, nowUs) + this.reorderUs()];
    }
    return [first];
  }

  /** Extra delay that lets a later message overtake this one. */
  private reorderUs(): number {
    if (this.reorderPpm === 0 || this.prng.int(PPM) >= this.reorderPpm) return 0;
    this.stats.reordered++;
    return 1 + this.prng.int(Math.max(1, this.reorderMaxUs));
  }
}
