import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quoteDecimal } from '../../src/exchange/units.ts';

test('quoteDecimal: quote units as the quote asset with six places, exact', () => {
  assert.equal(quoteDecimal(1_500_000n), '1.500000');
  assert.equal(quoteDecimal(6_010_610_060_106_100n), '6010610060.106100');
  assert.equal(quoteDecimal(-1n), '-0.000001');
  assert.equal(quoteDecimal(0), '0.000000');
});
