// A seeded driver of the WebSocket channels through reconnections: the real
// API server over a read model (ChainView) of an exchange fed block by block
// in this process, random order flow from several accounts in three markets
// (one of which settles), and several SDK sockets following book, trades,
// ticker, account and blocks channels while their connections are cut from
// either side, cut across bursts of blocks (within the resume buffer and past
// it), and their subscriptions churned. After every block, once every client
// has settled (a ping answered after everything it asked for), what each one
// holds is checked against the committed record and the REST answers: the
// book rebuilt from its snapshot and deltas is the REST book at the same seq;
// trades, account updates and blocks came without gaps or duplicates; seqs
// rise as docs/api.md says.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ZommaClient } from '../../src/api/client/index.ts';
import type { ChannelEvent, ZommaSocket } from '../../src/api/client/index.ts';
import type { SocketSubscription } from '../../src/api/client/socket.ts';
import { startApiServer } from '../../src/api/server.ts';
import type { ApiServer } from '../../src/api/server.ts';
import type {
  AccountInterest,
  AccountUpdate,
  AccountView,
  BlockUpdate,
  BookDelta,
  BookView,
  MarketEndView,
  OrderView,
  TickerView,
  TradeView,
} from '../../src/api/view.ts';
import { formatAddress } from '../../src/crypto/index.ts';
import type { BlockResult } from '../../src/exchange/index.ts';
import type { Action, SignedTx } from '../../src/exchange/tx/index.ts';
import { API_TRADES_DEFAULT, WS_BOOK_DEPTH_LEVELS } from '../../src/lib/limits.ts';
import { Prng } from '../../src/lib/prng.ts';
import type { ChainView } from '../../src/node/view.ts';
import { Harness, key, limit } from '../exchange/helpers.ts';
import type { Key } from '../exchange/helpers.ts';
import { btcDailyGenesis, standInView, store } from '../node/view_fixtures.ts';
import type { StoredChain } from '../node/view_fixtures.ts';
import { Signal } from './fixtures.ts';

const USDC = 1_000_000n;
const BTC = 'BTC-PERPETUAL';
const ETH = 'ETH-PERPETUAL';
const FUTURE = 'BTC-2MAR26';
const RESUME_BLOCKS = 6;

/** An exchange listing BTC and ETH perpetuals and one daily BTC future (which settles). */
function harness(): Harness {
  return new Harness(btcDailyGenesis(), { checkInvariants: false });
}

/**
 * The read model over `h`, fed by hand: a stand-in node hands ChainView each
 * block the harness executed, and keeps blocks and results as a node stores
 * them (for GET /v1/block and the blocks channel's snapshot).
 */
function chainOver(h: Harness): {
  view: ChainView;
  feed: (r: BlockResult, txs: SignedTx[]) => void;
} {
  const chain: StoredChain = { blocks: new Map(), results: new Map() };
  const { view, deliver } = standInView(h, { stored: chain });
  const feed = (r: BlockResult, txs: SignedTx[]): void => {
    store(chain, h, r, txs);
    deliver(r, txs);
  };
  return { view, feed };
}

/** What the driver reads of a ZommaSocket's private state to know it has settled. */
interface SocketInternals {
  socket: WebSocket | undefined;
  outbox: object[];
  retryTimer: unknown;
  channels: { map: Map<string, { state: string }> };
}

/** One subscription as the driver follows it: every event its handler got, checked in order. */
interface Follow {
  readonly channel: string;
  readonly kind: string;
  readonly key: string;
  readonly sub: SocketSubscription;
  readonly events: ChannelEvent[];
  checked: number;
  /** The seq of the last event checked (−1: none). */
  seq: number;
  /** The driver's own book from the events (independent of the SDK's LocalBook). */
  bids: Map<number, number>;
  asks: Map<number, number>;
  /** account: open orders by id, positions by instrument, cash, per subaccount. */
  account: Map<
    number,
    { orders: Map<number, OrderView>; positions: Map<string, number>; cash: string }
  >;
  /** trades: ids delivered by updates. */
  tradeIds: Set<number>;
  ticker: TickerView | null;
  ended: MarketEndView | undefined;
}

interface Client {
  readonly name: string;
  readonly socket: ZommaSocket;
  readonly follows: Map<string, Follow>;
  readonly signal: Signal;
  opens: number;
}

