// `zomma devnet` refuses a bad flag with a usage error before it writes or
// starts anything.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.ts';
import type { Io } from '../../src/cli/io.ts';
import { tempDir } from '../node/helpers.ts';
import { freeBase } from '../e2e/helpers.ts';
import { initNetwork } from '../../src/node/init.ts';
import { lockDirectory, pidAlive } from '../../src/node/storage/lock.ts';

/**
 * `zomma devnet` of two validators without bots as a child process, in a
 * fresh home, bounded by --duration 60 should the test's stop be lost;
 * `printed` holds what it wrote so far to stdout and stderr.
 */
async function spawnDevnet(prefix: string, ownGroup = false) {
  const home = tempDir(prefix);
  const dir = join(home.dir, 'devnet');
  // Below the ephemeral range, where an outgoing connection could take one of them.
  const port = await freeBase(6, 3);
  const bin = fileURLToPath(new URL('../../bin/zomma.js', import.meta.url));
  const args = ['devnet', '--dir', dir, '--validators', '2', '--base-port', String(port)];
  const child = spawn(process.execPath, [bin, ...args, '--no-bots', '--duration', '60'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // A process group of its own, as a terminal gives it: a signal to the group reaches its validators too.
    detached: ownGroup,
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  const printed = { out: '', err: '' };
  child.stdout.on('data', (chunk: Buffer) => void (printed.out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => void (printed.err += chunk.toString()));
  /** The validators' pids it has printed. */
  const pidsPrinted = (): number[] =>
    [...printed.out.matchAll(/starting validator-\d \(pid (\d+)\)/g)].map((m) => Number(m[1]));
  return { home, dir, child, exited, printed, pidsPrinted };
}

async function devnet(...argv: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const io: Io = { out: () => {}, err: (t) => void (err += `${t}\n`) };
  const code = await main(['devnet', ...argv], io);
  return { code, err };
}

test('devnet: a bad --validators, --base-port or --duration is a usage error, and nothing starts', async () => {
  const home = tempDir('zomma-devnet-flags-');
  const dir = join(home.dir, 'devnet');
  // A valid rest, on ports no one uses by default, should a check be missing.
  const rest = ['--dir', dir, '--base-port', '35900', '--no-bots', '--duration', '1'];
  const cases: [string[], RegExp][] = [
    [['--validators', 'abc'], /--validators must be an integer/],
    [['--validators', '0'], /--validators must be an integer/],
    [['--validators', '2.5'], /--validators must be an integer/],
    [['--validators', '1', '--base-port', 'x'], /--base-port must be an integer/],
    [['--validators', '1', '--duration', '1e10'], /--duration must be/],
    [['--validators', '1', '--duration', '1e1'], /--duration must be/],
    [['--validators', '1', '--duration', '0x10'], /--duration must be/],
    [['--validators', '1', '--duration', ' 5'], /--duration must be/],
  ];
  try {
    for (const [flags, message] of cases) {
      const r = await devnet(...rest, ...flags);
      assert.equal(r.code, 2, flags.join(' '));
      assert.match(r.err, message);
      assert.equal(existsSync(dir), false, 'nothing written');
    }
  } finally {
    home.remove();
  }
});

test('devnet: a new chain whose ports would not fit is refused before the chain on disk is deleted', async () => {
  const home = tempDir('zomma-devnet-ports-');
  const dir = join(home.dir, 'devnet');
  try {
    initNetwork({ validators: 1, out: dir, basePort: 35940, genesisTimeMs: 1_700_000_000_000 });
    const genesis = readFileSync(join(dir, 'validator-0', 'genesis.json'), 'utf8');
    // Another validator count starts over, and 65,534 leaves no room for its ports.
    for (const flags of [
      ['--validators', '2', '--base-port', '65534'],
      ['--reset', '--base-port', '65534'],
    ]) {
      const r = await devnet('--dir', dir, ...flags, '--no-bots', '--duration', '1');
      assert.equal(r.code, 2, r.err);
      assert.match(r.err, /ConfigInvalid: --base-port: the ports would not fit/);
      assert.equal(
        readFileSync(join(dir, 'validator-0', 'genesis.json'), 'utf8'),
        genesis,
        'the chain on disk is as it was',
      );
    }
  } finally {
    home.remove();
  }
});

test('devnet: a validator that cannot start on a resumed chain is a clean error with the way to start over', async () => {
  const home = tempDir('zomma-devnet-resume-');
  const dir = join(home.dir, 'devnet');
  try {
    // Below the ephemeral range (freeBase): an outgoing connection can hold a port inside it.
    const basePort = await freeBase(3, 4);
    initNetwork({ validators: 1, out: dir, basePort, genesisTimeMs: 1_700_000_000_000 });
    // What an incompatible earlier build leaves, as far as the node can tell: a home it refuses.
    writeFileSync(join(dir, 'validator-0', 'genesis.json'), '{"not": "a genesis"}');
    const r = await devnet('--dir', dir, '--validators', '1', '--no-bots', '--duration', '1');
    assert.equal(r.code, 1);
    assert.match(r.err, /DevnetStartFailed: validator-0 exited while starting/);
    assert.match(r.err, /--reset/);
    assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
    assert.ok(existsSync(join(dir, 'validator-0', 'key.json')), 'nothing deleted');
  } finally {
    home.remove();
  }
});

test('devnet: Ctrl-C while a validator starts stops everything cleanly, even when the validator exits of it', async () => {
  const home = tempDir('zomma-devnet-interrupt-');
  const dir = join(home.dir, 'devnet');
  try {
    const basePort = await freeBase(3, 5);
    initNetwork({ validators: 1, out: dir, basePort, genesisTimeMs: 1_700_000_000_000 });
    // The validator exits while starting, as one the terminal's Ctrl-C reached does.
    writeFileSync(join(dir, 'validator-0', 'genesis.json'), '{"not": "a genesis"}');
    let err = '';
    let out = '';
    const io: Io = {
      out: (t) => {
        out += `${t}\n`;
        // The signal the devnet's own process gets from the terminal, as the start begins.
        if (t.startsWith('devnet: starting validator-0')) process.emit('SIGINT');
      },
      err: (t) => void (err += `${t}\n`),
    };
    const code = await main(['devnet', '--dir', dir, '--validators', '1', '--no-bots'], io);
    assert.equal(code, 0, err);
    assert.doesNotMatch(err, /DevnetStartFailed/);
    assert.doesNotMatch(err, /--reset/, 'no advice to delete the chain');
    assert.match(out, /devnet: stopped/);
    assert.equal(process.listenerCount('SIGINT'), 0, 'the handler is removed');
  } finally {
    home.remove();
  }
});

test('devnet: a port another process holds is refused before any validator starts, not answered for it', async () => {
  const home = tempDir('zomma-devnet-port-');
  const dir = join(home.dir, 'devnet');
  // Held as an earlier devnet's validator would hold it; the system picks a free one.
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  const { port } = holder.address() as AddressInfo;
  try {
    // The validator's API is base port + 1 (`zomma devnet --help`).
    const basePort = String(port - 1);
    const r = await devnet('--dir', dir, '--validators', '1', '--base-port', basePort, '--no-bots');
    assert.equal(r.code, 1);
    assert.match(
      r.err,
      new RegExp(
        `DevnetStartFailed: validator-0: 127\\.0\\.0\\.1:(${port - 1}|${port}) is already in use`,
      ),
    );
    assert.doesNotMatch(r.err, /exited/, 'no validator was started');
  } finally {
    await new Promise<void>((resolve) => holder.close(() => resolve()));
    home.remove();
  }
});

test('devnet: a validator that exits while the devnet runs makes the run exit 1, naming it', async () => {
  const home = tempDir('zomma-devnet-lost-');
  const dir = join(home.dir, 'devnet');
  // A free port from the system, as base port: the validator's three follow it.
  // Below the ephemeral range, where an outgoing connection could take one of them.
  const port = await freeBase(6, 1);
  let err = '';
  let pid = 0;
  const io: Io = {
    out: (t) => {
      const started = /starting validator-0 \(pid (\d+)\)/.exec(t);
      if (started !== null) pid = Number(started[1]);
      // Up: the validator goes away as a crash would take it.
      if (t === 'devnet is up:') process.kill(pid, 'SIGKILL');
    },
    err: (t) => void (err += `${t}\n`),
  };
  try {
    const argv = ['--dir', dir, '--validators', '1', '--no-bots', '--duration', '1'];
    const code = await main(['devnet', '--base-port', String(port), ...argv], io);
    assert.equal(code, 1, err);
    assert.match(err, /devnet: validator-0 exited while the devnet ran/);
  } finally {
    home.remove();
  }
});

test('devnet: --reset while a devnet runs on the directory refuses, and deletes nothing of the running chain', async () => {
  const home = tempDir('zomma-devnet-running-');
  const dir = join(home.dir, 'devnet');
  try {
    initNetwork({ validators: 1, out: dir, basePort: 35960, genesisTimeMs: 1_700_000_000_000 });
    const genesis = readFileSync(join(dir, 'validator-0', 'genesis.json'), 'utf8');
    // What a running validator of that devnet holds: its home's lock.
    const lock = lockDirectory(join(dir, 'validator-0', 'data'));
    try {
      for (const flags of [['--reset'], ['--validators', '2'], []]) {
        // Bounded all the same, should the refusal be missing.
        const bounded = ['--base-port', '35960', '--duration', '1', '--no-bots'];
        const r = await devnet('--dir', dir, ...flags, ...bounded);
        assert.equal(r.code, 1, flags.join(' '));
        assert.match(r.err, /DevnetStartFailed: validator-0 of .* is running \(pid \d+\)/);
        assert.equal(
          readFileSync(join(dir, 'validator-0', 'genesis.json'), 'utf8'),
          genesis,
          'the running chain is untouched',
        );
      }
    } finally {
      lock.release();
    }
  } finally {
    home.remove();
  }
});

test('devnet: --reset on a directory where a lock holds no pid refuses, and deletes nothing', async () => {
  const home = tempDir('zomma-devnet-unreadable-');
  const dir = join(home.dir, 'devnet');
  try {
    initNetwork({ validators: 1, out: dir, basePort: 35960, genesisTimeMs: 1_700_000_000_000 });
    const genesis = readFileSync(join(dir, 'validator-0', 'genesis.json'), 'utf8');
    const data = join(dir, 'validator-0', 'data');
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, 'LOCK'), 'not a pid\n');
    // Bounded all the same, should the refusal be missing.
    const bounded = ['--base-port', '35960', '--duration', '1', '--no-bots'];
    const r = await devnet('--dir', dir, '--reset', ...bounded);
    assert.equal(r.code, 1, r.err);
    assert.match(
      r.err,
      /DevnetStartFailed: validator-0 of .*: \S+LOCK: the data directory's lock holds "not a pid\\n"/,
    );
    assert.equal(
      readFileSync(join(dir, 'validator-0', 'genesis.json'), 'utf8'),
      genesis,
      'the chain is untouched',
    );
    assert.equal(readFileSync(join(data, 'LOCK'), 'utf8'), 'not a pid\n');
  } finally {
    home.remove();
  }
});

test('devnet: a new chain in a directory holding what no devnet wrote refuses and deletes nothing; nor a file or an empty path', async () => {
  const home = tempDir('zomma-devnet-foreign-');
  try {
    // Bounded all the same, should the refusal be missing.
    const bounded = ['--base-port', '35960', '--duration', '1', '--no-bots'];
    // `--dir .zomma` for `.zomma/devnet`: the trader's key sits there.
    const mine = join(home.dir, '.zomma');
    mkdirSync(join(mine, 'devnet'), { recursive: true });
    writeFileSync(join(mine, 'key.json'), 'the trader key\n');
    for (const flags of [[], ['--reset'], ['--validators', '1']]) {
      const r = await devnet('--dir', mine, ...flags, ...bounded);
      assert.equal(r.code, 2, `${flags.join(' ')}: ${r.err}`);
      assert.match(
        r.err,
        /ConfigInvalid: --dir: \S+ holds devnet, key\.json, which no devnet wrote.*nothing was deleted/,
      );
      assert.equal(readFileSync(join(mine, 'key.json'), 'utf8'), 'the trader key\n');
      assert.equal(existsSync(join(mine, 'devnet')), true, 'the folder is untouched');
    }
    // A folder holding only folders (whose files the earlier check of the homes' locks never met).
    const project = join(home.dir, 'project');
    mkdirSync(join(project, 'src'), { recursive: true });
    writeFileSync(join(project, 'src', 'work.ts'), 'mine\n');
    const onProject = await devnet('--dir', project, ...bounded);
    assert.equal(onProject.code, 2, onProject.err);
    assert.match(onProject.err, /holds src, which no devnet wrote/);
    assert.equal(readFileSync(join(project, 'src', 'work.ts'), 'utf8'), 'mine\n');
    // Beside an earlier chain too: --reset deletes the devnet's own entries only when nothing else is there.
    const dir = join(home.dir, 'devnet');
    initNetwork({ validators: 2, out: dir, basePort: 35960, genesisTimeMs: 1_700_000_000_000 });
    writeFileSync(join(dir, 'notes.txt'), 'mine\n');
    const r = await devnet('--dir', dir, '--reset', ...bounded);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /holds notes\.txt, which no devnet wrote/);
    assert.equal(
      existsSync(join(dir, 'validator-1', 'genesis.json')),
      true,
      'the chain is untouched',
    );
    // A file where the directory goes is no directory to clear.
    const file = join(home.dir, 'file');
    writeFileSync(file, 'mine\n');
    const onFile = await devnet('--dir', file, ...bounded);
    assert.equal(onFile.code, 2, onFile.err);
    assert.match(onFile.err, /ConfigInvalid: --dir: cannot use \S+ \(ENOTDIR\)/);
    assert.equal(readFileSync(file, 'utf8'), 'mine\n');
    const empty = await devnet('--dir', '', ...bounded);
    assert.equal(empty.code, 2, empty.err);
    assert.match(empty.err, /--dir must name a directory/);
  } finally {
    home.remove();
  }
});

