// A transaction the mempool lets go of before any block holds it, seen
// through a real node, its read model and the API server: a `wait=commit`
// request waiting for it is answered at once with why (over HTTP and the
// WebSocket), and looking it up says `dropped` with the same code. Evicted
// (this node's decision: it may still commit) and a nonce used on chain (it
// never will) each come through their own path of the mempool.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ZommaApiError, ZommaClient } from '../../src/api/client/index.ts';
import { startApiServer } from '../../src/api/server.ts';
import type { KeyPair } from '../../src/crypto/index.ts';
import { devnetGenesis } from '../../src/exchange/index.ts';
import { buildTx } from '../../src/exchange/tx/index.ts';
import { toHex } from '../../src/lib/bytes.ts';
import type { MempoolLimits } from '../../src/node/mempool/mempool.ts';
import { MemoryHub } from '../../src/node/network.ts';
import { ZommaNode, consensusGenesisOf } from '../../src/node/node.ts';
import { openStorage } from '../../src/node/storage/index.ts';
import type { FileStorage } from '../../src/node/storage/index.ts';
import { ChainView } from '../../src/node/view.ts';
import { LOOPBACK_API_LIMITS } from '../e2e/helpers.ts';
import { FAST_TIMEOUTS, tempDir, testKey, waitFor } from './helpers.ts';

const USDC = 1_000_000n;
/** Long enough that a waiter answered only at its timeout fails the test on its 504. */
const WAIT_MS = 30_000;

function faucet(chainId: string, key: KeyPair, nonce: number, amountQuote = 1_000n * USDC) {
  return buildTx({ chainId, key, nonce, action: { kind: 'faucet', amountQuote } });
}

/** What a promise rejected with (it must reject). */
async function refusal(promise: Promise<unknown>): Promise<ZommaApiError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(error instanceof ZommaApiError, `refused with a ZommaApiError: ${String(error)}`);
  return error;
}

function nodeOn(
  hub: MemoryHub,
  id: string,
  storage: FileStorage,
  key: KeyPair | null,
  genesis: ReturnType<typeof devnetGenesis>,
  mempoolLimits?: Partial<MempoolLimits>,
): ZommaNode {
  return new ZommaNode({
    genesis,
    consensusGenesis: consensusGenesisOf(genesis),
    key,
    storage,
    network: hub.join(id),
    prices: null,
    timeouts: FAST_TIMEOUTS,
    snapshotEveryHeights: 4,
    snapshotsKept: 2,
    commitPauseMs: 50,
    ...(mempoolLimits ? { mempoolLimits } : {}),
  });
}

