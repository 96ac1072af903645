// The canonical binary encoding's primitives. One value has exactly one
// encoding: unsigned integers are minimal LEB128 varints, signed integers are
// zigzag varints, booleans are exactly 0 or 1, strings are valid UTF-8, and
// every length is checked against a named limit. The Reader refuses anything
// else with a DecodeError that names the field (docs/decisions/0001-codec.md).

import { ZommaError } from '../lib/errors.ts';
import { AssertionError, assert } from '../lib/assert.ts';

export class DecodeError extends ZommaError<'DecodeError'> {
  readonly field: string;
  /** What is wrong with the field (the message is `${field}: ${reason}`). */
  readonly reason: string;
  constructor(field: string, reason: string) {
    super('DecodeError', `${field}: ${reason}`);
    this.field = field;
    this.reason = reason;
  }
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const TWO_POW_32 = 0x1_0000_0000;
const MAX_SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Throws an AssertionError. Hot paths test their condition first and build the
 * message only on failure: assert(cond, `…${x}`) would format it on every call.
 */
export function fail(message: string): never {
  throw new AssertionError(message);
}
/** Strings up to this many bytes are decoded by hand when ASCII, through the intern table. */
const SHORT_ASCII_BYTES = 32;
/** Results up to this size are carved from the slab; larger ones get their own buffer. */
const SLAB_ITEM_BYTES_MAX = 1024;
const SLAB_BYTES = 64 * 1024;

let slab = new Uint8Array(SLAB_BYTES);
let slabOffset = 0;

function copyToSlab(source: Uint8Array, length: number): Uint8Array {
  if (length > SLAB_ITEM_BYTES_MAX) return source.slice(0, length);
  if (slabOffset + length > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    slabOffset = 0;
  }
  // Views by constructor, not subarray(): subarray looks up a species constructor and costs more.
  slab.set(new Uint8Array(source.buffer, source.byteOffset, length), slabOffset);
  const out = new Uint8Array(slab.buffer, slabOffset, length);
  // Keep every result 8-byte aligned, so a caller may lay a wider view over it.
  slabOffset = (slabOffset + length + 7) & ~7;
  return out;
}

// Short ASCII strings repeat on the wire (chain id, instrument names): the
// decoder returns the same string from a small table instead of building a new
// one. It changes no result, only how fast one is produced.
const INTERN_SLOTS = 1024;
const internTable: string[] = new Array<string>(INTERN_SLOTS).fill('');

function internAscii(bytes: Uint8Array, start: number, end: number, hash: number): string {
  const slot = hash & (INTERN_SLOTS - 1);
  const cached = internTable[slot]!;
  const length = end - start;
  if (cached.length === length) {
    let i = 0;
    while (i < length && cached.charCodeAt(i) === bytes[start + i]) i++;
    if (i === length) return cached;
  }
  let text = '';
  for (let i = start; i < end; i++) text += String.fromCharCode(bytes[i]!);
  internTable[slot] = text;
  return text;
}

/** Largest value Writer.ivarint takes: 2^52 − 1 (its zigzag form is 2^53 − 2). */
export const IVARINT_MAX = 2 ** 52 - 1;
/** Smallest value Writer.ivarint takes: −2^52 (its zigzag form is 2^53 − 1). */
export const IVARINT_MIN = -(2 ** 52);
const IVARINT_MAX_BIG = BigInt(IVARINT_MAX);
const IVARINT_MIN_BIG = BigInt(IVARINT_MIN);

/**
 * True if a string has no unpaired surrogate, so that its UTF-8 encoding
 * decodes back to the same string (TextEncoder would silently write U+FFFD).
 */
export function isWellFormedText(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c > 0xdbff) return false;
    const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
    if (next < 0xdc00 || next > 0xdfff) return false;
    i++;
  }
  return true;
}

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
    // Only an integer in 0 … 255 survives the mask unchanged (NaN and fractions do not).
    if ((x & 0xff) !== x) fail(`u8 out of range: ${x}`);
    this.reserve(1);
    this.buffer[this.length++] = x;
    return this;
  }

  bool(x: boolean): this {
    this.reserve(1);
    this.buffer[this.length++] = x ? 1 : 0;
    return this;
  }

  /** Big-endian u32, for fixed-width fields such as frame lengths. */
  u32(x: number): this {
    if (!(Number.isInteger(x) && x >= 0 && x < TWO_POW_32)) fail(`u32 out of range: ${x}`);
    this.reserve(4);
    this.view.setUint32(this.length, x);
    this.length += 4;
    return this;
  }

  /** A non-negative safe integer as a minimal LEB128 varint. */
  uvarint(x: number): this {
    // x >>> 0 === x holds exactly for the integers 0 … 2^32 − 1: one test covers the common case.
    if (x >>> 0 !== x && !(Number.isSafeInteger(x) && x >= 0)) fail(`uvarint out of range: ${x}`);
    this.writeUvarint(x);
    return this;
  }

  /** Writes a value already known to be a non-negative safe integer. */
  private writeUvarint(x: number): void {
    this.reserve(8);
    const buffer = this.buffer;
    let n = this.length;
    if (x < 0x80) {
      buffer[n] = x;
      this.length = n + 1;
      return;
    }
    let low: number;
    if (x < TWO_POW_32) {
      low = x >>> 0;
    } else {
      // A safe integer above 32 bits: its first four 7-bit groups come from the
      // low 32 bits, the rest (below 2^25) from the high part with 4 low bits
      // carried over. Integer operations only: no division per byte.
      let lo = x >>> 0;
      const hi = (x - lo) / TWO_POW_32;
      buffer[n++] = (lo & 0x7f) | 0x80;
      lo >>>= 7;
      buffer[n++] = (lo & 0x7f) | 0x80;
      lo >>>= 7;
      buffer[n++] = (lo & 0x7f) | 0x80;
      lo >>>= 7;
      buffer[n++] = (lo & 0x7f) | 0x80;
      low = (lo >>> 7) | (hi << 4);
    }
    while (low >= 0x80) {
      buffer[n++] = (low & 0x7f) | 0x80;
      low >>>= 7;
    }
    buffer[n++] = low;
    this.length = n;
  }

  /**
   * An integer in [IVARINT_MIN, IVARINT_MAX], zigzag then varint (0, -1, 1, -2 … → 0, 1, 2, 3 …).
   * The range is what a safe zigzag value can hold: one bit less than a safe integer.
   */
  ivarint(x: number): this {
    if ((x | 0) === x) {
      // A 32-bit integer: zigzag in integer operations (-0 becomes 0, as x * 2 would).
      this.writeUvarint(((x << 1) ^ (x >> 31)) >>> 0);
      return this;
    }
    if (!(Number.isInteger(x) && x >= IVARINT_MIN && x <= IVARINT_MAX)) {
      fail(`ivarint out of range: ${x}`);
    }
    this.writeUvarint(x >= 0 ? x * 2 : -x * 2 - 1);
    return this;
  }

  /** A non-negative bigint as a minimal LEB128 varint. */
  uvarintBig(x: bigint): this {
    if (x <= MAX_SAFE_BIG) {
      if (!(x >= 0n)) fail(`uvarintBig negative: ${x}`);
      this.writeUvarint(Number(x));
      return this;
    }
    // Above 2^53: 28 bits (four bytes) at a time through a number, then the
    // rest, which is at least 2^25 here and so always takes another byte.
    do {
      let chunk = Number(BigInt.asUintN(28, x));
      this.reserve(4);
      const buffer = this.buffer;
      const n = this.length;
      buffer[n] = (chunk & 0x7f) | 0x80;
      chunk >>>= 7;
      buffer[n + 1] = (chunk & 0x7f) | 0x80;
      chunk >>>= 7;
      buffer[n + 2] = (chunk & 0x7f) | 0x80;
      buffer[n + 3] = (chunk >>> 7) | 0x80;
      this.length = n + 4;
      x >>= 28n;
    } while (x > MAX_SAFE_BIG);
    this.writeUvarint(Number(x));
    return this;
  }

  /** A bigint, zigzag then varint. */
  ivarintBig(x: bigint): this {
    // Values whose zigzag form is a safe integer take the number path: no bigint arithmetic.
    if (x >= IVARINT_MIN_BIG && x <= IVARINT_MAX_BIG) return this.ivarint(Number(x));
    return this.uvarintBig(x >= 0n ? x << 1n : (-x << 1n) - 1n);
  }

  /** Bytes of a length both sides know (hashes, keys, signatures): no prefix. */
  fixed(bytes: Uint8Array, length: number): this {
    if (!(bytes.length === length))
      fail(`fixed field of ${bytes.length} bytes, expected ${length}`);
    return this.raw(bytes);
  }

  /** Length-prefixed bytes. */
  bytes(bytes: Uint8Array, max: number): this {
    if (!(bytes.length <= max)) fail(`bytes field of ${bytes.length} exceeds ${max}`);
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
    // An unpaired surrogate has no UTF-8 form; encoding it as U+FFFD would give
    // two strings one encoding, so it is a bug in the caller's validation.
    assert(isWellFormedText(text), 'string field holds an unpaired surrogate');
    return this.bytes(textEncoder.encode(text), max);
  }

  /** Appends already-encoded bytes. */
  raw(bytes: Uint8Array): this {
    this.reserve(bytes.length);
    this.buffer.set(bytes, this.length);
    this.length += bytes.length;
    return this;
  }

  /** Appends bytes [start, start + length) of `bytes`: raw() without a view to allocate. */
  rawRange(bytes: Uint8Array, start: number, length: number): this {
    if (!(start >= 0 && length >= 0 && start + length <= bytes.length)) {
      fail(`range ${start} + ${length} outside ${bytes.length} bytes`);
    }
    this.reserve(length);
    const buffer = this.buffer;
    const n = this.length;
    for (let i = 0; i < length; i++) buffer[n + i] = bytes[start + i]!;
    this.length = n + length;
    return this;
  }

  /**
   * A copy of what was written. Small results are carved from a shared slab, as
   * Node's Buffer pool does, because V8 allocates a typed array over 64 bytes
   * with its own backing store, which costs more than encoding a whole order.
   * So the result's .buffer may be shared: use finishOwned() for bytes whose
   * ArrayBuffer will be transferred or posted to a worker.
   */
  finish(): Uint8Array {
    return copyToSlab(this.buffer, this.length);
  }

  /** A copy of what was written, in an ArrayBuffer of its own. */
  finishOwned(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }

  /** A view of what was written, valid until the next write or reset. */
  peek(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }

  /**
   * The buffer itself, no view and no copy: bytes [0, length) are what was
   * written, valid until the next write (for hashing in place).
   */
  backing(): Uint8Array {
    return this.buffer;
  }
}

