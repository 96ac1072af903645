// The canonical encoding of a whole book, for state snapshots and hashing:
//
//   u8        format (1)
//   uvarint   lastOrderId
//   bids, then asks, each:
//     uvarint   level count
//     per level, in ascending price:
//       uvarint   priceTicks (> 0, strictly ascending)
//       uvarint   order count (≥ 1)
//       per order, in time priority:
//         uvarint orderId (≤ lastOrderId, unique), uvarint owner,
//         uvarint sizeLots (≥ 1), uvarint goodTilMs (0 = none),
//         u8 flags (bits 0-1: STP mode index, bit 2: post-only; the rest 0)
//
// One book has exactly one encoding, and decoding rebuilds a book that
// behaves identically (same priorities, same per-owner order, same expiry
// order). The decoder refuses anything a book could not hold.
//
// writeBookOrders/readBookOrders are the same without lastOrderId, for an
// owner that assigns the ids itself (the exchange's snapshot): there it is not
// state, the owner gives the bound on restore, and a value on the wire that no
// digest covers would be one a peer could change unnoticed.

import type { Codec, Reader, Writer } from '../../codec/wire.ts';
import { DecodeError } from '../../codec/wire.ts';
import { BOOK_ORDERS_MAX } from '../../lib/limits.ts';
import { OrderBook } from './book.ts';
import type { Level } from './nodes.ts';
import { STP_MODES } from './types.ts';
import type { RestingOrder, Side, StpMode } from './types.ts';

const FORMAT = 1;
const FLAG_POST_ONLY = 4;
const STP_MASK = 3;

function writeOrder(w: Writer, order: RestingOrder): void {
  w.uvarint(order.orderId);
  w.uvarint(order.owner);
  w.uvarint(order.sizeLots);
  w.uvarint(order.goodTilMs);
  w.u8(STP_MODES.indexOf(order.stp) | (order.postOnly ? FLAG_POST_ONLY : 0));
}

export function writeBook(w: Writer, book: OrderBook): void {
  w.u8(FORMAT);
  w.uvarint(book.lastOrderId);
  writeSides(w, book);
}

/** The book without its lastOrderId (readBookOrders takes it from the caller). */
export function writeBookOrders(w: Writer, book: OrderBook): void {
  w.u8(FORMAT);
  writeSides(w, book);
}

function writeSides(w: Writer, book: OrderBook): void {
  const bids = book.bids.levels;
  w.uvarint(bids.length);
  for (let i = 0; i < bids.length; i++) writeLevel(w, bids[i]!);
  const asks = book.asks.levels;
  w.uvarint(asks.length);
  for (let i = asks.length - 1; i >= 0; i--) writeLevel(w, asks[i]!);
}

function writeLevel(w: Writer, level: Level): void {
  w.uvarint(level.priceTicks);
  w.uvarint(level.orderCount);
  for (let order = level.head; order !== null; order = order.next) writeOrder(w, order);
}

export function readBook(r: Reader, field: string): OrderBook {
  readFormat(r, field);
  return readSides(r, field, r.uvarint(`${field}.lastOrderId`));
}

/**
 * A book written by writeBookOrders; `lastOrderId` is the caller's bound on
 * its ids (every order id must be at most it) and becomes the book's.
 */
export function readBookOrders(r: Reader, field: string, lastOrderId: number): OrderBook {
  readFormat(r, field);
  return readSides(r, field, lastOrderId);
}

function readFormat(r: Reader, field: string): void {
  const format = r.u8(`${field}.format`);
  if (format !== FORMAT) throw new DecodeError(`${field}.format`, `unknown book format ${format}`);
}

function readSides(r: Reader, field: string, lastOrderId: number): OrderBook {
  const orders: RestingOrder[] = [];
  const seen = new Set<number>();
  let bestBidTicks = 0;
  let bestAskTicks = 0;
  for (const side of ['buy', 'sell'] as const) {
    const sideField = `${field}.${side === 'buy' ? 'bids' : 'asks'}`;
    const levelCount = r.uvarint(`${sideField}.length`, BOOK_ORDERS_MAX);
    let previous = 0;
    // Bounds every level's and every owner's total on this side too.
    let sideLots = 0;
    for (let i = 0; i < levelCount; i++) {
      const levelField = `${sideField}[${i}]`;
      const priceTicks = r.uvarint(`${levelField}.priceTicks`);
      if (priceTicks <= previous) {
        throw new DecodeError(
          `${levelField}.priceTicks`,
          'levels must be positive and strictly ascending',
        );
      }
      previous = priceTicks;
      // Both sides ascend: the best bid is the last bid level, the best ask the first ask level.
      if (side === 'buy') bestBidTicks = priceTicks;
      else if (i === 0) bestAskTicks = priceTicks;
      const orderCount = r.uvarint(`${levelField}.orders.length`, BOOK_ORDERS_MAX);
      if (orderCount === 0) throw new DecodeError(`${levelField}.orders.length`, 'empty level');
      if (orders.length + orderCount > BOOK_ORDERS_MAX) {
        throw new DecodeError(`${levelField}.orders.length`, `more than ${BOOK_ORDERS_MAX} orders`);
      }
      for (let j = 0; j < orderCount; j++) {
        const order = readOrder(
          r,
          `${levelField}.orders[${j}]`,
          side,
          priceTicks,
          lastOrderId,
          seen,
        );
        sideLots += order.sizeLots;
        if (!Number.isSafeInteger(sideLots)) {
          throw new DecodeError(`${levelField}.orders`, 'resting size overflows a safe integer');
        }
        orders.push(order);
      }
    }
  }
  if (bestBidTicks !== 0 && bestAskTicks !== 0 && bestBidTicks >= bestAskTicks) {
    throw new DecodeError(`${field}.asks`, 'crossed book');
  }
  return OrderBook.restore(lastOrderId, orders);
}

function readOrder(
  r: Reader,
  field: string,
  side: Side,
  priceTicks: number,
  lastOrderId: number,
  seen: Set<number>,
): RestingOrder {
  const orderId = r.uvarint(`${field}.orderId`, lastOrderId);
  if (seen.has(orderId)) throw new DecodeError(`${field}.orderId`, `duplicate order id ${orderId}`);
  seen.add(orderId);
  const owner = r.uvarint(`${field}.owner`);
  const sizeLots = r.uvarint(`${field}.sizeLots`);
  if (sizeLots === 0) throw new DecodeError(`${field}.sizeLots`, 'zero-size order');
  const goodTilMs = r.uvarint(`${field}.goodTilMs`);
  const flags = r.u8(`${field}.flags`);
  const stpIndex = flags & STP_MASK;
  if ((flags & ~(STP_MASK | FLAG_POST_ONLY)) !== 0 || stpIndex >= STP_MODES.length) {
    throw new DecodeError(`${field}.flags`, `bad flags ${flags}`);
  }
  const stp: StpMode = STP_MODES[stpIndex]!;
  return {
    orderId,
    owner,
    side,
    priceTicks,
    sizeLots,
    goodTilMs,
    stp,
    postOnly: (flags & FLAG_POST_ONLY) !== 0,
  };
}

export const orderBookCodec: Codec<OrderBook> = {
  write: writeBook,
  read: readBook,
};
