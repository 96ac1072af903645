// Stateless checks of a transaction: size, canonical decoding, chain, every
// field's rules, which key may sign which action, and the signature. What
// needs state (nonces, expiry, agents, balances, markets) is the exchange's.
// The signature check is separate so that the node can run it in a worker pool:
// checkTxWithoutSignature here, then txSignedBytes (sign.ts) in a worker.

import { DecodeError } from '../../codec/index.ts';
import { addressOf, checkChainId, checkPublicKey, sha256 } from '../../crypto/index.ts';
import { bytesEqual } from '../../lib/bytes.ts';
import {
  AGENT_NAME_BYTES_MAX,
  AMOUNT_QUOTE_MAX,
  BATCH_ACTIONS_MAX,
  CLIENT_ORDER_ID_BYTES_MAX,
  INSTRUMENT_BYTES_MAX,
  TX_BYTES_MAX,
  WITHDRAW_DESTINATION_BYTES_MAX,
} from '../../lib/limits.ts';
import {
  DEPOSIT_ID_BYTES,
  PPM_MAX,
  TX_ACCOUNT_BYTES,
  TX_SIGNER_BYTES,
  decodeSignedTx,
} from './codec.ts';
import { GenesisError, checkFeeTiers } from '../genesis.ts';
import { TxError } from './errors.ts';
import { verifyTxSignature } from './sign.ts';
import {
  ACTION_KINDS,
  GOV_PROPOSAL_KINDS,
  MASTER_ONLY_ACTIONS,
  ORDER_TYPES,
  SIDES,
  STPS,
  TIME_IN_FORCES,
} from './types.ts';
import type {
  Action,
  FeeTierValues,
  PlaceOrder,
  RiskValues,
  SignedTx,
  UnsignedTx,
} from './types.ts';

/** Instrument names as traders know them: BTC-PERPETUAL, BTC-27DEC26, BTC-27DEC26-60000-C. */
const INSTRUMENT_PATTERN = /^[A-Z0-9]+(-[A-Z0-9]+)*$/;
const CLIENT_ORDER_ID_PATTERN = /^[A-Za-z0-9_-]+$/;
/** Printable ASCII without spaces: addresses on the collateral chain. */
const DESTINATION_PATTERN = /^[\x21-\x7e]+$/;
/** Printable ASCII, spaces allowed inside. */
const AGENT_NAME_PATTERN = /^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/;

export interface CheckedTx {
  tx: SignedTx;
  /** sha256 of the whole encoded signed transaction. */
  hash: Uint8Array;
  /** The canonical bytes it was decoded from. */
  bytes: Uint8Array;
}

// Checks take the path and the field's name apart and join them only on
// failure: valid transactions (the common case) build no strings.

function bad(at: string, name: string, message: string): never {
  throw new TxError('BadField', message, name === '' ? at : `${at}.${name}`);
}

// A decoded transaction always passes the integer, enum, flag, length and
// byte-size checks (the decoder bounds them); a built one (the SDK's, from a
// client that may pass anything) must fail them as a TxError, not as the
// encoder's assertion, and never be encoded as something else: the encoder
// writes 'sell' for any side but 'buy' and true for any truthy flag.

function positive(x: number, at: string, name: string): void {
  if (!(Number.isSafeInteger(x) && x >= 1)) bad(at, name, 'must be an integer of at least 1');
}

function index(x: number, at: string, name: string): void {
  if (!(Number.isSafeInteger(x) && x >= 0)) bad(at, name, 'must be a non-negative integer');
}

function subaccount(x: number, at: string, name: string): void {
  if (!(Number.isInteger(x) && x >= 0 && x <= 255)) bad(at, name, 'must be an integer in 0 … 255');
}

function amount(x: bigint, at: string, name: string): void {
  if (typeof x !== 'bigint' || x < 1n || x > AMOUNT_QUOTE_MAX) {
    bad(at, name, 'must be a bigint between 1 and AMOUNT_QUOTE_MAX');
  }
}

function oneOf<T>(values: readonly T[], x: T, at: string, name: string): void {
  if (!values.includes(x)) bad(at, name, `must be one of ${values.join(', ')}`);
}

function flag(x: boolean, at: string, name: string): void {
  if (typeof x !== 'boolean') bad(at, name, 'must be true or false');
}

