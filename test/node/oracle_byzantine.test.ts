// Seeded drivers: oracle prices under validators with less than a third of the
// stake lying in every way an extension allows (docs/derivatives.md, "Oracle").
// Each block's certificate is built from signed extensions as a proposer would
// (an honest one takes every precommit it holds, a Byzantine one the fewest
// honest ones it can, picking the highest prices), decoded by the node
// (oracleVotesOf) and aggregated by the exchange.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type {
  Block as ConsensusBlock,
  CommitCertificate,
  CommitVote,
  Header,
  Vote,
} from '../../src/consensus/index.ts';
import { ValidatorSet } from '../../src/consensus/index.ts';
import { Writer, decode, encode } from '../../src/codec/wire.ts';
import type {
  OracleObservation,
  OracleParams,
  OracleState,
  SmileObservation,
  StakedObservation,
} from '../../src/exchange/oracle/index.ts';
import {
  OBSERVED_PRICE_BITS,
  aggregateOracle,
  clampMove,
  emptyOracleState,
  encodeObservation,
  isQuorum,
  isStale,
  observationCodec,
  oracleStateCodec,
  smileKey,
} from '../../src/exchange/oracle/index.ts';
import type { SviParams } from '../../src/exchange/options/svi.ts';
import { SVI_PARAM_WAD_MAX } from '../../src/exchange/options/svi.ts';
import { bytesKey } from '../../src/exchange/keys.ts';
import { VOTE_EXTENSION_BYTES_MAX } from '../../src/lib/limits.ts';
import { Prng } from '../../src/lib/prng.ts';
import { devnetGenesis } from '../../src/exchange/index.ts';
import { ExchangeApp } from '../../src/node/app.ts';
import { SignatureCache } from '../../src/node/mempool/sigcache.ts';
import { consensusGenesisOf } from '../../src/node/node.ts';
import { observationOf, oracleVotesOf } from '../../src/node/oracle.ts';
import { DEVNET_ASSETS, GbmPriceSource } from '../../src/node/oracle_source.ts';
import { toHex } from '../../src/lib/bytes.ts';
import { testKey } from './helpers.ts';

const E = 10n ** 18n;
const U = ['BTC', 'ETH'] as const;
const START: Record<string, bigint> = { BTC: 60_000_000_000n, ETH: 3_000_000_000n };
const PARAMS: OracleParams = {
  underlyings: [...U],
  freshnessMs: 30_000,
  staleAfterMs: 60_000,
  maxMovePerBlockBps: 200,
};
const F = PARAMS.freshnessMs;
const T0 = 1_800_000_000_000;
const EXPIRY = T0 + 30 * 86_400_000;
const HONEST_SVI: SviParams = {
  a: E / 25n,
  b: E / 10n,
  rho: -3n * (E / 10n),
  m: 0n,
  sigma: E / 10n,
};
const TOP = (1n << BigInt(OBSERVED_PRICE_BITS)) - 1n;

interface Member {
  readonly key: string;
  readonly index: number;
  readonly stake: bigint;
  readonly byzantine: boolean;
}

/** A validator set of 4–16 members and a Byzantine subset holding strictly less than a third of its stake. */
function makeSet(prng: Prng): { set: ValidatorSet; members: Member[]; total: bigint } {
  const n = prng.between(4, 16);
  const updates = Array.from({ length: n }, (_, i) => ({
    publicKey: testKey(i).publicKey,
    power: prng.between(1, 100),
  }));
  const set = ValidatorSet.fromUpdates(updates);
  const total = BigInt(set.totalPower);
  let byzantine = 0n;
  const bad = new Set<number>();
  for (const i of prng.shuffle([...set.validators.keys()])) {
    const p = BigInt(set.validators[i]!.power);
    if (3n * (byzantine + p) < total) {
      byzantine += p;
      bad.add(i);
    }
  }
  const members = set.validators.map((v, index) => ({
    key: bytesKey(v.publicKey),
    index,
    stake: BigInt(v.power),
    byzantine: bad.has(index),
  }));
  return { set, members, total };
}

