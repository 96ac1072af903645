import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode } from '../../src/codec/wire.ts';
import { messageCodec } from '../../src/consensus/codec.ts';
import type { Message } from '../../src/consensus/types.ts';
import { Harness } from './harness.ts';

/** The height a vote or proposal speaks at; null for the other messages. */
function heightOf(m: Message): number | null {
  if (m.kind === 'vote') return m.vote.height;
  if (m.kind === 'proposal') return m.proposal.height;
  return null;
}

function assertSameChain(h: Harness, replica: number, upTo: number): void {
  for (let height = 1; height <= upTo; height++) {
    const hash = h.nodes[replica]!.committed.get(height);
    assert.ok(hash !== undefined, `replica ${replica} committed ${height}`);
    assert.equal(hash, h.nodes[0]!.committed.get(height), `height ${height}`);
  }
}

test('a replica that refused a block in voting decides it from the 2/3+ precommits it holds, with no catch-up block', () => {
  const h = new Harness({ n: 4, seed: 36 });
  // Replica 3's application rejects the proposals of height 5: it prevotes
  // nil there, and the others (3 of 4) commit the block without it.
  let rejected = 0;
  h.nodes[3]!.app.rejectProposals = (block) => {
    if (block.header.height !== 5) return false;
    rejected++;
    return true;
  };
  // No committed block ever reaches it (neither pushed nor answered): only
  // the precommits it holds can decide height 5 for it.
  h.filter = (_from, to, bytes) => to !== 3 || decode(messageCodec, bytes).kind !== 'blockResponse';
  h.startAll();
  assert.ok(h.run(() => h.height(3) >= 8));
  assertSameChain(h, 3, 8);
  assert.ok(rejected > 0, 'it refused the block in voting');
  assert.ok(h.nodes[3]!.replica.metrics.rejectedByApp > 0);
});

/** The timeouts a replica has acted on, of every step. */
function timeoutsFired(h: Harness, replica: number): number {
  const fired = h.nodes[replica]!.replica.timeoutsFired;
  return fired.propose + fired.prevote + fired.precommit;
}

test('a replica holding 2/3+ precommits for a block it never received asks a peer heard at the next height for it at once, without waiting for a push, a peer two heights on or a timeout of its own', () => {
  // The default timeouts: far longer than a round trip to a peer.
  const h = new Harness({
    n: 4,
    seed: 37,
    timeouts: {
      proposeMs: 3_000,
      prevoteMs: 1_000,
      precommitMs: 1_000,
      deltaMs: 500,
      maxMs: 60_000,
    },
  });
  // Replica 3 never gets a proposal of height 5, nor any message from height
  // 7 on (no peer is seen two heights ahead), nor a block it did not ask for
  // (the pushes of peers that hear it still at 5).
  const asked = new Set<number>();
  h.filter = (from, to, bytes) => {
    const m = decode(messageCodec, bytes);
    if (from === 3 && m.kind === 'blockRequest') asked.add(to);
    if (to !== 3) return true;
    if (m.kind === 'blockResponse') return asked.delete(from);
    const height = heightOf(m);
    if (height === null) return true;
    return height < 7 && !(height === 5 && m.kind === 'proposal');
  };
  h.startAll();
  assert.ok(h.run(() => h.nodes[3]!.replica.height === 5));
  const before = timeoutsFired(h, 3);
  assert.ok(h.run(() => h.nodes[3]!.committed.has(5)));
  assertSameChain(h, 3, 5);
  // Decided on the peers' messages: no timer of its own at height 5 (each
  // would have re-run the decision rule, which asks then) had fired yet.
  assert.equal(timeoutsFired(h, 3), before);
  // From the block a peer served it (the precommits alone carry no block).
  assert.equal(h.nodes[3]!.replica.lastDecidedFromPeer, true);
});
