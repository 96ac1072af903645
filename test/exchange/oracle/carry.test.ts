// Each validator's latest fresh observation is carried across blocks
// (docs/derivatives.md, "Aggregation").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DecodeError, Writer, decode, encode } from '../../../src/codec/wire.ts';
import { VALIDATORS_MAX } from '../../../src/lib/limits.ts';
import { decodeSnapshot, encodeSnapshot } from '../../../src/exchange/index.ts';
import type { OracleObservation } from '../../../src/exchange/oracle/observation.ts';
import { observationCodec } from '../../../src/exchange/oracle/observation.ts';
import type {
  OracleParams,
  OracleState,
  StakedObservation,
} from '../../../src/exchange/oracle/aggregate.ts';
import {
  aggregateOracle,
  emptyOracleState,
  oracleStateCodec,
  smileKey,
} from '../../../src/exchange/oracle/aggregate.ts';
import { bytesKey } from '../../../src/exchange/keys.ts';
import { Harness, USDC, VALIDATORS } from '../helpers.ts';

const E = 10n ** 18n;
const SVI = { a: E / 25n, b: E / 10n, rho: -3n * (E / 10n), m: 0n, sigma: E / 10n };
const T = 1_800_000_000_000;
const F = 10_000;
const PARAMS: OracleParams = {
  underlyings: ['BTC'],
  freshnessMs: F,
  staleAfterMs: 60_000,
  maxMovePerBlockBps: 100,
};

function pk(i: number): Uint8Array {
  const k = new Uint8Array(32).fill(7);
  k[0] = i >> 8;
  k[1] = i & 0xff;
  return k;
}

const obs = (btc: bigint, timeMs: number, smiles: OracleObservation['smiles'] = []) => ({
  timeMs,
  prices: [{ underlying: 'BTC', priceQuote: btc }],
  smiles,
});

const member = (i: number, stake: bigint, o: OracleObservation | null): StakedObservation => ({
  validatorIndex: i,
  publicKey: pk(i),
  stake,
  observation: o,
});

const price = (s: OracleState) => s.prices.get('BTC')!;

test('two honest subsets of just over 1/3 alternating in the certificates move the price every block', () => {
  // Byzantine 32 (always empty extensions), honest A = 34 and B = 34: a
  // certificate holds one honest subset's observations, never 2/3 alone.
  const stakes = [32n, 34n, 34n];
  const total = 100n;
  let s = emptyOracleState(PARAMS);
  let last = 0n;
  for (let b = 0; b < 20; b++) {
    const timeMs = T + b * 1_000;
    const honest = 60_000n + BigInt(b) * 100n;
    const inA = b % 2 === 0;
    const votes = [
      member(0, stakes[0]!, null),
      member(1, stakes[1]!, inA ? obs(honest, timeMs) : null),
      member(2, stakes[2]!, inA ? null : obs(honest + 50n, timeMs)),
    ];
    s = aggregateOracle(s, votes, total, timeMs, PARAMS);
    const feed = price(s);
    if (b === 0) {
      assert.equal(feed.priceQuote, 0n, 'one subset alone is no quorum');
      continue;
    }
    assert.equal(feed.updatedMs, timeMs, `block ${b} updates`);
    assert.notEqual(feed.priceQuote, last, `block ${b} moves`);
    assert.ok(feed.priceQuote >= honest - 100n && feed.priceQuote <= honest + 50n);
    last = feed.priceQuote;
  }
  assert.equal(s.carried.size, 2, 'one entry per honest validator, none for the silent one');
});

test('a carried observation counts until freshnessMs after its time, then is dropped', () => {
  let s = emptyOracleState(PARAMS);
  s = aggregateOracle(
    s,
    [member(0, 1n, obs(100n, T)), member(1, 1n, obs(100n, T)), member(2, 1n, null)],
    3n,
    T,
    PARAMS,
  );
  assert.deepEqual(price(s), { priceQuote: 100n, updatedMs: T });
  // Validator 1 is silent: its observation of T is carried while T + F is not passed.
  const at = (timeMs: number) => [
    member(0, 1n, obs(100n, timeMs)),
    member(1, 1n, null),
    member(2, 1n, null),
  ];
  s = aggregateOracle(s, at(T + F), 3n, T + F, PARAMS);
  assert.equal(price(s).updatedMs, T + F);
  assert.equal(s.carried.get(bytesKey(pk(1)))!.sinceMs, T);
  s = aggregateOracle(s, at(T + F + 1), 3n, T + F + 1, PARAMS);
  assert.equal(price(s).updatedMs, T + F, 'expired: no quorum');
  assert.deepEqual([...s.carried.keys()], [bytesKey(pk(0))]);
  // A stale observation in the certificate falls back on the carried one, and a fresh one replaces it.
  s = aggregateOracle(s, [member(0, 1n, obs(100n, T))], 1n, T + F + 2, PARAMS);
  assert.equal(s.carried.get(bytesKey(pk(0)))!.sinceMs, T + F + 1);
});

