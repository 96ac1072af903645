// Account: for an address, per subaccount the balances, margin use,
// positions with their mark, open orders, and fills as they arrive.

import type {
  AccountUpdate,
  AccountView,
  FillView,
  SubaccountView,
  TickerView,
} from '../../api/view.ts';
import { HttpError, getJson } from '../feed.ts';
import { follow, load } from '../app.ts';
import type { App, Scope, View } from '../app.ts';
import { h, kpi, panel, table } from '../dom.ts';
import type { El, InputEl } from '../dom.ts';
import { formatInt, formatPrice, formatQuote, formatRatio, formatSize } from '../format.ts';

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const FILLS_SHOWN = 30;
/**
 * The account is read when the view opens, on every account: update, and this
 * often besides: a read refused (rate limit, a node restarting) must not leave
 * the page on "Loading…" until the account next trades.
 */
const ACCOUNT_POLL_MS = 5_000;

export const accountView: View = (root, app, scope, args) => {
  const address = args[0]?.toLowerCase();
  const input = h('input', {
    id: 'address',
    placeholder: '0x… account address',
    spellcheck: 'false',
    value: address ?? '',
  }) as InputEl;
  const go = () => {
    const value = input.value.trim();
    if (ADDRESS.test(value))
      (globalThis as unknown as { location: { hash: string } }).location.hash =
        `#/account/${value.toLowerCase()}`;
    else input.classList.toggle('invalid', true);
  };
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') go();
  });
  const form = h('div', { class: 'address-bar' }, input, h('button', { id: 'lookup' }, 'Look up'));
  form.querySelector('button')!.addEventListener('click', go);
  const body = h('div', { class: 'stack' });
  root.replaceChildren(form, body);
  if (address === undefined) {
    body.replaceChildren(
      h(
        'div',
        { class: 'muted' },
        'Enter an address to see its balances, positions, open orders and margin.',
      ),
    );
    return;
  }
  if (!ADDRESS.test(address)) {
    body.replaceChildren(
      h('div', { class: 'alert bad' }, 'Not an address: expected 0x and 40 hex digits.'),
    );
    return;
  }
  void app.loadInstruments().then(() => {
    if (scope.alive) live(body, app, scope, address);
  });
};

function live(body: El, app: App, scope: Scope, address: string): void {
  let account: AccountView | undefined;
  let notFound = false;
  const fills: FillView[] = [];
  const marks = new Map<string, number>();

  let asked = 0;
  let answered = 0;
  const refresh = async () => {
    const n = ++asked;
    try {
      const read = await getJson<AccountView>(`/v1/account/${address}`);
      // Reads overlap when blocks come fast: an older answer never replaces a newer one.
      if (n < answered) return;
      answered = n;
      account = read;
      notFound = false;
    } catch (e) {
      if (e instanceof HttpError && e.status === 404) notFound = true;
      else app.report(e);
    }
    if (!scope.alive) return;
    const instruments = new Set(
      account?.subaccounts.flatMap((s) => s.positions.map((p) => p.instrument)) ?? [],
    );
    await Promise.all(
      [...instruments].map(async (name) => {
        const t = await load<TickerView>(app, scope, `/v1/ticker/${name}`);
        if (t !== undefined) marks.set(name, t.markTicks);
      }),
    );
    if (scope.alive) render();
  };

  const render = () => {
    if (notFound || account === undefined) {
      body.replaceChildren(
        h(
          'div',
          { class: 'muted', id: 'no-account' },
          notFound ? `No account at ${address} (it has never received a deposit).` : 'Loading…',
        ),
      );
      return;
    }
    body.replaceChildren(
      h('div', { class: 'muted' }, `Account ${address} at height ${formatInt(account.height)}`),
      ...(account.openOrdersTruncated === true
        ? [
            h(
              'div',
              { class: 'alert warn', id: 'orders-truncated' },
              'The node lists only so many open orders in one answer: the lists below stop short.',
            ),
          ]
        : []),
      ...account.subaccounts.map((s) => subaccount(app, s, marks)),
      panel(
        'Recent fills (live)',
        table(
          [
            { label: 'Height', num: true },
            { label: 'Instrument' },
            { label: 'Side' },
            { label: 'Price (USD)', num: true },
            { label: 'Size', num: true },
            { label: 'Fee (USD)', num: true },
            { label: 'Liquidity' },
          ],
          fills
            .slice(-FILLS_SHOWN)
            .reverse()
            .map((f) => {
              const inst = app.instrument(f.instrument);
              return [
                formatInt(f.height),
                f.instrument,
                h('td', { class: f.side === 'buy' ? 'buy' : 'sell' }, f.side),
                formatPrice(f.priceTicks, inst),
                formatSize(f.sizeLots, inst),
                formatQuote(f.feeQuote, 4),
                f.liquidity,
              ];
            }),
          { id: 'fills' },
        ),
      ),
    );
  };

  follow(app, scope, `account:${address}`, (event) => {
    if (event.type === 'update') {
      const updates = (event.data as { subaccounts: AccountUpdate[] }).subaccounts;
      for (const u of updates) fills.push(...u.fills);
      fills.splice(0, Math.max(0, fills.length - FILLS_SHOWN));
    }
    // The update's balances are there, but not the orders left open: read the account again.
    void refresh();
  });
  scope.every(ACCOUNT_POLL_MS, () => void refresh());
  render();
}

