import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DecodeError, Writer, decode, encode } from '../../../src/codec/wire.ts';
import { VOTE_EXTENSION_BYTES_MAX } from '../../../src/lib/limits.ts';
import type { OracleObservation } from '../../../src/exchange/oracle/observation.ts';
import {
  OracleError,
  decodeObservation,
  encodeObservation,
} from '../../../src/exchange/oracle/observation.ts';
import type { OracleParams, StakedObservation } from '../../../src/exchange/oracle/aggregate.ts';
import {
  aggregateOracle,
  clampMove,
  emptyOracleState,
  isStale,
  medianOfSources,
  oracleStateCodec,
  smileKey,
  weightedMedian,
} from '../../../src/exchange/oracle/aggregate.ts';

const E = 10n ** 18n;
const SVI = { a: E / 25n, b: E / 10n, rho: -3n * (E / 10n), m: 0n, sigma: E / 10n };
const T = 1_800_000_000_000;
const PARAMS: OracleParams = {
  underlyings: ['BTC', 'ETH'],
  freshnessMs: 10_000,
  staleAfterMs: 60_000,
  maxMovePerBlockBps: 100,
};

function obs(
  prices: Record<string, bigint>,
  timeMs = T,
  smiles: OracleObservation['smiles'] = [],
): OracleObservation {
  return {
    timeMs,
    prices: Object.keys(prices)
      .sort()
      .map((underlying) => ({ underlying, priceQuote: prices[underlying]! })),
    smiles,
  };
}

test('observations round-trip canonically; empty extension is no observation', () => {
  const o = obs({ BTC: 60_000_000_000n, ETH: 3_000_000_000n }, T, [
    { underlying: 'BTC', expiryMs: T + 86_400_000, svi: SVI },
    { underlying: 'BTC', expiryMs: T + 2 * 86_400_000, svi: SVI },
  ]);
  const bytes = encodeObservation(o);
  assert.deepEqual(decodeObservation(bytes), o);
  assert.deepEqual(encodeObservation(decodeObservation(bytes)!), bytes);
  assert.equal(decodeObservation(new Uint8Array(0)), null);
});

test('the largest observation fits a vote extension', () => {
  const prices: Record<string, bigint> = {};
  for (let i = 0; i < 16; i++) prices[`U${String(i).padStart(15, '0')}`] = (1n << 96n) - 1n;
  const smiles = Array.from({ length: 32 }, (_, i) => ({
    underlying: 'U'.repeat(16),
    expiryMs: Number.MAX_SAFE_INTEGER - 32 + i,
    svi: { a: 10n * E, b: 10n * E, rho: E - 1n, m: -10n * E, sigma: 10n * E },
  }));
  const bytes = encodeObservation(obs(prices, Number.MAX_SAFE_INTEGER, smiles));
  assert.ok(bytes.length <= VOTE_EXTENSION_BYTES_MAX, `${bytes.length}`);
});

test('invalid observations are refused with a typed error naming the field', () => {
  const bad: [OracleObservation, RegExp][] = [
    [
      {
        timeMs: T,
        prices: [
          { underlying: 'ETH', priceQuote: 1n },
          { underlying: 'BTC', priceQuote: 1n },
        ],
        smiles: [],
      },
      /prices\[1\]/,
    ],
    [{ timeMs: T, prices: [{ underlying: 'BTC', priceQuote: 0n }], smiles: [] }, /priceQuote/],
    [{ timeMs: T, prices: [{ underlying: 'btc', priceQuote: 1n }], smiles: [] }, /underlying/],
    [
      obs({}, T, [{ underlying: 'BTC', expiryMs: T, svi: { ...SVI, b: -1n } }]),
      /smiles\[0\].*svi\.b/,
    ],
    [
      obs({}, T, [
        { underlying: 'BTC', expiryMs: T + 1, svi: SVI },
        { underlying: 'BTC', expiryMs: T + 1, svi: SVI },
      ]),
      /ascend/,
    ],
  ];
  for (const [o, message] of bad) {
    assert.throws(
      () => encodeObservation(o),
      (e) => e instanceof OracleError && e.code === 'BadObservation' && message.test(e.message),
    );
  }
  // Decoding validates too: an unsorted observation written by hand.
  const w = new Writer();
  w.u8(1)
    .uvarint(T)
    .uvarint(2)
    .string('ETH', 16)
    .uvarint(1)
    .string('BTC', 16)
    .uvarint(1)
    .uvarint(0);
  assert.throws(() => decodeObservation(w.finish()), OracleError);
  const good = encodeObservation(obs({ BTC: 5n }));
  assert.throws(() => decodeObservation(new Uint8Array([...good, 0])), DecodeError);
  assert.throws(() => decodeObservation(new Uint8Array([2, ...good.subarray(1)])), DecodeError);
  assert.throws(() => decodeObservation(good.subarray(0, good.length - 1)), DecodeError);
  assert.throws(() => decodeObservation(new Uint8Array(VOTE_EXTENSION_BYTES_MAX + 1)), OracleError);
});

