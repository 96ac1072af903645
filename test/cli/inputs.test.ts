// What an operator or trader types at `zomma`, at random and at the edges:
// every refusal is one message with a non-zero exit (no stack trace, no
// TypeError text), and a refused command leaves the directory it was pointed
// at as it found it. Seeded, so a failure reproduces.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { zomma } from './helpers.ts';
import { tempDir } from '../node/helpers.ts';
import { loadConfig, loadGenesis, validateConfig } from '../../src/node/config.ts';
import { NodeError } from '../../src/node/errors.ts';
import { initNetwork } from '../../src/node/init.ts';
import { loadKeyFile } from '../../src/crypto/index.ts';
import { toHex } from '../../src/lib/bytes.ts';
import { freeBase } from '../e2e/helpers.ts';

const NOWHERE = 'http://127.0.0.1:1';

/** Values a flag should never take quietly, and some it should. */
const flagValue = fc.oneof(
  fc.constantFrom(
    '',
    '-1',
    '0',
    '1',
    '2',
    '1.5',
    'NaN',
    'Infinity',
    '-Infinity',
    '1e3',
    '0x10',
    ' 5',
    '99999999999999999999',
    '--json',
    '=',
    'ü',
    '2026-02-31',
    '__proto__',
    'x'.repeat(5000),
    '@',
    '@/missing/x',
    '@/file',
    '@/empty',
  ),
  fc.string({ maxLength: 12 }),
  fc.integer().map(String),
);

type Case = { command: string[]; flags: readonly string[] };

const CASES: Case[] = [
  {
    command: ['init', '--validators', '1', '--out', '@/out'],
    flags: ['validators', 'full-nodes', 'hosts', 'out', 'chain-id', 'base-port', 'oracle-seed'],
  },
  {
    command: ['init', '--add-full-node', '--network', '@/out'],
    flags: ['network', 'host', 'base-port', 'trust-height', 'trust-hash', 'out', 'validators'],
  },
  { command: ['keys', 'new', '--out', '@/k.json'], flags: ['out', 'key-file'] },
  { command: ['keys', 'show', '--key-file', '@/file'], flags: ['key-file', 'key'] },
  {
    command: ['greeks', '--spot', '60000', '--strike', '60000', '--expiry', '0.25', '--vol', '0.8'],
    flags: ['spot', 'strike', 'expiry', 'vol', 'price', 'rate', 'now'],
  },
  {
    command: ['tx', 'faucet', '100', '--node', NOWHERE, '--key-file', '@/file'],
    flags: ['subaccount', 'price', 'client-id', 'key-file', 'node'],
  },
  { command: ['query', 'status', '--node', NOWHERE], flags: ['depth', 'subaccount', 'node'] },
  { command: ['node', '--home', '@/out'], flags: ['home', 'halt-height'] },
];

function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, prefix: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      out.push(`${prefix}${e.name}`);
      if (e.isDirectory()) walk(join(d, e.name), `${prefix}${e.name}/`);
    }
  };
  walk(dir, '');
  return out.sort();
}

test('random and boundary flag values: one clear message, and nothing written when refused', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...CASES),
      fc.array(fc.tuple(fc.nat(), flagValue, fc.boolean()), { minLength: 1, maxLength: 3 }),
      async ({ command, flags }, picks) => {
        const tmp = tempDir('zomma-cli-inputs-');
        const cwd = process.cwd();
        // A relative path a command takes is written here, not into the repository.
        process.chdir(tmp.dir);
        try {
          writeFileSync(join(tmp.dir, 'file'), 'not json');
          mkdirSync(join(tmp.dir, 'empty'));
          const at = (s: string) => (s.startsWith('@') ? tmp.dir + s.slice(1) : s);
          const argv = command.map(at);
          for (const [i, value, joined] of picks) {
            const flag = `--${flags[i % flags.length]}`;
            // Joined: the value may start with '-'; apart: as most people type it.
            if (joined) argv.push(`${flag}=${at(value)}`);
            else argv.push(flag, at(value));
          }
          const before = listing(tmp.dir);
          const r = await zomma(...argv);
          const what = `${argv.map((a) => a.slice(0, 60)).join(' ')}: ${r.err.slice(0, 400)}`;
          assert.ok(!/\n\s+at |TypeError|ReferenceError/.test(r.err), `a stack trace: ${what}`);
          if (r.code !== 0) {
            assert.ok(r.err.trim().length > 0, `refused without a word: ${what}`);
            assert.match(r.err, /^zomma [a-z]+: /, what);
            assert.deepEqual(listing(tmp.dir), before, `refused, yet wrote: ${what}`);
          }
        } finally {
          process.chdir(cwd);
          tmp.remove();
        }
      },
    ),
    { seed: 20_261_126, numRuns: 150 },
  );
});