/** Bytes the observation codec writes without validating: zero or oversized prices, repeats, bad smiles. */
function raw(o: {
  timeMs: number;
  prices: { underlying: string; priceQuote: bigint }[];
  smiles?: SmileObservation[];
}): Uint8Array {
  const w = new Writer(256);
  w.u8(1).uvarint(o.timeMs).uvarint(o.prices.length);
  for (const p of o.prices) w.string(p.underlying, 16).uvarintBig(p.priceQuote);
  const smiles = o.smiles ?? [];
  w.uvarint(smiles.length);
  for (const s of smiles) {
    w.string(s.underlying, 16).uvarint(s.expiryMs);
    w.ivarintBig(s.svi.a).ivarintBig(s.svi.b).ivarintBig(s.svi.rho);
    w.ivarintBig(s.svi.m).ivarintBig(s.svi.sigma);
  }
  return w.finish().slice();
}

const both = (btc: bigint, eth: bigint) => [
  { underlying: 'BTC', priceQuote: btc },
  { underlying: 'ETH', priceQuote: eth },
];

/** What a Byzantine validator signs this block (at most VOTE_EXTENSION_BYTES_MAX, as consensus requires). */
function lie(prng: Prng, height: number, timeMs: number, last: OracleState): Uint8Array {
  const band = (u: string, up: boolean) => {
    const p = last.prices.get(u)!.priceQuote;
    return p === 0n ? START[u]! : clampMove(p, up ? TOP : 1n, PARAMS.maxMovePerBlockBps);
  };
  const up = height % 2 === 0;
  const absurd: SviParams = {
    a: SVI_PARAM_WAD_MAX,
    b: SVI_PARAM_WAD_MAX,
    rho: E - 1n,
    m: -SVI_PARAM_WAD_MAX,
    sigma: SVI_PARAM_WAD_MAX,
  };
  const valid = (o: OracleObservation) => encodeObservation(o);
  switch (prng.int(16)) {
    case 0:
      return valid({ timeMs, prices: both(TOP, TOP), smiles: [] });
    case 1:
      return valid({ timeMs, prices: both(1n, 1n), smiles: [] });
    case 2:
      return raw({ timeMs, prices: both(0n, 0n) });
    case 3:
      return raw({ timeMs, prices: both(TOP + 1n, 1n << 200n) });
    case 4:
      return valid({
        timeMs,
        prices: [...both(TOP, 1n), { underlying: 'ZZZ', priceQuote: 7n }],
        smiles: [],
      });
    case 5:
      return raw({ timeMs, prices: [...both(TOP, TOP), { underlying: 'ETH', priceQuote: 1n }] });
    case 6:
      return valid({ timeMs: timeMs - F - 1 - prng.int(F), prices: both(1n, TOP), smiles: [] });
    case 7:
      return valid({ timeMs: timeMs + prng.int(F + 1), prices: both(TOP, 1n), smiles: [] });
    case 8:
      return valid({ timeMs: Number.MAX_SAFE_INTEGER, prices: both(TOP, TOP), smiles: [] });
    case 9:
      return new Uint8Array(0);
    case 10:
      return valid({ timeMs, prices: up ? both(TOP, TOP) : both(1n, 1n), smiles: [] });
    case 11:
      // Coordinated (every liar picks the same side this block): just inside the clamp.
      return valid({ timeMs, prices: both(band('BTC', up), band('ETH', up)), smiles: [] });
    case 12:
      return prng.bytes(prng.int(VOTE_EXTENSION_BYTES_MAX + 1));
    case 13: {
      const good = valid({ timeMs, prices: both(TOP, 1n), smiles: [] });
      return good.slice(0, prng.int(good.length));
    }
    case 14:
      return valid({
        timeMs,
        prices: both(TOP, TOP),
        smiles: [
          { underlying: 'BTC', expiryMs: EXPIRY, svi: absurd },
          { underlying: 'BTC', expiryMs: EXPIRY + 1, svi: absurd },
          { underlying: 'ZZZ', expiryMs: EXPIRY, svi: HONEST_SVI },
        ],
      });
    default:
      return raw({
        timeMs,
        prices: both(1n, 1n),
        smiles: [{ underlying: 'BTC', expiryMs: EXPIRY, svi: { ...absurd, sigma: 0n, rho: E } }],
      });
  }
}

