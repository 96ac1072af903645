// The varint writers and readers against deliberately simple reference
// implementations (bigint arithmetic, one 7-bit group at a time): the fast
// paths in wire.ts must give exactly the same bytes, values and refusals.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DecodeError, IVARINT_MAX, IVARINT_MIN, Reader, Writer } from '../../src/codec/wire.ts';
import { AssertionError } from '../../src/lib/assert.ts';

function refUvarintBig(x: bigint): number[] {
  const out: number[] = [];
  while (x >= 0x80n) {
    out.push(Number(x & 0x7fn) | 0x80);
    x >>= 7n;
  }
  out.push(Number(x));
  return out;
}

const zigzag = (x: bigint): bigint => (x >= 0n ? 2n * x : -2n * x - 1n);
const refUvarint = (x: number): number[] => refUvarintBig(BigInt(x));
const refIvarint = (x: number): number[] => refUvarintBig(zigzag(BigInt(x)));

/** Integers spread evenly over bit lengths 0 … maxBits, not only over values. */
function byBitLength(maxBits: number): fc.Arbitrary<bigint> {
  return fc
    .integer({ min: 0, max: maxBits })
    .chain((bits) =>
      bits === 0
        ? fc.constant(0n)
        : fc.bigInt({ min: 1n << BigInt(bits - 1), max: (1n << BigInt(bits)) - 1n }),
    );
}

const safeUint = fc.oneof(
  byBitLength(53).map(Number),
  fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  fc.constantFrom(0, 127, 128, 2 ** 28 - 1, 2 ** 28, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32),
  fc.constantFrom(2 ** 35 - 1, 2 ** 35, 2 ** 49 - 1, 2 ** 49, Number.MAX_SAFE_INTEGER),
);
const ivarintValue = fc.oneof(
  fc.tuple(byBitLength(52), fc.boolean()).map(([m, negative]) => {
    const x = Number(m);
    return negative ? 0 - x - (x === IVARINT_MAX ? 1 : 0) : x;
  }),
  fc.integer({ min: IVARINT_MIN, max: IVARINT_MAX }),
  fc.constantFrom(-1, -(2 ** 31), 2 ** 31 - 1, -(2 ** 31) - 1, 2 ** 31, IVARINT_MIN, IVARINT_MAX),
);
const bigUint = fc.oneof(byBitLength(140), fc.bigInt({ min: 0n, max: (1n << 140n) - 1n }));
const bigInt = fc.tuple(bigUint, fc.boolean()).map(([m, negative]) => (negative ? -m : m));
/** Bytes written before the value, so that it starts at any offset and buffers grow mid-write. */
const prefixLength = fc.integer({ min: 0, max: 20 });

function written(prefix: number, write: (w: Writer) => void): number[] {
  const w = new Writer(1);
  for (let i = 0; i < prefix; i++) w.u8(0xaa);
  write(w);
  return [...w.finish()].slice(prefix);
}

function readAll<T>(bytes: number[], read: (r: Reader) => T): T {
  const r = new Reader(Uint8Array.from(bytes));
  const value = read(r);
  r.done();
  return value;
}

test('uvarint writes the reference bytes over the whole safe range and reads back', () => {
  fc.assert(
    fc.property(safeUint, prefixLength, (x, prefix) => {
      const bytes = written(prefix, (w) => w.uvarint(x));
      assert.deepEqual(bytes, refUvarint(x));
      assert.equal(
        readAll(bytes, (r) => r.uvarint('x')),
        x,
      );
    }),
    { numRuns: 2000 },
  );
});

test('ivarint writes the reference bytes over its whole range and reads back', () => {
  fc.assert(
    fc.property(ivarintValue, prefixLength, (x, prefix) => {
      const bytes = written(prefix, (w) => w.ivarint(x));
      assert.deepEqual(bytes, refIvarint(x));
      assert.equal(
        readAll(bytes, (r) => r.ivarint('x')),
        x,
      );
    }),
    { numRuns: 2000 },
  );
  assert.deepEqual(
    written(0, (w) => w.ivarint(-0)),
    [0],
  );
});

