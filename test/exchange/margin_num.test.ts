// The safe-integer margin paths (margin.ts, "Safe integers") against the
// bigint reference: equal whenever the number path answers, and it declines
// (never answers wrongly) when the amounts approach 2^53.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ExchangeState } from '../../src/exchange/state.ts';
import { bytesKey } from '../../src/exchange/keys.ts';
import { ensureAccount, ensurePrincipal } from '../../src/exchange/context.ts';
import {
  belowMaintenance,
  initialForExposure,
  liquidationSlack,
  scanNum,
  scanNumResult,
  initialForExposureNum,
  marginForOrder,
  marginForOrderNum,
  ppmCeilNum,
} from '../../src/exchange/margin.ts';
import { ppmCeil } from '../../src/exchange/units.ts';
import { genesis, key } from './helpers.ts';

const SAFE = Number.MAX_SAFE_INTEGER;

/** Small, realistic, or near-2^53 amounts, with either sign when signed. */
const amount = (signed: boolean): fc.Arbitrary<bigint> =>
  fc
    .oneof(
      fc.bigInt({ min: 0n, max: 10n ** 6n }),
      fc.bigInt({ min: 0n, max: 10n ** 15n }),
      fc.bigInt({ min: BigInt(SAFE) - 10n ** 12n, max: BigInt(SAFE) + 10n ** 12n }),
    )
    .chain((x) => (signed ? fc.constantFrom(x, -x) : fc.constant(x)));

test('ppmCeilNum equals ppmCeil or declines beyond 2^53', () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.integer({ min: 0, max: 10 ** 9 }), fc.integer({ min: 0, max: SAFE })),
      fc.integer({ min: 0, max: 1_000_000 }),
      (x, ppm) => {
        const big = ppmCeil(BigInt(x), ppm);
        const num = ppmCeilNum(x, ppm);
        if (num < 0) assert.ok(big > BigInt(SAFE));
        else assert.equal(BigInt(num), big);
      },
    ),
    { numRuns: 2000 },
  );
});

test('marginForOrderNum equals marginForOrder whenever it answers', () => {
  let answered = 0;
  let declined = 0;
  fc.assert(
    fc.property(
      amount(true),
      fc.array(fc.integer({ min: -(10 ** 9), max: 10 ** 9 }), { minLength: 2, maxLength: 2 }),
      fc.array(fc.integer({ min: 1, max: 10 ** 7 }), { minLength: 2, maxLength: 2 }),
      fc.array(fc.nat(10 ** 6), { minLength: 4, maxLength: 4 }),
      fc.nat(1),
      fc.nat(10 ** 6),
      fc.boolean(),
      (cash, sizes, marks, resting, marketIndex, lots, buy) => {
        const state = new ExchangeState(genesis(), bytesKey);
        const k = key('m');
        const account = ensureAccount(state, ensurePrincipal(state, k.address), 0);
        account.cashQuote = cash;
        let orderId = 1;
        state.markets.forEach((m, i) => {
          m.setMark(marks[i]!);
          account.positions[i]!.sizeLots = sizes[i]!;
          for (const [j, side] of (['buy', 'sell'] as const).entries()) {
            const restingLots = resting[2 * i + j]!;
            if (restingLots === 0) continue;
            // Far from each other, so they rest: bids at 1 tick, asks high.
            m.book.place({
              orderId: orderId++,
              owner: account.index,
              side,
              priceTicks: side === 'buy' ? 1 : 10 ** 9,
              sizeLots: restingLots,
              timeInForce: 'GTC',
            });
          }
        });
        const num = marginForOrderNum(state, account, marketIndex, buy ? lots : 0, buy ? 0 : lots);
        const numCopy = num === undefined ? undefined : { ...num };
        const big = marginForOrder(state, account, marketIndex, buy ? lots : 0, buy ? 0 : lots);
        if (numCopy === undefined) {
          declined++;
          const beyond = (x: bigint): boolean => x > BigInt(SAFE) || x < -BigInt(SAFE);
          // Declines only where some amount of the computation is out of range.
          const perLot = state.markets.map((m) => m.markQuotePerLot);
          const large =
            beyond(big.before) ||
            beyond(big.after) ||
            beyond(big.equity) ||
            beyond(cash) ||
            perLot.some((p, i) => beyond(p * BigInt(sizes[i]!))) ||
            beyond(cash + perLot[0]! * BigInt(sizes[0]!)) ||
            state.markets.some((m) =>
              beyond(initialForExposure(m, 10 ** 7 + Math.abs(sizes[m.index]!) + 2 * 10 ** 6)),
            );
          assert.ok(large, 'declined a small computation');
        } else {
          answered++;
          assert.deepEqual(
            {
              before: BigInt(numCopy.before),
              after: BigInt(numCopy.after),
              equity: BigInt(numCopy.equity),
            },
            { before: big.before, after: big.after, equity: big.equity },
          );
        }
      },
    ),
    { numRuns: 1500, seed: 7 },
  );
  assert.ok(answered > 100 && declined > 10, `answered ${answered}, declined ${declined}`);
});

