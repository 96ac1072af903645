// Network addresses as the per-address limits count them (the API's rate
// limits and caps, the peer transport's handshake limits).

import { isIPv4, isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * The key an address's limits are counted under: an IPv4
 * address itself (also when written IPv4-mapped, ::ffff:a.b.c.d), an IPv6
 * address by its /64, the least one subscriber is given, so that a client
 * cannot take a fresh bucket per address of its own prefix. A port or
 * brackets around the address (as some proxies write X-Forwarded-For:
 * 1.2.3.4:5678, [2001:db8::1]:443) are left out: a client's source port,
 * new on each connection, must not give it a fresh bucket.
 */
export function clientKeyOf(ip: string): string {
  const address = bareAddress(ip.trim()).split('%', 1)[0]!;
  if (!isIPv6(address)) return isIPv4(address) ? address : ip;
  const v6 = ipaddr.IPv6.parse(address);
  if (v6.isIPv4MappedAddress()) return v6.toIPv4Address().toString();
  const prefix = [...v6.toByteArray().slice(0, 8), 0, 0, 0, 0, 0, 0, 0, 0];
  return `${ipaddr.fromByteArray(prefix).toString()}/64`;
}

/** An address without the port or brackets written around it: `[a::b]:p`, `[a::b]`, `a.b.c.d:p`. */
function bareAddress(text: string): string {
  const bracketed = /^\[([^\]]+)\](?::[0-9]+)?$/.exec(text);
  if (bracketed !== null) return bracketed[1]!;
  const withPort = /^([0-9.]+):[0-9]+$/.exec(text);
  if (withPort !== null && isIPv4(withPort[1]!)) return withPort[1]!;
  return text;
}
