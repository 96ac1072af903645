import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig, oracleSourcesOf } from '../../src/node/config.ts';
import type { NodeConfig } from '../../src/node/config.ts';
import { NodeError } from '../../src/node/errors.ts';
import type { Log } from '../../src/node/log.ts';
import { ownObservation } from '../../src/node/oracle.ts';
import { DEVNET_ASSETS, GbmPriceSource } from '../../src/node/oracle_source.ts';
import {
  FilePriceSource,
  UrlPriceSource,
  buildPriceSources,
  parseFeedPrice,
} from '../../src/node/price_sources.ts';

const UNDERLYINGS = ['BTC', 'ETH'];
const T0 = 1_795_625_493_510;
const MAX_AGE_MS = 10_000;

function recordingLog(): Log & { warnings: { code: string; reasons: string[] }[] } {
  const warnings: { code: string; reasons: string[] }[] = [];
  const ignore = (): void => {};
  return {
    warnings,
    debug: ignore,
    info: ignore,
    error: ignore,
    fatal: ignore,
    warn: (fields) => warnings.push(fields as { code: string; reasons: string[] }),
  };
}

function tempFile(): { path: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'zomma-feed-'));
  return { path: join(dir, 'prices.json'), done: () => rmSync(dir, { recursive: true }) };
}

/** Writes the feed and sets its mtime, so a change is seen whatever the file system's resolution. */
function writeFeed(path: string, content: unknown, mtimeMs: number): void {
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  utimesSync(path, mtimeMs / 1_000, mtimeMs / 1_000);
}

const fileSource = (path: string, log: Log) =>
  new FilePriceSource({ path, maxAgeMs: MAX_AGE_MS, underlyings: UNDERLYINGS, log });

test('feed prices are decimal strings of at most 6 decimals, scaled to quote units', () => {
  assert.equal(parseFeedPrice('60123.45', 'BTC'), 60_123_450_000n);
  assert.equal(parseFeedPrice('3011.2', 'ETH'), 3_011_200_000n);
  assert.equal(parseFeedPrice('0.000001', 'X'), 1n);
  assert.equal(parseFeedPrice('7', 'X'), 7_000_000n);
  for (const bad of ['0', '0.000000', '-1', '1.0000001', '1e3', ' 1', '1.', '.5', '', 'NaN']) {
    assert.throws(() => parseFeedPrice(bad, 'X'), { code: 'FeedBadPrice' }, bad);
  }
  assert.throws(() => parseFeedPrice(60123.45, 'X'), { code: 'FeedBadPrice' });
  assert.throws(() => parseFeedPrice('9'.repeat(40), 'X'), { code: 'FeedBadPrice' });
});

test('a file source reports its prices while fresh, re-reading only when the file changes', () => {
  const { path, done } = tempFile();
  try {
    const log = recordingLog();
    writeFeed(path, { BTC: '60123.45', ETH: '3011.2', timeMs: T0 }, T0);
    const source = fileSource(path, log);
    assert.deepEqual(
      source.observe(T0 + 1_000),
      new Map([
        ['BTC', 60_123_450_000n],
        ['ETH', 3_011_200_000n],
      ]),
    );
    // Same mtime and size: the file is not read again, whatever it now says.
    writeFeed(path, { BTC: '70123.45', ETH: '3011.2', timeMs: T0 }, T0);
    assert.equal(source.observe(T0 + 2_000).get('BTC'), 60_123_450_000n);
    // A new mtime: re-read.
    writeFeed(path, { BTC: '70123.45', ETH: '3011.2', timeMs: T0 }, T0 + 3_000);
    assert.equal(source.observe(T0 + 3_000).get('BTC'), 70_123_450_000n);
    // A new size with the same mtime: re-read.
    writeFeed(path, { BTC: '70123.5', timeMs: T0 }, T0 + 3_000);
    assert.deepEqual(source.observe(T0 + 3_000), new Map([['BTC', 70_123_500_000n]]));
    // Older than maxAgeMs: nothing, with one warning however often it is asked.
    assert.deepEqual(source.observe(T0 + MAX_AGE_MS + 1), new Map());
    assert.deepEqual(source.observe(T0 + MAX_AGE_MS + 2), new Map());
    assert.deepEqual(
      log.warnings.map((w) => w.code),
      ['FeedStale'],
    );
    // Fresh again, then stale again: a second warning.
    writeFeed(path, { BTC: '1', timeMs: T0 + MAX_AGE_MS }, T0 + MAX_AGE_MS);
    assert.equal(source.observe(T0 + MAX_AGE_MS).get('BTC'), 1_000_000n);
    assert.equal(source.observe(T0 + 3 * MAX_AGE_MS).size, 0);
    assert.deepEqual(
      log.warnings.map((w) => w.code),
      ['FeedStale', 'FeedStale'],
    );
  } finally {
    done();
  }
});

