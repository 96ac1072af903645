import { test } from 'node:test';
import assert from 'node:assert/strict';
import { devnetGenesis } from '../../src/exchange/index.ts';
import { toHex } from '../../src/lib/bytes.ts';
import { ExchangeApp } from '../../src/node/app.ts';
import { CHANNEL, unframe } from '../../src/node/framing.ts';
import { MemoryHub } from '../../src/node/network.ts';
import { consensusGenesisOf } from '../../src/node/node.ts';
import type { ZommaNode } from '../../src/node/node.ts';
import { SignatureCache } from '../../src/node/mempool/sigcache.ts';
import { openStorage } from '../../src/node/storage/index.ts';
import type { Storage } from '../../src/node/storage/index.ts';
import { StateSyncer, SyncError, isEmptyStorage, saveSynced } from '../../src/node/sync.ts';
import { SyncServer } from '../../src/node/sync_server.ts';
import { memoryValidators, tempDir, testKey, verifierFor, waitFor } from './helpers.ts';

test('a new full node state-syncs from pruned validators, then follows with the same appHash; a tampered snapshot is refused', async () => {
  const tmp = tempDir('zomma-sync-');
  const keys = [0, 1, 2, 3].map(testKey);
  const genesis = { ...devnetGenesis(keys.map((k) => k.publicKey)), genesisTimeMs: Date.now() };
  const consensusGenesis = consensusGenesisOf(genesis);
  const appOptions = {
    genesis,
    consensusGenesis,
    signatures: new SignatureCache(),
    prices: null,
    nowMs: () => Date.now(),
  };
  const restore = (bytes: Uint8Array) => ExchangeApp.fromSnapshot(appOptions, bytes);
  const { hub, storages, hashes, nodeOf, validators } = memoryValidators(
    tmp.dir,
    keys,
    genesis,
    consensusGenesis,
    { snapshotsKept: 2, blocksKept: 10, commitPauseMs: 100 },
  );
  const nodes: ZommaNode[] = [...validators];
  try {
    for (const node of validators) await node.start();
    // Pruned past height 1: a new node can no longer replay from genesis.
    await waitFor(() => storages[0]!.blocks.firstHeight() > 1, 60_000, 'pruning');
    assert.ok(storages.every((s) => s.snapshots.heights().length >= 1));

    // A peer that serves a tampered snapshot (its chunk hashes match the tampered bytes).
    const evilHub = new MemoryHub();
    const real = storages[1]!;
    const tampered = (h: number): Uint8Array | null => {
      const bytes = real.snapshots.load(h);
      if (bytes === null) return null;
      const flipped = bytes.slice();
      flipped[flipped.length >> 1]! ^= 0x40;
      return flipped;
    };
    const evilStorage: Storage = {
      wal: real.wal,
      blocks: real.blocks,
      snapshots: {
        save: () => {},
        latest: () => null,
        prune: () => {},
        clear: () => {},
        heights: () => real.snapshots.heights(),
        load: tampered,
        openReader: (h) => {
          const bytes = tampered(h);
          if (bytes === null) return null;
          return {
            sizeBytes: bytes.length,
            read: (offset, length) => bytes.slice(offset, offset + length),
            close: () => {},
          };
        },
      },
      close: () => {},
    };
    const evilNet = evilHub.join('evil');
    const evil = new SyncServer({
      storage: evilStorage,
      network: evilNet,
      clock: { nowMs: () => Date.now(), after: () => () => {} },
    });
    evilNet.onMessage((peer, bytes) => evil.onMessage(peer, unframe(bytes).payload));
    await evilNet.start();
    const victimStorage = openStorage(`${tmp.dir}/victim`);
    storages.push(victimStorage);
    const victimNet = evilHub.join('victim');
    await victimNet.start();
    const victim = new StateSyncer({
      network: victimNet,
      consensusGenesis,
      verifier: verifierFor(genesis.chainId),
      restore,
      discoveryMs: 100,
      responseTimeoutMs: 2_000,
      timeoutMs: 20_000,
    });
    victimNet.onMessage((peer, bytes) => victim.onMessage(peer, unframe(bytes).payload));
    // Refused for the tampering; an older offer tried after it may be refused
    // instead because the block after it was pruned meanwhile (the
    // validators prune as they run), and the error names each offer's refusal.
    await assert.rejects(
      victim.run(),
      (e: unknown) =>
        e instanceof SyncError &&
        (['AppHashMismatch', 'SnapshotInvalid'].includes(e.code) ||
          /\d+: (AppHashMismatch|SnapshotInvalid)\b/.test(e.message)),
    );
    assert.ok(isEmptyStorage(victimStorage), 'nothing written after a refusal');

    // The honest path: sync from the validators, then run as a full node.
    const fullStorage = openStorage(`${tmp.dir}/full`);
    storages.push(fullStorage);
    const fullNet = hub.join('full');
    await fullNet.start();
    const syncer = new StateSyncer({
      network: fullNet,
      consensusGenesis,
      verifier: verifierFor(genesis.chainId),
      restore,
      discoveryMs: 100,
      responseTimeoutMs: 2_000,
      timeoutMs: 30_000,
    });
    fullNet.onMessage((peer, bytes) => {
      const { channel, payload } = unframe(bytes);
      if (channel === CHANNEL.sync) syncer.onMessage(peer, payload);
    });
    const synced = await syncer.run();
    assert.ok(synced.height > 1);
    assert.equal(toHex(synced.appHash), hashes.get(synced.height));
    saveSynced(fullStorage, synced);
    const full = nodeOf(null, fullStorage, fullNet);
    nodes.push(full);
    assert.equal(full.app.height, synced.height);
    assert.equal(full.restoredFrom.snapshotHeight, synced.height);
    const fullHashes = new Map<number, string>();
    full.subscribe((b) =>
      fullHashes.set(b.executed.block.header.height, toHex(b.executed.result.appHash)),
    );
    await full.start();
    const target = synced.height + 6;
    await waitFor(() => fullHashes.has(target), 60_000, 'the full node to follow');
    for (let h = synced.height + 1; h <= target; h++) {
      assert.equal(fullHashes.get(h), hashes.get(h), `appHash after ${h}`);
    }
    assert.equal(fullStorage.blocks.firstHeight(), synced.height);
    // The synced checkpoint said the blocks up to h went unseen, and the replica kept it.
    assert.equal(full.loop.replica.chainState.committedEvidenceFrom, synced.height + 1);
  } finally {
    for (const node of nodes) await node.stop();
    for (const s of storages) s.close();
    tmp.remove();
  }
});
