import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  BUILTIN_SCENARIOS,
  ScenarioError,
  builtinScenario,
  parseDecimal,
  parseScenario,
  resolvePath,
  samplePath,
} from '../../../src/sim/stress/index.ts';

const USDC = 1_000_000n;

function scenario(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'test',
    underlyings: {
      BTC: [
        { atS: 0, moveBps: 0 },
        { atS: 10, moveBps: -1000 },
      ],
    },
    ...extra,
  };
}

function rejects(json: unknown, field: string): void {
  assert.throws(
    () => parseScenario(json),
    (e: unknown) => e instanceof ScenarioError && e.code === 'BadScenario' && e.field === field,
    `expected a BadScenario error naming ${field}`,
  );
}

test('every built-in parses, and the named moves are there', () => {
  assert.deepEqual(Object.keys(BUILTIN_SCENARIOS), [
    'crash-40',
    'gap-up-25',
    'oracle-freeze',
    'smile-freeze',
  ]);
  const crash = builtinScenario('crash-40')!;
  const points = resolvePath(crash.paths.get('*')!, 60_000n * USDC, 'x');
  assert.equal(samplePath(points, 660_000).priceQuote, 36_000n * USDC);
  assert.equal(samplePath(points, 660_000).volPpm, 2_000_000);
  // Ten minutes from the first move to −40%: halfway at −20%.
  assert.equal(samplePath(points, 360_000).priceQuote, 48_000n * USDC);
  const gap = resolvePath(builtinScenario('gap-up-25')!.paths.get('*')!, 100n * USDC, 'x');
  assert.equal(samplePath(gap, 59_999).priceQuote, 100n * USDC);
  assert.equal(samplePath(gap, 60_000).priceQuote, 125n * USDC);
  const freeze = resolvePath(builtinScenario('oracle-freeze')!.paths.get('*')!, 100n * USDC, 'x');
  assert.equal(samplePath(freeze, 59_000).frozen, false);
  assert.equal(samplePath(freeze, 60_000).frozen, true);
  assert.equal(samplePath(freeze, 359_000).frozen, true);
  assert.deepEqual(samplePath(freeze, 360_000), {
    priceQuote: 85n * USDC,
    volPpm: 1_500_000,
    frozen: false,
    smilesFrozen: false,
  });
  // Smiles alone frozen for 20 minutes (past a minute's staleness and the
  // 10-minute grace), the index moving on: −10%, a 15% gap, then up to −20%.
  const smiles = resolvePath(builtinScenario('smile-freeze')!.paths.get('*')!, 100n * USDC, 'x');
  assert.deepEqual(samplePath(smiles, 59_000), {
    priceQuote: 100n * USDC,
    volPpm: 1_000_000,
    frozen: false,
    smilesFrozen: false,
  });
  for (const atMs of [60_000, 539_000, 540_000, 1_259_000]) {
    const at = samplePath(smiles, atMs);
    assert.equal(at.smilesFrozen, true, `smiles frozen at ${atMs}`);
    assert.equal(at.frozen, false, `prices published at ${atMs}`);
  }
  assert.ok(samplePath(smiles, 539_000).priceQuote > 90n * USDC);
  assert.equal(samplePath(smiles, 540_000).priceQuote, 75n * USDC);
  assert.equal(samplePath(smiles, 1_260_000).smilesFrozen, false);
  assert.equal(samplePath(smiles, 1_260_000).priceQuote, 80n * USDC);
  assert.equal(builtinScenario('smile-freeze')!.durationMs, 1_560_000);
  assert.equal(builtinScenario('nope'), undefined);
});

test('a file scenario: absolute prices, vol multipliers, defaults', () => {
  const s = parseScenario({
    name: 'mine',
    blockMs: 500,
    durationS: 20,
    underlyings: {
      ETH: [
        { atS: 0, price: '3000.5', vol: '1.25' },
        { atS: 10, price: 2000 },
      ],
    },
    liquidity: 'none',
  });
  assert.equal(s.blockMs, 500);
  assert.equal(s.durationMs, 20_000);
  assert.equal(s.liquidity, null);
  const p = resolvePath(s.paths.get('ETH')!, 0n, 'underlyings.ETH');
  assert.equal(p[0]!.priceQuote, 3_000_500_000n);
  assert.equal(p[0]!.volPpm, 1_250_000);
  assert.equal(samplePath(p, 30_000).priceQuote, 2_000n * USDC);
  const d = parseScenario(scenario());
  assert.equal(d.durationMs, 10_000, 'duration defaults to the last point');
  assert.equal(d.blockMs, 1_000);
  assert.notEqual(d.liquidity, null);
});

