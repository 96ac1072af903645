// Builds a network's files: one genesis (the devnet markets, every validator
// with equal stake) and one home per validator with its key (mode 0600), the
// genesis, and a config naming every other validator as a peer with its key
// and address. On one machine (no hosts) ports are spread by index; on
// separate hosts every node uses the same three ports on its own address.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TimeoutConfig } from '../consensus/index.ts';
import { generateKeyPair, saveKeyFile } from '../crypto/index.ts';
import type { KeyPair } from '../crypto/index.ts';
import { devnetGenesis, validateGenesis } from '../exchange/index.ts';
import type { Genesis } from '../exchange/index.ts';
import { toHex } from '../lib/bytes.ts';
import { SNAPSHOT_EVERY_HEIGHTS_DEFAULT, SNAPSHOTS_KEPT, VALIDATORS_MAX } from '../lib/limits.ts';
import type { NodeConfig } from './config.ts';
import { COMMIT_PAUSE_MS_DEFAULT, HOME_FILES, saveConfig, saveGenesis } from './config.ts';
import { configError } from './errors.ts';

export interface InitOptions {
  readonly validators: number;
  /** One address per validator (separate hosts); omitted: all on 127.0.0.1. */
  readonly hosts?: readonly string[];
  readonly out: string;
  readonly chainId?: string;
  /** First port: peer = base (+ 3·i on one machine), API = +1, metrics = +2. */
  readonly basePort?: number;
  readonly genesisTimeMs: number;
  /** Seed of the simulated price sources (devnet); null: no observations. */
  readonly oracleSeed?: number | null;
  readonly timeouts?: TimeoutConfig;
  readonly snapshotEveryHeights?: number;
  readonly commitPauseMs?: number;
}

export interface InitHome {
  readonly home: string;
  readonly publicKey: string;
  readonly peer: string;
  readonly api: string;
  readonly metrics: string;
}

export const DEFAULT_BASE_PORT = 26_656;

export function initNetwork(options: InitOptions): { genesis: Genesis; homes: InitHome[] } {
  const n = options.validators;
  if (!Number.isInteger(n) || n < 1 || n > VALIDATORS_MAX) {
    throw configError('--validators', `must be an integer in [1, ${VALIDATORS_MAX}]`);
  }
  const hosts = options.hosts;
  if (hosts !== undefined && hosts.length !== n) {
    throw configError('--hosts', `${hosts.length} hosts for ${n} validators`);
  }
  hosts?.forEach((h, i) => {
    if (!/^[A-Za-z0-9.-]+$/.test(h))
      throw configError(`--hosts[${i}]`, `"${h}" is not a host name or address`);
  });
  const base = options.basePort ?? DEFAULT_BASE_PORT;
  const stride = hosts === undefined ? 3 : 0;
  if (!Number.isInteger(base) || base < 1 || base + stride * n + 2 > 65_535) {
    throw configError('--base-port', 'the ports would not fit in [1, 65535]');
  }
  const keys: KeyPair[] = Array.from({ length: n }, () => generateKeyPair());
  const genesis: Genesis = {
    ...devnetGenesis(keys.map((k) => k.publicKey)),
    genesisTimeMs: options.genesisTimeMs,
    ...(options.chainId !== undefined ? { chainId: options.chainId } : {}),
  };
  try {
    validateGenesis(genesis);
  } catch (error) {
    throw configError('--chain-id', (error as Error).message);
  }
  const homes: InitHome[] = keys.map((key, i) => {
    const host = hosts?.[i] ?? '127.0.0.1';
    const port = base + stride * i;
    return {
      home: join(options.out, `validator-${i}`),
      publicKey: toHex(key.publicKey),
      peer: `${host}:${port}`,
      api: `${host}:${port + 1}`,
      metrics: `${host}:${port + 2}`,
    };
  });
  homes.forEach((h, i) => {
    mkdirSync(join(h.home, HOME_FILES.data), { recursive: true });
    saveKeyFile(join(h.home, HOME_FILES.key), keys[i]!);
    saveGenesis(h.home, genesis);
    const config: NodeConfig = {
      moniker: `validator-${i}`,
      listen: h.peer,
      api: h.api,
      metrics: h.metrics,
      peers: homes
        .filter((_, j) => j !== i)
        .map((p) => ({ publicKey: p.publicKey, address: p.peer })),
      validator: true,
      snapshotEveryHeights: options.snapshotEveryHeights ?? SNAPSHOT_EVERY_HEIGHTS_DEFAULT,
      snapshotsKept: SNAPSHOTS_KEPT,
      commitPauseMs: options.commitPauseMs ?? COMMIT_PAUSE_MS_DEFAULT,
      oracle:
        options.oracleSeed === null || options.oracleSeed === undefined
          ? null
          : { seed: options.oracleSeed, index: i },
      logLevel: 'info',
      timeouts: options.timeouts ?? null,
    };
    saveConfig(h.home, config);
  });
  return { genesis, homes };
}
