// A node's home directory and its files:
//   <home>/config.json   listen, API and metrics addresses, peers, snapshots, pruning, state sync (and serving it), oracle, halt height
//   <home>/genesis.json  the chain's genesis (canonical bytes as hex, with a summary)
//   <home>/key.json      the validator key (mode 0600; crypto/keyfile.ts)
//   <home>/data/         WAL, blocks, snapshots (storage/)
//   <home>/node.log      JSON logs
//   <home>/halt-*.json   what differed, when the node halted
// Every field is validated with a ConfigInvalid error that names it.

import { readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { join } from 'node:path';
import type { TimeoutConfig } from '../consensus/index.ts';
import { sha256 } from '../crypto/index.ts';
import { decodeGenesis, encodeGenesis } from '../exchange/index.ts';
import type { Genesis } from '../exchange/index.ts';
import { fromHex, toHex } from '../lib/bytes.ts';
import {
  BLOCKS_KEPT_MIN,
  CATCHUP_SERVE_TOTAL_MIB_PER_S_MAX,
  CATCHUP_SERVE_TOTAL_MIB_PER_S_MIN,
  CONFIG_FILE_BYTES_MAX,
  CONFIG_PEERS_MAX,
  ORACLE_FEED_AGE_MS_MAX,
  ORACLE_FEED_INTERVAL_MS_MIN,
  ORACLE_SOURCES_MAX,
  SNAPSHOT_EVERY_HEIGHTS_DEFAULT,
  SNAPSHOTS_KEPT,
  SYNC_SERVE_TOTAL_REQUESTS_PER_S_MAX,
  SYNC_SERVE_TOTAL_REQUESTS_PER_S_MIN,
} from '../lib/limits.ts';
import { NodeError, configError } from './errors.ts';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface PeerEntry {
  /** Ed25519 public key, hex. */
  readonly publicKey: string;
  /** host:port of its peer listener; absent for a peer that only dials us. */
  readonly address?: string;
}

export interface NodeConfig {
  readonly moniker: string;
  /** Peer-to-peer listener. */
  readonly listen: string;
  /** HTTP/WebSocket API; null: no API. */
  readonly api: string | null;
  /** /metrics and /health; null: none. */
  readonly metrics: string | null;
  readonly peers: readonly PeerEntry[];
  /** False: a full node (follows the chain, does not vote). */
  readonly validator: boolean;
  readonly snapshotEveryHeights: number;
  readonly snapshotsKept: number;
  /** Pause after each block before the next height, ms (CometBFT's timeout_commit). */
  readonly commitPauseMs: number;
  /** How long a proposal may wait for transactions after its height starts, ms (absent: the default). */
  readonly proposeWaitMs?: number;
  /**
   * This validator's price sources (docs/operations.md, "Oracle sources"):
   * `{ seed, index }` is one simulated source (devnet), as `zomma init` writes.
   */
  readonly oracle: OracleConfig | null;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** Overrides of the consensus timeouts, ms. */
  readonly timeouts: TimeoutConfig | null;
  /** Overrides of the API's rate limits (a load test from one address needs more); absent: defaults. */
  readonly apiLimits?: ApiRateLimits | null;
  /** With an empty data dir, start from a peer's verified snapshot instead of height 1 (sync.ts). */
  readonly stateSync?: boolean;
  /**
   * State sync trusts this committed block instead of the genesis validator
   * set (sync_trust.ts): needed once the set changed. Absent or null: genesis.
   */
  readonly trustedBlock?: TrustedBlockConfig | null;
  /** Heights kept in the block store (0: all); never below the latest snapshot. */
  readonly blocksKept?: number;
  /**
   * State-sync chunk, block and offers requests per second this node serves
   * to all peers together (sync_server.ts); absent: SYNC_SERVE_TOTAL_REQUESTS_PER_S.
   */
  readonly syncServeTotalRequestsPerS?: number;
  /**
   * MiB a second of consensus catch-up blocks this node serves to all peers
   * together beyond each peer's floor (replica.ts, serveWithinBudgets);
   * absent: CATCHUP_SERVE_TOTAL_BYTES_PER_S.
   */
  readonly catchupServeTotalMiBPerS?: number;
  /**
   * Check the exchange's invariants after every block (O(state): a debugging
   * aid). A failure halts the node; absent: false.
   */
  readonly checkInvariants?: boolean;
  /**
   * Stop once this height is executed and saved, and sign nothing after it
   * (loop.ts, NodeLoopOptions.haltHeight): the height every validator stops
   * at for an upgrade that changes execution. Absent: never.
   */
  readonly haltHeight?: number;
}

/** A committed block by height and hash, as `zomma query block HEIGHT` prints them. */
export interface TrustedBlockConfig {
  readonly height: number;
  /** The block's hash: 32 bytes as 64 hex digits. */
  readonly hash: string;
}

/** One price source of config.oracle.sources (src/node/price_sources.ts). */
export type OracleSourceConfig =
  /** The devnet's simulated market: the seed shared by the network and this validator's index. */
  | { readonly kind: 'simulated'; readonly seed: number; readonly index: number }
  /** A local JSON file, re-read when it changes. */
  | { readonly kind: 'file'; readonly path: string; readonly maxAgeMs: number }
  /** An http(s) URL polled every intervalMs. */
  | {
      readonly kind: 'url';
      readonly url: string;
      readonly intervalMs: number;
      readonly maxAgeMs: number;
    };

export type OracleConfig =
  | { readonly seed: number; readonly index: number }
  | { readonly sources: readonly OracleSourceConfig[] };

/** The sources an oracle config names: the short form is one simulated source. */
export function oracleSourcesOf(oracle: OracleConfig): readonly OracleSourceConfig[] {
  if ('sources' in oracle) return oracle.sources;
  return [{ kind: 'simulated', seed: oracle.seed, index: oracle.index }];
}

/** The API rate limits an operator may set (src/api/server.ts, ApiLimits). */
export interface ApiRateLimits {
  readonly ipRequestsPerS: number;
  readonly ipBurstRequests: number;
  readonly accountTxsPerS: number;
  readonly accountBurstTxs: number;
}

export const HOME_FILES = {
  config: 'config.json',
  genesis: 'genesis.json',
  key: 'key.json',
  data: 'data',
  log: 'node.log',
} as const;

/** Default pause after each block: about four blocks a second on an idle devnet. */
export const COMMIT_PAUSE_MS_DEFAULT = 250;

/**
 * Default wait of a proposal for the transactions its height's clients are
 * sending (loop.ts, proposeWaitMs): about one loopback round trip between a
 * commit's answer and a client's next transaction on a loaded machine, and a
 * small share of a height.
 */
export const PROPOSE_WAIT_MS_DEFAULT = 10;

const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;

export function parseHostPort(text: unknown, field: string): HostPort {
  if (typeof text !== 'string') throw configError(field, 'must be a "host:port" string');
  const at = text.lastIndexOf(':');
  let host = text.slice(0, at);
  const portText = text.slice(at + 1);
  const port = Number(portText);
  if (at <= 0 || !/^[A-Za-z0-9.\-[\]:]+$/.test(host)) {
    throw configError(field, `"${text}" is not host:port`);
  }
  // An IPv6 address is written in brackets, as in a URL ("[::1]:26656"); the
  // sockets take it without them, and would look "[::1]" up as a host name
  // (a listener that fails at start, a peer dialed in vain forever).
  const bracketed = host.startsWith('[') && host.endsWith(']');
  if (bracketed) host = host.slice(1, -1);
  if ((bracketed || /[[\]:]/.test(host)) && !isIPv6(host)) {
    throw configError(
      field,
      `"${text}" is not host:port (an IPv6 address goes in brackets: "[::1]:26656")`,
    );
  }
  // Digits only: Number() reads "" as 0 (a random port) and takes "0x50" and "1e3".
  if (!/^[0-9]{1,5}$/.test(portText) || port > 65_535) {
    throw configError(field, `port of "${text}" must be an integer in [0, 65535]`);
  }
  return { host, port };
}

/** Whether two listen hosts may share a port's sockets: the same host, or one listening on every interface. */
function sameInterface(a: string, b: string): boolean {
  const any = (h: string) => h === '0.0.0.0' || h === '::' || h === '[::]';
  return a === b || any(a) || any(b);
}

function readJson(path: string, field: string): unknown {
  let text: string;
  try {
    // Sized before it is read: a config (or a path to a large file) is not read whole first.
    if (statSync(path).size > CONFIG_FILE_BYTES_MAX) {
      throw configError(field, `${path} is too large`);
    }
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (error instanceof NodeError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      // The usual cause: --home names a directory `zomma init` never wrote.
      throw configError(
        field,
        `${path} does not exist: is --home a node's home? \`zomma init\` writes one`,
      );
    }
    throw configError(field, `cannot read ${path}: ${(error as Error).message}`);
  }
  if (Buffer.byteLength(text) > CONFIG_FILE_BYTES_MAX) {
    throw configError(field, `${path} is too large`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw configError(field, `${path} is not JSON: ${(error as Error).message}`);
  }
}

function object(x: unknown, field: string): Record<string, unknown> {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) {
    throw configError(field, 'must be an object');
  }
  return x as Record<string, unknown>;
}

function int(x: unknown, field: string, lo: number, hi: number): number {
  if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < lo || x > hi) {
    throw configError(field, `must be an integer in [${lo}, ${hi}]`);
  }
  return x;
}

