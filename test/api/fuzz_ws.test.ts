// Seeded fuzzing of the WebSocket: random ops, malformed JSON, binary frames,
// prototype keys, subscribe/unsubscribe storms, oversize messages, blocks in
// between. Every answer must be a known message, an error with a typed code
// and no internals; within a subscription seqs only rise and book deltas link;
// and a client that drops and resumes from its last seq ends with exactly the
// server's state, with no trade missed or repeated.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LocalBook } from '../../src/api/client/index.ts';
import type { MemoryView } from '../../src/api/memory.ts';
import type { ApiServer } from '../../src/api/server.ts';
import type { BookDelta, BookView, TickerView, TradeView } from '../../src/api/view.ts';
import type { WsMessage } from '../../src/api/ws.ts';
import { toHex } from '../../src/lib/bytes.ts';
import { OPTION, PERP, RawClient, makeView, order, serve } from './fixtures.ts';

/** What no message may hold: a stack frame, a source path, a module directory. */
const INTERNALS = /\bat .*\.(ts|js):\d+|node_modules|\/src\/|\/work\/|Error: /;
const MESSAGE_TYPES = new Set([
  'subscribed',
  'unsubscribed',
  'snapshot',
  'update',
  'submitted',
  'error',
  'pong',
]);

/** Limits that let a storm reach the protocol, not the rate limits. */
const WS_LIMITS = {
  messagesPerS: 1e6,
  burstMessages: 1e6,
  ipMessagesPerS: 1e6,
  ipBurstMessages: 1e6,
  ipRequestsPerS: 1e6,
  ipBurstRequests: 1e6,
  accountTxsPerS: 1e6,
  accountBurstTxs: 1e6,
  subscriptionsMax: 6,
  resumeBlocksMax: 4,
  waitCommitMsDefault: 2_000,
};

const ADDRESS = '0x' + '33'.repeat(20);
const CHANNELS = [
  `book:${PERP}`,
  `book:${OPTION}`,
  `trades:${PERP}`,
  `ticker:${PERP}`,
  `ticker:${OPTION}`,
  `account:${ADDRESS}`,
  `account:${ADDRESS.toUpperCase().replace('0X', '0x')}`,
  'blocks',
];
const BAD_CHANNELS = [
  'book:ETH-PERPETUAL',
  'book:',
  'book:btc-perpetual',
  'orders:all',
  'blocks:',
  '__proto__',
  'book:__proto__',
  'account:0x12',
  'x'.repeat(97),
  '',
];

let nonce = 50_000;

/** One block of random changes to the view. */
function churn(view: MemoryView, seed: number): void {
  let x = seed;
  const next = () => (x = (x * 1_103_515_245 + 12_345) % 2_147_483_648);
  for (let i = 0; i < 3; i++) {
    next();
    const side = x % 2 === 0 ? 'bid' : 'ask';
    view.setLevel(
      PERP,
      side,
      side === 'bid' ? 190 + (x % 9) : 201 + (x % 9),
      x % 4 === 0 ? 0 : 1 + (x % 40),
    );
  }
  if (next() % 3 === 0) view.setLevel(OPTION, 'ask', 60 + (x % 5), x % 2 === 0 ? 0 : 2);
  if (next() % 2 === 0)
    view.addTrade(PERP, 195 + (x % 10), 1 + (x % 5), x % 4 < 2 ? 'buy' : 'sell');
  view.commit();
}

const fromSeq = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: fc.nat(40) },
  {
    weight: 1,
    arbitrary: fc.constantFrom<unknown>(-1, 1.5, 2 ** 53, 'NaN', '5', null, true, [], {}),
  },
);

