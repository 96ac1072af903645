// Signed transactions: the envelope and every action the exchange accepts
// (docs/transactions.md). Amounts of money are bigint quote units (6 decimals):
// balances and sums of them pass 2^53 long before anything else does. Prices
// (ticks), sizes (lots), ids and times (ms of block time) are safe integers.

export type Side = 'buy' | 'sell';
export type OrderType = 'limit' | 'market';
/** postOnly is a time in force here: an order that would take is rejected instead. */
export type TimeInForce = 'GTC' | 'IOC' | 'FOK' | 'postOnly';
/** Self-trade prevention: which side of a would-be self-trade is cancelled. */
export type Stp = 'cancelResting' | 'cancelIncoming' | 'cancelBoth';
export type GovProposalKind =
  'haltMarket' | 'resumeMarket' | 'haltAll' | 'resumeAll' | 'setMarketRisk' | 'setFeeTiers';

export const SIDES: readonly Side[] = ['buy', 'sell'];
export const ORDER_TYPES: readonly OrderType[] = ['limit', 'market'];
export const TIME_IN_FORCES: readonly TimeInForce[] = ['GTC', 'IOC', 'FOK', 'postOnly'];
export const STPS: readonly Stp[] = ['cancelResting', 'cancelIncoming', 'cancelBoth'];
export const GOV_PROPOSAL_KINDS: readonly GovProposalKind[] = [
  'haltMarket',
  'resumeMarket',
  'haltAll',
  'resumeAll',
  'setMarketRisk',
  'setFeeTiers',
];

/** Devnet only: credits the account with test money. */
export interface Faucet {
  kind: 'faucet';
  amountQuote: bigint;
}

/** A validator attests a deposit seen on the collateral chain; 2/3 of stake credits it once. */
export interface AttestDeposit {
  kind: 'attestDeposit';
  /** 32 bytes naming the deposit on the collateral chain. */
  depositId: Uint8Array;
  /** The 20-byte address credited. */
  account: Uint8Array;
  subaccount: number;
  amountQuote: bigint;
}

export interface Withdraw {
  kind: 'withdraw';
  amountQuote: bigint;
  /** An address on the collateral chain, printable ASCII. */
  destination: string;
}

export interface Transfer {
  kind: 'transfer';
  fromSubaccount: number;
  toSubaccount: number;
  amountQuote: bigint;
}

export interface PlaceOrder {
  kind: 'placeOrder';
  instrument: string;
  side: Side;
  type: OrderType;
  /** Required for limit orders; for market orders the worst price, else derived from the oracle. */
  priceTicks?: number;
  sizeLots: number;
  timeInForce: TimeInForce;
  reduceOnly: boolean;
  clientOrderId?: string;
  stp: Stp;
  /** Block time (ms) at which a resting order expires. */
  goodTilMs?: number;
}

export type Cancel = { kind: 'cancel'; instrument: string } & (
  { orderId: number; clientOrderId?: undefined } | { clientOrderId: string; orderId?: undefined }
);

/** Cancels every open order of the subaccount, in one instrument or in all. */
export interface CancelAll {
  kind: 'cancelAll';
  instrument?: string;
}

/** Changes a resting order's price or size (at least one). */
export interface Amend {
  kind: 'amend';
  instrument: string;
  orderId: number;
  priceTicks?: number;
  /** The order's whole new size, what it has filled included (at or below that: it ends). */
  sizeLots?: number;
}

export interface Batch {
  kind: 'batch';
  /** Independent actions, one result each; never another batch. */
  actions: BatchableAction[];
}

/** Lets a key trade (not withdraw, transfer or manage agents) for the account until expiresAtMs. */
export interface RegisterAgent {
  kind: 'registerAgent';
  agentPublicKey: Uint8Array;
  expiresAtMs: number;
  name?: string;
}

export interface RevokeAgent {
  kind: 'revokeAgent';
  agentPublicKey: Uint8Array;
}

/**
 * A market's new risk parameters, all of them (genesis.ts MarketRisk): an
 * absent priceBandPpm or openInterestCapLots removes the band or the cap.
 */
export interface RiskValues {
  initialMarginPpm: number;
  maintenanceMarginPpm: number;
  imfStepQuote: bigint;
  imfStepPpm: number;
  liquidationQuoteMaxPerBlock: bigint;
  priceBandPpm?: number;
  openInterestCapLots?: number;
}

/**
 * One tier of a setFeeTiers proposal's schedule (genesis.ts FeeTier): from
 * volumeQuoteMin of lifetime traded notional, the maker and taker fees in
 * parts per million (a negative maker fee is a rebate).
 */
export interface FeeTierValues {
  volumeQuoteMin: bigint;
  makerFeePpm: number;
  takerFeePpm: number;
}

export type GovProposal =
  | { kind: 'haltMarket' | 'resumeMarket'; instrument: string }
  | { kind: 'haltAll' | 'resumeAll' }
  | { kind: 'setMarketRisk'; instrument: string; risk: RiskValues }
  | { kind: 'setFeeTiers'; tiers: FeeTierValues[] };

export interface GovPropose {
  kind: 'govPropose';
  proposalId: number;
  proposal: GovProposal;
}

export interface GovVote {
  kind: 'govVote';
  proposalId: number;
  approve: boolean;
}

export type Action =
  | Faucet
  | AttestDeposit
  | Withdraw
  | Transfer
  | PlaceOrder
  | Cancel
  | CancelAll
  | Amend
  | Batch
  | RegisterAgent
  | RevokeAgent
  | GovPropose
  | GovVote;

export type ActionKind = Action['kind'];
export type BatchableAction = Exclude<Action, Batch>;

/**
 * Every action kind, in wire order: an action's tag byte is its index here.
 * Append only: reordering changes the encoding of every transaction.
 */
export const ACTION_KINDS = [
  'faucet',
  'attestDeposit',
  'withdraw',
  'transfer',
  'placeOrder',
  'cancel',
  'cancelAll',
  'amend',
  'batch',
  'registerAgent',
  'revokeAgent',
  'govPropose',
  'govVote',
] as const satisfies readonly ActionKind[];

/** Actions only the account's own key may sign, never an agent's. */
export const MASTER_ONLY_ACTIONS: ReadonlySet<ActionKind> = new Set<ActionKind>([
  'withdraw',
  'transfer',
  'registerAgent',
  'revokeAgent',
  'attestDeposit',
  'govPropose',
  'govVote',
]);

/** The envelope without its signature: exactly what is signed. */
export interface UnsignedTx {
  chainId: string;
  /** 32-byte Ed25519 public key: the account's own key or one of its agents'. */
  signer: Uint8Array;
  /** 20-byte address of the account acted for. */
  account: Uint8Array;
  subaccount: number;
  /** Unique per account within a window (docs/transactions.md); by convention the client's ms clock. */
  nonce: number;
  /** Block time (ms) after which the transaction is refused. */
  expiresAtMs?: number;
  action: Action;
}

export interface SignedTx extends UnsignedTx {
  /** 64 bytes over signedBytes(chainId, SIGN_KIND.tx, encodeUnsignedTx(tx)). */
  signature: Uint8Array;
}
