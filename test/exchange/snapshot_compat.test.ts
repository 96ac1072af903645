// A snapshot written by the build before this one (format 9, SNAPSHOT_FORMAT_PREVIOUS)
// is read by this build with the appHash that build computed: what lets a
// chain stopped at a halt height by it resume under this one
// (docs/operations.md, "Upgrades").
//
// test/fixtures/snapshot-format9.snap: `zomma stress generate --accounts 20`
// run by the format 9 build (20 accounts with perpetual, dated future and
// option positions, the devnet listing's 42 markets), height 5.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  SNAPSHOT_FORMAT,
  SNAPSHOT_FORMAT_PREVIOUS,
  decodeSnapshot,
  encodeSnapshot,
} from '../../src/exchange/index.ts';
import { toHex } from '../../src/lib/bytes.ts';

const FORMAT9 = new Uint8Array(
  readFileSync(new URL('../fixtures/snapshot-format9.snap', import.meta.url)),
);
/** The appHash the format 9 build restored it to. */
const FORMAT9_APP_HASH = '725652102a0e19216f4066bba4d12dd7a3b3cc51e6844379942f5d44488d0793';

test('a snapshot written by the build before (format 9) restores to the appHash it had there, and is written again in this build’s format', () => {
  assert.equal(FORMAT9[0], SNAPSHOT_FORMAT_PREVIOUS);
  const ex = decodeSnapshot(FORMAT9, { checkInvariants: true });
  assert.equal(ex.state.height, 5);
  assert.ok(
    ex.state.markets.some((m) => m.listed && m.instrument.kind === 'option' && m.longLots > 0),
    'options held',
  );
  assert.equal(toHex(ex.appHash), FORMAT9_APP_HASH);
  const again = encodeSnapshot(ex);
  assert.equal(again[0], SNAPSHOT_FORMAT);
  assert.equal(toHex(decodeSnapshot(again).appHash), FORMAT9_APP_HASH);
});
