// An order's size as placed (OrderMeta.placedLots): kept while it fills, set
// by an amend (what it filled plus what stays open), in the state's digest
// and snapshots, and never below the open size.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, USDC, key, limit } from './helpers.ts';
import type { ActionResult, TxResult } from '../../src/exchange/index.ts';
import { decodeSnapshot, encodeSnapshot } from '../../src/exchange/index.ts';
import { digestFromScratch } from '../../src/exchange/hash.ts';

const BTC = 'BTC-PERPETUAL';
const PRICE = 500_000;

function accepted(r: TxResult): ActionResult {
  assert.equal(r.ok, true, r.ok ? '' : `${r.code} ${r.message}`);
  const a = r.actions[0]!;
  assert.equal(a.ok, true, a.ok ? '' : `${a.code}: ${a.message}`);
  return a;
}

function orderIdOf(a: ActionResult): number {
  assert.ok(a.ok && a.order !== undefined);
  return a.order.orderId;
}

/** [placed, open] of a resting order. */
function sizes(h: Harness, orderId: number): [number, number] {
  const meta = h.ex.state.orders.get(orderId);
  assert.ok(meta !== undefined, `order ${orderId} rests`);
  const open = h.ex.state.markets[meta.market]!.book.order(orderId)!.sizeLots;
  return [meta.placedLots, open];
}

function funded(): { h: Harness; a: ReturnType<typeof key>; b: ReturnType<typeof key> } {
  const h = new Harness();
  const a = key('a');
  const b = key('b');
  h.fund(a, 100_000n * USDC);
  h.fund(b, 100_000n * USDC);
  return { h, a, b };
}

test('a resting order keeps the size placed while makers fill it', () => {
  const { h, a, b } = funded();
  const id = orderIdOf(accepted(h.one(a, limit(BTC, 'buy', PRICE - 100, 10))));
  assert.deepEqual(sizes(h, id), [10, 10]);
  accepted(h.one(b, limit(BTC, 'sell', PRICE - 100, 4)));
  assert.deepEqual(sizes(h, id), [10, 6]);
  accepted(h.one(b, limit(BTC, 'sell', PRICE - 100, 5)));
  assert.deepEqual(sizes(h, id), [10, 1]);
});

test('an order that took liquidity before resting counts what it took as placed', () => {
  const { h, a, b } = funded();
  accepted(h.one(b, limit(BTC, 'sell', PRICE, 3)));
  const id = orderIdOf(accepted(h.one(a, limit(BTC, 'buy', PRICE, 10))));
  assert.deepEqual(sizes(h, id), [10, 7]);
});

test("an amend sets the order's size: what filled before stays filled, the rest is open", () => {
  const { h, a, b } = funded();
  const id = orderIdOf(accepted(h.one(a, limit(BTC, 'buy', PRICE - 100, 10))));
  accepted(h.one(b, limit(BTC, 'sell', PRICE - 100, 4)));
  // Smaller, same price: keeps its place; 4 filled, 3 open.
  accepted(h.one(a, { kind: 'amend', instrument: BTC, orderId: id, sizeLots: 7 }));
  assert.deepEqual(sizes(h, id), [7, 3]);
  // Larger: 4 filled, 8 open.
  accepted(h.one(a, { kind: 'amend', instrument: BTC, orderId: id, sizeLots: 12 }));
  assert.deepEqual(sizes(h, id), [12, 8]);
  // Across the spread: takes 2 at the ask and rests the rest of its 8.
  accepted(h.one(b, limit(BTC, 'sell', PRICE, 2)));
  accepted(h.one(a, { kind: 'amend', instrument: BTC, orderId: id, priceTicks: PRICE }));
  assert.deepEqual(sizes(h, id), [12, 6]);
  // A refused amend changes nothing.
  const refused = h.one(a, { kind: 'amend', instrument: BTC, orderId: id, sizeLots: 10_000_000 });
  assert.equal(refused.ok && refused.actions[0]!.ok, false);
  assert.deepEqual(sizes(h, id), [12, 6]);
});

test('the size placed is in the digest and the snapshot, and a snapshot placing an order below its open size is refused', () => {
  const { h, a, b } = funded();
  const id = orderIdOf(accepted(h.one(a, limit(BTC, 'buy', PRICE - 100, 10))));
  accepted(h.one(b, limit(BTC, 'sell', PRICE - 100, 4)));
  const restored = decodeSnapshot(encodeSnapshot(h.ex));
  assert.equal(restored.state.orders.get(id)!.placedLots, 10);
  assert.deepEqual(restored.appHash, h.ex.appHash);

  const meta = h.ex.state.orders.get(id)!;
  const before = digestFromScratch(h.ex.state, h.ex.genesisHash).bytes();
  meta.placedLots = 11;
  assert.notDeepEqual(digestFromScratch(h.ex.state, h.ex.genesisHash).bytes(), before);
  meta.placedLots = 5;
  assert.throws(
    () => decodeSnapshot(encodeSnapshot(h.ex)),
    (e: unknown) =>
      e instanceof Error &&
      (e as { code?: string }).code === 'DecodeError' &&
      e.message.includes('placed below its open size'),
  );
});
