// The mempool channel's payload: a batch of signed transactions, each as its
// canonical bytes. Decoding bounds the count and every length before reading.

import { Reader, Writer } from '../codec/wire.ts';
import { MEMPOOL_GOSSIP_BATCH_TXS_MAX, TX_BYTES_MAX } from '../lib/limits.ts';

export function encodeTxBatch(txs: readonly Uint8Array[]): Uint8Array {
  const w = new Writer(16 + txs.reduce((n, tx) => n + tx.length + 4, 0));
  w.uvarint(txs.length);
  for (const tx of txs) w.bytes(tx, TX_BYTES_MAX);
  return w.finish();
}

/** Throws DecodeError on anything but a canonical batch. */
export function decodeTxBatch(bytes: Uint8Array): Uint8Array[] {
  const r = new Reader(bytes);
  const count = r.uvarint('txs', MEMPOOL_GOSSIP_BATCH_TXS_MAX);
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) out.push(r.bytesField(`txs[${i}]`, TX_BYTES_MAX).slice());
  r.done('txBatch');
  return out;
}
