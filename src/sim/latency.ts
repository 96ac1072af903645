// Latency: the analytic lower bound of a height's commit from a latency
// matrix, and the latency report of a topology — time to finality per
// validator location, and the window during which a price observed at one
// location is known to some validators but not yet final.

import { assert } from '../lib/assert.ts';
import { Prng } from '../lib/prng.ts';
import { utf8 } from '../lib/bytes.ts';
import { DEFAULT_CONFIG } from './config.ts';
import { Simulator } from './simulator.ts';
import type { LatencySample } from './simulator.ts';
import { buildTopology } from './topology.ts';
import type { Topology, TopologyName } from './topology.ts';

/**
 * The earliest each validator can commit a height whose proposer starts at
 * time 0, with the protocol's own message pattern and zero processing time:
 * the proposal reaches validator i at d(p, i); j prevotes on receipt; i has
 * 2/3+ of the power's prevotes at the time the quorum-th arrives (its own at
 * once); j precommits then; i commits when 2/3+ precommits have arrived.
 */
export function analyticCommitUs(
  latencyUs: readonly (readonly number[])[],
  powers: readonly number[],
  proposer: number,
): number[] {
  const n = latencyUs.length;
  assert(powers.length === n && proposer >= 0 && proposer < n, 'one power per node');
  const proposalUs = latencyUs[proposer]!.slice();
  const prevoteUs = quorumArrivals(latencyUs, powers, proposalUs);
  const precommitSentUs = prevoteUs.map((t, i) => Math.max(t, proposalUs[i]!));
  const commitUs = quorumArrivals(latencyUs, powers, precommitSentUs);
  return commitUs.map((t, i) => Math.max(t, proposalUs[i]!));
}

