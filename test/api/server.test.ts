// The HTTP server over real loopback sockets: every route's happy path and its
// 4xx answers, the OpenAPI document, limits (429, 413), and that no error body
// ever carries a stack trace.

import { connect } from 'node:net';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAddress } from '../../src/crypto/index.ts';
import { buildTx } from '../../src/exchange/tx/index.ts';
import { toHex } from '../../src/lib/bytes.ts';
import pino from 'pino';
import { ApiError, statusOfCode } from '../../src/api/errors.ts';
import { INTEGER_TEXT, openApiDocument, openApiPath } from '../../src/api/openapi.ts';
import { StorageError } from '../../src/node/storage/errors.ts';
import { startApiServer } from '../../src/api/server.ts';
import { routes } from '../../src/api/routes.ts';
import { SUBMIT_REJECT_CODES, TX_DROP_CODES } from '../../src/api/view.ts';
import type { ReadModel, SubmitRejectCode } from '../../src/api/view.ts';
import { REJECT_CODES } from '../../src/exchange/errors.ts';
import {
  CHAIN_ID,
  ManualClock,
  OPTION,
  PERP,
  key,
  makeView,
  refuseLargeOrders,
  order,
  serve,
  subaccount,
} from './fixtures.ts';

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

async function call(
  url: string,
  path: string,
  init: { method?: string; body?: string | Uint8Array; type?: string } = {},
): Promise<Answer> {
  const response = await fetch(url + path, {
    method: init.method ?? 'GET',
    ...(init.body !== undefined ? { body: init.body } : {}),
    headers: init.type !== undefined ? { 'content-type': init.type } : {},
  });
  const text = await response.text();
  // No answer, error or not, ever carries a stack trace or a file path.
  assert.doesNotMatch(text, /\bat .*\.(ts|js):\d+|node_modules|\/src\//);
  return { status: response.status, body: JSON.parse(text), headers: response.headers };
}

test('query routes answer from the read model', async () => {
  const view = makeView();
  const address = formatAddress(key(1).address);
  view.setAccount({ address, subaccounts: [subaccount(0), subaccount(1)] });
  const server = await serve(view);
  try {
    const url = server.url;
    const status = await call(url, '/v1/status');
    assert.equal(status.status, 200);
    assert.equal(status.body.chainId, CHAIN_ID);
    assert.equal(status.body.height, 1);

    const validators = await call(url, '/v1/validators');
    assert.equal((validators.body.validators as unknown[]).length, 1);

    const instruments = await call(url, '/v1/instruments');
    assert.deepEqual(
      (instruments.body.instruments as { instrument: string }[]).map((i) => i.instrument),
      [PERP, OPTION],
    );

    const ticker = await call(url, `/v1/ticker/${PERP}`);
    assert.equal(ticker.body.markTicks, 200);
    assert.equal(ticker.body.fundingRatePpm, -12);
    const optionTicker = await call(url, `/v1/ticker/${OPTION}`);
    assert.equal(optionTicker.body.markIv, '0.65');
    assert.deepEqual(optionTicker.body.greeks, {
      delta: '0.51',
      gamma: '0.00002',
      vega: '120.5',
      theta: '-30.25',
    });

    const book = await call(url, `/v1/book/${PERP}?depth=1`);
    assert.deepEqual(book.body, {
      instrument: PERP,
      height: 1,
      seq: 1,
      bids: [[199, 10]],
      asks: [[201, 5]],
    });

    const trades = await call(url, `/v1/trades/${PERP}?limit=10`);
    assert.equal((trades.body.trades as unknown[]).length, 1);

    const account = await call(url, `/v1/account/${address}?subaccount=1`);
    assert.equal(account.status, 200);
    const subs = account.body.subaccounts as { subaccount: number; cashQuote: string }[];
    assert.deepEqual(
      subs.map((s) => s.subaccount),
      [1],
    );
    assert.equal(subs[0]!.cashQuote, '1000000000');

    const block = await call(url, '/v1/block/1');
    assert.equal(block.body.height, 1);
  } finally {
    await server.close();
  }
});

test('queries refuse bad input with 400 and unknown objects with 404, each with a code', async () => {
  const server = await serve(makeView());
  try {
    const url = server.url;
    const cases: [string, number, string][] = [
      [`/v1/book/${PERP}?depth=0`, 400, 'BadRequest'],
      [`/v1/book/${PERP}?depth=abc`, 400, 'BadRequest'],
      [`/v1/book/${PERP}?depth=1&colour=red`, 400, 'BadRequest'],
      ['/v1/book/btc-perp', 400, 'BadRequest'],
      ['/v1/book/ETH-PERPETUAL', 404, 'NotFound'],
      ['/v1/ticker/ETH-PERPETUAL', 404, 'NotFound'],
      ['/v1/trades/ETH-PERPETUAL', 404, 'NotFound'],
      [`/v1/trades/${PERP}?limit=100000`, 400, 'BadRequest'],
      ['/v1/account/0x1234', 400, 'BadRequest'],
      [`/v1/account/0x${'22'.repeat(20)}`, 404, 'NotFound'],
      [`/v1/account/0x${'22'.repeat(20)}?subaccount=256`, 400, 'BadRequest'],
      ['/v1/tx/nothex', 400, 'BadRequest'],
      [`/v1/tx/${'00'.repeat(32)}`, 404, 'NotFound'],
      ['/v1/block/0', 400, 'BadRequest'],
      ['/v1/block/99', 404, 'NotFound'],
      // Past 2^53 a height is not a number the node can hold, not a block yet to come.
      ['/v1/block/99999999999999999999999999', 400, 'BadRequest'],
      ['/v1/nowhere', 404, 'NotFound'],
      ['/v1/ws', 426, 'UpgradeRequired'],
      // Routes that take no query refuse any parameter, as the others refuse unknown ones.
      ['/v1/status?x=1', 400, 'BadRequest'],
      ['/v1/instruments?depth=5', 400, 'BadRequest'],
      [`/v1/ticker/${PERP}?depth=5`, 400, 'BadRequest'],
      [`/v1/tx/${'00'.repeat(32)}?wait=commit`, 400, 'BadRequest'],
      ['/openapi.json?x=1', 400, 'BadRequest'],
      ['/v1/ws?x=1', 400, 'BadRequest'],
      // Refused by the router itself, still with the API's error body.
      ['/v1/book/%ZZ', 400, 'BadRequest'],
      [`/v1/ticker/${'A'.repeat(500)}`, 400, 'BadRequest'],
    ];
    for (const [path, status, code] of cases) {
      const answer = await call(url, path);
      assert.equal(answer.status, status, path);
      assert.equal(answer.body.code, code, path);
      assert.equal(typeof answer.body.message, 'string', path);
    }
    // An unknown route is named, cut short: the answer does not echo a long path back.
    const long = await call(url, `/v1/${'x'.repeat(4_000)}`);
    assert.equal(long.status, 404);
    assert.ok((long.body.message as string).length < 200, 'the message is bounded');
    assert.match(long.body.message as string, /^no route GET \/v1\/xxx.*…$/);
    // The answer names the parameter it does not know.
    const unknown = await call(url, `/v1/book/${PERP}?depth=1&colour=red`);
    assert.equal(unknown.body.field, 'querystring/colour');
    assert.equal(unknown.body.message, 'querystring/colour is not a known field');
    assert.equal((await call(url, '/v1/status?x=1')).body.field, 'querystring/x');
    // A long unknown name is cut short too (128 characters, then an ellipsis).
    const longKey = await call(url, `/v1/status?${'k'.repeat(8_000)}=1`);
    assert.equal(longKey.body.field, `querystring/${'k'.repeat(128)}…`);
    assert.ok((longKey.body.message as string).length < 200, 'the message is bounded');
    // A malformed name, address or hash is told in words, not as a regular expression.
    const words: [string, string][] = [
      ['/v1/book/btc-perpetual', 'params/instrument must be an instrument name'],
      ['/v1/account/0x1234', 'params/address must be 0x and 40 hex digits'],
      [`/v1/tx/${'AB'.repeat(32)}`, 'params/hash must be 64 lower-case hex digits'],
    ];
    for (const [path, message] of words) {
      const answer = await call(url, path);
      assert.ok(String(answer.body.message).startsWith(message), `${path}: ${answer.body.message}`);
      assert.doesNotMatch(String(answer.body.message), /\^|\$/, path);
    }
  } finally {
    await server.close();
  }
});

test('an integer in a path or query is plain decimal digits, nothing Number() would read', async () => {
  const view = makeView();
  const address = formatAddress(key(1).address);
  view.setAccount({ address, subaccounts: [subaccount(0), subaccount(1)] });
  const server = await serve(view);
  try {
    const url = server.url;
    const loose: [string, string][] = [
      [`/v1/book/${PERP}?depth=0x10`, 'querystring/depth'],
      [`/v1/book/${PERP}?depth=1e2`, 'querystring/depth'],
      [`/v1/book/${PERP}?depth=+5`, 'querystring/depth'],
      [`/v1/book/${PERP}?depth=5.0`, 'querystring/depth'],
      [`/v1/book/${PERP}?depth=%205`, 'querystring/depth'],
      [`/v1/book/${PERP}?depth=`, 'querystring/depth'],
      [`/v1/trades/${PERP}?limit=%207`, 'querystring/limit'],
      [`/v1/trades/${PERP}?limit=0b11`, 'querystring/limit'],
      [`/v1/account/${address}?subaccount=0x1`, 'querystring/subaccount'],
      [`/v1/account/${address}?subaccount=-0`, 'querystring/subaccount'],
      ['/v1/block/0x1', 'params/height'],
      ['/v1/block/1e0', 'params/height'],
      ['/v1/block/+1', 'params/height'],
      [`/v1/tx?timeoutMs=1e3`, 'querystring/timeoutMs'],
    ];
    for (const [path, field] of loose) {
      const method = path.startsWith('/v1/tx') ? 'POST' : 'GET';
      const answer = await call(url, path, { method });
      assert.equal(answer.status, 400, path);
      assert.equal(answer.body.code, 'BadRequest', path);
      assert.equal(answer.body.field, field, path);
      assert.equal(answer.body.message, `${field} must be plain decimal digits`, path);
    }
    // Digits are read as before, and still checked against the range.
    assert.equal((await call(url, `/v1/book/${PERP}?depth=5`)).status, 200);
    assert.equal((await call(url, `/v1/account/${address}?subaccount=1`)).status, 200);
    assert.equal((await call(url, '/v1/block/1')).status, 200);
    const over = await call(url, `/v1/book/${PERP}?depth=100000`);
    assert.equal(over.body.code, 'BadRequest');
    assert.equal(over.body.field, 'querystring/depth');
    // More digits than a number holds (309 and up read as Infinity) are past the range too,
    // not a depth or limit without bound.
    const endless: [string, string, number][] = [
      [`/v1/book/${PERP}?depth=${'9'.repeat(309)}`, 'querystring/depth', 1000],
      [`/v1/trades/${PERP}?limit=1${'0'.repeat(400)}`, 'querystring/limit', 1000],
      [`/v1/account/${address}?subaccount=${'9'.repeat(309)}`, 'querystring/subaccount', 255],
      [`/v1/tx?timeoutMs=${'9'.repeat(309)}`, 'querystring/timeoutMs', 60_000],
    ];
    for (const [path, field, maximum] of endless) {
      const method = path.startsWith('/v1/tx') ? 'POST' : 'GET';
      const answer = await call(url, path, { method });
      assert.equal(answer.status, 400, path);
      assert.equal(answer.body.field, field, path);
      assert.equal(answer.body.message, `${field} must be <= ${maximum}`, path);
    }
  } finally {
    await server.close();
  }
});

test('a transaction is accepted as hex, base64 or raw bytes, and pending until committed', async () => {
  const view = makeView();
  const server = await serve(view);
  try {
    const a = order(1);
    const b = order(2);
    const c = order(3);
    const hex = await call(server.url, '/v1/tx', {
      method: 'POST',
      body: JSON.stringify({ tx: toHex(a.bytes) }),
      type: 'application/json',
    });
    assert.deepEqual(hex.body, { hash: toHex(a.hash), status: 'pending' });
    const base64 = await call(server.url, '/v1/tx', {
      method: 'POST',
      body: JSON.stringify({ tx: Buffer.from(b.bytes).toString('base64'), encoding: 'base64' }),
      type: 'application/json',
    });
    assert.equal(base64.body.hash, toHex(b.hash));
    const raw = await call(server.url, '/v1/tx', {
      method: 'POST',
      body: c.bytes,
      type: 'application/octet-stream',
    });
    assert.equal(raw.body.hash, toHex(c.hash));

    assert.equal((await call(server.url, `/v1/tx/${toHex(a.hash)}`)).body.status, 'pending');
    view.commit();
    const committed = await call(server.url, `/v1/tx/${toHex(a.hash)}`);
    assert.equal(committed.body.status, 'committed');
    assert.equal(committed.body.height, 2);
    const block = await call(server.url, '/v1/block/2');
    assert.equal((block.body.txs as unknown[]).length, 3);
  } finally {
    await server.close();
  }
});

test('wait=commit answers with the final result, a typed rejection, or CommitTimeout', async () => {
  const view = makeView({
    autoCommit: true,
    decide: refuseLargeOrders,
  });
  const server = await serve(view);
  try {
    const ok = order(1);
    const answer = await call(server.url, '/v1/tx?wait=commit', {
      method: 'POST',
      body: ok.bytes,
      type: 'application/octet-stream',
    });
    assert.equal(answer.status, 200);
    assert.equal(answer.body.status, 'committed');
    assert.equal(answer.body.hash, toHex(ok.hash));

    const big = order(2, CHAIN_ID, 1_000);
    const refused = await call(server.url, '/v1/tx?wait=commit', {
      method: 'POST',
      body: big.bytes,
      type: 'application/octet-stream',
    });
    assert.equal(refused.status, 422);
    assert.equal(refused.body.code, 'InsufficientMargin');
    assert.equal(refused.body.hash, toHex(big.hash));
  } finally {
    await server.close();
  }

  const slow = makeView();
  const slowServer = await serve(slow);
  try {
    const tx = order(3);
    const timedOut = await call(slowServer.url, '/v1/tx?wait=commit&timeoutMs=1', {
      method: 'POST',
      body: tx.bytes,
      type: 'application/octet-stream',
    });
    assert.equal(timedOut.status, 504);
    assert.equal(timedOut.body.code, 'CommitTimeout');
    assert.equal(timedOut.body.hash, toHex(tx.hash));
  } finally {
    await slowServer.close();
  }
});

test('wait=commit: a transaction the mempool drops is answered at once with why, its hash and status; it looks up as dropped', async () => {
  const view = makeView();
  const server = await serve(view);
  const post = (bytes: Uint8Array) =>
    call(server.url, '/v1/tx?wait=commit&timeoutMs=60000', {
      method: 'POST',
      body: bytes,
      type: 'application/octet-stream',
    });
  try {
    const cases = [
      ['Evicted', 410],
      ['Expired', 422],
      ['StaleNonce', 422],
      ['DuplicateNonce', 409],
    ] as const;
    for (const [i, [code, status]] of cases.entries()) {
      const tx = order(40 + i);
      const hash = toHex(tx.hash);
      const answer = post(tx.bytes);
      // Admitted and waiting: then let go of, as the node's mempool does.
      await until(async () => (await call(server.url, `/v1/tx/${hash}`)).status === 200);
      view.drop(hash, code, `dropped: ${code}`);
      const dropped = await answer;
      assert.equal(dropped.status, status, code);
      assert.deepEqual(dropped.body, { code, message: `dropped: ${code}`, hash });
      const looked = await call(server.url, `/v1/tx/${hash}`);
      assert.deepEqual(looked.body, { hash, status: 'dropped', code, message: `dropped: ${code}` });
    }
    // A dropped one may be submitted again: pending, then committed as any other.
    const again = order(40);
    const resent = post(again.bytes);
    await until(
      async () => (await call(server.url, `/v1/tx/${toHex(again.hash)}`)).body.status === 'pending',
    );
    view.commit();
    assert.equal((await resent).body.status, 'committed');
  } finally {
    await server.close();
  }
});

test('wait=commit: a server that closes answers its waiters 503 Unavailable with the hash, not a CommitTimeout', async () => {
  const view = makeView();
  const server = await serve(view);
  const tx = order(1);
  const hash = toHex(tx.hash);
  const answer = call(server.url, '/v1/tx?wait=commit&timeoutMs=60000', {
    method: 'POST',
    body: tx.bytes,
    type: 'application/octet-stream',
  });
  try {
    await until(async () => (await call(server.url, `/v1/tx/${hash}`)).status === 200);
  } finally {
    await server.close();
  }
  // Long before its timeout: not "not final after 60000 ms".
  const closed = await answer;
  assert.equal(closed.status, 503);
  assert.equal(closed.body.code, 'Unavailable');
  assert.equal(closed.body.hash, hash);
});

/** Polls `check` on every turn of the event loop until it holds. */
async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setImmediate(resolve));
}

