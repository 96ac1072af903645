// Reads the mpmath reference (test/fixtures/math/reference.json, written by
// reference.py beside it) and compares our wads with it in exact integers.
import { readFileSync } from 'node:fs';
import { fromDecimal } from '../../src/math/index.ts';

export interface OptionCase {
  spot: string;
  strike: string;
  timeYears: string;
  vol: string;
  rate: string;
  isCall: boolean;
  expected: Record<GreekName, string>;
}

export type GreekName = 'price' | 'delta' | 'gamma' | 'vega' | 'theta' | 'rho' | 'vanna' | 'volga';
export const GREEK_NAMES: GreekName[] = [
  'price',
  'delta',
  'gamma',
  'vega',
  'theta',
  'rho',
  'vanna',
  'volga',
];

export interface Reference {
  decimals: number;
  options: OptionCase[];
  functions: Record<'exp' | 'ln' | 'sqrt' | 'normCdf' | 'normPdf', Array<{ x: string; y: string }>>;
}

export const reference: Reference = JSON.parse(
  readFileSync(new URL('../fixtures/math/reference.json', import.meta.url), 'utf8'),
) as Reference;

/** Reference values are exact decimals with 27 decimals: as integers at 10^27. */
export const REF_DECIMALS = 27;
export const REF_SCALE = 10n ** 27n;
/** A wad to the reference scale. */
export const WAD_TO_REF = 10n ** 9n;

export function parseRef(s: string): bigint {
  const negative = s.startsWith('-');
  const [whole = '', fraction = ''] = (negative ? s.slice(1) : s).split('.');
  const v = BigInt(whole) * REF_SCALE + BigInt(fraction.padEnd(REF_DECIMALS, '0'));
  return negative ? -v : v;
}

export function inputsOf(c: OptionCase) {
  return {
    spot: fromDecimal(c.spot),
    strike: fromDecimal(c.strike),
    timeYears: fromDecimal(c.timeYears),
    vol: fromDecimal(c.vol),
    rate: fromDecimal(c.rate),
    isCall: c.isCall,
  };
}

export const abs = (x: bigint): bigint => (x < 0n ? -x : x);
