// One client (or one address) trying to cost the node or other clients more
// than its share: repeated resumes over the buffered blocks, commit waiters
// held by one address, forwarded-for headers and IPv6 addresses that would
// give a client fresh rate-limit buckets at will.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BlockUpdate } from '../../src/api/view.ts';
import type { WsMessage } from '../../src/api/ws.ts';
import { toHex } from '../../src/lib/bytes.ts';
import { PERP, RawClient, Signal, makeView, order, serve } from './fixtures.ts';

test('resume: a buffered block is scanned once, however many times clients resume over it', async () => {
  const view = makeView();
  // Every update the hub keeps counts the reads of its trades and accounts.
  let scans = 0;
  const subscribe = view.subscribe.bind(view);
  view.subscribe = (listener: (u: BlockUpdate) => void) =>
    subscribe((u) => {
      const counted = { ...u };
      Object.defineProperties(counted, {
        trades: { enumerable: true, get: () => (scans++, u.trades) },
        accounts: { enumerable: true, get: () => (scans++, u.accounts) },
      });
      listener(counted);
    });
  const server = await serve(view, {
    resumeBlocksMax: 16,
    messagesPerS: 1000,
    burstMessages: 1000,
  });
  const client = new RawClient(server.url);
  try {
    const blocks = 10;
    for (let b = 0; b < blocks; b++) {
      view.addTrade(PERP, 200 + b, 1, 'buy');
      view.commit();
    }
    await client.opened();
    const resumes = 20;
    const address = '0x' + '22'.repeat(20);
    for (let i = 0; i < resumes; i++) {
      // From 0: older than the buffer, so every one is answered with a snapshot.
      for (const channel of [`trades:${PERP}`, `account:${address}`]) {
        client.send({ op: 'subscribe', channel, fromSeq: i % 2 === 0 ? 0 : 1 });
        client.send({ op: 'unsubscribe', channel });
      }
    }
    const isUnsubscribed = (m: WsMessage) => m.type === 'unsubscribed';
    await client.nth(isUnsubscribed, 2 * resumes - 1);
    // Each kind of each block at most once (the count was 2 × resumes × blocks).
    assert.ok(scans <= 2 * blocks, `${scans} scans of ${blocks} blocks`);
  } finally {
    client.close();
    await server.close();
  }
});

test('wait=commit: one address holds at most its share of the commit waiters', async () => {
  const view = makeView();
  const server = await serve(view, { commitWaitersMax: 10, commitWaitersPerIpMax: 2 });
  const submitted = new Signal();
  let submissions = 0;
  const submit = view.submit.bind(view);
  view.submit = async (bytes) => {
    const result = await submit(bytes);
    submissions++;
    submitted.notify();
    return result;
  };
  const post = (nonce: number, remoteAddress: string, timeoutMs = 10_000) =>
    server.app.inject({
      method: 'POST',
      url: `/v1/tx?wait=commit&timeoutMs=${timeoutMs}`,
      payload: { tx: toHex(order(nonce).bytes) },
      remoteAddress,
    });
  try {
    const held = [post(1, '10.0.0.1'), post(2, '10.0.0.1')];
    await submitted.until(() => submissions === 2);
    // A third from that address is refused at once (without the cap it would wait, and time out).
    const third = await post(3, '10.0.0.1', 200);
    assert.equal(third.statusCode, 503);
    assert.equal(third.json().code, 'Unavailable');
    // Another address still has its places.
    const other = post(4, '10.0.0.2');
    await submitted.until(() => submissions === 3);
    view.commit();
    for (const answer of [...held, other]) assert.equal((await answer).statusCode, 200);
    // Committed: the address's places are free again.
    const again = post(5, '10.0.0.1');
    await submitted.until(() => submissions === 4);
    view.commit();
    assert.equal((await again).statusCode, 200);
  } finally {
    await server.close();
  }
});
