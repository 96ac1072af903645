// Map keys for byte strings (addresses, public keys): one UTF-16 code unit per
// byte. Cheaper to build than hex, and string order is byte order, so sorting
// by key is the canonical order of the bytes.

/** Address size: spelled out as arguments, about twice as fast as apply() (a lookup per transaction). */
const ADDRESS_BYTES = 20;

export function bytesKey(bytes: Uint8Array): string {
  if (bytes.length === ADDRESS_BYTES) {
    const b = bytes;
    // prettier-ignore
    return String.fromCharCode(
      b[0]!, b[1]!, b[2]!, b[3]!, b[4]!, b[5]!, b[6]!, b[7]!, b[8]!, b[9]!,
      b[10]!, b[11]!, b[12]!, b[13]!, b[14]!, b[15]!, b[16]!, b[17]!, b[18]!, b[19]!,
    );
  }
  return String.fromCharCode.apply(null, bytes as unknown as number[]);
}
