// The node's read model behind the real API server: one validator in this
// process, driven through the client SDK. What a trader sees (status, book,
// trades, account, tx and block lookups, the WebSocket feed) follows the
// committed state, block by block.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ZommaClient, generateKey, addressOfKey } from '../../src/api/client/index.ts';
import type { BookView, TradeView } from '../../src/api/client/index.ts';
import { startSoloNode, until } from '../e2e/helpers.ts';

const USDC = 1_000_000n;

test('the read model follows committed blocks: orders, trades, book deltas, accounts, lookups', async () => {
  const solo = await startSoloNode();
  const client = new ZommaClient(solo.apiUrl);
  const socket = client.socket();
  try {
    await until(
      async () => ((await client.ticker('BTC-PERPETUAL')).indexTicks ?? 0) > 0,
      20_000,
      'an index price',
    );
    const status = await client.status();
    assert.equal(status.chainId, 'zomma-devnet');
    assert.equal(status.validators.length, 1);
    const instruments = await client.instruments();
    assert.deepEqual(
      instruments.instruments.slice(0, 2).map((i) => [i.instrument, i.kind]),
      [
        ['BTC-PERPETUAL', 'perpetual'],
        ['ETH-PERPETUAL', 'perpetual'],
      ],
    );
    // The devnet lists dated futures and options past the perpetuals, each with its expiry.
    const dated = instruments.instruments.slice(2);
    assert.ok(dated.some((i) => i.kind === 'future') && dated.some((i) => i.kind === 'option'));
    for (const i of dated)
      assert.ok(i.expiryMs !== undefined && i.expiryMs > status.lastBlockTimeMs);
    const option = dated.find((i) => i.kind === 'option')!;
    assert.ok(option.strikeTicks! > 0 && option.optionType !== undefined);

    const deltas: { seq: number; book: BookView | null }[] = [];
    const live: TradeView[] = [];
    socket.subscribe('book:BTC-PERPETUAL', (e) => deltas.push({ seq: e.seq, book: null }));
    socket.subscribe('trades:BTC-PERPETUAL', (e) => {
      live.push(...(e.data as { trades: TradeView[] }).trades);
    });

    const maker = client.trader(generateKey());
    const taker = client.trader(generateKey());
    await maker.faucet(100_000n * USDC);
    await taker.faucet(100_000n * USDC);
    const index = (await client.ticker('BTC-PERPETUAL')).indexTicks;

    const ask = index + 10;
    const placed = await maker.placeOrder({
      instrument: 'BTC-PERPETUAL',
      side: 'sell',
      priceTicks: ask,
      sizeLots: 30,
    });
    assert.equal(placed.status, 'committed');
    const restingId = placed.actions![0]!.orderId!;
    const book1 = await client.book('BTC-PERPETUAL');
    assert.deepEqual(book1.asks[0], [ask, 30]);

    const took = await taker.placeOrder({
      instrument: 'BTC-PERPETUAL',
      side: 'buy',
      type: 'market',
      timeInForce: 'IOC',
      sizeLots: 10,
    });
    assert.equal(took.status, 'committed');
    assert.equal(took.actions![0]!.filledLots, 10);

    const book2 = await client.book('BTC-PERPETUAL');
    assert.deepEqual(book2.asks[0], [ask, 20]);
    assert.ok(book2.seq > book1.seq);
    const trades = await client.trades('BTC-PERPETUAL');
    const last = trades.trades.at(-1)!;
    assert.equal(last.priceTicks, ask);
    assert.equal(last.sizeLots, 10);
    assert.equal(last.takerSide, 'buy');

    const account = await client.account(addressOfKey(taker.key));
    const sub = account.subaccounts[0]!;
    assert.deepEqual(
      sub.positions.map((p) => [p.instrument, p.sizeLots, p.entryPriceTicks]),
      [['BTC-PERPETUAL', 10, ask]],
    );
    const makerAccount = await client.account(addressOfKey(maker.key));
    const orders = makerAccount.subaccounts[0]!.openOrders;
    assert.deepEqual(
      orders.map((o) => [o.orderId, o.side, o.priceTicks, o.remainingLots]),
      [[restingId, 'sell', ask, 20]],
    );

    const tx = await client.tx(took.hash);
    assert.equal(tx.status, 'committed');
    const block = await client.block(tx.height!);
    assert.ok(block.txs.some((t) => t.hash === took.hash && t.ok));
    assert.equal(block.height, tx.height);

    // A rejected order: far too large for the account's collateral.
    await assert.rejects(
      taker.placeOrder({
        instrument: 'BTC-PERPETUAL',
        side: 'buy',
        priceTicks: index,
        sizeLots: 900_000_000,
      }),
      (e: Error & { code?: string }) => typeof e.code === 'string' && e.code !== 'InternalError',
    );

    await until(
      () => live.some((t) => t.tradeId === last.tradeId),
      10_000,
      'the trade on WebSocket',
    );
    await until(() => deltas.length >= 2, 10_000, 'book updates on WebSocket');
    const seqs = deltas.map((d) => d.seq);
    for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i]! > seqs[i - 1]!, 'book seq increases');
    assert.equal(seqs.at(-1), (await client.book('BTC-PERPETUAL')).seq);
  } finally {
    socket.close();
    await solo.stop();
  }
});

test('a market no block touches keeps its book seq, and its ticker follows the height', async () => {
  const solo = await startSoloNode();
  const client = new ZommaClient(solo.apiUrl);
  try {
    await until(
      async () => ((await client.ticker('ETH-PERPETUAL')).indexTicks ?? 0) > 0,
      20_000,
      'an index price',
    );
    const book1 = await client.book('ETH-PERPETUAL');
    const ticker1 = await client.ticker('ETH-PERPETUAL');
    await until(
      async () => (await client.ticker('ETH-PERPETUAL')).height > ticker1.height + 2,
      20_000,
      'three more blocks',
    );
    const ticker2 = await client.ticker('ETH-PERPETUAL');
    assert.equal((await client.book('ETH-PERPETUAL')).seq, book1.seq);
    assert.ok((ticker2.timeMs ?? 0) > (ticker1.timeMs ?? 0));
    assert.equal(ticker2.bestAskTicks, undefined);

    // A later order in it is seen by the book and the ticker at once.
    const maker = client.trader(generateKey());
    await maker.faucet(100_000n * USDC);
    const ask = ticker2.indexTicks + 100;
    const placed = await maker.placeOrder({
      instrument: 'ETH-PERPETUAL',
      side: 'sell',
      priceTicks: ask,
      sizeLots: 7,
    });
    assert.equal(placed.status, 'committed');
    const book2 = await client.book('ETH-PERPETUAL');
    assert.ok(book2.seq > book1.seq);
    assert.deepEqual(book2.asks[0], [ask, 7]);
    const ticker3 = await client.ticker('ETH-PERPETUAL');
    assert.equal(ticker3.bestAskTicks, ask);
    assert.equal(ticker3.bestAskLots, 7);
    assert.equal(ticker3.height, book2.height);
  } finally {
    await solo.stop();
  }
});
