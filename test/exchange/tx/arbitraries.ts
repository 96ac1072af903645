// fast-check arbitraries for every transaction and action type. They draw any
// value the codec can carry (not only valid ones): validation is tested apart.

import fc from 'fast-check';
import {
  AGENT_NAME_BYTES_MAX,
  AMOUNT_QUOTE_MAX,
  BATCH_ACTIONS_MAX,
  CHAIN_ID_BYTES_MAX,
  CLIENT_ORDER_ID_BYTES_MAX,
  INSTRUMENT_BYTES_MAX,
  WITHDRAW_DESTINATION_BYTES_MAX,
} from '../../../src/lib/limits.ts';
import { ORDER_TYPES, SIDES, STPS, TIME_IN_FORCES } from '../../../src/exchange/tx/types.ts';
import type {
  Action,
  BatchableAction,
  GovProposal,
  PlaceOrder,
  SignedTx,
} from '../../../src/exchange/tx/types.ts';

const safe = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const subaccount = fc.integer({ min: 0, max: 255 });
const amount = fc.bigInt({ min: 0n, max: AMOUNT_QUOTE_MAX });
const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
// Strings of any Unicode whose UTF-8 fits the limit. A grapheme can be a
// sequence of several code points (12 bytes and more), so the byte length is
// checked rather than assumed from the grapheme count.
const utf8Bytes = (s: string): number => new TextEncoder().encode(s).length;
const text = (maxBytes: number) =>
  fc.oneof(
    fc.string({ unit: 'binary-ascii', maxLength: maxBytes }),
    fc
      .string({ unit: 'grapheme', maxLength: Math.floor(maxBytes / 8) })
      .filter((s) => utf8Bytes(s) <= maxBytes),
  );

// Optional fields are left out, not set to undefined, as the decoder leaves them.
function withOptional<T extends object>(
  base: fc.Arbitrary<T>,
  extras: Record<string, fc.Arbitrary<unknown>>,
): fc.Arbitrary<T> {
  const keys = Object.keys(extras);
  return fc
    .tuple(base, ...keys.map((k) => fc.option(extras[k]!, { nil: undefined })))
    .map(([b, ...values]) => {
      const out = { ...b } as Record<string, unknown>;
      keys.forEach((k, i) => {
        if (values[i] !== undefined) out[k] = values[i];
      });
      return out as T;
    });
}

export const placeOrderArb: fc.Arbitrary<PlaceOrder> = withOptional(
  fc.record({
    kind: fc.constant('placeOrder' as const),
    instrument: text(INSTRUMENT_BYTES_MAX),
    side: fc.constantFrom(...SIDES),
    type: fc.constantFrom(...ORDER_TYPES),
    sizeLots: safe,
    timeInForce: fc.constantFrom(...TIME_IN_FORCES),
    reduceOnly: fc.boolean(),
    stp: fc.constantFrom(...STPS),
  }),
  {
    priceTicks: safe,
    clientOrderId: text(CLIENT_ORDER_ID_BYTES_MAX),
    goodTilMs: safe,
  },
);

/** Any fraction the codec carries (what the rules allow is validate.ts's). */
const ppm = fc.integer({ min: 0, max: 1_000_000 });

const govProposalArb: fc.Arbitrary<GovProposal> = fc.oneof(
  fc.record({
    kind: fc.constantFrom('haltMarket' as const, 'resumeMarket' as const),
    instrument: text(INSTRUMENT_BYTES_MAX),
  }),
  fc.record({ kind: fc.constantFrom('haltAll' as const, 'resumeAll' as const) }),
  fc.record({
    kind: fc.constant('setMarketRisk' as const),
    instrument: text(INSTRUMENT_BYTES_MAX),
    risk: withOptional(
      fc.record({
        initialMarginPpm: ppm,
        maintenanceMarginPpm: ppm,
        imfStepQuote: amount,
        imfStepPpm: ppm,
        liquidationQuoteMaxPerBlock: amount,
      }),
      { priceBandPpm: ppm, openInterestCapLots: safe },
    ),
  }),
);

export const batchableActionArb: fc.Arbitrary<BatchableAction> = fc.oneof(
  fc.record({ kind: fc.constant('faucet' as const), amountQuote: amount }),
  fc.record({
    kind: fc.constant('attestDeposit' as const),
    depositId: bytes(32),
    account: bytes(20),
    subaccount,
    amountQuote: amount,
  }),
  fc.record({
    kind: fc.constant('withdraw' as const),
    amountQuote: amount,
    destination: text(WITHDRAW_DESTINATION_BYTES_MAX),
  }),
  fc.record({
    kind: fc.constant('transfer' as const),
    fromSubaccount: subaccount,
    toSubaccount: subaccount,
    amountQuote: amount,
  }),
  placeOrderArb,
  fc.oneof(
    fc.record({
      kind: fc.constant('cancel' as const),
      instrument: text(INSTRUMENT_BYTES_MAX),
      orderId: safe,
    }),
    fc.record({
      kind: fc.constant('cancel' as const),
      instrument: text(INSTRUMENT_BYTES_MAX),
      clientOrderId: text(CLIENT_ORDER_ID_BYTES_MAX),
    }),
  ),
  withOptional(fc.record({ kind: fc.constant('cancelAll' as const) }), {
    instrument: text(INSTRUMENT_BYTES_MAX),
  }),
  withOptional(
    fc.record({
      kind: fc.constant('amend' as const),
      instrument: text(INSTRUMENT_BYTES_MAX),
      orderId: safe,
    }),
    { priceTicks: safe, sizeLots: safe },
  ),
  withOptional(
    fc.record({
      kind: fc.constant('registerAgent' as const),
      agentPublicKey: bytes(32),
      expiresAtMs: safe,
    }),
    { name: text(AGENT_NAME_BYTES_MAX) },
  ),
  fc.record({ kind: fc.constant('revokeAgent' as const), agentPublicKey: bytes(32) }),
  fc.record({
    kind: fc.constant('govPropose' as const),
    proposalId: safe,
    proposal: govProposalArb,
  }),
  fc.record({ kind: fc.constant('govVote' as const), proposalId: safe, approve: fc.boolean() }),
) as fc.Arbitrary<BatchableAction>;

export const actionArb: fc.Arbitrary<Action> = fc.oneof(
  { arbitrary: batchableActionArb, weight: 12 },
  {
    arbitrary: fc.record({
      kind: fc.constant('batch' as const),
      actions: fc.array(batchableActionArb, { maxLength: Math.min(BATCH_ACTIONS_MAX, 8) }),
    }),
    weight: 1,
  },
);

export const signedTxArb: fc.Arbitrary<SignedTx> = withOptional(
  fc.record({
    chainId: text(CHAIN_ID_BYTES_MAX),
    signer: bytes(32),
    account: bytes(20),
    subaccount,
    nonce: safe,
    action: actionArb,
    signature: bytes(64),
  }),
  { expiresAtMs: safe },
);

/** fast-check's records have no prototype; decoded objects do. Deep-copy into plain objects. */
export function plain<T>(x: T): T {
  if (x instanceof Uint8Array) return Uint8Array.from(x) as T;
  if (Array.isArray(x)) return x.map(plain) as T;
  if (x !== null && typeof x === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) out[k] = plain(v);
    return out as T;
  }
  return x;
}
