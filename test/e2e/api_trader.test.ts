// A bot author's first session against one validator, through `zomma/client`
// only: orders of every time in force and what their results say, orders
// tracked by their client ids on the account channel to their end, a local
// book kept from the book channel, and a forged signature answered with the
// field the transaction layer names.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  TxError,
  ZommaApiError,
  ZommaClient,
  generateKey,
  placeOrder,
} from '../../src/api/client/index.ts';
import type {
  AccountUpdate,
  ActionResultView,
  ChannelEvent,
  UpdatedOrderView,
  Trader,
  ZommaSocket,
} from '../../src/api/client/index.ts';
import { toHex } from '../../src/lib/bytes.ts';
import { startSoloNode, until } from './helpers.ts';
import type { SoloNode } from './helpers.ts';

const PERP = 'BTC-PERPETUAL';
const USDC = 1_000_000n;

let solo: SoloNode;
let client: ZommaClient;
let socket: ZommaSocket;
let maker: Trader;
let taker: Trader;
/** Every order the maker's account channel showed, in the order the updates came. */
const makerOrders: UpdatedOrderView[] = [];
let lastBook: ChannelEvent | undefined;

function only(result: { actions?: ActionResultView[] }): ActionResultView {
  assert.equal(result.actions?.length, 1, 'one action, one result');
  return result.actions[0]!;
}

before(async () => {
  solo = await startSoloNode(20);
  client = new ZommaClient(solo.apiUrl);
  await until(async () => (await client.ticker(PERP)).indexTicks > 0, 30_000, 'an index price');
  socket = client.socket({ heartbeatMs: 0 });
  maker = client.trader(generateKey(), { socket });
  taker = client.trader(generateKey());
  await maker.faucet(100_000n * USDC);
  await taker.faucet(100_000n * USDC);
  socket.subscribe(`account:${maker.account}`, (event) => {
    if (event.type !== 'update') return;
    for (const s of (event.data as { subaccounts: AccountUpdate[] }).subaccounts) {
      makerOrders.push(...s.orders);
    }
  });
  socket.subscribe(`book:${PERP}`, (event) => (lastBook = event));
  await until(() => lastBook !== undefined, 10_000, 'the book snapshot');
});

after(async () => {
  socket?.close();
  await solo?.stop();
});

test("an order's result names why what it had open was cancelled; a mistake the SDK finds is a TxError", async () => {
  const index = (await client.ticker(PERP)).indexTicks;
  only(
    await maker.placeOrder({ instrument: PERP, side: 'sell', priceTicks: index + 5, sizeLots: 4 }),
  );
  const ioc = only(
    await taker.placeOrder({
      instrument: PERP,
      side: 'buy',
      priceTicks: index + 5,
      sizeLots: 10,
      timeInForce: 'IOC',
    }),
  );
  assert.deepEqual(
    [ioc.orderStatus, ioc.filledLots, ioc.cancelledLots, ioc.reason],
    ['cancelled', 4, 6, 'IocRemainder'],
  );
  const fok = only(
    await taker.placeOrder({
      instrument: PERP,
      side: 'buy',
      priceTicks: index + 5,
      sizeLots: 10,
      timeInForce: 'FOK',
    }),
  );
  assert.deepEqual(
    [fok.orderStatus, fok.filledLots, fok.reason],
    ['cancelled', 0, 'FokUnfillable'],
  );
  // The taker's own resting bid, met by its own sell that asks to be cancelled instead.
  only(
    await taker.placeOrder({ instrument: PERP, side: 'buy', priceTicks: index - 5, sizeLots: 2 }),
  );
  const self = only(
    await taker.placeOrder({
      instrument: PERP,
      side: 'sell',
      priceTicks: index - 5,
      sizeLots: 2,
      stp: 'cancelIncoming',
    }),
  );
  assert.deepEqual([self.orderStatus, self.reason], ['cancelled', 'SelfTrade']);
  const rested = only(
    await taker.placeOrder({ instrument: PERP, side: 'buy', priceTicks: index - 6, sizeLots: 1 }),
  );
  assert.deepEqual([rested.orderStatus, rested.reason], ['rested', undefined]);
  only(await taker.cancelAll(PERP));
  // A market order may not rest: refused before anything is sent, as the type the SDK exports.
  await assert.rejects(
    taker.placeOrder({
      instrument: PERP,
      side: 'buy',
      type: 'market',
      sizeLots: 1,
      timeInForce: 'GTC',
    }),
    (e: unknown) => e instanceof TxError && e.code === 'BadField',
  );
});

