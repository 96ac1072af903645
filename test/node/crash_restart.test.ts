// Four whole nodes (replica, loop, exchange, results) crashed at chosen points
// of a height and restarted from what their disks hold (crash_cluster.ts):
// every signed vote and proposal ever released is the only one of its
// (signer, height, round, step); every node executes the same blocks with the
// same appHash; locks and the proof-of-lock rule hold across restarts; what a
// node published comes back; injected equivocation is committed once; and the
// nodes catch up once the faults stop. Bounded: a few seeds, a few seconds.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode } from '../../src/codec/wire.ts';
import { VOTE_TYPE, messageCodec, walRecordCodec } from '../../src/consensus/index.ts';
import { toHex } from '../../src/lib/bytes.ts';
import type { CrashClusterOptions, CrashRun } from './crash_cluster.ts';
import { CrashCluster, POINT_KINDS, runCrashCluster } from './crash_cluster.ts';

function describe(run: CrashRun): string {
  return run.findings.map((f) => `${f.atMs}: ${f.what}`).join('\n');
}

const BASE: Omit<CrashClusterOptions, 'seed'> = {
  crashes: 14,
  maxDown: 1,
  faultWindowMs: 4_000,
  downMsMax: 300,
  commitPauseMs: 40,
  snapshotEveryHeights: 2,
  snapshotsKept: 2,
  walRotateBytes: 3_000,
  crashOnRestartPerMille: 300,
};

const SEEDS: readonly (Omit<CrashClusterOptions, keyof typeof BASE> &
  Partial<CrashClusterOptions>)[] = [
  { seed: 11, equivocations: 2, storms: 2 },
  { seed: 12, maxDown: 2, lossRate: 0.05, walRotateBytes: 1 },
  { seed: 13, oracle: true, snapshotsKept: 1, proposeWaitMs: 30 },
];

for (const seed of SEEDS) {
  test(`crash-restart driver, model disk (seed ${seed.seed}): no double sign, one chain, nothing published lost`, () => {
    const run = runCrashCluster({ ...BASE, ...seed });
    const { stats } = run.cluster;
    assert.equal(run.findings.length, 0, describe(run));
    assert.ok(stats.crashes >= 5, `only ${stats.crashes} crashes`);
    assert.ok(
      stats.restarts >= stats.crashes - 1,
      `${stats.restarts} restarts of ${stats.crashes}`,
    );
    assert.ok(run.cluster.chain.size >= 20, `only ${run.cluster.chain.size} heights`);
    if ((seed.equivocations ?? 0) > 0) {
      assert.ok(run.cluster.evidenceCommitted.size > 0, 'the equivocation was committed');
      assert.equal(run.cluster.jailings.size, 1, 'its validator was jailed, once');
    }
  });
}

test('crash-restart driver, real files (torn WAL tails, unbacked checkpoints): the same holds', () => {
  const run = runCrashCluster({ ...BASE, seed: 21, backend: 'file', maxDown: 2 });
  const { stats } = run.cluster;
  assert.equal(run.findings.length, 0, describe(run));
  assert.ok(stats.crashes >= 5, `only ${stats.crashes} crashes`);
  assert.ok(stats.walTornBytes > 0, 'a torn WAL tail was cut at a restart');
});

for (const backend of ['memory', 'file'] as const) {
  test(`every crash point, each side, each kind of loss (${backend}): a node crashed there restarts and the checks hold`, () => {
    // In turn on the four nodes, so one is down at a time; with snapshots at
    // every height, blocks pruned and the WAL rotated at each checkpoint,
    // every point is passed each height.
    const cluster = new CrashCluster({
      seed: 41,
      backend,
      crashes: 0,
      maxDown: 1,
      faultWindowMs: 0,
      downMsMax: 40,
      commitPauseMs: 20,
      snapshotEveryHeights: 1,
      snapshotsKept: 2,
      blocksKept: 10,
      walRotateBytes: 1,
    });
    const modes = ['kill', 'power', 'mixed', 'walFirst'] as const;
    try {
      for (let i = 0; i < 4; i++) cluster.start(i);
      assert.ok(
        cluster.run(() => cluster.minHeight() >= 12, 60_000),
        'height 12',
      );
      let turn = 0;
      for (const kind of POINT_KINDS) {
        for (const side of ['before', 'after'] as const) {
          const index = turn % 4;
          const member = cluster.members[index]!;
          const incarnation = member.incarnations;
          cluster.armAt(index, kind, side, modes[turn % modes.length]!);
          turn++;
          assert.ok(
            cluster.run(() => member.incarnations > incarnation && member.node !== null, 30_000),
            `${kind}/${side}: crashed and restarted (${describe({ cluster, findings: cluster.findings, height: 0 })})`,
          );
          assert.equal(cluster.stats.byPoint.get(`${kind}/${side}`), 1, `${kind}/${side} reached`);
        }
      }
      const height = cluster.chain.size;
      assert.ok(
        cluster.run(() => cluster.minHeight() >= height + 3, 60_000),
        'all follow again',
      );
      cluster.checkFinal();
      assert.deepEqual(cluster.findings, []);
    } finally {
      cluster.dispose();
    }
  });
}

