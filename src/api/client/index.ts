// The client SDK (`zomma/client`): typed HTTP calls derived from the route
// definitions, keys and nonces, signed actions, and a WebSocket client that
// reconnects and recovers without gaps or duplicates. Works in Node 20 (global
// fetch; the `ws` package for WebSocket). See docs/api.md, "SDK".

import { HttpClient } from './http.ts';
import type { HttpClientOptions } from './http.ts';
import { ZommaSocket } from './socket.ts';
import type { SocketOptions } from './socket.ts';
import { Trader } from './trader.ts';
import type { KeyPair, TraderOptions } from './trader.ts';

export { HttpClient, ZommaApiError, ZommaRequestRefused } from './http.ts';
export type { HttpClientOptions, RequestInput } from './http.ts';
export { LocalBook, ZommaSocket, webSocketUrl } from './socket.ts';
export type { ChannelEvent, SocketOptions, SocketSubscription } from './socket.ts';
export {
  NONCE_LANES_MAX,
  NonceClock,
  Trader,
  addressOfKey,
  generateKey,
  keyFromSeedHex,
  loadKey,
  saveKey,
} from './trader.ts';
export type { KeyPair, NonceLane, OrderInput, TraderOptions } from './trader.ts';
export { routes } from '../routes.ts';
export type { BodyOf, ParamsOf, QueryOf, ResponseOf, RouteName, Routes } from '../routes.ts';
export type * from '../view.ts';

/** One node: HTTP calls, plus traders and sockets bound to it. */
export class ZommaClient extends HttpClient {
  constructor(options: HttpClientOptions | string) {
    super(typeof options === 'string' ? { url: options } : options);
  }

  trader(key: KeyPair, options: TraderOptions = {}): Trader {
    return new Trader(this, key, options);
  }

  socket(options: SocketOptions = {}): ZommaSocket {
    return new ZommaSocket(this.url, options);
  }
}