function hexKey(x: unknown, field: string): string {
  if (typeof x !== 'string' || !/^[0-9a-f]{64}$/.test(x)) {
    throw configError(field, 'must be a 32-byte public key as 64 lowercase hex digits');
  }
  return x;
}

/**
 * A field whose absence means its default: `null` is not that absence (the
 * fields that take null say what it means), so `"validator": null` is
 * refused rather than read as the default, true.
 */
function orDefault(c: Record<string, unknown>, name: string, fallback: unknown): unknown {
  const x = c[name];
  if (x === null)
    throw configError(`config.${name}`, 'must not be null (leave it out for the default)');
  return x === undefined ? fallback : x;
}

/** Validates a parsed config.json. */
export function validateConfig(raw: unknown): NodeConfig {
  const c = object(raw, 'config');
  const known = new Set([
    'moniker',
    'listen',
    'api',
    'metrics',
    'peers',
    'validator',
    'snapshotEveryHeights',
    'snapshotsKept',
    'commitPauseMs',
    'proposeWaitMs',
    'oracle',
    'logLevel',
    'timeouts',
    'apiLimits',
    'stateSync',
    'trustedBlock',
    'blocksKept',
    'syncServeTotalRequestsPerS',
    'catchupServeTotalMiBPerS',
    'checkInvariants',
    'haltHeight',
  ]);
  for (const name of Object.keys(c)) {
    if (!known.has(name)) throw configError(`config.${name}`, 'unknown field');
  }
  const moniker = orDefault(c, 'moniker', 'node');
  if (typeof moniker !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(moniker)) {
    throw configError('config.moniker', 'must be 1 to 64 of A-Z a-z 0-9 _ . -');
  }
  const bound: [string, HostPort][] = [['config.listen', parseHostPort(c.listen, 'config.listen')]];
  const api = c.api ?? null;
  if (api !== null) bound.push(['config.api', parseHostPort(api, 'config.api')]);
  const metrics = c.metrics ?? null;
  if (metrics !== null) bound.push(['config.metrics', parseHostPort(metrics, 'config.metrics')]);
  // Two of them on one address would fail at start as a port in use, named
  // after whichever bound second, as if another process held it.
  bound.forEach(([field, a], i) => {
    for (const [other, b] of bound.slice(0, i)) {
      if (a.port !== 0 && a.port === b.port && sameInterface(a.host, b.host)) {
        throw configError(field, `the same address as ${other}: each needs a port of its own`);
      }
    }
  });
  if (!Array.isArray(c.peers)) throw configError('config.peers', 'must be an array');
  if (c.peers.length > CONFIG_PEERS_MAX) {
    throw configError('config.peers', `at most ${CONFIG_PEERS_MAX} peers`);
  }
  const listed = new Map<string, number>();
  const peers = c.peers.map((p, i): PeerEntry => {
    const f = `config.peers[${i}]`;
    const entry = object(p, f);
    // A misspelt "address" would leave a peer we never dial, without a word.
    onlyFields(entry, f, ['publicKey', 'address']);
    const publicKey = hexKey(entry.publicKey, `${f}.publicKey`);
    // The transport keeps one address per key: a second entry (a moved node
    // added rather than edited) would silently win over, or lose to, the first.
    const first = listed.get(publicKey);
    if (first !== undefined) {
      throw configError(`${f}.publicKey`, `the same key as config.peers[${first}]`);
    }
    listed.set(publicKey, i);
    if (entry.address === undefined) return { publicKey };
    const hp = parseHostPort(entry.address, `${f}.address`);
    if (hp.port === 0) throw configError(`${f}.address`, 'a peer needs a real port');
    return { publicKey, address: entry.address as string };
  });
  const validator = orDefault(c, 'validator', true);
  if (typeof validator !== 'boolean')
    throw configError('config.validator', 'must be true or false');
  const snapshotEveryHeights = int(
    orDefault(c, 'snapshotEveryHeights', SNAPSHOT_EVERY_HEIGHTS_DEFAULT),
    'config.snapshotEveryHeights',
    0,
    1_000_000,
  );
  const snapshotsKept = int(
    orDefault(c, 'snapshotsKept', SNAPSHOTS_KEPT),
    'config.snapshotsKept',
    1,
    1_000,
  );
  const commitPauseMs = int(
    orDefault(c, 'commitPauseMs', COMMIT_PAUSE_MS_DEFAULT),
    'config.commitPauseMs',
    0,
    60_000,
  );
  const proposeWaitMs = int(
    orDefault(c, 'proposeWaitMs', PROPOSE_WAIT_MS_DEFAULT),
    'config.proposeWaitMs',
    0,
    10_000,
  );
  const oracle = c.oracle === undefined || c.oracle === null ? null : validateOracle(c.oracle);
  const logLevel = orDefault(c, 'logLevel', 'info');
  if (!LOG_LEVELS.includes(logLevel as NodeConfig['logLevel'])) {
    throw configError('config.logLevel', `must be one of ${LOG_LEVELS.join(', ')}`);
  }
  let timeouts: TimeoutConfig | null = null;
  if (c.timeouts !== undefined && c.timeouts !== null) {
    const t = object(c.timeouts, 'config.timeouts');
    onlyFields(t, 'config.timeouts', [
      'proposeMs',
      'prevoteMs',
      'precommitMs',
      'deltaMs',
      'maxMs',
      'gossipMs',
    ]);
    const ms = (name: string) => int(t[name], `config.timeouts.${name}`, 1, 600_000);
    timeouts = {
      proposeMs: ms('proposeMs'),
      prevoteMs: ms('prevoteMs'),
      precommitMs: ms('precommitMs'),
      deltaMs: ms('deltaMs'),
      maxMs: ms('maxMs'),
      ...(t.gossipMs !== undefined ? { gossipMs: ms('gossipMs') } : {}),
    };
    // Each step's timeout is capped at maxMs (timeoutMs in replica.ts): a cap
    // below a base timeout would silently replace that base, and one at it
    // would keep that timeout from growing with the round, which liveness
    // after GST needs. The cap leaves every step one round's growth at least.
    const base = Math.max(timeouts.proposeMs, timeouts.prevoteMs, timeouts.precommitMs);
    if (timeouts.maxMs < base + timeouts.deltaMs) {
      throw configError(
        'config.timeouts.maxMs',
        `${timeouts.maxMs} leaves the base timeout ${base} no room to grow: it must be at least the largest of proposeMs, prevoteMs and precommitMs plus deltaMs (${base + timeouts.deltaMs})`,
      );
    }
  }
  let apiLimits: ApiRateLimits | null = null;
  if (c.apiLimits !== undefined && c.apiLimits !== null) {
    const a = object(c.apiLimits, 'config.apiLimits');
    for (const name of Object.keys(a)) {
      if (!API_LIMIT_FIELDS.includes(name as keyof ApiRateLimits)) {
        throw configError(`config.apiLimits.${name}`, 'unknown field');
      }
    }
    const n = (name: keyof ApiRateLimits) =>
      int(a[name], `config.apiLimits.${name}`, 1, 10_000_000);
    apiLimits = {
      ipRequestsPerS: n('ipRequestsPerS'),
      ipBurstRequests: n('ipBurstRequests'),
      accountTxsPerS: n('accountTxsPerS'),
      accountBurstTxs: n('accountBurstTxs'),
    };
    if (apiLimits.ipBurstRequests < apiLimits.ipRequestsPerS) {
      throw configError('config.apiLimits.ipBurstRequests', 'must be at least ipRequestsPerS');
    }
    if (apiLimits.accountBurstTxs < apiLimits.accountTxsPerS) {
      throw configError('config.apiLimits.accountBurstTxs', 'must be at least accountTxsPerS');
    }
  }
  const checkInvariants = orDefault(c, 'checkInvariants', false);
  if (typeof checkInvariants !== 'boolean') {
    throw configError('config.checkInvariants', 'must be true or false');
  }
  const stateSync = orDefault(c, 'stateSync', false);
  if (typeof stateSync !== 'boolean')
    throw configError('config.stateSync', 'must be true or false');
  if (stateSync && peers.every((p) => p.address === undefined)) {
    throw configError('config.stateSync', 'needs at least one peer with an address to sync from');
  }
  const trustedBlock =
    c.trustedBlock === undefined || c.trustedBlock === null
      ? null
      : validateTrustedBlock(c.trustedBlock);
  if (trustedBlock !== null && !stateSync) {
    throw configError('config.trustedBlock', 'is read by state sync only: set "stateSync": true');
  }
  const blocksKept = int(
    orDefault(c, 'blocksKept', 0),
    'config.blocksKept',
    0,
    Number.MAX_SAFE_INTEGER,
  );
  if (blocksKept !== 0) {
    if (blocksKept < BLOCKS_KEPT_MIN) {
      throw configError('config.blocksKept', `must be 0 (keep all) or at least ${BLOCKS_KEPT_MIN}`);
    }
    // Pruning happens when a snapshot is saved, and keeps the blocks a restart
    // from the one before the newest needs (the newest may lack its checkpoint).
    if (snapshotEveryHeights === 0 || snapshotsKept < 2) {
      throw configError(
        'config.blocksKept',
        'pruning needs snapshots (snapshotEveryHeights > 0) and snapshotsKept of at least 2',
      );
    }
  }
  // Absent stays absent: a later default applies to a config that never chose one.
  const syncServeTotalRequestsPerS =
    orDefault(c, 'syncServeTotalRequestsPerS', undefined) === undefined
      ? null
      : int(
          c.syncServeTotalRequestsPerS,
          'config.syncServeTotalRequestsPerS',
          SYNC_SERVE_TOTAL_REQUESTS_PER_S_MIN,
          SYNC_SERVE_TOTAL_REQUESTS_PER_S_MAX,
        );
  const catchupServeTotalMiBPerS =
    orDefault(c, 'catchupServeTotalMiBPerS', undefined) === undefined
      ? null
      : int(
          c.catchupServeTotalMiBPerS,
          'config.catchupServeTotalMiBPerS',
          CATCHUP_SERVE_TOTAL_MIB_PER_S_MIN,
          CATCHUP_SERVE_TOTAL_MIB_PER_S_MAX,
        );
  const haltHeight =
    c.haltHeight === undefined || c.haltHeight === null
      ? null
      : int(c.haltHeight, 'config.haltHeight', 1, Number.MAX_SAFE_INTEGER);
  return {
    moniker,
    listen: c.listen as string,
    api: api as string | null,
    metrics: metrics as string | null,
    peers,
    validator,
    snapshotEveryHeights,
    snapshotsKept,
    commitPauseMs,
    proposeWaitMs,
    oracle,
    logLevel: logLevel as NodeConfig['logLevel'],
    timeouts,
    apiLimits,
    stateSync,
    trustedBlock,
    blocksKept,
    ...(syncServeTotalRequestsPerS !== null ? { syncServeTotalRequestsPerS } : {}),
    ...(catchupServeTotalMiBPerS !== null ? { catchupServeTotalMiBPerS } : {}),
    ...(checkInvariants ? { checkInvariants } : {}),
    ...(haltHeight !== null ? { haltHeight } : {}),
  };
}

