import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writer, encode } from '../../src/codec/wire.ts';
import type { DuplicateVoteEvidence, Vote } from '../../src/consensus/index.ts';
import {
  SIGN_KIND_CONSENSUS,
  VOTE_TYPE,
  ValidatorSet,
  blockHashOf,
  messageCodec,
  validatorSetStateCodec,
  voteCodec,
  voteSignBytes,
} from '../../src/consensus/index.ts';
import type { KeyPair } from '../../src/crypto/index.ts';
import { sign } from '../../src/crypto/index.ts';
import { devnetGenesis } from '../../src/exchange/index.ts';
import { compareBytes, toHex } from '../../src/lib/bytes.ts';
import { CHANNEL, frame, unframe } from '../../src/node/framing.ts';
import { loadCommitted } from '../../src/node/loop.ts';
import type { MemoryNetwork } from '../../src/node/network.ts';
import { consensusGenesisOf } from '../../src/node/node.ts';
import type { ZommaNode } from '../../src/node/node.ts';
import { SignatureCache } from '../../src/node/mempool/sigcache.ts';
import { openStorage } from '../../src/node/storage/index.ts';
import {
  StateSyncer,
  SyncError,
  genesisSetAfter,
  isEmptyStorage,
  saveSynced,
  verifyTrustedChain,
} from '../../src/node/sync.ts';
import type { StateSyncOptions, SyncedState } from '../../src/node/sync.ts';
import type { TrustedBlock } from '../../src/node/sync_trust.ts';
import { chainSetsAfter, exchangeRestorer, updateHistoryOf } from '../../src/node/sync_trust.ts';
import { memoryValidators, tempDir, testKey, verifierFor, waitFor } from './helpers.ts';

const keys = [0, 1, 2, 3].map(testKey);

/** Two prevotes of `key` for different values at one height and round: what jails it. */
function doubleSign(
  key: KeyPair,
  chainId: string,
  validatorIndex: number,
  height: number,
): DuplicateVoteEvidence {
  const vote = (blockHash: Uint8Array | null): Vote => {
    const bytes = voteSignBytes(
      new Writer(),
      VOTE_TYPE.prevote,
      height,
      0,
      blockHash,
      0,
      new Uint8Array(0),
    );
    return {
      type: VOTE_TYPE.prevote,
      height,
      round: 0,
      blockHash,
      validatorIndex,
      timestampMs: 0,
      extension: new Uint8Array(0),
      signature: sign(key, chainId, SIGN_KIND_CONSENSUS.prevote, bytes),
    };
  };
  const a = vote(null);
  const b = vote(new Uint8Array(32).fill(7));
  // Evidence names its votes in the order of their encodings.
  return compareBytes(encode(voteCodec, a), encode(voteCodec, b)) < 0
    ? { voteA: a, voteB: b }
    : { voteA: b, voteB: a };
}

