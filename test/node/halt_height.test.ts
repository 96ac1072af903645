// A halt height (NodeLoopOptions.haltHeight): the validators and a full node
// stop once it is executed, with its snapshot and a durable checkpoint of it,
// having signed nothing for the height after; a start past it, or at it with
// its snapshot, refuses (at it without one, it saves that snapshot and stops);
// a restart without it resumes from that snapshot and executes nothing at or
// below it, which is what lets code that executes differently take over.

import { test } from 'node:test';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { decode } from '../../src/codec/wire.ts';
import type { Genesis } from '../../src/consensus/index.ts';
import { messageCodec, walRecordCodec } from '../../src/consensus/index.ts';
import type { KeyPair } from '../../src/crypto/index.ts';
import { toHex, utf8 } from '../../src/lib/bytes.ts';
import { NodeError } from '../../src/node/errors.ts';
import { CHANNEL, unframe } from '../../src/node/framing.ts';
import { NodeLoop, lastCheckpoint } from '../../src/node/loop.ts';
import type { HaltHeightStop } from '../../src/node/loop.ts';
import { MemoryHub } from '../../src/node/network.ts';
import type { MemoryNetwork, PeerNetwork } from '../../src/node/network.ts';
import { restoreApp } from '../../src/node/restore.ts';
import { StorageError, openStorage, snapshotFileName } from '../../src/node/storage/index.ts';
import type { FileStorage, Storage } from '../../src/node/storage/index.ts';
import {
  DurableWal,
  cutPower,
  FAST_TIMEOUTS,
  HashChainApp,
  signerOf,
  tempDir,
  testGenesis,
  testKey,
  verifierFor,
  waitFor,
} from './helpers.ts';

const HALT = 5;

interface Running {
  readonly name: string;
  readonly dir: string;
  readonly loop: NodeLoop;
  readonly app: HashChainApp;
  readonly storage: FileStorage;
  readonly wal: DurableWal;
  readonly net: MemoryNetwork;
  readonly restored: { snapshotHeight: number; replayedBlocks: number };
  /** Heights of the proposals and votes this node sent (its own, and others' it passed on). */
  readonly sentHeights: number[];
  readonly hashes: Map<number, string>;
  stopped: HaltHeightStop | null;
}

/** Records the heights of the proposals and votes sent through `net`. */
function watched(net: MemoryNetwork, heights: number[]): PeerNetwork {
  const note = (bytes: Uint8Array): void => {
    const { channel, payload } = unframe(bytes);
    if (channel !== CHANNEL.consensus) return;
    const message = decode(messageCodec, payload);
    if (message.kind === 'vote') heights.push(message.vote.height);
    if (message.kind === 'proposal') heights.push(message.proposal.height);
  };
  return {
    start: () => net.start(),
    stop: () => net.stop(),
    send: (peer, bytes) => {
      note(bytes);
      net.send(peer, bytes);
    },
    broadcast: (bytes) => {
      note(bytes);
      net.broadcast(bytes);
    },
    onMessage: (handler) => net.onMessage(handler),
    peerCount: () => net.peerCount(),
  };
}