/** Validates config.trustedBlock (also the `zomma init --trust-*` flags). */
export function validateTrustedBlock(raw: unknown): TrustedBlockConfig {
  const f = 'config.trustedBlock';
  const t = object(raw, f);
  onlyFields(t, f, ['height', 'hash']);
  const height = int(t.height, `${f}.height`, 1, Number.MAX_SAFE_INTEGER);
  if (typeof t.hash !== 'string' || !/^[0-9a-fA-F]*$/.test(t.hash)) {
    throw configError(`${f}.hash`, 'must be a block hash in hex digits');
  }
  if (t.hash.length !== 64) {
    throw configError(`${f}.hash`, `must be 32 bytes (64 hex digits), not ${t.hash.length} digits`);
  }
  return { height, hash: t.hash.toLowerCase() };
}

function onlyFields(o: Record<string, unknown>, field: string, names: readonly string[]): void {
  for (const name of Object.keys(o)) {
    if (!names.includes(name)) throw configError(`${field}.${name}`, 'unknown field');
  }
}

function validateOracle(raw: unknown): OracleConfig {
  const o = object(raw, 'config.oracle');
  if (o.sources === undefined) {
    onlyFields(o, 'config.oracle', ['seed', 'index']);
    return {
      seed: int(o.seed, 'config.oracle.seed', 0, 2 ** 31),
      index: int(o.index, 'config.oracle.index', 0, 1_000),
    };
  }
  onlyFields(o, 'config.oracle', ['sources']);
  if (!Array.isArray(o.sources) || o.sources.length === 0) {
    throw configError('config.oracle.sources', 'must be a non-empty array');
  }
  if (o.sources.length > ORACLE_SOURCES_MAX) {
    throw configError('config.oracle.sources', `at most ${ORACLE_SOURCES_MAX} sources`);
  }
  return { sources: o.sources.map((s, i) => validateSource(s, `config.oracle.sources[${i}]`)) };
}

