// The SDK against a server over loopback: typed calls, signed actions with
// wait=commit, agent keys, typed errors, nonces; and the token bucket alone.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  NONCE_AHEAD_MS_MAX,
  NONCE_LANES_MAX,
  NonceClock,
  TxError,
  ZommaApiError,
  ZommaClient,
  addressOfKey,
  buildTx,
  generateKey,
  keyFromSeedHex,
  loadKey,
  placeOrder,
  routes,
  saveKey,
} from '../../src/api/client/index.ts';
import type { BatchableAction } from '../../src/api/client/index.ts';
import { decodeSignedTx } from '../../src/exchange/tx/index.ts';
import type { SignedTx } from '../../src/exchange/tx/index.ts';
import { toHex } from '../../src/lib/bytes.ts';
import { unreachableReason } from '../../src/api/client/http.ts';
import { RateLimiter } from '../../src/api/ratelimit.ts';
import { API_CLIENT_ANSWER_TIMEOUT_MS_MAX } from '../../src/lib/limits.ts';
import { CHAIN_ID, PERP, key, makeView, serve, silentServer, subaccount } from './fixtures.ts';

test('typed calls mirror the routes and surface error codes', async () => {
  const view = makeView();
  view.setAccount({ address: addressOfKey(key(1)), subaccounts: [subaccount(0)] });
  const server = await serve(view);
  const client = new ZommaClient(server.url);
  try {
    assert.equal((await client.status()).chainId, CHAIN_ID);
    assert.equal((await client.validators()).validators.length, 1);
    assert.equal((await client.instruments()).instruments.length, 2);
    assert.equal((await client.ticker(PERP)).markTicks, 200);
    assert.deepEqual((await client.book(PERP, 1)).bids, [[199, 10]]);
    assert.equal((await client.trades(PERP)).trades[0]!.priceTicks, 200);
    assert.equal((await client.account(addressOfKey(key(1)), 0)).subaccounts.length, 1);
    assert.equal((await client.block(1)).height, 1);
    const viaRoute = await client.request(routes.book, {
      params: { instrument: PERP },
      query: { depth: 2 },
    });
    assert.equal(viaRoute.bids.length, 2);
    await assert.rejects(client.ticker('ETH-PERPETUAL'), (e: unknown) => {
      assert.ok(e instanceof ZommaApiError);
      assert.equal(e.code, 'NotFound');
      assert.equal(e.status, 404);
      // The API's own 404 names what is missing, with no doubt about the URL.
      assert.doesNotMatch(e.message, /may not be the node's API/);
      return true;
    });
    await assert.rejects(client.block(0), { code: 'BadRequest' });
  } finally {
    await server.close();
  }
});

test("a 404 from something other than the API (no message, not JSON, or no such route) says the URL may not be the node's API", async () => {
  const answers: [string, string | undefined][] = [
    ['{"code":"NotFound"}', 'NotFound: HTTP 404'],
    ['<html>Not Found</html>', 'HttpError: HTTP 404: not a JSON answer'],
    [
      '{"code":"NotFound","message":"no route GET /v1/status"}',
      'NotFound: no route GET /v1/status',
    ],
  ];
  for (const [body, said] of answers) {
    const client = new ZommaClient({
      url: 'http://127.0.0.1:1/',
      fetch: async () => new Response(body, { status: 404 }),
    });
    await assert.rejects(client.status(), (e: unknown) => {
      assert.ok(e instanceof ZommaApiError);
      assert.equal(
        `${e.code}: ${e.message}`,
        `${said} (http://127.0.0.1:1 may not be the node's API: the API serves GET /v1/status)`,
      );
      return true;
    });
  }
  // The API's own 404, and another status without a message, keep their words.
  for (const [status, body, said] of [
    [404, '{"code":"NotFound","message":"no transaction ab"}', 'NotFound: no transaction ab'],
    [502, '{"code":"BadGateway"}', 'BadGateway: HTTP 502'],
  ] as const) {
    const client = new ZommaClient({
      url: 'http://127.0.0.1:1',
      fetch: async () => new Response(body, { status }),
    });
    await assert.rejects(client.status(), (e: unknown) => {
      assert.ok(e instanceof ZommaApiError);
      assert.equal(`${e.code}: ${e.message}`, said);
      return true;
    });
  }
});

test('a trader signs each action, waits for commit, and gets rejections as typed errors', async () => {
  const seen: SignedTx[] = [];
  const view = makeView({
    autoCommit: true,
    decide: (tx) => {
      seen.push(tx);
      if (tx.action.kind === 'withdraw') return { code: 'InsufficientFunds', message: 'too much' };
      return undefined;
    },
  });
  const server = await serve(view);
  const client = new ZommaClient(server.url);
  const owner = key(1);
  const trader = client.trader(owner);
  try {
    const placed = await trader.placeOrder({
      instrument: PERP,
      side: 'buy',
      priceTicks: 199,
      sizeLots: 5,
    });
    assert.equal(placed.status, 'committed');
    assert.equal((await client.tx(placed.hash)).status, 'committed');
    await trader.amend({ instrument: PERP, orderId: 1, priceTicks: 198 });
    await trader.cancel({ instrument: PERP, orderId: 1 });
    await trader.cancel({ instrument: PERP, clientOrderId: 'abc' });
    await trader.cancelAll(PERP);
    await trader.cancelAll();
    await trader.faucet(1_000_000n);
    await trader.transfer(0, 1, 5n);
    await assert.rejects(trader.withdraw(5n, 'dest-address'), (e: unknown) => {
      assert.ok(e instanceof ZommaApiError);
      assert.equal(e.code, 'InsufficientFunds');
      assert.equal(e.status, 422);
      assert.match(String(e.hash), /^[0-9a-f]{64}$/);
      return true;
    });
    const agentKey = key(9);
    await trader.registerAgent(agentKey.publicKey, 2_000_000_000_000, 'bot');
    const agent = trader.agent(agentKey);
    await agent.placeOrder({ instrument: PERP, side: 'sell', priceTicks: 205, sizeLots: 1 });
    // An agent may not withdraw: refused before it leaves the client (TxError).
    await assert.rejects(agent.withdraw(1n, 'x'), { code: 'AgentNotAllowed' });

    const kinds = seen.map((t) => t.action.kind);
    assert.deepEqual(kinds, [
      'placeOrder',
      'amend',
      'cancel',
      'cancel',
      'cancelAll',
      'cancelAll',
      'faucet',
      'transfer',
      'withdraw',
      'registerAgent',
      'placeOrder',
    ]);
    const last = seen.at(-1)!;
    assert.equal(toHex(last.account), toHex(owner.address), 'the agent acts for the owner');
    assert.equal(toHex(last.signer), toHex(agentKey.publicKey));
    const nonces = seen.map((t) => t.nonce);
    for (let i = 1; i < nonces.length; i++) assert.ok(nonces[i]! > nonces[i - 1]!);

    // A submission without waiting answers at once with its hash.
    const quick = client.trader(owner, { wait: 'none' });
    const pending = await quick.faucet(1n);
    assert.equal(pending.status, 'pending');
    const built = await quick.build({ kind: 'faucet', amountQuote: 2n });
    assert.equal(decodeSignedTx(built.bytes).chainId, CHAIN_ID);
  } finally {
    await server.close();
  }
});

test('keys: generate, save and load a key file, and derive from a seed', () => {
  const directory = mkdtempSync(join(tmpdir(), 'zomma-client-'));
  const key = generateKey();
  const path = join(directory, 'key.json');
  saveKey(path, key);
  const loaded = loadKey(path);
  assert.equal(addressOfKey(loaded), addressOfKey(key));
  const fromSeed = keyFromSeedHex('01'.repeat(32));
  assert.match(addressOfKey(fromSeed), /^0x[0-9a-f]{40}$/);
});

test('nonces never repeat and never go back, whatever the clock does', () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 2_000_000_000_000 }), { minLength: 1 }),
      (times) => {
        let i = 0;
        const clock = new NonceClock(() => times[i++ % times.length]!);
        let last = 0;
        for (let k = 0; k < times.length * 2; k++) {
          const n = clock.next();
          assert.ok(n > last);
          last = n;
        }
      },
    ),
  );
});

