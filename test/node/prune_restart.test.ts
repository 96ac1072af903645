// A power cut keeps of the WAL only what was synced. A full node signs no
// vote, so nothing syncs its checkpoints between WAL rotations: snapshot and
// block pruning must still leave a restart from its last durable checkpoint
// a snapshot at or below it, and the blocks after that snapshot.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { utf8 } from '../../src/lib/bytes.ts';
import { CHANNEL, unframe } from '../../src/node/framing.ts';
import { NodeLoop, lastCheckpoint } from '../../src/node/loop.ts';
import { MemoryHub } from '../../src/node/network.ts';
import type { MemoryNetwork } from '../../src/node/network.ts';
import { restoreApp } from '../../src/node/restore.ts';
import { openStorage } from '../../src/node/storage/index.ts';
import type { FileStorage, Storage } from '../../src/node/storage/index.ts';
import type { Genesis } from '../../src/consensus/index.ts';
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

interface Running {
  loop: NodeLoop;
  app: HashChainApp;
  storage: FileStorage;
  wal: DurableWal;
  net: MemoryNetwork;
}

function start(hub: MemoryHub, genesis: Genesis, name: string, dir: string, validator: boolean) {
  const storage = openStorage(dir);
  const wal = new DurableWal(storage.wal, false);
  // The validator's own WAL syncs on libuv's pool (walSyncInBackground), so its loop yields.
  const tracked: Storage = {
    wal: validator ? storage.wal : wal,
    blocks: storage.blocks,
    snapshots: storage.snapshots,
    close: () => storage.close(),
  };
  const { app } = restoreApp(
    tracked,
    lastCheckpoint(wal.readAll()),
    () => new HashChainApp(genesis.appHash),
    (bytes) => HashChainApp.fromSnapshot(bytes),
  );
  const net = hub.join(name);
  const txs = Array.from({ length: 200 }, (_, i) => utf8(`tx ${i}`));
  const loop = new NodeLoop({
    genesis,
    timeouts: FAST_TIMEOUTS,
    signer: validator ? signerOf(testKey(0), genesis.chainId) : null,
    verifier: verifierFor(genesis.chainId),
    app,
    storage: tracked,
    network: net,
    reap: () => txs.splice(0, 2),
    snapshotEveryHeights: 2,
    snapshotsKept: 2,
    // The validator keeps every block: the full node catches up from it after the cut.
    blocksKept: validator ? 0 : 3,
    walRotateBytes: 1 << 30,
    walSyncInBackground: true,
    commitPauseMs: 20,
  });
  net.onMessage((from, bytes) => {
    const { channel, payload } = unframe(bytes);
    if (channel === CHANNEL.consensus) loop.onConsensusMessage(from, payload);
  });
  void net.start();
  loop.start();
  return { loop, app, storage, wal, net } satisfies Running;
}

function stop(node: Running): void {
  node.loop.stop();
  void node.net.stop();
  node.storage.close();
}

test('a full node with pruning restarts after a power cut from its last durable checkpoint', async () => {
  const tmp = tempDir('zomma-prune-restart-');
  const genesis = testGenesis([testKey(0)]);
  const hub = new MemoryHub();
  const validator = start(hub, genesis, 'v0', `${tmp.dir}/v0`, true);
  const fullDir = `${tmp.dir}/full`;
  let full = start(hub, genesis, 'full', fullDir, false);
  try {
    await waitFor(() => full.app.height >= 3, 20_000, 'the full node at height 3');
    // A clean restart: its checkpoint is durable, so blocks below a snapshot may go.
    stop(full);
    full = start(hub, genesis, 'full', fullDir, false);
    const from = full.app.height;
    await waitFor(() => full.app.height >= from + 10, 20_000, 'ten heights more');
    assert.equal(full.loop.haltReport, null);
    assert.ok(full.storage.blocks.firstHeight() > 1, 'blocks were pruned');
    const durable = full.wal.durableNext;
    stop(full);
    cutPower(fullDir, durable);

    full = start(hub, genesis, 'full', fullDir, false);
    const target = full.app.height + 2;
    await waitFor(() => full.app.height >= target, 20_000, 'the full node goes on');
    assert.equal(full.loop.haltReport, null);
  } finally {
    stop(full);
    stop(validator);
    tmp.remove();
  }
});
