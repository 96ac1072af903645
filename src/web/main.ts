// The dashboard's entry: the header (chain, height, block age, feed state),
// the hash router, and the shared App each view receives.

import type { InstrumentView, StatusView } from '../api/view.ts';
import { LiveSocket, getJson } from './feed.ts';
import type { SocketState } from './feed.ts';
import { Scope } from './app.ts';
import type { App, View } from './app.ts';
import { doc, h, win } from './dom.ts';
import { formatInt, formatMs } from './format.ts';
import { accountView } from './views/account.ts';
import { marketsView } from './views/markets.ts';
import { networkView } from './views/network.ts';
import { riskView } from './views/risk.ts';

const ROUTES: { name: string; label: string; view: View }[] = [
  { name: 'network', label: 'Network', view: networkView },
  { name: 'markets', label: 'Markets', view: marketsView },
  { name: 'risk', label: 'Risk', view: riskView },
  { name: 'account', label: 'Account', view: accountView },
];

const HEADER_POLL_MS = 2_000;
/** Instruments change rarely (listings, halts): read them again this often. */
const INSTRUMENTS_POLL_MS = 5_000;

function start(): void {
  const loc = win().location;
  const wsUrl = `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/v1/ws`;

  const chain = h('span', { class: 'chain', id: 'chain-id' }, '—');
  const height = h('span', { class: 'height', id: 'height' }, '—');
  const age = h('span', { class: 'age', id: 'block-age' }, '');
  const feed = h('span', { class: 'feed connecting', id: 'feed' }, 'connecting');
  const error = h('span', { class: 'error', id: 'error' }, '');
  const nav = h('nav', {});
  const main = h('main', { id: 'view' });
  doc().body.replaceChildren(
    h(
      'header',
      {},
      h('div', { class: 'brand' }, 'ZOMMA', h('span', {}, 'node console')),
      nav,
      h('div', { class: 'status' }, chain, h('span', {}, 'height ', height), age, feed),
    ),
    h('div', { class: 'errorbar' }, error),
    main,
  );

  let lastHeight = -1;
  let lastHeightSeenMs = Date.now();
  const onState = (state: SocketState, message?: string) => {
    if (message !== undefined) return report(new Error(message));
    feed.className = `feed ${state}`;
    feed.textContent = state === 'open' ? 'live' : state;
  };
  const socket = new LiveSocket(wsUrl, onState);

  let errorTimer = 0;
  const report = (e: unknown) => {
    error.textContent = e instanceof Error ? e.message : String(e);
    win().clearInterval(errorTimer);
    errorTimer = win().setInterval(() => {
      error.textContent = '';
      win().clearInterval(errorTimer);
    }, 8_000);
  };

  let instrumentsLoaded: Promise<InstrumentView[]> | undefined;
  const app: App = {
    socket,
    status: undefined,
    instruments: [],
    instrument: (name) => app.instruments.find((i) => i.instrument === name),
    loadInstruments: () => {
      instrumentsLoaded ??= getJson<{ instruments: InstrumentView[] }>('/v1/instruments').then(
        (r) => (app.instruments = r.instruments),
        (e: unknown) => {
          instrumentsLoaded = undefined;
          report(e);
          return [];
        },
      );
      return instrumentsLoaded;
    },
    report,
  };

  const showHeight = (h: number, timeMs?: number) => {
    if (h <= lastHeight) return;
    lastHeight = h;
    lastHeightSeenMs = Date.now();
    height.textContent = formatInt(h);
    if (app.status !== undefined && timeMs !== undefined)
      app.status = { ...app.status, height: h, lastBlockTimeMs: timeMs };
  };
  socket.subscribe('blocks', (event) => {
    const block = event.data as { timeMs: number } | null;
    showHeight(event.seq, block?.timeMs);
  });
  win().setInterval(() => {
    void getJson<StatusView>('/v1/status').then((s) => {
      app.status = s;
      chain.textContent = s.chainId + (s.syncing ? ' (syncing)' : '');
      doc().title = `${s.chainId} · Zomma`;
      showHeight(s.height);
    }, report);
  }, HEADER_POLL_MS);
  win().setInterval(() => {
    age.textContent = lastHeight >= 0 ? `${formatMs(Date.now() - lastHeightSeenMs)} ago` : '';
  }, 500);
  win().setInterval(() => {
    if (instrumentsLoaded === undefined) return;
    void getJson<{ instruments: InstrumentView[] }>('/v1/instruments').then((r) => {
      app.instruments.splice(0, app.instruments.length, ...r.instruments);
    }, report);
  }, INSTRUMENTS_POLL_MS);
  void getJson<StatusView>('/v1/status').then((s) => {
    app.status = s;
    chain.textContent = s.chainId;
    showHeight(s.height);
  }, report);

  let scope: Scope | undefined;
  const route = () => {
    const parts = loc.hash
      .replace(/^#\/?/, '')
      .split('/')
      .filter((p) => p.length > 0)
      .map(decodeURIComponent);
    const current = ROUTES.find((r) => r.name === parts[0]) ?? ROUTES[0]!;
    nav.replaceChildren(
      ...ROUTES.map((r) =>
        h(
          'a',
          { href: `#/${r.name}`, class: r === current ? 'active' : '', id: `nav-${r.name}` },
          r.label,
        ),
      ),
    );
    scope?.dispose();
    scope = new Scope();
    main.replaceChildren();
    main.setAttribute('data-view', current.name);
    current.view(main, app, scope, parts.slice(1));
  };
  win().addEventListener('hashchange', route);
  route();
}

start();
