import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { ListingSchedule } from '../../../src/exchange/instruments/schedule.ts';
import {
  ScheduleError,
  listingsDue,
  liveExpiries,
  strikeGrid,
  validateListingSchedule,
} from '../../../src/exchange/instruments/schedule.ts';
import { formatExpiryDate, parseInstrument } from '../../../src/exchange/instruments/names.ts';
import { weekdayFromDays } from '../../../src/exchange/instruments/calendar.ts';

const SCHEDULE: ListingSchedule = {
  underlyings: [
    { underlying: 'BTC', strikeStepQuote: 1_000_000_000n, strikeRangePpm: 100_000 },
    { underlying: 'ETH', strikeStepQuote: 50_000_000n, strikeRangePpm: 100_000 },
  ],
  dailies: 2,
  weeklies: 2,
  monthlies: 2,
  quarterlies: 2,
  futureCycles: ['monthly', 'quarterly'],
};
const INDEX = { BTC: 60_000_000_000n, ETH: 3_000_000_000n };
// Sunday 2026-12-20 12:00 UTC.
const T0 = Date.UTC(2026, 11, 20, 12);

test('live expiries on a known date: dailies, weeklies, monthlies, quarterlies', () => {
  const names = liveExpiries(SCHEDULE, T0).map(
    (e) => `${formatExpiryDate(e.day)}:${e.cycles.join('+')}`,
  );
  assert.deepEqual(names, [
    '21DEC26:daily',
    '22DEC26:daily',
    '25DEC26:weekly+monthly+quarterly',
    '1JAN27:weekly',
    '29JAN27:monthly',
    '26MAR27:quarterly',
  ]);
});

test('listing from scratch, then nothing new, then the next day rolls', () => {
  validateListingSchedule(SCHEDULE);
  const first = listingsDue(SCHEDULE, T0, INDEX, []);
  assert.deepEqual(first.toExpire, []);
  const futures = first.toList.filter((l) => l.instrument.kind === 'future').map((l) => l.name);
  assert.deepEqual(futures, [
    'BTC-25DEC26',
    'ETH-25DEC26',
    'BTC-29JAN27',
    'ETH-29JAN27',
    'BTC-26MAR27',
    'ETH-26MAR27',
  ]);
  const btc21 = first.toList.filter((l) => l.name.startsWith('BTC-21DEC26-')).map((l) => l.name);
  assert.equal(btc21.length, 26); // 54000 … 66000 step 1000, call and put
  assert.equal(btc21[0], 'BTC-21DEC26-54000-C');
  assert.equal(btc21[1], 'BTC-21DEC26-54000-P');
  assert.equal(btc21[25], 'BTC-21DEC26-66000-P');
  assert.equal(first.toList.length, 6 + 6 * 2 * 13 * 2);
  const expiries = first.toList.map((l) => l.expiryMs);
  assert.deepEqual(
    expiries,
    [...expiries].sort((a, b) => a - b),
  );
  const live = first.toList.map((l) => l.name);
  assert.deepEqual(listingsDue(SCHEDULE, T0 + 1000, INDEX, live).toList, []);

  // Monday 08:00: the 21DEC26 options expire, 23DEC26 is listed.
  const monday = Date.UTC(2026, 11, 21, 8);
  const next = listingsDue(SCHEDULE, monday, INDEX, live);
  assert.equal(next.toExpire.length, 2 * 13 * 2);
  assert.ok(next.toExpire.every((n) => n.includes('-21DEC26-')));
  assert.ok(next.toList.length > 0 && next.toList.every((l) => l.name.includes('-23DEC26-')));
  assert.deepEqual(listingsDue(SCHEDULE, monday - 1, INDEX, live).toExpire, []);
});

test('a moving index adds strikes at the edge and never removes any', () => {
  const live = listingsDue(SCHEDULE, T0, INDEX, []).toList.map((l) => l.name);
  const up = listingsDue(SCHEDULE, T0, { ...INDEX, BTC: 62_000_000_000n }, live);
  const added = up.toList.map((l) => l.name).filter((n) => n.startsWith('BTC-21DEC26-'));
  assert.deepEqual(added, [
    'BTC-21DEC26-67000-C',
    'BTC-21DEC26-67000-P',
    'BTC-21DEC26-68000-C',
    'BTC-21DEC26-68000-P',
  ]);
  assert.deepEqual(up.toExpire, []);
});