test('bad transactions get 4xx with the tx layer codes', async () => {
  const view = makeView({ mempoolMax: 1 });
  const server = await serve(view);
  const post = (body: string | Uint8Array, type = 'application/octet-stream', query = '') =>
    call(server.url, `/v1/tx${query}`, { method: 'POST', body, type });
  try {
    const good = order(1);
    const forged = good.bytes.slice();
    forged[forged.length - 1]! ^= 1;
    assert.deepEqual(
      [(await post(forged)).status, (await post(forged)).body.code],
      [400, 'BadSignature'],
    );
    const wrong = await post(order(2, 'other-chain').bytes);
    assert.equal(wrong.status, 400);
    assert.equal(wrong.body.code, 'WrongChain');
    assert.equal(wrong.body.field, 'tx.chainId');
    const truncated = await post(good.bytes.slice(0, 20));
    assert.equal(truncated.status, 400);
    assert.equal(truncated.body.code, 'Malformed');
    const oversize = await post(new Uint8Array(20_000));
    assert.equal(oversize.status, 413);
    assert.equal(oversize.body.code, 'Oversize');

    assert.equal((await post(good.bytes)).status, 200);
    const again = await post(good.bytes);
    assert.equal(again.status, 409);
    assert.equal(again.body.code, 'DuplicateTx');
    const full = await post(order(3).bytes);
    assert.equal(full.status, 503);
    assert.equal(full.body.code, 'MempoolFull');

    // No body at all (no content type either) is a BadRequest, not a failure of the handler.
    const empty = await call(server.url, '/v1/tx', { method: 'POST' });
    assert.equal(empty.status, 400);
    assert.equal(empty.body.code, 'BadRequest');
    assert.equal(empty.body.field, 'body');

    const json = 'application/json';
    assert.equal((await post('{"tx":', json)).body.code, 'MalformedJson');
    assert.equal((await post('{"tx":', json)).status, 400);
    assert.equal((await post('', json)).body.code, 'MalformedJson');
    assert.equal((await post('{"tx":"zz"}', json)).body.code, 'BadRequest');
    assert.equal((await post('{"tx":"abc"}', json)).body.code, 'BadRequest');
    assert.equal((await post('{"tx":"@@@@","encoding":"base64"}', json)).body.code, 'BadRequest');
    assert.equal((await post('{"tx":"00","extra":1}', json)).body.code, 'BadRequest');
    assert.equal((await post('{"tx":"00","encoding":"utf8"}', json)).body.code, 'BadRequest');
    assert.equal((await post('[]', json)).body.code, 'BadRequest');
    // Valid JSON naming __proto__ is refused as a field the body may not hold, not as bad JSON.
    const named: [string, string][] = [
      ['{"tx":"00","__proto__":{"polluted":1}}', 'body/__proto__'],
      ['{"tx":"00","constructor":{"prototype":{"polluted":1}}}', 'body/constructor'],
    ];
    for (const [body, field] of named) {
      const answer = await post(body, json);
      assert.equal(answer.status, 400, body);
      assert.equal(answer.body.code, 'BadRequest', body);
      assert.equal(answer.body.field, field, body);
      assert.equal(answer.body.message, `${field} is not a known field`, body);
    }
    const only = await post('{"__proto__":{"tx":"00"}}', json);
    assert.deepEqual([only.status, only.body.code], [400, 'BadRequest']);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    const text = await post('hello', 'text/plain');
    assert.equal(text.status, 415);
    assert.equal(text.body.code, 'UnsupportedMediaType');
    const badWait = await post(good.bytes, 'application/octet-stream', '?wait=forever');
    assert.equal(badWait.status, 400);
    const huge = await post(JSON.stringify({ tx: 'a'.repeat(70 * 1024) }), json);
    assert.equal(huge.status, 413);
    assert.equal(huge.body.code, 'BodyTooLarge');
  } finally {
    await server.close();
  }
});

