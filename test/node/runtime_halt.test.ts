import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import fs, { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { NodeError } from '../../src/node/errors.ts';
import { loadConfig, loadGenesis, saveConfig, saveGenesis } from '../../src/node/config.ts';
import type { HaltReport } from '../../src/node/loop.ts';
import { LogFile, runNode } from '../../src/node/runtime.ts';
import { initSoloHome, until } from '../e2e/helpers.ts';
import { decode, encode } from '../../src/codec/wire.ts';
import { committedBlockCodec, messageCodec } from '../../src/consensus/codec.ts';
import {
  CATCHUP_SERVE_FLOOR_BYTES,
  CATCHUP_SERVE_LOOKUP_BYTES,
  CATCHUP_SERVE_TOTAL_MIB_PER_S_MIN,
} from '../../src/lib/limits.ts';
import { systemClock } from '../../src/node/clock.ts';
import { tempDir } from './helpers.ts';

test('a halt whose report cannot be written (disk full, say) still stops the node and tells its runner', async () => {
  const tmp = tempDir('zomma-halt-');
  const home = initSoloHome(tmp.dir, { oracleSeed: 5, snapshotEveryHeights: 0, commitPauseMs: 20 });
  const halts: HaltReport[] = [];
  const running = await runNode({ home, onHalt: (r) => halts.push(r) });
  try {
    const report = { code: 'StorageIoFailed', message: 'no space', height: 7, details: {} };
    // The report's file cannot be created: a directory holds its name.
    mkdirSync(join(home, 'halt-7.json'));
    assert.doesNotThrow(() => running.node.loop.halt(report));
    assert.deepEqual(halts, [report]);
    assert.equal(running.node.loop.isRunning, false);
    // A writable home gets its report.
    const second = tempDir('zomma-halt-');
    const home2 = initSoloHome(second.dir, {
      oracleSeed: 5,
      snapshotEveryHeights: 0,
      commitPauseMs: 20,
    });
    const other = await runNode({ home: home2 });
    try {
      other.node.loop.halt(report);
      const path = join(home2, 'halt-7.json');
      assert.ok(existsSync(path));
      assert.equal(JSON.parse(readFileSync(path, 'utf8')).code, 'StorageIoFailed');
    } finally {
      await other.stop();
      second.remove();
    }
  } finally {
    await running.stop();
    tmp.remove();
  }
});

test('config.checkInvariants reaches the exchange (restored from genesis or a snapshot alike)', async () => {
  const tmp = tempDir('zomma-invariants-');
  const home = initSoloHome(tmp.dir, { oracleSeed: 5, snapshotEveryHeights: 0, commitPauseMs: 20 });
  saveConfig(home, { ...loadConfig(home), checkInvariants: true });
  const running = await runNode({ home });
  try {
    assert.equal(running.node.app.exchange.options.checkInvariants, true);
  } finally {
    await running.stop();
    tmp.remove();
  }
});

test('config.catchupServeTotalMiBPerS reaches the replica: a full node past its floor is answered busy once it drew half of that budget', async () => {
  const tmp = tempDir('zomma-catchup-budget-');
  const home = initSoloHome(tmp.dir, { oracleSeed: 5, snapshotEveryHeights: 0, commitPauseMs: 20 });
  saveConfig(home, {
    ...loadConfig(home),
    catchupServeTotalMiBPerS: CATCHUP_SERVE_TOTAL_MIB_PER_S_MIN,
  });
  const running = await runNode({ home });
  try {
    const replica = running.node.loop.replica;
    await until(() => replica.height > 3, 30_000, 'a few blocks to serve');
    // A peer that is no validator, asking again and again within one period.
    const request = encode(messageCodec, { kind: 'blockRequest', fromHeight: 1, count: 64 });
    const nowMs = systemClock.nowMs();
    let drawn = 0;
    let answerMax = 0;
    for (let i = 0; i < 10_000 && replica.metrics.busy === 0; i++) {
      for (const e of replica.onMessage('fullnode', request, nowMs)) {
        if (e.kind !== 'send') continue;
        const m = decode(messageCodec, e.bytes);
        if (m.kind !== 'blockResponse') continue;
        let charge = CATCHUP_SERVE_LOOKUP_BYTES;
        for (const b of m.blocks) {
          charge += CATCHUP_SERVE_LOOKUP_BYTES + encode(committedBlockCodec, b).length;
        }
        drawn += charge;
        answerMax = Math.max(answerMax, charge);
      }
    }
    // With the default budget, full nodes' half is past a peer's own budget:
    // it would be rate-limited, never answered busy.
    assert.equal(replica.metrics.busy, 1, 'answered busy');
    assert.equal(replica.metrics.rateLimited, 0, 'within its own budget');
    const half = (CATCHUP_SERVE_TOTAL_MIB_PER_S_MIN * 1024 * 1024) / 2;
    assert.ok(
      drawn >= CATCHUP_SERVE_FLOOR_BYTES + half &&
        drawn < CATCHUP_SERVE_FLOOR_BYTES + half + 2 * answerMax,
      `drew ${drawn} bytes before the busy answer: its floor and full nodes' half of the configured budget`,
    );
  } finally {
    await running.stop();
    tmp.remove();
  }
});

test('a peer or metrics address in use is ConfigInvalid naming the field, and the home is left free', async () => {
  const tmp = tempDir('zomma-inuse-');
  const home = initSoloHome(tmp.dir, { oracleSeed: 5, snapshotEveryHeights: 0, commitPauseMs: 20 });
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const taken = `127.0.0.1:${(blocker.address() as AddressInfo).port}`;
  const config = loadConfig(home);
  try {
    for (const field of ['listen', 'metrics'] as const) {
      saveConfig(home, { ...config, [field]: taken });
      await assert.rejects(
        runNode({ home }),
        (e: unknown) =>
          e instanceof NodeError &&
          e.code === 'ConfigInvalid' &&
          e.field === `config.${field}` &&
          e.message.includes(taken),
      );
    }
    // Nothing was left holding the home (its lock, its files, its workers).
    saveConfig(home, config);
    const running = await runNode({ home });
    await running.stop();
  } finally {
    blocker.close();
    tmp.remove();
  }
});

test('a listen or metrics host that does not resolve is ConfigInvalid naming the field, not a stack trace', async () => {
  const tmp = tempDir('zomma-nohost-');
  const home = initSoloHome(tmp.dir, { oracleSeed: 5, snapshotEveryHeights: 0, commitPauseMs: 20 });
  const config = loadConfig(home);
  try {
    // .invalid never resolves (RFC 6761): a typo in a host name fails in its look-up.
    for (const field of ['listen', 'metrics', 'api'] as const) {
      saveConfig(home, { ...config, [field]: 'no-such-host.invalid:0' });
      await assert.rejects(
        runNode({ home }),
        (e: unknown) =>
          e instanceof NodeError && e.code === 'ConfigInvalid' && e.field === `config.${field}`,
        field,
      );
    }
    // Nothing was left holding the home.
    saveConfig(home, config);
    const running = await runNode({ home });
    await running.stop();
  } finally {
    tmp.remove();
  }
});

test('a node listens on a bracketed IPv6 address ([::1]:0), and its metrics URL is one', async () => {
  const tmp = tempDir('zomma-ipv6-');
  const home = initSoloHome(tmp.dir, { oracleSeed: 5, snapshotEveryHeights: 0, commitPauseMs: 20 });
  saveConfig(home, { ...loadConfig(home), listen: '[::1]:0', api: '[::1]:0', metrics: '[::1]:0' });
  try {
    const running = await runNode({ home });
    try {
      const metricsUrl = running.metricsUrl!;
      assert.match(metricsUrl, /^http:\/\/\[::1\]:[0-9]+$/);
      const health = await fetch(`${metricsUrl}/health`);
      await health.body?.cancel();
      assert.ok([200, 503].includes(health.status), `metrics answered ${health.status}`);
    } finally {
      await running.stop();
    }
  } finally {
    tmp.remove();
  }
});

test('a restart whose re-execution disagrees with the chain logs why and writes its halt file', async () => {
  const tmp = tempDir('zomma-start-mismatch-');
  const home = initSoloHome(tmp.dir, { oracleSeed: 5, snapshotEveryHeights: 0, commitPauseMs: 20 });
  try {
    const running = await runNode({ home });
    await until(() => running.node.app.height >= 2, 20_000, 'height 2');
    await running.stop();
    // Another genesis than the chain's (compare its sha256 with the other operators').
    const genesis = loadGenesis(home);
    saveGenesis(home, { ...genesis, genesisTimeMs: genesis.genesisTimeMs + 1 });
    await assert.rejects(
      runNode({ home }),
      (e: unknown) => e instanceof NodeError && e.code === 'AppHashMismatch',
    );
    // What docs/operations.md says of a re-execution at start-up that disagrees,
    // in node.log by the time the start is refused.
    assert.match(
      readFileSync(join(home, 'node.log'), 'utf8'),
      /"code":"AppHashMismatch".*"msg":"node failed to start: AppHashMismatch"/,
    );
    const report = JSON.parse(readFileSync(join(home, 'halt-0.json'), 'utf8'));
    assert.equal(report.code, 'AppHashMismatch');
    assert.equal(report.height, 0);
    assert.match(report.details.recordedAppHash, /^[0-9a-f]{64}$/);
    assert.notEqual(report.details.ourAppHash, report.details.recordedAppHash);
  } finally {
    tmp.remove();
  }
});

test('the log is on disk when a stop returns: its last line, logged right before, included', async () => {
  const tmp = tempDir('zomma-log-flush-');
  const home = initSoloHome(tmp.dir, { oracleSeed: 5, snapshotEveryHeights: 0, commitPauseMs: 20 });
  // The test homes log warnings only; 'stopped' is an info line.
  saveConfig(home, { ...loadConfig(home), logLevel: 'info' });
  try {
    const running = await runNode({ home });
    await running.stop();
    const lines = readFileSync(join(home, 'node.log'), 'utf8').trimEnd().split('\n');
    assert.equal(JSON.parse(lines.at(-1)!).msg, 'stopped', lines.at(-1));
  } finally {
    tmp.remove();
  }
});

test(
  'a log file on a full disk fails no start, halt or stop, and blocks nothing',
  { skip: !existsSync('/dev/full') },
  () => {
    // In a process of its own: a log retrying its write for good would block the event loop.
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'log_full.ts')],
      { encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(child.error, undefined, 'the process ended by itself');
    assert.deepEqual(child.stdout.trim().split('\n'), ['started', 'halt returned', 'stopped']);
    assert.equal(child.status, 0, child.stderr);
  },
);

