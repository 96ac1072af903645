// One client (or one address) trying to cost the node or other clients more
// than its share: repeated resumes over the buffered blocks, commit waiters
// held by one address, forwarded-for headers and IPv6 addresses that would
// give a client fresh rate-limit buckets at will.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { DEFAULT_API_LIMITS, clientKeyOf, startApiServer } from '../../src/api/server.ts';
import { WsHub } from '../../src/api/ws.ts';
import type { ApiServer } from '../../src/api/server.ts';
import { buildTx, placeOrder } from '../../src/exchange/tx/index.ts';
import type { BlockUpdate } from '../../src/api/view.ts';
import type { WsMessage } from '../../src/api/ws.ts';
import { toHex } from '../../src/lib/bytes.ts';
import {
  CHAIN_ID,
  ManualClock,
  PERP,
  RawClient,
  Signal,
  key,
  makeView,
  order,
  serve,
} from './fixtures.ts';

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

test('wait=commit: a submission that fails with a 500 gives its commit waiter place back', async () => {
  const view = makeView({ autoCommit: true });
  const submit = view.submit.bind(view);
  let fail = true;
  view.submit = async (bytes) => {
    if (fail) throw new Error('the disk failed');
    return submit(bytes);
  };
  const server = await serve(view, { commitWaitersMax: 1, commitWaitersPerIpMax: 1 });
  const post = (nonce: number) =>
    server.app.inject({
      method: 'POST',
      url: '/v1/tx?wait=commit',
      payload: { tx: toHex(order(nonce).bytes) },
    });
  try {
    const failed = await post(1);
    assert.equal(failed.statusCode, 500);
    assert.equal(failed.json().code, 'InternalError');
    // The only place is free again (it was held for good: 503 Unavailable).
    fail = false;
    const next = await post(2);
    assert.equal(next.statusCode, 200, next.body);
    assert.equal(next.json().status, 'committed');
  } finally {
    await server.close();
  }
});

test('behind a trusted proxy, the address it wrote counts, not those the client put before it', async () => {
  const view = makeView();
  const server = await startApiServer({
    view,
    trustProxy: true,
    limits: { ipBurstRequests: 2, wsConnectionsPerIpMax: 1 },
    nowMs: () => 0,
  });
  // The proxy appends the address it saw (9.9.9.9) to whatever the client sent.
  const via = (claimed: string) => ({ 'x-forwarded-for': `${claimed}, 9.9.9.9` });
  const sockets: WebSocket[] = [];
  try {
    const first = new WebSocket(server.url.replace(/^http/, 'ws') + '/v1/ws', {
      headers: via('1.1.1.1'),
    });
    sockets.push(first);
    await new Promise((resolve, reject) => first.once('open', resolve).once('error', reject));
    // A second connection of 9.9.9.9, whatever it claims, is past the cap.
    const second = new WebSocket(server.url.replace(/^http/, 'ws') + '/v1/ws', {
      headers: via('1.1.1.2'),
    });
    sockets.push(second);
    const refused = await new Promise<number>((resolve) => {
      second.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      second.once('open', () => resolve(101));
    });
    assert.equal(refused, 429);
    // The two upgrades took 9.9.9.9's two tokens: a request claiming yet another address is refused.
    const answer = await server.app.inject({ url: '/v1/status', headers: via('1.1.1.3') });
    assert.equal(answer.statusCode, 429);
    // Another address the proxy wrote has its own bucket.
    const other = await server.app.inject({
      url: '/v1/status',
      headers: { 'x-forwarded-for': '1.1.1.3, 8.8.8.8' },
    });
    assert.equal(other.statusCode, 200);
  } finally {
    for (const s of sockets) s.on('error', () => {}).terminate();
    await server.close();
  }
});

