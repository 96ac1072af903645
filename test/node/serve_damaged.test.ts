// A stored block whose record fails its checksum (media rot) is the node's
// to report; a peer's catch-up request for it must not halt the node.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { encode } from '../../src/codec/wire.ts';
import { messageCodec } from '../../src/consensus/index.ts';
import { utf8 } from '../../src/lib/bytes.ts';
import { NodeLoop } from '../../src/node/loop.ts';
import { MemoryHub } from '../../src/node/network.ts';
import { openStorage } from '../../src/node/storage/index.ts';
import { RECORD_HEADER_BYTES } from '../../src/node/storage/record_log.ts';
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
import { recordOffsets } from './storage/layout.ts';

/** Flips a payload byte of the block log's second record. */
function damageSecondBlock(path: string): void {
  // Found by the records' length words (sync markers and the header skipped).
  const second = recordOffsets(readFileSync(path))[1]!;
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, new Uint8Array([0xee]), 0, 1, second + RECORD_HEADER_BYTES + 5);
  } finally {
    closeSync(fd);
  }
}

test('a catch-up request for a damaged stored block does not halt the node', async () => {
  const tmp = tempDir('zomma-serve-damaged-');
  const genesis = testGenesis([testKey(0)]);
  const storage = openStorage(tmp.dir);
  const app = new HashChainApp(genesis.appHash);
  const net = new MemoryHub().join('v0');
  const txs = Array.from({ length: 40 }, (_, i) => utf8(`tx ${i}`));
  const loop = new NodeLoop({
    genesis,
    timeouts: FAST_TIMEOUTS,
    signer: signerOf(testKey(0), genesis.chainId),
    verifier: verifierFor(genesis.chainId),
    app,
    storage,
    network: net,
    reap: () => txs.splice(0, 1),
    snapshotEveryHeights: 0,
    snapshotsKept: 1,
    walSyncInBackground: true,
    commitPauseMs: 20,
  });
  void net.start();
  loop.start();
  try {
    await waitFor(() => app.height >= 4, 20_000, 'height 4');
    damageSecondBlock(`${tmp.dir}/blocks.log`);
    const request = encode(messageCodec, { kind: 'blockRequest', fromHeight: 1, count: 3 });
    loop.onConsensusMessage('peer', request);
    const height = app.height;
    await waitFor(() => app.height >= height + 2 || loop.haltReport !== null, 20_000, 'more');
    assert.equal(loop.haltReport, null);
  } finally {
    loop.stop();
    void net.stop();
    storage.close();
    tmp.remove();
  }
});
