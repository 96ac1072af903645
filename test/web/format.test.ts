// Exact formatting of quote amounts, prices and sizes (bigint, no floats).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { InstrumentView } from '../../src/api/view.ts';
import {
  formatPpm,
  formatPrice,
  formatQuote,
  formatRatio,
  formatScaled,
  formatSize,
  lotDecimals,
  tickDecimals,
} from '../../src/web/format.ts';

const BTC: InstrumentView = {
  instrument: 'BTC-PERPETUAL',
  kind: 'perpetual',
  underlying: 'BTC',
  tickSizeQuote: '500000',
  lotsPerBase: 1000,
  minSizeLots: 1,
  maxSizeLots: 1_000_000,
  status: 'trading',
};

test('quote amounts', () => {
  assert.equal(formatQuote('1000500000'), '1,000.50');
  assert.equal(formatQuote('-500000'), '−0.50');
  assert.equal(formatQuote('-4000', 2), '0.00', 'no minus sign on a value shown as zero');
  assert.equal(formatQuote('123456789012345678901234'), '123,456,789,012,345,678.90');
  assert.equal(formatQuote('12', 6), '0.000012');
  assert.equal(formatQuote('1e6'), '—');
});

test('prices, sizes, rates', () => {
  assert.equal(tickDecimals('500000'), 1);
  assert.equal(tickDecimals('1000000'), 0);
  assert.equal(tickDecimals('1'), 6);
  assert.equal(formatPrice(120_001, BTC), '60,000.5');
  assert.equal(formatPrice(undefined, BTC), '—');
  assert.equal(lotDecimals(1000), 3);
  assert.equal(lotDecimals(1), 0);
  assert.equal(formatSize(2_500, BTC), '2.500');
  assert.equal(formatSize(-25, BTC), '−0.025');
  assert.equal(formatPpm(125), '0.0125%');
  assert.equal(formatPpm(-40), '−0.0040%');
  assert.equal(formatRatio('30000000000', '253884780000'), '11.81%');
  assert.equal(formatRatio('1', '0'), '—');
});

test('formatScaled matches the decimal digits of the integer', () => {
  fc.assert(
    fc.property(fc.bigInt(-(10n ** 30n), 10n ** 30n), fc.integer({ min: 0, max: 8 }), (v, d) => {
      const text = formatScaled(v, 8, d).replace(/,/g, '').replace('−', '-');
      const abs = v < 0n ? -v : v;
      const digits = abs.toString().padStart(9, '0');
      const whole = BigInt(digits.slice(0, -8));
      const frac = digits.slice(-8).slice(0, d);
      const expected = d > 0 ? `${whole}.${frac}` : `${whole}`;
      const shownZero = !/[1-9]/.test(expected);
      assert.equal(text, (v < 0n && !shownZero ? '-' : '') + expected);
    }),
  );
});
