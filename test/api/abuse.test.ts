// One client (or one address) trying to cost the node or other clients more
// than its share: repeated resumes over the buffered blocks, commit waiters
// held by one address, forwarded-for headers and IPv6 addresses that would
// give a client fresh rate-limit buckets at will.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BlockUpdate } from '../../src/api/view.ts';
import type { WsMessage } from '../../src/api/ws.ts';
import { PERP, RawClient, makeView, serve } from './fixtures.ts';

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
