// One transaction: replay protection, expiry, authorization, then its
// action(s). Signatures were checked before the block reached us (the node
// verifies them in workers); everything stateful is checked here.
//
// Order of checks: nonce (in the signer's window: the address's own key has
// one, its agents share another; a refused nonce changes nothing), then an
// unknown address that this transaction does not open (refused, nothing
// changes), then the signer (the address's own key or an agent that has not
// expired; anyone else is refused and consumes nothing, or any key could fill
// an address's nonce window with far-ahead nonces and lock its owner out),
// then the nonce is consumed, then expiry, then what the signer may do (agents
// trade only).

import { unreachable } from '../lib/assert.ts';
import { amend } from './amend.ts';
import { attestDeposit } from './attest_deposit.ts';
import { cancel, cancelAll } from './cancel.ts';
import type { Ctx } from './context.ts';
import { ensurePrincipal, getPrincipal, principalKey } from './context.ts';
import type { RejectCode } from './errors.ts';
import { faucet, faucetRefusal } from './faucet.ts';
import { bytesKey } from './keys.ts';
import { govPropose, govVote, refusedInHalt } from './governance.ts';
import { checkNonce, nonceRefusalMessage, recordNonce } from './tx/nonces.ts';
import { placeOrder } from './place_order.ts';
import { registerAgent, revokeAgent } from './register_agent.ts';
import type { ActionResult, ExchangeEvent, TxResult } from './results.ts';
import type { ExchangeState, Principal } from './state.ts';
import { transfer } from './transfer.ts';
import type { BatchableAction, SignedTx } from './tx/types.ts';
import { MASTER_ONLY_ACTIONS } from './tx/types.ts';
import { withdraw } from './withdraw.ts';

/** Checks a first nonce of an address; never recorded into. */
const EMPTY_WINDOW: readonly number[] = [];

/** Validators sign these with their own key for their own address. */
const VALIDATOR_ACTIONS = new Set(['attestDeposit', 'govPropose', 'govVote']);

export function runAction(ctx: Ctx, a: BatchableAction): ActionResult {
  switch (a.kind) {
    case 'placeOrder':
      return placeOrder(ctx, a);
    case 'cancel':
      return cancel(ctx, a);
    case 'cancelAll':
      return cancelAll(ctx, a);
    case 'amend':
      return amend(ctx, a);
    case 'faucet':
      return faucet(ctx, a);
    case 'withdraw':
      return withdraw(ctx, a);
    case 'transfer':
      return refusedInHalt(ctx.state, a.kind) ?? transfer(ctx, a);
    case 'attestDeposit':
      return attestDeposit(ctx, a);
    case 'registerAgent':
      return refusedInHalt(ctx.state, a.kind) ?? registerAgent(ctx, a);
    case 'revokeAgent':
      return revokeAgent(ctx, a);
    case 'govPropose':
      return govPropose(ctx, a);
    case 'govVote':
      return govVote(ctx, a);
    default:
      return unreachable(a, 'action kind');
  }
}

function refused(index: number, code: RejectCode, message: string): TxResult {
  return { index, ok: false, code, message, actions: [] };
}

export interface TxEnv {
  readonly state: ExchangeState;
  readonly blockTimeMs: number;
  readonly events: ExchangeEvent[];
  /** The address key (keys.ts) of a public key (cached by the caller: it is a hash). */
  readonly addressOf: (publicKey: Uint8Array, key: string) => string;
}

/** The signer is the address's own key: by the remembered key, else by hashing it. */
function signedByMaster(env: TxEnv, principal: Principal, signer: Uint8Array): boolean {
  if (principal.isMasterKey(signer)) return true;
  if (env.addressOf(signer, bytesKey(signer)) !== principal.key) return false;
  principal.rememberMasterKey(signer);
  return true;
}

/**
 * Whether the first transaction of an address not yet known may open it: a
 * faucet draw by the address's own key that the faucet accepts, or a
 * validator's own action. Anything else is refused before the address exists
 * (UnknownAccount, no nonce consumed), so new keys cannot grow the state
 * without bringing money: every address record is kept for good, and a
 * snapshot holds at most ACCOUNTS_MAX of them.
 */
