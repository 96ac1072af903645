// Builds a network's files: one genesis (the devnet markets, every validator
// with equal stake), one home per validator with its key (mode 0600), the
// genesis, and a config naming every other node as a peer with its key and
// address; and one home per full node (`"validator": false`), which peers
// with every validator. The transport refuses keys it was not told of, so
// every validator lists every full node too. On one machine (no hosts) ports
// are spread by index; on separate hosts every node uses the same three ports
// on its own address.
//
// addFullNode adds a full node to homes written earlier: it peers with the
// validators, syncs state from their snapshots, and is appended to every
// validator's peers (which take it in at their next restart).

import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { join } from 'node:path';
import type { TimeoutConfig } from '../consensus/index.ts';
import { generateKeyPair, loadKeyFile, saveKeyFile } from '../crypto/index.ts';
import type { KeyPair } from '../crypto/index.ts';
import { devnetGenesis, encodeGenesis, validateGenesis } from '../exchange/index.ts';
import type { Genesis } from '../exchange/index.ts';
import { bytesEqual, toHex } from '../lib/bytes.ts';
import {
  CONFIG_PEERS_MAX,
  SNAPSHOT_EVERY_HEIGHTS_DEFAULT,
  SNAPSHOTS_KEPT,
  VALIDATORS_MAX,
} from '../lib/limits.ts';
import type { NodeConfig, PeerEntry, TrustedBlockConfig } from './config.ts';
import {
  COMMIT_PAUSE_MS_DEFAULT,
  HOME_FILES,
  loadConfig,
  loadGenesis,
  parseHostPort,
  replaceFile,
  saveConfig,
  saveGenesis,
  validateConfig,
} from './config.ts';
import { configError } from './errors.ts';

export interface InitOptions {
  readonly validators: number;
  /** Full nodes (follow the chain, do not vote); default 0. */
  readonly fullNodes?: number;
  /** One address per node, validators first then full nodes; omitted: all on 127.0.0.1. */
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
  /** The devnet faucet (default true); without it money comes in only by attested deposits. */
  readonly faucet?: boolean;
}

export interface InitHome {
  readonly home: string;
  readonly publicKey: string;
  readonly peer: string;
  readonly api: string;
  readonly metrics: string;
}

export const DEFAULT_BASE_PORT = 26_656;

const HOST_PATTERN = /^[A-Za-z0-9.-]+$/;

/**
 * A host as --hosts and --host take it: a name, an IPv4 address, or an IPv6
 * address, bare or in brackets; returned bare (IPv6 in its canonical form),
 * as the sockets take it. addressOf puts an IPv6 one in brackets.
 */
function hostOf(text: string, field: string): string {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (isIPv6(bare)) return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  if (bare !== text || !HOST_PATTERN.test(text)) {
    throw configError(field, `"${text}" is not a host name or address`);
  }
  return text;
}