/** An honest observation: the true price within 5 bps, up to 1.5 s old, with a smile close to the true one. */
function truth(prng: Prng, timeMs: number, path: Record<string, bigint>): Uint8Array {
  const near = (p: bigint) => p + (p * BigInt(prng.between(-5, 5))) / 10_000n;
  const svi = { ...HONEST_SVI, a: HONEST_SVI.a + BigInt(prng.between(-100, 100)) * 10n ** 13n };
  return encodeObservation({
    timeMs: timeMs - prng.int(1_501),
    prices: both(near(path.BTC!), near(path.ETH!)),
    smiles: [{ underlying: 'BTC', expiryMs: EXPIRY, svi }],
  });
}

const vote = (validatorIndex: number, timestampMs: number, extension: Uint8Array): CommitVote => ({
  validatorIndex,
  timestampMs,
  extension,
  signature: new Uint8Array(64),
});

/** Prices of the entries that counted (the state after a block carries exactly those), honest ones only. */
function honestCounted(next: OracleState, members: readonly Member[], underlying: string) {
  const out: { price: bigint; stake: bigint }[] = [];
  for (const m of members) {
    const c = next.carried.get(m.key);
    if (m.byzantine || c === undefined) continue;
    const p = c.observation.prices.find((x) => x.underlying === underlying);
    if (p !== undefined) out.push({ price: p.priceQuote, stake: m.stake });
  }
  return out;
}

function checkBlock(
  before: OracleState,
  votes: readonly StakedObservation[],
  total: bigint,
  timeMs: number,
  members: readonly Member[],
  prng: Prng,
): OracleState {
  const next = aggregateOracle(before, votes, total, timeMs, PARAMS);
  // The same inputs in another order give the same state, byte for byte.
  const shuffled = aggregateOracle(before, prng.shuffle([...votes]), total, timeMs, PARAMS);
  const codec = oracleStateCodec(PARAMS);
  const bytes = encode(codec, next);
  assert.deepEqual(encode(codec, shuffled), bytes, 'the order of the votes changes nothing');
  assert.deepEqual(encode(codec, decode(codec, bytes, 'oracle')), bytes, 'the state round-trips');
  assert.ok(next.carried.size <= members.length, 'at most one carried entry per member');
  for (const u of U) {
    const last = before.prices.get(u)!;
    const feed = next.prices.get(u)!;
    const honest = honestCounted(next, members, u);
    if (feed.updatedMs !== timeMs) {
      assert.deepEqual(feed, last, `${u}: without an update the price holds`);
      const counted = [...next.carried.values()].filter((c) =>
        c.observation.prices.some((p) => p.underlying === u),
      );
      const stake = counted.reduce(
        (sum, c) => sum + members.find((m) => m.key === bytesKey(c.publicKey))!.stake,
        0n,
      );
      assert.ok(!isQuorum(stake, total), `${u}: a quorum of counted entries updates the price`);
      continue;
    }
    assert.ok(honest.length > 0, `${u}: an update with no honest price in it`);
    const lo = honest.reduce((m, x) => (x.price < m ? x.price : m), honest[0]!.price);
    const hi = honest.reduce((m, x) => (x.price > m ? x.price : m), honest[0]!.price);
    const min = clampMove(last.priceQuote, lo, PARAMS.maxMovePerBlockBps);
    const max = clampMove(last.priceQuote, hi, PARAMS.maxMovePerBlockBps);
    assert.ok(
      feed.priceQuote >= min && feed.priceQuote <= max,
      `${u}: ${feed.priceQuote} outside [${min}, ${max}] (honest ${lo}..${hi}, last ${last.priceQuote})`,
    );
  }
  for (const [key, feed] of next.smiles) {
    if (feed.updatedMs !== timeMs) continue;
    assert.equal(key, smileKey('BTC', EXPIRY), 'only the smile honest validators report');
    const honest = members
      .filter((m) => !m.byzantine)
      .flatMap((m) => next.carried.get(m.key)?.observation.smiles ?? [])
      .filter((s) => smileKey(s.underlying, s.expiryMs) === key)
      .map((s) => s.svi.a);
    const a = feed.svi.a;
    assert.ok(
      honest.some((x) => x <= a) && honest.some((x) => x >= a),
      `smile a = ${a} outside the honest ones`,
    );
  }
  return next;
}

