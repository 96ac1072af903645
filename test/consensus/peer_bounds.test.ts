// What one Byzantine validator or peer can make an honest replica keep: each
// kind of message it may sign without limit has its own bound.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writer, decode, encode } from '../../src/codec/wire.ts';
import { bytesEqual } from '../../src/lib/bytes.ts';
import {
  EVIDENCE_PER_OFFENDER_MAX,
  PROPOSALS_AHEAD_PER_PROPOSER_MAX,
  ROUNDS_AHEAD_MAX,
} from '../../src/lib/limits.ts';
import { messageCodec, proposalSignBytes, voteSignBytes } from '../../src/consensus/codec.ts';
import { SIGN_KIND_CONSENSUS } from '../../src/consensus/ports.ts';
import { makeEvidence } from '../../src/consensus/replica.ts';
import type { Effect, Message } from '../../src/consensus/types.ts';
import { VOTE_TYPE } from '../../src/consensus/types.ts';
import { Harness } from './harness.ts';

const EMPTY = new Uint8Array(0);

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

test('the evidence pool is bounded per offender: a validator signing any number of conflicting pairs cannot keep out the evidence against another', () => {
  const h = new Harness({ n: 4, seed: 42 });
  h.startAll();
  assert.ok(h.run(() => h.nodes[0]!.replica.height >= 5));
  h.filter = () => false;
  const replica = h.nodes[0]!.replica;
  const set = replica.validators;
  const writer = new Writer();
  const hash = (seed: number): Uint8Array => new Uint8Array(32).fill(seed % 256);
  // Key k's conflicting prevotes at height 2, round `round`.
  const evidence = (k: number, round: number): Uint8Array => {
    const key = h.keys[k]!;
    const vote = (blockHash: Uint8Array) => {
      const bytes = voteSignBytes(writer, VOTE_TYPE.prevote, 2, round, blockHash, 0, EMPTY);
      return {
        type: VOTE_TYPE.prevote,
        height: 2,
        round,
        blockHash,
        validatorIndex: set.indexOf(key.publicKey),
        timestampMs: 0,
        extension: EMPTY,
        signature: key.signer.sign(SIGN_KIND_CONSENSUS.prevote, bytes),
      };
    };
    const e = makeEvidence(vote(hash(1)), vote(hash(2)));
    return encode(messageCodec, { kind: 'evidence', evidence: e });
  };
  const t = h.nowMs;
  assert.equal(replica.pendingEvidence, 0);
  // Validator 1 signs a distinct pair in each of 300 rounds: every one is valid evidence.
  for (let round = 0; round < 300; round++) replica.onMessage('p9', evidence(1, round), t);
  assert.equal(replica.pendingEvidence, EVIDENCE_PER_OFFENDER_MAX);
  // The evidence against validator 2 is still kept.
  replica.onMessage('p9', evidence(2, 0), t);
  assert.equal(replica.pendingEvidence, EVIDENCE_PER_OFFENDER_MAX + 1);
});
