// Keys, nonces and signed actions for a client: wraps the exchange's buildTx
// (src/exchange/tx) and sends through the HTTP client.

import {
  formatAddress,
  generateKeyPair,
  keyPairFromSeed,
  loadKeyFile,
  parseAddress,
  saveKeyFile,
} from '../../crypto/index.ts';
import type { KeyPair } from '../../crypto/index.ts';
import { TxError, buildTx, placeOrder } from '../../exchange/tx/index.ts';
import { NONCE_FUTURE_MS_MAX } from '../../lib/limits.ts';
import type { Action, BatchableAction, BuiltTx, PlaceOrder } from '../../exchange/tx/index.ts';
import { fromHex } from '../../lib/bytes.ts';
import type { HttpClient } from './http.ts';
import type { ZommaSocket } from './socket.ts';
import type { TxView } from '../view.ts';

export type { KeyPair };

/** A fresh random key. */
export function generateKey(): KeyPair {
  return generateKeyPair();
}

/** A key from its 32-byte seed, as hex. */
export function keyFromSeedHex(seedHex: string): KeyPair {
  return keyPairFromSeed(fromHex(seedHex, 'seed'));
}

/** Reads a key file (mode 0600; see `zomma keys`). Throws CryptoError on a bad or too-open file. */
export function loadKey(path: string): KeyPair {
  return loadKeyFile(path);
}

export function saveKey(path: string, key: KeyPair, options: { overwrite?: boolean } = {}): void {
  saveKeyFile(path, key, options);
}

export function addressOfKey(key: KeyPair): string {
  return formatAddress(key.address);
}

/** Which of `lanes` clocks this one is: its nonces are ≡ lane (mod lanes). */
export interface NonceLane {
  lane: number;
  lanes: number;
}

/** Most lanes one window may be split into (each keeps 1,000 / lanes nonces a second). */
export const NONCE_LANES_MAX = 100;

/**
 * How far a NonceClock may run ahead of its own clock: a minute short of
 * what the chain accepts ahead of block time (NONCE_FUTURE_MS_MAX), which
 * leaves room for a block time behind this machine's clock.
 */
export const NONCE_AHEAD_MS_MAX = NONCE_FUTURE_MS_MAX - 60_000;

/**
 * Nonces from a millisecond clock that never repeats and never goes back:
 * each is max(now, last + 1). Several bots of one account may each keep their
 * own (docs/transactions.md, "Nonces"); bots that share a window (the
 * owner's key, or the account's agents) and may send within the same
 * millisecond each take a lane, so their nonces never meet: lane k of n hands
 * out only nonces ≡ k (mod n), the first at or after max(now, last + 1). A
 * lane signing at most once every n ms stays within n − 1 ms of its clock;
 * one signing faster runs ahead of it by up to n ms a nonce.
 */
export class NonceClock {
  private last = 0;
  private latestMs = 0;
  private readonly nowMs: () => number;
  private readonly lane: number;
  private readonly lanes: number;
  constructor(nowMs: () => number = Date.now, lane: NonceLane = { lane: 0, lanes: 1 }) {
    if (
      !Number.isInteger(lane.lanes) ||
      lane.lanes < 1 ||
      lane.lanes > NONCE_LANES_MAX ||
      !Number.isInteger(lane.lane) ||
      lane.lane < 0 ||
      lane.lane >= lane.lanes
    ) {
      throw new RangeError(
        `a nonce lane is an integer in [0, lanes), lanes an integer in [1, ${NONCE_LANES_MAX}]`,
      );
    }
    this.nowMs = nowMs;
    this.lane = lane.lane;
    this.lanes = lane.lanes;
  }
  /**
   * The next nonce. Throws TxError (BadField, `tx.nonce`) rather than hand
   * out one more than NONCE_AHEAD_MS_MAX ahead of the clock, which the chain
   * would refuse FutureNonce: the bot signs faster than its lane keeps up
   * with, and must sign slower (or take fewer lanes) until its clock catches up.
   */
  next(): number {
    const now = Math.floor(this.nowMs());
    let n = Math.max(now, this.last + 1);
    n += (this.lane - (n % this.lanes) + this.lanes) % this.lanes;
    // Measured from the latest time the clock told: one stepped back (by NTP,
    // say) says nothing of the chain's time, which does not step back.
    this.latestMs = Math.max(this.latestMs, now);
    const ahead = n - this.latestMs;
    if (ahead > NONCE_AHEAD_MS_MAX) {
      throw new TxError(
        'BadField',
        `the nonce clock ran ${ahead} ms ahead of its clock, past the ${NONCE_AHEAD_MS_MAX} ms a chain is sure to accept: sign slower, or in fewer lanes`,
        'tx.nonce',
      );
    }
    this.last = n;
    return n;
  }
}

export interface TraderOptions {
  /** The account acted for: default the key's own address. An agent key passes its principal's. */
  account?: string;
  subaccount?: number;
  /** Default: read once from GET /v1/status. */
  chainId?: string;
  nonces?: NonceClock;
  /** Default 'commit': each call answers with the final result (or throws its rejection code). */
  wait?: 'none' | 'commit';
  timeoutMs?: number;
  /** Submit over this WebSocket instead of HTTP (the same answers, one connection). */
  socket?: ZommaSocket;
}