/**
 * Reads encoded values, refusing every non-canonical form with a DecodeError naming the field.
 *
 * Field names are dotted paths. A container may set a prefix with enter()/leave()
 * so that the codecs inside it pass constant relative names (no string building
 * on the hot path); the prefix is joined only when an error is thrown.
 */
export class Reader {
  private readonly bytes: Uint8Array;
  private dataView: DataView | undefined;
  offset = 0;
  /** The path of the value being read, joined in front of every field name in errors. */
  prefix = '';

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  /** Descends into a named part; returns the previous prefix, to pass to leave(). */
  enter(name: string): string {
    const previous = this.prefix;
    this.prefix = previous === '' ? name : `${previous}.${name}`;
    return previous;
  }

  leave(previous: string): void {
    this.prefix = previous;
  }

  /** A DecodeError for a field, named with the current prefix. */
  error(field: string, reason: string): DecodeError {
    return new DecodeError(this.prefix === '' ? field : `${this.prefix}.${field}`, reason);
  }

  private need(field: string, n: number): void {
    if (this.offset + n > this.bytes.length) throw this.error(field, 'unexpected end of input');
  }

  u8(field: string): number {
    this.need(field, 1);
    return this.bytes[this.offset++]!;
  }

  bool(field: string): boolean {
    const b = this.u8(field);
    if (b > 1) throw this.error(field, `boolean must be 0 or 1, got ${b}`);
    return b === 1;
  }

