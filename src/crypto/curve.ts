// Edwards25519 arithmetic in bigint, for one job: deciding whether a public key
// may be registered (checkPublicKey). Signatures are made by node:crypto and
// checked by libsodium (ed25519.ts); this module never verifies one.
//
// Why the check exists: Ed25519 libraries disagree on keys that are encoded
// non-canonically (y >= p, or x = 0 with its sign bit set) and on keys of small
// order (the eight points P with [8]P = identity). Against a small-order key a
// single signature can be valid for every message, and whether a library
// accepts it depends on cofactored or cofactorless verification. Refusing such
// keys at registration means every validator, whatever it links, agrees on
// every signature it will ever be asked to check (docs/crypto.md).

import { PUBLIC_KEY_BYTES } from './constants.ts';
import { CryptoError } from './errors.ts';

/** The field prime 2^255 − 19. */
export const P = (1n << 255n) - 19n;
/** The order of the prime subgroup (RFC 8032 section 5.1). */
export const L = (1n << 252n) + 27742317777372353535851937790883648493n;

export function mod(a: bigint): bigint {
  const r = a % P;
  return r >= 0n ? r : r + P;
}

export function modPow(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  let b = mod(base);
  let e = exponent;
  while (e > 0n) {
    if ((e & 1n) === 1n) result = (result * b) % P;
    b = (b * b) % P;
    e >>= 1n;
  }
  return result;
}

const MASK_255 = (1n << 255n) - 1n;

/** x mod p for 0 <= x < 2^512, by 2^255 ≡ 19 (mod p): shifts instead of a division. */
function reduce(x: bigint): bigint {
  x = (x & MASK_255) + 19n * (x >> 255n);
  x = (x & MASK_255) + 19n * (x >> 255n);
  return x >= P ? x - P : x;
}

/** x^(2^k) mod p, for 0 <= x < p. */
function pow2k(x: bigint, k: number): bigint {
  for (let i = 0; i < k; i++) x = reduce(x * x);
  return x;
}

/**
 * x^((p−5)/8) = x^(2^252 − 3) mod p, for 0 <= x < p, by the addition chain of
 * ref10's pow22523 (250 squarings, 11 multiplications): the one exponentiation
 * a point decompression needs, about twice as fast as square-and-multiply.
 */
export function powP58(x: bigint): bigint {
  const b2 = reduce(reduce(x * x) * x); // x^3
  const b4 = reduce(pow2k(b2, 2) * b2); // x^(2^4 − 1)
  const b5 = reduce(pow2k(b4, 1) * x); // x^(2^5 − 1)
  const b10 = reduce(pow2k(b5, 5) * b5);
  const b20 = reduce(pow2k(b10, 10) * b10);
  const b40 = reduce(pow2k(b20, 20) * b20);
  const b80 = reduce(pow2k(b40, 40) * b40);
  const b160 = reduce(pow2k(b80, 80) * b80);
  const b240 = reduce(pow2k(b160, 80) * b80);
  const b250 = reduce(pow2k(b240, 10) * b10); // x^(2^250 − 1)
  return reduce(pow2k(b250, 2) * x); // x^(2^252 − 3)
}

function invert(a: bigint): bigint {
  return modPow(a, P - 2n);
}

/** The curve constant d = −121665/121666. */
export const D = mod(-121665n * invert(121666n));
const D2 = mod(2n * D);
/** A square root of −1: 2^((p−1)/4). */
const SQRT_M1 = modPow(2n, (P - 1n) / 4n);

/** A point in extended coordinates (x = X/Z, y = Y/Z, xy = T/Z). */
export interface Point {
  readonly X: bigint;
  readonly Y: bigint;
  readonly Z: bigint;
  readonly T: bigint;
}

export const IDENTITY: Point = { X: 0n, Y: 1n, Z: 1n, T: 0n };

/** Addition on −x² + y² = 1 + d·x²·y² (RFC 8032 section 5.1.4). */
export function pointAdd(p: Point, q: Point): Point {
  const A = mod((p.Y - p.X) * (q.Y - q.X));
  const B = mod((p.Y + p.X) * (q.Y + q.X));
  const C = mod(p.T * D2 * q.T);
  const Dz = mod(p.Z * 2n * q.Z);
  const E = B - A;
  const F = Dz - C;
  const G = Dz + C;
  const H = B + A;
  return { X: mod(E * F), Y: mod(G * H), Z: mod(F * G), T: mod(E * H) };
}

