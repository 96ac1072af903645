// The node's network port and its TCP implementation (docs/decisions/0003-transport.md).

export type {
  MessageHandler,
  PeerId,
  PeerInfo,
  PeerState,
  PeerVersionRefusal,
  Transport,
  TransportCounters,
  TransportDropReason,
} from './types.ts';
export { PeerVersionError, emptyCounters } from './types.ts';
export { PROTOCOL_VERSION } from './version.ts';
export { TcpTransport, TransportConfigError } from './tcp.ts';
export type { PeerConfig, TcpTransportConfig, TransportLimits } from './tcp.ts';