function fixedBytes(x: Uint8Array, length: number, at: string, name: string): void {
  if (!(x instanceof Uint8Array && x.length === length)) bad(at, name, `must be ${length} bytes`);
}

// The patterns below admit ASCII only, so a string's length is its encoded length.

function instrument(text: string, at: string, name: string): void {
  if (!(INSTRUMENT_PATTERN.test(text) && text.length <= INSTRUMENT_BYTES_MAX)) {
    bad(at, name, `not an instrument name (1 to ${INSTRUMENT_BYTES_MAX} of A-Z, 0-9, -)`);
  }
}

function clientOrderId(id: string, at: string, name: string): void {
  if (!(CLIENT_ORDER_ID_PATTERN.test(id) && id.length <= CLIENT_ORDER_ID_BYTES_MAX)) {
    bad(at, name, `must be 1 to ${CLIENT_ORDER_ID_BYTES_MAX} of A-Z a-z 0-9 _ -`);
  }
}

function publicKey(key: Uint8Array, at: string, name: string): void {
  try {
    checkPublicKey(key);
  } catch {
    bad(at, name, 'not a valid Ed25519 public key');
  }
}

/** `tx.action.<kind>` for every kind, built once. */
const TOP_PATHS = new Map<string, string>(ACTION_KINDS.map((k) => [k, `tx.action.${k}`]));

function checkPlaceOrder(a: PlaceOrder, path: string): void {
  instrument(a.instrument, path, 'instrument');
  oneOf(SIDES, a.side, path, 'side');
  oneOf(ORDER_TYPES, a.type, path, 'type');
  oneOf(TIME_IN_FORCES, a.timeInForce, path, 'timeInForce');
  oneOf(STPS, a.stp, path, 'stp');
  flag(a.reduceOnly, path, 'reduceOnly');
  positive(a.sizeLots, path, 'sizeLots');
  if (a.priceTicks !== undefined) positive(a.priceTicks, path, 'priceTicks');
  if (a.type === 'limit' && a.priceTicks === undefined) {
    bad(path, 'priceTicks', 'a limit order needs a price');
  }
  // A market order never rests: it trades now (IOC) or not at all (FOK).
  if (a.type === 'market' && a.timeInForce !== 'IOC' && a.timeInForce !== 'FOK') {
    bad(path, 'timeInForce', 'a market order is IOC or FOK');
  }
  if (a.goodTilMs !== undefined) {
    positive(a.goodTilMs, path, 'goodTilMs');
    if (a.timeInForce !== 'GTC' && a.timeInForce !== 'postOnly') {
      bad(path, 'goodTilMs', 'only an order that rests (GTC, postOnly) has a good-til time');
    }
  }
  if (a.clientOrderId !== undefined) clientOrderId(a.clientOrderId, path, 'clientOrderId');
}