test("without timeMs a file's time is its mtime", () => {
  const { path, done } = tempFile();
  try {
    const source = fileSource(path, recordingLog());
    writeFeed(path, { ETH: '3000' }, T0);
    assert.equal(source.observe(T0 + MAX_AGE_MS).get('ETH'), 3_000_000_000n);
    assert.equal(source.observe(T0 + MAX_AGE_MS + 1).size, 0);
    // A fresh write makes it fresh again.
    writeFeed(path, { ETH: '3001' }, T0 + MAX_AGE_MS);
    assert.equal(source.observe(T0 + MAX_AGE_MS + 1).get('ETH'), 3_001_000_000n);
  } finally {
    done();
  }
});

test('a bad file reports nothing for what is wrong and warns once with a typed reason', () => {
  const { path, done } = tempFile();
  try {
    const cases: { content: unknown; expect: Record<string, bigint>; code: string }[] = [
      { content: '{"BTC": "60000",', expect: {}, code: 'FeedMalformed' },
      { content: '["BTC", "60000"]', expect: {}, code: 'FeedMalformed' },
      { content: { BTC: '60000', timeMs: -5 }, expect: {}, code: 'FeedMalformed' },
      { content: { BTC: '60000', timeMs: 'now' }, expect: {}, code: 'FeedMalformed' },
      {
        content: { BTC: '-60000', ETH: '3000' },
        expect: { ETH: 3_000_000_000n },
        code: 'FeedBadPrice',
      },
      { content: { BTC: '0', ETH: '3000' }, expect: { ETH: 3_000_000_000n }, code: 'FeedBadPrice' },
      {
        content: { BTC: 'sixty', ETH: '3000' },
        expect: { ETH: 3_000_000_000n },
        code: 'FeedBadPrice',
      },
      {
        content: { BTC: 60000, ETH: '3000' },
        expect: { ETH: 3_000_000_000n },
        code: 'FeedBadPrice',
      },
      {
        content: { BTC: '60000.1234567', ETH: '3000' },
        expect: { ETH: 3_000_000_000n },
        code: 'FeedBadPrice',
      },
      {
        content: { BTC: '60000', DOGE: '0.1' },
        expect: { BTC: 60_000_000_000n },
        code: 'FeedUnknownUnderlying',
      },
      {
        content: `{"BTC": "60000", "pad": "${'x'.repeat(70_000)}"}`,
        expect: {},
        code: 'FeedTooLarge',
      },
    ];
    cases.forEach((c, i) => {
      const log = recordingLog();
      const source = fileSource(path, log);
      writeFeed(path, c.content, T0 + i);
      const label = JSON.stringify(c.content).slice(0, 60);
      assert.deepEqual(source.observe(T0 + i), new Map(Object.entries(c.expect)), label);
      assert.deepEqual(source.observe(T0 + i), new Map(Object.entries(c.expect)), label);
      assert.deepEqual(
        log.warnings.map((w) => w.code),
        [c.code],
        label,
      );
    });
  } finally {
    done();
  }
});

