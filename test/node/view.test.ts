// The node's read model behind the real API server: one validator in this
// process, driven through the client SDK. What a trader sees (status, book,
// trades, account, tx and block lookups, the WebSocket feed) follows the
// committed state, block by block.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ZommaClient, generateKey, addressOfKey } from '../../src/api/client/index.ts';
import type { BookView, TradeView } from '../../src/api/client/index.ts';
import { startSoloNode, until } from '../e2e/helpers.ts';
import { RawClient } from '../api/fixtures.ts';
import { startApiServer } from '../../src/api/server.ts';
import type { ChannelEvent } from '../../src/api/client/index.ts';
import type { AccountInterest, AccountUpdate, BlockUpdate } from '../../src/api/view.ts';
import type { OracleView, PositionView, TickerView } from '../../src/api/view.ts';
import { formatAddress } from '../../src/crypto/index.ts';
import { ApiError } from '../../src/api/errors.ts';
import type { BlockResult } from '../../src/exchange/index.ts';
import { decodeSnapshot, encodeSnapshot } from '../../src/exchange/index.ts';
import { daysFromCivil, expiryMsOfDay } from '../../src/exchange/instruments/index.ts';
import { applyTrade, positionOf as exchangePositionOf } from '../../src/exchange/position.ts';
import type { Position } from '../../src/exchange/state.ts';
import { lastKept, sameTicker } from '../../src/node/view.ts';
import type { ChainView } from '../../src/node/view.ts';
import { Mempool } from '../../src/node/mempool/mempool.ts';
import type { AddResult } from '../../src/node/mempool/mempool.ts';
import { SignatureCache } from '../../src/node/mempool/sigcache.ts';
import { VOTE_TYPE, ValidatorSet } from '../../src/consensus/index.ts';
import type { CommitCertificate, DuplicateVoteEvidence } from '../../src/consensus/index.ts';
import { encodeObservation } from '../../src/exchange/oracle/index.ts';
import { Prng } from '../../src/lib/prng.ts';
import { toHex } from '../../src/lib/bytes.ts';
import { sha256 } from '../../src/crypto/index.ts';
import { StorageError } from '../../src/node/storage/index.ts';
import { encodeSignedTx } from '../../src/exchange/tx/index.ts';
import type { SignedTx } from '../../src/exchange/tx/index.ts';
import { Harness, VALIDATORS, genesis, key, limit } from '../exchange/helpers.ts';
import type { Key } from '../exchange/helpers.ts';
import { btcDailyGenesis, standInView, store } from './view_fixtures.ts';
import { silentLog } from '../../src/node/log.ts';
import type { StoredChain } from './view_fixtures.ts';
import { OrderBook } from '../../src/exchange/book/book.ts';
import {
  BATCH_ACTIONS_MAX,
  VIEW_BLOCKS_KEPT,
  VIEW_TRADES_KEPT,
  WS_BOOK_DEPTH_LEVELS,
} from '../../src/lib/limits.ts';

const USDC = 1_000_000n;
const [ORACLE_BTC, ORACLE_ETH] = [50_000n * USDC, 3_000n * USDC];

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
      if (e.type !== 'ended') live.push(...e.data.trades);
    });

    const maker = client.trader(generateKey());
    const taker = client.trader(generateKey());
    // The node builds the taker's account updates once a client follows it.
    const takerFills: AccountUpdate['fills'] = [];
    const takerOrders: AccountUpdate['orders'] = [];
    let following = false;
    socket.subscribe(`account:${addressOfKey(taker.key).toLowerCase()}`, (e) => {
      following = true;
      if (e.type !== 'update') return;
      for (const a of e.data.subaccounts) {
        takerFills.push(...a.fills);
        takerOrders.push(...a.orders);
      }
    });
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

    await until(() => following, 10_000, "the account channel's snapshot");
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
    // Placed at 30, 10 filled by the taker, 20 open.
    assert.deepEqual(
      orders.map((o) => [
        o.orderId,
        o.side,
        o.priceTicks,
        o.sizeLots,
        o.filledLots,
        o.remainingLots,
      ]),
      [[restingId, 'sell', ask, 30, 10, 20]],
    );

    const tx = await client.tx(took.hash);
    assert.equal(tx.status, 'committed');
    const block = await client.block(tx.height!);
    assert.ok(block.txs.some((t) => t.hash === took.hash && t.ok));
    assert.equal(block.height, tx.height);

    // A market order with a limit: it shows that limit.
    const bounded = await taker.placeOrder({
      instrument: 'BTC-PERPETUAL',
      side: 'buy',
      type: 'market',
      timeInForce: 'IOC',
      priceTicks: ask,
      sizeLots: 5,
    });
    assert.equal(bounded.actions![0]!.filledLots, 5);
    // In the account updates: the market order without a limit has no priceTicks (not 0).
    await until(() => takerOrders.length >= 2, 10_000, "the taker's orders on WebSocket");
    assert.deepEqual(
      takerOrders.map((o) => [o.orderId, o.status, o.filledLots, 'priceTicks' in o, o.priceTicks]),
      [
        [took.actions![0]!.orderId, 'filled', 10, false, undefined],
        [bounded.actions![0]!.orderId, 'filled', 5, true, ask],
      ],
    );

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
    await until(() => takerFills.length > 1, 10_000, "the taker's fills on WebSocket");
    assert.deepEqual(
      takerFills.map((f) => [f.side, f.sizeLots, f.priceTicks, f.liquidity]),
      [
        ['buy', 10, ask, 'taker'],
        ['buy', 5, ask, 'taker'],
      ],
    );
    // The fill says when it was made: the time of the block that made it, as its trade says.
    const fill = takerFills[0]!;
    assert.deepEqual([fill.height, fill.tradeId], [last.height, last.tradeId]);
    assert.equal(fill.timeMs, (await client.block(fill.height)).timeMs);
    assert.equal(fill.timeMs, last.timeMs);
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
    // Each read is of the height published when it is served: a block can
    // commit between two reads, so both are held to the order's block, not to
    // each other's height.
    const at = placed.height!;
    const book2 = await client.book('ETH-PERPETUAL');
    assert.equal(book2.seq, at, "the book changed in the order's block");
    assert.ok(book2.height >= at);
    assert.deepEqual(book2.asks[0], [ask, 7]);
    const ticker3 = await client.ticker('ETH-PERPETUAL');
    assert.ok(ticker3.height >= book2.height, 'the ticker follows the height');
    assert.equal(ticker3.bestAskTicks, ask);
    assert.equal(ticker3.bestAskLots, 7);
  } finally {
    await solo.stop();
  }
});

// --- events the exchange raises on its own: auctions, settlement, jailing ------------
// The read model over an exchange driven block by block in this process (no
// consensus, no I/O): a stand-in node hands ChainView each executed block.

/** `accounts`: the account updates feed() asks for (absent: all of them). */
function viewOver(
  h: Harness,
  validators: ValidatorSet | { validators: [] } = { validators: [] },
  accounts?: AccountInterest,
  submit?: (bytes: Uint8Array) => Promise<AddResult>,
  accountOrdersMax?: number,
  /** The set that decided a height (default: `validators` at every height). */
  setAt?: (height: number) => ValidatorSet | { validators: [] },
  /** What the node stored of each height (default: nothing), as a restarted node reads it. */
  stored?: StoredChain,
): {
  view: ChainView;
  /** Sets the node's halt report, as the loop does when it halts. */
  halt: (report: { code: string; message: string }) => void;
  /** `txs`: the block's transactions, when the view is to see them (their trades and fills). */
  feed: (
    r: BlockResult,
    lastCommit?: CommitCertificate,
    txs?: readonly SignedTx[],
    evidence?: readonly DuplicateVoteEvidence[],
  ) => BlockUpdate;
} {
  const { view, halt, deliver } = standInView(h, {
    validators,
    setAt,
    submit,
    accountOrdersMax,
    stored,
  });
  const feed = (
    r: BlockResult,
    lastCommit?: CommitCertificate,
    txs: readonly SignedTx[] = [],
    evidence: readonly DuplicateVoteEvidence[] = [],
  ): BlockUpdate => {
    let update: BlockUpdate | undefined;
    const stop = view.subscribe((u) => (update = u), accounts);
    deliver(r, txs, lastCommit, evidence);
    stop();
    assert.ok(update !== undefined, 'the view published the block');
    return update;
  };
  return { view, feed, halt };
}

/**
 * A BTC market with a last price of 500,000 ticks and 3 lots asked at 530,000:
 * a buy crossing that ask is 6% away and starts a call auction. Three funded
 * keys named after `prefix`.
 */
function auctionReady(prefix: string): {
  h: Harness;
  maker: ReturnType<typeof key>;
  taker: ReturnType<typeof key>;
  alice: ReturnType<typeof key>;
} {
  const [maker, taker, alice] = [
    key(`${prefix}-maker`),
    key(`${prefix}-taker`),
    key(`${prefix}-alice`),
  ];
  const h = new Harness();
  for (const k of [maker, taker, alice]) h.fund(k, 1_000_000n * USDC);
  h.one(maker, limit('BTC-PERPETUAL', 'sell', 500_000, 1));
  h.one(taker, limit('BTC-PERPETUAL', 'buy', 500_000, 1));
  h.one(maker, limit('BTC-PERPETUAL', 'sell', 530_000, 3));
  return { h, maker, taker, alice };
}

test("the read model: each instrument shows its risk parameters, and a setMarketRisk carried by governance changes them at its block's height", () => {
  const h = new Harness();
  const { view, feed } = viewOver(h);
  try {
    feed(h.block([]));
    const shown = (name: string) =>
      view
        .read()
        .instruments()
        .find((i) => i.instrument === name)!;
    const genesisRisk = {
      initialMarginPpm: 50_000,
      maintenanceMarginPpm: 30_000,
      imfStepQuote: '10000000000000',
      imfStepPpm: 10_000,
      liquidationQuoteMaxPerBlock: '5000000000000',
    };
    const riskOf = (i: ReturnType<typeof shown>) => ({
      initialMarginPpm: i.initialMarginPpm,
      maintenanceMarginPpm: i.maintenanceMarginPpm,
      imfStepQuote: i.imfStepQuote,
      imfStepPpm: i.imfStepPpm,
      liquidationQuoteMaxPerBlock: i.liquidationQuoteMaxPerBlock,
      priceBandPpm: i.priceBandPpm,
      openInterestCapLots: i.openInterestCapLots,
    });
    const none = { priceBandPpm: undefined, openInterestCapLots: undefined };
    assert.deepEqual(riskOf(shown('BTC-PERPETUAL')), { ...genesisRisk, ...none });
    const risk = {
      initialMarginPpm: 80_000,
      maintenanceMarginPpm: 60_000,
      imfStepQuote: 5_000_000n * USDC,
      imfStepPpm: 20_000,
      liquidationQuoteMaxPerBlock: 2_000_000n * USDC,
      priceBandPpm: 50_000,
      openInterestCapLots: 2_500,
    };
    const txs = [
      h.tx(VALIDATORS[0]!, {
        kind: 'govPropose',
        proposalId: 1,
        proposal: { kind: 'setMarketRisk', instrument: 'BTC-PERPETUAL', risk },
      }),
      h.tx(VALIDATORS[1]!, { kind: 'govVote', proposalId: 1, approve: true }),
      h.tx(VALIDATORS[2]!, { kind: 'govVote', proposalId: 1, approve: true }),
    ];
    const update = feed(h.block(txs), undefined, txs);
    assert.deepEqual(
      update.block.events?.map((e) => e.type),
      ['marketRiskChanged'],
    );
    assert.deepEqual(riskOf(shown('BTC-PERPETUAL')), {
      initialMarginPpm: 80_000,
      maintenanceMarginPpm: 60_000,
      imfStepQuote: '5000000000000',
      imfStepPpm: 20_000,
      liquidationQuoteMaxPerBlock: '2000000000000',
      priceBandPpm: 50_000,
      openInterestCapLots: 2_500,
    });
    assert.deepEqual(riskOf(shown('ETH-PERPETUAL')), { ...genesisRisk, ...none });
  } finally {
    view.close();
  }
});

test("the read model: the status shows the fee schedule in force, and a setFeeTiers carried by governance changes it at its block's height", () => {
  const h = new Harness();
  const { view, feed } = viewOver(h);
  try {
    feed(h.block([]));
    assert.deepEqual(view.read().status().feeTiers, [
      { volumeQuoteMin: '0', makerFeePpm: 200, takerFeePpm: 500 },
      { volumeQuoteMin: '1000000000000', makerFeePpm: 0, takerFeePpm: 400 },
      { volumeQuoteMin: '100000000000000', makerFeePpm: -100, takerFeePpm: 300 },
    ]);
    const tiers = [
      { volumeQuoteMin: 0n, makerFeePpm: -50, takerFeePpm: 700 },
      { volumeQuoteMin: 250n * USDC, makerFeePpm: -60, takerFeePpm: 600 },
    ];
    const txs = [
      h.tx(VALIDATORS[0]!, {
        kind: 'govPropose',
        proposalId: 1,
        proposal: { kind: 'setFeeTiers', tiers },
      }),
      h.tx(VALIDATORS[1]!, { kind: 'govVote', proposalId: 1, approve: true }),
    ];
    // Pending: the schedule shown is still genesis's.
    feed(h.block(txs), undefined, txs);
    assert.equal(view.read().status().feeTiers!.length, 3);
    const last = [h.tx(VALIDATORS[2]!, { kind: 'govVote', proposalId: 1, approve: true })];
    const update = feed(h.block(last), undefined, last);
    assert.deepEqual(
      update.block.events?.map((e) => e.type),
      ['feeTiersChanged'],
    );
    const status = view.read().status();
    assert.equal(status.height, h.ex.state.height);
    assert.deepEqual(status.feeTiers, [
      { volumeQuoteMin: '0', makerFeePpm: -50, takerFeePpm: 700 },
      { volumeQuoteMin: '250000000', makerFeePpm: -60, takerFeePpm: 600 },
    ]);
    // A read's copy is its own: changing it changes nothing the next read shows.
    status.feeTiers![0]!.takerFeePpm = 1;
    assert.equal(view.read().status().feeTiers![0]!.takerFeePpm, 700);
  } finally {
    view.close();
  }
});

test('the read model: a volatility auction shows as a status with its end, its uncross as trades and fills of both sides', () => {
  const BTC = 'BTC-PERPETUAL';
  const { h, maker, taker, alice } = auctionReady('view');
  const { view, feed } = viewOver(h);
  try {
    // A buy that would trade 6% away starts a call auction.
    const started = feed(h.block([h.tx(taker, limit(BTC, 'buy', 535_000, 2))]));
    const endMs = h.ex.state.marketByName.get(BTC)!.auction!.monitor.auctionEndMs;
    assert.ok(endMs > h.timeMs);
    const inst = view
      .read()
      .instruments()
      .find((i) => i.instrument === BTC)!;
    assert.deepEqual([inst.status, inst.auctionEndMs], ['auction', endMs]);
    assert.deepEqual(
      started.block.events?.filter((e) => e.type === 'auctionStarted'),
      [
        {
          type: 'auctionStarted',
          height: started.height,
          timeMs: started.timeMs,
          instrument: BTC,
          priceTicks: 530_000,
          endMs,
        },
      ],
    );
    h.one(alice, limit(BTC, 'buy', 532_000, 1));
    const ended = feed(h.block([], endMs - h.timeMs));
    const trades = ended.trades.filter((t) => t.instrument === BTC);
    assert.ok(trades.length > 0);
    assert.ok(trades.every((t) => t.auction === true && t.priceTicks === 530_000));
    const lots = trades.reduce((a, t) => a + t.sizeLots, 0);
    const fills = (k: typeof maker) =>
      ended.accounts.filter((a) => a.address === formatAddress(k.address)).flatMap((a) => a.fills);
    const bought = [...fills(taker), ...fills(alice)];
    assert.ok(bought.every((f) => f.side === 'buy' && f.liquidity === 'auction'));
    assert.ok(
      [...bought, ...fills(maker)].every((f) => f.timeMs === ended.timeMs && f.timeMs === h.timeMs),
      "an uncross's fills carry the time of its block",
    );
    assert.equal(
      bought.reduce((a, f) => a + f.sizeLots, 0),
      lots,
    );
    assert.ok(fills(maker).every((f) => f.side === 'sell' && f.liquidity === 'auction'));
    assert.equal(
      fills(maker).reduce((a, f) => a + f.sizeLots, 0),
      lots,
    );
    assert.deepEqual(
      view.read().trades(BTC, 10)!.slice(-trades.length),
      trades,
      'the trades endpoint keeps them',
    );
    const after = view
      .read()
      .instruments()
      .find((i) => i.instrument === BTC)!;
    assert.deepEqual([after.status, after.auctionEndMs], ['trading', undefined]);
    const risk = view.read().risk!().events.map((e) => e.type);
    assert.deepEqual(
      risk.filter((t) => t.startsWith('auction')),
      ['auctionStarted', 'auctionEnded'],
    );
  } finally {
    view.close();
  }
});

