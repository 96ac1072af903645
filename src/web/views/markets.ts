// Markets: every instrument with its ticker; for one instrument a live depth
// chart and ladder from the book channel, recent trades, mark, index and
// funding; for an option expiry, the chain with mark IV and greeks per strike
// and the smile as a chart.

import type { InstrumentView, TickerView, TradeView } from '../../api/view.ts';
import type { LocalBook } from '../feed.ts';
import { follow, load } from '../app.ts';
import type { App, Scope, View } from '../app.ts';
import { legend, lineChart } from '../chart.ts';
import { h, kpi, panel, pill, table } from '../dom.ts';
import type { Child, El } from '../dom.ts';
import {
  formatClock,
  formatDate,
  formatDecimal,
  formatInt,
  formatPercentOf,
  formatPpm,
  formatPrice,
  formatQuote,
  formatSize,
  priceOf,
  sizeOf,
} from '../format.ts';

/** Ticker subscriptions one view may hold (the server allows WS_SUBSCRIPTIONS_MAX per connection). */
const TICKERS_FOLLOWED_MAX = 40;
const LADDER_LEVELS = 12;
const DEPTH_LEVELS = 40;
const TRADES_SHOWN = 24;
/** How often option tickers the feed did not refresh are read over REST, and how many per round. */
const CHAIN_REFRESH_MS = 2_000;
const CHAIN_REFRESH_MAX = 20;
/** How often the list checks the instruments the header re-reads (listings, settlements, halts). */
const LIST_REFRESH_MS = 1_000;

export function statusPill(i: InstrumentView): El {
  if (i.status === 'trading') return pill('trading', 'ok');
  if (i.status === 'halted') return pill('halted', 'bad');
  // A call auction ends at a block time: say when, so an operator knows how long it lasts.
  const until = i.auctionEndMs === undefined ? '' : ` until ${formatClock(i.auctionEndMs)}`;
  return pill(`auction${until}`, 'warn');
}

/**
 * The instruments still trading or about to: settled ones are gone from the
 * API's list, and one past its expiry only waits for its settlement block.
 */
export function liveInstruments(app: App): InstrumentView[] {
  const nowMs = app.status?.lastBlockTimeMs ?? 0;
  return app.instruments.filter((i) => i.expiryMs === undefined || i.expiryMs > nowMs);
}

/** One underlying's instruments: perpetuals, then each expiry (its futures and its option chain). */
interface UnderlyingGroup {
  underlying: string;
  perpetuals: InstrumentView[];
  expiries: { expiryMs: number; futures: InstrumentView[]; options: InstrumentView[] }[];
}

/** Groups by underlying (in listing order: the genesis lists BTC first), expiries ascending. */
export function groupInstruments(instruments: readonly InstrumentView[]): UnderlyingGroup[] {
  const groups = new Map<string, UnderlyingGroup>();
  for (const i of instruments) {
    let g = groups.get(i.underlying);
    if (g === undefined)
      groups.set(i.underlying, (g = { underlying: i.underlying, perpetuals: [], expiries: [] }));
    if (i.kind === 'perpetual' || i.expiryMs === undefined) {
      g.perpetuals.push(i);
      continue;
    }
    let e = g.expiries.find((x) => x.expiryMs === i.expiryMs);
    if (e === undefined) g.expiries.push((e = { expiryMs: i.expiryMs, futures: [], options: [] }));
    (i.kind === 'option' ? e.options : e.futures).push(i);
  }
  for (const g of groups.values()) g.expiries.sort((a, b) => a.expiryMs - b.expiryMs);
  return [...groups.values()];
}

function chainHref(underlying: string, expiryMs: number): string {
  return `#/markets/chain/${underlying}/${expiryMs}`;
}

function sideCell(side: 'buy' | 'sell', text: string): El {
  return h('td', { class: `num ${side === 'buy' ? 'buy' : 'sell'}` }, text);
}

export const marketsView: View = (root, app, scope, args) => {
  void app.loadInstruments().then((instruments) => {
    if (!scope.alive) return;
    if (args[0] === 'chain' && args[1] !== undefined && args[2] !== undefined) {
      chainView(root, app, scope, instruments, args[1], Number(args[2]));
      return;
    }
    const selected = args[0] ?? instruments.find((i) => i.kind !== 'option')?.instrument;
    overview(root, app, scope, selected);
  });
};

const LIST_HEADERS = [
  { label: 'Instrument' },
  { label: 'Expiry' },
  { label: 'Status' },
  { label: 'Mark', num: true },
  { label: 'Index', num: true },
  { label: 'Basis', num: true },
  { label: 'Funding / interval', num: true },
  { label: 'Bid', num: true },
  { label: 'Ask', num: true },
  { label: 'Last', num: true },
  { label: 'Open interest', num: true },
];