test('a missing file reports nothing, warns once, and is read when it appears', () => {
  const { path, done } = tempFile();
  try {
    const log = recordingLog();
    const source = fileSource(path, log);
    assert.equal(source.observe(T0).size, 0);
    assert.equal(source.observe(T0).size, 0);
    assert.deepEqual(
      log.warnings.map((w) => w.code),
      ['FeedUnreadable'],
    );
    writeFeed(path, { BTC: '1' }, T0);
    assert.equal(source.observe(T0).get('BTC'), 1_000_000n);
  } finally {
    done();
  }
});

async function serve(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ url: string; server: Server; close: () => Promise<void> }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/prices`,
    server,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

test('a URL source reports the last good answer while fresh, and keeps it through bad ones', async () => {
  let answer: { status: number; body: string } = {
    status: 200,
    body: JSON.stringify({ BTC: '60123.45', ETH: '3011.2', timeMs: T0 }),
  };
  const http = await serve((_req, res) => {
    res.writeHead(answer.status, { 'content-type': 'application/json' });
    res.end(answer.body);
  });
  try {
    const log = recordingLog();
    const source = new UrlPriceSource({
      url: http.url,
      intervalMs: 1_000,
      maxAgeMs: MAX_AGE_MS,
      underlyings: UNDERLYINGS,
      log,
    });
    assert.equal(source.observe(T0).size, 0, 'nothing before the first answer');
    await source.poll();
    assert.deepEqual(
      source.observe(T0 + 1),
      new Map([
        ['BTC', 60_123_450_000n],
        ['ETH', 3_011_200_000n],
      ]),
    );
    answer = { status: 500, body: 'oops' };
    await source.poll();
    answer = { status: 200, body: '{"BTC": ' };
    await source.poll();
    answer = { status: 200, body: JSON.stringify({ BTC: 'x'.repeat(70_000) }) };
    await source.poll();
    assert.equal(source.observe(T0 + 2).get('BTC'), 60_123_450_000n, 'the last good answer');
    assert.deepEqual(
      log.warnings.map((w) => w.code),
      ['FeedBadStatus', 'FeedMalformed', 'FeedTooLarge'],
    );
    assert.equal(source.observe(T0 + MAX_AGE_MS + 1).size, 0, 'until it is stale');
    // A good answer with a bad underlying: the rest is taken.
    answer = { status: 200, body: JSON.stringify({ BTC: '-1', ETH: '3000', timeMs: T0 + 5 }) };
    await source.poll();
    assert.deepEqual(source.observe(T0 + 5), new Map([['ETH', 3_000_000_000n]]));
  } finally {
    await http.close();
  }
});

test("without timeMs a URL answer's time is when it arrived", async () => {
  const http = await serve((_req, res) => res.end('{"ETH": "3000"}'));
  try {
    const source = new UrlPriceSource({
      url: http.url,
      intervalMs: 1_000,
      maxAgeMs: MAX_AGE_MS,
      underlyings: UNDERLYINGS,
      nowMs: () => T0,
    });
    await source.poll();
    assert.equal(source.observe(T0 + MAX_AGE_MS).get('ETH'), 3_000_000_000n);
    assert.equal(source.observe(T0 + MAX_AGE_MS + 1).size, 0);
  } finally {
    await http.close();
  }
});

test('a URL source that times out or cannot connect reports nothing and warns', async () => {
  // Answers nothing: the request times out.
  const silent = await serve(() => {});
  const closed = await serve(() => {});
  const closedUrl = closed.url;
  await closed.close();
  try {
    const log = recordingLog();
    const slow = new UrlPriceSource({
      url: silent.url,
      intervalMs: 1_000,
      maxAgeMs: MAX_AGE_MS,
      underlyings: UNDERLYINGS,
      log,
      fetchTimeoutMs: 50,
    });
    await slow.poll();
    assert.equal(slow.observe(T0).size, 0);
    const gone = new UrlPriceSource({
      url: closedUrl,
      intervalMs: 1_000,
      maxAgeMs: MAX_AGE_MS,
      underlyings: UNDERLYINGS,
      log,
    });
    await gone.poll();
    assert.equal(gone.observe(T0).size, 0);
    assert.deepEqual(
      log.warnings.map((w) => w.code),
      ['FeedTimeout', 'FeedUnreadable'],
    );
  } finally {
    await silent.close();
  }
});

test('observe() never waits: a poll in flight leaves the previous answer in place', async () => {
  let release: () => void = () => {};
  const http = await serve((_req, res) => {
    release = () => res.end(JSON.stringify({ BTC: '2', timeMs: T0 }));
  });
  try {
    const source = new UrlPriceSource({
      url: http.url,
      intervalMs: 1_000,
      maxAgeMs: MAX_AGE_MS,
      underlyings: UNDERLYINGS,
    });
    const first = source.poll();
    assert.equal(source.poll(), first, 'a second poll joins the one in flight');
    assert.equal(source.observe(T0).size, 0);
    await new Promise<void>((resolve) => http.server.once('request', () => resolve()));
    release();
    await first;
    assert.equal(source.observe(T0).get('BTC'), 2_000_000n);
  } finally {
    await http.close();
  }
});

const BASE = { listen: '127.0.0.1:0', peers: [] };
const configError = (field: string) => (e: unknown) =>
  e instanceof NodeError && e.code === 'ConfigInvalid' && e.field === field;

test('config.oracle: the short form is one simulated source, the long form lists sources', () => {
  const short = validateConfig({ ...BASE, oracle: { seed: 7, index: 2 } });
  assert.deepEqual(short.oracle, { seed: 7, index: 2 });
  assert.deepEqual(oracleSourcesOf(short.oracle!), [{ kind: 'simulated', seed: 7, index: 2 }]);
  const sources = [
    { kind: 'simulated', seed: 7, index: 2 },
    { kind: 'file', path: '/var/lib/feed/prices.json', maxAgeMs: 5_000 },
    { kind: 'url', url: 'https://feed.example/prices', intervalMs: 1_000, maxAgeMs: 5_000 },
  ];
  const long = validateConfig({ ...BASE, oracle: { sources } });
  assert.deepEqual(oracleSourcesOf(long.oracle!), sources);
  // What is saved reads back the same.
  assert.deepEqual(validateConfig(JSON.parse(JSON.stringify(long)) as NodeConfig), long);
});

test('config.oracle errors name the field', () => {
  const bad: [unknown, string][] = [
    [{ seed: 7 }, 'config.oracle.index'],
    [{ seed: 7, index: 1, extra: 1 }, 'config.oracle.extra'],
    [{ sources: [] }, 'config.oracle.sources'],
    [{ sources: {} }, 'config.oracle.sources'],
    [{ sources: [{ kind: 'file', path: 'x', maxAgeMs: 1 }], seed: 1 }, 'config.oracle.seed'],
    [
      { sources: new Array(33).fill({ kind: 'simulated', seed: 1, index: 0 }) },
      'config.oracle.sources',
    ],
    [{ sources: ['file'] }, 'config.oracle.sources[0]'],
    [{ sources: [{ kind: 'oracle' }] }, 'config.oracle.sources[0].kind'],
    [{ sources: [{ kind: 'simulated', seed: -1, index: 0 }] }, 'config.oracle.sources[0].seed'],
    [{ sources: [{ kind: 'file', maxAgeMs: 1_000 }] }, 'config.oracle.sources[0].path'],
    [{ sources: [{ kind: 'file', path: 'p' }] }, 'config.oracle.sources[0].maxAgeMs'],
    [{ sources: [{ kind: 'file', path: 'p', maxAgeMs: 0 }] }, 'config.oracle.sources[0].maxAgeMs'],
    [
      { sources: [{ kind: 'file', path: 'p', maxAgeMs: 1, url: 'http://x' }] },
      'config.oracle.sources[0].url',
    ],
    [
      { sources: [{ kind: 'url', url: 'ftp://x/p', intervalMs: 1_000, maxAgeMs: 1 }] },
      'config.oracle.sources[0].url',
    ],
    [
      { sources: [{ kind: 'url', url: 'not a url', intervalMs: 1_000, maxAgeMs: 1 }] },
      'config.oracle.sources[0].url',
    ],
    [
      { sources: [{ kind: 'url', url: 'http://x/p', intervalMs: 5, maxAgeMs: 1 }] },
      'config.oracle.sources[0].intervalMs',
    ],
  ];
  for (const [oracle, field] of bad) {
    assert.throws(() => validateConfig({ ...BASE, oracle }), configError(field), field);
  }
});

test('the observation is the median of a file source and two simulated sources', () => {
  const { path, done } = tempFile();
  try {
    const originMs = T0 - 60_000;
    const built = buildPriceSources(
      [
        { kind: 'file', path, maxAgeMs: MAX_AGE_MS },
        { kind: 'simulated', seed: 1, index: 0 },
        { kind: 'simulated', seed: 1, index: 1 },
      ],
      { underlyings: UNDERLYINGS, originMs },
    );
    const sim = [0, 1].map((i) => new GbmPriceSource(DEVNET_ASSETS, 1, i, originMs).observe(T0));
    const btc = sim.map((o) => o.get('BTC')!).sort((a, b) => (a < b ? -1 : 1));
    const eth = sim.map((o) => o.get('ETH')!);
    // The file is far above both simulated BTC prices: the median is the higher of them.
    writeFeed(path, { BTC: '1000000', timeMs: T0 }, T0);
    const o = ownObservation(built.sources, T0, UNDERLYINGS);
    assert.deepEqual(o.prices, [
      { underlying: 'BTC', priceQuote: btc[1] },
      // Two sources for ETH: the mean of the two, floored.
      { underlying: 'ETH', priceQuote: (eth[0]! + eth[1]!) / 2n },
    ]);
    built.start();
    built.stop();
  } finally {
    done();
  }
});

test("a feed URL's query (an API key, say) never reaches the log; credentials in it are refused", async () => {
  const http = await serve((_req, res) => {
    res.statusCode = 500;
    res.end();
  });
  const closed = await serve(() => {});
  const closedUrl = closed.url;
  await closed.close();
  const lines: string[] = [];
  const keep = (fields: object, message: string): void =>
    void lines.push(`${message} ${JSON.stringify(fields)}`);
  const log: Log = { debug: keep, info: keep, warn: keep, error: keep, fatal: keep };
  try {
    for (const url of [
      `${http.url}/prices?apikey=s3cr3t-feed-key`,
      `${closedUrl}/p?token=s3cr3t-feed-key`,
    ]) {
      const source = new UrlPriceSource({
        url,
        intervalMs: 1_000,
        maxAgeMs: MAX_AGE_MS,
        underlyings: UNDERLYINGS,
        log,
      });
      await source.poll();
    }
    assert.equal(lines.length, 2, lines.join('\n'));
    assert.match(lines[0]!, /FeedBadStatus/);
    assert.match(lines[0]!, /\/prices\?…/, 'the URL is named, its query left out');
    for (const line of lines) assert.doesNotMatch(line, /s3cr3t/);
  } finally {
    await http.close();
  }
  // fetch() refuses a URL with credentials: such a source could never answer,
  // and every warning would have written the password to the log.
  assert.throws(
    () =>
      validateConfig({
        ...BASE,
        oracle: {
          sources: [
            { kind: 'url', url: 'https://me:pw@feed.example/p', intervalMs: 1_000, maxAgeMs: 1 },
          ],
        },
      }),
    configError('config.oracle.sources[0].url'),
  );
});
