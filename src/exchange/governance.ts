// govPropose and govVote: validators halt and resume markets. A proposal
// executes once validators holding more than 2/3 of stake approved it (the
// proposer approves by proposing). On a halted market new orders and amends
// are refused; cancels and funding go on, liquidations there wait for it to resume. Cost: O(validators).
// applyEvidence takes consensus evidence (docs/exchange.md, "Validators and
// slashing"): the double-signer is jailed (its attestations and votes are
// refused from this block on), slashPpm of its stake is burned, and its voting
// power goes to 0 in the block's validator updates; then the pending proposals
// and deposits the remaining approvals carry past 2/3 of the smaller stake
// take effect (executeRipeProposals, attest_deposit.ts creditRipeDeposits).
// Cost: O(offences + validators), and after a jailing O((proposals + pending
// deposits) × validators).
// While every market is halted (haltAll, or each one halted) the exchange is
// in emergency halt: besides orders and amends, transfers, the faucet and new
// agents are refused (ExchangeHalted; see refusedInHalt). Cancels,
// withdrawals (from free collateral, as always), deposit attestations, agent
// revocations and governance go on: users can reduce risk and leave, money
// already sent on the collateral chain is not stranded, a leaked key can be
// revoked, and the validators can resume.

import { mulDiv } from '../lib/int.ts';
import {
  AMOUNT_QUOTE_MAX,
  PROPOSALS_MAX,
  PROPOSALS_PENDING_PER_VALIDATOR_MAX,
} from '../lib/limits.ts';
import type { Ctx } from './context.ts';
import { noMarketNamed } from './errors.ts';
import type { FeeTier, MarketRisk } from './genesis.ts';
import {
  GenesisError,
  checkFeeTiers,
  checkRisk,
  feeTiersOf,
  riskOf,
  slashPpmOf,
  withRisk,
} from './genesis.ts';
import { bytesKey } from './keys.ts';
import type { ActionResult, ExchangeEvent, ValidatorUpdate } from './results.ts';
import type { ExchangeState, MarketState, Proposal, ValidatorState } from './state.ts';
import type { FeeTierValues, GovPropose, GovVote, RiskValues } from './tx/types.ts';
import { PPM_BIG } from './units.ts';

/**
 * Every live market is halted. A settled market's free slot is no market:
 * governance does not halt it, so counting it would end the halt. O(markets).
 */
export function inEmergencyHalt(state: ExchangeState): boolean {
  let live = 0;
  for (const m of state.markets) {
    if (m.retired) continue;
    if (!m.halted) return false;
    live++;
  }
  return live > 0;
}

/** The refusal of an action an emergency halt stops, else null. */
export function refusedInHalt(
  state: ExchangeState,
  kind: 'transfer' | 'faucet' | 'registerAgent',
): ActionResult | null {
  if (!inEmergencyHalt(state)) return null;
  const message = 'emergency halt: only cancels, withdrawals and deposits go on';
  return { ok: false, kind, code: 'ExchangeHalted', message };
}

/** Committed evidence as the exchange takes it: the offender by key, and the height it double-signed at. */
export interface Offence {
  readonly publicKey: Uint8Array;
  readonly height: number;
}

/** The offender's stake if it is a validator, else undefined (the caller refuses the block). */
export function offender(state: ExchangeState, o: Offence): ValidatorState | undefined {
  return state.validatorByKey.get(bytesKey(o.publicKey));
}

/**
 * Jails each offender once. A validator already jailed is left as it is (a
 * second offence burns nothing more: it is out of the set and its stake can
 * only be unbonded), and the last validator not jailed is never jailed, since
 * consensus may not be left without a set.
 */
export function applyEvidence(
  state: ExchangeState,
  offences: readonly Offence[],
  events: ExchangeEvent[],
): ValidatorUpdate[] {
  const updates: ValidatorUpdate[] = [];
  for (const o of offences) {
    const validator = offender(state, o);
    if (validator === undefined || validator.jailed || activeCount(state) <= 1) continue;
    const burnedStake = jail(state, validator);
    updates.push({ publicKey: validator.publicKey, power: 0 });
    events.push({
      type: 'validatorJailed',
      validator: validator.publicKey,
      offenceHeight: o.height,
      burnedStake,
    });
  }
  return updates;
}

