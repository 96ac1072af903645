// The dashboard against a real devnet: four validator processes and the market
// bots (`zomma devnet`) in a temporary directory on ports of their own, every
// view opened in Debian's chromium through playwright-core. Live values must
// change as the chain commits (height, trades, the book), nothing may log an
// error, and each view leaves a screenshot in artifacts/web/devnet-*.png.
// The devnet runs with --duration as a backstop; the test stops it with
// SIGTERM and, should it linger, kills its process group (only what it started).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { openBrowser } from './browser.ts';
import type { Browser } from './browser.ts';

const WAIT_MS = 15_000;
/**
 * A new trade on one instrument: the taker trades about every 2.5 s (one order
 * at a time, each waiting for its commit), a quarter of them on BTC-PERPETUAL,
 * so one comes every ~10 s on an idle machine; blocks come slower on a loaded one.
 */
const TRADE_WAIT_MS = 60_000;
const START_MS = 40_000;
const STOP_MS = 10_000;
/** A backstop: the devnet stops itself even if this process dies without cleaning up. */
const DEVNET_DURATION_S = 90;
const SHOTS = join('artifacts', 'web');
// Ports of their own, so that parallel test files and other devnets do not
// collide; below those of freeBase (test/e2e/helpers.ts) and below Linux's
// ephemeral range, where an outgoing connection could take one.
const BASE_PORT = 14_000 + (process.pid % 300) * 20;

let devnet: ChildProcess | undefined;
let devnetExited: Promise<void> = Promise.resolve();
let dir: string;
let browser: Browser | undefined;
let page: Page;
let url = '';
let maker = '';
let output = '';
const problems: string[] = [];

type El = { textContent: string | null; getAttribute(a: string): string | null };
type Doc = {
  querySelector(s: string): El | null;
  querySelectorAll(s: string): { length: number };
};

