// registerDashboard serves exactly the bundle's files under its prefix, and
// the bundle is rebuilt when missing or older than its sources.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import {
  BUNDLE_FILES,
  buildBundle,
  ensureBundle,
  readFreshBundle,
  sourcesMtimeMs,
} from '../../src/web/build.ts';
import { DashboardError, registerDashboard } from '../../src/web/serve.ts';

const bundle = buildBundle();

test('the bundle holds the page, the script and the stylesheet', () => {
  assert.deepEqual([...bundle.keys()].sort(), [...BUNDLE_FILES].sort());
  const html = new TextDecoder().decode(bundle.get('index.html'));
  assert.match(html, /src="app\.js"/);
  assert.match(html, /href="app\.css"/);
  // No CDN or other origin at run time.
  assert.doesNotMatch(html, /https?:\/\//);
  assert.doesNotMatch(
    new TextDecoder().decode(bundle.get('app.js')),
    /https?:\/\/(?!www\.w3\.org)/,
  );
});

test('serves the files under the prefix with types and a strict policy; nothing else', async () => {
  const app = Fastify({ logger: false });
  registerDashboard(app, { prefix: '/ui', bundle });
  await app.ready();
  try {
    const page = await app.inject({ url: '/ui/' });
    assert.equal(page.statusCode, 200);
    assert.match(page.headers['content-type'] as string, /^text\/html/);
    assert.match(page.headers['content-security-policy'] as string, /default-src 'none'/);
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    const script = await app.inject({ url: '/ui/app.js' });
    assert.equal(script.statusCode, 200);
    assert.match(script.headers['content-type'] as string, /^text\/javascript/);
    assert.equal(script.rawPayload.length, bundle.get('app.js')!.length);
    const style = await app.inject({ url: '/ui/app.css' });
    assert.match(style.headers['content-type'] as string, /^text\/css/);
    const bare = await app.inject({ url: '/ui' });
    assert.equal(bare.statusCode, 302);
    assert.equal(bare.headers.location, '/ui/');
    for (const url of ['/ui/../package.json', '/ui/%2e%2e/package.json', '/ui/build.ts', '/ui/x']) {
      assert.equal((await app.inject({ url })).statusCode, 404, url);
    }
    assert.equal((await app.inject({ method: 'POST', url: '/ui/app.js' })).statusCode, 404);
  } finally {
    await app.close();
  }
});

test('a prefix that is not a plain path is refused with a typed error', () => {
  for (const prefix of ['', '/', 'ui', '/ui/', '/../x', '/u i', '/UI']) {
    assert.throws(
      () => registerDashboard(Fastify({ logger: false }), { prefix, bundle }),
      (e: unknown) => e instanceof DashboardError && e.code === 'BadDashboardPrefix',
      prefix,
    );
  }
});

test('ensureBundle builds when dist is missing or stale, and reuses a fresh one', () => {
  const out = mkdtempSync(join(tmpdir(), 'zomma-web-'));
  try {
    assert.equal(readFreshBundle(out), undefined);
    const built = ensureBundle(out);
    assert.deepEqual(readdirSync(out).sort(), [...BUNDLE_FILES].sort(), 'no temporary files left');
    const fresh = readFreshBundle(out);
    assert.ok(fresh !== undefined);
    assert.ok(Buffer.from(fresh.get('app.js')!).equals(Buffer.from(built.get('app.js')!)));
    // A file older than the newest source makes the whole bundle stale.
    const oldS = (sourcesMtimeMs() - 60_000) / 1000;
    utimesSync(join(out, 'app.css'), oldS, oldS);
    assert.equal(readFreshBundle(out), undefined);
    ensureBundle(out);
    assert.ok(readFreshBundle(out) !== undefined);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
