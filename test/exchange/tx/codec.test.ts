import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DecodeError } from '../../../src/codec/index.ts';
import {
  decodeSignedTx,
  decodeUnsignedTx,
  encodeSignedTx,
  encodeUnsignedTx,
  TX_SIGNATURE_BYTES,
} from '../../../src/exchange/tx/codec.ts';
import type { SignedTx } from '../../../src/exchange/tx/types.ts';
import { actionArb, plain, signedTxArb } from './arbitraries.ts';

const order: SignedTx = {
  chainId: 'zomma-devnet-1',
  signer: new Uint8Array(32).fill(1),
  account: new Uint8Array(20).fill(2),
  subaccount: 3,
  nonce: 1_764_000_000_123,
  action: {
    kind: 'placeOrder',
    instrument: 'BTC-PERPETUAL',
    side: 'sell',
    type: 'limit',
    priceTicks: 9_712_350,
    sizeLots: 25,
    timeInForce: 'postOnly',
    reduceOnly: true,
    clientOrderId: 'mm-7-000123',
    stp: 'cancelBoth',
  },
  signature: new Uint8Array(64).fill(9),
};

function decodeError(bytes: Uint8Array): DecodeError | undefined {
  try {
    decodeSignedTx(bytes);
    return undefined;
  } catch (e) {
    if (e instanceof DecodeError) return e;
    throw e;
  }
}

test('a signed order has one pinned encoding', () => {
  const bytes = encodeSignedTx(order);
  assert.equal(bytes.length, 180);
  assert.equal(bytes[0], 1); // format version
  assert.deepStrictEqual(decodeSignedTx(bytes), order);
  // the unsigned form is the signed one less its signature
  assert.deepEqual(encodeUnsignedTx(order), bytes.subarray(0, bytes.length - TX_SIGNATURE_BYTES));
  const { signature: _, ...unsigned } = order;
  assert.deepStrictEqual(decodeUnsignedTx(encodeUnsignedTx(order)), unsigned);
});

test('decode(encode(tx)) deep-equals tx for every transaction and action type', () => {
  fc.assert(
    fc.property(signedTxArb, (raw) => {
      const tx = plain(raw);
      assert.deepStrictEqual(decodeSignedTx(encodeSignedTx(tx)), tx);
    }),
    { numRuns: 3000 },
  );
});

test('every action kind is drawn by the arbitrary', () => {
  const kinds = new Set<string>();
  fc.assert(
    fc.property(actionArb, (a) => {
      kinds.add(a.kind);
    }),
    { numRuns: 3000 },
  );
  assert.equal(kinds.size, 13);
});

test('canonical: any mutated bytes either fail with DecodeError or re-encode to themselves', () => {
  fc.assert(
    fc.property(
      signedTxArb,
      fc.nat(),
      fc.integer({ min: 0, max: 255 }),
      fc.constantFrom('set', 'flip', 'truncate', 'extend', 'insert', 'delete'),
      (raw, at, byte, how) => {
        const b = encodeSignedTx(plain(raw));
        const i = at % b.length;
        let m: Uint8Array;
        if (how === 'set') (m = b.slice())[i] = byte;
        else if (how === 'flip') (m = b.slice())[i]! ^= 1 << (byte & 7);
        else if (how === 'truncate') m = b.slice(0, i);
        else if (how === 'extend') m = Uint8Array.of(...b, byte);
        else if (how === 'insert') m = Uint8Array.of(...b.subarray(0, i), byte, ...b.subarray(i));
        else m = Uint8Array.of(...b.subarray(0, i), ...b.subarray(i + 1));
        const e = decodeError(m);
        if (e === undefined) assert.deepEqual(encodeSignedTx(decodeSignedTx(m)), m);
      },
    ),
    { numRuns: 20_000 },
  );
});

test('random bytes fail with DecodeError and nothing else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
      const withVersion = Uint8Array.of(1, ...b);
      for (const m of [b, withVersion]) {
        const e = decodeError(m);
        if (e === undefined) assert.deepEqual(encodeSignedTx(decodeSignedTx(m)), m);
      }
    }),
    { numRuns: 5000 },
  );
});

test('errors name the field by its dotted path', () => {
  const bytes = encodeSignedTx(order);
  const sizeAt = bytes.indexOf(25, 60); // sizeLots follows the price varint
  const inflated = Uint8Array.of(
    ...bytes.subarray(0, sizeAt),
    0x99,
    0x00,
    ...bytes.subarray(sizeAt + 1),
  );
  assert.equal(decodeError(inflated)?.field, 'tx.action.placeOrder.sizeLots');
  assert.equal(decodeError(bytes.subarray(0, bytes.length - 1))?.field, 'tx.signature');
  assert.equal(decodeError(Uint8Array.of(...bytes, 0))?.field, 'tx');
  assert.equal(decodeError(Uint8Array.of(2, ...bytes.subarray(1)))?.field, 'tx.version');
  const chainLong = Uint8Array.of(1, 65, ...new Uint8Array(65).fill(97));
  assert.equal(decodeError(chainLong)?.field, 'tx.chainId');
});

test('batch errors name the element; a batch inside a batch is refused', () => {
  const batch: SignedTx = {
    ...order,
    action: {
      kind: 'batch',
      actions: [{ kind: 'cancelAll' }, { kind: 'cancel', instrument: 'ETH-PERPETUAL', orderId: 7 }],
    },
  };
  const bytes = encodeSignedTx(batch);
  assert.deepStrictEqual(decodeSignedTx(bytes), batch);
  // make the second element's tag the batch tag (8)
  const cancelTag = bytes.indexOf(5, bytes.indexOf(6) + 1);
  const nested = bytes.slice();
  nested[cancelTag] = 8;
  assert.equal(decodeError(nested)?.field, 'tx.action.batch.actions[1].kind');
  const unknown = bytes.slice();
  unknown[cancelTag] = 200;
  assert.equal(decodeError(unknown)?.field, 'tx.action.batch.actions[1].kind');
});

test('the encoder refuses a side or order type outside its list instead of writing the other one', () => {
  // Before, any side but 'buy' was written as sell and any type but 'limit' as market.
  const bad = (extra: Record<string, unknown>): SignedTx =>
    ({ ...order, action: { ...order.action, ...extra } }) as SignedTx;
  for (const extra of [{ side: 'Buy' }, { side: undefined }, { type: 'LIMIT' }, { type: 'stop' }]) {
    assert.throws(() => encodeSignedTx(bad(extra)), /unknown (side|type)/, JSON.stringify(extra));
  }
  for (const extra of [{ side: 'sell' }, { type: 'market' }]) {
    assert.deepStrictEqual(decodeSignedTx(encodeSignedTx(bad(extra))), bad(extra));
  }
});
