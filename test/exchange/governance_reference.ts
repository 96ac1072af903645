// A reference model of governance and halts, written from docs/exchange.md
// ("Governance and validators", "Validators and slashing", "Rejection codes",
// "A block", "In-block ordering") and docs/transactions.md (govPropose,
// govVote), not from governance.ts: proposals (haltMarket, resumeMarket,
// haltAll, resumeAll) executed at the approval that carries the approvals of
// validators not jailed past 2/3 of the stake of the validators not jailed;
// jailing by evidence (slash, ripe proposals then ripe deposits); what a
// halted market and an emergency halt refuse and allow; the per-validator
// cap on pending approvals. Balances and orders are kept only as far as the
// flows need them: orders never cross (bids below the index, asks above), so
// every accepted placement rests and no cash moves but by faucet, withdraw,
// transfer and credited deposits.
//
// The seeded driver at the bottom has 4–7 validators of unequal stake, some
// Byzantine (voting twice, on unknown or executed proposals, proposing
// duplicate ids and unknown markets, voting against), traders placing,
// amending, cancelling, withdrawing, transferring, drawing the faucet and
// managing an agent while halts come and go, and evidence jailing validators.
// `checkRun` compares after every block every result code, the governance
// events, each proposal, validator and market halt flag, balances and open
// orders, with the invariants on and a node restored from a snapshot.

import assert from 'node:assert/strict';
import { Prng } from '../../src/lib/prng.ts';
import { Exchange, decodeSnapshot, encodeSnapshot } from '../../src/exchange/index.ts';
import type {
  ActionResult,
  Block,
  BlockResult,
  ExchangeEvent,
  Genesis,
} from '../../src/exchange/index.ts';
import type { Action, BatchableAction, SignedTx } from '../../src/exchange/tx/types.ts';
import { bytesKey } from '../../src/exchange/keys.ts';
import { ORACLE, USDC, dailyListingGenesis, genesis, key, limit, replacer } from './helpers.ts';
import type { Key } from './helpers.ts';

/** docs/exchange.md: "each validator may approve at most … (1,000) proposals not executed". */
export const PENDING_PER_VALIDATOR = 1_000;
const FAUCET_MAX = 1_000_000n * USDC;
const SLASH_PPM = 50_000n;
export const MARKETS = ['BTC-PERPETUAL', 'ETH-PERPETUAL'] as const;
/** An instrument no genesis lists: proposals naming it are refused. */
const NO_MARKET = 'XRP-PERPETUAL';

type ProposalKind = 'haltMarket' | 'resumeMarket' | 'haltAll' | 'resumeAll';

interface RefValidator {
  readonly key: Key;
  stake: bigint;
  jailed: boolean;
}

interface RefProposal {
  readonly kind: ProposalKind;
  /** The market's name, or null for the kinds about every market. */
  readonly market: string | null;
  readonly approvers: number[];
  executed: boolean;
  /** Closed by its market's settlement: its approvals keep their room, and later ones are not recorded. */
  closed: boolean;
}

interface RefDeposit {
  readonly trader: number;
  readonly subaccount: number;
  readonly amountQuote: bigint;
  readonly attesters: number[];
  credited: boolean;
}

interface RefOrder {
  readonly trader: number;
  readonly market: number;
  readonly priceTicks: number;
  sizeLots: number;
}

interface RefTrader {
  readonly key: Key;
  readonly agent: Key;
  /** Per subaccount (0 and 1). */
  readonly cash: bigint[];
  drawn: bigint;
  agentActive: boolean;
}

/** A result reduced to what the model predicts. */
export interface Outcome {
  ok: boolean;
  code?: string;
  actions: { kind: string; ok: boolean; code?: string; status?: string; count?: number }[];
}

export type GovEvent =
  | { type: 'validatorJailed'; validator: string; offenceHeight: number; burnedStake: bigint }
  | { type: 'marketHalted' | 'marketResumed'; market: string }
  | { type: 'depositCredited'; amountQuote: bigint }
  | { type: 'marketListed' | 'marketSettled'; market: string };

/** A live market: its name, its slot (taken from the exchange when listed) and its halt. */
interface RefMarket {
  readonly name: string;
  readonly slot: number;
  halted: boolean;
}

/** Who signs a transaction in the driver's terms. */
export type Signer =
  { role: 'validator'; index: number } | { role: 'trader'; index: number; agent?: boolean };

export interface DriverTx {
  readonly signer: Signer;
  readonly subaccount: number;
  readonly action: Action;
}

export class GovModel {
  readonly validators: RefValidator[];
  /** Live markets: the perpetuals, then what the listing schedule lists (settled ones leave). */
  readonly markets: RefMarket[] = MARKETS.map((name, slot) => ({ name, slot, halted: false }));
  readonly proposals = new Map<number, RefProposal>();
  readonly deposits = new Map<number, RefDeposit>();
  readonly traders: RefTrader[];
  /** Validators whose address is open (by a validator action of theirs alone, not in a batch). */
  readonly opened = new Set<number>();
  /** Open orders by id (ids are taken from the exchange's accepted results). */
  readonly orders = new Map<number, RefOrder>();

  constructor(validators: readonly { key: Key; stake: bigint }[], traders: readonly Key[]) {
    this.validators = validators.map((v) => ({ key: v.key, stake: v.stake, jailed: false }));
    this.traders = traders.map((k, i) => ({
      key: k,
      agent: key(`gov-agent-${i}`),
      cash: [0n, 0n],
      drawn: 0n,
      agentActive: false,
    }));
  }

