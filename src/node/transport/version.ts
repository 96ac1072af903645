// The wire version of the peer protocol, apart from secure.ts so that what
// only shows it (`zomma version`, the start line) loads no cipher.

/**
 * The wire version of the peer protocol, the hello's first byte. 2: every
 * frame after the handshake starts with a kind byte (FRAME_KIND). 3: the
 * hello carries the execution version, and the transcript covers both hellos.
 * A peer of another wire version is refused at its hello (`wireVersion`).
 */
export const PROTOCOL_VERSION = 3;