test("a client's traders that sign into one nonce window share a clock: one key's subaccounts, one address's agents", async (t) => {
  // A frozen millisecond: two clocks would each hand out the same nonce.
  t.mock.method(Date, 'now', () => 1_700_000_000_000);
  const client = new ZommaClient('http://127.0.0.1:1');
  const owner = key(11);
  const account = addressOfKey(owner);
  const [agentA, agentB] = [key(12), key(13)];
  const nonceOf = async (trader: ReturnType<ZommaClient['trader']>) =>
    (await trader.build({ kind: 'cancelAll' })).tx.nonce;
  const own = [0, 1, 2, 0].map((n) => client.trader(owner, { chainId: CHAIN_ID, subaccount: n }));
  const ownNonces = [];
  for (const trader of own) ownNonces.push(await nonceOf(trader));
  assert.equal(new Set(ownNonces).size, ownNonces.length, `one key's nonces: ${ownNonces}`);
  const agents = [agentA, agentB, agentA].map((k) =>
    client.trader(k, { chainId: CHAIN_ID, account: account.toUpperCase().replace('0X', '0x') }),
  );
  const agentNonces = [];
  for (const trader of agents) agentNonces.push(await nonceOf(trader));
  assert.equal(new Set(agentNonces).size, agentNonces.length, `the agents' nonces: ${agentNonces}`);
  // A trader given its own clock keeps it; another client's traders have theirs.
  const own2 = client.trader(owner, { chainId: CHAIN_ID, nonces: new NonceClock() });
  assert.equal(await nonceOf(own2), 1_700_000_000_000);
  const other = new ZommaClient('http://127.0.0.1:1').trader(owner, { chainId: CHAIN_ID });
  assert.equal(await nonceOf(other), 1_700_000_000_000);
});

