// The order book and matching engine of one market (docs/book.md).
export { OrderBook } from './book.ts';
export type { Depth } from './book.ts';
export { FillList, RemovedList, ChangeSet } from './lists.ts';
export type { FillRecord, RemovedRecord } from './lists.ts';
export {
  orderBookCodec,
  readBook,
  readBookOrders,
  writeBook,
  writeBookOrders,
} from './snapshot.ts';
export { STOP_AT_ONCE, STP_MODES, TAKER_REASONS, TAKER_STATUSES, TIME_IN_FORCES } from './types.ts';
export type {
  FillGuard,
  PlaceOrder,
  RestingOrder,
  Side,
  StpMode,
  TakerReason,
  TakerResult,
  TakerStatus,
  TimeInForce,
} from './types.ts';