/** Resolves with the devnet's first output line matching `re`, or fails on exit or timeout. */
function waitOutput(re: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const child = devnet!;
    const check = (): boolean => {
      const m = re.exec(output);
      if (m === null) return false;
      cleanup();
      resolve(m);
      return true;
    };
    const onData = (): void => void check();
    const onExit = (): void => {
      cleanup();
      reject(new Error(`devnet exited before ${re}:\n${output}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`devnet did not print ${re} in ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
    };
    if (check()) return;
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
  });
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), 'zomma-devnet-web-'));
  devnet = spawn(
    process.execPath,
    [
      'bin/zomma.js',
      'devnet',
      '--reset',
      '--dir',
      join(dir, 'net'),
      '--base-port',
      String(BASE_PORT),
      '--duration',
      String(DEVNET_DURATION_S),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  devnetExited = new Promise((resolve) => devnet!.once('exit', () => resolve()));
  devnet.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  devnet.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  url = (await waitOutput(/dashboard {2}(http:\/\/\S+)\/ui\//, START_MS))[1]!;
  maker = (await waitOutput(/market maker (0x[0-9a-f]{40})/, 1_000))[1]!;

  browser = await openBrowser(problems, WAIT_MS);
  page = browser.page;
});

after(async () => {
  await browser?.close();
  if (devnet?.pid !== undefined && devnet.exitCode === null && devnet.signalCode === null) {
    devnet.kill('SIGTERM');
    const timer = setTimeout(() => {
      // The validators are in the devnet's process group: end them with it.
      try {
        process.kill(-devnet!.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, STOP_MS);
    await devnetExited;
    clearTimeout(timer);
  }
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

async function text(selector: string): Promise<string> {
  await page.waitForSelector(selector);
  return (await page.textContent(selector)) ?? '';
}

/** Waits until the selector's text is no longer `old`. */
async function changed(selector: string, old: string, timeoutMs = WAIT_MS): Promise<string> {
  await page
    .waitForFunction(
      ([sel, was]) => {
        const el = (globalThis as unknown as { document: Doc }).document.querySelector(sel!);
        return el !== null && el.textContent !== was;
      },
      [selector, old],
      { timeout: timeoutMs },
    )
    .catch(async (e: unknown) => {
      throw new Error(
        `${selector} stayed ${JSON.stringify(old)} (error bar: ${await page.textContent('#error')}): ${String(e)}`,
      );
    });
  return text(selector);
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `devnet-${name}.png`), fullPage: true });
}

test('network: the four validators, a moving height, blocks with proposers', async () => {
  await page.goto(`${url}/ui/#/network`);
  const height = await text('#kpi-height');
  await page.waitForFunction(
    () =>
      (globalThis as unknown as { document: Doc }).document.querySelectorAll('#validators tbody tr')
        .length === 4,
  );
  // The feed connects on its own once the page has loaded: wait for it, do not race it.
  await page.waitForFunction(
    () =>
      (globalThis as unknown as { document: Doc }).document.querySelector('#feed')?.textContent ===
      'live',
  );
  assert.equal(await text('#feed'), 'live');
  await changed('#kpi-height', height);
  await page.waitForFunction(
    () =>
      (globalThis as unknown as { document: Doc }).document.querySelectorAll('#blocks tbody tr')
        .length >= 2,
  );
  assert.match(await text('#blocks tbody tr'), /0x[0-9a-f]{4}/);
  // From /v1/consensus and the blocks' certificates: peers, rounds and signers.
  await page.waitForFunction(
    () =>
      (globalThis as unknown as { document: Doc }).document.querySelector('#kpi-peers')
        ?.textContent === '3',
  );
  assert.match(await text('#blocks tbody tr'), /[34] \/ 4/);
  assert.match(await text('#validators tbody'), /this node/);
  await shot('network');
});

test('markets: the bots trade; the ladder, depth chart and trades follow the feed', async () => {
  await page.goto(`${url}/ui/#/markets/BTC-PERPETUAL`);
  await page.waitForSelector('#ladder tbody tr.bid');
  const seq = (await page.getAttribute('#ladder', 'data-seq')) ?? '';
  await page.waitForFunction(
    (s) =>
      (globalThis as unknown as { document: Doc }).document
        .querySelector('#ladder')
        ?.getAttribute('data-seq') !== s,
    seq,
  );
  await page.waitForSelector('#trades tbody tr', { timeout: TRADE_WAIT_MS });
  const trades = await text('#trades tbody');
  await changed('#trades tbody', trades, TRADE_WAIT_MS);
  // The list: every underlying and expiry of the devnet's ~90-150 instruments, grouped.
  assert.ok((await page.locator('#instruments tr.group').count()) >= 4);
  assert.ok((await page.locator('#instruments tr.chain-link').count()) >= 2);
  assert.match(await text('#kpi-mark'), /USD$/);
  assert.ok(
    (await page.locator('svg.chart path').count()) >= 2,
    'the depth chart draws both sides',
  );
  await shot('markets');
});

test('markets: an option chain with mark IV, greeks and quotes per strike, and its smile', async () => {
  await page.goto(`${url}/ui/#/markets`);
  await page.click('#instruments a.chip');
  await page.waitForSelector('#chain tbody tr');
  assert.ok((await page.locator('#chain tbody tr').count()) >= 3, 'strikes');
  // Mark IV (a percentage) and greeks from the oracle's smile, for calls and puts.
  await page.waitForFunction(() =>
    /[0-9]\.[0-9]+%.*[0-9]\.[0-9]+%/.test(
      (globalThis as unknown as { document: Doc }).document.querySelector('#chain tbody tr')
        ?.textContent ?? '',
    ),
  );
  // The smile: a marker per option with a mark IV, calls and puts.
  await page.waitForFunction(
    () =>
      (globalThis as unknown as { document: Doc }).document.querySelectorAll('svg.chart circle')
        .length >= 6,
  );
  // Greeks move with the index block by block.
  const chain = await text('#chain tbody');
  await changed('#chain tbody', chain);
  await shot('chain');
});

test('risk: basis and index of the listed markets', async () => {
  await page.goto(`${url}/ui/#/risk`);
  await page.waitForFunction(() =>
    (
      (globalThis as unknown as { document: Doc }).document.querySelector('#basis tbody')
        ?.textContent ?? ''
    ).includes('bp'),
  );
  await page.waitForSelector('#insurance-now');
  await page.waitForFunction(
    () =>
      (globalThis as unknown as { document: Doc }).document.querySelectorAll('#oracle tbody tr')
        .length >= 4,
  );
  assert.match(await text('#oracle tbody'), /median/);
  await shot('risk');
});

test("account: the market maker's balances, positions and orders", async () => {
  await page.goto(`${url}/ui/#/account/${maker}`);
  const equity = await text('#equity-0');
  assert.match(equity, /^-?[0-9,]+\.[0-9]{2}$/);
  await page.waitForSelector('.orders tbody tr');
  await page.waitForSelector('#fills tbody tr');
  await shot('account');
});

test('nothing was logged as an error or warning', () => {
  // A fetch still in flight when the page navigates is aborted by the browser, not failed.
  assert.deepEqual(
    problems.filter((p) => !/net::ERR_ABORTED/.test(p)),
    [],
  );
});

test("the bots were never refused for their request rate (the maker's batches fit the API's buckets)", () => {
  assert.doesNotMatch(output, /RateLimited/);
});
