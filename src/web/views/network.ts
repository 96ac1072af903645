// Network: validators, chain progress, block intervals and throughput, the
// latest blocks, and anything that needs an operator's eye (jailed validators,
// halted markets, a stalled chain, a syncing node).

import type { BlockView, ConsensusView, StatusView } from '../../api/view.ts';
import { getJson, HttpError } from '../feed.ts';
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
  /** Rounds needed (round + 1), when the node says. */
  rounds: number | undefined;
  signers: number | undefined;
  /** Median precommit delay after the block's BFT time: the commit latency as the certificate shows it. */
  commitMs: number | undefined;
  evidence: number;
}

function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

export const networkView: View = (root, app, scope) => {
  const blocks = new Map<number, BlockView>();
  let status: StatusView | undefined;
  let consensus: ConsensusView | undefined;
  let lastArrivalMs = Date.now();

  const kpis = h('div', { class: 'kpis' });
  const alerts = h('div', { class: 'alerts' });
  const validators = h('div');
  const intervalChart = h('div');
  const tpsChart = h('div');
  const latencyChart = h('div');
  const recent = h('div');
  root.replaceChildren(
    alerts,
    kpis,
    h(
      'div',
      { class: 'cols-3' },
      panel('Block interval (BFT time, ms)', intervalChart),
      panel('Commit latency (median precommit delay, ms)', latencyChart),
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
        rounds: b.round === undefined ? undefined : b.round + 1,
        signers: b.signers?.length,
        commitMs:
          b.signers === undefined || b.signers.length === 0
            ? undefined
            : median(b.signers.map((x) => x.delayMs)),
        evidence: b.evidence?.length ?? 0,
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
    if (status?.emergencyHalt === true)
      flags.push(alert('bad', 'Emergency halt: every market is halted.'));
    if (status?.haltReason !== undefined)
      flags.push(alert('bad', `This node stopped executing: ${status.haltReason}`));
    for (const v of jailed)
      flags.push(
        alert(
          'bad',
          `Validator ${shortHex(v.address, 10, 6)} is jailed (no voting power)` +
            (v.jailedHeight !== undefined ? ` since height ${formatInt(v.jailedHeight)}` : '') +
            (v.jailReason !== undefined ? `: ${v.jailReason}` : '') +
            `. Stake after slashing ${formatQuote(v.stakeQuote, 0)} USD` +
            (v.slashedQuote !== undefined ? ` (${formatQuote(v.slashedQuote, 0)} burned).` : '.'),
        ),
      );
    // The jailing as the exchange executed it, from the events of the blocks held here.
    for (const b of [...blocks.values()].slice(-BLOCKS_KEPT)) {
      for (const e of b.events ?? []) {
        if (e.type !== 'validatorJailed') continue;
        flags.push(
          alert(
            'bad',
            `Block ${formatInt(e.height)} jailed validator ${shortHex(e.validator ?? '', 10, 6)}` +
              ` for double-signing at height ${formatInt(e.offenceHeight)}` +
              (e.amountQuote !== undefined
                ? `: ${formatQuote(e.amountQuote, 0)} USD of stake burned.`
                : '.'),
          ),
        );
      }
    }
    for (const b of all.filter((x) => x.evidence > 0).slice(-3))
      flags.push(
        alert('bad', `Block ${formatInt(b.height)} carries ${b.evidence} duplicate-vote evidence.`),
      );
    for (const i of app.instruments.filter((x) => x.status !== 'trading')) {
      flags.push(
        alert(
          i.status === 'halted' ? 'bad' : 'warn',
          `${i.instrument} is ${i.status === 'halted' ? 'halted' : 'in a call auction'}` +
            (i.auctionEndMs === undefined ? '.' : ` until ${formatClock(i.auctionEndMs)}.`),
        ),
      );
    }
    alerts.replaceChildren(...flags);

    kpis.replaceChildren(
      kpi('Height', formatInt(status?.height), 'kpi-height'),
      kpi('Median interval', formatMs(medianMs), 'kpi-interval'),
      kpi('Throughput', `${tps.toFixed(1)} tx/s`, 'kpi-tps'),
      kpi('Validators', `${vals.length - jailed.length} / ${vals.length} voting`),
      kpi('Round / step', consensus ? `${consensus.round} / ${consensus.step}` : '—', 'kpi-round'),
      kpi('Peers', consensus ? formatInt(consensus.peers) : '—', 'kpi-peers'),
      kpi(
        'Commit latency',
        consensus ? formatMs(consensus.lastCommitLatencyMs) : '—',
        'kpi-latency',
      ),
      kpi('App hash', status ? shortHex(status.appHash, 8, 6) : '—'),
    );
    const seen = new Map((consensus?.validators ?? []).map((c) => [c.address, c]));

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
          { label: 'Signed last commit' },
          { label: 'Precommit delay', num: true },
          { label: `Signed (last ${consensus?.recentBlocks ?? 0})`, num: true },
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
          h(
            'td',
            {},
            seen.get(v.address) === undefined
              ? '—'
              : seen.get(v.address)!.signedLastCommit
                ? pill('signed', 'ok')
                : pill('absent', 'muted'),
          ),
          formatMs(seen.get(v.address)?.lastCommitDelayMs),
          seen.has(v.address) ? formatInt(seen.get(v.address)!.signedRecent) : '—',
          h(
            'td',
            {},
            v.jailed
              ? pill(
                  v.jailedHeight === undefined
                    ? 'jailed'
                    : `jailed at ${formatInt(v.jailedHeight)}`,
                  'bad',
                )
              : pill('voting', 'ok'),
            seen.get(v.address)?.self === true ? h('span', { class: 'muted' }, ' this node') : '',
          ),
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
    const withLatency = all.filter((x) => x.commitMs !== undefined);
    latencyChart.replaceChildren(
      lineChart(
        [
          {
            label: 'commit',
            color: 'var(--warn)',
            points: withLatency.map((x) => [x.height, x.commitMs!]),
            markers: withLatency.length < 40,
          },
        ],
        {
          formatX: (x) => formatInt(x),
          xInteger: true,
          formatY: (y) => `${Math.round(y)}`,
          yFromZero: true,
          empty: 'this node does not publish commit signers',
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
          { label: 'Rounds', num: true },
          { label: 'Signers', num: true },
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
            h(
              'td',
              { class: x.rounds !== undefined && x.rounds > 1 ? 'num warn-text' : 'num' },
              x.rounds === undefined ? '—' : formatInt(x.rounds),
            ),
            x.signers === undefined ? '—' : `${x.signers} / ${vals.length}`,
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
  let consensusMissing = false;
  scope.every(STATUS_POLL_MS, () => {
    if (consensusMissing) return;
    getJson<ConsensusView>('/v1/consensus').then(
      (c) => {
        if (!scope.alive) return;
        consensus = c;
        render();
      },
      (e: unknown) => {
        if (!scope.alive) return;
        // A node without /v1/consensus: the columns stay empty, nothing is wrong.
        if (e instanceof HttpError && e.status === 404) consensusMissing = true;
        else app.report(e);
      },
    );
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