/** Jails and slashes (rounding the burn down); returns the stake burned. */
export function jail(state: ExchangeState, validator: ValidatorState): bigint {
  const burned = mulDiv(validator.stake, BigInt(slashPpmOf(state.genesis)), PPM_BIG, 'floor');
  state.totalStake -= validator.stake;
  validator.stake -= burned;
  validator.jailed = true;
  validator.jailedHeight = state.height;
  state.validatorsDirty = true;
  return burned;
}

/**
 * The stake of the approvers (or attesters) not jailed: what counts toward a
 * 2/3 threshold. A jailed validator's stake has left totalStake, so its
 * earlier approval must leave the sum too; counted, it would let a
 * validator approve, get itself jailed and lower the honest stake a change
 * needs below 2/3 of the active stake. O(approvers).
 */
export function activeApprovalStake(state: ExchangeState, approvers: readonly number[]): bigint {
  let stake = 0n;
  for (const i of approvers) {
    const v = state.validators[i]!;
    if (!v.jailed) stake += v.stake;
  }
  return stake;
}

function activeCount(state: ExchangeState): number {
  let n = 0;
  for (const v of state.validators) if (!v.jailed) n++;
  return n;
}

function activeValidator(ctx: Ctx): number {
  const v = ctx.state.validatorByKey.get(ctx.signerKey);
  if (v === undefined || v.jailed) return -1;
  return ctx.state.validators.indexOf(v);
}

/**
 * Rebuilds each validator's counts of pending deposits it attested and of
 * proposals not executed it approved (derived; after a restore). O(pending
 * deposits × attesters + proposals × approvers).
 */
export function countPending(state: ExchangeState): void {
  for (const v of state.validators) {
    v.pendingDeposits = 0;
    v.pendingProposals = 0;
  }
  for (const d of state.deposits.values()) {
    for (const i of d.attesters) state.validators[i]!.pendingDeposits++;
  }
  for (const p of state.proposals.values()) {
    if (p.executed && !p.closed) continue;
    for (const i of p.approvers) state.validators[i]!.pendingProposals++;
  }
}

/** Marks a proposal executed: its approvals no longer hold room. */
export function closeProposal(state: ExchangeState, p: Proposal): void {
  if (p.executed) return;
  p.executed = true;
  for (const i of p.approvers) state.validators[i]!.pendingProposals--;
  state.markProposal(p);
}

/**
 * Closes a pending proposal whose market settled (listing.ts), with no
 * effect. Its approvals keep holding their room: given back, a validator
 * could propose about markets that settle soon without end (1,000 a day),
 * each closed proposal staying in the state, until PROPOSALS_MAX refused
 * every proposal, an honest haltAll included.
 */
export function closeWithoutEffect(state: ExchangeState, p: Proposal): void {
  if (p.executed) return;
  p.executed = true;
  p.closed = true;
  state.markProposal(p);
}

/**
 * An approval that would leave the proposal pending, by a validator already
 * approving PROPOSALS_PENDING_PER_VALIDATOR_MAX pending ones, is refused: a
 * proposal that never gathers 2/3 of stake stays in the state for good.
 */
function overPendingCap(state: ExchangeState, validator: number, p: Proposal | null): boolean {
  const v = state.validators[validator]!;
  if (v.pendingProposals < PROPOSALS_PENDING_PER_VALIDATOR_MAX) return false;
  if (p !== null && p.executed) return false;
  const approved = p === null ? 0n : activeApprovalStake(state, p.approvers);
  return !state.isSupermajority(approved + v.stake);
}

function tooManyProposals(kind: 'govPropose' | 'govVote', message: string): ActionResult {
  return { ok: false, kind, code: 'TooManyProposals', message };
}