/**
 * One seed: 240 blocks about a second apart. Normal until block 100, then an
 * outage (honest validators holding too little stake report, the others sign
 * empty extensions) long enough to go stale, then normal again.
 */
function drive(seed: number): void {
  const prng = new Prng(seed);
  const { set, members, total } = makeSet(prng);
  const honestStake = members.filter((m) => !m.byzantine).reduce((s, m) => s + m.stake, 0n);
  const byzantineStake = total - honestStake;
  // Outage: the honest reporters plus every Byzantine validator stay below 2/3.
  const reporters = new Set<number>();
  let reporting = byzantineStake;
  for (const m of prng.shuffle(members.filter((x) => !x.byzantine))) {
    if (isQuorum(reporting + m.stake, total)) continue;
    reporting += m.stake;
    reporters.add(m.index);
  }
  const OUTAGE = [100, 100 + Math.ceil((F + PARAMS.staleAfterMs) / 1_000) + 10];
  const path: Record<string, bigint> = { ...START };
  let state = emptyOracleState(PARAMS);
  let timeMs = T0;
  let firstPriced = -1;
  for (let height = 1; height <= 240; height++) {
    timeMs += prng.between(500, 1_500);
    for (const u of U) {
      // A random walk, with now and then a jump larger than the clamp.
      const bps = prng.chance(1, 40) ? prng.between(-800, 800) : prng.between(-30, 30);
      path[u] = path[u]! + (path[u]! * BigInt(bps)) / 10_000n;
    }
    const outage = height >= OUTAGE[0]! && height < OUTAGE[1]!;
    // Every member's signed precommit (null: it did not sign this height).
    const signed = members.map((m) => {
      if (m.byzantine) return prng.chance(1, 5) ? null : lie(prng, height, timeMs, state);
      if (outage && !reporters.has(m.index)) return new Uint8Array(0);
      return prng.chance(1, 20) ? new Uint8Array(0) : truth(prng, timeMs, path);
    });
    // The proposer, by stake: an honest one puts every precommit it holds in
    // its certificate; a Byzantine one the fewest honest ones it needs for
    // more than 2/3 of the stake, those with the highest BTC prices first.
    let pick = prng.int(set.totalPower);
    const proposer = members.find((m) => (pick -= Number(m.stake)) < 0)!;
    let included = members.filter((m) => signed[m.index] !== null);
    if (proposer.byzantine) {
      const btc = (m: Member) => {
        const o = signed[m.index]!;
        if (o.length === 0) return -1n;
        return decode(observationCodec, o, 'o').prices[0]!.priceQuote;
      };
      const honest = included
        .filter((m) => !m.byzantine)
        .sort((x, y) => (btc(x) > btc(y) ? -1 : btc(x) < btc(y) ? 1 : 0));
      let power = included.filter((m) => m.byzantine).reduce((s, m) => s + m.stake, 0n);
      const kept = new Set(included.filter((m) => m.byzantine).map((m) => m.index));
      for (const m of honest) {
        if (3n * power > 2n * total) break;
        power += m.stake;
        kept.add(m.index);
      }
      included = included.filter((m) => kept.has(m.index));
    }
    const commit: CommitCertificate = {
      height: height - 1,
      round: 0,
      blockHash: new Uint8Array(32),
      votes: included.map((m) => vote(m.index, timeMs, signed[m.index]!)),
    };
    const { votes, totalStake } = oracleVotesOf(commit, set);
    assert.equal(totalStake, total);
    state = checkBlock(state, votes, total, timeMs, members, prng);
    const priced = U.every((u) => state.prices.get(u)!.priceQuote > 0n);
    if (priced && firstPriced < 0) firstPriced = height;
    for (const u of U) {
      const stale = isStale(state.prices.get(u)!, timeMs, PARAMS);
      if (firstPriced > 0 && (height < OUTAGE[0]! || height >= OUTAGE[1]! + 5)) {
        assert.ok(!stale, `seed ${seed} height ${height}: ${u} stale with the honest reporting`);
      }
      if (height === OUTAGE[1]! - 1) {
        assert.ok(stale, `seed ${seed}: ${u} not stale after an outage of honest reporters`);
      }
    }
  }
  assert.ok(firstPriced > 0 && firstPriced < 5, `seed ${seed}: priced at ${firstPriced}`);
}