test('devnet: a resume runs every validator of the chain, not fewer than a quorum', async () => {
  const home = tempDir('zomma-devnet-count-');
  const dir = join(home.dir, 'devnet');
  // A base port the system had free: the two validators take the six ports from it.
  // Below the ephemeral range, where an outgoing connection could take one of them.
  const port = await freeBase(6, 2);
  try {
    initNetwork({ validators: 2, out: dir, basePort: port, genesisTimeMs: Date.now() });
    const genesis = readFileSync(join(dir, 'validator-0', 'genesis.json'), 'utf8');
    let out = '';
    const io: Io = {
      out: (t) => void (out += `${t}\n`),
      err: () => {},
    };
    // No --validators: the chain's own two (one of two would never commit).
    const code = await main(['devnet', '--dir', dir, '--no-bots', '--duration', '1'], io);
    assert.equal(code, 0, out);
    assert.match(out, /resuming the chain/);
    assert.match(out, /starting validator-1/);
    assert.equal(readFileSync(join(dir, 'validator-0', 'genesis.json'), 'utf8'), genesis);
  } finally {
    home.remove();
  }
});

type Devnet = Awaited<ReturnType<typeof spawnDevnet>>;

/**
 * A devnet of spawnDevnet once it is up, its two validators' pids printed:
 * `body` gets it, the pids and all it printed so far. Afterwards, pass or
 * fail, nothing it started is left running (the devnet, or its group, then
 * its validators by pid) and its home is removed.
 */
