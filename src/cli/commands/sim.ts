// `zomma sim`: one seeded simulation, a swarm of seeds, a height's timeline,
// or a topology's latency report (docs/simulator.md).

import { parseArgs } from 'node:util';
import {
  type Command,
  type CommandOptions,
  type Io,
  UsageError,
  checkFlagFile,
  writeFlagFile,
} from '../io.ts';
import { SIM_HEIGHTS_MAX, SIM_SWARM_SEEDS_MAX } from '../../lib/limits.ts';
import {
  BEHAVIOR_CHOICES,
  DEFAULT_CONFIG,
  FAULT_PROFILES,
  SWARM_HEIGHTS_MIN,
  TOPOLOGIES,
  checkConfig,
  faultsTolerated,
  latencyReport,
  percentile,
  runSwarm,
  simulate,
  timelineHtml,
  timelineText,
} from '../../sim/index.ts';
import type {
  BehaviorChoice,
  FaultProfile,
  LatencyReport,
  SimConfig,
  SimResult,
  SwarmSummary,
  TopologyName,
} from '../../sim/index.ts';

const USAGE = `zomma sim --validators N --seed S --heights H [--topology one-dc|4-continents]
          [--faults none|loss|partition|crash|chaos] [--byzantine K] [--json]
       zomma sim --swarm --seeds K [--time-budget SECONDS] [--json]
       zomma sim … --timeline HEIGHT [--html FILE]
       zomma sim --latency-report [--topology …] [--validators N] [--json]

  --validators N     validators (default 4)
  --seed S           the seed (default 1); the first seed of a swarm
  --heights H        heights every honest node must commit (default 20; a swarm draws up to H, default 12)
  --topology T       one-dc (0.2-1 ms links) or 4-continents (Virginia, Frankfurt, Tokyo, Sao Paulo)
  --faults F         none, loss (loss, duplication, reordering), partition (partitions, clogging),
                     crash (crashes losing the unsynced WAL tail, restarts, pauses), chaos (all)
  --byzantine K      Byzantine validators (the last K); beyond f = floor((N-1)/3) safety may break
  --behavior B       twins, equivocate, double-vote, silent, flood-ahead, time-skew,
                     bad-extension, lying-pol, amnesia, commit-trim, withhold, catchup-forge,
                     or mixed
                     (one of the first four drawn per validator; default)
  --txs T            made-up transactions per proposal (default 1; 0 for empty blocks)
  --crypto C         fast (keyed hash, default) or ed25519
  --no-memo          verify every signature on every replica (no memo across replicas)
  --swarm            run many seeds, each with options drawn from the seed
  --seeds K          seeds in the swarm (default 100)
  --time-budget S    stop the swarm after S seconds of wall time
  --timeline HEIGHT  draw the messages of one height, a column per validator
  --html FILE        with --timeline: write an HTML page with an SVG sequence diagram
  --latency-report   time to finality per location and the known-but-not-final window
  --json             print one JSON object

A run that breaks a checker exits 1 and prints the command that replays it.`;

