// Random operation sequences run through the real book and through the
// reference book must give exactly the same fills, removals, taker results,
// depth, queue order and per-owner figures, with every invariant holding after
// every operation. Half-way, the book is snapshotted and restored, and the
// restored copy must then behave identically to the original.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { OrderBook } from '../../../src/exchange/book/book.ts';
import { orderBookCodec } from '../../../src/exchange/book/snapshot.ts';
import { STP_MODES } from '../../../src/exchange/book/types.ts';
import type { Side, TakerResult } from '../../../src/exchange/book/types.ts';
import { decode, encode } from '../../../src/codec/wire.ts';
import { ReferenceBook } from './reference.ts';
import type { RefResult } from './reference.ts';

const OWNERS = [1, 2, 3];
const SIDES: Side[] = ['buy', 'sell'];

type Op =
  | {
      kind: 'place';
      owner: number;
      side: Side;
      priceTicks: number;
      sizeLots: number;
      timeInForce: 'GTC' | 'IOC' | 'FOK';
      postOnly: boolean;
      stp: (typeof STP_MODES)[number] | undefined;
      goodTilMs: number;
    }
  | { kind: 'cancel'; pick: number }
  | { kind: 'cancelAll'; owner: number; side: Side | undefined }
  | { kind: 'amend'; pick: number; priceTicks: number; sizeLots: number }
  | { kind: 'expire'; nowMs: number };

const side = fc.constantFrom<Side>('buy', 'sell');
const price = fc.integer({ min: 95, max: 105 });
const size = fc.integer({ min: 1, max: 8 });
const owner = fc.constantFrom(...OWNERS);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.record({
      kind: fc.constant('place' as const),
      owner,
      side,
      priceTicks: price,
      sizeLots: size,
      timeInForce: fc.constantFrom('GTC' as const, 'GTC' as const, 'IOC' as const, 'FOK' as const),
      postOnly: fc.boolean(),
      stp: fc.constantFrom(undefined, ...STP_MODES),
      goodTilMs: fc.constantFrom(0, 0, 5, 10, 15),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('cancel' as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('cancelAll' as const),
      owner,
      side: fc.constantFrom(undefined, 'buy' as const, 'sell' as const),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('amend' as const),
      pick: fc.nat(),
      priceTicks: price,
      sizeLots: size,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('expire' as const),
      nowMs: fc.integer({ min: 0, max: 20 }),
    }),
  },
);

function observed(book: OrderBook, result: TakerResult | null): RefResult {
  return {
    status: result?.status ?? 'rejected',
    reason: result?.reason ?? null,
    filledLots: result?.filledLots ?? 0,
    restedLots: result?.restedLots ?? 0,
    cancelledLots: result?.cancelledLots ?? 0,
    fills: book.fills.toArray(),
    removed: book.removed.toArray(),
  };
}

/** Applies one operation to a real book, returning what it reported. */
function applyReal(book: OrderBook, op: Op, orderId: number): RefResult {
  switch (op.kind) {
    case 'place': {
      const postOnly = op.postOnly && op.timeInForce === 'GTC';
      const r = book.place({ ...op, orderId, postOnly });
      return observed(book, r);
    }
    case 'cancel':
      book.cancel(op.pick);
      return observed(book, null);
    case 'cancelAll':
      book.cancelAll(op.owner, op.side);
      return observed(book, null);
    case 'amend':
      return observed(book, book.amend(op.pick, op.priceTicks, op.sizeLots));
    case 'expire':
      book.expire(op.nowMs);
      return observed(book, null);
  }
}

function applyRef(ref: ReferenceBook, op: Op, orderId: number): RefResult {
  const empty: RefResult = {
    status: 'rejected',
    reason: null,
    filledLots: 0,
    restedLots: 0,
    cancelledLots: 0,
    fills: [],
    removed: [],
  };
  switch (op.kind) {
    case 'place': {
      const postOnly = op.postOnly && op.timeInForce === 'GTC';
      return ref.place({ ...op, orderId, postOnly });
    }
    case 'cancel': {
      const gone = ref.cancel(op.pick);
      return { ...empty, removed: gone === undefined ? [] : [gone] };
    }
    case 'cancelAll':
      return { ...empty, removed: ref.cancelAll(op.owner, op.side) };
    case 'amend':
      return ref.amend(op.pick, op.priceTicks, op.sizeLots);
    case 'expire':
      return { ...empty, removed: ref.expire(op.nowMs) };
  }
}

