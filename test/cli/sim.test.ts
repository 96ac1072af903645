import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import type { Io } from '../../src/cli/io.ts';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (t) => out.push(t), err: (t) => err.push(t) };
  const code = await main(['sim', ...argv], io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

test('one run as JSON: the fields a user scripts against, and a trace hash that replays', async () => {
  const args = [
    '--validators',
    '4',
    '--seed',
    '5',
    '--heights',
    '15',
    '--faults',
    'crash',
    '--json',
  ];
  const r = await run(...args);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as Record<string, unknown>;
  assert.equal(j.seeds_run, 1);
  assert.ok((j.heights_committed as number) >= 15);
  assert.equal(j.safety_violations, 0);
  assert.equal(j.liveness_violations, 0);
  assert.equal(typeof (j.rounds_per_height as Record<string, number>)['1'], 'number');
  const latency = j.commit_latency_ms as { p50: number; p99: number };
  assert.ok(latency.p50 > 0 && latency.p99 >= latency.p50);
  assert.match(j.trace_hash as string, /^[0-9a-f]{64}$/);
  const again = JSON.parse((await run(...args)).out) as Record<string, unknown>;
  assert.equal(again.trace_hash, j.trace_hash);
});

test('a violation exits 1 and prints the command that replays it', async () => {
  const r = await run(
    '--validators',
    '4',
    '--byzantine',
    '2',
    '--behavior',
    'twins',
    '--heights',
    '5',
  );
  assert.equal(r.code, 1);
  assert.match(r.err, /agreement violation/);
  assert.match(
    r.err,
    /replay: zomma sim --validators 4 --seed 1 --heights 5 .*--byzantine 2 --behavior twins/,
  );
});

test('a swarm runs its seeds and reports them', async () => {
  const r = await run('--swarm', '--seeds', '8', '--heights', '5', '--json');
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as Record<string, unknown>;
  assert.equal(j.seeds_run, 8);
  assert.equal(j.safety_violations, 0);
  assert.match(j.trace_hash as string, /^[0-9a-f]{64}$/);
});

test('--timeline draws a height as text and --html as an SVG page', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zomma-sim-'));
  const file = join(dir, 'timeline.html');
  const r = await run('--heights', '4', '--timeline', '2', '--html', file);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^height 2\n +ms n0 +n1 +n2 +n3/);
  assert.match(r.out, /round 0/);
  assert.match(r.out, /PROP r0 [0-9a-f]{6} >/);
  assert.match(r.out, /COMMIT r0/);
  const html = readFileSync(file, 'utf8');
  assert.match(html, /^<!doctype html>/);
  assert.match(html, /<svg [^>]*>/);
  assert.ok((html.match(/<line /g) ?? []).length > 20);
});

test('--latency-report gives each site its finality and window', async () => {
  const r = await run(
    '--latency-report',
    '--topology',
    '4-continents',
    '--heights',
    '60',
    '--json',
  );
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as {
    sites: { site: string; finalityMs: { p50: number; boundP50: number } }[];
  };
  assert.deepEqual(
    j.sites.map((s) => s.site),
    ['virginia', 'frankfurt', 'tokyo', 'sao-paulo'],
  );
  for (const s of j.sites) assert.ok(s.finalityMs.p50 >= s.finalityMs.boundP50);
  const text = await run('--latency-report', '--topology', '4-continents', '--heights', '30');
  assert.match(text.out, /known-not-final/);
});

test('bad options are usage errors', async () => {
  assert.equal((await run('--faults', 'fire')).code, 2);
  assert.equal((await run('--validators', 'x')).code, 2);
  assert.equal((await run('--html', 'f.html')).code, 2);
  const r = await run('--validators', '4', '--byzantine', '9');
  assert.equal(r.code, 1);
  assert.match(r.err, /BadSimConfig/);
});

test('an unwritable --html is a usage error naming the flag, not a stack trace', async () => {
  const r = await run('--heights', '3', '--timeline', '2', '--html', '/nonexistent-dir/t.html');
  assert.equal(r.code, 2);
  assert.match(r.err, /--html \/nonexistent-dir\/t\.html: cannot write the file \(ENOENT\)/);
});

test('options a mode would ignore are refused: a swarm draws its own, one run has no seeds', async () => {
  const swarm = await run('--swarm', '--seeds', '2', '--faults', 'none');
  assert.equal(swarm.code, 2);
  assert.match(swarm.err, /--faults does not apply to --swarm/);
  assert.equal((await run('--swarm', '--seeds', '2', '--validators', '7')).code, 2);
  assert.equal((await run('--heights', '3', '--seeds', '50')).code, 2);
  assert.equal((await run('--heights', '3', '--time-budget', '5')).code, 2);
  assert.equal((await run('--latency-report', '--faults', 'loss')).code, 2);
});