test('an order placed with a client id keeps it on the account channel to its end: cancelled by that id, filled out, or cancelled in a batch', async () => {
  const index = (await client.ticker(PERP)).indexTicks;
  only(
    await maker.placeOrder({
      instrument: PERP,
      side: 'buy',
      priceTicks: index - 20,
      sizeLots: 3,
      clientOrderId: 'walk-bid',
    }),
  );
  const ask = only(
    await maker.placeOrder({
      instrument: PERP,
      side: 'sell',
      priceTicks: index + 20,
      sizeLots: 3,
      clientOrderId: 'walk-ask',
    }),
  ).orderId!;
  only(await maker.cancel({ instrument: PERP, clientOrderId: 'walk-bid' }));
  only(await taker.placeOrder({ instrument: PERP, side: 'buy', type: 'market', sizeLots: 3 }));
  // Placed and cancelled in one transaction: the order never rests between blocks.
  const batch = await maker.batch([
    placeOrder({
      instrument: PERP,
      side: 'buy',
      priceTicks: index - 30,
      sizeLots: 1,
      clientOrderId: 'walk-brief',
    }),
    { kind: 'cancel', instrument: PERP, clientOrderId: 'walk-brief' },
  ]);
  assert.deepEqual(
    batch.actions?.map((a) => a.ok),
    [true, true],
    'placed, then cancelled',
  );
  const ended = (clientOrderId: string) =>
    makerOrders.find((o) => o.clientOrderId === clientOrderId && o.status !== 'open');
  await until(
    () => ['walk-bid', 'walk-ask', 'walk-brief'].every((id) => ended(id) !== undefined),
    10_000,
    "every order's end, by its client id, on the account channel",
  );
  assert.deepEqual(
    [ended('walk-bid')!.status, ended('walk-ask')!.status, ended('walk-brief')!.status],
    ['cancelled', 'filled', 'cancelled'],
  );
  assert.equal(ended('walk-ask')!.orderId, ask);
});

test("the SDK's local book is the node's book at its seq", async () => {
  const index = (await client.ticker(PERP)).indexTicks;
  for (let i = 0; i < 3; i++) {
    only(
      await maker.placeOrder({
        instrument: PERP,
        side: 'buy',
        priceTicks: index - 40 - i,
        sizeLots: 1 + i,
      }),
    );
  }
  only(await maker.cancelAll(PERP));
  only(
    await maker.placeOrder({ instrument: PERP, side: 'sell', priceTicks: index + 40, sizeLots: 2 }),
  );
  await until(
    async () => {
      const book = await client.book(PERP, 1_000);
      return (
        lastBook?.seq === book.seq &&
        JSON.stringify([lastBook.book!.levels('bids'), lastBook.book!.levels('asks')]) ===
          JSON.stringify([book.bids, book.asks])
      );
    },
    10_000,
    'the local book reaches the node’s',
  );
  only(await maker.cancelAll(PERP));
});

test('a forged signature is a BadSignature naming tx.signature, over HTTP and the socket', async () => {
  const built = await taker.build({ kind: 'cancelAll' });
  const forged = built.bytes.slice();
  forged[forged.length - 1]! ^= 1;
  const viaHttp = await fetch(`${solo.apiUrl}/v1/tx`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tx: toHex(forged) }),
  });
  assert.equal(viaHttp.status, 400);
  const body = (await viaHttp.json()) as { code: string; field?: string };
  assert.deepEqual([body.code, body.field], ['BadSignature', 'tx.signature']);
  await assert.rejects(
    socket.submitTx(forged),
    (e: unknown) =>
      e instanceof ZommaApiError &&
      e.code === 'BadSignature' &&
      e.status === 400 &&
      e.field === 'tx.signature',
  );
});
