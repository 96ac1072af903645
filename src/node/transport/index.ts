// The node's network port and its TCP implementation (docs/decisions/0003-transport.md).

export type {
  MessageHandler,
  PeerId,
  PeerInfo,
  PeerState,
  Transport,
  TransportCounters,
  TransportDropReason,
} from './types.ts';
export { emptyCounters } from './types.ts';
export { TcpTransport, TransportConfigError } from './tcp.ts';
export type { PeerConfig, TcpTransportConfig, TransportLimits } from './tcp.ts';
