// The canonical encoding of transactions, written by hand on Writer/Reader:
// the signed order is the hottest thing the node decodes (docs/decisions/0001-codec.md).
//
//   signed tx = version(u8 = 1) chainId(string) signer(32) account(20) subaccount(u8)
//               nonce(varint) expiresAtMs(optional varint) action signature(64)
//   action    = tag(u8, index in ACTION_KINDS) fields in the order of types.ts
//   optional  = 0 | 1 value
//
// The unsigned encoding (what is signed) is the signed one without its last 64
// bytes. Decoding refuses every other byte string with a DecodeError whose
// field is a dotted path, e.g. `tx.action.batch.actions[2].placeOrder.sizeLots`.

import { assert, unreachable } from '../../lib/assert.ts';
import {
  AGENT_NAME_BYTES_MAX,
  AMOUNT_QUOTE_MAX,
  BATCH_ACTIONS_MAX,
  CHAIN_ID_BYTES_MAX,
  CLIENT_ORDER_ID_BYTES_MAX,
  FEE_TIERS_MAX,
  INSTRUMENT_BYTES_MAX,
  PRICE_TICKS_MAX,
  SIZE_LOTS_MAX,
  WITHDRAW_DESTINATION_BYTES_MAX,
} from '../../lib/limits.ts';
import { Reader, Writer, fail } from '../../codec/index.ts';
import type { Codec } from '../../codec/index.ts';
import {
  ACTION_KINDS,
  GOV_PROPOSAL_KINDS,
  ORDER_TYPES,
  SIDES,
  STPS,
  TIME_IN_FORCES,
} from './types.ts';
import type {
  Action,
  ActionKind,
  Amend,
  BatchableAction,
  FeeTierValues,
  GovProposal,
  PlaceOrder,
  RiskValues,
  RegisterAgent,
  SignedTx,
  UnsignedTx,
} from './types.ts';

/** The first byte of every transaction; a new layout gets a new version. */
export const TX_FORMAT_VERSION = 1;
export const TX_SIGNER_BYTES = 32;
export const TX_ACCOUNT_BYTES = 20;
export const TX_SIGNATURE_BYTES = 64;
export const DEPOSIT_ID_BYTES = 32;
/** Bits of an amount field: amounts are below 2^63. */
const AMOUNT_BITS = 63;
/** A fraction in parts per million is at most 10^6. */
export const PPM_MAX = 1_000_000;
/** Subaccounts are numbered 0 … 255 (one byte). */
export const SUBACCOUNT_MAX = 0xff;

const ACTION_TAG = new Map<ActionKind, number>(ACTION_KINDS.map((k, i) => [k, i]));
const BATCH_TAG = ACTION_TAG.get('batch')!;

function tagOf<T extends string>(values: readonly T[], value: T): number {
  const i = values.indexOf(value);
  if (!(i >= 0)) fail(`not one of ${values.join('|')}: ${value}`);
  return i;
}

function writeAmount(w: Writer, amountQuote: bigint): void {
  if (!(amountQuote <= AMOUNT_QUOTE_MAX)) fail(`amount ${amountQuote} exceeds AMOUNT_QUOTE_MAX`);
  w.uvarintBig(amountQuote);
}

function writeOptionalUint(w: Writer, x: number | undefined): void {
  if (x === undefined) {
    w.u8(0);
  } else {
    w.u8(1);
    w.uvarint(x);
  }
}

function writeOptionalString(w: Writer, x: string | undefined, max: number): void {
  if (x === undefined) {
    w.u8(0);
  } else {
    w.u8(1);
    w.string(x, max);
  }
}

function writePlaceOrder(w: Writer, a: PlaceOrder): void {
  w.string(a.instrument, INSTRUMENT_BYTES_MAX);
  // Each value its own tag: a test against one value only would write any other as the second.
  w.u8(a.side === 'buy' ? 0 : a.side === 'sell' ? 1 : fail(`unknown side: ${String(a.side)}`));
  w.u8(a.type === 'limit' ? 0 : a.type === 'market' ? 1 : fail(`unknown type: ${String(a.type)}`));
  writeOptionalUint(w, a.priceTicks);
  w.uvarint(a.sizeLots);
  w.u8(tagOf(TIME_IN_FORCES, a.timeInForce));
  w.bool(a.reduceOnly);
  writeOptionalString(w, a.clientOrderId, CLIENT_ORDER_ID_BYTES_MAX);
  w.u8(tagOf(STPS, a.stp));
  writeOptionalUint(w, a.goodTilMs);
}

