// What finalizeBlock returns: one result per transaction (one per action of a
// batch) and the block's events. Fills ride in the placing action's result.

import type { ActionKind } from './tx/types.ts';
import type { TakerReason, TakerStatus } from './book/index.ts';
import type { RejectCode } from './errors.ts';

export interface Fill {
  readonly makerOrderId: number;
  readonly makerAccount: number;
  readonly priceTicks: number;
  readonly sizeLots: number;
  readonly takerFeeQuote: bigint;
  /** Negative: a rebate. */
  readonly makerFeeQuote: bigint;
}

export interface OrderOutcome {
  readonly orderId: number;
  readonly status: TakerStatus;
  readonly reason: TakerReason | null;
  readonly filledLots: number;
  readonly restedLots: number;
  readonly cancelledLots: number;
  readonly fills: Fill[];
}

export type ActionResult =
  | {
      readonly ok: true;
      readonly kind: ActionKind;
      readonly order?: OrderOutcome;
      readonly count?: number;
    }
  | {
      readonly ok: false;
      readonly kind: ActionKind;
      readonly code: RejectCode;
      readonly message: string;
    };

export interface TxResult {
  /** Index of the transaction in the block as proposed. */
  readonly index: number;
  readonly ok: boolean;
  /** Set when the whole transaction was refused (nonce, expiry, authorization). */
  readonly code?: RejectCode;
  readonly message?: string;
  /** One per action (a batch has several); empty when the transaction was refused. */
  readonly actions: ActionResult[];
}

export type ExchangeEvent =
  | {
      readonly type: 'orderExpired';
      readonly market: string;
      readonly orderId: number;
      readonly account: number;
    }
  | {
      /**
       * A resting order cancelled instead of filled: the fill would have left
       * its account's equity below zero (fill_guard.ts).
       */
      readonly type: 'makerCancelled';
      readonly market: string;
      readonly orderId: number;
      readonly account: number;
    }
  | {
      readonly type: 'funding';
      readonly market: string;
      readonly ratePpm: number;
      readonly markTicks: number;
      readonly paidQuote: bigint;
      readonly receivedQuote: bigint;
      readonly dustQuote: bigint;
    }
  | {
      /**
       * A liquidation cancelled the account's resting orders (book and auction
       * orders, every market), emitted before its fills and 'liquidation'
       * events, and also when nothing of it closes in the block (halted,
       * stale, in an auction, cap spent). `orders`: how many.
       */
      readonly type: 'liquidationCancels';
      readonly account: number;
      readonly orders: number;
    }
  | {
      /**
       * One slice of one position. A slice that closed nothing has
       * closedLots 0, and is emitted only when its liquidation did something
       * (liquidation.ts, dropSilentSlices): an attempt that did nothing at
       * all emits no event.
       */
      readonly type: 'liquidation';
      readonly market: string;
      readonly account: number;
      readonly closedLots: number;
      readonly feeQuote: bigint;
    }
  | {
      /**
       * One fill of a liquidation's IOC order against a resting order (emitted
       * before its 'liquidation' event): the liquidated account took `side`;
       * it pays no taker fee, and a maker rebate is not paid on it.
       */
      readonly type: 'liquidationFill';
      readonly market: string;
      readonly account: number;
      /** The liquidation's IOC order. */
      readonly orderId: number;
      readonly side: 'buy' | 'sell';
      readonly makerAccount: number;
      readonly makerOrderId: number;
      readonly priceTicks: number;
      readonly sizeLots: number;
      readonly makerFeeQuote: bigint;
    }
  | {
      readonly type: 'deleverage';
      readonly market: string;
      readonly account: number;
      readonly counterparty: number;
      readonly sizeLots: number;
      readonly priceTicks: number;
    }
  | { readonly type: 'marketListed'; readonly market: string; readonly expiryMs: number }
  | {
      readonly type: 'marketSettled';
      readonly market: string;
      /** The 30-minute TWAP of the index before expiry, quote units per whole base unit. */
      readonly settlementPriceQuote: bigint;
      /** What one whole base unit long received: the price (future) or the payoff (option). */
      readonly valueQuote: bigint;
      /** Positions closed. */
      readonly positions: number;
      /** Rounding kept back, credited to the fee pool. */
      readonly dustQuote: bigint;
    }
  | { readonly type: 'insuranceCover'; readonly account: number; readonly amountQuote: bigint }
  | { readonly type: 'depositCredited'; readonly account: number; readonly amountQuote: bigint }
  | { readonly type: 'marketHalted' | 'marketResumed'; readonly market: string }
  | {
      /** A setMarketRisk proposal executed: the market's risk parameters are its values from here on. */
      readonly type: 'marketRiskChanged';
      readonly market: string;
    }
  | {
      /** A setFeeTiers proposal executed: its schedule is the one in force from here on (state.feeTiers). */
      readonly type: 'feeTiersChanged';
    }
  | {
      readonly type: 'validatorJailed';
      /** The validator's public key. */
      readonly validator: Uint8Array;
      /** The height it double-signed at. */
      readonly offenceHeight: number;
      readonly burnedStake: bigint;
    }
  | {
      /** A trade would have breached a price-monitoring trigger at priceTicks. */
      readonly type: 'auctionStarted';
      readonly market: string;
      readonly priceTicks: number;
      readonly endMs: number;
    }
  | {
      /** One fill of an auction's uncrossing (no side took: each pays half a taker fee). */
      readonly type: 'auctionTrade';
      readonly market: string;
      readonly buyOrderId: number;
      readonly sellOrderId: number;
      readonly buyAccount: number;
      readonly sellAccount: number;
      readonly priceTicks: number;
      readonly sizeLots: number;
      readonly buyFeeQuote: bigint;
      readonly sellFeeQuote: bigint;
    }
  | {
      /** Continuous trading resumed; priceTicks 0 when nothing crossed. */
      readonly type: 'auctionEnded';
      readonly market: string;
      readonly priceTicks: number;
      readonly volumeLots: number;
    };

/** A change of a validator's consensus voting power (0 removes it); it decides height H+2. */
export interface ValidatorUpdate {
  readonly publicKey: Uint8Array;
  readonly power: number;
}

export interface BlockResult {
  readonly results: TxResult[];
  readonly events: ExchangeEvent[];
  readonly appHash: Uint8Array;
  /** The validators this block jailed, at power 0, in evidence order. */
  readonly validatorUpdates: readonly ValidatorUpdate[];
}
