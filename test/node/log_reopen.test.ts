// node.log and logrotate: SIGHUP makes `zomma node` open node.log again at
// its path, so the lines after a rotation go to the new file and none is
// written into the one moved away.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import type { Io } from '../../src/cli/io.ts';
import { loadConfig, saveConfig } from '../../src/node/config.ts';
import { LogFile } from '../../src/node/runtime.ts';
import { initSoloHome, until } from '../e2e/helpers.ts';
import { tempDir } from './helpers.ts';

/** The messages of a JSON log file's lines. */
function messages(path: string): string[] {
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { msg: string }).msg);
}

test('a log file reopened after its file was moved away writes to a new file at its path; the moved file keeps the lines before', () => {
  const tmp = tempDir('zomma-log-reopen-');
  const path = join(tmp.dir, 'node.log');
  const file = new LogFile(path);
  try {
    file.destination.write('{"msg":"before"}\n');
    renameSync(path, `${path}.1`);
    // Until the reopen, lines still go to the moved file (as logrotate expects).
    file.destination.write('{"msg":"moved"}\n');
    assert.equal(existsSync(path), false);
    file.reopen();
    file.destination.write('{"msg":"after"}\n');
    file.sync();
    assert.deepEqual(messages(`${path}.1`), ['before', 'moved']);
    assert.deepEqual(messages(path), ['after']);
  } finally {
    file.close();
    tmp.remove();
  }
});

test('a log file whose path cannot be opened again goes on writing to the file it has', () => {
  const tmp = tempDir('zomma-log-reopen-');
  const path = join(tmp.dir, 'logs', 'node.log');
  const dir = join(tmp.dir, 'logs');
  mkdirSync(dir);
  const file = new LogFile(path);
  try {
    // The directory moved away whole: nothing can be opened at the path.
    renameSync(dir, `${dir}.old`);
    file.reopen();
    file.destination.write('{"msg":"still here"}\n');
    file.sync();
    assert.deepEqual(messages(join(`${dir}.old`, 'node.log')), ['still here']);
  } finally {
    file.close();
    tmp.remove();
  }
});

test('`zomma node` reopens node.log on SIGHUP, as logrotate asks after moving it', async () => {
  const tmp = tempDir('zomma-node-sighup-');
  const home = initSoloHome(tmp.dir, { oracleSeed: 5, snapshotEveryHeights: 0, commitPauseMs: 20 });
  saveConfig(home, { ...loadConfig(home), logLevel: 'info' });
  const log = join(home, 'node.log');
  const io: Io = { out: () => {}, err: () => {} };
  const exit = main(['node', '--home', home, '--quiet'], io);
  try {
    await until(
      () => existsSync(log) && messages(log).includes('block executed'),
      60_000,
      'the node executes a block',
    );
    renameSync(log, `${log}.1`);
    process.emit('SIGHUP');
    await until(() => existsSync(log), 10_000, 'node.log made again');
    process.emit('SIGTERM');
    assert.equal(await exit, 0);
    const before = messages(`${log}.1`);
    const after = messages(log);
    assert.ok(before.includes('node starting'), `the moved file: ${before.join(', ')}`);
    assert.equal(after[0], 'log file reopened', `the new file: ${after.join(', ')}`);
    assert.equal(after.at(-1), 'stopped', `the new file: ${after.join(', ')}`);
    assert.equal(process.listenerCount('SIGHUP'), 0, 'the handler is removed');
  } finally {
    process.emit('SIGTERM');
    await exit.catch(() => {});
    tmp.remove();
  }
});
