// `zomma --help`: the list names each command with its own summary.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sourceDigest } from '../../src/node/build_info.ts';
import { EXECUTION_VERSION } from '../../src/exchange/version.ts';
import { PROTOCOL_VERSION } from '../../src/node/transport/version.ts';
import { tempDir } from '../node/helpers.ts';
import { COMMANDS } from '../../src/cli/commands.ts';
import { zomma } from './helpers.ts';

test("each command's line in the help list is the command's own summary", async () => {
  for (const entry of COMMANDS) {
    const command = await entry.load();
    assert.equal(entry.summary, command.summary, entry.name);
    assert.equal(entry.name, command.name);
  }
});

test('zomma --version and zomma version print the version, the source digest and the protocol versions; --json prints one object', async () => {
  const { version } = JSON.parse(
    readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
  ) as { version: string };
  const source = sourceDigest(fileURLToPath(new URL('../../src', import.meta.url)));
  assert.match(source, /^[0-9a-f]{16}$/);
  for (const argv of [['version'], ['--version'], ['-V']]) {
    const r = await zomma(...argv);
    assert.equal(r.code, 0, argv.join(' '));
    assert.equal(
      r.out,
      `zomma ${version} (source ${source}, execution version ${EXECUTION_VERSION}, wire version ${PROTOCOL_VERSION})\n`,
    );
  }
  assert.deepEqual(JSON.parse((await zomma('version', '--json')).out), {
    version,
    source,
    executionVersion: EXECUTION_VERSION,
    wireVersion: PROTOCOL_VERSION,
  });
  const extra = await zomma('version', 'now');
  assert.equal(extra.code, 2);
});

test('the source digest tells two builds of one version apart', () => {
  // docs/operations.md: after a halt, operators compare `zomma version` to know
  // whether they run the same code; between releases the version never changes.
  const tmp = tempDir('zomma-source-');
  try {
    mkdirSync(join(tmp.dir, 'exchange'));
    writeFileSync(join(tmp.dir, 'exchange', 'fees.ts'), 'export const FEE = 1;\n');
    writeFileSync(join(tmp.dir, 'main.ts'), 'export {};\n');
    const before = sourceDigest(tmp.dir);
    assert.equal(sourceDigest(tmp.dir), before, 'the same tree, the same digest');
    writeFileSync(join(tmp.dir, 'exchange', 'fees.ts'), 'export const FEE = 2;\n');
    assert.notEqual(sourceDigest(tmp.dir), before, 'a changed file');
    writeFileSync(join(tmp.dir, 'exchange', 'fees.ts'), 'export const FEE = 1;\n');
    renameSync(join(tmp.dir, 'main.ts'), join(tmp.dir, 'index.ts'));
    assert.notEqual(sourceDigest(tmp.dir), before, 'a renamed file');
    // A tree it cannot read (a file of another user's under src/, say) is no
    // reason for `zomma version`, or a node's start, to fail.
    assert.equal(sourceDigest(join(tmp.dir, 'gone')), 'unknown');
  } finally {
    tmp.remove();
  }
});

test('the help says what each exit status means', async () => {
  const help = await zomma('--help');
  assert.equal(help.code, 0);
  const text = help.out.replace(/\s+/g, ' ');
  assert.match(text, /exit status: 0 done; 1 refused or failed after anything was sent/);
  assert.match(text, /2 a usage error or bad input found before anything is sent/);
  assert.match(text, /3 `zomma node` only: its data directory was replaced while it ran/);
});

test('a bad flag value exits 2 whichever check finds it: the flag parser, a command, or the config checks behind one', async () => {
  const tmp = tempDir('zomma-cli-exit-');
  try {
    // The flag parser (an unknown flag), a command's own check, and init's config checks.
    const unknown = await zomma('greeks', '--nope');
    assert.equal(unknown.code, 2, unknown.err);
    const command = await zomma('tx', 'order', 'BTC-PERPETUAL', 'buy', '0');
    assert.equal(command.code, 2, command.err);
    const config = await zomma('init', '--validators', '0', '--out', join(tmp.dir, 'net'));
    assert.match(config.err, /^zomma init: ConfigInvalid: --validators: /);
    assert.equal(config.code, 2, config.err);
    // A home whose config.json is not JSON: found before the node starts.
    const home = join(tmp.dir, 'home');
    const made = await zomma('init', '--validators', '1', '--out', home);
    assert.equal(made.code, 0, made.err);
    writeFileSync(join(home, 'validator-0', 'config.json'), '{');
    const node = await zomma('node', '--home', join(home, 'validator-0'), '--quiet');
    assert.match(node.err, /ConfigInvalid/);
    assert.equal(node.code, 2, node.err);
  } finally {
    tmp.remove();
  }
});