function start(
  hub: MemoryHub,
  genesis: Genesis,
  name: string,
  dir: string,
  key: KeyPair | null,
  txs: Uint8Array[],
  haltHeight?: number,
  snapshotEveryHeights = 3,
  /** The data directory check (FileStorage.checkInPlace); absent: none. */
  checkInPlace?: () => void,
): Running {
  const storage = openStorage(dir);
  const wal = new DurableWal(storage.wal, true);
  const tracked: Storage = {
    wal,
    blocks: storage.blocks,
    snapshots: storage.snapshots,
    close: () => storage.close(),
    ...(checkInPlace !== undefined ? { checkInPlace } : {}),
  };
  let net: MemoryNetwork | null = null;
  try {
    const { app, snapshotHeight, replayedBlocks, lastResult } = restoreApp(
      tracked,
      lastCheckpoint(wal.readAll()),
      () => new HashChainApp(genesis.appHash),
      (bytes) => HashChainApp.fromSnapshot(bytes),
    );
    net = hub.join(name);
    const sentHeights: number[] = [];
    const hashes = new Map<number, string>();
    const running: Running = {
      name,
      dir,
      app,
      storage,
      wal,
      net,
      restored: { snapshotHeight, replayedBlocks },
      sentHeights,
      hashes,
      stopped: null,
      loop: new NodeLoop({
        genesis,
        timeouts: FAST_TIMEOUTS,
        signer: key === null ? null : signerOf(key, genesis.chainId),
        verifier: verifierFor(genesis.chainId),
        app,
        storage: tracked,
        network: watched(net, sentHeights),
        reap: () => txs.splice(0, 2),
        // The halt height is no multiple of 3: its snapshot is saved for the halt alone.
        snapshotEveryHeights,
        snapshotsKept: 2,
        // Never rotated: only the halt's own sync makes its checkpoint durable.
        walRotateBytes: 1 << 30,
        walSyncInBackground: true,
        commitPauseMs: 20,
        restoredResult: lastResult,
        ...(haltHeight !== undefined ? { haltHeight } : {}),
        hooks: {
          onExecuted: (e) => hashes.set(e.block.header.height, toHex(e.result.appHash)),
          onHaltHeight: (stop) => {
            running.stopped = stop;
          },
        },
      }),
    };
    const loop = running.loop;
    net.onMessage((from, bytes) => {
      const { channel, payload } = unframe(bytes);
      if (channel === CHANNEL.consensus) loop.onConsensusMessage(from, payload);
    });
    void net.start();
    loop.start();
    return running;
  } catch (error) {
    // A refused start frees the directory, as the node does.
    if (net !== null) void net.stop();
    storage.close();
    throw error;
  }
}

function stop(node: Running): void {
  node.loop.stop();
  void node.net.stop();
  node.storage.close();
}

/** Four validators' keys and genesis on one in-memory hub, transactions to propose, and a temporary folder. */
function fourValidators(prefix: string) {
  const tmp = tempDir(prefix);
  const keys = [0, 1, 2, 3].map(testKey);
  const txs = Array.from({ length: 200 }, (_, i) => utf8(`tx ${i}`));
  return { tmp, keys, genesis: testGenesis(keys), hub: new MemoryHub(), txs };
}

/** Stops every node, passing over one already stopped and closed. */
function stopAll(nodes: readonly Running[]): void {
  for (const n of nodes) {
    try {
      stop(n);
    } catch {
      // Already stopped and closed.
    }
  }
}

/** The heights of the signed records in a WAL (what the node signed, as a restart reads it). */
function signedRecordHeights(records: readonly Uint8Array[]): number[] {
  const out: number[] = [];
  for (const bytes of records) {
    const record = decode(walRecordCodec, bytes, 'wal');
    if (record.kind === 'signed') out.push(record.height);
  }
  return out;
}

