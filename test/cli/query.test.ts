// `zomma query` against a node's API served over loopback (the in-memory read
// model), and against none: what a person reads, and what --json gives programs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { zomma } from './helpers.ts';
import { addressOfKey } from '../../src/api/client/index.ts';
import { NODE_ANSWER_MS, clientOf, describeTx } from '../../src/cli/commands/query.ts';
import { ZommaError } from '../../src/lib/errors.ts';
import {
  INSTRUMENTS,
  OPTION,
  PERP,
  key,
  makeView,
  serve,
  silentServer,
  subaccount,
} from '../api/fixtures.ts';

/** A loopback port nothing listens on (just released by the system). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test('a node that cannot be reached is named with the system reason, not "fetch failed"', async () => {
  const port = await closedPort();
  const refused = await zomma('query', 'status', '--node', `http://127.0.0.1:${port}`);
  assert.equal(refused.code, 1);
  assert.equal(
    refused.err,
    `zomma query: NodeUnreachable: cannot reach http://127.0.0.1:${port} ` +
      `(connect ECONNREFUSED 127.0.0.1:${port}); is the node running?\n`,
  );
  // A port fetch will not use at all (the Fetch standard's blocked ports).
  const blocked = await zomma('query', 'status', '--node', 'http://127.0.0.1:1');
  assert.match(blocked.err, /cannot reach http:\/\/127\.0\.0\.1:1 \(bad port\)/);
  assert.doesNotMatch(blocked.err + refused.err, /fetch failed/);
});

test('a node that takes the connection and never answers is NodeUnreachable once the answer time passes, not a hang', async () => {
  const silent = await silentServer();
  try {
    // The commands' own bound: a node's request timeout (a tx adds its commit wait), not fetch's 300 s.
    assert.ok(NODE_ANSWER_MS > 0 && NODE_ANSWER_MS <= 60_000, `NODE_ANSWER_MS ${NODE_ANSWER_MS}`);
    await assert.rejects(
      clientOf(silent.url, 200).status(),
      (e: unknown) =>
        e instanceof ZommaError &&
        e.code === 'NodeUnreachable' &&
        e.message === `cannot reach ${silent.url} (no answer within 0.2 s)`,
    );
  } finally {
    await silent.close();
  }
});

test('query account: --subaccount picks one, and an account without one says so (--json stays the view)', async () => {
  const view = makeView();
  const trader = addressOfKey(key(1)).toLowerCase();
  const empty = addressOfKey(key(2)).toLowerCase();
  const partly = subaccount(0);
  partly.openOrders = partly.openOrders.map((o) => ({
    ...o,
    filledLots: 4,
    remainingLots: 6,
    clientOrderId: 'mm-7',
    reduceOnly: true,
  }));
  partly.positions = partly.positions.map((p) => ({
    ...p,
    realizedPnlQuote: '1250000',
    fundingQuote: '-30000',
  }));
  view.setAccount({ address: trader, subaccounts: [partly, subaccount(1)] });
  view.setAccount({ address: empty, subaccounts: [] });
  const server = await serve(view);
  const node = ['--node', server.url];
  try {
    const one = await zomma('query', 'account', trader, '--subaccount', '1', ...node);
    assert.equal(one.code, 0, one.err);
    assert.match(one.out, new RegExp(`^${trader} subaccount 1 at height 1\\n`));
    assert.doesNotMatch(one.out, /subaccount 0/);
    const both = await zomma('query', 'account', trader, ...node);
    assert.match(both.out, /subaccount 0 at height 1[^]*subaccount 1 at height 1/);
    // An open order: the size placed, what filled of it and what is open.
    assert.match(
      both.out,
      /^order +instrument +side +price ticks +lots +filled +open lots +client id +flags$/m,
    );
    assert.match(both.out, /^7 +BTC-PERPETUAL +buy +99 +10 +4 +6 +mm-7 +reduce-only$/m);
    // Neither: a dash, so the columns stay aligned.
    assert.match(both.out, /^7 +BTC-PERPETUAL +buy +99 +10 +0 +10 +- +-$/m);
    // A position: what its closed part made and its funding, in dollars, beside the open part's.
    assert.match(
      both.out,
      /^instrument +size lots +entry ticks +unrealized \$ +realized \$ +funding \$$/m,
    );
    assert.match(both.out, /^BTC-PERPETUAL +-25 +200 +-0\.5 +1\.25 +-0\.03$/m);

    const missing = await zomma('query', 'account', trader, '--subaccount', '5', ...node);
    assert.equal(missing.out, `${trader} has no subaccount 5 at height 1\n`);
    const none = await zomma('query', 'account', empty, ...node);
    assert.equal(none.code, 0, none.err);
    assert.equal(none.out, `${empty} has no subaccounts at height 1\n`);
    const json = await zomma('query', 'account', empty, '--json', ...node);
    assert.deepEqual(JSON.parse(json.out), { address: empty, height: 1, subaccounts: [] });

    const bad = await zomma('query', 'account', trader, '--subaccount', '256', ...node);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--subaccount must be an integer in 0 … 255/);
  } finally {
    await server.close();
  }
});

test("query ticker: an option's mark IV and greeks, as the API gives them", async () => {
  const server = await serve(makeView());
  try {
    const option = await zomma('query', 'ticker', OPTION, '--node', server.url);
    assert.equal(option.code, 0, option.err);
    assert.match(option.out, /^mark IV +0\.65$/m);
    assert.match(option.out, /^delta +0\.51$/m);
    assert.match(option.out, /^gamma +0\.00002$/m);
    assert.match(option.out, /^vega \$ per 1\.00 vol +120\.5$/m);
    assert.match(option.out, /^theta \$ per year +-30\.25$/m);
    const perpetual = await zomma('query', 'ticker', PERP, '--node', server.url);
    assert.doesNotMatch(perpetual.out, /mark IV|delta/);
  } finally {
    await server.close();
  }
});

test('query account: an answer whose open orders stopped short says so, not "no open orders"', async () => {
  const view = makeView();
  const trader = addressOfKey(key(3)).toLowerCase();
  const cut = { ...subaccount(1), openOrders: [] };
  view.setAccount({
    address: trader,
    subaccounts: [subaccount(0), cut],
    openOrdersTruncated: true,
  });
  const server = await serve(view);
  const node = ['--node', server.url];
  try {
    const both = await zomma('query', 'account', trader, ...node);
    assert.equal(both.code, 0, both.err);
    assert.doesNotMatch(both.out, /no open orders\n/);
    assert.match(both.out, /subaccount 1 at height 1[^]*no open orders listed/);
    assert.match(
      both.out,
      /\n\nopen orders: the node lists only so many in one answer, and these lists stop short; ask for one subaccount with --subaccount N\n$/,
    );
    const json = await zomma('query', 'account', trader, '--json', ...node);
    assert.equal(JSON.parse(json.out).openOrdersTruncated, true);
  } finally {
    await server.close();
  }
});

test('query status says when the node halted or every market did (--json keeps the fields)', async () => {
  const view = makeView();
  const server = await serve(view);
  try {
    const healthy = await zomma('query', 'status', '--node', server.url);
    assert.equal(healthy.code, 0, healthy.err);
    assert.doesNotMatch(healthy.out, /halt/);
    view.statusExtra = { haltReason: 'appHash mismatch at height 7', emergencyHalt: true };
    const halted = await zomma('query', 'status', '--node', server.url);
    assert.match(halted.out, /^halted +appHash mismatch at height 7$/m);
    assert.match(halted.out, /^emergency halt +every market halted$/m);
    const json = await zomma('query', 'status', '--node', server.url, '--json');
    const status = JSON.parse(json.out) as Record<string, unknown>;
    assert.equal(status.haltReason, 'appHash mismatch at height 7');
    assert.equal(status.emergencyHalt, true);
  } finally {
    await server.close();
  }
});

test('query status shows the fee schedule in force and the insurance fund (--json keeps the fields)', async () => {
  const view = makeView();
  const server = await serve(view);
  try {
    const feeTiers = [
      { volumeQuoteMin: '0', makerFeePpm: 100, takerFeePpm: 400 },
      { volumeQuoteMin: '500000000000', makerFeePpm: -50, takerFeePpm: 350 },
    ];
    view.statusExtra = { feeTiers, insuranceQuote: '1234500000' };
    const shown = await zomma('query', 'status', '--node', server.url);
    assert.equal(shown.code, 0, shown.err);
    assert.match(shown.out, /^insurance \$ +1234\.5$/m);
    assert.match(shown.out, /^fee tiers in force .*rebate\)$/m);
    assert.match(shown.out, /^traded from \$ +maker ppm +taker ppm$/m);
    assert.match(shown.out, /^0 +100 +400$/m);
    assert.match(shown.out, /^500000 +-50 +350$/m);
    const json = await zomma('query', 'status', '--node', server.url, '--json');
    assert.deepEqual((JSON.parse(json.out) as { feeTiers: unknown }).feeTiers, feeTiers);
  } finally {
    await server.close();
  }
});

test("query instruments shows each market's margin as governance set it; an option has none", async () => {
  const [perp, option] = INSTRUMENTS;
  const view = makeView({
    instruments: [{ ...perp!, initialMarginPpm: 80_000, maintenanceMarginPpm: 60_000 }, option!],
  });
  const server = await serve(view);
  try {
    const shown = await zomma('query', 'instruments', '--node', server.url);
    assert.equal(shown.code, 0, shown.err);
    assert.match(
      shown.out,
      /^instrument +kind +tick \$ +lots\/base +min lots +status +initial ppm +maint\. ppm$/m,
    );
    assert.match(
      shown.out,
      new RegExp(`^${PERP} +perpetual +0\\.5 +1000 +1 +trading +80000 +60000$`, 'm'),
    );
    assert.match(shown.out, new RegExp(`^${OPTION} +option +0\\.1 +10 +1 +trading$`, 'm'));
  } finally {
    await server.close();
  }
});

test("a transaction's actions show the columns they fill: lots cancelled, and cancelAll's count", () => {
  const hash = 'ab'.repeat(32);
  const faucet = describeTx({ hash, status: 'committed', actions: [{ kind: 'faucet', ok: true }] });
  assert.match(faucet, /^action +ok\nfaucet +true$/m);
  const ioc = describeTx({
    hash,
    status: 'committed',
    actions: [
      {
        kind: 'placeOrder',
        ok: true,
        orderId: 7,
        orderStatus: 'cancelled',
        filledLots: 3,
        restedLots: 0,
        cancelledLots: 7,
      },
    ],
  });
  assert.match(ioc, /^action +ok +order +outcome +filled +rested +cancelled$/m);
  assert.match(ioc, /^placeOrder +true +7 +cancelled +3 +0 +7$/m);
  const all = describeTx({
    hash,
    status: 'committed',
    actions: [{ kind: 'cancelAll', ok: true, count: 12 }],
  });
  assert.match(all, /^action +ok +orders cancelled\ncancelAll +true +12$/m);
});

test("why an order's rest was cancelled (IocRemainder, SelfTrade, …) is shown, as --json gives it", () => {
  const hash = 'ab'.repeat(32);
  const ioc = describeTx({
    hash,
    status: 'committed',
    actions: [
      {
        kind: 'placeOrder',
        ok: true,
        orderId: 7,
        orderStatus: 'cancelled',
        reason: 'IocRemainder',
        filledLots: 0,
        restedLots: 0,
        cancelledLots: 5,
      },
    ],
  });
  assert.match(ioc, /^action +ok +order +outcome +filled +rested +cancelled +reason$/m);
  assert.match(ioc, /^placeOrder +true +7 +cancelled +0 +0 +5 +IocRemainder$/m);
});

test("query trades lists an instrument's last trades, oldest first; --limit bounds them; --json is the answer", async () => {
  const view = makeView();
  view.addTrade(PERP, 202, 4, 'sell');
  view.commit();
  const server = await serve(view);
  try {
    const node = ['--node', server.url];
    const human = await zomma('query', 'trades', PERP, ...node);
    assert.equal(human.code, 0, human.err);
    assert.match(human.out, /^BTC-PERPETUAL at height \d+, oldest first$/m);
    assert.match(human.out, /^trade +time +taker +price ticks +size lots +height$/m);
    const rows = human.out.split('\n').filter((l) => /^\d+ /.test(l));
    assert.equal(rows.length, 2);
    assert.match(rows[0]!, /^\d+ +\S+Z +buy +200 +3 +\d+$/);
    assert.match(rows[1]!, /^\d+ +\S+Z +sell +202 +4 +\d+$/);

    const last = await zomma('query', 'trades', PERP, '--limit', '1', '--json', ...node);
    assert.equal(last.code, 0, last.err);
    const answer = JSON.parse(last.out) as { trades: { priceTicks: number }[] };
    assert.deepEqual(
      answer.trades.map((t) => t.priceTicks),
      [202],
    );
    const none = await zomma('query', 'trades', OPTION, ...node);
    assert.match(none.out, /^BTC-27DEC26-60000-C: no trades at height \d+$/m);
    const bad = await zomma('query', 'trades', PERP, '--limit', '0', ...node);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--limit must be an integer ≥ 1/);
    const unknown = await zomma('query', 'trades', 'ETH-PERPETUAL', ...node);
    assert.equal(unknown.code, 1);
    assert.match(unknown.err, /NotFound/);
  } finally {
    await server.close();
  }
});