test(
  'WebSocket channels recover through dropped connections, bursts and churn: no gap, no duplicate, the REST state',
  { timeout: 120_000 },
  async () => {
    // This seed's churn re-asks the blocks channel several times before any
    // answer, which once delivered a block twice (a snapshot at the held seq).
    const prng = new Prng(6);
    const h = harness();
    const { view, feed } = chainOver(h);
    const traders: Key[] = [0, 1, 2, 3].map((i) => key(`ws-recovery-${i}`));
    const addresses = traders.map((k) => formatAddress(k.address));
    // The committed record, block by block. Its account interest leaves out the
    // last trader, whose updates the node then builds only because the hub asks
    // for them (its stream is checked by the state it rebuilds).
    const recorded = new Set(addresses.slice(0, 3));
    const record = new Map<number, BlockUpdate>();
    const interest: AccountInterest = { any: () => true, has: (a) => recorded.has(a) };
    const stopRecord = view.subscribe((u) => record.set(u.height, u), interest);
    const allTrades = new Map<string, TradeView[]>();

    let server: ApiServer | undefined;
    const clients: Client[] = [];
    const stats = {
      drops: 0,
      closes: 0,
      bursts: 0,
      longBursts: 0,
      churns: 0,
      staggered: 0,
      ended: 0,
    };
    try {
      const commit = (txs: SignedTx[], dtMs = 1_000): BlockUpdate => {
        const r = h.block(txs, dtMs);
        feed(r, txs);
        const u = record.get(h.ex.state.height)!;
        assert.ok(u !== undefined, `block ${h.ex.state.height} was published`);
        for (const t of u.trades) {
          let list = allTrades.get(t.instrument);
          if (list === undefined) allTrades.set(t.instrument, (list = []));
          list.push(t);
        }
        return u;
      };
      for (const k of traders)
        commit([h.tx(k, { kind: 'faucet', amountQuote: 1_000_000n * USDC })]);

      server = await startApiServer({
        view,
        limits: {
          resumeBlocksMax: RESUME_BLOCKS,
          messagesPerS: 1_000_000,
          burstMessages: 1_000_000,
          ipMessagesPerS: 1_000_000,
          ipBurstMessages: 1_000_000,
          ipRequestsPerS: 1_000_000,
          ipBurstRequests: 1_000_000,
        },
        nowMs: () => 0,
      });
      const http = new ZommaClient(server.url);
      const markets = [BTC, ETH, FUTURE];
      let settled: MarketEndView | undefined;

      const open = (c: Client, channel: string): void => {
        const colon = channel.indexOf(':');
        const kind = colon < 0 ? channel : channel.slice(0, colon);
        const follow: Follow = {
          channel,
          kind,
          key: colon < 0 ? '' : channel.slice(colon + 1),
          events: [],
          checked: 0,
          seq: -1,
          bids: new Map(),
          asks: new Map(),
          account: new Map(),
          tradeIds: new Set(),
          ticker: null,
          ended: undefined,
          sub: c.socket.subscribe(channel, (e) => {
            follow.events.push(e);
            c.signal.notify();
          }),
        };
        c.follows.set(channel, follow);
      };
      const channelsOf = (i: number): string[] => [
        `book:${BTC}`,
        `book:${ETH}`,
        `trades:${BTC}`,
        `trades:${ETH}`,
        `ticker:${BTC}`,
        `account:${addresses[i % 4]}`,
        `account:${addresses[3]}`,
        ...(i === 0 ? [] : [`book:${FUTURE}`, `trades:${FUTURE}`, `ticker:${FUTURE}`]),
        'blocks',
      ];
      for (let i = 0; i < 3; i++) {
        const signal = new Signal();
        const c: Client = {
          name: `client ${i}`,
          signal,
          follows: new Map(),
          opens: 0,
          socket: http.socket({
            heartbeatMs: 0,
            reconnectDelayMs: 1,
            reconnectDelayMsMax: 4,
            // Requests trickle out, so that blocks land between a reconnect's resubscriptions.
            messagesPerS: 2_000,
            burstMessages: 3,
            onStatus: (s) => {
              if (s.type === 'open') c.opens++;
              signal.notify();
            },
          }),
        };
        clients.push(c);
        for (const channel of channelsOf(i)) open(c, channel);
      }

      const internals = (c: Client) => c.socket as unknown as SocketInternals;
      /** A ping answered after everything asked for: what the client holds is the server's now. */
      const roundTrip = (ws: WebSocket): Promise<void> =>
        new Promise((resolve) => {
          const done = () => {
            ws.off('pong', done);
            ws.off('close', done);
            resolve();
          };
          ws.on('pong', done);
          ws.on('close', done);
          ws.ping();
        });
      const settle = async (c: Client): Promise<void> => {
        for (;;) {
          const s = internals(c);
          const ws = s.socket;
          if (ws === undefined || ws.readyState !== WebSocket.OPEN) {
            const opens = c.opens;
            await c.signal.until(() => c.opens > opens || s.socket?.readyState === WebSocket.OPEN);
            continue;
          }
          await roundTrip(ws);
          const quiet =
            s.socket === ws &&
            ws.readyState === WebSocket.OPEN &&
            s.outbox.length === 0 &&
            s.retryTimer === undefined &&
            [...s.channels.map.values()].every((ch) => ch.state === 'live');
          if (quiet) {
            // One more round trip: answers to what the last one saw sent.
            await roundTrip(ws);
            if (s.socket === ws && s.outbox.length === 0) return;
          }
          if (s.outbox.length > 0) await new Promise((resolve) => setImmediate(resolve));
        }
      };

      const fail = (c: Client, f: Follow, what: string): never =>
        assert.fail(`${c.name} ${f.channel}: ${what}`);

      /** Checks the events `f` got since the last look against the record. */
      const checkEvents = (c: Client, f: Follow): void => {
        for (; f.checked < f.events.length; f.checked++) {
          const e = f.events[f.checked]!;
          const prev = f.seq;
          if (f.ended !== undefined) fail(c, f, `an event after ended: ${e.type} ${e.seq}`);
          if (e.type === 'ended') {
            const end = e.data as MarketEndView;
            assert.deepEqual(end, settled, `${c.name} ${f.channel}: the end is the settlement`);
            f.ended = end;
            continue;
          }
          if (e.type === 'update' && e.seq <= prev) fail(c, f, `update ${e.seq} not above ${prev}`);
          if (e.type === 'snapshot' && e.seq < prev) fail(c, f, `snapshot ${e.seq} below ${prev}`);
          const u = record.get(e.seq);
          switch (f.kind) {
            case 'book': {
              if (e.type === 'snapshot') {
                const b = e.data as BookView & { depth: number };
                assert.equal(b.depth, WS_BOOK_DEPTH_LEVELS);
                f.bids = new Map(b.bids);
                f.asks = new Map(b.asks);
              } else {
                const d = e.data as BookDelta;
                if (d.prevSeq !== prev)
                  fail(c, f, `delta ${d.seq} on ${d.prevSeq}, holding ${prev}`);
                const truth = u?.books.find((x) => x.instrument === f.key);
                assert.deepEqual(d, truth, `${c.name} ${f.channel}: delta ${e.seq} is the block's`);
                for (const [levels, side] of [
                  [d.bids, f.bids],
                  [d.asks, f.asks],
                ] as const) {
                  for (const [p, s] of levels) {
                    if (s === 0) side.delete(p);
                    else side.set(p, s);
                  }
                }
              }
              break;
            }
            case 'trades': {
              const trades = (e.data as { trades: TradeView[] }).trades;
              if (e.type === 'snapshot') {
                const all = (allTrades.get(f.key) ?? []).filter((t) => t.height <= e.seq);
                assert.deepEqual(
                  trades,
                  all.slice(-API_TRADES_DEFAULT),
                  `${c.name} ${f.channel}: snapshot ${e.seq} is the recent trades`,
                );
              } else {
                for (let hgt = prev + 1; hgt < e.seq; hgt++) {
                  if (record.get(hgt)!.trades.some((t) => t.instrument === f.key))
                    fail(c, f, `trades of block ${hgt} missed (${prev} → ${e.seq})`);
                }
                assert.deepEqual(
                  trades,
                  u!.trades.filter((t) => t.instrument === f.key),
                  `${c.name} ${f.channel}: update ${e.seq} is the block's trades`,
                );
                for (const t of trades) {
                  if (f.tradeIds.has(t.tradeId)) fail(c, f, `trade ${t.tradeId} twice`);
                  f.tradeIds.add(t.tradeId);
                }
              }
              break;
            }
            case 'ticker': {
              if (e.type === 'update') {
                for (let hgt = prev + 1; hgt < e.seq; hgt++) {
                  if (record.get(hgt)!.tickers.some((t) => t.instrument === f.key))
                    fail(c, f, `ticker of block ${hgt} missed (${prev} → ${e.seq})`);
                }
                assert.deepEqual(
                  e.data,
                  u!.tickers.find((t) => t.instrument === f.key),
                  `${c.name} ${f.channel}: update ${e.seq} is the block's ticker`,
                );
              }
              f.ticker = e.data as TickerView;
              break;
            }
            case 'account': {
              if (e.type === 'snapshot') {
                const a = e.data as AccountView | null;
                f.account.clear();
                for (const s of a?.subaccounts ?? []) {
                  f.account.set(s.subaccount, {
                    orders: new Map(s.openOrders.map((o) => [o.orderId, o])),
                    positions: new Map(s.positions.map((p) => [p.instrument, p.sizeLots])),
                    cash: s.cashQuote,
                  });
                }
              } else {
                const subs = (e.data as { subaccounts: AccountUpdate[] }).subaccounts;
                if (recorded.has(f.key)) {
                  for (let hgt = prev + 1; hgt < e.seq; hgt++) {
                    if (record.get(hgt)!.accounts.some((a) => a.address === f.key))
                      fail(c, f, `account update of block ${hgt} missed (${prev} → ${e.seq})`);
                  }
                  assert.deepEqual(
                    subs,
                    u!.accounts.filter((a) => a.address === f.key),
                    `${c.name} ${f.channel}: update ${e.seq} is the block's`,
                  );
                }
                for (const s of subs) {
                  let held = f.account.get(s.subaccount);
                  if (held === undefined) {
                    held = { orders: new Map(), positions: new Map(), cash: '0' };
                    f.account.set(s.subaccount, held);
                  }
                  for (const o of s.orders) {
                    if (o.status === 'open') held.orders.set(o.orderId, o);
                    else held.orders.delete(o.orderId);
                  }
                  // The positions held after the block, all of them: one closed is absent.
                  held.positions = new Map(s.positions.map((p) => [p.instrument, p.sizeLots]));
                  if (s.cashQuote !== undefined) held.cash = s.cashQuote;
                }
              }
              break;
            }
            case 'blocks': {
              if (e.type === 'snapshot' && e.seq === prev)
                fail(c, f, `block ${e.seq} twice (a snapshot)`);
              // Updates follow one another block by block; only a snapshot may skip.
              if (e.type === 'update' && prev >= 0 && e.seq !== prev + 1)
                fail(c, f, `blocks ${prev + 1}..${e.seq - 1} missed`);
              assert.deepEqual(e.data, u!.block, `${c.name} ${f.channel}: block ${e.seq}`);
              break;
            }
          }
          f.seq = e.seq;
        }
      };

      /** After everything settled: each follow holds the server's state at this height. */
      const checkCaughtUp = async (
        c: Client,
        f: Follow,
        books: Map<string, BookView>,
      ): Promise<void> => {
        const height = h.ex.state.height;
        const read = view.read();
        if (
          f.kind !== 'account' &&
          f.kind !== 'blocks' &&
          settled !== undefined &&
          f.key === settled.instrument
        ) {
          if (f.ended === undefined) fail(c, f, 'the market settled, and no ended event came');
          return;
        }
        if (f.seq < 0) fail(c, f, 'nothing delivered');
        switch (f.kind) {
          case 'book': {
            const rest = books.get(f.key)!;
            assert.equal(f.seq, rest.seq, `${c.name} ${f.channel}: seq is the REST book's`);
            const held = {
              bids: [...f.bids].sort((a, b) => b[0] - a[0]),
              asks: [...f.asks].sort((a, b) => a[0] - b[0]),
            };
            assert.deepEqual(
              held,
              { bids: rest.bids, asks: rest.asks },
              `${c.name} ${f.channel} at ${height}`,
            );
            const local = f.events.at(-1)?.book;
            assert.deepEqual(
              { bids: local?.levels('bids'), asks: local?.levels('asks') },
              { bids: rest.bids, asks: rest.asks },
              `${c.name} ${f.channel}: the SDK's local book at ${height}`,
            );
            break;
          }
          case 'trades':
            for (let hgt = f.seq + 1; hgt <= height; hgt++) {
              if (record.get(hgt)!.trades.some((t) => t.instrument === f.key))
                fail(c, f, `trades of block ${hgt} not delivered (holding ${f.seq})`);
            }
            break;
          case 'ticker':
            // An update comes only with a block that changed the ticker: its height and time alone do not.
            assert.deepEqual(
              { ...f.ticker, height: 0, timeMs: 0 },
              { ...read.ticker(f.key), height: 0, timeMs: 0 },
              `${c.name} ${f.channel} at ${height}`,
            );
            break;
          case 'blocks':
            assert.equal(f.seq, height, `${c.name} blocks: the last block`);
            break;
          case 'account': {
            const rest = await http.account(f.key).catch(() => null);
            const want = new Map(
              (rest?.subaccounts ?? []).map((s) => [
                s.subaccount,
                {
                  orders: s.openOrders.map((o) => o.orderId).sort((a, b) => a - b),
                  positions: s.positions
                    .filter((p) => p.sizeLots !== 0)
                    .map((p) => [p.instrument, p.sizeLots]),
                  cash: funded() ? '' : s.cashQuote,
                },
              ]),
            );
            const held = new Map(
              [...f.account].map(([n, s]) => [
                n,
                {
                  orders: [...s.orders.keys()].sort((a, b) => a - b),
                  positions: [...s.positions].filter(([, size]) => size !== 0),
                  cash: funded() ? '' : s.cash,
                },
              ]),
            );
            for (const s of held.values()) s.positions.sort((a, b) => (a[0] < b[0] ? -1 : 1));
            for (const s of want.values()) s.positions.sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
            assert.deepEqual(
              held,
              want,
              `${c.name} ${f.channel}: rebuilt state at ${height} (seq ${f.seq})`,
            );
            break;
          }
        }
      };

      const funded = (): boolean =>
        [...record.values()].some((u) => u.block.events?.some((e) => e.type === 'funding'));
      const settleAndCheck = async (): Promise<void> => {
        await Promise.all(clients.map(settle));
        const books = new Map<string, BookView>();
        for (const m of markets) {
          if (settled?.instrument === m) continue;
          books.set(m, await http.book(m, WS_BOOK_DEPTH_LEVELS));
        }
        for (const c of clients) {
          for (const f of c.follows.values()) {
            checkEvents(c, f);
            await checkCaughtUp(c, f, books);
          }
        }
      };

      /** Random order flow: places around the mid (some crossing), cancels, amends, deposits, transfers. */
      const flow = (): SignedTx[] => {
        const txs: SignedTx[] = [];
        const read = view.read();
        for (let i = prng.int(6); i > 0; i--) {
          const t = prng.int(traders.length);
          const k = traders[t]!;
          const live = markets.filter((m) => settled?.instrument !== m);
          const m = prng.pick(live);
          const roll = prng.int(20);
          const orders = (read.account(addresses[t]!)?.subaccounts ?? [])
            .filter((s) => s.subaccount === 0)
            .flatMap((s) => s.openOrders);
          let action: Action;
          if (roll < 4 && orders.length > 0) {
            const o = prng.pick(orders);
            action = { kind: 'cancel', instrument: o.instrument, orderId: o.orderId };
          } else if (roll < 6 && orders.length > 0) {
            const o = prng.pick(orders);
            action = {
              kind: 'amend',
              instrument: o.instrument,
              orderId: o.orderId,
              priceTicks: o.priceTicks + (o.side === 'buy' ? -1 : 1) * prng.int(3),
            };
          } else if (roll === 6) {
            action = { kind: 'cancelAll', instrument: m };
          } else if (roll === 7) {
            action = { kind: 'faucet', amountQuote: BigInt(1 + prng.int(1_000)) * USDC };
          } else if (roll === 8) {
            action = {
              kind: 'transfer',
              fromSubaccount: 0,
              toSubaccount: 1,
              amountQuote: BigInt(1 + prng.int(100)) * USDC,
            };
          } else {
            const mid = h.ex.state.marketByName.get(m)!.markTicks;
            const side = prng.int(2) === 0 ? 'buy' : 'sell';
            // Mostly resting a few ticks from the mark, sometimes crossing it.
            const offset = prng.int(8) - 3;
            const priceTicks = side === 'buy' ? mid - offset : mid + offset;
            action = limit(m, side, priceTicks, 1 + prng.int(4));
          }
          txs.push(h.tx(k, action));
        }
        return txs;
      };

      const pendingReopen: { c: Client; channel: string; atStep: number }[] = [];
      const serverConnections = (): { socket: WebSocket }[] => [
        ...(server!.hub as unknown as { connections: Set<{ socket: WebSocket }> }).connections,
      ];

      await settleAndCheck();
      const STEPS = 140;
      const SETTLE_AT = 100;
      for (let step = 0; step < STEPS; step++) {
        // Faults first, then one or more blocks.
        const c = prng.pick(clients);
        const fault = prng.int(100);
        let blocks = 1;
        let staggered = false;
        if (fault < 8) {
          // The server cuts a connection (as for a slow client): no close frame.
          // Its end on the server is the one whose peer port is the client's own.
          const ws = internals(c).socket;
          const conn = serverConnections().find(
            (x) =>
              ws !== undefined &&
              (x.socket as unknown as { _socket?: { remotePort?: number } })._socket?.remotePort ===
                (ws as unknown as { _socket?: { localPort?: number } })._socket?.localPort,
          );
          if (conn !== undefined) {
            conn.socket.terminate();
            stats.drops++;
          }
        } else if (fault < 14) {
          // The client's own connection closes (cleanly or not); the socket reconnects.
          const ws = internals(c).socket;
          if (ws !== undefined) {
            if (prng.int(2) === 0) ws.close();
            else ws.terminate();
            stats.closes++;
          }
        }
        if ((fault >= 14 && fault < 18) || (fault >= 8 && fault < 14 && prng.int(3) === 0)) {
          // Subscribe/unsubscribe churn, also while the connection is remade: one
          // channel goes and comes back, now or some blocks later; sometimes
          // several times over before any answer came.
          const live = [...c.follows.values()].filter((f) => f.ended === undefined);
          if (live.length > 0) {
            const channel = prng.pick(live).channel;
            for (let times = 1 + prng.int(3); times > 0; times--) {
              const f = c.follows.get(channel)!;
              checkEvents(c, f);
              f.sub.unsubscribe();
              c.follows.delete(channel);
              if (times > 1 || prng.int(3) > 0) open(c, channel);
              else pendingReopen.push({ c, channel, atStep: step + 1 + prng.int(5) });
              stats.churns++;
            }
          }
        }
        if (fault >= 18 && fault < 22) {
          // A burst of blocks in one turn: a client cut first must resume over all of them.
          // Every client at once, sometimes: then nobody follows the accounts while the blocks pass.
          if (prng.int(3) === 0) server.hub.dropAll();
          else internals(c).socket?.terminate();
          const long = prng.int(2) === 0;
          blocks = long ? RESUME_BLOCKS + 1 + prng.int(4) : 2 + prng.int(RESUME_BLOCKS - 2);
          if (long) stats.longBursts++;
          else stats.bursts++;
        } else if (fault >= 22 && fault < 28) {
          // Blocks across turns while a cut client reconnects and resubscribes.
          internals(c).socket?.terminate();
          staggered = true;
          blocks = 2 + prng.int(4);
          stats.staggered++;
        }
        for (const p of pendingReopen.filter((p) => p.atStep <= step)) {
          pendingReopen.splice(pendingReopen.indexOf(p), 1);
          if (!p.c.follows.has(p.channel)) open(p.c, p.channel);
        }
        for (let b = 0; b < blocks; b++) {
          if (step === SETTLE_AT && b === 0 && settled === undefined) {
            // The future settles, hours passing in a few blocks, while one
            // client is cut: it learns of it from its resubscription's refusal.
            internals(clients[1]!).socket?.terminate();
            for (let i = 0; i < 24 && settled === undefined; i++) {
              const u = commit([], 60 * 60_000);
              settled = u.ended.find((e) => e.instrument === FUTURE);
            }
            assert.ok(settled !== undefined, 'the future settled');
            stats.ended++;
            continue;
          }
          commit(flow());
          if (staggered) await new Promise((resolve) => setImmediate(resolve));
        }
        await settleAndCheck();
      }
      // Every reopened channel has come back and caught up.
      for (const p of pendingReopen.splice(0))
        if (!p.c.follows.has(p.channel)) open(p.c, p.channel);
      await settleAndCheck();
      const trades = [...allTrades.values()].reduce((n, l) => n + l.length, 0);
      assert.ok(trades > 50, `the flow traded (${trades} trades)`);
      assert.ok(
        stats.drops > 0 && stats.closes > 0 && stats.longBursts > 0 && stats.bursts > 0,
        `every fault happened: ${JSON.stringify(stats)}`,
      );
      assert.ok(
        settled !== undefined && stats.churns > 0 && stats.staggered > 0,
        `churn and settlement happened: ${JSON.stringify(stats)}`,
      );
    } finally {
      for (const c of clients) c.socket.close();
      await server?.close();
      stopRecord();
      view.close();
    }
  },
);
