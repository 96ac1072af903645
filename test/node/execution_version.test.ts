// EXECUTION_VERSION tied to execution: fixed, deterministic runs of blocks
// through the exchange, touching most of what it executes, with the appHash
// of every block recorded for this execution version. A change that executes
// anything differently moves a hash and fails here until EXECUTION_VERSION is
// bumped and the hashes recorded anew (and the change listed in
// docs/operations.md, "Changes of execution that need this procedure"):
// peers then refuse the builds before it (transport/secure.ts), instead of
// halting on an appHash mismatch far from the cause.
//
// The runs: a generated state (perpetuals, a dated future, options, 200
// accounts) through the stress scenarios crash-40 (liquidations,
// deleveraging, the insurance fund, funding, auctions) and smile-freeze
// (options without a fresh smile: graces, kept marks), and the rich state of
// test/exchange/rich_state.ts (governance proposals, a jailed validator, a
// volatility auction, agents, deposits).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EXECUTION_VERSION } from '../../src/exchange/index.ts';
import { sha256 } from '../../src/crypto/index.ts';
import { toHex } from '../../src/lib/bytes.ts';
import {
  builtinScenario,
  generateState,
  runStress,
  withBlockMs,
} from '../../src/sim/stress/index.ts';
import { rich } from '../exchange/rich_state.ts';

/**
 * The hashes this execution version gives. Update together with
 * EXECUTION_VERSION, never alone: new hashes under the old version would let
 * builds that execute differently connect. The one exception: a change of
 * these runs' inputs alone (the stress generator or scenarios, the rich
 * state), with execution itself untouched, moves them under the same version.
 */
const RECORDED = {
  executionVersion: 23,
  'crash-40': {
    appHash: '5a94430679b8ecfb5143138dc00e325518a7d86fb59c411a4b4a79f25e462a43',
    everyBlock: 'a417796d985b4e55e713baecfa47b39d1d6a3ed4fb9ee2966ecbe4c4dc43b0da',
  },
  'smile-freeze': {
    appHash: 'cf51c3823c63e45e9160b907fa58aed701de7c84aac87a14e2b2ff4ce378519e',
    everyBlock: 'c084b1c24b9b6fde350394844cea4f44b038806d17acde59b39905e1f5dc641e',
  },
  rich: '80293058ca296b83daf7f303f60d41d38a8e2593f65e90361db09a4b15ff729f',
} as const;

const CHANGED =
  'execution changed: bump EXECUTION_VERSION and update this hash (and list the change in ' +
  'docs/operations.md, "Upgrades"). Only if execution (src/exchange, src/math and what they ' +
  'use) is unchanged and the inputs of these runs changed (src/sim/stress: the generator or ' +
  'a scenario; test/exchange/rich_state.ts), record the new hash under the same version';

test('the recorded hashes are those of this execution version', () => {
  assert.equal(
    RECORDED.executionVersion,
    EXECUTION_VERSION,
    'EXECUTION_VERSION changed: record the hashes it gives here (and list the change in docs/operations.md, "Upgrades")',
  );
});

for (const name of ['crash-40', 'smile-freeze'] as const) {
  test(`a generated state through ${name} gives the recorded appHashes, block by block`, () => {
    const { exchange } = generateState({ accounts: 200, seed: 7 });
    const hashes: Uint8Array[] = [];
    runStress(exchange, withBlockMs(builtinScenario(name)!, 5_000), {
      onBlock: (after) => hashes.push(after.appHash),
    });
    const everyBlock = toHex(sha256(Buffer.concat(hashes)));
    assert.equal(toHex(exchange.appHash), RECORDED[name].appHash, `${name}: ${CHANGED}`);
    assert.equal(everyBlock, RECORDED[name].everyBlock, `${name}, every block: ${CHANGED}`);
  });
}

test('the rich state gives the recorded appHash', () => {
  assert.equal(toHex(rich(60_000).ex.appHash), RECORDED.rich, `rich state: ${CHANGED}`);
});
