import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { daysFromCivil } from '../../../src/exchange/instruments/calendar.ts';
import type { Instrument } from '../../../src/exchange/instruments/names.ts';
import {
  InstrumentError,
  expiryMsOf,
  formatInstrument,
  parseInstrument,
} from '../../../src/exchange/instruments/names.ts';

test('Deribit names parse', () => {
  assert.deepEqual(parseInstrument('BTC-PERPETUAL'), { kind: 'perpetual', underlying: 'BTC' });
  assert.deepEqual(parseInstrument('BTC-27DEC26'), {
    kind: 'future',
    underlying: 'BTC',
    expiryDay: daysFromCivil(2026, 12, 27),
  });
  assert.deepEqual(parseInstrument('ETH-5JAN27'), {
    kind: 'future',
    underlying: 'ETH',
    expiryDay: daysFromCivil(2027, 1, 5),
  });
  assert.deepEqual(parseInstrument('BTC-27DEC26-60000-C'), {
    kind: 'option',
    underlying: 'BTC',
    expiryDay: daysFromCivil(2026, 12, 27),
    strikeQuote: 60_000_000_000n,
    isCall: true,
  });
  assert.equal(parseInstrument('ETH-29FEB28-3500-P').kind, 'option');
  assert.equal(expiryMsOf(parseInstrument('BTC-27DEC26')), Date.UTC(2026, 11, 27, 8));
});

test('bad names are refused with BadInstrumentName', () => {
  for (const name of [
    '',
    'btc-27DEC26',
    'BTC-05JAN27',
    'BTC-27Dec26',
    'BTC-32DEC26',
    'BTC-29FEB27',
    'BTC-27DEC2026',
    'BTC-27DEC26-060000-C',
    'BTC-27DEC26-0-C',
    'BTC-27DEC26-60000-X',
    'BTC-27DEC26-60000',
    'BTC-27DEC26-60000.5-C',
    'BTC-27XYZ26',
    'BTC',
    'BTC-PERPETUAL-C',
    '-27DEC26',
    'BTC-27DEC26-10000000000000-C',
    'A'.repeat(60),
  ]) {
    assert.throws(
      () => parseInstrument(name),
      (e) => e instanceof InstrumentError && e.code === 'BadInstrumentName',
      name,
    );
  }
});

test('format ∘ parse is the identity on instruments, and parse ∘ format on names', () => {
  const instrument: fc.Arbitrary<Instrument> = fc.oneof(
    fc.record({
      kind: fc.constant('future' as const),
      underlying: fc.constantFrom('BTC', 'ETH', 'SOL2'),
      expiryDay: fc.integer({ min: daysFromCivil(2000, 1, 1), max: daysFromCivil(2099, 12, 31) }),
    }),
    fc.record({
      kind: fc.constant('option' as const),
      underlying: fc.constantFrom('BTC', 'ETH'),
      expiryDay: fc.integer({ min: daysFromCivil(2000, 1, 1), max: daysFromCivil(2099, 12, 31) }),
      strikeQuote: fc.bigInt({ min: 1n, max: 10n ** 12n }).map((s) => s * 1_000_000n),
      isCall: fc.boolean(),
    }),
  );
  fc.assert(
    fc.property(instrument, (i) => {
      const name = formatInstrument(i);
      assert.deepEqual(parseInstrument(name), { ...i });
      assert.equal(formatInstrument(parseInstrument(name)), name);
    }),
  );
});

test('instruments without a name are refused', () => {
  assert.throws(
    () =>
      formatInstrument({ kind: 'future', underlying: 'BTC', expiryDay: daysFromCivil(2100, 1, 1) }),
    InstrumentError,
  );
  assert.throws(
    () =>
      formatInstrument({
        kind: 'option',
        underlying: 'BTC',
        expiryDay: 20_000,
        strikeQuote: 1_500_000n,
        isCall: true,
      }),
    InstrumentError,
  );
});
