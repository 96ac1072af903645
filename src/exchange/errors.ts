// Every rejection code of the exchange, in one place. The same strings go on
// the wire, in the SDK and in docs/exchange.md ("Rejection codes"). A rejected
// transaction or action changes nothing (a rejected transaction still consumes
// its nonce once the nonce itself was accepted).

export const REJECT_CODES = [
  // replay and authorization
  'DuplicateNonce',
  'StaleNonce',
  'FutureNonce',
  'Expired',
  'WrongChain',
  'NotPermitted',
  // instruments and orders
  'UnknownInstrument',
  'MarketHalted',
  'ExchangeHalted',
  'NoOraclePrice',
  'InvalidPrice',
  'InvalidSize',
  'BelowMinSize',
  'InvalidOrder',
  'PostOnlyWouldTake',
  'TooManyOpenOrders',
  'BookFull',
  'DuplicateClientOrderId',
  'UnknownOrder',
  'ReduceOnlyWouldIncrease',
  'InsufficientMargin',
  // circuit breakers
  'OracleStale',
  'PriceOutsideBand',
  'OpenInterestCapExceeded',
  'MarketInAuction',
  // collateral
  'InvalidAmount',
  'InsufficientFunds',
  'FaucetCapExceeded',
  'WithdrawalsPaused',
  'TransfersPaused',
  'UnknownAccount',
  'AlreadyCredited',
  'DuplicateAttestation',
  'DepositMismatch',
  'TooManyPendingDeposits',
  'TooManyAccounts',
  // agents and governance
  'TooManyAgents',
  'UnknownAgent',
  'UnknownProposal',
  'DuplicateProposal',
  'TooManyProposals',
  'InvalidRiskParams',
  'InvalidFeeTiers',
  'NotSupported',
] as const;

export type RejectCode = (typeof REJECT_CODES)[number];

/** A rejection from a check: its code and a human-readable reason for logs and clients. */
export interface Rejection {
  readonly code: RejectCode;
  readonly message: string;
}

export function reject(code: RejectCode, message: string = code): Rejection {
  return { code, message };
}

/** UnknownInstrument's message, the same from every action that names a market. */
export function noMarketNamed(instrument: string): string {
  return `no market named ${instrument} (never listed, or settled)`;
}

/**
 * MarketHalted's message, the same from a placement and an amend: past its
 * expiry a dated market waits for its settlement price; otherwise the
 * validators halted it (a governance halt, or an emergency listing).
 */
export function haltedMessage(instrument: string, expired: boolean): string {
  return expired
    ? `${instrument} is past its expiry and awaits its settlement price: it takes only cancels`
    : `${instrument} is halted by the validators: it takes only cancels until they resume it`;
}
