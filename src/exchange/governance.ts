// govPropose and govVote: validators halt and resume markets. A proposal
// executes once validators holding more than 2/3 of stake approved it (the
// proposer approves by proposing). On a halted market new orders and amends
// are refused; cancels and funding go on, liquidations there wait for it to resume. Cost: O(validators).
// While every market is halted (haltAll, or each one halted) the exchange is
// in emergency halt: besides orders and amends, transfers, the faucet and new
// agents are refused (ExchangeHalted; see refusedInHalt). Cancels,
// withdrawals (from free collateral, as always), deposit attestations, agent
// revocations and governance go on: users can reduce risk and leave, money
// already sent on the collateral chain is not stranded, a leaked key can be
// revoked, and the validators can resume.
// jail() is the hook for consensus evidence: a jailed validator's
// attestations and votes are refused.

import type { Ctx } from './context.ts';
import type { ActionResult, ExchangeEvent } from './results.ts';
import type { ExchangeState, Proposal, ValidatorState } from './state.ts';
import type { GovPropose, GovVote } from './tx/types.ts';

/** Every market is halted. O(markets). */
export function inEmergencyHalt(state: ExchangeState): boolean {
  return state.markets.length > 0 && state.markets.every((m) => m.halted);
}

/** The refusal of an action an emergency halt stops, else null. */
export function refusedInHalt(
  ctx: Ctx,
  kind: 'transfer' | 'faucet' | 'registerAgent',
): ActionResult | null {
  if (!inEmergencyHalt(ctx.state)) return null;
  const message = 'emergency halt: only cancels, withdrawals and deposits go on';
  return { ok: false, kind, code: 'ExchangeHalted', message };
}

export function jail(state: ExchangeState, validator: ValidatorState): void {
  validator.jailed = true;
  state.validatorsDirty = true;
}

function activeValidator(ctx: Ctx): number {
  const v = ctx.state.validatorByKey.get(ctx.signerKey);
  if (v === undefined || v.jailed) return -1;
  return ctx.state.validators.indexOf(v);
}

function execute(state: ExchangeState, p: Proposal, events: ExchangeEvent[]): void {
  p.executed = true;
  const halt = p.kind === 'haltMarket' || p.kind === 'haltAll';
  const markets = p.market >= 0 ? [state.markets[p.market]!] : state.markets;
  for (const m of markets) {
    if (m.halted === halt) continue;
    m.halted = halt;
    m.dirty = true;
    events.push({ type: halt ? 'marketHalted' : 'marketResumed', market: m.params.instrument });
  }
}

function approve(ctx: Ctx, p: Proposal, validator: number): void {
  const state = ctx.state;
  p.approvers.push(validator);
  p.approvers.sort((x, y) => x - y);
  p.stake += state.validators[validator]!.stake;
  state.markProposal(p);
  if (!p.executed && state.isSupermajority(p.stake)) execute(state, p, ctx.events);
}

export function govPropose(ctx: Ctx, a: GovPropose): ActionResult {
  const state = ctx.state;
  const validator = activeValidator(ctx);
  if (validator < 0) {
    return {
      ok: false,
      kind: 'govPropose',
      code: 'NotPermitted',
      message: 'not an active validator',
    };
  }
  if (state.proposals.has(a.proposalId)) {
    return { ok: false, kind: 'govPropose', code: 'DuplicateProposal', message: `${a.proposalId}` };
  }
  let market = -1;
  if (a.proposal.kind === 'haltMarket' || a.proposal.kind === 'resumeMarket') {
    const m = state.marketByName.get(a.proposal.instrument);
    if (m === undefined) {
      return {
        ok: false,
        kind: 'govPropose',
        code: 'UnknownInstrument',
        message: a.proposal.instrument,
      };
    }
    market = m.index;
  }
  const p: Proposal = {
    proposalId: a.proposalId,
    kind: a.proposal.kind,
    market,
    approvers: [],
    stake: 0n,
    executed: false,
    leaf: null,
    dirty: false,
  };
  state.proposals.set(a.proposalId, p);
  approve(ctx, p, validator);
  return { ok: true, kind: 'govPropose' };
}

export function govVote(ctx: Ctx, a: GovVote): ActionResult {
  const state = ctx.state;
  const validator = activeValidator(ctx);
  if (validator < 0) {
    return { ok: false, kind: 'govVote', code: 'NotPermitted', message: 'not an active validator' };
  }
  const p = state.proposals.get(a.proposalId);
  if (p === undefined) {
    return { ok: false, kind: 'govVote', code: 'UnknownProposal', message: `${a.proposalId}` };
  }
  if (p.approvers.includes(validator)) {
    return {
      ok: false,
      kind: 'govVote',
      code: 'DuplicateAttestation',
      message: 'already approved',
    };
  }
  if (a.approve) approve(ctx, p, validator);
  return { ok: true, kind: 'govVote' };
}