test('four validators and a full node with a halt height stop at it, durably and signing nothing after it; restarted without it they go on from its snapshot, executing nothing at or below it', async () => {
  const { tmp, keys, genesis, hub, txs } = fourValidators('zomma-halt-height-');
  const spec = [...keys.map((key, i) => ({ name: `v${i}`, key })), { name: 'full', key: null }];
  let nodes = spec.map(({ name, key }) =>
    start(hub, genesis, name, `${tmp.dir}/${name}`, key, txs, HALT),
  );
  try {
    await waitFor(
      () => nodes.every((n) => n.stopped !== null || n.loop.haltReport !== null),
      30_000,
      'every node at the halt height',
    );
    const appHashes = new Set<string>();
    for (const n of nodes) {
      assert.equal(n.loop.haltReport, null, `${n.name}: no failure`);
      assert.equal(n.loop.isRunning, false, `${n.name}: the loop stopped`);
      assert.equal(n.app.height, HALT, `${n.name}: executed up to the halt height, not past it`);
      assert.equal(n.stopped!.height, HALT);
      assert.equal(toHex(n.stopped!.appHash), toHex(n.app.appHash));
      assert.equal(n.stopped!.snapshotSaved, true, `${n.name}: snapshot saved`);
      appHashes.add(toHex(n.app.appHash));
      assert.ok(
        n.storage.snapshots.heights().includes(HALT),
        `${n.name}: a snapshot of the halt height (snapshots ${n.storage.snapshots.heights().join(', ')})`,
      );
      assert.equal(n.storage.blocks.lastHeight(), HALT, `${n.name}: blocks up to the halt height`);
      // What a power cut right now would leave: the checkpoint of the halt height.
      const durable = n.wal.readAll().slice(0, n.wal.durableNext - n.wal.firstIndex());
      assert.equal(lastCheckpoint(durable).height, HALT, `${n.name}: its checkpoint is durable`);
      // And it is the WAL's only record: the file was rewritten from it, so an
      // older build reads nothing this build wrote before it.
      assert.equal(n.wal.readAll().length, 1, `${n.name}: the WAL holds the halt checkpoint alone`);
      assert.equal(lastCheckpoint(n.wal.readAll().slice(0, 1)).height, HALT);
      // Nothing signed for the next height: not sent, not even logged.
      const sentAbove = n.sentHeights.filter((h) => h > HALT);
      assert.deepEqual(sentAbove, [], `${n.name}: sent nothing above the halt height`);
      const loggedAbove = signedRecordHeights(n.wal.readAll()).filter((h) => h > HALT);
      assert.deepEqual(loggedAbove, [], `${n.name}: signed nothing above the halt height`);
    }
    assert.equal(appHashes.size, 1, 'one appHash at the halt height');
    // They did send votes up to it (the watch above sees what they send).
    for (const n of nodes.slice(0, 4)) {
      assert.ok(n.sentHeights.includes(HALT), `${n.name}: voted at the halt height`);
    }

    // The power goes right after the halt: only what was made durable is left.
    for (const n of nodes) {
      const keep = n.wal.durableNext;
      stop(n);
      cutPower(n.dir, keep);
    }
    // Started again with the halt height (or a lower one) still set: refused at once.
    for (const haltHeight of [HALT, HALT - 2]) {
      assert.throws(
        () => start(hub, genesis, 'v0', `${tmp.dir}/v0`, keys[0]!, txs, haltHeight),
        (e: unknown) =>
          e instanceof NodeError &&
          e.code === 'HaltHeightReached' &&
          e.message.includes(`at height ${HALT}`) &&
          e.message.includes(`halt height ${haltHeight}`) &&
          // It holds the snapshot of the halt height: the way on is to remove it.
          e.message.includes(
            'remove the halt height (and run the code meant for the heights after it)',
          ),
        `haltHeight ${haltHeight}`,
      );
    }

    // Without it: each resumes from the snapshot of the halt height, executing no block again.
    nodes = spec.map(({ name, key }) => start(hub, genesis, name, `${tmp.dir}/${name}`, key, txs));
    for (const n of nodes) {
      assert.deepEqual(n.restored, { snapshotHeight: HALT, replayedBlocks: 0 }, n.name);
      assert.equal(n.app.height, HALT, n.name);
    }
    const target = HALT + 4;
    await waitFor(
      () => nodes.every((n) => n.app.height >= target || n.loop.haltReport !== null),
      30_000,
      `height ${target} everywhere`,
    );
    for (const n of nodes) {
      assert.equal(n.loop.haltReport, null, `${n.name}: no halt after the restart`);
      // HashChainApp lists every height it executed since it was built (from the snapshot).
      assert.ok(n.app.executed.length > 0, `${n.name}: executed new heights`);
      assert.ok(
        n.app.executed.every((h) => h > HALT),
        `${n.name}: executed ${n.app.executed.join(', ')}, none at or below ${HALT}`,
      );
    }
    for (let h = HALT + 1; h <= target; h++) {
      const seen = new Set(nodes.map((n) => n.hashes.get(h)));
      assert.equal(seen.size, 1, `one appHash at height ${h}`);
    }
  } finally {
    stopAll(nodes);
    tmp.remove();
  }
});