  u32(field: string): number {
    this.need(field, 4);
    this.dataView ??= new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    const x = this.dataView.getUint32(this.offset);
    this.offset += 4;
    return x;
  }

  /** A minimal varint no greater than max (default: the largest safe integer). */
  uvarint(field: string, max: number = Number.MAX_SAFE_INTEGER): number {
    const bytes = this.bytes;
    let offset = this.offset;
    // Exact multiplication by powers of two: a variant with integer shifts for
    // the first 28 bits measured about ten times slower (int and double mixed).
    let result = 0;
    let multiplier = 1;
    for (let i = 0; ; i++) {
      if (offset >= bytes.length) throw this.error(field, 'unexpected end of input');
      const b = bytes[offset++]!;
      result += (b & 0x7f) * multiplier;
      if (b < 0x80) {
        if (b === 0 && i > 0) throw this.error(field, 'non-minimal varint');
        break;
      }
      multiplier *= 128;
      if (i >= 7) throw this.error(field, 'varint too long');
    }
    if (result > max) throw this.error(field, `${result} exceeds the maximum ${max}`);
    this.offset = offset;
    return result;
  }

  /** A zigzag varint whose absolute value is at most absMax. */
  ivarint(field: string, absMax: number = Number.MAX_SAFE_INTEGER): number {
    const z = this.uvarint(field);
    // Below 2^32 the zigzag undoes in integer operations; 0 stays +0 either way.
    const x = z < TWO_POW_32 ? (z >>> 1) ^ -(z & 1) : z % 2 === 0 ? z / 2 : -(z + 1) / 2;
    if (x > absMax || -x > absMax) throw this.error(field, `${x} is out of range ±${absMax}`);
    return x;
  }