/** One client action, as what it sends (or a block). */
const action = fc.oneof(
  {
    weight: 5,
    arbitrary: fc
      .tuple(fc.constantFrom(...CHANNELS, ...BAD_CHANNELS), fromSeq)
      .map(([channel, seq]) => ({
        kind: 'text' as const,
        text: JSON.stringify({
          op: 'subscribe',
          channel,
          ...(seq !== undefined ? { fromSeq: seq } : {}),
        }),
      })),
  },
  {
    weight: 3,
    arbitrary: fc.constantFrom(...CHANNELS, ...BAD_CHANNELS).map((channel) => ({
      kind: 'text' as const,
      text: JSON.stringify({ op: 'unsubscribe', channel }),
    })),
  },
  { weight: 3, arbitrary: fc.nat().map((seed) => ({ kind: 'block' as const, seed })) },
  {
    weight: 3,
    arbitrary: fc
      .constantFrom(
        '{not json',
        '',
        '[]',
        'null',
        '1',
        '"ping"',
        '{}',
        '{"op":null}',
        '{"op":{"toString":1}}',
        '{"op":"ping","x":1}',
        '{"op":"ping","__proto__":{"op":"subscribe"}}',
        '{"op":"subscribe","channel":"blocks","constructor":{"prototype":{}}}',
        '{"op":"subscribe","channel":["blocks"]}',
        '{"op":"subscribe","channel":"blocks","fromSeq":1e400}',
        '{"op":"subscribe","channel":"blocks","fromSeq":-0}',
        '{"op":"\\u0073ubscribe","channel":"blocks"}',
        '{"op":"\\u0073ubmit","id":"e1","tx":"00"}',
        '{"op":"ping"}{"op":"ping"}',
        '\ufeff{"op":"ping"}',
        `{"op":"ping","x":${'['.repeat(1_000)}${']'.repeat(1_000)}}`,
        '{"op":"UNSUBSCRIBE","channel":"blocks"}',
      )
      .map((text) => ({ kind: 'text' as const, text })),
  },
  {
    weight: 1,
    arbitrary: fc
      .uint8Array({ maxLength: 64 })
      .map((bytes) => ({ kind: 'binary' as const, bytes })),
  },
  {
    weight: 2,
    arbitrary: fc
      .record(
        {
          id: fc.oneof(fc.string({ maxLength: 70 }), fc.nat().map(String), fc.constant(7)),
          tx: fc.oneof(
            fc.constant('valid'),
            fc.constantFrom('', '00', 'zz', '0x', 'ab'.repeat(10)),
            fc.constant(12),
          ),
          encoding: fc.constantFrom('hex', 'base64', 'utf8'),
          wait: fc.constantFrom('none', 'commit', 'later'),
          timeoutMs: fc.oneof(fc.integer({ min: -1, max: 100_000 }), fc.constant(1.5)),
          extra: fc.constant(1),
        },
        { requiredKeys: ['id', 'tx'] },
      )
      .map((r) => ({
        kind: 'text' as const,
        text: JSON.stringify({
          op: 'submit',
          ...r,
          tx: r.tx === 'valid' ? toHex(order(nonce++).bytes) : r.tx,
        }),
      })),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'text' as const, text: '{"op":"ping"}' }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      // Past WS_CONTROL_MESSAGE_BYTES_MAX: closes the connection (1009) unparsed.
      { kind: 'oversize' as const, text: JSON.stringify({ op: 'ping', pad: 'x'.repeat(5_000) }) },
      // Naming "submit", it may be larger, but not past WS_MESSAGE_BYTES_MAX.
      { kind: 'oversize' as const, text: JSON.stringify({ op: 'submit', tx: 'a'.repeat(70_000) }) },
    ),
  },
);

type Action = typeof action extends fc.Arbitrary<infer A> ? A : never;

/** Checks one server message, and the seq order of the subscription it belongs to. */
class Checker {
  /** Per channel as spelled: the last seq of the live subscription (undefined: none live). */
  private readonly last = new Map<string, number>();

