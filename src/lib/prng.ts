// A seeded pseudo-random generator: one seed, one sequence, on every machine.
// sfc32 (Chris Doty-Humphrey's Small Fast Counting generator) on 32-bit lanes,
// seeded through splitmix32. Used by the simulator, workloads and tests; the
// pure cores never draw randomness.

import { assert } from './assert.ts';

function splitmix32(state: number): [number, number] {
  const next = (state + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return [next, (z ^ (z >>> 16)) >>> 0];
}

export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** Any integer seed (number below 2^53, or bigint) is accepted. */
  constructor(seed: number | bigint) {
    const s = BigInt(seed);
    let state = Number(s & 0xffffffffn) ^ Number((s >> 32n) & 0xffffffffn);
    const lanes: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [next, value] = splitmix32(state);
      state = next;
      lanes.push(value);
    }
    this.a = lanes[0]!;
    this.b = lanes[1]!;
    this.c = lanes[2]!;
    this.d = lanes[3]!;
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** A uniform integer in [0, bound), without modulo bias. bound ≤ 2^32. */
  int(bound: number): number {
    assert(
      Number.isInteger(bound) && bound > 0 && bound <= 0x1_0000_0000,
      'prng bound out of range',
    );
    const limit = 0x1_0000_0000 - (0x1_0000_0000 % bound);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % bound;
    }
  }

  /** A uniform integer in [lo, hi], both inclusive. */
  between(lo: number, hi: number): number {
    assert(hi >= lo, 'prng range crossed');
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability numerator / denominator. */
  chance(numerator: number, denominator: number): boolean {
    return this.int(denominator) < numerator;
  }

  /** A double in [0, 1) with 53 random bits (for the simulator and workloads, never the cores). */
  fraction(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** A standard normal deviate (Box–Muller), for workloads. */
  normal(): number {
    let u = 0;
    while (u === 0) u = this.fraction();
    const v = this.fraction();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  pick<T>(items: readonly T[]): T {
    assert(items.length > 0, 'pick from an empty list');
    return items[this.int(items.length)]!;
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = items[i]!;
      items[i] = items[j]!;
      items[j] = t;
    }
    return items;
  }

  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.nextU32() & 0xff;
    return out;
  }

  /** An independent generator derived from this one (for per-component streams). */
  fork(): Prng {
    return new Prng(BigInt(this.nextU32()) * 0x1_0000_0000n + BigInt(this.nextU32()));
  }
}
