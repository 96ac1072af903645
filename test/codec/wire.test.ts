import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  DecodeError,
  IVARINT_MAX,
  IVARINT_MIN,
  Reader,
  Writer,
  encode,
  decode,
  isWellFormedText,
} from '../../src/codec/wire.ts';
import type { Codec } from '../../src/codec/wire.ts';
import { AssertionError } from '../../src/lib/assert.ts';

function bytesOf(write: (w: Writer) => void): Uint8Array {
  const w = new Writer(4);
  write(w);
  return w.finish();
}

function rejects(bytes: number[] | Uint8Array, read: (r: Reader) => unknown, field: string): void {
  const r = new Reader(Uint8Array.from(bytes));
  assert.throws(
    () => {
      read(r);
      r.done('message');
    },
    (e: unknown) => e instanceof DecodeError && e.field === field,
  );
}

test('uvarint: known encodings, minimal form only', () => {
  assert.deepEqual([...bytesOf((w) => w.uvarint(0))], [0]);
  assert.deepEqual([...bytesOf((w) => w.uvarint(127))], [0x7f]);
  assert.deepEqual([...bytesOf((w) => w.uvarint(128))], [0x80, 0x01]);
  assert.deepEqual([...bytesOf((w) => w.uvarint(300))], [0xac, 0x02]);
  assert.equal(bytesOf((w) => w.uvarint(Number.MAX_SAFE_INTEGER)).length, 8);
  rejects([0x80, 0x00], (r) => r.uvarint('n'), 'n'); // 0 written in two bytes
  rejects([0xff, 0x80, 0x00], (r) => r.uvarint('n'), 'n');
  rejects([0x80], (r) => r.uvarint('n'), 'n'); // truncated
  rejects([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], (r) => r.uvarint('n'), 'n');
  rejects([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x10], (r) => r.uvarint('n'), 'n'); // 2^53
  rejects([0x0b], (r) => r.uvarint('n', 10), 'n');
});

test('uvarint and ivarint round-trip every safe value in range', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (x) => {
      const b = bytesOf((w) => w.uvarint(x));
      const r = new Reader(b);
      assert.equal(r.uvarint('x'), x);
      r.done();
    }),
  );
  fc.assert(
    fc.property(fc.integer({ min: IVARINT_MIN, max: IVARINT_MAX }), (x) => {
      const b = bytesOf((w) => w.ivarint(x));
      const r = new Reader(b);
      assert.equal(r.ivarint('x'), x);
      r.done();
    }),
  );
  assert.throws(() => new Writer().ivarint(IVARINT_MAX + 1), AssertionError);
  assert.throws(() => new Writer().uvarint(-1), AssertionError);
  assert.throws(() => new Writer().uvarint(1.5), AssertionError);
});

test('bigint varints round-trip and refuse values past their bits', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (x) => {
      const b = bytesOf((w) => w.uvarintBig(x));
      const r = new Reader(b);
      assert.equal(r.uvarintBig('x', 64), x);
      r.done();
      // the number and bigint forms agree where both exist
      if (x <= BigInt(Number.MAX_SAFE_INTEGER)) {
        assert.deepEqual(
          b,
          bytesOf((w) => w.uvarint(Number(x))),
        );
      }
    }),
  );
  fc.assert(
    fc.property(fc.bigInt({ min: -((1n << 63n) - 1n), max: (1n << 63n) - 1n }), (x) => {
      const r = new Reader(bytesOf((w) => w.ivarintBig(x)));
      assert.equal(r.ivarintBig('x', 63), x);
      r.done();
    }),
  );
  rejects(
    bytesOf((w) => w.uvarintBig(1n << 64n)),
    (r) => r.uvarintBig('a', 64),
    'a',
  );
  rejects(
    bytesOf((w) => w.uvarintBig(1n << 63n)),
    (r) => r.uvarintBig('a', 63),
    'a',
  );
  rejects([0x80, 0x80, 0x00], (r) => r.uvarintBig('a', 64), 'a');
});

test('booleans are exactly 0 or 1; tags are in range', () => {
  rejects([2], (r) => r.bool('b'), 'b');
  rejects([3], (r) => r.tag('t', 3), 't');
  assert.equal(new Reader(Uint8Array.of(2)).tag('t', 3), 2);
});

