// A validator's oracle observation (docs/derivatives.md, "Oracle"): index
// prices and per-expiry volatility smiles, carried as the vote extension of its
// precommit (signed with the vote, src/consensus Vote.extension). The block
// after a height carries the extensions of the commit that finalized it.
//
// Canonical encoding (src/codec):
//   u8 format (1) · uvarint timeMs
//   uvarint n · n × (string underlying · uvarint priceQuote)          underlyings strictly ascending
//   uvarint s · s × (string underlying · uvarint expiryMs · 5 × ivarint SVI wad)
//                                                                     (underlying, expiryMs) strictly ascending
// An empty extension means "no observation". Everything else must decode
// exactly, validate, and fit VOTE_EXTENSION_BYTES_MAX; otherwise DecodeError or
// OracleError('BadObservation') naming the field.

import type { Reader, Writer } from '../../codec/wire.ts';
import type { Codec } from '../../codec/wire.ts';
import { decode, encode } from '../../codec/wire.ts';
import { ZommaError } from '../../lib/errors.ts';
import {
  OBSERVATION_PRICES_MAX,
  OBSERVATION_SMILES_MAX,
  VOTE_EXTENSION_BYTES_MAX,
} from '../../lib/limits.ts';
import { isUnderlying } from '../instruments/names.ts';
import type { SviParams } from '../options/svi.ts';
import { SviError, validateSvi } from '../options/svi.ts';

export class OracleError extends ZommaError<'BadObservation'> {
  constructor(field: string, reason: string) {
    super('BadObservation', `${field}: ${reason}`);
  }
}

export interface PriceObservation {
  /** 'BTC'. */
  readonly underlying: string;
  /** Quote units per whole base unit. */
  readonly priceQuote: bigint;
}

export interface SmileObservation {
  readonly underlying: string;
  /** The expiry the smile is for (block time, ms). */
  readonly expiryMs: number;
  readonly svi: SviParams;
}

export interface OracleObservation {
  /** When the validator observed (its clock, ms): fresh only near block time. */
  readonly timeMs: number;
  readonly prices: readonly PriceObservation[];
  readonly smiles: readonly SmileObservation[];
}

const FORMAT = 1;
/** Bits of an observed price (quote units). */
export const OBSERVED_PRICE_BITS = 96;
/** Bits of an SVI parameter (wads; validation bounds them to ±10 · 10^18, about 2^67). */
const SVI_BITS = 72;

/** Throws OracleError naming the first field that breaks a rule. */
export function validateObservation(o: OracleObservation): void {
  if (!Number.isSafeInteger(o.timeMs) || o.timeMs < 0) {
    throw new OracleError('timeMs', 'must be a non-negative integer');
  }
  if (o.prices.length > OBSERVATION_PRICES_MAX) {
    throw new OracleError('prices', `at most ${OBSERVATION_PRICES_MAX}`);
  }
  let previous = '';
  o.prices.forEach((p, i) => {
    if (!isUnderlying(p.underlying))
      throw new OracleError(`prices[${i}].underlying`, 'not a valid name');
    if (i > 0 && p.underlying <= previous) {
      throw new OracleError(`prices[${i}].underlying`, 'underlyings must strictly ascend');
    }
    previous = p.underlying;
    if (
      typeof p.priceQuote !== 'bigint' ||
      p.priceQuote <= 0n ||
      p.priceQuote >> BigInt(OBSERVED_PRICE_BITS) !== 0n
    ) {
      throw new OracleError(`prices[${i}].priceQuote`, `must be in (0, 2^${OBSERVED_PRICE_BITS})`);
    }
  });
  if (o.smiles.length > OBSERVATION_SMILES_MAX) {
    throw new OracleError('smiles', `at most ${OBSERVATION_SMILES_MAX}`);
  }
  o.smiles.forEach((s, i) => {
    const f = `smiles[${i}]`;
    if (!isUnderlying(s.underlying)) throw new OracleError(`${f}.underlying`, 'not a valid name');
    if (!Number.isSafeInteger(s.expiryMs) || s.expiryMs < 0) {
      throw new OracleError(`${f}.expiryMs`, 'must be a non-negative integer');
    }
    if (i > 0) {
      const p = o.smiles[i - 1]!;
      if (
        p.underlying > s.underlying ||
        (p.underlying === s.underlying && p.expiryMs >= s.expiryMs)
      ) {
        throw new OracleError(f, '(underlying, expiryMs) must strictly ascend');
      }
    }
    try {
      validateSvi(s.svi, `${f}.svi`);
    } catch (e) {
      if (e instanceof SviError) throw new OracleError(f, e.message);
      throw e;
    }
  });
}