test('a restart whose replay ran through a height with a lost checkpoint keeps the snapshot the next restart needs', () => {
  // Snapshots at every height, two kept, blocks pruned below ten: node 0
  // crashes just before the checkpoint of height H is written (the input of
  // its execution survives), and its replay decides and executes H again
  // without writing that checkpoint, so the WAL's last stays at H − 1. At
  // H + 1 the snapshot of H + 1 was saved and snapshots H and H + 1 kept,
  // deleting H − 1, the one a restart from that checkpoint needs; a power cut
  // before the checkpoint of H + 1 then left a node that could not start
  // (RestoreFailed: block 1 missing, the blocks below H − 9 pruned).
  const cluster = new CrashCluster({
    seed: 1,
    crashes: 0,
    maxDown: 1,
    faultWindowMs: 0,
    snapshotEveryHeights: 1,
    snapshotsKept: 2,
    blocksKept: 10,
    walRotateBytes: 10_000_000,
    commitPauseMs: 20,
    downMsMax: 1,
  });
  try {
    for (let i = 0; i < 4; i++) cluster.start(i);
    const node = cluster.members[0]!;
    assert.ok(
      cluster.run(() => cluster.minHeight() >= 15, 60_000),
      'height 15',
    );
    cluster.armAt(0, 'walCheckpoint', 'before', 'kill');
    assert.ok(
      cluster.run(() => node.incarnations === 2 && node.node !== null, 60_000),
      'restarted once',
    );
    const restarted = node.node!;
    assert.equal(restarted.loop.replica.height, restarted.app.height + 1);
    assert.ok(
      restarted.app.height > restarted.restoredFrom.snapshotHeight,
      'the replay ran through a height',
    );
    cluster.armAt(0, 'walCheckpoint', 'before', 'power');
    assert.ok(
      cluster.run(
        () => node.incarnations === 3 && (node.node !== null || cluster.findings.length > 0),
        60_000,
      ),
      'crashed again',
    );
    assert.deepEqual(cluster.findings, []);
    const height = cluster.chain.size;
    assert.ok(
      cluster.run(() => cluster.minHeight() >= height + 3, 60_000),
      'node 0 follows again',
    );
  } finally {
    cluster.dispose();
  }
});

test('a WAL whose last record is a signed message never sent: the restart sends that very one', () => {
  const cluster = new CrashCluster({
    seed: 51,
    crashes: 0,
    maxDown: 1,
    faultWindowMs: 0,
    commitPauseMs: 20,
    downMsMax: 10,
  });
  try {
    for (let i = 0; i < 4; i++) cluster.start(i);
    assert.ok(
      cluster.run(() => cluster.minHeight() >= 5, 60_000),
      'height 5',
    );
    const node = cluster.members[1]!;
    // Killed right after the signed record is appended, before its sync:
    // the page cache keeps it, the message never left.
    cluster.armAt(1, 'walSigned', 'after', 'kill');
    assert.ok(
      cluster.run(() => node.life.dead, 60_000),
      'crashed',
    );
    const last = decode(walRecordCodec, node.disk.wal.records.at(-1)!);
    assert.ok(last.kind === 'signed', 'the last record is a signed message');
    const message = decode(messageCodec, last.bytes);
    const signed =
      message.kind === 'vote'
        ? {
            ...message.vote,
            step: message.vote.type === VOTE_TYPE.prevote ? 'prevote' : 'precommit',
          }
        : message.kind === 'proposal'
          ? { ...message.proposal, step: 'proposal' }
          : null;
    assert.ok(signed !== null, 'a vote or a proposal');
    const sent = (): string | null =>
      cluster.releasedSignature(1, signed.height, signed.round, signed.step);
    assert.equal(sent(), null, 'not sent');
    assert.ok(
      cluster.run(() => node.incarnations === 2 && node.node !== null, 60_000),
      'restarted',
    );
    assert.ok(
      cluster.run(() => sent() !== null, 5_000),
      'sent after the restart',
    );
    assert.equal(sent(), toHex(signed.signature), 'the very message the WAL holds');
    const height = cluster.chain.size;
    assert.ok(
      cluster.run(() => cluster.minHeight() >= height + 3, 60_000),
      'the chain goes on',
    );
    cluster.checkFinal();
    assert.deepEqual(cluster.findings, []);
  } finally {
    cluster.dispose();
  }
});
