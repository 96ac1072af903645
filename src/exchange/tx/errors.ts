// Stateless transaction errors (docs/transactions.md, "Errors"). Stateful ones
// (Expired, DuplicateNonce, StaleNonce, unknown agent, margin …) belong to the exchange.

import { ZommaError } from '../../lib/errors.ts';

export type TxErrorCode =
  /** The bytes are not a canonical transaction; `field` names where decoding failed. */
  | 'Malformed'
  /** Larger than TX_BYTES_MAX. */
  | 'Oversize'
  /** Signed for another chain. */
  | 'WrongChain'
  /** The signature does not verify for the signer's key. */
  | 'BadSignature'
  /** A field is out of its rules; `field` names it. */
  | 'BadField'
  /** An agent key signed an action only the account's own key may sign. */
  | 'AgentNotAllowed';

export class TxError extends ZommaError<TxErrorCode> {
  /** Dotted path of the offending field, e.g. `tx.action.placeOrder.sizeLots`. */
  readonly field: string | undefined;
  constructor(code: TxErrorCode, message: string, field?: string) {
    super(code, field === undefined ? message : `${field}: ${message}`);
    this.field = field;
  }
}