/** Doubling (RFC 8032 section 5.1.4). */
export function pointDouble(p: Point): Point {
  const A = mod(p.X * p.X);
  const B = mod(p.Y * p.Y);
  const C = mod(2n * p.Z * p.Z);
  const H = A + B;
  const E = H - mod((p.X + p.Y) * (p.X + p.Y));
  const G = A - B;
  const F = C + G;
  return { X: mod(E * F), Y: mod(G * H), Z: mod(F * G), T: mod(E * H) };
}

/** [k]P by double-and-add; for tests and key checks, not constant time (no secrets pass here). */
export function scalarMult(k: bigint, p: Point): Point {
  let result = IDENTITY;
  let addend = p;
  for (let e = k; e > 0n; e >>= 1n) {
    if ((e & 1n) === 1n) result = pointAdd(result, addend);
    addend = pointDouble(addend);
  }
  return result;
}

export function isIdentity(p: Point): boolean {
  return mod(p.X) === 0n && mod(p.Y - p.Z) === 0n;
}

export function pointEquals(p: Point, q: Point): boolean {
  return mod(p.X * q.Z - q.X * p.Z) === 0n && mod(p.Y * q.Z - q.Y * p.Z) === 0n;
}

/** The canonical 32-byte encoding: y little-endian, the sign of x in the top bit. */
export function encodePoint(p: Point): Uint8Array {
  const zInv = invert(p.Z);
  const x = mod(p.X * zInv);
  let y = mod(p.Y * zInv);
  const out = new Uint8Array(PUBLIC_KEY_BYTES);
  for (let i = 0; i < PUBLIC_KEY_BYTES; i++) {
    out[i] = Number(y & 0xffn);
    y >>= 8n;
  }
  if ((x & 1n) === 1n) out[31]! |= 0x80;
  return out;
}

function bad(reason: string): never {
  throw new CryptoError('BadPublicKey', `public key ${reason}`);
}

/**
 * Decodes a point as RFC 8032 section 5.1.3 does, but strictly: an encoding
 * that is not the canonical one of its point is refused, not reduced.
 * Throws CryptoError 'BadPublicKey' naming the reason.
 */
export function decodePoint(bytes: Uint8Array): Point {
  if (bytes.length !== PUBLIC_KEY_BYTES)
    bad(`must be ${PUBLIC_KEY_BYTES} bytes, got ${bytes.length}`);
  let y = 0n;
  for (let i = PUBLIC_KEY_BYTES - 1; i >= 0; i--) y = (y << 8n) | BigInt(bytes[i]!);
  const sign = y >> 255n;
  y &= (1n << 255n) - 1n;
  if (y >= P) bad('is not canonically encoded (y >= p)');
  const y2 = (y * y) % P;
  const u = mod(y2 - 1n);
  const v = mod(D * y2 + 1n);
  // x = u·v³·(u·v⁷)^((p−5)/8), the candidate square root of u/v (RFC 8032 5.1.3 step 2).
  const v3 = (v * v * v) % P;
  const v7 = (v3 * v3 * v) % P;
  let x = (((u * v3) % P) * powP58((u * v7) % P)) % P;
  const vx2 = (v * x * x) % P;
  if (vx2 === u) {
    // x is a root.
  } else if (vx2 === mod(-u)) {
    x = (x * SQRT_M1) % P;
  } else {
    bad('is not a point on the curve');
  }
  if (x === 0n && sign === 1n) bad('is not canonically encoded (x = 0 with the sign bit set)');
  if ((x & 1n) !== sign) x = P - x;
  return { X: x, Y: y, Z: 1n, T: (x * y) % P };
}

/** True if [8]P is the identity: P lies in the 8-torsion subgroup. */
export function isSmallOrder(p: Point): boolean {
  return isIdentity(pointDouble(pointDouble(pointDouble(p))));
}

/**
 * Throws CryptoError 'BadPublicKey' unless the key is a canonical encoding of a
 * curve point of more than small order. Costs about one modular exponentiation.
 */
export function checkPublicKeyUncached(publicKey: Uint8Array): void {
  const point = decodePoint(publicKey);
  if (isSmallOrder(point)) bad('has small order (it is one of the eight torsion points)');
}
