// Governance and halts against a reference model (governance_reference.ts):
// seeded flows with validators of unequal stake, some Byzantine, evidence
// jailing them, and traders trading, moving money and managing agents while
// halts come and go. Every result code, governance event, proposal,
// validator, halt flag, balance and open order must equal the model's after
// every block, with the invariants on and a restored node computing the same.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkRun, newStats } from './governance_reference.ts';

test('governance equals the reference model, block by block, restored or not', () => {
  const stats = newStats();
  for (let seed = 1; seed <= 6; seed++) {
    checkRun(seed, 120, stats, { flood: seed === 1, listing: seed % 2 === 0 });
  }
  const seen = [...stats.codes.keys()];
  for (const code of [
    'govPropose:ok',
    'govPropose:DuplicateProposal',
    'govPropose:UnknownInstrument',
    'govPropose:NotPermitted',
    'govPropose:TooManyProposals',
    'govVote:ok',
    'govVote:UnknownProposal',
    'govVote:DuplicateAttestation',
    'govVote:NotPermitted',
    'govVote:TooManyProposals',
    'attestDeposit:ok',
    'attestDeposit:AlreadyCredited',
    'placeOrder:MarketHalted',
    'amend:MarketHalted',
    'cancel:ok',
    'transfer:ExchangeHalted',
    'faucet:ExchangeHalted',
    'registerAgent:ExchangeHalted',
    'revokeAgent:ok',
    'withdraw:ok',
    'tx:NotPermitted',
  ]) {
    assert.ok(seen.includes(code), `no ${code} in the flows: ${seen.join(' ')}`);
  }
  for (const e of ['validatorJailed', 'marketHalted', 'marketResumed', 'depositCredited']) {
    assert.ok((stats.events.get(e) ?? 0) > 0, `no ${e} event`);
  }
  assert.ok(stats.emergencyBlocks > 20, `only ${stats.emergencyBlocks} blocks in emergency halt`);
  assert.ok(stats.exactlyTwoThirds > 0, 'no approvals at exactly 2/3 of the stake');
  assert.ok(stats.haltedMidBlock > 0, 'no order refused after a halt earlier in its block');
  assert.ok(stats.settled > 0, 'no dated market settled');
  assert.ok(stats.listedHalted > 0, 'no market listed during an emergency halt');
  assert.ok(stats.closedBySettlement > 0, 'no pending proposal closed by its market settling');
  assert.ok(stats.restores > 20, 'the runs went on with restored nodes');
});