test('uvarintBig and ivarintBig write the reference bytes and read back', () => {
  fc.assert(
    fc.property(bigUint, prefixLength, (x, prefix) => {
      const bytes = written(prefix, (w) => w.uvarintBig(x));
      assert.deepEqual(bytes, refUvarintBig(x));
      assert.equal(
        readAll(bytes, (r) => r.uvarintBig('x', 140)),
        x,
      );
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(bigInt, prefixLength, (x, prefix) => {
      const bytes = written(prefix, (w) => w.ivarintBig(x));
      assert.deepEqual(bytes, refUvarintBig(zigzag(x)));
      assert.equal(
        readAll(bytes, (r) => r.ivarintBig('x', 140)),
        x,
      );
    }),
    { numRuns: 2000 },
  );
  // A safe-range value takes the number path and gives the same bytes as its number.
  fc.assert(
    fc.property(ivarintValue, (x) => {
      assert.deepEqual(
        written(0, (w) => w.ivarintBig(BigInt(x))),
        refIvarint(x),
      );
      assert.deepEqual(
        written(0, (w) => w.uvarintBig(BigInt(Math.abs(x)))),
        refUvarint(Math.abs(x)),
      );
    }),
  );
});

test('writers refuse values outside their range', () => {
  const bad = [-1, -0.5, 0.5, 2 ** 53, Number.MAX_SAFE_INTEGER + 2, NaN, Infinity, -Infinity];
  for (const x of bad) assert.throws(() => new Writer().uvarint(x), AssertionError, String(x));
  for (const x of [IVARINT_MAX + 1, IVARINT_MIN - 1, 0.5, -0.5, NaN, Infinity]) {
    assert.throws(() => new Writer().ivarint(x), AssertionError, String(x));
  }
  for (const x of [-1, 256, 0.5, NaN]) assert.throws(() => new Writer().u8(x), AssertionError);
  assert.throws(() => new Writer().uvarintBig(-1n), AssertionError);
  assert.throws(() => new Writer().uvarintBig(-(1n << 80n)), AssertionError);
});

// Reference readers: the plain loops, refusing in the same order (end of
// input, non-minimal, too long, out of range) with the same reasons.

type Outcome = { value: number | bigint; offset: number } | { error: string };

function outcome(read: () => number | bigint, r: { offset: number }): Outcome {
  try {
    const value = read();
    return { value, offset: r.offset };
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    return { error: e.message };
  }
}

function refReadUvarint(bytes: Uint8Array, max: number): number {
  let result = 0;
  let multiplier = 1;
  for (let i = 0; ; i++) {
    if (i >= bytes.length) throw new DecodeError('x', 'unexpected end of input');
    const b = bytes[i]!;
    result += (b & 0x7f) * multiplier;
    if ((b & 0x80) === 0) {
      if (b === 0 && i > 0) throw new DecodeError('x', 'non-minimal varint');
      break;
    }
    multiplier *= 128;
    if (i >= 7) throw new DecodeError('x', 'varint too long');
  }
  if (result > max) throw new DecodeError('x', `${result} exceeds the maximum ${max}`);
  return result;
}

function refVarintEnd(bytes: Uint8Array, maxBytes: number): number {
  let end = 0;
  for (;;) {
    if (end >= bytes.length) throw new DecodeError('x', 'unexpected end of input');
    if (end >= maxBytes) throw new DecodeError('x', 'varint too long');
    if ((bytes[end++]! & 0x80) === 0) break;
  }
  if (bytes[end - 1] === 0 && end > 1) throw new DecodeError('x', 'non-minimal varint');
  return end;
}

function refReadUvarintBig(bytes: Uint8Array, maxBits: number): bigint {
  const end = refVarintEnd(bytes, Math.ceil(maxBits / 7));
  let result = 0n;
  for (let i = end - 1; i >= 0; i--) result = (result << 7n) | BigInt(bytes[i]! & 0x7f);
  if (result >> BigInt(maxBits) !== 0n) throw new DecodeError('x', `exceeds ${maxBits} bits`);
  return result;
}

function refReadIvarintBig(bytes: Uint8Array, maxBits: number): bigint {
  const z = refReadUvarintBig(bytes, maxBits + 1);
  const x = (z & 1n) === 0n ? z >> 1n : -((z + 1n) >> 1n);
  if ((x < 0n ? -x : x) >> BigInt(maxBits) !== 0n) {
    throw new DecodeError('x', `exceeds ±2^${maxBits}`);
  }
  return x;
}

function refReadIvarint(bytes: Uint8Array, absMax: number): number {
  const z = refReadUvarint(bytes, Number.MAX_SAFE_INTEGER);
  const x = z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  if (Math.abs(x) > absMax) throw new DecodeError('x', `${x} is out of range ±${absMax}`);
  return x;
}

function refLength(bytes: Uint8Array): number {
  let i = 0;
  while (bytes[i]! & 0x80) i++;
  return i + 1;
}

/** Byte strings that look like varints: mostly continuation bytes, some zeros, any length to 12. */
const varintLike = fc
  .array(
    fc.oneof(
      fc.integer({ min: 0x80, max: 0xff }),
      fc.integer({ min: 0, max: 0x7f }),
      fc.constantFrom(0, 0x80, 0xff, 0x7f, 0x01, 0x10),
    ),
    { maxLength: 12 },
  )
  .map((xs) => Uint8Array.from(xs));

function sameAsReference(
  bytes: Uint8Array,
  read: (r: Reader) => number | bigint,
  reference: (bytes: Uint8Array) => number | bigint,
): void {
  const r = new Reader(bytes);
  const got = outcome(() => read(r), r);
  const want = outcome(() => reference(bytes), { offset: 0 });
  if ('value' in want) {
    assert.deepEqual(got, { value: want.value, offset: refLength(bytes) });
    assert.ok(!Object.is(got.value, -0), 'no negative zero');
  } else {
    assert.deepEqual(got, want);
  }
}

test('varint readers accept, refuse and explain exactly as the reference readers do', () => {
  const uintBound = fc.oneof(
    fc.constant(Number.MAX_SAFE_INTEGER),
    fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    fc.integer({ min: 0, max: 2 ** 32 }),
  );
  fc.assert(
    fc.property(varintLike, uintBound, (bytes, max) =>
      sameAsReference(
        bytes,
        (r) => r.uvarint('x', max),
        (b) => refReadUvarint(b, max),
      ),
    ),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(varintLike, uintBound, (bytes, absMax) =>
      sameAsReference(
        bytes,
        (r) => r.ivarint('x', absMax),
        (b) => refReadIvarint(b, absMax),
      ),
    ),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(varintLike, fc.integer({ min: 0, max: 90 }), (bytes, maxBits) => {
      sameAsReference(
        bytes,
        (r) => r.uvarintBig('x', maxBits),
        (b) => refReadUvarintBig(b, maxBits),
      );
      sameAsReference(
        bytes,
        (r) => r.ivarintBig('x', maxBits),
        (b) => refReadIvarintBig(b, maxBits),
      );
    }),
    { numRuns: 3000 },
  );
  // Edges of the short bigint path: seven bytes at bounds of 48 and 49 bits, and a bound of 0.
  const sevenBytes = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
  for (const maxBits of [0, 1, 47, 48, 49, 50]) {
    for (const bytes of [sevenBytes, Uint8Array.from([0]), Uint8Array.from([0x80, 0x01])]) {
      sameAsReference(
        bytes,
        (r) => r.uvarintBig('x', maxBits),
        (b) => refReadUvarintBig(b, maxBits),
      );
      sameAsReference(
        bytes,
        (r) => r.ivarintBig('x', maxBits),
        (b) => refReadIvarintBig(b, maxBits),
      );
    }
  }
});
