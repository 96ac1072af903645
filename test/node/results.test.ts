// Per-block results across restarts: the codec keeps every field of the
// exchange's TxResult; the file store survives reopening, ignores a repeated
// height, restarts at a gap and cuts a torn tail; and a node restarted from its
// home answers `tx` and `block` with the same results as before the restart,
// including heights below its snapshot (so from the log, not re-execution).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ZommaClient, generateKey } from '../../src/api/client/index.ts';
import type { TxView } from '../../src/api/client/index.ts';
import { decode, encode } from '../../src/codec/wire.ts';
import { HOME_FILES } from '../../src/node/config.ts';
import { RESULTS_SYNC_EVERY_HEIGHTS } from '../../src/lib/limits.ts';
import type { BlockDetails, BlockResults } from '../../src/node/results.ts';
import {
  DAMAGED_RECORDS_LOGGED_MAX,
  MemoryResultsStore,
  blockResultsCodec,
  exchangeEventCodec,
  openFileResultsStore,
} from '../../src/node/results.ts';
import { silentLog } from '../../src/node/log.ts';
import { runNode } from '../../src/node/runtime.ts';
import { StorageError, recordLogSyncs } from '../../src/node/storage/index.ts';
import { RECORD_HEADER_BYTES } from '../../src/node/storage/record_log.ts';
import { initSoloHome, until } from '../e2e/helpers.ts';
import { tempDir } from './helpers.ts';
import { recordOffsets } from './storage/layout.ts';

const USDC = 1_000_000n;

function sample(height: number): BlockResults {
  return {
    height,
    appHash: new Uint8Array(32).fill(height),
    results: [
      {
        index: 0,
        ok: true,
        actions: [
          {
            ok: true,
            kind: 'placeOrder',
            order: {
              orderId: 7,
              status: 'filled',
              reason: null,
              filledLots: 3,
              restedLots: 0,
              cancelledLots: 0,
              fills: [
                {
                  makerOrderId: 2,
                  makerAccount: 1,
                  priceTicks: 50_000,
                  sizeLots: 3,
                  takerFeeQuote: 1_500n,
                  makerFeeQuote: -300n,
                },
              ],
            },
          },
          { ok: false, kind: 'cancel', code: 'UnknownOrder', message: 'no order 9' },
          { ok: true, kind: 'cancelAll', count: 4 },
        ],
      },
      null,
      { index: 2, ok: false, code: 'DuplicateNonce', message: 'nonce used', actions: [] },
      {
        index: 3,
        ok: true,
        actions: [
          {
            ok: true,
            kind: 'placeOrder',
            order: {
              orderId: 8,
              status: 'cancelled',
              reason: 'IocRemainder',
              filledLots: 0,
              restedLots: 0,
              cancelledLots: 5,
              fills: [],
            },
          },
        ],
      },
    ],
  };
}

test('the results codec keeps every field, and refuses an unknown code', () => {
  const value = sample(3);
  assert.deepEqual(decode(blockResultsCodec, encode(blockResultsCodec, value)), value);
  const bad = encode(blockResultsCodec, {
    height: 1,
    appHash: new Uint8Array(32),
    results: [{ index: 0, ok: false, code: 'DuplicateNonce', message: '', actions: [] }],
  });
  const text = Buffer.from(bad);
  const at = text.indexOf('DuplicateNonce');
  text[at] = 'X'.charCodeAt(0);
  assert.throws(() => decode(blockResultsCodec, text), { code: 'DecodeError' });
});

const DETAILS = {
  insuranceQuote: 1_234_567n,
  events: [
    {
      type: 'funding',
      market: 'BTC-PERPETUAL',
      ratePpm: -12,
      markTicks: 50_000,
      paidQuote: 10n,
      receivedQuote: 9n,
      dustQuote: 1n,
    },
    {
      type: 'liquidationFill',
      market: 'BTC-PERPETUAL',
      account: 4,
      orderId: 77,
      side: 'sell',
      makerAccount: 2,
      makerOrderId: 12,
      priceTicks: 59_000,
      sizeLots: 3,
      makerFeeQuote: -4n,
    },
    { type: 'liquidation', market: 'BTC-PERPETUAL', account: 4, closedLots: 3, feeQuote: 700n },
    {
      type: 'deleverage',
      market: 'ETH-PERPETUAL',
      account: 4,
      counterparty: 2,
      sizeLots: 1,
      priceTicks: 3_000,
    },
    { type: 'insuranceCover', account: 4, amountQuote: 55n },
    { type: 'depositCredited', account: 1, amountQuote: 5n },
    { type: 'orderExpired', market: 'BTC-PERPETUAL', orderId: 9, account: 1 },
    { type: 'makerCancelled', market: 'BTC-PERPETUAL', orderId: 10, account: 2 },
    { type: 'liquidationCancels', account: 4, orders: 3 },
    { type: 'marketHalted', market: 'BTC-PERPETUAL' },
    { type: 'marketResumed', market: 'BTC-PERPETUAL' },
    { type: 'marketRiskChanged', market: 'ETH-PERPETUAL' },
    { type: 'feeTiersChanged' },
    {
      type: 'auctionTrade',
      market: 'BTC-PERPETUAL',
      buyOrderId: 5,
      sellOrderId: 6,
      buyAccount: 1,
      sellAccount: 2,
      priceTicks: 60_000,
      sizeLots: 2,
      buyFeeQuote: 3n,
      sellFeeQuote: 4n,
    },
  ],
  auctionTradesKept: true,
} as const satisfies BlockDetails;

