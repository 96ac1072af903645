// What one Byzantine validator or peer can make an honest replica keep: each
// kind of message it may sign without limit has its own bound.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writer, decode, encode } from '../../src/codec/wire.ts';
import { bytesEqual } from '../../src/lib/bytes.ts';
import { PROPOSALS_AHEAD_PER_PROPOSER_MAX, ROUNDS_AHEAD_MAX } from '../../src/lib/limits.ts';
import { messageCodec, proposalSignBytes } from '../../src/consensus/codec.ts';
import { SIGN_KIND_CONSENSUS } from '../../src/consensus/ports.ts';
import type { Effect, Message } from '../../src/consensus/types.ts';
import { Harness } from './harness.ts';

function persisted(effects: readonly Effect[]): number {
  return effects.filter((e) => e.kind === 'persist').length;
}

/** Runs 4 replicas until replica 0 has heard a proposal of height 2; returns it. */
function runToProposal(seed: number): { h: Harness; proposal: Message & { kind: 'proposal' } } {
  const h = new Harness({ n: 4, seed });
  let proposal: Message | null = null;
  h.filter = (_from, to, bytes) => {
    const m = decode(messageCodec, bytes);
    if (proposal === null && to === 0 && m.kind === 'proposal' && m.proposal.height === 2) {
      proposal = m;
    }
    return true;
  };
  h.startAll();
  assert.ok(h.run(() => proposal !== null));
  // Nothing more is delivered: replica 0 stays in its first round of height 2.
  h.filter = () => false;
  assert.ok(h.run(() => h.nodes[0]!.replica.height === 2));
  assert.ok(proposal !== null && (proposal as Message).kind === 'proposal');
  return { h, proposal: proposal as Message & { kind: 'proposal' } };
}

test('proposals for rounds ahead are bounded per proposer: a faulty proposer cannot make a replica keep and log a largest block for every round it leads', () => {
  const { h, proposal } = runToProposal(41);
  const replica = h.nodes[0]!.replica;
  const set = replica.validators;
  const signerOf = (index: number) =>
    h.keys.find((k) => bytesEqual(k.publicKey, set.validators[index]!.publicKey))!.signer;
  const writer = new Writer();
  // A validator signs its proposal (the same block) for a round it leads.
  const signed = (round: number): Uint8Array => {
    const index = set.proposer(round);
    const p = proposal.proposal;
    const bytes = proposalSignBytes(writer, p.height, round, -1, p.blockHash);
    const signature = signerOf(index).sign(SIGN_KIND_CONSENSUS.proposal, bytes);
    return encode(messageCodec, {
      kind: 'proposal',
      proposal: { ...p, round, polRound: -1, signature },
      block: proposal.block,
    });
  };
  const me = set.indexOf(h.keys[0]!.publicKey);
  let from = replica.round + 1;
  while (set.proposer(from) === me || set.proposer(from + 1) === me) from++;
  const faulty = set.proposer(from);
  assert.notEqual(faulty, set.proposer(from + 1));
  const t = h.nowMs;
  let kept = 0;
  for (let round = from; round <= replica.round + ROUNDS_AHEAD_MAX; round++) {
    if (set.proposer(round) === faulty)
      kept += persisted(replica.onMessage('p9', signed(round), t));
  }
  assert.equal(kept, PROPOSALS_AHEAD_PER_PROPOSER_MAX);
  // Another proposer's proposal for a round ahead is still kept.
  assert.equal(persisted(replica.onMessage('p9', signed(from + 1), t)), 1);
});
