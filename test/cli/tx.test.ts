// `zomma tx` against a node's API served over loopback (the in-memory read
// model): a transaction its block refused is shown, hash and code, and exits 1.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zomma } from './helpers.ts';
import { saveKeyFile } from '../../src/crypto/index.ts';
import { PERP, key, makeView, refuseLargeOrders, serve } from '../api/fixtures.ts';

test('a transaction refused in its block prints its hash, status and code (one JSON object with --json), exit 1', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zomma-cli-tx-'));
  const keyFile = join(dir, 'key.json');
  saveKeyFile(keyFile, key(1));
  const server = await serve(makeView({ autoCommit: true, decide: refuseLargeOrders }));
  try {
    const flags = ['--price', '199', '--node', server.url, '--key-file', keyFile];
    const human = await zomma('tx', 'order', PERP, 'buy', '1000', ...flags);
    assert.equal(human.code, 1);
    assert.equal(human.err, '');
    assert.match(human.out, /^tx +[0-9a-f]{64}$/m);
    assert.match(human.out, /^status +rejected$/m);
    assert.match(human.out, /^code +InsufficientMargin$/m);

    const json = await zomma('tx', 'order', PERP, 'buy', '1000', ...flags, '--json');
    assert.equal(json.code, 1);
    assert.equal(json.err, '');
    const view = JSON.parse(json.out) as Record<string, unknown>;
    assert.equal(view.status, 'rejected');
    assert.equal(view.code, 'InsufficientMargin');
    assert.match(String(view.hash), /^[0-9a-f]{64}$/);

    const accepted = await zomma('tx', 'order', PERP, 'buy', '5', ...flags, '--json');
    assert.equal(accepted.code, 0);
    assert.equal((JSON.parse(accepted.out) as Record<string, unknown>).status, 'committed');
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a commit timeout names the transaction to look up, since it may still commit', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zomma-cli-tx-'));
  const keyFile = join(dir, 'key.json');
  saveKeyFile(keyFile, key(1));
  const server = await serve(makeView(), { waitCommitMsMax: 1 });
  try {
    const flags = ['--price', '199', '--node', server.url, '--key-file', keyFile];
    const timedOut = await zomma('tx', 'order', PERP, 'buy', '5', ...flags);
    assert.equal(timedOut.code, 1);
    assert.match(timedOut.err, /^zomma tx: CommitTimeout: .*\(zomma query tx [0-9a-f]{64}\)\n$/);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
