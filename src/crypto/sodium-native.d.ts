// The part of sodium-native (libsodium bindings; the package ships no types) that we use.
declare module 'sodium-native' {
  interface Sodium {
    /** True if `signature` is a valid Ed25519 signature of `message` by `publicKey`; throws on wrong lengths. */
    crypto_sign_verify_detached(
      signature: Uint8Array,
      message: Uint8Array,
      publicKey: Uint8Array,
    ): boolean;
  }
  const sodium: Sodium;
  export default sodium;
}