test('the read model: a settled market leaves the list, its holders get the closed positions as account updates', () => {
  const EXPIRY_MS = expiryMsOfDay(daysFromCivil(2026, 3, 2));
  const FUTURE = 'BTC-2MAR26';
  const h = new Harness(btcDailyGenesis());
  const [alice, bob] = [key('view-settle-alice'), key('view-settle-bob')];
  h.fund(alice, 100_000n * USDC);
  h.fund(bob, 100_000n * USDC);
  const f = h.ex.state.marketByName.get(FUTURE)!.markTicks;
  h.one(alice, limit(FUTURE, 'buy', f, 3));
  h.one(bob, limit(FUTURE, 'sell', f, 3));
  const { view, feed } = viewOver(h);
  try {
    let found: BlockUpdate | undefined;
    for (let i = 0; i < 12 && found === undefined; i++) {
      const next: BlockUpdate = feed(h.block([], 60 * 60_000));
      if (next.block.events?.some((e) => e.type === 'marketSettled' && e.instrument === FUTURE))
        found = next;
    }
    const settled: BlockUpdate | undefined = found;
    assert.ok(settled !== undefined && settled.timeMs >= EXPIRY_MS, 'the future settled');
    const event = settled.block.events!.find((e) => e.instrument === FUTURE)!;
    assert.equal(event.positions, 2);
    assert.ok(BigInt(event.priceQuote!) > 0n);
    assert.ok(
      !view
        .read()
        .instruments()
        .some((i) => i.instrument === FUTURE),
    );
    assert.equal(view.read().ticker(FUTURE), undefined);
    for (const [k, size] of [
      [alice, 3],
      [bob, -3],
    ] as const) {
      const u: AccountUpdate = settled.accounts.find(
        (a) => a.address === formatAddress(k.address),
      )!;
      assert.deepEqual(u.settlements, [
        {
          instrument: FUTURE,
          sizeLots: size,
          valueQuote: event.amountQuote,
          height: settled.height,
        },
      ]);
      assert.equal(u.positions.find((p) => p.instrument === FUTURE)?.sizeLots, 0);
      assert.equal(u.cashQuote, String(h.account(k)!.cashQuote));
    }
    assert.ok(view.read().risk!().events.some((e) => e.type === 'marketSettled'));
    // The block's update names the market it ended, with its settlement, as the read model does.
    const end = {
      instrument: FUTURE,
      reason: 'settled',
      height: settled.height,
      timeMs: settled.timeMs,
      priceQuote: event.priceQuote,
      valueQuote: event.amountQuote,
    };
    assert.deepEqual(
      settled.ended.find((e) => e.instrument === FUTURE),
      end,
    );
    // Its options of the same expiry settle with it: one end for each settlement event.
    const byName = (a: (string | undefined)[], b: (string | undefined)[]) =>
      a[0]! < b[0]! ? -1 : 1;
    assert.deepEqual(
      settled.ended.map((e) => [e.instrument, e.reason, e.valueQuote]).sort(byName),
      settled.block
        .events!.filter((e) => e.type === 'marketSettled')
        .map((e) => [e.instrument, 'settled', e.amountQuote])
        .sort(byName),
    );
    assert.deepEqual(view.read().ended(FUTURE), end);
    assert.equal(view.read().ended('BTC-PERPETUAL'), undefined, 'a live market has not ended');
  } finally {
    view.close();
  }
});

/** A chain listing one BTC daily future (and its options) that expires on its first day. */
function dailyListingHarness(): { h: Harness; future: string } {
  const h = new Harness(btcDailyGenesis());
  return { h, future: 'BTC-2MAR26' };
}

test('the read model: a position closed by settlement is listed with its entry, its funding and its realized PnL with what settlement realized; GET /v1/account agrees', () => {
  const FUTURE = 'BTC-2MAR26';
  const h = new Harness(btcDailyGenesis());
  const [alice, bob] = [key('view-settled-pnl-alice'), key('view-settled-pnl-bob')];
  h.fund(alice, 100_000n * USDC);
  h.fund(bob, 100_000n * USDC);
  const market = h.ex.state.marketByName.get(FUTURE)!;
  const f = market.markTicks;
  // Alice buys 5 from Bob, then sells 2 back 20 ticks higher: each has realized
  // PnL before settlement, and keeps 3 (Bob −3) at the first price.
  h.one(bob, limit(FUTURE, 'sell', f, 5));
  h.one(alice, limit(FUTURE, 'buy', f, 5, { timeInForce: 'IOC' }));
  h.one(bob, limit(FUTURE, 'buy', f + 20, 2));
  h.one(alice, limit(FUTURE, 'sell', f + 20, 2, { timeInForce: 'IOC' }));
  // The index moves on, so that settlement realizes something too.
  h.oracle = { ...h.oracle, BTC: h.oracle.BTC! + 321n * USDC };
  const { view, feed } = viewOver(h);
  try {
    const subOf = (k: ReturnType<typeof key>) =>
      view.read().account(formatAddress(k.address))!.subaccounts[0]!;
    let settled: BlockUpdate | undefined;
    const before = new Map<
      ReturnType<typeof key>,
      { cash: bigint; basis: bigint; realized: bigint; view: PositionView }
    >();
    const records = new Map<ReturnType<typeof key>, Position>();
    for (let i = 0; i < 12 && settled === undefined; i++) {
      for (const k of [alice, bob]) {
        const record = exchangePositionOf(h.account(k)!, market)!;
        records.set(k, record);
        before.set(k, {
          cash: h.account(k)!.cashQuote,
          basis: record.costBasisQuote,
          realized: record.realizedPnlQuote,
          view: subOf(k).positions.find((p) => p.instrument === FUTURE)!,
        });
      }
      const next: BlockUpdate = feed(h.block([], 60 * 60_000));
      if (next.block.events?.some((e) => e.type === 'marketSettled' && e.instrument === FUTURE))
        settled = next;
    }
    assert.ok(settled !== undefined, 'the future settled');
    for (const [k, size] of [
      [alice, 3],
      [bob, -3],
    ] as const) {
      const b = before.get(k)!;
      assert.equal(b.view.sizeLots, size, 'the position before settlement');
      assert.notEqual(b.view.realizedPnlQuote, '0', 'realized PnL before settlement');
      assert.ok(b.view.entryPriceTicks > 0, 'an entry before settlement');
      const record = records.get(k)!;
      const paid = h.account(k)!.cashQuote - b.cash;
      // What the exchange booked on the record it then dropped: what it had,
      // plus the cash settlement paid or took less the position's cost basis.
      assert.equal(record.realizedPnlQuote, b.realized + paid - b.basis, 'settlement realized');
      const u: AccountUpdate = settled.accounts.find(
        (a) => a.address === formatAddress(k.address),
      )!;
      assert.deepEqual(
        u.positions.find((p) => p.instrument === FUTURE),
        {
          instrument: FUTURE,
          sizeLots: 0,
          entryPriceTicks: b.view.entryPriceTicks,
          unrealizedPnlQuote: '0',
          realizedPnlQuote: String(record.realizedPnlQuote),
          fundingQuote: b.view.fundingQuote,
        },
        'the closing row',
      );
      // GET /v1/account at the same height: the same balances and live
      // positions, and the settled one no longer held.
      const sub = subOf(k);
      assert.deepEqual(
        [
          u.cashQuote,
          u.equityQuote,
          u.marginUsedQuote,
          u.maintenanceMarginQuote,
          u.marginFreeQuote,
        ],
        [
          sub.cashQuote,
          sub.equityQuote,
          sub.marginUsedQuote,
          sub.maintenanceMarginQuote,
          sub.marginFreeQuote,
        ],
        'balances as GET /v1/account shows them',
      );
      assert.deepEqual(
        u.positions.filter((p) => p.sizeLots !== 0),
        sub.positions,
        'live positions as GET /v1/account shows them',
      );
      assert.ok(!sub.positions.some((p) => p.instrument === FUTURE), 'no longer held');
    }
  } finally {
    view.close();
  }
});

test('the read model: a position closed by trading is listed once more, flat, with the entry it closed at, its funding and its realized PnL; a flip lists its new size only; GET /v1/account lists neither closed one', () => {
  const BTC = 'BTC-PERPETUAL';
  const h = new Harness();
  const [mm, alice, carol, gus, erin] = ['mm', 'alice', 'carol', 'gus', 'erin'].map((n) =>
    key(`view-closed-${n}`),
  ) as [Key, Key, Key, Key, Key];
  for (const k of [mm, alice, carol, gus, erin]) h.fund(k, 1_000_000n * USDC);
  const market = h.ex.state.marketByName.get(BTC)!;
  const k = market.k;
  const trade = (
    maker: Key,
    taker: Key,
    side: 'buy' | 'sell',
    priceTicks: number,
    lots: number,
  ) => [
    h.tx(maker, limit(BTC, side === 'buy' ? 'sell' : 'buy', priceTicks, lots)),
    h.tx(taker, limit(BTC, side, priceTicks, lots, { timeInForce: 'IOC' })),
  ];
  // Before the view: Alice +5 at 500,000, 2 sold back at 500,100 (+3 left);
  // Carol +5 at 500,050; Gus +3 at 500,150. The market maker takes the other sides.
  for (const [maker, taker, side, price, lots] of [
    [mm, alice, 'buy', 500_000, 5],
    [mm, alice, 'sell', 500_100, 2],
    [mm, carol, 'buy', 500_050, 5],
    [mm, gus, 'buy', 500_150, 3],
  ] as const) {
    const r = h.block(trade(maker, taker, side, price, lots));
    assert.ok(r.results.every((x) => x.ok && x.actions[0]!.ok));
  }
  const { view, feed } = viewOver(h);
  try {
    // One block: Alice sells her 3 (flat); Carol sells 8 (short 3: flipped);
    // Gus buys 1 more at 500,110 (+4, entry 500,140) then sells the 4 (flat);
    // Erin buys 2 at 500,300 and sells them at 500,250 (opened and closed in the block).
    const txs = [
      ...trade(mm, alice, 'sell', 500_200, 3),
      ...trade(mm, carol, 'sell', 500_120, 8),
      ...trade(mm, gus, 'buy', 500_110, 1),
      ...trade(mm, gus, 'sell', 500_090, 4),
      ...trade(mm, erin, 'buy', 500_300, 2),
      ...trade(mm, erin, 'sell', 500_250, 2),
    ];
    const r = h.block(txs);
    assert.ok(r.results.every((x) => x.ok && x.actions[0]!.ok));
    const u = feed(r, undefined, txs);
    const rows = (who: Key) =>
      u.accounts.find((a) => a.address === formatAddress(who.address))!.positions;
    const record = (who: Key) => exchangePositionOf(h.account(who)!, market)!;
    const get = (who: Key) => view.read().account(formatAddress(who.address))!.subaccounts[0]!;
    for (const [who, entry, realizedTicks] of [
      [alice, 500_000, 100n * 2n + 200n * 3n],
      // Its entry when it closed, after the block's buy: not the 500,150 it had before the block.
      [gus, 500_140, 4n * 500_090n - (3n * 500_150n + 500_110n)],
      [erin, 500_300, (500_250n - 500_300n) * 2n],
    ] as const) {
      assert.equal(record(who).sizeLots, 0);
      assert.equal(record(who).realizedPnlQuote, realizedTicks * k, 'the exchange realized it');
      assert.deepEqual(
        rows(who),
        [
          {
            instrument: BTC,
            sizeLots: 0,
            entryPriceTicks: entry,
            unrealizedPnlQuote: '0',
            realizedPnlQuote: String(realizedTicks * k),
            fundingQuote: String(record(who).fundingQuote),
          },
        ],
        'the closing row',
      );
      assert.deepEqual(get(who).positions, [], 'GET lists what is held only');
    }
    // Flipped through zero (Carol, by one trade; the market maker, −11 to 0 and on to
    // +3 within the block): listed with the new size and entry, as GET shows it, and no
    // closing row; the realized PnL includes what closing the old side realized.
    for (const [who, size] of [
      [carol, -3],
      [mm, 3],
    ] as const) {
      assert.deepEqual(rows(who), get(who).positions);
      assert.deepEqual(
        rows(who).map((p) => [p.instrument, p.sizeLots]),
        [[BTC, size]],
      );
      assert.equal(rows(who)[0]!.realizedPnlQuote, String(record(who).realizedPnlQuote));
    }
    assert.equal(rows(carol)[0]!.entryPriceTicks, 500_120, 'the price it flipped at');
    assert.equal(rows(carol)[0]!.realizedPnlQuote, String((500_120n - 500_050n) * 5n * k));
    // The next block does not list them again.
    const next = feed(h.block([]));
    assert.ok(!next.accounts.some((a) => a.positions.some((p) => p.sizeLots === 0)));
  } finally {
    view.close();
  }
});

test('a position changed where the view did not see it is logged as an error when the block that next trades it disagrees, and its market read again from the state', () => {
  const BTC = 'BTC-PERPETUAL';
  const h = new Harness();
  const [mm, alice, gus] = ['mm', 'alice', 'gus'].map((n) => key(`view-drift-${n}`)) as [
    Key,
    Key,
    Key,
  ];
  for (const k of [mm, alice, gus]) h.fund(k, 1_000_000n * USDC);
  const market = h.ex.state.marketByName.get(BTC)!;
  const errors: { fields: Record<string, unknown>; message: string }[] = [];
  const log = {
    ...silentLog,
    error: (fields: object, message: string) =>
      errors.push({ fields: fields as Record<string, unknown>, message }),
  };
  const { view, deliver } = standInView(h, { log });
  const run = (txs: SignedTx[]): BlockUpdate => {
    const r = h.block(txs);
    assert.ok(r.results.every((x) => x.ok && x.actions[0]!.ok));
    let update: BlockUpdate | undefined;
    const stop = view.subscribe((u) => (update = u));
    deliver(r, txs);
    stop();
    return update!;
  };
  const trade = (taker: Key, side: 'buy' | 'sell', priceTicks: number, lots: number) => [
    h.tx(mm, limit(BTC, side === 'buy' ? 'sell' : 'buy', priceTicks, lots)),
    h.tx(taker, limit(BTC, side, priceTicks, lots, { timeInForce: 'IOC' })),
  ];
  try {
    run(trade(alice, 'buy', 500_000, 5));
    assert.equal(errors.length, 0, 'what the view saw agrees');
    // Two more lots for Alice, booked on the state directly: no block, no event.
    applyTrade(h.ex.state, market, h.account(alice)!, 2, 500_500);
    applyTrade(h.ex.state, market, h.account(mm)!, -2, 500_500);
    run(trade(alice, 'sell', 500_200, 7));
    assert.equal(errors.length, 1, 'one error for the market');
    assert.equal(errors[0]!.fields.instrument, BTC);
    assert.equal(errors[0]!.fields.account, h.account(alice)!.index);
    assert.deepEqual(errors[0]!.fields.record, { sizeLots: 0, costBasisQuote: '0' });
    // Read again from the state: the next blocks agree, and close at the right entry.
    run(trade(gus, 'buy', 500_300, 3));
    const u = run(trade(gus, 'sell', 500_100, 3));
    assert.equal(errors.length, 1, 'no more errors');
    const row = u.accounts.find((a) => a.address === formatAddress(gus.address))!.positions;
    assert.deepEqual(
      row.map((p) => [p.instrument, p.sizeLots, p.entryPriceTicks]),
      [[BTC, 0, 500_300]],
    );
  } finally {
    view.close();
  }
});

test('the read model: a market settled by the first block after a gap of hours still gives each holder its settlement and closing row, from positions traded while no one followed the accounts', () => {
  const FUTURE = 'BTC-2MAR26';
  const EXPIRY_MS = expiryMsOfDay(daysFromCivil(2026, 3, 2));
  const h = new Harness(btcDailyGenesis());
  const [alice, bob] = [key('view-gap-alice'), key('view-gap-bob')];
  h.fund(alice, 100_000n * USDC);
  h.fund(bob, 100_000n * USDC);
  const market = h.ex.state.marketByName.get(FUTURE)!;
  const f = market.markTicks;
  // Account updates are built only while some listener wants them: none does at first.
  let following = false;
  const interest: AccountInterest = { any: () => following, has: () => following };
  const { view, feed } = viewOver(h, undefined, interest);
  try {
    for (const [maker, taker, side, price, lots] of [
      [bob, alice, 'buy', f, 5],
      [bob, alice, 'sell', f + 20, 2],
    ] as const) {
      const txs = [
        h.tx(maker, limit(FUTURE, side === 'buy' ? 'sell' : 'buy', price, lots)),
        h.tx(taker, limit(FUTURE, side, price, lots, { timeInForce: 'IOC' })),
      ];
      const r = h.block(txs);
      assert.ok(r.results.every((x) => x.ok && x.actions[0]!.ok));
      assert.deepEqual(feed(r, undefined, txs).accounts, []);
    }
    const subOf = (k: Key) => view.read().account(formatAddress(k.address))!.subaccounts[0]!;
    const before = new Map(
      [alice, bob].map((k) => {
        const record = exchangePositionOf(h.account(k)!, market)!;
        const shown = subOf(k).positions.find((p) => p.instrument === FUTURE)!;
        return [k, { record, shown, cash: h.account(k)!.cashQuote }] as const;
      }),
    );
    h.oracle = { ...h.oracle, BTC: h.oracle.BTC! + 321n * USDC };
    // The next block comes nine hours later, past the expiry (08:00): it settles the future.
    assert.ok(h.timeMs + 60 * 60_000 < EXPIRY_MS, 'more than an hour before expiry');
    following = true;
    const settled = feed(h.block([], 9 * 60 * 60_000));
    const event = settled.block.events!.find(
      (e) => e.type === 'marketSettled' && e.instrument === FUTURE,
    );
    assert.ok(event !== undefined && settled.timeMs >= EXPIRY_MS, 'the future settled');
    for (const [k, size] of [
      [alice, 3],
      [bob, -3],
    ] as const) {
      const b = before.get(k)!;
      assert.equal(b.shown.sizeLots, size);
      const u = settled.accounts.find((a) => a.address === formatAddress(k.address));
      assert.ok(u !== undefined, 'the holder gets an update');
      assert.deepEqual(u.settlements, [
        {
          instrument: FUTURE,
          sizeLots: size,
          valueQuote: event.amountQuote,
          height: settled.height,
        },
      ]);
      assert.deepEqual(
        u.positions.find((p) => p.instrument === FUTURE),
        {
          instrument: FUTURE,
          sizeLots: 0,
          entryPriceTicks: b.shown.entryPriceTicks,
          unrealizedPnlQuote: '0',
          // Settlement booked its PnL on the record it then dropped.
          realizedPnlQuote: String(b.record.realizedPnlQuote),
          fundingQuote: b.shown.fundingQuote,
        },
      );
      assert.equal(u.cashQuote, String(h.account(k)!.cashQuote));
      assert.notEqual(h.account(k)!.cashQuote, b.cash, 'settlement paid or took cash');
    }
  } finally {
    view.close();
  }
});

