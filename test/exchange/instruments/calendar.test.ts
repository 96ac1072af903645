import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  civilFromDays,
  daysFromCivil,
  daysInMonth,
  expiryMsOfDay,
  firstExpiryDayAfter,
  fridayOnOrAfter,
  lastFridayOfMonth,
  weekdayFromDays,
} from '../../../src/exchange/instruments/calendar.ts';

// Computed independently with Python's datetime (proleptic Gregorian).
const KNOWN: [number, number, number, number, number][] = [
  // year, month, day, days since 1970-01-01, weekday (0 = Sunday)
  [1970, 1, 1, 0, 4],
  [1969, 12, 31, -1, 3],
  [2000, 2, 29, 11016, 2],
  [2000, 3, 1, 11017, 3],
  [1900, 3, 1, -25508, 4],
  [2024, 2, 29, 19782, 4],
  [2026, 12, 27, 20814, 0],
  [2027, 1, 5, 20823, 2],
  [2100, 3, 1, 47541, 1],
  [1600, 1, 1, -135140, 6],
  [9999, 12, 31, 2932896, 5],
];

test('known dates: days, civil date and weekday', () => {
  for (const [y, m, d, days, weekday] of KNOWN) {
    assert.equal(daysFromCivil(y, m, d), days, `${y}-${m}-${d}`);
    assert.deepEqual(civilFromDays(days), { year: y, month: m, day: d });
    assert.equal(weekdayFromDays(days), weekday, `${y}-${m}-${d} weekday`);
  }
});

test('last Fridays of known months', () => {
  const table: [number, number, number][] = [
    [2026, 12, 25],
    [2027, 3, 26],
    [2024, 2, 23],
    [2025, 1, 31],
    [2026, 6, 26],
  ];
  for (const [y, m, d] of table) {
    assert.deepEqual(civilFromDays(lastFridayOfMonth(y, m)), { year: y, month: m, day: d });
  }
});

test('leap years', () => {
  assert.equal(daysInMonth(2000, 2), 29);
  assert.equal(daysInMonth(1900, 2), 28);
  assert.equal(daysInMonth(2024, 2), 29);
  assert.equal(daysInMonth(2023, 2), 28);
});

test('civil ↔ days round-trips and consecutive days are consecutive dates', () => {
  fc.assert(
    fc.property(fc.integer({ min: -1_000_000, max: 3_000_000 }), (days) => {
      const c = civilFromDays(days);
      assert.equal(daysFromCivil(c.year, c.month, c.day), days);
      const next = civilFromDays(days + 1);
      if (c.day < daysInMonth(c.year, c.month)) {
        assert.deepEqual(next, { year: c.year, month: c.month, day: c.day + 1 });
      } else {
        assert.equal(next.day, 1);
      }
      assert.equal(weekdayFromDays(days + 7), weekdayFromDays(days));
    }),
  );
});

test('last Friday is a Friday in its month within the last week; fridayOnOrAfter', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1900, max: 2200 }), fc.integer({ min: 1, max: 12 }), (y, m) => {
      const d = lastFridayOfMonth(y, m);
      assert.equal(weekdayFromDays(d), 5);
      const c = civilFromDays(d);
      assert.equal(c.month, m);
      assert.ok(c.day > daysInMonth(y, m) - 7);
    }),
  );
  fc.assert(
    fc.property(fc.integer({ min: -100_000, max: 100_000 }), (days) => {
      const f = fridayOnOrAfter(days);
      assert.equal(weekdayFromDays(f), 5);
      assert.ok(f >= days && f < days + 7);
    }),
  );
});

test('the first expiry after a time is at 08:00 UTC and strictly after it', () => {
  const day = daysFromCivil(2026, 12, 27);
  const at = expiryMsOfDay(day);
  assert.equal(at, Date.UTC(2026, 11, 27, 8));
  assert.equal(firstExpiryDayAfter(at - 1), day);
  assert.equal(firstExpiryDayAfter(at), day + 1);
  assert.equal(firstExpiryDayAfter(day * 86_400_000), day);
});