test("an agent trader made from a client's trader shares the clock of the address's agents with the client's other agent traders", async (t) => {
  // A frozen millisecond: two clocks would each hand out the same nonce.
  t.mock.method(Date, 'now', () => 1_700_000_000_000);
  const client = new ZommaClient('http://127.0.0.1:1');
  const owner = key(21);
  const account = addressOfKey(owner);
  const master = client.trader(owner, { chainId: CHAIN_ID });
  const nonceOf = async (trader: ReturnType<ZommaClient['trader']>) =>
    (await trader.build({ kind: 'cancelAll' })).tx.nonce;
  const viaMaster = master.agent(key(22));
  const direct = client.trader(key(23), { chainId: CHAIN_ID, account });
  const nonces = [await nonceOf(viaMaster), await nonceOf(direct), await nonceOf(viaMaster)];
  assert.equal(new Set(nonces).size, nonces.length, `the agents' nonces: ${nonces}`);
  // The master's own window keeps its own clock: its first nonce is the millisecond.
  assert.equal(await nonceOf(master), 1_700_000_000_000);
  // A trader given its own clock lends it to its agents, as before.
  const lane = new NonceClock();
  const own = client.trader(owner, { chainId: CHAIN_ID, nonces: lane });
  assert.equal(await nonceOf(own.agent(key(24))), 1_700_000_000_000);
  assert.equal(lane.next(), 1_700_000_000_001, "the agent signed with the trader's clock");
});

test('zomma/client exports what a trader builds actions from and catches: TxError, placeOrder, batch', async () => {
  const client = new ZommaClient('http://127.0.0.1:1');
  const trader = client.trader(key(14), { chainId: CHAIN_ID });
  await assert.rejects(
    trader.placeOrder({
      instrument: PERP,
      side: 'buy',
      type: 'market',
      sizeLots: 1,
      timeInForce: 'GTC',
    }),
    (e: unknown) => {
      assert.ok(e instanceof TxError, `a stateless mistake is a TxError: ${String(e)}`);
      assert.equal(e.code, 'BadField');
      assert.equal(e.field, 'tx.action.placeOrder.timeInForce');
      return true;
    },
  );
  const actions: BatchableAction[] = [
    placeOrder({ instrument: PERP, side: 'buy', priceTicks: 190, sizeLots: 1, clientOrderId: 'a' }),
    { kind: 'cancel', instrument: PERP, clientOrderId: 'a' },
  ];
  const built = await trader.build({ kind: 'batch', actions });
  assert.deepEqual(decodeSignedTx(built.bytes).action, { kind: 'batch', actions });
  assert.equal(typeof trader.batch, 'function', 'Trader.batch sends a batch');
  // A raw-HTTP bot builds its transactions with the same builder.
  const raw = buildTx({ chainId: CHAIN_ID, key: key(14), nonce: 5, action: { kind: 'cancelAll' } });
  assert.deepEqual(decodeSignedTx(raw.bytes).action, { kind: 'cancelAll' });
});

