// Order semantics through the whole state machine, checked action by action
// on random flows at a few ticks around a moving index (so orders of one
// account meet at a level, the fill check and price monitoring take part):
// a rejected action changes no book; a FOK fills in full or changes nothing;
// IOC, market and reduce-only orders never rest; post-only orders never
// trade; reduce-only orders never grow or flip a position; no account trades
// with itself; a taker touches the opposite side in priority order (the
// orders it filled or removed are a prefix of that side's queue); an amend
// keeps its place in the queue exactly when it keeps price and does not grow,
// and otherwise rests at the back of its level; the incremental digest equals
// the digest from scratch after every block.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../src/lib/prng.ts';
import { bookHolding } from '../../src/exchange/auction/call.ts';
import { sizeIn } from '../../src/exchange/position.ts';
import type { Action, PlaceOrder } from '../../src/exchange/tx/types.ts';
import { Harness, USDC, key, limit, replacer } from './helpers.ts';

const BTC = 'BTC-PERPETUAL';
const TRADERS = [key('sa'), key('sb'), key('sc')];
const STPS = ['cancelResting', 'cancelIncoming', 'cancelBoth'] as const;

type Side = 'buy' | 'sell';
type Queue = (readonly [number, number, number])[];

/** A side's orders in priority order (id, size, price), leaving out those that expire by `untilMs`. */
function queue(h: Harness, side: Side, untilMs: number): Queue {
  const book = h.ex.state.marketByName.get(BTC)!.book;
  return [...book.ordersOf(side)]
    .filter((o) => o.goodTilMs === 0 || o.goodTilMs > untilMs)
    .map((o) => [o.orderId, o.sizeLots, o.priceTicks] as const);
}

function inAuction(h: Harness): boolean {
  return h.ex.state.marketByName.get(BTC)!.auction?.active === true;
}

function randomAction(h: Harness, rng: Prng, accountIndex: number): Action {
  const market = h.ex.state.marketByName.get(BTC)!;
  const side: Side = rng.chance(1, 2) ? 'buy' : 'sell';
  const priceTicks = Number(h.oracle.BTC! / 100_000n) + rng.between(-3, 3);
  const sizeLots = rng.between(1, rng.chance(1, 3) ? 3_000 : 6);
  const stp = rng.pick(STPS);
  const mine = [...h.ex.state.orders.values()].filter((m) => m.account.index === accountIndex);
  const roll = rng.int(100);
  if (roll < 50) {
    const timeInForce = rng.pick(['GTC', 'GTC', 'IOC', 'FOK', 'postOnly'] as const);
    const extra: Partial<PlaceOrder> = {
      timeInForce,
      reduceOnly: timeInForce !== 'postOnly' && rng.chance(1, 4),
      stp,
    };
    if (rng.chance(1, 4)) extra.clientOrderId = `c${rng.int(3)}`;
    if ((timeInForce === 'GTC' || timeInForce === 'postOnly') && rng.chance(1, 5)) {
      extra.goodTilMs = h.timeMs + 1_000 * rng.between(1, 3);
    }
    return limit(BTC, side, priceTicks, sizeLots, extra);
  }
  if (roll < 60 || mine.length === 0) {
    return {
      kind: 'placeOrder',
      instrument: BTC,
      side,
      type: 'market',
      sizeLots,
      timeInForce: rng.chance(1, 2) ? 'IOC' : 'FOK',
      reduceOnly: rng.chance(1, 3),
      stp,
    };
  }
  const meta = rng.pick(mine);
  if (roll < 75) {
    return meta.clientOrderId !== '' && rng.chance(1, 3)
      ? { kind: 'cancel', instrument: BTC, clientOrderId: meta.clientOrderId }
      : { kind: 'cancel', instrument: BTC, orderId: meta.orderId };
  }
  if (roll < 80) return { kind: 'cancelAll', instrument: BTC };
  const order = bookHolding(market, meta.orderId)!.order(meta.orderId)!;
  const orderId = meta.orderId;
  switch (rng.int(3)) {
    case 0:
      return {
        kind: 'amend',
        instrument: BTC,
        orderId,
        sizeLots: Math.max(1, order.sizeLots - rng.int(3)),
      };
    case 1:
      return { kind: 'amend', instrument: BTC, orderId, priceTicks };
    default:
      return { kind: 'amend', instrument: BTC, orderId, priceTicks, sizeLots };
  }
}

