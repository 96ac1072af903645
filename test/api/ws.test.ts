// The WebSocket protocol over real loopback sockets: snapshots then updates in
// sequence, resume from a sequence number, limits, and the SDK client that
// reconnects, resubscribes and recovers with no gap and no duplicate.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import pino from 'pino';
import WebSocket, { WebSocketServer } from 'ws';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { formatAddress } from '../../src/crypto/index.ts';
import { ZommaClient } from '../../src/api/client/index.ts';
import type { ChannelEvent, RawChannelEvent } from '../../src/api/client/index.ts';
import { ALREADY_SUBSCRIBED, Channels, NOT_SUBSCRIBED } from '../../src/api/client/channels.ts';
import type { ChannelError } from '../../src/api/client/channels.ts';
import type { MemoryView } from '../../src/api/memory.ts';
import type { AccountInterest, BlockUpdate, BookDelta } from '../../src/api/view.ts';
import type { WsMessage } from '../../src/api/ws.ts';
import { ZommaApiError } from '../../src/api/client/index.ts';
import { ApiError } from '../../src/api/errors.ts';
import { startApiServer } from '../../src/api/server.ts';
import { toHex } from '../../src/lib/bytes.ts';
import { WS_BOOK_DEPTH_LEVELS, WS_CONTROL_MESSAGE_BYTES_MAX } from '../../src/lib/limits.ts';
import {
  CHAIN_ID,
  ManualClock,
  OPTION,
  PERP,
  RawClient,
  Signal,
  key,
  makeView,
  refuseLargeOrders,
  order,
  serve,
  subaccount,
} from './fixtures.ts';

const isUpdate = (channel: string) => (m: WsMessage) =>
  m.type === 'update' && m.channel === channel;
const isSnapshot = (channel: string) => (m: WsMessage) =>
  m.type === 'snapshot' && m.channel === channel;

/** A few blocks of book changes, seeded so every run is the same. */
function churn(view: MemoryView, blocks: number, seed: number): void {
  let x = seed;
  for (let b = 0; b < blocks; b++) {
    for (let i = 0; i < 3; i++) {
      x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
      const side = x % 2 === 0 ? 'bid' : 'ask';
      const price = side === 'bid' ? 190 + (x % 10) : 201 + (x % 10);
      view.setLevel(PERP, side, price, x % 3 === 0 ? 0 : 1 + (x % 50));
    }
    view.commit();
  }
}

test('book: a snapshot, then every delta, each linked to the one before', async () => {
  const view = makeView();
  const server = await serve(view);
  const client = new RawClient(server.url);
  try {
    await client.opened();
    client.send({ op: 'subscribe', channel: `book:${PERP}` });
    assert.deepEqual(await client.nth(() => true, 0), {
      type: 'subscribed',
      channel: `book:${PERP}`,
    });
    const snapshot = await client.nth(isSnapshot(`book:${PERP}`));
    assert.equal(snapshot.type === 'snapshot' && snapshot.seq, 1);
    view.setLevel(PERP, 'bid', 199, 0);
    view.setLevel(PERP, 'ask', 202, 7);
    view.commit();
    view.commit(); // no book change: no message
    view.setLevel(PERP, 'bid', 197, 1);
    view.commit();
    const first = await client.nth(isUpdate(`book:${PERP}`), 0);
    const second = await client.nth(isUpdate(`book:${PERP}`), 1);
    assert.ok(first.type === 'update' && second.type === 'update');
    // A book's seq is the height of the block that changed it; prevSeq links them.
    assert.equal(first.seq, 2);
    assert.equal(second.seq, 4);
    assert.deepEqual(first.data, {
      instrument: PERP,
      seq: 2,
      prevSeq: 1,
      bids: [[199, 0]],
      asks: [[202, 7]],
    });
    assert.equal((second.data as { prevSeq: number }).prevSeq, 2);
  } finally {
    client.close();
    await server.close();
  }
});

test('trades, ticker, account and blocks channels carry the block height as seq', async () => {
  const view = makeView();
  const address = formatAddress(key(1).address);
  view.setAccount({ address, subaccounts: [subaccount(0)] });
  const server = await serve(view);
  const client = new RawClient(server.url);
  try {
    await client.opened();
    for (const channel of [`trades:${PERP}`, `ticker:${PERP}`, `account:${address}`, 'blocks']) {
      client.send({ op: 'subscribe', channel });
      const snap = await client.nth(isSnapshot(channel));
      assert.equal(snap.type === 'snapshot' && snap.seq, 1, channel);
    }
    view.addTrade(PERP, 201, 2, 'buy');
    view.setLevel(PERP, 'ask', 201, 3);
    const fill = {
      tradeId: 2,
      orderId: 7,
      instrument: PERP,
      side: 'buy' as const,
      priceTicks: 201,
      sizeLots: 2,
      feeQuote: '-10',
      liquidity: 'maker' as const,
      height: 2,
    };
    view.setAccount(
      { address, subaccounts: [subaccount(0)] },
      { address, subaccount: 0, orders: [], fills: [fill], positions: [] },
    );
    view.commit();
    const trades = await client.nth(isUpdate(`trades:${PERP}`));
    assert.ok(trades.type === 'update');
    assert.equal(trades.seq, 2);
    assert.equal((trades.data as { trades: { tradeId: number }[] }).trades[0]!.tradeId, 2);
    const ticker = await client.nth(isUpdate(`ticker:${PERP}`));
    assert.ok(ticker.type === 'update');
    assert.equal((ticker.data as { bestAskLots: number }).bestAskLots, 3);
    const account = await client.nth(isUpdate(`account:${address}`));
    assert.ok(account.type === 'update');
    const block = await client.nth(isUpdate('blocks'));
    assert.ok(block.type === 'update');
    assert.equal((block.data as { height: number }).height, 2);
    // The fill, with the time of its block.
    assert.deepEqual(
      (account.data as { subaccounts: { fills: unknown[] }[] }).subaccounts[0]!.fills,
      [{ ...fill, timeMs: (block.data as { timeMs: number }).timeMs }],
    );
  } finally {
    client.close();
    await server.close();
  }
});

test('resume: fromSeq replays exactly what was missed, or a snapshot once it is no longer buffered', async () => {
  const view = makeView();
  const server = await serve(view, { resumeBlocksMax: 4 });
  try {
    churn(view, 3, 7); // book seq 1 → 4
    const client = new RawClient(server.url);
    await client.opened();
    client.send({ op: 'subscribe', channel: `book:${PERP}`, fromSeq: 2 });
    const a = await client.nth(isUpdate(`book:${PERP}`), 0);
    const b = await client.nth(isUpdate(`book:${PERP}`), 1);
    assert.deepEqual([a.type === 'update' && a.seq, b.type === 'update' && b.seq], [3, 4]);
    assert.equal(client.messages.filter(isSnapshot(`book:${PERP}`)).length, 0);
    client.send({ op: 'subscribe', channel: 'blocks', fromSeq: 4 });
    await client.nth((m) => m.type === 'subscribed' && m.channel === 'blocks');
    view.commit();
    const blocks = await client.nth(isUpdate('blocks'));
    assert.equal(client.messages.filter(isSnapshot('blocks')).length, 0);
    assert.equal(blocks.type === 'update' && blocks.seq, 4 + 1);
    client.close();

    churn(view, 6, 9); // the buffer now starts well after seq 2 (book seq 11: the height)
    const late = new RawClient(server.url);
    await late.opened();
    late.send({ op: 'subscribe', channel: `book:${PERP}`, fromSeq: 2 });
    const snap = await late.nth(isSnapshot(`book:${PERP}`));
    assert.equal(snap.type === 'snapshot' && snap.seq, 11);
    late.send({ op: 'subscribe', channel: `trades:${PERP}`, fromSeq: 1 });
    await late.nth(isSnapshot(`trades:${PERP}`));
    late.close();
  } finally {
    await server.close();
  }
});

