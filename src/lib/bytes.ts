// Small byte helpers shared by every layer.

import { ZommaError } from './errors.ts';

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const HEX_HIGH = Uint8Array.from(HEX, (pair) => pair.charCodeAt(0));
const HEX_LOW = Uint8Array.from(HEX, (pair) => pair.charCodeAt(1));
/** Hex digits are ASCII, which Latin-1 decodes to one flat string in one native call. */
const hexDecoder = new TextDecoder('latin1');
/** Up to this many bytes go through the scratch; longer inputs (rare: keys and hashes are 32) concatenate. */
const HEX_SCRATCH_BYTES = 1024;
const hexScratch = new Uint8Array(2 * HEX_SCRATCH_BYTES);

export function toHex(bytes: Uint8Array): string {
  const n = bytes.length;
  // Concatenating pairs leaves a chain of intermediate strings per call (about
  // a kilobyte of garbage for a 32-byte hash); hashes become map keys on hot paths.
  if (n <= HEX_SCRATCH_BYTES) {
    for (let i = 0; i < n; i++) {
      const b = bytes[i]!;
      hexScratch[2 * i] = HEX_HIGH[b]!;
      hexScratch[2 * i + 1] = HEX_LOW[b]!;
    }
    return hexDecoder.decode(new Uint8Array(hexScratch.buffer, 0, 2 * n));
  }
  let out = '';
  for (let i = 0; i < n; i++) out += HEX[bytes[i]!];
  return out;
}

export function fromHex(hex: string, field = 'hex'): Uint8Array {
  const body = hex.startsWith('0x') ? hex.slice(2) : hex;
  if (body.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(body)) {
    throw new ZommaError('BadHex', `${field}: not an even-length hex string`);
  }
  const out = new Uint8Array(body.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(body.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Lexicographic order of byte strings (shorter first on a common prefix). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

const encoder = new TextEncoder();
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}
