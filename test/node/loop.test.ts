import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toHex, utf8 } from '../../src/lib/bytes.ts';
import { NodeLoop, lastCheckpoint } from '../../src/node/loop.ts';
import { CHANNEL, frame, unframe } from '../../src/node/framing.ts';
import { MemoryHub } from '../../src/node/network.ts';
import type { MemoryNetwork } from '../../src/node/network.ts';
import { restoreApp } from '../../src/node/restore.ts';
import { StorageError, openStorage } from '../../src/node/storage/index.ts';
import type { FileStorage } from '../../src/node/storage/index.ts';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { decode, encode } from '../../src/codec/wire.ts';
import type {
  Block,
  BlockResult,
  CommitCertificate,
  CommittedBlock,
  Genesis,
} from '../../src/consensus/index.ts';
import { sha256 } from '../../src/crypto/index.ts';
import { committedBlockCodec, walRecordCodec } from '../../src/consensus/index.ts';
import {
  FAST_TIMEOUTS,
  HashChainApp,
  signerOf,
  tempDir,
  testGenesis,
  testKey,
  verifierFor,
  waitFor,
} from './helpers.ts';

interface TestNode {
  loop: NodeLoop;
  app: HashChainApp;
  storage: FileStorage;
  net: MemoryNetwork;
  hashes: Map<number, string>;
  /** Heights whose snapshot was saved before onExecuted ran (where the node saves results). */
  snapshotFirst: number[];
}

function startNode(
  hub: MemoryHub,
  genesis: Genesis,
  index: number,
  dir: string,
  txs: Uint8Array[],
  walRotateBytes = 4_000,
  fresh: () => HashChainApp = () => new HashChainApp(genesis.appHash),
): TestNode {
  const storage = openStorage(`${dir}/v${index}`);
  const checkpoint = lastCheckpoint(storage.wal.readAll());
  const { app } = restoreApp(storage, checkpoint, fresh, (bytes) =>
    HashChainApp.fromSnapshot(bytes),
  );
  const net = hub.join(`v${index}`);
  const hashes = new Map<number, string>();
  const snapshotFirst: number[] = [];
  const loop = new NodeLoop({
    genesis,
    timeouts: FAST_TIMEOUTS,
    signer: signerOf(testKey(index), genesis.chainId),
    verifier: verifierFor(genesis.chainId),
    app,
    storage,
    network: net,
    reap: () => txs.splice(0, 3),
    snapshotEveryHeights: 3,
    snapshotsKept: 2,
    walRotateBytes,
    walSyncInBackground: true,
    hooks: {
      onExecuted: (e) => {
        const height = e.block.header.height;
        hashes.set(height, toHex(e.result.appHash));
        if (storage.snapshots.heights().includes(height)) snapshotFirst.push(height);
      },
    },
  });
  net.onMessage((from, bytes) => {
    const { channel, payload } = unframe(bytes);
    if (channel === CHANNEL.consensus) loop.onConsensusMessage(from, payload);
  });
  void net.start();
  loop.start();
  return { loop, app, storage, net, hashes, snapshotFirst };
}

function stopNode(node: TestNode): void {
  node.loop.stop();
  void node.net.stop();
  node.storage.close();
}

