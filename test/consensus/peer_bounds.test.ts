// What one Byzantine validator or peer can make an honest replica keep: each
// kind of message it may sign without limit has its own bound.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writer, decode, encode } from '../../src/codec/wire.ts';
import { bytesEqual, utf8 } from '../../src/lib/bytes.ts';
import {
  EVIDENCE_PER_OFFENDER_MAX,
  GOSSIP_INTERVAL_MS,
  PROPOSALS_AHEAD_PER_PROPOSER_MAX,
  ROUNDS_AHEAD_MAX,
  VOTE_ROUNDS_AHEAD_PER_VALIDATOR_MAX,
} from '../../src/lib/limits.ts';
import { messageCodec, proposalSignBytes, voteSignBytes } from '../../src/consensus/codec.ts';
import { SIGN_KIND_CONSENSUS } from '../../src/consensus/ports.ts';
import { Replica, makeEvidence } from '../../src/consensus/replica.ts';
import type { Effect, Message, VoteType } from '../../src/consensus/types.ts';
import { VOTE_TYPE } from '../../src/consensus/types.ts';
import { FAST_TIMEOUTS, Harness } from './harness.ts';
import type { MemoVerifier } from './harness.ts';

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

/** Replica 0 of 4 at height 2, nothing delivered any more; signed votes of any validator for it. */
function votesAtHeight2(seed: number): {
  h: Harness;
  vote: (
    validator: number,
    type: VoteType,
    round: number,
    value: number,
    extensionBytes?: number,
    timestampMs?: number,
  ) => Uint8Array;
  me: number;
} {
  const h = new Harness({ n: 4, seed, memoizeVerifier: true });
  h.startAll();
  assert.ok(h.run(() => h.nodes[0]!.replica.height === 2));
  h.filter = () => false;
  const set = h.nodes[0]!.replica.validators;
  const writer = new Writer();
  const vote = (
    validator: number,
    type: VoteType,
    round: number,
    value: number,
    extensionBytes = 8,
    precommitMs = h.nowMs,
  ): Uint8Array => {
    const key = h.keys.find((k) => bytesEqual(k.publicKey, set.validators[validator]!.publicKey))!;
    const blockHash = value === 0 ? null : new Uint8Array(32).fill(value);
    const precommit = type === VOTE_TYPE.precommit;
    const extension =
      precommit && blockHash !== null ? new Uint8Array(extensionBytes).fill(0x41) : EMPTY;
    if (extension.length > 0) extension.set(utf8('ext '), 0); // the test app's extensions start so
    const timestampMs = precommit ? precommitMs : 0;
    const bytes = voteSignBytes(writer, type, 2, round, blockHash, timestampMs, extension);
    const kind = precommit ? SIGN_KIND_CONSENSUS.precommit : SIGN_KIND_CONSENSUS.prevote;
    return encode(messageCodec, {
      kind: 'vote',
      vote: {
        type,
        height: 2,
        round,
        blockHash,
        validatorIndex: validator,
        timestampMs,
        extension,
        signature: key.signer.sign(kind, bytes),
      },
    });
  };
  return { h, vote, me: set.indexOf(h.keys[0]!.publicKey) };
}

/** One validator's flood: every round from `from` to `to`, both types, three values each (extensions near the cap). */
function flood(
  vote: ReturnType<typeof votesAtHeight2>['vote'],
  validator: number,
  from: number,
  to: number,
): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let round = from; round <= to; round++) {
    for (const type of [VOTE_TYPE.prevote, VOTE_TYPE.precommit]) {
      for (const value of [1, 2, 3]) out.push(vote(validator, type, round, value, 4_000));
    }
  }
  return out;
}

test('votes for rounds ahead are bounded per validator: a flood of signed votes for every round in the window costs a few signature checks and log records per gossip period', () => {
  const { h, vote, me } = votesAtHeight2(43);
  const replica = h.nodes[0]!.replica;
  const verifier = h.verifier as MemoVerifier;
  const faulty = me === 3 ? 2 : 3;
  const r = replica.round;
  const messages = flood(vote, faulty, r + 2, r + ROUNDS_AHEAD_MAX);
  const t = h.nowMs;
  let checksBefore = verifier.calls;
  let records = 0;
  for (const m of messages) records += persisted(replica.onMessage('p9', m, t));
  // K rounds, one prevote and one precommit each: the rest is refused before its signature.
  const k = VOTE_ROUNDS_AHEAD_PER_VALIDATOR_MAX;
  assert.equal(verifier.calls - checksBefore, 2 * k);
  assert.equal(records, 2 * k);
  assert.equal(replica.round, r);
  // A gossip period later each slot may move up once.
  checksBefore = verifier.calls;
  records = 0;
  for (const m of messages)
    records += persisted(replica.onMessage('p9', m, t + GOSSIP_INTERVAL_MS));
  assert.equal(verifier.calls - checksBefore, 2 * k);
  assert.equal(records, 2 * k);
  // The next round and those behind it are not limited: all three values of both types count.
  checksBefore = verifier.calls;
  records = 0;
  for (const m of flood(vote, faulty, r + 1, r + 1)) {
    records += persisted(replica.onMessage('p9', m, t + GOSSIP_INTERVAL_MS));
  }
  assert.equal(verifier.calls - checksBefore, 6);
  assert.equal(records, 6);
});