test('an IPv6 client is counted by its /64, an IPv4-mapped one as its IPv4 address', async () => {
  assert.equal(clientKeyOf('2001:db8::1'), clientKeyOf('2001:DB8:0:0:ffff::2'));
  assert.notEqual(clientKeyOf('2001:db8::1'), clientKeyOf('2001:db8:0:1::1'));
  assert.equal(clientKeyOf('::ffff:10.0.0.1'), '10.0.0.1');
  assert.equal(clientKeyOf('::ffff:a00:1'), '10.0.0.1', 'an IPv4-mapped address written in hex');
  assert.equal(clientKeyOf('10.0.0.1'), '10.0.0.1');
  // As some proxies write X-Forwarded-For: the source port is no new client.
  assert.equal(clientKeyOf('10.0.0.1:5678'), '10.0.0.1');
  assert.equal(clientKeyOf(' 10.0.0.1 '), '10.0.0.1');
  assert.equal(clientKeyOf('[2001:db8::1]:443'), clientKeyOf('2001:db8::1'));
  assert.equal(clientKeyOf('[2001:db8::1]'), clientKeyOf('2001:db8::2'));
  assert.equal(clientKeyOf('[::ffff:10.0.0.1]:80'), '10.0.0.1');
  assert.equal(clientKeyOf('proxy-garbage'), 'proxy-garbage', 'anything else keeps its own key');
  const view = makeView();
  const server = await serve(view, { ipBurstRequests: 1 });
  const get = (remoteAddress: string) =>
    server.app.inject({ url: '/v1/status', remoteAddress }).then((a) => a.statusCode);
  try {
    assert.equal(await get('2001:db8::1'), 200);
    assert.equal(await get('2001:db8::2'), 429); // same /64: the same bucket
    assert.equal(await get('2001:db8:0:1::1'), 200);
    assert.equal(await get('10.0.0.1'), 200);
    assert.equal(await get('::ffff:10.0.0.1'), 429);
  } finally {
    await server.close();
  }
});

test('one address holds at most connectionsPerIpMax TCP connections; a closed one frees its place', async () => {
  const view = makeView();
  const server = await serve(view, {
    connectionsPerIpMax: 3,
    ipBurstRequests: 2,
    ipRequestsPerS: 1,
    wsConnectionsPerIpMax: 1,
  });
  const { port } = new URL(server.url);
  const sockets: Socket[] = [];
  const open = () => {
    const s = connect(Number(port), '127.0.0.1');
    sockets.push(s);
    s.on('error', () => {});
    return new Promise<Socket>((resolve) => s.once('connect', () => resolve(s)));
  };
  /** Sends a GET on the socket: its status line, or 'closed' if the server closed it first. */
  const ask = (s: Socket) =>
    new Promise<string>((resolve) => {
      let text = '';
      s.on('data', (chunk) => {
        text += chunk.toString();
        if (text.includes('\r\n')) resolve(text.split('\r\n', 1)[0]!);
      });
      s.once('close', () => resolve('closed'));
      s.write('GET /v1/status HTTP/1.1\r\nhost: x\r\n\r\n');
    });
  try {
    // Three idle connections (no request, so no rate token) hold every place.
    const idle = [await open(), await open(), await open()];
    assert.equal(await ask(await open()), 'closed');
    idle[0]!.destroy();
    // The server frees the place once it sees that close: a few more tries at most.
    let status = 'closed';
    for (let i = 0; i < 100 && status === 'closed'; i++) status = await ask(await open());
    assert.equal(status, 'HTTP/1.1 200 OK');
  } finally {
    for (const s of sockets) s.destroy();
    await server.close();
  }
});

/** A signed batch of `count` buy orders of key 1 on PERP. */
function batch(nonce: number, count: number) {
  return buildTx({
    chainId: CHAIN_ID,
    key: key(1),
    nonce,
    action: {
      kind: 'batch',
      actions: Array.from({ length: count }, (_, i) =>
        placeOrder({ instrument: PERP, side: 'buy', priceTicks: 190 + i, sizeLots: 1 }),
      ),
    },
  });
}

