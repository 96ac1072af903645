// The client SDK (`zomma/client`): typed HTTP calls derived from the route
// definitions, keys and nonces, signed actions, and a WebSocket client that
// reconnects and recovers without gaps or duplicates. Works in Node 20 (global
// fetch; the `ws` package for WebSocket). See docs/api.md, "SDK".

import { HttpClient } from './http.ts';
import type { HttpClientOptions } from './http.ts';
import { ZommaSocket } from './socket.ts';
import type { SocketOptions } from './socket.ts';
import { NonceClock, Trader, addressOfKey } from './trader.ts';
import type { KeyPair, TraderOptions } from './trader.ts';

export { HttpClient, ZommaApiError, ZommaRequestRefused } from './http.ts';
export type { HttpClientOptions, RequestInput } from './http.ts';
export { LocalBook, ZommaSocket, webSocketUrl } from './socket.ts';
export type {
  ChannelEnded,
  ChannelEvent,
  ChannelSnapshot,
  ChannelUpdate,
  RawChannelEvent,
  SocketOptions,
  SocketSubscription,
} from './socket.ts';
export {
  NONCE_AHEAD_MS_MAX,
  NONCE_LANES_MAX,
  NonceClock,
  Trader,
  addressOfKey,
  generateKey,
  keyFromSeedHex,
  loadKey,
  saveKey,
} from './trader.ts';
export type { KeyPair, NonceLane, OrderInput, SharedClocks, TraderOptions } from './trader.ts';
// What a trader builds actions from and catches: the SDK's actions wrap these.
export { TxError, buildTx, placeOrder } from '../../exchange/tx/index.ts';
export type {
  Action,
  Amend,
  BatchableAction,
  BuildTxInput,
  BuiltTx,
  Cancel,
  CancelAll,
  OrderType,
  PlaceOrder,
  Side,
  Stp,
  TimeInForce,
  TxErrorCode,
} from '../../exchange/tx/index.ts';
export { channelSchemas, routes } from '../routes.ts';
export type {
  BodyOf,
  ChannelData,
  ChannelKind,
  ChannelKindOf,
  ChannelName,
  MarketChannelKind,
  ParamsOf,
  QueryOf,
  ResponseOf,
  RouteName,
  Routes,
} from '../routes.ts';
export type * from '../view.ts';
// The enumerations of answers, each the list its type is made from.
export {
  BLOCK_EVENT_TYPES,
  CONSENSUS_STEPS,
  FILL_LIQUIDITIES,
  INSTRUMENT_KINDS,
  INSTRUMENT_STATUSES,
  MARKET_END_REASONS,
  OPTION_TYPES,
  ORDER_REASONS,
  ORDER_RESULT_STATUSES,
  ORDER_STATUSES,
  TX_CODES,
  TX_DROP_CODES,
  TX_STATUSES,
  VOTE_TYPES,
} from '../view.ts';

/** One node: HTTP calls, plus traders and sockets bound to it. */
export class ZommaClient extends HttpClient {
  /** One nonce clock per nonce window (an address's own key, or its agents), for the traders made here. */
  private readonly clocks = new Map<string, NonceClock>();

  constructor(options: HttpClientOptions | string) {
    super(typeof options === 'string' ? { url: options } : options);
  }

  /**
   * A Trader signing with `key`. Traders made here that sign into one nonce
   * window (one key for several subaccounts, or several agents of one
   * address) share one NonceClock unless given their own `nonces`: with a
   * clock each, two of them signing within the same millisecond would pick
   * the same nonce, and the second would be refused DuplicateNonce.
   */
  trader(key: KeyPair, options: TraderOptions = {}): Trader {
    if (options.nonces !== undefined) return new Trader(this, key, options);
    const own = addressOfKey(key);
    const account = (options.account ?? own).toLowerCase();
    const nonces = this.clockOf(`${account}/${account === own ? 'own' : 'agents'}`);
    // Its agents (Trader.agent) take the address's agents' clock here too.
    return new Trader(this, key, { ...options, nonces }, (window) => this.clockOf(window));
  }

  private clockOf(window: string): NonceClock {
    let nonces = this.clocks.get(window);
    if (nonces === undefined) this.clocks.set(window, (nonces = new NonceClock()));
    return nonces;
  }

  socket(options: SocketOptions = {}): ZommaSocket {
    return new ZommaSocket(this.url, options);
  }
}