function validateSource(raw: unknown, f: string): OracleSourceConfig {
  const s = object(raw, f);
  const maxAgeMs = () => int(s.maxAgeMs, `${f}.maxAgeMs`, 1, ORACLE_FEED_AGE_MS_MAX);
  switch (s.kind) {
    case 'simulated':
      onlyFields(s, f, ['kind', 'seed', 'index']);
      return {
        kind: 'simulated',
        seed: int(s.seed, `${f}.seed`, 0, 2 ** 31),
        index: int(s.index, `${f}.index`, 0, 1_000),
      };
    case 'file':
      onlyFields(s, f, ['kind', 'path', 'maxAgeMs']);
      if (typeof s.path !== 'string' || s.path.length === 0 || s.path.includes('\0')) {
        throw configError(`${f}.path`, 'must be a file path');
      }
      return { kind: 'file', path: s.path, maxAgeMs: maxAgeMs() };
    case 'url': {
      onlyFields(s, f, ['kind', 'url', 'intervalMs', 'maxAgeMs']);
      let url: URL | null;
      try {
        url = typeof s.url === 'string' ? new URL(s.url) : null;
      } catch {
        url = null;
      }
      if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
        throw configError(`${f}.url`, 'must be an http:// or https:// URL');
      }
      // fetch() refuses them (no answer would ever come) and the log would show them.
      if (url.username !== '' || url.password !== '') {
        throw configError(`${f}.url`, 'must not hold a user name or password');
      }
      const intervalMs = int(
        s.intervalMs,
        `${f}.intervalMs`,
        ORACLE_FEED_INTERVAL_MS_MIN,
        ORACLE_FEED_AGE_MS_MAX,
      );
      return { kind: 'url', url: s.url as string, intervalMs, maxAgeMs: maxAgeMs() };
    }
    default:
      throw configError(`${f}.kind`, 'must be "simulated", "file" or "url"');
  }
}