test('a restarted node still knows the markets settled in the blocks it reads back', () => {
  const { h, future } = dailyListingHarness();
  const chain: StoredChain = { blocks: new Map(), results: new Map() };
  const live = viewOver(h);
  let restarted: ChainView | undefined;
  try {
    let settledAt = 0;
    for (let i = 0; i < 12 && settledAt === 0; i++) {
      const r = h.block([], 60 * 60_000);
      store(chain, h, r, []);
      if (live.feed(r).ended.length > 0) settledAt = h.ex.state.height;
    }
    assert.ok(settledAt > 0, 'the future settled');
    const end = live.view.read().ended(future);
    assert.equal(end?.height, settledAt);
    restarted = viewOver(h, undefined, undefined, undefined, undefined, undefined, chain).view;
    assert.deepEqual(restarted.read().ended(future), end);
    assert.equal(restarted.read().ended('BTC-PERPETUAL'), undefined);
  } finally {
    live.view.close();
    restarted?.close();
  }
});

test('a settling market ends its book, trades and ticker channels: one `ended` message with the settlement, the subscription freed, and a new one refused as MarketEnded; the SDK hands it over and never asks again', async () => {
  const { h, future } = dailyListingHarness();
  const [alice, bob] = [key('view-ended-alice'), key('view-ended-bob')];
  h.fund(alice, 100_000n * USDC);
  h.fund(bob, 100_000n * USDC);
  const f = h.ex.state.marketByName.get(future)!.markTicks;
  h.one(alice, limit(future, 'buy', f, 3));
  h.one(bob, limit(future, 'sell', f - 1, 1));
  const { view, feed } = viewOver(h);
  const server = await startApiServer({ view, limits: { subscriptionsMax: 3 } });
  const raw = new RawClient(server.url);
  const statuses: { type: string; code?: string; channel?: string }[] = [];
  const sdk = new ZommaClient(server.url).socket({
    heartbeatMs: 0,
    reconnectDelayMs: 1,
    onStatus: (s) => statuses.push(s),
  });
  const sdkEvents: ChannelEvent[] = [];
  try {
    await raw.opened();
    const channels = ['book', 'trades', 'ticker'].map((kind) => `${kind}:${future}`);
    for (const channel of channels) {
      raw.send({ op: 'subscribe', channel });
      await raw.nth((m) => m.type === 'snapshot' && m.channel === channel);
    }
    sdk.subscribe(`ticker:${future}`, (e) => sdkEvents.push(e));
    let blocks = 0;
    sdk.subscribe('blocks', () => blocks++);
    await until(() => sdkEvents.length > 0 && blocks > 0, 10_000, 'the SDK snapshots');

    let settled: BlockUpdate | undefined;
    for (let i = 0; i < 12 && settled === undefined; i++) {
      const next: BlockUpdate = feed(h.block([], 60 * 60_000));
      if (next.ended.length > 0) settled = next;
    }
    assert.ok(settled !== undefined, 'the future settled');
    const event = settled.block.events!.find(
      (e) => e.type === 'marketSettled' && e.instrument === future,
    )!;
    const end = {
      instrument: future,
      reason: 'settled',
      height: settled.height,
      timeMs: settled.timeMs,
      priceQuote: event.priceQuote,
      valueQuote: event.amountQuote,
    };
    for (const channel of channels) {
      const last = await raw.nth((m) => m.type === 'ended' && m.channel === channel);
      assert.deepEqual(last, { type: 'ended', channel, seq: settled.height, data: end }, channel);
    }
    // Ended on the server too: the three places are free for other channels.
    for (const kind of ['book', 'trades', 'ticker']) {
      const channel = `${kind}:BTC-PERPETUAL`;
      raw.send({ op: 'subscribe', channel });
      const answer = await raw.nth(
        (m) => (m.type === 'subscribed' || m.type === 'error') && m.channel === channel,
      );
      assert.equal(answer.type, 'subscribed', `${channel}: ${JSON.stringify(answer)}`);
    }
    // Asking for the market again is refused by name, with how it ended.
    raw.send({ op: 'unsubscribe', channel: `book:BTC-PERPETUAL` });
    raw.send({ op: 'subscribe', channel: `ticker:${future}` });
    const refused = await raw.nth((m) => m.type === 'error' && m.channel === `ticker:${future}`);
    assert.ok(refused.type === 'error');
    assert.equal(refused.code, 'MarketEnded');
    assert.deepEqual(refused.ended, end);
    assert.match(refused.message, new RegExp(`${future} settled at height ${settled.height}`));
    // As is a read of it over HTTP: 404, saying what became of it.
    const ticker = await fetch(`${server.url}/v1/ticker/${future}`);
    assert.equal(ticker.status, 404);
    const body = (await ticker.json()) as { code: string; message: string };
    assert.equal(body.code, 'NotFound');
    assert.match(body.message, /settled at height/);

    // The SDK's handler gets the end as the channel's last event.
    await until(() => sdkEvents.some((e) => e.type === 'ended'), 10_000, "the SDK's ended event");
    assert.deepEqual(sdkEvents.at(-1), {
      type: 'ended',
      channel: `ticker:${future}`,
      seq: settled.height,
      data: end,
    });
    // After a reconnect it asks for `blocks` again, but not for the ended channel:
    // no MarketEnded refusal comes before the next block's update (the server
    // answers one connection's requests in order, the ended one's first).
    const seen = blocks;
    server.hub.dropAll();
    await until(() => sdk.connects >= 2, 10_000, 'the SDK reconnected');
    feed(h.block([], 1_000));
    await until(() => blocks > seen, 10_000, 'the SDK resubscribed');
    assert.deepEqual(
      statuses.filter((s) => s.type === 'error'),
      [],
      'nothing refused: the ended channel was not asked for',
    );
  } finally {
    sdk.close();
    raw.close();
    await server.close();
    view.close();
  }
});

test('the published trade lists keep the newest trades, whatever a block adds', () => {
  fc.assert(
    fc.property(
      fc.array(fc.nat(), { maxLength: 30 }),
      fc.array(fc.nat(), { maxLength: 30 }),
      fc.integer({ min: 1, max: 25 }),
      (old, added, max) => {
        const before = [...old];
        const kept = lastKept(old, added, max);
        assert.deepEqual(kept, [...old, ...added].slice(-max));
        assert.deepEqual(old, before, 'the published list is not changed');
      },
    ),
    { numRuns: 200, seed: 71 },
  );
});

// --- what is built when: published records describe their own height ----------------

test('the read model between blocks: a read sees the latest block, a ReadModel kept across blocks keeps its height, a late-read update describes its block', () => {
  const BTC = 'BTC-PERPETUAL';
  const ETH = 'ETH-PERPETUAL';
  const maker = key('view-lazy-maker');
  const h = new Harness();
  h.fund(maker, 1_000_000n * USDC);
  const { view, feed } = viewOver(h);
  try {
    const u1 = feed(h.block([h.tx(maker, limit(BTC, 'sell', 510_000, 3))]));
    const r1 = view.read();
    assert.equal(r1.height, u1.height);
    const u2 = feed(h.block([h.tx(maker, limit(BTC, 'sell', 505_000, 2))]));
    const r2 = view.read();
    assert.equal(r2.height, u2.height);

    // Read only now, after the next block: still the first block's state.
    assert.equal(r1.ticker(BTC)!.bestAskTicks, 510_000);
    assert.equal(r1.ticker(BTC)!.height, u1.height);
    assert.deepEqual(r1.book(BTC, 10)!.asks, [[510_000, 3]]);
    assert.equal(r1.status().height, u1.height);
    // And the latest one sees the latest block.
    assert.deepEqual(
      [r2.ticker(BTC)!.bestAskTicks, r2.ticker(BTC)!.bestAskLots, r2.ticker(BTC)!.height],
      [505_000, 2, u2.height],
    );
    assert.deepEqual(r2.book(BTC, 10)!.asks, [
      [505_000, 2],
      [510_000, 3],
    ]);
    assert.equal(r2.book(BTC, 10)!.seq, u2.height, 'a book seq is the height that changed it');
    // An untouched market shares its record, and shows the height it is read at.
    assert.equal(r2.book(ETH, 10)!.seq, r1.book(ETH, 10)!.seq);
    assert.equal(r2.ticker(ETH)!.height, u2.height);

    // The first update's changed tickers, first read after the second block, are the first block's.
    assert.deepEqual(
      u1.tickers.map((t) => [t.instrument, t.bestAskTicks, t.height]),
      [[BTC, 510_000, u1.height]],
    );
    assert.deepEqual(
      u2.tickers.map((t) => [t.instrument, t.bestAskTicks, t.height]),
      [[BTC, 505_000, u2.height]],
    );
    // A block with nothing that moves a ticker lists none.
    const u3 = feed(h.block([]));
    assert.deepEqual(u3.tickers, []);
    assert.equal(view.read().ticker(BTC)!.height, u3.height);
    assert.equal(u1.block.height, u1.height);
    assert.deepEqual(view.read().block(u1.height), u1.block);
  } finally {
    view.close();
  }
});

test('the read model: a book subscriber gets every delta, each linked to the one before, and they rebuild each published book', () => {
  const BTC = 'BTC-PERPETUAL';
  const ETH = 'ETH-PERPETUAL';
  const traders = [key('view-seq-a'), key('view-seq-b'), key('view-seq-c')];
  const h = new Harness();
  for (const k of traders) h.fund(k, 1_000_000n * USDC);
  const { view, feed } = viewOver(h);
  const prng = new Prng(20_261_125);
  type Side = Map<number, number>;
  const replica = new Map<string, { seq: number; bids: Side; asks: Side }>();
  for (const name of [BTC, ETH]) {
    const book = view.read().book(name, 1_000)!;
    replica.set(name, { seq: book.seq, bids: new Map(book.bids), asks: new Map(book.asks) });
  }
  const orderIds: number[] = [];
  try {
    for (let b = 0; b < 60; b++) {
      const txs = [];
      for (let i = 0; i < prng.int(4); i++) {
        const k = traders[prng.int(traders.length)]!;
        const name = prng.int(3) === 0 ? ETH : BTC;
        const mid = name === BTC ? 500_000 : 300_000;
        if (orderIds.length > 0 && prng.int(4) === 0) {
          const orderId = orderIds.splice(prng.int(orderIds.length), 1)[0]!;
          txs.push(h.tx(k, { kind: 'cancel', instrument: BTC, orderId }));
          continue;
        }
        const side = prng.int(2) === 0 ? 'buy' : 'sell';
        // Mostly resting orders a few ticks around the mid, sometimes crossing it.
        const offset = 1 + prng.int(5);
        const priceTicks = side === 'buy' ? mid - offset + prng.int(3) : mid + offset - prng.int(3);
        txs.push(h.tx(k, limit(name, side, priceTicks, 1 + prng.int(3))));
      }
      const r = h.block(txs);
      for (const result of r.results) {
        const a = result?.actions[0];
        if (a?.ok && a.order !== undefined && a.order.restedLots > 0)
          orderIds.push(a.order.orderId);
      }
      const u = feed(r, undefined, txs);
      for (const d of u.books) {
        const book = replica.get(d.instrument)!;
        assert.equal(d.prevSeq, book.seq, `${d.instrument}: a delta applies on prevSeq`);
        assert.equal(d.seq, u.height);
        book.seq = d.seq;
        for (const [levels, side] of [
          [d.bids, book.bids],
          [d.asks, book.asks],
        ] as const) {
          for (const [p, size] of levels) {
            if (size === 0) side.delete(p);
            else side.set(p, size);
          }
        }
      }
      const read = view.read();
      for (const [name, book] of replica) {
        const published = read.book(name, 1_000)!;
        assert.equal(published.seq, book.seq, `${name} at block ${b}`);
        assert.deepEqual(
          published.bids,
          [...book.bids].sort((x, y) => y[0] - x[0]),
        );
        assert.deepEqual(
          published.asks,
          [...book.asks].sort((x, y) => x[0] - y[0]),
        );
      }
    }
    assert.ok(replica.get(BTC)!.seq > 20 && replica.get(ETH)!.seq > 5, 'both books moved');
  } finally {
    view.close();
  }
});

test('the read model builds account updates only for the accounts its listeners want', () => {
  const BTC = 'BTC-PERPETUAL';
  const [alice, bob] = [key('view-want-alice'), key('view-want-bob')];
  const h = new Harness();
  h.fund(alice, 1_000_000n * USDC);
  h.fund(bob, 1_000_000n * USDC);
  const { view, feed } = viewOver(h, undefined, { any: () => false, has: () => false });
  const aliceAddress = formatAddress(alice.address);
  const trade = () => {
    h.one(alice, limit(BTC, 'sell', 500_000, 1));
    const txs = [h.tx(bob, limit(BTC, 'buy', 500_000, 1))];
    return feed(h.block(txs), undefined, txs);
  };
  const seen: BlockUpdate[] = [];
  const none = view.subscribe((u) => seen.push(u), { any: () => false, has: () => false });
  try {
    // Only a listener that reads no account: no account update, the trade still published.
    const quiet = trade();
    assert.deepEqual(quiet.accounts, []);
    assert.equal(quiet.trades.length, 1);
    assert.equal(seen.at(-1), quiet);
    // One that wants alice's: hers only (the fill of each side is in its own account's update).
    const stop = view.subscribe(() => {}, { any: () => true, has: (a) => a === aliceAddress });
    const some = trade();
    assert.deepEqual(
      some.accounts.map((a) => [a.address, a.fills.map((f) => f.side)]),
      [[aliceAddress, ['sell']]],
    );
    stop();
    assert.deepEqual(trade().accounts, []);
  } finally {
    none();
    view.close();
  }
});

test("the read model: a block's oracle view, first read blocks later, shows the observations of that block", () => {
  const h = new Harness();
  const set = ValidatorSet.fromUpdates(
    VALIDATORS.map((v) => ({ publicKey: v.publicKey, power: 1_000_000 })),
  );
  const { view, feed } = viewOver(h, set);
  const commitOf = (height: number, btcQuote: bigint): CommitCertificate => ({
    height,
    round: 0,
    blockHash: new Uint8Array(32),
    votes: VALIDATORS.map((_, validatorIndex) => ({
      validatorIndex,
      timestampMs: h.timeMs,
      extension: encodeObservation({
        timeMs: h.timeMs,
        prices: [{ underlying: 'BTC', priceQuote: btcQuote + BigInt(validatorIndex) }],
        smiles: [],
      }),
      signature: new Uint8Array(64),
    })),
  });
  try {
    const first = feed(h.block([]), commitOf(h.ex.state.height, 50_000n * USDC));
    const second = feed(h.block([]), commitOf(h.ex.state.height, 51_000n * USDC));
    const prices = (o: OracleView[] | undefined) =>
      o?.map((x) => [x.underlying, x.observations.map((p) => p.priceQuote)]);
    const btc = (base: bigint) => [['BTC', [0n, 1n, 2n, 3n].map((i) => String(base + i))]];
    assert.deepEqual(prices(view.read().block(first.height)!.oracle), btc(50_000n * USDC));
    assert.deepEqual(prices(second.block.oracle), btc(51_000n * USDC));
    assert.deepEqual(prices(view.read().risk!().oracle), btc(51_000n * USDC));
    assert.equal(view.read().block(first.height)!.oracle![0]!.priceQuote, '50000000001');
  } finally {
    view.close();
  }
});

test('a refused submission names its field once: in `field`, and once at the head of its message', async () => {
  const h = new Harness();
  const pool = new Mempool({
    chainId: h.ex.state.genesis.chainId,
    verifyBatch: async (items) => items.map(() => true),
    signatures: new SignatureCache(),
  });
  const { view } = viewOver(h, undefined, undefined, (bytes) => pool.add(bytes, null));
  try {
    const bytes = encodeSignedTx(h.tx(key('view-submit'), { kind: 'faucet', amountQuote: 1n }));
    bytes[0] = 0; // the format version
    assert.deepEqual(await view.submit(bytes), {
      ok: false,
      code: 'Malformed',
      message: 'tx.version: unknown version 0',
      field: 'tx.version',
    });
    const wrongChain = h.tx(key('view-submit'), { kind: 'faucet', amountQuote: 1n }, {});
    const refused = await view.submit(encodeSignedTx({ ...wrongChain, chainId: 'another-chain' }));
    assert.ok(!refused.ok);
    assert.equal(refused.field, 'tx.chainId');
    assert.match(refused.message, /^tx\.chainId: signed for chain "another-chain"$/);
  } finally {
    view.close();
  }
});