async function withDevnetUp(
  prefix: string,
  ownGroup: boolean,
  body: (devnet: Devnet, pids: readonly number[], out: () => string) => Promise<void>,
): Promise<void> {
  const devnet = await spawnDevnet(prefix, ownGroup);
  const { child, printed } = devnet;
  const out = (): string => printed.out + printed.err;
  const pids: number[] = [];
  try {
    const deadline = Date.now() + 60_000;
    while (!out().includes('devnet is up') && Date.now() < deadline && child.exitCode === null) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.match(out(), /devnet is up/, out());
    pids.push(...devnet.pidsPrinted());
    assert.equal(pids.length, 2, out());
    await body(devnet, pids, out);
  } finally {
    if (child.exitCode === null) {
      if (ownGroup) process.kill(-child.pid!, 'SIGKILL');
      else child.kill('SIGKILL');
    }
    for (const pid of pids) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
    devnet.home.remove();
  }
}

/** It exited 0 and said so, and each validator is gone, stopped cleanly: its lock released, its log closed with "stopped". */
async function assertStoppedCleanly(
  { dir, exited }: Devnet,
  pids: readonly number[],
  out: () => string,
): Promise<void> {
  assert.equal(await exited, 0, out());
  assert.match(out(), /devnet: stopped/);
  for (const pid of pids) assert.equal(pidAlive(pid), false, `validator pid ${pid} is gone`);
  for (const i of [0, 1]) {
    assert.equal(existsSync(join(dir, `validator-${i}`, 'data', 'LOCK')), false, `lock ${i}`);
    assert.match(
      readFileSync(join(dir, `validator-${i}`, 'node.log'), 'utf8'),
      /"msg":"stopped"/,
      `validator ${i} stopped cleanly`,
    );
  }
}

