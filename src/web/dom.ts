// The few DOM types and helpers the dashboard uses. The project type-checks
// against Node's lib only (adding lib "dom" program-wide changes the types of
// fetch and friends for the server code), so the browser surface we touch is
// declared here, narrowly, and reached through globalThis.

export interface DomEvent {
  readonly target: unknown;
  readonly key?: string;
  preventDefault(): void;
}

export interface El {
  readonly tagName: string;
  textContent: string | null;
  className: string;
  title: string;
  readonly classList: { toggle(name: string, on?: boolean): void };
  setAttribute(name: string, value: string): void;
  append(...nodes: (El | string)[]): void;
  replaceChildren(...nodes: (El | string)[]): void;
  addEventListener(type: string, listener: (event: DomEvent) => void): void;
  querySelector(selector: string): El | null;
  remove(): void;
}

export interface InputEl extends El {
  value: string;
}

interface Doc {
  title: string;
  readonly body: El;
  createElement(tag: string): El;
  createElementNS(ns: string, tag: string): El;
  getElementById(id: string): El | null;
}

interface Win {
  readonly location: { hash: string; host: string; protocol: string };
  addEventListener(type: string, listener: () => void): void;
  setInterval(fn: () => void, ms: number): number;
  clearInterval(id: number): void;
}

const g = globalThis as unknown as { document: Doc; window: Win };
export const doc = (): Doc => g.document;
export const win = (): Win => g.window;

export type Child = El | string | number | null | undefined | false;
export type Attrs = Record<string, string | number | boolean | undefined>;

function fill(el: El, attrs: Attrs | undefined, children: Child[]): El {
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === false) continue;
    // setAttribute, not className: an SVG element's className is read-only.
    el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'number' ? String(c) : c);
  }
  return el;
}

/** An HTML element: h('td', { class: 'num' }, '42'). */
export function h(tag: string, attrs?: Attrs, ...children: Child[]): El {
  return fill(doc().createElement(tag), attrs, children);
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An SVG element. */
export function s(tag: string, attrs?: Attrs, ...children: Child[]): El {
  return fill(doc().createElementNS(SVG_NS, tag), attrs, children);
}

/** A table with a header row; rows are lists of cells (a string, or an element for styled cells). */
export function table(
  headers: { label: string; num?: boolean }[],
  rows: Child[][],
  attrs?: Attrs,
): El {
  const head = h('tr', {}, ...headers.map((c) => h('th', c.num ? { class: 'num' } : {}, c.label)));
  const body = rows.map((r) =>
    h(
      'tr',
      {},
      ...r.map((cell, i) => {
        // A cell may come whole, when it needs its own class (a side, a status).
        if (typeof cell === 'object' && cell !== null && cell.tagName === 'TD') return cell;
        return h('td', headers[i]?.num ? { class: 'num' } : {}, cell);
      }),
    ),
  );
  return h('table', { class: 'grid', ...attrs }, h('thead', {}, head), h('tbody', {}, ...body));
}

/** A titled panel. */
export function panel(title: string, ...children: Child[]): El {
  return h('section', { class: 'panel' }, h('h2', {}, title), ...children);
}

/** A pill: tone is ok, warn, bad or muted. */
export function pill(text: string, tone: 'ok' | 'warn' | 'bad' | 'muted'): El {
  return h('span', { class: `pill ${tone}` }, text);
}

/** A headline figure. */
export function kpi(label: string, value: string, id?: string): El {
  return h(
    'div',
    { class: 'kpi' },
    h('div', { class: 'kpi-label' }, label),
    h('div', { class: 'kpi-value', id }, value),
  );
}

/** A banner for what needs attention. */
export function alert(tone: 'warn' | 'bad', text: string): El {
  return h(
    'div',
    { class: `alert ${tone}` },
    h('strong', {}, tone === 'bad' ? 'ALERT' : 'WARNING'),
    ' ',
    text,
  );
}
