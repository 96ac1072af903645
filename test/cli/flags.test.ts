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

test('an argument past those a subcommand takes is a usage error, not ignored', async () => {
  const keys = tempDir('zomma-cli-flags-');
  const key = ['--key-file', join(keys.dir, 'key.json')];
  const cases: [string[], string][] = [
    [['query', 'status', 'extra'], 'extra'],
    [['query', 'instruments', 'BTC-PERPETUAL'], 'BTC-PERPETUAL'],
    [['query', 'book', 'BTC-PERPETUAL', '5'], '5'],
    [['query', 'block', '5', '6'], '6'],
    [['query', 'account', '0x' + '11'.repeat(20), '1'], '1'],
    [['tx', 'faucet', '1', '000', ...key], '000'],
    [['tx', 'order', 'BTC-PERPETUAL', 'buy', '10', '500000', ...key], '500000'],
    [['tx', 'cancel', 'BTC-PERPETUAL', '12', '13', ...key], '13'],
    [['tx', 'cancel', 'BTC-PERPETUAL', '12', '--client-id', 'a', ...key], '12'],
    [['tx', 'cancel', '--all', 'BTC-PERPETUAL', 'ETH-PERPETUAL', ...key], 'ETH-PERPETUAL'],
    [['tx', 'withdraw', '5', '0x' + '11'.repeat(20), 'x', ...key], 'x'],
    [['tx', 'transfer', '5', '1', '2', ...key], '2'],
  ];
  try {
    for (const [argv, extra] of cases) {
      const r = await zomma(...argv, ...NOWHERE);
      assert.equal(r.code, 2, `${argv.join(' ')}: ${r.err}`);
      assert.ok(r.err.includes(`unexpected argument '${extra}'`), `${argv.join(' ')}: ${r.err}`);
    }
  } finally {
    keys.remove();
  }
});

test('a count past 2^53 is called too large, not too small', async () => {
  const r = await zomma('query', 'block', '99999999999999999999', ...NOWHERE);
  assert.equal(r.code, 2);
  assert.match(r.err, /HEIGHT must be an integer ≥ 1 and at most 9007199254740991/);
});
