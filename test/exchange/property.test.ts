// Random flows through the whole state machine (fast-check picks the seeds):
// after every block the invariants hold and the incremental digest equals the
// digest recomputed from scratch; a snapshot taken at any block, restored, and
// fed the remaining blocks gives the very same results, events and appHashes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Prng } from '../../src/lib/prng.ts';
import {
  Exchange,
  SNAPSHOT_FORMAT,
  SnapshotFormatError,
  decodeSnapshot,
  encodeSnapshot,
} from '../../src/exchange/index.ts';
import type { Block, BlockResult } from '../../src/exchange/index.ts';
import type { Action, SignedTx } from '../../src/exchange/tx/types.ts';
import { bytesKey } from '../../src/exchange/keys.ts';
import {
  belowMaintenance,
  equityQuote,
  maintenanceMarginQuote,
} from '../../src/exchange/margin.ts';
import { ORACLE, USDC, VALIDATORS, genesis, key } from './helpers.ts';
import type { Key } from './helpers.ts';

const MARKETS = [
  { instrument: 'BTC-PERPETUAL', underlying: 'BTC', tickQuote: 100_000n },
  { instrument: 'ETH-PERPETUAL', underlying: 'ETH', tickQuote: 10_000n },
];
const TRADERS = Array.from({ length: 6 }, (_, i) => key(`p${i}`));

function randomAction(rng: Prng, index: Record<string, bigint>, orderIds: number[]): Action {
  const m = rng.pick(MARKETS);
  const mid = Number(index[m.underlying]! / m.tickQuote);
  const d = Math.floor(mid / 50);
  const price = Math.max(1, mid + rng.between(-d, d));
  const side = rng.chance(1, 2) ? 'buy' : 'sell';
  const size = rng.between(1, rng.chance(1, 5) ? 20_000 : 2_000);
  const roll = rng.int(100);
  if (roll < 5) return { kind: 'faucet', amountQuote: BigInt(rng.between(1, 2_000)) * USDC };
  if (roll < 45) {
    const tif = rng.pick(['GTC', 'GTC', 'IOC', 'FOK', 'postOnly'] as const);
    const a: Action = {
      kind: 'placeOrder',
      instrument: m.instrument,
      side,
      type: 'limit',
      priceTicks: price,
      sizeLots: size,
      timeInForce: tif,
      reduceOnly: tif !== 'postOnly' && rng.chance(1, 10),
      stp: rng.pick(['cancelResting', 'cancelIncoming', 'cancelBoth'] as const),
    };
    if (rng.chance(1, 5)) a.clientOrderId = `c${rng.int(8)}`;
    if (tif === 'GTC' && rng.chance(1, 6)) a.goodTilMs = 1 + rng.int(100_000_000);
    return a;
  }
  if (roll < 55) {
    return {
      kind: 'placeOrder',
      instrument: m.instrument,
      side,
      type: 'market',
      sizeLots: size,
      timeInForce: 'IOC',
      reduceOnly: rng.chance(1, 4),
      stp: 'cancelResting',
    };
  }
  const id = orderIds.length > 0 ? rng.pick(orderIds) : 1;
  if (roll < 70) return { kind: 'cancel', instrument: m.instrument, orderId: id };
  if (roll < 73)
    return rng.chance(1, 2)
      ? { kind: 'cancelAll' }
      : { kind: 'cancelAll', instrument: m.instrument };
  if (roll < 85)
    return {
      kind: 'amend',
      instrument: m.instrument,
      orderId: id,
      priceTicks: price,
      sizeLots: size,
    };
  if (roll < 90)
    return {
      kind: 'withdraw',
      amountQuote: BigInt(rng.between(1, 20_000)) * USDC,
      destination: 'd',
    };
  if (roll < 95) {
    return {
      kind: 'transfer',
      fromSubaccount: rng.int(2),
      toSubaccount: rng.int(2),
      amountQuote: BigInt(rng.between(1, 20_000)) * USDC,
    };
  }
  return {
    kind: 'batch',
    actions: [randomAction(rng, index, orderIds), randomAction(rng, index, orderIds)].filter(
      (x): x is Exclude<Action, { kind: 'batch' }> => x.kind !== 'batch',
    ),
  };
}