test('a swarm past the height limit, or under 3 heights, is a usage error, not an assertion or a silent 3', async () => {
  for (const heights of ['99999999999', '2']) {
    const r = await run('--swarm', '--seeds', '2', '--heights', heights);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /--heights of a swarm must be 3 to \d+/);
  }
});

test('--behavior without Byzantine validators is a usage error, and a replay line of an honest run names none', async () => {
  const r = await run('--behavior', 'twins', '--heights', '3');
  assert.equal(r.code, 2);
  assert.match(r.err, /--behavior needs --byzantine K of at least 1/);
  const honest = JSON.parse((await run('--heights', '3', '--json')).out) as { replay: string };
  assert.doesNotMatch(honest.replay, /--behavior/);
  assert.match(honest.replay, /--byzantine 0 --txs/);
});

test('beyond f the report says safety is not guaranteed and liveness was not checked', async () => {
  // Two silent validators of four: no quorum, nothing committed, and no
  // liveness owed; "liveness 0" and "p50 0 ms" read as a live, instant chain.
  const silent = await run(
    '--validators',
    '4',
    '--byzantine',
    '2',
    '--behavior',
    'silent',
    '--heights',
    '3',
  );
  assert.equal(silent.code, 0, silent.err);
  assert.match(silent.out, /^violations +safety 0, liveness not checked$/m);
  assert.match(
    silent.out,
    /^beyond f +byzantine 2 > f = 1 of 4 validators: safety is not guaranteed/m,
  );
  assert.match(silent.out, /^rounds per height +none/m);
  assert.match(silent.out, /^commit latency +none/m);
  const j = JSON.parse(
    (
      await run(
        '--validators',
        '4',
        '--byzantine',
        '2',
        '--behavior',
        'silent',
        '--heights',
        '3',
        '--json',
      )
    ).out,
  ) as Record<string, unknown>;
  assert.equal(j.f, 1);
  assert.equal(j.beyond_f, true);
  assert.equal(j.heights_committed, 0);
  assert.deepEqual(j.commit_latency_ms, { p50: null, p99: null });
  // Twins of f + 1 break agreement: reported, with the note before the replay line.
  const twins = await run(
    '--validators',
    '4',
    '--byzantine',
    '2',
    '--behavior',
    'twins',
    '--heights',
    '5',
  );
  assert.equal(twins.code, 1);
  assert.match(twins.err, /safety is not guaranteed[^]*agreement violation[^]*replay: /);
  // Within f nothing changes but the two JSON fields.
  const within = await run('--validators', '4', '--byzantine', '1', '--heights', '5', '--json');
  assert.equal(within.code, 0, within.err);
  const w = JSON.parse(within.out) as Record<string, unknown>;
  assert.equal(w.beyond_f, false);
  assert.equal(w.liveness_violations, 0);
  const text = await run('--validators', '4', '--byzantine', '1', '--heights', '5');
  assert.match(text.out, /^violations +safety 0, liveness 0$/m);
  assert.doesNotMatch(text.out, /beyond f/);
});

test('a swarm whose last seed is past a safe integer is a usage error before any seed runs', async () => {
  const r = await run('--swarm', '--seed', String(Number.MAX_SAFE_INTEGER - 1), '--seeds', '3');
  assert.equal(r.code, 2);
  assert.match(r.err, /--seed: the last seed, --seed \+ --seeds - 1, is too large/);
  const last = await run(
    '--swarm',
    '--seed',
    String(Number.MAX_SAFE_INTEGER - 2),
    '--seeds',
    '3',
    '--heights',
    '3',
    '--json',
  );
  assert.equal(last.code, 0, last.err);
  assert.equal((JSON.parse(last.out) as { seeds_run: number }).seeds_run, 3);
});

test('--timeline with --json puts the height in the JSON instead of dropping it', async () => {
  const r = await run('--heights', '4', '--timeline', '2', '--json');
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as {
    commit_latency_ms: { p50: number };
    timeline: {
      height: number;
      entries: { kind: string; from: number; to: number; round: number; sent_us: number }[];
    };
  };
  assert.equal(j.timeline.height, 2);
  const proposals = j.timeline.entries.filter((e) => e.kind === 'proposal' && e.round === 0);
  const commits = j.timeline.entries.filter((e) => e.kind === 'commit');
  assert.equal(proposals.length, 3, 'one round-0 proposal to each of 3 peers');
  assert.deepEqual(commits.map((e) => e.from).sort(), [0, 1, 2, 3]);
  assert.ok(
    commits.every((e) => e.to === -1 && e.sent_us > proposals[0]!.sent_us),
    'every commit after the proposal',
  );
});
