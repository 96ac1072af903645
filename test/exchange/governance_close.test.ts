// A proposal closed by its market's settlement (docs/exchange.md, "Governance
// and validators"): it can no longer act, its approvals keep holding their
// room, a later approval changes nothing, and a snapshot keeps all of it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeSnapshot, encodeSnapshot } from '../../src/exchange/index.ts';
import { Harness, VALIDATORS, dailyListingGenesis, replacer } from './helpers.ts';

test("a proposal closed by its market's settlement keeps its approvers' room; a later approval is not recorded", () => {
  const h = new Harness(dailyListingGenesis(Date.UTC(2024, 0, 10, 7, 30)));
  h.block([]);
  const future = h.ex.state.markets.find((m) => !m.retired && m.instrument.kind === 'future');
  assert.ok(future !== undefined, 'the listing lists a daily future');
  const name = future.params.instrument;
  // One validator of four: never 2/3, so the proposal stays pending.
  const proposer = VALIDATORS[3]!;
  const proposed = h.one(proposer, {
    kind: 'govPropose',
    proposalId: 7,
    proposal: { kind: 'haltMarket', instrument: name },
  });
  assert.ok(proposed.ok && proposed.actions[0]!.ok, JSON.stringify(proposed, replacer));
  const index = h.ex.state.validators.findIndex(
    (v) =>
      Buffer.from(v.publicKey).toString('hex') === Buffer.from(proposer.publicKey).toString('hex'),
  );
  assert.equal(h.ex.state.validators[index]!.pendingProposals, 1);
  let settled = false;
  for (let i = 0; i < 400 && !settled; i++) {
    settled = h
      .block([], 60_000)
      .events.some((e) => e.type === 'marketSettled' && e.market === name);
  }
  assert.ok(settled, `${name} settled`);
  const p = h.ex.state.proposals.get(7)!;
  assert.deepEqual([p.executed, p.closed], [true, true], 'closed with no effect');
  // Its approval keeps its room: proposals about markets that settle cannot be made without end.
  assert.equal(h.ex.state.validators[index]!.pendingProposals, 1);
  const vote = h.one(VALIDATORS[0]!, { kind: 'govVote', proposalId: 7, approve: true });
  assert.ok(vote.ok && vote.actions[0]!.ok, JSON.stringify(vote, replacer));
  assert.deepEqual(
    h.ex.state.proposals.get(7)!.approvers,
    [index],
    'a later approval is not recorded',
  );
  // A snapshot keeps the close (and the counts derived from it).
  const restored = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
  const back = restored.state.proposals.get(7)!;
  assert.deepEqual([back.executed, back.closed], [true, true]);
  assert.equal(restored.state.validators[index]!.pendingProposals, 1);
  assert.deepEqual(restored.appHash, h.ex.appHash);
});
