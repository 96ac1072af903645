// The canonical binary encoding's primitives. One value has exactly one
// encoding: unsigned integers are minimal LEB128 varints, signed integers are
// zigzag varints, booleans are exactly 0 or 1, strings are valid UTF-8, and
// every length is checked against a named limit. The Reader refuses anything
// else with a DecodeError that names the field (docs/decisions/0001-codec.md).

import { ZommaError } from '../lib/errors.ts';
import { assert } from '../lib/assert.ts';

export class DecodeError extends ZommaError<'DecodeError'> {
  readonly field: string;
  constructor(field: string, reason: string) {
    super('DecodeError', `${field}: ${reason}`);
    this.field = field;
  }
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const TWO_POW_32 = 0x1_0000_0000;

/** Appends encoded values to a growable buffer. Reuse one Writer with reset() on hot paths. */
export class Writer {
  private buffer: Uint8Array;
  private view: DataView;
  length = 0;

  constructor(capacity = 256) {
    this.buffer = new Uint8Array(capacity);
    this.view = new DataView(this.buffer.buffer);
  }

  reset(): this {
    this.length = 0;
    return this;
  }

  private reserve(extra: number): void {
    const needed = this.length + extra;
    if (needed <= this.buffer.length) return;
    let capacity = this.buffer.length * 2;
    while (capacity < needed) capacity *= 2;
    const next = new Uint8Array(capacity);
    next.set(this.buffer.subarray(0, this.length));
    this.buffer = next;
    this.view = new DataView(next.buffer);
  }

  u8(x: number): this {
    assert(Number.isInteger(x) && x >= 0 && x <= 0xff, `u8 out of range: ${x}`);
    this.reserve(1);
    this.buffer[this.length++] = x;
    return this;
  }

  bool(x: boolean): this {
    return this.u8(x ? 1 : 0);
  }

  /** Big-endian u32, for fixed-width fields such as frame lengths. */
  u32(x: number): this {
    assert(Number.isInteger(x) && x >= 0 && x < TWO_POW_32, `u32 out of range: ${x}`);
    this.reserve(4);
    this.view.setUint32(this.length, x);
    this.length += 4;
    return this;
  }

  /** A non-negative safe integer as a minimal LEB128 varint. */
  uvarint(x: number): this {
    assert(Number.isSafeInteger(x) && x >= 0, `uvarint out of range: ${x}`);
    this.reserve(8);
    const buffer = this.buffer;
    let n = this.length;
    while (x >= 0x80000000) {
      buffer[n++] = (x % 128) | 0x80;
      x = Math.floor(x / 128);
    }
    while (x >= 0x80) {
      buffer[n++] = (x & 0x7f) | 0x80;
      x >>>= 7;
    }
    buffer[n++] = x;
    this.length = n;
    return this;
  }

  /** A safe integer, zigzag then varint (0, -1, 1, -2 … → 0, 1, 2, 3 …). */
  ivarint(x: number): this {
    assert(Number.isSafeInteger(x), `ivarint out of range: ${x}`);
    return this.uvarint(x >= 0 ? x * 2 : -x * 2 - 1);
  }

  /** A non-negative bigint as a minimal LEB128 varint. */
  uvarintBig(x: bigint): this {
    assert(x >= 0n, `uvarintBig negative: ${x}`);
    if (x <= BigInt(Number.MAX_SAFE_INTEGER)) return this.uvarint(Number(x));
    while (x >= 0x80n) {
      this.u8(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    return this.u8(Number(x));
  }

  /** A bigint, zigzag then varint. */
  ivarintBig(x: bigint): this {
    return this.uvarintBig(x >= 0n ? x << 1n : (-x << 1n) - 1n);
  }

  /** Bytes of a length both sides know (hashes, keys, signatures): no prefix. */
  fixed(bytes: Uint8Array, length: number): this {
    assert(bytes.length === length, `fixed field of ${bytes.length} bytes, expected ${length}`);
    return this.raw(bytes);
  }

  /** Length-prefixed bytes. */
  bytes(bytes: Uint8Array, max: number): this {
    assert(bytes.length <= max, `bytes field of ${bytes.length} exceeds ${max}`);
    this.uvarint(bytes.length);
    return this.raw(bytes);
  }

  /** Length-prefixed UTF-8. */
  string(text: string, max: number): this {
    // ASCII fast path: most strings on the wire (instrument names, ids) are ASCII.
    const n = text.length;
    let ascii = n <= max;
    for (let i = 0; ascii && i < n; i++) if (text.charCodeAt(i) > 0x7f) ascii = false;
    if (ascii) {
      this.uvarint(n);
      this.reserve(n);
      for (let i = 0; i < n; i++) this.buffer[this.length + i] = text.charCodeAt(i);
      this.length += n;
      return this;
    }
    return this.bytes(textEncoder.encode(text), max);
  }

  /** Appends already-encoded bytes. */
  raw(bytes: Uint8Array): this {
    this.reserve(bytes.length);
    this.buffer.set(bytes, this.length);
    this.length += bytes.length;
    return this;
  }

  /** A copy of what was written. */
  finish(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }

  /** A view of what was written, valid until the next write or reset. */
  peek(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }
}

/** Reads encoded values, refusing every non-canonical form with a DecodeError naming the field. */
export class Reader {
  private readonly bytes: Uint8Array;
  private readonly dataView: DataView;
  offset = 0;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.dataView = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  private need(field: string, n: number): void {
    if (this.offset + n > this.bytes.length)
      throw new DecodeError(field, 'unexpected end of input');
  }

  u8(field: string): number {
    this.need(field, 1);
    return this.bytes[this.offset++]!;
  }

  bool(field: string): boolean {
    const b = this.u8(field);
    if (b > 1) throw new DecodeError(field, `boolean must be 0 or 1, got ${b}`);
    return b === 1;
  }

  u32(field: string): number {
    this.need(field, 4);
    const x = this.dataView.getUint32(this.offset);
    this.offset += 4;
    return x;
  }

  /** A minimal varint no greater than max (default: the largest safe integer). */
  uvarint(field: string, max: number = Number.MAX_SAFE_INTEGER): number {
    const bytes = this.bytes;
    let offset = this.offset;
    let result = 0;
    let multiplier = 1;
    for (let i = 0; ; i++) {
      if (offset >= bytes.length) throw new DecodeError(field, 'unexpected end of input');
      const b = bytes[offset++]!;
      result += (b & 0x7f) * multiplier;
      if ((b & 0x80) === 0) {
        if (b === 0 && i > 0) throw new DecodeError(field, 'non-minimal varint');
        break;
      }
      multiplier *= 128;
      if (i >= 7) throw new DecodeError(field, 'varint too long');
    }
    if (result > max) throw new DecodeError(field, `${result} exceeds the maximum ${max}`);
    this.offset = offset;
    return result;
  }

  /** A zigzag varint whose absolute value is at most absMax. */
  ivarint(field: string, absMax: number = Number.MAX_SAFE_INTEGER): number {
    const z = this.uvarint(field);
    const x = z % 2 === 0 ? z / 2 : -(z + 1) / 2;
    if (Math.abs(x) > absMax) throw new DecodeError(field, `${x} is out of range ±${absMax}`);
    return x;
  }

  /** A minimal varint as a bigint below 2^maxBits. */
  uvarintBig(field: string, maxBits: number): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; ; i++) {
      const b = this.u8(field);
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) {
        if (b === 0 && i > 0) throw new DecodeError(field, 'non-minimal varint');
        break;
      }
      shift += 7n;
      if (shift > BigInt(maxBits) + 7n) throw new DecodeError(field, 'varint too long');
    }
    if (result >> BigInt(maxBits) !== 0n) {
      throw new DecodeError(field, `exceeds ${maxBits} bits`);
    }
    return result;
  }

