// A client's transaction that a peer missed (down, or full, when it was first
// gossiped) reaches it at the next re-gossip round. One exchange node of a
// four-validator genesis runs alone (no quorum: nothing commits), beside a
// bare network member standing for a peer; every timer is fired by the test.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { devnetGenesis } from '../../src/exchange/index.ts';
import { buildTx } from '../../src/exchange/tx/index.ts';
import { toHex } from '../../src/lib/bytes.ts';
import { MEMPOOL_REGOSSIP_MS } from '../../src/lib/limits.ts';
import { CHANNEL, unframe } from '../../src/node/framing.ts';
import { decodeTxBatch } from '../../src/node/gossip.ts';
import { MemoryHub } from '../../src/node/network.ts';
import { ZommaNode, consensusGenesisOf } from '../../src/node/node.ts';
import { openStorage } from '../../src/node/storage/index.ts';
import { FAST_TIMEOUTS, ManualClock, tempDir, testKey, waitFor } from './helpers.ts';

test('a client transaction a peer missed is gossiped to it again at the next round', async () => {
  const tmp = tempDir('zomma-regossip-');
  const keys = [0, 1, 2, 3].map(testKey);
  const genesis = devnetGenesis(keys.map((k) => k.publicKey));
  const hub = new MemoryHub();
  const clock = new ManualClock(1_000_000);
  const storage = openStorage(tmp.dir);
  const node = new ZommaNode({
    genesis,
    consensusGenesis: consensusGenesisOf(genesis),
    key: keys[0]!,
    storage,
    network: hub.join(toHex(keys[0]!.publicKey)),
    prices: null,
    timeouts: FAST_TIMEOUTS,
    clock,
    snapshotEveryHeights: 0,
    snapshotsKept: 1,
  });
  const peerId = toHex(keys[1]!.publicKey);
  const peer = hub.join(peerId);
  const received: string[] = [];
  peer.onMessage((_from, bytes) => {
    const { channel, payload } = unframe(bytes);
    if (channel !== CHANNEL.mempool) return;
    for (const tx of decodeTxBatch(payload)) received.push(toHex(tx));
  });
  try {
    await peer.start();
    await node.start();
    hub.isolated.add(peerId);
    const tx = buildTx({
      chainId: genesis.chainId,
      key: testKey(100),
      nonce: clock.nowMs(),
      action: { kind: 'faucet', amountQuote: 1_000_000n },
    });
    assert.deepEqual(await node.submit(tx.bytes), { ok: true, hash: toHex(tx.hash) });
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.deepEqual(received, [], 'the first gossip did not reach the peer');
    hub.isolated.delete(peerId);
    // The first round marks what is held; the next gossips what waited a whole round.
    clock.advance(MEMPOOL_REGOSSIP_MS);
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.deepEqual(received, []);
    clock.advance(MEMPOOL_REGOSSIP_MS);
    await waitFor(() => received.length > 0, 20_000, 'the re-gossip');
    assert.deepEqual(received, [toHex(tx.bytes)]);
  } finally {
    await node.stop();
    await peer.stop();
    storage.close();
    tmp.remove();
  }
});
