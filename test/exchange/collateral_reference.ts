// A reference model of the collateral paths, written from docs/exchange.md
// ("Accounts and collateral", "Validators and slashing", "Governance and
// validators", "Rejection codes", "Invariants") rather than from the code:
// deposit attestations grouped by their whole content, the 2/3-of-active-stake
// credit, spent ids, each validator's share of PENDING_DEPOSITS_MAX, jailing
// (and the credits a jailing ripens), the faucet cap, withdrawals and
// transfers from free collateral and their pause while the accounts below
// zero lack more than the insurance fund holds. Plain bigints and arrays.
//
// Trading is not modelled: the model takes each order's fills from the
// exchange's result and moves cash and positions by them, and takes what the
// end-of-block liquidations did to the accounts they name from the state. The
// seeded driver at the bottom (`runCollateralModel`) builds blocks of
// attestations (honest and Byzantine), jailings, faucet draws, withdrawals and
// transfers racing leveraged trades while the index moves, and compares, after
// every block, every result code, the credits, the pending groups, the spent
// ids, the validators, every balance, position and resting size, and the
// conservation identity; it snapshots and restores the exchange mid-run.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Prng } from '../../src/lib/prng.ts';
import { PENDING_DEPOSITS_MAX } from '../../src/lib/limits.ts';
import { decodeSnapshot, encodeSnapshot } from '../../src/exchange/index.ts';
import type {
  BlockResult,
  ExchangeEvent,
  Genesis,
  Offence,
  TxResult,
  Exchange,
} from '../../src/exchange/index.ts';
import type { Action, PlaceOrder, SignedTx } from '../../src/exchange/tx/types.ts';
import { Harness, USDC, genesis as devGenesis, key, limit, replacer } from './helpers.ts';
import type { Key } from './helpers.ts';

const PPM = 1_000_000n;

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

function acctKey(address: string, sub: number): string {
  return `${address}/${sub}`;
}

// --- the model -------------------------------------------------------------------

export interface RefValidator {
  readonly publicKey: string;
  readonly address: string;
  stake: bigint;
  jailed: boolean;
}

export interface RefGroup {
  /** The whole content as text, `id:address:subaccount:amount`: the order groups ripen in. */
  readonly content: string;
  readonly id: string;
  readonly address: string;
  readonly sub: number;
  readonly amount: bigint;
  /** Validator indices that attested, ascending. */
  readonly attesters: number[];
}

export interface RefMarket {
  readonly name: string;
  readonly k: bigint;
  readonly initialMarginPpm: bigint;
  readonly imfStepQuote: bigint;
  readonly imfStepPpm: bigint;
}

export interface RefAccount {
  readonly index: number;
  readonly address: string;
  readonly sub: number;
  cash: bigint;
  readonly size: bigint[];
  readonly restBuy: bigint[];
  readonly restSell: bigint[];
}

export interface RefOrder {
  readonly account: number;
  readonly market: number;
  readonly side: 'buy' | 'sell';
  remaining: bigint;
}

/** A result as the model sees it: 'ok' or the code, whether the whole transaction or its action was refused. */
export type Code = string;

export class CollateralModel {
  readonly validators: RefValidator[];
  readonly groups = new Map<string, RefGroup>();
  readonly spent = new Set<string>();
  readonly accounts: RefAccount[] = [];
  readonly byKey = new Map<string, RefAccount>();
  /** Known addresses (opened), hex. */
  readonly principals = new Set<string>();
  /** Faucet draws per address, over its subaccounts. */
  readonly drawn = new Map<string, bigint>();
  /** Active agents: agent public key hex → address hex. */
  readonly agents = new Map<string, string>();
  readonly orders = new Map<number, RefOrder>();
  deposited: bigint;
  withdrawn = 0n;
  readonly devnet: boolean;
  readonly faucetMax: bigint;
  readonly slashPpm: bigint;
  readonly markets: RefMarket[];
  /** Set per block from the exchange (marks do not move within a block's transactions). */
  marks: bigint[] = [];
  insurance: bigint;
  /** The block's memo of what the accounts below zero lack: null until its first withdrawal or transfer. */
  memo: { parts: Map<number, bigint>; sum: bigint } | null = null;
  /** Transfers let through a pause (into an account below zero, at most its shortfall). */
  pausedThrough = 0;
  /** Collateral events the model expects in the current block, in order. */
  events: ExchangeEvent[] = [];

