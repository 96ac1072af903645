// node.log and logrotate: SIGHUP makes `zomma node` open node.log again at
// its path, so the lines after a rotation go to the new file and none is
// written into the one moved away. SIGHUP never ends the node: one during its
// start reopens the log once it has started, one during its stop still does.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs, { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import { command as nodeCommand } from '../../src/cli/commands/node.ts';
import type { Io } from '../../src/cli/io.ts';
import { loadConfig, saveConfig } from '../../src/node/config.ts';
import type { NodeConfig } from '../../src/node/config.ts';
import { LogFile } from '../../src/node/runtime.ts';
import { BIN, initSoloHome, kill9, startNodeProcess, until } from '../e2e/helpers.ts';
import { pidAlive } from '../../src/node/storage/lock.ts';
import { tempDir } from './helpers.ts';

/** The messages of a JSON log file's lines. */
function messages(path: string): string[] {
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { msg: string }).msg);
}

/** A solo validator's home that logs at info (with `extra` in its config), and its node.log's path. */
function infoHome(
  prefix: string,
  extra: Partial<NodeConfig> = {},
): { tmp: { dir: string; remove: () => void }; home: string; log: string } {
  const tmp = tempDir(prefix);
  const home = initSoloHome(tmp.dir, { oracleSeed: 5, snapshotEveryHeights: 0, commitPauseMs: 20 });
  saveConfig(home, { ...loadConfig(home), logLevel: 'info', ...extra });
  return { tmp, home, log: join(home, 'node.log') };
}

/**
 * Whether node.log holds a line with this message (false while there is no
 * file). Read as text: a node in another process may be midway through a line.
 */