test('resume: a book seq this node never published (another node’s) gets a snapshot, not deltas that skip', async () => {
  const view = makeView();
  const server = await serve(view, { resumeBlocksMax: 16 });
  try {
    churn(view, 2, 5); // book seqs 2, 3
    view.commit(); // height 4 leaves the book
    churn(view, 2, 7); // 5 (on 3), 6
    const client = new RawClient(server.url);
    await client.opened();
    // 4 is a height, but not a book this node held: the delta at 5 applies on 3.
    client.send({ op: 'subscribe', channel: `book:${PERP}`, fromSeq: 4 });
    const first = await client.nth(
      (m) => (m.type === 'snapshot' || m.type === 'update') && m.channel === `book:${PERP}`,
    );
    assert.deepEqual([first.type, first.type === 'snapshot' && first.seq], ['snapshot', 6]);
    // From 3 it links on: the two deltas since.
    client.send({ op: 'unsubscribe', channel: `book:${PERP}` });
    await client.nth((m) => m.type === 'unsubscribed');
    client.send({ op: 'subscribe', channel: `book:${PERP}`, fromSeq: 3 });
    const a = await client.nth(isUpdate(`book:${PERP}`), 0);
    const b = await client.nth(isUpdate(`book:${PERP}`), 1);
    assert.deepEqual([a.type === 'update' && a.seq, b.type === 'update' && b.seq], [5, 6]);
    client.close();
  } finally {
    await server.close();
  }
});

test('an account channel the node cannot read (halted) ends with the reason, and the connection goes on', async () => {
  const view = makeView();
  const address = formatAddress(key(1).address);
  view.setAccount({ address, subaccounts: [subaccount(0)] });
  const read = view.read.bind(view);
  view.read = () => ({
    ...read(),
    account: () => {
      throw new ApiError('Unavailable', 503, 'the node halted (ExecutionFailed): no account state');
    },
  });
  const server = await serve(view);
  const client = new RawClient(server.url);
  try {
    await client.opened();
    client.send({ op: 'subscribe', channel: `account:${address}` });
    const refused = await client.nth((m) => m.type === 'error');
    assert.deepEqual(refused, {
      type: 'error',
      code: 'Unavailable',
      message: 'the node halted (ExecutionFailed): no account state',
      channel: `account:${address}`,
    });
    // Not subscribed: asking again is not "already subscribed", and other channels work.
    client.send({ op: 'unsubscribe', channel: `account:${address}` });
    const gone = await client.nth((m) => m.type === 'error', 1);
    assert.ok(gone.type === 'error' && gone.code === 'NotFound');
    client.send({ op: 'subscribe', channel: 'blocks' });
    await client.nth(isSnapshot('blocks'));
  } finally {
    client.close();
    await server.close();
  }
});

test('a subscription whose read fails unexpectedly ends with InternalError, logged under its id; the server goes on', async () => {
  const view = makeView();
  const read = view.read.bind(view);
  view.read = () => ({
    ...read(),
    ticker: () => {
      throw new Error('secret database path /var/lib/zomma at line 3');
    },
  });
  const lines: string[] = [];
  const logger = pino({}, { write: (line: string) => lines.push(line) });
  const server = await startApiServer({ view, logger, nowMs: () => 0 });
  const client = new RawClient(server.url);
  try {
    await client.opened();
    client.send({ op: 'subscribe', channel: `ticker:${PERP}` });
    const failed = await client.nth((m) => m.type === 'error');
    assert.ok(failed.type === 'error', 'an error answer');
    assert.equal(failed.code, 'InternalError');
    assert.equal(failed.message, 'internal error');
    assert.equal(failed.channel, `ticker:${PERP}`);
    assert.match(String(failed.errorId), /^[0-9a-f-]{36}$/);
    assert.doesNotMatch(JSON.stringify(failed), /secret/);
    const entry = lines.find((l) => l.includes(String(failed.errorId)));
    assert.ok(entry !== undefined, 'the details are logged under the id');
    assert.match(entry, /secret database path/);
    // The subscription is over, the connection and the server go on.
    client.send({ op: 'unsubscribe', channel: `ticker:${PERP}` });
    const gone = await client.nth((m) => m.type === 'error', 1);
    assert.ok(gone.type === 'error' && gone.code === 'NotFound', 'no longer subscribed');
    client.send({ op: 'subscribe', channel: 'blocks' });
    await client.nth(isSnapshot('blocks'));
  } finally {
    client.close();
    await server.close();
  }
});

test('account channels: the node is asked for the followed accounts, and for the resume window after the last follower left', async () => {
  const view = makeView();
  const interests: AccountInterest[] = [];
  const subscribe = view.subscribe.bind(view);
  view.subscribe = (listener: (u: BlockUpdate) => void, accounts?: AccountInterest) => {
    if (accounts !== undefined) interests.push(accounts);
    return subscribe(listener);
  };
  const server = await serve(view, { resumeBlocksMax: 3 });
  const address = formatAddress(key(1).address);
  const asked = () => interests.some((i) => i.any() && i.has(address));
  const update = (height: number) => {
    view.setAccount(
      { address, subaccounts: [subaccount(0)] },
      { address, subaccount: 0, orders: [], fills: [], positions: [], cashQuote: String(height) },
    );
    view.commit();
  };
  const channel = `account:${address}`;
  try {
    assert.equal(asked(), false, 'nobody follows it yet');
    const a = new RawClient(server.url);
    await a.opened();
    a.send({ op: 'subscribe', channel });
    await a.nth(isSnapshot(channel));
    assert.equal(asked(), true);
    update(2);
    assert.equal((await a.nth(isUpdate(channel))).type === 'update', true);
    a.send({ op: 'unsubscribe', channel });
    await a.nth((m) => m.type === 'unsubscribed');
    update(3); // nobody follows it now, but a follower may come back

    const b = new RawClient(server.url);
    await b.opened();
    b.send({ op: 'subscribe', channel, fromSeq: 2 });
    const replayed = await b.nth(isUpdate(channel));
    assert.ok(replayed.type === 'update' && replayed.seq === 3);
    assert.equal(b.messages.filter(isSnapshot(channel)).length, 0, 'resumed, no snapshot');
    b.send({ op: 'unsubscribe', channel });
    await b.nth((m) => m.type === 'unsubscribed');
    update(4);
    update(5);
    assert.equal(asked(), true, 'still inside the resume window');
    update(6);
    assert.equal(asked(), false, 'the window has passed');

    // Resuming over blocks built without it: a snapshot, never a silent gap.
    const c = new RawClient(server.url);
    await c.opened();
    c.send({ op: 'subscribe', channel, fromSeq: 5 });
    const snap = await c.nth(isSnapshot(channel));
    assert.ok(snap.type === 'snapshot' && snap.seq === 6);
    update(7);
    const next = await c.nth(isUpdate(channel));
    assert.ok(next.type === 'update' && next.seq === 7);
    for (const client of [a, b, c]) client.close();
  } finally {
    await server.close();
  }
});

test('an account channel spelled in capitals gets every update, under the name it was subscribed by', async () => {
  const view = makeView();
  const server = await serve(view);
  const address = formatAddress(key(1).address);
  const upper = `account:0x${address.slice(2).toUpperCase()}`;
  const update = (height: number) => {
    view.setAccount(
      { address, subaccounts: [subaccount(0)] },
      { address, subaccount: 0, orders: [], fills: [], positions: [], cashQuote: String(height) },
    );
    view.commit();
  };
  try {
    const a = new RawClient(server.url);
    await a.opened();
    a.send({ op: 'subscribe', channel: upper });
    await a.nth(isSnapshot(upper));
    a.send({ op: 'subscribe', channel: 'blocks' });
    await a.nth(isSnapshot('blocks'));
    update(2);
    // A block's account messages go out before its blocks message.
    await a.nth(isUpdate('blocks'));
    const first = a.messages.find(isUpdate(upper));
    assert.ok(first?.type === 'update' && first.seq === 2, 'the update of block 2');
    // The same account in another spelling is the same subscription.
    a.send({ op: 'subscribe', channel: `account:${address}` });
    const again = await a.nth((m) => m.type === 'error');
    assert.ok(again.type === 'error' && again.code === 'BadRequest');
    a.send({ op: 'unsubscribe', channel: `account:${address}` });
    assert.deepEqual(await a.nth((m) => m.type === 'unsubscribed'), {
      type: 'unsubscribed',
      channel: `account:${address}`,
    });
    update(3);

    const b = new RawClient(server.url);
    await b.opened();
    b.send({ op: 'subscribe', channel: upper, fromSeq: 2 });
    b.send({ op: 'ping' });
    await b.nth((m) => m.type === 'pong');
    const replayed = b.messages.find(isUpdate(upper));
    assert.ok(replayed?.type === 'update' && replayed.seq === 3, 'block 3 replayed');
    assert.equal(b.messages.filter(isSnapshot(upper)).length, 0, 'resumed, no snapshot');
    for (const client of [a, b]) client.close();
  } finally {
    await server.close();
  }
});