test('decoding arbitrary bytes either succeeds canonically or throws a typed error', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      try {
        const o = decodeObservation(bytes);
        if (o !== null) assert.deepEqual(encodeObservation(o), bytes);
      } catch (e) {
        assert.ok(e instanceof DecodeError || e instanceof OracleError, String(e));
      }
    }),
  );
});

const vote = (i: number, stake: bigint, o: OracleObservation | null): StakedObservation => ({
  validatorIndex: i,
  publicKey: new Uint8Array(32).fill(i + 1),
  stake,
  observation: o,
});

test('a quorum of 2/3 of stake sets the price; less keeps it and eventually goes stale', () => {
  let s = emptyOracleState(PARAMS);
  assert.ok(isStale(s.prices.get('BTC')!, T, PARAMS));
  const votes = [
    vote(0, 1n, obs({ BTC: 100n })),
    vote(1, 1n, obs({ BTC: 101n })),
    vote(2, 1n, obs({ BTC: 102n })),
  ];
  s = aggregateOracle(s, votes.slice(0, 1), 3n, T, PARAMS);
  assert.equal(s.prices.get('BTC')!.priceQuote, 0n);
  s = aggregateOracle(s, votes, 3n, T, PARAMS);
  assert.deepEqual(s.prices.get('BTC'), { priceQuote: 101n, updatedMs: T });
  assert.deepEqual(s.prices.get('ETH'), { priceQuote: 0n, updatedMs: -1 });
  // Two of three (2/3 exactly) is a quorum.
  s = aggregateOracle(s, votes.slice(0, 2), 3n, T + 1000, PARAMS);
  assert.equal(s.prices.get('BTC')!.updatedMs, T + 1000);
  // Stale observations (older than freshnessMs) do not count.
  const later = T + 61_001;
  s = aggregateOracle(s, votes, 3n, later, PARAMS);
  assert.equal(s.prices.get('BTC')!.updatedMs, T + 1000);
  assert.ok(isStale(s.prices.get('BTC')!, later, PARAMS));
  assert.ok(!isStale(s.prices.get('BTC')!, T + 61_000, PARAMS));
  // Fresh prices return: the state leaves "stale" by itself.
  const back = votes.map((v) => vote(v.validatorIndex, v.stake, obs({ BTC: 101n }, later)));
  s = aggregateOracle(s, back, 3n, later, PARAMS);
  assert.ok(!isStale(s.prices.get('BTC')!, later, PARAMS));
  // A validator counted twice is counted once.
  const dup = [vote(0, 1n, obs({ BTC: 100n })), vote(0, 1n, obs({ BTC: 100n }))];
  assert.equal(
    aggregateOracle(emptyOracleState(PARAMS), dup, 3n, T, PARAMS).prices.get('BTC')!.priceQuote,
    0n,
  );
});

test('the move per block is clamped', () => {
  assert.equal(clampMove(10_000n, 20_000n, 100), 10_100n);
  assert.equal(clampMove(10_000n, 1n, 100), 9_900n);
  assert.equal(clampMove(10_000n, 10_050n, 100), 10_050n);
  assert.equal(clampMove(0n, 77n, 100), 77n);
  assert.equal(clampMove(10n, 20n, 100), 11n);
  let s = emptyOracleState(PARAMS);
  s = aggregateOracle(s, [vote(0, 1n, obs({ BTC: 10_000n }))], 1n, T, PARAMS);
  s = aggregateOracle(s, [vote(0, 1n, obs({ BTC: 1_000_000n }, T + 1))], 1n, T + 1, PARAMS);
  assert.equal(s.prices.get('BTC')!.priceQuote, 10_100n);
});

test('validators with less than 1/3 of stake reporting absurd prices move nothing', () => {
  const arb = fc
    .array(
      fc.record({
        stake: fc.bigInt({ min: 1n, max: 1000n }),
        price: fc.bigInt({ min: 50_000n, max: 70_000n }),
      }),
      {
        minLength: 1,
        maxLength: 12,
      },
    )
    .chain((honest) => {
      const honestStake = honest.reduce((s, h) => s + h.stake, 0n);
      // Byzantine stake strictly below a third of the total: b < (h + b) / 3  ⇔  2b < h.
      const maxBad = (honestStake - 1n) / 2n;
      return fc.tuple(
        fc.constant(honest),
        fc.array(
          fc.record({
            stake: fc.bigInt({ min: 0n, max: maxBad }),
            price: fc.oneof(
              fc.constant(1n),
              fc.constant((1n << 95n) - 1n),
              fc.bigInt({ min: 1n, max: 10n ** 20n }),
            ),
          }),
          { maxLength: 6 },
        ),
      );
    })
    .filter(
      ([honest, bad]) =>
        2n * bad.reduce((s, b) => s + b.stake, 0n) < honest.reduce((s, h) => s + h.stake, 0n),
    );
  fc.assert(
    fc.property(arb, fc.boolean(), ([honest, bad], honestAll) => {
      const all = [...honest, ...bad.filter((b) => b.stake > 0n)];
      const total = all.reduce((s, x) => s + x.stake, 0n);
      const votes = all.map((x, i) => vote(i, x.stake, obs({ BTC: x.price })));
      // Either every honest validator reports, or some are absent while a quorum remains.
      const present = honestAll ? votes : votes.filter((_, i) => i !== 0);
      const state = aggregateOracle(emptyOracleState(PARAMS), present, total, T, PARAMS);
      const feed = state.prices.get('BTC')!;
      if (feed.priceQuote === 0n) return; // no quorum
      const honestPrices = honest.filter((_, i) => honestAll || i !== 0).map((h) => h.price);
      const lo = honestPrices.reduce((m, p) => (p < m ? p : m));
      const hi = honestPrices.reduce((m, p) => (p > m ? p : m));
      assert.ok(
        feed.priceQuote >= lo && feed.priceQuote <= hi,
        `${feed.priceQuote} not in [${lo}, ${hi}]`,
      );
    }),
  );
});

