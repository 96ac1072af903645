// The contract between a real node's API, the OpenAPI document it serves, the
// SDK and the CLI, under correct use: one validator in this process, traded
// on through the SDK (orders that rest, fill, are amended and cancelled,
// batches, transfers, withdrawals, agents, a dated future and an option).
// Every HTTP answer the SDK or this test gets must carry a status its
// operation declares and a body its schema takes; every operation of the
// served document must be reached (a new route is covered, or this test says
// how it lacks a value for it). What the HTTP schemas would hide (the server
// serializes through them) is checked on the read model itself, and every
// WebSocket message against the same schemas. The SDK socket, cut on a seeded
// schedule, must deliver each channel's updates once and keep the node's
// book; `zomma query --json` must print what the SDK returns; the examples of
// docs/api.md and docs/transactions.md must run as written.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import WebSocket from 'ws';
import { ZommaApiError, ZommaClient, generateKey, saveKey } from '../../src/api/client/index.ts';
import type {
  AccountView,
  BookView,
  ChannelEvent,
  TickerView,
  Trader,
  TxView,
} from '../../src/api/client/index.ts';
import * as R from '../../src/api/routes.ts';
import type { RouteDef } from '../../src/api/routes.ts';
import type { JsonSchema } from '../../src/api/schema.ts';
import { REJECT_CODES } from '../../src/exchange/errors.ts';
import { buildTx, placeOrder } from '../../src/exchange/tx/index.ts';
import { toHex } from '../../src/lib/bytes.ts';
import { Prng } from '../../src/lib/prng.ts';
import { NONCE_FUTURE_MS_MAX } from '../../src/lib/limits.ts';
import { formatDollars } from '../../src/cli/commands/query.ts';
import { zomma } from '../cli/helpers.ts';
import { tempDir } from '../node/helpers.ts';
import { startSoloNode, until } from './helpers.ts';
import type { SoloNode } from './helpers.ts';

const PERP = 'BTC-PERPETUAL';
const USDC = 1_000_000n;
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

// --- the served document, as a checker of answers --------------------------------------

interface OpenApiDoc {
  paths: Record<string, Record<string, { responses: Record<string, { content?: unknown }> }>>;
}

/** Checks answers against the document a node serves, and notes which operations answered what. */
class Contract {
  readonly problems: string[] = [];
  /** `GET /v1/book/{instrument}` → the statuses it answered. */
  readonly answered = new Map<string, Set<number>>();
  /** The codes of the error answers seen. */
  readonly codes = new Set<string>();
  private readonly ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });
  private readonly templates: { method: string; template: string; re: RegExp }[] = [];

  constructor(readonly doc: OpenApiDoc) {
    this.ajv.addSchema(doc as object, 'openapi');
    for (const [template, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops)) {
        const re = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`);
        this.templates.push({ method: method.toUpperCase(), template, re });
      }
    }
  }

  operations(): string[] {
    return this.templates.map((t) => `${t.method} ${t.template}`);
  }

  check(method: string, url: string, status: number, text: string): void {
    const path = new URL(url).pathname;
    const op = this.templates.find((t) => t.method === method && t.re.test(path));
    if (op === undefined) return this.fail(`${method} ${path}: no operation of the document`);
    const key = `${op.method} ${op.template}`;
    let seen = this.answered.get(key);
    if (seen === undefined) this.answered.set(key, (seen = new Set()));
    seen.add(status);
    const response = this.doc.paths[op.template]![op.method.toLowerCase()]!.responses[status];
    if (response === undefined) {
      return this.fail(
        `${key} answered ${status}, which it does not declare: ${text.slice(0, 200)}`,
      );
    }
    if (response.content === undefined) return;
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return this.fail(`${key} ${status}: not JSON`);
    }
    if (status >= 400) this.codes.add(String((body as { code?: unknown }).code));
    const pointer = `openapi#/paths/${op.template.replace(/~/g, '~0').replace(/\//g, '~1')}/${op.method.toLowerCase()}/responses/${status}/content/application~1json/schema`;
    const validate = this.ajv.getSchema(pointer)!;
    if (!validate(body)) {
      this.fail(
        `${key} ${status}: ${this.ajv.errorsText(validate.errors)} in ${text.slice(0, 300)}`,
      );
    }
  }

  /** A fetch that checks every answer it gets (the SDK's, the CLI's, this test's). */
  readonly fetch: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    this.check(init?.method ?? 'GET', url, response.status, await response.clone().text());
    return response;
  };

  fail(problem: string): void {
    if (this.problems.length < 50) this.problems.push(problem);
  }
}

/** Every code an answer carried is one docs/api.md names (the exchange's, by their list). */
function codesDocumented(codes: Iterable<string>): void {
  const doc = readFileSync(join(ROOT, 'docs/api.md'), 'utf8');
  for (const code of codes) {
    assert.ok(
      doc.includes(`\`${code}\``) || (REJECT_CODES as readonly string[]).includes(code),
      `docs/api.md names ${code}`,
    );
  }
}

