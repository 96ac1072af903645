// One leading byte tags what a peer frame carries, because the transport moves
// opaque bytes and three protocols share one connection: consensus messages
// (the replica decodes the rest), mempool gossip (transactions) and state sync.
// Anything else is refused with BadFrame before any decoding.

import { NodeError } from './errors.ts';

export const CHANNEL = { consensus: 0, mempool: 1, sync: 2 } as const;
export type Channel = (typeof CHANNEL)[keyof typeof CHANNEL];

export function frame(channel: Channel, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.length + 1);
  out[0] = channel;
  out.set(payload, 1);
  return out;
}

export interface Unframed {
  readonly channel: Channel;
  /** A view into the frame, not a copy. */
  readonly payload: Uint8Array;
}

export function unframe(bytes: Uint8Array): Unframed {
  if (bytes.length < 1) throw new NodeError('BadFrame', 'empty frame');
  const tag = bytes[0]!;
  if (tag > CHANNEL.sync) throw new NodeError('BadFrame', `unknown channel ${tag}`);
  return { channel: tag as Channel, payload: bytes.subarray(1) };
}