/** Checks one action's fields; `path` is where it sits, e.g. `tx.action` or `tx.action.batch.actions[2]`. */
export function checkAction(a: Action, signer: Uint8Array, path: string): void {
  const at = path === 'tx.action' ? TOP_PATHS.get(a.kind) : `${path}.${a.kind}`;
  if (at === undefined || !ACTION_KINDS.includes(a.kind)) bad(path, 'kind', 'unknown action');
  switch (a.kind) {
    case 'faucet':
      return amount(a.amountQuote, at, 'amountQuote');
    case 'attestDeposit':
      fixedBytes(a.depositId, DEPOSIT_ID_BYTES, at, 'depositId');
      fixedBytes(a.account, TX_ACCOUNT_BYTES, at, 'account');
      subaccount(a.subaccount, at, 'subaccount');
      return amount(a.amountQuote, at, 'amountQuote');
    case 'withdraw':
      amount(a.amountQuote, at, 'amountQuote');
      if (!(
        DESTINATION_PATTERN.test(a.destination) &&
        a.destination.length <= WITHDRAW_DESTINATION_BYTES_MAX
      )) {
        bad(
          at,
          'destination',
          `must be 1 to ${WITHDRAW_DESTINATION_BYTES_MAX} printable ASCII characters without spaces`,
        );
      }
      return;
    case 'transfer':
      amount(a.amountQuote, at, 'amountQuote');
      subaccount(a.fromSubaccount, at, 'fromSubaccount');
      subaccount(a.toSubaccount, at, 'toSubaccount');
      if (a.fromSubaccount === a.toSubaccount) bad(at, 'toSubaccount', 'same as fromSubaccount');
      return;
    case 'placeOrder':
      return checkPlaceOrder(a, at);
    case 'cancel':
      instrument(a.instrument, at, 'instrument');
      if (a.orderId !== undefined) index(a.orderId, at, 'orderId');
      if (a.clientOrderId !== undefined) clientOrderId(a.clientOrderId, at, 'clientOrderId');
      return;
    case 'cancelAll':
      if (a.instrument !== undefined) instrument(a.instrument, at, 'instrument');
      return;
    case 'amend':
      instrument(a.instrument, at, 'instrument');
      index(a.orderId, at, 'orderId');
      if (a.priceTicks === undefined && a.sizeLots === undefined) {
        bad(at, '', 'an amend changes the price, the size or both');
      }
      if (a.priceTicks !== undefined) positive(a.priceTicks, at, 'priceTicks');
      if (a.sizeLots !== undefined) positive(a.sizeLots, at, 'sizeLots');
      return;
    case 'batch':
      if (a.actions.length === 0) bad(at, 'actions', 'a batch holds at least one action');
      if (a.actions.length > BATCH_ACTIONS_MAX) bad(at, 'actions', 'exceeds BATCH_ACTIONS_MAX');
      for (let i = 0; i < a.actions.length; i++) {
        const inner = a.actions[i]!;
        if ((inner as Action).kind === 'batch') bad(at, `actions[${i}]`, 'a batch in a batch');
        checkAction(inner, signer, `${at}.actions[${i}]`);
      }
      return;
    case 'registerAgent':
      publicKey(a.agentPublicKey, at, 'agentPublicKey');
      if (bytesEqual(a.agentPublicKey, signer)) {
        bad(at, 'agentPublicKey', 'the account key cannot be its own agent');
      }
      positive(a.expiresAtMs, at, 'expiresAtMs');
      if (
        a.name !== undefined &&
        !(AGENT_NAME_PATTERN.test(a.name) && a.name.length <= AGENT_NAME_BYTES_MAX)
      ) {
        bad(
          at,
          'name',
          `must be 1 to ${AGENT_NAME_BYTES_MAX} printable ASCII characters, not starting or ending with a space`,
        );
      }
      return;
    case 'revokeAgent':
      return fixedBytes(a.agentPublicKey, TX_SIGNER_BYTES, at, 'agentPublicKey');
    case 'govPropose':
      index(a.proposalId, at, 'proposalId');
      oneOf(GOV_PROPOSAL_KINDS, a.proposal.kind, at, 'proposal.kind');
      if (a.proposal.kind === 'haltMarket' || a.proposal.kind === 'resumeMarket') {
        instrument(a.proposal.instrument, at, 'proposal.instrument');
      } else if (a.proposal.kind === 'setMarketRisk') {
        instrument(a.proposal.instrument, at, 'proposal.instrument');
        riskValues(a.proposal.risk, at);
      } else if (a.proposal.kind === 'setFeeTiers') {
        feeTiers(a.proposal.tiers, at);
      }
      return;
    case 'govVote':
      index(a.proposalId, at, 'proposalId');
      return flag(a.approve, at, 'approve');
  }
}

function ppm(x: number, lo: number, hi: number, at: string, name: string): void {
  if (!(Number.isSafeInteger(x) && x >= lo && x <= hi)) {
    bad(at, name, `must be an integer in ${lo} … ${hi} (parts per million)`);
  }
}

/**
 * A setMarketRisk proposal's values, as far as they are rules of their own
 * (genesis.ts checkRisk); the rule against the market's liquidation fee is
 * the exchange's, which applies them all again (InvalidRiskParams).
 */
function riskValues(v: RiskValues, at: string): void {
  const f = 'proposal.risk';
  if (typeof v !== 'object' || v === null) bad(at, f, 'must be an object');
  ppm(v.maintenanceMarginPpm, 1, PPM_MAX, at, `${f}.maintenanceMarginPpm`);
  ppm(v.initialMarginPpm, v.maintenanceMarginPpm, PPM_MAX, at, `${f}.initialMarginPpm`);
  amount(v.imfStepQuote, at, `${f}.imfStepQuote`);
  ppm(v.imfStepPpm, 0, PPM_MAX, at, `${f}.imfStepPpm`);
  amount(v.liquidationQuoteMaxPerBlock, at, `${f}.liquidationQuoteMaxPerBlock`);
  if (v.priceBandPpm !== undefined) ppm(v.priceBandPpm, 1, PPM_MAX - 1, at, `${f}.priceBandPpm`);
  if (v.openInterestCapLots !== undefined)
    positive(v.openInterestCapLots, at, `${f}.openInterestCapLots`);
}

