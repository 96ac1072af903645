// A small builder for clients: validate, sign, encode, hash.

import { addressOf } from '../../crypto/index.ts';
import type { KeyPair } from '../../crypto/index.ts';
import { encodeSignedTx } from './codec.ts';
import { signTx, txHash } from './sign.ts';
import { validateTx } from './validate.ts';
import type { Action, PlaceOrder, SignedTx, UnsignedTx } from './types.ts';

export interface BuildTxInput {
  chainId: string;
  key: KeyPair;
  /** The account acted for; default the key's own address (an agent passes its principal's). */
  account?: Uint8Array;
  /** Default 0. */
  subaccount?: number;
  nonce: number;
  expiresAtMs?: number;
  action: Action;
}

export interface BuiltTx {
  tx: SignedTx;
  bytes: Uint8Array;
  hash: Uint8Array;
}

/** Validates, signs and encodes a transaction. Throws TxError if it breaks a stateless rule. */
export function buildTx(input: BuildTxInput): BuiltTx {
  const unsigned: UnsignedTx = {
    chainId: input.chainId,
    signer: input.key.publicKey,
    account: input.account ?? addressOf(input.key.publicKey),
    subaccount: input.subaccount ?? 0,
    nonce: input.nonce,
    action: input.action,
  };
  if (input.expiresAtMs !== undefined) unsigned.expiresAtMs = input.expiresAtMs;
  validateTx(unsigned, input.chainId);
  const tx = signTx(unsigned, input.key);
  const bytes = encodeSignedTx(tx);
  return { tx, bytes, hash: txHash(bytes) };
}

/** A placeOrder action with the usual defaults: a GTC limit order, not reduce-only, cancelResting. */
export function placeOrder(
  fields: Pick<PlaceOrder, 'instrument' | 'side' | 'sizeLots'> & Partial<PlaceOrder>,
): PlaceOrder {
  const order: PlaceOrder = {
    kind: 'placeOrder',
    instrument: fields.instrument,
    side: fields.side,
    type: fields.type ?? 'limit',
    sizeLots: fields.sizeLots,
    timeInForce: fields.timeInForce ?? (fields.type === 'market' ? 'IOC' : 'GTC'),
    reduceOnly: fields.reduceOnly ?? false,
    stp: fields.stp ?? 'cancelResting',
  };
  if (fields.priceTicks !== undefined) order.priceTicks = fields.priceTicks;
  if (fields.clientOrderId !== undefined) order.clientOrderId = fields.clientOrderId;
  if (fields.goodTilMs !== undefined) order.goodTilMs = fields.goodTilMs;
  return order;
}