test('block details: kept by the codec; a record without them (the older format) decodes without them', () => {
  const value: BlockResults = { ...sample(4), details: DETAILS };
  assert.deepEqual(decode(blockResultsCodec, encode(blockResultsCodec, value)), value);
  const plain = encode(blockResultsCodec, sample(4));
  const decoded = decode(blockResultsCodec, plain);
  assert.equal('details' in decoded, false);
  assert.deepEqual(decoded, sample(4));
  // The details follow the results unchanged: the older record is a prefix of the newer.
  const full = encode(blockResultsCodec, value);
  assert.deepEqual(full.subarray(0, plain.length), plain);
  const unknownFormat = Buffer.from(full);
  unknownFormat[plain.length] = 3;
  assert.throws(() => decode(blockResultsCodec, unknownFormat), { code: 'DecodeError' });
  // Format 1 details decode the same, marked as not keeping the uncross trades.
  const older = new Uint8Array(full);
  older[plain.length] = 1;
  assert.deepEqual(decode(blockResultsCodec, older), {
    ...value,
    details: { ...DETAILS, auctionTradesKept: false },
  });
  const noFormat = Buffer.concat([plain, Buffer.from([0])]);
  assert.throws(() => decode(blockResultsCodec, noFormat), { code: 'DecodeError' });
  // After the results: format byte, insurance 0 (one byte), one event, its type tag.
  const halted = Buffer.from(
    encode(blockResultsCodec, {
      ...sample(4),
      details: {
        insuranceQuote: 0n,
        events: [{ type: 'marketHalted', market: 'X' }],
        auctionTradesKept: true,
      },
    }),
  );
  const tagAt = plain.length + 3;
  assert.equal(halted[tagAt], encode(exchangeEventCodec, { type: 'marketHalted', market: 'X' })[0]);
  halted[tagAt] = 200;
  assert.throws(() => decode(blockResultsCodec, halted), { code: 'DecodeError' });
  assert.throws(() => decode(blockResultsCodec, full.subarray(0, full.length - 1)), {
    code: 'DecodeError',
  });
});

test("an event's type tag never changes: a new type takes the next one, so older records decode unchanged", () => {
  const tag = (e: BlockDetails['events'][number]): number => encode(exchangeEventCodec, e)[0]!;
  assert.equal(tag({ type: 'orderExpired', market: 'X', orderId: 1, account: 1 }), 0);
  assert.equal(tag({ type: 'makerCancelled', market: 'X', orderId: 1, account: 1 }), 15);
  const cancels = { type: 'liquidationCancels', account: 7, orders: 300 } as const;
  assert.deepEqual([...encode(exchangeEventCodec, cancels)], [16, 7, 0xac, 0x02]);
  assert.deepEqual(decode(exchangeEventCodec, encode(exchangeEventCodec, cancels)), cancels);
});

test('the file results store: details join the last saved height and survive reopening', () => {
  const tmp = tempDir('zomma-results-');
  const path = join(tmp.dir, 'results.log');
  try {
    const store = openFileResultsStore(path);
    store.save(sample(1));
    store.saveDetails(1, DETAILS);
    store.save(sample(2));
    store.saveDetails(1, { events: [], insuranceQuote: 0n, auctionTradesKept: true });
    assert.equal(store.lastHeight(), 2);
    assert.deepEqual(store.load(2), sample(2), 'a later height is written without details');
    store.saveDetails(2, DETAILS);
    store.save(sample(3));
    store.saveDetails(3, DETAILS);
    store.saveDetails(3, { events: [], insuranceQuote: 0n, auctionTradesKept: true });
    store.close();

    const again = openFileResultsStore(path);
    assert.equal(again.lastHeight(), 3);
    assert.deepEqual(again.load(1), { ...sample(1), details: DETAILS });
    assert.deepEqual(again.load(2), sample(2));
    assert.deepEqual(again.load(3), { ...sample(3), details: DETAILS });
    again.close();

    const memory = new MemoryResultsStore();
    memory.save(sample(1));
    memory.saveDetails(1, DETAILS);
    memory.save(sample(2));
    memory.saveDetails(1, { events: [], insuranceQuote: 0n, auctionTradesKept: true });
    assert.deepEqual(memory.load(1), { ...sample(1), details: DETAILS });
    assert.deepEqual(memory.load(2), sample(2));
  } finally {
    tmp.remove();
  }
});

