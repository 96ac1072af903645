// Small codec combinators, for types that are not on a hot path: describe a
// type once and get its canonical encoding and a decoder that names every
// field it refuses (`block.txs[3]`, `vote.round`). Hot types (the signed
// transaction) are written by hand on Writer/Reader for speed; both produce the
// same kind of bytes and the same kind of errors.
//
// Field paths: a struct reads its field `name` under `<path>.name`, an array
// its element i under `<path>[i]`, a union its variant under `<path>.<variant>`.

import { assert } from '../lib/assert.ts';
import { fail } from './wire.ts';
import type { Codec, Reader } from './wire.ts';

/** The value type a codec reads and writes. */
export type Infer<C> = C extends Codec<infer T> ? T : never;

function join(path: string, name: string): string {
  return path === '' ? name : `${path}.${name}`;
}

export const u8: Codec<number> = {
  write: (w, x) => void w.u8(x),
  read: (r, field) => r.u8(field),
};

export const bool: Codec<boolean> = {
  write: (w, x) => void w.bool(x),
  read: (r, field) => r.bool(field),
};

/** A non-negative safe integer no greater than max, as a minimal varint. */
export function uint(max: number = Number.MAX_SAFE_INTEGER): Codec<number> {
  return {
    write: (w, x) => {
      if (!(x <= max)) fail(`uint ${x} exceeds ${max}`);
      w.uvarint(x);
    },
    read: (r, field) => r.uvarint(field, max),
  };
}

/** A safe integer with |x| ≤ absMax (at most 2^52 − 1), zigzag then varint. */
export function int(absMax: number): Codec<number> {
  return {
    write: (w, x) => {
      if (!(Math.abs(x) <= absMax)) fail(`int ${x} out of range ±${absMax}`);
      w.ivarint(x);
    },
    read: (r, field) => r.ivarint(field, absMax),
  };
}

/** A non-negative bigint below 2^bits, as a minimal varint. */
export function ubig(bits: number): Codec<bigint> {
  const limit = 1n << BigInt(bits);
  return {
    write: (w, x) => {
      if (!(x >= 0n && x < limit)) fail(`ubig ${x} exceeds ${bits} bits`);
      w.uvarintBig(x);
    },
    read: (r, field) => r.uvarintBig(field, bits),
  };
}

/** A bigint with |x| < 2^bits, zigzag then varint. */
export function ibig(bits: number): Codec<bigint> {
  const limit = 1n << BigInt(bits);
  return {
    write: (w, x) => {
      if (!(x < limit && -x < limit)) fail(`ibig ${x} exceeds ±2^${bits}`);
      w.ivarintBig(x);
    },
    read: (r, field) => r.ivarintBig(field, bits),
  };
}

/** 0 … 2^64 − 1. */
export const u64: Codec<bigint> = ubig(64);
/** −(2^63 − 1) … 2^63 − 1 (−2^63 is left out so that negation never overflows). */
export const i64: Codec<bigint> = ibig(63);

/** Exactly n bytes with no length prefix (hashes, keys, signatures); decoded as a copy. */
export function fixedBytes(n: number): Codec<Uint8Array> {
  return {
    write: (w, x) => void w.fixed(x, n),
    read: (r, field) => r.fixedCopy(field, n),
  };
}

/** Length-prefixed bytes of at most max; decoded as a copy. */
export function bytes(max: number): Codec<Uint8Array> {
  return {
    write: (w, x) => void w.bytes(x, max),
    read: (r, field) => r.bytesField(field, max).slice(),
  };
}

/** Length-prefixed UTF-8 of at most max bytes. */
export function string(max: number): Codec<string> {
  return {
    write: (w, x) => void w.string(x, max),
    read: (r, field) => r.string(field, max),
  };
}

/** A length-prefixed array of at most max elements. */
export function array<T>(element: Codec<T>, max: number): Codec<T[]> {
  return {
    write: (w, xs) => {
      if (!(xs.length <= max)) fail(`array of ${xs.length} exceeds ${max}`);
      w.uvarint(xs.length);
      for (const x of xs) element.write(w, x);
    },
    read: (r, field) => {
      const n = r.uvarint(field, max);
      const out: T[] = [];
      for (let i = 0; i < n; i++) out.push(element.read(r, `${field}[${i}]`));
      return out;
    },
  };
}

/** A presence byte (0 absent, 1 present) then the value. */
export function optional<T>(inner: Codec<T>): Codec<T | undefined> {
  return {
    write: (w, x) => {
      w.bool(x !== undefined);
      if (x !== undefined) inner.write(w, x);
    },
    read: (r, field) => (r.bool(field) ? inner.read(r, field) : undefined),
  };
}

/** One of a fixed list of strings, as its index in one byte. */
export function literals<const T extends string>(values: readonly T[]): Codec<T> {
  assert(values.length > 0 && values.length <= 256, 'literals: 1 to 256 values');
  const index = new Map<string, number>(values.map((v, i) => [v, i]));
  return {
    write: (w, x) => {
      const i = index.get(x);
      if (!(i !== undefined)) fail(`not one of ${values.join('|')}: ${x}`);
      w.u8(i);
    },
    read: (r, field) => values[r.tag(field, values.length)]!,
  };
}

type Fields<T> = { [K in keyof T]-?: Codec<T[K]> };

/**
 * The fields of an object, in the order the schema lists them. A field whose
 * value is undefined (an absent optional) is left off the decoded object, so
 * decode(encode(x)) deep-equals x for objects with optional properties.
 */
export function struct<T extends object>(fields: Fields<T>): Codec<T> {
  const entries = Object.entries(fields) as [keyof T & string, Codec<unknown>][];
  return {
    write: (w, x) => {
      for (const [name, codec] of entries) codec.write(w, x[name]);
    },
    read: (r, field) => {
      const out: Record<string, unknown> = {};
      for (const [name, codec] of entries) {
        const v = codec.read(r, join(field, name));
        if (v !== undefined) out[name] = v;
      }
      return out as T;
    },
  };
}

/**
 * A tagged union: one byte naming the variant (its index in `variants`), then
 * the variant's fields. The decoded object carries the discriminant first.
 */
export function union<const D extends string, T extends { [K in D]: string }>(
  discriminant: D,
  variants: { [V in T[D]]: Codec<Omit<Extract<T, { [K in D]: V }>, D>> },
): Codec<T> {
  const names = Object.keys(variants) as T[D][];
  assert(names.length > 0 && names.length <= 256, 'union: 1 to 256 variants');
  const index = new Map<string, number>(names.map((n, i) => [n, i]));
  const codecs = names.map((n) => variants[n] as Codec<object>);
  return {
    write: (w, x) => {
      const i = index.get(x[discriminant]);
      if (!(i !== undefined)) fail(`unknown ${discriminant}: ${x[discriminant]}`);
      w.u8(i);
      codecs[i]!.write(w, x);
    },
    read: (r, field) => {
      const i = r.tag(join(field, discriminant), names.length);
      const name = names[i]!;
      const body = codecs[i]!.read(r, join(field, name));
      return { [discriminant]: name, ...body } as unknown as T;
    },
  };
}

/** A codec for a type with its own invariants: decoded values that fail `check` are refused. */
export function refine<T>(inner: Codec<T>, check: (x: T) => string | undefined): Codec<T> {
  return {
    write: (w, x) => {
      const problem = check(x);
      if (!(problem === undefined)) fail(`refine: ${problem}`);
      inner.write(w, x);
    },
    read: (r: Reader, field) => {
      const x = inner.read(r, field);
      const problem = check(x);
      if (problem !== undefined) throw r.error(field, problem);
      return x;
    },
  };
}
