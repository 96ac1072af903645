// A dial whose SYNs go unanswered (a powered-off host, a firewall that drops)
// would wait for the kernel's connect timeout, about two minutes on Linux,
// far past the reconnect backoff's cap: the peer, back meanwhile, would stay
// unreached that long. A dial is abandoned after the handshake timeout.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import type { TcpTransport } from '../../../src/node/transport/index.ts';
import { TEST_LIMITS, keyOf, makeTransport, until } from './helpers.ts';

/**
 * A loopback port whose SYNs are dropped: a child process listens with a
 * backlog of one and never accepts (its thread spins), and two connections
 * fill the accept queue.
 */
async function blackhole(): Promise<{ port: number; close: () => void }> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const s = require('node:net').createServer();
       s.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
         process.stdout.write(s.address().port + '\\n');
         const end = Date.now() + 30000;
         while (Date.now() < end) {}
       });`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve) =>
    child.stdout.once('data', (d: Buffer) => resolve(Number(String(d).trim()))),
  );
  const fillers: Socket[] = [];
  for (let i = 0; i < 2; i++) {
    const s = connect({ host: '127.0.0.1', port });
    s.on('error', () => {});
    await new Promise((resolve) => s.once('connect', resolve));
    fillers.push(s);
  }
  return {
    port,
    close: () => {
      for (const s of fillers) s.destroy();
      child.kill('SIGKILL');
    },
  };
}

test('a dial that gets no answer is abandoned and the peer is dialed again where it listens', async () => {
  const hole = await blackhole();
  const keys = [keyOf(0), keyOf(1)];
  const limits = { ...TEST_LIMITS, handshakeTimeoutMs: 300 };
  const [a, b] = [makeTransport(0, keys, limits), makeTransport(1, keys, limits)].sort((x, y) =>
    x.self < y.self ? -1 : 1,
  ) as [TcpTransport, TcpTransport];
  try {
    await Promise.all([a.start(), b.start()]);
    // Only a knows an address of b: the blackhole first, dialed at once (a has the lower id).
    a.setPeerAddress(b.self, '127.0.0.1', hole.port);
    a.setPeerAddress(b.self, '127.0.0.1', b.address().port);
    await until(() => a.peers()[0]!.state === 'connected', 'a connected to b');
    assert.equal(b.peers()[0]!.state, 'connected');
  } finally {
    await Promise.all([a.stop(), b.stop()]);
    hole.close();
  }
});