  constructor(g: Genesis) {
    this.validators = g.validators.map((v) => ({
      publicKey: hex(v.publicKey),
      address: hex(addressOf(v.publicKey)),
      stake: v.stake,
      jailed: false,
    }));
    this.devnet = g.devnet;
    this.faucetMax = g.faucetQuoteMax;
    this.slashPpm = BigInt(g.slashPpm ?? 50_000);
    this.deposited = g.insuranceFundQuote;
    this.insurance = g.insuranceFundQuote;
    this.markets = g.markets.map((m) => ({
      name: m.instrument,
      k: m.tickSizeQuote / BigInt(m.lotsPerBase),
      initialMarginPpm: BigInt(m.initialMarginPpm),
      imfStepQuote: m.imfStepQuote,
      imfStepPpm: BigInt(m.imfStepPpm),
    }));
  }

  get activeStake(): bigint {
    let s = 0n;
    for (const v of this.validators) if (!v.jailed) s += v.stake;
    return s;
  }

  get share(): number {
    return Math.floor(PENDING_DEPOSITS_MAX / this.validators.length);
  }

  pendingOf(v: number): number {
    let n = 0;
    for (const g of this.groups.values()) if (g.attesters.includes(v)) n++;
    return n;
  }

  validatorIndex(publicKey: string): number {
    return this.validators.findIndex((v) => v.publicKey === publicKey);
  }

  account(address: string, sub: number): RefAccount | undefined {
    return this.byKey.get(acctKey(address, sub));
  }

  ensure(address: string, sub: number): RefAccount {
    const found = this.account(address, sub);
    if (found !== undefined) return found;
    const n = this.markets.length;
    const a: RefAccount = {
      index: this.accounts.length,
      address,
      sub,
      cash: 0n,
      size: new Array<bigint>(n).fill(0n),
      restBuy: new Array<bigint>(n).fill(0n),
      restSell: new Array<bigint>(n).fill(0n),
    };
    this.accounts.push(a);
    this.byKey.set(acctKey(address, sub), a);
    this.principals.add(address);
    return a;
  }

  equity(a: RefAccount): bigint {
    let e = a.cash;
    for (let m = 0; m < this.markets.length; m++) {
      e += a.size[m]! * this.marks[m]! * this.markets[m]!.k;
    }
    return e;
  }

  /** Margin (cross): Σ ceil(notional × imf / 10^6), exposure with the resting orders. */
  initialMargin(a: RefAccount): bigint {
    let total = 0n;
    for (let m = 0; m < this.markets.length; m++) {
      const p = this.markets[m]!;
      const s = a.size[m]!;
      const up = s + a.restBuy[m]!;
      const down = s - a.restSell[m]!;
      const exposure = max(abs(up), abs(down));
      const notional = exposure * this.marks[m]! * p.k;
      let imf = p.initialMarginPpm + (notional / p.imfStepQuote) * p.imfStepPpm;
      if (imf > PPM) imf = PPM;
      total += ceilDiv(notional * imf, PPM);
    }
    return total;
  }

  free(a: RefAccount | undefined): bigint {
    if (a === undefined) return 0n;
    return this.equity(a) - this.initialMargin(a);
  }

  /** What the accounts below zero at the block's marks lack, computed once per block. */
  lacking(): { parts: Map<number, bigint>; sum: bigint } {
    if (this.memo === null) {
      const parts = new Map<number, bigint>();
      let sum = 0n;
      for (const a of this.accounts) {
        const e = this.equity(a);
        if (e < 0n) {
          parts.set(a.index, -e);
          sum += -e;
        }
      }
      this.memo = { parts, sum };
    }
    return this.memo;
  }

  /** Cash came into `a`: its part of the memo falls to what it still lacks. */
  cashIn(a: RefAccount): void {
    const memo = this.memo;
    if (memo === null) return;
    const part = memo.parts.get(a.index);
    if (part === undefined) return;
    const e = this.equity(a);
    const now = e < 0n ? -e : 0n;
    if (now < part) {
      memo.parts.set(a.index, now);
      memo.sum -= part - now;
    }
  }

  // --- deposits --------------------------------------------------------------

  private credit(g: RefGroup): void {
    const a = this.ensure(g.address, g.sub);
    a.cash += g.amount;
    this.deposited += g.amount;
    this.spent.add(g.id);
    for (const [content, other] of this.groups) if (other.id === g.id) this.groups.delete(content);
    this.events.push({ type: 'depositCredited', account: a.index, amountQuote: g.amount });
    this.cashIn(a);
  }

  private countedStake(attesters: readonly number[]): bigint {
    let s = 0n;
    for (const i of attesters) if (!this.validators[i]!.jailed) s += this.validators[i]!.stake;
    return s;
  }

  private ripe(attesters: readonly number[]): boolean {
    return this.countedStake(attesters) * 3n > this.activeStake * 2n;
  }