function opensAddress(env: TxEnv, tx: SignedTx): boolean {
  if (tx.expiresAtMs !== undefined && env.blockTimeMs > tx.expiresAtMs) return false;
  const a = tx.action;
  const first = a.kind === 'batch' ? a.actions[0] : a;
  if (first === undefined) return false;
  const signer = bytesKey(tx.signer);
  if (env.addressOf(tx.signer, signer) !== principalKey(tx.account)) return false;
  if (first.kind === 'faucet') {
    return faucetRefusal(env.state, undefined, tx.subaccount, first.amountQuote) === null;
  }
  return (
    a.kind !== 'batch' && VALIDATOR_ACTIONS.has(a.kind) && env.state.validatorByKey.has(signer)
  );
}

/** Ctx with the signer's key string built only when an operation asks for it (agents, validators). */
class TxCtx implements Ctx {
  private key: string | undefined;
  constructor(
    readonly state: ExchangeState,
    readonly principal: Principal,
    readonly subaccount: number,
    readonly isMaster: boolean,
    private readonly signer: Uint8Array,
    readonly blockTimeMs: number,
    readonly events: ExchangeEvent[],
  ) {}
  get signerKey(): string {
    return (this.key ??= bytesKey(this.signer));
  }
}

/**
 * `known` is the address's record if the caller already looked it up (the
 * block looks up all its addresses first); undefined means look it up here.
 */
export function executeTx(env: TxEnv, tx: SignedTx, index: number, known?: Principal): TxResult {
  const { state, blockTimeMs } = env;
  if (tx.chainId !== state.genesis.chainId) return refused(index, 'WrongChain', tx.chainId);
  const existing = known ?? getPrincipal(state, tx.account);
  // The signer picks the window: the address's own key has one, its agents
  // share the other, so no agent can fill the window its owner revokes it with.
  // The remembered key first, inline: nearly every transaction is its address's own key's.
  let isMaster =
    existing !== undefined &&
    (existing.isMasterKey(tx.signer) || signedByMaster(env, existing, tx.signer));
  const window = isMaster ? existing!.nonces : (existing?.agentNonces ?? EMPTY_WINDOW);
  const verdict = checkNonce(window, tx.nonce, blockTimeMs);
  if (verdict !== undefined) {
    return refused(index, verdict, nonceRefusalMessage(verdict, window, tx.nonce, blockTimeMs));
  }
  if (existing === undefined && !opensAddress(env, tx)) {
    return refused(
      index,
      'UnknownAccount',
      'no such address: a deposit opens it (on a devnet, a faucet draw by its own key)',
    );
  }
  const principal = existing ?? ensurePrincipal(state, tx.account);
  // opensAddress accepted only the address's own key, which this remembers.
  if (existing === undefined) isMaster = signedByMaster(env, principal, tx.signer);
  const action = tx.action;
  const ctx = new TxCtx(
    state,
    principal,
    tx.subaccount,
    isMaster,
    tx.signer,
    blockTimeMs,
    env.events,
  );
  if (!isMaster) {
    const agent = principal.agents?.get(ctx.signerKey);
    if (agent === undefined || agent.expiresAtMs <= blockTimeMs) {
      return refused(
        index,
        'NotPermitted',
        'the signer is neither the account nor an active agent',
      );
    }
  }
  if (isMaster) recordNonce(principal.nonces, tx.nonce);
  else recordNonce((principal.agentNonces ??= []), tx.nonce);
  state.markPrincipal(principal);
  if (tx.expiresAtMs !== undefined && blockTimeMs > tx.expiresAtMs) {
    return refused(index, 'Expired', `expired at ${tx.expiresAtMs}`);
  }
  if (!isMaster) {
    const kinds = action.kind === 'batch' ? action.actions.map((x) => x.kind) : [action.kind];
    if (kinds.some((k) => MASTER_ONLY_ACTIONS.has(k) || k === 'faucet')) {
      return refused(index, 'NotPermitted', 'agents only trade');
    }
  }
  if (action.kind === 'batch') {
    const actions = action.actions.map((a) => runAction(ctx, a));
    return { index, ok: true, actions };
  }
  if (VALIDATOR_ACTIONS.has(action.kind) && !isMaster) {
    return refused(index, 'NotPermitted', 'validators sign with their own key');
  }
  return { index, ok: true, actions: [runAction(ctx, action)] };
}