  activeStake(): bigint {
    let s = 0n;
    for (const v of this.validators) if (!v.jailed) s += v.stake;
    return s;
  }

  /** Stake of the approvers not jailed. */
  counted(approvers: readonly number[]): bigint {
    let s = 0n;
    for (const i of approvers) if (!this.validators[i]!.jailed) s += this.validators[i]!.stake;
    return s;
  }

  /** Pending proposals closed by their market's settlement. */
  closedBySettlement = 0;

  /** Times an approval count stood at exactly 2/3 of the active stake (which is not enough). */
  exactlyTwoThirds = 0;

  /** More than 2/3 of the active stake; exactly 2/3 is not enough. */
  carries(stake: bigint): boolean {
    if (3n * stake === 2n * this.activeStake()) this.exactlyTwoThirds++;
    return 3n * stake > 2n * this.activeStake();
  }

  pendingApprovals(v: number): number {
    let n = 0;
    for (const p of this.proposals.values()) {
      if ((!p.executed || p.closed) && p.approvers.includes(v)) n++;
    }
    return n;
  }

  emergency(): boolean {
    return this.markets.length > 0 && this.markets.every((m) => m.halted);
  }

  market(name: string): RefMarket | undefined {
    return this.markets.find((m) => m.name === name);
  }

  /** A dated market settled (an input): pending proposals about it close, with no effect. */
  settle(name: string): void {
    const at = this.markets.findIndex((m) => m.name === name);
    assert.ok(at >= 0, `settled ${name} is no live market of the model`);
    this.markets.splice(at, 1);
    for (const p of this.proposals.values()) {
      if (p.market === name && !p.executed) {
        p.executed = true;
        p.closed = true;
        this.closedBySettlement++;
      }
    }
  }

  /** A market listed (an input) opens halted during an emergency halt: `marketHalted` after `marketListed`. */
  list(name: string, slot: number, emergency: boolean, events: GovEvent[]): void {
    this.markets.push({ name, slot, halted: emergency });
    this.markets.sort((a, b) => a.slot - b.slot);
    if (emergency) events.push({ type: 'marketHalted', market: name });
  }

  private execute(p: RefProposal, events: GovEvent[]): void {
    p.executed = true;
    const halt = p.kind === 'haltMarket' || p.kind === 'haltAll';
    const targets = p.market !== null ? [this.market(p.market)!] : this.markets;
    for (const m of targets) {
      if (m.halted === halt) continue;
      m.halted = halt;
      events.push({ type: halt ? 'marketHalted' : 'marketResumed', market: m.name });
    }
  }

  private approve(p: RefProposal, v: number, events: GovEvent[]): void {
    if (p.closed) return;
    p.approvers.push(v);
    p.approvers.sort((a, b) => a - b);
    if (!p.executed && this.carries(this.counted(p.approvers))) this.execute(p, events);
  }

  /** At the cap, an approval is refused unless it executes its proposal (which takes no room). */
  private overCap(v: number, p: RefProposal | undefined): boolean {
    if (this.pendingApprovals(v) < PENDING_PER_VALIDATOR) return false;
    if (p !== undefined && p.executed) return false;
    const before = p === undefined ? 0n : this.counted(p.approvers);
    return !this.carries(before + this.validators[v]!.stake);
  }

  /** Evidence, before anything else in the block. */
  evidence(offenders: readonly number[], height: number, events: GovEvent[]): number {
    let jailed = 0;
    for (const i of offenders) {
      const v = this.validators[i]!;
      const active = this.validators.filter((x) => !x.jailed).length;
      if (v.jailed || active <= 1) continue;
      const burned = (v.stake * SLASH_PPM) / 1_000_000n;
      v.stake -= burned;
      v.jailed = true;
      jailed++;
      events.push({
        type: 'validatorJailed',
        validator: Buffer.from(v.key.publicKey).toString('hex'),
        offenceHeight: height,
        burnedStake: burned,
      });
    }
    if (jailed > 0) {
      const ids = [...this.proposals.keys()].sort((a, b) => a - b);
      for (const id of ids) {
        const p = this.proposals.get(id)!;
        if (!p.executed && this.carries(this.counted(p.approvers))) this.execute(p, events);
      }
      // One group per id in these flows, and the ids' bytes sort as their numbers.
      const deps = [...this.deposits.keys()].sort((a, b) => a - b);
      for (const id of deps) {
        const d = this.deposits.get(id)!;
        if (!d.credited && this.carries(this.counted(d.attesters))) this.credit(d, events);
      }
    }
    return jailed;
  }

  private credit(d: RefDeposit, events: GovEvent[]): void {
    d.credited = true;
    this.traders[d.trader]!.cash[d.subaccount]! += d.amountQuote;
    events.push({ type: 'depositCredited', amountQuote: d.amountQuote });
  }

  private validatorOf(s: Signer): number {
    return s.role === 'validator' ? s.index : -1;
  }