  attest(v: number, id: string, address: string, sub: number, amount: bigint): Code {
    const val = this.validators[v]!;
    if (val.jailed) return 'NotPermitted';
    if (amount <= 0n) return 'InvalidAmount';
    if (this.spent.has(id)) return 'AlreadyCredited';
    // The key as docs/exchange.md gives it: the content as text, compared as text.
    const content = `${id}:${address}:${sub}:${amount}`;
    const g = this.groups.get(content);
    if (g?.attesters.includes(v)) return 'DuplicateAttestation';
    const attesters = [...(g?.attesters ?? []), v].sort((x, y) => x - y);
    if (this.ripe(attesters)) {
      this.credit({ content, id, address, sub, amount, attesters });
      return 'ok';
    }
    if (this.pendingOf(v) >= this.share) return 'TooManyPendingDeposits';
    if (g === undefined && this.groups.size >= PENDING_DEPOSITS_MAX)
      return 'TooManyPendingDeposits';
    this.groups.set(content, { content, id, address, sub, amount, attesters });
    return 'ok';
  }

  /** Block.evidence, before anything else in the block. */
  evidence(offences: readonly { publicKey: string; height: number }[]): void {
    for (const o of offences) {
      const v = this.validators.find((x) => x.publicKey === o.publicKey)!;
      if (v.jailed) continue;
      if (this.validators.filter((x) => !x.jailed).length === 1) continue;
      const burned = (v.stake * this.slashPpm) / PPM;
      v.stake -= burned;
      v.jailed = true;
      this.events.push({
        type: 'validatorJailed',
        validator: new Uint8Array(Buffer.from(v.publicKey, 'hex')),
        offenceHeight: o.height,
        burnedStake: burned,
      } as ExchangeEvent);
    }
    const ordered = [...this.groups.values()].sort((x, y) =>
      x.content < y.content ? -1 : x.content > y.content ? 1 : 0,
    );
    for (const g of ordered) {
      if (!this.groups.has(g.content)) continue; // dropped by the credit of its id
      if (this.ripe(g.attesters)) this.credit(g);
    }
  }

  // --- faucet, withdrawals, transfers -------------------------------------------

  faucet(address: string, sub: number, amount: bigint): Code {
    if (!this.devnet) return 'NotPermitted';
    if (amount <= 0n) return 'InvalidAmount';
    const drawn = this.drawn.get(address) ?? 0n;
    if (drawn + amount > this.faucetMax) return 'FaucetCapExceeded';
    this.drawn.set(address, drawn + amount);
    const a = this.ensure(address, sub);
    a.cash += amount;
    this.deposited += amount;
    this.cashIn(a);
    return 'ok';
  }

  withdraw(address: string, sub: number, amount: bigint): Code {
    if (amount <= 0n) return 'InvalidAmount';
    // The pause is weighed before free collateral (docs, "Withdrawals").
    if (this.lacking().sum > this.insurance) return 'WithdrawalsPaused';
    const a = this.account(address, sub);
    if (amount > this.free(a)) return 'InsufficientFunds';
    a!.cash -= amount;
    this.withdrawn += amount;
    return 'ok';
  }

  transfer(address: string, from: number, to: number, amount: bigint): Code {
    if (amount <= 0n || from === to) return 'InvalidAmount';
    const memo = this.lacking();
    if (memo.sum > this.insurance) {
      const target = this.account(address, to);
      const counted = target !== undefined && memo.parts.has(target.index);
      const e = target === undefined ? 0n : this.equity(target);
      const shortfall = e < 0n ? -e : 0n;
      if (!counted || amount > shortfall) return 'TransfersPaused';
      this.pausedThrough++;
    }
    const a = this.account(address, from);
    if (amount > this.free(a)) return 'InsufficientFunds';
    const b = this.ensure(address, to);
    a!.cash -= amount;
    b.cash += amount;
    this.cashIn(b);
    return 'ok';
  }

  // --- trading, as the exchange reports it ---------------------------------------

  fill(taker: RefAccount, market: number, side: 'buy' | 'sell', f: FillLike): void {
    const m = this.markets[market]!;
    const q = BigInt(f.sizeLots);
    const notional = BigInt(f.priceTicks) * q * m.k;
    const maker = this.accounts[f.makerAccount]!;
    const sign = side === 'buy' ? 1n : -1n;
    taker.size[market] = taker.size[market]! + sign * q;
    taker.cash += -sign * notional - f.takerFeeQuote;
    maker.size[market] = maker.size[market]! - sign * q;
    maker.cash += sign * notional - f.makerFeeQuote;
    const o = this.orders.get(f.makerOrderId)!;
    o.remaining -= q;
    if (side === 'buy') maker.restSell[market] = maker.restSell[market]! - q;
    else maker.restBuy[market] = maker.restBuy[market]! - q;
    if (o.remaining === 0n) this.orders.delete(f.makerOrderId);
  }

