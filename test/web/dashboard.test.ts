// The dashboard in a real browser (Debian's chromium through playwright-core):
// every view opens, live values change as blocks commit, nothing is logged as
// an error, and each view leaves a screenshot in artifacts/web/. Blocks are
// committed by the test and the page is awaited for the change: no sleeps.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { openBrowser } from './browser.ts';
import type { Browser } from './browser.ts';
import { buildBundle } from '../../src/web/build.ts';
import { ACCOUNT, Market, startDashboardServer } from './fixtures.ts';
import type { DashboardServer } from './fixtures.ts';

const WAIT_MS = 10_000;
const SHOTS = join('artifacts', 'web');

let market: Market;
let server: DashboardServer;
let page: Page;
let browser: Browser | undefined;
const problems: string[] = [];

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  market = new Market(7);
  for (let i = 0; i < 6; i++) market.step();
  server = await startDashboardServer(market.view, buildBundle());
  browser = await openBrowser(problems, WAIT_MS);
  page = browser.page;
});

after(async () => {
  await browser?.close();
  await server?.close();
});

type Doc = { querySelector(s: string): { textContent: string | null } | null };

/** The text of the first element matching selector, once it exists. */
async function text(selector: string): Promise<string> {
  await page.waitForSelector(selector);
  return (await page.textContent(selector)) ?? '';
}

/** Waits until the selector's text is no longer `old`. */
async function changed(selector: string, old: string): Promise<string> {
  await page
    .waitForFunction(
      ([sel, was]) => {
        const el = (globalThis as unknown as { document: Doc }).document.querySelector(sel!);
        return el !== null && el.textContent !== was;
      },
      [selector, old],
    )
    .catch(async (e: unknown) => {
      const bar = await page.textContent('#error');
      throw new Error(
        `${selector} stayed ${JSON.stringify(old)} (error bar: ${bar}): ${String(e)}`,
      );
    });
  return text(selector);
}