// --- what the WebSocket channels carry: the routes' schemas -----------------------------

const channelSchemas: Record<string, JsonSchema> = {
  ...Object.fromEntries(
    Object.entries(R.channelSchemas).flatMap(([kind, { snapshot, update }]) => [
      [`${kind}:snapshot`, snapshot.json],
      [`${kind}:update`, update.json],
    ]),
  ),
  // A submission's answer: the transaction view POST /v1/tx answers.
  'submitted:': R.txSchema.json,
  // A settled market's last message on each of its channels.
  'ended:': R.marketEndSchema.json,
};

interface WsData {
  type: string;
  channel?: string;
  seq?: number;
  data?: unknown;
  code?: string;
  id?: string;
}

/** A raw WebSocket client that keeps every message and checks each against its channel's schema. */
class Recorder {
  readonly messages: WsData[] = [];
  readonly socket: WebSocket;
  private readonly checks = new Map<string, ValidateFunction>();

  constructor(url: string, contract: Contract) {
    const ajv = new Ajv({ strict: false, allErrors: true });
    for (const [k, s] of Object.entries(channelSchemas)) this.checks.set(k, ajv.compile(s));
    this.socket = new WebSocket(`${url.replace(/^http/, 'ws')}${R.WS_PATH}`);
    this.socket.on('message', (raw) => {
      const m = JSON.parse(raw.toString()) as WsData;
      this.messages.push(m);
      if (!['snapshot', 'update', 'submitted', 'ended'].includes(m.type)) return;
      // A submission's answer and a market's end have one schema whatever the channel.
      const kind =
        m.type === 'submitted' || m.type === 'ended'
          ? `${m.type}:`
          : `${m.channel!.split(':')[0]}:${m.type}`;
      const validate = this.checks.get(kind)!;
      if (!validate(m.data)) {
        contract.fail(`ws ${m.channel} ${m.type}: ${ajv.errorsText(validate.errors)}`);
      }
    });
  }

  async open(): Promise<void> {
    if (this.socket.readyState !== WebSocket.OPEN) {
      await new Promise((resolve) => this.socket.once('open', resolve));
    }
  }

  send(message: object): void {
    this.socket.send(JSON.stringify(message));
  }

  of(channel: string): WsData[] {
    return this.messages.filter((m) => m.channel === channel && m.seq !== undefined);
  }
}

// --- the node, its traders, and what they did ------------------------------------------------

let solo: SoloNode;
let contract: Contract;
let client: ZommaClient;
let recorder: Recorder;
const hashes = new Set<string>();
let traders: Trader[] = [];
let future = '';
let option = '';
/** The read model at each height, taken as the node publishes it (what a channel's update must match). */
const reads = new Map<
  number,
  {
    books: Map<string, BookView>;
    tickers: Map<string, TickerView>;
    accounts: Map<string, AccountView | undefined>;
  }
>();

function noted(tx: TxView): TxView {
  hashes.add(tx.hash);
  return tx;
}

/** Runs an action expected to be refused in its block: its code and HTTP status. */
async function refused(run: () => Promise<TxView>): Promise<[string, number]> {
  try {
    noted(await run());
  } catch (error) {
    if (!(error instanceof ZommaApiError)) throw error;
    if (error.hash !== undefined) hashes.add(error.hash);
    return [error.code, error.status];
  }
  assert.fail('the action was not refused');
}

before(async () => {
  solo = await startSoloNode(20);
  const doc = (await (await fetch(`${solo.apiUrl}${R.OPENAPI_PATH}`)).json()) as OpenApiDoc;
  contract = new Contract(doc);
  client = new ZommaClient({ url: solo.apiUrl, fetch: contract.fetch });
  await until(async () => (await client.ticker(PERP)).indexTicks > 0, 30_000, 'an index price');
  const listed = (await client.instruments()).instruments;
  future = listed.find((i) => i.kind === 'future' && i.underlying === 'BTC')!.instrument;
  option = listed.find((i) => i.kind === 'option' && i.underlying === 'BTC')!.instrument;
  traders = [0, 1, 2].map(() => client.trader(generateKey()));
  const followed = [PERP, future, option];
  solo.running.view.subscribe((u) => {
    const read = solo.running.view.read();
    reads.set(u.height, {
      books: new Map(followed.map((i) => [i, read.book(i, 1_000)!])),
      tickers: new Map(followed.map((i) => [i, read.ticker(i)!])),
      accounts: new Map(traders.map((t) => [t.account, read.account(t.account)])),
    });
  });
  recorder = new Recorder(solo.apiUrl, contract);
  await recorder.open();
  for (const channel of [
    'blocks',
    ...followed.flatMap((i) => [`book:${i}`, `trades:${i}`, `ticker:${i}`]),
    ...traders.map((t) => `account:${t.account}`),
  ]) {
    recorder.send({ op: 'subscribe', channel });
  }
});

