// Signed transactions: types, canonical encoding, signing, stateless checks and
// the nonce rule (docs/transactions.md).
export * from './types.ts';
export * from './errors.ts';
export {
  DEPOSIT_ID_BYTES,
  SUBACCOUNT_MAX,
  TX_ACCOUNT_BYTES,
  TX_FORMAT_VERSION,
  TX_SIGNATURE_BYTES,
  TX_SIGNER_BYTES,
  actionCodec,
  decodeSignedTx,
  decodeUnsignedTx,
  encodeSignedTx,
  encodeUnsignedTx,
  signedTxCodec,
  unsignedTxCodec,
} from './codec.ts';
export { signTx, txHash, txSignedBytes, verifyTxSignature } from './sign.ts';
export type { TxSigning } from './sign.ts';
export { buildTx, placeOrder } from './build.ts';
export type { BuildTxInput, BuiltTx } from './build.ts';
export {
  checkAction,
  checkTx,
  checkTxSignature,
  checkTxWithoutSignature,
  validateTx,
} from './validate.ts';
export type { CheckedTx } from './validate.ts';
export {
  acceptNonce,
  checkNonce,
  nonceRefusalMessage,
  readNonces,
  recordNonce,
  writeNonces,
} from './nonces.ts';
export type { NonceRejection } from './nonces.ts';
