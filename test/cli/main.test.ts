// `zomma --help`: the list names each command with its own summary.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { COMMANDS } from '../../src/cli/commands.ts';
import { zomma } from './helpers.ts';

test("each command's line in the help list is the command's own summary", async () => {
  for (const entry of COMMANDS) {
    const command = await entry.load();
    assert.equal(entry.summary, command.summary, entry.name);
    assert.equal(entry.name, command.name);
  }
});

test('zomma --version and zomma version print the version; --json prints one object', async () => {
  const { version } = JSON.parse(
    readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
  ) as { version: string };
  for (const argv of [['version'], ['--version'], ['-V']]) {
    const r = await zomma(...argv);
    assert.equal(r.code, 0, argv.join(' '));
    assert.equal(r.out, `zomma ${version}\n`);
  }
  assert.deepEqual(JSON.parse((await zomma('version', '--json')).out), { version });
  const extra = await zomma('version', 'now');
  assert.equal(extra.code, 2);
});

test('the help says what each exit status means', async () => {
  const help = await zomma('--help');
  assert.equal(help.code, 0);
  const text = help.out.replace(/\s+/g, ' ');
  assert.match(text, /exit status: 0 done; 1 refused or failed after anything was sent/);
  assert.match(text, /2 a usage error or bad input found before anything is sent/);
});