test("a JSON body's types are its own: a number or null where the hex text belongs is refused, never read as text", async () => {
  const view = makeView();
  const server = await serve(view);
  const post = (body: string, query = '') =>
    call(server.url, `/v1/tx${query}`, { method: 'POST', body, type: 'application/json' });
  try {
    // Hex as a number: coerced, `12` would be the byte 0x12, a transaction to decode.
    for (const body of [
      '{"tx":12}',
      '{"tx":1234}',
      '{"tx":true}',
      '{"tx":null}',
      '{"tx":"00","encoding":null}',
    ]) {
      const answer = await post(body);
      assert.equal(answer.status, 400, body);
      assert.equal(answer.body.code, 'BadRequest', body);
      assert.match(String(answer.body.message), /^body\/(tx|encoding) must be /, body);
      assert.doesNotMatch(String(answer.body.message), /hex|characters|allowed values/, body);
    }
    assert.equal((await post('{"tx":12}')).body.message, 'body/tx must be string');
    // An enumeration's refusal names the values it takes, in the body and in the query.
    const encoding = await post('{"tx":"00","encoding":"b64"}');
    assert.equal(encoding.body.field, 'body/encoding');
    assert.equal(encoding.body.message, 'body/encoding must be one of "hex", "base64"');
    const wait = await post('{"tx":"00"}', '?wait=maybe');
    assert.equal(wait.body.message, 'querystring/wait must be one of "none", "commit"');
    // A missing field is named, as an unknown one is.
    const missing = await post('{"encoding":"hex"}');
    assert.deepEqual(
      [missing.status, missing.body.field, missing.body.message],
      [400, 'body/tx', 'body/tx is required'],
    );
    // A query field given twice is named as such, not as a value of the wrong type.
    const twice = await post('{"tx":"00"}', '?wait=none&wait=commit');
    assert.equal(twice.body.field, 'querystring/wait');
    assert.equal(twice.body.message, 'querystring/wait is given more than once');
    const depth = await call(server.url, `/v1/book/${PERP}?depth=5&depth=6`);
    assert.deepEqual(
      [depth.status, depth.body.message],
      [400, 'querystring/depth is given more than once'],
    );
    // The query is text, read as a number where one belongs.
    const timeout = await post('{"tx":"00"}', '?timeoutMs=70000');
    assert.equal(timeout.body.message, 'querystring/timeoutMs must be <= 60000');
  } finally {
    await server.close();
  }
});

