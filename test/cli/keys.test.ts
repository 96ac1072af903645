// `zomma keys` reads the key file with the same flag (and default) as `zomma tx` and `zomma query`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { zomma } from './helpers.ts';
import { tempDir } from '../node/helpers.ts';

test('keys show takes --key-file, as tx and query do, and the older --key', async () => {
  const dir = tempDir('zomma-cli-keys-');
  const file = join(dir.dir, 'key.json');
  try {
    const made = await zomma('keys', 'new', '--out', file, '--json');
    assert.equal(made.code, 0, made.err);
    const { address } = JSON.parse(made.out) as { address: string };
    assert.match(address, /^0x[0-9a-f]{40}$/);
    for (const flag of ['--key-file', '--key']) {
      const shown = await zomma('keys', 'show', flag, file, '--json');
      assert.equal(shown.code, 0, shown.err);
      assert.equal((JSON.parse(shown.out) as { address: string }).address, address);
    }
    const both = await zomma('keys', 'show', '--key-file', file, '--key', file);
    assert.equal(both.code, 2);
    assert.match(both.err, /one of --key-file and --key/);
    // Refused before anything is done, as bad input is: exit 2.
    const again = await zomma('keys', 'new', '--out', file);
    assert.equal(again.code, 2);
    assert.match(again.err, /already exists/);
    const missing = join(dir.dir, 'missing.json');
    const none = await zomma('keys', 'show', '--key-file', missing);
    assert.equal(none.code, 2);
    assert.ok(
      none.err.includes(
        `no key file at ${missing}; create one with: zomma keys new --out ${missing}`,
      ),
    );
    const nowhere = await zomma('keys', 'new', '--out', join(dir.dir, 'no', 'such', 'dir.json'));
    assert.equal(nowhere.code, 2);
    assert.match(nowhere.err, /cannot write the file \(ENOENT\)/);
  } finally {
    dir.remove();
  }
});

test('keys with no or an unknown subcommand says which it got', async () => {
  const none = await zomma('keys');
  assert.equal(none.code, 2);
  assert.match(none.err, /^zomma keys: which subcommand\? new or show\n/);
  const bogus = await zomma('keys', 'list');
  assert.equal(bogus.code, 2);
  assert.match(bogus.err, /^zomma keys: unknown subcommand 'list': new or show\n/);
});

test('a flag of the other subcommand is refused, not ignored (keys show --out FILE showed the default key)', async () => {
  const dir = tempDir('zomma-cli-keys-');
  const file = join(dir.dir, 'key.json');
  try {
    const show = await zomma('keys', 'show', '--out', file);
    assert.equal(show.code, 2);
    assert.match(show.err, /^zomma keys: keys show takes no --out\n/);
    for (const flag of ['--key-file', '--key']) {
      const made = await zomma('keys', 'new', '--out', file, flag, file);
      assert.equal(made.code, 2, made.err);
      assert.ok(made.err.includes(`keys new takes no ${flag}`), made.err);
    }
    assert.deepEqual(readdirSync(dir.dir), [], 'nothing written');
  } finally {
    dir.remove();
  }
});
