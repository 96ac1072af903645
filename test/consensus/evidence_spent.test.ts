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

/**
 * Sends `second` from validator 3 to replicas 0 to 2 and runs six heights:
 * each drops it (duplicateVote), pools nothing, and the only block carrying
 * evidence is the one at `committedAt`.
 */
function assertDroppedNotCommitted(
  h: Harness,
  second: DuplicateVoteEvidence,
  committedAt: number,
): void {
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
      [committedAt],
      `node ${i}: only the first evidence was committed`,
    );
  }
}

test('evidence against a validator already jailed is neither pooled nor committed: it could change nothing', () => {
  const { h, second, jailedAt } = validator3Jailed(51);
  assertDroppedNotCommitted(h, second, jailedAt);
});

/**
 * Holds back from `replicas` the proposal of the next height nobody has
 * reached, and returns it once they are there, in its first round.
 */
function heldProposals(
  h: Harness,
  replicas: readonly number[],
): { next: number; held: Message & { kind: 'proposal' } } {
  const next = Math.max(...h.nodes.map((node) => node.replica.height)) + 1;
  let held: (Message & { kind: 'proposal' }) | null = null;
  h.filter = (_from, to, bytes) => {
    const m = decode(messageCodec, bytes);
    if (!replicas.includes(to) || m.kind !== 'proposal' || m.proposal.height !== next) return true;
    held ??= m;
    return false;
  };
  assert.ok(
    h.run(() => held !== null && replicas.every((i) => h.nodes[i]!.replica.height === next)),
  );
  assert.equal(held!.proposal.round, 0);
  for (const i of replicas) assert.equal(h.nodes[i]!.replica.round, 0);
  return { next, held: held! };
}

/**
 * The held proposal's block with `evidence` in it, signed again by its
 * proposer, handed to `replica`: its prevote's value, and whether the block
 * was refused for its evidence.
 */
function prevoteOn(
  h: Harness,
  replica: number,
  held: Message & { kind: 'proposal' },
  evidence: DuplicateVoteEvidence[],
): { hash: Uint8Array; prevote: Uint8Array | null; refused: boolean } {
  const { proposal, block: original } = held;
  const block: Block = {
    ...original,
    header: { ...original.header, evidenceHash: evidenceRoot(evidence) },
    evidence,
  };
  const hash = blockHashOf(block);
  const r = h.nodes[replica]!.replica;
  const set = r.validators;
  const proposer = set.validators[set.proposer(0)]!;
  const key = h.keys.find((k) => bytesEqual(k.publicKey, proposer.publicKey))!;
  const signature = key.signer.sign(
    SIGN_KIND_CONSENSUS.proposal,
    proposalSignBytes(new Writer(), proposal.height, 0, -1, hash),
  );
  const bytes = encode(messageCodec, {
    kind: 'proposal',
    proposal: { ...proposal, blockHash: hash, signature },
    block,
  });
  const before = r.metrics.badEvidence;
  const prevotes = r.onMessage('p1', bytes, h.nowMs).flatMap((e) => {
    if (e.kind !== 'broadcast') return [];
    const m = decode(messageCodec, e.bytes);
    return m.kind === 'vote' && m.vote.type === VOTE_TYPE.prevote ? [m.vote] : [];
  });
  assert.equal(prevotes.length, 1, `replica ${replica} prevotes once`);
  return { hash, prevote: prevotes[0]!.blockHash, refused: r.metrics.badEvidence > before };
}

test('a proposal carrying evidence against a validator already jailed is refused: prevote nil', () => {
  const { h, second } = validator3Jailed(52);
  const { held } = heldProposals(h, [0]);
  const { prevote, refused } = prevoteOn(h, 0, held, [second]);
  assert.ok(refused, 'the block is refused');
  assert.equal(prevote, null, 'it prevotes nil');
});