test('a body over the configured limit is refused with 413 before it is parsed', async () => {
  const server = await serve(makeView(), { bodyBytesMax: 1024 });
  try {
    const answer = await call(server.url, '/v1/tx', {
      method: 'POST',
      body: new Uint8Array(2048),
      type: 'application/octet-stream',
    });
    assert.equal(answer.status, 413);
    assert.equal(answer.body.code, 'BodyTooLarge');
  } finally {
    await server.close();
  }
});

test('per-IP and per-account token buckets answer 429 with Retry-After, and refill with time', async () => {
  const clock = new ManualClock();
  const server = await serve(makeView(), { ipRequestsPerS: 1, ipBurstRequests: 3 }, clock);
  try {
    for (let i = 0; i < 3; i++) assert.equal((await call(server.url, '/v1/status')).status, 200);
    const limited = await call(server.url, '/v1/status');
    assert.equal(limited.status, 429);
    assert.equal(limited.body.code, 'RateLimited');
    assert.equal(limited.body.retryAfterMs, 1000);
    assert.equal(limited.headers.get('retry-after'), '1');
    clock.ms += 1000;
    assert.equal((await call(server.url, '/v1/status')).status, 200);
  } finally {
    await server.close();
  }

  const accountServer = await serve(makeView(), { accountTxsPerS: 1, accountBurstTxs: 2 });
  try {
    const post = (n: number) =>
      call(accountServer.url, '/v1/tx', {
        method: 'POST',
        body: order(n).bytes,
        type: 'application/octet-stream',
      });
    assert.equal((await post(1)).status, 200);
    assert.equal((await post(2)).status, 200);
    const limited = await post(3);
    assert.equal(limited.status, 429);
    assert.equal(limited.body.code, 'RateLimited');
    // Another account still has its own bucket.
    const other = buildTx({
      chainId: CHAIN_ID,
      key: key(2),
      nonce: 1,
      action: { kind: 'faucet', amountQuote: 5n },
    });
    const answer = await call(accountServer.url, '/v1/tx', {
      method: 'POST',
      body: other.bytes,
      type: 'application/octet-stream',
    });
    assert.equal(answer.status, 200);
  } finally {
    await accountServer.close();
  }
});