/** POSTs transaction bytes to /v1/tx (from `remoteAddress`, else the default); its status and body. */
async function postTx(
  server: ApiServer,
  bytes: Uint8Array,
  remoteAddress?: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const a = await server.app.inject({
    method: 'POST',
    url: '/v1/tx',
    payload: Buffer.from(bytes),
    headers: { 'content-type': 'application/octet-stream' },
    ...(remoteAddress !== undefined ? { remoteAddress } : {}),
  });
  return { status: a.statusCode, body: a.json<Record<string, unknown>>() };
}

test(
  'a batch takes one token per action of the account bucket and one per 16 more of the address bucket, all or none',
  { timeout: 10_000 },
  async () => {
    const view = makeView();
    const post = (server: ApiServer, bytes: Uint8Array) => postTx(server, bytes);
    const byAccount = await serve(view, { accountTxsPerS: 1, accountBurstTxs: 4 });
    try {
      assert.equal((await post(byAccount, batch(1, 3).bytes)).status, 200);
      // One token left: a batch of two is refused whole, with the wait for both.
      const refused = await post(byAccount, batch(2, 2).bytes);
      assert.equal(refused.status, 429);
      assert.equal(refused.body.code, 'RateLimited');
      assert.equal(refused.body.retryAfterMs, 1000);
      // Nothing of the refused batch was taken: the last token still admits one order.
      assert.equal((await post(byAccount, order(3).bytes)).status, 200);
      assert.equal((await post(byAccount, order(4).bytes)).status, 429);
    } finally {
      await byAccount.close();
    }
    // The address's bucket: a batch of 33 takes its request's token and two more.
    const byAddress = await serve(makeView(), { ipRequestsPerS: 1, ipBurstRequests: 5 });
    try {
      assert.equal((await post(byAddress, batch(1, 33).bytes)).status, 200);
      const refused = await post(byAddress, batch(2, 33).bytes);
      assert.equal(refused.status, 429);
      assert.equal(refused.body.message, 'too many requests from this address');
    } finally {
      await byAddress.close();
    }
    // A batch the account's bucket refuses takes nothing of the address's beyond its request's token.
    const both = await serve(makeView(), {
      ipRequestsPerS: 1,
      ipBurstRequests: 5,
      accountTxsPerS: 1,
      accountBurstTxs: 40,
    });
    try {
      assert.equal((await post(both, batch(1, 33).bytes)).status, 200); // address 5 → 2, account 40 → 7
      const refused = await post(both, batch(2, 17).bytes); // address 2 → 1; account short
      assert.equal(refused.status, 429);
      assert.equal(refused.body.message, 'too many transactions from this account');
      assert.equal((await post(both, order(3).bytes)).status, 200); // the address's last token
    } finally {
      await both.close();
    }
  },
);

test("what anyone could send under an account (a signature that does not verify, a copy of one of its transactions) uses none of the account's allowance", async () => {
  const server = await serve(makeView(), { accountTxsPerS: 1, accountBurstTxs: 2 });
  const post = (bytes: Uint8Array, remoteAddress: string) => postTx(server, bytes, remoteAddress);
  try {
    // Another address sends key 1's orders with a broken signature, many times its burst.
    for (let n = 0; n < 10; n++) {
      const forged = Uint8Array.from(order(100 + n).bytes);
      forged[forged.length - 1]! ^= 1;
      assert.equal((await post(forged, '10.6.6.6')).body.code, 'BadSignature', `forged ${n}`);
    }
    // The account's own is admitted, and copies of it are refused.
    const first = order(1).bytes;
    assert.equal((await post(first, '10.1.1.1')).status, 200);
    for (let i = 0; i < 5; i++) {
      assert.equal((await post(first, '10.6.6.6')).body.code, 'DuplicateTx', `copy ${i}`);
    }
    // Its allowance is all its own: the second is admitted, the third is past it.
    assert.equal((await post(order(2).bytes, '10.1.1.1')).status, 200);
    const limited = await post(order(3).bytes, '10.1.1.1');
    assert.equal(limited.status, 429);
    assert.equal(limited.body.message, 'too many transactions from this account');
  } finally {
    await server.close();
  }
});

