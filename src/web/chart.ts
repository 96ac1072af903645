// Small SVG charts: lines over time, a depth chart, a volatility smile. Drawn
// into a fixed viewBox that the stylesheet stretches to the panel's width.

import { h, s } from './dom.ts';
import type { El } from './dom.ts';

export interface Series {
  label: string;
  /** A CSS colour or a var(--…) of the theme. */
  color: string;
  points: [number, number][];
  /** Step line and filled area beneath (depth charts). */
  area?: boolean;
  step?: 'before' | 'after';
  markers?: boolean;
}

export interface ChartOptions {
  width?: number;
  height?: number;
  formatX: (x: number) => string;
  formatY: (y: number) => string;
  /** Include zero in the y range (rates, sizes). */
  yFromZero?: boolean;
  /** Shown when no series has a point. */
  empty?: string;
  /** Ticks on whole x values only (heights). */
  xInteger?: boolean;
  /** A vertical marker line at this x (the mid price). */
  markX?: number;
}

const PAD = { left: 64, right: 12, top: 10, bottom: 22 };

/** Round numbers for axis ticks: about `count` of them across [lo, hi]. */
export function niceTicks(lo: number, hi: number, count: number, integer = false): number[] {
  if (!(hi > lo)) return [lo];
  const raw = Math.max((hi - lo) / count, integer ? 1 : 0);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((m) => m >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  // `+ 0` turns −0 into 0, which would otherwise print as "-0".
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(t + 0);
  return ticks;
}

function extent(values: number[], fromZero: boolean): [number, number] {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (fromZero) {
    lo = Math.min(lo, 0);
    hi = Math.max(hi, 0);
  }
  if (fromZero && hi === 0 && lo === 0) return [0, 1];
  if (hi === lo) {
    const pad = Math.abs(hi) * 0.01 || 1;
    return [lo - pad, hi + pad];
  }
  const pad = (hi - lo) * 0.06;
  return [fromZero && lo === 0 ? 0 : lo - pad, hi + pad];
}

function pathOf(points: [number, number][], step: Series['step']): string {
  let d = '';
  points.forEach(([x, y], i) => {
    if (i === 0) d += `M${x.toFixed(1)},${y.toFixed(1)}`;
    else if (step === 'after') d += `H${x.toFixed(1)}V${y.toFixed(1)}`;
    else if (step === 'before') d += `V${y.toFixed(1)}H${x.toFixed(1)}`;
    else d += `L${x.toFixed(1)},${y.toFixed(1)}`;
  });
  return d;
}

export function lineChart(series: Series[], options: ChartOptions): El {
  const width = options.width ?? 640;
  const height = options.height ?? 180;
  const svg = s('svg', {
    class: 'chart',
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
  });
  const all = series.flatMap((x) => x.points);
  if (all.length === 0) {
    svg.append(
      s(
        'text',
        { x: width / 2, y: height / 2, class: 'chart-empty', 'text-anchor': 'middle' },
        options.empty ?? 'waiting for data…',
      ),
    );
    return svg;
  }
  const [x0, x1] = extent(
    all.map((p) => p[0]),
    false,
  );
  const [y0, y1] = extent(
    all.map((p) => p[1]),
    options.yFromZero === true,
  );
  const innerW = width - PAD.left - PAD.right;
  const innerH = height - PAD.top - PAD.bottom;
  const sx = (x: number) => PAD.left + ((x - x0) / (x1 - x0)) * innerW;
  const sy = (y: number) => PAD.top + (1 - (y - y0) / (y1 - y0)) * innerH;

  for (const t of niceTicks(y0, y1, 4)) {
    svg.append(
      s('line', { class: 'grid-line', x1: PAD.left, x2: width - PAD.right, y1: sy(t), y2: sy(t) }),
      s(
        'text',
        { class: 'axis', x: PAD.left - 6, y: sy(t) + 4, 'text-anchor': 'end' },
        options.formatY(t),
      ),
    );
  }
  for (const t of niceTicks(x0, x1, 5, options.xInteger === true)) {
    svg.append(
      s(
        'text',
        { class: 'axis', x: sx(t), y: height - 6, 'text-anchor': 'middle' },
        options.formatX(t),
      ),
    );
  }
  if (options.markX !== undefined) {
    const x = sx(options.markX);
    svg.append(
      s('line', { class: 'mark-line', x1: x, x2: x, y1: PAD.top, y2: height - PAD.bottom }),
    );
  }
  for (const line of series) {
    if (line.points.length === 0) continue;
    const pts = line.points.map(([x, y]) => [sx(x), sy(y)] as [number, number]);
    const d = pathOf(pts, line.step);
    if (line.area === true) {
      const base = sy(Math.max(y0, 0));
      const first = pts[0]!;
      svg.append(
        s('path', {
          d: `${d}V${base.toFixed(1)}H${first[0].toFixed(1)}Z`,
          fill: line.color,
          'fill-opacity': 0.18,
          stroke: 'none',
        }),
      );
    }
    svg.append(
      s('path', {
        d,
        fill: 'none',
        stroke: line.color,
        'stroke-width': 1.6,
        'vector-effect': 'non-scaling-stroke',
      }),
    );
    if (line.markers === true) {
      for (const [x, y] of pts) svg.append(s('circle', { cx: x, cy: y, r: 3, fill: line.color }));
    }
  }
  return svg;
}

/** A legend row for a chart's series. */
export function legend(series: Pick<Series, 'label' | 'color'>[]): El {
  return h(
    'div',
    { class: 'legend' },
    ...series.map((x) => h('span', {}, h('i', { style: `background:${x.color}` }), x.label)),
  );
}
