// Reads where the records and sync markers of a record log file sit, from the
// length words alone (record_log.ts), so tests can damage a chosen record.

import { FILE_HEADER_BYTES, RECORD_HEADER_BYTES } from '../../../src/node/storage/record_log.ts';

export const OLD_FILE_HEADER_BYTES = 16;

export interface Slot {
  readonly offset: number;
  readonly end: number;
  readonly marker: boolean;
}

export function layout(bytes: Uint8Array): Slot[] {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const out: Slot[] = [];
  // Versions 1 and 2 had a 16-byte header.
  let offset = view.readUInt32BE(4) < 3 ? OLD_FILE_HEADER_BYTES : FILE_HEADER_BYTES;
  while (offset + RECORD_HEADER_BYTES <= view.length) {
    const word = view.readUInt32BE(offset);
    const marker = word >= 0x8000_0000;
    const end = offset + RECORD_HEADER_BYTES + (marker ? word - 0x8000_0000 : word);
    if (end > view.length) break;
    out.push({ offset, end, marker });
    offset = end;
  }
  return out;
}

/** The offsets of the payload records (markers left out), in order. */
export function recordOffsets(bytes: Uint8Array): number[] {
  return layout(bytes)
    .filter((slot) => !slot.marker)
    .map((slot) => slot.offset);
}