/**
 * A setFeeTiers proposal's schedule: the rules genesis applies to its own
 * (genesis.ts checkFeeTiers: none depends on state), each volume within
 * what a transaction carries. The exchange applies them again when proposed
 * (InvalidFeeTiers).
 */
function feeTiers(tiers: readonly FeeTierValues[], at: string): void {
  const f = 'proposal.tiers';
  try {
    checkFeeTiers(tiers, f);
  } catch (e) {
    if (e instanceof GenesisError) bad(at, e.field, e.reason);
    throw e;
  }
  tiers.forEach((t, i) => {
    if (t.volumeQuoteMin > AMOUNT_QUOTE_MAX) {
      bad(at, `${f}[${i}].volumeQuoteMin`, 'must be at most AMOUNT_QUOTE_MAX');
    }
  });
}

function needsMasterKey(a: Action): boolean {
  if (MASTER_ONLY_ACTIONS.has(a.kind)) return true;
  return a.kind === 'batch' && a.actions.some((inner) => MASTER_ONLY_ACTIONS.has(inner.kind));
}

/**
 * Every stateless rule except the signature: the chain, the envelope's fields,
 * the action's fields, and that an agent key signs only what agents may.
 */
export function validateTx(tx: UnsignedTx, chainId: string): void {
  if (tx.chainId !== chainId) {
    throw new TxError('WrongChain', `signed for chain ${JSON.stringify(tx.chainId)}`, 'tx.chainId');
  }
  // The node's own chain id is valid, so this refuses only a builder's.
  try {
    checkChainId(chainId);
  } catch {
    bad('tx', 'chainId', 'must be 1 to 64 of a-z, 0-9 and -');
  }
  fixedBytes(tx.signer, TX_SIGNER_BYTES, 'tx', 'signer');
  fixedBytes(tx.account, TX_ACCOUNT_BYTES, 'tx', 'account');
  subaccount(tx.subaccount, 'tx', 'subaccount');
  positive(tx.nonce, 'tx', 'nonce');
  if (tx.expiresAtMs !== undefined) positive(tx.expiresAtMs, 'tx', 'expiresAtMs');
  checkAction(tx.action, tx.signer, 'tx.action');
  if (needsMasterKey(tx.action) && !bytesEqual(addressOf(tx.signer), tx.account)) {
    throw new TxError(
      'AgentNotAllowed',
      `an agent key may not sign ${tx.action.kind === 'batch' ? 'this batch' : tx.action.kind}`,
      'tx.signer',
    );
  }
}

/** Size, canonical decoding and every stateless rule except the signature. Throws TxError. */
export function checkTxWithoutSignature(bytes: Uint8Array, chainId: string): CheckedTx {
  if (bytes.length > TX_BYTES_MAX) {
    throw new TxError('Oversize', `${bytes.length} bytes exceeds TX_BYTES_MAX (${TX_BYTES_MAX})`);
  }
  let tx: SignedTx;
  try {
    tx = decodeSignedTx(bytes);
  } catch (e) {
    if (e instanceof DecodeError) throw new TxError('Malformed', e.reason, e.field);
    throw e;
  }
  validateTx(tx, chainId);
  return { tx, hash: sha256(bytes), bytes };
}

/** Throws TxError 'BadSignature' unless the signer signed exactly these bytes. */
export function checkTxSignature(checked: CheckedTx): void {
  publicKey(checked.tx.signer, 'tx', 'signer');
  if (!verifyTxSignature(checked.tx, checked.bytes)) {
    throw new TxError('BadSignature', 'the signature does not verify', 'tx.signature');
  }
}

/** Every stateless check, signature included. Throws TxError. */
export function checkTx(bytes: Uint8Array, chainId: string): { tx: SignedTx; hash: Uint8Array } {
  const checked = checkTxWithoutSignature(bytes, chainId);
  checkTxSignature(checked);
  return { tx: checked.tx, hash: checked.hash };
}
