// Seeded fuzzing of the SDK (zomma/client): random arguments are refused
// before sending exactly when, and as, the node refuses them; and whatever a
// server answers (bodies that are not the node's, frames that are not the
// protocol's), the SDK surfaces a ZommaApiError or ignores the frame, never
// throws anything else.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { WebSocketServer } from 'ws';
import {
  ZommaApiError,
  ZommaClient,
  ZommaRequestRefused,
  routes,
} from '../../src/api/client/index.ts';
import type { ChannelEvent } from '../../src/api/client/index.ts';
import type { RouteDef } from '../../src/api/routes.ts';
import { PERP, makeView, serve } from './fixtures.ts';

const ADDRESS = '0x' + '44'.repeat(20);

const argument = fc.oneof(
  fc.constantFrom<unknown>(PERP, ADDRESS, 'a'.repeat(64), 'btc-perpetual', '', '0x12'),
  fc.integer({ min: -5, max: 2_000 }),
  fc.constantFrom<unknown>(
    0,
    -0,
    1.5,
    Number.NaN,
    Infinity,
    2 ** 53,
    1e21,
    '5',
    '0x10',
    '9'.repeat(400),
    null,
    true,
  ),
  fc.string({ maxLength: 8 }),
);

/** Routes with a path or query: their arguments are what a caller gets wrong. */
const callable = (Object.values(routes) as RouteDef[]).filter(
  (d) => d.method === 'GET' && (d.params !== undefined || d.query !== undefined),
);

test('fuzz: the SDK refuses an argument before sending exactly when the node refuses it, alike', async () => {
  const view = makeView();
  view.setAccount({ address: ADDRESS, subaccounts: [] });
  const server = await serve(view, { ipRequestsPerS: 1e9, ipBurstRequests: 1e9 });
  let sent = 0;
  const client = new ZommaClient({
    url: server.url,
    fetch: (input, init) => {
      sent++;
      return fetch(input, init);
    },
  });
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...callable.keys()),
        fc.dictionary(fc.constantFrom('depth', 'limit', 'subaccount', 'x'), argument, {
          maxKeys: 2,
        }),
        argument,
        async (i, query, param) => {
          const def = callable[i]!;
          const names = Object.keys((def.params?.json.properties ?? {}) as object);
          const params = Object.fromEntries(names.map((n) => [n, param]));
          const before = sent;
          const local = await client
            .request(def, { params, query } as never)
            .then(() => undefined)
            .catch((e: unknown) => e);
          // The same request, spelled as the SDK spells it, straight to the node.
          let path = def.path.replace(/:([A-Za-z0-9_]+)/g, (_, n: string) =>
            encodeURIComponent(String(params[n])),
          );
          const search = new URLSearchParams();
          for (const [k, v] of Object.entries(query)) {
            if (v !== undefined) search.set(k, String(v));
          }
          if (search.size > 0) path += `?${search}`;
          const remote = await fetch(server.url + path);
          const body = (await remote.json()) as Record<string, unknown>;
          if (local instanceof ZommaRequestRefused) {
            assert.equal(sent, before, `${path}: refused, yet sent`);
            assert.equal(remote.status, 400, `${path}: the node takes what the SDK refused`);
            // A path parameter past the router's 100 characters is refused before the schema.
            const tooLong = names.some((n) => encodeURIComponent(String(params[n])).length > 100);
            assert.deepEqual(
              tooLong
                ? { code: local.code }
                : { code: local.code, message: local.message, field: local.field },
              tooLong ? { code: body.code } : body,
              path,
            );
          } else if (local !== undefined) {
            assert.ok(local instanceof ZommaApiError, `${path}: ${String(local)}`);
            assert.equal(local.status, remote.status, path);
            assert.equal(local.code, body.code, path);
            // What the node refuses for its schema, the SDK refuses itself.
            assert.notEqual(remote.status, 400, `${path}: sent, though the node refuses it`);
          } else {
            assert.equal(remote.status, 200, `${path}: the SDK took an answer the node refuses`);
          }
        },
      ),
      { numRuns: 300, seed: 4401, includeErrorInReport: true },
    );
  } finally {
    await server.close();
  }
});

test('fuzz: any answer that is not the node’s becomes a ZommaApiError with its status', async () => {
  const answer = fc.record({
    status: fc.constantFrom(200, 201, 400, 404, 429, 500, 502, 503),
    text: fc.oneof(
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
      fc.constantFrom('null', '[]', '"oops"', '12', '{"code":7}', '{"message":[]}', '<html>', ''),
      fc.string({ maxLength: 20 }),
    ),
  });
  await fc.assert(
    fc.asyncProperty(answer, async ({ status, text }) => {
      const client = new ZommaClient({
        url: 'http://127.0.0.1:1',
        fetch: async () => new Response(text, { status }),
      });
      const outcome = await client
        .status()
        .then(() => undefined)
        .catch((e: unknown) => e);
      if (status >= 400) {
        assert.ok(outcome instanceof ZommaApiError, `${status} ${text}: ${String(outcome)}`);
        assert.equal(outcome.status, status);
        assert.equal(typeof outcome.code, 'string');
        assert.equal(typeof outcome.message, 'string');
      } else {
        let json = true;
        try {
          JSON.parse(text);
        } catch {
          json = false;
        }
        if (!json) assert.ok(outcome instanceof ZommaApiError, `${status} ${text}`);
      }
    }),
    { numRuns: 200, seed: 4402, includeErrorInReport: true },
  );
});

test('fuzz: frames that are not the protocol’s are ignored by the socket, which goes on', async () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => wss.once('listening', resolve));
  const { port } = wss.address() as AddressInfo;
  const frames = fc.array(
    fc.oneof(
      fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
      fc.constantFrom(
        'null',
        '0',
        '"update"',
        '[]',
        '{"type":null}',
        '{"type":"update"}',
        '{"type":"error"}',
        '{"type":"error","id":"1"}',
        '{"type":"submitted","id":{}}',
        '{"type":"snapshot","channel":"nope","seq":1}',
        '{"type":"subscribed","channel":"__proto__"}',
        'not json',
      ),
    ),
    { maxLength: 12 },
  );
  try {
    await fc.assert(
      fc.asyncProperty(frames, async (garbage) => {
        wss.removeAllListeners('connection');
        wss.on('connection', (ws) => {
          ws.once('message', () => {
            for (const frame of garbage) ws.send(frame);
            ws.send(JSON.stringify({ type: 'subscribed', channel: 'blocks' }));
            ws.send(JSON.stringify({ type: 'snapshot', channel: 'blocks', seq: 3, data: null }));
          });
        });
        const socket = new ZommaClient(`http://127.0.0.1:${port}`).socket({ heartbeatMs: 0 });
        try {
          const event = await new Promise<ChannelEvent>((resolve) =>
            socket.subscribe('blocks', resolve),
          );
          assert.deepEqual([event.type, event.seq], ['snapshot', 3]);
        } finally {
          socket.close();
        }
      }),
      { numRuns: 30, seed: 4403, includeErrorInReport: true },
    );
  } finally {
    for (const client of wss.clients) client.terminate();
    await new Promise((resolve) => wss.close(resolve));
  }
});