async function rows(selector: string): Promise<number> {
  return page.locator(`${selector} tbody tr`).count();
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

test('network: validators, heights and blocks follow the chain; jailing is flagged', async () => {
  await page.goto(`${server.url}/ui/#/network`);
  const height = String(market.view.height);
  await page.waitForFunction(
    (h) =>
      (globalThis as unknown as { document: Doc }).document.querySelector('#kpi-height')
        ?.textContent === h,
    height,
  );
  await page.waitForFunction(
    () =>
      (
        (globalThis as unknown as { document: Doc }).document.querySelector('#blocks tbody')
          ?.textContent ?? ''
      ).length > 0,
  );
  assert.equal(await rows('#validators'), 4);
  // The feed connects on its own once the page has loaded: wait for it, do not race it.
  await page.waitForFunction(
    () =>
      (globalThis as unknown as { document: Doc }).document.querySelector('#feed')?.textContent ===
      'live',
  );
  assert.equal(await text('#feed'), 'live');
  market.step();
  assert.equal(await changed('#kpi-height', height), String(market.view.height));
  await changed('#height', height);
  assert.match(await text('#blocks tbody tr'), new RegExp(`^${market.view.height}`));

  market.validators[3]!.jailed = true;
  market.validators[3]!.votingPower = 0;
  market.step();
  await page.waitForSelector('.alert.bad:has-text("jailed")');
  assert.match(await text('#validators'), /jailed/);
  await shot('network');
  market.validators[3]!.jailed = false;
  market.validators[3]!.votingPower = 5;
});

test('markets: ladder, depth and trades of one instrument move with the book feed', async () => {
  await page.goto(`${server.url}/ui/#/markets/BTC-PERPETUAL`);
  await page.waitForSelector('#ladder tbody tr.bid');
  const seq = (await page.getAttribute('#ladder', 'data-seq')) ?? '';
  const mark = await text('#kpi-mark');
  assert.match(mark, /^[0-9,]+\.[0-9] USD$/);
  // The market's risk parameters, as GET /v1/instruments has them.
  assert.equal(await text('#kpi-initial-margin'), '5.0000%');
  assert.equal(await text('#kpi-maintenance-margin'), '3.0000%');
  assert.equal(await text('#kpi-imf-step'), '+1.0000% per 10,000,000 USD');
  assert.equal(await text('#kpi-price-band'), 'none');
  assert.equal(await text('#kpi-oi-cap'), 'none');
  // Grouped: each underlying, perpetuals first, then each expiry with its future and its chain.
  const list = await text('#instruments tbody');
  assert.ok(list.indexOf('BTC-PERPETUAL') < list.indexOf('BTC · 27 Dec 2026'));
  assert.ok(list.indexOf('BTC · 27 Dec 2026') < list.indexOf('BTC-27DEC26'));
  assert.match(list, /BTC 27 Dec 2026 options 10 \(5 strikes/);
  assert.ok(list.indexOf('BTC-27DEC26') < list.indexOf('ETH-PERPETUAL'));
  assert.match(await text('#instruments tbody tr:has-text("BTC-27DEC26")'), /27 Dec 2026/);
  await page.waitForSelector('#trades tbody tr');
  market.step();
  await page.waitForFunction(
    (s) =>
      (
        globalThis as unknown as {
          document: { querySelector(x: string): { getAttribute(a: string): string | null } | null };
        }
      ).document
        .querySelector('#ladder')
        ?.getAttribute('data-seq') !== s,
    seq,
  );
  await changed('#kpi-mark', mark);
  assert.ok(
    (await page.locator('svg.chart path').count()) >= 2,
    'the depth chart draws both sides',
  );
  await shot('markets');
});

test('markets: the option chain shows IV and greeks per strike, and the smile', async () => {
  await page.goto(`${server.url}/ui/#/markets`);
  await page.click('a.chip');
  await page.waitForSelector('#chain tbody tr');
  assert.equal(await rows('#chain'), 5);
  await page.waitForFunction(
    () =>
      !(
        (globalThis as unknown as { document: Doc }).document.querySelector('#chain tbody')
          ?.textContent ?? '—'
      ).includes('—'),
  );
  const first = await text('#chain tbody tr');
  assert.match(first, /%/);
  const heads = await text('#chain thead');
  for (const h of ['C IV', 'C Δ', 'C Γ', 'C Vega', 'C Θ', 'C Bid', 'C Mark', 'C Ask', 'Strike'])
    assert.ok(heads.includes(h), h);
  assert.ok(heads.includes('P Bid') && heads.includes('P IV'));
  // The smile: one marker per call and per put with a mark IV.
  assert.equal(await page.locator('svg.chart circle').count(), 10);
  market.step();
  await changed('#chain tbody tr', first);
  await shot('chain');
});

test('risk: halted markets are flagged, basis and index follow the tickers', async () => {
  market.instruments.find((i) => i.instrument === 'ETH-PERPETUAL')!.status = 'halted';
  const future = market.instruments.find((i) => i.instrument === 'BTC-27DEC26')!;
  future.status = 'auction';
  future.auctionEndMs = Date.UTC(2026, 0, 1, 12, 34, 56);
  const at = { height: market.view.height, timeMs: 1_767_225_660_000 };
  market.view.riskState = {
    height: market.view.height,
    insuranceQuote: '5000000000',
    insurance: [{ ...at, insuranceQuote: '5000000000' }],
    events: [
      {
        type: 'auctionStarted',
        ...at,
        instrument: 'BTC-PERPETUAL',
        priceTicks: 126_000,
        endMs: 1_767_225_690_000,
      },
      {
        type: 'auctionEnded',
        ...at,
        instrument: 'BTC-PERPETUAL',
        priceTicks: 125_500,
        sizeLots: 40,
      },
      {
        type: 'marketSettled',
        ...at,
        instrument: 'BTC-26DEC26',
        priceQuote: '61234500000',
        amountQuote: '61234500000',
        positions: 7,
      },
      {
        type: 'validatorJailed',
        ...at,
        validator: '0x' + '44'.repeat(20),
        offenceHeight: 3,
        amountQuote: '250000000000',
      },
    ],
    oracle: [],
  };
  await page.goto(`${server.url}/ui/#/risk`);
  await page.reload();
  await page.waitForSelector('#liquidations tbody tr');
  const events = await text('#liquidations tbody');
  assert.match(events, /validatorJailed.*double-signed at height 3/);
  assert.match(
    events,
    /marketSettled.*BTC-26DEC26.*settled at 61,234\.50 USD \(index TWAP\), 7 positions closed/,
  );
  assert.match(events, /auctionEnded.*uncrossed at 62,750\.0/);
  assert.match(events, /auctionStarted.*trigger breached at 63,000\.0, uncrosses at 00:01:30/);
  await page.waitForSelector('.alert.bad:has-text("ETH-PERPETUAL is halted")');
  await page.waitForSelector(
    '.alert.warn:has-text("BTC-27DEC26 is in a call auction (volatility or re-opening) until 12:34:56")',
  );
  assert.match(await text('#market-status'), /auction until 12:34:56/);
  await page.waitForFunction(() =>
    (
      (globalThis as unknown as { document: Doc }).document.querySelector('#basis tbody')
        ?.textContent ?? ''
    ).includes('bp'),
  );
  const basis = await text('#basis tbody');
  market.step();
  await changed('#basis tbody', basis);
  market.step();
  await page.waitForFunction(
    () =>
      (
        globalThis as unknown as { document: { querySelectorAll(s: string): { length: number } } }
      ).document.querySelectorAll('svg.chart circle').length >= 4,
  );
  await shot('risk');
  for (const i of market.instruments) i.status = 'trading';
  market.view.riskState = undefined;
  delete future.auctionEndMs;
});

test('account: balances, positions, orders and fills update with each block', async () => {
  await page.goto(`${server.url}/ui/#/account`);
  await page.fill('#address', ACCOUNT);
  await page.click('#lookup');
  const equity = await text('#equity-0');
  assert.match(equity, /^[0-9,]+\.[0-9]{2}$/);
  assert.equal(await rows('.positions'), 1);
  assert.equal(await rows('.orders'), 1);
  market.step();
  await changed('#equity-0', equity);
  await page.waitForSelector('#fills tbody tr');
  await shot('account');

  await page.goto(`${server.url}/ui/#/account/0x${'cd'.repeat(20)}`);
  // The same element says "Loading…" until the lookup answers.
  assert.match(await changed('#no-account', 'Loading…'), /No account/);
});

test('nothing was logged as an error or warning', () => {
  // The unknown account's 404 is an expected answer; the browser logs it as a failed resource.
  // A fetch still in flight when the page navigates is aborted by the browser, not failed.
  const real = problems.filter((p) => !/404/.test(p) && !/net::ERR_ABORTED/.test(p));
  assert.deepEqual(real, []);
});