  check(m: WsMessage): void {
    const text = JSON.stringify(m);
    assert.ok(MESSAGE_TYPES.has(m.type), `unknown message ${text.slice(0, 200)}`);
    assert.doesNotMatch(text, INTERNALS, `internals in ${text.slice(0, 300)}`);
    if (m.type === 'error') {
      assert.match(m.code, /^[A-Z][A-Za-z]+$/, `code of ${text.slice(0, 200)}`);
      assert.equal(typeof m.message, 'string', `message of ${text.slice(0, 200)}`);
      if (m.status !== undefined) {
        assert.ok(m.status >= 400 && m.status < 500, `status of ${text.slice(0, 200)}`);
      }
      return;
    }
    if (m.type === 'subscribed') return void this.last.set(m.channel, -1);
    if (m.type === 'unsubscribed') return void this.last.delete(m.channel);
    if (m.type !== 'snapshot' && m.type !== 'update') return;
    const last = this.last.get(m.channel);
    assert.ok(last !== undefined, `${m.type} of ${m.channel}, not subscribed`);
    assert.ok(m.seq > last, `${m.channel}: seq ${m.seq} after ${last}`);
    if (m.type === 'update' && m.channel.startsWith('book:') && last >= 0) {
      assert.equal((m.data as BookDelta).prevSeq, last, `${m.channel}: delta on ${last}`);
    }
    this.last.set(m.channel, m.seq);
  }

  /** The connection closed: its subscriptions with it. */
  reset(): void {
    this.last.clear();
  }
}

/** Sends a ping and waits for its pong: the server has answered everything sent before. */
async function settle(client: RawClient): Promise<void> {
  if (client.closed) return;
  const pongs = client.messages.filter((m) => m.type === 'pong').length;
  client.send({ op: 'ping' });
  await client.signal.until(
    () => client.closed || client.messages.filter((m) => m.type === 'pong').length > pongs,
  );
}

async function storm(server: ApiServer, view: MemoryView, actions: Action[]): Promise<void> {
  const checker = new Checker();
  let client = new RawClient(server.url);
  let checked = 0;
  await client.opened();
  try {
    for (const a of actions) {
      if (client.closed) {
        for (const m of client.messages.slice(checked)) checker.check(m);
        checker.reset();
        client = new RawClient(server.url);
        checked = 0;
        await client.opened();
      }
      switch (a.kind) {
        case 'block':
          churn(view, a.seed);
          break;
        case 'binary':
          client.socket.send(a.bytes, { binary: true });
          break;
        case 'oversize': {
          const code = new Promise<number>((resolve) => client.socket.once('close', resolve));
          client.send(a.text);
          assert.equal(await code, 1009, 'an oversize message closes with 1009');
          break;
        }
        default:
          client.send(a.text);
      }
      for (const m of client.messages.slice(checked)) checker.check(m);
      checked = client.messages.length;
    }
    await settle(client);
    for (const m of client.messages.slice(checked)) checker.check(m);
  } finally {
    client.close();
  }
}

/** Waits, one event-loop turn at a time, until the hub has seen every connection close. */
async function hubEmpty(server: ApiServer): Promise<void> {
  for (let turn = 0; server.hub.connectionCount > 0 && turn < 10_000; turn++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.equal(server.hub.connectionCount, 0, 'every closed connection leaves the hub');
}

test('fuzz: any sequence of WebSocket messages gets typed answers in seq order, and the server goes on', async () => {
  const view = makeView({ autoCommit: true });
  const server = await serve(view, WS_LIMITS);
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 1, maxLength: 40 }), (actions) =>
        storm(server, view, actions),
      ),
      { numRuns: 40, seed: 1126, includeErrorInReport: true },
    );
    await hubEmpty(server);
    // After the storm a new client is served as ever.
    const client = new RawClient(server.url);
    try {
      await client.opened();
      client.send({ op: 'subscribe', channel: `book:${PERP}` });
      const snapshot = await client.nth((m) => m.type === 'snapshot');
      assert.ok(snapshot.type === 'snapshot' && snapshot.channel === `book:${PERP}`, 'a snapshot');
      churn(view, 1);
      await client.nth((m) => m.type === 'update');
    } finally {
      client.close();
    }
  } finally {
    await server.close();
  }
});

/** What a client that follows a book, trades and a ticker holds. */
class Follower {
  readonly book = new LocalBook();
  readonly tradeIds: number[] = [];
  ticker: TickerView | undefined;
  readonly lastSeq = new Map<string, number>();
  client: RawClient | undefined;
  private read = 0;