  /** One transaction, as the exchange must run it; `orderIdOf(k)` is the id the exchange gave action k's order. */
  tx(t: DriverTx, events: GovEvent[], orderIdOf: (k: number) => number | undefined): Outcome {
    const s = t.signer;
    if (s.role === 'trader' && s.agent === true) {
      const tr = this.traders[s.index]!;
      if (!tr.agentActive) return { ok: false, code: 'NotPermitted', actions: [] };
    }
    if (s.role === 'validator' && !this.opened.has(s.index)) {
      // "Opening an address": a validator's own action signed with its key (one, not a batch).
      if (t.action.kind === 'batch') return { ok: false, code: 'UnknownAccount', actions: [] };
      this.opened.add(s.index);
    }
    const list: BatchableAction[] = t.action.kind === 'batch' ? t.action.actions : [t.action];
    const actions = list.map((a, k) => this.action(t, a, events, () => orderIdOf(k)));
    return { ok: true, actions };
  }

  private action(
    t: DriverTx,
    a: BatchableAction,
    events: GovEvent[],
    orderId: () => number | undefined,
  ): Outcome['actions'][number] {
    const no = (code: string) => ({ kind: a.kind, ok: false, code });
    const yes = { kind: a.kind, ok: true };
    const s = t.signer;
    const trader = s.role === 'trader' ? this.traders[s.index]! : undefined;
    const sub = t.subaccount;
    switch (a.kind) {
      case 'govPropose': {
        const v = this.validatorOf(s);
        if (v < 0 || this.validators[v]!.jailed) return no('NotPermitted');
        if (this.proposals.has(a.proposalId)) return no('DuplicateProposal');
        if (this.overCap(v, undefined)) return no('TooManyProposals');
        let market: string | null = null;
        // Risk parameters and fee schedules are not part of this model
        // (governance_risk.test.ts and governance_fees.test.ts test them).
        if (a.proposal.kind === 'setMarketRisk' || a.proposal.kind === 'setFeeTiers') {
          throw new Error(`${a.proposal.kind} is not modelled`);
        }
        if (a.proposal.kind === 'haltMarket' || a.proposal.kind === 'resumeMarket') {
          market = a.proposal.instrument;
          if (this.market(market) === undefined) return no('UnknownInstrument');
        }
        const p: RefProposal = {
          kind: a.proposal.kind,
          market,
          approvers: [],
          executed: false,
          closed: false,
        };
        this.proposals.set(a.proposalId, p);
        this.approve(p, v, events);
        return yes;
      }
      case 'govVote': {
        const v = this.validatorOf(s);
        if (v < 0 || this.validators[v]!.jailed) return no('NotPermitted');
        const p = this.proposals.get(a.proposalId);
        if (p === undefined) return no('UnknownProposal');
        if (p.approvers.includes(v)) return no('DuplicateAttestation');
        if (!a.approve) return yes;
        if (this.overCap(v, p)) return no('TooManyProposals');
        this.approve(p, v, events);
        return yes;
      }
      case 'attestDeposit': {
        const v = this.validatorOf(s);
        if (v < 0 || this.validators[v]!.jailed) return no('NotPermitted');
        const id = a.depositId[0]!;
        let d = this.deposits.get(id);
        if (d?.credited === true) return no('AlreadyCredited');
        if (d?.attesters.includes(v) === true) return no('DuplicateAttestation');
        if (d === undefined) {
          const trader = this.traders.findIndex(
            (x) => bytesKey(x.key.address) === bytesKey(a.account),
          );
          d = {
            trader,
            subaccount: a.subaccount,
            amountQuote: a.amountQuote,
            attesters: [],
            credited: false,
          };
          this.deposits.set(id, d);
        }
        d.attesters.push(v);
        d.attesters.sort((x, y) => x - y);
        // Accepted and credited during an emergency halt too.
        if (this.carries(this.counted(d.attesters))) this.credit(d, events);
        return yes;
      }
      case 'placeOrder': {
        const m = MARKETS.indexOf(a.instrument as (typeof MARKETS)[number]);
        if (m < 0) return no('UnknownInstrument');
        if (this.market(a.instrument)!.halted) return no('MarketHalted');
        // An id the exchange did not give shows as a difference of results.
        const id = orderId() ?? -1;
        this.orders.set(id, {
          trader: s.index,
          market: m,
          priceTicks: a.priceTicks!,
          sizeLots: a.sizeLots,
        });
        return { ...yes, status: 'rested' };
      }
      case 'amend': {
        const m = MARKETS.indexOf(a.instrument as (typeof MARKETS)[number]);
        if (m < 0) return no('UnknownInstrument');
        if (this.market(a.instrument)!.halted) return no('MarketHalted');
        const o = this.orders.get(a.orderId);
        if (o === undefined || o.trader !== s.index || o.market !== m || sub !== 0) {
          return no('UnknownOrder');
        }
        o.sizeLots = a.sizeLots!;
        return { ...yes, status: 'rested' };
      }
      case 'cancel': {
        // Cancels go on on a halted market and in an emergency halt.
        const m = MARKETS.indexOf(a.instrument as (typeof MARKETS)[number]);
        if (m < 0) return no('UnknownInstrument');
        const o = a.orderId === undefined ? undefined : this.orders.get(a.orderId);
        if (o === undefined || o.trader !== s.index || o.market !== m || sub !== 0) {
          return no('UnknownOrder');
        }
        this.orders.delete(a.orderId!);
        return { ...yes, count: 1 };
      }
      case 'cancelAll': {
        let count = 0;
        for (const [id, o] of this.orders) {
          if (o.trader !== s.index || sub !== 0) continue;
          if (a.instrument !== undefined && MARKETS[o.market] !== a.instrument) continue;
          this.orders.delete(id);
          count++;
        }
        return { ...yes, count };
      }
      case 'withdraw': {
        // Accepted in an emergency halt, from free collateral as always (the flows keep margin tiny).
        if (a.amountQuote > trader!.cash[sub]!) return no('InsufficientFunds');
        trader!.cash[sub]! -= a.amountQuote;
        return yes;
      }
      case 'transfer': {
        if (this.emergency()) return no('ExchangeHalted');
        if (a.amountQuote > trader!.cash[a.fromSubaccount]!) return no('InsufficientFunds');
        trader!.cash[a.fromSubaccount]! -= a.amountQuote;
        trader!.cash[a.toSubaccount]! += a.amountQuote;
        return yes;
      }
      case 'faucet': {
        if (this.emergency()) return no('ExchangeHalted');
        if (trader!.drawn + a.amountQuote > FAUCET_MAX) return no('FaucetCapExceeded');
        trader!.drawn += a.amountQuote;
        trader!.cash[sub]! += a.amountQuote;
        return yes;
      }
      case 'registerAgent': {
        if (this.emergency()) return no('ExchangeHalted');
        trader!.agentActive = true;
        return yes;
      }
      case 'revokeAgent': {
        // A leaked key can be revoked in an emergency halt.
        const mine = bytesKey(a.agentPublicKey) === bytesKey(trader!.agent.publicKey);
        if (!mine || !trader!.agentActive) return no('UnknownAgent');
        trader!.agentActive = false;
        return yes;
      }
      default:
        throw new Error(`the model does not cover ${(a as { kind: string }).kind}`);
    }
  }
}