function logged(log: string, msg: string): boolean {
  return existsSync(log) && readFileSync(log, 'utf8').includes(`"msg":${JSON.stringify(msg)}`);
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
  const { tmp, home, log } = infoHome('zomma-node-sighup-');
  const io: Io = { out: () => {}, err: () => {} };
  const exit = main(['node', '--home', home, '--quiet'], io);
  try {
    await until(() => logged(log, 'block executed'), 60_000, 'the node executes a block');
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

test('a reopen the destination cannot open does not throw (it runs in a signal handler): the log stays on the file it has, and the next reopen closes that file once', async () => {
  const tmp = tempDir('zomma-log-reopen-');
  const path = join(tmp.dir, 'node.log');
  const file = new LogFile(path);
  // The destination's own calls (sonic-boom reads them off the module object).
  const { openSync, close } = fs;
  let refuse = false;
  const closed: number[] = [];
  fs.openSync = ((...args: Parameters<typeof fs.openSync>) => {
    if (refuse && args[0] === path) {
      throw Object.assign(new Error(`EACCES: permission denied, open '${path}'`), {
        code: 'EACCES',
      });
    }
    return openSync(...args);
  }) as typeof fs.openSync;
  fs.close = ((fd: number, callback: (error: NodeJS.ErrnoException | null) => void) => {
    closed.push(fd);
    close(fd, callback);
  }) as typeof fs.close;
  try {
    const first = (file.destination as unknown as { fd: number }).fd;
    file.destination.write('{"msg":"before"}\n');
    renameSync(path, `${path}.1`);
    refuse = true;
    let failure: NodeJS.ErrnoException | null = null;
    assert.doesNotThrow(() => (failure = file.reopen()), 'a failed reopen throws nothing');
    assert.equal(failure!.code, 'EACCES', 'and says why');
    assert.equal(file.destination.listenerCount('ready'), 0, 'nothing is left to close it later');
    file.destination.write('{"msg":"kept"}\n');
    file.sync();
    assert.equal(existsSync(path), false, 'nothing was made at the path');
    assert.deepEqual(messages(`${path}.1`), ['before', 'kept']);

    refuse = false;
    assert.equal(file.reopen(), null, 'the path opens again');
    file.destination.write('{"msg":"after"}\n');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(
      closed.filter((fd) => fd === first),
      [first],
      'the moved file is closed once, once the new one is open',
    );
    file.sync();
    assert.deepEqual(messages(path), ['after']);
  } finally {
    fs.openSync = openSync;
    fs.close = close;
    file.close();
    tmp.remove();
  }
});

test('`zomma node` takes a SIGHUP that comes while it starts, and reopens node.log once it has started', async () => {
  const { tmp, home, log } = infoHome('zomma-node-sighup-start-');
  const io: Io = { out: () => {}, err: () => {} };
  // The command itself, not main(), which first imports it: up to its start's
  // first wait this runs now, and node.log is open.
  const exit = nodeCommand.run(['--home', home, '--quiet'], io);
  try {
    assert.ok(messages(log).includes('node starting'), 'the start has opened node.log');
    renameSync(log, `${log}.1`);
    process.emit('SIGHUP');
    await until(
      () => logged(log, 'block executed'),
      60_000,
      'node.log made again, and a block logged there',
    );
    process.emit('SIGTERM');
    assert.equal(await exit, 0);
    const before = messages(`${log}.1`);
    const after = messages(log);
    assert.ok(before.includes('API listener up (HTTP and WebSocket)'), before.join(', '));
    assert.equal(after[0], 'log file reopened', `the new file: ${after.join(', ')}`);
    assert.equal(process.listenerCount('SIGHUP'), 0, 'the handler is removed');
  } finally {
    process.emit('SIGTERM');
    await exit.catch(() => {});
    tmp.remove();
  }
});

test('`zomma node` takes a SIGHUP that comes while it stops: the stop logs its last lines into the new file', async () => {
  const { tmp, home, log } = infoHome('zomma-node-sighup-stop-');
  const io: Io = { out: () => {}, err: () => {} };
  let settled = false;
  const exit = main(['node', '--home', home, '--quiet'], io).finally(() => (settled = true));
  try {
    await until(() => logged(log, 'block executed'), 60_000, 'the node executes a block');
    process.emit('SIGTERM');
    // The stop begins in the turn SIGTERM came in; the SIGHUP comes in the
    // same turn, the stop under way (a later turn may find it done: a stop
    // can take less than one).
    const hangup = { listeners: process.listenerCount('SIGHUP'), stopping: !settled };
    renameSync(log, `${log}.1`);
    process.emit('SIGHUP');
    assert.equal(await exit, 0);
    assert.deepEqual(hangup, { listeners: 1, stopping: true }, 'SIGHUP is taken while stopping');
    const after = messages(log);
    assert.equal(after[0], 'log file reopened', `the new file: ${after.join(', ')}`);
    assert.equal(after.at(-1), 'stopped', `the new file: ${after.join(', ')}`);
    assert.equal(process.listenerCount('SIGHUP'), 0, 'the handler is removed');
  } finally {
    process.emit('SIGTERM');
    await exit.catch(() => {});
    tmp.remove();
  }
});

test('`zomma node` is not ended by a real SIGHUP while it is still starting (systemd would count that a clean exit and not restart it)', async () => {
  // A state sync from a peer that never answers: the start waits.
  const { tmp, home, log } = infoHome('zomma-node-sighup-syncing-', {
    stateSync: true,
    peers: [{ publicKey: '11'.repeat(32), address: '127.0.0.1:1' }],
  });
  const proc = startNodeProcess(home);
  try {
    await until(
      () =>
        existsSync(log) &&
        readFileSync(log, 'utf8').includes('"msg":"state sync: asking peers for snapshots"'),
      60_000,
      'the start waits in its state sync',
    );
    // Both pending at once, the lower signal comes first: SIGHUP ends the
    // process unless it is listened to; SIGTERM while starting ends it either way.
    proc.child.kill('SIGHUP');
    proc.child.kill('SIGTERM');
    await proc.exited;
    assert.equal(proc.child.signalCode, 'SIGTERM', 'ended by SIGTERM, not by SIGHUP');
  } finally {
    if (proc.child.exitCode === null && proc.child.signalCode === null) await kill9(proc);
    tmp.remove();
  }
});

/** util-linux `script`, which runs a command on a terminal of its own (a pseudo-terminal). */
const SCRIPT = spawnSync('script', ['--version']).status === 0;

test(
  '`zomma node` in a terminal that is closed stops cleanly, as when its output pipe closes: the SIGHUP reopens its log, and its next line to the terminal finds no reader (EIO)',
  { skip: !SCRIPT },
  async () => {
    const { tmp, home, log } = infoHome('zomma-node-hangup-');
    const command = `'${process.execPath}' '${BIN}' node --home '${home}'`;
    // The terminal's other end is `script`'s: killed, the terminal hangs up.
    const terminal = spawn('script', ['-q', '-f', '-c', command, '/dev/null'], {
      stdio: ['pipe', 'ignore', 'ignore'],
      env: { ...process.env, SHELL: '/bin/sh' },
    });
    let pid = 0;
    try {
      await until(() => logged(log, 'block executed'), 60_000, 'the node executes a block');
      pid = Number(readFileSync(join(home, 'data', 'LOCK'), 'utf8').trim());
      assert.ok(pid > 0 && pidAlive(pid), `the node's pid ${pid} from its lock`);
      terminal.kill('SIGKILL');
      await until(() => !pidAlive(pid), 60_000, 'the node exits');
      const lines = messages(log);
      assert.equal(lines.at(-1), 'stopped', `a clean stop: ${lines.slice(-4).join(', ')}`);
      assert.equal(existsSync(join(home, 'data', 'LOCK')), false, 'its lock released');
    } finally {
      if (terminal.exitCode === null && terminal.signalCode === null) terminal.kill('SIGKILL');
      if (pid > 0 && pidAlive(pid)) process.kill(pid, 'SIGKILL');
      tmp.remove();
    }
  },
);
