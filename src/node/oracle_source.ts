// A simulated index-price source for the devnet: geometric Brownian motion
// with jumps per underlying, stepped once per second of wall time, from a seed
// shared by the whole devnet (so every validator sees the same market), seen
// by each validator with its own small noise and its own delay (so
// observations differ and lag, as real feeds do, and the median has work to
// do). Floats are fine here: only the integer prices it reports enter the
// chain, through signed vote extensions.

import { Prng } from '../lib/prng.ts';
import type { Observation } from './oracle.ts';

export interface PriceSource {
  /** Index prices (quote units per whole base unit) at wall time `nowMs`. */
  observe(nowMs: number): Observation;
}

export interface GbmAsset {
  readonly underlying: string;
  /** Quote units per whole base unit at the start. */
  readonly startQuote: bigint;
  /** Annualized volatility, e.g. 0.6. */
  readonly volatility: number;
}

export const DEVNET_ASSETS: readonly GbmAsset[] = [
  { underlying: 'BTC', startQuote: 60_000_000_000n, volatility: 0.6 },
  { underlying: 'ETH', startQuote: 3_000_000_000n, volatility: 0.8 },
];

const STEP_MS = 1_000;
/** A jump happens in a step with probability 1 / JUMP_EVERY_STEPS (about one in 15 minutes). */
const JUMP_EVERY_STEPS = 900;
/** Standard deviation of a jump's log move (1.5%). */
const JUMP_SIZE = 0.015;
/** Each validator sees the market this late, at most (its delay is drawn from its seed). */
const DELAY_MS_MAX = 1_500;
const YEAR_MS = 365 * 24 * 3_600_000;
/** Per-validator noise: standard deviation of the multiplicative error, in parts of one. */
const NOISE = 0.0002;

export class GbmPriceSource implements PriceSource {
  private readonly paths: { asset: GbmAsset; prng: Prng; logPrice: number; step: number }[];
  private readonly noise: Prng;
  /** How late this validator sees the shared path, ms. */
  readonly delayMs: number;

  constructor(
    assets: readonly GbmAsset[],
    seed: number,
    validatorIndex: number,
    private readonly originMs: number,
  ) {
    this.paths = assets.map((asset, i) => ({
      asset,
      prng: new Prng(seed * 1_000 + i),
      logPrice: Math.log(Number(asset.startQuote)),
      step: 0,
    }));
    this.noise = new Prng(seed * 1_000_003 + validatorIndex + 1);
    this.delayMs = this.noise.int(DELAY_MS_MAX + 1);
  }

  observe(nowMs: number): Observation {
    const target = Math.max(0, Math.floor((nowMs - this.delayMs - this.originMs) / STEP_MS));
    const dt = STEP_MS / YEAR_MS;
    const out = new Map<string, bigint>();
    for (const path of this.paths) {
      // The shared path is a pure function of (seed, step): every validator walks the same one.
      for (; path.step < target; path.step++) {
        const sigma = path.asset.volatility;
        path.logPrice += -0.5 * sigma * sigma * dt + sigma * Math.sqrt(dt) * path.prng.normal();
        // Three draws every step, jump or not, so the path stays one function of (seed, step).
        const jumps = path.prng.int(JUMP_EVERY_STEPS) === 0;
        const jump = JUMP_SIZE * path.prng.normal();
        if (jumps) path.logPrice += jump;
      }
      const noisy = path.logPrice + NOISE * this.noise.normal();
      out.set(path.asset.underlying, BigInt(Math.max(1, Math.round(Math.exp(noisy)))));
    }
    return out;
  }
}
