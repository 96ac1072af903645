import { test } from 'node:test';
import assert from 'node:assert/strict';
import { devnetGenesis } from '../../src/exchange/index.ts';
import { toHex } from '../../src/lib/bytes.ts';
import { NodeMetrics, startMetricsServer } from '../../src/node/metrics.ts';
import { MemoryHub } from '../../src/node/network.ts';
import { ZommaNode, consensusGenesisOf } from '../../src/node/node.ts';
import { StorageError, openStorage } from '../../src/node/storage/index.ts';
import type { Storage } from '../../src/node/storage/index.ts';
import { tempDir, testKey } from './helpers.ts';

test('a block read that fails answers /chain with 500 and its code; the listener keeps answering', async () => {
  const tmp = tempDir('zomma-metrics-');
  const key = testKey(0);
  const genesis = { ...devnetGenesis([key.publicKey]), genesisTimeMs: 1_000 };
  const storage = openStorage(`${tmp.dir}/data`);
  const node = new ZommaNode({
    genesis,
    consensusGenesis: consensusGenesisOf(genesis),
    key,
    storage,
    network: new MemoryHub().join(toHex(key.publicKey)),
    prices: null,
    snapshotEveryHeights: 0,
    snapshotsKept: 1,
  });
  // A block whose bytes rotted on disk: the log checks its payload when it is read.
  const rotten: Storage = {
    wal: storage.wal,
    snapshots: storage.snapshots,
    blocks: {
      firstHeight: () => 1,
      lastHeight: () => 1,
      save: () => {},
      close: () => {},
      load: () => {
        throw new StorageError(
          'StorageCorrupt',
          'blocks.log',
          16,
          'record payload fails its checksum',
        );
      },
    },
    close: () => {},
  };
  const metrics = new NodeMetrics({
    node,
    storage: rotten,
    peersConnected: () => 0,
    chainId: genesis.chainId,
    moniker: 'm',
  });
  const { server, url } = await startMetricsServer(metrics, '127.0.0.1', 0);
  try {
    const get = (path: string) => fetch(`${url}${path}`, { signal: AbortSignal.timeout(5_000) });
    const chain = await get('/chain?from=1&to=1');
    assert.equal(chain.status, 500);
    const body = (await chain.json()) as { code: string; message: string };
    assert.equal(body.code, 'StorageCorrupt');
    assert.match(body.message, /blocks\.log at offset 16/);
    const health = await get('/health');
    assert.equal(health.status, 200);
    const text = await (await get('/metrics')).text();
    assert.match(text, /^zomma_signing_paused_until_height 0$/m);
    assert.match(text, /^zomma_consensus_timeouts_total\{step="propose"\} 0$/m);
    assert.match(text, /^zomma_heights_decided_after_round0_total 0$/m);
    // 0 is also what a node restarted after a pause ended reads: no pause since it started.
    assert.match(
      text,
      /^# HELP zomma_signing_paused_until_height .*\(0: no pause since the node started\)$/m,
    );
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    storage.close();
    tmp.remove();
  }
});

test('a failed accept on the metrics port (an error event once listening) does not end the process', async () => {
  // No request is made: the metrics behind it are never read.
  const { server } = await startMetricsServer({} as NodeMetrics, '127.0.0.1', 0);
  try {
    // Unhandled, this would throw out of emit and end the process (twice: not only the first).
    for (let i = 0; i < 2; i++) {
      server.emit(
        'error',
        Object.assign(new Error('accept ECONNABORTED'), { code: 'ECONNABORTED' }),
      );
    }
    assert.equal(server.listening, true);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});
