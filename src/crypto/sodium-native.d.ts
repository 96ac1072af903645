// The parts of sodium-native (libsodium bindings; the package ships no types) that we use.
declare module 'sodium-native' {
  interface Sodium {
    /** Derives the Ed25519 public key (32 bytes) and secret key (64: seed then public key) of a 32-byte seed. */
    crypto_sign_seed_keypair(publicKey: Uint8Array, secretKey: Uint8Array, seed: Uint8Array): void;
    /** Writes the Ed25519 signature (64 bytes) of `message` by `secretKey` into `signature`. */
    crypto_sign_detached(signature: Uint8Array, message: Uint8Array, secretKey: Uint8Array): void;
    /** True if `signature` is a valid Ed25519 signature of `message` by `publicKey`; throws on wrong lengths. */
    crypto_sign_verify_detached(
      signature: Uint8Array,
      message: Uint8Array,
      publicKey: Uint8Array,
    ): boolean;
    /** IETF ChaCha20-Poly1305: writes ciphertext then tag into `c`; returns its length. */
    crypto_aead_chacha20poly1305_ietf_encrypt(
      c: Uint8Array,
      m: Uint8Array,
      ad: Uint8Array | null,
      nsec: null,
      npub: Uint8Array,
      k: Uint8Array,
    ): number;
    /** The inverse: writes the plaintext into `m`; throws if the tag does not verify. */
    crypto_aead_chacha20poly1305_ietf_decrypt(
      m: Uint8Array,
      nsec: null,
      c: Uint8Array,
      ad: Uint8Array | null,
      npub: Uint8Array,
      k: Uint8Array,
    ): number;
  }
  const sodium: Sodium;
  export default sodium;
}