test('devnet: SIGINT to the devnet process stops every validator it started, and it exits 0', () =>
  withDevnetUp('zomma-devnet-sigint-', false, async (devnet, pids, out) => {
    // The devnet alone gets it (a terminal's Ctrl-C reaches its validators too).
    devnet.child.kill('SIGINT');
    await assertStoppedCleanly(devnet, pids, out);
  }));

test('devnet: Ctrl-C in a terminal (SIGINT to the whole group) ends with a line of stopped validators, not of ones not answering', () =>
  withDevnetUp('zomma-devnet-group-', true, async (devnet, pids, out) => {
    process.kill(-devnet.child.pid!, 'SIGINT');
    await assertStoppedCleanly(devnet, pids, out);
    const lines = devnet.printed.out.trimEnd().split('\n');
    assert.equal(lines.at(-1), 'devnet: stopped', out());
    const last = lines.at(-2)!;
    // Each validator either still answered or is reported stopped.
    assert.match(
      last,
      /^devnet: validator-0: (h\d+ \(\d peers\)|stopped.*) {2}validator-1: (h\d+ \(\d peers\)|stopped.*)$/,
      out(),
    );
    assert.doesNotMatch(last, /not answering/, out());
  }));

test('devnet: a closed terminal (SIGHUP to the whole group) stops every validator, which take SIGHUP themselves to reopen their logs', () =>
  withDevnetUp('zomma-devnet-hangup-', true, async (devnet, pids, out) => {
    process.kill(-devnet.child.pid!, 'SIGHUP');
    await assertStoppedCleanly(devnet, pids, out);
  }));