test('the read model: on a book deeper than the feed window, deltas keep exactly its top levels as levels above go', () => {
  const BTC = 'BTC-PERPETUAL';
  const window = WS_BOOK_DEPTH_LEVELS;
  // Makers enough for a market's open-order limit per account (three batches each).
  const makers = Array.from({ length: 12 }, (_, i) => key(`view-window-maker-${i}`));
  const h = new Harness();
  for (const k of makers) h.fund(k, 1_000_000n * USDC);
  const { view, feed } = viewOver(h);
  const orderAt = new Map<number, number>();
  const makerAt = new Map<number, (typeof makers)[number]>();
  const place = (prices: number[]): SignedTx[] => {
    const txs = [];
    for (let i = 0; i < prices.length; i += BATCH_ACTIONS_MAX) {
      const maker = makers[Math.floor(i / BATCH_ACTIONS_MAX / 3)]!;
      const chunk = prices.slice(i, i + BATCH_ACTIONS_MAX);
      for (const p of chunk) makerAt.set(p, maker);
      const actions = chunk.map((p) => limit(BTC, p >= 500_100 ? 'sell' : 'buy', p, 1));
      txs.push(h.tx(maker, { kind: 'batch', actions }));
    }
    return txs;
  };
  /** The order ids of the placements of `r`, its last transactions, by price. */
  const noteOrders = (r: BlockResult, placed: number[]) => {
    const outcomes = r.results.slice(-Math.ceil(placed.length / BATCH_ACTIONS_MAX));
    const ids = outcomes.flatMap((result) =>
      result!.actions.map((a) => (a.ok ? a.order!.orderId : -1)),
    );
    placed.forEach((p, i) => orderAt.set(p, ids[i]!));
  };
  try {
    // Bids 500_000 down and asks 500_100 up, one lot each: a window and 40 levels more per side.
    const prices: number[] = [];
    for (let i = 0; i < window + 40; i++) prices.push(500_000 - i, 500_100 + i);
    const seed = place(prices);
    const r0 = h.block(seed);
    noteOrders(r0, prices);
    feed(r0, undefined, seed);
    const start = view.read().book(BTC, window)!;
    assert.equal(start.bids.length, window);
    const replica = { seq: start.seq, bids: new Map(start.bids), asks: new Map(start.asks) };
    const steps: { cancel: number[]; place: number[]; moves: boolean }[] = [
      { cancel: [500_000], place: [], moves: true }, // the 1,001st bid moves in
      { cancel: [500_100, 500_101, 500_102], place: [], moves: true },
      { cancel: [500_000 - window - 20], place: [], moves: false }, // below the window
      { cancel: [], place: [500_000], moves: true }, // the window's last bid moves out
    ];
    for (const step of steps) {
      const txs = [
        ...step.cancel.map((p) =>
          h.tx(makerAt.get(p)!, { kind: 'cancel', instrument: BTC, orderId: orderAt.get(p)! }),
        ),
        ...place(step.place),
      ];
      const r = h.block(txs);
      if (step.place.length > 0) noteOrders(r, step.place);
      const u = feed(r, undefined, txs);
      const deltas = u.books.filter((d) => d.instrument === BTC);
      assert.equal(deltas.length, step.moves ? 1 : 0);
      for (const d of deltas) {
        assert.equal(d.prevSeq, replica.seq);
        replica.seq = d.seq;
        for (const [levels, side] of [
          [d.bids, replica.bids],
          [d.asks, replica.asks],
        ] as const) {
          for (const [p, size] of levels) {
            if (size === 0) side.delete(p);
            else side.set(p, size);
          }
        }
      }
      // No trimming on this side: the deltas alone keep the replica at the window.
      const served = view.read().book(BTC, window)!;
      assert.equal(served.seq, replica.seq);
      assert.deepEqual(
        [...replica.bids].sort((x, y) => y[0] - x[0]),
        served.bids,
      );
      assert.deepEqual(
        [...replica.asks].sort((x, y) => x[0] - y[0]),
        served.asks,
      );
    }
  } finally {
    view.close();
  }
});

test('two nodes that began following a book at different heights publish its changes under the same seqs', () => {
  const BTC = 'BTC-PERPETUAL';
  const maker = key('view-two-nodes');
  const h = new Harness();
  h.fund(maker, 1_000_000n * USDC);
  const early = viewOver(h);
  const txs = [h.tx(maker, limit(BTC, 'sell', 510_000, 1))];
  early.feed(h.block(txs), undefined, txs);
  // Blocks that leave the book as it is: the early node's seq stays while the height moves.
  for (let i = 0; i < 3; i++) early.feed(h.block([]));
  const late = viewOver(h);
  try {
    const before = [early.view.read().book(BTC, 10)!, late.view.read().book(BTC, 10)!];
    assert.deepEqual(before[0]!.asks, before[1]!.asks, 'the same book');
    const more = [h.tx(maker, limit(BTC, 'sell', 509_000, 2))];
    const r = h.block(more);
    const [a, b] = [early.feed(r, undefined, more), late.feed(r, undefined, more)];
    const [da, db] = [a.books[0]!, b.books[0]!];
    // The same change under the same seq on both: a client moving between them
    // resumes from it. Each links to the book its node held before.
    assert.equal(da.seq, a.height);
    assert.equal(db.seq, da.seq);
    assert.deepEqual([db.bids, db.asks], [da.bids, da.asks]);
    assert.equal(da.prevSeq, before[0]!.seq);
    assert.equal(db.prevSeq, before[1]!.seq);
    assert.deepEqual(early.view.read().book(BTC, 10), late.view.read().book(BTC, 10));
  } finally {
    early.view.close();
    late.view.close();
  }
});

test("a trade has the same id on two nodes that began following at different heights: the market's trade count, one per trade", () => {
  const BTC = 'BTC-PERPETUAL';
  const { h, maker, taker, alice } = auctionReady('view-ids');
  const early = viewOver(h);
  const late = {
    view: null as ChainView | null,
    feed: null as ReturnType<typeof viewOver>['feed'] | null,
  };
  const ids: number[] = [];
  const both = (txs: SignedTx[], advanceMs?: number): void => {
    const r = h.block(txs, advanceMs);
    const a = early.feed(r, undefined, txs).trades.filter((t) => t.instrument === BTC);
    ids.push(...a.map((t) => t.tradeId));
    if (late.feed === null) return;
    const b = late.feed(r, undefined, txs).trades.filter((t) => t.instrument === BTC);
    assert.deepEqual(b, a, 'the same trades under the same ids');
  };
  try {
    both([h.tx(maker, limit(BTC, 'sell', 501_000, 2)), h.tx(alice, limit(BTC, 'buy', 501_000, 2))]);
    // The second node starts here, as a node restarted from this height's state would.
    const started = viewOver(h);
    late.view = started.view;
    late.feed = started.feed;
    // A buy 6% away starts a call auction; the uncross trades, then trading goes on.
    both([h.tx(taker, limit(BTC, 'buy', 535_000, 2))]);
    both([h.tx(alice, limit(BTC, 'buy', 532_000, 1))]);
    const endMs = h.ex.state.marketByName.get(BTC)!.auction!.monitor.auctionEndMs;
    both([], endMs - h.timeMs);
    both([h.tx(maker, limit(BTC, 'sell', 530_000, 1)), h.tx(alice, limit(BTC, 'buy', 530_000, 1))]);
    assert.ok(ids.length >= 3);
    // auctionReady traded once before either node followed the book.
    assert.deepEqual(
      ids,
      ids.map((_, i) => i + 2),
    );
    assert.equal(ids.at(-1), h.ex.state.marketByName.get(BTC)!.tradeCount);
    assert.deepEqual(
      late.view.read().trades(BTC, 10),
      early.view.read().trades(BTC, 10)!.slice(-late.view.read().trades(BTC, 10)!.length),
    );
  } finally {
    early.view.close();
    late.view?.close();
  }
});

test('a restarted node lists the recent trades again from its stored blocks, under the same ids, with the last trade price', () => {
  const BTC = 'BTC-PERPETUAL';
  const { h, maker, taker, alice } = auctionReady('view-restart-trades');
  const chain: StoredChain = { blocks: new Map(), results: new Map() };
  const live = viewOver(h);
  const run = (txs: SignedTx[], advanceMs?: number): void => {
    const r = h.block(txs, advanceMs);
    store(chain, h, r, txs);
    live.feed(r, undefined, txs);
  };
  let restarted: ChainView | undefined;
  try {
    run([h.tx(maker, limit(BTC, 'sell', 501_000, 2)), h.tx(alice, limit(BTC, 'buy', 501_000, 2))]);
    // A call auction and its uncross, then a resting ask that an amend of a bid takes.
    run([h.tx(taker, limit(BTC, 'buy', 535_000, 2))]);
    run([h.tx(alice, limit(BTC, 'buy', 532_000, 1))]);
    const endMs = h.ex.state.marketByName.get(BTC)!.auction!.monitor.auctionEndMs;
    run([], endMs - h.timeMs);
    run([h.tx(maker, limit(BTC, 'sell', 531_000, 1)), h.tx(taker, limit(BTC, 'buy', 520_000, 1))]);
    const bidId = h.ex.state.nextOrderId - 1;
    run([h.tx(taker, { kind: 'amend', instrument: BTC, orderId: bidId, priceTicks: 531_000 })]);
    const before = live.view.read().trades(BTC, 100)!;
    assert.ok(before.some((t) => t.auction === true));
    assert.ok(
      before.some(
        (t) => t.auction !== true && t.takerSide === 'buy' && t.height === h.ex.state.height,
      ),
    );

    restarted = viewOver(h, undefined, undefined, undefined, undefined, undefined, chain).view;
    assert.deepEqual(restarted.read().trades(BTC, 100), before);
    assert.equal(
      restarted.read().ticker(BTC)!.lastTradeTicks,
      live.view.read().ticker(BTC)!.lastTradeTicks,
    );
    // A height stored without its uncross trades (an older record) hides everything up to it.
    const cut = [...chain.results.keys()][1]!;
    const older = chain.results.get(cut)!;
    chain.results.set(cut, { ...older, details: { ...older.details!, auctionTradesKept: false } });
    restarted.close();
    restarted = viewOver(h, undefined, undefined, undefined, undefined, undefined, chain).view;
    assert.deepEqual(
      restarted.read().trades(BTC, 100),
      before.filter((t) => t.height > cut),
    );
  } finally {
    live.view.close();
    restarted?.close();
  }
});

test("a restarted node's risk feed keeps the insurance history and the risk events of the blocks it reads back", () => {
  const BTC = 'BTC-PERPETUAL';
  const { h, maker, taker, alice } = auctionReady('view-restart-risk');
  const chain: StoredChain = { blocks: new Map(), results: new Map() };
  const live = viewOver(h);
  const run = (txs: SignedTx[], advanceMs?: number): void => {
    const r = h.block(txs, advanceMs);
    store(chain, h, r, txs);
    live.feed(r, undefined, txs);
  };
  let restarted: ChainView | undefined;
  try {
    run([h.tx(maker, limit(BTC, 'sell', 501_000, 2)), h.tx(alice, limit(BTC, 'buy', 501_000, 2))]);
    // A call auction (started, then ended by its uncross): two risk events.
    run([h.tx(taker, limit(BTC, 'buy', 535_000, 2))]);
    const endMs = h.ex.state.marketByName.get(BTC)!.auction!.monitor.auctionEndMs;
    run([], endMs - h.timeMs);
    run([]);
    const before = live.view.read().risk!();
    assert.deepEqual(
      before.events.map((e) => e.type),
      ['auctionStarted', 'auctionEnded'],
      'the live feed saw the auction',
    );
    assert.equal(before.insurance.length, chain.blocks.size, 'one insurance point per block');

    restarted = viewOver(h, undefined, undefined, undefined, undefined, undefined, chain).view;
    const after = restarted.read().risk!();
    assert.deepEqual(after.insurance, before.insurance);
    assert.deepEqual(after.events, before.events);
    assert.equal(after.insuranceQuote, before.insuranceQuote);
  } finally {
    live.view.close();
    restarted?.close();
  }
});

test("a restarted node's consensus view counts the recent blocks it reads back", () => {
  const { h } = auctionReady('view-restart-consensus');
  const chain: StoredChain = { blocks: new Map(), results: new Map() };
  const live = viewOver(h);
  let restarted: ChainView | undefined;
  try {
    for (let i = 0; i < 5; i++) {
      const r = h.block([]);
      store(chain, h, r, []);
      live.feed(r);
    }
    const before = live.view.read().consensus!();
    assert.equal(before.recentBlocks, 5, 'the live view counted the blocks it was fed');
    restarted = viewOver(h, undefined, undefined, undefined, undefined, undefined, chain).view;
    const after = restarted.read().consensus!();
    assert.equal(after.recentBlocks, before.recentBlocks);
    assert.deepEqual(after.validators, before.validators);
  } finally {
    live.view.close();
    restarted?.close();
  }
});

/** The four test validators at equal power. */
function equalSet(): ValidatorSet {
  return ValidatorSet.fromUpdates(
    VALIDATORS.map((v) => ({ publicKey: v.publicKey, power: 1_000_000 })),
  );
}

/** A certificate for `height` holding the precommits of `signers` (by index), unsigned. */
function certificateOf(h: Harness, height: number, signers: number[]): CommitCertificate {
  return {
    height,
    round: 0,
    blockHash: new Uint8Array(32),
    votes: signers.map((validatorIndex) => ({
      validatorIndex,
      timestampMs: h.timeMs,
      extension: new Uint8Array(0),
      signature: new Uint8Array(64),
    })),
  };
}

test("a restarted node counts the signers of a stored block from the next block's lastCommit, and of the last from its own certificate", () => {
  const h = new Harness();
  const set = equalSet();
  const certificate = (height: number, signers: number[]) => certificateOf(h, height, signers);
  const chain: StoredChain = { blocks: new Map(), results: new Map() };
  // Block 1 is stored with a certificate of all four; block 2's lastCommit,
  // the canonical one, holds three. Block 2's own certificate holds two.
  store(chain, h, h.block([]), [], { commit: certificate(1, [0, 1, 2, 3]) });
  store(chain, h, h.block([]), [], {
    commit: certificate(2, [0, 1]),
    lastCommit: certificate(1, [0, 1, 2]),
  });
  const restarted = viewOver(h, set, undefined, undefined, undefined, undefined, chain).view;
  try {
    const c = restarted.read().consensus!();
    assert.equal(c.recentBlocks, 2);
    assert.deepEqual(
      c.validators.map((v) => [v.signedRecent, v.signedLastCommit]),
      [
        [2, true],
        [2, true],
        [1, false],
        [0, false],
      ],
    );
  } finally {
    restarted.close();
  }
});

test("a restarted node recounts the signers of the last block it read back from the next live block's lastCommit, as every other node counts them", () => {
  const h = new Harness();
  const set = equalSet();
  const certificate = (height: number, signers: number[]) => certificateOf(h, height, signers);
  const chain: StoredChain = { blocks: new Map(), results: new Map() };
  // Block 1 is stored with its own certificate of two signers; block 2, which
  // comes live after the restart, carries the canonical one: four.
  store(chain, h, h.block([]), [], { commit: certificate(1, [0, 1]) });
  const restarted = viewOver(h, set, undefined, undefined, undefined, undefined, chain);
  try {
    const before = restarted.view.read().consensus!();
    assert.deepEqual(
      before.validators.map((v) => v.signedRecent),
      [1, 1, 0, 0],
      'until the next block, its own certificate',
    );
    restarted.feed(h.block([]), certificate(1, [0, 1, 2, 3]));
    const after = restarted.view.read().consensus!();
    assert.equal(after.recentBlocks, 2);
    // Block 2's own certificate is not known here (the stand-in delivers none):
    // each validator's count is block 1's, from block 2's lastCommit.
    assert.deepEqual(
      after.validators.map((v) => v.signedRecent),
      [1, 1, 1, 1],
      "block 1 counted from block 2's lastCommit",
    );
  } finally {
    restarted.view.close();
  }
});

test('a restarted node lists the trade of an amend of an order placed before its stored blocks and gone since: its maker tells the side', () => {
  const BTC = 'BTC-PERPETUAL';
  const [maker, taker] = [key('view-restart-amend-maker'), key('view-restart-amend-taker')];
  const h = new Harness();
  for (const k of [maker, taker]) h.fund(k, 1_000_000n * USDC);
  h.one(maker, limit(BTC, 'sell', 500_000, 1));
  h.one(taker, limit(BTC, 'buy', 500_000, 1));
  // Placed at a height the restart does not read (no stored block).
  h.one(taker, limit(BTC, 'buy', 499_000, 1));
  const bidId = h.ex.state.nextOrderId - 1;
  const chain: StoredChain = { blocks: new Map(), results: new Map() };
  const live = viewOver(h);
  let restarted: ChainView | undefined;
  const run = (txs: SignedTx[]): void => {
    const r = h.block(txs);
    store(chain, h, r, txs);
    live.feed(r, undefined, txs);
  };
  try {
    run([h.tx(maker, limit(BTC, 'sell', 499_500, 2))]);
    // The amend fills the bid out against the ask, which rests on.
    run([h.tx(taker, { kind: 'amend', instrument: BTC, orderId: bidId, priceTicks: 499_500 })]);
    assert.ok(!h.ex.state.orders.has(bidId));
    const before = live.view.read().trades(BTC, 100)!;
    assert.deepEqual(
      before.map((t) => [t.takerSide, t.priceTicks, t.height]),
      [['buy', 499_500, h.ex.state.height]],
    );
    restarted = viewOver(h, undefined, undefined, undefined, undefined, undefined, chain).view;
    assert.deepEqual(restarted.read().trades(BTC, 100), before);
  } finally {
    live.view.close();
    restarted?.close();
  }
});