function flow(seed: number, steps: number): void {
  const rng = new Prng(seed);
  const h = new Harness();
  for (const t of TRADERS) {
    h.fund(t, 200_000n * USDC);
    // Subaccount 1 keeps little collateral: its fills meet the fill check.
    const r = h.one(t, {
      kind: 'transfer',
      fromSubaccount: 0,
      toSubaccount: 1,
      amountQuote: 199_500n * USDC,
    });
    assert.ok(r.ok && r.actions[0]!.ok);
  }
  const market = h.ex.state.marketByName.get(BTC)!;
  for (let step = 0; step < steps; step++) {
    if (rng.chance(1, 5)) {
      h.oracle.BTC =
        (h.oracle.BTC! * BigInt(1_000_000 + rng.between(-15_000, 15_000))) / 1_000_000n;
    }
    const trader = rng.pick(TRADERS);
    const subaccount = rng.int(2);
    const account = h.account(trader, subaccount)!;
    const action = randomAction(h, rng, account.index);
    const nextMs = h.timeMs + 1_000;
    const before = { buy: queue(h, 'buy', nextMs), sell: queue(h, 'sell', nextMs) };
    const positionBefore = sizeIn(account, market);
    const amended =
      action.kind === 'amend'
        ? { ...bookHolding(market, action.orderId)!.order(action.orderId)! }
        : null;
    const auctionBefore = inAuction(h);
    const block = h.block([h.tx(trader, action, { subaccount })]);
    const res = block.results[0]!;
    const where = `seed ${seed} step ${step}: ${JSON.stringify(action)} -> ${JSON.stringify(res, replacer)}`;
    assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch(), where);
    assert.ok(res.ok, where);
    const r = res.actions[0]!;
    // Liquidations at the end of the block and auctions move orders and positions too.
    const liquidated = block.events.some(
      (e) => e.type === 'liquidation' || e.type === 'liquidationFill' || e.type === 'deleverage',
    );
    const calm = !liquidated && !auctionBefore && !inAuction(h);
    const after = { buy: queue(h, 'buy', nextMs), sell: queue(h, 'sell', nextMs) };
    const positionAfter = sizeIn(account, market);
    if (!r.ok) {
      if (calm) assert.deepEqual(after, before, `a rejected action changed the book: ${where}`);
      if (!liquidated) assert.equal(positionAfter, positionBefore, where);
      continue;
    }
    if (!('order' in r) || r.order === undefined) continue;
    const o = r.order;
    for (const f of o.fills) assert.notEqual(f.makerAccount, account.index, `self-trade: ${where}`);
    if (action.kind === 'placeOrder') {
      const rests = action.timeInForce === 'GTC' || action.timeInForce === 'postOnly';
      if (!rests || action.reduceOnly) assert.equal(o.restedLots, 0, `rested: ${where}`);
      if (action.timeInForce === 'postOnly') assert.equal(o.fills.length, 0, `took: ${where}`);
      if (action.reduceOnly && !liquidated) {
        assert.ok(
          positionBefore !== 0 &&
            Math.sign(positionAfter) !== -Math.sign(positionBefore) &&
            Math.abs(positionAfter) <= Math.abs(positionBefore),
          `reduce-only grew or flipped ${positionBefore} -> ${positionAfter}: ${where}`,
        );
      }
      if (action.timeInForce === 'FOK' && o.reason !== 'InsufficientEquity') {
        assert.ok(o.filledLots === 0 || o.cancelledLots === 0, `FOK partly filled: ${where}`);
        if (o.filledLots === 0 && calm) assert.deepEqual(after, before, `FOK changed: ${where}`);
      }
    }
    if (!calm) continue;
    const takerSide = amended !== null ? amended.side : (action as PlaceOrder).side;
    const opposite: Side = takerSide === 'buy' ? 'sell' : 'buy';
    const sizeNow = new Map(after[opposite].map(([id, lots]) => [id, lots]));
    const touched = before[opposite].map(([id, lots]) => sizeNow.get(id) !== lots);
    const untouchedFrom = touched.indexOf(false);
    if (untouchedFrom >= 0) {
      assert.ok(!touched.slice(untouchedFrom).includes(true), `out of priority: ${where}`);
    }
    if (action.kind === 'amend' && amended !== null && o.status === 'rested') {
      const side = after[amended.side];
      const at = side.findIndex(([id]) => id === action.orderId);
      const keeps =
        (action.priceTicks ?? amended.priceTicks) === amended.priceTicks &&
        (action.sizeLots ?? amended.sizeLots) <= amended.sizeLots;
      if (keeps) {
        const rank = (q: Queue, other: Queue): number =>
          q
            .filter(([id]) => other.some(([j]) => j === id))
            .findIndex(([id]) => id === action.orderId);
        assert.equal(
          rank(after[amended.side], before[amended.side]),
          rank(before[amended.side], after[amended.side]),
          `an amend that keeps priority moved: ${where}`,
        );
      } else {
        const level = side.filter(([, , p]) => p === side[at]![2]);
        assert.equal(level[level.length - 1]![0], action.orderId, `not at the back: ${where}`);
      }
    }
  }
}

test('order semantics hold action by action on random flows (seeds 1–12)', () => {
  for (let seed = 1; seed <= 12; seed++) flow(seed, 300);
});

test('a reduce-only order never rests, so a good-til time on it is refused (InvalidOrder)', () => {
  const h = new Harness();
  const a = key('ra');
  const b = key('rb');
  h.fund(a, 100_000n * USDC);
  h.fund(b, 100_000n * USDC);
  const made = h.one(b, limit(BTC, 'sell', 500_000, 10));
  assert.ok(made.ok && made.actions[0]!.ok);
  const took = h.one(a, limit(BTC, 'buy', 500_000, 10));
  assert.ok(took.ok && took.actions[0]!.ok);
  const r = h.one(
    a,
    limit(BTC, 'sell', 499_000, 5, { reduceOnly: true, goodTilMs: h.timeMs + 60_000 }),
  );
  assert.ok(r.ok);
  const action = r.actions[0]!;
  assert.ok(!action.ok, JSON.stringify(action, replacer));
  assert.equal(action.code, 'InvalidOrder');
});