/** `host:port` as config.json writes it (an IPv6 host in brackets). */
function addressOf(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Two names of one host: case and a final dot (the root) aside. */
function hostKey(host: string): string {
  return host.toLowerCase().replace(/\.$/, '');
}

/**
 * The checks of initNetwork's options that need no file: a caller that must
 * clear a directory first (the devnet starting over) runs them before it
 * deletes anything.
 */
export function checkInitOptions(options: InitOptions): {
  n: number;
  m: number;
  base: number;
  stride: number;
  /** --hosts as the sockets take them (hostOf). */
  hosts: string[] | undefined;
} {
  const n = options.validators;
  if (!Number.isInteger(n) || n < 1 || n > VALIDATORS_MAX) {
    throw configError('--validators', `must be an integer in [1, ${VALIDATORS_MAX}]`);
  }
  const m = options.fullNodes ?? 0;
  // A validator's peers are the other validators and every full node.
  const fullNodesMax = CONFIG_PEERS_MAX - (n - 1);
  if (!Number.isInteger(m) || m < 0 || m > fullNodesMax) {
    throw configError('--full-nodes', `must be an integer in [0, ${fullNodesMax}]`);
  }
  const hosts = options.hosts;
  if (hosts !== undefined && hosts.length !== n + m) {
    throw configError('--hosts', `${hosts.length} hosts for ${n} validators and ${m} full nodes`);
  }
  const seen = new Set<string>();
  const bare = hosts?.map((text, i) => {
    const h = hostOf(text, `--hosts[${i}]`);
    // Every node on a host uses the same three ports: two could not both listen.
    if (seen.has(hostKey(h))) {
      throw configError(`--hosts[${i}]`, `"${text}" is named twice: one node per host`);
    }
    seen.add(hostKey(h));
    return h;
  });
  const base = options.basePort ?? DEFAULT_BASE_PORT;
  const stride = hosts === undefined ? 3 : 0;
  if (!Number.isInteger(base) || base < 1 || base + stride * (n + m) + 2 > 65_535) {
    throw configError('--base-port', 'the ports would not fit in [1, 65535]');
  }
  return { n, m, base, stride, hosts: bare };
}

export function initNetwork(options: InitOptions): {
  genesis: Genesis;
  homes: InitHome[];
  fullNodes: InitHome[];
} {
  const { n, m, base, stride, hosts } = checkInitOptions(options);
  const dirs = Array.from({ length: n + m }, (_, i) =>
    join(options.out, i < n ? `validator-${i}` : `full-node-${i - n}`),
  );
  // Checked for every home before any is written: a home in use (its key
  // moved to a backup, say) must keep its genesis, config and data.
  for (const dir of dirs) {
    if (!emptyOrAbsent(dir)) {
      throw configError('--out', `${dir} already exists; refusing to write over a home`);
    }
  }
  const keys: KeyPair[] = Array.from({ length: n + m }, () => generateKeyPair());
  const genesis: Genesis = {
    ...devnetGenesis(keys.slice(0, n).map((k) => k.publicKey)),
    genesisTimeMs: options.genesisTimeMs,
    ...(options.chainId !== undefined ? { chainId: options.chainId } : {}),
    ...(options.faucet === false ? { devnet: false, faucetQuoteMax: 0n } : {}),
  };
  try {
    validateGenesis(genesis);
  } catch (error) {
    throw configError('--chain-id', (error as Error).message);
  }
  const all: InitHome[] = keys.map((key, i) =>
    homeOf(dirs[i]!, key, hosts?.[i] ?? '127.0.0.1', base + stride * i),
  );
  const homes = all.slice(0, n);
  const fullNodes = all.slice(n);
  const shared = {
    snapshotEveryHeights: options.snapshotEveryHeights ?? SNAPSHOT_EVERY_HEIGHTS_DEFAULT,
    snapshotsKept: SNAPSHOTS_KEPT,
    commitPauseMs: options.commitPauseMs ?? COMMIT_PAUSE_MS_DEFAULT,
    logLevel: 'info',
    timeouts: options.timeouts ?? null,
  } as const;
  writeOrUndo(dirs, '--out', () => {
    homes.forEach((h, i) => {
      writeHome(h, keys[i]!, genesis, {
        moniker: `validator-${i}`,
        listen: h.peer,
        api: h.api,
        metrics: h.metrics,
        peers: all.filter((_, j) => j !== i).map(peerOf),
        validator: true,
        ...shared,
        oracle:
          options.oracleSeed === null || options.oracleSeed === undefined
            ? null
            : { seed: options.oracleSeed, index: i },
      });
    });
    fullNodes.forEach((h, j) => {
      // Started with the network, it replays from height 1: no state sync.
      writeHome(
        h,
        keys[n + j]!,
        genesis,
        fullNodeConfig(`full-node-${j}`, h, homes.map(peerOf), shared, false),
      );
    });
  });
  return { genesis, homes, fullNodes };
}

export interface AddFullNodeOptions {
  /** The directory `zomma init` wrote (validator-*, full-node-*). */
  readonly network: string;
  /** The new node's address; omitted: the network's single host, on the next free ports. */
  readonly host?: string;
  /** Its first port (peer; API +1, metrics +2); default: 26656 with `host`, else the next free. */
  readonly basePort?: number;
  /** Start from a validator's snapshot (default true: the validators may have pruned). */
  readonly stateSync?: boolean;
  /** The block state sync trusts instead of the genesis set (config.trustedBlock). */
  readonly trustedBlock?: TrustedBlockConfig;
}

interface ExistingHome {
  readonly dir: string;
  readonly config: NodeConfig;
}

/**
 * Writes one more full-node home into a network's directory and appends it to
 * every validator's peers. Everything is validated before anything is written.
 */
export function addFullNode(options: AddFullNodeOptions): { home: InitHome; updated: string[] } {
  const existing = readNetwork(options.network);
  const validators = existing.filter((e) => e.config.validator);
  if (validators.length === 0) {
    throw configError('--network', `${options.network} holds no validator home`);
  }
  const genesis = loadGenesis(validators[0]!.dir);
  const genesisBytes = encodeGenesis(genesis);
  for (const v of validators.slice(1)) {
    if (!bytesEqual(encodeGenesis(loadGenesis(v.dir)), genesisBytes)) {
      throw configError('--network', `${v.dir} has a different genesis from ${validators[0]!.dir}`);
    }
  }
  const { host, port } = placeNewNode(existing, options);
  let index = 0;
  while (existsSync(join(options.network, `full-node-${index}`))) index++;
  const key = generateKeyPair();
  const home = homeOf(join(options.network, `full-node-${index}`), key, host, port);
  const template = validators[0]!.config;
  const config = validateConfig(
    fullNodeConfig(
      `full-node-${index}`,
      home,
      validators.map((v) => ({ publicKey: validatorKeyOf(v, genesis), address: v.config.listen })),
      {
        snapshotEveryHeights: template.snapshotEveryHeights,
        snapshotsKept: template.snapshotsKept,
        commitPauseMs: template.commitPauseMs,
        logLevel: template.logLevel,
        timeouts: template.timeouts,
      },
      options.stateSync ?? true,
      options.trustedBlock ?? null,
    ),
  );
  const updatedConfigs = validators.map((v) => {
    const peers = [...v.config.peers, peerOf(home)];
    if (peers.length > CONFIG_PEERS_MAX) {
      throw configError(`${v.dir} config.peers`, `at most ${CONFIG_PEERS_MAX} peers`);
    }
    return { dir: v.dir, config: validateConfig({ ...v.config, peers }) };
  });
  // Each validator's config as it was, to put back if a later write fails.
  const before = updatedConfigs.map((u) => ({
    path: join(u.dir, HOME_FILES.config),
    text: readFileSync(join(u.dir, HOME_FILES.config)),
  }));
  writeOrUndo([home.home], '--network', () => {
    writeHome(home, key, genesis, config);
    let saved = 0;
    try {
      for (const u of updatedConfigs) {
        saveConfig(u.dir, u.config);
        saved++;
      }
    } catch (error) {
      // Only those rewritten, each whole or not at all (the others were never touched).
      for (const b of before.slice(0, saved)) replaceFile(b.path, b.text);
      throw error;
    }
  });
  return { home, updated: updatedConfigs.map((u) => u.dir) };
}

function homeOf(dir: string, key: KeyPair, host: string, port: number): InitHome {
  return {
    home: dir,
    publicKey: toHex(key.publicKey),
    peer: addressOf(host, port),
    api: addressOf(host, port + 1),
    metrics: addressOf(host, port + 2),
  };
}

function peerOf(h: { publicKey: string; peer: string }): PeerEntry {
  return { publicKey: h.publicKey, address: h.peer };
}

type SharedSettings = Pick<
  NodeConfig,
  'snapshotEveryHeights' | 'snapshotsKept' | 'commitPauseMs' | 'logLevel' | 'timeouts'
>;

function fullNodeConfig(
  moniker: string,
  h: InitHome,
  peers: readonly PeerEntry[],
  shared: SharedSettings,
  stateSync: boolean,
  trustedBlock: TrustedBlockConfig | null = null,
): NodeConfig {
  return {
    moniker,
    listen: h.peer,
    api: h.api,
    metrics: h.metrics,
    peers,
    validator: false,
    ...shared,
    // It does not vote, so it observes no prices.
    oracle: null,
    stateSync,
    ...(trustedBlock !== null ? { trustedBlock } : {}),
  };
}

function writeHome(h: InitHome, key: KeyPair, genesis: Genesis, config: NodeConfig): void {
  mkdirSync(join(h.home, HOME_FILES.data), { recursive: true });
  saveKeyFile(join(h.home, HOME_FILES.key), key);
  saveGenesis(h.home, genesis);
  saveConfig(h.home, config);
}

/** Whether a home may be written at `dir`: nothing there, or an empty directory. */
function emptyOrAbsent(dir: string): boolean {
  if (!present(dir)) return true;
  try {
    return readdirSync(dir).length === 0;
  } catch {
    // A file, or a link to nothing: not a directory to write a home into.
    return false;
  }
}

/** Whether anything, a link to nothing too, is at `path`. */
function present(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs the writes of new homes (each absent or empty before). One that fails
 * (a file where a directory goes, no permission, a full disk) removes what
 * was written, so a second run does not meet a half-written home that it
 * refuses to write over; the error names the option that chose the place.
 */
function writeOrUndo(dirs: readonly string[], field: string, write: () => void): void {
  const existed = new Set(dirs.filter(present));
  try {
    write();
  } catch (error) {
    for (const dir of dirs) {
      try {
        if (!existed.has(dir)) rmSync(dir, { recursive: true, force: true });
        else for (const name of readdirSync(dir)) rmSync(join(dir, name), { recursive: true });
      } catch {
        // Not there (its parent is a file, say): nothing of it to remove.
      }
    }
    const { code, path } = error as NodeJS.ErrnoException;
    const what = path !== undefined ? `cannot write ${path}` : 'cannot write the homes';
    throw configError(field, `${what} (${code ?? (error as Error).message}); nothing was written`);
  }
}

function readNetwork(dir: string): ExistingHome[] {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (error) {
    throw configError('--network', `cannot read ${dir}: ${(error as Error).message}`);
  }
  return names
    .map((name) => join(dir, name))
    .filter((home) => existsSync(join(home, HOME_FILES.config)))
    .map((home) => ({ dir: home, config: loadConfig(home) }));
}

/** A validator's public key, from its key file, checked against the genesis. */
function validatorKeyOf(v: ExistingHome, genesis: Genesis): string {
  const publicKey = loadKeyFile(join(v.dir, HOME_FILES.key)).publicKey;
  if (!genesis.validators.some((g) => bytesEqual(g.publicKey, publicKey))) {
    throw configError(`${v.dir} key.json`, 'is not a validator of the genesis');
  }
  return toHex(publicKey);
}

function placeNewNode(
  existing: readonly ExistingHome[],
  options: AddFullNodeOptions,
): { host: string; port: number } {
  const used = existing.flatMap((e) =>
    [e.config.listen, e.config.api, e.config.metrics]
      .filter((a): a is string => a !== null)
      .map((a) => parseHostPort(a, `${e.dir} config`)),
  );
  let host: string;
  let port: number;
  if (options.host === undefined) {
    const hosts = new Set(used.map((u) => u.host));
    if (hosts.size !== 1) {
      throw configError('--host', "the network spans several hosts: name the new node's host");
    }
    host = [...hosts][0]!;
    port = options.basePort ?? Math.max(...used.map((u) => u.port)) + 1;
  } else {
    host = hostOf(options.host, '--host');
    port = options.basePort ?? DEFAULT_BASE_PORT;
  }
  if (!Number.isInteger(port) || port < 1 || port + 2 > 65_535) {
    throw configError('--base-port', 'the ports would not fit in [1, 65535]');
  }
  for (const u of used) {
    if (hostKey(u.host) === hostKey(host) && u.port >= port && u.port <= port + 2) {
      throw configError(
        '--base-port',
        `${addressOf(host, u.port)} is already used by another node`,
      );
    }
  }
  return { host, port };
}
