// What one simulation run is: every option, its defaults, the timeouts sized
// to the topology, the options a swarm seed draws, and the command that
// replays a run.

import type { TimeoutConfig } from '../consensus/index.ts';
import { ZommaError } from '../lib/errors.ts';
import { Prng } from '../lib/prng.ts';
import { SIM_HEIGHTS_MAX, SIM_VALIDATORS_MAX } from '../lib/limits.ts';
import type { AppFactory } from './app.ts';
import { BYZANTINE_BEHAVIORS, DRAWN_BEHAVIORS, LATER_DRAWN_BEHAVIORS } from './byzantine.ts';
import type { ByzantineBehavior } from './byzantine.ts';
import type { CryptoScheme } from './crypto.ts';
import { TOPOLOGIES } from './topology.ts';
import type { TopologyName } from './topology.ts';

export const FAULT_PROFILES = ['none', 'loss', 'partition', 'crash', 'chaos'] as const;
export type FaultProfile = (typeof FAULT_PROFILES)[number];

export type BehaviorChoice = ByzantineBehavior | 'mixed';
export const BEHAVIOR_CHOICES: readonly BehaviorChoice[] = [...BYZANTINE_BEHAVIORS, 'mixed'];
/** What the swarm draws from (flood-ahead runs only when asked for). */
const DRAWN_CHOICES: readonly BehaviorChoice[] = [...DRAWN_BEHAVIORS, 'mixed'];

export interface SimConfig {
  readonly validators: number;
  readonly seed: number;
  /** Every honest node must commit this many heights. */
  readonly heights: number;
  readonly topology: TopologyName;
  readonly faults: FaultProfile;
  /** Byzantine validators (keys); with twins each gets a second node. */
  readonly byzantine: number;
  readonly behavior: BehaviorChoice;
  readonly crypto: CryptoScheme;
  readonly memoize: boolean;
  /** Transactions each proposer makes up for its block (0: empty blocks). */
  readonly txsPerBlock: number;
  /** Record the messages of this height for a timeline. */
  readonly timelineHeight?: number;
  /** The application of each node; the trivial hash-chain app when absent. */
  readonly app?: AppFactory;
  /** Stop at the first safety violation (default true). */
  readonly stopOnViolation?: boolean;
}

export const DEFAULT_CONFIG: SimConfig = {
  validators: 4,
  seed: 1,
  heights: 20,
  topology: 'one-dc',
  faults: 'none',
  byzantine: 0,
  behavior: 'mixed',
  crypto: 'fast',
  memoize: true,
  txsPerBlock: 1,
};

export class SimConfigError extends ZommaError<'BadSimConfig'> {
  constructor(message: string) {
    super('BadSimConfig', message);
  }
}

/** The largest f with 3f < n: how many Byzantine validators the protocol tolerates. */
export function faultsTolerated(validators: number): number {
  return Math.floor((validators - 1) / 3);
}

export function checkConfig(c: SimConfig): void {
  const int = (name: string, x: number, lo: number, hi: number) => {
    if (!Number.isSafeInteger(x) || x < lo || x > hi) {
      throw new SimConfigError(`${name} must be an integer in [${lo}, ${hi}], got ${x}`);
    }
  };
  int('validators', c.validators, 1, SIM_VALIDATORS_MAX);
  int('seed', c.seed, 0, Number.MAX_SAFE_INTEGER);
  int('heights', c.heights, 1, SIM_HEIGHTS_MAX);
  int('byzantine', c.byzantine, 0, c.validators);
  int('txsPerBlock', c.txsPerBlock, 0, 1_000);
  if (!TOPOLOGIES.includes(c.topology)) throw new SimConfigError(`unknown topology ${c.topology}`);
  if (!FAULT_PROFILES.includes(c.faults)) throw new SimConfigError(`unknown faults ${c.faults}`);
  if (!BEHAVIOR_CHOICES.includes(c.behavior)) {
    throw new SimConfigError(`unknown behavior ${c.behavior}`);
  }
  if (c.timelineHeight !== undefined) int('timelineHeight', c.timelineHeight, 1, c.heights);
}

/** Step timeouts sized to the topology: a few one-way delays, so a healthy round never times out. */
export function timeoutsFor(topology: TopologyName): TimeoutConfig {
  if (topology === 'one-dc') {
    return {
      proposeMs: 30,
      prevoteMs: 15,
      precommitMs: 15,
      deltaMs: 10,
      maxMs: 1_000,
      gossipMs: 100,
    };
  }
  return {
    proposeMs: 1_000,
    prevoteMs: 500,
    precommitMs: 500,
    deltaMs: 250,
    maxMs: 5_000,
    gossipMs: 1_000,
  };
}

/**
 * The options of one swarm seed, drawn from the seed itself (TigerBeetle's
 * swarm testing: each seed gets a different mix, so rare combinations
 * happen somewhere). Byzantine validators stay within f: the swarm looks for
 * bugs, not for the expected break beyond f.
 */
/** The fewest heights a swarm's seed draws (the CLI refuses a lower --heights). */
export const SWARM_HEIGHTS_MIN = 3;

export function swarmConfig(seed: number, heightsMax: number): SimConfig {
  const prng = new Prng(BigInt(seed) ^ 0x5_7a_4an);
  const validators = prng.pick([1, 2, 3, 4, 4, 4, 5, 7, 10]);
  const f = faultsTolerated(validators);
  const config: SimConfig = {
    ...DEFAULT_CONFIG,
    seed,
    validators,
    heights: prng.between(Math.min(SWARM_HEIGHTS_MIN, heightsMax), heightsMax),
    topology: prng.chance(1, 4) ? '4-continents' : 'one-dc',
    faults: prng.pick(FAULT_PROFILES),
    byzantine: f === 0 ? 0 : prng.int(f + 1),
    behavior: prng.pick(DRAWN_CHOICES),
    txsPerBlock: prng.int(3),
  };
  // Drawn last, so every other option of a seed stays what it was before
  // these behaviours existed; a third of the seeds with Byzantine validators
  // take one of them instead.
  if (config.byzantine > 0 && prng.chance(1, 3)) {
    return { ...config, behavior: prng.pick(LATER_DRAWN_BEHAVIORS) };
  }
  return config;
}

/** The command that replays a run exactly. */
export function replayCommand(c: SimConfig): string {
  const parts = [
    'zomma sim',
    `--validators ${c.validators}`,
    `--seed ${c.seed}`,
    `--heights ${c.heights}`,
    `--topology ${c.topology}`,
    `--faults ${c.faults}`,
    `--byzantine ${c.byzantine}`,
    // Without Byzantine validators no behaviour is played (and the CLI refuses one).
    ...(c.byzantine > 0 ? [`--behavior ${c.behavior}`] : []),
    `--txs ${c.txsPerBlock}`,
  ];
  if (c.crypto !== 'fast') parts.push(`--crypto ${c.crypto}`);
  if (!c.memoize) parts.push('--no-memo');
  return parts.join(' ');
}
