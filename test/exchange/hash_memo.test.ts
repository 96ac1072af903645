// The address memos' slabs (hash.ts, MemoSlabs): slots by size class, reused
// once freed, contents kept when a slab grows; and an address whose memo moves
// up the classes, or is reused by nonce-only blocks, keeps the incremental
// digest equal to the digest from scratch.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoSlabs } from '../../src/exchange/hash.ts';
import { bytesKey } from '../../src/exchange/keys.ts';
import { Harness, USDC, key } from './helpers.ts';

test('a memo slot class is the smallest whose slots hold the length', () => {
  assert.equal(MemoSlabs.classOf(1), 0);
  assert.equal(MemoSlabs.classOf(64), 0);
  assert.equal(MemoSlabs.classOf(65), 1);
  assert.equal(MemoSlabs.classOf(128), 1);
  assert.equal(MemoSlabs.classOf(129), 2);
  assert.equal(MemoSlabs.slotBytes(2), 256);
});

test('slots are distinct, a freed slot is reused, and a slab keeps its bytes when it grows', () => {
  const memos = new MemoSlabs();
  const slots: number[] = [];
  for (let i = 0; i < 1_000; i++) {
    const slot = memos.alloc(1);
    slots.push(slot);
    memos.slabs[1]![slot * MemoSlabs.slotBytes(1)] = i & 0xff;
  }
  assert.equal(new Set(slots).size, slots.length);
  slots.forEach((slot, i) =>
    assert.equal(memos.slabs[1]![slot * MemoSlabs.slotBytes(1)], i & 0xff),
  );
  memos.release(1, slots[17]!);
  assert.equal(memos.alloc(1), slots[17]);
  assert.equal(memos.alloc(1), 1_000, 'no free slot left: a new one');
});

test('an address whose memo outgrows its slot class, or is reused unchanged, keeps the digest exact', () => {
  const h = new Harness();
  const alice = key('memo-alice');
  const bob = key('memo-bob');
  const check = (): void => assert.deepEqual(h.ex.digestBytes(), h.ex.digestFromScratch());
  for (let sub = 0; sub < 12; sub++) {
    // A new subaccount lengthens the address's memo: it moves up the classes.
    h.fund(alice, 1_000n * USDC, sub);
    check();
    // A refused cancel consumes a nonce and changes no account: the memo is reused.
    h.one(alice, { kind: 'cancel', instrument: 'BTC-PERPETUAL', clientOrderId: 'none' });
    check();
    // Bob's memo takes the slot alice's memo left behind when it moved.
    h.fund(bob, 1_000n * USDC, sub);
    check();
    // And alice's memo, reused again after bob's was written, is still hers.
    h.one(alice, { kind: 'cancel', instrument: 'BTC-PERPETUAL', clientOrderId: 'none' });
    check();
  }
  const p = h.ex.state.principals.get(bytesKey(alice.address))!;
  assert.ok(p.accountsMemoClass >= 2, `class ${p.accountsMemoClass}`);
});
