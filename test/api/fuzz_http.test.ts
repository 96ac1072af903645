// Seeded fuzzing of every route of the OpenAPI document: random and boundary
// path parameters, query strings (repeated keys, huge, negative, hex, unicode,
// empty), bodies (wrong content types, deep nesting, huge arrays, prototype
// keys, numbers past 2^53, non-canonical transaction encodings). Every answer
// must be a 2xx that matches the route's schema or a 4xx with the error body
// and a typed code, never a 5xx, a stack or a file path; the server must still
// answer a valid request afterwards.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { Ajv } from 'ajv';
import fc from 'fast-check';
import { openApiDocument } from '../../src/api/openapi.ts';
import { errorSchema, routes } from '../../src/api/routes.ts';
import type { RouteDef } from '../../src/api/routes.ts';
import type { JsonSchema } from '../../src/api/schema.ts';
import type { ApiServer } from '../../src/api/server.ts';
import { buildTx, placeOrder } from '../../src/exchange/tx/index.ts';
import { toHex } from '../../src/lib/bytes.ts';
import { CHAIN_ID, OPTION, PERP, key, makeView, serve } from './fixtures.ts';

/** Limits high enough that the fuzzing meets the schema checks, not the rate limits. */
const OPEN_LIMITS = {
  ipRequestsPerS: 1e9,
  ipBurstRequests: 1e9,
  accountTxsPerS: 1e9,
  accountBurstTxs: 1e9,
  waitCommitMsDefault: 5_000,
};

const ADDRESS = '0x' + '22'.repeat(20);
const ERROR_FIELDS = new Set(Object.keys(errorSchema.json.properties as object));
/** What no answer may hold: a stack frame, a source path, a module directory. */
const INTERNALS = /\bat .*\.(ts|js):\d+|node_modules|\/src\/|\/work\/|\.ts\b|Error: /;

const ajv = new Ajv({ allErrors: false, strict: false });
const responseCheck = new Map(
  (Object.values(routes) as RouteDef[]).map((def) => [
    `${def.method} ${def.path}`,
    { def, check: ajv.compile(def.response.json) },
  ]),
);

let nonce = 1_000;
/** A fresh valid signed transaction's bytes (a new nonce each time: no DuplicateTx). */
function freshTx(sizeLots = 5): Uint8Array {
  return buildTx({
    chainId: CHAIN_ID,
    key: key(1),
    nonce: nonce++,
    action: placeOrder({ instrument: PERP, side: 'buy', priceTicks: 199, sizeLots }),
  }).bytes;
}

// --- arbitraries ----------------------------------------------------------------------

const huge = fc.constantFrom(
  '9007199254740991',
  '9007199254740992',
  '9007199254740993',
  '18446744073709551616',
  '9'.repeat(308),
  '9'.repeat(309),
  '9'.repeat(400),
  '1' + '0'.repeat(320),
);
const numberText = fc.oneof(
  fc.constantFrom('0', '1', '2', '50', '255', '256', '1000', '1001', '60000', '60001', '00001'),
  huge,
  fc.integer({ min: -1e6, max: 1e6 }).map(String),
  fc.constantFrom('-0', '-1', '+5', '1e2', '1.5', '0x10', ' 7', '7 ', 'NaN', 'Infinity', ''),
);
const hexOf = (min: number, max: number) =>
  fc
    .uint8Array({ minLength: min, maxLength: max })
    .map((b) => Buffer.from(b).toString('hex'))
    .chain((h) => fc.constantFrom(h, h.toUpperCase(), h.slice(1), `0x${h}`));
const text = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'),
);
const paramValue = fc.oneof(
  // Often valid, so that the query and body behind it are checked too.
  {
    weight: 4,
    arbitrary: fc.constantFrom(PERP, OPTION, ADDRESS, ADDRESS.toUpperCase(), 'a'.repeat(64), '1'),
  },
  { weight: 1, arbitrary: numberText },
  { weight: 1, arbitrary: hexOf(0, 40) },
  { weight: 1, arbitrary: text },
  {
    weight: 1,
    arbitrary: fc.constantFrom('', '%', '%zz', '%00', '%E2%8', '..', '.', 'A'.repeat(120)),
  },
);

