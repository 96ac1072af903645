import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HaltReport } from '../../src/node/loop.ts';
import { runNode } from '../../src/node/runtime.ts';
import { initSoloHome } from '../e2e/helpers.ts';
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