test('Byzantine validators under a third of the stake: prices stay within the honest ones, fresh while honest stake reports, stale when it does not', () => {
  for (let seed = 1; seed <= 10; seed++) drive(seed);
});

test('end to end: whatever a validator with a quarter of the stake signs, the apps agree, refuse only what does not decode, and keep the index honest', () => {
  const prng = new Prng(7);
  const keys = [0, 1, 2, 3].map(testKey);
  const genesis = { ...devnetGenesis(keys.map((k) => k.publicKey)), genesisTimeMs: 1_000_000 };
  const consensusGenesis = consensusGenesisOf(genesis);
  let nowMs = genesis.genesisTimeMs;
  const sources = (i: number) =>
    Array.from({ length: 3 }, () => new GbmPriceSource(DEVNET_ASSETS, 11, i, 1_000_000));
  const apps = keys.map(
    (_, i) =>
      new ExchangeApp({
        genesis,
        consensusGenesis,
        signatures: new SignatureCache(),
        prices: null,
        priceSources: i === 3 ? [] : sources(i),
        nowMs: () => nowMs,
        checkInvariants: true,
      }),
  );
  const BYZANTINE = 3;
  let lastCommit: CommitCertificate | null = null;
  for (let height = 1; height <= 60; height++) {
    nowMs += 1_000;
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
    const state = apps[0]!.exchange.state;
    if (height > 2) {
      for (const u of U) {
        const p = state.oracle!.prices.get(u)!.priceQuote;
        assert.ok(
          p > (START[u]! * 99n) / 100n && p < (START[u]! * 101n) / 100n,
          `${u} ${p} at ${height}`,
        );
      }
      assert.deepEqual(
        state.markets.map((m) => m.oracleStale),
        state.markets.map(() => false),
      );
    }
    // Every precommit as the replicas check it; the Byzantine one lies, and
    // its valid lies go in the next certificate with two or three honest ones.
    const votes: CommitVote[] = [];
    for (let i = 0; i < 4; i++) {
      const extension =
        i === BYZANTINE
          ? lie(prng, height, nowMs, state.oracle!)
          : apps[i]!.extendVote(height, 0, new Uint8Array(32));
      const accepted = apps.map((app) =>
        app.verifyVoteExtension({ validatorIndex: i, extension } as unknown as Vote),
      );
      const decodes = extension.length === 0 || observationOf(extension) !== null;
      assert.deepEqual(accepted, [decodes, decodes, decodes, decodes]);
      if (i !== BYZANTINE) assert.equal(decodes, true, 'an honest extension is valid');
      if (decodes) votes.push(vote(i, nowMs, extension));
    }
    const dropped = prng.int(4);
    lastCommit = {
      height,
      round: 0,
      blockHash: new Uint8Array(32),
      votes: votes.filter((v) => v.validatorIndex !== dropped || votes.length < 4),
    };
  }
});