test('a restarted node lists the last trades of a window with more than it keeps, under the live ids', () => {
  const BTC = 'BTC-PERPETUAL';
  const [maker, taker] = [key('view-restart-many-maker'), key('view-restart-many-taker')];
  const h = new Harness();
  for (const k of [maker, taker]) h.fund(k, 1_000_000n * USDC);
  const chain: StoredChain = { blocks: new Map(), results: new Map() };
  const live = viewOver(h);
  let restarted: ChainView | undefined;
  try {
    // Twice the trades kept and more: the restart trims what it reads back as it goes.
    const blocks = Math.ceil((2 * VIEW_TRADES_KEPT + 100) / BATCH_ACTIONS_MAX);
    for (let b = 0; b < blocks; b++) {
      const makerSide = b % 2 === 0 ? 'sell' : 'buy';
      const takerSide = b % 2 === 0 ? 'buy' : 'sell';
      const asks = Array.from({ length: BATCH_ACTIONS_MAX }, (_, i) =>
        limit(BTC, makerSide, 500_000 + (b % 2 === 0 ? i : -i), 1, { timeInForce: 'postOnly' }),
      );
      const far = b % 2 === 0 ? 500_000 + BATCH_ACTIONS_MAX : 500_000 - BATCH_ACTIONS_MAX;
      const txs = [
        h.tx(taker, limit(BTC, takerSide, far, BATCH_ACTIONS_MAX, { timeInForce: 'IOC' })),
        h.tx(maker, { kind: 'batch', actions: asks }),
      ];
      const r = h.block(txs);
      store(chain, h, r, txs);
      live.feed(r, undefined, txs);
    }
    const before = live.view.read().trades(BTC, VIEW_TRADES_KEPT)!;
    assert.equal(before.length, VIEW_TRADES_KEPT);
    assert.equal(before.at(-1)!.tradeId, h.ex.state.marketByName.get(BTC)!.tradeCount);
    assert.ok(before.some((t) => t.takerSide === 'sell'));

    restarted = viewOver(h, undefined, undefined, undefined, undefined, undefined, chain).view;
    assert.deepEqual(restarted.read().trades(BTC, VIEW_TRADES_KEPT), before);
    assert.equal(
      restarted.read().ticker(BTC)!.lastTradeTicks,
      live.view.read().ticker(BTC)!.lastTradeTicks,
    );
  } finally {
    live.view.close();
    restarted?.close();
  }
});

test('a halted node serves no account state: its live state may hold half a block', () => {
  const alice = key('view-halted');
  const h = new Harness();
  h.fund(alice, 1_000n * USDC);
  const { view, halt } = viewOver(h);
  try {
    const address = formatAddress(h.account(alice)!.address);
    assert.equal(view.read().account(address)!.address, address);
    halt({ code: 'ExecutionFailed', message: 'an invariant broke' });
    assert.throws(
      () => view.read().account(address),
      (e: unknown) => e instanceof ApiError && e.code === 'Unavailable' && e.statusCode === 503,
    );
  } finally {
    view.close();
  }
});

test('an account view lists at most accountOrdersMax open orders and says when it stopped', () => {
  const BTC = 'BTC-PERPETUAL';
  const ETH = 'ETH-PERPETUAL';
  const alice = key('view-many-orders');
  const h = new Harness();
  h.fund(alice, 1_000_000n * USDC);
  for (let i = 0; i < 3; i++) h.one(alice, limit(BTC, 'buy', 400_000 - i * 100, 1));
  for (let i = 0; i < 2; i++) h.one(alice, limit(ETH, 'buy', 20_000 - i * 10, 1));
  const address = formatAddress(h.account(alice)!.address);
  const small = viewOver(h, undefined, undefined, undefined, 4);
  const large = viewOver(h, undefined, undefined, undefined, 5);
  try {
    const cut = small.view.read().account(address)!;
    assert.equal(cut.subaccounts[0]!.openOrders.length, 4);
    assert.equal(cut.openOrdersTruncated, true);
    const whole = large.view.read().account(address)!;
    assert.equal(whole.subaccounts[0]!.openOrders.length, 5);
    assert.equal(whole.openOrdersTruncated, undefined);
  } finally {
    small.view.close();
    large.view.close();
  }
});

test("a block's signers and oracle observations are named in the set that decided its certificate, not today's", () => {
  const h = new Harness();
  const members = (vs: typeof VALIDATORS) =>
    ValidatorSet.fromUpdates(vs.map((v) => ({ publicKey: v.publicKey, power: 1_000_000 })));
  const then = members(VALIDATORS);
  // Today's set lacks one member (jailed since), so later indices moved down.
  const gone = toHex(then.validators[1]!.publicKey);
  const now = members(VALIDATORS.filter((v) => toHex(v.publicKey) !== gone));
  assert.equal(now.validators.length, 3);
  const { view, feed } = viewOver(h, now, undefined, undefined, undefined, (height) =>
    height <= 1 ? then : now,
  );
  try {
    feed(h.block([]));
    const certified = h.ex.state.height;
    assert.equal(certified, 1);
    const commit: CommitCertificate = {
      height: certified,
      round: 0,
      blockHash: new Uint8Array(32),
      votes: [1, 2, 3].map((validatorIndex) => ({
        validatorIndex,
        timestampMs: h.timeMs,
        extension: encodeObservation({
          timeMs: h.timeMs,
          prices: [{ underlying: 'BTC', priceQuote: 50_000n * USDC + BigInt(validatorIndex) }],
          smiles: [],
        }),
        signature: new Uint8Array(64),
      })),
    };
    const next = feed(h.block([]), commit);
    const address = (i: number) => formatAddress(then.validators[i]!.address);
    assert.deepEqual(
      view
        .read()
        .block(certified)!
        .signers!.map((s) => s.validator),
      [1, 2, 3].map(address),
    );
    const btc = next.block.oracle!.find((o) => o.underlying === 'BTC')!;
    assert.deepEqual(
      btc.observations.map((o) => [o.validator, o.priceQuote]),
      [1, 2, 3].map((i) => [address(i), String(50_000n * USDC + BigInt(i))]),
    );
  } finally {
    view.close();
  }
});

test("a block's account update looks up the orders the block touched, not every order the account rests", () => {
  const BTC = 'BTC-PERPETUAL';
  const ETH = 'ETH-PERPETUAL';
  const [alice, bob] = [key('view-touched-alice'), key('view-touched-bob')];
  const h = new Harness();
  h.fund(alice, 1_000_000n * USDC);
  h.fund(bob, 1_000_000n * USDC);
  for (let i = 0; i < 3; i++) h.one(alice, limit(BTC, 'buy', 500_000 - i * 100, 2));
  for (let i = 0; i < 2; i++) h.one(alice, limit(ETH, 'buy', 20_000 - i * 10, 1));
  const best = h.account(alice)!;
  const bestId = [...h.ex.state.marketByName.get(BTC)!.book.ownerOrders(best.index)].find(
    (o) => o.priceTicks === 500_000,
  )!.orderId;
  const { view, feed } = viewOver(h);
  const walk = OrderBook.prototype.ownerOrders;
  let walks = 0;
  OrderBook.prototype.ownerOrders = function (owner: number) {
    walks++;
    return walk.call(this, owner);
  };
  try {
    const txs = [h.tx(bob, limit(BTC, 'sell', 500_000, 1))];
    const update = feed(h.block(txs), undefined, txs);
    const hers = update.accounts.find((a) => a.address === formatAddress(alice.address))!;
    assert.deepEqual(
      hers.orders.map((o) => [o.orderId, o.status, o.priceTicks, o.remainingLots]),
      [[bestId, 'open', 500_000, 1]],
    );
    // An account resting openOrdersMax orders in every market must not cost them all per block.
    assert.equal(walks, 0);
  } finally {
    OrderBook.prototype.ownerOrders = walk;
    view.close();
  }
});

test('an account view cut at a market or subaccount boundary says so; one that ends exactly at the cap does not', () => {
  const BTC = 'BTC-PERPETUAL';
  const alice = key('view-cap-boundary');
  const h = new Harness();
  // The faucet's cap is per address: half of it in each subaccount.
  h.fund(alice, 500_000n * USDC);
  h.fund(alice, 500_000n * USDC, 1);
  for (let i = 0; i < 3; i++) h.one(alice, limit(BTC, 'buy', 400_000 - i * 100, 1));
  h.one(alice, limit(BTC, 'buy', 390_000, 1), { subaccount: 1 });
  const address = formatAddress(h.account(alice)!.address);
  const listed = (max: number, subaccount?: number) => {
    const { view } = viewOver(h, undefined, undefined, undefined, max);
    try {
      const a = view.read().account(address, subaccount)!;
      return [a.subaccounts.map((s) => s.openOrders.length), a.openOrdersTruncated ?? false];
    } finally {
      view.close();
    }
  };
  // Subaccount 0's three fill the cap; subaccount 1's order is left out.
  assert.deepEqual(listed(3), [[3, 0], true]);
  assert.deepEqual(listed(4), [[3, 1], false]);
  assert.deepEqual(listed(0), [[0, 0], true]);
  // Asked alone, subaccount 1 has the cap to itself.
  assert.deepEqual(listed(1, 1), [[1], false]);
  assert.deepEqual(listed(3, 0), [[3], false]);
});

test("a block's evidence names the offender in the set of the vote's height, not today's", () => {
  const h = new Harness();
  const members = (vs: typeof VALIDATORS) =>
    ValidatorSet.fromUpdates(vs.map((v) => ({ publicKey: v.publicKey, power: 1_000_000 })));
  const then = members(VALIDATORS);
  const gone = toHex(then.validators[1]!.publicKey);
  const now = members(VALIDATORS.filter((v) => toHex(v.publicKey) !== gone));
  const { view, feed } = viewOver(h, now, undefined, undefined, undefined, (height) =>
    height <= 1 ? then : now,
  );
  try {
    feed(h.block([]));
    const vote = (height: number, validatorIndex: number) => ({
      type: VOTE_TYPE.prevote,
      height,
      round: 0,
      blockHash: null,
      validatorIndex,
      timestampMs: 0,
      extension: new Uint8Array(0),
      signature: new Uint8Array(64),
    });
    // Index 2 at height 1 is then's third member; at height 2 it is now's third (then's fourth).
    const evidence = [1, 2].map((height) => ({ voteA: vote(height, 2), voteB: vote(height, 2) }));
    const update = feed(h.block([]), undefined, [], evidence);
    assert.deepEqual(
      update.block.evidence!.map((e) => [e.height, e.validator]),
      [
        [1, formatAddress(then.validators[2]!.address)],
        [2, formatAddress(now.validators[2]!.address)],
      ],
    );
    assert.notEqual(then.validators[2]!.address, now.validators[2]!.address);
  } finally {
    view.close();
  }
});

test('orders waiting in a call auction are open orders: in the account view (within its cap) and in the block updates', () => {
  const BTC = 'BTC-PERPETUAL';
  const { h, taker, alice } = auctionReady('view-wait');
  h.one(alice, limit(BTC, 'buy', 400_000, 1));
  const aliceAddress = formatAddress(alice.address);
  const { view, feed } = viewOver(h);
  const capped = (max: number) => viewOver(h, undefined, undefined, undefined, max);
  try {
    const start = [h.tx(taker, limit(BTC, 'buy', 535_000, 2))];
    const started = feed(h.block(start), undefined, start);
    const market = h.ex.state.marketByName.get(BTC)!;
    assert.ok(market.auction!.active);
    // The taker's remainder waits in the auction: open, not filled.
    const waiting = started.accounts.find((a) => a.address === formatAddress(taker.address))!;
    assert.deepEqual(
      waiting.orders.map((o) => [o.status, o.side, o.priceTicks, o.remainingLots, o.auction]),
      [['open', 'buy', 535_000, 2, true]],
    );

    const placed = [h.tx(alice, limit(BTC, 'buy', 532_000, 1))];
    const update = feed(h.block(placed), undefined, placed);
    const id = update.txs[0]!.actions![0]!.orderId!;
    const hers = update.accounts.find((a) => a.address === aliceAddress)!;
    assert.deepEqual(
      hers.orders.map((o) => [o.orderId, o.status, o.remainingLots, o.filledLots, o.auction]),
      [[id, 'open', 1, 0, true]],
    );
    const listed = view.read().account(aliceAddress)!;
    assert.deepEqual(
      listed.subaccounts[0]!.openOrders.map((o) => [o.priceTicks, o.remainingLots, o.auction]),
      [
        [400_000, 1, undefined],
        [532_000, 1, true],
      ],
    );
    assert.equal(listed.openOrdersTruncated, undefined);
    // The cap counts them: one view stops after the book's order and says so.
    for (const [max, lengths, truncated] of [
      [1, [1], true],
      [2, [2], undefined],
    ] as const) {
      const small = capped(max);
      try {
        const a = small.view.read().account(aliceAddress)!;
        assert.deepEqual(
          [a.subaccounts.map((s) => s.openOrders.length), a.openOrdersTruncated],
          [lengths, truncated],
        );
      } finally {
        small.view.close();
      }
    }

    // After the uncross what is left rests in the book, no longer in the auction.
    const endMs = market.auction!.monitor.auctionEndMs;
    feed(h.block([], endMs - h.timeMs));
    assert.ok(!market.auction!.active);
    const after = view.read().account(formatAddress(taker.address))!;
    assert.ok(after.subaccounts[0]!.openOrders.every((o) => o.auction === undefined));
  } finally {
    view.close();
  }
});

test("a block's account update shows a partly filled maker order at its size placed, with all it filled and that block's fills of it", () => {
  const BTC = 'BTC-PERPETUAL';
  const [maker, bob, carol] = [
    key('view-part-maker'),
    key('view-part-bob'),
    key('view-part-carol'),
  ];
  const h = new Harness();
  for (const k of [maker, bob, carol]) h.fund(k, 1_000_000n * USDC);
  const placed = h.one(maker, limit(BTC, 'sell', 500_000, 5)).actions[0]!;
  assert.ok(placed.ok && placed.order !== undefined);
  const id = placed.order.orderId;
  const { view, feed } = viewOver(h);
  try {
    const txs = [
      h.tx(bob, limit(BTC, 'buy', 500_000, 1, { timeInForce: 'IOC' })),
      h.tx(carol, limit(BTC, 'buy', 500_000, 2, { timeInForce: 'IOC' })),
    ];
    const update = feed(h.block(txs), undefined, txs);
    const its = update.accounts.find((a) => a.address === formatAddress(maker.address))!;
    assert.deepEqual(
      its.fills.map((f) => [f.orderId, f.sizeLots, f.liquidity]),
      [
        [id, 1, 'maker'],
        [id, 2, 'maker'],
      ],
    );
    assert.deepEqual(
      its.orders.map((o) => [o.orderId, o.status, o.sizeLots, o.filledLots, o.remainingLots]),
      [[id, 'open', 5, 3, 2]],
    );
    // Filled out in the next block: all 5 filled, nothing left; the fills are that block's.
    const rest = [h.tx(bob, limit(BTC, 'buy', 500_000, 2, { timeInForce: 'IOC' }))];
    const last = feed(h.block(rest), undefined, rest);
    const gone = last.accounts.find((a) => a.address === formatAddress(maker.address))!;
    assert.deepEqual(
      gone.orders.map((o) => [o.orderId, o.status, o.sizeLots, o.filledLots, o.remainingLots]),
      [[id, 'filled', 5, 5, 0]],
    );
    assert.deepEqual(
      gone.fills.map((f) => [f.orderId, f.sizeLots]),
      [[id, 2]],
    );
  } finally {
    view.close();
  }
});

test("an order the uncross part fills and a cancel then removes reads cancelled in that block's update", () => {
  const BTC = 'BTC-PERPETUAL';
  const { h, taker, alice } = auctionReady('view-uncross');
  const aliceAddress = formatAddress(alice.address);
  const { view, feed } = viewOver(h);
  try {
    const start = [h.tx(taker, limit(BTC, 'buy', 535_000, 2))];
    feed(h.block(start), undefined, start);
    const market = h.ex.state.marketByName.get(BTC)!;
    assert.ok(market.auction!.active);
    const waits = h.one(alice, limit(BTC, 'buy', 532_000, 5)).actions[0]!;
    assert.ok(waits.ok && waits.order !== undefined);
    const id = waits.order.orderId;
    // The uncross (before the block's transactions) fills 1 of alice's 5; her cancel then removes the 4 left.
    const endMs = market.auction!.monitor.auctionEndMs;
    const cancel = [h.tx(alice, { kind: 'cancel', instrument: BTC, orderId: id })];
    const r = h.block(cancel, endMs - h.timeMs);
    assert.ok(!market.auction!.active);
    assert.ok(r.results[0]!.ok && r.results[0]!.actions[0]!.ok, JSON.stringify(r.results[0]));
    const update = feed(r, undefined, cancel);
    const hers = update.accounts.find((a) => a.address === aliceAddress)!;
    assert.deepEqual(
      hers.fills.map((f) => [f.orderId, f.sizeLots, f.liquidity]),
      [[id, 1, 'auction']],
    );
    assert.deepEqual(
      hers.orders.map((o) => [o.orderId, o.status, o.sizeLots, o.filledLots, o.remainingLots]),
      [[id, 'cancelled', 1, 1, 0]],
    );
  } finally {
    view.close();
  }
});