test('devnet: a second SIGHUP while it stops does not end it before its validators (which outlive SIGHUP): each stops cleanly, and it exits 0', () =>
  withDevnetUp('zomma-devnet-hangup-twice-', true, async (devnet, pids, out) => {
    const { child, dir } = devnet;
    const reopened = (i: number): boolean =>
      readFileSync(join(dir, `validator-${i}`, 'node.log'), 'utf8').includes(
        '"msg":"log file reopened"',
      );
    const deadline = Date.now() + 60_000;
    process.kill(-child.pid!, 'SIGHUP');
    // The group has it once both validators reopened their logs; then another.
    while (!(reopened(0) && reopened(1)) && Date.now() < deadline && child.exitCode === null) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(reopened(0) && reopened(1), 'both validators took the first SIGHUP');
    if (child.exitCode === null) process.kill(-child.pid!, 'SIGHUP');
    await assertStoppedCleanly(devnet, pids, out);
  }));

test('devnet: its output closed early (`zomma devnet | head`) stops every validator it started, and it exits 0', async () => {
  const { home, dir, child, exited, printed, pidsPrinted } =
    await spawnDevnet('zomma-devnet-epipe-');
  const pids: number[] = [];
  try {
    const deadline = Date.now() + 60_000;
    while (pids.length < 2 && Date.now() < deadline && child.exitCode === null) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      pids.splice(0, pids.length, ...pidsPrinted());
    }
    assert.equal(pids.length, 2, printed.out + printed.err);
    // The reader goes away, as `head` does after its lines: the next line the devnet prints fails.
    child.stdout.destroy();
    assert.equal(await exited, 0, printed.err);
    for (const pid of pids) assert.equal(pidAlive(pid), false, `validator pid ${pid} is gone`);
    for (const i of [0, 1]) {
      assert.equal(existsSync(join(dir, `validator-${i}`, 'data', 'LOCK')), false, `lock ${i}`);
    }
  } finally {
    // On a failure, nothing this test started is left running: the devnet, then its validators by pid.
    if (child.exitCode === null) child.kill('SIGKILL');
    for (const pid of pids) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
    home.remove();
  }
});