test('an unexpected failure is a 500 InternalError with an id, and no internals', async () => {
  const view = makeView();
  const read = view.read.bind(view);
  view.read = (): ReadModel => ({
    ...read(),
    status: () => {
      throw new Error('secret database path /var/lib/zomma at line 3');
    },
    // A lower layer's typed error is no client error either.
    block: () => {
      throw new StorageError('StorageCorrupt', '/var/lib/zomma/blocks', 4096, 'bad checksum');
    },
  });
  const lines: string[] = [];
  const logger = pino({}, { write: (line: string) => lines.push(line) });
  const server = await startApiServer({ view, logger, nowMs: () => 0 });
  try {
    const answer = await call(server.url, '/v1/status');
    assert.equal(answer.status, 500);
    assert.equal(answer.body.code, 'InternalError');
    assert.equal(answer.body.message, 'internal error');
    assert.match(String(answer.body.errorId), /^[0-9a-f-]{36}$/);
    assert.doesNotMatch(JSON.stringify(answer.body), /secret/);
    // The details go to the log, under the id the client was given.
    const entry = lines.find((l) => l.includes(String(answer.body.errorId)));
    assert.ok(entry !== undefined);
    assert.match(entry, /secret database path/);
    const typed = await call(server.url, '/v1/block/1');
    assert.equal(typed.status, 500);
    assert.equal(typed.body.code, 'InternalError');
    assert.doesNotMatch(JSON.stringify(typed.body), /zomma/);
    const typedEntry = lines.find((l) => l.includes(String(typed.body.errorId)));
    assert.ok(typedEntry !== undefined, 'logged under its id');
    assert.match(typedEntry, /bad checksum/);
  } finally {
    await server.close();
  }
});

