// `zomma query` against a node's API served over loopback (the in-memory read
// model), and against none: what a person reads, and what --json gives programs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { main } from '../../src/cli/main.ts';
import type { Io } from '../../src/cli/io.ts';

async function zomma(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (t) => void (out += `${t}\n`), err: (t) => void (err += `${t}\n`) };
  const code = await main(argv, io);
  return { code, out, err };
}

/** A loopback port nothing listens on (just released by the system). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test('a node that cannot be reached is named with the system reason, not "fetch failed"', async () => {
  const port = await closedPort();
  const refused = await zomma('query', 'status', '--node', `http://127.0.0.1:${port}`);
  assert.equal(refused.code, 1);
  assert.equal(
    refused.err,
    `zomma query: NodeUnreachable: cannot reach http://127.0.0.1:${port} ` +
      `(connect ECONNREFUSED 127.0.0.1:${port}); is the node running?\n`,
  );
  // A port fetch will not use at all (the Fetch standard's blocked ports).
  const blocked = await zomma('query', 'status', '--node', 'http://127.0.0.1:1');
  assert.match(blocked.err, /cannot reach http:\/\/127\.0\.0\.1:1 \(bad port\)/);
  assert.doesNotMatch(blocked.err + refused.err, /fetch failed/);
});