/** A row's cells: strings get a plain (or numeric) cell, a whole cell stays as given. */
function cells(row: Child[]): El[] {
  return row.map((cell, n) =>
    typeof cell === 'object' && cell !== null && cell.tagName === 'TD'
      ? cell
      : h('td', LIST_HEADERS[n]?.num ? { class: 'num' } : {}, cell),
  );
}

function groupRow(text: string): El {
  return h('tr', { class: 'group' }, h('td', { colspan: LIST_HEADERS.length }, text));
}

/** An expiry's option chain in the list: one link, its size, and any option not trading. */
function chainRow(underlying: string, expiryMs: number, options: InstrumentView[]): El {
  const strikes = new Set(options.map((o) => o.strikeTicks)).size;
  const flagged = options.filter((o) => o.status !== 'trading');
  return h(
    'tr',
    { class: 'chain-link' },
    h(
      'td',
      { colspan: LIST_HEADERS.length },
      h(
        'a',
        { class: 'chip', href: chainHref(underlying, expiryMs) },
        `${underlying} ${formatDate(expiryMs)} options`,
      ),
      h('span', { class: 'muted' }, ` ${options.length} (${strikes} strikes, calls and puts)`),
      ...flagged.map((o) => h('span', {}, ' ', o.instrument, ' ', statusPill(o))),
    ),
  );
}

function overview(root: El, app: App, scope: Scope, selected: string | undefined): void {
  const tickers = new Map<string, TickerView>();
  const followed = new Set<string>();
  const list = h('div');
  const detail = h('div', { class: 'detail' });
  root.replaceChildren(panel('Instruments', list), detail);
  const linearRow = (i: InstrumentView): El[] => {
    const t = tickers.get(i.instrument);
    const basis =
      t && t.indexTicks > 0
        ? (((t.markTicks - t.indexTicks) * 10_000) / t.indexTicks).toFixed(1) + ' bp'
        : '—';
    return cells([
      h(
        'td',
        {},
        h(
          'a',
          { href: `#/markets/${i.instrument}`, class: i.instrument === selected ? 'sel' : '' },
          i.instrument,
        ),
      ),
      i.expiryMs === undefined ? 'perpetual' : formatDate(i.expiryMs),
      h('td', {}, statusPill(i)),
      formatPrice(t?.markTicks || undefined, i),
      formatPrice(t?.indexTicks || undefined, i),
      basis,
      i.kind === 'perpetual' ? formatPpm(t?.fundingRatePpm) : '',
      h('td', { class: 'num buy' }, formatPrice(t?.bestBidTicks, i)),
      h('td', { class: 'num sell' }, formatPrice(t?.bestAskTicks, i)),
      formatPrice(t?.lastTradeTicks, i),
      `${formatSize(t?.openInterestLots, i)} ${i.underlying}`,
    ]);
  };
  const renderList = () => {
    const rows: El[] = [];
    for (const g of groupInstruments(liveInstruments(app))) {
      rows.push(groupRow(g.underlying));
      for (const i of g.perpetuals) rows.push(h('tr', {}, ...linearRow(i)));
      for (const e of g.expiries) {
        rows.push(groupRow(`${g.underlying} · ${formatDate(e.expiryMs)}`));
        for (const i of e.futures) rows.push(h('tr', {}, ...linearRow(i)));
        if (e.options.length > 0) rows.push(chainRow(g.underlying, e.expiryMs, e.options));
      }
    }
    list.replaceChildren(
      h(
        'table',
        { class: 'grid grouped', id: 'instruments' },
        h(
          'thead',
          {},
          h('tr', {}, ...LIST_HEADERS.map((c) => h('th', c.num ? { class: 'num' } : {}, c.label))),
        ),
        h('tbody', {}, ...rows),
      ),
    );
  };
  /** Perpetuals and futures have a ticker row each; options have their chain page. */
  const followTickers = () => {
    for (const i of liveInstruments(app)) {
      if (i.kind === 'option' || followed.has(i.instrument)) continue;
      if (followed.size >= TICKERS_FOLLOWED_MAX) break;
      followed.add(i.instrument);
      follow(app, scope, `ticker:${i.instrument}`, (event) => {
        if (event.data !== null) tickers.set(i.instrument, event.data as TickerView);
        renderList();
      });
    }
  };
  // Listings, settlements, halts and auctions change the list, which the header re-reads.
  let shown = '';
  scope.every(LIST_REFRESH_MS, () => {
    const key = liveInstruments(app)
      .map((i) => `${i.instrument}:${i.status}:${i.auctionEndMs ?? ''}`)
      .join(',');
    if (key === shown) return;
    shown = key;
    followTickers();
    renderList();
  });
  const inst = selected === undefined ? undefined : app.instrument(selected);
  if (inst !== undefined) instrumentDetail(detail, app, scope, inst);
}