test('the file results store syncs in the background every RESULTS_SYNC_EVERY_HEIGHTS, and when flushed (before a snapshot)', () => {
  const tmp = tempDir('zomma-results-');
  try {
    const store = openFileResultsStore(join(tmp.dir, 'results.log'));
    const before = { ...recordLogSyncs };
    const save = (h: number) => store.save({ ...sample(h), details: DETAILS });
    for (let h = 1; h < RESULTS_SYNC_EVERY_HEIGHTS; h++) save(h);
    assert.deepEqual(recordLogSyncs, before, 'no fdatasync per block');
    save(RESULTS_SYNC_EVERY_HEIGHTS);
    assert.equal(recordLogSyncs.background, before.background + 1, 'one in the background');
    for (let h = 1; h <= 5; h++) save(RESULTS_SYNC_EVERY_HEIGHTS + h);
    assert.equal(recordLogSyncs.background, before.background + 1);
    store.flush();
    assert.equal(recordLogSyncs.foreground, before.foreground + 1, 'the barrier covers the rest');
    store.flush();
    assert.equal(recordLogSyncs.foreground, before.foreground + 1, 'nothing new: no sync');
    store.close();
  } finally {
    tmp.remove();
  }
});

test('the file results store: reopen, repeated heights, a gap, a torn tail', () => {
  const tmp = tempDir('zomma-results-');
  const path = join(tmp.dir, 'results.log');
  try {
    const store = openFileResultsStore(path);
    assert.equal(store.lastHeight(), 0);
    for (let h = 5; h <= 8; h++) store.save(sample(h));
    store.save({ ...sample(6), appHash: new Uint8Array(32) });
    assert.deepEqual(store.load(6), sample(6), 'a held height is not replaced');
    store.flush();
    store.close();

    const again = openFileResultsStore(path);
    assert.equal(again.lastHeight(), 8);
    assert.equal(again.load(4), null);
    for (let h = 5; h <= 8; h++) assert.deepEqual(again.load(h), sample(h));
    again.save(sample(12));
    assert.equal(again.load(8), null, 'a gap restarts the log');
    assert.deepEqual(again.load(12), sample(12));
    again.close();

    appendFileSync(path, Buffer.from([0, 0, 0, 200, 1, 2, 3]));
    const torn = openFileResultsStore(path);
    assert.equal(torn.lastHeight(), 12);
    torn.save(sample(13));
    assert.deepEqual(torn.load(13), sample(13));
    torn.close();
  } finally {
    tmp.remove();
  }
});

test('the file results store: a pending result that cannot be written at close is reported, and the file is closed all the same', () => {
  const tmp = tempDir('zomma-results-');
  const path = join(tmp.dir, 'results.log');
  try {
    const store = openFileResultsStore(path);
    store.save(sample(1));
    // The file swapped for a read-only one: writing the pending result fails (EBADF).
    const log = (store as unknown as { log: { fd: number } }).log;
    const realFd = log.fd;
    log.fd = openSync('/dev/zero', 'r');
    try {
      assert.throws(
        () => store.close(),
        (error: unknown) => {
          assert.ok(error instanceof StorageError, String(error));
          assert.equal(error.code, 'StorageIoFailed');
          return true;
        },
      );
      assert.equal(log.fd, -1, 'the file is closed');
    } finally {
      closeSync(realFd);
    }
  } finally {
    tmp.remove();
  }
});

