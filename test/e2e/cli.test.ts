// `zomma tx` and `zomma query` against a real node (one validator in this
// process, its API on a free port): what people type, and --json for programs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { zomma } from '../cli/helpers.ts';
import { tempDir } from '../node/helpers.ts';
import { startSoloNode, until } from './helpers.ts';

test('zomma tx and zomma query against a running node', async () => {
  const solo = await startSoloNode();
  const keys = tempDir('zomma-cli-');
  const node = ['--node', solo.apiUrl];
  const alice = ['--key-file', join(keys.dir, 'alice.json')];
  const bob = ['--key-file', join(keys.dir, 'bob.json')];
  try {
    const status = await zomma('query', 'status', ...node, '--json');
    assert.equal(status.code, 0, status.err);
    assert.equal(JSON.parse(status.out).chainId, 'zomma-devnet');
    const people = await zomma('query', 'status', ...node);
    assert.match(people.out, /chain\s+zomma-devnet/);

    const instruments = await zomma('query', 'instruments', ...node);
    assert.match(instruments.out, /BTC-PERPETUAL\s+perpetual\s+0\.1\s/);

    // A key file named on purpose is never created by a faucet: `keys new` makes it.
    const unmade = await zomma('tx', 'faucet', '50000', ...node, ...alice);
    assert.equal(unmade.code, 2);
    assert.match(unmade.err, /no key file at .*alice\.json; create one with: zomma keys new --out/);
    for (const file of [alice, bob]) {
      assert.equal((await zomma('keys', 'new', '--out', file[1]!)).code, 0);
    }
    const faucet = await zomma('tx', 'faucet', '50000', ...node, ...alice, '--json');
    assert.equal(faucet.code, 0, faucet.err);
    const funded = JSON.parse(faucet.out);
    assert.equal(funded.status, 'committed');
    assert.equal((await zomma('tx', 'faucet', '50000', ...node, ...bob)).code, 0);

    let index = 0;
    await until(
      async () => {
        const t = await zomma('query', 'ticker', 'BTC-PERPETUAL', ...node, '--json');
        index = JSON.parse(t.out).indexTicks;
        return index > 0;
      },
      20_000,
      'an index price',
    );
    const sell = await zomma(
      'tx',
      'order',
      'BTC-PERPETUAL',
      'sell',
      '20',
      '--price',
      String(index + 5),
      ...node,
      ...alice,
      '--json',
    );
    assert.equal(sell.code, 0, sell.err);
    const orderId = JSON.parse(sell.out).actions[0].orderId as number;
    const book = await zomma('query', 'book', 'BTC-PERPETUAL', ...node);
    assert.match(book.out, new RegExp(`ask\\s+${index + 5}\\s+20`));

    const buy = await zomma(
      'tx',
      'order',
      'BTC-PERPETUAL',
      'buy',
      '5',
      '--market',
      ...node,
      ...bob,
    );
    assert.equal(buy.code, 0, buy.err);
    assert.match(buy.out, /placeOrder\s+true\s+\d+\s+filled\s+5/);

    const account = await zomma('query', 'account', ...node, ...bob);
    assert.equal(account.code, 0, account.err);
    assert.match(account.out, new RegExp(`BTC-PERPETUAL\\s+5\\s+${index + 5}`));
    const aliceAccount = JSON.parse(
      (await zomma('query', 'account', ...node, ...alice, '--json')).out,
    );
    assert.equal(aliceAccount.subaccounts[0].openOrders[0].remainingLots, 15);

    const cancel = await zomma('tx', 'cancel', 'BTC-PERPETUAL', String(orderId), ...node, ...alice);
    assert.equal(cancel.code, 0, cancel.err);
    const empty = JSON.parse(
      (await zomma('query', 'book', 'BTC-PERPETUAL', ...node, '--json')).out,
    );
    assert.deepEqual(empty.asks, []);

    const withdraw = await zomma(
      'tx',
      'withdraw',
      '100.5',
      'dest-address-1',
      ...node,
      ...alice,
      '--json',
    );
    assert.equal(withdraw.code, 0, withdraw.err);
    const hash = JSON.parse(withdraw.out).hash as string;
    const tx = JSON.parse((await zomma('query', 'tx', hash, ...node, '--json')).out);
    assert.equal(tx.status, 'committed');
    const block = await zomma('query', 'block', String(tx.height), ...node);
    assert.match(block.out, new RegExp(hash));

    // A transfer to another of one's own subaccounts, which then holds it.
    const transfer = await zomma('tx', 'transfer', '250', '3', ...node, ...alice, '--json');
    assert.equal(transfer.code, 0, transfer.err);
    assert.equal(JSON.parse(transfer.out).status, 'committed');
    const third = JSON.parse(
      (await zomma('query', 'account', ...node, ...alice, '--subaccount', '3', '--json')).out,
    );
    assert.equal(third.subaccounts[0].cashQuote, '250000000');
    const same = await zomma('tx', 'transfer', '1', '0', ...node, ...alice);
    assert.equal(same.code, 2, 'to the subaccount it comes from');

    // Refusals: a typed code and exit 1; bad usage exits 2.
    const tooMuch = await zomma('tx', 'withdraw', '999999999', 'dest', ...node, ...alice);
    assert.equal(tooMuch.code, 1);
    assert.match(tooMuch.out, /^status +rejected$/m);
    assert.match(tooMuch.out, /^code +InsufficientFunds$/m);
    const unknown = await zomma('query', 'tx', 'ab'.repeat(32), ...node);
    assert.equal(unknown.code, 1);
    assert.match(unknown.err, /NotFound/);
    assert.equal(
      (await zomma('tx', 'order', 'BTC-PERPETUAL', 'up', '1', ...node, ...alice)).code,
      2,
    );
    assert.equal(
      (await zomma('query', 'account', ...node, '--key-file', join(keys.dir, 'none.json'))).code,
      2,
    );
  } finally {
    await solo.stop();
    keys.remove();
  }
});