function subaccount(app: App, s: SubaccountView, marks: Map<string, number>): El {
  const used = formatRatio(s.marginUsedQuote, s.equityQuote);
  const usedPct =
    /^-?[0-9]+$/.test(s.equityQuote) && BigInt(s.equityQuote) > 0n
      ? Math.min(100, Number((BigInt(s.marginUsedQuote) * 1000n) / BigInt(s.equityQuote)) / 10)
      : 100;
  const underwater = s.marginFreeQuote.startsWith('-');
  return panel(
    `Subaccount ${s.subaccount}`,
    h(
      'div',
      { class: 'kpis' },
      kpi('Cash (USD)', formatQuote(s.cashQuote), `cash-${s.subaccount}`),
      kpi('Equity (USD)', formatQuote(s.equityQuote), `equity-${s.subaccount}`),
      kpi('Initial margin used (USD)', formatQuote(s.marginUsedQuote)),
      kpi('Maintenance margin (USD)', formatQuote(s.maintenanceMarginQuote)),
      kpi('Free margin (USD)', formatQuote(s.marginFreeQuote)),
      kpi('Margin use', used),
    ),
    h(
      'div',
      { class: `meter ${underwater ? 'bad' : usedPct > 80 ? 'warn' : ''}` },
      h('div', { style: `width:${usedPct.toFixed(1)}%` }),
    ),
    h('h3', {}, 'Positions'),
    table(
      [
        { label: 'Instrument' },
        { label: 'Size', num: true },
        { label: 'Entry (USD)', num: true },
        { label: 'Mark (USD)', num: true },
        { label: 'Unrealized PnL (USD)', num: true },
        { label: 'Realized PnL (USD)', num: true },
        { label: 'Funding (USD)', num: true },
      ],
      s.positions.map((p) => {
        const inst = app.instrument(p.instrument);
        return [
          p.instrument,
          h(
            'td',
            { class: `num ${p.sizeLots > 0 ? 'buy' : p.sizeLots < 0 ? 'sell' : ''}` },
            formatSize(p.sizeLots, inst),
          ),
          formatPrice(p.entryPriceTicks, inst),
          formatPrice(marks.get(p.instrument), inst),
          pnl(p.unrealizedPnlQuote),
          pnl(p.realizedPnlQuote),
          pnl(p.fundingQuote),
        ];
      }),
      { class: 'grid positions' },
    ),
    h('h3', {}, 'Open orders'),
    table(
      [
        { label: 'Order' },
        { label: 'Instrument' },
        { label: 'Side' },
        { label: 'Price (USD)', num: true },
        { label: 'Size', num: true },
        { label: 'Filled', num: true },
        { label: 'Remaining', num: true },
        { label: 'Flags' },
      ],
      s.openOrders.map((o) => {
        const inst = app.instrument(o.instrument);
        return [
          String(o.orderId) + (o.clientOrderId ? ` (${o.clientOrderId})` : ''),
          o.instrument,
          h('td', { class: o.side === 'buy' ? 'buy' : 'sell' }, o.side),
          formatPrice(o.priceTicks, inst),
          formatSize(o.sizeLots, inst),
          formatSize(o.filledLots, inst),
          formatSize(o.remainingLots, inst),
          o.reduceOnly ? 'reduce-only' : '',
        ];
      }),
      { class: 'grid orders' },
    ),
  );
}

function pnl(quote: string): El {
  const cls = quote.startsWith('-') ? 'sell' : quote === '0' ? '' : 'buy';
  return h('td', { class: `num ${cls}` }, formatQuote(quote));
}