/**
 * A market's risk parameters as GET /v1/instruments has them now (governance
 * may change them: read again at each render): margin for perpetuals and
 * futures (options are margined by scenario and have none), and for any
 * market its price band and open-interest cap, "none" where it has neither.
 */
function riskKpis(inst: InstrumentView): El[] {
  const items: El[] = [];
  if (inst.initialMarginPpm !== undefined) {
    items.push(kpi('Initial margin', formatPpm(inst.initialMarginPpm), 'kpi-initial-margin'));
  }
  if (inst.maintenanceMarginPpm !== undefined) {
    items.push(
      kpi('Maintenance margin', formatPpm(inst.maintenanceMarginPpm), 'kpi-maintenance-margin'),
    );
  }
  if (inst.imfStepPpm !== undefined && inst.imfStepQuote !== undefined) {
    items.push(
      kpi(
        'Initial margin step',
        `+${formatPpm(inst.imfStepPpm)} per ${formatQuote(inst.imfStepQuote, 0)} USD`,
        'kpi-imf-step',
      ),
    );
  }
  items.push(
    kpi(
      'Price band',
      inst.priceBandPpm === undefined ? 'none' : `±${formatPpm(inst.priceBandPpm)}`,
      'kpi-price-band',
    ),
    kpi(
      'Open interest cap',
      inst.openInterestCapLots === undefined
        ? 'none'
        : `${formatSize(inst.openInterestCapLots, inst)} ${inst.underlying}`,
      'kpi-oi-cap',
    ),
  );
  return items;
}