export const observationCodec: Codec<OracleObservation> = {
  write(w: Writer, o: OracleObservation): void {
    w.u8(FORMAT).uvarint(o.timeMs);
    w.uvarint(o.prices.length);
    for (const p of o.prices) w.string(p.underlying, 16).uvarintBig(p.priceQuote);
    w.uvarint(o.smiles.length);
    for (const s of o.smiles) {
      w.string(s.underlying, 16).uvarint(s.expiryMs);
      w.ivarintBig(s.svi.a).ivarintBig(s.svi.b).ivarintBig(s.svi.rho);
      w.ivarintBig(s.svi.m).ivarintBig(s.svi.sigma);
    }
  },
  read(r: Reader, field: string): OracleObservation {
    const previous = r.enter(field);
    if (r.u8('format') !== FORMAT) throw r.error('format', `unknown format`);
    const timeMs = r.uvarint('timeMs');
    const prices: PriceObservation[] = [];
    const n = r.uvarint('prices', OBSERVATION_PRICES_MAX);
    for (let i = 0; i < n; i++) {
      prices.push({
        underlying: r.string('prices.underlying', 16),
        priceQuote: r.uvarintBig('prices.priceQuote', OBSERVED_PRICE_BITS),
      });
    }
    const smiles: SmileObservation[] = [];
    const s = r.uvarint('smiles', OBSERVATION_SMILES_MAX);
    for (let i = 0; i < s; i++) {
      const underlying = r.string('smiles.underlying', 16);
      const expiryMs = r.uvarint('smiles.expiryMs');
      const svi = {
        a: r.ivarintBig('smiles.a', SVI_BITS),
        b: r.ivarintBig('smiles.b', SVI_BITS),
        rho: r.ivarintBig('smiles.rho', SVI_BITS),
        m: r.ivarintBig('smiles.m', SVI_BITS),
        sigma: r.ivarintBig('smiles.sigma', SVI_BITS),
      };
      smiles.push({ underlying, expiryMs, svi });
    }
    r.leave(previous);
    return { timeMs, prices, smiles };
  },
};

/** The vote extension for an observation; throws OracleError if it is invalid or too large. */
export function encodeObservation(o: OracleObservation): Uint8Array {
  validateObservation(o);
  const bytes = encode(observationCodec, o);
  if (bytes.length > VOTE_EXTENSION_BYTES_MAX) {
    throw new OracleError(
      'observation',
      `${bytes.length} bytes exceed ${VOTE_EXTENSION_BYTES_MAX}`,
    );
  }
  return bytes;
}

/** The observation in a vote extension: null for an empty one; throws DecodeError or OracleError. */
export function decodeObservation(bytes: Uint8Array): OracleObservation | null {
  if (bytes.length === 0) return null;
  if (bytes.length > VOTE_EXTENSION_BYTES_MAX) {
    throw new OracleError(
      'observation',
      `${bytes.length} bytes exceed ${VOTE_EXTENSION_BYTES_MAX}`,
    );
  }
  const o = decode(observationCodec, bytes, 'observation');
  validateObservation(o);
  return o;
}