  /** Subscribes every channel, from the last seq held. */
  async connect(url: string): Promise<void> {
    const client = (this.client = new RawClient(url));
    this.read = 0;
    await client.opened();
    for (const channel of [`book:${PERP}`, `trades:${PERP}`, `ticker:${PERP}`]) {
      const fromSeq = this.lastSeq.get(channel);
      client.send({ op: 'subscribe', channel, ...(fromSeq !== undefined ? { fromSeq } : {}) });
    }
    await settle(client);
    this.take();
  }

  /** Applies the messages received since the last look, as a careful client does. */
  take(): void {
    const client = this.client!;
    for (const m of client.messages.slice(this.read)) {
      assert.notEqual(m.type, 'error', `an error: ${JSON.stringify(m)}`);
      if (m.type !== 'snapshot' && m.type !== 'update') continue;
      const last = this.lastSeq.get(m.channel) ?? -1;
      assert.ok(m.seq > last || m.type === 'snapshot', `${m.channel}: ${m.seq} after ${last}`);
      this.lastSeq.set(m.channel, m.seq);
      if (m.channel.startsWith('book:')) {
        if (m.type === 'snapshot') this.book.reset(m.data as BookView & { depth?: number });
        else {
          assert.equal((m.data as BookDelta).prevSeq, this.book.seq, 'a delta on the book held');
          this.book.apply(m.data as BookDelta);
        }
      } else if (m.channel.startsWith('trades:')) {
        // A snapshot's recent trades may repeat ones held: a client drops them by id.
        const seen = new Set(this.tradeIds);
        for (const t of (m.data as { trades: TradeView[] }).trades) {
          if (m.type === 'update') assert.ok(!seen.has(t.tradeId), `trade ${t.tradeId} again`);
          if (!seen.has(t.tradeId)) this.tradeIds.push(t.tradeId);
        }
      } else {
        this.ticker = m.data as TickerView;
      }
    }
    this.read = client.messages.length;
  }
}

test('fuzz: a client that drops and resumes from its last seq holds exactly the server state', async () => {
  const step = fc.oneof(
    { weight: 4, arbitrary: fc.nat().map((seed) => ({ kind: 'block' as const, seed })) },
    { weight: 1, arbitrary: fc.constant({ kind: 'drop' as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'dropAll' as const }) },
    {
      weight: 1,
      arbitrary: fc.nat(6).map((blocks) => ({ kind: 'away' as const, blocks })),
    },
  );
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), async (steps) => {
      const view = makeView();
      const server = await serve(view, WS_LIMITS);
      const follower = new Follower();
      try {
        await follower.connect(server.url);
        for (const s of steps) {
          const client = follower.client!;
          if (s.kind === 'block') {
            churn(view, s.seed);
            await settle(client);
            follower.take();
            continue;
          }
          // The connection goes (closed by the client, or dropped by the server as a
          // slow one is), blocks may pass meanwhile, then it resumes.
          const closed = client.signal.until(() => client.closed);
          if (s.kind === 'dropAll') server.hub.dropAll();
          else client.close();
          await closed;
          follower.take();
          if (s.kind === 'away') for (let b = 0; b < s.blocks; b++) churn(view, b * 7 + 1);
          await follower.connect(server.url);
        }
        await settle(follower.client!);
        follower.take();
        // The book window, the trades and the ticker are the server's, nothing missed or repeated.
        const read = view.read();
        const book = read.book(PERP, 1_000)!;
        assert.deepEqual(follower.book.levels('bids'), book.bids, 'bids');
        assert.deepEqual(follower.book.levels('asks'), book.asks, 'asks');
        assert.equal(follower.book.seq, book.seq, 'book seq');
        const trades = read.trades(PERP, 1_000)!.map((t) => t.tradeId);
        assert.deepEqual(follower.tradeIds, trades, 'every trade once, in order');
        assert.deepEqual(follower.ticker ?? read.ticker(PERP), read.ticker(PERP), 'ticker');
      } finally {
        follower.client?.close();
        await server.close();
      }
    }),
    { numRuns: 25, seed: 2611, includeErrorInReport: true },
  );
});
