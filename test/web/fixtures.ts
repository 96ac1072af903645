// A changing market for the dashboard tests: MemoryView (src/api/memory.ts)
// with perpetuals, a future, an option chain, four validators and one account,
// moved one block at a time from a seed. And a server that answers the API and
// the dashboard on one port.

import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { MemoryView } from '../../src/api/memory.ts';
import { startApiServer } from '../../src/api/server.ts';
import { buildVersions } from '../../src/node/build_info.ts';
import type { ApiServer } from '../../src/api/server.ts';
import type {
  InstrumentView,
  OrderView,
  PositionView,
  SubaccountView,
  ValidatorView,
} from '../../src/api/view.ts';
import { Prng } from '../../src/lib/prng.ts';
import { registerDashboard } from '../../src/web/serve.ts';
import type { Bundle } from '../../src/web/build.ts';

export const CHAIN_ID = 'zomma-devnet-1';
export const ACCOUNT = '0x' + 'ab'.repeat(20);
const EXPIRY_MS = 1_798_358_400_000; // 27 Dec 2026 08:00 UTC
const STRIKES_USD = [50_000, 55_000, 60_000, 65_000, 70_000];

function perp(underlying: string, tickSizeQuote: string, lotsPerBase: number): InstrumentView {
  return {
    instrument: `${underlying}-PERPETUAL`,
    kind: 'perpetual',
    underlying,
    tickSizeQuote,
    lotsPerBase,
    minSizeLots: 1,
    maxSizeLots: 1_000_000,
    status: 'trading',
    initialMarginPpm: 50_000,
    maintenanceMarginPpm: 30_000,
    imfStepQuote: '10000000000000',
    imfStepPpm: 10_000,
  };
}

export function instruments(): InstrumentView[] {
  const list: InstrumentView[] = [
    perp('BTC', '500000', 1000),
    perp('ETH', '50000', 100),
    {
      ...perp('BTC', '500000', 1000),
      instrument: 'BTC-27DEC26',
      kind: 'future',
      expiryMs: EXPIRY_MS,
    },
  ];
  for (const usd of STRIKES_USD) {
    for (const type of ['call', 'put'] as const) {
      list.push({
        instrument: `BTC-27DEC26-${usd}-${type === 'call' ? 'C' : 'P'}`,
        kind: 'option',
        underlying: 'BTC',
        tickSizeQuote: '100000',
        lotsPerBase: 10,
        minSizeLots: 1,
        maxSizeLots: 10_000,
        status: 'trading',
        expiryMs: EXPIRY_MS,
        strikeTicks: usd * 10,
        optionType: type,
      });
    }
  }
  return list;
}

export function validators(): ValidatorView[] {
  return [1, 2, 3, 4].map((n) => ({
    publicKey: n.toString(16).padStart(2, '0').repeat(32),
    address: '0x' + (n * 17).toString(16).padStart(2, '0').repeat(20),
    stakeQuote: String(n === 4 ? 5_000_000_000_000 : 10_000_000_000_000),
    votingPower: n === 4 ? 5 : 10,
    jailed: false,
  }));
}

/** Moves the market one block at a time, from a seed. */
export class Market {
  readonly view: MemoryView;
  readonly instruments = instruments();
  readonly validators = validators();
  private readonly prng: Prng;
  /** Per underlying, the index in USD cents. */
  private readonly indexCents = new Map<string, number>([
    ['BTC', 6_000_000],
    ['ETH', 300_000],
  ]);
  private fundingPpm = 40;
  private cashQuote = 250_000_000_000n;
  private orderId = 1;

  constructor(seed: number) {
    this.prng = new Prng(seed);
    this.view = new MemoryView({
      chainId: CHAIN_ID,
      instruments: this.instruments,
      validators: this.validators,
      genesisTimeMs: 1_767_225_600_000,
      build: buildVersions(),
    });
  }

  private walk(cents: number, bps: number): number {
    return cents + Math.trunc((cents * (this.prng.int(2 * bps + 1) - bps)) / 10_000);
  }

  private ticksOf(inst: InstrumentView, cents: number): number {
    return Math.round((cents * 10_000) / Number(inst.tickSizeQuote));
  }

  /** Commits one block: index moves, books are re-quoted around it, a few trades, tickers. */
  step(): number {
    for (const [u, c] of this.indexCents) this.indexCents.set(u, this.walk(c, 15));
    this.fundingPpm += this.prng.int(11) - 5;
    for (const inst of this.instruments) {
      const indexCents = this.indexCents.get(inst.underlying)!;
      if (inst.kind === 'option') this.quoteOption(inst, indexCents);
      else this.quoteLinear(inst, indexCents);
    }
    this.updateAccount();
    return this.view.commit(400 + this.prng.int(400)).height;
  }

  private quoteLinear(inst: InstrumentView, indexCents: number): void {
    const index = this.ticksOf(inst, indexCents);
    const premium = inst.kind === 'future' ? Math.trunc(index / 200) : this.prng.int(21) - 10;
    const mark = index + premium;
    const book = this.view.read().book(inst.instrument, 1_000)!;
    for (const [p] of book.bids) this.view.setLevel(inst.instrument, 'bid', p, 0);
    for (const [p] of book.asks) this.view.setLevel(inst.instrument, 'ask', p, 0);
    const step = Math.max(1, Math.trunc(index / 20_000));
    for (let i = 1; i <= 25; i++) {
      this.view.setLevel(inst.instrument, 'bid', mark - i * step, 1 + this.prng.int(40 * i));
      this.view.setLevel(inst.instrument, 'ask', mark + i * step, 1 + this.prng.int(40 * i));
    }
    for (let n = this.prng.int(4); n > 0; n--) {
      const buy = this.prng.int(2) === 0;
      this.view.addTrade(
        inst.instrument,
        mark + (buy ? step : -step),
        1 + this.prng.int(50),
        buy ? 'buy' : 'sell',
      );
    }
    this.view.setTicker({
      instrument: inst.instrument,
      markTicks: mark,
      indexTicks: index,
      openInterestLots: 120_000 + this.prng.int(5_000),
      ...(inst.kind === 'perpetual' ? { fundingRatePpm: this.fundingPpm } : {}),
    });
  }

