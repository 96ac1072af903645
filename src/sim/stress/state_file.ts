// State files the stress tool reads and writes (docs/stress.md, "Input states").
//
// Two framings of the one exchange snapshot (src/exchange/snapshot.ts):
//   - bare: the canonical snapshot bytes, as `zomma stress generate` writes them;
//   - a node's snapshot file (.zomma/devnet/<validator>/data/snapshots/*.snap):
//     'ZSNP' · u32 version (1) · u32 length · u32 crc32 · the same bytes
//     (src/node/storage/snapshot_store.ts; restated here because sim may not
//     import node).
// A snapshot decodes only if it is canonical and passes every invariant.

import { crc32 } from 'node:zlib';
import { DecodeError } from '../../codec/wire.ts';
import type { Exchange, ExchangeOptions } from '../../exchange/index.ts';
import { decodeSnapshot } from '../../exchange/index.ts';

const MAGIC = [0x5a, 0x53, 0x4e, 0x50]; // 'ZSNP'
const NODE_VERSION = 1;
const HEADER_BYTES = 16;

export type StateFraming = 'bare' | 'node';

function u32(bytes: Uint8Array, at: number): number {
  return (
    ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0
  );
}

/** The snapshot payload and how it was framed; a node file's header and checksum are checked. */
export function unframeState(bytes: Uint8Array): { payload: Uint8Array; framing: StateFraming } {
  const framed = bytes.length >= 4 && MAGIC.every((b, i) => bytes[i] === b);
  if (!framed) return { payload: bytes, framing: 'bare' };
  if (bytes.length < HEADER_BYTES) throw new DecodeError('stateFile.header', 'truncated header');
  if (u32(bytes, 4) !== NODE_VERSION) {
    throw new DecodeError('stateFile.version', `unknown version ${u32(bytes, 4)}`);
  }
  if (u32(bytes, 8) !== bytes.length - HEADER_BYTES) {
    throw new DecodeError('stateFile.length', 'length differs from the file');
  }
  const payload = bytes.subarray(HEADER_BYTES);
  if (crc32(payload) >>> 0 !== u32(bytes, 12)) {
    throw new DecodeError('stateFile.crc32', 'payload fails its checksum');
  }
  return { payload, framing: 'node' };
}

export function loadState(
  bytes: Uint8Array,
  options: ExchangeOptions = {},
): { exchange: Exchange; framing: StateFraming } {
  const { payload, framing } = unframeState(bytes);
  return { exchange: decodeSnapshot(payload, options), framing };
}
