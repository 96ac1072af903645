// Bit-identical results in every process: 10,000 outputs (1,250 evaluations of
// price and seven greeks) over a seeded grid, hashed and compared with a digest
// committed here. A change to any bit of any output, on any machine or Node
// version, changes the digest. If the math is changed on purpose, the new
// digest is printed by the failing assertion; check the accuracy tests first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Prng } from '../../src/lib/prng.ts';
import { blackScholes, SCALE, toDecimal } from '../../src/math/index.ts';
import { GREEK_NAMES } from './reference.ts';

const EVALUATIONS = 1_250;
const DIGEST = 'a103315b5c105249866cb08c8ed9c0ac725d7a1283c5ab4905040cf29c16d520';

function wadBetween(prng: Prng, lo: bigint, hi: bigint): bigint {
  // 64 random bits spread over [lo, hi].
  const r = (BigInt(prng.nextU32()) << 32n) | BigInt(prng.nextU32());
  return lo + ((hi - lo) * r) / (1n << 64n);
}

test('10,000 outputs over a seeded grid hash to the committed digest', () => {
  const prng = new Prng(20240601n);
  const hash = createHash('sha256');
  let outputs = 0;
  for (let i = 0; i < EVALUATIONS; i++) {
    const spot = wadBetween(prng, SCALE, 100_000n * SCALE);
    const ratio = wadBetween(prng, SCALE / 5n, 5n * SCALE); // spot / strike
    const g = blackScholes({
      spot,
      strike: (spot * SCALE) / ratio,
      timeYears: wadBetween(prng, SCALE / 8760n, 3n * SCALE),
      vol: wadBetween(prng, SCALE / 20n, 4n * SCALE),
      rate: wadBetween(prng, -SCALE / 20n, SCALE / 5n),
      isCall: prng.chance(1, 2),
    });
    for (const name of GREEK_NAMES) {
      hash.update(`${toDecimal(g[name])}\n`);
      outputs++;
    }
  }
  assert.equal(outputs, 10_000);
  assert.equal(hash.digest('hex'), DIGEST);
});