/**
 * A setMarketRisk proposal's values become its market's (validated when
 * proposed, against parameters governance cannot change). From here on in
 * the block every check reads them: orders and amends after it, this
 * block's liquidation scan. Every holder of the market is marked, so the
 * scan looks at each in full: its slack memo (margin.ts, liquidationSlack)
 * was taken at the maintenance before, and one that a raise left below
 * maintenance is liquidated in this block (on a halted market, once it
 * resumes). Resting orders stay: they reserve margin by the new values at
 * the next check that counts them, as after a move of the mark.
 */
function setMarketRisk(state: ExchangeState, p: Proposal, events: ExchangeEvent[]): void {
  const m = state.markets[p.market]!;
  if (m.retired) return;
  m.setRisk(p.risk!);
  m.dirty = true;
  for (const a of m.holders) state.markAccount(a);
  events.push({ type: 'marketRiskChanged', market: m.params.instrument });
}

/**
 * A setFeeTiers proposal's schedule (validated when proposed, by the rules
 * genesis applies to its own) becomes the one in force: every fill from here
 * on in the block is charged by it, and the fill guard's bounds are its
 * (state.ts setFeeTiers). Fees are not margin: no account's margin or
 * liquidation slack moves, so none is marked. A resting order is charged
 * by the schedule in force when it fills. Its tiers go by each account's
 * lifetime volume as before: an account moves tier only with the boundaries.
 */
function setFeeTiers(state: ExchangeState, p: Proposal, events: ExchangeEvent[]): void {
  state.setFeeTiers(p.feeTiers!);
  events.push({ type: 'feeTiersChanged' });
}

function execute(state: ExchangeState, p: Proposal, events: ExchangeEvent[]): void {
  closeProposal(state, p);
  if (p.kind === 'setMarketRisk') return setMarketRisk(state, p, events);
  if (p.kind === 'setFeeTiers') return setFeeTiers(state, p, events);
  const halt = p.kind === 'haltMarket' || p.kind === 'haltAll';
  const markets = p.market >= 0 ? [state.markets[p.market]!] : state.markets;
  for (const m of markets) {
    if (m.retired || m.halted === halt) continue;
    // An expired market waits halted for its settlement price (listing.ts): resuming it would open it.
    if (!halt && m.listed && m.expiryMs <= state.timeMs) continue;
    m.halted = halt;
    m.dirty = true;
    // Liquidations skipped while halted are looked at again, whether or not its mark moves.
    if (!halt) m.liquidationBacklog = true;
    events.push({ type: halt ? 'marketHalted' : 'marketResumed', market: m.params.instrument });
  }
}

/**
 * After a jailing (applyEvidence): a pending proposal whose approvers not
 * jailed now hold more than 2/3 of the smaller active stake executes here, in
 * ascending id: no approval may come to do it, every active validator may
 * have approved it already. O(proposals × validators), once per jailing.
 */
export function executeRipeProposals(state: ExchangeState, events: ExchangeEvent[]): void {
  const ids = [...state.proposals.keys()].sort((x, y) => x - y);
  for (const id of ids) {
    const p = state.proposals.get(id)!;
    if (!p.executed && state.isSupermajority(activeApprovalStake(state, p.approvers))) {
      execute(state, p, events);
    }
  }
}

function approve(ctx: Ctx, p: Proposal, validator: number): void {
  // Closed by its market's settlement: an approval changes nothing, and is
  // not recorded (it would hold room, as the approvals before the close do).
  if (p.closed) return;
  const state = ctx.state;
  p.approvers.push(validator);
  p.approvers.sort((x, y) => x - y);
  p.stake += state.validators[validator]!.stake;
  if (!p.executed) state.validators[validator]!.pendingProposals++;
  state.markProposal(p);
  if (!p.executed && state.isSupermajority(activeApprovalStake(state, p.approvers))) {
    execute(state, p, ctx.events);
  }
}

function invalidRisk(message: string): ActionResult {
  return { ok: false, kind: 'govPropose', code: 'InvalidRiskParams', message };
}

/**
 * A setMarketRisk proposal's values held to the rules genesis applies to a
 * market (genesis.ts checkRisk, with the market's other parameters: the
 * liquidation fee at most maintenance), amounts within what a transaction
 * carries; an option's margin is by scenario, so its margin fields are unused.
 * Checked here, when proposed: what they are checked against never changes.
 */
