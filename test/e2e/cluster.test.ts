// Four validators as real processes on loopback: commit and agree; survive a
// kill -9 and catch up after a restart; stop (without forking) when two of
// four are down and resume when they return; shrug off garbage on a peer port.
// Every wait is bounded by a deadline that fails the test; only the PIDs
// started here are killed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { initNetwork } from '../../src/node/init.ts';
import type { InitHome } from '../../src/node/init.ts';
import { tempDir } from '../node/helpers.ts';
import { freeBase, kill9, startNodeProcess, until } from './helpers.ts';
import type { Proc } from './helpers.ts';

const TIMEOUTS = {
  proposeMs: 600,
  prevoteMs: 300,
  precommitMs: 300,
  deltaMs: 200,
  maxMs: 4_000,
  gossipMs: 300,
};

async function status(h: InitHome): Promise<{ height: number; appHash: string } | null> {
  try {
    const res = await fetch(`http://${h.metrics}/status`, { signal: AbortSignal.timeout(1_000) });
    return (await res.json()) as { height: number; appHash: string };
  } catch {
    return null;
  }
}

async function height(h: InitHome): Promise<number> {
  return (await status(h))?.height ?? -1;
}

async function chain(h: InitHome, to: number): Promise<{ height: number; blockHash: string }[]> {
  const res = await fetch(`http://${h.metrics}/chain?from=1&to=${to}`);
  return (await res.json()) as { height: number; blockHash: string }[];
}

test('a four-process cluster: agreement, crash and catch-up, no progress without quorum, bad peer input', async () => {
  const tmp = tempDir('zomma-e2e-');
  const base = await freeBase(12);
  const { homes } = initNetwork({
    validators: 4,
    out: tmp.dir,
    basePort: base,
    genesisTimeMs: Date.now(),
    oracleSeed: 3,
    timeouts: TIMEOUTS,
    snapshotEveryHeights: 10,
    commitPauseMs: 100,
  });
  const procs: (Proc | null)[] = homes.map((h) => startNodeProcess(h.home));
  try {
    await until(
      async () => (await Promise.all(homes.map(height))).every((x) => x >= 3),
      60_000,
      'height 3 on all',
    );
    // The metrics operators read (docs/operations.md): consensus, storage and the peer transport.
    const metrics = await (await fetch(`http://${homes[0]!.metrics}/metrics`)).text();
    for (const series of [
      'zomma_height',
      'zomma_peers',
      'zomma_txs_committed_total',
      'zomma_storage_fsyncs_total{where="foreground"}',
      'zomma_peer_dropped_total',
      'zomma_peer_pings_total',
      'zomma_catchup_pruned_total',
    ]) {
      assert.ok(metrics.includes(series), `metrics has ${series}`);
    }

    // kill -9 one: the other three keep committing.
    await kill9(procs[3]!);
    procs[3] = null;
    const h0 = await height(homes[0]!);
    await until(async () => (await height(homes[0]!)) >= h0 + 5, 30_000, 'three validators commit');

    // Restart it: it catches up from the others' blocks.
    procs[3] = startNodeProcess(homes[3]!.home);
    const target = (await height(homes[0]!)) + 2;
    await until(
      async () => (await height(homes[3]!)) >= target,
      60_000,
      'the restarted validator catches up',
    );

    // Garbage on a peer port: refused by the handshake; the cluster goes on.
    await new Promise<void>((resolve) => {
      const socket = connect(Number(homes[1]!.peer.split(':')[1]), '127.0.0.1', () => {
        socket.write(Buffer.alloc(4096, 0xab));
        socket.write(Buffer.from([0xff, 0xff, 0xff, 0xff]));
      });
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
      setTimeout(() => socket.destroy(), 2_000);
    });
    const h1 = await height(homes[1]!);
    await until(async () => (await height(homes[1]!)) >= h1 + 3, 30_000, 'commits after garbage');

    // kill -9 two of four: no quorum, so no commits (at most the height already decided).
    await kill9(procs[2]!);
    await kill9(procs[3]!);
    procs[2] = procs[3] = null;
    const stuck = Math.max(await height(homes[0]!), await height(homes[1]!));
    const windowEnd = Date.now() + 3_000;
    while (Date.now() < windowEnd) {
      assert.ok((await height(homes[0]!)) <= stuck + 1, 'no progress without a quorum');
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const frozen = Math.max(await height(homes[0]!), await height(homes[1]!));

    // Restart both: progress resumes and everyone agrees on every block.
    procs[2] = startNodeProcess(homes[2]!.home);
    procs[3] = startNodeProcess(homes[3]!.home);
    await until(
      async () => (await Promise.all(homes.map(height))).every((x) => x >= frozen + 3),
      60_000,
      'progress resumes on all four',
    );
    const top = Math.min(...(await Promise.all(homes.map(height))));
    const chains = await Promise.all(homes.map((h) => chain(h, top)));
    assert.ok(chains[0]!.length >= top - 1);
    for (const c of chains.slice(1)) {
      for (const b of c) {
        const ref = chains[0]!.find((x) => x.height === b.height);
        if (ref !== undefined) assert.equal(b.blockHash, ref.blockHash, `block ${b.height}`);
      }
    }
    const statuses = await Promise.all(homes.map(status));
    assert.ok(statuses.every((s) => s !== null));
  } finally {
    for (const p of procs) if (p !== null) await kill9(p);
    tmp.remove();
  }
});