function makeTx(k: Key, subaccount: number, nonce: number, action: Action): SignedTx {
  return {
    chainId: 'zomma-devnet',
    signer: k.publicKey,
    account: k.address,
    subaccount,
    nonce,
    action,
    signature: new Uint8Array(64),
  };
}

/**
 * A flow of blocks from one seed. A driver exchange runs the flow as it is
 * made, so cancels and amends can name orders that really rest (sent by
 * their owner); the blocks are then plain data, replayed by the test.
 */
export function flow(seed: number, blockCount: number): Block[] {
  const rng = new Prng(seed);
  const driver = new Exchange(genesis());
  const index: Record<string, bigint> = { ...ORACLE };
  const blocks: Block[] = [];
  let timeMs = 0;
  let nonce = 0;
  const byAddress = new Map(TRADERS.map((t) => [bytesKey(t.address), t]));
  for (let b = 0; b < blockCount; b++) {
    timeMs += rng.chance(1, 4) ? rng.between(60_000, 2 * 3_600_000) : rng.between(1, 5_000);
    for (const u of Object.keys(index)) {
      // A random walk of up to ±4% per block, with jumps of up to ±10%, so liquidations happen.
      const step = rng.chance(1, 6) ? 100_000 : 40_000;
      const moved = (index[u]! * BigInt(1_000_000 + rng.between(-step, step))) / 1_000_000n;
      index[u] = moved > 0n ? moved : 1n;
    }
    const resting = [...driver.state.orders.values()];
    const txs: SignedTx[] = [];
    const n = b === 0 ? TRADERS.length : rng.between(0, 10);
    for (let i = 0; i < n; i++) {
      let trader = b === 0 ? TRADERS[i]! : rng.pick(TRADERS);
      let subaccount = b === 0 ? 0 : rng.int(2);
      let action: Action =
        b === 0 ? { kind: 'faucet', amountQuote: 5_000n * USDC } : randomAction(rng, index, []);
      if (
        (action.kind === 'cancel' || action.kind === 'amend') &&
        resting.length > 0 &&
        rng.chance(4, 5)
      ) {
        const meta = rng.pick(resting);
        trader = byAddress.get(bytesKey(meta.account.address))!;
        subaccount = meta.account.subaccount;
        const instrument = MARKETS[meta.market]!.instrument;
        action =
          action.kind === 'cancel'
            ? { kind: 'cancel', instrument, orderId: meta.orderId }
            : { ...action, instrument, orderId: meta.orderId };
      }
      const dup = nonce > 0 && rng.chance(1, 30);
      txs.push(makeTx(trader, subaccount, timeMs + (dup ? nonce : ++nonce), action));
    }
    const block = {
      height: b + 1,
      timeMs,
      proposer: VALIDATORS[0]!.publicKey,
      txs,
      oracle: { ...index },
    };
    driver.finalizeBlock(block);
    blocks.push(block);
  }
  return blocks;
}

export function run(ex: Exchange, blocks: Block[], check: boolean): BlockResult[] {
  return blocks.map((block) => {
    const r = ex.finalizeBlock(block);
    if (check) {
      assert.deepEqual(
        ex.digestBytes(),
        ex.digestFromScratch(),
        `digest drifted at ${block.height}`,
      );
      // The division-free liquidation test agrees with its definition.
      ex.state.scan.check(ex.state);
      for (const a of ex.state.accounts) {
        const below = equityQuote(ex.state, a) < maintenanceMarginQuote(ex.state, a);
        assert.equal(belowMaintenance(ex.state, a), below && a.positionCount > 0);
        if (a.slackTicks >= 0 && a.positionCount > 0) {
          // The scan's memo never skips an account it should catch.
          const within = ex.state.markets.every(
            (m, i) =>
              a.positions[i]!.sizeLots === 0 ||
              Math.abs(m.markTicks - a.positions[i]!.slackMarkTicks) <= a.slackTicks,
          );
          if (within) assert.equal(below, false, `slack of ${a.index} hides a liquidation`);
        }
      }
    }
    return r;
  });
}

