// `zomma node` as an operator runs it, in a child process: its data directory
// is replaced with a backup while it runs (rm -rf data && cp -a backup data).
// It stops at its next signature with StorageReplaced, logged at fatal level
// in node.log and said on stderr, writes its halt file, exits with status 3
// (docs/operations.md, "Backups"), and leaves the restored files as they
// were. Loopback ports chosen by the OS; every wait has a deadline.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT_DATA_REPLACED } from '../../src/cli/commands/node.ts';
import { HOME_FILES } from '../../src/node/config.ts';
import { runNode } from '../../src/node/runtime.ts';
import { tempDir } from '../node/helpers.ts';
import { BIN, initSoloHome, until } from './helpers.ts';

/** Every file under `dir` with its bytes, by relative path. */
function filesOf(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out.set(path.slice(dir.length), readFileSync(path).toString('hex'));
  }
  return out;
}

test('a backup restored into a running validator: it exits 3 with StorageReplaced at its next signature and writes nothing into the restored data', async () => {
  const tmp = tempDir('zomma-swap-e2e-');
  const home = initSoloHome(tmp.dir, { oracleSeed: 2, snapshotEveryHeights: 0, commitPauseMs: 20 });
  const data = join(home, HOME_FILES.data);
  const backup = join(tmp.dir, 'backup');
  try {
    // A backup taken as documented: stop the node, copy the directory.
    const first = await runNode({ home });
    await until(() => first.node.app.height >= 2, 30_000, 'a first run commits height 2');
    await first.stop();
    cpSync(data, backup, { recursive: true });
    const blocksBackedUp = statSync(join(backup, 'blocks.log')).size;

    const child = spawn(process.execPath, [BIN, 'node', '--home', home, '--quiet'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => resolve(code)),
    );
    try {
      // Running on the data, and signing: it commits blocks past the backup's.
      await until(
        () => statSync(join(data, 'blocks.log')).size > blocksBackedUp,
        60_000,
        `the node commits blocks (stderr: ${stderr})`,
      );
      rmSync(data, { recursive: true, force: true });
      cpSync(backup, data, { recursive: true });
      let code: number | null | undefined;
      void exited.then((c) => (code = c));
      await until(() => code !== undefined, 30_000, 'the node exits after the swap');
      assert.equal(code, EXIT_DATA_REPLACED, `exit status (stderr: ${stderr})`);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }

    // The WAL, or the lock when the check fell between rm's deletions of the
    // two (LOCK gone, wal.log not yet): either names a replaced directory.
    assert.match(stderr, /zomma node: halted: StorageReplaced: \S+(wal\.log|LOCK): /);
    assert.match(stderr, /double-sign/);
    const lines = readFileSync(join(home, HOME_FILES.log), 'utf8')
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line) as { level: number; msg: string; height?: number });
    const fatal = lines.filter((l) => l.level === 60);
    assert.equal(fatal.length, 1, `one fatal line in node.log (${JSON.stringify(fatal)})`);
    assert.match(fatal[0]!.msg, /^node halted: StorageReplaced: /);
    const haltFile = join(home, `halt-${fatal[0]!.height}.json`);
    assert.ok(existsSync(haltFile), `${haltFile} is written`);
    assert.equal(JSON.parse(readFileSync(haltFile, 'utf8')).code, 'StorageReplaced');
    // Nothing written into the restored directory, no lock left in it.
    assert.deepEqual(filesOf(data), filesOf(backup));
  } finally {
    tmp.remove();
  }
});