/** docs/exchange.md, "In-block ordering": cancels, post-only placements, the rest; a batch takes its latest class. */
export function classOf(a: Action): number {
  if (a.kind === 'cancel' || a.kind === 'cancelAll') return 0;
  if (a.kind === 'placeOrder') return a.timeInForce === 'postOnly' ? 1 : 2;
  if (a.kind === 'batch') return Math.max(...a.actions.map(classOf));
  return 2;
}

// --- the driver ---------------------------------------------------------------------------------

export interface Stats {
  codes: Map<string, number>;
  events: Map<string, number>;
  /** Blocks that ended in emergency halt. */
  emergencyBlocks: number;
  /** Approvals that stood at exactly 2/3 of the active stake. */
  exactlyTwoThirds: number;
  /** Blocks in which a trading action was refused after a governance action of the same block halted. */
  haltedMidBlock: number;
  restores: number;
  /** Dated markets settled, and markets listed during an emergency halt. */
  settled: number;
  listedHalted: number;
  /** Proposals about a dated market closed by its settlement. */
  closedBySettlement: number;
}

export function newStats(): Stats {
  return {
    codes: new Map(),
    events: new Map(),
    emergencyBlocks: 0,
    exactlyTwoThirds: 0,
    haltedMidBlock: 0,
    restores: 0,
    settled: 0,
    listedHalted: 0,
    closedBySettlement: 0,
  };
}

function bump(m: Map<string, number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

export interface RunOptions {
  /** One validator (the last) proposes junk until it reaches the pending cap. */
  flood?: boolean;
  /**
   * Genesis with a daily listing (dated futures and options), starting two
   * hours before an expiry; blocks jump hours now and then, so that markets
   * settle, proposals about them close and new ones list, in emergency halts too.
   */
  listing?: boolean;
}

interface Run {
  readonly rng: Prng;
  readonly model: GovModel;
  readonly ex: { current: Exchange };
  readonly g: Genesis;
  readonly byzantine: ReadonlySet<number>;
  timeMs: number;
  nonce: number;
  nextProposalId: number;
  nextDepositId: number;
  /** Deposits announced on the collateral chain, not yet attested by every validator. */
  readonly announced: { id: number; trader: number; subaccount: number; amountQuote: bigint }[];
}

const TRADER_COUNT = 3;

/** Monday 2 March 2026, 06:00 UTC: two hours before the day's expiry. */
const LISTING_START_MS = Date.UTC(2026, 2, 2, 6);

export function setupGenesis(
  rng: Prng,
  listing: boolean,
): { g: Genesis; validators: { key: Key; stake: bigint }[] } {
  const n = 4 + rng.int(4);
  // Half the runs with stakes of a few round units, where approvals of exactly
  // 2/3 of the active stake happen (and must not execute); half with odd ones,
  // whose slashing rounds.
  const round = rng.chance(1, 2);
  const validators = Array.from({ length: n }, (_, i) => ({
    key: key(`gov-validator-${i}`),
    stake: round
      ? BigInt(1 + rng.int(3)) * 100_000n * USDC
      : BigInt(1 + rng.int(9)) * 100_000n * USDC + BigInt(rng.int(1_000)),
  }));
  const base = listing ? dailyListingGenesis(LISTING_START_MS) : genesis();
  const g = genesis({
    ...base,
    validators: validators.map((v) => ({ publicKey: v.key.publicKey, stake: v.stake })),
    // No price monitoring: the flows never trade, and auctions are not what is checked here.
    markets: base.markets.map((m) => ({ ...m, triggers: [] })),
  });
  return { g, validators };
}

function signed(run: Run, t: DriverTx): SignedTx {
  const m = run.model;
  const s = t.signer;
  const k = s.role === 'validator' ? m.validators[s.index]!.key : m.traders[s.index]!.key;
  const signer = s.role === 'trader' && s.agent === true ? m.traders[s.index]!.agent : k;
  return {
    chainId: run.g.chainId,
    signer: signer.publicKey,
    account: k.address,
    subaccount: t.subaccount,
    nonce: run.timeMs + ++run.nonce,
    action: t.action,
    signature: new Uint8Array(64),
  };
}

function pick<T>(rng: Prng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)]!;
}