test('weighted median and median of sources', () => {
  assert.equal(
    weightedMedian([
      { value: 5n, stake: 1n },
      { value: 1n, stake: 1n },
      { value: 9n, stake: 1n },
    ]),
    5n,
  );
  assert.equal(
    weightedMedian([
      { value: 5n, stake: 10n },
      { value: 1n, stake: 1n },
      { value: 9n, stake: 1n },
    ]),
    5n,
  );
  assert.equal(
    weightedMedian([
      { value: 1n, stake: 1n },
      { value: 9n, stake: 1n },
    ]),
    1n,
  );
  assert.equal(medianOfSources([3n, 1n, 2n], 3), 2n);
  assert.equal(medianOfSources([4n, 1n, 2n, 100n], 3), 3n);
  assert.equal(medianOfSources([4n, 0n, -1n], 2), null);
  assert.equal(medianOfSources([], 1), null);
  assert.throws(() => medianOfSources(new Array(33).fill(1n), 1), OracleError);
  fc.assert(
    fc.property(
      fc.array(fc.bigInt({ min: 1n, max: 10n ** 12n }), { minLength: 3, maxLength: 31 }),
      (xs) => {
        // Fewer than half the sources, however wild, keep the median inside the others' range.
        const k = (xs.length - 1) >> 1;
        const wild = [
          ...xs.slice(0, xs.length - k),
          ...Array.from({ length: k }, (_, i) => (i % 2 === 0 ? 1n : 10n ** 30n)),
        ];
        const good = xs.slice(0, xs.length - k);
        const m = medianOfSources(wild, 1)!;
        assert.ok(
          m >= good.reduce((a, b) => (a < b ? a : b)) &&
            m <= good.reduce((a, b) => (a > b ? a : b)),
        );
      },
    ),
  );
});

test('smiles: quorum per expiry, median per parameter, dropped after expiry', () => {
  const e1 = T + 86_400_000;
  const other = { ...SVI, a: E / 20n };
  const votes = [
    vote(0, 1n, obs({ BTC: 100n }, T, [{ underlying: 'BTC', expiryMs: e1, svi: SVI }])),
    vote(1, 1n, obs({ BTC: 100n }, T, [{ underlying: 'BTC', expiryMs: e1, svi: other }])),
    vote(2, 1n, obs({ BTC: 100n }, T, [{ underlying: 'BTC', expiryMs: e1, svi: SVI }])),
  ];
  let s = aggregateOracle(emptyOracleState(PARAMS), votes.slice(0, 1), 3n, T, PARAMS);
  assert.equal(s.smiles.size, 0);
  s = aggregateOracle(s, votes, 3n, T, PARAMS);
  assert.deepEqual(s.smiles.get(smileKey('BTC', e1)), { svi: SVI, updatedMs: T });
  s = aggregateOracle(s, [], 3n, T + 1000, PARAMS);
  assert.equal(s.smiles.get(smileKey('BTC', e1))!.updatedMs, T);
  s = aggregateOracle(s, [], 3n, e1, PARAMS);
  assert.equal(s.smiles.size, 0);
});

test('oracle state encoding round-trips and is canonical', () => {
  const codec = oracleStateCodec(PARAMS);
  let s = emptyOracleState(PARAMS);
  assert.deepEqual(decode(codec, encode(codec, s)), s);
  const e1 = T + 86_400_000;
  const votes = [
    vote(0, 1n, obs({ BTC: 100n }, T, [{ underlying: 'BTC', expiryMs: e1, svi: SVI }])),
  ];
  s = aggregateOracle(s, votes, 1n, T, PARAMS);
  const bytes = encode(codec, s);
  const back = decode(codec, bytes);
  assert.deepEqual(back, s);
  assert.deepEqual(encode(codec, back), bytes);
  assert.throws(() => decode(codec, new Uint8Array([...bytes, 0])), DecodeError);
});
