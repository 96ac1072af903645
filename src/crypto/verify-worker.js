// A verify-pool worker (pool.ts). Plain JavaScript so that it starts without a
// TypeScript loader. One message in: { id, buffer } with the batch packed as
//
//   u32le count, then per item:
//   u32le messageBytes, u8 wellFormed, publicKey[32], signature[64], message[messageBytes]
//
// One message out: { id, verdicts } with one byte per item (1 valid, 0 not), its
// ArrayBuffer transferred. Verification is node:crypto's Ed25519 and nothing else.

import { createPublicKey, verify } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';

const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PUBLIC_KEY_BYTES = 32;
const SIGNATURE_BYTES = 64;
const ITEM_HEADER_BYTES = 5;

const keyCacheEntriesMax = workerData.keyCacheEntriesMax;
/** Raw key (latin1) → KeyObject, or null when OpenSSL refuses the key; first in, first out. */
const keys = new Map();

function keyObject(buffer, offset) {
  const id = buffer.toString('latin1', offset, offset + PUBLIC_KEY_BYTES);
  let key = keys.get(id);
  if (key !== undefined) return key;
  try {
    const der = Buffer.concat([SPKI_PREFIX, buffer.subarray(offset, offset + PUBLIC_KEY_BYTES)]);
    key = createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch {
    key = null;
  }
  if (keys.size >= keyCacheEntriesMax) keys.delete(keys.keys().next().value);
  keys.set(id, key);
  return key;
}

function verifyPacked(arrayBuffer) {
  const buffer = Buffer.from(arrayBuffer);
  const count = buffer.readUInt32LE(0);
  const verdicts = new Uint8Array(count);
  let offset = 4;
  for (let i = 0; i < count; i++) {
    const messageBytes = buffer.readUInt32LE(offset);
    const wellFormed = buffer[offset + 4] === 1;
    const keyAt = offset + ITEM_HEADER_BYTES;
    const signatureAt = keyAt + PUBLIC_KEY_BYTES;
    const messageAt = signatureAt + SIGNATURE_BYTES;
    offset = messageAt + messageBytes;
    if (!wellFormed) continue;
    const key = keyObject(buffer, keyAt);
    if (key === null) continue;
    try {
      const message = buffer.subarray(messageAt, messageAt + messageBytes);
      const signature = buffer.subarray(signatureAt, signatureAt + SIGNATURE_BYTES);
      if (verify(null, message, key, signature)) verdicts[i] = 1;
    } catch {
      // A signature OpenSSL cannot parse is simply invalid.
    }
  }
  return verdicts;
}

parentPort.on('message', ({ id, buffer }) => {
  const verdicts = verifyPacked(buffer);
  parentPort.postMessage({ id, verdicts: verdicts.buffer }, [verdicts.buffer]);
});
