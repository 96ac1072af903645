import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, saveConfig } from '../../src/node/config.ts';
import type { HaltReport } from '../../src/node/loop.ts';
import { runNode } from '../../src/node/runtime.ts';
import { initSoloHome } from '../e2e/helpers.ts';
import { tempDir, waitFor } from './helpers.ts';

test('a halt whose report cannot be written (disk full, say) still stops the node and tells its runner', async () => {
  const tmp = tempDir('zomma-halt-');
  const home = initSoloHome(tmp.dir, { oracleSeed: 5, snapshotEveryHeights: 0, commitPauseMs: 20 });
  const halts: HaltReport[] = [];
  const running = await runNode({ home, onHalt: (r) => halts.push(r) });
  await logOpened(home);
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
    await logOpened(home2);
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
  await logOpened(home);
  try {
    assert.equal(running.node.app.exchange.options.checkInvariants, true);
  } finally {
    await running.stop();
    tmp.remove();
  }
});

/** The log file opens in the background: a home removed before it does fails the process. */
async function logOpened(home: string): Promise<void> {
  await waitFor(() => existsSync(join(home, 'node.log')), 5_000, 'the log file');
  await new Promise((resolve) => setImmediate(resolve));
}
