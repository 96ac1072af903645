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
  withBlockMs,
} from '../../../src/sim/stress/index.ts';
import type { StressReport } from '../../../src/sim/stress/index.ts';

// One generated state of a few thousand accounts, with options and dated
// futures, shared by every test here. The built-ins run at 5-second blocks
// (withBlockMs: the same paths, a fifth of the blocks) because each block
// revalues every held option under 40 scenarios, which a 1-second replay of
// all three would spend most of a minute on; the CLI runs them at their own.
const ACCOUNTS = 3_000;
const BLOCK_MS = 5_000;
const generated = generateState({ accounts: ACCOUNTS, seed: 11 });
const snapshot = encodeSnapshot(generated.exchange);

function conserved(ex: Exchange): boolean {
  const s = ex.state;
  let cash = 0n;
  for (const a of s.accounts) cash += a.cashQuote;
  return s.depositedQuote - s.withdrawnQuote === cash + s.insuranceQuote + s.feePoolQuote;
}

function balancedOpenInterest(ex: Exchange): boolean {
  return ex.state.markets.every((m) => m.retired || m.longLots === m.shortLots);
}

const reports = new Map<string, StressReport>();

/**
 * Per scenario run, the blocks in which some short option without a fresh mark
 * (before its expiry) was within the grace of its stale smile or index, past
 * it, and the blocks in which every held option had a fresh mark again.
 */
interface Graces {
  within: number;
  past: number;
  allMarked: number;
}
const graces = new Map<string, Graces>();

function countGraces(ex: Exchange, g: Graces): void {
  const s = ex.state;
  let within = false;
  let past = false;
  let unmarked = false;
  for (const m of s.markets) {
    if (m.retired || m.instrument.kind !== 'option' || m.longLots === 0) continue;
    if (m.expiryMs <= s.timeMs || m.optionMark !== null) continue;
    unmarked = true;
    if (m.unshockedGraceOver) past = true;
    else within = true;
  }
  if (within) g.within++;
  if (past) g.past++;
  if (!unmarked) g.allMarked++;
}

function run(name: string, from: Uint8Array = snapshot): StressReport {
  const ex = decodeSnapshot(from);
  let blocks = 0;
  const g: Graces = { within: 0, past: 0, allMarked: 0 };
  graces.set(name, g);
  const r = runStress(ex, withBlockMs(builtinScenario(name)!, BLOCK_MS), {
    onBlock: (after) => {
      blocks++;
      countGraces(after, g);
      // finalizeBlock already ran checkInvariants (the option is on); this
      // restates the collateral equation and open interest on their own.
      const at = `${name} at height ${after.state.height}`;
      assert.ok(conserved(after), `${at}: collateral not conserved`);
      assert.ok(balancedOpenInterest(after), `${at}: long and short open interest differ`);
    },
  });
  checkInvariants(ex.state);
  const report = buildReport(r);
  assert.equal(blocks, report.blocks);
  assert.equal(report.invariantsChecked, true);
  return report;
}

test('the generated state: funded, leveraged both ways, options with marks, no refusal', () => {
  const { exchange, summary } = generated;
  const state = exchange.state;
  assert.equal(summary.rejected, 0);
  assert.equal(summary.accounts, ACCOUNTS);
  assert.ok(summary.withPositions > ACCOUNTS * 0.9, `${summary.withPositions} with positions`);
  assert.ok(summary.optionAccounts > ACCOUNTS / 10, `${summary.optionAccounts} hold options`);
  assert.ok(summary.futureAccounts > 0);
  checkInvariants(state);
  assert.ok(balancedOpenInterest(exchange));
  // Every listed expiry has a smile, so every option has a mark.
  for (const m of state.markets) {
    if (m.retired || m.instrument.kind !== 'option') continue;
    assert.ok(m.optionMark !== null && m.markTicks > 0, `${m.params.instrument} has a mark`);
  }
  let nakedShorts = 0;
  let spreads = 0;
  const leverage = new Set<bigint>();
  for (const a of state.accounts) {
    const options = a.listed.filter(
      (p) => p.sizeLots !== 0 && state.markets[p.market]!.instrument.kind === 'option',
    );
    if (options.length === 1 && options[0]!.sizeLots < 0) nakedShorts++;
    if (options.length === 2 && options[0]!.sizeLots * options[1]!.sizeLots < 0) spreads++;
    const m = state.markets.find((x) => !x.listed && a.positions[x.index]!.sizeLots !== 0);
    if (m === undefined) continue;
    const notional = BigInt(Math.abs(a.positions[m.index]!.sizeLots)) * m.markQuotePerLot;
    leverage.add(notional / equityQuote(state, a));
  }
  assert.ok(nakedShorts > 0 && spreads > 0, `${nakedShorts} naked shorts, ${spreads} spreads`);
  assert.ok(leverage.size >= 10, `leverage should vary, got ${[...leverage].join(',')}`);
  // The same seed builds the same state.
  assert.deepEqual(
    generateState({ accounts: 60, seed: 11 }).exchange.appHash,
    generateState({ accounts: 60, seed: 11 }).exchange.appHash,
  );
});