  /**
   * The end of a minimal varint of at most seven bytes (49 bits) starting at the
   * offset, or −1 if it is longer or not minimal or not complete: the bigint
   * readers then take their general path, which names the error.
   */
  private shortVarintEnd(): number {
    const bytes = this.bytes;
    const start = this.offset;
    const limit = Math.min(bytes.length, start + 7);
    for (let i = start; i < limit; i++) {
      const b = bytes[i]!;
      if (b < 0x80) return b === 0 && i > start ? -1 : i + 1;
    }
    return -1;
  }

  /** The value of the varint from the offset to end, at most seven bytes: exact as a double. */
  private shortVarintValue(end: number): number {
    const bytes = this.bytes;
    let x = 0;
    let multiplier = 1;
    for (let i = this.offset; i < end; i++) {
      x += (bytes[i]! & 0x7f) * multiplier;
      multiplier *= 128;
    }
    return x;
  }

  /** A minimal varint as a bigint below 2^maxBits. */
  uvarintBig(field: string, maxBits: number): bigint {
    // A short value within the bound is accepted here; anything else takes the
    // general path below, which refuses it with the same reason as ever.
    const shortEnd = maxBits > 0 ? this.shortVarintEnd() : -1;
    if (shortEnd >= 0) {
      const x = this.shortVarintValue(shortEnd);
      if (maxBits >= 49 || x < 2 ** maxBits) {
        this.offset = shortEnd;
        return BigInt(x);
      }
    }
    const bytes = this.bytes;
    const start = this.offset;
    const maxBytes = Math.ceil(maxBits / 7);
    let end = start;
    for (;;) {
      if (end >= bytes.length) throw this.error(field, 'unexpected end of input');
      if (end - start >= maxBytes) throw this.error(field, 'varint too long');
      if ((bytes[end++]! & 0x80) === 0) break;
    }
    if (bytes[end - 1] === 0 && end - start > 1) throw this.error(field, 'non-minimal varint');
    let result = 0n;
    for (let i = end - 1; i >= start; i--) result = (result << 7n) | BigInt(bytes[i]! & 0x7f);
    if (result >> BigInt(maxBits) !== 0n) throw this.error(field, `exceeds ${maxBits} bits`);
    this.offset = end;
    return result;
  }

