// Runs one node from its home directory: reads and validates config, genesis
// and key; opens storage; restores the exchange; starts the TCP transport, the
// signature-check workers, the loop, and the metrics listener. What `zomma
// node` calls. On a halt the report goes to the log and to
// <home>/halt-<height>.json, and `onHalt` tells the caller to exit; at the
// halt height (config.haltHeight, or RunOptions.haltHeight) `onHaltHeight`
// tells it to stop the node as on SIGTERM.

import { fsyncSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import pino from 'pino';
import type { KeyPair } from '../crypto/index.ts';
import { CryptoError, VerifyPool, loadKeyFile, verifyRaw } from '../crypto/index.ts';
import {
  HEALTH_NO_BLOCK_MS,
  LOG_PENDING_BYTES_MAX,
  MEMPOOL_VERIFY_INLINE_TXS_MAX,
} from '../lib/limits.ts';
import { fromHex, toHex } from '../lib/bytes.ts';
import type { NodeConfig } from './config.ts';
import {
  HOME_FILES,
  PROPOSE_WAIT_MS_DEFAULT,
  loadConfig,
  loadGenesis,
  oracleSourcesOf,
  parseHostPort,
} from './config.ts';
import { buildInfo } from './build_info.ts';
import { NodeError, configError } from './errors.ts';
import { ZommaError } from '../lib/errors.ts';
import type { Log } from './log.ts';
import type { HaltHeightStop, HaltReport } from './loop.ts';
import { NodeMetrics, startMetricsServer } from './metrics.ts';
import { ChainView } from './view.ts';
import { startApiServer } from '../api/server.ts';
import { registerDashboard } from '../web/serve.ts';
import type { ApiServer } from '../api/server.ts';
import type { PeerNetwork } from './network.ts';
import { ZommaNode, consensusGenesisOf } from './node.ts';
import { buildPriceSources } from './price_sources.ts';
import { openStorage } from './storage/index.ts';
import type { FileResultsStore } from './results.ts';
import { openFileResultsStore } from './results.ts';
import type { FileStorage } from './storage/index.ts';
import { PeerVersionError, TcpTransport } from './transport/index.ts';
import type { Genesis as ConsensusGenesis } from '../consensus/index.ts';
import type { Genesis } from '../exchange/index.ts';
import { verify } from '../crypto/index.ts';
import { CHANNEL, unframe } from './framing.ts';
import { SignatureCache } from './mempool/sigcache.ts';
import { StateSyncer, isEmptyStorage, saveSynced } from './sync.ts';
import type { TrustedBlock } from './sync_trust.ts';
import { exchangeRestorer } from './sync_trust.ts';

export interface RunOptions {
  readonly home: string;
  /** Where logs go besides <home>/node.log (the CLI passes stdout). */
  readonly logStream?: Writable;
  readonly onHalt?: (report: HaltReport) => void;
  /** Overrides config.haltHeight (`zomma node --halt-height`). */
  readonly haltHeight?: number;
  /** The halt height was reached and made durable: stop() the node (no failure). */
  readonly onHaltHeight?: (stop: HaltHeightStop) => void;
}

export interface RunningNode {
  readonly node: ZommaNode;
  readonly config: NodeConfig;
  readonly metricsUrl: string | null;
  /** The HTTP/WebSocket API (null: config.api is null). */
  readonly apiUrl: string | null;
  readonly view: ChainView;
  /** What /metrics and /health read (also with config.metrics null). */
  readonly metrics: NodeMetrics;
  readonly peerPort: number;
  readonly log: Log;
  /** Opens node.log again at its path, after logrotate moved it (`zomma node` on SIGHUP). */
  reopenLog(): void;
  stop(): Promise<void>;
}

/**
 * The home's key.json (a validator's, or a full node's for its connections):
 * one that cannot be used (missing, not JSON, open to other users) is the
 * home's to fix, as a bad config.json is, so it is a ConfigInvalid naming it
 * (`zomma node` exits 2, and systemd does not restart it).
 */
function loadHomeKey(home: string): KeyPair {
  try {
    return loadKeyFile(join(home, HOME_FILES.key));
  } catch (error) {
    // Its own code stays in the message: operators grep for it (KeyFileTooOpen says how to fix it).
    if (error instanceof CryptoError)
      throw configError(HOME_FILES.key, `${error.code}: ${error.message}`);
    throw error;
  }
}

export async function runNode(options: RunOptions): Promise<RunningNode> {
  const { home } = options;
  const config = loadConfig(home);
  const haltHeight = options.haltHeight ?? config.haltHeight;
  const genesis = loadGenesis(home);
  const consensusGenesis = consensusGenesisOf(genesis);
  // A full node needs its key too, to authenticate its connections: loaded
  // here, before anything holds a resource, so a bad one is a clean ConfigInvalid.
  const homeKey = loadHomeKey(home);
  // The transport skips its own key among the peers: listed there, it is a
  // pasted key that left the peer meant out, without a word.
  const own = config.peers.findIndex((p) => p.publicKey === toHex(homeKey.publicKey));
  if (own >= 0) {
    throw configError(`config.peers[${own}].publicKey`, "is this node's own key (key.json)");
  }
  const key: KeyPair | null = config.validator ? homeKey : null;
  if (
    key !== null &&
    !genesis.validators.some((v) => toHex(v.publicKey) === toHex(key.publicKey))
  ) {
    throw configError(
      'key.json',
      'this key is not a validator of the genesis (set "validator": false for a full node)',
    );
  }
  const listen = parseHostPort(config.listen, 'config.listen');
  // First of what holds resources: a second node on this home stops here
  // (StorageLocked), before it opens a log file or a port.
  const storage: FileStorage = openStorage(join(home, HOME_FILES.data));
  // Written as each line is logged (sync), not
  // buffered in memory: a node stopped, killed or crashed leaves its last lines
  // in the file, and flushLog only has to put them on disk.
  let logFile: LogFile;
  try {
    logFile = new LogFile(join(home, HOME_FILES.log));
  } catch (error) {
    storage.close();
    const { code, message } = error as NodeJS.ErrnoException;
    throw configError(HOME_FILES.log, `cannot open the log file: ${code ?? message}`);
  }
  const streams: pino.StreamEntry[] = [{ level: config.logLevel, stream: logFile.destination }];
  if (options.logStream) streams.push({ level: 'info', stream: options.logStream });
  const logStreams = pino.multistream(streams);
  const logger = pino({ level: config.logLevel, base: { node: config.moniker } }, logStreams);
  const log: Log = logger;
  /** Puts the log on disk before any return. */
  const flushLog = (): void => logFile.sync();
  // Which code runs, for operators comparing builds after a halt (the files on disk may be newer).
  log.info({ ...buildInfo() }, 'node starting');
  /** Why this start failed, in node.log too (under systemd with --quiet, stderr is the journal's only). */
  const startFailed = (error: unknown): void => {
    const code = error instanceof ZommaError ? error.code : 'InternalError';
    log.error({ code, error: String(error) }, `node failed to start: ${code}`);
    // Re-executing the stored blocks disagreed with a recorded appHash: a halt at start-up.
    if (error instanceof NodeError && error.code === 'AppHashMismatch' && error.height !== null) {
      writeHaltReport(home, log, {
        code: error.code,
        message: error.message,
        height: error.height,
        details: { ...error.details },
      });
    }
  };

  const transport = new TcpTransport({
    chainId: genesis.chainId,
    key: homeKey,
    host: listen.host,
    port: listen.port,
    peers: config.peers.map((p, i) => {
      if (p.address === undefined) return { publicKey: fromHex(p.publicKey) };
      const hp = parseHostPort(p.address, `config.peers[${i}].address`);
      return { publicKey: fromHex(p.publicKey), host: hp.host, port: hp.port };
    }),
    log: logger.child({ component: 'transport' }),
  });
  let transportStarted = false;
  const network: PeerNetwork = {
    // State sync starts the transport before the node does.
    start: async () => {
      if (transportStarted) return;
      transportStarted = true;
      await transport.start();
    },
    stop: () => transport.stop(),
    send: (peer, bytes) => void transport.send(peer, bytes),
    broadcast: (bytes) => transport.broadcast(bytes),
    onMessage: (handler) => transport.onMessage(handler),
    peerCount: () => transport.peers().filter((p) => p.state === 'connected').length,
    versionRefusals: () =>
      transport.versionRefusals().map((refusal) => new PeerVersionError(refusal).message),
  };
  if (storage.lockTakenOverFrom !== null) {
    log.warn(
      { path: join(storage.dir, 'LOCK'), pid: storage.lockTakenOverFrom },
      'took over a stale data directory lock: its process no longer runs (a crash, or a kill -9)',
    );
  }
  if (storage.walTruncatedBytes > 0) {
    log.warn(
      { bytes: storage.walTruncatedBytes },
      'cut a torn tail off the WAL (a crash mid-write)',
    );
  }
  // Two cores are shared by the devnet's processes: one worker each is plenty.
  let results: FileResultsStore;
  try {
    results = openFileResultsStore(join(home, HOME_FILES.data, 'results.log'), log);
  } catch (error) {
    startFailed(error);
    closeLogged(log, 'storage', () => storage.close());
    flushLog();
    throw error;
  }
  try {
    // Checked with or without state sync: blocks with no WAL checkpoint are
    // only ever left by a state sync cut short (SyncIncomplete says what to do).
    const empty = isEmptyStorage(storage);
    if (config.stateSync === true && empty) {
      const trusted = config.trustedBlock ?? null;
      const trustedBlock =
        trusted === null ? null : { height: trusted.height, hash: fromHex(trusted.hash) };
      await stateSync(network, genesis, consensusGenesis, storage, log, trustedBlock);
    }
  } catch (error) {
    startFailed(error);
    await network.stop();
    closeLogged(log, 'results', () => results.close());
    closeLogged(log, 'storage', () => storage.close());
    flushLog();
    throw error;
  }
  const pool = new VerifyPool({ workers: 1 });
  // Only a validator observes prices (in its precommits).
  const priceSources = buildPriceSources(
    config.oracle === null || key === null ? [] : oracleSourcesOf(config.oracle),
    {
      underlyings: [...new Set(genesis.markets.map((m) => m.underlying))].sort(),
      originMs: genesis.genesisTimeMs,
      log: logger.child({ component: 'oracle' }),
    },
  );
  let node: ZommaNode;
  try {
    node = new ZommaNode({
      genesis,
      consensusGenesis,
      key,
      storage,
      network,
      verifyBatch: (items) =>
        items.length <= MEMPOOL_VERIFY_INLINE_TXS_MAX
          ? Promise.resolve(items.map((i) => verifyRaw(i.publicKey, i.message, i.signature)))
          : pool.verifyBatch(items),
      // One source is read NODE_PRICE_SOURCES times, as the devnet always has.
      prices: priceSources.sources.length === 1 ? priceSources.sources[0]! : null,
      ...(priceSources.sources.length > 1 ? { priceSources: priceSources.sources } : {}),
      ...(config.timeouts ? { timeouts: config.timeouts } : {}),
      snapshotEveryHeights: config.snapshotEveryHeights,
      snapshotsKept: config.snapshotsKept,
      blocksKept: config.blocksKept ?? 0,
      ...(config.syncServeTotalRequestsPerS !== undefined
        ? { syncServeTotalRequestsPerS: config.syncServeTotalRequestsPerS }
        : {}),
      ...(config.catchupServeTotalMiBPerS !== undefined
        ? { catchupServeTotalBytesPerS: config.catchupServeTotalMiBPerS * 1024 * 1024 }
        : {}),
      checkInvariants: config.checkInvariants === true,
      commitPauseMs: config.commitPauseMs,
      proposeWaitMs: config.proposeWaitMs ?? PROPOSE_WAIT_MS_DEFAULT,
      results,
      log,
      onHalt: (report) => {
        writeHaltReport(home, log, report);
        options.onHalt?.(report);
      },
      ...(haltHeight !== undefined ? { haltHeight } : {}),
      onHaltHeight: (stop) => options.onHaltHeight?.(stop),
    });
  } catch (error) {
    startFailed(error);
    // State sync may have started the transport.
    await network.stop();
    // The results before the WAL (storage), as stopAll closes them.
    closeLogged(log, 'results', () => results.close());
    closeLogged(log, 'storage', () => storage.close());
    await pool.close();
    flushLog();
    throw error;
  }
  priceSources.start();
  log.info(
    {
      chainId: genesis.chainId,
      height: node.app.height,
      snapshotHeight: node.restoredFrom.snapshotHeight,
      replayedBlocks: node.restoredFrom.replayedBlocks,
      ...(haltHeight !== undefined ? { haltHeight } : {}),
    },
    'state restored',
  );
  let metricsServer: Awaited<ReturnType<typeof startMetricsServer>> | null = null;
  let view: ChainView | null = null;
  let api: ApiServer | null = null;
  let stopped = false;
  // A listener that cannot bind (the address in use, not ours) is the config's
  // fault: said so, with everything started so far stopped and the home freed.
  const listenFailed = async (field: string, address: string, error: unknown) => {
    // A host that does not resolve (a typo) fails in its look-up, not in listen().
    const syscall = (error as NodeJS.ErrnoException).syscall;
    const failure =
      syscall !== 'listen' && syscall !== 'getaddrinfo'
        ? error
        : configError(field, `cannot listen on ${address}: ${(error as Error).message}`);
    startFailed(failure);
    await stopQuietly();
    return failure;
  };
  try {
    await node.start();
  } catch (error) {
    throw await listenFailed('config.listen', config.listen, error);
  }
  const peerPort = transport.address().port;
  log.info({ listen: `${listen.host}:${peerPort}` }, 'peer listener up');

  const metrics = new NodeMetrics({
    node,
    storage,
    peersConnected: () => network.peerCount(),
    transport: () => transport.counters(),
    versionRefusals: () => transport.versionRefusals(),
    chainId: genesis.chainId,
    moniker: config.moniker,
    noBlockMs: HEALTH_NO_BLOCK_MS + config.commitPauseMs,
  });
  if (config.metrics !== null) {
    const hp = parseHostPort(config.metrics, 'config.metrics');
    try {
      metricsServer = await startMetricsServer(metrics, hp.host, hp.port);
    } catch (error) {
      throw await listenFailed('config.metrics', config.metrics, error);
    }
    log.info({ url: metricsServer.url }, 'metrics and health listener up');
  }
  // The view subscribes before anything that reads it, so it never misses a block.
  view = new ChainView({ node, storage, genesis, log });
  if (config.api !== null) {
    const hp = parseHostPort(config.api, 'config.api');
    try {
      api = await startApiServer({
        view,
        host: hp.host,
        port: hp.port,
        logger: logger.child({ component: 'api' }, { level: 'warn' }),
        register: (app) => registerDashboard(app, { prefix: '/ui' }),
        ...(config.apiLimits ? { limits: config.apiLimits } : {}),
      });
    } catch (error) {
      const failure = configError(
        'config.api',
        `cannot listen on ${config.api}: ${(error as Error).message}`,
      );
      startFailed(failure);
      await stopQuietly();
      throw failure;
    }
    log.info({ url: api.url }, 'API listener up (HTTP and WebSocket)');
  }
  // Built only when it is written: the appHash's hex is a cost on every block.
  node.subscribe((b) => {
    if (!logger.isLevelEnabled('info')) return;
    log.info(
      {
        height: b.executed.block.header.height,
        txs: b.executed.block.txs.length,
        appHash: toHex(b.executed.result.appHash),
        executionMs: b.executed.executionMs,
      },
      'block executed',
    );
  });

  async function stopAll(): Promise<void> {
    if (stopped) return;
    stopped = true;
    let failure: unknown = null;
    try {
      // Clients first: nothing new reaches the mempool while the node stops.
      if (api !== null) await api.close();
      view?.close();
      await node.stop();
      priceSources.stop();
      if (metricsServer !== null) {
        const server = metricsServer.server;
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
      await pool.close();
    } catch (error) {
      // The stores are closed all the same: a lock left held would block the next start.
      log.error({ error: String(error) }, 'stopping failed; closing the stores');
      failure = error;
    }
    // The results before the WAL (storage): a restart re-executes only the blocks after the checkpoint.
    // A failed final sync is logged and reported after the rest is closed.
    // Files found replaced under the node (StorageReplaced) get nothing more:
    // the results log at their path may be another node's now.
    const resultsFailure = closeLogged(log, 'results', () => results.close(!storage.replaced));
    // Failed results of checkpointed blocks would never be rewritten: then the
    // WAL's tail stays as a crash leaves it, and the restart re-executes them.
    const storageFailure = closeLogged(log, 'storage', () =>
      storage.close(resultsFailure === null),
    );
    failure ??= resultsFailure ?? storageFailure;
    log.info({}, 'stopped');
    flushLog();
    if (failure !== null) throw failure;
  }

  /** stopAll on the way out of a failed start: its failures are logged, and the start's error is the one thrown. */
  async function stopQuietly(): Promise<void> {
    try {
      await stopAll();
    } catch {
      // Logged by stopAll.
    }
  }

  return {
    node,
    config,
    metricsUrl: metricsServer?.url ?? null,
    apiUrl: api?.url ?? null,
    view,
    metrics,
    peerPort,
    log,
    reopenLog: () => {
      const failure = logFile.reopen();
      if (failure === null) log.info({ path: logFile.path }, 'log file reopened');
      else
        log.warn(
          { path: logFile.path, code: failure.code ?? String(failure) },
          'log file not reopened: the lines go on to the file it has',
        );
    },
    stop: stopAll,
  };
}

/**
 * Fetches and verifies a peer's snapshot and writes it as our starting state
 * (sync.ts). Throws SyncError when no offer checks out: nothing is written then.
 */
async function stateSync(
  network: PeerNetwork,
  genesis: Genesis,
  consensusGenesis: ConsensusGenesis,
  storage: FileStorage,
  log: Log,
  trustedBlock: TrustedBlock | null,
): Promise<void> {
  const appOptions = {
    genesis,
    consensusGenesis,
    signatures: new SignatureCache(),
    prices: null,
    nowMs: () => Date.now(),
  };
  const syncer = new StateSyncer({
    network,
    consensusGenesis,
    verifier: { verify: (pk, kind, m, sig) => verify(pk, genesis.chainId, kind, m, sig) },
    restore: exchangeRestorer(appOptions),
    ...(trustedBlock !== null ? { trustedBlock } : {}),
    log,
  });
  network.onMessage((peer, bytes) => {
    try {
      const { channel, payload } = unframe(bytes);
      if (channel === CHANNEL.sync) syncer.onMessage(peer, payload);
    } catch {
      // A bad frame from a peer is dropped, as the node does.
    }
  });
  log.info(
    {
      peers: consensusGenesis.validators.length,
      trusted: trustedBlock === null ? 'genesis' : `block ${trustedBlock.height}`,
    },
    'state sync: asking peers for snapshots',
  );
  await network.start();
  const synced = await syncer.run();
  saveSynced(storage, synced);
  log.info(
    { height: synced.height, appHash: toHex(synced.appHash), providers: synced.providers.length },
    'state sync: state written, joining the chain from its height',
  );
}

/**
 * Writes <home>/halt-<height>.json. A halt is often a failed write (a full
 * disk): the report may fail too, and the runner must hear of the halt all
 * the same (the log line holds the report).
 */
function writeHaltReport(home: string, log: Log, report: HaltReport): void {
  const path = join(home, `halt-${report.height}.json`);
  try {
    writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`);
    log.error({ path }, 'halt report written');
  } catch (error) {
    log.error({ path, error: String(error) }, 'halt report not written (the log has it)');
  }
}

/**
 * Closes a store whose close may throw (its final sync failed): the failure
 * is logged, never replaces the error that led here, and is returned.
 */
function closeLogged(log: Log, what: string, close: () => void): unknown {
  try {
    close();
    return null;
  } catch (error) {
    log.error(
      { error: String(error) },
      `${what}: closing failed; a restart resumes from what is durable`,
    );
    return error;
  }
}

export type LogDestination = ReturnType<typeof pino.destination>;

/**
 * The node's log file, written as each line is logged (sync). A write that
 * fails is reported as an 'error' event, thrown from the log call itself
 * without a listener: a full disk would then fail whatever was logging (a
 * halt, a start); the line waits and the next write tries again. What waits
 * is bounded (`maxLength`): lines past it are dropped, not kept while the
 * disk stays full; a dropped line makes no write attempt, so an empty write,
 * which fits, tries the waiting lines again, or the log would stay silent
 * once the disk is freed until some line short enough to fit came.
 */
export class LogFile {
  readonly destination: LogDestination;

  /** Throws, with its code, if the node cannot open the file. */
  constructor(
    readonly path: string,
    maxLength = LOG_PENDING_BYTES_MAX,
  ) {
    const destination = pino.destination({ dest: path, sync: true, append: true, maxLength });
    destination.on('error', () => {});
    destination.on('drop', () => destination.write(''));
    this.destination = destination;
  }

  /**
   * The descriptor the destination writes to now (sonic-boom's own, not in
   * its types): the one sync() puts on disk, so that a reopen cannot leave
   * the two on different files.
   */
  private get fd(): number {
    return (this.destination as unknown as { fd: number }).fd;
  }

  /**
   * Puts the lines on disk. Each was written as it was logged, so an fsync is
   * all that is left; the destination's flushSync would retry a failed write
   * (a full disk) every 100 ms for good, blocking the event loop.
   */
  sync(): void {
    try {
      fsyncSync(this.fd);
    } catch {
      // A log that cannot reach the disk is no reason to fail a stop or hide a start's error.
    }
  }

  /**
   * Opens the file that has the path now (logrotate moved the old one away,
   * then sends SIGHUP): the next lines go to it, and so do lines still
   * waiting for room on a full disk. The old file's lines are put on disk
   * first, and the destination closes its descriptor once the new one is
   * open. Returns null, or why the path could not be opened: the lines then
   * go on to the file the log has. Never throws (it runs in a signal handler).
   */
  reopen(): NodeJS.ErrnoException | null {
    this.sync();
    const destination = this.destination;
    const waiting = destination.rawListeners('ready');
    try {
      destination.reopen();
      return null;
    } catch (error) {
      // The destination keeps its descriptor, but also the listener that was
      // to close it once the new file was open: left there, the next reopen
      // that succeeds would close that descriptor twice, the second time
      // whatever file had taken its number in between.
      for (const listener of destination.rawListeners('ready')) {
        if (!waiting.includes(listener)) {
          destination.removeListener('ready', listener as (...args: unknown[]) => void);
        }
      }
      return error as NodeJS.ErrnoException;
    }
  }

  /** Closes the file (for tests: a node's log stays open until its process ends). */
  close(): void {
    this.destination.destroy();
  }
}
