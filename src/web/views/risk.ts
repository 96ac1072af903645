// Risk: markets in auction or halted, mark against index per market, and the
// index over time per underlying as this page has seen it. The API does not
// yet expose the insurance fund, liquidations, deleveraging or per-validator
// oracle observations; the page says so rather than guess (docs/dashboard.md).

import type { InstrumentView, TickerView } from '../../api/view.ts';
import { follow } from '../app.ts';
import type { View } from '../app.ts';
import { legend, lineChart } from '../chart.ts';
import { alert, h, panel, table } from '../dom.ts';
import { formatInt, formatPpm, formatPrice, formatSize, priceOf } from '../format.ts';
import { statusPill } from './markets.ts';

const TICKERS_FOLLOWED_MAX = 40;
/** Points kept per index series. */
const HISTORY_POINTS_MAX = 600;
const COLORS = ['var(--accent)', 'var(--warn)', 'var(--buy)', 'var(--sell)', '#b58cff', '#7fd1c7'];

export const riskView: View = (root, app, scope) => {
  void app.loadInstruments().then((instruments) => {
    if (!scope.alive) return;
    const linear = instruments.filter((i) => i.kind !== 'option');
    const tickers = new Map<string, TickerView>();
    /**
     * Per underlying: [height, index move in bp since the page opened]. Moves,
     * not prices, so that underlyings of any price share one axis.
     */
    const history = new Map<string, [number, number][]>();
    const firstIndex = new Map<string, number>();

    const statusBox = h('div');
    const basis = h('div');
    const chart = h('div');
    root.replaceChildren(
      panel('Market status', statusBox),
      h(
        'div',
        { class: 'cols-2' },
        panel('Index move since opened (bp, by height)', chart),
        panel('Mark against index', basis),
      ),
      h(
        'div',
        { class: 'cols-3' },
        missing(
          'Insurance fund',
          'the fund balance per block (GET /v1/insurance and an insurance channel)',
        ),
        missing(
          'Liquidations and deleveraging',
          'liquidation and ADL events per block (a liquidations channel, and a liquidation flag on trades)',
        ),
        missing(
          'Oracle by validator',
          "each validator's observed price per underlying from the vote extensions, next to the aggregate",
        ),
      ),
    );

    const render = () => {
      const halted = instruments.filter((i) => i.status === 'halted');
      const auction = instruments.filter((i) => i.status === 'auction');
      statusBox.replaceChildren(
        ...halted.map((i) => alert('bad', `${i.instrument} is halted: no orders are matched.`)),
        ...auction.map((i) =>
          alert('warn', `${i.instrument} is in a call auction (volatility or re-opening).`),
        ),
        halted.length + auction.length === 0
          ? h(
              'div',
              { class: 'ok-text', id: 'all-trading' },
              `All ${instruments.length} markets trading.`,
            )
          : h(
              'div',
              { class: 'muted' },
              `${instruments.length - halted.length - auction.length} of ${instruments.length} markets trading.`,
            ),
        table(
          [{ label: 'Instrument' }, { label: 'Kind' }, { label: 'Status' }],
          instruments
            .filter((i) => i.status !== 'trading' || i.kind !== 'option')
            .map((i) => [i.instrument, i.kind, h('td', {}, statusPill(i))]),
          { id: 'market-status' },
        ),
      );
      basis.replaceChildren(
        table(
          [
            { label: 'Instrument' },
            { label: 'Index', num: true },
            { label: 'Mark', num: true },
            { label: 'Basis', num: true },
            { label: 'Funding / interval', num: true },
            { label: 'Open interest', num: true },
          ],
          linear.map((i) => {
            const t = tickers.get(i.instrument);
            const bp =
              t && t.indexTicks > 0
                ? ((t.markTicks - t.indexTicks) * 10_000) / t.indexTicks
                : undefined;
            return [
              i.instrument,
              formatPrice(t?.indexTicks || undefined, i),
              formatPrice(t?.markTicks || undefined, i),
              h(
                'td',
                { class: `num ${bp === undefined ? '' : Math.abs(bp) > 100 ? 'bad-text' : ''}` },
                bp === undefined ? '—' : `${bp.toFixed(1)} bp`,
              ),
              i.kind === 'perpetual' ? formatPpm(t?.fundingRatePpm) : '',
              `${formatSize(t?.openInterestLots, i)} ${i.underlying}`,
            ];
          }),
          { id: 'basis' },
        ),
      );
      const series = [...history.entries()].map(([underlying, points], n) => ({
        label: underlying,
        color: COLORS[n % COLORS.length]!,
        points,
        markers: points.length < 30,
      }));
      chart.replaceChildren(
        lineChart(series, {
          formatX: (x) => formatInt(x),
          xInteger: true,
          formatY: (y) => `${y.toFixed(0)}`,
          empty: 'waiting for index prices…',
        }),
        legend(series.map((x) => ({ label: `${x.label} index`, color: x.color }))),
      );
    };

    // One market per underlying feeds the index chart: every market of an underlying shares its index.
    const indexSource = new Map<string, InstrumentView>();
    for (const i of linear) if (!indexSource.has(i.underlying)) indexSource.set(i.underlying, i);
    for (const i of linear.slice(0, TICKERS_FOLLOWED_MAX)) {
      follow(app, scope, `ticker:${i.instrument}`, (event) => {
        const t = event.data as TickerView | null;
        if (t === null) return;
        tickers.set(i.instrument, t);
        if (indexSource.get(i.underlying) === i && t.indexTicks > 0) {
          const points = history.get(i.underlying) ?? [];
          const first = firstIndex.get(i.underlying) ?? priceOf(t.indexTicks, i);
          firstIndex.set(i.underlying, first);
          const moveBp = ((priceOf(t.indexTicks, i) - first) * 10_000) / first;
          if ((points.at(-1)?.[0] ?? -1) < t.height) points.push([t.height, moveBp]);
          points.splice(0, Math.max(0, points.length - HISTORY_POINTS_MAX));
          history.set(i.underlying, points);
        }
        render();
      });
    }
    render();
  });
};

function missing(title: string, what: string) {
  return panel(
    title,
    h('div', { class: 'missing' }, 'Not exposed by the node API yet. Needs: ', what, '.'),
  );
}