  rest(a: RefAccount, market: number, side: 'buy' | 'sell', orderId: number, lots: bigint): void {
    if (lots === 0n) return;
    this.orders.set(orderId, { account: a.index, market, side, remaining: lots });
    if (side === 'buy') a.restBuy[market] = a.restBuy[market]! + lots;
    else a.restSell[market] = a.restSell[market]! + lots;
  }
}

interface FillLike {
  readonly makerOrderId: number;
  readonly makerAccount: number;
  readonly priceTicks: number;
  readonly sizeLots: number;
  readonly takerFeeQuote: bigint;
  readonly makerFeeQuote: bigint;
}

/** helpers.ts key(): an address is the first 20 bytes of sha256(public key). */
export function addressOf(publicKey: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(publicKey).digest()).slice(0, 20);
}

function abs(x: bigint): bigint {
  return x < 0n ? -x : x;
}

function max(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

function ceilDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return q * b === a || a < 0n ? q : q + 1n;
}

// --- the seeded driver -----------------------------------------------------------

/** The run left what the model covers (a funding payment): a driver problem, not a finding. */
export class ModelDomainError extends Error {}

export interface RunStats {
  blocks: number;
  codes: Map<string, number>;
  credits: number;
  jailings: number;
  liquidations: number;
  restores: number;
  pausedThrough: number;
}

interface External {
  readonly id: Uint8Array;
  readonly address: Uint8Array;
  readonly sub: number;
  readonly amount: bigint;
}

const COLLATERAL_EVENTS = new Set(['validatorJailed', 'depositCredited']);
const LIQUIDATION_EVENTS = new Set([
  'liquidation',
  'liquidationFill',
  'deleverage',
  'insuranceCover',
  'liquidationCancels',
  'makerCancelled',
]);

function codeOf(tr: TxResult): Code {
  if (!tr.ok) return tr.code!;
  const a = tr.actions[0]!;
  return a.ok ? 'ok' : a.code;
}

function eventJson(e: ExchangeEvent): string {
  return JSON.stringify(e, replacer);
}

/**
 * Runs `blocks` blocks of seeded collateral traffic through the exchange and
 * the model side by side; throws (assert) at the first disagreement, naming
 * the seed, the block and the transaction.
 */