/** encodeURIComponent of any string: a lone surrogate (which it refuses) as U+FFFD. */
function enc(s: string): string {
  return encodeURIComponent(s.replace(/[\uD800-\uDFFF]/g, '\uFFFD'));
}

/** A path segment: usually encoded, sometimes raw (bad percent-encoding and all). */
const segment = fc.tuple(paramValue, fc.boolean()).map(([v, raw]) => {
  if (!raw) return enc(v);
  // Raw, but nothing an HTTP request line cannot carry (the router, not the parser, is fuzzed here).
  return v.replace(/[^\x21-\x7e]/g, (c) => enc(c)).replace(/[/?#]/g, '');
});

function queryOf(def: RouteDef | undefined): fc.Arbitrary<string> {
  const known = Object.keys((def?.query?.json.properties ?? {}) as object);
  const keyArb = fc.oneof(
    { weight: 4, arbitrary: known.length > 0 ? fc.constantFrom(...known) : text },
    { weight: 1, arbitrary: text },
    { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', '__proto__[x]', '') },
  );
  const valueArb = fc.oneof(
    { weight: 3, arbitrary: numberText },
    { weight: 1, arbitrary: fc.constantFrom('commit', 'none', 'COMMIT') },
    { weight: 1, arbitrary: text },
  );
  const pairs = fc.array(fc.tuple(keyArb, valueArb, fc.boolean()), { minLength: 1, maxLength: 4 });
  return fc.oneof(
    {
      weight: 6,
      arbitrary: pairs.map((ps) =>
        ps.map(([k, v, bare]) => (bare ? enc(k) : `${enc(k)}=${enc(v)}`)).join('&'),
      ),
    },
    {
      weight: 1,
      arbitrary: pairs.map((ps) => ps.map(([k, v]) => `${enc(k)}=${enc(v)}`).join(';')),
    },
    { weight: 1, arbitrary: fc.constantFrom('', '&&&', '=', '&=&') },
  );
}

/** A deep nesting of arrays or objects, as JSON text. */
const deepJson = fc
  .tuple(fc.integer({ min: 1, max: 20_000 }), fc.boolean())
  .map(([depth, arrays]) =>
    arrays
      ? `{"tx":"00","x":${'['.repeat(depth)}${']'.repeat(depth)}}`
      : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`,
  );

/** Valid transaction bytes, and ways of spelling or bending them. */
const txBody = fc
  .tuple(
    fc.constantFrom(
      'hex',
      'HEX',
      '0x',
      'base64',
      'base64-unpadded',
      'base64-url',
      'trailing-byte',
      'truncated',
      'flipped',
      'raw',
    ),
    fc.nat(),
    fc.integer({ min: 1, max: 300 }),
  )
  .map(([form, at, sizeLots]) => {
    const bytes = freshTx(sizeLots);
    const hex = toHex(bytes);
    const b64 = Buffer.from(bytes).toString('base64');
    const bent = Uint8Array.from(bytes);
    switch (form) {
      case 'hex':
        return { type: 'application/json', payload: JSON.stringify({ tx: hex }) };
      case 'HEX':
        return { type: 'application/json', payload: JSON.stringify({ tx: hex.toUpperCase() }) };
      case '0x':
        return { type: 'application/json', payload: JSON.stringify({ tx: `0x${hex}` }) };
      case 'base64':
        return {
          type: 'application/json',
          payload: JSON.stringify({ tx: b64, encoding: 'base64' }),
        };
      case 'base64-unpadded':
        return {
          type: 'application/json',
          payload: JSON.stringify({ tx: b64.replace(/=+$/, ''), encoding: 'base64' }),
        };
      case 'base64-url':
        return {
          type: 'application/json',
          payload: JSON.stringify({
            tx: Buffer.from(bytes).toString('base64url'),
            encoding: 'base64',
          }),
        };
      case 'trailing-byte':
        return {
          type: 'application/octet-stream',
          payload: Buffer.concat([bytes, Buffer.from([0])]),
        };
      case 'truncated':
        return {
          type: 'application/octet-stream',
          payload: Buffer.from(bytes.slice(0, at % bytes.length)),
        };
      case 'flipped':
        bent[at % bent.length]! ^= 1 << (at % 8);
        return { type: 'application/octet-stream', payload: Buffer.from(bent) };
      default:
        return { type: 'application/octet-stream', payload: Buffer.from(bytes) };
    }
  });

const jsonBody = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  fc
    .record(
      {
        tx: fc.oneof(hexOf(0, 64), fc.jsonValue({ maxDepth: 1 }), text),
        encoding: fc.oneof(
          fc.constantFrom('hex', 'base64', 'HEX', ''),
          fc.jsonValue({ maxDepth: 1 }),
        ),
      },
      { requiredKeys: [] },
    )
    .map((v) => JSON.stringify(v)),
  fc.constantFrom(
    '{"tx":"00","__proto__":{"admin":true}}',
    '{"tx":"00","constructor":{"prototype":{"admin":true}}}',
    '{"__proto__":[]}',
    '{"tx":123456789012345678901234567890}',
    '{"tx":1e400}',
    '{"tx":-0}',
    '{"tx":"00","encoding":"hex","encoding":"base64"}',
    '{"tx":"\\u0030\\u0030"}',
    '{"tx":"00"',
    '',
    'null',
    '\ufeff{"tx":"00"}',
  ),
  deepJson,
  fc.integer({ min: 0, max: 30_000 }).map((n) => `{"tx":"00","a":[${'1,'.repeat(n)}1]}`),
);

const contentType = fc.constantFrom(
  undefined,
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=latin1',
  'APPLICATION/JSON',
  'application/octet-stream',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json;;;',
  '',
  '*/*',
);
const body = fc.oneof(
  { weight: 3, arbitrary: txBody },
  {
    weight: 3,
    arbitrary: fc.tuple(contentType, jsonBody).map(([type, payload]) => ({ type, payload })),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(contentType, fc.uint8Array({ maxLength: 600 })).map(([type, b]) => ({
      type,
      payload: Buffer.from(b),
    })),
  },
);

const templates = Object.entries(openApiDocument().paths as Record<string, Record<string, object>>)
  .flatMap(([path, ops]) =>
    Object.keys(ops).map((method) => ({ path, method: method.toUpperCase() })),
  )
  // The WebSocket has a driver of its own (fuzz_ws.test.ts).
  .filter((t) => t.path !== '/v1/ws');

/** The route of an OpenAPI path, by its Fastify form. */
function routeOf(openApiPath: string, method: string): RouteDef | undefined {
  const fastifyPath = openApiPath.replace(/\{([A-Za-z0-9_]+)\}/g, ':$1');
  return (Object.values(routes) as RouteDef[]).find(
    (d) => d.path === fastifyPath && d.method === method,
  );
}

const request = fc.tuple(fc.constantFrom(...templates), fc.nat(9)).chain(([t, methodRoll]) => {
  const def = routeOf(t.path, t.method);
  const names = [...t.path.matchAll(/\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]!);
  return fc.record({
    // Mostly the route's own method; sometimes one it does not take.
    method: fc.constant(
      methodRoll < 8
        ? t.method
        : (['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'HEAD'] as const)[methodRoll % 6]!,
    ),
    path: fc.tuple(...names.map(() => segment)).map((values) => {
      let i = 0;
      return t.path.replace(/\{[A-Za-z0-9_]+\}/g, () => values[i++]!);
    }),
    query: queryOf(def),
    body:
      t.method === 'POST' || methodRoll >= 8
        ? fc.option(body, { nil: undefined })
        : fc.constant(undefined),
  });
});

// --- checks -----------------------------------------------------------------------------

/** Asserts the answer is what the API promises for any request; returns the parsed body. */
function checkAnswer(
  label: string,
  method: string,
  path: string,
  status: number,
  text: string,
): void {
  assert.ok(status < 500, `${label}: ${status} ${text.slice(0, 300)}`);
  assert.doesNotMatch(text, INTERNALS, `${label}: internals in ${text.slice(0, 300)}`);
  if (method === 'HEAD') return;
  const json = JSON.parse(text) as Record<string, unknown>;
  if (status >= 400) {
    assert.ok(status >= 400 && status < 500, `${label}: ${status}`);
    for (const field of Object.keys(json)) {
      assert.ok(ERROR_FIELDS.has(field), `${label}: error field ${field} in ${text}`);
    }
    assert.match(String(json.code), /^[A-Z][A-Za-z]+$/, `${label}: code of ${text}`);
    assert.equal(typeof json.message, 'string', `${label}: message of ${text}`);
    // An error names what was wrong; it does not echo a large request back.
    assert.ok(text.length <= 1_024, `${label}: ${text.length} chars of error`);
    return;
  }
  assert.ok(status >= 200 && status < 300, `${label}: ${status}`);
  const [route = '', search = ''] = path.split('?', 2);
  for (const [name, { def, check }] of responseCheck) {
    const [m, p] = name.split(' ') as [string, string];
    const re = new RegExp(`^${p.replace(/:[A-Za-z0-9_]+/g, '[^/]+')}$`);
    if (m !== method || !re.test(route)) continue;
    assert.ok(check(json), `${label}: answer breaks its schema: ${text.slice(0, 300)}`);
    // Accepted: each integer of the query is one its schema allows, read exactly (BigInt).
    const properties = (def.query?.json.properties ?? {}) as Record<string, JsonSchema>;
    for (const [k, v] of new URLSearchParams(search.replaceAll(';', '&'))) {
      const property = properties[k];
      assert.ok(property !== undefined, `${label}: accepted unknown query field ${k}`);
      if (property.type !== 'integer') continue;
      assert.match(v, /^[0-9]+$/, `${label}: accepted ${k}=${v}`);
      const n = BigInt(v);
      const inRange =
        (property.minimum === undefined || n >= BigInt(property.minimum as number)) &&
        (property.maximum === undefined || n <= BigInt(property.maximum as number));
      assert.ok(inRange, `${label}: accepted ${k}=${v.slice(0, 20)}… (${v.length} digits)`);
    }
  }
}

async function stillServes(server: ApiServer): Promise<void> {
  const status = await server.app.inject({ url: '/v1/status' });
  assert.equal(status.statusCode, 200, 'status after the fuzzing');
  const book = await server.app.inject({ url: `/v1/book/${PERP}?depth=1` });
  assert.equal(book.statusCode, 200, 'book after the fuzzing');
  const submit = await server.app.inject({
    method: 'POST',
    url: '/v1/tx?wait=commit',
    payload: { tx: toHex(freshTx()) },
  });
  assert.equal(submit.statusCode, 200, `submit after the fuzzing: ${submit.body}`);
  assert.equal(submit.json().status, 'committed');
}

test('fuzz: every route answers any request with a 2xx of its schema or a typed 4xx, never internals', async () => {
  const view = makeView({ autoCommit: true });
  view.setAccount({ address: ADDRESS, subaccounts: [] });
  const server = await serve(view, OPEN_LIMITS);
  try {
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const url = r.query === '' ? r.path : `${r.path}?${r.query}`;
        const answer = await server.app.inject({
          method: r.method,
          url,
          ...(r.body !== undefined
            ? {
                payload: r.body.payload,
                headers: r.body.type !== undefined ? { 'content-type': r.body.type } : {},
              }
            : {}),
        });
        checkAnswer(`${r.method} ${url}`, r.method, url, answer.statusCode, answer.body);
      }),
      { numRuns: 600, seed: 20261126, includeErrorInReport: true },
    );
    await stillServes(server);
  } finally {
    await server.close();
  }
});

/** Every integer of a route's path or query, with a valid request around it. */
const integerFields = (Object.values(routes) as RouteDef[]).flatMap((def) =>
  (['params', 'query'] as const).flatMap((where) =>
    Object.entries((def[where]?.json.properties ?? {}) as Record<string, JsonSchema>)
      .filter(([, p]) => p.type === 'integer')
      .map(([name, property]) => ({ def, where, name, property })),
  ),
);

test('fuzz: an integer in a path or query is accepted exactly when its digits are in range', async () => {
  const view = makeView({ autoCommit: true });
  view.setAccount({ address: ADDRESS, subaccounts: [] });
  const server = await serve(view, OPEN_LIMITS);
  const valid: Record<string, string> = { instrument: PERP, address: ADDRESS };
  try {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...integerFields.keys()), numberText, async (i, value) => {
        const f = integerFields[i]!;
        let path = f.def.path.replace(/:([A-Za-z0-9_]+)/g, (_, n: string) =>
          n === f.name ? enc(value) : valid[n]!,
        );
        if (f.where === 'query') path += `?${f.name}=${enc(value)}`;
        const post = f.def.method === 'POST';
        const answer = await server.app.inject({
          method: f.def.method,
          url: path,
          ...(post ? { payload: { tx: toHex(freshTx()) } } : {}),
        });
        const label = `${f.def.method} ${path.slice(0, 80)}`;
        checkAnswer(label, f.def.method, path, answer.statusCode, answer.body);
        const min = BigInt((f.property.minimum as number | undefined) ?? 0);
        const max = BigInt((f.property.maximum as number | undefined) ?? Number.MAX_SAFE_INTEGER);
        const inRange = /^[0-9]+$/.test(value) && BigInt(value) >= min && BigInt(value) <= max;
        if (!inRange) {
          assert.equal(answer.statusCode, 400, `${label}: ${answer.body.slice(0, 200)}`);
          const where = f.where === 'query' ? 'querystring' : 'params';
          // The router refuses a path parameter past its length before the schema sees it.
          const tooLong = where === 'params' && enc(value).length > 100;
          if (!tooLong) assert.equal(answer.json().field, `${where}/${f.name}`, label);
        } else {
          // In range: anything but a refusal of this field (a block not there yet is a 404).
          assert.notEqual(answer.json().field, `${f.where}/${f.name}`, label);
        }
      }),
      { numRuns: 300, seed: 5309, includeErrorInReport: true },
    );
  } finally {
    await server.close();
  }
});

/** One request over a fresh loopback connection, written byte for byte: its status and body. */
function rawRequest(
  url: string,
  head: string,
  payload: Buffer,
): Promise<{ status: number; text: string; extra: string }> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      // An interim 100 Continue (expect: 100-continue) comes before the answer.
      const all = Buffer.concat(chunks)
        .toString('utf8')
        .replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '');
      const split = all.indexOf('\r\n\r\n');
      const top = all.slice(0, Math.max(0, split));
      const length = /content-length: *([0-9]+)/i.exec(top)?.[1];
      const rest = all.slice(split + 4);
      const text = length === undefined ? rest : rest.slice(0, Number(length));
      resolve({ status: Number(top.split(' ')[1]), text, extra: rest.slice(text.length) });
    });
    socket.end(Buffer.concat([Buffer.from(head, 'latin1'), payload]));
  });
}

test('fuzz: the same over real sockets, with raw request lines, headers and content lengths', async () => {
  const server = await serve(makeView({ autoCommit: true }), OPEN_LIMITS);
  const badHeaders = fc.constantFrom(
    '',
    'content-length: 5\r\n',
    'content-length: -1\r\n',
    'content-length: 99999999999999999999\r\n',
    'transfer-encoding: chunked\r\n',
    'transfer-encoding: gzip\r\n',
    'content-encoding: gzip\r\n',
    'expect: 100-continue\r\n',
    'x-forwarded-for: 1.2.3.4\r\n',
  );
  try {
    await fc.assert(
      fc.asyncProperty(request, badHeaders, async (r, extra) => {
        const url = r.query === '' ? r.path : `${r.path}?${r.query}`;
        const payload = r.body === undefined ? Buffer.alloc(0) : Buffer.from(r.body.payload);
        const type = r.body?.type === undefined ? '' : `content-type: ${r.body.type}\r\n`;
        const length =
          extra.startsWith('content-length') || extra.startsWith('transfer')
            ? extra
            : `content-length: ${payload.length}\r\n${extra}`;
        const head = `${r.method} ${url} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n${type}${length}\r\n`;
        const answer = await rawRequest(server.url, head, payload);
        const label = `${r.method} ${url} [${extra.trim()}]`;
        if (r.method === 'HEAD' || answer.text === '') {
          assert.ok(answer.status < 500, `${label}: ${answer.status}`);
          return;
        }
        // A body sent chunked may carry the chunk framing: the JSON is what is between.
        const jsonText = answer.text.includes('\r\n') ? answer.text.split('\r\n')[1]! : answer.text;
        checkAnswer(label, r.method, url, answer.status, jsonText);
        // One request, one answer: nothing more on the connection that a pipelining client
        // would take for the answer to its next request.
        assert.equal(answer.extra, '', `${label}: a second answer after the first`);
      }),
      { numRuns: 150, seed: 11262026, includeErrorInReport: true },
    );
    await stillServes(server);
  } finally {
    await server.close();
  }
});