test('initialForExposureNum equals initialForExposure across the imf steps', () => {
  const state = new ExchangeState(genesis(), bytesKey);
  fc.assert(
    fc.property(
      fc.nat(1),
      fc.integer({ min: 1, max: 10 ** 7 }),
      fc.nat(10 ** 7),
      (i, mark, lots) => {
        const m = state.markets[i]!;
        m.setMark(mark);
        const num = initialForExposureNum(m, lots);
        const big = initialForExposure(m, lots);
        if (num < 0)
          assert.ok(big > BigInt(SAFE) || BigInt(lots) * m.markQuotePerLot > BigInt(SAFE));
        else assert.equal(BigInt(num), big);
      },
    ),
    { numRuns: 3000, seed: 3 },
  );
});

test('scanNum agrees with belowMaintenance and never gives more slack than liquidationSlack', () => {
  let answered = 0;
  fc.assert(
    fc.property(
      amount(true),
      fc.array(fc.integer({ min: -(10 ** 9), max: 10 ** 9 }), { minLength: 2, maxLength: 2 }),
      fc.array(fc.integer({ min: 1, max: 10 ** 7 }), { minLength: 2, maxLength: 2 }),
      (cash, sizes, marks) => {
        const state = new ExchangeState(genesis(), bytesKey);
        const account = ensureAccount(state, ensurePrincipal(state, key('s').address), 0);
        account.cashQuote = cash;
        state.markets.forEach((m, i) => {
          m.setMark(marks[i]!);
          account.positions[i]!.sizeLots = sizes[i]!;
          if (sizes[i] !== 0) account.positionCount++;
        });
        if (!scanNum(state, account)) return;
        answered++;
        const below = scanNumResult.below;
        const slack = account.slackTicks;
        const marksTaken = account.positions.map((p) => p.slackMarkTicks);
        assert.equal(below, belowMaintenance(state, account));
        liquidationSlack(state, account);
        assert.deepEqual(
          marksTaken,
          account.positions.map((p) => p.slackMarkTicks),
        );
        if (slack >= 0) assert.ok(slack <= account.slackTicks, `${slack} > ${account.slackTicks}`);
        // Off by at most one tick per market's rounding, for realistic amounts.
        if (account.slackTicks >= 0 && account.slackTicks < 10 ** 9 && !below) {
          assert.ok(slack >= 0 || account.slackTicks < 4, `${slack} vs ${account.slackTicks}`);
        }
      },
    ),
    { numRuns: 2000, seed: 11 },
  );
  assert.ok(answered > 200, `answered ${answered}`);
});

test("an account's cashNum follows every write of its cashQuote: the number while safe, else NaN", () => {
  const state = new ExchangeState(genesis(), bytesKey);
  const account = ensureAccount(state, ensurePrincipal(state, key('c').address), 0);
  assert.equal(account.cashNum, 0);
  fc.assert(
    fc.property(fc.array(amount(true), { minLength: 1, maxLength: 8 }), (deltas) => {
      for (const d of deltas) {
        account.cashQuote += d;
        const cash = account.cashQuote;
        const safe = cash <= BigInt(SAFE) && cash >= -BigInt(SAFE);
        if (safe) assert.equal(account.cashNum, Number(cash));
        else assert.ok(Number.isNaN(account.cashNum));
      }
      account.cashQuote = 0n;
      assert.equal(account.cashNum, 0);
    }),
    { numRuns: 300 },
  );
});