  /** A zigzag varint bigint whose absolute value is below 2^maxBits. */
  ivarintBig(field: string, maxBits: number): bigint {
    // Up to seven bytes the zigzag value is below 2^49, so |x| ≤ 2^48: within
    // any bound of 49 bits or more, and undone exactly on a double.
    if (maxBits >= 49) {
      const shortEnd = this.shortVarintEnd();
      if (shortEnd >= 0) {
        const z = this.shortVarintValue(shortEnd);
        this.offset = shortEnd;
        return BigInt(z % 2 === 0 ? z / 2 : -(z + 1) / 2);
      }
    }
    const z = this.uvarintBig(field, maxBits + 1);
    const x = (z & 1n) === 0n ? z >> 1n : -((z + 1n) >> 1n);
    const abs = x < 0n ? -x : x;
    if (abs >> BigInt(maxBits) !== 0n) throw this.error(field, `exceeds ±2^${maxBits}`);
    return x;
  }

  /** Exactly `length` bytes, as a view into the input (copy it to keep it). */
  fixed(field: string, length: number): Uint8Array {
    this.need(field, length);
    const out = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  /** Exactly `length` bytes, copied: safe to keep after the input buffer is reused. */
  fixedCopy(field: string, length: number): Uint8Array {
    this.need(field, length);
    const out = this.bytes.slice(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  /** Length-prefixed bytes of at most max, as a view into the input. */
  bytesField(field: string, max: number): Uint8Array {
    const length = this.uvarint(field, Number.MAX_SAFE_INTEGER);
    if (length > max) throw this.error(field, `length ${length} exceeds the limit ${max}`);
    return this.fixed(field, length);
  }

  /** Length-prefixed UTF-8 of at most max bytes. */
  string(field: string, max: number): string {
    const length = this.uvarint(field);
    if (length > max) throw this.error(field, `length ${length} exceeds the limit ${max}`);
    this.need(field, length);
    const bytes = this.bytes;
    const start = this.offset;
    const end = start + length;
    let text: string;
    if (length <= SHORT_ASCII_BYTES) {
      let hash = length;
      let i = start;
      for (; i < end; i++) {
        const b = bytes[i]!;
        if (b > 0x7f) break;
        hash = Math.imul(hash ^ b, 0x01000193);
      }
      text =
        i === end
          ? internAscii(bytes, start, end, hash ^ (hash >>> 15))
          : this.utf8(field, start, end);
    } else {
      text = this.utf8(field, start, end);
    }
    this.offset = end;
    return text;
  }

  private utf8(field: string, start: number, end: number): string {
    // fatal: true refuses overlong forms, surrogates and truncated sequences, so
    // every accepted string has exactly one encoding.
    try {
      return textDecoder.decode(this.bytes.subarray(start, end));
    } catch {
      throw this.error(field, 'invalid UTF-8');
    }
  }

  /** A tag byte that must be one of 0 … count-1. */
  tag(field: string, count: number): number {
    const t = this.u8(field);
    if (t >= count) throw this.error(field, `unknown tag ${t}`);
    return t;
  }

  /** Refuses trailing bytes. */
  done(field = 'message'): void {
    if (this.offset !== this.bytes.length) {
      throw this.error(field, `${this.bytes.length - this.offset} trailing bytes`);
    }
  }
}

/** Something that can be written and read canonically. */
export interface Codec<T> {
  write(w: Writer, value: T): void;
  read(r: Reader, field: string): T;
}

const sharedWriter = new Writer(4096);
let sharedWriterBusy = false;

/** Encodes a whole value (a fresh copy of the bytes). */
export function encode<T>(codec: Codec<T>, value: T): Uint8Array {
  // A codec may itself call encode() (to hash a part, say): only the outermost call
  // may use the shared buffer, or the inner call would reset the outer one's bytes.
  if (sharedWriterBusy) {
    const w = new Writer();
    codec.write(w, value);
    return w.finish();
  }
  sharedWriterBusy = true;
  try {
    codec.write(sharedWriter.reset(), value);
    return sharedWriter.finish();
  } finally {
    sharedWriterBusy = false;
  }
}

/** Decodes a whole value and refuses trailing bytes. */
export function decode<T>(codec: Codec<T>, bytes: Uint8Array, field = 'message'): T {
  const r = new Reader(bytes);
  const value = codec.read(r, field);
  r.done(field);
  return value;
}