test('bad requests get typed errors; limits on subscriptions, message size and connections', async () => {
  const server = await serve(makeView(), {
    subscriptionsMax: 2,
    wsMessageBytesMax: 256,
    wsConnectionsPerIpMax: 2,
  });
  const client = new RawClient(server.url);
  const isError = (m: WsMessage) => m.type === 'error';
  try {
    await client.opened();
    const codes: string[] = [];
    const channels: (string | undefined)[] = [];
    const expectError = async (request: unknown) => {
      client.send(request);
      const m = await client.nth(isError, codes.length);
      assert.ok(m.type === 'error');
      codes.push(m.code);
      channels.push(m.channel);
    };
    await expectError('{not json');
    await expectError('[1,2]');
    await expectError({ op: 'dance' });
    await expectError({ op: 'subscribe', channel: 'orders:everything' });
    await expectError({ op: 'subscribe', channel: 'book:ETH-PERPETUAL' });
    await expectError({ op: 'subscribe', channel: `book:${PERP}`, fromSeq: -1 });
    await expectError({ op: 'unsubscribe', channel: 'blocks' });
    client.send({ op: 'subscribe', channel: 'blocks' });
    client.send({ op: 'subscribe', channel: `book:${PERP}` });
    await expectError({ op: 'subscribe', channel: 'blocks' });
    await expectError({ op: 'subscribe', channel: `trades:${PERP}` });
    assert.deepEqual(codes, [
      'MalformedJson',
      'BadRequest',
      'BadRequest',
      'BadRequest',
      'NotFound',
      'BadRequest',
      'NotFound',
      'BadRequest',
      'TooManySubscriptions',
    ]);
    // A refusal names the channel it refuses, whenever the request named one.
    assert.deepEqual(channels, [
      undefined,
      undefined,
      undefined,
      'orders:everything',
      'book:ETH-PERPETUAL',
      `book:${PERP}`,
      'blocks',
      'blocks',
      `trades:${PERP}`,
    ]);
    client.send({ op: 'ping' });
    await client.nth((m) => m.type === 'pong');

    // A third connection from the same address is refused at the upgrade: no
    // Retry-After, as only closing one of the address's connections frees a place.
    const second = new RawClient(server.url);
    await second.opened();
    const third = await refusedUpgrade(server.url + '/v1/ws');
    assert.equal(third.status, 429);
    assert.equal(third.body.code, 'TooManyConnections');
    assert.equal(third.retryAfter, undefined);
    assert.equal(third.body.retryAfterMs, undefined);
    second.close();

    // The endpoint takes no query parameters: an upgrade naming one is refused.
    const queried = await refusedUpgrade(server.url + '/v1/ws?token=1');
    assert.equal(queried.status, 400);
    assert.deepEqual(queried.body, {
      code: 'BadRequest',
      message: 'querystring/token is not a known field',
      field: 'querystring/token',
    });

    // An oversize message closes the connection (1009: message too big).
    const closed = new Promise<number>((resolve) => client.socket.on('close', resolve));
    client.send({ op: 'subscribe', channel: 'x'.repeat(400) });
    assert.equal(await closed, 1009);
  } finally {
    client.close();
    await server.close();
  }
});

test('an upgrade the WebSocket library refuses gets the API error body, not its text', async () => {
  const server = await serve(makeView());
  const { port } = new URL(server.url);
  /** The whole answer to a raw upgrade request. */
  const upgrade = (lines: string[]) =>
    new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1');
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
      socket.end(`${[...lines, 'host: x', 'connection: Upgrade', ''].join('\r\n')}\r\n`);
    });
  const key = 'sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==';
  try {
    const cases: [string[], string, Record<string, unknown>][] = [
      [
        ['GET /v1/ws HTTP/1.1', 'upgrade: websocket', 'sec-websocket-version: 13'],
        '400',
        { code: 'BadRequest', message: 'Missing or invalid Sec-WebSocket-Key header' },
      ],
      [
        ['GET /v1/ws HTTP/1.1', 'upgrade: websocket', 'sec-websocket-version: 99', key],
        '400',
        { code: 'BadRequest', message: 'Missing or invalid Sec-WebSocket-Version header' },
      ],
      [
        ['GET /v1/ws HTTP/1.1', 'upgrade: h2c', 'sec-websocket-version: 13', key],
        '400',
        { code: 'BadRequest', message: 'Invalid Upgrade header' },
      ],
      [
        ['POST /v1/ws HTTP/1.1', 'upgrade: websocket', 'sec-websocket-version: 13', key],
        '404',
        { code: 'NotFound', message: 'no route POST /v1/ws' },
      ],
    ];
    for (const [lines, status, body] of cases) {
      const answer = await upgrade(lines);
      assert.match(answer, new RegExp(`^HTTP/1\\.1 ${status} `), answer);
      assert.match(answer, /content-type: application\/json/, answer);
      assert.deepEqual(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)), body);
      if (lines.includes('sec-websocket-version: 99')) {
        assert.match(answer, /sec-websocket-version: 13, 8/i, 'the versions spoken');
      }
    }
  } finally {
    await server.close();
  }
});

test('a refused upgrade is closed by the server even if the client never closes its side', async () => {
  const server = await serve(makeView(), { wsConnectionsPerIpMax: 2 });
  const { port } = new URL(server.url);
  const held: ReturnType<typeof connect>[] = [];
  try {
    // Three upgrades with no key, each client keeping its side open (no end()).
    for (let i = 0; i < 3; i++) {
      const socket = connect({ port: Number(port), host: '127.0.0.1', allowHalfOpen: true });
      held.push(socket);
      const ended = new Promise<void>((resolve) => socket.on('end', () => resolve()));
      socket.on('error', () => {});
      socket.resume();
      socket.write(
        'GET /v1/ws HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\n\r\n',
      );
      await ended;
    }
    // Their slots are freed as the server closes them: a valid client connects
    // (a few tries: the server closes each just after its answer is out).
    let status = 0;
    for (let attempt = 0; attempt < 20 && status !== 101; attempt++) {
      status = await new Promise<number>((resolve) => {
        const ws = new WebSocket(server.url.replace(/^http/, 'ws') + '/v1/ws');
        ws.on('open', () => {
          ws.close();
          resolve(101);
        });
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('error', () => {});
      });
    }
    assert.equal(status, 101, 'the refused upgrades hold no connection slot');
  } finally {
    for (const socket of held) socket.destroy();
    await server.close();
  }
});

/** An upgrade the server refuses: its status, Retry-After header and JSON body. */
async function refusedUpgrade(
  url: string,
): Promise<{ status: number; retryAfter: string | undefined; body: Record<string, unknown> }> {
  const socket = new WebSocket(url.replace(/^http/, 'ws'));
  return new Promise((resolve, reject) => {
    socket.on('open', () => reject(new Error('the upgrade was accepted')));
    socket.on('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => {
        const retryAfter = res.headers['retry-after'];
        resolve({ status: res.statusCode ?? 0, retryAfter, body: JSON.parse(text) });
      });
    });
  });
}