function randomProposal(
  run: Run,
): { kind: 'haltAll' | 'resumeAll' } | { kind: 'haltMarket' | 'resumeMarket'; instrument: string } {
  const r = run.rng;
  const m = run.model;
  const roll = r.int(10);
  // Lean towards what changes something: resume when halted, halt when trading.
  if (roll < 3) return { kind: m.emergency() ? 'resumeAll' : 'haltAll' };
  if (roll < 4) return { kind: r.chance(1, 2) ? 'haltAll' : 'resumeAll' };
  // The perpetuals mostly, a listed market now and then.
  const market = r.chance(2, 3) ? m.markets[r.int(2)]! : pick(r, m.markets);
  const kind = market.halted ? 'resumeMarket' : 'haltMarket';
  return {
    kind: r.chance(4, 5) ? kind : r.chance(1, 2) ? 'haltMarket' : 'resumeMarket',
    instrument: market.name,
  };
}

function governanceTxs(run: Run): DriverTx[] {
  const r = run.rng;
  const m = run.model;
  const out: DriverTx[] = [];
  const v = (index: number, action: Action): void => {
    out.push({ signer: { role: 'validator', index }, subaccount: 0, action });
  };
  const n = m.validators.length;
  if (r.chance(1, 3)) {
    const proposer = r.int(n);
    v(proposer, {
      kind: 'govPropose',
      proposalId: run.nextProposalId++,
      proposal: randomProposal(run),
    });
  }
  // The most recent pending proposals (not the flood's thousand).
  const pending = [...m.proposals.entries()]
    .filter(([, p]) => !p.executed)
    .map(([id]) => id)
    .sort((a, b) => b - a)
    .slice(0, 8);
  for (let i = 0; i < 1 + r.int(3) && pending.length > 0; i++) {
    const voter = r.int(n);
    v(voter, { kind: 'govVote', proposalId: pick(r, pending), approve: !r.chance(1, 8) });
  }
  // Byzantine behaviour.
  for (const b of run.byzantine) {
    if (!r.chance(1, 3)) continue;
    const roll = r.int(8);
    const ids = [...m.proposals.keys()];
    const any = ids.length > 0 ? pick(r, ids) : 1;
    if (roll === 0) {
      // Twice in one block: the second is a duplicate.
      v(b, { kind: 'govVote', proposalId: any, approve: true });
      v(b, { kind: 'govVote', proposalId: any, approve: true });
    } else if (roll === 1) {
      v(b, {
        kind: 'govVote',
        proposalId: run.nextProposalId + 1_000 + r.int(1_000),
        approve: true,
      });
    } else if (roll === 2) {
      const executed = ids.filter((id) => m.proposals.get(id)!.executed);
      if (executed.length > 0)
        v(b, { kind: 'govVote', proposalId: pick(r, executed), approve: true });
    } else if (roll === 3) {
      v(b, { kind: 'govPropose', proposalId: any, proposal: { kind: 'haltAll' } });
    } else if (roll === 4) {
      v(b, {
        kind: 'govPropose',
        proposalId: run.nextProposalId++,
        proposal: { kind: 'haltMarket', instrument: NO_MARKET },
      });
    } else if (roll === 5) {
      v(b, { kind: 'govVote', proposalId: any, approve: false });
    } else if (roll === 6) {
      // A batch of votes and a proposal.
      v(b, {
        kind: 'batch',
        actions: [
          { kind: 'govVote', proposalId: any, approve: true },
          { kind: 'govPropose', proposalId: run.nextProposalId++, proposal: randomProposal(run) },
        ],
      });
    } else {
      v(b, { kind: 'govPropose', proposalId: run.nextProposalId++, proposal: randomProposal(run) });
    }
  }
  // A trader is no validator.
  if (r.chance(1, 20) && m.proposals.size > 0) {
    out.push({
      signer: { role: 'trader', index: r.int(TRADER_COUNT) },
      subaccount: 0,
      action: { kind: 'govVote', proposalId: pick(r, [...m.proposals.keys()]), approve: true },
    });
  }
  // Deposits: announced, then attested by validators (every one, in time).
  if (r.chance(1, 6)) {
    run.announced.push({
      id: run.nextDepositId++,
      trader: r.int(TRADER_COUNT),
      subaccount: r.int(2),
      amountQuote: BigInt(1 + r.int(1_000)) * USDC,
    });
  }
  for (let i = run.announced.length - 1; i >= 0; i--) {
    const d = run.announced[i]!;
    if (m.deposits.get(d.id)?.credited === true && r.chance(1, 2)) {
      run.announced.splice(i, 1);
      continue;
    }
    if (!r.chance(1, 3)) continue;
    const att = r.int(n);
    v(att, {
      kind: 'attestDeposit',
      depositId: new Uint8Array(32).fill(d.id),
      account: m.traders[d.trader]!.key.address,
      subaccount: d.subaccount,
      amountQuote: d.amountQuote,
    });
  }
  return out;
}