const API_LIMIT_FIELDS: readonly (keyof ApiRateLimits)[] = [
  'ipRequestsPerS',
  'ipBurstRequests',
  'accountTxsPerS',
  'accountBurstTxs',
];

export function loadConfig(home: string): NodeConfig {
  return validateConfig(readJson(join(home, HOME_FILES.config), 'config.json'));
}

/**
 * Written beside and renamed into place: `init --add-full-node` rewrites the
 * config of running validators, and a write cut short (a full disk) must
 * leave the old file whole, not a truncated one the node cannot start from.
 */
export function saveConfig(home: string, config: NodeConfig): void {
  replaceFile(join(home, HOME_FILES.config), `${JSON.stringify(config, null, 2)}\n`);
}

/**
 * Writes `path` whole or not at all: a temporary file renamed over it, so a
 * write cut short (a full disk) leaves the old file, and no temporary file.
 */
export function replaceFile(path: string, text: string | Uint8Array): void {
  const temporary = `${path}.tmp`;
  try {
    writeFileSync(temporary, text);
    renameSync(temporary, path);
  } catch (error) {
    try {
      rmSync(temporary, { force: true });
    } catch {
      // The write's error is the one to report (a directory in the way refuses both).
    }
    throw error;
  }
}

/**
 * genesis.json: the canonical bytes (what the chain hashes) as hex, their
 * sha256 to compare across operators, and a summary for people; the summary
 * is not read back.
 */