test('the file results store: a damaged record loads as null and is logged once per height, up to a bound', () => {
  const tmp = tempDir('zomma-results-');
  const path = join(tmp.dir, 'results.log');
  try {
    const count = DAMAGED_RECORDS_LOGGED_MAX + 3;
    const store = openFileResultsStore(path);
    for (let h = 1; h <= count; h++)
      store.save({ height: h, appHash: new Uint8Array(32), results: [] });
    store.close();
    // Every record but the first rots: a bit of its payload flipped.
    const bytes = readFileSync(path);
    for (const offset of recordOffsets(bytes).slice(1))
      bytes[offset + RECORD_HEADER_BYTES]! ^= 0x01;
    writeFileSync(path, bytes);
    const warned: { height: number; message: string }[] = [];
    const log = {
      ...silentLog,
      warn: (fields: object, message: string) =>
        warned.push({ height: (fields as { height: number }).height, message }),
    };
    const damaged = openFileResultsStore(path, log);
    assert.equal(damaged.lastHeight(), count);
    assert.notEqual(damaged.load(1), null, 'a sound record loads');
    for (let i = 0; i < 2; i++) assert.equal(damaged.load(2), null, 'a damaged record: none');
    assert.equal(warned.length, 1, 'logged once');
    assert.equal(warned[0]!.height, 2);
    assert.match(warned[0]!.message, /results record cannot be read/);
    for (let h = 3; h <= count; h++) assert.equal(damaged.load(h), null, `height ${h}`);
    for (let h = 2; h <= count; h++) damaged.load(h);
    // One line per height up to the bound, then one saying no more are logged.
    assert.equal(warned.length, DAMAGED_RECORDS_LOGGED_MAX + 1);
    assert.deepEqual(
      warned.slice(0, DAMAGED_RECORDS_LOGGED_MAX).map((w) => w.height),
      Array.from({ length: DAMAGED_RECORDS_LOGGED_MAX }, (_, i) => i + 2),
    );
    assert.match(warned.at(-1)!.message, /no more are logged/);
    damaged.close();
  } finally {
    tmp.remove();
  }
});

test('the memory results store behaves like the file store', () => {
  const store = new MemoryResultsStore();
  store.save(sample(1));
  store.save(sample(2));
  assert.deepEqual(store.load(2), sample(2));
  store.save(sample(5));
  assert.equal(store.load(2), null);
  assert.equal(store.lastHeight(), 5);
});

test('after a restart, tx and block answer with the results published before it', async () => {
  const tmp = tempDir('zomma-results-node-');
  // Snapshots every few heights: the first transactions' heights are below
  // the snapshot the restart loads, so their results can only come from the log.
  const home = initSoloHome(tmp.dir, {
    oracleSeed: 5,
    snapshotEveryHeights: 3,
    commitPauseMs: 20,
  });
  let running = await runNode({ home });
  try {
    let client = new ZommaClient(running.apiUrl!);
    await until(
      async () => ((await client.ticker('BTC-PERPETUAL')).indexTicks ?? 0) > 0,
      20_000,
      'an index price',
    );
    const maker = client.trader(generateKey());
    const taker = client.trader(generateKey());
    const seen: TxView[] = [
      await maker.faucet(100_000n * USDC),
      await taker.faucet(100_000n * USDC),
    ];
    const index = (await client.ticker('BTC-PERPETUAL')).indexTicks;
    seen.push(
      await maker.placeOrder({
        instrument: 'BTC-PERPETUAL',
        side: 'sell',
        priceTicks: index + 5,
        sizeLots: 30,
      }),
    );
    seen.push(
      await taker.placeOrder({
        instrument: 'BTC-PERPETUAL',
        side: 'buy',
        type: 'market',
        timeInForce: 'IOC',
        sizeLots: 10,
      }),
    );
    await assert.rejects(
      taker.placeOrder({
        instrument: 'BTC-PERPETUAL',
        side: 'buy',
        priceTicks: index,
        sizeLots: 900_000_000,
      }),
    );
    const before = await Promise.all(seen.map((t) => client.tx(t.hash)));
    assert.equal(before[3]!.actions![0]!.filledLots, 10);
    const heights = [...new Set(before.map((t) => t.height!))];
    const blocksBefore = await Promise.all(heights.map((h) => client.block(h)));
    for (const b of blocksBefore) {
      assert.ok(b.insuranceQuote !== undefined && b.events !== undefined, 'live block details');
    }
    const top = (await client.status()).height;
    await until(
      async () => (await client.status()).height >= top + 4,
      20_000,
      'a snapshot above the transactions',
    );
    const tradesBefore = (await client.trades('BTC-PERPETUAL')).trades;
    assert.equal(tradesBefore.length, 1);
    const lastBefore = (await client.ticker('BTC-PERPETUAL')).lastTradeTicks;
    assert.equal(lastBefore, tradesBefore[0]!.priceTicks);

    await running.stop();
    running = await runNode({ home });
    client = new ZommaClient(running.apiUrl!);
    assert.ok(running.node.restoredFrom.snapshotHeight > Math.max(...heights));
    for (const [i, t] of seen.entries()) assert.deepEqual(await client.tx(t.hash), before[i]);
    for (const [i, h] of heights.entries())
      assert.deepEqual(await client.block(h), blocksBefore[i]);
    // The recent trades and the last trade price are read back from the stored blocks.
    assert.deepEqual((await client.trades('BTC-PERPETUAL')).trades, tradesBefore);
    assert.equal((await client.ticker('BTC-PERPETUAL')).lastTradeTicks, lastBefore);
  } finally {
    await running.stop();
    tmp.remove();
  }
});

