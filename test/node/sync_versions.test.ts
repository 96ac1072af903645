// State sync over the TCP transport never hears a peer of another execution
// version: the handshake refuses it (transport/secure.ts), so its snapshots
// are never offered, let alone restored, and the sync that finds nothing says
// which peer was refused and for which versions. A peer of the same version
// is asked and answers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { devnetGenesis } from '../../src/exchange/index.ts';
import { toHex } from '../../src/lib/bytes.ts';
import { CHANNEL, unframe } from '../../src/node/framing.ts';
import type { PeerNetwork } from '../../src/node/network.ts';
import { consensusGenesisOf } from '../../src/node/node.ts';
import { openStorage } from '../../src/node/storage/index.ts';
import { StateSyncer, SyncError } from '../../src/node/sync.ts';
import { SyncServer } from '../../src/node/sync_server.ts';
import { PeerVersionError, TcpTransport } from '../../src/node/transport/index.ts';
import { CHAIN_ID, TEST_LIMITS, keyOf } from './transport/helpers.ts';
import { tempDir, verifierFor } from './helpers.ts';

function networkOf(t: TcpTransport): PeerNetwork {
  return {
    start: () => t.start(),
    stop: () => t.stop(),
    send: (peer, bytes) => void t.send(peer, bytes),
    broadcast: (bytes) => t.broadcast(bytes),
    onMessage: (handler) => t.onMessage(handler),
    peerCount: () => t.peers().filter((p) => p.state === 'connected').length,
    versionRefusals: () => t.versionRefusals().map((r) => new PeerVersionError(r).message),
  };
}

/**
 * A syncing node of execution version `own` with one peer, of `served`, that
 * serves state sync from an empty store: the sync ends NoSnapshot either way;
 * what differs is whether the peer was heard.
 */
async function syncAgainst(
  own: number,
  served: number,
): Promise<{ error: SyncError; offersReceived: number; serverRequests: number }> {
  const tmp = tempDir('zomma-sync-versions-');
  const keys = [keyOf(0), keyOf(1)];
  const make = (i: number, executionVersion: number): TcpTransport =>
    new TcpTransport({
      chainId: CHAIN_ID,
      key: keys[i]!,
      host: '127.0.0.1',
      port: 0,
      peers: keys.map((k) => ({ publicKey: k.publicKey })),
      limits: TEST_LIMITS,
      random: () => 0.5,
      executionVersion,
    });
  const syncing = make(0, own);
  const serving = make(1, served);
  const storage = openStorage(`${tmp.dir}/served`);
  const genesis = { ...devnetGenesis(keys.map((k) => k.publicKey)), chainId: CHAIN_ID };
  try {
    const server = new SyncServer({
      storage,
      network: networkOf(serving),
      clock: { nowMs: () => Date.now(), after: () => () => {} },
    });
    let serverRequests = 0;
    serving.onMessage((peer, bytes) => {
      const { channel, payload } = unframe(bytes);
      if (channel !== CHANNEL.sync) return;
      serverRequests++;
      server.onMessage(peer, payload);
    });
    await Promise.all([syncing.start(), serving.start()]);
    syncing.setPeerAddress(serving.self, '127.0.0.1', serving.address().port);
    const syncer = new StateSyncer({
      network: networkOf(syncing),
      consensusGenesis: consensusGenesisOf(genesis),
      verifier: verifierFor(CHAIN_ID),
      restore: () => {
        throw new Error('nothing may be restored here');
      },
      discoveryMs: 100,
      responseTimeoutMs: 500,
      timeoutMs: 1_500,
    });
    syncing.onMessage((peer, bytes) => {
      const { channel, payload } = unframe(bytes);
      if (channel === CHANNEL.sync) syncer.onMessage(peer, payload);
    });
    const error = await syncer.run().then(
      () => assert.fail('the sync found a snapshot'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof SyncError, String(error));
    return { error, offersReceived: syncer.stats.offersReceived, serverRequests };
  } finally {
    await Promise.all([syncing.stop(), serving.stop()]);
    storage.close();
    tmp.remove();
  }
}

test('state sync never asks a peer of another execution version, and says why none answered', async () => {
  const r = await syncAgainst(5, 4);
  assert.equal(r.error.code, 'NoSnapshot');
  assert.equal(r.offersReceived, 0);
  assert.equal(r.serverRequests, 0);
  assert.match(
    r.error.message,
    new RegExp(
      `^no peer offered a snapshot \\(0 connected, 0 answered\\): peers refused for their versions: peer ${toHex(keyOf(1).publicKey)} \\(127\\.0\\.0\\.1\\) runs execution version 4, this node 5: refused; see docs/operations\\.md "Upgrades"$`,
    ),
  );
});

test('state sync asks a peer of its own execution version (the same setup, answered)', async () => {
  const r = await syncAgainst(5, 5);
  assert.equal(r.error.code, 'NoSnapshot');
  assert.ok(r.offersReceived > 0);
  assert.ok(r.serverRequests > 0);
  assert.match(r.error.message, /^no peer offered a snapshot \(1 connected, 1 answered\)$/);
});
