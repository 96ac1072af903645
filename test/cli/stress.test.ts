import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import type { Io } from '../../src/cli/io.ts';

interface Captured {
  code: number;
  out: string;
  err: string;
}

async function run(...argv: string[]): Promise<Captured> {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (t) => out.push(t), err: (t) => err.push(t) };
  const code = await main(['stress', ...argv], io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const dir = mkdtempSync(join(tmpdir(), 'zomma-stress-cli-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const state = join(dir, 'state.snap');

// A short scenario keeps the CLI tests quick; the built-ins run in test/sim/stress.
const short = join(dir, 'short.json');
writeFileSync(
  short,
  JSON.stringify({
    name: 'short-drop',
    description: 'a 30% drop in 30 seconds',
    underlyings: {
      '*': [
        { atS: 0, moveBps: 0 },
        { atS: 30, moveBps: -3000, vol: 2 },
      ],
    },
  }),
);

test('generate writes a snapshot; a scenario file runs on it as a table, JSON and HTML', async () => {
  const g = await run('generate', '--accounts', '200', '--out', state, '--seed', '3');
  assert.equal(g.code, 0, g.err);
  assert.match(
    g.err,
    /generated 200 accounts \(\d+ with positions, .*; [1-9]\d* holding \d+ option lots/,
  );

  const table = await run('--state', state, '--scenario', short);
  assert.equal(table.code, 0, table.err);
  assert.match(table.out, /^scenario +short-drop: a 30% drop in 30 seconds/);
  assert.match(table.out, /BTC path +\$60,000\.00 → \$42,000\.00 \(-30\.00%\)/);
  assert.match(table.out, /accounts liquidated +[1-9]\d* \(/);
  assert.match(table.out, /volatility +scaled \d+ smile\(s\)/);
  assert.match(table.out, /option accounts liquidated +\d+/);
  assert.match(
    table.out,
    /settlement +nothing expired: the nearest expiry was \d+ s after the start/,
  );
  assert.match(table.out, /invariants +checked after every block/);

  const html = join(dir, 'report.html');
  const json = await run('--state', state, '--scenario', short, '--json', '--html', html);
  assert.equal(json.code, 0, json.err);
  const report = JSON.parse(json.out) as {
    scenario: string;
    blocks: number;
    reportHash: string;
    liquidations: { accounts: number; notionalQuote: string };
    series: unknown[];
  };
  assert.equal(report.scenario, 'short-drop');
  assert.equal(report.blocks, 30);
  assert.equal(report.series.length, 30);
  assert.match(report.liquidations.notionalQuote, /^\d+$/);
  assert.ok(table.out.includes(report.reportHash), 'the table and the JSON are the same run');
  const page = readFileSync(html, 'utf8');
  assert.match(page, /^<!doctype html>/);
  assert.equal((page.match(/<svg /g) ?? []).length, 6);
  assert.doesNotMatch(page, /<script|https?:\/\/(?!www\.w3\.org)/);
});

test('--generate with --scenario runs in memory; --list names the built-ins', async () => {
  const r = await run('--generate', '100', '--scenario', short, '--json');
  assert.equal(r.code, 0, r.err);
  assert.equal((JSON.parse(r.out) as { accounts: number }).accounts, 100);
  // Perpetuals only, sampled every 10 s: 3 blocks of the 30-second scenario.
  const p = await run(
    ...['--generate', '100', '--option-share', '0', '--scenario', short, '--block-ms', '10000'],
  );
  assert.equal(p.code, 0, p.err);
  assert.match(p.out, /blocks +3 × 10000 ms/);
  assert.match(p.out, /options +no option market listed/);
  assert.match(p.out, /settlement +no dated market listed/);
  const list = await run('--list');
  assert.match(list.out, /crash-40/);
  assert.match(list.out, /gap-up-25/);
  assert.match(list.out, /oracle-freeze/);
});

test('bad input: typed errors naming the field, usage errors', async () => {
  const bad = join(dir, 'bad.json');
  writeFileSync(
    bad,
    JSON.stringify({ name: 'x', underlyings: { BTC: [{ atS: 0, moveBps: 0, vol: -1 }] } }),
  );
  const r = await run('--state', state, '--scenario', bad);
  assert.equal(r.code, 1);
  assert.match(r.err, /BadScenario: underlyings\.BTC\[0\]\.vol/);
  writeFileSync(bad, '{');
  assert.match(
    (await run('--state', state, '--scenario', bad)).err,
    /BadScenario: scenario: not JSON/,
  );
  assert.equal((await run('--state', state, '--scenario', join(dir, 'missing'))).code, 2);
  // An unreadable --state is a usage error too, as an unreadable --scenario.
  const noState = await run('--state', join(dir, 'missing.snap'), '--scenario', 'crash-40');
  assert.equal(noState.code, 2, noState.err);
  assert.match(noState.err, /--state .*missing\.snap: not a readable file/);
  assert.equal((await run('--scenario', 'crash-40')).code, 2);
  assert.equal((await run('generate', '--accounts', '10')).code, 2);
  const garbage = join(dir, 'garbage.snap');
  writeFileSync(garbage, new Uint8Array([9, 9, 9]));
  const g = await run('--state', garbage, '--scenario', 'crash-40');
  assert.equal(g.code, 1);
  assert.match(g.err, /DecodeError/);
});

test('an unwritable --out or --html is a usage error naming the flag, not a stack trace', async () => {
  const out = await run('generate', '--accounts', '10', '--out', '/nonexistent-dir/s.snap');
  assert.equal(out.code, 2);
  assert.match(out.err, /--out \/nonexistent-dir\/s\.snap: cannot write the file \(ENOENT\)/);
  const html = await run(
    '--state',
    state,
    '--scenario',
    short,
    '--html',
    '/nonexistent-dir/r.html',
  );
  assert.equal(html.code, 2);
  assert.match(html.err, /--html \/nonexistent-dir\/r\.html: cannot write the file/);
});

test('an unwritable --html or --out is refused before anything is generated, written or run', async () => {
  const snap = join(dir, 'before-html.snap');
  const r = await run(
    '--generate',
    '20',
    '--out',
    snap,
    '--scenario',
    short,
    '--html',
    join(dir, 'missing-dir', 'r.html'),
  );
  assert.equal(r.code, 2);
  assert.match(r.err, /--html .*r\.html: cannot write the file \(ENOENT\)/);
  assert.equal(existsSync(snap), false, 'no snapshot was generated and written');
  assert.doesNotMatch(r.out, /generated \d+ accounts/);
  const folder = await run('--generate', '20', '--out', dir);
  assert.equal(folder.code, 2);
  assert.match(folder.err, /--out .*: cannot write the file \(EISDIR\)/);
});

test('a bad scenario or block interval is refused before any state is generated', async () => {
  const r = await run('--generate', '100', '--scenario', 'crash-40', '--block-ms', '0');
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /--block-ms must be an integer in \[1, 3600000\], got 0/);
  assert.doesNotMatch(r.err, /generated \d+ accounts/);
  const missing = await run('--generate', '100', '--scenario', join(dir, 'missing.json'));
  assert.equal(missing.code, 2);
  assert.doesNotMatch(missing.err, /generated \d+ accounts/);
});

test('--accounts belongs to the generate subcommand, --generate to the command', async () => {
  const a = await run('--accounts', '5', '--generate', '5', '--out', join(dir, 'a.snap'));
  assert.equal(a.code, 2);
  assert.match(a.err, /--accounts goes with generate/);
  const g = await run(
    'generate',
    '--generate',
    '5',
    '--accounts',
    '5',
    '--out',
    join(dir, 'a.snap'),
  );
  assert.equal(g.code, 2);
  assert.match(g.err, /generate takes --accounts N/);
});

test('generation options with --state are refused, not ignored', async () => {
  for (const flag of [
    ['--seed', '2'],
    ['--insurance', '5'],
    ['--option-share', '0'],
    ['--out', join(dir, 'o.snap')],
  ]) {
    const r = await run('--state', state, '--scenario', short, ...flag);
    assert.equal(r.code, 2, flag[0]);
    assert.match(r.err, new RegExp(`${flag[0]} goes with --generate N`));
  }
});

test('--list beside a run, a generation or --json is refused, not ignored', async () => {
  for (const extra of [
    ['--json'],
    ['--state', state, '--scenario', 'crash-40'],
    ['--generate', '20', '--out', join(dir, 'list.snap')],
  ]) {
    const r = await run('--list', ...extra);
    assert.equal(r.code, 2, extra.join(' '));
    assert.match(r.err, new RegExp(`--list takes no other option \\(${extra[0]}\\)`));
    assert.equal(r.out, '', 'no table');
  }
  assert.equal((await run('generate', '--list')).code, 2);
});

test('run options with a generation that runs no scenario are refused, not ignored', async () => {
  const html = join(dir, 'never.html');
  const snap = join(dir, 'never.snap');
  for (const flag of [['--html', html], ['--json'], ['--no-check'], ['--block-ms', '5000']]) {
    for (const head of [
      ['--generate', '20'],
      ['generate', '--accounts', '20'],
    ]) {
      const r = await run(...head, '--out', snap, ...flag);
      assert.equal(r.code, 2, `${head[0]} ${flag[0]}`);
      assert.match(r.err, new RegExp(`${flag[0]} goes with --scenario`));
      assert.equal(existsSync(snap), false, 'nothing was generated and written');
    }
  }
  assert.equal(existsSync(html), false, 'no page was written');
});

test('--generate with neither --out nor --scenario is refused before generating', async () => {
  const r = await run('--generate', '100');
  assert.equal(r.code, 2);
  assert.match(r.err, /--generate N needs --out FILE or --scenario/);
  assert.doesNotMatch(r.err, /generated \d+ accounts/);
});

test('every bad flag value is a usage error naming the flag (exit 2), before anything is built', async () => {
  const snap = join(dir, 'bad-flag.snap');
  const cases: [string[], RegExp][] = [
    [['--generate', '1', '--out', snap], /--generate must be an integer in \[2, 200000\], got 1/],
    [['--generate', '200001', '--out', snap], /--generate must be an integer in \[2, 200000\]/],
    [['generate', '--accounts', '1', '--out', snap], /--accounts must be an integer in \[2, /],
    [
      ['--generate', '20', '--out', snap, '--option-share', '101'],
      /--option-share must be .*got 101/,
    ],
    [['--generate', '20', '--out', snap, '--seed=-1'], /--seed must be an integer in \[0, /],
    [['--generate', '20', '--out', snap, '--seed', '1e3'], /--seed must be an integer/],
    [
      ['--generate', '20', '--out', snap, '--insurance', '1'.padEnd(25, '0')],
      /--insurance must be at most/,
    ],
    [
      ['--generate', '20', '--scenario', short, '--block-ms', '3600001'],
      /--block-ms must be .*3600000/,
    ],
    [
      ['--generate', '20', '--scenario', short, '--block-ms', '31000'],
      /--block-ms 31000: longer than the scenario/,
    ],
    [
      ['--generate', '20', '--scenario', 'crash-40', '--block-ms', '1'],
      /--block-ms 1: more than 86400 blocks/,
    ],
  ];
  for (const [args, message] of cases) {
    const r = await run(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, message, args.join(' '));
    assert.doesNotMatch(r.err, /generated \d+ accounts/, 'nothing was generated');
    assert.equal(existsSync(snap), false, 'nothing was written');
  }
});
