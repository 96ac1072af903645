import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  DecodeError,
  array,
  bool,
  bytes,
  decode,
  encode,
  fixedBytes,
  i64,
  int,
  literals,
  optional,
  refine,
  string,
  struct,
  u64,
  u8,
  uint,
  union,
} from '../../src/codec/index.ts';
import type { Infer } from '../../src/codec/index.ts';

const vote = struct({
  height: uint(),
  round: uint(1000),
  delta: int(1_000_000),
  hash: fixedBytes(4),
  extension: optional(bytes(8)),
  memo: string(16),
  amount: u64,
  pnl: i64,
  flags: array(bool, 4),
  step: literals(['propose', 'prevote', 'precommit']),
  weight: u8,
});
type Vote = Infer<typeof vote>;

const voteArb: fc.Arbitrary<Vote> = fc
  .record(
    {
      height: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      round: fc.integer({ min: 0, max: 1000 }),
      delta: fc.integer({ min: -1_000_000, max: 1_000_000 }),
      hash: fc.uint8Array({ minLength: 4, maxLength: 4 }),
      extension: fc.uint8Array({ maxLength: 8 }),
      memo: fc.string({ maxLength: 16 }),
      amount: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      pnl: fc.bigInt({ min: -((1n << 63n) - 1n), max: (1n << 63n) - 1n }),
      flags: fc.array(fc.boolean(), { maxLength: 4 }),
      step: fc.constantFrom('propose' as const, 'prevote' as const, 'precommit' as const),
      weight: fc.integer({ min: 0, max: 255 }),
    },
    {
      requiredKeys: [
        'height',
        'round',
        'delta',
        'hash',
        'memo',
        'amount',
        'pnl',
        'flags',
        'step',
        'weight',
      ],
    },
  )
  .map((v) => ({ ...v })) as fc.Arbitrary<Vote>; // fast-check's records have no prototype

type Shape = { kind: 'circle'; radius: number } | { kind: 'rect'; w: number; h: number };
const shape = union<'kind', Shape>('kind', {
  circle: struct({ radius: uint() }),
  rect: struct({ w: uint(), h: uint() }),
});

test('struct: decode(encode(x)) deep-equals x, absent optionals stay absent', () => {
  fc.assert(
    fc.property(voteArb, (v) => {
      assert.deepStrictEqual(decode(vote, encode(vote, v)), v);
    }),
    { numRuns: 500 },
  );
});

test('struct: any bytes that decode re-encode to themselves', () => {
  fc.assert(
    fc.property(voteArb, fc.nat(), fc.integer({ min: 0, max: 255 }), (v, at, byte) => {
      const b = encode(vote, v);
      const mutated = b.slice();
      mutated[at % b.length] = byte;
      let decoded: Vote;
      try {
        decoded = decode(vote, mutated);
      } catch (e) {
        assert.ok(e instanceof DecodeError, String(e));
        return;
      }
      assert.deepEqual(encode(vote, decoded), mutated);
    }),
    { numRuns: 2000 },
  );
});

test('union: tags pick the variant; unknown tags name the discriminant', () => {
  const c: Shape = { kind: 'rect', w: 3, h: 4 };
  const b = encode(shape, c);
  assert.deepEqual([...b], [1, 3, 4]);
  assert.deepStrictEqual(decode(shape, b), c);
  assert.throws(
    () => decode(shape, Uint8Array.of(2, 1), 'shape'),
    (e: unknown) => e instanceof DecodeError && e.field === 'shape.kind',
  );
  assert.throws(
    () => decode(shape, Uint8Array.of(1, 3), 'shape'),
    (e: unknown) => e instanceof DecodeError && e.field === 'shape.rect.h',
  );
});

test('array: element errors are named by index; lengths past the limit are refused', () => {
  const list = array(uint(10), 3);
  assert.throws(
    () => decode(list, Uint8Array.of(2, 1, 11), 'xs'),
    (e: unknown) => e instanceof DecodeError && e.field === 'xs[1]',
  );
  assert.throws(
    () => decode(list, Uint8Array.of(4, 1, 1, 1, 1), 'xs'),
    (e: unknown) => e instanceof DecodeError && e.field === 'xs',
  );
});

test('refine: values failing the check are refused on decode', () => {
  const even = refine(uint(), (x) => (x % 2 === 0 ? undefined : 'must be even'));
  assert.equal(decode(even, encode(even, 4)), 4);
  assert.throws(
    () => decode(even, Uint8Array.of(3), 'n'),
    (e: unknown) => e instanceof DecodeError && e.field === 'n',
  );
});
