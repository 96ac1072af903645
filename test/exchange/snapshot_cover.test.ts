// A node that state-syncs trusts a snapshot from an untrusted peer only
// because it recomputes the appHash from the decoded state and compares it
// with the one the chain committed to. That is sound only if the appHash
// covers everything the snapshot restores: so every damaged snapshot must be
// refused with a typed error or restore a state with another appHash. A
// damage that restores the same appHash is a field no leaf covers, or a second
// encoding of one state (which the node would store and serve as it came).
// Bits are flipped in a rich state (perpetuals in a volatility auction,
// dated futures and options, agents, subaccounts, deposits, proposals, a
// jailed validator) and in one with risk parameters set by governance (a
// market's, an executed and a pending proposal's) and one with a fee
// schedule set by governance, then the damages no bit flip makes: reordered lists and
// orders moved between places that the leaves do not tell apart.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DecodeError, Writer } from '../../src/codec/wire.ts';
import { Prng } from '../../src/lib/prng.ts';
import { copyOrder } from '../../src/exchange/auction/call.ts';
import { writeProposal } from '../../src/exchange/encoding.ts';
import { genesisCodec } from '../../src/exchange/genesis.ts';
import { decodeSnapshot, encodeSnapshot } from '../../src/exchange/snapshot.ts';
import type { Exchange } from '../../src/exchange/index.ts';
import type { Account } from '../../src/exchange/state.ts';
import type { Action } from '../../src/exchange/tx/types.ts';
import { Harness, USDC, VALIDATORS, key, limit } from './helpers.ts';
import { BTC, ETH, a, b, rich, unsound } from './rich_state.ts';

function flipBits(h: Harness, at: (i: number) => number, count: number, seed: number): void {
  const bytes = encodeSnapshot(h.ex);
  const restored = decodeSnapshot(bytes, { checkInvariants: true });
  assert.deepEqual(restored.appHash, h.ex.appHash);
  const rng = new Prng(seed);
  const bad: string[] = [];
  for (let i = 0; i < count; i++) {
    const offset = at(i) % bytes.length;
    const bit = rng.int(8);
    const mutated = bytes.slice();
    mutated[offset] = mutated[offset]! ^ (1 << bit);
    const why = unsound(mutated, bytes, h.ex.appHash);
    if (why === null) continue;
    bad.push(`byte ${offset} bit ${bit}: ${why}`);
  }
  assert.deepEqual(bad, [], `${bad.length} of ${count} damaged snapshots pass the appHash check`);
}

test('every byte of a snapshot is covered: a flipped bit is refused or changes the appHash', () => {
  const h = rich(60_000);
  const n = encodeSnapshot(h.ex).length;
  // One seeded bit at every byte position.
  flipBits(h, (i) => i, n, 1);
});

test("risk parameters set by governance are covered: a flipped bit in a market's or a proposal's values is refused or changes the appHash", () => {
  const h = new Harness();
  const [x, y] = [key('cover-risk-x'), key('cover-risk-y')];
  h.fund(x, 100_000n * USDC);
  h.fund(y, 100_000n * USDC);
  h.one(x, limit(ETH, 'sell', 300_000, 7));
  h.one(y, limit(ETH, 'buy', 300_000, 5));
  const risk = {
    initialMarginPpm: 90_000,
    maintenanceMarginPpm: 45_000,
    imfStepQuote: 7_000_000n * USDC,
    imfStepPpm: 3_000,
    liquidationQuoteMaxPerBlock: 250_000n * USDC,
    priceBandPpm: 80_000,
    openInterestCapLots: 1_234,
  };
  const propose = (id: number, instrument: string): Action => ({
    kind: 'govPropose',
    proposalId: id,
    proposal: { kind: 'setMarketRisk', instrument, risk },
  });
  // Executed on ETH; pending on BTC.
  h.block([
    h.tx(VALIDATORS[0]!, propose(1, ETH)),
    h.tx(VALIDATORS[1]!, { kind: 'govVote', proposalId: 1, approve: true }),
    h.tx(VALIDATORS[2]!, { kind: 'govVote', proposalId: 1, approve: true }),
    h.tx(VALIDATORS[3]!, propose(2, BTC)),
  ]);
  assert.ok(h.ex.state.markets[1]!.riskChanged && !h.ex.state.proposals.get(2)!.executed);
  const n = encodeSnapshot(h.ex).length;
  flipBits(h, (i) => i, n, 2);
});

