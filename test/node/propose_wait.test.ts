// The proposer's wait for transactions (proposeWaitMs) and the commit pause
// cut short by arriving transactions, on one validator (always the proposer)
// over file storage with a manual clock: every timer is fired by the test.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NodeLoop } from '../../src/node/loop.ts';
import { MemoryHub } from '../../src/node/network.ts';
import { openStorage } from '../../src/node/storage/index.ts';
import { utf8 } from '../../src/lib/bytes.ts';
import {
  FAST_TIMEOUTS,
  HashChainApp,
  signerOf,
  tempDir,
  testGenesis,
  testKey,
  verifierFor,
  ManualClock,
} from './helpers.ts';

const WAIT_MS = 37;
const PAUSE_MS = 1_234;

function setup(commitPauseMs: number) {
  const tmp = tempDir('zomma-propose-wait-');
  const key = testKey(0);
  const genesis = testGenesis([key]);
  const storage = openStorage(tmp.dir);
  const app = new HashChainApp(genesis.appHash);
  const clock = new ManualClock();
  const mempool: Uint8Array[] = [];
  const blockTxs: number[] = [];
  const loop = new NodeLoop({
    genesis,
    timeouts: FAST_TIMEOUTS,
    signer: signerOf(key, genesis.chainId),
    verifier: verifierFor(genesis.chainId),
    app,
    storage,
    network: new MemoryHub().join('v0'),
    clock,
    reap: () => mempool.splice(0),
    pendingTxs: () => mempool.length,
    proposeWaitMs: WAIT_MS,
    commitPauseMs,
    snapshotEveryHeights: 0,
    snapshotsKept: 1,
    hooks: { onExecuted: (e) => void blockTxs.push(e.block.txs.length) },
  });
  const admit = (n: number) => {
    for (let i = 0; i < n; i++) mempool.push(utf8(`tx-${blockTxs.length}-${mempool.length}`));
    loop.txsAdmitted();
  };
  return {
    loop,
    app,
    clock,
    blockTxs,
    admit,
    close: () => {
      loop.stop();
      storage.close();
      tmp.remove();
    },
  };
}

test('an empty mempool holds the proposal until a transaction arrives', () => {
  const t = setup(0);
  try {
    t.loop.start();
    assert.equal(t.app.height, 0, 'no block without transactions before the wait ends');
    assert.equal(t.clock.pending(WAIT_MS), 1);
    t.admit(1);
    assert.equal(t.app.height, 1, 'the transaction is proposed and committed at once');
    assert.deepEqual(t.blockTxs, [1]);
    assert.equal(t.clock.pending(WAIT_MS), 1, 'height 2 waits in turn');
  } finally {
    t.close();
  }
});

test('the wait is bounded: when it ends the block is built with what there is', () => {
  const t = setup(0);
  try {
    t.loop.start();
    t.clock.fire(WAIT_MS);
    assert.equal(t.app.height, 1);
    assert.deepEqual(t.blockTxs, [0]);
  } finally {
    t.close();
  }
});

test('the next proposal waits for as many transactions as the last block had', () => {
  const t = setup(0);
  try {
    t.loop.start();
    t.admit(3);
    assert.deepEqual(t.blockTxs, [3]);
    t.admit(2);
    assert.equal(t.app.height, 1, 'two of the three expected: still waiting');
    t.admit(1);
    assert.equal(t.app.height, 2);
    assert.deepEqual(t.blockTxs, [3, 3]);
    // Transactions already waiting when the height starts: no wait at all.
    t.admit(0);
  } finally {
    t.close();
  }
});

test('a commit pause is skipped with transactions waiting and cut short when one arrives', () => {
  const t = setup(PAUSE_MS);
  try {
    t.loop.start();
    t.admit(1);
    assert.equal(t.app.height, 1);
    // Executed with an empty mempool: the pause runs.
    assert.equal(t.clock.pending(PAUSE_MS), 1);
    t.admit(1);
    assert.equal(t.app.height, 2, 'the pause ended and the transaction was committed');
    assert.deepEqual(t.blockTxs, [1, 1]);
    // The pause runs again on an idle chain and ends on its own.
    assert.equal(t.clock.pending(PAUSE_MS), 1);
    t.clock.fire(PAUSE_MS);
    assert.equal(t.clock.pending(WAIT_MS), 1, 'the next height started and its proposal waits');
  } finally {
    t.close();
  }
});
