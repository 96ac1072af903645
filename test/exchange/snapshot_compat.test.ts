// A snapshot written by the build before this one (format 10, SNAPSHOT_FORMAT_PREVIOUS)
// is read by this build with the appHash that build computed: what lets a
// chain stopped at a halt height by it resume under this one
// (docs/operations.md, "Upgrades"). The format before that (9) is refused,
// naming the formats this build reads.
//
// test/fixtures/snapshot-format10.snap: `zomma stress generate --accounts 20`
// run by the format 10 build (20 accounts with perpetual, dated future and
// option positions, the devnet listing's 42 markets), height 5.
// test/fixtures/snapshot-format10-rich.snap: rich_state.ts's rich(60_000) run
// by the format 10 build: pending and executed halt proposals, a jailed
// validator, a volatility auction, kept option marks, agents, deposits.
// test/fixtures/snapshot-format9.snap: the stress state by the format 9 build.

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
import { rich } from './rich_state.ts';

function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(`../fixtures/${name}`, import.meta.url)));
}

const CASES = [
  {
    file: 'snapshot-format10.snap',
    height: 5,
    appHash: '725652102a0e19216f4066bba4d12dd7a3b3cc51e6844379942f5d44488d0793',
  },
  {
    file: 'snapshot-format10-rich.snap',
    height: 37,
    appHash: '80293058ca296b83daf7f303f60d41d38a8e2593f65e90361db09a4b15ff729f',
  },
] as const;

for (const c of CASES) {
  test(`a snapshot written by the build before (format 10, ${c.file}) restores to the appHash it had there, and is written again in this build’s format`, () => {
    const bytes = fixture(c.file);
    assert.equal(SNAPSHOT_FORMAT_PREVIOUS, SNAPSHOT_FORMAT - 1);
    assert.equal(bytes[0], SNAPSHOT_FORMAT_PREVIOUS);
    const ex = decodeSnapshot(bytes, { checkInvariants: true });
    assert.equal(ex.state.height, c.height);
    assert.equal(toHex(ex.appHash), c.appHash);
    // This build writes the same state in format 10 as the build before did.
    assert.equal(toHex(encodeSnapshot(ex, SNAPSHOT_FORMAT_PREVIOUS)), toHex(bytes));
    const again = encodeSnapshot(ex);
    assert.equal(again[0], SNAPSHOT_FORMAT);
    assert.notEqual(again.length, bytes.length, 'format 11 carries each market’s risk flag');
    assert.equal(toHex(decodeSnapshot(again, { checkInvariants: true }).appHash), c.appHash);
  });
}

test('the rich state of the format 10 fixture is the one this build reaches: its pending proposals restore with it', () => {
  const h = rich(60_000);
  assert.equal(toHex(h.ex.appHash), CASES[1].appHash);
  const ex = decodeSnapshot(fixture('snapshot-format10-rich.snap'));
  assert.equal([...ex.state.proposals.values()].filter((p) => !p.executed).length, 2);
});

test('a snapshot of format 9 is refused, naming the formats this build reads', () => {
  const bytes = fixture('snapshot-format9.snap');
  assert.equal(bytes[0], 9);
  assert.throws(
    () => decodeSnapshot(bytes),
    (e: unknown) =>
      e instanceof SnapshotFormatError &&
      e.foundFormat === 9 &&
      e.message.includes(`format ${SNAPSHOT_FORMAT} (and ${SNAPSHOT_FORMAT_PREVIOUS}`),
  );
});
