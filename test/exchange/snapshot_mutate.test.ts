// Damages no single bit flip makes (snapshot_cover.test.ts flips bits): a
// snapshot cut short or extended, bytes inserted, deleted, duplicated or
// swapped, a length or count made huge. A state-syncing node decodes such
// bytes from an untrusted peer before it can compare the appHash, so each
// must be refused with a typed error (not a TypeError or RangeError from deep
// inside) or restore a state with another appHash, which sync refuses; the
// decoder allocates only as it reads, so a huge count costs no more than the
// bytes behind it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DecodeError, Writer } from '../../src/codec/wire.ts';
import { Prng } from '../../src/lib/prng.ts';
import { writeOrderMeta } from '../../src/exchange/encoding.ts';
import { decodeSnapshot, encodeSnapshot } from '../../src/exchange/snapshot.ts';
import { Harness, USDC, genesis, key, limit } from './helpers.ts';
import { rich, unsound } from './rich_state.ts';

function varint(x: bigint): number[] {
  const out: number[] = [];
  for (; x >= 0x80n; x >>= 7n) out.push(Number(x & 0x7fn) | 0x80);
  out.push(Number(x));
  return out;
}

const HUGE = [2n ** 31n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 64n, 70_000n];

/** One seeded damage of `bytes`: what it did, and the damaged bytes. */
function damage(rng: Prng, bytes: Uint8Array): [string, Uint8Array] {
  const at = rng.int(bytes.length);
  const out = [...bytes];
  const random = (n: number) => Array.from({ length: n }, () => rng.int(256));
  switch (rng.int(8)) {
    case 0:
      return [`cut at ${at}`, bytes.slice(0, at)];
    case 1:
      out.push(...random(1 + rng.int(16)));
      return ['extended', Uint8Array.from(out)];
    case 2:
      out.splice(at, 0, ...random(1 + rng.int(8)));
      return [`inserted at ${at}`, Uint8Array.from(out)];
    case 3:
      out.splice(at, 1 + rng.int(32));
      return [`deleted at ${at}`, Uint8Array.from(out)];
    case 4: {
      // The varint starting here (a length, count, id or amount) made huge.
      let end = at;
      while (end < bytes.length - 1 && bytes[end]! & 0x80) end++;
      const value = HUGE[rng.int(HUGE.length)]!;
      out.splice(at, end - at + 1, ...varint(value));
      return [`varint at ${at} = ${value}`, Uint8Array.from(out)];
    }
    case 5: {
      const piece = out.slice(at, at + 1 + rng.int(64));
      out.splice(at + piece.length, 0, ...piece);
      return [`duplicated at ${at}`, Uint8Array.from(out)];
    }
    case 6: {
      const first = out.slice(at, at + 1 + rng.int(48));
      const second = out.slice(at + first.length, at + first.length + 1 + rng.int(48));
      out.splice(at, first.length + second.length, ...second, ...first);
      return [`swapped at ${at}`, Uint8Array.from(out)];
    }
    default:
      out[at] = [0, 0x7f, 0x80, 0xff][rng.int(4)]!;
      return [`set at ${at}`, Uint8Array.from(out)];
  }
}

/** A plain genesis (no listing) with resting orders on both perpetuals. */
function plain(seed: number): Harness {
  const rng = new Prng(seed);
  const h = new Harness(genesis(), {});
  const traders = [0, 1, 2, 3].map((i) => key(`mutate-${seed}-${i}`));
  for (const k of traders) h.fund(k, 100_000n * USDC);
  for (let i = 0; i < 24; i++) {
    const btc = rng.int(2) === 0;
    const mid = btc ? 500_000 : 300_000;
    const side = rng.int(2) === 0 ? 'buy' : 'sell';
    const price = mid - 400 + rng.int(800);
    const order = limit(btc ? 'BTC-PERPETUAL' : 'ETH-PERPETUAL', side, price, 1 + rng.int(5));
    h.one(traders[rng.int(traders.length)]!, order);
  }
  return h;
}

test('a snapshot cut, extended, spliced or with a count made huge is refused with a typed error or restores another appHash', () => {
  const states: [string, Harness][] = [
    ['rich', rich(60_000)],
    ['plain', plain(1)],
    ['empty', new Harness(genesis({ oracle: undefined, listing: undefined }), {})],
  ];
  const bad: string[] = [];
  for (const [name, h] of states) {
    const bytes = encodeSnapshot(h.ex);
    const rng = new Prng(name.length);
    for (let i = 0; i < 600; i++) {
      const [what, mutated] = damage(rng, bytes);
      if (mutated.length === bytes.length && mutated.every((x, j) => x === bytes[j])) continue;
      const why = unsound(mutated, bytes, h.ex.appHash);
      if (why !== null) bad.push(`${name}, ${what}: ${why}`);
    }
  }
  assert.deepEqual(bad, []);
});

test('one order record per resting order of every book, however many books hold them', () => {
  // The records' count used to be bounded by BOOK_ORDERS_MAX, the bound of one
  // book: a state whose books held more orders between them wrote snapshots
  // that no node could restore. It is now the books' orders, exactly.
  const h = rich(60_000);
  const s = h.ex.state;
  const bytes = encodeSnapshot(h.ex);
  const records = [...s.orders.values()].sort((x, y) => x.orderId - y.orderId);
  const auction = s.marketByName.get('BTC-PERPETUAL')!.auction!;
  assert.ok(auction.bids.orderCount + auction.asks.orderCount > 0, 'orders in auction books too');
  assert.ok(records.length < 127, 'a one-byte count');
  const w = new Writer(256);
  w.uvarint(records.length);
  writeOrderMeta(w, records[0]!);
  const needle = w.finish();
  const at = bytes.findIndex((_, i) => needle.every((x, j) => bytes[i + j] === x));
  assert.ok(at > 0, 'the records follow their count');
  for (const count of [records.length - 1, records.length + 1]) {
    const mutated = bytes.slice();
    mutated[at] = count;
    assert.throws(
      () => decodeSnapshot(mutated),
      (e: unknown) =>
        e instanceof DecodeError &&
        e.field === 'snapshot.orders' &&
        e.reason === `${count} records for ${records.length} resting orders`,
      `a count of ${count}`,
    );
  }
});
