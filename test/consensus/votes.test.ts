import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONFLICTING_VALUES_MAX, HeightVotes } from '../../src/consensus/votes.ts';
import { VOTE_TYPE } from '../../src/consensus/types.ts';
import type { Vote } from '../../src/consensus/types.ts';

function prevote(validatorIndex: number, value: number | null): Vote {
  return {
    type: VOTE_TYPE.prevote,
    height: 1,
    round: 0,
    blockHash: value === null ? null : new Uint8Array(32).fill(value),
    validatorIndex,
    timestampMs: 0,
    extension: new Uint8Array(0),
    signature: new Uint8Array(64),
  };
}

test('an equivocator counts once for "any", once for each value it signed, and for at most a bounded number of values', () => {
  const votes = new HeightVotes([10, 10, 10, 10]);
  assert.equal(votes.add(prevote(3, 1)).kind, 'added');
  const second = votes.add(prevote(3, 2));
  assert.ok(second.kind === 'conflict' && second.counted);
  assert.equal(votes.add(prevote(3, 2)).kind, 'duplicate');
  for (let v = 3; v < 3 + CONFLICTING_VALUES_MAX; v++) votes.add(prevote(3, v));
  const round = votes.round(VOTE_TYPE.prevote, 0)!;
  assert.equal(round.powerAny, 10);
  assert.equal(round.conflicting!.get(3)!.length, CONFLICTING_VALUES_MAX);
  const counted = [1, 2, 3, 4, 5].filter((v) => round.power(votes.keyOf(prevote(0, v).blockHash)));
  assert.deepEqual(counted, [1, 2, 3].slice(0, 1 + CONFLICTING_VALUES_MAX));
  assert.equal(round.votesFor(new Uint8Array(32).fill(2)).length, 1);
  assert.equal(round.votesFor(new Uint8Array(32).fill(5)).length, 0);
});

test('a conflicting vote that brings a value to 2f+1 reports the crossing', () => {
  const votes = new HeightVotes([10, 10, 10, 10]);
  votes.add(prevote(0, 1));
  votes.add(prevote(1, 1));
  votes.add(prevote(2, null));
  const r = votes.add(prevote(2, 1));
  assert.ok(r.kind === 'conflict' && r.crossed);
  assert.deepEqual(
    votes
      .round(VOTE_TYPE.prevote, 0)!
      .votesFor(new Uint8Array(32).fill(1))
      .map((v) => v.validatorIndex),
    [0, 1, 2],
  );
});