after(async () => {
  recorder?.socket.terminate();
  await solo?.stop();
});

test('every operation of the served OpenAPI document answers what it declares, through realistic trading', async () => {
  const [maker, taker, owner] = traders as [Trader, Trader, Trader];
  for (const t of traders) noted(await t.faucet(900_000n * USDC));
  const index = (await client.ticker(PERP)).indexTicks;
  const rest = noted(
    await maker.placeOrder({
      instrument: PERP,
      side: 'buy',
      priceTicks: index - 50,
      sizeLots: 30,
      clientOrderId: 'contract-1',
    }),
  );
  const restId = rest.actions![0]!.orderId!;
  noted(
    await maker.placeOrder({
      instrument: PERP,
      side: 'sell',
      priceTicks: index + 50,
      sizeLots: 30,
    }),
  );
  const hit = noted(
    await taker.placeOrder({ instrument: PERP, side: 'sell', type: 'market', sizeLots: 10 }),
  );
  assert.equal(hit.actions![0]!.filledLots, 10);
  noted(
    await maker.amend({ instrument: PERP, orderId: restId, priceTicks: index - 60, sizeLots: 15 }),
  );
  assert.deepEqual(
    await refused(() =>
      maker.placeOrder({
        instrument: PERP,
        side: 'buy',
        priceTicks: index - 70,
        sizeLots: 1,
        clientOrderId: 'contract-1',
      }),
    ),
    ['DuplicateClientOrderId', 409],
  );
  assert.deepEqual(await refused(() => maker.cancel({ instrument: PERP, orderId: 987_654 })), [
    'UnknownOrder',
    422,
  ]);
  assert.deepEqual(
    await refused(() =>
      owner.placeOrder({ instrument: PERP, side: 'buy', priceTicks: index, sizeLots: 900_000_000 }),
    ),
    ['InsufficientMargin', 422],
  );
  const batch = noted(
    await maker.send({
      kind: 'batch',
      actions: [
        placeOrder({ instrument: PERP, side: 'buy', priceTicks: index - 80, sizeLots: 3 }),
        { kind: 'cancel', instrument: PERP, orderId: 987_655 },
      ],
    }),
  );
  assert.deepEqual(
    [batch.status, batch.actions!.map((a) => a.ok)],
    ['committed', [true, false]],
    'a batch is committed, each action with its own result',
  );
  noted(await maker.cancel({ instrument: PERP, clientOrderId: 'contract-1' }));
  noted(await taker.transfer(0, 1, 100_000_001n));
  noted(await taker.withdraw(50_000_000n, 'bc1qcontract'));
  assert.deepEqual(await refused(() => owner.withdraw(10n ** 15n, 'bc1qcontract')), [
    'InsufficientFunds',
    422,
  ]);
  const agentKey = generateKey();
  const { lastBlockTimeMs } = await client.status();
  noted(await owner.registerAgent(agentKey.publicKey, lastBlockTimeMs + 3_600_000, 'bot'));
  const agent = owner.agent(agentKey);
  noted(
    await agent.placeOrder({ instrument: PERP, side: 'buy', priceTicks: index - 90, sizeLots: 2 }),
  );
  noted(await owner.revokeAgent(agentKey.publicKey));
  assert.deepEqual(
    await refused(() =>
      agent.placeOrder({ instrument: PERP, side: 'buy', priceTicks: index - 90, sizeLots: 2 }),
    ),
    ['NotPermitted', 403],
  );
  // A dated future and an option: resting, then taken.
  for (const instrument of [future, option]) {
    const mark = (await client.ticker(instrument)).markTicks;
    noted(await maker.placeOrder({ instrument, side: 'sell', priceTicks: mark + 3, sizeLots: 5 }));
    const taken = noted(
      await taker.placeOrder({
        instrument,
        side: 'buy',
        priceTicks: mark + 3,
        sizeLots: 2,
        timeInForce: 'IOC',
      }),
    );
    assert.equal(taken.actions![0]!.filledLots, 2, `${instrument} traded`);
  }
  noted(await maker.cancelAll(PERP));
  // Over the WebSocket: the same answer as over HTTP, the committed result.
  const socket = client.socket({ heartbeatMs: 0 });
  try {
    const viaSocket = noted(
      await socket.submitTx((await taker.build({ kind: 'faucet', amountQuote: 3n })).bytes, {
        wait: 'commit',
      }),
    );
    assert.deepEqual(
      await client.tx(viaSocket.hash),
      viaSocket,
      'wait commit answers the committed result',
    );
  } finally {
    socket.close();
  }
  // Without waiting: pending, then looked up as committed.
  const pending = await client.submitTx(
    (await taker.build({ kind: 'faucet', amountQuote: 2n })).bytes,
  );
  assert.equal(pending.status, 'pending');
  hashes.add(pending.hash);
  await until(
    async () => (await client.tx(pending.hash)).status === 'committed',
    10_000,
    'it commits',
  );

  // Every operation of the document, its parameters filled by name.
  const height = (await client.status()).height;
  const instruments = (await client.instruments()).instruments.map((i) => i.instrument);
  const values: Record<string, string[]> = {
    instrument: [...instruments, 'NOPE-PERPETUAL'],
    address: [
      ...traders.map((t) => t.account),
      traders[0]!.account.toUpperCase().replace('0X', '0x'),
      `0x${'12'.repeat(20)}`,
    ],
    hash: [...hashes, 'ab'.repeat(32)],
    height: Array.from({ length: height + 1 }, (_, i) => String(i + 1)),
  };
  for (const [template, ops] of Object.entries(contract.doc.paths)) {
    if (ops.get === undefined) continue;
    const names = [...template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
    for (const name of names) {
      assert.ok(
        values[name] !== undefined,
        `this test has no value for {${name}} of ${template}: give it some`,
      );
    }
    const def = (Object.values(R.routes) as RouteDef[]).find(
      (r) => r.method === 'GET' && template === r.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}'),
    );
    // Each query parameter alone, at a bound of its schema.
    const queries = [''];
    for (const [name, s] of Object.entries(
      (def?.query?.json.properties ?? {}) as Record<string, JsonSchema>,
    )) {
      const bound = s.maximum ?? s.minimum ?? (s.enum as string[] | undefined)?.[0];
      assert.ok(bound !== undefined, `this test has no value for ?${name} of ${template}`);
      queries.push(`?${name}=${String(bound)}`);
    }
    let paths = [template];
    for (const name of names) {
      paths = paths.flatMap((p) =>
        values[name]!.map((v) => p.replace(`{${name}}`, encodeURIComponent(v))),
      );
    }
    for (const path of paths) {
      for (const query of path === paths[0] ? queries : ['']) {
        await contract.fetch(`${solo.apiUrl}${path}${query}`);
      }
    }
  }
  const answeredOk = (op: string) => [...(contract.answered.get(op) ?? [])].some((s) => s < 300);
  for (const op of contract.operations()) {
    if (op === `GET ${R.WS_PATH}`) {
      assert.ok(
        contract.answered.get(op)?.has(426),
        'a plain GET of the socket is told to upgrade',
      );
      continue;
    }
    assert.ok(answeredOk(op), `${op} answered with success at least once`);
  }

  // What the HTTP schemas would hide, checked on the read model itself.
  const read = solo.running.view.read();
  const strict = new Ajv({ strict: false, allErrors: true });
  const own = (name: string, schema: JsonSchema, value: unknown) => {
    const validate = strict.compile(schema);
    if (!validate(value))
      contract.fail(`read model ${name}: ${strict.errorsText(validate.errors)}`);
  };
  own('status', R.routes.status.response.json, read.status());
  own('validators', R.routes.validators.response.json, {
    height: read.height,
    validators: read.validators(),
  });
  own('instruments', R.routes.instruments.response.json, {
    height: read.height,
    instruments: read.instruments(),
  });
  for (const i of [PERP, future, option]) {
    own(`ticker ${i}`, R.routes.ticker.response.json, read.ticker(i));
    own(`book ${i}`, R.routes.book.response.json, read.book(i, 1_000));
    own(`trades ${i}`, R.routes.trades.response.json, {
      instrument: i,
      height: read.height,
      trades: read.trades(i, 1_000),
    });
  }
  for (const t of traders) own('account', R.routes.account.response.json, read.account(t.account));
  for (const h of hashes) own('tx', R.routes.tx.response.json, read.tx(h));
  for (let h = 1; h <= read.height; h++)
    own(`block ${h}`, R.routes.block.response.json, read.block(h));
  own('consensus', R.routes.consensus.response.json, read.consensus!());
  own('risk', R.routes.risk.response.json, read.risk!());
  // The channels' messages so far, each checked as it came.
  await until(
    () => recorder.of('blocks').some((m) => (m.seq ?? 0) >= read.height),
    10_000,
    'the blocks channel reaches the height read',
  );
  assert.deepEqual(contract.problems, []);
  codesDocumented(contract.codes);
});