test('random flows: invariants and incremental digest after every block; snapshot/restore determinism', () => {
  let liquidations = 0;
  let fills = 0;
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      fc.integer({ min: 1, max: 31 }),
      (seed, cut) => {
        const blocks = flow(seed, 32);
        const g = genesis();
        const full = run(new Exchange(g, { checkInvariants: true }), blocks, true);
        const first = new Exchange(g, { checkInvariants: true });
        run(first, blocks.slice(0, cut), false);
        const bytes = encodeSnapshot(first);
        const restored = decodeSnapshot(bytes, { checkInvariants: true });
        assert.deepEqual(restored.appHash, first.appHash);
        assert.deepEqual(encodeSnapshot(restored), bytes);
        const rest = run(restored, blocks.slice(cut), true);
        assert.deepEqual(rest, full.slice(cut));
        for (const r of full) {
          liquidations += r.events.filter((e) => e.type === 'liquidation').length;
          for (const t of r.results)
            for (const a of t.actions) if (a.ok && a.order) fills += a.order.fills.length;
        }
      },
    ),
    { numRuns: 100 },
  );
  // The flows must exercise what they claim to.
  assert.ok(fills > 100, `only ${fills} fills`);
  assert.ok(liquidations > 0, 'no liquidation happened');
});

test('a damaged snapshot is refused with a DecodeError', () => {
  const ex = new Exchange(genesis(), { checkInvariants: true });
  run(ex, flow(7, 12), false);
  const bytes = encodeSnapshot(ex);
  const isDecodeError = (e: unknown) =>
    e instanceof Error && (e as { code?: string }).code === 'DecodeError';
  assert.throws(() => decodeSnapshot(bytes.subarray(0, bytes.length - 1)), isDecodeError);
  assert.throws(() => decodeSnapshot(Uint8Array.of(...bytes, 0)), isDecodeError);
  const flipped = bytes.slice();
  flipped[0] = SNAPSHOT_FORMAT + 1;
  assert.throws(() => decodeSnapshot(flipped), isDecodeError);
});

test('a snapshot of another format is refused first, naming the format found and the one read', () => {
  const ex = new Exchange(genesis());
  run(ex, flow(7, 4), false);
  const bytes = encodeSnapshot(ex);
  assert.equal(bytes[0], SNAPSHOT_FORMAT);
  // Format 1 predates the liquidation backlog flag: refused before any field is read.
  const old = bytes.slice();
  old[0] = 1;
  assert.throws(
    () => decodeSnapshot(old),
    (e: unknown) =>
      e instanceof SnapshotFormatError &&
      e.code === 'DecodeError' &&
      e.foundFormat === 1 &&
      e.supportedFormat === SNAPSHOT_FORMAT &&
      e.message.includes('format 1') &&
      e.message.includes(`format ${SNAPSHOT_FORMAT}`),
  );
  // Format 6 held one nonce window per address for its key and its agents together.
  const six = bytes.slice();
  six[0] = 6;
  assert.throws(
    () => decodeSnapshot(six),
    (e: unknown) => e instanceof SnapshotFormatError && e.foundFormat === 6,
  );
  // Even when the rest is not a snapshot at all.
  assert.throws(() => decodeSnapshot(Uint8Array.of(1, 0xff)), SnapshotFormatError);
});

test('a snapshot with a flipped byte decodes to a valid state or is refused with a DecodeError', () => {
  const ex = new Exchange(genesis());
  run(ex, flow(11, 16), false);
  const bytes = encodeSnapshot(ex);
  const rng = new Prng(3);
  let refused = 0;
  for (let i = 0; i < 300; i++) {
    const mutated = bytes.slice();
    const at = rng.int(mutated.length);
    mutated[at] = mutated[at]! ^ (1 << rng.int(8));
    try {
      decodeSnapshot(mutated);
    } catch (e) {
      assert.equal((e as { code?: string }).code, 'DecodeError', String(e));
      refused++;
    }
  }
  assert.ok(refused > 0);
});