export function saveGenesis(home: string, genesis: Genesis): void {
  const bytes = encodeGenesis(genesis);
  const file = {
    chainId: genesis.chainId,
    genesisTimeMs: genesis.genesisTimeMs,
    sha256: toHex(sha256(bytes)),
    markets: genesis.markets.map((m) => m.instrument),
    validators: genesis.validators.map((v) => ({
      publicKey: toHex(v.publicKey),
      stake: v.stake.toString(),
    })),
    bytes: toHex(bytes),
  };
  writeFileSync(join(home, HOME_FILES.genesis), `${JSON.stringify(file, null, 2)}\n`);
}

export function loadGenesis(home: string): Genesis {
  const raw = object(readJson(join(home, HOME_FILES.genesis), 'genesis.json'), 'genesis');
  if (typeof raw.bytes !== 'string') throw configError('genesis.bytes', 'must be a hex string');
  let bytes: Uint8Array;
  try {
    bytes = fromHex(raw.bytes, 'genesis.bytes');
  } catch (error) {
    throw configError('genesis.bytes', (error as Error).message);
  }
  if (typeof raw.sha256 !== 'string' || raw.sha256 !== toHex(sha256(bytes))) {
    throw configError('genesis.sha256', 'does not match the bytes');
  }
  try {
    return decodeGenesis(bytes);
  } catch (error) {
    throw configError('genesis.bytes', (error as Error).message);
  }
}