test('a proposal carrying two pieces of evidence against one offender is refused; one piece is accepted', () => {
  const h = new Harness({ n: 4, seed: 53 });
  h.startAll();
  assert.ok(h.run(() => h.minCommitted() >= 3));
  const { next, held } = heldProposals(h, [0, 1, 2]);
  // Two replicas that are not its proposer.
  const [a, b] = [0, 1, 2].filter((i) => {
    const set = h.nodes[i]!.replica.validators;
    return set.indexOf(h.keys[i]!.publicKey) !== set.proposer(0);
  });
  // Validator 3 (still a member) double-signed at two heights: two distinct
  // pieces, which the application would take as one offence.
  const first = equivocation(h, 3, next - 1);
  const second = equivocation(h, 3, next - 2);
  const two = prevoteOn(h, a!, held, [first, second]);
  assert.ok(two.refused, 'the block with both is refused');
  assert.equal(two.prevote, null, 'it prevotes nil');
  const one = prevoteOn(h, b!, held, [first]);
  assert.equal(one.refused, false, 'the block with one is not');
  assert.ok(one.prevote !== null && bytesEqual(one.prevote, one.hash), 'it prevotes for it');
});

/**
 * Four validators whose application never removes anyone (as the exchange
 * never removes its last validator); validator 3 signs two conflicting pairs
 * at one height (rounds 0 and 1), and the first is committed. Returns the
 * second, and the height that committed the first.
 */
function offencePunished(seed: number): {
  h: Harness;
  second: DuplicateVoteEvidence;
  offenceHeight: number;
  committedAt: number;
} {
  const h = new Harness({ n: 4, seed });
  h.startAll();
  assert.ok(h.run(() => h.minCommitted() >= 3));
  const offenceHeight = h.nodes[0]!.replica.height - 1;
  const index = h.nodes[0]!.replica.validators.indexOf(h.keys[3]!.publicKey);
  const first = equivocation(h, 3, offenceHeight, index, 0);
  const second = equivocation(h, 3, offenceHeight, index, 1);
  for (const to of [0, 1, 2]) {
    h.send(3, to, encode(messageCodec, { kind: 'evidence', evidence: first }));
  }
  const carrying = () => h.nodes[0]!.app.blocks.filter((b) => b.evidence.length > 0);
  assert.ok(h.run(() => carrying().length > 0));
  const committedAt = carrying()[0]!.header.height;
  assert.ok(h.run(() => h.minCommitted([0, 1, 2]) >= committedAt + 1));
  for (const i of [0, 1, 2]) {
    assert.ok(
      h.nodes[i]!.replica.nextValidators.indexOf(h.keys[3]!.publicKey) >= 0,
      'still a member',
    );
  }
  return { h, second, offenceHeight, committedAt };
}

test('evidence of an offence already committed is neither pooled nor committed again, though its offender stays', () => {
  const { h, second, committedAt } = offencePunished(54);
  assertDroppedNotCommitted(h, second, committedAt);
});

test('evidence of another height by the same offender is a new offence: still committed', () => {
  const { h, offenceHeight, committedAt } = offencePunished(55);
  const other = equivocation(h, 3, offenceHeight + 1);
  for (const to of [0, 1, 2]) {
    h.send(3, to, encode(messageCodec, { kind: 'evidence', evidence: other }));
  }
  const carrying = () => h.nodes[0]!.app.blocks.filter((b) => b.evidence.length > 0);
  assert.ok(h.run(() => carrying().length === 2));
  assert.equal(carrying()[0]!.header.height, committedAt);
  assert.equal(carrying()[1]!.evidence[0]!.voteA.height, offenceHeight + 1);
});

/** One of replicas 0 to 2 that does not propose round 0 of the current height. */
function notProposer(h: Harness): number {
  return [0, 1, 2].find((i) => {
    const set = h.nodes[i]!.replica.validators;
    return set.indexOf(h.keys[i]!.publicKey) !== set.proposer(0);
  })!;
}

test('a proposal carrying evidence of an offence already committed is refused: prevote nil', () => {
  const { h, second } = offencePunished(56);
  const { held } = heldProposals(h, [0, 1, 2]);
  const { prevote, refused } = prevoteOn(h, notProposer(h), held, [second]);
  assert.ok(refused, 'the block is refused');
  assert.equal(prevote, null, 'it prevotes nil');
});

test('the committed offences outlive a restart: the WAL checkpoint carries them', () => {
  const { h, second } = offencePunished(57);
  for (const i of [0, 1, 2]) {
    h.crash(i);
    h.restart(i);
  }
  const { held } = heldProposals(h, [0, 1, 2]);
  const { prevote, refused } = prevoteOn(h, notProposer(h), held, [second]);
  assert.ok(refused, 'the restarted replica refuses the block');
  assert.equal(prevote, null, 'it prevotes nil');
});
