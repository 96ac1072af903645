import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toHex, utf8 } from '../../src/lib/bytes.ts';
import { NodeError } from '../../src/node/errors.ts';
import { NodeLoop, lastCheckpoint } from '../../src/node/loop.ts';
import type { HaltReport } from '../../src/node/loop.ts';
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
  ValidatorUpdate,
} from '../../src/consensus/index.ts';
import { sha256 } from '../../src/crypto/index.ts';
import {
  VOTE_TYPE,
  committedBlockCodec,
  messageCodec,
  walRecordCodec,
} from '../../src/consensus/index.ts';
import {
  FAST_TIMEOUTS,
  HashChainApp,
  cutPower,
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
  /** Heights executed while the loop said it was catching up. */
  caughtUp: number[];
}

function startNode(
  hub: MemoryHub,
  genesis: Genesis,
  index: number,
  dir: string,
  txs: Uint8Array[],
  walRotateBytes = 4_000,
  fresh: () => HashChainApp = () => new HashChainApp(genesis.appHash),
  commitPauseMs = 0,
): TestNode {
  const storage = openStorage(`${dir}/v${index}`);
  try {
    return startOn(storage, hub, genesis, index, txs, walRotateBytes, fresh, commitPauseMs);
  } catch (error) {
    // A refused start frees the directory, as the node does.
    storage.close();
    throw error;
  }
}

function startOn(
  storage: FileStorage,
  hub: MemoryHub,
  genesis: Genesis,
  index: number,
  txs: Uint8Array[],
  walRotateBytes: number,
  fresh: () => HashChainApp,
  commitPauseMs = 0,
): TestNode {
  const checkpoint = lastCheckpoint(storage.wal.readAll());
  const { app, lastResult } = restoreApp(storage, checkpoint, fresh, (bytes) =>
    HashChainApp.fromSnapshot(bytes),
  );
  const net = hub.join(`v${index}`);
  const hashes = new Map<number, string>();
  const snapshotFirst: number[] = [];
  const caughtUp: number[] = [];
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
    commitPauseMs,
    restoredResult: lastResult,
    hooks: {
      onExecuted: (e) => {
        const height = e.block.header.height;
        hashes.set(height, toHex(e.result.appHash));
        if (storage.snapshots.heights().includes(height)) snapshotFirst.push(height);
        if (loop.catchingUp()) caughtUp.push(height);
      },
    },
  });
  net.onMessage((from, bytes) => {
    const { channel, payload } = unframe(bytes);
    if (channel === CHANNEL.consensus) loop.onConsensusMessage(from, payload);
  });
  void net.start();
  try {
    loop.start();
  } catch (error) {
    void net.stop();
    throw error;
  }
  return { loop, app, storage, net, hashes, snapshotFirst, caughtUp };
}

/** Four loops over file storage in `dir`, on one hub, proposing the same 40 transactions. */
function startFour(dir: string) {
  const genesis = testGenesis([0, 1, 2, 3].map(testKey));
  const hub = new MemoryHub();
  const txs = Array.from({ length: 40 }, (_, i) => utf8(`tx ${i}`));
  const nodes = [0, 1, 2, 3].map((i) => startNode(hub, genesis, i, dir, txs));
  return { genesis, hub, txs, nodes };
}

/**
 * Four loops over file storage in `dir`, the fourth running a DivergentApp
 * that computes another appHash from height 3 (and, with `withUpdates`, also
 * gives its key power 20 there): what the divergence tests start from.
 */
function startDiverging(dir: string, withUpdates = false) {
  const keys = [0, 1, 2, 3].map(testKey);
  const genesis = testGenesis(keys);
  const hub = new MemoryHub();
  const txs = Array.from({ length: 40 }, (_, i) => utf8(`tx ${i}`));
  const updates = withUpdates ? [{ publicKey: keys[3]!.publicKey, power: 20 }] : [];
  const divergent = () => new DivergentApp(genesis.appHash, 3, updates);
  const nodes = [0, 1, 2, 3].map((i) =>
    i === 3
      ? startNode(hub, genesis, i, dir, txs, undefined, divergent)
      : startNode(hub, genesis, i, dir, txs),
  );
  return { keys, genesis, hub, txs, divergent, nodes };
}