test('the OpenAPI document lists every route with its parameters and schemas', async () => {
  const server = await serve(makeView());
  try {
    const { status, body } = await call(server.url, '/openapi.json');
    assert.equal(status, 200);
    assert.match(String(body.openapi), /^3\.0\.\d$/);
    const info = body.info as { title: string; version: string };
    assert.equal(typeof info.title, 'string');
    assert.equal(typeof info.version, 'string');
    const paths = body.paths as Record<string, Record<string, Record<string, unknown>>>;
    const operationIds = new Set<string>();
    for (const [name, def] of Object.entries(routes)) {
      const path = openApiPath(def.path);
      const op = paths[path]?.[def.method.toLowerCase()];
      assert.ok(op !== undefined, `${def.method} ${path} is documented`);
      assert.equal(op.operationId, name);
      operationIds.add(op.operationId as string);
      const responses = op.responses as Record<string, { content?: unknown }>;
      assert.ok(responses['200']?.content !== undefined, `${name} documents its answer`);
      assert.ok(responses['400'] !== undefined && responses['429'] !== undefined);
      // Every {param} in the path is declared as a path parameter.
      const declared = (op.parameters as { name: string; in: string }[])
        .filter((p) => p.in === 'path')
        .map((p) => p.name);
      const inPath = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      assert.deepEqual(declared.sort(), inPath.sort(), `${name} path parameters`);
      // An integer parameter says how it must be written (0x10, 1e2, +5 are refused).
      for (const p of op.parameters as { description?: string; schema: { type?: string } }[]) {
        if (p.schema.type === 'integer') assert.equal(p.description, INTEGER_TEXT);
      }
    }
    assert.equal(operationIds.size, Object.keys(routes).length);
    // Every $ref resolves.
    const text = JSON.stringify(body);
    for (const m of text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)) {
      assert.ok(Object.hasOwn((body.components as { schemas: object }).schemas, m[1]!));
    }
    const submit = paths['/v1/tx']!.post!.requestBody as { content: object };
    assert.deepEqual(Object.keys(submit.content).sort(), [
      'application/json',
      'application/octet-stream',
    ]);
  } finally {
    await server.close();
  }
});