test('nonce lanes: clocks on one time source, one lane each, never hand out the same nonce, and each never goes back', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 7 }),
      fc.array(fc.integer({ min: 0, max: 2_000_000_000_000 }), { minLength: 1, maxLength: 50 }),
      (lanes, times) => {
        let i = 0;
        const now = () => times[i++ % times.length]!;
        const clocks = Array.from(
          { length: lanes },
          (_, lane) => new NonceClock(now, { lane, lanes }),
        );
        const seen = new Set<number>();
        const last = clocks.map(() => 0);
        for (let k = 0; k < 3 * times.length; k++) {
          const c = k % lanes;
          const n = clocks[c]!.next();
          assert.ok(n > last[c]!, 'a clock never goes back');
          assert.equal(n % lanes, c, 'a clock keeps to its lane');
          assert.ok(!seen.has(n), `nonce ${n} handed out twice`);
          seen.add(n);
          last[c] = n;
        }
      },
    ),
  );
  // Two bots in one millisecond: lanes keep them apart, by at most lanes − 1 ms.
  const a = new NonceClock(() => 1_000, { lane: 0, lanes: 2 });
  const b = new NonceClock(() => 1_000, { lane: 1, lanes: 2 });
  assert.deepEqual([a.next(), b.next(), a.next(), b.next()], [1_000, 1_001, 1_002, 1_003]);
  // Signing at most once every `lanes` ms, a lane stays within lanes − 1 ms of
  // its clock; in a burst it runs ahead by `lanes` ms a nonce (docs/transactions.md).
  for (const lanes of [1, 3, NONCE_LANES_MAX]) {
    for (let lane = 0; lane < lanes; lane += Math.max(1, lanes >> 2)) {
      let now = 1_000_003;
      const clock = new NonceClock(() => now, { lane, lanes });
      for (let k = 0; k < 50; k++, now += lanes) {
        const n = clock.next();
        assert.ok(n >= now && n <= now + lanes - 1, `lane ${lane}/${lanes}: ${n} at ${now}`);
      }
      const first = clock.next();
      assert.equal(clock.next(), first + lanes, `lane ${lane}/${lanes}: a burst steps by lanes`);
    }
  }
  // Kept up past what a chain is sure to take (FutureNonce), it refuses to go
  // further, typed, and goes on once its clock catches up.
  {
    let now = 5_000;
    const clock = new NonceClock(() => now, { lane: 1, lanes: 4 });
    let n = 0;
    let refused: unknown;
    for (let k = 0; k < NONCE_AHEAD_MS_MAX; k++) {
      try {
        n = clock.next();
      } catch (e) {
        refused = e;
        break;
      }
    }
    assert.ok(
      refused instanceof TxError && refused.code === 'BadField' && refused.field === 'tx.nonce',
      String(refused),
    );
    assert.ok(n - now <= NONCE_AHEAD_MS_MAX && n - now > NONCE_AHEAD_MS_MAX - 4, `last ${n}`);
    now += 10;
    assert.equal(clock.next(), n + 4, 'goes on as its clock moves');
  }
  for (const bad of [
    { lane: 2, lanes: 2 },
    { lane: -1, lanes: 2 },
    { lane: 0, lanes: 0 },
    { lane: 0.5, lanes: 2 },
    { lane: 0, lanes: NONCE_LANES_MAX + 1 },
  ]) {
    assert.throws(() => new NonceClock(Date.now, bad), RangeError, JSON.stringify(bad));
  }
});

