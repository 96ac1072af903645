// A snapshot written by the build before this one (format 11, SNAPSHOT_FORMAT_PREVIOUS)
// is read by this build with the appHash that build computed: what lets a
// chain stopped at a halt height by it resume under this one
// (docs/operations.md, "Upgrades"). The format before that (10) is refused,
// naming the formats this build reads.
//
// test/fixtures/snapshot-format11.snap: `zomma stress generate --accounts 20`
// run by the format 11 build (20 accounts with perpetual, dated future and
// option positions, the devnet listing's 42 markets), height 5.
// test/fixtures/snapshot-format11-rich.snap: rich_state.ts's rich(60_000) run
// by the format 11 build, then a setMarketRisk executed on ETH (a band
// added) and one pending on BTC: pending and executed halt proposals, risk
// parameters set by governance, a jailed validator, a volatility auction,
// kept option marks, agents, deposits.
// test/fixtures/snapshot-format10.snap: the stress state by the format 10 build.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  SNAPSHOT_FORMAT,
  SNAPSHOT_FORMAT_PREVIOUS,
  SnapshotFormatError,
  decodeSnapshot,
  encodeSnapshot,
} from '../../src/exchange/index.ts';
import { toHex } from '../../src/lib/bytes.ts';
import type { Action } from '../../src/exchange/tx/types.ts';
import { rich } from './rich_state.ts';
import { USDC, VALIDATORS, accepted } from './helpers.ts';

function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(`../fixtures/${name}`, import.meta.url)));
}

const CASES = [
  {
    file: 'snapshot-format11.snap',
    height: 5,
    appHash: '725652102a0e19216f4066bba4d12dd7a3b3cc51e6844379942f5d44488d0793',
  },
  {
    file: 'snapshot-format11-rich.snap',
    height: 41,
    appHash: 'cb0dc2b79b6bbb0a02dc9fb0ff1a90889f9dba66ca72ee95a54c527593efa3ca',
  },
] as const;

for (const c of CASES) {
  test(`a snapshot written by the build before (format 11, ${c.file}) restores to the appHash it had there, and is written again in this build’s format`, () => {
    const bytes = fixture(c.file);
    assert.equal(SNAPSHOT_FORMAT_PREVIOUS, SNAPSHOT_FORMAT - 1);
    assert.equal(bytes[0], SNAPSHOT_FORMAT_PREVIOUS);
    const ex = decodeSnapshot(bytes, { checkInvariants: true });
    assert.equal(ex.state.height, c.height);
    assert.equal(toHex(ex.appHash), c.appHash);
    assert.ok(!ex.state.feeTiersChanged);
    assert.equal(ex.state.feeTiers, ex.state.genesis.feeTiers);
    // This build writes the same state in format 11 as the build before did.
    assert.equal(toHex(encodeSnapshot(ex, SNAPSHOT_FORMAT_PREVIOUS)), toHex(bytes));
    const again = encodeSnapshot(ex);
    assert.equal(again[0], SNAPSHOT_FORMAT);
    assert.equal(again.length, bytes.length + 1, 'format 12 carries the fee schedule’s flag');
    assert.equal(toHex(decodeSnapshot(again, { checkInvariants: true }).appHash), c.appHash);
  });
}

/** rich(60_000), then a setMarketRisk executed on ETH and one pending on BTC: the rich fixture's state. */
function richWithRisk(): ReturnType<typeof rich> {
  const h = rich(60_000);
  const risk = {
    initialMarginPpm: 80_000,
    maintenanceMarginPpm: 60_000,
    imfStepQuote: 10_000_000n * USDC,
    imfStepPpm: 10_000,
    liquidationQuoteMaxPerBlock: 5_000_000n * USDC,
  };
  const steps: [number, Action][] = [
    [
      0,
      {
        kind: 'govPropose',
        proposalId: 20,
        proposal: {
          kind: 'setMarketRisk',
          instrument: 'ETH-PERPETUAL',
          risk: { ...risk, priceBandPpm: 50_000 },
        },
      },
    ],
    [1, { kind: 'govVote', proposalId: 20, approve: true }],
    [2, { kind: 'govVote', proposalId: 20, approve: true }],
    [
      1,
      {
        kind: 'govPropose',
        proposalId: 21,
        proposal: { kind: 'setMarketRisk', instrument: 'BTC-PERPETUAL', risk },
      },
    ],
  ];
  for (const [v, action] of steps) accepted(h.one(VALIDATORS[v]!, action));
  return h;
}

test('the rich state of the format 11 fixture is the one this build reaches: its proposals and risk parameters restore with it', () => {
  const h = richWithRisk();
  assert.equal(toHex(h.ex.appHash), CASES[1].appHash);
  const ex = decodeSnapshot(fixture('snapshot-format11-rich.snap'));
  assert.equal([...ex.state.proposals.values()].filter((p) => !p.executed).length, 3);
  assert.ok(ex.state.markets[1]!.riskChanged);
  assert.deepEqual(encodeSnapshot(ex), encodeSnapshot(h.ex));
});

test('a snapshot of format 10 is refused, naming the formats this build reads', () => {
  const bytes = fixture('snapshot-format10.snap');
  assert.equal(bytes[0], 10);
  assert.throws(
    () => decodeSnapshot(bytes),
    (e: unknown) =>
      e instanceof SnapshotFormatError &&
      e.foundFormat === 10 &&
      e.message.includes(`format ${SNAPSHOT_FORMAT} (and ${SNAPSHOT_FORMAT_PREVIOUS}`),
  );
});