test('every status a route answers is one its OpenAPI operation lists', async () => {
  const doc = openApiDocument() as {
    paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
  };
  const listed = (path: string, method = 'get') =>
    new Set(Object.keys(doc.paths[path]![method]!.responses).map(Number));
  const submitListed = listed('/v1/tx', 'post');
  // What the view's checks, the exchange (wait=commit) and the handler itself can answer.
  for (const code of [
    ...SUBMIT_REJECT_CODES,
    ...REJECT_CODES,
    ...TX_DROP_CODES,
    'Unavailable',
    'CommitTimeout',
  ]) {
    const status =
      code === 'Unavailable' ? 503 : code === 'CommitTimeout' ? 504 : statusOfCode(code);
    assert.ok(submitListed.has(status), `POST /v1/tx lists ${status} (${code})`);
  }
  // Routes without an object to look up never answer 404.
  for (const path of ['/v1/status', '/v1/validators', '/v1/instruments', '/openapi.json'])
    assert.ok(!listed(path).has(404), `${path} lists no 404`);

  // And what a server answers, provoked.
  const view = makeView({ autoCommit: true, decide: refuseLargeOrders, mempoolMax: 1 });
  let refuseWith: string | undefined;
  const stub = Object.create(view) as typeof view;
  stub.submit = async (bytes) =>
    refuseWith === undefined
      ? view.submit(bytes)
      : { ok: false, code: refuseWith as SubmitRejectCode, message: 'refused' };
  const server = await serve(stub, { bodyBytesMax: 1024 });
  const post = (bytes: Uint8Array | string, query = '', type = 'application/octet-stream') =>
    call(server.url, `/v1/tx${query}`, { method: 'POST', body: bytes, type });
  try {
    const gets: [string, string][] = [
      ['/v1/status', '/v1/status?x=1'],
      ['/v1/ticker/{instrument}', '/v1/ticker/ETH-PERPETUAL'],
      ['/v1/book/{instrument}', '/v1/book/ETH-PERPETUAL'],
      ['/v1/trades/{instrument}', '/v1/trades/ETH-PERPETUAL'],
      ['/v1/account/{address}', `/v1/account/0x${'22'.repeat(20)}`],
      ['/v1/tx/{hash}', `/v1/tx/${'00'.repeat(32)}`],
      ['/v1/block/{height}', '/v1/block/99'],
      ['/v1/consensus', '/v1/consensus'],
      ['/v1/risk', '/v1/risk'],
      ['/openapi.json', '/openapi.json?x=1'],
      ['/v1/ws', '/v1/ws'],
    ];
    for (const [path, url] of gets) {
      const answer = await call(server.url, url);
      assert.ok(answer.status >= 400, url);
      assert.ok(listed(path).has(answer.status), `GET ${path} lists ${answer.status}`);
    }
    // A halted node serves no account state (node/view.ts): 503, listed too.
    stub.read = () =>
      Object.assign(Object.create(view.read()) as ReadModel, {
        account: () => {
          throw new ApiError(
            'Unavailable',
            503,
            'the node halted (ExecutionFailed): no account state',
          );
        },
      });
    const halted = await call(server.url, `/v1/account/0x${'22'.repeat(20)}`);
    assert.equal(halted.status, 503);
    assert.equal((halted.body as { code: string }).code, 'Unavailable');
    assert.ok(listed('/v1/account/{address}').has(503), 'GET /v1/account/{address} lists 503');
    stub.read = () => view.read();
    const answers = [
      await post(order(1).bytes, '?wait=commit'),
      await post(order(1).bytes),
      await post(order(2, CHAIN_ID, 1_000).bytes, '?wait=commit'),
      await post(order(3).bytes, '?wait=commit&timeoutMs=1'),
      await post('hello', '', 'text/plain'),
      await post(new Uint8Array(2048)),
      await post(JSON.stringify({ tx: 'zz' }), '', 'application/json'),
    ];
    for (const code of SUBMIT_REJECT_CODES) {
      refuseWith = code;
      answers.push(await post(order(10).bytes));
    }
    const statuses = new Set(answers.map((a) => a.status));
    for (const status of [400, 403, 409, 413, 415, 422, 503]) assert.ok(statuses.has(status));
    for (const status of statuses) {
      assert.ok(status === 200 || submitListed.has(status), `POST /v1/tx lists ${status}`);
    }
  } finally {
    await server.close();
  }
});

