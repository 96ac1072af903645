// Keys and signature checks for the simulated validators. Two schemes behind
// the same ports: real Ed25519 (what production runs) and a keyed hash
// ("fast": unforgeable only inside one simulator, used for long runs and the
// swarm). Either way the verifier is shared by every replica and memoized: N
// replicas check the same signature over the same bytes, and the simulator
// does that work once.

import { createHash, hash } from 'node:crypto';
import { keyPairFromSeed, sha256, sign, verify } from '../crypto/index.ts';
import type { ConsensusSignKind, Signer, Verifier } from '../consensus/index.ts';
import { bytesEqual, toHex, utf8 } from '../lib/bytes.ts';
import { SIM_VERIFY_MEMO_GENERATION_ENTRIES } from '../lib/limits.ts';

export type CryptoScheme = 'fast' | 'ed25519';

export interface SimKey {
  readonly publicKey: Uint8Array;
  readonly signer: Signer;
}

interface MemoEntry {
  readonly signature: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly kind: number;
  readonly message: Uint8Array;
  readonly ok: boolean;
}

export interface VerifyStats {
  /** verify() calls by all replicas. */
  calls: number;
  /** Signature checks actually computed (memo misses, or every call with the memo off). */
  computed: number;
}

export class SimCrypto implements Verifier {
  readonly stats: VerifyStats = { calls: 0, computed: 0 };
  private readonly secrets = new Map<string, Uint8Array>();
  // Two generations: a check is asked within a few heights of the signature
  // (its votes, then the next block's certificate), so the young map and the
  // one before it hold every entry still asked for, and an old generation dies
  // whole. A long-lived memo kept each entry's sign bytes, and the 64 KiB codec
  // slab they are carved from, alive for the whole run: the garbage collector
  // then copied and marked them over and over.
  private memo = new Map<number, MemoEntry>();
  private memoOld = new Map<number, MemoEntry>();
  private readonly chainIdBytes: Uint8Array;

  constructor(
    readonly scheme: CryptoScheme,
    readonly chainId: string,
    readonly memoize: boolean,
    /** Distinguishes the keys of different runs (the seed); equal salts give equal keys. */
    private readonly salt: string,
  ) {
    this.chainIdBytes = utf8(chainId);
  }

  key(index: number): SimKey {
    const seed = sha256(utf8(`zomma-sim-key/${this.salt}/${index}`));
    if (this.scheme === 'ed25519') {
      const pair = keyPairFromSeed(seed);
      const chainId = this.chainId;
      return {
        publicKey: pair.publicKey,
        signer: {
          publicKey: pair.publicKey,
          sign: (kind, m) => this.signed(pair.publicKey, kind, m, sign(pair, chainId, kind, m)),
        },
      };
    }
    const publicKey = sha256(utf8('zomma-sim-public'), seed);
    this.secrets.set(toHex(publicKey), seed);
    return {
      publicKey,
      signer: {
        publicKey,
        sign: (kind, message) =>
          this.signed(publicKey, kind, message, this.fastSign(seed, kind, message)),
      },
    };
  }

  /**
   * A signature just made is valid for exactly its (key, kind, message): with
   * the memo on, it goes in as checked, so the replicas that verify it find it
   * there and no signature is both made and checked (half the hashing).
   */
  private signed(
    publicKey: Uint8Array,
    kind: number,
    message: Uint8Array,
    signature: Uint8Array,
  ): Uint8Array {
    if (this.memoize) this.remember(publicKey, kind, message, signature, true);
    return signature;
  }

  private remember(
    publicKey: Uint8Array,
    kind: number,
    message: Uint8Array,
    signature: Uint8Array,
    ok: boolean,
  ): void {
    if (this.memo.size >= SIM_VERIFY_MEMO_GENERATION_ENTRIES) {
      this.memoOld = this.memo;
      this.memo = new Map();
    }
    // Not copied: the core hands the verifier sign bytes it built itself
    // (Writer.finish results that nothing writes to again), and keeping the
    // very object lets the next replica's check hit on identity.
    this.memo.set(signatureId(signature), { signature, publicKey, kind, message, ok });
  }

  verify(
    publicKey: Uint8Array,
    kind: ConsensusSignKind,
    message: Uint8Array,
    signature: Uint8Array,
  ): boolean {
    this.stats.calls++;
    if (!this.memoize) return this.compute(publicKey, kind, message, signature);
    // A signature names its (key, message) pair; the stored bytes are compared, never trusted.
    const id = signatureId(signature);
    const hit = this.memo.get(id) ?? this.memoOld.get(id);
    // Identity first: every replica gets the same decoded vote, so the same
    // signature, key and sign-bytes objects; the byte comparisons are the fallback.
    if (
      hit !== undefined &&
      hit.kind === kind &&
      (hit.signature === signature || bytesEqual(hit.signature, signature)) &&
      (hit.publicKey === publicKey || bytesEqual(hit.publicKey, publicKey)) &&
      (hit.message === message || bytesEqual(hit.message, message))
    ) {
      return hit.ok;
    }
    const ok = this.compute(publicKey, kind, message, signature);
    this.remember(publicKey, kind, message, signature, ok);
    return ok;
  }

  private compute(
    publicKey: Uint8Array,
    kind: ConsensusSignKind,
    message: Uint8Array,
    signature: Uint8Array,
  ): boolean {
    this.stats.computed++;
    if (this.scheme === 'ed25519') return verify(publicKey, this.chainId, kind, message, signature);
    const secret = this.secrets.get(toHex(publicKey));
    if (secret === undefined || signature.length !== 64) return false;
    return bytesEqual(this.fastSign(secret, kind, message), signature);
  }

  /** SHA-512 keyed by the secret: one native call gives all 64 bytes of a signature. */
  private fastSign(secret: Uint8Array, kind: number, message: Uint8Array): Uint8Array {
    const out = new Uint8Array(64);
    const length = secret.length + this.chainIdBytes.length + 1 + message.length;
    if (ONE_SHOT && length <= signScratch.length) {
      // The pieces laid end to end and hashed in one call: a third cheaper than
      // a Hash object fed four updates, and the same digest.
      signScratch.set(secret, 0);
      signScratch.set(this.chainIdBytes, secret.length);
      signScratch[secret.length + this.chainIdBytes.length] = kind;
      signScratch.set(message, length - message.length);
      out.set(hash('sha512', new Uint8Array(signScratch.buffer, 0, length), 'buffer'));
      return out;
    }
    const h = createHash('sha512');
    h.update(secret).update(this.chainIdBytes).update(KIND_BYTES[kind]!).update(message);
    out.set(h.digest());
    return out;
  }
}

/** crypto.hash, the one-shot digest, came in Node 20.12. */
const ONE_SHOT = typeof hash === 'function';
/** Sign bytes of votes and proposal headers fit; a larger message takes the streaming hash. */
const signScratch = new Uint8Array(4096);

const KIND_BYTES = Array.from({ length: 256 }, (_, k) => Uint8Array.of(k));

/**
 * 30 bits of the signature as a map key: a small integer, which a Map hashes
 * far faster than a wider number. The entry's bytes are compared on a hit, so
 * a clash only costs a check (and replaces the entry).
 */
function signatureId(signature: Uint8Array): number {
  if (signature.length < 4) return -1;
  const s = signature;
  return s[0]! | (s[1]! << 8) | (s[2]! << 16) | ((s[3]! & 0x3f) << 24);
}
