// scripts/test.js, run over test files written for it into a directory of
// their own (the runner finds the files under ./test).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const RUNNER = resolve('scripts/test.js');

/** Whether the process is gone (or a zombie: it has ended, and no one reaped it yet). */
function ended(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return true;
  // The state follows the command's closing parenthesis.
  const text = readFileSync(stat, 'utf8');
  return text.slice(text.lastIndexOf(')') + 2).startsWith('Z');
}

function runIn(files: Record<string, string>): {
  status: number | null;
  stdout: string;
  dir: string;
} {
  const dir = mkdtempSync(join(tmpdir(), 'zomma-runner-'));
  symlinkSync(resolve('node_modules'), join(dir, 'node_modules'));
  mkdirSync(join(dir, 'test'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, 'test', name), text);
  const r = spawnSync(process.execPath, [RUNNER], { cwd: dir, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, dir };
}

test(
  'the runner stops what a test file started and left running when the file ends',
  {
    skip: process.platform !== 'linux' && 'reads /proc',
  },
  () => {
    const fixture = `
import { test } from 'node:test';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
test('leaves a process behind', () => {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  writeFileSync('leftover.pid', String(child.pid));
  child.unref();
});
`;
    const { status, stdout, dir } = runIn({ 'leftover.test.ts': fixture });
    let pid = 0;
    try {
      assert.equal(status, 0, stdout);
      assert.match(stdout, /# 1 files: tests 1, pass 1, fail 0/);
      pid = Number(readFileSync(join(dir, 'leftover.pid'), 'utf8'));
      assert.ok(pid > 0, 'the file wrote its child pid');
      assert.ok(ended(pid), `the process the file left (pid ${pid}) was stopped with it`);
    } finally {
      if (pid > 0 && !ended(pid)) process.kill(pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('the runner fails the run for a failing file, and prints its report and the totals', () => {
  const pass = `import { test } from 'node:test';\ntest('passes', () => {});\n`;
  const fail = `import { test } from 'node:test';\nimport assert from 'node:assert/strict';\ntest('fails', () => assert.equal(1, 2, 'one is not two'));\n`;
  const { status, stdout, dir } = runIn({ 'a.test.ts': pass, 'b.test.ts': fail });
  try {
    assert.equal(status, 1, stdout);
    assert.match(stdout, /one is not two/, "the failing file's report is printed");
    assert.match(stdout, /# 2 files: tests 2, pass 1, fail 1/);
    assert.match(stdout, /# failed: test\/b\.test\.ts/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
