import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ValidatorSet } from '../../src/consensus/index.ts';
import type { CommitCertificate } from '../../src/consensus/index.ts';
import {
  decodeObservation,
  encodeObservation,
  oracleFromCommit,
  weightedMedian,
} from '../../src/node/oracle.ts';
import { DEVNET_ASSETS, GbmPriceSource } from '../../src/node/oracle_source.ts';
import { testKey } from './helpers.ts';

test('observations round-trip canonically; anything else is refused', () => {
  const obs = new Map([
    ['ETH', 3_000_000_000n],
    ['BTC', 60_000_000_000n],
  ]);
  const bytes = encodeObservation(obs);
  assert.deepEqual(decodeObservation(bytes), new Map([...obs].sort()));
  assert.deepEqual(decodeObservation(new Uint8Array(0)), new Map());
  assert.equal(decodeObservation(Uint8Array.of(1)), null);
  assert.equal(decodeObservation(Uint8Array.of(...bytes, 0)), null, 'trailing bytes');
  assert.equal(decodeObservation(encodeObservation(new Map([['BTC', 0n]]))), null, 'zero price');
});

test('the weighted median lies between the extremes and ignores a minority', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          price: fc.bigInt({ min: 1n, max: 10n ** 12n }),
          power: fc.integer({ min: 1, max: 100 }),
        }),
        {
          minLength: 1,
          maxLength: 20,
        },
      ),
      (list) => {
        const total = list.reduce((s, x) => s + x.power, 0);
        const m = weightedMedian(list, total);
        const prices = list.map((x) => x.price);
        assert.ok(prices.includes(m));
        const below = list.filter((x) => x.price <= m).reduce((s, x) => s + x.power, 0);
        assert.ok(2 * below > total);
      },
    ),
  );
});

test('the block oracle is the stake-weighted median of the certificate, only with more than a third of stake', () => {
  const keys = [0, 1, 2, 3].map(testKey);
  const set = ValidatorSet.fromUpdates(keys.map((k) => ({ publicKey: k.publicKey, power: 10 })));
  const vote = (validatorIndex: number, btc: bigint | null) => ({
    validatorIndex,
    timestampMs: 1,
    extension: btc === null ? new Uint8Array(0) : encodeObservation(new Map([['BTC', btc]])),
    signature: new Uint8Array(64),
  });
  const commit = (votes: ReturnType<typeof vote>[]): CommitCertificate => ({
    height: 1,
    round: 0,
    blockHash: new Uint8Array(32),
    votes,
  });
  assert.deepEqual(
    oracleFromCommit(commit([vote(0, 100n), vote(1, 105n), vote(2, 1_000_000n)]), set),
    {
      BTC: 105n,
    },
  );
  assert.deepEqual(
    oracleFromCommit(commit([vote(0, 100n), vote(1, null), vote(2, null)]), set),
    {},
  );
  assert.deepEqual(oracleFromCommit(null, set), {});
});

test('the simulated source is seeded: same seed and time, same path; validators differ by noise only', () => {
  const a = new GbmPriceSource(DEVNET_ASSETS, 1, 0, 0).observe(3_600_000);
  const b = new GbmPriceSource(DEVNET_ASSETS, 1, 0, 0).observe(3_600_000);
  const c = new GbmPriceSource(DEVNET_ASSETS, 1, 1, 0).observe(3_600_000);
  assert.deepEqual(a, b);
  const ratio = Number(a.get('BTC')!) / Number(c.get('BTC')!);
  assert.ok(Math.abs(ratio - 1) < 0.01, `noise is small (${ratio})`);
});