test('a message with a field its op does not take is refused with BadRequest naming it, as HTTP refuses one', async () => {
  const server = await serve(makeView());
  const client = new RawClient(server.url);
  try {
    await client.opened();
    const refused: [unknown, string, string | undefined][] = [
      [{ op: 'subscribe', channel: 'blocks', depth: 5 }, 'subscribe/depth', 'blocks'],
      [{ op: 'subscribe', channel: 'blocks', fromseq: 3 }, 'subscribe/fromseq', 'blocks'],
      [{ op: 'unsubscribe', channel: 'blocks', id: 'x' }, 'unsubscribe/id', 'blocks'],
      [{ op: 'ping', id: 1 }, 'ping/id', undefined],
      // Long names are cut short (128 characters, then an ellipsis): no long echo.
      [
        { op: 'subscribe', channel: 'c'.repeat(2_000), ['f'.repeat(2_000)]: 1 },
        `subscribe/${'f'.repeat(128)}…`,
        `${'c'.repeat(128)}…`,
      ],
      // Parsed as an own field, named like any other; no prototype is set.
      [
        '{"op":"subscribe","channel":"blocks","__proto__":{"polluted":1}}',
        'subscribe/__proto__',
        'blocks',
      ],
    ];
    let pongs = 0;
    for (const [request, field, channel] of refused) {
      // A ping after each: its pong follows the answer, so a request wrongly taken fails rather than waits.
      client.send(request);
      client.send({ op: 'ping' });
      const pong = await client.nth((x) => x.type === 'pong', pongs++);
      const m = client.messages[client.messages.indexOf(pong) - 1]!;
      assert.ok(m.type === 'error', field);
      assert.equal(m.code, 'BadRequest', field);
      assert.equal(m.field, field);
      assert.equal(m.message, `${field} is not a known field`);
      assert.equal(m.channel, channel, field);
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    // None of them subscribed: the same subscription, written right, is the first.
    client.send({ op: 'subscribe', channel: 'blocks' });
    await client.nth((x) => x.type === 'subscribed');
    assert.equal(client.messages.filter((x) => x.type === 'subscribed').length, 1);
    client.send({ op: 'ping' });
    await client.nth((x) => x.type === 'pong');
  } finally {
    client.close();
    await server.close();
  }
});

test("an upgrade over the address's request allowance is refused 429 with retryAfterMs and Retry-After, as HTTP is", async () => {
  const clock = new ManualClock();
  const server = await serve(makeView(), { ipRequestsPerS: 1, ipBurstRequests: 1 }, clock);
  const client = new RawClient(server.url);
  try {
    await client.opened();
    const limited = await refusedUpgrade(server.url + '/v1/ws');
    assert.equal(limited.status, 429);
    assert.deepEqual(limited.body, {
      code: 'RateLimited',
      message: 'too many requests from this address',
      retryAfterMs: 1000,
    });
    assert.equal(limited.retryAfter, '1');

    // The SDK reports the refusal with the server's code and wait (its next attempt waits as long).
    const statuses: unknown[] = [];
    const refused = new Signal();
    const sdk = new ZommaClient(server.url).socket({
      onStatus: (status) => {
        statuses.push(status);
        refused.notify();
      },
    });
    try {
      await refused.until(() => statuses.length >= 2);
      assert.deepEqual(statuses.slice(0, 2), [
        {
          type: 'error',
          code: 'RateLimited',
          message: 'too many requests from this address',
          retryAfterMs: 1000,
        },
        { type: 'close' },
      ]);
    } finally {
      sdk.close();
    }
    clock.ms += 1000;
    const again = new RawClient(server.url);
    await again.opened();
    again.close();
  } finally {
    client.close();
    await server.close();
  }
});

/** A consumer of the SDK socket that checks, as events arrive, that nothing repeats or skips. */
class BookConsumer {
  readonly events: ChannelEvent[] = [];
  readonly signal = new Signal();
  lastSeq = -1;
  handler = (event: ChannelEvent) => {
    if (event.type === 'update') {
      const delta = event.data as BookDelta;
      assert.equal(delta.prevSeq, this.lastSeq, 'no gap, no duplicate');
      assert.ok(event.seq > this.lastSeq);
    }
    this.lastSeq = event.seq;
    this.events.push(event);
    this.signal.notify();
  };
}

async function checkRecovery(resumeBlocksMax: number): Promise<ChannelEvent[]> {
  const view = makeView();
  const server = await serve(view, { resumeBlocksMax });
  const client = new ZommaClient(server.url);
  const socket = client.socket({ reconnectDelayMs: 5 });
  const consumer = new BookConsumer();
  try {
    socket.subscribe(`book:${PERP}`, consumer.handler);
    await consumer.signal.until(() => consumer.lastSeq === 1);
    churn(view, 3, 11);
    await consumer.signal.until(() => consumer.lastSeq === 4);
    const connectsBefore = socket.connects;
    server.hub.dropAll();
    // Committed while the client is away: a block that leaves the book (seqs
    // are heights, so the next skips 5), then five that change it.
    view.commit();
    churn(view, 5, 13);
    await consumer.signal.until(() => consumer.lastSeq === 10);
    assert.equal(socket.connects, connectsBefore + 1, 'reconnected once');
    churn(view, 2, 17);
    await consumer.signal.until(() => consumer.lastSeq === 12);
    const book = consumer.events.at(-1)!.book!;
    const served = view.read().book(PERP, 1000)!;
    assert.deepEqual(book.levels('bids'), served.bids);
    assert.deepEqual(book.levels('asks'), served.asks);
    return consumer.events;
  } finally {
    socket.close();
    await server.close();
  }
}

test('SDK: after a forced disconnect it reconnects and resumes from its seq, no gap or duplicate', async () => {
  const events = await checkRecovery(64);
  assert.equal(
    events.filter((e) => e.type === 'snapshot').length,
    1,
    'resumed, not re-snapshotted',
  );
});

test('SDK: when the missed updates are no longer buffered it recovers through a snapshot', async () => {
  const events = await checkRecovery(2);
  assert.equal(events.filter((e) => e.type === 'snapshot').length, 2);
});

test('SDK: more subscriptions than the server lets a connection send at once all open, and again after a reconnect', async () => {
  const view = makeView();
  // The connection's message bucket refills in real time: the client must pace itself to it.
  const clock = { ms: 0, now: () => performance.now() };
  const server = await serve(view, { burstMessages: 4, messagesPerS: 50 }, clock);
  const refused: string[] = [];
  const socket = new ZommaClient(server.url).socket({
    reconnectDelayMs: 5,
    // Half the server's allowance, as by default: a margin for the network's jitter.
    burstMessages: 2,
    messagesPerS: 25,
    onStatus: (s) => {
      if (s.type === 'error') refused.push(s.code ?? '');
      signal.notify();
    },
  });
  const signal = new Signal();
  const channels = [
    ...['book', 'trades', 'ticker'].flatMap((k) => [`${k}:${PERP}`, `${k}:${OPTION}`]),
    'blocks',
    ...[2, 3, 4].map((n) => `account:${formatAddress(key(n).address)}`),
  ];
  const snapshots = new Set<string>();
  const updated = new Set<string>();
  try {
    for (const channel of channels) {
      socket.subscribe(channel, (e) => {
        (e.type === 'snapshot' ? snapshots : updated).add(channel);
        signal.notify();
      });
    }
    await signal.until(() => snapshots.size + refused.length >= channels.length);
    assert.deepEqual(refused, []);
    assert.equal(snapshots.size, channels.length);
    // Resubscribing every channel at once after a reconnect is paced the same way: a block
    // that changes every channel reaches each (replayed or live).
    server.hub.dropAll();
    for (const instrument of [PERP, OPTION]) {
      view.setLevel(instrument, 'bid', 150, 1);
      view.addTrade(instrument, 160, 1, 'sell');
    }
    for (const n of [2, 3, 4]) {
      const address = formatAddress(key(n).address);
      view.setAccount(
        { address, subaccounts: [subaccount(0)] },
        { address, subaccount: 0, orders: [], fills: [], positions: [] },
      );
    }
    view.commit();
    await signal.until(() => updated.size + refused.length >= channels.length);
    assert.deepEqual(refused, []);
    assert.equal(socket.connects, 2);
  } finally {
    socket.close();
    await server.close();
  }
});

test('SDK: a sequence gap on the wire makes the client fetch a fresh snapshot', async () => {
  const view = makeView();
  // A faulty relay that loses one book delta (block 3) on the way to the server.
  const subscribe = view.subscribe.bind(view);
  view.subscribe = (listener: (u: BlockUpdate) => void) =>
    subscribe((u) => listener(u.height === 3 ? { ...u, books: [] as BookDelta[] } : u));
  const server = await serve(view);
  const socket = new ZommaClient(server.url).socket({ reconnectDelayMs: 5 });
  const seen: number[] = [];
  const signal = new Signal();
  let last: ChannelEvent | undefined;
  try {
    socket.subscribe(`book:${PERP}`, (e) => {
      seen.push(e.seq);
      last = e;
      signal.notify();
    });
    await signal.until(() => seen.length === 1);
    churn(view, 4, 21); // seqs 2, (3 lost), 4, 5
    await signal.until(() => last?.type === 'snapshot' && last.seq === 5);
    assert.deepEqual(seen, [1, 2, 5]);
    const served = view.read().book(PERP, 1000)!;
    assert.deepEqual(last!.book!.levels('bids'), served.bids);
    assert.deepEqual(last!.book!.levels('asks'), served.asks);
  } finally {
    socket.close();
    await server.close();
  }
});

/** Answers to submissions carry the client's id: `submitted` or `error`. */
const answerTo = (id: string) => (m: WsMessage) =>
  (m.type === 'submitted' || m.type === 'error') && 'id' in m && m.id === id;

test('submit over the socket answers as POST /v1/tx does: pending, final, typed refusals, echoing the id', async () => {
  const view = makeView({
    autoCommit: true,
    decide: refuseLargeOrders,
  });
  const server = await serve(view);
  const client = new RawClient(server.url);
  try {
    await client.opened();
    const a = order(1);
    client.send({ op: 'submit', id: 'a', tx: toHex(a.bytes) });
    assert.deepEqual(await client.nth(answerTo('a')), {
      type: 'submitted',
      id: 'a',
      data: { hash: toHex(a.hash), status: 'pending' },
    });
    const b = order(2);
    const tx = Buffer.from(b.bytes).toString('base64');
    client.send({ op: 'submit', id: 'b', tx, encoding: 'base64', wait: 'commit' });
    const final = await client.nth(answerTo('b'));
    assert.ok(final.type === 'submitted');
    assert.equal((final.data as { status: string }).status, 'committed');
    assert.equal((final.data as { hash: string }).hash, toHex(b.hash));

    const big = order(3, CHAIN_ID, 1_000);
    client.send({ op: 'submit', id: 'big', tx: toHex(big.bytes), wait: 'commit' });
    const refused = await client.nth(answerTo('big'));
    assert.ok(refused.type === 'error');
    assert.equal(refused.code, 'InsufficientMargin');
    assert.equal((refused as { hash?: string }).hash, toHex(big.hash));

    client.send({ op: 'submit', id: 'again', tx: toHex(a.bytes) });
    const again = await client.nth(answerTo('again'));
    assert.ok(again.type === 'error' && again.code === 'DuplicateTx');

    const errors: [unknown, string, string | undefined][] = [
      [{ op: 'submit', id: 'x', tx: 'abc' }, 'BadRequest', 'x'],
      [{ op: 'submit', id: 'y', tx: toHex(order(4, 'other-chain').bytes) }, 'WrongChain', 'y'],
      [{ op: 'submit', id: 'z', tx: toHex(a.bytes), wait: 'later' }, 'BadRequest', 'z'],
      [{ op: 'submit', id: 'w', tx: toHex(a.bytes), extra: 1 }, 'BadRequest', 'w'],
      [{ op: 'submit', tx: toHex(a.bytes) }, 'BadRequest', undefined],
      [{ op: 'submit', id: 'i'.repeat(65), tx: toHex(a.bytes) }, 'BadRequest', undefined],
    ];
    const isError = (m: WsMessage) => m.type === 'error';
    const before = client.messages.filter(isError).length;
    const refusals: WsMessage[] = [];
    for (const [i, [request, code, id]] of errors.entries()) {
      client.send(request);
      const m = await client.nth(isError, before + i);
      assert.ok(m.type === 'error');
      assert.equal(m.code, code, JSON.stringify(request));
      assert.equal(m.id, id, JSON.stringify(request));
      refusals.push(m);
    }
    // The refusals name the field and what it takes, as over HTTP.
    const said = (m: WsMessage | undefined) =>
      m?.type === 'error' ? [m.field, m.message] : undefined;
    assert.deepEqual(said(refusals[2]), [
      'submit/wait',
      'submit/wait must be one of "none", "commit"',
    ]);
    assert.deepEqual(said(refusals[4]), ['submit/id', 'submit/id is required']);
    // A field of the message is named as the socket names its fields, not as a POST body's.
    for (const [id, tx, encoding, message] of [
      ['hex', 'zz', 'hex', 'submit/tx is not even-length hex'],
      ['b64', 'a', 'base64', 'submit/tx is not padded base64'],
    ] as const) {
      client.send({ op: 'submit', id, tx, encoding });
      const named = await client.nth(answerTo(id));
      assert.ok(named.type === 'error', `${id} is refused`);
      assert.deepEqual(
        [named.code, named.field, named.message],
        ['BadRequest', 'submit/tx', message],
      );
    }
  } finally {
    client.close();
    await server.close();
  }
});

test('submissions take the address bucket, not the connection one, and wait in a bounded number', async () => {
  // The upgrade takes one token of the address; three submissions take the rest.
  const server = await serve(makeView(), {
    ipRequestsPerS: 4,
    ipBurstRequests: 4,
    messagesPerS: 1,
    burstMessages: 2,
    submitsPendingMax: 1,
  });
  const client = new RawClient(server.url);
  try {
    await client.opened();
    // Never committed (no autoCommit): the first waits, holding the one slot.
    client.send({ op: 'submit', id: '1', tx: toHex(order(1).bytes), wait: 'commit' });
    client.send({ op: 'submit', id: '2', tx: toHex(order(2).bytes), wait: 'commit' });
    const second = await client.nth(answerTo('2'));
    assert.ok(second.type === 'error' && second.code === 'TooManyPending');
    client.send({ op: 'submit', id: '1', tx: toHex(order(9).bytes) });
    const twice = await client.nth(answerTo('1'));
    assert.ok(twice.type === 'error' && twice.code === 'BadRequest', 'an id awaiting its answer');
    client.send({ op: 'submit', id: '3', tx: toHex(order(3).bytes) });
    const third = await client.nth(answerTo('3'));
    assert.ok(third.type === 'error' && third.code === 'RateLimited');
    assert.equal(third.status, 429, 'the status POST /v1/tx would answer');
    // The connection's own bucket is untouched by submissions: a ping passes.
    client.send({ op: 'ping' });
    await client.nth((m) => m.type === 'pong');
    // A submission spelled with escapes takes the connection's last token, and
    // is still refused by the address's bucket.
    client.send(`{"op":"\\u0073ubmit","id":"4","tx":"${toHex(order(4).bytes)}"}`);
    const fourth = await client.nth(answerTo('4'));
    assert.ok(fourth.type === 'error' && fourth.code === 'RateLimited');
    assert.match(fourth.message, /address/);
    client.send({ op: 'ping' });
    const limited = await client.nth((m) => m.type === 'error' && !('id' in m));
    assert.ok(limited.type === 'error' && limited.code === 'RateLimited');
    assert.match(limited.message, /messages/);
  } finally {
    client.close();
    await server.close();
  }
});

test('SDK: a trader submits over the socket with the answers of HTTP; a dropped connection fails what it had not answered', async () => {
  const view = makeView({
    autoCommit: true,
    decide: refuseLargeOrders,
  });
  const server = await serve(view);
  const client = new ZommaClient(server.url);
  const socket = client.socket({ reconnectDelayMs: 5 });
  try {
    const trader = client.trader(key(1), { socket });
    const done = await trader.placeOrder({
      instrument: PERP,
      side: 'buy',
      sizeLots: 2,
      priceTicks: 199,
    });
    assert.equal(done.status, 'committed');
    await assert.rejects(
      trader.placeOrder({ instrument: PERP, side: 'buy', sizeLots: 500, priceTicks: 199 }),
      (e) => e instanceof ZommaApiError && e.code === 'InsufficientMargin' && e.status === 422,
    );
  } finally {
    socket.close();
    await server.close();
  }

  // Never committed: the connection drops while it waits.
  const slow = makeView();
  const slowServer = await serve(slow);
  const slowClient = new ZommaClient(slowServer.url);
  const slowSocket = slowClient.socket({ reconnectDelayMs: 5 });
  try {
    const tx = order(7);
    const waiting = slowSocket.submitTx(tx.bytes, { wait: 'commit' });
    // Answered after the first was taken (one connection's messages are handled in order).
    assert.equal((await slowSocket.submitTx(order(9).bytes)).status, 'pending');
    slowServer.hub.dropAll();
    await assert.rejects(
      waiting,
      (e) => e instanceof ZommaApiError && e.code === 'Disconnected' && e.hash === toHex(tx.hash),
    );
    // After the reconnect, the same socket submits again.
    const next = await slowSocket.submitTx(order(8).bytes);
    assert.equal(next.status, 'pending');
  } finally {
    slowSocket.close();
    await slowServer.close();
  }

  // Nothing listening: a submission waiting for the connection fails when it does.
  const gone = await serve(makeView());
  const goneUrl = gone.url;
  await gone.close();
  const deadSocket = new ZommaClient(goneUrl).socket({ reconnectDelayMs: 1_000 });
  try {
    const tx = order(10);
    await assert.rejects(
      deadSocket.submitTx(tx.bytes),
      (e) => e instanceof ZommaApiError && e.code === 'NotSent' && e.hash === toHex(tx.hash),
    );
  } finally {
    deadSocket.close();
  }
});

test('a message other than a submission larger than WS_CONTROL_MESSAGE_BYTES_MAX closes the connection unparsed', async () => {
  const server = await serve(makeView());
  try {
    // Counted in bytes: a third as many three-byte characters are as large,
    // and a binary message is no submission.
    const binary = new Uint8Array(WS_CONTROL_MESSAGE_BYTES_MAX + 1);
    for (const pad of ['x'.repeat(WS_CONTROL_MESSAGE_BYTES_MAX), '€'.repeat(1_400), binary]) {
      const client = new RawClient(server.url);
      try {
        await client.opened();
        const closed = new Promise<number>((resolve) => client.socket.on('close', resolve));
        if (typeof pad === 'string') client.send({ op: 'subscribe', channel: 'blocks', pad });
        else client.socket.send(pad);
        // Taken, it would be answered (an unknown field, not JSON) instead.
        const answered = client.nth(() => true).then((m) => m.type);
        assert.equal(await Promise.race([closed, answered]), 1009, `${pad.length} long`);
      } finally {
        client.close();
      }
    }
  } finally {
    await server.close();
  }
});

test('a message past WS_MESSAGE_BYTES_MAX closes with 1009 after the answers sent before it', async () => {
  const server = await serve(makeView(), { wsMessageBytesMax: 1_024 });
  const client = new RawClient(server.url);
  try {
    await client.opened();
    const closed = new Promise<number>((resolve) => client.socket.on('close', resolve));
    // Both frames in one write, so the server reads them in one turn: the answer
    // to the first is still held back (corked) when the second breaks the limit.
    const stream = (client.socket as unknown as { _socket: Duplex })._socket;
    stream.cork();
    client.send({ op: 'unsubscribe', channel: 'blocks' });
    client.send({ op: 'submit', id: '1', tx: 'ab'.repeat(1_024) });
    stream.uncork();
    assert.equal(await closed, 1009);
    assert.deepEqual(
      client.messages.map((m) => m.type === 'error' && m.code),
      ['NotFound'],
      'the answer to the message before',
    );
  } finally {
    client.close();
    await server.close();
  }
});

// Without the heartbeat this would wait forever: the timeout turns that into a failure.
test(
  'SDK: a connection whose peer stops answering is dropped by the heartbeat, failing what it had sent',
  { timeout: 30_000 },
  async () => {
    // A peer that accepts the connection and then reads nothing (a host gone without closing).
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    wss.on('connection', (ws) => {
      ws.on('message', () => (ws as unknown as { _socket: Duplex })._socket.pause());
    });
    await new Promise((resolve) => wss.once('listening', resolve));
    const { port } = wss.address() as AddressInfo;
    const socket = new ZommaClient(`http://127.0.0.1:${port}`).socket({
      heartbeatMs: 20,
      reconnectDelayMs: 60_000,
    });
    try {
      const tx = order(11);
      await assert.rejects(
        socket.submitTx(tx.bytes, { wait: 'commit' }),
        (e) => e instanceof ZommaApiError && e.code === 'Disconnected' && e.hash === toHex(tx.hash),
      );
    } finally {
      socket.close();
      for (const client of wss.clients) client.terminate();
      await new Promise((resolve) => wss.close(resolve));
    }
  },
);

// A message left unanswered would wait forever: the timeout turns that into a failure.
test(
  'property: every message, however malformed, gets exactly one answer and the hub keeps serving',
  { timeout: 60_000 },
  async () => {
    const server = await serve(makeView({ autoCommit: true }), {
      ipRequestsPerS: 1_000_000,
      ipBurstRequests: 1_000_000,
      messagesPerS: 1_000_000,
      burstMessages: 1_000_000,
    });
    const field = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.integer(),
      fc.constant(null),
      fc.boolean(),
      fc.constant(toHex(order(1).bytes)),
      fc.array(fc.integer(), { maxLength: 3 }),
    );
    const message = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
      fc.string({ maxLength: 200 }),
      fc
        .record(
          {
            op: fc.constantFrom('submit', 'subscribe', 'unsubscribe', 'ping', 'dance'),
            id: field,
            tx: field,
            encoding: fc.oneof(fc.constantFrom('hex', 'base64'), field),
            wait: fc.oneof(fc.constantFrom('none', 'commit'), field),
            timeoutMs: field,
            channel: fc.oneof(fc.constantFrom('book:NOPE-PERPETUAL', 'orders:x'), field),
            fromSeq: field,
          },
          { requiredKeys: ['op'] },
        )
        .map((o) => JSON.stringify(o)),
    );
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 8 }), async (texts) => {
          const client = new RawClient(server.url);
          try {
            await client.opened();
            for (const text of texts) client.send(text);
            await client.signal.until(
              () => client.messages.length >= texts.length || client.closed,
            );
            assert.equal(client.closed, false);
            for (const m of client.messages) {
              assert.ok(['error', 'pong', 'submitted', 'unsubscribed'].includes(m.type), m.type);
            }
            client.send({ op: 'ping' });
            await client.nth((m) => m.type === 'pong', texts.filter(isPing).length);
            assert.equal(client.messages.length, texts.length + 1, 'one answer per message');
          } finally {
            client.close();
          }
        }),
        { numRuns: 40, seed: 5 },
      );
    } finally {
      await server.close();
    }
  },
);

