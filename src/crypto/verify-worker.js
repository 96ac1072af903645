// A verify-pool worker (pool.ts). Plain JavaScript so that it starts without a
// TypeScript loader. One message in: { id, buffer } with the batch packed as
//
//   u32le count, then per item:
//   u32le messageBytes, u8 wellFormed, publicKey[32], signature[64], message[messageBytes]
//
// One message out: { id, verdicts } with one byte per item (1 valid, 0 not), its
// ArrayBuffer copied, not transferred (a transfer detaches it: pool.ts says
// why no thread of the node detaches one). Verification is libsodium's Ed25519, as verifyRaw's
// (ed25519.ts), and nothing else.

import { parentPort } from 'node:worker_threads';
import sodium from 'sodium-native';

const PUBLIC_KEY_BYTES = 32;
const SIGNATURE_BYTES = 64;
const ITEM_HEADER_BYTES = 5;

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
    const key = buffer.subarray(keyAt, keyAt + PUBLIC_KEY_BYTES);
    const message = buffer.subarray(messageAt, messageAt + messageBytes);
    const signature = buffer.subarray(signatureAt, signatureAt + SIGNATURE_BYTES);
    if (sodium.crypto_sign_verify_detached(signature, message, key)) verdicts[i] = 1;
  }
  return verdicts;
}

parentPort.on('message', ({ id, buffer }) => {
  const verdicts = verifyPacked(buffer);
  parentPort.postMessage({ id, verdicts: verdicts.buffer });
});