/** For each receiver, the time by which messages sent at sentUs[j] from every j carry more than 2/3 of the power. */
function quorumArrivals(
  latencyUs: readonly (readonly number[])[],
  powers: readonly number[],
  sentUs: readonly number[],
): number[] {
  const n = latencyUs.length;
  let total = 0;
  for (const p of powers) total += p;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const arrivals = sentUs.map((t, j) => ({ atUs: t + latencyUs[j]![i]!, power: powers[j]! }));
    arrivals.sort((a, b) => a.atUs - b.atUs);
    let power = 0;
    let at = Infinity;
    for (const a of arrivals) {
      power += a.power;
      if (3 * power > 2 * total) {
        at = a.atUs;
        break;
      }
    }
    out.push(at);
  }
  return out;
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = values.slice().sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** The bound for each measured sample (same height's proposer, same node). */
export function boundsFor(topology: Topology, samples: readonly LatencySample[]): number[] {
  const powers = topology.latencyUs.map(() => 1);
  const cache = new Map<number, number[]>();
  return samples.map((s) => {
    let bound = cache.get(s.proposer);
    if (bound === undefined) {
      bound = analyticCommitUs(topology.latencyUs, powers, s.proposer);
      cache.set(s.proposer, bound);
    }
    return bound[s.node]!;
  });
}

export interface SiteLatency {
  readonly site: string;
  readonly validators: number;
  /** Time to finality of the validators at this site, ms: measured p50/p99, and the analytic bound's p50. */
  readonly finalityMs: { readonly p50: number; readonly p99: number; readonly boundP50: number };
  /** For prices observed here: until the first validator has them final (known somewhere, final nowhere). */
  readonly knownNotFinalMs: { readonly p50: number; readonly p99: number };
  /** For prices observed here: until every validator has them final. */
  readonly finalEverywhereMs: { readonly p50: number; readonly p99: number };
  /** How long before the first finality the farthest validator hears of the price (gossip only). */
  readonly gossipMs: number;
}

export interface LatencyReport {
  readonly topology: TopologyName;
  readonly validators: number;
  readonly heights: number;
  readonly observations: number;
  readonly sites: SiteLatency[];
  readonly commitLatencyMs: {
    readonly p50: number;
    readonly p99: number;
    readonly boundP50: number;
  };
}

/**
 * Runs a fault-free simulation of the topology and injects price
 * observations (as transactions) at every validator location at seeded
 * random times; each is gossiped to all validators and final once the block
 * holding it commits.
 */
export function latencyReport(
  topologyName: TopologyName,
  validators: number,
  heights: number,
  seed: number,
): LatencyReport {
  const sim = new Simulator({
    ...DEFAULT_CONFIG,
    topology: topologyName,
    validators,
    heights,
    seed,
    txsPerBlock: 0,
  });
  const topology = sim.topology;
  const powers = topology.latencyUs.map(() => 1);
  // Observations spread over the first 80% of the run's expected length.
  let boundMaxUs = 0;
  for (let p = 0; p < validators; p++) {
    for (const t of analyticCommitUs(topology.latencyUs, powers, p))
      boundMaxUs = Math.max(boundMaxUs, t);
  }
  const windowUs = Math.floor((heights * boundMaxUs * 8) / 10);
  const prng = new Prng(BigInt(seed) ^ 0x1a7e_9c1n);
  const observations: { origin: number; atUs: number; finals: number[] }[] = [];
  const byTx = new Map<string, number>();
  const perNode = 8;
  for (let node = 0; node < validators; node++) {
    for (let k = 0; k < perNode; k++) {
      const atUs = prng.int(Math.max(1, windowUs));
      const text = `price at ${topology.siteOf[node]} node ${node} #${k}`;
      byTx.set(text, observations.length);
      observations.push({ origin: node, atUs, finals: [] });
      sim.submitTx(node, utf8(text), atUs);
    }
  }
  const decoder = new TextDecoder();
  sim.onTxCommitted = (tx, _node, atUs) => {
    const index = byTx.get(decoder.decode(tx));
    if (index !== undefined) observations[index]!.finals.push(atUs);
  };
  const result = sim.run();
  const bounds = boundsFor(topology, result.latencySamples);
  const ms = (us: number) => Math.round(us / 10) / 100;
  const sites: SiteLatency[] = [];
  for (const site of topology.sites) {
    const nodes = topology.siteOf.map((s, i) => (s === site ? i : -1)).filter((i) => i >= 0);
    if (nodes.length === 0) continue;
    const samples = result.latencySamples.filter((s) => nodes.includes(s.node));
    const siteBounds = bounds.filter((_, i) => nodes.includes(result.latencySamples[i]!.node));
    const mine = observations.filter((o) => nodes.includes(o.origin) && o.finals.length > 0);
    const first = mine.map((o) => Math.min(...o.finals) - o.atUs);
    const all = mine.map((o) => Math.max(...o.finals) - o.atUs);
    const gossip = Math.max(...nodes.map((i) => Math.max(...topology.latencyUs[i]!)));
    sites.push({
      site,
      validators: nodes.length,
      finalityMs: {
        p50: ms(
          percentile(
            samples.map((s) => s.latencyUs),
            50,
          ),
        ),
        p99: ms(
          percentile(
            samples.map((s) => s.latencyUs),
            99,
          ),
        ),
        boundP50: ms(percentile(siteBounds, 50)),
      },
      knownNotFinalMs: { p50: ms(percentile(first, 50)), p99: ms(percentile(first, 99)) },
      finalEverywhereMs: { p50: ms(percentile(all, 50)), p99: ms(percentile(all, 99)) },
      gossipMs: ms(gossip),
    });
  }
  return {
    topology: topologyName,
    validators,
    heights: result.heightsCommitted,
    observations: observations.length,
    sites,
    commitLatencyMs: {
      p50: ms(percentile(result.commitLatenciesUs, 50)),
      p99: ms(percentile(result.commitLatenciesUs, 99)),
      boundP50: ms(percentile(bounds, 50)),
    },
  };
}

export { buildTopology };
