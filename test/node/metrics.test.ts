import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ZommaApiError, ZommaClient } from '../../src/api/client/index.ts';
import { EXECUTION_VERSION, devnetGenesis } from '../../src/exchange/index.ts';
import { toHex } from '../../src/lib/bytes.ts';
import { NodeMetrics, startMetricsServer } from '../../src/node/metrics.ts';
import { MemoryHub } from '../../src/node/network.ts';
import { ZommaNode, consensusGenesisOf } from '../../src/node/node.ts';
import { StorageError, openStorage } from '../../src/node/storage/index.ts';
import { PROTOCOL_VERSION, emptyCounters } from '../../src/node/transport/index.ts';
import type { PeerVersionRefusal } from '../../src/node/transport/index.ts';
import type { Storage } from '../../src/node/storage/index.ts';
import { join } from 'node:path';
import { zomma } from '../cli/helpers.ts';
import { startSoloNode, until } from '../e2e/helpers.ts';
import { tempDir, testKey } from './helpers.ts';

/** A one-validator node on a memory network, its storage under `dir`, no prices, no snapshots. */
function soloNode(dir: string): {
  genesis: ReturnType<typeof devnetGenesis>;
  storage: Storage;
  node: ZommaNode;
} {
  const key = testKey(0);
  const genesis = { ...devnetGenesis([key.publicKey]), genesisTimeMs: 1_000 };
  const storage = openStorage(`${dir}/data`);
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
  return { genesis, storage, node };
}

