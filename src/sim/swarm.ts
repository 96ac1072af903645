// Swarm testing (after TigerBeetle's VOPR swarm): many seeds, each with its
// own options drawn from the seed, so that the rare mixes of faults happen
// somewhere. Stops at a time budget; reports every failing seed with the
// command that replays it.

import { sha256 } from '../crypto/index.ts';
import { assert } from '../lib/assert.ts';
import { toHex, utf8 } from '../lib/bytes.ts';
import { swarmConfig } from './config.ts';
import type { SimConfig } from './config.ts';
import { simulate } from './simulator.ts';
import type { SimResult } from './simulator.ts';

export interface SwarmOptions {
  readonly firstSeed: number;
  readonly seeds: number;
  readonly heightsMax: number;
  /** Wall-clock budget, read through `elapsedMs` (the simulator itself never reads a clock). */
  readonly timeBudgetMs: number;
  readonly elapsedMs: () => number;
  /** Applied to every drawn config (e.g. the crypto scheme). */
  readonly override?: Partial<SimConfig>;
  readonly onResult?: (result: SimResult) => void;
}

export interface SwarmFailure {
  readonly seed: number;
  readonly replay: string;
  readonly violations: SimResult['violations'];
}

export interface SwarmSummary {
  readonly seedsRun: number;
  readonly heightsCommitted: number;
  readonly safetyViolations: number;
  readonly livenessViolations: number;
  readonly roundsPerHeight: Record<string, number>;
  readonly commitLatenciesUs: number[];
  readonly failures: SwarmFailure[];
  readonly traceHashes: string[];
  /** sha256 over the seeds' trace hashes, in order. */
  traceHash: string;
}

export function runSwarm(options: SwarmOptions): SwarmSummary {
  assert(options.seeds >= 0, 'a swarm runs zero or more seeds');
  const summary: SwarmSummary = {
    seedsRun: 0,
    heightsCommitted: 0,
    safetyViolations: 0,
    livenessViolations: 0,
    roundsPerHeight: {},
    commitLatenciesUs: [],
    failures: [],
    traceHashes: [],
    traceHash: '',
  };
  const mutable = summary as { -readonly [K in keyof SwarmSummary]: SwarmSummary[K] };
  for (let i = 0; i < options.seeds; i++) {
    if (i > 0 && options.elapsedMs() >= options.timeBudgetMs) break;
    const seed = options.firstSeed + i;
    const config = { ...swarmConfig(seed, options.heightsMax), ...options.override };
    const result = simulate(config);
    mutable.seedsRun++;
    mutable.heightsCommitted += result.heightsCommitted;
    mutable.safetyViolations += result.safetyViolations;
    mutable.livenessViolations += result.livenessViolations;
    for (const [rounds, count] of Object.entries(result.roundsPerHeight)) {
      summary.roundsPerHeight[rounds] = (summary.roundsPerHeight[rounds] ?? 0) + count;
    }
    for (const latency of result.commitLatenciesUs) summary.commitLatenciesUs.push(latency);
    summary.traceHashes.push(result.traceHash);
    if (result.violations.length > 0) {
      summary.failures.push({ seed, replay: result.replay, violations: result.violations });
    }
    options.onResult?.(result);
  }
  summary.traceHash = toHex(sha256(utf8(summary.traceHashes.join('\n'))));
  return summary;
}