function orderPrice(r: Prng, market: number, buy: boolean): number {
  const mid = market === 0 ? 500_000 : 300_000;
  const off = Math.floor(mid / 50) + r.int(Math.floor(mid / 50));
  return buy ? mid - off : mid + off;
}

function traderTxs(run: Run): DriverTx[] {
  const r = run.rng;
  const m = run.model;
  const out: DriverTx[] = [];
  const count = r.int(7);
  for (let i = 0; i < count; i++) {
    const t = r.int(TRADER_COUNT);
    const tr = m.traders[t]!;
    const mine = [...m.orders.entries()].filter(([, o]) => o.trader === t);
    const push = (action: Action, subaccount = 0, agent = false): void => {
      out.push({ signer: { role: 'trader', index: t, agent }, subaccount, action });
    };
    const place = (postOnly: boolean): Action => {
      const market = r.int(MARKETS.length);
      const buy = r.chance(1, 2);
      return limit(
        MARKETS[market]!,
        buy ? 'buy' : 'sell',
        orderPrice(r, market, buy),
        2 + r.int(20),
        {
          timeInForce: postOnly ? 'postOnly' : 'GTC',
        },
      );
    };
    const roll = r.int(20);
    if (roll < 5) {
      if (mine.length < 30) push(place(r.chance(1, 3)));
    } else if (roll < 7) {
      const [id, o] = mine.length > 0 ? pick(r, mine) : [999_999, { market: 0 }];
      push({ kind: 'cancel', instrument: MARKETS[o.market]!, orderId: id });
    } else if (roll < 8) {
      push(
        r.chance(1, 2)
          ? { kind: 'cancelAll' }
          : { kind: 'cancelAll', instrument: pick(r, MARKETS) },
      );
    } else if (roll < 10) {
      const [id, o] = mine.length > 0 ? pick(r, mine) : [999_999, { market: 0, sizeLots: 5 }];
      push({
        kind: 'amend',
        instrument: MARKETS[o.market]!,
        orderId: id,
        sizeLots: Math.max(1, o.sizeLots - 1),
      });
    } else if (roll < 12) {
      const sub = r.int(2);
      const cash = tr.cash[sub]!;
      if (r.chance(1, 6))
        push({ kind: 'withdraw', amountQuote: cash + 1n, destination: 'out' }, sub);
      else if (cash > 10_000n * USDC) {
        push(
          { kind: 'withdraw', amountQuote: BigInt(1 + r.int(1_000)) * USDC, destination: 'out' },
          sub,
        );
      }
    } else if (roll < 14) {
      const from = r.int(2);
      const cash = tr.cash[from]!;
      const amountQuote =
        r.chance(1, 6) || cash < 10_000n * USDC ? cash + 1n : BigInt(1 + r.int(1_000)) * USDC;
      push({ kind: 'transfer', fromSubaccount: from, toSubaccount: 1 - from, amountQuote }, from);
    } else if (roll < 15) {
      const amountQuote = r.chance(1, 5) ? 900_000n * USDC : BigInt(1 + r.int(20_000)) * USDC;
      push({ kind: 'faucet', amountQuote }, r.int(2));
    } else if (roll < 16) {
      if (tr.agentActive && r.chance(1, 2)) {
        push({ kind: 'revokeAgent', agentPublicKey: tr.agent.publicKey });
      } else if (!tr.agentActive) {
        push({ kind: 'registerAgent', agentPublicKey: tr.agent.publicKey, expiresAtMs: 4e12 });
      } else {
        push({ kind: 'revokeAgent', agentPublicKey: key('nobody').publicKey });
      }
    } else if (roll < 18) {
      // The agent trades (refused as a whole once revoked).
      if (mine.length < 30) push(place(false), 0, true);
    } else {
      // Cancel then place, in one batch (the batch runs with the placements).
      const actions: BatchableAction[] = [];
      if (mine.length > 0) {
        const [id, o] = pick(r, mine);
        actions.push({ kind: 'cancel', instrument: MARKETS[o.market]!, orderId: id });
      }
      actions.push(place(false) as BatchableAction);
      push({ kind: 'batch', actions });
    }
  }
  return out;
}

function reduce(r: BlockResult['results'][number]): Outcome {
  const out: Outcome = { ok: r.ok, actions: [] };
  if (!r.ok) out.code = r.code!;
  for (const a of r.actions as ActionResult[]) {
    const x: Outcome['actions'][number] = { kind: a.kind, ok: a.ok };
    if (!a.ok) x.code = a.code;
    else {
      if (a.order !== undefined) x.status = a.order.status;
      if (a.count !== undefined && (a.kind === 'cancel' || a.kind === 'cancelAll'))
        x.count = a.count;
    }
    out.actions.push(x);
  }
  return out;
}

function govEvents(events: readonly ExchangeEvent[]): GovEvent[] {
  const out: GovEvent[] = [];
  for (const e of events) {
    if (e.type === 'validatorJailed') {
      out.push({
        type: e.type,
        validator: Buffer.from(e.validator).toString('hex'),
        offenceHeight: e.offenceHeight,
        burnedStake: e.burnedStake,
      });
    } else if (e.type === 'marketHalted' || e.type === 'marketResumed') {
      out.push({ type: e.type, market: e.market });
    } else if (e.type === 'depositCredited') {
      out.push({ type: e.type, amountQuote: e.amountQuote });
    } else if (e.type === 'marketListed' || e.type === 'marketSettled') {
      out.push({ type: e.type, market: e.market });
    }
  }
  return out;
}

