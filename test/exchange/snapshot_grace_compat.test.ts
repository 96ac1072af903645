// A snapshot written by the build before maintenance within the grace was
// taken by the last smile (format 11), in mid-grace, restores here to
// the appHash that build had, and the node restored from it runs on as a
// node of this build that ran the whole way: what lets a chain stopped at a
// halt height amid a smile or index outage resume under this build
// (docs/operations.md, "Maintenance within the grace by the last smile").
//
// test/fixtures/snapshot-format11-grace-{smile,index}.snap: the scenario
// below (`upToGrace`) run by the format 11 build to its snapshot height, without a mark
// interval with the smile stale, with a one-minute interval with the index
// stale (and the smile fresh).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  SNAPSHOT_FORMAT_PREVIOUS,
  decodeSnapshot,
  encodeSnapshot,
} from '../../src/exchange/snapshot.ts';
import {
  equityQuote,
  initialMarginQuote,
  maintenanceMarginQuote,
} from '../../src/exchange/margin.ts';
import type { Exchange } from '../../src/exchange/index.ts';
import { toHex } from '../../src/lib/bytes.ts';
import {
  FLAT_SMILE,
  Harness,
  LISTING_DAY_EXPIRY_MS,
  LISTING_DAY_START_MS,
  USDC,
  dailyListingGenesis,
  key,
  limit,
  replacer,
} from './helpers.ts';

const MINUTE_MS = 60_000;
const START_MS = LISTING_DAY_START_MS;
const EXPIRY_MS = LISTING_DAY_EXPIRY_MS;
const CALL = 'BTC-2MAR26-50000-C';
const PUT = 'BTC-2MAR26-49000-P';
const FLAT = FLAT_SMILE;
const alice = key('listing-alice');
const bob = key('listing-bob');
const carol = key('listing-restore-carol');
const dave = key('listing-restore-dave');

const CASES = [
  {
    stale: 'smile',
    interval: undefined,
    file: 'snapshot-format11-grace-smile.snap',
    appHash: 'b3de3dfdd8a1609006ba7d244c371b770a49f342debf484ffeb33f3f6b8ece13',
  },
  {
    stale: 'index',
    interval: MINUTE_MS,
    file: 'snapshot-format11-grace-index.snap',
    appHash: '1f209879b19ecbe198735a27fadf913d11fafb5cd111ab7d5032309077765caa',
  },
] as const;

/**
 * Alice short ten calls, Dave ten puts, Bob long them, Carol quoting calls;
 * then the smile (or BTC's index) stops, and three blocks on, with no move,
 * the calls are within their grace: the snapshot height. Returns the BTC
 * price withheld where the index stopped.
 */
function upToGrace(h: Harness, stale: 'smile' | 'index'): bigint {
  h.smiles = [
    { underlying: 'BTC', expiryMs: EXPIRY_MS, svi: FLAT },
    { underlying: 'ETH', expiryMs: EXPIRY_MS, svi: FLAT },
  ];
  const ok = (k: typeof alice, action: Parameters<Harness['tx']>[1]): void => {
    const r = h.one(k, action).actions[0]!;
    assert.ok(r.ok, JSON.stringify(r, replacer));
  };
  h.fund(alice, 12_000n * USDC);
  h.fund(dave, 15_000n * USDC);
  h.fund(bob, 1_000_000n * USDC);
  h.fund(carol, 1_000_000n * USDC);
  h.block([], MINUTE_MS);
  const call = h.ex.state.marketByName.get(CALL)!;
  const put = h.ex.state.marketByName.get(PUT)!;
  ok(alice, limit(CALL, 'sell', call.markTicks, 10));
  ok(bob, limit(CALL, 'buy', call.markTicks, 10, { timeInForce: 'IOC' }));
  ok(dave, limit(PUT, 'sell', put.markTicks, 10));
  ok(bob, limit(PUT, 'buy', put.markTicks, 10, { timeInForce: 'IOC' }));
  ok(bob, limit(PUT, 'buy', put.markTicks, 5));
  ok(carol, limit(CALL, 'sell', call.markTicks * 30, 10));
  ok(carol, limit(CALL, 'buy', Math.max(1, call.markTicks - 50), 10));
  const btc = h.oracle.BTC!;
  if (stale === 'smile') h.smiles = null;
  else {
    const { BTC: _, ...withoutBtc } = h.oracle;
    h.oracle = withoutBtc;
  }
  h.block([], 61_000);
  h.block([], 1_000);
  h.block([], 1_000);
  assert.ok(call.optionMark === null && !call.unshockedGraceOver, 'within the grace');
  return btc;
}

