// Whole-state invariants, checked after every block in tests and, behind the
// checkInvariants option, by the node. O(state): a debugging aid, not a hot path.
//   - collateral conservation: deposits − withdrawals = Σ cash + insurance + fee pool;
//   - open interest: Σ long lots = Σ short lots = the market's counters, per market;
//   - books: not crossed, no zero-size order (the book's own checks); the
//     books of auction orders one-sided, and empty outside an auction;
//   - every resting order has a record, and every record a resting order;
//     its size placed is at least its open size;
//   - time priority is the priority stamp: along each level the orders' seq
//     ascends (the leaves carry seq, not the place in the level, so this is
//     what puts the order of a level under the digest);
//   - margin is reserved for resting orders: margin.ts prices an account's
//     resting size per side from the book's per-owner totals, and the book's
//     own check holds those totals equal to its levels' orders;
//   - the fee pool is never negative, nor is the insurance fund (it pays
//     min(what is lacking, what it holds), and funding's dust is ≥ 0);
//   - the deficits are exactly the accounts without positions and with
//     negative cash (each one found so goes to the fund and the set at the
//     end of the block that left it so, and leaves the set with the cash
//     that lifts it), and none is left while the fund holds money: the fund
//     pays them after every block's liquidations (liquidation.ts,
//     payDeficits), so the set and the fund never both hold something;
//   - the underwater set is exactly the accounts with positions and negative
//     equity (it is rebuilt from that on restore, so it must be what replay keeps);
//   - stake: only a jailed validator lost stake, and the thresholds' total is
//     the stake of those not jailed (stake is not collateral: it is apart from
//     the conservation above);
//   - each validator's counts of pending deposits it attested and pending
//     proposals it approved (which bound them) are what the state holds;
//   - a market's flag of risk parameters set by governance says exactly
//     whether they differ from those it was listed with (the leaf carries
//     them only then), and its derived maintenance is in step with them.

import { assert } from '../lib/assert.ts';
import { GenesisError, checkFeeTiers, riskOf, sameFeeTiers, sameRisk } from './genesis.ts';
import { equityQuote } from './margin.ts';
import { positionOf, sizeIn } from './position.ts';
import { booksOf } from './hash.ts';
import type { ExchangeState } from './state.ts';

function checkPendingCounts(state: ExchangeState): void {
  const deposits = state.validators.map(() => 0);
  const proposals = state.validators.map(() => 0);
  for (const d of state.deposits.values()) for (const i of d.attesters) deposits[i]!++;
  for (const p of state.proposals.values()) {
    if (!p.executed || p.closed) for (const i of p.approvers) proposals[i]!++;
  }
  let indexed = 0;
  for (const keys of state.depositKeysById.values()) indexed += keys.length;
  assert(indexed === state.deposits.size, 'the deposit index drifted');
  for (const [idHex, keys] of state.depositKeysById) {
    assert(!state.creditedDeposits.has(idHex), `deposit ${idHex} is pending and credited`);
    for (const key of keys) assert(state.deposits.has(key), `indexed deposit ${key} is gone`);
  }
  state.validators.forEach((v, i) => {
    assert(v.pendingDeposits === deposits[i], `validator ${i}: pending deposits drifted`);
    assert(v.pendingProposals === proposals[i], `validator ${i}: pending proposals drifted`);
  });
}

/**
 * The fee schedule in force is one genesis's rules accept, flagged as
 * changed exactly when it differs from genesis's, and what is derived from
 * it (the fill guard's bounds) is in step.
 */
function checkFeeSchedule(state: ExchangeState): void {
  try {
    checkFeeTiers(state.feeTiers, 'feeTiers');
  } catch (e) {
    if (e instanceof GenesisError) assert(false, `fee schedule: ${e.message}`);
    throw e;
  }
  const changed = !sameFeeTiers(state.feeTiers, state.genesis.feeTiers);
  assert(state.feeTiersChanged === changed, 'fee schedule flag drifted');
  let maker = 0;
  let taker = 0;
  for (const t of state.feeTiers) {
    maker = Math.max(maker, t.makerFeePpm);
    taker = Math.max(taker, t.takerFeePpm);
  }
  assert(
    state.feeMakerPpmMax === maker && state.feeTakerPpmMax === taker,
    'fee schedule bounds drifted',
  );
}