test('an order the block placed and self-trade prevention then removed reads cancelled, at the size placed', () => {
  const BTC = 'BTC-PERPETUAL';
  const [alice, bob] = [key('view-stp-alice'), key('view-stp-bob')];
  const h = new Harness();
  for (const k of [alice, bob]) h.fund(k, 1_000_000n * USDC);
  const aliceAddress = formatAddress(alice.address);
  const { view, feed } = viewOver(h);
  try {
    // Alice rests 3, bob takes 1 of them, alice's own buy then meets the 2 left.
    const txs = [
      h.tx(alice, limit(BTC, 'sell', 500_000, 3)),
      h.tx(bob, limit(BTC, 'buy', 500_000, 1, { timeInForce: 'IOC' })),
      h.tx(alice, limit(BTC, 'sell', 501_000, 2)),
      h.tx(alice, limit(BTC, 'buy', 500_000, 1, { timeInForce: 'IOC' })),
    ];
    const r = h.block(txs);
    const ids = r.results.map((x) =>
      x.ok && x.actions[0]!.ok ? x.actions[0]!.order?.orderId : undefined,
    );
    const update = feed(r, undefined, txs);
    const hers = update.accounts.find((a) => a.address === aliceAddress)!;
    const market = h.ex.state.marketByName.get(BTC)!;
    assert.equal(market.book.order(ids[0]!), undefined);
    const row = (id: number | undefined) => {
      const o = hers.orders.find((x) => x.orderId === id)!;
      return [o.status, o.sizeLots, o.filledLots, o.remainingLots];
    };
    assert.deepEqual(row(ids[0]), ['cancelled', 3, 1, 0]);
    // Its other order, untouched, still rests.
    assert.deepEqual(row(ids[2]), ['open', 2, 0, 2]);
  } finally {
    view.close();
  }
});

/** The rows of an account update's orders that tell their outcome. */
function orderRows(update: BlockUpdate, k: ReturnType<typeof key>, subaccount = 0) {
  const its = update.accounts.find(
    (a) => a.address === formatAddress(k.address) && a.subaccount === subaccount,
  );
  assert.ok(its !== undefined, 'the account has an update');
  return its.orders.map((o) => [
    o.orderId,
    o.status,
    o.side,
    o.priceTicks,
    o.sizeLots,
    o.filledLots,
    o.remainingLots,
  ]);
}

/** The order id a place action's result names. */
function placedId(r: BlockResult, i = 0): number {
  const action = r.results[i]!.actions[0]!;
  assert.ok(action.ok && action.order !== undefined, action.ok ? 'no order' : action.message);
  return action.order.orderId;
}

/**
 * o/0 long 1 BTC at $50,000 on $2,600 (as test/exchange/fill_guard.test.ts),
 * asking its BTC at $46,000: a fill of the whole ask would take its equity
 * below zero, a tenth of it would not. o/1 and c are rich. No price monitoring.
 */
function guardReady(prefix: string) {
  const ONE_BTC = 10_000;
  const markets = genesis().markets.map((m) => ({ ...m, triggers: [] }));
  const h = new Harness(genesis({ markets }));
  const [o, c] = [key(`${prefix}-owner`), key(`${prefix}-c`)];
  h.fund(o, 2_600n * USDC, 0);
  h.fund(o, 500_000n * USDC, 1);
  h.fund(c, 500_000n * USDC);
  h.one(c, limit('BTC-PERPETUAL', 'sell', 500_000, ONE_BTC));
  h.one(o, limit('BTC-PERPETUAL', 'buy', 500_000, ONE_BTC));
  const ask = placedId(h.block([h.tx(o, limit('BTC-PERPETUAL', 'sell', 460_000, ONE_BTC))]));
  return { h, o, c, ask, ONE_BTC };
}

test('a maker order of an earlier block that the fill guard cancels after a part fill reads cancelled, with that fill', () => {
  const BTC = 'BTC-PERPETUAL';
  const { h, o, c, ask, ONE_BTC } = guardReady('view-guard-part');
  const { view, feed } = viewOver(h);
  try {
    // A tenth of the ask fills; the rest would take o/0 below zero and is cancelled.
    const txs = [
      h.tx(c, limit(BTC, 'buy', 460_000, ONE_BTC / 10, { timeInForce: 'IOC' })),
      h.tx(o, limit(BTC, 'buy', 460_000, ONE_BTC, { timeInForce: 'IOC' }), { subaccount: 1 }),
    ];
    const r = h.block(txs);
    assert.deepEqual(
      r.events.filter((e) => e.type === 'makerCancelled').map((e) => e.type),
      ['makerCancelled'],
    );
    const update = feed(r, undefined, txs);
    assert.deepEqual(orderRows(update, o), [
      [ask, 'cancelled', 'sell', 460_000, ONE_BTC, ONE_BTC / 10, 0],
    ]);
  } finally {
    view.close();
  }
});

test('an order the fill guard cancels without filling any of it is listed cancelled, at its side and limit', () => {
  const BTC = 'BTC-PERPETUAL';
  const { h, o, c, ask, ONE_BTC } = guardReady('view-guard-none');
  const { view, feed } = viewOver(h);
  try {
    feed(h.block([]));
    const txs = [
      h.tx(c, limit(BTC, 'sell', 465_000, ONE_BTC)),
      h.tx(o, limit(BTC, 'buy', 470_000, ONE_BTC, { timeInForce: 'IOC' }), { subaccount: 1 }),
    ];
    const update = feed(h.block(txs), undefined, txs);
    assert.equal(h.ex.state.orders.has(ask), false);
    assert.deepEqual(orderRows(update, o), [[ask, 'cancelled', 'sell', 460_000, ONE_BTC, 0, 0]]);
  } finally {
    view.close();
  }
});

test('self-trade prevention removing an order of an earlier block reads cancelled, after a part fill or none', () => {
  const BTC = 'BTC-PERPETUAL';
  const [alice, bob] = [key('view-stp-old-alice'), key('view-stp-old-bob')];
  const h = new Harness();
  for (const k of [alice, bob]) h.fund(k, 1_000_000n * USDC);
  const first = placedId(h.block([h.tx(alice, limit(BTC, 'sell', 500_000, 3))]));
  const { view, feed } = viewOver(h);
  try {
    // Bob takes 1 of the 3, alice's own buy then meets the 2 left: they are removed.
    const txs = [
      h.tx(bob, limit(BTC, 'buy', 500_000, 1, { timeInForce: 'IOC' })),
      h.tx(alice, limit(BTC, 'buy', 500_000, 1, { timeInForce: 'IOC' })),
    ];
    const r = h.block(txs);
    const update = feed(r, undefined, txs);
    assert.equal(h.ex.state.orders.has(first), false);
    const rows = orderRows(update, alice);
    assert.deepEqual(
      rows.find((x) => x[0] === first),
      [first, 'cancelled', 'sell', 500_000, 3, 1, 0],
    );
    // Without any fill in the block: listed, cancelled.
    const place = [h.tx(alice, limit(BTC, 'sell', 501_000, 2))];
    const placed = h.block(place);
    const second = placedId(placed);
    feed(placed, undefined, place);
    const own = [h.tx(alice, limit(BTC, 'buy', 501_000, 1, { timeInForce: 'IOC' }))];
    const removed = feed(h.block(own), undefined, own);
    assert.equal(h.ex.state.orders.has(second), false);
    assert.deepEqual(
      orderRows(removed, alice).find((x) => x[0] === second),
      [second, 'cancelled', 'sell', 501_000, 2, 0, 0],
    );
  } finally {
    view.close();
  }
});

test('an order the uncross fills out shows its limit as its price; its fill, the uncross price', () => {
  const BTC = 'BTC-PERPETUAL';
  const { h, taker, alice } = auctionReady('view-uncross-limit');
  const { view, feed } = viewOver(h);
  try {
    const start = [h.tx(taker, limit(BTC, 'buy', 535_000, 2))];
    feed(h.block(start), undefined, start);
    const market = h.ex.state.marketByName.get(BTC)!;
    const waits = [h.tx(alice, limit(BTC, 'buy', 532_000, 1))];
    const placed = h.block(waits);
    const id = placedId(placed);
    feed(placed, undefined, waits);
    const ended = feed(h.block([], market.auction!.monitor.auctionEndMs - h.timeMs));
    assert.equal(h.ex.state.orders.has(id), false);
    const hers = ended.accounts.find((a) => a.address === formatAddress(alice.address))!;
    assert.deepEqual(
      hers.fills.map((f) => [f.orderId, f.priceTicks, f.sizeLots]),
      [[id, 530_000, 1]],
    );
    assert.deepEqual(orderRows(ended, alice), [[id, 'filled', 'buy', 532_000, 1, 1, 0]]);
  } finally {
    view.close();
  }
});

test('an order filled out in continuous trading shows its limit as its price, taker and maker', () => {
  const BTC = 'BTC-PERPETUAL';
  const [maker, taker] = [key('view-limit-maker'), key('view-limit-taker')];
  const h = new Harness();
  for (const k of [maker, taker]) h.fund(k, 1_000_000n * USDC);
  const ask = placedId(h.block([h.tx(maker, limit(BTC, 'sell', 500_000, 2))]));
  const { view, feed } = viewOver(h);
  try {
    const txs = [h.tx(taker, limit(BTC, 'buy', 502_000, 2, { timeInForce: 'IOC' }))];
    const r = h.block(txs);
    const bid = placedId(r);
    const update = feed(r, undefined, txs);
    assert.deepEqual(orderRows(update, taker), [[bid, 'filled', 'buy', 502_000, 2, 2, 0]]);
    assert.deepEqual(orderRows(update, maker), [[ask, 'filled', 'sell', 500_000, 2, 2, 0]]);
  } finally {
    view.close();
  }
});

test('an order that expires, or that a cancelAll removes, reads cancelled at its side and limit', () => {
  const BTC = 'BTC-PERPETUAL';
  const alice = key('view-gone-alice');
  const h = new Harness();
  h.fund(alice, 1_000_000n * USDC);
  const { view, feed } = viewOver(h);
  try {
    const place = [
      h.tx(alice, limit(BTC, 'sell', 501_000, 2, { goodTilMs: h.timeMs + 1_500 })),
      h.tx(alice, limit(BTC, 'sell', 502_000, 3)),
    ];
    const placed = h.block(place);
    const [expiring, resting] = [placedId(placed, 0), placedId(placed, 1)];
    feed(placed, undefined, place);
    const expired = feed(h.block([]));
    assert.equal(h.ex.state.orders.has(expiring), false);
    assert.deepEqual(orderRows(expired, alice), [
      [expiring, 'cancelled', 'sell', 501_000, 2, 0, 0],
    ]);
    const txs = [h.tx(alice, { kind: 'cancelAll', instrument: BTC })];
    const update = feed(h.block(txs), undefined, txs);
    assert.deepEqual(orderRows(update, alice), [[resting, 'cancelled', 'sell', 502_000, 3, 0, 0]]);
  } finally {
    view.close();
  }
});

test('orders a liquidation cancels without closing anything (its market halted) read cancelled in that block', () => {
  const [BTC, ETH, ONE_BTC] = ['BTC-PERPETUAL', 'ETH-PERPETUAL', 10_000];
  const markets = genesis().markets.map((m) => ({ ...m, triggers: [] }));
  const h = new Harness(genesis({ markets }));
  const [o, c] = [key('view-liq-halted-owner'), key('view-liq-halted-c')];
  h.fund(o, 2_600n * USDC);
  h.fund(c, 500_000n * USDC);
  h.one(c, limit(BTC, 'sell', 500_000, ONE_BTC));
  h.one(o, limit(BTC, 'buy', 500_000, ONE_BTC));
  const placed = h.block([
    h.tx(o, limit(BTC, 'buy', 400_000, 1)),
    h.tx(o, limit(ETH, 'buy', 20_000, 2)),
  ]);
  const [bid, ethBid] = [placedId(placed, 0), placedId(placed, 1)];
  const proposal = { kind: 'haltMarket', instrument: BTC } as const;
  h.one(VALIDATORS[0]!, { kind: 'govPropose', proposalId: 1, proposal });
  for (const v of [1, 2]) h.one(VALIDATORS[v]!, { kind: 'govVote', proposalId: 1, approve: true });
  assert.equal(h.ex.state.marketByName.get(BTC)!.halted, true);
  const { view, feed } = viewOver(h);
  try {
    // The index falls: o is below maintenance, its orders go, its position stays.
    h.oracle = { ...h.oracle, BTC: 47_700n * USDC };
    const r = h.block([]);
    assert.deepEqual(
      r.events.filter((e) => e.type.startsWith('liquidation')).map((e) => e.type),
      ['liquidationCancels'],
    );
    assert.equal(h.account(o)!.positions[0]!.sizeLots, ONE_BTC);
    const update = feed(r);
    assert.deepEqual(orderRows(update, o), [
      [bid, 'cancelled', 'buy', 400_000, 1, 0, 0],
      [ethBid, 'cancelled', 'buy', 20_000, 2, 0, 0],
    ]);
    // The block and the risk page say so too.
    const published = { type: 'liquidationCancels', address: formatAddress(o.address), orders: 2 };
    const pick = (e: { type: string; address?: string; orders?: number }) => ({
      type: e.type,
      address: e.address,
      orders: e.orders,
    });
    assert.deepEqual(
      (update.block.events ?? []).filter((e) => e.type === 'liquidationCancels').map(pick),
      [published],
    );
    assert.deepEqual(
      view.read().risk!()
        .events.filter((e) => e.type === 'liquidationCancels')
        .map(pick),
      [published],
    );
  } finally {
    view.close();
  }
});

test('a liquidation closed by deleveraging changes both accounts: each gets its block update, as its view reads, listing the closed position with what it realized', () => {
  const [BTC, ONE_BTC] = ['BTC-PERPETUAL', 10_000];
  const markets = genesis().markets.map((m) => ({ ...m, triggers: [] }));
  const h = new Harness(genesis({ markets }));
  const [a, b] = [key('view-adl-a'), key('view-adl-b')];
  h.fund(a, 2_600n * USDC);
  h.fund(b, 500_000n * USDC);
  h.one(b, limit(BTC, 'sell', 500_000, ONE_BTC));
  h.one(a, limit(BTC, 'buy', 500_000, ONE_BTC));
  const { view, feed } = viewOver(h);
  try {
    // The index falls past a's equity, with no bid in the book: its whole
    // position is deleveraged against b, and the fund (empty) covers nothing.
    h.oracle = { ...h.oracle, BTC: 47_000n * USDC };
    const r = h.block([]);
    const adl = r.events.filter((e) => e.type === 'deleverage');
    assert.deepEqual(
      adl.map((e) => e.type === 'deleverage' && [e.account, e.counterparty, e.sizeLots]),
      [[h.account(a)!.index, h.account(b)!.index, ONE_BTC]],
    );
    assert.equal(h.account(b)!.positionCount, 0, 'b was closed');
    const update = feed(r);
    // What the account channel sends must keep its subscriber's account as GET shows it.
    for (const k of [a, b]) {
      const address = formatAddress(k.address);
      const sent = update.accounts.find((u) => u.address === address && u.subaccount === 0);
      assert.ok(sent !== undefined, `${address} gets an update for the block that closed it`);
      const now = view.read().account(address)!.subaccounts[0]!;
      assert.deepEqual(now.positions, [], 'GET lists only what is held');
      assert.deepEqual(
        sent.positions.filter((p) => p.sizeLots !== 0),
        now.positions,
      );
      // The update lists the deleveraged position once more, closed, with what it realized.
      const record = exchangePositionOf(h.account(k)!, h.ex.state.marketByName.get(BTC)!)!;
      assert.notEqual(record.realizedPnlQuote, 0n);
      assert.deepEqual(
        sent.positions,
        [
          {
            instrument: BTC,
            sizeLots: 0,
            entryPriceTicks: 500_000,
            unrealizedPnlQuote: '0',
            realizedPnlQuote: String(record.realizedPnlQuote),
            fundingQuote: String(record.fundingQuote),
          },
        ],
        'the closing row',
      );
      assert.equal(sent.cashQuote, now.cashQuote);
      assert.equal(sent.equityQuote, now.equityQuote);
    }
  } finally {
    view.close();
  }
});

test("a liquidation's fills carry its block's time, the liquidated taker's and the maker's alike", () => {
  const [BTC, ONE_BTC] = ['BTC-PERPETUAL', 10_000];
  const h = new Harness();
  const [a, b, c] = [key('view-liq-time-a'), key('view-liq-time-b'), key('view-liq-time-c')];
  h.fund(a, 2_600n * USDC);
  h.fund(b, 500_000n * USDC);
  h.fund(c, 500_000n * USDC);
  h.one(b, limit(BTC, 'sell', 500_000, ONE_BTC));
  h.one(a, limit(BTC, 'buy', 500_000, ONE_BTC));
  h.one(c, limit(BTC, 'buy', 480_000, ONE_BTC));
  const { view, feed } = viewOver(h);
  try {
    // At $48,800 a is under maintenance: its liquidation sells into c's bid.
    h.oracle = { ...h.oracle, BTC: 48_800n * USDC };
    const r = h.block([], 2_345);
    assert.ok(
      r.events.some((e) => e.type === 'liquidationFill'),
      'a liquidation fill',
    );
    const update = feed(r);
    const fillsOf = (k: ReturnType<typeof key>) =>
      update.accounts.filter((u) => u.address === formatAddress(k.address)).flatMap((u) => u.fills);
    assert.deepEqual(
      [a, c].map((k) => fillsOf(k).map((f) => [f.liquidity, f.sizeLots, f.height, f.timeMs])),
      [
        [['taker', ONE_BTC, update.height, h.timeMs]],
        [['maker', ONE_BTC, update.height, h.timeMs]],
      ],
    );
    const trade = update.trades.find((t) => t.liquidation === true);
    assert.equal(trade?.timeMs, h.timeMs, 'as its trade');
  } finally {
    view.close();
  }
});