test('a request the HTTP parser refuses gets the API error body, not the framework default', async () => {
  const server = await serve(makeView());
  try {
    const { hostname, port } = new URL(server.url);
    // A chunked body whose chunk size is not hex.
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => {
        socket.write(
          'GET /v1/status HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
        );
      });
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    assert.match(raw, /^HTTP\/1\.1 400 /);
    const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
    assert.equal(body.code, 'BadRequest');
    assert.equal(typeof body.message, 'string');
    assert.equal(body.error, undefined, 'not the framework default body');

    // A request answered from its headers (here: a path the router cannot decode)
    // whose body the parser then refuses gets that one answer, not a second one a
    // client reusing the connection would take for the answer to its next request.
    const answered = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => {
        socket.write(
          'POST /v1/%zz HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
        );
      });
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    assert.equal(answered.match(/HTTP\/1\.1 /g)?.length, 1, answered);
    assert.match(answered, /^HTTP\/1\.1 400 [^]*the path is not a valid URL/);
  } finally {
    await server.close();
  }
});

test('a failed accept on the API port (an error event once listening) does not end the process', async () => {
  const server = await serve(makeView());
  try {
    // Unhandled, this would throw out of emit and end the process.
    server.app.server.emit(
      'error',
      Object.assign(new Error('accept ECONNABORTED'), { code: 'ECONNABORTED' }),
    );
    const answer = await fetch(`${server.url}/v1/status`);
    assert.equal(answer.status, 200);
  } finally {
    await server.close();
  }
});