test('a validator removed from the set (jailed) stops counting at once', () => {
  let s = emptyOracleState(PARAMS);
  s = aggregateOracle(
    s,
    [member(0, 1n, obs(100n, T)), member(1, 1n, obs(100n, T)), member(2, 1n, null)],
    3n,
    T,
    PARAMS,
  );
  assert.equal(s.carried.size, 2);
  // The next set lacks validator 1: its carried observation neither counts nor stays.
  s = aggregateOracle(s, [member(0, 1n, obs(101n, T + 1)), member(2, 1n, null)], 2n, T + 1, PARAMS);
  assert.equal(price(s).updatedMs, T, 'half the stake is no quorum');
  assert.deepEqual([...s.carried.keys()], [bytesKey(pk(0))]);
  // Keyed by public key, not index: the same validator at another index keeps its entry.
  const moved: StakedObservation = { ...member(5, 1n, null), publicKey: pk(0) };
  s = aggregateOracle(s, [moved, member(2, 1n, obs(101n, T + 2))], 2n, T + 2, PARAMS);
  assert.equal(price(s).updatedMs, T + 2);
  // Stake counts as the current set gives it: the entry is weighed by the new stake.
  s = aggregateOracle(
    s,
    [member(0, 1n, null), member(2, 5n, null), member(3, 3n, obs(1n, T + 3))],
    9n,
    T + 3,
    PARAMS,
  );
  assert.equal(price(s).updatedMs, T + 3);
  assert.equal(price(s).priceQuote, 101n, 'the weight of validator 2 decides');
});

test('a Byzantine observation dated in the future lives no longer than an honest one', () => {
  let s = emptyOracleState(PARAMS);
  // Honest 0 and 1 at T, Byzantine 2 at T + F (as fresh as the rule allows).
  const first = [
    member(0, 1n, obs(100n, T)),
    member(1, 1n, obs(100n, T)),
    member(2, 1n, obs(1_000n, T + F)),
  ];
  s = aggregateOracle(s, first, 3n, T, PARAMS);
  assert.equal(
    s.carried.get(bytesKey(pk(2)))!.sinceMs,
    T,
    'counted from the block that carried it',
  );
  const silent = [member(0, 1n, null), member(1, 1n, null), member(2, 1n, null)];
  s = aggregateOracle(s, silent, 3n, T + F, PARAMS);
  assert.equal(s.carried.size, 3);
  s = aggregateOracle(s, silent, 3n, T + F + 1, PARAMS);
  assert.equal(s.carried.size, 0, 'the honest and the future-dated ones expire together');
});

test('smiles are aggregated over carried observations too', () => {
  const e1 = T + 86_400_000;
  const smile = [{ underlying: 'BTC', expiryMs: e1, svi: SVI }];
  let s = emptyOracleState(PARAMS);
  s = aggregateOracle(
    s,
    [member(0, 1n, obs(100n, T, smile)), member(1, 1n, null), member(2, 1n, null)],
    3n,
    T,
    PARAMS,
  );
  assert.equal(s.smiles.size, 0);
  s = aggregateOracle(
    s,
    [member(0, 1n, null), member(1, 1n, obs(100n, T + 1, smile)), member(2, 1n, null)],
    3n,
    T + 1,
    PARAMS,
  );
  assert.deepEqual(s.smiles.get(smileKey('BTC', e1)), { svi: SVI, updatedMs: T + 1 });
});

