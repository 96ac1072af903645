// Loopback transports for tests: n keys from fixed seeds, all on 127.0.0.1
// with kernel-chosen ports, each configured with the others; a bounded wait.

import { keyPairFromSeed } from '../../../src/crypto/index.ts';
import type { KeyPair } from '../../../src/crypto/index.ts';
import { TcpTransport } from '../../../src/node/transport/index.ts';
import type { TransportLimits } from '../../../src/node/transport/index.ts';
import type { TransportNetwork } from '../../compliance/transport.ts';

export const CHAIN_ID = 'zomma-test-1';
/** Long enough for a loaded 2-core machine, short enough to fail a stuck test quickly. */
export const WAIT_MS_MAX = 15_000;

export function keyOf(i: number): KeyPair {
  return keyPairFromSeed(new Uint8Array(32).fill(i + 1));
}

/** Fast reconnects for tests; every other limit is the production one. */
export const TEST_LIMITS: Partial<TransportLimits> = { backoffMsMin: 10, backoffMsMax: 200 };

/** Resolves once `condition()` holds; rejects naming `what` after WAIT_MS_MAX. */
export async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS_MAX;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

export function makeTransport(
  i: number,
  peers: readonly KeyPair[],
  limits: Partial<TransportLimits> = TEST_LIMITS,
  port = 0,
  nowMs?: () => number,
): TcpTransport {
  let seed = i * 7919 + 1;
  return new TcpTransport({
    chainId: CHAIN_ID,
    key: keyOf(i),
    host: '127.0.0.1',
    port,
    peers: peers.map((key) => ({ publicKey: key.publicKey })),
    limits,
    random: () => {
      seed = (seed * 48271) % 2147483647;
      return seed / 2147483647;
    },
    ...(nowMs ? { nowMs } : {}),
  });
}

/** Starts n transports and tells each where the others listen. */
export async function startNetwork(
  n: number,
): Promise<TransportNetwork & { transports: TcpTransport[] }> {
  const keys = Array.from({ length: n }, (_, i) => keyOf(i));
  const transports = keys.map((_, i) => makeTransport(i, keys));
  await Promise.all(transports.map((t) => t.start()));
  for (const t of transports) {
    for (const other of transports) {
      if (other !== t) t.setPeerAddress(other.self, '127.0.0.1', other.address().port);
    }
  }
  return {
    transports,
    until,
    close: async () => {
      await Promise.all(transports.map((t) => t.stop()));
    },
  };
}
