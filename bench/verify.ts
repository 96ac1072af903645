// bench:verify — Ed25519 verification throughput, side by side in one run:
//   single:  verifyRaw on the calling thread (libsodium through sodium-native),
//            what a node would do without a pool;
//   openssl: node:crypto verify (OpenSSL) with a KeyObject cached per signer,
//            what a Node.js user would otherwise write;
//   naive:   node:crypto verify building the KeyObject on every call, as code
//            that does not cache keys would;
//   pool:    VerifyPool.verifyBatch, batches sent concurrently, all workers busy.
// The signatures are over domain-separated transaction-sized messages from
// 1,024 signers. Rounds are interleaved and the best of each is kept, because
// the machine is shared and noisy. Prints one JSON line.
//
//   npm run bench:verify [-- --signatures 20000 --batch 1024 --rounds 5 --workers N]

import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import {
  SIGN_KIND,
  VerifyPool,
  keyPairFromSeed,
  sign,
  signedBytes,
  verifyRaw,
} from '../src/crypto/index.ts';
import type { VerifyItem } from '../src/crypto/index.ts';

const { values } = parseArgs({
  options: {
    signatures: { type: 'string', default: '20000' },
    batch: { type: 'string', default: '1024' },
    rounds: { type: 'string', default: '5' },
    workers: { type: 'string', default: String(availableParallelism()) },
  },
});
const signatures = Number(values.signatures);
const batchItems = Number(values.batch);
const rounds = Number(values.rounds);
const workers = Number(values.workers);

const SIGNERS = 1024;
const CHAIN = 'zomma-bench-1';
const MESSAGE_BYTES = 120;
const NAIVE_SIGNATURES = 5_000;
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function build(): VerifyItem[] {
  const keys = Array.from({ length: SIGNERS }, (_, i) => {
    const seed = new Uint8Array(32);
    new DataView(seed.buffer).setUint32(0, i + 1);
    return keyPairFromSeed(seed);
  });
  const items: VerifyItem[] = [];
  for (let i = 0; i < signatures; i++) {
    const key = keys[i % SIGNERS]!;
    const message = Uint8Array.from({ length: MESSAGE_BYTES }, (_, j) => (i * 7 + j * 13) & 0xff);
    items.push({
      publicKey: key.publicKey,
      message: signedBytes(CHAIN, SIGN_KIND.tx, message),
      signature: sign(key, CHAIN, SIGN_KIND.tx, message),
    });
  }
  return items;
}

function timeSingle(items: VerifyItem[]): number {
  const start = process.hrtime.bigint();
  let valid = 0;
  for (const x of items) if (verifyRaw(x.publicKey, x.message, x.signature)) valid++;
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (valid !== items.length) throw new Error('single: a valid signature failed');
  return ms;
}

/** A node:crypto public key object from the raw 32 bytes. */
function keyObjectOf(publicKey: Uint8Array): KeyObject {
  return createPublicKey({
    key: Buffer.concat([SPKI_PREFIX, publicKey]),
    format: 'der',
    type: 'spki',
  });
}

const keyObjects = new Map<string, KeyObject>();

function timeOpenssl(items: VerifyItem[]): number {
  const start = process.hrtime.bigint();
  let valid = 0;
  for (const x of items) {
    const id = Buffer.from(x.publicKey).toString('latin1');
    let key = keyObjects.get(id);
    if (key === undefined) {
      key = keyObjectOf(x.publicKey);
      keyObjects.set(id, key);
    }
    if (nodeVerify(null, x.message, key, x.signature)) valid++;
  }
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (valid !== items.length) throw new Error('openssl: a valid signature failed');
  return ms;
}

function timeNaive(items: VerifyItem[]): number {
  const start = process.hrtime.bigint();
  let valid = 0;
  for (const x of items) {
    if (nodeVerify(null, x.message, keyObjectOf(x.publicKey), x.signature)) valid++;
  }
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (valid !== items.length) throw new Error('naive: a valid signature failed');
  return ms;
}

async function timePool(pool: VerifyPool, items: VerifyItem[]): Promise<number> {
  const start = process.hrtime.bigint();
  const pending: Promise<boolean[]>[] = [];
  for (let i = 0; i < items.length; i += batchItems) {
    pending.push(pool.verifyBatch(items.slice(i, i + batchItems)));
  }
  const verdicts = (await Promise.all(pending)).flat();
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (verdicts.length !== items.length || verdicts.includes(false)) {
    throw new Error('pool: a valid signature failed');
  }
  return ms;
}

const items = build();
const pool = new VerifyPool({
  workers,
  queueBatchesMax: Math.ceil(signatures / batchItems) + 1,
});
// Warm up: JIT, the KeyObject cache, worker start-up.
timeSingle(items.slice(0, SIGNERS));
timeOpenssl(items.slice(0, SIGNERS));
await timePool(pool, items.slice(0, Math.max(SIGNERS, batchItems * workers)));
await timePool(pool, items.slice(0, Math.max(SIGNERS, batchItems * workers)));

let singleMs = Infinity;
let naiveMs = Infinity;
let opensslMs = Infinity;
let poolMs = Infinity;
for (let r = 0; r < rounds; r++) {
  singleMs = Math.min(singleMs, timeSingle(items));
  opensslMs = Math.min(opensslMs, timeOpenssl(items));
  poolMs = Math.min(poolMs, await timePool(pool, items));
  // The naive loop is slow: time a slice of it and scale.
  const naiveItems = items.slice(0, NAIVE_SIGNATURES);
  naiveMs = Math.min(naiveMs, timeNaive(naiveItems) * (items.length / naiveItems.length));
}
await pool.close();

const rate = (ms: number): number => Math.round((signatures / ms) * 1000);
console.log(
  JSON.stringify({
    bench: 'verify',
    signatures,
    batchItems,
    workers,
    cores: availableParallelism(),
    singleThreadPerSec: rate(singleMs),
    poolPerSec: rate(poolMs),
    poolVsSingle: Number((singleMs / poolMs).toFixed(2)),
    opensslPerSec: rate(opensslMs),
    singleVsOpenssl: Number((opensslMs / singleMs).toFixed(2)),
    naiveNoKeyCachePerSec: rate(naiveMs),
    singleVsNaive: Number((naiveMs / singleMs).toFixed(2)),
  }),
);