test(
  'a batch submitted over the WebSocket counts its transactions as over HTTP',
  { timeout: 10_000 },
  async () => {
    const server = await serve(makeView(), { accountTxsPerS: 1, accountBurstTxs: 4 });
    const client = new RawClient(server.url);
    try {
      await client.opened();
      client.send({ op: 'submit', id: 'a', tx: toHex(batch(1, 3).bytes) });
      client.send({ op: 'submit', id: 'b', tx: toHex(batch(2, 2).bytes) });
      const answers = [await client.nth((m) => 'id' in m), await client.nth((m) => 'id' in m, 1)];
      const byId = new Map(answers.map((m) => [(m as { id: string }).id, m]));
      assert.equal(byId.get('a')?.type, 'submitted');
      const b = byId.get('b') as { type: string; code?: string; status?: number };
      assert.equal(b.type, 'error');
      assert.equal(b.code, 'RateLimited');
      assert.equal(b.status, 429);
    } finally {
      client.close();
      await server.close();
    }
  },
);

test(
  'a request whose headers or body arrive too slowly is answered 408 and closed; a wait=commit request waits on',
  { timeout: 10_000 },
  async () => {
    const view = makeView();
    const submitted = new Signal();
    let submissions = 0;
    const submit = view.submit.bind(view);
    view.submit = async (bytes) => {
      const result = await submit(bytes);
      submissions++;
      submitted.notify();
      return result;
    };
    const server = await serve(view, {
      headersTimeoutMs: 40,
      requestTimeoutMs: 80,
      timeoutCheckMs: 10,
    });
    const { port } = new URL(server.url);
    const sockets: Socket[] = [];
    /**
     * Sends `text`, then `dribble` a byte at a time (each write would reset an
     * idle timeout, not this one): the status line answered, or 'closed'.
     */
    const slow = (text: string, dribble = '') =>
      new Promise<string>((resolve) => {
        const s = connect(Number(port), '127.0.0.1');
        sockets.push(s);
        s.on('error', () => {});
        let answer = '';
        let sent = 0;
        let drip: ReturnType<typeof setInterval> | undefined;
        s.on('data', (chunk) => (answer += chunk.toString()));
        s.once('close', () => {
          clearInterval(drip);
          resolve(answer === '' ? 'closed' : answer.split('\r\n', 1)[0]!);
        });
        // The drip starts once `text` is written: started before, a slow
        // connect let its first byte go ahead of the request line.
        s.once('connect', () => {
          s.write(text);
          drip = setInterval(() => {
            if (sent < dribble.length) s.write(dribble[sent++]!);
          }, 5);
        });
      });
    try {
      // Its body read in full before the slow clients start: only the commit wait is left.
      const waiting = fetchCommit(server.url);
      await submitted.until(() => submissions === 1);
      const hex = toHex(order(2).bytes);
      const body = `{"tx":"${hex}"}`;
      const slowBody = slow(
        `POST /v1/tx HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n` +
          `content-length: ${body.length}\r\n\r\n`,
        body,
      );
      const slowHeaders = slow('GET /v1/status HTTP/1.1\r\nhost: x\r\n', 'x-slow: '.repeat(100));
      assert.equal(await slowBody, 'HTTP/1.1 408 Request Timeout');
      assert.equal(await slowHeaders, 'HTTP/1.1 408 Request Timeout');
      // Both slow requests began after it and were cut: the waiting one was not.
      view.commit();
      const answer = await waiting;
      assert.equal(answer.status, 200);
      assert.equal(answer.body.status, 'committed');
    } finally {
      for (const s of sockets) s.destroy();
      await server.close();
    }
  },
);

