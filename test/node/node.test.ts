import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VerifyPool } from '../../src/crypto/index.ts';
import { devnetGenesis } from '../../src/exchange/index.ts';
import { buildTx, placeOrder } from '../../src/exchange/tx/index.ts';
import { toHex } from '../../src/lib/bytes.ts';
import { MemoryHub } from '../../src/node/network.ts';
import { ZommaNode, consensusGenesisOf } from '../../src/node/node.ts';
import { DEVNET_ASSETS, GbmPriceSource } from '../../src/node/oracle_source.ts';
import { openStorage } from '../../src/node/storage/index.ts';
import type { FileStorage } from '../../src/node/storage/index.ts';
import { FAST_TIMEOUTS, tempDir, testKey, waitFor } from './helpers.ts';

test('four exchange nodes: transactions through one node commit everywhere with one appHash', async () => {
  const tmp = tempDir('zomma-node-');
  const keys = [0, 1, 2, 3].map(testKey);
  const genesis = { ...devnetGenesis(keys.map((k) => k.publicKey)), genesisTimeMs: Date.now() };
  const consensusGenesis = consensusGenesisOf(genesis);
  const hub = new MemoryHub();
  const pool = new VerifyPool({ workers: 1 });
  const storages: FileStorage[] = [];
  const hashes = keys.map(() => new Map<number, string>());
  const nodes = keys.map((key, i) => {
    const storage = openStorage(`${tmp.dir}/v${i}`);
    storages.push(storage);
    const node = new ZommaNode({
      genesis,
      consensusGenesis,
      key,
      storage,
      network: hub.join(toHex(key.publicKey)),
      verifyBatch: (items) => pool.verifyBatch(items),
      prices: new GbmPriceSource(DEVNET_ASSETS, 7, i, genesis.genesisTimeMs),
      timeouts: FAST_TIMEOUTS,
      snapshotEveryHeights: 5,
      snapshotsKept: 2,
      checkInvariants: true,
    });
    node.subscribe((b) =>
      hashes[i]!.set(b.executed.block.header.height, toHex(b.executed.result.appHash)),
    );
    return node;
  });
  try {
    for (const node of nodes) await node.start();
    const maker = testKey(100);
    const taker = testKey(101);
    let nonce = Date.now();
    const tx = (key: typeof maker, action: Parameters<typeof buildTx>[0]['action']) =>
      buildTx({ chainId: genesis.chainId, key, nonce: nonce++, action });
    const funding = [
      tx(maker, { kind: 'faucet', amountQuote: 100_000_000_000n }),
      tx(taker, { kind: 'faucet', amountQuote: 100_000_000_000n }),
    ];
    for (const f of funding)
      assert.deepEqual(await nodes[0]!.submit(f.bytes), { ok: true, hash: toHex(f.hash) });
    const dup = await nodes[0]!.submit(funding[0]!.bytes);
    assert.equal(dup.ok, false);
    assert.equal(!dup.ok && dup.code, 'DuplicateTx');
    const bad = funding[1]!.bytes.slice();
    bad[bad.length - 1]! ^= 1;
    const badResult = await nodes[1]!.submit(bad);
    assert.equal(!badResult.ok && badResult.code, 'BadSignature');

    await waitFor(
      () => nodes.every((n) => n.app.exchange.state.accounts.length >= 2),
      20_000,
      'faucets',
    );
    const sell = tx(
      maker,
      placeOrder({ instrument: 'BTC-PERPETUAL', side: 'sell', sizeLots: 10, priceTicks: 600_000 }),
    );
    const buy = tx(
      taker,
      placeOrder({ instrument: 'BTC-PERPETUAL', side: 'buy', sizeLots: 4, priceTicks: 600_000 }),
    );
    // Through two different nodes: gossip carries each to the proposer.
    assert.equal((await nodes[1]!.submit(sell.bytes)).ok, true);
    await waitFor(() => nodes[0]!.app.exchange.state.orders.size === 1, 20_000, 'the sell rests');
    assert.equal((await nodes[2]!.submit(buy.bytes)).ok, true);
    await waitFor(
      () =>
        nodes.every((n) =>
          n.app.exchange.state.accounts.some((a) => a.positions[0]!.sizeLots === 4),
        ),
      20_000,
      'the buy trades everywhere',
    );
    const top = Math.min(...nodes.map((n) => n.app.height));
    for (let h = 1; h <= top; h++) {
      assert.equal(new Set(hashes.map((m) => m.get(h))).size, 1, `one appHash at height ${h}`);
    }
    // Oracle: the stake-weighted median of the validators' observations reached the markets.
    const btc = nodes[0]!.app.exchange.state.markets[0]!;
    assert.ok(btc.indexTicks > 0, 'BTC index set from vote extensions');
    assert.equal(nodes[0]!.mempool.size, 0, 'committed transactions left the mempool');
  } finally {
    for (const node of nodes) await node.stop();
    for (const s of storages) s.close();
    await pool.close();
    tmp.remove();
  }
});
