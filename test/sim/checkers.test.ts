import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Checkers } from '../../src/sim/index.ts';
import type { Message } from '../../src/consensus/index.ts';

const HASH_A = new Uint8Array(32).fill(0xaa);
const HASH_B = new Uint8Array(32).fill(0xbb);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function prevote(blockHash: Uint8Array | null): Message {
  return {
    kind: 'vote',
    vote: {
      type: 3,
      height: 5,
      round: 1,
      blockHash,
      validatorIndex: 0,
      timestampMs: 0,
      extension: new Uint8Array(0),
      signature: new Uint8Array(64),
    },
  };
}

test('doubleSign: one key signing two values for one (height, round, step)', () => {
  const c = new Checkers(true);
  c.onHonestSigned(0, 0, prevote(HASH_A), 10);
  c.onHonestSigned(0, 0, prevote(HASH_A), 20); // a re-send is fine
  c.onHonestSigned(1, 1, prevote(null), 20); // another key
  assert.equal(c.failed, false);
  c.onHonestSigned(0, 0, prevote(null), 30);
  assert.equal(c.violations[0]!.kind, 'doubleSign');
  assert.ok(c.stop);
});

test('doubleSign keys on the signer: relays of one vote by other nodes are not signing', () => {
  const c = new Checkers(true);
  c.onHonestSigned(0, 0, prevote(HASH_A), 10);
  c.onHonestSigned(0, 1, prevote(HASH_A), 11); // node 1 relays key 0's vote
  c.onHonestSigned(0, 2, prevote(HASH_A), 12);
  assert.equal(c.failed, false);
  c.onHonestSigned(0, 3, prevote(HASH_B), 13); // key 0's signature on another value, wherever seen
  assert.equal(c.violations[0]!.kind, 'doubleSign');
  assert.match(c.violations[0]!.message, /honest key 0 .* node 3/);
});

test('agreement, validity and appHash', () => {
  const c = new Checkers(false);
  c.onReleased({
    kind: 'proposal',
    proposal: {
      height: 1,
      round: 0,
      polRound: -1,
      blockHash: HASH_A,
      signature: new Uint8Array(64),
    },
    block: null as never,
  });
  c.onCommitted(0, 1, 0, hex(HASH_A), 1);
  c.onCommitted(1, 1, 0, hex(HASH_A), 2);
  c.onExecuted(0, 1, HASH_A, 3);
  c.onExecuted(1, 1, HASH_A, 3);
  assert.equal(c.failed, false);
  c.onCommitted(2, 1, 0, hex(HASH_B), 4);
  c.onExecuted(2, 1, HASH_B, 5);
  assert.deepEqual(
    c.violations.map((v) => v.kind),
    ['agreement', 'validity', 'appHash'],
  );
  assert.equal(c.stop, false, 'told not to stop');
});

test('evidence: committed in time, late, or excused by a crash', () => {
  const c = new Checkers(true);
  c.onEvidenceSeen(0, 'e1', 10, 3, 3, 100);
  c.onEvidenceSeen(1, 'e2', 10, 2, 2, 100);
  c.onEvidenceSeen(2, 'e3', 10, 1, 1, 100);
  c.onEvidenceCommitted('e1', 12, 3, 0);
  const crashed = (node: number) => node === 2;
  c.checkEvidence(21, 0, 12, crashed, 1_000);
  assert.equal(c.failed, false, 'the chain has not reached the deadline');
  c.checkEvidence(22, 0, 12, crashed, 1_000);
  assert.equal(c.violations.length, 1);
  assert.match(c.violations[0]!.message, /node 1/);
  assert.deepEqual(c.evidenceCounts, { seen: 3, committed: 1 });
  assert.equal(c.stop, false, 'evidence is not a safety violation');
});

test('evidence against an offender that other committed evidence jailed need not be committed', () => {
  const c = new Checkers(true);
  c.onEvidenceSeen(0, 'e1', 10, 3, 3, 100);
  c.onEvidenceSeen(1, 'e2', 11, 3, 3, 100);
  c.onEvidenceSeen(1, 'e3', 11, 2, -1, 100);
  c.onEvidenceCommitted('e1', 12, 3, 0);
  c.checkEvidence(40, 0, 12, () => false, 1_000);
  assert.equal(c.violations.length, 1, 'e2 is excused; e3 names no known key');
  assert.match(c.violations[0]!.message, /validator 2/);
});