async function fetchCommit(
  url: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${url}/v1/tx?wait=commit&timeoutMs=60000`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: Buffer.from(order(1).bytes),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

test(
  "an address's connections share one allowance of messages other than submissions",
  { timeout: 10_000 },
  async () => {
    const clock = new ManualClock();
    const server = await serve(
      makeView(),
      { messagesPerS: 1, burstMessages: 2, ipMessagesPerS: 1, ipBurstMessages: 3 },
      clock,
    );
    const first = new RawClient(server.url);
    const second = new RawClient(server.url);
    try {
      await Promise.all([first.opened(), second.opened()]);
      first.send({ op: 'ping' });
      first.send({ op: 'ping' });
      await first.nth((m) => m.type === 'pong', 1);
      // The second connection has a full bucket of its own, its address one token.
      second.send({ op: 'ping' });
      second.send({ op: 'ping' });
      const refused = await second.nth((m) => m.type === 'error');
      assert.deepEqual(
        {
          code: (refused as { code: string }).code,
          retryAfterMs: (refused as { retryAfterMs: number }).retryAfterMs,
        },
        { code: 'RateLimited', retryAfterMs: 1000 },
      );
      assert.equal(second.messages.filter((m) => m.type === 'pong').length, 1);
      clock.ms += 1000;
      second.send({ op: 'ping' });
      await second.nth((m) => m.type === 'pong', 1);
    } finally {
      for (const c of [first, second]) c.close();
      await server.close();
    }
  },
);

/** A socket for the hub alone: what it is sent stays queued, `weight` bytes per byte sent. */
class QueueingSocket extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  terminated = false;
  /** How often the hub looked at the queue. */
  reads = 0;
  private queued = 0;
  constructor(private readonly weight: number) {
    super();
  }
  get bufferedAmount(): number {
    this.reads++;
    return this.queued;
  }
  send(text: string): void {
    this.queued += text.length * this.weight;
  }
  terminate(): void {
    this.terminated = true;
    this.readyState = 3;
    this.queued = 0;
    queueMicrotask(() => this.emit('close'));
  }
  close(): void {
    this.terminate();
  }
}

test('past the total send buffer of all connections the ones with the most queued are dropped', async () => {
  const view = makeView();
  const hub = new WsHub(
    view,
    { ...DEFAULT_API_LIMITS, sendBufferBytesMax: 1_000_000, sendBufferTotalBytesMax: 20_000 },
    () => 0,
  );
  // One reads everything at once; the others fall behind, the last twice as fast.
  const fast = new QueueingSocket(0);
  const slow = new QueueingSocket(1);
  const slower = new QueueingSocket(2);
  const idle = new QueueingSocket(1);
  for (const socket of [fast, slow, slower, idle]) {
    hub.attach(socket as unknown as WebSocket, '10.0.0.1');
  }
  for (const socket of [fast, slow, slower]) {
    socket.emit(
      'message',
      Buffer.from(JSON.stringify({ op: 'subscribe', channel: 'blocks' })),
      false,
    );
  }
  try {
    let blocks = 0;
    while (!slower.terminated && blocks < 1_000) {
      view.commit();
      blocks++;
    }
    assert.ok(slower.terminated, 'the slowest connection is dropped');
    assert.ok(!slow.terminated && !fast.terminated && !idle.terminated);
    // The total is kept as it goes: the idle connection was looked at only when it was passed.
    assert.ok(idle.reads <= 1, `${idle.reads} reads of an idle connection over ${blocks} blocks`);
    await new Promise((resolve) => queueMicrotask(() => resolve(undefined)));
    assert.equal(hub.connectionCount, 3);
    // The rest go on, under the bound.
    view.commit();
    assert.ok(!slow.terminated);
  } finally {
    hub.close();
  }
});
