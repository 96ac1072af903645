// Network addresses as the per-address limits count them (the API's rate
// limits and caps, the peer transport's handshake limits).

import { isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * The key an address's limits are counted under: an IPv4
 * address itself (also when written IPv4-mapped, ::ffff:a.b.c.d), an IPv6
 * address by its /64, the least one subscriber is given, so that a client
 * cannot take a fresh bucket per address of its own prefix.
 */
export function clientKeyOf(ip: string): string {
  const address = ip.split('%', 1)[0]!;
  if (!isIPv6(address)) return ip;
  const v6 = ipaddr.IPv6.parse(address);
  if (v6.isIPv4MappedAddress()) return v6.toIPv4Address().toString();
  const prefix = [...v6.toByteArray().slice(0, 8), 0, 0, 0, 0, 0, 0, 0, 0];
  return `${ipaddr.fromByteArray(prefix).toString()}/64`;
}