export function checkInvariants(state: ExchangeState): void {
  checkPendingCounts(state);
  let cash = 0n;
  for (const a of state.accounts) cash += a.cashQuote;
  assert(
    state.depositedQuote - state.withdrawnQuote ===
      cash + state.insuranceQuote + state.feePoolQuote,
    `collateral not conserved: deposits ${state.depositedQuote} − withdrawals ${state.withdrawnQuote} ≠ ` +
      `cash ${cash} + insurance ${state.insuranceQuote} + fees ${state.feePoolQuote}`,
  );
  assert(state.feePoolQuote >= 0n, 'fee pool negative');
  checkFeeSchedule(state);
  assert(state.insuranceQuote >= 0n, 'insurance fund negative');
  for (const a of state.accounts) {
    const deficit = a.positionCount === 0 && a.cashQuote < 0n;
    assert(deficit === state.deficits.has(a), `account ${a.index}: deficit set drifted`);
  }
  assert(
    state.deficits.size === 0 || state.insuranceQuote === 0n,
    `${state.deficits.size} deficit(s) left unpaid while the insurance fund holds ${state.insuranceQuote}`,
  );
  for (const a of state.accounts) {
    const under = a.positionCount > 0 && equityQuote(state, a) < 0n;
    assert(under === state.underwater.has(a), `account ${a.index}: underwater set drifted`);
  }
  let active = 0n;
  for (const v of state.validators) {
    if (!v.jailed) active += v.stake;
    assert(v.jailed || v.stake === v.genesisStake, 'a validator not jailed lost stake');
    assert(v.jailed === v.jailedHeight > 0, 'jailed without its height');
    assert(v.stake >= 0n && v.stake <= v.genesisStake, 'stake out of range');
  }
  assert(active === state.totalStake, `active stake ${active} ≠ total ${state.totalStake}`);
  let orders = 0;
  for (const m of state.markets) {
    if (m.retired) {
      assert(m.holders.size === 0 && m.book.orderCount === 0, 'a free slot holds positions');
      continue;
    }
    let long = 0;
    let short = 0;
    let holders = 0;
    for (const a of state.accounts) {
      const size = sizeIn(a, m);
      if (size > 0) long += size;
      if (size < 0) short -= size;
      if (size !== 0) {
        holders++;
        assert(m.holders.has(a), `holder set misses account ${a.index}`);
      }
    }
    const name = m.params.instrument;
    // Governance's risk parameters (governance.ts, setMarketRisk): the flag
    // that puts them in the leaf says exactly whether they differ from those
    // listed, and what is derived from them is in step.
    const changed = !sameRisk(riskOf(m.params), riskOf(m.baseParams));
    assert(m.riskChanged === changed, `${name}: risk flag drifted`);
    assert(
      m.maintenancePpmBig === BigInt(m.params.maintenanceMarginPpm),
      `${name}: derived maintenance drifted`,
    );
    assert(long === short, `${name}: long OI ${long} ≠ short OI ${short}`);
    assert(long === m.longLots && short === m.shortLots, `${name}: OI counters drifted`);
    assert(holders === m.holders.size, `${name}: holder set drifted`);
    const a = m.auction;
    if (a !== null) {
      // Auction orders: one side per book, and none outside an auction.
      assert(
        a.bids.levelCount('sell') === 0 && a.asks.levelCount('buy') === 0,
        `${name}: mixed auction book`,
      );
      if (!a.active)
        assert(
          a.bids.orderCount + a.asks.orderCount === 0,
          `${name}: auction orders outside an auction`,
        );
      a.bids.checkInvariants();
      a.asks.checkInvariants();
    }
    m.book.checkInvariants();
    for (const book of booksOf(m))
      for (const side of ['buy', 'sell'] as const) {
        let levelTicks = 0;
        let previousSeq = 0;
        for (const order of book.ordersOf(side)) {
          orders++;
          const meta = state.orders.get(order.orderId);
          assert(
            meta !== undefined && meta.market === m.index,
            `order ${order.orderId} without record`,
          );
          assert(
            order.priceTicks !== levelTicks || meta.seq > previousSeq,
            `order ${order.orderId} ahead of its priority stamp`,
          );
          levelTicks = order.priceTicks;
          previousSeq = meta.seq;
          assert(meta.account.index === order.owner, `order ${order.orderId} owner mismatch`);
          assert(order.sizeLots > 0, `order ${order.orderId} of size zero`);
          assert(
            meta.placedLots >= order.sizeLots,
            `order ${order.orderId} placed below its open size`,
          );
          if (meta.clientOrderId !== '') {
            assert(
              meta.account.clientOrderIds.get(meta.clientOrderId) === order.orderId,
              'client id index drifted',
            );
          }
        }
      }
  }
  assert(
    orders === state.orders.size,
    `order records ${state.orders.size} ≠ resting orders ${orders}`,
  );
  for (const a of state.accounts) {
    let count = 0;
    for (const p of a.positions) if (p.sizeLots !== 0) count++;
    let previous = -1;
    for (const p of a.listed) {
      if (p.sizeLots !== 0) count++;
      const m = state.markets[p.market];
      assert(p.market > previous, `account ${a.index}: listed records out of order`);
      assert(m !== undefined && m.listed && !m.retired, `account ${a.index}: record in no market`);
      assert(m.records.has(a), `account ${a.index}: record unknown to its market`);
      previous = p.market;
    }
    assert(count === a.positionCount, `account ${a.index}: position count drifted`);
  }
  // A resting order in a listed market has a record to be margined through.
  for (const meta of state.orders.values()) {
    const m = state.markets[meta.market]!;
    if (m.listed) {
      assert(positionOf(meta.account, m) !== undefined, `order ${meta.orderId} without a record`);
    }
  }
}