/**
 * A setMarketRisk proposal's values: initialMarginPpm, maintenanceMarginPpm
 * (varints), imfStepQuote (amount), imfStepPpm (varint),
 * liquidationQuoteMaxPerBlock (amount), priceBandPpm and openInterestCapLots
 * (optionals: absent removes the band or the cap).
 */
export function writeRiskValues(w: Writer, v: RiskValues): void {
  w.uvarint(v.initialMarginPpm).uvarint(v.maintenanceMarginPpm);
  writeAmount(w, v.imfStepQuote);
  w.uvarint(v.imfStepPpm);
  writeAmount(w, v.liquidationQuoteMaxPerBlock);
  writeOptionalUint(w, v.priceBandPpm);
  writeOptionalUint(w, v.openInterestCapLots);
}

/** Reads writeRiskValues' fields under `<f>.`: fractions bounded by 10^6, amounts by AMOUNT_QUOTE_MAX's bits. */
export function readRiskValues(r: Reader, f: string): RiskValues {
  const v: RiskValues = {
    initialMarginPpm: r.uvarint(`${f}.initialMarginPpm`, PPM_MAX),
    maintenanceMarginPpm: r.uvarint(`${f}.maintenanceMarginPpm`, PPM_MAX),
    imfStepQuote: r.uvarintBig(`${f}.imfStepQuote`, AMOUNT_BITS),
    imfStepPpm: r.uvarint(`${f}.imfStepPpm`, PPM_MAX),
    liquidationQuoteMaxPerBlock: r.uvarintBig(`${f}.liquidationQuoteMaxPerBlock`, AMOUNT_BITS),
  };
  if (r.bool(`${f}.priceBandPpm`)) v.priceBandPpm = r.uvarint(`${f}.priceBandPpm`, PPM_MAX);
  if (r.bool(`${f}.openInterestCapLots`)) {
    v.openInterestCapLots = r.uvarint(`${f}.openInterestCapLots`);
  }
  return v;
}

/**
 * A setFeeTiers proposal's schedule: the tier count (varint, at most
 * FEE_TIERS_MAX), then per tier volumeQuoteMin (amount), makerFeePpm (signed
 * varint) and takerFeePpm (varint).
 */
export function writeFeeTiers(w: Writer, tiers: readonly FeeTierValues[]): void {
  if (!(tiers.length <= FEE_TIERS_MAX)) fail(`more than ${FEE_TIERS_MAX} fee tiers`);
  w.uvarint(tiers.length);
  for (const t of tiers) {
    writeAmount(w, t.volumeQuoteMin);
    w.ivarint(t.makerFeePpm).uvarint(t.takerFeePpm);
  }
}

/** Reads writeFeeTiers' fields under `<f>`: at most FEE_TIERS_MAX tiers, fees bounded by 10^6. */
export function readFeeTiers(r: Reader, f: string): FeeTierValues[] {
  const n = r.uvarint(f, FEE_TIERS_MAX);
  const tiers: FeeTierValues[] = [];
  for (let i = 0; i < n; i++) {
    const g = `${f}[${i}]`;
    tiers.push({
      volumeQuoteMin: r.uvarintBig(`${g}.volumeQuoteMin`, AMOUNT_BITS),
      makerFeePpm: r.ivarint(`${g}.makerFeePpm`, PPM_MAX),
      takerFeePpm: r.uvarint(`${g}.takerFeePpm`, PPM_MAX),
    });
  }
  return tiers;
}

function writeGovProposal(w: Writer, p: GovProposal): void {
  w.u8(tagOf(GOV_PROPOSAL_KINDS, p.kind));
  if (p.kind === 'haltMarket' || p.kind === 'resumeMarket') {
    w.string(p.instrument, INSTRUMENT_BYTES_MAX);
  } else if (p.kind === 'setMarketRisk') {
    w.string(p.instrument, INSTRUMENT_BYTES_MAX);
    writeRiskValues(w, p.risk);
  } else if (p.kind === 'setFeeTiers') {
    writeFeeTiers(w, p.tiers);
  }
}

