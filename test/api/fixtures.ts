// Shared test fixtures: an in-memory view with two instruments and an
// account, a server on a loopback port, and event-driven waiting (no sleeps).

import { createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import WebSocket from 'ws';
import { keyPairFromSeed } from '../../src/crypto/index.ts';
import { buildTx, placeOrder } from '../../src/exchange/tx/index.ts';
import type { RejectCode } from '../../src/exchange/errors.ts';
import type { SignedTx } from '../../src/exchange/tx/index.ts';
import { MemoryView } from '../../src/api/memory.ts';
import type { MemoryViewOptions } from '../../src/api/memory.ts';
import { startApiServer } from '../../src/api/server.ts';
import { buildVersions } from '../../src/node/build_info.ts';
import type { ApiLimits, ApiServer } from '../../src/api/server.ts';
import type { InstrumentView, SubaccountView } from '../../src/api/view.ts';
import type { WsMessage } from '../../src/api/ws.ts';

export const CHAIN_ID = 'zomma-test-1';
export const PERP = 'BTC-PERPETUAL';
export const OPTION = 'BTC-27DEC26-60000-C';

export const INSTRUMENTS: InstrumentView[] = [
  {
    instrument: PERP,
    kind: 'perpetual',
    underlying: 'BTC',
    tickSizeQuote: '500000',
    lotsPerBase: 1000,
    minSizeLots: 1,
    maxSizeLots: 1_000_000,
    status: 'trading',
  },
  {
    instrument: OPTION,
    kind: 'option',
    underlying: 'BTC',
    tickSizeQuote: '100000',
    lotsPerBase: 10,
    minSizeLots: 1,
    maxSizeLots: 10_000,
    status: 'trading',
    expiryMs: 1_798_358_400_000,
    strikeTicks: 600_000,
    optionType: 'call',
  },
];

export function key(n: number) {
  return keyPairFromSeed(new Uint8Array(32).fill(n));
}

export function subaccount(n: number): SubaccountView {
  return {
    subaccount: n,
    cashQuote: '1000000000',
    equityQuote: '1000500000',
    marginUsedQuote: '50000000',
    maintenanceMarginQuote: '25000000',
    marginFreeQuote: '950500000',
    positions: [
      {
        instrument: PERP,
        sizeLots: -25,
        entryPriceTicks: 200,
        unrealizedPnlQuote: '-500000',
        realizedPnlQuote: '0',
        fundingQuote: '12',
      },
    ],
    openOrders: [
      {
        orderId: 7,
        instrument: PERP,
        side: 'buy',
        priceTicks: 99,
        sizeLots: 10,
        remainingLots: 10,
        filledLots: 0,
        status: 'open',
        reduceOnly: false,
      },
    ],
  };
}

/** A view's `decide` that refuses orders above 100 lots as the exchange would for want of margin. */
export function refuseLargeOrders(tx: SignedTx): { code: RejectCode; message: string } | undefined {
  return tx.action.kind === 'placeOrder' && tx.action.sizeLots > 100
    ? { code: 'InsufficientMargin', message: 'needs more margin' }
    : undefined;
}

/** A signed buy order of key 1 on PERP. */
export function order(nonce: number, chainId = CHAIN_ID, sizeLots = 5) {
  return buildTx({
    chainId,
    key: key(1),
    nonce,
    action: placeOrder({ instrument: PERP, side: 'buy', priceTicks: 199, sizeLots }),
  });
}

export function makeView(options: Partial<MemoryViewOptions> = {}): MemoryView {
  const view = new MemoryView({
    chainId: CHAIN_ID,
    instruments: INSTRUMENTS,
    validators: [
      {
        publicKey: 'ab'.repeat(32),
        address: '0x' + '11'.repeat(20),
        stakeQuote: '1000000',
        votingPower: 10,
        jailed: false,
      },
    ],
    build: buildVersions(),
    ...options,
  });
  view.setTicker({
    instrument: PERP,
    markTicks: 200,
    indexTicks: 201,
    openInterestLots: 500,
    fundingRatePpm: -12,
  });
  view.setTicker({
    instrument: OPTION,
    markTicks: 55,
    indexTicks: 201,
    openInterestLots: 3,
    markIv: '0.65',
    greeks: { delta: '0.51', gamma: '0.00002', vega: '120.5', theta: '-30.25' },
  });
  view.setLevel(PERP, 'bid', 199, 10);
  view.setLevel(PERP, 'bid', 198, 20);
  view.setLevel(PERP, 'ask', 201, 5);
  view.addTrade(PERP, 200, 3, 'buy');
  view.commit();
  return view;
}

/** A hand-driven clock for the rate limits: time moves only when a test says so. */
export class ManualClock {
  ms = 0;
  now = () => this.ms;
}

export async function serve(
  view: MemoryView,
  limits: Partial<ApiLimits> = {},
  clock = new ManualClock(),
): Promise<ApiServer> {
  return startApiServer({ view, limits, nowMs: clock.now });
}

/** Resolves waiters whenever something they watch may have changed. */
export class Signal {
  private waiters: { check: () => boolean; resolve: () => void }[] = [];
  notify(): void {
    this.waiters = this.waiters.filter((w) => {
      if (!w.check()) return true;
      w.resolve();
      return false;
    });
  }
  until(check: () => boolean): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ check, resolve }));
  }
}

/** A raw WebSocket client that records every message from the server. */
export class RawClient {
  readonly messages: WsMessage[] = [];
  readonly signal = new Signal();
  readonly socket: WebSocket;
  closed = false;

  constructor(url: string) {
    this.socket = new WebSocket(url.replace(/^http/, 'ws') + '/v1/ws');
    this.socket.on('message', (raw) => {
      this.messages.push(JSON.parse(raw.toString()) as WsMessage);
      this.signal.notify();
    });
    this.socket.on('close', () => {
      this.closed = true;
      this.signal.notify();
    });
    this.socket.on('error', () => {});
  }

  opened(): Promise<void> {
    if (this.socket.readyState === WebSocket.OPEN) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('error', reject);
    });
  }

  send(request: unknown): void {
    this.socket.send(typeof request === 'string' ? request : JSON.stringify(request));
  }

  /** Waits for the n-th message (0-based) matching `match`, counting from the first. */
  async nth(match: (m: WsMessage) => boolean, n = 0): Promise<WsMessage> {
    await this.signal.until(() => this.messages.filter(match).length > n);
    return this.messages.filter(match)[n]!;
  }

  close(): void {
    this.socket.close();
  }
}

/**
 * A listener that accepts connections and never says a word, as a stopped
 * (SIGSTOP) or hung node's kernel does; `close` ends its connections too.
 */
export async function silentServer(): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const silent = createServer((socket) => void sockets.add(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    },
  };
}