test('four loops over file storage commit, agree, and a restarted one catches up', async () => {
  const tmp = tempDir('zomma-loop-');
  const keys = [0, 1, 2, 3].map(testKey);
  const genesis = testGenesis(keys);
  const hub = new MemoryHub();
  const txs = Array.from({ length: 40 }, (_, i) => utf8(`tx ${i}`));
  const nodes = [0, 1, 2, 3].map((i) => startNode(hub, genesis, i, tmp.dir, txs));
  try {
    await waitFor(() => nodes.every((n) => n.app.height >= 6), 20_000, 'height 6 everywhere');
    for (let h = 1; h <= 6; h++) {
      const seen = new Set(nodes.map((n) => n.hashes.get(h)));
      assert.equal(seen.size, 1, `one appHash at height ${h}`);
    }
    assert.ok(nodes[0]!.storage.snapshots.heights().length > 0, 'snapshots saved');
    assert.ok(nodes[0]!.storage.wal.firstIndex() > 0, 'WAL rotated at a checkpoint');
    const stats = nodes[0]!.loop.stats;
    assert.ok(stats.walRotations < stats.blocksExecuted, 'not rewritten at every checkpoint');

    // Crash one (stop without a clean goodbye), let the others go on, restart it from disk.
    stopNode(nodes[3]!);
    const before = nodes[0]!.app.height;
    await waitFor(() => nodes[0]!.app.height >= before + 5, 20_000, 'three nodes keep committing');
    // Five heights span more than four rounds, so one was the stopped node's to propose and failed.
    assert.ok(nodes[0]!.loop.stats.decidedAfterRound0 >= 1, 'a height decided after round 0');
    assert.ok(nodes[0]!.loop.replica.timeoutsFired.propose >= 1, 'a propose timeout fired');
    const restarted = startNode(hub, genesis, 3, tmp.dir, txs);
    nodes[3] = restarted;
    assert.ok(restarted.app.height >= 6, 'restored from snapshot and blocks');
    const target = nodes[0]!.app.height + 2;
    await waitFor(() => restarted.app.height >= target, 20_000, 'the restarted node catches up');
    for (let h = 1; h <= target; h++) {
      const ref = nodes[0]!.hashes.get(h) ?? nodes[1]!.hashes.get(h);
      const mine = restarted.hashes.get(h);
      if (ref !== undefined && mine !== undefined) assert.equal(mine, ref, `height ${h}`);
    }
    for (const n of nodes) assert.equal(n.loop.haltReport, null);
    // A restart resumes from a snapshot without executing its block again, so
    // what onExecuted saves (the node's results) must come before it.
    for (const n of nodes) assert.deepEqual(n.snapshotFirst, []);
  } finally {
    for (const n of nodes) stopNode(n);
    tmp.remove();
  }
});

test('a state too large for a snapshot skips that snapshot; no node halts and the chain goes on', async () => {
  const tmp = tempDir('zomma-loop-');
  const keys = [0, 1, 2, 3].map(testKey);
  const genesis = testGenesis(keys);
  const hub = new MemoryHub();
  const txs = Array.from({ length: 40 }, (_, i) => utf8(`tx ${i}`));
  const nodes = [0, 1, 2, 3].map((i) => startNode(hub, genesis, i, tmp.dir, txs));
  // Height 6's state is past SNAPSHOT_BYTES_MAX on every node, as the same state would be.
  for (const n of nodes) {
    const save = n.storage.snapshots.save.bind(n.storage.snapshots);
    n.storage.snapshots.save = (height, bytes) => {
      if (height === 6) throw new StorageError('StorageTooLarge', 'snapshot-6', null, 'too large');
      save(height, bytes);
    };
  }
  try {
    await waitFor(() => nodes.every((n) => n.app.height >= 10), 20_000, 'height 10 everywhere');
    for (const n of nodes) {
      assert.equal(n.loop.haltReport, null);
      assert.equal(n.loop.stats.snapshotsTooLarge, 1);
      const heights = n.storage.snapshots.heights();
      assert.ok(heights.includes(9) && !heights.includes(6), `snapshots ${heights.join(', ')}`);
    }
  } finally {
    for (const n of nodes) stopNode(n);
    tmp.remove();
  }
});