/** A message the hub answers with a pong: a ping with no other field. */
function isPing(text: string): boolean {
  try {
    const v = JSON.parse(text) as { op?: unknown } | null;
    return (
      typeof v === 'object' &&
      v !== null &&
      !Array.isArray(v) &&
      v.op === 'ping' &&
      Object.keys(v).length === 1
    );
  } catch {
    return false;
  }
}

test('SDK: a book deeper than the window stays the top levels as levels above it go, across a reconnect', async () => {
  const view = makeView();
  const depth = WS_BOOK_DEPTH_LEVELS;
  // Bids 199 down, asks 201 up: a window and 200 levels more on each side.
  for (let i = 0; i < depth + 200; i++) {
    view.setLevel(PERP, 'bid', 199 - i, 1 + (i % 7));
    view.setLevel(PERP, 'ask', 201 + i, 1 + (i % 5));
  }
  view.commit();
  const server = await serve(view, { resumeBlocksMax: 64 });
  const socket = new ZommaClient(server.url).socket({ reconnectDelayMs: 5 });
  const consumer = new BookConsumer();
  let checked = 0;
  const check = (event: ChannelEvent) => {
    // Each event is checked against the book the server had at its seq.
    const served = view.read().book(PERP, depth)!;
    if (served.seq !== event.seq) return;
    assert.deepEqual(event.book!.levels('bids'), served.bids, `bids at seq ${event.seq}`);
    assert.deepEqual(event.book!.levels('asks'), served.asks, `asks at seq ${event.seq}`);
    checked++;
  };
  /** Removes the best `n` levels of each side, and one level beyond the window. */
  const takeTop = (n: number) => {
    const read = view.read().book(PERP, depth + 10)!;
    for (const [p] of read.bids.slice(0, n)) view.setLevel(PERP, 'bid', p, 0);
    for (const [p] of read.asks.slice(0, n)) view.setLevel(PERP, 'ask', p, 0);
    view.setLevel(PERP, 'bid', read.bids.at(-1)![0], 0);
    view.commit();
  };
  try {
    socket.subscribe(`book:${PERP}`, (e) => {
      consumer.handler(e);
      check(e);
    });
    await consumer.signal.until(() => consumer.lastSeq === view.read().book(PERP, 1)!.seq);
    assert.equal(consumer.events[0]!.book!.levels('bids').length, depth);
    for (const n of [1, 3, 2]) {
      takeTop(n);
      await consumer.signal.until(() => consumer.lastSeq === view.read().book(PERP, 1)!.seq);
    }
    server.hub.dropAll();
    takeTop(4); // committed while the client is away: replayed on resume
    takeTop(1);
    // A level inserted at the top pushes the window's last one out.
    view.setLevel(PERP, 'bid', 200, 9);
    view.commit();
    await consumer.signal.until(() => consumer.lastSeq === view.read().book(PERP, 1)!.seq);
    takeTop(5);
    await consumer.signal.until(() => consumer.lastSeq === view.read().book(PERP, 1)!.seq);
    assert.equal(consumer.events.filter((e) => e.type === 'snapshot').length, 1, 'resumed');
    const book = consumer.events.at(-1)!.book!;
    const served = view.read().book(PERP, depth)!;
    assert.deepEqual(book.levels('bids'), served.bids);
    assert.deepEqual(book.levels('asks'), served.asks);
    assert.ok(checked >= 3, `checked ${checked} events`);
  } finally {
    socket.close();
    await server.close();
  }
});