test('init into a path it cannot write is a ConfigInvalid naming --out, not a stack trace', async () => {
  const tmp = tempDir('zomma-cli-inputs-');
  try {
    const file = join(tmp.dir, 'file');
    writeFileSync(file, 'x');
    const r = await zomma('init', '--validators', '2', '--out', file);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /^zomma init: ConfigInvalid: --out: cannot write .*ENOTDIR/);
    assert.equal(readFileSync(file, 'utf8'), 'x');
    // A file where a home goes is not a home to write into.
    mkdirSync(join(tmp.dir, 'net'));
    writeFileSync(join(tmp.dir, 'net', 'validator-1'), 'x');
    const busy = await zomma('init', '--validators', '2', '--out', join(tmp.dir, 'net'));
    assert.equal(busy.code, 2, busy.err);
    assert.match(busy.err, /--out: .*validator-1 already exists/);
    assert.deepEqual(readdirSync(join(tmp.dir, 'net')), ['validator-1']);
  } finally {
    tmp.remove();
  }
});

test('init that fails part way through removes the homes it wrote', async () => {
  const tmp = tempDir('zomma-cli-inputs-');
  try {
    // Paths under validator-10 are one character longer than under
    // validator-9: an --out this long lets ten homes be written and the
    // eleventh fail (PATH_MAX, 4096 with its NUL; its key's temporary file,
    // "/validator-10/.key.json.<12 hex>.tmp", is the longest path of a home).
    let out = tmp.dir;
    while (out.length < 4056 - 201) out = join(out, 'd'.repeat(200));
    out = join(out, 'e'.repeat(4056 - out.length - 1));
    assert.equal(out.length, 4056, 'the --out length the test needs');
    const r = await zomma('init', '--validators', '11', '--out', out);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /ConfigInvalid: --out: cannot write .*ENAMETOOLONG.*nothing was written/);
    assert.deepEqual(readdirSync(out), [], 'no half-written network is left');
  } finally {
    tmp.remove();
  }
});

test('init refuses the flags of the other form instead of dropping them', async () => {
  const tmp = tempDir('zomma-cli-inputs-');
  try {
    const out = join(tmp.dir, 'net');
    const cases: [string[], RegExp][] = [
      [
        ['--validators', '1', '--out', out, '--host', '10.0.0.9'],
        /--host goes with --add-full-node/,
      ],
      [['--validators', '1', '--out', out, '--network', out], /--network goes with/],
      [['--validators', '1', '--out', out, '--no-state-sync'], /--no-state-sync goes with/],
      [['--validators', '1', '--out', ''], /--out must name a directory/],
      [['--add-full-node', '--network', out, '--hosts', 'a,b'], /--hosts is for a new network/],
      [['--add-full-node', '--network', out, '--out', out], /--out is for a new network/],
      [['--add-full-node', '--network', out, '--chain-id', 'x'], /--chain-id is for a new/],
      [['--add-full-node', '--network', out, '--oracle-seed', '1'], /--oracle-seed is for a new/],
      [['--add-full-node', '--network', out, '--no-faucet'], /--no-faucet is for a new/],
    ];
    for (const [argv, message] of cases) {
      const r = await zomma('init', ...argv);
      assert.equal(r.code, 2, `${argv.join(' ')}: ${r.err}`);
      assert.match(r.err, message);
    }
    assert.equal(existsSync(out), false, 'nothing written');
  } finally {
    tmp.remove();
  }
});

test('init --no-faucet writes a genesis without the devnet faucet; without it the faucet stays', async () => {
  const tmp = tempDir('zomma-cli-inputs-');
  try {
    const off = await zomma(
      'init',
      '--validators',
      '1',
      '--no-faucet',
      '--out',
      join(tmp.dir, 'a'),
    );
    assert.equal(off.code, 0, off.err);
    assert.match(off.out, /no faucet: validators credit deposits with zomma tx deposit/);
    const noFaucet = loadGenesis(join(tmp.dir, 'a', 'validator-0'));
    assert.equal(noFaucet.devnet, false);
    assert.equal(noFaucet.faucetQuoteMax, 0n);
    const on = await zomma('init', '--validators', '1', '--out', join(tmp.dir, 'b'));
    assert.equal(on.code, 0, on.err);
    assert.equal(loadGenesis(join(tmp.dir, 'b', 'validator-0')).devnet, true);
  } finally {
    tmp.remove();
  }
});