for (const name of Object.keys(BUILTIN_SCENARIOS)) {
  test(`${name}: collateral and open interest balanced after every block, report complete`, () => {
    const report = run(name);
    reports.set(name, report);
    assert.ok(report.blocks >= 120);
    assert.equal(report.accounts, ACCOUNTS);
    // The provider's ladder is liquidated by the falls of 20% or more in this state.
    assert.equal(
      report.liquidity.providerLiquidated,
      name === 'crash-40' || name === 'smile-freeze',
    );
    assert.ok(report.liquidity.ordersPlaced > 0);
    // The vol path scales the smiles of every live expiry, which option marks read.
    assert.equal(report.volatility.applied, true);
    assert.match(report.volatility.note, /scaled \d+ smile\(s\)/);
    assert.match(reportHtml(report), /Volatility multiplier \(applied to the oracle smiles\)/);
    assert.ok(report.options.accounts > 0);
    // The nearest daily expires at 08:00, inside every built-in's span: it settles.
    assert.ok(report.settlement.options > 0, 'the expiring options settled');
    assert.ok(report.settlement.nearestExpiryMs < report.blocks * report.blockMs);
    assert.match(report.reportHash, /^[0-9a-f]{64}$/);
    assert.ok(reportJson(report).length > 0);
    assert.match(reportHtml(report), /<svg[^]*Insurance fund[^]*Options: open value/);
  });
}

test('crash-40 liquidates option accounts, runs into auctions, and leaves nothing unresolved', () => {
  const r = reports.get('crash-40') ?? run('crash-40');
  assert.ok(r.liquidations.accounts > ACCOUNTS / 10, `only ${r.liquidations.accounts} liquidated`);
  assert.ok(r.options.liquidatedAccounts > 0, 'option accounts liquidated');
  assert.ok(r.options.premiumQuote > 0n && r.options.underlyingQuote > r.options.premiumQuote);
  assert.ok(r.deleveraging.events > 0);
  // The perpetuals' price monitoring stops the crash in call auctions, which uncross.
  assert.ok(r.auctions.started > 0 && r.auctions.ended > 0);
  assert.ok(r.auctions.longestMs >= 30_000);
  // Doubled volatility raises what the surviving options are worth.
  assert.ok(r.options.valueEndQuote > r.options.valueEndAtStartVolQuote);
  assert.equal(r.badDebt.openNegativeEquityQuote, 0n);
  assert.equal(r.underlyings[0]!.endQuote * 10n, r.underlyings[0]!.startQuote * 6n);
  // The insurance series is what the fund was after each block.
  assert.equal(r.series.at(-1)!.insuranceQuote, r.insurance.endQuote);
});

test('gap-up-25 liquidates shorts; oracle-freeze holds the index while frozen', () => {
  const gap = reports.get('gap-up-25') ?? run('gap-up-25');
  assert.ok(gap.liquidations.accounts > 0);
  const freeze = reports.get('oracle-freeze') ?? run('oracle-freeze');
  const frozen = freeze.series.filter((s) => s.frozen[0]);
  assert.equal(freeze.underlyings[0]!.frozenBlocks, 60);
  assert.ok(frozen.every((s) => s.indexQuote[0] === freeze.underlyings[0]!.startQuote));
  assert.ok(frozen.at(-1)!.pathQuote[0]! < freeze.underlyings[0]!.startQuote);
});

test('smile-freeze: sellers go through the grace of their stale smiles and past it, the index moving on', () => {
  const r = reports.get('smile-freeze') ?? run('smile-freeze');
  const g = graces.get('smile-freeze')!;
  const blocks = (ms: number): number => ms / BLOCK_MS;
  // Smiles are out from 60 s to 1260 s, stale a minute after the last one:
  // 10 minutes of grace, then 8 past it, then every option marked again.
  assert.equal(r.underlyings[0]!.frozenBlocks, 0);
  assert.equal(r.underlyings[0]!.smilesFrozenBlocks, blocks(1_200_000));
  assert.ok(g.within >= blocks(540_000), `${g.within} blocks within the grace`);
  assert.ok(g.past >= blocks(420_000), `${g.past} blocks past the grace`);
  assert.ok(g.allMarked >= blocks(300_000), `${g.allMarked} blocks with every option marked`);
  // The index followed the path, its 15% gap included, while the smiles held.
  const gap = r.series.find((s) => s.atMs === 540_000)!;
  assert.equal(gap.indexQuote[0]! * 4n, r.underlyings[0]!.startQuote * 3n);
  assert.ok(gap.smilesFrozen[0]);
  assert.ok(r.liquidations.accounts > 0);
  assert.ok(r.options.liquidatedAccounts > 0, 'option accounts liquidated');
  // Not only liquidation events (one per block and position without a fresh
  // mark, closing nothing): option lots closed.
  assert.ok(r.options.bookLots + r.options.deleveragedLots > 0, 'option lots closed');
  // Every shortfall resolved once the smiles came back.
  assert.equal(r.options.shortfallEndQuote, 0n);
  assert.equal(r.badDebt.openNegativeEquityQuote, 0n);
  assert.equal(r.badDebt.deficitQuote, 0n);
});

test('deterministic: the same state and scenario give the same report hash', () => {
  const first = reports.get('gap-up-25') ?? run('gap-up-25');
  const second = run('gap-up-25');
  assert.equal(second.reportHash, first.reportHash);
  assert.equal(second.appHash, first.appHash);
});

test('a perpetuals-only state (no listing) still runs, and says the vol path had nothing', () => {
  const perpetuals = generateState({ accounts: 300, seed: 5, optionSharePct: 0 });
  assert.equal(perpetuals.summary.rejected, 0);
  assert.equal(perpetuals.summary.listedMarkets, 0);
  assert.equal(perpetuals.summary.withPositions, 300);
  const r = run('crash-40', encodeSnapshot(perpetuals.exchange));
  assert.ok(r.liquidations.accounts > 0);
  assert.equal(r.options.markets, 0);
  assert.equal(r.settlement.nearestExpiryMs, -1);
  assert.equal(r.volatility.applied, false);
  assert.match(r.volatility.note, /no smile in the oracle state/);
  assert.match(reportHtml(r), /Volatility multiplier \(recorded only\)/);
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