test('token bucket: a burst, then the refill rate, keys apart, bounded memory', () => {
  let now = 0;
  const limiter = new RateLimiter({ perSecond: 2, burst: 4 }, 3, () => now);
  for (let i = 0; i < 4; i++) assert.equal(limiter.take('a'), 0);
  assert.equal(limiter.take('a'), 500);
  assert.equal(limiter.take('b'), 0);
  now += 500;
  assert.equal(limiter.take('a'), 0);
  assert.equal(limiter.take('a'), 500);
  now += 10_000;
  for (let i = 0; i < 4; i++) assert.equal(limiter.take('a'), 0, 'refills only up to the burst');
  assert.ok(limiter.take('a') > 0);
  limiter.take('c');
  limiter.take('d');
  assert.equal(limiter.size, 3);
  // A refund gives back what a take took, never past the burst.
  for (let i = 0; i < 4; i++) limiter.take('e');
  limiter.refund('e', 2);
  assert.equal(limiter.take('e', 2), 0);
  assert.equal(limiter.take('e'), 500);
  for (let i = 0; i < 9; i++) limiter.refund('e');
  assert.equal(limiter.take('e', 4), 0);
  assert.equal(limiter.take('e'), 500);
});

test('a node that cannot be reached is a NodeUnreachable ZommaApiError naming the system reason', async () => {
  const server = await serve(makeView());
  const url = server.url;
  await server.close();
  const port = new URL(url).port;
  await assert.rejects(new ZommaClient(url).status(), (e: unknown) => {
    assert.ok(e instanceof ZommaApiError);
    assert.equal(e.code, 'NodeUnreachable');
    assert.equal(e.status, 0);
    assert.equal(e.message, `cannot reach ${url} (connect ECONNREFUSED 127.0.0.1:${port})`);
    assert.ok(e.cause instanceof TypeError, 'what fetch threw is kept as the cause');
    return true;
  });
});

test('unreachableReason: the innermost cause, its code when the message does not name it', () => {
  const fetchFailed = (cause: unknown) => new TypeError('fetch failed', { cause });
  const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });
  assert.equal(
    unreachableReason(fetchFailed(withCode('connect ECONNREFUSED 10.0.0.1:80', 'ECONNREFUSED'))),
    'connect ECONNREFUSED 10.0.0.1:80',
  );
  assert.equal(
    unreachableReason(fetchFailed(withCode('other side closed', 'UND_ERR_SOCKET'))),
    'UND_ERR_SOCKET: other side closed',
  );
  assert.equal(unreachableReason(fetchFailed(new Error('bad port'))), 'bad port');
  const both = Object.assign(
    new AggregateError([
      withCode('connect ECONNREFUSED ::1:80', 'ECONNREFUSED'),
      withCode('connect ECONNREFUSED 127.0.0.1:80', 'ECONNREFUSED'),
    ]),
    { code: 'ECONNREFUSED' },
  );
  assert.equal(
    unreachableReason(fetchFailed(both)),
    'connect ECONNREFUSED ::1:80; connect ECONNREFUSED 127.0.0.1:80',
  );
  assert.equal(unreachableReason(new TypeError('fetch failed')), 'fetch failed');
});