test('absurd prices from less than 1/3 of stake, carried or not, keep the median between honest prices', () => {
  const arb = fc
    .record({
      honest: fc.array(
        fc.record({
          stake: fc.bigInt({ min: 1n, max: 1000n }),
          price: fc.bigInt({ min: 50_000n, max: 70_000n }),
          // Which certificates carry its observation: the first, the second, or both.
          in: fc.constantFrom(1, 2, 3),
        }),
        { minLength: 1, maxLength: 10 },
      ),
      bad: fc.array(
        fc.record({
          share: fc.nat({ max: 1000 }),
          prices: fc.tuple(
            fc.oneof(fc.constant(1n), fc.constant((1n << 95n) - 1n)),
            fc.oneof(fc.constant(1n), fc.constant((1n << 95n) - 1n)),
          ),
          aheadMs: fc.integer({ min: 0, max: F }),
          in: fc.constantFrom(0, 1, 2, 3),
        }),
        { maxLength: 5 },
      ),
      gapMs: fc.integer({ min: 1, max: F }),
    })
    .map(({ honest, bad, gapMs }) => {
      const honestStake = honest.reduce((sum, h) => sum + h.stake, 0n);
      // Byzantine stake strictly below a third of the total: 2b < h, shared by weight.
      const budget = (honestStake - 1n) / 2n;
      const shares = bad.reduce((sum, b) => sum + BigInt(b.share), 0n);
      const stakes = bad.map((b) => (shares === 0n ? 0n : (budget * BigInt(b.share)) / shares));
      return { honest, bad: bad.map((b, i) => ({ ...b, stake: stakes[i]! })), gapMs };
    });
  fc.assert(
    fc.property(arb, ({ honest, bad, gapMs }) => {
      const n = honest.length;
      const all = [...honest.map((h) => h.stake), ...bad.map((b) => b.stake)];
      const total = all.reduce((sum, x) => sum + x, 0n);
      if (total === 0n) return;
      const votes = (cert: 1 | 2, timeMs: number): StakedObservation[] => [
        ...honest.map((h, i) =>
          member(i, h.stake, (h.in & cert) !== 0 ? obs(h.price, timeMs) : null),
        ),
        ...bad.map((b, j) =>
          member(
            n + j,
            b.stake,
            (b.in & cert) !== 0 ? obs(b.prices[cert - 1]!, timeMs + b.aheadMs) : null,
          ),
        ),
      ];
      let s = aggregateOracle(emptyOracleState(PARAMS), votes(1, T), total, T, PARAMS);
      s = aggregateOracle(s, votes(2, T + gapMs), total, T + gapMs, PARAMS);
      const feed = price(s);
      if (feed.priceQuote === 0n) return; // no quorum
      const prices = honest.map((h) => h.price);
      const lo = prices.reduce((m, p) => (p < m ? p : m));
      const hi = prices.reduce((m, p) => (p > m ? p : m));
      assert.ok(
        feed.priceQuote >= lo && feed.priceQuote <= hi,
        `${feed.priceQuote} not in [${lo}, ${hi}]`,
      );
      assert.ok(s.carried.size <= n + bad.length);
    }),
  );
});

test('carried observations encode canonically; the decoder checks order, bounds and validity', () => {
  const codec = oracleStateCodec(PARAMS);
  let s = emptyOracleState(PARAMS);
  s = aggregateOracle(
    s,
    [member(3, 1n, obs(100n, T)), member(1, 1n, obs(101n, T + 5)), member(2, 1n, null)],
    3n,
    T,
    PARAMS,
  );
  assert.equal(s.carried.size, 2);
  const bytes = encode(codec, s);
  const back = decode(codec, bytes);
  assert.deepEqual(back, s);
  assert.deepEqual(encode(codec, back), bytes);
  // Encodings written by hand: the price, no smiles, then the carried entries.
  const head = (w: Writer) => {
    const feed = price(s);
    w.uvarintBig(feed.priceQuote).ivarint(feed.updatedMs).uvarint(0);
  };
  const carried = (entries: [number, number, OracleObservation][], count = entries.length) => {
    const w = new Writer();
    head(w);
    w.uvarint(count);
    for (const [i, sinceMs, o] of entries) {
      w.fixed(pk(i), 32).uvarint(sinceMs);
      observationCodec.write(w, o);
    }
    return w.finish();
  };
  assert.deepEqual(
    decode(
      codec,
      carried([
        [1, T, obs(1n, T)],
        [2, T, obs(1n, T)],
      ]),
    ).carried.size,
    2,
  );
  const refused: [Uint8Array, RegExp][] = [
    [
      carried([
        [2, T, obs(1n, T)],
        [1, T, obs(1n, T)],
      ]),
      /ascend/,
    ],
    [
      carried([
        [1, T, obs(1n, T)],
        [1, T, obs(1n, T)],
      ]),
      /ascend/,
    ],
    [carried([[1, T + 1, obs(1n, T)]]), /sinceMs/],
    [
      carried([[1, T, { timeMs: T, prices: [{ underlying: 'btc', priceQuote: 1n }], smiles: [] }]]),
      /underlying/,
    ],
    [carried([], VALIDATORS_MAX + 1), /carried/],
  ];
  for (const [b, message] of refused) {
    assert.throws(
      () => decode(codec, b),
      (e) => e instanceof DecodeError && message.test(e.message),
    );
  }
});

