// The SDK's types, as a bot written against `zomma/client` sees them: a
// channel's handler gets that channel's events, and the enumerations of
// answers are the unions of their lists. The compiler checks this file
// (`npx tsc --noEmit`): every `@ts-expect-error` line must stay an error, and
// the lines without one must compile. The tests run what can be seen at run
// time: the lists the types come from, and the served document's enums.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ORDER_RESULT_STATUSES,
  ORDER_STATUSES,
  channelSchemas,
  routes,
} from '../../src/api/client/index.ts';
import type {
  ActionResultView,
  ChannelData,
  ChannelEvent,
  ChannelKind,
  ChannelKindOf,
  FillView,
  InstrumentView,
  LocalBook,
  MarketEndView,
  OrderView,
  ResponseOf,
  Routes,
  Side,
  TradeView,
  TxView,
  ZommaSocket,
} from '../../src/api/client/index.ts';
import { openApiDocument } from '../../src/api/openapi.ts';
import { TAKER_STATUSES } from '../../src/exchange/book/types.ts';
import { REJECT_CODES } from '../../src/exchange/errors.ts';
import { ACTION_KINDS } from '../../src/exchange/tx/types.ts';

/** true when A and B are the same type (not merely assignable either way). */
type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
/** Compiles only for `true`. */
function same<T extends true>(): T | undefined {
  return undefined;
}
/** `is<T>()(value)` compiles only when `value`'s type is exactly T. */
function is<T>() {
  return <V>(value: V, ..._exact: Equal<V, T> extends true ? [] : [never]): V => value;
}

// --- channel names and kinds ---------------------------------------------------------

same<Equal<ChannelKindOf<'book:BTC-PERPETUAL'>, 'book'>>();
same<Equal<ChannelKindOf<`account:${string}`>, 'account'>>();
same<Equal<ChannelKindOf<'blocks'>, 'blocks'>>();
// A name known only at run time: any channel's.
same<Equal<ChannelKindOf<string>, ChannelKind>>();

// Each channel's data is its schema's type (routes.ts, channelSchemas).
same<Equal<ChannelData<'trades', 'update'>['trades'], TradeView[]>>();
same<Equal<ChannelData<'account', 'update'>['subaccounts'][number]['fills'], FillView[]>>();
same<Equal<ChannelData<'book', 'snapshot'>['depth'], number>>();

/** Never called: what the compiler checks is how its handlers are typed. */
export function subscriptions(socket: ZommaSocket, address: string, instrument: string): void {
  socket.subscribe(`account:${address}`, (e) => {
    is<ChannelEvent<'account'>>()(e);
    if (e.type === 'update') {
      for (const a of e.data.subaccounts) {
        for (const f of a.fills) {
          is<number>()(f.timeMs);
          is<'maker' | 'taker' | 'auction'>()(f.liquidity);
        }
        for (const o of a.orders) is<OrderView['status']>()(o.status);
      }
    } else {
      // The snapshot: the account view, or null before the address holds one.
      // @ts-expect-error possibly null
      void e.data.subaccounts;
      // @ts-expect-error an account view's subaccounts carry no fills: an update's do
      void e.data?.subaccounts[0]?.fills;
    }
    // @ts-expect-error an account channel never ends: no market closes it
    if (e.type === 'ended') return;
  });

  socket.subscribe(`book:${instrument}`, (e) => {
    if (e.type === 'ended') {
      is<MarketEndView>()(e.data);
      return;
    }
    // Every snapshot and update of a book channel carries the local book.
    is<LocalBook>()(e.book);
    e.book.levels('bids', 5);
    if (e.type === 'update') is<number>()(e.data.prevSeq);
    else is<number>()(e.data.depth);
  });

  socket.subscribe(`trades:${instrument}`, (e) => {
    if (e.type !== 'ended') is<TradeView[]>()(e.data.trades);
    // @ts-expect-error only book channels carry a local book
    e.book.levels('bids');
  });

  socket.subscribe(`ticker:${instrument}`, (e) => {
    if (e.type === 'update') is<number>()(e.data.markTicks);
  });

  socket.subscribe('blocks', (e) => {
    if (e.type === 'update') is<number>()(e.data.timeMs);
    else is<number | undefined>()(e.data?.height);
  });

  // A handler of another channel's events.
  // @ts-expect-error a book channel's events are not trades
  socket.subscribe(`book:${instrument}`, (e: ChannelEvent<'trades'>) => void e.data);
  // @ts-expect-error no channel is named trade:…
  socket.subscribe('trade:BTC-PERPETUAL', () => {});
  // @ts-expect-error nor block
  socket.subscribe('block', () => {});

  // A name the code learns when it runs: any channel's event, told apart by the bot.
  const name: string = process.argv[2] ?? 'blocks';
  socket.subscribe(name, (e) => void is<ChannelEvent>()(e));
}