function instrumentDetail(root: El, app: App, scope: Scope, inst: InstrumentView): void {
  const head = h('div', { class: 'kpis' });
  const depth = h('div');
  const ladder = h('div');
  const trades = h('div');
  root.replaceChildren(
    h('h1', { class: 'instrument-title' }, inst.instrument, ' ', statusPill(inst)),
    head,
    h(
      'div',
      { class: 'cols-3' },
      panel('Depth', depth),
      panel('Order book', ladder),
      panel('Recent trades', trades),
    ),
  );
  let ticker: TickerView | undefined;
  const recent: TradeView[] = [];
  const quote = `USD`;

  const renderHead = () => {
    const t = ticker;
    const items = [
      kpi('Mark', `${formatPrice(t?.markTicks || undefined, inst)} ${quote}`, 'kpi-mark'),
      kpi('Index', `${formatPrice(t?.indexTicks || undefined, inst)} ${quote}`, 'kpi-index'),
      kpi('Last', `${formatPrice(t?.lastTradeTicks, inst)} ${quote}`, 'kpi-last'),
      kpi('Open interest', `${formatSize(t?.openInterestLots, inst)} ${inst.underlying}`),
    ];
    if (inst.kind === 'perpetual')
      items.push(kpi('Funding / interval', formatPpm(t?.fundingRatePpm), 'kpi-funding'));
    if (inst.kind === 'option') {
      items.push(
        kpi('Mark IV', formatPercentOf(t?.markIv)),
        kpi('Delta', formatDecimal(t?.greeks?.delta, 4)),
      );
    }
    if (inst.expiryMs !== undefined) items.push(kpi('Expiry', formatDate(inst.expiryMs)));
    items.push(...riskKpis(app.instrument(inst.instrument) ?? inst));
    head.replaceChildren(...items);
  };

  const renderBook = (book: LocalBook) => {
    const bids = book.levels('bids', DEPTH_LEVELS);
    const asks = book.levels('asks', DEPTH_LEVELS);
    const cumulative = (levels: [number, number][]) => {
      let sum = 0;
      return levels.map(
        ([p, q]) => [priceOf(p, inst), (sum += sizeOf(q, inst))] as [number, number],
      );
    };
    const bidPts = cumulative(bids).reverse();
    const askPts = cumulative(asks);
    const mid =
      bids[0] && asks[0] ? (priceOf(bids[0][0], inst) + priceOf(asks[0][0], inst)) / 2 : undefined;
    depth.replaceChildren(
      lineChart(
        [
          { label: 'bids', color: 'var(--buy)', points: bidPts, area: true, step: 'before' },
          { label: 'asks', color: 'var(--sell)', points: askPts, area: true, step: 'after' },
        ],
        {
          height: 260,
          formatX: (x) => x.toLocaleString('en-US', { maximumFractionDigits: 2 }),
          formatY: (y) => y.toLocaleString('en-US', { maximumFractionDigits: 2 }),
          yFromZero: true,
          empty: 'the book is empty',
          ...(mid !== undefined ? { markX: mid } : {}),
        },
      ),
      legend([
        { label: `bids (cumulative ${inst.underlying})`, color: 'var(--buy)' },
        { label: `asks (cumulative ${inst.underlying})`, color: 'var(--sell)' },
      ]),
    );
    const topAsks = asks.slice(0, LADDER_LEVELS).reverse();
    const topBids = bids.slice(0, LADDER_LEVELS);
    const maxLots = Math.max(1, ...topAsks.map((l) => l[1]), ...topBids.map((l) => l[1]));
    const row = (side: 'bid' | 'ask', [p, q]: [number, number]) =>
      h(
        'tr',
        { class: side },
        h('td', { class: `num ${side === 'bid' ? 'buy' : 'sell'}` }, formatPrice(p, inst)),
        h(
          'td',
          { class: 'num bar-cell' },
          h('div', { class: `bar ${side}`, style: `width:${((100 * q) / maxLots).toFixed(1)}%` }),
          h('span', {}, formatSize(q, inst)),
        ),
      );
    const spread =
      bids[0] && asks[0]
        ? `spread ${formatPrice(asks[0][0] - bids[0][0], inst)}`
        : 'no spread: one side empty';
    ladder.replaceChildren(
      h(
        'table',
        { class: 'grid ladder', id: 'ladder', 'data-seq': book.seq },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', { class: 'num' }, 'Price (USD)'),
            h('th', { class: 'num' }, `Size (${inst.underlying})`),
          ),
        ),
        h(
          'tbody',
          {},
          ...topAsks.map((l) => row('ask', l)),
          h(
            'tr',
            { class: 'spread' },
            h('td', { colspan: 2 }, spread, h('span', { class: 'muted' }, `  · seq ${book.seq}`)),
          ),
          ...topBids.map((l) => row('bid', l)),
        ),
      ),
    );
  };

  const renderTrades = () => {
    trades.replaceChildren(
      table(
        [
          { label: 'Time (UTC)' },
          { label: 'Price (USD)', num: true },
          { label: `Size (${inst.underlying})`, num: true },
          { label: 'Height', num: true },
        ],
        recent
          .slice(-TRADES_SHOWN)
          .reverse()
          .map((t) => [
            formatClock(t.timeMs),
            sideCell(t.takerSide, formatPrice(t.priceTicks, inst)),
            formatSize(t.sizeLots, inst),
            formatInt(t.height),
          ]),
        { id: 'trades' },
      ),
    );
  };

  follow(app, scope, `ticker:${inst.instrument}`, (event) => {
    if (event.data !== null) ticker = event.data as TickerView;
    renderHead();
  });
  follow(app, scope, `book:${inst.instrument}`, (event) => {
    if (event.book !== undefined) renderBook(event.book);
  });
  follow(app, scope, `trades:${inst.instrument}`, (event) => {
    const seen = new Set(recent.map((t) => t.tradeId));
    for (const t of (event.data as { trades: TradeView[] }).trades)
      if (!seen.has(t.tradeId)) recent.push(t);
    recent.sort((a, b) => a.tradeId - b.tradeId);
    recent.splice(0, Math.max(0, recent.length - TRADES_SHOWN));
    renderTrades();
  });
  renderHead();
  renderTrades();
}