test('greeks: --now is checked even when the expiry is in years; a day a month lacks is refused', async () => {
  const base = ['greeks', '--spot', '100', '--strike', '100', '--vol', '0.2'];
  const cases: [string[], RegExp][] = [
    [['--expiry', '0.25', '--now', 'abc'], /--now: not a valid time: 'abc'/],
    [['--expiry', '0.25', '--now', '1'], /--now: not a valid time: '1'/],
    [['--expiry', '2026-02-31', '--now', '2026-01-01T00:00:00Z'], /--expiry: no such day/],
    [['--expiry', '2026-12-27', '--now', '2026-02-30T00:00:00Z'], /--now: no such day/],
  ];
  for (const [argv, message] of cases) {
    const r = await zomma(...base, ...argv);
    assert.equal(r.code, 2, `${argv.join(' ')}: ${r.err}`);
    assert.match(r.err, message);
  }
  const ok = await zomma(...base, '--expiry', '2028-02-29', '--now', '2028-02-28T08:00:00Z');
  assert.equal(ok.code, 0, ok.err);
  // A date alone is its midnight UTC: the same answer as written out in full.
  const dated = await zomma(...base, '--expiry', '2028-02-29', '--now', '2028-02-28', '--json');
  const full = await zomma(
    ...base,
    '--expiry',
    '2028-02-29',
    '--now',
    '2028-02-28T00:00:00Z',
    '--json',
  );
  assert.equal(dated.code, 0, dated.err);
  assert.equal(dated.out, full.out);
  assert.equal((await zomma(...base, '--expiry', '0.25', '--now', '2028-02-30')).code, 2);
});

test('add-full-node that cannot write its home leaves the network as it was', async () => {
  const tmp = tempDir('zomma-cli-inputs-');
  try {
    initNetwork({
      validators: 2,
      out: tmp.dir,
      basePort: 44_000,
      genesisTimeMs: 1_700_000_000_000,
    });
    const configs = ['validator-0', 'validator-1'].map((v) =>
      readFileSync(join(tmp.dir, v, 'config.json'), 'utf8'),
    );
    // A link to nowhere where the new home goes: its directory cannot be made.
    symlinkSync(join(tmp.dir, 'missing', 'x'), join(tmp.dir, 'full-node-0'));
    const r = await zomma('init', '--add-full-node', '--network', tmp.dir);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /ConfigInvalid: --network: cannot write .*nothing was written/);
    ['validator-0', 'validator-1'].forEach((v, i) =>
      assert.equal(readFileSync(join(tmp.dir, v, 'config.json'), 'utf8'), configs[i]),
    );
    assert.deepEqual(readdirSync(tmp.dir).sort(), ['full-node-0', 'validator-0', 'validator-1']);
  } finally {
    tmp.remove();
  }
});

test('add-full-node whose second validator config cannot be written puts back the first, and only it', async () => {
  const tmp = tempDir('zomma-cli-inputs-');
  try {
    initNetwork({
      validators: 3,
      out: tmp.dir,
      basePort: 44_100,
      genesisTimeMs: 1_700_000_000_000,
    });
    const names = ['validator-0', 'validator-1', 'validator-2'];
    const configs = names.map((v) => readFileSync(join(tmp.dir, v, 'config.json'), 'utf8'));
    // validator-1's temporary file cannot be written (a directory holds its name).
    mkdirSync(join(tmp.dir, 'validator-1', 'config.json.tmp'));
    const r = await zomma('init', '--add-full-node', '--network', tmp.dir);
    assert.equal(r.code, 2, r.err);
    names.forEach((v, i) =>
      assert.equal(readFileSync(join(tmp.dir, v, 'config.json'), 'utf8'), configs[i], v),
    );
    // No temporary file left behind where the write did succeed and was undone.
    assert.ok(!existsSync(join(tmp.dir, 'validator-0', 'config.json.tmp')), 'no leftover');
    assert.ok(!existsSync(join(tmp.dir, 'full-node-0')), 'the new home is removed');
  } finally {
    tmp.remove();
  }
});

