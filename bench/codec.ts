// bench:codec — encode + decode of one signed limit order, side by side in one
// run: our canonical codec, JSON (bytes as hex, bigint as strings, as a user
// would), msgpackr's standalone pack/unpack (plain MessagePack maps) and
// msgpackr with its record extension (its fastest, msgpackr-only mode).
// Rounds are interleaved and the best round of each is kept, because the
// machine is shared and noisy. Prints one JSON line.
//
//   npm run bench:codec [-- --ms 400 --rounds 5]

import { parseArgs } from 'node:util';
import { Packr, pack, unpack } from 'msgpackr';
import { decodeSignedTx, encodeSignedTx } from '../src/exchange/tx/codec.ts';
import type { SignedTx } from '../src/exchange/tx/types.ts';
import { fromHex, toHex } from '../src/lib/bytes.ts';

const { values } = parseArgs({
  options: {
    ms: { type: 'string', default: '400' },
    rounds: { type: 'string', default: '5' },
  },
});
const roundMs = Number(values.ms);
const rounds = Number(values.rounds);

function filled(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (seed * 31 + i * 17) & 0xff);
}

const order: SignedTx = {
  chainId: 'zomma-devnet-1',
  signer: filled(32, 1),
  account: filled(20, 2),
  subaccount: 0,
  nonce: 1_764_000_000_123,
  action: {
    kind: 'placeOrder',
    instrument: 'BTC-PERPETUAL',
    side: 'buy',
    type: 'limit',
    priceTicks: 9_712_350,
    sizeLots: 25,
    timeInForce: 'GTC',
    reduceOnly: false,
    clientOrderId: 'mm-7-000123',
    stp: 'cancelResting',
  },
  signature: filled(64, 3),
};

// What a user would send as JSON: bytes as hex strings (amounts, were there any, as strings).
type JsonTx = Omit<SignedTx, 'signer' | 'account' | 'signature'> & {
  signer: string;
  account: string;
  signature: string;
};

function toJson(tx: SignedTx): string {
  const shape: JsonTx = {
    ...tx,
    signer: toHex(tx.signer),
    account: toHex(tx.account),
    signature: toHex(tx.signature),
  };
  return JSON.stringify(shape);
}

function fromJson(text: string): SignedTx {
  const shape = JSON.parse(text) as JsonTx;
  return {
    ...shape,
    signer: fromHex(shape.signer),
    account: fromHex(shape.account),
    signature: fromHex(shape.signature),
  };
}

const records = new Packr({ useRecords: true });

interface Contender {
  name: string;
  size: number;
  /** One encode and one decode; returns something derived from the result so it is not optimised away. */
  run(): number;
}

const contenders: Contender[] = [
  {
    name: 'zomma',
    size: encodeSignedTx(order).length,
    run: () => decodeSignedTx(encodeSignedTx(order)).nonce,
  },
  {
    name: 'json',
    size: Buffer.byteLength(toJson(order)),
    run: () => fromJson(toJson(order)).nonce,
  },
  {
    name: 'msgpackr',
    size: pack(order).length,
    run: () => (unpack(pack(order)) as SignedTx).nonce,
  },
  {
    name: 'msgpackrRecords',
    size: records.pack(order).length,
    run: () => (records.unpack(records.pack(order)) as SignedTx).nonce,
  },
];

// Each contender must round-trip the order before its speed means anything.
for (const c of contenders) if (c.run() !== order.nonce) throw new Error(`${c.name} is broken`);

function measure(c: Contender): number {
  const deadline = performance.now() + roundMs;
  let ops = 0;
  let sink = 0;
  const start = performance.now();
  while (performance.now() < deadline) {
    for (let i = 0; i < 1000; i++) sink += c.run();
    ops += 1000;
  }
  const elapsedMs = performance.now() - start;
  if (sink === 0) throw new Error('unreachable');
  return (ops * 1000) / elapsedMs;
}

const best = new Map<string, number>(contenders.map((c) => [c.name, 0]));
for (const c of contenders) measure(c); // warm-up
for (let round = 0; round < rounds; round++) {
  for (const c of contenders) best.set(c.name, Math.max(best.get(c.name)!, measure(c)));
}

const rate = (name: string): number => Math.round(best.get(name)!);
const ratio = (a: string, b: string): number =>
  Math.round((best.get(a)! / best.get(b)!) * 100) / 100;

console.log(
  JSON.stringify({
    bench: 'codec',
    what: 'encode+decode of one signed limit order, ops/s (best of rounds)',
    zommaOpsPerSec: rate('zomma'),
    jsonOpsPerSec: rate('json'),
    msgpackrOpsPerSec: rate('msgpackr'),
    msgpackrRecordsOpsPerSec: rate('msgpackrRecords'),
    zommaOverJson: ratio('zomma', 'json'),
    zommaOverMsgpackr: ratio('zomma', 'msgpackr'),
    zommaOverMsgpackrRecords: ratio('zomma', 'msgpackrRecords'),
    sizeBytes: Object.fromEntries(contenders.map((c) => [c.name, c.size])),
    roundMs,
    rounds,
  }),
);
