// Signing, verifying and building transactions. The signature covers
// signedBytes(chainId, SIGN_KIND.tx, encodeUnsignedTx(tx)): the canonical
// envelope without its signature, domain-separated by chain and message kind.
// The hash of a transaction is sha256 of its whole encoded signed form.

import { SIGN_KIND, sha256, sign, signedBytes, verify } from '../../crypto/index.ts';
import type { KeyPair } from '../../crypto/index.ts';
import { encodeUnsignedTx, TX_SIGNATURE_BYTES } from './codec.ts';
import type { SignedTx, UnsignedTx } from './types.ts';

/** Everything a signature check needs, for a worker that has no decoder. */
export interface TxSigning {
  chainId: string;
  publicKey: Uint8Array;
  /** The unsigned encoding: what sign() and verify() take as the message. */
  message: Uint8Array;
  /** The exact bytes the Ed25519 signature is over (domain separation included). */
  signedBytes: Uint8Array;
  signature: Uint8Array;
}

/**
 * The message of a signed transaction. `encoded`, if given, must be the
 * transaction's own canonical encoding (as checkTxWithoutSignature returns):
 * then the message is its prefix, and nothing is re-encoded.
 */
function messageOf(tx: SignedTx, encoded?: Uint8Array): Uint8Array {
  if (encoded === undefined) return encodeUnsignedTx(tx);
  return new Uint8Array(encoded.buffer, encoded.byteOffset, encoded.length - TX_SIGNATURE_BYTES);
}

/** The exact bytes and key a signature check uses (for a signature-check worker pool). */
export function txSignedBytes(tx: SignedTx, encoded?: Uint8Array): TxSigning {
  const message = messageOf(tx, encoded);
  return {
    chainId: tx.chainId,
    publicKey: tx.signer,
    message,
    signedBytes: signedBytes(tx.chainId, SIGN_KIND.tx, message),
    signature: tx.signature,
  };
}

/** True if the signer's key signed this transaction (never throws). */
export function verifyTxSignature(tx: SignedTx, encoded?: Uint8Array): boolean {
  return verify(tx.signer, tx.chainId, SIGN_KIND.tx, messageOf(tx, encoded), tx.signature);
}

export function signTx(tx: UnsignedTx, key: KeyPair): SignedTx {
  const signature = sign(key, tx.chainId, SIGN_KIND.tx, encodeUnsignedTx(tx));
  return { ...tx, signature };
}

export function txHash(bytes: Uint8Array): Uint8Array {
  return sha256(bytes);
}