test('a transaction the committed state already refuses is answered with the code its block would give', async () => {
  const key = generateKey();
  const { chainId, lastBlockTimeMs } = await client.status();
  const tx = (nonce: number, amountQuote: bigint, expiresAtMs?: number) =>
    buildTx({
      chainId,
      key,
      nonce,
      action: { kind: 'faucet', amountQuote },
      ...(expiresAtMs !== undefined ? { expiresAtMs } : {}),
    }).bytes;
  const nonce = lastBlockTimeMs + 1;
  const first = tx(nonce, USDC);
  noted(await client.submitTx(first, { wait: 'commit' }));
  const socket = client.socket({ heartbeatMs: 0 });
  const answers = async (bytes: Uint8Array) => {
    const out: [string, number, boolean][] = [];
    for (const send of [
      () => client.submitTx(bytes),
      () => client.submitTx(bytes, { wait: 'commit' }),
      () => socket.submitTx(bytes, { wait: 'commit' }),
    ]) {
      try {
        noted(await send());
        out.push(['admitted', 200, false]);
      } catch (error) {
        if (!(error instanceof ZommaApiError)) throw error;
        out.push([error.code, error.status, error.hash !== undefined]);
      }
    }
    return out;
  };
  try {
    // Other bytes under a nonce its window holds, and the same bytes again.
    assert.deepEqual(
      await answers(tx(nonce, 2n * USDC)),
      Array(3).fill(['DuplicateNonce', 409, false]),
    );
    assert.deepEqual(await answers(first), Array(3).fill(['DuplicateTx', 409, false]));
    // Past its expiry, and a nonce older than the window's age.
    assert.deepEqual(await answers(tx(nonce + 1, USDC, 1)), Array(3).fill(['Expired', 422, false]));
    assert.deepEqual(await answers(tx(1, USDC)), Array(3).fill(['StaleNonce', 422, false]));
    // Signed by a clock 2 h ahead: refused at admission, not left to its block.
    const ahead = tx(lastBlockTimeMs + 2 * NONCE_FUTURE_MS_MAX, USDC);
    assert.deepEqual(await answers(ahead), Array(3).fill(['FutureNonce', 422, false]));
    const told = await client.submitTx(ahead).catch((e: unknown) => e);
    assert.ok(told instanceof ZommaApiError);
    assert.match(told.message, /ahead of the last block's time \d+: .*NONCE_FUTURE_MS_MAX.*clock/);
  } finally {
    socket.close();
  }
  assert.deepEqual(contract.problems, []);
  codesDocumented(contract.codes);
});

test("the SDK socket, cut on a seeded schedule, delivers each channel's updates once and keeps the node's book", async () => {
  const live = new Set<Socket>();
  const target = new URL(solo.apiUrl);
  const proxy = createServer((down) => {
    const up = connect(Number(target.port), target.hostname);
    live.add(down).add(up);
    const drop = () => {
      for (const s of [down, up]) {
        s.destroy();
        live.delete(s);
      }
    };
    for (const s of [down, up]) s.on('error', drop).on('close', drop);
    down.pipe(up);
    up.pipe(down);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const proxied = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  const socket = new ZommaClient(proxied).socket({
    reconnectDelayMs: 5,
    reconnectDelayMsMax: 20,
    heartbeatMs: 0,
  });
  const channels = [
    'blocks',
    `book:${PERP}`,
    `book:${future}`,
    `trades:${PERP}`,
    `ticker:${PERP}`,
    ...traders.map((t) => `account:${t.account}`),
  ];
  type Seen = Pick<ChannelEvent, 'type' | 'seq'> & { levels?: string };
  const seen = new Map<string, Seen[]>(channels.map((c) => [c, []]));
  for (const channel of channels) {
    socket.subscribe(channel, (e) =>
      seen.get(channel)!.push({
        type: e.type,
        seq: e.seq,
        ...(e.book !== undefined
          ? { levels: JSON.stringify([e.book.levels('bids'), e.book.levels('asks')]) }
          : {}),
      }),
    );
  }
  try {
    await until(() => channels.every((c) => seen.get(c)!.length > 0), 10_000, 'every snapshot');
    const prng = new Prng(20_240_601);
    const open: { by: Trader; instrument: string; orderId: number }[] = [];
    let cuts = 0;
    for (let step = 0; step < 40; step++) {
      if (prng.chance(1, 4)) {
        for (const s of [...live]) s.destroy();
        cuts++;
      }
      const by = traders[prng.int(traders.length)]!;
      const instrument = prng.chance(2, 3) ? PERP : future;
      const mark = (await client.ticker(instrument)).markTicks;
      const side = prng.chance(1, 2) ? 'buy' : 'sell';
      const kind = prng.int(6);
      try {
        if (kind < 3) {
          const off = 1 + prng.int(30);
          const placed = await by.placeOrder({
            instrument,
            side,
            priceTicks: side === 'buy' ? mark - off : mark + off,
            sizeLots: 1 + prng.int(20),
          });
          if (placed.actions![0]!.restedLots! > 0) {
            open.push({ by, instrument, orderId: placed.actions![0]!.orderId! });
          }
        } else if (kind === 3) {
          await by.placeOrder({ instrument, side, type: 'market', sizeLots: 1 + prng.int(5) });
        } else if (kind === 4 && open.length > 0) {
          const o = open.splice(prng.int(open.length), 1)[0]!;
          await o.by.cancel({ instrument: o.instrument, orderId: o.orderId });
        } else if (open.length > 0) {
          const o = open[prng.int(open.length)]!;
          await o.by.amend({
            instrument: o.instrument,
            orderId: o.orderId,
            sizeLots: 1 + prng.int(15),
          });
        }
      } catch (error) {
        // An order already filled or cancelled by the time it is amended: refused, as it should be.
        if (!(error instanceof ZommaApiError)) throw error;
      }
    }
    assert.ok(cuts > 0, 'the schedule cut the connection');
    const height = (await client.status()).height;
    const reached = (c: string) => (seen.get(c)!.at(-1)?.seq ?? -1) >= height;
    await until(() => reached('blocks'), 20_000, 'the socket catches up after the last cut');
    await until(
      () => (recorder.of('blocks').at(-1)?.seq ?? -1) >= height,
      10_000,
      'the uncut socket catches up',
    );
    assert.ok(socket.connects > 1, 'it reconnected');

    for (const channel of channels) {
      const got = seen.get(channel)!;
      // Nothing twice, nothing backwards.
      for (let i = 1; i < got.length; i++) {
        assert.ok(
          got[i]!.seq > got[i - 1]!.seq,
          `${channel}: ${got[i - 1]!.seq} then ${got[i]!.seq}`,
        );
      }
      // Nothing missed: every update the uncut socket got after the first event,
      // unless a later snapshot stands for it.
      const first = got[0]!.seq;
      const last = got.at(-1)!.seq;
      const seqs = new Set(got.map((e) => e.seq));
      const snapshots = got.filter((e) => e.type === 'snapshot').map((e) => e.seq);
      for (const m of recorder.of(channel)) {
        if (m.type !== 'update' || m.seq! <= first || m.seq! > last) continue;
        assert.ok(
          seqs.has(m.seq!) || snapshots.some((s) => s >= m.seq!),
          `${channel}: the update at ${m.seq} was missed`,
        );
      }
      if (channel === 'blocks') {
        for (let h = first + 1; h <= last; h++) assert.ok(seqs.has(h), `block ${h} was delivered`);
      }
      // The local book is the node's window at each seq it shows.
      if (channel.startsWith('book:')) {
        const instrument = channel.slice('book:'.length);
        for (const e of got) {
          const book = reads.get(e.seq)?.books.get(instrument);
          if (book === undefined || book.seq !== e.seq) continue;
          assert.equal(e.levels, JSON.stringify([book.bids, book.asks]), `${channel} at ${e.seq}`);
        }
      }
    }
    // The uncut socket: each book delta links on the one before and rebuilds
    // the node's window; each account update shows the account as read at its height.
    for (const channel of channels.filter((c) => c.startsWith('book:'))) {
      const instrument = channel.slice('book:'.length);
      const sides = [new Map<number, number>(), new Map<number, number>()];
      let prev = -1;
      for (const m of recorder.of(channel)) {
        const d = m.data as BookView & { prevSeq?: number };
        if (m.type === 'snapshot') sides.forEach((s) => s.clear());
        else assert.equal(d.prevSeq, prev, `${channel}: the delta at ${m.seq} links on ${prev}`);
        for (const [side, levels] of [
          [sides[0]!, d.bids],
          [sides[1]!, d.asks],
        ] as const) {
          for (const [p, s] of levels) {
            if (s === 0) side.delete(p);
            else side.set(p, s);
          }
        }
        prev = m.seq!;
        const book = reads.get(m.seq!)?.books.get(instrument);
        if (book === undefined || book.seq !== m.seq) continue;
        const bids = [...sides[0]!].sort((a, b) => b[0] - a[0]);
        const asks = [...sides[1]!].sort((a, b) => a[0] - b[0]);
        assert.deepEqual([bids, asks], [book.bids, book.asks], `${channel} at ${m.seq}`);
      }
    }
    const blockTimes = new Map<number, number>();
    let fills = 0;
    for (const t of traders) {
      for (const m of recorder.of(`account:${t.account}`)) {
        if (m.type !== 'update') continue;
        const read = reads.get(m.seq!)?.accounts.get(t.account);
        for (const sent of (m.data as R.ChannelData<'account', 'update'>).subaccounts) {
          // Each fill names the block that made it and that block's time.
          for (const f of sent.fills) {
            if (!blockTimes.has(f.height)) {
              blockTimes.set(f.height, (await client.block(f.height)).timeMs);
            }
            assert.deepEqual([f.height, f.timeMs], [m.seq, blockTimes.get(f.height)]);
            fills++;
          }
          const held = read?.subaccounts.find((s) => s.subaccount === sent.subaccount);
          assert.ok(held !== undefined, `${t.account}/${String(sent.subaccount)} at ${m.seq}`);
          for (const k of [
            'cashQuote',
            'equityQuote',
            'marginUsedQuote',
            'marginFreeQuote',
          ] as const) {
            assert.equal(sent[k], held[k], `${t.account} ${k} at ${m.seq}`);
          }
          // An update also lists flat the positions its block closed (with
          // their final realized PnL), which the account's read no longer holds.
          const open = sent.positions.filter((p) => p.sizeLots !== 0);
          assert.deepEqual(open, held.positions, `${t.account} positions at ${m.seq}`);
          for (const p of sent.positions.filter((q) => q.sizeLots === 0)) {
            assert.equal(p.unrealizedPnlQuote, '0', `${t.account} ${p.instrument} closed`);
          }
        }
      }
    }
    assert.ok(fills > 0, 'the account channels carried fills');
    // And at the end, the SDK's books are the node's.
    for (const instrument of [PERP, future]) {
      const book = await client.book(instrument, 1_000);
      await until(
        () => seen.get(`book:${instrument}`)!.at(-1)!.seq >= book.seq,
        10_000,
        `the SDK's ${instrument} book reaches seq ${book.seq}`,
      );
      const last = seen.get(`book:${instrument}`)!.at(-1)!;
      if (last.seq === book.seq) {
        assert.equal(last.levels, JSON.stringify([book.bids, book.asks]), instrument);
      }
    }
  } finally {
    socket.close();
    proxy.close();
    for (const s of live) s.destroy();
  }
  assert.deepEqual(contract.problems, []);
});

/** `zomma query … --json` and the SDK's answer, compared once the two agree on the node's state. */
async function sameAsSdk(args: string[], sdk: () => Promise<unknown>): Promise<unknown> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const before = JSON.stringify(await sdk());
    const printed = await zomma('query', ...args, '--node', solo.apiUrl, '--json');
    // A block between the two reads: ask again.
    if (JSON.stringify(await sdk()) !== before) continue;
    assert.equal(printed.code, 0, printed.err);
    assert.deepEqual(JSON.parse(printed.out), JSON.parse(before), `query ${args.join(' ')}`);
    return JSON.parse(before);
  }
  assert.fail(`query ${args.join(' ')}: the node never held still`);
}

/**
 * The table `zomma query` prints (no --json) and what the SDK returned at the
 * same time: the marks move with every block, and with them an account's
 * margin, so a table read a block after the SDK's view may differ from it.
 */
async function tableAsSdk<T>(args: string[], sdk: () => Promise<T>): Promise<[T, string]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const before = JSON.stringify(await sdk());
    const printed = await zomma('query', ...args, '--node', solo.apiUrl);
    // A block between the two reads: ask again.
    if (JSON.stringify(await sdk()) !== before) continue;
    assert.equal(printed.code, 0, printed.err);
    return [JSON.parse(before) as T, printed.out];
  }
  assert.fail(`query ${args.join(' ')}: the node never held still`);
}