test('one validator stopped at its halt height while the others go on signs nothing after it, and catches up after a restart without it', async () => {
  const { tmp, keys, genesis, hub, txs } = fourValidators('zomma-halt-height-one-');
  const nodes = keys.map((key, i) =>
    start(hub, genesis, `v${i}`, `${tmp.dir}/v${i}`, key, txs, i === 3 ? HALT : undefined),
  );
  try {
    const stopped = nodes[3]!;
    await waitFor(() => stopped.stopped !== null, 30_000, 'the fourth at the halt height');
    assert.equal(stopped.app.height, HALT);
    // Three of four go on without it.
    await waitFor(() => nodes[0]!.app.height >= HALT + 5, 30_000, 'the others go past it');
    assert.equal(stopped.app.height, HALT, 'it executed nothing more');
    assert.deepEqual(
      stopped.sentHeights.filter((h) => h > HALT),
      [],
      'it signed nothing above the halt height',
    );
    stop(stopped);
    const restarted = start(hub, genesis, 'v3', stopped.dir, keys[3]!, txs);
    nodes[3] = restarted;
    assert.deepEqual(restarted.restored, { snapshotHeight: HALT, replayedBlocks: 0 });
    const target = nodes[0]!.app.height + 2;
    await waitFor(() => restarted.app.height >= target, 30_000, 'the restarted node catches up');
    assert.equal(restarted.loop.haltReport, null);
    assert.ok(
      restarted.app.executed.every((h) => h > HALT),
      'nothing at or below it again',
    );
    // It may run ahead of node 0: compare once node 0 has every height it has.
    const last = Math.max(...restarted.hashes.keys());
    await waitFor(() => nodes[0]!.hashes.has(last), 30_000, 'node 0 reaches it');
    for (const [h, hash] of restarted.hashes) {
      assert.equal(hash, nodes[0]!.hashes.get(h), `height ${h}`);
    }
  } finally {
    stopAll(nodes);
    tmp.remove();
  }
});

test('a node whose stored chain went past the halt height without stopping there (no snapshot from it on) is refused with HaltHeightReached naming the snapshot to copy, not told to remove the halt height', async () => {
  const { tmp, keys, genesis, hub, txs } = fourValidators('zomma-halt-height-late-');
  // No halt height, and no snapshots of their own: what a validator whose
  // operator missed the halt height holds, past it.
  const nodes = keys.map((key, i) =>
    start(hub, genesis, `v${i}`, `${tmp.dir}/v${i}`, key, txs, undefined, 0),
  );
  try {
    await waitFor(
      () => nodes.every((n) => n.app.height >= HALT + 3 || n.loop.haltReport !== null),
      30_000,
      'every node past the halt height',
    );
    for (const n of nodes) assert.equal(n.loop.haltReport, null, `${n.name}: no failure`);
    for (const n of nodes) stop(n);

    const late = nodes[0]!;
    const stored = lastCheckpoint(walRecordsIn(late.dir)).height;
    assert.ok(stored > HALT, `the stored chain is at ${stored}, past ${HALT}`);
    for (const haltHeight of [HALT, stored - 1]) {
      assert.throws(
        () => start(hub, genesis, 'v0', late.dir, keys[0]!, txs, haltHeight, 0),
        (e: unknown) => {
          assert.ok(e instanceof NodeError, `a NodeError: ${String(e)}`);
          assert.equal(e.code, 'HaltHeightReached');
          assert.ok(e.message.includes(`at height ${stored}`), e.message);
          assert.ok(e.message.includes('holds no snapshot'), e.message);
          // The file to copy from a node that stopped there.
          const file = `snapshot-${String(haltHeight).padStart(16, '0')}.snap`;
          assert.ok(e.message.includes(`data/snapshots/${file}`), e.message);
          // Removing the halt height would re-execute the heights up to it.
          assert.ok(!e.message.includes('remove the halt height (and run'), e.message);
          return true;
        },
        `haltHeight ${haltHeight}`,
      );
    }
  } finally {
    stopAll(nodes);
    tmp.remove();
  }
});

