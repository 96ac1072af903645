import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quoteDecimal, quoteText } from '../../src/exchange/units.ts';

test('quoteDecimal: quote units as the quote asset with six places, exact', () => {
  assert.equal(quoteDecimal(1_500_000n), '1.500000');
  assert.equal(quoteDecimal(6_010_610_060_106_100n), '6010610060.106100');
  assert.equal(quoteDecimal(-1n), '-0.000001');
  assert.equal(quoteDecimal(0), '0.000000');
});

test('quoteText: quote units as whole USDC for messages, thousands grouped, the fraction without trailing zeros', () => {
  assert.equal(quoteText(1_000_000_000_000n), '1,000,000 USDC');
  assert.equal(quoteText(1_234_500_000n), '1,234.5 USDC');
  assert.equal(quoteText(999_999_999n), '999.999999 USDC');
  assert.equal(quoteText(1n), '0.000001 USDC');
  assert.equal(quoteText(0n), '0 USDC');
  assert.equal(quoteText(-12_345_678_000_000n), '-12,345,678 USDC');
});
