// A background fdatasync that finished covers the records appended before it
// started, so the barrier after it (flush before a vote's WAL sync) need not
// sync again; records appended after it started still need the barrier.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { RECORD_HEADER_BYTES, openRecordLog } from '../../../src/node/storage/record_log.ts';
import type { RecordLog } from '../../../src/node/storage/record_log.ts';
import { tempDir } from '../helpers.ts';

/**
 * Polls until `done` holds: a sync's callback runs on the thread pool's
 * schedule, which a loaded machine can delay by seconds. Bounded, so a sync
 * that never finishes fails the test rather than hanging it.
 */
async function until(done: () => boolean): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!done() && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 2));
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
    assert.equal(log.syncInFlight, true);
    await until(() => !log.syncInFlight);
    assert.equal(log.needsSync, true, 'the second record is not covered');
    log.syncInBackground();
    await until(() => !log.syncInFlight);
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

test('a sync that finishes after the file was cut does not prove the bytes appended since', async () => {
  const tmp = tempDir('zomma-bg-sync-');
  const path = `${tmp.dir}/test.log`;
  const log = open(tmp.dir);
  try {
    log.append(new Uint8Array(100).fill(1), false);
    const second = log.append(new Uint8Array(200).fill(2), false);
    const finished = new Promise<Error | null>((resolve) => log.syncAsync(resolve));
    // Cut while that sync runs: it covered bytes the file no longer holds.
    log.truncateTo(second.offset);
    assert.equal(await finished, null);
    // Appended after the cut, where the old bytes were: no sync covers them yet.
    const third = log.append(new Uint8Array(400).fill(3), false);
    log.append(new Uint8Array(10).fill(4), false);
    // A sync that starts (its marker is written) and never finishes.
    log.sync();
    const image = readFileSync(path);
    const torn = Buffer.from(image);
    torn[third.offset + RECORD_HEADER_BYTES + 5]! ^= 0xff;
    log.close();
    writeFileSync(path, torn);
    // The third record was never synced: a torn tail, not synced data.
    const opened = openRecordLog(path, {
      magic: 'ZTST',
      recordBytesMax: 1_024,
      verifyPayloads: true,
    });
    assert.equal(opened.records.length, 1);
    assert.equal(opened.truncatedBytes, image.length - third.offset);
    opened.log.close();
  } finally {
    tmp.remove();
  }
});