test('evidence is not excused by other evidence against its offender committed only past its bound', () => {
  const c = new Checkers(true);
  c.onEvidenceSeen(0, 'e1', 10, 3, 3, 100);
  c.onEvidenceSeen(0, 'e2', 25, 3, 3, 100);
  // e1's bound: height 22. e2 (seen later) is committed at 30, after it.
  c.onEvidenceCommitted('e2', 30, 3, 0);
  c.checkEvidence(40, 0, 12, () => false, 1_000);
  assert.equal(c.violations.length, 1, 'e1 went unpunished past its bound');
  assert.match(c.violations[0]!.message, /height 10/);
});

test('jailing: the offender of committed evidence is out of the set two heights later', () => {
  const c = new Checkers(true);
  c.onEvidenceCommitted('e1', 12, 3, 0);
  c.onEvidenceCommitted('e1', 13, 3, 0);
  c.onEvidenceCommitted('e2', 12, -1, 0);
  const asked: [number, number][] = [];
  const stillIn = (key: number, height: number): boolean => {
    asked.push([key, height]);
    return true;
  };
  c.checkJailed(13, stillIn, 1_000);
  assert.equal(c.failed, false, 'the set deciding 14 is not known yet');
  c.checkJailed(14, () => false, 1_000);
  assert.equal(c.failed, false, 'removed');
  c.checkJailed(14, stillIn, 1_000);
  assert.deepEqual(asked, [[3, 14]], 'once per evidence, from the height that committed it first');
  assert.equal(c.violations.length, 1);
  assert.match(c.violations[0]!.message, /key 3\b.* height 12\b.* deciding 14/);
});

test('BFT time: a block time that goes back or leaves the honest precommit times is a safety violation', () => {
  const c = new Checkers(true);
  c.onBlockTime(1, 1_000, Infinity, -Infinity, 0);
  c.onBlockTime(2, 1_010, 1_005, 1_020, 0);
  c.onBlockTime(2, 1_010, 1_005, 1_020, 0);
  assert.equal(c.failed, false, 'within the honest times and later than the block before');
  c.onBlockTime(3, 1_010, 1_000, 1_020, 0);
  assert.match(c.violations[0]!.message, /not after 1010/);
  c.onBlockTime(4, 9_999, 1_011, 1_030, 0);
  assert.match(c.violations[1]!.message, /outside the honest precommits' 1011\.\.1030/);
  assert.equal(c.stop, true, 'BFT time is safety');
});

test('evidence against an honest key is a safety violation; against a Byzantine one it is not', () => {
  const c = new Checkers(true, Uint8Array.from([1, 1, 0]));
  c.onEvidenceCommitted('e1', 5, 2, 0);
  c.onEvidenceCommitted('e2', 5, -1, 0);
  assert.equal(c.failed, false, 'key 2 is Byzantine, -1 names no key');
  c.onEvidenceCommitted('e3', 6, 1, 0);
  assert.match(c.violations[0]!.message, /honest validator key 1/);
  assert.equal(c.stop, true, 'false evidence is safety');
});

test('evidence of two votes that do not conflict is a safety violation, whoever it names', () => {
  const vote = {
    type: 3,
    height: 4,
    round: 1,
    blockHash: null,
    validatorIndex: 2,
    timestampMs: 0,
    extension: new Uint8Array(0),
    signature: new Uint8Array(64),
  } as const;
  const c = new Checkers(true, Uint8Array.from([1, 1, 0]));
  c.onEvidenceCommitted('e1', 5, 2, 0, {
    voteA: vote,
    voteB: { ...vote, blockHash: new Uint8Array(32) },
  });
  assert.equal(c.failed, false, 'two values in one round conflict');
  c.onEvidenceCommitted('e2', 5, 2, 0, {
    voteA: vote,
    voteB: { ...vote, round: 2, blockHash: new Uint8Array(32) },
  });
  assert.match(c.violations[0]!.message, /do not conflict/);
});