test('strings: UTF-8 round-trip, limits in bytes, invalid UTF-8 refused', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (s) => {
      const b = bytesOf((w) => w.string(s, 1000));
      const r = new Reader(b);
      assert.equal(r.string('s', 1000), s);
      r.done();
    }),
  );
  assert.equal(new Reader(bytesOf((w) => w.string('\ufeffé', 10))).string('s', 10), '\ufeffé');
  rejects(
    bytesOf((w) => w.string('abcd', 10)),
    (r) => r.string('s', 3),
    's',
  );
  rejects(
    bytesOf((w) => w.string('é', 10)),
    (r) => r.string('s', 1),
    's',
  ); // 2 bytes
  rejects([2, 0xc3, 0x28], (r) => r.string('s', 10), 's');
  rejects([2, 0xc0, 0x80], (r) => r.string('s', 10), 's'); // overlong NUL
  rejects([3, 0xed, 0xa0, 0x80], (r) => r.string('s', 10), 's'); // a surrogate
  rejects([5, 0x61], (r) => r.string('s', 10), 's'); // length past the end
  assert.throws(() => new Writer().string('\ud800', 10), AssertionError);
  assert.equal(isWellFormedText('a\ud83d\ude00b'), true);
  assert.equal(isWellFormedText('\ude00'), false);
});

test('interned short strings: the same bytes give equal strings, different bytes different ones', () => {
  const seen = new Map<string, string>();
  fc.assert(
    fc.property(fc.string({ unit: 'binary-ascii', maxLength: 8 }), (s) => {
      const b = bytesOf((w) => w.string(s, 100));
      assert.equal(new Reader(b).string('s', 100), s);
      assert.equal(new Reader(b).string('s', 100), s);
      seen.set(s, s);
    }),
    { numRuns: 2000 },
  );
});

test('fixed and length-prefixed bytes; decoded copies do not alias the input', () => {
  const input = Uint8Array.of(1, 2, 3, 2, 9, 8);
  const r = new Reader(input);
  const copy = r.fixedCopy('a', 3);
  assert.deepEqual([...r.bytesField('b', 2)], [9, 8]);
  r.done();
  input[0] = 7;
  assert.deepEqual([...copy], [1, 2, 3]);
  rejects([3, 1, 2, 3], (r) => r.bytesField('b', 2), 'b');
  rejects([1, 2], (r) => r.fixed('f', 3), 'f');
});

test('trailing bytes are refused, with the field given to done()', () => {
  rejects([1, 0], (r) => r.u8('x'), 'message');
});

test('a prefix entered on the reader names nested fields', () => {
  const r = new Reader(Uint8Array.of(0x80));
  const saved = r.enter('tx');
  r.enter('action');
  assert.throws(
    () => r.uvarint('placeOrder.sizeLots'),
    (e: unknown) => e instanceof DecodeError && e.field === 'tx.action.placeOrder.sizeLots',
  );
  r.leave(saved);
  assert.equal(r.prefix, '');
});

test('finish() copies: later writes do not change earlier results', () => {
  const w = new Writer();
  const results: Uint8Array[] = [];
  for (let i = 0; i < 2000; i++) results.push(w.reset().uvarint(i).u32(i).finish());
  for (let i = 0; i < 2000; i++) {
    const r = new Reader(results[i]!);
    assert.equal(r.uvarint('i'), i);
    assert.equal(r.u32('j'), i);
    r.done();
  }
  const big = new Writer().raw(new Uint8Array(5000).fill(7)).finish();
  assert.equal(big.length, 5000);
  const owned = new Writer().u8(1).finishOwned();
  assert.equal(owned.buffer.byteLength, 1);
});

test('rawRange appends the bytes of a range as raw() of a view would, and refuses a range outside', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), fc.nat(), (bytes, a, b) => {
      const start = bytes.length === 0 ? 0 : a % (bytes.length + 1);
      const length = b % (bytes.length - start + 1);
      const expected = bytesOf((w) => w.u8(9).raw(bytes.subarray(start, start + length)));
      assert.deepEqual(
        bytesOf((w) => w.u8(9).rawRange(bytes, start, length)),
        expected,
      );
    }),
    { numRuns: 200, seed: 41 },
  );
  const w = new Writer();
  assert.throws(() => w.rawRange(new Uint8Array(4), 2, 3), AssertionError);
  assert.throws(() => w.rawRange(new Uint8Array(4), -1, 1), AssertionError);
});

test('encode() may be called from inside a codec without corrupting the outer value', () => {
  const inner: Codec<number> = {
    write: (w, x) => void w.uvarint(x),
    read: (r, f) => r.uvarint(f),
  };
  const outer: Codec<number> = {
    write: (w, x) => {
      w.u8(9);
      const nested = encode(inner, x);
      w.bytes(nested, 16);
    },
    read: (r, f) => {
      r.u8(f);
      return decode(inner, r.bytesField(f, 16), f);
    },
  };
  assert.equal(decode(outer, encode(outer, 300)), 300);
});
