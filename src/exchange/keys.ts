// Map keys for byte strings (addresses, public keys): one UTF-16 code unit per
// byte. Cheaper to build than hex, and string order is byte order, so sorting
// by key is the canonical order of the bytes.

export function bytesKey(bytes: Uint8Array): string {
  return String.fromCharCode.apply(null, bytes as unknown as number[]);
}
