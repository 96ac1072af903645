// The handshake and the frame cipher of a peer connection
// (docs/decisions/0003-transport.md). The handshake is node:crypto; the
// frames' ChaCha20-Poly1305 is libsodium's (one native call per frame, about
// five times cheaper for a vote-sized frame than a node:crypto cipher object).
//
// 1. Each side sends, in clear,
//      hello = version(u8) executionVersion(u32) ephemeralX25519PublicKey(32).
//    Its first five bytes (the wire version, then the execution version) keep
//    this layout in every later wire version: a build that meets a hello of
//    another wire version reads both there and says which versions the peer
//    runs, instead of failing the handshake without a word.
// 2. Both compute the X25519 shared secret and the transcript hash
//      T = sha256("zomma-p2p-v3" || len(chainId) || chainId || lowerHello || higherHello)
//    over both hellos whole (versions and ephemeral keys), the one whose
//    ephemeral key sorts lower first, so both sides get the same T without
//    knowing who dialed. The signatures of step 4 cover T: a version altered
//    on the way fails the peer's auth.
// 3. HKDF-SHA256(secret, salt T) gives a ChaCha20-Poly1305 key and a 12-byte
//    nonce base for each direction: the side whose ephemeral key sorts lower
//    sends with the first pair, the other with the second.
// 4. Each side sends, as its first encrypted frame, its static Ed25519 public
//    key and its signature of T (kind SIGN_KIND.handshake, chain id bound).
//    The receiver checks the signature and that the key is one it accepts,
//    then that the peer's execution version, now authenticated, is its own
//    (connection.ts): a peer on other execution rules is refused by name.
// Frames are length(u32) ciphertext tag(16), the length authenticated as
// associated data; the nonce is the base XOR a per-direction frame counter,
// so no nonce repeats under one key.

import { createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import sodium from 'sodium-native';
import { Reader, Writer } from '../../codec/wire.ts';
import { SIGN_KIND, sha256, sign, verify } from '../../crypto/index.ts';
import type { KeyPair } from '../../crypto/index.ts';
import { assert } from '../../lib/assert.ts';
import { compareBytes, utf8 } from '../../lib/bytes.ts';
import { CHAIN_ID_BYTES_MAX } from '../../lib/limits.ts';
import { PROTOCOL_VERSION } from './version.ts';

export { PROTOCOL_VERSION };
/**
 * The first wire version whose hello carries the execution version in bytes
 * 1 to 4: every later one keeps it there.
 */
export const PROLOGUE_SINCE_VERSION = 3;
/** version(u8) executionVersion(u32): the part of a hello no later wire version moves. */
export const PROLOGUE_BYTES = 5;
export const HELLO_BYTES = PROLOGUE_BYTES + 32;
/**
 * The first plaintext byte of every frame after the auth frame. Pings and
 * pongs travel inside the encrypted channel: a middlebox can neither forge
 * nor answer them, so a pong proves the peer itself is alive.
 */
export const FRAME_KIND = { message: 0, ping: 1, pong: 2 } as const;
export const EPHEMERAL_KEY_BYTES = 32;
export const TAG_BYTES = 16;
export const LENGTH_BYTES = 4;
const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const PROTOCOL_LABEL = utf8('zomma-p2p-v3');
const HKDF_INFO = utf8('zomma-p2p-v3 frame keys');
/** A counter this high would take centuries; stopping short of 2^53 keeps it exact. */
const FRAME_COUNTER_MAX = 2 ** 48;
/** RFC 8410 SubjectPublicKeyInfo prefix of a raw X25519 key. */
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

export interface Ephemeral {
  readonly privateKey: KeyObject;
  readonly publicKey: Uint8Array;
}

export function makeEphemeral(): Ephemeral {
  const pair = generateKeyPairSync('x25519');
  const spki = pair.publicKey.export({ format: 'der', type: 'spki' });
  return { privateKey: pair.privateKey, publicKey: new Uint8Array(spki.subarray(-32)) };
}

export function encodeHello(ephemeral: Ephemeral, executionVersion: number): Uint8Array {
  return new Writer(HELLO_BYTES)
    .u8(PROTOCOL_VERSION)
    .u32(executionVersion)
    .fixed(ephemeral.publicKey, EPHEMERAL_KEY_BYTES)
    .finishOwned();
}

/** What a peer's hello says. */
export type Hello =
  /** Our wire version: the peer's execution version and ephemeral key. */
  | {
      readonly kind: 'hello';
      readonly executionVersion: number;
      readonly ephemeralKey: Uint8Array;
      /** The hello's bytes, which the transcript covers. */
      readonly bytes: Uint8Array;
    }
  /**
   * Another wire version: what it says of itself (its execution version from
   * the prologue, or null for a wire version before PROLOGUE_SINCE_VERSION,
   * whose hello has none).
   */
  | {
      readonly kind: 'otherWire';
      readonly wireVersion: number;
      readonly executionVersion: number | null;
    };

/** The peer's hello, or null if it is malformed. */
export function decodeHello(bytes: Uint8Array): Hello | null {
  try {
    const r = new Reader(bytes);
    const wireVersion = r.u8('hello.version');
    if (wireVersion !== PROTOCOL_VERSION) {
      const prologue = wireVersion >= PROLOGUE_SINCE_VERSION && bytes.length >= PROLOGUE_BYTES;
      return {
        kind: 'otherWire',
        wireVersion,
        executionVersion: prologue ? r.u32('hello.executionVersion') : null,
      };
    }
    const executionVersion = r.u32('hello.executionVersion');
    const ephemeralKey = r.fixedCopy('hello.ephemeralKey', EPHEMERAL_KEY_BYTES);
    r.done('hello');
    return { kind: 'hello', executionVersion, ephemeralKey, bytes: bytes.slice() };
  } catch {
    return null;
  }
}

export interface Session {
  /** The transcript hash both sides sign. */
  readonly transcript: Uint8Array;
  readonly sender: FrameCipher;
  readonly receiver: FrameCipher;
}

/**
 * Derives the session keys from our ephemeral key and both hellos of this
 * wire version (ours as sent, the peer's as received, decodeHello's `bytes`);
 * null if the peer's key is unusable (reflected, or a low-order point).
 */
export function deriveSession(
  chainId: string,
  own: Ephemeral,
  ownHello: Uint8Array,
  peerHello: Uint8Array,
): Session | null {
  assert(ownHello.length === HELLO_BYTES && peerHello.length === HELLO_BYTES, 'hello sizes');
  const peerPublicKey = peerHello.subarray(PROLOGUE_BYTES);
  const order = compareBytes(own.publicKey, peerPublicKey);
  // Our own hello reflected back would make both directions share one key.
  if (order === 0) return null;
  let secret: Buffer;
  try {
    const peerKey = createPublicKey({
      key: Buffer.concat([X25519_SPKI_PREFIX, peerPublicKey]),
      format: 'der',
      type: 'spki',
    });
    secret = diffieHellman({ privateKey: own.privateKey, publicKey: peerKey });
  } catch {
    return null;
  }
  // A low-order peer key yields the all-zero secret (RFC 7748 section 6.1).
  if (secret.every((b) => b === 0)) return null;
  const [lower, higher] = order < 0 ? [ownHello, peerHello] : [peerHello, ownHello];
  const chain = utf8(chainId);
  assert(chain.length <= CHAIN_ID_BYTES_MAX, 'chain id length');
  const transcript = sha256(
    new Writer(160)
      .raw(PROTOCOL_LABEL)
      .bytes(chain, CHAIN_ID_BYTES_MAX)
      .fixed(lower, HELLO_BYTES)
      .fixed(higher, HELLO_BYTES)
      .finishOwned(),
  );
  const okm = Buffer.from(
    hkdfSync('sha256', secret, transcript, HKDF_INFO, 2 * (KEY_BYTES + NONCE_BYTES)),
  );
  const lowerCipher = new FrameCipher(
    okm.subarray(0, KEY_BYTES),
    okm.subarray(2 * KEY_BYTES, 2 * KEY_BYTES + NONCE_BYTES),
  );
  const higherCipher = new FrameCipher(
    okm.subarray(KEY_BYTES, 2 * KEY_BYTES),
    okm.subarray(2 * KEY_BYTES + NONCE_BYTES),
  );
  return order < 0
    ? { transcript, sender: lowerCipher, receiver: higherCipher }
    : { transcript, sender: higherCipher, receiver: lowerCipher };
}

export const AUTH_BYTES = 32 + 64;

/** Our static key and its signature of the transcript. */
export function encodeAuth(key: KeyPair, chainId: string, transcript: Uint8Array): Uint8Array {
  const signature = sign(key, chainId, SIGN_KIND.handshake, transcript);
  return new Writer(AUTH_BYTES).fixed(key.publicKey, 32).fixed(signature, 64).finishOwned();
}

/** The peer's static key if its auth payload is well formed and its signature valid, else null. */
export function checkAuth(
  bytes: Uint8Array,
  chainId: string,
  transcript: Uint8Array,
): Uint8Array | null {
  try {
    const r = new Reader(bytes);
    const publicKey = r.fixedCopy('auth.publicKey', 32);
    const signature = r.fixedCopy('auth.signature', 64);
    r.done('auth');
    return verify(publicKey, chainId, SIGN_KIND.handshake, transcript, signature)
      ? publicKey
      : null;
  } catch {
    return null;
  }
}

/** One direction's ChaCha20-Poly1305 key with its frame counter. */
export class FrameCipher {
  private readonly key: Buffer;
  private readonly nonceBase: Buffer;
  private readonly nonce = Buffer.alloc(NONCE_BYTES);
  private counter = 0;

  constructor(key: Buffer, nonceBase: Buffer) {
    assert(key.length === KEY_BYTES && nonceBase.length === NONCE_BYTES, 'frame key sizes');
    this.key = Buffer.from(key);
    this.nonceBase = Buffer.from(nonceBase);
  }

  /** Frames used so far: the next frame's counter. */
  frames(): number {
    return this.counter;
  }

  private nextNonce(): Buffer {
    assert(this.counter < FRAME_COUNTER_MAX, 'frame counter exhausted');
    const high = Math.floor(this.counter / 0x1_0000_0000);
    const low = this.counter >>> 0;
    this.nonceBase.copy(this.nonce);
    this.nonce.writeUInt32BE((this.nonce.readUInt32BE(4) ^ high) >>> 0, 4);
    this.nonce.writeUInt32BE((this.nonce.readUInt32BE(8) ^ low) >>> 0, 8);
    this.counter++;
    return this.nonce;
  }

  /**
   * The whole frame: length, ciphertext, tag. With `kind`, the plaintext is
   * that byte then `plaintext`, encrypted in one pass without copying the message.
   */
  seal(plaintext: Uint8Array, kind: number | null = null): Buffer {
    const plainLength = plaintext.length + (kind === null ? 0 : 1);
    const bodyLength = plainLength + TAG_BYTES;
    const frame = Buffer.allocUnsafe(LENGTH_BYTES + bodyLength);
    frame.writeUInt32BE(bodyLength, 0);
    let plain = plaintext;
    if (kind !== null) {
      // The kind byte then the message, encrypted in place where the ciphertext goes.
      const staged = frame.subarray(LENGTH_BYTES, LENGTH_BYTES + plainLength);
      staged[0] = kind;
      staged.set(plaintext, 1);
      plain = staged;
    }
    const written = sodium.crypto_aead_chacha20poly1305_ietf_encrypt(
      frame.subarray(LENGTH_BYTES),
      plain,
      frame.subarray(0, LENGTH_BYTES),
      null,
      this.nextNonce(),
      this.key,
    );
    assert(written === bodyLength, 'a stream cipher keeps the length');
    return frame;
  }

  /**
   * The plaintext of a frame body (ciphertext then tag) whose length prefix
   * was `bodyLength`, or null if it fails authentication. A failure still
   * consumes the counter: the connection must be closed.
   */
  open(bodyLength: number, body: Uint8Array): Uint8Array | null {
    if (body.length !== bodyLength || bodyLength < TAG_BYTES) return null;
    const aad = Buffer.alloc(LENGTH_BYTES);
    aad.writeUInt32BE(bodyLength, 0);
    const nonce = this.nextNonce();
    const out = new Uint8Array(bodyLength - TAG_BYTES);
    try {
      sodium.crypto_aead_chacha20poly1305_ietf_decrypt(out, null, body, aad, nonce, this.key);
    } catch {
      // libsodium throws when the tag does not verify.
      return null;
    }
    return out;
  }
}

/** A clear frame (the hello): length then bytes. */
export function clearFrame(bytes: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(LENGTH_BYTES + bytes.length);
  frame.writeUInt32BE(bytes.length, 0);
  frame.set(bytes, LENGTH_BYTES);
  return frame;
}

/**
 * Pieces of an incomplete frame held as they came before they are copied into
 * one buffer of the frame's size. Each socket read is a Buffer object of about
 * 150 bytes: a peer trickling a largest frame a byte per read would otherwise
 * cost over a gigabyte of them.
 */
const PIECES_MAX = 64;

/**
 * Splits a byte stream into frames. A length above the limit is reported as
 * soon as its four bytes arrive, before any of the body is buffered. A frame
 * arriving in many small reads is gathered into one buffer of its size
 * (`staging`) as it comes, so what it holds is its bytes, not an object per read.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** The current frame (length prefix and body) being filled, once it came in too many pieces. */
  private staging: Buffer | null = null;
  private staged = 0;
  maxBytes: number;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.buffered += chunk.length;
    const staging = this.staging;
    if (staging === null) {
      this.chunks.push(chunk);
      return;
    }
    const taken = Math.min(chunk.length, staging.length - this.staged);
    chunk.copy(staging, this.staged, 0, taken);
    this.staged += taken;
    if (this.staged < staging.length) return;
    // Complete: the frame, then whatever of the stream followed it.
    this.staging = null;
    this.chunks = taken < chunk.length ? [staging, chunk.subarray(taken)] : [staging];
  }

  /** Buffer objects held (for tests: a trickled frame must not cost one per read). */
  chunksHeld(): number {
    return this.chunks.length + (this.staging === null ? 0 : 1);
  }

  /** The next frame body, null if incomplete, or 'oversize'. */
  next(): Buffer | null | 'oversize' {
    if (this.staging !== null || this.buffered < LENGTH_BYTES) return null;
    if (this.chunks[0]!.length < LENGTH_BYTES) this.chunks = [Buffer.concat(this.chunks)];
    const length = this.chunks[0]!.readUInt32BE(0);
    if (length > this.maxBytes) return 'oversize';
    const total = LENGTH_BYTES + length;
    if (this.buffered < total) {
      if (this.chunks.length > PIECES_MAX) {
        // Every byte held belongs to this frame (it is incomplete).
        const staging = Buffer.allocUnsafe(total);
        this.staged = 0;
        for (const piece of this.chunks) {
          piece.copy(staging, this.staged);
          this.staged += piece.length;
        }
        this.staging = staging;
        this.chunks = [];
      }
      return null;
    }
    if (this.chunks[0]!.length < total) this.chunks = [Buffer.concat(this.chunks)];
    const first = this.chunks[0]!;
    const body = first.subarray(LENGTH_BYTES, total);
    if (first.length === total) this.chunks.shift();
    else this.chunks[0] = first.subarray(total);
    this.buffered -= total;
    return body;
  }
}