test('an exchange restored from a snapshot with carried observations goes on identically', () => {
  const h = new Harness();
  const block = (ex: Harness['ex'], timeMs: number, signers: number[], btc: bigint) =>
    ex.finalizeBlock({
      height: ex.state.height + 1,
      timeMs,
      proposer: VALIDATORS[0]!.publicKey,
      txs: [],
      oracle: {},
      oracleVotes: {
        votes: VALIDATORS.map((v, i) => ({
          validatorIndex: i,
          publicKey: v.publicKey,
          stake: 100n,
          observation: signers.includes(i) ? obs(btc, timeMs) : null,
        })),
        totalStake: 400n,
      },
    });
  let timeMs = h.timeMs;
  block(h.ex, (timeMs += 1_000), [0, 1], 50_000n * USDC);
  assert.equal(h.ex.state.oracle!.prices.get('BTC')!.priceQuote, 0n, 'half the stake');
  block(h.ex, (timeMs += 1_000), [2], 50_100n * USDC);
  assert.equal(h.ex.state.oracle!.carried.size, 3);
  assert.equal(
    h.ex.state.oracle!.prices.get('BTC')!.updatedMs,
    timeMs,
    'a quorum with the carried ones',
  );
  assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
  const restored = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
  assert.deepEqual(restored.appHash, h.ex.appHash);
  assert.deepEqual(restored.state.oracle, h.ex.state.oracle);
  // The carried observations are in the hash: the same state without them hashes differently.
  const bare = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
  bare.state.oracle = { ...bare.state.oracle!, carried: new Map() };
  assert.notDeepEqual(bare.digestFromScratch(), h.ex.digestFromScratch());
  // Both go on alike, the carried ones counting in the next block.
  const a = block(h.ex, timeMs + 1_000, [3], 50_200n * USDC);
  const b = block(restored, timeMs + 1_000, [3], 50_200n * USDC);
  assert.deepEqual(b.appHash, a.appHash);
  assert.equal(restored.state.oracle!.prices.get('BTC')!.updatedMs, timeMs + 1_000);
  assert.deepEqual(restored.digestFromScratch(), restored.digestBytes());
});

test('a fresh observation replaces the carried one whole; silence keeps it', () => {
  const params: OracleParams = { ...PARAMS, underlyings: ['BTC', 'ETH'] };
  const both = (timeMs: number) => ({
    timeMs,
    prices: [
      { underlying: 'BTC', priceQuote: 100n },
      { underlying: 'ETH', priceQuote: 10n },
    ],
    smiles: [],
  });
  const full = (timeMs: number) => [0, 1, 2].map((i) => member(i, 1n, both(timeMs)));
  let s = aggregateOracle(emptyOracleState(params), full(T), 3n, T, params);
  assert.equal(s.prices.get('ETH')!.updatedMs, T);
  // Validator 2 is silent, 0 and 1 observe BTC only (their ETH sources failed).
  const votes = [
    member(0, 1n, obs(100n, T + 1)),
    member(1, 1n, obs(100n, T + 1)),
    member(2, 1n, null),
  ];
  s = aggregateOracle(s, votes, 3n, T + 1, params);
  assert.equal(s.prices.get('BTC')!.updatedMs, T + 1, 'BTC: 0 and 1 fresh, 2 carried');
  assert.equal(
    s.prices.get('ETH')!.updatedMs,
    T,
    "ETH: only 2's (carried), not the older ones of 0 and 1",
  );
  assert.deepEqual(s.carried.get(bytesKey(pk(1)))!.observation, obs(100n, T + 1));
  assert.deepEqual(s.carried.get(bytesKey(pk(2)))!.observation, both(T));
});
