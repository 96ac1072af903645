// Evidence and certified blocks. Whether a block repeats committed evidence is
// known only to replicas that saw the block committing it: one restored by
// state sync did not. A block that 2/3+ of the stake certified must be
// followed by every replica, whatever it knows (docs/protocol.md, "Evidence").

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writer, encode } from '../../src/codec/wire.ts';
import { toHex } from '../../src/lib/bytes.ts';
import { messageCodec, voteSignBytes, walRecordCodec } from '../../src/consensus/codec.ts';
import { blockHashOf, evidenceRoot } from '../../src/consensus/replica.ts';
import { SIGN_KIND_CONSENSUS } from '../../src/consensus/ports.ts';
import { VOTE_TYPE } from '../../src/consensus/types.ts';
import type { Block, CommitCertificate, CommitVote } from '../../src/consensus/types.ts';
import { utf8 } from '../../src/lib/bytes.ts';
import { Harness, equivocation } from './harness.ts';

/**
 * Validator 3 double-signs at the current height and sends the evidence to
 * the others: the evidence, and `carrying(i)`, node i's blocks that hold evidence.
 */
function validator3Equivocates(h: Harness) {
  const old = equivocation(h, 3, h.nodes[0]!.replica.height);
  for (const to of [0, 1, 2]) {
    h.send(3, to, encode(messageCodec, { kind: 'evidence', evidence: old }));
  }
  const carrying = (i: number) => h.nodes[i]!.app.blocks.filter((b) => b.evidence.length > 0);
  return { old, carrying };
}

test('a replica follows a certified block that repeats evidence it saw committed', () => {
  const h = new Harness({ n: 4, seed: 43, compactWal: true });
  h.startAll();
  assert.ok(h.run(() => h.minCommitted() >= 3));

  // Validator 3 double-signs; a block commits the evidence.
  const { old, carrying } = validator3Equivocates(h);
  assert.ok(h.run(() => carrying(0).length > 0 && h.minCommitted() >= h.nodes[0]!.replica.height));

  // Replica 0 hears nothing more and stays at height n while the others go on.
  const allowed = new Set<Uint8Array>();
  h.filter = (_from, to, bytes) => to !== 0 || allowed.has(bytes);
  h.run(() => false, 5_000);
  const n = h.nodes[0]!.replica.height;
  assert.equal(h.nodes[0]!.topCommitted, n - 1, 'height n is not decided');
  assert.ok(h.run(() => h.minCommitted([1, 2, 3]) >= n + 2));

  // Block n as validators that state-synced past the evidence's block, with
  // the Byzantine validator 3, could certify it: the same block with the old
  // evidence again. They never saw it committed, so it was valid to them.
  const original = h.nodes[1]!.store.get(n)!;
  const block: Block = {
    ...original.block,
    header: { ...original.block.header, evidenceHash: evidenceRoot([old]) },
    evidence: [old],
  };
  const hash = blockHashOf(block);
  const round = original.commit.round;
  const set = h.nodes[1]!.replica.validators;
  const w = new Writer(256);
  const votes: CommitVote[] = [1, 2, 3]
    .map((k) => ({ k, index: set.indexOf(h.keys[k]!.publicKey) }))
    .sort((a, b) => a.index - b.index)
    .map(({ k, index }) => {
      const timestampMs = original.block.header.timeMs + 10;
      const extension = utf8(`ext v${k} ${n}`);
      return {
        validatorIndex: index,
        timestampMs,
        extension,
        signature: h.keys[k]!.signer.sign(
          SIGN_KIND_CONSENSUS.precommit,
          voteSignBytes(w, VOTE_TYPE.precommit, n, round, hash, timestampMs, extension),
        ),
      };
    });
  const commit: CommitCertificate = { height: n, round, blockHash: hash, votes };
  const response = encode(messageCodec, { kind: 'blockResponse', blocks: [{ block, commit }] });
  allowed.add(response);
  h.send(1, 0, response);
  h.run(() => h.nodes[0]!.replica.height > n, 60_000);

  const replica = h.nodes[0]!.replica;
  assert.equal(replica.metrics.badEvidence, 0, 'the certified block is not refused');
  assert.equal(h.nodes[0]!.committed.get(n), toHex(hash), 'it decides the certified block');
  assert.equal(replica.height, n + 1);
});

// In consensus, a replica that saw the evidence committed does not prevote
// for a block repeating it; it decides it from its 2f+1 precommits as a
// certified block, or, when those do not all reach it, gets it from a peer.
// Here nobody is two heights ahead to be asked (the Byzantine proposer leaves
// at once, and the others need this replica to decide the next height).
for (const seed of [44, 45, 46]) {
  test(`a replica that refused a block repeating committed evidence in consensus follows it when every peer waits for it (seed ${seed})`, () => {
    const h = new Harness({ n: 4, seed });
    h.startAll();
    assert.ok(h.run(() => h.minCommitted() >= 3));

    // Validator 3 double-signs; a block commits the evidence.
    const { old, carrying } = validator3Equivocates(h);
    assert.ok(h.run(() => [0, 1, 2, 3].every((i) => carrying(i).length === 1)));

    // Validators 1 and 2 restart from a state without the committed evidence,
    // as after a state sync past its block; validator 3 (Byzantine) too, with
    // the evidence pooled again, so it proposes it.
    const first = carrying(0)[0]!.header.height;
    assert.ok(h.run(() => h.minCommitted() >= first + 2));
    for (const i of [1, 2, 3]) {
      const node = h.nodes[i]!;
      h.crash(i);
      const state = { ...node.replica.chainState, committedEvidence: [] };
      const record = {
        kind: 'checkpoint' as const,
        state,
        ...(i === 3 ? { evidence: [old] } : {}),
      };
      node.wal.push(encode(walRecordCodec, record));
      node.syncedLength = node.wal.length;
      h.restart(i);
    }
    assert.ok(
      h.run(() => carrying(1).length === 2),
      'validators 1 to 3 commit it again',
    );
    const n = carrying(1)[1]!.header.height;
    h.crash(3);
    assert.ok(h.nodes[0]!.replica.metrics.badEvidence > 0, 'validator 0 refused it in consensus');
    assert.ok(h.minCommitted([1, 2]) <= n, 'nobody is two heights ahead');

    assert.ok(
      h.run(() => h.minCommitted([0, 1, 2]) >= n + 3, 120_000),
      'the chain goes on',
    );
    assert.equal(h.nodes[0]!.committed.get(n), h.nodes[1]!.committed.get(n));
    assert.equal(h.doubleSigns, 0);
  });
}