test('without an index only futures are listed', () => {
  const due = listingsDue(SCHEDULE, T0, {}, []);
  assert.ok(due.toList.every((l) => l.instrument.kind === 'future'));
});

test('strike grid: multiples of the step, inside the range, bounded', () => {
  fc.assert(
    fc.property(
      fc.bigInt({ min: 1n, max: 10n ** 14n }),
      fc.bigInt({ min: 1n, max: 10_000n }),
      fc.integer({ min: 0, max: 999_999 }),
      (index, stepWhole, rangePpm) => {
        const step = stepWhole * 1_000_000n;
        const grid = strikeGrid(
          { underlying: 'BTC', strikeStepQuote: step, strikeRangePpm: rangePpm },
          index,
        );
        assert.ok(grid.length <= 101);
        for (const k of grid) {
          assert.equal(k % step, 0n);
          assert.ok(k > 0n);
          assert.ok(k * 1_000_000n >= index * BigInt(1_000_000 - rangePpm));
          assert.ok(k * 1_000_000n <= index * BigInt(1_000_000 + rangePpm));
        }
      },
    ),
  );
});

test('every listed expiry is in the future; weeklies are Fridays', () => {
  fc.assert(
    fc.property(fc.integer({ min: Date.UTC(2001, 0, 1), max: Date.UTC(2098, 0, 1) }), (t) => {
      const due = listingsDue(SCHEDULE, t, INDEX, []);
      for (const l of due.toList) {
        assert.ok(l.expiryMs > t);
        const i = parseInstrument(l.name);
        assert.deepEqual(i, l.instrument);
        if (i.kind === 'future') assert.equal(weekdayFromDays(i.expiryDay), 5);
      }
    }),
    { numRuns: 30 },
  );
});

test('bad schedules are refused', () => {
  const bad: ListingSchedule[] = [
    { ...SCHEDULE, dailies: -1 },
    { ...SCHEDULE, weeklies: 100 },
    { ...SCHEDULE, futureCycles: ['yearly' as never] },
    {
      ...SCHEDULE,
      underlyings: [{ underlying: 'btc', strikeStepQuote: 1_000_000n, strikeRangePpm: 0 }],
    },
    {
      ...SCHEDULE,
      underlyings: [{ underlying: 'BTC', strikeStepQuote: 1_500_000n, strikeRangePpm: 0 }],
    },
    {
      ...SCHEDULE,
      underlyings: [{ underlying: 'BTC', strikeStepQuote: 1_000_000n, strikeRangePpm: 1_000_000 }],
    },
    { ...SCHEDULE, underlyings: [SCHEDULE.underlyings[0]!, SCHEDULE.underlyings[0]!] },
  ];
  for (const s of bad) assert.throws(() => validateListingSchedule(s), ScheduleError);
});

test('expiries past 2099 have no names and are not listed, up to the last listing time', () => {
  // The exchange lists until LISTING_TIME_MS_MAX (1 January 2099); twelve
  // quarterlies then reach 2101, whose names cannot be formatted: listing
  // failed the block on every validator instead of leaving them out.
  const longest = { ...SCHEDULE, dailies: 12, weeklies: 12, monthlies: 12, quarterlies: 12 };
  const lastDay = Date.UTC(2099, 11, 31, 8);
  for (const t of [Date.UTC(2097, 5, 1), Date.UTC(2098, 11, 31, 23), Date.UTC(2099, 0, 1, 7)]) {
    const due = listingsDue(longest, t, INDEX, []);
    assert.ok(due.toList.length > 0);
    for (const l of due.toList) {
      assert.ok(l.expiryMs > t && l.expiryMs <= lastDay, l.name);
      assert.equal(parseInstrument(l.name).kind === 'perpetual', false);
    }
  }
});
