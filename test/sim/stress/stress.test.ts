import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  checkInvariants,
  decodeSnapshot,
  encodeSnapshot,
  equityQuote,
} from '../../../src/exchange/index.ts';
import type { Exchange } from '../../../src/exchange/index.ts';
import { openFileSnapshotStore } from '../../../src/node/storage/snapshot_store.ts';
import {
  BUILTIN_SCENARIOS,
  buildReport,
  builtinScenario,
  generateState,
  loadState,
  reportHtml,
  reportJson,
  runStress,
} from '../../../src/sim/stress/index.ts';
import type { StressReport } from '../../../src/sim/stress/index.ts';

// One generated state of a few thousand accounts, shared by every test here.
const ACCOUNTS = 2_500;
const generated = generateState({ accounts: ACCOUNTS, seed: 11 });
const snapshot = encodeSnapshot(generated.exchange);

function conserved(ex: Exchange): boolean {
  const s = ex.state;
  let cash = 0n;
  for (const a of s.accounts) cash += a.cashQuote;
  return s.depositedQuote - s.withdrawnQuote === cash + s.insuranceQuote + s.feePoolQuote;
}

const reports = new Map<string, StressReport>();

function run(name: string): StressReport {
  const ex = decodeSnapshot(snapshot);
  let blocks = 0;
  const r = runStress(ex, builtinScenario(name)!, {
    onBlock: (after) => {
      blocks++;
      // finalizeBlock already ran checkInvariants (the option is on); this
      // restates the collateral equation on its own.
      assert.ok(
        conserved(after),
        `${name}: collateral not conserved at height ${after.state.height}`,
      );
    },
  });
  checkInvariants(ex.state);
  const report = buildReport(r);
  assert.equal(blocks, report.blocks);
  assert.equal(report.invariantsChecked, true);
  return report;
}

test('the generated state: every account funded, leveraged both ways, no refusal', () => {
  const { exchange, summary } = generated;
  assert.equal(summary.rejected, 0);
  assert.equal(summary.accounts, ACCOUNTS);
  assert.equal(summary.withPositions, ACCOUNTS);
  checkInvariants(exchange.state);
  let longs = 0;
  let shorts = 0;
  const leverage = new Set<bigint>();
  for (const a of exchange.state.accounts) {
    const m = exchange.state.markets.find((x) => a.positions[x.index]!.sizeLots !== 0)!;
    const size = a.positions[m.index]!.sizeLots;
    if (size > 0) longs++;
    else shorts++;
    const notional = BigInt(Math.abs(size)) * m.markQuotePerLot;
    leverage.add(notional / equityQuote(exchange.state, a));
  }
  assert.equal(longs, shorts);
  assert.ok(leverage.size >= 10, `leverage should vary, got ${[...leverage].join(',')}`);
  // The same seed builds the same state.
  const again = generateState({ accounts: 50, seed: 11 });
  assert.deepEqual(
    again.exchange.appHash,
    generateState({ accounts: 50, seed: 11 }).exchange.appHash,
  );
});

for (const name of Object.keys(BUILTIN_SCENARIOS)) {
  test(`${name}: collateral conserved after every block, report complete`, () => {
    const report = run(name);
    reports.set(name, report);
    assert.ok(report.blocks >= 600);
    assert.equal(report.accounts, ACCOUNTS);
    assert.equal(report.liquidity.providerLiquidated, name === 'crash-40');
    assert.ok(report.liquidity.ordersPlaced > 0);
    // The generated state lists no option market, so the oracle holds no smile to scale.
    assert.equal(report.volatility.applied, false);
    assert.match(report.volatility.note, /no smile in the oracle state/);
    assert.match(reportHtml(report), /Volatility multiplier \(recorded only\)/);
    assert.ok(
      report.underlyings.every((u) => u.volPpmMax > 1_000_000),
      'vol path recorded',
    );
    assert.match(report.reportHash, /^[0-9a-f]{64}$/);
    assert.ok(reportJson(report).length > 0);
    assert.match(reportHtml(report), /<svg[^]*Insurance fund/);
  });
}

test('crash-40 liquidates accounts, deleverages, and leaves no liquidation unresolved', () => {
  const r = reports.get('crash-40') ?? run('crash-40');
  assert.ok(r.liquidations.accounts > ACCOUNTS / 10, `only ${r.liquidations.accounts} liquidated`);
  assert.ok(r.liquidations.notionalQuote > 0n);
  assert.ok(r.deleveraging.events > 0);
  // Slices cut by the per-block cap are deleveraged too, so no account is
  // left holding positions with negative equity (the fund, which used to be
  // drained by such stalled accounts, now pays only gaps past bankruptcy).
  assert.equal(r.badDebt.openNegativeEquityQuote, 0n);
  assert.equal(r.badDebt.deficitAccounts, 0);
  assert.equal(r.underlyings[0]!.endQuote * 10n, r.underlyings[0]!.startQuote * 6n);
  // The insurance series is what the fund was after each block.
  assert.equal(r.series.at(-1)!.insuranceQuote, r.insurance.endQuote);
});

test('gap-up-25 liquidates shorts; oracle-freeze holds the index while frozen', () => {
  const gap = reports.get('gap-up-25') ?? run('gap-up-25');
  assert.ok(gap.liquidations.accounts > 0);
  const freeze = reports.get('oracle-freeze') ?? run('oracle-freeze');
  const frozen = freeze.series.filter((s) => s.frozen[0]);
  assert.equal(freeze.underlyings[0]!.frozenBlocks, 300);
  assert.ok(frozen.every((s) => s.indexQuote[0] === freeze.underlyings[0]!.startQuote));
  assert.ok(frozen.at(-1)!.pathQuote[0]! < freeze.underlyings[0]!.startQuote);
});

test('deterministic: the same state and scenario give the same report hash', () => {
  const first = reports.get('gap-up-25') ?? run('gap-up-25');
  const second = run('gap-up-25');
  assert.equal(second.reportHash, first.reportHash);
  assert.equal(second.appHash, first.appHash);
});

test("a node's snapshot file (ZSNP framing) loads as the same state", () => {
  const dir = mkdtempSync(join(tmpdir(), 'zomma-stress-'));
  try {
    const store = openFileSnapshotStore(dir);
    store.save(generated.exchange.state.height, snapshot);
    const file = readFileSync(
      join(dir, `snapshot-${String(generated.exchange.state.height).padStart(16, '0')}.snap`),
    );
    const { exchange, framing } = loadState(file);
    assert.equal(framing, 'node');
    assert.deepEqual(exchange.appHash, generated.exchange.appHash);
    assert.equal(loadState(snapshot).framing, 'bare');
    const corrupt = new Uint8Array(file);
    corrupt[corrupt.length - 1] = corrupt[corrupt.length - 1]! ^ 1;
    assert.throws(() => loadState(corrupt), /checksum/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