test('zomma query --json prints what the SDK returns, zomma tx --json what the node looks up, and the tables the same numbers', async () => {
  const keys = tempDir('zomma-contract-');
  try {
    const keyFile = join(keys.dir, 'key.json');
    saveKey(keyFile, generateKey());
    const flags = ['--node', solo.apiUrl, '--key-file', keyFile, '--json'];
    const funded = await zomma('tx', 'faucet', '1234.567891', ...flags);
    assert.equal(funded.code, 0, funded.err);
    const { account, subaccount, ...faucet } = JSON.parse(funded.out) as TxView & {
      account: string;
      subaccount: number;
    };
    assert.equal(subaccount, 0, 'tx --json names the subaccount acted on');
    assert.deepEqual(faucet, await client.tx(faucet.hash), 'tx --json is the transaction view');
    const index = (await client.ticker(PERP)).indexTicks;
    const ordered = await zomma(
      'tx',
      'order',
      PERP,
      'buy',
      '7',
      '--price',
      String(index - 500),
      ...flags,
    );
    assert.equal(ordered.code, 0, ordered.err);
    const {
      account: _,
      subaccount: __,
      ...order
    } = JSON.parse(ordered.out) as TxView & { account: string; subaccount: number };
    assert.deepEqual(order, await client.tx(order.hash));

    await sameAsSdk(['account', account], () => client.account(account));
    // Amounts round-trip exactly: dollars typed, quote units on the wire, dollars shown.
    const [view, table] = await tableAsSdk(['account', account], () => client.account(account));
    const sub = view.subaccounts[0]!;
    assert.equal(sub.cashQuote, '1234567891');
    for (const [label, value] of [
      ['cash \\$', sub.cashQuote],
      ['equity \\$', sub.equityQuote],
      ['margin used \\$', sub.marginUsedQuote],
      ['maintenance \\$', sub.maintenanceMarginQuote],
      ['free \\$', sub.marginFreeQuote],
    ] as const) {
      assert.match(
        table,
        new RegExp(`^${label} +${formatDollars(value).replace('.', '\\.')}$`, 'm'),
      );
    }
    assert.match(
      table,
      new RegExp(
        `^${order.actions![0]!.orderId!} +${PERP} +buy +${index - 500} +7 +0 +7 +- +-$`,
        'm',
      ),
    );
    await sameAsSdk(['account', account, '--subaccount', '0'], () => client.account(account, 0));
    await sameAsSdk(['instruments'], () => client.instruments());
    for (const instrument of [PERP, future, option]) {
      await sameAsSdk(['book', instrument, '--depth', '3'], () => client.book(instrument, 3));
      await sameAsSdk(['ticker', instrument], () => client.ticker(instrument));
      const [book, rows] = await tableAsSdk(['book', instrument, '--depth', '3'], () =>
        client.book(instrument, 3),
      );
      for (const [p, s] of book.bids) assert.match(rows, new RegExp(`^bid +${p} +${s}$`, 'm'));
    }
    await sameAsSdk(['tx', order.hash], () => client.tx(order.hash));
    await sameAsSdk(['block', String(order.height)], () => client.block(order.height!));
  } finally {
    keys.remove();
  }
  assert.deepEqual(contract.problems, []);
});

