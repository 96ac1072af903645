// Runs every test file under test/, each in its own process (as node's test
// runner would, and with its default concurrency: one file per core but one),
// and prints each file's report when it ends. Arguments narrow the set:
// `npm test -- codec` runs the files whose path contains "codec".
//
// A watchdog stops a file that runs past FILE_DEADLINE_MS (far above the
// slowest file's time on a loaded machine) and runs it once more: a process
// of a file that had finished its work has been seen to sit idle for good on
// an fs request that never completed. A file that passes on the second run is
// reported as such, and one that runs over twice fails the run. The deadline
// is a guard against a stalled run, not a measure of speed.
import { readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';

const FILE_DEADLINE_MS = 10 * 60_000;
const ATTEMPTS = 2;

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...find(path));
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = find('test').filter(
  (f) => filters.length === 0 || filters.some((x) => f.includes(x)),
);
if (files.length === 0) {
  process.stderr.write(`no test files match ${filters.join(' ')}\n`);
  process.exit(1);
}

const reporter = process.stdout.isTTY ? 'spec' : 'tap';
const running = new Set();
const totals = { tests: 0, pass: 0, fail: 0, cancelled: 0, skipped: 0, todo: 0 };
const failedFiles = [];
const rerunFiles = [];

/** Runs one file; resolves to { code, timedOut, output }. */
function runOnce(file) {
  return new Promise((resolve) => {
    // Its own process group, so that the watchdog stops what the file started too.
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', `--test-reporter=${reporter}`, file],
      { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    running.add(child);
    const chunks = [];
    child.stdout.on('data', (b) => chunks.push(b));
    child.stderr.on('data', (b) => chunks.push(b));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child);
    }, FILE_DEADLINE_MS);
    // What the file started and left running (a node it spawned, say) is
    // stopped when it ends: else it lives on after the run, and while it holds
    // the file's output, 'close' waits for it.
    child.on('exit', () => killGroup(child));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code: code ?? signal, timedOut, output: Buffer.concat(chunks).toString('utf8') });
    });
  });
}

function killGroup(child) {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

function count(output) {
  for (const key of Object.keys(totals)) {
    const m = new RegExp(`^(?:# |ℹ )${key} (\\d+)$`, 'm').exec(output);
    if (m !== null) totals[key] += Number(m[1]);
  }
}

async function runFile(file) {
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const { code, timedOut, output } = await runOnce(file);
    process.stdout.write(`\n# ${file}\n${output}`);
    if (!timedOut) {
      count(output);
      if (code !== 0) failedFiles.push(file);
      else if (attempt > 1) rerunFiles.push(file);
      return;
    }
    process.stdout.write(
      `\n# ${file}: stopped after ${FILE_DEADLINE_MS / 1000} s without ending (run ${attempt} of ${ATTEMPTS})\n`,
    );
  }
  failedFiles.push(file);
}

// The files run in process groups of their own, which a terminal's signals do not reach.
for (const [signal, number] of [
  ['SIGHUP', 1],
  ['SIGINT', 2],
  ['SIGTERM', 15],
]) {
  process.on(signal, () => {
    for (const child of running) killGroup(child);
    process.exit(128 + number);
  });
}

const queue = [...files];
const workers = Array.from(
  { length: Math.min(files.length, Math.max(1, availableParallelism() - 1)) },
  async () => {
    for (let file = queue.shift(); file !== undefined; file = queue.shift()) await runFile(file);
  },
);
await Promise.all(workers);

const summary = Object.entries(totals)
  .map(([k, v]) => `${k} ${v}`)
  .join(', ');
process.stdout.write(`\n# ${files.length} files: ${summary}\n`);
if (rerunFiles.length > 0) {
  process.stdout.write(
    `# passed only on a second run (the first ran over): ${rerunFiles.join(', ')}\n`,
  );
}
if (failedFiles.length > 0) {
  process.stdout.write(`# failed: ${failedFiles.join(', ')}\n`);
  process.exit(1);
}