test("a fee schedule set by governance is covered: a flipped bit in the schedule in force or a proposal's is refused or changes the appHash", () => {
  const h = new Harness();
  const [x, y] = [key('cover-fee-x'), key('cover-fee-y')];
  h.fund(x, 100_000n * USDC);
  h.fund(y, 100_000n * USDC);
  const tiers = [
    { volumeQuoteMin: 0n, makerFeePpm: -150, takerFeePpm: 700 },
    { volumeQuoteMin: 2_500n * USDC, makerFeePpm: 40, takerFeePpm: 350 },
    { volumeQuoteMin: 900_000n * USDC, makerFeePpm: -120, takerFeePpm: 160 },
  ];
  const propose = (id: number, t: typeof tiers): Action => ({
    kind: 'govPropose',
    proposalId: id,
    proposal: { kind: 'setFeeTiers', tiers: t },
  });
  // One executed (the schedule in force), one pending.
  h.block([
    h.tx(VALIDATORS[0]!, propose(1, tiers)),
    h.tx(VALIDATORS[1]!, { kind: 'govVote', proposalId: 1, approve: true }),
    h.tx(VALIDATORS[2]!, { kind: 'govVote', proposalId: 1, approve: true }),
    h.tx(
      VALIDATORS[3]!,
      propose(
        2,
        tiers.slice(1, 2).map((t) => ({ ...t, volumeQuoteMin: 0n })),
      ),
    ),
  ]);
  h.one(x, limit(ETH, 'sell', 300_000, 7));
  h.one(y, limit(ETH, 'buy', 300_000, 5));
  assert.ok(h.ex.state.feeTiersChanged && !h.ex.state.proposals.get(2)!.executed);
  const n = encodeSnapshot(h.ex).length;
  flipBits(h, (i) => i, n, 4);
});

test('options marked every block: a snapshot must carry the marks the restore recomputes', () => {
  const h = rich();
  const rng = new Prng(2);
  const n = encodeSnapshot(h.ex).length;
  flipBits(h, () => rng.int(n), 1_500, 3);
});

/** The snapshot of `h` after `tamper` changed a restored copy of it (as a peer could). */
function tampered(h: Harness, tamper: (ex: Exchange) => void): Uint8Array {
  const copy = decodeSnapshot(encodeSnapshot(h.ex));
  tamper(copy);
  return encodeSnapshot(copy);
}

function assertSound(mutated: Uint8Array, h: Harness): void {
  const bytes = encodeSnapshot(h.ex);
  assert.notDeepEqual(mutated, bytes);
  assert.equal(unsound(mutated, bytes, h.ex.appHash), null);
}

test('time priority within a level is covered: two orders swapped at one price are refused', () => {
  const h = rich(60_000);
  const mutated = tampered(h, (ex) => {
    const book = ex.state.marketByName.get(BTC)!.book;
    const first = [...book.ordersOf('buy')].find((o) => o.priceTicks === 499_000)!;
    const moved = copyOrder(first);
    book.cancel(moved.orderId);
    book.insert(moved);
  });
  assertSound(mutated, h);
});

test('the book that holds an order is covered: a book order moved among the auction orders changes the appHash', () => {
  const h = rich(60_000);
  const m = h.ex.state.marketByName.get(BTC)!;
  assert.ok(m.auction!.active && m.auction!.bids.orderCount > 0);
  const mutated = tampered(h, (ex) => {
    const market = ex.state.marketByName.get(BTC)!;
    const last = [...market.book.ordersOf('buy')].at(-1)!;
    const moved = copyOrder(last);
    market.book.cancel(moved.orderId);
    market.auction!.bids.insert(moved);
  });
  assertSound(mutated, h);
});

/** Where `needle` starts in `haystack` (it must be there exactly once). */
function find(haystack: Uint8Array, needle: Uint8Array): number {
  const hits: number[] = [];
  for (let i = 0; i + needle.length <= haystack.length; i++) {
    let j = 0;
    while (j < needle.length && haystack[i + j] === needle[j]) j++;
    if (j === needle.length) hits.push(i);
  }
  assert.equal(hits.length, 1, `found ${hits.length} times`);
  return hits[0]!;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(parts.flatMap((p) => [...p]));
}

test('lists are canonical: proposals out of order are refused', () => {
  const h = rich(60_000);
  const bytes = encodeSnapshot(h.ex);
  const encoded = (write: (w: Writer) => void) => {
    const w = new Writer(256);
    write(w);
    return w.finish();
  };
  // Proposals 7 and 8 are adjacent: swapped.
  const p7 = encoded((w) => writeProposal(w, h.ex.state.proposals.get(7)!));
  const p8 = encoded((w) => writeProposal(w, h.ex.state.proposals.get(8)!));
  const at = find(bytes, concat(p7, p8));
  assertSound(concat(bytes.subarray(0, at), p8, p7, bytes.subarray(at + p7.length + p8.length)), h);
});

