// A proposal closed by its market's settlement (docs/exchange.md, "Governance
// and validators"): it can no longer act, its approvals keep holding their
// room, a later approval changes nothing, and a snapshot keeps all of it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeSnapshot, encodeSnapshot } from '../../src/exchange/index.ts';
import type { Proposal } from '../../src/exchange/state.ts';
import { DecodeError } from '../../src/codec/wire.ts';
import {
  Harness,
  VALIDATORS,
  dailyListingGenesis,
  genesis,
  replacer,
  runUntilSettled,
} from './helpers.ts';

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
  runUntilSettled(h, name);
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

test('a snapshot whose proposal names no market it could name is refused, not run', () => {
  // Two pending proposals, one about all markets and one about a market,
  // each changed the way no execution could leave it.
  const craft = (change: (all: Proposal, one: Proposal) => void): Uint8Array => {
    const h = new Harness(genesis());
    h.block([]);
    const name = h.ex.state.markets[0]!.params.instrument;
    h.one(VALIDATORS[3]!, { kind: 'govPropose', proposalId: 1, proposal: { kind: 'haltAll' } });
    const proposal = { kind: 'haltMarket' as const, instrument: name };
    h.one(VALIDATORS[2]!, { kind: 'govPropose', proposalId: 2, proposal });
    change(h.ex.state.proposals.get(1)!, h.ex.state.proposals.get(2)!);
    return encodeSnapshot(h.ex);
  };
  const refused = (bytes: Uint8Array, why: RegExp): void => {
    assert.throws(() => decodeSnapshot(bytes, { checkInvariants: true }), DecodeError);
    assert.throws(() => decodeSnapshot(bytes, { checkInvariants: true }), why);
  };
  // As written, it restores.
  decodeSnapshot(
    craft(() => {}),
    { checkInvariants: true },
  );
  // Pending about slot 99: the approval that executed it threw (no market there).
  refused(
    craft((_, one) => Object.assign(one, { market: 99 })),
    /a pending proposal names a live market/,
  );
  // A haltMarket naming -1 would halt every market.
  refused(
    craft((_, one) => Object.assign(one, { market: -1 })),
    /not the market of a haltMarket/,
  );
  refused(
    craft((all) => Object.assign(all, { market: 0 })),
    /not the market of a haltAll/,
  );
  // Only settlement closes, and only proposals about its market.
  refused(
    craft((all) => Object.assign(all, { executed: true, closed: true })),
    /only a proposal about a market is closed/,
  );
});
