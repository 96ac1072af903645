// The fault schedule of a run, drawn from the seed for its fault profile.
// Faults happen inside a window [0, healUs); at healUs every fault stops and
// every crashed node restarts, and from then on the liveness checker expects
// progress. Twins always start split by a partition (each copy with its half
// of the honest nodes), the setting in which two copies of a key can do harm.

import type { Prng } from '../lib/prng.ts';
import { PPM } from './network.ts';
import type { PartitionKind } from './network.ts';
import type { Simulator } from './simulator.ts';
import { maxLatencyUs } from './topology.ts';

/** A short run still gets a fault window of a few heights. */
const FAULT_WINDOW_EXTRA_HEIGHTS = 10;

export function scheduleFaults(sim: Simulator, prng: Prng, twins: boolean): number {
  const profile = sim.config.faults;
  const n = sim.nodes.length;
  // About how long a healthy height takes; the window covers a part of the run's heights.
  const heightUs = 4 * maxLatencyUs(sim.topology) + 1_000;
  const windowUs = (sim.config.heights + FAULT_WINDOW_EXTRA_HEIGHTS) * heightUs;
  const healUs =
    profile === 'none' && !twins ? 0 : Math.floor((windowUs * prng.between(30, 80)) / 100);
  const when = () => prng.int(Math.max(1, Math.floor((healUs * 3) / 4)));
  const until = (start: number) =>
    Math.min(healUs, start + 1 + prng.int(Math.max(1, healUs - start)));

  if (twins) splitTwins(sim, healUs);
  if (profile === 'loss' || profile === 'chaos') {
    const net = sim.network;
    const start = when();
    sim.at(start, 'lossy network', () => {
      net.lossPpm = prng.between(1, 20) * 10_000;
      net.duplicatePpm = prng.between(0, 5) * 10_000;
      net.reorderPpm = prng.between(0, 20) * 10_000;
      net.reorderMaxUs = 5 * maxLatencyUs(sim.topology);
    });
  }
  if (profile === 'partition' || profile === 'chaos') {
    const count = 1 + prng.int(3);
    for (let i = 0; i < count; i++) schedulePartition(sim, prng, n, when(), until);
    if (prng.chance(1, 2)) {
      const start = when();
      const node = prng.int(n);
      const factor = prng.between(2, 20);
      const end = until(start);
      sim.at(start, `clog node ${node} x${factor}`, () => sim.network.clog(node, factor, end));
    }
  }
  if (profile === 'crash' || profile === 'chaos') {
    const count = 1 + prng.int(3);
    for (let i = 0; i < count; i++) {
      const node = prng.int(n);
      const start = when();
      const end = until(start);
      const midway = prng.chance(1, 2) ? 1 + prng.int(8) : 0;
      const torn = prng.chance(1, 2);
      if (midway > 0) {
        sim.at(start, `crash node ${node} after ${midway} effects`, () =>
          sim.crashMidway(node, midway),
        );
      } else {
        sim.at(start, `crash node ${node}`, () => sim.crash(node, torn));
      }
      sim.at(end, `restart node ${node}`, () => sim.restart(node));
    }
    if (prng.chance(1, 2)) {
      const node = prng.int(n);
      const start = when();
      const end = until(start);
      sim.at(start, `pause node ${node}`, () => sim.pause(node, end));
    }
  }
  if (healUs > 0) sim.at(healUs, 'heal', () => sim.healAll());
  return healUs;
}

function schedulePartition(
  sim: Simulator,
  prng: Prng,
  n: number,
  start: number,
  until: (start: number) => number,
): void {
  const kind = prng.pick<PartitionKind>(['symmetric', 'asymmetric', 'one-way']);
  const nodes = prng.shuffle(Array.from({ length: n }, (_, i) => i));
  const cut = 1 + prng.int(Math.max(1, n - 1));
  const a = kind === 'one-way' ? nodes.slice(0, 1) : nodes.slice(0, cut);
  const b = kind === 'one-way' ? nodes.slice(1, 2) : nodes.slice(cut);
  const end = until(start);
  sim.at(start, `${kind} partition ${a.join(',')} | ${b.join(',')}`, () =>
    sim.network.partition({ kind, a, b, untilUs: end }),
  );
}

/** Each twin pair split across two sides, with the honest nodes shared out between them. */
function splitTwins(sim: Simulator, healUs: number): void {
  const sideA: number[] = [];
  const sideB: number[] = [];
  const v = sim.config.validators;
  for (const node of sim.nodes) {
    if (node.index >= v) sideB.push(node.index);
    else if (node.behavior === 'twins') sideA.push(node.index);
  }
  const honest = sim.nodes.filter((x) => x.behavior === null).map((x) => x.index);
  const half = Math.floor(honest.length / 2);
  sideA.push(...honest.slice(0, half));
  sideB.push(...honest.slice(half));
  sim.network.partition({ kind: 'symmetric', a: sideA, b: sideB, untilUs: healUs });
}

export { PPM };
