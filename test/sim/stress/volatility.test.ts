// The stress tool's volatility path on the oracle's smiles (src/sim/stress/run.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Exchange, devnetGenesis } from '../../../src/exchange/index.ts';
import { smileKey } from '../../../src/exchange/oracle/aggregate.ts';
import { sviImpliedVol } from '../../../src/exchange/options/svi.ts';
import type { SviParams } from '../../../src/exchange/options/svi.ts';
import { SCALE } from '../../../src/math/index.ts';
import {
  buildReport,
  parseScenario,
  reportRows,
  runStress,
  scaleSvi,
  volatilitySmiles,
} from '../../../src/sim/stress/index.ts';

const SMILE: SviParams = {
  a: SCALE / 50n,
  b: SCALE / 10n,
  rho: -SCALE / 3n,
  m: 0n,
  sigma: SCALE / 5n,
};
const EXPIRY_MS = 90 * 86_400_000;

function withSmile(): Exchange {
  const ex = new Exchange(devnetGenesis([new Uint8Array(32).fill(1)]));
  ex.finalizeBlock({
    height: 1,
    timeMs: 1_000,
    proposer: new Uint8Array(32).fill(1),
    txs: [],
    oracle: { BTC: 60_000_000_000n, ETH: 3_000_000_000n },
  });
  const oracle = ex.state.oracle!;
  ex.state.oracle = {
    prices: oracle.prices,
    carried: oracle.carried,
    smiles: new Map([
      [smileKey('BTC', EXPIRY_MS), { svi: SMILE, updatedMs: 1_000 }],
      [smileKey('ETH', EXPIRY_MS), { svi: SMILE, updatedMs: 1_000 }],
    ]),
  };
  return ex;
}

test('scaleSvi multiplies implied volatility at every strike', () => {
  const doubled = scaleSvi(SMILE, 2_000_000);
  const forward = 60_000n * SCALE;
  for (const strike of [40_000n, 60_000n, 90_000n]) {
    const before = sviImpliedVol(SMILE, forward, strike * SCALE, SCALE / 4n);
    const after = sviImpliedVol(doubled, forward, strike * SCALE, SCALE / 4n);
    const ratioPpm = (after * 1_000_000n) / before;
    assert.ok(ratioPpm >= 1_999_990n && ratioPpm <= 2_000_010n, `${strike}: ${ratioPpm}`);
  }
});

test('volatilitySmiles scales the smiles of moved underlyings from the baseline, not cumulatively', () => {
  const ex = withSmile();
  const baseline = new Map(ex.state.oracle!.smiles);
  for (let i = 0; i < 3; i++) {
    const { smiles, refused } = volatilitySmiles(
      baseline,
      ['BTC', 'ETH'],
      [2_000_000, null],
      2_000,
    );
    assert.equal(refused, 0);
    assert.deepEqual(smiles, [
      { underlying: 'BTC', expiryMs: EXPIRY_MS, svi: scaleSvi(SMILE, 2_000_000) },
    ]);
  }
  // A multiplier that breaks SVI validation (a > 10) is left out: the state keeps its smile.
  assert.deepEqual(volatilitySmiles(baseline, ['BTC', 'ETH'], [100_000_000, null], 2_000), {
    smiles: [],
    refused: 1,
  });
  // An expired smile is not sent again.
  assert.equal(volatilitySmiles(baseline, ['BTC'], [2_000_000], EXPIRY_MS).smiles.length, 0);
});

test('a run says what the volatility acted on: smiles scaled, no option position', () => {
  const ex = withSmile();
  const scenario = parseScenario({
    name: 'vol-only',
    description: 'volatility doubles, prices still',
    durationS: 10,
    underlyings: {
      BTC: [
        { atS: 0, moveBps: 0 },
        { atS: 10, moveBps: 0, vol: 2 },
      ],
    },
    liquidity: 'none',
  });
  const report = buildReport(runStress(ex, scenario));
  assert.equal(report.volatility.applied, true);
  assert.equal(report.volatility.smiles, 1);
  assert.equal(report.volatility.optionMarkets, 0);
  assert.match(report.volatility.note, /scaled 1 smile\(s\).*no option position is open/);
  const btc = ex.state.oracle!.smiles.get(smileKey('BTC', EXPIRY_MS))!.svi;
  assert.deepEqual(btc, scaleSvi(SMILE, 2_000_000));
});