function margins(ex: Exchange): string {
  return JSON.stringify(
    ex.state.accounts
      .filter((a) => a.listed.length > 0)
      .map((a) => [
        a.index,
        equityQuote(ex.state, a),
        initialMarginQuote(ex.state, a),
        maintenanceMarginQuote(ex.state, a),
      ]),
    replacer,
  );
}

for (const c of CASES) {
  test(`a snapshot written in mid-grace (${c.stale} stale) by the build before restores to its appHash, and runs on as a node of this build that ran the whole way`, () => {
    const saved = new Uint8Array(readFileSync(new URL(`../fixtures/${c.file}`, import.meta.url)));
    const g = dailyListingGenesis(START_MS);
    if (c.interval !== undefined) g.listing!.markIntervalMs = c.interval;
    const h = new Harness(g);
    const btc = upToGrace(h, c.stale);
    // The same state: this build's snapshot of it in format 11 is the same bytes.
    assert.equal(toHex(h.ex.appHash), c.appHash);
    assert.equal(toHex(encodeSnapshot(h.ex, SNAPSHOT_FORMAT_PREVIOUS)), toHex(saved));
    const restored = decodeSnapshot(saved, { checkInvariants: true });
    assert.equal(toHex(restored.appHash), c.appHash);
    assert.equal(margins(restored), margins(h.ex));
    const call = h.ex.state.marketByName.get(CALL)!;
    // BTC up, then down, then quiet past the grace; where the index stopped,
    // the smile moves every few blocks and the index comes back moved.
    const moves = [
      ...new Array<bigint>(40).fill(200n * USDC),
      ...new Array<bigint>(60).fill(-250n * USDC),
      ...new Array<bigint>(15).fill(0n),
    ];
    let price = btc;
    const seen = new Set<string>();
    let withinGrace = 0;
    for (const [i, move] of moves.entries()) {
      price += move;
      if (c.stale === 'smile') h.oracle = { ...h.oracle, BTC: price };
      else if (i % 7 === 3) {
        const a = FLAT.a + BigInt(i) * 10n ** 12n;
        h.smiles = [{ underlying: 'BTC', expiryMs: EXPIRY_MS, svi: { ...FLAT, a } }];
      }
      if (c.stale === 'index' && i === 30) h.oracle = { ...h.oracle, BTC: price };
      const block = h.nextBlock([], i >= 100 ? MINUTE_MS : 1_000);
      const a = h.ex.finalizeBlock(block);
      const b = restored.finalizeBlock(block);
      assert.equal(
        JSON.stringify({ r: b.results, e: b.events }, replacer),
        JSON.stringify({ r: a.results, e: a.events }, replacer),
        `${c.stale}: results and events, step ${i}`,
      );
      assert.deepEqual(b.appHash, a.appHash, `${c.stale}: appHash, step ${i}`);
      assert.equal(margins(restored), margins(h.ex), `${c.stale}: margins, step ${i}`);
      for (const e of a.events) seen.add(e.type);
      if (call.optionMark === null && !call.unshockedGraceOver) withinGrace++;
    }
    assert.ok(withinGrace >= 20, `${c.stale}: ${withinGrace} blocks within the grace`);
    if (c.stale === 'smile') {
      // The grace ran out, and the calls' seller was liquidated on the way.
      assert.ok(call.unshockedGraceOver, 'the grace is over');
      assert.ok(seen.has('liquidation'), [...seen].join(', '));
    } else assert.ok(call.optionMark !== null, 'marked again once the index is back');
  });
}
