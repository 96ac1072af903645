// The standard normal CDF N(x) and density n(x) in internal fixed point.
//
// A table of Taylor expansions of the upper tail Q(t) = N(-t) = 1 - N(t) at the
// nodes t_j = j/32, 0 <= j <= 416 (t up to 13; Q(13) < 2^-126, so beyond it the
// tail is zero at our precision). Its derivatives are known in closed form,
//   Q^(k)(t) = (-1)^k He_(k-1)(t) n(t)   (He: probabilists' Hermite polynomials),
// so each node stores the coefficients q_k = Q^(k)(t_j)/k!, and at run time
// Q(t_j + h), |h| <= 1/64, is one Horner pass: about 16 multiplications near
// t = 0 and fewer in the tail, where n(t) is small. The density uses the
// derivative of the same polynomial. Each node keeps only as many terms as its
// truncation bound needs (the omitted terms sum to less than 2^-120). The bound
// is absolute, yet a price multiplies the tail by K/S (up to 10^6) and by S:
// at 2^-102 a far out-of-the-money call on a large strike was off by tens of
// wads; at 2^-120, and with the tail cut at 13 rather than 12 (K Q(12) came to
// nearly 2 wads), the error stays below 10^-3 wad for every input at rate 0.
//
// The table is built when the module loads, at 192 bits: n(t_j) from
// 1/sqrt(2 pi) times powers of e^(-1/2048) (t_j^2/2 = j^2/2048), and Q(t_j) by
// stepping each node's full series (40 terms) to the next node from Q(0) = 1/2.
// He_k(j/32) 32^k is an integer, so the Hermite values are exact.

import { divBig, isqrtBig } from '../lib/int.ts';
import { expFix, LN2 } from './explog.ts';
import { FRAC_BITS, mul, ONE } from './fixed.ts';
import { expSmallPrecise, PI_PRECISE, PRECISE_BITS, PRECISE_ONE, toFrac } from './precise.ts';

const NODE_BITS = 5n; // nodes every 1/32
const NODE_SHIFT = FRAC_BITS - NODE_BITS;
const NODE_ROUND = 1n << (NODE_SHIFT - 1n);
const NODE_LAST = 416; // t = 13
const TAIL_END = 13n * ONE;
const LOAD_TERMS = 40;
/** Runtime |h| <= 2^-6; a node keeps terms until the rest sum below 2^-TRUNCATION_BITS. */
const H_BITS = 6n;
const TRUNCATION_BITS = 120n;

interface Node {
  /** Q(t_j + h) = sum cdf[k] h^k. */
  cdf: bigint[];
  /** n(t_j + h) = -Q'(t_j + h) = sum pdf[k] h^k. */
  pdf: bigint[];
}

/** How many leading coefficients to keep so that sum_{k >= kept} |c_k| 2^(-6k) < 2^-120. */
function termsNeeded(precise: bigint[]): number {
  const limit = PRECISE_ONE >> TRUNCATION_BITS;
  let tail = 0n;
  for (let k = precise.length - 1; k >= 0; k--) {
    const bound = (precise[k]! < 0n ? -precise[k]! : precise[k]!) >> (H_BITS * BigInt(k));
    if (tail + bound >= limit) return k + 1;
    tail += bound;
  }
  return 1;
}

const INV_SQRT_TWO_PI_PRECISE = divBig(
  PRECISE_ONE << PRECISE_BITS,
  isqrtBig((2n * PI_PRECISE) << PRECISE_BITS),
  'floor',
);
const INV_SQRT_TWO_PI = toFrac(INV_SQRT_TWO_PI_PRECISE);

