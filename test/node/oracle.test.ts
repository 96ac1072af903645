import { test } from 'node:test';
import assert from 'node:assert/strict';
import type {
  Block as ConsensusBlock,
  CommitCertificate,
  Header,
  Vote,
} from '../../src/consensus/index.ts';
import { ValidatorSet } from '../../src/consensus/index.ts';
import { DEVNET_ORACLE, devnetGenesis } from '../../src/exchange/index.ts';
import { encodeObservation } from '../../src/exchange/oracle/index.ts';
import { validateSvi } from '../../src/exchange/options/index.ts';
import { ExchangeApp } from '../../src/node/app.ts';
import { SignatureCache } from '../../src/node/mempool/sigcache.ts';
import { consensusGenesisOf } from '../../src/node/node.ts';
import type { ObservationSource } from '../../src/node/oracle.ts';
import {
  decodeObservation,
  oracleFromCommit,
  oracleVotesOf,
  ownObservation,
  simulatedSmiles,
} from '../../src/node/oracle.ts';
import { DEVNET_ASSETS, GbmPriceSource } from '../../src/node/oracle_source.ts';
import { toHex } from '../../src/lib/bytes.ts';
import { OBSERVATION_SMILES_MAX } from '../../src/lib/limits.ts';
import { testKey } from './helpers.ts';

const BTC_START = DEVNET_ASSETS[0]!.startQuote;
const ETH_START = DEVNET_ASSETS[1]!.startQuote;

const fixed = (prices: Record<string, bigint>): ObservationSource => ({
  observe: () => new Map(Object.entries(prices)),
});

test("a validator's observation is the median of its sources, in the exchange's encoding", () => {
  const o = ownObservation(
    [fixed({ BTC: 100n, ETH: 7n }), fixed({ BTC: 300n }), fixed({ BTC: 200n, ETH: 9n })],
    5_000,
    ['ETH', 'BTC', 'SOL'],
  );
  assert.deepEqual(o, {
    timeMs: 5_000,
    prices: [
      { underlying: 'BTC', priceQuote: 200n },
      { underlying: 'ETH', priceQuote: 8n },
    ],
    smiles: [],
  });
  // SOL had no source and ETH two: with only one ETH reading it is left out.
  const one = ownObservation([fixed({ ETH: 7n }), fixed({})], 1, ['ETH']);
  assert.deepEqual(one.prices, []);
  const bytes = encodeObservation(o);
  assert.deepEqual(
    decodeObservation(bytes),
    new Map([
      ['BTC', 200n],
      ['ETH', 8n],
    ]),
  );
  assert.equal(decodeObservation(new Uint8Array(0)), null);
  assert.equal(decodeObservation(Uint8Array.of(...bytes, 0)), null, 'trailing bytes');
  assert.equal(decodeObservation(Uint8Array.of(9)), null, 'unknown format');
});