export type OrderInput = Pick<PlaceOrder, 'instrument' | 'side' | 'sizeLots'> &
  Partial<Omit<PlaceOrder, 'kind'>>;

/**
 * The clock of one nonce window, kept by the client that makes traders
 * (ZommaClient.trader): `window` is the address, `/own` or `/agents`.
 */
export type SharedClocks = (window: string) => NonceClock;

/** Signs actions with one key for one (sub)account and submits them. */
export class Trader {
  readonly http: HttpClient;
  readonly key: KeyPair;
  readonly account: string;
  readonly subaccount: number;
  private chainId: string | undefined;
  private readonly nonces: NonceClock;
  private readonly options: TraderOptions;
  private readonly shared: SharedClocks | undefined;

  /** `shared`: the client's clocks, where this trader's came from (its agents take theirs there). */
  constructor(http: HttpClient, key: KeyPair, options: TraderOptions = {}, shared?: SharedClocks) {
    this.http = http;
    this.key = key;
    this.options = options;
    this.shared = shared;
    this.account = (options.account ?? formatAddress(key.address)).toLowerCase();
    this.subaccount = options.subaccount ?? 0;
    this.chainId = options.chainId;
    this.nonces = options.nonces ?? new NonceClock();
  }

  /** Builds and signs a transaction without sending it. Throws TxError on a stateless rule. */
  async build(action: Action, expiresAtMs?: number): Promise<BuiltTx> {
    this.chainId ??= (await this.http.status()).chainId;
    return buildTx({
      chainId: this.chainId,
      key: this.key,
      account: parseAddress(this.account),
      subaccount: this.subaccount,
      nonce: this.nonces.next(),
      action,
      ...(expiresAtMs !== undefined ? { expiresAtMs } : {}),
    });
  }

  async send(action: Action, options: { expiresAtMs?: number } = {}): Promise<TxView> {
    const built = await this.build(action, options.expiresAtMs);
    return (this.options.socket ?? this.http).submitTx(built.bytes, {
      wait: this.options.wait ?? 'commit',
      ...(this.options.timeoutMs !== undefined ? { timeoutMs: this.options.timeoutMs } : {}),
    });
  }

  /** A limit order by default (GTC, not reduce-only, STP cancelResting). */
  placeOrder(order: OrderInput): Promise<TxView> {
    return this.send(placeOrder(order));
  }

  cancel(
    target: { instrument: string } & ({ orderId: number } | { clientOrderId: string }),
  ): Promise<TxView> {
    return this.send(
      'orderId' in target
        ? { kind: 'cancel', instrument: target.instrument, orderId: target.orderId }
        : { kind: 'cancel', instrument: target.instrument, clientOrderId: target.clientOrderId },
    );
  }

  /** Every open order of the subaccount, in one instrument or all. */
  cancelAll(instrument?: string): Promise<TxView> {
    return this.send(
      instrument === undefined ? { kind: 'cancelAll' } : { kind: 'cancelAll', instrument },
    );
  }

  /** A new price and/or size; the size is the order's whole size, what it has filled included. */
  amend(change: {
    instrument: string;
    orderId: number;
    priceTicks?: number;
    sizeLots?: number;
  }): Promise<TxView> {
    return this.send({ kind: 'amend', ...change });
  }

  /**
   * Up to BATCH_ACTIONS_MAX (64) actions in one transaction (no batch inside),
   * run in their order: it commits as a whole and each action has its own
   * result in `actions`, refused ones included (docs/transactions.md).
   */
  batch(actions: BatchableAction[]): Promise<TxView> {
    return this.send({ kind: 'batch', actions });
  }

  /** Devnet only. */
  faucet(amountQuote: bigint): Promise<TxView> {
    return this.send({ kind: 'faucet', amountQuote });
  }

  withdraw(amountQuote: bigint, destination: string): Promise<TxView> {
    return this.send({ kind: 'withdraw', amountQuote, destination });
  }

  transfer(fromSubaccount: number, toSubaccount: number, amountQuote: bigint): Promise<TxView> {
    return this.send({ kind: 'transfer', fromSubaccount, toSubaccount, amountQuote });
  }

  /** Lets `agent` trade for this account until expiresAtMs (block time). */
  registerAgent(agentPublicKey: Uint8Array, expiresAtMs: number, name?: string): Promise<TxView> {
    return this.send({
      kind: 'registerAgent',
      agentPublicKey,
      expiresAtMs,
      ...(name !== undefined ? { name } : {}),
    });
  }

  revokeAgent(agentPublicKey: Uint8Array): Promise<TxView> {
    return this.send({ kind: 'revokeAgent', agentPublicKey });
  }

  /** A Trader for an agent key acting for this account. */
  agent(agentKey: KeyPair, options: Omit<TraderOptions, 'account'> = {}): Trader {
    // The client's clock of the address's agents, as its other agent traders
    // take (two clocks of one window could hand out the same millisecond);
    // else this trader's own clock, whose nonces no other clock hands out.
    const shared = options.nonces === undefined ? this.shared : undefined;
    const nonces = options.nonces ?? shared?.(`${this.account}/agents`) ?? this.nonces;
    return new Trader(
      this.http,
      agentKey,
      {
        ...this.options,
        ...options,
        nonces,
        account: this.account,
        subaccount: options.subaccount ?? this.subaccount,
        ...(this.chainId !== undefined ? { chainId: this.chainId } : {}),
      },
      shared,
    );
  }
}