test('the examples of docs/api.md and docs/transactions.md run as written', async () => {
  const dir = tempDir('zomma-doc-examples-');
  const log: unknown[][] = [];
  const scope = globalThis as { docExample?: { log: (...a: unknown[]) => void; key: unknown } };
  scope.docExample = { log: (...a) => log.push(a), key: generateKey() };
  const edit = (code: string, from: string, to: string) => {
    assert.ok(code.includes(from), `the example holds ${from}`);
    return code.replaceAll(from, to);
  };
  const run = async (name: string, code: string): Promise<Record<string, unknown>> => {
    const file = join(dir.dir, name);
    writeFileSync(file, code);
    return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  };
  const src = (path: string) => JSON.stringify(pathToFileURL(join(ROOT, path)).href);
  try {
    const api = readFileSync(join(ROOT, 'docs/api.md'), 'utf8');
    // The SDK's example, against this node with a key of its own.
    saveKey(join(dir.dir, 'key.json'), generateKey());
    let sdk = /## SDK[^]*?```ts\n([^]*?)```/.exec(api)![1]!;
    sdk = edit(sdk, "from 'zomma/client'", `from ${src('src/api/client/index.ts')}`);
    sdk = edit(sdk, "'http://127.0.0.1:27001'", JSON.stringify(solo.apiUrl));
    sdk = edit(sdk, "'./key.json'", JSON.stringify(join(dir.dir, 'key.json')));
    sdk = edit(sdk, 'console.log(', '(globalThis as any).docExample.log(');
    const example = await run('sdk.mts', `${sdk}\nexport { client, socket };\n`);
    try {
      await until(() => log.length > 0, 10_000, "the example's book event");
    } finally {
      (example.socket as { close(): void }).close();
    }
    const [seq, bids] = log[0]!;
    assert.ok(typeof seq === 'number' && Array.isArray(bids), 'a seq and the top bids');

    // The WebSocket messages, as written (a real transaction for <hex>).
    const messages = /Client → server[^]*?```json\n([^]*?)```/.exec(api)![1]!.trim().split('\n');
    const ws = new Recorder(solo.apiUrl, contract);
    try {
      await ws.open();
      const trader = client.trader(generateKey());
      const tx = toHex((await trader.build({ kind: 'faucet', amountQuote: USDC })).bytes);
      for (const m of messages) ws.socket.send(m.replace('<hex>', tx));
      const types = ['subscribed', 'unsubscribed', 'submitted', 'pong'];
      await until(
        () => types.every((t) => ws.messages.some((m) => m.type === t)),
        10_000,
        'an answer to each',
      );
      assert.deepEqual(
        ws.messages.filter((m) => m.type === 'error'),
        [],
      );
      const submitted = ws.messages.find((m) => m.type === 'submitted')!;
      assert.equal((submitted.data as TxView).status, 'committed');
    } finally {
      ws.socket.terminate();
    }

    // docs/transactions.md's builder, with a key and a clock of its own: the node admits what it builds.
    const txs = readFileSync(join(ROOT, 'docs/transactions.md'), 'utf8');
    let builder = /## Building one[^]*?```ts\n([^]*?)```/.exec(txs)![1]!;
    builder = edit(
      builder,
      "from '../src/exchange/tx/index.ts'",
      `from ${src('src/exchange/tx/index.ts')}`,
    );
    const built = await run(
      'build.mts',
      `const key = (globalThis as any).docExample.key;\nconst clientClockMs = Date.now();\n${builder}\nexport { tx, bytes, hash };\n`,
    );
    const admitted = await client.submitTx(built.bytes as Uint8Array);
    assert.deepEqual(admitted, { hash: toHex(built.hash as Uint8Array), status: 'pending' });
  } finally {
    delete scope.docExample;
    dir.remove();
  }
  assert.deepEqual(contract.problems, []);
});
