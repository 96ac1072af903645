import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../src/lib/prng.ts';
import { DEFAULT_CONFIG, Network, Simulator, buildTopology } from '../../src/sim/index.ts';

function network(): Network {
  return new Network(buildTopology('one-dc', 4, 1), new Prng(1));
}

test('one-dc delays stay within 0.2-1 ms, and a fault-free link delivers exactly once', () => {
  const net = network();
  for (let i = 0; i < 200; i++) {
    const arrivals = net.arrivals(i % 4, (i + 1) % 4, 1_000);
    assert.equal(arrivals.length, 1);
    assert.ok(arrivals[0]! - 1_000 >= 200 && arrivals[0]! - 1_000 <= 1_000);
  }
});

test('partitions: symmetric cuts both ways, asymmetric and one-way only one, all heal on time', () => {
  const net = network();
  net.partition({ kind: 'symmetric', a: [0], b: [1], untilUs: 100 });
  net.partition({ kind: 'asymmetric', a: [2], b: [3], untilUs: 200 });
  assert.ok(net.isBlocked(0, 1, 50) && net.isBlocked(1, 0, 50));
  assert.ok(net.isBlocked(2, 3, 150) && !net.isBlocked(3, 2, 150));
  assert.ok(!net.isBlocked(0, 1, 100) && !net.isBlocked(2, 3, 200));
  assert.deepEqual(net.arrivals(2, 3, 150), []);
  net.partition({ kind: 'one-way', a: [1], b: [2], untilUs: 1_000 });
  net.heal();
  assert.ok(!net.isBlocked(1, 2, 500));
});

test('a clogged node’s links are slower for a while', () => {
  const net = network();
  const before = net.delayUs(0, 1, 0);
  net.clog(1, 50, 10_000);
  assert.ok(net.delayUs(0, 1, 5_000) >= 50 * 200);
  assert.ok(net.delayUs(1, 2, 5_000) >= 50 * 200);
  assert.ok(net.delayUs(0, 1, 10_000) <= 1_000 && before <= 1_000);
});

test('loss and duplication happen at the configured rates', () => {
  const net = network();
  net.lossPpm = 200_000;
  net.duplicatePpm = 100_000;
  let delivered = 0;
  for (let i = 0; i < 10_000; i++) delivered += net.arrivals(0, 1, 0).length;
  assert.ok(net.stats.lost > 1_700 && net.stats.lost < 2_300, String(net.stats.lost));
  assert.ok(net.stats.duplicated > 600 && net.stats.duplicated < 1_000);
  assert.equal(delivered, 10_000 - net.stats.lost + net.stats.duplicated);
});

test('a 2|2 partition stops the chain; once it heals every node commits again', () => {
  const sim = new Simulator({ ...DEFAULT_CONFIG, heights: 10, seed: 3 });
  const healUs = 3_000_000;
  sim.at(50_000, 'split', () =>
    sim.network.partition({ kind: 'symmetric', a: [0, 1], b: [2, 3], untilUs: healUs }),
  );
  let heightAtSplitEnd = -1;
  sim.at(healUs - 1, 'look', () => {
    heightAtSplitEnd = Math.max(...sim.nodes.map((n) => n.committedHeight));
  });
  let heightAtSplit = -1;
  sim.at(50_000 + 10_000, 'look', () => {
    heightAtSplit = Math.max(...sim.nodes.map((n) => n.committedHeight));
  });
  sim.healUs = healUs;
  sim.at(healUs, 'heal', () => sim.healAll());
  const r = sim.run();
  assert.deepEqual(r.violations, []);
  assert.equal(heightAtSplitEnd, heightAtSplit, 'no quorum, no commit');
  assert.ok(r.heightsCommitted >= Math.max(10, heightAtSplitEnd + 3));
  assert.ok(r.roundsPerHeight['1']! < r.heightsCommitted, 'the stuck height took rounds');
});
