// The messages of one height, round by round, drawn for debugging: as text
// (a column per node, a row per event) and as an SVG sequence diagram (a swim
// lane per node, time flowing down, an arrow per message). No libraries.

import type { TimelineEntry } from './simulator.ts';

const KIND_LABEL: Record<TimelineEntry['kind'], string> = {
  proposal: 'PROP',
  prevote: 'PV',
  precommit: 'PC',
  commit: 'COMMIT',
  timeout: 'TIMEOUT',
  evidence: 'EVIDENCE',
};

const KIND_COLOR: Record<TimelineEntry['kind'], string> = {
  proposal: '#1f77b4',
  prevote: '#2ca02c',
  precommit: '#d62728',
  commit: '#000000',
  timeout: '#ff7f0e',
  evidence: '#9467bd',
};

interface Row {
  readonly atUs: number;
  readonly node: number;
  readonly text: string;
}

function rowsOf(entries: readonly TimelineEntry[]): Row[] {
  const rows: Row[] = [];
  const sends = new Set<string>();
  for (const e of entries) {
    const label = `${KIND_LABEL[e.kind]} r${e.round} ${e.value}`;
    if (e.to < 0) {
      rows.push({ atUs: e.sentUs, node: e.from, text: label });
      continue;
    }
    // One row per send (a broadcast is one row), one per arrival.
    const sendId = `${e.from}/${e.kind}/${e.round}/${e.sentUs}/${e.value}`;
    if (!sends.has(sendId)) {
      sends.add(sendId);
      rows.push({ atUs: e.sentUs, node: e.from, text: `${label} >` });
    }
    if (e.arrivedUs >= 0)
      rows.push({ atUs: e.arrivedUs, node: e.to, text: `< ${label} n${e.from}` });
    else rows.push({ atUs: e.sentUs, node: e.to, text: `x lost ${KIND_LABEL[e.kind]} n${e.from}` });
  }
  rows.sort((a, b) => a.atUs - b.atUs || a.node - b.node);
  return rows;
}

/** A column per node, a row per event; times in ms from the first event. */
export function timelineText(
  entries: readonly TimelineEntry[],
  nodes: number,
  height: number,
): string {
  if (entries.length === 0) return `height ${height}: nothing recorded`;
  const rows = rowsOf(entries);
  const width = Math.max(14, ...rows.map((r) => r.text.length + 1));
  const t0 = rows[0]!.atUs;
  const header =
    'ms'.padStart(10) +
    ' ' +
    Array.from({ length: nodes }, (_, i) => `n${i}`.padEnd(width)).join('');
  const lines = [`height ${height}`, header];
  let round = -1;
  for (const row of rows) {
    const r = /r(\d+)/.exec(row.text);
    const rowRound = r === null ? round : Number(r[1]);
    if (rowRound > round) {
      round = rowRound;
      lines.push(`${'-'.repeat(10)} round ${round}`);
    }
    const cells = Array.from({ length: nodes }, (_, i) =>
      (i === row.node ? row.text : '').padEnd(width),
    );
    lines.push(`${((row.atUs - t0) / 1000).toFixed(3).padStart(10)} ${cells.join('').trimEnd()}`);
  }
  return lines.join('\n');
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** An HTML page with an SVG sequence diagram of the height. */
export function timelineHtml(
  entries: readonly TimelineEntry[],
  nodes: number,
  height: number,
  title: string,
): string {
  const laneWidth = 140;
  const left = 80;
  const top = 60;
  const plotHeight = 900;
  const times = entries.flatMap((e) => [e.sentUs, e.arrivedUs]).filter((t) => t >= 0);
  const t0 = times.length === 0 ? 0 : Math.min(...times);
  const t1 = times.length === 0 ? 1 : Math.max(...times);
  const y = (t: number) => top + ((t - t0) / Math.max(1, t1 - t0)) * plotHeight;
  const x = (node: number) => left + node * laneWidth + laneWidth / 2;
  const width = left + nodes * laneWidth + 40;
  const heightPx = top + plotHeight + 80;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${heightPx}" font-family="monospace" font-size="11">`,
    `<defs>${Object.entries(KIND_COLOR)
      .map(
        ([kind, color]) =>
          `<marker id="arrow-${kind}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="${color}"/></marker>`,
      )
      .join('')}</defs>`,
    `<text x="${left}" y="20" font-size="14">${escapeXml(title)}</text>`,
  );
  for (let i = 0; i < nodes; i++) {
    parts.push(
      `<line x1="${x(i)}" y1="${top}" x2="${x(i)}" y2="${top + plotHeight}" stroke="#bbb"/>`,
      `<text x="${x(i)}" y="${top - 10}" text-anchor="middle">n${i}</text>`,
    );
  }
  for (let k = 0; k <= 10; k++) {
    const t = t0 + ((t1 - t0) * k) / 10;
    parts.push(
      `<text x="${left - 8}" y="${y(t) + 4}" text-anchor="end" fill="#666">${((t - t0) / 1000).toFixed(1)} ms</text>`,
    );
  }
  for (const e of entries) {
    const color = KIND_COLOR[e.kind];
    const tip = `<title>${escapeXml(`${KIND_LABEL[e.kind]} round ${e.round} ${e.value} n${e.from}${e.to >= 0 ? ` → n${e.to}` : ''} at ${((e.sentUs - t0) / 1000).toFixed(3)} ms`)}</title>`;
    if (e.to < 0) {
      const shape =
        e.kind === 'commit'
          ? `<circle cx="${x(e.from)}" cy="${y(e.sentUs)}" r="5" fill="${color}">${tip}</circle>`
          : `<rect x="${x(e.from) - 4}" y="${y(e.sentUs) - 4}" width="8" height="8" fill="${color}" transform="rotate(45 ${x(e.from)} ${y(e.sentUs)})">${tip}</rect>`;
      parts.push(
        shape,
        `<text x="${x(e.from) + 8}" y="${y(e.sentUs) + 4}" fill="${color}">${KIND_LABEL[e.kind]} r${e.round}</text>`,
      );
      continue;
    }
    if (e.arrivedUs < 0) {
      const x2 = (x(e.from) + x(e.to)) / 2;
      parts.push(
        `<line x1="${x(e.from)}" y1="${y(e.sentUs)}" x2="${x2}" y2="${y(e.sentUs) + 8}" stroke="${color}" stroke-dasharray="3,3">${tip}</line>`,
        `<text x="${x2}" y="${y(e.sentUs) + 12}" fill="${color}">✕</text>`,
      );
      continue;
    }
    parts.push(
      `<line x1="${x(e.from)}" y1="${y(e.sentUs)}" x2="${x(e.to)}" y2="${y(e.arrivedUs)}" stroke="${color}" stroke-width="1" marker-end="url(#arrow-${e.kind})">${tip}</line>`,
    );
  }
  const legend = Object.entries(KIND_LABEL)
    .map(
      ([kind, label], i) =>
        `<text x="${left + i * 110}" y="${top + plotHeight + 40}" fill="${KIND_COLOR[kind as TimelineEntry['kind']]}">■ ${label}</text>`,
    )
    .join('');
  parts.push(legend, '</svg>');
  return [
    '<!doctype html>',
    `<html><head><meta charset="utf-8"><title>${escapeXml(title)}</title></head>`,
    `<body style="margin:16px">`,
    `<p style="font-family:sans-serif">Height ${height}: one lane per node, time flows down; arrows are messages (dashed ✕: lost), dots are commits, diamonds timeouts. Hover for details.</p>`,
    parts.join('\n'),
    '</body></html>',
  ].join('\n');
}
