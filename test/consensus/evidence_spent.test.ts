// Evidence that can change nothing: its offender was already removed from
// the set (jailed for evidence committed before). Such evidence is neither
// pooled, proposed nor accepted in a proposal (docs/protocol.md, "Evidence").

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writer, decode, encode } from '../../src/codec/wire.ts';
import { messageCodec, proposalSignBytes } from '../../src/consensus/codec.ts';
import { SIGN_KIND_CONSENSUS } from '../../src/consensus/ports.ts';
import { blockHashOf, evidenceRoot } from '../../src/consensus/replica.ts';
import { VOTE_TYPE } from '../../src/consensus/types.ts';
import type { Block, DuplicateVoteEvidence, Message } from '../../src/consensus/types.ts';
import { bytesEqual } from '../../src/lib/bytes.ts';
import { Harness, equivocation } from './harness.ts';

/**
 * Four validators whose application jails an offender once; validator 3
 * double-signs twice (two distinct pieces of evidence) and the first piece
 * is committed. Returns the second, and the height that committed the first.
 */
function validator3Jailed(seed: number): {
  h: Harness;
  second: DuplicateVoteEvidence;
  jailedAt: number;
} {
  const h = new Harness({ n: 4, seed });
  for (const node of h.nodes) node.app.jailOffenders = true;
  h.startAll();
  assert.ok(h.run(() => h.minCommitted() >= 3));
  const height = h.nodes[0]!.replica.height;
  const first = equivocation(h, 3, height);
  const second = equivocation(h, 3, height - 1);
  for (const to of [0, 1, 2]) {
    h.send(3, to, encode(messageCodec, { kind: 'evidence', evidence: first }));
  }
  const carrying = () => h.nodes[0]!.app.blocks.filter((b) => b.evidence.length > 0);
  assert.ok(h.run(() => carrying().length > 0));
  const jailedAt = carrying()[0]!.header.height;
  const key3 = h.keys[3]!.publicKey;
  // Out of the set deciding jailedAt + 2, which each replica at jailedAt + 1 holds as its next.
  assert.ok(h.run(() => h.minCommitted([0, 1, 2]) >= jailedAt + 1));
  for (const i of [0, 1, 2]) {
    assert.equal(h.nodes[i]!.replica.nextValidators.indexOf(key3), -1);
  }
  return { h, second, jailedAt };
}

test('evidence against a validator already jailed is neither pooled nor committed: it could change nothing', () => {
  const { h, second, jailedAt } = validator3Jailed(51);
  const dropped = [0, 1, 2].map((i) => h.nodes[i]!.replica.metrics.duplicateVote);
  for (const to of [0, 1, 2]) {
    h.send(3, to, encode(messageCodec, { kind: 'evidence', evidence: second }));
  }
  const top = h.minCommitted([0, 1, 2]);
  assert.ok(h.run(() => h.minCommitted([0, 1, 2]) >= top + 6));
  for (const i of [0, 1, 2]) {
    const node = h.nodes[i]!;
    assert.equal(node.replica.pendingEvidence, 0, `node ${i} pooled nothing`);
    assert.ok(node.replica.metrics.duplicateVote > dropped[i]!, `node ${i} dropped it`);
    const carrying = node.app.blocks.filter((b) => b.evidence.length > 0);
    assert.deepEqual(
      carrying.map((b) => b.header.height),
      [jailedAt],
      `node ${i}: only the first evidence was committed`,
    );
  }
});

test('a proposal carrying evidence against a validator already jailed is refused: prevote nil', () => {
  const { h, second } = validator3Jailed(52);
  // The proposal of the next height nobody has reached is held back from replica 0.
  const next = Math.max(...[0, 1, 2].map((i) => h.nodes[i]!.replica.height)) + 1;
  let held: (Message & { kind: 'proposal' }) | null = null;
  h.filter = (_from, to, bytes) => {
    const m = decode(messageCodec, bytes);
    if (to !== 0 || m.kind !== 'proposal' || m.proposal.height !== next) return true;
    held ??= m;
    return false;
  };
  const replica = h.nodes[0]!.replica;
  assert.ok(h.run(() => held !== null && replica.height === next));
  const { proposal, block: original } = held!;
  assert.equal(proposal.round, 0);
  assert.equal(replica.round, 0);
  // Its block with the second evidence in it, signed again by its proposer.
  const block: Block = {
    ...original,
    header: { ...original.header, evidenceHash: evidenceRoot([second]) },
    evidence: [second],
  };
  const hash = blockHashOf(block);
  const set = replica.validators;
  const proposer = set.validators[set.proposer(0)]!;
  const key = h.keys.find((k) => bytesEqual(k.publicKey, proposer.publicKey))!;
  const signature = key.signer.sign(
    SIGN_KIND_CONSENSUS.proposal,
    proposalSignBytes(new Writer(), next, 0, -1, hash),
  );
  const bytes = encode(messageCodec, {
    kind: 'proposal',
    proposal: { ...proposal, blockHash: hash, signature },
    block,
  });
  const before = replica.metrics.badEvidence;
  const prevotes = replica.onMessage('p1', bytes, h.nowMs).flatMap((e) => {
    if (e.kind !== 'broadcast') return [];
    const m = decode(messageCodec, e.bytes);
    return m.kind === 'vote' && m.vote.type === VOTE_TYPE.prevote ? [m.vote] : [];
  });
  assert.equal(replica.metrics.badEvidence, before + 1, 'the block is refused');
  assert.equal(prevotes.length, 1);
  assert.equal(prevotes[0]!.blockHash, null, 'it prevotes nil');
});