test('a block saved before a crash and decided again with another certificate is kept, not a conflict', async () => {
  // A power loss can keep a block (its fsync runs as it executes) and lose
  // the WAL's unsynced tail after it: the votes that certified it and the
  // checkpoint. The restarted node decides that height again, from a peer's
  // blocks or from new votes, with a certificate that may hold other votes.
  const tmp = tempDir('zomma-loop-recert-');
  const keys = [0, 1, 2, 3].map(testKey);
  const genesis = testGenesis(keys);
  const hub = new MemoryHub();
  const txs = Array.from({ length: 40 }, (_, i) => utf8(`tx ${i}`));
  const rotateNever = 1 << 30;
  const nodes = [0, 1, 2, 3].map((i) => startNode(hub, genesis, i, tmp.dir, txs, rotateNever));
  try {
    await waitFor(() => nodes.every((n) => n.app.height >= 4), 20_000, 'height 4 everywhere');
    stopNode(nodes[3]!);
    const dir = `${tmp.dir}/v3`;
    // What the disk kept: every block, and the WAL up to the checkpoint before the last block.
    let storage = openStorage(dir);
    const last = storage.blocks.lastHeight();
    const records = storage.wal.readAll();
    const kept = records.slice(0, lastCheckpointIndex(records, last - 1) + 1);
    const stored = decode(committedBlockCodec, storage.blocks.load(last)!);
    assert.ok(stored.commit.votes.length >= 2, 'the certificate has votes to leave out');
    storage.close();
    renameSync(`${dir}/wal.log`, `${dir}/wal.log.lost`);
    storage = openStorage(dir);
    for (const r of kept) storage.wal.append(r, false);
    storage.wal.sync();
    storage.close();
    // The stored certificate differs from any the node can form again.
    rewriteLastBlock(dir, last, {
      block: stored.block,
      commit: { ...stored.commit, votes: stored.commit.votes.slice(1) },
    });

    const restarted = startNode(hub, genesis, 3, tmp.dir, txs, rotateNever);
    nodes[3] = restarted;
    assert.equal(restarted.app.height, last - 1, 'restored to the WAL checkpoint');
    const target = nodes[0]!.app.height + 2;
    await waitFor(
      () => restarted.app.height >= target || restarted.loop.haltReport !== null,
      20_000,
      'the restarted node catches up',
    );
    assert.equal(restarted.loop.haltReport, null);
    assert.equal(restarted.hashes.get(last), nodes[0]!.hashes.get(last));
  } finally {
    for (const n of nodes) stopNode(n);
    tmp.remove();
  }
});

test('a damaged snapshot is passed over at restart for an older one (snapshots only make restarts faster)', async () => {
  const tmp = tempDir('zomma-loop-badsnap-');
  const genesis = testGenesis([testKey(0)]);
  const hub = new MemoryHub();
  const txs = Array.from({ length: 40 }, (_, i) => utf8(`tx ${i}`));
  let node = startNode(hub, genesis, 0, tmp.dir, txs);
  try {
    await waitFor(() => node.app.height >= 7, 20_000, 'height 7');
    stopNode(node);
    const height = node.app.height;
    const snapshots = node.storage.snapshots;
    const heights = snapshots.heights();
    assert.ok(heights.length >= 2, 'an older snapshot is kept');
    const newest = heights[heights.length - 1]!;
    const path = `${snapshots.dir}/snapshot-${String(newest).padStart(16, '0')}.snap`;
    const file = readFileSync(path);
    file[file.length - 1]! ^= 0xff;
    writeFileSync(path, file);

    node = startNode(hub, genesis, 0, tmp.dir, txs);
    // Restored from the older snapshot and the blocks after it (the WAL may decide one more).
    assert.ok(node.app.height >= height, `restored to ${node.app.height}, had ${height}`);
    await waitFor(() => node.app.height >= height + 1, 20_000, 'it goes on');
    assert.equal(node.loop.haltReport, null);
  } finally {
    stopNode(node);
    tmp.remove();
  }
});

