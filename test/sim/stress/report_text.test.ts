import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildReport,
  generateState,
  parseScenario,
  reportText,
  runStress,
} from '../../../src/sim/stress/index.ts';
import type { StressReport } from '../../../src/sim/stress/index.ts';

const FLAT = parseScenario({
  name: 'flat',
  blockMs: 5_000,
  underlyings: {
    '*': [
      { atS: 0, moveBps: 0 },
      { atS: 10, moveBps: 0 },
    ],
  },
});

/** A real report, its money figures replaced by ones with fractions of a cent. */
function reportWithFractions(): StressReport {
  const { exchange } = generateState({ accounts: 4, seed: 1, optionSharePct: 0 });
  const r = buildReport(runStress(exchange, FLAT));
  // Quote units: $0.01 is 10,000. Each part is half a cent or more past a
  // whole cent, so cut one by one they add up to a cent less than their sum.
  const startQuote = 1_000_000_005_000n; // $1,000,000.005
  const feesQuote = 1_234_565_000n; // $1,234.565
  const dustQuote = 7_000n; // $0.007
  const coveredQuote = 2_000n; // $0.002
  return {
    ...r,
    insurance: {
      ...r.insurance,
      startQuote,
      endQuote: startQuote + feesQuote + dustQuote - coveredQuote,
      minQuote: startQuote,
      coverQuote: coveredQuote,
    },
    liquidations: { ...r.liquidations, feesQuote, notionalQuote: 5_005_000n },
    deleveraging: { ...r.deleveraging, notionalQuote: 3_005_000n, socializedQuote: 9_999n },
    badDebt: { ...r.badDebt, coveredQuote, deficitQuote: 19_999n },
    funding: { ...r.funding, dustQuote },
    // $5.005 of options at the end, $2.006 with the start smiles.
    options: {
      ...r.options,
      markets: 1,
      valueEndQuote: 5_005_000n,
      valueEndAtStartVolQuote: 2_006_000n,
    },
  };
}

/** The dollar figures of the table's line that starts with `label`, in cents. */
function centsOf(text: string, label: string): bigint[] {
  const line = text.split('\n').find((l) => l.startsWith(label));
  assert.ok(line !== undefined, `a line ${label}`);
  return [...line.matchAll(/-?\$([\d,]+)\.(\d\d)/g)].map((m) =>
    BigInt(`${m[1]!.replaceAll(',', '')}${m[2]!}`),
  );
}

test('the table rounds once: its totals are the sums of the figures it shows', () => {
  const text = reportText(reportWithFractions());
  const [start, end, low] = centsOf(text, 'insurance fund') as [bigint, bigint, bigint];
  const [fees] = centsOf(text, 'liquidation fees') as [bigint];
  const [, dust] = centsOf(text, 'funding') as [bigint, bigint];
  const [badDebt, paid, socialized, uncovered] = centsOf(text, 'bad debt') as [
    bigint,
    bigint,
    bigint,
    bigint,
  ];
  const [notional, book, deleveraged] = centsOf(text, 'notional liquidated') as [
    bigint,
    bigint,
    bigint,
  ];
  // The exact end, $1,001,234.575, rounded down; the fund's low is its start.
  assert.equal(end, 100_123_457n, text);
  assert.equal(start, 100_000_000n, text);
  assert.equal(low, start, text);
  assert.equal(start + fees + dust - paid, end, `the fund's end adds up: ${text}`);
  assert.equal(paid + socialized + uncovered, badDebt, `bad debt adds up: ${text}`);
  assert.equal(book + deleveraged, notional, `notional adds up: ${text}`);
  // Each part within a cent of its exact value.
  assert.ok(fees === 123_456n || fees === 123_457n, `fees ${fees}`);
  assert.ok(dust <= 1n && paid <= 1n, `dust ${dust}, paid ${paid}`);
  // $5.005 + $3.005 = $8.01 in all.
  assert.equal(notional, 801n, text);
  const [, optionsEnd, withStartSmiles, added] = centsOf(text, 'option marks') as bigint[];
  assert.equal(optionsEnd! - withStartSmiles!, added, `the vol path's addition adds up: ${text}`);
});