test('a frozen oracle publishes no smile: the volatility path waits for it to come back', () => {
  const ex = withSmile();
  // BTC's oracle is out for the first 3 seconds while its volatility doubles, then live.
  const scenario = parseScenario({
    name: 'vol-in-outage',
    durationS: 4,
    underlyings: {
      BTC: [
        { atS: 0, moveBps: 0, oracle: 'frozen' },
        { atS: 3, moveBps: 0, vol: 2 },
      ],
    },
    liquidity: 'none',
  });
  const seen: [number, SviParams][] = [];
  runStress(ex, scenario, {
    onBlock: (exchange, sample) => {
      seen.push([sample.atMs, exchange.state.oracle!.smiles.get(smileKey('BTC', EXPIRY_MS))!.svi]);
    },
  });
  assert.deepEqual(seen, [
    [1_000, SMILE],
    [2_000, SMILE],
    [3_000, scaleSvi(SMILE, 2_000_000)],
    [4_000, scaleSvi(SMILE, 2_000_000)],
  ]);

  // Frozen throughout: nothing is published, and the report says so.
  const frozen = withSmile();
  const report = buildReport(
    runStress(
      frozen,
      parseScenario({
        name: 'vol-all-outage',
        durationS: 3,
        underlyings: { BTC: [{ atS: 0, moveBps: 0, vol: 2, oracle: 'frozen' }] },
        liquidity: 'none',
      }),
    ),
  );
  assert.equal(report.volatility.applied, false);
  assert.equal(report.volatility.held, 2);
  assert.match(report.volatility.note, /none of the 2 smile\(s\) .* was published/);
  assert.deepEqual(frozen.state.oracle!.smiles.get(smileKey('BTC', EXPIRY_MS))!.svi, SMILE);
});

test('smiles alone frozen: no smile is published while the index goes on', () => {
  const ex = withSmile();
  // BTC's smiles are out for the first 3 seconds while its volatility doubles
  // and its price falls 10%; its prices are published throughout.
  const scenario = parseScenario({
    name: 'smiles-out',
    durationS: 4,
    underlyings: {
      BTC: [
        { atS: 0, moveBps: 0, smiles: 'frozen' },
        { atS: 3, moveBps: -1000, vol: 2 },
      ],
    },
    liquidity: 'none',
  });
  const seen: [number, bigint, SviParams][] = [];
  const report = buildReport(
    runStress(ex, scenario, {
      onBlock: (exchange, sample) => {
        const state = exchange.state.oracle!;
        seen.push([
          sample.atMs,
          state.prices.get('BTC')!.priceQuote,
          state.smiles.get(smileKey('BTC', EXPIRY_MS))!.svi,
        ]);
        assert.deepEqual(sample.frozen, [false, false]);
        assert.deepEqual(sample.smilesFrozen, [sample.atMs < 3_000, false]);
      },
    }),
  );
  assert.deepEqual(seen, [
    [1_000, 58_000_000_000n, SMILE],
    [2_000, 56_000_000_000n, SMILE],
    [3_000, 54_000_000_000n, scaleSvi(SMILE, 2_000_000)],
    [4_000, 54_000_000_000n, scaleSvi(SMILE, 2_000_000)],
  ]);
  const btc = report.underlyings.find((u) => u.underlying === 'BTC')!;
  assert.equal(btc.frozenBlocks, 0);
  assert.equal(btc.smilesFrozenBlocks, 2);
});

test('the path row counts the blocks with the oracle frozen and those with its smiles alone frozen apart', () => {
  // BTC: oracle out for 2 blocks, then its smiles alone for 3, then live.
  const report = buildReport(
    runStress(
      withSmile(),
      parseScenario({
        name: 'outages',
        durationS: 6,
        underlyings: {
          BTC: [
            { atS: 0, moveBps: 0, oracle: 'frozen', smiles: 'frozen' },
            { atS: 2, moveBps: -100, smiles: 'frozen' },
            { atS: 5, moveBps: -200 },
          ],
        },
        liquidity: 'none',
      }),
    ),
  );
  const btc = report.underlyings.find((u) => u.underlying === 'BTC')!;
  assert.equal(btc.frozenBlocks, 1);
  assert.equal(btc.smilesFrozenBlocks, 4);
  const row = reportRows(report).find(([label]) => label === 'BTC path')![1];
  assert.match(row, /, oracle frozen 1 blocks, smiles alone frozen 3 blocks$/);
});