test("a home whose key.json cannot be read is a config error, exit 2, as a bad config.json's: a validator's or a full node's", async () => {
  const tmp = tempDir('zomma-cli-exit-key-');
  try {
    const made = await zomma('init', '--validators', '1', '--full-nodes', '1', '--out', tmp.dir);
    assert.equal(made.code, 0, made.err);
    // A full node loads its key for its connections only: the same file, the same error.
    for (const name of ['validator-0', 'full-node-0']) {
      const home = join(tmp.dir, name);
      const keyFile = join(home, 'key.json');
      const text = readFileSync(keyFile, 'utf8');
      // Readable by others: the fix is the operator's (chmod), not a restart's.
      chmodSync(keyFile, 0o644);
      const open = await zomma('node', '--home', home, '--quiet');
      assert.match(
        open.err,
        /^zomma node: ConfigInvalid: key\.json: KeyFileTooOpen: .*chmod 600/,
        name,
      );
      assert.equal(open.code, 2, `${name}: ${open.err}`);
      chmodSync(keyFile, 0o600);
      writeFileSync(keyFile, text.slice(0, 10));
      const broken = await zomma('node', '--home', home, '--quiet');
      assert.match(
        broken.err,
        /^zomma node: ConfigInvalid: key\.json: BadKeyFile: .*is not JSON/,
        name,
      );
      assert.equal(broken.code, 2, `${name}: ${broken.err}`);
    }
  } finally {
    tmp.remove();
  }
});

test('an unknown option names the nearest flag of the usage, and a negative number is told to go after --', async () => {
  const cases: [string[], string][] = [
    [
      ['query', 'book', 'BTC-PERPETUAL', '--dept', '3'],
      "Unknown option '--dept' (did you mean --depth?)",
    ],
    [
      ['tx', 'order', 'X', 'buy', '1', '--reduceonly'],
      "Unknown option '--reduceonly' (did you mean --reduce-only?)",
    ],
    [['sim', '--swarn'], "Unknown option '--swarn' (did you mean --swarm?)"],
    // Nothing near: no guess.
    [['devnet', '--home', 'x'], "Unknown option '--home'"],
    [['query', 'status', '-x'], "Unknown option '-x'"],
    [
      ['tx', 'faucet', '-5'],
      "Unknown option '-5': a value that starts with '-' is read as an option; write it last, after '--' (… -- -5)",
    ],
  ];
  for (const [argv, message] of cases) {
    const r = await zomma(...argv);
    assert.equal(r.code, 2, argv.join(' '));
    const [first] = r.err.split('\n');
    assert.equal(first, `zomma ${argv[0]}: ${message}`, argv.join(' '));
    assert.doesNotMatch(r.err, /positional argument/, 'not the advice for positionals');
    assert.match(r.err, /\n\nusage: /);
  }
  // The advice holds: after '--' the value reaches the command's own check.
  const negative = await zomma('tx', 'faucet', '--', '-5');
  assert.equal(negative.code, 2);
  assert.match(negative.err, /DOLLARS must be a positive amount/);
});

test('the nearest flag is one the command takes, and a negative number is named whole', async () => {
  const cases: [string[], string][] = [
    // Flags the usage names but the command does not take: never offered, not even the one typed.
    [['version', '--version'], "Unknown option '--version'"],
    [['tx', 'faucet', '--out', 'x'], "Unknown option '--out'"],
    [['keys', 'show', '--ky'], "Unknown option '--ky'"],
    // parseArgs reads -10 as -1 and -0, and -1.5 as -1, -., -5: the advice names what was typed.
    [
      ['query', 'block', '-10'],
      "Unknown option '-10': a value that starts with '-' is read as an option; write it last, after '--' (… -- -10)",
    ],
    [
      ['query', 'block', '-1.5'],
      "Unknown option '-1.5': a value that starts with '-' is read as an option; write it last, after '--' (… -- -1.5)",
    ],
    // A command that takes no positional argument gets no advice to write one after '--'.
    [['greeks', '-5'], "Unknown option '-5'"],
    // Odd spellings are named as typed, and nothing crashes.
    [['query', 'status', "--it's"], "Unknown option '--it's'"],
    [['query', 'status', '--=x'], "Unknown option '--=x'"],
    [['query', 'status', '--dépth'], "Unknown option '--dépth' (did you mean --depth?)"],
    [['query', 'status', '--\u{1F600}'], "Unknown option '--\u{1F600}'"],
    [
      ['init', '--trust-hieght', '3'],
      "Unknown option '--trust-hieght' (did you mean --trust-height?)",
    ],
  ];
  for (const [argv, message] of cases) {
    const r = await zomma(...argv);
    assert.equal(r.code, 2, argv.join(' '));
    assert.equal(r.err.split('\n')[0], `zomma ${argv[0]}: ${message}`, argv.join(' '));
  }
});
