// Write-back errors under concurrent syncs. Linux reports a write-back error
// once per open file description: of two fsyncs in flight on one descriptor,
// the one that checks first gets the error and the other succeeds. A record
// log must therefore never have two syncs in flight on one descriptor, and no
// sync may report success for bytes another one saw fail. These tests replace
// node:fs's sync calls with a kernel model that keeps that rule, holds the
// async syncs until the test releases them, and records any sync started on a
// descriptor while another is in flight on it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { openRecordLog, recordLogSyncs } from '../../../src/node/storage/record_log.ts';
import type { RecordLog } from '../../../src/node/storage/record_log.ts';
import { StorageError } from '../../../src/node/storage/errors.ts';
import { tempDir } from '../helpers.ts';

interface HeldSync {
  readonly fd: number;
  readonly callback: (error: NodeJS.ErrnoException | null) => void;
  outcome: NodeJS.ErrnoException | null | undefined;
}

/** The errseq rule of Linux write-back errors, per open descriptor, with async syncs held. */
class Kernel {
  /** Paths of the open descriptors. */
  readonly paths = new Map<number, string>();
  /** Write-back errors a descriptor has not reported yet. */
  private readonly unseen = new Map<number, number>();
  private readonly inFlight = new Map<number, number>();
  held: HeldSync[] = [];
  readonly violations: string[] = [];
  /** The next sync made on the calling thread fails whatever the descriptor saw (an error only it is told of). */
  failNextSyncCall = false;

  /** A write-back error of the file at `path`: every descriptor open on it reports it once. */
  writebackFails(path: string): void {
    for (const [fd, at] of this.paths) {
      if (at === path) this.unseen.set(fd, (this.unseen.get(fd) ?? 0) + 1);
    }
  }

  /** The held async syncs check for errors now (before a sync made later). */
  check(): void {
    for (const sync of this.held) sync.outcome ??= this.consume(sync.fd);
  }

  /** The held async syncs finish (checking for errors now if they have not yet), in order. */
  release(): void {
    const held = this.held;
    this.held = [];
    for (const sync of held) {
      sync.outcome ??= this.consume(sync.fd);
      this.inFlight.set(sync.fd, this.inFlight.get(sync.fd)! - 1);
      sync.callback(sync.outcome);
    }
  }

  descriptorsOn(path: string): number {
    return [...this.paths.values()].filter((at) => at === path).length;
  }

  open(path: string, fd: number): void {
    this.paths.set(fd, path);
    this.unseen.set(fd, 0);
  }

  close(fd: number): void {
    if ((this.inFlight.get(fd) ?? 0) > 0) this.violations.push(`fd ${fd} closed under a sync`);
    this.paths.delete(fd);
    this.inFlight.delete(fd);
  }

  syncNow(fd: number): void {
    if ((this.inFlight.get(fd) ?? 0) > 0) this.violations.push(`two syncs in flight on fd ${fd}`);
    const error = this.consume(fd);
    if (this.failNextSyncCall) {
      this.failNextSyncCall = false;
      throw eio();
    }
    if (error !== null) throw error;
  }

  syncLater(fd: number, callback: HeldSync['callback']): void {
    const inFlight = this.inFlight.get(fd) ?? 0;
    if (inFlight > 0) this.violations.push(`two syncs in flight on fd ${fd}`);
    this.inFlight.set(fd, inFlight + 1);
    this.held.push({ fd, callback, outcome: undefined });
  }

  private consume(fd: number): NodeJS.ErrnoException | null {
    const unseen = this.unseen.get(fd) ?? 0;
    if (unseen === 0) return null;
    this.unseen.set(fd, 0);
    return eio();
  }
}

function eio(): NodeJS.ErrnoException {
  return Object.assign(new Error('EIO: i/o error, fdatasync'), {
    code: 'EIO',
    errno: -5,
    syscall: 'fdatasync',
  });
}