test('the log file writes again once the disk has room, after lines were dropped while it was full', () => {
  const tmp = tempDir('zomma-log-drop-');
  const path = join(tmp.dir, 'node.log');
  const file = new LogFile(path, 1_000);
  const destination = file.destination;
  // The disk full: every write to a file fails with ENOSPC (only the log writes until it is not).
  const writeSync = fs.writeSync;
  let full = true;
  fs.writeSync = ((...args: Parameters<typeof fs.writeSync>) => {
    if (full && typeof args[0] === 'number' && args[0] > 2) {
      throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    }
    return (writeSync as (...a: unknown[]) => number)(...args);
  }) as typeof fs.writeSync;
  try {
    const line = (i: number) =>
      `${JSON.stringify({ msg: `line ${String(i).padStart(4, '0')}` })}\n`;
    let dropped = 0;
    destination.on('drop', () => dropped++);
    for (let i = 0; i < 100; i++) destination.write(line(i));
    assert.ok(dropped > 0, 'lines past the bound were dropped');
    full = false;
    for (let i = 100; i < 130; i++) destination.write(line(i));
    const written = readFileSync(path, 'utf8');
    assert.ok(
      written.endsWith(line(129)),
      `the last line reached the file: ${written.length} bytes`,
    );
  } finally {
    fs.writeSync = writeSync;
    file.close();
    tmp.remove();
  }
});