test('a wait=commit transaction the mempool evicts for room is answered at once, Evicted with its hash, over HTTP and the WebSocket; it looks up as dropped until admitted again', async () => {
  const tmp = tempDir('zomma-drops-');
  const key = testKey(0);
  const genesis = { ...devnetGenesis([key.publicKey]), genesisTimeMs: Date.now() };
  const storage = openStorage(`${tmp.dir}/v0`);
  // Never started: no block comes, so only a drop can answer a waiter before its timeout.
  const node = nodeOn(new MemoryHub(), 'v0', storage, key, genesis, { txsMax: 1 });
  const view = new ChainView({ node, storage, genesis });
  const server = await startApiServer({ view, limits: LOOPBACK_API_LIMITS });
  const client = new ZommaClient(server.url);
  const socket = client.socket({ heartbeatMs: 0 });
  try {
    const nonce = Date.now();
    const [a, b, c] = [10, 11, 12].map((k) => faucet(genesis.chainId, testKey(k), nonce));
    const hex = (t: { hash: Uint8Array }) => toHex(t.hash);

    const waiting = refusal(client.submitTx(a!.bytes, { wait: 'commit', timeoutMs: WAIT_MS }));
    await waitFor(() => node.mempool.has(hex(a!)), 10_000, 'a admitted');
    // A client's transaction into the full pool pushes the oldest out.
    assert.deepEqual(await client.submitTx(b!.bytes), { hash: hex(b!), status: 'pending' });
    const evicted = await waiting;
    assert.deepEqual(
      [evicted.code, evicted.status, evicted.hash],
      ['Evicted', 410, hex(a!)],
      'answered at once, naming the transaction',
    );
    assert.match(evicted.message, /may still commit/);
    const looked = await client.tx(hex(a!));
    assert.deepEqual([looked.status, looked.code], ['dropped', 'Evicted']);

    // The same over the socket: its submission's answer is the same error, with the same status.
    const overSocket = refusal(socket.submitTx(c!.bytes, { wait: 'commit', timeoutMs: WAIT_MS }));
    await waitFor(() => node.mempool.has(hex(c!)), 10_000, 'c admitted');
    assert.equal(
      (await client.submitTx(a!.bytes)).status,
      'pending',
      'a dropped one is taken again',
    );
    const socketEvicted = await overSocket;
    assert.deepEqual(
      [socketEvicted.code, socketEvicted.status, socketEvicted.hash],
      ['Evicted', 410, hex(c!)],
    );
    // Admitted again, it is pending once more; what it pushed out is the dropped one now.
    assert.equal((await client.tx(hex(a!))).status, 'pending');
    assert.deepEqual(
      [(await client.tx(hex(b!))).status, (await client.tx(hex(c!))).status],
      ['dropped', 'dropped'],
    );
  } finally {
    socket.close();
    await server.close();
    view.close();
    await node.stop();
    storage.close();
    tmp.remove();
  }
});

test('a wait=commit transaction whose nonce another transaction used on chain is dropped by the re-check and answered at once: DuplicateNonce with its hash', async () => {
  const tmp = tempDir('zomma-drops-');
  const key = testKey(0);
  const genesis = { ...devnetGenesis([key.publicKey]), genesisTimeMs: Date.now() };
  const hub = new MemoryHub();
  const storages = [openStorage(`${tmp.dir}/v`), openStorage(`${tmp.dir}/f`)];
  const validator = nodeOn(hub, 'v', storages[0]!, key, genesis);
  // A full node serves the API: its clients' transactions reach the validator by gossip.
  const full = nodeOn(hub, 'f', storages[1]!, null, genesis);
  const view = new ChainView({ node: full, storage: storages[1]!, genesis });
  const server = await startApiServer({ view, limits: LOOPBACK_API_LIMITS });
  const client = new ZommaClient(server.url);
  try {
    await validator.start();
    await full.start();
    await waitFor(() => full.app.height >= 2, 20_000, 'the full node follows');
    const trader = testKey(20);
    const nonce = Date.now();
    const mine = faucet(genesis.chainId, trader, nonce, 1_000n * USDC);
    const other = faucet(genesis.chainId, trader, nonce, 2_000n * USDC);
    // Cut off, the full node admits `mine` but cannot pass it on, while the
    // validator commits another transaction with the same nonce.
    hub.isolated.add('f');
    const waiting = refusal(client.submitTx(mine.bytes, { wait: 'commit', timeoutMs: WAIT_MS }));
    await waitFor(() => full.mempool.has(toHex(mine.hash)), 10_000, 'admitted by the full node');
    assert.equal((await validator.submit(other.bytes)).ok, true);
    await waitFor(
      () => validator.app.staleCodeOf(mine.tx) === 'DuplicateNonce',
      20_000,
      'the other transaction committed',
    );
    hub.isolated.delete('f');
    // The full node catches up, and the re-check after that block drops `mine`.
    const used = await waiting;
    assert.deepEqual(
      [used.code, used.status, used.hash],
      ['DuplicateNonce', 409, toHex(mine.hash)],
    );
    const looked = await client.tx(toHex(mine.hash));
    assert.deepEqual([looked.status, looked.code], ['dropped', 'DuplicateNonce']);
    assert.equal(full.mempool.has(toHex(mine.hash)), false);
  } finally {
    await server.close();
    view.close();
    await full.stop();
    await validator.stop();
    for (const s of storages) s.close();
    tmp.remove();
  }
});
