// Network: validators, chain progress, block intervals and throughput, the
// latest blocks, and anything that needs an operator's eye (jailed validators,
// halted markets, a stalled chain, a syncing node).

import type { BlockView, StatusView } from '../../api/view.ts';
import { follow, load } from '../app.ts';
import type { View } from '../app.ts';
import { lineChart } from '../chart.ts';
import { alert, h, kpi, panel, pill, table } from '../dom.ts';
import type { El } from '../dom.ts';
import { formatClock, formatInt, formatMs, formatQuote, shortHex } from '../format.ts';

/** Blocks kept for the charts and the table. */
const BLOCKS_KEPT = 120;
/** Blocks fetched over REST when the view opens (before the live feed). */
const BLOCKS_BACKFILL = 30;
const BLOCKS_SHOWN = 14;
const STATUS_POLL_MS = 2_000;
/** A chain with no block for this many median intervals is flagged as stalled. */
const STALL_INTERVALS = 5;

interface Sample {
  height: number;
  timeMs: number;
  txs: number;
  rejected: number;
  proposer: string;
  hash: string;
  /** BFT time since the previous block. */
  intervalMs: number | undefined;
}

function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

export const networkView: View = (root, app, scope) => {
  const blocks = new Map<number, BlockView>();
  let status: StatusView | undefined;
  let lastArrivalMs = Date.now();

  const kpis = h('div', { class: 'kpis' });
  const alerts = h('div', { class: 'alerts' });
  const validators = h('div');
  const intervalChart = h('div');
  const tpsChart = h('div');
  const recent = h('div');
  root.replaceChildren(
    alerts,
    kpis,
    h(
      'div',
      { class: 'cols-2' },
      panel('Block interval (BFT time, ms)', intervalChart),
      panel('Throughput (transactions/s)', tpsChart),
    ),
    panel('Validators', validators),
    panel('Latest blocks', recent),
  );

  const samples = (): Sample[] => {
    const heights = [...blocks.keys()].sort((a, b) => a - b);
    return heights.map((height) => {
      const b = blocks.get(height)!;
      const prev = blocks.get(height - 1);
      return {
        height,
        timeMs: b.timeMs,
        txs: b.txs.length,
        rejected: b.txs.filter((t) => !t.ok).length,
        proposer: b.proposer,
        hash: b.hash,
        intervalMs: prev === undefined ? undefined : b.timeMs - prev.timeMs,
      };
    });
  };

  const render = () => {
    const all = samples();
    const withInterval = all.filter((x) => x.intervalMs !== undefined && x.intervalMs > 0);
    const lastTwenty = withInterval.slice(-20);
    const medianMs = median(lastTwenty.map((x) => x.intervalMs!));
    const spanMs = lastTwenty.reduce((a, x) => a + x.intervalMs!, 0);
    const tps = spanMs > 0 ? (lastTwenty.reduce((a, x) => a + x.txs, 0) * 1000) / spanMs : 0;
    const vals = status?.validators ?? [];
    const totalPower = vals.reduce((a, v) => a + v.votingPower, 0);
    const jailed = vals.filter((v) => v.jailed);
    const sinceMs = Date.now() - lastArrivalMs;

    const flags: El[] = [];
    if (status?.syncing === true)
      flags.push(alert('warn', 'This node is catching up (syncing): its view lags the chain.'));
    if (medianMs !== undefined && sinceMs > STALL_INTERVALS * Math.max(medianMs, 1_000)) {
      flags.push(
        alert(
          'bad',
          `No new block for ${formatMs(sinceMs)} (median interval ${formatMs(medianMs)}): the chain may be halted.`,
        ),
      );
    }
    for (const v of jailed)
      flags.push(
        alert('bad', `Validator ${shortHex(v.address, 10, 6)} is jailed (no voting power).`),
      );
    for (const i of app.instruments.filter((x) => x.status !== 'trading')) {
      flags.push(
        alert(
          i.status === 'halted' ? 'bad' : 'warn',
          `${i.instrument} is ${i.status === 'halted' ? 'halted' : 'in a call auction'}.`,
        ),
      );
    }
    alerts.replaceChildren(...flags);

    kpis.replaceChildren(
      kpi('Height', formatInt(status?.height), 'kpi-height'),
      kpi('Last block', status ? formatClock(status.lastBlockTimeMs) + ' UTC' : '—'),
      kpi('Median interval', formatMs(medianMs), 'kpi-interval'),
      kpi('Throughput', `${tps.toFixed(1)} tx/s`, 'kpi-tps'),
      kpi('Validators', `${vals.length - jailed.length} / ${vals.length} voting`),
      kpi('App hash', status ? shortHex(status.appHash, 8, 6) : '—'),
    );

    const proposed = new Map<string, { count: number; last: number }>();
    for (const x of all) {
      const p = proposed.get(x.proposer) ?? { count: 0, last: 0 };
      proposed.set(x.proposer, { count: p.count + 1, last: Math.max(p.last, x.height) });
    }
    validators.replaceChildren(
      table(
        [
          { label: '#' },
          { label: 'Address' },
          { label: 'Public key' },
          { label: 'Stake (USD)', num: true },
          { label: 'Voting power', num: true },
          { label: 'Share', num: true },
          { label: `Proposed (last ${all.length})`, num: true },
          { label: 'Last proposed', num: true },
          { label: 'State' },
        ],
        vals.map((v, i) => [
          String(i + 1),
          h('td', { class: 'mono' }, shortHex(v.address, 10, 6)),
          h('td', { class: 'mono muted' }, shortHex(v.publicKey, 8, 6)),
          formatQuote(v.stakeQuote, 0),
          formatInt(v.votingPower),
          totalPower > 0 ? `${((100 * v.votingPower) / totalPower).toFixed(1)}%` : '—',
          formatInt(proposed.get(v.address)?.count ?? 0),
          proposed.has(v.address) ? formatInt(proposed.get(v.address)!.last) : '—',
          h('td', {}, v.jailed ? pill('jailed', 'bad') : pill('voting', 'ok')),
        ]),
        { id: 'validators' },
      ),
    );

    intervalChart.replaceChildren(
      lineChart(
        [
          {
            label: 'interval',
            color: 'var(--accent)',
            points: withInterval.map((x) => [x.height, x.intervalMs!]),
            markers: withInterval.length < 40,
          },
        ],
        {
          formatX: (x) => formatInt(x),
          xInteger: true,
          formatY: (y) => `${Math.round(y)}`,
          yFromZero: true,
          empty: 'waiting for two consecutive blocks…',
        },
      ),
    );
    tpsChart.replaceChildren(
      lineChart(
        [
          {
            label: 'tx/s',
            color: 'var(--buy)',
            area: true,
            points: withInterval.map((x) => [x.height, (x.txs * 1000) / x.intervalMs!]),
          },
        ],
        {
          formatX: (x) => formatInt(x),
          xInteger: true,
          formatY: (y) => y.toFixed(y < 10 ? 1 : 0),
          yFromZero: true,
          empty: 'waiting for two consecutive blocks…',
        },
      ),
    );
    recent.replaceChildren(
      table(
        [
          { label: 'Height', num: true },
          { label: 'Time (UTC)' },
          { label: 'Hash' },
          { label: 'Proposer' },
          { label: 'Txs', num: true },
          { label: 'Rejected', num: true },
          { label: 'Interval', num: true },
        ],
        all
          .slice(-BLOCKS_SHOWN)
          .reverse()
          .map((x) => [
            formatInt(x.height),
            formatClock(x.timeMs),
            h('td', { class: 'mono muted' }, shortHex(x.hash, 10, 6)),
            h('td', { class: 'mono' }, shortHex(x.proposer, 10, 6)),
            formatInt(x.txs),
            h('td', { class: x.rejected > 0 ? 'num warn-text' : 'num' }, formatInt(x.rejected)),
            formatMs(x.intervalMs),
          ]),
        { id: 'blocks' },
      ),
    );
  };

  const add = (b: BlockView | null | undefined) => {
    if (b === null || b === undefined || blocks.has(b.height)) return;
    blocks.set(b.height, b);
    for (const height of [...blocks.keys()].sort((a, c) => a - c).slice(0, -BLOCKS_KEPT)) {
      blocks.delete(height);
    }
  };

  const backfill = async (height: number) => {
    const wanted: number[] = [];
    for (let x = height; x > 0 && x > height - BLOCKS_BACKFILL; x--)
      if (!blocks.has(x)) wanted.push(x);
    const got = await Promise.all(wanted.map((x) => load<BlockView>(app, scope, `/v1/block/${x}`)));
    for (const b of got) add(b);
    render();
  };

  let backfilled = false;
  scope.every(STATUS_POLL_MS, () => {
    void load<StatusView>(app, scope, '/v1/status').then((s) => {
      if (s === undefined) return;
      status = s;
      if (!backfilled && s.height > 0) {
        backfilled = true;
        void backfill(s.height);
      }
      render();
    });
  });
  follow(app, scope, 'blocks', (event) => {
    add(event.data as BlockView | null);
    if (event.type === 'update') lastArrivalMs = Date.now();
    if (status !== undefined && event.seq > status.height) {
      status = {
        ...status,
        height: event.seq,
        lastBlockTimeMs: (event.data as BlockView).timeMs,
        appHash: (event.data as BlockView).appHash,
      };
    }
    render();
  });
  render();
};