function json(x: unknown): unknown {
  return JSON.parse(JSON.stringify(x, replacer));
}

function compareState(ex: Exchange, m: GovModel, where: string): void {
  const s = ex.state;
  const live = s.markets.filter((x) => !x.retired).map((x) => x.params.instrument);
  assert.deepEqual(
    live,
    m.markets.map((x) => x.name),
    `${where}: live markets`,
  );
  for (const x of m.markets) {
    const got = s.marketByName.get(x.name)!;
    assert.equal(got.halted, x.halted, `${where}: ${x.name} halted`);
    assert.equal(got.index, x.slot, `${where}: ${x.name} slot`);
  }
  assert.equal(s.totalStake, m.activeStake(), `${where}: active stake`);
  m.validators.forEach((v, i) => {
    const got = s.validators[i]!;
    assert.equal(got.jailed, v.jailed, `${where}: validator ${i} jailed`);
    assert.equal(got.stake, v.stake, `${where}: validator ${i} stake`);
    assert.equal(got.pendingProposals, m.pendingApprovals(i), `${where}: validator ${i} pending`);
  });
  assert.equal(s.proposals.size, m.proposals.size, `${where}: proposal count`);
  for (const [id, p] of m.proposals) {
    const got = s.proposals.get(id);
    assert.ok(got !== undefined, `${where}: proposal ${id} missing`);
    assert.deepEqual(
      {
        kind: got.kind,
        executed: got.executed,
        closed: got.closed,
        approvers: [...got.approvers],
      },
      { kind: p.kind, executed: p.executed, closed: p.closed, approvers: p.approvers },
      `${where}: proposal ${id}`,
    );
    const live = p.market === null ? undefined : m.market(p.market);
    if (p.market === null) assert.equal(got.market, -1, `${where}: proposal ${id} market`);
    else if (live !== undefined)
      assert.equal(got.market, live.slot, `${where}: proposal ${id} slot`);
  }
  m.traders.forEach((t, i) => {
    const principal = s.principals.get(bytesKey(t.key.address));
    for (const sub of [0, 1]) {
      const cash = principal?.subaccounts.get(sub)?.cashQuote ?? 0n;
      assert.equal(cash, t.cash[sub], `${where}: trader ${i}/${sub} cash`);
    }
  });
  const open = [...s.orders.keys()].sort((a, b) => a - b);
  assert.deepEqual(
    open,
    [...m.orders.keys()].sort((a, b) => a - b),
    `${where}: open orders`,
  );
}

/**
 * One seeded run: a setup block funding the traders, then `blocks` random
 * blocks. Before each block a snapshot is taken and restored; the restored
 * node must compute the same block (the run goes on with it now and then).
 */