test("a transfer's two subaccounts and a credited deposit's account each get their block update", () => {
  const h = new Harness();
  const t = key('view-transfer-owner');
  h.fund(t, 1_000n * USDC);
  h.fund(t, 1_000n * USDC, 2);
  const { view, feed } = viewOver(h);
  const address = formatAddress(t.address);
  const sentOf = (update: BlockUpdate) =>
    update.accounts
      .filter((u) => u.address === address)
      .map((u) => [u.subaccount, u.cashQuote])
      .sort();
  try {
    // From subaccount 2 into a new subaccount 5, signed from subaccount 9, which holds nothing.
    const move = h.tx(
      t,
      { kind: 'transfer', fromSubaccount: 2, toSubaccount: 5, amountQuote: USDC },
      { subaccount: 9 },
    );
    const moved = feed(h.block([move]), undefined, [move]);
    const cash = (n: number) => view.read().account(address, n)!.subaccounts[0]!.cashQuote;
    assert.deepEqual(sentOf(moved), [
      [2, cash(2)],
      [5, cash(5)],
    ]);
    assert.equal(cash(5), '1000000');
    // A deposit into subaccount 3, credited by the validators' attestations.
    const depositId = new Uint8Array(32).fill(3);
    const attest = {
      kind: 'attestDeposit',
      depositId,
      account: t.address,
      subaccount: 3,
      amountQuote: 7n * USDC,
    } as const;
    const txs = [0, 1, 2].map((v) => h.tx(VALIDATORS[v]!, attest));
    const r = h.block(txs);
    assert.ok(r.events.some((e) => e.type === 'depositCredited'));
    assert.deepEqual(sentOf(feed(r, undefined, txs)), [[3, '7000000']]);
  } finally {
    view.close();
  }
});

test("a market's settlement lists its resting orders cancelled in their owners' updates", () => {
  const FUTURE = 'BTC-2MAR26';
  const h = new Harness(btcDailyGenesis());
  const [alice, bob, carol] = [
    key('view-settle-rest-a'),
    key('view-settle-rest-b'),
    key('view-settle-rest-c'),
  ];
  for (const k of [alice, bob, carol]) h.fund(k, 100_000n * USDC);
  const f = h.ex.state.marketByName.get(FUTURE)!.markTicks;
  h.one(alice, limit(FUTURE, 'buy', f, 3));
  // Bob takes 1 of alice's 3 and asks more; carol, without a position, only bids.
  h.one(bob, limit(FUTURE, 'sell', f, 1));
  const asked = placedId(h.block([h.tx(bob, limit(FUTURE, 'sell', f + 50, 2))]));
  const bid = placedId(h.block([h.tx(carol, limit(FUTURE, 'buy', f - 50, 4))]));
  const left = [...h.ex.state.orders.keys()].find(
    (id) => id !== asked && id !== bid && h.ex.state.orders.get(id)!.account === h.account(alice),
  )!;
  const { view, feed } = viewOver(h);
  try {
    let settled: BlockUpdate | undefined;
    for (let i = 0; i < 12 && settled === undefined; i++) {
      const next: BlockUpdate = feed(h.block([], 60 * 60_000));
      if (next.block.events?.some((e) => e.type === 'marketSettled' && e.instrument === FUTURE))
        settled = next;
    }
    assert.ok(settled !== undefined, 'the future settled');
    assert.equal(h.ex.state.orders.size, 0);
    // Each at its size placed, alice's with the 1 bob took of its 3.
    assert.deepEqual(orderRows(settled, alice), [[left, 'cancelled', 'buy', f, 3, 1, 0]]);
    assert.deepEqual(orderRows(settled, bob), [[asked, 'cancelled', 'sell', f + 50, 2, 0, 0]]);
    assert.deepEqual(orderRows(settled, carol), [[bid, 'cancelled', 'buy', f - 50, 4, 0, 0]]);
    // Gone from the copy too: alice's next action lists nothing of that market.
    const txs = [h.tx(alice, { kind: 'cancelAll' })];
    const after = feed(h.block(txs), undefined, txs);
    assert.deepEqual(orderRows(after, alice), []);
  } finally {
    view.close();
  }
});

test('an order amended in the block and then removed is judged against the size it was amended to', () => {
  const BTC = 'BTC-PERPETUAL';
  const [alice, bob] = [key('view-amend-gone-alice'), key('view-amend-gone-bob')];
  const h = new Harness();
  for (const k of [alice, bob]) h.fund(k, 1_000_000n * USDC);
  const placed = h.block([
    h.tx(alice, limit(BTC, 'sell', 500_000, 5)),
    h.tx(alice, limit(BTC, 'sell', 501_000, 2)),
  ]);
  const [down, up] = [placedId(placed, 0), placedId(placed, 1)];
  const { view, feed } = viewOver(h);
  try {
    // Down from 5 to 2, then bob takes those 2: filled out.
    const fill = [
      h.tx(alice, { kind: 'amend', instrument: BTC, orderId: down, sizeLots: 2 }),
      h.tx(bob, limit(BTC, 'buy', 500_000, 2, { timeInForce: 'IOC' })),
    ];
    const filled = feed(h.block(fill), undefined, fill);
    assert.equal(h.ex.state.orders.has(down), false);
    assert.deepEqual(orderRows(filled, alice), [[down, 'filled', 'sell', 500_000, 2, 2, 0]]);
    // Up from 2 to 4, bob takes 3, alice's own buy then meets the 1 left: cancelled.
    const cancel = [
      h.tx(alice, { kind: 'amend', instrument: BTC, orderId: up, sizeLots: 4 }),
      h.tx(bob, limit(BTC, 'buy', 501_000, 3, { timeInForce: 'IOC' })),
      h.tx(alice, limit(BTC, 'buy', 501_000, 1, { timeInForce: 'IOC' })),
    ];
    const cancelled = feed(h.block(cancel), undefined, cancel);
    assert.equal(h.ex.state.orders.has(up), false);
    assert.deepEqual(
      orderRows(cancelled, alice).find((x) => x[0] === up),
      [up, 'cancelled', 'sell', 501_000, 4, 3, 0],
    );
  } finally {
    view.close();
  }
});

test('an amend that self-trade prevention cancels after a fill reads cancelled at the size it was amended to', () => {
  const BTC = 'BTC-PERPETUAL';
  const [alice, bob] = [key('view-amend-stp-alice'), key('view-amend-stp-bob')];
  const h = new Harness();
  for (const k of [alice, bob]) h.fund(k, 1_000_000n * USDC);
  const placed = h.block([
    h.tx(alice, limit(BTC, 'sell', 501_000, 5, { stp: 'cancelIncoming' })),
    h.tx(alice, limit(BTC, 'buy', 499_000, 1)),
    h.tx(bob, limit(BTC, 'buy', 500_000, 1)),
  ]);
  const ask = placedId(placed, 0);
  const { view, feed } = viewOver(h);
  try {
    // Amended to 4 at 499,000: takes bob's 1, then meets alice's own bid and
    // self-trade prevention cancels the incoming 3.
    const txs = [
      h.tx(alice, {
        kind: 'amend',
        instrument: BTC,
        orderId: ask,
        priceTicks: 499_000,
        sizeLots: 4,
      }),
    ];
    const r = h.block(txs);
    const result = r.results[0]!.actions[0]!;
    assert.ok(result.ok && result.order !== undefined);
    assert.deepEqual(
      [result.order.status, result.order.filledLots, result.order.cancelledLots],
      ['cancelled', 1, 3],
    );
    const update = feed(r, undefined, txs);
    assert.equal(h.ex.state.orders.has(ask), false);
    assert.deepEqual(
      orderRows(update, alice).find((x) => x[0] === ask),
      [ask, 'cancelled', 'sell', 499_000, 4, 1, 0],
    );
  } finally {
    view.close();
  }
});

test('a reduce-only order cut to the position it closes reads filled at the size the exchange took, as its result', () => {
  const BTC = 'BTC-PERPETUAL';
  const [alice, bob] = [key('view-reduce-alice'), key('view-reduce-bob')];
  const h = new Harness();
  for (const k of [alice, bob]) h.fund(k, 1_000_000n * USDC);
  h.block([h.tx(bob, limit(BTC, 'sell', 500_000, 3)), h.tx(alice, limit(BTC, 'buy', 500_000, 3))]);
  h.one(bob, limit(BTC, 'buy', 500_000, 10));
  const { view, feed } = viewOver(h);
  try {
    // Alice is long 3: a reduce-only sell of 10 sells those 3.
    const txs = [
      h.tx(alice, limit(BTC, 'sell', 499_000, 10, { reduceOnly: true, timeInForce: 'IOC' })),
    ];
    const r = h.block(txs);
    const id = placedId(r);
    const result = r.results[0]!.actions[0]!;
    assert.ok(result.ok && result.order !== undefined);
    assert.deepEqual(
      [result.order.status, result.order.filledLots, result.order.cancelledLots],
      ['filled', 3, 0],
    );
    const update = feed(r, undefined, txs);
    assert.deepEqual(orderRows(update, alice), [[id, 'filled', 'sell', 499_000, 3, 3, 0]]);
    const order = update.accounts.find((a) => a.address === formatAddress(alice.address))!
      .orders[0]!;
    assert.equal(order.reduceOnly, true);
  } finally {
    view.close();
  }
});

test('an order placed, part filled and amended in one block reads at the size amended to', () => {
  const BTC = 'BTC-PERPETUAL';
  const [alice, bob] = [key('view-same-block-alice'), key('view-same-block-bob')];
  const h = new Harness();
  for (const k of [alice, bob]) h.fund(k, 1_000_000n * USDC);
  const { view, feed } = viewOver(h);
  const ioc = { timeInForce: 'IOC' as const };
  try {
    // Placed at 5, 2 taken, amended to 3 (1 open), that 1 taken: filled out at 3.
    let id = h.ex.state.nextOrderId;
    const filledOut = [
      h.tx(alice, limit(BTC, 'sell', 500_000, 5)),
      h.tx(bob, limit(BTC, 'buy', 500_000, 2, ioc)),
      h.tx(alice, { kind: 'amend', instrument: BTC, orderId: id, sizeLots: 3 }),
      h.tx(bob, limit(BTC, 'buy', 500_000, 1, ioc)),
    ];
    let update = feed(h.block(filledOut), undefined, filledOut);
    assert.equal(h.ex.state.orders.has(id), false);
    assert.deepEqual(orderRows(update, alice), [[id, 'filled', 'sell', 500_000, 3, 3, 0]]);
    // Placed at 5, 2 taken, amended to 4 and cancelled in one batch: 4, of which 2 filled.
    id = h.ex.state.nextOrderId;
    const cancelled = [
      h.tx(alice, limit(BTC, 'sell', 500_000, 5)),
      h.tx(bob, limit(BTC, 'buy', 500_000, 2, ioc)),
      h.tx(alice, {
        kind: 'batch',
        actions: [
          { kind: 'amend', instrument: BTC, orderId: id, sizeLots: 4 },
          { kind: 'cancel', instrument: BTC, orderId: id },
        ],
      }),
    ];
    update = feed(h.block(cancelled), undefined, cancelled);
    assert.equal(h.ex.state.orders.has(id), false);
    assert.deepEqual(orderRows(update, alice), [[id, 'cancelled', 'sell', 500_000, 4, 2, 0]]);
  } finally {
    view.close();
  }
});

test('an order the uncross part fills and a cancelAll then removes reads cancelled, with its fill', () => {
  const BTC = 'BTC-PERPETUAL';
  const { h, taker, alice } = auctionReady('view-uncross-all');
  const { view, feed } = viewOver(h);
  try {
    const start = [h.tx(taker, limit(BTC, 'buy', 535_000, 2))];
    feed(h.block(start), undefined, start);
    const market = h.ex.state.marketByName.get(BTC)!;
    const waits = [h.tx(alice, limit(BTC, 'buy', 532_000, 5))];
    const placed = h.block(waits);
    const id = placedId(placed);
    feed(placed, undefined, waits);
    // The uncross (before the block's transactions) fills 1 of the 5; the cancelAll removes the 4 left.
    const all = [h.tx(alice, { kind: 'cancelAll', instrument: BTC })];
    const r = h.block(all, market.auction!.monitor.auctionEndMs - h.timeMs);
    assert.ok(!market.auction!.active);
    assert.ok(r.results[0]!.ok && r.results[0]!.actions[0]!.ok, JSON.stringify(r.results[0]));
    const update = feed(r, undefined, all);
    assert.equal(h.ex.state.orders.has(id), false);
    const hers = update.accounts.find((a) => a.address === formatAddress(alice.address))!;
    assert.deepEqual(
      hers.fills.map((f) => [f.orderId, f.sizeLots, f.liquidity]),
      [[id, 1, 'auction']],
    );
    assert.deepEqual(orderRows(update, alice), [[id, 'cancelled', 'buy', 532_000, 5, 1, 0]]);
  } finally {
    view.close();
  }
});

test('orders removed while no listener follows accounts are not listed later, once one does', () => {
  const BTC = 'BTC-PERPETUAL';
  const alice = key('view-rested-later-alice');
  const h = new Harness();
  h.fund(alice, 1_000_000n * USDC);
  let following = false;
  const interest: AccountInterest = { any: () => following, has: () => following };
  const { view, feed } = viewOver(h, undefined, interest);
  try {
    const place = [
      h.tx(alice, limit(BTC, 'sell', 501_000, 2)),
      h.tx(alice, limit(BTC, 'sell', 502_000, 3)),
    ];
    feed(h.block(place), undefined, place);
    // Self-trade prevention removes the first, a cancelAll the second: nobody follows accounts.
    const own = [h.tx(alice, limit(BTC, 'buy', 501_000, 1, { timeInForce: 'IOC' }))];
    assert.deepEqual(feed(h.block(own), undefined, own).accounts, []);
    const all = [h.tx(alice, { kind: 'cancelAll', instrument: BTC })];
    feed(h.block(all), undefined, all);
    assert.equal(h.ex.state.orders.size, 0);
    following = true;
    const next = [h.tx(alice, limit(BTC, 'sell', 503_000, 1))];
    const r = h.block(next);
    const update = feed(r, undefined, next);
    assert.deepEqual(orderRows(update, alice), [[placedId(r), 'open', 'sell', 503_000, 1, 0, 1]]);
  } finally {
    view.close();
  }
});

test('a sell amended into the bids and filled out is a sell: its trade, its fills and its order', () => {
  const BTC = 'BTC-PERPETUAL';
  const [maker, alice] = [key('view-amend-side-maker'), key('view-amend-side-alice')];
  const h = new Harness();
  for (const k of [maker, alice]) h.fund(k, 1_000_000n * USDC);
  h.one(maker, limit(BTC, 'buy', 500_000, 2));
  const ask = placedId(h.block([h.tx(alice, limit(BTC, 'sell', 501_000, 2))]));
  const { view, feed } = viewOver(h);
  try {
    const txs = [
      h.tx(alice, { kind: 'amend', instrument: BTC, orderId: ask, priceTicks: 500_000 }),
    ];
    const update = feed(h.block(txs), undefined, txs);
    assert.deepEqual(
      update.trades.map((t) => [t.takerSide, t.priceTicks, t.sizeLots]),
      [['sell', 500_000, 2]],
    );
    assert.deepEqual(orderRows(update, alice), [[ask, 'filled', 'sell', 500_000, 2, 2, 0]]);
    const sides = (k: ReturnType<typeof key>) =>
      update.accounts
        .find((a) => a.address === formatAddress(k.address))!
        .fills.map((f) => [f.side, f.liquidity]);
    assert.deepEqual(sides(alice), [['sell', 'taker']]);
    assert.deepEqual(sides(maker), [['buy', 'maker']]);
    // Placed and amended into the bids in one block.
    h.one(maker, limit(BTC, 'buy', 500_000, 1));
    const next = h.ex.state.nextOrderId;
    const again = [
      h.tx(alice, limit(BTC, 'sell', 501_000, 1)),
      h.tx(alice, { kind: 'amend', instrument: BTC, orderId: next, priceTicks: 500_000 }),
    ];
    const second = feed(h.block(again), undefined, again);
    assert.deepEqual(
      second.trades.map((t) => [t.takerSide, t.priceTicks, t.sizeLots]),
      [['sell', 500_000, 1]],
    );
  } finally {
    view.close();
  }
});