test('bad scenarios are refused with the field named', () => {
  rejects([], 'scenario');
  rejects(scenario({ name: 'bad name' }), 'name');
  rejects(scenario({ blockMs: 0 }), 'blockMs');
  rejects(scenario({ extra: 1 }), 'scenario.extra');
  rejects(scenario({ underlyings: {} }), 'underlyings');
  rejects(scenario({ underlyings: { btc: [{ atS: 0, moveBps: 0 }] } }), 'underlyings.btc');
  rejects(scenario({ underlyings: { BTC: [] } }), 'underlyings.BTC');
  rejects(scenario({ underlyings: { BTC: [{ atS: 5, moveBps: 0 }] } }), 'underlyings.BTC[0].atS');
  rejects(
    scenario({
      underlyings: {
        BTC: [
          { atS: 0, moveBps: 0 },
          { atS: -1, moveBps: 0 },
        ],
      },
    }),
    'underlyings.BTC[1].atS',
  );
  rejects(
    scenario({
      underlyings: {
        BTC: [
          { atS: 0, moveBps: 0 },
          { atS: 9, moveBps: 0 },
          { atS: 8, moveBps: 0 },
        ],
      },
    }),
    'underlyings.BTC[2].atS',
  );
  rejects(scenario({ underlyings: { BTC: [{ atS: 0 }] } }), 'underlyings.BTC[0]');
  rejects(
    scenario({ underlyings: { BTC: [{ atS: 0, moveBps: 0, price: 1 }] } }),
    'underlyings.BTC[0]',
  );
  rejects(
    scenario({ underlyings: { BTC: [{ atS: 0, moveBps: -10_000 }] } }),
    'underlyings.BTC[0].moveBps',
  );
  rejects(
    scenario({ underlyings: { BTC: [{ atS: 0, moveBps: 1.5 }] } }),
    'underlyings.BTC[0].moveBps',
  );
  rejects(
    scenario({ underlyings: { BTC: [{ atS: 0, price: '-1' }] } }),
    'underlyings.BTC[0].price',
  );
  rejects(scenario({ underlyings: { BTC: [{ atS: 0, price: '0' }] } }), 'underlyings.BTC[0].price');
  rejects(
    scenario({ underlyings: { BTC: [{ atS: 0, price: 1, vol: 0 }] } }),
    'underlyings.BTC[0].vol',
  );
  rejects(
    scenario({ underlyings: { BTC: [{ atS: 0, price: 1, oracle: 'off' }] } }),
    'underlyings.BTC[0].oracle',
  );
  rejects(
    scenario({ underlyings: { BTC: [{ atS: 0, price: 1, smiles: 'stale' }] } }),
    'underlyings.BTC[0].smiles',
  );
  rejects(
    scenario({ underlyings: { BTC: [{ atS: 0, price: 1, colour: 1 }] } }),
    'underlyings.BTC[0].colour',
  );
  rejects(scenario({ durationS: 100_000 }), 'durationS');
  rejects(scenario({ liquidity: 'lots' }), 'liquidity');
  rejects(
    scenario({ liquidity: { levelsBps: [20, 10], quotePerLevel: 1 } }),
    'liquidity.levelsBps[1]',
  );
  rejects(
    scenario({ liquidity: { levelsBps: [10], quotePerLevel: 0 } }),
    'liquidity.quotePerLevel',
  );
  assert.throws(
    () => resolvePath(parseScenario(scenario()).paths.get('BTC')!, 0n, 'underlyings.BTC'),
    (e: unknown) => e instanceof ScenarioError && e.field === 'underlyings.BTC[0].moveBps',
  );
});

test('decimals are exact', () => {
  assert.equal(parseDecimal('0.000001', 'x', 6), 1n);
  assert.equal(parseDecimal(60000, 'x', 6), 60_000_000_000n);
  assert.equal(parseDecimal('1.5', 'x', 6), 1_500_000n);
  assert.throws(() => parseDecimal('1.0000001', 'x', 6), ScenarioError);
  assert.throws(() => parseDecimal('1e3', 'x', 6), ScenarioError);
});

test('interpolation stays between its points and hits them exactly', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          dtS: fc.integer({ min: 0, max: 100 }),
          moveBps: fc.integer({ min: -9_999, max: 50_000 }),
        }),
        {
          minLength: 1,
          maxLength: 8,
        },
      ),
      fc.integer({ min: 0, max: 1_000_000 }),
      (raw, atMs) => {
        let atS = 0;
        const points = raw.map((p, i) => {
          atS += i === 0 ? 0 : p.dtS;
          return { atS, moveBps: p.moveBps };
        });
        const s = parseScenario({ name: 'p', durationS: 1_000, underlyings: { BTC: points } });
        const resolved = resolvePath(s.paths.get('BTC')!, 1_000n * USDC, 'x');
        const sample = samplePath(resolved, atMs).priceQuote;
        const prices = resolved.map((p) => p.priceQuote);
        const lo = prices.reduce((a, b) => (a < b ? a : b));
        const hi = prices.reduce((a, b) => (a > b ? a : b));
        assert.ok(sample >= lo && sample <= hi);
        // At a point's own time the path is that point (the last of equal times: a gap).
        const last = resolved.filter((p) => p.atMs === resolved[resolved.length - 1]!.atMs).at(-1)!;
        assert.equal(samplePath(resolved, last.atMs).priceQuote, last.priceQuote);
      },
    ),
    { seed: 7, numRuns: 200 },
  );
});