export function writeAction(w: Writer, a: Action): void {
  w.u8(ACTION_TAG.get(a.kind)!);
  switch (a.kind) {
    case 'faucet':
      return writeAmount(w, a.amountQuote);
    case 'attestDeposit':
      w.fixed(a.depositId, DEPOSIT_ID_BYTES);
      w.fixed(a.account, TX_ACCOUNT_BYTES);
      w.u8(a.subaccount);
      return writeAmount(w, a.amountQuote);
    case 'withdraw':
      writeAmount(w, a.amountQuote);
      w.string(a.destination, WITHDRAW_DESTINATION_BYTES_MAX);
      return;
    case 'transfer':
      w.u8(a.fromSubaccount);
      w.u8(a.toSubaccount);
      return writeAmount(w, a.amountQuote);
    case 'placeOrder':
      return writePlaceOrder(w, a);
    case 'cancel':
      w.string(a.instrument, INSTRUMENT_BYTES_MAX);
      if (a.orderId !== undefined) {
        assert(a.clientOrderId === undefined, 'cancel names an orderId and a clientOrderId');
        w.u8(0);
        w.uvarint(a.orderId);
      } else {
        w.u8(1);
        w.string(a.clientOrderId, CLIENT_ORDER_ID_BYTES_MAX);
      }
      return;
    case 'cancelAll':
      return writeOptionalString(w, a.instrument, INSTRUMENT_BYTES_MAX);
    case 'amend':
      w.string(a.instrument, INSTRUMENT_BYTES_MAX);
      w.uvarint(a.orderId);
      writeOptionalUint(w, a.priceTicks);
      writeOptionalUint(w, a.sizeLots);
      return;
    case 'batch':
      assert(a.actions.length <= BATCH_ACTIONS_MAX, 'batch exceeds BATCH_ACTIONS_MAX');
      w.uvarint(a.actions.length);
      for (const inner of a.actions) {
        assert((inner as Action).kind !== 'batch', 'a batch inside a batch');
        writeAction(w, inner);
      }
      return;
    case 'registerAgent':
      w.fixed(a.agentPublicKey, TX_SIGNER_BYTES);
      w.uvarint(a.expiresAtMs);
      return writeOptionalString(w, a.name, AGENT_NAME_BYTES_MAX);
    case 'revokeAgent':
      w.fixed(a.agentPublicKey, TX_SIGNER_BYTES);
      return;
    case 'govPropose':
      w.uvarint(a.proposalId);
      return writeGovProposal(w, a.proposal);
    case 'govVote':
      w.uvarint(a.proposalId);
      w.bool(a.approve);
      return;
    default:
      unreachable(a, 'unknown action');
  }
}

export function writeUnsignedTx(w: Writer, tx: UnsignedTx): void {
  w.u8(TX_FORMAT_VERSION);
  w.string(tx.chainId, CHAIN_ID_BYTES_MAX);
  w.fixed(tx.signer, TX_SIGNER_BYTES);
  w.fixed(tx.account, TX_ACCOUNT_BYTES);
  w.u8(tx.subaccount);
  w.uvarint(tx.nonce);
  writeOptionalUint(w, tx.expiresAtMs);
  writeAction(w, tx.action);
}

export function writeSignedTx(w: Writer, tx: SignedTx): void {
  writeUnsignedTx(w, tx);
  w.fixed(tx.signature, TX_SIGNATURE_BYTES);
}

function readAmount(r: Reader, field: string): bigint {
  return r.uvarintBig(field, AMOUNT_BITS);
}

function readPlaceOrder(r: Reader): PlaceOrder {
  const instrument = r.string('placeOrder.instrument', INSTRUMENT_BYTES_MAX);
  const side = SIDES[r.tag('placeOrder.side', 2)]!;
  const type = ORDER_TYPES[r.tag('placeOrder.type', 2)]!;
  const hasPrice = r.bool('placeOrder.priceTicks');
  const priceTicks = hasPrice ? r.uvarint('placeOrder.priceTicks', PRICE_TICKS_MAX) : 0;
  const sizeLots = r.uvarint('placeOrder.sizeLots', SIZE_LOTS_MAX);
  const timeInForce = TIME_IN_FORCES[r.tag('placeOrder.timeInForce', TIME_IN_FORCES.length)]!;
  const reduceOnly = r.bool('placeOrder.reduceOnly');
  const hasClientOrderId = r.bool('placeOrder.clientOrderId');
  const clientOrderId = hasClientOrderId
    ? r.string('placeOrder.clientOrderId', CLIENT_ORDER_ID_BYTES_MAX)
    : '';
  const stp = STPS[r.tag('placeOrder.stp', STPS.length)]!;
  const hasGoodTil = r.bool('placeOrder.goodTilMs');
  const goodTilMs = hasGoodTil ? r.uvarint('placeOrder.goodTilMs') : 0;
  // Absent optionals stay absent (not undefined) so decoded values deep-equal built ones.
  const order: PlaceOrder = {
    kind: 'placeOrder',
    instrument,
    side,
    type,
    sizeLots,
    timeInForce,
    reduceOnly,
    stp,
  };
  if (hasPrice) order.priceTicks = priceTicks;
  if (hasClientOrderId) order.clientOrderId = clientOrderId;
  if (hasGoodTil) order.goodTilMs = goodTilMs;
  return order;
}