test('SDK: a subscription the server refuses by name ends and is reported with its channel; it may be asked for again', async () => {
  const view = makeView();
  const server = await serve(view);
  const statuses: { code?: string; channel?: string }[] = [];
  const signal = new Signal();
  const socket = new ZommaClient(server.url).socket({
    reconnectDelayMs: 5,
    onStatus: (s) => {
      if (s.type === 'error') statuses.push({ code: s.code, channel: s.channel });
      signal.notify();
    },
  });
  try {
    socket.subscribe('book:NOPE-PERPETUAL', () => assert.fail('no data for an unknown instrument'));
    await signal.until(() => statuses.length > 0);
    assert.deepEqual(statuses, [{ code: 'NotFound', channel: 'book:NOPE-PERPETUAL' }]);
    // Over: asking again is a new request (before, the channel waited for good and
    // this threw "already subscribed"), and a reconnect does not ask for it by itself.
    const again = socket.subscribe('book:NOPE-PERPETUAL', () => assert.fail('no data'));
    await signal.until(() => statuses.length > 1);
    assert.equal(statuses[1]!.code, 'NotFound');
    again.unsubscribe();
    // An account channel is one channel however its address is spelled, as on the server.
    const address = formatAddress(key(2).address);
    const sub = socket.subscribe(`account:${address.toUpperCase().replace('0X', '0x')}`, () => {});
    assert.equal(sub.channel, `account:${address.toLowerCase()}`);
    assert.throws(() => socket.subscribe(`account:${address.toLowerCase()}`, () => {}), {
      message: /already subscribed/,
    });
  } finally {
    socket.close();
    await server.close();
  }
});