function integer(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} must be a non-negative integer`);
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new UsageError(`--${name} is too large`);
  return n;
}

function oneOf<T extends string>(
  value: string | undefined,
  name: string,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  const found = allowed.find((a) => a === value);
  if (found === undefined) throw new UsageError(`--${name} must be one of ${allowed.join(', ')}`);
  return found;
}

/** Options a mode does not read: given anyway, they would be silently ignored (a swarm draws its own faults). */
function refuse(values: Record<string, unknown>, mode: string, names: readonly string[]): void {
  for (const name of names) {
    if (values[name] !== undefined) throw new UsageError(`--${name} does not apply to ${mode}`);
  }
}

/** Percentiles of the commit latencies; null with no commit at all (0 ms would read as instant commits). */
function latencyMs(latenciesUs: readonly number[]): { p50: number | null; p99: number | null } {
  if (latenciesUs.length === 0) return { p50: null, p99: null };
  return {
    p50: Math.round(percentile(latenciesUs, 50) / 10) / 100,
    p99: Math.round(percentile(latenciesUs, 99) / 10) / 100,
  };
}

/**
 * More Byzantine validators than f: the protocol promises no safety, and the
 * simulator checks no liveness, evidence or jailing (it owes none), so a
 * liveness count of 0 means nothing was checked, not that the chain was live.
 */
function beyondF(c: SimConfig): { f: number; beyond: boolean } {
  const f = faultsTolerated(c.validators);
  return { f, beyond: c.byzantine > f };
}

function beyondFNote(c: SimConfig): string {
  const { f } = beyondF(c);
  return `byzantine ${c.byzantine} > f = ${f} of ${c.validators} validators: safety is not guaranteed; liveness, evidence and jailing not checked`;
}

function runJson(r: SimResult): Record<string, unknown> {
  const { f, beyond } = beyondF(r.config);
  return {
    seeds_run: 1,
    seed: r.config.seed,
    heights_committed: r.heightsCommitted,
    safety_violations: r.safetyViolations,
    liveness_violations: r.livenessViolations,
    f,
    beyond_f: beyond,
    violations: r.violations.map((v) => ({
      kind: v.kind,
      at_ms: Math.floor(v.atUs / 1000),
      message: v.message,
    })),
    rounds_per_height: r.roundsPerHeight,
    commit_latency_ms: latencyMs(r.commitLatenciesUs),
    trace_hash: r.traceHash,
    simulated_ms: Math.floor(r.simulatedUs / 1000),
    events: r.eventsFired,
    signatures: { verify_calls: r.verify.calls, computed: r.verify.computed },
    network: r.network,
    evidence: r.evidence,
    crashes: r.crashes,
    replay: r.replay,
    // Asked for with --timeline: the recorded height's messages, which the
    // text form draws (times in simulated µs; `to` -1 for a commit, timeout
    // or evidence of `from` alone, `arrived_us` -1 for a lost message).
    ...(r.config.timelineHeight === undefined
      ? {}
      : {
          timeline: {
            height: r.config.timelineHeight,
            entries: r.timeline.map((e) => ({
              kind: e.kind,
              from: e.from,
              to: e.to,
              round: e.round,
              sent_us: e.sentUs,
              arrived_us: e.arrivedUs,
              value: e.value,
            })),
          },
        }),
  };
}

function roundsText(rounds: Record<string, number>): string {
  const entries = Object.entries(rounds);
  if (entries.length === 0) return 'none (no height committed)';
  return entries.map(([k, v]) => `${k}: ${v}`).join(', ');
}

function latencyLine(lat: { p50: number | null; p99: number | null }): string {
  if (lat.p50 === null) return 'commit latency      none (no commit timed)';
  return `commit latency      p50 ${lat.p50} ms, p99 ${lat.p99} ms (simulated)`;
}

function printRun(io: Io, r: SimResult, json: boolean): void {
  if (json) return io.out(JSON.stringify(runJson(r)));
  const c = r.config;
  const lat = latencyMs(r.commitLatenciesUs);
  const beyond = beyondF(c).beyond;
  io.out(
    [
      `${c.validators} validators (${r.nodes} nodes), ${c.topology}, faults ${c.faults}, byzantine ${c.byzantine} (${c.behavior}), seed ${c.seed}`,
      `heights committed   ${r.heightsCommitted}`,
      `rounds per height   ${roundsText(r.roundsPerHeight)}`,
      latencyLine(lat),
      `simulated time      ${(r.simulatedUs / 1e6).toFixed(3)} s, ${r.eventsFired} events`,
      `signatures          ${r.verify.calls} checks, ${r.verify.computed} computed`,
      `network             ${r.network.sent} sent, ${r.network.lost} lost, ${r.network.blocked} partitioned, ${r.network.duplicated} duplicated`,
      `crashes             ${r.crashes.crashes} (${r.crashes.walRecordsLost} unsynced WAL records lost), ${r.crashes.restarts} restarts`,
      `evidence            ${r.evidence.made} double votes forged, ${r.evidence.seen} seen, ${r.evidence.committed} committed`,
      beyond
        ? `violations          safety ${r.safetyViolations}, liveness not checked`
        : `violations          safety ${r.safetyViolations}, liveness ${r.livenessViolations}`,
      ...(beyond ? [`beyond f            ${beyondFNote(c)}`] : []),
      `trace hash          ${r.traceHash}`,
    ].join('\n'),
  );
}

function reportFailures(
  io: Io,
  failures: { replay: string; violations: SimResult['violations'] }[],
): void {
  for (const f of failures) {
    for (const v of f.violations)
      io.err(`${v.kind} violation at ${Math.floor(v.atUs / 1000)} ms: ${v.message}`);
    io.err(`replay: ${f.replay}`);
  }
}

function swarmJson(s: SwarmSummary): Record<string, unknown> {
  return {
    seeds_run: s.seedsRun,
    heights_committed: s.heightsCommitted,
    safety_violations: s.safetyViolations,
    liveness_violations: s.livenessViolations,
    rounds_per_height: s.roundsPerHeight,
    commit_latency_ms: latencyMs(s.commitLatenciesUs),
    trace_hash: s.traceHash,
    failures: s.failures.map((f) => ({
      seed: f.seed,
      replay: f.replay,
      violations: f.violations.map((v) => `${v.kind}: ${v.message}`),
    })),
  };
}

function printLatency(io: Io, report: LatencyReport, json: boolean): void {
  if (json) return io.out(JSON.stringify(report));
  const lines = [
    `${report.topology}, ${report.validators} validators, ${report.heights} heights, ${report.observations} price observations`,
    `commit latency p50 ${report.commitLatencyMs.p50} ms, p99 ${report.commitLatencyMs.p99} ms; analytic lower bound p50 ${report.commitLatencyMs.boundP50} ms`,
    '',
    'site          vals  finality p50/p99 (bound)   known-not-final p50/p99   final-everywhere p50/p99',
  ];
  for (const s of report.sites) {
    lines.push(
      `${s.site.padEnd(13)} ${String(s.validators).padStart(4)}  ${`${s.finalityMs.p50}/${s.finalityMs.p99} (${s.finalityMs.boundP50}) ms`.padEnd(26)} ${`${s.knownNotFinalMs.p50}/${s.knownNotFinalMs.p99} ms`.padEnd(25)} ${s.finalEverywhereMs.p50}/${s.finalEverywhereMs.p99} ms`,
    );
  }
  lines.push(
    '',
    'known-not-final: from a price observed at the site until the first validator holds it final;',
    'during that window validators that heard it can act on it while the chain cannot.',
  );
  io.out(lines.join('\n'));
}

/** What run() gives util.parseArgs; main() names the nearest of them for an unknown option. */
const OPTIONS = {
  validators: { type: 'string' },
  seed: { type: 'string' },
  heights: { type: 'string' },
  topology: { type: 'string' },
  faults: { type: 'string' },
  byzantine: { type: 'string' },
  behavior: { type: 'string' },
  txs: { type: 'string' },
  crypto: { type: 'string' },
  'no-memo': { type: 'boolean' },
  swarm: { type: 'boolean' },
  seeds: { type: 'string' },
  'time-budget': { type: 'string' },
  timeline: { type: 'string' },
  html: { type: 'string' },
  'latency-report': { type: 'boolean' },
  json: { type: 'boolean' },
} as const satisfies CommandOptions;

export const command: Command = {
  name: 'sim',
  options: OPTIONS,
  summary: 'deterministic simulation of the validators: faults, Byzantine nodes, checkers, swarm',
  usage: USAGE,
  async run(args, io) {
    const { values } = parseArgs({
      args,
      strict: true,
      options: OPTIONS,
    });
    const json = values.json === true;
    const topology = oneOf<TopologyName>(
      values.topology,
      'topology',
      TOPOLOGIES,
      DEFAULT_CONFIG.topology,
    );
    if (values.html !== undefined && values.timeline === undefined) {
      throw new UsageError('--html goes with --timeline HEIGHT');
    }

    if (values['latency-report'] === true) {
      refuse(values, '--latency-report', [
        'faults',
        'byzantine',
        'behavior',
        'txs',
        'crypto',
        'no-memo',
        'swarm',
        'seeds',
        'time-budget',
        'timeline',
      ]);
      const validators = integer(values.validators, 'validators', 4);
      if (validators < 1 || validators > 64)
        throw new UsageError('--validators must be 1 to 64 here');
      const heights = integer(values.heights, 'heights', 200);
      printLatency(
        io,
        latencyReport(topology, validators, heights, integer(values.seed, 'seed', 1)),
        json,
      );
      return 0;
    }

    const override: Partial<SimConfig> = {
      crypto: oneOf(values.crypto, 'crypto', ['fast', 'ed25519'] as const, 'fast'),
      memoize: values['no-memo'] !== true,
    };

    if (values.swarm === true) {
      // A swarm draws these per seed (swarmConfig).
      refuse(values, '--swarm (it draws them per seed)', [
        'validators',
        'topology',
        'faults',
        'byzantine',
        'behavior',
        'txs',
        'timeline',
      ]);
      const seeds = integer(values.seeds, 'seeds', 100);
      if (seeds < 1 || seeds > SIM_SWARM_SEEDS_MAX)
        throw new UsageError(`--seeds must be 1 to ${SIM_SWARM_SEEDS_MAX}`);
      const firstSeed = integer(values.seed, 'seed', 1);
      // Checked here, not at the seed that passes it after the others have run.
      if (firstSeed > Number.MAX_SAFE_INTEGER - (seeds - 1))
        throw new UsageError(`--seed: the last seed, --seed + --seeds - 1, is too large`);
      const budgetS = integer(values['time-budget'], 'time-budget', 0);
      const heightsMax = integer(values.heights, 'heights', 12);
      // A swarm draws each seed's heights from 3 up to this: fewer says nothing about liveness.
      if (heightsMax < SWARM_HEIGHTS_MIN || heightsMax > SIM_HEIGHTS_MAX)
        throw new UsageError(
          `--heights of a swarm must be ${SWARM_HEIGHTS_MIN} to ${SIM_HEIGHTS_MAX} (each seed draws up to it, at least ${SWARM_HEIGHTS_MIN})`,
        );
      const start = performance.now();
      const summary = runSwarm({
        firstSeed,
        seeds,
        heightsMax,
        timeBudgetMs: budgetS === 0 ? Infinity : budgetS * 1000,
        elapsedMs: () => performance.now() - start,
        override,
      });
      if (json) io.out(JSON.stringify(swarmJson(summary)));
      else {
        const lat = latencyMs(summary.commitLatenciesUs);
        io.out(
          [
            `seeds run           ${summary.seedsRun} in ${((performance.now() - start) / 1000).toFixed(1)} s`,
            `heights committed   ${summary.heightsCommitted}`,
            `rounds per height   ${roundsText(summary.roundsPerHeight)}`,
            latencyLine(lat),
            `violations          safety ${summary.safetyViolations}, liveness ${summary.livenessViolations}`,
            `trace hash          ${summary.traceHash}`,
          ].join('\n'),
        );
      }
      reportFailures(io, summary.failures);
      return summary.failures.length === 0 ? 0 : 1;
    }

    refuse(values, 'one run (give --swarm)', ['seeds', 'time-budget']);
    const heights = integer(values.heights, 'heights', DEFAULT_CONFIG.heights);
    const timelineHeight =
      values.timeline === undefined ? undefined : integer(values.timeline, 'timeline', 1);
    const byzantine = integer(values.byzantine, 'byzantine', 0);
    // Honest validators only: a behaviour would be silently ignored.
    if (byzantine === 0 && values.behavior !== undefined)
      throw new UsageError('--behavior needs --byzantine K of at least 1');
    const config: SimConfig = {
      ...DEFAULT_CONFIG,
      ...override,
      validators: integer(values.validators, 'validators', DEFAULT_CONFIG.validators),
      seed: integer(values.seed, 'seed', DEFAULT_CONFIG.seed),
      heights,
      topology,
      faults: oneOf<FaultProfile>(values.faults, 'faults', FAULT_PROFILES, DEFAULT_CONFIG.faults),
      byzantine,
      behavior: oneOf<BehaviorChoice>(
        values.behavior,
        'behavior',
        BEHAVIOR_CHOICES,
        DEFAULT_CONFIG.behavior,
      ),
      txsPerBlock: integer(values.txs, 'txs', DEFAULT_CONFIG.txsPerBlock),
      ...(timelineHeight === undefined ? {} : { timelineHeight }),
    };
    checkConfig(config);
    // Before the run: a path that cannot be written would otherwise show only after it.
    if (values.html !== undefined) checkFlagFile('html', values.html);
    const result = simulate(config);
    if (timelineHeight !== undefined) {
      if (values.html !== undefined) {
        const title = `${result.replay} --timeline ${timelineHeight}`;
        writeFlagFile(
          'html',
          values.html,
          timelineHtml(result.timeline, result.nodes, timelineHeight, title),
        );
      }
      if (!json) io.out(timelineText(result.timeline, result.nodes, timelineHeight));
    }
    printRun(io, result, json);
    if (result.violations.length > 0) {
      if (beyondF(config).beyond) io.err(beyondFNote(config));
      reportFailures(io, [{ replay: result.replay, violations: result.violations }]);
      return 1;
    }
    return 0;
  },
};