function readGovProposal(r: Reader): GovProposal {
  const kind = GOV_PROPOSAL_KINDS[r.tag('govPropose.proposal.kind', GOV_PROPOSAL_KINDS.length)]!;
  if (kind === 'haltMarket' || kind === 'resumeMarket') {
    return { kind, instrument: r.string('govPropose.proposal.instrument', INSTRUMENT_BYTES_MAX) };
  }
  if (kind === 'setMarketRisk') {
    const instrument = r.string('govPropose.proposal.instrument', INSTRUMENT_BYTES_MAX);
    return { kind, instrument, risk: readRiskValues(r, 'govPropose.proposal.risk') };
  }
  if (kind === 'setFeeTiers') return { kind, tiers: readFeeTiers(r, 'govPropose.proposal.tiers') };
  return { kind };
}

/** Reads an action under the reader's current prefix; `nested` refuses a batch. */
function readActionBody(r: Reader, nested: boolean): Action {
  const tag = r.tag('kind', ACTION_KINDS.length);
  if (nested && tag === BATCH_TAG) throw r.error('kind', 'a batch may not contain a batch');
  const kind = ACTION_KINDS[tag]!;
  switch (kind) {
    case 'faucet':
      return { kind, amountQuote: readAmount(r, 'faucet.amountQuote') };
    case 'attestDeposit':
      return {
        kind,
        depositId: r.fixedCopy('attestDeposit.depositId', DEPOSIT_ID_BYTES),
        account: r.fixedCopy('attestDeposit.account', TX_ACCOUNT_BYTES),
        subaccount: r.u8('attestDeposit.subaccount'),
        amountQuote: readAmount(r, 'attestDeposit.amountQuote'),
      };
    case 'withdraw':
      return {
        kind,
        amountQuote: readAmount(r, 'withdraw.amountQuote'),
        destination: r.string('withdraw.destination', WITHDRAW_DESTINATION_BYTES_MAX),
      };
    case 'transfer':
      return {
        kind,
        fromSubaccount: r.u8('transfer.fromSubaccount'),
        toSubaccount: r.u8('transfer.toSubaccount'),
        amountQuote: readAmount(r, 'transfer.amountQuote'),
      };
    case 'placeOrder':
      return readPlaceOrder(r);
    case 'cancel': {
      const instrument = r.string('cancel.instrument', INSTRUMENT_BYTES_MAX);
      return r.tag('cancel.by', 2) === 0
        ? { kind, instrument, orderId: r.uvarint('cancel.orderId') }
        : {
            kind,
            instrument,
            clientOrderId: r.string('cancel.clientOrderId', CLIENT_ORDER_ID_BYTES_MAX),
          };
    }
    case 'cancelAll':
      return r.bool('cancelAll.instrument')
        ? { kind, instrument: r.string('cancelAll.instrument', INSTRUMENT_BYTES_MAX) }
        : { kind };
    case 'amend': {
      const out: Amend = {
        kind,
        instrument: r.string('amend.instrument', INSTRUMENT_BYTES_MAX),
        orderId: r.uvarint('amend.orderId'),
      };
      if (r.bool('amend.priceTicks'))
        out.priceTicks = r.uvarint('amend.priceTicks', PRICE_TICKS_MAX);
      if (r.bool('amend.sizeLots')) out.sizeLots = r.uvarint('amend.sizeLots', SIZE_LOTS_MAX);
      return out;
    }
    case 'batch': {
      const n = r.uvarint('batch.actions', BATCH_ACTIONS_MAX);
      const actions: BatchableAction[] = [];
      for (let i = 0; i < n; i++) {
        const saved = r.enter(`batch.actions[${i}]`);
        actions.push(readActionBody(r, true) as BatchableAction);
        r.leave(saved);
      }
      return { kind, actions };
    }
    case 'registerAgent': {
      const out: RegisterAgent = {
        kind,
        agentPublicKey: r.fixedCopy('registerAgent.agentPublicKey', TX_SIGNER_BYTES),
        expiresAtMs: r.uvarint('registerAgent.expiresAtMs'),
      };
      if (r.bool('registerAgent.name'))
        out.name = r.string('registerAgent.name', AGENT_NAME_BYTES_MAX);
      return out;
    }
    case 'revokeAgent':
      return { kind, agentPublicKey: r.fixedCopy('revokeAgent.agentPublicKey', TX_SIGNER_BYTES) };
    case 'govPropose':
      return { kind, proposalId: r.uvarint('govPropose.proposalId'), proposal: readGovProposal(r) };
    case 'govVote':
      return {
        kind,
        proposalId: r.uvarint('govVote.proposalId'),
        approve: r.bool('govVote.approve'),
      };
    default:
      return unreachable(kind, 'unknown action');
  }
}