test('blocks executed again by a restart keep the same details as live ones', async () => {
  const tmp = tempDir('zomma-results-replay-');
  // No snapshot: the restart executes every block again from genesis.
  const home = initSoloHome(tmp.dir, {
    oracleSeed: 6,
    snapshotEveryHeights: 1_000_000,
    commitPauseMs: 20,
  });
  let running = await runNode({ home });
  try {
    let client = new ZommaClient(running.apiUrl!);
    await until(
      async () => ((await client.ticker('BTC-PERPETUAL')).indexTicks ?? 0) > 0,
      20_000,
      'an index price',
    );
    await client.trader(generateKey()).faucet(1_000n * USDC);
    const top = (await client.status()).height;
    const before = [];
    for (let h = 1; h <= top; h++) before.push(await client.block(h));
    for (const b of before) assert.ok(b.insuranceQuote !== undefined, `live details ${b.height}`);
    await running.stop();
    // Results lost (as a crash loses the last ones): the restart writes them again.
    rmSync(join(home, HOME_FILES.data, 'results.log'));
    running = await runNode({ home });
    client = new ZommaClient(running.apiUrl!);
    assert.equal(running.node.restoredFrom.snapshotHeight, 0);
    assert.ok(running.node.restoredFrom.replayedBlocks > 0);
    for (const b of before) assert.deepEqual(await client.block(b.height), b);
  } finally {
    await running.stop();
    tmp.remove();
  }
});

test('a damaged results record is logged once with its height, and the API says its result is unavailable', async () => {
  const tmp = tempDir('zomma-results-damaged-');
  const home = initSoloHome(tmp.dir, {
    oracleSeed: 7,
    snapshotEveryHeights: 1_000_000,
    commitPauseMs: 20,
  });
  let running = await runNode({ home });
  const lines: string[] = [];
  const logStream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l !== ''),
      );
      done();
    },
  });
  try {
    let client = new ZommaClient(running.apiUrl!);
    const funded = await client.trader(generateKey()).faucet(1_000n * USDC);
    const other = await client.trader(generateKey()).faucet(1_000n * USDC);
    assert.equal(funded.status, 'committed');
    const height = funded.height!;
    assert.equal((await client.tx(funded.hash)).resultUnavailable, undefined, 'a result held');
    await running.stop();
    // A bit of the record of `height` rots: its payload fails its checksum
    // when read (below the durable bound, payloads are not checked at open).
    const path = join(home, HOME_FILES.data, 'results.log');
    const bytes = readFileSync(path);
    const base = bytes.readUInt32BE(12);
    const offset = recordOffsets(bytes)[height - base]!;
    bytes[offset + RECORD_HEADER_BYTES + 2]! ^= 0x10;
    writeFileSync(path, bytes);

    running = await runNode({ home, logStream });
    client = new ZommaClient(running.apiUrl!);
    const tx = await client.tx(funded.hash);
    assert.equal(tx.status, 'committed');
    assert.equal(tx.height, height);
    assert.equal(tx.resultUnavailable, true, 'the result is said to be unavailable');
    assert.equal(tx.actions, undefined);
    for (let i = 0; i < 2; i++) {
      const block = await client.block(height);
      const listed = block.txs.find((t) => t.hash === funded.hash);
      assert.deepEqual(listed, { hash: funded.hash, ok: true, resultUnavailable: true });
    }
    // The next height (submitted once the first was committed) answers as before.
    assert.ok(other.height! > height, `${other.height} after ${height}`);
    assert.deepEqual(await client.tx(other.hash), other);
    const warned = lines
      .map((l) => JSON.parse(l) as { msg: string; height?: number; level: number })
      .filter((l) => l.msg.includes('results record cannot be read'));
    assert.equal(warned.length, 1, `logged once: ${JSON.stringify(warned)}`);
    assert.equal(warned[0]!.height, height);
  } finally {
    await running.stop();
    tmp.remove();
  }
});
