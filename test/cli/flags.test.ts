// `zomma query` and `zomma tx` check every flag's value, whichever subcommand
// it comes with, before they reach a node (here: none listens on port 1).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { zomma } from './helpers.ts';
import { tempDir } from '../node/helpers.ts';

const NOWHERE = ['--node', 'http://127.0.0.1:1'];

test('a bad --depth, --price or --subaccount is a usage error whatever the subcommand', async () => {
  const keys = tempDir('zomma-cli-flags-');
  const key = ['--key-file', join(keys.dir, 'key.json')];
  const cases: [string[], RegExp][] = [
    [['query', 'status', '--depth', 'abc'], /--depth must be an integer/],
    [['query', 'ticker', 'BTC-PERPETUAL', '--depth', '0'], /--depth must be an integer/],
    [['query', 'status', '--subaccount', '256'], /--subaccount must be an integer/],
    [['tx', 'faucet', '100', '--price', 'abc', ...key], /--price must be an integer/],
    [['tx', 'cancel', '--all', '--price', '1.5', ...key], /--price must be an integer/],
    [['tx', 'faucet', '100', '--subaccount', '256', ...key], /--subaccount must be an integer/],
  ];
  try {
    for (const [argv, message] of cases) {
      const r = await zomma(...argv, ...NOWHERE);
      assert.equal(r.code, 2, `${argv.join(' ')}: ${r.err}`);
      assert.match(r.err, message);
    }
  } finally {
    keys.remove();
  }
});