test("every trade the exchange counts is listed once, in its order: a block's ids run on from the count before it to the count after it", () => {
  const markets = ['BTC-PERPETUAL', 'ETH-PERPETUAL'] as const;
  const mid = { 'BTC-PERPETUAL': 500_000, 'ETH-PERPETUAL': 30_000 };
  for (let seed = 1; seed <= 10; seed++) {
    const rng = new Prng(seed);
    const h = new Harness();
    const rich = [0, 1, 2].map((i) => key(`view-count-${seed}-rich-${i}`));
    const thin = [0, 1].map((i) => key(`view-count-${seed}-thin-${i}`));
    for (const k of rich) h.fund(k, 1_000_000n * USDC);
    for (const k of thin) h.fund(k, 1_000n * USDC);
    const traders = [...rich, ...thin];
    const views = [viewOver(h)];
    const before = (name: string) => h.ex.state.marketByName.get(name)!.tradeCount;
    try {
      for (let b = 0; b < 40; b++) {
        if (b === 15) views.push(viewOver(h));
        const txs: SignedTx[] = [];
        for (let n = rng.int(5); n > 0; n--) {
          const who = traders[rng.int(traders.length)]!;
          const name = markets[rng.int(markets.length)]!;
          const priceTicks = Math.round(mid[name] * (0.96 + rng.int(81) / 1000));
          const own = [...h.ex.state.orders.values()].filter(
            (m) =>
              m.account === h.account(who) &&
              h.ex.state.markets[m.market]!.params.instrument === name,
          );
          if (own.length > 0 && rng.chance(1, 3)) {
            const orderId = own[rng.int(own.length)]!.orderId;
            txs.push(h.tx(who, { kind: 'amend', instrument: name, orderId, priceTicks }));
          } else {
            const side = rng.chance(1, 2) ? 'buy' : 'sell';
            const timeInForce = rng.chance(1, 3) ? 'IOC' : 'GTC';
            const sizeLots = 1 + rng.int(thin.includes(who) ? 3_000 : 30);
            txs.push(h.tx(who, limit(name, side, priceTicks, sizeLots, { timeInForce })));
          }
        }
        if (rng.chance(1, 5)) {
          const move = BigInt(90 + rng.int(21));
          h.oracle = { BTC: (ORACLE_BTC * move) / 100n, ETH: (ORACLE_ETH * move) / 100n };
        }
        const counts = markets.map(before);
        const r = h.block(txs, 1_000 + rng.int(20_000));
        const lists = views.map(({ feed }) => feed(r, undefined, txs).trades);
        for (const trades of lists.slice(1)) assert.deepEqual(trades, lists[0]);
        markets.forEach((name, i) => {
          const ids = lists[0]!.filter((t) => t.instrument === name).map((t) => t.tradeId);
          const want = Array.from(
            { length: before(name) - counts[i]! },
            (_, j) => counts[i]! + j + 1,
          );
          assert.deepEqual(ids, want, `seed ${seed} block ${b} ${name}`);
        });
      }
    } finally {
      for (const { view } of views) view.close();
    }
  }
});

/**
 * Random blocks of two accounts' orders, amends and cancels: every order an
 * account update lists agrees with the state's size placed (as the state
 * last held it) and with all the fills the updates listed of it, also from
 * a view started at a later height (a restarted node's).
 */
function checkSizesPlaced(
  setup: () => { h: Harness; keys: readonly ReturnType<typeof key>[] },
  PRICES: readonly number[],
  /** The time between blocks, one drawn per block. */
  dtsMs: readonly number[],
  seed: number,
): void {
  const BTC = 'BTC-PERPETUAL';
  const STPS = ['cancelResting', 'cancelIncoming', 'cancelBoth'] as const;
  const step = fc.record({
    who: fc.integer({ min: 0, max: 1 }),
    kind: fc.constantFrom(
      'gtc',
      'gtc',
      'ioc',
      'reduce',
      'amend',
      'amend',
      'amendCancel',
      'cancel',
      'cancelAll',
    ),
    side: fc.constantFrom('buy' as const, 'sell' as const),
    price: fc.integer({ min: 0, max: PRICES.length - 1 }),
    size: fc.integer({ min: 1, max: 6 }),
    stp: fc.integer({ min: 0, max: STPS.length - 1 }),
    target: fc.nat(),
    keepPrice: fc.boolean(),
    // A GTC order that good-til expiry removes a block or two later.
    goodTil: fc.boolean(),
  });
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          steps: fc.array(step, { maxLength: 8 }),
          dt: fc.integer({ min: 0, max: dtsMs.length - 1 }),
        }),
        { minLength: 1, maxLength: 6 },
      ),
      fc.nat(),
      (blocks, restartAt) => {
        const { h: first, keys } = setup();
        let h = first;
        // The size placed each order had when the state forgot it.
        const forgotten = new Map<number, number>();
        const watch = (): void => {
          const kept = h.ex.state.orders;
          const remove = kept.delete.bind(kept);
          kept.delete = (id: number) => {
            const meta = kept.get(id);
            if (meta !== undefined) forgotten.set(id, meta.placedLots);
            return remove(id);
          };
        };
        watch();
        const ids: number[][] = [[], []];
        // The size each order was placed at.
        const sizes = new Map<number, number>();
        const filled = new Map<number, number>();
        let { view, feed } = viewOver(h);
        try {
          for (const [b, { steps, dt }] of blocks.entries()) {
            // A node restarted here from a snapshot: its view starts from the restored state.
            if (b === restartAt % blocks.length) {
              view.close();
              const options = { checkInvariants: true };
              h = new Harness(genesis(), options, decodeSnapshot(encodeSnapshot(h.ex), options));
              watch();
              ({ view, feed } = viewOver(h));
            }
            const txs = steps.map((s) => {
              const k = keys[s.who]!;
              // Amends and cancels name an order resting before the block.
              const own = ids[s.who]!.filter((id) => h.ex.state.orders.has(id));
              const target = own.length === 0 ? 0 : own[s.target % own.length]!;
              const priceTicks = PRICES[s.price]!;
              switch (s.kind) {
                case 'gtc':
                case 'ioc':
                case 'reduce':
                  return h.tx(
                    k,
                    limit(BTC, s.side, priceTicks, s.size, {
                      stp: STPS[s.stp],
                      ...(s.kind !== 'gtc' ? { timeInForce: 'IOC' as const } : {}),
                      ...(s.kind === 'reduce' ? { reduceOnly: true } : {}),
                      ...(s.kind === 'gtc' && s.goodTil ? { goodTilMs: h.timeMs + 1_500 } : {}),
                    }),
                  );
                case 'amend':
                  return h.tx(k, {
                    kind: 'amend',
                    instrument: BTC,
                    orderId: target,
                    sizeLots: s.size,
                    ...(s.keepPrice ? {} : { priceTicks }),
                  });
                case 'cancel':
                  return h.tx(k, { kind: 'cancel', instrument: BTC, orderId: target });
                // In one batch, so after the block's fills before it (a lone cancel runs first).
                case 'amendCancel':
                  return h.tx(k, {
                    kind: 'batch',
                    actions: [
                      { kind: 'amend', instrument: BTC, orderId: target, sizeLots: s.size },
                      { kind: 'cancel', instrument: BTC, orderId: target },
                    ],
                  });
                default:
                  return h.tx(k, { kind: 'cancelAll', instrument: BTC });
              }
            });
            const r = h.block(txs, dtsMs[dt]);
            r.results.forEach((x, i) => {
              const a = x.ok ? x.actions[0] : undefined;
              if (a?.ok && a.kind === 'placeOrder' && a.order !== undefined) {
                ids[steps[i]!.who]!.push(a.order.orderId);
                // A reduce-only order's as the exchange cut it.
                const o = a.order;
                sizes.set(o.orderId, o.filledLots + o.restedLots + o.cancelledLots);
              }
            });
            const update = feed(r, undefined, txs);
            for (const u of update.accounts) {
              for (const f of u.fills) {
                filled.set(f.orderId, (filled.get(f.orderId) ?? 0) + f.sizeLots);
                // Made by this block (an uncross's fills too): its height and its time.
                assert.deepEqual(
                  [f.height, f.timeMs],
                  [update.height, h.timeMs],
                  JSON.stringify(f),
                );
              }
            }
            for (const u of update.accounts) {
              for (const o of u.orders) {
                const all = filled.get(o.orderId) ?? 0;
                const meta = h.ex.state.orders.get(o.orderId);
                const row = JSON.stringify(o);
                assert.equal(o.filledLots, all, row);
                if (o.status === 'open') {
                  assert.ok(meta !== undefined, row);
                  assert.equal(o.sizeLots, meta.placedLots, row);
                  assert.equal(o.sizeLots, o.filledLots + o.remainingLots, row);
                  continue;
                }
                assert.equal(o.remainingLots, 0, row);
                // One that never rested: at the size placed.
                const placed = forgotten.get(o.orderId) ?? sizes.get(o.orderId);
                assert.ok(placed !== undefined, row);
                assert.equal(o.sizeLots, placed, row);
                assert.equal(o.status, all === placed ? 'filled' : 'cancelled', row);
              }
            }
          }
        } finally {
          view.close();
        }
      },
    ),
    { numRuns: 60, seed },
  );
}

test("account updates agree with the state's size placed and every fill, whatever one block does to an order", () => {
  const keys = [key('view-placed-prop-a'), key('view-placed-prop-b')];
  const setup = () => {
    const h = new Harness();
    for (const k of keys) h.fund(k, 1_000_000n * USDC);
    return { h, keys };
  };
  checkSizesPlaced(setup, [499_000, 499_500, 500_000, 500_500, 501_000], [1_000], 9);
});

test("account updates agree with the state's size placed through call auctions: orders that trigger one, wait, are amended in it and part filled by its uncross", () => {
  const setup = () => {
    const { h, taker, alice } = auctionReady('view-placed-auction');
    return { h, keys: [taker, alice] };
  };
  // Beyond 5% of the last price (500,000) a trade starts a 30 s auction.
  const prices = [470_000, 500_000, 525_000, 530_000, 535_000];
  checkSizesPlaced(setup, prices, [1_000, 1_000, 40_000], 10);
});

test("a node started from a snapshot, with no stored block that tells a market's last trade, shows it as the running ones do", () => {
  const BTC = 'BTC-PERPETUAL';
  const [maker, taker] = [key('view-restore-last-maker'), key('view-restore-last-taker')];
  const h = new Harness();
  for (const k of [maker, taker]) h.fund(k, 1_000_000n * USDC);
  const live = viewOver(h);
  let restored: ChainView | undefined;
  try {
    const txs = [
      h.tx(maker, limit(BTC, 'sell', 501_000, 2)),
      h.tx(taker, limit(BTC, 'buy', 501_000, 2)),
    ];
    live.feed(h.block(txs), undefined, txs);
    live.feed(h.block([]));
    assert.equal(live.view.read().ticker(BTC)!.lastTradeTicks, 501_000);
    // Restored from a snapshot taken since (state sync): none of the blocks before it are stored.
    const options = { checkInvariants: true };
    const copy = new Harness(genesis(), options, decodeSnapshot(encodeSnapshot(h.ex), options));
    restored = viewOver(copy).view;
    for (const name of [BTC, 'ETH-PERPETUAL']) {
      assert.deepEqual(restored.read().ticker(name), live.view.read().ticker(name), name);
    }
  } finally {
    live.view.close();
    restored?.close();
  }
});

test('a transaction included again, refused as a replay, is still looked up as it executed, live and after a restart', () => {
  const BTC = 'BTC-PERPETUAL';
  const maker = key('view-replayed-tx');
  const h = new Harness();
  h.fund(maker, 1_000_000n * USDC);
  const chain: StoredChain = { blocks: new Map(), results: new Map() };
  const live = viewOver(h);
  let restarted: ChainView | undefined;
  const run = (txs: SignedTx[]): BlockUpdate => {
    const r = h.block(txs);
    store(chain, h, r, txs);
    return live.feed(r, undefined, txs);
  };
  try {
    const tx = h.tx(maker, limit(BTC, 'sell', 510_000, 1));
    const hash = toHex(sha256(encodeSignedTx(tx)));
    // A proposer may put the same bytes in a block twice, or again in a later block:
    // the exchange refuses every copy after the first (its nonce is used).
    const first = run([tx, tx]);
    const second = run([tx]);
    assert.deepEqual(
      [...first.txs, ...second.txs].map((t) => [t.status, t.code]),
      [
        ['committed', undefined],
        ['rejected', 'DuplicateNonce'],
        ['rejected', 'DuplicateNonce'],
      ],
    );
    const executed = { ...first.txs[0]!, hash };
    assert.deepEqual(live.view.read().tx(hash), executed);
    restarted = viewOver(h, undefined, undefined, undefined, undefined, undefined, chain).view;
    assert.deepEqual(restarted.read().tx(hash), executed);
  } finally {
    live.view.close();
    restarted?.close();
  }
});

test('a restarted node still answers for a transaction of a block before the recent ones it reads back in full', () => {
  const BTC = 'BTC-PERPETUAL';
  const maker = key('view-restart-old-tx');
  const h = new Harness();
  h.fund(maker, 1_000_000n * USDC);
  const chain: StoredChain = { blocks: new Map(), results: new Map() };
  const run = (txs: SignedTx[]): void => store(chain, h, h.block(txs), txs);
  const tx = h.tx(maker, limit(BTC, 'sell', 510_000, 1));
  run([tx]);
  const height = h.ex.state.height;
  // Enough blocks after it that it falls outside the last VIEW_BLOCKS_KEPT.
  for (let i = 0; i < VIEW_BLOCKS_KEPT + 5; i++) run([]);
  const restarted = viewOver(h, undefined, undefined, undefined, undefined, undefined, chain).view;
  try {
    const hash = toHex(sha256(encodeSignedTx(tx)));
    const found = restarted.read().tx(hash);
    assert.equal(found?.status, 'committed');
    assert.equal(found?.height, height);
  } finally {
    restarted.close();
  }
});

test('a damaged old block stops the restart reading transactions back there, not the start', () => {
  const BTC = 'BTC-PERPETUAL';
  const maker = key('view-restart-damaged');
  const h = new Harness();
  h.fund(maker, 1_000_000n * USDC);
  const chain: StoredChain = { blocks: new Map(), results: new Map() };
  const run = (txs: SignedTx[]): void => store(chain, h, h.block(txs), txs);
  const older = h.tx(maker, limit(BTC, 'sell', 510_000, 1));
  run([older]);
  run([]);
  const damagedHeight = h.ex.state.height;
  const newer = h.tx(maker, limit(BTC, 'sell', 511_000, 1));
  run([newer]);
  for (let i = 0; i < VIEW_BLOCKS_KEPT; i++) run([]);
  const blocks = chain.blocks;
  chain.blocks = new Map(blocks);
  chain.blocks.get = (height: number) => {
    if (height === damagedHeight) {
      throw new StorageError(
        'StorageCorrupt',
        'blocks.log',
        0,
        'record payload fails its checksum',
      );
    }
    return blocks.get(height);
  };
  const restarted = viewOver(h, undefined, undefined, undefined, undefined, undefined, chain).view;
  try {
    const lookup = (tx: SignedTx) => restarted.read().tx(toHex(sha256(encodeSignedTx(tx))));
    assert.equal(lookup(newer)?.status, 'committed');
    assert.equal(lookup(older), undefined);
  } finally {
    restarted.close();
  }
});

test("an option's ticker is sent again when any of its greeks moves, not only its delta", () => {
  const ticker: TickerView = {
    instrument: 'BTC-27NOV26-60000-C',
    height: 7,
    markTicks: 1_234,
    indexTicks: 1_234,
    openInterestLots: 3,
    markIv: '0.6',
    greeks: { delta: '0.5', gamma: '0.0001', vega: '25.1', theta: '-40.2' },
  };
  assert.equal(sameTicker(ticker, { ...ticker }), true, 'the same ticker');
  for (const greek of ['delta', 'gamma', 'vega', 'theta'] as const) {
    const moved = { ...ticker, greeks: { ...ticker.greeks!, [greek]: '1.5' } };
    assert.equal(sameTicker(ticker, moved), false, `${greek} moved`);
  }
});

test('an amend to no more than an order filled in earlier blocks reads cancelled at the size it had, with what it filled', () => {
  const BTC = 'BTC-PERPETUAL';
  const [alice, bob] = [key('view-amend-end-alice'), key('view-amend-end-bob')];
  const h = new Harness();
  for (const k of [alice, bob]) h.fund(k, 100_000n * USDC);
  const { view, feed } = viewOver(h);
  const ioc = { timeInForce: 'IOC' as const };
  try {
    const place = [h.tx(alice, limit(BTC, 'sell', 500_000, 10))];
    const placed = h.block(place);
    feed(placed, undefined, place);
    const id = placedId(placed);
    const take = [h.tx(bob, limit(BTC, 'buy', 500_000, 7, ioc))];
    let update = feed(h.block(take), undefined, take);
    assert.deepEqual(orderRows(update, alice), [[id, 'open', 'sell', 500_000, 10, 7, 3]]);
    // Amended to 5 with 7 filled: it ends, its 3 open lots cancelled.
    const end = [h.tx(alice, { kind: 'amend', instrument: BTC, orderId: id, sizeLots: 5 })];
    update = feed(h.block(end), undefined, end);
    assert.deepEqual(orderRows(update, alice), [[id, 'cancelled', 'sell', 500_000, 10, 7, 0]]);
    assert.equal(
      view.read().account(formatAddress(alice.address))!.subaccounts[0]!.openOrders.length,
      0,
    );
    // Placed at 10, 7 taken; amended to 12 across the book, where 5 wait: filled out at 12.
    const again = [h.tx(alice, limit(BTC, 'sell', 500_010, 10))];
    const second = h.block(again);
    feed(second, undefined, again);
    const other = placedId(second);
    const fills = [
      h.tx(bob, limit(BTC, 'buy', 500_010, 7, ioc)),
      h.tx(bob, limit(BTC, 'buy', 499_990, 5)),
    ];
    feed(h.block(fills), undefined, fills);
    const cross = [
      h.tx(alice, {
        kind: 'amend',
        instrument: BTC,
        orderId: other,
        priceTicks: 499_990,
        sizeLots: 12,
      }),
    ];
    update = feed(h.block(cross), undefined, cross);
    assert.deepEqual(orderRows(update, alice), [[other, 'filled', 'sell', 499_990, 12, 12, 0]]);
  } finally {
    view.close();
  }
});
