import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { OrderBook } from '../../../src/exchange/book/book.ts';
import { orderBookCodec } from '../../../src/exchange/book/snapshot.ts';
import { DecodeError, Writer, decode, encode } from '../../../src/codec/wire.ts';
import { Prng } from '../../../src/lib/prng.ts';

/** A book with some of everything: both sides, several levels, queues, owners, good-til times, flags. */
function sampleBook(seed: number, orders: number): OrderBook {
  const prng = new Prng(seed);
  const book = new OrderBook();
  for (let id = 1; id <= orders; id++) {
    const side = prng.chance(1, 2) ? 'buy' : 'sell';
    const offset = prng.between(0, 6);
    book.place({
      orderId: id,
      owner: prng.between(1, 4),
      side,
      priceTicks: side === 'buy' ? 1000 - offset : 1001 + offset,
      sizeLots: prng.between(1, 50),
      timeInForce: 'GTC',
      postOnly: prng.chance(1, 4),
      stp: prng.pick(['cancelResting', 'cancelIncoming', 'cancelBoth'] as const),
      goodTilMs: prng.chance(1, 3) ? prng.between(1, 100) : 0,
    });
  }
  return book;
}

test('a snapshot restores a book that encodes the same and trades the same', () => {
  const book = sampleBook(1, 200);
  const bytes = encode(orderBookCodec, book);
  const copy = decode(orderBookCodec, bytes);
  copy.checkInvariants();
  assert.deepEqual(encode(orderBookCodec, copy), bytes);
  assert.equal(copy.lastOrderId, book.lastOrderId);
  for (const side of ['buy', 'sell'] as const) {
    assert.deepEqual(copy.depth(side, 100), book.depth(side, 100));
  }
  for (const owner of [1, 2, 3, 4]) {
    const plain = (b: OrderBook) =>
      [...b.ownerOrders(owner)].map((o) => ({
        orderId: o.orderId,
        side: o.side,
        priceTicks: o.priceTicks,
        sizeLots: o.sizeLots,
        goodTilMs: o.goodTilMs,
        stp: o.stp,
        postOnly: o.postOnly,
      }));
    assert.deepEqual(plain(copy), plain(book));
  }
  // The same sweeps, amends and expiries give the same fills and removals.
  const prng = new Prng(2);
  for (let i = 0; i < 100; i++) {
    const id = book.lastOrderId + 1;
    const side = prng.chance(1, 2) ? 'buy' : 'sell';
    const order = {
      orderId: id,
      owner: prng.between(1, 4),
      side,
      priceTicks: prng.between(990, 1010),
      sizeLots: prng.between(1, 80),
      timeInForce: 'GTC',
    } as const;
    for (const b of [book, copy]) b.place(order);
    assert.deepEqual(copy.fills.toArray(), book.fills.toArray());
    const amendId = prng.between(1, id);
    const amendTicks = prng.between(990, 1010);
    const amended = [book, copy].map((b) => ({
      ...b.amend(amendId, amendTicks, 5),
      fills: b.fills.toArray(),
    }));
    assert.deepEqual(amended[1], amended[0]);
    for (const b of [book, copy]) b.expire(i);
    assert.deepEqual(copy.removed.toArray(), book.removed.toArray());
  }
  assert.deepEqual(encode(orderBookCodec, copy), encode(orderBookCodec, book));
});

test('an empty book has a tiny canonical encoding', () => {
  const bytes = encode(orderBookCodec, new OrderBook());
  assert.deepEqual([...bytes], [1, 0, 0, 0]);
  assert.equal(decode(orderBookCodec, bytes).orderCount, 0);
});

interface RawOrder {
  id: number;
  owner?: number;
  size?: number;
  goodTil?: number;
  flags?: number;
}
type RawLevel = [price: number, orders: RawOrder[]];

function raw(lastId: number, bids: RawLevel[], asks: RawLevel[], format = 1): Uint8Array {
  const w = new Writer();
  w.u8(format).uvarint(lastId);
  for (const side of [bids, asks]) {
    w.uvarint(side.length);
    for (const [price, orders] of side) {
      w.uvarint(price).uvarint(orders.length);
      for (const o of orders) {
        w.uvarint(o.id)
          .uvarint(o.owner ?? 1)
          .uvarint(o.size ?? 1);
        w.uvarint(o.goodTil ?? 0).u8(o.flags ?? 0);
      }
    }
  }
  return w.finish();
}

test('the decoder refuses every book that could not exist, naming the field', () => {
  const ok = raw(3, [[99, [{ id: 1 }]]], [[101, [{ id: 2 }, { id: 3, flags: 6 }]]]);
  decode(orderBookCodec, ok).checkInvariants();
  const bad: [string, Uint8Array][] = [
    ['book.format', raw(3, [], [], 2)],
    ['book.bids[0].orders[0].orderId', raw(0, [[99, [{ id: 1 }]]], [])],
    ['book.asks[0].orders[0].orderId', raw(3, [[99, [{ id: 1 }]]], [[101, [{ id: 1 }]]])],
    ['book.bids[0].orders[0].sizeLots', raw(3, [[99, [{ id: 1, size: 0 }]]], [])],
    ['book.bids[0].orders.length', raw(3, [[99, []]], [])],
    [
      'book.bids[1].priceTicks',
      raw(
        3,
        [
          [99, [{ id: 1 }]],
          [98, [{ id: 2 }]],
        ],
        [],
      ),
    ],
    ['book.bids[0].priceTicks', raw(3, [[0, [{ id: 1 }]]], [])],
    ['book.asks', raw(3, [[101, [{ id: 1 }]]], [[101, [{ id: 2 }]]])],
    ['book.bids[0].orders[0].flags', raw(3, [[99, [{ id: 1, flags: 3 }]]], [])],
    ['book.bids[0].orders[0].flags', raw(3, [[99, [{ id: 1, flags: 8 }]]], [])],
    [
      'book.bids[0].orders',
      raw(
        3,
        [
          [
            99,
            [
              { id: 1, size: 2 ** 52 },
              { id: 2, size: 2 ** 52 },
            ],
          ],
        ],
        [],
      ),
    ],
    ['book.asks[0].priceTicks', ok.subarray(0, ok.length - 12)],
    ['book', new Uint8Array([...ok, 0])],
  ];
  for (const [field, bytes] of bad) {
    assert.throws(
      () => decode(orderBookCodec, bytes, 'book'),
      (e: unknown) => e instanceof DecodeError && e.field === field,
      field,
    );
  }
});

test('any corruption of a snapshot either decodes to a canonical, valid book or is a DecodeError', () => {
  const bytes = encode(orderBookCodec, sampleBook(3, 40));
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat({ max: bytes.length - 1 }), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 3,
      }),
      fc.nat({ max: bytes.length }),
      (edits, cut) => {
        const mutated = bytes.slice(0, cut === 0 ? bytes.length : cut);
        for (const [at, value] of edits) if (at < mutated.length) mutated[at] = value;
        let book: OrderBook;
        try {
          book = decode(orderBookCodec, mutated);
        } catch (e) {
          assert.ok(e instanceof DecodeError, String(e));
          return;
        }
        book.checkInvariants();
        assert.deepEqual(encode(orderBookCodec, book), mutated);
      },
    ),
    { seed: 7, numRuns: 2000 },
  );
});