/** Runs `body` with node:fs's opens, closes and syncs going through a Kernel. */
function withKernel(body: (kernel: Kernel, path: string) => void): void {
  const tmp = tempDir('zomma-sync-errors-');
  const kernel = new Kernel();
  const real = {
    openSync: fs.openSync,
    closeSync: fs.closeSync,
    fsyncSync: fs.fsyncSync,
    fdatasyncSync: fs.fdatasyncSync,
    fdatasync: fs.fdatasync,
  };
  Object.assign(fs, {
    openSync: (path: fs.PathLike, flags: fs.OpenMode = 'r', mode?: fs.Mode) => {
      const fd = real.openSync(path, flags, mode);
      kernel.open(String(path), fd);
      return fd;
    },
    closeSync: (fd: number) => {
      kernel.close(fd);
      real.closeSync(fd);
    },
    fsyncSync: (fd: number) => kernel.syncNow(fd),
    fdatasyncSync: (fd: number) => kernel.syncNow(fd),
    fdatasync: (fd: number, callback: HeldSync['callback']) => kernel.syncLater(fd, callback),
  });
  syncBuiltinESMExports();
  try {
    body(kernel, `${tmp.dir}/test.log`);
  } finally {
    Object.assign(fs, real);
    syncBuiltinESMExports();
    tmp.remove();
  }
}

function open(path: string): RecordLog {
  return openRecordLog(path, { magic: 'ZTST', recordBytesMax: 1_024, verifyPayloads: true }).log;
}

const record = (i: number): Uint8Array => new Uint8Array(20).fill(i);

function isIoFailure(error: unknown): boolean {
  return error instanceof StorageError && error.code === 'StorageIoFailed';
}

test('a write-back error an async sync in flight checks first still fails the foreground sync', () =>
  withKernel((kernel, path) => {
    const log = open(path);
    log.append(record(1), false);
    const outcomes: (Error | null)[] = [];
    log.syncAsync((error) => outcomes.push(error));
    kernel.writebackFails(path);
    kernel.check();
    log.append(record(2), false);
    assert.throws(() => log.sync(), { code: 'StorageIoFailed' });
    kernel.release();
    assert.equal(outcomes.length, 1);
    assert.ok(isIoFailure(outcomes[0]));
    assert.throws(() => log.append(record(3), false), { code: 'StorageIoFailed' });
    log.close();
    assert.deepEqual(kernel.violations, []);
  }));

test('a write-back error the foreground sync checks first still fails the awaited sync in flight', () =>
  withKernel((kernel, path) => {
    const log = open(path);
    log.append(record(1), false);
    const outcomes: (Error | null)[] = [];
    log.syncAsync((error) => outcomes.push(error));
    kernel.writebackFails(path);
    assert.throws(() => log.sync(), { code: 'StorageIoFailed' });
    kernel.release();
    assert.equal(outcomes.length, 1);
    assert.ok(isIoFailure(outcomes[0]), String(outcomes[0]));
    assert.equal(log.needsSync, true);
    log.close();
    assert.deepEqual(kernel.violations, []);
  }));

test('an async sync that succeeds after the log failed reports the failure, not durability', () =>
  withKernel((kernel, path) => {
    const log = open(path);
    log.append(record(1), false);
    const outcomes: (Error | null)[] = [];
    log.syncAsync((error) => outcomes.push(error));
    // An error only the foreground sync is told of (pages the async one may have covered).
    kernel.failNextSyncCall = true;
    assert.throws(() => log.sync(), { code: 'StorageIoFailed' });
    kernel.release();
    assert.equal(outcomes.length, 1);
    assert.ok(isIoFailure(outcomes[0]), String(outcomes[0]));
    assert.equal(log.needsSync, true, 'nothing was proven durable');
    log.close();
  }));

test('a second async request waits for the sync in flight, and its failure fails both', () =>
  withKernel((kernel, path) => {
    const log = open(path);
    const outcomes = new Map<string, Error | null>();
    log.append(record(1), false);
    log.syncAsync((error) => outcomes.set('a', error));
    log.append(record(2), false);
    log.syncAsync((error) => outcomes.set('b', error));
    assert.equal(kernel.held.length, 1, 'one sync in flight');
    kernel.writebackFails(path);
    kernel.release();
    assert.ok(isIoFailure(outcomes.get('a')));
    assert.ok(isIoFailure(outcomes.get('b')), String(outcomes.get('b')));
    assert.equal(kernel.held.length, 0, 'no sync started for a failed log');
    log.close();
    assert.deepEqual(kernel.violations, []);
  }));

