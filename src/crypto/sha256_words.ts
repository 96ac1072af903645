// SHA-256 (FIPS 180-4) in plain integer code, for many short messages: the
// state digest hashes a few thousand leaves of 40 to 300 bytes per block, and
// node:crypto's one-shot hash costs about as much per call as compressing
// three blocks here, plus a Buffer (an off-heap backing store) per result to
// allocate and collect. This writes the 32-byte hash as eight big-endian words
// into a caller's table and allocates nothing. Checked against node:crypto in
// test/crypto/sha256_words.test.ts.

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

const IV = new Int32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

/** The message schedule and the chaining state, reused by every call. */
const W = new Int32Array(64);
const H = new Int32Array(8);
/** The last one or two blocks, with the padding and the bit length. */
const tail = new Uint8Array(128);

function compress(bytes: Uint8Array, offset: number): void {
  const w = W;
  for (let i = 0, j = offset; i < 16; i++, j += 4) {
    w[i] = (bytes[j]! << 24) | (bytes[j + 1]! << 16) | (bytes[j + 2]! << 8) | bytes[j + 3]!;
  }
  for (let i = 16; i < 64; i++) {
    const x = w[i - 15]!;
    const y = w[i - 2]!;
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0;
  }
  const h = H;
  let a = h[0]!;
  let b = h[1]!;
  let c = h[2]!;
  let d = h[3]!;
  let e = h[4]!;
  let f = h[5]!;
  let g = h[6]!;
  let k = h[7]!;
  for (let i = 0; i < 64; i++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (k + s1 + ((e & f) ^ (~e & g)) + K[i]! + w[i]!) | 0;
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    k = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  h[0] = (h[0]! + a) | 0;
  h[1] = (h[1]! + b) | 0;
  h[2] = (h[2]! + c) | 0;
  h[3] = (h[3]! + d) | 0;
  h[4] = (h[4]! + e) | 0;
  h[5] = (h[5]! + f) | 0;
  h[6] = (h[6]! + g) | 0;
  h[7] = (h[7]! + k) | 0;
}

/**
 * SHA-256 of bytes[0, length) written to out[at … at + 8) as big-endian
 * 32-bit words (word 0 is the hash's first four bytes). Messages below 2^29
 * bytes (the bit length is written as a 32-bit number: ours are a few hundred).
 */
export function sha256Words(bytes: Uint8Array, length: number, out: Uint32Array, at: number): void {
  if (!(length >= 0 && length <= bytes.length && length < 0x2000_0000)) {
    throw new RangeError(`sha256Words: length ${length} of ${bytes.length}`);
  }
  H.set(IV);
  let offset = 0;
  for (; offset + 64 <= length; offset += 64) compress(bytes, offset);
  const rest = length - offset;
  const t = tail;
  for (let i = 0; i < rest; i++) t[i] = bytes[offset + i]!;
  t[rest] = 0x80;
  const end = rest < 56 ? 64 : 128;
  t.fill(0, rest + 1, end - 4);
  const bits = length * 8;
  t[end - 4] = bits >>> 24;
  t[end - 3] = (bits >>> 16) & 0xff;
  t[end - 2] = (bits >>> 8) & 0xff;
  t[end - 1] = bits & 0xff;
  compress(t, 0);
  if (end === 128) compress(t, 64);
  for (let i = 0; i < 8; i++) out[at + i] = H[i]!;
}