function checkProposedRisk(m: MarketState, risk: RiskValues): ActionResult | null {
  if (m.instrument.kind === 'option') {
    return invalidRisk(`${m.params.instrument}: an option is margined by scenario, not by these`);
  }
  try {
    checkRisk(withRisk(m.params, risk), 'risk');
  } catch (e) {
    if (e instanceof GenesisError) return invalidRisk(e.message);
    throw e;
  }
  for (const [name, x] of [
    ['imfStepQuote', risk.imfStepQuote],
    ['liquidationQuoteMaxPerBlock', risk.liquidationQuoteMaxPerBlock],
  ] as const) {
    if (x > AMOUNT_QUOTE_MAX) return invalidRisk(`risk.${name}: at most AMOUNT_QUOTE_MAX`);
  }
  return null;
}

/**
 * A setFeeTiers proposal's schedule held to the rules genesis applies to its
 * own (genesis.ts checkFeeTiers), volumes within what a transaction carries.
 * None depends on state, so the transaction's checks (tx/validate.ts) apply
 * them too; here they hold for any caller of the exchange.
 */
function checkProposedFeeTiers(tiers: readonly FeeTierValues[]): ActionResult | null {
  const refuse = (message: string): ActionResult => ({
    ok: false,
    kind: 'govPropose',
    code: 'InvalidFeeTiers',
    message,
  });
  try {
    checkFeeTiers(tiers, 'tiers');
  } catch (e) {
    if (e instanceof GenesisError) return refuse(e.message);
    throw e;
  }
  for (const [i, t] of tiers.entries()) {
    if (t.volumeQuoteMin > AMOUNT_QUOTE_MAX) {
      return refuse(`tiers[${i}].volumeQuoteMin: at most AMOUNT_QUOTE_MAX`);
    }
  }
  return null;
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
  if (state.proposals.size >= PROPOSALS_MAX) {
    return tooManyProposals('govPropose', `at most ${PROPOSALS_MAX} proposals`);
  }
  if (overPendingCap(state, validator, null)) {
    const max = PROPOSALS_PENDING_PER_VALIDATOR_MAX;
    return tooManyProposals('govPropose', `at most ${max} pending proposals approved`);
  }
  let market = -1;
  let risk: MarketRisk | null = null;
  let feeTiers: FeeTier[] | null = null;
  const proposal = a.proposal;
  if (proposal.kind === 'setFeeTiers') {
    const refused = checkProposedFeeTiers(proposal.tiers);
    if (refused !== null) return refused;
    // The values alone, as new objects (the action's are the caller's).
    feeTiers = feeTiersOf(proposal.tiers);
  }
  if (
    proposal.kind === 'haltMarket' ||
    proposal.kind === 'resumeMarket' ||
    proposal.kind === 'setMarketRisk'
  ) {
    const m = state.marketByName.get(proposal.instrument);
    if (m === undefined) {
      return {
        ok: false,
        kind: 'govPropose',
        code: 'UnknownInstrument',
        message: noMarketNamed(proposal.instrument),
      };
    }
    market = m.index;
    if (proposal.kind === 'setMarketRisk') {
      const refused = checkProposedRisk(m, proposal.risk);
      if (refused !== null) return refused;
      // The values alone, as a new object (the action's may carry other keys, and is the caller's).
      risk = riskOf(proposal.risk);
    }
  }
  const p: Proposal = {
    proposalId: a.proposalId,
    kind: proposal.kind,
    market,
    risk,
    feeTiers,
    approvers: [],
    stake: 0n,
    executed: false,
    closed: false,
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
  if (!a.approve) return { ok: true, kind: 'govVote' };
  if (overPendingCap(state, validator, p)) {
    const max = PROPOSALS_PENDING_PER_VALIDATOR_MAX;
    return tooManyProposals('govVote', `at most ${max} pending proposals approved`);
  }
  approve(ctx, p, validator);
  return { ok: true, kind: 'govVote' };
}