function stopNode(node: TestNode): void {
  node.loop.stop();
  void node.net.stop();
  node.storage.close();
}

test('four loops over file storage commit, agree, and a restarted one catches up', async () => {
  const tmp = tempDir('zomma-loop-');
  const { genesis, hub, txs, nodes } = startFour(tmp.dir);
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
    assert.ok(restarted.caughtUp.length > 0, 'it said it was catching up meanwhile');
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

test("a node behind the chain catches up without the commit pause after each height (it would only keep the chain's pace)", async () => {
  const tmp = tempDir('zomma-loop-');
  const { genesis, hub, txs, nodes } = startFour(tmp.dir);
  try {
    await waitFor(() => nodes.every((n) => n.app.height >= 2), 20_000, 'height 2 everywhere');
    stopNode(nodes[3]!);
    const before = nodes[0]!.app.height;
    await waitFor(() => nodes[0]!.app.height >= before + 12, 20_000, 'twelve heights without it');
    // At the chain's tip its pause is a minute: one pause per height caught up would stall it.
    const restarted = startNode(hub, genesis, 3, tmp.dir, txs, undefined, undefined, 60_000);
    nodes[3] = restarted;
    const target = nodes[0]!.app.height;
    await waitFor(() => restarted.app.height >= target, 20_000, 'the restarted node catches up');
    assert.ok(restarted.caughtUp.length >= 10, `caught up ${restarted.caughtUp.length} heights`);
    for (const [h, hash] of restarted.hashes) {
      if (h <= target) assert.equal(hash, nodes[0]!.hashes.get(h), `height ${h}`);
    }
  } finally {
    for (const n of nodes) stopNode(n);
    tmp.remove();
  }
});

test('a state too large for a snapshot skips that snapshot; no node halts and the chain goes on', async () => {
  const tmp = tempDir('zomma-loop-');
  const { nodes } = startFour(tmp.dir);
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

/**
 * Waits for `odd` (startDiverging's node 3) to halt, and checks its report:
 * AppHashMismatch after height 3, its hash and `honest`'s, and the certified
 * block of 4 that showed it; nothing executed past 3.
 */
async function divergenceReport(odd: TestNode, honest: TestNode): Promise<HaltReport> {
  await waitFor(() => odd.loop.haltReport !== null, 20_000, 'the divergent node halts');
  const report = odd.loop.haltReport!;
  assert.equal(report.code, 'AppHashMismatch');
  assert.equal(report.height, 3);
  assert.deepEqual(report.details, {
    ourAppHash: odd.hashes.get(3),
    chainAppHash: honest.hashes.get(3),
    certifiedHeight: 4,
  });
  assert.notEqual(report.details.ourAppHash, report.details.chainAppHash);
  assert.equal(odd.app.height, 3, 'nothing executed on top of a diverged state');
  return report;
}

test('a node whose execution differs from the chain halts with AppHashMismatch naming both hashes; the others go on', async () => {
  const tmp = tempDir('zomma-loop-diverge-');
  const { genesis, hub, txs, divergent, nodes } = startDiverging(tmp.dir);
  try {
    const odd = nodes[3]!;
    const report = await divergenceReport(odd, nodes[0]!);
    const height = nodes[0]!.app.height;
    await waitFor(() => nodes[0]!.app.height >= height + 2, 20_000, 'three of four go on');
    for (const n of nodes.slice(0, 3)) assert.equal(n.loop.haltReport, null);

    // docs/operations.md: "If this node runs different code, fix that and
    // restart". Its WAL checkpoint (and a snapshot, 3 being a snapshot height)
    // hold the state the other code computed; the chain's certified block
    // after it says what the state is.
    stopNode(odd);
    // Not fixed: the start is refused at once, naming both hashes.
    assert.throws(
      () => startNode(hub, genesis, 3, tmp.dir, txs, undefined, divergent),
      (e: unknown) =>
        e instanceof NodeError &&
        e.code === 'AppHashMismatch' &&
        e.message.includes(report.details.chainAppHash as string) &&
        e.message.includes(report.details.ourAppHash as string),
    );
    // The stored block is checked again: a copy whose certificate falls
    // short of 2/3 (a damaged or replaced file) confirms nothing.
    const dir = `${tmp.dir}/v3`;
    const readBack = openStorage(dir);
    const stored = decode(committedBlockCodec, readBack.blocks.load(4)!);
    readBack.close();
    const short = { ...stored.commit, votes: stored.commit.votes.slice(0, 1) };
    rewriteLastBlock(dir, 4, { block: stored.block, commit: short });
    assert.throws(
      () => startNode(hub, genesis, 3, tmp.dir, txs),
      (e: unknown) => e instanceof NodeError && e.code === 'RestoreFailed',
    );
    rewriteLastBlock(dir, 4, stored);
    const fixed = startNode(hub, genesis, 3, tmp.dir, txs);
    nodes[3] = fixed;
    const target = nodes[0]!.app.height + 2;
    await waitFor(
      () => fixed.app.height >= target || fixed.loop.haltReport !== null,
      20_000,
      'the fixed node catches up',
    );
    assert.equal(fixed.loop.haltReport, null, 'the fixed node does not halt again');
    // The fixed node may execute a height before the node it is compared with.
    await waitFor(() => nodes[0]!.app.height >= target, 20_000, 'the chain reaches the target');
    for (let h = 3; h <= target; h++) {
      const mine = fixed.hashes.get(h);
      if (mine !== undefined) assert.equal(mine, nodes[0]!.hashes.get(h), `height ${h}`);
    }
  } finally {
    for (const n of nodes) stopNode(n);
    tmp.remove();
  }
});

test('a diverged node that gets no committed block from a peer halts from the proposal and 2/3+ precommits of the next height, with the report catch-up gives', async () => {
  const tmp = tempDir('zomma-loop-diverge-votes-');
  const { nodes, hub } = startDiverging(tmp.dir);
  // No block response reaches the divergent node: neither its replica's
  // catch-up nor the node's watch on them can show it the divergence.
  const BLOCK_RESPONSE_TAG = 4;
  hub.filter = (_from, to, bytes) =>
    !(to === 'v3' && bytes[0] === CHANNEL.consensus && bytes[1] === BLOCK_RESPONSE_TAG);
  try {
    const odd = nodes[3]!;
    await divergenceReport(odd, nodes[0]!);
    // The certified block that showed it is stored, as catch-up's would be.
    const stored = decode(committedBlockCodec, odd.storage.blocks.load(4)!);
    const real = decode(committedBlockCodec, nodes[0]!.storage.blocks.load(4)!);
    assert.deepEqual(stored.block, real.block);
  } finally {
    for (const n of nodes) stopNode(n);
    tmp.remove();
  }
});

/**
 * Executes like the others up to `from`, then mixes one more byte into its
 * hash; at `from` it also returns `updates` (a fault in deciding the
 * validator set, say) where the others return none.
 */
class DivergentApp extends HashChainApp {
  constructor(
    genesisAppHash: Uint8Array,
    private readonly from: number,
    private readonly updates: readonly ValidatorUpdate[] = [],
  ) {
    super(genesisAppHash);
  }

  override finalizeBlock(block: Block, commit: CommitCertificate): BlockResult {
    const result = super.finalizeBlock(block, commit);
    if (this.height < this.from) return result;
    this.appHash = sha256(this.appHash, utf8('differs'));
    const validatorUpdates = this.height === this.from ? this.updates : result.validatorUpdates;
    return { appHash: this.appHash, validatorUpdates };
  }
}

test('a node whose fault was in the validator updates of the height it halted after resumes, once fixed, with the set the chain decided', async () => {
  // The checkpoint of that height holds the appHash and the next validator
  // set the faulty code computed; the fixed code computes both again.
  const tmp = tempDir('zomma-loop-diverge-set-');
  const { genesis, hub, txs, nodes } = startDiverging(tmp.dir, true);
  try {
    const odd = nodes[3]!;
    await waitFor(() => odd.loop.haltReport !== null, 20_000, 'the divergent node halts');
    assert.equal(odd.loop.haltReport!.code, 'AppHashMismatch');
    assert.equal(odd.app.height, 3);
    stopNode(odd);

    const fixed = startNode(hub, genesis, 3, tmp.dir, txs);
    nodes[3] = fixed;
    assert.equal(
      toHex(fixed.loop.replica.nextValidators.hash),
      toHex(nodes[0]!.loop.replica.validators.hash),
      'the set deciding height 5 is the one the chain decided (the others decide with it)',
    );
    const target = Math.max(nodes[0]!.app.height, 5) + 2;
    await waitFor(
      () => fixed.app.height >= target || fixed.loop.haltReport !== null,
      20_000,
      'the fixed node catches up past height 5',
    );
    assert.equal(fixed.loop.haltReport, null, 'the fixed node does not halt again');

    // A second restart, past the snapshots the fixed code saved (the other
    // code's snapshot of height 3 is still on disk), resumes from its own
    // checkpoints.
    stopNode(fixed);
    const again = startNode(hub, genesis, 3, tmp.dir, txs);
    nodes[3] = again;
    assert.ok(again.app.height >= target, `restored to ${again.app.height}`);
    const further = nodes[0]!.app.height + 2;
    await waitFor(
      () => again.app.height >= further || again.loop.haltReport !== null,
      20_000,
      'the node restarted again goes on',
    );
    assert.equal(again.loop.haltReport, null, 'no halt after a second restart');
  } finally {
    for (const n of nodes) stopNode(n);
    tmp.remove();
  }
});

test("a peer's copy of the divergence's certified block with another body is refused; the real one is stored and a fixed restart resumes", async () => {
  // The certificate signs the header's hash; the header names the body by its
  // roots. A copy with other transactions is no block of the chain: stored,
  // it would be executed again at a later restart, and served to peers.
  const tmp = tempDir('zomma-loop-diverge-forged-');
  const { genesis, hub, txs, divergent, nodes } = startDiverging(tmp.dir);
  const cut = new MemoryHub();
  const peer = cut.join('byzantine');
  await peer.start();
  try {
    await waitFor(() => nodes[3]!.loop.haltReport !== null, 20_000, 'the divergent node halts');
    stopNode(nodes[3]!);
    // As if it had not met block 4 yet: its store ends at 3, its checkpoint,
    // and so does its WAL (the proposal and 2/3+ precommits of 4 it logged
    // would show the divergence again as they are replayed).
    dropBlocksAbove(`${tmp.dir}/v3`, 3);
    keepWalUpTo(`${tmp.dir}/v3`, 3);
    // Alone with one peer, which sends block 4 with a transaction added.
    const alone = startNode(cut, genesis, 3, tmp.dir, txs, undefined, divergent);
    nodes[3] = alone;
    assert.equal(alone.app.height, 3);
    const real = decode(committedBlockCodec, nodes[0]!.storage.blocks.load(4)!);
    const forged: CommittedBlock = {
      block: { ...real.block, txs: [...real.block.txs, utf8('not in the block')] },
      commit: real.commit,
    };
    const response = (b: CommittedBlock) =>
      frame(CHANNEL.consensus, encode(messageCodec, { kind: 'blockResponse', blocks: [b] }));
    peer.send('v3', response(forged));
    await waitFor(
      () => alone.loop.replica.refusesBlocksFrom('byzantine') || alone.loop.haltReport !== null,
      20_000,
      'the forged block is judged',
    );
    assert.equal(alone.loop.haltReport, null, 'no halt on a block that is not the chain’s');
    assert.equal(alone.storage.blocks.lastHeight(), 3, 'nothing stored');

    // The real block shows the divergence: the node halts and keeps it.
    peer.send('v3', response(real));
    await waitFor(() => alone.loop.haltReport !== null, 20_000, 'the real block halts it');
    assert.equal(alone.loop.haltReport!.code, 'AppHashMismatch');
    const stored = decode(committedBlockCodec, alone.storage.blocks.load(4)!);
    assert.deepEqual(stored.block.txs, real.block.txs, 'the block stored is the chain’s');
    stopNode(alone);

    const fixed = startNode(hub, genesis, 3, tmp.dir, txs);
    nodes[3] = fixed;
    const target = nodes[0]!.app.height + 2;
    await waitFor(
      () => fixed.app.height >= target || fixed.loop.haltReport !== null,
      20_000,
      'the fixed node catches up',
    );
    assert.equal(fixed.loop.haltReport, null, 'the fixed node does not halt again');
  } finally {
    for (const n of nodes) stopNode(n);
    void peer.stop();
    tmp.remove();
  }
});

/** Rewrites the WAL of the node in `dir` to end at its checkpoint of `height`. */
function keepWalUpTo(dir: string, height: number): void {
  const storage = openStorage(dir);
  const keep = storage.wal.firstIndex() + lastCheckpointIndex(storage.wal.readAll(), height) + 1;
  storage.close();
  cutPower(dir, keep);
}

/** Rewrites the block log of the node in `dir` without the blocks above `height`. */
function dropBlocksAbove(dir: string, height: number): void {
  let storage = openStorage(dir);
  const first = storage.blocks.firstHeight();
  const blocks: Uint8Array[] = [];
  for (let h = first; h <= height; h++) blocks.push(storage.blocks.load(h)!);
  storage.close();
  renameSync(`${dir}/blocks.log`, `${dir}/blocks.log.old`);
  storage = openStorage(dir);
  blocks.forEach((bytes, i) => storage.blocks.save(first + i, bytes));
  storage.close();
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

test("a peer's claim to be far ahead does not make a node at the chain's tip report catching up", async () => {
  // Any peer may claim a height (a vote's, unverified) and is asked for the
  // blocks at once; /health answers 503 while the node catches up, so a
  // faulty peer repeating the claim would otherwise keep it there.
  const tmp = tempDir('zomma-loop-claim-');
  const genesis = testGenesis([testKey(0)]);
  const hub = new MemoryHub();
  const node = startNode(hub, genesis, 0, tmp.dir, []);
  const liar = hub.join('liar');
  const asked: number[] = [];
  liar.onMessage((_from, bytes) => {
    const { channel, payload } = unframe(bytes);
    if (channel !== CHANNEL.consensus) return;
    const message = decode(messageCodec, payload);
    if (message.kind === 'blockRequest') asked.push(message.fromHeight);
  });
  await liar.start();
  try {
    await waitFor(() => node.app.height >= 2, 20_000, 'height 2');
    const vote = {
      type: VOTE_TYPE.prevote,
      height: node.loop.replica.height + 100,
      round: 0,
      blockHash: null,
      validatorIndex: 0,
      timestampMs: 0,
      extension: new Uint8Array(0),
      signature: new Uint8Array(64),
    };
    liar.send('v0', frame(CHANNEL.consensus, encode(messageCodec, { kind: 'vote', vote })));
    await waitFor(() => asked.length > 0, 20_000, 'the node asks the liar for blocks');
    assert.equal(node.loop.catchingUp(), false, 'a claim alone is not being behind');
    const height = node.app.height;
    await waitFor(() => node.app.height >= height + 2, 20_000, 'it goes on committing');
    assert.equal(node.loop.haltReport, null);
  } finally {
    stopNode(node);
    void liar.stop();
    tmp.remove();
  }
});

test('frames carry a channel byte; unknown channels and empty frames are refused', () => {
  const f = frame(CHANNEL.mempool, utf8('abc'));
  assert.equal(f[0], CHANNEL.mempool);
  assert.deepEqual(unframe(f).payload, utf8('abc'));
  assert.throws(() => unframe(new Uint8Array(0)), { code: 'BadFrame' });
  assert.throws(() => unframe(Uint8Array.of(9, 1)), { code: 'BadFrame' });
});
