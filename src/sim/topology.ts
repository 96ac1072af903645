// Where the simulated validators sit and how long a message takes between
// them. "one-dc" is a single datacenter (0.2-1 ms one way); "4-continents"
// spreads validators round-robin over Virginia, Frankfurt, Tokyo and Sao
// Paulo, with one-way delays from the great-circle distance at two thirds of
// the speed of light (light in fibre), as the floor a real network adds to.

import { assert } from '../lib/assert.ts';
import { Prng } from '../lib/prng.ts';
import { ZommaError } from '../lib/errors.ts';

export const TOPOLOGIES = ['one-dc', '4-continents'] as const;
export type TopologyName = (typeof TOPOLOGIES)[number];

export interface Site {
  readonly name: string;
  readonly latitudeDeg: number;
  readonly longitudeDeg: number;
}

export const SITES_4_CONTINENTS: readonly Site[] = [
  { name: 'virginia', latitudeDeg: 39.04, longitudeDeg: -77.49 },
  { name: 'frankfurt', latitudeDeg: 50.11, longitudeDeg: 8.68 },
  { name: 'tokyo', latitudeDeg: 35.68, longitudeDeg: 139.69 },
  { name: 'sao-paulo', latitudeDeg: -23.55, longitudeDeg: -46.63 },
];

const EARTH_RADIUS_KM = 6371;
/** Two thirds of c in km per microsecond: light in glass fibre. */
const FIBRE_KM_PER_US = (299_792.458 * 2) / 3 / 1_000_000;
/** Two validators at one site talk through one datacenter's network. */
const SAME_SITE_US = 500;

export interface Topology {
  readonly name: TopologyName;
  /** The site of each node. */
  readonly siteOf: readonly string[];
  readonly sites: readonly string[];
  /** Base one-way delay from node i to node j, microseconds (0 on the diagonal). */
  readonly latencyUs: readonly (readonly number[])[];
  /** Largest extra random delay of one message on a link: a fraction of its base, in millionths, plus a floor. */
  readonly jitterPpm: number;
  readonly jitterFloorUs: number;
}

export class TopologyError extends ZommaError<'UnknownTopology'> {
  constructor(name: string) {
    super('UnknownTopology', `unknown topology '${name}' (one of ${TOPOLOGIES.join(', ')})`);
  }
}

export function parseTopology(name: string): TopologyName {
  const found = TOPOLOGIES.find((t) => t === name);
  if (found === undefined) throw new TopologyError(name);
  return found;
}

/** Great-circle distance (haversine), km. */
export function greatCircleKm(a: Site, b: Site): number {
  const rad = Math.PI / 180;
  const dLat = (b.latitudeDeg - a.latitudeDeg) * rad;
  const dLon = (b.longitudeDeg - a.longitudeDeg) * rad;
  const h =
    Math.sin(dLat / 2) ** 2 +
    Math.cos(a.latitudeDeg * rad) * Math.cos(b.latitudeDeg * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** One-way fibre delay for a distance, rounded to 10 µs so last-bit float differences cannot change a run. */
export function fibreDelayUs(km: number): number {
  return Math.round(km / FIBRE_KM_PER_US / 10) * 10;
}

/**
 * The topology of `nodes` nodes. `placement` names the site of each node
 * when given (twins sit at their original's site); otherwise node k sits at
 * site k mod sites.
 */
export function buildTopology(
  name: TopologyName,
  nodes: number,
  seed: number,
  placement?: readonly number[],
): Topology {
  assert(nodes >= 1, 'a topology has nodes');
  const slot = (k: number) => placement?.[k] ?? k;
  if (name === 'one-dc') {
    // Per-link base delays drawn once per seed: some racks are nearer than others.
    const prng = new Prng(BigInt(seed) ^ 0x70_70_70n);
    const latencyUs = square(nodes, (i, j) => (i === j ? 0 : prng.between(200, 800)));
    return {
      name,
      siteOf: Array.from({ length: nodes }, () => 'dc'),
      sites: ['dc'],
      latencyUs,
      jitterPpm: 0,
      jitterFloorUs: 200,
    };
  }
  const sites = SITES_4_CONTINENTS;
  const siteOf = Array.from({ length: nodes }, (_, k) => sites[slot(k) % sites.length]!);
  const latencyUs = square(nodes, (i, j) => {
    if (i === j) return 0;
    const a = siteOf[i]!;
    const b = siteOf[j]!;
    return a === b ? SAME_SITE_US : fibreDelayUs(greatCircleKm(a, b));
  });
  return {
    name,
    siteOf: siteOf.map((s) => s.name),
    sites: sites.map((s) => s.name),
    latencyUs,
    jitterPpm: 20_000,
    jitterFloorUs: 100,
  };
}

function square(n: number, f: (i: number, j: number) => number): number[][] {
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => f(i, j)));
}

/** The largest base delay of a topology (what its timeouts are sized from). */
export function maxLatencyUs(topology: Topology): number {
  let max = 0;
  for (const row of topology.latencyUs) for (const x of row) if (x > max) max = x;
  return max;
}