test('the read model median needs 2/3 of stake; votes list every member with its stake', () => {
  const keys = [0, 1, 2, 3].map(testKey);
  const set = ValidatorSet.fromUpdates(keys.map((k) => ({ publicKey: k.publicKey, power: 10 })));
  const vote = (validatorIndex: number, btc: bigint | null) => ({
    validatorIndex,
    timestampMs: 1,
    extension:
      btc === null
        ? new Uint8Array(0)
        : encodeObservation({
            timeMs: 1,
            prices: [{ underlying: 'BTC', priceQuote: btc }],
            smiles: [],
          }),
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
    { BTC: 105n },
  );
  assert.deepEqual(
    oracleFromCommit(commit([vote(0, 100n), vote(1, 105n), vote(2, null)]), set),
    {},
  );
  assert.deepEqual(oracleFromCommit(null, set), {});
  const staked = oracleVotesOf(commit([vote(0, 100n), vote(1, null)]), set);
  assert.equal(staked.totalStake, 40n);
  assert.deepEqual(
    staked.votes.map((v) => [v.validatorIndex, v.stake, v.observation !== null]),
    [
      [0, 10n, true],
      [1, 10n, false],
      [2, 10n, false],
      [3, 10n, false],
    ],
  );
  assert.deepEqual(
    staked.votes.map((v) => v.publicKey),
    set.validators.map((v) => v.publicKey),
  );
});

/**
 * Four validators' applications in process, each observing through its own
 * sources; every block carries the previous block's four extensions as its
 * lastCommit, as consensus would hand them over.
 */
function network(sources: (ObservationSource[] | null)[]) {
  const keys = [0, 1, 2, 3].map(testKey);
  const genesis = { ...devnetGenesis(keys.map((k) => k.publicKey)), genesisTimeMs: 1_000_000 };
  const consensusGenesis = consensusGenesisOf(genesis);
  let nowMs = genesis.genesisTimeMs;
  // Each app reads its own list; a validator goes silent or comes back by changing its contents.
  const lists = sources.map((s) => [...(s ?? [])]);
  const apps = keys.map(
    (_, i) =>
      new ExchangeApp({
        genesis,
        consensusGenesis,
        signatures: new SignatureCache(),
        prices: null,
        priceSources: lists[i]!,
        nowMs: () => nowMs,
        checkInvariants: true,
      }),
  );
  let lastCommit: CommitCertificate | null = null;
  return {
    apps,
    setSources(i: number, s: ObservationSource[] | null): void {
      lists[i]!.splice(0, lists[i]!.length, ...(s ?? []));
    },
    /** One height; returns the BTC and ETH index after it. */
    step(): { btc: bigint; eth: bigint; stale: boolean[] } {
      nowMs += 1_000;
      const height = apps[0]!.height + 1;
      const header = {
        chainId: genesis.chainId,
        height,
        round: 0,
        timeMs: nowMs,
        proposerAddress: new Uint8Array(20),
        previousBlockHash: new Uint8Array(32),
        previousAppHash: apps[0]!.appHash,
        txsRoot: new Uint8Array(32),
        lastCommitHash: new Uint8Array(32),
        evidenceHash: new Uint8Array(32),
        validatorsHash: new Uint8Array(32),
      } satisfies Header;
      const block: ConsensusBlock = { header, txs: [], evidence: [], lastCommit };
      const hashes = apps.map((app) => toHex(app.finalizeBlock(block, lastCommit!).appHash));
      assert.equal(new Set(hashes).size, 1, `one appHash at height ${height}`);
      const votes = apps.map((app, validatorIndex) => {
        const extension = app.extendVote(height, 0, new Uint8Array(32));
        const vote = { validatorIndex, extension } as unknown as Vote;
        assert.equal(app.verifyVoteExtension(vote), true);
        return { validatorIndex, timestampMs: nowMs, extension, signature: new Uint8Array(64) };
      });
      lastCommit = { height, round: 0, blockHash: new Uint8Array(32), votes };
      const state = apps[0]!.exchange.state;
      const price = (u: string) => state.oracle!.prices.get(u)!.priceQuote;
      return {
        btc: price('BTC'),
        eth: price('ETH'),
        stale: state.markets.map((m) => m.oracleStale),
      };
    },
  };
}

const gbm = (i: number) =>
  Array.from({ length: 3 }, () => new GbmPriceSource(DEVNET_ASSETS, 11, i, 1_000_000));

test('end to end: a validator with a quarter of the stake reporting absurd prices moves nothing', () => {
  const absurd: ObservationSource[] = [
    fixed({ BTC: 1n, ETH: 10n ** 27n }),
    fixed({ BTC: 1n, ETH: 10n ** 27n }),
  ];
  const net = network([gbm(0), gbm(1), gbm(2), absurd]);
  const first = net.step();
  assert.equal(first.btc, 0n, 'the first block has no commit to read');
  assert.deepEqual(first.stale, [true, true]);
  for (let h = 0; h < 20; h++) {
    const { btc, eth, stale } = net.step();
    // A minute of GBM at devnet volatility and 0.02% noise stay well inside 1%.
    assert.ok(btc > (BTC_START * 99n) / 100n && btc < (BTC_START * 101n) / 100n, `BTC ${btc}`);
    assert.ok(eth > (ETH_START * 99n) / 100n && eth < (ETH_START * 101n) / 100n, `ETH ${eth}`);
    assert.deepEqual(stale, [false, false]);
  }
  // With an honest validator silent the absurd one is a third of the present stake: still outvoted.
  net.setSources(2, null);
  for (let h = 0; h < 5; h++) {
    const { btc } = net.step();
    assert.ok(btc > (BTC_START * 99n) / 100n && btc < (BTC_START * 101n) / 100n, `BTC ${btc}`);
  }
});

test('end to end: without a 2/3 quorum the index holds once the carried observations expire, goes stale a minute later, and recovers by itself', () => {
  const net = network([gbm(0), gbm(1), gbm(2), gbm(3)]);
  net.step();
  const priced = net.step();
  assert.deepEqual(priced.stale, [false, false]);
  const state = net.apps[0]!.exchange.state;
  const feed = () => state.oracle!.prices.get('BTC')!;
  // The extensions of this height are the last observations of validators 0 and 1.
  const lastObservedMs = state.timeMs;
  net.setSources(0, null);
  net.setSources(1, null);
  // Carried, they count with 2 and 3 for freshnessMs more: the index moves every block.
  const { freshnessMs, staleAfterMs } = DEVNET_ORACLE;
  while (state.timeMs < lastObservedMs + freshnessMs) {
    net.step();
    assert.equal(feed().updatedMs, state.timeMs);
  }
  const held = feed();
  assert.equal(held.updatedMs, lastObservedMs + freshnessMs);
  let staleAtMs = -1;
  while (state.timeMs < held.updatedMs + staleAfterMs + 5_000) {
    const r = net.step();
    assert.deepEqual(feed(), held);
    if (staleAtMs < 0 && r.stale[0]) staleAtMs = state.timeMs;
  }
  assert.equal(
    staleAtMs,
    held.updatedMs + staleAfterMs + 1_000,
    'stale once more than a minute passed',
  );
  net.setSources(0, gbm(0));
  net.step(); // the block whose commit still lacks validator 0's observation
  const back = net.step();
  assert.deepEqual(back.stale, [false, false]);
  assert.notEqual(back.btc, 0n);
});

test('the simulated source is seeded: same seed and time, same path; validators differ by noise only', () => {
  const a = new GbmPriceSource(DEVNET_ASSETS, 1, 0, 0).observe(3_600_000);
  const b = new GbmPriceSource(DEVNET_ASSETS, 1, 0, 0).observe(3_600_000);
  const c = new GbmPriceSource(DEVNET_ASSETS, 1, 1, 0).observe(3_600_000);
  assert.deepEqual(a, b);
  const ratio = Number(a.get('BTC')!) / Number(c.get('BTC')!);
  assert.ok(Math.abs(ratio - 1) < 0.01, `noise is small (${ratio})`);
});

test('simulated smiles are valid SVI with the underlying volatility at the money, nearest expiries first', () => {
  const day = 86_400_000;
  const smiles = simulatedSmiles(
    [
      { underlying: 'ETH', expiryMs: 3 * day },
      { underlying: 'BTC', expiryMs: 30 * day },
      { underlying: 'BTC', expiryMs: 2 * day },
      { underlying: 'BTC', expiryMs: day / 2 },
    ],
    day,
  );
  assert.deepEqual(
    smiles.map((s) => [s.underlying, s.expiryMs]),
    [
      ['BTC', 2 * day],
      ['BTC', 30 * day],
      ['ETH', 3 * day],
    ],
  );
  for (const s of smiles) validateSvi(s.svi);
  // w(0) = a + b·sigma = 0.36 × 29 / 365 for BTC at 30 days.
  const w = smiles[1]!.svi.a + (smiles[1]!.svi.b * smiles[1]!.svi.sigma) / 10n ** 18n;
  assert.ok(Math.abs(Number(w) / 1e18 - (0.36 * 29) / 365) < 1e-9);
  assert.ok(decodeObservation(encodeObservation({ timeMs: day, prices: [], smiles })) !== null);
});

test('with more listed expiries than an observation holds, the simulated smiles are the nearest of every underlying', () => {
  const day = 86_400_000;
  // BTC listed for 40 days ahead, ETH for the first: sorted by underlying
  // first, BTC's far expiries took every place and left ETH without a smile.
  const expiries = [
    ...Array.from({ length: 40 }, (_, i) => ({ underlying: 'BTC', expiryMs: (i + 2) * day })),
    { underlying: 'ETH', expiryMs: 2 * day },
  ];
  const smiles = simulatedSmiles(expiries, day);
  assert.equal(smiles.length, OBSERVATION_SMILES_MAX);
  assert.deepEqual(
    smiles.map((s) => [s.underlying, s.expiryMs]),
    [
      ...Array.from({ length: OBSERVATION_SMILES_MAX - 1 }, (_, i) => ['BTC', (i + 2) * day]),
      ['ETH', 2 * day],
    ],
  );
  assert.ok(decodeObservation(encodeObservation({ timeMs: day, prices: [], smiles })) !== null);
});

test('the simulated market jumps now and then, and each validator sees it with its own delay', () => {
  const source = new GbmPriceSource(DEVNET_ASSETS, 5, 0, 0);
  let jumps = 0;
  let last = Number(source.observe(source.delayMs).get('BTC')!);
  for (let s = 1; s <= 86_400; s++) {
    const price = Number(source.observe(s * 1_000 + source.delayMs).get('BTC')!);
    // A second of diffusion moves about 0.01%, the noise 0.02%: 0.5% in one step is a jump.
    if (Math.abs(Math.log(price / last)) > 0.005) jumps++;
    last = price;
  }
  assert.ok(jumps >= 20 && jumps <= 200, `about a hundred jumps a day (${jumps})`);
  const delays = [0, 1, 2, 3].map((i) => new GbmPriceSource(DEVNET_ASSETS, 5, i, 0).delayMs);
  assert.ok(delays.every((d) => d >= 0 && d <= 1_500));
  assert.ok(new Set(delays).size > 1, `delays differ (${delays.join(', ')})`);
});