test('a call whose arguments break its route is refused before it is sent, as the node refuses it', async () => {
  const server = await serve(makeView());
  let sent = 0;
  const client = new ZommaClient({
    url: server.url,
    fetch: (input, init) => {
      sent++;
      return fetch(input, init);
    },
  });
  const address = addressOfKey(key(1));
  try {
    const refused = async (call: Promise<unknown>, field: string) => {
      await assert.rejects(call, (e: unknown) => {
        assert.ok(e instanceof ZommaApiError);
        assert.deepEqual([e.code, e.status, e.field], ['BadRequest', 400, field]);
        return true;
      });
    };
    await refused(client.book(PERP, 0), 'querystring/depth');
    await refused(client.book(PERP, 1.5), 'querystring/depth');
    await refused(client.book(PERP, 1_001), 'querystring/depth');
    await refused(client.trades(PERP, 0), 'querystring/limit');
    await refused(client.trades(PERP, Number.NaN), 'querystring/limit');
    await refused(client.account(address, 256), 'querystring/subaccount');
    await refused(client.account('0x12'), 'params/address');
    await refused(client.ticker('btc-perpetual'), 'params/instrument');
    await refused(client.tx('ABC'), 'params/hash');
    await refused(client.block(0), 'params/height');
    await refused(client.submitTx(new Uint8Array(1), { timeoutMs: 0 }), 'querystring/timeoutMs');
    await refused(
      client.request(routes.status, { query: { verbose: 1 } } as never),
      'querystring/verbose',
    );
    assert.equal(sent, 0, 'nothing was sent');

    // The same refusal, field and message, as the node's own answer.
    const local = await client.book(PERP, 0).catch((e: ZommaApiError) => e);
    const remote = await (await fetch(`${server.url}/v1/book/${PERP}?depth=0`)).json();
    assert.ok(local instanceof ZommaApiError);
    assert.deepEqual({ code: local.code, message: local.message, field: local.field }, remote);
    // A number is checked as the text the URL carries, which is what the node reads.
    const fraction = await client.block(1.5).catch((e: ZommaApiError) => e);
    const fractionRemote = await (await fetch(`${server.url}/v1/block/1.5`)).json();
    assert.ok(fraction instanceof ZommaApiError);
    assert.deepEqual(
      { code: fraction.code, message: fraction.message, field: fraction.field },
      fractionRemote,
    );

    // Absent arguments are the node's defaults.
    assert.equal((await client.book(PERP)).bids.length, 2);
    assert.equal((await client.trades(PERP)).trades.length, 1);
  } finally {
    await server.close();
  }
});

/** NodeUnreachable for want of an answer from `url` within `ms`. */
function unreachableAt(url: string, ms: number): (e: unknown) => boolean {
  return (e) =>
    e instanceof ZommaApiError &&
    e.code === 'NodeUnreachable' &&
    e.message === `cannot reach ${url} (no answer within ${ms / 1000} s)`;
}

test('a node that takes the connection and never answers is NodeUnreachable after answerTimeoutMs, plus the commit wait of a wait=commit submission', async () => {
  const silent = await silentServer();
  const { url } = silent;
  try {
    const client = new ZommaClient({ url, answerTimeoutMs: 100 });
    await assert.rejects(client.status(), unreachableAt(url, 100));
    const bytes = new Uint8Array(8);
    await assert.rejects(client.submitTx(bytes), unreachableAt(url, 100));
    await assert.rejects(
      client.submitTx(bytes, { wait: 'commit', timeoutMs: 150 }),
      unreachableAt(url, 250),
    );
    for (const answerTimeoutMs of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => new ZommaClient({ url, answerTimeoutMs }), RangeError);
    }
  } finally {
    await silent.close();
  }
});

test('the generic request() of a wait=commit submission also waits its commit wait, and an answerTimeoutMs no timer can hold is refused', async () => {
  const silent = await silentServer();
  const { url } = silent;
  try {
    const client = new ZommaClient({ url, answerTimeoutMs: 100 });
    const body = new Uint8Array(8);
    // The node may hold it for its timeoutMs: cut before, a transaction that
    // is about to commit would be told the node is unreachable.
    await assert.rejects(
      client.request(routes.submitTx, { query: { wait: 'commit', timeoutMs: 150 }, body }),
      unreachableAt(url, 250),
    );
    await assert.rejects(
      client.request(routes.submitTx, { query: { wait: 'none', timeoutMs: 150 }, body }),
      unreachableAt(url, 100),
    );
    // Past 2^31 - 1 ms Node fires a timer at once: every request would be
    // NodeUnreachable within a millisecond instead of waiting that long.
    assert.doesNotThrow(
      () => new ZommaClient({ url, answerTimeoutMs: API_CLIENT_ANSWER_TIMEOUT_MS_MAX }),
      'the longest is taken',
    );
    for (const answerTimeoutMs of [
      API_CLIENT_ANSWER_TIMEOUT_MS_MAX + 1,
      2 ** 31,
      Number.MAX_SAFE_INTEGER,
    ]) {
      assert.throws(() => new ZommaClient({ url, answerTimeoutMs }), RangeError);
    }
  } finally {
    await silent.close();
  }
});
