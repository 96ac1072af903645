// Restart: the application is brought to exactly the height the WAL resumes
// from (its last checkpoint) — the latest snapshot at or below it, then the
// stored blocks after the snapshot, executed again. The replica then replays
// its WAL and asks for any later height itself. Restoring further than the
// checkpoint would make the replica ask to execute a height twice.
//
// A checkpoint is appended to the WAL without a sync, and a block's fsync
// runs in the background, so a power cut can leave on disk a checkpoint whose
// block is not there (writeback reached the WAL page first). Every WAL sync
// is preceded by the block log's barrier, so no sync can have followed that
// checkpoint: it and every record after it were never acknowledged, and
// dropping them leaves what a crash just before the checkpoint leaves (the
// block decided, not yet saved). dropUnbackedCheckpoint does that before the
// restore; the WAL refuses if a running node's sync proved the records
// synced (an older WAL's upgrade proves none: record_log.ts), and it refuses
// itself if a signed record follows the checkpoint (whose sync waited for the
// block, so the block log lost a synced block).
//
// The results log (results.ts) is written again only for the heights the
// restore re-executes, those after the snapshot it starts from. Snapshots are
// saved after the results before them are flushed, so the log normally
// reaches that snapshot; if it stops below it (its tail lost), starting there
// would leave the heights between without results, served as committed
// without them. The restore then starts from a snapshot at or below the
// results' last height (or genesis), re-executing (and so re-recording) every
// height after it, when the block store holds the blocks after that start;
// otherwise it refuses with RestoreFailed naming the heights.

import { decode } from '../codec/wire.ts';
import type { BlockResult } from '../consensus/index.ts';
import { walRecordCodec } from '../consensus/index.ts';
import { bytesEqual, toHex } from '../lib/bytes.ts';
import { NodeError } from './errors.ts';
import type { Log } from './log.ts';
import { silentLog } from './log.ts';
import type { Checkpoint, NodeApplication } from './loop.ts';
import { loadCommitted } from './loop.ts';
import type { Storage } from './storage/index.ts';

export interface RestoreResult<A> {
  readonly app: A;
  readonly snapshotHeight: number;
  readonly replayedBlocks: number;
  /**
   * What executing the block of the checkpoint's height gave, when the
   * restore executed it (null: the application came from a snapshot of that
   * height, or genesis). The loop needs its validator updates when it
   * resumes from another appHash than its checkpoint's (NodeLoop).
   */
  readonly lastResult: BlockResult | null;
}

export function restoreApp<A extends NodeApplication>(
  storage: Storage,
  target: Checkpoint,
  fresh: () => A,
  fromSnapshot: (bytes: Uint8Array) => A,
  log: Log = silentLog,
  /** Called after each stored block executed again (the node saves its results if missing). */
  onReplayed: (app: A) => void = () => {},
  /** The last height the results log holds; 0 if it holds none (a new or state-synced node). */
  resultsHeight = 0,
): RestoreResult<A> {
  let app: A | null = null;
  let snapshotHeight = 0;
  const below = storage.snapshots.heights().filter((h) => h <= target.height);
  const newest = below.at(-1) ?? 0;
  // A results log holding nothing is one that never has: nothing to write again.
  const resultsBehind = resultsHeight > 0 && resultsHeight < newest;
  const heights = resultsBehind ? below.filter((h) => h <= resultsHeight) : below;
  if (resultsBehind) {
    log.warn(
      { resultsHeight, snapshotHeight: newest, checkpointHeight: target.height },
      'the results log stops below the newest snapshot; restoring from an earlier state to write the missing results again',
    );
  }
  for (let i = heights.length - 1; i >= 0 && app === null; i--) {
    const height = heights[i]!;
    try {
      // A damaged file (StorageCorrupt) too: snapshots only make restarts faster,
      // and whatever is restored is checked against the checkpoint's appHash.
      const bytes = storage.snapshots.load(height);
      if (bytes === null) continue;
      const restored = fromSnapshot(bytes);
      if (restored.height !== height) throw new Error(`it holds height ${restored.height}`);
      // Saved by code whose state the chain did not certify (see certifiedAfter).
      const certified = certifiedAfter(storage, height);
      if (certified !== null && !bytesEqual(certified, restored.appHash)) {
        throw new Error(
          `its appHash ${toHex(restored.appHash)} is not the ${toHex(certified)} the chain certified`,
        );
      }
      app = restored;
      snapshotHeight = height;
    } catch (error) {
      log.warn({ height, error: String(error) }, 'snapshot unusable, trying an older one');
    }
  }
  app ??= fresh();
  if (resultsBehind) {
    const first = storage.blocks.firstHeight();
    if (first === 0 || first > app.height + 1) {
      throw new NodeError(
        'RestoreFailed',
        `the results log holds results up to height ${resultsHeight}, below the snapshot of height ${newest} the node would restore from: writing the results of heights ${resultsHeight + 1} to ${newest} again needs a usable snapshot at or below height ${resultsHeight} (or genesis) and the blocks after it, and the block store starts at height ${first}. Restore data/results.log from a backup, or move it aside to start without the results of heights up to ${newest}`,
      );
    }
  }
  let replayed = 0;
  let lastResult: BlockResult | null = null;
  for (let height = app.height + 1; height <= target.height; height++) {
    const stored = loadCommitted(storage, height);
    if (stored === null) {
      throw new NodeError(
        'RestoreFailed',
        `block ${height} is missing from the block store (needed to reach height ${target.height})`,
      );
    }
    const expected = stored.block.header.previousAppHash;
    if (!bytesEqual(expected, app.appHash)) throw mismatch(height - 1, app.appHash, expected);
    lastResult = app.finalizeBlock(stored.block, stored.commit);
    app.commit();
    onReplayed(app);
    replayed++;
  }
  // The checkpoint holds what this node computed. A stored certified block
  // after it holds what the chain did, and wins: after a halt on a divergence
  // (the node stores the block that showed it), a build with the fault fixed
  // must resume, and one still faulty must not.
  const certified = certifiedAfter(storage, target.height);
  if (certified !== null) {
    if (!bytesEqual(certified, app.appHash)) {
      throw mismatch(target.height, app.appHash, certified);
    }
    if (target.appHash !== null && !bytesEqual(target.appHash, app.appHash)) {
      log.warn(
        {
          height: target.height,
          appHash: toHex(app.appHash),
          recordedAppHash: toHex(target.appHash),
        },
        'the state after this height now agrees with the block the validators certified after it, not with what this node computed before (its WAL checkpoint); resuming',
      );
    }
  } else if (target.appHash !== null && !bytesEqual(target.appHash, app.appHash)) {
    throw mismatch(target.height, app.appHash, target.appHash, 'this node recorded');
  }
  return { app, snapshotHeight, replayedBlocks: replayed, lastResult };
}