test('an equivocator signing many values, or one value many times, in our round and the next costs a few signature checks and log records per round, not one each', () => {
  const { h, vote, me } = votesAtHeight2(47);
  const replica = h.nodes[0]!.replica;
  const verifier = h.verifier as MemoVerifier;
  const faulty = me === 3 ? 2 : 3;
  const r = replica.round;
  const t = h.nowMs;
  for (const round of [r, r + 1]) {
    const checksBefore = verifier.calls;
    let records = 0;
    // Fifty values of each type, each validly signed: its first three are counted (one and
    // CONFLICTING_VALUES_MAX more), the rest could only be evidence, which the second made.
    for (let value = 1; value <= 50; value++) {
      for (const type of [VOTE_TYPE.prevote, VOTE_TYPE.precommit]) {
        records += persisted(replica.onMessage('p9', vote(faulty, type, round, value, 4_000), t));
      }
    }
    // Each held value signed again at other times: a precommit's time is signed, so each
    // copy is another valid vote, and adds nothing to what its value holds.
    for (let copy = 1; copy <= 50; copy++) {
      for (const value of [1, 2, 3]) {
        records += persisted(
          replica.onMessage(
            'p9',
            vote(faulty, VOTE_TYPE.precommit, round, value, 4_000, t + copy),
            t,
          ),
        );
      }
    }
    assert.equal(verifier.calls - checksBefore, 6, `signature checks in round ${round}`);
    assert.equal(records, 6, `log records in round ${round}`);
  }
  assert.equal(replica.height, 2);
});

test('a replica rebuilds its slots for votes ahead from its log: after a restart the same votes are refused as before', () => {
  const { h, vote, me } = votesAtHeight2(44);
  const faulty = me === 3 ? 2 : 3;
  const r = h.nodes[0]!.replica.round;
  const t = h.nowMs;
  const node = h.nodes[0]!;
  for (const m of flood(vote, faulty, r + 2, r + 40)) {
    for (const e of node.replica.onMessage('p9', m, t))
      if (e.kind === 'persist') node.wal.push(e.record);
  }
  // Every record counts: the harness's crash keeps only what was synced.
  node.syncedLength = node.wal.length;
  h.crash(0);
  h.restart(0);
  const replica = h.nodes[0]!.replica;
  const verifier = h.verifier as MemoVerifier;
  const checksBefore = verifier.calls;
  let records = 0;
  for (const m of flood(vote, faulty, r + 2, r + 40)) {
    records += persisted(replica.onMessage('p9', m, t));
  }
  assert.equal(verifier.calls - checksBefore, 0);
  assert.equal(records, 0);
});

test('a replica behind in rounds still skips to the round f+1 honest validators are in while a Byzantine one floods votes ahead', () => {
  const { h, vote, me } = votesAtHeight2(45);
  const replica = h.nodes[0]!.replica;
  const others = [0, 1, 2, 3].filter((i) => i !== me);
  const [faulty, honestA, honestB] = others as [number, number, number];
  const r = replica.round;
  const target = r + 7;
  let t = h.nowMs;
  const deliver = (m: Uint8Array) => replica.onMessage('p9', m, t);
  // The Byzantine validator floods first, and again each period.
  for (const m of flood(vote, faulty, r + 2, r + ROUNDS_AHEAD_MAX)) deliver(m);
  // Honest A moved through rounds quickly: its slots hold two rounds below the target, taken just now.
  deliver(vote(honestA, VOTE_TYPE.prevote, r + 4, 0));
  deliver(vote(honestA, VOTE_TYPE.prevote, r + 5, 0));
  deliver(vote(honestA, VOTE_TYPE.prevote, target, 0));
  deliver(vote(honestB, VOTE_TYPE.prevote, target, 0));
  // A's vote in the target round came too soon after its others.
  assert.equal(replica.round, r);
  // Each re-sends its current round's votes every gossip period.
  for (let period = 1; period <= 3 && replica.round < target; period++) {
    t += GOSSIP_INTERVAL_MS;
    for (const m of flood(vote, faulty, r + 2, r + ROUNDS_AHEAD_MAX)) deliver(m);
    deliver(vote(honestA, VOTE_TYPE.prevote, target, 0));
    deliver(vote(honestB, VOTE_TYPE.prevote, target, 0));
  }
  assert.equal(replica.round, target);
});

test('replay takes every logged vote ahead, whatever the gossip period now: a restart with a longer one rebuilds the same round', () => {
  const { h, vote, me } = votesAtHeight2(46);
  const node = h.nodes[0]!;
  const [a, b] = [0, 1, 2, 3].filter((i) => i !== me) as [number, number];
  const r = node.replica.round;
  const deliver = (m: Uint8Array, t: number): void => {
    for (const e of node.replica.onMessage('p9', m, t))
      if (e.kind === 'persist') node.wal.push(e.record);
  };
  const t = h.nowMs;
  deliver(vote(a, VOTE_TYPE.prevote, r + 2, 0), t);
  deliver(vote(a, VOTE_TYPE.prevote, r + 3, 0), t);
  // A gossip period later A's lowest slot moves up; with B, f+1 speak in r + 4.
  deliver(vote(a, VOTE_TYPE.prevote, r + 4, 0), t + GOSSIP_INTERVAL_MS);
  deliver(vote(b, VOTE_TYPE.prevote, r + 4, 0), t + GOSSIP_INTERVAL_MS);
  assert.equal(node.replica.round, r + 4);
  // Restarted with a longer gossip period: the log, not the new period, says what was taken.
  const restarted = new Replica(
    { genesis: h.genesis, timeouts: { ...FAST_TIMEOUTS, gossipMs: 5 * GOSSIP_INTERVAL_MS } },
    {
      signer: h.keys[0]!.signer,
      verifier: h.verifier,
      app: node.app,
      blocks: { load: (height) => node.store.get(height) ?? null },
    },
  );
  restarted.start(node.wal.slice(), t + 2 * GOSSIP_INTERVAL_MS);
  assert.equal(restarted.height, 2);
  assert.equal(restarted.round, r + 4);
});
