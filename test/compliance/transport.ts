// The transport port's compliance suite (STYLE habit 3): every implementation
// of Transport (src/node/transport/types.ts) — TCP, the simulator's network —
// must pass it. Call runTransportCompliance from a .test.ts file with a
// factory that builds n transports which know each other.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PeerId, Transport } from '../../src/node/transport/types.ts';

export interface TransportNetwork {
  /** n started transports, each configured with all the others. */
  readonly transports: Transport[];
  /**
   * Resolves once `condition()` holds, driving whatever clock the
   * implementation runs on; rejects, naming `what`, if it does not within the
   * harness's bound (a wall-clock timeout for real sockets).
   */
  until(condition: () => boolean, what: string): Promise<void>;
  /** Stops every transport. */
  close(): Promise<void>;
}

export type MakeNetwork = (n: number) => Promise<TransportNetwork>;

interface Received {
  readonly from: PeerId;
  readonly bytes: Uint8Array;
}

function collect(t: Transport): Received[] {
  const inbox: Received[] = [];
  t.onMessage((from, bytes) => inbox.push({ from, bytes }));
  return inbox;
}

/**
 * Every peer connected, over one settled connection per pair: when two
 * transports dial each other at once, each may first hold a different
 * connection, and the one the tie-break drops takes what was sent on it. One
 * connection per pair means one side holds it outbound and the other inbound.
 */
function allConnected(net: TransportNetwork): boolean {
  const byId = new Map(net.transports.map((t) => [t.self, t]));
  return net.transports.every((t) =>
    t.peers().every((p) => {
      if (p.state !== 'connected') return false;
      const back = byId
        .get(p.id)
        ?.peers()
        .find((q) => q.id === t.self);
      return back === undefined || (back.state === 'connected' && back.outbound !== p.outbound);
    }),
  );
}

async function withNetwork(
  make: MakeNetwork,
  n: number,
  body: (net: TransportNetwork) => Promise<void>,
) {
  const net = await make(n);
  try {
    await net.until(() => allConnected(net), 'every peer connected');
    await body(net);
  } finally {
    await net.close();
  }
}

function message(i: number, length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, j) => (i * 7 + j * 13) & 0xff);
}

export function runTransportCompliance(name: string, make: MakeNetwork): void {
  test(`${name}: two transports exchange messages both ways, intact, in order, naming the sender`, () =>
    withNetwork(make, 2, async (net) => {
      const [a, b] = net.transports as [Transport, Transport];
      const inboxA = collect(a);
      const inboxB = collect(b);
      assert.deepEqual(
        a.peers().map((p) => p.id),
        [b.self],
      );
      const sizes = [0, 1, 100, 4096, 70_000, 1_000_000, 3];
      sizes.forEach((size, i) => assert.equal(a.send(b.self, message(i, size)), true));
      assert.equal(b.send(a.self, message(99, 10)), true);
      await net.until(() => inboxB.length === sizes.length && inboxA.length === 1, 'delivery');
      assert.deepEqual(
        inboxB.map((m) => m.bytes),
        sizes.map((size, i) => message(i, size)),
      );
      assert.ok(inboxB.every((m) => m.from === a.self));
      assert.deepEqual(inboxA, [{ from: b.self, bytes: message(99, 10) }]);
      const total = sizes.reduce((x, y) => x + y, 0);
      assert.equal(a.counters().framesOut, sizes.length);
      assert.equal(a.counters().bytesOut, total);
      assert.equal(b.counters().framesIn, sizes.length);
      assert.equal(b.counters().bytesIn, total);
    }));

  test(`${name}: the caller may reuse a buffer after send`, () =>
    withNetwork(make, 2, async (net) => {
      const [a, b] = net.transports as [Transport, Transport];
      const inbox = collect(b);
      const buffer = message(1, 64);
      a.send(b.self, buffer);
      buffer.fill(0);
      await net.until(() => inbox.length === 1, 'delivery');
      assert.deepEqual(inbox[0]!.bytes, message(1, 64));
    }));

  test(`${name}: four transports: every broadcast reaches every other transport exactly once`, () =>
    withNetwork(make, 4, async (net) => {
      const inboxes = net.transports.map(collect);
      net.transports.forEach((t, i) => {
        t.broadcast(message(i, 32));
        t.broadcast(message(i + 10, 33));
      });
      await net.until(() => inboxes.every((inbox) => inbox.length === 6), 'every broadcast');
      net.transports.forEach((t, i) => {
        const inbox = inboxes[i]!;
        assert.ok(inbox.every((m) => m.from !== t.self));
        for (const [j, other] of net.transports.entries()) {
          if (j === i) continue;
          const fromOther = inbox.filter((m) => m.from === other.self).map((m) => m.bytes);
          assert.deepEqual(fromOther, [message(j, 32), message(j + 10, 33)]);
        }
      });
    }));

  test(`${name}: a message to a peer that is not connected is dropped and counted`, () =>
    withNetwork(make, 2, async (net) => {
      const [a] = net.transports as [Transport, Transport];
      assert.equal(a.send('00'.repeat(32), message(1, 8)), false);
      assert.equal(a.counters().drops.notConnected, 1);
    }));

  test(`${name}: a stopped transport delivers nothing more and its peers see it go`, () =>
    withNetwork(make, 3, async (net) => {
      const [a, b, c] = net.transports as [Transport, Transport, Transport];
      const inboxA = collect(a);
      await a.stop();
      b.send(a.self, message(1, 8));
      c.broadcast(message(2, 8));
      await net.until(
        () => [b, c].every((t) => t.peers().find((p) => p.id === a.self)!.state !== 'connected'),
        'peers see the stopped transport disconnected',
      );
      assert.deepEqual(inboxA, []);
      assert.equal(b.peers().find((p) => p.id === c.self)!.state, 'connected');
    }));
}