  private quoteOption(inst: InstrumentView, indexCents: number): void {
    const strikeCents = (inst.strikeTicks! * Number(inst.tickSizeQuote)) / 10_000;
    const moneyness = (strikeCents - indexCents) / indexCents;
    // A smile: higher IV away from the money, skewed to the downside.
    const ivBp =
      5_000 + Math.round(12_000 * moneyness * moneyness - 1_500 * moneyness) + this.prng.int(60);
    const intrinsic =
      inst.optionType === 'call'
        ? Math.max(0, indexCents - strikeCents)
        : Math.max(0, strikeCents - indexCents);
    const markCents = intrinsic + Math.round(indexCents * 0.06 * (ivBp / 5_000));
    const delta = inst.optionType === 'call' ? 0.5 - moneyness * 2 : -0.5 - moneyness * 2;
    const markTicks = this.ticksOf(inst, markCents);
    // One level each side around the mark, as the devnet's maker quotes options.
    const book = this.view.read().book(inst.instrument, 1_000)!;
    for (const [p] of book.bids) this.view.setLevel(inst.instrument, 'bid', p, 0);
    for (const [p] of book.asks) this.view.setLevel(inst.instrument, 'ask', p, 0);
    const spread = Math.max(1, Math.trunc(markTicks / 100));
    this.view.setLevel(inst.instrument, 'bid', markTicks - spread, 5 + this.prng.int(20));
    this.view.setLevel(inst.instrument, 'ask', markTicks + spread, 5 + this.prng.int(20));
    this.view.setTicker({
      instrument: inst.instrument,
      markTicks,
      indexTicks: this.ticksOf(inst, indexCents),
      openInterestLots: 300 + this.prng.int(50),
      markIv: (ivBp / 10_000).toFixed(4),
      greeks: {
        delta: Math.max(-1, Math.min(1, delta)).toFixed(4),
        gamma: '0.00003',
        vega: (120 - Math.abs(moneyness) * 300).toFixed(2),
        theta: (-35 + Math.abs(moneyness) * 60).toFixed(2),
      },
    });
  }

  private updateAccount(): void {
    this.cashQuote += BigInt(this.prng.int(2_000_000_000)) - 1_000_000_000n;
    const position: PositionView = {
      instrument: 'BTC-PERPETUAL',
      sizeLots: 2_500,
      entryPriceTicks: 118_000,
      unrealizedPnlQuote: String(BigInt(this.prng.int(4_000_000_000)) - 1_000_000_000n),
      realizedPnlQuote: '1250000000',
      fundingQuote: '-3400000',
    };
    const order: OrderView = {
      orderId: this.orderId++,
      instrument: 'ETH-PERPETUAL',
      side: 'sell',
      priceTicks: 64_000,
      sizeLots: 500,
      remainingLots: 350,
      filledLots: 150,
      status: 'open',
      reduceOnly: false,
      clientOrderId: 'mm-1',
    };
    const sub: SubaccountView = {
      subaccount: 0,
      cashQuote: String(this.cashQuote),
      equityQuote: String(this.cashQuote + 4_000_000_000n),
      marginUsedQuote: '30000000000',
      maintenanceMarginQuote: '15000000000',
      marginFreeQuote: String(this.cashQuote + 4_000_000_000n - 30_000_000_000n),
      positions: [position],
      openOrders: [order],
    };
    this.view.setAccount(
      { address: ACCOUNT, subaccounts: [sub] },
      {
        address: ACCOUNT,
        subaccount: 0,
        orders: [order],
        positions: [position],
        fills: [
          {
            tradeId: this.orderId,
            orderId: order.orderId,
            instrument: 'ETH-PERPETUAL',
            side: 'sell',
            priceTicks: 64_000,
            sizeLots: 150,
            feeQuote: '-96000',
            liquidity: 'maker',
            height: this.view.height + 1,
          },
        ],
      },
    );
  }
}

export interface DashboardServer {
  url: string;
  api: ApiServer;
  close(): Promise<void>;
}

/**
 * The API server and the dashboard behind one port. startApiServer listens as
 * it starts, so the dashboard cannot be added to its Fastify instance; a front
 * server routes /ui to a second instance and everything else (upgrades too) to
 * the API's. Once the node registers the dashboard itself this goes away.
 */
export async function startDashboardServer(
  view: MemoryView,
  bundle: Bundle,
): Promise<DashboardServer> {
  // The node's default rate limits: the dashboard must live within them.
  const api = await startApiServer({ view });
  const dash = Fastify({ logger: false });
  registerDashboard(dash, { prefix: '/ui', bundle });
  await dash.ready();
  const front: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    (path === '/ui' || path.startsWith('/ui/') ? dash : api.app).routing(req, res);
  });
  front.on('upgrade', (req, socket, head) => api.app.server.emit('upgrade', req, socket, head));
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  const { port } = front.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    api,
    async close() {
      front.closeAllConnections();
      await new Promise<void>((resolve) => front.close(() => resolve()));
      await api.close();
      await dash.close();
    },
  };
}
