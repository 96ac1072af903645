// The crypto layer's public surface: Ed25519 signatures with domain separation,
// SHA-256 and Merkle roots, addresses, the public-key registration rule, key
// files and the verify pool (docs/crypto.md). Importing it has no side effects
// beyond constants: caches are built on first use, workers on construction.

export {
  SIGN_KIND,
  PUBLIC_KEY_BYTES,
  SIGNATURE_BYTES,
  ADDRESS_BYTES,
  HASH_BYTES,
  SEED_BYTES,
  isSignKind,
} from './constants.ts';
export type { SignKind } from './constants.ts';
export { CryptoError } from './errors.ts';
export type { CryptoErrorCode } from './errors.ts';
export { sha256, sha256Latin1, sha256Transient, merkleRoot } from './hash.ts';
export { addressOf, formatAddress, parseAddress } from './address.ts';
export { generateKeyPair, keyPairFromSeed, signRaw, verifyRaw, checkPublicKey } from './ed25519.ts';
export type { KeyPair } from './ed25519.ts';
export { SIGN_DOMAIN_TAG, checkChainId, signedBytes, sign, verify } from './domain.ts';
export { saveKeyFile, loadKeyFile } from './keyfile.ts';
export type { SaveKeyFileOptions } from './keyfile.ts';
export { VerifyPool } from './pool.ts';
export type { VerifyItem, VerifyPoolOptions } from './pool.ts';