function chainView(
  root: El,
  app: App,
  scope: Scope,
  instruments: InstrumentView[],
  underlying: string,
  expiryMs: number,
): void {
  const options = instruments.filter(
    (i) => i.kind === 'option' && i.underlying === underlying && i.expiryMs === expiryMs,
  );
  const strikes = [...new Set(options.map((i) => i.strikeTicks ?? 0))].sort((a, b) => a - b);
  const find = (strike: number, type: 'call' | 'put') =>
    options.find((i) => i.strikeTicks === strike && i.optionType === type);
  const tickers = new Map<string, TickerView>();
  const chain = h('div');
  const smile = h('div');
  root.replaceChildren(
    h(
      'h1',
      { class: 'instrument-title' },
      `${underlying} options · ${formatDate(expiryMs)}`,
      h('a', { href: '#/markets', class: 'back' }, '← all markets'),
    ),
    panel('Smile (mark IV by strike)', smile),
    panel('Chain', chain),
  );
  const sample = options[0];
  const strikeText = (strike: number) => (sample ? formatPrice(strike, sample) : String(strike));
  const render = () => {
    // Calls read outwards from the strike to the left, puts to the right: quotes next to it.
    const cols = (i: InstrumentView | undefined): (El | string)[] => {
      const t = i ? tickers.get(i.instrument) : undefined;
      const flag = i !== undefined && i.status !== 'trading' ? [' ', statusPill(i)] : [];
      return [
        formatPercentOf(t?.markIv),
        formatDecimal(t?.greeks?.delta, 3),
        formatDecimal(t?.greeks?.gamma, 5),
        formatDecimal(t?.greeks?.vega, 2),
        formatDecimal(t?.greeks?.theta, 2),
        i
          ? h(
              'td',
              { class: 'num' },
              h(
                'a',
                { href: `#/markets/${i.instrument}` },
                formatPrice(t?.markTicks || undefined, i),
              ),
              ...flag,
            )
          : '—',
        h('td', { class: 'num buy' }, formatPrice(t?.bestBidTicks, i)),
        h('td', { class: 'num sell' }, formatPrice(t?.bestAskTicks, i)),
      ];
    };
    const callCols = (i: InstrumentView | undefined) => {
      const [iv, d, g, v, t, mark, bid, ask] = cols(i);
      return [iv!, d!, g!, v!, t!, bid!, mark!, ask!];
    };
    const putCols = (i: InstrumentView | undefined) => {
      const [iv, d, g, v, t, mark, bid, ask] = cols(i);
      return [bid!, mark!, ask!, t!, v!, g!, d!, iv!];
    };
    const heads = (side: string, labels: string[]) =>
      labels.map((label) => ({ label: `${side} ${label}`, num: true }));
    chain.replaceChildren(
      table(
        [
          ...heads('C', ['IV', 'Δ', 'Γ', 'Vega', 'Θ', 'Bid', 'Mark', 'Ask']),
          { label: 'Strike', num: true },
          ...heads('P', ['Bid', 'Mark', 'Ask', 'Θ', 'Vega', 'Γ', 'Δ', 'IV']),
        ],
        strikes.map((k) => [
          ...callCols(find(k, 'call')),
          h('td', { class: 'num strike' }, strikeText(k)),
          ...putCols(find(k, 'put')),
        ]),
        { id: 'chain' },
      ),
    );
    const points = (type: 'call' | 'put'): [number, number][] =>
      strikes.flatMap((k) => {
        const i = find(k, type);
        const iv = i ? tickers.get(i.instrument)?.markIv : undefined;
        return i && iv !== undefined ? [[priceOf(k, i), Number(iv) * 100] as [number, number]] : [];
      });
    smile.replaceChildren(
      lineChart(
        [
          { label: 'calls', color: 'var(--accent)', points: points('call'), markers: true },
          { label: 'puts', color: 'var(--warn)', points: points('put'), markers: true },
        ],
        {
          width: 1280,
          height: 240,
          formatX: (x) => x.toLocaleString('en-US'),
          formatY: (y) => `${y.toFixed(0)}%`,
          empty: 'no mark IV yet',
        },
      ),
      legend([
        { label: 'calls (IV %)', color: 'var(--accent)' },
        { label: 'puts (IV %)', color: 'var(--warn)' },
      ]),
    );
  };
  for (const i of options.slice(0, TICKERS_FOLLOWED_MAX)) {
    follow(app, scope, `ticker:${i.instrument}`, (event) => {
      if (event.data !== null) tickers.set(i.instrument, event.data as TickerView);
      render();
    });
  }
  // A block publishes the tickers of markets that traded or re-quoted; an option's
  // mark IV and greeks move with its underlying regardless. So tickers the feed
  // left behind (and those beyond the subscription budget) are read over REST,
  // a bounded number per round to stay inside the node's request rate limit.
  let round = 0;
  scope.every(CHAIN_REFRESH_MS, () => {
    const height = app.status?.height ?? 0;
    const stale = options.filter((i) => (tickers.get(i.instrument)?.height ?? -1) < height);
    const start = (round++ * CHAIN_REFRESH_MAX) % Math.max(1, stale.length);
    for (const i of [...stale.slice(start), ...stale.slice(0, start)].slice(0, CHAIN_REFRESH_MAX)) {
      void load<TickerView>(app, scope, `/v1/ticker/${i.instrument}`).then((t) => {
        if (t === undefined || (tickers.get(i.instrument)?.height ?? -1) > t.height) return;
        tickers.set(i.instrument, t);
        render();
      });
    }
  });
  render();
}
