// A WAL checkpoint is appended without a sync and a block's fsync runs in the
// background, so writeback can put the checkpoint on disk before its block: a
// power cut then leaves a checkpoint naming a block the block log lacks. The
// restart drops that never-acknowledged WAL tail and resumes from the
// checkpoint before it; a checkpoint proven synced is never dropped.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, symlinkSync } from 'node:fs';
import { truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { decode } from '../../../src/codec/wire.ts';
import type { Genesis } from '../../../src/consensus/index.ts';
import { walRecordCodec } from '../../../src/consensus/index.ts';
import { utf8 } from '../../../src/lib/bytes.ts';
import { NodeLoop, lastCheckpoint } from '../../../src/node/loop.ts';
import { MemoryHub } from '../../../src/node/network.ts';
import { dropUnbackedCheckpoint, restoreApp } from '../../../src/node/restore.ts';
import { openFileResultsStore } from '../../../src/node/results.ts';
import type { FileStorage } from '../../../src/node/storage/index.ts';
import { openStorage, openWal } from '../../../src/node/storage/index.ts';
import { RECORD_HEADER_BYTES, encodeRecord } from '../../../src/node/storage/record_log.ts';
import {
  FAST_TIMEOUTS,
  HashChainApp,
  signerOf,
  tempDir,
  testGenesis,
  testKey,
  verifierFor,
  waitFor,
} from '../helpers.ts';
import { OLD_FILE_HEADER_BYTES, recordOffsets } from './layout.ts';

interface Running {
  readonly loop: NodeLoop;
  readonly app: HashChainApp;
  readonly storage: FileStorage;
  /** WAL records the restart dropped, and the height it restored the application to. */
  readonly dropped: number;
  readonly restoredHeight: number;
  stop(): void;
}

/**
 * One validator on `dir`, restarted as node.ts does (dropUnbackedCheckpoint,
 * then restore). `onHalt` is called when the loop halts.
 */
function start(genesis: Genesis, dir: string, hub: MemoryHub, onHalt?: () => void): Running {
  const storage = openStorage(dir);
  const dropped = dropUnbackedCheckpoint(storage);
  const { app } = restoreApp(
    storage,
    lastCheckpoint(storage.wal.readAll()),
    () => new HashChainApp(genesis.appHash),
    (bytes) => HashChainApp.fromSnapshot(bytes),
  );
  const restoredHeight = app.height;
  const net = hub.join('v0');
  const txs = Array.from({ length: 100 }, (_, i) => utf8(`tx ${i}`));
  const loop = new NodeLoop({
    genesis,
    timeouts: FAST_TIMEOUTS,
    signer: signerOf(testKey(0), genesis.chainId),
    verifier: verifierFor(genesis.chainId),
    app,
    storage,
    network: net,
    reap: () => txs.splice(0, 2),
    snapshotEveryHeights: 0,
    snapshotsKept: 1,
    walRotateBytes: 1 << 30,
    walSyncInBackground: true,
    ...(onHalt ? { hooks: { onHalt } } : {}),
  });
  void net.start();
  loop.start();
  return {
    loop,
    app,
    storage,
    dropped,
    restoredHeight,
    stop: () => {
      loop.stop();
      void net.stop();
      storage.close();
    },
  };
}

/** Index and height of each checkpoint record in `records`. */
function checkpoints(records: readonly Uint8Array[]): { index: number; height: number }[] {
  const out: { index: number; height: number }[] = [];
  records.forEach((bytes, index) => {
    const record = decode(walRecordCodec, bytes, 'wal');
    if (record.kind === 'checkpoint') out.push({ index, height: record.state.height });
  });
  return out;
}

/**
 * Leaves `dir` as the power cut would: the WAL synced up to the record before
 * the last checkpoint, that checkpoint on disk unsynced (no record after it),
 * and the block log without the checkpoint's block. Returns its height.
 */
function cutPowerBeforeBlockSync(dir: string): number {
  const path = `${dir}/wal.log`;
  const opened = openWal(path);
  const records = opened.wal.readAll();
  opened.wal.close();
  const last = checkpoints(records).at(-1)!;
  unlinkSync(path);
  // A fresh WAL holding the same records, its sync markers where a run puts them.
  const { wal } = openWal(path);
  for (let i = 0; i < last.index; i++) wal.append(records[i]!, i === last.index - 1);
  wal.append(records[last.index]!, false);
  const image = readFileSync(path);
  wal.close();
  writeFileSync(path, image);
  const blocks = `${dir}/blocks.log`;
  truncateSync(blocks, recordOffsets(readFileSync(blocks))[last.height - 1]!);
  return last.height;
}

test('a checkpoint whose block never reached the disk is dropped; the node resumes from the one before and goes on', async () => {
  const tmp = tempDir('zomma-unbacked-');
  const genesis = testGenesis([testKey(0)]);
  const dir = `${tmp.dir}/v0`;
  let node = start(genesis, dir, new MemoryHub());
  try {
    await waitFor(() => node.app.height >= 4, 20_000, 'height 4');
    node.stop();
    const lost = cutPowerBeforeBlockSync(dir);

    // Without dropping the checkpoint, the restore has no block to reach it.
    const storage = openStorage(dir);
    assert.throws(
      () =>
        restoreApp(
          storage,
          lastCheckpoint(storage.wal.readAll()),
          () => new HashChainApp(genesis.appHash),
          (bytes) => HashChainApp.fromSnapshot(bytes),
        ),
      { code: 'RestoreFailed' },
    );
    storage.close();

    node = start(genesis, dir, new MemoryHub());
    assert.equal(node.dropped, 1, 'the checkpoint was the last record');
    assert.equal(node.restoredHeight, lost - 1);
    await waitFor(() => node.app.height >= lost + 2, 20_000, 'the node goes on');
    assert.equal(node.loop.haltReport, null);
  } finally {
    node.stop();
    tmp.remove();
  }
});

test('a block log whose sync fails halts the node, and its stop leaves the WAL as a crash would: the restart drops the checkpoint whose block was lost and goes on', async () => {
  const tmp = tempDir('zomma-unbacked-');
  const genesis = testGenesis([testKey(0)]);
  const dir = `${tmp.dir}/v0`;
  // The storage is closed as the node halts, before the block log's
  // background sync of the lost block reports its failure.
  let node: Running = start(genesis, dir, new MemoryHub(), () => node.storage.close());
  const realFds: number[] = [];
  try {
    await waitFor(() => node.app.height >= 3, 20_000, 'height 3');
    const lost = node.app.height + 2;
    // From block `lost` on, the block log's file is /dev/zero under both of
    // its descriptors: the block's bytes go nowhere and every fdatasync fails
    // (EINVAL), as after a write-back error that dropped the pages.
    const blocks = node.storage.blocks;
    const log = (blocks as unknown as { log: { fd: number; syncFd: number } }).log;
    const saveDeferred = blocks.saveDeferred.bind(blocks);
    blocks.saveDeferred = (height: number, bytes: Uint8Array): void => {
      if (height === lost) {
        realFds.push(log.fd, log.syncFd);
        log.fd = openSync('/dev/zero', 'r+');
        log.syncFd = openSync('/dev/zero', 'r+');
      }
      saveDeferred(height, bytes);
    };
    await waitFor(() => node.loop.haltReport !== null, 20_000, 'the halt');
    assert.equal(node.loop.haltReport!.code, 'StorageIoFailed');
    assert.equal(node.app.height, lost, 'halted at the signature after the lost block');
    node.stop();

    node = start(genesis, dir, new MemoryHub());
    // The checkpoint of the lost block, and the input logged after it (no signed record).
    assert.ok(node.dropped >= 1, `the checkpoint of the lost block is dropped (${node.dropped})`);
    assert.equal(node.restoredHeight, lost - 1);
    await waitFor(() => node.app.height >= lost + 2, 20_000, 'the node goes on');
    assert.equal(node.loop.haltReport, null);
  } finally {
    node.stop();
    for (const fd of realFds) closeSync(fd);
    tmp.remove();
  }
});

test('a checkpoint proven synced is never dropped, even when its block is missing', async () => {
  const tmp = tempDir('zomma-unbacked-');
  const genesis = testGenesis([testKey(0)]);
  const dir = `${tmp.dir}/v0`;
  const node = start(genesis, dir, new MemoryHub());
  await waitFor(() => node.app.height >= 3, 20_000, 'height 3');
  node.stop();
  try {
    // A clean shutdown proves the whole WAL synced; a block lost after that is damage.
    const storage = openStorage(dir);
    const height = lastCheckpoint(storage.wal.readAll()).height;
    storage.close();
    const blocks = `${dir}/blocks.log`;
    truncateSync(blocks, recordOffsets(readFileSync(blocks))[height - 1]!);
    const again = openStorage(dir);
    try {
      // Refused by the WAL (a marker proves the checkpoint synced) or, when a
      // signed record follows the checkpoint, before it is asked.
      assert.throws(
        () => dropUnbackedCheckpoint(again),
        (error: unknown) =>
          error instanceof Error &&
          'code' in error &&
          (error.code === 'StorageCorrupt' || error.code === 'RestoreFailed'),
      );
      assert.equal(lastCheckpoint(again.wal.readAll()).height, height);
    } finally {
      again.close();
    }
  } finally {
    tmp.remove();
  }
});

test('a checkpoint whose block is missing is not dropped when a signed message follows it (its sync waited for the block log)', async () => {
  const tmp = tempDir('zomma-unbacked-');
  const genesis = testGenesis([testKey(0)]);
  const dir = `${tmp.dir}/v0`;
  const node = start(genesis, dir, new MemoryHub());
  await waitFor(() => node.app.height >= 4, 20_000, 'height 4');
  node.stop();
  try {
    const path = `${dir}/wal.log`;
    const opened = openWal(path);
    const records = opened.wal.readAll();
    opened.wal.close();
    const kinds = records.map((bytes) => decode(walRecordCodec, bytes, 'wal').kind);
    const checkpoint = checkpoints(records)
      .filter(({ index }) => kinds.slice(index + 1).includes('signed'))
      .at(-1)!;
    const signed = kinds.indexOf('signed', checkpoint.index + 1);
    // The crash: every signed record synced (the last one after the
    // checkpoint, and broadcast), no marker after it yet; then the block log
    // lost the checkpoint's block anyway (damage in its last sync window,
    // which its open cannot tell from a torn write).
    unlinkSync(path);
    const { wal } = openWal(path);
    for (let i = 0; i <= signed; i++) wal.append(records[i]!, kinds[i] === 'signed');
    const image = readFileSync(path);
    wal.close();
    writeFileSync(path, image);
    const blocks = `${dir}/blocks.log`;
    truncateSync(blocks, recordOffsets(readFileSync(blocks))[checkpoint.height - 1]!);
    const storage = openStorage(dir);
    try {
      // Dropping it would drop a vote that left the process: after a restart
      // the validator could sign another one for the same step.
      assert.throws(() => dropUnbackedCheckpoint(storage), { code: 'RestoreFailed' });
      assert.equal(storage.wal.nextIndex(), signed + 1);
    } finally {
      storage.close();
    }
  } finally {
    tmp.remove();
  }
});

/** `records` as a version 2 WAL held them: a 16-byte header, each record with an unkeyed marker after it. */
function versionTwoWal(records: readonly Uint8Array[]): Buffer {
  const header = Buffer.alloc(OLD_FILE_HEADER_BYTES);
  header.write('ZWAL', 0, 'latin1');
  header.writeUInt32BE(2, 4);
  const marker = Buffer.alloc(RECORD_HEADER_BYTES + 8);
  marker.writeUInt32BE((0x8000_0000 | 8) >>> 0, 0);
  marker.writeUInt32BE(crc32(marker.subarray(RECORD_HEADER_BYTES)), 4);
  marker.writeUInt32BE(crc32(marker.subarray(0, 8)), 8);
  return Buffer.concat([header, ...records.flatMap((r) => [encodeRecord(r), marker])]);
}

test('an unbacked checkpoint in a version 2 WAL is still dropped after a start that upgraded the WAL and then failed', async () => {
  const tmp = tempDir('zomma-unbacked-');
  const genesis = testGenesis([testKey(0)]);
  const dir = `${tmp.dir}/v0`;
  let node = start(genesis, dir, new MemoryHub());
  try {
    await waitFor(() => node.app.height >= 4, 20_000, 'height 4');
    node.stop();
    // The crash under an older build: the last checkpoint on disk, its block not.
    const opened = openWal(`${dir}/wal.log`);
    const records = opened.wal.readAll();
    opened.wal.close();
    const last = checkpoints(records).at(-1)!;
    const kept = records.slice(0, last.index);
    assert.ok(
      kept.some((bytes) => decode(walRecordCodec, bytes, 'wal').kind === 'signed'),
      'signed records precede the checkpoint',
    );
    writeFileSync(`${dir}/wal.log`, versionTwoWal(records.slice(0, last.index + 1)));
    const blocks = `${dir}/blocks.log`;
    truncateSync(blocks, recordOffsets(readFileSync(blocks))[last.height - 1]!);

    // A start that upgrades the WAL, then fails before the restore: the
    // results log's own upgrade runs out of space.
    const results = `${dir}/results.log`;
    const resultsHeader = Buffer.alloc(OLD_FILE_HEADER_BYTES);
    resultsHeader.write('ZRES', 0, 'latin1');
    resultsHeader.writeUInt32BE(1, 4);
    writeFileSync(results, resultsHeader);
    symlinkSync('/dev/full', `${results}.tmp`);
    const failed = openStorage(dir);
    assert.throws(() => openFileResultsStore(results), { code: 'StorageIoFailed' });
    failed.close();
    assert.equal(readFileSync(`${dir}/wal.log`).readUInt32BE(4), 3, 'the WAL was upgraded');

    // The next start drops the checkpoint and keeps every record before it.
    node = start(genesis, dir, new MemoryHub());
    assert.equal(node.dropped, 1);
    assert.equal(node.restoredHeight, last.height - 1);
    assert.deepEqual(node.storage.wal.readAll().slice(0, kept.length), kept);
    await waitFor(() => node.app.height >= last.height + 1, 20_000, 'the node goes on');
    assert.equal(node.loop.haltReport, null);
  } finally {
    node.stop();
    tmp.remove();
  }
});