test('config.json: a misspelt field of a peer or of the timeouts is refused, not ignored', () => {
  const tmp = tempDir('zomma-cli-inputs-');
  try {
    initNetwork({
      validators: 2,
      out: tmp.dir,
      basePort: 45_000,
      genesisTimeMs: 1_700_000_000_000,
    });
    const config = loadConfig(join(tmp.dir, 'validator-0'));
    const peer = config.peers[0]!;
    const timeouts = { proposeMs: 1, prevoteMs: 1, precommitMs: 1, deltaMs: 1, maxMs: 9 };
    const refused = (raw: unknown, field: string): void =>
      assert.throws(
        () => validateConfig(raw),
        (e: unknown) => e instanceof NodeError && e.field === field,
        field,
      );
    refused(
      { ...config, peers: [{ publicKey: peer.publicKey, adress: peer.address }] },
      'config.peers[0].adress',
    );
    refused({ ...config, timeouts: { ...timeouts, gossipMS: 5 } }, 'config.timeouts.gossipMS');
    assert.equal(validateConfig({ ...config, timeouts }).timeouts?.maxMs, 9);
  } finally {
    tmp.remove();
  }
});

test("config.json: a peer's key listed twice, or this node's own key among its peers, is refused naming the entry", async () => {
  const tmp = tempDir('zomma-cli-inputs-');
  try {
    initNetwork({
      validators: 3,
      out: tmp.dir,
      basePort: await freeBase(9),
      genesisTimeMs: 1_700_000_000_000,
    });
    const home = join(tmp.dir, 'validator-0');
    const config = loadConfig(home);
    const [first, second] = config.peers;
    // A node moved to another address and added again rather than edited.
    assert.throws(
      () =>
        validateConfig({
          ...config,
          peers: [first, second, { publicKey: first!.publicKey, address: '127.0.0.9:1' }],
        }),
      (e: unknown) =>
        e instanceof NodeError &&
        e.field === 'config.peers[2].publicKey' &&
        /config\.peers\[0\]/.test(e.message),
    );
    // Its own key pasted for the second peer's: refused before the node opens anything.
    const own = loadKeyFile(join(home, 'key.json'));
    const peers = [first, { publicKey: toHex(own.publicKey), address: second!.address }];
    writeFileSync(join(home, 'config.json'), JSON.stringify({ ...config, peers }));
    const r = await zomma('node', '--home', home, '--quiet');
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /ConfigInvalid: config\.peers\[1\]\.publicKey: is this node's own key/);
    assert.ok(
      !existsSync(join(home, 'data', 'LOCK')),
      'refused before the data directory is taken',
    );
  } finally {
    tmp.remove();
  }
});

test('zomma node --halt-height: an integer height of at least 1, refused with exit 2 before the home is read', async () => {
  const tmp = tempDir('zomma-cli-inputs-');
  const missing = join(tmp.dir, 'no-home');
  try {
    for (const value of ['0', '-1', '1.5', '1e3', '0x10', ' 5', '', 'x', '99999999999999999999']) {
      const r = await zomma('node', '--home', missing, `--halt-height=${value}`);
      assert.equal(r.code, 2, `${JSON.stringify(value)}: ${r.err}`);
      assert.match(r.err, /^zomma node: --halt-height must be a height: an integer of at least 1/);
    }
    // A good one gets as far as the home (missing here).
    const r = await zomma('node', '--home', missing, '--halt-height', '12');
    assert.equal(r.code, 2, r.err);
    assert.match(
      r.err,
      /ConfigInvalid: config\.json: .*config\.json does not exist: is --home a node.s home\? `zomma init` writes one/,
    );
  } finally {
    tmp.remove();
  }
});

test('config.json: a port is digits, not whatever Number() reads', () => {
  const tmp = tempDir('zomma-cli-inputs-');
  try {
    initNetwork({
      validators: 1,
      out: tmp.dir,
      basePort: 46_000,
      genesisTimeMs: 1_700_000_000_000,
    });
    const config = loadConfig(join(tmp.dir, 'validator-0'));
    for (const api of [
      '127.0.0.1:',
      '127.0.0.1:0x50',
      '127.0.0.1:1e3',
      '127.0.0.1: 80',
      '127.0.0.1:65536',
    ]) {
      assert.throws(
        () => validateConfig({ ...config, api }),
        (e: unknown) => e instanceof NodeError && e.field === 'config.api',
        api,
      );
    }
    assert.equal(validateConfig({ ...config, api: '127.0.0.1:0' }).api, '127.0.0.1:0');
  } finally {
    tmp.remove();
  }
});
