// Sizes and message kinds. No imports: the pure cores read these.

/**
 * The kind of message a signature is for. The tag is signed with the message
 * (docs/crypto.md, "What is signed"), so a signature over one kind can never
 * be replayed as another. Values are wire constants: never renumber one.
 */
export const SIGN_KIND = {
  tx: 1,
  proposal: 2,
  prevote: 3,
  precommit: 4,
  voteExtension: 5,
  oracle: 6,
  attestation: 7,
  governance: 8,
  handshake: 9,
  evidence: 10,
} as const;
export type SignKind = (typeof SIGN_KIND)[keyof typeof SIGN_KIND];

export const PUBLIC_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;
export const ADDRESS_BYTES = 20;
export const HASH_BYTES = 32;
/** An Ed25519 private key is its 32-byte seed (RFC 8032 section 5.1.5). */
export const SEED_BYTES = 32;

const KINDS: ReadonlySet<number> = new Set(Object.values(SIGN_KIND));

export function isSignKind(kind: unknown): kind is SignKind {
  return typeof kind === 'number' && KINDS.has(kind);
}