// --- enumerations of answers -----------------------------------------------------------

same<Equal<NonNullable<ActionResultView['orderStatus']>, (typeof TAKER_STATUSES)[number]>>();
same<Equal<ActionResultView['kind'], (typeof ACTION_KINDS)[number]>>();
same<Equal<NonNullable<ActionResultView['code']>, (typeof REJECT_CODES)[number]>>();
same<Equal<FillView['side'], Side>>();
same<Equal<InstrumentView['kind'], 'perpetual' | 'future' | 'option'>>();
// What the HTTP calls answer is typed the same.
same<
  Equal<
    NonNullable<ResponseOf<Routes['tx']>['actions']>[number]['orderStatus'],
    ActionResultView['orderStatus']
  >
>();

// The build's versions in GET /v1/status: always there, numbers and a string.
same<Equal<ResponseOf<Routes['status']>['executionVersion'], number>>();
same<Equal<ResponseOf<Routes['status']>['wireVersion'], number>>();
same<Equal<ResponseOf<Routes['status']>['version'], string>>();

/** Never called: a result's enumerations take only their lists' values. */
export function results(tx: TxView): void {
  const action = tx.actions?.[0];
  if (action === undefined) return;
  // @ts-expect-error no such outcome
  if (action.orderStatus === 'partiallyFilled') return;
  // @ts-expect-error no such action
  if (action.kind === 'place') return;
  // @ts-expect-error no such rejection code
  if (action.code === 'NoMargin') return;
  // @ts-expect-error no such transaction status
  if (tx.status === 'failed') return;
}

// --- at run time -------------------------------------------------------------------------

test("an action result's enumerations are the exchange's lists", () => {
  assert.deepEqual(ORDER_RESULT_STATUSES, TAKER_STATUSES);
  assert.deepEqual(ORDER_STATUSES, ['open', 'filled', 'cancelled', 'expired']);
});

test('the served document names the values of each enumeration of an answer', () => {
  const doc = openApiDocument() as {
    paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
  };
  const tx = doc.paths['/v1/tx/{hash}']!.get!.responses['200'] as {
    content: { 'application/json': { schema: unknown } };
  };
  const txSchema = tx.content['application/json'].schema as {
    properties: {
      status: { enum: string[] };
      actions: { items: { properties: Record<string, { enum?: string[] }> } };
    };
  };
  const action = txSchema.properties.actions.items.properties;
  assert.deepEqual(action.kind!.enum, [...ACTION_KINDS]);
  assert.deepEqual(action.orderStatus!.enum, [...TAKER_STATUSES]);
  assert.deepEqual(action.code!.enum, [...REJECT_CODES]);
  assert.deepEqual(txSchema.properties.status.enum, [
    'pending',
    'committed',
    'rejected',
    'dropped',
  ]);
  assert.deepEqual(routes.tx.response.json, txSchema, 'the route schema, served as it is');
});

test("an account channel's fills name their block's time, required", () => {
  const update = channelSchemas.account.update.json as {
    properties: { subaccounts: { items: { properties: { fills: { items: object } } } } };
  };
  const fill = update.properties.subaccounts.items.properties.fills.items as {
    properties: Record<string, unknown>;
    required: string[];
  };
  assert.deepEqual(fill.properties.timeMs, { type: 'integer', minimum: 0 });
  assert.ok(fill.required.includes('timeMs'), 'timeMs is required');
});