// Bounded: on a regression the refused channels would wait for good.
test(
  'SDK: sockets sharing an address allowance get every channel: a RateLimited refusal is asked for again',
  { timeout: 30_000 },
  async () => {
    const view = makeView();
    const clock = { ms: 0, now: () => performance.now() };
    // Each socket paces itself to one connection's allowance, but two share the address's.
    const server = await serve(
      view,
      { burstMessages: 8, messagesPerS: 50, ipBurstMessages: 6, ipMessagesPerS: 20 },
      clock,
    );
    const signal = new Signal();
    const limited: string[] = [];
    const sockets = [0, 1].map(() =>
      new ZommaClient(server.url).socket({
        reconnectDelayMs: 5,
        burstMessages: 8,
        messagesPerS: 50,
        onStatus: (s) => {
          if (s.type === 'error') limited.push(s.code ?? '');
          signal.notify();
        },
      }),
    );
    const channels = [
      ...['book', 'trades', 'ticker'].flatMap((k) => [`${k}:${PERP}`, `${k}:${OPTION}`]),
      'blocks',
    ];
    const snapshots = new Set<string>();
    try {
      sockets.forEach((socket, i) => {
        for (const channel of channels) {
          socket.subscribe(channel, (e) => {
            if (e.type === 'snapshot') snapshots.add(`${i} ${channel}`);
            signal.notify();
          });
        }
      });
      await signal.until(() => snapshots.size === 2 * channels.length);
      // The test means something only if the address's allowance did refuse some.
      assert.ok(limited.includes('RateLimited'), `refusals: ${limited.join(', ')}`);
      assert.deepEqual(
        limited.filter((c) => c !== 'RateLimited'),
        [],
      );
    } finally {
      for (const socket of sockets) socket.close();
      await server.close();
    }
  },
);

test('SDK channels: a read refused after `subscribed` ends the channel; "already subscribed" keeps it', () => {
  const sent: object[] = [];
  const errors: ChannelError[] = [];
  const channels = new Channels(
    (r) => sent.push(r),
    (e) => errors.push(e),
  );
  const live = channels.open('account:0xab', () => {});
  channels.handle({ type: 'subscribed', channel: 'account:0xab' });
  assert.equal(live.state, 'live');
  // The server ends a subscription whose first read it refuses (a halted node): so does the client.
  channels.handle({
    type: 'error',
    code: 'Unavailable',
    message: 'halted',
    channel: 'account:0xab',
  });
  assert.equal(channels.get('account:0xab'), undefined);
  // A repeated request's answer: the server holds the channel, the client keeps it.
  const waiting = channels.open('blocks', () => {});
  channels.handle({
    type: 'error',
    code: 'BadRequest',
    message: ALREADY_SUBSCRIBED,
    channel: 'blocks',
  });
  assert.equal(channels.get('blocks'), waiting);
  assert.equal(errors.length, 2);
});

test('SDK channels: "already subscribed" for a live channel answers its own retry and is not reported', () => {
  const sent: object[] = [];
  const errors: ChannelError[] = [];
  const channels = new Channels(
    (r) => sent.push(r),
    (e) => errors.push(e),
  );
  const live = channels.open('blocks', () => {});
  // A RateLimited answer that names no request: the waiting channel is asked for again…
  channels.handle({ type: 'error', code: 'RateLimited', message: 'slow down' });
  channels.retrySubscribing(() => false);
  assert.equal(sent.length, 2);
  // …but its first request had been taken: `subscribed`, then the retry's answer.
  channels.handle({ type: 'subscribed', channel: 'blocks' });
  channels.handle({
    type: 'error',
    code: 'BadRequest',
    message: ALREADY_SUBSCRIBED,
    channel: 'blocks',
  });
  assert.equal(channels.get('blocks'), live);
  assert.equal(live.state, 'live');
  assert.deepEqual(
    errors.map((e) => e.code),
    ['RateLimited'],
  );
  assert.equal(sent.length, 2, 'nothing asked again');
});

test('SDK channels: a book re-asked after a gap does not stall when its unsubscribe is rate-limited', () => {
  const sent: { op: string; channel?: string }[] = [];
  const channels = new Channels(
    (r) => sent.push(r as { op: string; channel?: string }),
    () => {},
  );
  const name = `book:${PERP}`;
  const book = channels.open(name, () => {});
  channels.handle({ type: 'subscribed', channel: name });
  channels.handle({
    type: 'snapshot',
    channel: name,
    seq: 5,
    data: { instrument: PERP, seq: 5, bids: [], asks: [] },
  });
  // A gap: the client asks for the book again, unsubscribe first.
  channels.handle({
    type: 'update',
    channel: name,
    seq: 9,
    data: { instrument: PERP, seq: 9, prevSeq: 8, bids: [], asks: [] },
  });
  assert.equal(book.state, 'unsubscribing');
  assert.deepEqual(sent.at(-1), { op: 'unsubscribe', channel: name });
  // That unsubscribe was refused as RateLimited (no channel named): the retry sends it again.
  channels.handle({ type: 'error', code: 'RateLimited', message: 'too many messages' });
  sent.length = 0;
  channels.retrySubscribing(() => false);
  assert.deepEqual(sent, [{ op: 'unsubscribe', channel: name }]);
  // Had the first gone through, the repeat is answered "not subscribed": the book is asked for again.
  channels.handle({ type: 'error', code: 'NotFound', message: NOT_SUBSCRIBED, channel: name });
  assert.equal(book.state, 'subscribing');
  assert.deepEqual(sent.at(-1), { op: 'subscribe', channel: name, fromSeq: 5 });
  // A late "not subscribed" for a channel already re-asked leaves it alone.
  channels.handle({ type: 'error', code: 'NotFound', message: NOT_SUBSCRIBED, channel: name });
  assert.equal(channels.get(name), book);
});