  /** A zigzag varint bigint whose absolute value is below 2^maxBits. */
  ivarintBig(field: string, maxBits: number): bigint {
    const z = this.uvarintBig(field, maxBits + 1);
    const x = (z & 1n) === 0n ? z >> 1n : -((z + 1n) >> 1n);
    const abs = x < 0n ? -x : x;
    if (abs >> BigInt(maxBits) !== 0n) throw new DecodeError(field, `exceeds ±2^${maxBits}`);
    return x;
  }

  /** Exactly `length` bytes, as a view into the input (copy it to keep it). */
  fixed(field: string, length: number): Uint8Array {
    this.need(field, length);
    const out = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  /** Length-prefixed bytes of at most max, as a view into the input. */
  bytesField(field: string, max: number): Uint8Array {
    const length = this.uvarint(field, Number.MAX_SAFE_INTEGER);
    if (length > max) throw new DecodeError(field, `length ${length} exceeds the limit ${max}`);
    return this.fixed(field, length);
  }

  /** Length-prefixed UTF-8 of at most max bytes. */
  string(field: string, max: number): string {
    const length = this.uvarint(field, Number.MAX_SAFE_INTEGER);
    if (length > max) throw new DecodeError(field, `length ${length} exceeds the limit ${max}`);
    this.need(field, length);
    const bytes = this.bytes;
    const start = this.offset;
    let ascii = true;
    for (let i = start; i < start + length; i++) {
      if (bytes[i]! > 0x7f) {
        ascii = false;
        break;
      }
    }
    let text: string;
    if (ascii) {
      text =
        length < 64
          ? String.fromCharCode.apply(null, Array.from(bytes.subarray(start, start + length)))
          : textDecoder.decode(bytes.subarray(start, start + length));
    } else {
      try {
        text = textDecoder.decode(bytes.subarray(start, start + length));
      } catch {
        throw new DecodeError(field, 'invalid UTF-8');
      }
    }
    this.offset += length;
    return text;
  }

  /** A tag byte that must be one of 0 … count-1. */
  tag(field: string, count: number): number {
    const t = this.u8(field);
    if (t >= count) throw new DecodeError(field, `unknown tag ${t}`);
    return t;
  }

  /** Refuses trailing bytes. */
  done(field = 'message'): void {
    if (this.offset !== this.bytes.length) {
      throw new DecodeError(field, `${this.bytes.length - this.offset} trailing bytes`);
    }
  }
}

/** Something that can be written and read canonically. */
export interface Codec<T> {
  write(w: Writer, value: T): void;
  read(r: Reader, field: string): T;
}

const sharedWriter = new Writer(4096);

/** Encodes a whole value (a fresh copy of the bytes). */
export function encode<T>(codec: Codec<T>, value: T): Uint8Array {
  codec.write(sharedWriter.reset(), value);
  return sharedWriter.finish();
}

/** Decodes a whole value and refuses trailing bytes. */
export function decode<T>(codec: Codec<T>, bytes: Uint8Array, field = 'message'): T {
  const r = new Reader(bytes);
  const value = codec.read(r, field);
  r.done(field);
  return value;
}
