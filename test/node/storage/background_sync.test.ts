// A background fdatasync that finished covers the records appended before it
// started, so the barrier after it (flush before a vote's WAL sync) need not
// sync again; records appended after it started still need the barrier.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openRecordLog } from '../../../src/node/storage/record_log.ts';
import type { RecordLog } from '../../../src/node/storage/record_log.ts';
import { tempDir } from '../helpers.ts';

/** Turns of the event loop until the log says it is durable (the sync's callback ran), bounded. */
async function untilDurable(log: RecordLog): Promise<void> {
  for (let turns = 0; turns < 100_000 && log.needsSync; turns++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function open(dir: string): RecordLog {
  return openRecordLog(`${dir}/test.log`, {
    magic: 'ZTST',
    recordBytesMax: 1_024,
    verifyPayloads: true,
  }).log;
}

test('a finished background sync makes the barrier free; a later append needs it again', async () => {
  const tmp = tempDir('zomma-bg-sync-');
  const log = open(tmp.dir);
  try {
    assert.equal(log.needsSync, false);
    log.append(new Uint8Array([1, 2, 3]), false);
    assert.equal(log.needsSync, true);
    log.syncInBackground();
    // Appended after the background sync started: not covered by it.
    log.append(new Uint8Array([4]), false);
    await untilDurable(log);
    assert.equal(log.needsSync, true, 'the second record is not covered');
    log.syncInBackground();
    await untilDurable(log);
    assert.equal(log.needsSync, false);
    log.append(new Uint8Array([5]), true);
    assert.equal(log.needsSync, false, 'a synced append is durable on return');
  } finally {
    log.close();
    tmp.remove();
  }
});

test('a rewrite leaves the log durable; a background sync of the old file does not count', async () => {
  const tmp = tempDir('zomma-bg-sync-');
  const log = open(tmp.dir);
  try {
    const first = log.append(new Uint8Array([1]), false);
    log.append(new Uint8Array([2]), false);
    log.syncInBackground();
    log.rewrite(1, first.offset + 12 + 1);
    assert.equal(log.needsSync, false);
    log.append(new Uint8Array([3]), false);
    // The old file's sync finishing now must not cover the new append.
    for (let turns = 0; turns < 1_000; turns++) await new Promise((r) => setImmediate(r));
    assert.equal(log.needsSync, true);
  } finally {
    log.close();
    tmp.remove();
  }
});