test('lists are canonical: deposits out of order are refused', () => {
  const h = rich(60_000);
  const bytes = encodeSnapshot(h.ex);
  // The two pending deposits (ids of 2s and 3s, then the address): swapped.
  const deposits = [...h.ex.state.deposits.values()].sort((x, y) => (x.key < y.key ? -1 : 1));
  assert.equal(deposits.length, 2);
  const starts = deposits.map((x) => find(bytes, concat(x.depositId, x.account)));
  const end = starts[1]! + (starts[1]! - starts[0]!);
  const first = bytes.subarray(starts[0]!, starts[1]!);
  const second = bytes.subarray(starts[1]!, end);
  assert.equal(first.length, second.length);
  assertSound(concat(bytes.subarray(0, starts[0]!), second, first, bytes.subarray(end)), h);
});

test('deficits are canonical: out of order or repeated account indices are refused', () => {
  const h = rich(60_000);
  const copy = decodeSnapshot(encodeSnapshot(h.ex));
  // Two deficits as a chain leaves them (an invariant, checked on restore):
  // accounts without positions below zero, with the insurance fund empty.
  // Their cash and the fund go to a, so collateral is conserved.
  const cs = copy.state;
  const [x, y] = [h.account(b, 2)!.index, h.account(key('cover-depositor'), 3)!.index].map(
    (i) => cs.accounts[i]!,
  ) as [Account, Account];
  assert.ok(x.index < y.index && y.index < 128, 'two one-byte indices, ascending');
  assert.ok(x.positionCount === 0 && y.positionCount === 0, 'neither holds a position');
  const holder = cs.accounts[h.account(a)!.index]!;
  holder.cashQuote += x.cashQuote + 1n + y.cashQuote + 2n + cs.insuranceQuote;
  x.cashQuote = -1n;
  y.cashQuote = -2n;
  cs.insuranceQuote = 0n;
  cs.deficits.add(x);
  cs.deficits.add(y);
  const base = decodeSnapshot(encodeSnapshot(copy));
  const bytes = encodeSnapshot(base);
  // A state no chain leaves (the fund pays the deficits after every block):
  // a deficit while the fund holds money, refused on restore.
  const unpaid = decodeSnapshot(bytes);
  unpaid.state.accounts[holder.index]!.cashQuote -= 1n;
  unpaid.state.insuranceQuote += 1n;
  assert.throws(() => decodeSnapshot(encodeSnapshot(unpaid)), DecodeError);
  // The deficits follow the format, the genesis and the globals.
  const w = new Writer(1 << 12);
  const s = base.state;
  w.u8(bytes[0]!);
  genesisCodec.write(w, s.genesis);
  w.uvarint(s.height).uvarint(s.timeMs);
  w.ivarintBig(s.insuranceQuote).uvarintBig(s.feePoolQuote);
  w.uvarintBig(s.depositedQuote).uvarintBig(s.withdrawnQuote).uvarint(s.nextOrderId);
  const at = w.finish().length;
  assert.deepEqual([...bytes.subarray(at, at + 3)], [2, x.index, y.index]);
  for (const list of [
    [2, y.index, x.index],
    [2, x.index, x.index],
  ]) {
    const mutated = concat(bytes.subarray(0, at), Uint8Array.from(list), bytes.subarray(at + 3));
    assert.equal(unsound(mutated, bytes, base.appHash), null, `deficits ${list}`);
  }
});

test('free listed slots after the last live one are not written, and refused when read', () => {
  const h = rich(60_000);
  const s = h.ex.state;
  const bytes = encodeSnapshot(h.ex);
  const slots = s.markets.length - s.genesisMarketCount;
  assert.ok(slots < 128 && !s.markets.at(-1)!.retired);
  // The slot count, then the first listed slot: live, with its name.
  const name = new TextEncoder().encode(s.markets[s.genesisMarketCount]!.params.instrument);
  const countAt = find(bytes, concat(Uint8Array.of(slots, 1, name.length), name));
  // After the slots, the addresses: their count, then the lowest address.
  const principals = [...s.principals.values()].sort((x, y) => (x.key < y.key ? -1 : 1));
  const endAt = find(bytes, concat(Uint8Array.of(principals.length), principals[0]!.address));
  const mutated = concat(
    bytes.subarray(0, countAt),
    Uint8Array.of(slots + 1),
    bytes.subarray(countAt + 1, endAt),
    Uint8Array.of(0),
    bytes.subarray(endAt),
  );
  assert.equal(unsound(mutated, bytes, h.ex.appHash), null);
  // An exchange whose last slot is free writes the same bytes as one without it.
  const copy = decodeSnapshot(bytes);
  const free = Object.assign(Object.create(Object.getPrototypeOf(s.markets[0]!)), s.markets[0]!, {
    index: copy.state.markets.length,
    retired: true,
  });
  copy.state.markets.push(free);
  assert.deepEqual(encodeSnapshot(copy), bytes);
});