export function runCollateralModel(seed: number, blocks: number, devnet = true): RunStats {
  const rng = new Prng(seed);
  const stats: RunStats = {
    blocks: 0,
    codes: new Map(),
    credits: 0,
    jailings: 0,
    liquidations: 0,
    restores: 0,
    pausedThrough: 0,
  };
  const nVal = rng.between(4, 7);
  const vkeys = Array.from({ length: nVal }, (_, i) => key(`cm-v${seed}-${i}`));
  const base = devGenesis();
  const g: Genesis = {
    ...base,
    validators: vkeys.map((v) => ({
      publicKey: v.publicKey,
      stake: BigInt(rng.between(1, 40)) * 1_000n,
    })),
    slashPpm: rng.between(0, 600_000),
    insuranceFundQuote: BigInt(rng.between(0, 3_000)) * USDC,
    devnet,
    faucetQuoteMax: 60_000n * USDC,
    markets: base.markets.map((m) => ({ ...m, triggers: [] })),
  };
  const byzantine = new Set<number>([rng.int(nVal)]);
  if (rng.chance(1, 2)) byzantine.add(rng.int(nVal));

  let h = new Harness(g, { checkInvariants: true });
  const model = new CollateralModel(g);
  const mm = key(`cm-mm-${seed}`);
  const traders = Array.from({ length: 6 }, (_, i) => key(`cm-t${seed}-${i}`));
  const agent = key(`cm-agent-${seed}`);
  const outsider = key(`cm-outsider-${seed}`);
  let freshCount = 0;
  let idCount = 0;
  let nonce = 0;
  const externals: External[] = [];
  const tx = (from: Key, action: Action, sub = 0, signer?: Key): SignedTx =>
    h.tx(from, action, {
      subaccount: sub,
      nonce: h.timeMs + 1_000 + ++nonce,
      ...(signer ? { signer } : {}),
    });

  const newId = (): Uint8Array => {
    const id = new Uint8Array(32);
    id[0] = seed & 0xff;
    id[28] = (++idCount >>> 24) & 0xff;
    id[29] = (idCount >>> 16) & 0xff;
    id[30] = (idCount >>> 8) & 0xff;
    id[31] = idCount & 0xff;
    return id;
  };
  const external = (address: Uint8Array, sub: number, amount: bigint): External => {
    const e = { id: newId(), address, sub, amount };
    externals.push(e);
    return e;
  };
  const attest = (e: External, over: Partial<External> = {}): Action => ({
    kind: 'attestDeposit',
    depositId: over.id ?? e.id,
    account: over.address ?? e.address,
    subaccount: over.sub ?? e.sub,
    amountQuote: over.amount ?? e.amount,
  });
  const BTC = 'BTC-PERPETUAL';
  const btc = () => h.ex.state.marketByName.get(BTC)!;
  let indexTicks = 500_000;

  const runBlock = (txs: SignedTx[], evidence: Offence[] = []): BlockResult => {
    const where = `seed ${seed} block ${h.ex.state.height + 1}`;
    model.events = [];
    model.memo = null;
    model.insurance = h.ex.state.insuranceQuote;
    h.oracle = { ...h.oracle, BTC: BigInt(indexTicks) * 100_000n };
    const restoreHere =
      stats.blocks > 0 &&
      (stats.blocks === Math.floor(blocks / 3) || stats.blocks === Math.floor((2 * blocks) / 3));
    let twin: Exchange | null = null;
    if (restoreHere) {
      twin = decodeSnapshot(encodeSnapshot(h.ex), { checkInvariants: true });
      assert.deepEqual(twin.appHash, h.ex.appHash, `${where}: restored appHash`);
      assert.deepEqual(twin.digestFromScratch(), h.ex.digestBytes(), `${where}: restored digest`);
    }
    const block = h.nextBlock(txs, 1_000, evidence.length > 0 ? evidence : undefined);
    const r = h.ex.finalizeBlock(block);
    if (twin !== null) {
      const r2 = twin.finalizeBlock(block);
      assert.equal(
        JSON.stringify(r2, replacer),
        JSON.stringify(r, replacer),
        `${where}: restored node's block`,
      );
      // Go on with the restored node.
      const t = h.timeMs;
      h = new Harness(undefined, { checkInvariants: true }, twin);
      h.timeMs = t;
      stats.restores++;
    }
    stats.blocks++;
    if (
      r.events.some((e) => e.type === 'funding' && (e.paidQuote !== 0n || e.receivedQuote !== 0n))
    ) {
      throw new ModelDomainError(`${where}: a funding payment`);
    }
    const state = h.ex.state;
    model.marks = state.markets.map((m) => BigInt(m.markTicks));
    model.evidence(evidence.map((o) => ({ publicKey: hex(o.publicKey), height: o.height })));
    txs.forEach((t, i) => {
      const tr = r.results[i]!;
      const got = codeOf(tr);
      const want = modelTx(t, tr);
      const label = `${where} tx ${i} ${JSON.stringify(t.action, replacer)}`;
      if (want !== null)
        assert.equal(got, want, `${label}: code (result ${JSON.stringify(tr, replacer)})`);
      stats.codes.set(
        `${t.action.kind}:${got}`,
        (stats.codes.get(`${t.action.kind}:${got}`) ?? 0) + 1,
      );
    });
    // The liquidations' effects are the exchange's: take the accounts they name from the state.
    const resync = new Set<number>();
    for (const e of r.events) {
      if (!LIQUIDATION_EVENTS.has(e.type)) continue;
      if (e.type === 'liquidation') stats.liquidations++;
      if ('account' in e) resync.add(e.account);
      if (e.type === 'liquidationFill') {
        resync.add(e.makerAccount);
        const o = model.orders.get(e.makerOrderId);
        if (o !== undefined) {
          o.remaining -= BigInt(e.sizeLots);
          if (o.remaining === 0n) model.orders.delete(e.makerOrderId);
        }
      }
      if (e.type === 'deleverage') resync.add(e.counterparty);
      if (e.type === 'makerCancelled') model.orders.delete(e.orderId);
      if (e.type === 'liquidationCancels') {
        for (const [id, o] of model.orders) if (o.account === e.account) model.orders.delete(id);
      }
    }
    for (const i of resync) {
      const ea = state.accounts[i]!;
      const ma = model.accounts[i]!;
      ma.cash = ea.cashQuote;
      for (let m = 0; m < model.markets.length; m++) {
        ma.size[m] = BigInt(ea.positions[m]!.sizeLots);
        ma.restBuy[m] = BigInt(state.markets[m]!.restingLots(i, 'buy'));
        ma.restSell[m] = BigInt(state.markets[m]!.restingLots(i, 'sell'));
      }
    }
    stats.credits += model.events.filter((e) => e.type === 'depositCredited').length;
    stats.jailings += model.events.filter((e) => e.type === 'validatorJailed').length;
    compare(r, where);
    return r;
  };

  /** The model's code for one transaction (null: a trading outcome the model takes as given). */
  const modelTx = (t: SignedTx, tr: TxResult): Code | null => {
    const address = hex(t.account);
    const signer = hex(t.signer);
    const a = t.action;
    const own = hex(addressOf(t.signer)) === address;
    const v = model.validatorIndex(signer);
    if (!model.principals.has(address)) {
      if (own && v >= 0) model.principals.add(address);
      else if (own && a.kind === 'faucet') {
        const c = model.faucet(address, t.subaccount, a.amountQuote);
        return c === 'ok' ? c : 'UnknownAccount';
      } else return 'UnknownAccount';
    }
    if (!own) {
      if (model.agents.get(signer) !== address) return 'NotPermitted';
      if (a.kind !== 'placeOrder') return 'NotPermitted';
    }
    switch (a.kind) {
      case 'attestDeposit':
        if (v < 0) return 'NotPermitted';
        return model.attest(v, hex(a.depositId), hex(a.account), a.subaccount, a.amountQuote);
      case 'faucet':
        return model.faucet(address, t.subaccount, a.amountQuote);
      case 'withdraw':
        return model.withdraw(address, t.subaccount, a.amountQuote);
      case 'transfer':
        return model.transfer(address, a.fromSubaccount, a.toSubaccount, a.amountQuote);
      case 'registerAgent':
        if (codeOf(tr) === 'ok') model.agents.set(hex(a.agentPublicKey), address);
        return 'ok';
      case 'placeOrder': {
        const res = tr.ok ? tr.actions[0]! : null;
        if (res !== null && res.ok && res.order !== undefined) {
          const acc = model.account(address, t.subaccount)!;
          const market = model.markets.findIndex((m) => m.name === a.instrument);
          for (const f of res.order.fills) model.fill(acc, market, a.side, f);
          model.rest(acc, market, a.side, res.order.orderId, BigInt(res.order.restedLots));
        }
        return null;
      }
      default:
        throw new Error(`the driver sends no ${a.kind}`);
    }
  };

  const compare = (r: BlockResult, where: string): void => {
    const state = h.ex.state;
    assert.deepEqual(
      r.events.filter((e) => COLLATERAL_EVENTS.has(e.type)).map(eventJson),
      model.events.map(eventJson),
      `${where}: collateral events`,
    );
    const groupsOf = (list: RefGroup[]) =>
      list
        .map((d) => JSON.stringify([d.id, d.address, d.sub, d.amount.toString(), d.attesters]))
        .sort();
    assert.deepEqual(
      groupsOf(
        [...state.deposits.values()].map((d) => ({
          content: '',
          id: hex(d.depositId),
          address: hex(d.account),
          sub: d.subaccount,
          amount: d.amountQuote,
          attesters: d.attesters,
        })),
      ),
      groupsOf([...model.groups.values()]),
      `${where}: pending groups`,
    );
    assert.deepEqual(
      [...state.creditedDeposits].sort(),
      [...model.spent].sort(),
      `${where}: spent ids`,
    );
    state.validators.forEach((ev, i) => {
      const mv = model.validators[i]!;
      assert.equal(ev.jailed, mv.jailed, `${where}: validator ${i} jailed`);
      assert.equal(ev.stake, mv.stake, `${where}: validator ${i} stake`);
      assert.equal(ev.pendingDeposits, model.pendingOf(i), `${where}: validator ${i} pending`);
    });
    assert.equal(state.totalStake, model.activeStake, `${where}: active stake`);
    assert.equal(state.accounts.length, model.accounts.length, `${where}: account count`);
    let cash = 0n;
    state.accounts.forEach((ea, i) => {
      const ma = model.accounts[i]!;
      const label = `${where}: account ${i}`;
      assert.equal(hex(ea.address), ma.address, `${label} address`);
      assert.equal(ea.subaccount, ma.sub, `${label} subaccount`);
      assert.equal(ea.cashQuote, ma.cash, `${label} cash`);
      for (let m = 0; m < model.markets.length; m++) {
        assert.equal(BigInt(ea.positions[m]!.sizeLots), ma.size[m], `${label} size in ${m}`);
        assert.equal(
          BigInt(state.markets[m]!.restingLots(i, 'buy')),
          ma.restBuy[m],
          `${label} bids in ${m}`,
        );
        assert.equal(
          BigInt(state.markets[m]!.restingLots(i, 'sell')),
          ma.restSell[m],
          `${label} asks in ${m}`,
        );
      }
      cash += ea.cashQuote;
    });
    for (const p of state.principals.values()) {
      let drawn = 0n;
      for (const s of p.subaccounts.values()) drawn += s.faucetQuote;
      assert.equal(drawn, model.drawn.get(hex(p.address)) ?? 0n, `${where}: faucet drawn`);
    }
    assert.equal(state.depositedQuote, model.deposited, `${where}: deposited`);
    assert.equal(state.withdrawnQuote, model.withdrawn, `${where}: withdrawn`);
    assert.equal(
      model.deposited - model.withdrawn,
      cash + state.insuranceQuote + state.feePoolQuote,
      `${where}: deposits − withdrawals = balances + insurance fund + fee pool`,
    );
  };

  // --- setup: the market maker's deposit (every validator attests), traders' first money.
  const mmDeposit = external(mm.address, 0, 5_000_000n * USDC);
  runBlock(vkeys.map((v) => tx(v, attest(mmDeposit))));
  runBlock([
    ...traders
      .map((t, i) =>
        i % 2 === 0
          ? tx(t, { kind: 'faucet', amountQuote: BigInt(rng.between(500, 5_000)) * USDC })
          : null,
      )
      .filter((x): x is SignedTx => x !== null),
    ...traders
      .filter((_, i) => i % 2 === 1 || !devnet)
      .flatMap((t) => {
        const e = external(t.address, 0, BigInt(rng.between(500, 5_000)) * USDC);
        return vkeys.map((v) => tx(v, attest(e)));
      }),
  ]);
  runBlock([
    tx(traders[0]!, { kind: 'registerAgent', agentPublicKey: agent.publicKey, expiresAtMs: 1e12 }),
  ]);

  // --- the random blocks
  for (let b = 0; b < blocks; b++) {
    const txs: SignedTx[] = [];
    // The index walks, with a jump now and then, pulled back toward $50,000;
    // the transactions are drawn against the marks it is about to give (the
    // index stands in for the BTC mark), so some aim at accounts it takes below zero.
    const step = rng.chance(1, 5) ? rng.between(-2_500, 2_500) : rng.between(-150, 150);
    indexTicks +=
      Math.floor((indexTicks * step) / 10_000) + Math.floor((500_000 - indexTicks) / 20);
    const lastMarks = model.marks;
    if (lastMarks.length > 0) model.marks = [BigInt(indexTicks), ...lastMarks.slice(1)];
    const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)]!;
    const traderSub = (): [Key, number] => [
      pick(traders),
      rng.chance(2, 3) ? 0 : rng.between(1, 3),
    ];
    const lotValue = BigInt(btc().markTicks) * 10n;
    // New deposits appear on the collateral chain; validators attest what they see.
    if (rng.chance(1, 2)) {
      const r = rng.int(10);
      const [t, s] = traderSub();
      const target = r < 3 ? key(`cm-new${seed}-${++freshCount}`) : t;
      external(target.address, r < 3 ? rng.between(0, 2) : s, BigInt(rng.between(1, 3_000)) * USDC);
    }
    const open = externals.slice(-12);
    for (let n = rng.int(6); n > 0 && open.length > 0; n--) {
      const e = pick(open);
      const v = rng.int(nVal);
      let action = attest(e);
      if (byzantine.has(v) && rng.chance(1, 2)) {
        const lie = rng.int(4);
        if (lie === 0)
          action = attest(e, { amount: e.amount + BigInt(rng.between(1, 1000)) * USDC });
        else if (lie === 1) action = attest(e, { address: pick(traders).address });
        else if (lie === 2) action = attest(e, { sub: (e.sub + 1) % 4 });
        else action = attest(e, { amount: 0n });
      }
      txs.push(tx(vkeys[v]!, action));
      if (rng.chance(1, 8)) txs.push(tx(vkeys[v]!, action)); // attested twice
    }
    if (rng.chance(1, 15)) txs.push(tx(pick([outsider, pick(traders)]), attest(pick(externals))));
    // Faucet draws, up to and past the cap.
    if (rng.chance(1, 4)) {
      const [t, s] = traderSub();
      const who = rng.chance(1, 6) ? key(`cm-new${seed}-${++freshCount}`) : t;
      txs.push(tx(who, { kind: 'faucet', amountQuote: BigInt(rng.between(0, 30_000)) * USDC }, s));
    }
    // Withdrawals and transfers, about what the model holds free.
    for (let n = rng.int(4); n > 0; n--) {
      const [t, s] = rng.chance(1, 8) ? [mm, 0] : traderSub();
      const acc = model.account(hex(t.address), s);
      const free = acc === undefined ? 0n : model.free(acc);
      const choices = [
        free,
        free + 1n,
        free / 2n,
        free - 1n,
        acc?.cash ?? 1n,
        1n,
        0n,
        BigInt(rng.between(1, 5_000)) * USDC,
      ];
      let amount = pick(choices);
      if (amount < 0n) amount = 1n;
      if (rng.chance(1, 2)) {
        const signer = rng.chance(1, 10)
          ? t === traders[0] && rng.chance(1, 2)
            ? agent
            : outsider
          : undefined;
        txs.push(
          tx(t, { kind: 'withdraw', amountQuote: amount, destination: 'cc1withdrawal' }, s, signer),
        );
      } else {
        let to = rng.chance(1, 10) ? s : rng.between(0, 4);
        // Into a sibling below zero (at the last marks): what the pause lets through.
        const below = [0, 1, 2, 3].find((x) => {
          const sib = model.account(hex(t.address), x);
          return x !== s && sib !== undefined && model.equity(sib) < 0n;
        });
        if (below !== undefined && rng.chance(2, 3)) {
          to = below;
          const lack = -model.equity(model.account(hex(t.address), below)!);
          amount = pick([lack, lack + 1n, lack / 2n, 1n]);
        }
        txs.push(
          tx(t, { kind: 'transfer', fromSubaccount: s, toSubaccount: to, amountQuote: amount }, s),
        );
      }
    }
    // Leveraged takers (IOC) and the market maker's quotes.
    for (let n = rng.int(7); n > 0; n--) {
      const [t, s] = traderSub();
      const acc = model.account(hex(t.address), s);
      if (acc === undefined) continue;
      const side = rng.chance(1, 2) ? 'buy' : 'sell';
      const equity = model.marks.length > 0 ? model.equity(acc) : acc.cash;
      const maxLots = equity <= 0n ? 1n : (equity * 18n) / lotValue;
      const sizeLots = Number(
        1n + BigInt(rng.int(Number(maxLots > 1_000_000n ? 1_000_000n : maxLots) + 1)),
      );
      const priceTicks =
        side === 'buy' ? Math.floor(btc().markTicks * 1.01) : Math.floor(btc().markTicks * 0.99);
      const order: PlaceOrder = limit(BTC, side, priceTicks, sizeLots, { timeInForce: 'IOC' });
      txs.push(tx(t, order, s, t === traders[0] && rng.chance(1, 3) ? agent : undefined));
    }
    if (btc().book.ownerOrderCount(model.account(hex(mm.address), 0)!.index) < 120) {
      // Never through its own quotes: self-trade prevention would cancel them unreported.
      const bestBid = btc().book.bestBidTicks() ?? 0;
      const bestAsk = btc().book.bestAskTicks() ?? Number.MAX_SAFE_INTEGER;
      for (const side of ['buy', 'sell'] as const) {
        const off = rng.between(1, 60) * 100;
        const priceTicks =
          side === 'buy'
            ? Math.min(indexTicks - off, bestAsk - 1)
            : Math.max(indexTicks + off, bestBid + 1);
        txs.push(tx(mm, limit(BTC, side, priceTicks, rng.between(2_000, 40_000))));
      }
    }
    model.marks = lastMarks;
    // Racing: the proposer's arrival order is random (everything here is in one class).
    for (let i = txs.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [txs[i], txs[j]] = [txs[j]!, txs[i]!];
    }
    // Jailings, now and then; sometimes of one already jailed, or two at once.
    const evidence: Offence[] = [];
    if (rng.chance(1, 20)) {
      for (let n = rng.chance(1, 4) ? 2 : 1; n > 0; n--) {
        evidence.push({
          publicKey: pick(vkeys).publicKey,
          height: Math.max(1, h.ex.state.height - rng.int(3)),
        });
      }
    }
    // Evidence naming no validator refuses the whole block, before any change.
    if (rng.chance(1, 40)) {
      const before = h.ex.digestFromScratch();
      const bad = [...evidence, { publicKey: outsider.publicKey, height: 1 }];
      assert.throws(
        () => h.ex.finalizeBlock(h.nextBlock(txs, 1_000, bad)),
        (e: Error & { code?: string }) => e.code === 'BadBlock',
        `seed ${seed}: evidence against a non-validator refuses the block`,
      );
      assert.deepEqual(
        h.ex.digestFromScratch(),
        before,
        `seed ${seed}: a refused block changes nothing`,
      );
      h.timeMs -= 1_000;
    }
    runBlock(txs, evidence);
  }
  stats.pausedThrough = model.pausedThrough;
  return stats;
}