export function checkRun(seed: number, blocks: number, stats: Stats, o: RunOptions = {}): void {
  const rng = new Prng(seed);
  const { g, validators } = setupGenesis(rng, o.listing === true);
  const traders = Array.from({ length: TRADER_COUNT }, (_, i) => key(`gov-trader-${i}`));
  const model = new GovModel(validators, traders);
  const n = validators.length;
  const byzantine = new Set<number>([n - 1]);
  if (rng.chance(1, 2)) byzantine.add(n - 2);
  const run: Run = {
    rng,
    model,
    ex: { current: new Exchange(g, { checkInvariants: true }) },
    g,
    byzantine,
    timeMs: g.genesisTimeMs,
    nonce: 0,
    nextProposalId: 1 + rng.int(5),
    nextDepositId: 1,
    announced: [],
  };

  const runBlock = (txs: DriverTx[], offenders: number[], where: string, dtMs = 1_000): void => {
    const ex = run.ex.current;
    run.timeMs += dtMs;
    const height = ex.state.height + 1;
    const signedTxs = txs.map((t) => signed(run, t));
    const block: Block = {
      height,
      timeMs: run.timeMs,
      proposer: validators[0]!.key.publicKey,
      txs: signedTxs,
      oracle: ORACLE,
      ...(offenders.length > 0
        ? {
            evidence: offenders.map((i) => ({
              publicKey: validators[i]!.key.publicKey,
              height: height - 1,
            })),
          }
        : {}),
    };
    const restored = decodeSnapshot(encodeSnapshot(ex), { checkInvariants: true });
    assert.deepEqual(restored.appHash, ex.appHash, `${where}: restored appHash`);
    const got = ex.finalizeBlock(block);
    const again = restored.finalizeBlock(block);
    assert.deepEqual(again, got, `${where}: the restored node's block`);
    assert.deepEqual(ex.digestBytes(), ex.digestFromScratch(), `${where}: incremental digest`);

    // The model, in the block's order.
    const events: GovEvent[] = [];
    model.evidence(offenders, height - 1, events);
    // Settlements and listings are the schedule's (inputs here): what governance
    // owes them is checked, closing proposals and opening halted in an emergency.
    let emergencyAtListing: boolean | undefined;
    for (const e of got.events) {
      if (e.type === 'marketSettled') {
        events.push({ type: e.type, market: e.market });
        model.settle(e.market);
        stats.settled++;
      } else if (e.type === 'marketListed') {
        events.push({ type: e.type, market: e.market });
        emergencyAtListing ??= model.emergency();
        model.list(
          e.market,
          ex.state.marketByName.get(e.market)!.index,
          emergencyAtListing,
          events,
        );
        if (emergencyAtListing) stats.listedHalted++;
      }
    }
    const order = txs
      .map((t, i) => ({ i, c: classOf(t.action) }))
      .sort((a, b) => a.c - b.c || a.i - b.i)
      .map((x) => x.i);
    const want: Outcome[] = new Array(txs.length);
    let sawHalt = false;
    for (const i of order) {
      const r = got.results[i]!;
      const before = events.length;
      want[i] = model.tx(txs[i]!, events, (k) => {
        const a = r.actions[k];
        return a !== undefined && a.ok && a.order !== undefined ? a.order.orderId : undefined;
      });
      if (events.slice(before).some((e) => e.type === 'marketHalted')) sawHalt = true;
      else if (sawHalt && want[i]!.actions.some((a) => a.code === 'MarketHalted')) {
        stats.haltedMidBlock++;
        sawHalt = false;
      }
    }
    const gotOutcomes = got.results.map(reduce);
    for (let i = 0; i < txs.length; i++) {
      assert.deepEqual(
        json(gotOutcomes[i]),
        json(want[i]),
        `${where}: tx ${i} ${JSON.stringify(txs[i]!.action, replacer)}`,
      );
      const o = gotOutcomes[i]!;
      if (!o.ok) bump(stats.codes, `tx:${o.code}`);
      for (const a of o.actions) bump(stats.codes, `${a.kind}:${a.ok ? 'ok' : a.code}`);
    }
    assert.deepEqual(json(govEvents(got.events)), json(events), `${where}: events`);
    for (const e of events) bump(stats.events, e.type);
    compareState(ex, model, where);
    if (model.emergency()) stats.emergencyBlocks++;
    if (rng.chance(1, 4)) {
      run.ex.current = restored;
      stats.restores++;
    }
  };

  // Setup: each trader draws from the faucet on subaccount 0; all validators
  // but the last open their address (a vote on no proposal), so that their
  // batches are accepted; the last opens it later, or has its first batch refused.
  const setup: DriverTx[] = traders.map((_, i) => ({
    signer: { role: 'trader', index: i },
    subaccount: 0,
    action: { kind: 'faucet', amountQuote: 200_000n * USDC },
  }));
  for (let i = 0; i < n - 1; i++) {
    setup.push({
      signer: { role: 'validator', index: i },
      subaccount: 0,
      action: { kind: 'govVote', proposalId: 0, approve: false },
    });
  }
  runBlock(setup, [], `seed ${seed} setup`);
  if (o.flood === true) flood(run, runBlock, seed);
  const exactBefore = model.exactlyTwoThirds;
  for (let b = 0; b < blocks; b++) {
    const txs = [...governanceTxs(run), ...traderTxs(run)];
    // Shuffle the arrival order: the in-block ordering must not depend on it beyond its classes.
    for (let i = txs.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [txs[i], txs[j]] = [txs[j]!, txs[i]!];
    }
    const offenders: number[] = [];
    if (rng.chance(1, 25)) {
      // Mostly the Byzantine, now and then an honest one, twice in a block now and then.
      const who = rng.chance(2, 3) ? pick(rng, [...byzantine]) : rng.int(n);
      offenders.push(who);
      if (rng.chance(1, 4)) offenders.push(rng.int(n));
    }
    // With a listing, an hour or three passes now and then.
    const dtMs = o.listing === true && rng.chance(1, 12) ? (1 + rng.int(3)) * 3_600_000 : 1_000;
    runBlock(txs, offenders, `seed ${seed} block ${b}`, dtMs);
  }
  stats.exactlyTwoThirds += model.exactlyTwoThirds - exactBefore;
  stats.closedBySettlement += model.closedBySettlement;
}

/**
 * The smallest validator proposes until it holds PENDING_PER_VALIDATOR
 * pending approvals (in batches of 64), is refused the next one, then the
 * others execute some of them, which gives its room back.
 */
function flood(
  run: Run,
  runBlock: (txs: DriverTx[], offenders: number[], where: string) => void,
  seed: number,
): void {
  const m = run.model;
  // The validator of least stake: alone, never more than 2/3.
  let low = 0;
  m.validators.forEach((v, i) => {
    // The last validator's address is not open yet: a batch cannot open it.
    if (i < m.validators.length - 1 && v.stake < m.validators[low]!.stake) low = i;
  });
  const proposeBatch = (count: number): DriverTx => ({
    signer: { role: 'validator', index: low },
    subaccount: 0,
    action: {
      kind: 'batch',
      actions: Array.from({ length: count }, () => ({
        kind: 'govPropose' as const,
        proposalId: run.nextProposalId++,
        proposal: { kind: 'haltMarket' as const, instrument: MARKETS[1] },
      })),
    },
  });
  let left = PENDING_PER_VALIDATOR + 3;
  let k = 0;
  while (left > 0) {
    const txs: DriverTx[] = [];
    for (let i = 0; i < 8 && left > 0; i++) {
      const c = Math.min(64, left);
      txs.push(proposeBatch(c));
      left -= c;
    }
    runBlock(txs, [], `seed ${seed} flood ${k++}`);
  }
}