test('after a validator is jailed, a new node state-syncs only from a trusted block, then follows with the same appHash', async () => {
  const tmp = tempDir('zomma-sync-trust-');
  const genesis = { ...devnetGenesis(keys.map((k) => k.publicKey)), genesisTimeMs: Date.now() };
  const consensusGenesis = consensusGenesisOf(genesis);
  const appOptions = {
    genesis,
    consensusGenesis,
    signatures: new SignatureCache(),
    prices: null,
    nowMs: () => Date.now(),
  };
  const { hub, storages, hashes, nodeOf, validators } = memoryValidators(
    tmp.dir,
    keys,
    genesis,
    consensusGenesis,
    // Three kept: the offers reach well below the newest block, which the trusted one is.
    { snapshotsKept: 3, blocksKept: 16, commitPauseMs: 150 },
  );
  const nodes: ZommaNode[] = [...validators];
  const syncerOn = (network: MemoryNetwork, trustedBlock?: TrustedBlock): StateSyncer => {
    const options: StateSyncOptions = {
      network,
      consensusGenesis,
      verifier: verifierFor(genesis.chainId),
      restore: exchangeRestorer(appOptions),
      ...(trustedBlock !== undefined ? { trustedBlock } : {}),
      discoveryMs: 100,
      responseTimeoutMs: 2_000,
      timeoutMs: 30_000,
    };
    const syncer = new StateSyncer(options);
    network.onMessage((peer, bytes) => {
      const { channel, payload } = unframe(bytes);
      if (channel === CHANNEL.sync) syncer.onMessage(peer, payload);
    });
    return syncer;
  };
  try {
    for (const node of validators) await node.start();
    const v0 = validators[0]!;
    await waitFor(() => v0.app.height >= 2, 30_000, 'a first block');

    // Validator 3 double-signs; any peer may hand the evidence in.
    const offender = keys[3]!;
    const genesisSet = ValidatorSet.fromUpdates(consensusGenesis.validators);
    const evidence = doubleSign(
      offender,
      genesis.chainId,
      genesisSet.indexOf(offender.publicKey),
      v0.app.height,
    );
    const reporter = hub.join('reporter');
    await reporter.start();
    reporter.broadcast(
      frame(CHANNEL.consensus, encode(messageCodec, { kind: 'evidence', evidence })),
    );
    const jailed = () =>
      v0.app.exchange.state.validators.find(
        (v) => toHex(v.publicKey) === toHex(offender.publicKey),
      )!;
    await waitFor(() => jailed().jailed, 30_000, 'the double-signer to be jailed');
    const jailedHeight = jailed().jailedHeight;
    assert.ok(jailedHeight >= 2, 'jailed by a block after the first');
    // Every snapshot any validator still offers is of a height whose next was decided without it.
    await waitFor(
      () =>
        storages.every((s) => {
          const heights = s.snapshots.heights();
          return heights.length >= 3 && heights[0]! >= jailedHeight + 1;
        }) && storages[0]!.blocks.firstHeight() > 1,
      60_000,
      'snapshots after the set changed',
    );

    // The recomputed consensus state is the replica's own (sets, priorities, evidence history).
    await waitFor(
      () => v0.loop.replica.chainState.height === v0.app.height,
      10_000,
      'the replica to stand at the app height',
    );
    const replicaState = v0.loop.replica.chainState;
    const sets = chainSetsAfter(
      consensusGenesis,
      replicaState.height,
      updateHistoryOf(v0.app.exchange.state.validators),
    );
    const bytesOf = (s: Parameters<typeof validatorSetStateCodec.write>[1]) =>
      toHex(encode(validatorSetStateCodec, s));
    assert.equal(bytesOf(sets.deciding[1].toState()), bytesOf(replicaState.validators));
    assert.equal(bytesOf(sets.deciding[2].toState()), bytesOf(replicaState.nextValidators));
    assert.deepEqual(
      sets.history.map((e) => [e.height, bytesOf(e.set)]),
      replicaState.history.map((e) => [e.height, bytesOf(e.set)]),
    );
    assert.equal(replicaState.validators.validators.length, 3, 'the offender left the set');

    // Without a trusted block: refused, as before, and nothing written.
    const plainStorage = openStorage(`${tmp.dir}/plain`);
    storages.push(plainStorage);
    const plainNet = hub.join('plain');
    await plainNet.start();
    await assert.rejects(
      syncerOn(plainNet).run(),
      (e: unknown) => e instanceof SyncError && e.code === 'UntrustedValidators',
    );
    assert.ok(isEmptyStorage(plainStorage));
    await plainNet.stop();

    // The trusted block: the newest a node we run holds (`zomma query block` prints this hash).
    const newestBlock = (): TrustedBlock => {
      const height = storages[0]!.blocks.lastHeight();
      return { height, hash: blockHashOf(loadCommitted(storages[0]!, height)!.block) };
    };
    const { hash: trustedHash, height: trustedHeight } = newestBlock();

    // A wrong trusted hash: refused before any chunk is fetched, nothing written.
    const wrongStorage = openStorage(`${tmp.dir}/wrong`);
    storages.push(wrongStorage);
    const wrongNet = hub.join('wrong');
    await wrongNet.start();
    const wrongHash = trustedHash.slice();
    wrongHash[0]! ^= 1;
    const wrong = syncerOn(wrongNet, { height: trustedHeight, hash: wrongHash });
    await assert.rejects(
      wrong.run(),
      (e: unknown) => e instanceof SyncError && e.code === 'TrustedHashMismatch',
    );
    assert.equal(wrong.stats.chunksFetched, 0);
    assert.ok(isEmptyStorage(wrongStorage));
    await wrongNet.stop();

    // A trusted block below every offer: nothing to bind to it.
    const lowNet = hub.join('low');
    await lowNet.start();
    await assert.rejects(
      syncerOn(lowNet, { height: 1, hash: trustedHash }).run(),
      (e: unknown) => e instanceof SyncError && e.code === 'TrustedHeightOutOfRange',
    );
    await lowNet.stop();

    // The honest path: sync bound to the trusted block, then run as a full node.
    const fullStorage = openStorage(`${tmp.dir}/full`);
    storages.push(fullStorage);
    const fullNet = hub.join('full');
    await fullNet.start();
    const trusted = newestBlock();
    const synced: SyncedState = await syncerOn(fullNet, trusted).run();
    assert.ok(synced.height < trusted.height && synced.height >= jailedHeight + 1);
    assert.equal(toHex(synced.appHash), hashes.get(synced.height));
    assert.equal(synced.chainState.validators.validators.length, 3);
    // The blocks before h came as a snapshot: their evidence is known from h+1 on.
    assert.deepEqual(synced.chainState.committedEvidence, []);
    assert.equal(synced.chainState.committedEvidenceFrom, synced.height + 1);
    assert.ok(
      synced.chainState.validators.validators.every(
        (v) => toHex(v.publicKey) !== toHex(offender.publicKey),
      ),
    );

    // Wrong validator updates for the same blocks are refused: the sets must bind to the headers.
    const blocksOf = (...heights: number[]) => heights.map((h) => loadCommitted(storages[0]!, h)!);
    const h = synced.height;
    const chain = blocksOf(h, h + 1);
    const verifier = verifierFor(genesis.chainId);
    const refuses = (updates: Parameters<typeof verifyTrustedChain>[3]) =>
      assert.throws(
        () => verifyTrustedChain(consensusGenesis, verifier, chain, updates),
        (e: unknown) => e instanceof SyncError && e.code === 'UntrustedValidators',
      );
    refuses([]);
    const removal = [{ publicKey: offender.publicKey, power: 0 }];
    refuses([{ height: jailedHeight - 1, updates: removal }]);
    refuses([{ height: jailedHeight, updates: [{ publicKey: keys[0]!.publicKey, power: 0 }] }]);
    assert.throws(
      () =>
        verifyTrustedChain(consensusGenesis, verifier, chain, [
          { height: h + 1, updates: removal },
        ]),
      (e: unknown) => e instanceof SyncError && e.code === 'SnapshotInvalid',
    );
    const right = verifyTrustedChain(consensusGenesis, verifier, chain, [
      { height: jailedHeight, updates: removal },
    ]);
    assert.equal(toHex(right.appHash), toHex(synced.appHash));

    saveSynced(fullStorage, synced);
    const full = nodeOf(null, fullStorage, fullNet);
    nodes.push(full);
    assert.equal(full.app.height, synced.height);
    const fullHashes = new Map<number, string>();
    full.subscribe((b) =>
      fullHashes.set(b.executed.block.header.height, toHex(b.executed.result.appHash)),
    );
    await full.start();
    const target = synced.height + 8;
    await waitFor(() => fullHashes.has(target), 60_000, 'the full node to follow');
    for (let height = synced.height + 1; height <= target; height++) {
      assert.equal(fullHashes.get(height), hashes.get(height), `appHash after ${height}`);
    }
    // It follows as a peer of the consensus, not only by catch-up: it took no proposal as wrongProposer.
    assert.equal(full.loop.replica.metrics.wrongProposer, 0);
  } finally {
    for (const node of nodes) await node.stop();
    for (const s of storages) s.close();
    tmp.remove();
  }
});

test('with no validator update, the recomputed sets are the genesis set advanced, as sync trusted before', () => {
  const genesis = consensusGenesisOf(devnetGenesis(keys.map((k) => k.publicKey)));
  for (const height of [1, 2, 7, 150]) {
    const sets = chainSetsAfter(genesis, height, []);
    for (let i = 0; i < 3; i++) {
      const expected = genesisSetAfter(genesis, height - 1 + i);
      assert.deepEqual(sets.deciding[i]!.priorities, expected.priorities, `set ${height + i}`);
    }
    assert.deepEqual(
      sets.history.map((e) => e.height),
      [1],
    );
  }
});

test('the exchange reports its jailings as removals at the height of their block', () => {
  const [a, b, c] = keys.map((k) => k.publicKey);
  const history = updateHistoryOf([
    { publicKey: a!, jailed: true, jailedHeight: 9 },
    { publicKey: b!, jailed: false, jailedHeight: 0 },
    { publicKey: c!, jailed: true, jailedHeight: 4 },
  ]);
  assert.deepEqual(history, [
    { height: 4, updates: [{ publicKey: c, power: 0 }] },
    { height: 9, updates: [{ publicKey: a, power: 0 }] },
  ]);
});