function buildNodes(): Node[] {
  const stepOne = expSmallPrecise(-(PRECISE_ONE >> 11n)); // e^(-1/2048)
  const stepTwo = (stepOne * stepOne) >> PRECISE_BITS;
  const nodes: Node[] = [];
  let density = INV_SQRT_TWO_PI_PRECISE; // n(t_j)
  let ratio = stepOne; // n(t_(j+1)) / n(t_j) = e^(-(2j+1)/2048)
  let tail = PRECISE_ONE >> 1n; // Q(t_j)
  for (let j = 0; j <= NODE_LAST; j++) {
    // hermite[k] = He_k(j/32) 32^k, exactly.
    const hermite: bigint[] = [1n, BigInt(j)];
    for (let k = 1; k < LOAD_TERMS; k++) {
      hermite.push(BigInt(j) * hermite[k]! - BigInt(k) * 1024n * hermite[k - 1]!);
    }
    // q[k] = Q^(k)(t_j)/k! = (-1)^k He_(k-1)(t_j) n(t_j) / k!, at PRECISE_BITS.
    const q: bigint[] = [tail];
    let factorial = 1n;
    let next = tail;
    for (let k = 1; k <= LOAD_TERMS; k++) {
      factorial *= BigInt(k);
      const signed = (k % 2 === 0 ? 1n : -1n) * hermite[k - 1]! * density;
      const power = 32n ** BigInt(k - 1);
      q.push(divBig(signed, power * factorial, 'halfEven'));
      next += divBig(signed, power * 32n ** BigInt(k) * factorial, 'halfEven');
    }
    const p = q.slice(1).map((c, i) => -BigInt(i + 1) * c);
    nodes.push({
      cdf: q.slice(0, termsNeeded(q)).map(toFrac),
      pdf: p.slice(0, termsNeeded(p)).map(toFrac),
    });
    tail = next;
    density = (density * ratio) >> PRECISE_BITS;
    ratio = (ratio * stepTwo) >> PRECISE_BITS;
  }
  return nodes;
}

const NODES = buildNodes();

function horner(c: bigint[], h: bigint): bigint {
  let p = c[c.length - 1]!;
  for (let k = c.length - 2; k >= 0; k--) p = ((p * h) >> FRAC_BITS) + c[k]!;
  return p;
}

/** N(x) in internal fixed point. */
export function normCdfFix(x: bigint): bigint {
  const t = x < 0n ? -x : x;
  if (t >= TAIL_END) return x < 0n ? 0n : ONE;
  const j = (t + NODE_ROUND) >> NODE_SHIFT;
  const q = horner(NODES[Number(j)]!.cdf, t - (j << NODE_SHIFT));
  return x < 0n ? q : ONE - q;
}

/** n(x) = e^(-x^2/2) / sqrt(2 pi) in internal fixed point. */
export function normPdfFix(x: bigint): bigint {
  const t = x < 0n ? -x : x;
  if (t >= TAIL_END) return 0n;
  const j = (t + NODE_ROUND) >> NODE_SHIFT;
  return horner(NODES[Number(j)]!.pdf, t - (j << NODE_SHIFT));
}

/** The number of polynomial terms at each node (for the docs and the tests). */
export function normalTableTerms(): { cdf: number[]; pdf: number[] } {
  return { cdf: NODES.map((n) => n.cdf.length), pdf: NODES.map((n) => n.pdf.length) };
}

// --- the density in the tail, to relative precision ----------------------------
// The table holds n(t) to about 2^-125 absolutely: plenty for a price, but
// some greeks multiply the density by far more than the spot, volga by
// sqrt(T) d1 d2 / sigma (up to 10^7 per unit of spot). At t = 13, n(t) is
// about 2^-123, so the table keeps two or three of its bits and a volga on a
// spot of 10^15 was off by hundreds of wads. From PDF_TAIL_START on, the
// density is therefore given as a mantissa and a power of two, from one exp:
//   n(t) = e^(-t^2/2) / sqrt(2 pi) = 2^-shift e^(shift ln 2 - t^2/2) / sqrt(2 pi),
// with shift = floor((t^2/2) / ln 2), so the exp's argument lies in (-ln 2, 0].
// The error is that of ln 2 times the shift, under 2^-120 of the value.

/** Below this the table's absolute precision is also relative precision enough (n(8) > 2^-48). */
export const PDF_TAIL_START = 8n * ONE;
/** From here n(t) times any factor a greek applies (at most 10^8) is below 2^-128: 0. */
export const PDF_TAIL_END = 16n * ONE;

/** n(x) = mantissa × 2^-shift for PDF_TAIL_START <= |x| < PDF_TAIL_END; mantissa in (0.19, 0.4]. */
export interface ScaledDensity {
  mantissa: bigint;
  shift: bigint;
}

export function normPdfTailFix(x: bigint): ScaledDensity {
  const halfSquare = mul(x, x) >> 1n;
  const shift = divBig(halfSquare, LN2, 'floor');
  return { mantissa: mul(expFix(shift * LN2 - halfSquare), INV_SQRT_TWO_PI), shift };
}