function compareState(book: OrderBook, ref: ReferenceBook, where: string): void {
  book.checkInvariants();
  for (const s of SIDES) {
    const d = book.depth(s, 1000);
    assert.deepEqual(
      d.priceTicks.map((p, i) => [p, d.sizeLots[i], d.orderCounts[i]]),
      ref.depth(s),
      `${where}: ${s} depth`,
    );
    assert.deepEqual(
      [...book.ordersOf(s)].map((o) => o.orderId),
      ref.queue(s),
      `${where}: ${s} queue`,
    );
    for (const p of [95, 100, 105]) {
      const expected = ref.depth(s).filter(([q]) => (s === 'buy' ? q >= p : q <= p));
      assert.equal(
        book.restingLotsTo(s, p),
        expected.reduce((sum, [, lots]) => sum + lots, 0),
        `${where}: ${s} resting lots to ${p}`,
      );
    }
  }
  assert.equal(book.bestBidTicks(), ref.depth('buy')[0]?.[0], `${where}: best bid`);
  assert.equal(book.bestAskTicks(), ref.depth('sell')[0]?.[0], `${where}: best ask`);
  for (const o of OWNERS) {
    assert.deepEqual(
      [...book.ownerOrders(o)].map((x) => [x.orderId, x.sizeLots]),
      ref.ownerOrders(o).map((x) => [x.orderId, x.sizeLots]),
      `${where}: owner ${o} orders`,
    );
    assert.equal(book.ownerOrderCount(o), ref.ownerOrders(o).length);
    for (const s of SIDES) assert.equal(book.ownerRestingLots(o, s), ref.ownerRestingLots(o, s));
  }
}

/** Every level and every order with what identifies its state, to diff across an operation. */
function fingerprint(book: OrderBook): {
  levels: Map<string, string>;
  orders: Map<number, string>;
} {
  const levels = new Map<string, string>();
  const orders = new Map<number, string>();
  for (const s of SIDES) {
    const d = book.depth(s, 1000);
    d.priceTicks.forEach((p, i) => levels.set(`${s}@${p}`, `${d.sizeLots[i]}/${d.orderCounts[i]}`));
    for (const o of book.ordersOf(s)) orders.set(o.orderId, `${o.priceTicks}/${o.sizeLots}`);
  }
  return { levels, orders };
}

/** Everything that differs between two fingerprints must be in the book's change set. */
function checkChanges(
  book: OrderBook,
  before: ReturnType<typeof fingerprint>,
  where: string,
): void {
  const after = fingerprint(book);
  const c = book.changes;
  const listedLevels = new Set(
    c.levelSide.slice(0, c.levelCount).map((s, i) => `${s}@${c.levelPriceTicks[i]}`),
  );
  const listedOrders = new Set(c.orderId.slice(0, c.orderCount));
  for (const key of new Set([...before.levels.keys(), ...after.levels.keys()])) {
    if (before.levels.get(key) !== after.levels.get(key)) {
      assert.ok(listedLevels.has(key), `${where}: level ${key} changed but is not listed`);
    }
  }
  for (const id of new Set([...before.orders.keys(), ...after.orders.keys()])) {
    if (before.orders.get(id) !== after.orders.get(id)) {
      assert.ok(listedOrders.has(id), `${where}: order ${id} changed but is not listed`);
    }
  }
}

/** Maps an arbitrary pick to an id that was used (or one past the last), so most picks hit. */
function idFor(op: Op, lastId: number): Op {
  if (op.kind === 'cancel' || op.kind === 'amend')
    return { ...op, pick: (op.pick % (lastId + 1)) + 1 };
  return op;
}

test('the book matches the reference book exactly, before and after a snapshot restore', () => {
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 1, maxLength: 120 }), fc.nat(), (rawOps, cut) => {
      const book = new OrderBook();
      const ref = new ReferenceBook();
      let restored: OrderBook | undefined;
      const split = cut % rawOps.length;
      let lastId = 0;
      for (let i = 0; i < rawOps.length; i++) {
        if (i === split) {
          const bytes = encode(orderBookCodec, book);
          restored = decode(orderBookCodec, bytes);
          assert.deepEqual(encode(orderBookCodec, restored), bytes, 'the encoding is canonical');
          compareState(restored, ref, `restored at ${i}`);
        }
        const op = idFor(rawOps[i]!, lastId);
        const orderId = op.kind === 'place' ? ++lastId : 0;
        const expected = applyRef(ref, op, orderId);
        const where = `op ${i} ${JSON.stringify(op)}`;
        book.changes.clear();
        const before = fingerprint(book);
        assert.deepEqual(applyReal(book, op, orderId), expected, where);
        checkChanges(book, before, where);
        compareState(book, ref, where);
        if (restored !== undefined) {
          assert.deepEqual(applyReal(restored, op, orderId), expected, `restored ${where}`);
          compareState(restored, ref, `restored ${where}`);
        }
      }
    }),
    { seed: 20_240_601, numRuns: 400 },
  );
});
