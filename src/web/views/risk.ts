// Risk: markets in auction or halted, mark against index per market, and the
// index over time per underlying as this page has seen it; the insurance fund
// per block, liquidations and deleveraging, and each validator's oracle price
// against the block's aggregate (GET /v1/risk, polled). A node that does not
// publish /v1/risk gets a note in those panels instead of a guess.

import type { BlockEventView, InstrumentView, RiskView, TickerView } from '../../api/view.ts';
import { follow } from '../app.ts';
import type { View } from '../app.ts';
import { legend, lineChart } from '../chart.ts';
import { alert, h, panel, pill, table } from '../dom.ts';
import type { Child } from '../dom.ts';
import { getJson, HttpError } from '../feed.ts';
import {
  formatClock,
  formatInt,
  formatPpm,
  formatPrice,
  formatQuote,
  formatSize,
  priceOf,
  shortHex,
} from '../format.ts';
import { liveInstruments, statusPill } from './markets.ts';

const TICKERS_FOLLOWED_MAX = 40;
/** Points kept per index series. */
const HISTORY_POINTS_MAX = 600;
const RISK_POLL_MS = 2_000;
const EVENTS_SHOWN = 12;
const COLORS = ['var(--accent)', 'var(--warn)', 'var(--buy)', 'var(--sell)', '#b58cff', '#7fd1c7'];

const EVENT_TONES: Record<BlockEventView['type'], 'ok' | 'warn' | 'bad' | 'muted'> = {
  liquidationCancels: 'warn',
  liquidation: 'bad',
  deleverage: 'bad',
  insuranceCover: 'warn',
  marketHalted: 'bad',
  marketResumed: 'ok',
  marketRiskChanged: 'warn',
  feeTiersChanged: 'warn',
  funding: 'muted',
  auctionStarted: 'warn',
  auctionEnded: 'ok',
  marketSettled: 'muted',
  validatorJailed: 'bad',
};