test('async requests made during a sync share the next one, which each waits for', () =>
  withKernel((kernel, path) => {
    const log = open(path);
    const before = { ...recordLogSyncs };
    const outcomes = new Map<string, Error | null>();
    log.append(record(1), false);
    log.syncAsync((error) => outcomes.set('a', error));
    log.append(record(2), false);
    log.syncAsync((error) => outcomes.set('b', error));
    log.append(record(3), false);
    log.syncInBackground();
    log.syncAsync((error) => outcomes.set('c', error));
    assert.equal(kernel.held.length, 1);
    kernel.release();
    assert.deepEqual([...outcomes], [['a', null]]);
    assert.equal(kernel.held.length, 1, 'the waiting requests share one sync');
    assert.equal(log.needsSync, true);
    kernel.release();
    assert.deepEqual(
      [...outcomes],
      [
        ['a', null],
        ['b', null],
        ['c', null],
      ],
    );
    assert.equal(log.needsSync, false);
    assert.equal(recordLogSyncs.awaited - before.awaited, 2);
    assert.equal(recordLogSyncs.background - before.background, 0);
    log.close();
    assert.deepEqual(kernel.violations, []);
  }));

test('a shared sync failing fails only the requests that waited for it; close reports a background one', () =>
  withKernel((kernel, path) => {
    const log = open(path);
    const outcomes = new Map<string, Error | null>();
    log.append(record(1), false);
    log.syncAsync((error) => outcomes.set('a', error));
    log.append(record(2), false);
    log.syncAsync((error) => outcomes.set('b', error));
    log.syncAsync((error) => outcomes.set('c', error));
    kernel.release();
    kernel.writebackFails(path);
    kernel.release();
    assert.equal(outcomes.get('a'), null);
    assert.ok(isIoFailure(outcomes.get('b')));
    assert.ok(isIoFailure(outcomes.get('c')));
    assert.throws(() => log.append(record(3), false), { code: 'StorageIoFailed' });
    log.close();

    const background = open(`${path}.2`);
    background.append(record(1), false);
    background.syncInBackground();
    background.append(record(2), false);
    background.syncInBackground();
    kernel.release();
    kernel.writebackFails(`${path}.2`);
    kernel.release();
    assert.ok(isIoFailure(background.close()), 'nobody else heard of it');
    assert.deepEqual(kernel.violations, []);
  }));

test('waiting requests a foreground sync covered meanwhile need no sync of their own', () =>
  withKernel((kernel, path) => {
    const log = open(path);
    const before = { ...recordLogSyncs };
    const outcomes: (Error | null)[] = [];
    log.append(record(1), false);
    log.syncAsync((error) => outcomes.push(error));
    log.append(record(2), false);
    log.syncAsync((error) => outcomes.push(error));
    log.sync();
    kernel.release();
    assert.deepEqual(outcomes, [null, null]);
    assert.equal(kernel.held.length, 0);
    assert.equal(recordLogSyncs.awaited - before.awaited, 1);
    log.close();
    assert.deepEqual(kernel.violations, []);
  }));

test('rewrite and close leave a descriptor open until the sync in flight on it finishes; the new file has two', () =>
  withKernel((kernel, path) => {
    const log = open(path);
    assert.equal(kernel.descriptorsOn(path), 2);
    const first = log.append(record(1), false);
    log.append(record(2), false);
    const outcomes: (Error | null)[] = [];
    log.syncAsync((error) => outcomes.push(error));
    log.rewrite(1, first.offset + 12 + 20);
    // The old primary descriptor, under its sync, and the new file's two.
    assert.equal(kernel.descriptorsOn(path), 3);
    kernel.release();
    assert.deepEqual(outcomes, [], 'rewrite made it durable; nobody is called back');
    assert.equal(kernel.descriptorsOn(path), 2);
    // Both new descriptors see a write-back error of the new file.
    log.append(record(3), false);
    log.syncInBackground();
    kernel.writebackFails(path);
    assert.throws(() => log.sync(), { code: 'StorageIoFailed' });
    kernel.release();
    log.close();
    assert.equal(kernel.descriptorsOn(path), 0);

    const other = open(path);
    other.append(record(4), false);
    other.syncInBackground();
    assert.equal(other.close(), null);
    assert.equal(kernel.descriptorsOn(path), 1, 'the primary, under its sync');
    kernel.release();
    assert.equal(kernel.descriptorsOn(path), 0);
    assert.deepEqual(kernel.violations, []);
  }));