/**
 * The appHash after `height` as the chain certified it: the header of the
 * stored block after it (every stored block is committed), or null.
 */
function certifiedAfter(storage: Storage, height: number): Uint8Array | null {
  if (height + 1 > storage.blocks.lastHeight()) return null;
  try {
    return loadCommitted(storage, height + 1)?.block.header.previousAppHash ?? null;
  } catch {
    // A damaged block confirms nothing; the restore goes on as without it.
    return null;
  }
}

/**
 * Drops the WAL from its first checkpoint whose height neither the block
 * store nor a snapshot holds, when no later checkpoint is held either (else
 * the damage is not the crash described above, and the restore reports it).
 * Returns how many records were dropped.
 */
export function dropUnbackedCheckpoint(storage: Storage, log: Log = silentLog): number {
  const wal = storage.wal;
  if (wal.dropFrom === undefined) return 0;
  const held = (height: number): boolean =>
    height <= storage.blocks.lastHeight() || storage.snapshots.heights().includes(height);
  const records = wal.readAll();
  let firstUnheld: { index: number; height: number } | null = null;
  let signedAfter = false;
  for (let i = 0; i < records.length; i++) {
    let height: number;
    try {
      const record = decode(walRecordCodec, records[i]!, 'wal');
      if (record.kind === 'signed' && firstUnheld !== null) signedAfter = true;
      if (record.kind !== 'checkpoint') continue;
      height = record.state.height;
    } catch {
      // Like the replica, read no further than a record it cannot decode.
      break;
    }
    if (held(height)) {
      if (firstUnheld !== null) return 0;
    } else {
      firstUnheld ??= { index: wal.firstIndex() + i, height };
    }
  }
  if (firstUnheld === null) return 0;
  // A signed record is written only after the block log's barrier, so one on
  // disk after the checkpoint means its block was synced: the block log lost
  // it since (damage in its last window, cut at open as a torn write). The
  // signed message may have left the process, and no marker need prove it
  // yet (the marker that would is written by the next sync): dropping it
  // could let the validator sign another message for the same step.
  if (signedAfter) {
    throw new NodeError(
      'RestoreFailed',
      `the WAL checkpoint of height ${firstUnheld.height} names a block the block store lacks (last ${storage.blocks.lastHeight()}), and a signed message follows it, so that block was synced and has been lost since: restore the block log from a backup or a peer's data`,
    );
  }
  const dropped = wal.nextIndex() - firstUnheld.index;
  wal.dropFrom(firstUnheld.index);
  log.warn(
    {
      checkpointHeight: firstUnheld.height,
      blocksLastHeight: storage.blocks.lastHeight(),
      droppedWalRecords: dropped,
    },
    'WAL checkpoint names a block that never reached the disk; resuming from the checkpoint before it',
  );
  return dropped;
}

function mismatch(
  height: number,
  ours: Uint8Array,
  recorded: Uint8Array,
  who = 'the chain recorded',
): NodeError {
  return new NodeError(
    'AppHashMismatch',
    `re-executing the stored blocks gives appHash ${toHex(ours)} after height ${height}, ${who} ${toHex(recorded)}`,
    null,
    {
      height,
      details: { ourAppHash: toHex(ours), recordedAppHash: toHex(recorded), recordedBy: who },
    },
  );
}