test('a block read that fails answers /chain with 500 and its code; the listener keeps answering', async () => {
  const tmp = tempDir('zomma-metrics-');
  const { genesis, storage, node } = soloNode(tmp.dir);
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

test("the metrics port asked for what it does not serve (the API, most often) says what it serves, and the SDK and CLI say the URL may not be the node's API", async () => {
  // Only paths it does not serve are asked: the metrics behind it are never read.
  const { server, url } = await startMetricsServer({} as NodeMetrics, '127.0.0.1', 0);
  const serves =
    "this is a node's metrics listener, which serves GET /metrics, /health, /status and /chain; " +
    'the API listens on a port of its own';
  try {
    const status = await fetch(`${url}/v1/status`);
    assert.equal(status.status, 404);
    assert.deepEqual(await status.json(), {
      code: 'NotFound',
      message: `no route GET /v1/status here: ${serves}`,
    });
    const post = await fetch(`${url}/v1/tx`, { method: 'POST', body: '{}' });
    assert.equal(post.status, 405);
    assert.deepEqual(await post.json(), {
      code: 'MethodNotAllowed',
      message: `no route POST /v1/tx here: ${serves}`,
    });
    await assert.rejects(new ZommaClient(url).status(), (e: unknown) => {
      assert.ok(e instanceof ZommaApiError);
      assert.deepEqual([e.status, e.code], [404, 'NotFound']);
      assert.equal(
        e.message,
        `no route GET /v1/status here: ${serves} ` +
          `(${url} may not be the node's API: the API serves GET /v1/status)`,
      );
      return true;
    });
    const cli = await zomma('query', 'status', '--node', url);
    assert.equal(cli.code, 1);
    assert.match(
      cli.err,
      /^zomma query: NotFound: no route GET \/v1\/status here: this is a node's metrics listener/,
    );
    assert.match(cli.err, /may not be the node's API: the API serves GET \/v1\/status\)\n$/);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** One sample of a metric by its name and labels, as /metrics writes it; null when absent. */
function sample(text: string, series: string): number | null {
  const escaped = series.replace(/[{}"=,.+]/g, (c) => `\\${c}`);
  const match = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text);
  return match === null ? null : Number(match[1]);
}

test('/metrics as an operator reads it: types, labels, and values that move with the chain', async () => {
  const solo = await startSoloNode();
  const keys = tempDir('zomma-metrics-keys-');
  const url = solo.running.metricsUrl!;
  const scrape = async () => (await fetch(`${url}/metrics`)).text();
  try {
    await until(() => solo.running.node.app.height >= 3, 20_000, 'height 3');
    const first = await scrape();
    // Types: what `rate()` and `histogram_quantile()` need.
    for (const [name, type] of [
      ['zomma_height', 'gauge'],
      ['zomma_round', 'gauge'],
      ['zomma_mempool_txs', 'gauge'],
      ['zomma_peers', 'gauge'],
      ['zomma_catching_up', 'gauge'],
      ['zomma_txs_committed_total', 'counter'],
      ['zomma_mempool_rejected_total', 'counter'],
      ['zomma_exchange_rejected_total', 'counter'],
      ['zomma_commit_latency_ms', 'histogram'],
      ['zomma_block_execution_ms', 'histogram'],
      ['zomma_wal_fsync_ms', 'histogram'],
      ['zomma_consensus_step_ms', 'histogram'],
    ] as const) {
      assert.match(first, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), `${name} is a ${type}`);
    }

    // A transaction the exchange refuses (an account with no money) is counted by its code.
    const key = join(keys.dir, 'k.json');
    assert.equal((await zomma('keys', 'new', '--out', key)).code, 0);
    const order = await zomma(
      'tx',
      'order',
      'BTC-PERPETUAL',
      'buy',
      '10',
      '--market',
      '--node',
      solo.apiUrl,
      '--key-file',
      key,
      '--json',
    );
    assert.equal(order.code, 1, order.err);
    // Refused whole: no deposit opened the account.
    const { code } = JSON.parse(order.out) as { code: string };
    assert.equal(code, 'UnknownAccount');
    // An action refused inside a transaction that ran (the transaction is ok,
    // its withdrawal is not) is counted by the action's code.
    assert.equal(
      (await zomma('tx', 'faucet', '10', '--node', solo.apiUrl, '--key-file', key)).code,
      0,
    );
    const withdraw = await zomma(
      'tx',
      'withdraw',
      '1000000',
      `0x${'ab'.repeat(20)}`,
      '--node',
      solo.apiUrl,
      '--key-file',
      key,
      '--json',
    );
    assert.equal(withdraw.code, 1, withdraw.err);
    const refused = JSON.parse(withdraw.out) as { code: string; actions: { code: string }[] };
    assert.equal(refused.actions[0]!.code, 'InsufficientFunds');
    // A transaction that does not decode never reaches a label: the mempool counts it by its typed code.
    const junk = await fetch(`${solo.apiUrl}/v1/tx`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tx: 'zz-not-a-tx-from-outside' }),
    });
    assert.ok(junk.status >= 400, `junk answered ${junk.status}`);
    const height = solo.running.node.app.height;
    await until(() => solo.running.node.app.height >= height + 2, 20_000, 'two more heights');

    // Stopped, so that what the loop measured and what /metrics says are of one moment.
    solo.running.node.loop.stop();
    const text = await scrape();
    assert.equal(sample(text, `zomma_exchange_rejected_total{code="${code}"}`), 1, code);
    assert.equal(sample(text, 'zomma_exchange_rejected_total{code="InsufficientFunds"}'), 1);
    assert.ok(sample(text, 'zomma_height')! > sample(first, 'zomma_height')!, 'the height moved');
    for (const step of ['propose', 'prevote', 'precommit']) {
      const now = sample(text, `zomma_consensus_step_ms_count{step="${step}"}`);
      const before = sample(first, `zomma_consensus_step_ms_count{step="${step}"}`) ?? 0;
      assert.ok(
        now !== null && now > before,
        `${step} step durations observed: ${before} → ${now}`,
      );
    }
    // Every WAL sync (a validator of several syncs two or three times a height: test/e2e/operations).
    assert.equal(sample(text, 'zomma_wal_fsync_ms_count'), solo.running.node.loop.stats.walSyncs);
    assert.equal(
      sample(text, 'zomma_commit_latency_ms_count'),
      solo.running.node.loop.stats.blocksExecuted,
    );
    // Every label value is one of a fixed set of codes: nothing a client sent.
    for (const line of text.split('\n')) {
      for (const [, value] of line.matchAll(/="([^"]*)"/g)) {
        assert.match(value!, /^([A-Za-z][A-Za-z0-9]*|[0-9.e+]+|\+Inf)$/, `label value in ${line}`);
      }
    }
    const health = (await (await fetch(`${url}/health`)).json()) as { ok: boolean };
    assert.equal(health.ok, true, 'a node that commits is healthy');
  } finally {
    await solo.stop();
    keys.remove();
  }
});

test('/health: 503 once halted, while catching up, and when no block came for a while', async () => {
  const tmp = tempDir('zomma-health-');
  const { genesis, storage, node } = soloNode(tmp.dir);
  let nowMs = 1_000_000;
  const metrics = new NodeMetrics({
    node,
    storage,
    peersConnected: () => 0,
    chainId: genesis.chainId,
    moniker: 'm',
    noBlockMs: 30_000,
    nowMs: () => nowMs,
  });
  const { server, url } = await startMetricsServer(metrics, '127.0.0.1', 0);
  const health = async () => {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5_000) });
    return { status: res.status, body: (await res.json()) as { ok: boolean; problems: string[] } };
  };
  try {
    assert.equal((await health()).status, 200);
    assert.deepEqual((await health()).body.problems, []);
    nowMs += 30_001;
    assert.deepEqual((await health()).body.problems, ['NotCommitting']);
    assert.equal((await health()).status, 503);
    nowMs -= 30_001;
    // Fetching the blocks of peers that are ahead: its state is behind the chain's.
    const catchingUp = node.loop.catchingUp;
    node.loop.catchingUp = () => true;
    assert.equal((await health()).status, 503);
    assert.deepEqual((await health()).body.problems, ['CatchingUp']);
    node.loop.catchingUp = catchingUp;
    assert.equal((await health()).status, 200);
    node.loop.halt({ code: 'AppHashMismatch', message: 'm', height: 0, details: {} });
    assert.equal((await health()).status, 503);
    assert.deepEqual((await health()).body.problems, ['Halted']);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    storage.close();
    tmp.remove();
  }
});

