// A validator that joined by state sync never saw the blocks before its
// snapshot, so it does not know the evidence they committed. A peer sending it
// such evidence again must not get it into its proposals: every validator that
// saw the block committing it refuses a block that repeats it (badEvidence),
// and each of the synced validator's proposer turns would cost a round until
// the evidence left its window.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encode } from '../../src/codec/wire.ts';
import { EVIDENCE_AGE_HEIGHTS_MAX } from '../../src/lib/limits.ts';
import { messageCodec, walRecordCodec } from '../../src/consensus/codec.ts';
import type { DuplicateVoteEvidence } from '../../src/consensus/types.ts';
import { verifyTrustedChain } from '../../src/node/sync.ts';
import { Harness, equivocation } from '../consensus/harness.ts';

const evidenceMessage = (evidence: DuplicateVoteEvidence): Uint8Array =>
  encode(messageCodec, { kind: 'evidence', evidence });

/**
 * Restarts crashed validator `i` as a state sync from a snapshot of height
 * `k` leaves it: its WAL is the checkpoint state sync writes, its store the
 * block of k. Node 0 must have committed k + 2.
 */
function restartBySync(h: Harness, i: number, k: number): void {
  const blocks = [k, k + 1, k + 2].map((height) => h.nodes[0]!.store.get(height)!);
  const { chainState } = verifyTrustedChain(h.genesis, h.verifier, blocks, []);
  assert.equal(chainState.committedEvidence.length, 0, 'the blocks before h are unseen');
  const synced = h.nodes[i]!;
  synced.wal.length = 0;
  synced.wal.push(encode(walRecordCodec, { kind: 'checkpoint', state: chainState }));
  synced.syncedLength = 1;
  synced.store.clear();
  synced.store.set(k, h.nodes[0]!.store.get(k)!);
  synced.app.height = k;
  synced.app.appHash = h.nodes[0]!.app.results.get(k)!.appHash;
  h.restart(i);
}

test('a validator restarted from a state sync does not propose evidence committed before its snapshot', () => {
  const h = new Harness({ n: 4, seed: 41, compactWal: true });
  h.startAll();
  assert.ok(
    h.run(() => h.minCommitted() >= 3),
    'the chain starts',
  );

  // Validator 3 double-signs; a block commits the evidence.
  const old = equivocation(h, 3, h.nodes[0]!.replica.height);
  for (const to of [0, 1, 2]) h.send(3, to, evidenceMessage(old));
  const carrying = () => h.nodes[0]!.app.blocks.filter((b) => b.evidence.length > 0);
  assert.ok(
    h.run(() => carrying().length > 0),
    'a block commits the evidence',
  );
  const committedAt = carrying()[0]!.header.height;

  // Validator 2 goes away, and comes back by state sync from a snapshot taken
  // a few heights after that block: its WAL is the checkpoint state sync writes.
  h.crash(2);
  const k = committedAt + 5;
  assert.ok(
    h.run(() => h.minCommitted([0, 1, 3]) >= k + 2),
    'the others go on',
  );
  restartBySync(h, 2, k);

  // A Byzantine peer sends it the old evidence, still within its window.
  assert.ok(
    h.run(() => h.height(2) >= k + 2),
    'the synced validator catches up',
  );
  assert.ok(h.nodes[2]!.replica.height - old.voteA.height < EVIDENCE_AGE_HEIGHTS_MAX);
  h.send(3, 2, evidenceMessage(old));
  const from = h.minCommitted();
  assert.ok(
    h.run(() => h.minCommitted() >= from + 12),
    'the chain goes on',
  );
  for (const i of [0, 1, 3]) {
    assert.equal(
      h.nodes[i]!.replica.metrics.badEvidence,
      0,
      `validator ${i} was never offered a block repeating committed evidence`,
    );
  }
  assert.equal(h.nodes[2]!.replica.pendingEvidence, 0, 'the synced validator does not pool it');
  assert.equal(carrying().length, 1, 'the evidence is committed once');
  const proposedBy2 = [...h.released.keys()].filter(
    (key) => key.startsWith('2/') && key.endsWith('/proposal') && Number(key.split('/')[1]) > k,
  );
  assert.ok(proposedBy2.length >= 2, 'the synced validator had proposer turns');

  // Evidence of heights after the snapshot is its own to pool and propose.
  const fresh = equivocation(h, 3, h.nodes[2]!.replica.height);
  h.send(3, 2, evidenceMessage(fresh));
  assert.ok(
    h.run(() => h.nodes[2]!.replica.pendingEvidence === 1),
    'the synced validator pools new evidence',
  );

  // Once no evidence in the window can be older than the snapshot, the
  // checkpoints no longer carry the mark.
  assert.equal(h.nodes[2]!.replica.chainState.committedEvidenceFrom, k + 1);
  assert.ok(
    h.run(() => h.minCommitted() >= k + EVIDENCE_AGE_HEIGHTS_MAX + 1),
    'the chain passes the window',
  );
  assert.equal(h.nodes[2]!.replica.chainState.committedEvidenceFrom, undefined);
  assert.equal(h.doubleSigns, 0);
});

test('a validator restarted from a state sync knows the offences committed after its snapshot: another pair of one is refused', () => {
  const h = new Harness({ n: 4, seed: 42, compactWal: true });
  h.startAll();
  assert.ok(h.run(() => h.minCommitted() >= 3));
  h.crash(2);
  const k = h.minCommitted([0, 1, 3]);
  assert.ok(h.run(() => h.minCommitted([0, 1, 3]) >= k + 2));
  restartBySync(h, 2, k);
  assert.ok(
    h.run(() => h.height(2) >= k + 3),
    'the synced validator catches up',
  );

  // Validator 3 double-signs at a height after the snapshot, twice (rounds 0
  // and 1); the first pair is committed, with the synced validator voting.
  const x = h.nodes[2]!.replica.height - 1;
  const index = h.nodes[2]!.replica.validators.indexOf(h.keys[3]!.publicKey);
  const first = equivocation(h, 3, x, index, 0);
  const second = equivocation(h, 3, x, index, 1);
  for (const to of [0, 1, 2]) h.send(3, to, evidenceMessage(first));
  const carrying = () => h.nodes[2]!.app.blocks.filter((b) => b.evidence.length > 0);
  assert.ok(
    h.run(() => carrying().length > 0),
    'a block commits the first pair',
  );
  assert.ok(h.run(() => h.minCommitted() > carrying()[0]!.header.height));

  // The second reaches the synced validator only: it neither pools nor
  // proposes it, as every other validator would refuse it.
  const dropped = h.nodes[2]!.replica.metrics.duplicateVote;
  h.send(3, 2, evidenceMessage(second));
  const from = h.minCommitted();
  assert.ok(
    h.run(() => h.minCommitted() >= from + 8),
    'the chain goes on',
  );
  assert.equal(h.nodes[2]!.replica.pendingEvidence, 0, 'the synced validator does not pool it');
  assert.ok(h.nodes[2]!.replica.metrics.duplicateVote > dropped, 'it dropped it');
  assert.equal(carrying().length, 1, 'the offence is committed once');
  for (const i of [0, 1, 3]) assert.equal(h.nodes[i]!.replica.metrics.badEvidence, 0);
});
