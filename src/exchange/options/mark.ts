// Option marks and greeks (docs/derivatives.md, "Option marks"):
//   T     = (expiry − now) / (365 days), floored to the math module's minimum
//   F     = the futures mark of the expiry if there is one, else index × e^(rT)
//   σ     = SVI implied volatility of the expiry's smile at k = ln(K / F)
//   mark  = Black–Scholes on spot F e^(−rT), strike K, rate r, volatility σ
// Prices are in quote units per whole base unit, exchanged with the math
// module's SCALE at 10^12 wads per quote unit; the mark rounds half to even.
// Cost: one Black–Scholes evaluation (~7 µs) plus the smile (one ln, two sqrt).

import { assert } from '../../lib/assert.ts';
import { divBig } from '../../lib/int.ts';
import { MATH_TIME_YEARS_WAD_MIN } from '../../lib/limits.ts';
import type { Greeks } from '../../math/index.ts';
import { SCALE, blackScholes, exp } from '../../math/index.ts';
import type { SviParams } from './svi.ts';
import { sviImpliedVol } from './svi.ts';

/** Wads in one quote unit (quote units have 6 decimals, wads 18). */
export const WAD_PER_QUOTE = 1_000_000_000_000n;
export const MS_PER_YEAR = 365 * 86_400_000;

export function quoteToWad(x: bigint): bigint {
  return x * WAD_PER_QUOTE;
}

export function wadToQuote(x: bigint): bigint {
  return divBig(x, WAD_PER_QUOTE, 'halfEven');
}

/** Time to expiry in years at SCALE, at least the math module's minimum. */
export function timeYearsWad(nowMs: number, expiryMs: number): bigint {
  const t = divBig(BigInt(expiryMs - nowMs) * SCALE, BigInt(MS_PER_YEAR), 'floor');
  return t < MATH_TIME_YEARS_WAD_MIN ? MATH_TIME_YEARS_WAD_MIN : t;
}

/** index × e^(rT), quote units, half to even. */
export function forwardFromIndex(indexQuote: bigint, rateWad: bigint, timeYears: bigint): bigint {
  const growth = exp(divBig(rateWad * timeYears, SCALE, 'halfEven'));
  return divBig(indexQuote * growth, SCALE, 'halfEven');
}

export interface OptionMarkInput {
  /** Forward for the expiry, quote units per whole base unit (futures mark, or forwardFromIndex). */
  readonly forwardQuote: bigint;
  readonly strikeQuote: bigint;
  readonly isCall: boolean;
  readonly nowMs: number;
  readonly expiryMs: number;
  /** Continuously compounded rate at SCALE (0 is the usual choice for crypto). */
  readonly rateWad: bigint;
  readonly svi: SviParams;
}

export interface OptionMark {
  /** Mark price, quote units per whole base unit. */
  readonly markQuote: bigint;
  readonly ivWad: bigint;
  readonly timeYearsWad: bigint;
  /** Greeks at SCALE per whole base unit, as src/math publishes them (docs/math.md). */
  readonly greeks: Greeks;
}

/** Mark and greeks of a live option; an option at or past expiry is marked at its intrinsic value. */
export function optionMark(input: OptionMarkInput): OptionMark {
  assert(input.forwardQuote > 0n && input.strikeQuote > 0n, 'forward and strike are positive');
  const t = timeYearsWad(input.nowMs, input.expiryMs);
  const vol = sviImpliedVol(
    input.svi,
    quoteToWad(input.forwardQuote),
    quoteToWad(input.strikeQuote),
    t,
  );
  if (input.expiryMs <= input.nowMs) {
    const greeks = optionMarkAtVol(input, t, vol).greeks;
    const intrinsic = input.isCall
      ? input.forwardQuote - input.strikeQuote
      : input.strikeQuote - input.forwardQuote;
    return { markQuote: intrinsic > 0n ? intrinsic : 0n, ivWad: vol, timeYearsWad: t, greeks };
  }
  return optionMarkAtVol(input, t, vol);
}

/**
 * The mark and greeks at a given time to expiry and volatility: the part of
 * optionMark after the smile. A mark kept in the state (a genesis
 * markIntervalMs) stores its forward, time and volatility and is rebuilt
 * from them with this, to the same bytes.
 */
export function optionMarkAtVol(
  input: Pick<OptionMarkInput, 'forwardQuote' | 'strikeQuote' | 'isCall' | 'rateWad'>,
  timeYears: bigint,
  volWad: bigint,
): OptionMark {
  const discount = exp(-divBig(input.rateWad * timeYears, SCALE, 'halfEven'));
  const spot = divBig(quoteToWad(input.forwardQuote) * discount, SCALE, 'halfEven');
  const greeks = blackScholes({
    spot,
    strike: quoteToWad(input.strikeQuote),
    timeYears,
    rate: input.rateWad,
    isCall: input.isCall,
    vol: volWad,
  });
  return { markQuote: wadToQuote(greeks.price), ivWad: volWad, timeYearsWad: timeYears, greeks };
}