test('/status shows the execution and wire versions and the peers refused for theirs; /metrics counts the refusals', async () => {
  const tmp = tempDir('zomma-metrics-');
  const { genesis, storage, node } = soloNode(tmp.dir);
  const counters = emptyCounters();
  counters.drops.executionVersion = 3;
  counters.drops.wireVersion = 1;
  const refusal: PeerVersionRefusal = {
    kind: 'execution',
    peer: 'ab'.repeat(32),
    address: '10.0.0.2',
    wireVersion: null,
    executionVersion: EXECUTION_VERSION - 1,
    ourExecutionVersion: EXECUTION_VERSION,
  };
  const metrics = new NodeMetrics({
    node,
    storage,
    peersConnected: () => 0,
    transport: () => counters,
    versionRefusals: () => [refusal],
    chainId: genesis.chainId,
    moniker: 'm',
  });
  const { server, url } = await startMetricsServer(metrics, '127.0.0.1', 0);
  try {
    const get = (path: string) => fetch(`${url}${path}`, { signal: AbortSignal.timeout(5_000) });
    const status = (await (await get('/status')).json()) as Record<string, unknown>;
    assert.equal(status.executionVersion, EXECUTION_VERSION);
    assert.equal(status.wireVersion, PROTOCOL_VERSION);
    assert.deepEqual(status.peersRefused, [refusal]);
    const text = await (await get('/metrics')).text();
    assert.match(text, /^zomma_peer_dropped_total\{reason="executionVersion"\} 3$/m);
    assert.match(text, /^zomma_peer_dropped_total\{reason="wireVersion"\} 1$/m);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    storage.close();
    tmp.remove();
  }
});