test('a node whose execution differs from the chain halts with AppHashMismatch naming both hashes; the others go on', async () => {
  const tmp = tempDir('zomma-loop-diverge-');
  const keys = [0, 1, 2, 3].map(testKey);
  const genesis = testGenesis(keys);
  const hub = new MemoryHub();
  const txs = Array.from({ length: 40 }, (_, i) => utf8(`tx ${i}`));
  const divergent = () => new DivergentApp(genesis.appHash, 3);
  const nodes = [0, 1, 2, 3].map((i) =>
    i === 3
      ? startNode(hub, genesis, i, tmp.dir, txs, undefined, divergent)
      : startNode(hub, genesis, i, tmp.dir, txs),
  );
  try {
    const odd = nodes[3]!;
    await waitFor(() => odd.loop.haltReport !== null, 20_000, 'the divergent node halts');
    const report = odd.loop.haltReport!;
    assert.equal(report.code, 'AppHashMismatch');
    assert.equal(report.height, 3);
    assert.equal(report.details.ourAppHash, odd.hashes.get(3));
    assert.equal(report.details.chainAppHash, nodes[0]!.hashes.get(3));
    assert.notEqual(report.details.ourAppHash, report.details.chainAppHash);
    assert.equal(odd.app.height, 3, 'nothing executed on top of a diverged state');
    const height = nodes[0]!.app.height;
    await waitFor(() => nodes[0]!.app.height >= height + 2, 20_000, 'three of four go on');
    for (const n of nodes.slice(0, 3)) assert.equal(n.loop.haltReport, null);

    // docs/operations.md: "If this node runs different code, fix that and
    // restart". Its WAL checkpoint (and a snapshot, 3 being a snapshot height)
    // hold the state the other code computed; the chain's certified block
    // after it says what the state is.
    stopNode(odd);
    const fixed = startNode(hub, genesis, 3, tmp.dir, txs);
    nodes[3] = fixed;
    const target = nodes[0]!.app.height + 2;
    await waitFor(
      () => fixed.app.height >= target || fixed.loop.haltReport !== null,
      20_000,
      'the fixed node catches up',
    );
    assert.equal(fixed.loop.haltReport, null, 'the fixed node does not halt again');
    for (let h = 3; h <= target; h++) {
      const mine = fixed.hashes.get(h);
      if (mine !== undefined) assert.equal(mine, nodes[0]!.hashes.get(h), `height ${h}`);
    }
  } finally {
    for (const n of nodes) stopNode(n);
    tmp.remove();
  }
});

/** Executes like the others up to `from`, then mixes one more byte into its hash. */
class DivergentApp extends HashChainApp {
  constructor(
    genesisAppHash: Uint8Array,
    private readonly from: number,
  ) {
    super(genesisAppHash);
  }

  override finalizeBlock(block: Block, commit: CommitCertificate): BlockResult {
    const result = super.finalizeBlock(block, commit);
    if (this.height < this.from) return result;
    this.appHash = sha256(this.appHash, utf8('differs'));
    return { ...result, appHash: this.appHash };
  }
}

/** The index of the last checkpoint record of `height` in `records`. */
function lastCheckpointIndex(records: readonly Uint8Array[], height: number): number {
  for (let i = records.length - 1; i >= 0; i--) {
    const record = decode(walRecordCodec, records[i]!);
    if (record.kind === 'checkpoint' && record.state.height === height) return i;
  }
  throw new Error(`no checkpoint of height ${height}`);
}

/** Replaces the block log's last record (height `last`) with `committed`. */
function rewriteLastBlock(dir: string, last: number, committed: CommittedBlock): void {
  let storage = openStorage(dir);
  const blocks: Uint8Array[] = [];
  const first = storage.blocks.firstHeight();
  for (let h = first; h < last; h++) blocks.push(storage.blocks.load(h)!);
  storage.close();
  renameSync(`${dir}/blocks.log`, `${dir}/blocks.log.old`);
  storage = openStorage(dir);
  blocks.forEach((bytes, i) => storage.blocks.save(first + i, bytes));
  storage.blocks.save(last, encode(committedBlockCodec, committed));
  storage.close();
}

test('frames carry a channel byte; unknown channels and empty frames are refused', () => {
  const f = frame(CHANNEL.mempool, utf8('abc'));
  assert.equal(f[0], CHANNEL.mempool);
  assert.deepEqual(unframe(f).payload, utf8('abc'));
  assert.throws(() => unframe(new Uint8Array(0)), { code: 'BadFrame' });
  assert.throws(() => unframe(Uint8Array.of(9, 1)), { code: 'BadFrame' });
});
