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
import type { El } from '../dom.ts';
import {
  formatClock,
  formatDate,
  formatDecimal,
  formatInt,
  formatPercentOf,
  formatPpm,
  formatPrice,
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

export function statusPill(i: InstrumentView): El {
  if (i.status === 'trading') return pill('trading', 'ok');
  return pill(i.status, i.status === 'halted' ? 'bad' : 'warn');
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
    overview(root, app, scope, instruments, selected);
  });
};

function overview(
  root: El,
  app: App,
  scope: Scope,
  instruments: InstrumentView[],
  selected: string | undefined,
): void {
  const linear = instruments.filter((i) => i.kind !== 'option');
  const tickers = new Map<string, TickerView>();
  const list = h('div');
  const detail = h('div', { class: 'detail' });
  root.replaceChildren(panel('Instruments', list), chainsPanel(instruments), detail);
  const renderList = () => {
    list.replaceChildren(
      table(
        [
          { label: 'Instrument' },
          { label: 'Kind' },
          { label: 'Status' },
          { label: 'Mark', num: true },
          { label: 'Index', num: true },
          { label: 'Basis', num: true },
          { label: 'Funding / interval', num: true },
          { label: 'Bid', num: true },
          { label: 'Ask', num: true },
          { label: 'Last', num: true },
          { label: 'Open interest', num: true },
        ],
        linear.map((i) => {
          const t = tickers.get(i.instrument);
          const basis =
            t && t.indexTicks > 0
              ? (((t.markTicks - t.indexTicks) * 10_000) / t.indexTicks).toFixed(1) + ' bp'
              : '—';
          return [
            h(
              'td',
              {},
              h(
                'a',
                {
                  href: `#/markets/${i.instrument}`,
                  class: i.instrument === selected ? 'sel' : '',
                },
                i.instrument,
              ),
            ),
            i.kind,
            h('td', {}, statusPill(i)),
            formatPrice(t?.markTicks || undefined, i),
            formatPrice(t?.indexTicks || undefined, i),
            basis,
            i.kind === 'perpetual' ? formatPpm(t?.fundingRatePpm) : '',
            h('td', { class: 'num buy' }, formatPrice(t?.bestBidTicks, i)),
            h('td', { class: 'num sell' }, formatPrice(t?.bestAskTicks, i)),
            formatPrice(t?.lastTradeTicks, i),
            `${formatSize(t?.openInterestLots, i)} ${i.underlying}`,
          ];
        }),
        { id: 'instruments' },
      ),
    );
  };
  for (const i of linear.slice(0, TICKERS_FOLLOWED_MAX)) {
    follow(app, scope, `ticker:${i.instrument}`, (event) => {
      if (event.data !== null) tickers.set(i.instrument, event.data as TickerView);
      renderList();
    });
  }
  renderList();
  const inst = selected === undefined ? undefined : app.instrument(selected);
  if (inst !== undefined) instrumentDetail(detail, app, scope, inst);
}

function chainsPanel(instruments: InstrumentView[]): El {
  const expiries = new Map<string, { underlying: string; expiryMs: number; count: number }>();
  for (const i of instruments) {
    if (i.kind !== 'option' || i.expiryMs === undefined) continue;
    const key = `${i.underlying}/${i.expiryMs}`;
    const e = expiries.get(key) ?? { underlying: i.underlying, expiryMs: i.expiryMs, count: 0 };
    e.count++;
    expiries.set(key, e);
  }
  if (expiries.size === 0) return h('div');
  const sorted = [...expiries.values()].sort(
    (a, b) => a.underlying.localeCompare(b.underlying) || a.expiryMs - b.expiryMs,
  );
  return panel(
    'Option chains',
    h(
      'div',
      { class: 'chips' },
      ...sorted.map((e) =>
        h(
          'a',
          { class: 'chip', href: `#/markets/chain/${e.underlying}/${e.expiryMs}` },
          `${e.underlying} ${formatDate(e.expiryMs)}`,
          h('span', { class: 'muted' }, ` ${e.count}`),
        ),
      ),
    ),
  );
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
    const cols = (i: InstrumentView | undefined): (El | string)[] => {
      const t = i ? tickers.get(i.instrument) : undefined;
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
            )
          : '—',
      ];
    };
    const greekHeads = (side: string) =>
      ['IV', 'Δ', 'Γ', 'Vega', 'Θ', 'Mark'].map((label) => ({
        label: `${side} ${label}`,
        num: true,
      }));
    chain.replaceChildren(
      table(
        [...greekHeads('C'), { label: 'Strike', num: true }, ...greekHeads('P').reverse()],
        strikes.map((k) => [
          ...cols(find(k, 'call')),
          h('td', { class: 'num strike' }, strikeText(k)),
          ...cols(find(k, 'put')).reverse(),
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