/** What an event says beyond its columns: auction prices and end, settlement price, jailing. */
function eventDetail(e: BlockEventView, inst: InstrumentView | undefined): string {
  switch (e.type) {
    case 'auctionStarted':
      return `trigger breached at ${formatPrice(e.priceTicks, inst)}, uncrosses at ${e.endMs === undefined ? '—' : formatClock(e.endMs)}`;
    case 'auctionEnded':
      return e.priceTicks === 0 || e.priceTicks === undefined
        ? 'nothing crossed'
        : `uncrossed at ${formatPrice(e.priceTicks, inst)}`;
    case 'marketSettled':
      return `settled at ${e.priceQuote === undefined ? '—' : formatQuote(e.priceQuote)} USD (index TWAP), ${formatInt(e.positions)} positions closed`;
    case 'validatorJailed':
      return `validator ${e.validator === undefined ? '?' : shortHex(e.validator, 10, 6)} jailed: double-signed at height ${formatInt(e.offenceHeight)}, stake burned`;
    case 'deleverage':
      return e.counterparty === undefined ? '' : `against ${shortHex(e.counterparty, 8, 4)}`;
    case 'liquidationCancels':
      return `${formatInt(e.orders)} resting orders cancelled`;
    default:
      return '';
  }
}

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
    const insuranceBox = h('div');
    const eventsBox = h('div');
    const oracleBox = h('div');
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
        { class: 'cols-2' },
        panel('Insurance fund (USD, by height)', insuranceBox),
        panel('Oracle by validator (last block)', oracleBox),
      ),
      panel('Liquidations, deleveraging, auctions, settlements and jailing', eventsBox),
    );
    let risk: RiskView | undefined;
    let riskMissing = false;
    scope.every(RISK_POLL_MS, () => {
      getJson<RiskView>('/v1/risk').then(
        (r) => {
          if (!scope.alive) return;
          risk = r;
          renderRisk();
        },
        (e: unknown) => {
          if (!scope.alive) return;
          if (e instanceof HttpError && e.status === 404) riskMissing = true;
          else app.report(e);
          renderRisk();
        },
      );
    });
    const renderRisk = () => {
      if (risk === undefined) {
        const note = riskMissing ? 'This node does not publish /v1/risk.' : 'loading…';
        for (const box of [insuranceBox, eventsBox, oracleBox])
          box.replaceChildren(h('div', { class: 'missing' }, note));
        return;
      }
      const points: [number, number][] = risk.insurance.map((p) => [
        p.height,
        Number(BigInt(p.insuranceQuote) / 10_000n) / 100,
      ]);
      insuranceBox.replaceChildren(
        h(
          'div',
          { class: 'big-number', id: 'insurance-now' },
          `${formatQuote(risk.insuranceQuote)} USD`,
        ),
        lineChart([{ label: 'fund', color: 'var(--accent)', area: true, points }], {
          formatX: (x) => formatInt(x),
          xInteger: true,
          formatY: (y) => y.toFixed(0),
          empty: 'waiting for blocks…',
        }),
      );
      const shown = risk.events.slice(-EVENTS_SHOWN).reverse();
      eventsBox.replaceChildren(
        shown.length === 0
          ? h(
              'div',
              { class: 'ok-text', id: 'no-liquidations' },
              'No liquidation, deleveraging, auction, settlement or jailing in the recent blocks.',
            )
          : table(
              [
                { label: 'Height', num: true },
                { label: 'Time' },
                { label: 'Event' },
                { label: 'Instrument' },
                { label: 'Account' },
                { label: 'Size', num: true },
                { label: 'Amount (USD)', num: true },
                { label: 'Detail' },
              ],
              shown.map((e) => {
                const inst = e.instrument === undefined ? undefined : app.instrument(e.instrument);
                return [
                  formatInt(e.height),
                  formatClock(e.timeMs),
                  h('td', {}, pill(e.type, EVENT_TONES[e.type] ?? 'warn')),
                  e.instrument ?? '',
                  h('td', { class: 'mono' }, e.address ? shortHex(e.address, 8, 4) : ''),
                  e.sizeLots === undefined ? '' : formatSize(e.sizeLots, inst),
                  e.amountQuote === undefined ? '' : formatQuote(e.amountQuote),
                  eventDetail(e, inst),
                ];
              }),
              { id: 'liquidations' },
            ),
      );
      const rows: Child[][] = [];
      for (const o of risk.oracle) {
        const aggregate = o.priceQuote === undefined ? undefined : BigInt(o.priceQuote);
        rows.push([
          h('td', { class: 'strong' }, o.underlying),
          h('td', { class: 'muted' }, 'median (block input)'),
          aggregate === undefined ? 'under ⅓ observed' : formatQuote(aggregate),
          '',
        ]);
        for (const x of o.observations) {
          const price = BigInt(x.priceQuote);
          const bp =
            aggregate === undefined || aggregate === 0n
              ? undefined
              : Number(((price - aggregate) * 100_000n) / aggregate) / 10;
          rows.push([
            '',
            h('td', { class: 'mono' }, shortHex(x.validator, 10, 6)),
            formatQuote(price),
            h(
              'td',
              { class: `num ${bp !== undefined && Math.abs(bp) > 50 ? 'bad-text' : ''}` },
              bp === undefined ? '—' : `${bp >= 0 ? '+' : ''}${bp.toFixed(1)} bp`,
            ),
          ]);
        }
      }
      oracleBox.replaceChildren(
        table(
          [
            { label: 'Underlying' },
            { label: 'Validator' },
            { label: 'Price (USD)', num: true },
            { label: 'vs aggregate', num: true },
          ],
          rows,
          { id: 'oracle' },
        ),
      );
    };

    const render = () => {
      const instruments = liveInstruments(app);
      const halted = instruments.filter((i) => i.status === 'halted');
      const auction = instruments.filter((i) => i.status === 'auction');
      statusBox.replaceChildren(
        ...halted.map((i) => alert('bad', `${i.instrument} is halted: no orders are matched.`)),
        ...auction.map((i) =>
          alert(
            'warn',
            `${i.instrument} is in a call auction (volatility or re-opening)` +
              (i.auctionEndMs === undefined ? '.' : ` until ${formatClock(i.auctionEndMs)}.`),
          ),
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