/** Reads an action, naming its fields under `<prefix>.action`. */
export function readAction(r: Reader): Action {
  const saved = r.enter('action');
  const action = readActionBody(r, false);
  r.leave(saved);
  return action;
}

function readUnsignedFields(r: Reader): UnsignedTx {
  const version = r.u8('version');
  if (version !== TX_FORMAT_VERSION) throw r.error('version', `unknown version ${version}`);
  const chainId = r.string('chainId', CHAIN_ID_BYTES_MAX);
  const signer = r.fixedCopy('signer', TX_SIGNER_BYTES);
  const account = r.fixedCopy('account', TX_ACCOUNT_BYTES);
  const subaccount = r.u8('subaccount');
  const nonce = r.uvarint('nonce');
  const hasExpiry = r.bool('expiresAtMs');
  const expiresAtMs = hasExpiry ? r.uvarint('expiresAtMs') : 0;
  const action = readAction(r);
  const tx: UnsignedTx = { chainId, signer, account, subaccount, nonce, action };
  if (hasExpiry) tx.expiresAtMs = expiresAtMs;
  return tx;
}

/** Reads a whole signed transaction under `tx.`; the caller checks for trailing bytes. */
export function readSignedTx(r: Reader): SignedTx {
  const saved = r.enter('tx');
  const tx = readUnsignedFields(r) as SignedTx;
  tx.signature = r.fixedCopy('signature', TX_SIGNATURE_BYTES);
  r.leave(saved);
  return tx;
}

export function readUnsignedTx(r: Reader): UnsignedTx {
  const saved = r.enter('tx');
  const tx = readUnsignedFields(r);
  r.leave(saved);
  return tx;
}

export const signedTxCodec: Codec<SignedTx> = {
  write: writeSignedTx,
  read: (r) => readSignedTx(r),
};

export const unsignedTxCodec: Codec<UnsignedTx> = {
  write: writeUnsignedTx,
  read: (r) => readUnsignedTx(r),
};

export const actionCodec: Codec<Action> = {
  write: writeAction,
  read: (r) => readAction(r),
};

const txWriter = new Writer(1024);

/** The canonical bytes of a signed transaction (a fresh copy). */
export function encodeSignedTx(tx: SignedTx): Uint8Array {
  writeSignedTx(txWriter.reset(), tx);
  return txWriter.finish();
}

/** The canonical bytes of a transaction without its signature: the message that is signed. */
export function encodeUnsignedTx(tx: UnsignedTx): Uint8Array {
  writeUnsignedTx(txWriter.reset(), tx);
  return txWriter.finish();
}

/** Decodes a signed transaction; throws DecodeError naming the field (`tx.nonce`, …). */
export function decodeSignedTx(bytes: Uint8Array): SignedTx {
  const r = new Reader(bytes);
  const tx = readSignedTx(r);
  r.done('tx');
  return tx;
}

/** Decodes an unsigned transaction; throws DecodeError naming the field. */
export function decodeUnsignedTx(bytes: Uint8Array): UnsignedTx {
  const r = new Reader(bytes);
  const tx = readUnsignedTx(r);
  r.done('tx');
  return tx;
}