test('SDK channels: "already subscribed" for a channel waiting for its subscribe re-asks it', () => {
  const sent: object[] = [];
  const channels = new Channels(
    (r) => sent.push(r),
    () => {},
  );
  // The server still holds `blocks` (an unsubscribe of ours was rate-limited); we ask again.
  const blocks = channels.open('blocks', () => {});
  channels.handle({
    type: 'error',
    code: 'BadRequest',
    message: ALREADY_SUBSCRIBED,
    channel: 'blocks',
  });
  assert.equal(blocks.state, 'unsubscribing');
  assert.deepEqual(sent.at(-1), { op: 'unsubscribe', channel: 'blocks' });
  channels.handle({ type: 'unsubscribed', channel: 'blocks' });
  assert.equal(blocks.state, 'subscribing');
  assert.deepEqual(sent.at(-1), { op: 'subscribe', channel: 'blocks' });
  channels.handle({ type: 'subscribed', channel: 'blocks' });
  assert.equal(blocks.state, 'live');
  // A live channel's repeated request is answered the same way: nothing changes.
  channels.handle({
    type: 'error',
    code: 'BadRequest',
    message: ALREADY_SUBSCRIBED,
    channel: 'blocks',
  });
  assert.equal(blocks.state, 'live');
});

test('a client resetting its connection while its upgrade is refused does not bring the server down', async () => {
  const server = await serve(makeView());
  const { port } = new URL(server.url);
  try {
    for (let i = 0; i < 5; i++) {
      const socket = connect(Number(port), '127.0.0.1');
      socket.on('error', () => {});
      await new Promise<void>((resolve) => socket.on('connect', () => resolve()));
      socket.write(
        'GET /nowhere HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n',
      );
      socket.resetAndDestroy();
    }
    // Still serving.
    const answer = await fetch(`${server.url}/v1/status`);
    assert.equal(answer.status, 200);
  } finally {
    await server.close();
  }
});

test(
  'SDK: a server answering RateLimited to everything never makes the client queue a channel twice',
  { timeout: 30_000 },
  async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    const outboxSizes: number[] = [];
    let outbox: object[] = [];
    const asked = new Signal();
    wss.on('connection', (ws) =>
      ws.on('message', () => {
        // Sampled as each request arrives: a queue that grew would show here.
        outboxSizes.push(outbox.length);
        asked.notify();
        ws.send(
          JSON.stringify({
            type: 'error',
            code: 'RateLimited',
            message: 'too many messages',
            retryAfterMs: 20,
          }),
        );
      }),
    );
    await new Promise((resolve) => wss.once('listening', resolve));
    const url = `http://127.0.0.1:${(wss.address() as AddressInfo).port}`;
    const socket = new ZommaClient(url).socket({
      reconnectDelayMs: 5,
      messagesPerS: 20,
      burstMessages: 5,
    });
    outbox = (socket as unknown as { outbox: object[] }).outbox;
    const channels = Array.from({ length: 30 }, (_, i) => `book:BTC-${i}`);
    try {
      for (const channel of channels) socket.subscribe(channel, () => {});
      // Past the first 30 requests every one is a retry: 60 more, each answered RateLimited.
      await asked.until(() => outboxSizes.length >= 90);
      const most = Math.max(...outboxSizes);
      assert.ok(most <= channels.length, `at most one request per channel waits (${most})`);
      const names = outbox.map((r) => (r as { channel: string }).channel);
      assert.equal(new Set(names).size, names.length, 'no channel queued twice');
    } finally {
      socket.close();
      await new Promise((resolve) => wss.close(resolve));
    }
  },
);

test('SDK channels: an ended market is handed to its consumer as the last event and never asked for again, whatever endRefused says', () => {
  for (const endRefused of [true, false]) {
    const sent: { op: string; channel?: string }[] = [];
    const errors: ChannelError[] = [];
    const channels = new Channels(
      (r) => sent.push(r as { op: string; channel?: string }),
      (e) => errors.push(e),
      { endRefused },
    );
    const end = {
      instrument: OPTION,
      reason: 'settled' as const,
      height: 9,
      timeMs: 1_798_358_400_000,
      priceQuote: '61000000000',
      valueQuote: '1000000000',
    };
    // Ended while followed: the server's `ended` message.
    const tickerEvents: RawChannelEvent[] = [];
    channels.open(`ticker:${OPTION}`, (e) => tickerEvents.push(e));
    channels.handle({ type: 'subscribed', channel: `ticker:${OPTION}` });
    channels.handle({ type: 'ended', channel: `ticker:${OPTION}`, seq: 9, data: end });
    assert.deepEqual(tickerEvents, [
      { type: 'ended', channel: `ticker:${OPTION}`, seq: 9, data: end },
    ]);
    assert.equal(channels.get(`ticker:${OPTION}`), undefined);
    // Ended while the connection was down: the refusal of its resubscription.
    const tradeEvents: RawChannelEvent[] = [];
    channels.open(`trades:${OPTION}`, (e) => tradeEvents.push(e));
    channels.handle({ type: 'subscribed', channel: `trades:${OPTION}` });
    channels.resubscribeAll();
    channels.handle({
      type: 'error',
      code: 'MarketEnded',
      message: `${OPTION} settled at height 9`,
      channel: `trades:${OPTION}`,
      ended: end,
    });
    assert.deepEqual(tradeEvents, [
      { type: 'ended', channel: `trades:${OPTION}`, seq: 9, data: end },
    ]);
    assert.equal(channels.get(`trades:${OPTION}`), undefined, `endRefused ${endRefused}`);
    assert.deepEqual(
      errors.map((e) => e.code),
      ['MarketEnded'],
      'the refusal is reported too',
    );
    // Neither is asked for at the next connection.
    sent.length = 0;
    channels.resubscribeAll();
    assert.deepEqual(sent, []);
  }
});

test('a market retired without a settlement ends its channels the same way, without prices', async () => {
  const view = makeView();
  const server = await serve(view, { subscriptionsMax: 2 });
  const client = new RawClient(server.url);
  try {
    await client.opened();
    for (const channel of [`book:${OPTION}`, `ticker:${OPTION}`]) {
      client.send({ op: 'subscribe', channel });
      await client.nth(isSnapshot(channel));
    }
    view.settle(OPTION);
    const height = view.commit().height;
    const end = { instrument: OPTION, reason: 'retired', height, timeMs: view.timeMs };
    for (const channel of [`book:${OPTION}`, `ticker:${OPTION}`]) {
      const last = await client.nth((m) => m.type === 'ended' && m.channel === channel);
      assert.deepEqual(last, { type: 'ended', channel, seq: height, data: end });
    }
    // Both places are free again; the market itself is refused by name.
    client.send({ op: 'subscribe', channel: `trades:${OPTION}` });
    const refused = await client.nth((m) => m.type === 'error');
    assert.deepEqual(refused, {
      type: 'error',
      code: 'MarketEnded',
      message: `${OPTION} was retired at height ${height}; it has no book, trades or ticker any more`,
      channel: `trades:${OPTION}`,
      ended: end,
    });
    client.send({ op: 'subscribe', channel: `book:${PERP}` });
    client.send({ op: 'subscribe', channel: `ticker:${PERP}` });
    await client.nth(isSnapshot(`ticker:${PERP}`));
    assert.equal(client.messages.filter((m) => m.type === 'error').length, 1);
  } finally {
    client.close();
    await server.close();
  }
});

test('SDK channels: a channel unsubscribed and subscribed again before any answer delivers each block once', () => {
  const sent: object[] = [];
  const channels = new Channels(
    (r) => sent.push(r),
    () => {},
  );
  const seen: [string, number][] = [];
  const first = channels.open('blocks', () => {});
  channels.close(first);
  channels.open('blocks', (e) => seen.push([e.type, e.seq]));
  assert.deepEqual(sent, [
    { op: 'subscribe', channel: 'blocks' },
    { op: 'unsubscribe', channel: 'blocks' },
    { op: 'subscribe', channel: 'blocks' },
  ]);
  // The server answers the three in order, a block committed after the first.
  const block = (height: number) => ({
    height,
    timeMs: 0,
    hash: '',
    appHash: '',
    proposer: '',
    txs: [],
  });
  channels.handle({ type: 'subscribed', channel: 'blocks' });
  channels.handle({ type: 'snapshot', channel: 'blocks', seq: 7, data: block(7) });
  channels.handle({ type: 'update', channel: 'blocks', seq: 8, data: block(8) });
  channels.handle({ type: 'unsubscribed', channel: 'blocks' });
  channels.handle({ type: 'subscribed', channel: 'blocks' });
  channels.handle({ type: 'snapshot', channel: 'blocks', seq: 8, data: block(8) });
  channels.handle({ type: 'update', channel: 'blocks', seq: 9, data: block(9) });
  assert.deepEqual(seen, [
    ['snapshot', 7],
    ['update', 8],
    ['update', 9],
  ]);
});