test('a validator stored at the halt height without its snapshot (it waited at the next height for peers that stopped) saves it and stops when started with the halt height, signing nothing; restarted without it, it resumes from that snapshot', async () => {
  const { tmp, keys, genesis, hub, txs } = fourValidators('zomma-halt-height-at-');
  // v0 was not given the halt height; the others stop at it, so v0 waits alone at HALT + 1.
  const nodes = keys.map((key, i) =>
    start(hub, genesis, `v${i}`, `${tmp.dir}/v${i}`, key, txs, i === 0 ? undefined : HALT, 0),
  );
  try {
    await waitFor(
      () =>
        nodes.slice(1).every((n) => n.stopped !== null) && nodes[0]!.sentHeights.includes(HALT + 1),
      30_000,
      'three stopped at the halt height and v0 voted at the next',
    );
    const late = nodes[0]!;
    assert.equal(late.loop.haltReport, null, 'v0: no failure');
    assert.equal(late.app.height, HALT, 'v0 cannot commit past the halt height alone');
    stop(late);
    assert.equal(lastCheckpoint(walRecordsIn(late.dir)).height, HALT);
    const snapshotsOf = (dir: string): number[] => {
      const storage = openStorage(dir);
      try {
        return storage.snapshots.heights();
      } finally {
        storage.close();
      }
    };
    assert.ok(!snapshotsOf(late.dir).includes(HALT), 'no snapshot of the halt height yet');

    const again = start(hub, genesis, 'v0', late.dir, keys[0]!, txs, HALT, 0);
    try {
      assert.deepEqual(
        again.stopped,
        {
          height: HALT,
          appHash: nodes[1]!.stopped!.appHash,
          snapshotSaved: true,
        },
        'stopped at once, with the appHash the others stopped with',
      );
      assert.equal(again.loop.isRunning, false);
      assert.deepEqual(again.sentHeights, [], 'nothing sent');
    } finally {
      stop(again);
    }
    assert.ok(snapshotsOf(late.dir).includes(HALT), 'the snapshot of the halt height saved');
    // Its votes for HALT + 1, signed before, are still in its WAL for the next start.
    assert.ok(
      signedRecordHeights(walRecordsIn(late.dir)).includes(HALT + 1),
      'the signed records after the checkpoint kept',
    );
    // Started again with the halt height: it stopped there, so now it is refused.
    assert.throws(
      () => start(hub, genesis, 'v0', late.dir, keys[0]!, txs, HALT, 0),
      (e: unknown) =>
        e instanceof NodeError &&
        e.code === 'HaltHeightReached' &&
        e.message.includes('where this node stops'),
    );
    const resumed = start(hub, genesis, 'v0', late.dir, keys[0]!, txs, undefined, 0);
    stop(resumed);
    assert.deepEqual(resumed.restored, { snapshotHeight: HALT, replayedBlocks: 0 });
  } finally {
    stopAll(nodes);
    tmp.remove();
  }
});

test('a start stored at the halt height without its snapshot that finds its data directory replaced halts with StorageReplaced (as a running node does before a snapshot), saving nothing', async () => {
  const { tmp, keys, genesis, hub, txs } = fourValidators('zomma-halt-height-replaced-');
  const nodes = keys.map((key, i) =>
    start(hub, genesis, `v${i}`, `${tmp.dir}/v${i}`, key, txs, HALT, 0),
  );
  try {
    await waitFor(
      () => nodes.every((n) => n.stopped !== null || n.loop.haltReport !== null),
      30_000,
      'every validator at the halt height',
    );
    const node = nodes[0]!;
    assert.equal(node.loop.haltReport, null, 'v0: no failure');
    stop(node);
    // Stored at the halt height without its snapshot (as if it had not stopped there).
    rmSync(join(node.dir, 'snapshots', snapshotFileName(HALT)));
    const replaced = (): void => {
      throw new StorageError('StorageReplaced', join(node.dir, 'wal.log'), null, 'another file');
    };
    const again = start(hub, genesis, 'v0', node.dir, keys[0]!, txs, HALT, 0, replaced);
    try {
      assert.equal(again.loop.haltReport?.code, 'StorageReplaced', 'halted, not thrown');
      assert.equal(again.stopped, null, 'not stopped at the halt height');
      assert.deepEqual(again.storage.snapshots.heights(), [], 'no snapshot written');
    } finally {
      stop(again);
    }
  } finally {
    stopAll(nodes);
    tmp.remove();
  }
});

/** The records of the WAL in `dir` (the directory closed again). */
function walRecordsIn(dir: string): Uint8Array[] {
  const storage = openStorage(dir);
  try {
    return storage.wal.readAll();
  } finally {
    storage.close();
  }
}
